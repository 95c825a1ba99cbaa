//! Random work on two nodes, mixed with room-log events no node of this version writes as they
//! come (an older node, another reaper, a replay, a seq out of place): no node panics (nor
//! trips one of the hub's own checks), every IRC line is whole, and once everyone leaves and
//! time runs on, no connection is left. The hub fuzz driver (`fuzzing.rs`) does not drive the
//! cluster's entry points; this does, through the fake cluster of this module's `Net`.

use super::*;
use proptest::prelude::*;

const NICKS: [&str; 4] = ["ann", "ben", "cat", "dan"];
const ROOMS: [&str; 3] = ["#a", "#b", "#r"];

#[derive(Debug, Clone)]
enum Op {
    /// A binary (`irc` false) or IRC client connects to a node, as one of [`NICKS`].
    Connect {
        node: u8,
        irc: bool,
        nick: u8,
    },
    Join {
        client: u8,
        room: u8,
    },
    Part {
        client: u8,
        room: u8,
    },
    Say {
        client: u8,
        room: u8,
    },
    Topic {
        client: u8,
        room: u8,
    },
    /// The cluster stores nothing for a while: every publish fails (or stores again). A part,
    /// quit or nick change is done on its node at once, before the log has it; one the log
    /// refuses is told again a second later, as it stands then (`Hub::redo_membership`), so the
    /// nodes are compared only while nothing waits to be told again.
    Refuse {
        on: bool,
    },
    Nick {
        client: u8,
        nick: u8,
    },
    Quit {
        client: u8,
    },
    /// The connection drops (a binary client's session waits for it to resume).
    Drop {
        client: u8,
    },
    /// A dropped binary client comes back, to either node, with its resume token.
    Resume {
        node: u8,
        which: u8,
    },
    /// An event appended to a room's log by hand, about a user of node `node` (`n0`, `n1` or
    /// one that is gone), with the log's next seq.
    Logged {
        room: u8,
        from: u8,
        kind: u8,
        node: u8,
    },
    /// An event handed to a node as if from the log, with a seq of its own (seen already,
    /// skipping ahead, or 0).
    Stray {
        node: u8,
        room: u8,
        from: u8,
        kind: u8,
        seq: u8,
    },
    /// The nodes alive, as the cluster's heartbeats tell them.
    Nodes {
        alive: u8,
    },
    Advance {
        ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..2u8, any::<bool>(), 0..4u8).prop_map(|(node, irc, nick)| Op::Connect {
            node,
            irc,
            nick
        }),
        4 => (any::<u8>(), 0..3u8).prop_map(|(client, room)| Op::Join { client, room }),
        1 => (any::<u8>(), 0..3u8).prop_map(|(client, room)| Op::Part { client, room }),
        3 => (any::<u8>(), 0..3u8).prop_map(|(client, room)| Op::Say { client, room }),
        2 => (any::<u8>(), 0..4u8).prop_map(|(client, nick)| Op::Nick { client, nick }),
        1 => (any::<u8>(), 0..3u8).prop_map(|(client, room)| Op::Topic { client, room }),
        1 => any::<bool>().prop_map(|on| Op::Refuse { on }),
        1 => any::<u8>().prop_map(|client| Op::Quit { client }),
        1 => any::<u8>().prop_map(|client| Op::Drop { client }),
        1 => (0..2u8, any::<u8>()).prop_map(|(node, which)| Op::Resume { node, which }),
        3 => (0..3u8, 0..4u8, 0..8u8, 0..3u8).prop_map(|(room, from, kind, node)| Op::Logged {
            room,
            from,
            kind,
            node
        }),
        2 => (0..2u8, 0..3u8, 0..4u8, 0..8u8, 0..12u8).prop_map(|(node, room, from, kind, seq)| {
            Op::Stray {
                node,
                room,
                from,
                kind,
                seq,
            }
        }),
        1 => (0..4u8).prop_map(|alive| Op::Nodes { alive }),
        1 => any::<u16>().prop_map(|ms| Op::Advance { ms }),
    ]
}

/// One of the room events a log can hold, picked by `k`.
fn kind(k: u8, nick_pick: u8) -> EventKind {
    let other = nick(NICKS[usize::from(nick_pick) % NICKS.len()]);
    match k % 8 {
        0 => EventKind::Join,
        1 => EventKind::Part { reason: None },
        2 => EventKind::Quit {
            reason: Some(text("gone")),
        },
        3 => EventKind::Nick { new: other },
        4 => EventKind::Say {
            id: MsgId(u64::from(k)),
            text: text("from the log"),
        },
        5 => EventKind::Topic {
            topic: Some(text("a topic")),
        },
        6 => EventKind::Kick {
            target: other,
            reason: None,
        },
        _ => EventKind::Moved,
    }
}

struct Client {
    node: usize,
    conn: ConnId,
    irc: bool,
    /// A binary client's resume token, from its latest welcome.
    token: Option<crate::types::ResumeToken>,
}

/// The resume token of the welcome among what binary client `conn` of node `node` got.
fn welcome_token(net: &mut Net, node: usize, conn: ConnId) -> Option<crate::types::ResumeToken> {
    net.recv(node, conn).into_iter().find_map(|m| match m {
        ServerMsg::Welcome { token, .. } => Some(token),
        _ => None,
    })
}

fn act(net: &mut Net, c: &Client, msg: ClientMsg, irc_line: String) {
    if c.irc {
        let now = net.now;
        net.nodes[c.node]
            .hub
            .handle_bytes(c.conn, irc_line.as_bytes(), now);
        net.pump();
    } else {
        net.send(c.node, c.conn, &msg);
    }
}

/// Every byte an IRC client got is whole lines of UTF-8 ending in CR LF, none with a bare CR
/// or LF or a NUL inside.
fn check_irc(net: &mut Net, clients: &[Client]) {
    for c in clients.iter().filter(|c| c.irc) {
        let raw = net.nodes[c.node].raw.remove(&c.conn).unwrap_or_default();
        let text = String::from_utf8(raw).expect("IRC lines are UTF-8");
        assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
        for line in text.split_terminator("\r\n") {
            assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
        }
    }
}

/// Whether the log stores and nothing it refused waits to be told again.
fn settled(net: &Net) -> bool {
    !net.refuse
        && net
            .nodes
            .iter()
            .all(|n| n.hub.cluster.as_ref().is_none_or(|cl| cl.redo.is_empty()))
}

/// With only what clients did in the logs, both nodes name the same members of every room
/// they both hold.
fn agree(net: &Net) -> Result<(), TestCaseError> {
    for r in ROOMS {
        let r = room(r);
        let lists: Vec<Vec<String>> = net
            .nodes
            .iter()
            .filter_map(|n| {
                let held = n.hub.rooms.get(&r)?;
                let mut names: Vec<String> = n
                    .hub
                    .member_nicks(&r, held)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                names.sort();
                Some(names)
            })
            .collect();
        if let [a, b] = lists.as_slice() {
            prop_assert_eq!(a, b, "the nodes disagree on {}'s members", r);
        }
    }
    Ok(())
}

fn advance(net: &mut Net, by: Millis) {
    net.now = net.now + by;
    let now = net.now;
    for n in &mut net.nodes {
        n.hub.handle_timeout(now);
    }
    net.pump();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_work_and_stray_log_events_never_break_a_node(
        strays in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run(strays, ops)?;
    }
}

/// Runs `ops` on two nodes (without [`Op::Logged`] and [`Op::Stray`] unless `strays`),
/// checking what [`random_work_and_stray_log_events_never_break_a_node`] says.
fn run(strays: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut net = Net::new(2);
    let mut clients: Vec<Client> = Vec::new();
    // Resume tokens of binary clients whose connection dropped.
    let mut dropped = Vec::new();
    // Whether a session dropped or resumed while the log refused: a session that moved and then
    // quit or changed its nick is let go by the node it left only once its wait for a resume
    // runs out, and the nodes may disagree until then.
    let mut moved_while_refused = false;
    for op in ops {
        if !strays && matches!(op, Op::Logged { .. } | Op::Stray { .. }) {
            continue;
        }
        if net.refuse && matches!(op, Op::Drop { .. } | Op::Resume { .. }) {
            moved_while_refused = true;
        }
        let pick = |clients: &[Client], k: u8| {
            (!clients.is_empty()).then(|| usize::from(k) % clients.len())
        };
        match op {
            Op::Connect { node, irc, nick: n } => {
                let node = usize::from(node);
                let want = NICKS[usize::from(n)];
                let conn = if irc {
                    net.irc(node, want)
                } else {
                    net.hello(node, want)
                };
                net.pump();
                let token = if irc {
                    None
                } else {
                    welcome_token(&mut net, node, conn)
                };
                clients.push(Client {
                    node,
                    conn,
                    irc,
                    token,
                });
            }
            Op::Join { client, room: r } => {
                if let Some(k) = pick(&clients, client) {
                    let r = ROOMS[usize::from(r)];
                    let msg = ClientMsg::Join { room: room(r) };
                    act(&mut net, &clients[k], msg, format!("JOIN {r}\r\n"));
                }
            }
            Op::Part { client, room: r } => {
                if let Some(k) = pick(&clients, client) {
                    let r = ROOMS[usize::from(r)];
                    let msg = ClientMsg::Part {
                        room: room(r),
                        reason: None,
                    };
                    act(&mut net, &clients[k], msg, format!("PART {r}\r\n"));
                }
            }
            Op::Say { client, room: r } => {
                if let Some(k) = pick(&clients, client) {
                    let r = ROOMS[usize::from(r)];
                    let msg = ClientMsg::Say {
                        room: room(r),
                        id: MsgId(u64::from(client) + 1),
                        text: text("hi"),
                    };
                    act(&mut net, &clients[k], msg, format!("PRIVMSG {r} :hi\r\n"));
                }
            }
            Op::Topic { client, room: r } => {
                if let Some(k) = pick(&clients, client) {
                    let r = ROOMS[usize::from(r)];
                    let msg = ClientMsg::Topic {
                        room: room(r),
                        topic: Some(text("news")),
                    };
                    act(&mut net, &clients[k], msg, format!("TOPIC {r} :news\r\n"));
                }
            }
            Op::Refuse { on } => net.refuse = on,
            Op::Nick { client, nick: n } => {
                if let Some(k) = pick(&clients, client) {
                    let want = NICKS[usize::from(n)];
                    let msg = ClientMsg::Nick { nick: nick(want) };
                    act(&mut net, &clients[k], msg, format!("NICK {want}\r\n"));
                }
            }
            Op::Quit { client } => {
                if let Some(k) = pick(&clients, client) {
                    let msg = ClientMsg::Quit {
                        reason: Some(text("bye")),
                    };
                    act(&mut net, &clients[k], msg, "QUIT :bye\r\n".to_owned());
                }
            }
            Op::Drop { client } => {
                if let Some(k) = pick(&clients, client) {
                    let c = clients.remove(k);
                    let now = net.now;
                    net.nodes[c.node].hub.handle_close(c.conn, now);
                    net.pump();
                    dropped.extend(c.token);
                }
            }
            Op::Resume { node, which } => {
                if !dropped.is_empty() {
                    let token = dropped.remove(usize::from(which) % dropped.len());
                    let node = usize::from(node);
                    let conn = net.hello_resuming(node, "back", token, Vec::new());
                    let token = welcome_token(&mut net, node, conn);
                    clients.push(Client {
                        node,
                        conn,
                        irc: false,
                        token,
                    });
                }
            }
            Op::Logged {
                room: r,
                from,
                kind: k,
                node,
            } => {
                let event = RoomEvent {
                    room: room(ROOMS[usize::from(r)]),
                    seq: Seq(0),
                    at: net.now,
                    from: nick(NICKS[usize::from(from)]),
                    kind: kind(k, from.wrapping_add(1)),
                };
                net.append(event, &format!("n{node}"), None);
                net.pump();
            }
            Op::Stray {
                node,
                room: r,
                from,
                kind: k,
                seq,
            } => {
                let event = RoomEvent {
                    room: room(ROOMS[usize::from(r)]),
                    seq: Seq(u64::from(seq)),
                    at: net.now,
                    from: nick(NICKS[usize::from(from)]),
                    kind: kind(k, from.wrapping_add(2)),
                };
                let now = net.now;
                net.nodes[usize::from(node)]
                    .hub
                    .handle_remote_from(event, None, "n2", now);
                net.pump();
            }
            Op::Nodes { alive } => {
                let alive: Vec<String> = (0..3)
                    .filter(|i| alive & (1 << i) != 0 || *i < 2)
                    .map(|i| format!("n{i}"))
                    .collect();
                let now = net.now;
                for n in &mut net.nodes {
                    n.hub.handle_nodes(&alive, now);
                }
                net.pump();
            }
            Op::Advance { ms } => advance(&mut net, Millis(u64::from(ms))),
        }
        check_irc(&mut net, &clients);
        if !strays && !moved_while_refused && settled(&net) {
            agree(&net)?;
        }
    }
    // The log stores again; what it refused is told again: the nodes agree.
    net.refuse = false;
    for _ in 0..4 {
        advance(&mut net, Millis(1_500));
    }
    // A session that moved while the log refused and then left under another nick or quit
    // (its move not told again: its nick no longer the node's): the node it left lets it go
    // when its wait for a resume runs out, but a log that never heard of the move may name it
    // to a node that follows the room later, so the nodes are not compared then.
    let not_told = net.nodes.iter().any(|n| {
        n.hub
            .cluster
            .as_ref()
            .is_some_and(|cl| cl.moves_not_told > 0)
    });
    if !strays && !not_told {
        if moved_while_refused {
            for _ in 0..5 {
                advance(&mut net, Millis(30_000));
            }
        }
        prop_assert!(settled(&net));
        agree(&net)?;
    }
    // Everyone leaves; time runs past every wait: no connection is left on either node.
    for c in clients.drain(..) {
        let now = net.now;
        net.nodes[c.node].hub.handle_close(c.conn, now);
    }
    net.pump();
    for _ in 0..4 {
        advance(&mut net, Millis(200_000));
    }
    for n in &net.nodes {
        prop_assert_eq!(n.hub.connections(), 0);
    }
    Ok(())
}

/// Found by the test above: an IRC client parts a room (the last member on its node) and
/// joins it again before its part is back from the log, while a member of another node is in
/// the room. The node let the room go at the part and followed it again for the join; its own
/// part then came back to the new following as nobody's, ahead of the log's earlier events,
/// which were taken as seen: the other node's member was missing from its list.
#[test]
fn a_part_and_join_again_before_the_part_is_back_keeps_the_other_members() {
    use Op::*;
    let ops = vec![
        Connect {
            node: 1,
            irc: true,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 127 },
        Join { client: 0, room: 0 },
        Join { client: 0, room: 0 },
        Join { client: 0, room: 0 },
        Join { client: 0, room: 0 },
        Join { client: 0, room: 0 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join {
            client: 14,
            room: 0,
        },
        Join {
            client: 50,
            room: 1,
        },
        Join {
            client: 74,
            room: 0,
        },
        Part {
            client: 158,
            room: 1,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 1 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join { client: 3, room: 1 },
        Join { client: 4, room: 1 },
        Advance { ms: 400 },
    ];
    run(false, ops).unwrap();
}

/// Found by the test above: a session that resumes on the other node while its user is the
/// last member of a room on the first one. The first node let the room go, then took in the
/// event's news of the room's members anyway, kept with the event's seq; when a user of that
/// node joined the room again, the log's earlier events read by the new following were taken as
/// seen, and a member of the other node was missing from its list.
#[test]
fn a_room_let_go_when_its_last_member_moves_keeps_nothing_of_its_members() {
    use Op::*;
    let ops = vec![
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 0 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 0 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Resume { node: 1, which: 0 },
        Connect {
            node: 0,
            irc: true,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join {
            client: 21,
            room: 0,
        },
        Drop { client: 49 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 1 },
        Drop { client: 0 },
        Join {
            client: 12,
            room: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 124 },
        Resume { node: 1, which: 27 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 0 },
        Join {
            client: 33,
            room: 0,
        },
    ];
    run(false, ops).unwrap();
}

/// A part, a quit and a nick change the log refused (the cluster stores nothing for a while)
/// are told again once it stores: the other node's member lists come to agree.
#[test]
fn a_part_quit_or_nick_change_the_log_refused_is_told_again_once_it_stores() {
    use Op::*;
    let both_in_b = || {
        vec![
            Connect {
                node: 0,
                irc: false,
                nick: 0,
            },
            Connect {
                node: 1,
                irc: true,
                nick: 1,
            },
            Connect {
                node: 0,
                irc: false,
                nick: 2,
            },
            Join { client: 0, room: 1 },
            Join { client: 1, room: 1 },
            Join { client: 2, room: 1 },
            Refuse { on: true },
        ]
    };
    // ann parts (node 0 keeps cat in #b); cat quits (node 0 has nobody left there); ann
    // changes nick twice, and the nick she left is taken on node 1.
    let cases = [
        vec![Part { client: 0, room: 1 }],
        vec![Quit { client: 2 }, Part { client: 0, room: 1 }],
        vec![Nick { client: 0, nick: 3 }, Nick { client: 0, nick: 2 }],
        vec![
            Nick { client: 0, nick: 3 },
            Connect {
                node: 1,
                irc: false,
                nick: 0,
            },
        ],
    ];
    for ops in cases {
        let mut all = both_in_b();
        all.extend(ops);
        run(false, all).unwrap();
    }
}

/// Found by the test above: a session taken over from another node while the log refused
/// (its `Moved` refused, so its client was told it is not in the room) stayed in the room for
/// everyone, and the node it left kept it, to quit it when its wait for a resume ran out. Once
/// the log stores, the node it left hears of the move, and everyone but the user of the part.
#[test]
fn a_session_moved_while_the_log_refused_leaves_the_room_for_everyone_once_it_stores() {
    let mut net = Net::new(2);
    let joined = |net: &mut Net, i: usize, who: &str| {
        let c = net.hello(i, who);
        net.pump();
        let token = net.token(i, c);
        net.send(i, c, &ClientMsg::Join { room: room("#a") });
        net.pump();
        (c, token)
    };
    let (ann, token) = joined(&mut net, 1, "ann");
    let (bob, _) = joined(&mut net, 0, "bob");
    let (cat, _) = joined(&mut net, 1, "cat");
    net.recv(0, bob);
    net.recv(1, cat);
    agree(&net).unwrap();
    // ann's link drops; her client resumes on node 0 while the log refuses.
    let now = net.now;
    net.nodes[1].hub.handle_close(ann, now);
    net.pump();
    net.refuse = true;
    let back = net.hello_resuming(0, "ann", token, vec![(room("#a"), Seq(3))]);
    net.pump();
    let got = net.recv(0, back);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Welcome { resumed: true, .. })),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Parted { room: r } if *r == room("#a"))),
        "told she is not in #a: {got:?}"
    );
    let members = |net: &Net, i: usize| {
        let held = net.nodes[i].hub.rooms.get(&room("#a")).expect("#a held");
        let mut names: Vec<String> = net.nodes[i]
            .hub
            .member_nicks(&room("#a"), held)
            .iter()
            .map(ToString::to_string)
            .collect();
        names.sort();
        names
    };
    net.refuse = false;
    for _ in 0..3 {
        advance(&mut net, Millis(1_500));
    }
    assert_eq!(members(&net, 0), ["bob", "cat"]);
    assert_eq!(members(&net, 1), ["bob", "cat"]);
    let parted = |msgs: &[ServerMsg]| {
        msgs.iter()
            .filter(|m| {
                matches!(m, ServerMsg::Event(e) if e.from == nick("ann")
                    && matches!(e.kind, EventKind::Part { .. }))
            })
            .count()
    };
    assert_eq!(parted(&net.recv(0, bob)), 1, "bob sees her leave");
    assert_eq!(parted(&net.recv(1, cat)), 1, "cat sees her leave");
    assert_eq!(parted(&net.recv(0, back)), 0, "she was told already");
    // Node 1 let her go: no quit of hers when her wait for a resume would have run out.
    advance(&mut net, Millis(200_000));
    let quit = |msgs: &[ServerMsg]| {
        msgs.iter()
            .any(|m| matches!(m, ServerMsg::Event(e) if matches!(e.kind, EventKind::Quit { .. })))
    };
    assert!(!quit(&net.recv(0, bob)) && !quit(&net.recv(1, cat)));
    assert_eq!(net.nodes[1].hub.connections(), 1, "node 1 keeps cat only");
}

/// Found by the test above: a session resumed on another node while the log refused (its
/// `Moved` refused), which quits there; a new user takes its nick on that node and joins
/// another of its rooms. The node it left let its user go at that join, without a word, and
/// the room's members on the first node never heard it leave the other room: the move is told
/// again, by whoever has the nick on the node now (`Redo::moved`).
#[test]
fn a_refused_move_is_told_by_the_node_that_has_the_nick_now() {
    use Op::*;
    let ops = vec![
        Connect {
            node: 1,
            irc: false,
            nick: 3,
        },
        Join { client: 0, room: 0 },
        Join { client: 0, room: 2 },
        Drop { client: 0 },
        Refuse { on: true },
        Resume { node: 0, which: 0 },
        Quit { client: 0 },
        Drop { client: 0 },
        Refuse { on: false },
        Connect {
            node: 0,
            irc: false,
            nick: 3,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join {
            client: 43,
            room: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 1,
            irc: false,
            nick: 0,
        },
        Join {
            client: 127,
            room: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Drop { client: 37 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join {
            client: 18,
            room: 2,
        },
    ];
    run(false, ops).unwrap();
}

/// Found by the test above: a session resumed on another node while the log refused (its
/// `Moved` refused) changes its nick there, and another user of that node takes the nick it
/// left and is in the room: the node the session left kept its user, and quit it when its wait
/// for a resume ran out, under the nick someone else had by then.
#[test]
fn a_refused_move_whose_nick_another_user_took_is_told_by_the_node_that_has_it() {
    use Op::*;
    let ops = vec![
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Quit { client: 0 },
        Drop { client: 0 },
        Connect {
            node: 1,
            irc: false,
            nick: 2,
        },
        Join { client: 0, room: 1 },
        Connect {
            node: 0,
            irc: false,
            nick: 1,
        },
        Join {
            client: 125,
            room: 1,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 1,
        },
        Nick {
            client: 15,
            nick: 0,
        },
        Drop { client: 81 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join { client: 0, room: 0 },
        Resume {
            node: 0,
            which: 110,
        },
        Nick {
            client: 35,
            nick: 2,
        },
        Logged {
            room: 0,
            from: 0,
            kind: 0,
            node: 0,
        },
        Refuse { on: true },
        Connect {
            node: 0,
            irc: false,
            nick: 2,
        },
        Resume { node: 0, which: 0 },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join { client: 0, room: 0 },
        Connect {
            node: 0,
            irc: false,
            nick: 2,
        },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Nick {
            client: 125,
            nick: 1,
        },
        Connect {
            node: 1,
            irc: false,
            nick: 0,
        },
        Nick {
            client: 14,
            nick: 0,
        },
        Refuse { on: false },
        Connect {
            node: 0,
            irc: false,
            nick: 0,
        },
        Join {
            client: 103,
            room: 1,
        },
    ];
    run(false, ops).unwrap();
}
