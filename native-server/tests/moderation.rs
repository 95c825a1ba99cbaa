//! Moderation with the real binary and its store: an nc founder registers a room and bans a
//! binary-protocol user (what the natter CLI speaks), who cannot rejoin; after a restart the
//! ban holds, and `natter-server audit` lists what was done.

mod support;

use natter_core::wire::{ClientMsg, ErrorKind, ServerMsg};
use std::path::Path;
use support::*;
use tokio::process::Child;

async fn start(dir: &Path) -> (Child, std::net::SocketAddr) {
    let (child, _log, addr) = patient_stored_server(dir, &[]).await;
    (child, addr)
}

/// Writes a config naming `root` the server's admin (with a cheap password hash) in `dir`, and
/// returns its path for `--config`.
fn root_is_admin(dir: &Path) -> String {
    let config = dir.join("natter.toml");
    std::fs::write(
        &config,
        "[accounts]\nadmins = [\"root\"]\nhash_cost = { memory_kib = 8192, iterations = 1 }\n",
    )
    .unwrap();
    config.display().to_string()
}

/// alice, an account, founds #mod; bob, an account (always on), joins it and quits; alice
/// kicks him while nothing of him is connected ("too loud"). Returns alice's connection.
async fn bob_kicked_from_mod_while_away(addr: std::net::SocketAddr) -> TextClient {
    let (mut alice, _) = TextClient::entered(addr, "alice").await;
    alice.send("/nick alice").await;
    alice.send("/register correct horse").await;
    alice.expect_has("you are signed in as alice").await;
    alice.send("/join #mod").await;
    alice.send("/register #mod").await;
    alice.expect_has("alice set #mod +r").await;

    let (mut bob, _) = TextClient::entered(addr, "bob").await;
    bob.send("/nick bob").await;
    bob.send("/register correct horse").await;
    bob.expect_has("you are signed in as bob").await;
    bob.send("/join #mod").await;
    alice.expect_has("bob joined #mod").await;
    bob.send("/quit").await;
    bob.expect_closed().await;
    alice.expect_has("bob is away").await;
    alice.send("/kick bob too loud").await;
    alice
        .expect_has("alice put bob out of #mod (too loud)")
        .await;
    alice
}

async fn refused_join(bob: &mut BinClient, room_: &str) -> ServerMsg {
    bob.send(&ClientMsg::Join { room: room(room_) }).await;
    bob.expect(
        |m| {
            matches!(
                m,
                ServerMsg::Error {
                    kind: ErrorKind::Banned,
                    ..
                }
            )
        },
        "a refusal: banned",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nc_founder_bans_a_user_who_stays_out_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path()).await;
    let (mut alice, _) = TextClient::entered(addr, "alice").await;
    alice.send("/nick alice").await;
    alice.send("/register correct horse").await;
    alice.expect_has("you are signed in as alice").await;
    alice.send("/join #mod").await;
    alice.send("/register #mod").await;
    alice.expect_has("alice set #mod +r").await;

    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    bob.join("#mod").await;
    alice.expect_has("bob joined #mod").await;
    alice.send("/ban bob 7d trolling").await;
    alice
        .expect_has("alice put bob out of #mod (trolling)")
        .await;
    bob.expect(
        |m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#mod"),
        "bob is out",
    )
    .await;
    let refusal = refused_join(&mut bob, "#mod").await;
    assert!(format!("{refusal:?}").contains("trolling"), "{refusal:?}");
    bob.send(&ClientMsg::Quit { reason: None }).await;
    bob.expect_closed().await;

    assert!(sigterm(&mut server).await.success());
    let (_server, addr) = start(dir.path()).await;
    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    refused_join(&mut bob, "#mod").await;
    // Someone else still gets in: the room outlived its members.
    let (mut carol, _) = BinClient::hello(addr, "carol", None).await;
    carol.join("#mod").await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["audit", "--room", "#mod", "--data-dir"])
        .arg(dir.path())
        .env_remove("NATTER_EPHEMERAL")
        .output()
        .expect("run natter-server audit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("#mod\talice\t+r")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("#mod\talice\t+b nick:bob")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("kick bob: trolling")),
        "{text}"
    );
}

/// A server ban of a network holds nc users from it at hello, as it holds binary ones: a
/// text connection names no nick in its hello, and the check found no ban for it, so every nc
/// user of a banned network chatted on. The nc user comes through a trusted proxy naming its
/// address (the admin is on loopback, and may not ban its own network).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ban_of_a_network_keeps_nc_users_from_it_out() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let config = root_is_admin(dir.path());
    let (_server, _log, addr) = spawn_stored_server(
        dir.path(),
        &["--config", &config, "--trusted-proxy", "127.0.0.1"],
    )
    .await;
    let (mut root, _) = TextClient::welcomed(addr, "root").await;
    root.send("/nick root").await;
    root.send("/register correct horse").await;
    root.expect_has("you are signed in as root").await;
    root.send("/gban 127.0.0.0/8").await;
    root.expect_has("not yourself").await;
    root.send("/gban 203.0.113.0/24 1h spam").await;
    root.expect_has("203.0.113.0/24 is banned from the server")
        .await;

    let proxied = |ip: &'static str| async move {
        let mut tcp = connect(addr).await;
        tcp.write_all(format!("PROXY TCP4 {ip} 127.0.0.1 5555 8000\r\n").as_bytes())
            .await
            .expect("write the PROXY header");
        TextClient::over(tcp, ip)
    };
    let mut banned = proxied("203.0.113.9").await;
    let lines = banned.expect_closed().await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("you are banned from this server: spam")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("Welcome")), "{lines:?}");
    // Another network's nc user is welcome.
    let mut other = proxied("198.51.100.9").await;
    other.welcome().await;
}

/// bob (password "correct horse") back on the IRC listener `irc`, signed in with SASL PLAIN
/// and past `CAP END`.
async fn bob_back_over_irc(irc: std::net::SocketAddr) -> TextClient {
    let mut back = TextClient::connect(irc, "bob on IRC").await;
    for line in [
        "CAP LS 302",
        "NICK bob",
        "USER bob 0 * :Bob",
        "CAP REQ :sasl",
    ] {
        back.send(line).await;
    }
    back.expect_has("ACK").await;
    back.send("AUTHENTICATE PLAIN").await;
    back.expect_has("AUTHENTICATE +").await;
    // SASL PLAIN's `bob\0bob\0correct horse`, in base64.
    back.send("AUTHENTICATE Ym9iAGJvYgBjb3JyZWN0IGhvcnNl").await;
    back.expect_has(" 903 ").await;
    back.send("CAP END").await;
    back
}

/// An always-on account put out of a room while nothing of it is connected hears who did it
/// and why when it comes back, once, on IRC as a server `NOTICE` (the room is not among the
/// channels it is joined to, and until the thirty-seventh session nothing said why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_kicked_while_away_reads_why_when_it_comes_back_over_irc() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, irc) = patient_durable_irc_server(dir.path()).await;
    let _alice = bob_kicked_from_mod_while_away(addr).await;

    let mut back = bob_back_over_irc(irc).await;
    let told = back
        .expect_has("while you were away, alice put you out of #mod (too loud)")
        .await;
    assert!(told.contains(" NOTICE bob :"), "{told}");
    assert!(
        !back.seen.iter().any(|l| l.contains(" JOIN #mod")),
        "{:?}",
        back.seen
    );
}

/// An always-on account away when a server admin closes its room hears who closed it and why
/// when it comes back, once, on IRC as a server `NOTICE` after its SASL welcome (until the
/// thirty-ninth session it came back and the room was just gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_away_when_its_room_is_closed_reads_why_when_it_comes_back_over_irc() {
    let dir = tempfile::tempdir().unwrap();
    let config = root_is_admin(dir.path());
    let (_server, log, addr) = patient_stored_server(
        dir.path(),
        &["--config", &config, "--irc-listen", "127.0.0.1:0"],
    )
    .await;
    let irc = irc_addr_then_drain(log, "Irc").await;
    let (mut root, _) = TextClient::entered(addr, "root").await;
    root.send("/nick root").await;
    root.send("/register correct horse").await;
    root.expect_has("you are signed in as root").await;

    let (mut bob, _) = TextClient::entered(addr, "bob").await;
    bob.send("/nick bob").await;
    bob.send("/register correct horse").await;
    bob.expect_has("you are signed in as bob").await;
    bob.send("/join #club").await;
    bob.expect_has("#club").await;
    bob.send("/quit").await;
    bob.expect_closed().await;
    root.send("/close #club moved to #new").await;
    root.expect_has("you closed #club: its 1 member left it")
        .await;

    let mut back = bob_back_over_irc(irc).await;
    let told = back
        .expect_has("while you were away, root closed #club (moved to #new)")
        .await;
    assert!(told.contains(" NOTICE bob :"), "{told}");
    assert!(
        !back.seen.iter().any(|l| l.contains(" JOIN #club")),
        "{:?}",
        back.seen
    );
    // Once: the next sign-in hears nothing of it (what its sign-in says comes before the
    // answer to a PING sent after it).
    back.send("QUIT").await;
    back.expect_closed().await;
    let mut again = bob_back_over_irc(irc).await;
    again.send("PING :done").await;
    again.expect_has("PONG").await;
    assert!(
        !again.seen.iter().any(|l| l.contains("while you were away")),
        "{:?}",
        again.seen
    );
}

/// The note kept for an always-on account put out while away is in the store: the server
/// restarts between the kick and the account's return, and it still reads who and why, once
/// (told, the note is written away: a second restart does not bring it back). Until the
/// fortieth session the notes were in memory only and a restart lost them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_kicked_while_away_reads_why_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path()).await;
    let mut alice = bob_kicked_from_mod_while_away(addr).await;
    alice.send("/quit").await;
    alice.expect_closed().await;
    assert!(sigterm(&mut server).await.success());

    let (mut server, addr) = start(dir.path()).await;
    let (mut back, _) = TextClient::entered(addr, "someone").await;
    back.send("/login bob correct horse").await;
    back.expect_has("while you were away, alice put you out of #mod (too loud)")
        .await;
    back.send("/quit").await;
    back.expect_closed().await;
    assert!(sigterm(&mut server).await.success());

    // Told: written away, so neither this server nor the next tells it again.
    let (_server, addr) = start(dir.path()).await;
    let (mut again, _) = TextClient::entered(addr, "someone").await;
    again.send("/login bob correct horse").await;
    again.expect_has("you are signed in as bob").await;
    // What a sign-in says comes before the answer to a later command.
    again.send("/join #after").await;
    again.expect_has("#after").await;
    assert!(
        !again.seen.iter().any(|l| l.contains("while you were away")),
        "{:?}",
        again.seen
    );
}
