//! Room moderation in a cluster (issue 23) against a real nats-server with JetStream, started by
//! each test on a free port and stopped by its pid, and natter-server nodes on real sockets: an
//! operator on one node bans a member on another, who is put out there (its nc neighbour sees
//! the kick) and cannot come back, on any node, even after every node restarted; settings made
//! on one node hold on another.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_core::moderation::ModeChange;
use natter_core::wire::{ClientMsg, ErrorKind, EventKind, ModAction, Proof, ServerMsg};
use natter_core::{Password, RoomName};
use natter_server::Server;
use std::net::SocketAddr;
use std::time::Duration;
use support::{BinClient, TextClient, room, text};

/// A natter-server node in this process, in the cluster at `nats`.
async fn node(nats: &Nats) -> Server {
    support::cluster_node(nats.url()).await
}

fn addr(s: &Server) -> SocketAddr {
    s.local_addrs()[0]
}

/// A client called `name` on `at`, registered (signed in to its account).
async fn registered(at: SocketAddr, name: &str) -> BinClient {
    BinClient::registered(at, name, PASSWORD).await
}

const PASSWORD: &str = "correct horse";

/// alice, registered on `at`, in `#r` and its founder.
async fn founder(at: SocketAddr) -> BinClient {
    let mut alice = registered(at, "alice").await;
    alice.join("#r").await;
    moderate(&mut alice, ModAction::Register).await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "alice"),
            "the room registered to her",
        )
        .await;
    alice
}

async fn moderate(c: &mut BinClient, action: ModAction) {
    c.send(&ClientMsg::Moderate {
        room: room("#r"),
        action,
    })
    .await;
}

/// What answers a join of `#r` by `c`: joined, or the error's kind.
async fn try_join(c: &mut BinClient) -> Result<(), ErrorKind> {
    let r = room("#r");
    c.send(&ClientMsg::Join { room: r.clone() }).await;
    let is_answer = |m: &ServerMsg, r: &RoomName| match m {
        ServerMsg::Joined { room, .. } => room == r,
        ServerMsg::Error { .. } => true,
        _ => false,
    };
    match c
        .expect(|m| is_answer(m, &r), "an answer to the join")
        .await
    {
        ServerMsg::Joined { .. } => Ok(()),
        ServerMsg::Error { kind, .. } => Err(kind),
        _ => unreachable!("expect returned what it matched"),
    }
}

/// `account` signing in on `at` (its nick may be held a moment by a node that stopped: the
/// sign-in takes it over) and trying to join `#r`: refused as banned.
async fn refused_as_banned(at: SocketAddr, account: &str) {
    let (mut c, _) = BinClient::hello(at, "visitor", None).await;
    c.send(&ClientMsg::SignIn {
        account: support::nick(account),
        proof: Proof::Password(Password(PASSWORD.into())),
        remember: false,
    })
    .await;
    c.expect(
        |m| matches!(m, ServerMsg::SignedIn { account: a, .. } if a.as_str() == account),
        "signed in",
    )
    .await;
    assert_eq!(
        try_join(&mut c).await,
        Err(ErrorKind::Banned),
        "{account} at {at}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_node_puts_out_a_member_on_another_and_holds_after_both_restart() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut alice = founder(addr(&a)).await;
    // bob is signed in: a ban of a member on another node holds its account, as a present
    // member's would.
    let mut bob = registered(addr(&b), "bob").await;
    try_join(&mut bob)
        .await
        .expect("bob joins on the other node");
    // An nc user is a guest until it picks a nick.
    let (mut carol, carol_nick) = TextClient::entered(addr(&b), "carol").await;
    carol.send("/join #r").await;
    carol.expect_has("#r").await;
    // alice sees both join (through the log) before she bans.
    for who in ["bob", carol_nick.as_str()] {
        alice
            .expect(
                |m| matches!(m, ServerMsg::Event(e) if e.kind == EventKind::Join && e.from.as_str() == who),
                "a join from the other node",
            )
            .await;
    }

    moderate(
        &mut alice,
        ModAction::Ban {
            target: "bob".into(),
            duration: None,
            reason: Some(text("spam")),
        },
    )
    .await;
    let kicked = |m: &ServerMsg| {
        matches!(m, ServerMsg::Event(e)
            if e.from.as_str() == "alice"
                && matches!(&e.kind, EventKind::Kick { target, .. } if target.as_str() == "bob"))
    };
    bob.expect(kicked, "bob sees alice put him out").await;
    bob.expect(
        |m| matches!(m, ServerMsg::Parted { room: r } if *r == room("#r")),
        "and is out of the room on his node",
    )
    .await;
    alice.expect(kicked, "alice sees the kick too").await;
    carol.expect_has("alice put bob out of #r (spam)").await;
    assert_eq!(try_join(&mut bob).await, Err(ErrorKind::Banned));

    // Every node restarts: the ban and the room's founder are the cluster's, not a node's.
    drop((alice, bob, carol));
    a.shutdown().await.expect("a stops");
    b.shutdown().await.expect("b stops");
    let (a, b) = (node(&nats).await, node(&nats).await);
    refused_as_banned(addr(&b), "bob").await;
    refused_as_banned(addr(&a), "bob").await;
    let (mut dan, _) = BinClient::hello(addr(&b), "dan", None).await;
    try_join(&mut dan).await.expect("others still join");
    dan.send(&ClientMsg::Moderate {
        room: room("#r"),
        action: ModAction::Settings,
    })
    .await;
    dan.expect(
        |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "alice"),
        "the room is still alice's",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_on_one_node_holds_on_another_at_once() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut alice = founder(addr(&a)).await;
    moderate(
        &mut alice,
        ModAction::Mode(ModeChange::Key(Some(text("sesame")))),
    )
    .await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(e) if matches!(&e.kind, EventKind::Mode { change } if change.as_str() == "+k")),
            "the mode change in the room",
        )
        .await;
    // The other node may hear of it a moment later: the first refusal is waited for.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (mut eve, _) = BinClient::hello(addr(&b), "eve", None).await;
        match try_join(&mut eve).await {
            Err(kind) => {
                assert_eq!(kind, ErrorKind::BadKey);
                break;
            }
            Ok(()) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(()) => panic!("the key never held on the other node"),
        }
    }
    let (mut fay, _) = BinClient::hello(addr(&b), "fay", None).await;
    fay.send(&ClientMsg::JoinKey {
        room: room("#r"),
        key: text("sesame"),
    })
    .await;
    fay.expect(
        |m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r")),
        "the key opens the room on the other node",
    )
    .await;
}

/// Whether `m` is `#r`'s mode event `words`.
fn mode_event(m: &ServerMsg, words: &str) -> bool {
    matches!(m, ServerMsg::Event(e) if matches!(&e.kind, EventKind::Mode { change } if change.as_str() == words))
}

/// A change of a room's settings while NATS is down is refused at once, as a line or a join
/// is then: nothing changes, and nothing lands unannounced when NATS is back (the settings
/// used to be written then, with their mode event lost: members were not told). Once NATS is
/// back, a change is made and every member, on every node, is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_change_while_nats_is_down_is_refused_at_once_and_works_once_it_is_back() {
    use natter_core::wire::Re;
    use std::time::Instant;
    let mut nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut alice = founder(addr(&a)).await;
    let (mut bob, _) = BinClient::hello(addr(&b), "bob", None).await;
    try_join(&mut bob)
        .await
        .expect("bob joins on the other node");

    nats.stop();
    // The node knows NATS is away once a line is refused.
    let id = alice.say("#r", "during").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Error { re: Re::Msg(i), .. } if *i == id),
            "the line's refusal",
        )
        .await;
    let asked = Instant::now();
    moderate(&mut alice, ModAction::Mode(ModeChange::Moderated(true))).await;
    let refused = alice
        .expect(
            |m| {
                matches!(m, ServerMsg::Error { re: Re::Room(r), .. } if *r == room("#r"))
                    || mode_event(m, "+m")
            },
            "the change's refusal",
        )
        .await;
    let ServerMsg::Error { detail, .. } = refused else {
        panic!("a mode change made while NATS is down: {refused:?}");
    };
    assert!(detail.contains("cluster is unavailable"), "{detail}");
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );

    nats.run();
    // Back once a line is taken again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "writes never worked again");
        let id = alice.say("#r", "after").await;
        let answer = alice
            .expect(
                |m| matches!(m, ServerMsg::Error { re: Re::Msg(i), .. } | ServerMsg::Ack { id: i } if *i == id)
                    || matches!(m, ServerMsg::Event(e) if matches!(&e.kind, EventKind::Say { id: i, .. } if *i == id)),
                "an echo or a refusal",
            )
            .await;
        if !matches!(answer, ServerMsg::Error { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The refused change is nowhere: not on bob's node, not announced.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.send(&ClientMsg::Moderate {
        room: room("#r"),
        action: ModAction::Settings,
    })
    .await;
    let settings = bob
        .expect(|m| matches!(m, ServerMsg::Policy { .. }), "the settings")
        .await;
    assert!(
        matches!(&settings, ServerMsg::Policy { modes, .. } if !modes.moderated),
        "{settings:?}"
    );
    assert!(
        !bob.seen.iter().any(|m| mode_event(m, "+m")),
        "{:?}",
        bob.seen
    );
    // Now the change is made, and both nodes' members are told.
    moderate(&mut alice, ModAction::Mode(ModeChange::Moderated(true))).await;
    alice
        .expect(|m| mode_event(m, "+m"), "the change, on her node")
        .await;
    bob.expect(|m| mode_event(m, "+m"), "the change, on the other node")
        .await;
}
