//! Whole conversations seen through the clients' chat model: one Hub (configured as a test
//! needs), clients that are a Session plus the Chat model folding its events, and nc users.
//! Pacing by the limits a server announces, mentions and unread counts, and errors shown for the
//! request they refused.

mod harness;

use harness::{Net, nick, room};
use natter_core::Millis;
use natter_core::chat::{Alert, ConvId, LineKind};
use natter_core::hub::Config;
use natter_core::limits::{FLOOD_BURST, FLOOD_REFILL};
use natter_core::session::{About, Event};
use natter_core::wire::{ErrorKind, EventKind};

/// Texts said in `r` that client `i` saw, in order.
fn said(net: &Net, i: usize, r: &str) -> Vec<String> {
    let r = room(r);
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::Room(ev) if ev.room == r => match &ev.kind {
                EventKind::Say { text, .. } => Some(text.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn flood_errors(net: &Net, i: usize) -> usize {
    net.events(i)
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Error {
                    kind: Some(ErrorKind::Flood),
                    ..
                }
            )
        })
        .count()
}

/// A server stricter than the defaults: 2 commands at once, then one per 400 ms.
fn strict() -> Config {
    Config {
        flood_burst: 2,
        flood_refill: Millis(400),
        ..Config::default()
    }
}

const LINES: usize = 60;

/// Types `LINES` lines at once into client `a`, then lets time pass until they are all out.
fn type_a_burst(net: &mut Net, a: usize) -> Vec<String> {
    let lines: Vec<String> = (0..LINES).map(|i| format!("line {i}")).collect();
    for l in &lines {
        net.type_line(a, l);
    }
    for _ in 0..LINES {
        net.advance(Millis(500));
    }
    lines
}

#[test]
fn a_server_with_stricter_limits_refuses_nothing_a_client_sends() {
    let mut net = Net::new(strict());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    let lines = type_a_burst(&mut net, a);
    assert_eq!(flood_errors(&net, a), 0, "the server refused some lines");
    assert_eq!(said(&net, b, "#lobby"), lines, "every line, once, in order");
    assert!(net.session(a).is_settled());
    assert_eq!(
        net.chat(a).outgoing(&ConvId::Room(room("#lobby"))).count(),
        0
    );
}

/// What the test above guards against: a client pacing by the compiled-in defaults instead of
/// the server's announcement has lines refused by the same server.
#[test]
fn a_client_ignoring_the_announced_limits_would_be_refused() {
    let mut net = Net::new(strict());
    let a = net.add_session("alice", &["#lobby"]);
    let _b = net.add_session("bob", &["#lobby"]);
    let now = net.now;
    net.session(a)
        .set_flood_limits(FLOOD_BURST, FLOOD_REFILL, now);
    type_a_burst(&mut net, a);
    assert!(flood_errors(&net, a) > 0);
    // Each refused line is a failed line in the model, saying why.
    let failed = net
        .chat(a)
        .conv(&ConvId::Room(room("#lobby")))
        .unwrap()
        .lines()
        .iter()
        .filter(|l| l.failed.is_some())
        .count();
    assert_eq!(failed, flood_errors(&net, a));
}

#[test]
fn a_lenient_server_is_not_waited_for() {
    let mut net = Net::new(Config {
        flood_burst: 1_000,
        flood_refill: Millis(1),
        ..Config::default()
    });
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    for i in 0..LINES {
        net.type_line(a, &format!("quick {i}"));
    }
    // No time passes: the server's burst takes them all at once.
    assert_eq!(said(&net, b, "#lobby").len(), LINES);
}

#[test]
fn a_mention_elsewhere_counts_alerts_and_reads_when_opened() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    let t = net.add_text();
    net.type_line(b, "/join #rust");
    assert_eq!(net.chat(b).current(), &ConvId::Room(room("#rust")));
    while net.chat(b).poll_alert().is_some() {}

    net.type_line(a, "Bob: are you there?");
    net.type_line(t, "bobby is not bob's name");
    net.type_line(a, "plain chat");
    let lobby = ConvId::Room(room("#lobby"));
    let chat = net.chat(b);
    let conv = chat.conv(&lobby).unwrap();
    assert_eq!((conv.unread(), conv.mentions()), (3, 2));
    let marked: Vec<bool> = conv
        .lines()
        .iter()
        .filter(|l| matches!(l.kind, LineKind::Say { .. }))
        .map(|l| l.mention)
        .collect();
    assert_eq!(marked, [true, true, false]);
    assert_eq!(chat.title(), "(3, @2) #rust · natter");
    let alerts: Vec<Alert> = std::iter::from_fn(|| chat.poll_alert()).collect();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].from, nick("alice"));
    assert_eq!(alerts[0].conv, lobby);
    assert!(chat.open(&lobby));
    assert_eq!(chat.counts(), (0, 0));
    assert_eq!(chat.title(), "#lobby · natter");
    // Typed now, chat goes to the room on screen.
    net.type_line(b, "here now");
    assert_eq!(
        said(&net, a, "#lobby").last().map(String::as_str),
        Some("here now")
    );
}

#[test]
fn refusals_are_shown_for_what_they_refused() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    net.type_line(b, "/nick alice");
    net.type_line(b, "/msg nobody hello?");
    let errors: Vec<About> = net
        .events(b)
        .iter()
        .filter_map(|e| match e {
            Event::Error { about, .. } => Some(about.clone()),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&errors[..], [About::Nick(n), About::Message(_)] if *n == nick("alice")),
        "{errors:?}"
    );
    let chat = net.chat(b);
    let lobby = chat.conv(&ConvId::Room(room("#lobby"))).unwrap();
    let words: Vec<&str> = lobby
        .lines()
        .iter()
        .filter_map(|l| l.kind.words())
        .collect();
    assert!(
        words
            .iter()
            .any(|w| w.starts_with("could not change your nick to alice: ")),
        "{words:?}"
    );
    assert!(
        words
            .iter()
            .any(|w| w.starts_with("not delivered to nobody: hello? (")),
        "{words:?}"
    );
    let dm = chat.conv(&ConvId::direct(&nick("nobody"))).unwrap();
    let failed = dm.lines().back().unwrap();
    assert!(failed.mine && failed.failed.is_some(), "{failed:?}");
    assert!(net.session(a).is_settled());
}

/// A hub keeping 200 events per room and replaying 10 on join, generous with flood tokens.
fn long_ring() -> Config {
    Config {
        history_len: 200,
        history_on_join: 10,
        flood_burst: 1_000,
        flood_refill: Millis(1),
        ..Config::default()
    }
}

/// Client `i`'s lines of room `r` that are chat, as text.
fn chat_texts(net: &mut Net, i: usize, r: &str) -> Vec<String> {
    net.chat(i)
        .conv(&ConvId::Room(room(r)))
        .expect("in the room")
        .lines()
        .iter()
        .filter_map(|l| match &l.kind {
            LineKind::Say { text, .. } => Some(text.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn scrolling_up_loads_a_rooms_whole_history_once_down_to_its_beginning() {
    let mut net = Net::new(long_ring());
    let bob = net.add_session("bob", &["#lobby"]);
    let said: Vec<String> = (1..=45).map(|i| format!("line {i}")).collect();
    for l in &said {
        net.type_line(bob, l);
    }
    net.advance(Millis(1_000));
    let alice = net.add_session("alice", &["#lobby"]);
    net.advance(Millis(1_000));
    let lobby = ConvId::Room(room("#lobby"));
    assert!(chat_texts(&mut net, alice, "#lobby").len() < said.len());
    // Scroll to the top, page by page (small pages), until the beginning.
    let mut pages = 0;
    while let Some((r, before)) = net.chat(alice).want_older(&lobby) {
        pages += 1;
        assert!(pages < 20, "scrollback ends");
        let now = net.now;
        net.session(alice).older(r, before, 12, now);
        net.pump();
        net.advance(Millis(100));
    }
    assert!(pages >= 4, "{pages} pages of 12 for 45 lines and more");
    assert_eq!(
        chat_texts(&mut net, alice, "#lobby"),
        said,
        "every line once, in order"
    );
    assert_eq!(
        net.chat(alice).conv(&lobby).unwrap().scrollback(),
        Some(natter_core::chat::Scrollback::Start)
    );
    // The past is not news: nothing unread, no alerts, no errors.
    assert_eq!(net.chat(alice).counts(), (0, 0));
    assert!(
        !net.events(alice)
            .iter()
            .any(|e| matches!(e, Event::Error { .. })),
        "{:?}",
        net.events(alice)
    );
    // Live chat goes on after all that.
    net.type_line(bob, "live again");
    net.advance(Millis(100));
    assert_eq!(
        chat_texts(&mut net, alice, "#lobby")
            .last()
            .map(String::as_str),
        Some("live again")
    );

    // A search, typed, with words a search engine would read as syntax: here they are words.
    net.type_line(bob, r#"say "quoted" * -minus NEAR(a b) col:on"#);
    net.advance(Millis(100));
    net.type_line(alice, r#"/search "quoted" -minus NEAR(a col:on"#);
    net.advance(Millis(100));
    let s = net.chat(alice).search().expect("a search");
    assert_eq!(s.state(), &natter_core::chat::SearchState::Done);
    let hits: Vec<&str> = s.hits().iter().map(|h| h.words.as_str()).collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0].ends_with(r#"<bob> say "quoted" * -minus NEAR(a b) col:on"#),
        "{hits:?}"
    );
    let search = |net: &mut Net, typed: &str| -> Vec<String> {
        net.type_line(alice, typed);
        net.advance(Millis(100));
        let s = net.chat(alice).search().expect("a search");
        s.hits()
            .iter()
            .map(|h| match &h.line.kind {
                LineKind::Say { text, .. } => text.to_string(),
                k => panic!("{k:?}"),
            })
            .collect()
    };
    let hits = search(&mut net, "/search #lobby line");
    assert_eq!(hits.len(), said.len(), "{hits:?}");
    assert_eq!(hits[..3], ["line 45", "line 44", "line 43"], "newest first");
    // Words are whole words (PROTOCOL.md's `Search`), as the store's index reads them: `4`
    // is not found inside `45`.
    assert_eq!(search(&mut net, "/search #lobby line 4"), ["line 4"]);
}
