//! What natter-server shows at `--metrics-listen` (natter-ops' endpoint): the hub's counts
//! ([`natter_core::hub::Stats`], [`natter_core::hub::Census`]) copied into prometheus-client
//! metrics by the hub task at most every [`COPY_EVERY`], the hub's batch time and the store's
//! commit latency as lock-free histograms, and `/readyz`'s answer ([`Health`]).
//!
//! Counting happens in the hub as plain additions; nothing on the fan-out path touches an atomic
//! or a label. Every label is one of a small fixed set (dialect, state, kind, reason): nothing is
//! per room, nick or address.

use natter_core::hub::{CENSUS_KINDS, ConnKind, ConnState, Hub, MsgKind, RefusedWhy};
use natter_ops::AtomicHistogram;
use natter_ops::endpoint::{ReadyCheck, ReadyFuture};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often, at most, the hub task copies its counts into the metrics: a scrape sees numbers
/// at most this old, and a busy hub pays for one copy (one pass over the connections) per
/// interval, not per message.
pub(crate) const COPY_EVERY: Duration = Duration::from_millis(100);

type Labels = Vec<(&'static str, &'static str)>;

fn kind_label(k: Option<ConnKind>) -> &'static str {
    match k {
        None => "unknown",
        Some(ConnKind::Binary) => "binary",
        Some(ConnKind::Text) => "text",
        Some(ConnKind::Irc) => "irc",
    }
}

/// natter-server's metrics, registered once. The hub task owns the only writer of the
/// counters ([`Metrics::copy`]); the histograms are shared handles.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    connections: Vec<[Gauge; ConnState::ALL.len()]>,
    users: Gauge,
    detached: Gauge,
    rooms: Gauge,
    messages_in: [Counter; MsgKind::ALL.len()],
    deliveries: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    gaps: Counter,
    flood_delayed: Counter,
    flood_refused: Counter,
    flood_nick_refused: Counter,
    refused: [Counter; RefusedWhy::ALL.len()],
    resumes_ok: Counter,
    resumes_failed: Counter,
    sign_ins: [Counter; 3],
    moderation: [Counter; 2],
    queue_bytes: Gauge,
    queue_largest: Gauge,
    store_queue: Gauge,
    /// From the hub task taking a batch of input to its output handed to the connections.
    pub(crate) batch_time: AtomicHistogram,
    /// From a batch of writes handed to the store to its report that they are durable.
    pub(crate) store_commit: AtomicHistogram,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("natter");

        let conns = Family::<Labels, Gauge>::default();
        r.register(
            "connections",
            "Connections open, by dialect (unknown until the first bytes tell) and state",
            conns.clone(),
        );
        let connections = CENSUS_KINDS
            .iter()
            .map(|k| {
                ConnState::ALL.map(|s| {
                    conns
                        .get_or_create(&vec![("dialect", kind_label(*k)), ("state", s.as_str())])
                        .clone()
                })
            })
            .collect();
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.clone());
            g
        };
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let users = gauge(
            r,
            "users",
            "Users with a nick, attached or waiting to resume",
        );
        let detached = gauge(r, "users_detached", "Users waiting to resume");
        let rooms = gauge(r, "rooms", "Rooms that exist");

        let msgs = Family::<Labels, Counter>::default();
        r.register("messages_in", "Requests run, by kind", msgs.clone());
        let messages_in =
            MsgKind::ALL.map(|k| msgs.get_or_create(&vec![("kind", k.as_str())]).clone());
        let deliveries = counter(
            r,
            "deliveries",
            "Room events queued for a member (a broadcast to N members is N)",
        );
        let bytes = Family::<Labels, Counter>::default();
        r.register_with_unit(
            "socket",
            "Bytes read from and written to client sockets",
            Unit::Bytes,
            bytes.clone(),
        );
        let bytes_in = bytes.get_or_create(&vec![("direction", "in")]).clone();
        let bytes_out = bytes.get_or_create(&vec![("direction", "out")]).clone();
        let gaps = counter(
            r,
            "gaps",
            "Gap markers sent: a client missed part of a room",
        );
        let flood = Family::<Labels, Counter>::default();
        r.register(
            "flood",
            "Requests held back by flood control: delayed (queued for a token) or refused (kind=nick: a nick change refused by its own rate)",
            flood.clone(),
        );
        let flood_delayed = flood.get_or_create(&vec![("outcome", "delayed")]).clone();
        let flood_refused = flood.get_or_create(&vec![("outcome", "refused")]).clone();
        // Nick changes have their own bucket: refused ones carry `kind="nick"`.
        let flood_nick_refused = flood
            .get_or_create(&vec![("outcome", "refused"), ("kind", "nick")])
            .clone();
        let refused_family = Family::<Labels, Counter>::default();
        r.register(
            "connections_refused",
            "Connections turned away, by reason",
            refused_family.clone(),
        );
        let refused = RefusedWhy::ALL.map(|w| {
            refused_family
                .get_or_create(&vec![("reason", w.as_str())])
                .clone()
        });
        let resumes = Family::<Labels, Counter>::default();
        r.register("resumes", "Session resumes, by outcome", resumes.clone());
        let resumes_ok = resumes.get_or_create(&vec![("outcome", "ok")]).clone();
        let resumes_failed = resumes.get_or_create(&vec![("outcome", "failed")]).clone();
        let sign_ins_family = Family::<Labels, Counter>::default();
        r.register(
            "sign_ins",
            "Sign-ins to accounts (registrations included), by outcome",
            sign_ins_family.clone(),
        );
        let sign_ins = ["ok", "failed", "throttled"]
            .map(|o| sign_ins_family.get_or_create(&vec![("outcome", o)]).clone());
        let moderation_family = Family::<Labels, Counter>::default();
        r.register(
            "moderation_actions",
            "Moderation actions done (each a line in the audit log), by scope: a room's \
             operators, or the server's admins",
            moderation_family.clone(),
        );
        let moderation = ["room", "server"]
            .map(|o| moderation_family.get_or_create(&vec![("scope", o)]).clone());
        let queue_bytes = Family::<Labels, Gauge>::default();
        r.register_with_unit(
            "outbound_queue",
            "Bytes queued for clients and not yet written: all connections, and the largest one",
            Unit::Bytes,
            queue_bytes.clone(),
        );
        let queue_total = queue_bytes.get_or_create(&vec![("of", "total")]).clone();
        let queue_largest = queue_bytes.get_or_create(&vec![("of", "largest")]).clone();
        let store_queue = gauge(
            r,
            "store_queue_batches",
            "Batches of writes handed to the store or waiting for it, not yet reported",
        );
        let batch_time = AtomicHistogram::new(&natter_ops::histogram::TIME_BUCKETS);
        r.register_with_unit(
            "hub_batch",
            "Time the hub task takes for one batch of input and its output",
            Unit::Seconds,
            batch_time.clone(),
        );
        let store_commit = AtomicHistogram::new(&natter_ops::histogram::TIME_BUCKETS);
        r.register_with_unit(
            "store_commit",
            "Time from a batch of writes handed to the store to its durable report",
            Unit::Seconds,
            store_commit.clone(),
        );
        Metrics {
            registry: Arc::new(root),
            connections,
            users,
            detached,
            rooms,
            messages_in,
            deliveries,
            bytes_in,
            bytes_out,
            gaps,
            flood_delayed,
            flood_refused,
            flood_nick_refused,
            refused,
            resumes_ok,
            resumes_failed,
            sign_ins,
            moderation,
            queue_bytes: queue_total,
            queue_largest,
            store_queue,
            batch_time,
            store_commit,
        }
    }

    /// The registry the endpoint serves.
    pub(crate) fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Copies what the hub counted (and `store_queue`, batches not yet reported) into the
    /// metrics. One pass over the connections (the census): call it now and then, not per input.
    pub(crate) fn copy(&self, hub: &Hub, store_queue: usize) {
        fn set(c: &Counter, v: u64) {
            c.inner().store(v, Ordering::Relaxed);
        }
        fn gauge(g: &Gauge, v: usize) {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        let census = hub.census();
        for (k, row) in self.connections.iter().enumerate() {
            for (s, g) in row.iter().enumerate() {
                g.set(i64::try_from(census.connections[k][s]).unwrap_or(i64::MAX));
            }
        }
        gauge(&self.users, hub.users());
        gauge(&self.detached, hub.detached());
        gauge(&self.rooms, hub.rooms());
        gauge(&self.queue_bytes, hub.queued_bytes_total());
        gauge(&self.queue_largest, census.largest_backlog);
        gauge(&self.store_queue, store_queue);
        let s = hub.stats();
        for (c, v) in self.messages_in.iter().zip(s.messages_in) {
            set(c, v);
        }
        for (c, v) in self.refused.iter().zip(s.refused) {
            set(c, v);
        }
        set(&self.deliveries, s.deliveries);
        set(&self.bytes_in, s.bytes_in);
        set(&self.bytes_out, s.bytes_out);
        set(&self.gaps, s.gaps);
        set(&self.flood_delayed, s.flood_delayed);
        set(&self.flood_refused, s.flood_refused);
        set(&self.flood_nick_refused, s.flood_nick_refused);
        set(&self.resumes_ok, s.resumes_ok);
        set(&self.resumes_failed, s.resumes_failed);
        let [ok, failed, throttled] = &self.sign_ins;
        set(ok, s.sign_ins_ok);
        set(failed, s.sign_ins_failed);
        set(throttled, s.sign_ins_throttled);
        let [room, server] = &self.moderation;
        set(room, s.moderation_room);
        set(server, s.moderation_server);
    }
}

/// What `/readyz` checks: the server is listening (not shutting down), a clustered node's link
/// to NATS is up, and when it has a store,
/// the store is open, its last write was durable, and its database file can be opened for
/// writing (a read-only remount or lost permissions show here before the next write fails).
///
/// After a write failed because the disk was full, the store is ready again once the data
/// directory has room ([`DISK_PROBE_BYTES`] can be written and synced there): else a server
/// taken out of rotation by this very check would get no new message to write, and stay out
/// for ever after space came back.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) listening: AtomicBool,
    /// The store works (or nothing was reported yet): false after a failed batch or once the
    /// store has stopped, true again once a batch with messages is durable.
    pub(crate) store_ok: AtomicBool,
    /// The store's last failed batch failed because the disk was full (meaningful while
    /// `store_ok` is false).
    pub(crate) disk_full: AtomicBool,
    /// The store's database file, when there is a store.
    pub(crate) db_path: Option<PathBuf>,
    /// The last disk probe's time and outcome: at most one probe per [`DISK_PROBE_EVERY`],
    /// however often `/readyz` is asked.
    last_probe: std::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    /// A clustered node's link to NATS, once the node has started: while it is down the hub
    /// refuses new rooms, lines and settings changes, so the node is not ready.
    pub(crate) cluster: std::sync::OnceLock<natter_cluster::Link>,
}

/// At most one disk probe this often; `/readyz` asked more often answers with the last one.
pub(crate) const DISK_PROBE_EVERY: Duration = Duration::from_secs(1);

/// Bytes `/readyz` writes (and removes) in the data directory to see that a full disk has room
/// again: a few batches' worth.
pub(crate) const DISK_PROBE_BYTES: usize = 1 << 20;

/// The file `/readyz` writes its probe to, in the data directory.
pub(crate) const DISK_PROBE_FILE: &str = "natter.readyz-probe";

impl Health {
    pub(crate) fn new(db_path: Option<PathBuf>) -> Health {
        Health {
            listening: AtomicBool::new(false),
            store_ok: AtomicBool::new(true),
            disk_full: AtomicBool::new(false),
            db_path,
            last_probe: std::sync::Mutex::new(None),
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// `/readyz`'s check.
    pub(crate) fn check(self: &Arc<Self>) -> ReadyCheck {
        let health = Arc::clone(self);
        Arc::new(move || -> ReadyFuture {
            let health = Arc::clone(&health);
            Box::pin(async move { health.ready().await })
        })
    }

    async fn ready(&self) -> Result<(), String> {
        if !self.listening.load(Ordering::Relaxed) {
            return Err("not listening (starting or shutting down)".into());
        }
        if self.cluster.get().is_some_and(|link| !link.is_up()) {
            return Err("the cluster is unavailable (no NATS server answers)".into());
        }
        let Some(path) = self.db_path.clone() else {
            return Ok(());
        };
        let room_again = if self.store_ok.load(Ordering::Relaxed) {
            false
        } else if self.disk_full.load(Ordering::Relaxed) {
            // Only a full disk passes once it has room: any other failure waits for a write
            // that works.
            true
        } else {
            return Err("the store's last write failed or the store stopped".into());
        };
        if room_again {
            self.probe_disk(&path).await?;
        }
        let checked = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map(drop)
                .map_err(|e| format!("the store {} is not writable: {e}", path.display()))
        })
        .await;
        checked.map_err(|e| format!("the store check failed: {e}"))?
    }
}

impl Health {
    /// Whether the data directory of `db` has room again, probed at most once per
    /// [`DISK_PROBE_EVERY`].
    async fn probe_disk(&self, db: &std::path::Path) -> Result<(), String> {
        let lock = || self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, last)) = lock().as_ref()
            && at.elapsed() < DISK_PROBE_EVERY
        {
            return last.clone();
        }
        let dir = db.parent().unwrap_or(std::path::Path::new(".")).to_owned();
        let probed = tokio::task::spawn_blocking(move || {
            disk_has_room(&dir.join(DISK_PROBE_FILE)).map_err(|e| {
                format!(
                    "the store's disk is full: new messages are refused ({} has no room: {e})",
                    dir.display()
                )
            })
        })
        .await
        .unwrap_or_else(|e| Err(format!("the disk probe failed: {e}")));
        *lock() = Some((std::time::Instant::now(), probed.clone()));
        probed
    }
}

/// Whether [`DISK_PROBE_BYTES`] can be written to `probe` and synced; the file is removed
/// either way.
fn disk_has_room(probe: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let written = std::fs::File::create(probe).and_then(|mut f| {
        f.write_all(&vec![0u8; DISK_PROBE_BYTES])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(probe);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(dir: &std::path::Path, disk_full: bool) -> Arc<Health> {
        let health = Arc::new(Health::new(Some(dir.join("natter.db"))));
        health.listening.store(true, Ordering::Relaxed);
        health.store_ok.store(false, Ordering::Relaxed);
        health.disk_full.store(disk_full, Ordering::Relaxed);
        health
    }

    #[tokio::test]
    async fn after_a_full_disk_the_store_is_ready_once_its_directory_has_room_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("natter.db"), b"").unwrap();
        // The disk has room again (a temporary directory): ready, without waiting for a
        // message that a server out of rotation would never get.
        assert_eq!(failed(dir.path(), true).ready().await, Ok(()));
        assert!(
            !dir.path().join(DISK_PROBE_FILE).exists(),
            "the probe is removed"
        );
        // Any other failure waits for a write that works.
        let other = failed(dir.path(), false).ready().await.unwrap_err();
        assert!(other.contains("last write failed"), "{other}");
        // Still no room (here: the directory is gone): not ready, and why.
        let gone = dir.path().join("gone");
        let full = failed(&gone, true).ready().await.unwrap_err();
        assert!(full.starts_with("the store's disk is full"), "{full}");
        assert!(full.contains(&gone.display().to_string()), "{full}");
    }

    #[tokio::test]
    async fn the_disk_is_probed_at_most_once_a_second() {
        // SECURITY.md: whoever reaches /readyz cannot make the server write 1 MiB per request.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data").join("natter.db");
        std::fs::create_dir(db.parent().unwrap()).unwrap();
        let health = failed(db.parent().unwrap(), true);
        assert_eq!(health.probe_disk(&db).await, Ok(()));
        // The directory goes: a probe now would fail, but within the second the last answer
        // stands and nothing is written.
        std::fs::remove_dir(db.parent().unwrap()).unwrap();
        assert_eq!(health.probe_disk(&db).await, Ok(()));
        tokio::time::sleep(DISK_PROBE_EVERY).await;
        let err = health.probe_disk(&db).await.unwrap_err();
        assert!(err.contains("disk is full"), "{err}");
    }
}
