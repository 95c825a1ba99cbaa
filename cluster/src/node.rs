//! One node's link to the cluster: a driver task that does what the hub asks (follow a room,
//! publish an event, claim or release a nick) in the order asked, a task per followed room that
//! hands its events back in the log's order and publishes this node's events there in batches
//! ([`Outbox`]), and a task that keeps this node's lease alive.

use crate::link::Failing;
use crate::names::{nick_key, room_stream, room_subject};
use crate::search::{Feed, SearchIndex};
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
        /// A direct notice (its request carries the `Natter-Notice` header), not a message.
        notice: bool,
        /// The client-only tags it was sent with (the `Natter-Tags` header).
        tags: Option<std::sync::Arc<str>>,
        /// Its sender is signed in (the `Natter-Signed-In` header).
        signed_in: bool,
    },
    /// The answer to a direct message this node sent to another.
    DirectDone {
        /// The hub's number for it.
        id: u64,
        /// Delivered, or why not.
        result: Result<(), String>,
    },
    /// The answer to a direct message this node sent: nothing of its recipient is connected
    /// on any node (no node holds the nick, or its node has no connection of it).
    DirectUnheld {
        /// The hub's number for it.
        id: u64,
        /// A device of the recipient may still resume.
        resuming: bool,
    },
    /// The direct messages kept for an account that signed in here, numbered, oldest first
    /// (see [`Hub::handle_held`]).
    Held {
        /// The account.
        account: natter_core::Nick,
        /// The messages.
        held: Vec<(u64, natter_core::persist::HeldDirect)>,
    },
    /// A nick claim could not be decided.
    ClaimFailed {
        /// The hub's number for the claim.
        id: u64,
        /// Why, in words for people.
        why: String,
    },
    /// The answer to a [`ClusterOut::Holder`] (see [`Hub::handle_holder`]).
    Holder {
        /// The hub's number for the question.
        id: u64,
        /// Whether another node holds the nick.
        elsewhere: bool,
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
        /// Who closed it and why, with `shared` `None` (`None` too from a node older than the
        /// forty-second session, whose removal said neither).
        close: Option<natter_core::moderation::RoomClose>,
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
    /// The link to NATS was lost (`false`) or is back: while it is down, the hub refuses
    /// changes of rooms' settings at once ([`Hub::handle_cluster_link`]).
    Link(bool),
    /// A room's topic as the cluster keeps it, after a node told it (`None`: none is kept).
    Topic {
        /// The room.
        room: RoomName,
        /// Its topic, with the seq of its event.
        topic: Option<natter_core::hub::RoomTopic>,
    },
    /// A server admin's `/wall` (`ops`: IRC's `WALLOPS`) said on another node, for this node's
    /// users ([`Hub::handle_remote_wall`]).
    Wall {
        /// The admin.
        from: natter_core::Nick,
        /// What they say.
        text: natter_core::Text,
        /// IRC's `WALLOPS`, not a `/wall`.
        ops: bool,
    },
    /// Client-only tags (IRC's `TAGMSG`) from a user on another node for a user here
    /// ([`Hub::handle_remote_relay`]).
    RemoteRelay {
        /// The sender.
        from: natter_core::Nick,
        /// The recipient.
        to: natter_core::Nick,
        /// The tags, as its client sent them.
        tags: std::sync::Arc<str>,
        /// The sender is signed in.
        signed_in: bool,
    },
    /// What a node says of its user called `nick` now (`None`: nobody has the nick there).
    Presence {
        /// The nick (its folded form is the key).
        nick: natter_core::Nick,
        /// The user.
        presence: Option<natter_core::hub::Presence>,
        /// The node holding it ("" for a removal).
        node: String,
        /// This node wrote it (else another node did, and a user here of the nick may have
        /// gone there: [`Hub::handle_record_elsewhere`]).
        mine: bool,
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
            ClusterIn::RemoteDirect {
                token,
                dm,
                notice,
                tags,
                signed_in,
            } => hub.handle_remote_direct(token, dm, notice, tags, signed_in, now),
            ClusterIn::DirectDone { id, result } => hub.handle_direct_done(id, result, now),
            ClusterIn::DirectUnheld { id, resuming } => {
                hub.handle_direct_unheld(id, resuming, now);
            }
            ClusterIn::Held { account, held } => hub.handle_held(account, held, now),
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
                close,
                revision,
            } => hub.handle_room(room, shared, close, revision, now),
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
                mine,
            } => {
                let account = presence.as_ref().and_then(|p| p.account.clone());
                let elsewhere = !mine && presence.is_some();
                hub.handle_presence(&nick, presence, &node);
                if elsewhere {
                    hub.handle_record_elsewhere(&nick, account.as_ref(), now);
                }
            }
            ClusterIn::Holder { id, elsewhere } => hub.handle_holder(id, elsewhere, now),
            ClusterIn::Link(up) => hub.handle_cluster_link(up),
            ClusterIn::Wall { from, text, ops } => hub.handle_remote_wall(from, text, ops),
            ClusterIn::RemoteRelay {
                from,
                to,
                tags,
                signed_in,
            } => hub.handle_remote_relay(from, to, tags, signed_in, now),
            ClusterIn::Topic { room, topic } => hub.handle_topic(room, topic),
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
    /// Keeps this node's lease alive (stopped first by [`Node::leave`]).
    lease: JoinHandle<()>,
    /// What [`Node::leave`] needs.
    leaving: Leaving,
    tasks: Vec<JoinHandle<()>>,
    /// Reads of rooms' logs for history beyond the hub's ring.
    history: History,
    /// The accounts read at start (with their revisions), until [`Node::take_accounts`].
    accounts: Vec<(natter_core::persist::LoadedAccount, u64)>,
    /// The rooms' settings read at start, until [`Node::take_rooms`].
    rooms: Vec<crate::rooms::KeptRoom>,
    /// The server bans read at start, until [`Node::take_server_bans`].
    bans: Vec<crate::bans::KeptBan>,
    /// The NATS client, for [`Node::link`].
    client: async_nats::Client,
}

/// Whether a node's link to NATS is up now, for a readiness check outside the node's tasks
/// (cheap to clone; see [`Node::link`]).
#[derive(Debug, Clone)]
pub struct Link(async_nats::Client);

impl Link {
    /// The NATS client is connected: the node can publish, claim nicks and read logs. While it
    /// is not, the hub refuses new rooms, lines and settings changes at once.
    pub fn is_up(&self) -> bool {
        self.0.connection_state() == State::Connected
    }
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

/// How a node stopping on purpose tells the cluster it goes (see [`Node::leave`]).
#[derive(Debug)]
struct Leaving {
    /// The bucket of leases.
    nodes: kv::Store,
    /// Where nodes hear of others leaving ([`gone_subject`]).
    subject: String,
    /// How long it may take.
    wait: Duration,
}

/// The subject a node stopping on purpose says its id on, so that the others take it for gone
/// at their next listing of leases instead of a lease later.
fn gone_subject(prefix: &str) -> String {
    format!("{prefix}.gone")
}

impl Drop for Node {
    fn drop(&mut self) {
        self.lease.abort();
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
        // As the log shows them: a password in an address as `***`.
        let servers = crate::nats_url::shown_all(&cfg.servers);
        // Without their credentials, which go to the options (async_nats ignores them in an
        // address, and its DEBUG lines print the address whole).
        let addresses = crate::nats_url::bare_all(&cfg.servers);
        // Counts (re)connections: each room reader reads again from where it was after one.
        let (links, _) = watch::channel(0u64);
        let on_event = links.clone();
        // Said once when lost and once when back, not at every reconnection attempt.
        let link_log = Arc::new(crate::link::LinkLog::default());
        let (in_tx, inbox) = mpsc::unbounded_channel();
        let link_tx = in_tx.clone();
        let options = || {
            let (on_event, link_tx, link_log) =
                (on_event.clone(), link_tx.clone(), link_log.clone());
            crate::nats_url::with_credentials(async_nats::ConnectOptions::new(), &cfg)
                .event_callback(move |ev| {
                    match ev {
                        async_nats::Event::Connected => {
                            on_event.send_modify(|n| *n += 1);
                            let _ = link_tx.send(ClusterIn::Link(true));
                        }
                        async_nats::Event::Disconnected => {
                            let _ = link_tx.send(ClusterIn::Link(false));
                        }
                        _ => {}
                    }
                    link_log.note(&ev);
                    std::future::ready(())
                })
                .name(format!("natter-server {id}"))
                // Come back quickly after NATS does: writes are refused until then.
                .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(1_000)))
        };
        // NATS started with the node (a machine booting, a compose file) may not listen yet:
        // a starting node waits for it, as it waits for JetStream (see [`bucket`]); what NATS
        // refuses (a bad address, credentials) ends the start at once.
        let deadline = Instant::now() + SETUP_WAIT;
        let mut told = false;
        let client = loop {
            match options().connect(addresses.as_slice()).await {
                Ok(client) => break client,
                Err(e) if nats_not_up(&e) && Instant::now() < deadline => {
                    if !core::mem::replace(&mut told, true) {
                        info!(%servers, why = %e, "NATS does not answer yet; waiting for it");
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(source) => {
                    return Err(ClusterError::Connect {
                        servers: servers.clone(),
                        source,
                    });
                }
            }
        };
        let mut js = jetstream::new(client.clone());
        js.set_timeout(cfg.ack_timeout);
        let nicks = bucket(&js, &cfg, "nicks", Duration::ZERO).await?;
        let nodes = bucket(&js, &cfg, "nodes", cfg.lease).await?;
        let sessions = bucket(&js, &cfg, "sessions", cfg.session_ttl).await?;
        let accounts_kv = bucket(&js, &cfg, "accounts", Duration::ZERO).await?;
        let held = bucket(&js, &cfg, "held", Duration::ZERO).await?;
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
        let gone = client
            .subscribe(gone_subject(&cfg.prefix))
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "node departures",
                why: e.to_string(),
            })?;
        let lease = tokio::spawn(keep_lease(
            nodes.clone(),
            id.clone(),
            cfg.lease,
            gone,
            in_tx.clone(),
        ));
        let leaving = Leaving {
            nodes: nodes.clone(),
            subject: gone_subject(&cfg.prefix),
            wait: cfg.ack_timeout,
        };
        let walls = client
            .subscribe(wall_subject(&cfg.prefix))
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "admins' walls",
                why: e.to_string(),
            })?;
        let hear_walls = tokio::spawn(hear_walls(walls, id.clone(), in_tx.clone()));
        let relays = client
            .subscribe(relay_subject(&cfg.prefix, &id))
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "relayed tags",
                why: e.to_string(),
            })?;
        let hear_relays = tokio::spawn(hear_relays(relays, in_tx.clone()));
        let nudges = client
            .subscribe(crate::held::nudge_subject(&cfg.prefix, &id))
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "kept messages' nudges",
                why: e.to_string(),
            })?;
        let hear_nudges = tokio::spawn(hear_nudges(nudges, held.clone(), in_tx.clone()));
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
            held.clone(),
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
        let topics = crate::topics::start(&js, &cfg, &id, in_tx.clone(), links.subscribe()).await?;
        let driver = Driver {
            topics_tx: topics.writes,
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
            client: client.clone(),
            js,
            nicks,
            nodes,
            held,
            rooms: HashMap::new(),
            tx: in_tx,
            links,
            replies,
            draining: HashMap::new(),
            batch_numbers: BatchNumbers::default(),
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
            lease,
            leaving,
            tasks: vec![
                driver,
                serve,
                hear_walls,
                hear_relays,
                hear_nudges,
                account_watch,
                rooms.watch,
                bans.watch,
                users.watch,
                topics.watch,
            ],
            accounts,
            rooms: rooms.kept,
            bans: bans.kept,
            client,
        })
    }

    /// Tells the cluster this node is stopping on purpose, once its users' connections are
    /// closed: its lease is removed and every node hears so, and each takes its members out of
    /// the rooms' lists (as a dead node's: `Hub::handle_nodes`) at its next listing of leases,
    /// a third of a lease later, instead of once the lease has run out. Within the cluster's
    /// `ack_timeout`; if NATS cannot be told, the node is taken for gone when its lease runs
    /// out, as one killed is.
    pub async fn leave(self) {
        self.lease.abort();
        if self.client.connection_state() != State::Connected {
            warn!("NATS is away: the cluster is not told this node leaves; its lease will run out");
            return;
        }
        let Leaving {
            nodes,
            subject,
            wait,
        } = &self.leaving;
        let said = async {
            nodes.delete(&self.id).await.map_err(|e| e.to_string())?;
            self.client
                .publish(subject.clone(), Bytes::from(self.id.clone()))
                .await
                .map_err(|e| e.to_string())?;
            self.client.flush().await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(*wait, said).await {
            Ok(Ok(())) => info!(node = %self.id, "left the cluster"),
            Ok(Err(why)) => {
                warn!(%why, "could not tell the cluster this node leaves; its lease will run out")
            }
            Err(_) => {
                warn!("could not tell the cluster this node leaves in time; its lease will run out")
            }
        }
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

    /// Its link to NATS, to ask later whether it is up (a readiness check).
    pub fn link(&self) -> Link {
        Link(self.client.clone())
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

    /// The rooms this node's search index holds lines of, and how many, by name: a room is
    /// indexed once someone on this node searched it (`search.rs`).
    pub fn search_index(&self) -> Vec<(RoomName, u64)> {
        self.history.index.indexed()
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
    let config = stream::Config {
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
    };
    // A JetStream cluster started with the nodes may not have found its peers or its leader
    // yet ("no suitable peers for placement", or no answer in time): a starting node waits for
    // it rather than exiting.
    let deadline = Instant::now() + SETUP_WAIT;
    let mut told = false;
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(_) => break,
            Err(e) if jetstream_not_ready(&e) && Instant::now() < deadline => {
                if !core::mem::replace(&mut told, true) {
                    info!(%bucket, why = %e, "JetStream is not ready yet; waiting for it");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(too_few_servers(cfg, &e).unwrap_or_else(|| failed(&e))),
        }
    }
    js.get_key_value(&bucket).await.map_err(|e| failed(&e))
}

/// How long a starting node waits for JetStream to make its buckets (see [`bucket`]).
const SETUP_WAIT: Duration = Duration::from_secs(30);

/// Whether connecting failed because no NATS server listens or answers yet (it may be
/// starting), not because one refused.
fn nats_not_up(e: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as Kind;
    matches!(e.kind(), Kind::Io | Kind::TimedOut)
}

/// Whether making a stream failed because JetStream is still forming (its cluster has not
/// found enough peers, or elected no leader yet, or its servers answer no JetStream request
/// yet), not because it refuses.
/// `e` refused a stream for its replicas (`cfg.replicas` above 1), said with the flag that
/// asked for them: at once against a single nats-server, which refuses any, or after the
/// start's wait when a JetStream cluster has fewer servers up than replicas.
fn too_few_servers(
    cfg: &ClusterConfig,
    e: &jetstream::context::CreateStreamError,
) -> Option<ClusterError> {
    use jetstream::ErrorCode;
    use jetstream::context::CreateStreamErrorKind as Kind;
    let Kind::JetStream(j) = e.kind() else {
        return None;
    };
    let servers = crate::nats_url::shown_all(&cfg.servers);
    let servers = match j.error_code() {
        _ if cfg.replicas <= 1 => return None,
        ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED => {
            format!("{servers} is 1 nats-server, not clustered")
        }
        ErrorCode::CLUSTER_NO_PEERS | ErrorCode::INSUFFICIENT_RESOURCES => format!(
            "the JetStream cluster of {servers} found no {} servers to hold them within {} s",
            cfg.replicas,
            SETUP_WAIT.as_secs()
        ),
        _ => return None,
    };
    Some(ClusterError::Replicas {
        replicas: cfg.replicas,
        servers,
        why: j.to_string(),
    })
}

fn jetstream_not_ready(e: &jetstream::context::CreateStreamError) -> bool {
    use jetstream::ErrorCode;
    use jetstream::context::CreateStreamErrorKind as Kind;
    match e.kind() {
        Kind::TimedOut | Kind::JetStreamUnavailable => true,
        Kind::JetStream(j) => matches!(
            j.error_code(),
            ErrorCode::CLUSTER_NO_PEERS | ErrorCode::CLUSTER_NOT_AVAILABLE
        ),
        _ => false,
    }
}

/// Refreshes this node's lease every third of it, and tells the hub which nodes are alive: every
/// node listed in the last lease. Only once refreshes and listings have worked for a whole lease
/// (after a start, or after NATS was away): a node that came back with NATS has had time to
/// refresh its lease by then, and is not taken for gone.
///
/// A node that says on `gone` it is leaving (see [`Node::leave`]) is forgotten at once: it is
/// not alive at the next listing, which no longer finds its lease.
async fn keep_lease(
    nodes: kv::Store,
    id: String,
    lease: Duration,
    mut gone: async_nats::Subscriber,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    let mut healthy_since: Option<tokio::time::Instant> = None;
    let mut seen: HashMap<String, tokio::time::Instant> = HashMap::new();
    // While NATS is away every try fails: said when it starts and when it ends.
    let (mut refresh, mut listing) = (Failing::default(), Failing::default());
    let every = lease / 3;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            Some(m) = gone.next() => {
                let node = String::from_utf8_lossy(&m.payload);
                if node != id && seen.remove(node.as_ref()).is_some() {
                    info!(%node, "a node left the cluster");
                }
                continue;
            }
        }
        if let Err(e) = nodes.put(&id, Bytes::from_static(b"up")).await {
            if refresh.failed() {
                warn!(error = %e, "node lease not refreshed; trying again every {:?}", lease / 3);
            } else {
                debug!(error = %e, "node lease not refreshed");
            }
            healthy_since = None;
            continue;
        }
        if refresh.worked() {
            info!("node lease refreshed again");
        }
        match alive_nodes(&nodes).await {
            Ok(alive) => {
                listing.worked();
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
                if listing.failed() {
                    warn!(error = %e, "node leases not read");
                } else {
                    debug!(error = %e, "node leases not read");
                }
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
    let at = reap_time(nicks_kv, node).await?;
    let mut quits = Vec::new();
    for nick in nicks {
        if !reap_nick(nicks_kv, node, &nick).await? {
            debug!(%nick, %node, "not reaped: its session went on on another node");
            continue;
        }
        // What a reaped member's quit is and says is core's.
        let event = natter_core::hub::reaped_quit(room.clone(), nick, at);
        let payload = encode_payload(&event).map_err(|e| e.to_string())?;
        // About the node that is gone, published by this one.
        quits.push(crate::batch::entry(node, &payload));
    }
    for chunk in quits.chunks(crate::batch::MAX_EVENTS) {
        append(js, prefix, room, me, chunk).await?;
    }
    Ok(())
}

/// When `node`'s users were found gone, for every reaper of every room of it: the first
/// reaper's time, kept in the nicks' bucket. A user's quits in its rooms are then one event
/// with one time, and a client shown a quit once (IRC, nc) is shown it once
/// (`Hub::user_wide_logged` knows the copies by who, what and when).
async fn reap_time(nicks_kv: &kv::Store, node: &str) -> Result<Millis, String> {
    let key = format!("reaped_{node}");
    let now = now_millis();
    match nicks_kv.create(&key, Bytes::from(now.0.to_string())).await {
        Ok(_) => return Ok(now),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.to_string()),
    }
    let value = nicks_kv.get(&key).await.map_err(|e| e.to_string())?;
    let first = value
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .map_or(now, Millis);
    Ok(first)
}

/// Numbers of the batches [`append`] publishes: above any room task's (which count from 1).
static APPENDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 63);

/// Publishes `entries` in one batch at the end of `room`'s log and waits for JetStream's
/// acknowledgement, trying again while other batches come first (at most 50 times): for
/// the rare events no room task publishes (a reaper's quits).
async fn append(
    js: &jetstream::Context,
    prefix: &str,
    room: &RoomName,
    me: &str,
    entries: &[Bytes],
) -> Result<(), String> {
    let mut stream = js
        .get_stream(room_stream(prefix, room))
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..50 {
        let (_, last, last_room) = log_ends(&mut stream).await?;
        let number = APPENDS.fetch_add(1, Ordering::Relaxed);
        let payload = crate::batch::encode(last_room + 1, me, number, entries.iter());
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
            last.to_string().as_str(),
        );
        let acked = js
            .publish_with_headers(room_subject(prefix, room), headers, payload)
            .await
            .map_err(|e| e.to_string())?
            .await;
        match acked {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("the room's log was busy for every try".into())
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
    /// Rooms' topics, written in order by the topics' task (`topics.rs`).
    topics_tx: mpsc::UnboundedSender<(RoomName, crate::topics::TopicOp)>,
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
    /// Direct messages kept for accounts with nothing connected (see `held.rs`).
    held: kv::Store,
    /// Rooms followed, each by its task (which reads the room's log and publishes this
    /// node's events in it).
    rooms: HashMap<RoomName, Room>,
    /// Tasks of rooms no longer followed that still have events of this node to store.
    draining: HashMap<RoomName, JoinHandle<()>>,
    /// The last batch number this node used, shared by every room's [`Outbox`].
    batch_numbers: BatchNumbers,
    tx: mpsc::UnboundedSender<ClusterIn>,
    /// Bumped at each (re)connection to NATS.
    links: watch::Sender<u64>,
    /// Where to answer direct messages other nodes asked this one to deliver.
    replies: Replies,
    pending: Arc<Pending>,
    /// The followed rooms' chat lines, for search.
    index: SearchIndex,
}

/// A followed room's task, and what to hand it.
struct Room {
    task: JoinHandle<()>,
    /// This node's events for the room's log; dropped when the room is no longer followed.
    events: mpsc::UnboundedSender<Waiting>,
}

/// An event waiting to be stored in its room's log.
#[derive(Debug, Clone)]
struct Waiting {
    /// The hub's number for it (`None` once given up: refused to the hub already).
    id: Option<u64>,
    /// Its entry in a batch (`batch::entry`).
    entry: Bytes,
    /// Refused if not stored by then.
    deadline: Instant,
    /// Its JetStream message id (`--cluster-line-ids`).
    line: Option<String>,
}

/// The batch of a room's outbox on its way to the log.
#[derive(Debug)]
struct Flight {
    /// Its number (this node's, one per attempt).
    number: u64,
    /// The stream sequence it must follow (`Nats-Expected-Last-Sequence`).
    after: u64,
    payload: Bytes,
    events: Vec<Waiting>,
    /// When it was last sent.
    sent: Instant,
}

/// A publish of a batch: its payload, the stream sequence it must follow, its message id.
type BatchSend = (Bytes, u64, Option<String>);

/// One room's events of this node on their way to the room's log (`batch.rs`). At most one
/// batch is on its way at a time; the events asked meanwhile wait and go together in the
/// next (a group commit: no wait when the room is idle). Each batch is published with
/// `Nats-Expected-Last-Sequence`: the last stream sequence this node read, so JetStream
/// stores it only right after that one, and its first event's room seq is the one after the
/// last event read. No reply is needed: the room's reader sees the next stored batch, and if
/// it is not this node's, this node's was refused (it could only be stored there) and its
/// events go again, first, in the next batch.
#[derive(Debug)]
struct Outbox {
    /// Events per batch, at most (1 with line ids: JetStream dedups whole messages).
    max_events: usize,
    queued: VecDeque<Waiting>,
    flight: Option<Flight>,
    /// The node's batch numbers, shared by its rooms' outboxes.
    numbers: BatchNumbers,
}

/// The last batch number a node used, one counter for all its outboxes: a room followed again
/// while its old task still stores this node's events has two outboxes at once, and the new
/// one's batch must not take the old one's stored batch (same node, same number) for its own:
/// its events would be acknowledged and never stored.
#[derive(Debug, Clone, Default)]
struct BatchNumbers(Arc<std::sync::atomic::AtomicU64>);

impl BatchNumbers {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

impl Outbox {
    fn new(max_events: usize, numbers: BatchNumbers) -> Outbox {
        Outbox {
            max_events: max_events.clamp(1, crate::batch::MAX_EVENTS),
            queued: VecDeque::new(),
            flight: None,
            numbers,
        }
    }

    fn push(&mut self, w: Waiting) {
        self.queued.push_back(w);
    }

    fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.flight.is_none()
    }

    /// The next batch to publish, if none is on its way: the events queued (as many as fit)
    /// numbered from `last_room + 1`, to be stored right after stream sequence `after`.
    fn send(&mut self, after: u64, last_room: u64, node: &str, now: Instant) -> Option<BatchSend> {
        if self.flight.is_some() || self.queued.is_empty() {
            return None;
        }
        let mut events = Vec::new();
        let mut bytes = 0;
        while let Some(w) = self.queued.front() {
            let full = events.len() >= self.max_events
                || (!events.is_empty() && bytes + w.entry.len() > crate::batch::MAX_BYTES);
            if full {
                break;
            }
            bytes += w.entry.len();
            events.extend(self.queued.pop_front());
        }
        let number = self.numbers.next();
        let payload =
            crate::batch::encode(last_room + 1, node, number, events.iter().map(|w| &w.entry));
        let line = match events.as_slice() {
            [one] => one.line.clone(),
            _ => None,
        };
        self.flight = Some(Flight {
            number,
            after,
            payload: payload.clone(),
            events,
            sent: now,
        });
        Some((payload, after, line))
    }

    /// The batch on its way, to send again (NATS may have lost it: a reconnection, or no
    /// word of it for a while).
    fn resend(&mut self, now: Instant) -> Option<BatchSend> {
        let f = self.flight.as_mut()?;
        f.sent = now;
        let line = match f.events.as_slice() {
            [one] => one.line.clone(),
            _ => None,
        };
        Some((f.payload.clone(), f.after, line))
    }

    /// When the batch on its way was last sent.
    fn sent(&self) -> Option<Instant> {
        self.flight.as_ref().map(|f| f.sent)
    }

    /// A batch was stored next in the log, this node's batch number `mine` if it is this
    /// node's: the hub's numbers of its events (`None`: given up) if it is the one on its
    /// way; else the one on its way was refused and its events wait first again.
    fn stored(&mut self, mine: Option<u64>) -> Option<Vec<Option<u64>>> {
        let f = self.flight.take()?;
        if mine == Some(f.number) {
            return Some(f.events.into_iter().map(|w| w.id).collect());
        }
        for w in f.events.into_iter().rev().filter(|w| w.id.is_some()) {
            self.queued.push_front(w);
        }
        None
    }

    /// The earliest deadline of an event not given up.
    fn next_deadline(&self) -> Option<Instant> {
        let flying = self.flight.iter().flat_map(|f| &f.events);
        flying
            .chain(self.queued.front())
            .filter(|w| w.id.is_some())
            .map(|w| w.deadline)
            .min()
    }

    /// Gives up the events whose deadline is past, and returns their numbers: those waiting
    /// are dropped; those on their way may still be stored (then shown, as not this node's).
    /// A batch on its way with nothing left to wait for is let go.
    fn expired(&mut self, now: Instant) -> Vec<u64> {
        let mut out = Vec::new();
        if let Some(f) = &mut self.flight {
            for w in &mut f.events {
                if w.deadline <= now
                    && let Some(id) = w.id.take()
                {
                    out.push(id);
                }
            }
            if f.events.iter().all(|w| w.id.is_none()) {
                self.flight = None;
            }
        }
        while self.queued.front().is_some_and(|w| w.deadline <= now) {
            out.extend(self.queued.pop_front().and_then(|w| w.id));
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

/// The header that makes a direct message between nodes a direct notice (IRC's `NOTICE nick`).
/// A header, not a change of the payload: a node built before notices ignores it and delivers
/// a plain direct message, as it would have before.
const NOTICE_HEADER: &str = "Natter-Notice";
/// The header saying a direct message's sender is signed in (IRC's account-tag: its nick is its
/// account's name); a header for the same reason as [`NOTICE_HEADER`].
const SIGNED_IN_HEADER: &str = "Natter-Signed-In";
/// The header holding the client-only tags a direct message was sent with (IRC's
/// message-tags, as the client sent them: escaped, so one line).
const TAGS_HEADER: &str = "Natter-Tags";

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
        let header = |name: &str| m.headers.as_ref().and_then(|h| h.get(name));
        let notice = header(NOTICE_HEADER).is_some();
        let signed_in = header(SIGNED_IN_HEADER).is_some();
        let tags = header(TAGS_HEADER).map(|t| std::sync::Arc::<str>::from(t.as_str()));
        let token = replies.add(reply);
        let direct = ClusterIn::RemoteDirect {
            token,
            dm,
            notice,
            tags,
            signed_in,
        };
        if tx.send(direct).is_err() {
            return;
        }
    }
}

/// The subject every node hears admins' walls on (see [`ClusterOut::Wall`]).
fn wall_subject(prefix: &str) -> String {
    format!("{prefix}.wall")
}

/// An admin's wall as it crosses to the other nodes (bincode), with the node it was said on.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wall {
    node: String,
    from: natter_core::Nick,
    text: natter_core::Text,
    ops: bool,
}

/// The largest wall read (a line's text is far smaller).
const MAX_WALL_BYTES: usize = 64 << 10;

/// Hands admins' walls said on other nodes to the hub (this node's own are its users' already).
async fn hear_walls(
    mut walls: async_nats::Subscriber,
    me: String,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    while let Some(m) = walls.next().await {
        let wall = match crate::kept::decode_entry::<Wall, MAX_WALL_BYTES>(&m.payload, "a wall") {
            Ok(w) => w,
            Err(why) => {
                warn!(%why, "an admin's wall not understood; dropped");
                continue;
            }
        };
        if wall.node == me {
            continue;
        }
        let (from, text, ops) = (wall.from, wall.text, wall.ops);
        if tx.send(ClusterIn::Wall { from, text, ops }).is_err() {
            return;
        }
    }
}

/// The subject a node hears client-only tags for its users on (see [`ClusterOut::Relay`]):
/// beside its inbox, which only direct messages reach (a node built before relays crossed
/// hears none of them).
fn relay_subject(prefix: &str, node: &str) -> String {
    format!("{prefix}.node.{node}.relay")
}

/// Client-only tags as they cross to the node holding the recipient's nick (bincode).
#[derive(serde::Serialize, serde::Deserialize)]
struct RelayOut {
    from: natter_core::Nick,
    to: natter_core::Nick,
    tags: String,
    signed_in: bool,
}

/// The largest relay read (a client's tags are at most 4094 bytes).
const MAX_RELAY_BYTES: usize = 8 << 10;

/// Hands client-only tags other nodes' users send to users here to the hub.
async fn hear_relays(mut relays: async_nats::Subscriber, tx: mpsc::UnboundedSender<ClusterIn>) {
    while let Some(m) = relays.next().await {
        let r = match crate::kept::decode_entry::<RelayOut, MAX_RELAY_BYTES>(&m.payload, "a relay")
        {
            Ok(r) => r,
            Err(why) => {
                debug!(%why, "relayed tags not understood; dropped");
                continue;
            }
        };
        let relay = ClusterIn::RemoteRelay {
            from: r.from,
            to: r.to,
            tags: r.tags.into(),
            signed_in: r.signed_in,
        };
        if tx.send(relay).is_err() {
            return;
        }
    }
}

/// Sends client-only tags to the node holding `relay.to`'s nick; nothing when nobody holds
/// it or NATS cannot be reached (typing is worth nothing late).
async fn send_relay(
    client: &async_nats::Client,
    nicks: &kv::Store,
    prefix: &str,
    relay: &RelayOut,
) -> Result<(), String> {
    let entry = nicks
        .entry(nick_key(&relay.to))
        .await
        .map_err(|e| unavailable(&e))?
        .filter(|e| e.operation == kv::Operation::Put)
        .ok_or_else(|| format!("nobody is called {}", relay.to))?;
    let holder = String::from_utf8_lossy(&entry.value).into_owned();
    let payload = crate::kept::encode_entry(relay)?;
    client
        .publish(relay_subject(prefix, &holder), payload)
        .await
        .map_err(|e| unavailable(&e))
}

/// Hands the direct messages kept for `account` to the hub, if there are any.
async fn take_held(kv: kv::Store, account: Nick, tx: mpsc::UnboundedSender<ClusterIn>) {
    match crate::held::take(&kv, &account).await {
        Ok(held) if held.is_empty() => {}
        Ok(held) => {
            let _ = tx.send(ClusterIn::Held { account, held });
        }
        Err(why) => {
            warn!(%account, %why, "kept direct messages not read; kept for the next sign-in")
        }
    }
}

/// A message was kept for `account`: if a node holds its nick now (it signed in after the
/// sender's node looked), that node is told, and delivers it if the account is connected.
async fn nudge(client: &async_nats::Client, nicks: &kv::Store, prefix: &str, account: &Nick) {
    let Ok(Some(entry)) = nicks.entry(nick_key(account)).await else {
        return;
    };
    if entry.operation != kv::Operation::Put {
        return;
    }
    let holder = String::from_utf8_lossy(&entry.value).into_owned();
    let subject = crate::held::nudge_subject(prefix, &holder);
    let payload = Bytes::from(account.as_str().to_owned());
    if let Err(e) = client.publish(subject, payload).await {
        debug!(error = %e, "kept direct message's nudge not sent");
    }
}

/// Hands the direct messages kept for an account a nudge names to the hub (which delivers
/// them if the account is connected here).
async fn hear_nudges(
    mut nudges: async_nats::Subscriber,
    kv: kv::Store,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    while let Some(m) = nudges.next().await {
        let Ok(account) = std::str::from_utf8(&m.payload).map(Nick::new) else {
            continue;
        };
        let Ok(account) = account else {
            continue;
        };
        tokio::spawn(take_held(kv.clone(), account, tx.clone()));
    }
}

/// Why the cluster could not do something, in words for people.
pub(crate) fn unavailable(e: &dyn std::fmt::Display) -> String {
    format!("the cluster is unavailable ({e})")
}

/// How a direct message was sent, beside the message.
struct Sent {
    /// A direct notice.
    notice: bool,
    /// Its sender is signed in.
    signed_in: bool,
    /// The client-only tags it was sent with.
    tags: Option<std::sync::Arc<str>>,
}

/// What became of a direct message sent to another node.
enum Answered {
    /// Delivered.
    Delivered,
    /// Nothing of the recipient is connected anywhere (`true`: a device of it may resume).
    Unheld(bool),
}

/// The answer a node gives when the recipient of a direct message, an account, has nothing
/// connected there: the sender's node keeps it ([`ClusterOut::Unheld`]); then `1` if a device
/// of it may still resume, else `0`. A NUL starts no words for people.
const UNHELD_ANSWER: &[u8] = b"\0unheld:";

/// Asks the node holding `dm.to` to deliver it: `Err` says why not, in words for people.
async fn send_direct(
    client: &async_nats::Client,
    nicks: &kv::Store,
    prefix: &str,
    wait: Duration,
    dm: &DirectMsg,
    how: &Sent,
) -> Result<Answered, String> {
    let nobody = || format!("nobody is called {}", dm.to);
    let Some(entry) = nicks
        .entry(nick_key(&dm.to))
        .await
        .map_err(|e| unavailable(&e))?
        .filter(|e| e.operation == kv::Operation::Put)
    else {
        // Nobody anywhere holds the nick: an account's message is kept for it.
        return Ok(Answered::Unheld(false));
    };
    let holder = String::from_utf8_lossy(&entry.value).into_owned();
    let payload = encode_payload(dm).map_err(|e| e.to_string())?;
    let subject = node_subject(prefix, &holder);
    let mut headers = HeaderMap::new();
    if how.notice {
        headers.insert(NOTICE_HEADER, "1");
    }
    if how.signed_in {
        headers.insert(SIGNED_IN_HEADER, "1");
    }
    // Tags are escaped by their client (no line breaks); any that are not are left out.
    if let Some(t) = how.tags.as_deref().filter(|t| !t.contains(['\r', '\n'])) {
        headers.insert(TAGS_HEADER, t);
    }
    let asked = async {
        if headers.is_empty() {
            client.request(subject, payload).await
        } else {
            client.request_with_headers(subject, headers, payload).await
        }
    };
    let answer = tokio::time::timeout(wait, asked)
        .await
        .map_err(|_| unavailable(&"the node holding the nick did not answer"))?
        .map_err(|_| nobody())?;
    if answer.payload.is_empty() {
        Ok(Answered::Delivered)
    } else if let Some(rest) = answer.payload.strip_prefix(UNHELD_ANSWER) {
        Ok(Answered::Unheld(rest == b"1"))
    } else {
        Err(String::from_utf8_lossy(&answer.payload).into_owned())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for r in self.rooms.values() {
            r.task.abort();
        }
        for t in self.draining.values() {
            t.abort();
        }
    }
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ClusterOut>) {
        while let Some(out) = rx.recv().await {
            match out {
                ClusterOut::Follow(room) => {
                    if let Err(why) = self.follow(&room).await {
                        // The next publish in the room tries again.
                        warn!(%room, %why, "room not followed");
                    }
                }
                ClusterOut::Unfollow(room) => {
                    // Its task stops once this node's events there are stored (or given up):
                    // a member's `Part` must still reach the other nodes.
                    if let Some(r) = self.rooms.remove(&room) {
                        self.draining.retain(|_, t| !t.is_finished());
                        self.draining.insert(room.clone(), r.task);
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
                ClusterOut::Direct {
                    id,
                    dm,
                    notice,
                    tags,
                    signed_in,
                } => {
                    let how = Sent {
                        notice,
                        signed_in,
                        tags,
                    };
                    let (client, nicks, tx) =
                        (self.client.clone(), self.nicks.clone(), self.tx.clone());
                    let (prefix, wait) = (self.cfg.prefix.clone(), self.cfg.ack_timeout);
                    // Refused at once while NATS is away, as a line is: the NATS client would
                    // hold the nick's lookup until it is back and deliver the message late.
                    let connected = self.client.connection_state() == State::Connected;
                    tokio::spawn(async move {
                        let sent = send_direct(&client, &nicks, &prefix, wait, &dm, &how);
                        let result = match connected {
                            true => tokio::time::timeout(wait, sent)
                                .await
                                .unwrap_or_else(|_| Err(unavailable(&"timed out"))),
                            false => Err(unavailable(&"no NATS server answers")),
                        };
                        let _ = tx.send(match result {
                            Ok(Answered::Delivered) => ClusterIn::DirectDone { id, result: Ok(()) },
                            Ok(Answered::Unheld(resuming)) => {
                                ClusterIn::DirectUnheld { id, resuming }
                            }
                            Err(why) => ClusterIn::DirectDone {
                                id,
                                result: Err(why),
                            },
                        });
                    });
                }
                ClusterOut::Unheld { token, resuming } => {
                    let Some(reply) = self.replies.take(token) else {
                        continue;
                    };
                    let mut payload = UNHELD_ANSWER.to_vec();
                    payload.push(if resuming { b'1' } else { b'0' });
                    if let Err(e) = self.client.publish(reply, Bytes::from(payload)).await {
                        debug!(error = %e, "direct message answer not sent");
                    }
                }
                ClusterOut::Hold {
                    id,
                    account,
                    held,
                    kept_bytes,
                } => {
                    let (kv, nicks, client, tx) = (
                        self.held.clone(),
                        self.nicks.clone(),
                        self.client.clone(),
                        self.tx.clone(),
                    );
                    let (prefix, wait) = (self.cfg.prefix.clone(), self.cfg.ack_timeout);
                    let connected = self.client.connection_state() == State::Connected;
                    tokio::spawn(async move {
                        let result = match connected {
                            true => {
                                let hold = crate::held::hold(&kv, &account, held, kept_bytes);
                                tokio::time::timeout(wait, hold)
                                    .await
                                    .unwrap_or_else(|_| Err(unavailable(&"timed out")))
                            }
                            false => Err(unavailable(&"no NATS server answers")),
                        };
                        let kept = result.is_ok();
                        let _ = tx.send(ClusterIn::DirectDone { id, result });
                        if kept {
                            nudge(&client, &nicks, &prefix, &account).await;
                        }
                    });
                }
                ClusterOut::TakeHeld { account } => {
                    let (kv, tx) = (self.held.clone(), self.tx.clone());
                    tokio::spawn(take_held(kv, account, tx));
                }
                ClusterOut::HeldDelivered { account, upto } => {
                    let kv = self.held.clone();
                    tokio::spawn(async move {
                        if let Err(why) = crate::held::forget(&kv, &account, upto).await {
                            // Delivered again at the next sign-in: at least once.
                            warn!(%account, %why, "delivered direct messages not forgotten");
                        }
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
                ClusterOut::AccountWrite {
                    account,
                    registered,
                    write,
                } => {
                    let op = crate::accounts::AccountOp::Write {
                        account,
                        registered,
                        write,
                    };
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
                ClusterOut::Topic { room, topic } => {
                    let _ = self
                        .topics_tx
                        .send((room, crate::topics::TopicOp::Set(topic)));
                }
                ClusterOut::TopicGone { room, upto } => {
                    let _ = self
                        .topics_tx
                        .send((room, crate::topics::TopicOp::Gone(upto)));
                }
                ClusterOut::Wall { from, text, ops } => {
                    let node = self.id.clone();
                    let wall = Wall {
                        node,
                        from,
                        text,
                        ops,
                    };
                    let sent = match crate::kept::encode_entry(&wall) {
                        Ok(payload) => self
                            .client
                            .publish(wall_subject(&self.cfg.prefix), payload)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(why) => Err(why),
                    };
                    match sent {
                        Ok(()) => info!(from = %wall.from, "an admin's wall told to every node"),
                        Err(why) => warn!(%why, "an admin's wall not told to the other nodes"),
                    }
                }
                ClusterOut::Relay {
                    from,
                    to,
                    tags,
                    signed_in,
                } => {
                    if self.client.connection_state() != State::Connected {
                        continue;
                    }
                    let relay = RelayOut {
                        from,
                        to,
                        tags: tags.to_string(),
                        signed_in,
                    };
                    let (client, nicks) = (self.client.clone(), self.nicks.clone());
                    let (prefix, wait) = (self.cfg.prefix.clone(), self.cfg.ack_timeout);
                    tokio::spawn(async move {
                        let sent = send_relay(&client, &nicks, &prefix, &relay);
                        match tokio::time::timeout(wait, sent).await {
                            Ok(Ok(())) => {}
                            Ok(Err(why)) => debug!(to = %relay.to, %why, "tags not relayed"),
                            Err(_) => debug!(to = %relay.to, "tags not relayed: timed out"),
                        }
                    });
                }
                ClusterOut::Holder { id, nick } => {
                    let (nicks, me, tx) = (self.nicks.clone(), self.id.clone(), self.tx.clone());
                    tokio::spawn(async move {
                        let elsewhere = match holder(&nicks, &nick).await {
                            Ok(h) => h.is_some_and(|h| h != me),
                            Err(why) => {
                                // The user stays; the other node's next record asks again.
                                warn!(%nick, %why, "nick's holder not read");
                                false
                            }
                        };
                        debug!(%nick, elsewhere, "nick's holder read");
                        let _ = tx.send(ClusterIn::Holder { id, elsewhere });
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

    /// Starts `room`'s task (its stream made if missing): it reads the log from its first
    /// event on and publishes this node's events there; what to hand it this node's events.
    async fn follow(&mut self, room: &RoomName) -> Result<mpsc::UnboundedSender<Waiting>, String> {
        if let Some(r) = self.rooms.get(room) {
            if !r.events.is_closed() {
                return Ok(r.events.clone());
            }
            if let Some(r) = self.rooms.remove(room) {
                r.task.abort();
            }
        }
        let unavailable =
            |e: &dyn std::fmt::Display| format!("the room's stream is unavailable ({e})");
        // Without NATS the stream can be neither read nor made: said at once, not after each
        // request to it timed out (the driver does the node's asks in order, so they would all
        // wait behind it).
        if self.client.connection_state() != State::Connected {
            return Err(unavailable(&"no NATS server answers"));
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
            .map_err(|e| unavailable(&e))?;
        let (first, last, last_room) = log_ends(&mut stream).await.map_err(|e| unavailable(&e))?;
        let recent_from = last_room.saturating_sub(self.cfg.recent as u64) + 1;
        // The same room's task that was let go may still be storing this node's events:
        // this one publishes after it is done, so they keep their order.
        let before = self.draining.remove(room).filter(|t| !t.is_finished());
        let subject = async_nats::Subject::from(room_subject(&self.cfg.prefix, room));
        let max_events = if self.cfg.line_ids {
            1
        } else {
            crate::batch::MAX_EVENTS
        };
        let mut reader = RoomReader {
            room: room.clone(),
            stream,
            subject,
            me: Arc::from(self.id.as_str()),
            next: first,
            delivered: 0,
            heard: false,
            recent_from,
            following: true,
            seen: 0,
            last_room: 0,
            caught_up_at: last,
            outbox: Outbox::new(max_events, self.batch_numbers.clone()),
            resend: self.cfg.ack_timeout / 4,
            client: self.client.clone(),
            pending: self.pending.clone(),
            tx: self.tx.clone(),
            links: self.links.subscribe(),
            last_node: std::sync::Arc::from(""),
            feed: Some(self.index.follow(room)),
            held: before.is_some(),
        };
        // The first read is made here, so a failure is the follow's.
        let messages = reader.messages().await?;
        let (events, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(reader.run(messages, rx, before));
        debug!(%room, from = recent_from, "following room");
        self.rooms.insert(
            room.clone(),
            Room {
                task,
                events: events.clone(),
            },
        );
        Ok(events)
    }

    /// Hands `event` to its room's task, which publishes it in a batch. Its acknowledgement
    /// is the room's reader handing it back from the log ([`Outbox`]); past the deadline
    /// without that it is refused.
    async fn publish(&mut self, id: u64, event: RoomEvent) -> Result<(), String> {
        if self.client.connection_state() != State::Connected {
            return Err("the cluster is unavailable (no NATS server answers)".into());
        }
        let events = self.follow(&event.room).await?;
        let payload = encode_payload(&event).map_err(|e| e.to_string())?;
        // JetStream stores a line once, whichever node's copy comes first (`line_id.rs`).
        let line = self
            .cfg
            .line_ids
            .then(|| crate::line_id::line_id(&event))
            .flatten();
        let waiting = Waiting {
            id: Some(id),
            entry: crate::batch::entry("", &payload),
            deadline: Instant::now() + self.cfg.ack_timeout,
            line,
        };
        events
            .send(waiting)
            .map_err(|_| "the cluster is unavailable (the room is not read)".to_owned())
    }
}

/// A room's log's first and last stream sequences, and the room seq of its last event (0s
/// for an empty log).
async fn log_ends(stream: &mut stream::Stream) -> Result<(u64, u64, u64), String> {
    let state = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .clone();
    let (first, last) = (state.first_sequence.max(1), state.last_sequence);
    if last == 0 {
        return Ok((first, 0, 0));
    }
    let last_room = batch_at(stream, last).await?.map_or(0, |(_, to)| to);
    Ok((first, last, last_room))
}

/// The room seqs of the first and last events of the batch at stream sequence `seq` (`None`
/// if there is none there, or it is not a batch).
async fn batch_at(stream: &stream::Stream, seq: u64) -> Result<Option<(u64, u64)>, String> {
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(crate::batch::decode(&m.payload).map(|b| (b.first, b.last()))),
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A room's task: hands the room's events to the hub in the log's order, each with its room
/// seq, and publishes this node's events there (its [`Outbox`]). After NATS comes back (a
/// new connection) it reads again from the batch after the last one handed over (JetStream's
/// consumers do not outlive a restarted server) and sends its batch on its way again.
struct RoomReader {
    room: RoomName,
    stream: stream::Stream,
    /// The subject its events are published on (made once: a subject per publish cost a
    /// node ~2 % of its CPU in `hex` and `format!`).
    subject: async_nats::Subject,
    /// This node's id.
    me: Arc<str>,
    /// For the push consumer's delivery subject, and publishing.
    client: async_nats::Client,
    /// The stream sequence of the next batch to hand over.
    next: u64,
    /// The consumer's sequence of the last delivery read (a gap: read again from `next`).
    delivered: u64,
    /// Whether anything came since the last look (no idle heartbeat for a while: read again).
    heard: bool,
    /// Events before this room seq are read for who is in the room only.
    recent_from: u64,
    /// Whether the hub follows the room (else the task only stores this node's events left).
    following: bool,
    /// The last stream sequence read, and the room seq of its last event: the log's end as
    /// far as this node knows, where its next batch goes.
    seen: u64,
    last_room: u64,
    /// The log's last stream sequence when the task started: no batch goes before it is read.
    caught_up_at: u64,
    outbox: Outbox,
    /// How long a batch on its way goes without word before it is sent again.
    resend: Duration,
    pending: Arc<Pending>,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
    /// The node the last event was about, shared with the events about it.
    last_node: std::sync::Arc<str>,
    /// Where every chat line read goes, for search (before the hub hears of it), while the
    /// hub follows the room; the index takes them once someone here searched the room.
    feed: Option<Feed>,
    /// Whether the task this room had before still stores this node's events: none of this
    /// one's goes before it is done.
    held: bool,
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
        // A consumer heard from sends at least its heartbeats (two per look): one that sent
        // nothing by the first look is read again then, not a look later (a reader that heard
        // nothing at all from its new consumer was seen under load).
        self.heard = false;
        Ok(sub)
    }

    async fn run(
        mut self,
        mut messages: async_nats::Subscriber,
        mut events: mpsc::UnboundedReceiver<Waiting>,
        mut before: Option<JoinHandle<()>>,
    ) {
        self.links.mark_unchanged();
        let mut look = tokio::time::interval(2 * HEARTBEAT);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        look.reset();
        let far = || Instant::now() + Duration::from_secs(86_400);
        loop {
            if !self.following && self.outbox.is_empty() {
                return;
            }
            let deadline = self.outbox.next_deadline();
            let resend = self.outbox.sent().map(|t| t + self.resend);
            tokio::select! {
                m = messages.next() => match m.map(|m| self.take(m)) {
                    Some(Take::Next) => {
                        self.send().await;
                        continue;
                    }
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
                w = events.recv(), if self.following => {
                    match w {
                        Some(w) => {
                            self.outbox.push(w);
                            // All that is asked by now goes in one batch.
                            while let Ok(w) = events.try_recv() {
                                self.outbox.push(w);
                            }
                            self.send().await;
                        }
                        // The room is no longer followed: store what is left, then stop.
                        None => {
                            self.following = false;
                            self.feed = None;
                        }
                    }
                    continue;
                }
                _ = async { before.as_mut().expect("guarded").await }, if before.is_some() => {
                    before = None;
                    self.held = false;
                    self.send().await;
                    continue;
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                    for id in self.outbox.expired(Instant::now()) {
                        self.pending.done();
                        if self.following {
                            let why = "the cluster did not store it (no acknowledgement in time)".into();
                            let _ = self.tx.send(ClusterIn::Failed { id, why });
                        }
                    }
                    self.send().await;
                    continue;
                }
                () = tokio::time::sleep_until(resend.unwrap_or_else(far)), if resend.is_some() => {
                    // NATS may have lost the batch, or this reader its delivery: a reader that
                    // hears nothing at all (not even heartbeats) is only noticed after two
                    // heartbeats, longer than a batch may wait (seen under load: a room followed
                    // again while its old task drained heard nothing of its own batch, and its
                    // events were given up). So the log is read again from `next` as well.
                    debug!(room = %self.room, "a batch with no word of it is sent again");
                    self.resend().await;
                }
                changed = self.links.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.resend().await;
                }
                _ = look.tick() => {
                    if std::mem::take(&mut self.heard) {
                        continue;
                    }
                    debug!(room = %self.room, "room reader heard nothing for two heartbeats");
                }
            }
            // The connection came back, a delivery was missed, nothing came for too long, a
            // batch on its way had no word of it (or the read ended): read again from `next`.
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

    /// Publishes the outbox's next batch, if it has one and none is on its way, once the log
    /// is read to its end (a batch after an older end would be refused).
    async fn send(&mut self) {
        if self.seen < self.caught_up_at || self.held {
            return;
        }
        let now = Instant::now();
        if let Some(batch) = self.outbox.send(self.seen, self.last_room, &self.me, now) {
            self.publish(batch).await;
        }
    }

    /// Sends the batch on its way again.
    async fn resend(&mut self) {
        if let Some(batch) = self.outbox.resend(Instant::now()) {
            self.publish(batch).await;
        }
    }

    async fn publish(&mut self, (payload, after, line): BatchSend) {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
            after.to_string().as_str(),
        );
        if let Some(line) = line {
            headers.insert(async_nats::header::NATS_MESSAGE_ID, line.as_str());
        }
        let sent = self
            .client
            .publish_with_headers(self.subject.clone(), headers, payload)
            .await;
        if let Err(e) = sent {
            // Sent again after a while, or when NATS is back.
            debug!(room = %self.room, error = %e, "batch not sent");
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
        if self.hand_over(seq, &m.payload) {
            Take::Next
        } else {
            Take::Stop
        }
    }

    /// Takes the batch of stream seq `seq`: this node's events in it are acknowledged, or
    /// this node's batch on its way was refused; its events are handed over (if the hub
    /// follows the room). False once the hub side is gone.
    fn hand_over(&mut self, seq: u64, payload: &[u8]) -> bool {
        if seq < self.next {
            return true;
        }
        self.next = seq + 1;
        let Some(batch) = crate::batch::decode(payload) else {
            warn!(room = %self.room, seq, "room log message not understood; skipped");
            self.seen = self.seen.max(seq);
            return true;
        };
        let mut origins = None;
        if seq > self.seen {
            self.seen = seq;
            self.last_room = batch.last();
            let mine = (batch.node == &*self.me).then_some(batch.number);
            origins = self.outbox.stored(mine);
            for _ in origins.iter().flatten().flatten() {
                self.pending.done();
            }
        }
        if !self.following {
            return true;
        }
        for (i, (about, bytes)) in batch.events.iter().enumerate() {
            let room_seq = batch.first + i as u64;
            let mut event = match decode_payload::<RoomEvent>(bytes) {
                Ok(ev) => ev,
                Err(e) => {
                    warn!(room = %self.room, seq = room_seq, error = %e, "room event not understood; skipped");
                    continue;
                }
            };
            event.room = self.room.clone();
            event.seq = Seq(room_seq);
            if let Some(feed) = &self.feed {
                feed.add(&event, crate::batch::position(seq, i));
            }
            let node_now = if about.is_empty() { batch.node } else { about };
            if *self.last_node != *node_now {
                self.last_node = std::sync::Arc::from(node_now);
            }
            let node = self.last_node.clone();
            if room_seq < self.recent_from {
                // Only who is in the room is taken from the older log (member lists count
                // each member on its node): core says which events tell it.
                if event.kind.changes_membership()
                    && self.tx.send(ClusterIn::Past { event, node }).is_err()
                {
                    return false;
                }
                continue;
            }
            let origin = origins.as_ref().and_then(|o| o.get(i).copied().flatten());
            let remote = ClusterIn::Remote {
                event,
                origin,
                node,
            };
            if self.tx.send(remote).is_err() {
                return false;
            }
        }
        true
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

/// The node holding `nick` (its owner entry), if any.
async fn holder(nicks: &kv::Store, nick: &Nick) -> Result<Option<String>, String> {
    let entry = nicks
        .entry(nick_key(nick))
        .await
        .map_err(|e| e.to_string())?;
    Ok(entry
        .filter(|e| e.operation == kv::Operation::Put)
        .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
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

/// A session record as the cluster keeps it; its refused messages and the token before its
/// token follow it in the value, when it has either ([`SessionTail`]: an older node reads the
/// record and ignores what follows; a value an older node wrote has nothing there).
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

/// What follows a [`StoredSession`] in its value. After it, when the session took a message
/// with id 0 ([`SessionRecord::took_zero`]) or was put out of rooms, one more value: whether it
/// took it (an older node ignores it, and a value without it took none); then, when it was put
/// out of rooms ([`SessionRecord::put_out`]), those rooms (an older node ignores them too).
type SessionTail = (
    Vec<(natter_core::MsgId, natter_core::wire::ErrorKind)>,
    Option<(u64, [u8; 32])>,
);

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
    let mut value = bincode::serde::encode_to_vec(&stored, bincode::config::standard())
        .map_err(|e| e.to_string())?;
    let put_out = !r.put_out.is_empty();
    if !r.refused.is_empty() || r.prev.is_some() || r.took_zero || put_out {
        let tail: SessionTail = (r.refused.clone(), r.prev.map(|(id, h)| (id, h.0)));
        let tail = bincode::serde::encode_to_vec(&tail, bincode::config::standard())
            .map_err(|e| e.to_string())?;
        value.extend(tail);
    }
    if r.took_zero || put_out {
        let zero = bincode::serde::encode_to_vec(r.took_zero, bincode::config::standard())
            .map_err(|e| e.to_string())?;
        value.extend(zero);
    }
    if put_out {
        let rooms = bincode::serde::encode_to_vec(&r.put_out, bincode::config::standard())
            .map_err(|e| e.to_string())?;
        value.extend(rooms);
    }
    Ok(Bytes::from(value))
}

/// What follows byte `at` of `of`, if anything does.
fn rest(at: usize, of: &[u8]) -> Option<&[u8]> {
    of.get(at..).filter(|rest| !rest.is_empty())
}

fn decode_session(value: &[u8]) -> Result<SessionRecord, String> {
    let (s, read): (StoredSession, usize) =
        bincode::serde::decode_from_slice(value, bincode::config::standard())
            .map_err(|e| e.to_string())?;
    let mut put_out = Vec::new();
    let ((refused, prev), took_zero): (SessionTail, bool) = match rest(read, value) {
        Some(tail) => {
            let (head, read): (SessionTail, usize) =
                bincode::serde::decode_from_slice(tail, bincode::config::standard())
                    .map_err(|e| format!("refused messages and token before: {e}"))?;
            let zero = match rest(read, tail) {
                Some(more) => {
                    let (zero, read): (bool, usize) =
                        bincode::serde::decode_from_slice(more, bincode::config::standard())
                            .map_err(|e| format!("whether id 0 was taken: {e}"))?;
                    if let Some(rooms) = rest(read, more) {
                        put_out =
                            bincode::serde::decode_from_slice(rooms, bincode::config::standard())
                                .map_err(|e| format!("rooms put out of: {e}"))?
                                .0;
                    }
                    zero
                }
                None => false,
            };
            (head, zero)
        }
        None => ((Vec::new(), None), false),
    };
    Ok(SessionRecord {
        token: TokenHash(s.token),
        token_id: s.token_id,
        nick: s.nick,
        rooms: s.rooms,
        last_id: s.last_id,
        took_zero,
        refused,
        prev: prev.map(|(id, h)| (id, TokenHash(h))),
        put_out,
        // A cluster keeps no device's key with its session (`/devices` is refused there).
        device_key: None,
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

/// The stream sequence of the batch holding room seq `room_seq` (or the last batch before it)
/// in a log of stream sequences `first..=last`: a binary search, `log2` of the batches
/// between the bounds in reads (a batch holds 1 to `MAX_EVENTS` events, and the log's room
/// seqs are contiguous from its first batch's). A message that is not a batch (a log written
/// before batches) is taken for one before every batch.
async fn locate(
    stream: &stream::Stream,
    first: u64,
    last: u64,
    first_room: u64,
    room_seq: u64,
) -> Result<u64, String> {
    let ahead = room_seq.saturating_sub(first_room);
    let mut lo = (first + ahead / crate::batch::MAX_EVENTS as u64).min(last);
    let mut hi = first.saturating_add(ahead).min(last);
    // The answer is in lo..=hi: the last batch whose first event is at or before room_seq.
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        match batch_at(stream, mid).await? {
            Some((from, _)) if from > room_seq => hi = mid - 1,
            _ => lo = mid,
        }
    }
    Ok(lo)
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
    let read = async {
        let (first, last, last_room) = log_ends(&mut stream).await?;
        let empty = HistoryPage {
            events: Vec::new(),
            at_start: true,
        };
        if last == 0 {
            return Ok(empty);
        }
        let first_room = batch_at(&stream, first).await?.map_or(1, |(from, _)| from);
        let upto = q.before.0.saturating_sub(1).min(last_room);
        let from = upto.saturating_sub(limit - 1).max(first_room);
        if upto < from {
            return Ok(empty);
        }
        let at_start = from <= first_room;
        let (s_from, s_upto) = if upto == last_room {
            (locate(&stream, first, last, first_room, from).await?, last)
        } else {
            let s_upto = locate(&stream, first, last, first_room, upto).await?;
            (
                locate(&stream, first, s_upto, first_room, from).await?,
                s_upto,
            )
        };
        let mut messages = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: s_from,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut events = Vec::with_capacity((upto - from + 1) as usize);
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| e.to_string())?;
            let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
            if seq > s_upto {
                break;
            }
            if let Some(batch) = crate::batch::decode(&m.payload) {
                for (i, (_, bytes)) in batch.events.iter().enumerate() {
                    let room_seq = batch.first + i as u64;
                    if room_seq < from || room_seq > upto {
                        continue;
                    }
                    match decode_payload::<RoomEvent>(bytes) {
                        Ok(mut ev) => {
                            ev.room = q.room.clone();
                            ev.seq = Seq(room_seq);
                            events.push(ev);
                        }
                        Err(e) => {
                            warn!(room = %q.room, seq = room_seq, error = %e, "room event not understood; skipped")
                        }
                    }
                }
            }
            if seq >= s_upto {
                break;
            }
        }
        Ok::<HistoryPage, String>(HistoryPage { events, at_start })
    };
    tokio::time::timeout(h.wait, read)
        .await
        .map_err(|_| unavailable(&"no answer in time"))?
        .map_err(|e| unavailable(&e))
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
            took_zero: false,
            prev: None,
            refused: Vec::new(),
            put_out: Vec::new(),
            device_key: None,
            updated: Millis(1_234),
        };
        let bytes = encode_session(&r, "node1").unwrap();
        assert_eq!(decode_session(&bytes).unwrap(), r);
        assert!(decode_session(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(session_key(42), "000000000000002a");
        // With refused messages: an older node reads the record (what it knows of), a newer
        // one all of it.
        let refused = SessionRecord {
            refused: vec![(
                natter_core::MsgId(3),
                natter_core::wire::ErrorKind::NotInRoom,
            )],
            prev: Some((41, TokenHash([6; 32]))),
            ..r.clone()
        };
        let bytes = encode_session(&refused, "node1").unwrap();
        assert_eq!(decode_session(&bytes).unwrap(), refused);
        let (older, _): (StoredSession, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(older.last_id, r.last_id);
        assert!(decode_session(&bytes[..bytes.len() - 1]).is_err());
        // Having taken id 0, with and without the rest of the tail.
        for zero in [
            SessionRecord {
                last_id: natter_core::MsgId(0),
                took_zero: true,
                ..r.clone()
            },
            SessionRecord {
                last_id: natter_core::MsgId(0),
                took_zero: true,
                ..refused.clone()
            },
            // Put out of rooms, with and without having taken id 0 or the rest of the tail.
            SessionRecord {
                put_out: vec![RoomName::new("#gone").unwrap()],
                ..r.clone()
            },
            SessionRecord {
                took_zero: true,
                put_out: vec![
                    RoomName::new("#gone").unwrap(),
                    RoomName::new("#x").unwrap(),
                ],
                ..refused.clone()
            },
        ] {
            let bytes = encode_session(&zero, "node1").unwrap();
            assert_eq!(decode_session(&bytes).unwrap(), zero);
        }
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

    fn waiting(id: u64, deadline: Instant) -> Waiting {
        Waiting {
            id: Some(id),
            entry: crate::batch::entry("", &id.to_le_bytes()),
            deadline,
            line: None,
        }
    }

    /// The hub's numbers in a batch's payload (each test event's bytes are its number).
    fn ids_in(payload: &[u8]) -> (u64, Vec<u64>) {
        let b = crate::batch::decode(payload).unwrap();
        let ids = b
            .events
            .iter()
            .map(|(_, e)| u64::from_le_bytes((*e).try_into().unwrap()));
        (b.first, ids.collect())
    }

    #[test]
    fn an_outbox_sends_one_batch_at_a_time_and_a_refused_one_goes_first_again() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let mut o = Outbox::new(3, BatchNumbers::default());
        assert!(o.send(0, 0, "n1", t0).is_none(), "nothing to send");
        o.push(waiting(1, later));
        let (p, after, _) = o.send(0, 0, "n1", t0).unwrap();
        assert_eq!((after, ids_in(&p)), (0, (1, vec![1])));
        // Asked meanwhile: waits for the batch on its way.
        for id in 2..=6 {
            o.push(waiting(id, later));
        }
        assert!(o.send(0, 0, "n1", t0).is_none());
        // The same batch again (no word of it).
        assert_eq!(o.resend(t0).unwrap().0, p);
        // Stored: its events are acknowledged; the next batch holds what waits, at most 3.
        assert_eq!(o.stored(Some(1)), Some(vec![Some(1)]));
        let (p, after, _) = o.send(5, 1, "n1", t0).unwrap();
        assert_eq!((after, ids_in(&p)), (5, (2, vec![2, 3, 4])));
        // Another node's batch (or an old one of this node's) came first: refused, sent
        // again first, numbered after the other's events.
        assert_eq!(o.stored(None), None);
        assert_eq!(o.stored(Some(1)), None, "nothing on its way");
        let (p, after, _) = o.send(6, 4, "n1", t0).unwrap();
        assert_eq!((after, ids_in(&p)), (6, (5, vec![2, 3, 4])));
        assert_eq!(
            o.stored(Some(2)),
            None,
            "an earlier attempt's number is not this one's"
        );
        let (p, _, _) = o.send(7, 9, "n1", t0).unwrap();
        assert_eq!(ids_in(&p), (10, vec![2, 3, 4]));
        assert_eq!(o.stored(Some(4)), Some(vec![Some(2), Some(3), Some(4)]));
        let (p, _, _) = o.send(8, 12, "n1", t0).unwrap();
        assert_eq!(ids_in(&p), (13, vec![5, 6]));
        assert_eq!(o.stored(Some(5)), Some(vec![Some(5), Some(6)]));
        assert!(o.is_empty());
    }

    /// A room followed again while its old task still stores this node's events: the new
    /// task's first batch may go before it has read the old task's last one (JetStream
    /// refuses it: it follows an older end of the log). Reading that batch, this node's but
    /// not the one on its way, is its refusal, not its acknowledgement: else its events are
    /// acknowledged and never stored (under load, `batches.rs`'s room let go and followed
    /// again lost its last line so: the other node never read it).
    #[test]
    fn a_room_followed_again_does_not_take_its_old_tasks_batch_for_its_own() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let numbers = BatchNumbers::default();
        let mut old = Outbox::new(3, numbers.clone());
        let mut new = Outbox::new(3, numbers);
        let number = |p: &[u8]| crate::batch::decode(p).unwrap().number;
        old.push(waiting(1, later));
        let (p, _, _) = old.send(0, 0, "n1", t0).unwrap();
        let old_number = number(&p);
        // The old task reads its batch back and ends; the new one has not read it yet.
        assert_eq!(old.stored(Some(old_number)), Some(vec![Some(1)]));
        assert!(old.is_empty());
        new.push(waiting(2, later));
        let (p, after, _) = new.send(0, 0, "n1", t0).unwrap();
        assert_eq!(after, 0, "after the end the new task knows of: refused");
        assert_ne!(number(&p), old_number);
        assert_eq!(new.stored(Some(old_number)), None, "not acknowledged");
        // Sent again after the old task's batch, and acknowledged by its own.
        let (p, after, _) = new.send(1, 1, "n1", t0).unwrap();
        assert_eq!((after, ids_in(&p)), (1, (2, vec![2])));
        assert_eq!(new.stored(Some(number(&p))), Some(vec![Some(2)]));
        assert!(new.is_empty());
    }

    #[test]
    fn an_outbox_gives_events_up_at_their_deadline_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut o = Outbox::new(crate::batch::MAX_EVENTS, BatchNumbers::default());
        o.push(waiting(1, t0 + s));
        o.send(0, 0, "n1", t0).unwrap();
        o.push(waiting(2, t0 + 2 * s));
        o.push(waiting(3, t0 + 3 * s));
        assert_eq!(o.next_deadline(), Some(t0 + s));
        assert!(o.expired(t0).is_empty());
        // 1 is on its way: given up (it may still be stored), and its batch let go as
        // nothing in it waits any more; 2 is dropped from the queue.
        assert_eq!(o.expired(t0 + 2 * s), vec![1, 2]);
        assert!(o.sent().is_none());
        assert_eq!(o.next_deadline(), Some(t0 + 3 * s));
        let (p, _, _) = o.send(1, 1, "n1", t0).unwrap();
        assert_eq!(ids_in(&p).1, vec![3]);
        // A batch with one given up and one not: stored, the given up one is no one's.
        o.push(waiting(4, t0 + 9 * s));
        assert_eq!(o.stored(Some(2)), Some(vec![Some(3)]));
        o.push(waiting(5, t0 + 4 * s));
        let (p, _, _) = o.send(2, 2, "n1", t0).unwrap();
        assert_eq!(ids_in(&p).1, vec![4, 5]);
        assert_eq!(o.expired(t0 + 5 * s), vec![5]);
        assert!(o.sent().is_some(), "4 still waits for it");
        // Refused: only 4 goes again.
        assert_eq!(o.stored(None), None);
        let (p, _, _) = o.send(3, 4, "n1", t0).unwrap();
        assert_eq!(ids_in(&p).1, vec![4]);
        assert!(o.expired(t0 + 9 * s) == vec![4] && o.is_empty());
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
    async fn more_replicas_than_a_single_nats_server_is_refused_at_once_naming_the_flag() {
        // `--cluster-replicas 3` against one nats-server: JetStream refuses every R3 stream
        // ("replicas > 1 not supported in non-clustered mode"), which the start said as a bare
        // JetStream error until the thirty-third session; now in the operator's words, the flag
        // and the server count, before anything else is made.
        let nats = crate::test_server::NatsServer::start();
        let cfg = ClusterConfig {
            replicas: 3,
            ..ClusterConfig::new(vec![nats.url()])
        };
        let t0 = Instant::now();
        let Err(e) = Node::start(cfg).await else {
            panic!("started with 3 replicas on one nats-server");
        };
        let said = e.to_string();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(said.contains("--cluster-replicas 3"), "{said}");
        assert!(said.contains("1 nats-server"), "{said}");
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
    async fn every_reaper_of_a_gone_node_dates_its_quits_by_the_first_ones_time() {
        let nats = crate::test_server::NatsServer::start();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let cfg = ClusterConfig::new(vec![nats.url()]);
        let nicks = bucket(&js, &cfg, "nicks", Duration::ZERO).await.unwrap();
        let first = reap_time(&nicks, "a").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Another room's reaper, later (on this node or another): the same time.
        assert_eq!(reap_time(&nicks, "a").await.unwrap(), first);
        // Another node gone, later: its own.
        assert!(reap_time(&nicks, "b").await.unwrap() > first);
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
