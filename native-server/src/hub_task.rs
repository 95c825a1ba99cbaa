//! The task that owns the [`Hub`]. Connection tasks send it what their sockets did; it feeds the
//! hub in batches, appends the hub's transmits to the connections' [`Outbox`]es, logs the hub's
//! events, and sleeps until the next input or the hub's next deadline. With metrics on, it
//! times each batch and copies the hub's counts into the metrics at most every
//! [`COPY_EVERY`](crate::metrics::COPY_EVERY).

use crate::clock::Clock;
use crate::metrics::{COPY_EVERY, Metrics};
use crate::outbox::Outbox;
use crate::store::{StoreEvent, StoreSide};
use bytes::Bytes;
use natter_core::accounts::{Work, WorkDone};
use natter_core::hub::{Change, Config, Door, Hub, HubEvent, ReconfigError};
use natter_core::persist::LoadedAccount;
use natter_core::{ConnId, Millis};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

/// Inputs handled per wakeup before the hub's output is drained: large enough to batch a busy
/// moment, small enough that writers get their bytes promptly.
const MAX_BATCH: usize = 256;

/// What a connection task tells the hub task.
#[derive(Debug)]
pub(crate) enum Input {
    /// A socket was accepted. The hub task answers with the connection's id, or `None` if the
    /// hub refused it (the socket is then dropped at once).
    Accepted {
        peer: SocketAddr,
        /// The listener it came in on.
        door: Door,
        outbox: Arc<Outbox>,
        /// Through a TLS handshake already counted by [`Input::MayHandshake`].
        handshaken: bool,
        /// What the socket held when it was accepted (a binary client's preamble, written
        /// right after its connect): the hub takes it with the accept, so a connection whose
        /// first bytes were there in time is never greeted as a person because the hub was
        /// busy with a storm of others until after its detection wait.
        first: Option<Bytes>,
        reply: oneshot::Sender<Option<ConnId>>,
    },
    /// A TLS handshake from this address is about to start: may it (see
    /// `Hub::may_handshake`)? `Err` holds the refusal's words for the log.
    MayHandshake {
        ip: IpAddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Bytes read from the socket.
    Read { conn: ConnId, data: Bytes },
    /// Bytes the writer has written to the socket.
    Written { conn: ConnId, n: usize },
    /// The peer shut its side (a read found the end): it may still read. Sent at most once,
    /// before `Closed`.
    Eof { conn: ConnId },
    /// The socket is gone (sent once, last).
    Closed { conn: ConnId },
    /// The server is shutting down.
    Shutdown,
    /// A bug in the hub task, for the tests of what the server does then: it panics.
    #[cfg(test)]
    Panic,
    /// Read the accounts from the store again (the operator changed them with
    /// `natter-server account`): how many there are now, or why not.
    ReloadAccounts {
        reply: oneshot::Sender<Result<usize, String>>,
    },
    /// A new hub configuration (a reloaded config file): what changed, or why it was refused.
    Reconfigure {
        config: Box<Config>,
        reply: oneshot::Sender<Result<Vec<Change>, ReconfigError>>,
    },
}

/// A connection as the hub task knows it: only its outbox (the hub asked for it to be closed
/// once the outbox is closing; read bytes are dropped from then on). The peer's address is
/// logged when it connects; later lines give the hub's record of its address
/// ([`Hub::peer_ip`]): a copy here cost 32 bytes per idle connection (issue 22).
struct Conn {
    outbox: Arc<Outbox>,
}

impl Drop for Conn {
    /// The hub is done with the connection (it closed, or the hub task ends): the connection
    /// task writes what it has and stops.
    fn drop(&mut self) {
        self.outbox.close();
    }
}

/// The hub task's connections, by the slot of the hub's table their id names
/// ([`ConnId::slot`]): one index per transmit and per input instead of a hash-table lookup.
///
/// A slot holds the outbox alone (8 bytes); whether an id still names the connection in its
/// slot is the hub's to say, as both tables take a connection in when it is accepted and let
/// it go when the hub is told it closed (`Hub::handle_close`). An id whose connection is gone,
/// its slot since reused (a close asked for in the batch that saw it go, a read turn due after
/// it went), finds nothing. The slots are in pages of [`PAGE`] that never move: growing by
/// doubling kept up to half the table empty (a table of 8,192 16-byte slots, ~26 bytes per
/// connection at 5,000, issue 22), and a page is allocated once, not copied as the table grows.
#[derive(Default)]
struct ConnMap {
    pages: Vec<Box<[Option<Conn>]>>,
    len: usize,
}

/// Slots per page of [`ConnMap`]: 4 KiB of outbox pointers.
const PAGE: usize = 512;

impl ConnMap {
    fn slot(&self, id: &ConnId) -> Option<&Option<Conn>> {
        let i = id.slot();
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    /// `id`'s connection, if `hub` still has it.
    fn get(&self, hub: &Hub, id: &ConnId) -> Option<&Conn> {
        self.slot(id)?.as_ref().filter(|_| hub.has_conn(*id))
    }

    /// The connection in `id`'s slot, for an id the hub has just handed out with a transmit:
    /// it has the connection (`Hub::poll_transmit` skips those gone), so it is not asked again
    /// for every member of a broadcast.
    fn get_transmitting(&self, id: &ConnId) -> Option<&Conn> {
        self.slot(id)?.as_ref()
    }

    fn contains_key(&self, hub: &Hub, id: &ConnId) -> bool {
        self.get(hub, id).is_some()
    }

    /// Puts `c` in `id`'s slot. Whatever the slot held is dropped (closed): the hub reuses a
    /// slot only after the connection in it closed, so there is nothing.
    fn insert(&mut self, id: ConnId, c: Conn) {
        let i = id.slot();
        while self.pages.len() <= i / PAGE {
            self.pages.push((0..PAGE).map(|_| None).collect());
        }
        if self.pages[i / PAGE][i % PAGE].replace(c).is_none() {
            self.len += 1;
        }
    }

    /// Takes `id`'s connection out, if `hub` still has it (call before telling the hub it
    /// closed).
    fn remove(&mut self, hub: &Hub, id: &ConnId) -> Option<Conn> {
        if !hub.has_conn(*id) {
            return None;
        }
        let i = id.slot();
        let c = self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)?.take();
        if c.is_some() {
            self.len -= 1;
        }
        c
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct HubTask {
    hub: Hub,
    clock: Clock,
    conns: ConnMap,
    shutting_down: bool,
    /// The durable store, unless the server runs memory-only.
    store: Option<StoreSide>,
    /// The cluster this node is one of, if any (then there is no store).
    cluster: Option<natter_cluster::Node>,
    /// Password hashing off the hub's thread.
    work: Worker,
    /// An accounts reload asked for: who waits, and the store read once it has started.
    accounts: Option<AccountsReload>,
    /// SIGHUPs that came while `accounts`' read ran: another reload follows it for them.
    accounts_next: Vec<ReloadReply>,
    /// Connections whose next read waits for a flood token ([`Hub::read_after`]), soonest
    /// first.
    paused: BinaryHeap<Reverse<(Millis, ConnId)>>,
    /// What an operator runs to make an account ([`warn_unclaimed_admins`]).
    account_add: String,
}

/// An accounts reload under way. The read starts once every write the hub handed out is
/// durable, and input (and finished password work) waits meanwhile, so the accounts read are
/// exactly the hub's plus what the operator changed: nothing registered or changed through the
/// hub can be missing from them and so be forgotten or reverted.
struct AccountsReload {
    /// Who asked (SIGHUPs); none when the hub asked ([`Hub::poll_accounts_reload`]).
    replies: Vec<ReloadReply>,
    read: Option<
        natter_store::StoreFuture<'static, Result<Vec<LoadedAccount>, natter_store::ReadError>>,
    >,
}

/// Where an accounts reload's outcome goes: the accounts there are then, or why it failed.
type ReloadReply = oneshot::Sender<Result<usize, String>>;

/// A SIGHUP asks to read the accounts again (`reply` waits for the outcome). A reload under way
/// whose read has not started (it waits for the store's writes) answers it too: it reads after
/// the operator's change. One whose read runs may have read before it: another follows (`next`).
/// Until the forty-third session's review a SIGHUP while a reload was under way was refused
/// ("already under way"): the reloads the hub asks for itself (`Hub::poll_accounts_reload`,
/// after the store refused a write of an account the operator changed) made that happen to an
/// operator who sent one SIGHUP, and a change made just before it was not read.
fn ask_reload(
    reload: &mut Option<AccountsReload>,
    next: &mut Vec<ReloadReply>,
    reply: ReloadReply,
) {
    match reload {
        Some(r) if r.read.is_none() => r.replies.push(reply),
        Some(_) => next.push(reply),
        None => {
            *reload = Some(AccountsReload {
                replies: vec![reply],
                read: None,
            });
        }
    }
}

/// The reload under way is done: the reload asked for while its read ran, if any, is next.
fn reload_done(reload: &mut Option<AccountsReload>, next: &mut Vec<ReloadReply>) {
    if reload.is_none() && !next.is_empty() {
        *reload = Some(AccountsReload {
            replies: core::mem::take(next),
            read: None,
        });
    }
}

/// The accounts read's outcome; never, while no read runs.
async fn accounts_read(
    reload: &mut Option<AccountsReload>,
) -> Result<Vec<LoadedAccount>, natter_store::ReadError> {
    match reload.as_mut().and_then(|r| r.read.as_mut()) {
        Some(read) => read.await,
        None => std::future::pending().await,
    }
}

/// Runs the hub's slow work (password hashes) on blocking threads, a few at a time, and hands
/// the results back to the hub task.
struct Worker {
    permits: Arc<tokio::sync::Semaphore>,
    done_tx: mpsc::UnboundedSender<WorkDone>,
    done_rx: mpsc::UnboundedReceiver<WorkDone>,
}

impl Worker {
    fn new() -> Worker {
        // At most one hash per core at once: a sign-in flood cannot take every core from chat.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Worker {
            permits: Arc::new(tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1))),
            done_tx,
            done_rx,
        }
    }

    fn start(&self, work: Work) {
        let permits = self.permits.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            match tokio::task::spawn_blocking(move || work.run()).await {
                Ok(done) => {
                    let _ = tx.send(done);
                }
                Err(e) => warn!(error = %e, "password work panicked"),
            }
        });
    }
}

/// The store's next event; never, without a store.
async fn store_next(store: &mut Option<StoreSide>) -> StoreEvent {
    match store {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The cluster's next input for the hub; never, outside a cluster.
async fn cluster_next(
    cluster: &mut Option<natter_cluster::Node>,
) -> Option<natter_cluster::ClusterIn> {
    match cluster {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Ends when `unblocked` does; never without one.
async fn cluster_unblocked(unblocked: Option<impl Future<Output = ()>>) {
    match unblocked {
        Some(u) => u.await,
        None => std::future::pending().await,
    }
}

/// How often the server's CPU use is reported to the hub.
const LOAD_EVERY: Duration = Duration::from_millis(200);

/// The process's CPU use (user and system time of all its threads) as a share of what the
/// cores it may run on could give, between samples.
struct LoadMeter {
    cpu: Duration,
    at: std::time::Instant,
    cores: u32,
}

impl LoadMeter {
    /// `None` where the process's CPU time cannot be read: the hub then paces at its
    /// configured pace.
    fn new() -> Option<LoadMeter> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some(LoadMeter {
            cpu: cpu_time()?,
            at: std::time::Instant::now(),
            cores: u32::try_from(cores).unwrap_or(u32::MAX),
        })
    }

    /// Thousandths of the cores' time used since the last sample.
    fn sample(&mut self) -> Option<u32> {
        let cpu = cpu_time()?;
        let at = std::time::Instant::now();
        let wall = at.duration_since(self.at).as_secs_f64() * f64::from(self.cores);
        let used = cpu.saturating_sub(self.cpu).as_secs_f64();
        (self.cpu, self.at) = (cpu, at);
        // Bounded to 0..=1000 and rounded, so the cast loses nothing.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (wall > 0.0).then(|| (used / wall * 1000.0).clamp(0.0, 1000.0).round() as u32)
    }
}

/// User and system time of the whole process so far.
fn cpu_time() -> Option<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    Some(tv(u.user_time()) + tv(u.system_time()))
}

/// What the hub's writes and shared rooms go to: a store, or a cluster, or neither.
pub(crate) struct Sides {
    pub(crate) store: Option<StoreSide>,
    pub(crate) cluster: Option<natter_cluster::Node>,
    /// What an operator runs to make an account ([`account_add`]).
    pub(crate) account_add: String,
}

/// Runs the hub until shutdown has closed every connection (or `grace` ran out), or until every
/// sender of `rx` is gone.
pub(crate) async fn run(
    hub: Hub,
    Sides {
        store,
        cluster,
        account_add,
    }: Sides,
    mut rx: mpsc::Receiver<Input>,
    clock: Clock,
    grace: Duration,
    metrics: Option<Arc<Metrics>>,
) {
    let mut task = HubTask {
        hub,
        clock,
        conns: ConnMap::default(),
        shutting_down: false,
        store,
        cluster,
        work: Worker::new(),
        accounts: None,
        accounts_next: Vec::new(),
        paused: BinaryHeap::new(),
        account_add,
    };
    let mut give_up: Option<Instant> = None;
    let far = || Instant::now() + Duration::from_secs(86_400);
    // With metrics on: when the counts were last copied, and when they are due again (set when
    // something happened since).
    let mut copied = Instant::now();
    let mut copy_due: Option<Instant> = None;
    // The server's CPU use, for the hub's pacing of busy big rooms (`Hub::handle_load`).
    let mut load = LoadMeter::new();
    let mut load_tick = tokio::time::interval(LOAD_EVERY);
    load_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Time of this batch: handling its input and draining the output, not the yield.
        let mut busy: Option<(Duration, std::time::Instant)> = None;
        let wake = [
            task.hub.poll_timeout(),
            task.paused.peek().map(|Reverse((t, _))| *t),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| task.clock.instant(t));
        // While batches wait for room in the store, new input waits in the sockets.
        // So does it while an accounts reload waits for the store (see `AccountsReload`).
        // So does it while too many publishes wait for the cluster (`Node::backed_up`).
        let cluster_backed_up = task.cluster.as_ref().is_some_and(|c| c.backed_up());
        let unblocked = task
            .cluster
            .as_ref()
            .filter(|_| cluster_backed_up)
            .map(|c| c.unblocked());
        let taking_input = task.store.as_ref().is_none_or(|s| !s.backed_up())
            && task.accounts.is_none()
            && !cluster_backed_up;
        tokio::select! {
            ev = store_next(&mut task.store) => {
                let now = task.clock.now();
                let alive = task
                    .store
                    .as_mut()
                    .is_some_and(|s| s.apply(ev, &mut task.hub, now));
                if !alive && task.store.is_some() {
                    warn!("the store stopped; exiting");
                    break;
                }
            }
            input = rx.recv(), if taking_input => {
                let Some(input) = input else { break };
                let started = metrics.as_ref().map(|_| std::time::Instant::now());
                task.handle(input);
                let first = started.map(|t| t.elapsed());
                // Let the other ready connection tasks run first: tokio runs a task woken by
                // the running one next, so without this the hub would wake for every single
                // read and hand each connection its bytes one message at a time.
                tokio::task::yield_now().await;
                busy = first.map(|d| (d, std::time::Instant::now()));
                for _ in 1..MAX_BATCH {
                    match rx.try_recv() {
                        Ok(input) => task.handle(input),
                        Err(_) => break,
                    }
                }
            }
            loaded = accounts_read(&mut task.accounts) => {
                if let Some(r) = task.accounts.take() {
                    let answer = match loaded {
                        Ok(accounts) => {
                            task.hub.load_accounts(accounts);
                            warn_unclaimed_admins(&task.hub, &task.account_add);
                            Ok(task.hub.account_count())
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    if r.replies.is_empty() {
                        match answer {
                            Ok(n) => info!(accounts = n, "accounts read again from the store: the operator changed some since they were read"),
                            Err(e) => warn!(error = %e, "accounts not read again from the store (the operator changed some): send SIGHUP"),
                        }
                    } else {
                        for reply in r.replies {
                            let _ = reply.send(answer.clone());
                        }
                    }
                    reload_done(&mut task.accounts, &mut task.accounts_next);
                }
            }
            Some(input) = cluster_next(&mut task.cluster) => {
                let now = task.clock.now();
                input.apply(&mut task.hub, now);
                // What else arrived meanwhile, in one batch.
                for _ in 1..MAX_BATCH {
                    let Some(input) = task.cluster.as_mut().and_then(|c| c.try_next()) else {
                        break;
                    };
                    input.apply(&mut task.hub, now);
                }
            }
            // Wakes the loop to take input again once the cluster caught up.
            () = cluster_unblocked(unblocked), if cluster_backed_up => {}
            Some(done) = task.work.done_rx.recv(), if task.accounts.is_none() => {
                task.hub.handle_work(done, task.clock.now());
            }
            () = sleep_until(wake.unwrap_or_else(far)), if wake.is_some() => {
                // A connection's first bytes may wait in the queue behind a storm of others'
                // input: the hub then lets no detection wait end (see `Hub::input_waiting`).
                task.hub.input_waiting(!rx.is_empty());
                task.hub.handle_timeout(task.clock.now());
            }
            () = sleep_until(give_up.unwrap_or_else(far)), if give_up.is_some() => {
                warn!(open = task.conns.len(), "shutdown grace ran out; dropping connections");
                break;
            }
            _ = load_tick.tick(), if load.is_some() => {
                if let Some(busy) = load.as_mut().and_then(LoadMeter::sample) {
                    task.hub.handle_load(busy, task.clock.now());
                }
            }
            // Wakes the loop only to copy the counts below.
            () = sleep_until(copy_due.unwrap_or_else(far)), if copy_due.is_some() => {}
        }
        task.drain();
        task.resume_reads();
        task.start_accounts_read();
        if let Some(m) = &metrics {
            if let Some((first, rest)) = busy {
                m.batch_time.observe(first + rest.elapsed());
            }
            let now = Instant::now();
            if now >= copied + COPY_EVERY {
                let depth = task.store.as_ref().map_or(0, StoreSide::queue_depth);
                m.copy(&task.hub, depth);
                copied = now;
                copy_due = None;
            } else {
                copy_due = Some(copied + COPY_EVERY);
            }
        }
        if task.shutting_down {
            give_up.get_or_insert_with(|| Instant::now() + grace);
            // In a cluster, once the last words of its connections (an IRC user's read
            // markers) are stored too.
            if task.conns.is_empty() && !task.hub.account_writes_unanswered() {
                break;
            }
        }
    }
    if let Some(store) = task.store.take() {
        store.close(&mut task.hub, task.clock.now()).await;
    }
    // Stopped on purpose: the other nodes let this node's members go now, not a lease later.
    if let Some(node) = task.cluster.take().filter(|_| task.shutting_down) {
        node.leave().await;
    }
    // Dropping the conns closes every outbox: their connection tasks flush and end.
    debug!("hub task done");
}

impl HubTask {
    /// A connection's read (sent with [`Outbox::read_sent`]): to the hub, then the connection
    /// may read again.
    fn read(&mut self, conn: ConnId, data: &[u8], now: Millis) {
        let Some(c) = self.conns.get(&self.hub, &conn) else {
            return;
        };
        if !c.outbox.is_closing() {
            self.hub.handle_bytes(conn, data, now);
        }
        // The connection may read again (see `Outbox::poll_read_turn`), unless its flood
        // queue is full: then not before its next token.
        match self.hub.read_after(conn) {
            Some(at) if at > now => self.paused.push(Reverse((at, conn))),
            _ => {
                if let Some(c) = self.conns.get(&self.hub, &conn) {
                    c.outbox.read_handled();
                }
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Accepted {
                peer,
                door,
                outbox,
                handshaken,
                first,
                reply,
            } => {
                if self.shutting_down {
                    let _ = reply.send(None);
                    return;
                }
                // A bridge on an IPv6 socket shows IPv4 clients as ::ffff:a.b.c.d; the hub
                // counts per address, so give it the address the client really has.
                let ip = peer.ip().to_canonical();
                let accepted = if handshaken {
                    self.hub.accept_handshaken(door, ip, now)
                } else {
                    self.hub.accept_on(door, ip, now)
                };
                match accepted {
                    Ok(conn) => {
                        if reply.send(Some(conn)).is_ok() {
                            if self.hub.refusal_unsaid(conn) {
                                debug!(%conn, %peer, "connected, refused");
                            } else {
                                info!(%conn, %peer, "connected");
                            }
                            self.conns.insert(conn, Conn { outbox });
                            if let Some(data) = first {
                                self.read(conn, &data, now);
                            }
                        } else {
                            // The connection task is gone already.
                            self.hub.handle_close(conn, now);
                        }
                    }
                    Err(refused) => {
                        warn!(%peer, reason = %refused, "refused");
                        let _ = reply.send(None);
                    }
                }
            }
            Input::MayHandshake { ip, reply } => {
                let verdict = if self.shutting_down {
                    Err("the server is shutting down".to_owned())
                } else {
                    self.hub.may_handshake(ip, now)
                };
                let _ = reply.send(verdict);
            }
            Input::Read { conn, data } => self.read(conn, &data, now),
            Input::Written { conn, n } => {
                if self.conns.contains_key(&self.hub, &conn) {
                    self.hub.handle_written(conn, n, now);
                }
            }
            // A person on nc is answered, then quits (the hub closes it); anyone else is
            // closed now, as when the socket is gone.
            Input::Eof { conn } if self.hub.handle_eof(conn, now) => {}
            Input::Eof { conn } | Input::Closed { conn } => {
                if self.conns.remove(&self.hub, &conn).is_some() {
                    let (peer, via) = (self.peer(conn), self.via(conn));
                    let unsaid = self.hub.refusal_unsaid(conn);
                    self.hub.handle_close(conn, now);
                    if unsaid {
                        debug!(%conn, %peer, via, "disconnected");
                    } else {
                        info!(%conn, %peer, via, "disconnected");
                    }
                }
            }
            Input::ReloadAccounts { reply } => match &self.store {
                None => {
                    let _ = reply.send(Err("no store: accounts live in memory only".into()));
                }
                Some(_) => ask_reload(&mut self.accounts, &mut self.accounts_next, reply),
            },
            Input::Reconfigure { config, reply } => {
                let _ = reply.send(self.hub.reconfigure(*config));
                // With a store, SIGHUP reloads the accounts next and says it then, against the
                // accounts as they are now (the operator may just have made the admin's).
                if self.store.is_none() {
                    warn_unclaimed_admins(&self.hub, &self.account_add);
                }
            }
            #[cfg(test)]
            Input::Panic => panic!("a bug in the hub task (a test's)"),
            Input::Shutdown => {
                if !self.shutting_down {
                    info!(
                        open = self.conns.len(),
                        "shutting down: telling every client"
                    );
                    self.shutting_down = true;
                    self.hub.shutdown(now);
                }
            }
        }
    }

    /// Gives paused connections their read turn back once their flood token is due.
    fn resume_reads(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((at, conn))) = self.paused.peek().copied() {
            if at > now {
                return;
            }
            self.paused.pop();
            if let Some(c) = self.conns.get(&self.hub, &conn) {
                c.outbox.read_handled();
            }
        }
    }

    /// Starts the accounts read of a reload asked for, once every write handed out is durable.
    fn start_accounts_read(&mut self) {
        // The store refused writes of accounts the operator changed (`Report::Stale`): read
        // them again, as at a SIGHUP, so the operator's change is taken up now.
        if self.accounts.is_none() && self.store.is_some() && self.hub.poll_accounts_reload() {
            self.accounts = Some(AccountsReload {
                replies: Vec::new(),
                read: None,
            });
        }
        let (Some(r), Some(store)) = (&mut self.accounts, &self.store) else {
            return;
        };
        if r.read.is_none() && store.queue_depth() == 0 {
            r.read = Some(store.load_accounts());
        }
    }

    /// Appends every transmit to its outbox, then acts on the events: a `Close` must come after
    /// the transmits polled before it.
    fn drain(&mut self) {
        while let Some(work) = self.hub.poll_work() {
            self.work.start(work);
        }
        if let Some(store) = &mut self.store {
            store.pump(&mut self.hub, self.clock.now());
        }
        if let Some(cluster) = &self.cluster {
            while let Some(out) = self.hub.poll_cluster() {
                cluster.send(out);
            }
            // History beyond the ring is read from the rooms' logs, searches from the node's
            // index of them.
            while let Some((id, q)) = self.hub.poll_query() {
                cluster.query(id, q);
            }
        }
        // Transmits first: a `Close` must follow the bytes before it. Big fan-outs in quick
        // succession are paced by the hub (`Config::fanout_pace`): what is not handed out now
        // waits for the deadline `poll_timeout` gives.
        while let Some(t) = self.hub.poll_transmit() {
            match self.conns.get_transmitting(&t.conn) {
                Some(c) => c.outbox.push(t.data),
                None => debug!(conn = %t.conn, "transmit for a connection already gone"),
            }
        }
        while let Some(ev) = self.hub.poll_event() {
            match ev {
                HubEvent::Ready {
                    conn,
                    kind,
                    nick,
                    resumed,
                } => {
                    let (peer, via) = (self.peer(conn), self.via(conn));
                    info!(%conn, %peer, via, ?kind, %nick, resumed, "ready");
                }
                HubEvent::LimitHit {
                    conn,
                    limit,
                    detail,
                } => {
                    let (peer, via) = (self.peer(conn), self.via(conn));
                    warn!(%conn, %peer, via, limit = limit.as_str(), %detail, "limit hit");
                }
                HubEvent::Close { conn, reason } => {
                    if let Some(c) = self.conns.get(&self.hub, &conn) {
                        let (peer, via) = (self.peer(conn), self.via(conn));
                        if self.hub.refusal_unsaid(conn) {
                            debug!(%conn, %peer, via, %reason, "closing");
                        } else {
                            info!(%conn, %peer, via, %reason, "closing");
                        }
                        c.outbox.close();
                    }
                }
            }
        }
    }

    /// The client's address as the hub has it (no port: see [`Conn`]), for a log line: the one
    /// a trusted proxy or the bridge named (as in the `sign-in failed` line), else the socket's.
    fn peer(&self, conn: ConnId) -> Peer {
        Peer(self.hub.client_ip(conn))
    }

    /// The proxy's or the bridge's address, for a log line, when one named the client (`peer`):
    /// the field is left out of the line otherwise. Before, `peer` was the socket's address, so
    /// every browser's "limit hit" named the bridge, and a proxied client's its proxy.
    fn via(&self, conn: ConnId) -> Option<tracing::field::DisplayValue<IpAddr>> {
        let socket = self.hub.peer_ip(conn)?;
        (self.hub.client_ip(conn) != Some(socket)).then(|| tracing::field::display(socket))
    }
}

/// A connection's address in a log line, written only if the line is: a `String` made for
/// every "ready" line, logged or not, was a small allocation per connection that a connect
/// burst left free between the connections' records (issue 22's idle memory).
struct Peer(Option<IpAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("?"),
        }
    }
}

/// Says, once per name, which of `[accounts] admins` nobody has registered while anyone may
/// (whoever registers one first is a server admin): at start, and after a reload. `add` is
/// how to make an account ([`account_add`]).
pub(crate) fn warn_unclaimed_admins(hub: &Hub, add: &str) {
    for name in hub.unclaimed_admins() {
        warn!(
            admin = %name,
            "[accounts] admins names an account that does not exist, and registration is open: \
             whoever registers it first becomes a server admin; make it now with {}",
            add.replace(ACCOUNT_NAME, name.as_str())
        );
    }
}

/// Where [`account_add`]'s command takes the account's name.
const ACCOUNT_NAME: &str = "{name}";

/// How an operator makes an account on this server's accounts: the command, in backticks, and
/// what it needs. A cluster node's accounts are the cluster's, which `account` reaches only
/// given the cluster's NATS servers (without them it would make the account in a local store
/// no node reads); a single node's are in its data directory `data_dir`, named too (without it
/// `account` opens the default one, and a server given `--data-dir` elsewhere would never see
/// the account).
pub(crate) fn account_add(
    cluster: Option<&[String]>,
    nats: &crate::NatsFlags,
    data_dir: Option<&std::path::Path>,
) -> String {
    match (cluster, data_dir) {
        (Some(servers), _) => {
            let shown: Vec<String> = servers
                .iter()
                .map(|s| natter_cluster::nats_address_shown(s))
                .collect();
            let shown = shown.join(",");
            // The NATS credentials given apart, as the server was given them: without them NATS
            // refuses the command. A password or a token is not written, only where it is.
            let flags: String = nats
                .args
                .iter()
                .map(|a| format!(" {}", shell_word(a)))
                .collect();
            let variable = nats.variable.map_or(String::new(), |v| {
                format!(", {v} holding the NATS secret this server was given")
            });
            if shown == servers.join(",") {
                format!(
                    "`natter-server account add {ACCOUNT_NAME} --cluster {shown}{flags}`{variable}"
                )
            } else {
                // A password (or a token) is not repeated in the log, and the address with
                // `***` for it fails to authenticate when pasted: the command takes the
                // addresses from the variable that holds them (the server's own, if it read
                // them from there), and says which they are without the secret.
                format!(
                    "`natter-server account add {ACCOUNT_NAME} --cluster \"$NATTER_CLUSTER\"{flags}`, \
                     NATTER_CLUSTER holding the addresses this server was given, {shown} \
                     (the password is not written here){variable}"
                )
            }
        }
        (None, Some(dir)) => format!(
            "`natter-server account add {ACCOUNT_NAME} --data-dir {}`",
            shell_word(&dir.display().to_string())
        ),
        (None, None) => format!("`natter-server account add {ACCOUNT_NAME}`"),
    }
}

/// `word` as one word of a POSIX shell's command line: as it is when it holds nothing a shell
/// reads specially, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unclaimed-admin warning's command reaches the accounts this server reads: the
    /// cluster's, or the data directory's, quoted for a shell when it must be.
    #[test]
    fn the_account_add_command_names_where_the_accounts_are() {
        let none = crate::NatsFlags::default();
        let servers = ["nats://a:4222".to_owned(), "nats://b:4222".to_owned()];
        assert_eq!(
            account_add(Some(&servers), &none, Some(std::path::Path::new("/x"))),
            "`natter-server account add {name} --cluster nats://a:4222,nats://b:4222`"
        );
        // Not the password of natter's NATS account, which the log would carry, nor the
        // address with `***` for it, which fails to authenticate when pasted.
        let servers = [
            "nats://natter:pw-Secret@a:4222".to_owned(),
            "nats://b:4222".to_owned(),
        ];
        assert_eq!(
            account_add(Some(&servers), &none, None),
            "`natter-server account add {name} --cluster \"$NATTER_CLUSTER\"`, NATTER_CLUSTER \
             holding the addresses this server was given, nats://natter:***@a:4222,nats://b:4222 \
             (the password is not written here)"
        );
        let token = ["nats://s3cret@a:4222".to_owned()];
        let said = account_add(Some(&token), &none, None);
        assert!(said.contains("\"$NATTER_CLUSTER\"`"), "{said}");
        assert!(!said.contains("s3cret"), "{said}");
        assert_eq!(
            account_add(None, &none, Some(std::path::Path::new("/var/lib/natter"))),
            "`natter-server account add {name} --data-dir /var/lib/natter`"
        );
        assert_eq!(
            account_add(None, &none, Some(std::path::Path::new("/srv/my chat/it's"))),
            "`natter-server account add {name} --data-dir '/srv/my chat/it'\\''s'`"
        );
        assert_eq!(
            account_add(None, &none, None),
            "`natter-server account add {name}`"
        );
        // Credentials given apart: the same flags (paths quoted), and where the secret is.
        let apart = crate::NatsFlags {
            args: [
                "--nats-user",
                "natter",
                "--nats-password-file",
                "/etc/natter/nats pw",
            ]
            .map(String::from)
            .to_vec(),
            variable: None,
        };
        assert_eq!(
            account_add(Some(&servers[1..]), &apart, None),
            "`natter-server account add {name} --cluster nats://b:4222 --nats-user natter \
             --nats-password-file '/etc/natter/nats pw'`"
        );
        let from_env = crate::NatsFlags {
            args: Vec::new(),
            variable: Some("NATTER_NATS_TOKEN"),
        };
        assert_eq!(
            account_add(Some(&servers[1..]), &from_env, None),
            "`natter-server account add {name} --cluster nats://b:4222`, NATTER_NATS_TOKEN \
             holding the NATS secret this server was given"
        );
    }

    /// A SIGHUP while a reload runs is not refused: a reload the hub asked for itself whose
    /// read waits for the store answers it too (it reads after the operator's change); while
    /// that read runs (it may have read before the change), another reload follows for it.
    /// Until the forty-third session's review it was refused as "already under way", and the
    /// operator's change was not read.
    #[test]
    fn a_sighup_while_an_accounts_reload_runs_is_answered_by_a_read_after_it() {
        let auto = || AccountsReload {
            replies: Vec::new(),
            read: None,
        };
        let (mut next, mut reload) = (Vec::new(), Some(auto()));
        let (reply, mut answer) = oneshot::channel();
        ask_reload(&mut reload, &mut next, reply);
        assert!(
            answer.try_recv().is_err(),
            "not answered yet (refused before)"
        );
        assert_eq!(reload.as_ref().map(|r| r.replies.len()), Some(1));
        assert!(next.is_empty());
        // Its read runs: the SIGHUP waits for the reload after it.
        let mut reload = Some(AccountsReload {
            read: Some(Box::pin(std::future::pending())),
            ..auto()
        });
        let (reply, mut answer) = oneshot::channel();
        ask_reload(&mut reload, &mut next, reply);
        assert!(
            answer.try_recv().is_err(),
            "not answered yet (refused before)"
        );
        assert_eq!(next.len(), 1);
        assert!(reload.as_ref().is_some_and(|r| r.replies.is_empty()));
        reload = None;
        reload_done(&mut reload, &mut next);
        let again = reload.expect("another reload");
        assert!(
            again.read.is_none(),
            "it reads once the store's writes are done"
        );
        assert_eq!(again.replies.len(), 1);
        assert!(next.is_empty());
        // Nothing waiting: nothing follows.
        let mut reload = None;
        reload_done(&mut reload, &mut next);
        assert!(reload.is_none());
    }

    /// The table finds a connection by its id while the hub has it, past its first page, and
    /// never a later connection in a reused slot under an earlier one's id.
    #[test]
    fn the_outbox_table_finds_open_connections_only() {
        let mut hub = Hub::new(Config::default());
        let now = Millis(0);
        let accept = |hub: &mut Hub, i: u32| {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            hub.accept_on(Door::Natter, ip, now).expect("accepted")
        };
        let outbox = || Conn {
            outbox: Arc::new(Outbox::default()),
        };
        let mut map = ConnMap::default();
        let n = u32::try_from(PAGE).unwrap() + 3;
        let ids: Vec<ConnId> = (0..n).map(|i| accept(&mut hub, i)).collect();
        for id in &ids {
            map.insert(*id, outbox());
        }
        assert_eq!(map.len(), PAGE + 3);
        assert!(ids.iter().all(|id| map.contains_key(&hub, id)));
        let old = ids[1];
        let gone = map.remove(&hub, &old).expect("open");
        let closed = gone.outbox.clone();
        drop(gone);
        assert!(closed.is_closing(), "dropping the entry closes its outbox");
        hub.handle_close(old, now);
        assert!(map.remove(&hub, &old).is_none());
        let new = accept(&mut hub, n);
        assert_eq!(new.slot(), old.slot(), "the slot is reused");
        map.insert(new, outbox());
        assert!(map.get(&hub, &old).is_none(), "not under the old id");
        assert!(map.remove(&hub, &old).is_none());
        assert!(map.get(&hub, &new).is_some());
        assert_eq!(map.len(), PAGE + 3);
    }

    #[test]
    fn the_load_meter_sees_this_process_work_and_stays_in_bounds() {
        // Work until the process has used 100 ms of CPU (however long a loaded machine takes to
        // give it that), then the meter must read at least those 100 ms over the wall time it
        // spanned: a fixed 100 ms of wall time read 90 thousandths at load average 7.
        let outer = std::time::Instant::now();
        let mut m = LoadMeter::new().expect("getrusage works here");
        let start = cpu_time().expect("getrusage works here");
        let give_up = outer + Duration::from_secs(20);
        let mut x = 0u64;
        while cpu_time().expect("getrusage works here") < start + Duration::from_millis(100) {
            assert!(std::time::Instant::now() < give_up, "no CPU time in 20 s");
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        }
        let busy = m.sample().expect("a sample");
        let wall = outer.elapsed().as_secs_f64() * f64::from(m.cores.max(1));
        // At least 100 ms used over at most `wall`, less one for the meter's rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let floor = ((0.1 / wall * 1000.0) as u32).saturating_sub(1).max(1);
        assert!(
            busy >= floor,
            "{busy} thousandths busy, at least {floor} expected"
        );
        assert!(busy <= 1000);
        // (Other tests' threads share the process, so an idle sample is not compared here.)
    }
}
