//! Room moderation in a cluster: settings made on one node hold on every node and on a
//! restarted one; a ban or a kick made on one node puts out a member on another, visibly; two
//! nodes' changes to one room at once both land. The settings live in a fake key-value store
//! ([`RoomsKv`]) that merges each edit as natter-cluster does (`SharedRoom::apply`) and tells
//! every node the room as it is after it.

use super::accounts::{PW, ask, error, guest, hub, net, register, settle};
use super::*;
use crate::moderation::{ModeChange, PolicyEdit, RoomClose, SharedRoom};
use crate::wire::{ErrorKind, ModAction};

/// Rooms' settings as the cluster keeps them, and news held back.
#[derive(Default)]
pub(super) struct RoomsKv {
    rooms: BTreeMap<RoomName, SharedRoom>,
    revision: u64,
    hold_news: bool,
    news: Vec<(RoomName, Option<SharedRoom>, Option<RoomClose>, u64)>,
    /// Answers to nodes' edits held back (their news may come first).
    hold_answers: bool,
    answers: Vec<(usize, RoomName, u64)>,
}

impl Net {
    /// Merges a node's edit, answers it and tells every node (see `ClusterOut::RoomEdit`).
    pub(super) fn room_edit(&mut self, i: usize, room: RoomName, edit: PolicyEdit) {
        let mut shared = self.rooms_kv.rooms.remove(&room).unwrap_or_default();
        // As natter-cluster: a removal's lift is left out once another registration holds
        // the name.
        let another = |name: &Nick, r: &Option<Millis>| {
            let held = self.kv.accounts.get(&name.folded());
            r.is_some_and(|r| held.is_some_and(|a| a.record.created != r))
        };
        let kept = match &edit {
            PolicyEdit::AccountGone { name, registered } if another(name, registered) => {
                Some(shared)
            }
            _ => shared.apply(&edit).then_some(shared),
        };
        if let Some(s) = &kept {
            self.rooms_kv.rooms.insert(room.clone(), s.clone());
        }
        self.rooms_kv.revision += 1;
        let revision = self.rooms_kv.revision;
        if self.rooms_kv.hold_answers {
            self.rooms_kv.answers.push((i, room.clone(), revision));
        } else {
            self.nodes[i].hub.handle_room_written(&room, Some(revision));
        }
        let close = match edit {
            PolicyEdit::Close(close) => Some(close),
            _ => None,
        };
        self.rooms_kv.news.push((room, kept, close, revision));
        if !self.rooms_kv.hold_news {
            self.deliver_room_news();
        }
    }

    /// The founder of `room` as the cluster keeps its settings.
    pub(super) fn rooms_kv_founder(&self, room: &RoomName) -> Option<String> {
        let founder = self.rooms_kv.rooms.get(room)?.policy.founder.as_ref()?;
        Some(founder.to_string())
    }

    /// Every node hears the news held so far, in order (the bucket's watch).
    fn deliver_room_news(&mut self) {
        let now = self.now;
        for (room, shared, close, revision) in core::mem::take(&mut self.rooms_kv.news) {
            for n in &mut self.nodes {
                let (shared, close) = (shared.clone(), close.clone());
                n.hub
                    .handle_room(room.clone(), shared, close, revision, now);
            }
        }
    }
}

/// Lets `ms` pass on every node, their timers run and the net settled.
pub(super) fn later(net: &mut Net, ms: u64) {
    net.now = Millis(net.now.0 + ms);
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_timeout(now);
    }
    settle(net);
}

fn moderate(net: &mut Net, i: usize, c: ConnId, r: &str, action: ModAction) {
    ask(
        net,
        i,
        c,
        &ClientMsg::Moderate {
            room: room(r),
            action,
        },
    );
}

fn join(net: &mut Net, i: usize, c: ConnId, r: &str) {
    ask(net, i, c, &ClientMsg::Join { room: room(r) });
}

/// alice registered on node 0, in `#r`, its founder.
fn founder(net: &mut Net) -> ConnId {
    let (a, _) = guest(net, 0, "alice");
    register(net, 0, a, PW, false);
    join(net, 0, a, "#r");
    moderate(net, 0, a, "#r", ModAction::Register);
    net.recv(0, a);
    a
}

/// dave registered on node 1, in `#r`.
fn dave_in_r(net: &mut Net) -> ConnId {
    let (d, _) = guest(net, 1, "dave");
    register(net, 1, d, PW, false);
    join(net, 1, d, "#r");
    d
}

/// Two nodes: alice registered on node 0, `#r`'s founder, and dave registered on node 1, in it.
fn alice_and_dave() -> (Net, ConnId, ConnId) {
    let mut net = net(2);
    let a = founder(&mut net);
    let d = dave_in_r(&mut net);
    (net, a, d)
}

/// alice (`a`, made an admin on node 0) closes `#r` there, saying `why`.
fn close_r(net: &mut Net, a: ConnId, why: Option<&str>) {
    let now = net.now;
    net.nodes[0].hub.config.accounts.admins = vec![nick("alice")];
    let close = crate::wire::AdminAction::Close {
        room: room("#r"),
        reason: why.map(text),
    };
    net.nodes[0]
        .hub
        .handle_bytes(a, &encode_frame(&ClientMsg::Admin(close)).unwrap(), now);
    settle(net);
}

/// A guest on node `i` signs in to `account`: its connection, what it got, and the notes
/// (`Done`) in that.
fn sign_in_on(net: &mut Net, i: usize, account: &str) -> (ConnId, Vec<ServerMsg>, Vec<String>) {
    let (c, _) = guest(net, i, "someone");
    let sign_in = ClientMsg::SignIn {
        account: nick(account),
        proof: crate::wire::Proof::Password(crate::types::Password(PW.into())),
        remember: false,
    };
    ask(net, i, c, &sign_in);
    let got = net.recv(i, c);
    let told = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Done(w) => Some(w.as_str().to_owned()),
            _ => None,
        })
        .collect();
    (c, got, told)
}

/// Node 1 hears of `account`'s removal before the cluster has done it: its lifts in `#r`,
/// held back (to reach the cluster late).
fn late_lifts(net: &mut Net, account: &str) -> Vec<PolicyEdit> {
    let now = net.now;
    net.nodes[1].hub.handle_account_dropped(account, now);
    core::iter::from_fn(|| net.nodes[1].hub.poll_cluster())
        .filter_map(|o| match o {
            ClusterOut::RoomEdit { room: r, edit } if r == room("#r") => Some(edit),
            _ => None,
        })
        .collect()
}

/// `account` removed from the cluster (node 0's removal done, every node hearing it and
/// lifting its rights); then a second passes, so that a registration of the name anew is
/// another.
fn removed(net: &mut Net, account: &str) {
    net.account_out(
        0,
        ClusterOut::AccountWrite {
            account: nick(account),
            registered: None,
            write: crate::persist::Write::DropAccount(nick(account)),
        },
    );
    settle(net);
    net.now = Millis(net.now.0 + 1_000);
}

/// A binary hello as `want` on node `i` from `ip`, settled (what it got is still to read).
pub(super) fn hello_on(net: &mut Net, i: usize, want: &str, ip: &str) -> ConnId {
    let now = net.now;
    let c = net.nodes[i].hub.accept(ip.parse().unwrap(), now).unwrap();
    net.nodes[i].hub.handle_bytes(c, &MAGIC, now);
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick(want),
        resume: None,
    };
    net.nodes[i]
        .hub
        .handle_bytes(c, &encode_frame(&hello).unwrap(), now);
    settle(net);
    c
}

/// A binary guest on node `i` connected from `ip`, welcomed.
fn guest_from(net: &mut Net, i: usize, want: &str, ip: &str) -> ConnId {
    let c = hello_on(net, i, want, ip);
    net.welcomed(i, c);
    c
}

fn kicks(msgs: &[ServerMsg]) -> Vec<(String, String)> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                from,
                kind: EventKind::Kick { target, .. },
                ..
            }) => Some((from.to_string(), target.to_string())),
            _ => None,
        })
        .collect()
}

fn parted(msgs: &[ServerMsg]) -> bool {
    msgs.iter()
        .any(|m| matches!(m, ServerMsg::Parted { room: r } if *r == room("#r")))
}

fn joined(msgs: &[ServerMsg]) -> bool {
    msgs.iter()
        .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r")))
}

/// A node restarted: a new hub that reads the accounts and rooms the cluster keeps.
fn restart(net: &mut Net, i: usize) {
    let mut fresh = hub(100 + i as u8);
    for a in net.kv.accounts.values() {
        fresh.handle_account(a.clone(), 1, net.now);
    }
    for (room, shared) in &net.rooms_kv.rooms {
        fresh.handle_room(
            room.clone(),
            Some(shared.clone()),
            None,
            net.rooms_kv.revision,
            net.now,
        );
    }
    net.nodes[i] = Node {
        hub: fresh,
        following: BTreeSet::new(),
        inbox: HashMap::new(),
        raw: HashMap::new(),
    };
}

#[test]
fn a_ban_on_one_node_puts_out_a_member_on_another_and_keeps_it_out() {
    let mut net = net(2);
    let a = founder(&mut net);
    let b = guest_from(&mut net, 1, "bob", "203.0.113.7");
    join(&mut net, 1, b, "#r");
    let irc = net.irc(1, "carol");
    settle(&mut net);
    let now = net.now;
    net.nodes[1].hub.handle_bytes(irc, b"JOIN #r\r\n", now);
    settle(&mut net);
    net.recv(0, a);
    net.recv(1, b);

    let ban = ModAction::Ban {
        target: "bob".into(),
        duration: None,
        reason: Some(text("spam")),
    };
    moderate(&mut net, 0, a, "#r", ban);
    // bob's node waits for a KICK that may come after the ban (an IRC operator's /kickban).
    let at_b = net.recv(1, b);
    assert!(kicks(&at_b).is_empty(), "{at_b:?}");
    later(&mut net, crate::limits::BAN_KICK_WAIT.0);
    let at_b = net.recv(1, b);
    assert_eq!(
        kicks(&at_b),
        [("alice".to_owned(), "bob".to_owned())],
        "bob sees its kick, by the operator on the other node: {at_b:?}"
    );
    assert!(parted(&at_b), "and leaves the room there: {at_b:?}");
    let at_a = net.recv(0, a);
    assert_eq!(kicks(&at_a), [("alice".to_owned(), "bob".to_owned())]);
    let kick_line = raw_text(&net, 1, irc);
    assert!(
        kick_line.contains(":alice!") && kick_line.contains("KICK #r bob :spam"),
        "an IRC member on bob's node sees the kick: {kick_line}"
    );
    assert!(
        !who(&mut net, 0, a).contains(&"bob".to_owned()),
        "bob is in nobody's list"
    );

    let bans: Vec<String> = net.rooms_kv.rooms[&room("#r")]
        .policy
        .bans
        .iter()
        .map(|b| b.mask.to_string())
        .collect();
    assert_eq!(
        bans,
        ["nick:bob", "203.0.113.7/32"],
        "bob's node adds the guest's address, as its operator"
    );
    join(&mut net, 1, b, "#r");
    let again = net.recv(1, b);
    assert!(!joined(&again), "{again:?}");
    assert_eq!(
        error(&again).map(|e| e.0),
        Some(ErrorKind::Banned),
        "{again:?}"
    );

    // Under another nick from the same address: held all the same, as on a single node.
    let b3 = guest_from(&mut net, 0, "robert", "203.0.113.7");
    join(&mut net, 0, b3, "#r");
    let other = net.recv(0, b3);
    assert_eq!(
        error(&other).map(|e| e.0),
        Some(ErrorKind::Banned),
        "{other:?}"
    );

    // A node that restarts reads the ban.
    restart(&mut net, 1);
    let (b2, _) = guest(&mut net, 1, "bob");
    join(&mut net, 1, b2, "#r");
    let after = net.recv(1, b2);
    assert_eq!(
        error(&after).map(|e| e.0),
        Some(ErrorKind::Banned),
        "{after:?}"
    );
}

#[test]
fn a_kick_on_one_node_puts_out_a_member_on_another() {
    let mut net = net(2);
    let a = founder(&mut net);
    let (b, _) = guest(&mut net, 1, "bob");
    join(&mut net, 1, b, "#r");
    net.recv(1, b);
    let kick = ModAction::Kick {
        nick: nick("bob"),
        reason: None,
    };
    moderate(&mut net, 0, a, "#r", kick);
    let at_b = net.recv(1, b);
    assert_eq!(kicks(&at_b), [("alice".to_owned(), "bob".to_owned())]);
    assert!(parted(&at_b), "{at_b:?}");
    // A kick is not a ban: bob may come back.
    join(&mut net, 1, b, "#r");
    assert!(joined(&net.recv(1, b)));
    // The founder is out of reach from another node too.
    let (o, _) = guest(&mut net, 1, "olga");
    join(&mut net, 1, o, "#r");
    net.recv(1, o);
    moderate(
        &mut net,
        1,
        o,
        "#r",
        ModAction::Kick {
            nick: nick("alice"),
            reason: None,
        },
    );
    assert_eq!(
        error(&net.recv(1, o)).map(|e| e.0),
        Some(ErrorKind::NotOperator)
    );
}

#[test]
fn a_key_a_mute_and_an_invitation_set_on_one_node_hold_on_another() {
    let mut net = net(2);
    let a = founder(&mut net);
    moderate(
        &mut net,
        0,
        a,
        "#r",
        ModAction::Mode(ModeChange::Key(Some(text("sesame")))),
    );
    let (b, _) = guest(&mut net, 1, "bob");
    join(&mut net, 1, b, "#r");
    assert_eq!(error(&net.recv(1, b)).map(|e| e.0), Some(ErrorKind::BadKey));
    // An invitation lets bob in without the key, and reaches it on its node.
    moderate(&mut net, 0, a, "#r", ModAction::Invite(nick("bob")));
    let told = net.recv(1, b);
    assert!(
        told.iter()
            .any(|m| matches!(m, ServerMsg::Invited { by, .. } if *by == nick("alice"))),
        "{told:?}"
    );
    join(&mut net, 1, b, "#r");
    assert!(joined(&net.recv(1, b)));
    let mute = ModAction::Mute {
        target: "bob".into(),
        duration: None,
    };
    moderate(&mut net, 0, a, "#r", mute);
    net.recv(1, b);
    net.send(1, b, &say(1, "hello?"));
    let muted = net.recv(1, b);
    assert!(
        error(&muted).is_some_and(|(_, d)| d.contains("muted")),
        "{muted:?}"
    );
    assert!(
        !net.rooms_kv.rooms[&room("#r")]
            .invited
            .iter()
            .any(|(n, _)| *n == nick("bob")),
        "the invitation was used"
    );
}

#[test]
fn two_operators_changing_one_room_on_two_nodes_at_once_both_land() {
    let (mut net, a, d) = alice_and_dave();
    moderate(&mut net, 0, a, "#r", ModAction::Op(nick("dave")));
    net.recv(1, d);
    // Both change the room before either hears the other's change.
    net.rooms_kv.hold_news = true;
    let now = net.now;
    let set = |change| {
        encode_frame(&ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Mode(change),
        })
        .unwrap()
    };
    let m = set(ModeChange::Moderated(true));
    let t = set(ModeChange::TopicOps(true));
    net.nodes[0].hub.handle_bytes(a, &m, now);
    net.nodes[1].hub.handle_bytes(d, &t, now);
    settle(&mut net);
    net.rooms_kv.hold_news = false;
    net.deliver_room_news();
    settle(&mut net);
    for i in 0..2 {
        let p = net.nodes[i].hub.rooms[&room("#r")].policy.clone().unwrap();
        assert!(p.modes.moderated && p.modes.topic_ops, "node {i}: {p:?}");
    }
    // And a restarted node reads both.
    restart(&mut net, 0);
    let p = net.nodes[0].hub.rooms[&room("#r")].policy.clone().unwrap();
    assert!(p.modes.moderated && p.modes.topic_ops);
    assert_eq!(p.founder, Some(nick("alice")));
    assert_eq!(p.ops, [nick("dave")]);
}

#[test]
fn a_room_closed_on_one_node_is_left_on_every_node() {
    let mut net = net(2);
    let a = founder(&mut net);
    let (b, _) = guest(&mut net, 1, "bob");
    join(&mut net, 1, b, "#r");
    net.recv(1, b);
    let irc = net.irc(1, "carol");
    settle(&mut net);
    let now = net.now;
    net.nodes[1].hub.handle_bytes(irc, b"JOIN #r\r\n", now);
    settle(&mut net);
    close_r(&mut net, a, Some("moved"));
    assert!(parted(&net.recv(1, b)), "bob leaves on its node");
    // An IRC member there is told in its PART that the channel was closed, by whom and why,
    // as on the closing node: the cluster's news of the close carries them (until the
    // forty-second session only the close's event in the room's log did, and the news came
    // first: "Channel closed").
    let said = raw_text(&net, 1, irc);
    assert!(
        said.contains(":carol!carol@natter PART #r :Channel closed by alice: moved\r\n"),
        "{said}"
    );
    assert!(!net.rooms_kv.rooms.contains_key(&room("#r")));
    assert!(
        net.nodes[1]
            .hub
            .rooms
            .get(&room("#r"))
            .is_none_or(|r| r.policy.is_none()),
        "the room is not registered there any more"
    );
}

#[test]
fn a_closed_rooms_topic_is_no_longer_kept_in_the_cluster() {
    let mut net = net(2);
    let a = founder(&mut net);
    let topic = ClientMsg::Topic {
        room: room("#r"),
        topic: crate::types::Text::new("old plans").ok(),
    };
    net.send(0, a, &topic);
    settle(&mut net);
    assert!(net.topics_kv.contains_key(&room("#r")));
    assert!(net.nodes[1].hub.remote_topic(&room("#r")).is_some());
    close_r(&mut net, a, None);
    assert!(
        !net.topics_kv.contains_key(&room("#r")),
        "the cluster forgot it"
    );
    for i in 0..2 {
        assert!(
            net.nodes[i].hub.remote_topic(&room("#r")).is_none(),
            "node {i} answers TOPIC with the closed room's topic"
        );
    }
}

#[test]
fn a_signed_in_member_on_another_node_is_muted_as_its_account_and_unmuted_by_its_nick() {
    let (mut net, a, d) = alice_and_dave();
    let mute = ModAction::Mute {
        target: "dave".into(),
        duration: None,
    };
    moderate(&mut net, 0, a, "#r", mute);
    let mutes: Vec<String> = net.rooms_kv.rooms[&room("#r")]
        .policy
        .mutes
        .iter()
        .map(|m| m.mask.to_string())
        .collect();
    assert_eq!(mutes, ["account:dave"]);
    net.recv(1, d);
    net.send(1, d, &say(1, "hello?"));
    assert!(error(&net.recv(1, d)).is_some_and(|(_, w)| w.contains("muted")));
    let unmute = ModAction::Unmute {
        target: "dave".into(),
    };
    moderate(&mut net, 0, a, "#r", unmute);
    assert!(error(&net.recv(0, a)).is_none(), "unmuted by nick");
    net.recv(1, d);
    net.send(1, d, &say(2, "back"));
    let got = net.recv(1, d);
    assert!(error(&got).is_none(), "{got:?}");
    assert!(events(&got).iter().any(|e| e.2.contains("back")), "{got:?}");
}

#[test]
fn news_that_comes_before_the_answer_to_this_nodes_edit_is_applied_once_answered() {
    let (mut net, a, d) = alice_and_dave();
    moderate(&mut net, 0, a, "#r", ModAction::Op(nick("dave")));
    // dave's edit lands first, alice's is merged with it; dave's node hears the news of both
    // before the answer to its own edit.
    net.rooms_kv.hold_answers = true;
    moderate(
        &mut net,
        1,
        d,
        "#r",
        ModAction::Mode(ModeChange::TopicOps(true)),
    );
    moderate(
        &mut net,
        0,
        a,
        "#r",
        ModAction::Mode(ModeChange::Moderated(true)),
    );
    let p = net.nodes[1].hub.rooms[&room("#r")].policy.clone().unwrap();
    assert!(
        p.modes.topic_ops && !p.modes.moderated,
        "dave's node holds the news back while its edit is unanswered: {p:?}"
    );
    net.rooms_kv.hold_answers = false;
    for (i, r, revision) in core::mem::take(&mut net.rooms_kv.answers) {
        net.nodes[i].hub.handle_room_written(&r, Some(revision));
    }
    settle(&mut net);
    for i in 0..2 {
        let p = net.nodes[i].hub.rooms[&room("#r")].policy.clone().unwrap();
        assert!(p.modes.moderated && p.modes.topic_ops, "node {i}: {p:?}");
    }
}

#[test]
fn a_change_of_a_rooms_settings_or_topic_while_the_cluster_is_away_is_refused_at_once() {
    let (mut net, a, d) = alice_and_dave();
    net.recv(0, a);
    net.recv(1, d);
    net.nodes[0].hub.handle_cluster_link(false);
    let plus_m = ModAction::Mode(ModeChange::Moderated(true));
    moderate(&mut net, 0, a, "#r", plus_m.clone());
    let got = net.recv(0, a);
    let (kind, why) = error(&got).expect("refused");
    assert_eq!(kind, ErrorKind::Unavailable);
    assert!(why.contains("cluster is unavailable"), "{why}");
    let topic = ClientMsg::Topic {
        room: room("#r"),
        topic: Some(text("new")),
    };
    ask(&mut net, 0, a, &topic);
    assert_eq!(
        error(&net.recv(0, a)).map(|e| e.0),
        Some(ErrorKind::Unavailable)
    );
    // Nothing changed, here or there, and nobody was told of anything.
    assert!(
        net.rooms_kv
            .rooms
            .get(&room("#r"))
            .is_some_and(|r| !r.policy.modes.moderated)
    );
    assert!(net.recv(1, d).is_empty());
    // Looking is still answered.
    moderate(&mut net, 0, a, "#r", ModAction::Settings);
    assert!(
        net.recv(0, a)
            .iter()
            .any(|m| matches!(m, ServerMsg::Policy { modes, .. } if !modes.moderated))
    );
    // Back: the change is made, and members on both nodes are told.
    net.nodes[0].hub.handle_cluster_link(true);
    moderate(&mut net, 0, a, "#r", plus_m);
    let told = |msgs: &[ServerMsg]| {
        msgs.iter().any(|m| {
            matches!(m, ServerMsg::Event(e) if matches!(&e.kind, EventKind::Mode { change } if change.as_str() == "+m"))
        })
    };
    assert!(told(&net.recv(0, a)));
    assert!(told(&net.recv(1, d)));
}

#[test]
fn a_change_whose_event_the_log_refused_is_announced_once_the_cluster_has_it() {
    // The link was lost before the node knew it: the change was made here, its event refused
    // by the log, its edit written once NATS was back. Members are told then, on every node.
    let (mut net, a, d) = alice_and_dave();
    net.recv(0, a);
    net.recv(1, d);
    net.rooms_kv.hold_answers = true;
    net.refuse = true;
    moderate(
        &mut net,
        0,
        a,
        "#r",
        ModAction::Mode(ModeChange::Moderated(true)),
    );
    let told = |msgs: &[ServerMsg]| {
        msgs.iter().filter(|m| {
            matches!(m, ServerMsg::Event(e) if matches!(&e.kind, EventKind::Mode { change } if change.as_str() == "+m"))
        }).count()
    };
    assert_eq!(told(&net.recv(1, d)), 0);
    net.refuse = false;
    net.rooms_kv.hold_answers = false;
    for (i, r, revision) in core::mem::take(&mut net.rooms_kv.answers) {
        net.nodes[i].hub.handle_room_written(&r, Some(revision));
    }
    settle(&mut net);
    assert_eq!(told(&net.recv(0, a)), 1, "the changer is told once");
    assert_eq!(
        told(&net.recv(1, d)),
        1,
        "a member on another node is told once"
    );
}

#[test]
fn joining_a_moderated_room_on_another_node_says_one_may_not_speak() {
    let mut net = net(2);
    let a = founder(&mut net);
    moderate(
        &mut net,
        0,
        a,
        "#r",
        ModAction::Mode(ModeChange::Moderated(true)),
    );
    let g = guest_from(&mut net, 1, "gus", "198.51.100.41");
    net.recv(1, g);
    join(&mut net, 1, g, "#r");
    let got = net.recv(1, g);
    let joined = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r")));
    let told = got.iter().position(|m| {
        matches!(m, ServerMsg::Error { kind: ErrorKind::Muted, re: Re::Room(r), detail }
            if *r == room("#r") && detail.contains("#r is moderated"))
    });
    assert!(
        joined.is_some() && told > joined,
        "told after the join: {got:?}"
    );
}

/// An always-on account put out of a room by an operator on another node, while nothing of
/// it was connected, is told who and why at its next sign-in on its own node, as on one
/// node: the words were kept only by a kick on the account's own node (the kicking node
/// knows no such user, and the node that puts it out kept nothing).
#[test]
fn an_account_kicked_from_another_node_while_away_is_told_at_its_next_sign_in() {
    let (mut net, a, d) = alice_and_dave();
    ask(&mut net, 1, d, &ClientMsg::Quit { reason: None });
    net.recv(0, a);
    let kick = ModAction::Kick {
        nick: nick("dave"),
        reason: Some(text("too loud")),
    };
    moderate(&mut net, 0, a, "#r", kick);
    assert_eq!(
        kicks(&net.recv(0, a)),
        [("alice".to_owned(), "dave".to_owned())]
    );
    let (c, got, told) = sign_in_on(&mut net, 1, "dave");
    assert_eq!(
        told,
        ["while you were away, alice put you out of #r (too loud)"],
        "{got:?}"
    );
    assert!(!joined(&got), "not back in #r: {got:?}");
    // Put out by a kick typed on its own node, it is told once, not once more as the kick
    // comes back from the log.
    join(&mut net, 1, c, "#r");
    ask(&mut net, 1, c, &ClientMsg::Quit { reason: None });
    let (a1, ..) = sign_in_on(&mut net, 1, "alice");
    let kick = ModAction::Kick {
        nick: nick("dave"),
        reason: Some(text("again")),
    };
    moderate(&mut net, 1, a1, "#r", kick);
    assert_eq!(
        kicks(&net.recv(1, a1)),
        [("alice".to_owned(), "dave".to_owned())]
    );
    let (_, got, told) = sign_in_on(&mut net, 1, "dave");
    assert_eq!(
        told,
        ["while you were away, alice put you out of #r (again)"],
        "{got:?}"
    );
}

/// An account in a `+k` room signs in on another node: the room is the account's, so the
/// node joins it there without the key, as on the node it joined from (until the thirty-eighth
/// session that join was refused, "needs its key", and the device signed in there had lost
/// the room).
#[test]
fn an_account_in_a_keyed_room_signs_in_on_another_node_and_is_in_it_there() {
    let mut net = net(2);
    let a = founder(&mut net);
    moderate(
        &mut net,
        0,
        a,
        "#r",
        ModAction::Mode(ModeChange::Key(Some(text("sesame")))),
    );
    let (b, _) = guest(&mut net, 0, "bob");
    register(&mut net, 0, b, PW, false);
    ask(
        &mut net,
        0,
        b,
        &ClientMsg::JoinKey {
            room: room("#r"),
            key: text("sesame"),
        },
    );
    assert!(joined(&net.recv(0, b)));
    net.nodes[0].hub.handle_close(b, net.now);
    settle(&mut net);
    let (c, _) = guest(&mut net, 1, "visitor");
    ask(
        &mut net,
        1,
        c,
        &ClientMsg::SignIn {
            account: nick("bob"),
            proof: crate::wire::Proof::Password(crate::types::Password(PW.into())),
            remember: false,
        },
    );
    let got = net.recv(1, c);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::SignedIn { account, .. } if *account == nick("bob"))),
        "{got:?}"
    );
    assert_eq!(error(&got), None, "{got:?}");
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r"))),
        "bob in #r on node 1: {got:?}"
    );
}

/// An account removed from the cluster (`natter-server account remove --cluster`) is lifted
/// from the rooms it founded or operated, in the cluster's settings (each node that hears of
/// the removal sends the same edits; the second changes nothing): every node, and a node
/// restarted, reads the room with no founder, and whoever registers the name next, on any
/// node, is no operator of it.
#[test]
fn an_account_removed_from_the_cluster_founds_and_operates_no_room_any_more() {
    let (mut net, a, d) = alice_and_dave();
    moderate(&mut net, 0, a, "#r", ModAction::Op(nick("dave")));
    // dave founds #d, where alice is an operator.
    join(&mut net, 1, d, "#d");
    moderate(&mut net, 1, d, "#d", ModAction::Register);
    join(&mut net, 0, a, "#d");
    moderate(&mut net, 1, d, "#d", ModAction::Op(nick("alice")));
    net.recv(1, d);
    net.account_out(
        1,
        ClusterOut::AccountWrite {
            account: nick("alice"),
            registered: None,
            write: crate::persist::Write::DropAccount(nick("alice")),
        },
    );
    settle(&mut net);
    assert_eq!(net.rooms_kv_founder(&room("#r")), None);
    let got = net.recv(1, d);
    assert!(
        got.iter().any(|m| matches!(m,
            ServerMsg::Policy { room: r, founder: None, .. } if *r == room("#r"))),
        "members on another node get the new settings"
    );
    // Told once, by the node of alice's user, not once per node.
    assert_eq!(removals(&got, "#r"), 1, "{got:?}");
    assert_eq!(removals(&got, "#d"), 1, "{got:?}");
    for i in 0..2 {
        let p = net.nodes[i].hub.rooms[&room("#r")].policy.clone().unwrap();
        assert_eq!((p.founder, p.ops), (None, vec![nick("dave")]), "node {i}");
        let p = net.nodes[i].hub.rooms[&room("#d")].policy.clone().unwrap();
        assert_eq!(p.founder, Some(nick("dave")), "node {i}");
        assert!(p.ops.is_empty(), "node {i}: {p:?}");
    }
    // alice's device (a guest now) goes.
    ask(&mut net, 0, a, &ClientMsg::Quit { reason: None });
    restart(&mut net, 0);
    let p = net.nodes[0].hub.rooms[&room("#r")].policy.clone().unwrap();
    assert_eq!((p.founder, p.ops), (None, vec![nick("dave")]));
    // A newcomer registers the name.
    let (n, got) = guest(&mut net, 1, "alice");
    assert_eq!(got.as_str(), "alice");
    register(&mut net, 1, n, PW, false);
    assert!(
        net.recv(1, n).iter().any(
            |m| matches!(m, ServerMsg::SignedIn { account, .. } if account.as_str() == "alice")
        )
    );
    join(&mut net, 1, n, "#r");
    net.recv(1, n);
    moderate(&mut net, 1, n, "#r", ModAction::Op(nick("alice")));
    assert_eq!(
        error(&net.recv(1, n)).map(|e| e.0),
        Some(ErrorKind::NotOperator)
    );
    moderate(&mut net, 1, n, "#r", ModAction::Register);
    assert_eq!(
        error(&net.recv(1, n)).map(|e| e.0),
        Some(ErrorKind::NotOperator),
        "#r has operators: one of them registers it"
    );
}

/// An account removed while no node ran (`natter-server account remove --cluster` with every
/// node down): nobody heard of it to lift its rights, so the cluster's settings still name it.
/// Whoever registers the name next is not given them: the registering node lifts them first.
#[test]
fn a_name_registered_anew_in_the_cluster_is_given_no_rights_left_under_it() {
    let mut net = net(2);
    let a = founder(&mut net);
    dave_in_r(&mut net);
    moderate(&mut net, 0, a, "#r", ModAction::Op(nick("dave")));
    ask(&mut net, 0, a, &ClientMsg::Quit { reason: None });
    // Every node down; the account goes from the cluster's bucket; the nodes start again.
    // (Its always-on user's nick went with its node's lease.)
    net.kv.accounts.remove("alice");
    net.owners.remove("alice");
    restart(&mut net, 0);
    restart(&mut net, 1);
    assert_eq!(net.rooms_kv_founder(&room("#r")).as_deref(), Some("alice"));
    // bob, in #r on the other node, hears of it.
    let (b, _) = guest(&mut net, 0, "bob");
    join(&mut net, 0, b, "#r");
    net.recv(0, b);
    let (n, got) = guest(&mut net, 1, "alice");
    assert_eq!(got.as_str(), "alice");
    register(&mut net, 1, n, PW, false);
    assert!(
        net.recv(1, n).iter().any(
            |m| matches!(m, ServerMsg::SignedIn { account, .. } if account.as_str() == "alice")
        )
    );
    assert_eq!(net.rooms_kv_founder(&room("#r")), None);
    for i in 0..2 {
        let p = net.nodes[i]
            .hub
            .rooms
            .get(&room("#r"))
            .and_then(|r| r.policy.clone());
        let p = p.unwrap_or_else(|| panic!("node {i} knows #r"));
        assert_eq!((p.founder, p.ops), (None, vec![nick("dave")]), "node {i}");
    }
    let got = net.recv(0, b);
    assert_eq!(
        removals(&got, "#r"),
        1,
        "told once, by the registering node: {got:?}"
    );
    join(&mut net, 1, n, "#r");
    net.recv(1, n);
    moderate(&mut net, 1, n, "#r", ModAction::Op(nick("alice")));
    assert_eq!(
        error(&net.recv(1, n)).map(|e| e.0),
        Some(ErrorKind::NotOperator)
    );
}

/// How many `Mode` events in `msgs` tell `r` an account was removed.
fn removals(msgs: &[ServerMsg], r: &str) -> usize {
    msgs.iter()
        .filter(|m| {
            matches!(m, ServerMsg::Event(RoomEvent { room: x, kind: EventKind::Mode { change }, .. })
                if x.as_str() == r && change.as_str().starts_with("account removed"))
        })
        .count()
}

/// A guest's invitation to a room nobody registered is the cluster's to keep (as the room's
/// shared settings, none but the invitation): the room is no registered one for it, and goes
/// with its last member, as on a single node, else a guest making rooms and inviting to each
/// would fill the room table with empty rooms no orphan reclaim frees.
#[test]
fn a_guests_invitation_does_not_keep_an_unregistered_room_for_ever() {
    let mut net = net(2);
    let (m, _) = guest(&mut net, 0, "mallory");
    join(&mut net, 0, m, "#x");
    moderate(&mut net, 0, m, "#x", ModAction::Invite(nick("bob")));
    settle(&mut net);
    assert!(
        net.rooms_kv.rooms.contains_key(&room("#x")),
        "the cluster keeps the invitation"
    );
    ask(
        &mut net,
        0,
        m,
        &ClientMsg::Part {
            room: room("#x"),
            reason: None,
        },
    );
    settle(&mut net);
    assert!(
        !net.nodes[0].hub.rooms.contains_key(&room("#x")),
        "an empty room nobody registered goes"
    );
}

/// An always-on account away when an admin on another node closes its room is told at its
/// next sign-in on its own node who closed it and why, as on one node: the cluster's news of
/// the close carries them (it comes before the close's event in the room's log here, and the
/// node leaves the room's log with its last member, before the event comes).
#[test]
fn an_account_away_when_its_room_is_closed_from_another_node_is_told_at_its_next_sign_in() {
    let (mut net, a, d) = alice_and_dave();
    ask(&mut net, 1, d, &ClientMsg::Quit { reason: None });
    net.recv(0, a);
    close_r(&mut net, a, Some("moved"));
    let (_, got, told) = sign_in_on(&mut net, 1, "dave");
    assert_eq!(
        told,
        ["while you were away, alice closed #r (moved)"],
        "{got:?}"
    );
    assert!(!joined(&got), "not back in #r: {got:?}");
}

/// A room closed, opened again and closed again from another node while an always-on member
/// was away: the note its next sign-in reads is of the second close, never the first one's
/// who and why (the first close's event may still be among the room's last events here).
#[test]
fn an_account_away_when_a_reopened_room_is_closed_again_is_not_told_the_first_close() {
    let (mut net, a, d) = alice_and_dave();
    net.recv(0, a);
    net.recv(1, d);
    close_r(&mut net, a, Some("first"));
    net.recv(0, a);
    net.recv(1, d);
    join(&mut net, 0, a, "#r");
    join(&mut net, 1, d, "#r");
    ask(&mut net, 1, d, &ClientMsg::Quit { reason: None });
    net.recv(0, a);
    close_r(&mut net, a, Some("second"));
    let (_, got, told) = sign_in_on(&mut net, 1, "dave");
    assert_eq!(told.len(), 1, "{got:?}");
    assert!(!told[0].contains("first"), "{got:?}");
}

/// A removed founder's lift from one node that reaches the cluster late, after another node's
/// lift, the name's registration anew and the new holder's `/register` of the room, is left
/// out: it carries the removed account's registration. Until the forty-second session it went
/// by name and took the room from the new holder.
#[test]
fn a_founders_removal_heard_late_leaves_the_new_holders_room_alone() {
    let mut net = net(2);
    let a = founder(&mut net);
    // Node 1 hears of the removal first; its lift of #r's founder is on its way ...
    let late = late_lifts(&mut net, "alice");
    assert!(
        matches!(late[..], [PolicyEdit::AccountGone { .. }]),
        "node 1 lifts #r's founder: {late:?}"
    );
    // ... while the removal is done, node 0 lifts it, alice is registered again and founds #r.
    removed(&mut net, "alice");
    assert_eq!(net.rooms_kv_founder(&room("#r")), None, "lifted");
    register(&mut net, 0, a, PW, false);
    moderate(&mut net, 0, a, "#r", ModAction::Register);
    assert_eq!(net.rooms_kv_founder(&room("#r")).as_deref(), Some("alice"));
    for edit in late {
        net.room_edit(1, room("#r"), edit);
    }
    settle(&mut net);
    assert_eq!(
        net.rooms_kv_founder(&room("#r")).as_deref(),
        Some("alice"),
        "the new holder's room stays its"
    );
}

/// A removed operator's (and voice's) lift from one node that reaches the cluster late, after
/// another node's lift, the name's registration anew and the founder's `/op` and `/voice` of
/// the new holder, is left out, as a removed founder's is: it carries the removed account's
/// registration. Until the forty-second session's review it was a `Deop` and a `Devoice` by
/// name and took back the new holder's operator and voice.
#[test]
fn an_operators_removal_heard_late_leaves_the_new_holders_operator_and_voice_alone() {
    let (mut net, a, d) = alice_and_dave();
    moderate(&mut net, 0, a, "#r", ModAction::Op(nick("dave")));
    moderate(&mut net, 0, a, "#r", ModAction::Voice(nick("dave")));
    settle(&mut net);
    let rights = |net: &Net| {
        let p = &net.rooms_kv.rooms[&room("#r")].policy;
        let dave = |n: &Nick| n.as_str() == "dave";
        (p.ops.iter().any(dave), p.voiced.iter().any(dave))
    };
    assert_eq!(rights(&net), (true, true), "dave operates and is voiced");
    // Node 1 hears of dave's removal first; its lifts in #r are on their way ...
    let late = late_lifts(&mut net, "dave");
    assert!(!late.is_empty(), "node 1 lifts dave's rights in #r");
    // ... while the removal is done, node 0 lifts them, dave is registered again, and alice
    // makes the new dave operator and voiced.
    removed(&mut net, "dave");
    assert_eq!(rights(&net), (false, false), "lifted");
    register(&mut net, 1, d, PW, false);
    moderate(&mut net, 0, a, "#r", ModAction::Op(nick("dave")));
    moderate(&mut net, 0, a, "#r", ModAction::Voice(nick("dave")));
    settle(&mut net);
    assert_eq!(rights(&net), (true, true), "the new dave operates");
    for edit in late {
        net.room_edit(1, room("#r"), edit);
    }
    settle(&mut net);
    assert_eq!(
        rights(&net),
        (true, true),
        "the new holder's operator and voice stay"
    );
}

/// An always-on account's node down while an admin on another node closes its room: the node
/// comes back knowing nothing of the account's user, and the account signs in there. It is
/// not put back into the closed room, and it is told who closed it and why, as a node that was
/// up tells it.
#[test]
fn an_account_whose_node_was_down_during_its_rooms_close_is_told_at_its_next_sign_in() {
    let (mut net, a, d) = alice_and_dave();
    ask(&mut net, 1, d, &ClientMsg::Quit { reason: None });
    net.recv(0, a);
    // Node 1 goes down (dave's user with it) and comes back after the close.
    restart(&mut net, 1);
    close_r(&mut net, a, Some("moved"));
    restart(&mut net, 1);
    let (_, got, told) = sign_in_on(&mut net, 1, "dave");
    assert!(!joined(&got), "back in the closed #r: {got:?}");
    assert_eq!(
        told,
        ["while you were away, alice closed #r (moved)"],
        "{got:?}"
    );
}
