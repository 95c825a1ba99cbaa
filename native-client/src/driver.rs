//! The driver: one tokio task that owns the [`Session`] and its socket (TCP, or TLS over TCP)
//! and pumps bytes, time
//! and typed lines into it, and its events out to a front-end (line mode or the TUI) over a
//! bounded channel. It decides nothing about the protocol: when to connect, close, resend or
//! give up is the Session's call; the driver only carries it out. What the events mean to a
//! person is the front-end's chat model's (or, in line mode, render.rs's words).

use crate::clock;
use crate::keys::Keeper;
use bytes::{Buf, Bytes};
use natter_core::limits::{MAX_FRAME, SESSION_MAX_PENDING};
use natter_core::session::{ConnState, Event, Session, Target};
use natter_core::{RoomName, Seq};
use natter_tls::rustls::ClientConfig;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Bytes polled from the Session but not yet written to the socket. The Session holds at most
/// [`SESSION_MAX_PENDING`] unacknowledged messages of at most a frame each; a backlog past that
/// means the server is not reading, and the connection is treated as lost (the Session resends
/// what was not acknowledged after the reconnect).
const MAX_UNWRITTEN: usize = SESSION_MAX_PENDING * (MAX_FRAME + 4) + 64 * 1024;

/// Commands a front-end may queue for the driver before it must wait.
pub const COMMAND_QUEUE: usize = 64;

/// Events the driver may queue for a front-end before it waits for the front-end to catch up.
pub const EVENT_QUEUE: usize = 256;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Over TLS (`natters://`, `--tls`, `--ca-file`).
    pub tls: bool,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tls {
            f.write_str("natters://")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How the driver behaves.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The server's addresses (at least one): nodes of one cluster, tried in this order. Which
    /// one a connection uses is the Session's decision ([`Session::server`]).
    pub servers: Vec<ServerAddr>,
    /// How long one connection attempt may take before it counts as failed.
    pub connect_timeout: Duration,
    /// After the front-end's input ends: how long to wait for the Session to settle (everything
    /// sent acknowledged) before giving up.
    pub settle_timeout: Duration,
    /// After `/quit`: how long to wait for the goodbye to be written.
    pub quit_timeout: Duration,
    /// Feed typed lines one at a time, the next once the Session takes it
    /// ([`Session::takes_next_line`]; line mode): a script's `/join #r` then `hi` says `hi` in
    /// `#r`, and a long pipe goes at the pace the server acknowledges instead of running into
    /// flood control. While the Session is reconnecting lines flow as long as it has room to
    /// keep them for after the reconnect; then the input waits
    /// ([`Session::holds_input_back`]), up to `settle_timeout` ([`DriverError::HeldUp`]).
    pub lockstep: bool,
    /// Everything the Session gives is shown (line mode prints every event): before quitting,
    /// the account's rooms are marked read up to the newest event seen.
    pub shows_everything: bool,
    /// How the server's certificate is verified when [`ServerAddr::tls`] is set (see
    /// [`natter_tls::client_config`]: there is no way to skip the check).
    pub tls: Option<Arc<ClientConfig>>,
    /// Changes or closes when the front-end's input has ended (line mode: stdin's end, seen by
    /// the thread reading it, perhaps before the Session takes the lines still queued). Until a
    /// server has welcomed us, `settle_timeout` counts from then: a server that takes the
    /// connection and never answers ends line mode at `--wait`, not at the Session's own
    /// connect timeout after it.
    pub input_ended: Option<watch::Receiver<()>>,
    /// `--remember`, or a key file read at start: keeps the key file in step with the
    /// Session's device key ([`Keeper`]); what it did is told to the front-end as
    /// [`Event::Info`].
    pub keeper: Option<Keeper>,
    /// Line mode: set, once, to how many events the front-end had been sent when the Session
    /// took the first typed line that asks something of the account ([`asks_account`]). The
    /// account's answers sent before it (the start-up sign-in's) are not that line's, even if
    /// the line was read long before; those after it are.
    pub account_line: Option<Arc<OnceLock<u64>>>,
}

/// Whether a typed line asks something of the account: `/login`, `/register`, `/password`.
pub fn asks_account(line: &str) -> bool {
    use natter_core::command::{self, Command as Typed, Input};
    matches!(
        command::parse(line),
        Ok(Some(Input::Command(
            Typed::Login { .. } | Typed::Register(_) | Typed::ChangePassword { .. }
        )))
    )
}

impl DriverConfig {
    /// Defaults for `servers` (at least one).
    pub fn new(servers: Vec<ServerAddr>) -> DriverConfig {
        DriverConfig {
            servers,
            connect_timeout: Duration::from_secs(5),
            settle_timeout: Duration::from_secs(10),
            quit_timeout: Duration::from_secs(2),
            input_ended: None,
            lockstep: false,
            shows_everything: false,
            tls: None,
            keeper: None,
            account_line: None,
        }
    }
}

/// What a front-end asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A typed line (chat or `/command`), typed in conversation `to` (`None`: the session's
    /// default room, for line mode).
    Input {
        /// What was typed.
        line: String,
        /// Where (the TUI's open conversation).
        to: Option<Target>,
    },
    /// Load older lines of `room`, below seq `before` (scrollback: the TUI's chat model says
    /// which).
    Older {
        /// The room.
        room: RoomName,
        /// Below this seq.
        before: Seq,
        /// How many at most (a page for PgUp, N for `/history N`).
        limit: u16,
    },
    /// The account has read `room` up to `seq` (the TUI's chat model says when).
    Read {
        /// The room.
        room: RoomName,
        /// The newest seq read.
        seq: Seq,
    },
    /// Leave: `/quit`, then stop once it is written (or after the quit timeout).
    Quit,
}

/// A wait as `--wait` took it, in seconds (`0s`, `10s`), as the other waits are said (`no answer
/// within 10s`); a wait with a fraction of a second (only tests set one) as `Duration` says it.
/// `Duration`'s own words said `within 0ns` for `--wait 0` until the thirty-first session.
fn wait_words(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{d:?}")
    }
}

/// Why the driver stopped without a clean end.
#[derive(Debug, Error)]
pub enum DriverError {
    /// No server address was given.
    #[error("no server address")]
    NoServer,
    /// Input ended but the server did not acknowledge everything in time.
    #[error("the server did not acknowledge everything sent within {}", wait_words(*.0))]
    NotSettled(Duration),
    /// The connection was down with as many lines waiting as the Session keeps for the
    /// reconnect, and stayed down this long: the rest of the input was not read, nor sent.
    #[error(
        "the connection stayed down for {} with {SESSION_MAX_PENDING} messages waiting to be sent; the rest of the input was not sent",
        wait_words(*.0)
    )]
    HeldUp(Duration),
    /// Input ended and no server could be reached before the wait ran out (nothing was ever
    /// connected, so there was nothing to acknowledge).
    #[error("could not connect to {servers} within {}: {why}", wait_words(*waited))]
    Unreachable {
        /// The addresses tried.
        servers: String,
        /// How long the end of input waited.
        waited: Duration,
        /// The last attempt's failure.
        why: String,
    },
    /// The session ended for good for another reason than `/quit` (e.g. a protocol mismatch).
    #[error("{0}")]
    Fatal(String),
    /// The TLS handshake failed: the server's certificate is not trusted, or it does not speak
    /// TLS. Trying again would fail the same way, so the client stops.
    #[error("TLS with {server} failed: {reason}")]
    Tls {
        /// The server.
        server: String,
        /// Why, in rustls's words.
        reason: String,
    },
}

/// How the driver is winding down.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Input ended: waiting for the Session to settle, then quitting.
    Settling(Instant),
    /// `/quit` given: waiting for the Session to close.
    Quitting(Instant),
}

/// A connection: a TCP socket, or a TLS stream over one.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;
type Reader = ReadHalf<Stream>;

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<Stream>> + Send>>;

/// The write side of a connection with the bytes polled but not yet written.
struct Writer {
    half: WriteHalf<Stream>,
    queue: VecDeque<Bytes>,
    queued: usize,
    /// The Session asked to close once the queue is written.
    closing: bool,
}

/// Runs `session` until it closes, input ends and everything is acknowledged, or the front-end
/// goes away. `commands` closing means "input ended" (line mode's end of stdin). Every Session
/// event for people (never `Connect`/`Close`, which the driver handles) goes to `events`.
pub async fn run(
    mut session: Session,
    mut config: DriverConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) -> Result<(), DriverError> {
    let mut reader: Option<Reader> = None;
    let mut writer: Option<Writer> = None;
    let mut connecting: Option<Connecting> = None;
    let mut commands_open = true;
    let mut frontend_open = true;
    let mut ending: Option<Ending> = None;
    // Lockstep held up by a reconnect with no room for another line: until when it may be.
    let mut held_until: Option<Instant> = None;
    let mut buf = vec![0u8; READ_CHUNK];
    // A welcome was seen: the server was reached at least once.
    let mut welcomed = false;
    // When the input ended (see `DriverConfig::input_ended`).
    let mut input_ended = config.input_ended.clone();
    let mut ended_at: Option<Instant> = None;
    // Before the first connect is polled: the Session picks among the addresses.
    session.set_servers(config.servers.len());
    let mut keeper = config.keeper.take();
    // Events sent to the front-end so far (see `DriverConfig::account_line`).
    let mut sent: u64 = 0;
    let mut server = config
        .servers
        .first()
        .cloned()
        .ok_or(DriverError::NoServer)?;

    loop {
        // Line mode at the end of input: once settled, a ping goes out whose pong says that
        // every answer is in (asked here, before the transmit below takes it).
        if config.lockstep && matches!(ending, Some(Ending::Settling(_))) {
            session.all_answered(clock::now());
        }
        // Lockstep: whether the next line may be read, asked here too (after a command it may
        // send the barrier's ping, which the transmit below takes).
        let input_ready = !config.lockstep || session.takes_next_line(clock::now());
        // Everything the Session has to say, in order; the key file follows the device key
        // the Session holds, said right after the account news that changed it.
        while let Some(ev) = session.poll_event() {
            let news = crate::keys::News::of(&ev);
            match ev {
                Event::Connect => {
                    if let Some(next) = config.servers.get(session.server()) {
                        server = next.clone();
                    }
                    debug!(%server, "connecting");
                    reader = None;
                    writer = None;
                    connecting = Some(Box::pin(connect(
                        server.clone(),
                        config.tls.clone(),
                        config.connect_timeout,
                    )));
                }
                Event::Close => {
                    // Also an attempt still under way (the Session's own connect timeout).
                    connecting = None;
                    if let Some(w) = writer.as_mut() {
                        w.closing = true;
                    } else {
                        reader = None;
                    }
                }
                ev => {
                    welcomed |= matches!(ev, Event::Welcome { .. });
                    if frontend_open {
                        if events.send(ev).await.is_err() {
                            frontend_open = false;
                        } else {
                            sent += 1;
                        }
                    }
                }
            }
            if let Some(news) = news {
                let said = keeper
                    .as_mut()
                    .and_then(|k| k.after(&session, news.refused, news.signed_out));
                tell(&events, &mut frontend_open, &mut sent, said).await;
            }
        }
        // A new key without account news of its own (a password change's).
        let said = keeper
            .as_mut()
            .and_then(|k| k.after(&session, false, false));
        tell(&events, &mut frontend_open, &mut sent, said).await;
        while let Some(bytes) = session.poll_transmit() {
            match writer.as_mut() {
                Some(w) => {
                    w.queued += bytes.len();
                    w.queue.push_back(bytes);
                }
                // Not connected: the Session keeps what matters and sends it again on connect.
                None => debug!(
                    len = bytes.len(),
                    "dropping bytes polled while not connected"
                ),
            }
        }
        if writer.as_ref().is_some_and(|w| w.queued > MAX_UNWRITTEN) {
            info!("server is not reading; dropping the connection");
            reader = None;
            writer = None;
            session.handle_disconnected("the server stopped reading", clock::now());
            continue;
        }
        if let Some(w) = writer.as_mut().filter(|w| w.closing && w.queue.is_empty()) {
            let _ = tokio::time::timeout(config.quit_timeout, w.half.shutdown()).await;
            reader = None;
            writer = None;
        }

        // Winding down?
        if session.state() == ConnState::Closed && writer.is_none() {
            return match session.fatal() {
                Some(why) => Err(DriverError::Fatal(why.to_owned())),
                None => Ok(()),
            };
        }
        if !frontend_open && ending.is_none() {
            debug!("front-end gone; quitting");
            ending = Some(start_quit(&mut session, &config));
            continue;
        }
        let now_i = Instant::now();
        match ending {
            Some(Ending::Settling(_))
                if session.is_settled()
                    && (!config.lockstep || session.all_answered(clock::now())) =>
            {
                ending = Some(start_quit(&mut session, &config));
                continue;
            }
            Some(Ending::Quitting(deadline)) if deadline <= now_i => return Ok(()),
            _ => {}
        }
        let gives_up_at = match ending {
            Some(Ending::Settling(deadline)) => Some(deadline),
            // Input over and still no welcome: the wait counts from the end of input, whatever
            // the Session is doing (an attempt the server took and never answers).
            None if !welcomed => ended_at.map(|at| at + config.settle_timeout),
            _ => None,
        };
        if gives_up_at.is_some_and(|at| at <= now_i) {
            let never = DriverError::NotSettled(config.settle_timeout);
            return Err(gave_up(
                welcomed,
                &config,
                failure(&session, &config),
                never,
            ));
        }
        if config.lockstep && commands_open && ending.is_none() && session.holds_input_back() {
            let until = *held_until.get_or_insert(now_i + config.settle_timeout);
            if until <= now_i {
                let never = DriverError::HeldUp(config.settle_timeout);
                return Err(gave_up(
                    welcomed,
                    &config,
                    failure(&session, &config),
                    never,
                ));
            }
        } else {
            held_until = None;
        }

        let session_wake = session.poll_timeout();
        let wake = earliest(
            session_wake.map(clock::instant_at),
            ending
                .map(|e| match e {
                    Ending::Settling(d) | Ending::Quitting(d) => d,
                })
                .or(held_until),
        );
        let wake = earliest(wake, gives_up_at);

        tokio::select! {
            r = read_some(&mut reader, &mut buf) => {
                let now = clock::now();
                match r {
                    Ok(0) => {
                        reader = None;
                        writer = None;
                        session.handle_disconnected("the server closed the connection", now);
                    }
                    Ok(n) => session.handle_bytes(&buf[..n], now),
                    Err(e) => {
                        reader = None;
                        writer = None;
                        session.handle_disconnected(&format!("the connection failed: {e}"), now);
                    }
                }
            }
            r = write_some(&mut writer) => {
                match r {
                    Ok(n) => {
                        if let Some(w) = writer.as_mut() {
                            advance(w, n);
                        }
                    }
                    Err(e) => {
                        writer = None;
                        // A server that refuses says why and closes; our write can then fail
                        // before we read its words ("the server is full"), which name the
                        // failure better than the write's error: read them first.
                        let heard_out = read_what_was_said(&mut reader, &mut buf, &mut session).await;
                        reader = None;
                        if !heard_out {
                            session.handle_disconnected(&format!("the connection failed: {e}"), clock::now());
                        }
                    }
                }
            }
            r = finish_connect(&mut connecting) => {
                connecting = None;
                let now = clock::now();
                match r {
                    Ok(stream) => {
                        info!(%server, "connected");
                        let (r, w) = tokio::io::split(stream);
                        reader = Some(r);
                        writer = Some(Writer { half: w, queue: VecDeque::new(), queued: 0, closing: false });
                        session.handle_connected(now);
                    }
                    Err(e) if natter_tls::tls_error(&e).is_some() => {
                        info!(%server, error = %e, "TLS handshake failed");
                        let reason = if natter_tls::is_certificate_error(&e) {
                            let words = natter_tls::handshake_words(&e);
                            format!("the server's certificate is not trusted: {words}")
                        } else {
                            format!("{e} (does the server speak TLS on this port?)")
                        };
                        return Err(DriverError::Tls { server: server.to_string(), reason });
                    }
                    Err(e) => {
                        info!(%server, error = %e, "connect failed");
                        session.handle_disconnected(&format!("could not connect to {server}: {e}"), now);
                    }
                }
            }
            c = commands.recv(), if commands_open && input_ready => {
                let now = clock::now();
                match c {
                    Some(Command::Input { line, to }) => {
                        if let Some(taken) = config.account_line.as_ref().filter(|_| asks_account(&line)) {
                            taken.get_or_init(|| sent);
                        }
                        session.handle_input_in(&line, to.as_ref(), now);
                    }
                    Some(Command::Older { room, before, limit }) => {
                        session.older(room, before, limit, now);
                    }
                    Some(Command::Read { room, seq }) => session.read(room, seq, now),
                    Some(Command::Quit) => {
                        if !matches!(ending, Some(Ending::Quitting(_))) {
                            ending = Some(start_quit(&mut session, &config));
                        }
                    }
                    None => {
                        commands_open = false;
                        if ending.is_none() {
                            ending = Some(Ending::Settling(Instant::now() + config.settle_timeout));
                        }
                    }
                }
            }
            _ = ended(&mut input_ended), if ended_at.is_none() => {
                ended_at = Some(Instant::now());
                input_ended = None;
            }
            _ = sleep_until(wake) => {
                let now = clock::now();
                if session_wake.is_some_and(|w| w <= now) {
                    session.handle_timeout(now);
                }
            }
        }
    }
}

/// Says `said` to the front-end, if anything (and it is still there).
/// `sent` counts the events the front-end was sent.
async fn tell(
    events: &mpsc::Sender<Event>,
    frontend_open: &mut bool,
    sent: &mut u64,
    said: Option<String>,
) {
    if let Some(said) = said
        && *frontend_open
    {
        if events.send(Event::Info(said)).await.is_err() {
            *frontend_open = false;
        } else {
            *sent += 1;
        }
    }
}

/// Why the latest attempt failed, as the Session last said it (a refused connect, a port that
/// is not natter's, a text greeting), without the `could not connect to HOST:PORT: ` the exit
/// message says itself. Every failed attempt goes through the Session, so that it is the
/// latest one's reason whichever way it failed.
fn failure(session: &Session, config: &DriverConfig) -> String {
    let Some(why) = session.last_failure() else {
        return "no answer".to_owned();
    };
    config
        .servers
        .iter()
        .find_map(|s| why.strip_prefix(&format!("could not connect to {s}: ")))
        .unwrap_or(why)
        .to_owned()
}

/// Why the end of input waited in vain: the server was never reached (`why`: the last
/// attempt's failure), or `reached`, what it waited for once it was.
fn gave_up(
    welcomed: bool,
    config: &DriverConfig,
    why: String,
    reached: DriverError,
) -> DriverError {
    if welcomed {
        return reached;
    }
    DriverError::Unreachable {
        servers: list(&config.servers),
        waited: config.settle_timeout,
        why,
    }
}

/// The addresses as the user gave them: `a:8000, b:8000`.
fn list(servers: &[ServerAddr]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn start_quit(session: &mut Session, config: &DriverConfig) -> Ending {
    if config.shows_everything {
        session.read_everything(clock::now());
    }
    session.handle_input("/quit", clock::now());
    Ending::Quitting(Instant::now() + config.quit_timeout)
}

/// TCP, then the TLS handshake if `tls`, within `timeout` together.
async fn connect(
    server: ServerAddr,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
) -> std::io::Result<Stream> {
    let attempt = async {
        // Looked up first, so that a name that does not resolve says so in words.
        let addrs: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host((server.host.as_str(), server.port))
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("unknown host ({e})")))?
                .collect();
        let tcp = TcpStream::connect(&addrs[..]).await?;
        let _ = tcp.set_nodelay(true);
        let stream: Stream = match (server.tls, tls) {
            (false, _) => Box::new(tcp),
            (true, Some(config)) => {
                let name = natter_tls::server_name(&server.host).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
                let tls = natter_tls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await?;
                Box::new(tls)
            }
            (true, None) => {
                return Err(std::io::Error::other("TLS asked for without a TLS config"));
            }
        };
        Ok(stream)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {}s", timeout.as_secs()),
        )),
    }
}

/// How long a failed write waits for what the server said before it closed.
const READ_AFTER_WRITE_FAILED: Duration = Duration::from_millis(500);

/// After a write failed: hands the Session what the server sent before it closed, until the
/// read side ends (at once after a reset: what was received is read first) or
/// [`READ_AFTER_WRITE_FAILED`]. Whether the Session took that connection's end from what it
/// read (a refusal, a text greeting): then it is not told of the write's failure as well.
async fn read_what_was_said(
    reader: &mut Option<Reader>,
    buf: &mut [u8],
    session: &mut Session,
) -> bool {
    let until = Instant::now() + READ_AFTER_WRITE_FAILED;
    while reader.is_some() {
        match tokio::time::timeout_at(until, read_some(reader, buf)).await {
            Ok(Ok(n)) if n > 0 => session.handle_bytes(&buf[..n], clock::now()),
            _ => break,
        }
        if !matches!(
            session.state(),
            ConnState::Connecting | ConnState::Connected
        ) {
            return true;
        }
    }
    false
}

async fn read_some(reader: &mut Option<Reader>, buf: &mut [u8]) -> std::io::Result<usize> {
    match reader {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn write_some(writer: &mut Option<Writer>) -> std::io::Result<usize> {
    let Some(Writer { half, queue, .. }) = writer else {
        return std::future::pending().await;
    };
    let Some(front) = queue.front() else {
        return std::future::pending().await;
    };
    match half.write(front).await {
        Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
        // Over TLS a record may wait inside the stream until flushed (a no-op on TCP).
        Ok(n) => half.flush().await.map(|()| n),
        r => r,
    }
}

fn advance(w: &mut Writer, mut n: usize) {
    w.queued = w.queued.saturating_sub(n);
    while n > 0 {
        let Some(front) = w.queue.front_mut() else {
            return;
        };
        let take = n.min(front.len());
        front.advance(take);
        n -= take;
        if front.is_empty() {
            w.queue.pop_front();
        }
    }
}

async fn finish_connect(connecting: &mut Option<Connecting>) -> std::io::Result<Stream> {
    match connecting {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// When the input ends (its sender changes or is dropped); never without one.
async fn ended(input: &mut Option<watch::Receiver<()>>) {
    match input {
        Some(rx) => {
            let _ = rx.changed().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_typed() {
        let a = ServerAddr {
            host: "::1".into(),
            port: 8000,
            tls: false,
        };
        assert_eq!(a.to_string(), "[::1]:8000");
        let b = ServerAddr {
            host: "chat.example".into(),
            port: 7,
            tls: true,
        };
        assert_eq!(b.to_string(), "natters://chat.example:7");
    }

    /// `--wait 0` said "within 0ns"; every wait is said in seconds as `--wait` takes it.
    #[test]
    fn waits_are_said_in_seconds() {
        let e = DriverError::NotSettled(Duration::ZERO).to_string();
        assert!(e.ends_with("sent within 0s"), "{e}");
        let e = DriverError::Unreachable {
            servers: "127.0.0.1:1".into(),
            waited: Duration::from_secs(120),
            why: "refused".into(),
        }
        .to_string();
        assert_eq!(e, "could not connect to 127.0.0.1:1 within 120s: refused");
        let e = DriverError::HeldUp(Duration::from_secs(10)).to_string();
        assert!(
            e.starts_with("the connection stayed down for 10s with "),
            "{e}"
        );
        assert_eq!(wait_words(Duration::from_millis(300)), "300ms");
    }
}
