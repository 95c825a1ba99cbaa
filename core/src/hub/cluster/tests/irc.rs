//! IRC clients in a cluster: a JOIN completes when its event comes back through the room's log,
//! after the line that asked for it has ended. What it shows must still be what a single node
//! shows: no history as live lines to a client that cannot tell it is history (old joins,
//! kicks and lines would look as if they happened now, and old joins would put people in its
//! member list), the history in a `chathistory` batch for a client that asked for server-time
//! and batch, and NAMES marking the operators that are on other nodes. And the founder's `/op`
//! of a guest on another node is refused as a guest's ("not signed in"), not as nobody's.

use super::accounts::{PW, ask, error, guest, net, register, settle};
use super::*;
use crate::wire::ModAction;

/// Sends `lines` as IRC client `c` on node `i`; what it got back, as text.
fn irc_says(net: &mut Net, i: usize, c: ConnId, lines: &str) -> String {
    net.nodes[i].raw.remove(&c);
    let now = net.now;
    net.nodes[i].hub.handle_bytes(c, lines.as_bytes(), now);
    settle(net);
    raw_text(net, i, c)
}

/// An IRC client on node `i` registered as `nick`, having asked for `caps` (none if empty).
fn irc_client(net: &mut Net, i: usize, nick: &str, caps: &str) -> ConnId {
    let now = net.now;
    let c = net.nodes[i]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let mut lines = String::new();
    if !caps.is_empty() {
        lines.push_str(&format!("CAP LS 302\r\nCAP REQ :{caps}\r\n"));
    }
    lines.push_str(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"));
    if !caps.is_empty() {
        lines.push_str("CAP END\r\n");
    }
    let text = irc_says(net, i, c, &lines);
    assert!(text.contains(&format!(" 001 {nick} ")), "{text}");
    c
}

/// bob (binary) on node 0 in `#r`, where he joined and said `words`.
fn bob_said(net: &mut Net, words: &str) -> ConnId {
    let (b, _) = guest(net, 0, "bob");
    ask(net, 0, b, &ClientMsg::Join { room: room("#r") });
    ask(net, 0, b, &say(1, words));
    net.recv(0, b);
    b
}

/// alice (binary) on node 0, registered, in `#r` and its founder.
fn founder_of_r(net: &mut Net) -> (ConnId, Nick) {
    let (a, n) = guest(net, 0, "alice");
    register(net, 0, a, PW, false);
    ask(net, 0, a, &ClientMsg::Join { room: room("#r") });
    ask(
        net,
        0,
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Register,
        },
    );
    net.recv(0, a);
    (a, n)
}

#[test]
fn a_join_through_the_log_shows_no_history_as_live_lines_to_a_plain_irc_client() {
    let mut net = net(2);
    let b = bob_said(&mut net, "said before carol came");
    let c = irc_client(&mut net, 1, "carol", "");
    let text = irc_says(&mut net, 1, c, "JOIN #r\r\n");
    assert!(text.contains(":carol!carol@natter JOIN #r"), "{text}");
    assert!(text.contains(" 353 carol = #r :"), "{text}");
    assert!(text.contains(" 366 carol #r "), "{text}");
    assert!(
        !text.contains("said before carol came"),
        "history as a live line: {text}"
    );
    assert!(
        !text.contains(":bob!bob@natter JOIN"),
        "an old join as a live one: {text}"
    );
    // What is said from now on comes live.
    net.nodes[1].raw.remove(&c);
    ask(&mut net, 0, b, &say(2, "said after"));
    let text = raw_text(&net, 1, c);
    assert!(
        text.contains(":bob!bob@natter PRIVMSG #r :said after"),
        "{text}"
    );
}

#[test]
fn a_join_through_the_log_brings_the_history_in_a_batch_to_a_client_that_asked() {
    let mut net = net(2);
    bob_said(&mut net, "said before carol came");
    let c = irc_client(&mut net, 1, "carol", "server-time batch");
    let text = irc_says(&mut net, 1, c, "JOIN #r\r\n");
    let open = text
        .lines()
        .find(|l| l.contains("BATCH +h") && l.ends_with("chathistory #r"))
        .unwrap_or_else(|| panic!("no chathistory batch: {text}"));
    let id = open
        .split_whitespace()
        .nth(2)
        .and_then(|b| b.strip_prefix('+'))
        .unwrap_or_else(|| panic!("{open}"));
    let line = text
        .lines()
        .find(|l| l.ends_with("PRIVMSG #r :said before carol came"))
        .unwrap_or_else(|| panic!("no history line: {text}"));
    assert!(line.starts_with(&format!("@batch={id};time=")), "{line}");
    assert!(text.contains(&format!("BATCH -{id}")), "{text}");
    // Past joins are not history an IRC client is shown (its member list comes from NAMES).
    assert!(!text.contains(":bob!bob@natter JOIN"), "{text}");
}

#[test]
fn names_marks_an_operator_on_another_node() {
    let mut net = net(2);
    founder_of_r(&mut net);
    let c = irc_client(&mut net, 1, "carol", "");
    let text = irc_says(&mut net, 1, c, "JOIN #r\r\n");
    let names = text
        .lines()
        .find(|l| l.contains(" 353 carol = #r :"))
        .unwrap_or_else(|| panic!("no NAMES: {text}"));
    assert!(
        names.contains("@alice"),
        "the founder is an operator: {names}"
    );
    let text = irc_says(&mut net, 1, c, "NAMES #r\r\n");
    assert!(text.contains("@alice"), "{text}");
}

#[test]
fn a_guest_on_another_node_made_an_operator_is_refused_as_a_guest_not_as_nobody() {
    let mut net = net(2);
    let (a, _) = founder_of_r(&mut net);
    let c = irc_client(&mut net, 1, "carol", "");
    irc_says(&mut net, 1, c, "JOIN #r\r\n");
    ask(
        &mut net,
        0,
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Op(nick("carol")),
        },
    );
    let (_, why) = error(&net.recv(0, a)).expect("refused");
    assert!(why.contains("carol is not signed in"), "{why}");
    assert!(!why.contains("nobody"), "{why}");
}
