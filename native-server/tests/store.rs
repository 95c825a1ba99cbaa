//! natter-server with its durable store, as a real process: `kill -9` in the middle of a stream of
//! messages loses nothing acknowledged and doubles nothing; a client resumes across a restart with
//! exactly what it missed; nc users read history and search after a restart; a data directory that
//! cannot be used stops the server with words that name it.

mod attack_support;
mod support;

use natter_core::Seq;
use natter_core::wire::{ClientMsg, EventKind, Resume, RoomEvent, ServerMsg};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout};

async fn start(dir: &Path, listen: &str) -> (Child, SocketAddr) {
    start_with(dir, listen, "").await
}

/// [`start`] with more `[limits]` lines.
async fn start_with(dir: &Path, listen: &str, limits: &str) -> (Child, SocketAddr) {
    // A join replays one line, so `/history` has something to show. The detection wait is
    // patient (see `patient`): binary clients stay binary on a loaded machine, nc users press
    // Enter.
    let config = dir.join("natter-server.toml");
    let wait = natter_server::PATIENT_DETECT_WAIT.0;
    std::fs::write(
        &config,
        format!("[limits]\nhistory_on_join = 1\ntext_detect_wait_ms = {wait}\n{limits}"),
    )
    .unwrap();
    let (child, _log, addr) = spawn_server(
        &[
            "--listen",
            listen,
            "--data-dir",
            &dir.display().to_string(),
            "--config",
            &config.display().to_string(),
        ],
        &[("NATTER_EPHEMERAL", "false")],
    )
    .await;
    (child, addr)
}

async fn kill_9(child: &mut Child) {
    child.start_kill().expect("SIGKILL natter-server");
    timeout(WAIT, child.wait())
        .await
        .expect("natter-server did not die")
        .expect("wait");
}

/// Every event of `room`, read back through scrollback (`Older`) from the newest.
async fn history(addr: SocketAddr, room: &str) -> Vec<RoomEvent> {
    let (mut c, _) = BinClient::hello(addr, "reader", None).await;
    c.join(room).await;
    let mut all: Vec<RoomEvent> = Vec::new();
    let mut before = Seq(u64::MAX);
    for _ in 0..1_000 {
        c.send(&ClientMsg::Older {
            room: support::room(room),
            before,
            limit: 200,
        })
        .await;
        let mut page = Vec::new();
        let at_start = loop {
            match c
                .expect(
                    |m| matches!(m, ServerMsg::Past(_) | ServerMsg::PastEnd { .. }),
                    "history",
                )
                .await
            {
                ServerMsg::Past(ev) => page.push(ev),
                ServerMsg::PastEnd { at_start, .. } => break at_start,
                _ => unreachable!(),
            }
        };
        if let Some(first) = page.first() {
            before = first.seq;
        }
        page.extend(all);
        all = page;
        if at_start {
            return all;
        }
    }
    panic!("history of {room} did not end");
}

fn said_by(events: &[RoomEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Say { text, .. } => Some((e.from.to_string(), text.to_string())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Found (or built) first: the writer below says nothing while the CLI runs, and a build
    // taking minutes would have it dropped for not answering the server's ping.
    let natter = attack_support::natter_cli();
    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    // A writer sends as fast as flood control lets it and notes what was acknowledged.
    let (mut w, _) = BinClient::hello(addr, "writer", None).await;
    w.join("#crash").await;
    // And the natter CLI in line mode pipes lines in: it exits 0 only once all are acknowledged.
    let mut cli = Command::new(natter)
        .args(["--nick", "piper", "--room", "#crash", "--wait", "20"])
        .arg(addr.to_string())
        // No user config file: a home of its own.
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start natter");
    let mut stdin = cli.stdin.take().expect("piped stdin");
    for i in 0..20 {
        stdin
            .write_all(format!("piped {i}\n").as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    let cli_ok = timeout(Duration::from_secs(30), cli.wait())
        .await
        .expect("natter did not exit")
        .expect("wait for natter")
        .success();
    assert!(
        cli_ok,
        "the CLI's lines were all acknowledged before the crash"
    );
    let mut acked: HashSet<String> = HashSet::new();
    let mut sent = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut i = 0u32;
    while Instant::now() < deadline && acked.len() < 40 {
        let t = format!("burst {i}");
        let id = w.say("#crash", &t).await;
        sent.push((id, t));
        i += 1;
        while let Got::Msg(m) = w.next_msg(Duration::from_millis(20)).await {
            if let ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { id, .. },
                ..
            }) = m
                && let Some((_, t)) = sent.iter().find(|(s, _)| *s == id)
            {
                acked.insert(t.clone());
            }
        }
    }
    // More in flight, then the crash.
    for j in 0..10 {
        w.say("#crash", &format!("in flight {j}")).await;
    }
    kill_9(&mut server).await;

    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    let events = history(addr, "#crash").await;
    // Seqs are one room's: strictly increasing, never reused.
    assert!(events.windows(2).all(|p| p[0].seq < p[1].seq), "{events:?}");
    let said = said_by(&events);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, t) in &said {
        *count.entry(t.as_str()).or_default() += 1;
    }
    assert!(
        count.values().all(|&n| n == 1),
        "a line was stored twice: {count:?}"
    );
    for t in &acked {
        assert!(
            count.contains_key(t.as_str()),
            "acknowledged {t:?} was lost"
        );
    }
    for i in 0..20 {
        let t = format!("piped {i}");
        assert!(count.contains_key(t.as_str()), "the CLI's {t:?} was lost");
    }
    // In order: the writer's lines are stored in the order it sent them.
    let order: Vec<&str> = said
        .iter()
        .filter(|(n, _)| n == "writer")
        .map(|(_, t)| t.as_str())
        .filter(|t| t.starts_with("burst "))
        .collect();
    let nums: Vec<u32> = order
        .iter()
        .map(|t| t["burst ".len()..].parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|p| p[0] < p[1]), "{nums:?}");
    assert!(
        acked.len() >= 10,
        "the test made too few acknowledged messages"
    );
    sigterm(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_across_a_restart_with_exactly_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    let (mut alice, welcome) = BinClient::hello(addr, "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    alice.join("#r").await;
    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    bob.join("#r").await;
    bob.say("#r", "seen by alice").await;
    let seen = match alice
        .expect(
            |m| matches!(m, ServerMsg::Event(e) if matches!(e.kind, EventKind::Say { .. })),
            "bob's line",
        )
        .await
    {
        ServerMsg::Event(e) => e.seq,
        _ => unreachable!(),
    };
    drop(alice);
    for i in 1..=12 {
        let line = format!("missed {i}");
        bob.say("#r", &line).await;
        // Its echo: it is durable.
        bob.expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Say { text, .. }, .. }) if text.as_str() == line),
            "echo",
        )
        .await;
    }
    kill_9(&mut server).await;
    let (mut server, addr) = start(dir.path(), &addr.to_string()).await;
    let (mut alice, welcome) = BinClient::hello(
        addr,
        "alice",
        Some(Resume {
            token,
            rooms: vec![(support::room("#r"), seen)],
        }),
    )
    .await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: true, nick, .. } if nick.as_str() == "alice"),
        "{welcome:?}"
    );
    let got = alice.msgs_for(Duration::from_millis(800)).await;
    assert!(
        !got.iter().any(|m| matches!(m, ServerMsg::Gap { .. })),
        "{got:?}"
    );
    let lines = said(&got);
    let want: Vec<String> = (1..=12).map(|i| format!("missed {i}")).collect();
    assert_eq!(lines, want, "{got:?}");
    sigterm(&mut server).await;
}

/// Issue 16: after `kill -9` every acknowledged message is in history exactly once. A client
/// counting its message ids from 0 (PROTOCOL.md allows it) resends its first message after the
/// restart, its acknowledgement lost with the connection: it was taken again, stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_id_0_resent_after_a_kill_is_acknowledged_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    let (mut alice, welcome) = BinClient::hello(addr, "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    alice.join("#z").await;
    let first = ClientMsg::Say {
        room: support::room("#z"),
        id: natter_core::MsgId(0),
        text: support::text("counted from zero"),
    };
    alice.send(&first).await;
    let seen = match alice
        .expect(
            |m| matches!(m, ServerMsg::Event(e) if matches!(e.kind, EventKind::Say { .. })),
            "the echo",
        )
        .await
    {
        ServerMsg::Event(e) => e.seq,
        _ => unreachable!(),
    };
    kill_9(&mut server).await;
    drop(alice);
    let (mut server, addr) = start(dir.path(), &addr.to_string()).await;
    let (mut alice, welcome) = BinClient::hello(
        addr,
        "alice",
        Some(Resume {
            token,
            rooms: vec![(support::room("#z"), seen)],
        }),
    )
    .await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: true, .. }),
        "{welcome:?}"
    );
    alice.send(&first).await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Ack { id } if id.0 == 0),
            "an Ack for the resend",
        )
        .await;
    let lines = said_by(&history(addr, "#z").await);
    assert_eq!(
        lines,
        [("alice".to_owned(), "counted from zero".to_owned())],
        "stored once"
    );
    sigterm(&mut server).await;
}

/// Someone who reads without writing for longer than the resume grace was connected all the
/// same: after a restart (a crash, or a stop) their client resumes. Before, a restarted server
/// took back only the sessions whose record had changed within the grace, and told everyone
/// else "could not resume the session".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_client_connected_longer_than_the_grace_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let grace = "resume_grace_ms = 1000\n";
    let (mut server, addr) = start_with(dir.path(), "127.0.0.1:0", grace).await;
    let (mut lurker, welcome) = BinClient::hello(addr, "lurker", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    lurker.join("#r").await;
    // Connected, saying nothing, past the grace.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    kill_9(&mut server).await;
    drop(lurker);
    let (mut server, addr) = start_with(dir.path(), &addr.to_string(), grace).await;
    let (_lurker, welcome) = BinClient::hello(
        addr,
        "lurker",
        Some(Resume {
            token,
            rooms: vec![(support::room("#r"), Seq(1))],
        }),
    )
    .await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: true, nick, .. } if nick.as_str() == "lurker"),
        "{welcome:?}"
    );
    sigterm(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nc_reads_history_and_searches_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    let (mut a, nick_a) = TextClient::entered(addr, "a").await;
    for w in [
        "apples are red",
        "bananas are yellow",
        "cherries are red too",
    ] {
        a.send(w).await;
    }
    // The lines are durable once a reader sees them.
    let (mut b, _) = TextClient::entered(addr, "b").await;
    let _ = b.lines_for(Duration::from_millis(300)).await;
    drop(a);
    sigterm(&mut server).await;

    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    let (mut c, _) = TextClient::entered(addr, "c").await;
    let _ = c.lines_for(Duration::from_millis(300)).await;
    c.send("/search red").await;
    let hits = c.lines_for(Duration::from_millis(800)).await;
    assert!(
        hits.iter()
            .any(|l| l.ends_with(&format!("<{nick_a}> cherries are red too"))),
        "{hits:?}"
    );
    assert!(hits.iter().any(|l| l == "-- 2 results"), "{hits:?}");
    c.send("/search \"red\" -yellow NEAR(").await;
    let hostile = c.lines_for(Duration::from_millis(800)).await;
    assert!(hostile.iter().any(|l| l.starts_with("-- ")), "{hostile:?}");
    assert!(
        !hostile.iter().any(|l| l.starts_with("ERROR")),
        "{hostile:?}"
    );
    c.send("/history 2").await;
    let h = c.lines_for(Duration::from_millis(800)).await;
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[2], "-- (/history #lobby shows older lines)", "{h:?}");
    // Page back to the start: every line said before the restart, once, in order.
    c.send("/history 20").await;
    let more = c.lines_for(Duration::from_millis(800)).await;
    let all: Vec<&String> = more.iter().chain(&h).collect();
    let ours: Vec<&str> = all
        .iter()
        .filter_map(|l| l.split_once(&format!("<{nick_a}> ")).map(|(_, t)| t))
        .collect();
    assert_eq!(
        ours,
        [
            "apples are red",
            "bananas are yellow",
            "cherries are red too"
        ],
        "{all:?}"
    );
    assert_eq!(
        more.last().map(String::as_str),
        Some("-- (the beginning of #lobby)")
    );
    // `printf '/search red\n/history 20' | nc -N`: the store's answers come before the goodbye
    // (the end of input is a quit, and it waits for them).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut script = support::connect(addr).await;
        script.write_all(b"/search red\n/history 20").await.unwrap();
        script.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), script.read_to_end(&mut got))
            .await
            .expect("the server closes once it has answered")
            .unwrap();
        let got = String::from_utf8(got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert!(lines.contains(&"-- 2 results"), "{got}");
        assert!(lines.contains(&"-- (the beginning of #lobby)"), "{got}");
        assert_eq!(lines.last(), Some(&"-- goodbye"), "{got}");
    }
    sigterm(&mut server).await;
}

/// A first start says it made a new store, in one line (it said "store schema upgraded" once
/// per step of the schema's history, eleven lines), and a second start says nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_is_one_line_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--data-dir", data.as_str()];
    let env = [("NATTER_EPHEMERAL", "false")];
    for first in [true, false] {
        let (mut child, _log, _addr, seen) = spawn_server_seen(&args, &env, SERVER_START).await;
        let about = |what: &str| seen.iter().filter(|l| l.contains(what)).count();
        assert_eq!(about("new store created"), usize::from(first), "{seen:?}");
        assert_eq!(about("schema"), usize::from(first), "{seen:?}");
        sigterm(&mut child).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_data_dir_stops_the_server_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    for bad in [file.clone(), dir.path().join("corrupt")] {
        if bad.ends_with("corrupt") {
            std::fs::create_dir_all(&bad).unwrap();
            std::fs::write(bad.join("natter.db"), vec![0x42; 8192]).unwrap();
        }
        let out = timeout(
            WAIT,
            Command::new(env!("CARGO_BIN_EXE_natter-server"))
                .args(["--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&bad)
                .env_remove("NATTER_EPHEMERAL")
                // An operator's error is words, not a backtrace, whatever the environment.
                .env("RUST_BACKTRACE", "1")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("natter-server did not stop")
        .expect("run natter-server");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&bad.display().to_string()), "{err}");
        // One line saying it, each cause once.
        let said = err
            .lines()
            .find(|l| l.contains(" ERROR natter_server: cannot start error="))
            .unwrap_or_else(|| panic!("no error line: {err}"));
        assert!(
            !err.contains("backtrace") && !err.contains("Caused by"),
            "{err}"
        );
        if bad == file {
            assert!(said.ends_with("it is a file, not a directory"), "{err}");
        } else {
            assert!(said.contains("not a natter store or is damaged"), "{err}");
        }
    }
}

/// `[store] max_bytes` counts bytes: a number that reads as a size in other units (`10`, for
/// 10 GiB) stops the server at start, naming the key and the least it takes, instead of pruning
/// every line but the newest as soon as it is stored. 0 (no limit) and the least are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_size_limit_too_small_to_keep_anything_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("natter.toml");
    let config_arg = config.display().to_string();
    let write = |max: u64| {
        let toml = format!(
            "[store]\ndata_dir = {:?}\nmax_bytes = {max}\n",
            data.display()
        );
        std::fs::write(&config, toml).unwrap();
    };
    write(10);
    let out = timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .args(["--listen", "127.0.0.1:0", "--config", &config_arg])
            .env_remove("NATTER_EPHEMERAL")
            .env_remove("NATTER_DATA_DIR")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("natter-server did not stop")
    .expect("run natter-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let said = err
        .lines()
        .find(|l| l.contains(" ERROR natter_server: cannot start error="))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(said.contains("max_bytes = 10 "), "{err}");
    assert!(said.contains("1048576"), "{err}");
    assert!(!data.join("natter.db").exists(), "no store made: {err}");
    for fine in [0, 1 << 20] {
        write(fine);
        let (mut server, _log, _addr, seen) = spawn_server_seen(
            &["--listen", "127.0.0.1:0", "--config", &config_arg],
            &[("NATTER_EPHEMERAL", "false")],
            SERVER_START,
        )
        .await;
        assert!(
            seen.iter()
                .any(|l| l.contains("store open") && l.contains(&format!("max_bytes={fine}"))),
            "{seen:?}"
        );
        sigterm(&mut server).await;
    }
}

/// A store whose damage opening it does not reach (a page of a table the start reads) stops the
/// server too, with the file's path, not only "cannot read the store".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_damaged_past_its_first_page_stops_the_server_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    // A session to store, so that its table has a page of its own to damage.
    let (_c, _) = BinClient::hello(addr, "alice", None).await;
    kill_9(&mut server).await;
    let db = dir.path().join("natter.db");
    let root: i64 = {
        // Closing the connection folds the log into the file, which is then all there is.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sessions'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(!dir.path().join("natter.db-wal").exists());
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start((root as u64 - 1) * 4096)).unwrap();
        f.write_all(&[0x42; 4096]).unwrap();
    }
    let out = timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("NATTER_EPHEMERAL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("natter-server did not stop")
    .expect("run natter-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let said = err
        .lines()
        .find(|l| l.contains(" ERROR natter_server: cannot start error="))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(said.contains(&db.display().to_string()), "{err}");
    assert!(said.contains("damaged"), "{err}");
}

/// README's backup and restore, followed literally (`sqlite3 natter.db ".backup copy"` while the
/// server runs; stop it, put the copy in place without `-wal` and `-shm`, start it): a room's seqs
/// go on after the last one given out before the restore, not again from the copy's (issue 16:
/// "a room's seqs never restart"). Before, the next line in the room took a seq a client had
/// already seen for another line, so that client dropped it as a line it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_gives_no_seq_out_again() {
    if Command::new("sqlite3")
        .arg("-version")
        .output()
        .await
        .is_err()
    {
        eprintln!("sqlite3 is not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path(), "127.0.0.1:0").await;
    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    bob.join("#r").await;
    let said_line = |line: String| move |m: &ServerMsg| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Say { text, .. }, .. }) if text.as_str() == line);
    let mut seen = Seq(0);
    for i in 1..=3 {
        let line = format!("before {i}");
        bob.say("#r", &line).await;
        bob.expect(said_line(line), "echo").await;
    }
    let copy = dir.path().join("natter-backup.db");
    let backup = Command::new("sqlite3")
        .arg(dir.path().join("natter.db"))
        .arg(format!(".backup {}", copy.display()))
        .output()
        .await
        .expect("sqlite3 runs");
    assert!(backup.status.success(), "{backup:?}");
    for i in 1..=5 {
        let line = format!("after {i}");
        bob.say("#r", &line).await;
        if let ServerMsg::Event(e) = bob.expect(said_line(line), "echo").await {
            seen = e.seq;
        }
    }
    drop(bob);
    sigterm(&mut server).await;
    for f in ["natter.db-wal", "natter.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::rename(&copy, dir.path().join("natter.db")).unwrap();
    let (mut server, addr) = start(dir.path(), &addr.to_string()).await;
    let (mut carol, _) = BinClient::hello(addr, "carol", None).await;
    carol.join("#r").await;
    carol.say("#r", "after the restore").await;
    let ServerMsg::Event(e) = carol
        .expect(said_line("after the restore".into()), "echo")
        .await
    else {
        unreachable!()
    };
    assert!(
        e.seq > seen,
        "{:?} was given out before the restore ({seen:?})",
        e.seq
    );
    sigterm(&mut server).await;
}

/// README: the data directory is `--data-dir`, else `NATTER_DATA_DIR`, else
/// `$XDG_DATA_HOME/natter`; store/README.md: the variable counts when "set and not empty". Set
/// but blank (an env file's `NATTER_DATA_DIR=`, a compose file's `${NATTER_DATA_DIR}` left
/// unset) stopped the server instead, with "a value is required for '--data-dir <PATH>' but
/// none was supplied": a flag the operator never typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_natter_data_dir_is_the_default_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let xdg_path = xdg.display().to_string();
    let env = [
        ("NATTER_EPHEMERAL", "false"),
        ("NATTER_DATA_DIR", ""),
        ("XDG_DATA_HOME", xdg_path.as_str()),
    ];
    let (mut child, _log, _addr, seen) =
        spawn_server_seen(&["--listen", "127.0.0.1:0"], &env, SERVER_START).await;
    let db = xdg.join("natter").join("natter.db").display().to_string();
    assert!(
        seen.iter()
            .any(|l| l.contains("store open") && l.contains(&db)),
        "{seen:#?}"
    );
    sigterm(&mut child).await;
}
