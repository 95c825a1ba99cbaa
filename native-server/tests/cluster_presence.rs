//! Users on other nodes in a cluster (issue 23) against a real nats-server with JetStream,
//! started by each test on a free port and stopped by its pid, and natter-server nodes with an
//! IRC door on real sockets: an IRC user on one node finds one on another node who shares no
//! room with it (WHOIS, ISON), sees it away (WHOIS's and PRIVMSG's `301`), hears it go away in
//! a shared room (away-notify) and sees it in WHO with `G`, and no longer finds it once it quit.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::time::Duration;
use support::TextClient;
use tokio::time::Instant;

/// A node in this process with an IRC door, in the cluster at `nats`.
async fn node(nats: &Nats) -> Server {
    let mut cfg = ServerConfig::local_test();
    cfg.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let mut cluster = natter_cluster::ClusterConfig::new(vec![nats.url()]);
    cluster.ack_timeout = Duration::from_secs(2);
    cluster.lease = Duration::from_secs(3);
    cfg.cluster = Some(cluster);
    natter_server::start(cfg)
        .await
        .expect("a clustered node starts")
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
    let mut carol = irc(&a, "carol", "away-notify").await;
    let mut bob = irc(&b, "Bob", "").await;

    // Bob shares no room with carol: her node knows him all the same.
    let lines = until(&mut carol, "WHOIS bob", " 318 ", " 311 carol Bob ").await;
    assert!(
        lines.iter().any(|l| l.contains("on another natter node")),
        "{lines:#?}"
    );
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

    // Bob quits: nobody has the nick any more.
    bob.send("QUIT :bye").await;
    until(&mut carol, "WHOIS bob", " 318 ", " 401 carol bob ").await;
}
