//! Shared by the client's integration tests: an in-process natter-server on 127.0.0.1:0 and the
//! built `natter` binary run in line mode with piped stdin/stdout. Every wait has a deadline;
//! child processes are killed when their handle is dropped (also when a test fails).
#![allow(dead_code)]

pub mod cluster;

use natter_server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long any one expected thing may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long a reconnect may take once the network is back: the client's backoff may have
/// grown while it was down (up to `RECONNECT_MAX` between tries, and a loaded machine stretches
/// the time down), then [`WAIT`] for the reconnect itself. A liveness bound: the backoff is
/// the client's design, not a delay of the product to catch.
pub const RECONNECT_WAIT: Duration =
    Duration::from_millis(natter_core::limits::RECONNECT_MAX.0).saturating_add(WAIT);

/// Lines of a client's output buffered before the reader waits for the test to catch up.
const OUTPUT_QUEUE: usize = 4096;

/// Forwards each line `reader` gives (echoed to stderr under `tag`) until it ends.
pub fn forward_lines(
    reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tag: String,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{tag}] {line}");
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to [`WAIT`] for a line from `lines` that `pred` accepts, keeping every line read
/// in `seen`; fails naming `name`, `what` and what was seen.
pub async fn next_where(
    name: &str,
    lines: &mut mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    next_where_within(name, lines, seen, what, pred, WAIT).await
}

/// [`next_where`] with a bound of `wait`.
pub async fn next_where_within(
    name: &str,
    lines: &mut mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
    wait: Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => {
                seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
            Ok(None) => panic!("{name}: output ended before {what:?}; saw {seen:#?}"),
            Err(_) => panic!("{name}: no {what:?} within {wait:?}; saw {seen:#?}"),
        }
    }
}

/// Starts a server on a free loopback port.
pub async fn server() -> (Server, SocketAddr) {
    server_with(|_| {}).await
}

/// Starts a server on a free loopback port, its limits changed by `limits` first. Its detection
/// wait is patient ([`ServerConfig::local_test_patient`]): the clients here speak binary, and a
/// loaded machine must not delay one's preamble past the wait (`late_preamble.rs` sets its own).
pub async fn server_with(
    limits: impl FnOnce(&mut natter_core::hub::Config),
) -> (Server, SocketAddr) {
    let mut config = ServerConfig::local_test_patient();
    limits(&mut config.hub);
    let server = tokio::time::timeout(WAIT, natter_server::start(config))
        .await
        .expect("server starts in time")
        .expect("server starts");
    let addr = server.local_addrs()[0];
    (server, addr)
}

/// A history ring of 200 events per room (held in memory: `Older` and `Search` are answered
/// from it), joins replaying the default 50, and flood control generous enough that a test can
/// say a hundred lines quickly.
pub fn long_history(hub: &mut natter_core::hub::Config) {
    hub.history_len = 200;
    hub.flood_burst = 1_000;
    hub.flood_refill = natter_core::Millis(1);
}

/// Starts a server on `addr` (retrying while the port is still held by the previous one).
pub async fn server_on(addr: SocketAddr) -> Server {
    let mut config = ServerConfig::local_test_patient();
    config.listen = vec![addr];
    start_retrying(config).await
}

/// Starts a server from `config`, retrying for up to [`WAIT`] while its addresses are still
/// held by a server stopped just before (a restart on the same port).
pub async fn start_retrying(config: ServerConfig) -> Server {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match natter_server::start(config.clone()).await {
            Ok(s) => return s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebinding {:?}: {e}; retrying", config.listen);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot start the server on {:?}: {e}", config.listen),
        }
    }
}

/// A private config directory, so a developer's own config file does not change the tests.
pub fn config_home() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("natter-test-config-{}", std::process::id()))
}

/// A `natter` process in line mode.
pub struct Client {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl Client {
    /// Runs `natter --nick NICK EXTRA... ADDR`.
    pub fn start(nick: &str, addr: SocketAddr, extra: &[&str]) -> Client {
        let mut args = vec!["--nick".to_owned(), nick.to_owned()];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(addr.to_string());
        Client::start_with(nick, &args)
    }

    /// Runs `natter ARGS...`; `name` labels its output.
    pub fn start_with(name: &str, args: &[String]) -> Client {
        Client::start_env(name, args, &[])
    }

    /// Runs `natter ARGS...` with these environment variables set.
    pub fn start_env(name: &str, args: &[String], env: &[(&str, &str)]) -> Client {
        let nick = name;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
        cmd.envs(env.iter().copied());
        cmd.args(args)
            .env("XDG_CONFIG_HOME", config_home())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("natter starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let name = nick.to_owned();
        let rx = forward_lines(stdout, name.clone());
        Client {
            name,
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Types a line.
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        let text = format!("{line}\n");
        tokio::time::timeout(WAIT, stdin.write_all(text.as_bytes()))
            .await
            .expect("stdin write in time")
            .expect("stdin write");
    }

    /// Closes stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a line equal to `want`, or fails with what was seen.
    pub async fn expect(&mut self, want: &str) -> String {
        self.expect_where(want, |l| l == want).await
    }

    /// Waits for a line equal to `want` that comes once the client has reconnected by itself
    /// ([`RECONNECT_WAIT`]: its backoff may have grown while the network was down).
    pub async fn expect_reconnect(&mut self, want: &str) -> String {
        let name = &self.name;
        let pred = |l: &str| l == want;
        next_where_within(
            name,
            &mut self.lines,
            &mut self.seen,
            want,
            pred,
            RECONNECT_WAIT,
        )
        .await
    }

    /// Waits for a line containing `part`.
    pub async fn expect_containing(&mut self, part: &str) -> String {
        self.expect_where(part, |l| l.contains(part)).await
    }

    /// Waits for a line `pred` accepts (it may be one already seen after the last match).
    pub async fn expect_where(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        next_where(&self.name, &mut self.lines, &mut self.seen, what, pred).await
    }

    /// Reads whatever output is left until the process closes stdout (bounded).
    pub async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            self.seen.push(line);
        }
    }

    /// How many lines seen so far are exactly `line`.
    pub fn count(&self, line: &str) -> usize {
        self.seen.iter().filter(|l| *l == line).count()
    }

    /// Waits for the process to exit.
    pub async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT + Duration::from_secs(5), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit in time; saw {:#?}", self.name, self.seen))
            .expect("wait for natter")
    }
}

/// An address that refuses connections: a port bound and kept (not listening) by the returned
/// socket, so no other test's listener can take it while this one counts on it being dead (a
/// port found free and let go could be).
pub fn refusing_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind a free port");
    let addr = socket.local_addr().expect("its address");
    (socket, addr)
}
