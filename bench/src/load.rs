//! The load generator: C clients join one room; each sends M messages, either keeping W of its
//! own unacknowledged (closed loop) or on a fixed schedule that adds up to R messages/s (open
//! loop). Every delivery at every member is counted and checked against the per-sender sequence
//! (none lost, none duplicated, none out of order), and its latency recorded: from the send
//! (closed loop) or from the message's scheduled send time (open loop) to the receive.
//!
//! Acknowledgement: natter echoes a say to its sender, so the sender's own copy is the ack (IRC
//! clients ask for echo-message, natter's listener and InspIRCd alike). The baseline relays to
//! everyone else, so the next client ((sender + 1) mod C) acknowledges.
//!
//! All clients run on the caller's thread (call [`Load::connect`] and [`Load::run`] inside a
//! `tokio::task::LocalSet`), sharing one state without locks: a reader and a writer task per
//! client. Use [`Load::connect`] first (connect, hello, join: not measured), then [`Load::run`].

use crate::Target;
use crate::stamp::Stamp;
use crate::wire::{BenchWireError, Codec, Received};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use natter_core::limits::MAX_FRAME;
use natter_core::wire::{LEN_PREFIX, frame_payloads};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Bytes a TCP reader asks for per read: many deliveries per system call.
const READ_CHUNK: usize = 64 * 1024;

/// Connects in flight at once while setting up (the server's listen backlog is finite).
const CONNECTS_IN_FLIGHT: usize = 64;
/// Registrations not yet answered at once (natter-accounts): fewer than the server's queue of
/// password work, so none is refused as "busy" (each client would then chat as a guest).
const REGISTRATIONS_IN_FLIGHT: u32 = 32;

/// Fewer connects in flight in big rooms: every join is announced to every member already
/// there, so 64 joins at once into a room of thousands keep the server busy for longer than it
/// waits for a new connection's first bytes (it then greets it as a text user).
const JOIN_NOTICES_IN_FLIGHT: usize = 20_000;

/// How often a natter client greeted as a text user connects again before it gives up.
const GREETING_ATTEMPTS: u32 = 5;

/// Connects in flight for `clients` members.
fn connects_in_flight(clients: u32) -> usize {
    (JOIN_NOTICES_IN_FLIGHT / (clients as usize).max(1)).clamp(1, CONNECTS_IN_FLIGHT)
}

/// Errors kept for the report (the count goes on; the first ones say what happened).
const MAX_ERRORS_KEPT: usize = 16;

/// Highest latency the histogram holds (longer ones are clamped to it).
const MAX_LATENCY_NS: u64 = 120_000_000_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Server kind (decides the handshake and how acks work).
    pub target: Target,
    /// Where: a TCP address (natter, baseline) or the bridge's address (its `/ws` is used).
    pub addr: SocketAddr,
    /// Clients, all in one room.
    pub clients: u32,
    /// Messages each client sends.
    pub messages: u32,
    /// Closed loop: own messages in flight per client.
    pub window: u32,
    /// Open loop: total messages per second over all clients (the window is then ignored).
    pub rate: Option<f64>,
    /// Decode every delivery fully (slower; checks the fast path).
    pub verify: bool,
    /// Longest the measured part may take before the run is declared incomplete.
    pub timeout: Duration,
    /// natter-tls: the CA file the clients trust (the name checked is `localhost`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Why a run could not be carried out at all (losses are results, not errors).
#[derive(Debug, Error)]
pub enum LoadError {
    /// The spec cannot work.
    #[error("bad load spec: {0}")]
    Spec(&'static str),
    /// A message could not be built.
    #[error(transparent)]
    Wire(#[from] BenchWireError),
    /// Connecting failed.
    #[error("client {client} could not connect: {detail}")]
    Connect {
        /// Which client.
        client: u32,
        /// Why.
        detail: String,
    },
    /// Not every client was in the room in time.
    #[error("only {ready} of {clients} clients joined within {secs} s (errors: {errors:?})")]
    Setup {
        /// Joined.
        ready: u32,
        /// Wanted.
        clients: u32,
        /// Waited.
        secs: u64,
        /// What the clients saw.
        errors: Vec<String>,
    },
    /// The histogram could not be made (a bench bug).
    #[error("histogram: {0}")]
    Histogram(String),
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Deliveries counted (each message at each member, the sender's echo included for natter).
    pub deliveries: u64,
    /// Deliveries a lossless run has.
    pub expected: u64,
    /// Messages a receiver never got (sequence numbers skipped, or missing at the end).
    pub lost: u64,
    /// Messages a receiver got again or out of order.
    pub duplicated: u64,
    /// Gap markers from the server (it skipped events for a slow reader).
    pub gaps: u64,
    /// First errors seen (server errors, closed connections, unrecognised frames).
    pub errors: Vec<String>,
    /// First send to last delivery.
    pub elapsed: Duration,
    /// Connecting and joining every client.
    pub setup: Duration,
    /// Latency, nanoseconds.
    pub latency: Histogram<u64>,
    /// Whether every expected delivery arrived before the timeout.
    pub complete: bool,
}

impl LoadResult {
    /// Deliveries per second over the measured part.
    pub fn rate(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Per-run state shared by every client task (single thread: `RefCell`, never held across an
/// await).
struct Shared {
    codec: Codec,
    /// natter-tls: how clients connect.
    tls: Option<natter_tls::TlsConnector>,
    clients: u32,
    messages: u32,
    window: u32,
    rate: Option<f64>,
    origin: Instant,
    /// Wakes a client's writer when its window opens.
    wake: Vec<Notify>,
    /// Wakes `run` when the last client is done (or a fatal error).
    finished: Notify,
    /// Wakes `connect` when the last client is ready.
    all_ready: Notify,
    /// Wakes `connect` whenever a client becomes ready (registrations are paced by it).
    one_ready: Notify,
    go: watch::Sender<Option<Instant>>,
    state: RefCell<State>,
}

struct State {
    /// `next[receiver * C + sender]`: the seq the receiver expects next from that sender.
    next: Vec<u32>,
    /// Own messages acknowledged, per client.
    acked: Vec<u32>,
    /// Own messages sent, per client.
    sent: Vec<u32>,
    /// Deliveries plus skipped seqs per receiver: done when it reaches the expected count.
    accounted: Vec<u64>,
    ready: Vec<bool>,
    ready_count: u32,
    done_count: u32,
    deliveries: u64,
    lost: u64,
    duplicated: u64,
    gaps: u64,
    error_count: u64,
    errors: Vec<String>,
    fatal: bool,
    last_delivery: Option<Instant>,
    latency: Histogram<u64>,
}

impl Shared {
    fn per_receiver(&self) -> u64 {
        let senders = match self.codec_target() {
            Target::Baseline => self.clients - 1,
            _ => self.clients,
        };
        u64::from(senders) * u64::from(self.messages)
    }

    fn codec_target(&self) -> Target {
        self.codec.target()
    }

    fn acker(&self, sender: u32) -> u32 {
        match self.codec_target() {
            Target::Baseline => (sender + 1) % self.clients,
            _ => sender,
        }
    }

    fn error(&self, st: &mut State, what: String, fatal: bool) {
        st.error_count += 1;
        if st.errors.len() < MAX_ERRORS_KEPT {
            st.errors.push(what);
        }
        if fatal && !st.fatal {
            st.fatal = true;
            self.finished.notify_one();
            self.all_ready.notify_one();
            self.one_ready.notify_waiters();
        }
    }

    /// Handles one payload received by client `me` at `now_ns`.
    fn receive(&self, st: &mut State, me: u32, payload: &[u8], now: Instant, now_ns: u64) {
        match self.codec.classify(payload) {
            Received::Delivery(s) => self.delivery(st, me, s, now, now_ns),
            Received::Ready => {
                let i = me as usize;
                if !st.ready[i] {
                    st.ready[i] = true;
                    st.ready_count += 1;
                    self.one_ready.notify_waiters();
                    if st.ready_count == self.clients {
                        self.all_ready.notify_one();
                    }
                }
            }
            Received::Gap => {
                st.gaps += 1;
                self.error(
                    st,
                    format!("client {me}: the server skipped events (gap)"),
                    true,
                );
            }
            Received::Failed(why) => self.error(st, format!("client {me}: {why}"), true),
            Received::Other => {}
        }
    }

    fn delivery(&self, st: &mut State, me: u32, s: Stamp, now: Instant, now_ns: u64) {
        let c = self.clients as usize;
        if s.sender >= self.clients || s.seq >= self.messages {
            self.error(st, format!("client {me}: impossible stamp {s:?}"), true);
            return;
        }
        if self.codec_target() == Target::Baseline && s.sender == me {
            self.error(
                st,
                format!("client {me}: the baseline echoed its own message"),
                true,
            );
            return;
        }
        let idx = me as usize * c + s.sender as usize;
        let expected = st.next[idx];
        if s.seq < expected {
            st.duplicated += 1;
            return;
        }
        if s.seq > expected {
            let skipped = u64::from(s.seq - expected);
            st.lost += skipped;
            st.accounted[me as usize] += skipped;
        }
        st.next[idx] = s.seq + 1;
        st.deliveries += 1;
        st.accounted[me as usize] += 1;
        st.last_delivery = Some(now);
        st.latency
            .saturating_record(now_ns.saturating_sub(s.sent_ns).max(1));
        if self.acker(s.sender) == me {
            st.acked[s.sender as usize] += 1;
            self.wake[s.sender as usize].notify_one();
        }
        if st.accounted[me as usize] == self.per_receiver() {
            st.done_count += 1;
            if st.done_count == self.clients {
                self.finished.notify_one();
            }
        }
    }

    fn now_ns(&self, now: Instant) -> u64 {
        u64::try_from(now.duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// How many messages client `me` may send now (closed loop), or `None` when it has sent all.
    fn allowance(&self, me: u32) -> Option<u32> {
        let st = self.state.borrow();
        let i = me as usize;
        let sent = st.sent[i];
        if sent >= self.messages {
            return None;
        }
        let in_flight = sent - st.acked[i].min(sent);
        Some(
            self.window
                .saturating_sub(in_flight)
                .min(self.messages - sent),
        )
    }

    /// Builds `n` messages of client `me`, stamped with `at`: now (closed loop), or the
    /// message's scheduled send time (open loop), so the latency measured includes any time it
    /// waited because the generator was behind its schedule.
    fn build(&self, me: u32, n: u32, at: Instant) -> Result<Vec<Bytes>, BenchWireError> {
        let now_ns = self.now_ns(at);
        let mut st = self.state.borrow_mut();
        let i = me as usize;
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let seq = st.sent[i];
            out.push(self.codec.say(Stamp {
                sender: me,
                seq,
                sent_ns: now_ns,
            })?);
            st.sent[i] += 1;
        }
        Ok(out)
    }
}

/// A set of connected, joined clients, ready to run.
pub struct Load {
    shared: Rc<Shared>,
    spec: LoadSpec,
    setup: Duration,
}

impl Load {
    /// Connects every client and waits until each is in the room (natter: `Joined`; baseline:
    /// the relay's greeting, which it sends once the connection is registered).
    pub async fn connect(spec: LoadSpec) -> Result<Load, LoadError> {
        if spec.clients < 2 {
            return Err(LoadError::Spec("at least 2 clients"));
        }
        if spec.messages == 0 || (spec.rate.is_none() && spec.window == 0) {
            return Err(LoadError::Spec("messages and window must be positive"));
        }
        if spec.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(LoadError::Spec("rate must be positive"));
        }
        let c = spec.clients as usize;
        let latency = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|e| LoadError::Histogram(e.to_string()))?;
        let (go, _) = watch::channel(None);
        let tls = match (spec.target, &spec.ca_file) {
            (Target::NatterTls, Some(ca)) => Some(
                natter_tls::connector(&natter_tls::Trust::CaFile(ca.clone())).map_err(|e| {
                    LoadError::Connect {
                        client: u32::MAX,
                        detail: e.to_string(),
                    }
                })?,
            ),
            (Target::NatterTls, None) => return Err(LoadError::Spec("natter-tls needs a CA file")),
            _ => None,
        };
        let shared = Rc::new(Shared {
            codec: Codec::new(spec.target, "#bench", spec.verify)?,
            tls,
            clients: spec.clients,
            messages: spec.messages,
            window: spec.window,
            rate: spec.rate,
            origin: Instant::now(),
            wake: (0..c).map(|_| Notify::new()).collect(),
            finished: Notify::new(),
            all_ready: Notify::new(),
            one_ready: Notify::new(),
            go,
            state: RefCell::new(State {
                next: vec![0; c * c],
                acked: vec![0; c],
                sent: vec![0; c],
                accounted: vec![0; c],
                ready: vec![false; c],
                ready_count: 0,
                done_count: 0,
                deliveries: 0,
                lost: 0,
                duplicated: 0,
                gaps: 0,
                error_count: 0,
                errors: Vec::new(),
                fatal: false,
                last_delivery: None,
                latency,
            }),
        });
        let started = Instant::now();
        let limit = Arc::new(Semaphore::new(connects_in_flight(spec.clients)));
        let mut connecting = Vec::with_capacity(c);
        for me in 0..spec.clients {
            if spec.target.signs_in() {
                // Single-threaded: nothing becomes ready between the check and the wait.
                while {
                    let st = shared.state.borrow();
                    !st.fatal && me - st.ready_count.min(me) >= REGISTRATIONS_IN_FLIGHT
                } {
                    if timeout(Duration::from_secs(10), shared.one_ready.notified())
                        .await
                        .is_err()
                    {
                        return Err(LoadError::Connect {
                            client: me,
                            detail: "registrations stopped being answered".into(),
                        });
                    }
                }
            }
            let shared = shared.clone();
            let limit = limit.clone();
            let spec = spec.clone();
            connecting.push(tokio::task::spawn_local(async move {
                // The semaphore is never closed.
                let _permit = limit.acquire_owned().await.ok();
                start_client(shared, &spec, me).await
            }));
        }
        let setup_limit = Duration::from_secs(30 + u64::from(spec.clients) / 20);
        let joined = timeout(setup_limit, async {
            for h in connecting {
                match h.await {
                    Ok(r) => r?,
                    Err(e) => {
                        return Err(LoadError::Connect {
                            client: u32::MAX,
                            detail: e.to_string(),
                        });
                    }
                }
            }
            loop {
                {
                    let st = shared.state.borrow();
                    if st.ready_count == spec.clients || st.fatal {
                        break;
                    }
                }
                shared.all_ready.notified().await;
            }
            Ok(())
        })
        .await;
        let st = shared.state.borrow();
        if joined.is_err() || st.fatal || st.ready_count < spec.clients {
            if let Ok(Err(e)) = joined {
                return Err(e);
            }
            return Err(LoadError::Setup {
                ready: st.ready_count,
                clients: spec.clients,
                secs: setup_limit.as_secs(),
                errors: st.errors.clone(),
            });
        }
        drop(st);
        Ok(Load {
            shared,
            spec,
            setup: started.elapsed(),
        })
    }

    /// Starts every writer at once and waits for every delivery (or the timeout, or a fatal
    /// error such as a server error or a gap).
    pub async fn run(self) -> LoadResult {
        let shared = self.shared;
        let t0 = Instant::now();
        shared.go.send_replace(Some(t0));
        let _ = timeout(self.spec.timeout, async {
            loop {
                {
                    let st = shared.state.borrow();
                    if st.done_count == shared.clients || st.fatal {
                        return;
                    }
                }
                shared.finished.notified().await;
            }
        })
        .await;
        let mut st = shared.state.borrow_mut();
        let per = shared.per_receiver();
        let expected = per * u64::from(shared.clients);
        // Whatever a receiver did not account for is lost.
        let missing: u64 = st.accounted.iter().map(|a| per.saturating_sub(*a)).sum();
        let complete = missing == 0 && !st.fatal;
        let end = st.last_delivery.unwrap_or(t0);
        let mut errors = std::mem::take(&mut st.errors);
        if st.error_count > errors.len() as u64 {
            errors.push(format!("... {} errors in all", st.error_count));
        }
        LoadResult {
            deliveries: st.deliveries,
            expected,
            lost: st.lost + missing,
            duplicated: st.duplicated,
            gaps: st.gaps,
            errors,
            elapsed: end.saturating_duration_since(t0),
            setup: self.setup,
            latency: st.latency.clone(),
            complete,
        }
    }
}

/// Connects client `me`, sends its handshake and spawns its reader and writer.
async fn start_client(shared: Rc<Shared>, spec: &LoadSpec, me: u32) -> Result<(), LoadError> {
    let handshake = shared.codec.handshake(me, shared.codec.room())?;
    let connect_err = |e: &dyn std::fmt::Display| LoadError::Connect {
        client: me,
        detail: e.to_string(),
    };
    match spec.target {
        Target::Natter
        | Target::NatterStore
        | Target::NatterAccounts
        | Target::NatterMetrics
        | Target::NatterAll
        | Target::Baseline => {
            let mut attempt = 0;
            let (rh, wh) = loop {
                let stream = timeout(Duration::from_secs(10), TcpStream::connect(spec.addr))
                    .await
                    .map_err(|e| connect_err(&e))?
                    .map_err(|e| connect_err(&e))?;
                stream.set_nodelay(true).map_err(|e| connect_err(&e))?;
                let (mut rh, mut wh) = stream.into_split();
                for b in &handshake {
                    wh.write_all(b).await.map_err(|e| connect_err(&e))?;
                }
                attempt += 1;
                if spec.target == Target::Baseline || attempt >= GREETING_ATTEMPTS {
                    break (rh, wh);
                }
                // A busy natter-server may take a client whose first bytes it has not read in
                // time for a text user (issue 22): it greets it in words, whose first byte is
                // never a frame's (a length prefix starts with 0). Try again.
                let mut first = [0u8; 1];
                let n = timeout(Duration::from_secs(30), rh.peek(&mut first))
                    .await
                    .map_err(|e| connect_err(&e))?
                    .map_err(|e| connect_err(&e))?;
                if n == 0 || first[0] == 0 {
                    break (rh, wh);
                }
            };
            tokio::task::spawn_local(tcp_reader(shared.clone(), rh, me));
            tokio::task::spawn_local(tcp_writer(shared, wh, me));
        }
        Target::NatterTls => {
            let stream = timeout(Duration::from_secs(10), TcpStream::connect(spec.addr))
                .await
                .map_err(|e| connect_err(&e))?
                .map_err(|e| connect_err(&e))?;
            stream.set_nodelay(true).map_err(|e| connect_err(&e))?;
            let Some(tls) = shared.tls.clone() else {
                return Err(LoadError::Spec("natter-tls needs a CA file"));
            };
            let name = natter_tls::server_name("localhost").map_err(|e| connect_err(&e))?;
            let stream = timeout(Duration::from_secs(10), tls.connect(name, stream))
                .await
                .map_err(|e| connect_err(&e))?
                .map_err(|e| connect_err(&e))?;
            let (rh, mut wh) = tokio::io::split(stream);
            for b in &handshake {
                wh.write_all(b).await.map_err(|e| connect_err(&e))?;
            }
            wh.flush().await.map_err(|e| connect_err(&e))?;
            tokio::task::spawn_local(tcp_reader(shared.clone(), rh, me));
            tokio::task::spawn_local(tcp_writer(shared, wh, me));
        }
        Target::Irc | Target::Inspircd => {
            let stream = timeout(Duration::from_secs(10), TcpStream::connect(spec.addr))
                .await
                .map_err(|e| connect_err(&e))?
                .map_err(|e| connect_err(&e))?;
            stream.set_nodelay(true).map_err(|e| connect_err(&e))?;
            let (mut rh, mut wh) = stream.into_split();
            for b in &handshake {
                wh.write_all(b).await.map_err(|e| connect_err(&e))?;
            }
            // Some servers take their time to register a client (InspIRCd looks it up first);
            // a JOIN before the welcome would be refused.
            let rest = timeout(Duration::from_secs(30), irc_welcome(&mut rh))
                .await
                .map_err(|e| connect_err(&e))?
                .map_err(|e| connect_err(&e))?;
            wh.write_all(&shared.codec.irc_join())
                .await
                .map_err(|e| connect_err(&e))?;
            tokio::task::spawn_local(line_reader(shared.clone(), rh, me, rest));
            tokio::task::spawn_local(tcp_writer(shared, wh, me));
        }
        Target::Bridge => {
            let url = format!("ws://{}/ws", spec.addr);
            let (ws, _) = timeout(
                Duration::from_secs(10),
                // Nagle off, as browsers have it: small messages must not wait for an ACK.
                tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
            )
            .await
            .map_err(|e| connect_err(&e))?
            .map_err(|e| connect_err(&e))?;
            let (mut sink, stream) = ws.split();
            for b in handshake {
                sink.send(Message::Binary(b))
                    .await
                    .map_err(|e| connect_err(&e))?;
            }
            tokio::task::spawn_local(ws_reader(shared.clone(), stream, me));
            tokio::task::spawn_local(ws_writer(shared, sink, me));
        }
    }
    Ok(())
}

/// Hands out client `me`'s messages once the run starts: as the window allows (closed loop) or
/// on its schedule (open loop).
struct Pacer {
    me: u32,
    t0: Instant,
    /// Open loop: the next message's index.
    k: u32,
}

impl Pacer {
    /// Waits for the start of the run (`None` if the run was dropped first).
    async fn start(shared: &Shared, me: u32) -> Option<Pacer> {
        let mut go = shared.go.subscribe();
        let t0 = (*go.wait_for(|t| t.is_some()).await.ok()?)?;
        Some(Pacer { me, t0, k: 0 })
    }

    /// The next messages to send, `Ok(None)` when all are sent.
    async fn next(&mut self, shared: &Shared) -> Result<Option<Vec<Bytes>>, String> {
        match shared.rate {
            None => loop {
                match shared.allowance(self.me) {
                    None => return Ok(None),
                    Some(0) => shared.wake[self.me as usize].notified().await,
                    Some(n) => {
                        return shared
                            .build(self.me, n, Instant::now())
                            .map(Some)
                            .map_err(|e| e.to_string());
                    }
                }
            },
            Some(rate) => {
                if self.k >= shared.messages {
                    return Ok(None);
                }
                // Message k of client i is due at (k * C + i) / R: the clients interleave evenly.
                let due =
                    (f64::from(self.k) * f64::from(shared.clients) + f64::from(self.me)) / rate;
                let scheduled = self.t0 + Duration::from_secs_f64(due);
                tokio::time::sleep_until(scheduled.into()).await;
                self.k += 1;
                // Stamped with its scheduled time, not the time it went out: a message the
                // generator sent late counts its wait (no coordinated omission).
                shared
                    .build(self.me, 1, scheduled)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

async fn tcp_writer<W: AsyncWrite + Unpin>(shared: Rc<Shared>, mut wh: W, me: u32) {
    let Some(mut pacer) = Pacer::start(&shared, me).await else {
        return;
    };
    let mut buf = Vec::new();
    let r: Result<(), String> = async {
        while let Some(batch) = pacer.next(&shared).await? {
            buf.clear();
            for b in &batch {
                buf.extend_from_slice(b);
            }
            wh.write_all(&buf).await.map_err(|e| e.to_string())?;
            // A TLS record may wait in the stream until flushed (a no-op on TCP).
            wh.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        let mut st = shared.state.borrow_mut();
        shared.error(&mut st, format!("client {me}: write failed: {e}"), true);
    }
    // Keep the write half open (no FIN) until the run is over: the reader decides when this
    // client is done, and the run's LocalSet ends both tasks.
    std::future::pending::<()>().await;
}

async fn ws_writer<S>(shared: Rc<Shared>, mut sink: S, me: u32)
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let Some(mut pacer) = Pacer::start(&shared, me).await else {
        return;
    };
    let r: Result<(), String> = async {
        while let Some(batch) = pacer.next(&shared).await? {
            for b in batch {
                sink.feed(Message::Binary(b))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            sink.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        let mut st = shared.state.borrow_mut();
        shared.error(&mut st, format!("client {me}: write failed: {e}"), true);
    }
    std::future::pending::<()>().await;
}

/// Reads client `me`'s TCP stream until the run is over for it, cutting frames in place.
async fn tcp_reader<R: AsyncRead + Unpin>(shared: Rc<Shared>, mut rh: R, me: u32) {
    // One frame (at most MAX_FRAME) can be left over from a read; a full chunk always fits after it.
    let mut buf = vec![0u8; READ_CHUNK + LEN_PREFIX + MAX_FRAME];
    let mut filled = 0;
    loop {
        let n = match rh.read(&mut buf[filled..]).await {
            Ok(0) => {
                let mut st = shared.state.borrow_mut();
                if !is_done(&shared, &st, me) {
                    shared.error(
                        &mut st,
                        format!("client {me}: server closed the connection"),
                        true,
                    );
                }
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let mut st = shared.state.borrow_mut();
                shared.error(&mut st, format!("client {me}: read failed: {e}"), true);
                return;
            }
        };
        filled += n;
        let now = Instant::now();
        let now_ns = shared.now_ns(now);
        let mut pos = 0;
        let mut st = shared.state.borrow_mut();
        while filled - pos >= LEN_PREFIX {
            let len =
                u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
            if len > MAX_FRAME {
                shared.error(&mut st, format!("client {me}: frame of {len} bytes"), true);
                return;
            }
            if filled - pos - LEN_PREFIX < len {
                break;
            }
            let start = pos + LEN_PREFIX;
            shared.receive(&mut st, me, &buf[start..start + len], now, now_ns);
            pos = start + len;
        }
        drop(st);
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

/// Reads client `me`'s WebSocket: each binary message is a batch of one or more whole natter
/// frames, length prefixes included (the bridge passes on what the server wrote).
async fn ws_reader<S>(shared: Rc<Shared>, mut stream: S, me: u32)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(msg) = stream.next().await {
        let now = Instant::now();
        let now_ns = shared.now_ns(now);
        let mut st = shared.state.borrow_mut();
        match msg {
            Ok(Message::Binary(b)) => {
                for payload in frame_payloads(&b) {
                    match payload {
                        Ok(p) => shared.receive(&mut st, me, p, now, now_ns),
                        Err(e) => {
                            let why = format!("client {me}: bad batch from the bridge: {e}");
                            shared.error(&mut st, why, true);
                            return;
                        }
                    }
                }
            }
            Ok(Message::Close(f)) => {
                if !is_done(&shared, &st, me) {
                    shared.error(&mut st, format!("client {me}: bridge closed: {f:?}"), true);
                }
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.error(&mut st, format!("client {me}: websocket failed: {e}"), true);
                return;
            }
        }
    }
}

/// Reads an IRC registration up to and including the welcome (`001`); returns what was read
/// after it.
async fn irc_welcome(rh: &mut tokio::net::tcp::OwnedReadHalf) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = rh.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "closed before the welcome: {}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &buf[start..]) {
            let line = &buf[start..start + end];
            if Codec::irc_welcomed(line) {
                return Ok(buf[start + end + 1..].to_vec());
            }
            if line.starts_with(b"ERROR") {
                return Err(String::from_utf8_lossy(line).into_owned());
            }
            start += end + 1;
        }
        if buf.len() > READ_CHUNK {
            return Err("no welcome in 64 KiB".into());
        }
    }
}

/// Longest IRC line the reader takes (IRCv3 message-tags: 8191 bytes).
const MAX_IRC_LINE: usize = 8191;

/// Reads client `me`'s IRC lines until the run is over for it, cutting lines in place; `rest`
/// is what was read after the welcome.
async fn line_reader(
    shared: Rc<Shared>,
    mut rh: tokio::net::tcp::OwnedReadHalf,
    me: u32,
    rest: Vec<u8>,
) {
    let mut buf = vec![0u8; READ_CHUNK + MAX_IRC_LINE];
    let mut filled = rest.len().min(buf.len());
    buf[..filled].copy_from_slice(&rest[..filled]);
    let mut first = true;
    loop {
        if !first || filled == 0 {
            let n = match rh.read(&mut buf[filled..]).await {
                Ok(0) => {
                    let mut st = shared.state.borrow_mut();
                    if !is_done(&shared, &st, me) {
                        shared.error(
                            &mut st,
                            format!("client {me}: server closed the connection"),
                            true,
                        );
                    }
                    return;
                }
                Ok(n) => n,
                Err(e) => {
                    let mut st = shared.state.borrow_mut();
                    shared.error(&mut st, format!("client {me}: read failed: {e}"), true);
                    return;
                }
            };
            filled += n;
        }
        first = false;
        let now = Instant::now();
        let now_ns = shared.now_ns(now);
        let mut pos = 0;
        let mut st = shared.state.borrow_mut();
        while let Some(end) = memchr::memchr(b'\n', &buf[pos..filled]) {
            let mut line = &buf[pos..pos + end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if !line.is_empty() {
                shared.receive(&mut st, me, line, now, now_ns);
            }
            pos += end + 1;
        }
        if filled - pos > MAX_IRC_LINE {
            shared.error(
                &mut st,
                format!("client {me}: a line over {MAX_IRC_LINE} bytes"),
                true,
            );
            return;
        }
        drop(st);
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

fn is_done(shared: &Shared, st: &State, me: u32) -> bool {
    st.accounted[me as usize] >= shared.per_receiver() || st.fatal
}
