//! The hub's side of a cluster (issue 23): several hubs on several nodes share rooms through a
//! log the shell provides (natter-cluster puts it on NATS JetStream; core knows no transport).
//! With [`Hub::enable_cluster`], a room event is not sequenced here: it goes out as
//! [`ClusterOut::Publish`], and comes back, from this node or any other, through
//! [`Hub::handle_remote`] with the seq the log gave it, in the log's order. Only then is it
//! delivered to this node's members, so every member on every node sees the same events with
//! the same seqs in the same order. A join waits for its own `Join` event to come back; a nick
//! is claimed cluster-wide ([`ClusterOut::Claim`], answered by [`Hub::handle_claim`]) before it
//! is used. The shell follows the rooms this node has members in ([`ClusterOut::Follow`]), so
//! an event crosses to each node once, not once per member.

use super::deliver::Skip;
use super::dialect::{Hello, IfTaken, Reply, Request};
use super::{DeviceId, Hub, ResumeKey, Timer, User, UserId};
use crate::limits::MAX_NICK_LEN;
use crate::persist::SessionRecord;
use crate::time::Millis;
use crate::types::{ConnId, MsgId, Nick, RoomName, Seq};
use crate::wire::{DirectMsg, ErrorKind, EventKind, Re, RoomEvent, ServerMsg};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::debug;

mod bans;
mod presence;
mod rooms;
mod topics;
use bans::Bans;
pub use bans::mask_key;
pub use presence::Presence;
use presence::Presences;
use rooms::Rooms;
pub use topics::RoomTopic;

/// Claims of one hello before it gives up (the nick asked for, three like it, then guests).
const CLAIM_TRIES: u32 = 8;

/// The reason every client is shown for a member of a node that is gone (`QUIT :*.net *.split`
/// on IRC, a netsplit's words).
const REAPED_REASON: &str = super::dialect::QUIT_REAPED;

/// The `Quit` a node appends to `room`'s log for `nick`, a member of a node whose lease ran out
/// (the shell's reaper finds them and decides which node writes it; what it writes, and the
/// words everyone is shown, are the protocol's). `at` is when the node was found gone, one time
/// for all of its users' quits. The log numbers it: its seq here is 0.
pub fn reaped_quit(room: RoomName, nick: Nick, at: Millis) -> RoomEvent {
    RoomEvent {
        room,
        seq: Seq(0),
        at,
        from: nick,
        kind: EventKind::Quit {
            reason: crate::types::Text::new(REAPED_REASON).ok(),
        },
    }
}

/// What the hub asks of the cluster's shell, in the order it must be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOut {
    /// Start receiving `room`'s events (this node has, or is about to have, a member there):
    /// the shell feeds the room's recent events and then every new one to
    /// [`Hub::handle_remote`], in the log's order.
    Follow(RoomName),
    /// Stop receiving `room`'s events (no member here any more).
    Unfollow(RoomName),
    /// Append `event` to its room's log (its seq is 0: the log gives it). Once stored, it comes
    /// back through [`Hub::handle_remote`] with `origin: Some(id)`; if it cannot be stored,
    /// call [`Hub::handle_publish_failed`].
    Publish {
        /// The hub's number for it.
        id: u64,
        /// The event, seq 0.
        event: RoomEvent,
    },
    /// Claim `nick` for this node, unless another node's user holds it: answer with
    /// [`Hub::handle_claim`].
    Claim {
        /// The hub's number for the claim.
        id: u64,
        /// The nick.
        nick: Nick,
    },
    /// `nick` is no longer used here: release this node's claim on it.
    Release(Nick),
    /// Deliver `dm` on the node that holds `dm.to`; answer with
    /// [`Hub::handle_direct_done`].
    Direct {
        /// The hub's number for it.
        id: u64,
        /// The message.
        dm: DirectMsg,
        /// A direct notice ([`ServerMsg::DirectNotice`]), not a message.
        notice: bool,
        /// The client-only tags it was sent with (IRC's message-tags), for the recipient's
        /// clients that carry them.
        tags: Option<std::sync::Arc<str>>,
        /// Its sender is signed in (IRC's account-tag: its nick is its account's name).
        signed_in: bool,
    },
    /// The answer to a direct message another node asked this one to deliver (see
    /// [`Hub::handle_remote_direct`]): `Err` says why not, in words for people.
    Delivered {
        /// The shell's token for the asking node.
        token: u64,
        /// Whether it was delivered.
        result: Result<(), String>,
    },
    /// The answer to a direct message another node asked this one to deliver (see
    /// [`Hub::handle_remote_direct`]) whose recipient is an account with nothing connected
    /// here: the asking node keeps it for the account ([`ClusterOut::Hold`]), as one node
    /// keeps it. The asking node's hub hears it as [`Hub::handle_direct_unheld`].
    Unheld {
        /// The shell's token for the asking node.
        token: u64,
        /// A device of the account may still resume (its sender is not told it is away).
        resuming: bool,
    },
    /// Keep direct message `id` for the account `account`, which has nothing connected on
    /// any node, until its next sign-in on any node ([`ClusterOut::TakeHeld`]); at most
    /// [`crate::limits::MAX_HELD_DIRECTS`] are kept for an account, and none past
    /// `kept_bytes` kept for all accounts together. Answer with
    /// [`Hub::handle_direct_done`] for `id`: `Ok` once it is kept durably, else why not.
    Hold {
        /// The hub's number for the message.
        id: u64,
        /// The account, as spelt.
        account: Nick,
        /// The message.
        held: crate::persist::HeldDirect,
        /// `[accounts] kept_bytes` as the hub has it now
        /// ([`crate::hub::AccountsConfig::kept_bytes`], never 0: the hub refuses those
        /// itself): the bytes the cluster may keep for all accounts together, as a single node
        /// keeps at most that many; past it the message is refused in the same words.
        kept_bytes: usize,
    },
    /// The account signed in (or a device of it resumed) here: hand the direct messages kept
    /// for it, if any, to [`Hub::handle_held`].
    TakeHeld {
        /// The account, as spelt.
        account: Nick,
    },
    /// The direct messages kept for `account` numbered up to `upto` (as
    /// [`Hub::handle_held`] was handed them) were delivered: forget them, and keep any kept
    /// since.
    HeldDelivered {
        /// The account, as spelt.
        account: Nick,
        /// The last one delivered.
        upto: u64,
    },
    /// Node `node`'s lease ran out while these members of `room` were on it (see
    /// [`Hub::handle_nodes`]): unless another node does it first, append a `Quit` of each to
    /// the room's log, marked as being about `node`'s users (so it comes back through
    /// [`Hub::handle_remote_from`] with `node` as the node). At most one node should do it. If
    /// members are still listed 30 s later it is handed out again (whoever did it may have
    /// died before it finished).
    Reap {
        /// The node that is gone.
        node: String,
        /// The room.
        room: RoomName,
        /// Its members that were on the node.
        nicks: Vec<Nick>,
    },
    /// A resume session was made or changed here: keep its record where every node can read
    /// it, under its token id (it holds the hash of the token's secret, never the token).
    Session(SessionRecord),
    /// The resume session with this token id is over: forget its record.
    EndSession(u64),
    /// A client presented a resume token this node does not know: read the record kept under
    /// `token_id`, and answer with [`Hub::handle_session`].
    FindSession {
        /// The hub's number for the question.
        id: u64,
        /// The token's id (not secret).
        token_id: u64,
    },
    /// Claim `nick` for this node even if another node holds it: a client proved (with its
    /// resume token) that the session holding it is its own, and resumes it here. Answer with
    /// [`Hub::handle_claim`].
    TakeOver {
        /// The hub's number for the claim.
        id: u64,
        /// The nick.
        nick: Nick,
    },
    /// Make the account `record` where every node keeps accounts, unless an account of that
    /// name (folded) exists: of two nodes registering one name at once exactly one succeeds.
    /// Answer with [`Hub::handle_account_created`]; every node then hears of the account
    /// through [`Hub::handle_account`].
    CreateAccount {
        /// The hub's number for it.
        id: u64,
        /// The account (no rooms, read markers or keys yet).
        record: crate::persist::AccountRecord,
    },
    /// Apply `write` (one of the account writes: `Account`, `DropAccount`, `AccountRooms`,
    /// `ReadMarker`, `AddKey`, `RevokeKey`, `RevokeKeys`) to `account`'s entry where every
    /// node keeps accounts, in the order asked, merged with other nodes' writes (read, change,
    /// compare-and-swap on the entry's revision). Every node, this one too, then hears the
    /// account as it is through [`Hub::handle_account`] (or
    /// [`Hub::handle_account_dropped`]).
    ///
    /// `registered` is the registration the write is for (the account's `created`, as on a
    /// single server an account is its registration): the write is left out, answered `None`,
    /// if the entry is another registration of the name (the operator removed the account
    /// and added it again while the write was on its way). `None`: whichever account holds
    /// the name (the operator's own commands, and a hub that did not know the account).
    AccountWrite {
        /// The account.
        account: Nick,
        /// The registration it is for.
        registered: Option<crate::time::Millis>,
        /// What changes.
        write: crate::persist::Write,
    },
    /// Merge `edit` into `room`'s settings where every node keeps them (read, apply
    /// [`SharedRoom::apply`](crate::moderation::SharedRoom::apply), compare-and-swap on the
    /// entry's revision, again if another node wrote in between; a close removes the entry),
    /// in the order asked. Answer with [`Hub::handle_room_written`]; every node, this one too,
    /// then hears the room as it is through [`Hub::handle_room`].
    RoomEdit {
        /// The room.
        room: RoomName,
        /// What changes.
        edit: crate::moderation::PolicyEdit,
    },
    /// Set (`Some`) or lift (`None`) the server-wide ban on `mask` where every node keeps
    /// them (one entry per mask, by [`mask_key`]; a ban replaces one on the same mask), in the
    /// order asked. Answer with [`Hub::handle_server_ban_written`]; every node, this one too,
    /// then hears the mask's ban as it is through [`Hub::handle_server_ban`].
    ServerBan {
        /// Who it holds.
        mask: crate::moderation::Mask,
        /// The ban, or `None` to lift it.
        ban: Option<crate::moderation::Entry>,
    },
    /// What this node's user called `nick` is now (`None`: no user here has the nick any
    /// more): keep it where every node can read it, beside the nick's owner, under the folded
    /// nick; every node then hears it through [`Hub::handle_presence`]. A `None` must not
    /// remove another node's record of the nick (it took the nick over meanwhile).
    Presence {
        /// The nick (its folded form is the key).
        nick: Nick,
        /// The user as it is.
        presence: Option<Presence>,
    },
    /// The server ban on `mask` ran out: remove its entry where every node keeps them, only if
    /// it is still at `revision` (compare-and-swap: of the nodes that see it run out, one
    /// removes it, and a ban set again on the mask meanwhile is kept). Every node then hears
    /// the removal as a lift through [`Hub::handle_server_ban`]. Asked again 30 s later while
    /// the entry is still kept.
    ExpireServerBan {
        /// Who it held.
        mask: crate::moderation::Mask,
        /// The entry's revision that ran out.
        revision: u64,
    },
    /// A `Topic` event this node published is in `room`'s log: keep the room's topic where
    /// every node can read it, unless the topic kept is of a later event (`topic.seq`), and
    /// every node then hears it through [`Hub::handle_topic`].
    Topic {
        /// The room.
        room: RoomName,
        /// Its topic, with the event's seq.
        topic: RoomTopic,
    },
    /// `room` was closed here (`/close`): remove the topic the cluster keeps of it, unless it is
    /// of an event after seq `upto` (the room's newest this node knew of when it closed it: a
    /// topic set after, in a room of that name opened again, stays). Every node then hears
    /// that none is kept ([`Hub::handle_topic`] with `None`).
    TopicGone {
        /// The room.
        room: RoomName,
        /// The seq of the newest event or topic of the room this node knew of.
        upto: u64,
    },
    /// A server admin here said `text` to everyone (`/wall`; `ops`: IRC's `WALLOPS`, to the
    /// IRC users with user mode `w`): this node's users have it already; tell every other
    /// node, whose hub hands it to its own users ([`Hub::handle_remote_wall`]). Not kept: a
    /// notice for who is online now, lost for a node the cluster cannot reach.
    Wall {
        /// The admin.
        from: Nick,
        /// What they say.
        text: crate::types::Text,
        /// IRC's `WALLOPS`, not a `/wall`.
        ops: bool,
    },
    /// Client-only tags (IRC's `TAGMSG`: typing, reactions) for `to`, a user on another node:
    /// hand them to the node holding the nick, whose hub gives them to its connections
    /// ([`Hub::handle_remote_relay`]). Not answered and not kept: worth nothing late, and lost
    /// (as a typing notification may be) when the nick's node cannot be reached.
    Relay {
        /// The sender.
        from: Nick,
        /// The recipient.
        to: Nick,
        /// `+key=value;...` as the client sent them (escaped: one line).
        tags: std::sync::Arc<str>,
        /// The sender is signed in (IRC's account-tag: its nick is its account's name).
        signed_in: bool,
    },
    /// Node `node`'s lease ran out while the cluster still kept these users of it (see
    /// [`Hub::handle_nodes`]): remove each one's record (the one [`ClusterOut::Presence`] keeps)
    /// and its nick's ownership, each only if it is still `node`'s (compare-and-swap: another
    /// node may have taken the nick over meanwhile), so that no node believes them any more
    /// (one starting now included) and the nicks are free. Every node may ask it; doing it twice
    /// is harmless. Every node then hears each removal through [`Hub::handle_presence`]. If the
    /// records are still kept 30 s later it is asked again.
    Forget {
        /// The node that is gone.
        node: String,
        /// Its users' nicks, as the cluster kept them.
        nicks: Vec<Nick>,
    },
    /// Read which node holds `nick` now (its owner entry, the one [`ClusterOut::Claim`] and
    /// [`ClusterOut::TakeOver`] write) and answer with [`Hub::handle_holder`]: whether another
    /// node does (`false` if this one does, nobody does, or it could not be read). Asked when
    /// another node writes a record of a user this node has (see [`Hub::handle_record_elsewhere`]):
    /// an account signed in there took the nick over, which a user in no room hears of no
    /// other way.
    Holder {
        /// The hub's number for the question.
        id: u64,
        /// The nick.
        nick: Nick,
    },
}

/// What waits for a published event to come back.
#[derive(Debug)]
struct Published {
    room: RoomName,
    skip: Skip,
    sender: Option<ConnId>,
    /// The message id of a say or act, to refuse it by if it cannot be stored.
    id: Option<MsgId>,
    /// A join completes when its event is back.
    join: Option<(ConnId, UserId)>,
    /// The join takes a resumed session back into a room: the resume answers it.
    rejoin: bool,
    /// The join takes an account signing in back into a room of its stored rooms: a close
    /// of the room since its last join there puts it out again ([`Hub::closed_while_away`]).
    stored: bool,
    /// A change of the room's settings made here (a `Mode` event: who, and the event), to
    /// announce again once the change is in the cluster if the log refuses it.
    mode: Option<Box<(Nick, EventKind)>>,
    /// A part, quit or nick change of a user of this node, done here already: what the other
    /// nodes may go on believing if the log refuses it ([`Hub::redo_membership`]).
    member: Option<Box<Redo>>,
    /// A say's client-only tags (IRC's message-tags): the log holds the event only, so they
    /// reach the members of this node alone, when the event is back.
    client_tags: Option<std::sync::Arc<str>>,
}

/// A part, quit or nick change of this node's user `uid` in `room`, which the room's log
/// refused: the other nodes may still count `nick` among the room's members.
#[derive(Debug, Clone)]
struct Redo {
    room: RoomName,
    nick: Nick,
    uid: Option<UserId>,
    /// Not a part, quit or nick change but a session taken over from another node whose
    /// `Moved` the log refused: the session is not in the room here (its client was told so),
    /// the node it left still holds it there, and nobody was told it left.
    moved: bool,
}

/// How long after a refused part, quit or nick change it is told again (and again, while the
/// log refuses).
const REDO_AFTER: Millis = Millis(1_000);

/// Refused parts, quits and nick changes kept to tell again, at most (the oldest go first).
const MAX_REDO: usize = 1_024;

/// Publishes on their way to the log, by the hub's number, with how many joins and how many
/// lines (says, acts) of each connection are among them (asked before every request, and
/// after every line, in a cluster: no scan).
#[derive(Debug, Default)]
struct InFlight {
    by_id: BTreeMap<u64, Published>,
    joins: BTreeMap<ConnId, usize>,
    lines: BTreeMap<ConnId, usize>,
}

impl InFlight {
    fn insert(&mut self, id: u64, p: Published) {
        if let Some((c, _)) = p.join {
            *self.joins.entry(c).or_default() += 1;
        }
        if let Some(c) = line_of(&p) {
            *self.lines.entry(c).or_default() += 1;
        }
        if let Some(old) = self.by_id.insert(id, p) {
            self.forget(&old);
        }
    }

    fn remove(&mut self, id: &u64) -> Option<Published> {
        let p = self.by_id.remove(id)?;
        self.forget(&p);
        Some(p)
    }

    fn retain(&mut self, mut keep: impl FnMut(&Published) -> bool) {
        let mut gone = Vec::new();
        self.by_id.retain(|_, p| {
            let kept = keep(p);
            if !kept {
                gone.push((p.join.map(|(c, _)| c), line_of(p)));
            }
            kept
        });
        for (join, line) in gone {
            uncount(&mut self.joins, join);
            uncount(&mut self.lines, line);
        }
    }

    fn forget(&mut self, p: &Published) {
        uncount(&mut self.joins, p.join.map(|(c, _)| c));
        uncount(&mut self.lines, line_of(p));
    }

    /// Whether a line (say, act) of `conn` is among them.
    fn saying(&self, conn: ConnId) -> bool {
        self.lines.contains_key(&conn)
    }

    /// Notes that publish `id` is `redo`'s part, quit or nick change.
    /// Gives publish `id` the client-only tags its say was sent with.
    fn set_client_tags(&mut self, id: u64, tags: std::sync::Arc<str>) {
        if let Some(p) = self.by_id.get_mut(&id) {
            p.client_tags = Some(tags);
        }
    }

    fn set_member(&mut self, id: u64, redo: Redo) {
        if let Some(p) = self.by_id.get_mut(&id) {
            p.member = Some(Box::new(redo));
        }
    }

    /// Marks publish `id` as a session's rejoin.
    fn set_rejoin(&mut self, id: u64) {
        if let Some(p) = self.by_id.get_mut(&id) {
            p.rejoin = true;
        }
    }

    /// Marks the join of `uid` into `room` on its way as one of a signing-in account's
    /// stored rooms.
    fn set_stored(&mut self, room: &RoomName, uid: UserId) {
        for p in self.by_id.values_mut() {
            if p.room == *room && p.join.is_some_and(|(_, u)| u == uid) {
                p.stored = true;
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = &Published> {
        self.by_id.values()
    }

    /// Whether a join of `conn` is among them.
    fn joining(&self, conn: ConnId) -> bool {
        self.joins.contains_key(&conn)
    }
}

/// The connection whose line (a say or act, refused by its id) `p` is.
fn line_of(p: &Published) -> Option<ConnId> {
    p.sender.filter(|_| p.id.is_some())
}

fn uncount(counts: &mut BTreeMap<ConnId, usize>, conn: Option<ConnId>) {
    let Some(c) = conn else {
        return;
    };
    if let Some(n) = counts.get_mut(&c) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&c);
        }
    }
}

/// What waits for a nick claim's answer.
#[derive(Debug)]
enum Claiming {
    /// A new user's hello, on its `tries`th nick.
    Hello {
        conn: ConnId,
        hello: Hello,
        want: Option<Nick>,
        tries: u32,
        /// Requests sent after the hello, run once the user has its nick (a client may send
        /// them without waiting for the welcome, as a single node allows).
        held: Vec<Request>,
    },
    /// A nick change.
    Change { conn: ConnId, uid: UserId },
    /// A resume of a session another node kept, proved by its token: its nick.
    Resume {
        conn: ConnId,
        hello: Hello,
        record: SessionRecord,
        held: Vec<Request>,
    },
}

/// A resume this node does not know the session of, while it finds it and takes it over.
#[derive(Debug)]
struct Finding {
    conn: ConnId,
    hello: Hello,
    /// Requests sent after the hello, run once it is done.
    held: Vec<Request>,
}

/// A session taken over from another node, while its rooms are joined again.
#[derive(Debug)]
struct Resuming {
    did: DeviceId,
    hello: Hello,
    held: Vec<Request>,
}

/// What is answered after its line ended ([`Hub::late_begin`]).
enum Late<'a> {
    /// A join of this room.
    Join(&'a RoomName),
    /// Something else of the kept line: the answer to this message of it, if one.
    Answer(Option<MsgId>),
}

/// A direct message on its way to another node: the sending connection, the message, whether
/// it is a notice, and the client-only tags it was sent with (for the sender's echo).
type Sending = (ConnId, DirectMsg, bool, Option<std::sync::Arc<str>>);

/// The cluster's state in the hub.
#[derive(Debug, Default)]
pub(crate) struct Cluster {
    out: VecDeque<ClusterOut>,
    next: u64,
    published: InFlight,
    claims: BTreeMap<u64, (Nick, Claiming)>,
    /// Rooms followed.
    following: BTreeSet<RoomName>,
    /// Parts, quits and nick changes the room logs refused, to tell again.
    redo: VecDeque<Redo>,
    /// Refused moves not told again: the nick was no longer this node's by then (see
    /// [`Hub::redo_membership`]).
    moves_not_told: u64,
    /// A nick granted to a connection, used by the call that asked for it.
    granted: Option<(ConnId, String)>,
    /// Set while a returned event is delivered: `broadcast` sequences it then.
    applying: bool,
    /// Requests of connections whose join is on its way, run in order once it is done.
    deferred: BTreeMap<ConnId, VecDeque<Request>>,
    /// Direct messages to users on other nodes, by the hub's number: the sender's connection.
    directs: BTreeMap<u64, Sending>,
    /// Direct messages on their way to be kept for an account ([`ClusterOut::Hold`]) whose
    /// sender is then told the recipient is away, as on one node ([`super::ops::KEPT_WORDS`]).
    kept_words: BTreeSet<u64>,
    /// Members of followed rooms on other nodes, from the rooms' logs.
    rosters: BTreeMap<RoomName, Roster>,
    /// Nodes whose lease ran out, with the rooms whose members on them were handed out to be
    /// reaped, and when.
    reaped: BTreeMap<(String, RoomName), Millis>,
    /// Devices whose resume session record must be written (see [`ClusterOut::Session`]).
    sessions: BTreeSet<DeviceId>,
    /// Resumes whose session is being read, by the hub's number.
    finding: BTreeMap<u64, Finding>,
    /// Resumes taken over from another node, by connection, while their rooms are joined.
    resuming: BTreeMap<ConnId, Resuming>,
    /// Take-overs ([`ClusterOut::TakeOver`], by the hub's number) that found the nick free
    /// rather than held by the session's node (its members were reaped meanwhile): the session
    /// comes back with a visible `Join`, not a silent `Moved`.
    reclaimed: BTreeSet<u64>,
    /// Users whose session was taken over from another node: their lines the log holds from
    /// there (read in the resume's replay or since), oldest first. A line the client sends
    /// again (it had no acknowledgement when its node died) is acknowledged, not published
    /// twice.
    /// Kept from the take-over for [`ECHO_WINDOW`].
    echoes: BTreeMap<UserId, (Millis, VecDeque<(RoomName, EventKind)>)>,
    /// Rooms' shared settings: this node's changes on their way, kicks on their way.
    rooms: Rooms,
    /// Server-wide bans: this node's changes on their way.
    bans: Bans,
    /// What this node's users are, as told to the cluster, and every other node's.
    presence: Presences,
    /// Rooms' topics as the cluster keeps them, newest by seq (see `cluster/topics.rs`).
    topics: BTreeMap<RoomName, RoomTopic>,
    /// The shell's link to the cluster is down ([`Hub::handle_cluster_link`]): changes of a
    /// room's settings and topic are refused at once.
    away: bool,
    /// Nodes whose lease was alive at the last listing ([`Hub::handle_nodes`]): IRC's `LUSERS`.
    nodes_alive: usize,
    /// Resume tokens (by id, current and previous) of an account's devices sent away because
    /// the account's user went to another node ([`Hub::moved_away`]), with the account's
    /// name and when, oldest first: a client that comes back with one is not signed in
    /// again by itself ([`Hub::cluster_came_back`]).
    sent_away: VecDeque<(Millis, u64, Nick)>,
    /// Connections that came back with one of those tokens: the account whose next sign-in
    /// there is refused once, and when they came.
    came_back: BTreeMap<ConnId, (Millis, Nick)>,
    /// IRC connections of an account's devices sent away because the account's user went to
    /// another node ([`Hub::moved_away`]): their address, the account's name and when, oldest
    /// first. An IRC client presents no token to recognise it by when it comes back and signs
    /// in with SASL by itself: a SASL sign-in to the account from that address is refused
    /// while the account is connected on the other node ([`Hub::cluster_came_back`]).
    irc_sent_away: VecDeque<(Millis, core::net::IpAddr, Nick)>,
    /// Accounts (folded) whose user went to another node ([`Hub::moved_away`]) before any
    /// record of it from another node came, and when, oldest first. Until one comes the
    /// account is taken for connected there ([`Hub::connected_elsewhere`]): the users' watch
    /// may lag behind the room's `Join` that sent the devices away, and this node's own
    /// record of the user, removed meanwhile, says nothing of where it went.
    unrecorded: VecDeque<(Millis, String)>,
    /// Take-overs on their way ([`ClusterOut::TakeOver`], by the hub's number): the folded
    /// nick. The user's record waits for the answer ([`Hub::poll_presence`]), so that a node
    /// hearing it reads the nick's entry as this node's ([`ClusterOut::Holder`]).
    taking: BTreeMap<u64, String>,
    /// Questions of who holds a nick ([`ClusterOut::Holder`], by the hub's number): the user
    /// here it is asked for.
    holders: BTreeMap<u64, UserId>,
    /// Folded nicks whose holder is asked once this node's own take-over of them is answered
    /// (another node's record came while it was on its way).
    holder_later: BTreeSet<String>,
}

impl Cluster {
    /// Asks for the direct messages kept for `account` ([`ClusterOut::TakeHeld`]).
    pub(super) fn ask_held(&mut self, account: Nick) {
        self.out.push_back(ClusterOut::TakeHeld { account });
    }
}

/// How long a node remembers the devices it sent away because their account's user went to
/// another node: a client sent away comes back within its reconnect backoff (at most a
/// minute); ten cover a laptop that slept meanwhile.
const SENT_AWAY_FOR: Millis = Millis(600_000);

/// Devices sent away (and connections that came back) a node remembers at most, the oldest
/// forgotten first.
const MAX_SENT_AWAY: usize = 1024;

/// How long an account whose user went to another node is taken for connected there while
/// no record of it from that node has come (see [`Cluster::unrecorded`]): that node writes
/// it as soon as its take-over of the nick is answered, and one that never does is gone.
const RECORD_WAIT: Millis = Millis(30_000);

/// What a device of an account is told when it is sent away because the account's user went
/// to another node of the cluster (a sign-in there, or another device's resume).
fn moved_words(account: &str) -> String {
    format!(
        "{account} is connected through another server of this cluster now, which has the \
         account (an account is on one server of a cluster at a time)"
    )
}

/// What a device sent away so is told when its client signs in again by itself on coming
/// back: not done, so that the two devices do not take the account from each other in turn.
fn came_back_words(account: &str) -> String {
    format!(
        "{account} is connected through another server of this cluster, which has the account \
         (an account is on one server of a cluster at a time): not signed in again by itself, \
         which would send that device away in turn; sign in again (/login {account} \
         <password>) to take the account back here"
    )
}

/// What an IRC device sent away so is told when its client signs in again with SASL from the
/// same address while the account is connected through another node: an IRC client cannot
/// say whether a person asked (it signs in the same way each time it reconnects), so it waits
/// for that device to leave, or `minutes`.
fn irc_came_back_words(account: &str, minutes: u64) -> String {
    format!(
        "{account} is connected through another server of this cluster, which has the account \
         (an account is on one server of a cluster at a time): not signed in again by your \
         client's reconnection, which would send that device away in turn; it signs in here \
         once that device disconnects, or in {minutes} min (disconnect it, or wait, to take \
         the account back here)"
    )
}

/// How long after a take-over the client's resends are looked for (it sends them right after
/// its welcome; a minute covers a slow link and its pacing).
const ECHO_WINDOW: Millis = Millis(60_000);

/// Members of a node that is gone still listed this long after their [`ClusterOut::Reap`] was
/// handed out (the node that took the reaping on may have died before it finished) are handed
/// out again.
const REAP_RETRY: Millis = Millis(30_000);

/// Lines kept per taken-over user to recognise its client's resends (a client keeps at most
/// [`crate::limits::SESSION_MAX_PENDING`] unacknowledged).
const MAX_ECHOES: usize = crate::limits::SESSION_MAX_PENDING;

/// The members of one followed room that are on other nodes, as its log says: built from the
/// log's membership events (`Join`, `Part`, `Quit`, `Kick`, `Nick`) from its first event on.
#[derive(Debug, Default)]
struct Roster {
    /// The seq of the last event applied (an event at or below it was applied already).
    seq: u64,
    /// Folded nick → the nick and the node it is on ("" if the shell did not say).
    members: BTreeMap<String, (Nick, String)>,
}

impl Hub {
    /// Makes this hub one node of a cluster (see the module docs). Call it once, before the
    /// first `accept`; drive the cluster with [`Hub::poll_cluster`], [`Hub::handle_remote`],
    /// [`Hub::handle_publish_failed`] and [`Hub::handle_claim`].
    pub fn enable_cluster(&mut self) {
        self.cluster.get_or_insert_with(Box::default);
    }

    /// Cluster mode: the shell's link to the cluster was lost (`up` false) or is back. While
    /// it is down, a change of a room's settings (a mode, a ban, an operator...) or topic is
    /// refused at once, as a line or a join is by the log: made here and written to the
    /// cluster later, its event (which tells the members) could not be published, so members
    /// would not hear of it.
    pub fn handle_cluster_link(&mut self, up: bool) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.away = !up;
        }
    }

    /// Why a change of `room`'s settings or topic is refused now (the cluster is away), if it
    /// is.
    pub(super) fn cluster_away(&self, room: &RoomName) -> Option<String> {
        self.cluster.as_ref().filter(|cl| cl.away).map(|_| {
            format!("the cluster is unavailable (no NATS server answers); {room} is unchanged")
        })
    }

    /// Why a server admin's `/wall` or `WALLOPS` is refused now, if it is: while the cluster is
    /// away the other nodes' users could not hear it, and a wall only some hear is not said
    /// (the admin says it again once NATS is back).
    pub(super) fn cluster_wall_away(&self) -> Option<String> {
        self.cluster.as_ref().filter(|cl| cl.away).map(|_| {
            "the cluster is unavailable (no NATS server answers); nobody was told".to_owned()
        })
    }

    /// The next thing to ask of the cluster, in order.
    pub fn poll_cluster(&mut self) -> Option<ClusterOut> {
        self.poll_presence();
        let dirty = core::mem::take(&mut self.cluster.as_mut()?.sessions);
        for did in dirty {
            let Some(record) = self.session_record(did) else {
                continue;
            };
            if let Some(cl) = self.cluster.as_mut() {
                cl.out.push_back(ClusterOut::Session(record));
            }
        }
        self.cluster.as_mut()?.out.pop_front()
    }

    /// Device `did`'s session changed (token, nick, rooms): its record is written.
    pub(super) fn cluster_session_changed(&mut self, did: DeviceId) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.sessions.insert(did);
        }
    }

    /// The session with token id `token_id` is over.
    pub(super) fn cluster_session_ended(&mut self, token_id: u64) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.out.push_back(ClusterOut::EndSession(token_id));
        }
    }

    /// Cluster mode: `hello` presents a resume token this node does not know; the session is
    /// looked for where every node keeps them. False without a cluster.
    pub(super) fn cluster_find_session(&mut self, conn: ConnId, hello: &Hello) -> bool {
        let Some(token_id) = hello.resume.as_ref().map(|r| r.token.id()) else {
            return false;
        };
        let now = self.now;
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        let at = cl.sent_away.iter().position(|(_, t, _)| *t == token_id);
        if let Some((_, _, account)) = at.and_then(|at| cl.sent_away.remove(at)) {
            // A device this node sent away (its account went to another node) comes back: its
            // session ended then, so there is nothing to find; the client's own sign-in that
            // follows is refused once ([`Hub::cluster_came_back`]).
            cl.came_back
                .retain(|_, (when, _)| now < *when + SENT_AWAY_FOR);
            if cl.came_back.len() >= MAX_SENT_AWAY {
                cl.came_back.pop_first();
            }
            debug!(%conn, %account, "a device sent away to another node comes back");
            cl.came_back.insert(conn, (now, account));
            return false;
        }
        let id = cl.next;
        cl.next += 1;
        cl.finding.insert(
            id,
            Finding {
                conn,
                hello: hello.clone(),
                held: Vec::new(),
            },
        );
        cl.out.push_back(ClusterOut::FindSession { id, token_id });
        true
    }

    /// The answer to [`ClusterOut::FindSession`] `id`: the session's record, if the cluster
    /// keeps one (`None` too if it could not be read). If the token presented opens it, this
    /// node claims the session's nick from the node that had it, joins its rooms again and
    /// resumes it with what the client missed; else the client is told and starts afresh.
    pub fn handle_session(&mut self, id: u64, record: Option<SessionRecord>, now: Millis) {
        self.now = self.now.max(now);
        let Some(f) = self.cluster.as_mut().and_then(|cl| cl.finding.remove(&id)) else {
            return;
        };
        if self.conns.get(&f.conn).is_none_or(|c| c.closing()) || self.user_of(f.conn).is_some() {
            return;
        }
        let opens = |r: &SessionRecord| {
            let key = ResumeKey {
                id: r.token_id,
                hash: r.token.0,
            };
            f.hello.resume.as_ref().is_some_and(|t| key.opens(&t.token))
        };
        let Some(record) = record.filter(|r| opens(r)) else {
            return self.session_not_found(f, now);
        };
        if self.tokens.contains_key(&self.devices, record.token_id) {
            // Known here after all (taken over meanwhile): resume as usual.
            return self.session_not_found(f, now);
        }
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let id = cl.next;
        cl.next += 1;
        let nick = record.nick.clone();
        debug!(conn = %f.conn, %nick, "resuming a session another node kept");
        let claiming = Claiming::Resume {
            conn: f.conn,
            hello: f.hello,
            record,
            held: f.held,
        };
        cl.claims.insert(id, (nick.clone(), claiming));
        cl.taking.insert(id, nick.folded());
        cl.out.push_back(ClusterOut::TakeOver { id, nick });
    }

    /// A resume whose session nobody keeps: the client is told, and gets a fresh one.
    fn session_not_found(&mut self, f: Finding, now: Millis) {
        let Finding {
            conn,
            mut hello,
            held,
        } = f;
        self.stats.resumes_failed += 1;
        self.error(
            conn,
            ErrorKind::ResumeFailed,
            Re::Conn,
            super::resume::RESUME_REFUSED.into(),
        );
        hello.resume = None;
        self.fresh_session(conn, hello, now);
        self.cluster_hold_all(conn, held, now);
    }

    /// Hands `held` to whatever holds `conn`'s requests now (a nick claim), or runs them.
    fn cluster_hold_all(&mut self, conn: ConnId, held: Vec<Request>, now: Millis) {
        for req in held {
            if self.user_of(conn).is_some() {
                self.submit(conn, req, now);
            } else if !self.cluster_holds(conn, req) {
                return;
            }
        }
    }

    /// The session's nick is this node's now: the user and its device are made here as the
    /// session was (detached), and its rooms are joined again through the log; once they all
    /// are, the resume goes on as on the node that kept it.
    fn take_over_session(
        &mut self,
        conn: ConnId,
        hello: Hello,
        record: SessionRecord,
        held: Vec<Request>,
        visible: bool,
        now: Millis,
    ) {
        let uid = UserId(self.next_user);
        self.next_user += 1;
        // Away as its node last told, if the session moves (it never left).
        let away = self.told_away(&record.nick).filter(|_| !visible);
        self.nicks
            .insert(&self.users, record.nick.folded_key(), uid);
        self.attach_gen += 1;
        let mut user = User::new(uid, record.nick.clone());
        user.set_away(away);
        self.users.insert(uid, Box::new(user));
        let did = self.restored_device(uid, &record, now);
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        cl.resuming.insert(conn, Resuming { did, hello, held });
        cl.echoes.insert(uid, (now, VecDeque::new()));
        // The session moves here silently: for everyone it never left its rooms. Only if its
        // members were reaped meanwhile (everyone saw it quit) does it join them again.
        let kind = if visible {
            EventKind::Join
        } else {
            EventKind::Moved
        };
        for room in record.rooms {
            if !self.rooms.contains_key(&room) {
                self.rooms.insert(room.clone(), super::room::Room::new());
            }
            let Some(cl) = self.cluster.as_mut() else {
                return;
            };
            let join = Some((conn, uid));
            let skip = Skip::User(uid);
            let no = publish(
                cl,
                &room,
                &record.nick,
                kind.clone(),
                now,
                skip,
                None,
                None,
                join,
            );
            cl.published.set_rejoin(no);
            if !visible {
                // Refused, the session leaves the room here, and the node it left must hear
                // of the move and the others of the part (`redo_membership`).
                let redo = Redo {
                    room,
                    nick: record.nick.clone(),
                    uid: Some(uid),
                    moved: true,
                };
                cl.published.set_member(no, redo);
            }
        }
        self.finish_resume(conn, now);
    }

    /// Once every room of a session taken over is joined again, the resume goes on.
    fn finish_resume(&mut self, conn: ConnId, now: Millis) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        if joining(cl, conn) {
            return;
        }
        let Some(r) = cl.resuming.remove(&conn) else {
            return;
        };
        if self.conns.get(&conn).is_none_or(|c| c.closing()) {
            // The client left meanwhile: the session waits for it, detached, as it would have.
            return;
        }
        self.note_replayed_echoes(r.did, &r.hello);
        self.resume(conn, r.did, &r.hello, now);
        for req in r.held {
            self.submit(conn, req, now);
        }
    }

    /// Whether `broadcast` must publish instead of sequencing; if so, publishes (see
    /// [`ClusterOut::Publish`]), keeping a say's `client_tags` for its members here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn divert(
        &mut self,
        room: &RoomName,
        from: &crate::types::Nick,
        kind: &EventKind,
        now: Millis,
        skip: Skip,
        sender: Option<ConnId>,
        client_tags: Option<&std::sync::Arc<str>>,
    ) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        if cl.applying {
            return false;
        }
        let id = match kind {
            EventKind::Say { id, .. }
            | EventKind::Act { id, .. }
            | EventKind::Notice { id, .. }
                if sender.is_some() =>
            {
                Some(*id)
            }
            _ => None,
        };
        if let (Some(conn), Some(msg)) = (sender, id)
            && self.resent_echo(conn, room, kind)
        {
            debug!(%conn, id = msg.0, "resent line the log holds already: acknowledged");
            self.reply(conn, super::dialect::Reply::Msg(ServerMsg::Ack { id: msg }));
            return true;
        }
        // A part, quit or nick change is done here already: if the log refuses it, it is told
        // again as it stands then (`redo_membership`). Whose it is: the user by the nick it
        // leaves with, or by its new one (a quit's user is gone).
        let member = match kind {
            EventKind::Part { .. } | EventKind::Quit { .. } => Some(from),
            EventKind::Nick { new } => Some(new),
            _ => None,
        }
        .map(|n| Redo {
            room: room.clone(),
            nick: from.clone(),
            uid: self.nicks.get(&self.users, n.folded_key().as_str()),
            moved: false,
        });
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        let no = publish(cl, room, from, kind.clone(), now, skip, sender, id, None);
        if let Some(m) = member {
            cl.published.set_member(no, m);
        }
        if let Some(t) = client_tags {
            cl.published.set_client_tags(no, t.clone());
        }
        true
    }

    /// Cluster mode: the room log refused `redo`'s part, quit or nick change: it is told again
    /// after [`REDO_AFTER`].
    fn note_redo(&mut self, redo: Redo, now: Millis) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let evicted = (cl.redo.len() == MAX_REDO)
            .then(|| cl.redo.pop_front())
            .flatten();
        cl.redo.push_back(redo);
        if !self.timers.is_set(super::Timer::ClusterRedo) {
            self.timers.set(super::Timer::ClusterRedo, now + REDO_AFTER);
        }
        if let Some(r) = evicted {
            // Its room may have been kept for it alone (`cluster_keeps`).
            self.drop_if_empty(&r.room);
        }
    }

    /// Cluster mode: the parts, quits and nick changes the room logs refused are told again, as
    /// they stand now, to the other nodes only (the members here saw them when they were made):
    /// a user here under a new nick and still in the room, a nick change from the nick the
    /// others know to that one; a user no longer in the room, its part (its quit if it is
    /// gone); nothing if the nick the others know is in the room here after all. A refused one
    /// is told again later, as it stands then.
    pub(super) fn redo_membership(&mut self, now: Millis) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let redo: Vec<Redo> = cl.redo.drain(..).collect();
        for r in redo {
            // The user's join of the room is on its way: what holds is known once it is back.
            let joining = self.cluster.as_ref().is_some_and(|cl| {
                cl.published
                    .values()
                    .any(|p| p.room == r.room && p.join.is_some_and(|(_, u)| Some(u) == r.uid))
            });
            if joining {
                self.note_redo(r, now);
                continue;
            }
            let user = r.uid.and_then(|u| self.users.get(&u));
            let in_room = r.uid.is_some_and(|u| {
                self.rooms
                    .get(&r.room)
                    .is_some_and(|room| room.members.contains(&u))
            });
            let folded = r.nick.folded();
            if r.moved {
                // A session taken over here whose `Moved` the log refused: the node it left
                // still holds it in the room, and nobody was told it is not there. While the
                // nick is this node's (the user's, or another user's here by now), that node
                // hears of the move (it lets its user go without a word), and if nobody here
                // by that nick is in the room, everyone but that user hears the part. Gone
                // from this node, the nick may be another node's now: the node it left lets
                // its user go when its wait for a resume runs out.
                let Some(holder) = self.nicks.get(&self.users, r.nick.folded_key().as_str()) else {
                    debug!(room = %r.room, nick = %r.nick, "a move the log refused, not told: the nick is not this node's now");
                    if let Some(cl) = self.cluster.as_mut() {
                        cl.moves_not_told += 1;
                    }
                    continue;
                };
                let in_room = self
                    .rooms
                    .get(&r.room)
                    .is_some_and(|room| room.members.contains(&holder));
                debug!(room = %r.room, nick = %r.nick, in_room, "a move the log refused, told again");
                let Some(cl) = self.cluster.as_mut() else {
                    return;
                };
                let (room, nick) = (&r.room, &r.nick);
                publish(
                    cl,
                    room,
                    nick,
                    EventKind::Moved,
                    now,
                    Skip::All,
                    None,
                    None,
                    None,
                );
                if !in_room {
                    let part = EventKind::Part { reason: None };
                    let skip = Skip::User(holder);
                    let no = publish(cl, room, nick, part, now, skip, None, None, None);
                    cl.published.set_member(no, r);
                }
                continue;
            }
            // A user of another node goes by that nick in the room now (the nick was freed and
            // taken): what the others believe of it is that user's, not for this node to
            // correct; this node's user, still in the room under another nick, joins for them.
            let elsewhere = self.cluster.as_ref().is_some_and(|cl| {
                cl.rosters
                    .get(&r.room)
                    .is_some_and(|roster| roster.members.contains_key(&folded))
            });
            // ... or another user of this node does.
            let taken = elsewhere
                || self
                    .member_here(&r.room, &r.nick)
                    .is_some_and(|u| Some(u) != r.uid);
            let (from, kind) = match user {
                Some(u) if in_room && u.nick.folded() == folded => continue,
                Some(u) if in_room && taken => (u.nick.clone(), EventKind::Join),
                Some(u) if in_room => {
                    let new = u.nick.clone();
                    (r.nick.clone(), EventKind::Nick { new })
                }
                _ if taken => continue,
                Some(_) => (r.nick.clone(), EventKind::Part { reason: None }),
                None => (r.nick.clone(), EventKind::Quit { reason: None }),
            };
            debug!(room = %r.room, nick = %r.nick, ?kind, "told again: the log refused it");
            let Some(cl) = self.cluster.as_mut() else {
                return;
            };
            // The members here saw it when it was made.
            let skip = Skip::All;
            let no = publish(cl, &r.room, &from, kind, now, skip, None, None, None);
            cl.published.set_member(no, r);
        }
    }

    /// Cluster mode: `uid` on `conn` asked to join `room` and may; it joins when its `Join`
    /// comes back through the log. False without a cluster.
    pub(super) fn cluster_join(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: &RoomName,
        now: Millis,
    ) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return true;
        };
        let waiting = cl
            .published
            .values()
            .any(|p| p.room == *room && p.join.is_some_and(|(_, u)| u == uid));
        if waiting {
            return true;
        }
        let join = Some((conn, uid));
        publish(
            cl,
            room,
            &nick,
            EventKind::Join,
            now,
            Skip::User(uid),
            None,
            None,
            join,
        );
        true
    }

    /// Cluster mode: the join of `uid` into `room` just asked is one of its account's stored
    /// rooms, at sign-in ([`Hub::closed_while_away`] when it comes back).
    pub(super) fn cluster_stored_join(&mut self, uid: UserId, room: &RoomName) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.published.set_stored(room, uid);
        }
    }

    /// Cluster mode: `req` waits if a join of `conn` is on its way (what follows a join may
    /// need it done, as on a single node); else it is handed back to run now.
    pub(super) fn cluster_defer(&mut self, conn: ConnId, req: Request) -> Option<Request> {
        let max = self.config.flood_queue;
        let Some(cl) = self.cluster.as_mut() else {
            return Some(req);
        };
        if !waiting(cl, conn) {
            return Some(req);
        }
        let queue = cl.deferred.entry(conn).or_default();
        if queue.len() >= max {
            let detail =
                "too many commands wait for your join or nick; this one was dropped".to_owned();
            // Named as the single node's flood refusal names it: a client of 14 takes a flood
            // refusal naming nothing for another command's, and would wait for ever for the
            // answer to its sign-in or registration dropped here.
            self.error(conn, ErrorKind::Flood, super::ops::re_of(&req), detail);
            return None;
        }
        queue.push_back(req);
        None
    }

    /// Runs what waited for `conn`'s join, up to the next join, or up to a request that starts
    /// account work (a registration, a sign-in): what follows that waits for its answer, as
    /// what the connection sends meanwhile does (`Hub::submit`), and is run on by
    /// `Hub::run_pending` once it is answered. A step of the line that waited runs as that
    /// line's answer ([`Hub::late_answer`]); once nothing of that line waits, its answer is
    /// closed ([`Hub::late_end`]) before anything after it runs.
    pub(super) fn run_deferred(&mut self, conn: ConnId, now: Millis) {
        loop {
            if self.account_busy(conn) {
                return;
            }
            let Some(cl) = self.cluster.as_mut() else {
                return;
            };
            if waiting(cl, conn) {
                return;
            }
            let Some(queue) = cl.deferred.get_mut(&conn) else {
                return self.late_settle(conn);
            };
            let Some(req) = queue.pop_front() else {
                cl.deferred.remove(&conn);
                return self.late_settle(conn);
            };
            if self.conns.get(&conn).is_none_or(|c| c.closing()) {
                if let Some(cl) = self.cluster.as_mut() {
                    cl.deferred.remove(&conn);
                }
                return;
            }
            match req {
                // A line of its own: the one before it is complete.
                Request::Line(_) => {
                    self.late_end(conn);
                    self.run(conn, req, now);
                }
                req => self.late_answer(conn, None, |hub| hub.run(conn, req, now)),
            }
        }
    }

    /// Whether part of the answer to `conn`'s line that just ran comes after it: a join or a
    /// nick change waits for the cluster, or steps wait for them.
    pub(super) fn cluster_answers_later(&self, conn: ConnId) -> bool {
        self.cluster.as_ref().is_some_and(|cl| {
            waiting(cl, conn)
                || cl.deferred.get(&conn).is_some_and(|q| !q.is_empty())
                || cl.published.saying(conn)
                || cl.directs.values().any(|(c, _, _, _)| *c == conn)
        })
    }

    /// `conn`'s kept line is closed if nothing of its answer is to come any more.
    fn late_settle(&mut self, conn: ConnId) {
        let kept = self
            .conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.late_kept());
        if kept && !self.cluster_answers_later(conn) {
            self.late_end(conn);
        }
    }

    /// Does `f`, which answers `conn` after its line ended, as that line's answer (IRC: with
    /// its command and label, kept by the dialect when the line ended); `msg`: the message
    /// it answers, whose line it must be.
    fn late_answer(&mut self, conn: ConnId, msg: Option<MsgId>, f: impl FnOnce(&mut Hub)) {
        let before = self.late_begin(conn, Late::Answer(msg));
        f(self);
        self.late_pause(conn, before);
    }

    /// `conn`'s dialect takes up its kept line (or, for a join, a JOIN of its own); the
    /// connection's backlog before, to tell whether anything was answered.
    fn late_begin(&mut self, conn: ConnId, late: Late<'_>) -> usize {
        let Some(c) = self.conns.get_mut(&conn) else {
            return 0;
        };
        let before = c.backlog_bytes();
        if let Some(d) = c.dialect_mut() {
            match late {
                Late::Join(room) => d.late_join(room),
                Late::Answer(msg) => d.late_answer(msg),
            }
        }
        before
    }

    /// The late answer begun by [`Hub::late_begin`] is done for now.
    fn late_pause(&mut self, conn: ConnId, before: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let answered = c.backlog_bytes() > before;
        if let Some(d) = c.dialect_mut() {
            d.late_done(answered);
        }
    }

    /// Nothing more of `conn`'s kept line is to come: its answer is closed.
    fn late_end(&mut self, conn: ConnId) {
        let end = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.dialect_mut())
            .and_then(|d| d.late_end());
        if let Some(end) = end {
            self.reply(conn, Reply::Own(end));
        }
    }

    /// Whether `room` must stay though nobody here is in it: an event of this node's is on its
    /// way through the room's log (a join, or the part or line of one who left since), or a
    /// part, quit or nick change the log refused waits to be told again
    /// ([`Hub::redo_membership`]). Until then the room stays followed, so that the event comes
    /// back to the room as this node knows it: were the room let go and followed again
    /// meanwhile (a part, then a join), the event would come back to the new following, not
    /// known as this node's, ahead of the log's earlier events the new following reads, which
    /// would then be taken as seen (and the members they tell of missing here). When it goes,
    /// it is no longer followed.
    pub(super) fn cluster_keeps(&mut self, room: &RoomName) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        if cl.published.values().any(|p| p.room == *room) || cl.redo.iter().any(|r| r.room == *room)
        {
            return true;
        }
        if cl.following.remove(room) {
            cl.published.retain(|p| p.room != *room);
            cl.rosters.remove(room);
            cl.out.push_back(ClusterOut::Unfollow(room.clone()));
        }
        false
    }

    /// A room event from the log, in the log's order: from another node, or this node's own
    /// (`origin`: the id of its [`ClusterOut::Publish`]). Delivered to this node's members
    /// with the log's seq; an event at or below the room's latest seq was seen and is dropped.
    /// Events of a room this node does not hold are dropped.
    pub fn handle_remote(&mut self, event: RoomEvent, origin: Option<u64>, now: Millis) {
        self.handle_remote_from(event, origin, "", now);
    }

    /// [`Hub::handle_remote`], saying which node the event's user is on: the node that
    /// published it, or the node whose users a reaper's `Quit` is about (see
    /// [`ClusterOut::Reap`]). Member lists (`Joined`, WHO, NAMES, LIST) count the room's
    /// members on other nodes from these events; a member is dropped when its node is gone.
    pub fn handle_remote_from(
        &mut self,
        event: RoomEvent,
        origin: Option<u64>,
        node: &str,
        now: Millis,
    ) {
        self.now = self.now.max(now);
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let mine = origin.and_then(|id| cl.published.remove(&id));
        if !self.rooms.contains_key(&event.room) {
            return;
        }
        if mine.is_none() && matches!(event.kind, EventKind::Join | EventKind::Moved) {
            self.moved_away(&event.room, &event.from, now);
            if !self.rooms.contains_key(&event.room) {
                // The user that moved was the last one here: the room is let go (and no longer
                // followed), so nothing of it is kept, its members on other nodes neither: were
                // they, a later following would take the log's first events for seen.
                return;
            }
        }
        if mine.is_none() {
            self.note_echo(&event);
        }
        let joins_here = mine.as_ref().is_some_and(|p| p.join.is_some());
        self.apply_membership(&event, node, joins_here);
        let Some(r) = self.rooms.get_mut(&event.room) else {
            return;
        };
        if event.seq <= r.last_seq || event.seq == Seq(0) {
            debug!(room = %event.room, seq = event.seq.0, "room event seen already");
            if mine.is_some() {
                self.drop_if_empty(&event.room);
            }
            return;
        }
        r.last_seq = Seq(event.seq.0 - 1);
        if let EventKind::Topic { topic } = &event.kind {
            let by = super::room::TopicSet {
                by: event.from.clone(),
                at: event.at,
            };
            r.set_topic(topic.clone(), Some(by));
            let (room, seq, from) = (event.room.clone(), event.seq, event.from.clone());
            self.topic_from_log(&room, seq, topic.clone(), from, event.at, mine.is_some());
        }
        let was_mine = mine.is_some();
        let rejoin = mine.as_ref().is_some_and(|p| p.rejoin);
        let stored = mine.as_ref().is_some_and(|p| p.stored);
        let mine_msg = mine.as_ref().and_then(|p| p.id);
        let (skip, sender, join, client_tags) = mine.map_or((Skip::None, None, None, None), |p| {
            (p.skip, p.sender, p.join, p.client_tags)
        });
        let room = event.room;
        let kicked = match &event.kind {
            EventKind::Kick { target, reason } => {
                Some((target.clone(), event.from.clone(), reason.clone()))
            }
            _ => None,
        };
        // A stored room closed since the account last joined it (its node was down then, so
        // nobody here kept the words): it is not joined again, and told as on one server.
        let mut closed_away = None;
        let join = match join {
            Some((c, uid)) if stored => match self.closed_while_away(&room, uid) {
                Some(words) => {
                    closed_away = Some((c, uid, words));
                    None
                }
                None => join,
            },
            join => join,
        };
        if let Some((_, uid)) = join
            && let Some(u) = self.users.get_mut(&uid)
        {
            u.rooms.insert(room.clone());
            let nick = u.nick.clone();
            if let Some(r) = self.rooms.get_mut(&room) {
                // Big rooms' lists of attached connections are built again.
                self.attach_gen += 1;
                r.members.insert(uid);
            }
            self.session_changed(uid);
            // Its record names its rooms: other nodes list the room.
            self.cluster_presence_changed(&nick);
        }
        if let Some(cl) = self.cluster.as_mut() {
            cl.applying = true;
        }
        // The sender's line (its echo, or nothing and then its end) is answered now.
        let line = sender.zip(mine_msg);
        let before = line.map(|(c, msg)| self.late_begin(c, Late::Answer(Some(msg))));
        let key = Hub::logged_key(&event.from, &event.kind, event.at);
        let (from, kind, at) = (event.from, event.kind, event.at);
        let seq = self.user_wide_logged(key, self.now, |hub| {
            hub.broadcast_said(&room, from, kind, at, skip, sender, client_tags)
        });
        if let (Some((c, _)), Some(before)) = (line, before) {
            self.late_pause(c, before);
        }
        if let Some(cl) = self.cluster.as_mut() {
            cl.applying = false;
        }
        if let Some((c, _)) = line {
            self.late_settle(c);
        }
        if let Some((target, by, reason)) = kicked {
            self.cluster_kicked(&room, &target, &by, reason.as_ref());
        }
        if let Some((conn, uid)) = join
            && !rejoin
            && self
                .users
                .get(&uid)
                .is_some_and(|u| u.rooms.contains(&room))
        {
            // A topic set before the log events read here: the cluster's.
            self.fill_topic(&room);
            let mut on: Vec<ConnId> = self.user_conns(uid).filter(|c| *c != conn).collect();
            if self.conns.contains_key(&conn) {
                on.insert(0, conn);
            }
            for c in on {
                // The join's line has ended: its answer comes now (IRC words it as a JOIN's).
                let before = self.late_begin(c, Late::Join(&room));
                // A clustered join is always a room event (big rooms' summing up is single-node).
                self.entered_on(c, &room, seq, true);
                self.late_pause(c, before);
            }
            self.tell_standing(uid, &room, now);
        }
        if let Some((conn, _)) = join {
            self.finish_resume(conn, now);
            self.run_deferred(conn, now);
        }
        if let Some((conn, uid, words)) = closed_away {
            self.put_out_of_closed(conn, uid, &room, words, now);
        }
        if was_mine {
            // A room nobody here is in any more was kept for this event (`cluster_keeps`).
            self.drop_if_empty(&room);
        }
    }

    /// The words for `uid`, signing in to an account whose stored rooms hold `room`, if the
    /// room's last events say it was closed after the account's last join there: its node
    /// was down during the close, and the account's stored rooms still named it.
    fn closed_while_away(&self, room: &RoomName, uid: UserId) -> Option<String> {
        let nick = self.users.get(&uid)?.nick.folded();
        let r = self.rooms.get(room)?;
        let close = r
            .last_n(rooms::CLOSE_LOOKBACK, r.last_seq)
            .filter_map(|s| s.event())
            .fold(None, |found, ev| match &ev.kind {
                EventKind::Mode { change } if crate::persist::closes_room(&ev.kind) => {
                    let reason = change.as_str().strip_prefix("close: ").map(str::to_owned);
                    Some((ev.from.clone(), reason))
                }
                EventKind::Join | EventKind::Moved if ev.from.folded() == nick => None,
                _ => found,
            })?;
        let (by, reason) = close;
        Some(Self::closed_words(room, Some(&by), reason.as_deref()))
    }

    /// `uid` (on `conn`, signing in) came back into `room`, closed while it was away: it
    /// leaves again (the other nodes hear a part), the room goes from its account's stored
    /// rooms, and it is told `words`.
    fn put_out_of_closed(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: &RoomName,
        words: String,
        now: Millis,
    ) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let nick = u.nick.clone();
        self.account_drops_room(uid, room);
        if let Some(cl) = self.cluster.as_mut() {
            let part = EventKind::Part { reason: None };
            publish(cl, room, &nick, part, now, Skip::All, None, None, None);
        }
        self.reply(conn, Reply::Note(super::dialect::Note::NickOnly(words)));
        self.finish_resume(conn, now);
        self.run_deferred(conn, now);
    }

    /// A server admin's `/wall` (`ops`: `WALLOPS`) said on another node
    /// ([`ClusterOut::Wall`]): this node's users hear it as they would the same admin's here
    /// (the admin's node wrote the audit line).
    pub fn handle_remote_wall(&mut self, from: Nick, text: crate::types::Text, ops: bool) {
        if self.cluster.is_none() {
            return;
        }
        self.wall_here(from, text, ops);
    }

    /// A server admin's `/wall` (`ops`: `WALLOPS`) said here: in a cluster, every other node's
    /// users hear it too ([`ClusterOut::Wall`]).
    pub(in crate::hub) fn cluster_wall(
        &mut self,
        from: &Nick,
        text: &crate::types::Text,
        ops: bool,
    ) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.out.push_back(ClusterOut::Wall {
                from: from.clone(),
                text: text.clone(),
                ops,
            });
        }
    }

    /// Client-only tags from `from` for `to`, a user on another node ([`ClusterOut::Relay`]).
    pub(in crate::hub) fn cluster_relay(
        &mut self,
        from: Nick,
        to: Nick,
        tags: std::sync::Arc<str>,
        signed_in: bool,
    ) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.out.push_back(ClusterOut::Relay {
                from,
                to,
                tags,
                signed_in,
            });
        }
    }

    /// The user of this node called `nick`, if it is a member of `room`.
    pub(in crate::hub) fn member_here(&self, room: &RoomName, nick: &Nick) -> Option<UserId> {
        let uid = self.nicks.get(&self.users, nick.folded_key().as_str())?;
        self.rooms
            .get(room)
            .is_some_and(|r| r.members.contains(&uid))
            .then_some(uid)
    }

    /// Another node says `nick` joins `room` while that user is a member here: its session was
    /// resumed on that node (nicks are claimed, so nobody else can be called so). The user
    /// goes from here without a word to the rooms (it is still in them, through the other
    /// node); a connection it still had here is told where it went and closed.
    fn moved_away(&mut self, room: &RoomName, nick: &Nick, now: Millis) {
        let Some(uid) = self.member_here(room, nick) else {
            return;
        };
        debug!(%nick, "session resumed on another node; it leaves this one");
        self.user_moved_away(uid, now);
    }

    /// This node's user `uid` went to another node (a resume there, or a sign-in of its
    /// account): it goes from here without a word to the rooms (it is still in them, through
    /// the other node); a connection it still had here is told where it went and closed.
    fn user_moved_away(&mut self, uid: UserId, now: Millis) {
        // An account's user: its name (the user's nick).
        let account = self
            .users
            .get(&uid)
            .filter(|u| u.account().is_some())
            .map(|u| u.nick.clone());
        let words = account.as_ref().map(|a| moved_words(a.as_str()));
        if let Some(account) = &account {
            self.note_unrecorded(account);
        }
        let devices = self.devices_of(uid);
        for did in devices {
            if let Some(account) = &account {
                self.note_sent_away(did, account);
            }
            let conn = self.devices.get_mut(&did).and_then(|d| d.conn.take());
            if let (Some(account), Some(conn)) = (&account, conn) {
                self.note_irc_sent_away(conn, account);
            }
            match conn {
                Some(conn) => self.bye(
                    conn,
                    words
                        .as_deref()
                        .unwrap_or("your session continues on another server"),
                    "session resumed on another node",
                ),
                None if self.timers.is_set(Timer::Grace(did)) => self.undetach(did, now),
                None => {}
            }
            self.forget_device(did);
        }
        self.attach_gen += 1;
        let Some(u) = self.users.remove(&uid) else {
            return;
        };
        self.accounts.opers.remove(&uid);
        self.user_gone(u.account());
        self.nicks.remove(u.nick.folded_key().as_str(), u.id);
        // The nick is the other node's now (not released), but this node no longer tells of
        // the user: its record there is the other node's to keep.
        self.cluster_presence_changed(&u.nick);
        self.monitored_off(&u.nick);
        for r in &u.rooms {
            if let Some(room) = self.rooms.get_mut(r) {
                room.members.remove(&uid);
            }
            self.drop_if_empty(r);
        }
    }

    /// Device `did` of the account `account` is sent away because the account's user went to
    /// another node: its tokens are remembered, so that its client coming back is not signed
    /// in again by itself (which would take the account back and send the other node's
    /// devices away in turn, back and forth for ever with two single-server clients).
    fn note_sent_away(&mut self, did: DeviceId, account: &Nick) {
        let now = self.now;
        let Some(d) = self.devices.get(&did) else {
            return;
        };
        let ids: Vec<u64> = d
            .resume
            .iter()
            .chain(d.prev_resume())
            .map(|k| k.id)
            .collect();
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        while cl
            .sent_away
            .front()
            .is_some_and(|(at, _, _)| now >= *at + SENT_AWAY_FOR)
        {
            cl.sent_away.pop_front();
        }
        for id in ids {
            if cl.sent_away.len() >= MAX_SENT_AWAY {
                cl.sent_away.pop_front();
            }
            cl.sent_away.push_back((now, id, account.clone()));
        }
    }

    /// The user of `account` went to another node: unless that node's record of it came
    /// already, it is taken for connected there until the record comes (see
    /// [`Cluster::unrecorded`]).
    fn note_unrecorded(&mut self, account: &Nick) {
        let now = self.now;
        let folded = account.folded();
        if self.recorded_elsewhere(&folded) {
            return;
        }
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let list = &mut cl.unrecorded;
        while list.front().is_some_and(|(at, _)| now >= *at + RECORD_WAIT) {
            list.pop_front();
        }
        list.retain(|(_, a)| *a != folded);
        if list.len() >= MAX_SENT_AWAY {
            list.pop_front();
        }
        list.push_back((now, folded));
    }

    /// Whether the user of `account`, not here, is connected through another node: as the
    /// cluster's record of it says, or without one, as the followed rooms say; taken to be
    /// while the record from the node it went to has not come yet (see
    /// [`Cluster::unrecorded`]).
    fn connected_elsewhere(&self, account: &Nick) -> bool {
        let folded = account.folded();
        let here = self
            .nicks
            .get(&self.users, folded.as_str())
            .and_then(|uid| self.users.get(&uid))
            .is_some_and(|u| u.account() == Some(folded.as_str()));
        if here {
            return false;
        }
        let now = self.now;
        let unrecorded = self.cluster.as_ref().is_some_and(|cl| {
            cl.unrecorded
                .iter()
                .any(|(at, a)| *a == folded && now < *at + RECORD_WAIT)
        });
        unrecorded
            || match self.remote_presence(account) {
                Some(p) => !p.offline,
                None => self.remote_user(account).is_some(),
            }
    }

    /// `conn`, an IRC connection of the account `account`, is sent away because the account's
    /// user went to another node: its address is remembered (see [`Cluster::irc_sent_away`]).
    fn note_irc_sent_away(&mut self, conn: ConnId, account: &Nick) {
        let now = self.now;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if !matches!(c.dialect(), Some(super::dialect::AnyDialect::Irc(_))) {
            return;
        }
        let ip = c.client_ip();
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let list = &mut cl.irc_sent_away;
        while list
            .front()
            .is_some_and(|(at, _, _)| now >= *at + SENT_AWAY_FOR)
        {
            list.pop_front();
        }
        list.retain(|(_, i, a)| !(*i == ip && a.folded() == account.folded()));
        if list.len() >= MAX_SENT_AWAY {
            list.pop_front();
        }
        list.push_back((now, ip, account.clone()));
    }

    /// Cluster mode: why `conn`'s SASL sign-in to `account` (folded) is refused, if it is: an
    /// IRC connection from the address of an IRC device of the account this node sent away
    /// (its client reconnecting, see [`Cluster::irc_sent_away`]), while the account is
    /// connected through another node. Refused each time until that device leaves (the
    /// account's record there says nothing is connected, or goes) or [`SENT_AWAY_FOR`] has
    /// passed: an IRC client that reconnects on a SASL failure would else take the account at
    /// its next try.
    fn irc_came_back(&self, conn: ConnId, account: &str) -> Option<String> {
        let now = self.now;
        let c = self.conns.get(&conn)?;
        if !matches!(c.dialect(), Some(super::dialect::AnyDialect::Irc(_))) {
            return None;
        }
        let ip = c.client_ip();
        let cl = self.cluster.as_ref()?;
        let (at, name) = cl
            .irc_sent_away
            .iter()
            .rev()
            .find(|(at, i, a)| *i == ip && a.folded() == account && now < *at + SENT_AWAY_FOR)
            .map(|(at, _, a)| (*at, a.clone()))?;
        if !self.connected_elsewhere(&name) {
            return None;
        }
        let minutes = (at + SENT_AWAY_FOR)
            .0
            .saturating_sub(now.0)
            .div_ceil(60_000);
        debug!(%conn, account = %name, "the SASL sign-in of an IRC device sent away is held back");
        Some(irc_came_back_words(name.as_str(), minutes))
    }

    /// Cluster mode: why `conn`'s sign-in to `account` (folded) is refused, if it is: the
    /// connection came back with the token of a device of that account this node sent away
    /// because the account went to another node ([`Hub::moved_away`]), this is its first
    /// sign-in, the one its client sends by itself after a welcome that is not a resume, and
    /// the account's user is connected through another node still.
    /// Refused once (`Throttled`: a natter client keeps its credentials and does not ask again
    /// by itself), so the account stays where it went; the next sign-in there takes it back.
    pub(super) fn cluster_came_back(&mut self, conn: ConnId, account: &str) -> Option<String> {
        let now = self.now;
        if let Some(words) = self.irc_came_back(conn, account) {
            return Some(words);
        }
        let cl = self.cluster.as_mut()?;
        let (at, name) = cl.came_back.remove(&conn)?;
        // Its user is connected through another node still (not here again: another device
        // took it back meanwhile, and this is one more): else (its devices there quit, and it
        // is offline or gone; its node is gone) the sign-in sends nobody away.
        let elsewhere = self.connected_elsewhere(&name);
        let held_back = name.folded() == account && now < at + SENT_AWAY_FOR && elsewhere;
        if held_back {
            debug!(%conn, account = %name, "the sign-in of a device sent away is held back");
        }
        held_back.then(|| came_back_words(name.as_str()))
    }

    /// Cluster mode: another node (not this one) wrote its record of its user called `nick`,
    /// signed in to `account` ([`ClusterOut::Presence`]; natter-cluster hands every other
    /// node's record here as well as to [`Hub::handle_presence`]). If this node's user of that
    /// nick is signed in to the same account, a sign-in of it there took the nick over: its
    /// rooms' `Join`s tell this node so (`moved_away`), but a user in no room would
    /// stay here, missing the direct messages and presence that go by the nick's entry. So
    /// the entry is read ([`ClusterOut::Holder`]) and the user leaves if another node holds
    /// it ([`Hub::handle_holder`]). A record older than this node's own take-over of the nick
    /// (the watch may lag behind it) finds the entry this node's, and changes nothing.
    /// The record is also what says, from then on, whether an account whose user went from
    /// here to that node is still connected there: until it comes, the account is taken to be.
    pub fn handle_record_elsewhere(&mut self, nick: &Nick, account: Option<&Nick>, now: Millis) {
        self.now = self.now.max(now);
        let folded = nick.folded();
        self.note_record_elsewhere(&folded);
        if let Some(cl) = self.cluster.as_mut() {
            cl.unrecorded.retain(|(_, a)| *a != folded);
        }
        let Some(account) = account else {
            return;
        };
        let Some(uid) = self.nicks.get(&self.users, folded.as_str()) else {
            return;
        };
        let same = self
            .users
            .get(&uid)
            .and_then(|u| u.account())
            .is_some_and(|a| a == account.folded());
        if !same {
            return;
        }
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        if cl.taking.values().any(|n| *n == folded) {
            // This node's own take-over of the nick is on its way: asked once it is answered
            // (the entry read now may be from before it).
            cl.holder_later.insert(folded);
            return;
        }
        self.ask_holder(uid, nick.clone());
    }

    /// Asks which node holds `nick`, the nick of this node's user `uid`.
    fn ask_holder(&mut self, uid: UserId, nick: Nick) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        if cl.holders.len() >= MAX_SENT_AWAY {
            // Thousands of questions unanswered: the cluster is away; the next record asks.
            return;
        }
        let id = cl.next;
        cl.next += 1;
        cl.holders.insert(id, uid);
        debug!(%nick, "another node has a record of a user here: who holds the nick?");
        cl.out.push_back(ClusterOut::Holder { id, nick });
    }

    /// The answer to [`ClusterOut::Holder`] `id`: whether another node holds the nick. If it
    /// does and this node's user of it is still the one asked for, the account went there
    /// (see [`Hub::handle_record_elsewhere`]): the user leaves as when its rooms' `Join`s say
    /// so, its devices told why (`moved_away`).
    pub fn handle_holder(&mut self, id: u64, elsewhere: bool, now: Millis) {
        self.now = self.now.max(now);
        let Some(uid) = self.cluster.as_mut().and_then(|cl| cl.holders.remove(&id)) else {
            return;
        };
        if !elsewhere {
            return;
        }
        // The same user, still holding its nick here: one made since (by a sign-in here, whose
        // take-over may have come after the entry was read) is another user.
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        if u.account().is_none()
            || self.nicks.get(&self.users, u.nick.folded_key().as_str()) != Some(uid)
        {
            return;
        }
        debug!(nick = %u.nick, "account signed in on another node; it leaves this one");
        self.user_moved_away(uid, now);
    }

    /// This node's take-over `id` (if it is one) was answered, granted or not: a question of
    /// who holds its nick that waited for it is asked now.
    fn took_over(&mut self, id: u64, now: Millis) {
        self.now = self.now.max(now);
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let Some(folded) = cl.taking.remove(&id) else {
            return;
        };
        let more = cl.taking.values().any(|n| *n == folded);
        let ask = !more && cl.holder_later.remove(&folded);
        let Some(uid) = self.nicks.get(&self.users, folded.as_str()) else {
            return;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        // Its record is told now: a sign-in that took the nick over made the user under it
        // without a claim (IRC's SASL before registration), which told nothing by itself.
        self.cluster_presence_changed(&nick);
        if ask {
            self.ask_holder(uid, nick);
        }
    }

    /// An event of `room`'s log from before the recent events a node reads when it starts
    /// following the room: only who it says is in the room is taken from it.
    pub fn handle_remote_past(&mut self, event: &RoomEvent, node: &str) {
        if self.rooms.contains_key(&event.room) {
            self.apply_membership(event, node, false);
        }
    }

    /// Updates the room's members on other nodes from a log event (`node`: its user's node).
    /// `joins_here`: the event is the `Join` of a user of this node.
    fn apply_membership(&mut self, event: &RoomEvent, node: &str, joins_here: bool) {
        if !event.kind.changes_membership() {
            // Lines, topics and modes: nothing for the roster (and nothing to look up).
            return;
        }
        let local = |hub: &Hub, n: &Nick| {
            hub.nicks
                .get(&hub.users, n.folded_key().as_str())
                .is_some_and(|uid| {
                    hub.rooms
                        .get(&event.room)
                        .is_some_and(|r| r.members.contains(&uid))
                })
        };
        let from_local = joins_here || local(self, &event.from);
        // A nick change to a nick a member here has now (this node's user, renamed): whatever
        // the roster holds under that nick is stale (a user of another node whose leaving the
        // log never told: nicks are claimed, so it is gone).
        let to_local = matches!(&event.kind, EventKind::Nick { new } if local(self, new));
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let roster = cl.rosters.entry(event.room.clone()).or_default();
        if event.seq.0 <= roster.seq {
            return;
        }
        roster.seq = event.seq.0;
        let who = event.from.folded();
        // Gone only if the event is about the node the member is on: a user who came back on
        // another node is not taken away by a quit about the node it left.
        let same_node = |entry: Option<&(Nick, String)>| {
            entry.is_some_and(|(_, n)| node.is_empty() || n.is_empty() || n == node)
        };
        match &event.kind {
            EventKind::Join | EventKind::Moved if from_local => {
                roster.members.remove(&who);
            }
            EventKind::Join | EventKind::Moved => {
                roster
                    .members
                    .insert(who, (event.from.clone(), node.to_owned()));
            }
            EventKind::Part { .. } | EventKind::Quit { .. }
                if same_node(roster.members.get(&who)) =>
            {
                roster.members.remove(&who);
            }
            EventKind::Kick { target, .. } => {
                roster.members.remove(&target.folded());
            }
            EventKind::Nick { new } => {
                // Only the entry of the event's node: a nick freed and taken on another node
                // names that node's user in the roster.
                let moved = if same_node(roster.members.get(&who)) {
                    roster.members.remove(&who)
                } else {
                    None
                };
                if to_local {
                    roster.members.remove(&new.folded());
                } else {
                    // A user of another node, in the room (its nick changes in the rooms it is
                    // in), whether or not the roster knew it by its old nick.
                    let n = moved.map_or_else(|| node.to_owned(), |(_, n)| n);
                    roster.members.insert(new.folded(), (new.clone(), n));
                }
            }
            _ => {}
        }
    }

    /// The nicks of `room`'s members on other nodes (none outside a cluster).
    pub(super) fn remote_members(&self, room: &RoomName) -> impl Iterator<Item = &Nick> {
        self.cluster
            .as_ref()
            .and_then(|cl| cl.rosters.get(room))
            .into_iter()
            .flat_map(|r| r.members.values().map(|(n, _)| n))
    }

    /// How many of `room`'s members are on other nodes.
    pub(super) fn remote_count(&self, room: &RoomName) -> usize {
        self.cluster
            .as_ref()
            .and_then(|cl| cl.rosters.get(room))
            .map_or(0, |r| r.members.len())
    }

    /// A user on another node as the logs of the rooms followed here know it: the nick as
    /// spelled and the followed rooms it is in (`None` if it is in none, or outside a
    /// cluster). A user on another node who shares no room with this node is not known here.
    pub(super) fn remote_user(&self, nick: &Nick) -> Option<(Nick, Vec<RoomName>)> {
        let folded = nick.folded();
        let mut found: Option<(Nick, Vec<RoomName>)> = None;
        for (room, roster) in &self.cluster.as_ref()?.rosters {
            if let Some((n, _)) = roster.members.get(&folded) {
                found
                    .get_or_insert_with(|| (n.clone(), Vec::new()))
                    .1
                    .push(room.clone());
            }
        }
        found
    }

    /// How many users on other nodes the followed rooms' logs and the users' records know of
    /// (each once, however many rooms it shares with this node; none that is also a user
    /// here).
    pub(super) fn remote_user_count(&self) -> usize {
        let Some(cl) = self.cluster.as_ref() else {
            return 0;
        };
        cl.rosters
            .values()
            .flat_map(|r| r.members.keys())
            .chain(self.presence_nicks())
            .filter(|folded| !self.nicks.contains_key(&self.users, folded.as_str()))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Nodes of the cluster alive at the last listing (this one among them), at least 1; 1
    /// without a cluster.
    pub(super) fn servers(&self) -> usize {
        self.cluster.as_ref().map_or(1, |cl| cl.nodes_alive.max(1))
    }

    /// The nodes whose lease is alive now (the shell lists them every so often). Members of
    /// followed rooms on any other node are handed out as [`ClusterOut::Reap`], once per
    /// node that is gone.
    pub fn handle_nodes(&mut self, alive: &[String], now: Millis) {
        self.now = self.now.max(now);
        self.forget_gone_echoes();
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        cl.nodes_alive = alive.len();
        let mut gone: BTreeMap<(String, RoomName), Vec<Nick>> = BTreeMap::new();
        for (room, roster) in &cl.rosters {
            for (nick, node) in roster.members.values() {
                if node.is_empty() || alive.contains(node) {
                    continue;
                }
                gone.entry((node.clone(), room.clone()))
                    .or_default()
                    .push(nick.clone());
            }
        }
        // A reap whose members are all gone from the list is done.
        cl.reaped.retain(|key, _| gone.contains_key(key));
        for ((node, room), nicks) in gone {
            let key = (node, room);
            if cl.reaped.get(&key).is_some_and(|&at| now < at + REAP_RETRY) {
                continue;
            }
            let (node, room) = key;
            debug!(%node, %room, members = nicks.len(), "members of a node that is gone");
            cl.reaped.insert((node.clone(), room.clone()), now);
            cl.out.push_back(ClusterOut::Reap { node, room, nicks });
        }
        // After the reaps: a reap deletes a member's nick itself before its quit.
        self.presence_nodes(alive, now);
        self.expire_server_bans(now);
    }

    /// Published event `id` could not be stored (`why`, in words for people): its sender is
    /// told, and a join it was is refused.
    pub fn handle_publish_failed(&mut self, id: u64, why: &str, now: Millis) {
        self.now = self.now.max(now);
        let Some(p) = self
            .cluster
            .as_mut()
            .and_then(|cl| cl.published.remove(&id))
        else {
            return;
        };
        if let Some(mode) = p.mode {
            self.unannounced(&p.room, *mode);
        }
        if let Some(m) = p.member {
            self.note_redo(*m, now);
        }
        if let (Some(conn), Some(msg)) = (p.sender, p.id) {
            let detail = format!("{why}; your message was not delivered");
            self.late_answer(conn, Some(msg), |hub| {
                hub.error(conn, ErrorKind::NotStored, Re::Msg(msg), detail)
            });
            self.late_settle(conn);
        }
        if let Some((conn, _)) = p.join {
            let detail = format!("{why}; you did not join {}", p.room);
            let re = Re::Room(p.room.clone());
            self.late_answer(conn, None, |hub| {
                hub.error(conn, ErrorKind::NotStored, re, detail)
            });
            self.drop_if_empty(&p.room);
            self.finish_resume(conn, now);
            self.run_deferred(conn, now);
        } else {
            // It may have been all that kept the room (`cluster_keeps`).
            self.drop_if_empty(&p.room);
        }
    }

    /// Cluster mode: a new user's hello claims its nick first. False without a cluster or
    /// when the nick was granted (the hello goes on).
    pub(super) fn cluster_hello(&mut self, conn: ConnId, hello: &Hello) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        if cl.granted.as_ref().is_some_and(|(c, _)| *c == conn) {
            return false;
        }
        let want = hello.nick.clone();
        self.claim_for_hello(conn, hello.clone(), want, 0, Vec::new());
        true
    }

    /// Holds `req` of `conn` if its hello waits for a nick claim (at most as many as flood
    /// control queues); false if none waits.
    pub(super) fn cluster_holds(&mut self, conn: ConnId, req: Request) -> bool {
        let max = self.config.flood_queue;
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        let held = cl
            .claims
            .values_mut()
            .find_map(|(_, c)| match c {
                Claiming::Hello { conn: c, held, .. } | Claiming::Resume { conn: c, held, .. }
                    if *c == conn =>
                {
                    Some(held)
                }
                _ => None,
            })
            .or_else(|| {
                cl.finding
                    .values_mut()
                    .find(|f| f.conn == conn)
                    .map(|f| &mut f.held)
            })
            .or_else(|| cl.resuming.get_mut(&conn).map(|r| &mut r.held));
        match held {
            Some(held) if held.len() < max => {
                held.push(req);
                true
            }
            _ => false,
        }
    }

    fn claim_for_hello(
        &mut self,
        conn: ConnId,
        hello: Hello,
        want: Option<Nick>,
        tries: u32,
        held: Vec<Request>,
    ) {
        if tries >= CLAIM_TRIES {
            let detail = "no free nick was found in the cluster; try another".to_owned();
            return self.error(conn, ErrorKind::NickTaken, Re::Conn, detail);
        }
        let nick = match &want {
            Some(w) if tries == 0 && self.nick_free(w) => w.clone(),
            Some(w) if tries == 0 && hello.taken == IfTaken::Refuse => {
                let detail = format!("the nick {w} is taken");
                return self.error(conn, ErrorKind::NickTaken, Re::Nick(w.clone()), detail);
            }
            Some(w) if tries < 4 => self.free_nick(suffixed(w, tries + 1)),
            _ => self.guest_nick(),
        };
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let id = cl.next;
        cl.next += 1;
        let claiming = Claiming::Hello {
            conn,
            hello,
            want,
            tries,
            held,
        };
        cl.claims.insert(id, (nick.clone(), claiming));
        cl.out.push_back(ClusterOut::Claim { id, nick });
    }

    /// Cluster mode: a nick change claims the new nick first. False without a cluster, or
    /// when it was granted (the change goes on).
    pub(super) fn cluster_nick(&mut self, conn: ConnId, uid: UserId, nick: &Nick) -> bool {
        if self.cluster_granted(conn, nick) {
            return false;
        }
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        let id = cl.next;
        cl.next += 1;
        cl.claims
            .insert(id, (nick.clone(), Claiming::Change { conn, uid }));
        cl.out.push_back(ClusterOut::Claim {
            id,
            nick: nick.clone(),
        });
        true
    }

    /// Whether `conn`'s direct message `id` waits for the cluster (its answer, and the away
    /// reply after it, come with [`Hub::handle_direct_done`]).
    pub(super) fn cluster_direct_pending(&self, conn: ConnId, id: MsgId) -> bool {
        self.cluster.as_ref().is_some_and(|cl| {
            cl.directs
                .values()
                .any(|(c, dm, _, _)| *c == conn && dm.id == id)
        })
    }

    /// Whether the cluster granted `nick` to `conn` for the call being made now (its claim
    /// came back granted: [`Hub::with_grant`]).
    pub(super) fn cluster_granted(&self, conn: ConnId, nick: &Nick) -> bool {
        self.cluster.as_ref().is_some_and(|cl| {
            cl.granted
                .as_ref()
                .is_some_and(|(c, n)| *c == conn && *n == nick.folded())
        })
    }

    /// The answer to claim `id`: `granted` if this node holds the nick now.
    pub fn handle_claim(&mut self, id: u64, granted: bool, now: Millis) {
        self.now = self.now.max(now);
        let Some((nick, claiming)) = self.cluster.as_mut().and_then(|cl| cl.claims.remove(&id))
        else {
            return;
        };
        let conn = match &claiming {
            Claiming::Hello { conn, .. }
            | Claiming::Change { conn, .. }
            | Claiming::Resume { conn, .. } => *conn,
        };
        let gone = self.conns.get(&conn).is_none_or(|c| c.closing());
        let stale = match &claiming {
            Claiming::Hello { .. } | Claiming::Resume { .. } => {
                gone || self.user_of(conn).is_some() || !self.nick_free(&nick)
            }
            Claiming::Change { uid, .. } => gone || self.user_of(conn) != Some(*uid),
        };
        if stale {
            if granted {
                self.cluster_release(&nick);
            }
            if matches!(claiming, Claiming::Change { .. }) && !gone {
                if !granted {
                    self.give_back_nick_token(conn);
                }
                self.run_deferred(conn, now);
            }
            return;
        }
        match (claiming, granted) {
            (
                Claiming::Hello {
                    mut hello, held, ..
                },
                true,
            ) => {
                hello.nick = Some(nick.clone());
                self.with_grant(conn, &nick, |hub| hub.fresh_session(conn, hello, now));
                if self.user_of(conn).is_some() {
                    for req in held {
                        self.submit(conn, req, now);
                    }
                }
            }
            (
                Claiming::Hello {
                    hello,
                    want,
                    tries,
                    held,
                    ..
                },
                false,
            ) => {
                if tries == 0 && hello.taken == IfTaken::Refuse {
                    let detail = format!("the nick {nick} is taken");
                    self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
                    // The lines that waited are read now, after the refusal, as a single
                    // node reads them (a new `NICK` registers); what the registration
                    // itself asked next (its welcome's parts) is not wanted.
                    for req in held {
                        if matches!(req, Request::Line(_)) {
                            self.submit(conn, req, now);
                        }
                    }
                    return;
                }
                self.claim_for_hello(conn, hello, want, tries + 1, held);
            }
            (Claiming::Change { uid, .. }, true) => {
                self.late_answer(conn, None, |hub| {
                    hub.with_grant(conn, &nick, |hub| {
                        hub.change_nick(conn, uid, nick.clone(), now)
                    });
                });
                self.run_deferred(conn, now);
            }
            (Claiming::Change { .. }, false) => {
                // Refused by the cluster, as one node refuses a taken nick: no token spent.
                self.give_back_nick_token(conn);
                let detail = format!("the nick {nick} is taken");
                let re = Re::Nick(nick);
                self.late_answer(conn, None, |hub| {
                    hub.error(conn, ErrorKind::NickTaken, re, detail)
                });
                self.run_deferred(conn, now);
            }
            (
                Claiming::Resume {
                    hello,
                    record,
                    held,
                    ..
                },
                true,
            ) => {
                self.cluster_presence_changed(&nick);
                let visible = self
                    .cluster
                    .as_mut()
                    .is_some_and(|cl| cl.reclaimed.remove(&id));
                self.take_over_session(conn, hello, record, held, visible, now);
            }
            (Claiming::Resume { hello, held, .. }, false) => {
                self.session_not_found(Finding { conn, hello, held }, now);
            }
        }
    }

    /// Claim `id` could not be decided (`why`, in words for people: the cluster is
    /// unavailable): a hello is refused and its connection closed, a nick change is refused.
    pub fn handle_claim_failed(&mut self, id: u64, why: &str, now: Millis) {
        self.now = self.now.max(now);
        // A take-over that could not be decided is answered so too.
        self.took_over(id, now);
        let Some((nick, claiming)) = self.cluster.as_mut().and_then(|cl| cl.claims.remove(&id))
        else {
            return;
        };
        match claiming {
            Claiming::Hello { conn, .. } => {
                if self.conns.contains_key(&conn) && self.user_of(conn).is_none() {
                    let detail = format!("{why}; try again in a moment");
                    self.fatal(conn, ErrorKind::Unavailable, detail, now);
                }
            }
            Claiming::Change { conn, .. } => {
                // Nothing the user did: its token back.
                self.give_back_nick_token(conn);
                let detail = format!("{why}; your nick is unchanged");
                let re = Re::Nick(nick);
                self.late_answer(conn, None, |hub| {
                    hub.error(conn, ErrorKind::Unavailable, re, detail)
                });
                self.run_deferred(conn, now);
            }
            Claiming::Resume {
                conn, hello, held, ..
            } => {
                if self.conns.contains_key(&conn) && self.user_of(conn).is_none() {
                    self.session_not_found(Finding { conn, hello, held }, now);
                }
            }
        }
    }

    /// Cluster mode: `to` is nobody here, so the message (or a direct notice: `notice`) goes to
    /// the node that holds the nick. False without a cluster.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cluster_direct(
        &mut self,
        conn: ConnId,
        uid: UserId,
        to: &Nick,
        id: MsgId,
        text: &crate::types::Text,
        notice: bool,
        tags: Option<std::sync::Arc<str>>,
        now: Millis,
    ) -> bool {
        let Some((from, signed_in)) = self
            .users
            .get(&uid)
            .map(|u| (u.nick.clone(), u.account().is_some()))
        else {
            return false;
        };
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        let dm = DirectMsg {
            from,
            to: to.clone(),
            id,
            at: now,
            text: text.clone(),
        };
        let no = cl.next;
        cl.next += 1;
        cl.directs
            .insert(no, (conn, dm.clone(), notice, tags.clone()));
        cl.out.push_back(ClusterOut::Direct {
            id: no,
            dm,
            notice,
            tags,
            signed_in,
        });
        true
    }

    /// The answer to direct message `id`: delivered (the sender gets it back as its
    /// acknowledgement, its other devices a copy), or not (`Err`: why, in words for people).
    pub fn handle_direct_done(&mut self, id: u64, result: Result<(), String>, now: Millis) {
        self.now = self.now.max(now);
        let Some((conn, dm, notice, tags)) =
            self.cluster.as_mut().and_then(|cl| cl.directs.remove(&id))
        else {
            return;
        };
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        // The sender's echo and copies carry its tags and account as on one node.
        let signed_in = self.users.get(&uid).is_some_and(|u| u.account().is_some());
        let wrap = move |dm: DirectMsg| super::dialect::Reply::Direct {
            msg: if notice {
                ServerMsg::DirectNotice(dm)
            } else {
                ServerMsg::Direct(dm)
            },
            tags: tags.clone(),
            signed_in,
        };
        let msg = dm.id;
        // A message (not a notice) is answered after its echo or refusal, as on one node, as
        // one to someone away (IRC's `301`): the recipient's away as known here, else, kept for
        // an account with nothing connected, that it waits for them.
        let kept = self
            .cluster
            .as_mut()
            .is_some_and(|cl| cl.kept_words.remove(&id));
        let away = (!notice)
            .then(|| self.present(&dm.to).filter(|p| p.away.is_some()))
            .flatten();
        let to = dm.to.clone();
        let tell_away = move |hub: &mut Hub| match away {
            Some(p) => hub.reply(conn, Reply::Info(super::query::Info::IsAway(p))),
            None if kept => hub.tell_kept(conn, to),
            None => {}
        };
        match result {
            Ok(()) => {
                self.accept_id(conn, dm.id);
                let copies: Vec<ConnId> = self.user_conns(uid).filter(|c| *c != conn).collect();
                for c in copies {
                    self.reply(c, wrap(dm.clone()));
                }
                self.late_answer(conn, Some(msg), |hub| {
                    hub.reply(conn, wrap(dm));
                    tell_away(hub);
                });
            }
            Err(why) => self.late_answer(conn, Some(msg), |hub| {
                hub.error(conn, ErrorKind::NoSuchNick, Re::Msg(msg), why);
                tell_away(hub);
            }),
        }
        self.late_settle(conn);
    }

    /// The answer to direct message `id`: nothing of its recipient is connected on any node
    /// (no node holds the nick, or the node holding it has no connection of it: `resuming`
    /// if a device of it may still resume there). An account's is kept for it, as on one
    /// node ([`ClusterOut::Hold`], answered by [`Hub::handle_direct_done`]); anyone else's
    /// is refused, `NoSuchNick`.
    pub fn handle_direct_unheld(&mut self, id: u64, resuming: bool, now: Millis) {
        self.now = self.now.max(now);
        let Some((_, dm, notice, _)) = self.cluster.as_ref().and_then(|cl| cl.directs.get(&id))
        else {
            return;
        };
        let (mut dm, notice) = (dm.clone(), *notice);
        let Some(account) = self.account_name(&dm.to.folded()) else {
            let why = format!("nobody is called {}", dm.to);
            return self.handle_direct_done(id, Err(why), now);
        };
        if self.config.accounts.kept_bytes == 0 {
            let why = format!("{account} is not connected; direct messages are not kept");
            return self.handle_direct_done(id, Err(why), now);
        }
        dm.to = account.clone();
        if let Some(cl) = self.cluster.as_mut() {
            if let Some(d) = cl.directs.get_mut(&id) {
                d.1.to = account.clone();
            }
            if !notice && !resuming {
                cl.kept_words.insert(id);
            }
            let held = crate::persist::HeldDirect { msg: dm, notice };
            let kept_bytes = self.config.accounts.kept_bytes;
            cl.out.push_back(ClusterOut::Hold {
                id,
                account,
                held,
                kept_bytes,
            });
        }
    }

    /// Cluster mode: a direct message (or notice) from `conn` to `dm.to`, an account whose
    /// user here has nothing connected, is kept for the account where every node reads it
    /// ([`ClusterOut::Hold`]), as a single node keeps it in its store; the sender hears once it
    /// is kept ([`Hub::handle_direct_done`]). `resuming`: a device of it may still resume.
    pub(super) fn cluster_hold(
        &mut self,
        conn: ConnId,
        dm: DirectMsg,
        notice: bool,
        tags: Option<std::sync::Arc<str>>,
        resuming: bool,
    ) {
        let kept_bytes = self.config.accounts.kept_bytes;
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let id = cl.next;
        cl.next += 1;
        if !notice && !resuming {
            cl.kept_words.insert(id);
        }
        cl.directs.insert(id, (conn, dm.clone(), notice, tags));
        let held = crate::persist::HeldDirect {
            msg: dm.clone(),
            notice,
        };
        cl.out.push_back(ClusterOut::Hold {
            id,
            account: dm.to,
            held,
            kept_bytes,
        });
    }

    /// The direct messages kept for `account` while it had nothing connected, numbered as the
    /// cluster keeps them, oldest first (asked by [`ClusterOut::TakeHeld`] when it signed in
    /// or a device of it resumed here): each goes to every connection it has here, after what
    /// its sign-in or resume is still waiting for (its rooms' joins), as they were sent, and
    /// the cluster is told to forget them ([`ClusterOut::HeldDelivered`]). With nothing of it
    /// connected here any more they stay kept for its next sign-in. Delivered at least once,
    /// as on one node: a node that dies before the cluster forgets them has them delivered
    /// again.
    pub fn handle_held(
        &mut self,
        account: Nick,
        held: Vec<(u64, crate::persist::HeldDirect)>,
        now: Millis,
    ) {
        self.now = self.now.max(now);
        let Some(upto) = held.iter().map(|(n, _)| *n).max() else {
            return;
        };
        let Some(uid) = self
            .nicks
            .get(&self.users, account.folded_key().as_str())
            .filter(|&u| self.account_of(u).as_deref() == Some(account.folded().as_str()))
        else {
            return;
        };
        let conns: Vec<ConnId> = self.user_conns(uid).collect();
        if conns.is_empty() {
            return;
        }
        for (_, h) in &held {
            let signed_in = self.accounts.registered(&h.msg.from);
            let msg = if h.notice {
                ServerMsg::DirectNotice(h.msg.clone())
            } else {
                ServerMsg::Direct(h.msg.clone())
            };
            for &c in &conns {
                let reply = Reply::Direct {
                    msg: msg.clone(),
                    tags: None,
                    signed_in,
                };
                self.run(c, Request::Answer(reply), now);
            }
        }
        debug!(%account, messages = held.len(), "kept direct messages delivered");
        if let Some(cl) = self.cluster.as_mut() {
            cl.out
                .push_back(ClusterOut::HeldDelivered { account, upto });
        }
    }

    /// A direct message from a user on another node (`token`: the shell's, to answer with):
    /// delivered to the recipient's connections here that are reading; the answer goes out as
    /// [`ClusterOut::Delivered`].
    /// `notice`: a direct notice ([`ServerMsg::DirectNotice`]).
    /// `tags`: the client-only tags it was sent with; `signed_in`: its sender is signed in
    /// (IRC clients with message-tags and account-tag get them, as from a user of this node).
    pub fn handle_remote_direct(
        &mut self,
        token: u64,
        dm: DirectMsg,
        notice: bool,
        tags: Option<std::sync::Arc<str>>,
        signed_in: bool,
        now: Millis,
    ) {
        self.now = self.now.max(now);
        if self.cluster.is_none() {
            return;
        }
        let lim = self.config.queue_limits();
        let size = 256 + dm.text.as_str().len();
        let target = self.nicks.get(&self.users, dm.to.folded_key().as_str());
        let readers: Vec<ConnId> = target
            .map(|uid| self.user_conns(uid).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                self.conns
                    .get(c)
                    .is_some_and(|c| c.room_fits(&self.out, size, lim))
            })
            .collect();
        let result = match (target, readers.is_empty()) {
            (None, _) => Err(format!("nobody is called {}", dm.to)),
            // Nothing connected here: refused in the words a sender on this node gets (a
            // cluster keeps no direct message), not as a reader too slow to take it.
            // An account's is kept by the sender's node, as a single node keeps it.
            (Some(uid), true)
                if self.user_conns(uid).next().is_none() && self.account_of(uid).is_some() =>
            {
                let resuming = !self.devices_of(uid).is_empty();
                if let Some(cl) = self.cluster.as_mut() {
                    cl.out.push_back(ClusterOut::Unheld { token, resuming });
                }
                return;
            }
            (Some(uid), true) if self.user_conns(uid).next().is_none() => {
                Err(if self.devices_of(uid).is_empty() {
                    format!("{} is not connected; direct messages are not kept", dm.to)
                } else {
                    format!("{} is reconnecting right now; try again in a moment", dm.to)
                })
            }
            (Some(_), true) => Err(format!(
                "{} is not reading right now; message not delivered",
                dm.to
            )),
            (Some(_), false) => Ok(()),
        };
        for c in readers {
            let msg = if notice {
                ServerMsg::DirectNotice(dm.clone())
            } else {
                ServerMsg::Direct(dm.clone())
            };
            let reply = super::dialect::Reply::Direct {
                msg,
                tags: tags.clone(),
                signed_in,
            };
            self.reply(c, reply);
        }
        if let Some(cl) = self.cluster.as_mut() {
            cl.out.push_back(ClusterOut::Delivered { token, result });
        }
    }

    fn with_grant(&mut self, conn: ConnId, nick: &Nick, f: impl FnOnce(&mut Hub)) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.granted = Some((conn, nick.folded()));
        }
        f(self);
        if let Some(cl) = self.cluster.as_mut() {
            cl.granted = None;
        }
        self.cluster_presence_changed(nick);
        // The hello or change did not take the nick after all (refused on the way).
        let used = self
            .nicks
            .contains_key(&self.users, nick.folded_key().as_str());
        if !used {
            self.cluster_release(nick);
        }
    }

    /// `nick` is no longer used on this node.
    pub(super) fn cluster_release(&mut self, nick: &Nick) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.out.push_back(ClusterOut::Release(nick.clone()));
        }
        self.cluster_presence_changed(nick);
    }
}

/// Taking sessions over from another node: silently, and without a line twice.
impl Hub {
    /// The answer to [`ClusterOut::TakeOver`] `id`: `granted` if this node holds the nick
    /// now; `moved` if it took the nick from the node that had the session (its members are
    /// still in their rooms for everyone: the session moves with a silent
    /// [`EventKind::Moved`]), not if it found the nick free (the session's members were reaped
    /// and everyone saw them quit: it joins its rooms again, visibly).
    /// [`Hub::handle_claim`] answers as if `moved`.
    pub fn handle_take_over(&mut self, id: u64, granted: bool, moved: bool, now: Millis) {
        self.took_over(id, now);
        if let Some(cl) = self.cluster.as_mut()
            && granted
            && !moved
        {
            cl.reclaimed.insert(id);
        }
        self.handle_claim(id, granted, now);
        if let Some(cl) = self.cluster.as_mut() {
            cl.reclaimed.remove(&id);
        }
    }

    /// A line from another node's log, by a user whose session this node took over: its
    /// client may send it again (see [`Cluster::echoes`]).
    fn note_echo(&mut self, event: &RoomEvent) {
        let none = self.cluster.as_ref().is_none_or(|cl| cl.echoes.is_empty());
        if none
            || !matches!(
                event.kind,
                EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
            )
        {
            // The usual case, cheaply: no session taken over here waits for its resends.
            return;
        }
        let Some(uid) = self
            .nicks
            .get(&self.users, event.from.folded_key().as_str())
        else {
            return;
        };
        let Some((_, echoes)) = self.cluster.as_mut().and_then(|cl| cl.echoes.get_mut(&uid)) else {
            return;
        };
        if echoes.len() >= MAX_ECHOES {
            echoes.pop_front();
        }
        echoes.push_back((event.room.clone(), event.kind.clone()));
    }

    /// Before a session taken over resumes: its lines in what the replay holds (events after
    /// the seqs its client saw, read from the log while this node followed the room).
    fn note_replayed_echoes(&mut self, did: DeviceId, hello: &Hello) {
        let Some(uid) = self.devices.get(&did).map(|d| d.user) else {
            return;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.folded()) else {
            return;
        };
        let seen = hello.resume.as_ref().map_or(&[][..], |r| &r.rooms[..]);
        let mut found = Vec::new();
        for (room, after) in seen {
            let Some(r) = self.rooms.get(room) else {
                continue;
            };
            found.extend(r.between(*after, r.last_seq).filter_map(|s| s.event()));
        }
        self.add_echoes(uid, &nick, found);
    }

    /// A resume of device `did` replays `pages`, read from the log (what the ring lacked):
    /// if its session was taken over, its lines there are noted as those above.
    pub(super) fn cluster_note_page_echoes(
        &mut self,
        did: DeviceId,
        pages: &[(RoomName, Vec<RoomEvent>)],
    ) {
        if pages.is_empty() || self.cluster.as_ref().is_none_or(|cl| cl.echoes.is_empty()) {
            return;
        }
        let Some(uid) = self.devices.get(&did).map(|d| d.user) else {
            return;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.folded()) else {
            return;
        };
        let found = pages.iter().flat_map(|(_, page)| page.iter().cloned());
        self.add_echoes(uid, &nick, found.collect());
    }

    /// Notes the lines by `nick` (folded) among `events` as `uid`'s echoes, if it has any.
    fn add_echoes(&mut self, uid: UserId, nick: &str, events: Vec<RoomEvent>) {
        let Some((_, echoes)) = self.cluster.as_mut().and_then(|cl| cl.echoes.get_mut(&uid)) else {
            return;
        };
        for ev in events {
            let line = matches!(
                ev.kind,
                EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
            );
            if !line || ev.from.folded() != nick {
                continue;
            }
            let e = (ev.room, ev.kind);
            if !echoes.contains(&e) {
                if echoes.len() >= MAX_ECHOES {
                    echoes.pop_front();
                }
                echoes.push_back(e);
            }
        }
    }

    /// Whether `kind` (a line `conn` sends in `room`) is one the log holds already from the
    /// node that had its session: then it was stored before that node died, and its client,
    /// which had no acknowledgement, sent it again. It is forgotten (acknowledged once).
    fn resent_echo(&mut self, conn: ConnId, room: &RoomName, kind: &EventKind) -> bool {
        if self.cluster.as_ref().is_none_or(|cl| cl.echoes.is_empty()) {
            return false;
        }
        let Some(uid) = self.user_of(conn) else {
            return false;
        };
        let Some((_, echoes)) = self.cluster.as_mut().and_then(|cl| cl.echoes.get_mut(&uid)) else {
            return false;
        };
        let Some(at) = echoes.iter().position(|(r, k)| r == room && k == kind) else {
            return false;
        };
        echoes.remove(at);
        true
    }

    /// Forgets the echoes of users no longer here, and those kept for [`ECHO_WINDOW`].
    fn forget_gone_echoes(&mut self) {
        let (users, now) = (&self.users, self.now);
        if let Some(cl) = self.cluster.as_mut() {
            cl.echoes
                .retain(|uid, (since, _)| users.contains_key(uid) && now < *since + ECHO_WINDOW);
        }
    }
}

impl Hub {
    /// Cluster mode: queues what `make` builds with a fresh number of the hub's (accounts ask
    /// through this, see `accounts.rs`); `None` without a cluster.
    pub(super) fn cluster_ask(&mut self, make: impl FnOnce(u64) -> ClusterOut) -> Option<u64> {
        let cl = self.cluster.as_mut()?;
        let id = cl.next;
        cl.next += 1;
        let out = make(id);
        if let ClusterOut::TakeOver { nick, .. } = &out {
            cl.taking.insert(id, nick.folded());
        }
        cl.out.push_back(out);
        Some(id)
    }
}

/// Whether a join of `conn` is on its way.
/// Whether `conn`'s requests wait: for its join's event, or for its nick change's claim (a
/// single node does both at once, so what the client sent next must see them done).
fn waiting(cl: &Cluster, conn: ConnId) -> bool {
    joining(cl, conn)
        || cl
            .claims
            .values()
            .any(|(_, c)| matches!(c, Claiming::Change { conn: c, .. } if *c == conn))
}

fn joining(cl: &Cluster, conn: ConnId) -> bool {
    cl.published.joining(conn)
}

/// Queues `kind` in `room` for the log, following the room first if needed; returns the
/// hub's number for it.
#[allow(clippy::too_many_arguments)]
fn publish(
    cl: &mut Cluster,
    room: &RoomName,
    from: &Nick,
    kind: EventKind,
    now: Millis,
    skip: Skip,
    sender: Option<ConnId>,
    id: Option<MsgId>,
    join: Option<(ConnId, UserId)>,
) -> u64 {
    if cl.following.insert(room.clone()) {
        cl.out.push_back(ClusterOut::Follow(room.clone()));
    }
    let no = cl.next;
    cl.next += 1;
    cl.published.insert(
        no,
        Published {
            room: room.clone(),
            skip,
            sender,
            id,
            join,
            rejoin: false,
            stored: false,
            mode: matches!(kind, EventKind::Mode { .. })
                .then(|| Box::new((from.clone(), kind.clone()))),
            member: None,
            client_tags: None,
        },
    );
    let event = RoomEvent {
        room: room.clone(),
        seq: Seq(0),
        at: now,
        from: from.clone(),
        kind,
    };
    cl.out.push_back(ClusterOut::Publish { id: no, event });
    no
}

/// `want_n`, cut to fit.
fn suffixed(want: &Nick, n: u32) -> Nick {
    let suffix = format!("_{n}");
    let base: String = want
        .as_str()
        .chars()
        .take(MAX_NICK_LEN - suffix.len())
        .collect();
    Nick::new(&format!("{base}{suffix}")).unwrap_or_else(|_| want.clone())
}

#[cfg(test)]
mod tests {
    //! Two or three hubs sharing rooms through a fake log (a `Vec` per room) and a fake nick
    //! table, moved by hand: no sockets.
    use super::*;
    use crate::hub::{Config, Hub};
    use crate::test_support::{nick, room, text};
    use crate::wire::{
        ClientMsg, FrameDecoder, MAGIC, PROTOCOL_VERSION, ServerMsg, decode_payload, encode_frame,
    };
    use std::collections::HashMap;

    const LOCAL: core::net::IpAddr = core::net::IpAddr::V4(core::net::Ipv4Addr::LOCALHOST);

    /// Accounts in a cluster (`cluster/tests/accounts.rs`), driving this module's `Net`.
    mod accounts;
    /// Server-wide bans in a cluster (`cluster/tests/bans.rs`).
    mod bans;
    /// History and search beyond the ring in a cluster (`cluster/tests/history.rs`).
    mod history;
    /// IRC clients whose joins complete through the log (`cluster/tests/irc.rs`).
    mod irc;
    /// Users on other nodes: WHOIS, ISON, away (`cluster/tests/presence.rs`).
    mod presence;
    /// Random work and stray log events on two nodes (`cluster/tests/prop.rs`).
    mod prop;
    /// Room moderation in a cluster (`cluster/tests/rooms.rs`).
    mod rooms;

    struct Node {
        hub: Hub,
        following: BTreeSet<RoomName>,
        inbox: HashMap<ConnId, FrameDecoder>,
        /// Every byte sent to each connection (for text dialects).
        raw: HashMap<ConnId, Vec<u8>>,
    }

    /// The nodes, the shared log and nick table, and what is asked but not yet done.
    struct Net {
        nodes: Vec<Node>,
        log: BTreeMap<RoomName, Vec<RoomEvent>>,
        /// The node each logged event's user is on, alongside `log`.
        nodes_of: BTreeMap<RoomName, Vec<String>>,
        /// Events a node reads as recent when it follows a room (earlier ones: membership only).
        recent: usize,
        owners: HashMap<String, usize>,
        /// Publishes that fail instead of being stored.
        refuse: bool,
        /// Claims held back, to answer in a chosen order.
        claims: Vec<(usize, u64, Nick)>,
        hold_claims: bool,
        /// Claims the cluster cannot decide (`handle_claim_failed`).
        refuse_claims: bool,
        /// Direct messages out to another node: token → (asking node, its id).
        directs: HashMap<u64, (usize, u64)>,
        /// Nodes gone and rooms whose members on them were reaped.
        reaped: BTreeSet<(String, RoomName)>,
        /// Resume sessions by token id.
        sessions: HashMap<u64, SessionRecord>,
        /// Take-overs find the nick free (its members were reaped meanwhile).
        takeover_free: bool,
        now: Millis,
        /// Accounts as the cluster keeps them (see `cluster/tests/accounts.rs`).
        kv: accounts::Kv,
        /// Rooms' settings as the cluster keeps them (see `cluster/tests/rooms.rs`).
        rooms_kv: rooms::RoomsKv,
        /// Server bans as the cluster keeps them (see `cluster/tests/bans.rs`).
        bans_kv: bans::BansKv,
        /// Every node's users as the cluster keeps them (see `cluster/tests/presence.rs`).
        users_kv: presence::UsersKv,
        /// Rooms' topics as the cluster keeps them (newest by seq).
        topics_kv: BTreeMap<RoomName, crate::hub::cluster::RoomTopic>,
        /// Direct messages kept for accounts (folded): the next number, and those kept.
        held: BTreeMap<String, (u64, Vec<(u64, crate::persist::HeldDirect)>)>,
    }

    impl Net {
        fn new(n: usize) -> Net {
            Net::with_history(n, Config::default().history_len)
        }

        /// Nodes whose rings hold `history_len` events of a room.
        fn with_history(n: usize, history_len: usize) -> Net {
            let nodes = (0..n)
                .map(|i| {
                    let mut hub = Hub::new(Config {
                        secret_seed: [i as u8; 32],
                        history_len,
                        ..Config::default()
                    });
                    hub.enable_cluster();
                    Node {
                        hub,
                        following: BTreeSet::new(),
                        inbox: HashMap::new(),
                        raw: HashMap::new(),
                    }
                })
                .collect();
            Net {
                nodes,
                log: BTreeMap::new(),
                nodes_of: BTreeMap::new(),
                recent: usize::MAX,
                owners: HashMap::new(),
                refuse: false,
                claims: Vec::new(),
                hold_claims: false,
                refuse_claims: false,
                directs: HashMap::new(),
                reaped: BTreeSet::new(),
                sessions: HashMap::new(),
                takeover_free: false,
                now: Millis(1_000),
                kv: accounts::Kv::default(),
                rooms_kv: rooms::RoomsKv::default(),
                bans_kv: bans::BansKv::default(),
                users_kv: presence::UsersKv::default(),
                topics_kv: BTreeMap::new(),
                held: BTreeMap::new(),
            }
        }

        fn pump(&mut self) {
            for _ in 0..1_000 {
                let mut busy = false;
                for i in 0..self.nodes.len() {
                    while let Some(t) = self.nodes[i].hub.poll_transmit() {
                        busy = true;
                        let n = t.len();
                        let bytes = t.concat();
                        self.nodes[i].raw.entry(t.conn).or_default().extend(&bytes);
                        let d = self.nodes[i].inbox.entry(t.conn).or_default();
                        d.extend(&bytes);
                        self.nodes[i].hub.handle_written(t.conn, n, self.now);
                    }
                    while self.nodes[i].hub.poll_event().is_some() {}
                    while let Some((id, q)) = self.nodes[i].hub.poll_query() {
                        busy = true;
                        self.query(i, id, q);
                    }
                    while let Some(o) = self.nodes[i].hub.poll_cluster() {
                        busy = true;
                        self.cluster(i, o);
                    }
                }
                if !busy {
                    return;
                }
            }
            panic!("the net did not settle");
        }

        fn cluster(&mut self, i: usize, o: ClusterOut) {
            let now = self.now;
            match o {
                ClusterOut::Follow(r) => {
                    self.nodes[i].following.insert(r.clone());
                    let log = self.log.get(&r).cloned().unwrap_or_default();
                    let of = self.nodes_of.get(&r).cloned().unwrap_or_default();
                    let start = log.len().saturating_sub(self.recent);
                    for (k, (ev, node)) in log.into_iter().zip(of).enumerate() {
                        if k < start {
                            self.nodes[i].hub.handle_remote_past(&ev, &node);
                        } else {
                            self.nodes[i].hub.handle_remote_from(ev, None, &node, now);
                        }
                    }
                }
                ClusterOut::Unfollow(r) => {
                    self.nodes[i].following.remove(&r);
                }
                ClusterOut::Publish { id, event } => {
                    if self.refuse {
                        self.nodes[i].hub.handle_publish_failed(
                            id,
                            "the cluster is unavailable",
                            now,
                        );
                        return;
                    }
                    self.append(event, &format!("n{i}"), Some((i, id)));
                }
                ClusterOut::Session(record) => {
                    self.sessions.insert(record.token_id, record);
                }
                ClusterOut::EndSession(token_id) => {
                    self.sessions.remove(&token_id);
                }
                ClusterOut::FindSession { id, token_id } => {
                    let record = self.sessions.get(&token_id).cloned();
                    self.nodes[i].hub.handle_session(id, record, now);
                }
                ClusterOut::TakeOver { id, nick } => {
                    self.owners.insert(nick.folded(), i);
                    let moved = !self.takeover_free;
                    self.nodes[i].hub.handle_take_over(id, true, moved, now);
                }
                ClusterOut::Reap { node, room, nicks } => {
                    // The first node to ask does it; the others find it done.
                    if !self.reaped.insert((node.clone(), room.clone())) {
                        return;
                    }
                    for n in nicks {
                        let event = RoomEvent {
                            room: room.clone(),
                            seq: Seq(0),
                            at: now,
                            from: n,
                            kind: EventKind::Quit { reason: None },
                        };
                        self.append(event, &node, None);
                    }
                }
                ClusterOut::Claim { id, nick } => {
                    if self.refuse_claims {
                        let why = "the cluster is unavailable";
                        self.nodes[i].hub.handle_claim_failed(id, why, now);
                    } else if self.hold_claims {
                        self.claims.push((i, id, nick));
                    } else {
                        self.answer(i, id, &nick);
                    }
                }
                ClusterOut::Release(nick) => {
                    if self.owners.get(&nick.folded()) == Some(&i) {
                        self.owners.remove(&nick.folded());
                    }
                }
                ClusterOut::Direct {
                    id,
                    dm,
                    notice,
                    tags,
                    signed_in,
                } => match self.owners.get(&dm.to.folded()) {
                    Some(&j) => {
                        let token = self.directs.len() as u64 + 1;
                        self.directs.insert(token, (i, id));
                        self.nodes[j]
                            .hub
                            .handle_remote_direct(token, dm, notice, tags, signed_in, now);
                    }
                    None => self.nodes[i].hub.handle_direct_unheld(id, false, now),
                },
                ClusterOut::Delivered { token, result } => {
                    let (j, id) = self.directs[&token];
                    self.nodes[j].hub.handle_direct_done(id, result, now);
                }
                ClusterOut::Unheld { token, resuming } => {
                    let (j, id) = self.directs[&token];
                    self.nodes[j].hub.handle_direct_unheld(id, resuming, now);
                }
                ClusterOut::Hold {
                    id,
                    account,
                    held,
                    kept_bytes,
                } => {
                    // The shell's bound for all accounts together, counted here as one node
                    // counts it (natter-cluster counts the bucket's bytes).
                    let cost = |h: &crate::persist::HeldDirect| {
                        h.msg.text.as_str().len() + crate::limits::HELD_DIRECT_OVERHEAD
                    };
                    let all: usize = (self.held.values())
                        .flat_map(|(_, k)| k.iter().map(|(_, h)| cost(h)))
                        .sum();
                    let full = all + cost(&held) > kept_bytes;
                    let (next, kept) = self.held.entry(account.folded()).or_default();
                    let result = if kept.len() >= crate::limits::MAX_HELD_DIRECTS {
                        Err(format!("{account} is not connected and 100 messages wait"))
                    } else if full {
                        Err(format!(
                            "{account} is not connected; the cluster keeps no more"
                        ))
                    } else {
                        *next += 1;
                        kept.push((*next, held));
                        Ok(())
                    };
                    self.nodes[i].hub.handle_direct_done(id, result, now);
                }
                ClusterOut::TakeHeld { account } => {
                    let kept = self
                        .held
                        .get(&account.folded())
                        .map(|(_, k)| k.clone())
                        .unwrap_or_default();
                    self.nodes[i].hub.handle_held(account, kept, now);
                }
                ClusterOut::HeldDelivered { account, upto } => {
                    if let Some((_, kept)) = self.held.get_mut(&account.folded()) {
                        kept.retain(|(n, _)| *n > upto);
                    }
                }
                o @ (ClusterOut::CreateAccount { .. } | ClusterOut::AccountWrite { .. }) => {
                    self.account_out(i, o);
                }
                ClusterOut::RoomEdit { room, edit } => self.room_edit(i, room, edit),
                ClusterOut::ServerBan { mask, ban } => self.server_ban(i, mask, ban),
                ClusterOut::Presence { nick, presence } => self.presence(i, nick, presence),
                ClusterOut::Forget { node, nicks } => self.forget(&node, &nicks),
                ClusterOut::Holder { id, nick } => {
                    let elsewhere = self.owners.get(&nick.folded()).is_some_and(|&j| j != i);
                    self.nodes[i].hub.handle_holder(id, elsewhere, now);
                }
                ClusterOut::Topic { room, topic } => {
                    let kept = self.topics_kv.get(&room);
                    if kept.is_none_or(|k| k.seq < topic.seq) {
                        self.topics_kv.insert(room.clone(), topic.clone());
                        for n in &mut self.nodes {
                            n.hub.handle_topic(room.clone(), Some(topic.clone()));
                        }
                    }
                }
                ClusterOut::TopicGone { room, upto } => {
                    if self.topics_kv.get(&room).is_some_and(|k| k.seq <= upto) {
                        self.topics_kv.remove(&room);
                        for n in &mut self.nodes {
                            n.hub.handle_topic(room.clone(), None);
                        }
                    }
                }
                ClusterOut::Wall { from, text, ops } => {
                    for (j, n) in self.nodes.iter_mut().enumerate() {
                        if j != i {
                            n.hub.handle_remote_wall(from.clone(), text.clone(), ops);
                        }
                    }
                }
                ClusterOut::ExpireServerBan { mask, revision } => {
                    self.expire_server_ban(&mask, revision);
                }
                ClusterOut::Relay {
                    from,
                    to,
                    tags,
                    signed_in,
                } => {
                    if let Some(&j) = self.owners.get(&to.folded()) {
                        self.nodes[j]
                            .hub
                            .handle_remote_relay(from, to, tags, signed_in, now);
                    }
                }
            }
        }

        /// Answers a history read from the log, as natter-cluster does.
        fn query(&mut self, i: usize, id: crate::persist::QueryId, q: crate::persist::Query) {
            use crate::persist::{Answer, HistoryPage, Query};
            let answer = match q {
                Query::History(q) => {
                    let log = self.log.get(&q.room).cloned().unwrap_or_default();
                    let below: Vec<RoomEvent> =
                        log.into_iter().filter(|e| e.seq < q.before).collect();
                    let from = below.len().saturating_sub(q.limit);
                    Answer::History(Ok(HistoryPage {
                        at_start: from == 0,
                        events: below[from..].to_vec(),
                    }))
                }
                Query::Search(q) => Answer::Search(Ok(self.search(i, &q))),
            };
            self.nodes[i].hub.handle_answer(id, answer, self.now);
        }

        /// Appends `event` (about a user of `node`) to its room's log and hands it to every
        /// node following the room (`origin`: the node that published it and its id).
        fn append(&mut self, mut event: RoomEvent, node: &str, origin: Option<(usize, u64)>) {
            let now = self.now;
            let log = self.log.entry(event.room.clone()).or_default();
            event.seq = Seq(log.len() as u64 + 1);
            log.push(event.clone());
            self.nodes_of
                .entry(event.room.clone())
                .or_default()
                .push(node.to_owned());
            for (j, n) in self.nodes.iter_mut().enumerate() {
                if n.following.contains(&event.room) {
                    let origin = origin.filter(|(i, _)| *i == j).map(|(_, id)| id);
                    n.hub.handle_remote_from(event.clone(), origin, node, now);
                }
            }
        }

        fn answer(&mut self, i: usize, id: u64, nick: &Nick) {
            let owner = *self.owners.entry(nick.folded()).or_insert(i);
            self.nodes[i].hub.handle_claim(id, owner == i, self.now);
        }

        fn send(&mut self, i: usize, c: ConnId, msg: &ClientMsg) {
            let f = encode_frame(msg).unwrap();
            self.nodes[i].hub.handle_bytes(c, &f, self.now);
            self.pump();
        }

        /// A binary client on node `i` that said hello (nothing pumped yet).
        fn hello(&mut self, i: usize, want: &str) -> ConnId {
            let now = self.now;
            let c = self.nodes[i].hub.accept(LOCAL, now).unwrap();
            self.nodes[i].hub.handle_bytes(c, &MAGIC, now);
            let hello = ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            };
            self.nodes[i]
                .hub
                .handle_bytes(c, &encode_frame(&hello).unwrap(), now);
            c
        }

        /// A binary client on node `i` whose hello (as `want`) resumes `token`, having seen
        /// `rooms` up to their seqs (pumped).
        fn hello_resuming(
            &mut self,
            i: usize,
            want: &str,
            token: crate::types::ResumeToken,
            rooms: Vec<(RoomName, Seq)>,
        ) -> ConnId {
            let now = self.now;
            let c = self.nodes[i].hub.accept(LOCAL, now).unwrap();
            self.nodes[i].hub.handle_bytes(c, &MAGIC, now);
            let hello = ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: Some(crate::wire::Resume { token, rooms }),
            };
            self.send(i, c, &hello);
            c
        }

        /// An IRC client on node `i` that sent NICK and USER as `nick` (nothing pumped yet).
        fn irc(&mut self, i: usize, nick: &str) -> ConnId {
            let now = self.now;
            let c = self.nodes[i]
                .hub
                .accept_on(crate::hub::Door::Irc, LOCAL, now)
                .unwrap();
            let registration = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
            self.nodes[i]
                .hub
                .handle_bytes(c, registration.as_bytes(), now);
            c
        }

        fn recv(&mut self, i: usize, c: ConnId) -> Vec<ServerMsg> {
            let d = self.nodes[i].inbox.entry(c).or_default();
            let mut out = Vec::new();
            while let Some(p) = d.next_frame().unwrap() {
                out.push(decode_payload::<ServerMsg>(&p).unwrap());
            }
            out
        }

        /// The resume token of `c`'s welcome (its only message so far).
        fn token(&mut self, i: usize, c: ConnId) -> crate::types::ResumeToken {
            match self.recv(i, c).as_slice() {
                [ServerMsg::Welcome { token, .. }] => token.clone(),
                other => panic!("no welcome: {other:?}"),
            }
        }

        fn welcomed(&mut self, i: usize, c: ConnId) -> Nick {
            let got = self.recv(i, c);
            match got.as_slice() {
                [ServerMsg::Welcome { nick, .. }] => nick.clone(),
                other => panic!("no welcome: {other:?}"),
            }
        }
    }

    fn say(id: u64, words: &str) -> ClientMsg {
        ClientMsg::Say {
            room: room("#r"),
            id: MsgId(id),
            text: text(words),
        }
    }

    /// The room events in `msgs`, as (seq, from, what) for comparing nodes.
    fn events(msgs: &[ServerMsg]) -> Vec<(u64, String, String)> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Event(e) => Some((e.seq.0, e.from.to_string(), format!("{:?}", e.kind))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn members_on_two_nodes_see_one_order_with_the_logs_seqs() {
        let mut net = Net::new(2);
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        net.pump();
        assert_eq!(net.welcomed(0, a), nick("alice"));
        assert_eq!(net.welcomed(1, b), nick("bob"));
        net.send(0, a, &ClientMsg::Join { room: room("#r") });
        let a_join = net.recv(0, a);
        net.send(1, b, &ClientMsg::Join { room: room("#r") });
        assert!(
            matches!(a_join.first(), Some(ServerMsg::Joined { seq: Seq(1), .. })),
            "{a_join:?}"
        );
        let b_join = net.recv(1, b);
        // Bob joins after alice: his replay holds her join, then his own.
        assert!(
            matches!(b_join.first(), Some(ServerMsg::Joined { seq: Seq(2), .. })),
            "{b_join:?}"
        );
        assert_eq!(events(&b_join).len(), 2, "{b_join:?}");
        // Both talk before either hears the other: the log decides one order for both.
        let now = net.now;
        for (i, c, id, words) in [(0, a, 1, "hi from a"), (1, b, 1, "hi from b")] {
            let f = encode_frame(&say(id, words)).unwrap();
            net.nodes[i].hub.handle_bytes(c, &f, now);
        }
        net.pump();
        let got_a = events(&net.recv(0, a));
        let got_b = events(&net.recv(1, b));
        // Alice hears bob's join, then both lines; bob hears both lines.
        assert_eq!(got_a.first().map(|e| e.0), Some(2));
        assert_eq!(&got_a[1..], &got_b[..], "one order everywhere");
        assert_eq!(got_b.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(net.log[&room("#r")].len(), 4);
    }

    #[test]
    fn an_event_crosses_to_a_node_once_and_reaches_each_local_member() {
        let mut net = Net::new(2);
        let a = net.hello(0, "alice");
        let b1 = net.hello(1, "bob");
        let b2 = net.hello(1, "carol");
        net.pump();
        for (i, c) in [(0, a), (1, b1), (1, b2)] {
            net.send(i, c, &ClientMsg::Join { room: room("#r") });
        }
        for (i, c) in [(0, a), (1, b1), (1, b2)] {
            net.recv(i, c);
        }
        net.send(0, a, &say(1, "to all"));
        for (i, c) in [(0, a), (1, b1), (1, b2)] {
            let got = events(&net.recv(i, c));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, 4);
        }
    }

    /// alice on node 0 and bob on node 1, both asking to join `#r` (answers not read yet).
    fn alice_and_bob_in_r(net: &mut Net) -> (ConnId, ConnId) {
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        net.pump();
        for (i, c) in [(0, a), (1, b)] {
            net.send(i, c, &ClientMsg::Join { room: room("#r") });
        }
        (a, b)
    }

    #[test]
    fn a_line_the_log_refuses_reaches_nobody_and_its_sender_is_told() {
        let mut net = Net::new(2);
        let (a, b) = alice_and_bob_in_r(&mut net);
        net.recv(0, a);
        net.recv(1, b);
        net.refuse = true;
        net.send(0, a, &say(1, "lost"));
        let got = net.recv(0, a);
        assert!(
            matches!(
                got.as_slice(),
                [ServerMsg::Error {
                    kind: ErrorKind::NotStored,
                    re: Re::Msg(MsgId(1)),
                    ..
                }]
            ),
            "{got:?}"
        );
        assert!(net.recv(1, b).is_empty());
        // A join refused by the log does not happen either.
        net.send(1, b, &ClientMsg::Join { room: room("#s") });
        let got = net.recv(1, b);
        assert!(
            matches!(
                got.as_slice(),
                [ServerMsg::Error {
                    kind: ErrorKind::NotStored,
                    ..
                }]
            ),
            "{got:?}"
        );
        net.refuse = false;
        net.send(0, a, &say(2, "back"));
        assert_eq!(events(&net.recv(1, b)).len(), 1);
    }

    #[test]
    fn a_nick_claimed_on_two_nodes_at_once_goes_to_one() {
        let mut net = Net::new(2);
        net.hold_claims = true;
        let x = net.hello(0, "sam");
        let y = net.hello(1, "Sam");
        net.pump();
        // Nobody is welcomed while the claims are out.
        assert!(net.recv(0, x).is_empty() && net.recv(1, y).is_empty());
        let claims = core::mem::take(&mut net.claims);
        assert_eq!(claims.len(), 2);
        // Node 1's claim reaches the table first.
        for (i, id, n) in claims.into_iter().rev() {
            net.answer(i, id, &n);
        }
        net.hold_claims = false;
        net.pump();
        assert_eq!(net.welcomed(1, y), nick("Sam"));
        assert_eq!(net.welcomed(0, x), nick("sam_2"));
        // A nick change claims too; a quit releases.
        net.send(0, x, &ClientMsg::Nick { nick: nick("sam") });
        let got = net.recv(0, x);
        assert!(
            matches!(
                got.as_slice(),
                [ServerMsg::Error {
                    kind: ErrorKind::NickTaken,
                    ..
                }]
            ),
            "{got:?}"
        );
        net.send(1, y, &ClientMsg::Quit { reason: None });
        assert!(!net.owners.contains_key("sam"));
        net.send(0, x, &ClientMsg::Nick { nick: nick("sam") });
        let got = net.recv(0, x);
        assert!(
            matches!(got.as_slice(), [ServerMsg::YourNick { nick: n }] if n.as_str() == "sam"),
            "{got:?}"
        );
        assert_eq!(net.owners.get("sam"), Some(&0));
        assert!(!net.owners.contains_key("sam_2"));
    }

    /// As on one node (`nick_changes_past_their_burst_are_refused_with_the_wait`): a change
    /// the cluster refuses (the nick is another node's) or cannot decide costs no nick token,
    /// and a change it grants costs one, not two.
    #[test]
    fn nick_changes_cost_one_token_each_and_the_clusters_refusals_none() {
        use crate::limits::NICK_BURST;
        let mut net = Net::new(2);
        let x = net.hello(0, "sam");
        let y = net.hello(1, "kim");
        net.pump();
        net.welcomed(0, x);
        net.welcomed(1, y);
        // Paced past the flood limit, well within one nick token's refill (10 s).
        let nick_kinds = |net: &mut Net| -> Vec<Option<ErrorKind>> {
            net.now = Millis(net.now.0 + 250);
            net.recv(0, x)
                .iter()
                .filter_map(|m| match m {
                    ServerMsg::Error { kind, .. } => Some(Some(*kind)),
                    ServerMsg::YourNick { .. } => Some(None),
                    _ => None,
                })
                .collect()
        };
        for _ in 0..NICK_BURST + 2 {
            net.send(0, x, &ClientMsg::Nick { nick: nick("kim") });
            assert_eq!(nick_kinds(&mut net), [Some(ErrorKind::NickTaken)]);
        }
        net.refuse_claims = true;
        net.send(0, x, &ClientMsg::Nick { nick: nick("lee") });
        assert_eq!(nick_kinds(&mut net), [Some(ErrorKind::Unavailable)]);
        net.refuse_claims = false;
        for k in 0..NICK_BURST {
            net.send(
                0,
                x,
                &ClientMsg::Nick {
                    nick: nick(&format!("sam{k}")),
                },
            );
            assert_eq!(nick_kinds(&mut net), [None], "change {k}");
        }
        net.send(0, x, &ClientMsg::Nick { nick: nick("fast") });
        assert_eq!(nick_kinds(&mut net), [Some(ErrorKind::Flood)]);
    }

    #[test]
    fn what_follows_a_nick_change_waits_for_its_claim() {
        let mut net = Net::new(1);
        let a = net.hello(0, "guest");
        net.pump();
        net.welcomed(0, a);
        net.send(0, a, &ClientMsg::Join { room: room("#r") });
        net.recv(0, a);
        // A rename and a line sent right behind it: the line goes out under the new nick, as
        // on a single node, however long the cluster takes to grant the nick.
        net.hold_claims = true;
        let now = net.now;
        for msg in [ClientMsg::Nick { nick: nick("erin") }, say(1, "first")] {
            net.nodes[0]
                .hub
                .handle_bytes(a, &encode_frame(&msg).unwrap(), now);
        }
        net.pump();
        assert!(events(&net.recv(0, a)).is_empty(), "nothing said yet");
        for (i, id, n) in core::mem::take(&mut net.claims) {
            net.answer(i, id, &n);
        }
        net.hold_claims = false;
        net.pump();
        let said: Vec<(u64, String, String)> = events(&net.recv(0, a))
            .into_iter()
            .filter(|e| e.2.contains("first"))
            .collect();
        assert_eq!(said.len(), 1, "{said:?}");
        assert_eq!(said[0].1, "erin", "{said:?}");
    }

    #[test]
    fn requests_sent_before_the_welcome_wait_for_the_nick_claim() {
        let mut net = Net::new(1);
        net.hold_claims = true;
        let a = net.hello(0, "alice");
        let now = net.now;
        for msg in [ClientMsg::Join { room: room("#r") }, say(1, "early")] {
            net.nodes[0]
                .hub
                .handle_bytes(a, &encode_frame(&msg).unwrap(), now);
        }
        net.pump();
        assert!(
            net.recv(0, a).is_empty(),
            "nothing before the claim is answered"
        );
        for (i, id, n) in core::mem::take(&mut net.claims) {
            net.answer(i, id, &n);
        }
        net.hold_claims = false;
        net.pump();
        let got = net.recv(0, a);
        assert!(
            matches!(got.first(), Some(ServerMsg::Welcome { .. })),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Joined { .. })),
            "{got:?}"
        );
        let lines = events(&got);
        assert_eq!(lines.last().map(|l| l.0), Some(2), "{got:?}");
        assert!(lines.last().is_some_and(|l| l.2.contains("early")));
    }

    #[test]
    fn a_claim_the_cluster_cannot_decide_is_refused_in_words() {
        let mut net = Net::new(1);
        net.hold_claims = true;
        let a = net.hello(0, "alice");
        net.pump();
        let (_, id, _) = net.claims.pop().unwrap();
        let why = "the cluster is unavailable (no NATS server answers)";
        net.nodes[0].hub.handle_claim_failed(id, why, net.now);
        net.pump();
        let got = net.recv(0, a);
        assert!(
            matches!(got.as_slice(), [ServerMsg::Error { kind: ErrorKind::Unavailable, detail, .. }, ServerMsg::Bye { .. }] if detail.contains("unavailable")),
            "{got:?}"
        );
    }

    #[test]
    fn a_direct_notice_stays_a_notice_across_nodes() {
        let mut net = Net::new(2);
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        net.pump();
        net.recv(0, a);
        net.recv(1, b);
        net.send(
            0,
            a,
            &ClientMsg::NoticeTo {
                to: nick("bob"),
                id: MsgId(1),
                text: text("beep"),
            },
        );
        let got = net.recv(1, b);
        assert!(
            matches!(got.as_slice(), [ServerMsg::DirectNotice(d)] if d.from.as_str() == "alice" && d.text.as_str() == "beep"),
            "{got:?}"
        );
        let got = net.recv(0, a);
        assert!(
            matches!(got.as_slice(), [ServerMsg::DirectNotice(d)] if d.id == MsgId(1)),
            "the acknowledgement is a notice too: {got:?}"
        );
    }

    #[test]
    fn a_direct_message_reaches_a_user_on_another_node() {
        let mut net = Net::new(2);
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        net.pump();
        net.recv(0, a);
        net.recv(1, b);
        let dm = |to: &str, id: u64| ClientMsg::Msg {
            to: nick(to),
            id: MsgId(id),
            text: text("psst"),
        };
        net.send(0, a, &dm("BOB", 1));
        let got = net.recv(1, b);
        assert!(
            matches!(got.as_slice(), [ServerMsg::Direct(d)] if d.from.as_str() == "alice" && d.text.as_str() == "psst"),
            "{got:?}"
        );
        let got = net.recv(0, a);
        assert!(
            matches!(got.as_slice(), [ServerMsg::Direct(d)] if d.id == MsgId(1)),
            "{got:?}"
        );
        // Nobody holds the nick anywhere: the sender is told.
        net.send(0, a, &dm("nobody", 2));
        let got = net.recv(0, a);
        assert!(
            matches!(
                got.as_slice(),
                [ServerMsg::Error {
                    kind: ErrorKind::NoSuchNick,
                    re: Re::Msg(MsgId(2)),
                    ..
                }]
            ),
            "{got:?}"
        );
    }

    /// The members `c` on node `i` is told `#r` has, sorted.
    fn who(net: &mut Net, i: usize, c: ConnId) -> Vec<String> {
        net.send(i, c, &ClientMsg::Who { room: room("#r") });
        let got = net.recv(i, c);
        let mut names: Vec<String> = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::Members { members, .. } => {
                    Some(members.iter().map(ToString::to_string).collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no member list: {got:?}"));
        names.sort();
        names
    }

    /// The members in `c`'s last `Joined` of `#r`, sorted.
    fn joined_members(msgs: &[ServerMsg]) -> Vec<String> {
        let mut names: Vec<String> = msgs
            .iter()
            .find_map(|m| match m {
                ServerMsg::Joined { members, .. } => {
                    Some(members.iter().map(ToString::to_string).collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("not joined: {msgs:?}"));
        names.sort();
        names
    }

    #[test]
    fn member_lists_hold_the_members_of_every_node() {
        let mut net = Net::new(3);
        // A node that starts following reads two events as recent; membership from the rest.
        net.recent = 2;
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        let c = net.hello(2, "carol");
        net.pump();
        for (i, x) in [(0, a), (1, b), (2, c)] {
            net.welcomed(i, x);
        }
        net.send(0, a, &ClientMsg::Join { room: room("#r") });
        net.recv(0, a);
        for k in 0..3 {
            net.send(0, a, &say(k, "filler"));
        }
        net.send(1, b, &ClientMsg::Join { room: room("#r") });
        let got = net.recv(1, b);
        assert_eq!(joined_members(&got), ["alice", "bob"], "{got:?}");
        assert_eq!(who(&mut net, 0, a), ["alice", "bob"]);
        // Alice renames and bob's list follows; carol joins on a third node.
        net.send(
            0,
            a,
            &ClientMsg::Nick {
                nick: nick("alicia"),
            },
        );
        net.send(2, c, &ClientMsg::Join { room: room("#r") });
        let got = net.recv(2, c);
        assert_eq!(joined_members(&got), ["alicia", "bob", "carol"], "{got:?}");
        assert_eq!(who(&mut net, 1, b), ["alicia", "bob", "carol"]);
        // LIST counts them all.
        net.send(1, b, &ClientMsg::Rooms);
        let got = net.recv(1, b);
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::Rooms { rooms } if rooms.iter().any(|r| r.members == 3))
            ),
            "{got:?}"
        );
        // A part and a quit leave every list.
        net.send(
            1,
            b,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        assert_eq!(who(&mut net, 0, a), ["alicia", "carol"]);
        net.send(0, a, &ClientMsg::Quit { reason: None });
        assert_eq!(who(&mut net, 2, c), ["carol"]);
    }

    #[test]
    fn members_of_a_node_that_is_gone_leave_every_list_once() {
        let mut net = Net::new(3);
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        let c = net.hello(2, "carol");
        net.pump();
        for (i, x) in [(0, a), (1, b), (2, c)] {
            net.send(i, x, &ClientMsg::Join { room: room("#r") });
        }
        for (i, x) in [(0, a), (1, b), (2, c)] {
            net.recv(i, x);
        }
        // Node 0 dies: the others see its lease gone, and both would reap its members.
        let alive = ["n1".to_owned(), "n2".to_owned()];
        let now = net.now;
        net.nodes[1].hub.handle_nodes(&alive, now);
        net.nodes[2].hub.handle_nodes(&alive, now);
        net.pump();
        assert_eq!(who(&mut net, 1, b), ["bob", "carol"]);
        assert_eq!(who(&mut net, 2, c), ["bob", "carol"]);
        let quits = net.log[&room("#r")]
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Quit { .. }))
            .count();
        assert_eq!(quits, 1, "one quit for alice in the log");
        // Asked again, nobody is reaped twice.
        net.nodes[1].hub.handle_nodes(&alive, now);
        assert!(net.nodes[1].hub.poll_cluster().is_none());
    }

    #[test]
    fn a_reap_nobody_finished_is_handed_out_again() {
        let mut net = Net::new(2);
        let (_, b) = alice_and_bob_in_r(&mut net);
        // Node 0 dies; node 1's reap is handed out but never done (its reaper died too).
        let alive = ["n1".to_owned()];
        let now = net.now;
        let hub = &mut net.nodes[1].hub;
        // What the hub asks, but for forgetting node 0's users' records (not done here).
        let next = |hub: &mut Hub| {
            core::iter::from_fn(|| hub.poll_cluster())
                .find(|o| !matches!(o, ClusterOut::Forget { .. }))
        };
        hub.handle_nodes(&alive, now);
        assert!(matches!(next(hub), Some(ClusterOut::Reap { node, .. }) if node == "n0"));
        hub.handle_nodes(&alive, now + Millis(1_000));
        assert!(next(hub).is_none(), "not again at once");
        hub.handle_nodes(&alive, now + REAP_RETRY);
        match next(hub) {
            Some(ClusterOut::Reap {
                node,
                room: r,
                nicks,
            }) => {
                assert_eq!(
                    (node.as_str(), r, nicks),
                    ("n0", room("#r"), vec![nick("alice")])
                );
            }
            other => panic!("no second reap: {other:?}"),
        }
        // Done this time: alice's quit comes back, and nothing is handed out any more.
        net.pump();
        let quit = RoomEvent {
            room: room("#r"),
            seq: Seq(0),
            at: now,
            from: nick("alice"),
            kind: EventKind::Quit { reason: None },
        };
        net.append(quit, "n0", None);
        net.pump();
        assert_eq!(who(&mut net, 1, b), ["bob"]);
        let later = now + REAP_RETRY + REAP_RETRY;
        net.nodes[1].hub.handle_nodes(&alive, later);
        assert!(next(&mut net.nodes[1].hub).is_none());
    }

    #[test]
    fn a_quit_about_a_node_its_user_left_does_not_take_the_user_away() {
        let mut net = Net::new(2);
        let b = net.hello(1, "bob");
        net.pump();
        net.send(1, b, &ClientMsg::Join { room: room("#r") });
        net.recv(1, b);
        // Dave was on a node n9, then came back through node n8, then n9's quits come.
        let ev = |seq: u64, kind: EventKind| RoomEvent {
            room: room("#r"),
            seq: Seq(seq),
            at: Millis(1),
            from: nick("dave"),
            kind,
        };
        let now = net.now;
        let hub = &mut net.nodes[1].hub;
        hub.handle_remote_from(ev(2, EventKind::Join), None, "n9", now);
        hub.handle_remote_from(ev(3, EventKind::Join), None, "n8", now);
        hub.handle_remote_from(ev(4, EventKind::Quit { reason: None }), None, "n9", now);
        net.pump();
        assert_eq!(who(&mut net, 1, b), ["bob", "dave"]);
    }

    #[test]
    fn whois_ison_and_lusers_know_users_on_other_nodes_in_shared_rooms() {
        let mut net = Net::new(2);
        let b = net.hello(1, "Bob");
        net.pump();
        net.welcomed(1, b);
        net.send(1, b, &ClientMsg::Join { room: room("#r") });
        let c = net.irc(0, "carol");
        net.pump();
        let now = net.now;
        net.nodes[0].hub.handle_bytes(c, b"JOIN #r\r\n", now);
        net.pump();
        let irc = |net: &mut Net, line: &[u8]| {
            net.nodes[0].raw.remove(&c);
            let now = net.now;
            net.nodes[0].hub.handle_bytes(c, line, now);
            net.pump();
            String::from_utf8_lossy(&net.nodes[0].raw[&c]).into_owned()
        };
        let text = irc(&mut net, b"WHOIS bob\r\n");
        assert!(text.contains(" 311 carol Bob Bob "), "{text}");
        assert!(text.contains("on another natter node"), "{text}");
        assert!(text.contains(" 319 carol Bob :#r"), "{text}");
        assert!(!text.contains(" 401 "), "{text}");
        assert!(!text.contains("between connections"), "{text}");
        let text = irc(&mut net, b"ISON bob dave carol\r\n");
        assert!(text.contains(" 303 carol :Bob carol"), "{text}");
        let text = irc(&mut net, b"LUSERS\r\n");
        assert!(text.contains(" 251 carol :There are 2 users"), "{text}");
        // Bob leaves the room: node 0 still knows him (from his node's record), in no room.
        net.send(
            1,
            b,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        let text = irc(&mut net, b"WHOIS bob\r\n");
        assert!(text.contains(" 311 carol Bob Bob "), "{text}");
        assert!(!text.contains(" 319 "), "{text}");
        // In a room nobody here is in: his record names it.
        net.send(1, b, &ClientMsg::Join { room: room("#far") });
        net.pump();
        let text = irc(&mut net, b"WHOIS bob\r\n");
        assert!(text.contains(" 319 carol Bob :#far"), "{text}");
    }

    #[test]
    fn a_nick_change_or_quit_from_another_node_is_one_line_on_irc() {
        let mut net = Net::new(2);
        let c = net.irc(0, "carol");
        net.pump();
        let now = net.now;
        net.nodes[0].hub.handle_bytes(c, b"JOIN #a,#b\r\n", now);
        net.pump();
        let m = net.hello(1, "mover");
        net.pump();
        net.welcomed(1, m);
        for r in ["#a", "#b"] {
            net.send(1, m, &ClientMsg::Join { room: room(r) });
        }
        let lines = |net: &mut Net| -> Vec<String> {
            let raw = net.nodes[0].raw.remove(&c).unwrap_or_default();
            String::from_utf8_lossy(&raw)
                .split_terminator("\r\n")
                .map(str::to_owned)
                .collect()
        };
        lines(&mut net);
        net.send(
            1,
            m,
            &ClientMsg::Nick {
                nick: nick("moved"),
            },
        );
        assert_eq!(lines(&mut net), [":mover!mover@natter NICK :moved"]);
        net.send(
            1,
            m,
            &ClientMsg::Quit {
                reason: Some(text("off")),
            },
        );
        assert_eq!(lines(&mut net), [":moved!moved@natter QUIT :off"]);
        // Another user by the same nick, later: told again.
        let m2 = net.hello(1, "moved");
        net.pump();
        net.welcomed(1, m2);
        for r in ["#a", "#b"] {
            net.send(1, m2, &ClientMsg::Join { room: room(r) });
        }
        lines(&mut net);
        net.now = net.now + Millis(1);
        net.send(
            1,
            m2,
            &ClientMsg::Quit {
                reason: Some(text("off")),
            },
        );
        assert_eq!(lines(&mut net), [":moved!moved@natter QUIT :off"]);
    }

    /// The quits a reaper writes for the users of a node that is gone come room by room, each
    /// room's all at once, dated by when the node was found gone (the first reaper's time, for
    /// every room): an IRC client sharing two rooms with forty of them gets each quit once, a
    /// binary client each room's.
    #[test]
    fn a_gone_nodes_users_quit_once_on_irc_however_many_rooms_and_users() {
        let mut net = Net::new(2);
        let c = net.irc(0, "carol");
        net.pump();
        let now = net.now;
        net.nodes[0].hub.handle_bytes(c, b"JOIN #a,#b\r\n", now);
        let b = net.hello(0, "bea");
        net.pump();
        net.welcomed(0, b);
        for r in ["#a", "#b"] {
            net.send(0, b, &ClientMsg::Join { room: room(r) });
        }
        let gone: Vec<String> = (0..40).map(|k| format!("u{k}")).collect();
        for who in &gone {
            let m = net.hello(1, who);
            net.pump();
            net.welcomed(1, m);
            for r in ["#a", "#b"] {
                net.send(1, m, &ClientMsg::Join { room: room(r) });
            }
        }
        net.nodes[0].raw.remove(&c);
        net.recv(0, b);
        // Node 1 is gone; its users' quits, written by a reaper, one room after the other.
        let at = net.now;
        net.now = net.now + Millis(5_000);
        for r in ["#a", "#b"] {
            for who in &gone {
                let quit = reaped_quit(room(r), nick(who), at);
                net.append(quit, "n1", None);
            }
            net.pump();
            net.now = net.now + Millis(3_000);
        }
        let raw = net.nodes[0].raw.remove(&c).unwrap_or_default();
        // The words of a reaped member's quit (`reaped_quit`, which the cluster's reaper writes).
        let said = String::from_utf8_lossy(&raw);
        assert!(
            said.split_terminator("\r\n")
                .filter(|l| l.contains(" QUIT "))
                .all(|l| l.ends_with(" QUIT :*.net *.split")),
            "{said}"
        );
        let quits: Vec<String> = String::from_utf8_lossy(&raw)
            .split_terminator("\r\n")
            .filter(|l| l.contains(" QUIT "))
            .map(|l| {
                l.split('!')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches(':')
                    .to_owned()
            })
            .collect();
        assert_eq!(quits, gone, "each once, in order");
        let at_bea = net
            .recv(0, b)
            .iter()
            .filter(
                |m| matches!(m, ServerMsg::Event(e) if matches!(e.kind, EventKind::Quit { .. })),
            )
            .count();
        assert_eq!(at_bea, 80, "a binary client gets each room's");
    }

    #[test]
    fn a_room_big_enough_for_a_list_of_connections_reaches_every_member_joined_through_the_log() {
        let mut net = Net::new(2);
        let n = crate::hub::deliver::ATTACHED_LIST_MIN + 4;
        let mut here = Vec::new();
        for k in 0..n {
            let c = net.hello(0, &format!("u{k}"));
            net.pump();
            net.welcomed(0, c);
            here.push(c);
        }
        for (k, &c) in here.iter().enumerate() {
            net.send(0, c, &ClientMsg::Join { room: room("#r") });
            // From the list's size on, a line right after a join goes through the list.
            net.send(0, c, &say(k as u64, "hello"));
        }
        let b = net.hello(1, "bob");
        net.pump();
        net.welcomed(1, b);
        net.send(1, b, &ClientMsg::Join { room: room("#r") });
        for &c in &here {
            net.recv(0, c);
        }
        net.send(1, b, &say(1, "to all"));
        for &c in &here {
            let got = net.recv(0, c);
            assert!(
                events(&got).iter().any(|(_, from, _)| from == "bob"),
                "{c:?}: {got:?}"
            );
        }
        // One leaves; the next line reaches the others and not it.
        net.send(
            0,
            here[0],
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        net.recv(0, here[0]);
        net.send(1, b, &say(2, "again"));
        assert!(events(&net.recv(0, here[0])).is_empty());
        for &c in &here[1..] {
            assert_eq!(
                events(&net.recv(0, c)).len(),
                2,
                "{c:?}: the part and the line"
            );
        }
    }

    #[test]
    fn an_irc_registration_in_a_cluster_ends_with_the_motd() {
        let mut net = Net::new(1);
        let c = net.irc(0, "carol");
        net.pump();
        let text = String::from_utf8_lossy(&net.nodes[0].raw[&c]).into_owned();
        assert!(text.contains(" 376 carol "), "{text}");
    }

    #[test]
    fn a_session_resumes_on_another_node_with_exactly_what_it_missed() {
        let mut net = Net::new(2);
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        net.pump();
        let token = net.token(0, a);
        net.recv(1, b);
        for (i, c) in [(0, a), (1, b)] {
            net.send(i, c, &ClientMsg::Join { room: room("#r") });
        }
        net.recv(0, a);
        net.recv(1, b);
        net.send(0, a, &say(1, "one"));
        let seen = events(&net.recv(0, a))[0].0;
        // Node 0 dies: it hears nothing more. Bob talks on.
        net.nodes[0].following.clear();
        net.send(1, b, &say(1, "two"));
        net.send(1, b, &say(2, "three"));
        net.recv(1, b);
        // A stranger knowing only the token's id (not secret) gets nothing.
        let mut forged = token.clone();
        forged.0[31] ^= 1;
        let resume = |t: &crate::types::ResumeToken| ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("alice"),
            resume: Some(crate::wire::Resume {
                token: t.clone(),
                rooms: vec![(room("#r"), Seq(seen))],
            }),
        };
        let now = net.now;
        let x = net.nodes[1].hub.accept(LOCAL, now).unwrap();
        net.nodes[1].hub.handle_bytes(x, &MAGIC, now);
        net.send(1, x, &resume(&forged));
        let got = net.recv(1, x);
        assert!(
            matches!(got.as_slice(), [ServerMsg::Error { kind: ErrorKind::ResumeFailed, .. }, ServerMsg::Welcome { resumed: false, nick, .. }] if nick.as_str() != "alice"),
            "{got:?}"
        );
        // Alice, with her token, resumes on node 1: her nick, her room, what she missed.
        let c = net.nodes[1].hub.accept(LOCAL, now).unwrap();
        net.nodes[1].hub.handle_bytes(c, &MAGIC, now);
        net.send(1, c, &resume(&token));
        let got = net.recv(1, c);
        assert!(
            matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, nick, .. }) if nick.as_str() == "alice"),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#r"))),
            "{got:?}"
        );
        let lines: Vec<String> = events(&got)
            .into_iter()
            .filter(|e| e.2.contains("Say"))
            .map(|e| e.2)
            .collect();
        assert_eq!(lines.len(), 2, "{got:?}");
        assert!(
            lines[0].contains("two") && lines[1].contains("three"),
            "{lines:?}"
        );
        // She is a member on node 1 now, and talks there.
        assert_eq!(who(&mut net, 1, b), ["alice", "bob"]);
        net.send(1, c, &say(7, "back"));
        assert!(events(&net.recv(1, b)).iter().any(|e| e.2.contains("back")));
        // The new session is kept for the next node; the old token's record is gone.
        assert!(!net.sessions.contains_key(&token.id()));
        assert!(net.sessions.values().any(|r| r.nick.as_str() == "alice"));
    }

    #[test]
    fn a_session_resumed_elsewhere_leaves_its_first_node_without_a_quit() {
        let mut net = Net::new(2);
        let a = net.hello(0, "alice");
        let d = net.hello(0, "dave");
        net.pump();
        let token = net.token(0, a);
        net.recv(0, d);
        for c in [a, d] {
            net.send(0, c, &ClientMsg::Join { room: room("#r") });
            net.recv(0, c);
        }
        // Alice's client lost its connection to node 0 without node 0 noticing, and resumes
        // on node 1 (node 0 is alive).
        let now = net.now;
        let c = net.nodes[1].hub.accept(LOCAL, now).unwrap();
        net.nodes[1].hub.handle_bytes(c, &MAGIC, now);
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("alice"),
            resume: Some(crate::wire::Resume {
                token,
                rooms: vec![(room("#r"), Seq(2))],
            }),
        };
        net.send(1, c, &hello);
        let got = net.recv(1, c);
        assert!(
            matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, .. })),
            "{got:?}"
        );
        // Node 0 let her go: her old connection is told, nobody saw her quit, and she is
        // listed once, on node 1.
        let old = net.recv(0, a);
        assert!(
            old.iter().any(
                |m| matches!(m, ServerMsg::Bye { reason } if reason.contains("another server"))
            ),
            "{old:?}"
        );
        assert_eq!(who(&mut net, 0, d), ["alice", "dave"]);
        let quits = net.log[&room("#r")]
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Quit { .. }))
            .count();
        assert_eq!(quits, 0);
        // Her old connection closing later changes nothing.
        net.nodes[0].hub.handle_close(a, now);
        net.pump();
        assert_eq!(who(&mut net, 0, d), ["alice", "dave"]);
        assert!(
            net.log[&room("#r")]
                .iter()
                .all(|e| !matches!(e.kind, EventKind::Quit { .. }))
        );
    }

    /// Everything sent to connection `c` on node `i` so far, as text.
    fn raw_text(net: &Net, i: usize, c: ConnId) -> String {
        String::from_utf8_lossy(net.nodes[i].raw.get(&c).map_or(&[][..], |v| &v[..])).into_owned()
    }

    /// `alice` on node 0, carol (binary), dave (nc) and erin (IRC) on node 2, all in `#r`, and
    /// bob on node 1 (in `#r` too if `bob_in_room`); returns (alice, bob, carol, dave, erin,
    /// alice's token).
    fn spread(
        net: &mut Net,
        bob_in_room: bool,
    ) -> (
        ConnId,
        ConnId,
        ConnId,
        ConnId,
        ConnId,
        crate::types::ResumeToken,
    ) {
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        let c = net.hello(2, "carol");
        net.pump();
        let token = net.token(0, a);
        net.welcomed(1, b);
        net.welcomed(2, c);
        let now = net.now;
        let d = net.nodes[2].hub.accept(LOCAL, now).unwrap();
        net.nodes[2].hub.handle_bytes(d, b"/nick dave\r\n", now);
        let e = net.irc(2, "erin");
        net.pump();
        net.send(0, a, &ClientMsg::Join { room: room("#r") });
        if bob_in_room {
            net.send(1, b, &ClientMsg::Join { room: room("#r") });
        }
        net.send(2, c, &ClientMsg::Join { room: room("#r") });
        net.nodes[2].hub.handle_bytes(d, b"/join #r\r\n", now);
        net.nodes[2].hub.handle_bytes(e, b"JOIN #r\r\n", now);
        net.pump();
        for (i, x) in [(0, a), (1, b), (2, c)] {
            net.recv(i, x);
        }
        assert!(
            raw_text(net, 2, d).contains("dave"),
            "{}",
            raw_text(net, 2, d)
        );
        assert!(
            raw_text(net, 2, e).contains(" 366 erin #r "),
            "{}",
            raw_text(net, 2, e)
        );
        (a, b, c, d, e, token)
    }

    /// A hello resuming `token` on a new connection of node `i`, seen up to `seen` in `#r`.
    fn resume_on(net: &mut Net, i: usize, token: &crate::types::ResumeToken, seen: u64) -> ConnId {
        net.hello_resuming(i, "alice", token.clone(), vec![(room("#r"), Seq(seen))])
    }

    #[test]
    fn a_line_stored_before_its_node_died_and_sent_again_elsewhere_is_in_the_log_once() {
        for bob_in_room in [true, false] {
            let mut net = Net::new(3);
            let (a, b, c, d, e, token) = spread(&mut net, bob_in_room);
            net.send(0, a, &say(1, "acknowledged"));
            let seen = events(&net.recv(0, a))[0].0;
            // Node 0 dies right after the log stored alice's next line: she hears nothing.
            net.nodes[0].following.clear();
            net.send(0, a, &say(2, "in flight"));
            assert!(events(&net.recv(0, a)).is_empty());
            let at_carol = events(&net.recv(2, c));
            assert_eq!(at_carol.len(), 2, "{at_carol:?}");
            net.recv(1, b);
            let before_dave = raw_text(&net, 2, d).len();
            let before_erin = raw_text(&net, 2, e).len();
            // Her client resumes on node 1 and sends the line again, with its id.
            let x = resume_on(&mut net, 1, &token, seen);
            let got = net.recv(1, x);
            assert!(
                matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, .. })),
                "{got:?}"
            );
            let replayed: Vec<_> = events(&got)
                .into_iter()
                .filter(|l| l.2.contains("in flight"))
                .collect();
            assert_eq!(replayed.len(), 1, "{got:?}");
            net.send(1, x, &say(2, "in flight"));
            let got = net.recv(1, x);
            assert_eq!(
                got,
                vec![ServerMsg::Ack { id: MsgId(2) }],
                "acknowledged, not sent again"
            );
            let in_log = net.log[&room("#r")]
                .iter()
                .filter(|e| matches!(&e.kind, EventKind::Say { text, .. } if text.as_str() == "in flight"))
                .count();
            assert_eq!(in_log, 1, "once in the log (and so in history)");
            // Carol on node 2 got the move, and nothing else; dave (nc) and erin (IRC) nothing.
            let moved = net.recv(2, c);
            assert!(
                matches!(
                    moved.as_slice(),
                    [ServerMsg::Event(RoomEvent {
                        kind: EventKind::Moved,
                        ..
                    })]
                ),
                "{moved:?}"
            );
            assert_eq!(
                raw_text(&net, 2, d).len(),
                before_dave,
                "{}",
                raw_text(&net, 2, d)
            );
            assert_eq!(
                raw_text(&net, 2, e).len(),
                before_erin,
                "{}",
                raw_text(&net, 2, e)
            );
            if bob_in_room {
                let at_bob = net.recv(1, b);
                assert!(
                    at_bob.iter().all(|m| matches!(
                        m,
                        ServerMsg::Event(RoomEvent {
                            kind: EventKind::Moved,
                            ..
                        })
                    )),
                    "{at_bob:?}"
                );
            }
            // Node 0's lease runs out: alice is not reaped (she is on node 1 now).
            let alive = ["n1".to_owned(), "n2".to_owned()];
            let now = net.now;
            net.nodes[1].hub.handle_nodes(&alive, now);
            net.nodes[2].hub.handle_nodes(&alive, now);
            net.pump();
            assert!(
                net.log[&room("#r")]
                    .iter()
                    .all(|e| !matches!(e.kind, EventKind::Quit { .. } | EventKind::Join if e.seq.0 > seen)),
                "{:?}",
                net.log[&room("#r")]
            );
            let members: Vec<&str> = ["alice", "bob", "carol", "dave", "erin"]
                .into_iter()
                .filter(|n| bob_in_room || *n != "bob")
                .collect();
            assert_eq!(who(&mut net, 2, c), members);
            // Her next line is new: published, heard once by everyone.
            net.send(1, x, &say(3, "new"));
            let at_carol = events(&net.recv(2, c));
            assert_eq!(at_carol.len(), 1, "{at_carol:?}");
            assert!(at_carol[0].2.contains("new"));
            assert!(
                raw_text(&net, 2, d).ends_with("<alice> new\r\n"),
                "{}",
                raw_text(&net, 2, d)
            );
        }
    }

    #[test]
    fn a_session_whose_members_were_reaped_joins_again_visibly() {
        let mut net = Net::new(3);
        let (a, _b, c, _d, _e, token) = spread(&mut net, true);
        net.send(0, a, &say(1, "hi"));
        let seen = events(&net.recv(0, a))[0].0;
        net.nodes[0].following.clear();
        // Node 0's lease ran out and alice was reaped before her client came back.
        let alive = ["n1".to_owned(), "n2".to_owned()];
        let now = net.now;
        net.nodes[2].hub.handle_nodes(&alive, now);
        net.pump();
        assert_eq!(who(&mut net, 2, c), ["bob", "carol", "dave", "erin"]);
        net.recv(2, c);
        net.takeover_free = true;
        let x = resume_on(&mut net, 1, &token, seen);
        assert!(matches!(
            net.recv(1, x).first(),
            Some(ServerMsg::Welcome { resumed: true, .. })
        ));
        let got = events(&net.recv(2, c));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].1.as_str(), got[0].2.as_str()), ("alice", "Join"));
        assert_eq!(
            who(&mut net, 2, c),
            ["alice", "bob", "carol", "dave", "erin"]
        );
    }

    #[test]
    fn a_resent_line_is_recognised_in_what_the_resume_reads_from_the_log() {
        let mut net = Net::with_history(2, 2);
        let a = net.hello(0, "alice");
        let b = net.hello(1, "bob");
        net.pump();
        let token = net.token(0, a);
        net.welcomed(1, b);
        for (i, c) in [(0, a), (1, b)] {
            net.send(i, c, &ClientMsg::Join { room: room("#r") });
        }
        net.send(0, a, &say(1, "acknowledged"));
        let seen = events(&net.recv(0, a)).last().unwrap().0;
        net.nodes[0].following.clear();
        net.send(0, a, &say(2, "in flight"));
        // Bob talks on: node 1's ring (two events) no longer holds alice's line.
        for k in 1..=3 {
            net.send(1, b, &say(k, "filler"));
        }
        let x = resume_on(&mut net, 1, &token, seen);
        let got = net.recv(1, x);
        let replayed: Vec<_> = events(&got)
            .into_iter()
            .filter(|l| l.2.contains("in flight"))
            .collect();
        assert_eq!(replayed.len(), 1, "{got:?}");
        net.send(1, x, &say(2, "in flight"));
        assert_eq!(net.recv(1, x), vec![ServerMsg::Ack { id: MsgId(2) }]);
        let in_log = net.log[&room("#r")]
            .iter()
            .filter(
                |e| matches!(&e.kind, EventKind::Say { text, .. } if text.as_str() == "in flight"),
            )
            .count();
        assert_eq!(in_log, 1);
    }
}
