//! Test clients for natter-server over real sockets: a text client that behaves like `nc`, and a
//! binary client that speaks raw frames. Every wait is bounded by [`WAIT`]; failures say what was
//! seen instead.
#![allow(dead_code)]

use bytes::Bytes;
use natter_core::wire::{
    ClientMsg, ErrorKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, Resume, ServerMsg, decode_payload,
    encode_frame,
};
use natter_core::{MsgId, Nick, RoomName, Text};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A client's read side: a TCP socket's, or a TLS stream's.
pub type Reader = Box<dyn AsyncRead + Unpin + Send>;
/// A client's write side.
pub type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Any stream, split into boxed halves.
pub fn halves(s: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(s);
    (Box::new(r), Box::new(w))
}
use tokio::process::{Child, ChildStderr, Command};
use tokio::time::{Instant, timeout};

/// The longest any single expectation waits.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long a natter-server process may take to listen ([`spawn_server`]): starting, opening
/// its store and binding took more than [`WAIT`] on a machine loaded past a load average of 10
/// (liveness, not speed: nothing is measured by it).
pub const SERVER_START: Duration = Duration::from_secs(30);

/// How long a clustered natter-server process may take to listen: it first waits for NATS and
/// JetStream to answer, which on a loaded machine running several nats-servers at once took
/// more than [`WAIT`] (liveness, not speed: nothing is measured by it).
pub const NODE_START: Duration = Duration::from_secs(30);

pub fn nick(s: &str) -> Nick {
    Nick::new(s).unwrap()
}
pub fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap()
}
pub fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// Reads this process's resident set size (Linux), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Messages a [`BinClient`] remembers for failure messages (bounded so a flood of received
/// messages does not show up in the RSS a test measures).
pub const SEEN_KEPT: usize = 256;

/// What a read ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Got<T> {
    Msg(T),
    Closed,
    TimedOut,
}

// ---------------------------------------------------------------------------------------------
// Text client

/// A person on `nc`: writes lines, reads CRLF lines.
pub struct TextClient {
    pub name: String,
    reader: BufReader<Reader>,
    writer: Writer,
    /// Every line received so far, for failure messages and "not received" checks.
    pub seen: Vec<String>,
}

impl TextClient {
    pub async fn connect(addr: SocketAddr, name: &str) -> TextClient {
        TextClient::over(connect(addr).await, name)
    }

    /// A text client over a connected stream (e.g. TLS).
    pub fn over(s: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, name: &str) -> TextClient {
        let (r, w) = halves(s);
        TextClient {
            name: name.to_owned(),
            reader: BufReader::new(r),
            writer: w,
            seen: Vec::new(),
        }
    }

    /// Connects and waits for the welcome; returns the client and the nick it was given.
    pub async fn welcomed(addr: SocketAddr, name: &str) -> (TextClient, String) {
        let mut c = TextClient::connect(addr, name).await;
        let nick = c.welcome().await;
        (c, nick)
    }

    /// Connects, presses Enter (an empty line, which says nothing) and waits for the welcome:
    /// greeted at once, not at the end of the detection wait, for servers whose wait is
    /// patient ([`natter_server::ServerConfig::local_test_patient`], [`patient`]).
    pub async fn entered(addr: SocketAddr, name: &str) -> (TextClient, String) {
        let mut c = TextClient::connect(addr, name).await;
        let nick = c.enter().await;
        (c, nick)
    }

    /// Presses Enter and waits for the welcome (see [`TextClient::entered`]); returns NICK.
    pub async fn enter(&mut self) -> String {
        self.send("").await;
        self.welcome().await
    }

    /// Waits for `Welcome to natter, NICK!` and returns NICK.
    pub async fn welcome(&mut self) -> String {
        let line = self
            .expect(|l| l.starts_with("Welcome to natter, "), "the welcome line")
            .await;
        let rest = &line["Welcome to natter, ".len()..];
        rest.split('!').next().unwrap_or_default().to_owned()
    }

    pub async fn send(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.push(b'\n');
        self.send_raw(&b).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let w = &mut self.writer;
        // The flush matters over TLS only (a record may wait in the stream otherwise).
        timeout(WAIT, async move {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
        .unwrap_or_else(|_| panic!("{}: write timed out", self.name))
        .unwrap_or_else(|e| panic!("{}: write failed: {e}", self.name));
    }

    /// Next line (without CRLF) within `wait`.
    pub async fn next_line(&mut self, wait: Duration) -> Got<String> {
        let mut buf = Vec::new();
        match timeout(wait, self.reader.read_until(b'\n', &mut buf)).await {
            Err(_) => Got::TimedOut,
            Ok(Ok(0)) | Ok(Err(_)) => Got::Closed,
            Ok(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.seen.push(line.clone());
                Got::Msg(line)
            }
        }
    }

    /// Reads lines until one matches; panics (listing what was seen) on close or after [`WAIT`].
    pub async fn expect(&mut self, pred: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left).await {
                Got::Msg(l) if pred(&l) => return l,
                Got::Msg(_) => {}
                other => panic!(
                    "{}: waiting for {what}, got {other:?}; lines seen: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Expects a line containing `part`.
    pub async fn expect_has(&mut self, part: &str) -> String {
        let what = format!("a line with {part:?}");
        self.expect(|l| l.contains(part), &what).await
    }

    /// Lines that arrive within `wait` (stops early on close).
    pub async fn lines_for(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left).await {
                Got::Msg(l) => out.push(l),
                Got::Closed | Got::TimedOut => return out,
            }
        }
    }

    /// Reads until the server closes the connection; returns the lines read on the way.
    pub async fn expect_closed(&mut self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left).await {
                Got::Msg(l) => out.push(l),
                Got::Closed => return out,
                Got::TimedOut => panic!(
                    "{}: expected the server to close; lines seen: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Binary client

/// A program speaking the binary protocol with raw frames.
pub struct BinClient {
    pub name: String,
    reader: Reader,
    pub writer: Writer,
    decoder: FrameDecoder,
    /// The last [`SEEN_KEPT`] messages received.
    pub seen: Vec<ServerMsg>,
    next_id: u64,
}

impl BinClient {
    /// Connects and sends the preamble (nothing else).
    pub async fn connect(addr: SocketAddr, name: &str) -> BinClient {
        BinClient::over(connect(addr).await, name).await
    }

    /// Sends the preamble over a connected stream (e.g. TLS).
    pub async fn over(
        s: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
        name: &str,
    ) -> BinClient {
        let (r, w) = halves(s);
        let mut c = BinClient {
            name: name.to_owned(),
            reader: r,
            writer: w,
            decoder: FrameDecoder::new(),
            seen: Vec::new(),
            next_id: 0,
        };
        c.send_raw(&MAGIC).await;
        c
    }

    /// Connects, says hello as `nick` (optionally resuming) and waits for the welcome.
    /// Returns the welcome.
    pub async fn hello(
        addr: SocketAddr,
        nick_: &str,
        resume: Option<Resume>,
    ) -> (BinClient, ServerMsg) {
        let mut c = BinClient::connect(addr, nick_).await;
        c.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick(nick_),
            resume,
        })
        .await;
        let w = c
            .expect(|m| matches!(m, ServerMsg::Welcome { .. }), "welcome")
            .await;
        (c, w)
    }

    /// Connects, says hello as `nick_`, and asserts the server refuses it as full and closes.
    pub async fn refused_as_full(addr: SocketAddr, nick_: &str) {
        BinClient::refused_with(addr, nick_, ErrorKind::Full).await;
    }

    /// Connects, says hello as `nick_`, and asserts the server refuses it with `kind` and
    /// closes.
    pub async fn refused_with(addr: SocketAddr, nick_: &str, kind: ErrorKind) {
        let mut c = BinClient::connect(addr, nick_).await;
        c.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick(nick_),
            resume: None,
        })
        .await;
        c.expect_closed_with(kind).await;
    }

    /// A client called `name` on `addr`, which registers its nick with `password` (signed in).
    pub async fn registered(addr: SocketAddr, name: &str, password: &str) -> BinClient {
        let (mut c, _) = BinClient::hello(addr, name, None).await;
        c.send(&ClientMsg::Register {
            password: natter_core::Password(password.into()),
            remember: false,
        })
        .await;
        c.expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
            .await;
        c
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        let frame = encode_frame(msg).expect("encodes");
        self.send_raw(&frame).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let w = &mut self.writer;
        // The flush matters over TLS only (a record may wait in the stream otherwise).
        let sent = timeout(WAIT, async move {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
        .unwrap_or_else(|_| panic!("{}: write timed out", self.name));
        if let Err(e) = sent {
            // The server closed this connection: what it said last tells why.
            let mut last = Vec::new();
            while last.len() < 20
                && let Got::Msg(m) = self.next_msg(Duration::from_secs(1)).await
            {
                last.push(m);
            }
            let before = &self.seen[self.seen.len().saturating_sub(5)..];
            panic!(
                "{}: write failed: {e}; the server's last words: {last:?}; read before: {before:?}",
                self.name
            );
        }
    }

    pub fn id(&mut self) -> MsgId {
        self.next_id += 1;
        MsgId(self.next_id)
    }

    pub async fn join(&mut self, r: &str) {
        self.send(&ClientMsg::Join { room: room(r) }).await;
        let want = room(r);
        self.expect(
            |m| matches!(m, ServerMsg::Joined { room, .. } if *room == want),
            "joined",
        )
        .await;
    }

    pub async fn say(&mut self, r: &str, t: &str) -> MsgId {
        let id = self.id();
        self.send(&ClientMsg::Say {
            room: room(r),
            id,
            text: text(t),
        })
        .await;
        id
    }

    /// Next message within `wait`.
    pub async fn next_msg(&mut self, wait: Duration) -> Got<ServerMsg> {
        let deadline = Instant::now() + wait;
        loop {
            match self.decoder.next_frame() {
                Ok(Some(payload)) => {
                    let msg: ServerMsg = decode_payload(&payload)
                        .unwrap_or_else(|e| panic!("{}: undecodable frame: {e}", self.name));
                    if self.seen.len() == SEEN_KEPT {
                        self.seen.remove(0);
                    }
                    self.seen.push(msg.clone());
                    return Got::Msg(msg);
                }
                Ok(None) => {}
                Err(e) => panic!("{}: bad frame from the server: {e}", self.name),
            }
            let mut buf = [0u8; 16 * 1024];
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.reader.read(&mut buf)).await {
                Err(_) => return Got::TimedOut,
                Ok(Ok(0)) | Ok(Err(_)) => return Got::Closed,
                Ok(Ok(n)) => self.decoder.extend(&buf[..n]),
            }
        }
    }

    /// Reads messages until one matches; panics (listing what was seen) on close or timeout.
    pub async fn expect(&mut self, pred: impl Fn(&ServerMsg) -> bool, what: &str) -> ServerMsg {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_msg(left).await {
                Got::Msg(m) if pred(&m) => return m,
                Got::Msg(_) => {}
                other => panic!(
                    "{}: waiting for {what}, got {other:?}; seen: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Messages that arrive within `wait` (stops early on close).
    pub async fn msgs_for(&mut self, wait: Duration) -> Vec<ServerMsg> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_msg(left).await {
                Got::Msg(m) => out.push(m),
                Got::Closed | Got::TimedOut => return out,
            }
        }
    }

    /// Reads until the server closes and asserts an `Error` of `kind` came on the way; returns
    /// what came.
    pub async fn expect_closed_with(&mut self, kind: ErrorKind) -> Vec<ServerMsg> {
        let got = self.expect_closed().await;
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Error { kind: k, .. } if *k == kind)),
            "{}: expected Error {{ {kind:?} }} before the close; got {got:#?}",
            self.name
        );
        got
    }

    /// Reads until the server closes; returns what came on the way.
    pub async fn expect_closed(&mut self) -> Vec<ServerMsg> {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_msg(left).await {
                Got::Msg(m) => out.push(m),
                Got::Closed => return out,
                Got::TimedOut => panic!(
                    "{}: expected the server to close; seen: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }
}

/// The say texts in `msgs` (room events only).
pub fn said(msgs: &[ServerMsg]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Event(natter_core::wire::RoomEvent {
                kind: natter_core::wire::EventKind::Say { text, .. },
                ..
            }) => Some(text.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

/// A frame header announcing `len` payload bytes.
pub fn frame_header(len: u32) -> Bytes {
    Bytes::copy_from_slice(&len.to_be_bytes())
}

// ---- the natter-server binary ----

/// For [`spawn_server`]'s `envs`: a config file whose only setting is the detection wait of
/// [`natter_server::ServerConfig::local_test_patient`], for tests of the binary that are not
/// about telling the dialects apart (their binary clients stay binary on a loaded machine).
/// A test that gives its own `--config` sets `text_detect_wait_ms` in it instead.
pub fn patient() -> (&'static str, &'static str) {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        // One file for every test process, each writing the same words: written aside and
        // renamed, so none reads it half written.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join("patient.toml");
        let aside = dir.join(format!("patient.toml.{}", std::process::id()));
        let wait = natter_server::PATIENT_DETECT_WAIT.0;
        std::fs::write(&aside, format!("[limits]\ntext_detect_wait_ms = {wait}\n"))
            .and_then(|()| std::fs::rename(&aside, &path))
            .expect("write the patient config file");
        path.display().to_string()
    });
    ("NATTER_CONFIG", path)
}

/// Starts the binary with `args` and `envs`; returns it (killed when dropped), its log and the
/// address it says it listens on.
pub async fn spawn_server(
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, BufReader<ChildStderr>, SocketAddr) {
    spawn_server_within(args, envs, SERVER_START).await
}

/// [`spawn_server`], waiting up to `wait` for it to listen.
pub async fn spawn_server_within(
    args: &[&str],
    envs: &[(&str, &str)],
    wait: Duration,
) -> (Child, BufReader<ChildStderr>, SocketAddr) {
    let (child, log, addr, _) = spawn_server_seen(args, envs, wait).await;
    (child, log, addr)
}

/// [`spawn_server_within`], also returning the log lines up to the one that says it listens
/// (what it logs at start).
pub async fn spawn_server_seen(
    args: &[&str],
    envs: &[(&str, &str)],
    wait: Duration,
) -> (Child, BufReader<ChildStderr>, SocketAddr, Vec<String>) {
    spawn_server_wrapped(&[], args, envs, wait).await
}

/// [`spawn_server_seen`], started by `wrapper` (a program and its arguments, which must end by
/// executing its last argument with the rest: e.g. `sh -c 'ulimit -Sn 256; exec "$0" "$@"'`)
/// when not empty.
pub async fn spawn_server_wrapped(
    wrapper: &[&str],
    args: &[&str],
    envs: &[(&str, &str)],
    wait: Duration,
) -> (Child, BufReader<ChildStderr>, SocketAddr, Vec<String>) {
    let bin = env!("CARGO_BIN_EXE_natter-server");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NATTER_LISTEN")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_SHUTDOWN_GRACE_MS")
        .env_remove("NATTER_DATA_DIR")
        // The binary sets its own allocator settings unless given some (`malloc_tune.rs`).
        .env_remove("GLIBC_TUNABLES")
        // Memory only unless a test names a data dir: tests must not share the user's store.
        .env("NATTER_EPHEMERAL", "true")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter-server");
    let mut log = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = Vec::new();
    let addr = timeout(wait, async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = log.read_line(&mut line).await.expect("read the log");
            assert!(
                n > 0,
                "natter-server exited before listening; its log:\n{}",
                seen.concat()
            );
            seen.push(line.clone());
            if line.contains("listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                let a = a.split_whitespace().next().unwrap_or_default();
                return a.parse::<SocketAddr>().expect("an address in the log line");
            }
        }
    })
    .await
    .expect("no 'listening' log line");
    (child, log, addr, seen)
}

/// Starts the binary on natter's port 127.0.0.1:0 with its store in `dir` (not memory-only),
/// plus `more` arguments; as [`spawn_server`].
pub async fn spawn_stored_server(
    dir: &std::path::Path,
    more: &[&str],
) -> (Child, BufReader<ChildStderr>, SocketAddr) {
    stored_server(dir, more, &[]).await
}

/// [`spawn_stored_server`] with the [`patient`] detection wait.
pub async fn patient_stored_server(
    dir: &std::path::Path,
    more: &[&str],
) -> (Child, BufReader<ChildStderr>, SocketAddr) {
    stored_server(dir, more, &[patient()]).await
}

async fn stored_server(
    dir: &std::path::Path,
    more: &[&str],
    envs: &[(&str, &str)],
) -> (Child, BufReader<ChildStderr>, SocketAddr) {
    let dir = dir.display().to_string();
    let mut args = vec!["--listen", "127.0.0.1:0", "--data-dir", dir.as_str()];
    args.extend_from_slice(more);
    let mut envs = envs.to_vec();
    envs.push(("NATTER_EPHEMERAL", "false"));
    spawn_server(&args, &envs).await
}

/// natter-server as a process with its store in `dir`, natter's port and an IRC port: both
/// addresses (the IRC one read from its log, which is then drained so the server never blocks
/// on it).
pub async fn durable_irc_server(dir: &std::path::Path) -> (Child, SocketAddr, SocketAddr) {
    let (child, log, natter) = spawn_stored_server(dir, &["--irc-listen", "127.0.0.1:0"]).await;
    (child, natter, irc_addr_then_drain(log, "Irc").await)
}

/// [`durable_irc_server`] with the [`patient`] detection wait on natter's port.
pub async fn patient_durable_irc_server(dir: &std::path::Path) -> (Child, SocketAddr, SocketAddr) {
    let (child, log, natter) = patient_stored_server(dir, &["--irc-listen", "127.0.0.1:0"]).await;
    (child, natter, irc_addr_then_drain(log, "Irc").await)
}

/// natter-server in memory with natter's port and an IRC port: both addresses, as
/// [`durable_irc_server`].
pub async fn irc_server() -> (Child, SocketAddr, SocketAddr) {
    let (child, log, natter) = spawn_server(
        &["--listen", "127.0.0.1:0", "--irc-listen", "127.0.0.1:0"],
        &[],
    )
    .await;
    (child, natter, irc_addr_then_drain(log, "Irc").await)
}

/// The address of the listener for `door` (`Irc`, `IrcTls`: the log's `door=` word), read
/// from the server's `log`, which is then drained so the server never blocks on it.
pub async fn irc_addr_then_drain(mut log: BufReader<ChildStderr>, door: &str) -> SocketAddr {
    let door = format!("door={door} ");
    let irc = timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = log.read_line(&mut line).await.expect("read the log");
            assert!(n > 0, "natter-server exited before its IRC listener");
            if line.contains("listening") && line.contains(&door) {
                let a = line.split("addr=").nth(1).unwrap_or_default();
                let a = a.split_whitespace().next().unwrap_or_default();
                return a.parse::<SocketAddr>().expect("an address in the log line");
            }
        }
    })
    .await
    .expect("no IRC 'listening' line");
    tokio::spawn(async move {
        let mut sink = String::new();
        while log.read_line(&mut sink).await.is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    irc
}

pub async fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running child has a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("natter-server did not exit within 10 s of SIGTERM")
        .expect("wait for natter-server")
}

/// A natter-server node in this process, in the cluster whose NATS is at `url` (acknowledgements
/// given up after 2 s, a lease of 3 s, so tests see failures and dead nodes quickly), with the
/// patient detection wait ([`natter_server::ServerConfig::local_test_patient`]: nc users on it
/// press Enter, [`TextClient::entered`]).
pub async fn cluster_node(url: String) -> natter_server::Server {
    cluster_node_with(url, natter_server::ServerConfig::local_test_patient()).await
}

/// A node started from `cfg`, in the cluster whose NATS is at `url`, with [`cluster_node`]'s
/// acknowledgement timeout and lease.
pub async fn cluster_node_with(
    url: String,
    mut cfg: natter_server::ServerConfig,
) -> natter_server::Server {
    let mut cluster = natter_cluster::ClusterConfig::new(vec![url]);
    cluster.ack_timeout = Duration::from_secs(2);
    cluster.lease = Duration::from_secs(3);
    cfg.cluster = Some(cluster);
    natter_server::start(cfg)
        .await
        .expect("a clustered node starts")
}

/// The variables of these flags, unset in each node started (the test's own environment aside).
pub const NATS_VARS: [&str; 4] = [
    "NATTER_NATS_USER",
    "NATTER_NATS_PASSWORD",
    "NATTER_NATS_TOKEN",
    "NATTER_NATS_CREDS",
];

/// natter-server with `args` (after `--listen 127.0.0.1:0`) and `envs`, RUST_LOG=debug (the NATS
/// client's lines too), its log read until it has joined the cluster or exited: (joined, every
/// line seen). The NATS credentials variables ([`NATS_VARS`]) of the test's own environment are
/// not passed on.
pub async fn node_until_joined(args: &[&str], envs: &[(&str, &str)]) -> (bool, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter-server"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "debug")
        .env("NATTER_EPHEMERAL", "true")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_CLUSTER")
        .env_remove("NATTER_LOG_FORMAT");
    for var in NATS_VARS {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter-server starts");
    let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut lines = Vec::new();
    let joined = tokio::time::timeout(Duration::from_secs(40), async {
        while let Ok(Some(line)) = log.next_line().await {
            let joined = line.contains("joined the cluster");
            lines.push(line);
            if joined {
                return true;
            }
        }
        false
    })
    .await
    .expect("the node joins or stops within 40 s");
    let _ = child.start_kill();
    let _ = child.wait().await;
    (joined, lines)
}
