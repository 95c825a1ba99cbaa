//! Users on other nodes in a cluster (issue 23) against a real nats-server with JetStream,
//! started by each test on a free port and stopped by its pid, and natter-server nodes with an
//! IRC door on real sockets: an IRC user on one node finds one on another node who shares no
//! room with it (WHOIS, ISON), sees it away (WHOIS's and PRIVMSG's `301`), hears it go away in
//! a shared room (away-notify) and sees it in WHO with `G`, and no longer finds it once it quit;
//! a room whose members are all on the other node is in `LIST`, LUSERS, `Rooms` and its
//! `NAMES` there, with its topic (and `TOPIC` answers with it); a direct message to the other
//! node carries its client-only tags, and a `TAGMSG` to a nick there arrives;
//! the users of a node killed with SIGKILL are forgotten by the cluster once its lease ran out,
//! so a node started after that does not find them either.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_core::wire::{ClientMsg, ServerMsg};
use natter_server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::time::Duration;
use support::{BinClient, TextClient};
use tokio::time::Instant;

/// A node in this process with an IRC door, in the cluster at `nats`.
async fn node(nats: &Nats) -> Server {
    let mut cfg = ServerConfig::local_test_patient();
    cfg.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    support::cluster_node_with(nats.url(), cfg).await
}

/// An IRC user called `nick` on `server`, registered, with the capabilities `caps` (if any).
async fn irc(server: &Server, nick: &str, caps: &str) -> TextClient {
    let mut c = TextClient::connect(server.irc_addrs()[0], nick).await;
    if !caps.is_empty() {
        c.send(&format!("CAP LS 302\r\nCAP REQ :{caps}")).await;
    }
    c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}"))
        .await;
    if !caps.is_empty() {
        c.send("CAP END").await;
    }
    c.expect_has(" 376 ").await;
    c
}

/// The lines answering `command` (up to the one containing `end`).
async fn ask(c: &mut TextClient, command: &str, end: &str) -> Vec<String> {
    c.send(command).await;
    let mut lines = Vec::new();
    loop {
        let l = c.expect(|_| true, "an answer").await;
        let last = l.contains(end);
        lines.push(l);
        if last {
            return lines;
        }
    }
}

/// Asks `command` until an answer (up to `end`) has a line containing `want`: the other
/// node's news comes a moment after the change. Within ten seconds.
async fn until(c: &mut TextClient, command: &str, end: &str, want: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = ask(c, command, end).await;
        if lines.iter().any(|l| l.contains(want)) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{command}: never {want:?}; last: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whois_ison_and_away_know_a_user_on_another_node() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut carol = irc(&a, "carol", "away-notify setname").await;
    let mut bob = irc(&b, "Bob", "setname").await;

    // Bob shares no room with carol: her node knows him all the same, with his IRC names.
    until(
        &mut carol,
        "WHOIS bob",
        " 318 ",
        " 311 carol Bob Bob natter * :Bob",
    )
    .await;
    let lines = ask(&mut carol, "ISON bob dave", " 303 ").await;
    assert!(
        lines.iter().any(|l| l.ends_with(" 303 carol :Bob")),
        "{lines:#?}"
    );

    // Away on his node shows on hers.
    bob.send("AWAY :at lunch").await;
    bob.expect_has(" 306 ").await;
    until(&mut carol, "WHOIS bob", " 318 ", " 301 carol Bob :at lunch").await;
    carol.send("PRIVMSG bob :are you there?").await;
    carol.expect_has(" 301 carol Bob :at lunch").await;
    bob.expect_has("are you there?").await;
    bob.send("AWAY").await;
    bob.expect_has(" 305 ").await;

    // In a shared room: away-notify, and WHO's flag.
    carol.send("JOIN #r").await;
    carol.expect_has(" 366 ").await;
    bob.send("JOIN #r").await;
    bob.expect_has(" 366 ").await;
    carol.expect_has(" JOIN #r").await;
    until(&mut carol, "WHO #r", " 315 ", " Bob H").await;
    bob.send("AWAY :gone fishing").await;
    let away = carol.expect_has(" AWAY :gone fishing").await;
    assert!(away.starts_with(":Bob!"), "{away}");
    until(&mut carol, "WHO #r", " 315 ", " Bob G").await;

    // A new real name (IRC's SETNAME) reaches her as it changes, and her WHO and WHOIS.
    bob.send("SETNAME :Bob Stone").await;
    bob.expect_has(" SETNAME :Bob Stone").await;
    let told = carol.expect_has(" SETNAME :Bob Stone").await;
    assert!(told.starts_with(":Bob!"), "{told}");
    until(&mut carol, "WHO #r", " 315 ", " :0 Bob Stone").await;
    until(
        &mut carol,
        "WHOIS bob",
        " 318 ",
        " 311 carol Bob Bob natter * :Bob Stone",
    )
    .await;

    // Bob quits: nobody has the nick any more.
    bob.send("QUIT :bye").await;
    until(&mut carol, "WHOIS bob", " 318 ", " 401 carol bob ").await;
}

/// A room whose members are all on one node is listed on the other, with its count: a user
/// there can find it (IRC's `LIST`, the binary protocol's `Rooms`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_only_another_nodes_users_are_in_is_listed() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut carol = irc(&a, "carol", "").await;
    let mut dave = irc(&a, "dave", "").await;
    let mut bob = irc(&b, "bob", "").await;
    carol.send("JOIN #onlya").await;
    carol.expect_has(" 366 ").await;
    dave.send("JOIN #onlya").await;
    dave.expect_has(" 366 ").await;
    until(&mut bob, "LIST", " 323 ", " 322 bob #onlya 2 ").await;
    let lines = ask(&mut bob, "LUSERS", " 266 ").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 254 bob 1 :channels formed")),
        "{lines:#?}"
    );
    let lines = ask(&mut bob, "NAMES #onlya", " 366 ").await;
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" 353 bob = #onlya :carol dave")),
        "{lines:#?}"
    );
    let (mut erin, _) = BinClient::hello(b.local_addrs()[0], "erin", None).await;
    erin.send(&ClientMsg::Rooms).await;
    let rooms = erin
        .expect(|m| matches!(m, ServerMsg::Rooms { .. }), "the rooms")
        .await;
    let ServerMsg::Rooms { rooms } = rooms else {
        unreachable!()
    };
    assert!(
        rooms
            .iter()
            .any(|r| r.room.as_str() == "#onlya" && r.members == 2),
        "{rooms:?}"
    );
    carol.send("PART #onlya").await;
    until(&mut bob, "LIST", " 323 ", " 322 bob #onlya 1 ").await;
    dave.send("QUIT").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask(&mut bob, "LIST", " 323 ")
        .await
        .iter()
        .any(|l| l.contains("#onlya"))
    {
        assert!(Instant::now() < deadline, "#onlya is still listed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_topic_a_direct_messages_tags_and_a_tagmsg_reach_another_node() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut carol = irc(&a, "carol", "message-tags").await;
    let mut bob = irc(&b, "bob", "message-tags").await;
    carol.send("JOIN #onlya").await;
    carol.expect_has(" 366 ").await;
    carol.send("TOPIC #onlya :release on friday").await;
    carol.expect_has(" TOPIC #onlya :release on friday").await;
    // Nobody on b is in #onlya: its topic comes from the cluster.
    until(
        &mut bob,
        "LIST",
        " 323 ",
        " 322 bob #onlya 1 :release on friday",
    )
    .await;
    let lines = ask(&mut bob, "TOPIC #onlya", " 333 ").await;
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" 332 bob #onlya :release on friday")),
        "{lines:#?}"
    );
    // carol's direct message to bob, on the other node, with a client-only tag: it comes along.
    carol.send("@+draft/reply=abc PRIVMSG bob :hi from a").await;
    let got = bob.expect_has("PRIVMSG bob :hi from a").await;
    assert!(got.contains("+draft/reply=abc"), "{got}");
    // A TAGMSG (a typing notification) to bob there arrives too (it went nowhere before the
    // thirtieth session).
    carol.send("@+typing=active TAGMSG bob").await;
    let got = bob.expect_has(" TAGMSG bob").await;
    assert!(
        got.starts_with("@+typing=active;msgid=~carol/")
            && got.ends_with(" :carol!carol@natter TAGMSG bob"),
        "{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_users_are_forgotten_so_a_node_started_later_does_not_find_them() {
    let nats = Nats::start();
    // The node to be killed, in its own process, lets its lease run out a second after it
    // stops refreshing it.
    let url = nats.url();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        &url,
        "--cluster-lease-ms",
        "1000",
    ];
    let (mut doomed, _log, addr) =
        support::spawn_server_within(&args, &[support::patient()], support::NODE_START).await;
    let b = node(&nats).await;
    let mut carol = irc(&b, "carol", "").await;
    // Ghost is on the doomed node, in no room.
    let (_ghost, _) = BinClient::hello(addr, "ghost", None).await;
    until(&mut carol, "ISON ghost", " 303 ", " 303 carol :ghost").await;

    doomed.start_kill().expect("SIGKILL the node");
    let _ = doomed.wait().await;
    // Once its lease ran out, carol's node no longer believes ghost's record (and asks the
    // cluster to forget it).
    until(&mut carol, "WHOIS ghost", " 318 ", " 401 carol ghost ").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Carol's record changes after that: a node that heard it has read the bucket past it.
    carol.send("AWAY :brb").await;
    carol.expect_has(" 306 ").await;
    // A node started now believes every record it reads until it has listed the leases
    // itself (a lease later): ghost's is gone, so it does not find ghost, nor count it.
    let c = node(&nats).await;
    let mut dave = irc(&c, "dave", "").await;
    until(&mut dave, "WHOIS carol", " 318 ", " 301 dave carol :brb").await;
    let lines = ask(&mut dave, "WHOIS ghost", " 318 ").await;
    assert!(
        lines.iter().any(|l| l.contains(" 401 dave ghost ")),
        "{lines:#?}"
    );
    let lines = ask(&mut dave, "ISON ghost carol", " 303 ").await;
    assert!(
        lines.iter().any(|l| l.ends_with(" 303 dave :carol")),
        "{lines:#?}"
    );
    let lines = ask(&mut dave, "LUSERS", " 266 ").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 251 dave :There are 2 users")),
        "{lines:#?}"
    );
    // And ghost's nick is free.
    let mut ghost = irc(&c, "ghost", "").await;
    let lines = ask(&mut ghost, "WHOIS ghost", " 318 ").await;
    assert!(
        lines.iter().any(|l| l.contains(" 311 ghost ghost ")),
        "{lines:#?}"
    );
}

/// A registered account connected nowhere (it stays in its rooms) gets the same WHOIS on
/// every node as on its own: away with the words a single node uses, `320` (nothing of it is
/// connected), no `317`; until the thirty-third session other nodes said it was on another
/// node, and nobody said it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whois_of_an_account_connected_nowhere_is_the_same_on_every_node() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let (mut erin, _) = TextClient::entered(a.local_addrs()[0], "erin").await;
    erin.send("/nick erin").await;
    erin.expect_has("you are now known as erin").await;
    erin.send("/register a long passphrase").await;
    erin.expect_has("you are signed in as erin").await;
    erin.send("/join #r").await;
    erin.expect_has("#r").await;
    erin.send("/quit").await;
    erin.expect_closed().await;
    let mut here = irc(&a, "dan", "").await;
    let mut there = irc(&b, "bob", "").await;
    let waits = " 301 {me} erin :not connected; your message waits for them";
    // The numerics of each answer, with the asker's nick taken out.
    let shape = |lines: Vec<String>, me: &str| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| !l.contains(" 317 "))
            .map(|l| {
                let rest = l.split_once(' ').map_or(l.as_str(), |(_, r)| r).to_owned();
                rest.replace(&format!(" {me} "), " ME ")
            })
            .collect()
    };
    let on_hers = until(
        &mut here,
        "WHOIS erin",
        " 318 ",
        &waits.replace("{me}", "dan"),
    )
    .await;
    let on_other = until(
        &mut there,
        "WHOIS erin",
        " 318 ",
        &waits.replace("{me}", "bob"),
    )
    .await;
    for lines in [&on_hers, &on_other] {
        assert!(lines.iter().any(|l| l.contains(" 320 ")), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains(" 317 ")), "{lines:#?}");
    }
    assert_eq!(shape(on_other, "bob"), shape(on_hers, "dan"));
}
