//! Server-wide bans in a cluster (issue 23) against a real nats-server with JetStream, started
//! by each test on a free port and stopped by its pid, and natter-server nodes on real
//! sockets: an admin's ban set on one node puts out whom it holds on another (a binary client
//! and an nc user), keeps them out at hello and sign-in on every node, is listed on every
//! node, survives both nodes' restarts, and a ban's term runs out on the other node too, and
//! its entry is then removed from the cluster.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_core::wire::{AdminAction, ClientMsg, ErrorKind, PROTOCOL_VERSION, Proof, ServerMsg};
use natter_core::{Millis, Password};
use natter_server::Server;
use std::net::SocketAddr;
use std::time::Duration;
use support::{BinClient, TextClient, nick, text};

const PASSWORD: &str = "correct horse";

/// A natter-server node in this process, in the cluster at `nats`, where `root` is an admin
/// (as `cluster_node`, with admins).
async fn node(nats: &Nats) -> Server {
    let mut cfg = natter_server::ServerConfig::local_test_patient();
    cfg.hub.accounts.admins = vec![nick("root")];
    support::cluster_node_with(nats.url(), cfg).await
}

fn addr(s: &Server) -> SocketAddr {
    s.local_addrs()[0]
}

/// A client called `name` on `at`, registered (signed in to its account).
async fn registered(at: SocketAddr, name: &str) -> BinClient {
    BinClient::registered(at, name, PASSWORD).await
}

/// `name` signing in on `at` (from a guest's hello).
async fn sign_in(at: SocketAddr, name: &str) -> BinClient {
    let (mut c, _) = BinClient::hello(at, "visitor", None).await;
    c.send(&ClientMsg::SignIn {
        account: nick(name),
        proof: Proof::Password(Password(PASSWORD.into())),
        remember: false,
    })
    .await;
    c
}

async fn admin(c: &mut BinClient, action: AdminAction) {
    c.send(&ClientMsg::Admin(action)).await;
}

fn ban(target: &str, duration: Option<Millis>) -> AdminAction {
    AdminAction::Ban {
        target: target.into(),
        duration,
        reason: Some(text("spam")),
    }
}

/// A hello as `name` on `at` is refused as banned and closed.
async fn refused(at: SocketAddr, name: &str) {
    BinClient::refused_with(at, name, ErrorKind::Banned).await;
}

/// The masks `root` lists.
async fn listed(root: &mut BinClient) -> Vec<String> {
    admin(root, AdminAction::Bans).await;
    let got = root
        .expect(|m| matches!(m, ServerMsg::ServerBans { .. }), "the list")
        .await;
    let ServerMsg::ServerBans { bans } = got else {
        unreachable!("expect returned what it matched");
    };
    let mut masks: Vec<String> = bans.iter().map(|b| b.mask.to_string()).collect();
    masks.sort();
    masks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ban_on_one_node_puts_out_and_keeps_out_on_every_node_after_both_restart() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut root = registered(addr(&a), "root").await;
    // On node b: mallory (binary), eve (nc, a guest until she picks a nick), victor (signed in).
    let (mut mallory, _) = BinClient::hello(addr(&b), "mallory", None).await;
    let (mut eve, _) = TextClient::entered(addr(&b), "eve").await;
    eve.send("/nick eve").await;
    eve.expect_has("eve").await;
    let victor = registered(addr(&b), "victor").await;
    drop(victor);

    // mallory is not on root's node: the bare name is a nick ban.
    admin(&mut root, ban("mallory", None)).await;
    let got = mallory.expect_closed_with(ErrorKind::Banned).await;
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Error { detail, .. } if detail.contains("root") && detail.contains("spam"))),
        "{got:?}"
    );
    admin(&mut root, ban("nick:eve", None)).await;
    let lines = eve.expect_closed().await;
    assert!(
        lines.iter().any(|l| l.contains("banned from this server")),
        "{lines:?}"
    );
    admin(&mut root, ban("account:victor", None)).await;
    assert_eq!(
        listed(&mut root).await,
        ["account:victor", "nick:eve", "nick:mallory"]
    );
    // Both nodes keep them out.
    for at in [addr(&b), addr(&a)] {
        refused(at, "mallory").await;
        refused(at, "eve").await;
    }
    // The account ban holds at sign-in on the other node (whose news may come a moment after
    // the list answered on root's).
    sign_in(addr(&b), "victor")
        .await
        .expect_closed_with(ErrorKind::Banned)
        .await;

    // Every node restarts: the bans are the cluster's, not a node's.
    drop(root);
    a.shutdown().await.expect("a stops");
    b.shutdown().await.expect("b stops");
    let (a, b) = (node(&nats).await, node(&nats).await);
    for at in [addr(&a), addr(&b)] {
        refused(at, "mallory").await;
        sign_in(at, "victor")
            .await
            .expect_closed_with(ErrorKind::Banned)
            .await;
    }
    let mut root = sign_in(addr(&b), "root").await;
    root.expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "root signs in")
        .await;
    // A lift on node b lifts it on node a.
    admin(
        &mut root,
        AdminAction::Unban {
            target: "nick:mallory".into(),
        },
    )
    .await;
    assert_eq!(listed(&mut root).await, ["account:victor", "nick:eve"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = BinClient::connect(addr(&a), "mallory").await;
        c.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("mallory"),
            resume: None,
        })
        .await;
        let welcomed = c
            .expect(
                |m| matches!(m, ServerMsg::Welcome { .. } | ServerMsg::Error { .. }),
                "an answer to the hello",
            )
            .await;
        match welcomed {
            ServerMsg::Welcome { .. } => break,
            _ if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the lift never reached node a: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_server_ban_runs_out_on_the_other_node_too() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut root = registered(addr(&a), "root").await;
    let (mut brief, _) = BinClient::hello(addr(&b), "brief", None).await;
    admin(&mut root, ban("nick:brief", Some(Millis(3_000)))).await;
    brief.expect_closed_with(ErrorKind::Banned).await;
    refused(addr(&b), "brief").await;
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let (_brief, _) = BinClient::hello(addr(&b), "brief", None).await;
    assert!(listed(&mut root).await.is_empty(), "not listed once over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ban_that_ran_out_is_removed_from_the_cluster() {
    let nats = Nats::start();
    let (a, _b) = (node(&nats).await, node(&nats).await);
    let mut root = registered(addr(&a), "root").await;
    admin(&mut root, ban("nick:brief", Some(Millis(1_000)))).await;
    admin(&mut root, ban("nick:long", None)).await;
    let lasting = ["nick:brief".to_owned(), "nick:long".to_owned()];
    assert_eq!(listed(&mut root).await, lasting);
    // The nodes look at the bans at each lease listing (every second here, from three seconds
    // after they started): one removes the ban that ran out. A node starting then reads only
    // the ban in force.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut reader =
            natter_cluster::Node::start(natter_cluster::ClusterConfig::new(vec![nats.url()]))
                .await
                .expect("a node joins");
        let kept: Vec<String> = reader
            .take_server_bans()
            .into_iter()
            .map(|(b, _)| b.mask.to_string())
            .collect();
        drop(reader);
        if kept == ["nick:long"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ban that ran out is still kept: {kept:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(listed(&mut root).await, ["nick:long"]);
}

/// An admin's `/close` on one node puts out a room's member on another node, told who closed
/// it and why as on one server: an IRC member's PART says "Channel closed by root: moved".
/// The cluster's news of the close and the close's event in the room's log come to that node
/// in either order; when the event comes first, it names them (it did before the forty-second
/// session too). The news coming first is made sure of here by a close that no event follows:
/// one a node without a hub writes, as a closing node's rooms task does. Only the words the
/// news now carries can name them (until the forty-second session: "Channel closed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_on_one_node_tells_another_nodes_members_who_closed_the_room_and_why() {
    use natter_core::hub::ClusterOut;
    use natter_core::moderation::{PolicyEdit, RoomClose};
    let nats = Nats::start();
    let a = node(&nats).await;
    let b = {
        let mut cfg = natter_server::ServerConfig::local_test_patient();
        cfg.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        support::cluster_node_with(nats.url(), cfg).await
    };
    let mut root = registered(addr(&a), "root").await;
    root.join("#r").await;
    let mut carol = TextClient::connect(b.irc_addrs()[0], "irc").await;
    carol.send("NICK carol\r\nUSER c 0 * :C").await;
    carol.expect_has(" 001 ").await;
    for r in ["#r", "#s"] {
        carol.send(&format!("JOIN {r}")).await;
        carol.expect_has(" 366 ").await;
    }
    admin(
        &mut root,
        AdminAction::Close {
            room: natter_core::RoomName::new("#r").unwrap(),
            reason: Some(text("moved")),
        },
    )
    .await;
    let part = carol
        .expect(|l| l.contains("PART #r"), "carol's PART of #r")
        .await;
    assert!(part.ends_with(":Channel closed by root: moved"), "{part}");
    // The news alone: no event of #s's close is ever in its log.
    let quiet = natter_cluster::Node::start(natter_cluster::ClusterConfig::new(vec![nats.url()]))
        .await
        .expect("a node joins");
    quiet.send(ClusterOut::RoomEdit {
        room: natter_core::RoomName::new("#s").unwrap(),
        edit: PolicyEdit::Close(RoomClose {
            by: nick("root"),
            reason: Some(text("moved")),
        }),
    });
    let part = carol
        .expect(|l| l.contains("PART #s"), "carol's PART of #s")
        .await;
    assert!(part.ends_with(":Channel closed by root: moved"), "{part}");
    drop(quiet);
}
