//! Clustered natter (issue 23) from the terminal client's side, with real processes: a
//! nats-server with JetStream, three natter-server nodes, `natter` in line mode given several
//! node addresses, and people on `nc`. Every line reaches every member once, in one order; a
//! node killed with SIGKILL mid-stream costs its users nothing acknowledged: they go on from
//! the next address in their list, each line exactly once, and history holds each once.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::Client;
use support::cluster::{Nats, Nc, Node, natter_server_bin};

/// `natter --nick NICK --room #r ADDR,ADDR,...`.
fn cli(nick: &str, nodes: &[SocketAddr]) -> Client {
    let list: Vec<String> = nodes.iter().map(ToString::to_string).collect();
    Client::start_with(
        nick,
        &[
            "--nick".into(),
            nick.into(),
            "--room".into(),
            "#r".into(),
            list.join(","),
        ],
    )
}

/// The next `n` chat lines a CLI prints in #r, as `<nick> text`.
async fn cli_lines(c: &mut Client, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        let l = c
            .expect_where("a chat line", |l| l.starts_with("[#r] <"))
            .await;
        got.push(l["[#r] ".len()..].to_owned());
    }
    got
}

/// The next `n` chat lines a person on nc sees in its current room, as `<nick> text`.
async fn nc_lines(c: &mut Nc, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(c.expect_where("a chat line", |l| l.starts_with('<')).await);
    }
    got
}

async fn three_nodes(nats: &Nats) -> Vec<Node> {
    let bin = natter_server_bin().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Node::start(&bin, nats, &[]).await);
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_nc_users_on_three_nodes_see_every_line_once_in_one_order() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    let a: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    // Each CLI starts at a different node, the others behind it.
    let mut clis = [
        cli("alice", &[a[0], a[1], a[2]]),
        cli("bob", &[a[1], a[2], a[0]]),
        cli("carol", &[a[2], a[0], a[1]]),
    ];
    for c in &mut clis {
        c.expect_containing("-- you are in #r ").await;
    }
    let mut dave = Nc::join(a[1], "dave", "#r").await;
    let mut erin = Nc::join(a[2], "erin", "#r").await;

    // Everyone talks at once.
    const EACH: usize = 5;
    for i in 0..EACH {
        for c in &mut clis {
            let line = format!("{}{i}", c.name);
            c.send(&line).await;
        }
        dave.send(&format!("dave{i}")).await;
        erin.send(&format!("erin{i}")).await;
    }
    let total = 5 * EACH;
    let mut seen = Vec::new();
    for c in &mut clis {
        seen.push(cli_lines(c, total).await);
    }
    let at_dave = nc_lines(&mut dave, total - EACH).await;
    let at_erin = nc_lines(&mut erin, total - EACH).await;

    let order = &seen[0];
    for nick in ["alice", "bob", "carol", "dave", "erin"] {
        for i in 0..EACH {
            let line = format!("<{nick}> {nick}{i}");
            assert_eq!(
                order.iter().filter(|l| **l == line).count(),
                1,
                "{line}: {order:#?}"
            );
        }
    }
    assert_eq!(&seen[1], order, "bob's order is alice's");
    assert_eq!(&seen[2], order, "carol's order is alice's");
    // nc users do not get their own lines back.
    let others = |me: &str| -> Vec<String> {
        order
            .iter()
            .filter(|l| !l.starts_with(&format!("<{me}>")))
            .cloned()
            .collect()
    };
    assert_eq!(at_dave, others("dave"));
    assert_eq!(at_erin, others("erin"));
    for c in &mut clis {
        c.close_stdin();
    }
    for c in &mut clis {
        assert!(c.exit_status().await.success(), "{} exits cleanly", c.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_costs_its_users_nothing_acknowledged() {
    let nats = Nats::start();
    let mut nodes = three_nodes(&nats).await;
    let a: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    // Alice is on the node that dies; bob talks from another; carol (nc) listens on the third.
    let mut alice = cli("alice", &[a[0], a[1], a[2]]);
    alice.expect_containing("-- you are in #r ").await;
    let mut bob = cli("bob", &[a[1], a[2], a[0]]);
    bob.expect_containing("-- you are in #r ").await;
    let mut carol = Nc::join(a[2], "carol", "#r").await;

    // A stream of lines, one at a time as each is acknowledged (line mode's lockstep).
    const SENT: usize = 30;
    let lines: Vec<String> = (0..SENT).map(|i| format!("m{i:02}")).collect();
    for l in &lines {
        bob.send(l).await;
    }
    bob.expect("[#r] <bob> m08").await;
    nodes[0].kill().await;
    // Every line is acknowledged (bob's echo) even so.
    bob.expect("[#r] <bob> m29").await;

    // Alice's client finds the node gone and goes on from the next address, where its session
    // resumes (resume tokens are the cluster's), and gets every line once.
    alice
        .expect("-- reconnected as alice; picked up where you left off")
        .await;
    alice.expect("[#r] <bob> m29").await;
    // Let any refill still on its way arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.send("back").await;
    // Under the same nick: the session moved, not a new one.
    bob.expect("[#r] <alice> back").await;
    for l in &lines {
        let want = format!("[#r] <bob> {l}");
        assert_eq!(alice.count(&want), 1, "{want}: {:#?}", alice.seen);
        assert_eq!(bob.count(&want), 1, "{want}: {:#?}", bob.seen);
    }
    let at_alice: Vec<&String> = alice
        .seen
        .iter()
        .filter(|l| l.starts_with("[#r] <bob> m"))
        .collect();
    assert!(
        at_alice.windows(2).all(|w| w[0] < w[1]),
        "in order: {at_alice:#?}"
    );
    let mut at_carol = nc_lines(&mut carol, SENT).await;
    assert_eq!(
        at_carol,
        lines
            .iter()
            .map(|l| format!("<bob> {l}"))
            .collect::<Vec<_>>()
    );
    at_carol = nc_lines(&mut carol, 1).await;
    assert!(at_carol[0].ends_with("> back"), "{at_carol:?}");

    // History: someone who comes later, on the third node, gets each line once.
    let mut dave = cli("dave", &[a[2]]);
    // The notice of the join comes after its replay: every line of it is in.
    dave.expect_containing("-- you are in #r ").await;
    for l in &lines {
        let want = format!("[#r] <bob> {l}");
        assert_eq!(dave.count(&want), 1, "{want}: {:#?}", dave.seen);
    }
    for c in [&mut alice, &mut bob, &mut dave] {
        c.close_stdin();
        assert!(c.exit_status().await.success(), "{} exits cleanly", c.name);
    }
}

/// One account on two devices whose address lists start at different nodes (a laptop and a
/// phone behind different balancers): the later sign-in takes the account's user to its node,
/// and the device sent away goes to the next address, where the other is, and both stay there.
/// Before, each device signed in again where it was and sent the other away in turn, 46 times
/// each in 20 seconds, every move a join line in the account's rooms (the thirty-first
/// session's cluster pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_of_one_account_on_two_nodes_settle_on_one() {
    let nats = Nats::start();
    let bin = natter_server_bin().await;
    let nodes = [
        Node::start(&bin, &nats, &[]).await,
        Node::start(&bin, &nats, &[]).await,
    ];
    let (n0, n1) = (nodes[0].addr, nodes[1].addr);
    let mut reg = Client::start("alice", n0, &[]);
    reg.expect("-- connected as alice").await;
    reg.send("/register correct horse").await;
    reg.expect("-- you are signed in as alice").await;
    reg.close_stdin();
    assert!(reg.exit_status().await.success());
    let mut watch = Nc::join(n0, "watch", "#r").await;

    let device = |first: SocketAddr, then: SocketAddr| {
        Client::start_env(
            "alice",
            &[
                "--login".into(),
                "--nick".into(),
                "alice".into(),
                "--room".into(),
                "#r".into(),
                format!("{first},{then}"),
            ],
            &[("NATTER_PASSWORD", "correct horse")],
        )
    };
    let mut laptop = device(n0, n1);
    laptop.expect("-- you are signed in as alice").await;
    let mut phone = device(n1, n0);
    phone.expect("-- you are signed in as alice").await;
    // Time for a few rounds of the old back and forth (a reconnect's first wait is under a
    // second), then each device's line reaches the other: one user, on one node.
    tokio::time::sleep(Duration::from_secs(5)).await;
    laptop.send("from the laptop").await;
    phone.expect("[#r] <alice> from the laptop").await;
    phone.send("from the phone").await;
    laptop.expect("[#r] <alice> from the phone").await;
    watch
        .expect_where("the phone's line", |l| l == "<alice> from the phone")
        .await;
    // The laptop's join, and the phone's when it took the user to its node (a move is not
    // said as a part).
    let joins = watch
        .seen
        .iter()
        .filter(|l| *l == "-- alice joined #r")
        .count();
    assert!(
        joins <= 2,
        "alice came and went {joins} times: {:#?}",
        watch.seen
    );
    for c in [&mut laptop, &mut phone] {
        c.close_stdin();
        assert!(c.exit_status().await.success(), "{} exits cleanly", c.name);
    }
}

/// One account on two devices each given one node (a laptop that knows node 0, a phone that
/// knows node 1): the phone's sign-in takes the account's user to node 1, and the laptop is sent
/// away saying why. Its client comes back to node 0 and signs in by itself, which is held back
/// (it would take the account back and send the phone away, whose client would do the same, for
/// ever: each sign-in a join line in the account's rooms); the laptop, told to sign in
/// (`--login`), ends saying why, and the phone stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_of_one_account_each_given_one_node_do_not_take_it_from_each_other() {
    let nats = Nats::start();
    let bin = natter_server_bin().await;
    let nodes = [
        Node::start(&bin, &nats, &[]).await,
        Node::start(&bin, &nats, &[]).await,
    ];
    let (n0, n1) = (nodes[0].addr, nodes[1].addr);
    let mut reg = Client::start("alice", n0, &[]);
    reg.expect("-- connected as alice").await;
    reg.send("/register correct horse").await;
    reg.expect("-- you are signed in as alice").await;
    reg.close_stdin();
    assert!(reg.exit_status().await.success());
    let mut watch = Nc::join(n0, "watch", "#r").await;

    let device = |only: SocketAddr| {
        Client::start_env(
            "alice",
            &[
                "--login".into(),
                "--nick".into(),
                "alice".into(),
                "--room".into(),
                "#r".into(),
                only.to_string(),
            ],
            &[("NATTER_PASSWORD", "correct horse")],
        )
    };
    let mut laptop = device(n0);
    laptop.expect("-- you are signed in as alice").await;
    let mut phone = device(n1);
    phone.expect("-- you are signed in as alice").await;
    laptop
        .expect_containing("alice is connected through another server of this cluster")
        .await;
    laptop.expect_containing("/login alice <password>").await;
    let status = laptop.exit_status().await;
    // Time for a few rounds of the old back and forth (a reconnect's first wait is under a
    // second): the phone is still alice, on node 1.
    tokio::time::sleep(Duration::from_secs(4)).await;
    phone.send("from the phone").await;
    watch
        .expect_where("the phone's line", |l| l == "<alice> from the phone")
        .await;
    let joins = watch
        .seen
        .iter()
        .filter(|l| *l == "-- alice joined #r")
        .count();
    assert!(
        joins <= 2,
        "alice came and went {joins} times: {:#?}",
        watch.seen
    );
    assert_eq!(
        phone.count("-- you are signed in as alice"),
        1,
        "{:#?}",
        phone.seen
    );
    assert!(!status.success(), "{:#?}", laptop.seen);
    phone.close_stdin();
    assert!(phone.exit_status().await.success());
}
