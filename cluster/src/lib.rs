//! natter's cluster backend (issue 23): several natter-server nodes share rooms, nicks and node
//! leases through NATS JetStream. The hub stays sans-IO and knows no NATS: it asks for
//! [`ClusterOut`](natter_core::hub::ClusterOut)s and is handed [`ClusterIn`]s, which [`Node`]
//! turns into JetStream calls and back.
//!
//! - **Rooms.** Each room is a JetStream stream of its own (`<PREFIX>_ROOM_<hex of the name>`,
//!   one subject) whose messages are batches of the room's events (`batch.rs`): a node sends
//!   what its users said while its last batch was on the way in one message. JetStream decides
//!   the order: a batch is published with `Nats-Expected-Last-Sequence`, the last stream
//!   sequence its node read, so it is stored only right there, and its events' room seqs
//!   follow the last batch's (contiguous, the same on every node). An event is acknowledged
//!   when it comes back from the log in its node's batch; every node that follows the room
//!   reads it through a consumer, and only then do members see it.
//! - **Nicks.** A KV bucket (`<prefix>_nicks`) maps a folded nick to the node holding it; a claim
//!   is a KV `create` (atomic: of two nodes claiming at once exactly one wins).
//! - **Sessions.** A KV bucket (`<prefix>_sessions`) keeps each resume session's record under
//!   its token id: the hash of the token's secret (never the token), the nick, the rooms. A
//!   client whose node died resumes on any other node, which reads the record, takes the nick
//!   over and takes the rooms over through their logs (a `Moved` event each, which no client
//!   shows).
//! - **Accounts.** A KV bucket (`<prefix>_accounts`) keeps each account whole under its folded
//!   name: the password's argon2id hash, rooms, read markers, device keys' hashes. Registering
//!   is a KV `create`; changes are compare-and-swap on the entry's revision; every node watches
//!   the bucket and tells its hub.
//! - **Rooms' settings.** A KV bucket (`<prefix>_rooms`) keeps each room's moderation state
//!   (founder, operators, voices, modes, bans, mutes, invitations) under the hex of its name;
//!   each change is an edit merged into the entry as it is (compare-and-swap on its revision),
//!   and every node watches the bucket and tells its hub.
//! - **Server bans.** A KV bucket (`<prefix>_bans`) keeps each admin's server-wide ban under
//!   its mask (a lift leaves a tombstone); every node watches it and tells its hub.
//! - **Users.** A KV bucket (`<prefix>_users`) keeps what each node says of its users (nick as
//!   spelt, account, away message) beside the nick's owner; every node watches it, so WHOIS,
//!   ISON and away know every node's users.
//! - **Kept direct messages.** A KV bucket (`<prefix>_held`) keeps the direct messages sent
//!   to an account with nothing connected on any node (at most 100, numbered), under its
//!   folded name: added compare-and-swap, read and delivered by the node it next signs in on,
//!   then removed (`held.rs`).
//! - **Notes of rooms an account was put out of while away** (`Write::AwayNotes`: kicked,
//!   banned, the room closed, told at its next sign-in) are not written to the cluster: the
//!   node the account was last connected to keeps them in memory, and they go with it (a
//!   single server keeps them in its store).
//! - **Topics.** A KV bucket (`<prefix>_topics`) keeps each room's newest topic told, with
//!   its event's seq (a later seq only replaces it), under the hex of its name; every node
//!   watches it and tells its hub, so a room only other nodes' users are in has its topic.
//! - **Walls.** An admin's `/wall` or `WALLOPS` is published on the plain NATS subject
//!   `<prefix>.wall` (not kept); every node subscribes and hands those of the other nodes to
//!   its hub, for its users.
//! - **Nodes.** A KV bucket (`<prefix>_nodes`) whose entries expire after the lease: each node
//!   refreshes its own key. A nick held by a node whose lease ran out may be taken over with a
//!   compare-and-swap on its revision.

mod accounts;
mod bans;
mod batch;
mod held;
mod kept;
mod line_id;
mod link;
mod names;
mod nats_url;
pub use nats_url::Credentials as NatsCredentials;
pub use nats_url::shown as nats_address_shown;
mod node;
mod presence;
mod rooms;
mod search;
#[cfg(any(test, feature = "test-server"))]
pub mod test_server;
mod topics;

pub use accounts::ClusterAccounts;
pub use bans::{KeptBan, ban_key};
pub use names::{nick_key, room_key, room_stream, room_subject};
pub use node::{BACKED_UP_PUBLISHES, ClusterIn, Link, MAX_PENDING_PUBLISHES, Node};
pub use rooms::KeptRoom;

use std::time::Duration;
use thiserror::Error;

/// How a node joins the cluster. Its `Debug` shows the addresses as the log does (a password in
/// one as `***`: see [`nats_address_shown`]).
#[derive(Clone)]
pub struct ClusterConfig {
    /// NATS servers (`nats://HOST:PORT`), any of which will do.
    pub servers: Vec<String>,
    /// Prefix of every stream, subject and bucket: several clusters can share one NATS.
    pub prefix: String,
    /// Replicas of each room stream and bucket (1 on a single nats-server; 3 in production).
    pub replicas: usize,
    /// Events a node reads back when it starts following a room (its history ring).
    pub recent: usize,
    /// How long a publish waits for JetStream's acknowledgement before it is refused.
    pub ack_timeout: Duration,
    /// How long a node's lease lasts without a refresh (refreshed every third of it).
    pub lease: Duration,
    /// How long a resume session's record is kept after it last changed (any node can resume
    /// it meanwhile; the hub's own grace decides on the node that holds it).
    pub session_ttl: Duration,
    /// Where the node keeps its search index of the followed rooms' logs (a directory of its
    /// own in it, removed when the node stops; see `search.rs`); `None`: the OS's temporary
    /// directory.
    pub search_dir: Option<std::path::PathBuf>,
    /// Whether chat lines carry a JetStream message id (`Nats-Msg-Id`, see `line_id.rs`), so a
    /// late copy of a line is stored once. Off by default: it costs nats-server about a third
    /// more CPU per message (bench/README.md).
    pub line_ids: bool,
    /// What the node signs in to NATS with, given apart from the addresses (a user and its
    /// password, a token, or a credentials file's user JWT and seed: natter-server reads them
    /// from a file or its environment, out of `ps` and the shell's history). `None`: those in the addresses
    /// (`nats://USER:PASSWORD@HOST:PORT`), if any.
    pub credentials: Option<NatsCredentials>,
}

impl ClusterConfig {
    /// Defaults for `servers`.
    pub fn new(servers: Vec<String>) -> ClusterConfig {
        ClusterConfig {
            servers,
            prefix: "natter".into(),
            replicas: 1,
            recent: 100,
            ack_timeout: Duration::from_secs(2),
            lease: Duration::from_secs(15),
            session_ttl: Duration::from_secs(86_400),
            search_dir: None,
            line_ids: false,
            credentials: None,
        }
    }
}

impl ClusterConfig {
    /// Whether credentials are given apart ([`ClusterConfig::credentials`]) and in an address
    /// too: those apart would be used, and the others silently not.
    pub fn credentials_twice(&self) -> bool {
        self.credentials.is_some() && self.credentials_in_address()
    }

    /// Whether an address holds credentials (`nats://USER:PASSWORD@HOST:PORT`).
    pub fn credentials_in_address(&self) -> bool {
        nats_url::credentials(&self.servers).is_some()
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ClusterConfig {
            servers,
            prefix,
            replicas,
            recent,
            ack_timeout,
            lease,
            session_ttl,
            search_dir,
            line_ids,
            credentials,
        } = self;
        let servers: Vec<String> = servers.iter().map(|s| nats_url::shown(s)).collect();
        f.debug_struct("ClusterConfig")
            .field("servers", &servers)
            .field("prefix", prefix)
            .field("replicas", replicas)
            .field("recent", recent)
            .field("ack_timeout", ack_timeout)
            .field("lease", lease)
            .field("session_ttl", session_ttl)
            .field("search_dir", search_dir)
            .field("line_ids", line_ids)
            .field("credentials", credentials)
            .finish()
    }
}

/// Why a node could not join the cluster.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// No NATS server answered.
    #[error("cannot reach NATS at {servers}: {source}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// NATS answered, but JetStream did not do what was asked (not enabled, no quorum).
    #[error("JetStream {what}: {why}")]
    JetStream {
        /// What was asked.
        what: &'static str,
        /// Why it failed.
        why: String,
    },
    /// More replicas than the NATS servers can hold: `--cluster-replicas` above 1 against a
    /// single nats-server (JetStream refuses every such stream), or above the servers of its
    /// JetStream cluster that are up (no placement within the start's wait).
    #[error(
        "--cluster-replicas {replicas} (NATTER_CLUSTER_REPLICAS) needs a JetStream cluster of at least {replicas} nats-servers, and {servers}: start natter-server with --cluster-replicas 1, or with {replicas} clustered nats-servers up (README, \"A cluster of nodes\") (JetStream said: {why})"
    )]
    Replicas {
        /// The replicas asked for.
        replicas: usize,
        /// What NATS has, in words (`nats://127.0.0.1:4222 is 1 nats-server, not clustered`).
        servers: String,
        /// JetStream's own words.
        why: String,
    },
    /// The node's local search index (a cache of the followed rooms' logs) cannot be made.
    #[error("{0}")]
    Index(String),
}
