//! Whole conversations through one Hub and several Sessions and text users, in memory with a fake
//! clock: join, talk, DM, nick clash, text and binary users together, disconnect and resume with
//! missed messages, a slow consumer that gets a gap marker, and a big room small again.

mod harness;

use harness::{Net, nick, room, small_queues};
use natter_core::Millis;
use natter_core::chat::ConvId;
use natter_core::hub::Config;
use natter_core::session::Event;
use natter_core::wire::EventKind;

/// Chat lines (from, text) a session saw in `r`, in order.
fn said(net: &Net, i: usize, r: &str) -> Vec<(String, String)> {
    let r = room(r);
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::Room(ev) if ev.room == r => match &ev.kind {
                EventKind::Say { text, .. } => Some((ev.from.to_string(), text.to_string())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn seqs(net: &Net, i: usize, r: &str) -> Vec<u64> {
    let r = room(r);
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::Room(ev) if ev.room == r => Some(ev.seq.0),
            _ => None,
        })
        .collect()
}

fn pair(from: &str, text: &str) -> (String, String) {
    (from.to_owned(), text.to_owned())
}

fn no_flood() -> Config {
    Config {
        flood_burst: 10_000,
        flood_refill: Millis(1),
        ..Config::default()
    }
}

#[test]
fn two_sessions_join_and_talk() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    net.type_line(a, "hello bob");
    net.type_line(b, "hi alice");
    let expect = vec![pair("alice", "hello bob"), pair("bob", "hi alice")];
    assert_eq!(said(&net, a, "#lobby"), expect);
    assert_eq!(said(&net, b, "#lobby"), expect);
    assert!(net.session(a).is_settled());
    assert!(net.session(b).is_settled());
    // alice saw bob join.
    assert!(net.events(a).iter().any(|e| matches!(e,
        Event::Room(ev) if ev.kind == EventKind::Join && ev.from == nick("bob"))));
}

#[test]
fn direct_messages_reach_only_the_recipient() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    let c = net.add_session("carol", &["#lobby"]);
    net.type_line(a, "/msg bob psst");
    let dm = |i: usize| {
        net.events(i)
            .iter()
            .filter(|e| matches!(e, Event::Direct(d) if d.text.as_str() == "psst"))
            .count()
    };
    assert_eq!(dm(b), 1);
    assert_eq!(
        dm(a),
        1,
        "the sender gets its DM back as the acknowledgement"
    );
    assert_eq!(dm(c), 0);
    net.type_line(a, "/msg nobody hello?");
    assert!(
        net.events(a)
            .iter()
            .any(|e| matches!(e, Event::Error { .. }))
    );
}

#[test]
fn nick_clash_gives_a_free_nick_and_renames_are_checked() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("Alice", &["#lobby"]);
    let welcomed = |net: &Net, i| {
        net.events(i).iter().find_map(|e| match e {
            Event::Welcome { nick, .. } => Some(nick.clone()),
            _ => None,
        })
    };
    assert_eq!(welcomed(&net, a), Some(nick("alice")));
    let other = welcomed(&net, b).expect("welcomed");
    assert_ne!(other.folded(), "alice");
    net.type_line(b, "/nick ALICE");
    assert!(
        net.events(b)
            .iter()
            .any(|e| matches!(e, Event::Error { text, .. } if text.contains("alice") || text.contains("ALICE") || text.contains("taken"))),
        "{:?}",
        net.events(b)
    );
    net.type_line(b, "/nick bob");
    assert!(net.events(a).iter().any(|e| matches!(e,
        Event::Room(ev) if ev.kind == EventKind::Nick { new: nick("bob") })));
}

#[test]
fn text_user_and_binary_user_share_a_room() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let t = net.add_text();
    assert!(net.lines(t)[0].contains("Welcome"), "{:?}", net.lines(t));
    net.type_line(t, "hi from nc");
    net.type_line(a, "hi from the cli");
    net.type_line(a, "/me waves");
    let lines = net.lines(t).to_vec();
    assert!(
        lines.contains(&"<alice> hi from the cli".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"* alice waves".to_owned()), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("hi from nc")),
        "the text user's own line is not echoed: {lines:?}"
    );
    let guest_says: Vec<_> = said(&net, a, "#lobby")
        .into_iter()
        .filter(|(_, text)| text == "hi from nc")
        .collect();
    assert_eq!(guest_says.len(), 1);
    assert!(guest_says[0].0.starts_with("guest"));
}

#[test]
fn disconnect_and_resume_delivers_missed_messages_once() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    net.type_line(b, "before");
    net.cut(a);
    net.type_line(b, "while away 1");
    net.type_line(b, "while away 2");
    // alice types while disconnected: sent after the resume, once.
    net.type_line(a, "typed offline");
    // Backoff then reconnect.
    net.advance(Millis(20_000));
    assert!(
        net.events(a)
            .iter()
            .any(|e| matches!(e, Event::Welcome { resumed: true, .. })),
        "{:?}",
        net.events(a)
    );
    let got = said(&net, a, "#lobby");
    for text in ["before", "while away 1", "while away 2"] {
        assert_eq!(
            got.iter().filter(|(_, t)| t == text).count(),
            1,
            "{text}: {got:?}"
        );
    }
    let at_bob = said(&net, b, "#lobby");
    assert_eq!(
        at_bob.iter().filter(|(_, t)| t == "typed offline").count(),
        1,
        "{at_bob:?}"
    );
    // bob saw no quit or second join from alice.
    let notices = net
        .events(b)
        .iter()
        .filter(|e| {
            matches!(e, Event::Room(ev) if ev.from == nick("alice")
            && matches!(ev.kind, EventKind::Join | EventKind::Quit { .. }))
        })
        .count();
    assert_eq!(notices, 1, "only alice's first join: {:?}", net.events(b));
    // The member list was refreshed quietly: nobody asked with /who.
    assert!(
        net.events(a)
            .iter()
            .any(|e| matches!(e, Event::Members { asked: false, .. }))
    );
    assert!(
        !net.events(a)
            .iter()
            .any(|e| matches!(e, Event::Members { asked: true, .. }))
    );
    net.type_line(a, "/who");
    assert!(
        net.events(a)
            .iter()
            .any(|e| matches!(e, Event::Members { asked: true, .. }))
    );
    // Seqs never repeat.
    let s = seqs(&net, a, "#lobby");
    let mut sorted = s.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), s.len(), "{s:?}");
}

/// Events of `pat` joining or quitting that client `i` saw in its rooms.
fn comings_and_goings(net: &Net, i: usize, who: &str) -> usize {
    net.events(i)
        .iter()
        .filter(|e| {
            matches!(e, Event::Room(ev) if ev.from == nick(who)
            && matches!(ev.kind, EventKind::Join | EventKind::Quit { .. }))
        })
        .count()
}

#[test]
fn a_reloaded_page_resumes_its_guest_session_with_exactly_what_it_missed() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("pat", &["#lobby", "#rust"]);
    let b = net.add_session("bob", &["#lobby", "#rust"]);
    net.type_line(b, "/msg #lobby before");
    net.type_line(b, "/msg #rust seen in rust");
    // The old page talked: the server took its lines' ids as said.
    net.type_line(a, "/msg #rust one from the old page");
    net.type_line(a, "/msg #rust two from the old page");
    let from = net
        .session(a)
        .resumable()
        .expect("a guest's session resumes");
    assert_eq!(from.nick, nick("pat"));
    let rooms: Vec<&str> = from.rooms.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rooms, ["#lobby", "#rust"]);
    // The page goes (a reload: no quit), and things are said before the new one is up.
    net.gone(a);
    net.type_line(b, "/msg #lobby while away 1");
    net.type_line(b, "/msg #rust while away 2");
    net.advance(Millis(2_000));
    let a2 = net.add_resumed_session(from);
    assert!(
        net.events(a2).iter().any(
            |e| matches!(e, Event::Welcome { nick: n, resumed: true, .. } if *n == nick("pat"))
        ),
        "{:?}",
        net.events(a2)
    );
    // Its rooms are new to the new page, which shows only what the old one did not see.
    for r in ["#lobby", "#rust"] {
        assert!(
            net.events(a2)
                .iter()
                .any(|e| matches!(e, Event::Joined { room: x, .. } if *x == room(r))),
            "{r}: {:?}",
            net.events(a2)
        );
        assert!(net.chat(a2).conv(&ConvId::Room(room(r))).is_some(), "{r}");
    }
    let texts =
        |r: &str| -> Vec<String> { said(&net, a2, r).into_iter().map(|(_, t)| t).collect() };
    assert_eq!(texts("#lobby"), ["while away 1"]);
    assert_eq!(texts("#rust"), ["while away 2"]);
    // Nobody saw pat leave or come back.
    assert_eq!(
        comings_and_goings(&net, b, "pat"),
        2,
        "the first joins only"
    );
    // And it goes on as pat: what it says is said, not taken for a resend of the old page's
    // lines (its ids go on after theirs) and acknowledged without a word to anyone.
    net.type_line(a2, "/msg #rust back");
    assert_eq!(said(&net, b, "#rust").last(), Some(&pair("pat", "back")));
    net.type_line(a2, "/msg #rust and talking");
    assert_eq!(
        said(&net, b, "#rust").last(),
        Some(&pair("pat", "and talking"))
    );
}

#[test]
fn a_page_reloaded_after_the_resume_window_starts_again_in_its_rooms() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("pat", &["#lobby", "#rust"]);
    let b = net.add_session("bob", &["#rust"]);
    let from = net
        .session(a)
        .resumable()
        .expect("a guest's session resumes");
    net.gone(a);
    net.advance(natter_core::limits::RESUME_GRACE + Millis(1_000));
    net.type_line(b, "/msg #rust after the window");
    let a2 = net.add_resumed_session(from);
    let evs = net.events(a2);
    assert!(
        evs.iter().any(
            |e| matches!(e, Event::Welcome { nick: n, resumed: false, .. } if *n == nick("pat"))
        ),
        "the same nick, free again: {evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::Info(t) if t.contains("could not resume"))),
        "said: {evs:?}"
    );
    for r in ["#lobby", "#rust"] {
        assert!(net.session(a2).rooms().contains(&room(r)), "back in {r}");
    }
    // The rejoin's replay is shown, as for any join.
    let texts: Vec<String> = said(&net, a2, "#rust")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts, ["after the window"]);
}

/// A page reloaded past the resume window joins its rooms again: a `+k` room with the key it
/// was joined with (kept with the session, as a reconnecting client keeps it), not refused
/// for want of it.
#[test]
fn a_page_reloaded_after_the_resume_window_joins_its_keyed_room_with_its_key() {
    let mut net = Net::new(Config::default());
    let b = net.add_session("bob", &["#vault"]);
    net.type_line(b, "/register correct horse battery");
    net.type_line(b, "/register #vault");
    net.type_line(b, "/mode #vault +k sesame");
    let c = net.add_session("carol", &["#lobby"]);
    net.type_line(c, "/join #vault");
    assert!(
        !net.session(c).rooms().contains(&room("#vault")),
        "a +k room: not without its key"
    );
    let a = net.add_session("pat", &["#lobby"]);
    net.type_line(a, "/join #vault sesame");
    assert!(
        net.session(a).rooms().contains(&room("#vault")),
        "in #vault"
    );
    let from = net
        .session(a)
        .resumable()
        .expect("a guest's session resumes");
    assert_eq!(
        from.keys,
        [(
            room("#vault"),
            natter_core::types::Text::new("sesame").unwrap()
        )]
    );
    net.gone(a);
    net.advance(natter_core::limits::RESUME_GRACE + Millis(1_000));
    let a2 = net.add_resumed_session(from);
    let evs = net.events(a2).to_vec();
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::Welcome { resumed: false, .. })),
        "past the window: {evs:?}"
    );
    for r in ["#lobby", "#vault"] {
        assert!(
            net.session(a2).rooms().contains(&room(r)),
            "back in {r}: {evs:?}"
        );
    }
}

#[test]
fn slow_consumer_gets_a_gap_marker_and_others_are_unaffected() {
    let config = Config {
        outbound_max_msgs: 20,
        outbound_max_bytes: 4096,
        ..no_flood()
    };
    let mut net = Net::new(config);
    let a = net.add_session("alice", &["#lobby"]);
    let c = net.add_session("carol", &["#lobby"]);
    // The talker is a text user: sessions pace themselves to the server's flood limit, a person
    // on nc does not (and this hub's flood limit is off), so 200 lines arrive at once.
    let b = net.add_text();
    net.set_stalled(a, true);
    for n in 0..200 {
        net.type_line(b, &format!("message {n}"));
        // The hub never holds more than its limit for alice (+ room for replies).
        let queued: usize = net.clients[a].inbox.iter().map(|b| b.len()).sum();
        assert!(queued <= 4096 + 64 * 1024, "{queued}");
    }
    assert_eq!(said(&net, c, "#lobby").len(), 200, "carol got everything");
    net.set_stalled(a, false);
    net.advance(Millis(1_000));
    let gaps: Vec<_> = net
        .events(a)
        .iter()
        .filter_map(|e| match e {
            Event::Gap { first, last, .. } => Some((first.0, last.0)),
            _ => None,
        })
        .collect();
    assert!(!gaps.is_empty(), "alice was told she missed messages");
    // Every seq alice did not receive is covered by a gap.
    let got = seqs(&net, a, "#lobby");
    let max = *got.iter().max().unwrap();
    let min = *got.iter().min().unwrap();
    for s in min..=max {
        assert!(
            got.contains(&s) || gaps.iter().any(|(f, l)| (*f..=*l).contains(&s)),
            "seq {s} neither delivered nor in a gap"
        );
    }
    // And no seq twice, refill included.
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len());
}

/// Found by the property test: a stalled member joins a room and talks there at once; its own
/// message's echo is skipped while its queue is full, and must still settle after it catches up.
#[test]
fn a_stalled_talker_still_gets_its_own_message_acknowledged() {
    let mut net = Net::new(small_queues());
    let a = net.add_session("ann", &["#lobby"]);
    let b = net.add_session("ben", &["#lobby"]);
    let c = net.add_session("cat", &["#lobby"]);
    let t = net.add_text();
    net.set_stalled(c, true);
    for n in 0..4 {
        net.type_line(a, &format!("m{n}"));
    }
    net.type_line(c, "/join #rust");
    for n in 4..10 {
        net.type_line(a, &format!("m{n}"));
    }
    net.type_line(c, "in rust");
    net.type_line(t, "t1");
    net.type_line(t, "t2");
    net.type_line(b, "b1");
    net.type_line(b, "b2");
    for i in [a, b, c] {
        net.set_stalled(i, false);
    }
    net.advance(Millis(30_000));
    let settled = net.session(c).is_settled();
    assert!(settled, "{:#?}", net.events(c).iter().collect::<Vec<_>>());
}

#[test]
fn a_session_whose_preamble_comes_late_is_greeted_as_text_and_gets_in_at_once() {
    let mut net = Net::new(no_flood());
    let bob = net.add_session("bob", &["#lobby"]);
    net.advance(Millis(100));
    let wait = net.hub.config().text_detect_wait;
    let started = net.now;
    // A lossy link holds alice's first bytes past the detection wait.
    let alice = net.add_session_delayed("alice", &["#lobby"], wait + Millis(600));
    net.advance(wait + Millis(50));
    assert!(
        net.events(alice)
            .iter()
            .any(|e| matches!(e, Event::Info(s) if s.contains("text client"))),
        "{:?}",
        net.events(alice)
    );
    // She reconnected at once, without backoff, and is in: welcomed and joined.
    let joined_at = net.now;
    assert!(
        net.events(alice)
            .iter()
            .any(|e| matches!(e, Event::Welcome { .. }))
    );
    assert!(
        net.events(alice)
            .iter()
            .any(|e| matches!(e, Event::Joined { room, .. } if *room == room_lobby()))
    );
    assert!(joined_at.0 - started.0 < 2 * wait.0, "no backoff");
    assert_eq!(
        net.session(alice).state(),
        natter_core::session::ConnState::Connected
    );
    // bob sees her arrive, and they talk.
    assert!(net.events(bob).iter().any(
        |e| matches!(e, Event::Room(ev) if ev.from == nick("alice") && ev.kind == EventKind::Join)
    ));
    net.type_line(alice, "made it");
    net.advance(Millis(10));
    assert_eq!(said(&net, bob, "#lobby"), [pair("alice", "made it")]);
}

fn room_lobby() -> natter_core::RoomName {
    room("#lobby")
}

/// A big room small again: joins and parts were only counted while it was big, so the member
/// lists of those in it named who had left and missed who had come; the summary that says it
/// is small again has their clients ask for the list, which comes without a line.
#[test]
fn a_big_room_small_again_has_whole_member_lists() {
    let mut net = Net::new(Config {
        quiet_room_members: 3,
        crowd_summary_every: Millis(1_000),
        ..Config::default()
    });
    let a = net.add_session("alice", &["#big"]);
    let b = net.add_session("bob", &["#big"]);
    let c = net.add_session("carol", &["#big"]);
    let d = net.add_session("dave", &["#big"]);
    let _e = net.add_session("erin", &["#big"]);
    net.advance(Millis(1_500));
    net.type_line(b, "/part #big");
    net.type_line(c, "/part #big");
    net.type_line(d, "/part #big");
    net.advance(Millis(1_500));
    let big = ConvId::Room(room("#big"));
    let conv = net.chat(a).conv(&big).expect("alice is in #big");
    let mut members: Vec<String> = conv.members().iter().map(ToString::to_string).collect();
    members.sort();
    assert_eq!(members, ["alice", "erin"]);
    assert_eq!(conv.member_count(), 2);
    assert!(!conv.members_partial());
    let listed: Vec<String> = conv
        .lines()
        .iter()
        .filter_map(|l| match &l.kind {
            natter_core::chat::LineKind::Notice(w) if w.starts_with("#big (") => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert!(listed.is_empty(), "no list line: {listed:?}");
}
