//! `/away` as a whole conversation: typed in natter's own client (a Session and its chat
//! model) or on nc, it is said to the typist and to every co-member (a notice line in the
//! client's conversation, `-- nick is away: text` on nc), a direct message to someone away is
//! answered with it (in the client's direct conversation with them, once per change), and `/back` (or `/away` alone) ends it.

mod harness;

use harness::Net;
use natter_core::chat::{ConvId, LineKind};
use natter_core::hub::Config;
use natter_core::session::Event;

/// The notice lines of a session's open conversation, in order.
fn notes(net: &mut Net, i: usize) -> Vec<String> {
    net.chat(i)
        .current_conv()
        .lines()
        .iter()
        .filter_map(|l| match &l.kind {
            LineKind::Notice(words) => Some(words.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn away_typed_in_a_client_or_on_nc_is_seen_by_every_co_member() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    let t = net.add_text();

    net.type_line(a, "/away at lunch");
    let mine = "you are away: at lunch (/back when you are back)".to_owned();
    assert!(
        notes(&mut net, a).contains(&mine),
        "{:?}",
        notes(&mut net, a)
    );
    assert!(notes(&mut net, b).contains(&"alice is away: at lunch".to_owned()));
    assert!(
        net.lines(t)
            .contains(&"-- alice is away: at lunch".to_owned()),
        "{:?}",
        net.lines(t)
    );

    // A direct message to her is answered with her away message, on either door: in the
    // client, beside what was written (the direct conversation with her), once while it stays
    // the same, as IRC clients say `301` in a query window.
    let told = |net: &mut Net| {
        let dm = ConvId::direct(&harness::nick("alice"));
        net.chat(b)
            .conv(&dm)
            .map(|c| {
                c.lines()
                    .iter()
                    .filter(|l| l.kind == LineKind::Notice("alice is away: at lunch".into()))
                    .count()
            })
            .unwrap_or(0)
    };
    net.type_line(b, "/msg alice are you there?");
    assert_eq!(told(&mut net), 1);
    net.type_line(b, "/msg alice hello?");
    assert_eq!(told(&mut net), 1);
    assert!(
        net.events(b)
            .iter()
            .filter(|e| matches!(e, Event::Away { nick, .. } if nick.as_str() == "alice"))
            .count()
            >= 2,
        "the server answers each message"
    );
    net.type_line(t, "/msg alice and from nc");
    assert_eq!(
        net.lines(t).last().map(String::as_str),
        Some("-- alice is away: at lunch")
    );

    // nc goes away and comes back; the clients hear both.
    net.type_line(t, "/away brb");
    assert_eq!(
        net.lines(t).last().map(String::as_str),
        Some("-- you are away: brb (/back when you are back)")
    );
    let b_notes = notes(&mut net, b);
    let nc_away = b_notes.last().cloned().unwrap_or_default();
    assert!(
        nc_away.starts_with("guest") && nc_away.ends_with(" is away: brb"),
        "{b_notes:?}"
    );
    net.type_line(t, "/away");
    assert_eq!(
        net.lines(t).last().map(String::as_str),
        Some("-- you are back (no longer away)")
    );
    // Alice has a direct conversation with the nc user (it wrote to her): said there.
    let with_nc = net
        .chat(a)
        .conversations()
        .find(|c| matches!(c.id(), ConvId::Direct(n) if n.as_str().starts_with("guest")))
        .map(|c| c.lines().back().map(|l| l.kind.clone()));
    assert!(
        matches!(&with_nc, Some(Some(LineKind::Notice(n))) if n.ends_with(" is back")),
        "{with_nc:?}"
    );

    net.type_line(a, "/back");
    assert_eq!(
        notes(&mut net, a).last().map(String::as_str),
        Some("you are back (no longer away)")
    );
    // Bob wrote to her while she was away: her return is said beside that.
    let dm = ConvId::direct(&harness::nick("alice"));
    assert_eq!(
        net.chat(b)
            .conv(&dm)
            .and_then(|c| c.lines().back())
            .map(|l| l.kind.clone()),
        Some(LineKind::Notice("alice is back".into()))
    );
    assert!(net.session(a).is_settled() && net.session(b).is_settled());
}

/// Who is away reaches natter's own client as state its member list marks: someone already
/// away when we join, someone away joining, changes, and all of it again after a resume
/// (a change missed while the connection was down included).
#[test]
fn a_client_knows_who_in_its_rooms_is_away_from_joining_on_and_after_a_resume() {
    let mut net = Net::new(Config::default());
    let b = net.add_session("bob", &["#lobby", "#two"]);
    net.type_line(b, "/away at lunch");
    let a = net.add_session("alice", &["#lobby"]);
    let away = |net: &mut Net, r: &str, who: &str| {
        net.chat(a)
            .away(&harness::room(r), &harness::nick(who))
            .map(|t| t.to_string())
    };
    assert_eq!(away(&mut net, "#lobby", "bob").as_deref(), Some("at lunch"));
    assert_eq!(away(&mut net, "#lobby", "alice"), None);
    // Bob, away, joins a room alice is in: marked there from his join on.
    net.type_line(a, "/join #three");
    net.type_line(b, "/join #three");
    assert_eq!(away(&mut net, "#three", "bob").as_deref(), Some("at lunch"));
    // Changes: back, away again.
    net.type_line(b, "/back");
    assert_eq!(away(&mut net, "#lobby", "bob"), None);
    assert_eq!(away(&mut net, "#three", "bob"), None);
    // A change while alice's connection is down: the resume's lists say it.
    net.cut(a);
    net.type_line(b, "/away gone fishing");
    net.advance(natter_core::Millis(20_000));
    assert!(net.chat(a).conn() == natter_core::session::ConnState::Connected);
    assert_eq!(
        away(&mut net, "#lobby", "bob").as_deref(),
        Some("gone fishing")
    );
    assert_eq!(
        away(&mut net, "#three", "bob").as_deref(),
        Some("gone fishing")
    );
}

/// A member's client misses, while its connection is down, someone away leaving a room and
/// joining it again: the resume replays the part and the join (history, not live) after the
/// room's `Joined` and its `AwayHere`, and the away mark stays.
#[test]
fn an_away_member_who_left_and_came_back_while_we_were_down_stays_marked_after_the_resume() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby", "#two"]);
    net.type_line(b, "/away at lunch");
    let away = |net: &mut Net, who: &str| {
        net.chat(a)
            .away(&harness::room("#lobby"), &harness::nick(who))
            .map(|t| t.to_string())
    };
    assert_eq!(away(&mut net, "bob").as_deref(), Some("at lunch"));
    net.cut(a);
    net.type_line(b, "/part #lobby");
    net.type_line(b, "/join #lobby");
    net.advance(natter_core::Millis(20_000));
    assert!(net.chat(a).conn() == natter_core::session::ConnState::Connected);
    let resumed = net
        .events(a)
        .iter()
        .any(|e| matches!(e, Event::Welcome { resumed: true, .. }));
    assert!(resumed, "the client resumed: {:?}", net.events(a));
    let members = net
        .chat(a)
        .conv(&natter_core::chat::ConvId::Room(harness::room("#lobby")));
    assert!(
        members.is_some_and(|c| c.members().position(&harness::nick("bob")).is_some()),
        "bob is listed"
    );
    assert_eq!(away(&mut net, "bob").as_deref(), Some("at lunch"));
}

/// What natter's line mode prints for a session's events so far: each event's own lines, with
/// who is away said once per change before them ([`natter_core::chat::AwayNews`]).
fn printed(net: &mut Net, i: usize) -> Vec<String> {
    let me = net.session(i).nick().clone();
    let mut news = natter_core::chat::AwayNews::default();
    let mut out = Vec::new();
    for ev in net.events(i) {
        out.extend(news.lines(ev, &me));
        out.extend(natter_core::render::session_lines(ev, &me));
    }
    out
}

/// Line mode says who is away once per change: the list on joining, someone away joining, a
/// change missed while the connection was down; not the list again at every resume.
#[test]
fn line_mode_says_who_is_away_once_per_change_across_resumes() {
    let mut net = Net::new(Config::default());
    let b = net.add_session("bob", &["#lobby"]);
    net.type_line(b, "/away at lunch");
    let a = net.add_session("alice", &["#lobby"]);
    let count = |net: &mut Net, line: &str| printed(net, a).iter().filter(|l| *l == line).count();
    assert_eq!(count(&mut net, "-- away here: bob (at lunch)"), 1);
    let resumes = |net: &mut Net| {
        net.events(a)
            .iter()
            .filter(|e| matches!(e, Event::Welcome { resumed: true, .. }))
            .count()
    };

    // A resume with nothing changed: nothing more is said.
    let before = printed(&mut net, a).len();
    net.cut(a);
    net.advance(natter_core::Millis(20_000));
    assert_eq!(resumes(&mut net), 1);
    let after = printed(&mut net, a);
    assert!(
        after[before..].iter().all(|l| !l.contains("away")),
        "{:?}",
        &after[before..]
    );

    // A change missed while down is said once.
    net.cut(a);
    net.type_line(b, "/away gone fishing");
    net.advance(natter_core::Millis(20_000));
    assert_eq!(resumes(&mut net), 2);
    assert_eq!(count(&mut net, "-- bob is away: gone fishing"), 1);

    // Back while we were down: said with the next news, before it.
    net.cut(a);
    net.type_line(b, "/back");
    net.advance(natter_core::Millis(20_000));
    assert_eq!(resumes(&mut net), 3);
    net.type_line(b, "hello again");
    let lines = printed(&mut net, a);
    let back = lines.iter().position(|l| l == "-- bob is back");
    let hello = lines.iter().position(|l| l.ends_with("<bob> hello again"));
    assert!(back.is_some() && back < hello, "{lines:?}");

    // Someone away joining is said after the join line.
    let c = net.add_session("carol", &[]);
    net.type_line(c, "/away brb");
    net.type_line(c, "/join #lobby");
    let lines = printed(&mut net, a);
    let join = lines
        .iter()
        .position(|l| l.contains("carol joined #lobby"))
        .expect("carol's join");
    assert_eq!(lines[join + 1], "-- carol is away: brb", "{lines:?}");
}

/// An account signed in on two doors is one person, away on both: set on one door (nc here),
/// the natter client on the other is told it is away too, and `/back` typed in the client is
/// said on nc, as each door says its own. Only the asking connection was told: the client
/// showed nothing while everyone writing to the account was answered that it was away, and
/// after `/back` elsewhere nc still read it as away; a door signing in later is told too.
/// Co-members are told once either way.
#[test]
fn away_set_on_one_door_of_an_account_is_said_on_its_other_doors() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    net.type_line(a, "/register correct horse battery");
    let b = net.add_session("bob", &["#lobby"]);
    let t = net.add_text();
    net.type_line(t, "/login alice correct horse battery");
    assert!(
        net.lines(t)
            .contains(&"-- you are signed in as alice".to_owned()),
        "{:?}",
        net.lines(t)
    );

    net.type_line(t, "/away on the phone");
    assert!(
        net.lines(t)
            .contains(&"-- you are away: on the phone (/back when you are back)".to_owned()),
        "{:?}",
        net.lines(t)
    );
    let mine = "you are away: on the phone (/back when you are back)".to_owned();
    assert!(
        notes(&mut net, a).contains(&mine),
        "the account's other door: {:?}",
        notes(&mut net, a)
    );
    let bob_told =
        |net: &mut Net, words: &str| notes(net, b).iter().filter(|l| l.as_str() == words).count();
    assert_eq!(bob_told(&mut net, "alice is away: on the phone"), 1);

    net.type_line(a, "/back");
    assert!(
        notes(&mut net, a).contains(&"you are back (no longer away)".to_owned()),
        "{:?}",
        notes(&mut net, a)
    );
    assert_eq!(
        net.lines(t).last().map(String::as_str),
        Some("-- you are back (no longer away)"),
        "the account's other door: {:?}",
        net.lines(t)
    );
    assert_eq!(bob_told(&mut net, "alice is back"), 1);

    // Said again with nothing changed: the asker is answered, the other door told nothing.
    let before = net.lines(t).len();
    net.type_line(a, "/back");
    assert_eq!(net.lines(t).len(), before, "{:?}", net.lines(t));

    // A third door signing in while the account is away is told so, as the others were.
    net.type_line(a, "/away in a meeting");
    let n = net.add_text();
    net.type_line(n, "/login alice correct horse battery");
    assert!(
        net.lines(n)
            .contains(&"-- you are away: in a meeting (/back when you are back)".to_owned()),
        "{:?}",
        net.lines(n)
    );
}

/// `/away` alone or `/back` from someone who was not away says so, in line mode and on nc
/// alike: it used to say "you are back (no longer away)", as if something had changed.
/// Nobody else hears of it.
#[test]
fn back_when_not_away_says_nothing_changed() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    let t = net.add_text();
    let said = |net: &mut Net, i: usize| printed(net, i).len();
    let (a0, b0) = (said(&mut net, a), said(&mut net, b));

    net.type_line(a, "/away");
    let lines = printed(&mut net, a);
    assert_eq!(
        lines[a0..],
        [format!("-- {}", natter_core::render::NOT_AWAY)],
        "{lines:?}"
    );
    assert_eq!(
        natter_core::render::NOT_AWAY,
        "you were not away (nothing changed)"
    );
    net.type_line(t, "/back");
    assert_eq!(
        net.lines(t).last().map(String::as_str),
        Some("-- you were not away (nothing changed)")
    );
    let lines = printed(&mut net, b);
    assert!(lines[b0..].iter().all(|l| !l.contains("back")), "{lines:?}");

    // Away and back again is said as before.
    net.type_line(a, "/away lunch");
    net.type_line(a, "/back");
    let lines = printed(&mut net, a);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("-- you are back (no longer away)"),
        "{lines:?}"
    );
}
