//! natter-server with its store, as a real process: a room that every member left and that
//! someone joins again goes on with its seqs (the store holds its events), so what is said there
//! is delivered, and its topic is still set. It used to start again at seq 1, which the store
//! refuses: every line said there was refused until the server restarted.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_left_by_everyone_and_joined_again_carries_lines_and_keeps_its_topic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _log, addr) = spawn_stored_server(dir.path(), &[]).await;
    let (mut a, _) = TextClient::welcomed(addr, "a").await;
    a.send("/join #again").await;
    a.expect_has("you are in #again").await;
    a.send("/topic still here").await;
    a.expect_has("set the topic of #again").await;
    a.send("first time").await;
    a.send("/part #again").await;
    a.expect_has("you left #again").await;
    // Nobody is in #again now. Joined again, by a and by b:
    a.send("/join #again").await;
    a.expect_has("you are in #again").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    // Anyone may ask a room's topic, in it or not.
    b.send("/topic #again").await;
    b.expect_has("topic of #again: still here").await;
    b.send("/join #again").await;
    b.expect_has("you are in #again").await;
    b.send("/topic").await;
    b.expect_has("topic of #again: still here").await;
    a.send("second time").await;
    b.expect_has("second time").await;
    let rest = a.lines_for(std::time::Duration::from_millis(300)).await;
    assert!(
        !rest.iter().any(|l| l.starts_with("ERROR")),
        "the line was refused: {rest:?}"
    );
    sigterm(&mut server).await;
}

/// A topic cleared (`/topic -delete`, protocol 9's `ClearTopic`) stays cleared across a crash
/// of the server: the clearing is a stored topic event like a setting, and the room's topic is
/// taken from its last one at the restart. Over IRC, `TOPIC #c :` does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_topic_stays_cleared_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _log, addr) = spawn_stored_server(dir.path(), &[]).await;
    let (mut a, _) = TextClient::welcomed(addr, "a").await;
    a.send("/join #kept").await;
    a.expect_has("you are in #kept").await;
    a.send("/topic first topic").await;
    a.expect_has("set the topic of #kept: first topic").await;
    a.send("/topic -delete").await;
    a.expect_has("cleared the topic of #kept").await;
    a.send("/join #other").await;
    a.expect_has("you are in #other").await;
    a.send("/topic still set").await;
    a.expect_has("set the topic of #other: still set").await;
    // SIGKILL: nothing is flushed at exit, what was acknowledged is in the store.
    server.start_kill().expect("SIGKILL natter-server");
    server.wait().await.expect("wait for natter-server");

    let (mut server, _log, addr) = spawn_stored_server(dir.path(), &[]).await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    b.send("/topic #kept").await;
    b.expect_has("#kept has no topic").await;
    b.send("/topic #other").await;
    b.expect_has("topic of #other: still set").await;
    sigterm(&mut server).await;
}
