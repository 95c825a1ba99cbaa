//! What the hub asks durable storage to keep and to find, as plain data: the hub never calls a
//! database. It hands out [`Batch`]es of [`Write`]s ([`crate::hub::Hub::poll_store`]) and is
//! told when they are durable or have failed; it asks [`Query`]s
//! ([`crate::hub::Hub::poll_query`]) and is given their [`Answer`]s later; and a restarted hub is
//! handed what was stored ([`Loaded`], [`crate::hub::Hub::restore`]). The shell (natter-server
//! with natter-store) does the I/O.

use crate::accounts::PasswordHash;
use crate::time::Millis;
use crate::types::{DeviceKey, MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use crate::wire::{DirectMsg, RoomEvent};
use sha2::{Digest, Sha256};

/// The hub's number for a batch of writes, in the order it hands them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

impl core::fmt::Display for BatchId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "batch {}", self.0)
    }
}

/// Everything one hub batch needs persisted: committed in one transaction, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Reported back when durable or failed.
    pub id: BatchId,
    /// In the order they are applied.
    pub writes: Vec<Write>,
}

impl Batch {
    /// An empty batch.
    pub fn new(id: BatchId) -> Batch {
        Batch {
            id,
            writes: Vec::new(),
        }
    }

    /// Adds a write.
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }
}

/// One thing to persist. Non-exhaustive: accounts, read markers, bans and an audit log become
/// new variants, each applied in the same transaction as the rest of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Write {
    /// A room event, kept exactly. The room's metadata is derived from it in the same
    /// transaction: its last seq becomes the highest stored, and a topic event sets its topic.
    Event(RoomEvent),
    /// Creates or replaces a resume session (keyed by its token's hash).
    Session(SessionRecord),
    /// Forgets one resume session (the user quit, its grace ran out, or its token changed).
    EndSession(TokenHash),
    /// Forgets every resume session last written before this time.
    EndSessionsBefore(Millis),
    /// Creates an account, or replaces its password hash (keyed by its folded name). Written
    /// by a hub, it applies only to the account as that hub last held it (a store keeps that:
    /// [`Loaded::known`]): one the operator removed is not made again, a name the operator
    /// added again keeps the operator's account, a password the operator set stays (until the
    /// hub reads the accounts again); the hub's other writes of the account ([`Write::AccountRooms`],
    /// keys, markers, kept messages, notes) apply likewise, or change nothing. Written as read,
    /// it is the hub taking up the account as stored.
    Account(AccountRecord),
    /// Forgets an account: its record, rooms, read markers and device keys.
    DropAccount(Nick),
    /// Replaces the rooms an account is in (it stays in them while offline).
    AccountRooms {
        /// The account.
        account: Nick,
        /// Its rooms.
        rooms: Vec<RoomName>,
    },
    /// Moves an account's read marker in a room (it only moves forward).
    ReadMarker {
        /// The account.
        account: Nick,
        /// The room.
        room: RoomName,
        /// The newest seq read.
        seq: Seq,
    },
    /// Adds a device key to an account.
    AddKey {
        /// The account.
        account: Nick,
        /// The key as kept.
        key: KeyRecord,
    },
    /// Revokes one device key.
    RevokeKey {
        /// Its id.
        id: u64,
    },
    /// A device key signed in, or its device's session resumed: when, where and from where
    /// (what `/devices` tells of it). A key no longer kept is left unkept.
    KeyUsed {
        /// The account.
        account: Nick,
        /// The key's id.
        id: u64,
        /// The use.
        used: crate::wire::DeviceUse,
    },
    /// What the device holding key `id` is called (`/devices`): given when the key was
    /// issued, or later with `/devices name`. A key no longer kept is left unkept.
    KeyLabel {
        /// The account.
        account: Nick,
        /// The key's id.
        id: u64,
        /// The label.
        label: crate::types::DeviceLabel,
    },
    /// Revokes every device key of an account (a password change).
    RevokeKeys {
        /// The account.
        account: Nick,
    },
    /// A line of the moderation audit log.
    Audit(AuditRecord),
    /// Replaces the server-wide bans.
    ServerBans(Vec<crate::moderation::Entry>),
    /// Replaces a room's settings (founder, operators, modes, bans, mutes); `None` forgets
    /// them.
    RoomPolicy {
        /// The room.
        room: RoomName,
        /// Its settings.
        policy: Option<crate::moderation::Policy>,
    },
    /// `nick` entered (`here`) or left `room`: the store keeps who is in each room (keyed by
    /// the room and the nick's folded form), so a restarted hub knows who was there when the
    /// server stopped ([`LoadedRoom::present`]). No event: it applies beside the batch's
    /// events, not between them.
    Presence {
        /// The room.
        room: RoomName,
        /// The nick, as it is now.
        nick: Nick,
        /// Entered (true) or left (false).
        here: bool,
    },
    /// Forgets who is in every room: the first write of a restarted hub, whose rooms start
    /// empty (whom it took back into them follows as [`Write::Presence`]). Until that batch is
    /// stored, the store still tells who was there at the stop.
    PresenceReset,
    /// `room`'s seqs up to `upto` were given out, though the events of some of them were not
    /// stored (their batch failed): the room goes on after `upto` when a restarted hub loads
    /// it ([`LoadedRoom::last_seq`]), so a seq that clients may have heard of (in a gap
    /// marker, say) never names another event. No event: it applies beside the batch's events.
    SeqsUsed {
        /// The room.
        room: RoomName,
        /// The highest seq given out.
        upto: Seq,
    },
    /// Moves a resume session's last message id (and its time) forward, the rest of its record
    /// unchanged: what a message costs a session, written with the message. A session with no
    /// record is left without one.
    SessionLastId {
        /// The hash of the session's token (the key).
        token: TokenHash,
        /// See [`SessionRecord::last_id`].
        last_id: MsgId,
        /// See [`SessionRecord::updated`].
        updated: Millis,
    },
    /// Replaces the direct messages kept for an account that had nothing connected when they
    /// came ([`HeldDirect`]; at most [`crate::limits::MAX_HELD_DIRECTS`]), oldest first: one
    /// more kept, or none once delivered.
    HeldDirects {
        /// The account.
        account: Nick,
        /// What is kept for it now.
        held: Vec<HeldDirect>,
    },
    /// Replaces the notes kept for an always-on account put out of rooms while nothing of it
    /// was connected (kicked, banned, the room closed): each room and the words its next
    /// sign-in is told, at most [`crate::limits::MAX_ROOMS_PER_USER`]; none once told. Keyed by
    /// the account and the room. Not written in a cluster, whose hubs keep them in memory.
    AwayNotes {
        /// The account.
        account: Nick,
        /// The notes kept for it now, oldest first.
        notes: Vec<(RoomName, String)>,
    },
}

/// Whether `kind` is the event of an admin's close of its room (`Mode` `close` or
/// `close: reason`, [`crate::wire::AdminAction::Close`]): its topic goes with its registration
/// and settings, so a store that keeps a room's topic forgets it there.
pub fn closes_room(kind: &crate::wire::EventKind) -> bool {
    matches!(kind, crate::wire::EventKind::Mode { change }
        if change.as_str() == "close" || change.as_str().starts_with("close: "))
}

/// A direct message (or direct notice) kept for an account with nothing connected, delivered
/// when it next signs in, with the time it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDirect {
    /// The message, as it was sent.
    pub msg: DirectMsg,
    /// A direct notice ([`crate::wire::ServerMsg::DirectNotice`]), not a message.
    pub notice: bool,
}

/// What an operator or admin did, as the audit log keeps it (`natter-server audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When.
    pub at: Millis,
    /// In which room, if in one.
    pub room: Option<RoomName>,
    /// Who did it (their nick; their account when signed in).
    pub actor: Nick,
    /// What, as the room event shows it (`+b account:eve`, `kick bob: spam`, `kill mallory`).
    pub action: String,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Its name, as registered (it is the nick it owns).
    pub name: Nick,
    /// Its password's argon2id hash.
    pub hash: PasswordHash,
    /// When it was registered.
    pub created: Millis,
}

/// A device key as kept: its id and the hash of its secret, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key's id (not secret).
    pub id: u64,
    /// The SHA-256 of its secret.
    pub hash: TokenHash,
    /// When it was issued.
    pub created: Millis,
    /// Its last sign-in or resume (`None`: none since the store began keeping them).
    pub used: Option<crate::wire::DeviceUse>,
}

impl KeyRecord {
    /// What is kept of `key`.
    pub fn of(key: &DeviceKey, created: Millis) -> KeyRecord {
        KeyRecord {
            id: key.id(),
            hash: TokenHash(Sha256::digest(key.secret()).into()),
            created,
            used: None,
        }
    }
}

/// An account and what goes with it, for a hub starting up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedAccount {
    /// The account.
    pub record: AccountRecord,
    /// The rooms it is in.
    pub rooms: Vec<RoomName>,
    /// Its read markers.
    pub read: Vec<(RoomName, Seq)>,
    /// Its device keys.
    pub keys: Vec<KeyRecord>,
    /// Direct messages kept for it, oldest first ([`Write::HeldDirects`]).
    pub held: Vec<HeldDirect>,
}

/// The SHA-256 of a resume token's secret: what is kept of a token, never the token itself, so
/// a copy of the database lets nobody resume someone else's session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of `token`'s secret.
    pub fn of(token: &ResumeToken) -> TokenHash {
        TokenHash(Sha256::digest(token.secret()).into())
    }
}

impl core::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A user's resume session, as a restarted hub needs it to take the user back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The hash of the token's secret (the key).
    pub token: TokenHash,
    /// The token's id (not secret), which a resume names.
    pub token_id: u64,
    /// The session's nick.
    pub nick: Nick,
    /// Rooms the user is in.
    pub rooms: Vec<RoomName>,
    /// The last message id accepted from this user: a message resent after a restart with an id
    /// at or below it is acknowledged, not delivered again.
    pub last_id: MsgId,
    /// Whether the message with id 0 was taken (a client may count its ids from 0): with
    /// `last_id` 0 it tells a session that took its first message, id 0, from one that took
    /// none yet, so that a resend of that message after a restart is acknowledged, not taken
    /// again. Meaningless once `last_id` is above 0.
    pub took_zero: bool,
    /// Messages from this user that were refused (how, each), oldest first, at most
    /// [`crate::limits::SESSION_MAX_PENDING`]: a resend of one at or below `last_id` after a
    /// restart is refused again, not acknowledged as had (its client may not have heard the
    /// refusal before the server went away).
    pub refused: Vec<(MsgId, crate::wire::ErrorKind)>,
    /// The token before `token` (its id and hash), while the client may not have received
    /// `token` (its connection has sent nothing since the welcome that carried it): still good
    /// after a restart, as it is in the hub, so a kill right after a resume does not leave the
    /// client with a token nobody knows.
    pub prev: Option<(u64, TokenHash)>,
    /// Rooms its user left while this session's client may not have heard it (kicked, banned,
    /// the room closed, or parted from another device): its resume replays what put it out of
    /// these, and of no other room it names. At most [`crate::limits::MAX_ROOMS_PER_USER`];
    /// forgotten on its resume.
    pub put_out: Vec<RoomName>,
    /// The id of the device key its device holds (signed in with, or was given), if any: a
    /// restarted hub still ends this session when that device is forgotten
    /// (`/devices forget`). `None` in records written before schema 17.
    pub device_key: Option<u64>,
    /// When this record was written (the hub's clock: Unix milliseconds in a real server).
    pub updated: Millis,
}

/// What a store holds, for a hub starting up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loaded {
    /// Every room ever stored.
    pub rooms: Vec<LoadedRoom>,
    /// Resume sessions recent enough to resume.
    pub sessions: Vec<SessionRecord>,
    /// Every account.
    pub accounts: Vec<LoadedAccount>,
    /// Rooms' settings (registered rooms, bans...).
    pub policies: Vec<(RoomName, crate::moderation::Policy)>,
    /// Server-wide bans.
    pub server_bans: Vec<crate::moderation::Entry>,
    /// Device keys' labels ([`Write::KeyLabel`]): the key's id and its device's label, for the
    /// keys of [`Loaded::accounts`] that have one. Apart from [`KeyRecord`], which a cluster's
    /// accounts carry without labels.
    pub device_labels: Vec<(u64, crate::types::DeviceLabel)>,
    /// The notes kept for accounts put out of rooms while away ([`Write::AwayNotes`]), per
    /// account, oldest first. Apart from [`LoadedAccount`], which a cluster's accounts carry
    /// without them. Empty from a store older than that record.
    pub away_notes: Vec<(Nick, Vec<(RoomName, String)>)>,
    /// Each account as the server last held it (its registration time and password hash; a
    /// removed one's too), which may differ from [`Loaded::accounts`] where the operator
    /// changed it while the server was stopped: a name removed and added again (another
    /// registration time: the rooms' rights naming it were the old account's, and are lifted),
    /// or a password set (the account's sessions end). The store applies the hub's writes of
    /// an account only while it is as held here, so a hub takes up each account it reads
    /// ([`Write::Account`] as read). Empty from a store older than that record, and in a
    /// cluster.
    pub known: Vec<AccountRecord>,
}

/// One room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRoom {
    /// Its name.
    pub name: RoomName,
    /// Its topic.
    pub topic: Option<Text>,
    /// The highest seq ever stored for it (even if retention removed that event since): the
    /// room's next event is `last_seq + 1`.
    pub last_seq: Seq,
    /// Its newest events, oldest first, to refill the hub's history ring.
    pub recent: Vec<RoomEvent>,
    /// Who was in it when the server stopped (gracefully or not), as the [`Write::Presence`]
    /// stored last tell, in no particular order: one nick per folded form. Empty from a store
    /// older than that record.
    pub present: Vec<Nick>,
}

/// The hub's number for a query, echoed with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// Something the hub wants to read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A page of a room's history.
    History(HistoryQuery),
    /// Chat lines holding some words.
    Search(SearchQuery),
}

/// A page of a room's history: the newest `limit` events with a seq below `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The room.
    pub room: RoomName,
    /// Events with a seq below this one.
    pub before: Seq,
    /// At most this many (the store caps it at [`crate::limits::HISTORY_PAGE_MAX`]).
    pub limit: usize,
}

/// The answer to a [`HistoryQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryPage {
    /// The events, oldest first.
    pub events: Vec<RoomEvent>,
    /// Nothing older is stored.
    pub at_start: bool,
}

/// A search over stored chat lines (says and actions), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words, as a person typed them: every word must occur; search syntax is taken
    /// literally.
    pub words: String,
    /// Only these rooms: the hub names the room asked for, or every room the asker is in, so
    /// that lines of rooms the asker may not read never take the places of its own rooms' lines
    /// among the results. Empty: every room (tools and tests).
    pub rooms: Vec<RoomName>,
    /// At most this many (the store caps it at [`crate::limits::SEARCH_MAX_RESULTS`]).
    pub limit: usize,
}

/// The answer to a [`Query`]: its data, or why the store could not answer (words for people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A history page.
    History(Result<HistoryPage, String>),
    /// Search hits, newest first.
    Search(Result<Vec<RoomEvent>, String>),
}

impl LoadedAccount {
    /// Applies an account's write to it, as a store keeping the account whole would (a cluster
    /// keeps each account as one entry, changed by read, apply, compare-and-swap). False if
    /// the write removes the account. Writes about anything else change nothing. At most
    /// [`crate::limits::MAX_DEVICE_KEYS`] keys are kept (the newest).
    pub fn apply(&mut self, write: &Write) -> bool {
        match write {
            Write::Account(r) => self.record.hash = r.hash.clone(),
            Write::DropAccount(_) => return false,
            Write::AccountRooms { rooms, .. } => self.rooms.clone_from(rooms),
            Write::ReadMarker { room, seq, .. } => {
                match self.read.iter_mut().find(|(r, _)| r == room) {
                    Some((_, s)) => *s = (*s).max(*seq),
                    None => self.read.push((room.clone(), *seq)),
                }
            }
            Write::AddKey { key, .. } => {
                if !self.keys.iter().any(|k| k.id == key.id) {
                    self.keys.push(key.clone());
                }
                let over = self
                    .keys
                    .len()
                    .saturating_sub(crate::limits::MAX_DEVICE_KEYS);
                self.keys.drain(..over);
            }
            Write::RevokeKey { id } => self.keys.retain(|k| k.id != *id),
            Write::KeyUsed { id, used, .. } => {
                if let Some(k) = self.keys.iter_mut().find(|k| k.id == *id) {
                    k.used = Some(used.clone());
                }
            }
            Write::RevokeKeys { .. } => self.keys.clear(),
            Write::HeldDirects { held, .. } => self.held.clone_from(held),
            _ => {}
        }
        true
    }
}
