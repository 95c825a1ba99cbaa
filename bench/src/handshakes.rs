//! Connections set up per second: K workers each connect, run the TLS handshake (when given a
//! connector: a full one, or a resumption if its config allows that), send one line and wait for the text-mode welcome, then close, over and over for
//! a fixed time. With and without TLS on the same server, the difference is what the handshake
//! costs. Text mode keeps the hub's part small and leaves no session behind to resume.

use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest one connection may take before it counts as failed.
const ONE_LIMIT: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone)]
pub struct HandshakeSpec {
    /// The server's address (its TLS listener when `tls` is set).
    pub addr: SocketAddr,
    /// TLS: the connector (trusting the server's CA) and the name to check.
    pub tls: Option<natter_tls::TlsConnector>,
    /// Connections being set up at once.
    pub concurrency: u32,
    /// How long to keep going.
    pub duration: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct HandshakeResult {
    /// Connections that got their welcome.
    pub completed: u64,
    /// Connections that failed (connect, handshake, or no welcome within 10 s).
    pub failed: u64,
    /// First error seen, if any.
    pub first_error: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Connect to welcome, nanoseconds.
    pub latency: Histogram<u64>,
}

impl HandshakeResult {
    /// Welcomed connections per second.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `spec` on the current task (the workers are joined, not spawned).
pub async fn run(spec: HandshakeSpec) -> HandshakeResult {
    let t0 = Instant::now();
    let until = t0 + spec.duration;
    let workers = (0..spec.concurrency.max(1)).map(|_| worker(&spec, until));
    let results = futures_util::future::join_all(workers).await;
    let mut out = HandshakeResult {
        completed: 0,
        failed: 0,
        first_error: None,
        elapsed: t0.elapsed(),
        // 1 µs .. 60 s, 3 digits: cannot fail.
        latency: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)
            .expect("valid histogram bounds"),
    };
    for r in results {
        out.completed += r.completed;
        out.failed += r.failed;
        out.first_error = out.first_error.or(r.first_error);
        let _ = out.latency.add(&r.latency);
    }
    out
}

async fn worker(spec: &HandshakeSpec, until: Instant) -> HandshakeResult {
    let mut r = HandshakeResult {
        completed: 0,
        failed: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)
            .expect("valid histogram bounds"),
    };
    while Instant::now() < until {
        let start = Instant::now();
        match timeout(ONE_LIMIT, one(spec)).await {
            Ok(Ok(())) => {
                r.completed += 1;
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                r.latency.saturating_record(ns.max(1_000));
            }
            Ok(Err(e)) => {
                r.failed += 1;
                r.first_error.get_or_insert(e.to_string());
            }
            Err(_) => {
                r.failed += 1;
                r.first_error.get_or_insert("no welcome within 10 s".into());
            }
        }
    }
    r
}

/// One connection: connect, (handshake), a line, the welcome, close.
async fn one(spec: &HandshakeSpec) -> std::io::Result<()> {
    let tcp = TcpStream::connect(spec.addr).await?;
    tcp.set_nodelay(true)?;
    match &spec.tls {
        None => welcomed(tcp).await,
        Some(c) => {
            let name = natter_tls::server_name("localhost").map_err(std::io::Error::other)?;
            welcomed(c.connect(name, tcp).await?).await
        }
    }
}

async fn welcomed<S: AsyncRead + AsyncWrite + Unpin>(s: S) -> std::io::Result<()> {
    let mut s = BufReader::new(s);
    // A whole first line: the server greets at once instead of after its detection wait.
    s.get_mut().write_all(b"/who\n").await?;
    s.get_mut().flush().await?;
    let mut line = String::new();
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.starts_with("Welcome to natter") {
            return Ok(());
        }
    }
}
