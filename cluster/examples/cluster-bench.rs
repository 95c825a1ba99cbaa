//! The cost of clustering (issue 23): one room, C binary clients in a closed loop (each keeps W
//! of its own says unacknowledged, M in all), first on one natter-server, then spread over N
//! clustered nodes and a nats-server with JetStream. Reports deliveries per second and per
//! CPU-second of the servers (natter nodes + nats-server; the clients are not counted), and the
//! ratio cluster / single.
//!
//! ```sh
//! cargo build --release -p natter-server -p natter-cluster --example cluster-bench
//! target/release/examples/cluster-bench --clients 20 --messages 300 --window 4 --nodes 2
//! ```

use natter_core::wire::{
    ClientMsg, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, ServerMsg, decode_payload,
    encode_frame,
};
use natter_core::{MsgId, Nick, RoomName, Text};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What to run.
#[derive(Debug, Clone)]
struct Spec {
    clients: usize,
    messages: u64,
    window: u64,
    nodes: usize,
    server: PathBuf,
}

fn spec() -> Result<Spec, Error> {
    let mut s = Spec {
        clients: 20,
        messages: 300,
        window: 4,
        nodes: 2,
        server: PathBuf::from("target/release/natter-server"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{pair:?}: a flag without a value").into());
        };
        match flag.as_str() {
            "--clients" => s.clients = value.parse()?,
            "--messages" => s.messages = value.parse()?,
            "--window" => s.window = value.parse()?,
            "--nodes" => s.nodes = value.parse()?,
            "--server-bin" => s.server = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(s)
}

/// Flood control off, deep queues, no pings: what natter-bench gives the server too.
const CONFIG: &str = "[limits]\nexempt_loopback = true\nflood_burst = 4000000000\n\
flood_refill_ms = 1\noutbound_max_msgs = 65536\noutbound_max_bytes = 67108864\n\
outbound_total_max_bytes = 17179869184\nping_after_ms = 3600000\n";

/// CPU seconds `pid` has used (user + system), from /proc (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> Result<f64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, Error> {
        Ok(fields.get(i).ok_or("short /proc stat")?.parse::<f64>()?)
    };
    // Fields 14 and 15 of the line; 12 and 13 after the command's closing parenthesis.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Starts natter-server with `args`; returns it and the address it listens on.
async fn natter(spec: &Spec, config: &Path, args: &[&str]) -> Result<(Child, SocketAddr), Error> {
    let mut child = Command::new(&spec.server)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn,natter_server::server=info")
        .env("NATTER_EPHEMERAL", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut log = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        let mut line = String::new();
        loop {
            line.clear();
            if log.read_line(&mut line).await? == 0 {
                return Err::<SocketAddr, Error>("natter-server exited".into());
            }
            if line.contains("listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                return Ok(a.split_whitespace().next().unwrap_or_default().parse()?);
            }
        }
    })
    .await??;
    // Keep reading its log so it never blocks on a full pipe.
    tokio::spawn(async move {
        let mut sink = String::new();
        while log.read_line(&mut sink).await.is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Ok((child, addr))
}

/// nats-server with JetStream on a free port, storing in `dir`.
async fn nats(dir: &Path) -> Result<(Child, u16), Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("/usr/sbin/nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok((child, port));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("nats-server did not listen".into())
}

struct Client {
    stream: TcpStream,
    decoder: FrameDecoder,
}

impl Client {
    async fn send(&mut self, msg: &ClientMsg) -> Result<(), Error> {
        self.stream.write_all(&encode_frame(msg)?).await?;
        Ok(())
    }

    /// Reads until `pred` holds for a message; counts says on the way into `says` and own
    /// says into `own`.
    async fn read(
        &mut self,
        me: &Nick,
        says: &mut u64,
        own: &mut u64,
        mut until: impl FnMut(&ServerMsg, u64, u64) -> bool,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            while let Some(p) = self.decoder.next_frame()? {
                let m: ServerMsg = decode_payload(&p)?;
                if let ServerMsg::Event(ev) = &m
                    && let EventKind::Say { .. } = ev.kind
                {
                    *says += 1;
                    if ev.from == *me {
                        *own += 1;
                    }
                }
                if let ServerMsg::Error { detail, .. } = &m {
                    return Err(format!("server error: {detail}").into());
                }
                if until(&m, *says, *own) {
                    return Ok(());
                }
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.decoder.extend(&buf[..n]);
        }
    }
}

/// Runs the load against `addrs` (client i on `addrs[i % len]`) and returns (deliveries,
/// seconds).
async fn load(
    spec: &Spec,
    addrs: &[SocketAddr],
    pids: &[u32],
) -> Result<(u64, f64, Vec<f64>), Error> {
    let room = RoomName::new("#bench")?;
    let mut clients = Vec::new();
    for i in 0..spec.clients {
        let nick = Nick::new(&format!("b{i}"))?;
        let mut c = Client {
            stream: TcpStream::connect(addrs[i % addrs.len()]).await?,
            decoder: FrameDecoder::new(),
        };
        c.stream.set_nodelay(true)?;
        c.stream.write_all(&MAGIC).await?;
        c.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick.clone(),
            resume: None,
        })
        .await?;
        let (mut s, mut o) = (0, 0);
        // A clustered node welcomes once the nick is claimed; what comes before is refused.
        c.read(&nick, &mut s, &mut o, |m, _, _| {
            matches!(m, ServerMsg::Welcome { .. })
        })
        .await?;
        c.send(&ClientMsg::Join { room: room.clone() }).await?;
        c.read(&nick, &mut s, &mut o, |m, _, _| {
            matches!(m, ServerMsg::Joined { .. })
        })
        .await?;
        clients.push((nick, c));
    }
    // Let every join reach every node before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0: Vec<f64> = pids
        .iter()
        .map(|p| cpu_seconds(*p))
        .collect::<Result<_, Error>>()?;
    let started = Instant::now();
    let total = spec.messages * spec.clients as u64;
    let mut tasks = Vec::new();
    for (nick, mut c) in clients {
        let (room, m, w) = (room.clone(), spec.messages, spec.window);
        tasks.push(tokio::spawn(async move {
            let (mut says, mut own, mut sent) = (0u64, 0u64, 0u64);
            while says < total {
                while sent < m && sent < own + w {
                    sent += 1;
                    c.send(&ClientMsg::Say {
                        room: room.clone(),
                        id: MsgId(sent),
                        text: Text::new(&format!("message {sent} from {nick}"))?,
                    })
                    .await?;
                }
                let target_own = own + 1;
                c.read(&nick, &mut says, &mut own, |_, s, o| {
                    s >= total || (o >= target_own && sent < m)
                })
                .await?;
            }
            Ok::<u64, Error>(says)
        }));
    }
    let mut deliveries = 0;
    for t in tasks {
        deliveries += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut cpu = Vec::new();
    for (p, before) in pids.iter().zip(cpu0) {
        cpu.push(cpu_seconds(*p)? - before);
    }
    Ok((deliveries, secs, cpu))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let spec = spec()?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bench.toml");
    std::fs::write(&config, CONFIG)?;

    let (single, addr) = natter(&spec, &config, &[]).await?;
    let pid = single.id().ok_or("no pid")?;
    let (d1, s1, cpu1) = load(&spec, &[addr], &[pid]).await?;
    let c1: f64 = cpu1.iter().sum();
    drop(single);

    let (nats_child, port) = nats(&dir.path().join("nats")).await?;
    let url = format!("nats://127.0.0.1:{port}");
    let mut nodes = Vec::new();
    let mut pids = vec![nats_child.id().ok_or("no pid")?];
    let mut addrs = Vec::new();
    for _ in 0..spec.nodes {
        let (child, addr) = natter(&spec, &config, &["--cluster", &url]).await?;
        pids.push(child.id().ok_or("no pid")?);
        addrs.push(addr);
        nodes.push(child);
    }
    let (d2, s2, cpu2) = load(&spec, &addrs, &pids).await?;
    let c2: f64 = cpu2.iter().sum();
    drop(nodes);
    drop(nats_child);

    let row = |what: &str, d: u64, s: f64, c: f64| {
        println!(
            "{what:<28} {d:>9} deliveries {:>9.0}/s  cpu {c:>6.2} s  {:>9.0} deliveries/cpu-s",
            d as f64 / s,
            d as f64 / c.max(1e-9)
        );
    };
    println!(
        "{} clients in one room, {} messages each, window {}",
        spec.clients, spec.messages, spec.window
    );
    row("single node", d1, s1, c1);
    row(&format!("{} nodes + nats-server", spec.nodes), d2, s2, c2);
    println!(
        "cluster cpu: nats-server {:.2} s, nodes {:?} s",
        cpu2[0],
        &cpu2[1..]
    );
    println!(
        "cluster / single, deliveries per cpu-second: {:.2}",
        (d2 as f64 / c2.max(1e-9)) / (d1 as f64 / c1.max(1e-9))
    );
    Ok(())
}
