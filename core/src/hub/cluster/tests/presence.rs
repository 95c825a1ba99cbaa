//! Users on other nodes in a cluster, whether or not they share a room with this node's:
//! WHOIS, ISON and USERHOST know them, and their away message shows in WHOIS, in the `301`
//! after a private message, in WHO's `G` flag and in away-notify. Each node's records live in
//! a fake key-value store ([`UsersKv`]) that tells every node, as natter-cluster's watch does.

use super::*;
use crate::hub::Presence;
use crate::types::Text;

/// Every node's users as the cluster keeps them: folded nick → (record, node index).
#[derive(Default)]
pub(super) struct UsersKv {
    users: BTreeMap<String, (Presence, usize)>,
    /// A node whose writes are held back, to hand out later ([`Net::release_presence`]): the
    /// watch lags behind the rooms' logs.
    pub(super) hold: Option<usize>,
    /// The writes held back, oldest first: the writing node, the nick, the record.
    held: Vec<(usize, Nick, Option<Presence>)>,
}

impl Net {
    /// Stops holding the users' records back, and hands out those held, in order.
    pub(super) fn release_presence(&mut self) {
        self.users_kv.hold = None;
        for (i, nick, presence) in core::mem::take(&mut self.users_kv.held) {
            self.presence(i, nick, presence);
        }
        self.pump();
    }

    /// Keeps node `i`'s record of `nick` and tells every node (a removal only removes node
    /// `i`'s own record, as natter-cluster's does).
    pub(super) fn presence(&mut self, i: usize, nick: Nick, presence: Option<Presence>) {
        if self.users_kv.hold == Some(i) {
            self.users_kv.held.push((i, nick, presence));
            return;
        }
        let folded = nick.folded();
        match presence {
            Some(p) => {
                self.users_kv.users.insert(folded, (p.clone(), i));
                let now = self.now;
                for (j, n) in self.nodes.iter_mut().enumerate() {
                    n.hub
                        .handle_presence(&nick, Some(p.clone()), &format!("n{i}"));
                    if j != i {
                        n.hub
                            .handle_record_elsewhere(&nick, p.account.as_ref(), now);
                    }
                }
            }
            None => {
                if self
                    .users_kv
                    .users
                    .get(&folded)
                    .is_none_or(|(_, at)| *at != i)
                {
                    return;
                }
                self.users_kv.users.remove(&folded);
                for n in &mut self.nodes {
                    n.hub.handle_presence(&nick, None, &format!("n{i}"));
                }
            }
        }
    }
}

impl Net {
    /// Removes the records and nick ownerships among `nicks` still node `node`'s (`n<i>`), and
    /// tells every node, as natter-cluster does (compare-and-swap on each).
    pub(super) fn forget(&mut self, node: &str, nicks: &[Nick]) {
        let Some(i) = node.strip_prefix('n').and_then(|i| i.parse::<usize>().ok()) else {
            return;
        };
        for nick in nicks {
            let folded = nick.folded();
            if self.owners.get(&folded) == Some(&i) {
                self.owners.remove(&folded);
            }
            if self
                .users_kv
                .users
                .get(&folded)
                .is_some_and(|(_, at)| *at == i)
            {
                self.users_kv.users.remove(&folded);
                for n in &mut self.nodes {
                    n.hub.handle_presence(nick, None, "");
                }
            }
        }
    }
}

/// An IRC user on node `i`, registered as `nick`, with the capabilities `caps` (if any).
fn irc_user(net: &mut Net, i: usize, nick: &str, caps: &str) -> ConnId {
    let now = net.now;
    let c = net.nodes[i]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    if !caps.is_empty() {
        let ask = format!("CAP LS 302\r\nCAP REQ :{caps}\r\n");
        net.nodes[i].hub.handle_bytes(c, ask.as_bytes(), now);
    }
    let registration = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
    net.nodes[i]
        .hub
        .handle_bytes(c, registration.as_bytes(), now);
    if !caps.is_empty() {
        net.nodes[i].hub.handle_bytes(c, b"CAP END\r\n", now);
    }
    net.pump();
    c
}

/// What `c` on node `i` gets for `line` (and anything else since the last call), a few
/// seconds after the last (so no flood control holds it back).
fn irc(net: &mut Net, i: usize, c: ConnId, line: &str) -> String {
    net.nodes[i].raw.remove(&c);
    net.now = Millis(net.now.0 + 5_000);
    let now = net.now;
    let line = format!("{line}\r\n");
    net.nodes[i].hub.handle_bytes(c, line.as_bytes(), now);
    net.pump();
    String::from_utf8_lossy(net.nodes[i].raw.get(&c).map_or(&[][..], |r| &r[..])).into_owned()
}

#[test]
fn whois_ison_and_userhost_know_a_user_on_another_node_who_shares_no_room() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "");
    let bob = irc_user(&mut net, 1, "Bob", "");
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    // His IRC names come with his record.
    assert!(
        text.contains(" 311 carol Bob Bob natter * :Bob\r\n"),
        "{text}"
    );
    assert!(!text.contains(" 319 "), "no shared room: {text}");
    assert!(!text.contains(" 301 "), "{text}");
    let text = irc(&mut net, 0, carol, "ISON bob dave");
    assert!(text.contains(" 303 carol :Bob"), "{text}");
    let text = irc(&mut net, 0, carol, "USERHOST bob");
    assert!(text.contains(" 302 carol :Bob=+Bob@"), "{text}");
    let text = irc(&mut net, 0, carol, "LUSERS");
    assert!(text.contains(" 251 carol :There are 2 users"), "{text}");
    // The servers are the nodes alive at the last listing.
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_nodes(&["n0".to_owned(), "n1".to_owned()], now);
    let text = irc(&mut net, 0, carol, "LUSERS");
    assert!(
        text.contains(" 251 carol :There are 2 users and 0 invisible on 2 servers"),
        "{text}"
    );
    assert!(
        text.contains(" 255 carol :I have 1 clients and 1 servers"),
        "{text}"
    );
    // Bob goes away: node 0 shows it.
    irc(&mut net, 1, bob, "AWAY :at lunch");
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    assert!(text.contains(" 301 carol Bob :at lunch"), "{text}");
    let text = irc(&mut net, 0, carol, "USERHOST bob");
    assert!(text.contains(" 302 carol :Bob=-Bob@"), "{text}");
    let text = irc(&mut net, 0, carol, "PRIVMSG bob :hello?");
    assert!(text.contains(" 301 carol Bob :at lunch"), "{text}");
    // Back: no more.
    irc(&mut net, 1, bob, "AWAY");
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    assert!(!text.contains(" 301 "), "{text}");
    // Bob quits: nobody has the nick.
    irc(&mut net, 1, bob, "QUIT :bye");
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    assert!(text.contains(" 401 carol bob "), "{text}");
    let text = irc(&mut net, 0, carol, "ISON bob");
    assert!(!text.contains("Bob"), "{text}");
}

#[test]
fn a_real_name_set_on_another_node_shows_there_and_reaches_its_co_members() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "setname");
    let bob = irc_user(&mut net, 1, "bob", "setname");
    irc(&mut net, 0, carol, "JOIN #r");
    irc(&mut net, 1, bob, "JOIN #r");
    net.nodes[0].raw.remove(&carol);
    let text = irc(&mut net, 1, bob, "SETNAME :Bob Stone");
    assert!(text.contains(" SETNAME :Bob Stone"), "{text}");
    let told = net.nodes[0]
        .raw
        .get(&carol)
        .map(|r| String::from_utf8_lossy(r).into_owned());
    assert!(
        told.as_deref()
            .is_some_and(|t| t.contains(":bob!") && t.contains(" SETNAME :Bob Stone\r\n")),
        "told as it changed: {told:?}"
    );
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    assert!(
        text.contains(" 311 carol bob bob natter * :Bob Stone\r\n"),
        "{text}"
    );
    let text = irc(&mut net, 0, carol, "WHO #r");
    assert!(text.contains(" :0 Bob Stone\r\n"), "{text}");
    let text = irc(&mut net, 0, carol, "WHO bob");
    assert!(text.contains(" :0 Bob Stone\r\n"), "{text}");
    // A user on natter's own client still shows how it is connected.
    let d = net.hello(1, "dave");
    net.pump();
    let text = irc(&mut net, 0, carol, "WHOIS dave");
    assert!(
        text.contains(":natter user on another natter node"),
        "{text}"
    );
    let _ = d;
}

#[test]
fn a_renamed_user_on_another_node_is_known_by_its_new_nick_only() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "");
    let bob = irc_user(&mut net, 1, "bob", "");
    irc(&mut net, 1, bob, "NICK robert");
    let text = irc(&mut net, 0, carol, "ISON bob robert");
    assert!(text.contains(" 303 carol :robert\r\n"), "{text}");
}

#[test]
fn away_on_another_node_shows_in_who_and_reaches_away_notify_in_a_shared_room() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "away-notify");
    let bob = irc_user(&mut net, 1, "bob", "");
    irc(&mut net, 0, carol, "JOIN #r");
    irc(&mut net, 1, bob, "JOIN #r");
    let text = irc(&mut net, 0, carol, "WHO #r");
    assert!(text.contains(" 352 carol #r bob "), "{text}");
    assert!(text.contains(" bob H :"), "here: {text}");
    irc(&mut net, 1, bob, "AWAY :gone fishing");
    let text = String::from_utf8_lossy(&net.nodes[0].raw[&carol]).into_owned();
    assert!(
        text.contains(":bob!") && text.contains(" AWAY :gone fishing"),
        "{text}"
    );
    let text = irc(&mut net, 0, carol, "WHO #r");
    assert!(text.contains(" bob G :"), "away: {text}");
    irc(&mut net, 1, bob, "AWAY");
    let text = String::from_utf8_lossy(&net.nodes[0].raw[&carol]).into_owned();
    assert!(text.contains(" AWAY\r\n"), "back: {text}");
}

#[test]
fn a_record_of_a_node_whose_lease_ran_out_is_not_believed() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "");
    irc_user(&mut net, 1, "bob", "");
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_nodes(&["n0".into(), "n1".into()], now);
    let text = irc(&mut net, 0, carol, "ISON bob");
    assert!(text.contains(" 303 carol :bob"), "{text}");
    net.nodes[0].hub.handle_nodes(&["n0".into()], now);
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    assert!(text.contains(" 401 carol bob "), "{text}");
}

#[test]
fn a_dead_nodes_users_are_forgotten_by_the_cluster_so_a_node_starting_does_not_see_them() {
    let mut net = Net::new(3);
    let carol = irc_user(&mut net, 0, "carol", "");
    irc_user(&mut net, 1, "bob", "");
    // Node 2 has never listed the leases (it just started): it believes every record.
    let dave = irc_user(&mut net, 2, "dave", "");
    let text = irc(&mut net, 2, dave, "ISON bob");
    assert!(text.contains(" 303 dave :bob"), "{text}");
    // Node 1 dies without a word (its hub, and bob with it, is gone: a blank one hears the
    // news in its place); node 0 lists the leases once node 1's ran out.
    net.nodes[1].hub = crate::hub::Hub::new(crate::hub::Config::default());
    net.nodes[1].hub.enable_cluster();
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_nodes(&["n0".into(), "n2".into()], now);
    let asked: Vec<ClusterOut> = std::iter::from_fn(|| net.nodes[0].hub.poll_cluster()).collect();
    assert_eq!(
        asked,
        [ClusterOut::Forget {
            node: "n1".into(),
            nicks: vec![nick("bob")]
        }]
    );
    for o in asked {
        net.cluster(0, o);
    }
    net.pump();
    // The cluster forgot bob: node 2 no longer knows him, nor does LUSERS count him.
    let text = irc(&mut net, 2, dave, "WHOIS bob");
    assert!(text.contains(" 401 dave bob "), "{text}");
    let text = irc(&mut net, 2, dave, "LUSERS");
    assert!(text.contains(" 251 dave :There are 2 users"), "{text}");
    // His nick is free: carol takes it.
    let text = irc(&mut net, 0, carol, "NICK bob");
    assert!(
        text.contains(":carol!") && text.contains(" NICK :bob"),
        "{text}"
    );
    let text = irc(&mut net, 2, dave, "ISON bob");
    assert!(text.contains(" 303 dave :bob"), "carol as bob: {text}");
    // Nothing more is asked while nothing of a dead node is kept.
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_nodes(&["n0".into(), "n2".into()], now);
    assert_eq!(net.nodes[0].hub.poll_cluster(), None);
}

#[test]
fn a_node_whose_users_were_forgotten_while_it_lived_tells_them_again() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "");
    irc_user(&mut net, 1, "bob", "");
    // Node 1 was cut off for longer than a lease: node 0 takes it for gone and forgets bob.
    let now = net.now;
    net.nodes[0].hub.handle_nodes(&["n0".into()], now);
    let forget = net.nodes[0].hub.poll_cluster().expect("bob forgotten");
    net.cluster(0, forget);
    assert!(!net.users_kv.users.contains_key("bob"), "forgotten");
    // Node 1 heard it and tells bob's record again: once it is listed alive, bob is known.
    net.pump();
    assert!(net.users_kv.users.contains_key("bob"), "told again");
    let now = net.now;
    net.nodes[0]
        .hub
        .handle_nodes(&["n0".into(), "n1".into()], now);
    let text = irc(&mut net, 0, carol, "WHOIS bob");
    assert!(text.contains(" 311 carol bob "), "{text}");
}

#[test]
fn a_dead_nodes_records_still_kept_are_asked_to_be_forgotten_again_later() {
    let mut net = Net::new(2);
    irc_user(&mut net, 1, "bob", "");
    let hub = &mut net.nodes[0].hub;
    let forget = || ClusterOut::Forget {
        node: "n1".into(),
        nicks: vec![nick("bob")],
    };
    hub.handle_nodes(&["n0".into()], Millis(10_000));
    assert_eq!(hub.poll_cluster(), Some(forget()));
    // Not done (the cluster could not, or whoever did died): not again at every listing...
    hub.handle_nodes(&["n0".into()], Millis(15_000));
    assert_eq!(hub.poll_cluster(), None);
    // ...but again a while later.
    hub.handle_nodes(&["n0".into()], Millis(40_000));
    assert_eq!(hub.poll_cluster(), Some(forget()));
    // A node listed alive again (it was only slow) is not forgotten.
    hub.handle_nodes(&["n0".into(), "n1".into()], Millis(80_000));
    assert_eq!(hub.poll_cluster(), None);
}

/// A binary client on node `i` resuming `token` (in `#r`, seen up to `seq`): its new token.
fn resume_on(
    net: &mut Net,
    i: usize,
    token: crate::types::ResumeToken,
    seq: u64,
) -> crate::types::ResumeToken {
    let c = net.hello_resuming(i, "alice", token, vec![(room("#r"), Seq(seq))]);
    match net.recv(i, c).first() {
        Some(ServerMsg::Welcome {
            resumed: true,
            token,
            ..
        }) => token.clone(),
        other => panic!("not resumed: {other:?}"),
    }
}

#[test]
fn a_session_that_moves_between_nodes_and_back_is_told_by_the_node_holding_it_still_away() {
    let mut net = Net::new(2);
    let a = net.hello(0, "alice");
    net.pump();
    let token = net.token(0, a);
    net.send(0, a, &ClientMsg::Join { room: room("#r") });
    net.recv(0, a);
    let node_of = |net: &Net| net.users_kv.users.get("alice").map(|(_, i)| *i);
    assert_eq!(node_of(&net), Some(0));
    // She is away (set as IRC's AWAY sets it; the binary protocol has no word for it).
    let hub = &net.nodes[0].hub;
    let uid = hub
        .nicks
        .get(&hub.users, nick("alice").folded_key().as_str())
        .expect("alice is on node 0");
    net.nodes[0].hub.set_away(a, uid, Some(text("brb")));
    net.pump();
    assert!(net.users_kv.users["alice"].0.away.is_some());
    // Her client resumes on node 1 (node 0 alive), then back on node 0.
    let token = resume_on(&mut net, 1, token, 1);
    assert_eq!(node_of(&net), Some(1), "node 1 holds her now");
    assert_eq!(
        net.users_kv.users["alice"].0.away,
        Some(text("brb")),
        "still away after the move"
    );
    resume_on(&mut net, 0, token, 1);
    assert_eq!(node_of(&net), Some(0), "node 0 tells of her again");
    let carol = irc_user(&mut net, 1, "carol", "");
    let text = irc(&mut net, 1, carol, "ISON alice");
    assert!(text.contains(" 303 carol :alice"), "{text}");
}

/// Who is away reaches natter's clients across nodes: a joiner on one node is told after its
/// `Joined` that a member on another node is away, and a member is told after the join of
/// someone away on another node.
#[test]
fn a_joiner_learns_who_on_another_node_is_away() {
    let mut net = Net::new(2);
    let a = net.hello(0, "alice");
    let b = net.hello(1, "bob");
    net.pump();
    net.welcomed(0, a);
    net.welcomed(1, b);
    net.send(0, a, &ClientMsg::Join { room: room("#r") });
    net.send(0, a, &ClientMsg::Away(Some(text("lunch"))));
    net.recv(0, a);
    net.send(1, b, &ClientMsg::Join { room: room("#r") });
    let got = net.recv(1, b);
    let at = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Joined { .. }))
        .expect("joined");
    let here = |r: &str| ServerMsg::AwayHere {
        room: room(r),
        away: vec![(nick("alice"), text("lunch"))],
    };
    assert_eq!(got.get(at + 1), Some(&here("#r")), "{got:?}");
    // Alice, away, joins a room bob is in.
    net.send(1, b, &ClientMsg::Join { room: room("#s") });
    net.recv(1, b);
    net.send(0, a, &ClientMsg::Join { room: room("#s") });
    let got = net.recv(1, b);
    let at = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Event(e) if e.room == room("#s") && e.kind == EventKind::Join))
        .expect("alice's join");
    assert_eq!(got.get(at + 1), Some(&here("#s")), "{got:?}");
}

/// IRC's `MONITOR` follows users on other nodes as `ISON` knows them: one connecting, renaming
/// and quitting there is told; going away there is not news.
#[test]
fn monitor_follows_a_user_on_another_node() {
    // What `c` on node `i` was sent since the last look.
    fn news(net: &mut Net, i: usize, c: ConnId) -> String {
        let raw = net.nodes[i].raw.remove(&c).unwrap_or_default();
        String::from_utf8_lossy(&raw).into_owned()
    }
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "");
    let text = irc(&mut net, 0, carol, "MONITOR + bob,robert");
    assert!(text.contains(" 731 carol :bob,robert\r\n"), "{text}");
    news(&mut net, 0, carol);
    let bob = irc_user(&mut net, 1, "Bob", "");
    assert_eq!(
        news(&mut net, 0, carol),
        ":natter.irc 730 carol :Bob!Bob@natter\r\n"
    );
    irc(&mut net, 1, bob, "AWAY :lunch");
    assert_eq!(news(&mut net, 0, carol), "");
    irc(&mut net, 1, bob, "NICK robert");
    let text = news(&mut net, 0, carol);
    assert!(text.contains(" 731 carol :Bob\r\n"), "{text}");
    assert!(
        text.contains(" 730 carol :robert!robert@natter\r\n"),
        "{text}"
    );
    irc(&mut net, 1, bob, "QUIT :bye");
    assert_eq!(
        news(&mut net, 0, carol),
        ":natter.irc 731 carol :robert\r\n"
    );
}

#[test]
fn list_and_lusers_show_a_room_whose_members_are_all_on_another_node() {
    let mut net = Net::new(2);
    let carol = irc_user(&mut net, 0, "carol", "");
    let dave = irc_user(&mut net, 0, "dave", "");
    let bob = irc_user(&mut net, 1, "bob", "");
    irc(&mut net, 0, carol, "JOIN #onlya");
    irc(&mut net, 0, dave, "JOIN #onlya,#both");
    irc(&mut net, 1, bob, "JOIN #both");
    let text = irc(&mut net, 1, bob, "LIST");
    assert!(text.contains(" 322 bob #onlya 2 :\r\n"), "{text}");
    assert!(text.contains(" 322 bob #both 2 "), "{text}");
    let text = irc(&mut net, 1, bob, "LIST #onlya");
    assert!(text.contains(" 322 bob #onlya 2 "), "{text}");
    assert!(!text.contains("#both"), "{text}");
    let text = irc(&mut net, 1, bob, "LUSERS");
    assert!(text.contains(" 254 bob 2 :channels formed"), "{text}");
    // Who is in it, as its members' records say.
    let text = irc(&mut net, 1, bob, "NAMES #onlya");
    assert!(text.contains(" 353 bob = #onlya :carol dave\r\n"), "{text}");
    let text = irc(&mut net, 1, bob, "WHO #onlya");
    assert!(text.contains(" 352 bob #onlya carol "), "{text}");
    assert!(text.contains(" 352 bob #onlya dave "), "{text}");
    irc(&mut net, 0, carol, "PART #onlya");
    let text = irc(&mut net, 1, bob, "LIST");
    assert!(text.contains(" 322 bob #onlya 1 "), "{text}");
    irc(&mut net, 0, dave, "QUIT");
    let text = irc(&mut net, 1, bob, "LIST");
    assert!(!text.contains("#onlya"), "{text}");
    // Node 0's own users' rooms are listed there as always, once.
    let text = irc(&mut net, 0, carol, "LIST");
    assert_eq!(text.matches("#both").count(), 1, "{text}");
}

/// alice, on node 0, in #r, sets its topic and says `lines` lines after it.
fn alice_sets_the_topic(net: &mut Net, lines: u64) -> ConnId {
    let a = net.hello(0, "alice");
    net.pump();
    let r = RoomName::new("#r").unwrap();
    net.send(0, a, &ClientMsg::Join { room: r.clone() });
    net.send(
        0,
        a,
        &ClientMsg::Topic {
            room: r.clone(),
            topic: Text::new("release on friday").ok(),
        },
    );
    for id in 1..=lines {
        net.send(
            0,
            a,
            &ClientMsg::Say {
                room: r.clone(),
                id: crate::types::MsgId(id),
                text: Text::new("hi").unwrap(),
            },
        );
    }
    a
}

#[test]
fn a_rooms_topic_is_known_on_a_node_none_of_whose_users_is_in_it() {
    let mut net = Net::new(2);
    alice_sets_the_topic(&mut net, 0);
    let carol = irc_user(&mut net, 1, "carol", "");
    let text = irc(&mut net, 1, carol, "LIST");
    assert!(
        text.contains(" 322 carol #r 1 :release on friday"),
        "{text}"
    );
    let text = irc(&mut net, 1, carol, "TOPIC #r");
    assert!(text.contains(" 332 carol #r :release on friday"), "{text}");
    assert!(text.contains(" 333 carol #r alice!"), "{text}");
    // A room with no topic that only node 0's users are in: none, not "no such channel".
    let b = net.hello(0, "bea");
    net.pump();
    net.send(
        0,
        b,
        &ClientMsg::Join {
            room: RoomName::new("#plain").unwrap(),
        },
    );
    let text = irc(&mut net, 1, carol, "TOPIC #plain");
    assert!(
        text.contains(" 331 carol #plain :No topic is set"),
        "{text}"
    );
    // A room nobody is in anywhere is still not known.
    let text = irc(&mut net, 1, carol, "TOPIC #nowhere");
    assert!(!text.contains(" 332 "), "{text}");
}

#[test]
fn a_topic_set_before_the_events_a_node_reads_when_it_follows_a_room_is_known_there() {
    let mut net = Net::new(2);
    // A node starting to follow #r reads only its last two events: the topic is before them.
    net.recent = 2;
    alice_sets_the_topic(&mut net, 4);
    let bob = irc_user(&mut net, 1, "bob", "");
    let text = irc(&mut net, 1, bob, "JOIN #r");
    assert!(text.contains(" 332 bob #r :release on friday"), "{text}");
    assert!(text.contains(" 333 bob #r alice!"), "{text}");
}

/// A registered account connected nowhere (always-on: it stays in its rooms) is answered
/// alike by every node, as its own node answers: `Offline`, signed in to its account, away
/// with the words a single node uses; and its co-members on other nodes are told it is away
/// when its last connection goes, as those on its node are (a single node's always-on away).
#[test]
fn an_account_connected_nowhere_is_answered_alike_by_every_node() {
    use super::accounts::{PW, ask, guest, net, register, settle};
    use crate::wire::{Presence as Seen, WhoisUser};
    let mut net = net(3);
    let (a, _) = guest(&mut net, 0, "alice");
    register(&mut net, 0, a, PW, false);
    ask(&mut net, 0, a, &ClientMsg::Join { room: room("#r") });
    let (here, _) = guest(&mut net, 0, "dan");
    let (there, _) = guest(&mut net, 1, "bob");
    let (far, _) = guest(&mut net, 2, "eve");
    ask(&mut net, 0, here, &ClientMsg::Join { room: room("#r") });
    ask(&mut net, 1, there, &ClientMsg::Join { room: room("#r") });
    let now = net.now;
    net.nodes[0].hub.handle_close(a, now);
    // Her device's resume lapses: nothing of her is connected.
    net.now = Millis(net.now.0 + 24 * 3_600_000);
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_timeout(now);
    }
    settle(&mut net);
    let waits = Text::new(crate::hub::ops::KEPT_WORDS).ok();
    for (i, c) in [(0, here), (1, there)] {
        let told = net.recv(i, c);
        assert!(
            told.iter().any(|m| matches!(m, ServerMsg::Away { nick: n, away } if n.as_str() == "alice" && *away == waits)),
            "node {i}'s co-member is told she is away: {told:?}"
        );
    }
    let whois = |net: &mut Net, i: usize, c: ConnId| -> Option<WhoisUser> {
        net.recv(i, c);
        ask(
            net,
            i,
            c,
            &ClientMsg::Whois {
                nick: nick("alice"),
            },
        );
        net.recv(i, c).into_iter().find_map(|m| match m {
            ServerMsg::Whois { user, .. } => Some(user),
            _ => None,
        })?
    };
    let on_hers = whois(&mut net, 0, here).expect("her node knows her");
    assert_eq!(on_hers.presence, Seen::Offline);
    assert_eq!(on_hers.away, waits);
    assert_eq!(on_hers.account, Some(nick("alice")));
    assert_eq!(
        whois(&mut net, 1, there).as_ref(),
        Some(&on_hers),
        "a co-member's node"
    );
    let mut far_answer = whois(&mut net, 2, far).expect("a node sharing no room knows her");
    // Only the rooms the asker shares are named.
    assert!(far_answer.rooms.is_empty());
    far_answer.rooms = on_hers.rooms.clone();
    assert_eq!(far_answer, on_hers, "a node sharing no room");
}
