//! Dialects: how a connection's bytes become requests, and how what the hub says is rendered
//! for it. The hub itself speaks one language ([`Step`]s in, [`Reply`]s and room events out);
//! each dialect is one module that implements [`Dialect`] and one line in [`dialects!`].
//!
//! # Adding a dialect
//! 1. Write `hub/dialect/<name>.rs` with a type implementing [`Dialect`]: `feed` turns bytes into
//!    steps (a handshake step such as [`Step::Hello`], then requests), `render` words each
//!    [`Reply`] for this peer (or returns `None` for what it does not show), `event_form` and
//!    `render_event` word room events, and the policy methods (`echoes_own`, `keepalive`,
//!    `resumable`, ...) say how the hub treats its users.
//! 2. Add it to the [`dialects!`] list below, and give it a [`Door`] if it has a listener of its
//!    own (or teach [`detect`] its first byte).
//!
//! Nothing else in the hub branches on a connection's dialect.

mod binary;
mod irc;
mod text;

use super::ConnKind;
use super::query::{Info, Query};
use crate::command::Input;
use crate::types::{MsgId, Nick, ResumeToken, RoomName};
use crate::wire::{ClientMsg, ErrorKind, Limits, Resume, RoomEvent, ServerMsg};
use bytes::Bytes;
use core::cell::OnceCell;

use super::config::ServerName;
pub(crate) use binary::Binary;
#[cfg(feature = "fuzzing")]
pub(crate) use irc::fuzz_lines as fuzz_irc_lines;
pub(crate) use irc::{IRC_HOST, Irc, shown_mask as irc_shown_mask};
pub(crate) use text::Text;

/// Whether a line is an HTTP request line or a `Host:` header: what a web page makes its
/// visitors' browsers send when it posts a form to a chat port (a cross-protocol attack), which
/// the text and IRC doors refuse before anything of it is said.
pub(super) fn looks_like_http(line: &str) -> bool {
    const METHODS: [&str; 9] = [
        "GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "CONNECT", "TRACE",
    ];
    let mut words = line.split(' ');
    let request_line = words.next().is_some_and(|m| METHODS.contains(&m))
        && words.next().is_some_and(|target| !target.is_empty())
        && words.next().is_some_and(|v| v.starts_with("HTTP/"));
    let host = line
        .get(..5)
        .is_some_and(|h| h.eq_ignore_ascii_case("host:"));
    request_line || host
}

/// The first byte of a TLS record carrying a handshake (a client's hello): no person types it
/// (Ctrl+V) as the first byte of a connection, and no IRC client starts with it. The plain
/// text and IRC doors close a connection that does (TLS is on the TLS ports only).
pub(super) const TLS_HANDSHAKE: u8 = 0x16;

/// Where a connection came in: decides which dialects it may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// natter's own port: binary clients and people on `nc`/`telnet`, told apart by the first
    /// byte.
    Natter,
    /// An IRC listener: IRC clients only.
    Irc,
}

/// The first byte of every TLS connection: a handshake record's content type (RFC 8446, 5.1).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl Door {
    /// What this door's TLS listener says in clear, before it closes, to a peer that is not
    /// starting a TLS handshake: a person on `nc` or `telnet`, an IRC client with TLS off. Words
    /// in the door's language instead of a TLS alert's binary junk. `first`: the peer's first
    /// byte, or `None` if it sent nothing before the hello timeout (a person waiting to be
    /// greeted). `plain_port`: this door's plaintext port, if the server has one, to point at.
    ///
    /// `None`: the handshake goes ahead (and fails with an alert if it is not one). That is a
    /// TLS record, and natter's own binary preamble too: its client reads the alert as "this
    /// port speaks TLS", while a line of text would look like a greeting to a person.
    pub fn plaintext_on_tls(self, first: Option<u8>, plain_port: Option<u16>) -> Option<Bytes> {
        if first == Some(TLS_HANDSHAKE_RECORD) {
            return None;
        }
        let line = match self {
            Door::Natter if first == Some(crate::wire::MAGIC[0]) => return None,
            Door::Natter => {
                let plain = plain_port.map_or_else(
                    || " instead of nc or telnet".to_owned(),
                    |p| format!("; nc and telnet connect to port {p}"),
                );
                format!(
                    "ERROR: this port speaks TLS: connect with natter natters://HOST:PORT, or \
                     openssl s_client -connect HOST:PORT{plain}"
                )
            }
            Door::Irc => {
                let plain =
                    plain_port.map_or_else(String::new, |p| format!(" (plain IRC is on port {p})"));
                format!(
                    "ERROR :Closing Link: {IRC_HOST} (this port speaks TLS: turn TLS on for this \
                     server in your IRC client{plain})"
                )
            }
        };
        Some(Bytes::from(super::lines::wire_line(&line)))
    }
}

/// What the hub asks of a dialect. See the module docs for how to add one.
pub(crate) trait Dialect {
    /// Which dialect this is, for logs and the shell.
    fn kind(&self) -> ConnKind;

    /// Bytes read from the socket: appends what they mean to `steps`, in order. Buffers at most
    /// one unfinished unit of input (a frame, a line). After a [`Step::Fatal`] nothing more is
    /// appended for this call.
    fn feed(&mut self, data: &[u8], steps: &mut Vec<Step>);

    /// The peer will send nothing more (it shut its side of the connection; it may still
    /// read): a dialect for people appends the steps of an unfinished last line and returns
    /// the request that ends the conversation (a quit), run after what waits, so that what
    /// they typed is answered before the connection closes. `None` (the default): the hub
    /// closes it now.
    fn on_eof(&mut self, steps: &mut Vec<Step>) -> Option<Request> {
        let _ = steps;
        None
    }

    /// The detection wait ran out before the peer finished its first unit of input: a dialect
    /// that greets people who type nothing says so here.
    fn on_wait(&mut self) -> Option<Step> {
        None
    }

    /// A person's typed input, resolved against this connection's view (its current room) when
    /// it runs, with `next_id` for a message that needs one. `Err` is the answer instead.
    // `Reply` carries a `ServerMsg`, past clippy's 128 bytes since room names and nicks are held
    // inline (issue 22); an `Err` here is a typed command's answer, not a hot path.
    #[allow(clippy::result_large_err)]
    fn resolve(&mut self, input: Input, next_id: MsgId) -> Result<ClientMsg, Reply> {
        let _ = (input, next_id);
        Err(Reply::error(
            ErrorKind::BadCommand,
            crate::wire::Re::Conn,
            "typed commands are not part of this dialect",
        ))
    }

    /// A reply in this dialect's words; `None` when it has nothing to show for it. `me` is the
    /// connection's nick, once it has one.
    fn render(&self, reply: &Reply, me: Option<&Nick>) -> Option<Bytes>;

    /// Which rendering of a room event in `room` this connection needs. Members that need the
    /// same form share one rendering per broadcast.
    fn event_form(&self, room: &RoomName) -> Form;

    /// Which rendering of a `Kick` of this connection's own user in `room` it needs, when the
    /// dialect addresses the kicked (`bob put you out of #a`) instead of telling it as the
    /// room's other members read it; `None` (the default): [`Dialect::event_form`]'s.
    fn kicked_form(&self, room: &RoomName) -> Option<Form> {
        let _ = room;
        None
    }

    /// A room event rendered in `form`; `None` when it shows nothing for it.
    fn render_event(&self, ev: &EventRef<'_>, form: Form) -> Option<Bytes>;

    /// Whether a sender gets its own say, action and nick change back as a room event (binary
    /// clients: that echo is the acknowledgement; people do not want to see their line twice).
    fn echoes_own(&self) -> bool;

    /// Whether the replay after a join includes the joiner's own join event.
    fn replays_own_join(&self) -> bool;

    /// Whether a user's nick change or quit, an event in each of its rooms, shows once on this
    /// connection (from the first room it shares with the user) rather than once per room: an
    /// IRC server sends one `NICK` or `QUIT` to each client that shares a channel, and a person
    /// on nc reads one line. Binary clients keep a timeline per room and get every room's.
    fn user_events_once(&self) -> bool {
        false
    }

    /// Whether a join replays only what came after the joiner's nick last quit, when that quit
    /// is among what the join would replay, and only what came after this connection last left
    /// the room (a part, a kick): a client that keeps its windows across reconnecting and
    /// parting (an IRC client: The Lounge, irssi, WeeChat) shows what came before already, and
    /// would show it twice. Those that resume (binary) or start afresh (nc) get the recent
    /// history.
    fn replays_since_own_quit(&self) -> bool {
        false
    }

    /// Whether a join's replay of recent history shows only chat lines (says, actions and
    /// notices), the last `history_on_join` of them: IRC leaves old joins and parts out (they
    /// would change its member lists), nc leaves them out so that a person sees the
    /// conversation, not who came and went; a replay with no line in it opens nothing (no
    /// empty `chathistory` batch, no empty "recent messages").
    fn replays_lines_only(&self) -> bool {
        false
    }

    /// Whether what the connection sends after a request the store answers later (`/search`,
    /// `/history` past the ring) waits for that answer, so that answers come in the order
    /// asked: a person on nc reads one stream, with nothing to tell whose answer a line is
    /// (binary clients tell answers apart by their kind and room; IRC by its batches).
    fn answers_in_order(&self) -> bool {
        false
    }

    /// Whether the hub pings this connection when it falls silent.
    fn keepalive(&self) -> bool;

    /// Whether a user whose connection drops waits for a resume (instead of quitting).
    fn resumable(&self) -> bool;

    /// The user is in `room` now (joined, or joined again): it becomes this connection's
    /// current room where the dialect has one.
    fn entered(&mut self, room: &RoomName) {
        let _ = room;
    }

    /// What the connection's account missed in `room` comes next, under a
    /// [`Note::MissedStart`](crate::wire::Note) header: now, with its footer, or (`waits`) once
    /// the store's page is read, after the line running ended.
    fn missed_waits(&mut self, room: &RoomName, waits: bool) {
        let _ = (room, waits);
    }

    /// The store's page of what the account missed in `room` (see [`Dialect::missed_waits`])
    /// is in: what opens its replay, if the dialect has something for it (IRC: a `chathistory`
    /// batch that holds the page and the ring's events after it).
    fn missed_page(&mut self, room: &RoomName) -> Option<Bytes> {
        let _ = room;
        None
    }

    /// The replay of what the account missed in `room` from the store ends here (all of it is
    /// out, or the backlog is full and the rest comes once it drains): what closes what
    /// [`Dialect::missed_page`] opened.
    fn missed_done(&mut self, room: &RoomName) -> Option<Bytes> {
        let _ = room;
        None
    }

    /// The replay of what the account missed stopped half-way (the connection's backlog is
    /// full): the rest, and its footer, come once it drains. What closes the part sent so far,
    /// if the dialect opened something at its header (IRC: its `chathistory` batch).
    fn missed_cut(&mut self) -> Option<Bytes> {
        None
    }

    /// A join this connection asked for is answered now, after the line that asked for it
    /// ended (in a cluster a join completes when its event comes back through the room's log),
    /// or a join no line of this connection's asked for (another device of its account joined):
    /// until [`Dialect::late_done`], what comes is that join's answer, worded as if its
    /// line were still running (IRC: the history replayed with it, and the line's command and
    /// label when [`Dialect::read_done`] kept it).
    fn late_join(&mut self, room: &RoomName) {
        let _ = room;
    }

    /// Something else of a line that ended with its answer to come ([`Dialect::read_done`]'s
    /// `later`) is answered now: a refusal from the cluster, or a step that waited for the
    /// line's join or nick. Until [`Dialect::late_done`], what comes is worded as that line's
    /// answer (IRC: its command and label). Nothing if no line was kept, or if `msg` (the
    /// message answered) is not the kept line's.
    fn late_answer(&mut self, msg: Option<MsgId>) {
        let _ = msg;
    }

    /// The late answer begun by [`Dialect::late_join`] or [`Dialect::late_answer`] is done for
    /// now; `answered`: whether anything was queued for this connection meanwhile. A kept line
    /// is kept again until [`Dialect::late_end`].
    fn late_done(&mut self, answered: bool) {
        let _ = answered;
    }

    /// Nothing more of the kept line's answer is to come: what closes it (IRC: its labeled
    /// batch's end, or an acknowledgement when nothing was said).
    fn late_end(&mut self) -> Option<Bytes> {
        None
    }

    /// Whether a line is kept for a late answer ([`Dialect::read_done`]'s `later`).
    fn late_kept(&self) -> bool {
        false
    }

    /// The user left `room`; `next` is the room to talk in instead, if any. Returns a note to
    /// show when the current room changed.
    fn left(&mut self, room: &RoomName, next: Option<&RoomName>) -> Option<Note> {
        let _ = (room, next);
        None
    }

    /// The user is being put out of `room` (a kick, or a ban that holds it): the `Kick` event
    /// said so, and `left` and `Parted` follow.
    fn kicked(&mut self, room: &RoomName) {
        let _ = room;
    }

    /// The user is leaving `room` because a server admin (`by`, when known) closed it, with
    /// `reason`: the close's event said so, and `left` and `Parted` follow.
    fn closed(&mut self, room: &RoomName, by: Option<&Nick>, reason: Option<&str>) {
        let _ = (room, by, reason);
    }

    /// The user took a server admin's powers (IRC's `OPER`): IRC's user modes show `o`.
    fn opered(&mut self) {}

    /// The powers an `OPER` gave ended (its admin account removed, no admin any more, or its
    /// password changed): whether this connection showed them (IRC's `o`), and is to be told.
    fn deopered(&mut self) -> bool {
        false
    }

    /// A line of input kept for when it runs ([`Request::Line`]): what it means now, as steps
    /// that run at once, in order (a hello, requests, answers; no flood-control token more: the
    /// line paid one). `me` is the connection's nick once it is through its handshake, and
    /// `next_id` the id for a message that needs one (the next ones for more).
    fn read(&mut self, line: &str, me: Option<&Nick>, next_id: MsgId, steps: &mut Vec<Step>) {
        let _ = (line, me, next_id, steps);
    }

    /// A line of input refused by flood control before its turn ([`Request::Line`]): whether
    /// the dialect takes it as a line that runs with no steps, so that the refusal is worded
    /// as its answer (IRC: its command, its `label`; nothing for a `NOTICE`). The hub then
    /// closes it with [`Dialect::read_done`].
    fn refusing(&mut self, line: &str) -> bool {
        let _ = line;
        false
    }

    /// The steps of a line have run; `answered`: whether anything was queued for this
    /// connection meanwhile. Returns what closes the answer (IRC: a labeled batch's end, or an
    /// acknowledgement when nothing was said). `later`: part of the answer comes after the
    /// line ended (in a cluster, a join or a nick change waits for the cluster): the dialect
    /// keeps what it needs to word it as this line's answer ([`Dialect::late_answer`]) and
    /// closes it at [`Dialect::late_end`].
    fn read_done(&mut self, answered: bool, later: bool) -> Option<Bytes> {
        let _ = (answered, later);
        None
    }
}

/// The dialects, each one line: the enum every connection holds and the [`Dialect`] impl that
/// hands each call to its variant.
macro_rules! dialects {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        /// A connection's dialect and its state.
        #[derive(Debug)]
        pub(crate) enum AnyDialect {
            $(
                #[allow(missing_docs)]
                $variant($ty),
            )+
        }

        impl AnyDialect {
            fn inner(&self) -> &dyn Dialect {
                match self {
                    $(AnyDialect::$variant(d) => d,)+
                }
            }

            fn inner_mut(&mut self) -> &mut dyn Dialect {
                match self {
                    $(AnyDialect::$variant(d) => d,)+
                }
            }
        }
    };
}

dialects! {
    Binary(Binary),
    Text(Text),
    Irc(Irc),
}

impl AnyDialect {
    pub(crate) fn kind(&self) -> ConnKind {
        self.inner().kind()
    }
    /// The door a device on this connection came through, as `/devices` tells it.
    pub(crate) fn device_door(&self) -> crate::wire::DeviceDoor {
        use crate::wire::DeviceDoor;
        match self {
            AnyDialect::Binary(b) if b.bridged => DeviceDoor::Page,
            AnyDialect::Binary(_) => DeviceDoor::Client,
            AnyDialect::Text(_) => DeviceDoor::Text,
            AnyDialect::Irc(_) => DeviceDoor::Irc,
        }
    }
    pub(crate) fn feed(&mut self, data: &[u8], steps: &mut Vec<Step>) {
        self.inner_mut().feed(data, steps);
    }
    pub(crate) fn on_wait(&mut self) -> Option<Step> {
        self.inner_mut().on_wait()
    }
    pub(crate) fn on_eof(&mut self, steps: &mut Vec<Step>) -> Option<Request> {
        self.inner_mut().on_eof(steps)
    }
    #[allow(clippy::result_large_err)] // See `Dialect::resolve`.
    pub(crate) fn resolve(&mut self, input: Input, next_id: MsgId) -> Result<ClientMsg, Reply> {
        self.inner_mut().resolve(input, next_id)
    }
    pub(crate) fn render(&self, reply: &Reply, me: Option<&Nick>) -> Option<Bytes> {
        self.inner().render(reply, me)
    }
    pub(crate) fn event_form(&self, room: &RoomName) -> Form {
        self.inner().event_form(room)
    }
    pub(crate) fn kicked_form(&self, room: &RoomName) -> Option<Form> {
        self.inner().kicked_form(room)
    }
    pub(crate) fn render_event(&self, ev: &EventRef<'_>, form: Form) -> Option<Bytes> {
        self.inner().render_event(ev, form)
    }
    pub(crate) fn echoes_own(&self) -> bool {
        self.inner().echoes_own()
    }
    pub(crate) fn replays_own_join(&self) -> bool {
        self.inner().replays_own_join()
    }
    pub(crate) fn user_events_once(&self) -> bool {
        self.inner().user_events_once()
    }
    pub(crate) fn replays_since_own_quit(&self) -> bool {
        self.inner().replays_since_own_quit()
    }
    pub(crate) fn replays_lines_only(&self) -> bool {
        self.inner().replays_lines_only()
    }
    pub(crate) fn answers_in_order(&self) -> bool {
        self.inner().answers_in_order()
    }
    pub(crate) fn keepalive(&self) -> bool {
        self.inner().keepalive()
    }
    pub(crate) fn resumable(&self) -> bool {
        self.inner().resumable()
    }
    pub(crate) fn entered(&mut self, room: &RoomName) {
        self.inner_mut().entered(room);
    }
    pub(crate) fn missed_waits(&mut self, room: &RoomName, waits: bool) {
        self.inner_mut().missed_waits(room, waits);
    }
    pub(crate) fn missed_page(&mut self, room: &RoomName) -> Option<Bytes> {
        self.inner_mut().missed_page(room)
    }
    pub(crate) fn missed_done(&mut self, room: &RoomName) -> Option<Bytes> {
        self.inner_mut().missed_done(room)
    }
    pub(crate) fn missed_cut(&mut self) -> Option<Bytes> {
        self.inner_mut().missed_cut()
    }
    pub(crate) fn late_join(&mut self, room: &RoomName) {
        self.inner_mut().late_join(room);
    }
    pub(crate) fn late_answer(&mut self, msg: Option<MsgId>) {
        self.inner_mut().late_answer(msg);
    }
    pub(crate) fn late_done(&mut self, answered: bool) {
        self.inner_mut().late_done(answered);
    }
    pub(crate) fn late_end(&mut self) -> Option<Bytes> {
        self.inner_mut().late_end()
    }
    pub(crate) fn late_kept(&self) -> bool {
        self.inner().late_kept()
    }
    pub(crate) fn left(&mut self, room: &RoomName, next: Option<&RoomName>) -> Option<Note> {
        self.inner_mut().left(room, next)
    }
    pub(crate) fn kicked(&mut self, room: &RoomName) {
        self.inner_mut().kicked(room);
    }
    pub(crate) fn closed(&mut self, room: &RoomName, by: Option<&Nick>, reason: Option<&str>) {
        self.inner_mut().closed(room, by, reason);
    }
    pub(crate) fn opered(&mut self) {
        self.inner_mut().opered();
    }
    pub(crate) fn deopered(&mut self) -> bool {
        self.inner_mut().deopered()
    }
    pub(crate) fn read(
        &mut self,
        line: &str,
        me: Option<&Nick>,
        next_id: MsgId,
        steps: &mut Vec<Step>,
    ) {
        self.inner_mut().read(line, me, next_id, steps);
    }
    pub(crate) fn refusing(&mut self, line: &str) -> bool {
        self.inner_mut().refusing(line)
    }
    pub(crate) fn read_done(&mut self, answered: bool, later: bool) -> Option<Bytes> {
        self.inner_mut().read_done(answered, later)
    }
}

/// The dialect a connection on `door` speaks, decided by the first byte it sent where the door
/// serves more than one.
/// (`server`: the IRC server name an IRC connection words its numerics with.)
pub(crate) fn detect(door: Door, first: u8, server: &ServerName) -> AnyDialect {
    match door {
        Door::Natter if first == crate::wire::MAGIC[0] => AnyDialect::Binary(Binary::default()),
        Door::Natter => AnyDialect::Text(Text::default()),
        Door::Irc => AnyDialect::Irc(Irc::new(server.clone())),
    }
}

/// The dialect a door speaks before any byte arrives, if it serves only one (the natter door
/// waits for the first byte or the detection wait).
pub(crate) fn at_accept(door: Door, server: &ServerName) -> Option<AnyDialect> {
    match door {
        Door::Natter => None,
        Door::Irc => Some(AnyDialect::Irc(Irc::new(server.clone()))),
    }
}

/// The dialect a connection that sent nothing within the detection wait speaks.
pub(crate) fn on_silence(door: Door, server: &ServerName) -> AnyDialect {
    match door {
        Door::Natter => AnyDialect::Text(Text::default()),
        Door::Irc => AnyDialect::Irc(Irc::new(server.clone())),
    }
}

/// What a connection's input means, in the hub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The handshake's end: the peer wants a user.
    Hello(Hello),
    /// From a bridge, before the hello: the real client's address. `first`: it was the very
    /// first message, the only place it counts.
    Forwarded {
        /// The address, as text.
        peer: String,
        /// The bridge secret it presented.
        secret: String,
        /// Whether it was the first message on the connection.
        first: bool,
    },
    /// A request; it costs a flood-control token and runs in order.
    Request(Request),
    /// The answer to a keepalive ping (costs nothing), with what to send back at once if
    /// anything (IRC: a labeled `PONG`'s `ACK`).
    Pong(Option<Bytes>),
    /// A binary client's answer to the ping with this token (costs nothing): it answers a
    /// takeover probe at once (see `Hub::pong_to`), where other bytes only say the connection
    /// may be alive.
    PongTo(u64),
    /// A limit was hit but the connection goes on: logged once, and the peer is told.
    Limit {
        /// Which.
        limit: Limit,
        /// What the peer is told.
        kind: ErrorKind,
        /// Words.
        detail: String,
    },
    /// The input cannot be understood: the peer is told and the connection closed.
    Fatal {
        /// The limit it broke, if it was one (logged).
        limit: Option<Limit>,
        /// What the peer is told.
        kind: ErrorKind,
        /// Words.
        detail: String,
    },
}

/// The end of a handshake: what the peer asked to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The protocol version the peer speaks, where the dialect states one.
    pub(crate) version: Option<u16>,
    /// The nick wanted; `None`: a guest nick.
    pub(crate) nick: Option<Nick>,
    /// Reattach to a session kept after a drop.
    pub(crate) resume: Option<Resume>,
    /// A room to put the user in at once.
    pub(crate) autojoin: Option<RoomName>,
    /// What to do when the nick asked for is taken.
    pub(crate) taken: IfTaken,
}

/// What a hello wants when its nick is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfTaken {
    /// A free nick like it (`alice_2`), or a guest nick.
    Another,
    /// No user: an error naming the nick, and the handshake goes on (IRC's 433; the client
    /// sends another nick).
    Refuse,
}

/// Something a connection asks once it is through its handshake (or a keepalive ping before
/// that): queued behind flood control, run in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// A protocol message with every field given.
    Msg(ClientMsg),
    /// A person's typed input: "the current room" and message ids are filled in when it runs
    /// (see [`Dialect::resolve`]).
    Typed(Input),
    /// The dialect's own answer to input it understood without the hub (`/help`, a command it
    /// could not parse): it still costs a token, like any request. Allowed before the hello.
    Answer(Reply),
    /// A line of input the dialect reads when it runs ([`Dialect::read`]), because what it
    /// means depends on what ran before it (IRC: whether the client is registered yet, which
    /// nick it has, which command's replies are being worded). Allowed before the hello.
    Line(String),
    /// A question about users and rooms beyond the protocol's own messages (who is on, who is
    /// away, a user's rooms): see [`Query`].
    Query(Query),
    /// Client-only message tags for a room's members or a user, relayed live and kept nowhere
    /// (IRC's `TAGMSG`: typing notifications): see [`crate::hub::relay`].
    Relay(crate::hub::relay::Relay),
    /// IRC's `MODE me -o`: this user gives up what `OPER` gave it.
    Deoper,
    /// The dialect's own answer to a command only server admins may give (IRC's `KILL` or
    /// `WALLOPS` with a parameter missing), told to a server admin only; anyone else is refused
    /// `NotOperator` (IRC's 481 before the parameters are looked at, as solanum answers).
    AdminsOnly(Reply),
    /// IRC's `OPER name password`: this user takes the server admin powers of the admin
    /// account `name` (`[accounts] admins`), proved by its password, without signing in to it
    /// (the nick stays). Answered by [`Note::Oper`].
    Oper {
        /// The admin account.
        name: Nick,
        /// Its password.
        password: crate::types::Password,
    },
    /// IRC's `WALLOPS`: a server admin's words to the IRC users with user mode `w` (not a
    /// `/wall` to everyone); anyone else is refused `NotOperator`.
    Wallops(crate::types::Text),
    /// IRC's `MONITOR` ([`crate::hub::monitor`]): a change to, or a look at, this
    /// connection's list of watched nicks. Answered by [`Note::Monitor`]s, if at all.
    Monitor(MonitorOp),
    /// IRC's `SETNAME` (IRCv3 `setname`): the user's real name is now this (clean text of at
    /// most [`IRC_MAX_REALNAME`](crate::limits::IRC_MAX_REALNAME) bytes), on each of its IRC
    /// connections; it and its co-members are told ([`crate::hub::setname`]).
    SetName(Box<str>),
    /// A message (a say, action or notice to a room, or a direct one) with the client-only
    /// tags the client sent with it (IRC's `@+draft/reply=... PRIVMSG`): they go with it, live,
    /// to the connections whose dialect carries them; the room event and history hold none.
    Tagged {
        /// The message.
        msg: ClientMsg,
        /// `+key=value;...` as sent, at most
        /// [`IRC_MAX_CLIENT_TAGS`](crate::limits::IRC_MAX_CLIENT_TAGS) bytes; never empty.
        tags: std::sync::Arc<str>,
    },
}

impl Request {
    /// Whether it may run before the handshake is through.
    pub(crate) fn before_hello(&self) -> bool {
        matches!(
            self,
            Request::Answer(_) | Request::Line(_) | Request::Msg(ClientMsg::Ping { .. })
        )
    }
}

/// What the hub says to one connection (room traffic aside). Each dialect words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A protocol message (binary clients get it as it is; other dialects word it).
    Msg(ServerMsg),
    /// The handshake's answer. `token` is set for dialects whose users can resume.
    Welcome {
        /// The user's nick.
        nick: Nick,
        /// The resume token, for a resumable dialect.
        token: Option<ResumeToken>,
        /// An earlier session was resumed.
        resumed: bool,
        /// The limits the client must respect.
        limits: Limits,
    },
    /// Joined a room the user was already in: the room's state (`ServerMsg::Joined`).
    Rejoined(ServerMsg),
    /// A room's settings (`ServerMsg::Policy`) sent to its members after a change that every
    /// member also gets as a room event (a `Mode` line, a nick change): binary clients keep
    /// the settings; people were told by the event (nc gets no second line for it). Settings
    /// asked for are a [`Reply::Msg`].
    Settings(ServerMsg),
    /// The last words before the connection is closed.
    Fatal {
        /// Kind.
        kind: ErrorKind,
        /// Words.
        detail: String,
    },
    /// A server admin removed the user (IRC's `KILL`): the last words before the connection
    /// is closed. Worded as IRC servers do ([`killed_words`]); IRC adds its `Closing Link`.
    Killed {
        /// The admin.
        by: Nick,
        /// The admin's reason.
        reason: Option<String>,
    },
    /// Words only people need.
    Note(Note),
    /// A keepalive probe; answered with [`Step::Pong`].
    Ping(u64),
    /// The dialect's own words, made when its input was read, sent as they are.
    Own(Bytes),
    /// The answer to a [`Query`] (or news a query caused, such as someone going away).
    Info(Info),
    /// A direct message or notice (`msg`), or an invitation (`Invited`), with what IRC clients
    /// may be told of it: the sender's client-only tags ([`Request::Tagged`]) and whether the
    /// sender is signed in (then its nick is its account, for `account-tag`). The other
    /// dialects treat it as [`Reply::Msg`].
    Direct {
        msg: ServerMsg,
        tags: Option<std::sync::Arc<str>>,
        signed_in: bool,
    },
}

/// How the hub's words for a connection that never said hello begin (`no hello within 10
/// seconds`): the IRC dialect says it as a registration timeout.
pub(crate) const NO_HELLO_WITHIN: &str = "no hello within ";

/// The quit reason a device that dropped and did not resume in time leaves with.
pub(crate) const QUIT_CONNECTION_LOST: &str = "connection lost";
/// The quit reason of the users a server shutdown ends (and its goodbye).
pub(crate) const QUIT_SHUTDOWN: &str = "server shutting down";
/// The quit reason of a guest whose last connection signed in to an account.
pub(crate) const QUIT_SIGNED_IN: &str = "signed in";
/// The quit reason of a user whose account was removed with nothing connected.
pub(crate) const QUIT_ACCOUNT_REMOVED: &str = "account removed";
/// The quit reason of a member of a cluster's node that is gone.
pub(crate) const QUIT_REAPED: &str = "lost with their server";
/// How the quit reason of a user a server ban put out starts (`banned from this server by
/// root: spam`).
pub(crate) const QUIT_BANNED: &str = "banned from this server by ";
/// The quit reason of a user whose connection its peer closed (or that failed).
pub(crate) const QUIT_CLOSED: &str = "Connection closed";
/// How the quit reason of a user that left a ping unanswered starts (`Ping timeout: 120
/// seconds`).
pub(crate) const QUIT_PING_TIMEOUT: &str = "Ping timeout: ";
/// The quit reason of a user that read too slowly.
pub(crate) const QUIT_TOO_SLOW: &str = "SendQ exceeded";
/// How the quit reason of a killed user starts ([`killed_words`]).
pub(crate) const QUIT_KILLED: &str = "Killed (";

/// A quit reason as IRC users read it: natter's own, lowercase sentences as nc and natter's
/// clients show them, capitalised as IRC servers word theirs (`Ping timeout: 120 seconds`,
/// `Killed (root (spam))`), and a member lost with its cluster node as IRC servers that hide
/// their names show a netsplit (`*.net *.split`, which irssi gathers into one netsplit line); a
/// user's own words as they are.
pub(crate) fn irc_quit_reason(reason: &str) -> std::borrow::Cow<'_, str> {
    if reason == QUIT_REAPED {
        return "*.net *.split".into();
    }
    let ours = matches!(
        reason,
        QUIT_CONNECTION_LOST | QUIT_SHUTDOWN | QUIT_SIGNED_IN | QUIT_ACCOUNT_REMOVED
    ) || reason.starts_with(QUIT_BANNED);
    if !ours {
        return reason.into();
    }
    let mut chars = reason.chars();
    match chars.next() {
        Some(c) => format!("{}{}", c.to_ascii_uppercase(), chars.as_str()).into(),
        None => reason.into(),
    }
}

/// A user's own quit words as its rooms are told them: where they would read as the server's
/// (any quit reason natter itself gives, in any case and however written, a no-break space
/// or a look-alike letter for its own ([`reads_as`]): its own sentences, which
/// [`irc_quit_reason`] rewrites, and the IRC servers' words it uses for a ping timeout, a
/// slow reader or a kill; or two server names, which irssi takes for a netsplit) they are said
/// as IRC servers say every user's, `Quit: <words>`, so that no user can fake a netsplit, a
/// ban, a kill or a lost connection; any others as they are. Words too long for that are
/// dropped (IRC then says `Quit`). [`QUIT_CLOSED`] is let through: it is what nc's end of
/// input quits with (`Connection closed`), and a user who says it did close their connection.
pub(crate) fn users_quit_words(reason: Option<crate::types::Text>) -> Option<crate::types::Text> {
    let words = reason?;
    let w = words.as_str();
    let ours = [
        QUIT_CONNECTION_LOST,
        QUIT_SHUTDOWN,
        QUIT_SIGNED_IN,
        QUIT_ACCOUNT_REMOVED,
        QUIT_REAPED,
        QUIT_TOO_SLOW,
    ]
    .iter()
    .any(|o| reads_as(w, o, true))
        || [QUIT_BANNED, QUIT_PING_TIMEOUT.trim_end(), QUIT_KILLED]
            .iter()
            .any(|start| reads_as(w, start, false));
    if !ours && !looks_like_a_split(w) {
        return Some(words);
    }
    crate::types::Text::new(&format!("Quit: {w}")).ok()
}

/// How a character of a user's words may look to a person reading them ([`reads_as`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Looks {
    /// Nothing: a joiner, a soft hyphen, a variation selector, a combining mark (what
    /// [`crate::types::Text`] keeps of them).
    Invisible,
    /// A space of any width, or a filler drawn as one.
    Blank,
    /// This ASCII character (lowercase).
    Ascii(char),
    /// A letter or sign that may pass for an ASCII one: accented Latin, Greek, Cyrillic,
    /// fullwidth forms, mathematical letters, colon and bracket look-alikes.
    Similar,
    /// Anything else (CJK, emoji, ...).
    Other,
}

fn looks(c: char) -> Looks {
    match c {
        c if c.is_whitespace() => Looks::Blank,
        c if c.is_ascii() => Looks::Ascii(c.to_ascii_lowercase()),
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' => Looks::Blank,
        '\u{00AD}'
        | '\u{0300}'..='\u{036F}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2060}'..='\u{206F}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E0FFF}' => Looks::Invisible,
        '\u{00C0}'..='\u{02FF}'
        | '\u{0370}'..='\u{052F}'
        | '\u{0589}'
        | '\u{05C3}'
        | '\u{13A0}'..='\u{13FF}'
        | '\u{1D00}'..='\u{1DBF}'
        | '\u{1E00}'..='\u{1EFF}'
        | '\u{207D}'
        | '\u{207E}'
        | '\u{208D}'
        | '\u{208E}'
        | '\u{2100}'..='\u{214F}'
        | '\u{2236}'
        | '\u{2768}'..='\u{276B}'
        | '\u{A789}'
        | '\u{FE13}'
        | '\u{FE50}'..='\u{FE5A}'
        | '\u{FF01}'..='\u{FF5E}'
        | '\u{1D400}'..='\u{1D7FF}' => Looks::Similar,
        _ => Looks::Other,
    }
}

/// Whether `words` read as `phrase` (ASCII) to a person, after any blanks: in any case, a
/// space as any run of blanks, invisible characters not there, and a letter that may pass for
/// an ASCII one as that one; the whole of `words` (`whole`, blanks after it aside) or only
/// their start. Comparing the bytes let `Ping<no-break space>timeout: 120 seconds`, a joiner
/// inside a word or a Cyrillic `і` pass for the server's words.
fn reads_as(words: &str, phrase: &str, whole: bool) -> bool {
    let mut seen = words
        .chars()
        .map(looks)
        .filter(|l| *l != Looks::Invisible)
        .peekable();
    let blanks = |seen: &mut core::iter::Peekable<_>| {
        let mut any = false;
        while seen.next_if_eq(&Looks::Blank).is_some() {
            any = true;
        }
        any
    };
    blanks(&mut seen);
    for p in phrase.chars() {
        let ok = match p {
            ' ' => blanks(&mut seen),
            p => match seen.next() {
                Some(Looks::Ascii(c)) => c == p.to_ascii_lowercase(),
                Some(Looks::Similar) => true,
                _ => false,
            },
        };
        if !ok {
            return false;
        }
    }
    blanks(&mut seen);
    !whole || seen.next().is_none()
}

/// Whether quit words look like a netsplit's to an IRC client: two words, each with a dot in
/// it (`*.net *.split`, `irc.example.net hub.example.org`), as irssi's `quitmsg_is_split`
/// looks at them (more loosely: a user's words caught by it are only prefixed).
fn looks_like_a_split(w: &str) -> bool {
    let mut parts = w.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) => [a, b].iter().all(|h| h.contains('.') && !h.contains("..")),
        _ => false,
    }
}

/// Why a killed user is gone, in IRC's words (`Killed (<admin> (<reason>))`, as InspIRCd and
/// ergo say it): its own last words and the quit its rooms see.
pub(crate) fn killed_words(by: &Nick, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("{QUIT_KILLED}{by} ({r}))"),
        None => format!("{QUIT_KILLED}{by})"),
    }
}

impl Reply {
    /// An error reply.
    pub(crate) fn error(kind: ErrorKind, re: crate::wire::Re, detail: impl Into<String>) -> Reply {
        Reply::Msg(ServerMsg::Error {
            kind,
            re,
            detail: detail.into(),
        })
    }
}

/// Words only people need (programs get the same information as protocol messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// The command list, or one command's lines (its name as [`crate::command::HELP`] writes
    /// it).
    Help(Option<&'static str>),
    /// The user asked for the nick it already has: the binary protocol answers its request with
    /// `YourNick`, nc says so, IRC says nothing (as IRC servers do for `NICK` to one's own nick).
    SameNick(Nick),
    /// The end of a page of `room`'s history whose first event is not the room's first, with
    /// nothing older kept (`PastEnd` with `at_start` for the binary protocol, which has the
    /// events' seqs; nc says older lines are no longer kept rather than "the beginning").
    PastGone(RoomName),
    /// A join's replay of `room`'s recent messages starts.
    RecentStart(RoomName),
    /// ... and ends.
    RecentEnd,
    /// Before a join's replay of `room` to a client that keeps its windows (IRC, spared what
    /// it saw before its part, its quit or a restart): `count` more lines were said there since
    /// then than the `shown` last ones replayed (`more`: at least `count`; the look back is
    /// bounded, or the ring no longer holds them all). A slow reader that missed more than a
    /// replay holds was told nothing of the rest.
    Unreplayed {
        room: RoomName,
        count: usize,
        more: bool,
        shown: usize,
    },
    /// A sign-in's replay of what the account missed in `room` since its read marker starts
    /// (nc words it as a join's recent messages; IRC's own batches are its join's).
    MissedStart(RoomName),
    /// ... and ends, after its last line (which may come after a store read or a backlog).
    MissedEnd,
    /// Plain lines now go to this room.
    NowTalkingIn(RoomName),
    /// Right after a join (or a resume's `Joined`) of a room whose member list is cut short
    /// or whose comings and goings are `summed` up (a quiet room, `crowd.rs`): how many are in
    /// it. The binary protocol says it as `Crowd` with zeros (its clients keep the size), nc and
    /// IRC in words that say which of the two it is.
    Size {
        room: RoomName,
        members: u32,
        summed: bool,
    },
    /// The user's invitation of `nick` to `room` went through (the binary protocol has no
    /// answer for it: the invited get `Invited`).
    Invited { nick: Nick, room: RoomName },
    /// `by` invited `nick` to `room`, told to the room's members who may invite (IRCv3
    /// `invite-notify`: IRC clients with the capability read it as `INVITE`, with `account-tag`
    /// the inviter's account when `signed_in`; other dialects say nothing).
    InvitedBy {
        by: Nick,
        nick: Nick,
        room: RoomName,
        signed_in: bool,
    },
    /// An operator's change changed nothing, in words (nc says them, the binary protocol from
    /// version 10 as `Done`; IRC servers say nothing).
    Unchanged(String),
    /// A ban or mute of a present guest holds its nick only, and why (its address is loopback,
    /// every local user's, or the operator's own): a new nick gets round it. Also an unban or
    /// unmute of a guest's nick that leaves the address its ban or mute added (the guest gone), and how to lift
    /// it; and at a sign-in, who put the account out of a room while nothing of it was
    /// connected. nc says it, the binary protocol from version 10 as `Done`, IRC as a server `NOTICE`.
    NickOnly(String),
    /// A server admin's action in a room it is not in went through, in the words the room's
    /// members read (`root put eve out of #r`): the room's event reaches only them, and an nc
    /// admin heard nothing at all. nc says it, the binary protocol from version 10 as `Done`;
    /// IRC has no answer for it.
    DoneOutside(String),
    /// An admin's server ban on `mask` was set (or `lifted`): no room's event tells it; nc
    /// says it, the binary protocol from version 10 as `Done`.
    ServerBan {
        mask: crate::moderation::Mask,
        lifted: bool,
    },
    /// A server admin's `/takeover` or `/close` went through: the room's event reaches only
    /// its members (the admin need not be one); nc says it, the binary protocol from version
    /// 10 as `Done`.
    AdminDone(AdminDone),
    /// The operator's message of the day, under a text user's welcome (IRC clients get it as
    /// `Info::Motd` at registration, binary clients as `ServerMsg::Motd`).
    Motd(super::config::Motd),
    /// A `Joined`, `Members` or `Topic` with what IRC's numerics say and the protocol's
    /// message does not: each member's standing in the room, in the same order (`@` the
    /// founder or an operator, `+` voiced, `@+` both, empty for the others: `NAMES` prefixes;
    /// none at all in a room nobody has any), and who set the topic and when (`333`), if known;
    /// or a `Policy` asked for, with when the room was made (`329`), if known. `at` is when
    /// the hub made a `Joined`, `Parted` or `YourNick` (the `time` tag of IRC's own `JOIN`,
    /// `PART` or `NICK` line).
    Detailed {
        msg: Box<ServerMsg>,
        marks: Vec<&'static str>,
        topic_set: Option<crate::hub::room::TopicSet>,
        created: Option<crate::time::Millis>,
        at: Option<crate::time::Millis>,
    },
    /// Client-only message tags `from` someone (signed in to `account`, if so) for `to` (a
    /// room, or this user), relayed at `at` ([`Request::Relay`]): only IRC clients with
    /// `message-tags` get them, as a `TAGMSG`. `no` tells this relay from the sender's others
    /// (IRC's `msgid`, the same for every recipient).
    Tagged {
        no: u64,
        from: Nick,
        account: Option<Nick>,
        to: crate::hub::relay::RelayTo,
        tags: std::sync::Arc<str>,
        at: crate::time::Millis,
    },
    /// The joiner of `room` may not speak there (it is moderated and they have no voice, or
    /// they are muted): `why`, in words, right after the join, rather than at their first
    /// line. The binary protocol says it as `Error { Muted, Room(room) }`, nc as a line; IRC
    /// clients learn it the IRC way (the channel's modes, their prefix), so nothing here.
    Voiceless { room: RoomName, why: String },
    /// `room` got a key (`+k`), as this member may see it: the key for its operators, `*` for
    /// the others (IRC's `MODE` line needs the parameter; the room event never holds the key,
    /// as history and the store keep it). `by` is who set it, if this server knows.
    KeySet {
        room: RoomName,
        by: Option<Nick>,
        key: crate::types::Text,
    },
    /// What an `OPER` ([`Request::Oper`]) came to.
    Oper(OperAnswer),
    /// A `MONITOR` answer, or news of a watched nick (IRC's `730`–`734`; other dialects
    /// never ask, and say nothing).
    Monitor(MonitorNote),
    /// A server admin's `WALLOPS`: IRC connections with user mode `w` show it (and the
    /// sender's own, as its echo); other dialects never get it.
    Wallops {
        from: Nick,
        text: crate::types::Text,
    },
}

/// A `MONITOR` request ([`Request::Monitor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MonitorOp {
    /// `+ a,b`: watch these (answered with who of them is on and who is not).
    Add(Vec<Nick>),
    /// `- a,b`: stop watching these (no answer).
    Remove(Vec<Nick>),
    /// `C`: stop watching anyone (no answer).
    Clear,
    /// `L`: the list (`732`, `733`).
    List,
    /// `S`: who of the list is on and who is not.
    Status,
}

/// What a [`Note::Monitor`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MonitorNote {
    /// These watched nicks are on now, as their users have them (`730`).
    Online(Vec<Nick>),
    /// These are not (`731`): as the list has them, or, for one given up, as its user had it.
    Offline(Vec<Nick>),
    /// The list (`732` lines, then `733`).
    List(Vec<Nick>),
    /// These did not fit on the list (`734`).
    Full(Vec<Nick>),
}

/// The answer to [`Request::Oper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperAnswer {
    /// The user has the admin account's powers now (IRC: `381` and `MODE nick +o`).
    Granted,
    /// The name is not a server admin account (IRC: `491`).
    NotAnAdmin,
    /// The password is not that account's (IRC: `464`); counted as a failed sign-in.
    WrongPassword,
    /// The powers ended: the admin account was removed, is no admin any more, or its password
    /// changed (IRC: a `NOTICE` and `MODE nick -o`).
    Ended,
}

/// What a server admin did to a room ([`Note::AdminDone`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminDone {
    /// `room`'s founder is now the admin: its own account, or (`founder`) the admin account
    /// an IRC user's `OPER` named, which is not the account it is signed in to, if any.
    TookOver {
        room: RoomName,
        founder: Option<Nick>,
    },
    /// `room` is closed: its `members` left it.
    Closed { room: RoomName, members: usize },
}

impl Note {
    /// What an action did, in words, for the notes that answer one with no message of its own
    /// elsewhere: an operator's change that changed nothing, an admin's action outside its
    /// rooms, a server ban, a takeover or a close. nc prints them as `-- ` lines, the binary
    /// protocol sends them as [`crate::wire::ServerMsg::Done`] (version 10); `None` for any other note.
    pub(crate) fn done_words(&self) -> Option<String> {
        Some(match self {
            Note::Unchanged(words) | Note::DoneOutside(words) | Note::NickOnly(words) => {
                words.clone()
            }
            Note::ServerBan {
                mask,
                lifted: false,
            } => format!("{mask} is banned from the server"),
            Note::ServerBan { mask, lifted: true } => {
                format!("{mask} is no longer banned from the server")
            }
            Note::AdminDone(AdminDone::TookOver {
                room,
                founder: None,
            }) => format!("you took over {room}: you are its founder"),
            // Until this review an `OPER`'d user read "you are its founder" of a room that
            // was the admin account's.
            Note::AdminDone(AdminDone::TookOver {
                room,
                founder: Some(f),
            }) => format!("you took over {room} for {f}: {f} is its founder"),
            Note::AdminDone(AdminDone::Closed { room, members }) => match members {
                0 => format!("you closed {room}: nobody was in it"),
                1 => format!("you closed {room}: its 1 member left it"),
                n => format!("you closed {room}: its {n} members left it"),
            },
            _ => return None,
        })
    }
}

/// Which rendering of a room event a connection needs: dialect-specific, compared within one
/// dialect only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Form(pub(crate) u8);

/// A room event as the hub holds it: its encoded frame, and the event itself decoded only if a
/// dialect asks for it (binary members take the frame as it is).
#[derive(Debug)]
pub(crate) struct EventRef<'a> {
    frame: &'a [u8],
    /// The frame as a shared buffer, for a live event (a stored one is copied when sent).
    shared: Option<&'a Bytes>,
    event: OnceCell<Option<RoomEvent>>,
    /// The sender is signed in to the account of its nick (IRC's `account-tag`); known for
    /// live events only: history does not record it.
    signed_in: bool,
    /// A live join's: what members' clients learn of the joiner besides its join.
    joiner: Joiner,
    /// A live say, action or notice's client-only tags ([`Request::Tagged`]); history does
    /// not keep them.
    client_tags: Option<std::sync::Arc<str>>,
}

/// What a live join tells of the joiner besides the join itself, found once per broadcast:
/// IRC words it as lines after the `JOIN` (nick lists and away states are kept by clients
/// from lines, not asked for again). For an admin's take-over (`founder NAME`), the new
/// founder's standing alone: `@` when it is in the room, else empty (IRC's `MODE +o` names
/// members only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Joiner {
    /// Its standing in the room: `@` an operator, `+` voiced, `@+` both, empty otherwise.
    pub(crate) standing: &'static str,
    /// Its away message, if it is away.
    pub(crate) away: Option<crate::types::Text>,
    /// Its real name, as WHO shows it (IRC's `extended-join`), when the hub knows the joiner.
    pub(crate) realname: Option<Box<str>>,
}

impl<'a> EventRef<'a> {
    /// An event known only by its frame (from history): decoded on first use.
    pub(crate) fn stored(frame: &'a [u8]) -> EventRef<'a> {
        EventRef {
            frame,
            shared: None,
            event: OnceCell::new(),
            signed_in: false,
            joiner: Joiner::default(),
            client_tags: None,
        }
    }

    /// An event at hand with its frame.
    pub(crate) fn new(event: RoomEvent, frame: &'a Bytes) -> EventRef<'a> {
        EventRef {
            frame,
            shared: Some(frame),
            event: OnceCell::from(Some(event)),
            signed_in: false,
            joiner: Joiner::default(),
            client_tags: None,
        }
    }

    /// The same, from a sender signed in to its account (`true`) or not.
    pub(crate) fn signed_in(mut self, yes: bool) -> EventRef<'a> {
        self.signed_in = yes;
        self
    }

    /// Whether the sender is signed in to the account of its nick (live events only).
    pub(crate) fn by_account(&self) -> bool {
        self.signed_in
    }

    /// The same, a live join of `joiner`.
    pub(crate) fn joiner(mut self, joiner: Joiner) -> EventRef<'a> {
        self.joiner = joiner;
        self
    }

    /// The same, said with these client-only tags.
    pub(crate) fn client_tags(mut self, tags: Option<std::sync::Arc<str>>) -> EventRef<'a> {
        self.client_tags = tags;
        self
    }

    /// The client-only tags it was said with (live events only).
    pub(crate) fn said_with(&self) -> Option<&str> {
        self.client_tags.as_deref()
    }

    /// A live join's joiner as it is now (nothing for any other event).
    pub(crate) fn joined_as(&self) -> &Joiner {
        &self.joiner
    }

    /// The frame (`ServerMsg::Event`, length-prefixed), as bytes to send: the live event's
    /// buffer shared, or a stored one's copied.
    pub(crate) fn frame(&self) -> Bytes {
        match self.shared {
            Some(b) => b.clone(),
            None => Bytes::copy_from_slice(self.frame),
        }
    }

    /// The event. `None` only if the frame does not decode, which cannot happen: the hub
    /// encoded it.
    pub(crate) fn event(&self) -> Option<&RoomEvent> {
        self.event
            .get_or_init(|| {
                let payload = self.frame.get(crate::wire::LEN_PREFIX..)?;
                match crate::wire::decode_payload::<ServerMsg>(payload) {
                    Ok(ServerMsg::Event(ev)) => Some(ev),
                    _ => None,
                }
            })
            .as_ref()
    }
}

/// A limit the hub enforces, as a word for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Limit {
    /// The server has as many connections as it takes.
    Connections,
    /// This address has as many connections open as it may.
    PerIp,
    /// This address connected too often lately.
    ConnectRate,
    /// The table of addresses is full.
    IpTable,
    /// A binary client's preamble was wrong.
    Magic,
    /// A frame was over the size limit.
    Frame,
    /// A typed line was over the length limit.
    Line,
    /// Flood control refused a request.
    Flood,
    /// The outbound queue is full: room traffic skipped (a gap follows).
    Queue,
    /// The outbound queue passed its hard limit: the connection is closed.
    QueueHard,
    /// The user is in as many rooms as one may be.
    RoomsPerUser,
    /// The server has as many rooms as it holds.
    Rooms,
    /// This address created as many rooms lately as it may.
    RoomCreates,
    /// The room has as many members as it may.
    RoomMembers,
    /// The user changed nicks as often lately as one may ([`crate::limits::NICK_BURST`]).
    NickRate,
}

impl Limit {
    /// A short stable word (`flood`, `per_ip`, ...), the log's `limit=`. A limit that refuses a
    /// connection has the word of `natter_connections_refused_total`'s `reason` for it (`full`,
    /// `per_ip`, `connect_rate`, `ip_table`), so one word finds both; until the thirty-first
    /// session the log said `per-ip` where the metric said `per_ip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Connections => "full",
            Limit::PerIp => "per_ip",
            Limit::ConnectRate => "connect_rate",
            Limit::IpTable => "ip_table",
            Limit::Magic => "magic",
            Limit::Frame => "frame",
            Limit::Line => "line",
            Limit::Flood => "flood",
            Limit::Queue => "queue",
            Limit::QueueHard => "queue_hard",
            Limit::RoomsPerUser => "rooms_per_user",
            Limit::Rooms => "rooms",
            Limit::RoomCreates => "room_creates",
            Limit::RoomMembers => "room_members",
            Limit::NickRate => "nick_rate",
        }
    }
}

impl core::fmt::Display for Limit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(door: Door, first: Option<u8>, plain: Option<u16>) -> Option<String> {
        door.plaintext_on_tls(first, plain)
            .map(|b| String::from_utf8(b.to_vec()).expect("words"))
    }

    #[test]
    fn a_tls_port_lets_handshakes_and_natters_preamble_through() {
        for door in [Door::Natter, Door::Irc] {
            assert_eq!(said(door, Some(TLS_HANDSHAKE_RECORD), Some(7000)), None);
        }
        // natter's client reads the alert as "this port speaks TLS"; text would look like a
        // greeting to it.
        assert_eq!(said(Door::Natter, Some(crate::wire::MAGIC[0]), None), None);
    }

    #[test]
    fn plain_text_on_a_tls_port_is_told_in_the_doors_words() {
        let nc = said(Door::Natter, Some(b'h'), Some(7000)).expect("refused");
        assert_eq!(
            nc,
            "ERROR: this port speaks TLS: connect with natter natters://HOST:PORT, or openssl \
             s_client -connect HOST:PORT; nc and telnet connect to port 7000\r\n"
        );
        let waiting = said(Door::Natter, None, None).expect("refused");
        assert!(
            waiting.starts_with("ERROR: this port speaks TLS"),
            "{waiting}"
        );
        assert!(
            waiting.ends_with("instead of nc or telnet\r\n"),
            "{waiting}"
        );
        // IRC: an ERROR message, which IRC clients show; here NUL is not natter's client.
        let irc = said(Door::Irc, Some(b'C'), Some(6667)).expect("refused");
        assert_eq!(
            irc,
            "ERROR :Closing Link: natter (this port speaks TLS: turn TLS on for this server in \
             your IRC client (plain IRC is on port 6667))\r\n"
        );
        let irc = said(Door::Irc, Some(0), None).expect("refused");
        assert!(irc.ends_with("in your IRC client)\r\n"), "{irc}");
    }
}
