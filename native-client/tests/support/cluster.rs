//! A natter cluster of real processes for the client's tests (issue 23): a nats-server with
//! JetStream on a free port with its own store directory, natter-server nodes joined to it (the
//! built binary, so a test can `kill -9` one), and a person on `nc` (the text door). Every
//! process is stopped by its own pid when its handle is dropped.

use super::WAIT;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::process::Command;
use tokio::sync::mpsc;

#[allow(unused_imports)] // Not every test binary that has this module starts a cluster.
pub use natter_cluster::test_server::{NatsServer as Nats, NodeProcess as Node};

pub async fn natter_server_bin() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the client has a parent directory")
        .to_path_buf();
    // This test is `<target>/debug/deps/<name>-<hash>`.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| repo.join("target"));
    let bin = target.join("debug/natter-server");
    if bin.is_file() {
        return bin;
    }
    let own = repo.join("target/e2e-natter-server");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = tokio::time::timeout(
        Duration::from_secs(900),
        Command::new(cargo)
            .args(["build", "-p", "natter-server", "--target-dir"])
            .arg(&own)
            .current_dir(&repo)
            .kill_on_drop(true)
            .status(),
    )
    .await
    .expect("cargo build -p natter-server finishes in time")
    .expect("cargo runs");
    assert!(status.success(), "cargo build -p natter-server failed");
    own.join("debug/natter-server")
}

/// A person on `nc`: lines in, lines out.
pub struct Nc {
    pub name: String,
    tx: OwnedWriteHalf,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Nc {
    /// Connects, waits for the greeting, takes `nick` and joins `room`.
    pub async fn join(addr: SocketAddr, nick: &str, room: &str) -> Nc {
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the text door");
        let (rx, tx) = s.into_split();
        let lines = super::forward_lines(rx, format!("{nick} nc"));
        let mut nc = Nc {
            name: nick.to_owned(),
            tx,
            lines,
            seen: Vec::new(),
        };
        nc.expect_where("the greeting", |l| l.starts_with("Welcome to natter"))
            .await;
        nc.send(&format!("/nick {nick}")).await;
        nc.send(&format!("/join {room}")).await;
        nc.expect_where("in the room", |l| {
            l.starts_with(&format!("-- you are in {room}"))
        })
        .await;
        nc
    }

    pub async fn send(&mut self, line: &str) {
        let text = format!("{line}\r\n");
        tokio::time::timeout(WAIT, self.tx.write_all(text.as_bytes()))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// Waits for a line `pred` accepts.
    pub async fn expect_where(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        super::next_where(&self.name, &mut self.lines, &mut self.seen, what, pred).await
    }
}
