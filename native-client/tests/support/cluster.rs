//! A natter cluster of real processes for the client's tests (issue 23): a nats-server with
//! JetStream on a free port with its own store directory, natter-server nodes joined to it (the
//! built binary, so a test can `kill -9` one), and a person on `nc` (the text door). Every
//! process is stopped by its own pid when its handle is dropped.

use super::WAIT;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub use natter_cluster::test_server::NatsServer as Nats;

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

/// A natter-server node process in the cluster.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
}

impl Node {
    /// Starts a node on a free loopback port, joined to `nats`; returns once it listens.
    pub async fn start(bin: &PathBuf, nats: &Nats) -> Node {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--cluster", &nats.url()])
            .env("RUST_LOG", "info")
            .env_remove("NATTER_LISTEN")
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_DATA_DIR")
            .env_remove("NATTER_CLUSTER")
            .env("NATTER_EPHEMERAL", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("natter-server starts");
        let mut log = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let addr = tokio::time::timeout(WAIT, async {
            loop {
                let line = log
                    .next_line()
                    .await
                    .expect("read the node's log")
                    .expect("the node exited before listening");
                if line.contains("listening")
                    && let Some(a) = line.split("addr=").nth(1)
                {
                    let a = a.split_whitespace().next().unwrap_or_default();
                    return a.parse::<SocketAddr>().expect("an address in the log line");
                }
            }
        })
        .await
        .expect("the node listens in time");
        // The rest of the log is read and dropped, so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
        Node { child, addr }
    }

    /// `kill -9`: the node dies at once, without a word to anyone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL the node");
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the killed node exits")
            .expect("wait for the node");
    }
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
        let (ltx, lines) = mpsc::channel(4096);
        let tag = nick.to_owned();
        tokio::spawn(async move {
            let mut rx = BufReader::new(rx).lines();
            while let Ok(Some(line)) = rx.next_line().await {
                eprintln!("[{tag} nc] {line}");
                if ltx.send(line).await.is_err() {
                    break;
                }
            }
        });
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
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Ok(None) => panic!(
                    "{}: closed before {what:?}; saw {:#?}",
                    self.name, self.seen
                ),
                Err(_) => panic!("{}: no {what:?} in time; saw {:#?}", self.name, self.seen),
            }
        }
    }
}
