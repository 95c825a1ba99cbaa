//! Clustered natter (issue 23) against a real nats-server with JetStream, started by each test
//! on a free port with its own store directory and stopped by its pid: several nodes share one
//! room with one order, a nick claimed on two nodes at once goes to one, writes are refused
//! while NATS is down and work again when it is back (a part or quit made meanwhile reaches the
//! other nodes then), and a node killed with SIGKILL loses nothing acknowledged (its user goes
//! on from another node with exactly what it missed).

mod support;

use natter_core::wire::{ClientMsg, ErrorKind, EventKind, Re, RoomEvent, ServerMsg};
use natter_core::{RoomName, Seq};
use natter_server::{Server, ServerConfig, start};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{BinClient, Got, TextClient, node_until_joined, room, spawn_server_within};

/// How long anything in these tests may take.
const WAIT: Duration = Duration::from_secs(20);

use natter_cluster::test_server::NatsServer as Nats;

/// Alice's client, resumed at `addr` with `token` after seeing `r` up to `seen`: its welcome
/// says resumed, as alice.
async fn resume_alice(
    addr: SocketAddr,
    token: natter_core::ResumeToken,
    r: &RoomName,
    seen: Seq,
) -> BinClient {
    let resume = natter_core::wire::Resume {
        token,
        rooms: vec![(r.clone(), seen)],
    };
    let (alice, welcome) = BinClient::hello(addr, "alice", Some(resume)).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: true, nick, .. } if nick.as_str() == "alice"),
        "{welcome:?}"
    );
    alice
}

/// A natter-server node in this process, in the cluster at `nats`.
async fn node(nats: &Nats) -> Server {
    support::cluster_node(nats.url()).await
}

/// A node in this process with an IRC door too, whose view of other nodes' leases is short.
async fn node_with_irc(nats: &Nats) -> Server {
    let mut cfg = ServerConfig::local_test_patient();
    cfg.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let mut cluster = natter_cluster::ClusterConfig::new(vec![nats.url()]);
    cluster.lease = Duration::from_millis(900);
    cfg.cluster = Some(cluster);
    start(cfg).await.expect("a clustered node starts")
}

/// A node in its own process (to be `kill -9`ed) whose lease runs out `lease_ms` after it
/// stops refreshing it: the process, its log and its binary door.
async fn doomed_node(
    nats: &Nats,
    lease_ms: &str,
) -> (
    tokio::process::Child,
    tokio::io::BufReader<tokio::process::ChildStderr>,
    SocketAddr,
) {
    let url = nats.url();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        &url,
        "--cluster-lease-ms",
        lease_ms,
    ];
    spawn_server_within(&args, &[support::patient()], support::NODE_START).await
}

/// A chat line event in `r`: (seq, from, text).
fn line_in(m: &ServerMsg, r: &RoomName) -> Option<(Seq, String, String)> {
    match m {
        ServerMsg::Event(RoomEvent {
            room,
            seq,
            from,
            kind: EventKind::Say { text, .. },
            ..
        }) if room == r => Some((*seq, from.to_string(), text.to_string())),
        _ => None,
    }
}

/// The next `n` chat lines `c` gets in `r`.
async fn lines_of(c: &mut BinClient, r: &RoomName, n: usize) -> Vec<(Seq, String, String)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_msg(left).await {
            Got::Msg(m) => got.extend(line_in(&m, r)),
            other => panic!("{}: after {got:?}, {other:?}", c.name),
        }
    }
    got
}

/// The next `n` chat lines a text client gets, as (from, text).
async fn text_lines(c: &mut TextClient, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let l = c.expect(|l| l.starts_with('<'), "a chat line").await;
        if let Some((from, words)) = l[1..].split_once("> ") {
            got.push((from.to_owned(), words.to_owned()));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_room_every_line_once_in_one_order() {
    let nats = Nats::start();
    let nodes = [node(&nats).await, node(&nats).await, node(&nats).await];
    let addr = |i: usize| nodes[i].local_addrs()[0];
    let r = room("#r");
    let (mut alice, _) = BinClient::hello(addr(0), "alice", None).await;
    let (mut bob, _) = BinClient::hello(addr(1), "bob", None).await;
    let (mut carol, _) = TextClient::entered(addr(2), "carol").await;
    let (mut dave, _) = TextClient::entered(addr(0), "dave").await;
    carol.send("/nick carol").await;
    carol.expect_has("carol").await;
    alice.join("#r").await;
    bob.join("#r").await;
    for t in [&mut carol, &mut dave] {
        t.send("/join #r").await;
        t.expect_has("-- you are in #r").await;
    }
    // Everyone is in: alice hears the last join (dave's) before anyone talks.
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join, from, .. }) if from.as_str().starts_with("guest")),
            "dave's join",
        )
        .await;
    const EACH: usize = 10;
    for i in 0..EACH {
        alice.say("#r", &format!("a{i}")).await;
        bob.say("#r", &format!("b{i}")).await;
        carol.send(&format!("c{i}")).await;
    }
    let at_alice = lines_of(&mut alice, &r, 3 * EACH).await;
    let at_bob = lines_of(&mut bob, &r, 3 * EACH).await;
    assert_eq!(at_alice, at_bob, "one order, one numbering at every member");
    let seqs: Vec<u64> = at_alice.iter().map(|l| l.0.0).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let mut words: Vec<&str> = at_alice.iter().map(|l| l.2.as_str()).collect();
    words.sort_unstable();
    words.dedup();
    assert_eq!(words.len(), 3 * EACH, "every line once: {at_alice:?}");
    // People see the same order (without their own lines).
    let order: Vec<(String, String)> = at_alice
        .iter()
        .map(|l| (l.1.clone(), l.2.clone()))
        .collect();
    let at_dave = text_lines(&mut dave, 3 * EACH).await;
    assert_eq!(at_dave, order);
    let at_carol = text_lines(&mut carol, 2 * EACH).await;
    let others: Vec<(String, String)> = order.into_iter().filter(|l| l.0 != "carol").collect();
    assert_eq!(at_carol, others);
    // Nothing arrives twice afterwards.
    assert!(
        alice
            .msgs_for(Duration::from_millis(300))
            .await
            .iter()
            .all(|m| line_in(m, &r).is_none())
    );
    // A direct message crosses to the node its recipient is on, and is acknowledged.
    alice
        .send(&ClientMsg::Msg {
            to: support::nick("carol"),
            id: natter_core::MsgId(1_000),
            text: support::text("psst"),
        })
        .await;
    carol.expect_has("psst").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Direct(d) if d.text.as_str() == "psst"),
            "the direct message back as its acknowledgement",
        )
        .await;
    // A notice stays one across nodes: in the room, and direct (a header on the request).
    alice
        .send(&ClientMsg::Notice {
            room: r.clone(),
            id: natter_core::MsgId(1_001),
            text: support::text("heads up"),
        })
        .await;
    bob.expect(
        |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Notice { text, .. }, .. }) if text.as_str() == "heads up"),
        "the room notice on another node",
    )
    .await;
    carol.expect_has("-alice- heads up").await;
    alice
        .send(&ClientMsg::NoticeTo {
            to: support::nick("carol"),
            id: natter_core::MsgId(1_002),
            text: support::text("beep"),
        })
        .await;
    carol.expect_has("-alice- beep").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::DirectNotice(d) if d.text.as_str() == "beep"),
            "the direct notice back as its acknowledgement",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nick_claimed_on_two_nodes_at_once_goes_to_one() {
    let nats = Nats::start();
    let nodes = [node(&nats).await, node(&nats).await];
    let addr = |i: usize| nodes[i].local_addrs()[0];
    for want in ["sam", "Kim", "lee"] {
        let upper = want.to_uppercase();
        let ((_x, wx), (_y, wy)) = tokio::join!(
            BinClient::hello(addr(0), want, None),
            BinClient::hello(addr(1), &upper, None)
        );
        let nick_of = |w: &ServerMsg| match w {
            ServerMsg::Welcome { nick, .. } => nick.folded(),
            other => panic!("{other:?}"),
        };
        let mut got = [nick_of(&wx), nick_of(&wy)];
        got.sort();
        let want = want.to_lowercase();
        assert_eq!(
            got,
            [want.clone(), format!("{want}_2")],
            "exactly one has {want}"
        );
    }
    // A rename to a nick held on the other node is refused.
    let (mut t, _) = TextClient::entered(addr(1), "t").await;
    t.send("/nick SAM").await;
    t.expect(
        |l| l.starts_with("ERROR:") && l.contains("taken"),
        "nick taken",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_while_nats_is_down_and_work_again_after() {
    let mut nats = Nats::start();
    let nodes = [node(&nats).await, node(&nats).await];
    let r = room("#r");
    let (mut alice, _) = BinClient::hello(nodes[0].local_addrs()[0], "alice", None).await;
    let (mut bob, _) = BinClient::hello(nodes[1].local_addrs()[0], "bob", None).await;
    alice.join("#r").await;
    bob.join("#r").await;
    alice.say("#r", "before").await;
    assert_eq!(lines_of(&mut bob, &r, 1).await[0].2, "before");

    nats.stop();
    let id = alice.say("#r", "during").await;
    let refused = alice
        .expect(
            |m| matches!(m, ServerMsg::Error { re: Re::Msg(i), .. } if *i == id),
            "the refusal",
        )
        .await;
    let ServerMsg::Error { kind, detail, .. } = refused else {
        unreachable!()
    };
    assert_eq!(kind, ErrorKind::NotStored);
    assert!(detail.contains("cluster"), "{detail}");
    // A newcomer's nick cannot be claimed meanwhile: it is told why, and not welcomed.
    let mut zed = BinClient::connect(nodes[1].local_addrs()[0], "zed").await;
    zed.send(&ClientMsg::Hello {
        version: natter_core::wire::PROTOCOL_VERSION,
        nick: support::nick("zed"),
        resume: None,
    })
    .await;
    zed.expect_closed_with(ErrorKind::Unavailable).await;

    nats.run();
    // The nodes reconnect by themselves: a line is taken again within the wait.
    let deadline = Instant::now() + WAIT;
    let mut k = 0;
    let taken = loop {
        assert!(Instant::now() < deadline, "writes never worked again");
        k += 1;
        let words = format!("after{k}");
        let id = alice.say("#r", &words).await;
        let answer = alice
            .expect(
                |m| {
                    line_in(m, &r).is_some_and(|l| l.2 == words)
                        || matches!(m, ServerMsg::Error { re: Re::Msg(i), .. } if *i == id)
                },
                "an echo or a refusal",
            )
            .await;
        if line_in(&answer, &r).is_some() {
            break words;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let at_bob = lines_of(&mut bob, &r, 1).await;
    assert_eq!(
        at_bob[0].2, taken,
        "bob gets the first line taken, and nothing refused"
    );
    // What was acknowledged is in the history a newcomer gets; what was refused is not.
    let (mut eve, _) = BinClient::hello(nodes[1].local_addrs()[0], "eve", None).await;
    eve.join("#r").await;
    let replay: Vec<String> = eve
        .msgs_for(Duration::from_millis(500))
        .await
        .iter()
        .filter_map(|m| line_in(m, &r))
        .map(|l| l.2)
        .collect();
    assert_eq!(replay, ["before".to_owned(), taken]);
}

/// While NATS is down, a part and a quit are done on their node at once (their events cannot be
/// stored; a nick change cannot be: its claim needs NATS): once NATS is back, the other node is
/// told them, and its member list agrees again (`Hub::redo_membership`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_and_a_quit_while_nats_is_down_reach_the_other_node_once_it_is_back() {
    let mut nats = Nats::start();
    let nodes = [node(&nats).await, node(&nats).await];
    let r = room("#r");
    let at = |i: usize| nodes[i].local_addrs()[0];
    let (mut alice, _) = BinClient::hello(at(0), "alice", None).await;
    let (mut carol, _) = BinClient::hello(at(0), "carol", None).await;
    let (mut dave, _) = BinClient::hello(at(0), "dave", None).await;
    let (mut bob, _) = BinClient::hello(at(1), "bob", None).await;
    for c in [&mut alice, &mut carol, &mut dave, &mut bob] {
        c.join("#r").await;
    }
    assert_eq!(who(&mut bob, &r).await, ["alice", "bob", "carol", "dave"]);

    nats.stop();
    let part = ClientMsg::Part {
        room: r.clone(),
        reason: None,
    };
    alice.send(&part).await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Parted { .. }),
            "her part, at once",
        )
        .await;
    carol.send(&ClientMsg::Quit { reason: None }).await;
    carol
        .expect(|m| matches!(m, ServerMsg::Bye { .. }), "her quit, at once")
        .await;
    assert_eq!(who(&mut dave, &r).await, ["bob", "dave"], "node 0, at once");

    nats.run();
    // The nodes reconnect by themselves; the refused part and quit are told again.
    let deadline = Instant::now() + WAIT;
    loop {
        let members = who(&mut bob, &r).await;
        if members == ["bob", "dave"] {
            break;
        }
        assert!(Instant::now() < deadline, "node 1 still lists {members:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(who(&mut dave, &r).await, ["bob", "dave"]);
}

/// While NATS is down, a join of a room the node does not follow yet is refused as quickly as
/// a line is (the room's stream cannot be read or made), not after the node's requests to
/// NATS time out one by one, and the node's other work does not wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_of_a_new_room_while_nats_is_down_is_refused_at_once() {
    let mut nats = Nats::start();
    let node = node(&nats).await;
    let (mut alice, _) = BinClient::hello(node.local_addrs()[0], "alice", None).await;
    alice.join("#r").await;
    nats.stop();
    let asked = Instant::now();
    alice
        .send(&ClientMsg::Join {
            room: room("#elsewhere"),
        })
        .await;
    let refused = alice
        .expect(
            |m| matches!(m, ServerMsg::Error { re: Re::Room(r), .. } if r.as_str() == "#elsewhere"),
            "the join's refusal",
        )
        .await;
    let took = asked.elapsed();
    let ServerMsg::Error { detail, .. } = refused else {
        unreachable!()
    };
    assert!(detail.contains("cluster is unavailable"), "{detail}");
    assert!(took < Duration::from_secs(4), "refused after {took:?}");
    // A line in the room followed already is refused at once too, not after the join.
    let asked = Instant::now();
    let id = alice.say("#r", "meanwhile").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Error { re: Re::Msg(i), .. } if *i == id),
            "the line's refusal",
        )
        .await;
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
}

/// A node's log while NATS is away for a few seconds: the loss said once, the return once
/// (not a line per reconnection attempt, as the NATS client's own events were), the lease's
/// failures once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    use tokio::io::AsyncBufReadExt;
    let mut nats = Nats::start();
    let url = nats.url();
    let args = ["--listen", "127.0.0.1:0", "--cluster", &url];
    // natter-server's default filter, said outright (the tests' support sets RUST_LOG=info).
    let (_node, mut log, _addr) = spawn_server_within(
        &args,
        &[("RUST_LOG", "info,async_nats=warn")],
        support::NODE_START,
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut line = String::new();
        while log.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            let _ = tx.send(std::mem::take(&mut line));
        }
    });
    // Whatever the start said is not the outage's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}

    nats.stop();
    // Long enough for a dozen reconnection attempts and a lease refresh (a third of 15 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    nats.run();
    let mut said = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !said
        .iter()
        .any(|l: &String| l.contains("connected to NATS again"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(l)) => said.push(l),
            _ => panic!("the node never said NATS is back: {said:#?}"),
        }
    }
    let count = |words: &str| said.iter().filter(|l| l.contains(words)).count();
    assert_eq!(count("lost the connection to NATS"), 1, "{said:#?}");
    assert_eq!(count("connected to NATS again"), 1, "{said:#?}");
    assert_eq!(count("IO error"), 0, "{said:#?}");
    assert!(count("node lease not refreshed") <= 1, "{said:#?}");
    assert!(said.len() <= 5, "a few lines, not a flood: {said:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_acknowledged_and_its_user_goes_on_elsewhere() {
    let nats = Nats::start();
    let url = nats.url();
    let args = ["--listen", "127.0.0.1:0", "--cluster", &url];
    let (mut doomed, _log0, addr0) =
        spawn_server_within(&args, &[support::patient()], support::NODE_START).await;
    let (_n1, _log1, addr1) =
        spawn_server_within(&args, &[support::patient()], support::NODE_START).await;
    let r = room("#r");
    let (mut alice, _) = BinClient::hello(addr0, "alice", None).await;
    let (mut bob, _) = BinClient::hello(addr1, "bob", None).await;
    alice.join("#r").await;
    bob.join("#r").await;
    // A stream of lines (paced by flood control: ten at once, then five a second)...
    const SENT: usize = 40;
    for i in 0..SENT {
        alice.say("#r", &format!("a{i}")).await;
    }
    // ...and the node dies in the middle of it, after a dozen acknowledgements.
    let mut acked = lines_of(&mut alice, &r, 12).await;
    doomed.start_kill().expect("SIGKILL the node");
    let _ = doomed.wait().await;
    // Whatever alice got before her connection closed was acknowledged too.
    while let Got::Msg(m) = alice.next_msg(WAIT).await {
        acked.extend(line_in(&m, &r));
    }
    assert!(acked.len() < SENT, "the kill came mid-stream: {acked:?}");
    for i in 0..3 {
        bob.say("#r", &format!("b{i}")).await;
    }
    let mut at_bob = Vec::new();
    while at_bob
        .last()
        .is_none_or(|l: &(Seq, String, String)| l.2 != "b2")
    {
        at_bob.extend(lines_of(&mut bob, &r, 1).await);
    }
    // Every acknowledged line reached bob exactly once; alice's lines in her order, numbered
    // without gaps.
    for a in &acked {
        assert_eq!(
            at_bob.iter().filter(|l| *l == a).count(),
            1,
            "{a:?}: {at_bob:?}"
        );
    }
    let from_alice: Vec<&str> = at_bob
        .iter()
        .filter(|l| l.1 == "alice")
        .map(|l| l.2.as_str())
        .collect();
    let in_order: Vec<String> = (0..from_alice.len()).map(|i| format!("a{i}")).collect();
    assert_eq!(from_alice, in_order);
    let seqs: Vec<u64> = at_bob.iter().map(|l| l.0.0).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let last_seen = acked.last().map_or(Seq(0), |l| l.0);
    let missed: Vec<_> = at_bob.into_iter().filter(|l| l.0 > last_seen).collect();

    // Alice goes on from the other node and asks for what came after the last line she saw.
    let (mut alice, _) = BinClient::hello(addr1, "alice", None).await;
    alice.join("#r").await;
    alice.msgs_for(Duration::from_millis(300)).await;
    alice
        .send(&ClientMsg::History {
            room: r.clone(),
            after: last_seen,
        })
        .await;
    let got = lines_of(&mut alice, &r, missed.len()).await;
    assert_eq!(
        got, missed,
        "exactly what she missed, with the seqs bob saw"
    );
    assert_eq!(got[0].0, Seq(last_seen.0 + 1), "no gap, no repeat");
}

/// The sorted nicks of a member list.
fn sorted(members: &[natter_core::Nick]) -> Vec<String> {
    let mut names: Vec<String> = members.iter().map(ToString::to_string).collect();
    names.sort();
    names
}

/// `c` asks `r`'s member list (`Who`): its nicks, sorted.
async fn who(c: &mut BinClient, r: &RoomName) -> Vec<String> {
    c.send(&ClientMsg::Who { room: r.clone() }).await;
    let got = c
        .expect(
            |m| matches!(m, ServerMsg::Members { .. }),
            "the member list",
        )
        .await;
    let ServerMsg::Members { members, .. } = got else {
        unreachable!()
    };
    sorted(&members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_lists_show_every_nodes_members_and_lose_a_dead_nodes() {
    let nats = Nats::start();
    // The node to be killed lets its lease run out a second after it stops refreshing it.
    let (mut doomed, _log, addr0) = doomed_node(&nats, "1000").await;
    let node1 = node_with_irc(&nats).await;
    let (addr1, irc1) = (node1.local_addrs()[0], node1.irc_addrs()[0]);
    let r = room("#r");
    let (mut alice, _) = BinClient::hello(addr0, "alice", None).await;
    alice.join("#r").await;
    // Bob, on the other node, is told alice is in the room when he joins.
    let (mut bob, _) = BinClient::hello(addr1, "bob", None).await;
    bob.send(&ClientMsg::Join { room: r.clone() }).await;
    let joined = bob
        .expect(|m| matches!(m, ServerMsg::Joined { .. }), "joined")
        .await;
    let ServerMsg::Joined { members, .. } = joined else {
        unreachable!()
    };
    assert_eq!(sorted(&members), ["alice", "bob"]);
    // An IRC user on bob's node gets them all in NAMES, on joining and when asking.
    let mut carol = TextClient::connect(irc1, "carol").await;
    carol.send("NICK carol\r\nUSER carol 0 * :carol").await;
    carol.expect_has(" 376 ").await;
    carol.send("JOIN #r").await;
    let names = carol.expect_has(" 353 carol ").await;
    for who in ["alice", "bob", "carol"] {
        assert!(
            names.split(' ').any(|w| w.trim_start_matches(':') == who),
            "{names}"
        );
    }
    carol.expect_has(" 366 carol #r ").await;
    // Alice, on the other node, sees both in WHO once carol's join reached her node.
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join, from, .. }) if from.as_str() == "carol"),
            "carol's join",
        )
        .await;
    assert_eq!(who(&mut alice, &r).await, ["alice", "bob", "carol"]);

    // Alice's node dies without a word: once its lease runs out, she leaves every list, once.
    doomed.start_kill().expect("SIGKILL the node");
    let _ = doomed.wait().await;
    let quit = bob
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Quit { .. }, from, .. }) if from.as_str() == "alice"),
            "alice's quit",
        )
        .await;
    assert!(matches!(quit, ServerMsg::Event(_)));
    carol
        .expect(
            |l| l.starts_with(":alice") && l.contains(" QUIT "),
            "alice's quit over IRC",
        )
        .await;
    carol.send("NAMES #r").await;
    let names = carol.expect_has(" 353 carol ").await;
    assert!(!names.contains("alice"), "{names}");
    assert_eq!(who(&mut bob, &r).await, ["bob", "carol"]);
    let more_quits = bob
        .msgs_for(Duration::from_millis(1_500))
        .await
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                ServerMsg::Event(RoomEvent {
                    kind: EventKind::Quit { .. },
                    ..
                })
            )
        })
        .count();
    assert_eq!(more_quits, 0, "one quit only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_another_node_after_its_node_is_killed() {
    let nats = Nats::start();
    let url = nats.url();
    let args = ["--listen", "127.0.0.1:0", "--cluster", &url];
    let (mut doomed, _log, addr0) =
        spawn_server_within(&args, &[support::patient()], support::NODE_START).await;
    let node1 = node(&nats).await;
    let addr1 = node1.local_addrs()[0];
    let r = room("#r");
    let (mut alice, welcome) = BinClient::hello(addr0, "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    let (mut bob, _) = BinClient::hello(addr1, "bob", None).await;
    alice.join("#r").await;
    bob.join("#r").await;
    for i in 0..5 {
        alice.say("#r", &format!("a{i}")).await;
    }
    let seen = lines_of(&mut alice, &r, 5).await;
    let last_seen = seen[4].0;
    doomed.start_kill().expect("SIGKILL the node");
    let _ = doomed.wait().await;
    for i in 0..3 {
        bob.say("#r", &format!("b{i}")).await;
    }
    let mut at_bob = Vec::new();
    while at_bob
        .last()
        .is_none_or(|l: &(Seq, String, String)| l.2 != "b2")
    {
        at_bob.extend(lines_of(&mut bob, &r, 1).await);
    }
    let missed: Vec<_> = at_bob.into_iter().filter(|l| l.0 > last_seen).collect();
    assert_eq!(missed.len(), 3, "{missed:?}");

    // Alice's client resumes on the other node with the token her dead node gave her.
    let mut alice = resume_alice(addr1, token, &r, last_seen).await;
    let got = alice.msgs_for(Duration::from_millis(800)).await;
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room, .. } if *room == r)),
        "{got:?}"
    );
    let lines: Vec<_> = got.iter().filter_map(|m| line_in(m, &r)).collect();
    assert_eq!(
        lines, missed,
        "exactly what she missed, with the seqs bob saw"
    );
    assert!(
        got.iter()
            .all(|m| !matches!(m, ServerMsg::Event(e) if e.seq <= last_seen)),
        "nothing she had seen: {got:?}"
    );
    // She is back in the room: bob hears her.
    alice.say("#r", "back").await;
    let heard = lines_of(&mut bob, &r, 1).await;
    assert_eq!(
        (heard[0].1.as_str(), heard[0].2.as_str()),
        ("alice", "back")
    );
}

/// The events `c` gets in answer to `Older` in `r`, up to its end: (seqs, at_start).
async fn older(c: &mut BinClient, r: &RoomName, before: u64, limit: u16) -> (Vec<u64>, bool) {
    c.send(&ClientMsg::Older {
        room: r.clone(),
        before: Seq(before),
        limit,
    })
    .await;
    let mut seqs = Vec::new();
    loop {
        match c
            .expect(
                |m| matches!(m, ServerMsg::Past(_) | ServerMsg::PastEnd { .. }),
                "scrollback",
            )
            .await
        {
            ServerMsg::Past(e) => seqs.push(e.seq.0),
            ServerMsg::PastEnd { at_start, .. } => return (seqs, at_start),
            _ => unreachable!(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_beyond_a_nodes_ring_is_read_from_the_rooms_log() {
    let nats = Nats::start();
    let node0 = node(&nats).await;
    // The second node reads only three events back when it starts following a room.
    let mut cfg = ServerConfig::local_test_patient();
    cfg.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let mut cluster = natter_cluster::ClusterConfig::new(vec![nats.url()]);
    cluster.recent = 3;
    cfg.cluster = Some(cluster);
    let node1 = start(cfg).await.expect("a clustered node starts");
    let r = room("#r");
    let (mut alice, _) = BinClient::hello(node0.local_addrs()[0], "alice", None).await;
    alice.join("#r").await;
    for i in 0..12 {
        alice.say("#r", &format!("a{i}")).await;
    }
    // Alice's join is seq 1, her lines 2 to 13.
    let said = lines_of(&mut alice, &r, 12).await;
    assert_eq!(said.last().map(|l| l.0), Some(Seq(13)));
    let (mut bob, _) = BinClient::hello(node1.local_addrs()[0], "bob", None).await;
    bob.join("#r").await;
    bob.msgs_for(Duration::from_millis(300)).await;
    // Scrollback below the three events the node holds comes from the log, by seq.
    assert_eq!(
        older(&mut bob, &r, 11, 5).await,
        (vec![6, 7, 8, 9, 10], false)
    );
    assert_eq!(older(&mut bob, &r, 3, 10).await, (vec![1, 2], true));
    // So does IRC's CHATHISTORY.
    let mut carol = TextClient::connect(node1.irc_addrs()[0], "carol").await;
    carol
        .send("CAP LS 302\r\nCAP REQ :draft/chathistory batch server-time message-tags")
        .await;
    carol.expect_has(" ACK ").await;
    carol
        .send("NICK carol\r\nUSER carol 0 * :carol\r\nCAP END")
        .await;
    carol.expect_has(" 376 ").await;
    carol.send("JOIN #r").await;
    carol.expect_has(" 366 carol #r ").await;
    carol.send("CHATHISTORY LATEST #r * 20").await;
    carol.expect_has(" BATCH +").await;
    let mut lines = Vec::new();
    loop {
        let l = carol.expect(|_| true, "the history batch").await;
        if l.starts_with(":natter.irc BATCH -") {
            break;
        }
        if let Some((_, t)) = l.split_once(" PRIVMSG #r :") {
            lines.push(t.to_owned());
        }
    }
    let want: Vec<String> = (0..12).map(|i| format!("a{i}")).collect();
    assert_eq!(lines, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_to_another_node_while_its_first_node_lives() {
    let nats = Nats::start();
    let nodes = [node(&nats).await, node(&nats).await];
    let addr = |i: usize| nodes[i].local_addrs()[0];
    let r = room("#r");
    let (mut alice, welcome) = BinClient::hello(addr(0), "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    let (mut carol, _) = BinClient::hello(addr(0), "carol", None).await;
    alice.join("#r").await;
    carol.join("#r").await;
    alice.say("#r", "hello").await;
    let seen = lines_of(&mut alice, &r, 1).await[0].0;
    // Her connection breaks (node 0 lives on) and she resumes on node 1.
    drop(alice);
    let mut alice = resume_alice(addr(1), token, &r, seen).await;
    // Carol, on node 0, sees her join from node 1 and lists her once; nobody sees her quit.
    carol
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join, from, .. }) if from.as_str() == "alice"),
            "alice's join from node 1",
        )
        .await;
    assert_eq!(who(&mut carol, &r).await, ["alice", "carol"]);
    alice.say("#r", "moved").await;
    let heard = lines_of(&mut carol, &r, 1).await;
    assert_eq!(heard[0].2, "moved");
    let quits = carol
        .msgs_for(Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                ServerMsg::Event(RoomEvent {
                    kind: EventKind::Quit { .. },
                    ..
                })
            )
        })
        .count();
    assert_eq!(quits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_another_node_reads_what_its_ring_lacks_from_the_log() {
    let nats = Nats::start();
    let node0 = node(&nats).await;
    // The second node keeps only three events of a room it starts following.
    let mut cfg = ServerConfig::local_test_patient();
    let mut cluster = natter_cluster::ClusterConfig::new(vec![nats.url()]);
    cluster.recent = 3;
    cfg.cluster = Some(cluster);
    let node1 = start(cfg).await.expect("a clustered node starts");
    let r = room("#r");
    let (mut alice, welcome) = BinClient::hello(node0.local_addrs()[0], "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    alice.join("#r").await;
    for i in 0..10 {
        alice.say("#r", &format!("a{i}")).await;
    }
    // Her join is seq 1, her lines 2 to 11; her client got only the first line.
    let said = lines_of(&mut alice, &r, 10).await;
    drop(alice);
    let resume = natter_core::wire::Resume {
        token,
        rooms: vec![(r.clone(), Seq(2))],
    };
    let (mut alice, welcome) =
        BinClient::hello(node1.local_addrs()[0], "alice", Some(resume)).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: true, .. }),
        "{welcome:?}"
    );
    let got = alice.msgs_for(Duration::from_millis(800)).await;
    assert!(
        got.iter().all(|m| !matches!(m, ServerMsg::Gap { .. })),
        "no gap: {got:?}"
    );
    let lines: Vec<_> = got.iter().filter_map(|m| line_in(m, &r)).collect();
    assert_eq!(
        lines,
        said[1..].to_vec(),
        "every line after seq 2, from the log"
    );
}

/// Every line a text client gets up to the first that holds `part`, and any that come soon
/// after.
async fn lines_up_to(c: &mut TextClient, part: &str) -> Vec<String> {
    let mut got = Vec::new();
    while !got.iter().any(|l: &String| l.contains(part)) {
        match c.next_line(WAIT).await {
            Got::Msg(l) => got.push(l),
            other => panic!("{}: waiting for {part:?} after {got:?}: {other:?}", c.name),
        }
    }
    got.extend(c.lines_for(Duration::from_millis(300)).await);
    got
}

/// Whether `m` is a join or quit of `who` (what a member would see as "joined" or "quit").
fn join_or_quit_of(m: &ServerMsg, who: &str) -> bool {
    matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join | EventKind::Quit { .. }, from, .. }) if from.as_str() == who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_stored_as_its_node_is_killed_and_sent_again_elsewhere_is_shown_once_silently() {
    let nats = Nats::start();
    // The node to be killed lets its lease run out 2.5 s after it stops refreshing it (time
    // enough for the resume on a loaded machine), so the other nodes would reap its members
    // during the test.
    let (mut doomed, _log, addr0) = doomed_node(&nats, "2500").await;
    let node1 = node(&nats).await;
    let addr1 = node1.local_addrs()[0];
    // A third node with an IRC door: binary, nc and IRC members there.
    let node2 = node_with_irc(&nats).await;
    let (addr2, irc2) = (node2.local_addrs()[0], node2.irc_addrs()[0]);
    let r = room("#r");
    let (mut alice, welcome) = BinClient::hello(addr0, "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    let (mut bob, _) = BinClient::hello(addr1, "bob", None).await;
    let (mut carol, _) = BinClient::hello(addr2, "carol", None).await;
    alice.join("#r").await;
    bob.join("#r").await;
    carol.join("#r").await;
    let (mut dave, dave_nick) = TextClient::entered(addr2, "dave").await;
    dave.send("/join #r").await;
    dave.expect_has("you are in #r").await;
    let mut erin = TextClient::connect(irc2, "erin").await;
    erin.send("NICK erin\r\nUSER erin 0 * :erin").await;
    erin.expect_has(" 376 ").await;
    erin.send("JOIN #r").await;
    erin.expect_has(" 366 erin #r ").await;
    for who in ["carol", &dave_nick, "erin"] {
        alice
            .expect(
                |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join, from, .. }) if from.as_str() == who),
                "a join on the third node",
            )
            .await;
    }
    for i in 0..3 {
        alice.say("#r", &format!("a{i}")).await;
    }
    let acked = lines_of(&mut alice, &r, 3).await;
    let last_seen = acked[2].0;
    // Alice's next line: the node is killed the moment the log has it (another node hands it
    // to carol), before alice's client can count on an acknowledgement.
    let id = alice.say("#r", "in flight").await;
    let at_carol = lines_of(&mut carol, &r, 4).await;
    assert_eq!(at_carol[3].2, "in flight", "{at_carol:?}");
    doomed.start_kill().expect("SIGKILL the node");
    let _ = doomed.wait().await;
    // What dave and erin were told so far (their joins' replays included) is not looked at.
    dave.expect_has("<alice> in flight").await;
    erin.expect_has("PRIVMSG #r :in flight").await;

    // Her client resumes on node 1 with the token node 0 gave it, and sends the line again,
    // with its id, as the client does with every line it had no acknowledgement for.
    let mut alice = resume_alice(addr1, token, &r, last_seen).await;
    alice
        .send(&ClientMsg::Say {
            room: r.clone(),
            id,
            text: support::text("in flight"),
        })
        .await;
    let got = alice.msgs_for(Duration::from_millis(1_500)).await;
    let lines: Vec<_> = got.iter().filter_map(|m| line_in(m, &r)).collect();
    assert_eq!(
        lines,
        [at_carol[3].clone()],
        "the stored line once, with the seq carol saw: {got:?}"
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Ack { id: acked } if *acked == id)),
        "the resend is acknowledged: {got:?}"
    );
    // Node 0's lease runs out meanwhile: nobody is told alice joined or quit, on any door.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    // Her client's ids go on from where they were (this test client's would start again).
    alice
        .send(&ClientMsg::Say {
            room: r.clone(),
            id: natter_core::MsgId(id.0 + 1),
            text: support::text("back"),
        })
        .await;
    // Bob has not read past the lines acknowledged to alice; carol has read "in flight".
    for (c, once_more) in [(&mut bob, 1), (&mut carol, 0)] {
        let mut seen = Vec::new();
        loop {
            let m = c
                .expect(|m| matches!(m, ServerMsg::Event(_)), "an event")
                .await;
            let done = line_in(&m, &r).is_some_and(|l| l.2 == "back");
            if matches!(&m, ServerMsg::Event(e) if e.seq > last_seen) {
                seen.push(m);
            }
            if done {
                break;
            }
        }
        assert!(
            !seen.iter().any(|m| join_or_quit_of(m, "alice")),
            "{seen:?}"
        );
        let in_flight = seen
            .iter()
            .filter(|m| line_in(m, &r).is_some_and(|l| l.2 == "in flight"))
            .count();
        assert_eq!(in_flight, once_more, "{}: {seen:?}", c.name);
    }
    let dave_saw = lines_up_to(&mut dave, "<alice> back").await;
    let erin_saw = lines_up_to(&mut erin, "PRIVMSG #r :back").await;
    for l in dave_saw.iter().chain(&erin_saw) {
        assert!(
            !(l.contains("alice") && (l.contains("joined") || l.contains("quit"))),
            "{l}"
        );
        assert!(
            !(l.starts_with(":alice") && (l.contains(" JOIN ") || l.contains(" QUIT "))),
            "{l}"
        );
    }
    assert_eq!(who(&mut carol, &r).await, {
        let mut m = vec!["alice", "bob", "carol", &dave_nick, "erin"];
        m.sort();
        m
    });
    // In the room's history (read from the log by a node that starts following the room
    // now), every line once.
    let node3 = node(&nats).await;
    let (mut frank, _) = BinClient::hello(node3.local_addrs()[0], "frank", None).await;
    frank.join("#r").await;
    frank
        .send(&ClientMsg::History {
            room: r.clone(),
            after: Seq(0),
        })
        .await;
    let mut history = Vec::new();
    while history
        .last()
        .is_none_or(|l: &(Seq, String, String)| l.2 != "back")
    {
        history.extend(lines_of(&mut frank, &r, 1).await);
    }
    let texts: Vec<&str> = history.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(texts, ["a0", "a1", "a2", "in flight", "back"]);
}

/// `/readyz` on a node's metrics endpoint: its status and body.
async fn readyz(addr: SocketAddr) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect to the metrics endpoint");
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: ops\r\n\r\n")
        .await
        .expect("write");
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut all))
        .await
        .expect("read timed out")
        .expect("read");
    let all = String::from_utf8_lossy(&all).into_owned();
    let status = all
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {all:?}"));
    (status, all)
}

/// Polls `/readyz` until its status is `want` (bounded by [`WAIT`]); returns the last body.
async fn readyz_becomes(addr: SocketAddr, want: u16) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(addr).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A node whose link to NATS is down refuses new rooms, lines and settings changes, so a
/// balancer must not send it new clients: `/readyz` says 503 and why, and 200 again once NATS
/// is back (README, "Operations").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_not_ready_while_nats_is_down_and_ready_once_it_is_back() {
    let mut nats = Nats::start();
    let mut cfg = ServerConfig::local_test_patient();
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let mut cluster = natter_cluster::ClusterConfig::new(vec![nats.url()]);
    cluster.ack_timeout = Duration::from_secs(2);
    cluster.lease = Duration::from_secs(3);
    cfg.cluster = Some(cluster);
    let node = start(cfg).await.expect("a clustered node starts");
    let metrics = node.metrics_addr().expect("a metrics endpoint");
    readyz_becomes(metrics, 200).await;

    nats.stop();
    let body = readyz_becomes(metrics, 503).await;
    assert!(body.contains("cluster is unavailable"), "{body}");

    nats.run();
    readyz_becomes(metrics, 200).await;
    node.shutdown().await.expect("the node stops");
}

/// A node in this process whose lease is `lease`.
async fn node_with_lease(nats: &Nats, lease: Duration) -> Server {
    let mut cfg = ServerConfig::local_test_patient();
    let mut cluster = natter_cluster::ClusterConfig::new(vec![nats.url()]);
    cluster.ack_timeout = Duration::from_secs(2);
    cluster.lease = lease;
    cfg.cluster = Some(cluster);
    start(cfg).await.expect("a clustered node starts")
}

/// A node stopped on purpose (SIGTERM, `Server::shutdown`) says so to the cluster: its members
/// leave the other nodes' lists at their next listing of leases (a third of a lease), not once
/// its lease has run out as a killed node's do, and its users' nicks are free at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_on_purpose_lets_its_members_go_at_once() {
    let nats = Nats::start();
    let lease = Duration::from_secs(9);
    let stays = node_with_lease(&nats, lease).await;
    let goes = node_with_lease(&nats, lease).await;
    let started = Instant::now();
    let r = room("#r");
    let (mut alice, _) = BinClient::hello(stays.local_addrs()[0], "alice", None).await;
    alice.join("#r").await;
    let (mut bob, _) = TextClient::entered(goes.local_addrs()[0], "bob").await;
    bob.send("/nick bob").await;
    bob.expect_has("you are now known as bob").await;
    bob.send("/join #r").await;
    bob.expect_has("-- you are in #r").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join, from, .. }) if from.as_str() == "bob"),
            "bob's join",
        )
        .await;
    // A node takes others for gone only after a whole lease of its own listings, the first a
    // third of a lease after it started.
    let healthy = started + lease + lease / 3 + Duration::from_secs(1);
    tokio::time::sleep(healthy.saturating_duration_since(Instant::now())).await;

    goes.shutdown().await.expect("the node stops");
    let stopped = Instant::now();
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Quit { .. }, from, .. }) if from.as_str() == "bob"),
            "bob's quit",
        )
        .await;
    let took = stopped.elapsed();
    assert!(
        took < lease / 3 + Duration::from_millis(1_500),
        "bob left the list {took:?} after his node stopped (lease {lease:?})"
    );
    assert_eq!(who(&mut alice, &r).await, ["alice"]);
}

/// While NATS is down a direct message to a user on another node is refused at once, as a line
/// is, and not held until NATS is back (then delivered late, its sender told nothing meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_while_nats_is_down_is_refused_at_once() {
    let mut nats = Nats::start();
    let nodes = [node(&nats).await, node(&nats).await];
    let (mut alice, _) = BinClient::hello(nodes[0].local_addrs()[0], "alice", None).await;
    let (mut bob, _) = BinClient::hello(nodes[1].local_addrs()[0], "bob", None).await;
    let dm = |id: u64| ClientMsg::Msg {
        to: support::nick("bob"),
        id: natter_core::MsgId(id),
        text: support::text("psst"),
    };
    alice.send(&dm(1)).await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Direct(d) if d.text.as_str() == "psst"),
            "the direct message back",
        )
        .await;
    bob.expect(|m| matches!(m, ServerMsg::Direct(_)), "the direct message")
        .await;

    nats.stop();
    // The node notices its link is gone within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    alice.send(&dm(2)).await;
    let answer = alice
        .expect(
            |m| {
                matches!(
                    m,
                    ServerMsg::Error {
                        re: Re::Msg(natter_core::MsgId(2)),
                        ..
                    } | ServerMsg::Direct(_)
                )
            },
            "an answer",
        )
        .await;
    let took = asked.elapsed();
    let ServerMsg::Error { detail, .. } = &answer else {
        panic!("delivered while NATS is down: {answer:?}");
    };
    assert!(detail.contains("cluster is unavailable"), "{detail}");
    // At once: not after the lookup's wait (`ack_timeout`, 2 s here), nor NATS's own (10 s).
    assert!(
        took < Duration::from_millis(1_500),
        "refused after {took:?}"
    );
    nats.run();
    // Nothing arrives late.
    let late = bob.msgs_for(Duration::from_secs(3)).await;
    assert!(
        !late.iter().any(|m| matches!(m, ServerMsg::Direct(_))),
        "{late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_signs_in_to_nats_with_the_credentials_in_its_address_and_never_logs_them() {
    // SECURITY.md: natter's NATS account has credentials of its own, given in the address
    // (`nats://USER:PASSWORD@HOST:PORT`, as nats-server's tools take them). Neither the node's
    // lines nor the NATS client's (at DEBUG) show the password; a wrong one stops the start,
    // saying why, without showing it either.
    let nats = Nats::start_with_user("natter", "N4ts-Pass-w0rd");
    let url = |pw: &str| format!("nats://natter:{pw}@{}", nats.addr());
    let (joined, lines) = node_until_joined(&["--cluster", &url("N4ts-Pass-w0rd")], &[]).await;
    let all = lines.join("\n");
    assert!(joined, "the node did not join:\n{all}");
    assert!(
        !all.contains("N4ts-Pass-w0rd"),
        "the password is in the log:\n{all}"
    );
    let said = lines
        .iter()
        .find(|l| l.contains("joined the cluster"))
        .unwrap();
    assert!(said.contains("nats://natter:***@"), "{said}");

    let (joined, lines) = node_until_joined(&["--cluster", &url("wr0ng-Pass")], &[]).await;
    let all = lines.join("\n");
    assert!(!joined, "joined with a wrong password:\n{all}");
    assert!(
        !all.contains("wr0ng-Pass"),
        "the password is in the log:\n{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot start") && l.contains("authorization violation")),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_written_bare_in_the_address_is_not_logged_either() {
    // README asks for a `/`, `,` or `@` in a password to be written `%2F`... A generated
    // password often holds a `/` (base64): written bare, it ends the host part before the `@`
    // and the address was shown whole in the line that stops the start; a `,` cuts the address
    // in two (`--cluster` takes several) and the first piece was shown whole. The start fails
    // (no such address), saying so, without the password.
    for url in [
        "nats://natter:N4ts/Pass+w0rd@127.0.0.1:4222",
        "nats://natter:N4ts?Pass@127.0.0.1:4222",
        "nats://natter:N4ts,Pass@127.0.0.1:4222",
    ] {
        let (joined, lines) = node_until_joined(&["--cluster", url], &[]).await;
        let all = lines.join("\n");
        assert!(!joined, "{url}: joined:\n{all}");
        assert!(
            !all.contains("N4ts") && !all.contains("Pass"),
            "{url}: the password is in the log:\n{all}"
        );
        assert!(
            lines.iter().any(|l| l.contains("cannot start")),
            "{url}:\n{all}"
        );
    }
}
