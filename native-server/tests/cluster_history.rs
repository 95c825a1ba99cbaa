//! History and search beyond the ring in a cluster, with natter-server processes and a real
//! nats-server (started by the test on a free port, stopped by its pid): nc users on a node
//! that followed the room after its lines were said, and on a node started after them, find an
//! old line with `/search` and page back to the room's first event with `/history`. The rings
//! hold 5 events (`[limits] history_len`), the room many more.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use std::net::SocketAddr;
use std::path::Path;
use support::{TextClient, sigterm, spawn_server_within};
use tokio::process::Child;

/// Lines said after the needle.
const FILLERS: usize = 14;

/// A node in its own process, in the cluster at `nats`, with the hub limits of `config`; its
/// log is read (and dropped) so it never blocks on a full pipe.
async fn node(nats: &Nats, config: &Path) -> (Child, SocketAddr) {
    let url = nats.url();
    let config = config.display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        &url,
        "--config",
        &config,
    ];
    let (child, mut log, addr) = spawn_server_within(&args, &[], support::NODE_START).await;
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        while log.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    (child, addr)
}

/// The texts of `nick`'s lines in `lines` (nc shows them as `... <nick> text`).
fn said_by<'a>(lines: &'a [String], nick: &str) -> Vec<&'a str> {
    let mark = format!("<{nick}> ");
    lines
        .iter()
        .filter_map(|l| l.split_once(&mark).map(|(_, t)| t))
        .collect()
}

/// Lines until one that `end` takes (included), within the tests' wait.
async fn until(c: &mut TextClient, end: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..500 {
        let l = c.expect(|_| true, "a line").await;
        let done = end(&l);
        out.push(l);
        if done {
            return out;
        }
    }
    panic!("{}: no end in {out:?}", c.name);
}

/// Waits for the end of the lines `c`'s join of #lobby replays (the room has lines): a
/// command sent before may be answered before them, and they would be read as its answer.
async fn joined_lobby(c: &mut TextClient) {
    c.expect(|l| l == "-- (end of recent messages)", "the join's replay")
        .await;
}

/// A search's last line: `-- 1 result`, `-- 3 results`, `-- no results`.
fn found_end(l: &str) -> bool {
    l.starts_with("-- ") && (l.ends_with(" result") || l.ends_with(" results"))
}

/// `/search` and `/history` for nc user `c` (in #lobby since after every line of `alice` was
/// said): the needle is found, and scrollback reaches the room's first event with every line.
async fn finds_and_pages_back(c: &mut TextClient, alice: &str, want: &[String]) {
    c.send("/search NEEDLE old").await;
    let hits = until(c, found_end).await;
    assert_eq!(
        said_by(&hits, alice),
        ["the old needle, said first"],
        "{hits:?}"
    );
    assert_eq!(hits.last().map(String::as_str), Some("-- 1 result"));
    // Typed syntax is words, never an error.
    c.send("/search \"needle\" -old NEAR( *").await;
    let hostile = until(c, found_end).await;
    assert!(
        !hostile.iter().any(|l| l.starts_with("ERROR")),
        "{hostile:?}"
    );
    // Newest first, every line holding the word.
    c.send("/search filler").await;
    let fillers = until(c, found_end).await;
    let texts = said_by(&fillers, alice);
    assert_eq!(texts.len(), FILLERS, "{fillers:?}");
    assert_eq!(texts.first(), Some(&format!("filler {FILLERS}").as_str()));

    // Page back, 4 lines at a time, to the beginning of #lobby.
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut at_start = false;
    for _ in 0..20 {
        c.send("/history 4").await;
        let page = until(c, |l| l.starts_with("-- (")).await;
        let end = page.last().cloned().unwrap_or_default();
        pages.push(page);
        if end == "-- (the beginning of #lobby)" {
            at_start = true;
            break;
        }
        assert_eq!(end, "-- (/history #lobby shows older lines)");
    }
    let all: Vec<String> = pages.into_iter().rev().flatten().collect();
    let mut seen: Vec<String> = said_by(&all, alice)
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The lines its join replayed come after those paged back.
    assert!(seen.len() <= want.len(), "{all:?}");
    let shown_at_join = want.len() - seen.len();
    seen.extend(want[want.len() - shown_at_join..].iter().cloned());
    assert_eq!(seen, want, "{all:?}");
    assert!(shown_at_join <= 5, "the ring holds 5 events: {all:?}");
    assert!(at_start, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nc_users_search_and_page_back_beyond_the_ring_on_other_nodes_and_a_later_one() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("natter-server.toml");
    std::fs::write(
        &config,
        "[limits]\nhistory_len = 5\nhistory_on_join = 2\nflood_burst = 100\n",
    )
    .unwrap();
    let (mut one, at_one) = node(&nats, &config).await;
    let (mut two, at_two) = node(&nats, &config).await;

    let (mut alice, nick_a) = TextClient::welcomed(at_one, "alice").await;
    let (mut watcher, _) = TextClient::welcomed(at_one, "watcher").await;
    let mut want = vec!["the old needle, said first".to_owned()];
    want.extend((1..=FILLERS).map(|n| format!("filler {n}")));
    for w in &want {
        alice.send(w).await;
    }
    // Every line is in the log once another member sees the last one.
    watcher
        .expect(
            |l| l.ends_with(&format!("<{nick_a}> filler {FILLERS}")),
            "alice's last line",
        )
        .await;

    // Node two follows #lobby only now: its ring never held the needle.
    let (mut bob, _) = TextClient::welcomed(at_two, "bob").await;
    joined_lobby(&mut bob).await;
    finds_and_pages_back(&mut bob, &nick_a, &want).await;

    // A node started after every line was said.
    let (mut three, at_three) = node(&nats, &config).await;
    let (mut carol, _) = TextClient::welcomed(at_three, "carol").await;
    joined_lobby(&mut carol).await;
    finds_and_pages_back(&mut carol, &nick_a, &want).await;

    // A line said now is found at once, everywhere.
    alice.send("a fresh needle").await;
    carol.expect_has("a fresh needle").await;
    carol.send("/search needle").await;
    let hits = until(&mut carol, found_end).await;
    assert_eq!(
        said_by(&hits, &nick_a),
        ["a fresh needle", "the old needle, said first"],
        "{hits:?}"
    );

    drop((alice, watcher, bob, carol));
    for child in [&mut one, &mut two, &mut three] {
        sigterm(child).await;
    }
}
