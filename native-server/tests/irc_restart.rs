//! An IRC client that keeps its windows (The Lounge, irssi, WeeChat) across a restart of
//! natter-server with a data directory: when it joins its channel again, it is replayed only
//! what was said after the restart, not what it showed before (twice), whether the server was
//! stopped (SIGTERM) or killed (`kill -9`). A newcomer still gets the recent history. That holds
//! for a lurker too, whose join is older than the events a restart loads: the store keeps who is
//! in each room.

mod support;

use std::net::SocketAddr;
use support::*;

/// The caps The Lounge asks for that shape a join's replay.
const CAPS: &str = "batch server-time message-tags";

/// An IRC client registered as `nick` with [`CAPS`].
async fn irc_client(addr: SocketAddr, nick: &str) -> TextClient {
    let mut c = TextClient::connect(addr, nick).await;
    c.send(&format!("CAP LS 302\r\nCAP REQ :{CAPS}")).await;
    c.expect_has(" ACK ").await;
    c.send(&format!(
        "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END"
    ))
    .await;
    c.expect(
        |l| l.starts_with(&format!(":natter.irc 376 {nick} ")),
        "registration",
    )
    .await;
    c
}

/// `c` joins `#r`: the texts of the PRIVMSGs its join replays (none if the join brings no
/// history batch). Reads up to the end of the names list, then the batch if one opens.
async fn join_replay(c: &mut TextClient, nick: &str) -> Vec<String> {
    c.send("JOIN #r").await;
    c.expect_has(&format!(" 366 {nick} #r ")).await;
    let mut said = Vec::new();
    // What follows the names list at once: a history batch, or nothing.
    let next = c.lines_for(std::time::Duration::from_millis(500)).await;
    let mut lines = next.into_iter();
    let Some(open) = lines.next() else {
        return said;
    };
    let id = open
        .strip_prefix(":natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" chathistory #r"))
        .unwrap_or_else(|| panic!("not a history batch: {open}"))
        .to_owned();
    let end = format!(":natter.irc BATCH -{id}");
    let mut rest: Vec<String> = lines.collect();
    // The batch may not have come whole within the wait: read on to its end, bounded.
    while !rest.contains(&end) {
        rest.push(c.expect(|_| true, "the history batch's end").await);
    }
    for l in rest.iter().take_while(|l| **l != end) {
        assert!(l.starts_with(&format!("@batch={id};")), "{l}");
        if let Some((_, t)) = l.split_once(" PRIVMSG #r :") {
            said.push(t.to_owned());
        }
    }
    said
}

/// How the first server ends.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Sigterm,
    Kill9,
}

async fn lounge_back_after(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _, irc) = durable_irc_server(dir.path()).await;
    let mut lounge = irc_client(irc, "lounge").await;
    assert_eq!(
        join_replay(&mut lounge, "lounge").await,
        Vec::<String>::new()
    );
    let mut talker = irc_client(irc, "talker").await;
    join_replay(&mut talker, "talker").await;
    let before: Vec<String> = (1..=3).map(|i| format!("before the restart {i}")).collect();
    for line in &before {
        talker.send(&format!("PRIVMSG #r :{line}")).await;
        // Delivered means committed: a durable server delivers only what the store holds.
        lounge.expect_has(&format!(" PRIVMSG #r :{line}")).await;
    }
    match stop {
        Stop::Sigterm => {
            let status = sigterm(&mut first).await;
            assert_eq!(status.code(), Some(0), "{status:?}");
        }
        Stop::Kill9 => {
            first.start_kill().expect("SIGKILL natter-server");
            tokio::time::timeout(WAIT, first.wait())
                .await
                .expect("natter-server did not die")
                .expect("wait");
        }
    }
    drop((lounge, talker));

    let (mut second, _, irc) = durable_irc_server(dir.path()).await;
    // Someone new to #r gets its recent history: what the store kept, loaded again.
    let mut other = irc_client(irc, "other").await;
    assert_eq!(join_replay(&mut other, "other").await, before, "{stop:?}");
    other
        .send("PRIVMSG #r :after the restart\r\nPING :stored")
        .await;
    // What follows a line on its connection waits for the store: once the PONG is here, the
    // line is in the room for whoever joins next.
    other.expect_has(" PONG ").await;
    // The talker was there at the restart too: it reads the line live once back.
    let mut talker = irc_client(irc, "talker").await;
    assert_eq!(
        join_replay(&mut talker, "talker").await,
        ["after the restart"],
        "{stop:?}"
    );
    // The Lounge reconnects and joins its channel again: only what it did not see.
    let mut lounge = irc_client(irc, "lounge").await;
    assert_eq!(
        join_replay(&mut lounge, "lounge").await,
        ["after the restart"],
        "{stop:?}"
    );
    let status = sigterm(&mut second).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigterm_a_rejoining_irc_client_is_replayed_only_what_came_after() {
    lounge_back_after(Stop::Sigterm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_a_rejoining_irc_client_is_replayed_only_what_came_after() {
    lounge_back_after(Stop::Kill9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_a_lurker_rejoining_is_replayed_only_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _, irc) = durable_irc_server(dir.path()).await;
    let mut lurker = irc_client(irc, "lurker").await;
    join_replay(&mut lurker, "lurker").await;
    let mut talker = irc_client(irc, "talker").await;
    join_replay(&mut talker, "talker").await;
    // More lines than a restart loads (50): the lurker's join is not among them, and it said
    // nothing. Ten at a time, within the talker's flood allowance.
    let lines: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    for ten in lines.chunks(10) {
        let burst: Vec<String> = ten.iter().map(|l| format!("PRIVMSG #r :{l}")).collect();
        talker.send(&burst.join("\r\n")).await;
        let last = ten.last().expect("ten lines");
        lurker.expect_has(&format!(" PRIVMSG #r :{last}")).await;
    }
    first.start_kill().expect("SIGKILL natter-server");
    tokio::time::timeout(WAIT, first.wait())
        .await
        .expect("natter-server did not die")
        .expect("wait");
    drop((lurker, talker));

    let (mut second, _, irc) = durable_irc_server(dir.path()).await;
    // A newcomer gets the recent history: the store has the lines.
    let mut other = irc_client(irc, "other").await;
    let recent = join_replay(&mut other, "other").await;
    assert!(recent.len() >= 40, "{recent:?}");
    assert!(recent.ends_with(&lines[50..]), "{recent:?}");
    other
        .send("PRIVMSG #r :after the restart\r\nPING :stored")
        .await;
    other.expect_has(" PONG ").await;
    // The lurker's client kept its window: none of the old lines again.
    let mut lurker = irc_client(irc, "lurker").await;
    assert_eq!(
        join_replay(&mut lurker, "lurker").await,
        ["after the restart"]
    );
    let status = sigterm(&mut second).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}
