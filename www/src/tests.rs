//! The shapes the page reads (www/static/app.js), checked with serde_json: it sees the same serde
//! data model that serde-wasm-bindgen turns into JS objects. Calls that cross into JS only work
//! in a browser; the browser test covers those.

use super::*;
use natter_core::limits::LOST_REGISTRATION_CHECKS;
use natter_core::types::{MsgId, Text};
use natter_core::wire::{EventKind, Limits, Re, RoomEvent, ServerMsg};
use serde_json::json;

fn nick(s: &str) -> Nick {
    Nick::new(s).unwrap()
}

fn say(from: &str, seq: u64, text: &str) -> Event {
    Event::Room(RoomEvent {
        room: RoomName::lobby(),
        seq: Seq(seq),
        at: Millis(1_700_000_000_000),
        from: nick(from),
        kind: EventKind::Say {
            id: MsgId(seq),
            text: Text::new(text).unwrap(),
        },
    })
}

/// `webby` in #lobby with bob, every change read.
fn chat() -> Chat {
    let mut c = Chat::new(nick("webby"));
    c.handle_event(&Event::State(ConnState::Connected), Millis(0));
    c.handle_event(
        &Event::Joined {
            room: RoomName::lobby(),
            topic: None,
            members: vec![nick("webby"), nick("bob")],
            seq: Seq(1),
        },
        Millis(0),
    );
    while c.poll_change().is_some() {}
    c
}

fn changes(c: &mut Chat) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Some(ch) = c.poll_change() {
        out.push(serde_json::to_value(ChangeView::of(&ch, c)).unwrap());
    }
    out
}

#[test]
fn nick_errors_come_from_core_in_words() {
    assert_eq!(nick_error("alice"), None);
    assert_eq!(nick_error("  alice "), None);
    assert!(nick_error("").unwrap().contains("empty"));
    assert!(
        nick_error("9lives")
            .unwrap()
            .contains("starts with a letter")
    );
    assert!(nick_error(&"a".repeat(40)).unwrap().contains("at most"));
}

#[test]
fn clock_values_saturate() {
    assert_eq!(millis(-5.0), Millis(0));
    assert_eq!(millis(f64::NAN), Millis(0));
    assert_eq!(millis(1_700_000_000_123.9), Millis(1_700_000_000_123));
    assert_eq!(millis(f64::INFINITY), Millis(u64::MAX));
}

#[test]
fn a_line_with_a_mention_says_where_in_js_string_units() {
    let mut c = chat();
    // "é" is 2 bytes in UTF-8 but one UTF-16 unit, "😀" 4 bytes and two units.
    c.handle_event(&say("bob", 2, "é😀 WEBBY <b>"), Millis(0));
    let got = changes(&mut c);
    assert_eq!(
        got,
        [json!({
            "type": "line", "key": "#lobby",
            "line": {
                "id": 2.0, "at": 1_700_000_000_000.0, "seq": 2.0, "kind": "say",
                "from": "bob", "text": "é😀 WEBBY <b>", "mine": false, "mention": true,
                "spans": [[4, 9]]
            }
        })]
    );
    assert_eq!("é😀 ".encode_utf16().count(), 4);
}

#[test]
fn a_notice_is_a_said_notice_line_with_its_sender() {
    let mut c = chat();
    c.handle_event(
        &Event::Room(RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(2),
            at: Millis(1_700_000_000_000),
            from: nick("bot"),
            kind: EventKind::Notice {
                id: MsgId(1),
                text: Text::new("build passed").unwrap(),
            },
        }),
        Millis(0),
    );
    let got = changes(&mut c);
    let line = got.iter().find(|v| v["type"] == "line").unwrap();
    assert_eq!(line["line"]["kind"], json!("said-notice"));
    assert_eq!(line["line"]["from"], json!("bot"));
    assert_eq!(line["line"]["text"], json!("build passed"));
}

#[test]
fn member_changes_carry_the_row_to_touch() {
    let mut c = chat();
    c.handle_event(
        &Event::Room(RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(2),
            at: Millis(0),
            from: nick("aaron"),
            kind: EventKind::Join,
        }),
        Millis(0),
    );
    c.handle_event(
        &Event::Room(RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(3),
            at: Millis(0),
            from: nick("bob"),
            kind: EventKind::Quit { reason: None },
        }),
        Millis(0),
    );
    let got = changes(&mut c);
    let members: Vec<&serde_json::Value> = got.iter().filter(|v| v["type"] != "line").collect();
    assert_eq!(
        members,
        [
            &json!({"type": "memberAdded", "key": "#lobby", "index": 0, "nick": "aaron"}),
            &json!({"type": "memberRemoved", "key": "#lobby", "index": 1}),
        ]
    );
    let words: Vec<&str> = got
        .iter()
        .filter_map(|v| v["line"]["text"].as_str())
        .collect();
    assert_eq!(words, ["aaron joined #lobby", "bob quit"]);
}

#[test]
fn counts_outgoing_and_conversations_have_the_shape_the_page_reads() {
    let mut c = chat();
    c.set_attention(false);
    c.handle_event(&say("bob", 2, "hi"), Millis(0));
    c.handle_event(
        &Event::Queued {
            id: MsgId(7),
            to: natter_core::session::Target::Room(RoomName::lobby()),
            kind: natter_core::session::ChatKind::Act,
            text: Text::new("waves").unwrap(),
        },
        Millis(5),
    );
    let got = changes(&mut c);
    assert!(got.contains(&json!({"type": "counts", "key": "#lobby", "unread": 1, "mentions": 0})));
    let outgoing = got.iter().find(|v| v["type"] == "outgoing").unwrap();
    assert_eq!(outgoing["lines"][0]["id"], json!(7.0));
    assert_eq!(outgoing["lines"][0]["pending"], json!(false));
    assert_eq!(outgoing["lines"][0]["line"]["kind"], json!("act"));
    assert_eq!(outgoing["lines"][0]["line"]["mine"], json!(true));
    let conv = serde_json::to_value(ConvView::of(c.current_conv(), &c)).unwrap();
    assert_eq!(conv["key"], json!("#lobby"));
    assert_eq!(conv["kind"], json!("room"));
    assert_eq!(conv["members"], json!(["bob", "webby"]));
    assert_eq!(conv["outgoing"].as_array().unwrap().len(), 1);
    assert!(conv.get("topic").is_none(), "absent, not null");
    let summary = serde_json::to_value(ConvSummary::of(c.current_conv())).unwrap();
    assert_eq!(
        summary,
        json!({"key": "#lobby", "label": "#lobby", "kind": "room", "unread": 1, "mentions": 0})
    );
    let conn = serde_json::to_value(ConnView::of(&c, None)).unwrap();
    assert_eq!(conn, json!({"state": "connected", "everConnected": false}));
}

#[test]
fn a_line_trimmed_before_it_was_read_asks_for_a_redraw() {
    let mut c = chat();
    for i in 0..natter_core::limits::CHAT_MAX_LINES + 5 {
        c.handle_event(&say("bob", i as u64 + 2, "x"), Millis(0));
    }
    let first = c.poll_change().unwrap();
    let view = ChangeView::of(&first, &c);
    assert_eq!(view, ChangeView::All, "{first:?}");
}

fn past(seq: u64, text: &str) -> RoomEvent {
    let Event::Room(ev) = say("bob", seq, text) else {
        unreachable!("say makes a room event")
    };
    ev
}

#[test]
fn older_lines_say_what_they_go_before_and_the_top_of_the_log_what_it_shows() {
    let mut c = chat();
    c.handle_event(&say("bob", 10, "ten"), Millis(0));
    // Older lines go above everything the room's log holds, the note of our joining included
    // (it marks where this visit began, which is after them).
    let first = c.current_conv().lines().front().unwrap().id.0 as f64;
    let ten = c.current_conv().lines().back().unwrap().id.0 as f64;
    assert!(first < ten);
    c.handle_event(
        &Event::Older {
            room: RoomName::lobby(),
        },
        Millis(0),
    );
    // (A change's view is the model as it is when read: read each step's.)
    let got = changes(&mut c);
    assert_eq!(
        got[0],
        json!({"type": "line", "key": "#lobby", "line": got[0]["line"]})
    );
    assert_eq!(
        got[1],
        json!({"type": "scrollback", "key": "#lobby", "scrollback": {
            "state": "loading", "text": "loading older lines…"}})
    );
    c.handle_event(
        &Event::Past {
            room: RoomName::lobby(),
            events: vec![past(8, "eight"), past(9, "nine")],
            at_start: true,
            oldest: Some(Seq(8)),
        },
        Millis(0),
    );
    let got = changes(&mut c);
    assert_eq!(got[0]["type"], json!("prepended"));
    assert_eq!(got[0]["before"], json!(first));
    let texts: Vec<&str> = got[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["eight", "nine"]);
    // Nothing older is kept, though the room began before seq 8.
    assert_eq!(
        got[1],
        json!({"type": "scrollback", "key": "#lobby", "scrollback": {
            "state": "gone", "text": "older lines of #lobby are no longer kept"}})
    );
    let conv = serde_json::to_value(ConvView::of(c.current_conv(), &c)).unwrap();
    assert_eq!(conv["scrollback"]["state"], json!("gone"));
}

#[test]
fn a_search_has_the_shape_the_panel_reads() {
    let mut c = chat();
    let words = Text::new("nine").unwrap();
    c.handle_event(
        &Event::Search {
            room: None,
            words: words.clone(),
        },
        Millis(0),
    );
    assert_eq!(changes(&mut c), [json!({"type": "search"})]);
    c.handle_event(
        &Event::Found {
            room: None,
            words,
            hits: vec![past(9, "nine, webby")],
            more: false,
        },
        Millis(0),
    );
    let got = changes(&mut c);
    assert_eq!(got, [json!({"type": "search"})]);
    let view = serde_json::to_value(SearchView::of(c.search().unwrap(), c.me())).unwrap();
    assert_eq!(
        view["title"],
        json!("1 result for \"nine\" in all your rooms")
    );
    assert_eq!(view["state"], json!("done"));
    assert!(view.get("room").is_none());
    let hit = &view["hits"][0];
    assert_eq!(hit["room"], json!("#lobby"));
    assert_eq!(hit["line"]["from"], json!("bob"));
    assert_eq!(hit["line"]["text"], json!("nine, webby"));
    assert_eq!(hit["line"]["spans"], json!([[6, 11]]));
    assert_eq!(
        hit["words"],
        json!("[#lobby 2023-11-14 22:13] <bob> nine, webby")
    );
    // Cut at the server's 50: the panel's title says older matches were left out.
    let words = Text::new("nine").unwrap();
    c.handle_event(
        &Event::Search {
            room: None,
            words: words.clone(),
        },
        Millis(0),
    );
    c.handle_event(
        &Event::Found {
            room: None,
            words,
            hits: vec![past(9, "nine, webby")],
            more: true,
        },
        Millis(0),
    );
    let view = serde_json::to_value(SearchView::of(c.search().unwrap(), c.me())).unwrap();
    assert_eq!(
        view["title"],
        json!(
            "1 result for \"nine\" in all your rooms; showing the newest 50 matches; narrow the words to see older ones"
        )
    );
}

#[test]
fn a_kept_session_round_trips_as_plain_data_and_damage_is_refused() {
    let r = Resumable {
        nick: nick("pat"),
        token: ResumeToken(core::array::from_fn(|i| i as u8)),
        rooms: vec![
            (RoomName::lobby(), Seq(12)),
            (RoomName::new("#rust").unwrap(), Seq(0)),
        ],
        last_id: MsgId(7),
        keys: vec![(
            RoomName::new("#rust").unwrap(),
            Text::new("sesame").unwrap(),
        )],
    };
    let kept = KeptSession::of(&r);
    assert_eq!(
        serde_json::to_value(&kept).unwrap(),
        json!({
            "nick": "pat",
            "token": hex32(&r.token.0),
            "rooms": ["#lobby", "#rust"],
            "seqs": [12.0, 0.0],
            "keys": ["", "sesame"],
            "lastId": 7.0,
        })
    );
    assert_eq!(kept.resumable(), Ok(r.clone()));
    let damaged = KeptSession {
        token: "00".into(),
        ..KeptSession::of(&Resumable {
            nick: nick("pat"),
            token: ResumeToken([1; 32]),
            rooms: Vec::new(),
            last_id: MsgId(0),
            keys: Vec::new(),
        })
    };
    assert!(damaged.resumable().is_err());
    let bad_room = KeptSession {
        rooms: vec!["#not a room".into()],
        seqs: vec![1.0],
        ..KeptSession::of(&Resumable {
            nick: nick("pat"),
            token: ResumeToken([1; 32]),
            rooms: Vec::new(),
            last_id: MsgId(0),
            keys: Vec::new(),
        })
    };
    assert!(bad_room.resumable().is_err());
    let unmatched = KeptSession {
        seqs: Vec::new(),
        ..KeptSession::of(&Resumable {
            nick: nick("pat"),
            token: ResumeToken([1; 32]),
            rooms: vec![(RoomName::lobby(), Seq(3))],
            last_id: MsgId(0),
            keys: Vec::new(),
        })
    };
    assert!(unmatched.resumable().is_err());
    // Kept before keys were: no keys.
    let keyless = KeptSession {
        keys: Vec::new(),
        ..KeptSession::of(&r)
    };
    assert_eq!(
        keyless.resumable(),
        Ok(Resumable {
            keys: Vec::new(),
            ..r
        })
    );
}

#[test]
fn device_keys_round_trip_as_hex_and_damage_is_refused() {
    let key = DeviceKey(core::array::from_fn(|i| i as u8 * 7));
    let hex = key_to_hex(&key);
    assert_eq!(hex.len(), 64);
    assert!(hex.starts_with("00070e15"), "{hex}");
    assert_eq!(key_from_hex(&hex), Some(key));
    assert_eq!(key_from_hex(&hex[..62]), None);
    assert_eq!(key_from_hex(&format!("{}zz", &hex[..62])), None);
    assert_eq!(key_from_hex(&"é".repeat(32)), None);
}

#[test]
fn the_register_form_checks_passwords_by_the_servers_rule() {
    assert!(password_error("short").unwrap().contains("at least 8"));
    assert_eq!(password_error("correct horse"), None);
}

#[test]
fn moderation_actions_read_as_the_page_names_them() {
    use natter_core::moderation::ModeChange;
    assert_eq!(
        mod_action("ban", "bob", "1h"),
        Ok(ModAction::Ban {
            target: "bob".into(),
            duration: Some(Millis(3_600_000)),
            reason: None
        })
    );
    assert_eq!(
        mod_action("ban", "account:bob", ""),
        Ok(ModAction::Ban {
            target: "account:bob".into(),
            duration: None,
            reason: None
        })
    );
    assert_eq!(
        mod_action("mode", "+m", ""),
        Ok(ModAction::Mode(ModeChange::Moderated(true)))
    );
    assert_eq!(
        mod_action("mode", "+l", "20"),
        Ok(ModAction::Mode(ModeChange::Limit(Some(20))))
    );
    assert_eq!(
        mod_action("op", "carol", ""),
        Ok(ModAction::Op(nick("carol")))
    );
    assert!(
        mod_action("ban", "bob", "forever").is_err(),
        "a bad duration"
    );
    assert!(mod_action("mode", "+k", "").is_err(), "+k needs a key");
    assert!(mod_action("kick", "", "").is_err(), "kick whom?");
    assert!(mod_action("explode", "bob", "").is_err());
}

#[test]
fn a_rooms_settings_are_shown_with_whether_we_may_moderate() {
    let mut c = chat();
    c.handle_event(
        &Event::SignedIn {
            account: nick("webby"),
            key: None,
        },
        Millis(0),
    );
    c.handle_event(
        &Event::Policy {
            room: RoomName::lobby(),
            founder: Some(nick("webby")),
            ops: vec![nick("bob")],
            voiced: vec![],
            modes: natter_core::moderation::Modes {
                moderated: true,
                ..Default::default()
            },
            asked: false,
        },
        Millis(0),
    );
    let view = PolicyView::of(&c, &RoomName::lobby()).unwrap();
    assert_eq!(
        serde_json::to_value(&view).unwrap(),
        json!({
            "founder": "webby", "ops": ["bob"], "voiced": [], "letters": "+m",
            "invite_only": false, "moderated": true, "topic_ops": false,
            "am_op": true, "am_founder": true, "bans_stale": false
        })
    );
    let change = std::iter::from_fn(|| c.poll_change())
        .find(|ch| matches!(ch, Change::Policy(_)))
        .unwrap();
    assert_eq!(
        serde_json::to_value(ChangeView::of(&change, &c)).unwrap(),
        json!({"type": "policy", "key": "#lobby"})
    );
}

#[test]
fn a_big_rooms_summary_gives_the_page_the_count_and_a_line() {
    let mut c = chat();
    changes(&mut c);
    c.handle_event(
        &Event::Crowd {
            room: RoomName::lobby(),
            joined: 12,
            left: 3,
            members: 5_000,
        },
        Millis(0),
    );
    let got = changes(&mut c);
    assert!(
        got.contains(
            &json!({"type": "members", "key": "#lobby", "members": ["bob", "webby"], "count": 5000})
        ),
        "{got:#?}"
    );
    let words: Vec<&str> = got
        .iter()
        .filter_map(|v| v["line"]["text"].as_str())
        .collect();
    assert_eq!(words, ["#lobby: 12 joined, 3 left (5000 members)"]);
    let conv = serde_json::to_value(ConvView::of(c.current_conv(), &c)).unwrap();
    assert_eq!(conv["member_count"], json!(5000));
}

#[test]
fn help_tells_the_pages_keys_too() {
    for line in ["/help", "/HELP", "/?"] {
        let keys = keys_help(line).unwrap_or_else(|| panic!("{line}"));
        for k in ["Enter", "Up/Down", "Tab", "Esc", "scroll to the top"] {
            assert!(keys.contains(k), "{k}");
        }
    }
    assert_eq!(keys_help("help"), None);
    assert_eq!(keys_help("/help join"), None);
    assert_eq!(keys_help("/who"), None);
}

/// The page's device label is the browser's brand and system, from User-Agent Client Hints
/// where the browser has them (its own brand, not "Chromium" beside it, nor the made-up one),
/// else from the user agent string; something always, within the label limit.
#[test]
fn the_page_calls_itself_by_its_browser_and_system() {
    let brands = |b: &[&str]| b.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        browser_device_label(brands(&["Not_A Brand", "Chromium"]), "Linux", ""),
        "Chromium on Linux"
    );
    assert_eq!(
        browser_device_label(
            brands(&["Chromium", "Google Chrome", "Not/A)Brand"]),
            "Windows",
            ""
        ),
        "Chrome on Windows"
    );
    let firefox = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    assert_eq!(
        browser_device_label(Vec::new(), "", firefox),
        "Firefox on Linux"
    );
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                  (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    assert_eq!(
        browser_device_label(Vec::new(), "", iphone),
        "Safari on iOS"
    );
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                    HeadlessChrome/131.0.0.0 Safari/537.36";
    assert_eq!(
        browser_device_label(Vec::new(), "", headless),
        "Chromium on Linux"
    );
    assert_eq!(browser_device_label(Vec::new(), "", ""), "natter page");
    // Nothing a browser reports gets past the label's cleaning and bound.
    let odd = browser_device_label(brands(&["Evil\u{202E}Brand\n"]), &"x".repeat(300), "");
    assert!(
        odd.len() <= natter_core::limits::MAX_DEVICE_LABEL_BYTES,
        "{odd}"
    );
    assert!(!odd.contains('\u{202E}') && !odd.contains('\n'), "{odd:?}");
}

/// The text of conversation `key`'s last line, if a notice or an error.
fn last_said(c: &Chat, key: &str) -> Option<String> {
    let id = ConvId::from_key(key).unwrap();
    match &c.conv(&id)?.lines().back()?.kind {
        LineKind::Notice(t) | LineKind::Error(t) => Some(t.clone()),
        _ => None,
    }
}

/// `/query` was not the page's: `/query bob hi` went out as a `/msg` with nothing opened, and
/// `/query bob` was a usage error. It opens (and shows) the direct conversation now, as in the
/// TUI; with text, the text still goes to the session; alone, it says how it is typed.
#[test]
fn query_opens_the_direct_conversation_on_the_page() {
    let mut c = chat();
    assert!(answered_here(&mut c, "/query Bob", Millis(1)));
    assert_eq!(c.current().key(), "@bob");
    let ch = changes(&mut c);
    assert!(
        ch.iter().any(|v| v["type"] == "current"),
        "the page is told: {ch:?}"
    );
    c.open(&ConvId::from_key("#lobby").unwrap());
    assert!(!answered_here(&mut c, "/query bob hi", Millis(2)), "sent");
    assert_eq!(c.current().key(), "@bob");
    assert!(answered_here(&mut c, "/query", Millis(3)));
    assert_eq!(
        last_said(&c, "@bob").as_deref(),
        Some(natter_core::command::QUERY_USAGE)
    );
}

/// `/clear`, `/help clear` and `/part` in a direct conversation typed on the page do what they
/// do in the TUI (answered here, through core's `Chat::clear` and `Chat::close_direct`), where
/// the session said "unknown command" and "not a room"; everything else goes to the session.
#[test]
fn clear_and_a_direct_part_are_answered_on_the_page() {
    let mut c = chat();
    c.handle_event(&say("bob", 2, "hello"), Millis(0));
    assert!(!c.current_conv().lines().is_empty());
    while c.poll_change().is_some() {}
    assert!(answered_here(&mut c, "/clear", Millis(1)));
    assert!(c.current_conv().lines().is_empty(), "#lobby is empty");
    let ch = changes(&mut c);
    assert!(
        ch.iter()
            .any(|v| v["type"] == "trimmed" && v["key"] == "#lobby"),
        "the page is told: {ch:?}"
    );

    assert!(answered_here(&mut c, "/clear #lobby", Millis(2)));
    assert!(
        last_said(&c, "#lobby")
            .unwrap()
            .starts_with("usage: /clear [all]")
    );
    assert!(answered_here(&mut c, "/help clear", Millis(3)));
    assert!(last_said(&c, "#lobby").unwrap().starts_with("/clear [all]"));

    // `/part` in a direct conversation closes it and lands back in #lobby.
    c.open_direct(&nick("bob"));
    c.note("hi", Millis(4));
    assert!(answered_here(&mut c, "/PART", Millis(5)));
    assert_eq!(c.current().key(), "#lobby");
    assert!(
        c.conversations().all(|x| x.id().key() != "@bob"),
        "@bob closed"
    );
    assert!(
        last_said(&c, "#lobby")
            .unwrap()
            .contains("closed the conversation with bob")
    );

    // `/clear all` empties every conversation, the server's too.
    c.note("again", Millis(6));
    assert!(answered_here(&mut c, "/clear all", Millis(7)));
    assert!(c.conversations().all(|x| x.lines().is_empty()));
    assert!(c.current_conv().lines().is_empty());

    // The rest is the session's: a room's /part, a command that only starts like it, talk.
    for line in [
        "/part",
        "/part #lobby",
        "/clearly",
        "//clear",
        "hello",
        "/help",
    ] {
        assert!(!answered_here(&mut c, line, Millis(8)), "{line}");
    }
}

/// A join's replay goes above the notice of the join, each line as `inserted` before the next
/// line the page has drawn (the notice, not a later line of the same replay, which comes after
/// it). It was `all`: every log rebuilt at each join, losing where a reader scrolled up was.
#[test]
fn a_joins_replay_is_inserted_above_the_notice_of_the_join() {
    let mut c = Chat::new(nick("webby"));
    c.handle_event(&Event::State(ConnState::Connected), Millis(0));
    c.handle_event(
        &Event::Joined {
            room: RoomName::lobby(),
            topic: None,
            members: vec![nick("webby"), nick("bob")],
            seq: Seq(4),
        },
        Millis(0),
    );
    changes(&mut c);
    let notice = c.conv(&ConvId::Room(RoomName::lobby())).unwrap().lines()[0].id;
    c.handle_event(&say("bob", 2, "first"), Millis(0));
    c.handle_event(&say("bob", 3, "second"), Millis(0));
    let got = changes(&mut c);
    let inserted: Vec<&serde_json::Value> =
        got.iter().filter(|v| v["type"] == "inserted").collect();
    assert!(!got.iter().any(|v| v["type"] == "all"), "{got:#?}");
    assert_eq!(inserted.len(), 2, "{got:#?}");
    for (v, text) in inserted.iter().zip(["first", "second"]) {
        assert_eq!(v["key"], "#lobby");
        assert_eq!(v["before"], json!(num(notice.0)), "{v}");
        assert_eq!(v["line"]["text"], text, "{v}");
    }
}

/// A refusal said in the sign-in dialog names its buttons, not the commands typed at the
/// bottom that the terminal's words name (`(/register again)` read there as if something were
/// to be typed where nothing can be). Worded by what was refused (core's kinds), not by
/// matching core's words: until the forty-second session the page replaced core's words with
/// its own, and this test copied them by hand, so a change of wording in core would have
/// silently stopped the rewording.
#[test]
fn refusals_in_the_dialog_name_its_buttons_not_typed_commands() {
    let gus = nick("gus");
    // Whatever core says of it: the check of a registration whose answer a drop lost (`gus`),
    // refused as a failed sign-in, found no account.
    for core_says in [
        "anything",
        "your registration of gus did not go through (/register again)",
    ] {
        assert_eq!(
            dialog_refusal(Some(&gus), Some(ErrorKind::SignInFailed), core_says, None),
            "your registration of gus did not go through: the connection dropped before the \
             server answered, and the server has no account gus with that password; press \
             Register to try again"
        );
    }
    // Anything else is said as core says it: that check refused otherwise, a sign-in.
    let taken = "could not register: gus is registered already";
    assert_eq!(
        dialog_refusal(Some(&gus), Some(ErrorKind::NickTaken), taken, None),
        taken
    );
    let wrong = "could not sign in: wrong account name or password";
    assert_eq!(
        dialog_refusal(None, Some(ErrorKind::SignInFailed), wrong, None),
        wrong
    );
    // A guest's nick (core's rule, `guest` and digits) is not asked to be registered: the
    // dialog says why itself, with no command to type.
    let config = |n: &str| SessionConfig {
        nick: nick(n),
        rooms: vec![RoomName::lobby()],
        transport: Transport::Messages,
        seed: 1,
    };
    let mut guest = Client::driving(
        Session::new(config("guest4821"), Millis(0)),
        nick("guest4821"),
        0.0,
    );
    assert_eq!(
        guest.register_here("correct horse battery", false, 0.0),
        Some(GUEST_NICK_REFUSED.to_owned())
    );
    assert_eq!(
        guest.register("correct horse battery", false, 0.0),
        Some(GUEST_NICK_REFUSED.to_owned())
    );
    assert!(!guest.account_pending(), "nothing asked");
    assert!(!GUEST_NICK_REFUSED.contains('/'));
    let mut gus = Client::driving(Session::new(config("gus"), Millis(0)), nick("gus"), 0.0);
    assert_eq!(gus.register("correct horse battery", false, 0.0), None);
}

/// `msg` from the server, as the bridge hands it to the page.
fn hear(c: &mut Client, msg: ServerMsg, now: f64) {
    c.handle_message(&natter_core::wire::encode_frame(&msg).unwrap(), now);
}

fn welcome(c: &mut Client, token: u8, now: f64) {
    c.handle_connected(now);
    hear(
        c,
        ServerMsg::Welcome {
            version: natter_core::wire::PROTOCOL_VERSION,
            nick: nick("gus"),
            token: ResumeToken([token; 32]),
            resumed: false,
            limits: Limits::default(),
        },
        now,
    );
}

/// The page's client as the guest gus, welcomed (at 0 ms, token 1).
fn gus_welcomed() -> Client {
    let config = SessionConfig {
        nick: nick("gus"),
        rooms: vec![RoomName::lobby()],
        transport: Transport::Messages,
        seed: 1,
    };
    let mut c = Client::driving(Session::new(config, Millis(0)), nick("gus"), 0.0);
    welcome(&mut c, 1, 0.0);
    c
}

/// A client of the dialog (`register`) or of a guest's (`register_here`) whose registration's
/// answer a drop lost, welcomed again: its check (a sign-in) is under way.
fn checking_a_lost_registration(required: bool) -> Client {
    let mut c = gus_welcomed();
    let asked = if required {
        c.register("correct horse battery", false, 0.0)
    } else {
        c.register_here("correct horse battery", false, 0.0)
    };
    assert_eq!(asked, None);
    c.handle_disconnected("reset", 10.0);
    c.reconnect_now(10.0);
    welcome(&mut c, 2, 10.0);
    assert!(c.account_pending(), "the check is asked");
    c
}

/// The check of a registration whose answer a drop lost, refused as throttled or too fast, or
/// lost in drops until given up: core says what to type at the bottom (`/login gus
/// PASSWORD`), which the sign-in dialog has no place for. Said in the dialog's words, by what
/// it was (core's kinds, and that a lost registration was being checked), never by core's
/// words: until the forty-second session's review the dialog showed core's `/login` words.
/// Throttled, it says the server's exact wait (until the forty-third, "wait a while").
#[test]
fn a_lost_registrations_check_is_said_in_the_dialogs_words_however_it_ends() {
    let throttled = "too many failed sign-ins from your address: try again in 30 s";
    let flood = "you are sending too fast: 8 commands are already waiting; this one was dropped";
    for required in [true, false] {
        for (kind, re, detail, then) in [
            // The server's exact wait, not "a while".
            (
                ErrorKind::Throttled,
                Re::Conn,
                throttled,
                "try again in 30 s",
            ),
            (ErrorKind::Flood, Re::Account, flood, "in a moment"),
        ] {
            let mut c = checking_a_lost_registration(required);
            hear(
                &mut c,
                ServerMsg::Error {
                    kind,
                    re,
                    detail: detail.into(),
                },
                20.0,
            );
            let said = if required {
                assert!(c.take_refusal().is_some());
                c.fatal_in_dialog().expect("the dialog's session ends")
            } else {
                assert_eq!(c.fatal_in_dialog(), None, "a guest goes on");
                c.take_refusal().expect("refused")
            };
            assert!(!said.contains('/'), "{kind:?} {required}: {said}");
            assert!(
                said.starts_with(
                    "could not find out whether your registration of gus went through"
                ) && said.contains(then)
                    && said.contains("press Sign in"),
                "{kind:?} {required}: {said}"
            );
        }
        // Lost in a drop each time it is asked: given up.
        let mut c = checking_a_lost_registration(required);
        for at in 1..LOST_REGISTRATION_CHECKS {
            let now = f64::from(at) * 100.0;
            c.handle_disconnected("reset", now);
            c.reconnect_now(now);
            welcome(&mut c, 3, now);
        }
        c.handle_disconnected("reset", 1e6);
        let said = if required {
            c.fatal_in_dialog().expect("the dialog's session ends")
        } else {
            c.take_refusal().expect("given up")
        };
        assert!(!said.contains('/'), "given up, {required}: {said}");
        assert!(
            said.contains("press Sign in"),
            "given up, {required}: {said}"
        );
    }
}

/// What ended the session is said as core says it, unless it was the dialog's refusal: a
/// refusal worded for the dialog earlier (the check of a lost registration, found not made) and
/// a later end for another reason (a ban) took the refusal's words for the ban's.
#[test]
fn an_end_for_another_reason_is_not_said_as_an_earlier_refusal() {
    let mut c = checking_a_lost_registration(false);
    hear(
        &mut c,
        ServerMsg::Error {
            kind: ErrorKind::SignInFailed,
            re: Re::Conn,
            detail: "wrong account name or password".into(),
        },
        20.0,
    );
    assert!(c.take_refusal().unwrap().contains("press Register"));
    assert_eq!(c.register_here("correct horse battery", false, 30.0), None);
    let banned = "you are banned from this server: spam";
    hear(
        &mut c,
        ServerMsg::Error {
            kind: ErrorKind::Banned,
            re: Re::Conn,
            detail: banned.into(),
        },
        40.0,
    );
    assert_eq!(c.fatal_in_dialog().as_deref(), Some(banned));
}

/// The dialog's Register for another nick renames the guest first (`rename_here`): a nick that
/// is a registered account is refused in the server's words, which name a command typed at the
/// bottom (`sign in with /login rosa PASSWORD`), where the dialog has its Sign in button. Said
/// in the dialog's words by kind (taken), never by the server's words.
#[test]
fn a_rename_refused_in_the_dialog_names_its_buttons() {
    let mut c = gus_welcomed();
    assert_eq!(c.rename_here("rosa", 0.0), None);
    hear(
        &mut c,
        ServerMsg::Error {
            kind: ErrorKind::NickTaken,
            re: Re::Nick(nick("rosa")),
            detail: "rosa is a registered account: sign in with /login rosa PASSWORD".into(),
        },
        10.0,
    );
    let said = c.take_refusal().expect("refused");
    assert!(!said.contains('/'), "{said}");
    assert!(
        said.contains("rosa") && said.contains("press Sign in"),
        "{said}"
    );
}

/// A line said in the open conversation takes the reader down to its newest lines, where it
/// goes: typed plainly, `//text`, `/me`, and `/msg` or `/notice` naming the open conversation
/// (until the forty-second session `/msg #thisroom hi` left a reader scrolled up where they
/// were, and `//text` too); a command, or a line said in another conversation, does not.
#[test]
fn a_line_said_here_is_told_from_one_said_elsewhere() {
    let mut c = chat();
    for line in [
        "hi",
        "//etc/passwd is a path",
        "/me waves",
        "/msg #lobby hi",
        "/MSG #Lobby hi",
        "/notice #lobby hi",
    ] {
        assert!(says_here(&c, line), "{line}");
    }
    for line in [
        "/msg #elsewhere hi",
        "/msg bob hi",
        "/notice bob hi",
        "/join #b",
        "/topic now",
        "/msg #lobby",
        "",
        "/nosuchcommand x",
    ] {
        assert!(!says_here(&c, line), "{line}");
    }
    c.open_direct(&nick("Bob"));
    for line in [
        "hi",
        "/msg bob hi",
        "/msg BOB hi",
        "/notice bob hi",
        "/me waves",
    ] {
        assert!(says_here(&c, line), "in @bob: {line}");
    }
    for line in ["/msg carol hi", "/msg #lobby hi"] {
        assert!(!says_here(&c, line), "in @bob: {line}");
    }
}
