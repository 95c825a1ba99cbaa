//! The binary wire format (PROTOCOL.md describes it for people): a 4-byte preamble, then frames
//! of a big-endian `u32` length and a bincode-2 payload holding one [`ClientMsg`] or [`ServerMsg`].
//!
//! Decoding is defensive: the length is checked against [`MAX_FRAME`] before anything is buffered
//! or allocated, bincode runs with a byte limit, and a payload must be consumed exactly.

use crate::limits::{MAX_FRAME, MAX_ROOMS_PER_USER, SEARCH_MAX_RESULTS};
use crate::moderation::{Entry, ModeChange, Modes};
use crate::time::Millis;
use crate::types::{
    DeviceKey, DeviceLabel, MsgId, Nick, Password, ResumeToken, RoomName, Seq, Text,
};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a binary client sends first. The first byte is not printable text, which is how the hub
/// tells a program from a person typing on `nc`/`telnet`.
pub const MAGIC: [u8; 4] = [0x00, b'N', b'T', b'R'];

/// The protocol version a client states in its hello. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u16 = 14;

/// The oldest version a server still speaks: version 5 differs from 6 only in the ban
/// entries of [`ServerMsg::BanList`] and [`ServerMsg::ServerBans`] (no `at`), 6 from 7 only
/// in notices ([`EventKind::Notice`], [`ServerMsg::DirectNotice`]), which [`encode_frame_for`]
/// writes the old way (without `at`; a notice as a say or a direct message) for a connection
/// that said an older version, 7 from 8 only in away ([`ClientMsg::Away`],
/// [`ServerMsg::Away`]), which a client before 8 is never sent ([`sent_to`]), and 8 from 9 only
/// in [`ClientMsg::ClearTopic`], which a server before 9 cannot decode (a client asks the server's
/// version first: [`TOPIC_CLEAR_VERSION`]), and [`ServerMsg::AwayHere`], which a client before 9
/// is never sent ([`sent_to`]: [`AWAY_HERE_VERSION`]).
pub const OLDEST_VERSION: u16 = 5;

/// The first version whose clients decode notices ([`EventKind::Notice`],
/// [`ServerMsg::DirectNotice`]).
pub const NOTICE_VERSION: u16 = 7;

/// The first version whose clients set away ([`ClientMsg::Away`]) and decode others' away
/// ([`ServerMsg::Away`]).
pub const AWAY_VERSION: u16 = 8;

/// The first version whose servers clear a topic ([`ClientMsg::ClearTopic`]).
pub const TOPIC_CLEAR_VERSION: u16 = 9;

/// The first version whose clients are told who in a room is away already
/// ([`ServerMsg::AwayHere`]).
pub const AWAY_HERE_VERSION: u16 = 9;

/// The first version whose clients are told what an action did where nothing else tells it
/// ([`ServerMsg::Done`]).
pub const DONE_VERSION: u16 = 10;

/// The first version whose servers answer [`ClientMsg::Whois`] (with [`ServerMsg::Whois`]).
pub const WHOIS_VERSION: u16 = 11;

/// The first version whose servers list and forget an account's remembered devices
/// ([`ClientMsg::Devices`], [`ClientMsg::ForgetDevice`], answered with [`ServerMsg::Devices`]).
pub const DEVICES_VERSION: u16 = 12;

/// The first version whose clients are told that a search was cut: [`ServerMsg::FoundEnd`]'s
/// `count` one past the hits sent. A client before it is sent the hits sent as the count, the
/// meaning `count` had for it.
pub const SEARCH_MORE_VERSION: u16 = 12;

/// The first version whose devices have labels: its servers take [`ClientMsg::ThisDevice`] and
/// [`ClientMsg::NameDevice`], and its clients decode [`RememberedDevice::label`]. A client of
/// 12 is sent [`ServerMsg::Devices`] without the labels ([`encode_frame_for`]).
pub const DEVICE_LABEL_VERSION: u16 = 13;

/// The first version whose clients are told which request a flood refusal refused when it is an
/// account request ([`Re::Account`]): a client before it is sent [`Re::Conn`] instead
/// ([`encode_frame_for`]), which names nothing, so it could not tell a `SignIn` refused as too
/// fast from another command refused while its sign-in waited.
pub const RE_ACCOUNT_VERSION: u16 = 14;

/// Whether a server speaks `version` (a hello with another is refused).
pub fn speaks(version: u16) -> bool {
    (OLDEST_VERSION..=PROTOCOL_VERSION).contains(&version)
}

/// Bytes of the length prefix in front of every frame.
pub const LEN_PREFIX: usize = 4;

/// Why bytes could not be decoded. The connection that sent them is closed with this text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The length prefix announces more than [`MAX_FRAME`].
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    FrameTooLarge(u64),
    /// The preamble did not match [`MAGIC`].
    #[error("bad preamble: this port speaks natter (binary) or plain text lines")]
    BadMagic,
    /// bincode could not decode the payload.
    #[error("malformed message: {0}")]
    Malformed(Malformed),
    /// The payload decoded but bytes were left over.
    #[error("malformed message: {0} trailing bytes")]
    TrailingBytes(usize),
    /// A message could not be encoded within [`MAX_FRAME`] (a bug: sizes are bounded by types).
    #[error("message too large to encode")]
    EncodeTooLarge,
    /// A batch of frames ended inside a frame (this many bytes of it were there).
    #[error("malformed message: a frame cut off after {0} bytes")]
    PartialFrame(usize),
    /// A batch of frames held no frame at all.
    #[error("malformed message: no frame in it")]
    EmptyBatch,
}

/// A client's resume request: the token from its last welcome, and the last seq it saw per room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The token the server gave in [`ServerMsg::Welcome`].
    pub token: ResumeToken,
    /// For each room the client was in, the highest seq it has seen (0 if none).
    pub rooms: Vec<(RoomName, Seq)>,
}

/// Client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First message after the preamble. `resume` reattaches to a session kept after a drop.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// Wanted nick (ignored when the resume succeeds: the session keeps its nick).
        nick: Nick,
        /// Resume request, if the client had a session.
        resume: Option<Resume>,
    },
    /// Sent by a bridge before the hello: the address of the real client, and the bridge secret
    /// the server was configured with, which proves the sender is the operator's bridge (like
    /// IRC's WEBIRC). Refused (and the connection closed) without the right secret.
    Forwarded {
        /// The real client's IP address, as text.
        peer: String,
        /// The shared bridge secret.
        secret: String,
    },
    /// Join a room (created if it does not exist).
    Join {
        /// Room.
        room: RoomName,
    },
    /// Leave a room.
    Part {
        /// Room.
        room: RoomName,
        /// Optional reason shown to the others.
        reason: Option<Text>,
    },
    /// Say something in a room.
    Say {
        /// Room.
        room: RoomName,
        /// Client-chosen id (see [`MsgId`]).
        id: MsgId,
        /// Text.
        text: Text,
    },
    /// An action in a room (`/me waves`).
    Act {
        /// Room.
        room: RoomName,
        /// Client-chosen id.
        id: MsgId,
        /// Text, without the nick.
        text: Text,
    },
    /// A direct message to one user.
    Msg {
        /// Recipient.
        to: Nick,
        /// Client-chosen id.
        id: MsgId,
        /// Text.
        text: Text,
    },
    /// Change nick.
    Nick {
        /// New nick.
        nick: Nick,
    },
    /// Ask for (`topic: None`) or set a room's topic.
    Topic {
        /// Room.
        room: RoomName,
        /// New topic, or `None` to ask.
        topic: Option<Text>,
    },
    /// Ask for a room's member list.
    Who {
        /// Room.
        room: RoomName,
    },
    /// Ask for the list of rooms.
    Rooms,
    /// Ask for the room events after `after` still in the history ring (refill after a gap).
    History {
        /// Room (the client must be in it).
        room: RoomName,
        /// Events with a seq above this one are sent.
        after: Seq,
    },
    /// Keepalive probe; the server answers with a pong carrying the same token.
    Ping {
        /// Echoed back.
        token: u64,
    },
    /// Answer to a server ping.
    Pong {
        /// The ping's token.
        token: u64,
    },
    /// Leave for good (no resume).
    Quit {
        /// Optional reason shown to the others.
        reason: Option<Text>,
    },
    /// Scrollback: the newest `limit` events of `room` with a seq below `before` (`Seq(0)`:
    /// below the oldest this connection was shown), from the whole stored history. Answered
    /// with [`ServerMsg::Past`] events, oldest first, then [`ServerMsg::PastEnd`].
    Older {
        /// Room (the client must be in it).
        room: RoomName,
        /// Events with a seq below this one.
        before: Seq,
        /// At most this many (the server caps it at [`crate::limits::HISTORY_PAGE_MAX`]).
        limit: u16,
    },
    /// Search the stored chat lines (says and actions) for every word of `words`, in `room` or
    /// in every room. Answered with [`ServerMsg::Found`] hits, newest first, then
    /// [`ServerMsg::FoundEnd`].
    Search {
        /// Only this room, if given.
        room: Option<RoomName>,
        /// The words: every one must occur; quotes, `*`, `-`, `:` and the like are words too.
        words: Text,
    },
    /// Sign in to `account` (a registered nick). Answered with [`ServerMsg::SignedIn`], or an
    /// error: [`ErrorKind::SignInFailed`] (the same whether the account exists or not),
    /// [`ErrorKind::Throttled`] (too many failures; the detail says when to retry).
    SignIn {
        /// The account: its nick.
        account: Nick,
        /// The password, or a device key from an earlier remembered sign-in.
        proof: Proof,
        /// Issue a [`DeviceKey`] for later sign-ins from this device.
        remember: bool,
    },
    /// Register the nick this connection has as an account, with this password, and sign in.
    /// Answered with [`ServerMsg::SignedIn`] or an error ([`ErrorKind::RegistrationClosed`],
    /// [`ErrorKind::NickTaken`] when it is registered already, [`ErrorKind::Invalid`] for a
    /// guest nick or a password out of bounds, [`ErrorKind::Throttled`]).
    Register {
        /// The password.
        password: Password,
        /// Issue a [`DeviceKey`] for later sign-ins from this device.
        remember: bool,
    },
    /// Sign out on this device: its device key (if any) is revoked, it leaves the account, and
    /// the server closes the connection (the client connects again as a guest).
    SignOut,
    /// Change the account's password. Every device key of the account is revoked.
    ChangePassword {
        /// The current password.
        old: Password,
        /// The new one.
        new: Password,
    },
    /// The account has read `room` up to `seq`: its read marker, shared by all its connections
    /// (each gets [`ServerMsg::ReadUpTo`]). Markers only move forward; guests' are ignored.
    Read {
        /// Room.
        room: RoomName,
        /// The newest seq read.
        seq: Seq,
    },
    /// Join a room that has a key (`+k`).
    JoinKey {
        /// Room.
        room: RoomName,
        /// Its key.
        key: Text,
    },
    /// A founder's or operator's action in `room` (see [`ModAction`]). Refused with
    /// [`ErrorKind::NotOperator`] when the sender may not; done, it is a room event
    /// ([`EventKind::Kick`] or [`EventKind::Mode`]) everyone in the room sees.
    Moderate {
        /// Room.
        room: RoomName,
        /// What.
        action: ModAction,
    },
    /// A server admin's action (see [`AdminAction`]); refused with [`ErrorKind::NotOperator`]
    /// for anyone else.
    Admin(AdminAction),
    /// A notice to a room: a chat line that asks for no answer (IRC's `NOTICE #room`; bots
    /// never answer one). Appended in version 7.
    Notice {
        /// Where.
        room: RoomName,
        /// Client-chosen id, as for [`ClientMsg::Say`].
        id: MsgId,
        /// Text.
        text: Text,
    },
    /// A direct notice (IRC's `NOTICE nick`), as [`ClientMsg::Msg`]. Appended in version 7.
    NoticeTo {
        /// Recipient.
        to: Nick,
        /// Client-chosen id.
        id: MsgId,
        /// Text.
        text: Text,
    },
    /// Go away with a message (`Some`, cut to [`crate::limits::MAX_AWAY_BYTES`]), or come back
    /// (`None`); IRC's `AWAY`. Answered with [`ServerMsg::Away`] naming oneself; co-members are
    /// told. Appended in version 8.
    Away(Option<Text>),
    /// Clear a room's topic (IRC's `TOPIC #room :`): the members see a topic event with none.
    /// Needs being in the room, and being an operator of a `+t` room. Appended in version 9.
    ClearTopic {
        /// Room.
        room: RoomName,
    },
    /// What is known of the user called `nick` (IRC's `WHOIS`): answered with
    /// [`ServerMsg::Whois`]. Appended in version 11; a client asks only a server whose welcome
    /// says 11 or more ([`WHOIS_VERSION`]).
    Whois {
        /// Who.
        nick: Nick,
    },
    /// The account's remembered devices (those holding a device key): answered with
    /// [`ServerMsg::Devices`]; a guest gets `Error { NotSignedIn }`. Appended in version 12; a
    /// client asks only a server whose welcome says 12 or more ([`DEVICES_VERSION`]).
    Devices,
    /// Forget the remembered device `id` ([`RememberedDevice::id`]): its key is revoked, and
    /// if it is connected or waiting for a resume it is signed out. Answered with `Done`; an id
    /// the account has not is `Error { Invalid }`. Appended in version 12.
    ForgetDevice {
        /// The device's short id, as [`ServerMsg::Devices`] listed it.
        id: u32,
    },
    /// What this device is called (`natter on laptop`): the label a device key issued to this
    /// connection from now on gets (a [`ClientMsg::SignIn`] or [`ClientMsg::Register`] with
    /// `remember`), shown by [`ServerMsg::Devices`]. A key the device holds already keeps its
    /// label (`/devices name` changes that). Not answered. Appended in version 13; a client
    /// sends it only to a server whose welcome says 13 or more ([`DEVICE_LABEL_VERSION`]).
    ThisDevice {
        /// The label.
        label: DeviceLabel,
    },
    /// Gives the remembered device `id` ([`RememberedDevice::id`]) the label `label`, this
    /// device too. Answered with `Done`; an id the account has not is `Error { Invalid }`.
    /// Appended in version 13.
    NameDevice {
        /// The device's short id, as [`ServerMsg::Devices`] listed it.
        id: u32,
        /// Its new label.
        label: DeviceLabel,
    },
}

/// What a server admin (an account named in the server's `[accounts] admins`) does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminAction {
    /// Disconnect every connection of a user, which quits (also an always-on account's).
    Kill {
        /// Who.
        nick: Nick,
        /// Why (they are told).
        reason: Option<Text>,
    },
    /// A notice to everyone connected ([`ServerMsg::Wall`]).
    Wall(Text),
    /// Ban from the whole server (checked when a connection says hello or signs in); whoever
    /// it holds is disconnected.
    Ban {
        /// A mask or a present user's nick (as for a room ban).
        target: String,
        /// For how long (`None`: until lifted), at most a year.
        duration: Option<Millis>,
        /// Why.
        reason: Option<Text>,
    },
    /// Lift a server ban.
    Unban {
        /// The mask.
        target: String,
    },
    /// List the server bans ([`ServerMsg::ServerBans`]).
    Bans,
    /// Take a room over: the admin's account becomes its founder (registering it if it was
    /// not), whoever founded it before.
    TakeOver(RoomName),
    /// Close a room: every member is put out (a `Kick` each), its registration and settings
    /// are forgotten, and the room goes. Its history stays. Not `#lobby`.
    Close {
        /// The room.
        room: RoomName,
        /// Why (the members are told).
        reason: Option<Text>,
    },
}

/// What a founder or an operator does to a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModAction {
    /// Register the room: the sender's account becomes its founder (the room must exist and
    /// the sender be in it and signed in).
    Register,
    /// Make a signed-in member an operator (founder only).
    Op(Nick),
    /// Take operator status away (founder only).
    Deop(Nick),
    /// Let a member speak in a `+m` room.
    Voice(Nick),
    /// Take that away.
    Devoice(Nick),
    /// Put a member out of the room (it may come back unless banned).
    Kick {
        /// Who.
        nick: Nick,
        /// Why.
        reason: Option<Text>,
    },
    /// Ban a mask (`account:NAME`, `nick:NAME`, an address or network) or a present member
    /// (by nick: its account if signed in, else its nick and address). Matching members leave.
    Ban {
        /// The mask or nick, as typed.
        target: String,
        /// For how long (`None`: until unbanned), at most a year.
        duration: Option<Millis>,
        /// Why.
        reason: Option<Text>,
    },
    /// Lift a ban (the mask as `/bans` lists it, or the nick it was set on).
    Unban {
        /// The mask or nick.
        target: String,
    },
    /// List the room's bans and mutes (answered with [`ServerMsg::BanList`]).
    Bans,
    /// Mute: the member reads but does not speak.
    Mute {
        /// The mask or nick.
        target: String,
        /// For how long.
        duration: Option<Millis>,
    },
    /// Lift a mute.
    Unmute {
        /// The mask or nick.
        target: String,
    },
    /// Let a nick into a `+i` room (it is told).
    Invite(Nick),
    /// Change a mode.
    Mode(ModeChange),
    /// Ask for the room's settings (answered with [`ServerMsg::Policy`]).
    Settings,
}

/// What proves a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proof {
    /// The account's password.
    Password(Password),
    /// A device key issued by an earlier sign-in with `remember`.
    Key(DeviceKey),
}

/// What happened in a room. Every room event has a seq and stays in the room's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A chat line.
    Say {
        /// The sender's id for it.
        id: MsgId,
        /// Text.
        text: Text,
    },
    /// An action (`* alice waves`).
    Act {
        /// The sender's id for it.
        id: MsgId,
        /// Text.
        text: Text,
    },
    /// `from` joined.
    Join,
    /// `from` left the room.
    Part {
        /// Reason, if given.
        reason: Option<Text>,
    },
    /// `from` left the server (or its resume grace ran out).
    Quit {
        /// Reason, if given.
        reason: Option<Text>,
    },
    /// `from` is now known as `new`.
    Nick {
        /// The new nick.
        new: Nick,
    },
    /// `from` set the topic (`None`: cleared).
    Topic {
        /// New topic.
        topic: Option<Text>,
    },
    /// `from` (an operator) put `target` out of the room.
    Kick {
        /// Who left.
        target: Nick,
        /// Why.
        reason: Option<Text>,
    },
    /// `from` changed the room's settings: `+o bob`, `-v carol`, `+b account:eve`, `+m`,
    /// `+l 50`, `+k` (a key is never shown), `+r` (registered, `from` is the founder).
    Mode {
        /// The change, as IRC writes it.
        change: Text,
    },
    /// `from`'s session moved to another server of a cluster (its server died, or its
    /// connection broke, and it resumed elsewhere): it is still in the room and nothing changed
    /// for people, so clients show nothing; the servers learn which one holds the member now.
    Moved,
    /// A notice: a chat line that asks for no answer (IRC's `NOTICE`; shown as one, and bots
    /// never answer it). Appended in version 7; a client that said an older version gets it as
    /// [`EventKind::Say`].
    Notice {
        /// The sender's id for it.
        id: MsgId,
        /// Text.
        text: Text,
    },
}

impl EventKind {
    /// A chat line's id and text: a say, an action or a notice (what history replays as
    /// messages, search finds and a sender's echo acknowledges).
    pub fn line(&self) -> Option<(MsgId, &Text)> {
        match self {
            EventKind::Say { id, text }
            | EventKind::Act { id, text }
            | EventKind::Notice { id, text } => Some((*id, text)),
            _ => None,
        }
    }

    /// Whether this is a chat line (a say, an action or a notice).
    pub fn is_line(&self) -> bool {
        self.line().is_some()
    }

    /// Whether this changes who is in the room, or which server holds a member (a join, a
    /// part, a quit, a kick, a rename, a move): what a cluster's hub takes its rosters from,
    /// and the only events of a room's older log a node hands its hub when it starts following
    /// the room. Lines, topics and modes change nobody's membership.
    pub fn changes_membership(&self) -> bool {
        matches!(
            self,
            EventKind::Join
                | EventKind::Part { .. }
                | EventKind::Quit { .. }
                | EventKind::Kick { .. }
                | EventKind::Nick { .. }
                | EventKind::Moved
        )
    }
}

/// One sequenced room event, as stored in history and sent to members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvent {
    /// Room.
    pub room: RoomName,
    /// Position in the room.
    pub seq: Seq,
    /// Server time (Unix milliseconds when the server is run normally).
    pub at: Millis,
    /// Who did it.
    pub from: Nick,
    /// What.
    pub kind: EventKind,
}

/// A direct message. Sent to the recipient and, as the acknowledgement, back to the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectMsg {
    /// Sender.
    pub from: Nick,
    /// Recipient.
    pub to: Nick,
    /// The sender's id for it.
    pub id: MsgId,
    /// Server time.
    pub at: Millis,
    /// Text.
    pub text: Text,
}

impl DirectMsg {
    /// What it acts, if it is a direct action: the protocol has no direct action of its own,
    /// so one is a direct message whose text is `* <sender's nick> <action>` (what IRC's
    /// `PRIVMSG nick :\x01ACTION ...\x01` and `/me` in a direct conversation send), shown as
    /// an action by the clients that know the convention and read as words by the rest.
    pub fn action(&self) -> Option<&str> {
        DirectMsg::action_in(&self.from, self.text.as_str())
    }

    /// What `text` from `from` acts, if it is a direct action ([`DirectMsg::action`]).
    pub fn action_in<'a>(from: &Nick, text: &'a str) -> Option<&'a str> {
        text.strip_prefix("* ")?
            .strip_prefix(from.as_str())?
            .strip_prefix(' ')
            .filter(|rest| !rest.trim().is_empty())
    }

    /// The text of `from`'s direct action `act` ([`DirectMsg::action`]).
    pub fn action_text(from: &str, act: &str) -> String {
        format!("* {from} {act}")
    }
}

/// One line of a room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Room.
    pub room: RoomName,
    /// Members, connected or waiting for resume.
    pub members: u32,
}

/// What an [`ServerMsg::Error`] answers, so a client never has to guess which of its requests
/// was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Re {
    /// The connection as a whole, or a request that names nothing (`Rooms`, a typed line).
    Conn,
    /// The message (say, act, DM) with this id: it was not delivered.
    Msg(MsgId),
    /// A request about this room (join, part, topic, who, history).
    Room(RoomName),
    /// A request about this nick (a nick change: the nick asked for).
    Nick(Nick),
    /// An account request (`SignIn`, `Register`, `ChangePassword`), where nothing else names
    /// it: so far, its refusal as one too many at once (`Flood`). Version 14
    /// ([`RE_ACCOUNT_VERSION`]); a client before it is sent [`Re::Conn`].
    Account,
}

/// The limits a server enforces that a well-behaved client must respect, announced in
/// [`ServerMsg::Welcome`]: a client paces what it sends by them, so a server configured with
/// other limits than the compiled-in defaults never has to refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Flood control: commands that may be sent at once.
    pub flood_burst: u32,
    /// Flood control: one more command per this many milliseconds (0: no flood control).
    pub flood_refill: Millis,
    /// Longest text (say, act, DM, topic, reason) in UTF-8 bytes.
    pub max_text_bytes: u32,
    /// Rooms one user may be in at once.
    pub max_rooms_per_user: u32,
}

impl Default for Limits {
    /// The compiled-in defaults of [`crate::limits`].
    fn default() -> Limits {
        use crate::limits::{FLOOD_BURST, FLOOD_REFILL, MAX_TEXT_BYTES};
        Limits {
            flood_burst: FLOOD_BURST,
            flood_refill: FLOOD_REFILL,
            max_text_bytes: MAX_TEXT_BYTES as u32,
            max_rooms_per_user: MAX_ROOMS_PER_USER as u32,
        }
    }
}

/// Why a payload did not decode, in the terms bincode reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Malformed {
    /// The payload ended inside a field.
    #[error("it ends too early")]
    Truncated,
    /// An enum variant index the protocol does not have.
    #[error("unknown message or field kind {0}")]
    UnknownVariant(u32),
    /// A nick, room name or text failed validation, or a string was not UTF-8.
    #[error("a name or text in it is not valid")]
    InvalidValue,
    /// A length or count over what the frame can hold.
    #[error("a length in it is too large")]
    TooLarge,
    /// Anything else bincode refused (an integer out of range, a bad bool or option tag).
    #[error("a field in it is not valid")]
    Other,
}

impl Malformed {
    fn of(e: &bincode::error::DecodeError) -> Malformed {
        use bincode::error::DecodeError as E;
        match e {
            E::UnexpectedEnd { .. } => Malformed::Truncated,
            E::UnexpectedVariant { found, .. } => Malformed::UnknownVariant(*found),
            E::OtherString(words) => match unknown_variant_index(words) {
                Some(found) => Malformed::UnknownVariant(found),
                None => Malformed::InvalidValue,
            },
            E::Utf8 { .. } | E::Other(_) => Malformed::InvalidValue,
            E::LimitExceeded | E::OutsideUsizeRange(_) => Malformed::TooLarge,
            _ => Malformed::Other,
        }
    }
}

/// The variant index in serde's words for an enum index it does not have (`invalid value:
/// integer `99`, expected variant index 0 <= i < 34`, what a derived `Deserialize` says): in serde
/// mode bincode hands the index to serde, whose refusal reaches us as words only. `None` for any
/// other refusal (a name or text that failed validation).
fn unknown_variant_index(words: &str) -> Option<u32> {
    let rest = words.strip_prefix("invalid value: integer `")?;
    let (index, expected) = rest.split_once('`')?;
    if !expected.starts_with(", expected variant index") {
        return None;
    }
    index.parse().ok()
}

/// What went wrong, as a kind a program can act on; the detail text is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Undecodable or out-of-order input; the connection is closed.
    Protocol,
    /// The client's protocol version is not supported; the connection is closed.
    Version,
    /// The nick is in use.
    NickTaken,
    /// A nick, room or text failed validation.
    Invalid,
    /// A command that needs room membership, for a room the user is not in.
    NotInRoom,
    /// A DM to a nick nobody has.
    NoSuchNick,
    /// [`crate::limits::MAX_ROOMS_PER_USER`] or [`crate::limits::MAX_ROOMS`] reached.
    TooManyRooms,
    /// Flood control refused a message (its id is in the error).
    Flood,
    /// A text line was longer than the limit and was cut.
    LineTooLong,
    /// The server or this address has too many connections; the connection is closed.
    Full,
    /// The client took too long (hello, or a ping answer); the connection is closed.
    Timeout,
    /// The resume token was unknown or expired; a fresh session was started instead.
    ResumeFailed,
    /// An unknown or malformed `/command`.
    BadCommand,
    /// The client is too slow reading; the connection is closed.
    TooSlow,
    /// The room has as many members as it may hold.
    RoomFull,
    /// The server could not store the message (its disk is full, say); it was not delivered.
    NotStored,
    /// The server cannot answer that right now (its store is busy or failing); try again.
    Unavailable,
    /// Wrong account or password, or a revoked device key (the same answer either way).
    SignInFailed,
    /// Too many failed sign-ins or registrations, for this account or from this address; the
    /// detail says when to try again.
    Throttled,
    /// The server makes accounts only through its operator.
    RegistrationClosed,
    /// That needs a signed-in account.
    NotSignedIn,
    /// That needs a room operator (or the founder).
    NotOperator,
    /// You are banned from the room.
    Banned,
    /// The room is invite-only (`+i`) and you are not invited.
    InviteOnly,
    /// The room has a key (`+k`) and it was not given, or not that one.
    BadKey,
    /// You may not speak in the room (muted, or it is `+m` and you have no voice).
    Muted,
    /// A bridge's [`ClientMsg::Forwarded`] came without the server's bridge secret (a wrong
    /// one, or the server has none); the connection is closed. Only a bridge sends
    /// `Forwarded`, so only a bridge gets this: natter-bridge says it in its log and closes
    /// the browser's WebSocket with a reason of its own instead of passing it on.
    BridgeSecret,
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Reply to hello.
    Welcome {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// The nick the session has (may differ from the one asked for when it was taken).
        nick: Nick,
        /// Present it in a later hello to resume.
        token: ResumeToken,
        /// The session was resumed: same nick, same rooms, missed events follow.
        resumed: bool,
        /// The limits this server enforces that a client must respect (it paces by them).
        limits: Limits,
    },
    /// You are in `room` now. History events (seq ≤ `seq`) follow this message.
    Joined {
        /// Room.
        room: RoomName,
        /// Its topic.
        topic: Option<Text>,
        /// Members (at most [`crate::limits::MAX_MEMBERS_LISTED`]).
        members: Vec<Nick>,
        /// The seq of your own join event (or, on resume, the room's latest seq).
        seq: Seq,
    },
    /// You left `room`.
    Parted {
        /// Room.
        room: RoomName,
    },
    /// A room event (including your own messages: that echo is their acknowledgement).
    Event(RoomEvent),
    /// A direct message (to you, or your own coming back as its acknowledgement).
    Direct(DirectMsg),
    /// A resent message was already delivered: this acknowledges it without delivering it again.
    Ack {
        /// The id.
        id: MsgId,
    },
    /// Room events `first..=last` were not delivered to you (you read too slowly, or they left
    /// the history while you were away). Ask with [`ClientMsg::History`] for what is still kept.
    Gap {
        /// Room.
        room: RoomName,
        /// First missed seq.
        first: Seq,
        /// Last missed seq.
        last: Seq,
    },
    /// Reply to who.
    Members {
        /// Room.
        room: RoomName,
        /// Members (at most [`crate::limits::MAX_MEMBERS_LISTED`]).
        members: Vec<Nick>,
    },
    /// Reply to rooms.
    Rooms {
        /// Rooms (at most [`crate::limits::MAX_ROOMS_LISTED`]).
        rooms: Vec<RoomInfo>,
    },
    /// Reply to a topic question.
    Topic {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
    },
    /// Your nick is now `nick` (also sent when you are in no room to see the nick event).
    YourNick {
        /// The nick.
        nick: Nick,
    },
    /// Something went wrong; `re` names what it answers.
    Error {
        /// Kind.
        kind: ErrorKind,
        /// What it answers: a message (so the client can stop waiting for its ack), a room (a
        /// join, part, topic or who), a nick (a nick change), or the connection as a whole.
        re: Re,
        /// Words for people.
        detail: String,
    },
    /// Keepalive probe; answer with pong.
    Ping {
        /// Echo it.
        token: u64,
    },
    /// Answer to a client ping.
    Pong {
        /// The ping's token.
        token: u64,
    },
    /// The server is closing this connection (shutdown, or an error just sent).
    Bye {
        /// Words for people.
        reason: String,
    },
    /// An event from a room's history, answering [`ClientMsg::Older`] (not a live event).
    Past(RoomEvent),
    /// The end of an answer to [`ClientMsg::Older`].
    PastEnd {
        /// Room.
        room: RoomName,
        /// Nothing older is stored: the room's history starts here.
        at_start: bool,
    },
    /// A search hit, answering [`ClientMsg::Search`] (newest first).
    Found(RoomEvent),
    /// The end of a search's answer.
    FoundEnd {
        /// Hits sent (at most [`crate::limits::SEARCH_MAX_RESULTS`]).
        count: u32,
    },
    /// This connection is signed in to `account` (after [`ClientMsg::SignIn`] or
    /// [`ClientMsg::Register`]). Its session is now the account's: a new resume token replaces
    /// the one from the welcome, and the account's rooms follow as [`ServerMsg::Joined`] (each
    /// with what was missed since its read marker), then [`ServerMsg::ReadUpTo`] per room.
    SignedIn {
        /// The account (also the nick, sent as [`ServerMsg::YourNick`] when it changed).
        account: Nick,
        /// Present it in a later hello to resume.
        token: ResumeToken,
        /// A device key for later sign-ins, when `remember` was asked.
        key: Option<DeviceKey>,
    },
    /// The account's read marker in `room` (sent to every connection of the account).
    ReadUpTo {
        /// Room.
        room: RoomName,
        /// The newest seq read.
        seq: Seq,
    },
    /// The password was changed (answering [`ClientMsg::ChangePassword`]); every device key
    /// of the account was revoked.
    PasswordChanged,
    /// A room's settings: sent to its members when they change (and with `Joined` for a room
    /// that has any), and as the answer to [`ModAction::Settings`]. The key is shown to
    /// operators only.
    Policy {
        /// Room.
        room: RoomName,
        /// The founder's account.
        founder: Option<Nick>,
        /// Operators (accounts).
        ops: Vec<Nick>,
        /// Voiced members.
        voiced: Vec<Nick>,
        /// Modes (boxed: every `ServerMsg` is as big as its biggest kind).
        modes: Box<Modes>,
    },
    /// A room's bans and mutes (answering [`ModAction::Bans`]).
    BanList {
        /// Room.
        room: RoomName,
        /// Bans.
        bans: Vec<Entry>,
        /// Mutes.
        mutes: Vec<Entry>,
    },
    /// `by` invites you to `room` (a `+i` room lets you in now).
    Invited {
        /// Room.
        room: RoomName,
        /// Who.
        by: Nick,
    },
    /// A server admin's notice to everyone.
    Wall {
        /// The admin.
        from: Nick,
        /// What they say.
        text: Text,
    },
    /// The server's bans (answering [`AdminAction::Bans`]).
    ServerBans {
        /// The bans.
        bans: Vec<Entry>,
    },
    /// A big room's comings and goings, summed up: in a room of more than the server's
    /// `quiet_room_members`, joins, parts and quits are not announced one by one (each would go
    /// to every member: O(N²) in a crowd); members get this every `crowd_summary_ms` instead,
    /// when anyone came or went, and a joiner gets it (with zeros) right after its `Joined`.
    /// `members` is the room's size now: the member list is fetched with `Who`.
    Crowd {
        /// Room.
        room: RoomName,
        /// Members who joined since the last summary.
        joined: u32,
        /// Members who left (parted, quit) since the last summary.
        left: u32,
        /// Members now.
        members: u32,
    },
    /// The operator's message of the day, sent right after `Welcome` to a new session (not to
    /// a resumed one) when the server has one: lines for people, in order; `None` is an empty
    /// line. At most [`crate::hub::MAX_MOTD_LINES`] lines (a client shows no more).
    Motd {
        /// Its lines.
        lines: Vec<Option<Text>>,
    },
    /// A direct notice ([`ClientMsg::NoticeTo`], IRC's `NOTICE nick`): as
    /// [`ServerMsg::Direct`], the sender gets it back as its acknowledgement. Appended in
    /// version 7; a client that said an older version gets it as [`ServerMsg::Direct`].
    DirectNotice(DirectMsg),
    /// `nick` is away with this message (`Some`) or not (`None`): the answer to one's own
    /// [`ClientMsg::Away`] (naming oneself), a co-member's change (once, whatever rooms are
    /// shared), and after a [`ClientMsg::Msg`] to a user who is away (IRC's `301`). Appended
    /// in version 8; a client that said an older version is never sent it ([`sent_to`]).
    Away {
        /// Who.
        nick: Nick,
        /// The away message, while away.
        away: Option<Text>,
    },
    /// Answering [`ModAction::Invite`]: `nick` is invited to `room` (and told so with
    /// [`ServerMsg::Invited`]). Appended in version 8; a client that said an older version is
    /// never sent it ([`sent_to`]).
    InviteSent {
        /// Room.
        room: RoomName,
        /// Who was invited.
        nick: Nick,
    },
    /// These members of `room` are away, each with its message: sent right after a
    /// [`ServerMsg::Joined`] (a join, a rejoin, a resume, a sign-in's rooms) and after a
    /// [`ServerMsg::Members`], when any member it lists is away (nothing when nobody is: a
    /// `Joined` or `Members` says nobody is away until this follows it), and after a live
    /// [`EventKind::Join`] of a member who is away. Later changes come as [`ServerMsg::Away`].
    /// Several follow one another when there are more than [`crate::limits::MAX_AWAY_PER_MSG`] (so each fits
    /// in a frame). No line for people: a member list marks them. Appended in version 9; a
    /// client that said an older version is never sent it ([`sent_to`]).
    AwayHere {
        /// Room.
        room: RoomName,
        /// Who, with the away message (at most [`crate::limits::MAX_AWAY_PER_MSG`]).
        away: Vec<(Nick, Text)>,
    },
    /// What an action of this connection's did, in words, where no other message tells it: an
    /// operator's change that changes nothing (`bob is an operator of #r already`), a server
    /// admin's action in a room it is not in (the words its members read: `root put eve out
    /// of #r`), a server ban set or lifted, a room taken over or closed. nc reads the same
    /// words as `-- ` lines. Appended in version 10; a client that said an older version is
    /// never sent it ([`sent_to`]), and hears nothing for these, as before.
    Done(Text),
    /// The answer to [`ClientMsg::Whois`]: what is known of the user called `nick` (`None`:
    /// nobody is called that). Appended in version 11; only a client that asked gets it.
    Whois {
        /// The nick asked about, as asked.
        nick: Nick,
        /// What is known.
        user: Option<WhoisUser>,
    },
    /// The answer to [`ClientMsg::Devices`]: the account's remembered devices, oldest first
    /// (at most [`crate::limits::MAX_DEVICE_KEYS`]). Appended in version 12; only a client
    /// that asked gets it.
    Devices {
        /// The devices.
        devices: Vec<RememberedDevice>,
    },
}

/// A device that holds one of the account's device keys, as [`ServerMsg::Devices`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedDevice {
    /// Its short id: the high 32 bits of its key's public 8-byte id (never anything of the
    /// secret), unique among the account's keys; shown as 8 hex digits
    /// ([`RememberedDevice::id_words`]) and named by [`ClientMsg::ForgetDevice`].
    pub id: u32,
    /// When it was remembered (its key issued).
    pub remembered: Millis,
    /// When its key last signed in or its session last resumed, where it did, and from which
    /// address as the server saw it (`None`: not since the server began keeping it).
    pub used: Option<DeviceUse>,
    /// It is the device asking.
    pub this: bool,
    /// What it is called (`None`: its client gave no label, one before version 13). Sent to
    /// clients of [`DEVICE_LABEL_VERSION`] or later only.
    pub label: Option<DeviceLabel>,
}

impl RememberedDevice {
    /// The short id of the key whose public id is `key_id`.
    pub fn id_of(key_id: u64) -> u32 {
        (key_id >> 32) as u32
    }

    /// The short id as people type it: 8 lowercase hex digits.
    pub fn id_words(id: u32) -> String {
        format!("{id:08x}")
    }
}

/// A remembered device's last sign-in or resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUse {
    /// When.
    pub at: Millis,
    /// Through which door.
    pub door: DeviceDoor,
    /// From which address, as the server saw it (a bridge's: the browser's it named); `None`
    /// when it did not know one.
    pub address: Option<core::net::IpAddr>,
}

/// Which door a remembered device came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceDoor {
    /// A program speaking the binary protocol itself (the `natter` CLI).
    Client,
    /// The page, through the bridge.
    Page,
    /// A person on `nc` or `telnet`.
    Text,
    /// An IRC client.
    Irc,
}

impl DeviceDoor {
    /// The door in words.
    pub fn words(self) -> &'static str {
        match self {
            DeviceDoor::Client => "the natter client",
            DeviceDoor::Page => "the page",
            DeviceDoor::Text => "text (nc)",
            DeviceDoor::Irc => "IRC",
        }
    }
}

/// A user as [`ServerMsg::Whois`] tells it: what IRC's `WHOIS` tells, but the rooms are only
/// those the asker shares with the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoisUser {
    /// The nick, as the user spells it.
    pub nick: Nick,
    /// The account it is signed in to (`None`: a guest).
    pub account: Option<Nick>,
    /// Its away message, while it is away.
    pub away: Option<Text>,
    /// The rooms both the asker and the user are in (at most [`crate::limits::MAX_ROOMS_PER_USER`]).
    pub rooms: Vec<RoomName>,
    /// How long since its last message (to a room or a person), on the connection that spoke
    /// last; `None`: it said nothing since it connected, or the server does not know (a user
    /// on another node of a cluster).
    pub idle: Option<Millis>,
    /// Every connection it has came through TLS.
    pub secure: bool,
    /// Where it is: connected to this server, to another node of the cluster, or nowhere now
    /// (between connections, or an always-on account with no device connected).
    pub presence: Presence,
}

/// Where a [`WhoisUser`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    /// Connected to this server.
    Here,
    /// Connected to another node of the cluster.
    Elsewhere,
    /// A guest between connections, which may resume.
    Resuming,
    /// A registered account with no connection: it stays in its rooms.
    Offline,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_big_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_FRAME>()
}

/// Lets bincode write straight into the frame buffer (no intermediate `Vec`).
struct BufWriter<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for BufWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        if self.0.len() + bytes.len() > LEN_PREFIX + MAX_FRAME {
            return Err(bincode::error::EncodeError::UnexpectedEnd);
        }
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Encodes `msg` as one frame: length prefix and payload, ready to write.
///
/// Measured first, then written into a buffer of exactly its size: one allocation, no
/// spare capacity. Growing a small buffer by doubling left a member list's frame (a `Joined`
/// of a room of 100 is ~1.2 KB) in a buffer of up to twice its size, after a chain of smaller
/// ones freed on the way, while it waited to be written: free chunks that a burst of joins
/// leaves in the allocator's arena (issue 22's idle memory).
pub fn encode_frame<M: Serialize>(msg: &M) -> Result<Bytes, WireError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(msg, &mut size, config())
        .map_err(|_| WireError::EncodeTooLarge)?;
    let len = size.bytes_written;
    if len > MAX_FRAME {
        return Err(WireError::EncodeTooLarge);
    }
    let mut out = BytesMut::with_capacity(LEN_PREFIX + len);
    out.put_u32(len as u32);
    bincode::serde::encode_into_writer(msg, BufWriter(&mut out), config())
        .map_err(|_| WireError::EncodeTooLarge)?;
    if out.len() != LEN_PREFIX + len {
        // Cannot happen: serializing is deterministic.
        return Err(WireError::EncodeTooLarge);
    }
    Ok(out.freeze())
}

/// Encodes `msg` as a client that said `version` in its hello decodes it: as
/// [`encode_frame`], except that a client before version 7 gets a notice as a say or a direct
/// message ([`without_notice`]), a client before version 12 a search's count no greater than
/// the hits sent ([`SEARCH_MORE_VERSION`]), a client of 12 remembered devices without their
/// labels ([`DEVICE_LABEL_VERSION`]), a client before 14 a refusal naming [`Re::Account`] as
/// naming [`Re::Conn`] ([`RE_ACCOUNT_VERSION`]), and a version-5 client ban entries without `at`.
pub fn encode_frame_for(msg: &ServerMsg, version: u16) -> Result<Bytes, WireError> {
    if version >= PROTOCOL_VERSION {
        return encode_frame(msg);
    }
    if version < RE_ACCOUNT_VERSION
        && let ServerMsg::Error {
            kind,
            re: Re::Account,
            detail,
        } = msg
    {
        return encode_frame_for(
            &ServerMsg::Error {
                kind: *kind,
                re: Re::Conn,
                detail: detail.clone(),
            },
            version,
        );
    }
    if version < DEVICE_LABEL_VERSION
        && let ServerMsg::Devices { devices } = msg
    {
        return encode_frame(&v12::Devices { devices });
    }
    if version < SEARCH_MORE_VERSION
        && let ServerMsg::FoundEnd { count } = msg
        && *count > SEARCH_MAX_RESULTS as u32
    {
        return encode_frame(&ServerMsg::FoundEnd {
            count: SEARCH_MAX_RESULTS as u32,
        });
    }
    if version < NOTICE_VERSION
        && let Some(old) = without_notice(msg)
    {
        return encode_frame_for(&old, version);
    }
    if version >= 6 {
        return encode_frame(msg);
    }
    match msg {
        ServerMsg::BanList { room, bans, mutes } => {
            encode_frame(&v5::BanList { room, bans, mutes })
        }
        ServerMsg::ServerBans { bans } => encode_frame(&v5::ServerBans { bans }),
        msg => encode_frame(msg),
    }
}

/// Whether a client that said `version` is sent `msg` at all: one before [`AWAY_VERSION`]
/// cannot decode [`ServerMsg::Away`] (and never asked for it: it cannot go away) nor
/// [`ServerMsg::InviteSent`] (its invitations went unanswered, as they did), one before
/// [`AWAY_HERE_VERSION`] not [`ServerMsg::AwayHere`] (it learns of away changes only).
pub fn sent_to(msg: &ServerMsg, version: u16) -> bool {
    match msg {
        ServerMsg::Away { .. } | ServerMsg::InviteSent { .. } => version >= AWAY_VERSION,
        ServerMsg::AwayHere { .. } => version >= AWAY_HERE_VERSION,
        ServerMsg::Done(_) => version >= DONE_VERSION,
        ServerMsg::Whois { .. } => version >= WHOIS_VERSION,
        ServerMsg::Devices { .. } => version >= DEVICES_VERSION,
        _ => true,
    }
}

/// A notice as a client before [`NOTICE_VERSION`] decodes it: a room notice as a say, a direct
/// notice as a direct message. `None` when `msg` holds no notice.
pub fn without_notice(msg: &ServerMsg) -> Option<ServerMsg> {
    let say = |ev: &RoomEvent| match &ev.kind {
        EventKind::Notice { id, text } => Some(RoomEvent {
            kind: EventKind::Say {
                id: *id,
                text: text.clone(),
            },
            ..ev.clone()
        }),
        _ => None,
    };
    match msg {
        ServerMsg::Event(ev) => say(ev).map(ServerMsg::Event),
        ServerMsg::Past(ev) => say(ev).map(ServerMsg::Past),
        ServerMsg::Found(ev) => say(ev).map(ServerMsg::Found),
        ServerMsg::DirectNotice(dm) => Some(ServerMsg::Direct(dm.clone())),
        _ => None,
    }
}

/// A slice serialized as the sequence of its elements each wrapped by `.1` (an older
/// version's form of them).
struct Each<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<T, W: Serialize> Serialize for Each<'_, T, W> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

/// Version 5's forms of the messages that changed in version 6.
mod v5 {
    use super::{Each, Entry, RoomName};
    use serde::Serialize;
    use serde::ser::{SerializeStructVariant, Serializer};

    /// `ServerMsg::BanList`'s variant index (checked against the enum by a test).
    pub(super) const BAN_LIST: u32 = 23;
    /// `ServerMsg::ServerBans`'s variant index (checked against the enum by a test).
    pub(super) const SERVER_BANS: u32 = 26;

    /// An [`Entry`] without `at`.
    struct OldEntry<'a>(&'a Entry);

    impl Serialize for OldEntry<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeStruct;
            let mut st = s.serialize_struct("Entry", 4)?;
            st.serialize_field("mask", &self.0.mask)?;
            st.serialize_field("until", &self.0.until)?;
            st.serialize_field("by", &self.0.by)?;
            st.serialize_field("reason", &self.0.reason)?;
            st.end()
        }
    }

    pub(super) struct BanList<'a> {
        pub(super) room: &'a RoomName,
        pub(super) bans: &'a [Entry],
        pub(super) mutes: &'a [Entry],
    }

    impl Serialize for BanList<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut v = s.serialize_struct_variant("ServerMsg", BAN_LIST, "BanList", 3)?;
            v.serialize_field("room", self.room)?;
            v.serialize_field("bans", &Each(self.bans, OldEntry))?;
            v.serialize_field("mutes", &Each(self.mutes, OldEntry))?;
            v.end()
        }
    }

    pub(super) struct ServerBans<'a> {
        pub(super) bans: &'a [Entry],
    }

    impl Serialize for ServerBans<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut v = s.serialize_struct_variant("ServerMsg", SERVER_BANS, "ServerBans", 1)?;
            v.serialize_field("bans", &Each(self.bans, OldEntry))?;
            v.end()
        }
    }
}

/// Version 12's form of the message that changed in version 13: [`ServerMsg::Devices`] without
/// the devices' labels.
mod v12 {
    use super::{Each, RememberedDevice};
    use serde::Serialize;
    use serde::ser::{SerializeStruct, SerializeStructVariant, Serializer};

    /// `ServerMsg::Devices`'s variant index (checked against the enum by a test).
    pub(super) const DEVICES: u32 = 35;

    /// A [`RememberedDevice`] without `label`.
    struct OldDevice<'a>(&'a RememberedDevice);

    impl Serialize for OldDevice<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("RememberedDevice", 4)?;
            st.serialize_field("id", &self.0.id)?;
            st.serialize_field("remembered", &self.0.remembered)?;
            st.serialize_field("used", &self.0.used)?;
            st.serialize_field("this", &self.0.this)?;
            st.end()
        }
    }

    pub(super) struct Devices<'a> {
        pub(super) devices: &'a [RememberedDevice],
    }

    impl Serialize for Devices<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut v = s.serialize_struct_variant("ServerMsg", DEVICES, "Devices", 1)?;
            v.serialize_field("devices", &Each(self.devices, OldDevice))?;
            v.end()
        }
    }
}

/// Encodes `msg` as a bare payload (no length prefix), as carried in one WebSocket message.
pub fn encode_payload<M: Serialize>(msg: &M) -> Result<Bytes, WireError> {
    let mut frame = encode_frame(msg)?;
    Ok(frame.split_off(LEN_PREFIX))
}

/// Decodes one payload (without its length prefix). It must be consumed exactly.
pub fn decode_payload<M: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<M, WireError> {
    if payload.len() > MAX_FRAME {
        return Err(WireError::FrameTooLarge(payload.len() as u64));
    }
    let (msg, used) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| WireError::Malformed(Malformed::of(&e)))?;
    if used != payload.len() {
        return Err(WireError::TrailingBytes(payload.len() - used));
    }
    Ok(msg)
}

/// Cuts a byte stream into frame payloads. Holds at most one partial frame: the length prefix is
/// checked before the payload is waited for, so a hostile prefix costs nothing.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends bytes read from the stream. Callers feed what one read returned and then drain
    /// [`FrameDecoder::next_frame`], so the buffer stays within one frame plus one read.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete payload, `Ok(None)` if more bytes are needed, or an error if the
    /// announced length is over the limit (the stream is then unusable).
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, WireError> {
        if self.buf.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(WireError::FrameTooLarge(len as u64));
        }
        if self.buf.len() < LEN_PREFIX + len {
            self.buf.reserve(LEN_PREFIX + len - self.buf.len());
            return Ok(None);
        }
        let mut frame = self.buf.split_to(LEN_PREFIX + len);
        if self.buf.is_empty() {
            // Nothing left over: hold no part of the read's buffer (an idle connection's
            // decoder would otherwise keep it allocated after its last frame).
            self.buf = BytesMut::new();
        }
        let payload = frame.split_off(LEN_PREFIX);
        Ok(Some(payload.freeze()))
    }
}

/// The length of the longest prefix of `buf` made of whole frames (length prefix and payload),
/// so a relay can pass those bytes on unchanged and keep the rest for its next read. Every length
/// prefix it reaches is checked, including that of a trailing partial frame: a length over
/// [`MAX_FRAME`] is [`WireError::FrameTooLarge`] (as in [`FrameDecoder::next_frame`]), and the
/// stream is then unusable. Payloads are not decoded.
pub fn whole_frames_len(buf: &[u8]) -> Result<usize, WireError> {
    let mut at = 0;
    while let Some(prefix) = buf.get(at..at + LEN_PREFIX) {
        let len = frame_len(prefix)?;
        if buf.len() - at - LEN_PREFIX < len {
            break;
        }
        at += LEN_PREFIX + len;
    }
    Ok(at)
}

/// The payload length a 4-byte prefix announces, refused when over [`MAX_FRAME`].
fn frame_len(prefix: &[u8]) -> Result<usize, WireError> {
    let mut be = [0u8; LEN_PREFIX];
    be.copy_from_slice(prefix);
    let len = u32::from_be_bytes(be) as usize;
    if len > MAX_FRAME {
        return Err(WireError::FrameTooLarge(len as u64));
    }
    Ok(len)
}

/// The payloads of a buffer that should hold only whole frames (a bridge's WebSocket message),
/// in order, without copying. A length over [`MAX_FRAME`] or a trailing partial frame
/// ([`WireError::PartialFrame`]) is an error item, after which the iterator ends.
pub fn frame_payloads(buf: &[u8]) -> FramePayloads<'_> {
    FramePayloads { rest: buf }
}

/// Iterator returned by [`frame_payloads`].
#[derive(Debug, Clone)]
pub struct FramePayloads<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FramePayloads<'a> {
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = core::mem::take(&mut self.rest);
        let Some((prefix, body)) = rest.split_at_checked(LEN_PREFIX) else {
            return Some(Err(WireError::PartialFrame(rest.len())));
        };
        let len = match frame_len(prefix) {
            Ok(len) => len,
            Err(e) => return Some(Err(e)),
        };
        let Some((payload, after)) = body.split_at_checked(len) else {
            return Some(Err(WireError::PartialFrame(rest.len())));
        };
        self.rest = after;
        Some(Ok(payload))
    }
}

impl core::iter::FusedIterator for FramePayloads<'_> {}

/// Puts a length prefix in front of a bare payload (the bridge's WebSocket → TCP direction).
pub fn frame_payload(payload: &[u8]) -> Result<Bytes, WireError> {
    let mut out = BytesMut::with_capacity(LEN_PREFIX + payload.len());
    put_frame(&mut out, payload)?;
    Ok(out.freeze())
}

/// Appends a bare payload to `out` as a frame, length prefix first (a bridge batching several
/// WebSocket messages into one write). Nothing is appended if it is too large.
pub fn put_frame(out: &mut BytesMut, payload: &[u8]) -> Result<(), WireError> {
    if payload.len() > MAX_FRAME {
        return Err(WireError::FrameTooLarge(payload.len() as u64));
    }
    out.reserve(LEN_PREFIX + payload.len());
    out.put_u32(payload.len() as u32);
    out.extend_from_slice(payload);
    Ok(())
}

/// What a bridge writes first on its TCP connection for one browser: the preamble and a
/// [`ClientMsg::Forwarded`] naming the browser's address. The browser's own frames follow.
pub fn bridge_preamble(peer: &str, secret: &str) -> Bytes {
    let mut out = BytesMut::from(&MAGIC[..]);
    let peer: String = peer.chars().take(64).collect();
    let secret: String = secret.chars().take(MAX_BRIDGE_SECRET).collect();
    // Cannot fail: two short strings encode far below MAX_FRAME.
    let frame = encode_frame(&ClientMsg::Forwarded { peer, secret }).expect("small frame encodes");
    out.extend_from_slice(&frame);
    out.freeze()
}

/// Longest bridge secret, in characters (a longer one is cut by the bridge and refused by the
/// server: use 16 to 256 random characters).
pub const MAX_BRIDGE_SECRET: usize = 256;

/// Set in the token of the `Ping` with which the server probes a connection whose session
/// another connection asks to resume (a keepalive's token never has it: they count up from 1).
/// Clients answer every `Ping` alike; an intermediary holding a connection for a page that was
/// left (natter-bridge, [`crate::bridge::resumed_elsewhere`]) tells the probe from a keepalive
/// by it.
pub const PROBE_TOKEN: u64 = 1 << 62;

/// Checks a resume request's size (a `Vec` on the wire is otherwise bounded only by the frame).
pub fn resume_is_bounded(r: &Resume) -> bool {
    r.rooms.len() <= MAX_ROOMS_PER_USER
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{nick, room, text};

    /// A version-5 client gets ban lists in version 5's form: the same variant, entries without
    /// `at`; a version-6 client gets `at`; every other message is the same for both.
    #[test]
    fn a_version_5_client_gets_ban_entries_without_their_time() {
        use crate::moderation::{Mask, v1};
        let entry = Entry {
            mask: Mask::Nick(nick("eve")),
            until: Some(Millis(9_000)),
            by: nick("op"),
            reason: Some(text("spam")),
            at: Millis(1_234),
        };
        let list = ServerMsg::BanList {
            room: room("r"),
            bans: vec![entry.clone()],
            mutes: vec![entry.clone(), entry.clone()],
        };
        let payload = |f: Bytes| f.slice(LEN_PREFIX..);
        let old = payload(encode_frame_for(&list, 5).unwrap());
        let (index, r, bans, mutes): (u32, RoomName, Vec<v1::Entry>, Vec<v1::Entry>) =
            decode_payload(&old).unwrap();
        assert_eq!((index, r), (v5::BAN_LIST, room("r")));
        let old_form = Entry {
            at: Millis(0),
            ..entry.clone()
        };
        let bans: Vec<Entry> = bans.into_iter().map(Into::into).collect();
        let mutes: Vec<Entry> = mutes.into_iter().map(Into::into).collect();
        assert_eq!((bans, mutes.len()), (vec![old_form.clone()], 2));
        let new = payload(encode_frame_for(&list, 6).unwrap());
        assert_eq!(decode_payload::<ServerMsg>(&new).unwrap(), list);
        assert_eq!(new[0], old[0], "the same variant in both versions");

        let server = ServerMsg::ServerBans {
            bans: vec![entry.clone()],
        };
        let old = payload(encode_frame_for(&server, 5).unwrap());
        let (index, bans): (u32, Vec<v1::Entry>) = decode_payload(&old).unwrap();
        assert_eq!(index, v5::SERVER_BANS);
        assert_eq!(
            bans.into_iter().map(Into::into).collect::<Vec<Entry>>(),
            vec![old_form]
        );
        let new = payload(encode_frame(&server).unwrap());
        assert_eq!(new[0], old[0]);

        let other = ServerMsg::Ping { token: 3 };
        assert_eq!(
            encode_frame_for(&other, 5).unwrap(),
            encode_frame(&other).unwrap()
        );
        assert!(speaks(5) && speaks(6) && speaks(7) && speaks(PROTOCOL_VERSION) && !speaks(4));
        assert!(!speaks(PROTOCOL_VERSION + 1));
    }

    /// A notice reaches a client of version 7 as one, and an older client (which cannot decode
    /// the appended variants) as the say or direct message it knows.
    #[test]
    fn a_notice_is_a_say_for_a_client_before_version_7() {
        let ev = |kind| RoomEvent {
            room: room("r"),
            seq: Seq(4),
            at: Millis(9),
            from: nick("bot"),
            kind,
        };
        let notice = ev(EventKind::Notice {
            id: MsgId(3),
            text: text("hi"),
        });
        let say = ev(EventKind::Say {
            id: MsgId(3),
            text: text("hi"),
        });
        let decoded = |f: Bytes| decode_payload::<ServerMsg>(&f[LEN_PREFIX..]).unwrap();
        for (wrap, name) in [
            (ServerMsg::Event as fn(RoomEvent) -> ServerMsg, "event"),
            (ServerMsg::Past, "past"),
            (ServerMsg::Found, "found"),
        ] {
            let msg = wrap(notice.clone());
            assert_eq!(decoded(encode_frame_for(&msg, 7).unwrap()), msg, "{name}");
            for old in [5, 6] {
                let got = decoded(encode_frame_for(&msg, old).unwrap());
                assert_eq!(got, wrap(say.clone()), "{name} for version {old}");
            }
        }
        let dm = DirectMsg {
            from: nick("bot"),
            to: nick("bob"),
            id: MsgId(1),
            at: Millis(2),
            text: text("psst"),
        };
        let msg = ServerMsg::DirectNotice(dm.clone());
        assert_eq!(decoded(encode_frame_for(&msg, 7).unwrap()), msg);
        assert_eq!(
            decoded(encode_frame_for(&msg, 6).unwrap()),
            ServerMsg::Direct(dm)
        );
        // A say is the same bytes for every version.
        let plain = ServerMsg::Event(say);
        assert_eq!(
            encode_frame_for(&plain, 6).unwrap(),
            encode_frame(&plain).unwrap()
        );
        assert_eq!(notice.kind.line(), Some((MsgId(3), &text("hi"))));
        assert!(!EventKind::Join.is_line());
    }

    /// A drained decoder holds no buffer (issue 22: idle connections); a partial frame is kept.
    #[test]
    fn a_drained_decoder_keeps_no_buffer() {
        let frame = encode_frame(&ClientMsg::Ping { token: 7 }).unwrap();
        let mut d = FrameDecoder::new();
        d.extend(&[&frame[..], &frame[..3]].concat());
        assert!(d.next_frame().unwrap().is_some());
        assert_eq!(d.next_frame().unwrap(), None);
        assert!(d.buf.capacity() > 0, "the partial frame's bytes are kept");
        d.extend(&frame[3..]);
        let payload = d.next_frame().unwrap().expect("the second frame");
        assert_eq!(d.buf.capacity(), 0, "nothing left over: no buffer");
        assert_eq!(
            decode_payload::<ClientMsg>(&payload).unwrap(),
            ClientMsg::Ping { token: 7 }
        );
    }

    fn roundtrip<M>(msg: M)
    where
        M: Serialize + serde::de::DeserializeOwned + PartialEq + core::fmt::Debug,
    {
        let frame = encode_frame(&msg).unwrap();
        let mut d = FrameDecoder::new();
        // Byte at a time: framing must not depend on read boundaries.
        let mut got = None;
        for b in frame.iter() {
            d.extend(&[*b]);
            if let Some(p) = d.next_frame().unwrap() {
                assert!(got.is_none());
                got = Some(p);
            }
        }
        let payload = got.expect("a whole frame");
        assert_eq!(decode_payload::<M>(&payload).unwrap(), msg);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn every_client_message_round_trips() {
        let r = room("#rust");
        for m in [
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick("alice"),
                resume: Some(Resume {
                    token: ResumeToken([7; 32]),
                    rooms: vec![(r.clone(), Seq(41))],
                }),
            },
            ClientMsg::Forwarded {
                peer: "203.0.113.9".into(),
                secret: "s3cret".into(),
            },
            ClientMsg::Join { room: r.clone() },
            ClientMsg::Part {
                room: r.clone(),
                reason: Some(text("bye")),
            },
            ClientMsg::Say {
                room: r.clone(),
                id: MsgId(1),
                text: text("hi"),
            },
            ClientMsg::Act {
                room: r.clone(),
                id: MsgId(2),
                text: text("waves"),
            },
            ClientMsg::Msg {
                to: nick("bob"),
                id: MsgId(3),
                text: text("psst"),
            },
            ClientMsg::Nick { nick: nick("al") },
            ClientMsg::Topic {
                room: r.clone(),
                topic: None,
            },
            ClientMsg::Who { room: r.clone() },
            ClientMsg::Rooms,
            ClientMsg::History {
                room: r.clone(),
                after: Seq(3),
            },
            ClientMsg::Ping { token: 9 },
            ClientMsg::Pong { token: 9 },
            ClientMsg::Quit { reason: None },
            ClientMsg::Older {
                room: room("#rust"),
                before: Seq(77),
                limit: 50,
            },
            ClientMsg::Search {
                room: None,
                words: text("\"quoted\" -minus NEAR(a b)"),
            },
            ClientMsg::Away(Some(text("at lunch"))),
            ClientMsg::Away(None),
            ClientMsg::ClearTopic { room: r.clone() },
            ClientMsg::Whois { nick: nick("bob") },
            ClientMsg::Devices,
            ClientMsg::ForgetDevice { id: u32::MAX },
            ClientMsg::ThisDevice {
                label: DeviceLabel::new("natter on laptop").unwrap(),
            },
            ClientMsg::NameDevice {
                id: 0x0123_abcd,
                label: DeviceLabel::new("Chromium on Linux").unwrap(),
            },
        ] {
            roundtrip(m);
        }
    }

    /// Away came in version 8 as appended variants: every earlier message keeps its bytes, a
    /// client of 5 to 7 still speaks, and it is never sent the away news it cannot decode.
    #[test]
    fn away_is_appended_in_version_8_and_not_sent_to_older_clients() {
        assert_eq!(AWAY_VERSION, 8);
        let first = |f: Bytes| f[LEN_PREFIX];
        // Appended last: 27 after NoticeTo (26), 30 after DirectNotice (29).
        assert_eq!(first(encode_frame(&ClientMsg::Away(None)).unwrap()), 27);
        let away = ServerMsg::Away {
            nick: nick("bob"),
            away: Some(text("at lunch")),
        };
        assert_eq!(first(encode_frame(&away).unwrap()), 30);
        for old in [5, 6, 7] {
            assert!(speaks(old));
            assert!(!sent_to(&away, old), "version {old}");
            assert!(sent_to(&ServerMsg::Ping { token: 1 }, old));
        }
        assert!(sent_to(&away, AWAY_VERSION));
        // The answer to an invitation came with it: 31, sent to version 8 only.
        let sent = ServerMsg::InviteSent {
            room: room("#r"),
            nick: nick("cat"),
        };
        assert_eq!(first(encode_frame(&sent).unwrap()), 31);
        assert!(!sent_to(&sent, 7) && sent_to(&sent, 8));
        // What version 7 knew is the same bytes for it.
        let ping = ServerMsg::Ping { token: 3 };
        assert_eq!(
            encode_frame_for(&ping, 7).unwrap(),
            encode_frame(&ping).unwrap()
        );
    }

    /// Clearing a topic came in version 9 as one appended client message: what a server of 8
    /// decodes keeps its bytes, and every client of 5 to 8 still speaks.
    #[test]
    fn clear_topic_is_appended_in_version_9() {
        assert_eq!(TOPIC_CLEAR_VERSION, 9);
        let clear = ClientMsg::ClearTopic { room: room("#r") };
        assert_eq!(encode_frame(&clear).unwrap()[LEN_PREFIX], 28);
        for old in 5..=8 {
            assert!(speaks(old), "version {old}");
        }
        assert!(speaks(9));
    }

    /// `/whois` came in version 11 as one appended message each way: what older clients and
    /// servers decode keeps its bytes, every client of 5 to 10 still speaks, and the answer is
    /// never sent to one (it cannot ask).
    #[test]
    fn whois_is_appended_in_version_11() {
        assert_eq!(WHOIS_VERSION, 11);
        assert!(speaks(11));
        let ask = ClientMsg::Whois { nick: nick("bob") };
        assert_eq!(encode_frame(&ask).unwrap()[LEN_PREFIX], 29);
        let answer = ServerMsg::Whois {
            nick: nick("bob"),
            user: None,
        };
        assert_eq!(encode_frame(&answer).unwrap()[LEN_PREFIX], 34);
        for old in 5..=10 {
            assert!(speaks(old) && !sent_to(&answer, old), "version {old}");
        }
        assert!(sent_to(&answer, 11));
    }

    /// Remembered devices came in version 12 as two appended client messages and one server
    /// message: what older clients and servers decode keeps its bytes, every client of 5 to 11
    /// still speaks, and the list is never sent to one (it cannot ask).
    #[test]
    fn devices_are_appended_in_version_12() {
        assert_eq!(DEVICES_VERSION, 12);
        assert!(speaks(12));
        assert_eq!(encode_frame(&ClientMsg::Devices).unwrap()[LEN_PREFIX], 30);
        let forget = ClientMsg::ForgetDevice { id: 0xdead_beef };
        assert_eq!(encode_frame(&forget).unwrap()[LEN_PREFIX], 31);
        let answer = ServerMsg::Devices {
            devices: Vec::new(),
        };
        assert_eq!(encode_frame(&answer).unwrap()[LEN_PREFIX], 35);
        for old in 5..=11 {
            assert!(speaks(old) && !sent_to(&answer, old), "version {old}");
        }
        assert!(sent_to(&answer, 12));
        assert_eq!(RememberedDevice::id_of(0x0123_4567_89ab_cdef), 0x0123_4567);
        assert_eq!(RememberedDevice::id_words(0xab), "000000ab");
    }

    /// A flood refusal of an account request names it (`Re::Account`) from version 14, appended
    /// to `Re`; a client of 5 to 13, which cannot decode it, is sent `Re::Conn`, as before, and
    /// still speaks.
    #[test]
    fn an_account_requests_refusal_names_it_from_version_14() {
        assert_eq!((PROTOCOL_VERSION, RE_ACCOUNT_VERSION), (14, 14));
        assert!((5..=14).all(speaks) && !speaks(15));
        let refusal = |re| ServerMsg::Error {
            kind: ErrorKind::Flood,
            re,
            detail: "too fast".into(),
        };
        let now = encode_frame_for(&refusal(Re::Account), PROTOCOL_VERSION).unwrap();
        assert_eq!(now, encode_frame(&refusal(Re::Account)).unwrap());
        let got: ServerMsg = decode_payload(&now[LEN_PREFIX..]).unwrap();
        assert_eq!(got, refusal(Re::Account));
        for old in 5..RE_ACCOUNT_VERSION {
            assert_eq!(
                encode_frame_for(&refusal(Re::Account), old).unwrap(),
                encode_frame_for(&refusal(Re::Conn), old).unwrap(),
                "version {old}"
            );
        }
        // Every other refusal is written as ever.
        assert_eq!(
            encode_frame_for(&refusal(Re::Conn), 13).unwrap(),
            encode_frame(&refusal(Re::Conn)).unwrap()
        );
    }

    /// Device labels came in version 13: two appended client messages, and a field of
    /// `RememberedDevice` that a client of 12 is never sent (its list keeps version 12's bytes);
    /// every client of 5 to 12 still speaks.
    #[test]
    fn device_labels_come_in_version_13_and_a_version_12_client_gets_none() {
        assert_eq!(DEVICE_LABEL_VERSION, 13);
        assert!((5..=13).all(speaks));
        let label = DeviceLabel::new("natter on laptop").unwrap();
        let this = ClientMsg::ThisDevice {
            label: label.clone(),
        };
        assert_eq!(encode_frame(&this).unwrap()[LEN_PREFIX], 32);
        let name = ClientMsg::NameDevice {
            id: 7,
            label: label.clone(),
        };
        assert_eq!(encode_frame(&name).unwrap()[LEN_PREFIX], 33);
        let device = |label: Option<DeviceLabel>| RememberedDevice {
            id: 0xdead_beef,
            remembered: Millis(5),
            used: Some(DeviceUse {
                at: Millis(9),
                door: DeviceDoor::Client,
                address: Some("192.0.2.1".parse().unwrap()),
            }),
            this: true,
            label,
        };
        let list = ServerMsg::Devices {
            devices: vec![device(Some(label.clone())), device(None)],
        };
        assert_eq!(encode_frame(&list).unwrap()[LEN_PREFIX], v12::DEVICES as u8);
        assert_eq!(
            encode_frame_for(&list, 13).unwrap(),
            encode_frame(&list).unwrap()
        );
        // Version 12's bytes: the struct as it was, field by field, without the label.
        type Old = (u32, Vec<(u32, Millis, Option<DeviceUse>, bool)>);
        let old = encode_frame_for(&list, 12).unwrap();
        let (index, devices): Old = decode_payload(&old[LEN_PREFIX..]).unwrap();
        let was = (0xdead_beef, Millis(5), device(None).used, true);
        assert_eq!((index, devices), (v12::DEVICES, vec![was.clone(), was]));
        for v in 5..=12 {
            assert_eq!(sent_to(&list, v), v >= DEVICES_VERSION, "version {v}");
        }
    }

    /// A search cut at its limit says so from version 12 (`count` one past the hits sent); a
    /// client of 5 to 11 reads `count` as the hits sent, and is sent no more than that.
    #[test]
    fn a_cut_searchs_count_is_the_hits_sent_before_version_12() {
        let cut = ServerMsg::FoundEnd { count: 51 };
        let as_before = encode_frame(&ServerMsg::FoundEnd { count: 50 }).unwrap();
        for old in 5..SEARCH_MORE_VERSION {
            assert_eq!(
                encode_frame_for(&cut, old).unwrap(),
                as_before,
                "version {old}"
            );
        }
        assert_eq!(
            encode_frame_for(&cut, 12).unwrap(),
            encode_frame(&cut).unwrap()
        );
        let whole = ServerMsg::FoundEnd { count: 7 };
        assert_eq!(
            encode_frame_for(&whole, 11).unwrap(),
            encode_frame(&whole).unwrap()
        );
    }

    /// An action's outcome in words came in version 10 as one appended server message, never
    /// sent to a client of 5 to 9 (which cannot decode it); what they decode keeps its bytes.
    #[test]
    fn done_is_appended_in_version_10_and_not_sent_to_older_clients() {
        assert_eq!(DONE_VERSION, 10);
        assert!(speaks(10));
        let done = ServerMsg::Done(text("#r is banned from the server"));
        // Appended last: 33 after AwayHere (32).
        assert_eq!(encode_frame(&done).unwrap()[LEN_PREFIX], 33);
        for old in 5..=9 {
            assert!(speaks(old) && !sent_to(&done, old), "version {old}");
        }
        assert!(sent_to(&done, 10));
        let ping = ServerMsg::Ping { token: 3 };
        assert_eq!(
            encode_frame_for(&ping, 9).unwrap(),
            encode_frame(&ping).unwrap()
        );
    }

    /// Who is away in a room came in version 9 as one appended server message, never sent to a
    /// client of 5 to 8 (which still gets away changes from 8 on).
    #[test]
    fn away_here_is_appended_in_version_9_and_not_sent_to_older_clients() {
        assert_eq!(AWAY_HERE_VERSION, 9);
        let here = ServerMsg::AwayHere {
            room: room("#r"),
            away: vec![(nick("bob"), text("lunch"))],
        };
        // Appended last: 32 after InviteSent (31).
        assert_eq!(encode_frame(&here).unwrap()[LEN_PREFIX], 32);
        for old in 5..=8 {
            assert!(!sent_to(&here, old), "version {old}");
        }
        assert!(sent_to(&here, 9));
        let away = ServerMsg::Away {
            nick: nick("bob"),
            away: None,
        };
        assert!(sent_to(&away, 8) && !sent_to(&away, 7));
    }

    #[test]
    fn every_server_message_round_trips() {
        let r = room("#rust");
        let ev = |kind| RoomEvent {
            room: r.clone(),
            seq: Seq(5),
            at: Millis(1_700_000_000_000),
            from: nick("alice"),
            kind,
        };
        let mut msgs = vec![
            ServerMsg::Welcome {
                version: PROTOCOL_VERSION,
                nick: nick("alice"),
                token: ResumeToken([1; 32]),
                resumed: false,
                limits: Limits::default(),
            },
            ServerMsg::Joined {
                room: r.clone(),
                topic: Some(text("Rust talk")),
                members: vec![nick("alice"), nick("bob")],
                seq: Seq(4),
            },
            ServerMsg::Parted { room: r.clone() },
            ServerMsg::Direct(DirectMsg {
                from: nick("a"),
                to: nick("b"),
                id: MsgId(8),
                at: Millis(3),
                text: text("hey"),
            }),
            ServerMsg::Ack { id: MsgId(8) },
            ServerMsg::Gap {
                room: r.clone(),
                first: Seq(2),
                last: Seq(9),
            },
            ServerMsg::Members {
                room: r.clone(),
                members: vec![nick("x")],
            },
            ServerMsg::Rooms {
                rooms: vec![RoomInfo {
                    room: r.clone(),
                    members: 3,
                }],
            },
            ServerMsg::Topic {
                room: r.clone(),
                topic: None,
            },
            ServerMsg::YourNick { nick: nick("z") },
            ServerMsg::Error {
                kind: ErrorKind::Flood,
                re: Re::Msg(MsgId(4)),
                detail: "slow down".into(),
            },
            ServerMsg::Error {
                kind: ErrorKind::NotInRoom,
                re: Re::Room(r.clone()),
                detail: "you are not in #rust".into(),
            },
            ServerMsg::Error {
                kind: ErrorKind::NickTaken,
                re: Re::Nick(nick("bob")),
                detail: "taken".into(),
            },
            ServerMsg::Error {
                kind: ErrorKind::Protocol,
                re: Re::Conn,
                detail: "bad".into(),
            },
            ServerMsg::Ping { token: 1 },
            ServerMsg::Pong { token: 1 },
            ServerMsg::Bye {
                reason: "shutting down".into(),
            },
            ServerMsg::Past(ev(EventKind::Join)),
            ServerMsg::PastEnd {
                room: r.clone(),
                at_start: true,
            },
            ServerMsg::Found(ev(EventKind::Say {
                id: MsgId(3),
                text: text("found it"),
            })),
            ServerMsg::FoundEnd { count: 1 },
            ServerMsg::Crowd {
                room: r.clone(),
                joined: 12,
                left: 3,
                members: 5_000,
            },
            ServerMsg::Motd {
                lines: vec![Some(text("Be kind.")), None, Some(text("Rules: see /help"))],
            },
        ];
        for kind in [
            EventKind::Say {
                id: MsgId(1),
                text: text("hello"),
            },
            EventKind::Act {
                id: MsgId(2),
                text: text("waves"),
            },
            EventKind::Join,
            EventKind::Part { reason: None },
            EventKind::Quit {
                reason: Some(text("zzz")),
            },
            EventKind::Nick { new: nick("bob") },
            EventKind::Topic {
                topic: Some(text("t")),
            },
            EventKind::Moved,
        ] {
            msgs.push(ServerMsg::Event(ev(kind)));
        }
        msgs.push(ServerMsg::Away {
            nick: nick("bob"),
            away: Some(text("at lunch")),
        });
        msgs.push(ServerMsg::Away {
            nick: nick("bob"),
            away: None,
        });
        msgs.push(ServerMsg::AwayHere {
            room: r.clone(),
            away: vec![(nick("bob"), text("lunch")), (nick("carol"), text("brb"))],
        });
        msgs.push(ServerMsg::Done(text("root put eve out of #r")));
        msgs.push(ServerMsg::Whois {
            nick: nick("bob"),
            user: None,
        });
        msgs.push(ServerMsg::Devices {
            devices: vec![
                RememberedDevice {
                    id: 7,
                    remembered: Millis(5),
                    used: None,
                    this: false,
                    label: None,
                },
                RememberedDevice {
                    id: u32::MAX,
                    remembered: Millis(5),
                    used: Some(DeviceUse {
                        at: Millis(9),
                        door: DeviceDoor::Page,
                        address: Some("2001:db8::1".parse().unwrap()),
                    }),
                    this: true,
                    label: Some(DeviceLabel::new("Chromium on Linux").unwrap()),
                },
            ],
        });
        msgs.push(ServerMsg::Whois {
            nick: nick("bob"),
            user: Some(WhoisUser {
                nick: nick("Bob"),
                account: Some(nick("bob")),
                away: Some(text("lunch")),
                rooms: vec![r.clone()],
                idle: Some(Millis(61_000)),
                secure: true,
                presence: Presence::Here,
            }),
        });
        for m in msgs {
            roundtrip(m);
        }
    }

    #[test]
    fn oversize_length_prefix_is_refused_before_buffering() {
        let mut d = FrameDecoder::new();
        d.extend(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(WireError::FrameTooLarge(0xffff_ffff)));
        let mut d = FrameDecoder::new();
        d.extend(&((MAX_FRAME + 1) as u32).to_be_bytes());
        assert!(matches!(d.next_frame(), Err(WireError::FrameTooLarge(_))));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut payload = encode_payload(&ClientMsg::Rooms).unwrap().to_vec();
        payload.push(0);
        assert_eq!(
            decode_payload::<ClientMsg>(&payload),
            Err(WireError::TrailingBytes(1))
        );
    }

    /// A message kind the protocol does not have (a client of a newer version, or a typo in a
    /// hand-written client) is named as such in the `Error`'s words, not as a bad name or text:
    /// a client's author reads those words to find what is wrong with its bytes.
    #[test]
    fn an_unknown_message_kind_is_said_as_one() {
        assert_eq!(
            decode_payload::<ClientMsg>(&[99]),
            Err(WireError::Malformed(Malformed::UnknownVariant(99)))
        );
        assert_eq!(
            decode_payload::<ServerMsg>(&[0xfb, 0x01, 0x00]),
            Err(WireError::Malformed(Malformed::UnknownVariant(256)))
        );
        // One nested in a known message: a `Moderate` whose `ModAction` is 77.
        let mut p = encode_payload(&ClientMsg::Rooms).unwrap().to_vec();
        p.clear();
        p.push(23);
        p.extend_from_slice(&[3, b'#', b'o', b'k']);
        p.push(77);
        assert_eq!(
            decode_payload::<ClientMsg>(&p),
            Err(WireError::Malformed(Malformed::UnknownVariant(77)))
        );
        // A bad name still says so.
        assert_eq!(
            decode_payload::<ClientMsg>(&[2, 3, b'#', b'O', b'K']),
            Err(WireError::Malformed(Malformed::InvalidValue))
        );
        assert_eq!(
            WireError::Malformed(Malformed::UnknownVariant(99)).to_string(),
            "malformed message: unknown message or field kind 99"
        );
    }

    #[test]
    fn hostile_payloads_fail_cleanly() {
        // A huge Vec length claim must be refused by the byte limit, not allocated.
        let hostile = [
            0u8, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3,
        ];
        assert!(decode_payload::<ClientMsg>(&hostile).is_err());
        assert!(decode_payload::<ServerMsg>(&hostile).is_err());
        // Invalid names are refused by the decoder itself.
        let bad = ClientMsg::Join { room: room("#ok") };
        let mut p = encode_payload(&bad).unwrap().to_vec();
        let at = p.iter().position(|b| *b == b'#').unwrap();
        p[at + 1] = b' ';
        assert!(matches!(
            decode_payload::<ClientMsg>(&p),
            Err(WireError::Malformed(_))
        ));
        assert!(decode_payload::<ClientMsg>(&[]).is_err());
    }

    #[test]
    fn largest_messages_fit_in_a_frame() {
        use crate::limits::{MAX_MEMBERS_LISTED, MAX_ROOMS_LISTED, MAX_TEXT_BYTES};
        let big = Text::new(&"\u{FFFD}".repeat(MAX_TEXT_BYTES / 3)).unwrap();
        let long_room = room(&"r".repeat(31));
        let long_nick = nick(&"n".repeat(16));
        encode_frame(&ServerMsg::Joined {
            room: long_room.clone(),
            topic: Some(big.clone()),
            members: vec![long_nick.clone(); MAX_MEMBERS_LISTED],
            seq: Seq(u64::MAX),
        })
        .unwrap();
        let long_away = Text::new(&"\u{FFFD}".repeat(crate::limits::MAX_AWAY_BYTES / 3)).unwrap();
        encode_frame(&ServerMsg::AwayHere {
            room: long_room.clone(),
            away: vec![(long_nick.clone(), long_away); crate::limits::MAX_AWAY_PER_MSG],
        })
        .unwrap();
        encode_frame(&ServerMsg::Rooms {
            rooms: vec![
                RoomInfo {
                    room: long_room.clone(),
                    members: u32::MAX,
                };
                MAX_ROOMS_LISTED
            ],
        })
        .unwrap();
        encode_frame(&ServerMsg::Event(RoomEvent {
            room: long_room,
            seq: Seq(u64::MAX),
            at: Millis(u64::MAX),
            from: long_nick,
            kind: EventKind::Say {
                id: MsgId(u64::MAX),
                text: big,
            },
        }))
        .unwrap();
    }

    #[test]
    fn bridge_preamble_is_magic_then_forwarded() {
        let p = bridge_preamble("198.51.100.7", "the bridge secret, shared");
        assert_eq!(&p[..4], &MAGIC);
        let mut d = FrameDecoder::new();
        d.extend(&p[4..]);
        let payload = d.next_frame().unwrap().unwrap();
        assert_eq!(
            decode_payload::<ClientMsg>(&payload).unwrap(),
            ClientMsg::Forwarded {
                peer: "198.51.100.7".into(),
                secret: "the bridge secret, shared".into(),
            }
        );
    }

    /// Frames of a few sizes back to back, and where each ends.
    fn batch(sizes: &[usize]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for (n, size) in sizes.iter().enumerate() {
            out.extend_from_slice(&(*size as u32).to_be_bytes());
            out.extend(core::iter::repeat_n(n as u8, *size));
            ends.push(out.len());
        }
        (out, ends)
    }

    #[test]
    fn whole_frames_len_stops_at_the_last_whole_frame() {
        let (buf, ends) = batch(&[3, 0, 200, 1]);
        assert_eq!(whole_frames_len(&[]), Ok(0));
        assert_eq!(whole_frames_len(&buf), Ok(buf.len()));
        for cut in 0..=buf.len() {
            let want = ends
                .iter()
                .copied()
                .filter(|e| *e <= cut)
                .max()
                .unwrap_or(0);
            assert_eq!(whole_frames_len(&buf[..cut]), Ok(want), "cut at {cut}");
        }
    }

    #[test]
    fn whole_frames_len_checks_every_length_it_reaches() {
        let (mut buf, _) = batch(&[5, 6]);
        buf.extend_from_slice(&((MAX_FRAME + 1) as u32).to_be_bytes());
        assert_eq!(
            whole_frames_len(&buf),
            Err(WireError::FrameTooLarge((MAX_FRAME + 1) as u64))
        );
        // A frame of exactly MAX_FRAME is fine, whole or not yet whole.
        let (buf, _) = batch(&[MAX_FRAME]);
        assert_eq!(whole_frames_len(&buf), Ok(buf.len()));
        assert_eq!(whole_frames_len(&buf[..buf.len() - 1]), Ok(0));
    }

    #[test]
    fn frame_payloads_yields_each_payload_then_ends() {
        let msgs = [ServerMsg::Ping { token: 1 }, ServerMsg::Pong { token: 2 }];
        let mut buf = Vec::new();
        for m in &msgs {
            buf.extend_from_slice(&encode_frame(m).unwrap());
        }
        let got: Vec<ServerMsg> = frame_payloads(&buf)
            .map(|p| decode_payload(p.unwrap()).unwrap())
            .collect();
        assert_eq!(got, msgs);
        assert_eq!(frame_payloads(&[]).count(), 0);
        let (buf, _) = batch(&[0]);
        assert_eq!(frame_payloads(&buf).collect::<Vec<_>>(), vec![Ok(&[][..])]);
    }

    #[test]
    fn frame_payloads_refuses_a_partial_or_oversize_frame() {
        let (buf, ends) = batch(&[3, 4]);
        let mut it = frame_payloads(&buf[..buf.len() - 1]);
        assert_eq!(it.next(), Some(Ok(&[0u8; 3][..])));
        assert_eq!(
            it.next(),
            Some(Err(WireError::PartialFrame(buf.len() - 1 - ends[0])))
        );
        assert_eq!(it.next(), None);
        // A cut inside the length prefix.
        assert_eq!(
            frame_payloads(&buf[..2]).collect::<Vec<_>>(),
            vec![Err(WireError::PartialFrame(2))]
        );
        let mut big = buf.clone();
        big.extend_from_slice(&[0xff; 8]);
        let mut it = frame_payloads(&big).skip(2);
        assert_eq!(it.next(), Some(Err(WireError::FrameTooLarge(0xffff_ffff))));
        assert_eq!(it.next(), None);
    }

    /// Which events change a room's membership: what a cluster's hub builds its rosters from,
    /// and what a node hands its hub of a room's older log (the cluster shell asked this of its
    /// own copy of the list, which a new membership event could have missed).
    #[test]
    fn membership_events_are_joins_parts_quits_kicks_renames_and_moves() {
        let line = || (MsgId(1), text("hi"));
        for (kind, changes) in [
            (EventKind::Join, true),
            (EventKind::Part { reason: None }, true),
            (EventKind::Quit { reason: None }, true),
            (
                EventKind::Kick {
                    target: nick("eve"),
                    reason: None,
                },
                true,
            ),
            (EventKind::Nick { new: nick("bob") }, true),
            (EventKind::Moved, true),
            (
                EventKind::Say {
                    id: line().0,
                    text: line().1,
                },
                false,
            ),
            (
                EventKind::Act {
                    id: line().0,
                    text: line().1,
                },
                false,
            ),
            (
                EventKind::Notice {
                    id: line().0,
                    text: line().1,
                },
                false,
            ),
            (EventKind::Topic { topic: None }, false),
            (EventKind::Mode { change: text("+m") }, false),
        ] {
            assert_eq!(kind.changes_membership(), changes, "{kind:?}");
            // Every kind is listed above: a new one must be added here, and decided.
            match kind {
                EventKind::Say { .. }
                | EventKind::Act { .. }
                | EventKind::Join
                | EventKind::Part { .. }
                | EventKind::Quit { .. }
                | EventKind::Nick { .. }
                | EventKind::Topic { .. }
                | EventKind::Kick { .. }
                | EventKind::Mode { .. }
                | EventKind::Moved
                | EventKind::Notice { .. } => {}
            }
        }
    }

    proptest::proptest! {
        /// However a stream of frames is cut, the whole-frame prefix is what [`FrameDecoder`]
        /// would return, and its payloads are the decoder's payloads.
        #[test]
        fn whole_frames_agree_with_the_decoder(
            sizes in proptest::collection::vec(0usize..300, 0..12),
            cut_at in proptest::num::usize::ANY,
        ) {
            let (buf, _) = batch(&sizes);
            let cut = if buf.is_empty() { 0 } else { cut_at % (buf.len() + 1) };
            let part = &buf[..cut];
            let whole = whole_frames_len(part).unwrap();
            let mut d = FrameDecoder::new();
            d.extend(part);
            let mut want = Vec::new();
            while let Some(p) = d.next_frame().unwrap() {
                want.push(p.to_vec());
            }
            proptest::prop_assert_eq!(whole, cut - d.buffered());
            let got: Vec<Vec<u8>> = frame_payloads(&part[..whole]).map(|p| p.unwrap().to_vec()).collect();
            proptest::prop_assert_eq!(got, want);
            if whole < cut {
                let err = frame_payloads(part).find_map(Result::err);
                proptest::prop_assert_eq!(err, Some(WireError::PartialFrame(cut - whole)));
            }
        }
    }
}
