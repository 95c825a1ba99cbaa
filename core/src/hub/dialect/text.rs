//! The text dialect: people on `nc`/`telnet` typing lines (PROTOCOL.md, "Text mode"). A person
//! has a current room that plain lines go to; what the hub says comes back as lines worded by
//! [`crate::render`].
//!
//! A person is greeted (and put in `#lobby`) after their first line, or when the detection wait
//! passes with nothing typed; never by an HTTP request that a web page made a browser send to
//! this port (its lines would otherwise be said in `#lobby`).

use super::{Dialect, EventRef, Form, Hello, IfTaken, Limit, Note, Reply, Request, Step};
use crate::command::{self, Command, CommandError, HELP_LINE, Input};
use crate::hub::ConnKind;
use crate::hub::lines::{LineReader, wire_line};
use crate::limits::MAX_TEXT_BYTES;
use crate::render;
use crate::types::{MsgId, Nick, RoomName};
use crate::wire::{ClientMsg, ErrorKind, Re, ServerMsg};
use bytes::Bytes;

/// Lines at the start of a connection checked for the marks of an HTTP request.
const HTTP_CHECKED_LINES: u8 = 8;

/// Forms of a room event for a person: in their current room, or elsewhere (named in front);
/// and a kick of the person themselves, addressed to them (`bob put you out of #a`), here or
/// elsewhere.
const HERE: Form = Form(0);
const ELSEWHERE: Form = Form(1);
const KICKED_HERE: Form = Form(2);
const KICKED_ELSEWHERE: Form = Form(3);

/// A person's connection.
#[derive(Debug, Default)]
pub(crate) struct Text {
    reader: LineReader,
    /// The room plain lines go to.
    /// Boxed: 8 bytes in every connection's dialect instead of 34 (text users are few).
    current: Option<Box<RoomName>>,
    /// Put out of a room (a kick, or a ban that holds it): the `Kick` event's line said so,
    /// and the `Parted` sent right after it (the next one) says nothing more ("you left" would
    /// read as leaving of one's own accord). A `Cell`, as rendering that `Parted` is what uses
    /// it up; one byte, in what was padding.
    kicked: std::cell::Cell<bool>,
    /// The hello was stepped (after the first line, or the detection wait).
    greeted: bool,
    /// Some byte has arrived.
    any_byte: bool,
    /// Lines read so far, up to [`HTTP_CHECKED_LINES`].
    lines_seen: u8,
}

impl Text {
    fn hello() -> Step {
        Step::Hello(Hello {
            version: None,
            nick: None,
            resume: None,
            autojoin: Some(RoomName::lobby()),
            taken: IfTaken::Another,
        })
    }

    fn line(&mut self, text: &str, steps: &mut Vec<Step>) -> Result<(), ()> {
        if self.lines_seen < HTTP_CHECKED_LINES {
            self.lines_seen += 1;
            let refusal = if super::looks_like_http(text) {
                Some("this port speaks natter (nc, telnet or the natter client), not HTTP")
            } else if self.lines_seen == 1 && text.starts_with("PROXY ") {
                Some("a PROXY header is only taken from a trusted proxy")
            } else {
                None
            };
            if let Some(detail) = refusal {
                steps.push(Step::Fatal {
                    limit: None,
                    kind: ErrorKind::Protocol,
                    detail: detail.into(),
                });
                return Err(());
            }
        }
        if !self.greeted {
            self.greeted = true;
            steps.push(Text::hello());
        }
        let request = match command::parse(text) {
            Ok(None) => return Ok(()),
            Ok(Some(Input::Command(Command::Help(only)))) => {
                Request::Answer(Reply::Note(Note::Help(only)))
            }
            // Several rooms: one join each, in order, as if typed one by one.
            Ok(Some(Input::Command(Command::JoinMany(rooms)))) => {
                steps.extend(rooms.into_iter().map(|room| {
                    Step::Request(Request::Typed(Input::Command(Command::Join(room))))
                }));
                return Ok(());
            }
            Ok(Some(Input::Command(Command::PartMany { rooms, reason }))) => {
                steps.extend(rooms.into_iter().map(|room| {
                    Step::Request(Request::Typed(Input::Command(Command::Part {
                        room: Some(room),
                        reason: reason.clone(),
                    })))
                }));
                return Ok(());
            }
            Ok(Some(input)) => Request::Typed(input),
            Err(e) => {
                let kind = match e {
                    CommandError::Invalid(_) => ErrorKind::Invalid,
                    _ => ErrorKind::BadCommand,
                };
                Request::Answer(Reply::error(kind, Re::Conn, e.to_string()))
            }
        };
        steps.push(Step::Request(request));
        Ok(())
    }

    fn lines(lines: Vec<String>) -> Option<Bytes> {
        if lines.is_empty() {
            return None;
        }
        let mut s = lines.join("\r\n");
        s.push_str("\r\n");
        Some(Bytes::from(s))
    }
}

fn help(only: Option<&str>) -> String {
    let mut s = String::new();
    if only.is_none() {
        s.push_str("-- commands:\r\n");
    }
    for line in command::help_lines(only) {
        for part in wrap_help(&format!("--   {line}")) {
            s.push_str(&part);
            s.push_str("\r\n");
        }
    }
    if only.is_none() {
        s.push_str("-- anything else you type is said in your current room\r\n");
    }
    s
}

/// The width of the terminal `/help` is laid out for: an `nc` in a default window.
const HELP_WIDTH: usize = 80;

/// The column a `/help` description starts at: `--   `, a usage padded to 24, a space.
const HELP_WHAT_COLUMN: usize = 30;

/// A `/help` line cut at spaces to fit [`HELP_WIDTH`], what is left going on under the
/// descriptions' column (a word longer than the rest of a line is not cut): the list is the
/// first thing a newcomer on `nc` reads, and a third of its lines wrapped mid-word in an
/// 80-column terminal, under the usages.
fn wrap_help(line: &str) -> Vec<String> {
    // The usage and the description are two spaces apart at least; a usage has no two.
    let Some(gap) = line.get(5..).and_then(|l| l.find("  ")).map(|i| i + 5) else {
        return vec![line.to_owned()];
    };
    let start = line.len() - line[gap..].trim_start().len();
    let (head, what) = line.split_at(start);
    let indent = format!("--{}", " ".repeat(HELP_WHAT_COLUMN - 2));
    let mut out = Vec::new();
    let mut cur = head.to_owned();
    let mut bare = true;
    for word in what.split_whitespace() {
        if !bare && cur.chars().count() + 1 + word.chars().count() > HELP_WIDTH {
            out.push(core::mem::replace(&mut cur, indent.clone()));
            bare = true;
        }
        if !bare {
            cur.push(' ');
        }
        cur.push_str(word);
        bare = false;
    }
    out.push(cur);
    out
}

impl Dialect for Text {
    fn kind(&self) -> ConnKind {
        ConnKind::Text
    }

    fn feed(&mut self, data: &[u8], steps: &mut Vec<Step>) {
        if !self.any_byte && data.first() == Some(&0) {
            // A binary client whose preamble came after the detection wait: it has been greeted
            // as a person, which it cannot read. Closing makes it reconnect at once.
            steps.push(Step::Fatal {
                limit: None,
                kind: ErrorKind::Protocol,
                detail: "your preamble came after the detection wait; please reconnect".into(),
            });
            return;
        }
        if !self.any_byte && data.first() == Some(&super::TLS_HANDSHAKE) {
            // A TLS client (`natters://` or a browser's https) on the plain port: its hello
            // would otherwise be cut into lines of binary said in #lobby. It cannot read these
            // words, but the log and a person watching the socket can.
            steps.push(Step::Fatal {
                limit: None,
                kind: ErrorKind::Protocol,
                detail: "this port speaks natter in clear, not TLS: use the server's TLS port"
                    .into(),
            });
            return;
        }
        self.any_byte |= !data.is_empty();
        let mut lines = Vec::new();
        self.reader.feed(data, |l| lines.push(l));
        for mut line in lines {
            // Cut where a message ends, not only where the reader stops (2,048 bytes): a line
            // cut at the reader's limit is still over the 2,000 bytes a message may have, and
            // was refused whole after its notice, so a pasted paragraph said nothing at all.
            if line.cut || line.text.len() > MAX_TEXT_BYTES {
                let mut end = MAX_TEXT_BYTES.min(line.text.len());
                while !line.text.is_char_boundary(end) {
                    end -= 1;
                }
                line.text.truncate(end);
                steps.push(Step::Limit {
                    limit: Limit::Line,
                    kind: ErrorKind::LineTooLong,
                    detail: format!("line too long (max {MAX_TEXT_BYTES} bytes), cut"),
                });
            }
            if self.line(&line.text, steps).is_err() {
                return;
            }
        }
    }

    fn on_eof(&mut self, steps: &mut Vec<Step>) -> Option<Request> {
        // `printf '/who\n' | ncat host 8000` (or `nc -N`, `nc -q`): a last line without its
        // newline is a line all the same, and leaving is quitting, after the answers.
        self.feed(b"\n", steps);
        let reason = crate::types::Text::new("Connection closed").ok();
        Some(Request::Typed(Input::Command(Command::Quit(reason))))
    }

    fn on_wait(&mut self) -> Option<Step> {
        if self.greeted {
            return None;
        }
        self.greeted = true;
        Some(Text::hello())
    }

    fn resolve(&mut self, input: Input, next_id: MsgId) -> Result<ClientMsg, Reply> {
        let current = self.current.as_deref().cloned();
        #[allow(clippy::result_large_err)] // See `Dialect::resolve`.
        let room = |named: Option<RoomName>| {
            named.or_else(|| current.clone()).ok_or_else(|| {
                Reply::error(
                    ErrorKind::NotInRoom,
                    Re::Conn,
                    "you are in no room: /join #room first",
                )
            })
        };
        Ok(match input {
            Input::Say(text) => ClientMsg::Say {
                room: room(None)?,
                id: next_id,
                text,
            },
            Input::Command(cmd) => match cmd {
                Command::Me(text) => ClientMsg::Act {
                    room: room(None)?,
                    id: next_id,
                    text,
                },
                Command::Msg { to, text } => ClientMsg::Msg {
                    to,
                    id: next_id,
                    text,
                },
                Command::SayIn { room, text } => ClientMsg::Say {
                    room,
                    id: next_id,
                    text,
                },
                Command::Notice { room, text } => ClientMsg::Notice {
                    room,
                    id: next_id,
                    text,
                },
                Command::NoticeTo { to, text } => ClientMsg::NoticeTo {
                    to,
                    id: next_id,
                    text,
                },
                Command::Join(room) => ClientMsg::Join { room },
                // Made one part per room when the line was read (`Text::feed`).
                Command::PartMany { mut rooms, reason } => ClientMsg::Part {
                    room: rooms.pop().ok_or_else(|| {
                        Reply::error(ErrorKind::BadCommand, Re::Conn, "/part names no room")
                    })?,
                    reason,
                },
                // Made one join per room when the line was read (`Text::feed`).
                Command::JoinMany(mut rooms) => ClientMsg::Join {
                    room: rooms.pop().ok_or_else(|| {
                        Reply::error(ErrorKind::BadCommand, Re::Conn, "/join names no room")
                    })?,
                },
                Command::Part { room: r, reason } => ClientMsg::Part {
                    room: room(r)?,
                    reason,
                },
                Command::Who(r) => ClientMsg::Who { room: room(r)? },
                Command::Rooms => ClientMsg::Rooms,
                Command::Topic { room: r, topic } => ClientMsg::Topic {
                    room: room(r)?,
                    topic,
                },
                Command::ClearTopic(r) => ClientMsg::ClearTopic { room: room(r)? },
                Command::Whois(nick) => ClientMsg::Whois { nick },
                Command::Nick(nick) => ClientMsg::Nick { nick },
                Command::Quit(reason) => ClientMsg::Quit { reason },
                Command::Away(away) => ClientMsg::Away(away),
                Command::History { room: r, count } => ClientMsg::Older {
                    room: room(r)?,
                    before: crate::types::Seq(0),
                    limit: count.unwrap_or(crate::limits::HISTORY_LINES_DEFAULT),
                },
                // Search reads only the rooms one is in: in none, it would answer "no
                // results", as if nothing had matched.
                Command::Search { room: None, .. } if current.is_none() => {
                    return Err(Reply::error(
                        ErrorKind::NotInRoom,
                        Re::Conn,
                        "you are in no room: /search finds lines of the rooms you are in; /join #room first",
                    ));
                }
                Command::Search { room, words } => ClientMsg::Search { room, words },
                Command::Help(only) => return Err(Reply::Note(Note::Help(only))),
                Command::Register(password) => ClientMsg::Register {
                    password,
                    remember: false,
                },
                Command::Login { account, password } => ClientMsg::SignIn {
                    account,
                    proof: crate::wire::Proof::Password(password),
                    remember: false,
                },
                Command::Logout => ClientMsg::SignOut,
                Command::Devices => ClientMsg::Devices,
                Command::ForgetDevice(id) => ClientMsg::ForgetDevice { id },
                Command::NameDevice(id, label) => ClientMsg::NameDevice { id, label },
                Command::ChangePassword { old, new } => ClientMsg::ChangePassword { old, new },
                Command::JoinKey { room, key } => ClientMsg::JoinKey { room, key },
                Command::Admin(action) => ClientMsg::Admin(action),
                Command::Moderate { room: r, action } => ClientMsg::Moderate {
                    room: room(r)?,
                    action,
                },
            },
        })
    }

    fn render(&self, reply: &Reply, me: Option<&Nick>) -> Option<Bytes> {
        let line = |s: String| Some(Bytes::from(wire_line(&s)));
        match reply {
            Reply::Msg(ServerMsg::Parted { .. }) if self.kicked.replace(false) => None,
            // People on nc read the text; client-only tags are for IRC clients.
            Reply::Msg(msg) | Reply::Direct { msg, .. } => {
                Text::lines(render::reply_lines(msg, me, self.current.as_deref()))
            }
            Reply::Welcome { nick, .. } => line(format!("Welcome to natter, {nick}! {HELP_LINE}")),
            Reply::Rejoined(ServerMsg::Joined { room, .. }) => {
                line(format!("-- you are now talking in {room}"))
            }
            Reply::Rejoined(_) => None,
            // The change's room event told it (`-- alice set #room +m`).
            Reply::Settings(_) => None,
            Reply::Fatal { detail, .. } => line(format!("ERROR: {detail}")),
            Reply::Killed { by, reason } => {
                let reason = super::killed_words(by, reason.as_deref());
                Text::lines(render::reply_lines(
                    &ServerMsg::Bye { reason },
                    me,
                    self.current.as_deref(),
                ))
            }
            Reply::Note(note) => match note {
                Note::Help(only) => Some(Bytes::from(help(*only))),
                Note::SameNick(nick) => line(format!("-- you are already known as {nick}")),
                Note::PastGone(room) => line(format!("-- ({})", render::gone_words(room))),
                Note::RecentStart(room) | Note::MissedStart(room) => {
                    line(format!("-- recent messages in {room}:"))
                }
                Note::RecentEnd | Note::MissedEnd => line("-- (end of recent messages)".into()),
                // nc's join replays the last lines whenever (it keeps no window): not sent.
                Note::Unreplayed {
                    room, count, more, ..
                } => line(format!(
                    "-- ({count}{} earlier messages in {room} are not shown: /history shows them)",
                    if *more { " or more" } else { "" }
                )),
                Note::NowTalkingIn(room) => line(format!("-- you are now talking in {room}")),
                Note::Size {
                    room,
                    members,
                    summed,
                } => line(format!(
                    "-- {}",
                    render::size_words(room, *members, *summed)
                )),
                Note::Invited { nick, room } => line(format!("-- you invited {nick} to {room}")),
                Note::InvitedBy { .. } => None,
                Note::Voiceless { why: words, .. } => line(format!("-- {words}")),
                Note::Unchanged(_)
                | Note::NickOnly(_)
                | Note::DoneOutside(_)
                | Note::ServerBan { .. }
                | Note::AdminDone(_) => note.done_words().and_then(|w| line(format!("-- {w}"))),
                Note::Motd(motd) => Some(Bytes::from(
                    motd.lines()
                        .flat_map(|l| wire_line(&format!("-- {l}")))
                        .collect::<Vec<u8>>(),
                )),
                // Only IRC has `OPER`; said in words all the same.
                Note::Oper(answer) => line(
                    match answer {
                        super::OperAnswer::Granted => "-- you have a server admin's powers now",
                        super::OperAnswer::NotAnAdmin => "-- that is not a server admin account",
                        super::OperAnswer::WrongPassword => "-- wrong password",
                        super::OperAnswer::Ended => "-- your server admin's powers ended",
                    }
                    .to_owned(),
                ),
                // A join or a member list with operators marked (`@alice`).
                Note::Detailed { msg, marks, .. } => match &**msg {
                    ServerMsg::Members { room, members } => line(format!(
                        "-- {}",
                        render::members_words(room, members, marks, None)
                    )),
                    ServerMsg::Joined {
                        room,
                        topic,
                        members,
                        ..
                    } => Text::lines(
                        render::joined_words(room, topic.as_ref(), members, marks, me)
                            .into_iter()
                            .map(|w| format!("-- {w}"))
                            .collect(),
                    ),
                    msg => Text::lines(render::reply_lines(msg, me, self.current.as_deref())),
                },
                // The room event and `Policy` tell it.
                Note::KeySet { .. } | Note::Tagged { .. } => None,
                // Only IRC has `MONITOR` and `WALLOPS`.
                Note::Monitor(_) | Note::Wallops { .. } => None,
            },
            Reply::Own(bytes) => Some(bytes.clone()),
            // No typed command asks a query (yet), and nobody needs to hear of others' away.
            Reply::Info(crate::hub::query::Info::NotAway) => {
                line(format!("-- {}", render::NOT_AWAY))
            }
            Reply::Info(info) => info
                .away_msg(me)
                .and_then(|msg| Text::lines(render::reply_lines(&msg, me, None))),
            Reply::Ping(_) => None,
        }
    }

    fn event_form(&self, room: &RoomName) -> Form {
        if self.current.as_deref() == Some(room) {
            HERE
        } else {
            ELSEWHERE
        }
    }

    fn kicked_form(&self, room: &RoomName) -> Option<Form> {
        Some(match self.event_form(room) {
            HERE => KICKED_HERE,
            _ => KICKED_ELSEWHERE,
        })
    }

    /// A live join of someone away is followed by their away line (`-- bob is away: lunch`),
    /// as binary clients get `AwayHere` and IRC's away-notify an `AWAY` after the `JOIN`.
    fn render_event(&self, ev: &EventRef<'_>, form: Form) -> Option<Bytes> {
        let away = ev.joined_as().away.as_ref();
        let ev = ev.event()?;
        if ev.kind == crate::wire::EventKind::Moved {
            // A member's session moved to another server of the cluster: nothing to say.
            return None;
        }
        // A nick change or a quit is the user's, not a room's: shown once
        // (`user_events_once`), without the room it came through.
        let user_wide = matches!(
            ev.kind,
            crate::wire::EventKind::Nick { .. } | crate::wire::EventKind::Quit { .. }
        );
        let current = (form == HERE || form == KICKED_HERE || user_wide).then_some(&ev.room);
        // A kicked form is asked for a kick of this person only: addressed to its target.
        let me = match &ev.kind {
            crate::wire::EventKind::Kick { target, .. }
                if form == KICKED_HERE || form == KICKED_ELSEWHERE =>
            {
                Some(target)
            }
            _ => None,
        };
        let mut line = wire_line(&render::event_line(ev, current, me));
        if let Some(away) = away.filter(|_| ev.kind == crate::wire::EventKind::Join) {
            line.extend(wire_line(&format!(
                "-- {}",
                render::away_words(&ev.from, Some(away), None)
            )));
        }
        Some(Bytes::from(line))
    }

    fn echoes_own(&self) -> bool {
        false
    }

    fn replays_own_join(&self) -> bool {
        // The "you are in" line says it already.
        false
    }

    fn user_events_once(&self) -> bool {
        true
    }

    fn replays_lines_only(&self) -> bool {
        // A person's first screen in a room is its conversation: in a busy lobby the last
        // events are mostly `guest1234 joined #lobby` and `guest1234 quit`, which buried the
        // few lines said. As on IRC, the replay leaves out joins, parts, quits, kicks, renames,
        // topics and modes: the join's own lines say who is in the room and its topic now,
        // and a kick is of someone no longer there. Live, all of them are still shown.
        true
    }

    fn answers_in_order(&self) -> bool {
        // `/search a`, `/search b` and `/history` pasted at once: each answer after the one
        // before, whichever the store's readers finish first.
        true
    }

    fn keepalive(&self) -> bool {
        // A person may sit idle for hours; TCP keepalive finds dead peers.
        false
    }

    fn resumable(&self) -> bool {
        false
    }

    fn entered(&mut self, room: &RoomName) {
        self.current = Some(Box::new(room.clone()));
    }

    fn kicked(&mut self, _room: &RoomName) {
        self.kicked.set(true);
    }

    fn left(&mut self, room: &RoomName, next: Option<&RoomName>) -> Option<Note> {
        if self.current.as_deref() != Some(room) {
            return None;
        }
        self.current = next.cloned().map(Box::new);
        self.current.as_deref().cloned().map(Note::NowTalkingIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Text, data: &[u8]) -> Vec<Step> {
        let mut steps = Vec::new();
        t.feed(data, &mut steps);
        steps
    }

    #[test]
    fn greeted_after_the_first_line_not_before() {
        let mut t = Text::default();
        assert!(feed(&mut t, b"hel").is_empty());
        let steps = feed(&mut t, b"lo\n");
        assert!(matches!(&steps[0], Step::Hello(h) if h.nick.is_none()));
        assert!(matches!(
            &steps[1],
            Step::Request(Request::Typed(Input::Say(_)))
        ));
        assert_eq!(t.on_wait(), None, "greeted once");
    }

    #[test]
    fn the_wait_greets_a_silent_person_once() {
        let mut t = Text::default();
        assert!(matches!(t.on_wait(), Some(Step::Hello(_))));
        assert_eq!(t.on_wait(), None);
        let steps = feed(&mut t, b"hi\n");
        assert_eq!(steps.len(), 1, "no second hello: {steps:?}");
    }

    #[test]
    fn http_requests_are_closed_before_anything_is_said() {
        for req in [
            &b"POST /x HTTP/1.1\r\nHost: a\r\n\r\nhello\n"[..],
            b"GET / HTTP/1.0\r\n",
            b"hi\nHOST: evil.example\r\n",
        ] {
            let mut t = Text::default();
            let steps = feed(&mut t, req);
            assert!(
                matches!(steps.last(), Some(Step::Fatal { .. })),
                "{req:?}: {steps:?}"
            );
            let said = steps
                .iter()
                .filter(|s| matches!(s, Step::Request(Request::Typed(Input::Say(_)))))
                .count();
            assert!(said <= 1, "{steps:?}");
        }
        // Words that only look a little like HTTP are chat.
        let mut t = Text::default();
        let steps = feed(&mut t, b"GET over here\npost it\n");
        assert!(!steps.iter().any(|s| matches!(s, Step::Fatal { .. })));
    }

    #[test]
    fn a_tls_client_hello_is_closed_before_anything_is_said() {
        // The first bytes of a real ClientHello: a handshake record, TLS 1.0 record version,
        // then a line feed inside it, as the length or random bytes often hold.
        let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\x8f junk\n";
        for greeted in [false, true] {
            let mut t = Text::default();
            if greeted {
                assert!(t.on_wait().is_some());
            }
            let steps = feed(&mut t, hello);
            assert!(
                matches!(&steps[..], [Step::Fatal { detail, .. }] if detail.contains("TLS")),
                "{steps:?}"
            );
        }
        // Later in a conversation the byte is a control character like any other.
        let mut t = Text::default();
        let _ = feed(&mut t, b"hi\n");
        let steps = feed(&mut t, b"\x16x\n");
        assert!(!steps.iter().any(|s| matches!(s, Step::Fatal { .. })));
    }

    #[test]
    fn a_late_binary_preamble_is_closed_so_the_client_reconnects() {
        let mut t = Text::default();
        assert!(t.on_wait().is_some());
        let steps = feed(&mut t, b"\0NTR");
        assert!(matches!(steps[..], [Step::Fatal { .. }]));
    }

    #[test]
    fn lines_resolve_against_the_current_room_when_they_run() {
        let mut t = Text::default();
        let say = Input::Say(crate::types::Text::new("hi").unwrap());
        assert!(t.resolve(say.clone(), MsgId(1)).is_err(), "no room yet");
        t.entered(&RoomName::new("#a").unwrap());
        t.entered(&RoomName::new("#b").unwrap());
        assert!(matches!(
            t.resolve(say.clone(), MsgId(2)),
            Ok(ClientMsg::Say { room, id: MsgId(2), .. }) if room.as_str() == "#b"
        ));
        let next = RoomName::new("#a").unwrap();
        let note = t.left(&RoomName::new("#b").unwrap(), Some(&next));
        assert_eq!(note, Some(Note::NowTalkingIn(next)));
        assert!(matches!(
            t.resolve(say, MsgId(3)),
            Ok(ClientMsg::Say { room, .. }) if room.as_str() == "#a"
        ));
    }
}
