//! Accounts in a cluster: registered on one node, known to every node; one name registered at
//! once on two nodes goes to one; changes reach every node and a restarted one. The accounts
//! live in a fake key-value store ([`Kv`]) that applies each write as natter-cluster does
//! (`LoadedAccount::apply`) and tells every node the account as it is after it.

use super::*;
use crate::accounts::HashCost;
use crate::hub::AccountsConfig;
use crate::persist::{AccountRecord, LoadedAccount};
use crate::types::{DeviceKey, Password, ResumeToken};
use crate::wire::{ErrorKind, Proof};

/// The accounts as the cluster keeps them, and creates held back to answer in a chosen order.
#[derive(Default)]
pub(super) struct Kv {
    pub(super) accounts: BTreeMap<String, LoadedAccount>,
    /// The last revision given (one sequence for the bucket, as in JetStream).
    revision: u64,
    /// Accounts' news held back (not yet delivered by the watch), when `hold_news`.
    news: Vec<(LoadedAccount, u64)>,
    hold_news: bool,
    hold: bool,
    held: Vec<(usize, u64, AccountRecord)>,
    /// Answers to nodes' writes held back (their news may come first), when `hold_answers`.
    hold_answers: bool,
    answers: Vec<(usize, String, Option<u64>)>,
}

impl Net {
    /// Does what a node asks about accounts (see `ClusterOut::CreateAccount`, `AccountWrite`).
    pub(super) fn account_out(&mut self, i: usize, o: ClusterOut) {
        match o {
            ClusterOut::CreateAccount { id, record } if self.kv.hold => {
                self.kv.held.push((i, id, record));
            }
            ClusterOut::CreateAccount { id, record } => self.create_account(i, id, record),
            ClusterOut::AccountWrite {
                account,
                registered,
                write,
            } => {
                let key = account.folded();
                // As natter-cluster: a write for another registration of the name is left out.
                let Some(a) = self
                    .kv
                    .accounts
                    .get_mut(&key)
                    .filter(|a| registered.is_none_or(|r| r == a.record.created))
                else {
                    self.nodes[i].hub.handle_account_written(&key, None);
                    return;
                };
                if a.apply(&write) {
                    self.kv.revision += 1;
                    let revision = Some(self.kv.revision);
                    if self.kv.hold_answers {
                        self.kv.answers.push((i, key.clone(), revision));
                    } else {
                        self.nodes[i].hub.handle_account_written(&key, revision);
                    }
                    self.announce(&key);
                } else {
                    self.nodes[i].hub.handle_account_written(&key, None);
                    self.kv.accounts.remove(&key);
                    for n in &mut self.nodes {
                        n.hub.handle_account_dropped(&key, self.now);
                    }
                }
            }
            _ => {}
        }
    }

    /// A create, as a key-value `create`: made unless the key exists.
    fn create_account(&mut self, i: usize, id: u64, record: AccountRecord) {
        let key = record.name.folded();
        let made = !self.kv.accounts.contains_key(&key);
        if made {
            let account = LoadedAccount {
                record,
                rooms: Vec::new(),
                read: Vec::new(),
                keys: Vec::new(),
                held: Vec::new(),
            };
            self.kv.accounts.insert(key.clone(), account);
            self.kv.revision += 1;
        }
        self.nodes[i]
            .hub
            .handle_account_created(id, Ok(made), self.now);
        if made {
            self.announce(&key);
        }
    }

    /// Every node hears the account as it is (the watch), unless news are held back.
    fn announce(&mut self, key: &str) {
        let Some(a) = self.kv.accounts.get(key).cloned() else {
            return;
        };
        if self.kv.hold_news {
            self.kv.news.push((a, self.kv.revision));
            return;
        }
        for n in &mut self.nodes {
            n.hub.handle_account(a.clone(), self.kv.revision, self.now);
        }
    }
}

pub(super) fn hub(seed: u8) -> Hub {
    let mut hub = Hub::new(Config {
        secret_seed: [seed; 32],
        accounts: AccountsConfig {
            hash_cost: HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    });
    hub.enable_cluster();
    hub
}

/// `n` nodes whose password hashes are cheap.
pub(super) fn net(n: usize) -> Net {
    let mut net = Net::new(n);
    for (i, node) in net.nodes.iter_mut().enumerate() {
        node.hub = hub(i as u8);
    }
    net
}

/// Node `i` starts afresh (its process restarted): a new hub that reads the accounts kept.
fn restart(net: &mut Net, i: usize) {
    let mut fresh = hub(100 + i as u8);
    for a in net.kv.accounts.values() {
        fresh.handle_account(a.clone(), net.kv.revision, net.now);
    }
    net.nodes[i] = Node {
        hub: fresh,
        following: BTreeSet::new(),
        inbox: HashMap::new(),
        raw: HashMap::new(),
    };
}

/// Pumps, running password work as it comes, until nothing moves.
pub(super) fn settle(net: &mut Net) {
    for _ in 0..100 {
        net.pump();
        let mut worked = false;
        for node in &mut net.nodes {
            while let Some(w) = node.hub.poll_work() {
                worked = true;
                let done = w.run();
                node.hub.handle_work(done, net.now);
            }
        }
        if !worked {
            return;
        }
    }
    panic!("the net did not settle");
}

pub(super) fn ask(net: &mut Net, i: usize, c: ConnId, msg: &ClientMsg) {
    let f = encode_frame(msg).unwrap();
    let now = net.now;
    net.nodes[i].hub.handle_bytes(c, &f, now);
    settle(net);
}

fn pw(s: &str) -> Password {
    Password(s.into())
}

pub(super) fn register(net: &mut Net, i: usize, c: ConnId, password: &str, remember: bool) {
    let msg = ClientMsg::Register {
        password: pw(password),
        remember,
    };
    ask(net, i, c, &msg);
}

fn sign_in(net: &mut Net, i: usize, c: ConnId, account: &str, proof: Proof) {
    let msg = ClientMsg::SignIn {
        account: nick(account),
        proof,
        remember: false,
    };
    ask(net, i, c, &msg);
}

/// A connection on node `i` welcomed (as whatever nick it got).
pub(super) fn guest(net: &mut Net, i: usize, want: &str) -> (ConnId, Nick) {
    let c = net.hello(i, want);
    settle(net);
    let n = net.welcomed(i, c);
    (c, n)
}

fn signed_in(msgs: &[ServerMsg]) -> Option<(Nick, Option<DeviceKey>)> {
    msgs.iter().find_map(|m| match m {
        ServerMsg::SignedIn { account, key, .. } => Some((account.clone(), key.clone())),
        _ => None,
    })
}

pub(super) fn error(msgs: &[ServerMsg]) -> Option<(ErrorKind, String)> {
    msgs.iter().find_map(|m| match m {
        ServerMsg::Error { kind, detail, .. } => Some((*kind, detail.to_string())),
        _ => None,
    })
}

pub(super) const PW: &str = "correct horse";

#[test]
fn an_account_registered_on_one_node_signs_in_on_another() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    let got = net.recv(0, a);
    assert_eq!(signed_in(&got).map(|s| s.0), Some(nick("alice")), "{got:?}");
    assert_eq!(net.nodes[1].hub.account_count(), 1, "node 1 heard of it");
    // A wrong password on node 1 is refused as on one node.
    let (b, _) = guest(&mut net, 1, "visitor");
    sign_in(&mut net, 1, b, "alice", Proof::Password(pw("wrong horse")));
    let got = net.recv(1, b);
    assert_eq!(error(&got).map(|e| e.0), Some(ErrorKind::SignInFailed));
    // The right one signs in.
    sign_in(&mut net, 1, b, "alice", Proof::Password(pw(PW)));
    let got = net.recv(1, b);
    assert_eq!(signed_in(&got).map(|s| s.0), Some(nick("alice")), "{got:?}");
    // The account's nick is node 1's in the cluster now (the account proved it).
    assert_eq!(net.owners.get("alice"), Some(&1));
}

/// A room joined on one node just before a sign-in on another: that node may hear of the sign-in's
/// account before the join's write (the watch lags behind), so the sign-in brings no room.
/// When the write's news comes, the user there joins the room (before, the room was lost, a
/// race a loaded machine lost 1 time in 26).
#[test]
fn a_room_joined_just_before_a_sign_in_on_another_node_is_joined_there_when_its_news_comes() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    net.recv(0, a);
    net.kv.hold_news = true;
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#r") });
    net.recv(0, a);
    net.nodes[0].hub.handle_close(a, net.now);
    settle(&mut net);
    let (b, _) = guest(&mut net, 1, "visitor");
    sign_in(&mut net, 1, b, "alice", Proof::Password(pw(PW)));
    let joined = |msgs: &[ServerMsg]| {
        msgs.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r")))
    };
    let got = net.recv(1, b);
    assert_eq!(signed_in(&got).map(|s| s.0), Some(nick("alice")), "{got:?}");
    assert!(
        !joined(&got),
        "node 1 has not heard of the join yet: {got:?}"
    );

    net.kv.hold_news = false;
    for (account, revision) in core::mem::take(&mut net.kv.news) {
        for n in &mut net.nodes {
            n.hub.handle_account(account.clone(), revision, net.now);
        }
    }
    settle(&mut net);
    let got = net.recv(1, b);
    assert!(joined(&got), "alice is in #r on node 1: {got:?}");
}

#[test]
fn a_registered_nick_is_protected_on_every_node() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    // alice leaves node 0 (her user is not there any more, nor her nick's claim).
    net.nodes[0].hub.handle_close(a, net.now);
    net.owners.remove("alice");
    settle(&mut net);
    // A guest on node 1 asking for alice does not get it, nor can it rename to it.
    let (g, got) = guest(&mut net, 1, "alice");
    assert_ne!(got, nick("alice"));
    ask(
        &mut net,
        1,
        g,
        &ClientMsg::Nick {
            nick: nick("alice"),
        },
    );
    let got = net.recv(1, g);
    let (kind, detail) = error(&got).expect("refused");
    assert_eq!(kind, ErrorKind::NickTaken);
    assert!(detail.contains("registered"), "{detail}");
}

#[test]
fn one_name_registered_on_two_nodes_at_once_goes_to_one() {
    let mut net = net(2);
    // Both nodes have a user called zed (as after a nick taken over from a node whose lease
    // ran out while it still had its user): the accounts' create decides.
    let (a, _) = guest(&mut net, 0, "zed");
    net.owners.remove("zed");
    let (b, n) = guest(&mut net, 1, "zed");
    assert_eq!(n, nick("zed"));
    net.kv.hold = true;
    register(&mut net, 0, a, PW, false);
    register(&mut net, 1, b, "another horse", false);
    let held = core::mem::take(&mut net.kv.held);
    assert_eq!(held.len(), 2, "both asked the cluster");
    assert!(net.recv(0, a).is_empty() && net.recv(1, b).is_empty());
    net.kv.hold = false;
    // Node 1's create lands first.
    for (i, id, record) in held.into_iter().rev() {
        net.create_account(i, id, record);
    }
    settle(&mut net);
    let (won, lost) = (net.recv(1, b), net.recv(0, a));
    assert_eq!(signed_in(&won).map(|s| s.0), Some(nick("zed")), "{won:?}");
    assert_eq!(signed_in(&lost), None, "{lost:?}");
    let (kind, detail) = error(&lost).expect("the loser is told");
    assert_eq!(kind, ErrorKind::NickTaken);
    assert!(detail.contains("registered already"), "{detail}");
    // The loser no longer holds the account's nick.
    let renamed = lost
        .iter()
        .any(|m| matches!(m, ServerMsg::YourNick { nick } if *nick != nick_zed()));
    assert!(renamed, "{lost:?}");
    for node in &net.nodes {
        assert_eq!(node.hub.account_count(), 1);
    }
    // The account is the winner's: its password signs in on node 0, the loser's does not.
    let (c, _) = guest(&mut net, 0, "visitor");
    sign_in(&mut net, 0, c, "zed", Proof::Password(pw("another horse")));
    assert!(signed_in(&net.recv(0, c)).is_some());
    let (d, _) = guest(&mut net, 0, "other");
    sign_in(&mut net, 0, d, "zed", Proof::Password(pw(PW)));
    assert_eq!(
        error(&net.recv(0, d)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
}

fn nick_zed() -> Nick {
    nick("zed")
}

#[test]
fn a_create_the_cluster_cannot_decide_is_refused_in_words() {
    let mut net = net(1);
    let (a, _) = guest(&mut net, 0, "alice");
    net.kv.hold = true;
    register(&mut net, 0, a, PW, false);
    let (_, id, _) = net.kv.held.pop().expect("asked");
    let why = "the cluster is unavailable (no NATS server answers)".to_owned();
    let now = net.now;
    net.nodes[0].hub.handle_account_created(id, Err(why), now);
    settle(&mut net);
    let got = net.recv(0, a);
    let (kind, detail) = error(&got).expect("told");
    assert_eq!(kind, ErrorKind::Unavailable);
    assert!(detail.contains("was not registered"), "{detail}");
    assert_eq!(net.nodes[0].hub.account_count(), 0);
}

#[test]
fn account_changes_reach_other_nodes_and_survive_a_restart() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, true);
    let got = net.recv(0, a);
    let key = signed_in(&got).and_then(|s| s.1).expect("a device key");
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#r") });
    ask(&mut net, 0, a, &say(1, "one"));
    ask(&mut net, 0, a, &say(2, "two"));
    let seqs: Vec<u64> = events(&net.recv(0, a)).iter().map(|e| e.0).collect();
    let read = Seq(*seqs.iter().max().expect("events"));
    ask(
        &mut net,
        0,
        a,
        &ClientMsg::Read {
            room: room("#r"),
            seq: read,
        },
    );
    net.recv(0, a);
    // Node 1 knows the key, and where alice reads up to.
    let (b, _) = guest(&mut net, 1, "visitor");
    sign_in(&mut net, 1, b, "alice", Proof::Key(key.clone()));
    let got = net.recv(1, b);
    assert!(signed_in(&got).is_some(), "{got:?}");
    // She is in her rooms on node 1 too, and hears her marker after the room's Joined.
    let joined = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r")));
    let marker = got.iter().position(
        |m| matches!(m, ServerMsg::ReadUpTo { room: r, seq } if *r == room("#r") && *seq == read),
    );
    assert!(joined.is_some() && marker > joined, "{got:?}");
    // A password change on node 1 reaches node 0: the old password and the key open nothing.
    let change = ClientMsg::ChangePassword {
        old: pw(PW),
        new: pw("battery staple"),
    };
    ask(&mut net, 1, b, &change);
    assert!(net.recv(1, b).contains(&ServerMsg::PasswordChanged));
    let (c, _) = guest(&mut net, 0, "c1");
    sign_in(&mut net, 0, c, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        error(&net.recv(0, c)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
    let (d, _) = guest(&mut net, 0, "d1");
    sign_in(&mut net, 0, d, "alice", Proof::Key(key));
    assert_eq!(
        error(&net.recv(0, d)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
    // Node 1 restarts: the account, its rooms and its marker are read back from the cluster.
    restart(&mut net, 1);
    assert_eq!(net.nodes[1].hub.account_count(), 1);
    let (e, _) = guest(&mut net, 1, "e1");
    sign_in(
        &mut net,
        1,
        e,
        "alice",
        Proof::Password(pw("battery staple")),
    );
    let got = net.recv(1, e);
    assert!(signed_in(&got).is_some(), "{got:?}");
    assert!(
        got.iter().any(
            |m| matches!(m, ServerMsg::ReadUpTo { room: r, seq } if *r == room("#r") && *seq == read)
        ),
        "{got:?}"
    );
}

#[test]
fn a_marker_moved_on_another_node_reaches_this_nodes_connections() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#r") });
    ask(&mut net, 0, a, &say(1, "one"));
    net.recv(0, a);
    // Another node moves the account's marker (the watch brings it): alice's connection here
    // hears it; an older marker brought later does not move it back.
    let mut acc = net.kv.accounts.get("alice").cloned().expect("kept");
    acc.read = vec![(room("#r"), Seq(2))];
    let now = net.now;
    net.nodes[0].hub.handle_account(acc.clone(), 90, now);
    acc.read = vec![(room("#r"), Seq(1))];
    net.nodes[0].hub.handle_account(acc, 91, now);
    settle(&mut net);
    let markers: Vec<Seq> = net
        .recv(0, a)
        .iter()
        .filter_map(|m| match m {
            ServerMsg::ReadUpTo { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(markers, vec![Seq(2)]);
}

#[test]
fn an_account_dropped_elsewhere_stops_opening_here() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    net.account_out(
        0,
        ClusterOut::AccountWrite {
            account: nick("alice"),
            registered: None,
            write: crate::persist::Write::DropAccount(nick("alice")),
        },
    );
    settle(&mut net);
    assert_eq!(net.nodes[1].hub.account_count(), 0);
    let (b, _) = guest(&mut net, 1, "visitor");
    sign_in(&mut net, 1, b, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        error(&net.recv(1, b)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
}

#[test]
fn writes_apply_to_a_kept_account_as_a_store_would() {
    use crate::persist::{KeyRecord, TokenHash, Write};
    let name = nick("alice");
    let mut a = LoadedAccount {
        record: AccountRecord {
            name: name.clone(),
            hash: crate::accounts::PasswordHash("h1".into()),
            created: Millis(5),
        },
        rooms: Vec::new(),
        read: Vec::new(),
        keys: Vec::new(),
        held: Vec::new(),
    };
    let key = |id| KeyRecord {
        id,
        hash: TokenHash([id as u8; 32]),
        created: Millis(id),
        used: None,
    };
    let marker = |seq| Write::ReadMarker {
        account: name.clone(),
        room: room("#r"),
        seq: Seq(seq),
    };
    assert!(a.apply(&marker(4)));
    assert!(a.apply(&marker(2)));
    assert_eq!(
        a.read,
        vec![(room("#r"), Seq(4))],
        "markers only move forward"
    );
    for id in 0..(crate::limits::MAX_DEVICE_KEYS as u64 + 2) {
        a.apply(&Write::AddKey {
            account: name.clone(),
            key: key(id),
        });
    }
    assert_eq!(a.keys.len(), crate::limits::MAX_DEVICE_KEYS);
    assert_eq!(a.keys[0].id, 2, "the oldest go");
    a.apply(&Write::RevokeKey { id: 2 });
    assert!(a.keys.iter().all(|k| k.id != 2));
    a.apply(&Write::Account(AccountRecord {
        name: name.clone(),
        hash: crate::accounts::PasswordHash("h2".into()),
        created: Millis(99),
    }));
    a.apply(&Write::RevokeKeys {
        account: name.clone(),
    });
    assert_eq!(a.record.hash.0, "h2");
    assert_eq!(a.record.created, Millis(5), "created stays");
    assert!(a.keys.is_empty());
    a.apply(&Write::AccountRooms {
        account: name.clone(),
        rooms: vec![room("#s")],
    });
    assert_eq!(a.rooms, vec![room("#s")]);
    assert!(!a.apply(&Write::DropAccount(name)));
}

#[test]
fn an_irc_sasl_sign_in_on_another_node_brings_the_accounts_rooms() {
    use base64::Engine;
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#x") });
    net.nodes[0].hub.handle_close(a, net.now);
    settle(&mut net);
    let now = net.now;
    let c = net.nodes[1]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("alice\0alice\0{PW}"));
    for line in [
        "CAP LS 302\r\nNICK someone\r\nUSER u 0 * :U\r\nCAP REQ :sasl\r\n".to_owned(),
        "AUTHENTICATE PLAIN\r\n".to_owned(),
        format!("AUTHENTICATE {plain}\r\n"),
        "CAP END\r\n".to_owned(),
    ] {
        let now = net.now;
        net.nodes[1].hub.handle_bytes(c, line.as_bytes(), now);
        settle(&mut net);
    }
    let text = String::from_utf8_lossy(&net.nodes[1].raw[&c]).into_owned();
    assert!(text.contains(" 903 "), "signed in: {text}");
    assert!(text.contains(" 001 alice "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(":alice!") && l.contains("JOIN #x")),
        "the account's room, joined on this node: {text}"
    );
    assert_eq!(net.owners.get("alice"), Some(&1), "the nick is this node's");
}

#[test]
fn news_older_than_this_nodes_own_writes_do_not_take_them_back() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, true);
    let key = signed_in(&net.recv(0, a)).and_then(|s| s.1).expect("a key");
    // The watch lags: node 0 changes the password (three writes: the hash, every key revoked,
    // and the remembered device's new key) and hears the news of each write only afterwards,
    // oldest first.
    net.kv.hold_news = true;
    let change = ClientMsg::ChangePassword {
        old: pw(PW),
        new: pw("battery staple"),
    };
    ask(&mut net, 0, a, &change);
    let answer = net.recv(0, a);
    assert!(answer.contains(&ServerMsg::PasswordChanged));
    let new_key = signed_in(&answer)
        .and_then(|s| s.1)
        .expect("a new key for the device that changed it");
    let news = core::mem::take(&mut net.kv.news);
    assert_eq!(news.len(), 3);
    assert_eq!(
        news[0].0.keys.len(),
        1,
        "the first write's news still holds the key"
    );
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_account(news[0].0.clone(), news[0].1, now);
    // Neither the old password nor the revoked key opens, even for a moment.
    let (b, _) = guest(&mut net, 0, "b1");
    sign_in(&mut net, 0, b, "alice", Proof::Key(key.clone()));
    assert_eq!(
        error(&net.recv(0, b)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
    let (c, _) = guest(&mut net, 0, "c1");
    sign_in(&mut net, 0, c, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        error(&net.recv(0, c)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
    // The news of the last write is applied (and node 1, which wrote nothing, takes both).
    for (acc, rev) in news {
        for n in &mut net.nodes {
            n.hub.handle_account(acc.clone(), rev, now);
        }
    }
    net.kv.hold_news = false;
    let (d, _) = guest(&mut net, 1, "d1");
    sign_in(&mut net, 1, d, "alice", Proof::Key(key));
    assert_eq!(
        error(&net.recv(1, d)).map(|e| e.0),
        Some(ErrorKind::SignInFailed)
    );
    let (e, _) = guest(&mut net, 1, "e1");
    sign_in(
        &mut net,
        1,
        e,
        "alice",
        Proof::Password(pw("battery staple")),
    );
    assert!(signed_in(&net.recv(1, e)).is_some());
    let (f, _) = guest(&mut net, 1, "f1");
    sign_in(&mut net, 1, f, "alice", Proof::Key(new_key));
    assert!(signed_in(&net.recv(1, f)).is_some(), "the new key opens");
}

#[test]
fn news_that_comes_before_the_answer_to_this_nodes_write_is_applied_once_answered() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    // alice's join writes her account's rooms; its answer comes late, after the news of it
    // and of another node's write (a read marker moved there).
    net.kv.hold_answers = true;
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#x") });
    net.recv(0, a);
    let marker = crate::persist::Write::ReadMarker {
        account: nick("alice"),
        room: room("#x"),
        seq: Seq(5),
    };
    assert!(net.kv.accounts.get_mut("alice").unwrap().apply(&marker));
    net.kv.revision += 1;
    net.announce("alice");
    settle(&mut net);
    let moved = |msgs: &[ServerMsg]| {
        msgs.iter()
            .any(|m| matches!(m, ServerMsg::ReadUpTo { seq, .. } if *seq == Seq(5)))
    };
    assert!(
        !moved(&net.recv(0, a)),
        "held while the join's write is unanswered"
    );
    net.kv.hold_answers = false;
    for (i, key, revision) in core::mem::take(&mut net.kv.answers) {
        net.nodes[i].hub.handle_account_written(&key, revision);
    }
    settle(&mut net);
    assert!(
        moved(&net.recv(0, a)),
        "the held news is applied once answered"
    );
}

#[test]
fn a_read_marker_is_echoed_once_the_cluster_stored_it() {
    let mut net = net(1);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#r") });
    ask(&mut net, 0, a, &say(1, "one"));
    ask(&mut net, 0, a, &say(2, "two"));
    net.recv(0, a);
    let markers = |msgs: &[ServerMsg]| -> Vec<Seq> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::ReadUpTo { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    };
    // The answers to the marker writes come late: a client told "read up to" before the
    // cluster holds it would show the marker a restarted node does not know.
    net.kv.hold_answers = true;
    let read = |seq| ClientMsg::Read {
        room: room("#r"),
        seq: Seq(seq),
    };
    ask(&mut net, 0, a, &read(2));
    ask(&mut net, 0, a, &read(3));
    assert_eq!(
        markers(&net.recv(0, a)),
        vec![],
        "not echoed before it is stored"
    );
    let mut answers = core::mem::take(&mut net.kv.answers);
    assert_eq!(answers.len(), 2, "one write per marker");
    let (i, key, revision) = answers.remove(0);
    net.nodes[i].hub.handle_account_written(&key, revision);
    settle(&mut net);
    // The first write's marker was overtaken by the second's: only the stored one is told.
    assert_eq!(markers(&net.recv(0, a)), vec![]);
    let (i, key, revision) = answers.remove(0);
    net.nodes[i].hub.handle_account_written(&key, revision);
    settle(&mut net);
    assert_eq!(markers(&net.recv(0, a)), vec![Seq(3)], "echoed once stored");
    // A write the cluster could not do is not echoed.
    ask(&mut net, 0, a, &say(3, "three"));
    net.recv(0, a);
    ask(&mut net, 0, a, &read(4));
    let (i, key, _) = net.kv.answers.pop().expect("the write");
    net.nodes[i].hub.handle_account_written(&key, None);
    settle(&mut net);
    assert_eq!(markers(&net.recv(0, a)), vec![], "not stored, not echoed");
}

/// What a client sends right after a registration waits for it, as on a single node, even when
/// the registration itself waited for a join to come back through the log: a room registered
/// next is the new account's, not refused with "sign in first".
#[test]
fn requests_after_a_registration_that_waited_for_a_join_wait_for_the_account() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    let frames: Vec<u8> = [
        ClientMsg::Join { room: room("#a") },
        ClientMsg::Register {
            password: pw(PW),
            remember: false,
        },
        ClientMsg::Join { room: room("#r") },
        ClientMsg::Moderate {
            room: room("#r"),
            action: crate::wire::ModAction::Register,
        },
    ]
    .iter()
    .flat_map(|m| encode_frame(m).unwrap())
    .collect();
    let now = net.now;
    net.nodes[0].hub.handle_bytes(a, &frames, now);
    settle(&mut net);
    let got = net.recv(0, a);
    assert_eq!(error(&got), None, "{got:?}");
    assert_eq!(signed_in(&got).map(|s| s.0), Some(nick("alice")), "{got:?}");
    assert!(
        net.rooms_kv_founder(&room("#r"))
            .is_some_and(|f| f == "alice"),
        "#r is alice's: {got:?}"
    );
}

/// A connection on node `i` that signs in to `account` with the password, shows it has its
/// token (a ping), and the token.
fn device(net: &mut Net, i: usize, want: &str, account: &str) -> (ConnId, ResumeToken) {
    let (c, _) = guest(net, i, want);
    sign_in(net, i, c, account, Proof::Password(pw(PW)));
    let token = net
        .recv(i, c)
        .iter()
        .find_map(|m| match m {
            ServerMsg::SignedIn { token, .. } => Some(token.clone()),
            _ => None,
        })
        .expect("signed in");
    ask(net, i, c, &ClientMsg::Ping { token: 1 });
    net.recv(i, c);
    (c, token)
}

/// A resume on node `i` with `token`: whether it opened the session.
fn resumes(net: &mut Net, i: usize, token: &ResumeToken) -> bool {
    let now = net.now;
    let x = net.nodes[i].hub.accept(LOCAL, now).unwrap();
    net.nodes[i].hub.handle_bytes(x, &MAGIC, now);
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("x"),
        resume: Some(crate::wire::Resume {
            token: token.clone(),
            rooms: Vec::new(),
        }),
    };
    net.nodes[i]
        .hub
        .handle_bytes(x, &encode_frame(&hello).unwrap(), now);
    settle(net);
    net.recv(i, x)
        .iter()
        .any(|m| matches!(m, ServerMsg::Welcome { resumed: true, .. }))
}

#[test]
fn a_password_change_elsewhere_ends_the_accounts_sessions_on_this_node() {
    let mut net = net(2);
    // alice's devices on node 1: q connected, p dropped (its session waits for a resume).
    let (q, _) = guest(&mut net, 1, "alice");
    register(&mut net, 1, q, PW, false);
    net.recv(1, q);
    let (p, tp) = device(&mut net, 1, "p", "alice");
    net.nodes[1].hub.handle_close(p, net.now);
    settle(&mut net);
    // The password changes on node 0 (a device signed in there, which takes the account's
    // user there; the operator's command writes the bucket the same way). r is another
    // device of it there.
    let (a, _) = device(&mut net, 0, "a", "alice");
    let (r, tr) = device(&mut net, 0, "r", "alice");
    let change = ClientMsg::ChangePassword {
        old: pw(PW),
        new: pw("battery staple"),
    };
    ask(&mut net, 0, a, &change);
    assert!(net.recv(0, a).contains(&ServerMsg::PasswordChanged));
    // p's token, from before the change, opens nothing on any node.
    assert!(
        !resumes(&mut net, 1, &tp),
        "p's token still opens on node 1"
    );
    assert!(
        !resumes(&mut net, 0, &tp),
        "p's token still opens on node 0"
    );
    // r goes on until it drops, as on one node; then its token is dead too.
    assert_eq!(net.nodes[0].hub.nick(r), Some(&nick("alice")));
    net.nodes[0].hub.handle_close(r, net.now);
    settle(&mut net);
    assert!(!resumes(&mut net, 0, &tr), "r's token still opens");
}

#[test]
fn a_direct_message_to_another_node_carries_its_tags_and_its_senders_account() {
    use base64::Engine;
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    net.nodes[0].hub.handle_close(a, net.now);
    settle(&mut net);
    let irc = |net: &mut Net, i: usize, lines: &[String]| {
        let now = net.now;
        let c = net.nodes[i]
            .hub
            .accept_on(crate::hub::Door::Irc, LOCAL, now)
            .unwrap();
        for line in lines {
            let now = net.now;
            net.nodes[i].hub.handle_bytes(c, line.as_bytes(), now);
            settle(net);
        }
        c
    };
    let caps = "message-tags account-tag echo-message";
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("alice\0alice\0{PW}"));
    let alice = irc(
        &mut net,
        0,
        &[
            format!("CAP LS 302\r\nNICK someone\r\nUSER u 0 * :U\r\nCAP REQ :sasl {caps}\r\n"),
            "AUTHENTICATE PLAIN\r\n".to_owned(),
            format!("AUTHENTICATE {plain}\r\n"),
            "CAP END\r\n".to_owned(),
        ],
    );
    let carol = irc(
        &mut net,
        1,
        &[format!(
            "CAP LS 302\r\nNICK carol\r\nUSER c 0 * :C\r\nCAP REQ :{caps}\r\nCAP END\r\n"
        )],
    );
    let guest_irc = irc(
        &mut net,
        0,
        &[format!(
            "CAP LS 302\r\nNICK gus\r\nUSER g 0 * :G\r\nCAP REQ :{caps}\r\nCAP END\r\n"
        )],
    );
    for n in &mut net.nodes {
        n.raw.clear();
    }
    net.now = Millis(net.now.0 + 5_000);
    let now = net.now;
    net.nodes[0].hub.handle_bytes(
        alice,
        b"@+draft/reply=abc PRIVMSG carol :hi from node 0\r\n",
        now,
    );
    net.nodes[0]
        .hub
        .handle_bytes(guest_irc, b"NOTICE carol :a guest's notice\r\n", now);
    settle(&mut net);
    let got = String::from_utf8_lossy(&net.nodes[1].raw[&carol]).into_owned();
    let line = got
        .lines()
        .find(|l| l.contains("PRIVMSG carol :hi from node 0"))
        .unwrap_or_else(|| panic!("{got}"));
    assert!(line.contains("account=alice"), "{line}");
    assert!(line.contains("+draft/reply=abc"), "{line}");
    let line = got
        .lines()
        .find(|l| l.contains("NOTICE carol :a guest's notice"))
        .unwrap_or_else(|| panic!("{got}"));
    assert!(!line.contains("account="), "a guest has none: {line}");
    // alice's echo says the same, as on one node.
    let echo = String::from_utf8_lossy(&net.nodes[0].raw[&alice]).into_owned();
    let line = echo
        .lines()
        .find(|l| l.contains("PRIVMSG carol :hi from node 0"))
        .unwrap_or_else(|| panic!("{echo}"));
    assert!(
        line.contains("account=alice") && line.contains("+draft/reply=abc"),
        "{line}"
    );
}

#[test]
fn a_direct_message_to_an_account_with_nothing_connected_is_kept_for_its_next_sign_in_anywhere() {
    let mut net = net(2);
    // alice, an account on node 0, with nothing connected (her device not kept either).
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    // carol, a guest on node 0 whose client dropped and may resume.
    let (c, carol) = guest(&mut net, 0, "carol");
    let now = net.now;
    net.nodes[0].hub.handle_close(a, now);
    net.nodes[0].hub.handle_close(c, now);
    settle(&mut net);
    // What a sender hears: its echo, or the refusal, and an away line.
    let send = |net: &mut Net, i: usize, from: ConnId, to: &Nick, id: u64| {
        let msg = ClientMsg::Msg {
            to: to.clone(),
            id: MsgId(id),
            text: text(&format!("message {id}")),
        };
        net.recv(i, from);
        ask(net, i, from, &msg);
        let got = net.recv(i, from);
        let echo = got
            .iter()
            .any(|m| matches!(m, ServerMsg::Direct(d) if d.id == MsgId(id)));
        let away = got.iter().find_map(|m| match m {
            ServerMsg::Away { away, .. } => away.as_ref().map(|a| a.to_string()),
            _ => None,
        });
        (echo, error(&got).map(|e| e.1), away)
    };
    // The same answers from either node: a guest who may resume is refused; an account
    // whose device may resume has it kept (nothing said of away: it may be back at once).
    let (here, _) = guest(&mut net, 0, "dan");
    let (there, _) = guest(&mut net, 1, "bob");
    let reconnecting = format!("{carol} is reconnecting right now; try again in a moment");
    assert_eq!(
        send(&mut net, 0, here, &carol, 1),
        (false, Some(reconnecting.clone()), None)
    );
    assert_eq!(
        send(&mut net, 1, there, &carol, 2),
        (false, Some(reconnecting), None)
    );
    assert_eq!(
        send(&mut net, 0, here, &nick("alice"), 3),
        (true, None, None)
    );
    assert_eq!(
        send(&mut net, 1, there, &nick("alice"), 4),
        (true, None, None)
    );
    // Their resumes lapse: kept, and said to wait for her, as on one node.
    net.now = Millis(net.now.0 + 24 * 3_600_000);
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_timeout(now);
    }
    settle(&mut net);
    let waits = Some(crate::hub::ops::KEPT_WORDS.to_owned());
    assert_eq!(
        send(&mut net, 0, here, &nick("alice"), 5),
        (true, None, waits.clone())
    );
    assert_eq!(
        send(&mut net, 1, there, &nick("alice"), 6),
        (true, None, waits)
    );
    // She signs in on node 1: each kept message once, oldest first; then none are kept.
    let (b, _) = guest(&mut net, 1, "visitor");
    net.recv(1, b);
    sign_in(&mut net, 1, b, "alice", Proof::Password(pw(PW)));
    let got: Vec<u64> = net
        .recv(1, b)
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Direct(d) => Some(d.id.0),
            _ => None,
        })
        .collect();
    assert_eq!(got, [3, 4, 5, 6]);
    assert!(net.held.values().all(|(_, kept)| kept.is_empty()));
    let now = net.now;
    net.nodes[1].hub.handle_close(b, now);
    settle(&mut net);
    let (b, _) = guest(&mut net, 0, "visitor");
    net.recv(0, b);
    sign_in(&mut net, 0, b, "alice", Proof::Password(pw(PW)));
    let again = net.recv(0, b);
    assert!(
        !again.iter().any(|m| matches!(m, ServerMsg::Direct(_))),
        "{again:?}"
    );
}

#[test]
fn a_cluster_keeps_at_most_a_hundred_direct_messages_for_an_account() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    let now = net.now;
    net.nodes[0].hub.handle_close(a, now);
    net.now = Millis(net.now.0 + 24 * 3_600_000);
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_timeout(now);
    }
    settle(&mut net);
    let (there, _) = guest(&mut net, 1, "bob");
    for id in 1..=crate::limits::MAX_HELD_DIRECTS as u64 + 1 {
        let msg = ClientMsg::Msg {
            to: nick("alice"),
            id: MsgId(id),
            text: text("hello"),
        };
        // Paced, as a person writes (no flood limit is met).
        net.now = Millis(net.now.0 + 5_000);
        ask(&mut net, 1, there, &msg);
    }
    let got = net.recv(1, there);
    let echoes = got
        .iter()
        .filter(|m| matches!(m, ServerMsg::Direct(_)))
        .count();
    assert_eq!(echoes, crate::limits::MAX_HELD_DIRECTS);
    let (kind, _) = error(&got).expect("the 101st refused");
    assert_eq!(kind, ErrorKind::NoSuchNick);
}

/// `[accounts] kept_bytes` bounds what the cluster keeps for all accounts together, as it
/// bounds one node's: the hub hands the bound (as reloaded) with each message to keep, and a
/// message past it is refused to its sender, while one to another account still fits once
/// some are delivered.
#[test]
fn a_cluster_keeps_no_more_than_kept_bytes_for_all_accounts_together() {
    let mut net = net(2);
    for who in ["alice", "bert"] {
        let (a, _) = guest(&mut net, 0, who);
        register(&mut net, 0, a, PW, false);
        let now = net.now;
        net.nodes[0].hub.handle_close(a, now);
    }
    net.now = Millis(net.now.0 + 24 * 3_600_000);
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_timeout(now);
    }
    settle(&mut net);
    let per = "hello".len() + crate::limits::HELD_DIRECT_OVERHEAD;
    for n in &mut net.nodes {
        let mut cfg = n.hub.config().clone();
        cfg.accounts.kept_bytes = 2 * per;
        n.hub.reconfigure(cfg).expect("a reload");
    }
    let (there, _) = guest(&mut net, 1, "carol");
    let mut refused = Vec::new();
    for (i, to) in ["alice", "bert", "alice"].into_iter().enumerate() {
        net.now = Millis(net.now.0 + 5_000);
        let msg = ClientMsg::Msg {
            to: nick(to),
            id: MsgId(i as u64 + 1),
            text: text("hello"),
        };
        ask(&mut net, 1, there, &msg);
        let got = net.recv(1, there);
        if let Some((kind, words)) = error(&got) {
            assert_eq!(kind, ErrorKind::NoSuchNick);
            refused.push((i, words));
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, 2, "{refused:?}");
    assert!(refused[0].1.contains("keeps no more"), "{refused:?}");
}

/// `/devices` in a cluster is refused in words (the cluster's accounts keep no device's last
/// use), and a remembered key is not revoked by a forget that was refused.
#[test]
fn remembered_devices_are_refused_in_words_in_a_cluster() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, true);
    let got = net.recv(0, a);
    let key = signed_in(&got).and_then(|s| s.1).expect("a key");
    for msg in [
        ClientMsg::Devices,
        ClientMsg::ForgetDevice {
            id: crate::wire::RememberedDevice::id_of(key.id()),
        },
    ] {
        ask(&mut net, 0, a, &msg);
        let got = net.recv(0, a);
        let (kind, words) = error(&got).unwrap_or_else(|| panic!("{got:?}"));
        assert_eq!(kind, ErrorKind::Unavailable);
        assert!(
            words.contains("cluster") && words.contains("/password"),
            "{words}"
        );
    }
    let (b, _) = guest(&mut net, 1, "visitor");
    sign_in(&mut net, 1, b, "alice", Proof::Key(key));
    let got = net.recv(1, b);
    assert_eq!(signed_in(&got).map(|s| s.0), Some(nick("alice")), "{got:?}");
}

/// A password changed on another node makes the addresses the old one was proved from here
/// strangers again, as a change on this node does: else whoever signed in here with a stolen
/// password stayed spared its address's waits at the account (its guesses at the new one
/// logged `known=true`, which the fail2ban filter leaves out).
#[test]
fn a_password_changed_on_another_node_forgets_the_addresses_known_here() {
    let den = "203.0.113.66";
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    assert!(signed_in(&net.recv(0, a)).is_some());
    ask(&mut net, 0, a, &ClientMsg::Quit { reason: None });
    // The intruder signs in on node 0 with the stolen password.
    let i = super::rooms::hello_on(&mut net, 0, "i", den);
    net.welcomed(0, i);
    sign_in(&mut net, 0, i, "alice", Proof::Password(pw(PW)));
    assert!(signed_in(&net.recv(0, i)).is_some());
    ask(&mut net, 0, i, &ClientMsg::Quit { reason: None });
    // Its owner changes it on node 1.
    let (o, _) = guest(&mut net, 1, "o");
    sign_in(&mut net, 1, o, "alice", Proof::Password(pw(PW)));
    assert!(signed_in(&net.recv(1, o)).is_some());
    let change = ClientMsg::ChangePassword {
        old: pw(PW),
        new: pw("battery staple"),
    };
    ask(&mut net, 1, o, &change);
    assert!(net.recv(1, o).contains(&ServerMsg::PasswordChanged));
    // The den in its address's waits (guesses at names known nowhere): a try at alice from
    // there waits with them.
    let g = super::rooms::hello_on(&mut net, 0, "g", den);
    net.welcomed(0, g);
    // Slowly enough for flood control: 12 failures, the last starting a 2 s wait.
    let tick = |net: &mut Net| {
        net.now = net.now + Millis(1_500);
        let now = net.now;
        for n in &mut net.nodes {
            n.hub.handle_timeout(now);
        }
        settle(net);
    };
    for j in 0..12 {
        tick(&mut net);
        sign_in(&mut net, 0, g, &format!("user{j}"), Proof::Password(pw(PW)));
    }
    net.recv(0, g);
    tick(&mut net);
    sign_in(&mut net, 0, g, "alice", Proof::Password(pw("guess")));
    let got = net.recv(0, g);
    let (kind, detail) = error(&got).unwrap_or_else(|| panic!("refused: {got:?}"));
    assert_eq!(kind, ErrorKind::Throttled, "{detail}");
    assert!(detail.contains("address"), "{detail}");
}

/// A hello on node `i` resuming `token` (pumped): the connection.
fn comes_back(net: &mut Net, i: usize, token: &ResumeToken) -> ConnId {
    let now = net.now;
    let x = net.nodes[i].hub.accept(LOCAL, now).unwrap();
    net.nodes[i].hub.handle_bytes(x, &MAGIC, now);
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("alice"),
        resume: Some(crate::wire::Resume {
            token: token.clone(),
            rooms: Vec::new(),
        }),
    };
    net.nodes[i]
        .hub
        .handle_bytes(x, &encode_frame(&hello).unwrap(), now);
    settle(net);
    x
}

/// A guest `alice` on node 0 that registers the account: its connection and resume token.
fn laptop_alice(net: &mut Net) -> (ConnId, ResumeToken) {
    let (laptop, _) = guest(net, 0, "alice");
    register(net, 0, laptop, PW, false);
    let token = net
        .recv(0, laptop)
        .iter()
        .find_map(|m| match m {
            ServerMsg::SignedIn { token, .. } => Some(token.clone()),
            _ => None,
        })
        .expect("registered");
    (laptop, token)
}

fn bye(msgs: &[ServerMsg]) -> Option<String> {
    msgs.iter().find_map(|m| match m {
        ServerMsg::Bye { reason } => Some(reason.to_string()),
        _ => None,
    })
}

/// One account on two nodes, each device given one node (until an account's nick can be held
/// by several nodes): a sign-in on node 1 takes the account's user there, and the device on
/// node 0 is sent away saying why. Its client comes back to node 0 with its token and signs in
/// by itself, which would take the account back and send node 1's device away in turn, back
/// and forth for ever: that sign-in is refused once, in words, as `Throttled` (a natter client
/// keeps its credentials and does not ask again by itself). The next sign-in there takes the
/// account back, and node 1's device is told so in turn; a member sees no quit.
#[test]
fn a_device_sent_away_by_a_sign_in_on_another_node_is_told_why_and_does_not_take_it_back_by_itself()
{
    let mut net = net(2);
    let (laptop, token) = laptop_alice(&mut net);
    let (carol, _) = guest(&mut net, 0, "carol");
    for c in [laptop, carol] {
        ask(&mut net, 0, c, &ClientMsg::Join { room: room("#r") });
        net.recv(0, c);
    }
    let (phone, _) = device(&mut net, 1, "phone", "alice");
    assert_eq!(net.owners.get("alice"), Some(&1), "the nick went to node 1");
    let words = bye(&net.recv(0, laptop)).expect("the laptop is sent away");
    assert!(
        words.contains("alice is connected through another server of this cluster"),
        "{words}"
    );
    net.nodes[0].hub.handle_close(laptop, net.now);
    settle(&mut net);

    // The laptop's client comes back with its token: a guest, and its own sign-in is refused.
    let back = comes_back(&mut net, 0, &token);
    let got = net.recv(0, back);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Welcome { resumed: false, .. })),
        "{got:?}"
    );
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    let got = net.recv(0, back);
    let (kind, words) = error(&got).expect("refused");
    assert_eq!(kind, ErrorKind::Throttled, "{got:?}");
    assert!(words.contains("/login alice <password>"), "{words}");
    assert_eq!(net.owners.get("alice"), Some(&1), "the account stayed");
    assert_eq!(bye(&net.recv(1, phone)), None, "the phone stays");

    // Asked again (by the person), it takes the account back; the phone is told in turn.
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        signed_in(&net.recv(0, back)).map(|s| s.0),
        Some(nick("alice"))
    );
    assert_eq!(net.owners.get("alice"), Some(&0));
    let words = bye(&net.recv(1, phone)).expect("the phone is sent away");
    assert!(words.contains("another server"), "{words}");
    let quits = net.log[&room("#r")]
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Quit { .. }))
        .count();
    assert_eq!(quits, 0, "a member saw alice quit");
}

/// The record of the account's user from the node it went to may come after the room's
/// `Join` that sent the device away (the users' watch lags behind the rooms' logs), and this
/// node's own record of the user is removed meanwhile: with the device's room let go (it was
/// alone in it here), nothing this node knows says where the account is. Its client's own
/// sign-in is held back all the same: before, it took the account back (a race a loaded CI
/// machine lost). Once the record comes it decides, as before.
#[test]
fn a_device_sent_away_is_held_back_before_the_record_of_where_its_account_went_comes() {
    let mut net = net(2);
    let (laptop, token) = laptop_alice(&mut net);
    ask(&mut net, 0, laptop, &ClientMsg::Join { room: room("#r") });
    net.recv(0, laptop);
    let (carol, _) = guest(&mut net, 1, "carol");
    ask(&mut net, 1, carol, &ClientMsg::Join { room: room("#r") });
    net.recv(1, carol);
    settle(&mut net);

    net.users_kv.hold = Some(1);
    let (phone, _) = device(&mut net, 1, "phone", "alice");
    assert!(
        bye(&net.recv(0, laptop)).is_some(),
        "the laptop is sent away"
    );
    net.nodes[0].hub.handle_close(laptop, net.now);
    settle(&mut net);
    assert!(
        net.nodes[0].hub.remote_presence(&nick("alice")).is_none(),
        "no record of alice from node 1 yet"
    );

    let back = comes_back(&mut net, 0, &token);
    net.recv(0, back);
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    let got = net.recv(0, back);
    let (kind, words) = error(&got).expect("held back");
    assert_eq!(kind, ErrorKind::Throttled, "{got:?}");
    assert!(words.contains("/login alice <password>"), "{words}");
    assert_eq!(net.owners.get("alice"), Some(&1), "the account stayed");
    assert_eq!(bye(&net.recv(1, phone)), None, "the phone stays");

    // The record comes; the person's sign-in (the next one) takes the account back.
    net.release_presence();
    assert!(
        net.nodes[0]
            .hub
            .remote_presence(&nick("alice"))
            .is_some_and(|p| !p.offline),
        "node 1's record of alice"
    );
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        signed_in(&net.recv(0, back)).map(|s| s.0),
        Some(nick("alice")),
        "the person's sign-in takes the account back"
    );
}

/// Only what would send another node's device away is held back: a fresh connection signs in
/// at once, a device sent away whose client signs in to another account is not held back, nor
/// one whose account is on this node again by the time it comes back.
#[test]
fn only_a_sign_in_that_would_take_the_account_back_by_itself_is_held_back() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#r") });
    net.recv(0, a);
    let (b, _) = guest(&mut net, 1, "bob");
    register(&mut net, 1, b, PW, false);
    net.recv(1, b);
    let (laptop, t1) = device(&mut net, 0, "laptop", "alice");
    let (desk, t2) = device(&mut net, 0, "desk", "alice");
    // A sign-in on node 1 sends node 0's devices of alice away.
    device(&mut net, 1, "phone", "alice");
    assert!(bye(&net.recv(0, laptop)).is_some());
    assert!(bye(&net.recv(0, desk)).is_some());
    // The desk's client, back with its token, signs in to bob: not held back.
    let back = comes_back(&mut net, 0, &t2);
    net.recv(0, back);
    sign_in(&mut net, 0, back, "bob", Proof::Password(pw(PW)));
    assert_eq!(
        signed_in(&net.recv(0, back)).map(|s| s.0),
        Some(nick("bob"))
    );
    // A fresh connection on node 0 takes alice back at once.
    let (tablet, _) = guest(&mut net, 0, "tablet");
    sign_in(&mut net, 0, tablet, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        signed_in(&net.recv(0, tablet)).map(|s| s.0),
        Some(nick("alice"))
    );
    // The laptop's client comes back now: alice is here, so it is one more device of her.
    let back = comes_back(&mut net, 0, &t1);
    net.recv(0, back);
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        signed_in(&net.recv(0, back)).map(|s| s.0),
        Some(nick("alice"))
    );
}

/// An account's user in no room on node 0 is sent away by a sign-in on node 1 too: no room's
/// `Join` tells node 0, but node 1's record of the user does, once the nick's entry says node 1
/// holds it. The laptop is told why; a direct message from node 0 then reaches the phone (it
/// went to the laptop, node 0's own user of the nick, before), and the laptop's client coming
/// back is held back as after a sent-away device in rooms.
#[test]
fn an_account_in_no_room_is_sent_away_by_a_sign_in_on_another_node() {
    let mut net = net(2);
    let (laptop, token) = laptop_alice(&mut net);
    let (bob, _) = guest(&mut net, 0, "bob");
    net.recv(0, bob);
    let (phone, _) = device(&mut net, 1, "phone", "alice");
    assert_eq!(net.owners.get("alice"), Some(&1), "the nick went to node 1");
    let words = bye(&net.recv(0, laptop)).expect("the laptop is sent away");
    assert!(
        words.contains("alice is connected through another server of this cluster"),
        "{words}"
    );
    assert!(
        !net.nodes[0]
            .hub
            .nicks
            .contains_key(&net.nodes[0].hub.users, "alice"),
        "node 0 still has a user alice"
    );
    net.nodes[0].hub.handle_close(laptop, net.now);
    settle(&mut net);

    // A direct message from node 0 goes to the node holding the nick: the phone has it.
    let dm = ClientMsg::Msg {
        to: nick("alice"),
        id: MsgId(7),
        text: text("psst"),
    };
    ask(&mut net, 0, bob, &dm);
    let got = net.recv(1, phone);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Direct(d) if d.text.as_str() == "psst")),
        "{got:?}"
    );

    // The laptop's client comes back with its token and signs in by itself: held back.
    let back = comes_back(&mut net, 0, &token);
    net.recv(0, back);
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    let got = net.recv(0, back);
    let (kind, words) = error(&got).expect("refused");
    assert_eq!(kind, ErrorKind::Throttled, "{got:?}");
    assert!(words.contains("/login alice <password>"), "{words}");
    assert_eq!(net.owners.get("alice"), Some(&1), "the account stayed");
    assert_eq!(bye(&net.recv(1, phone)), None, "the phone stays");
}

/// Another node's record of a user this node holds is not enough to send it away: a record
/// older than this node's take-over (the watch lags behind it) finds the nick's entry this
/// node's, and another account's or a guest's record of the nick changes nothing either.
#[test]
fn a_record_from_another_node_sends_nobody_away_while_the_nick_is_this_nodes() {
    let mut net = net(2);
    let (laptop, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, laptop, PW, false);
    net.recv(0, laptop);
    assert_eq!(net.owners.get("alice"), Some(&0));
    let now = net.now;
    let hub = &mut net.nodes[0].hub;
    hub.handle_record_elsewhere(&nick("alice"), Some(&nick("Alice")), now);
    hub.handle_record_elsewhere(&nick("alice"), Some(&nick("bob")), now);
    hub.handle_record_elsewhere(&nick("alice"), None, now);
    settle(&mut net);
    assert_eq!(bye(&net.recv(0, laptop)), None, "the laptop stays");
    assert!(
        net.nodes[0]
            .hub
            .nicks
            .contains_key(&net.nodes[0].hub.users, "alice")
    );
    // The entry is another node's now (a sign-in there whose record comes later): only the
    // record of the same account asks, and that one sends the laptop away.
    net.owners.insert("alice".into(), 1);
    let hub = &mut net.nodes[0].hub;
    hub.handle_record_elsewhere(&nick("alice"), Some(&nick("bob")), now);
    settle(&mut net);
    assert_eq!(
        bye(&net.recv(0, laptop)),
        None,
        "another account's record sent it away"
    );
    let hub = &mut net.nodes[0].hub;
    hub.handle_record_elsewhere(&nick("alice"), Some(&nick("alice")), now);
    settle(&mut net);
    assert!(
        bye(&net.recv(0, laptop)).is_some(),
        "the laptop was not sent away"
    );
}

/// An IRC connection on node `i` signing in to alice with SASL (from `LOCAL`), pumped.
fn irc_alice(net: &mut Net, i: usize) -> ConnId {
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("alice\0alice\0{PW}"));
    let now = net.now;
    let c = net.nodes[i]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    for line in [
        "CAP LS 302\r\nNICK alice\r\nUSER a 0 * :A\r\nCAP REQ :sasl\r\n".to_owned(),
        "AUTHENTICATE PLAIN\r\n".to_owned(),
        format!("AUTHENTICATE {plain}\r\n"),
        "CAP END\r\n".to_owned(),
    ] {
        let now = net.now;
        net.nodes[i].hub.handle_bytes(c, line.as_bytes(), now);
        settle(net);
    }
    c
}

/// An IRC client presents no token: sent away by a sign-in on another node, it reconnects and
/// signs in with SASL by itself, which took the account back (and the other device did the
/// same, at each one's reconnect delay). A SASL sign-in to the account from the address of an
/// IRC device sent away is refused (`904`, saying why and how to take it back) while the
/// account is connected on the other node, however often the client reconnects; once that
/// device leaves, or the hold-back's ten minutes have passed, it signs in.
#[test]
fn an_irc_device_sent_away_does_not_take_its_account_back_by_reconnecting() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    net.recv(0, a);
    net.nodes[0].hub.handle_close(a, net.now);
    settle(&mut net);
    let irc = irc_alice(&mut net, 0);
    assert!(
        raw_text(&net, 0, irc).contains(" 903 "),
        "{}",
        raw_text(&net, 0, irc)
    );
    assert_eq!(net.owners.get("alice"), Some(&0));

    let (phone, _) = device(&mut net, 1, "phone", "alice");
    assert_eq!(net.owners.get("alice"), Some(&1));
    let text = raw_text(&net, 0, irc);
    assert!(
        text.contains("alice is connected through another server of this cluster"),
        "{text}"
    );
    net.nodes[0].hub.handle_close(irc, net.now);
    settle(&mut net);

    // The client reconnects (twice: one that reconnects on a SASL failure is held back too).
    for _ in 0..2 {
        net.now = Millis(net.now.0 + 10_000);
        let back = irc_alice(&mut net, 0);
        let text = raw_text(&net, 0, back);
        assert!(text.contains(" 904 "), "{text}");
        assert!(
            text.contains("not signed in again by your client's reconnection"),
            "{text}"
        );
        assert!(text.contains("disconnect it, or wait"), "{text}");
        assert_eq!(net.owners.get("alice"), Some(&1), "the account stayed");
        assert_eq!(bye(&net.recv(1, phone)), None, "the phone stays");
        net.nodes[0].hub.handle_close(back, net.now);
        settle(&mut net);
    }
    // A natter client from the same address signs in at once (a person asked).
    let (desk, _) = guest(&mut net, 0, "desk");
    sign_in(&mut net, 0, desk, "alice", Proof::Password(pw(PW)));
    assert_eq!(
        signed_in(&net.recv(0, desk)).map(|s| s.0),
        Some(nick("alice"))
    );
    assert!(bye(&net.recv(1, phone)).is_some(), "the phone is sent away");
    net.nodes[0].hub.handle_close(desk, net.now);
    settle(&mut net);
}

/// The IRC hold-back ends when the device that has the account leaves, and after ten minutes.
#[test]
fn an_irc_device_sent_away_signs_in_once_the_other_device_leaves_or_later() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    net.recv(0, a);
    net.nodes[0].hub.handle_close(a, net.now);
    settle(&mut net);
    let irc = irc_alice(&mut net, 0);
    let (phone, _) = device(&mut net, 1, "phone", "alice");
    net.nodes[0].hub.handle_close(irc, net.now);
    settle(&mut net);
    // The phone leaves (quits: no resume to wait for): the IRC client's next SASL sign-in
    // takes the account.
    ask(&mut net, 1, phone, &ClientMsg::Quit { reason: None });
    net.nodes[1].hub.handle_close(phone, net.now);
    settle(&mut net);
    let back = irc_alice(&mut net, 0);
    let text = raw_text(&net, 0, back);
    assert!(text.contains(" 903 "), "{text}");
    assert_eq!(net.owners.get("alice"), Some(&0));
    assert!(
        !net.nodes[1]
            .hub
            .nicks
            .contains_key(&net.nodes[1].hub.users, "alice"),
        "node 1 kept alice"
    );

    // Sent away again; ten minutes later it signs in though the phone is still there.
    let (phone, _) = device(&mut net, 1, "phone", "alice");
    net.nodes[0].hub.handle_close(back, net.now);
    settle(&mut net);
    assert_eq!(net.owners.get("alice"), Some(&1));
    let held = irc_alice(&mut net, 0);
    assert!(
        raw_text(&net, 0, held).contains(" 904 "),
        "{}",
        raw_text(&net, 0, held)
    );
    net.now = Millis(net.now.0 + 600_000);
    let later = irc_alice(&mut net, 0);
    assert!(
        raw_text(&net, 0, later).contains(" 903 "),
        "{}",
        raw_text(&net, 0, later)
    );
    assert!(bye(&net.recv(1, phone)).is_some(), "the phone is sent away");
}

/// A device sent away whose account has nothing connected on the other node by the time its
/// client comes back (the other device quit; always-on, the account stays there offline) is
/// not held back: its sign-in sends nobody away, and the words it would get ("alice is
/// connected through another server") would be untrue.
#[test]
fn a_device_sent_away_is_not_held_back_once_nothing_of_its_account_is_connected_elsewhere() {
    let mut net = net(2);
    let (laptop, token) = laptop_alice(&mut net);
    let (carol, _) = guest(&mut net, 0, "carol");
    for c in [laptop, carol] {
        ask(&mut net, 0, c, &ClientMsg::Join { room: room("#r") });
        net.recv(0, c);
    }
    let (phone, _) = device(&mut net, 1, "phone", "alice");
    assert!(
        bye(&net.recv(0, laptop)).is_some(),
        "the laptop is sent away"
    );
    net.nodes[0].hub.handle_close(laptop, net.now);
    settle(&mut net);
    // The phone quits: alice is on no node now.
    ask(&mut net, 1, phone, &ClientMsg::Quit { reason: None });
    net.nodes[1].hub.handle_close(phone, net.now);
    settle(&mut net);

    assert!(
        net.nodes[0]
            .hub
            .remote_presence(&nick("alice"))
            .is_some_and(|p| p.offline),
        "alice is offline on node 1 (always-on), nothing of her connected"
    );
    let back = comes_back(&mut net, 0, &token);
    net.recv(0, back);
    sign_in(&mut net, 0, back, "alice", Proof::Password(pw(PW)));
    let got = net.recv(0, back);
    assert_eq!(signed_in(&got).map(|s| s.0), Some(nick("alice")), "{got:?}");
}

/// An admin account's password changed on another node ends the powers an IRC `OPER` with
/// the old one gave here, as a change on this node does, though the account has no user here
/// (the usual case: whoever `OPER`ed is not signed in to it). Until the review of the
/// thirty-ninth session they stayed.
#[test]
fn an_admin_password_changed_on_another_node_ends_an_oper_here() {
    let mut net = net(2);
    let (o, _) = guest(&mut net, 1, "alice");
    register(&mut net, 1, o, PW, false);
    assert!(signed_in(&net.recv(1, o)).is_some());
    for n in &mut net.nodes {
        n.hub.config.accounts.admins = vec![nick("alice")];
    }
    let (c, _) = guest(&mut net, 0, "carol");
    let carol = net.nodes[0].hub.user_of(c).expect("carol");
    // What a checked `OPER alice :password` leaves (IRC's; the cluster harness speaks natter's
    // protocol only).
    net.nodes[0]
        .hub
        .accounts
        .opers
        .insert(carol, "alice".to_owned());
    assert!(net.nodes[0].hub.is_admin_user(carol));
    let change = ClientMsg::ChangePassword {
        old: pw(PW),
        new: pw("battery staple"),
    };
    ask(&mut net, 1, o, &change);
    assert!(net.recv(1, o).contains(&ServerMsg::PasswordChanged));
    settle(&mut net);
    assert!(!net.nodes[0].hub.is_admin_user(carol), "the OPER ended");
}

/// A registration dropped because too many commands waited for a join to come back through
/// the log was refused as naming nothing (`Re::Conn`): a client of 14, told that such a flood
/// refusal is another command's, went on waiting for the registration's answer for good. It
/// names the account request (`Re::Account`), as the single node's flood refusal does.
#[test]
fn an_account_request_dropped_behind_a_join_says_it_is_the_account_requests() {
    let mut net = net(2);
    for (i, node) in net.nodes.iter_mut().enumerate() {
        let mut hub = Hub::new(Config {
            secret_seed: [i as u8; 32],
            flood_burst: 1_000,
            accounts: AccountsConfig {
                hash_cost: HashCost::TEST,
                ..AccountsConfig::default()
            },
            ..Config::default()
        });
        hub.enable_cluster();
        node.hub = hub;
    }
    let (a, _) = guest(&mut net, 0, "alice");
    let queue = crate::limits::FLOOD_QUEUE;
    let frames: Vec<u8> = std::iter::once(ClientMsg::Join { room: room("#a") })
        .chain((0..queue).map(|i| ClientMsg::Ping { token: i as u64 }))
        .chain([ClientMsg::Register {
            password: pw(PW),
            remember: false,
        }])
        .flat_map(|m| encode_frame(&m).unwrap())
        .collect();
    let now = net.now;
    net.nodes[0].hub.handle_bytes(a, &frames, now);
    settle(&mut net);
    let got = net.recv(0, a);
    let refusals: Vec<&Re> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Error {
                kind: ErrorKind::Flood,
                re,
                ..
            } => Some(re),
            _ => None,
        })
        .collect();
    assert_eq!(refusals, [&Re::Account], "{got:?}");
}

/// A node's write of an account carries the account's registration: the operator removing the
/// account and adding it again while the write is on its way (here: in the cluster before the
/// write reaches it, not yet heard of by the node) leaves the new account as it is. Until the
/// forty-second session the write was matched by name and landed on the new account.
#[test]
fn a_write_on_its_way_across_a_remove_and_add_of_the_name_leaves_the_new_account_alone() {
    let mut net = net(2);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#old") });
    net.recv(0, a);
    assert_eq!(net.kv.accounts["alice"].rooms, [room("#old")], "written");
    let mut again = net.kv.accounts["alice"].clone();
    again.record.created = Millis(again.record.created.0 + 1);
    again.rooms.clear();
    net.kv.accounts.insert("alice".into(), again);
    // alice (of the first registration) joins a room on node 0: the account's rooms change.
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#new") });
    assert!(
        net.kv.accounts["alice"].rooms.is_empty(),
        "the new account is in no room: {:?}",
        net.kv.accounts["alice"].rooms
    );
}
