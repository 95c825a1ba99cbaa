use super::*;
use crate::limits::{
    CHAT_MAX_CHANGES, CHAT_MAX_LINES, CHAT_MAX_READ_BEFORE, HISTORY_LINES_DEFAULT,
    SEARCH_MAX_RESULTS,
};
use crate::test_support::{nick, room, text};
use crate::wire::{ErrorKind, RoomInfo};

const T0: Millis = Millis(1_700_000_000_000);

fn room_ev(r: &str, seq: u64, from: &str, kind: EventKind) -> Event {
    Event::Room(RoomEvent {
        room: room(r),
        seq: Seq(seq),
        at: T0,
        from: nick(from),
        kind,
    })
}

fn say(r: &str, seq: u64, from: &str, t: &str) -> Event {
    room_ev(
        r,
        seq,
        from,
        EventKind::Say {
            id: MsgId(seq),
            text: text(t),
        },
    )
}

fn joined(r: &str, seq: u64, members: &[&str]) -> Event {
    Event::Joined {
        room: room(r),
        topic: None,
        members: members.iter().map(|n| nick(n)).collect(),
        seq: Seq(seq),
    }
}

fn rid(r: &str) -> ConvId {
    ConvId::Room(room(r))
}

/// `me`, connected, in the rooms given (the first one open), every change read.
fn chat_in(rooms: &[&str]) -> Chat {
    let mut c = Chat::new(nick("me"));
    let now = T0;
    c.handle_event(&Event::State(ConnState::Connected), now);
    c.handle_event(
        &Event::Welcome {
            nick: nick("me"),
            resumed: false,
            signing_in: None,
        },
        now,
    );
    for r in rooms {
        c.handle_event(&joined(r, 1, &["me", "bob"]), now);
    }
    drain(&mut c);
    c
}

fn drain(c: &mut Chat) -> Vec<Change> {
    std::iter::from_fn(|| c.poll_change()).collect()
}

fn alerts(c: &mut Chat) -> Vec<Alert> {
    std::iter::from_fn(|| c.poll_alert()).collect()
}

fn kinds(c: &Chat, id: &ConvId) -> Vec<LineKind> {
    c.conv(id)
        .unwrap()
        .lines()
        .iter()
        .map(|l| l.kind.clone())
        .collect()
}

fn says(from: &str, t: &str) -> LineKind {
    LineKind::Say {
        from: nick(from),
        text: text(t),
    }
}

fn unread(c: &Chat, r: &str) -> (u32, u32) {
    let conv = c.conv(&rid(r)).unwrap();
    (conv.unread(), conv.mentions())
}

#[test]
fn the_first_room_joined_opens_and_later_ones_wait() {
    let mut c = Chat::new(nick("me"));
    assert_eq!(c.current(), &ConvId::Server);
    assert_eq!(c.target(), None);
    c.handle_event(&joined("#a", 1, &["me"]), T0);
    c.handle_event(&joined("#b", 1, &["me"]), T0);
    assert_eq!(c.current(), &rid("#a"));
    assert_eq!(c.target(), Some(Target::Room(room("#a"))));
    let names: Vec<&str> = c.conversations().map(Conv::label).collect();
    assert_eq!(names, ["#a", "#b"]);
    // A /join answered asks to show its room.
    c.handle_event(&Event::Focus(room("#b")), T0);
    assert_eq!(c.current(), &rid("#b"));
    assert!(drain(&mut c).contains(&Change::Current));
    assert_eq!(
        kinds(&c, &rid("#b")),
        [LineKind::Notice(
            "you are in #b (nobody else is here yet)".into()
        )]
    );
}

#[test]
fn unread_counts_what_others_say_where_the_person_is_not_looking() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(&say("#a", 2, "bob", "seen at once"), T0);
    c.handle_event(&say("#b", 2, "bob", "one"), T0);
    c.handle_event(&say("#b", 3, "me", "mine"), T0);
    c.handle_event(&room_ev("#b", 4, "carol", EventKind::Join), T0);
    c.handle_event(&say("#b", 5, "carol", "two"), T0);
    assert_eq!(unread(&c, "#a"), (0, 0));
    assert_eq!(unread(&c, "#b"), (2, 0), "chat by others only");
    assert_eq!(c.counts(), (2, 0));
    assert_eq!(c.title(), "(2) #a · natter");
    let changes = drain(&mut c);
    assert!(changes.contains(&Change::Counts(rid("#b"))));
    assert!(!changes.contains(&Change::Counts(rid("#a"))));

    // Opening a conversation reads it.
    assert!(c.open(&rid("#b")));
    assert_eq!(unread(&c, "#b"), (0, 0));
    assert_eq!(c.title(), "#b · natter");
    assert!(!c.open(&rid("#nowhere")));

    // Looking away: the open conversation counts too, until looked at again.
    c.set_attention(false);
    c.handle_event(&say("#b", 6, "bob", "while away"), T0);
    assert_eq!(unread(&c, "#b"), (1, 0));
    c.set_attention(true);
    assert_eq!(unread(&c, "#b"), (0, 0));
}

#[test]
fn mentions_are_marked_counted_and_alerted_when_live() {
    let mut c = chat_in(&["#a", "#b"]);
    // History replayed after joining #c (seq up to its join's) mentions us: marked, not alerted.
    c.handle_event(&joined("#c", 10, &["me", "bob"]), T0);
    c.handle_event(&say("#c", 9, "bob", "me: earlier"), T0);
    c.handle_event(&say("#c", 11, "bob", "hey ME, now"), T0);
    c.handle_event(&say("#c", 12, "bob", "meme time"), T0);
    c.handle_event(&say("#c", 13, "me", "talking about me"), T0);
    let lines = c.conv(&rid("#c")).unwrap().lines();
    let marks: Vec<bool> = lines
        .iter()
        .filter(|l| l.seq.is_some())
        .map(|l| l.mention)
        .collect();
    assert_eq!(marks, [true, true, false, false]);
    assert_eq!(
        unread(&c, "#c"),
        (3, 1),
        "only the live mention counts as one"
    );
    assert_eq!(c.title(), "(3, @1) #a · natter");
    let got = alerts(&mut c);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, nick("bob"));
    assert_eq!(got[0].room, Some(room("#c")));
    assert_eq!(got[0].text, text("hey ME, now"));
    // After a nick change, the new nick is the one mentioned.
    c.handle_event(&Event::Nick(nick("neo")), T0);
    c.handle_event(&say("#a", 2, "bob", "neo?"), T0);
    assert!(c.conv(&rid("#a")).unwrap().lines().back().unwrap().mention);
    assert_eq!(alerts(&mut c).len(), 1);
}

#[test]
fn direct_messages_have_their_own_conversation_and_count_as_mentions() {
    let mut c = chat_in(&["#a"]);
    let dm = |from: &str, to: &str, t: &str| {
        Event::Direct(crate::wire::DirectMsg {
            from: nick(from),
            to: nick(to),
            id: MsgId(1),
            at: T0,
            text: text(t),
        })
    };
    c.handle_event(&dm("Bob", "me", "psst"), T0);
    let bob = ConvId::direct(&nick("bob"));
    assert_eq!(bob, ConvId::direct(&nick("BOB")));
    let conv = c.conv(&bob).unwrap();
    assert_eq!(conv.label(), "Bob");
    assert_eq!((conv.unread(), conv.mentions()), (1, 1));
    assert!(conv.lines()[0].mention);
    assert_eq!(alerts(&mut c)[0].room, None);
    // Our answer (the server's echo) lands in the same conversation, and alerts nobody.
    c.handle_event(&dm("me", "bob", "hi"), T0);
    assert_eq!(kinds(&c, &bob), [says("Bob", "psst"), says("me", "hi")]);
    assert!(alerts(&mut c).is_empty());
    // A direct action (`* nick action`, what `/me` and IRC's ACTION send there) is shown as
    // one; the same words from someone else's nick, or nothing after it, are words.
    c.handle_event(&dm("Bob", "me", "* Bob waves"), T0);
    c.handle_event(&dm("Bob", "me", "* eve waves"), T0);
    c.handle_event(&dm("Bob", "me", "* Bob "), T0);
    let act = LineKind::Act {
        from: nick("Bob"),
        text: text("waves"),
    };
    assert_eq!(
        kinds(&c, &bob)[2..],
        [act, says("Bob", "* eve waves"), says("Bob", "* Bob ")]
    );
    alerts(&mut c);
    // Typed while it is open, chat goes to bob.
    c.open(&bob);
    assert_eq!(c.target(), Some(Target::Nick(nick("bob"))));
    assert_eq!(c.conv_after(1), Some(rid("#a")), "wraps around");
    assert_eq!(c.conv_number(2), Some(bob.clone()));
    // Keys round-trip.
    for id in [ConvId::Server, rid("#a"), bob] {
        assert_eq!(ConvId::from_key(&id.key()), Some(id));
    }
    assert_eq!(ConvId::from_key("nonsense"), None);
}

#[test]
fn a_direct_conversation_follows_its_peer_when_renamed() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(
        &Event::Direct(crate::wire::DirectMsg {
            from: nick("bob"),
            to: nick("me"),
            id: MsgId(1),
            at: T0,
            text: text("psst"),
        }),
        T0,
    );
    let (bob, robert) = (
        ConvId::direct(&nick("bob")),
        ConvId::direct(&nick("robert")),
    );
    c.open(&bob);
    drain(&mut c);
    // Told in both rooms: the conversation is renamed once, and stays open.
    let renamed = |r: &str| {
        room_ev(
            r,
            2,
            "bob",
            EventKind::Nick {
                new: nick("robert"),
            },
        )
    };
    c.handle_event(&renamed("#a"), T0);
    c.handle_event(&renamed("#b"), T0);
    assert!(c.conv(&bob).is_none());
    assert_eq!(c.current(), &robert);
    assert_eq!(c.target(), Some(Target::Nick(nick("robert"))));
    let conv = c.conv(&robert).unwrap();
    assert_eq!(conv.label(), "robert");
    assert_eq!(
        kinds(&c, &robert),
        [
            says("bob", "psst"),
            LineKind::Event {
                who: nick("bob"),
                words: "bob is now known as robert".into()
            }
        ]
    );
    let changes = drain(&mut c);
    assert!(changes.contains(&Change::List), "{changes:?}");
    assert!(changes.contains(&Change::Current), "{changes:?}");
    // A rename in history replayed at a join is not followed: that nick may be someone
    // else's by now.
    c.handle_event(&joined("#c", 9, &["me", "robert"]), T0);
    c.handle_event(
        &room_ev("#c", 5, "robert", EventKind::Nick { new: nick("rob") }),
        T0,
    );
    assert!(c.conv(&robert).is_some());
}

#[test]
fn too_many_direct_conversations_drop_the_stalest() {
    let mut c = chat_in(&["#a"]);
    for i in 0..CHAT_MAX_DIRECT + 3 {
        c.open_direct(&nick(&format!("p{i}")));
    }
    let directs = c
        .conversations()
        .filter(|x| matches!(x.id(), ConvId::Direct(_)))
        .count();
    assert_eq!(directs, CHAT_MAX_DIRECT);
    assert!(c.conv(&ConvId::direct(&nick("p0"))).is_none());
    assert!(c.conv(c.current()).is_some(), "the open one stays");
}

#[test]
fn members_change_one_row_at_a_time() {
    let mut c = chat_in(&["#a"]);
    let names = |c: &Chat| -> Vec<String> {
        c.conv(&rid("#a"))
            .unwrap()
            .members()
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    assert_eq!(names(&c), ["bob", "me"]);
    c.handle_event(&room_ev("#a", 2, "Alice", EventKind::Join), T0);
    c.handle_event(&room_ev("#a", 3, "carl", EventKind::Join), T0);
    c.handle_event(
        &room_ev("#a", 4, "bob", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(
        &room_ev("#a", 5, "carl", EventKind::Nick { new: nick("zed") }),
        T0,
    );
    // A rename of someone not listed does not invent them.
    c.handle_event(
        &room_ev("#a", 6, "ghost", EventKind::Nick { new: nick("boo") }),
        T0,
    );
    assert_eq!(names(&c), ["Alice", "me", "zed"]);
    let member_changes: Vec<Change> = drain(&mut c)
        .into_iter()
        .filter(|ch| {
            matches!(
                ch,
                Change::MemberAdded { .. } | Change::MemberRemoved { .. }
            )
        })
        .collect();
    let conv = rid("#a");
    assert_eq!(
        member_changes,
        [
            Change::MemberAdded {
                conv: conv.clone(),
                index: 0,
                nick: nick("Alice"),
            },
            Change::MemberAdded {
                conv: conv.clone(),
                index: 2,
                nick: nick("carl"),
            },
            Change::MemberRemoved {
                conv: conv.clone(),
                index: 1
            },
            Change::MemberRemoved {
                conv: conv.clone(),
                index: 1
            },
            Change::MemberAdded {
                conv,
                index: 2,
                nick: nick("zed"),
            },
        ]
    );
    // The words are render's.
    assert_eq!(
        kinds(&c, &rid("#a"))[1],
        LineKind::Event {
            who: nick("Alice"),
            words: "Alice joined #a".into()
        }
    );
    // A /who answer replaces the list and says so.
    c.handle_event(
        &Event::Members {
            room: room("#a"),
            members: vec![nick("x")],
            asked: true,
            as_of: None,
        },
        T0,
    );
    assert_eq!(names(&c), ["x"]);
    assert_eq!(
        kinds(&c, &rid("#a")).last(),
        Some(&LineKind::Notice("#a (1): x".into()))
    );
}

#[test]
fn topics_follow_events_and_answers() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(
        &room_ev(
            "#a",
            2,
            "bob",
            EventKind::Topic {
                topic: Some(text("crabs")),
            },
        ),
        T0,
    );
    assert_eq!(c.current_conv().topic(), Some(&text("crabs")));
    c.handle_event(
        &Event::Topic {
            room: room("#a"),
            topic: None,
        },
        T0,
    );
    assert_eq!(c.current_conv().topic(), None);
    assert!(drain(&mut c).contains(&Change::Topic(rid("#a"))));
}

#[test]
fn parting_the_open_room_opens_the_next() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    assert_eq!(c.current(), &rid("#b"));
    assert!(c.conv(&rid("#a")).is_none());
    assert_eq!(
        kinds(&c, &rid("#b")).last(),
        Some(&LineKind::Notice("you left #a".into()))
    );
    c.handle_event(
        &Event::Parted {
            room: room("#b"),
            kicked: false,
        },
        T0,
    );
    assert_eq!(c.current(), &ConvId::Server);
    assert_eq!(c.conversations().count(), 0);
}

fn parted(r: &str) -> Event {
    Event::Parted {
        room: room(r),
        kicked: false,
    }
}

/// Parting the open room landed in the first room of the list, not in the one read before it
/// (irssi and WeeChat go back to the previous window). The model keeps the conversations read
/// before the open one and lands in the most recent still there; one left, closed or renamed
/// meanwhile is passed over or followed, and the first room is what is left when none is.
#[test]
fn leaving_the_open_conversation_goes_back_to_the_one_read_before_it() {
    let mut c = chat_in(&["#a", "#b", "#c", "#d", "#e"]);
    for r in ["#e", "#c", "#b", "#d"] {
        assert!(c.open(&rid(r)));
    }
    c.handle_event(&parted("#d"), T0);
    assert_eq!(c.current(), &rid("#b"));
    assert_eq!(
        kinds(&c, &rid("#b")).last(),
        Some(&LineKind::Notice("you left #d".into()))
    );
    // Left while not open: passed over.
    c.handle_event(&parted("#c"), T0);
    assert_eq!(c.current(), &rid("#b"));
    c.handle_event(&parted("#b"), T0);
    assert_eq!(c.current(), &rid("#e"), "not the first room, #a");
    c.handle_event(&parted("#e"), T0);
    assert_eq!(c.current(), &rid("#a"));
    c.handle_event(&parted("#a"), T0);
    assert_eq!(c.current(), &ConvId::Server);

    // A direct conversation is one read before, and closing one goes back too.
    let mut c = chat_in(&["#a", "#b", "#c"]);
    let (bob, robert) = (
        ConvId::direct(&nick("bob")),
        ConvId::direct(&nick("robert")),
    );
    assert!(c.open(&rid("#c")));
    c.open_direct(&nick("bob"));
    assert!(c.close_direct(&bob));
    assert_eq!(c.current(), &rid("#c"), "not the first room, #a");
    c.open_direct(&nick("bob"));
    assert!(c.open(&rid("#b")));
    // Renamed meanwhile: followed.
    c.handle_event(
        &room_ev(
            "#a",
            2,
            "bob",
            EventKind::Nick {
                new: nick("robert"),
            },
        ),
        T0,
    );
    c.handle_event(&parted("#b"), T0);
    assert_eq!(c.current(), &robert);
    // At most CHAT_MAX_READ_BEFORE are kept, the most recent: past them, the first room.
    let names: Vec<String> = (0..2 * CHAT_MAX_READ_BEFORE)
        .map(|i| format!("#r{i}"))
        .collect();
    for r in &names {
        c.handle_event(&joined(r, 1, &["me"]), T0);
        assert!(c.open(&rid(r)));
    }
    assert_eq!(c.read_before.len(), CHAT_MAX_READ_BEFORE);
    for i in (names.len() - CHAT_MAX_READ_BEFORE..names.len()).rev() {
        c.handle_event(&parted(&names[i]), T0);
        assert_eq!(c.current(), &rid(&names[i - 1]));
    }
    c.handle_event(&parted(&names[names.len() - CHAT_MAX_READ_BEFORE - 1]), T0);
    assert_eq!(c.current(), &rid("#a"), "older ones are forgotten");
}

/// `/part #a #b` typed in #a: #a went, the model opened #b and said "you left #a" there, then
/// #b went with that line, and the person, now in #c, read only "you left #b". What the model
/// says in the room it opened goes on with the person while they have not chosen another; the
/// room's own lines, and what was said before, stay with the room.
#[test]
fn what_is_said_in_a_room_left_right_after_we_landed_there_follows_us() {
    let mut c = chat_in(&["#a", "#b", "#c", "#d"]);
    c.handle_event(&say("#b", 2, "bob", "before"), T0);
    let said_before = kinds(&c, &rid("#b"));
    c.handle_event(&parted("#a"), T0);
    assert_eq!(c.current(), &rid("#b"));
    // An answer about a room we were not in, between the parts: said where we are.
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::NotInRoom),
            about: About::Part(room("#x")),
            text: "you are not in #x".into(),
        },
        T0,
    );
    c.handle_event(&parted("#b"), T0);
    assert_eq!(c.current(), &rid("#c"));
    let words = |c: &Chat, r: &str| -> Vec<String> {
        c.conv(&rid(r))
            .unwrap()
            .lines()
            .iter()
            .filter_map(|l| match &l.kind {
                LineKind::Notice(t) | LineKind::Error(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        words(&c, "#c")[1..],
        [
            "you left #a",
            "could not leave #x: you are not in #x",
            "you left #b"
        ]
    );
    assert_eq!(words(&c, "#c")[0], "you are in #c with: bob");
    // The room's own lines stay with it (and show again if it is joined again).
    c.handle_event(&joined("#b", 9, &["me", "bob"]), T0);
    let back = kinds(&c, &rid("#b"));
    assert_eq!(back[..said_before.len()], said_before[..]);
    assert!(
        !back.contains(&LineKind::Notice("you left #a".into())),
        "{back:#?}"
    );
    // Chosen by the person: the room is theirs, and what was said in it stays there. Left, it
    // goes back to the one read before it.
    c.open(&rid("#d"));
    c.open(&rid("#c"));
    c.handle_event(&parted("#c"), T0);
    assert_eq!(c.current(), &rid("#d"));
    let d = words(&c, "#d");
    assert_eq!(d[1..], ["you left #c"], "{d:?}");
    // The room said something of its own after the note: the note is the room's now.
    c.handle_event(&joined("#e", 1, &["me", "bob"]), T0);
    c.handle_event(&parted("#d"), T0);
    assert_eq!(c.current(), &rid("#b"));
    c.handle_event(&say("#b", 10, "bob", "news"), T0);
    c.handle_event(&parted("#b"), T0);
    assert_eq!(c.current(), &rid("#e"));
    assert_eq!(words(&c, "#e")[1..], ["you left #b"]);
}

/// A direct conversation could not be closed: one a `/msg` to a mistyped nick started stayed
/// listed for good. Closed, it goes (the room list says so), the one read before opens if it was
/// open, and the next message with that person starts it again.
#[test]
fn a_direct_conversation_can_be_closed_and_comes_back_with_the_next_message() {
    let mut c = chat_in(&["#a", "#b"]);
    let dm = |from: &str, to: &str, t: &str| {
        Event::Direct(DirectMsg {
            from: nick(from),
            to: nick(to),
            id: MsgId(1),
            at: T0,
            text: text(t),
        })
    };
    c.handle_event(&dm("bob", "me", "psst"), T0);
    let bob = ConvId::direct(&nick("bob"));
    c.open(&bob);
    drain(&mut c);
    assert!(c.close_direct(&bob));
    assert!(c.conv(&bob).is_none());
    assert_eq!(c.current(), &rid("#a"));
    assert_eq!(drain(&mut c), [Change::List, Change::Current]);
    assert!(!c.close_direct(&bob), "gone already");
    assert!(!c.close_direct(&rid("#b")), "a room is left with /part");
    assert!(!c.close_direct(&ConvId::Server));
    assert!(c.conv(&rid("#b")).is_some());
    // Not open: closed where it is.
    c.handle_event(&dm("carol", "me", "hi"), T0);
    let carol = ConvId::direct(&nick("carol"));
    assert!(c.close_direct(&carol));
    assert_eq!(c.current(), &rid("#a"));
    // Back with the next message, without the old lines.
    c.handle_event(&dm("bob", "me", "again"), T0);
    let lines = kinds(&c, &bob);
    assert_eq!(lines, [says("bob", "again")]);
}

/// Out of a room not of our accord with no kick to tell it (a rejoin refused after a failed
/// resume): no "you left", only the refusal that follows, where we are now.
#[test]
fn a_room_that_would_not_have_us_back_says_why_not_you_left() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: true,
        },
        T0,
    );
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::BadKey),
            about: About::Join(room("#a")),
            text: "#a needs its key: /join #a KEY".into(),
        },
        T0,
    );
    assert_eq!(c.current(), &rid("#b"));
    assert!(c.conv(&rid("#a")).is_none());
    let words: Vec<String> = kinds(&c, &rid("#b"))
        .iter()
        .filter_map(|k| match k {
            LineKind::Notice(t) | LineKind::Error(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert!(!words.iter().any(|w| w.contains("you left")), "{words:?}");
    assert!(
        words.iter().any(|w| w.contains("needs its key")),
        "{words:?}"
    );
}

/// `/login` as a guest: the server takes the guest out of its rooms, renames it, signs it in
/// and puts the account in its rooms. What was said meanwhile (only the server's conversation
/// was open) is said again in the room that opens, where the person looks.
#[test]
fn a_sign_in_that_leaves_and_rejoins_the_rooms_is_said_in_the_room_that_opens() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    c.handle_event(&Event::Nick(nick("alice")), T0);
    c.handle_event(
        &Event::SignedIn {
            account: nick("alice"),
            key: None,
        },
        T0,
    );
    c.handle_event(&joined("#a", 7, &["alice", "bob"]), T0);
    assert_eq!(c.current(), &rid("#a"));
    let lines = kinds(&c, &rid("#a"));
    for said in ["you are now known as alice", "you are signed in as alice"] {
        assert!(
            lines.contains(&LineKind::Notice(said.into())),
            "{said}: {lines:#?}"
        );
    }
}

/// `/login` while reading the middle one of three rooms: they are all left, one by one (the
/// model opens another each time the open one goes), and joined again. The room that was
/// being read opens again, not the last one the model opened on the way: typed in #b, the
/// person found themselves in #c.
#[test]
fn a_sign_in_brings_back_the_room_being_read_not_one_opened_on_the_way() {
    for order in [["#a", "#b", "#c"], ["#b", "#c", "#a"], ["#c", "#b", "#a"]] {
        let mut c = chat_in(&["#a", "#b", "#c"]);
        assert!(c.open(&rid("#b")));
        for r in order {
            c.handle_event(
                &Event::Parted {
                    room: room(r),
                    kicked: false,
                },
                T0,
            );
        }
        assert_eq!(c.current(), &ConvId::Server, "{order:?}");
        for (i, r) in order.iter().enumerate() {
            c.handle_event(&joined(r, 7 + i as u64, &["me"]), T0);
        }
        assert_eq!(c.current(), &rid("#b"), "{order:?}");
    }
    // The person's choice meanwhile wins, and is not undone by a room that comes back later.
    let mut c = chat_in(&["#a", "#b"]);
    assert!(c.open(&rid("#b")));
    for r in ["#b", "#a"] {
        c.handle_event(
            &Event::Parted {
                room: room(r),
                kicked: false,
            },
            T0,
        );
    }
    c.handle_event(&joined("#a", 7, &["me"]), T0);
    c.handle_event(&joined("#x", 1, &["me"]), T0);
    assert!(c.open(&rid("#x")));
    c.handle_event(&joined("#b", 8, &["me"]), T0);
    assert_eq!(c.current(), &rid("#x"));
}

/// Our own away message is kept while it holds, for a status line: `/back` ends it, and so
/// does a new session (the server's new user is not away); someone else's is not ours.
#[test]
fn our_away_message_is_kept_until_we_are_back_or_a_new_session() {
    let mut c = chat_in(&["#a"]);
    assert_eq!(c.my_away(), None);
    let away = |n: &str, a: Option<&str>| Event::Away {
        nick: nick(n),
        away: a.map(text),
    };
    c.handle_event(&away("bob", Some("lunch")), T0);
    assert_eq!(c.my_away(), None);
    c.handle_event(&away("ME", Some("lunch")), T0);
    assert_eq!(c.my_away(), Some(&text("lunch")));
    c.handle_event(&away("me", None), T0);
    assert_eq!(c.my_away(), None);
    c.handle_event(&away("me", Some("brb")), T0);
    let welcome = |resumed| Event::Welcome {
        nick: nick("me"),
        resumed,
        signing_in: None,
    };
    c.handle_event(&welcome(true), T0);
    assert_eq!(c.my_away(), Some(&text("brb")));
    c.handle_event(&welcome(false), T0);
    assert_eq!(c.my_away(), None);
}

/// A room left and joined again (a guest's `/login` leaves its rooms and joins them as the
/// account at once; or `/part` then `/join`) keeps what it showed: the join's replay adds only
/// what is newer, and a stretch nobody replayed is marked as missed.
#[test]
fn a_room_joined_again_keeps_its_lines_and_adds_only_what_is_new() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&say("#a", 2, "bob", "before"), T0);
    c.handle_event(&say("#a", 3, "bob", "reading this"), T0);
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    assert!(c.conv(&rid("#a")).is_none());
    // Joined again at once (after another room, as a sign-in's rooms come): the replay
    // repeats seq 3, then brings 4; and the room we were reading is the one open again.
    c.handle_event(&joined("#other", 1, &["me"]), T0);
    assert_eq!(c.current(), &rid("#other"));
    c.handle_event(&joined("#a", 6, &["me", "bob"]), T0);
    assert_eq!(c.current(), &rid("#a"));
    c.handle_event(&say("#a", 3, "bob", "reading this"), T0);
    // Our own part, replayed: said as "you left #a" when it happened, it read below the notice
    // of this join as if we had left again.
    c.handle_event(
        &room_ev("#a", 4, "me", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(&say("#a", 5, "bob", "new"), T0);
    c.handle_event(&room_ev("#a", 6, "me", EventKind::Join), T0);
    let lines = kinds(&c, &rid("#a"));
    assert!(
        !texts(&c, "#a").iter().any(|t| t.contains("me left")),
        "{lines:#?}"
    );
    let said: Vec<&LineKind> = lines
        .iter()
        .filter(|l| matches!(l, LineKind::Say { .. }))
        .collect();
    assert_eq!(
        said,
        [
            &says("bob", "before"),
            &says("bob", "reading this"),
            &says("bob", "new")
        ],
        "{lines:#?}"
    );
    assert_eq!(c.conv(&rid("#a")).unwrap().members().len(), 2);
    // Left again, and back much later: what nobody replayed is a marked gap (after our own
    // join, seq 6, which the notice of it said).
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    c.handle_event(&joined("#a", 20, &["me"]), T0);
    c.handle_event(&say("#a", 18, "bob", "late"), T0);
    let lines = kinds(&c, &rid("#a"));
    // Replayed: above the notice of this join.
    assert!(
        matches!(
            &lines[lines.len() - 3..],
            [LineKind::Gap { first: Seq(7), last: Seq(17), .. }, l, LineKind::Notice(_)]
                if *l == says("bob", "late")
        ),
        "{lines:#?}"
    );
    // A part of ours that is live, or history before what was shown, is said as ever.
    c.handle_event(
        &room_ev("#a", 21, "me", EventKind::Part { reason: None }),
        T0,
    );
    assert!(texts(&c, "#a").last().unwrap().contains("me left"));
}

/// `/part #r`, `/join #r`, `/part #r`: the second "you left #r" was not said, as the same
/// notice right after itself is not (a reconnect's), so #a showed only the first one, with its
/// time, as if it were this part's; and the notice of a join again was not said below the one of
/// the visit before. Both are answers to what the person did: said each time.
/// And a join whose replay brings back our own parts and joins of the visits before (a new
/// connection's, after a server restart: the server does not know what this client saw) passed
/// over only the first replayed event after the room's newest chat line, so from the second
/// visit on (and in a room with no chat, at once) an old part read below the notice of this
/// join as if we had just left again.
#[test]
fn parting_and_joining_again_and_again_shows_each_visit_once() {
    let mut c = chat_in(&["#a", "#r"]);
    assert!(c.open(&rid("#r")));
    let me = |seq, kind| Event::Room(ev_at("#r", seq, "me", kind));
    let part = || EventKind::Part { reason: None };
    // Our join of the first visit was seq 1; each visit adds our part and our next join.
    let mut history = vec![me(1, EventKind::Join)];
    let mut seq = 1;
    for visit in 2..=4 {
        c.handle_event(&parted("#r"), T0);
        assert_eq!(c.current(), &rid("#a"), "visit {visit}");
        history.push(me(seq + 1, part()));
        history.push(me(seq + 2, EventKind::Join));
        seq += 2;
        c.handle_event(&joined("#r", seq, &["me", "bob"]), T0);
        assert_eq!(c.current(), &rid("#r"), "visit {visit}");
        for ev in &history {
            c.handle_event(ev, T0);
        }
        let r = texts(&c, "#r");
        assert!(
            !r.iter().any(|t| t.contains("left") || t.contains("joined")),
            "visit {visit}: {r:#?}"
        );
        assert_eq!(
            r.last().unwrap(),
            "you are in #r with: bob",
            "visit {visit}"
        );
        let a = texts(&c, "#a");
        assert_eq!(
            a.iter().filter(|t| *t == "you left #r").count(),
            visit - 1,
            "visit {visit}: {a:#?}"
        );
    }
    // Someone else's comings and goings in the replay are still said, and bob's chat.
    c.handle_event(&parted("#r"), T0);
    c.handle_event(&joined("#r", seq + 4, &["me", "bob"]), T0);
    c.handle_event(&me(seq + 1, part()), T0);
    c.handle_event(
        &Event::Room(ev_at("#r", seq + 2, "bob", EventKind::Join)),
        T0,
    );
    c.handle_event(&say("#r", seq + 3, "bob", "you missed this"), T0);
    c.handle_event(&me(seq + 4, EventKind::Join), T0);
    let r = texts(&c, "#r");
    // Replayed, above the notice of this join.
    let tail: Vec<&str> = r.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "bob joined #r",
            "<bob> you missed this",
            "you are in #r with: bob"
        ],
        "{r:#?}"
    );
}

/// A memory-only server drops a room nobody is in, and one made again counts its seqs from 1
/// (`Room::made`); so does every room after a restart of one. Joined again, the new room's
/// replay was passed over up to the newest seq the old one had shown, as if already here:
/// what was said in the new room before our join was never shown. Our join's seq at or below
/// what the room held says its numbering started over: nothing of the replay was here, and
/// the old lines' seqs are no longer the room's (older lines are asked below the new ones).
#[test]
fn a_room_made_anew_with_seqs_from_one_shows_its_replay_in_full() {
    let mut c = chat_in(&["#a", "#r"]);
    assert!(c.open(&rid("#r")));
    for seq in 2..=9 {
        c.handle_event(&say("#r", seq, "bob", &format!("old {seq}")), T0);
    }
    c.handle_event(&parted("#r"), T0);
    // Made anew: bob's join is 1, then three lines; ours is 5. The replay starts at 2.
    c.handle_event(&joined("#r", 5, &["me", "bob"]), T0);
    assert_eq!(c.current(), &rid("#r"));
    for seq in 2..=4 {
        c.handle_event(&say("#r", seq, "bob", &format!("new {seq}")), T0);
    }
    c.handle_event(&room_ev("#r", 5, "me", EventKind::Join), T0);
    let r = texts(&c, "#r");
    let new: Vec<&str> = r
        .iter()
        .filter(|t| t.starts_with("<bob> new"))
        .map(String::as_str)
        .collect();
    assert_eq!(new, ["<bob> new 2", "<bob> new 3", "<bob> new 4"], "{r:#?}");
    assert!(r.iter().filter(|t| t.starts_with("<bob> old")).count() == 8);
    // Older lines of the new room are below its oldest held, not the old room's.
    assert_eq!(c.want_older(&rid("#r")), Some((room("#r"), Seq(2))));
    // And what comes live after is said once.
    c.handle_event(&say("#r", 6, "bob", "live"), T0);
    assert_eq!(texts(&c, "#r").last().unwrap(), "<bob> live");
}

/// A room made anew that has said more than the old one held before we join again: our
/// join's seq is above the old lines', and the replay was passed over up to them. A replayed
/// event whose seq a kept line holds but that is not that line (another time, another sender)
/// says the numbering started over: from it on, the replay is shown.
#[test]
fn a_room_made_anew_that_outgrew_the_old_one_is_told_by_its_replay() {
    let mut c = chat_in(&["#a", "#r"]);
    assert!(c.open(&rid("#r")));
    c.handle_event(&say("#r", 2, "bob", "old 2"), T0);
    c.handle_event(&say("#r", 3, "bob", "old 3"), T0);
    c.handle_event(&parted("#r"), T0);
    // Made anew by carol (join 1, lines 2 to 7); ours is 8.
    c.handle_event(&joined("#r", 8, &["me", "carol"]), T0);
    let later = T0 + Millis(60_000);
    let new = |seq: u64, kind| {
        Event::Room(RoomEvent {
            room: room("#r"),
            seq: Seq(seq),
            at: later,
            from: nick("carol"),
            kind,
        })
    };
    c.handle_event(&new(1, EventKind::Join), T0);
    for seq in 2..=7 {
        let kind = EventKind::Say {
            id: MsgId(seq),
            text: text(&format!("new {seq}")),
        };
        c.handle_event(&new(seq, kind), T0);
    }
    c.handle_event(&room_ev("#r", 8, "me", EventKind::Join), T0);
    let r = texts(&c, "#r");
    let said: Vec<&str> = r
        .iter()
        .filter(|t| t.starts_with("<carol>"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        said,
        [
            "<carol> new 2",
            "<carol> new 3",
            "<carol> new 4",
            "<carol> new 5",
            "<carol> new 6",
            "<carol> new 7"
        ],
        "{r:#?}"
    );
    // The same room's replay, its lines as held, is still passed over.
    c.handle_event(&say("#r", 9, "bob", "live"), T0);
    c.handle_event(&parted("#r"), T0);
    c.handle_event(&joined("#r", 11, &["me", "carol"]), T0);
    c.handle_event(
        &new(
            7,
            EventKind::Say {
                id: MsgId(7),
                text: text("new 7"),
            },
        ),
        T0,
    );
    c.handle_event(&say("#r", 9, "bob", "live"), T0);
    c.handle_event(&say("#r", 10, "bob", "after"), T0);
    let r = texts(&c, "#r");
    assert_eq!(
        r.iter().filter(|t| *t == "<carol> new 7").count(),
        1,
        "{r:#?}"
    );
    assert_eq!(r.iter().filter(|t| *t == "<bob> live").count(), 1, "{r:#?}");
    // Replayed (our join is 11): above the notice of the join.
    assert_eq!(
        r[r.len() - 2..],
        ["<bob> after", "you are in #r with: carol"]
    );
}

/// Put out of a room, we are told who did it and why where we land: the room's own lines,
/// which held the kick, go with the room. A kick long ago in a room's history says nothing
/// when we later leave it ourselves.
#[test]
fn a_kick_out_of_a_room_is_said_where_we_land() {
    let mut c = chat_in(&["#a", "#b"]);
    let kick = |seq, target: &str| {
        room_ev(
            "#a",
            seq,
            "op",
            EventKind::Kick {
                target: nick(target),
                reason: Some(text("spam")),
            },
        )
    };
    // Someone else's kick, then ours.
    c.handle_event(&kick(2, "bob"), T0);
    c.handle_event(&kick(3, "me"), T0);
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: true,
        },
        T0,
    );
    assert_eq!(c.current(), &rid("#b"));
    // The kick alone: "you left" would say we went of our own accord.
    let lines = kinds(&c, &rid("#b"));
    assert_eq!(
        lines.last(),
        Some(&LineKind::Notice("op put you out of #a (spam)".into()))
    );
    assert!(
        !lines.contains(&LineKind::Notice("you left #a".into())),
        "{lines:?}"
    );
    // Back in #a, whose history holds that kick and then our join: leaving says only that.
    c.handle_event(&joined("#a", 4, &["me", "op"]), T0);
    c.handle_event(&kick(3, "me"), T0);
    c.handle_event(&room_ev("#a", 4, "me", EventKind::Join), T0);
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    let lines = kinds(&c, &rid("#b"));
    let kicks = lines
        .iter()
        .filter(|l| **l == LineKind::Notice("op put you out of #a (spam)".into()))
        .count();
    assert_eq!(kicks, 1);
    assert_eq!(lines.last(), Some(&LineKind::Notice("you left #a".into())));
}

fn queued(id: u64, to: Target, t: &str) -> Event {
    Event::Queued {
        id: MsgId(id),
        to,
        kind: ChatKind::Say,
        text: text(t),
    }
}

fn settled(id: u64, delivered: bool) -> Event {
    Event::Settled {
        id: MsgId(id),
        delivered,
    }
}

fn outgoing(c: &Chat, id: &ConvId) -> Vec<(String, bool)> {
    c.outgoing(id)
        .map(|o| {
            let (LineKind::Say { text, .. } | LineKind::Act { text, .. }) = &o.line.kind else {
                panic!("{o:?}");
            };
            (text.to_string(), o.looks_pending)
        })
        .collect()
}

#[test]
fn a_typed_line_looks_pending_only_once_it_has_waited_or_while_offline() {
    let mut c = chat_in(&["#a"]);
    let a = Target::Room(room("#a"));
    c.handle_event(&queued(1, a.clone(), "quick"), T0);
    assert_eq!(outgoing(&c, &rid("#a")), [("quick".into(), false)]);
    assert!(drain(&mut c).contains(&Change::Outgoing(rid("#a"))));
    // Not acknowledged for a while: it says so, at the deadline the model asked for.
    assert_eq!(c.poll_timeout(), Some(T0 + PENDING_LOOK_AFTER));
    c.handle_timeout(T0 + Millis(PENDING_LOOK_AFTER.0 - 1));
    assert_eq!(outgoing(&c, &rid("#a")), [("quick".into(), false)]);
    c.handle_timeout(T0 + PENDING_LOOK_AFTER);
    assert_eq!(outgoing(&c, &rid("#a")), [("quick".into(), true)]);
    assert_eq!(drain(&mut c), [Change::Outgoing(rid("#a"))]);
    assert_eq!(c.poll_timeout(), None);
    // The echo, then the settlement: the real line, no placeholder.
    c.handle_event(&say("#a", 2, "me", "quick"), T0);
    c.handle_event(&settled(1, true), T0);
    assert_eq!(c.outgoing(&rid("#a")).count(), 0);
    assert_eq!(kinds(&c, &rid("#a")).last(), Some(&says("me", "quick")));
    assert!(c.current_conv().lines().back().unwrap().mine);

    // Offline, a line looks pending at once, and stays so when the connection is back.
    let later = T0 + Millis(10_000);
    c.handle_event(
        &Event::State(ConnState::Reconnecting {
            at: later,
            attempt: 1,
            lost: true,
        }),
        later,
    );
    c.handle_event(&queued(2, a, "offline"), later);
    assert_eq!(outgoing(&c, &rid("#a")), [("offline".into(), true)]);
    c.handle_event(&Event::State(ConnState::Connected), later);
    assert_eq!(outgoing(&c, &rid("#a")), [("offline".into(), true)]);
}

/// The terminal's clock counted from one wall-clock reading at start, so after a laptop's
/// sleep or a clock step every line made here bore a time off by it. A shell's `now` is
/// monotonic and times deadlines; the wall clock read with each turn stamps the lines the model
/// makes (notes, answers, lines typed), and lines from the server keep the server's time.
#[test]
fn lines_made_here_bear_the_wall_clock_read_with_the_turn_and_deadlines_stay_monotonic() {
    let mut c = chat_in(&["#a"]);
    let at = |c: &Chat| c.current_conv().lines().back().unwrap().at;
    // Monotonic time starts anywhere; the wall clock is T0 there.
    let mono = Millis(5_000);
    c.set_wall_clock(T0, mono);
    c.note("one", mono + Millis(200));
    assert_eq!(at(&c), T0 + Millis(200));
    // Asleep for an hour: the monotonic clock stood still, the wall clock did not. Read with
    // the next turn, it stamps what is said after it.
    let hour = Millis(3_600_000);
    c.set_wall_clock(T0 + hour + Millis(1_000), mono + Millis(1_000));
    c.note("two", mono + Millis(1_000));
    assert_eq!(at(&c), T0 + hour + Millis(1_000));
    let a = Target::Room(room("#a"));
    c.handle_event(&queued(1, a.clone(), "typed"), mono + Millis(1_500));
    let typed = c.outgoing(&rid("#a")).next().unwrap();
    assert_eq!(typed.line.at, T0 + hour + Millis(1_500));
    // Deadlines run on `now`: the wall clock's hour does not make the line look pending.
    assert_eq!(
        c.poll_timeout(),
        Some(mono + Millis(1_500) + PENDING_LOOK_AFTER)
    );
    c.handle_timeout(mono + Millis(1_600));
    assert_eq!(outgoing(&c, &rid("#a")), [("typed".into(), false)]);
    // The server's line keeps the server's time.
    c.handle_event(
        &say("#a", 2, "bob", "from the server"),
        mono + Millis(1_700),
    );
    assert_eq!(at(&c), T0);
    // Stepped back (NTP): the stamps follow it, and never go below zero.
    c.set_wall_clock(T0 + Millis(2_000), mono + Millis(2_000));
    c.note("three", mono + Millis(2_000));
    assert_eq!(at(&c), T0 + Millis(2_000));
    c.set_wall_clock(Millis(0), Millis(u64::MAX));
    c.note("four", Millis(10));
    assert_eq!(at(&c), Millis(0));
    c.set_wall_clock(Millis(u64::MAX), Millis(0));
    c.note("five", Millis(10));
    assert_eq!(at(&c), Millis(u64::MAX));
}

/// Typed before the first connection, with no room open yet: the line (for the room the
/// session will join) waits where it was typed, visibly, not in a room nobody sees yet.
#[test]
fn a_line_typed_before_any_room_shows_waiting_where_it_was_typed() {
    let mut c = Chat::new(nick("me"));
    c.handle_event(
        &Event::State(ConnState::Reconnecting {
            at: T0,
            attempt: 1,
            lost: false,
        }),
        T0,
    );
    c.handle_event(&queued(1, Target::Room(room("#lobby")), "anyone?"), T0);
    assert_eq!(c.current(), &ConvId::Server);
    assert_eq!(outgoing(&c, &ConvId::Server), [("anyone?".into(), true)]);
    // Connected and in the room: the echo is the line, and nothing waits any more.
    c.handle_event(&Event::State(ConnState::Connected), T0);
    c.handle_event(&joined("#lobby", 1, &["me"]), T0);
    c.handle_event(&say("#lobby", 2, "me", "anyone?"), T0);
    c.handle_event(&settled(1, true), T0);
    assert_eq!(c.outgoing(&ConvId::Server).count(), 0);
    assert_eq!(
        kinds(&c, &rid("#lobby")).last(),
        Some(&says("me", "anyone?"))
    );
}

#[test]
fn a_refused_line_fails_in_place_and_says_why() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(&queued(1, Target::Room(room("#a")), "fine"), T0);
    c.handle_event(&queued(2, Target::Room(room("#a")), "too fast"), T0);
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::Flood),
            about: About::Message(MsgId(2)),
            text: "slow down".into(),
        },
        T0,
    );
    // No separate error line: the reason goes on the line, once it settles.
    assert!(
        !kinds(&c, &rid("#a"))
            .iter()
            .any(|k| matches!(k, LineKind::Error(_)))
    );
    c.handle_event(&settled(2, false), T0);
    let failed = c.current_conv().lines().back().unwrap().clone();
    assert_eq!(failed.kind, says("me", "too fast"));
    assert_eq!(failed.failed.as_deref(), Some("slow down"));
    assert_eq!(outgoing(&c, &rid("#a")), [("fine".into(), false)]);

    // Refused elsewhere: failed where it was typed, and the person is told where they are.
    c.handle_event(&queued(3, Target::Room(room("#b")), "to b"), T0);
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::NotInRoom),
            about: About::Message(MsgId(3)),
            text: "you are not in #b".into(),
        },
        T0,
    );
    c.handle_event(&settled(3, false), T0);
    assert!(
        c.conv(&rid("#b"))
            .unwrap()
            .lines()
            .back()
            .unwrap()
            .failed
            .is_some()
    );
    assert_eq!(
        kinds(&c, &rid("#a")).last(),
        Some(&LineKind::Error(
            "not delivered to #b: to b (you are not in #b)".into()
        ))
    );

    // The session ends with a line unsent: it fails quietly (the session's notice counts them).
    c.handle_event(&Event::State(ConnState::Closed), T0);
    c.handle_event(&settled(1, false), T0);
    let last = c.current_conv().lines().back().unwrap();
    assert_eq!(last.failed.as_deref(), Some(render::UNSENT));
}

#[test]
fn refused_requests_are_reported_for_what_they_were() {
    let mut c = chat_in(&["#a", "#b"]);
    let err = |about| Event::Error {
        kind: Some(ErrorKind::Invalid),
        about,
        text: "no".into(),
    };
    c.handle_event(&err(About::Join(room("#full"))), T0);
    c.handle_event(&err(About::Nick(nick("bob"))), T0);
    c.handle_event(&err(About::Part(room("#b"))), T0);
    c.handle_event(&err(About::Room(room("#gone"))), T0);
    assert_eq!(
        kinds(&c, &rid("#a"))[1..],
        [
            LineKind::Error("could not join #full: no".into()),
            LineKind::Error("could not change your nick to bob: no".into()),
            LineKind::Error("no".into()),
        ]
    );
    assert_eq!(
        kinds(&c, &rid("#b")).last(),
        Some(&LineKind::Error("could not leave #b: no".into())),
        "shown in the room it was about"
    );
}

/// A question typed twice is answered twice: `/who` again (nobody came or went), a join a ban
/// still refuses, `/topic` again. Only what the connection says by itself (reconnect attempts)
/// is shown once while it stays the same; a person who typed and saw nothing would think the
/// command was lost.
#[test]
fn the_same_answer_to_a_question_asked_again_is_shown_again() {
    let mut c = chat_in(&["#a"]);
    let members = Event::Members {
        room: room("#a"),
        members: vec![nick("me"), nick("bob")],
        asked: true,
        as_of: None,
    };
    let topic = Event::Topic {
        room: room("#a"),
        topic: None,
    };
    let banned = Event::Error {
        kind: Some(ErrorKind::Banned),
        about: About::Join(room("#b")),
        text: "you are banned from #b".into(),
    };
    let before = kinds(&c, &rid("#a")).len();
    for ev in [&members, &members, &topic, &topic, &banned, &banned] {
        c.handle_event(ev, T0);
    }
    let shown = kinds(&c, &rid("#a"));
    assert_eq!(
        shown[before..],
        [
            LineKind::Notice("#a (2): me, bob".into()),
            LineKind::Notice("#a (2): me, bob".into()),
            LineKind::Notice("#a has no topic".into()),
            LineKind::Notice("#a has no topic".into()),
            LineKind::Error("could not join #b: you are banned from #b".into()),
            LineKind::Error("could not join #b: you are banned from #b".into()),
        ]
    );
}

#[test]
fn repeated_notices_show_once_and_reconnects_are_marked_where_they_begin() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&Event::Info(render::lost_words("reset")), T0);
    let lost = ConnState::Reconnecting {
        at: T0,
        attempt: 1,
        lost: true,
    };
    c.handle_event(&Event::State(lost), T0);
    // The server stays away: each failed attempt has a longer wait, which the status line
    // counts down; the conversation says why once, and never again that something was lost.
    for attempt in 2..=6 {
        let state = ConnState::Reconnecting {
            at: T0,
            attempt,
            lost: false,
        };
        c.handle_event(&Event::State(state), T0);
        c.handle_event(
            &Event::ConnectFailed {
                why: "could not connect to h:1: refused".into(),
                wait: Millis(250 << attempt),
                next_address: false,
            },
            T0,
        );
    }
    assert_eq!(
        kinds(&c, &rid("#a"))[1..],
        [
            LineKind::Notice("connection lost: reset; reconnecting".into()),
            LineKind::Notice("could not connect to h:1: refused".into()),
        ]
    );
    c.handle_event(
        &Event::Welcome {
            nick: nick("me"),
            resumed: true,
            signing_in: None,
        },
        T0,
    );
    assert_eq!(
        kinds(&c, &rid("#a")).last(),
        Some(&LineKind::Notice(
            "reconnected as me; picked up where you left off".into()
        ))
    );
}

#[test]
fn gaps_and_room_lists_are_lines() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(
        &Event::Gap {
            room: room("#a"),
            first: Seq(3),
            last: Seq(7),
        },
        T0,
    );
    let rooms = vec![RoomInfo {
        room: room("#a"),
        members: 2,
    }];
    c.handle_event(&Event::Rooms(rooms.clone()), T0);
    let k = kinds(&c, &rid("#a"));
    assert_eq!(
        k[k.len() - 2..],
        [
            LineKind::Gap {
                first: Seq(3),
                last: Seq(7),
                words: "5 messages missed here (#a #3..#7)".into()
            },
            LineKind::Rooms {
                rooms,
                words: "rooms: #a (2)".into()
            }
        ]
    );
}

#[test]
fn lines_and_the_change_log_are_bounded() {
    let mut c = chat_in(&["#a"]);
    for i in 0..CHAT_MAX_LINES + 10 {
        c.handle_event(&say("#a", i as u64 + 2, "bob", &format!("m{i}")), T0);
        // A front end reading along sees each trim once the conversation is full.
        let changes = drain(&mut c);
        if i >= CHAT_MAX_LINES - 1 {
            assert!(
                changes.contains(&Change::LinesTrimmed {
                    conv: rid("#a"),
                    n: 1
                }),
                "{i}"
            );
        }
    }
    assert_eq!(c.current_conv().lines().len(), CHAT_MAX_LINES);
    assert_eq!(c.current_conv().lines()[0].kind, says("bob", "m10"));
    // A front end that stops reading gets one "redraw everything", not an endless log.
    for i in 0..CHAT_MAX_CHANGES + 10 {
        c.handle_event(&say("#a", 5_000 + i as u64, "bob", "x"), T0);
    }
    assert_eq!(drain(&mut c), [Change::All]);
}

#[test]
fn tab_completes_members_of_the_open_room_but_not_us() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&room_ev("#a", 2, "Bobby", EventKind::Join), T0);
    assert_eq!(c.complete_nick("b"), Some(&nick("bob")));
    assert_eq!(c.complete_nick("BOBB"), Some(&nick("Bobby")));
    assert_eq!(c.complete_nick("m"), None);
    assert_eq!(c.complete_nick("z"), None);
    // Repeated Tabs cycle through every match, in the member list's order.
    assert_eq!(
        c.nick_completions("B"),
        vec![&nick("bob"), &nick("Bobby")],
        "{:?}",
        c.current_conv().members()
    );
    assert!(c.nick_completions("m").is_empty(), "never ourselves");
}

/// Tab completed nicks only: `/jo` and `#ru` stayed as typed, though irssi and WeeChat
/// complete commands and rooms. Commands at the start of the line, rooms we are in.
#[test]
fn tab_completes_commands_at_the_start_and_rooms_we_are_in() {
    let c = chat_in(&["#rust", "#Ruby", "#go"]);
    assert_eq!(c.completions("/jo", true), ["/join"]);
    assert_eq!(c.completions("/J", true), ["/join"]);
    // Once each (`/register` and `/topic` have two usages), in /help's order.
    assert_eq!(c.completions("/re", true), ["/register"]);
    assert_eq!(c.completions("/p", true), ["/part", "/password"]);
    assert!(
        c.completions("/jo", false).is_empty(),
        "a path in a message"
    );
    assert!(c.completions("//", true).is_empty());
    assert_eq!(c.completions("#r", false), ["#rust", "#ruby"]);
    assert_eq!(c.completions("#RU", true), ["#rust", "#ruby"]);
    assert!(c.completions("#x", false).is_empty());
    // Anything else is a nick of the open room.
    assert_eq!(c.completions("b", true), ["bob"]);
}

/// `/history` after `/part`, `/join` asked below the oldest line the session had shown since
/// the join: the room kept its lines, so the page got lines it held already and nothing moved
/// (the TUI asked below the model's own). The model says what to ask for both: below its
/// oldest line, the count typed, in the room named; nothing while a page is on its way or at
/// the room's beginning (the session answers those lines as ever).
#[test]
fn history_typed_asks_below_the_oldest_line_held() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(&say("#a", 50, "bob", "kept from the visit before"), T0);
    c.handle_event(&parted("#a"), T0);
    c.handle_event(&joined("#a", 60, &["me", "bob"]), T0);
    c.handle_event(&say("#a", 58, "bob", "replayed"), T0);
    assert_eq!(c.current(), &rid("#a"));
    assert_eq!(
        c.history_typed("/history 5"),
        Some((room("#a"), Seq(50), 5))
    );
    assert_eq!(
        c.history_typed("/hist #a"),
        Some((room("#a"), Seq(50), HISTORY_LINES_DEFAULT))
    );
    // A page on its way: not asked again.
    c.handle_event(&Event::Older { room: room("#a") }, T0);
    assert_eq!(c.history_typed("/history"), None);
    // Another room by name; one not held, a direct conversation, other lines: the session's.
    c.handle_event(&say("#b", 7, "bob", "b"), T0);
    assert_eq!(
        c.history_typed("/history #b 3"),
        Some((room("#b"), Seq(7), 3))
    );
    assert_eq!(c.history_typed("/history #nowhere"), None);
    assert_eq!(c.history_typed("/search x"), None);
    assert_eq!(c.typed("/query bob", T0), Typed::Answered);
    assert_eq!(c.history_typed("/history"), None);
    // At the room's beginning: nothing older to ask for.
    c.handle_event(&say("#b", 1, "bob", "first"), T0);
    assert_eq!(c.history_typed("/history #b"), None);
}

/// `/help query` was answered by the TUI alone: the page said `/msg`'s line ("send a direct
/// message"), which says nothing of the conversation `/query` opens. The model answers it for
/// both, lined up as `/help` lines the session's commands; `/help msg` is still the session's.
#[test]
fn help_query_says_what_query_does_in_every_front_end_with_conversations() {
    let mut c = chat_in(&["#a"]);
    for line in ["/help query", "/help /QUERY", " /HELP  query ", "/? query"] {
        assert_eq!(c.typed(line, Millis(1)), Typed::Answered, "{line:?}");
        let last = c.current_conv().lines().back().unwrap();
        assert_eq!(
            last.kind,
            LineKind::Notice(crate::command::QUERY_HELP.into()),
            "{line:?}"
        );
    }
    let join = crate::command::help_lines(Some("/join")).next().unwrap();
    assert_eq!(
        crate::command::QUERY_HELP.find("open"),
        join.find("join a room")
    );
    for line in [
        "/help msg",
        "/help dm",
        "/help query bob",
        "/help",
        "//help query",
    ] {
        assert_eq!(c.typed(line, Millis(2)), Typed::ToSession, "{line:?}");
    }
}

/// `/query` was the TUI's alone (the page sent `/query bob hi` as a `/msg` without opening
/// anything, and said `/msg`'s usage to `/query bob`): the model answers it for both now.
#[test]
fn query_opens_the_direct_conversation_and_says_its_usage_alone() {
    let mut c = chat_in(&["#a"]);
    let bob = ConvId::direct(&nick("Bob"));
    assert_eq!(c.typed("/query Bob", Millis(1)), Typed::Answered);
    assert_eq!(c.current(), &bob, "opened");
    assert!(c.conv(&bob).unwrap().lines().is_empty(), "nothing said");
    // Text after the nick: opened (the same one, any case), and the line is the session's.
    c.open(&rid("#a"));
    assert_eq!(c.typed("/QUERY bob hi", Millis(2)), Typed::ToSession);
    assert_eq!(c.current(), &bob);
    assert_eq!(c.conversations().filter(|c| c.id() == &bob).count(), 1);
    // Opened over search results, which go.
    c.open(&rid("#a"));
    c.handle_event(
        &Event::Search {
            room: None,
            words: text("x"),
        },
        Millis(3),
    );
    assert!(c.search().is_some());
    assert_eq!(c.typed("/query bob", Millis(4)), Typed::Answered);
    assert!(c.search().is_none());
    assert_eq!(c.current(), &bob);
    // Alone: how it is typed, in the open conversation, nothing sent.
    for line in ["/query", "/Query  "] {
        assert_eq!(c.typed(line, Millis(5)), Typed::Answered, "{line:?}");
        let last = c.current_conv().lines().back().unwrap();
        assert_eq!(
            last.kind,
            LineKind::Error(crate::command::QUERY_USAGE.into())
        );
    }
    // Not a nick: the session says why (or says it in the room).
    assert_eq!(c.typed("/query b@d hi", Millis(6)), Typed::ToSession);
    assert_eq!(c.typed("/query #a hi", Millis(6)), Typed::ToSession);
    assert_eq!(c.typed("hello", Millis(6)), Typed::ToSession);
    assert_eq!(c.current(), &bob);
}

/// `/query b@d` (no text) went to the session, which said `usage: /msg nick|#room text`: a
/// command the person never typed, and not what is wrong. It says why the word is no nick,
/// as `/query b@d hi` does (the session's words), and nothing is opened or sent.
#[test]
fn query_of_what_is_no_nick_says_why() {
    let mut c = chat_in(&["#a"]);
    for (line, got) in [
        ("/query b@d", "b@d"),
        ("/query #a", "#a"),
        ("/query  9lives ", "9lives"),
    ] {
        assert_eq!(c.typed(line, Millis(1)), Typed::Answered, "{line:?}");
        assert_eq!(c.current(), &rid("#a"), "{line:?}: nothing opened");
        let last = c.current_conv().lines().back().unwrap();
        let LineKind::Error(why) = &last.kind else {
            panic!("{line:?}: {:?}", last.kind);
        };
        assert!(
            why.starts_with("a nick starts with") && why.contains(&format!("(got \"{got}\")")),
            "{line:?}: {why}"
        );
    }
}

/// A line with a space before its `/` is text to the session (as ` /msg bob hi` is): `/query`
/// read it as a command all the same, so ` /query bob hi` opened bob's conversation and sent
/// bob the line itself, `/query bob hi` and all. It is text here too: said where it was typed.
#[test]
fn query_after_a_space_is_text_as_for_the_session() {
    let mut c = chat_in(&["#a"]);
    for line in [" /query bob hi", "  /QUERY bob", " /query"] {
        assert_eq!(c.typed(line, Millis(1)), Typed::ToSession, "{line:?}");
        assert_eq!(c.current(), &rid("#a"), "{line:?}: nothing opened");
        assert!(
            matches!(
                crate::command::parse(line),
                Ok(Some(crate::command::Input::Say(_)))
            ),
            "{line:?}: the session says it"
        );
    }
    assert!(
        c.conversations()
            .all(|c| !matches!(c.id(), ConvId::Direct(_)))
    );
}

/// `/part` in a direct conversation closes it (said, with how to open it again); `/part #a`
/// there, and `/part` in a room, are the session's.
#[test]
fn part_in_a_direct_conversation_closes_it_and_part_in_a_room_is_the_sessions() {
    let mut c = chat_in(&["#a"]);
    let bob = ConvId::direct(&nick("Bob"));
    assert_eq!(c.typed("/query Bob", Millis(1)), Typed::Answered);
    assert_eq!(c.typed("/part #a", Millis(2)), Typed::ToSession);
    assert_eq!(c.current(), &bob);
    assert_eq!(c.typed("/part", Millis(3)), Typed::Answered);
    assert!(c.conv(&bob).is_none());
    assert_eq!(c.current(), &rid("#a"));
    let last = c.current_conv().lines().back().unwrap();
    assert_eq!(
        last.kind,
        LineKind::Notice("closed the conversation with Bob (/query Bob opens it again)".into())
    );
    assert_eq!(c.typed("/part", Millis(4)), Typed::ToSession, "a room");
}

/// Tab completed `/cl` to an admin's `/close` and never to `/clear`, nor `/qu` to `/query`:
/// the conversations' own commands come first now.
#[test]
fn tab_completes_the_conversations_own_commands_first() {
    let c = chat_in(&["#a"]);
    assert_eq!(c.completions("/cl", true), ["/clear", "/close"]);
    assert_eq!(c.completions("/QU", true), ["/query", "/quit"]);
    assert!(c.completions("/cl", false).is_empty());
}

// ---- scrollback and search ----

fn ev_at(r: &str, seq: u64, from: &str, kind: EventKind) -> RoomEvent {
    RoomEvent {
        room: room(r),
        seq: Seq(seq),
        at: T0,
        from: nick(from),
        kind,
    }
}

fn said(r: &str, seq: u64, from: &str, t: &str) -> RoomEvent {
    ev_at(
        r,
        seq,
        from,
        EventKind::Say {
            id: MsgId(seq),
            text: text(t),
        },
    )
}

fn past(r: &str, events: Vec<RoomEvent>, at_start: bool) -> Event {
    Event::Past {
        room: room(r),
        events,
        at_start,
        oldest: None,
    }
}

/// The room's lines as text: chat as `<nick> text`, the rest as its words.
fn texts(c: &Chat, r: &str) -> Vec<String> {
    c.conv(&rid(r))
        .unwrap()
        .lines()
        .iter()
        .map(|l| match &l.kind {
            LineKind::Say { from, text } => format!("<{from}> {text}"),
            k => k.words().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// The full-screen client and the page said a join twice: `you are in #a with: bob`, then the
/// replay's last event, our own join, as `me joined #a`. Said once, by the notice (as nc says
/// it); someone else's join, and ours of an earlier visit shown in older lines, still are.
#[test]
fn our_own_join_is_said_once_by_the_notice_of_it() {
    let mut c = Chat::new(nick("me"));
    c.handle_event(&Event::State(ConnState::Connected), T0);
    c.handle_event(&joined("#a", 3, &["me", "bob"]), T0);
    c.handle_event(&room_ev("#a", 1, "bob", EventKind::Join), T0);
    c.handle_event(&say("#a", 2, "bob", "hi"), T0);
    c.handle_event(&room_ev("#a", 3, "me", EventKind::Join), T0);
    c.handle_event(&room_ev("#a", 4, "carol", EventKind::Join), T0);
    assert_eq!(
        texts(&c, "#a"),
        [
            "bob joined #a",
            "<bob> hi",
            "you are in #a with: bob",
            "carol joined #a",
        ]
    );
    assert_eq!(
        c.conv(&rid("#a")).unwrap().scrollback(),
        Some(Scrollback::Start),
        "the room's first event is held: nothing is older"
    );
    // Left and back: the new visit's own join is said by its notice too.
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    c.handle_event(&joined("#a", 6, &["me", "bob", "carol"]), T0);
    c.handle_event(
        &room_ev("#a", 5, "me", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(&room_ev("#a", 6, "me", EventKind::Join), T0);
    let texts = texts(&c, "#a");
    assert_eq!(
        texts.iter().filter(|t| t.contains("me joined")).count(),
        0,
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "you are in #a with: bob, carol"),
        "{texts:?}"
    );
}

#[test]
fn older_lines_go_in_front_of_the_history_once_each_and_quietly() {
    let mut c = Chat::new(nick("me"));
    c.handle_event(&Event::State(ConnState::Connected), T0);
    c.handle_event(&joined("#a", 41, &["me", "bob"]), T0);
    c.handle_event(&say("#a", 40, "bob", "forty"), T0);
    c.handle_event(&room_ev("#a", 41, "me", EventKind::Join), T0);
    c.open(&ConvId::Server); // not looking at #a: live lines would count as unread
    drain(&mut c);
    let a = rid("#a");
    assert_eq!(c.conv(&a).unwrap().scrollback(), Some(Scrollback::More));
    assert_eq!(c.want_older(&a), Some((room("#a"), Seq(40))));
    assert_eq!(c.want_older(&ConvId::Server), None, "rooms only");

    // The session asked: loading, and nothing more is wanted until the answer.
    c.handle_event(&Event::Older { room: room("#a") }, T0);
    assert_eq!(drain(&mut c), [Change::Scrollback(a.clone())]);
    assert_eq!(c.conv(&a).unwrap().scrollback(), Some(Scrollback::Loading));
    assert_eq!(c.want_older(&a), None, "one load at a time");

    // The page: a mention, a join of someone who has long left, and 40 again (held already).
    let events = vec![
        said("#a", 37, "carol", "hi me, long ago"),
        ev_at("#a", 38, "dave", EventKind::Join),
        said("#a", 39, "bob", "thirty-nine"),
        said("#a", 40, "bob", "forty again"),
    ];
    c.handle_event(&past("#a", events, false), T0);
    assert_eq!(
        texts(&c, "#a"),
        [
            "<carol> hi me, long ago",
            "dave joined #a",
            "<bob> thirty-nine",
            "<bob> forty",
            "you are in #a with: bob",
        ],
        "above the replay, itself above the notice of our join; 40 once"
    );
    let lines = c.conv(&a).unwrap().lines().clone();
    let first = lines[0].id;
    assert!(lines[0].mention, "a mention is marked");
    assert_eq!(
        drain(&mut c),
        [
            Change::LinesPrepended {
                conv: a.clone(),
                first,
                n: 3
            },
            Change::Scrollback(a.clone())
        ]
    );
    assert_eq!(
        c.conv(&a)
            .unwrap()
            .line_after(lines[2].id)
            .map(|l| l.kind.clone()),
        Some(says("bob", "forty")),
        "the page says where they went"
    );
    // History, not news: no unread count, no alert, no member change.
    assert_eq!(unread(&c, "#a"), (0, 0));
    assert!(alerts(&mut c).is_empty());
    assert!(
        c.conv(&a)
            .unwrap()
            .members()
            .position(&nick("dave"))
            .is_none()
    );
    assert_eq!(c.want_older(&a), Some((room("#a"), Seq(37))));

    // Nothing older is kept, though the room began before seq 36 (a memory-only server's
    // bounded history, or retention): said so, not called the beginning, and nothing more is
    // asked.
    c.handle_event(&Event::Older { room: room("#a") }, T0);
    c.handle_event(&past("#a", vec![said("#a", 36, "bob", "kept")], true), T0);
    assert_eq!(c.conv(&a).unwrap().scrollback(), Some(Scrollback::Gone));
    assert_eq!(c.want_older(&a), None);
    assert_eq!(
        render::scrollback_words(&room("#a"), &Scrollback::Gone).as_deref(),
        Some("older lines of #a are no longer kept")
    );

    // A page that reaches the room's first event: the beginning.
    let mut c = chat_in(&["#b"]);
    let b = rid("#b");
    c.handle_event(&say("#b", 3, "bob", "third"), T0);
    assert_eq!(c.want_older(&b), Some((room("#b"), Seq(3))));
    c.handle_event(&Event::Older { room: room("#b") }, T0);
    let page = vec![
        said("#b", 1, "bob", "first"),
        said("#b", 2, "bob", "second"),
    ];
    c.handle_event(&past("#b", page, true), T0);
    assert_eq!(c.conv(&b).unwrap().scrollback(), Some(Scrollback::Start));
    assert_eq!(c.want_older(&b), None);
    assert_eq!(
        render::scrollback_words(&room("#b"), &Scrollback::Start).as_deref(),
        Some("the beginning of #b")
    );
}

/// A room our join made (its first event, seq 1, is our join, held as no line: the notice of
/// the join says it) is at its beginning. A `/history` typed there (the model asks nothing: the
/// session asks below what it saw) comes back empty at the start; the oldest line held is
/// someone's join at seq 2, and the room was said to have lost its older lines ("older lines of
/// #new are no longer kept") where it had said "the beginning of #new".
#[test]
fn an_empty_page_at_the_start_leaves_a_room_at_its_beginning() {
    let mut c = chat_in(&[]);
    c.handle_event(&joined("#new", 1, &["me"]), T0);
    c.handle_event(&room_ev("#new", 1, "me", EventKind::Join), T0);
    c.handle_event(&room_ev("#new", 2, "bob", EventKind::Join), T0);
    let id = rid("#new");
    assert_eq!(c.conv(&id).unwrap().scrollback(), Some(Scrollback::Start));
    assert_eq!(
        c.history_typed("/history"),
        None,
        "nothing older to ask for"
    );
    c.handle_event(&Event::Older { room: room("#new") }, T0);
    // Loading, then its beginning again: the page scrolls up to the beginning's marker when
    // loading ends (a typed /history at the bottom of the room goes there).
    assert_eq!(c.conv(&id).unwrap().scrollback(), Some(Scrollback::Loading));
    c.handle_event(&past("#new", Vec::new(), true), T0);
    assert_eq!(c.conv(&id).unwrap().scrollback(), Some(Scrollback::Start));
    // Nor does a page of lines held already, not at the start (asked below a later join).
    c.handle_event(&Event::Older { room: room("#new") }, T0);
    c.handle_event(
        &past("#new", vec![said("#new", 2, "bob", "held")], false),
        T0,
    );
    assert_eq!(c.conv(&id).unwrap().scrollback(), Some(Scrollback::Start));
    // A room whose first event the server forgot is still told apart.
    let mut c = chat_in(&["#old"]);
    c.handle_event(&say("#old", 40, "bob", "kept"), T0);
    c.handle_event(&Event::Older { room: room("#old") }, T0);
    c.handle_event(
        &past("#old", vec![said("#old", 30, "bob", "oldest kept")], true),
        T0,
    );
    assert_eq!(
        c.conv(&rid("#old")).unwrap().scrollback(),
        Some(Scrollback::Gone)
    );
}

#[test]
fn a_failed_load_says_why_and_may_be_tried_again() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&say("#a", 10, "bob", "x"), T0);
    let a = rid("#a");
    c.handle_event(&Event::Older { room: room("#a") }, T0);
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::Unavailable),
            about: About::Older(room("#a")),
            text: "the server is busy; try again in a moment".into(),
        },
        T0,
    );
    let state = c.conv(&a).unwrap().scrollback().unwrap();
    assert_eq!(
        state,
        Scrollback::Failed("the server is busy; try again in a moment".into())
    );
    assert_eq!(
        render::scrollback_words(&room("#a"), &state).as_deref(),
        Some("could not load older lines of #a: the server is busy; try again in a moment")
    );
    assert_eq!(c.want_older(&a), Some((room("#a"), Seq(10))), "retry");
}

#[test]
fn a_room_holding_its_first_event_is_at_its_beginning() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&room_ev("#a", 1, "bob", EventKind::Join), T0);
    let a = rid("#a");
    assert_eq!(c.conv(&a).unwrap().scrollback(), Some(Scrollback::Start));
    assert!(drain(&mut c).contains(&Change::Scrollback(a.clone())));
    assert_eq!(c.want_older(&a), None);
    // Once lines are trimmed away the beginning is gone, and the room is full.
    for i in 0..CHAT_MAX_LINES {
        c.handle_event(&say("#a", 2 + i as u64, "bob", "more"), T0);
    }
    assert_eq!(c.conv(&a).unwrap().scrollback(), Some(Scrollback::Full));
    assert!(drain(&mut c).contains(&Change::Scrollback(a.clone())));
    assert_eq!(c.want_older(&a), None, "no room for older lines");
}

/// `/clear` (a front end's own command, as IRC clients have it) empties a conversation's
/// lines here only: the front end hears it as every line trimmed; what comes next is added as
/// ever, and scrolling up loads a room's lines older than those cleared, not those again (a
/// room's beginning is not said over the emptied view, but found again above it).
#[test]
fn clearing_a_conversation_empties_its_lines_and_scrolling_up_loads_only_older_ones() {
    let mut c = chat_in(&["#a", "#b"]);
    for seq in 5..=7 {
        c.handle_event(&say("#a", seq, "bob", &format!("line {seq}")), T0);
    }
    let a = rid("#a");
    assert_eq!(c.want_older(&a), Some((room("#a"), Seq(5))));
    let n = c.conv(&a).unwrap().lines().len();
    assert_eq!(n, 4, "the join's notice and three lines");
    drain(&mut c);
    assert_eq!(c.clear(&a), n);
    assert!(c.conv(&a).unwrap().lines().is_empty());
    assert_eq!(drain(&mut c), [Change::LinesTrimmed { conv: a.clone(), n }]);
    // Cleared already: nothing more to say.
    assert_eq!(c.clear(&a), 0);
    assert_eq!(drain(&mut c), []);
    c.handle_event(&say("#a", 8, "bob", "after"), T0);
    assert_eq!(texts(&c, "#a"), ["<bob> after"]);
    assert_eq!(
        c.want_older(&a),
        Some((room("#a"), Seq(5))),
        "below what was cleared"
    );
    c.handle_event(
        &past(
            "#a",
            vec![
                said("#a", 3, "bob", "line 3"),
                said("#a", 4, "bob", "line 4"),
                said("#a", 6, "bob", "line 6"),
            ],
            false,
        ),
        T0,
    );
    assert_eq!(
        texts(&c, "#a"),
        ["<bob> line 3", "<bob> line 4", "<bob> after"]
    );
    // A room whose beginning was held: not said over the emptied view; nothing older to load,
    // so scrolling up finds it again.
    c.handle_event(&room_ev("#b", 1, "bob", EventKind::Join), T0);
    let b = rid("#b");
    assert_eq!(c.conv(&b).unwrap().scrollback(), Some(Scrollback::Start));
    drain(&mut c);
    let n = c.clear(&b);
    assert_eq!(
        drain(&mut c),
        [
            Change::Scrollback(b.clone()),
            Change::LinesTrimmed { conv: b.clone(), n }
        ]
    );
    assert_eq!(c.conv(&b).unwrap().scrollback(), Some(Scrollback::More));
    assert_eq!(c.want_older(&b), None);
    assert_eq!(c.conv(&b).unwrap().scrollback(), Some(Scrollback::Start));
    // A direct conversation and the server's are cleared too; nothing else is touched.
    c.handle_event(
        &Event::Direct(DirectMsg {
            from: nick("bob"),
            to: nick("me"),
            id: MsgId(9),
            at: T0,
            text: text("psst"),
        }),
        T0,
    );
    let dm = ConvId::direct(&nick("bob"));
    assert_eq!(c.clear(&dm), 1);
    assert!(c.conv(&dm).unwrap().lines().is_empty());
    assert_eq!(texts(&c, "#a").len(), 3);
    assert!(c.clear(&ConvId::Server) > 0, "its welcome");
    assert!(c.conv(&ConvId::Server).unwrap().lines().is_empty());
    assert_eq!(c.clear(&rid("#nowhere")), 0);
}

#[test]
fn older_lines_fill_the_room_up_to_its_bound_with_the_newest_of_them() {
    let mut c = chat_in(&["#a"]);
    let a = rid("#a");
    let have = c.conv(&a).unwrap().lines().len();
    for i in 0..(CHAT_MAX_LINES - have - 2) {
        c.handle_event(&say("#a", 100 + i as u64, "bob", "x"), T0);
    }
    drain(&mut c);
    let events: Vec<RoomEvent> = (95..100).map(|s| said("#a", s, "bob", "old")).collect();
    c.handle_event(&past("#a", events, true), T0);
    let conv = c.conv(&a).unwrap();
    assert_eq!(conv.lines().len(), CHAT_MAX_LINES);
    assert_eq!(conv.oldest_seq(), Some(Seq(98)), "the newest two fit");
    assert_eq!(
        conv.scrollback(),
        Some(Scrollback::Full),
        "not the beginning: some were left out"
    );
    assert!(matches!(
        drain(&mut c)[..],
        [Change::LinesPrepended { n: 2, .. }, ..]
    ));
}

fn hit(r: &str, seq: u64, from: &str, t: &str) -> RoomEvent {
    let mut e = said(r, seq, from, t);
    e.at = Millis(1_764_684_180_000); // 2025-12-02 14:03 UTC
    e
}

#[test]
fn a_search_shows_its_hits_until_closed_and_only_its_own() {
    let mut c = chat_in(&["#a", "#b"]);
    let words = text(r#"borrow "checker" -x"#);
    c.handle_event(
        &Event::Search {
            room: None,
            words: words.clone(),
        },
        T0,
    );
    assert_eq!(drain(&mut c), [Change::Search]);
    let s = c.search().unwrap();
    assert_eq!(s.state(), &SearchState::Searching);
    assert_eq!(
        s.title(),
        r#"searching for "borrow "checker" -x" in all your rooms…"#
    );
    // Hits of another search (one replaced since) are not shown.
    c.handle_event(
        &Event::Found {
            room: Some(room("#a")),
            words: words.clone(),
            hits: vec![hit("#a", 1, "bob", "nope")],
            more: false,
        },
        T0,
    );
    assert_eq!(c.search().unwrap().state(), &SearchState::Searching);
    let hits: Vec<RoomEvent> = (0..(SEARCH_MAX_RESULTS as u64 + 3))
        .map(|i| {
            hit(
                if i == 0 { "#b" } else { "#a" },
                90 - i,
                "bob",
                "the borrow checker, me",
            )
        })
        .collect();
    c.handle_event(
        &Event::Found {
            room: None,
            words: words.clone(),
            hits,
            more: true,
        },
        T0,
    );
    assert_eq!(drain(&mut c), [Change::Search]);
    let s = c.search().unwrap();
    assert_eq!(s.state(), &SearchState::Done);
    assert_eq!(s.hits().len(), SEARCH_MAX_RESULTS, "at most 50");
    let first = &s.hits()[0];
    assert_eq!(first.room, room("#b"));
    assert_eq!(first.line.seq, Some(Seq(90)), "newest first, as answered");
    assert!(first.line.mention);
    assert_eq!(
        first.words,
        "[#b 2025-12-02 14:03] <bob> the borrow checker, me"
    );
    // The server found more than it sent: the title says the results were cut.
    assert!(s.more());
    assert_eq!(
        s.title(),
        r#"50 results for "borrow "checker" -x" in all your rooms; showing the newest 50 matches; narrow the words to see older ones"#
    );
    // Hits are not news either.
    assert_eq!(c.counts(), (0, 0));
    assert!(alerts(&mut c).is_empty());
    c.close_search();
    assert!(c.search().is_none());
    assert_eq!(drain(&mut c), [Change::Search]);
}

#[test]
fn a_failed_search_says_why_in_its_results() {
    let mut c = chat_in(&["#a"]);
    let fail = Event::Error {
        kind: Some(ErrorKind::Unavailable),
        about: About::Search,
        text: "the server is busy; try again in a moment".into(),
    };
    c.handle_event(
        &Event::Search {
            room: Some(room("#a")),
            words: text("x"),
        },
        T0,
    );
    c.handle_event(&fail, T0);
    let s = c.search().unwrap();
    assert_eq!(
        s.state(),
        &SearchState::Failed("the server is busy; try again in a moment".into())
    );
    assert_eq!(
        s.title(),
        "search failed: the server is busy; try again in a moment"
    );
    // With no search on its way, a failure is an error line where the person is.
    c.close_search();
    c.handle_event(&fail, T0);
    assert_eq!(
        kinds(&c, &rid("#a")).last(),
        Some(&LineKind::Error(
            "search failed: the server is busy; try again in a moment".into()
        ))
    );
}

#[test]
fn a_line_the_server_could_not_store_fails_with_its_words() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&queued(1, Target::Room(room("#a")), "keep this"), T0);
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::NotStored),
            about: About::Message(MsgId(1)),
            text: "the server could not store your message (disk full); it was not delivered"
                .into(),
        },
        T0,
    );
    c.handle_event(&settled(1, false), T0);
    let line = c.current_conv().lines().back().unwrap();
    assert_eq!(line.kind, says("me", "keep this"));
    assert_eq!(
        line.failed.as_deref(),
        Some("the server could not store your message (disk full); it was not delivered")
    );
    assert_eq!(c.outgoing(&rid("#a")).count(), 0);
}

// ---- read markers ----

fn signed_in_to(rooms: &[&str]) -> Chat {
    let mut c = chat_in(rooms);
    c.handle_event(
        &Event::SignedIn {
            account: nick("me"),
            key: None,
        },
        T0,
    );
    drain(&mut c);
    c
}

fn read_upto(r: &str, seq: u64) -> Event {
    Event::ReadUpTo {
        room: room(r),
        seq: Seq(seq),
    }
}

fn reads(c: &mut Chat, now: Millis) -> Vec<(RoomName, Seq)> {
    std::iter::from_fn(|| c.poll_read(now)).collect()
}

#[test]
fn signed_in_counts_come_from_the_accounts_read_marker() {
    let mut c = signed_in_to(&["#a", "#b"]);
    assert_eq!(c.account(), Some(&nick("me")));
    // Missed while away (history after signing in), then the marker says where we were.
    for seq in 2..=5 {
        c.handle_event(&say("#b", seq, "bob", &format!("me {seq}")), T0);
    }
    assert_eq!(unread(&c, "#b"), (4, 4));
    drain(&mut c);
    c.handle_event(&read_upto("#b", 4), T0);
    assert_eq!(unread(&c, "#b"), (1, 1), "seq 5 only");
    assert!(drain(&mut c).contains(&Change::Counts(rid("#b"))));
    // Lines at or below the marker are read when they come.
    c.handle_event(&say("#b", 3, "bob", "old"), T0);
    assert_eq!(unread(&c, "#b"), (1, 1));
    // Read on another device: cleared here.
    c.handle_event(&read_upto("#b", 5), T0);
    assert_eq!(unread(&c, "#b"), (0, 0));
    assert_eq!(c.conv(&rid("#b")).unwrap().read_upto(), Some(Seq(5)));
    // An older marker changes nothing.
    c.handle_event(&say("#b", 6, "bob", "new"), T0);
    c.handle_event(&read_upto("#b", 2), T0);
    assert_eq!(unread(&c, "#b"), (1, 0));
    assert_eq!(reads(&mut c, T0), [], "nothing in #b was shown here");
}

#[test]
fn what_is_shown_is_told_at_most_once_a_second_and_on_leaving() {
    let mut c = signed_in_to(&["#a", "#b"]);
    let t = |ms: u64| T0 + Millis(ms);
    c.handle_event(&say("#a", 2, "bob", "one"), t(0));
    assert_eq!(
        reads(&mut c, t(0)),
        [(room("#a"), Seq(2))],
        "the first at once"
    );
    c.handle_event(&say("#a", 3, "bob", "two"), t(100));
    c.handle_event(&say("#a", 4, "bob", "three"), t(200));
    assert_eq!(reads(&mut c, t(200)), []);
    assert_eq!(c.poll_timeout(), Some(t(1_000)));
    c.handle_timeout(t(1_000));
    assert_eq!(
        reads(&mut c, t(1_000)),
        [(room("#a"), Seq(4))],
        "the newest"
    );
    assert_eq!(c.poll_timeout(), None);
    // Leaving the room tells what was shown at once.
    c.handle_event(&say("#a", 5, "bob", "four"), t(1_100));
    assert!(c.open(&rid("#b")));
    assert_eq!(reads(&mut c, t(1_100)), [(room("#a"), Seq(5))]);
    // Not looking: nothing is shown, nothing told, and it counts as unread.
    c.set_attention(false);
    c.handle_event(&say("#b", 2, "bob", "away"), t(5_000));
    assert_eq!(reads(&mut c, t(5_000)), []);
    assert_eq!(unread(&c, "#b"), (1, 0));
    // Looking again reads it, and says so.
    c.set_attention(true);
    assert_eq!(unread(&c, "#b"), (0, 0));
    assert_eq!(reads(&mut c, t(5_000)), [(room("#b"), Seq(2))]);
    // Read on another device further already: nothing to tell.
    c.handle_event(&read_upto("#b", 9), t(5_100));
    c.handle_event(&say("#b", 7, "bob", "seen elsewhere"), t(5_100));
    assert_eq!(reads(&mut c, t(9_000)), []);
}

#[test]
fn guests_and_the_signed_out_tell_nothing_and_count_as_before() {
    let mut c = chat_in(&["#a", "#b"]);
    c.handle_event(&say("#a", 2, "bob", "one"), T0);
    assert_eq!(reads(&mut c, T0), [], "never for guests");
    c.handle_event(&say("#b", 2, "bob", "one"), T0);
    assert_eq!(unread(&c, "#b"), (1, 0));
    assert_eq!(c.poll_timeout(), None);

    let mut c = signed_in_to(&["#a"]);
    c.handle_event(&Event::SignedOut, T0);
    assert_eq!(c.account(), None);
    assert!(drain(&mut c).contains(&Change::Me));
    c.handle_event(&say("#a", 2, "bob", "one"), T0);
    assert_eq!(reads(&mut c, T0), []);
    // A welcome that is not a resume is a guest's until signed in again.
    let mut c = signed_in_to(&["#a"]);
    c.handle_event(
        &Event::Welcome {
            nick: nick("me"),
            resumed: false,
            signing_in: None,
        },
        T0,
    );
    assert_eq!(c.account(), None);
}

fn policy(r: &str, founder: Option<&str>, ops: &[&str], voiced: &[&str]) -> Event {
    policy_asked(r, founder, ops, voiced, false)
}

/// The full-screen client's and the page's `/who` answer did not mark operators, while their
/// member lists and IRC's NAMES do: `~` the founder, `@` operators, `+` voiced.
#[test]
fn a_who_answer_marks_the_founder_operators_and_voiced() {
    let mut c = chat_in(&["#r"]);
    c.handle_event(&policy("#r", Some("ann"), &["bob"], &["cat"]), T0);
    c.handle_event(
        &Event::Members {
            room: room("#r"),
            members: ["ann", "bob", "cat", "me"].map(nick).to_vec(),
            asked: true,
            as_of: None,
        },
        T0,
    );
    assert_eq!(
        kinds(&c, &rid("#r")).last(),
        Some(&LineKind::Notice("#r (4): ~ann, @bob, +cat, me".into()))
    );
}

fn policy_asked(
    r: &str,
    founder: Option<&str>,
    ops: &[&str],
    voiced: &[&str],
    asked: bool,
) -> Event {
    Event::Policy {
        room: room(r),
        founder: founder.map(nick),
        ops: ops.iter().map(|n| nick(n)).collect(),
        voiced: voiced.iter().map(|n| nick(n)).collect(),
        modes: crate::moderation::Modes {
            moderated: true,
            ..Default::default()
        },
        asked,
    }
}

fn notices(c: &Chat, r: &str, needle: &str) -> usize {
    kinds(c, &rid(r))
        .iter()
        .filter(|k| matches!(k, LineKind::Notice(w) if w.contains(needle)))
        .count()
}

/// A member's menu on the page: what it offers, for whom. The page's JavaScript decided it
/// from the roles itself until the thirty-first session (a copy of the server's rule that only
/// the founder makes operators); every name it offers is an action the menu's reader takes.
#[test]
fn a_members_menu_offers_what_our_standing_allows() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&policy("#a", Some("me"), &["bob"], &["carol"]), T0);
    assert!(
        c.member_actions(&room("#a"), &nick("dave")).is_empty(),
        "a guest moderates nothing"
    );
    c.handle_event(
        &Event::SignedIn {
            account: nick("me"),
            key: None,
        },
        T0,
    );
    let offered = |c: &Chat, n: &str| c.member_actions(&room("#a"), &nick(n));
    assert_eq!(
        offered(&c, "dave"),
        ["kick", "ban", "mute", "unmute", "voice", "op"]
    );
    assert_eq!(
        offered(&c, "carol"),
        ["kick", "ban", "mute", "unmute", "devoice", "op"]
    );
    assert_eq!(
        offered(&c, "Bob"),
        ["kick", "ban", "mute", "unmute", "deop"]
    );
    assert_eq!(offered(&c, "me"), ["kick", "ban", "mute", "unmute"]);
    for action in offered(&c, "dave").into_iter().chain(offered(&c, "bob")) {
        assert!(
            crate::command::menu_action(action, "dave", "").is_ok(),
            "{action} is read"
        );
    }
    assert!(
        c.member_actions(&room("#nowhere"), &nick("dave"))
            .is_empty()
    );
    // An operator, not the founder: no operators made or unmade.
    c.handle_event(&policy("#a", Some("bob"), &["me"], &["carol"]), T0);
    assert_eq!(
        offered(&c, "dave"),
        ["kick", "ban", "mute", "unmute", "voice"]
    );
    assert_eq!(offered(&c, "bob"), ["kick", "ban", "mute", "unmute"]);
    // Nobody's operator any more: nothing.
    c.handle_event(&policy("#a", Some("bob"), &[], &[]), T0);
    assert!(offered(&c, "dave").is_empty());
}

#[test]
fn room_settings_say_who_is_in_charge_and_whether_we_are() {
    let mut c = chat_in(&["#a", "#b"]);
    assert!(
        !c.am_op(&room("#a")),
        "an unregistered room has nobody in charge"
    );
    assert_eq!(c.role(&room("#a"), &nick("bob")), Role::Member);

    c.handle_event(&policy("#a", Some("me"), &["bob"], &["carol"]), T0);
    assert!(drain(&mut c).contains(&Change::Policy(rid("#a"))));
    assert!(
        !c.am_op(&room("#a")),
        "a guest is nobody's operator, whatever its nick"
    );
    c.handle_event(
        &Event::SignedIn {
            account: nick("me"),
            key: None,
        },
        T0,
    );
    assert!(drain(&mut c).contains(&Change::Me));
    assert!(c.am_op(&room("#a")));
    assert!(c.am_founder(&room("#a")));
    assert!(!c.am_op(&room("#b")), "settings are per room");
    assert_eq!(c.role(&room("#a"), &nick("ME")), Role::Founder);
    assert_eq!(c.role(&room("#a"), &nick("Bob")), Role::Operator);
    assert_eq!(c.role(&room("#a"), &nick("carol")), Role::Voiced);
    assert_eq!(c.role(&room("#a"), &nick("dave")), Role::Member);
    assert_eq!(Role::Operator.mark(), "@");
    assert!(c.policy(&room("#a")).unwrap().modes.moderated);
    assert!(c.policy(&room("#nowhere")).is_none());

    assert_eq!(notices(&c, "#a", "registered to me"), 1, "shown on joining");

    // The founder hands the room over: we are an operator no more.
    c.handle_event(&policy("#a", Some("bob"), &[], &[]), T0);
    assert_eq!(
        notices(&c, "#a", "registered to bob"),
        0,
        "news of a change is the room event's line, not another"
    );
    c.handle_event(&policy_asked("#a", Some("bob"), &[], &[], true), T0);
    assert_eq!(
        notices(&c, "#a", "registered to bob"),
        1,
        "asked for: shown"
    );
    assert!(!c.am_op(&room("#a")));
    assert!(!c.am_founder(&room("#a")));
    assert_eq!(c.role(&room("#a"), &nick("bob")), Role::Founder);

    // A ban list is kept once asked for, and shown as lines.
    assert_eq!(c.policy(&room("#a")).unwrap().bans, None);
    let ban = crate::moderation::Entry {
        mask: crate::moderation::Mask::Nick(nick("troll")),
        until: None,
        by: nick("bob"),
        reason: None,
        at: crate::time::Millis(0),
    };
    let ban_list = |asked: bool| Event::BanList {
        room: room("#a"),
        bans: vec![ban.clone()],
        mutes: vec![],
        asked,
    };
    c.handle_event(&ban_list(false), T0);
    assert!(drain(&mut c).contains(&Change::Policy(rid("#a"))));
    assert_eq!(c.policy(&room("#a")).unwrap().bans, Some(vec![ban.clone()]));
    assert_eq!(
        notices(&c, "#a", "banned from #a"),
        0,
        "a UI's own ask is quiet"
    );
    c.handle_event(&ban_list(true), T0);
    assert_eq!(
        notices(&c, "#a", "banned from #a: nick:troll"),
        1,
        "typed: shown"
    );
    assert!(!c.policy(&room("#a")).unwrap().bans_stale);
    // Settings changed after the list came (maybe another operator's ban): the list is old
    // until fetched again.
    c.handle_event(&policy("#a", Some("bob"), &[], &[]), T0);
    assert!(c.policy(&room("#a")).unwrap().bans_stale);
    c.handle_event(&ban_list(false), T0);
    assert!(!c.policy(&room("#a")).unwrap().bans_stale);

    // Leaving forgets the room's settings.
    c.handle_event(
        &Event::Parted {
            room: room("#a"),
            kicked: false,
        },
        T0,
    );
    assert!(!c.am_op(&room("#a")));
    assert!(c.policy(&room("#a")).is_none());
}

#[test]
fn a_big_rooms_count_comes_from_its_summary_and_follows_the_joins_it_still_sees() {
    let mut c = chat_in(&["#big"]);
    let conv = |c: &Chat| c.conv(&rid("#big")).unwrap().clone();
    assert_eq!(conv(&c).member_count(), 2);
    assert!(!conv(&c).members_partial());
    let crowd = |joined, left, members| Event::Crowd {
        room: room("#big"),
        joined,
        left,
        members,
    };
    c.handle_event(&crowd(0, 0, 400), T0);
    assert_eq!(conv(&c).member_count(), 400);
    assert!(conv(&c).members_partial());
    let changes = drain(&mut c);
    assert!(
        changes.contains(&Change::Members(rid("#big"))),
        "{changes:?}"
    );
    c.handle_event(&crowd(12, 3, 409), T0);
    assert_eq!(conv(&c).member_count(), 409);
    let last = conv(&c).lines().back().unwrap().clone();
    assert_eq!(
        last.kind,
        LineKind::Notice("#big: 12 joined, 3 left (409 members)".into())
    );
    // The room got small again: joins and parts are events again, and the count follows them.
    c.handle_event(&room_ev("#big", 2, "carol", EventKind::Join), T0);
    assert_eq!(conv(&c).member_count(), 410);
    c.handle_event(
        &room_ev("#big", 3, "bob", EventKind::Part { reason: None }),
        T0,
    );
    assert_eq!(conv(&c).member_count(), 409);
    // Joining again starts from the new member list.
    c.handle_event(&joined("#big", 9, &["me", "bob", "carol"]), T0);
    assert_eq!(conv(&c).member_count(), 3);
    // So does a resume's or a rejoin's refreshed list: a count from before it is stale (the
    // room emptied while the server was away, say), and a big room's size follows it.
    c.handle_event(&crowd(0, 0, 400), T0);
    let refresh = |members: &[&str]| Event::Members {
        room: room("#big"),
        members: members.iter().map(|m| nick(m)).collect(),
        asked: false,
        as_of: Some(Seq(20)),
    };
    c.handle_event(&refresh(&["me", "dan"]), T0);
    assert_eq!(conv(&c).member_count(), 2);
    assert!(!conv(&c).members_partial());
    c.handle_event(&refresh(&["me", "dan"]), T0);
    c.handle_event(&crowd(0, 0, 401), T0);
    assert_eq!(conv(&c).member_count(), 401);
    // `/who` answers a full list: the line says the room's size, not the list's.
    let full: Vec<Nick> = (0..crate::limits::MAX_MEMBERS_LISTED)
        .map(|i| nick(&format!("u{i}")))
        .collect();
    c.handle_event(
        &Event::Members {
            room: room("#big"),
            members: full,
            asked: true,
            as_of: None,
        },
        T0,
    );
    let LineKind::Notice(said) = conv(&c).lines().back().unwrap().kind.clone() else {
        panic!("not a notice");
    };
    assert!(
        said.starts_with("#big (401 members, 300 listed): u0, "),
        "{said}"
    );
}

/// The message of the day comes before any room is open: it is in the server's conversation,
/// and shown again, once, in the first room that opens (where the person looks); one that comes
/// while a room is open is shown there.
#[test]
fn the_motd_is_shown_in_the_first_room_that_opens() {
    let motd = || {
        Event::Motd(vec![
            "Be kind.".into(),
            String::new(),
            "Rules: see /help".into(),
        ])
    };
    let notice = |w: &str| LineKind::Notice(w.into());
    let mut c = Chat::new(nick("me"));
    c.handle_event(&motd(), T0);
    assert_eq!(
        kinds(&c, &ConvId::Server),
        [notice("Be kind."), notice(""), notice("Rules: see /help")]
    );
    c.handle_event(&joined("#a", 1, &["me"]), T0);
    c.handle_event(&joined("#b", 1, &["me"]), T0);
    let a = kinds(&c, &rid("#a"));
    assert_eq!(
        &a[a.len() - 3..],
        [notice("Be kind."), notice(""), notice("Rules: see /help")],
        "{a:?}"
    );
    assert!(
        !kinds(&c, &rid("#b")).contains(&notice("Be kind.")),
        "once only"
    );
    // A new session while #a is open (not resumed): there.
    let mut c = chat_in(&["#a"]);
    c.handle_event(&Event::Motd(vec!["\x1b[2JNew rules".into()]), T0);
    let last = kinds(&c, &rid("#a")).pop();
    assert!(
        matches!(&last, Some(LineKind::Notice(w)) if w.ends_with("New rules") && !w.contains('\x1b')),
        "shown there, control characters made harmless: {last:?}"
    );
}

/// Why the nick is not the one asked (someone has it, or an account owns it) is said while
/// only the server's conversation is open, which the TUI and the page never show once a room
/// opens: like the message of the day, it is shown again in the first room that opens, once,
/// so the person learns why they are `alice_2` and how to be `alice`.
#[test]
fn what_the_session_said_before_any_room_is_shown_in_the_first_room() {
    let why = "alice is taken or a registered account here, so you are alice_2 \
               (if alice is your account, /login alice PASSWORD signs in to it)";
    let mut c = Chat::new(nick("alice"));
    c.handle_event(&Event::State(ConnState::Connected), T0);
    c.handle_event(
        &Event::Welcome {
            nick: nick("alice_2"),
            resumed: false,
            signing_in: None,
        },
        T0,
    );
    c.handle_event(&Event::Info(why.into()), T0);
    c.handle_event(&Event::Motd(vec!["Be kind.".into()]), T0);
    c.handle_event(&joined("#a", 1, &["alice_2"]), T0);
    c.handle_event(&joined("#b", 1, &["alice_2"]), T0);
    let a = kinds(&c, &rid("#a"));
    assert_eq!(
        a.iter()
            .filter(|k| **k == LineKind::Notice(why.into()))
            .count(),
        1,
        "{a:?}"
    );
    assert!(a.contains(&LineKind::Notice("Be kind.".into())), "{a:?}");
    assert!(
        !kinds(&c, &rid("#b")).contains(&LineKind::Notice(why.into())),
        "once only"
    );
    // Said while a room is open: there, as before, and not again in the next room.
    c.handle_event(&Event::Info("the server is busy".into()), T0);
    c.handle_event(&joined("#c", 1, &["alice_2"]), T0);
    assert!(!kinds(&c, &rid("#c")).contains(&LineKind::Notice("the server is busy".into())));
}

#[test]
fn a_typed_notice_waits_as_a_notice_and_fails_as_one() {
    let mut c = chat_in(&["#a", "#b"]);
    let typed = |id: u64, to: Target, t: &str| Event::Queued {
        id: MsgId(id),
        to,
        kind: ChatKind::Notice,
        text: text(t),
    };
    let mine = |t: &str| LineKind::UserNotice {
        from: nick("me"),
        text: text(t),
    };
    c.handle_event(&typed(1, Target::Room(room("#a")), "build is green"), T0);
    let waiting: Vec<LineKind> = c
        .outgoing(&rid("#a"))
        .map(|o| o.line.kind.clone())
        .collect();
    assert_eq!(waiting, [mine("build is green")]);
    // Its echo is the real line, ours.
    c.handle_event(
        &room_ev(
            "#a",
            2,
            "me",
            EventKind::Notice {
                id: MsgId(1),
                text: text("build is green"),
            },
        ),
        T0,
    );
    c.handle_event(&settled(1, true), T0);
    assert_eq!(c.outgoing(&rid("#a")).count(), 0);
    let line = c.conv(&rid("#a")).unwrap().lines().back().unwrap().clone();
    assert_eq!(line.kind, mine("build is green"));
    assert!(line.mine && !line.mention);

    // A direct notice refused while another conversation is open: failed where it was
    // typed, as a notice, and the person is told in the open one.
    let bob = Target::Nick(nick("bob"));
    c.handle_event(&typed(2, bob, "ping"), T0);
    c.handle_event(
        &Event::Error {
            kind: None,
            about: About::Message(MsgId(2)),
            text: "this server is too old for notices".into(),
        },
        T0,
    );
    c.handle_event(&settled(2, false), T0);
    let failed = c
        .conv(&ConvId::direct(&nick("bob")))
        .unwrap()
        .lines()
        .back()
        .unwrap()
        .clone();
    assert_eq!(failed.kind, mine("ping"));
    assert_eq!(
        failed.failed.as_deref(),
        Some("this server is too old for notices")
    );
    assert!(
        kinds(&c, &rid("#a")).iter().any(
            |k| matches!(k, LineKind::Error(w) if w.contains("ping") && w.contains("too old"))
        ),
        "{:?}",
        kinds(&c, &rid("#a"))
    );
}

#[test]
fn notices_are_lines_of_their_own_kind_in_rooms_and_direct_conversations() {
    let mut c = chat_in(&["#a", "#b"]);
    let notice = |r: &str, seq: u64, from: &str, t: &str| {
        room_ev(
            r,
            seq,
            from,
            EventKind::Notice {
                id: MsgId(seq),
                text: text(t),
            },
        )
    };
    c.handle_event(&notice("#b", 2, "bot", "build passed, me"), T0);
    assert_eq!(
        kinds(&c, &rid("#b")).last(),
        Some(&LineKind::UserNotice {
            from: nick("bot"),
            text: text("build passed, me"),
        })
    );
    let line = c.conv(&rid("#b")).unwrap().lines().back().unwrap().clone();
    assert_eq!(line.kind.words(), None, "chat, not words");
    assert!(line.mention);
    assert_eq!(unread(&c, "#b"), (1, 1), "counted like chat");

    c.handle_event(
        &Event::DirectNotice(crate::wire::DirectMsg {
            from: nick("bot"),
            to: nick("me"),
            id: MsgId(1),
            at: T0,
            text: text("psst"),
        }),
        T0,
    );
    let bot = ConvId::direct(&nick("bot"));
    assert_eq!(
        kinds(&c, &bot),
        [LineKind::UserNotice {
            from: nick("bot"),
            text: text("psst"),
        }]
    );
}

#[test]
fn told_on_joining_that_we_may_not_speak_is_a_notice_in_the_room() {
    let mut c = chat_in(&["#a", "#hush"]);
    let why = "#hush is moderated: only operators and voiced members speak; \
               you can read #hush but not speak there";
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::Muted),
            about: About::Room(room("#hush")),
            text: why.into(),
        },
        T0,
    );
    assert_eq!(
        kinds(&c, &rid("#hush")).last(),
        Some(&LineKind::Notice(why.into())),
        "in the room it is about, as a notice, not an error"
    );
    assert!(
        !kinds(&c, &rid("#a")).iter().any(|k| k.words() == Some(why)),
        "not where the person looks"
    );
    // Any other error about the room stays an error.
    c.handle_event(
        &Event::Error {
            kind: Some(ErrorKind::NotOperator),
            about: About::Room(room("#hush")),
            text: "you are not an operator of #hush".into(),
        },
        T0,
    );
    assert!(matches!(
        kinds(&c, &rid("#hush")).last(),
        Some(LineKind::Error(_))
    ));
}

/// Someone's away in words: the server's answer to a message written to someone away (IRC's
/// `301`, repeated after each message) goes in the direct conversation with them, once per
/// change, as IRC clients say it in a query window; a co-member's change with no such
/// conversation, and our own, in the open one.
#[test]
fn away_is_said_beside_the_direct_conversation_once_per_change() {
    let mut c = chat_in(&["#a"]);
    c.handle_event(&joined("#a", 2, &["me", "bob"]), T0);
    let away = |who: &str, a: Option<&str>| Event::Away {
        nick: nick(who),
        away: a.map(text),
    };
    let dm = |t: &str| {
        Event::Direct(crate::wire::DirectMsg {
            from: nick("me"),
            to: nick("bob"),
            id: MsgId(1),
            at: T0,
            text: text(t),
        })
    };
    let note = |w: &str| LineKind::Notice(w.into());
    // A co-member goes away: said where we are.
    c.handle_event(&away("bob", Some("lunch")), T0);
    assert_eq!(
        kinds(&c, &rid("#a")).last(),
        Some(&note("bob is away: lunch"))
    );
    // We write to bob (from #a): the answer is said with what we wrote.
    c.handle_event(&dm("hi"), T0);
    c.handle_event(&away("bob", Some("lunch")), T0);
    let bob = ConvId::direct(&nick("bob"));
    assert_eq!(
        kinds(&c, &bob),
        [says("me", "hi"), note("bob is away: lunch")]
    );
    // Again, away the same: not said again; a new message is, and so is being back.
    c.handle_event(&dm("still there?"), T0);
    c.handle_event(&away("bob", Some("lunch")), T0);
    c.handle_event(&away("bob", Some("dinner now")), T0);
    c.handle_event(&away("bob", None), T0);
    assert_eq!(
        kinds(&c, &bob)[2..],
        [
            says("me", "still there?"),
            note("bob is away: dinner now"),
            note("bob is back"),
        ]
    );
    // Ours, in the open conversation.
    c.handle_event(&away("me", Some("brb")), T0);
    assert_eq!(
        kinds(&c, &rid("#a")).last(),
        Some(&note("you are away: brb (/back when you are back)"))
    );
}

/// Who is away in a room: from the server's list after a join (replaced by the next list),
/// then from changes, for members only; a member who leaves drops out, a rename carries it,
/// and history replayed after the join does not undo what the server said.
#[test]
fn away_members_are_kept_per_room_from_lists_and_changes() {
    let mut c = chat_in(&["#a", "#b"]);
    let here = |r: &str, who: &[(&str, &str)]| Event::AwayHere {
        room: room(r),
        away: who.iter().map(|(n, a)| (nick(n), text(a))).collect(),
    };
    let away = |who: &str, a: Option<&str>| Event::Away {
        nick: nick(who),
        away: a.map(text),
    };
    let shown = |c: &Chat, r: &str, who: &str| c.away(&room(r), &nick(who)).map(|t| t.to_string());
    c.handle_event(&joined("#a", 9, &["me", "bob", "carol", "dan"]), T0);
    drain(&mut c);
    // Someone not a member is not kept.
    c.handle_event(&here("#a", &[("carol", "lunch"), ("zed", "gone")]), T0);
    assert_eq!(shown(&c, "#a", "carol").as_deref(), Some("lunch"));
    assert_eq!(shown(&c, "#a", "zed"), None);
    assert_eq!(c.conv(&rid("#a")).unwrap().away().len(), 1);
    assert_eq!(
        drain(&mut c),
        [Change::MemberAway {
            conv: rid("#a"),
            index: 1,
            nick: nick("carol")
        }]
    );
    // History before the list was made does not undo it: carol's old part, then join.
    c.handle_event(
        &room_ev("#a", 3, "carol", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(&room_ev("#a", 4, "carol", EventKind::Join), T0);
    assert_eq!(shown(&c, "#a", "carol").as_deref(), Some("lunch"));
    // A change marks the member in every room they are in (bob is in #a and #b).
    drain(&mut c);
    c.handle_event(&away("Bob", Some("brb")), T0);
    assert_eq!(shown(&c, "#a", "bob").as_deref(), Some("brb"));
    assert_eq!(shown(&c, "#b", "bob").as_deref(), Some("brb"));
    // (The line in words aside: see the test above.)
    let marked = |c: &mut Chat| {
        drain(c)
            .into_iter()
            .filter(|ch| !matches!(ch, Change::LineAdded { .. }))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        marked(&mut c),
        [
            Change::MemberAway {
                conv: rid("#a"),
                index: 0,
                nick: nick("Bob")
            },
            Change::MemberAway {
                conv: rid("#b"),
                index: 0,
                nick: nick("Bob")
            }
        ]
    );
    // The same again changes nothing; someone not in a room is not added.
    c.handle_event(&away("bob", Some("brb")), T0);
    c.handle_event(&away("zed", Some("x")), T0);
    assert!(marked(&mut c).is_empty());
    // Live: a rename carries it, a part or kick drops it, a return clears it.
    c.handle_event(
        &room_ev("#a", 10, "carol", EventKind::Nick { new: nick("caz") }),
        T0,
    );
    assert_eq!(shown(&c, "#a", "caz").as_deref(), Some("lunch"));
    assert_eq!(shown(&c, "#a", "carol"), None);
    c.handle_event(
        &room_ev("#a", 11, "caz", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(&room_ev("#a", 12, "caz", EventKind::Join), T0);
    assert_eq!(shown(&c, "#a", "caz"), None);
    c.handle_event(&away("bob", None), T0);
    assert_eq!(shown(&c, "#b", "bob"), None);
    c.handle_event(&here("#a", &[("dan", "zzz")]), T0);
    c.handle_event(
        &room_ev(
            "#a",
            13,
            "me",
            EventKind::Kick {
                target: nick("dan"),
                reason: None,
            },
        ),
        T0,
    );
    assert_eq!(shown(&c, "#a", "dan"), None);
    // A new list says nobody is away until the server says who is.
    c.handle_event(&here("#b", &[("bob", "out")]), T0);
    assert!(shown(&c, "#b", "bob").is_some());
    c.handle_event(
        &Event::Members {
            room: room("#b"),
            members: vec![nick("me"), nick("bob")],
            asked: true,
            as_of: None,
        },
        T0,
    );
    assert_eq!(shown(&c, "#b", "bob"), None);
    c.handle_event(&here("#b", &[("bob", "out")]), T0);
    c.handle_event(&joined("#b", 20, &["me", "bob"]), T0);
    assert_eq!(shown(&c, "#b", "bob"), None);
    // No line of its own: the session's Info said it.
    let lines = c.conv(&rid("#b")).unwrap().lines().len();
    c.handle_event(&here("#b", &[("bob", "out")]), T0);
    assert_eq!(c.conv(&rid("#b")).unwrap().lines().len(), lines);
}

/// A resume's refresh is a new snapshot too: what its replay holds up to it (an away member
/// who left and came back while we were down) leaves the marks the server listed with it;
/// what comes after it is live.
#[test]
fn a_resume_replay_up_to_the_refresh_keeps_away_marks() {
    let mut c = chat_in(&["#a"]);
    let shown = |c: &Chat, who: &str| c.away(&room("#a"), &nick(who)).map(|t| t.to_string());
    let here = Event::AwayHere {
        room: room("#a"),
        away: vec![(nick("bob"), text("lunch"))],
    };
    c.handle_event(&joined("#a", 9, &["me", "bob"]), T0);
    c.handle_event(&here, T0);
    c.handle_event(
        &Event::Members {
            room: room("#a"),
            members: vec![nick("me"), nick("bob")],
            asked: false,
            as_of: Some(Seq(12)),
        },
        T0,
    );
    c.handle_event(&here, T0);
    c.handle_event(
        &room_ev("#a", 10, "bob", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(&room_ev("#a", 11, "bob", EventKind::Join), T0);
    assert_eq!(shown(&c, "bob").as_deref(), Some("lunch"));
    assert!(
        c.conv(&rid("#a"))
            .unwrap()
            .members()
            .position(&nick("bob"))
            .is_some()
    );
    c.handle_event(
        &room_ev("#a", 13, "bob", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(&room_ev("#a", 14, "bob", EventKind::Join), T0);
    assert_eq!(shown(&c, "bob"), None);
}

/// Our own rename is said once where we look, in the second person, whichever the session
/// tells first (its `Nick`, or the room's event: the server broadcasts the event, then answers,
/// and either may be read first); each other room we are in says it too. Before the
/// twenty-ninth session's cross-door pass the page and the TUI showed `you are now known as
/// robert` and then `me is now known as robert` in the open room (nc and IRC say it once).
#[test]
fn our_own_rename_is_said_once_in_each_room() {
    let you = |n: &str| LineKind::Notice(format!("you are now known as {n}"));
    for answer_first in [true, false] {
        let mut c = chat_in(&["#a", "#b"]);
        let answer = Event::Nick(nick("robert"));
        let renamed = |r: &str| {
            room_ev(
                r,
                2,
                "me",
                EventKind::Nick {
                    new: nick("robert"),
                },
            )
        };
        if answer_first {
            c.handle_event(&answer, T0);
        }
        c.handle_event(&renamed("#a"), T0);
        c.handle_event(&renamed("#b"), T0);
        if !answer_first {
            c.handle_event(&answer, T0);
        }
        let said = |c: &Chat, r: &str| {
            kinds(c, &rid(r))
                .into_iter()
                .filter(|k| k.words().is_some_and(|w| w.contains("known as")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            said(&c, "#a"),
            [you("robert")],
            "answer first: {answer_first}"
        );
        assert_eq!(
            said(&c, "#b"),
            [you("robert")],
            "answer first: {answer_first}"
        );
        assert_eq!(c.me(), &nick("robert"));
        // Someone else's rename stays in the third person.
        c.handle_event(
            &room_ev("#a", 3, "bob", EventKind::Nick { new: nick("rob") }),
            T0,
        );
        assert_eq!(
            said(&c, "#a").last(),
            Some(&LineKind::Event {
                who: nick("bob"),
                words: "bob is now known as rob".into()
            })
        );
    }
}

/// The member list a join brings is the room as it is; the history replayed after it does
/// not change it. After a kill -9 restart (which writes no quits) the replay holds joins of nc and
/// IRC users the restart took away: the page and the TUI listed them as members for good
/// (`7 here` in a room of 5, past its `+l`). Joins, parts and kicks after the list count.
#[test]
fn history_replayed_after_a_join_leaves_its_member_list_as_the_server_said() {
    let mut c = chat_in(&[]);
    let names = |c: &Chat| -> Vec<String> {
        c.conv(&rid("#a"))
            .unwrap()
            .members()
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    c.handle_event(&joined("#a", 9, &["me", "alice"]), T0);
    // The replay: a guest who joined before a restart and never quit, alice's part and
    // join, a kick of her, our own join.
    c.handle_event(&room_ev("#a", 5, "ghost", EventKind::Join), T0);
    c.handle_event(
        &room_ev("#a", 6, "alice", EventKind::Part { reason: None }),
        T0,
    );
    c.handle_event(
        &room_ev(
            "#a",
            7,
            "op",
            EventKind::Kick {
                target: nick("alice"),
                reason: None,
            },
        ),
        T0,
    );
    c.handle_event(
        &room_ev(
            "#a",
            8,
            "zed",
            EventKind::Nick {
                new: nick("ghost2"),
            },
        ),
        T0,
    );
    c.handle_event(&room_ev("#a", 9, "me", EventKind::Join), T0);
    assert_eq!(names(&c), ["alice", "me"]);
    // Live, after the list: they count.
    c.handle_event(&room_ev("#a", 10, "bob", EventKind::Join), T0);
    c.handle_event(
        &room_ev("#a", 11, "alice", EventKind::Part { reason: None }),
        T0,
    );
    assert_eq!(names(&c), ["bob", "me"]);
}

/// The TUI's and the page's `/devices` answer (the chat model's lines): each device with its
/// label quoted after its id, one without a label as before, in the open conversation.
#[test]
fn the_device_list_shows_each_devices_label_in_the_open_conversation() {
    use crate::types::DeviceLabel;
    use crate::wire::RememberedDevice;
    let mut c = chat_in(&["#a"]);
    let device = |id, label: Option<&str>, this| RememberedDevice {
        id,
        remembered: T0,
        used: None,
        this,
        label: label.map(|l| DeviceLabel::new(l).unwrap()),
    };
    c.handle_event(
        &Event::Devices(vec![
            device(0x0a0b_0c0d, Some("Chromium on Linux"), true),
            device(0xff, None, false),
        ]),
        T0,
    );
    let notices: Vec<String> = kinds(&c, &rid("#a"))
        .into_iter()
        .filter_map(|k| match k {
            LineKind::Notice(n) => Some(n),
            _ => None,
        })
        .collect();
    let n = notices.len();
    assert!(n >= 3, "{notices:?}");
    assert!(
        notices[n - 2].starts_with("0a0b0c0d \"Chromium on Linux\" (this device): remembered "),
        "{notices:?}"
    );
    assert!(
        notices[n - 1].starts_with("000000ff: remembered "),
        "{notices:?}"
    );
}

/// On a first join the room's replay (the lines said before it) came below the notice of the
/// join, `you are in #a with: bob`, so the times ran backwards: the replay is older and goes
/// above it, in its order, and what comes live goes below; a front end is told where each
/// went (`LineInserted`, the line after it being the notice), without being told to scroll.
#[test]
fn a_first_join_shows_its_replay_above_the_notice_of_the_join() {
    let mut c = Chat::new(nick("me"));
    c.handle_event(&Event::State(ConnState::Connected), T0);
    c.handle_event(&joined("#a", 4, &["me", "bob"]), T0);
    drain(&mut c);
    c.handle_event(&room_ev("#a", 1, "bob", EventKind::Join), T0);
    c.handle_event(&say("#a", 2, "bob", "first"), T0);
    c.handle_event(&say("#a", 3, "bob", "second"), T0);
    let changes = drain(&mut c);
    let a = c.conv(&rid("#a")).unwrap();
    let notice = a
        .lines()
        .iter()
        .find(|l| l.kind == LineKind::Notice("you are in #a with: bob".into()))
        .unwrap()
        .id;
    let inserted: Vec<LineId> = changes
        .iter()
        .filter_map(|ch| match ch {
            Change::LineInserted { conv, id } if *conv == rid("#a") => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(inserted.len(), 3, "{changes:?}");
    assert!(
        !changes
            .iter()
            .any(|ch| matches!(ch, Change::LineAdded { .. } | Change::LinesPrepended { .. })),
        "{changes:?}"
    );
    assert_eq!(a.line_after(inserted[2]).map(|l| l.id), Some(notice));
    c.handle_event(&room_ev("#a", 4, "me", EventKind::Join), T0);
    c.handle_event(&say("#a", 5, "bob", "live"), T0);
    assert_eq!(
        texts(&c, "#a"),
        [
            "bob joined #a",
            "<bob> first",
            "<bob> second",
            "you are in #a with: bob",
            "<bob> live",
        ]
    );
    let times: Vec<Millis> = c
        .conv(&rid("#a"))
        .unwrap()
        .lines()
        .iter()
        .map(|l| l.at)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

/// A room made again (a memory-only room dropped when empty, or any room after a restart: seqs
/// from 1 again) keeps the old room's lines; the new room's older lines, loaded by scrolling
/// up, went in front of everything, above the old room's lines. They go below a notice that
/// the room started over, after the old lines, never among them, and its replay below them.
#[test]
fn older_lines_of_a_room_made_again_go_below_the_old_rooms_lines() {
    let mut c = chat_in(&["#a", "#r"]);
    assert!(c.open(&rid("#r")));
    for seq in 2..=9 {
        c.handle_event(&say("#r", seq, "bob", &format!("old {seq}")), T0);
    }
    c.handle_event(&parted("#r"), T0);
    // Made anew: four lines before our join (seq 6); the replay brings 4 and 5.
    c.handle_event(&joined("#r", 6, &["me", "bob"]), T0);
    for seq in 4..=5 {
        c.handle_event(&say("#r", seq, "bob", &format!("new {seq}")), T0);
    }
    c.handle_event(&room_ev("#r", 6, "me", EventKind::Join), T0);
    assert_eq!(c.want_older(&rid("#r")), Some((room("#r"), Seq(4))));
    c.handle_event(&Event::Older { room: room("#r") }, T0);
    let page: Vec<RoomEvent> = (2..=3)
        .map(|seq| said("#r", seq, "bob", &format!("new {seq}")))
        .collect();
    c.handle_event(
        &Event::Past {
            room: room("#r"),
            events: page,
            at_start: false,
            oldest: None,
        },
        T0,
    );
    let r = texts(&c, "#r");
    let at = |t: &str| {
        r.iter()
            .position(|l| l == t)
            .unwrap_or_else(|| panic!("{t}: {r:#?}"))
    };
    let over = r
        .iter()
        .position(|l| l.starts_with("#r started over"))
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(at("<bob> old 9") < over, "{r:#?}");
    let new: Vec<usize> = (2..=5).map(|s| at(&format!("<bob> new {s}"))).collect();
    assert!(over < new[0], "{r:#?}");
    assert!(new.windows(2).all(|w| w[0] < w[1]), "{r:#?}");
    assert!(
        new[3]
            < r.iter()
                .rposition(|l| l == "you are in #r with: bob")
                .unwrap(),
        "{r:#?}"
    );
}

/// A room made again a second time, where the visit before (itself in a room made again)
/// left no numbered lines: we made it (our join its first event) and left. Joined again once
/// more, the new room's replay was passed over up to that visit's newest seq, as if shown: the
/// first replayed event was lost. Nothing the room holds was that event: it is shown, and the
/// room said to have started over.
#[test]
fn a_room_made_again_twice_shows_its_whole_replay() {
    let mut c = chat_in(&["#a", "#r"]);
    assert!(c.open(&rid("#r")));
    for seq in 2..=9 {
        c.handle_event(&say("#r", seq, "bob", &format!("old {seq}")), T0);
    }
    c.handle_event(&parted("#r"), T0);
    // Made again by us: our join is its first event.
    let t1 = T0 + Millis(60_000);
    c.handle_event(&joined("#r", 1, &["me"]), t1);
    c.handle_event(
        &Event::Room(RoomEvent {
            at: t1,
            ..ev_at("#r", 1, "me", EventKind::Join)
        }),
        t1,
    );
    c.handle_event(&parted("#r"), t1);
    // Made again by carol: her join 1, her line 2; ours is 3.
    let t2 = T0 + Millis(120_000);
    let carol = |seq, kind| {
        Event::Room(RoomEvent {
            at: t2,
            ..ev_at("#r", seq, "carol", kind)
        })
    };
    c.handle_event(&joined("#r", 3, &["me", "carol"]), t2);
    c.handle_event(&carol(1, EventKind::Join), t2);
    c.handle_event(
        &carol(
            2,
            EventKind::Say {
                id: MsgId(2),
                text: text("hello"),
            },
        ),
        t2,
    );
    c.handle_event(
        &Event::Room(RoomEvent {
            at: t2,
            ..ev_at("#r", 3, "me", EventKind::Join)
        }),
        t2,
    );
    let r = texts(&c, "#r");
    let lines = kinds(&c, &rid("#r"));
    assert!(
        !lines.iter().any(|k| matches!(k, LineKind::Gap { .. })),
        "{r:#?}"
    );
    let at = |t: &str| {
        r.iter()
            .position(|l| l == t)
            .unwrap_or_else(|| panic!("{t}: {r:#?}"))
    };
    assert!(at("carol joined #r") < at("<carol> hello"), "{r:#?}");
    assert!(
        at("<carol> hello")
            < r.iter()
                .rposition(|l| l.starts_with("you are in #r"))
                .unwrap(),
        "{r:#?}"
    );
    assert!(r.iter().any(|l| l.starts_with("#r started over")), "{r:#?}");
    // Older lines of the new room are asked below its oldest held, not the old room's.
    assert_eq!(c.want_older(&rid("#r")), None, "{r:#?}");
}

/// `/msg bob hi` typed in a room lands in `@bob`, out of sight: the open conversation is told
/// where it went, in line mode's words (the TUI and the page each wrote this until the
/// forty-first session). Not for a `/msg` to the direct conversation open (it shows there),
/// a line said in a room, nor a `/msg` that is no message.
#[test]
fn a_direct_message_typed_in_another_conversation_says_where_it_went() {
    let mut c = chat_in(&["#a"]);
    assert_eq!(
        c.sent_elsewhere("/msg bob hi there"),
        Some("-> *bob* hi there".to_owned())
    );
    assert_eq!(
        c.sent_elsewhere("/MSG Bob hi"),
        Some("-> *Bob* hi".to_owned())
    );
    for not_elsewhere in ["hi", "/msg #a hi", "/msg bob", "/me waves", "/msg b@d hi"] {
        assert_eq!(c.sent_elsewhere(not_elsewhere), None, "{not_elsewhere}");
    }
    // `/notice bob hi` typed in a room said nothing where it was typed either.
    assert_eq!(
        c.sent_elsewhere("/notice bob build passed"),
        Some("-> -bob- build passed".to_owned())
    );
    assert_eq!(c.sent_elsewhere("/notice #a hi"), None);
    c.open_direct(&nick("bob"));
    assert_eq!(c.current(), &ConvId::direct(&nick("bob")));
    assert_eq!(c.sent_elsewhere("/notice bob hi"), None);
    assert_eq!(
        c.sent_elsewhere("/msg BOB hi"),
        None,
        "shown where it is typed"
    );
    assert_eq!(
        c.sent_elsewhere("/msg carol hi"),
        Some("-> *carol* hi".to_owned())
    );
    // Nothing is noted or sent by asking.
    assert!(kinds(&c, &ConvId::direct(&nick("bob"))).is_empty());
}
