//! Words for people, in one place: room events, server replies and session news as the lines
//! text-mode (`nc`) users receive and the CLI prints in line mode, and the words the chat model
//! ([`crate::chat`]) shows in the TUI and the page. Every surface reads the same.
//!
//! `*_words` functions give the words alone; the `*_line(s)` functions add each surface's
//! markers (`-- ` for notices, `[#room] ` when the room is not implied, `ERROR: ` or `error: `).
//!
//! Text in these lines was cleaned of control characters when it was made (see
//! [`crate::types::Text`]); nicks and room names are plain ASCII; free text from the server (error
//! details) is cleaned by the session. So a rendered line cannot carry a terminal escape sequence.

use crate::chat::Scrollback;
use crate::limits::{CHAT_MAX_LINES, JOINED_NAMES_SHOWN, MAX_MEMBERS_LISTED, SEARCH_MAX_RESULTS};
use crate::session::{About, ConnState, Event, Target};
use crate::time::Millis;
use crate::types::{Nick, RoomName, Seq, Text, sanitize};
use crate::wire::{DirectMsg, ErrorKind, EventKind, RoomEvent, RoomInfo, ServerMsg};

/// Characters of an undelivered line quoted in the words that say so.
const UNDELIVERED_PREVIEW: usize = 60;

// ---- words ----

/// A count and its noun, singular for one: `count(1, "member")` is `1 member`, `count(3,
/// "member")` `3 members`. Every count a person reads goes through here, so no refusal or notice
/// says `1 connections` (the thirty-first session's QA found one that did).
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What a room event other than chat says (`bob joined #lobby`); `None` for a say or an action,
/// which are shown as chat lines, and for a move to another server, which is not shown at all.
pub fn event_words(ev: &RoomEvent) -> Option<String> {
    let from = &ev.from;
    let room = &ev.room;
    Some(match &ev.kind {
        EventKind::Say { .. }
        | EventKind::Act { .. }
        | EventKind::Notice { .. }
        | EventKind::Moved => return None,
        EventKind::Join => format!("{from} joined {room}"),
        EventKind::Part { reason } => match reason {
            Some(r) => format!("{from} left {room} ({r})"),
            None => format!("{from} left {room}"),
        },
        EventKind::Quit { reason } => match reason {
            Some(r) => format!("{from} quit ({r})"),
            None => format!("{from} quit"),
        },
        EventKind::Nick { new } => format!("{from} is now known as {new}"),
        EventKind::Topic { topic } => match topic {
            Some(t) => format!("{from} set the topic of {room}: {t}"),
            None => format!("{from} cleared the topic of {room}"),
        },
        EventKind::Kick { target, reason } => match reason {
            Some(r) => format!("{from} put {target} out of {room} ({r})"),
            None => format!("{from} put {target} out of {room}"),
        },
        EventKind::Mode { change } => {
            if let Some(words) = account_removed_words(change.as_str(), from, room) {
                return Some(words);
            }
            match mode_gloss(change.as_str(), from, room) {
                Some(gloss) => format!("{from} set {room} {change} ({gloss})"),
                None => format!("{from} set {room} {change}"),
            }
        }
    })
}

/// The words of the event that tells a room the operator removed the account `from`, so its
/// founder, operator and voice there are lifted (`None` for any other change): whoever
/// registers the name next has none of them.
pub fn account_removed_words(change: &str, from: &Nick, room: &RoomName) -> Option<String> {
    use crate::moderation::{ACCOUNT_REMOVED, ACCOUNT_REMOVED_FOUNDER};
    if change == ACCOUNT_REMOVED_FOUNDER {
        Some(format!(
            "the account {from} was removed: {room} has no founder now"
        ))
    } else if change == ACCOUNT_REMOVED {
        Some(format!(
            "the account {from} was removed: it is no operator or voiced member of {room} now"
        ))
    } else {
        None
    }
}

/// What a room's mode change means, for someone who never learnt IRC's letters (`+m`:
/// "moderated: only operators and voiced members speak"); `None` for words that are no
/// letters (an admin's `founder NAME`, a `close: reason`), which say it themselves.
fn mode_gloss(change: &str, from: &Nick, room: &RoomName) -> Option<String> {
    let (letters, arg) = change.split_once(' ').unwrap_or((change, ""));
    Some(match (letters, arg) {
        ("+r", _) => format!("registered: {from} is its founder"),
        ("+i", _) => "invite only: only the invited may join".into(),
        ("-i", _) => "anyone may join".into(),
        ("+m", _) => "moderated: only operators and voiced members speak".into(),
        ("-m", _) => "anyone may speak".into(),
        ("+t", _) => "only operators set the topic".into(),
        ("-t", _) => "anyone may set the topic".into(),
        ("+k", _) => "joining takes a key".into(),
        ("-k", _) => "no key needed".into(),
        ("+l", n) if !n.is_empty() => match n.parse::<u64>() {
            Ok(n) => format!("at most {}", count(n, "member")),
            Err(_) => format!("at most {n} members"),
        },
        ("-l", _) => "no limit on members".into(),
        ("+o", n) if !n.is_empty() => format!("{n} is an operator now"),
        ("-o", n) if !n.is_empty() => format!("{n} is an operator no longer"),
        ("+v", n) if !n.is_empty() => format!("{n} may speak while {room} is moderated"),
        ("-v", n) if !n.is_empty() => format!("{n} is voiced no longer"),
        ("+b", _) => "banned".into(),
        ("-b", _) => "ban lifted".into(),
        ("+q", _) => "muted: reads but does not speak".into(),
        ("-q", _) => "mute lifted".into(),
        _ => return None,
    })
}

/// [`event_words`] as `me` reads them: a kick of `me` is addressed to it (`bob put you out of
/// #a (too loud)`), not told of it in the third person as the room's other members read it.
pub fn event_words_to(ev: &RoomEvent, me: Option<&Nick>) -> Option<String> {
    match &ev.kind {
        EventKind::Kick { target, reason } if me.is_some_and(|m| m.folded() == target.folded()) => {
            let (from, room) = (&ev.from, &ev.room);
            Some(match reason {
                Some(r) => format!("{from} put you out of {room} ({r})"),
                None => format!("{from} put you out of {room}"),
            })
        }
        _ => event_words(ev),
    }
}

/// A room's settings, in words (`/mode #room` on nc, the page's room panel).
pub fn policy_words(
    room: &RoomName,
    founder: Option<&Nick>,
    ops: &[Nick],
    voiced: &[Nick],
    modes: &crate::moderation::Modes,
) -> String {
    let mut s = match founder {
        Some(f) => format!("{room} is registered to {f}"),
        None => format!("{room} is not registered"),
    };
    let list = |v: &[Nick]| v.iter().map(Nick::as_str).collect::<Vec<_>>().join(" ");
    if !ops.is_empty() {
        s.push_str(&format!("; operators: {}", list(ops)));
    }
    if !voiced.is_empty() {
        s.push_str(&format!("; voiced: {}", list(voiced)));
    }
    match modes.letters().as_str() {
        "+" => s.push_str("; no modes set"),
        letters => s.push_str(&format!("; modes {letters}")),
    }
    // The key itself to those the server shows it (operators); `*` means there is one.
    let mut about = Vec::new();
    if let Some(k) = modes.key.as_ref().filter(|k| k.as_str() != "*") {
        about.push(format!("key {k}"));
    }
    if let Some(n) = modes.limit {
        about.push(format!("at most {}", count(u64::from(n), "member")));
    }
    if !about.is_empty() {
        s.push_str(&format!(" ({})", about.join(", ")));
    }
    s
}

/// An invitation: `bob invites you to #r (/join #r)`.
pub fn invited_words(room: &RoomName, by: &Nick) -> String {
    format!("{by} invites you to {room} (/join {room})")
}

/// The answer to `/away` alone or `/back` from someone who was not away.
pub const NOT_AWAY: &str = "you were not away (nothing changed)";

/// Someone's away ([`ServerMsg::Away`]): `you are away: lunch`, `you are back`, `bob is away:
/// lunch`, `bob is back`.
pub fn away_words(nick: &Nick, away: Option<&Text>, me: Option<&Nick>) -> String {
    let you = me.is_some_and(|m| m.folded() == nick.folded());
    match (you, away) {
        (true, Some(a)) => format!("you are away: {a} (/back when you are back)"),
        (true, None) => "you are back (no longer away)".to_owned(),
        (false, Some(a)) => format!("{nick} is away: {a}"),
        (false, None) => format!("{nick} is back"),
    }
}

/// Who in a room is away ([`ServerMsg::AwayHere`]), after its member list: `away here: bob
/// (lunch), carol (brb)`; `None` when nobody but `me` is.
pub fn away_here_words(away: &[(Nick, Text)], me: Option<&Nick>) -> Option<String> {
    let others: Vec<String> = away
        .iter()
        .filter(|(n, _)| me.is_none_or(|me| me.folded() != n.folded()))
        .map(|(n, a)| format!("{n} ({a})"))
        .collect();
    (!others.is_empty()).then(|| format!("away here: {}", others.join(", ")))
}

/// One ban or mute, in words.
pub fn entry_words(e: &crate::moderation::Entry) -> String {
    let mut s = format!("{} by {}", e.mask, e.by);
    if let Some(u) = e.until {
        s.push_str(&format!(" until {}", u.rfc3339()));
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!(": {r}"));
    }
    s
}

/// The lines of a room's ban and mute list.
pub fn ban_list_lines(
    room: &RoomName,
    bans: &[crate::moderation::Entry],
    mutes: &[crate::moderation::Entry],
) -> Vec<String> {
    let mut out = Vec::new();
    if bans.is_empty() && mutes.is_empty() {
        out.push(format!("nobody is banned or muted in {room}"));
    }
    out.extend(
        bans.iter()
            .map(|b| format!("banned from {room}: {}", entry_words(b))),
    );
    out.extend(
        mutes
            .iter()
            .map(|b| format!("muted in {room}: {}", entry_words(b))),
    );
    out
}

/// A gap marker: `5 messages missed here (#lobby #3..#7)`.
pub fn gap_words(room: &RoomName, first: Seq, last: Seq) -> String {
    let n = last.0.saturating_sub(first.0).saturating_add(1);
    let what = if n == 1 { "message" } else { "messages" };
    format!("{n} {what} missed here ({room} #{first}..#{last})")
}

/// Below a room's lines kept from before it started over (a memory-only room
/// dropped when empty and made again, or any room after a server restart: its history is
/// another one from there): `#lobby started over since the lines above (emptied, or the server
/// restarted); below is the new #lobby`.
pub fn started_over_words(room: &RoomName) -> String {
    format!(
        "{room} started over since the lines above (emptied, or the server restarted); \
         below is the new {room}"
    )
}

/// The server welcomed us (as `nick` for the moment, when `signing_in` to an account: the nick
/// a guest is given then is not worth saying, and a refused sign-in never talks under it).
pub fn welcome_words(nick: &Nick, resumed: bool, signing_in: Option<&Nick>) -> String {
    match signing_in {
        _ if resumed => format!("reconnected as {nick}; picked up where you left off"),
        Some(account) => format!("connected; signing in as {account}"),
        None => format!("connected as {nick}"),
    }
}

/// The server welcomed us under `nick`, not the `asked` one (taken, or a registered account's).
pub fn other_nick_words(asked: &Nick, nick: &Nick) -> String {
    format!(
        "{asked} is taken or a registered account here, so you are {nick} \
         (if {asked} is your account, /login {asked} PASSWORD signs in to it)"
    )
}

/// We are in a room: who else is, and its topic. `marks` are the members' standings
/// ([`marked`]; empty: none known). A room of more than [`JOINED_NAMES_SHOWN`] others names
/// that many (operators first) and counts the rest: `you are in #rust with 57 others: @ann,
/// bob, ... and 47 more (/who #rust lists them)`; a full list ([`MAX_MEMBERS_LISTED`]) is not
/// the room's size, so then only `and more` (the size follows: [`size_words`]).
pub fn joined_words(
    room: &RoomName,
    topic: Option<&Text>,
    members: &[Nick],
    marks: &[&str],
    me: Option<&Nick>,
) -> Vec<String> {
    let mut others: Vec<String> = marked(members, marks)
        .into_iter()
        .zip(members)
        .filter(|(_, n)| me.is_none_or(|me| me.folded() != n.folded()))
        .map(|(shown, _)| shown)
        .collect();
    let mut out = if others.is_empty() {
        vec![format!("you are in {room} (nobody else is here yet)")]
    } else if others.len() <= JOINED_NAMES_SHOWN {
        vec![format!("you are in {room} with: {}", others.join(", "))]
    } else {
        // Operators first (a stable sort keeps the list's order otherwise).
        others.sort_by_key(|n| !n.starts_with(['~', '@']));
        let rest = others.len() - JOINED_NAMES_SHOWN;
        let named = others[..JOINED_NAMES_SHOWN].join(", ");
        if members.len() >= MAX_MEMBERS_LISTED {
            vec![format!("you are in {room} with: {named} and more")]
        } else {
            vec![format!(
                "you are in {room} with {} others: {named} and {rest} more (/who {room} lists \
                 them)",
                others.len()
            )]
        }
    };
    if let Some(t) = topic {
        out.push(topic_words(room, Some(t)));
    }
    out
}

/// Members as a list shows them: each with its mark in front (`~` the founder, `@` an
/// operator, `+` voiced: [`crate::chat::Role::mark`]), `marks[i]` for `members[i]`; a member
/// past the end of `marks` has none.
pub fn marked(members: &[Nick], marks: &[&str]) -> Vec<String> {
    members
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{}{n}", marks.get(i).copied().unwrap_or("")))
        .collect()
}

/// The answer to `/whois nick`, in lines: who they are signed in as, whether away, the rooms
/// we share, how long idle, and how connected; `None`: nobody is called that. Asked of
/// ourselves (`me`), the rooms are the ones we are in (`alice shares #lobby with you` read as
/// if there were two of us).
pub fn whois_lines(
    nick: &Nick,
    user: Option<&crate::wire::WhoisUser>,
    me: Option<&Nick>,
) -> Vec<String> {
    use crate::wire::Presence;
    let Some(u) = user else {
        return vec![format!("no such nick: nobody is called {nick}")];
    };
    let n = &u.nick;
    let mut out = vec![match &u.account {
        Some(a) => format!("{n} is signed in as {a}"),
        None => format!("{n} is a guest (not signed in)"),
    }];
    if let Some(away) = &u.away {
        out.push(format!("{n} is away: {away}"));
    }
    let ourselves = me.is_some_and(|me| me.folded() == n.folded());
    let rooms: Vec<&str> = u.rooms.iter().map(RoomName::as_str).collect();
    if ourselves {
        out.push(if rooms.is_empty() {
            "you are in no room".to_owned()
        } else {
            format!("you are in {}", rooms.join(", "))
        });
    } else if u.rooms.is_empty() {
        out.push(format!("{n} shares no room with you"));
    } else {
        out.push(format!("{n} shares {} with you", rooms.join(", ")));
    }
    out.push(match u.presence {
        Presence::Here if u.secure => format!("{n} is connected over TLS"),
        Presence::Here => format!("{n} is connected without TLS"),
        Presence::Elsewhere => format!("{n} is connected to another server of this cluster"),
        Presence::Resuming => format!("{n} is between connections and may come back"),
        Presence::Offline => {
            format!("{n} is connected nowhere now; an account stays in its rooms")
        }
    });
    match (u.idle, u.presence) {
        (Some(idle), _) => out.push(format!("{n} has been idle {}", span_words(idle))),
        (None, Presence::Here) => out.push(format!("{n} has said nothing since connecting")),
        (None, _) => {}
    }
    out
}

/// The answer to `/devices`: the account's remembered devices, one line each after a header
/// (`a1b2c3d4 "Chromium on Linux" (this device): remembered 2026-12-06 20:51 UTC, last signed
/// in 2026-12-06 21:03 UTC through the page from 203.0.113.7`; a device without a label has no
/// quoted part).
pub fn devices_lines(devices: &[crate::wire::RememberedDevice]) -> Vec<String> {
    use crate::wire::RememberedDevice;
    if devices.is_empty() {
        return vec![
            "no remembered devices: a sign-in that asks to be remembered makes one".to_owned(),
        ];
    }
    let mut out = vec![format!(
        "{} (/devices name ID label names one, /devices forget ID signs one out for good):",
        count(devices.len() as u64, "remembered device")
    )];
    for d in devices {
        let this = if d.this { " (this device)" } else { "" };
        let label = d
            .label
            .as_ref()
            .map(|l| format!(" \"{l}\""))
            .unwrap_or_default();
        let used = match &d.used {
            Some(u) => {
                let from = u.address.map(|a| format!(" from {a}")).unwrap_or_default();
                format!(
                    "last signed in {} UTC through {}{from}",
                    utc_minute(u.at),
                    u.door.words()
                )
            }
            None => "last sign-in not recorded".to_owned(),
        };
        out.push(format!(
            "{}{label}{this}: remembered {} UTC, {used}",
            RememberedDevice::id_words(d.id),
            utc_minute(d.remembered)
        ));
    }
    out
}

/// A length of time as a person says it, to the largest two units: `45s`, `3m 20s`,
/// `2h 5m`, `3d 4h`.
pub fn span_words(span: Millis) -> String {
    let s = span.0 / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {s}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// We left a room.
pub fn parted_words(room: &RoomName) -> String {
    format!("you left {room}")
}

/// A room's member list: `#lobby (2): alice, bob`. A list holds at most
/// [`MAX_MEMBERS_LISTED`] members, so a full one is not said to be the room's size: with the
/// size the client knows from a big room's `Crowd` (`counted`), `#big (404 members, 300 listed):
/// ...`; without it, `#big (300 listed; a list stops at 300, /rooms counts them all): ...`.
/// Operators are marked ([`marked`]: `@alice`), as IRC's NAMES and the member lists mark them.
pub fn members_words(
    room: &RoomName,
    members: &[Nick],
    marks: &[&str],
    counted: Option<usize>,
) -> String {
    if members.is_empty() {
        // A kept room everyone left (its history and topic stay): not a dangling `(0): `.
        return format!("{room} (0): nobody is in it now");
    }
    let names = marked(members, marks);
    let n = members.len();
    let names = names.join(", ");
    // A shorter list is the whole room (whatever a count from earlier says).
    if n < MAX_MEMBERS_LISTED {
        return format!("{room} ({n}): {names}");
    }
    match counted.filter(|&c| c > n) {
        Some(c) => format!(
            "{room} ({}, {n} listed): {names}",
            count(c as u64, "member")
        ),
        None => format!(
            "{room} ({n} listed; a list stops at {MAX_MEMBERS_LISTED}, /rooms counts them all): \
             {names}"
        ),
    }
}

/// A big room's comings and goings ([`ServerMsg::Crowd`]): `#big: 12 joined, 3 left (5000
/// members)`, or with nothing to sum up (right after joining) its size and how to list it.
/// (Zeros for a room a member list holds come only from a quiet room; a larger one may be
/// either, so its words say only what is sure: see [`size_words`].)
pub fn crowd_words(room: &RoomName, joined: u32, left: u32, members: u32) -> String {
    match (joined, left) {
        (0, 0) => size_words(room, members, members as usize <= MAX_MEMBERS_LISTED),
        (j, 0) => format!("{room}: {j} joined ({members} members)"),
        (0, l) => format!("{room}: {l} left ({members} members)"),
        (j, l) => format!("{room}: {j} joined, {l} left ({members} members)"),
    }
}

/// A room's size right after joining it, when its member list is cut short (more than
/// [`MAX_MEMBERS_LISTED`]) or its joins and parts are `summed` up (a big room): `#big has 404
/// members: /who lists 300 of them`.
pub fn size_words(room: &RoomName, members: u32, summed: bool) -> String {
    let cut = members as usize > MAX_MEMBERS_LISTED;
    match (summed, cut) {
        (true, true) => format!(
            "{room} has {members} members: joins and parts here are summed up, /who lists \
             {MAX_MEMBERS_LISTED} of them"
        ),
        (true, false) => format!(
            "{room} has {members} members: joins and parts here are summed up, /who lists members"
        ),
        (false, true) => {
            format!("{room} has {members} members: /who lists {MAX_MEMBERS_LISTED} of them")
        }
        (false, false) => format!("{room} has {members} members"),
    }
}

/// The server's rooms: `rooms: #lobby (2), #rust (1)`.
pub fn rooms_words(rooms: &[RoomInfo]) -> String {
    if rooms.is_empty() {
        return "no rooms".into();
    }
    let list: Vec<String> = rooms
        .iter()
        .map(|r| format!("{} ({})", r.room, r.members))
        .collect();
    format!("rooms: {}", list.join(", "))
}

/// A room's topic, as asked for.
pub fn topic_words(room: &RoomName, topic: Option<&Text>) -> String {
    match topic {
        Some(t) => format!("topic of {room}: {t}"),
        None => format!("{room} has no topic"),
    }
}

/// Our nick changed.
pub fn nick_words(nick: &Nick) -> String {
    format!("you are now known as {nick}")
}

/// A connection state worth a notice (`None` for connecting and connected, which the status
/// shows; for the wait after a loss, which the session's notice of it tells with why
/// ([`lost_words`]); and for the wait after a failed attempt, which the session's own notice
/// tells with its reason: `could not connect to HOST:PORT: why; retrying in 1s`).
pub fn state_words(state: ConnState) -> Option<String> {
    match state {
        ConnState::Closed => Some("disconnected".to_owned()),
        // A loss is said once, with why, by the session's notice of it ([`lost_words`]).
        ConnState::Reconnecting { .. } | ConnState::Connecting | ConnState::Connected => None,
    }
}

/// A connection the server had welcomed was lost, and why, said once per drop:
/// `connection lost: the server closed the connection; reconnecting`. (It was two notices,
/// `disconnected: ...` and then `connection lost; reconnecting (attempt 1)`; the status line
/// counts the attempts.)
pub fn lost_words(why: &str) -> String {
    if why.is_empty() {
        "connection lost; reconnecting".to_owned()
    } else {
        format!("connection lost: {why}; reconnecting")
    }
}

/// A failed connection attempt and what comes next, for line mode:
/// `could not connect to 127.0.0.1:8000: Connection refused (os error 111); retrying in 0.5s`.
pub fn connect_failed_words(why: &str, wait: Millis, next_address: bool) -> String {
    if next_address {
        format!("{why}; trying the next server address")
    } else if wait == Millis(0) {
        format!("{why}; retrying now")
    } else {
        format!("{why}; retrying in {}", wait_words(wait))
    }
}

/// A wait as a person reads it: `0.2s`, `1.5s`, `12s`, `2m 5s`.
pub fn wait_words(wait: Millis) -> String {
    let ms = wait.0;
    if ms < 10_000 {
        // Tenths, rounded up: a wait is never said shorter than it is.
        let tenths = ms.div_ceil(100);
        match tenths % 10 {
            0 => format!("{}s", tenths / 10),
            t => format!("{}.{t}s", tenths / 10),
        }
    } else if ms < 120_000 {
        format!("{}s", ms.div_ceil(1000))
    } else {
        let secs = ms.div_ceil(1000);
        format!("{}m {}s", secs / 60, secs % 60)
    }
}

/// An error, said for what it refused: `could not join #x: words`.
pub fn error_words(about: &About, text: &str) -> String {
    match about {
        About::Join(room) => format!("could not join {room}: {text}"),
        About::Part(room) => format!("could not leave {room}: {text}"),
        About::Nick(nick) => format!("could not change your nick to {nick}: {text}"),
        About::Older(room) => format!("could not load older lines of {room}: {text}"),
        About::Search => format!("search failed: {text}"),
        About::Account | About::Session | About::Input | About::Message(_) | About::Room(_) => {
            text.to_owned()
        }
    }
}

/// Where a room's history starts: `the beginning of #rust`.
pub fn beginning_words(room: &RoomName) -> String {
    format!("the beginning of {room}")
}

/// Where what the server keeps of a room's history starts, above its first event: `older
/// lines of #rust are no longer kept`.
pub fn gone_words(room: &RoomName) -> String {
    format!("older lines of {room} are no longer kept")
}

/// A page of history that did not reach the start: `/history #rust shows older lines`.
pub fn more_history_words(room: &RoomName) -> String {
    format!("/history {room} shows older lines")
}

/// What the top of a room's lines says about older ones (`None`: nothing to say, older lines
/// may be loaded): `loading older lines…`, `the beginning of #rust`, why a load failed, or that
/// no more fit.
pub fn scrollback_words(room: &RoomName, state: &Scrollback) -> Option<String> {
    match state {
        Scrollback::More => None,
        Scrollback::Loading => Some("loading older lines…".to_owned()),
        Scrollback::Failed(why) => Some(error_words(&About::Older(room.clone()), why)),
        Scrollback::Start => Some(beginning_words(room)),
        Scrollback::Gone => Some(gone_words(room)),
        Scrollback::Full => Some(format!(
            "this view keeps the latest {CHAT_MAX_LINES} lines of {room}; /search finds older ones"
        )),
    }
}

/// How many hits a search found: `no results`, `1 result`, `3 results`.
pub fn results_words(count: usize) -> String {
    match count {
        0 => "no results".to_owned(),
        1 => "1 result".to_owned(),
        n => format!("{n} results"),
    }
}

/// Said after a search's results when older matches were left out (the server sends the
/// newest [`SEARCH_MAX_RESULTS`]).
pub fn search_cut_words() -> String {
    format!("showing the newest {SEARCH_MAX_RESULTS} matches; narrow the words to see older ones")
}

/// A search and how it went (`found`: the hits' count once answered):
/// `searching for "borrow" in #rust…`, `3 results for "borrow" in all your rooms`.
pub fn search_words(room: Option<&RoomName>, words: &Text, found: Option<usize>) -> String {
    let place = match room {
        Some(room) => room.to_string(),
        None => "all your rooms".to_owned(),
    };
    match found {
        None => format!("searching for \"{words}\" in {place}…"),
        Some(n) => format!("{} for \"{words}\" in {place}", results_words(n)),
    }
}

/// A line we typed that was not delivered, quoted short, with why.
pub fn undelivered_words(to: &Target, text: &str, why: &str) -> String {
    let mut preview: String = text.chars().take(UNDELIVERED_PREVIEW).collect();
    if preview.len() < text.len() {
        preview.push('…');
    }
    let to = match to {
        Target::Room(r) => r.to_string(),
        Target::Nick(n) => n.to_string(),
    };
    format!("not delivered to {to}: {preview} ({why})")
}

/// Why a line we typed was not delivered when the session ended with it unsent.
pub const UNSENT: &str = "the session ended before it was sent";

/// A desktop notification for a mention or a direct message: title and body.
pub fn alert_words(from: &Nick, room: Option<&RoomName>, text: &Text) -> (String, String) {
    let title = match room {
        Some(room) => format!("{from} in {room}"),
        None => format!("{from} (direct message)"),
    };
    (title, text.to_string())
}

/// The page's title: what is open, after the unread and mention counts when there are any:
/// `(5, @2) #lobby · natter`.
pub fn title(open: Option<&str>, unread: u32, mentions: u32) -> String {
    let counts = match (unread, mentions) {
        (0, 0) => String::new(),
        (u, 0) => format!("({u}) "),
        (u, m) => format!("({u}, @{m}) "),
    };
    match open {
        Some(open) => format!("{counts}{open} · natter"),
        None => format!("{counts}natter"),
    }
}

// ---- lines for text-mode users (nc) ----

/// Renders a room event as `me` reads it (see [`event_words_to`]). The room is named in front
/// (`[#rust] `) unless it is `current`.
pub fn event_line(ev: &RoomEvent, current: Option<&RoomName>, me: Option<&Nick>) -> String {
    let body = match &ev.kind {
        EventKind::Say { text, .. } => format!("<{}> {}", ev.from, text),
        EventKind::Act { text, .. } => format!("* {} {}", ev.from, text),
        EventKind::Notice { text, .. } => format!("-{}- {}", ev.from, text),
        _ => format!("-- {}", event_words_to(ev, me).unwrap_or_default()),
    };
    with_room(&ev.room, current, body)
}

/// Renders a direct notice as seen by `me`: `-alice- hi` when received, `-> -bob- hi` for
/// one's own.
pub fn direct_notice_line(dm: &DirectMsg, me: &Nick) -> String {
    if dm.from.folded() == me.folded() {
        format!("-> -{}- {}", dm.to, dm.text)
    } else {
        format!("-{}- {}", dm.from, dm.text)
    }
}

/// Renders a direct message as seen by `me`: `*alice* hi` when received, `-> *bob* hi` for one's
/// own (the server's acknowledgement).
pub fn direct_line(dm: &DirectMsg, me: &Nick) -> String {
    if dm.from.folded() == me.folded() {
        format!("-> *{}* {}", dm.to, dm.text)
    } else {
        format!("*{}* {}", dm.from, dm.text)
    }
}

/// Renders a gap marker.
pub fn gap_line(room: &RoomName, first: Seq, last: Seq, current: Option<&RoomName>) -> String {
    with_room(
        room,
        current,
        format!("-- {}", gap_words(room, first, last)),
    )
}

/// Words for a changed password; `remembered_here`: this device was given a new key with the
/// change and stays remembered.
pub fn password_changed_words(remembered_here: bool) -> &'static str {
    if remembered_here {
        "your password was changed; this device stays remembered; your other devices sign in \
         again with the new password (their remembered sign-ins were revoked)"
    } else {
        "your password was changed; your other devices sign in again with it (remembered sign-ins were revoked)"
    }
}

/// Words for a sign-in.
pub fn signed_in_words(account: &Nick) -> String {
    format!("you are signed in as {account}")
}

/// Words for a sign-out.
pub const SIGNED_OUT: &str = "you signed out; you are a guest now";

/// What a person sees for a server message, if anything (acks, pings and the like are for
/// programs): the lines a text-mode (`nc`) user receives. Lines without their `\r\n`.
pub fn reply_lines(msg: &ServerMsg, me: Option<&Nick>, current: Option<&RoomName>) -> Vec<String> {
    let notice = |words: String| format!("-- {words}");
    match msg {
        ServerMsg::Welcome { nick, .. } => vec![notice(format!("you are {nick}"))],
        ServerMsg::Joined {
            room,
            topic,
            members,
            ..
        } => joined_words(room, topic.as_ref(), members, &[], me)
            .into_iter()
            .map(notice)
            .collect(),
        ServerMsg::Parted { room } => vec![notice(parted_words(room))],
        ServerMsg::Event(ev) => vec![event_line(ev, current, me)],
        ServerMsg::Direct(dm) => match me {
            Some(me) => vec![direct_line(dm, me)],
            None => Vec::new(),
        },
        ServerMsg::DirectNotice(dm) => match me {
            Some(me) => vec![direct_notice_line(dm, me)],
            None => Vec::new(),
        },
        ServerMsg::Gap { room, first, last } => {
            vec![gap_line(room, *first, *last, current)]
        }
        ServerMsg::Members { room, members } => {
            vec![notice(members_words(room, members, &[], None))]
        }
        ServerMsg::Whois { nick, user } => whois_lines(nick, user.as_ref(), me)
            .into_iter()
            .map(notice)
            .collect(),
        ServerMsg::Devices { devices } => devices_lines(devices).into_iter().map(notice).collect(),
        ServerMsg::Rooms { rooms } => vec![notice(rooms_words(rooms))],
        ServerMsg::Policy {
            room,
            founder,
            ops,
            voiced,
            modes,
        } => vec![notice(policy_words(
            room,
            founder.as_ref(),
            ops,
            voiced,
            modes,
        ))],
        ServerMsg::BanList { room, bans, mutes } => ban_list_lines(room, bans, mutes)
            .into_iter()
            .map(notice)
            .collect(),
        ServerMsg::Invited { room, by } => {
            vec![notice(invited_words(room, by))]
        }
        ServerMsg::Wall { from, text } => vec![notice(format!("[server] {from}: {text}"))],
        ServerMsg::Away { nick, away } => vec![notice(away_words(nick, away.as_ref(), me))],
        ServerMsg::AwayHere { away, .. } => {
            away_here_words(away, me).map(notice).into_iter().collect()
        }
        ServerMsg::InviteSent { room, nick } => {
            vec![notice(format!("you invited {nick} to {room}"))]
        }
        ServerMsg::Done(words) => vec![notice(words.to_string())],
        ServerMsg::Motd { lines } => lines
            .iter()
            .take(crate::hub::MAX_MOTD_LINES)
            .map(|l| {
                notice(
                    l.as_ref()
                        .map_or_else(String::new, |t| t.as_str().to_owned()),
                )
            })
            .collect(),
        ServerMsg::ServerBans { bans } => {
            if bans.is_empty() {
                vec![notice("nobody is banned from the server".into())]
            } else {
                bans.iter()
                    .map(|b| notice(format!("banned from the server: {}", entry_words(b))))
                    .collect()
            }
        }
        ServerMsg::Topic { room, topic } => vec![notice(topic_words(room, topic.as_ref()))],
        ServerMsg::YourNick { nick } => vec![notice(nick_words(nick))],
        ServerMsg::SignedIn { account, .. } => vec![notice(signed_in_words(account))],
        ServerMsg::ReadUpTo { .. } => Vec::new(),
        ServerMsg::PasswordChanged => vec![notice(password_changed_words(false).into())],
        ServerMsg::Error { detail, .. } => vec![format!("ERROR: {detail}")],
        ServerMsg::Bye { reason } => vec![notice(reason.clone())],
        ServerMsg::Past(ev) | ServerMsg::Found(ev) => vec![past_line(ev)],
        ServerMsg::PastEnd { room, at_start } => vec![past_end_line(room, *at_start, None)],
        ServerMsg::FoundEnd { count } => {
            // A count past the limit: the server found more than it sent.
            let count = usize::try_from(*count).unwrap_or(usize::MAX);
            let mut lines = vec![notice(results_words(count.min(SEARCH_MAX_RESULTS)))];
            if count > SEARCH_MAX_RESULTS {
                lines.push(notice(search_cut_words()));
            }
            lines
        }
        ServerMsg::Crowd {
            room,
            joined,
            left,
            members,
        } => vec![notice(crowd_words(room, *joined, *left, *members))],
        ServerMsg::Ack { .. } | ServerMsg::Ping { .. } | ServerMsg::Pong { .. } => Vec::new(),
    }
}

/// An event from history or a search, with its room and time: `[#rust 2026-12-02 14:03] <alice> hi`.
pub fn past_line(ev: &RoomEvent) -> String {
    let body = event_line(ev, Some(&ev.room), None);
    format!("[{} {}] {body}", ev.room, utc_minute(ev.at))
}

/// The line after a page of history: `-- (the beginning of #rust)`, `-- (older lines of #rust
/// are no longer kept)` when nothing older is kept but `first`, the page's first seq, is not
/// the room's first, or `-- (/history #rust shows older lines)`.
pub fn past_end_line(room: &RoomName, at_start: bool, first: Option<Seq>) -> String {
    match (at_start, first) {
        (true, Some(s)) if s > Seq(1) => format!("-- ({})", gone_words(room)),
        (true, _) => format!("-- ({})", beginning_words(room)),
        (false, _) => format!("-- ({})", more_history_words(room)),
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` (UTC), without a calendar library (the proleptic
/// Gregorian calendar, as `date -u` prints it).
pub fn utc_minute(at: crate::time::Millis) -> String {
    let secs = at.0 / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

// ---- lines for the CLI's line mode ----

/// The lines a session event prints in the CLI's line mode, as seen by `me` (a stable format for
/// scripts): room events and gaps always name their room (`[#rust] <bob> hi`,
/// `[#rust] -- bob joined #rust`), direct messages read `*alice* hi` / `-> *bob* hi`, errors
/// `error: words`, everything else `-- words`. Driver instructions, and our own messages until
/// the server echoes them, print nothing.
pub fn session_lines(ev: &Event, me: &Nick) -> Vec<String> {
    let notice = |words: String| format!("-- {words}");
    match ev {
        Event::Room(ev) => vec![event_line(ev, None, Some(me))],
        Event::Direct(dm) => vec![direct_line(dm, me)],
        Event::DirectNotice(dm) => vec![direct_notice_line(dm, me)],
        Event::Gap { room, first, last } => vec![gap_line(room, *first, *last, None)],
        Event::State(state) => state_words(*state).map(notice).into_iter().collect(),
        Event::Welcome {
            nick,
            resumed,
            signing_in,
        } => vec![notice(welcome_words(nick, *resumed, signing_in.as_ref()))],
        Event::Joined {
            room,
            topic,
            members,
            ..
        } => joined_words(room, topic.as_ref(), members, &[], Some(me))
            .into_iter()
            .map(notice)
            .collect(),
        Event::Parted {
            room,
            kicked: false,
        } => vec![notice(parted_words(room))],
        Event::Away { nick, away } => vec![notice(away_words(nick, away.as_ref(), Some(me)))],
        Event::Done(words) => vec![notice(words.clone())],
        Event::Whois { nick, user } => whois_lines(nick, user.as_ref(), Some(me))
            .into_iter()
            .map(notice)
            .collect(),
        Event::Devices(devices) => devices_lines(devices).into_iter().map(notice).collect(),
        // The kick's own line said it.
        Event::Parted { kicked: true, .. } => Vec::new(),
        Event::Members {
            room,
            members,
            asked: true,
            ..
        } => vec![notice(members_words(room, members, &[], None))],
        Event::Rooms(rooms) => vec![notice(rooms_words(rooms))],
        Event::Topic { room, topic } => vec![notice(topic_words(room, topic.as_ref()))],
        Event::Nick(nick) => vec![notice(nick_words(nick))],
        Event::SignedIn { account, .. } => vec![notice(signed_in_words(account))],
        Event::SignedOut => vec![notice(SIGNED_OUT.into())],
        Event::ReadUpTo { .. } => Vec::new(),
        Event::Policy {
            room,
            founder,
            ops,
            voiced,
            modes,
            asked: true,
        } => vec![notice(policy_words(
            room,
            founder.as_ref(),
            ops,
            voiced,
            modes,
        ))],
        Event::BanList {
            room,
            bans,
            mutes,
            asked: true,
        } => ban_list_lines(room, bans, mutes)
            .into_iter()
            .map(notice)
            .collect(),
        Event::Invited { room, by } => vec![notice(invited_words(room, by))],
        Event::Crowd {
            room,
            joined,
            left,
            members,
        } => vec![notice(crowd_words(room, *joined, *left, *members))],
        // Told on joining that we may not speak in a room: a fact about it, not a failure.
        Event::Error {
            kind: Some(ErrorKind::Muted),
            about: About::Room(_),
            text,
        } => clean_lines(text).map(notice).collect(),
        Event::Error { about, text, .. } => clean_lines(text)
            .map(|l| format!("error: {}", error_words(about, &l)))
            .collect(),
        Event::Info(text) => clean_lines(text).map(notice).collect(),
        Event::ConnectFailed {
            why,
            wait,
            next_address,
        } => vec![notice(sanitize(&connect_failed_words(
            why,
            *wait,
            *next_address,
        )))],
        Event::Motd(lines) => lines.iter().map(|l| notice(sanitize(l))).collect(),
        // History and search hits, one per line with room and time, then how it ended.
        Event::Past {
            room,
            events,
            at_start,
            oldest,
        } => events
            .iter()
            .map(past_line)
            .chain([past_end_line(
                room,
                *at_start,
                events.first().map(|e| e.seq).or(*oldest),
            )])
            .collect(),
        Event::Found { hits, more, .. } => hits
            .iter()
            .map(past_line)
            .chain([notice(results_words(hits.len()))])
            .chain(more.then(|| notice(search_cut_words())))
            .collect(),
        // The session's own refresh after a reconnect: nothing to say.
        Event::Members { asked: false, .. }
        // The settings that come with every change and join: the change's line said it
        // (nc says them only when asked too).
        | Event::Policy { asked: false, .. }
        | Event::BanList { asked: false, .. }
        // Who is away in a room is said once per change by `chat::AwayNews`, which knows what
        // was said.
        | Event::AwayHere { .. }
        // Asked for: the answer prints.
        | Event::Older { .. }
        | Event::Search { .. }
        | Event::Connect
        | Event::Close
        | Event::Focus(_)
        // Our own messages print when the server echoes them.
        | Event::Queued { .. }
        | Event::Settled { .. } => Vec::new(),
    }
}

/// Splits free text (server error details are plain strings, not [`Text`]) into lines with
/// anything a terminal would act on replaced.
pub fn clean_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines().filter(|l| !l.trim().is_empty()).map(sanitize)
}

fn with_room(room: &RoomName, current: Option<&RoomName>, body: String) -> String {
    if current == Some(room) {
        body
    } else {
        format!("[{room}] {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;
    use crate::types::MsgId;
    use crate::wire::ErrorKind;

    fn ev(kind: EventKind) -> RoomEvent {
        RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(1),
            at: Millis(0),
            from: Nick::new("alice").unwrap(),
            kind,
        }
    }

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    /// A join's line named every member, up to 300 on one line: ten (operators first), and
    /// how many more, or `and more` for a full list (whose size the next line gives).
    #[test]
    fn a_count_of_one_is_singular() {
        assert_eq!(count(0, "room"), "0 rooms");
        assert_eq!(count(1, "room"), "1 room");
        assert_eq!(count(2, "member"), "2 members");
        let modes = crate::moderation::Modes {
            limit: Some(1),
            ..Default::default()
        };
        let words = policy_words(&room("#a"), None, &[], &[], &modes);
        assert!(words.ends_with("(at most 1 member)"), "{words}");
    }

    #[test]
    fn a_join_names_ten_members_and_counts_the_rest() {
        let members: Vec<Nick> = std::iter::once(nick("me"))
            .chain((0..56).map(|i| nick(&format!("m{i}"))))
            .collect();
        let mut marks = vec![""; members.len()];
        marks[40] = "@";
        let said = joined_words(&room("#r"), None, &members, &marks, Some(&nick("me")));
        assert_eq!(
            said,
            [
                "you are in #r with 56 others: @m39, m0, m1, m2, m3, m4, m5, m6, m7, m8 and 46 \
              more (/who #r lists them)"
            ]
        );
        let full: Vec<Nick> = (0..MAX_MEMBERS_LISTED)
            .map(|i| nick(&format!("m{i}")))
            .collect();
        let said = joined_words(&room("#big"), None, &full, &[], Some(&nick("me")));
        assert_eq!(
            said,
            ["you are in #big with: m0, m1, m2, m3, m4, m5, m6, m7, m8, m9 and more"]
        );
        let few = [nick("me"), nick("a"), nick("b")];
        assert_eq!(
            joined_words(&room("#r"), None, &few, &["", "~", ""], Some(&nick("me"))),
            ["you are in #r with: ~a, b"]
        );
    }

    #[test]
    fn a_member_list_names_them_or_says_nobody_is_there() {
        assert_eq!(
            members_words(&room("#a"), &[nick("bob"), nick("ann")], &[], None),
            "#a (2): bob, ann"
        );
        assert_eq!(
            members_words(&room("#a"), &[], &[], None),
            "#a (0): nobody is in it now"
        );
    }

    /// A big room's list stops at `MAX_MEMBERS_LISTED`: `/who` on a room of 404 said
    /// `#big (300): ...` to nc users and natter's line mode, a size the room did not have.
    #[test]
    fn a_full_member_list_is_not_taken_for_the_rooms_size() {
        let full: Vec<Nick> = (0..MAX_MEMBERS_LISTED)
            .map(|i| nick(&format!("u{i}")))
            .collect();
        let said = members_words(&room("#big"), &full, &[], None);
        assert!(
            said.starts_with(
                "#big (300 listed; a list stops at 300, /rooms counts them all): u0, u1"
            ),
            "{said}"
        );
        let said = members_words(&room("#big"), &full, &[], Some(404));
        assert!(
            said.starts_with("#big (404 members, 300 listed): u0, "),
            "{said}"
        );
        // A count no bigger than the list adds nothing; a shorter list is the whole room.
        let said = members_words(&room("#big"), &full, &[], Some(300));
        assert!(said.starts_with("#big (300 listed; "), "{said}");
        assert_eq!(
            members_words(&room("#a"), &full[..2], &[], Some(404)),
            "#a (2): u0, u1"
        );
        // What nc users read.
        let msg = ServerMsg::Members {
            room: room("#big"),
            members: full,
        };
        let lines = reply_lines(&msg, None, None);
        assert!(lines[0].starts_with("-- #big (300 listed; "), "{lines:?}");
    }

    #[test]
    fn nc_users_read_that_a_search_was_cut() {
        let end = |count| reply_lines(&ServerMsg::FoundEnd { count }, None, None);
        assert_eq!(end(50), ["-- 50 results"]);
        assert_eq!(
            end(51),
            [
                "-- 50 results",
                "-- showing the newest 50 matches; narrow the words to see older ones"
            ]
        );
    }

    #[test]
    fn past_lines_carry_room_and_utc_time() {
        let mut e = ev(EventKind::Say {
            id: MsgId(1),
            text: Text::new("hi").unwrap(),
        });
        e.at = Millis(1_764_684_180_000); // 2025-12-02 14:03:00 UTC
        assert_eq!(past_line(&e), "[#lobby 2025-12-02 14:03] <alice> hi");
        assert_eq!(utc_minute(Millis(0)), "1970-01-01 00:00");
        assert_eq!(utc_minute(Millis(951_782_400_000)), "2000-02-29 00:00");
    }

    #[test]
    fn a_mode_change_says_what_it_means() {
        // `alice set #lobby +m` said nothing to someone who never learnt IRC's letters; the
        // letters stay (IRC users, and what /mode takes), the meaning follows them.
        let mode = |c: &str| {
            event_words(&ev(EventKind::Mode {
                change: Text::new(c).unwrap(),
            }))
            .unwrap()
        };
        for (change, words) in [
            (
                "+r",
                "alice set #lobby +r (registered: alice is its founder)",
            ),
            (
                "+m",
                "alice set #lobby +m (moderated: only operators and voiced members speak)",
            ),
            ("-m", "alice set #lobby -m (anyone may speak)"),
            (
                "+i",
                "alice set #lobby +i (invite only: only the invited may join)",
            ),
            ("-i", "alice set #lobby -i (anyone may join)"),
            ("+t", "alice set #lobby +t (only operators set the topic)"),
            ("-t", "alice set #lobby -t (anyone may set the topic)"),
            ("+k", "alice set #lobby +k (joining takes a key)"),
            ("-k", "alice set #lobby -k (no key needed)"),
            ("+l 5", "alice set #lobby +l 5 (at most 5 members)"),
            ("+l 1", "alice set #lobby +l 1 (at most 1 member)"),
            ("-l", "alice set #lobby -l (no limit on members)"),
            ("+o bob", "alice set #lobby +o bob (bob is an operator now)"),
            (
                "-o bob",
                "alice set #lobby -o bob (bob is an operator no longer)",
            ),
            (
                "+v bob",
                "alice set #lobby +v bob (bob may speak while #lobby is moderated)",
            ),
            (
                "-v bob",
                "alice set #lobby -v bob (bob is voiced no longer)",
            ),
            ("+b nick:eve", "alice set #lobby +b nick:eve (banned)"),
            ("-b nick:eve", "alice set #lobby -b nick:eve (ban lifted)"),
            (
                "+q account:eve",
                "alice set #lobby +q account:eve (muted: reads but does not speak)",
            ),
            (
                "-q account:eve",
                "alice set #lobby -q account:eve (mute lifted)",
            ),
            // Words, not letters: as they are.
            ("founder root", "alice set #lobby founder root"),
            ("+x", "alice set #lobby +x"),
            // The operator removed alice's account: said as what it means, not as her act.
            (
                "account removed: no founder",
                "the account alice was removed: #lobby has no founder now",
            ),
            (
                "account removed",
                "the account alice was removed: it is no operator or voiced member of #lobby now",
            ),
        ] {
            assert_eq!(mode(change), words);
        }
    }

    #[test]
    fn lines_read_like_chat() {
        let lobby = RoomName::lobby();
        let cur = Some(&lobby);
        let t = |s| Some(Text::new(s).unwrap());
        let say = EventKind::Say {
            id: MsgId(1),
            text: Text::new("hello").unwrap(),
        };
        assert_eq!(event_line(&ev(say.clone()), cur, None), "<alice> hello");
        assert_eq!(
            event_line(&ev(say.clone()), None, None),
            "[#lobby] <alice> hello"
        );
        assert_eq!(event_words(&ev(say)), None);
        let act = EventKind::Act {
            id: MsgId(2),
            text: Text::new("waves").unwrap(),
        };
        assert_eq!(event_line(&ev(act), cur, None), "* alice waves");
        assert_eq!(
            event_line(&ev(EventKind::Join), cur, None),
            "-- alice joined #lobby"
        );
        assert_eq!(
            event_line(&ev(EventKind::Part { reason: t("bye") }), cur, None),
            "-- alice left #lobby (bye)"
        );
        assert_eq!(
            event_line(&ev(EventKind::Quit { reason: None }), cur, None),
            "-- alice quit"
        );
        assert_eq!(
            event_line(&ev(EventKind::Nick { new: nick("al") }), cur, None),
            "-- alice is now known as al"
        );
        assert_eq!(
            event_line(&ev(EventKind::Topic { topic: t("rust") }), cur, None),
            "-- alice set the topic of #lobby: rust"
        );
        assert_eq!(
            gap_line(&lobby, Seq(3), Seq(7), cur),
            "-- 5 messages missed here (#lobby #3..#7)"
        );
    }

    #[test]
    fn line_mode_prints_history_and_search_hits_one_per_line() {
        let mut e = ev(EventKind::Say {
            id: MsgId(1),
            text: Text::new("hi").unwrap(),
        });
        e.at = Millis(1_764_684_180_000);
        let me = nick("me");
        let past = Event::Past {
            room: RoomName::lobby(),
            events: vec![e.clone()],
            at_start: true,
            oldest: Some(e.seq),
        };
        assert_eq!(
            session_lines(&past, &me),
            [
                "[#lobby 2025-12-02 14:03] <alice> hi",
                "-- (the beginning of #lobby)"
            ]
        );
        let more = Event::Past {
            room: RoomName::lobby(),
            events: Vec::new(),
            at_start: false,
            oldest: None,
        };
        assert_eq!(
            session_lines(&more, &me),
            ["-- (/history #lobby shows older lines)"]
        );
        let found = Event::Found {
            room: None,
            words: Text::new("hi").unwrap(),
            hits: vec![e.clone(), e.clone()],
            more: false,
        };
        assert_eq!(
            session_lines(&found, &me),
            [
                "[#lobby 2025-12-02 14:03] <alice> hi",
                "[#lobby 2025-12-02 14:03] <alice> hi",
                "-- 2 results"
            ]
        );
        // Cut at the server's limit: a last line says so (line mode).
        let cut = Event::Found {
            room: None,
            words: Text::new("hi").unwrap(),
            hits: vec![e],
            more: true,
        };
        assert_eq!(
            session_lines(&cut, &me),
            [
                "[#lobby 2025-12-02 14:03] <alice> hi",
                "-- 1 result",
                "-- showing the newest 50 matches; narrow the words to see older ones"
            ]
        );
        let asked = Event::Search {
            room: None,
            words: Text::new("hi").unwrap(),
        };
        assert!(session_lines(&asked, &me).is_empty(), "the answer prints");
        assert_eq!(
            search_words(Some(&room("#rust")), &Text::new("a b").unwrap(), Some(1)),
            "1 result for \"a b\" in #rust"
        );
    }

    #[test]
    fn direct_lines_depend_on_who_reads() {
        let dm = DirectMsg {
            from: nick("alice"),
            to: nick("bob"),
            id: MsgId(1),
            at: Millis(0),
            text: Text::new("psst").unwrap(),
        };
        assert_eq!(direct_line(&dm, &nick("Bob")), "*alice* psst");
        assert_eq!(direct_line(&dm, &nick("alice")), "-> *bob* psst");
        let ev = Event::Direct(dm);
        assert_eq!(session_lines(&ev, &nick("bob")), ["*alice* psst"]);
        assert_eq!(session_lines(&ev, &nick("alice")), ["-> *bob* psst"]);
    }

    #[test]
    fn line_mode_names_the_room_of_every_room_event() {
        let say = Event::Room(RoomEvent {
            room: room("#rust"),
            seq: Seq(3),
            at: Millis(0),
            from: nick("bob"),
            kind: EventKind::Say {
                id: MsgId(1),
                text: Text::new("hello").unwrap(),
            },
        });
        assert_eq!(session_lines(&say, &nick("alice")), ["[#rust] <bob> hello"]);
        let gap = Event::Gap {
            room: room("#x"),
            first: Seq(2),
            last: Seq(2),
        };
        assert_eq!(
            session_lines(&gap, &nick("me")),
            ["[#x] -- 1 message missed here (#x #2..#2)"]
        );
    }

    #[test]
    fn line_mode_notices_and_errors_are_prefixed_and_clean() {
        let me = nick("me");
        let err = Event::Error {
            kind: None,
            about: About::Input,
            text: "nick taken\x1b[2J\nsecond line".into(),
        };
        let lines = session_lines(&err, &me);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("error: nick taken"));
        assert!(!lines[0].contains('\x1b'));
        assert_eq!(lines[1], "error: second line");
        let joined = Event::Joined {
            room: room("#rust"),
            topic: Some(Text::new("crabs").unwrap()),
            members: vec![nick("me"), nick("b")],
            seq: Seq(1),
        };
        assert_eq!(
            session_lines(&joined, &me),
            ["-- you are in #rust with: b", "-- topic of #rust: crabs"]
        );
        let info = Event::Info("one\ntwo".into());
        assert_eq!(session_lines(&info, &me), ["-- one", "-- two"]);
        // Told on joining that we may not speak: a notice, not an error.
        let voiceless = Event::Error {
            kind: Some(ErrorKind::Muted),
            about: About::Room(room("#hush")),
            text: "#hush is moderated".into(),
        };
        assert_eq!(session_lines(&voiceless, &me), ["-- #hush is moderated"]);
        assert!(session_lines(&Event::Connect, &me).is_empty());
        let rooms = Event::Rooms(vec![RoomInfo {
            room: room("#a"),
            members: 4,
        }]);
        assert_eq!(session_lines(&rooms, &me), ["-- rooms: #a (4)"]);
        assert_eq!(
            session_lines(
                &Event::Welcome {
                    nick: me.clone(),
                    resumed: false,
                    signing_in: None
                },
                &me
            ),
            ["-- connected as me"]
        );
    }

    #[test]
    fn room_settings_say_no_modes_rather_than_a_bare_plus() {
        let modes = crate::moderation::Modes::default();
        assert_eq!(
            policy_words(&room("#r"), Some(&nick("alice")), &[], &[], &modes),
            "#r is registered to alice; no modes set"
        );
    }

    /// `/mode` shows operators the key (README: "the key only to operators"); it said only
    /// `+k`, to them too. Everyone else is sent `*` and reads no key.
    #[test]
    fn room_settings_show_operators_the_key() {
        let key = |k: &str| crate::moderation::Modes {
            key: Text::new(k).ok(),
            limit: Some(3),
            ..Default::default()
        };
        assert_eq!(
            policy_words(&room("#r"), Some(&nick("alice")), &[], &[], &key("sesame")),
            "#r is registered to alice; modes +kl (key sesame, at most 3 members)"
        );
        assert_eq!(
            policy_words(&room("#r"), Some(&nick("alice")), &[], &[], &key("*")),
            "#r is registered to alice; modes +kl (at most 3 members)"
        );
    }

    #[test]
    fn errors_say_what_they_refused() {
        let refused = |about| {
            session_lines(
                &Event::Error {
                    kind: Some(ErrorKind::Invalid),
                    about,
                    text: "no".into(),
                },
                &nick("me"),
            )
        };
        assert_eq!(
            refused(About::Join(room("#x"))),
            ["error: could not join #x: no"]
        );
        assert_eq!(
            refused(About::Part(room("#x"))),
            ["error: could not leave #x: no"]
        );
        assert_eq!(
            refused(About::Nick(nick("bob"))),
            ["error: could not change your nick to bob: no"]
        );
        assert_eq!(refused(About::Session), ["error: no"]);
        let long = "x".repeat(300);
        let words = undelivered_words(&Target::Room(room("#b")), &long, "flood");
        assert!(words.starts_with("not delivered to #b: xxx"), "{words}");
        assert!(
            words.ends_with("… (flood)") && words.chars().count() < 100,
            "{words}"
        );
    }

    #[test]
    fn titles_count_unread_and_mentions() {
        assert_eq!(title(Some("#lobby"), 0, 0), "#lobby · natter");
        assert_eq!(title(Some("#lobby"), 5, 0), "(5) #lobby · natter");
        assert_eq!(title(Some("#lobby"), 5, 2), "(5, @2) #lobby · natter");
        assert_eq!(title(None, 0, 0), "natter");
    }

    #[test]
    fn notices_read_as_irc_shows_them() {
        let ev = RoomEvent {
            room: room("#a"),
            seq: Seq(3),
            at: Millis(0),
            from: nick("bot"),
            kind: EventKind::Notice {
                id: MsgId(1),
                text: Text::new("build passed").unwrap(),
            },
        };
        assert_eq!(event_line(&ev, None, None), "[#a] -bot- build passed");
        assert_eq!(
            event_line(&ev, Some(&room("#a")), None),
            "-bot- build passed"
        );
        assert_eq!(event_words(&ev), None, "chat, not words");
        let dm = DirectMsg {
            from: nick("bot"),
            to: nick("me"),
            id: MsgId(1),
            at: Millis(0),
            text: Text::new("psst").unwrap(),
        };
        assert_eq!(direct_notice_line(&dm, &nick("me")), "-bot- psst");
        assert_eq!(direct_notice_line(&dm, &nick("bot")), "-> -me- psst");
        assert_eq!(
            reply_lines(&ServerMsg::DirectNotice(dm), Some(&nick("me")), None),
            ["-bot- psst"]
        );
    }
}
