//! README's "how to run three nodes for real", as written: its nats-server command run three
//! times (each server's name, store, ports and routes put on this machine, nothing else
//! changed) makes a JetStream cluster, and its natter-server command (`--cluster-replicas 3`)
//! makes a node of it that keeps a room's lines. A command an operator copies must work, also
//! when everything is started at once.

mod support;

use natter_core::wire::{EventKind, RoomEvent, ServerMsg};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{BinClient, spawn_server_within};

/// The commands in README's "A cluster of nodes" shell block, continuation lines joined and
/// comments dropped: (the nats-server line, the natter-server line), without the program.
fn readme_commands() -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("## A cluster of nodes")
        .nth(1)
        .expect("README has \"A cluster of nodes\"");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a shell block in it");
    let mut commands: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = line.split(" #").next().unwrap_or_default().trim_end();
        match line.strip_suffix('\\') {
            Some(more) => current.push_str(more),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    commands.push(std::mem::take(&mut current));
                }
            }
        }
    }
    let words = |program: &str| -> Vec<String> {
        let c = commands
            .iter()
            .find(|c| c.trim_start().starts_with(program))
            .unwrap_or_else(|| panic!("no {program} command in {commands:?}"));
        c.split_whitespace().skip(1).map(str::to_owned).collect()
    };
    (words("nats-server"), words("natter-server"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A process stopped by its pid when dropped.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// README's three nats-servers on this machine (each its name, store, ports and routes put
/// here, nothing else changed), and README's node command with their addresses (without
/// `--listen`).
struct ReadmeCluster {
    servers: Vec<Stopped>,
    _dirs: Vec<tempfile::TempDir>,
    nats_args: Vec<String>,
    node_args: Vec<String>,
}

impl ReadmeCluster {
    /// Started, each server listening on its ports. The ports are picked free and let go
    /// before the servers bind them, so another test's socket may take one in between, and
    /// that server exits: then all three start again on other ports (a JetStream cluster that
    /// lacks a server never forms, and the node waited its whole setup time for it).
    fn start() -> ReadmeCluster {
        for _ in 0..5 {
            if let Some(cluster) = ReadmeCluster::try_start() {
                return cluster;
            }
        }
        panic!("README's three nats-servers did not all listen in five tries");
    }

    /// `None` when a server exited before it listened on both its ports.
    fn try_start() -> Option<ReadmeCluster> {
        let (nats_args, node_args) = readme_commands();
        let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        // This machine's ports for the hosts nats1..nats3 of the README.
        let local = |word: &str| -> String {
            let mut w = word.to_owned();
            for k in 0..3 {
                w = w
                    .replace(
                        &format!("nats{}:6222", k + 1),
                        &format!("127.0.0.1:{}", routes[k]),
                    )
                    .replace(
                        &format!("nats{}:4222", k + 1),
                        &format!("127.0.0.1:{}", clients[k]),
                    );
            }
            w
        };
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut servers = Vec::new();
        for i in 0..3 {
            let mut args: Vec<String> = Vec::new();
            let mut words = nats_args.iter();
            while let Some(w) = words.next() {
                match w.as_str() {
                    // Each server's own name, store and route listener.
                    "-n" | "--name" | "--server_name" => {
                        words.next();
                        args.extend([w.clone(), format!("nats{}", i + 1)]);
                    }
                    "-sd" | "--store_dir" => {
                        words.next();
                        args.extend([w.clone(), dirs[i].path().display().to_string()]);
                    }
                    "--cluster" => {
                        words.next();
                        args.extend([w.clone(), format!("nats://127.0.0.1:{}", routes[i])]);
                    }
                    _ => args.push(local(w)),
                }
            }
            args.extend([
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                clients[i].to_string(),
            ]);
            let child = Command::new(natter_cluster::test_server::NatsServer::bin())
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server runs");
            servers.push(Stopped(child));
        }
        // Listening only: JetStream still forms after this, as it does when everything starts
        // at once.
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        for (i, server) in servers.iter_mut().enumerate() {
            let listens = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            while !(listens(clients[i]) && listens(routes[i])) {
                let exited = server.0.try_wait().expect("waitable").is_some();
                if exited || std::time::Instant::now() > give_up {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut node_args: Vec<String> = node_args.iter().map(|w| local(w)).collect();
        node_args.extend(["--listen".into(), "127.0.0.1:0".into()]);
        Some(ReadmeCluster {
            servers,
            _dirs: dirs,
            nats_args,
            node_args,
        })
    }

    fn all_running(&mut self) {
        for s in &mut self.servers {
            assert!(
                s.0.try_wait().expect("waitable").is_none(),
                "a nats-server of README's command exited: {:?}",
                self.nats_args
            );
        }
    }

    /// README's node, started (it logged that it listens, within `wait`), and its address.
    async fn node(&self, wait: Duration) -> (tokio::process::Child, std::net::SocketAddr) {
        let args: Vec<&str> = self.node_args.iter().map(String::as_str).collect();
        let (node, _log, addr) = spawn_server_within(&args, &[], wait).await;
        (node, addr)
    }
}

/// A client at `addr` says a line in `#r` and gets it back: the room's stream was made and
/// stored it.
async fn a_line_is_kept(addr: std::net::SocketAddr) {
    let (mut alice, _) = BinClient::hello(addr, "alice", None).await;
    alice.join("#r").await;
    alice.say("#r", "kept three times").await;
    alice
        .expect(
            |m| {
                matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Say { text, .. }, .. })
                    if text.as_str() == "kept three times")
            },
            "the line, stored",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_three_nats_servers_and_a_node_with_three_replicas_work() {
    let mut cluster = ReadmeCluster::start();
    // The three find each other and elect JetStream's leader (a fraction of a second here).
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.all_running();
    let (_node, addr) = cluster.node(Duration::from_secs(20)).await;
    cluster.all_running();
    a_line_is_kept(addr).await;
}

/// Everything started at once (a machine booting, a compose file): the node waits for the
/// JetStream cluster to find its peers and its leader instead of exiting with "no suitable
/// peers for placement" or a timed-out request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_with_its_nats_servers_waits_for_jetstream() {
    let mut cluster = ReadmeCluster::start();
    // The first requests to a JetStream cluster still forming may wait for their timeout.
    let (_node, addr) = cluster.node(Duration::from_secs(40)).await;
    cluster.all_running();
    a_line_is_kept(addr).await;
}

/// A node started before its nats-server listens (a machine booting, a compose file starting
/// both, a slow machine) waits for it, as it waits for JetStream to form, instead of exiting
/// with "connection refused".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_its_nats_server_waits_for_it() {
    let mut nats = natter_cluster::test_server::NatsServer::start();
    nats.stop();
    let url = nats.url();
    let node = tokio::spawn(async move {
        let args = ["--cluster", &url, "--listen", "127.0.0.1:0"];
        spawn_server_within(&args, &[], Duration::from_secs(40)).await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!node.is_finished(), "the node neither waited nor listened");
    nats.run();
    let (_node, _log, addr) = node.await.expect("the node listens once NATS does");
    a_line_is_kept(addr).await;
}
