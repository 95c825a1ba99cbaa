//! Helpers for the attack tests: raw binary and raw text connections that keep every byte they
//! receive (bounded), a deterministic byte generator, and the latency summary. Every wait is
//! bounded by the caller's deadline.
#![allow(dead_code)]

use natter_core::Nick;
use natter_core::wire::{
    ClientMsg, FrameDecoder, MAGIC, PROTOCOL_VERSION, ServerMsg, bridge_preamble, decode_payload,
    encode_frame,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Bytes a raw connection keeps of what it received (more is counted, not kept).
pub const RAW_KEPT: usize = 1 << 20;

/// How a raw read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed the connection (EOF or reset).
    Closed,
    /// The deadline passed with the connection still open.
    Open,
}

/// A connection that reads raw bytes and keeps them, for attackers and observers.
pub struct Raw {
    pub stream: TcpStream,
    pub got: Vec<u8>,
    pub total: usize,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Result<Raw, String> {
        let stream = timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect failed: {e}"))?;
        Ok(Raw {
            stream,
            got: Vec::new(),
            total: 0,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        timeout(Duration::from_secs(10), self.stream.write_all(bytes))
            .await
            .map_err(|_| "write timed out".to_owned())?
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Reads for at most `wait`, or until the server closes.
    pub async fn read_for(&mut self, wait: Duration) -> End {
        let deadline = Instant::now() + wait;
        self.read_until(deadline, |_| false).await
    }

    /// Reads until `done(received bytes)` holds (returns `End::Open`), the server closes, or
    /// `deadline`.
    pub async fn read_until(&mut self, deadline: Instant, done: impl Fn(&[u8]) -> bool) -> End {
        let mut buf = [0u8; 8192];
        loop {
            if done(&self.got) {
                return End::Open;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.stream.read(&mut buf)).await {
                Err(_) => return End::Open,
                Ok(Ok(0)) | Ok(Err(_)) => return End::Closed,
                Ok(Ok(n)) => {
                    self.total += n;
                    let keep = n.min(RAW_KEPT.saturating_sub(self.got.len()));
                    self.got.extend_from_slice(&buf[..keep]);
                }
            }
        }
    }

    /// The received bytes as lossy text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.got).into_owned()
    }

    /// The received bytes as server frames, after nothing (the server sends no preamble).
    pub fn frames(&self) -> Result<Vec<ServerMsg>, String> {
        let mut d = FrameDecoder::new();
        d.extend(&self.got);
        let mut out = Vec::new();
        while let Some(p) = d.next_frame().map_err(|e| format!("bad frame: {e}"))? {
            out.push(decode_payload(&p).map_err(|e| format!("undecodable frame: {e}"))?);
        }
        Ok(out)
    }

    pub fn has_esc(&self) -> bool {
        self.got.contains(&0x1b)
    }
}

/// Connects as the bridge would for a browser at `peer` (the preamble), says `Hello` as `nick`
/// and reads until a `Welcome` frame has come, the server closes, or `deadline`: how it ended,
/// and the connection with what it received.
pub async fn hello_via_bridge(
    addr: SocketAddr,
    peer: &str,
    nick: &str,
    deadline: Instant,
) -> Result<(End, Raw), String> {
    let mut c = Raw::connect(addr).await?;
    let mut out = bridge_preamble(peer, natter_core::hub::TEST_BRIDGE_SECRET).to_vec();
    let nick = Nick::new(nick).map_err(|e| format!("nick {nick:?}: {e}"))?;
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick,
        resume: None,
    };
    out.extend_from_slice(&encode_frame(&hello).map_err(|e| e.to_string())?);
    c.write(&out).await?;
    let end = c
        .read_until(deadline, |b| {
            let mut d = FrameDecoder::new();
            d.extend(b);
            matches!(d.next_frame(), Ok(Some(p))
                if matches!(decode_payload::<ServerMsg>(&p), Ok(ServerMsg::Welcome { .. })))
        })
        .await;
    Ok((end, c))
}

/// Frame `payload` with its length prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// The preamble followed by `frames`.
pub fn binary(frames: &[&[u8]]) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    for f in frames {
        v.extend_from_slice(&frame(f));
    }
    v
}

/// A bincode string: varint length (< 251, one byte) then the bytes.
pub fn bstr(s: &[u8]) -> Vec<u8> {
    assert!(s.len() < 251, "one-byte varint only");
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failure can be replayed.
pub struct Bytes64(pub u64);

impl Bytes64 {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// The `q` quantile (0..=1) of `sorted`.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The `natter` CLI binary: the workspace's debug build (`cargo test --workspace` builds it),
/// else built here into its own target dir (the outer `cargo test` holds the lock on the usual
/// one).
pub fn natter_cli() -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    let bin = target.join("debug/natter");
    if bin.is_file() {
        return bin;
    }
    let own = repo.join("target/attack-natter");
    let ok = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "natter", "--target-dir"])
        .arg(&own)
        .current_dir(&repo)
        .status()
        .is_ok_and(|s| s.success());
    let bin = own.join("debug/natter");
    assert!(ok && bin.is_file(), "cargo build -p natter failed");
    bin
}

/// Raises this process's soft open-files limit towards `want` (up to the hard limit), so attack
/// tests with thousands of sockets do not fail on a machine whose soft limit is 1024. Panics with
/// the limits if `want` cannot be had.
pub fn ensure_open_files(want: u64) {
    let got = rlimit::increase_nofile_limit(want).unwrap_or(0);
    assert!(
        got >= want,
        "this test needs {want} open files; the limit is {got} (raise `ulimit -n`)"
    );
}
