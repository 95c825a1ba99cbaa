//! One node's link to the cluster: a driver task that does what the hub asks (follow a room,
//! publish an event, claim or release a nick) in the order asked, a task per followed room that
//! hands its events back in the log's order, and a task that keeps this node's lease alive.

use crate::names::{nick_key, room_stream, room_subject};
use crate::search::SearchIndex;
use crate::{ClusterConfig, ClusterError};
use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::{HeaderMap, connection::State};
use bytes::Bytes;
use futures_util::StreamExt;
use natter_core::hub::{ClusterOut, Hub};
use natter_core::persist::{
    Answer, HistoryPage, HistoryQuery, Query, QueryId, SessionRecord, TokenHash,
};
use natter_core::wire::{DirectMsg, RoomEvent, decode_payload, encode_payload};
use natter_core::{Millis, Nick, RoomName, Seq};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Header naming the node that published a membership event (join, part, quit, kick, nick, move):
/// member lists count each member on its node. Other events carry no headers.
const NODE_HEADER: &str = "Natter-Node";
/// Header naming the node whose user an event is about, when not the publishing node's (the
/// quits a reaper publishes for the members of a node that is gone).
const FOR_HEADER: &str = "Natter-For";

/// Publishes handed to the node and not yet acknowledged (or refused) by JetStream, at most:
/// past this a publish is refused at once (`Error{NotStored}`, "the cluster is busy").
pub const MAX_PENDING_PUBLISHES: usize = 4096;
/// From this many publishes waiting, [`Node::backed_up`] asks the shell to stop reading its
/// sockets until JetStream catches up (as a busy store does).
pub const BACKED_UP_PUBLISHES: usize = MAX_PENDING_PUBLISHES / 2;

/// Publishes waiting for JetStream: counted when the hub hands one over, uncounted when its
/// acknowledgement (or refusal) comes; wakes the shell when the count falls below
/// [`BACKED_UP_PUBLISHES`].
#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    unblocked: Notify,
}

impl Pending {
    fn take(&self) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PENDING_PUBLISHES).then_some(n + 1)
            })
            .is_ok()
    }

    fn done(&self) {
        let before = self.count.fetch_sub(1, Ordering::AcqRel);
        if before == BACKED_UP_PUBLISHES {
            // A permit is kept if the shell is not waiting yet: it then wakes once for nothing.
            self.unblocked.notify_one();
        }
    }

    fn backed_up(&self) -> bool {
        self.count.load(Ordering::Acquire) >= BACKED_UP_PUBLISHES
    }
}

/// What the cluster tells the hub; hand each to [`ClusterIn::apply`].
#[derive(Debug)]
pub enum ClusterIn {
    /// A room event from the log (this node's own if `origin` is set).
    Remote {
        /// The event, with the log's seq.
        event: RoomEvent,
        /// The hub's number for it, if this node published it.
        origin: Option<u64>,
        /// The node its user is on ("" if unknown; shared: most events of a room come from a
        /// few nodes).
        node: std::sync::Arc<str>,
    },
    /// A membership event of a room's log from before the recent events read when the node
    /// started following the room: the hub learns who is in the room from it.
    Past {
        /// The event, with the log's seq.
        event: RoomEvent,
        /// The node its user is on ("" if unknown).
        node: std::sync::Arc<str>,
    },
    /// The nodes whose lease is alive, listed every third of a lease.
    Nodes(Vec<String>),
    /// The answer to a history read ([`Node::query`]).
    Answer {
        /// The hub's number for the read.
        id: QueryId,
        /// The page, or why not.
        answer: Answer,
    },
    /// The answer to a [`ClusterOut::FindSession`]: the record kept, if any.
    Session {
        /// The hub's number for the question.
        id: u64,
        /// The record (`None`: none, or it could not be read).
        record: Option<SessionRecord>,
    },
    /// A published event was not stored.
    Failed {
        /// The hub's number for it.
        id: u64,
        /// Why, in words for people.
        why: String,
    },
    /// The answer to a nick claim.
    Claimed {
        /// The hub's number for the claim.
        id: u64,
        /// Whether this node holds the nick now.
        granted: bool,
    },
    /// A direct message from another node, for a user here (`token`: to answer with).
    RemoteDirect {
        /// This node's token for the asking node's request.
        token: u64,
        /// The message.
        dm: DirectMsg,
    },
    /// The answer to a direct message this node sent to another.
    DirectDone {
        /// The hub's number for it.
        id: u64,
        /// Delivered, or why not.
        result: Result<(), String>,
    },
    /// A nick claim could not be decided.
    ClaimFailed {
        /// The hub's number for the claim.
        id: u64,
        /// Why, in words for people.
        why: String,
    },
    /// The answer to a [`ClusterOut::TakeOver`] (see [`Hub::handle_take_over`]).
    TakenOver {
        /// The hub's number for the claim.
        id: u64,
        /// Whether this node holds the nick now.
        granted: bool,
        /// Whether it was taken from the node that had it (not found free).
        moved: bool,
    },
    /// The answer to a [`ClusterOut::CreateAccount`]: made, an account of that name exists,
    /// or why the cluster could not say.
    AccountCreated {
        /// The hub's number for it.
        id: u64,
        /// `Ok(true)`: made; `Ok(false)`: the name is taken.
        result: Result<bool, String>,
    },
    /// An account as the cluster keeps it, after a change made on any node.
    Account {
        /// The account.
        account: natter_core::persist::LoadedAccount,
        /// Its entry's revision.
        revision: u64,
    },
    /// The account (its folded name) was removed.
    AccountDropped(String),
    /// This node's oldest account write of `account` (folded) not yet answered is done:
    /// `Some` revision of the entry after it, or `None` if it was not written.
    AccountWritten {
        /// The account, folded.
        account: String,
        /// The entry's revision after the write.
        revision: Option<u64>,
    },
    /// A room's settings as the cluster keeps them, after a change made on any node (`None`:
    /// the room was closed).
    Room {
        /// The room.
        room: RoomName,
        /// Its settings.
        shared: Option<natter_core::moderation::SharedRoom>,
        /// Its entry's revision.
        revision: u64,
    },
    /// This node's oldest edit of `room`'s settings not yet answered is done: `Some` revision
    /// of the entry after it, or `None` if it was not written.
    RoomWritten {
        /// The room.
        room: RoomName,
        /// The entry's revision after the edit.
        revision: Option<u64>,
    },
    /// A server-wide ban as the cluster keeps it, after a change made on any node.
    ServerBan {
        /// Who it holds.
        mask: natter_core::moderation::Mask,
        /// The ban (`None`: lifted).
        ban: Option<natter_core::moderation::Entry>,
        /// Its entry's revision.
        revision: u64,
    },
    /// This node's oldest ban or lift of `mask` not yet answered is done: `Some` revision of
    /// the entry after it, or `None` if it was not written.
    ServerBanWritten {
        /// Who it holds.
        mask: natter_core::moderation::Mask,
        /// The entry's revision after the write.
        revision: Option<u64>,
    },
    /// What a node says of its user called `nick` now (`None`: nobody has the nick there).
    Presence {
        /// The nick (its folded form is the key).
        nick: natter_core::Nick,
        /// The user.
        presence: Option<natter_core::hub::Presence>,
        /// The node holding it ("" for a removal).
        node: String,
    },
}

impl ClusterIn {
    /// Feeds this to the hub.
    pub fn apply(self, hub: &mut Hub, now: Millis) {
        match self {
            ClusterIn::Remote {
                event,
                origin,
                node,
            } => hub.handle_remote_from(event, origin, &node, now),
            ClusterIn::Past { event, node } => hub.handle_remote_past(&event, &node),
            ClusterIn::Nodes(alive) => hub.handle_nodes(&alive, now),
            ClusterIn::Session { id, record } => hub.handle_session(id, record, now),
            ClusterIn::Answer { id, answer } => hub.handle_answer(id, answer, now),
            ClusterIn::Failed { id, why } => hub.handle_publish_failed(id, &why, now),
            ClusterIn::Claimed { id, granted } => hub.handle_claim(id, granted, now),
            ClusterIn::ClaimFailed { id, why } => hub.handle_claim_failed(id, &why, now),
            ClusterIn::RemoteDirect { token, dm } => hub.handle_remote_direct(token, dm, now),
            ClusterIn::DirectDone { id, result } => hub.handle_direct_done(id, result, now),
            ClusterIn::TakenOver { id, granted, moved } => {
                hub.handle_take_over(id, granted, moved, now);
            }
            ClusterIn::AccountCreated { id, result } => {
                hub.handle_account_created(id, result, now);
            }
            ClusterIn::Account { account, revision } => {
                hub.handle_account(account, revision, now);
            }
            ClusterIn::AccountDropped(folded) => hub.handle_account_dropped(&folded, now),
            ClusterIn::AccountWritten { account, revision } => {
                hub.handle_account_written(&account, revision);
            }
            ClusterIn::Room {
                room,
                shared,
                revision,
            } => hub.handle_room(room, shared, revision, now),
            ClusterIn::RoomWritten { room, revision } => hub.handle_room_written(&room, revision),
            ClusterIn::ServerBan {
                mask,
                ban,
                revision,
            } => hub.handle_server_ban(mask, ban, revision, now),
            ClusterIn::ServerBanWritten { mask, revision } => {
                hub.handle_server_ban_written(&mask, revision, now);
            }
            ClusterIn::Presence {
                nick,
                presence,
                node,
            } => hub.handle_presence(&nick, presence, &node),
        }
    }
}

/// This node's link to the cluster. Dropping it stops its tasks.
#[derive(Debug)]
pub struct Node {
    id: String,
    out: mpsc::UnboundedSender<ClusterOut>,
    inbox: mpsc::UnboundedReceiver<ClusterIn>,
    /// To refuse a publish at once, without the driver.
    refuse: mpsc::UnboundedSender<ClusterIn>,
    pending: Arc<Pending>,
    tasks: Vec<JoinHandle<()>>,
    /// Reads of rooms' logs for history beyond the hub's ring.
    history: History,
    /// The accounts read at start (with their revisions), until [`Node::take_accounts`].
    accounts: Vec<(natter_core::persist::LoadedAccount, u64)>,
    /// The rooms' settings read at start, until [`Node::take_rooms`].
    rooms: Vec<crate::rooms::KeptRoom>,
    /// The server bans read at start, until [`Node::take_server_bans`].
    bans: Vec<crate::bans::KeptBan>,
}

/// What reading a room's log for history needs.
#[derive(Debug, Clone)]
struct History {
    js: jetstream::Context,
    prefix: String,
    wait: Duration,
    tx: mpsc::UnboundedSender<ClusterIn>,
    /// The followed rooms' chat lines, for search.
    index: SearchIndex,
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Node {
    /// Connects to NATS, makes sure JetStream and the buckets are there, and starts the node's
    /// tasks. Fails if no server answers or JetStream refuses.
    pub async fn start(cfg: ClusterConfig) -> Result<Node, ClusterError> {
        let id = node_id();
        let servers = cfg.servers.join(",");
        // Counts (re)connections: each room reader reads again from where it was after one.
        let (links, _) = watch::channel(0u64);
        let on_event = links.clone();
        let client = async_nats::ConnectOptions::new()
            .event_callback(move |ev| {
                if matches!(ev, async_nats::Event::Connected) {
                    on_event.send_modify(|n| *n += 1);
                }
                info!(event = %ev, "NATS");
                std::future::ready(())
            })
            .name(format!("natter-server {id}"))
            // Come back quickly after NATS does: writes are refused until then.
            .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(1_000)))
            .connect(cfg.servers.as_slice())
            .await
            .map_err(|source| ClusterError::Connect {
                servers: servers.clone(),
                source,
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(cfg.ack_timeout);
        let nicks = bucket(&js, &cfg, "nicks", Duration::ZERO).await?;
        let nodes = bucket(&js, &cfg, "nodes", cfg.lease).await?;
        let sessions = bucket(&js, &cfg, "sessions", cfg.session_ttl).await?;
        let accounts_kv = bucket(&js, &cfg, "accounts", Duration::ZERO).await?;
        let accounts_stream = format!("KV_{}_accounts", cfg.prefix);
        let (accounts, watch_from) =
            crate::accounts::load(&js, &accounts_stream, &accounts_kv, 5 * cfg.ack_timeout)
                .await
                .map_err(|why| ClusterError::JetStream {
                    what: "accounts",
                    why,
                })?;
        nodes
            .put(&id, Bytes::from_static(b"up"))
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "node lease",
                why: e.to_string(),
            })?;
        info!(node = %id, %servers, "joined the cluster");
        let (out, out_rx) = mpsc::unbounded_channel();
        let (in_tx, inbox) = mpsc::unbounded_channel();
        let logs = crate::search::Logs {
            js: js.clone(),
            prefix: cfg.prefix.clone(),
            wait: cfg.ack_timeout,
        };
        let index =
            SearchIndex::open(cfg.search_dir.as_deref(), logs).map_err(ClusterError::Index)?;
        let history = History {
            js: js.clone(),
            prefix: cfg.prefix.clone(),
            wait: cfg.ack_timeout,
            tx: in_tx.clone(),
            index: index.clone(),
        };
        // Ends when the driver (which holds the sender) does.
        let (sessions_tx, sessions_rx) = mpsc::unbounded_channel();
        tokio::spawn(keep_sessions(sessions.clone(), sessions_rx));
        let lease = tokio::spawn(keep_lease(
            nodes.clone(),
            id.clone(),
            cfg.lease,
            in_tx.clone(),
        ));
        let inbox_subject = node_subject(&cfg.prefix, &id);
        let requests =
            client
                .subscribe(inbox_subject)
                .await
                .map_err(|e| ClusterError::JetStream {
                    what: "node inbox",
                    why: e.to_string(),
                })?;
        let replies = Replies::default();
        let serve = tokio::spawn(serve_directs(requests, in_tx.clone(), replies.clone()));
        let pending = Arc::new(Pending::default());
        let refuse = in_tx.clone();
        let (accounts_tx, accounts_rx) = mpsc::unbounded_channel();
        // Ends when the driver (which holds the sender) does.
        tokio::spawn(crate::accounts::keep_accounts(
            accounts_kv.clone(),
            id.clone(),
            cfg.ack_timeout,
            accounts_rx,
            in_tx.clone(),
        ));
        let account_watch = tokio::spawn(crate::accounts::watch_accounts(
            accounts_kv,
            watch_from,
            in_tx.clone(),
            links.subscribe(),
        ));
        let rooms = crate::rooms::start(&js, &cfg, &id, in_tx.clone(), links.subscribe()).await?;
        let bans = crate::bans::start(&js, &cfg, &id, in_tx.clone(), links.subscribe()).await?;
        let users =
            crate::presence::start(&js, &cfg, &id, in_tx.clone(), links.subscribe()).await?;
        let driver = Driver {
            users_tx: users.writes,
            users: users.users,
            bans: bans.bans,
            bans_tx: bans.changes,
            rooms_tx: rooms.edits,
            accounts_tx,
            sessions,
            sessions_tx,
            cfg,
            id: id.clone(),
            client,
            js,
            nicks,
            nodes,
            rooms: HashMap::new(),
            tx: in_tx,
            links,
            replies,
            mine: Mine::default(),
            pending: pending.clone(),
            index,
        };
        let driver = tokio::spawn(driver.run(out_rx));
        Ok(Node {
            history,
            id,
            out,
            inbox,
            refuse,
            pending,
            tasks: vec![
                driver,
                lease,
                serve,
                account_watch,
                rooms.watch,
                bans.watch,
                users.watch,
            ],
            accounts,
            rooms: rooms.kept,
            bans: bans.kept,
        })
    }

    /// The server-wide bans the cluster held when this node started, with their revisions
    /// (once; empty after): hand each to [`Hub::handle_server_ban`] before serving anyone.
    /// Later changes come as [`ClusterIn::ServerBan`].
    pub fn take_server_bans(&mut self) -> Vec<crate::bans::KeptBan> {
        std::mem::take(&mut self.bans)
    }

    /// The rooms' settings the cluster held when this node started, with their revisions
    /// (once; empty after): hand each to [`Hub::handle_room`] before serving anyone. Later
    /// changes come as [`ClusterIn::Room`].
    pub fn take_rooms(&mut self) -> Vec<crate::rooms::KeptRoom> {
        std::mem::take(&mut self.rooms)
    }

    /// The accounts the cluster held when this node started, with their revisions (once;
    /// empty after): hand each to [`Hub::handle_account`] before serving anyone. Later changes
    /// come as [`ClusterIn::Account`] and [`ClusterIn::AccountDropped`].
    pub fn take_accounts(&mut self) -> Vec<(natter_core::persist::LoadedAccount, u64)> {
        std::mem::take(&mut self.accounts)
    }

    /// This node's id in the cluster (random per start).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Does what the hub asked, after everything asked before it. A publish past
    /// [`MAX_PENDING_PUBLISHES`] waiting for JetStream is refused at once (the hub hears
    /// [`ClusterIn::Failed`]); [`Node::backed_up`] says when to stop taking input before that.
    pub fn send(&self, out: ClusterOut) {
        if let ClusterOut::Publish { id, .. } = &out
            && !self.pending.take()
        {
            let why = "the cluster is busy (too many messages wait for it)".to_owned();
            let _ = self.refuse.send(ClusterIn::Failed { id: *id, why });
            return;
        }
        if self.out.send(out).is_err() {
            warn!("the cluster driver stopped");
        }
    }

    /// Whether so many publishes wait for JetStream that the shell should stop reading its
    /// sockets (see [`Node::unblocked`]).
    pub fn backed_up(&self) -> bool {
        self.pending.backed_up()
    }

    /// A future that ends once [`Node::backed_up`] is false (at once if it is); it holds no
    /// borrow of the node.
    pub fn unblocked(&self) -> impl Future<Output = ()> + Send + 'static {
        let pending = self.pending.clone();
        async move {
            while pending.backed_up() {
                pending.unblocked.notified().await;
            }
        }
    }

    /// What the cluster has for the hub next; `None` once the driver stopped.
    pub async fn next(&mut self) -> Option<ClusterIn> {
        self.inbox.recv().await
    }

    /// What the cluster has for the hub now, without waiting.
    pub fn try_next(&mut self) -> Option<ClusterIn> {
        self.inbox.try_recv().ok()
    }

    /// Answers the hub's read `q` (see [`Hub::poll_query`]) aside, as [`ClusterIn::Answer`]: a
    /// history page from the room's log, a search from this node's index of the followed
    /// rooms' logs (`search.rs`).
    pub fn query(&self, id: QueryId, q: Query) {
        let h = self.history.clone();
        tokio::spawn(async move {
            let answer = match q {
                Query::History(q) => Answer::History(read_history(&h, &q).await),
                Query::Search(q) => Answer::Search(h.index.search(q).await),
            };
            let _ = h.tx.send(ClusterIn::Answer { id, answer });
        });
    }
}

/// A random id for this node's run.
fn node_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    format!("{:016x}", h.finish())
}

/// The bucket `<prefix>_<name>`, made if missing; `max_age` zero: entries never expire. Its
/// stream is made here as a KV bucket's is (`KV_<bucket>`, one value per key): async-nats's own
/// `create_key_value` asks for account details that nats-server 2.9 (Debian's) words
/// differently.
pub(crate) async fn bucket(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    let bucket = format!("{}_{name}", cfg.prefix);
    let failed = |e: &dyn std::fmt::Display| ClusterError::JetStream {
        what: "key-value bucket",
        why: e.to_string(),
    };
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| failed(&e))?;
    js.get_key_value(&bucket).await.map_err(|e| failed(&e))
}

/// Refreshes this node's lease every third of it, and tells the hub which nodes are alive: every
/// node listed in the last lease. Only once refreshes and listings have worked for a whole lease
/// (after a start, or after NATS was away): a node that came back with NATS has had time to
/// refresh its lease by then, and is not taken for gone.
async fn keep_lease(
    nodes: kv::Store,
    id: String,
    lease: Duration,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    let mut healthy_since: Option<tokio::time::Instant> = None;
    let mut seen: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        tokio::time::sleep(lease / 3).await;
        if let Err(e) = nodes.put(&id, Bytes::from_static(b"up")).await {
            warn!(error = %e, "node lease not refreshed");
            healthy_since = None;
            continue;
        }
        match alive_nodes(&nodes).await {
            Ok(alive) => {
                let now = tokio::time::Instant::now();
                let since = *healthy_since.get_or_insert(now);
                for n in alive {
                    seen.insert(n, now);
                }
                seen.retain(|_, at| now.duration_since(*at) <= lease);
                if now.duration_since(since) < lease {
                    continue;
                }
                let alive = seen.keys().cloned().collect();
                if tx.send(ClusterIn::Nodes(alive)).is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(error = %e, "node leases not read");
                healthy_since = None;
            }
        }
    }
}

/// Whether this node does the reap named `key`: it creates the reaper's entry, or the entry is
/// its own (an earlier try of its own stopped half way), or it takes the entry over,
/// compare-and-swap, from a reaper whose own lease ran out (it died before it finished: the
/// hub hands a reap out again while its members are still listed).
async fn claim_reap(
    nicks_kv: &kv::Store,
    nodes_kv: &kv::Store,
    key: &str,
    me: &str,
) -> Result<bool, String> {
    match nicks_kv.create(key, Bytes::from(me.to_owned())).await {
        Ok(_) => return Ok(true),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.to_string()),
    }
    let Some(entry) = nicks_kv.entry(key).await.map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    let reaper = String::from_utf8_lossy(&entry.value).into_owned();
    if reaper == me {
        return Ok(true);
    }
    if alive_nodes(nodes_kv).await?.contains(&reaper) {
        return Ok(false);
    }
    match nicks_kv
        .update(key, Bytes::from(me.to_owned()), entry.revision)
        .await
    {
        Ok(_) => {
            info!(%reaper, key, "a reap its node did not finish is taken over");
            Ok(true)
        }
        // Another node took it over first.
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// The nodes whose lease is alive.
async fn alive_nodes(nodes: &kv::Store) -> Result<Vec<String>, String> {
    let mut keys = nodes.keys().await.map_err(|e| e.to_string())?;
    let mut alive = Vec::new();
    while let Some(k) = keys.next().await {
        alive.push(k.map_err(|e| e.to_string())?);
    }
    Ok(alive)
}

/// Publishes a `Quit` in `room` for each of `nicks`, members on `node`, whose lease ran out:
/// unless another node does it (a KV `create` decides who; see [`claim_reap`]).
#[allow(clippy::too_many_arguments)]
async fn reap(
    js: &jetstream::Context,
    nicks_kv: &kv::Store,
    nodes_kv: &kv::Store,
    prefix: &str,
    me: &str,
    node: &str,
    room: &RoomName,
    nicks: Vec<Nick>,
) -> Result<(), String> {
    let key = format!("reap_{node}_{}", room_stream(prefix, room));
    if !claim_reap(nicks_kv, nodes_kv, &key, me).await? {
        return Ok(());
    }
    info!(%node, %room, members = nicks.len(), "reaping the members of a node that is gone");
    let reason = natter_core::Text::new("lost with their server").ok();
    for nick in nicks {
        if !reap_nick(nicks_kv, node, &nick).await? {
            debug!(%nick, %node, "not reaped: its session went on on another node");
            continue;
        }
        let event = RoomEvent {
            room: room.clone(),
            seq: Seq(0),
            at: now_millis(),
            from: nick,
            kind: natter_core::wire::EventKind::Quit {
                reason: reason.clone(),
            },
        };
        let payload = encode_payload(&event).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, me);
        headers.insert(FOR_HEADER, node);
        js.publish_with_headers(room_subject(prefix, room), headers, payload)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Whether `nick`, a member on `node` (whose lease ran out), is to be reaped: not if another
/// node holds the nick now (its session was taken over there: it moved, it did not quit). A
/// nick still `node`'s is deleted (compare-and-swap on its revision) before its quit is
/// published, so a take-over and a reap of the same member cannot both happen unseen: the one
/// that comes second sees the other's write (a take-over then finds the nick free, and joins
/// the rooms again visibly, after the quits). A nick nobody holds (another room's reaper
/// deleted it) is reaped.
async fn reap_nick(nicks_kv: &kv::Store, node: &str, nick: &Nick) -> Result<bool, String> {
    let key = nick_key(nick);
    // A failed delete is read again: the nick may have been forgotten (`presence::forget`)
    // rather than taken over in between.
    for _ in 0..3 {
        let entry = nicks_kv
            .entry(key.clone())
            .await
            .map_err(|e| e.to_string())?;
        match entry.filter(|e| e.operation == kv::Operation::Put) {
            None => return Ok(true),
            Some(e) if e.value.as_ref() != node.as_bytes() => return Ok(false),
            Some(e) => {
                let deleted = nicks_kv.delete_expect_revision(&key, Some(e.revision));
                if deleted.await.is_ok() {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Unix milliseconds now.
fn now_millis() -> Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

struct Driver {
    /// Edits of rooms' settings, done in order by the rooms' task (`rooms.rs`).
    rooms_tx: mpsc::UnboundedSender<(RoomName, natter_core::moderation::PolicyEdit)>,
    /// Users' records, written in order by the users' task (`presence.rs`).
    users_tx: mpsc::UnboundedSender<(Nick, Option<natter_core::hub::Presence>)>,
    /// The users' bucket, to forget a dead node's (`presence.rs`).
    users: kv::Store,
    /// The server bans' bucket, to remove those that ran out (`bans.rs`).
    bans: kv::Store,
    /// Server bans and lifts, written in order by the bans' task (`bans.rs`).
    bans_tx: mpsc::UnboundedSender<(
        natter_core::moderation::Mask,
        Option<natter_core::moderation::Entry>,
    )>,
    /// Account creates and writes, done in order by [`crate::accounts::keep_accounts`].
    accounts_tx: mpsc::UnboundedSender<crate::accounts::AccountOp>,
    /// Resume sessions' records, by token id.
    sessions: kv::Store,
    /// Writes of session records, done in order by [`keep_sessions`].
    sessions_tx: mpsc::UnboundedSender<SessionWrite>,
    cfg: ClusterConfig,
    id: String,
    client: async_nats::Client,
    js: jetstream::Context,
    nicks: kv::Store,
    nodes: kv::Store,
    /// Rooms followed, each by its reader task and the subject its events are published on
    /// (made once: a subject per publish cost a node ~2 % of its CPU in `hex` and `format!`).
    rooms: HashMap<RoomName, (JoinHandle<()>, async_nats::Subject)>,
    tx: mpsc::UnboundedSender<ClusterIn>,
    /// Bumped at each (re)connection to NATS.
    links: watch::Sender<u64>,
    /// Where to answer direct messages other nodes asked this one to deliver.
    replies: Replies,
    /// This node's publishes not seen back in the log yet.
    mine: Mine,
    pending: Arc<Pending>,
    /// The followed rooms' chat lines, for search.
    index: SearchIndex,
}

/// This node's publishes not yet read back from their room's log: the log handing an event
/// back is its acknowledgement (JetStream stored it, and it is in the room's order), so a
/// publish needs no reply of its own, and an event needs no headers naming its node. An event
/// read back is recognised by its bytes: nicks are one node's each, so no other node publishes
/// the same bytes, and this node's publishes in a room are stored in the order sent (one
/// connection), so of identical ones the first stored is the first sent.
#[derive(Debug, Clone, Default)]
struct Mine(Arc<std::sync::Mutex<MineInner>>);

#[derive(Debug, Default)]
struct MineInner {
    /// Per room, per encoded event: the hub's numbers waiting for it, oldest first.
    events: HashMap<RoomName, HashMap<Bytes, VecDeque<u64>>>,
    /// Every publish waiting, in the order sent, with its deadline.
    order: VecDeque<(Instant, u64, RoomName, Bytes)>,
    /// How many wait (`order` may also hold some already read back).
    waiting: usize,
}

impl Mine {
    fn lock(&self) -> std::sync::MutexGuard<'_, MineInner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, room: &RoomName, event: Bytes, id: u64, deadline: Instant) {
        let mut m = self.lock();
        m.events
            .entry(room.clone())
            .or_default()
            .entry(event.clone())
            .or_default()
            .push_back(id);
        m.order.push_back((deadline, id, room.clone(), event));
        m.waiting += 1;
    }

    /// The hub's number for `event`, read back from `room`'s log, if this node sent it and
    /// still waits for it.
    fn take(&self, room: &RoomName, event: &[u8]) -> Option<u64> {
        let mut m = self.lock();
        let m = &mut *m;
        let in_room = m.events.get_mut(room)?;
        let ids = in_room.get_mut(event)?;
        let id = ids.pop_front()?;
        if ids.is_empty() {
            in_room.remove(event);
        }
        m.waiting -= 1;
        // Read back mostly in the order sent: keep the front of `order` one still waiting.
        while let Some((_, front, r, e)) = m.order.front() {
            let still = m
                .events
                .get(r)
                .and_then(|r| r.get(e))
                .is_some_and(|ids| ids.contains(front));
            if still {
                break;
            }
            m.order.pop_front();
        }
        Some(id)
    }

    /// Forgets `id` (its publish failed before it was sent).
    fn forget(&self, room: &RoomName, event: &[u8], id: u64) {
        let mut m = self.lock();
        if let Some(ids) = m.events.get_mut(room).and_then(|r| r.get_mut(event))
            && let Some(at) = ids.iter().position(|i| *i == id)
        {
            ids.remove(at);
            m.waiting -= 1;
        }
    }

    /// The earliest deadline of a publish that may still wait.
    fn next_deadline(&self) -> Option<Instant> {
        self.lock().order.front().map(|(d, ..)| *d)
    }

    /// Removes and returns the publishes still waiting whose deadline is past.
    fn expired(&self, now: Instant) -> Vec<u64> {
        let mut m = self.lock();
        let m = &mut *m;
        let mut out = Vec::new();
        while let Some((d, ..)) = m.order.front() {
            if *d > now {
                break;
            }
            let Some((_, id, room, event)) = m.order.pop_front() else {
                break;
            };
            let Some(in_room) = m.events.get_mut(&room) else {
                continue;
            };
            let Some(ids) = in_room.get_mut(&event) else {
                continue;
            };
            if let Some(at) = ids.iter().position(|i| *i == id) {
                ids.remove(at);
                m.waiting -= 1;
                out.push(id);
            }
            if ids.is_empty() {
                in_room.remove(&event);
            }
        }
        out
    }
}

/// Reply subjects of direct messages handed to the hub, by token.
#[derive(Debug, Clone, Default)]
struct Replies(std::sync::Arc<std::sync::Mutex<(u64, HashMap<u64, async_nats::Subject>)>>);

impl Replies {
    fn add(&self, reply: async_nats::Subject) -> u64 {
        let mut r = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.0 += 1;
        let token = r.0;
        r.1.insert(token, reply);
        token
    }

    fn take(&self, token: u64) -> Option<async_nats::Subject> {
        let mut r = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.1.remove(&token)
    }
}

/// The subject a node's direct messages come to.
fn node_subject(prefix: &str, node: &str) -> String {
    format!("{prefix}.node.{node}")
}

/// Hands direct messages other nodes send here to the hub.
async fn serve_directs(
    mut requests: async_nats::Subscriber,
    tx: mpsc::UnboundedSender<ClusterIn>,
    replies: Replies,
) {
    while let Some(m) = requests.next().await {
        let Some(reply) = m.reply else {
            continue;
        };
        let dm = match decode_payload::<DirectMsg>(&m.payload) {
            Ok(dm) => dm,
            Err(e) => {
                warn!(error = %e, "direct message not understood; dropped");
                continue;
            }
        };
        let token = replies.add(reply);
        if tx.send(ClusterIn::RemoteDirect { token, dm }).is_err() {
            return;
        }
    }
}

/// Asks the node holding `dm.to` to deliver it: `Err` says why not, in words for people.
async fn send_direct(
    client: &async_nats::Client,
    nicks: &kv::Store,
    prefix: &str,
    wait: Duration,
    dm: &DirectMsg,
) -> Result<(), String> {
    let nobody = || format!("nobody is called {}", dm.to);
    let unavailable = |e: &dyn std::fmt::Display| format!("the cluster is unavailable ({e})");
    let entry = nicks
        .entry(nick_key(&dm.to))
        .await
        .map_err(|e| unavailable(&e))?
        .filter(|e| e.operation == kv::Operation::Put)
        .ok_or_else(nobody)?;
    let holder = String::from_utf8_lossy(&entry.value).into_owned();
    let payload = encode_payload(dm).map_err(|e| e.to_string())?;
    let asked = client.request(node_subject(prefix, &holder), payload);
    let answer = tokio::time::timeout(wait, asked)
        .await
        .map_err(|_| unavailable(&"the node holding the nick did not answer"))?
        .map_err(|_| nobody())?;
    if answer.payload.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&answer.payload).into_owned())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for (t, _) in self.rooms.values() {
            t.abort();
        }
    }
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ClusterOut>) {
        let far = || Instant::now() + Duration::from_secs(86_400);
        loop {
            let deadline = self.mine.next_deadline();
            let out = tokio::select! {
                out = rx.recv() => match out {
                    Some(out) => out,
                    None => return,
                },
                () = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                    for id in self.mine.expired(Instant::now()) {
                        self.pending.done();
                        let why = "the cluster did not store it (no acknowledgement in time)".into();
                        let _ = self.tx.send(ClusterIn::Failed { id, why });
                    }
                    continue;
                }
            };
            match out {
                ClusterOut::Follow(room) => {
                    if let Err(why) = self.follow(&room).await {
                        // The next publish in the room tries again.
                        warn!(%room, %why, "room not followed");
                    }
                }
                ClusterOut::Unfollow(room) => {
                    if let Some((t, _)) = self.rooms.remove(&room) {
                        t.abort();
                        debug!(%room, "room no longer followed");
                    }
                }
                ClusterOut::Publish { id, event } => {
                    if let Err(why) = self.publish(id, event).await {
                        self.pending.done();
                        let _ = self.tx.send(ClusterIn::Failed { id, why });
                    }
                }
                ClusterOut::Claim { id, nick } => {
                    let (nicks, nodes, me, tx) = (
                        self.nicks.clone(),
                        self.nodes.clone(),
                        self.id.clone(),
                        self.tx.clone(),
                    );
                    let connected = self.client.connection_state() == State::Connected;
                    tokio::spawn(async move {
                        let answer = match connected {
                            true => claim(&nicks, &nodes, &me, &nick).await,
                            false => Err("no NATS server answers".into()),
                        };
                        let _ = tx.send(match answer {
                            Ok(granted) => {
                                debug!(%nick, granted, "nick claim");
                                ClusterIn::Claimed { id, granted }
                            }
                            Err(e) => {
                                warn!(%nick, error = %e, "nick claim failed");
                                let why = format!("the cluster is unavailable ({e})");
                                ClusterIn::ClaimFailed { id, why }
                            }
                        });
                    });
                }
                ClusterOut::Direct { id, dm } => {
                    let (client, nicks, tx) =
                        (self.client.clone(), self.nicks.clone(), self.tx.clone());
                    let (prefix, wait) = (self.cfg.prefix.clone(), self.cfg.ack_timeout);
                    tokio::spawn(async move {
                        let result = send_direct(&client, &nicks, &prefix, wait, &dm).await;
                        let _ = tx.send(ClusterIn::DirectDone { id, result });
                    });
                }
                ClusterOut::Delivered { token, result } => {
                    let Some(reply) = self.replies.take(token) else {
                        continue;
                    };
                    let payload = match result {
                        Ok(()) => Bytes::new(),
                        Err(why) => Bytes::from(why),
                    };
                    if let Err(e) = self.client.publish(reply, payload).await {
                        debug!(error = %e, "direct message answer not sent");
                    }
                }
                ClusterOut::Reap { node, room, nicks } => {
                    let (js, kv, me) = (self.js.clone(), self.nicks.clone(), self.id.clone());
                    let (nodes, prefix) = (self.nodes.clone(), self.cfg.prefix.clone());
                    tokio::spawn(async move {
                        let reaped = reap(&js, &kv, &nodes, &prefix, &me, &node, &room, nicks);
                        if let Err(why) = reaped.await {
                            warn!(%node, %room, %why, "members of a node that is gone not reaped");
                        }
                    });
                }
                ClusterOut::Session(record) => {
                    let key = session_key(record.token_id);
                    match encode_session(&record, &self.id) {
                        Ok(value) => {
                            let _ = self.sessions_tx.send(SessionWrite::Put(key, value));
                        }
                        Err(why) => warn!(%why, "session record not encoded"),
                    }
                }
                ClusterOut::EndSession(token_id) => {
                    let _ = self
                        .sessions_tx
                        .send(SessionWrite::Delete(session_key(token_id)));
                }
                ClusterOut::FindSession { id, token_id } => {
                    let (sessions, tx) = (self.sessions.clone(), self.tx.clone());
                    tokio::spawn(async move {
                        let record = match sessions.get(session_key(token_id)).await {
                            Ok(Some(value)) => decode_session(&value)
                                .map_err(|why| warn!(%why, "session record not understood"))
                                .ok(),
                            Ok(None) => None,
                            Err(e) => {
                                warn!(error = %e, "session record not read");
                                None
                            }
                        };
                        let _ = tx.send(ClusterIn::Session { id, record });
                    });
                }
                ClusterOut::TakeOver { id, nick } => {
                    let (nicks, me, tx) = (self.nicks.clone(), self.id.clone(), self.tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(match take_over(&nicks, &me, &nick).await {
                            Ok((granted, moved)) => ClusterIn::TakenOver { id, granted, moved },
                            Err(e) => {
                                warn!(%nick, error = %e, "nick not taken over");
                                let why = format!("the cluster is unavailable ({e})");
                                ClusterIn::ClaimFailed { id, why }
                            }
                        });
                    });
                }
                ClusterOut::Release(nick) => {
                    let (nicks, me) = (self.nicks.clone(), self.id.clone());
                    tokio::spawn(async move {
                        if let Err(why) = release(&nicks, &me, &nick).await {
                            warn!(%nick, %why, "nick not released");
                        }
                    });
                }
                ClusterOut::CreateAccount { id, record } => {
                    if self.client.connection_state() != State::Connected {
                        let result =
                            Err("the cluster is unavailable (no NATS server answers)".into());
                        let _ = self.tx.send(ClusterIn::AccountCreated { id, result });
                        continue;
                    }
                    let op = crate::accounts::AccountOp::Create { id, record };
                    let _ = self.accounts_tx.send(op);
                }
                ClusterOut::AccountWrite { account, write } => {
                    let op = crate::accounts::AccountOp::Write { account, write };
                    let _ = self.accounts_tx.send(op);
                }
                ClusterOut::RoomEdit { room, edit } => {
                    let _ = self.rooms_tx.send((room, edit));
                }
                ClusterOut::ServerBan { mask, ban } => {
                    let _ = self.bans_tx.send((mask, ban));
                }
                ClusterOut::Presence { nick, presence } => {
                    let _ = self.users_tx.send((nick, presence));
                }
                ClusterOut::ExpireServerBan { mask, revision } => {
                    let bans = self.bans.clone();
                    tokio::spawn(async move {
                        match crate::bans::expire(&bans, &mask, revision).await {
                            Ok(removed) => debug!(%mask, removed, "server ban ran out"),
                            // The hub asks again while it is kept.
                            Err(why) => warn!(%mask, %why, "server ban that ran out not removed"),
                        }
                    });
                }
                ClusterOut::Forget { node, nicks } => {
                    let (users, kv) = (self.users.clone(), self.nicks.clone());
                    tokio::spawn(async move {
                        match crate::presence::forget(&users, &kv, &node, &nicks).await {
                            Ok(()) => {
                                info!(%node, users = nicks.len(), "a gone node's users forgotten")
                            }
                            // The hub asks again while the records are kept.
                            Err(why) => warn!(%node, %why, "a gone node's users not forgotten"),
                        }
                    });
                }
            }
        }
    }

    /// Starts reading `room`'s stream (made if missing) from its recent events on; the subject
    /// its events are published on.
    async fn follow(&mut self, room: &RoomName) -> Result<async_nats::Subject, String> {
        if let Some((_, subject)) = self.rooms.get(room) {
            return Ok(subject.clone());
        }
        let name = room_stream(&self.cfg.prefix, room);
        let mut stream = self
            .js
            .get_or_create_stream(stream::Config {
                name,
                subjects: vec![room_subject(&self.cfg.prefix, room)],
                num_replicas: self.cfg.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("the room's stream is unavailable ({e})"))?;
        let state = stream
            .info()
            .await
            .map_err(|e| format!("the room's stream is unavailable ({e})"))?
            .state
            .clone();
        let start = state.last_sequence.saturating_sub(self.cfg.recent as u64) + 1;
        // Who is in the room is read from its first event on (see `ClusterIn::Past`).
        let first = state.first_sequence.max(1);
        let mut reader = RoomReader {
            room: room.clone(),
            stream,
            next: first,
            delivered: 0,
            heard: true,
            recent_from: start,
            mine: self.mine.clone(),
            client: self.client.clone(),
            pending: self.pending.clone(),
            tx: self.tx.clone(),
            links: self.links.subscribe(),
            last_node: std::sync::Arc::from(""),
            index: self.index.clone(),
        };
        // The first read is made here, so a failure is the follow's.
        let messages = reader.messages().await?;
        let task = tokio::spawn(reader.run(messages));
        debug!(%room, from = start, "following room");
        let subject = async_nats::Subject::from(room_subject(&self.cfg.prefix, room));
        self.rooms.insert(room.clone(), (task, subject.clone()));
        Ok(subject)
    }

    /// Sends `event` to its room's stream. Its acknowledgement is the room's reader handing it
    /// back from the log ([`Mine`]); past the deadline without that it is refused.
    async fn publish(&mut self, id: u64, event: RoomEvent) -> Result<(), String> {
        if self.client.connection_state() != State::Connected {
            return Err("the cluster is unavailable (no NATS server answers)".into());
        }
        let subject = self.follow(&event.room).await?;
        let payload = encode_payload(&event).map_err(|e| e.to_string())?;
        // Before the send: the reader may see it back before this task runs again.
        let deadline = Instant::now() + self.cfg.ack_timeout;
        self.mine.add(&event.room, payload.clone(), id, deadline);
        let sent = if is_membership(&event.kind) {
            let mut headers = HeaderMap::new();
            headers.insert(NODE_HEADER, self.id.as_str());
            self.client
                .publish_with_headers(subject, headers, payload.clone())
                .await
        } else if let Some(line) = self
            .cfg
            .line_ids
            .then(|| crate::line_id::line_id(&event))
            .flatten()
        {
            // JetStream stores a line once, whichever node's copy comes first (`line_id.rs`).
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, line.as_str());
            self.client
                .publish_with_headers(subject, headers, payload.clone())
                .await
        } else {
            self.client.publish(subject, payload.clone()).await
        };
        if let Err(e) = sent {
            self.mine.forget(&event.room, &payload, id);
            return Err(format!("the cluster is unavailable ({e})"));
        }
        Ok(())
    }
}

/// Hands a room's events to the hub in the stream's order, with the stream's seq. After NATS
/// comes back (a new connection) it reads again from the event after the last one handed over:
/// JetStream's consumers do not outlive a restarted server.
struct RoomReader {
    room: RoomName,
    stream: stream::Stream,
    /// For the push consumer's delivery subject.
    client: async_nats::Client,
    /// The seq of the next event to hand over.
    next: u64,
    /// The consumer's sequence of the last delivery read (a gap: read again from `next`).
    delivered: u64,
    /// Whether anything came since the last look (no idle heartbeat for a while: read again).
    heard: bool,
    /// Events before this one are read for who is in the room only.
    recent_from: u64,
    mine: Mine,
    pending: Arc<Pending>,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
    /// The node the last event was about, shared with the events about it.
    last_node: std::sync::Arc<str>,
    /// Where every chat line read goes, for search (before the hub hears of it).
    index: SearchIndex,
}

impl RoomReader {
    /// A push consumer from `next` (ephemeral, unacknowledged, with flow control and idle
    /// heartbeats: JetStream sends each event as it stores it), read through a plain
    /// subscription that this reader keeps in order itself: async-nats's ordered consumer arms
    /// a timer, clones its context and parses the delivery's subject twice per event.
    async fn messages(&mut self) -> Result<async_nats::Subscriber, String> {
        let cannot = |e: &dyn std::fmt::Display| format!("the room cannot be read ({e})");
        let subject = self.client.new_inbox();
        // Subscribed first: the consumer sends as soon as it is made.
        let sub = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| cannot(&e))?;
        self.stream
            .create_consumer(consumer::push::Config {
                deliver_subject: subject,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: self.next,
                },
                ack_policy: consumer::AckPolicy::None,
                max_deliver: 1,
                flow_control: true,
                idle_heartbeat: HEARTBEAT,
                inactive_threshold: Duration::from_secs(30),
                num_replicas: 1,
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| cannot(&e))?;
        self.delivered = 0;
        self.heard = true;
        Ok(sub)
    }

    async fn run(mut self, mut messages: async_nats::Subscriber) {
        self.links.mark_unchanged();
        let mut look = tokio::time::interval(2 * HEARTBEAT);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        look.reset();
        loop {
            tokio::select! {
                m = messages.next() => match m.map(|m| self.take(m)) {
                    Some(Take::Next) => continue,
                    Some(Take::Stop) => return,
                    Some(Take::Answer(reply)) => {
                        // Flow control: JetStream sends more once answered.
                        if let Err(e) = self.client.publish(reply, Bytes::new()).await {
                            debug!(room = %self.room, error = %e, "flow control not answered");
                        }
                        continue;
                    }
                    Some(Take::Again) => {
                        debug!(room = %self.room, from = self.next, "room reader missed a delivery");
                    }
                    // The subscription ended.
                    None => {}
                },
                changed = self.links.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = look.tick() => {
                    if std::mem::take(&mut self.heard) {
                        continue;
                    }
                    debug!(room = %self.room, "room reader heard nothing for two heartbeats");
                }
            }
            // The connection came back, a delivery was missed, nothing came for too long (or
            // the read ended): read again from `next`.
            messages = loop {
                match self.messages().await {
                    Ok(m) => break m,
                    Err(why) => {
                        debug!(room = %self.room, %why, "room reader waits for NATS");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            };
            look.reset();
            debug!(room = %self.room, from = self.next, "room reader reads again");
        }
    }

    /// What to do with one message of the consumer.
    fn take(&mut self, m: async_nats::Message) -> Take {
        self.heard = true;
        if let Some(status) = m.status {
            if status != async_nats::StatusCode::IDLE_HEARTBEAT {
                debug!(room = %self.room, %status, "room reader");
                return Take::Next;
            }
            // An idle heartbeat says which delivery was the last; a flow control asks for an
            // answer.
            let last = m
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_LAST_CONSUMER))
                .and_then(|v| v.as_str().parse::<u64>().ok());
            if last.is_some_and(|last| last != self.delivered) {
                return Take::Again;
            }
            return m.reply.map_or(Take::Next, Take::Answer);
        }
        let Some((seq, delivered)) = m.reply.as_deref().and_then(delivery_seqs) else {
            return Take::Next;
        };
        if delivered != self.delivered + 1 {
            return Take::Again;
        }
        self.delivered = delivered;
        if self.hand_over(seq, &m) {
            Take::Next
        } else {
            Take::Stop
        }
    }

    /// Hands over the event of stream seq `seq`; false once the hub side is gone.
    fn hand_over(&mut self, seq: u64, m: &async_nats::Message) -> bool {
        if seq < self.next {
            return true;
        }
        self.next = seq + 1;
        let mut event = match decode_payload::<RoomEvent>(&m.payload) {
            Ok(ev) => ev,
            Err(e) => {
                warn!(room = %self.room, seq, error = %e, "room event not understood; skipped");
                return true;
            }
        };
        event.room = self.room.clone();
        event.seq = Seq(seq);
        self.index.add(&event);
        let headers = m.headers.as_ref();
        // Only membership events name a node; the others keep the last one named (unused).
        if let Some(node_now) = headers
            .and_then(|h| h.get(FOR_HEADER).or_else(|| h.get(NODE_HEADER)))
            .map(|n| n.as_str())
            && *self.last_node != *node_now
        {
            self.last_node = std::sync::Arc::from(node_now);
        }
        let node = self.last_node.clone();
        if seq < self.recent_from {
            return !is_membership(&event.kind)
                || self.tx.send(ClusterIn::Past { event, node }).is_ok();
        }
        let origin = self.mine.take(&self.room, &m.payload);
        if origin.is_some() {
            self.pending.done();
        }
        self.tx
            .send(ClusterIn::Remote {
                event,
                origin,
                node,
            })
            .is_ok()
    }
}

/// What a room reader does after a message of its consumer.
enum Take {
    /// Reads the next.
    Next,
    /// Stops: the hub side is gone.
    Stop,
    /// Answers this flow control request.
    Answer(async_nats::Subject),
    /// Reads again from the next event to hand over: a delivery was missed.
    Again,
}

/// How often a room's consumer says it is alive when it has nothing to send.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The stream's and the consumer's sequence of a JetStream delivery, from its reply subject
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or
/// with a domain and an account hash before the stream, and a token after).
fn delivery_seqs(reply: &str) -> Option<(u64, u64)> {
    let rest = reply.strip_prefix("$JS.ACK.")?;
    let mut tokens = [""; 12];
    let mut n = 0;
    for t in rest.split('.') {
        *tokens.get_mut(n)? = t;
        n += 1;
    }
    let (stream, consumer) = match n {
        7 => (tokens[3], tokens[4]),
        9.. => (tokens[5], tokens[6]),
        _ => return None,
    };
    Some((stream.parse().ok()?, consumer.parse().ok()?))
}

/// Whether `kind` changes who is in a room: such events name their node (member lists count
/// each member on its node).
fn is_membership(kind: &natter_core::wire::EventKind) -> bool {
    use natter_core::wire::EventKind as K;
    matches!(
        kind,
        K::Join | K::Part { .. } | K::Quit { .. } | K::Kick { .. } | K::Nick { .. } | K::Moved
    )
}

/// Claims `nick` for node `me`: created if nobody holds it; ours already; or taken over from a
/// node whose lease ran out (compare-and-swap on the revision read).
async fn claim(
    nicks: &kv::Store,
    nodes: &kv::Store,
    me: &str,
    nick: &Nick,
) -> Result<bool, String> {
    let key = nick_key(nick);
    let mut tries = 0;
    let entry = loop {
        match nicks.create(&key, Bytes::from(me.to_owned())).await {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
        let Some(entry) = nicks.entry(key.clone()).await.map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        // Released (or forgotten) between the create and the read: create it again.
        if entry.operation == kv::Operation::Put {
            break entry;
        }
        tries += 1;
        if tries == 3 {
            return Ok(false);
        }
    };
    let holder = String::from_utf8_lossy(&entry.value).into_owned();
    if holder == me {
        return Ok(true);
    }
    let alive = nodes
        .get(holder.clone())
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if alive {
        return Ok(false);
    }
    info!(%nick, %holder, "taking over a nick from a node whose lease ran out");
    Ok(nicks
        .update(&key, Bytes::from(me.to_owned()), entry.revision)
        .await
        .is_ok())
}

/// Releases `nick` if node `me` holds it.
async fn release(nicks: &kv::Store, me: &str, nick: &Nick) -> Result<(), String> {
    let key = nick_key(nick);
    let Some(entry) = nicks.entry(key.clone()).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if entry.operation != kv::Operation::Put || entry.value.as_ref() != me.as_bytes() {
        return Ok(());
    }
    nicks
        .delete_expect_revision(&key, Some(entry.revision))
        .await
        .map_err(|e| e.to_string())
}

/// A write of a session record.
enum SessionWrite {
    Put(String, Bytes),
    Delete(String),
}

/// Writes session records in the order they were asked for.
async fn keep_sessions(sessions: kv::Store, mut rx: mpsc::UnboundedReceiver<SessionWrite>) {
    while let Some(w) = rx.recv().await {
        let done = match w {
            SessionWrite::Put(key, value) => sessions
                .put(key, value)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            SessionWrite::Delete(key) => sessions.purge(key).await.map_err(|e| e.to_string()),
        };
        if let Err(e) = done {
            warn!(error = %e, "session record not written");
        }
    }
}

/// The KV key of the session with token id `token_id`.
fn session_key(token_id: u64) -> String {
    format!("{token_id:016x}")
}

/// A session record as the cluster keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSession {
    token: [u8; 32],
    token_id: u64,
    nick: Nick,
    rooms: Vec<RoomName>,
    last_id: natter_core::MsgId,
    updated: Millis,
    /// The node that wrote it.
    node: String,
}

fn encode_session(r: &SessionRecord, node: &str) -> Result<Bytes, String> {
    let stored = StoredSession {
        token: r.token.0,
        token_id: r.token_id,
        nick: r.nick.clone(),
        rooms: r.rooms.clone(),
        last_id: r.last_id,
        updated: r.updated,
        node: node.to_owned(),
    };
    bincode::serde::encode_to_vec(&stored, bincode::config::standard())
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

fn decode_session(value: &[u8]) -> Result<SessionRecord, String> {
    let (s, _): (StoredSession, usize) =
        bincode::serde::decode_from_slice(value, bincode::config::standard())
            .map_err(|e| e.to_string())?;
    Ok(SessionRecord {
        token: TokenHash(s.token),
        token_id: s.token_id,
        nick: s.nick,
        rooms: s.rooms,
        last_id: s.last_id,
        updated: s.updated,
    })
}

/// Takes `nick` for node `me` whoever holds it (the hub proved the session holding it is the
/// resuming client's): created if free, else replaced (compare-and-swap on the revision read).
/// `(granted, moved)`: `moved` if the nick was taken from a node (the session moves silently),
/// not if it was free (a reaper took the session's members out of their rooms first: see
/// [`reap`], which deletes the nick, compare-and-swap, before it publishes their quits).
async fn take_over(nicks: &kv::Store, me: &str, nick: &Nick) -> Result<(bool, bool), String> {
    let key = nick_key(nick);
    for _ in 0..3 {
        let entry = nicks.entry(key.clone()).await.map_err(|e| e.to_string())?;
        let done = match entry.filter(|e| e.operation == kv::Operation::Put) {
            Some(e) if e.value.as_ref() == me.as_bytes() => return Ok((true, true)),
            Some(e) => nicks
                .update(&key, Bytes::from(me.to_owned()), e.revision)
                .await
                .is_ok()
                .then_some(true),
            None => nicks
                .create(&key, Bytes::from(me.to_owned()))
                .await
                .is_ok()
                .then_some(false),
        };
        if let Some(moved) = done {
            return Ok((true, moved));
        }
    }
    Ok((false, false))
}

/// The newest `q.limit` events of `q.room`'s log with a seq below `q.before`, oldest first.
async fn read_history(h: &History, q: &HistoryQuery) -> Result<HistoryPage, String> {
    let unavailable = |e: &dyn std::fmt::Display| format!("the room's log cannot be read ({e})");
    let limit = q.limit.clamp(1, natter_core::limits::HISTORY_PAGE_MAX) as u64;
    let mut stream = match h.js.get_stream(room_stream(&h.prefix, &q.room)).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(je)
                    if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            // No log: nothing was ever said there.
            return Ok(HistoryPage {
                events: Vec::new(),
                at_start: true,
            });
        }
        Err(e) => return Err(unavailable(&e)),
    };
    let state = stream
        .info()
        .await
        .map_err(|e| unavailable(&e))?
        .state
        .clone();
    let first = state.first_sequence.max(1);
    let upto = q.before.0.saturating_sub(1).min(state.last_sequence);
    let from = upto.saturating_sub(limit - 1).max(first);
    let at_start = from <= first;
    if upto < from {
        return Ok(HistoryPage {
            events: Vec::new(),
            at_start: true,
        });
    }
    let mut messages = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?
        .messages()
        .await
        .map_err(|e| unavailable(&e))?;
    let mut events = Vec::with_capacity((upto - from + 1) as usize);
    let read = async {
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| unavailable(&e))?;
            let seq = m.info().map_err(|e| unavailable(&e))?.stream_sequence;
            if seq > upto {
                break;
            }
            match decode_payload::<RoomEvent>(&m.payload) {
                Ok(mut ev) => {
                    ev.room = q.room.clone();
                    ev.seq = Seq(seq);
                    events.push(ev);
                }
                Err(e) => {
                    warn!(room = %q.room, seq, error = %e, "room event not understood; skipped")
                }
            }
            if seq == upto {
                break;
            }
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(h.wait, read)
        .await
        .map_err(|_| unavailable(&"no answer in time"))??;
    Ok(HistoryPage { events, at_start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_record_reads_back_as_written() {
        let r = SessionRecord {
            token: TokenHash([7; 32]),
            token_id: 42,
            nick: Nick::new("alice").unwrap(),
            rooms: vec![RoomName::new("#r").unwrap(), RoomName::new("#s").unwrap()],
            last_id: natter_core::MsgId(9),
            updated: Millis(1_234),
        };
        let bytes = encode_session(&r, "node1").unwrap();
        assert_eq!(decode_session(&bytes).unwrap(), r);
        assert!(decode_session(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(session_key(42), "000000000000002a");
    }

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    #[test]
    fn a_deliverys_sequences_are_read_from_its_subject() {
        let v1 = "$JS.ACK.NATTER_ROOM_2361.KfVX6dXm.1.42.7.1764770000000000000.3";
        assert_eq!(delivery_seqs(v1), Some((42, 7)));
        let v2 = "$JS.ACK._.ACCHASH.NATTER_ROOM_2361.KfVX6dXm.1.42.7.1764770000000000000.3.tok";
        assert_eq!(delivery_seqs(v2), Some((42, 7)));
        assert_eq!(delivery_seqs("$JS.ACK.S.C.1.x.7.1.0"), None);
        assert_eq!(delivery_seqs("_INBOX.abc"), None);
        assert_eq!(delivery_seqs("$JS.ACK.a.b.c"), None);
        assert_eq!(delivery_seqs("$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m"), None);
    }

    #[test]
    fn own_events_are_recognised_by_room_and_bytes_in_the_order_sent() {
        let mine = Mine::default();
        let (a, b) = (room("#a"), room("#b"));
        let later = Instant::now() + Duration::from_secs(60);
        // The same bytes twice in #a, once in #b.
        mine.add(&a, Bytes::from_static(b"hi"), 1, later);
        mine.add(&a, Bytes::from_static(b"hi"), 2, later);
        mine.add(&b, Bytes::from_static(b"hi"), 3, later);
        mine.add(&a, Bytes::from_static(b"yo"), 4, later);
        // Another node's event, and bytes of this node's in the wrong room, are not ours.
        assert_eq!(mine.take(&a, b"other"), None);
        assert_eq!(mine.take(&room("#c"), b"hi"), None);
        assert_eq!(mine.take(&a, b"hi"), Some(1));
        assert_eq!(mine.take(&b, b"hi"), Some(3));
        assert_eq!(mine.take(&a, b"hi"), Some(2));
        // Read back once only.
        assert_eq!(mine.take(&a, b"hi"), None);
        assert_eq!(mine.lock().waiting, 1);
        assert_eq!(mine.take(&a, b"yo"), Some(4));
        assert_eq!(mine.lock().waiting, 0);
        assert!(mine.lock().order.is_empty());
    }

    #[test]
    fn publishes_not_read_back_in_time_expire_once() {
        let mine = Mine::default();
        let a = room("#a");
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        mine.add(&a, Bytes::from_static(b"1"), 1, t0 + s);
        mine.add(&a, Bytes::from_static(b"2"), 2, t0 + 2 * s);
        mine.add(&a, Bytes::from_static(b"3"), 3, t0 + 3 * s);
        assert_eq!(mine.take(&a, b"2"), Some(2));
        assert_eq!(mine.next_deadline(), Some(t0 + s));
        assert!(mine.expired(t0).is_empty());
        // 2 came back: only 1 and 3 expire, each once.
        assert_eq!(mine.expired(t0 + 2 * s), vec![1]);
        assert_eq!(mine.expired(t0 + 5 * s), vec![3]);
        assert!(mine.expired(t0 + 9 * s).is_empty());
        // An expired one read back late is not taken for ours.
        assert_eq!(mine.take(&a, b"1"), None);
        // One whose send failed is forgotten.
        mine.add(&a, Bytes::from_static(b"4"), 4, t0 + s);
        mine.forget(&a, b"4", 4);
        assert_eq!(mine.take(&a, b"4"), None);
        assert_eq!(mine.lock().waiting, 0);
    }

    #[tokio::test]
    async fn publishes_waiting_are_bounded_and_wake_the_shell_below_half() {
        let p = Arc::new(Pending::default());
        for _ in 0..MAX_PENDING_PUBLISHES {
            assert!(p.take());
        }
        assert!(!p.take(), "past the cap a publish is refused");
        assert!(p.backed_up());
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move {
                while p.backed_up() {
                    p.unblocked.notified().await;
                }
            })
        };
        for _ in 0..=(MAX_PENDING_PUBLISHES - BACKED_UP_PUBLISHES) {
            p.done();
        }
        assert!(!p.backed_up());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the shell is woken once below half")
            .unwrap();
        assert!(p.take());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reap_and_a_take_over_of_one_nick_are_ordered_by_its_kv_entry() {
        let nats = crate::test_server::NatsServer::start();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let cfg = ClusterConfig::new(vec![nats.url()]);
        let kv = bucket(&js, &cfg, "nicks", Duration::ZERO).await.unwrap();
        let alice = Nick::new("alice").unwrap();
        let key = nick_key(&alice);
        let held_by = async |kv: &kv::Store| kv.get(&key).await.unwrap();
        // Node b took alice's session over from dead node a before a reaper looked: she moved,
        // she is not reaped, and b keeps the nick.
        kv.put(&key, Bytes::from_static(b"a")).await.unwrap();
        assert_eq!(take_over(&kv, "b", &alice).await.unwrap(), (true, true));
        assert!(!reap_nick(&kv, "a", &alice).await.unwrap());
        assert_eq!(held_by(&kv).await.as_deref(), Some(&b"b"[..]));
        // A reaper came first: the nick is deleted before the quit; another room's reaper
        // reaps her too; a take-over then finds the nick free (she joins again, visibly).
        kv.put(&key, Bytes::from_static(b"a")).await.unwrap();
        assert!(reap_nick(&kv, "a", &alice).await.unwrap());
        assert_eq!(held_by(&kv).await, None);
        assert!(reap_nick(&kv, "a", &alice).await.unwrap());
        assert_eq!(take_over(&kv, "b", &alice).await.unwrap(), (true, false));
        assert!(!reap_nick(&kv, "a", &alice).await.unwrap());
        assert_eq!(held_by(&kv).await.as_deref(), Some(&b"b"[..]));
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reap_whose_reaper_died_is_taken_over_once_and_a_live_ones_is_left() {
        let nats = crate::test_server::NatsServer::start();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let cfg = ClusterConfig::new(vec![nats.url()]);
        let nicks = bucket(&js, &cfg, "nicks", Duration::ZERO).await.unwrap();
        let nodes = bucket(&js, &cfg, "nodes", Duration::from_secs(60))
            .await
            .unwrap();
        // b and c are alive; x took a reap on and died (no lease).
        for n in ["b", "c"] {
            nodes.put(n, Bytes::from_static(b"1")).await.unwrap();
        }
        assert!(claim_reap(&nicks, &nodes, "reap_a_r1", "x").await.unwrap());
        assert!(
            claim_reap(&nicks, &nodes, "reap_a_r1", "x").await.unwrap(),
            "its own"
        );
        assert!(claim_reap(&nicks, &nodes, "reap_a_r1", "b").await.unwrap());
        assert!(
            !claim_reap(&nicks, &nodes, "reap_a_r1", "c").await.unwrap(),
            "b is alive"
        );
        let held = nicks.get("reap_a_r1").await.unwrap();
        assert_eq!(held.as_deref(), Some(&b"b"[..]));
        // A fresh reap goes to whoever creates it first.
        assert!(claim_reap(&nicks, &nodes, "reap_a_r2", "c").await.unwrap());
        assert!(!claim_reap(&nicks, &nodes, "reap_a_r2", "b").await.unwrap());
    }
}
