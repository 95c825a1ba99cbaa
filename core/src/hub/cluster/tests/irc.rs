//! IRC clients in a cluster: a JOIN completes when its event comes back through the room's log,
//! after the line that asked for it has ended. What it shows must still be what a single node
//! shows: no history as live lines to a client that cannot tell it is history (old joins,
//! kicks and lines would look as if they happened now, and old joins would put people in its
//! member list), the history in a `chathistory` batch for a client that asked for server-time
//! and batch, and NAMES marking the operators that are on other nodes. And the founder's `/op`
//! of a guest on another node is refused as a guest's ("not signed in"), not as nobody's.
//! A JOIN or NICK answered late is still its line's answer: its refusal names the command, and
//! a labeled one gets its answer inside its `labeled-response` batch.

use super::accounts::{PW, ask, error, guest, net, register, settle};
use super::rooms::later;
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

/// The lines of `text` with no MOTD or other chatter: only those of the answer asked.
fn lines_of(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn a_join_refused_by_the_log_is_refused_as_a_join() {
    let mut net = net(2);
    bob_said(&mut net, "hello");
    let c = irc_client(&mut net, 1, "carol", "");
    net.refuse = true;
    let text = irc_says(&mut net, 1, c, "JOIN #r\r\n");
    // The refusal comes after the JOIN's line ended (the log answered later): it still
    // names the command the client sent, as any refusal of it does.
    assert!(
        text.contains(" 400 carol JOIN :the cluster is unavailable"),
        "{text}"
    );
    assert!(!text.contains(" * :"), "{text}");
}

#[test]
fn a_labeled_join_answered_through_the_log_keeps_its_label() {
    let mut net = net(2);
    bob_said(&mut net, "said before carol came");
    let c = irc_client(&mut net, 1, "carol", "batch labeled-response");
    let text = irc_says(&mut net, 1, c, "@label=j1 JOIN #r\r\n");
    let l = lines_of(&text);
    let id = l[0]
        .strip_prefix("@label=j1 :natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{l:?}"));
    // The JOIN's answer, late as it is, is the batch's: the JOIN, its names, then the end.
    assert_eq!(
        l[1],
        format!("@batch={id} :carol!carol@natter JOIN #r"),
        "{l:?}"
    );
    assert!(
        l[1..l.len() - 1]
            .iter()
            .all(|x| x.starts_with(&format!("@batch={id} "))),
        "{l:?}"
    );
    assert!(l.iter().any(|x| x.contains(" 366 carol #r ")), "{l:?}");
    assert_eq!(
        l.last().unwrap(),
        &format!(":natter.irc BATCH -{id}"),
        "{l:?}"
    );
    assert_eq!(
        l.iter().filter(|x| x.contains("BATCH -")).count(),
        1,
        "one end, after the answer: {l:?}"
    );
}

#[test]
fn a_labeled_join_of_two_channels_answers_both_in_its_batch() {
    let mut net = net(2);
    bob_said(&mut net, "hello");
    let c = irc_client(&mut net, 1, "carol", "batch labeled-response");
    let text = irc_says(&mut net, 1, c, "@label=j2 JOIN #r,#s\r\n");
    let l = lines_of(&text);
    let id = l[0]
        .strip_prefix("@label=j2 :natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{l:?}"));
    for chan in ["#r", "#s"] {
        let join = format!("@batch={id} :carol!carol@natter JOIN {chan}");
        assert!(l.contains(&join.as_str()), "{join} in {l:?}");
    }
    assert_eq!(
        l.last().unwrap(),
        &format!(":natter.irc BATCH -{id}"),
        "{l:?}"
    );
    // A line sent after it is answered after it, on its own.
    let text = irc_says(&mut net, 1, c, "@label=p1 PING :x\r\n");
    assert!(text.starts_with("@label=p1 "), "{text}");
}

#[test]
fn a_labeled_join_refused_by_the_log_is_refused_in_its_batch() {
    let mut net = net(2);
    bob_said(&mut net, "hello");
    let c = irc_client(&mut net, 1, "carol", "batch labeled-response");
    net.refuse = true;
    let text = irc_says(&mut net, 1, c, "@label=j3 JOIN #r\r\n");
    let l = lines_of(&text);
    let id = l[0]
        .strip_prefix("@label=j3 :natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{l:?}"));
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(
        l[1].starts_with(&format!("@batch={id} :natter.irc 400 carol JOIN :")),
        "{l:?}"
    );
    assert_eq!(l[2], format!(":natter.irc BATCH -{id}"), "{l:?}");
}

#[test]
fn a_labeled_nick_change_decided_by_the_cluster_carries_its_label() {
    let mut net = net(2);
    let c = irc_client(&mut net, 1, "carol", "batch labeled-response");
    let text = irc_says(&mut net, 1, c, "@label=n1 NICK dave\r\n");
    // The answer, one line once the cluster has decided: the label on it, no batch.
    assert_eq!(
        lines_of(&text),
        ["@label=n1 :carol!carol@natter NICK :dave"],
        "{text}"
    );
}

#[test]
fn a_line_or_a_direct_message_refused_after_its_line_names_its_command_and_target() {
    let mut net = net(2);
    bob_said(&mut net, "hello");
    let c = irc_client(&mut net, 1, "carol", "");
    irc_says(&mut net, 1, c, "JOIN #r\r\n");
    // Nobody in the cluster is called nobody: the node holding nicks says so, after the line.
    let text = irc_says(&mut net, 1, c, "PRIVMSG nobody :hi\r\n");
    assert!(text.contains(" 401 carol nobody :"), "{text}");
    // The log refuses a line after the PRIVMSG's line ended.
    net.refuse = true;
    let text = irc_says(&mut net, 1, c, "PRIVMSG #r :lost\r\n");
    assert!(
        text.contains(" 400 carol PRIVMSG :the cluster is unavailable"),
        "{text}"
    );
}

#[test]
fn a_labeled_message_answered_through_the_log_keeps_its_label() {
    let mut net = net(2);
    bob_said(&mut net, "hello");
    let c = irc_client(
        &mut net,
        1,
        "carol",
        "batch labeled-response echo-message message-tags",
    );
    irc_says(&mut net, 1, c, "JOIN #r\r\n");
    // The echo is the answer, as on one node: it carries the label, and there is no ACK.
    let text = irc_says(&mut net, 1, c, "@label=m1 PRIVMSG #r :hi all\r\n");
    let l = lines_of(&text);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].starts_with("@label=m1;msgid="), "{l:?}");
    assert!(l[0].ends_with(" PRIVMSG #r :hi all"), "{l:?}");
    // A refusal from the log is the answer.
    net.refuse = true;
    let text = irc_says(&mut net, 1, c, "@label=m2 PRIVMSG #r :lost\r\n");
    let l = lines_of(&text);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@label=m2 :natter.irc 400 carol PRIVMSG :"),
        "{l:?}"
    );
}

#[test]
fn a_labeled_direct_message_answered_by_the_cluster_keeps_its_label() {
    let mut net = net(2);
    let c = irc_client(&mut net, 1, "carol", "batch labeled-response");
    // Nobody has the nick: the node holding nicks answers, after the line, with the label.
    let text = irc_says(&mut net, 1, c, "@label=d1 PRIVMSG nobody :x\r\n");
    let l = lines_of(&text);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@label=d1 :natter.irc 401 carol nobody "),
        "{l:?}"
    );
    // Delivered on another node: acknowledged then (no echo-message), and bob has it.
    let (b, _) = guest(&mut net, 0, "bob");
    let text = irc_says(&mut net, 1, c, "@label=d2 PRIVMSG bob :hi bob\r\n");
    assert_eq!(lines_of(&text), ["@label=d2 :natter.irc ACK"]);
    assert!(
        net.recv(0, b)
            .iter()
            .any(|m| matches!(m, ServerMsg::Direct(dm) if dm.text.as_str() == "hi bob"))
    );
}

#[test]
fn a_labeled_message_without_echo_is_acknowledged_once_the_log_has_it() {
    let mut net = net(2);
    bob_said(&mut net, "hello");
    let c = irc_client(&mut net, 1, "carol", "batch labeled-response");
    irc_says(&mut net, 1, c, "JOIN #r\r\n");
    let text = irc_says(&mut net, 1, c, "@label=m1 PRIVMSG #r :hi all\r\n");
    assert_eq!(lines_of(&text), ["@label=m1 :natter.irc ACK"]);
}

/// `+v` of a member on another node voices it; of someone on another node who is not in the
/// room, `NotInRoom` (IRC's `441`); of a nick nobody has anywhere, `NoSuchNick` (`401`).
#[test]
fn voicing_someone_on_another_node_needs_them_in_the_room() {
    let mut net = net(2);
    let (a, _) = founder_of_r(&mut net);
    let c = irc_client(&mut net, 1, "carol", "");
    irc_says(&mut net, 1, c, "JOIN #r\r\n");
    irc_client(&mut net, 1, "dave", "");
    let voice = |who: &str| ClientMsg::Moderate {
        room: room("#r"),
        action: ModAction::Voice(nick(who)),
    };
    ask(&mut net, 0, a, &voice("carol"));
    let got = net.recv(0, a);
    assert!(error(&got).is_none(), "{got:?}");
    ask(&mut net, 0, a, &voice("dave"));
    let (kind, why) = error(&net.recv(0, a)).expect("refused");
    assert_eq!(
        (kind, why.as_str()),
        (ErrorKind::NotInRoom, "dave is not in #r")
    );
    ask(&mut net, 0, a, &voice("nobody"));
    let (kind, _) = error(&net.recv(0, a)).expect("refused");
    assert_eq!(kind, ErrorKind::NoSuchNick);
}

/// A `PRIVMSG`'s client-only tags in a cluster: the room's log holds the event only, so they
/// reach the members with message-tags on the sender's node (its echo too), not those on
/// another node, who get the line untagged.
#[test]
fn a_privmsgs_client_only_tags_reach_members_on_the_senders_node_only() {
    let mut net = net(2);
    let caps = "message-tags echo-message";
    let a = irc_client(&mut net, 0, "ann", caps);
    let b = irc_client(&mut net, 0, "ben", "message-tags");
    let c = irc_client(&mut net, 1, "cal", "message-tags");
    for (i, x) in [(0, a), (0, b), (1, c)] {
        irc_says(&mut net, i, x, "JOIN #t\r\n");
    }
    net.nodes[0].raw.remove(&b);
    net.nodes[1].raw.remove(&c);
    let echo = irc_says(&mut net, 0, a, "@+draft/reply=t/1 PRIVMSG #t :tagged\r\n");
    let said = " :ann!ann@natter PRIVMSG #t :tagged";
    assert!(
        echo.starts_with("@+draft/reply=t/1;msgid=") && echo.trim_end().ends_with(said),
        "{echo}"
    );
    let here = raw_text(&net, 0, b);
    assert!(
        here.starts_with("@+draft/reply=t/1;msgid=") && here.trim_end().ends_with(said),
        "{here}"
    );
    let there = raw_text(&net, 1, c);
    assert!(
        there.starts_with("@msgid=") && there.trim_end().ends_with(said),
        "{there}"
    );
}

/// A `TAGMSG` to someone on another node reaches it there, as a `PRIVMSG` does (until the
/// thirtieth session it went nowhere), with the sender's echo here (echo-message), nothing
/// for a receiver without message-tags, and no `401`. One to nobody at all is `401`.
#[test]
fn a_tagmsg_to_someone_on_another_node_arrives_there() {
    let mut net = net(2);
    let a = irc_client(&mut net, 0, "ann", "message-tags");
    let c = irc_client(&mut net, 1, "cal", "message-tags");
    let p = irc_client(&mut net, 1, "pat", "server-time");
    net.nodes[1].raw.remove(&c);
    net.nodes[1].raw.remove(&p);
    let text = irc_says(&mut net, 0, a, "@+typing=active TAGMSG cal,pat\r\n");
    assert_eq!(text, "", "{text}");
    let there = raw_text(&net, 1, c);
    assert!(
        there.starts_with("@+typing=active;msgid=~ann/")
            && there.ends_with(" :ann!ann@natter TAGMSG cal\r\n"),
        "{there}"
    );
    assert_eq!(raw_text(&net, 1, p), "", "no message-tags: nothing");
    let e = irc_client(&mut net, 0, "eve", "message-tags echo-message");
    let text = irc_says(&mut net, 0, e, "@+typing=paused TAGMSG cal\r\n");
    assert!(
        text.starts_with("@+typing=paused;msgid=~eve/") && text.ends_with(" TAGMSG cal\r\n"),
        "the echo: {text}"
    );
    let text = irc_says(&mut net, 0, a, "@+typing=active TAGMSG nobody\r\n");
    assert!(text.contains(" 401 ann nobody "), "{text}");
}

/// What an IRC client sends with its registration, in the same read, is read once the nick's
/// claim is answered, as a single node reads it: a `JOIN` sent with `NICK` and `USER` joins
/// (not 451); after a refused nick, a new `NICK` in the same read registers.
#[test]
fn lines_sent_with_the_registration_wait_for_the_nick_claim() {
    let mut net = Net::new(2);
    let now = net.now;
    let c = net.nodes[0]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let lines = "NICK erin\r\nUSER e 0 * :Erin\r\nJOIN #r\r\nWHOIS erin\r\n";
    net.nodes[0].hub.handle_bytes(c, lines.as_bytes(), now);
    net.pump();
    let got =
        String::from_utf8_lossy(&net.nodes[0].raw.remove(&c).unwrap_or_default()).into_owned();
    assert!(got.contains(" 001 erin "), "{got}");
    assert!(!got.contains(" 451 "), "{got}");
    assert!(got.contains(":erin!") && got.contains(" JOIN #r"), "{got}");
    assert!(got.contains(" 311 erin erin "), "{got}");
    // Node 1: the nick is taken; the second NICK in the same read registers.
    let now = net.now;
    let d = net.nodes[1]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let lines = "NICK erin\r\nUSER e 0 * :Erin\r\nNICK fay\r\nJOIN #r\r\n";
    net.nodes[1].hub.handle_bytes(d, lines.as_bytes(), now);
    net.pump();
    let got =
        String::from_utf8_lossy(&net.nodes[1].raw.remove(&d).unwrap_or_default()).into_owned();
    assert!(got.contains(" 433 * erin "), "{got}");
    assert!(got.contains(" 001 fay "), "{got}");
    assert!(!got.contains(" 451 "), "{got}");
    assert!(got.contains(":fay!") && got.contains(" JOIN #r"), "{got}");
}

/// The founder alice (see [`founder_of_r`]) on node 0 with an IRC client too, signed in and in
/// `#r`; bob and carol, IRC guests on node 1, in `#r`; carol's lines so far read.
fn irc_op_and_two_on_another_node(net: &mut Net) -> (ConnId, ConnId, ConnId) {
    use base64::Engine;
    let (a, _) = founder_of_r(net);
    let now = net.now;
    let o = net.nodes[0]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{PW}"));
    let login = format!(
        "CAP LS 302\r\nNICK alice\r\nUSER a 0 * :A\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n\
         AUTHENTICATE {plain}\r\nCAP END\r\nJOIN #r\r\n"
    );
    let text = irc_says(net, 0, o, &login);
    assert!(text.contains(" 903 "), "signed in: {text}");
    let b = irc_client(net, 1, "bob", "");
    irc_says(net, 1, b, "JOIN #r\r\n");
    let c = irc_client(net, 1, "carol", "");
    irc_says(net, 1, c, "JOIN #r\r\n");
    net.recv(0, a);
    net.nodes[1].raw.remove(&c);
    (o, b, c)
}

/// The `KICK` lines in `text`.
fn kick_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains(" KICK ")).collect()
}

/// An IRC operator's `/kickban` of a member on another node: WeeChat sends `MODE #r +b bob`,
/// then two seconds later `KICK #r bob :go away`. The ban reaches bob's node at once; until the
/// forty-third session's review that node put bob out as "banned" then and there, and the KICK
/// put him out a second time, so the room saw two KICKs. bob's node waits as the operator's
/// does (`BAN_KICK_WAIT`): the room sees one KICK, with the operator's reason; bob says nothing
/// meanwhile but is still in the room.
#[test]
fn a_kickban_of_a_member_on_another_node_kicks_once_with_its_reason() {
    let mut net = net(2);
    let (o, b, c) = irc_op_and_two_on_another_node(&mut net);
    irc_says(&mut net, 0, o, "MODE #r +b bob!*@*\r\n");
    let said = irc_says(&mut net, 1, b, "PRIVMSG #r :still here\r\n");
    assert!(
        said.contains(" 404 bob #r "),
        "held, bob cannot speak: {said}"
    );
    later(&mut net, 2_000);
    assert_eq!(kick_lines(&raw_text(&net, 1, c)), Vec::<&str>::new());
    irc_says(&mut net, 0, o, "KICK #r bob :go away\r\n");
    later(&mut net, crate::limits::BAN_KICK_WAIT.0);
    let seen = raw_text(&net, 1, c);
    let kicks = kick_lines(&seen);
    assert_eq!(kicks.len(), 1, "one KICK: {seen}");
    assert!(
        kicks[0].starts_with(":alice!") && kicks[0].ends_with("KICK #r bob :go away"),
        "{seen}"
    );
}

/// A ban from another node with no KICK after it puts bob out as "banned", `BAN_KICK_WAIT`
/// after it came and not before; a `-b` meanwhile lets carol stay.
#[test]
fn a_ban_from_another_node_puts_out_after_the_wait_unless_lifted() {
    let mut net = net(2);
    let (o, b, c) = irc_op_and_two_on_another_node(&mut net);
    irc_says(&mut net, 0, o, "MODE #r +b bob!*@*\r\n");
    later(&mut net, crate::limits::BAN_KICK_WAIT.0 - 1);
    assert_eq!(kick_lines(&raw_text(&net, 1, c)), Vec::<&str>::new());
    later(&mut net, 1);
    let seen = raw_text(&net, 1, c);
    let kicks = kick_lines(&seen);
    assert_eq!(kicks.len(), 1, "{seen}");
    assert!(kicks[0].ends_with("KICK #r bob :banned"), "{seen}");
    assert!(raw_text(&net, 1, b).contains("KICK #r bob :banned"));

    irc_says(&mut net, 0, o, "MODE #r +b carol!*@*\r\n");
    later(&mut net, 1_000);
    irc_says(&mut net, 0, o, "MODE #r -b carol!*@*\r\n");
    later(&mut net, crate::limits::BAN_KICK_WAIT.0);
    let seen = raw_text(&net, 1, c);
    assert_eq!(kick_lines(&seen).len(), 1, "carol stays: {seen}");
    let said = irc_says(&mut net, 1, c, "PRIVMSG #r :still here\r\n");
    assert!(!said.contains(" 404 "), "{said}");
}

/// The same `/kickban` of a member on the operator's own node in a cluster: one KICK, with
/// its reason (the ban's news coming back to that node puts nobody out before it).
#[test]
fn a_kickban_of_a_member_on_the_operators_node_kicks_once_with_its_reason() {
    let mut net = net(2);
    let (o, _, c) = irc_op_and_two_on_another_node(&mut net);
    let d = irc_client(&mut net, 0, "dan", "");
    irc_says(&mut net, 0, d, "JOIN #r\r\n");
    net.nodes[1].raw.remove(&c);
    irc_says(&mut net, 0, o, "MODE #r +b dan!*@*\r\n");
    later(&mut net, 2_000);
    irc_says(&mut net, 0, o, "KICK #r dan :go away\r\n");
    later(&mut net, crate::limits::BAN_KICK_WAIT.0);
    let seen = raw_text(&net, 1, c);
    let kicks = kick_lines(&seen);
    assert_eq!(kicks.len(), 1, "one KICK: {seen}");
    assert!(kicks[0].ends_with("KICK #r dan :go away"), "{seen}");
}
