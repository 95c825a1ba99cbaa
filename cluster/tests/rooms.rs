//! Rooms' settings in the cluster's KV bucket against a real nats-server (started by each test
//! on a free port, stopped by its pid): edits of two nodes to one room at once all land
//! (compare-and-swap on the revision, each edit applied to the entry as it is); every node
//! hears every change; a node starting reads every room; a close removes the room everywhere.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::RoomName;
use natter_core::hub::ClusterOut;
use natter_core::moderation::{Entry, Mask, ModeChange, PolicyEdit, RoomClose, SharedRoom};

fn ban(mask: &str, by: &str) -> PolicyEdit {
    PolicyEdit::Ban(Entry {
        mask: Mask::parse(mask).unwrap(),
        until: None,
        by: nick(by),
        reason: None,
        at: natter_core::Millis(1_700_000_000_000),
    })
}

/// The next news of `r` from `node` that `done` accepts (`None` in it: the room was closed),
/// and who closed it and why.
async fn heard(
    node: &mut Node,
    r: &RoomName,
    done: impl Fn(Option<&SharedRoom>) -> bool,
) -> (Option<SharedRoom>, Option<RoomClose>) {
    let find = async {
        loop {
            match node.next().await.expect("the node runs") {
                ClusterIn::Room {
                    room,
                    shared,
                    close,
                    ..
                } if room == *r && done(shared.as_ref()) => {
                    return (shared, close);
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(WAIT, find)
        .await
        .unwrap_or_else(|_| panic!("no news of {r} in time"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_of_two_nodes_to_one_room_at_once_all_land_and_a_new_node_reads_them() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    let r = room("#r");
    a.send(ClusterOut::RoomEdit {
        room: r.clone(),
        edit: PolicyEdit::Founder(nick("alice")),
    });
    const EACH: usize = 10;
    // Both nodes change the room at once, interleaved: bans from each, and a mode each.
    for i in 0..EACH {
        for (n, by) in [(&a, "alice"), (&b, "dave")] {
            n.send(ClusterOut::RoomEdit {
                room: r.clone(),
                edit: ban(&format!("{by}{i}"), by),
            });
        }
    }
    a.send(ClusterOut::RoomEdit {
        room: r.clone(),
        edit: PolicyEdit::Mode(ModeChange::Moderated(true)),
    });
    b.send(ClusterOut::RoomEdit {
        room: r.clone(),
        edit: PolicyEdit::Mode(ModeChange::Key(natter_core::Text::new("sesame").ok())),
    });
    let complete = |s: Option<&SharedRoom>| {
        s.is_some_and(|s| {
            s.policy.bans.len() == 2 * EACH
                && s.policy.modes.moderated
                && s.policy.modes.key.is_some()
                && s.policy.founder == Some(nick("alice"))
        })
    };
    heard(&mut a, &r, complete).await;
    // Each of b's edits is answered, in order, with the entry's revision after it; and b hears
    // the room with every edit in (in whichever order the two come).
    let (mut answers, mut whole) = (Vec::new(), false);
    tokio::time::timeout(WAIT, async {
        while answers.len() < EACH + 1 || !whole {
            match b.next().await.expect("the node runs") {
                ClusterIn::RoomWritten { room, revision } => {
                    assert_eq!(room, r);
                    answers.push(revision.expect("written"));
                }
                ClusterIn::Room { room, shared, .. } if room == r => {
                    whole |= complete(shared.as_ref());
                }
                _ => {}
            }
        }
    })
    .await
    .expect("b's answers and news in time");
    assert!(answers.is_sorted(), "{answers:?}");
    // A node starting now reads the room whole before it serves anyone.
    let mut c = node(&nats).await;
    let kept = c.take_rooms();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, r);
    assert!(complete(Some(&kept[0].1)), "{:?}", kept[0].1);
    assert!(c.take_rooms().is_empty(), "handed over once");
    // A close removes it: every node hears it, who closed it and why too (until the
    // forty-second session the removal said neither), and a new node does not load it.
    let close = RoomClose {
        by: nick("root"),
        reason: natter_core::Text::new("moved").ok(),
    };
    a.send(ClusterOut::RoomEdit {
        room: r.clone(),
        edit: PolicyEdit::Close(close.clone()),
    });
    assert_eq!(heard(&mut c, &r, |s| s.is_none()).await.1, Some(close));
    let mut d = node(&nats).await;
    assert!(d.take_rooms().is_empty());
    // Opened and registered again, it is kept again.
    a.send(ClusterOut::RoomEdit {
        room: r.clone(),
        edit: PolicyEdit::Founder(nick("dave")),
    });
    let (again, _) = heard(&mut d, &r, |s| s.is_some()).await;
    assert_eq!(again.unwrap().policy.founder, Some(nick("dave")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_of_a_room_the_cluster_keeps_nothing_of_is_heard_by_every_node() {
    // A room nobody registered has no entry: its close wrote nothing until the forty-second
    // session, so no other node heard of it and their members stayed in the room.
    let nats = NatsServer::start();
    let (a, mut b) = (node(&nats).await, node(&nats).await);
    let r = room("#unkept");
    let close = RoomClose {
        by: nick("root"),
        reason: None,
    };
    a.send(ClusterOut::RoomEdit {
        room: r.clone(),
        edit: PolicyEdit::Close(close.clone()),
    });
    assert_eq!(heard(&mut b, &r, |s| s.is_none()).await.1, Some(close));
    let mut c = node(&nats).await;
    assert!(c.take_rooms().is_empty(), "nothing to load");
}

/// Waits for `node`'s news of `r` with settings `done` accepts, and returns them.
async fn settled(node: &mut Node, r: &RoomName, done: impl Fn(&SharedRoom) -> bool) -> SharedRoom {
    let (shared, _) = heard(node, r, |s| s.is_some_and(&done)).await;
    shared.expect("settings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_add_lifts_a_names_rights_and_a_late_lift_spares_a_new_holder() {
    use natter_cluster::{ClusterAccounts, ClusterConfig};
    use natter_core::Millis;
    use natter_core::accounts::PasswordHash;
    use natter_core::persist::{AccountRecord, Write};
    let nats = NatsServer::start();
    // A node without a hub: it lifts nothing itself, as if every node were down.
    let mut a = node(&nats).await;
    let tool = ClusterAccounts::open(&ClusterConfig::new(vec![nats.url()]))
        .await
        .expect("the operator's tool opens the buckets");
    let r = room("#r");
    let alice = || nick("alice");
    let record = |created| AccountRecord {
        name: alice(),
        hash: PasswordHash("h".into()),
        created: Millis(created),
    };
    let edit = |edit| ClusterOut::RoomEdit {
        room: r.clone(),
        edit,
    };
    let none_of_alice = |s: &SharedRoom| {
        s.policy.founder.is_none() && s.policy.ops.is_empty() && s.policy.voiced.is_empty()
    };
    assert_eq!(tool.create(record(1)).await, Ok(true));
    for e in [
        PolicyEdit::Founder(alice()),
        PolicyEdit::Op(alice()),
        PolicyEdit::Voice(alice()),
    ] {
        a.send(edit(e));
    }
    settled(&mut a, &r, |s| s.policy.voiced.len() == 1).await;
    // Removed with no node to hear it: the rights stay under the name until `account add`
    // lifts them (until the forty-second session it did not, and the new alice had them).
    tool.write(&alice(), &Write::DropAccount(alice()))
        .await
        .unwrap();
    assert_eq!(tool.create(record(2)).await, Ok(true));
    settled(&mut a, &r, none_of_alice).await;
    // The new alice registers #r and is made operator and voiced; a node's lift for the
    // first alice comes late: left out, all three.
    a.send(edit(PolicyEdit::Founder(alice())));
    a.send(edit(PolicyEdit::Op(alice())));
    a.send(edit(PolicyEdit::Voice(alice())));
    a.send(edit(PolicyEdit::AccountGone {
        name: alice(),
        registered: Some(Millis(1)),
    }));
    a.send(edit(PolicyEdit::Mode(ModeChange::Moderated(true))));
    let s = settled(&mut a, &r, |s| s.policy.modes.moderated).await;
    assert_eq!(
        s.policy.founder,
        Some(alice()),
        "the new holder's room stays its"
    );
    assert_eq!(s.policy.ops, [alice()], "its operator stays");
    assert_eq!(s.policy.voiced, [alice()], "its voice stays");
    // A lift for the registration that holds the name is done, all three.
    a.send(edit(PolicyEdit::AccountGone {
        name: alice(),
        registered: Some(Millis(2)),
    }));
    settled(&mut a, &r, none_of_alice).await;
}

/// `account add --cluster` lifts the rights an earlier account of the name left before it
/// makes the account: a new holder who registers a room as soon as the account is there
/// keeps it. Until the forty-third session the lift came after the account, read the rooms
/// then, and took the room from a registration quick enough (here the rooms to read are many,
/// as in a cluster with a long life, and the registration comes the moment the account does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_registered_the_moment_the_operator_adds_the_name_stays_the_new_holders() {
    use natter_cluster::{ClusterAccounts, ClusterConfig};
    use natter_core::Millis;
    use natter_core::accounts::PasswordHash;
    use natter_core::persist::{AccountRecord, Write};
    let nats = NatsServer::start();
    // Nodes without a hub: they lift nothing themselves, as if every node were down.
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    let open = || async {
        ClusterAccounts::open(&ClusterConfig::new(vec![nats.url()]))
            .await
            .expect("the operator's tool opens the buckets")
    };
    let (tool, watcher) = (open().await, open().await);
    let alice = || nick("alice");
    let record = |created| AccountRecord {
        name: alice(),
        hash: PasswordHash("h".into()),
        created: Millis(created),
    };
    // The first alice founded #old; many other rooms make the bucket long to read.
    assert_eq!(tool.create(record(1)).await, Ok(true));
    let old = room("#old");
    a.send(ClusterOut::RoomEdit {
        room: old.clone(),
        edit: PolicyEdit::Founder(alice()),
    });
    const OTHERS: usize = 300;
    for i in 0..OTHERS {
        a.send(ClusterOut::RoomEdit {
            room: room(&format!("#other{i}")),
            edit: PolicyEdit::Founder(nick("dave")),
        });
    }
    settled(&mut a, &room(&format!("#other{}", OTHERS - 1)), |s| {
        s.policy.founder.is_some()
    })
    .await;
    tool.write(&alice(), &Write::DropAccount(alice()))
        .await
        .unwrap();
    // The operator adds alice again; the moment the account is there, the new alice
    // registers #x (through node b).
    let x = room("#x");
    let quick = async {
        let deadline = tokio::time::Instant::now() + WAIT;
        while watcher.get(&alice()).await.unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "alice never came");
        }
        b.send(ClusterOut::RoomEdit {
            room: x.clone(),
            edit: PolicyEdit::Founder(alice()),
        });
        next(&mut b, "#x's write answered", |got| match got {
            ClusterIn::RoomWritten { room, revision } if room == x => Some(revision),
            _ => None,
        })
        .await
        .expect("#x registered");
    };
    let (made, ()) = tokio::join!(tool.create(record(2)), quick);
    assert_eq!(made, Ok(true));
    // Both done: the old alice's room is lifted, the new alice's stays hers.
    let kept = node(&nats).await.take_rooms();
    let founder = |r: &RoomName| {
        kept.iter()
            .find(|(k, ..)| k == r)
            .and_then(|(_, s, _)| s.policy.founder.clone())
    };
    assert_eq!(founder(&old), None, "the first alice's room is lifted");
    assert_eq!(
        founder(&x),
        Some(alice()),
        "the new holder's room stays its"
    );
}
