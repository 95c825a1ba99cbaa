//! Accounts in the cluster's KV bucket against a real nats-server (started by each test on a
//! free port, stopped by its pid): of two nodes creating one account at once exactly one
//! succeeds; writes of several nodes to one account at once all land (compare-and-swap on the
//! revision); every node hears every change; a node starting reads every account.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::accounts::PasswordHash;
use natter_core::hub::ClusterOut;
use natter_core::persist::{AccountRecord, KeyRecord, LoadedAccount, TokenHash, Write};
use natter_core::{Millis, Seq};

fn record(name: &str, hash: &str) -> AccountRecord {
    AccountRecord {
        name: nick(name),
        hash: PasswordHash(hash.into()),
        created: Millis(1),
    }
}

async fn created(node: &mut Node, want: u64) -> Result<bool, String> {
    next(node, "answer to a create", |i| match i {
        ClusterIn::AccountCreated { id, result } if id == want => Some(result),
        _ => None,
    })
    .await
}

/// The answer to create `id` of `name` on `node`, and the hash of the account `name` the node
/// then hears of (in whichever order the two come).
async fn decided(node: &mut Node, id: u64, name: &str) -> (bool, String) {
    let (mut answer, mut hash) = (None, None);
    while answer.is_none() || hash.is_none() {
        let got = next(node, "a create's answer and its news", |i| match i {
            ClusterIn::AccountCreated { id: got, result } if got == id => {
                Some((Some(result.expect("decided")), None))
            }
            ClusterIn::Account { account, .. } if account.record.name.as_str() == name => {
                Some((None, Some(account.record.hash.0)))
            }
            _ => None,
        })
        .await;
        answer = answer.or(got.0);
        hash = hash.or(got.1);
    }
    (answer.unwrap_or_default(), hash.unwrap_or_default())
}

/// The next news of account `name` that `done` accepts.
async fn heard(
    node: &mut Node,
    name: &str,
    done: impl Fn(&LoadedAccount) -> bool,
) -> LoadedAccount {
    next(node, "account news", |i| match i {
        ClusterIn::Account { account, .. }
            if account.record.name.as_str() == name && done(&account) =>
        {
            Some(account)
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_created_on_two_nodes_at_once_goes_to_one() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    for round in 0..5u64 {
        let name = format!("zed{round}");
        a.send(ClusterOut::CreateAccount {
            id: round,
            record: record(&name, "hash-a"),
        });
        b.send(ClusterOut::CreateAccount {
            id: round,
            record: record(&name, "hash-b"),
        });
        let (at_a, hash_a) = decided(&mut a, round, &name).await;
        let (at_b, hash_b) = decided(&mut b, round, &name).await;
        assert!(at_a != at_b, "exactly one of the two: {at_a} {at_b}");
        // Both nodes hear the account, with the winner's password.
        let winner = if at_a { "hash-a" } else { "hash-b" };
        assert_eq!((hash_a.as_str(), hash_b.as_str()), (winner, winner));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_two_nodes_to_one_account_all_land_and_a_new_node_reads_them() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    a.send(ClusterOut::CreateAccount {
        id: 1,
        record: record("alice", "h1"),
    });
    assert_eq!(created(&mut a, 1).await, Ok(true));
    const EACH: u64 = 10;
    let key = |id: u64| KeyRecord {
        id,
        hash: TokenHash([id as u8; 32]),
        created: Millis(id),
        used: None,
    };
    // Both nodes write at once, interleaved: keys and markers in two rooms.
    for i in 1..=EACH {
        for (n, r, id) in [(&a, "#a", i), (&b, "#b", 100 + i)] {
            n.send(ClusterOut::AccountWrite {
                account: nick("alice"),
                registered: None,
                write: Write::AddKey {
                    account: nick("alice"),
                    key: key(id),
                },
            });
            n.send(ClusterOut::AccountWrite {
                account: nick("alice"),
                registered: None,
                write: Write::ReadMarker {
                    account: nick("alice"),
                    room: room(r),
                    seq: Seq(i),
                },
            });
        }
    }
    let complete = |x: &LoadedAccount| {
        let mut read = x.read.clone();
        read.sort();
        x.keys.len() == 2 * EACH as usize
            && read == vec![(room("#a"), Seq(EACH)), (room("#b"), Seq(EACH))]
    };
    heard(&mut b, "alice", complete).await;
    // A node starting now reads the account whole before it serves anyone.
    let mut c = node(&nats).await;
    let loaded = c.take_accounts();
    assert_eq!(loaded.len(), 1);
    let (loaded, revision) = &loaded[0];
    assert!(complete(loaded), "{loaded:?}");
    assert_eq!(loaded.record.hash.0, "h1");
    assert!(*revision > 2 * EACH, "{revision}");
    assert!(c.take_accounts().is_empty(), "handed over once");
    // A password change revokes every key, everywhere.
    b.send(ClusterOut::AccountWrite {
        account: nick("alice"),
        registered: None,
        write: Write::Account(record("alice", "h2")),
    });
    b.send(ClusterOut::AccountWrite {
        account: nick("alice"),
        registered: None,
        write: Write::RevokeKeys {
            account: nick("alice"),
        },
    });
    let changed = heard(&mut c, "alice", |x| {
        x.record.hash.0 == "h2" && x.keys.is_empty()
    })
    .await;
    assert_eq!(changed.read.len(), 2, "markers stay");
    // Removed on one node: every node hears it, and a new node does not load it.
    a.send(ClusterOut::AccountWrite {
        account: nick("alice"),
        registered: None,
        write: Write::DropAccount(nick("alice")),
    });
    let dropped = next(&mut c, "the removal", |i| match i {
        ClusterIn::AccountDropped(folded) => Some(folded),
        _ => None,
    })
    .await;
    assert_eq!(dropped, "alice");
    assert!(node(&nats).await.take_accounts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_for_a_removed_registration_does_not_land_on_the_next_account_of_the_name() {
    // The operator removes alice and adds alice again while a node's write for the first
    // account is on its way: matched by name (until the forty-second session) it landed on
    // the new account. It carries the registration it is for, and is left out.
    let nats = NatsServer::start();
    let mut a = node(&nats).await;
    let written = async |node: &mut Node| {
        next(node, "a write's answer", |i| match i {
            ClusterIn::AccountWritten { account, revision } if account == "alice" => Some(revision),
            _ => None,
        })
        .await
    };
    a.send(ClusterOut::CreateAccount {
        id: 1,
        record: record("alice", "h1"),
    });
    assert_eq!(created(&mut a, 1).await, Ok(true));
    a.send(ClusterOut::AccountWrite {
        account: nick("alice"),
        registered: Some(Millis(1)),
        write: Write::DropAccount(nick("alice")),
    });
    assert_eq!(written(&mut a).await, None, "removed");
    let again = AccountRecord {
        created: Millis(2),
        ..record("alice", "h2")
    };
    a.send(ClusterOut::CreateAccount {
        id: 2,
        record: again,
    });
    assert_eq!(created(&mut a, 2).await, Ok(true));
    let key = |id: u64| Write::AddKey {
        account: nick("alice"),
        key: KeyRecord {
            id,
            hash: TokenHash([id as u8; 32]),
            created: Millis(id),
            used: None,
        },
    };
    for (registered, write) in [
        (1, key(7)),
        (1, Write::DropAccount(nick("alice"))),
        (2, key(8)),
    ] {
        a.send(ClusterOut::AccountWrite {
            account: nick("alice"),
            registered: Some(Millis(registered)),
            write,
        });
    }
    assert_eq!(written(&mut a).await, None, "the first account's key");
    assert_eq!(written(&mut a).await, None, "the first account's removal");
    assert!(written(&mut a).await.is_some(), "the new account's key");
    let loaded = node(&nats).await.take_accounts();
    assert_eq!(loaded.len(), 1, "the new account stays");
    let alice = &loaded[0].0;
    assert_eq!(alice.record.created, Millis(2));
    let keys: Vec<u64> = alice.keys.iter().map(|k| k.id).collect();
    assert_eq!(keys, [8]);
}
