//! The IRC dialect: IRC clients (irssi, WeeChat, HexChat, bots) on an IRC listener
//! ([`super::Door::Irc`]), in the same rooms as everyone else. PROTOCOL.md ("IRC") describes
//! the mapping for people; in short:
//!
//! - **Lines** are cut by `reader` (512 bytes, 8191 with tags; longer ones get `417`, non-UTF-8
//!   ones `FAIL ... INVALID_UTF8`). Each line is one flood-control token and is *read when it
//!   runs* ([`super::Request::Line`], `read.rs`): whether a `NICK` registers or renames depends
//!   on whether the registration before it went through, and replies are worded as answers to
//!   the line that is running (its command, its `label`).
//! - **Registration**: `CAP LS/REQ/END`, `PASS` (ignored), `NICK`, `USER`; then a hello that
//!   refuses a taken nick (`433`, and the client stays unregistered) instead of picking another.
//! - **Names**: natter nicks are IRC nicks (`CASEMAPPING=ascii`), natter rooms are `#`
//!   channels; everyone is `nick!nick@natter` in what they do, while WHO, WHOIS and WHOWAS show
//!   an IRC user's `USER` name (`~name`) and real name, kept here ([`Irc::ident`]) and read by
//!   the hub's queries. A channel natter cannot hold gets `479`/`403`. The server's name is the
//!   operator's (`[irc] server_name`), held by each connection.
//! - **Words** (`words.rs`): the hub's replies and room events as IRC lines and numerics; a text
//!   longer than a line becomes several `PRIVMSG`s; tags (`time`, `msgid`, `label`, `batch`)
//!   as the client's capabilities ask.
//!
//! What an IRC connection needs to word a reply it keeps here: its capabilities, its nick as
//! of the line running, its channels, and the line running (command, label, targets).

mod caps;
mod help;
mod message;
mod names;
mod numeric;
mod read;
mod reader;
mod time;
mod words;

pub(crate) use names::HOST as IRC_HOST;
pub(crate) use names::mask as shown_mask;

use super::{Dialect, EventRef, Form, Limit, Note, Reply, Request, Step};
use crate::hub::ConnKind;
use crate::hub::config::ServerName;
use crate::limits::{IRC_MAX_LINE, IRC_MAX_TAGGED_LINE};
use crate::types::{MsgId, Nick, RoomName, Text};
use crate::wire::ErrorKind;
use bytes::Bytes;
use caps::{Cap, Caps};
use message::{Message, Tags, write_line};
use reader::{Read, Reader};
use std::collections::BTreeSet;

/// Messages remembered for a late refusal ([`State::recent`]): more than a client sends in a
/// cluster's round trip or a store's commit at IRC's pace (a burst of the default
/// [`crate::limits::FLOOD_BURST`], 10, and the first tokens after it; a few bytes each, kept
/// while the connection lives). With 8, a paste of 12 lines refused by a full disk named
/// `*` and no label for its first ones.
const RECENT_SENT: usize = 16;

/// Form bits: the `time` tag.
const F_TIME: u8 = 1;
/// Form bits: the `msgid` tag (message-tags).
const F_TAGS: u8 = 2;
/// Form bits: the `account` tag (account-tag).
const F_ACCOUNT: u8 = 16;
/// Form bits: JOIN lines with the account and real name (extended-join).
const F_EXTJOIN: u8 = 32;
/// Form bits: an `AWAY` line after the JOIN of someone away (away-notify).
const F_AWAY: u8 = 64;
/// Form bits: a `CHGHOST` line after a NICK (chghost).
const F_CHGHOST: u8 = 128;
/// Form state (two bits): a live event any member with the same capabilities shares.
const S_LIVE: u8 = 0;
/// Form state: an answer to this connection's labeled line (its echo): tagged with the label.
const S_LABEL: u8 = 4;
/// Form state: inside this connection's labeled-response batch.
const S_BATCH: u8 = 8;
/// Form state: history replayed to this connection on its join.
const S_REPLAY: u8 = 12;
const STATE: u8 = 12;

/// How the replies to the running line are marked for a client that labeled it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    /// Not labeled (or the client has not enabled labeled-response with batch).
    None,
    /// One reply expected: it carries `label=`; none gets an `ACK`.
    Single(String),
    /// Several replies expected: a `labeled-response` batch with this id was opened.
    Batch(String),
}

/// The line being run.
#[derive(Debug)]
struct Running {
    /// Its command, in upper case.
    verb: String,
    label: Label,
    /// Messages it sent, by id, with the target as the client named it (for `401`/`404`).
    sent: Vec<(MsgId, String)>,
    /// What it named first (a WHO mask, a PART's channel), for end-of-list numerics; the nick
    /// a KICK, INVITE or MODE names, for its `401`.
    target: String,
    /// A `MODE #channel` that asks for the channel's modes (`324` answers it; natter's
    /// settings sent after a change, or to every member, are not worded).
    modes_asked: bool,
    /// A `MODE #channel q` that asks for the mutes (the quiet list, `728`/`729`) rather than
    /// the bans.
    quiets_asked: bool,
    /// A PART's reason, for the `PART` line the client gets back; a QUIT's, for its `ERROR`.
    reason: Option<Text>,
    /// The number of the line, for the batch id (`h<n>`) of history replayed on a JOIN.
    number: u64,
    /// Something was answered to it before its answer was kept for later (a labeled line
    /// that got an answer needs no `ACK`).
    answered: bool,
    /// A WHO's WHOX fields, when it asked for some.
    whox: Option<Whox>,
}

impl Running {
    /// Line number `number`, a `verb` with `label`, that has sent and asked nothing yet.
    fn new(verb: String, label: Label, number: u64) -> Running {
        Running {
            verb,
            label,
            sent: Vec::new(),
            target: String::new(),
            modes_asked: false,
            quiets_asked: false,
            reason: None,
            number,
            answered: false,
            whox: None,
        }
    }
}

/// What a WHOX `WHO mask %fields[,token]` asks for: its replies are `354`s with those fields, in
/// WHOX's order (`t c u i h s n f d l a o r`) whatever the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Whox {
    /// The field letters asked for that natter knows.
    fields: String,
    /// The token (`t`): up to 3 digits, `0` if none was given.
    token: String,
}

impl Whox {
    /// `%fields[,token]` (the part after the `%`).
    fn parse(s: &str) -> Whox {
        let (fields, token) = s.split_once(',').unwrap_or((s, ""));
        let token: String = token.chars().take(3).collect();
        let token = if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            token
        } else {
            "0".into()
        };
        Whox {
            fields: fields
                .chars()
                .filter(|c| "tcuihsnfdlaor".contains(*c))
                .collect(),
            token,
        }
    }
}

/// A message sent by a line that has ended, remembered for a late refusal ([`State::recent`]).
#[derive(Debug)]
struct Sent {
    id: MsgId,
    /// The target as the client named it.
    target: String,
    /// `PRIVMSG` or `NOTICE`.
    command: &'static str,
    /// The label of a labeled line whose one answer was the message's echo (echo-message).
    /// With a store the echo waits for the commit and is dropped if the write fails: the
    /// store's refusal (`NotStored`) is then the line's answer, and carries its label, or a
    /// client that tracks its labels shows the message as being sent for ever.
    label: Option<String>,
}

/// Whether `running` is a line's answer that came after the line ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Late {
    /// No (or not any more).
    #[default]
    No,
    /// A join answered late for which no line was kept (another connection of the user, a
    /// join the hub made itself): it runs as an unlabeled JOIN of its own.
    Fresh,
    /// The kept line ([`State::kept`]), taken up again.
    Kept,
}

/// An IRC client's connection. Its state is boxed: every connection holds its dialect inline,
/// and an IRC client's is bigger than the other dialects' (see [`State`]). What a broadcast asks
/// of every member (its form) is kept inline, so it costs no second cache miss per member.
#[derive(Debug, Default)]
pub(crate) struct Irc {
    state: Box<State>,
    /// The form of live events: the capability bits.
    live: u8,
    /// A line of this connection's is running (its events may need a form of their own).
    busy: bool,
}

impl core::ops::Deref for Irc {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl core::ops::DerefMut for Irc {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// What an IRC connection keeps.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The server's name (`[irc] server_name`), the source of its own lines.
    server: ServerName,
    reader: Reader,
    caps: Caps,
    /// `CAP LS` or `CAP REQ` was sent before registration: it waits for `CAP END`.
    negotiating: bool,
    /// The nick given before registration.
    wanted: Option<Nick>,
    /// `USER` was given.
    user_given: bool,
    /// `USER`'s user name (at most [`crate::limits::IRC_MAX_USERNAME`] characters) and real
    /// name (clean text of at most [`crate::limits::IRC_MAX_REALNAME`] bytes), shown to others
    /// in WHO, WHOIS and WHOWAS (see [`Irc::ident`]); empty until `USER`.
    username: String,
    realname: String,
    /// A hello was stepped and the next line will tell whether it went through.
    hello_sent: bool,
    /// The nick as of the line running; `None` until registered.
    nick: Option<Nick>,
    /// User modes the client set (`i`, `w`): reported back, nothing more.
    umodes: BTreeSet<char>,
    /// The channels the user is in.
    channels: BTreeSet<RoomName>,
    /// The channel the user was last put out of (its `KICK` said so: the `PART` that natter's
    /// `Parted` would make is not sent), until it enters one again.
    kicked: Option<RoomName>,
    /// The channel a server admin closed while the user was in it, with the reason its `PART`
    /// gives (`Channel closed by root: moved`), until it enters one again.
    closed: Option<(RoomName, String)>,
    /// What the account missed in a room, replayed with the welcome, waits for the store: its
    /// header and footer come in different lines' turns, so they open and close no batch.
    missed_waits: bool,
    /// Rooms whose missed lines wait for (or come from) the store's page, after the welcome's
    /// turn: their events are history until the replay is done ([`Dialect::missed_done`]),
    /// in a `chathistory` batch of their own (`s<n>`: `Some(n)` once opened) for a client
    /// that takes one, as the lines replayed in the welcome's turn are.
    from_store: Vec<(RoomName, Option<u64>)>,
    /// Store replays' batches opened so far (their ids).
    store_batches: u64,
    running: Option<Running>,
    /// `running` is answered after its line ended ([`Dialect::late_join`],
    /// [`Dialect::late_answer`]).
    late: Late,
    /// A line that ended with part of its answer to come (a JOIN through the cluster's log):
    /// its command and label, for that answer ([`Dialect::read_done`]'s `later`).
    kept: Option<Running>,
    /// The last messages sent, oldest first, for a refusal that comes after their line ended
    /// (a store that could not write them, a full disk; in a cluster: the log refused a line,
    /// or the node holding a nick found nobody), whose numeric names them.
    recent: std::collections::VecDeque<Sent>,
    /// Lines read so far (batch ids).
    lines: u64,
    /// Some byte has arrived (the first is checked for a TLS client's hello).
    any_byte: bool,
    /// `AUTHENTICATE PLAIN` was sent: the base64 gathered so far (lines of 400 continue).
    sasl: Option<String>,
    /// Signed in to the account of its nick (SASL): learnt when the hub's `SignedIn` is worded,
    /// which happens in `render` (`&self`), hence the cell.
    signed_in: core::cell::Cell<bool>,
}

impl Irc {
    /// A connection to a server named `server`.
    pub(crate) fn new(server: ServerName) -> Irc {
        Irc {
            state: Box::new(State {
                server,
                ..State::default()
            }),
            live: 0,
            busy: false,
        }
    }

    /// The user name and real name `USER` gave, once it did.
    pub(crate) fn ident(&self) -> Option<(&str, &str)> {
        self.user_given
            .then_some((self.username.as_str(), self.realname.as_str()))
    }

    /// The real name is now `realname` (`SETNAME`, on this or another of the user's IRC
    /// connections; already clean and cut).
    pub(crate) fn set_realname(&mut self, realname: &str) {
        if self.user_given {
            realname.clone_into(&mut self.realname);
        }
    }

    /// The client set user mode `w`: it reads server admins' `WALLOPS`.
    pub(crate) fn wallops(&self) -> bool {
        self.umodes.contains(&'w')
    }

    /// The client set user mode `i`: a WHO with a mask lists it only to those sharing a
    /// channel with it.
    pub(crate) fn invisible(&self) -> bool {
        self.umodes.contains(&'i')
    }

    /// Whether history replayed to this client comes in a `chathistory` batch: it can tell
    /// history (server-time) and takes batches, and does not ask for history itself.
    fn replays_in_batch(&self) -> bool {
        self.caps.has(Cap::ServerTime)
            && self.caps.has(Cap::Batch)
            && !self.caps.has(Cap::ChatHistory)
    }

    /// The batch (`s<n>`) that holds `room`'s replay from the store, while it is open.
    fn store_batch(&self, room: &RoomName) -> Option<u64> {
        self.from_store
            .iter()
            .find(|(r, _)| r == room)
            .and_then(|(_, b)| *b)
    }

    /// The nick numerics name: the user's, or before registration the one the client gave
    /// (`451 x`, as InspIRCd and ergo answer); `None` (`*`) if it gave none that stands.
    fn named(&self) -> Option<&Nick> {
        self.nick.as_ref().or(self.wanted.as_ref())
    }

    /// Whether the welcome was given.
    fn registered(&self) -> bool {
        self.nick.is_some()
    }

    /// The form bits for this connection's capabilities.
    fn cap_bits(&self) -> u8 {
        let mut f = 0;
        if self.caps.has(Cap::ServerTime) {
            f |= F_TIME;
        }
        if self.caps.has(Cap::MessageTags) {
            f |= F_TAGS;
        }
        if self.caps.has(Cap::AccountTag) {
            f |= F_ACCOUNT;
        }
        if self.caps.has(Cap::ExtendedJoin) {
            f |= F_EXTJOIN;
        }
        if self.caps.has(Cap::AwayNotify) {
            f |= F_AWAY;
        }
        if self.caps.has(Cap::ChgHost) {
            f |= F_CHGHOST;
        }
        f
    }

    /// The capabilities are now `caps`.
    fn set_caps(&mut self, caps: Caps) {
        self.caps = caps;
        self.live = self.cap_bits() | S_LIVE;
    }
}

/// Whether a line is a `PONG` (read without parsing the whole line: most lines are not).
fn is_pong(line: &str) -> bool {
    let b = line.as_bytes();
    let quick = b.len() >= 4 && ((b[0] | 0x20) == b'p' || b[0] == b'@' || b[0] == b':');
    quick && Message::parse(line).is_some_and(|m| m.command.eq_ignore_ascii_case("PONG"))
}

impl Dialect for Irc {
    fn kind(&self) -> ConnKind {
        ConnKind::Irc
    }

    fn feed(&mut self, data: &[u8], steps: &mut Vec<Step>) {
        if !self.any_byte && data.first() == Some(&super::TLS_HANDSHAKE) {
            // An IRC client with TLS on, pointed at the plain port: its hello was cut into
            // lines answered with FAIL and 451 until the registration timeout. It cannot read
            // these words, but the log and a person watching the socket can.
            steps.push(Step::Fatal {
                limit: None,
                kind: ErrorKind::Protocol,
                detail: "this port speaks IRC in clear, not TLS: use the server's TLS port (6697 \
                         by convention)"
                    .into(),
            });
            return;
        }
        self.any_byte |= !data.is_empty();
        let mut reads = Vec::new();
        self.reader.feed(data, |r| reads.push(r));
        for r in reads {
            steps.push(match r {
                // A keepalive answer costs nothing and needs no reading (a labeled one is
                // acknowledged, as labeled-response asks of a line with no answer).
                Read::Line(line) if is_pong(&line) => Step::Pong(self.pong_ack(&line)),
                Read::Line(line) => Step::Request(Request::Line(line)),
                Read::TooLong => Step::Limit {
                    limit: Limit::Line,
                    kind: ErrorKind::LineTooLong,
                    detail: format!(
                        "line too long (at most {IRC_MAX_LINE} bytes, {IRC_MAX_TAGGED_LINE} with \
                         tags); dropped"
                    ),
                },
                // Run in turn as any line (one flood-control token), answered at once.
                Read::NotUtf8(lossy) => {
                    Step::Request(Request::Answer(Reply::Own(self.not_utf8(&lossy))))
                }
            });
        }
    }

    fn read(&mut self, line: &str, me: Option<&Nick>, next_id: MsgId, steps: &mut Vec<Step>) {
        self.read_line(line, me, next_id, steps);
    }

    fn refusing(&mut self, line: &str) -> bool {
        self.refused_line(line)
    }

    fn read_done(&mut self, answered: bool, later: bool) -> Option<Bytes> {
        self.line_done(answered, later)
    }

    fn render(&self, reply: &Reply, me: Option<&Nick>) -> Option<Bytes> {
        self.words(reply, me)
    }

    fn event_form(&self, room: &RoomName) -> Form {
        if !self.from_store.is_empty() && self.from_store.iter().any(|(r, _)| r == room) {
            // What the account missed, read from the store, and the ring's events after it.
            return Form(self.cap_bits() | S_REPLAY);
        }
        if !self.busy {
            return Form(self.live);
        }
        let state = match &self.running {
            // Nothing of others interleaves with a line's run: what this connection gets
            // during its JOIN is the room's history, and so is what comes with the welcome
            // (the rooms of an account signed in with SASL, with what it missed there).
            Some(r) if r.verb == "JOIN" || !self.registered() => S_REPLAY,
            Some(Running {
                label: Label::Single(_),
                ..
            }) => S_LABEL,
            Some(Running {
                label: Label::Batch(_),
                ..
            }) => S_BATCH,
            _ => S_LIVE,
        };
        Form(self.cap_bits() | state)
    }

    fn render_event(&self, ev: &EventRef<'_>, form: Form) -> Option<Bytes> {
        let (signed_in, tags) = (ev.by_account(), ev.said_with());
        self.event_words(ev.event()?, form, signed_in, tags, ev.joined_as())
    }

    fn echoes_own(&self) -> bool {
        self.caps.has(Cap::EchoMessage)
    }

    fn replays_own_join(&self) -> bool {
        // The JOIN line comes with the room's state (`Joined`).
        false
    }

    fn user_events_once(&self) -> bool {
        true
    }

    fn replays_since_own_quit(&self) -> bool {
        // IRC has no resume: a client that lost its connection (or was told to disconnect)
        // connects again and joins its channels again, keeping their windows.
        true
    }

    fn replays_lines_only(&self) -> bool {
        true
    }

    fn keepalive(&self) -> bool {
        true
    }

    fn resumable(&self) -> bool {
        // IRC has no resume: a dropped IRC user quits, as on any IRC server.
        false
    }

    fn entered(&mut self, room: &RoomName) {
        self.channels.insert(room.clone());
        self.kicked = None;
        self.closed = None;
    }

    fn kicked(&mut self, room: &RoomName) {
        self.kicked = Some(room.clone());
    }

    fn closed(&mut self, room: &RoomName, by: Option<&Nick>, reason: Option<&str>) {
        // As IRC servers word what they do to a user (`Killed (root (spam))`): capitalised,
        // who did it, then the words given.
        let words = match (by, reason) {
            (Some(by), Some(r)) => format!("Channel closed by {by}: {r}"),
            (Some(by), None) => format!("Channel closed by {by}"),
            (None, Some(r)) => format!("Channel closed: {r}"),
            (None, None) => "Channel closed".to_owned(),
        };
        self.closed = Some((room.clone(), words));
    }

    fn opered(&mut self) {
        self.umodes.insert('o');
    }

    fn deopered(&mut self) -> bool {
        self.umodes.remove(&'o')
    }

    fn missed_waits(&mut self, room: &RoomName, waits: bool) {
        self.missed_waits = waits;
        if waits && !self.from_store.iter().any(|(r, _)| r == room) {
            self.from_store.push((room.clone(), None));
        }
    }

    fn missed_page(&mut self, room: &RoomName) -> Option<Bytes> {
        if !self.replays_in_batch() {
            return None;
        }
        let number = self.store_batches + 1;
        let batch = self
            .state
            .from_store
            .iter_mut()
            .find(|(r, _)| r == room)
            .filter(|(_, b)| b.is_none())?;
        batch.1 = Some(number);
        self.store_batches = number;
        let mut out = String::new();
        let start = format!("+s{number}");
        let params = [start.as_str(), "chathistory", room.as_str()];
        write_line(
            &mut out,
            &Tags::none(),
            self.server.as_str(),
            "BATCH",
            &params,
            false,
        );
        Some(Bytes::from(out))
    }

    fn missed_done(&mut self, room: &RoomName) -> Option<Bytes> {
        let at = self.from_store.iter().position(|(r, _)| r == room)?;
        let (_, number) = self.from_store.swap_remove(at);
        let mut out = String::new();
        let end = format!("-s{}", number?);
        write_line(
            &mut out,
            &Tags::none(),
            self.server.as_str(),
            "BATCH",
            &[&end],
            false,
        );
        Some(Bytes::from(out))
    }

    fn missed_cut(&mut self) -> Option<Bytes> {
        if self.missed_waits {
            return None;
        }
        // The footer comes in a later turn: it closes nothing then.
        let end = self.words(&Reply::Note(Note::MissedEnd), None);
        self.missed_waits = true;
        end
    }

    fn late_join(&mut self, room: &RoomName) {
        if self.running.is_some() {
            return;
        }
        self.busy = true;
        // The JOIN's line ended (answered later, through the room's log): its answer is that
        // line's, with its label, when the line was kept for it; its history is worded as
        // history (or not at all), as on a single node.
        if let Some(kept) = self.kept.take_if(|k| k.verb == "JOIN") {
            self.late = Late::Kept;
            self.running = Some(kept);
            return;
        }
        // Else it runs as a JOIN of its own, unlabeled.
        self.lines += 1;
        self.late = Late::Fresh;
        self.running = Some(Running {
            target: room.as_str().to_owned(),
            ..Running::new("JOIN".into(), Label::None, self.lines)
        });
    }

    fn late_answer(&mut self, msg: Option<MsgId>) {
        if self.running.is_some() {
            return;
        }
        let its = |k: &mut Running| msg.is_none_or(|id| k.sent.iter().any(|(i, _)| *i == id));
        if let Some(kept) = self.kept.take_if(its) {
            self.busy = true;
            self.late = Late::Kept;
            self.running = Some(kept);
        }
    }

    fn late_done(&mut self, answered: bool) {
        match core::mem::take(&mut self.late) {
            Late::No => {}
            Late::Fresh => {
                self.busy = false;
                self.running = None;
            }
            Late::Kept => {
                self.busy = false;
                self.kept = self.running.take().map(|mut r| {
                    r.answered |= answered;
                    r
                });
            }
        }
    }

    fn late_kept(&self) -> bool {
        self.kept.is_some()
    }

    fn late_end(&mut self) -> Option<Bytes> {
        let kept = self.kept.take()?;
        read::close(kept, false, self.server.as_str())
    }

    fn left(&mut self, room: &RoomName, _next: Option<&RoomName>) -> Option<Note> {
        self.channels.remove(room);
        // A store replay not yet begun is over: what the room sends if the user comes back is
        // live. One begun keeps its batch until the replay ends, to be closed.
        self.state
            .from_store
            .retain(|(r, batch)| r != room || batch.is_some());
        None
    }
}

/// Fuzzing hook (feature `fuzzing`, see `crate::fuzzing`): cuts `data` into lines as an IRC
/// connection's reader does, `split` bytes per read, and parses each line; a parsed line written
/// back parses the same (without its control characters).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_lines(data: &[u8], split: usize) {
    let mut reader = Reader::default();
    let mut lines = Vec::new();
    for piece in data.chunks(split.max(1)) {
        reader.feed(piece, |r| lines.push(r));
    }
    let mut whole = Vec::new();
    Reader::default().feed(data, |r| whole.push(r));
    assert_eq!(
        lines, whole,
        "lines do not depend on how reads cut the bytes"
    );
    for read in lines {
        let Read::Line(line) = read else { continue };
        assert!(line.len() <= IRC_MAX_TAGGED_LINE);
        assert!(!line.contains(['\r', '\n']));
        let Some(msg) = Message::parse(&line) else {
            continue;
        };
        let _ = msg.verb();
        let _ = msg.tag("label");
        let _ = msg.param(0);
        assert!(msg.params.len() <= message::MAX_PARAMS);
        // A command of letters or digits (anything else is no command a client sends) comes
        // back the same once written, but for control characters, which are never written.
        if msg.command.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let mut out = String::new();
            message::write_line(
                &mut out,
                &message::Tags::none(),
                "",
                msg.command,
                &msg.params,
                false,
            );
            let again =
                Message::parse(out.trim_end_matches("\r\n")).expect("a written line parses");
            let cleaned: Vec<std::borrow::Cow<'_, str>> = match msg.params.split_last() {
                Some((last, middle)) => middle
                    .iter()
                    .map(|p| message::middle_param(p))
                    .chain([message::without_controls(last, true)])
                    .collect(),
                None => Vec::new(),
            };
            let written: Vec<&str> = cleaned.iter().map(AsRef::as_ref).collect();
            assert_eq!(
                (again.command, &again.params),
                (msg.command, &written),
                "{out:?}"
            );
        }
    }
}
