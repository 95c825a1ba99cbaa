//! Server-wide bans in a cluster: a ban an admin sets on one node holds on every node (at
//! hello and sign-in, and on whom it holds already), on a restarted node, and runs out at
//! its time everywhere; a lift on one node lifts it everywhere. The bans live in a fake
//! key-value store ([`BansKv`]): one entry per mask, as natter-cluster keeps them.

use super::accounts::{PW, ask, error, guest, net, register, settle};
use super::*;
use crate::hub::mask_key;
use crate::moderation::{Entry, Mask};
use crate::wire::{AdminAction, ErrorKind, Proof};

/// The cluster's server bans by mask key, with the bucket's revision, and news held back.
#[derive(Default)]
pub(super) struct BansKv {
    bans: BTreeMap<String, Entry>,
    /// Each kept ban's revision.
    revisions: BTreeMap<String, u64>,
    revision: u64,
    hold_news: bool,
    news: Vec<(Mask, Option<Entry>, u64)>,
}

impl Net {
    /// Sets or lifts a node's ban, answers it and tells every node (see
    /// `ClusterOut::ServerBan`).
    pub(super) fn server_ban(&mut self, i: usize, mask: Mask, ban: Option<Entry>) {
        let key = mask_key(&mask);
        match &ban {
            Some(b) => self.bans_kv.bans.insert(key, b.clone()),
            None => self.bans_kv.bans.remove(&key),
        };
        self.bans_kv.revision += 1;
        let revision = self.bans_kv.revision;
        self.bans_kv.revisions.insert(mask_key(&mask), revision);
        let now = self.now;
        self.nodes[i]
            .hub
            .handle_server_ban_written(&mask, Some(revision), now);
        self.bans_kv.news.push((mask, ban, revision));
        if !self.bans_kv.hold_news {
            self.deliver_ban_news();
        }
    }

    /// Removes `mask`'s ban if still at `revision` and tells every node, as natter-cluster
    /// does (see `ClusterOut::ExpireServerBan`).
    pub(super) fn expire_server_ban(&mut self, mask: &Mask, revision: u64) {
        let key = mask_key(mask);
        if self.bans_kv.revisions.get(&key) != Some(&revision) {
            return;
        }
        self.bans_kv.bans.remove(&key);
        self.bans_kv.revisions.remove(&key);
        self.bans_kv.revision += 1;
        let news = (mask.clone(), None, self.bans_kv.revision);
        self.bans_kv.news.push(news);
        if !self.bans_kv.hold_news {
            self.deliver_ban_news();
        }
    }

    fn deliver_ban_news(&mut self) {
        let now = self.now;
        for (mask, ban, revision) in core::mem::take(&mut self.bans_kv.news) {
            for n in &mut self.nodes {
                n.hub
                    .handle_server_ban(mask.clone(), ban.clone(), revision, now);
            }
        }
    }
}

/// alice, registered on node 0 and an admin there and on node 1.
fn admin(net: &mut Net) -> ConnId {
    for n in &mut net.nodes {
        n.hub.config.accounts.admins = vec![nick("alice")];
    }
    let (a, _) = guest(net, 0, "alice");
    register(net, 0, a, PW, false);
    net.recv(0, a);
    a
}

fn admin_do(net: &mut Net, c: ConnId, action: AdminAction) -> Vec<ServerMsg> {
    ask(net, 0, c, &ClientMsg::Admin(action));
    net.recv(0, c)
}

fn ban(target: &str, duration: Option<Millis>, reason: Option<&str>) -> AdminAction {
    AdminAction::Ban {
        target: target.into(),
        duration,
        reason: reason.map(text),
    }
}

fn bye(msgs: &[ServerMsg]) -> bool {
    msgs.iter().any(|m| matches!(m, ServerMsg::Bye { .. }))
}

/// A binary hello on node `i` from `ip`, settled: what it got.
fn hello_from(net: &mut Net, i: usize, want: &str, ip: &str) -> Vec<ServerMsg> {
    let c = super::rooms::hello_on(net, i, want, ip);
    net.recv(i, c)
}

fn banned(msgs: &[ServerMsg]) -> bool {
    matches!(error(msgs), Some((ErrorKind::Banned, _)))
}

fn listed(net: &mut Net, i: usize, c: ConnId) -> Vec<String> {
    ask(net, i, c, &ClientMsg::Admin(AdminAction::Bans));
    net.recv(i, c)
        .iter()
        .find_map(|m| match m {
            ServerMsg::ServerBans { bans } => {
                Some(bans.iter().map(|b| b.mask.to_string()).collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_server_ban_set_on_one_node_puts_out_and_keeps_out_on_another() {
    let mut net = net(2);
    let a = admin(&mut net);
    let (m, _) = guest(&mut net, 1, "mallory");
    let got = admin_do(&mut net, a, ban("nick:mallory", None, Some("spam")));
    assert!(error(&got).is_none(), "{got:?}");
    assert!(net.bans_kv.bans.contains_key("nick:mallory"));
    // mallory, on node 1, is told why and put out.
    let got = net.recv(1, m);
    assert!(
        got.iter().any(|x| matches!(x, ServerMsg::Error { kind: ErrorKind::Banned, detail, .. } if detail.contains("spam") && detail.contains("alice"))),
        "{got:?}"
    );
    assert!(bye(&got), "{got:?}");
    // Coming back as mallory on node 1 is refused at hello, as on node 0.
    for i in [1, 0] {
        let got = hello_from(&mut net, i, "mallory", "198.51.100.7");
        assert!(banned(&got), "node {i}: {got:?}");
    }
    // Both nodes keep it (an admin's `Bans` lists what its node keeps).
    assert_eq!(listed(&mut net, 0, a), ["nick:mallory"]);
    assert_eq!(net.nodes[1].hub.server_bans, net.nodes[0].hub.server_bans);
}

#[test]
fn a_network_ban_holds_at_hello_and_an_account_ban_at_sign_in_on_every_node() {
    let mut net = net(2);
    let a = admin(&mut net);
    // victor registers on node 1 and leaves.
    let (v, _) = guest(&mut net, 1, "victor");
    register(&mut net, 1, v, PW, false);
    net.nodes[1].hub.handle_close(v, net.now);
    net.owners.remove("victor");
    settle(&mut net);
    admin_do(&mut net, a, ban("203.0.113.0/24", None, None));
    admin_do(&mut net, a, ban("account:victor", None, None));
    let got = hello_from(&mut net, 1, "innocent", "203.0.113.66");
    assert!(banned(&got), "{got:?}");
    let got = hello_from(&mut net, 1, "innocent", "198.51.100.7");
    assert!(!banned(&got), "{got:?}");
    let (g, _) = guest(&mut net, 1, "someone");
    let sign_in = ClientMsg::SignIn {
        account: nick("victor"),
        proof: Proof::Password(crate::types::Password(PW.into())),
        remember: false,
    };
    ask(&mut net, 1, g, &sign_in);
    let got = net.recv(1, g);
    assert!(banned(&got), "{got:?}");
}

#[test]
fn a_lift_on_one_node_lifts_it_everywhere_and_a_term_runs_out_everywhere() {
    let mut net = net(2);
    let a = admin(&mut net);
    admin_do(&mut net, a, ban("nick:mallory", None, None));
    // An hour's ban of a network.
    admin_do(
        &mut net,
        a,
        ban("203.0.113.0/24", Some(Millis(3_600_000)), None),
    );
    assert!(banned(&hello_from(&mut net, 1, "mallory", "198.51.100.7")));
    let got = admin_do(
        &mut net,
        a,
        AdminAction::Unban {
            target: "nick:mallory".into(),
        },
    );
    assert!(error(&got).is_none(), "{got:?}");
    assert!(!net.bans_kv.bans.contains_key("nick:mallory"));
    assert!(!banned(&hello_from(&mut net, 1, "mallory", "198.51.100.7")));
    assert!(banned(&hello_from(&mut net, 1, "x", "203.0.113.9")));
    net.now = Millis(net.now.0 + 3_600_001);
    assert!(!banned(&hello_from(&mut net, 1, "x", "203.0.113.9")));
    assert!(
        listed(&mut net, 0, a).is_empty(),
        "not listed once it ran out"
    );
}

#[test]
fn a_ban_that_ran_out_is_removed_from_the_cluster_once_but_not_one_set_again() {
    let mut net = net(2);
    let a = admin(&mut net);
    admin_do(&mut net, a, ban("nick:mallory", Some(Millis(60_000)), None));
    admin_do(&mut net, a, ban("nick:eve", None, None));
    let alive = ["n0".to_owned(), "n1".to_owned()];
    // In force: nothing is asked at the nodes' next listing.
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_nodes(&alive, now);
        assert_eq!(n.hub.poll_cluster(), None);
    }
    // It ran out: both nodes ask to remove it, at the revision they heard; the first does.
    net.now = Millis(net.now.0 + 60_001);
    let now = net.now;
    let revision = net.bans_kv.revisions[&mask_key(&Mask::parse("nick:mallory").unwrap())];
    let mut asked = Vec::new();
    for n in &mut net.nodes {
        n.hub.handle_nodes(&alive, now);
        asked.extend(core::iter::from_fn(|| n.hub.poll_cluster()));
    }
    let expire = ClusterOut::ExpireServerBan {
        mask: Mask::parse("nick:mallory").unwrap(),
        revision,
    };
    assert_eq!(asked, [expire.clone(), expire.clone()]);
    for (i, o) in asked.into_iter().enumerate() {
        net.cluster(i, o);
    }
    net.pump();
    assert!(!net.bans_kv.bans.contains_key("nick:mallory"));
    assert!(
        net.bans_kv.bans.contains_key("nick:eve"),
        "only the one that ran out"
    );
    // Every node forgot it: nothing more is asked, even later.
    let later = Millis(now.0 + 60_000);
    for n in &mut net.nodes {
        n.hub.handle_nodes(&alive, later);
        assert_eq!(n.hub.poll_cluster(), None);
    }
    net.now = later;

    // Ran out again, but banned again before node 1's removal is done: the new ban is kept.
    admin_do(&mut net, a, ban("nick:mallory", Some(Millis(1_000)), None));
    net.now = Millis(net.now.0 + 1_001);
    let now = net.now;
    net.nodes[1].hub.handle_nodes(&alive, now);
    let late = net.nodes[1].hub.poll_cluster().expect("asked to remove it");
    assert!(
        matches!(late, ClusterOut::ExpireServerBan { .. }),
        "{late:?}"
    );
    admin_do(&mut net, a, ban("nick:mallory", None, None));
    net.cluster(1, late);
    net.pump();
    assert!(net.bans_kv.bans.contains_key("nick:mallory"), "set again");
    assert!(banned(&hello_from(&mut net, 1, "mallory", "198.51.100.7")));
}

#[test]
fn a_restarted_node_holds_the_clusters_bans_before_anyone_comes() {
    let mut net = net(2);
    let a = admin(&mut net);
    admin_do(&mut net, a, ban("nick:mallory", None, None));
    // Node 1 starts afresh: it reads the bans the cluster keeps, as natter-server does.
    let mut fresh = super::accounts::hub(101);
    for (key, entry) in &net.bans_kv.bans {
        assert_eq!(*key, mask_key(&entry.mask));
        fresh.handle_server_ban(
            entry.mask.clone(),
            Some(entry.clone()),
            net.bans_kv.revision,
            net.now,
        );
    }
    net.nodes[1] = Node {
        hub: fresh,
        following: BTreeSet::new(),
        inbox: HashMap::new(),
        raw: HashMap::new(),
    };
    assert!(banned(&hello_from(&mut net, 1, "Mallory", "198.51.100.7")));
}

#[test]
fn news_of_a_ban_older_than_this_nodes_lift_does_not_put_anyone_out() {
    let mut net = net(2);
    let a = admin(&mut net);
    // The watch is slow: node 0 bans and lifts before any news comes.
    net.bans_kv.hold_news = true;
    admin_do(&mut net, a, ban("nick:mallory", None, None));
    admin_do(
        &mut net,
        a,
        AdminAction::Unban {
            target: "nick:mallory".into(),
        },
    );
    let (m, _) = guest(&mut net, 0, "mallory");
    net.bans_kv.hold_news = false;
    net.deliver_ban_news();
    settle(&mut net);
    assert!(
        !bye(&net.recv(0, m)),
        "the ban's late news is older than the lift"
    );
    assert!(net.nodes[0].hub.server_bans.is_empty());
    assert!(net.nodes[1].hub.server_bans.is_empty());
}

#[test]
fn news_held_while_this_nodes_change_is_unanswered_is_applied_once_answered() {
    let mut net = net(1);
    let mallory = Mask::parse("nick:mallory").unwrap();
    let entry = Entry {
        mask: mallory.clone(),
        until: None,
        by: nick("root"),
        reason: None,
        at: crate::time::Millis(0),
    };
    let now = net.now;
    let hub = &mut net.nodes[0].hub;
    hub.cluster_server_ban(&mallory, None);
    // Another node's ban comes (revision 5) before the answer to this node's lift (4).
    hub.handle_server_ban(mallory.clone(), Some(entry.clone()), 5, now);
    assert!(hub.server_bans.is_empty(), "held");
    hub.handle_server_ban_written(&mallory, Some(4), now);
    assert_eq!(hub.server_bans, [entry], "applied once answered");
}

#[test]
fn a_network_ban_puts_out_everyone_it_holds_on_every_node_but_never_the_admin_who_sets_it() {
    let mut net = net(2);
    let a = admin(&mut net);
    // gina, on node 1, is an admin too: only the admin who sets a ban is spared, and it is
    // spared by refusing a ban that holds it (it would keep it out at its next hello).
    let g = super::rooms::hello_on(&mut net, 1, "gina", "203.0.113.5");
    net.welcomed(1, g);
    register(&mut net, 1, g, PW, false);
    net.recv(1, g);
    for n in &mut net.nodes {
        n.hub.config.accounts.admins.push(nick("gina"));
    }
    let h = super::rooms::hello_on(&mut net, 0, "hal", "203.0.113.6");
    net.welcomed(0, h);
    // alice is on 127.0.0.1: a ban of her own network is refused, and holds nobody.
    let got = admin_do(&mut net, a, ban("127.0.0.0/8", None, None));
    assert!(
        matches!(error(&got), Some((ErrorKind::Invalid, d)) if d.starts_with("not yourself")),
        "{got:?}"
    );
    assert!(!bye(&net.recv(1, g)) && !bye(&net.recv(0, h)));
    let got = admin_do(&mut net, a, ban("203.0.113.0/24", None, None));
    assert!(!bye(&got), "the admin who set it stays: {got:?}");
    assert!(bye(&net.recv(1, g)), "put out on the other node");
    assert!(bye(&net.recv(0, h)), "and on the admin's");
    ask(&mut net, 0, a, &ClientMsg::Admin(AdminAction::Bans));
    assert!(
        !bye(&net.recv(0, a)),
        "still there after the news came back"
    );
}

#[test]
fn bans_set_at_once_on_two_nodes_may_pass_the_cap_by_one_each_then_every_node_refuses() {
    // The cap is checked by each admin's node against the bans it has heard of (documented in
    // ARCHITECTURE.md, "Not done yet"): this shows by how much it can be passed.
    let mut net = net(2);
    let a = admin(&mut net);
    for n in &mut net.nodes {
        n.hub.config.accounts.admins = vec![nick("alice"), nick("bob")];
    }
    let (b, _) = guest(&mut net, 1, "bob");
    register(&mut net, 1, b, PW, false);
    net.recv(1, b);
    for i in 0..999 {
        let mask = Mask::parse(&format!("nick:spammer{i}")).unwrap();
        let entry = Entry {
            mask: mask.clone(),
            until: None,
            by: nick("alice"),
            reason: None,
            at: crate::time::Millis(0),
        };
        net.server_ban(0, mask, Some(entry));
    }
    assert_eq!(net.bans_kv.bans.len(), 999);
    // Each node has heard of 999 and adds one before hearing of the other's.
    net.bans_kv.hold_news = true;
    let got = admin_do(&mut net, a, ban("nick:x", None, None));
    assert!(error(&got).is_none(), "{got:?}");
    ask(&mut net, 1, b, &ClientMsg::Admin(ban("nick:y", None, None)));
    let got = net.recv(1, b);
    assert!(error(&got).is_none(), "{got:?}");
    net.bans_kv.hold_news = false;
    net.deliver_ban_news();
    assert_eq!(net.bans_kv.bans.len(), 1_001, "passed by one per node");
    // Past the cap, every node refuses.
    let got = admin_do(&mut net, a, ban("nick:z", None, None));
    assert!(
        error(&got).is_some_and(|(_, why)| why.contains("1000 bans")),
        "{got:?}"
    );
    ask(&mut net, 1, b, &ClientMsg::Admin(ban("nick:z", None, None)));
    let got = net.recv(1, b);
    assert!(error(&got).is_some(), "{got:?}");
    assert_eq!(net.bans_kv.bans.len(), 1_001);
}

#[test]
fn an_admins_wall_and_wallops_reach_the_users_of_every_node() {
    let mut net = net(2);
    let a = admin(&mut net);
    let (b, _) = guest(&mut net, 1, "bob");
    // An IRC user with user mode `w` on node 1, and one without it.
    let now = net.now;
    let irc = |net: &mut Net, nick: &str| {
        let c = net.nodes[1]
            .hub
            .accept_on(crate::hub::Door::Irc, LOCAL, now)
            .unwrap();
        let reg = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
        net.nodes[1].hub.handle_bytes(c, reg.as_bytes(), now);
        net.pump();
        c
    };
    let (w, paul) = (irc(&mut net, "wendy"), irc(&mut net, "paul"));
    net.nodes[1].hub.handle_bytes(w, b"MODE wendy +w\r\n", now);
    net.pump();
    net.nodes[1].raw.clear();
    let got = admin_do(&mut net, a, AdminAction::Wall(text("maintenance at noon")));
    assert!(error(&got).is_none(), "{got:?}");
    let wall = |m: &ServerMsg| matches!(m, ServerMsg::Wall { from, text } if from.as_str() == "alice" && text.as_str() == "maintenance at noon");
    assert!(got.iter().any(wall), "the admin's own node: {got:?}");
    let got = net.recv(1, b);
    assert!(got.iter().any(wall), "another node's user: {got:?}");
    let raw = |net: &Net, c: ConnId| {
        String::from_utf8_lossy(net.nodes[1].raw.get(&c).map_or(&[][..], |r| &r[..])).into_owned()
    };
    for c in [w, paul] {
        let seen = raw(&net, c);
        assert!(
            seen.contains("NOTICE") && seen.contains("maintenance at noon"),
            "{seen}"
        );
    }
    // WALLOPS from an IRC client signed in as alice on node 0: node 1's IRC users with user
    // mode `w` read it, the others do not.
    use base64::Engine;
    let o = net.nodes[0]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{PW}"));
    let login = format!(
        "CAP LS 302\r\nNICK alicia\r\nUSER a 0 * :A\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n\
         AUTHENTICATE {plain}\r\nCAP END\r\n"
    );
    net.nodes[0].hub.handle_bytes(o, login.as_bytes(), now);
    settle(&mut net);
    net.now = Millis(net.now.0 + 5_000);
    net.nodes[1].raw.clear();
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_bytes(o, b"WALLOPS :ops, look at #k\r\n", now);
    net.pump();
    let seen = raw(&net, w);
    assert!(seen.contains(" WALLOPS :ops, look at #k"), "{seen}");
    assert_eq!(raw(&net, paul), "", "no +w, no WALLOPS");
    assert!(net.recv(1, b).is_empty(), "not for the binary dialect");
}

#[test]
fn a_wall_or_wallops_while_the_cluster_is_away_is_refused_and_heard_by_nobody() {
    let mut net = net(2);
    let a = admin(&mut net);
    let (b, _) = guest(&mut net, 1, "bob");
    let now = net.now;
    // An IRC user with user mode `w` on the admin's own node, and alice on IRC there too.
    let w = net.nodes[0]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    net.nodes[0]
        .hub
        .handle_bytes(w, b"NICK wendy\r\nUSER w 0 * :W\r\nMODE wendy +w\r\n", now);
    use base64::Engine;
    let o = net.nodes[0]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{PW}"));
    let login = format!(
        "CAP LS 302\r\nNICK alicia\r\nUSER a 0 * :A\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n\
         AUTHENTICATE {plain}\r\nCAP END\r\n"
    );
    net.nodes[0].hub.handle_bytes(o, login.as_bytes(), now);
    settle(&mut net);
    net.recv(0, a);
    net.recv(1, b);
    net.nodes[0].raw.clear();
    // NATS is away from the admin's node: a wall would reach its own users only.
    net.nodes[0].hub.handle_cluster_link(false);
    let got = admin_do(&mut net, a, AdminAction::Wall(text("maintenance at noon")));
    let (kind, why) = error(&got).expect("refused");
    assert_eq!(kind, ErrorKind::Unavailable);
    assert!(why.contains("cluster is unavailable"), "{why}");
    assert!(
        !got.iter().any(|m| matches!(m, ServerMsg::Wall { .. })),
        "not said on its own node either: {got:?}"
    );
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_bytes(o, b"WALLOPS :ops, look at #k\r\n", now);
    net.pump();
    let raw = |net: &Net, c: ConnId| {
        String::from_utf8_lossy(net.nodes[0].raw.get(&c).map_or(&[][..], |r| &r[..])).into_owned()
    };
    assert!(!raw(&net, w).contains("look at #k"), "{}", raw(&net, w));
    assert!(
        raw(&net, o).contains("cluster is unavailable"),
        "{}",
        raw(&net, o)
    );
    assert!(net.recv(1, b).is_empty(), "nothing crossed");
    // Back: the wall is said, on both nodes.
    net.nodes[0].hub.handle_cluster_link(true);
    let got = admin_do(&mut net, a, AdminAction::Wall(text("maintenance at noon")));
    let wall = |m: &ServerMsg| matches!(m, ServerMsg::Wall { text, .. } if text.as_str() == "maintenance at noon");
    assert!(got.iter().any(wall), "{got:?}");
    assert!(net.recv(1, b).iter().any(wall));
}
