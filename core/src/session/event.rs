//! What a session tells its driver and its UI: the [`Event`]s, and the small types they carry.

use crate::moderation::{Entry, Modes};
use crate::time::Millis;
use crate::types::{DeviceKey, MsgId, Nick, RoomName, Seq, Text};
use crate::wire::{DirectMsg, ErrorKind, RoomEvent, RoomInfo, WhoisUser};

/// Connection state, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Waiting for the transport or the welcome.
    Connecting,
    /// Welcomed; chatting.
    Connected,
    /// Lost, or an attempt failed; the next attempt is at `at`.
    Reconnecting {
        /// When the next attempt starts.
        at: Millis,
        /// Attempts so far since the last success.
        attempt: u32,
        /// A connection the server had welcomed was lost (`false`: an attempt failed, e.g. the
        /// first connect: nothing was lost, and an [`Event::ConnectFailed`] says why it failed).
        lost: bool,
    },
    /// Ended (after `/quit`, or a fatal error such as a protocol version mismatch).
    Closed,
}

/// Where a typed message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A room.
    Room(RoomName),
    /// One user (a direct message).
    Nick(Nick),
}

/// How a chat line we typed reads: said, an action (`/me`), or a notice (`/notice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A plain message (`<nick> text`).
    Say,
    /// An action (`* nick text`).
    Act,
    /// A notice (`-nick- text`): a line that asks for no answer.
    Notice,
}

/// What an [`Event::Error`] is about: the server's `re`, matched to the request it answers, or
/// the session's own refusal of something typed. Nobody has to guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// The session or its connection as a whole (a server error that names nothing, bad data).
    Session,
    /// Something typed that could not be done as typed (a bad command, no room to talk in, too
    /// much waiting to be sent).
    Input,
    /// The message with this id; [`Event::Settled`] `{ delivered: false }` follows.
    Message(MsgId),
    /// Joining this room.
    Join(RoomName),
    /// Leaving this room.
    Part(RoomName),
    /// Another request about this room (its topic, its members).
    Room(RoomName),
    /// Changing our nick to this one.
    Nick(Nick),
    /// Loading older lines of this room (scrollback): asking again may work.
    Older(RoomName),
    /// The search in flight.
    Search,
    /// Signing in, registering, signing out or changing the password (wrong credentials,
    /// throttled, registration closed, not signed in).
    Account,
}

/// What the session has to say to its driver and UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Driver: open a transport now.
    Connect,
    /// Driver: close the transport once the bytes already polled are written.
    Close,
    /// The connection state changed.
    State(ConnState),
    /// The server welcomed us.
    Welcome {
        /// Our nick.
        nick: Nick,
        /// The earlier session was resumed (rooms and nick kept, missed events follow).
        resumed: bool,
        /// The account a sign-in (or registration) sent at once with this welcome is for: the
        /// nick above is a guest's for the moment ([`Event::SignedIn`] or an error follows).
        signing_in: Option<Nick>,
    },
    /// We are in a room we were not in (once per room we enter; a resume or a rejoin refreshes
    /// a room we are in with [`Event::Members`] instead). History events follow.
    Joined {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
        /// Members.
        members: Vec<Nick>,
        /// The seq of our own join: events up to it are history, later ones are live.
        seq: Seq,
    },
    /// The user asked for this room (a `/join` once answered, or one naming a room we are
    /// in): a UI shows it.
    Focus(RoomName),
    /// We left a room.
    Parted {
        /// Room.
        room: RoomName,
        /// Not of our accord, and said already or next, so a UI says no "you left" of its own:
        /// someone put us out (the room's `Kick` event just before said who and why), or the
        /// room would not have us back after a failed resume or a sign-out (the join's
        /// refusal follows).
        kicked: bool,
    },
    /// A room event, once each, in seq order per room (refills after a gap come after it).
    Room(RoomEvent),
    /// A direct message (ours come back as their acknowledgement).
    Direct(DirectMsg),
    /// A direct notice (IRC's `NOTICE nick`): as [`Event::Direct`], shown as a notice.
    DirectNotice(DirectMsg),
    /// Room events `first..=last` were missed; a refill of what the server still has was asked for.
    Gap {
        /// Room.
        room: RoomName,
        /// First missed seq.
        first: Seq,
        /// Last missed seq.
        last: Seq,
    },
    /// Members of a room (reply to `/who`, also after joins and parts).
    Members {
        /// Room.
        room: RoomName,
        /// Members.
        members: Vec<Nick>,
        /// The answer to a `/who` (show it); false for the session's own refresh after a
        /// reconnect (update the member list quietly).
        asked: bool,
        /// A refresh's list is as of this seq (the resume's or rejoin's `Joined`): room events
        /// up to it that follow are history replayed (their joins and parts are in the list
        /// already, and who is away comes as of it). `None` for the answer to a `/who`.
        as_of: Option<Seq>,
    },
    /// Rooms on the server.
    Rooms(Vec<RoomInfo>),
    /// A room's topic (reply to `/topic`).
    Topic {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
    },
    /// Our nick changed.
    Nick(Nick),
    /// We are signed in to `account` (a UI shows it; the session keeps the new resume token).
    SignedIn {
        /// The account.
        account: Nick,
        /// A device key for later sign-ins, when `remember` was asked: keep it (the page keeps
        /// it across reloads), never the password.
        key: Option<DeviceKey>,
    },
    /// We signed out ([`crate::session::Session::sign_out`], `/logout`): the kept credentials and
    /// device key are forgotten (a UI forgets a stored key too); the server closes the
    /// connection and the session comes back as a guest.
    SignedOut,
    /// The account's read marker in a room moved (here or on another of its connections).
    ReadUpTo {
        /// Room.
        room: RoomName,
        /// The newest seq read.
        seq: Seq,
    },
    /// A room's settings: who is in charge of it and its modes. The server sends them on joining
    /// a room that has any, whenever they change, and when asked
    /// ([`ModAction::Settings`](crate::wire::ModAction::Settings)). Operator status belongs to
    /// accounts: `founder` and `ops` name accounts, `voiced` accounts or nicks.
    Policy {
        /// Room.
        room: RoomName,
        /// The account that registered the room (`None`: nobody is in charge).
        founder: Option<Nick>,
        /// Operators (accounts).
        ops: Vec<Nick>,
        /// Voiced members (they speak in a `+m` room).
        voiced: Vec<Nick>,
        /// Modes (an operator sees the key; others see `*` when there is one).
        modes: Modes,
        /// The answer to a typed `/mode #room` (show it); false for the server's news on
        /// joining or after a change (a room event already says what changed) and for
        /// [`Session::moderate`](crate::session::Session::moderate)'s asks (a UI shows those
        /// its own way).
        asked: bool,
    },
    /// A room's bans and mutes, answering
    /// [`ModAction::Bans`](crate::wire::ModAction::Bans).
    BanList {
        /// Room.
        room: RoomName,
        /// Bans.
        bans: Vec<Entry>,
        /// Mutes.
        mutes: Vec<Entry>,
        /// The answer to a typed `/bans` (show it); false for a UI's own ask.
        asked: bool,
    },
    /// `by` invites us to `room` (a `+i` room lets us in now).
    Invited {
        /// Room.
        room: RoomName,
        /// Who.
        by: Nick,
    },
    /// Something went wrong, in words (server errors, bad commands, refused input).
    Error {
        /// Kind, when the server sent it.
        kind: Option<ErrorKind>,
        /// What it is about.
        about: About,
        /// Words for people.
        text: String,
    },
    /// Local information for the user (`/help`, "not resumed", ...).
    Info(String),
    /// What an action of ours did, in the server's words, where nothing else tells it
    /// ([`crate::wire::ServerMsg::Done`]: a server ban, a takeover or close, an action in a
    /// room we are not in, a change that changed nothing): an answer, shown each time.
    Done(String),
    /// The answer to a `/whois`: what is known of the user called `nick` (`None`: nobody is
    /// called that). Shown each time.
    Whois {
        /// The nick asked about.
        nick: Nick,
        /// What is known.
        user: Option<WhoisUser>,
    },
    /// The answer to `/devices`: the account's remembered devices, oldest first. Shown each
    /// time.
    Devices(Vec<crate::wire::RememberedDevice>),
    /// `nick` is away now with this message (`Some`) or back (`None`): us, a co-member, or
    /// someone we wrote to (the server says it after each message to someone away). Member
    /// lists mark it ([`crate::chat::Chat::away`]); its line for people is
    /// [`crate::render::away_words`], which the chat model says beside the direct
    /// conversation with them, if any, once per change.
    Away {
        /// Who.
        nick: Nick,
        /// The away message, while away.
        away: Option<Text>,
    },
    /// These members of `room` are away, each with its message (after its member list came in
    /// [`Event::Joined`] or [`Event::Members`], which say nobody is until this follows, or
    /// after a join): no line, member lists mark them (a front end that prints lines says it
    /// once per change with [`crate::chat::AwayNews`]).
    AwayHere {
        /// Room.
        room: RoomName,
        /// Who, and the away message.
        away: Vec<(Nick, Text)>,
    },
    /// A connection attempt failed (no transport, or no welcome on it): nothing was connected,
    /// so nothing was lost. The [`ConnState::Reconnecting`] before it (`lost: false`) says
    /// when the next attempt starts; this says why this one failed.
    ConnectFailed {
        /// Why, whole: `could not connect to 127.0.0.1:8000: Connection refused (os error 111)`.
        why: String,
        /// How long until the next attempt (zero: at once).
        wait: Millis,
        /// The next attempt goes to the next of the driver's server addresses, at once.
        next_address: bool,
    },
    /// The server operator's message of the day, its lines in order (an empty one kept), as
    /// the server sent it right after welcoming a new session.
    Motd(Vec<String>),
    /// Older events of a room were asked for (scrollback): [`Event::Past`] brings them, or an
    /// [`Event::Error`] about [`About::Older`] says why not. One page per room at a time.
    Older {
        /// Room.
        room: RoomName,
    },
    /// Older events of a room, answering [`Event::Older`]: history, not live events (no unread
    /// counts, alerts or member changes come of them, and seq tracking is untouched).
    Past {
        /// Room.
        room: RoomName,
        /// The events, oldest first, each older than what was asked below (at most
        /// [`HISTORY_PAGE_MAX`](crate::limits::HISTORY_PAGE_MAX)).
        events: Vec<RoomEvent>,
        /// Nothing older is stored: the room's history begins with the first of them.
        at_start: bool,
        /// The oldest event of the room this session has shown, this page's included: where
        /// nothing older is stored and it is not seq 1, the room's start is gone rather than
        /// here (also when the page is empty).
        oldest: Option<Seq>,
    },
    /// A search was asked for (typed, or [`crate::session::Session::search`]): [`Event::Found`]
    /// with the same room and words brings its hits, or an [`Event::Error`] about
    /// [`About::Search`] says why not. A later search replaces it.
    Search {
        /// Only this room (`None`: every room we are in).
        room: Option<RoomName>,
        /// The words, as typed (they are words: quotes, `*` or `-` mean nothing special).
        words: Text,
    },
    /// A search's hits, newest first (at most
    /// [`SEARCH_MAX_RESULTS`](crate::limits::SEARCH_MAX_RESULTS)).
    Found {
        /// The room searched (`None`: every room we are in).
        room: Option<RoomName>,
        /// The words searched for.
        words: Text,
        /// The hits.
        hits: Vec<RoomEvent>,
        /// Older matches were left out: the server found more than it sent.
        more: bool,
    },
    /// A message we typed (say, action or notice, to a room or a nick) has its id and is on its
    /// way: sent now, or after the next welcome. [`Event::Settled`] with the same id follows.
    /// UIs may show it as pending.
    Queued {
        /// Its id.
        id: MsgId,
        /// Where it goes.
        to: Target,
        /// How it reads.
        kind: ChatKind,
        /// What it says.
        text: Text,
    },
    /// The message `id` is settled: the server acknowledged it (`delivered`), or it was refused
    /// or the session ended first (not delivered; an [`Event::Error`] about it, or an
    /// [`Event::Info`] when the session ended, says why).
    Settled {
        /// Its id.
        id: MsgId,
        /// Whether the server took it.
        delivered: bool,
    },
    /// A big room's comings and goings, summed up (its joins, parts and quits are not sent one
    /// by one: see [`ServerMsg::Crowd`](crate::wire::ServerMsg::Crowd)); with zeros right after
    /// joining it. `members` is the room's size: a member list may hold fewer (ask `/who`).
    Crowd {
        /// Room.
        room: RoomName,
        /// Joined since the last summary.
        joined: u32,
        /// Left since the last summary.
        left: u32,
        /// Members now.
        members: u32,
    },
}
