//! Listening sockets, the accept loops and the graceful shutdown that ties the tasks together.
//!
//! Start runs in order: every address is bound (one in use, or bound by another server that is
//! starting, stops the start at once; a bound socket is alone on its port), the store
//! is opened and loaded (or the cluster joined), and only then do the sockets listen: a client
//! that comes while a migration runs is refused and retries, never accepted and left hanging.
//!
//! Shutdown runs in order: the accept loops stop accepting, the hub tells every client the server
//! is going away and closes them, the accept loops wait (at most `shutdown_grace`) for their
//! connection tasks and abort what is left, and the hub task ends.

use crate::clock::Clock;
use crate::hub_task::{self, Input};
use crate::metrics::{Health, Metrics};
use crate::socket_cap::SocketCap;
use crate::store::{self, StoreSide};
use crate::tls::{Handshakes, TlsDoor};
use crate::{ServerConfig, ServerError, conn, tls};
use natter_core::hub::{Change, Config, Door, Hub, ReconfigError};
use natter_ops::Endpoint;
use natter_store::{SqliteHandle, Store};
use natter_tls::ServerTls;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::{MissedTickBehavior, interval, sleep, timeout};
use tracing::{info, warn};

/// Inputs waiting for the hub task, from all connections together. Each reader has at most one
/// read (≤ 4 KiB) in it at a time, so this bounds memory and lets the hub batch busy moments.
const HUB_QUEUE: usize = 1024;

/// Pause after a failed accept (typically out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Sockets open at once, at most. The hub turns away connections past its own limits in words
/// (error line or frame), which needs the socket accepted; this cap is the file-descriptor
/// backstop beyond that, with headroom so the hub can still say the server is full.
fn socket_cap(max_connections: usize) -> usize {
    max_connections
        .saturating_add(max_connections / 8)
        .saturating_add(64)
        .min(Semaphore::MAX_PERMITS)
}

/// A running server. Stop it with [`Server::shutdown`]. Dropping it instead stops accepting and,
/// after `shutdown_grace` (and the second a closed connection drains for), drops every connection
/// without a word.
#[derive(Debug)]
pub struct Server {
    addrs: Vec<SocketAddr>,
    irc_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    irc_tls_addrs: Vec<SocketAddr>,
    tls: Option<Arc<ServerTls>>,
    stop: watch::Sender<bool>,
    hub_tx: mpsc::Sender<Input>,
    hub_task: JoinHandle<()>,
    /// True once the hub task has ended, however (see [`Server::failed`]).
    hub_ended: watch::Receiver<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    /// The socket backstop (it follows `max_connections` on reload).
    socket_cap: Arc<SocketCap>,
    health: Arc<Health>,
    metrics: Option<Endpoint>,
}

/// Why [`Server::reconfigure`] kept the running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The hub refused it (an invalid value, or one only a restart may change).
    #[error(transparent)]
    Refused(#[from] ReconfigError),
    /// The accounts could not be read again (no store, or the store failed to read).
    #[error("accounts not reloaded: {0}")]
    Accounts(String),
    /// The hub task is gone (the server is stopping).
    #[error("the server is stopping")]
    Stopping,
}

pub(crate) async fn start(config: ServerConfig) -> Result<Server, ServerError> {
    let any_tls = !config.tls_listen.is_empty() || !config.irc_tls_listen.is_empty();
    if config.listen.is_empty() && config.irc_listen.is_empty() && !any_tls {
        return Err(ServerError::NoListenAddress);
    }
    let tls = match (&config.tls_certs, any_tls) {
        (_, false) => None,
        (None, true) => return Err(ServerError::NoCertificate),
        (Some(c), true) => Some(Arc::new(ServerTls::load(&c.cert, &c.key)?)),
    };
    // One certificate and one count of handshakes per address for every TLS listener.
    let handshakes = Arc::new(Handshakes::new(
        config.hub.max_connections_per_ip,
        config.hub.exempt_loopback,
    ));
    let trusted_proxies: Arc<[std::net::IpAddr]> = config.hub.trusted_proxies.clone().into();
    let tls_doors = |door: Door, addrs: &[SocketAddr]| {
        let Some(tls) = &tls else {
            return Vec::new();
        };
        let d = TlsDoor {
            door,
            tls: tls.clone(),
            handshakes: handshakes.clone(),
            deadline: Duration::from_millis(config.hub.hello_timeout.0),
            trusted_proxies: trusted_proxies.clone(),
            plain_port: None,
        };
        addrs.iter().map(|a| (Kind::Tls(d.clone()), *a)).collect()
    };
    let doors = config
        .listen
        .iter()
        .map(|a| (Kind::Plain(Door::Natter), *a))
        .chain(
            config
                .irc_listen
                .iter()
                .map(|a| (Kind::Plain(Door::Irc), *a)),
        )
        .chain(tls_doors(Door::Natter, &config.tls_listen))
        .chain(tls_doors(Door::Irc, &config.irc_tls_listen));
    // Bound now, so that an address another server listens on (or is starting on) stops the
    // start at once; listening only once the hub is ready (below): meanwhile a client's
    // connection is refused, where a listening socket would complete it and leave it unanswered
    // for as long as the store takes to open (a migration) or NATS to answer. Clients retry a
    // refused connection. A bound socket is alone on its port (`natter_ops::bind`): a second
    // server started meanwhile stops at its own bind, before it opens its store.
    let mut listeners = Vec::new();
    for (door, addr) in doors {
        let l = natter_ops::bind(addr).map_err(|source| ServerError::bind(addr, source))?;
        let bound = l
            .local_addr()
            .map_err(|source| ServerError::bind(addr, source))?;
        listeners.push((door, l, bound));
    }
    let bound = |want: fn(&Kind) -> bool| {
        listeners
            .iter()
            .filter(|(door, ..)| want(door))
            .map(|(_, _, a)| *a)
            .collect()
    };
    let addrs: Vec<SocketAddr> = bound(|k| matches!(k, Kind::Plain(Door::Natter)));
    let irc_addrs: Vec<SocketAddr> = bound(|k| matches!(k, Kind::Plain(Door::Irc)));
    let tls_addrs = bound(|k| matches!(k, Kind::Tls(d) if d.door == Door::Natter));
    let irc_tls_addrs = bound(|k| matches!(k, Kind::Tls(d) if d.door == Door::Irc));
    // A TLS door points a peer that came without TLS at its plaintext twin, if there is one.
    let plain_natter = addrs.first().map(SocketAddr::port);
    let plain_irc = irc_addrs.first().map(SocketAddr::port);
    for (kind, ..) in &mut listeners {
        if let Kind::Tls(d) = kind {
            d.plain_port = match d.door {
                Door::Natter => plain_natter,
                Door::Irc => plain_irc,
            };
        }
    }

    let grace = config.shutdown_grace;
    let cap = socket_cap(config.hub.max_connections);
    let socket_cap = SocketCap::new(cap);
    let clock = Clock::new();
    let metrics = config.metrics_listen.map(|_| Arc::new(Metrics::new()));
    let health = Arc::new(Health::new(config.store.as_ref().map(|s| s.db_path())));
    let endpoint = match (config.metrics_listen, &metrics) {
        (Some(addr), Some(m)) => Some(Endpoint::start(addr, m.registry(), health.check()).await?),
        _ => None,
    };
    let commit_time = metrics.as_ref().map(|m| m.store_commit.clone());
    let account_add = hub_task::account_add(
        config.cluster.as_ref().map(|c| c.servers.as_slice()),
        &config.nats_flags,
        config.store.as_ref().map(|s| s.dir.as_path()),
    );
    let (hub, store, cluster) = match config.cluster {
        Some(cluster) => {
            let mut node = natter_cluster::Node::start(cluster).await?;
            let _ = health.cluster.set(node.link());
            info!(
                node = node.id(),
                "clustered: rooms, history, nicks and accounts live in JetStream"
            );
            let mut hub = Hub::new(config.hub);
            hub.enable_cluster();
            // Every account the cluster holds, before anyone can sign in.
            for (account, revision) in node.take_accounts() {
                hub.handle_account(account, revision, clock.now());
            }
            // Every room's settings (founders, bans, modes...), before anyone can join.
            for (room, shared, revision) in node.take_rooms() {
                hub.handle_room(room, Some(shared), None, revision, clock.now());
            }
            // Every server-wide ban, before anyone says hello.
            for (ban, revision) in node.take_server_bans() {
                hub.handle_server_ban(ban.mask.clone(), Some(ban), revision, clock.now());
            }
            (hub, None, Some(node))
        }
        None => {
            let (hub, store) =
                open_hub(config.hub, config.store, clock, commit_time, &health).await?;
            (hub, store, None)
        }
    };
    // The hub is ready: connections are taken from now on.
    let mut listening = Vec::new();
    for (door, bound, addr) in listeners {
        let l = bound
            .listen()
            .map_err(|source| ServerError::bind(addr, source))?;
        listening.push((door, l, addr));
    }
    hub_task::warn_unclaimed_admins(&hub, &account_add);
    let (hub_tx, hub_rx) = mpsc::channel(HUB_QUEUE);
    let sides = hub_task::Sides {
        store,
        cluster,
        account_add,
    };
    let (ended, hub_ended) = watch::channel(false);
    let hub_ended_guard = HubEnded {
        ended,
        health: Arc::clone(&health),
    };
    let hub_task = tokio::spawn(async move {
        // Dropped when the task ends: by returning, or by a panic unwinding it.
        let _ended = hub_ended_guard;
        hub_task::run(hub, sides, hub_rx, clock, grace, metrics).await;
    });
    let (stop, stop_rx) = watch::channel(false);
    let accept_tasks = listening
        .into_iter()
        .map(|(door, listener, addr)| {
            info!(door = %door.name(), %addr, "listening");
            tokio::spawn(accept_loop(
                listener,
                door,
                hub_tx.clone(),
                Arc::clone(&socket_cap),
                stop_rx.clone(),
                grace,
            ))
        })
        .collect();
    health.listening.store(true, Ordering::Relaxed);
    Ok(Server {
        addrs,
        irc_addrs,
        tls_addrs,
        irc_tls_addrs,
        tls,
        stop,
        hub_tx,
        hub_task,
        hub_ended,
        accept_tasks,
        socket_cap,
        health,
        metrics: endpoint,
    })
}

/// Says that the hub task has ended, when it is dropped with the task (also while a panic
/// unwinds it): the server serves nobody from then on, so `/readyz` says not ready and
/// [`Server::failed`] wakes.
struct HubEnded {
    ended: watch::Sender<bool>,
    health: Arc<Health>,
}

impl Drop for HubEnded {
    fn drop(&mut self) {
        self.health.listening.store(false, Ordering::Relaxed);
        self.ended.send_replace(true);
    }
}

/// The hub, with what the store holds when there is one: rooms, history and sessions restored.
async fn open_hub(
    mut hub: natter_core::hub::Config,
    store: Option<natter_store::Config>,
    clock: Clock,
    commit_time: Option<natter_ops::AtomicHistogram>,
    health: &Arc<Health>,
) -> Result<(Hub, Option<StoreSide>), ServerError> {
    let Some(cfg) = store else {
        info!(
            "no store: rooms and history live in memory only (ephemeral: --ephemeral, NATTER_EPHEMERAL or the config file's [store] ephemeral)"
        );
        return Ok((Hub::new(hub), None));
    };
    let (handle, reports) = tokio::task::spawn_blocking(move || SqliteHandle::open(&cfg)).await??;
    let now = clock.now();
    let opts = store::load_options(hub.history_on_join);
    let loaded = handle
        .load(opts)
        .await
        .map_err(|source| ServerError::Load {
            path: handle.path().to_path_buf(),
            source,
        })?;
    info!(
        path = %handle.path().display(),
        loaded = %store::describe(&loaded.rooms, loaded.sessions.len()),
        "store open"
    );
    hub.durable = true;
    let mut h = Hub::new(hub);
    h.restore(loaded, now);
    let store: Arc<dyn Store> = Arc::new(handle);
    let side = StoreSide::new(store, reports, commit_time, Arc::clone(health));
    Ok((h, Some(side)))
}

impl Server {
    /// The bound addresses, in the order of [`ServerConfig::listen`] (with real ports for `:0`).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// The bound IRC addresses, in the order of [`ServerConfig::irc_listen`].
    pub fn irc_addrs(&self) -> Vec<SocketAddr> {
        self.irc_addrs.clone()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, with
    /// [`ServerConfig::metrics_listen`] set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(Endpoint::local_addr)
    }

    /// Takes `hub` as the hub's configuration from now on (see
    /// [`Hub::reconfigure`](natter_core::hub::Hub::reconfigure)): open connections stay, new
    /// work meets the new limits. Returns what changed; on an error nothing changed.
    pub async fn reconfigure(&self, hub: Config) -> Result<Vec<Change>, ReloadError> {
        let max_connections = hub.max_connections;
        let (reply, answer) = oneshot::channel();
        let input = Input::Reconfigure {
            config: Box::new(hub),
            reply,
        };
        self.hub_tx
            .send(input)
            .await
            .map_err(|_| ReloadError::Stopping)?;
        let changes = answer.await.map_err(|_| ReloadError::Stopping)??;
        // The socket backstop follows the connection limit. Sockets open beyond a smaller cap
        // close in their own time, and no new one is accepted until they have.
        self.socket_cap.resize(socket_cap(max_connections));
        Ok(changes)
    }

    /// Reads the accounts from the store again (see [`Hub::load_accounts`]): new ones are added,
    /// changed passwords replaced, removed ones forgotten. New input waits until every write
    /// the hub handed out is durable and the read is done (milliseconds). Returns how many
    /// accounts there are now.
    pub async fn reload_accounts(&self) -> Result<usize, ReloadError> {
        let (reply, answer) = oneshot::channel();
        self.hub_tx
            .send(Input::ReloadAccounts { reply })
            .await
            .map_err(|_| ReloadError::Stopping)?;
        answer
            .await
            .map_err(|_| ReloadError::Stopping)?
            .map_err(ReloadError::Accounts)
    }

    /// The bound TLS addresses, in the order of [`ServerConfig::tls_listen`].
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.tls_addrs.clone()
    }

    /// The bound IRC-over-TLS addresses, in the order of [`ServerConfig::irc_tls_listen`].
    pub fn irc_tls_addrs(&self) -> Vec<SocketAddr> {
        self.irc_tls_addrs.clone()
    }

    /// Reads the TLS certificate and key again (e.g. on SIGHUP): new handshakes present the new
    /// certificate, open connections keep theirs. On an error (a missing file, a key that is not
    /// the certificate's) the certificate in use stays. `Ok` without TLS listeners.
    pub fn reload_certificates(&self) -> Result<(), ServerError> {
        self.certificates().reload()
    }

    /// A handle that reloads the certificates like [`Server::reload_certificates`], for a task
    /// of its own (a signal handler) that must not hold the server.
    pub fn certificates(&self) -> Certificates {
        Certificates(self.tls.clone())
    }

    /// Resolves if the hub task ends before [`Server::shutdown`] is called: a bug (a panic in
    /// it), or the store's writer gone. Nothing is served from then on (connections are
    /// accepted and closed), so the binary exits, for its supervisor to start it again.
    pub async fn failed(&self) {
        let mut ended = self.hub_ended.clone();
        // The sender is the hub task's guard, dropped after it has said `true`.
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Stops accepting, tells every client the server is going away, waits up to
    /// [`ServerConfig::shutdown_grace`] for that to be written, and closes everything.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.health.listening.store(false, Ordering::Relaxed);
        let _ = self.stop.send(true);
        // Fails only if the hub task is gone already; then there is nobody left to tell.
        let _ = self.hub_tx.send(Input::Shutdown).await;
        drop(self.hub_tx);
        let mut result = Ok(());
        for t in self.accept_tasks {
            if let Err(e) = t.await {
                result = Err(ServerError::Task(e));
            }
        }
        self.hub_task.await?;
        if let Some(m) = self.metrics {
            m.shutdown().await;
        }
        info!("server stopped");
        result
    }
}

/// The TLS listeners' certificate, to be reloaded: see [`Server::certificates`].
#[derive(Debug, Clone)]
pub struct Certificates(Option<Arc<ServerTls>>);

impl Certificates {
    /// See [`Server::reload_certificates`].
    pub fn reload(&self) -> Result<(), ServerError> {
        let Some(tls) = &self.0 else {
            return Ok(());
        };
        tls.reload()?;
        info!(cert = %tls.cert_path().display(), "TLS certificate reloaded");
        Ok(())
    }
}

/// What a listener serves.
#[derive(Clone)]
enum Kind {
    /// Plain TCP, this door's dialects.
    Plain(Door),
    /// A door (natter's own port or IRC) behind TLS.
    Tls(TlsDoor),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            // As `Door`'s Debug form had them in the log (tools look for `door=Irc`).
            Kind::Plain(Door::Natter) => "Natter",
            Kind::Plain(Door::Irc) => "Irc",
            Kind::Tls(d) if d.door == Door::Irc => "IrcTls",
            Kind::Tls(_) => "NatterTls",
        }
    }
}

/// The connection tasks of one accept loop, kept only to abort what outlives the shutdown
/// grace: an abort handle each (8 bytes) where a `JoinSet` entry cost ~64 (issue 22). A
/// finished task's handle still holds its task's memory, so finished handles are dropped every
/// [`PRUNE_EVERY`] and whenever the list is full, before it would grow.
#[derive(Default)]
struct Tasks {
    handles: Vec<AbortHandle>,
}

/// How often an accept loop drops the handles of connection tasks that have ended.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

impl Tasks {
    fn push(&mut self, handle: AbortHandle) {
        if self.handles.len() == self.handles.capacity() {
            self.prune();
        }
        self.handles.push(handle);
    }

    /// Drops finished tasks' handles, and gives back most of the list's room after a wave of
    /// connections has gone.
    fn prune(&mut self) {
        self.handles.retain(|h| !h.is_finished());
        if self.handles.capacity() > 4 * self.handles.len() + 64 {
            self.handles.shrink_to(2 * self.handles.len() + 16);
        }
    }

    fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits (polling, [`WAIT_STEP`] at a time) until every task has ended.
    async fn all_ended(&mut self) {
        loop {
            self.prune();
            if self.is_empty() {
                return;
            }
            sleep(WAIT_STEP).await;
        }
    }
}

/// How often the shutdown looks whether its connection tasks have ended.
const WAIT_STEP: Duration = Duration::from_millis(10);

/// Beyond the grace and the drain, what a shutdown allows for the hub task's grace starting
/// after the accept loops' (it hears `Shutdown` through its queue) and for a TLS connection's
/// close check.
const DRAIN_SLACK: Duration = Duration::from_millis(250);

/// Accepts on `door` until told to stop, then waits up to `grace` (and the drain after it) for
/// its connections and aborts the rest.
async fn accept_loop(
    listener: TcpListener,
    door: Kind,
    hub: mpsc::Sender<Input>,
    cap: Arc<SocketCap>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut conns = Tasks::default();
    let mut prune = interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(MissedTickBehavior::Delay);
    'accepting: loop {
        let permit = tokio::select! {
            _ = stop.changed() => break 'accepting,
            _ = prune.tick() => {
                conns.prune();
                continue 'accepting;
            }
            p = cap.acquire() => p,
        };
        let accepted = loop {
            tokio::select! {
                _ = stop.changed() => break 'accepting,
                _ = prune.tick() => conns.prune(),
                r = listener.accept() => break r,
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                // Spawned as it is, not inside an `async` block: a wrapper would store the
                // arguments a second time beside serve's own future, in every connection's task.
                // A task that panics is reported by the panic hook; nothing joins it.
                let task = match &door {
                    Kind::Plain(door) => {
                        tokio::spawn(conn::serve(stream, peer, *door, hub.clone(), permit))
                    }
                    Kind::Tls(tls) => {
                        tokio::spawn(tls::serve(stream, peer, tls.clone(), hub.clone(), permit))
                    }
                };
                conns.push(task.abort_handle());
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    drop(hub);
    // The hub has `grace` to have its going-away notices written; a connection whose notice
    // is written still drains its peer's unread input for up to `DRAIN_AFTER_CLOSE` (so the
    // close does not reset the connection and destroy the notice unread). Waiting `grace`
    // alone warned of connections that were only draining whenever the grace was 1 s or less,
    // and cut their drain short: what is open after this wait is still writing.
    let wait = grace + crate::conn::DRAIN_AFTER_CLOSE + DRAIN_SLACK;
    if timeout(wait, conns.all_ended()).await.is_err() {
        warn!(
            open = conns.handles.len(),
            grace_ms = grace.as_millis() as u64,
            "connections still writing after the grace period and a drain; aborting"
        );
        for h in &conns.handles {
            h.abort();
        }
        // Aborted tasks end when the runtime next polls them; bounded, in case one is stuck
        // in a blocking call.
        let _ = timeout(grace, conns.all_ended()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerConfig;

    /// Waits (bounded) until the socket cap has `want` free places.
    async fn free_places(server: &Server, want: usize) {
        let waited = timeout(Duration::from_secs(10), async {
            while server.socket_cap.available() != want {
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the socket cap has {} free places, not {want}",
            server.socket_cap.available()
        );
    }

    /// `/readyz`'s status code at `addr`.
    async fn readyz(addr: SocketAddr) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let step = Duration::from_secs(5);
        let mut s = timeout(step, tokio::net::TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut all = Vec::new();
        timeout(step, s.read_to_end(&mut all))
            .await
            .unwrap()
            .unwrap();
        let all = String::from_utf8_lossy(&all);
        all.split(' ').nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn a_hub_task_that_dies_makes_the_server_not_ready_and_says_it_failed() {
        // A bug that panics the hub task leaves a process that accepts connections and serves
        // nobody: `/readyz` must not call it ready, and the binary must hear of it to exit
        // (for systemd's Restart=on-failure) instead of running on looking alive.
        let mut config = ServerConfig::local_test();
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        let server = crate::start(config).await.unwrap();
        let metrics = server.metrics_addr().unwrap();
        assert_eq!(readyz(metrics).await, 200);
        assert!(
            timeout(Duration::from_millis(200), server.failed())
                .await
                .is_err(),
            "failed while the hub runs"
        );
        server.hub_tx.send(Input::Panic).await.unwrap();
        timeout(Duration::from_secs(10), server.failed())
            .await
            .expect("the server says it failed");
        assert_eq!(readyz(metrics).await, 503);
        // Its shutdown still closes everything, and says the task failed.
        let stopped = timeout(Duration::from_secs(30), server.shutdown())
            .await
            .unwrap();
        assert!(matches!(stopped, Err(ServerError::Task(_))), "{stopped:?}");
    }

    #[tokio::test]
    async fn a_reload_that_shrinks_then_grows_the_connection_limit_leaves_the_socket_cap_its_size()
    {
        // More sockets open than the smaller cap holds: the cap of max_connections 1 is 65.
        let mut config = ServerConfig::local_test();
        config.hub.max_connections = 100;
        let server = crate::start(config.clone()).await.unwrap();
        let addr = server.local_addrs()[0];
        let mut open = Vec::new();
        for _ in 0..80 {
            open.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // The accept loop holds one place more, for the next connection.
        free_places(&server, socket_cap(100) - 80 - 1).await;

        let small = Config {
            max_connections: 1,
            ..config.hub.clone()
        };
        server.reconfigure(small).await.unwrap();
        assert_eq!(server.socket_cap.available(), 0);
        // Once they have gone, the cap is the smaller one: not what was open at the reload.
        open.clear();
        free_places(&server, socket_cap(1) - 1).await;
        // And back: the size asked for, not more.
        server.reconfigure(config.hub.clone()).await.unwrap();
        assert_eq!(server.socket_cap.available(), socket_cap(100) - 1);
        server.shutdown().await.unwrap();
    }
}
