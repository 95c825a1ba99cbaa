//! One account on two nodes of a cluster (issue 23), against a real nats-server with
//! JetStream, started by each test on a free port and stopped by its pid. An account's user is
//! on one node at a time (ARCHITECTURE.md, "An account on several nodes"): a sign-in on another
//! node takes it there, and the device sent away is told why and is not signed in again by
//! itself when its client comes back, so two devices given one node each do not take the
//! account from each other in turn.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_core::wire::{ClientMsg, ErrorKind, EventKind, Proof, ServerMsg};
use natter_core::{Password, ResumeToken, RoomName};
use natter_server::Server;
use std::net::SocketAddr;
use std::time::Duration;
use support::{BinClient, TextClient, nick, room};

async fn node(nats: &Nats) -> Server {
    support::cluster_node(nats.url()).await
}

fn addr(s: &Server) -> SocketAddr {
    s.local_addrs()[0]
}

const PW: &str = "correct horse";

/// `c` signs in to `account`: the answer, `Ok(token)` or `Err((kind, words))`.
async fn sign_in(c: &mut BinClient, account: &str) -> Result<ResumeToken, (ErrorKind, String)> {
    c.send(&ClientMsg::SignIn {
        account: nick(account),
        proof: Proof::Password(Password(PW.into())),
        remember: false,
    })
    .await;
    let got = c
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. } | ServerMsg::Error { .. }),
            "an answer to the sign-in",
        )
        .await;
    match got {
        ServerMsg::SignedIn { token, .. } => Ok(token),
        ServerMsg::Error { kind, detail, .. } => Err((kind, detail.to_string())),
        _ => unreachable!("expect returned what it matched"),
    }
}

/// A new connection to `at` signed in to `account` (tried again, three times at most, while
/// the node has not heard of the account yet).
async fn device(at: SocketAddr, account: &str) -> BinClient {
    for _ in 0..3 {
        let (mut c, _) = BinClient::hello(at, "device", None).await;
        if sign_in(&mut c, account).await.is_ok() {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{account} did not sign in at {at}");
}

/// Reads until the server closes `c`: the words of its `Bye`.
async fn sent_away(c: &mut BinClient) -> String {
    let got = c.expect_closed().await;
    got.iter()
        .find_map(|m| match m {
            ServerMsg::Bye { reason } => Some(reason.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{}: closed without a Bye: {got:#?}", c.name))
}

fn line_of(m: &ServerMsg, r: &RoomName) -> Option<(String, String)> {
    match m {
        ServerMsg::Event(ev) if ev.room == *r => match &ev.kind {
            EventKind::Say { text, .. } => Some((ev.from.to_string(), text.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// A laptop on node A and a phone on node B, each given that node alone: the phone's sign-in
/// takes alice to node B, and the laptop is sent away saying why. Its client comes back to
/// node A with its token and signs in by itself: refused once, in words, so the phone stays
/// (before, that sign-in took alice back and sent the phone away, whose client did the same,
/// for ever). The person signing in again takes alice back; a member on either node sees
/// neither device's move as a quit, and lists alice once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_sent_away_by_a_sign_in_on_another_node_is_told_why_and_does_not_take_it_back() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let r = room("#r");
    let (mut laptop, _) = BinClient::hello(addr(&a), "alice", None).await;
    laptop
        .send(&ClientMsg::Register {
            password: Password(PW.into()),
            remember: false,
        })
        .await;
    let token = match laptop
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
        .await
    {
        ServerMsg::SignedIn { token, .. } => token,
        _ => unreachable!("expect returned what it matched"),
    };
    laptop.join("#r").await;
    let (mut carol, _) = BinClient::hello(addr(&b), "carol", None).await;
    carol.join("#r").await;

    let mut phone = device(addr(&b), "alice").await;
    phone
        .expect(
            |m| matches!(m, ServerMsg::Joined { room, .. } if *room == r),
            "the phone in #r",
        )
        .await;
    let words = sent_away(&mut laptop).await;
    assert!(
        words.contains("alice is connected through another server of this cluster"),
        "{words}"
    );

    // The laptop's client comes back to node A with its token, as natter's clients do.
    let resume = natter_core::wire::Resume {
        token,
        rooms: Vec::new(),
    };
    let (mut back, welcome) = BinClient::hello(addr(&a), "alice", Some(resume)).await;
    assert!(
        matches!(welcome, ServerMsg::Welcome { resumed: false, .. }),
        "{welcome:?}"
    );
    let (kind, words) = sign_in(&mut back, "alice")
        .await
        .expect_err("its own sign-in is held back");
    assert_eq!(kind, ErrorKind::Throttled, "{words}");
    assert!(words.contains("/login alice <password>"), "{words}");

    // The phone stays: its line reaches carol, and it answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    phone.say("#r", "from the phone").await;
    carol
        .expect(
            |m| line_of(m, &r).is_some_and(|(f, t)| f == "alice" && t == "from the phone"),
            "the phone's line",
        )
        .await;
    phone.send(&ClientMsg::Ping { token: 9 }).await;
    phone
        .expect(|m| matches!(m, ServerMsg::Pong { token: 9 }), "a pong")
        .await;

    // Signed in again by the person: alice goes back to node A, and the phone is told.
    sign_in(&mut back, "alice")
        .await
        .expect("the second sign-in takes the account back");
    let words = sent_away(&mut phone).await;
    assert!(words.contains("another server"), "{words}");
    back.expect(
        |m| matches!(m, ServerMsg::Joined { room, .. } if *room == r),
        "the laptop in #r again",
    )
    .await;
    back.say("#r", "from the laptop").await;
    carol
        .expect(
            |m| line_of(m, &r).is_some_and(|(f, t)| f == "alice" && t == "from the laptop"),
            "the laptop's line",
        )
        .await;
    let quits = carol
        .seen
        .iter()
        .filter(|m| {
            matches!(m, ServerMsg::Event(ev) if ev.from.as_str() == "alice"
                && matches!(ev.kind, EventKind::Quit { .. } | EventKind::Part { .. }))
        })
        .count();
    assert_eq!(quits, 0, "carol saw alice leave: {:#?}", carol.seen);
    carol.send(&ClientMsg::Who { room: r.clone() }).await;
    let got = carol
        .expect(|m| matches!(m, ServerMsg::Members { .. }), "members")
        .await;
    let ServerMsg::Members { members, .. } = got else {
        unreachable!()
    };
    assert_eq!(
        members.iter().filter(|n| n.as_str() == "alice").count(),
        1,
        "{members:?}"
    );
}

/// An account's user in no room: no room's `Join` tells node A that a sign-in on node B took
/// it, but B's record of the user does, once A reads the nick's entry as B's. The laptop on A
/// is sent away saying why (before, A kept a user alice that direct messages and presence no
/// longer reached), and a direct message from node A's bob reaches the phone on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_in_no_room_is_sent_away_by_a_sign_in_on_another_node() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let (mut laptop, _) = BinClient::hello(addr(&a), "alice", None).await;
    laptop
        .send(&ClientMsg::Register {
            password: Password(PW.into()),
            remember: false,
        })
        .await;
    laptop
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
        .await;
    let (mut bob, _) = BinClient::hello(addr(&a), "bob", None).await;

    let mut phone = device(addr(&b), "alice").await;
    let words = sent_away(&mut laptop).await;
    assert!(
        words.contains("alice is connected through another server of this cluster"),
        "{words}"
    );

    let id = bob.id();
    bob.send(&ClientMsg::Msg {
        to: nick("alice"),
        id,
        text: support::text("psst"),
    })
    .await;
    phone
        .expect(
            |m| matches!(m, ServerMsg::Direct(d) if d.from.as_str() == "bob" && d.text.as_str() == "psst"),
            "bob's message on the phone",
        )
        .await;
}

/// A node with an IRC door too, in the cluster at `nats`.
async fn irc_node(nats: &Nats) -> Server {
    let mut cfg = natter_server::ServerConfig::local_test();
    cfg.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    support::cluster_node_with(nats.url(), cfg).await
}

/// An IRC client on `server` registering as alice with SASL PLAIN (her password), as a client
/// configured to sign in does each time it connects: the SASL answer's line (`903` or `904`).
async fn irc_alice(server: &Server) -> (TextClient, String) {
    let mut c = TextClient::connect(server.irc_addrs()[0], "irc").await;
    c.send("CAP LS 302\r\nNICK alice\r\nUSER a 0 * :A\r\nCAP REQ :sasl")
        .await;
    c.expect_has("ACK").await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect_has("AUTHENTICATE +").await;
    // "alice\0alice\0correct horse"
    c.send("AUTHENTICATE YWxpY2UAYWxpY2UAY29ycmVjdCBob3JzZQ==")
        .await;
    let answer = c
        .expect(
            |l| l.contains(" 903 ") || l.contains(" 904 "),
            "SASL's answer",
        )
        .await;
    c.send("CAP END").await;
    (c, answer)
}

/// An IRC client presents no token: sent away by a sign-in on another node, it reconnects and
/// signs in with SASL by itself, which took the account back (and the other device did the
/// same, at each client's reconnect delay). Now its SASL sign-in from the same address is
/// refused with a `904` saying why, however often it reconnects, while the phone that has the
/// account stays connected; once the phone quits, the IRC client's next sign-in takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_irc_device_sent_away_does_not_take_its_account_back_by_reconnecting() {
    let nats = Nats::start();
    let (a, b) = (irc_node(&nats).await, node(&nats).await);
    let (mut first, _) = BinClient::hello(addr(&a), "alice", None).await;
    first
        .send(&ClientMsg::Register {
            password: Password(PW.into()),
            remember: false,
        })
        .await;
    first
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
        .await;
    first.send(&ClientMsg::Quit { reason: None }).await;
    first.expect_closed().await;

    let (mut irc, answer) = irc_alice(&a).await;
    assert!(answer.contains(" 903 "), "{answer}");
    irc.expect_has(" 376 ").await;

    let mut phone = device(addr(&b), "alice").await;
    let said = irc.expect_closed().await.join("\n");
    assert!(
        said.contains("alice is connected through another server of this cluster"),
        "{said}"
    );

    for _ in 0..2 {
        let (mut back, answer) = irc_alice(&a).await;
        assert!(answer.contains(" 904 "), "{answer}");
        assert!(
            answer.contains("not signed in again by your client's reconnection"),
            "{answer}"
        );
        // It goes on as a guest under another nick (alice's is the account's), as IRC
        // clients do when theirs is taken.
        back.expect_has(" 433 ").await;
        back.send("NICK alice_").await;
        back.expect_has(" 376 ").await;
        drop(back);
    }
    phone.send(&ClientMsg::Ping { token: 3 }).await;
    phone
        .expect(
            |m| matches!(m, ServerMsg::Pong { token: 3 }),
            "the phone stays",
        )
        .await;

    // The phone quits: the IRC client's next sign-in takes the account.
    phone.send(&ClientMsg::Quit { reason: None }).await;
    phone.expect_closed().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_c, answer) = irc_alice(&a).await;
        if answer.contains(" 903 ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still held back after the phone quit: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
