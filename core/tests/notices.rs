//! `/notice` as a whole conversation: typed in natter's own client (a Session and its chat
//! model), it reaches other clients as a notice and a person on nc as `-nick- text`; the sender
//! sees its own line settle as a notice; and a notice typed on nc reaches the client as one.

mod harness;

use harness::{Net, nick, room};
use natter_core::chat::{ConvId, LineKind};
use natter_core::hub::Config;
use natter_core::session::Event;
use natter_core::wire::EventKind;

/// The notices (from, text) a session saw in rooms and directly, in order.
fn notices(net: &Net, i: usize) -> Vec<(String, String)> {
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::Room(ev) => match &ev.kind {
                EventKind::Notice { text, .. } => Some((ev.from.to_string(), text.to_string())),
                _ => None,
            },
            Event::DirectNotice(dm) => Some((dm.from.to_string(), dm.text.to_string())),
            _ => None,
        })
        .collect()
}

fn pair(from: &str, text: &str) -> (String, String) {
    (from.to_owned(), text.to_owned())
}

#[test]
fn a_typed_notice_reaches_everyone_as_a_notice() {
    let mut net = Net::new(Config::default());
    let a = net.add_session("alice", &["#lobby"]);
    let b = net.add_session("bob", &["#lobby"]);
    let t = net.add_text();

    net.type_line(a, "/notice #lobby build is green");
    assert_eq!(notices(&net, b), [pair("alice", "build is green")]);
    assert!(
        net.lines(t).contains(&"-alice- build is green".to_owned()),
        "{:?}",
        net.lines(t)
    );
    // The sender: acknowledged, and shown as its own notice.
    assert!(net.session(a).is_settled());
    let last = net.chat(a).current_conv().lines().back().cloned().unwrap();
    assert_eq!(
        last.kind,
        LineKind::UserNotice {
            from: nick("alice"),
            text: natter_core::Text::new("build is green").unwrap(),
        }
    );
    assert!(last.mine);

    net.type_line(a, "/notice bob just you");
    assert_eq!(notices(&net, b).last(), Some(&pair("alice", "just you")));
    assert!(net.session(a).is_settled());
    let line = net
        .chat(a)
        .conv(&ConvId::direct(&nick("bob")))
        .and_then(|c| c.lines().back().cloned())
        .unwrap();
    assert!(line.mine && matches!(line.kind, LineKind::UserNotice { .. }));
    assert_eq!(
        notices(&net, a).len(),
        2,
        "the sender saw each of its two notices once"
    );

    // A notice typed on nc reaches the client as one, in the room and directly.
    net.type_line(t, "/notice #lobby from a terminal");
    net.type_line(t, "/notice alice psst");
    let from_t = notices(&net, a);
    assert_eq!(from_t.len(), 4, "{from_t:?}");
    assert!(from_t[2].0.starts_with("guest") && from_t[2].1 == "from a terminal");
    assert_eq!(from_t[3].1, "psst");
    assert!(net.events(a).iter().any(|e| matches!(e,
        Event::Room(ev) if ev.room == room("#lobby") && matches!(ev.kind, EventKind::Notice { .. })
            && ev.from.as_str().starts_with("guest"))));
}
