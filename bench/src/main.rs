//! `natter-bench`: runs the fan-out and idle workloads against fresh server processes (natter,
//! the baseline, natter through the bridge), prints a table, writes JSON lines and an SVG plot
//! under `target/bench/`. `baseline-server` is the baseline itself; `--smoke` a quick check.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use natter_bench::load::{Load, LoadSpec};
use natter_bench::procs::{self, ServerProc};
use natter_bench::report::{self, IdleFigures, RunFigures, Summary};
use natter_bench::{Target, idle, smoke};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Deliveries a closed-loop run aims at when `--messages` is not given (M = this / C²).
const AUTO_DELIVERIES: u64 = 5_000_000;

/// Bridge runs stop at the bridge binary's per-IP limit (all clients come from 127.0.0.1).

#[derive(Debug, Parser)]
#[command(name = "natter-bench", version, about)]
struct Cli {
    /// Quick in-process check (a few hundred messages per target); fails if anything is lost.
    #[arg(long)]
    smoke: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Fan-out: C clients in one room, each sending M messages (closed loop W, or open loop R).
    Fanout(FanoutArgs),
    /// Big room: 3,000 clients in one room, open loop at 250 messages/s in total, natter beside
    /// the baseline; deliveries per second of server CPU (a `fanout` with these defaults).
    Bigroom(BigroomArgs),
    /// Idle: N connections in rooms of S, bytes of server memory per connection.
    Idle(IdleArgs),
    /// Connections set up per second: connect (+ TLS handshake), a line, the welcome, close;
    /// natter-tls beside natter (plain TCP) on the same build.
    Handshakes(HandshakeArgs),
    /// Connection storm: N binary clients connect at once into one room; time until all are
    /// in, and how many are stranded.
    Storm(StormArgs),
    /// Well-behaved clients' echo latency on a calm server and under the attack mix (run by a
    /// child `attackers` process pinned to the other CPU), in one run: the p99 ratio.
    Attack(AttackArgs),
    /// The attack mix alone against ADDR for a while (what `attack` starts); prints what it did
    /// as one JSON line.
    Attackers(AttackersArgs),
    /// The protocol-free relay baseline (what `fanout` and `idle` start as a process).
    BaselineServer {
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// natter-server binary.
    #[arg(long, default_value_os_t = release_bin("natter-server"))]
    server_bin: PathBuf,
    /// natter-bridge binary.
    #[arg(long, default_value_os_t = release_bin("natter-bridge"))]
    bridge_bin: PathBuf,
    /// InspIRCd binary (Debian's package: apt-get install inspircd).
    #[arg(long, default_value = "/usr/sbin/inspircd")]
    inspircd_bin: PathBuf,
    /// Where JSON lines, the plot, the server config and logs go.
    #[arg(long, default_value_os_t = target_dir().join("bench"))]
    out: PathBuf,
    /// CPU for the server (and the bridge).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// CPU for this load generator.
    #[arg(long, default_value_t = 1)]
    gen_cpu: usize,
    /// Do not pin anything to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Runs per configuration (fresh server each); figures are medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Clients in the room (comma-separated list).
    #[arg(long, value_delimiter = ',', default_value = "10,50,200,1000")]
    clients: Vec<u32>,
    /// Messages per client [default: 5,000,000 / C², at least W, at most 50,000; open loop:
    /// five seconds' worth].
    #[arg(long)]
    messages: Option<u32>,
    /// Own unacknowledged messages per client (closed loop).
    #[arg(long, default_value_t = 4)]
    window: u32,
    /// Open loop instead: total messages per second over all clients.
    #[arg(long)]
    rate: Option<f64>,
    /// Servers to measure (comma-separated: natter, natter-tls, baseline, bridge, irc, inspircd,
    /// natter-store, natter-accounts, natter-metrics, natter-all, natter-cluster2).
    #[arg(long, value_delimiter = ',', default_value = "natter,baseline")]
    targets: Vec<Target>,
    /// Decode every delivery fully (slower generator; checks the fast path).
    #[arg(long)]
    verify: bool,
    /// Longest a run's measured part may take, seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

#[derive(Debug, Args)]
struct BigroomArgs {
    #[command(flatten)]
    common: Common,
    /// Members of the room (comma-separated list).
    #[arg(long, value_delimiter = ',', default_value = "3000")]
    clients: Vec<u32>,
    /// Total messages per second over all members (open loop).
    #[arg(long, default_value_t = 250.0)]
    rate: f64,
    /// Messages per member [default: twelve seconds' worth, at least one].
    #[arg(long)]
    messages: Option<u32>,
    /// Servers to measure.
    #[arg(long, value_delimiter = ',', default_value = "natter,baseline")]
    targets: Vec<Target>,
    /// Decode every delivery fully.
    #[arg(long)]
    verify: bool,
    /// Longest a run's measured part may take, seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

impl BigroomArgs {
    fn into_fanout(self) -> FanoutArgs {
        let messages = self.messages.or_else(|| {
            let c = self.clients.iter().copied().max().unwrap_or(1).max(1);
            Some(((self.rate * 12.0 / f64::from(c)).ceil() as u32).max(1))
        });
        FanoutArgs {
            common: self.common,
            clients: self.clients,
            messages,
            window: 0,
            rate: Some(self.rate),
            targets: self.targets,
            verify: self.verify,
            timeout_secs: self.timeout_secs,
        }
    }
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections.
    #[arg(long, default_value_t = 5000)]
    conns: u32,
    /// Members per room.
    #[arg(long, default_value_t = 100)]
    room_size: u32,
    /// Servers to measure (natter, baseline).
    #[arg(long, value_delimiter = ',', default_value = "natter,baseline")]
    targets: Vec<Target>,
}

#[derive(Debug, Args)]
struct HandshakeArgs {
    #[command(flatten)]
    common: Common,
    /// Connections being set up at once (comma-separated list).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    concurrency: Vec<u32>,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// natter (plain TCP), natter-tls, or both.
    #[arg(long, value_delimiter = ',', default_value = "natter,natter-tls")]
    targets: Vec<Target>,
    /// Let TLS clients resume (a session ticket from an earlier connection) instead of a full
    /// handshake every time.
    #[arg(long)]
    resume: bool,
}

#[derive(Debug, Args)]
struct StormArgs {
    #[command(flatten)]
    common: Common,
    /// Clients connecting at once (comma-separated list).
    #[arg(long, value_delimiter = ',', default_value = "5000")]
    clients: Vec<u32>,
    /// natter-server's `quiet_room_members` (comma-separated list: each value is its own run;
    /// a value at or above the clients turns the joins' summing up off) [default: the server's].
    #[arg(long, value_delimiter = ',')]
    quiet_room_members: Vec<usize>,
    /// The target: every client in the room within this many seconds.
    #[arg(long, default_value_t = 3.0)]
    target_secs: f64,
    /// A client not in the room this many seconds after the storm began is stranded.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

#[derive(Debug, Args)]
struct AttackArgs {
    #[command(flatten)]
    common: Common,
    /// Well-behaved clients in the room.
    #[arg(long, default_value_t = 10)]
    legit: u32,
    /// Between two lines of one well-behaved client, ms (the default flood limit is 5 lines/s
    /// after a burst of 10).
    #[arg(long, default_value_t = 200)]
    pace_ms: u64,
    /// Seconds per measured window.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Run the clients and natter-server at a raised niceness only, not under the real-time
    /// policy.
    #[arg(long)]
    no_realtime: bool,
    #[command(flatten)]
    mix: natter_bench::attack::Mix,
}

#[derive(Debug, Args)]
struct AttackersArgs {
    /// natter-server's address.
    #[arg(long)]
    addr: SocketAddr,
    /// How long to attack, ms.
    #[arg(long)]
    millis: u64,
    #[command(flatten)]
    mix: natter_bench::attack::Mix,
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// Cargo's target directory: the one this binary was built into
/// (`<target>/<profile>/natter-bench`), so `CARGO_TARGET_DIR` is followed.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| workspace_dir().join("target"))
}

fn release_bin(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    raise_nofile();
    let pin = |c: &Common| -> anyhow::Result<()> {
        if !c.no_pin {
            procs::pin_self(c.gen_cpu).context("pinning the load generator")?;
        }
        Ok(())
    };
    // One thread: the generator's figure is what one pinned core can do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        None if cli.smoke => rt.block_on(smoke_main()),
        None => bail!("nothing to do: give --smoke or a subcommand (see --help)"),
        Some(Cmd::BaselineServer { listen }) => rt.block_on(baseline_server(listen)),
        Some(Cmd::Fanout(a)) => {
            pin(&a.common)?;
            rt.block_on(fanout(a))
        }
        Some(Cmd::Bigroom(a)) => {
            pin(&a.common)?;
            rt.block_on(fanout(a.into_fanout()))
        }
        Some(Cmd::Idle(a)) => {
            pin(&a.common)?;
            rt.block_on(idle_main(a))
        }
        Some(Cmd::Attack(a)) => {
            pin(&a.common)?;
            // Ahead of the machine's other work (see `under_attack`): real-time, or at least a
            // raised priority; natter-server inherits it, the attackers step back down.
            let realtime = !a.no_realtime
                && procs::realtime_self(natter_bench::under_attack::REALTIME_PRIORITY)
                    .map_err(|e| eprintln!("natter-bench: not real-time: {e}"))
                    .is_ok();
            if !realtime && let Err(e) = procs::renice_self(natter_bench::under_attack::BOOST) {
                eprintln!("natter-bench: the clients run at the usual priority: {e}");
            }
            let local = tokio::task::LocalSet::new();
            rt.block_on(local.run_until(attack_main(a)))
        }
        Some(Cmd::Attackers(a)) => {
            let counts = rt.block_on(natter_bench::attack::attackers(
                a.addr,
                a.mix,
                Duration::from_millis(a.millis),
            ));
            println!("{}", serde_json::to_string(&counts)?);
            Ok(())
        }
        Some(Cmd::Handshakes(a)) => {
            pin(&a.common)?;
            rt.block_on(handshakes_main(a))
        }
        Some(Cmd::Storm(a)) => {
            pin(&a.common)?;
            rt.block_on(storm_main(a))
        }
    }
}

/// File descriptors wanted: 50,000 idle connections, both ends (the servers inherit the limit).
const NOFILE_WANTED: u64 = 120_000;

/// Raises this process's open-file limit (the hard one too when allowed, as root), so the big
/// room and the idle workload at 50,000 connections do not run out; the servers it starts
/// inherit it. A failure is logged: smaller runs still work.
fn raise_nofile() {
    use rlimit::Resource;
    if let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE)
        && soft < NOFILE_WANTED
        && hard < NOFILE_WANTED
    {
        // Needs CAP_SYS_RESOURCE; without it, the soft limit still goes up to the hard one.
        let _ = rlimit::setrlimit(Resource::NOFILE, soft, NOFILE_WANTED);
    }
    match rlimit::increase_nofile_limit(NOFILE_WANTED) {
        Ok(got) if got < NOFILE_WANTED => {
            tracing::warn!(got, "open-file limit below what large runs need");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

async fn baseline_server(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("baseline-server listening on {}", listener.local_addr()?);
    natter_bench::baseline::serve(listener).await?;
    Ok(())
}

async fn attack_main(a: AttackArgs) -> anyhow::Result<()> {
    use natter_bench::under_attack;
    let c = &a.common;
    std::fs::create_dir_all(&c.out)?;
    let spec = under_attack::Spec {
        server_bin: c.server_bin.clone(),
        bench_bin: std::env::current_exe()?,
        logs: c.out.join("logs"),
        server_cpu: (!c.no_pin).then_some(c.server_cpu),
        attack_cpu: (!c.no_pin).then_some(c.gen_cpu),
        legit: a.legit,
        pace: Duration::from_millis(a.pace_ms),
        window: Duration::from_secs(a.seconds),
        rounds: u32::try_from(c.runs)?,
        warmup: Duration::from_secs(1),
        settle: Duration::from_secs(2),
        mix: a.mix,
    };
    let figures = under_attack::run(&spec).await?;
    let json = c.out.join(format!("attack-{}.jsonl", unix_now()));
    std::fs::write(&json, serde_json::to_string(&figures)? + "\n")?;
    println!("{}", under_attack::table(&figures));
    println!("JSON: {}", json.display());
    let lost = figures.calm.lost + figures.attacked.lost;
    if lost > 0 || figures.unexpected > 0 {
        bail!(
            "well-behaved clients lost {lost} lines and got {} unexpected answers",
            figures.unexpected
        );
    }
    Ok(())
}

async fn smoke_main() -> anyhow::Result<()> {
    let results = smoke::run(8, 50).await?;
    let mut bad = 0;
    for (what, r) in &results {
        let ok = r.complete && r.lost == 0 && r.duplicated == 0 && r.deliveries == r.expected;
        bad += usize::from(!ok);
        println!(
            "{what:<30} {} {}/{} deliveries, lost {}, dup {}, p99 {:.3} ms {:?}",
            if ok { "ok  " } else { "FAIL" },
            r.deliveries,
            r.expected,
            r.lost,
            r.duplicated,
            r.latency.value_at_quantile(0.99) as f64 / 1e6,
            r.errors
        );
    }
    if bad > 0 {
        bail!("{bad} smoke runs lost or duplicated messages");
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The servers of one run: killed when dropped.
struct Servers {
    main: ServerProc,
    bridge: Option<ServerProc>,
    /// natter-cluster2: nats-server, then the nodes after `main` (clients alternate between
    /// `main` and these nodes).
    nats: Option<ServerProc>,
    nodes: Vec<ServerProc>,
    /// natter-server's metrics endpoint, when on.
    metrics: Option<SocketAddr>,
    /// natter-tls: the CA its clients trust.
    ca: Option<PathBuf>,
}

impl Servers {
    /// CPU seconds of the bridge alone (bridge runs).
    fn bridge_cpu(&self) -> anyhow::Result<Option<f64>> {
        Ok(self.bridge.as_ref().map(|b| b.cpu_seconds()).transpose()?)
    }

    /// CPU seconds of everything on the server side.
    fn cpu(&self) -> anyhow::Result<f64> {
        Ok(self.cpu_parts()?.iter().map(|(_, c)| c).sum())
    }

    /// CPU seconds of each server-side process: natter-server (the first node), then the
    /// bridge, nats-server and the other nodes when there are.
    fn cpu_parts(&self) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let mut parts = vec![("natter-server", self.main.cpu_seconds()?)];
        if let Some(b) = &self.bridge {
            parts.push(("natter-bridge", b.cpu_seconds()?));
        }
        if let Some(n) = &self.nats {
            parts.push(("nats-server", n.cpu_seconds()?));
        }
        for n in &self.nodes {
            parts.push(("natter-server", n.cpu_seconds()?));
        }
        Ok(parts)
    }

    /// Where clients connect.
    fn client_addr(&self) -> SocketAddr {
        self.bridge.as_ref().map_or(self.main.addr, |b| b.addr)
    }

    /// Where clients connect besides [`Servers::client_addr`] (the other nodes of a cluster).
    fn more_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }
}

/// Starts the servers for one run of `clients` clients (all from 127.0.0.1).
fn start_servers(c: &Common, target: Target, clients: u32, tag: &str) -> anyhow::Result<Servers> {
    start_servers_with(c, target, clients, tag, "")
}

/// [`start_servers`], with `limits` (TOML lines) added to natter-server's `[limits]` table.
fn start_servers_with(
    c: &Common,
    target: Target,
    clients: u32,
    tag: &str,
    limits: &str,
) -> anyhow::Result<Servers> {
    let cpu = (!c.no_pin).then_some(c.server_cpu);
    let logs = c.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let config = c.out.join("natter-server-bench.toml");
    let mut toml = smoke::bench_config_toml();
    toml.push_str(limits);
    if target.signs_in() {
        // Registering every client must not take the run's time: cheap hashes (the fan-out
        // path does not hash at all).
        toml.push_str("\n[accounts]\nhash_cost = { memory_kib = 64, iterations = 1 }\n");
    }
    std::fs::write(&config, toml)?;
    // One path for every run (runs are one after another, each with a fresh store): a path per
    // run left a store of up to hundreds of megabytes behind for each.
    let store_dir = c.out.join("store");
    // `clients_on`: which listener's address the clients connect to (every run opens a natter
    // door). Not just "listening": the metrics endpoint logs that too.
    let natter_in = |log: String,
                     irc: bool,
                     tls: Option<&natter_bench::tls::BenchCerts>,
                     cluster: Option<&str>,
                     clients_on: &str| {
        let mut args = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            config.display().to_string(),
        ];
        if let Some(url) = cluster {
            args.extend(["--cluster".into(), url.into()]);
        } else if target == Target::NatterStore {
            // A fresh store per run.
            let _ = std::fs::remove_dir_all(&store_dir);
            args.extend(["--data-dir".into(), store_dir.display().to_string()]);
        } else {
            // The other fan-out figures are the memory-only server's.
            args.push("--ephemeral".into());
        }
        if irc {
            args.extend(["--irc-listen".into(), "127.0.0.1:0".into()]);
        }
        if clients as usize + 1000 > natter_core::limits::MAX_CONNECTIONS {
            // The idle workload at 50,000: past the default cap.
            args.extend(["--max-connections".into(), (clients + 1000).to_string()]);
        }
        if target.scraped() {
            args.extend(["--metrics-listen".into(), "127.0.0.1:0".into()]);
        }
        if let Some(t) = tls {
            args.extend([
                "--tls-listen".into(),
                "127.0.0.1:0".into(),
                "--tls-cert".into(),
                t.cert.display().to_string(),
                "--tls-key".into(),
                t.key.display().to_string(),
            ]);
        }
        ServerProc::spawn(
            "natter-server",
            &c.server_bin,
            &args,
            &[
                ("RUST_LOG", "info"),
                ("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET),
            ],
            cpu,
            logs.join(log),
            clients_on,
        )
    };
    // The IRC listener's address for IRC runs, the TLS listener's for TLS runs.
    let natter_with = |log: String, irc: bool, tls: Option<&natter_bench::tls::BenchCerts>| {
        let door = if irc {
            "door=Irc"
        } else if tls.is_some() {
            "door=NatterTls"
        } else {
            "door=Natter"
        };
        natter_in(log, irc, tls, None, door)
    };
    let natter_on = |log: String, irc: bool| natter_with(log, irc, None);
    let natter = |log: String| natter_on(log, false);
    Ok(match target {
        Target::Natter | Target::NatterStore | Target::NatterAccounts => Servers {
            main: natter(format!("natter-server-{}-{tag}.log", target.name()))?,
            bridge: None,
            nats: None,
            nodes: Vec::new(),
            metrics: None,
            ca: None,
        },
        Target::NatterMetrics | Target::NatterAll => {
            let main = if target == Target::NatterAll {
                // Every listener open (IRC and TLS beside the natter door the clients use).
                let certs = natter_bench::tls::bench_certs(&c.out.join("tls"))?;
                natter_in(
                    format!("natter-server-{}-{tag}.log", target.name()),
                    true,
                    Some(&certs),
                    None,
                    // The space: not the `door=NatterTls` line.
                    "door=Natter ",
                )?
            } else {
                natter(format!("natter-server-{}-{tag}.log", target.name()))?
            };
            // Logged before the natter listener, so it is in the log by now.
            let metrics = main
                .logged_addr("metrics endpoint listening")
                .context("natter-server did not log its metrics address")?;
            Servers {
                main,
                bridge: None,
                nats: None,
                nodes: Vec::new(),
                metrics: Some(metrics),
                ca: None,
            }
        }
        Target::NatterTls => {
            let certs = natter_bench::tls::bench_certs(&c.out.join("tls"))?;
            Servers {
                main: natter_with(format!("natter-server-tls-{tag}.log"), false, Some(&certs))?,
                bridge: None,
                nats: None,
                nodes: Vec::new(),
                metrics: None,
                ca: Some(certs.ca),
            }
        }
        Target::NatterCluster => {
            // nats-server cannot say which free port it took: find one, then hand it over.
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let dir = c.out.join(format!("nats-{tag}"));
            let _ = std::fs::remove_dir_all(&dir);
            let nats = ServerProc::spawn_listening(
                "nats-server",
                Path::new(natter_bench::smoke::NATS_SERVER),
                &[
                    "-js".into(),
                    "-a".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                    "-sd".into(),
                    dir.display().to_string(),
                ],
                cpu,
                logs.join(format!("nats-server-{tag}.log")),
                SocketAddr::from(([127, 0, 0, 1], port)),
            )?;
            let url = format!("nats://127.0.0.1:{port}");
            let node = |i: usize| {
                natter_in(
                    format!("natter-server-cluster-node{i}-{tag}.log"),
                    false,
                    None,
                    Some(&url),
                    "door=Natter",
                )
            };
            let main = node(0)?;
            let other = node(1)?;
            Servers {
                main,
                bridge: None,
                nats: Some(nats),
                nodes: vec![other],
                metrics: None,
                ca: None,
            }
        }
        Target::Baseline => Servers {
            main: ServerProc::spawn(
                "baseline-server",
                &std::env::current_exe()?,
                &[
                    "baseline-server".into(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                ],
                &[],
                cpu,
                logs.join(format!("baseline-{tag}.log")),
                "listening on",
            )?,
            bridge: None,
            nats: None,
            nodes: Vec::new(),
            metrics: None,
            ca: None,
        },
        Target::Irc => Servers {
            main: natter_on(format!("natter-server-irc-{tag}.log"), true)?,
            bridge: None,
            nats: None,
            nodes: Vec::new(),
            metrics: None,
            ca: None,
        },
        Target::Inspircd => {
            // InspIRCd cannot say which free port it took: find one, then hand it over.
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let dir = c.out.join(format!("inspircd-{tag}"));
            std::fs::create_dir_all(&dir)?;
            let conf = dir.join("inspircd.conf");
            std::fs::write(&conf, inspircd_config(port, &dir))?;
            Servers {
                main: ServerProc::spawn_listening(
                    "inspircd",
                    &c.inspircd_bin,
                    &[
                        "--config".into(),
                        conf.display().to_string(),
                        "--nofork".into(),
                        // The bench may run as root (a container); the config is loopback only.
                        "--runasroot".into(),
                    ],
                    cpu,
                    logs.join(format!("inspircd-{tag}.log")),
                    SocketAddr::from(([127, 0, 0, 1], port)),
                )?,
                bridge: None,
                nats: None,
                nodes: Vec::new(),
                metrics: None,
                ca: None,
            }
        }
        Target::Bridge => {
            let main = natter(format!("natter-server-bridged-{tag}.log"))?;
            let bridge = ServerProc::spawn(
                "natter-bridge",
                &c.bridge_bin,
                &[
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--server".into(),
                    main.addr.to_string(),
                    "--www".into(),
                    c.out.join("no-page").display().to_string(),
                    // Every bench client comes from 127.0.0.1: lift the per-address cap.
                    "--max-connections-per-ip".into(),
                    clients.to_string(),
                    "--max-connections".into(),
                    clients.max(4096).to_string(),
                ],
                &[
                    ("RUST_LOG", "warn"),
                    ("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET),
                ],
                cpu,
                logs.join(format!("natter-bridge-{tag}.log")),
                "open http://",
            )?;
            Servers {
                main,
                bridge: Some(bridge),
                nats: None,
                nodes: Vec::new(),
                metrics: None,
                ca: None,
            }
        }
    })
}

/// A throwaway InspIRCd configuration: clients on 127.0.0.1:`port` only, flood control and
/// send/receive queue limits out of the way (as natter's bench config does for natter), and
/// echo-message so that a sender's own copy is its acknowledgement.
fn inspircd_config(port: u16, dir: &Path) -> String {
    format!(
        r#"<server name="inspircd.bench" description="natter-bench" network="bench">
<admin name="bench" nick="bench" email="bench@localhost.invalid">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="bench" allow="127.0.0.1" maxchans="20" timeout="60" pingfreq="3600"
         hardsendq="1073741824" softsendq="1073741824" recvq="1073741824"
         threshold="1000000000" commandrate="1000000000" fakelag="off"
         localmax="100000" globalmax="100000" maxconnwarn="off" useident="no"
         limit="100000" resolvehostnames="no">
<performance softlimit="100000" somaxconn="4096" netbuffersize="65536" clonesonconnect="no">
<limits maxnick="30" maxchan="64" maxline="512">
<channels users="20" opers="60">
<pid file="{pid}">
<module name="cap">
<module name="ircv3">
<module name="ircv3_echomessage">
"#,
        pid = dir.join("inspircd.pid").display()
    )
}

fn auto_messages(clients: u32, window: u32, rate: Option<f64>) -> u32 {
    match rate {
        // About five seconds of sending.
        Some(r) => ((r * 5.0 / f64::from(clients)).ceil() as u32).max(1),
        None => {
            let c2 = u64::from(clients) * u64::from(clients);
            // Clamped to at most 50,000, so the cast is exact.
            (AUTO_DELIVERIES / c2.max(1)).clamp(u64::from(window.max(1)), 50_000) as u32
        }
    }
}

async fn fanout(a: FanoutArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.common.out)?;
    let stamp = unix_now();
    let json = a.common.out.join(format!("fanout-{stamp}.jsonl"));
    let mut all: Vec<RunFigures> = Vec::new();
    let mut sums = Vec::new();
    for &clients in &a.clients {
        let messages = a
            .messages
            .unwrap_or_else(|| auto_messages(clients, a.window, a.rate));
        let targets = a.targets.clone();
        let mut by_target: Vec<Vec<RunFigures>> = vec![Vec::new(); targets.len()];
        // Targets interleaved run by run, so a busy moment on the machine hits all of them.
        for run in 0..a.common.runs {
            for (ti, &target) in targets.iter().enumerate() {
                let tag = format!("{}-{stamp}-c{clients}-{run}", target.name());
                let fig = fanout_once(&a, target, clients, messages, &tag)
                    .await
                    .with_context(|| format!("{} C={clients} run {run}", target.name()))?;
                eprintln!(
                    "  {:<8} C={clients:<5} M={messages:<6} run {run}: {:>10.0} deliveries/s, p50 {:.3} ms, p99 {:.3} ms, server cpu {:.0}%, gen cpu {:.0}%{}",
                    target.name(),
                    fig.deliveries_per_s,
                    fig.p50_us / 1e3,
                    fig.p99_us / 1e3,
                    fig.server_cpu * 100.0,
                    fig.gen_cpu * 100.0,
                    if fig.complete {
                        String::new()
                    } else {
                        format!(
                            "  INCOMPLETE: lost {} dup {} {:?}",
                            fig.lost, fig.duplicated, fig.errors
                        )
                    }
                );
                if fig.cpu_parts.len() > 1 {
                    eprintln!("           {}", report::cpu_parts_line(&fig));
                }
                report::append_json(&json, std::slice::from_ref(&fig))?;
                by_target[ti].push(fig.clone());
                all.push(fig);
            }
        }
        sums.extend(by_target.iter().filter_map(|runs| Summary::of(runs)));
    }
    report::append_json(&json, &sums)?;
    println!("{}", report::fanout_table(&sums));
    println!("{}", report::per_cpu_table(&sums));
    println!("JSON lines: {}", json.display());
    if a.clients.len() > 1 && a.rate.is_none() {
        let svg = a.common.out.join(format!("fanout-{stamp}.svg"));
        report::plot(&svg, &sums).map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        println!("plot: {}", svg.display());
    }
    let unclean = all
        .iter()
        .filter(|r| !(r.complete && r.lost == 0 && r.duplicated == 0))
        .count();
    if unclean > 0 {
        bail!("{unclean} runs lost or duplicated messages (see above)");
    }
    Ok(())
}

async fn fanout_once(
    a: &FanoutArgs,
    target: Target,
    clients: u32,
    messages: u32,
    tag: &str,
) -> anyhow::Result<RunFigures> {
    let servers = start_servers(&a.common, target, clients, tag)?;
    let spec = LoadSpec {
        target,
        addr: servers.client_addr(),
        more_addrs: servers.more_addrs(),
        clients,
        messages,
        window: a.window,
        rate: a.rate,
        verify: a.verify,
        timeout: Duration::from_secs(a.timeout_secs),
        ca_file: servers.ca.clone(),
    };
    let me = std::process::id();
    // A LocalSet per run: dropping it closes every client of the run.
    let local = tokio::task::LocalSet::new();
    let (result, server_cpu, gen_cpu, bridge_cpu, cpu_parts) = local
        .run_until(async {
            let load = Load::connect(spec).await?;
            let scraper = servers
                .metrics
                .map(|addr| tokio::task::spawn_local(scrape_every_second(addr)));
            let (p0, g0, t0) = (
                servers.cpu_parts()?,
                procs::cpu_seconds(me)?,
                Instant::now(),
            );
            let b0 = servers.bridge_cpu()?;
            let result = load.run().await;
            if let Some(s) = scraper {
                s.abort();
                if let Ok(Err(e)) = s.await {
                    bail!("scraping natter-server's metrics failed: {e:#}");
                }
            }
            let (p1, g1) = (servers.cpu_parts()?, procs::cpu_seconds(me)?);
            let b1 = servers.bridge_cpu()?;
            let wall = t0.elapsed().as_secs_f64().max(1e-9);
            let bridge = b0.zip(b1).map(|(b0, b1)| (b1 - b0) / wall);
            let parts: Vec<(String, f64)> = p0
                .iter()
                .zip(&p1)
                .map(|((name, c0), (_, c1))| ((*name).to_owned(), c1 - c0))
                .collect();
            let server = parts.iter().map(|(_, c)| c).sum::<f64>() / wall;
            anyhow::Ok((result, server, (g1 - g0) / wall, bridge, parts))
        })
        .await?;
    drop(local);
    let q = |p: f64| result.latency.value_at_quantile(p) as f64 / 1e3;
    Ok(RunFigures {
        target,
        clients,
        messages,
        window: if a.rate.is_some() { 0 } else { a.window },
        rate: a.rate,
        server_bin: match target {
            Target::Baseline => "natter-bench baseline-server".into(),
            Target::Natter
            | Target::NatterTls
            | Target::NatterStore
            | Target::NatterAccounts
            | Target::NatterMetrics
            | Target::NatterCluster
            | Target::NatterAll
            | Target::Bridge
            | Target::Irc => a.common.server_bin.display().to_string(),
            Target::Inspircd => a.common.inspircd_bin.display().to_string(),
        },
        deliveries_per_s: result.rate(),
        deliveries: result.deliveries,
        p50_us: q(0.5),
        p99_us: q(0.99),
        max_us: result.latency.max() as f64 / 1e3,
        server_cpu,
        gen_cpu,
        bridge_cpu,
        server_peak_rss: servers.main.peak_rss()?,
        bridge_peak_rss: servers.bridge.as_ref().map(|b| b.peak_rss()).transpose()?,
        lost: result.lost,
        duplicated: result.duplicated,
        complete: result.complete && result.deliveries == result.expected,
        seconds: result.elapsed.as_secs_f64(),
        errors: result.errors,
        cpu_parts,
    })
}

/// Scrapes `/metrics` at `addr` once a second (a busy Prometheus) until aborted; an error if a
/// scrape fails or is not OpenMetrics.
async fn scrape_every_second(addr: SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await?;
        if !body.starts_with(b"HTTP/1.1 200") || !body.ends_with(b"# EOF\n") {
            bail!("a scrape answered {:?}", String::from_utf8_lossy(&body));
        }
    }
}

async fn idle_main(a: IdleArgs) -> anyhow::Result<()> {
    if a.targets
        .iter()
        .any(|t| !matches!(t, Target::Natter | Target::Baseline | Target::Bridge))
    {
        bail!("the idle workload runs natter, baseline and bridge only");
    }
    std::fs::create_dir_all(&a.common.out)?;
    let stamp = unix_now();
    let json = a.common.out.join(format!("idle-{stamp}.jsonl"));
    let mut rows: Vec<(Target, Vec<IdleFigures>)> =
        a.targets.iter().map(|t| (*t, Vec::new())).collect();
    for run in 0..a.common.runs {
        for (target, figs) in rows.iter_mut() {
            let tag = format!("idle-{}-{stamp}-{run}", target.name());
            let servers = start_servers(&a.common, *target, a.conns, &tag)?;
            // Let the server finish starting (its RSS settles) before the first reading.
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Bridge runs: the bridge's memory is the figure, natter-server's behind it beside.
            let (front, behind) = match &servers.bridge {
                Some(b) => (b, Some(&servers.main)),
                None => (&servers.main, None),
            };
            let rss_before = front.rss()?;
            let anon_before = front.rss_anon()?;
            let behind_before = behind.map(ServerProc::rss).transpose()?;
            let held = idle::open(*target, servers.client_addr(), a.conns, a.room_size).await?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let rss_held = front.rss()?;
            let anon_held = front.rss_anon()?;
            let server_bytes_per_conn = match (behind, behind_before) {
                (Some(p), Some(before)) => {
                    Some((p.rss()? as f64 - before as f64) / f64::from(a.conns.max(1)))
                }
                _ => None,
            };
            let fig = IdleFigures {
                target: *target,
                conns: a.conns,
                room_size: a.room_size,
                rss_before,
                rss_held,
                bytes_per_conn: (rss_held as f64 - rss_before as f64) / f64::from(a.conns.max(1)),
                anon_bytes_per_conn: (anon_held as f64 - anon_before as f64)
                    / f64::from(a.conns.max(1)),
                anon_held,
                connect_secs: held.connect_time.as_secs_f64(),
                server_bytes_per_conn,
            };
            eprintln!(
                "  {:<8} N={} run {run}: {:.0} bytes/conn ({:.0} anonymous), connected in {:.2} s, \
                 RSS {:.1} MiB ({:.1} anonymous){}",
                target.name(),
                a.conns,
                fig.bytes_per_conn,
                fig.anon_bytes_per_conn,
                fig.connect_secs,
                rss_held as f64 / (1024.0 * 1024.0),
                anon_held as f64 / (1024.0 * 1024.0),
                server_bytes_per_conn
                    .map(|b| format!(" (natter-server behind it: {b:.0} bytes/conn)"))
                    .unwrap_or_default()
            );
            report::append_json(&json, std::slice::from_ref(&fig))?;
            figs.push(fig);
            drop(held);
            drop(servers);
        }
    }
    println!(
        "{:<9} {:>6} {:>6} {:>14} {:>12} {:>10} {:>16}",
        "target", "N", "room", "bytes/conn", "connect s", "RSS MiB", "server bytes/conn"
    );
    let mut medians = Vec::new();
    for (target, figs) in &rows {
        let med = |f: fn(&IdleFigures) -> f64| {
            let mut v: Vec<f64> = figs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let (b, t) = (med(|f| f.bytes_per_conn), med(|f| f.connect_secs));
        let rss = med(|f| f.rss_held as f64) / (1024.0 * 1024.0);
        let behind = figs
            .iter()
            .any(|f| f.server_bytes_per_conn.is_some())
            .then(|| med(|f| f.server_bytes_per_conn.unwrap_or(0.0)));
        println!(
            "{:<9} {:>6} {:>6} {:>14.0} {:>12.2} {:>10.1} {:>16}",
            target.name(),
            a.conns,
            a.room_size,
            b,
            t,
            rss,
            behind.map_or_else(|| "-".into(), |b| format!("{b:.0}"))
        );
        medians.push(serde_json::json!({
            "summary": "idle", "target": target, "conns": a.conns, "room_size": a.room_size,
            "bytes_per_conn": b, "connect_secs": t, "rss_held_mib": rss,
            "server_bytes_per_conn": behind, "runs": figs.len(),
        }));
    }
    report::append_json(&json, &medians)?;
    println!("JSON lines: {}", json.display());
    Ok(())
}

async fn handshakes_main(a: HandshakeArgs) -> anyhow::Result<()> {
    if a.targets
        .iter()
        .any(|t| !matches!(t, Target::Natter | Target::NatterTls))
    {
        bail!("handshakes measures natter and natter-tls only");
    }
    std::fs::create_dir_all(&a.common.out)?;
    let jsonl = a.common.out.join("handshakes.jsonl");
    println!(
        "{:<11} {:>4} {:>9} {:>9} {:>9} {:>10} {:>13} {:>7}",
        "target", "K", "conns/s", "p50 ms", "p99 ms", "server cpu", "per cpu-s", "failed"
    );
    for &k in &a.concurrency {
        for &target in &a.targets {
            let mut runs = Vec::new();
            for run in 0..a.common.runs {
                let tag = format!("hs-{}-k{k}-r{run}", target.name());
                let servers = start_servers(&a.common, target, k, &tag)?;
                let tls = match &servers.ca {
                    Some(ca) => {
                        let trust = natter_tls::Trust::CaFile(ca.clone());
                        let mut config = (*natter_tls::client_config(&trust)?).clone();
                        if !a.resume {
                            // Every connection a full handshake: rustls clients resume by default.
                            config.resumption = natter_tls::rustls::client::Resumption::disabled();
                        }
                        Some(natter_tls::TlsConnector::from(std::sync::Arc::new(config)))
                    }
                    None => None,
                };
                let spec = natter_bench::handshakes::HandshakeSpec {
                    addr: servers.client_addr(),
                    tls,
                    concurrency: k,
                    duration: Duration::from_secs(a.seconds),
                };
                let (s0, t0) = (servers.cpu()?, Instant::now());
                let r = natter_bench::handshakes::run(spec).await;
                let cpu = (servers.cpu()? - s0) / t0.elapsed().as_secs_f64().max(1e-9);
                if let Some(e) = &r.first_error {
                    eprintln!("{tag}: {} failed, first: {e}", r.failed);
                }
                runs.push((r, cpu));
            }
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let rate = median(runs.iter().map(|(r, _)| r.rate()).collect());
            let p50 = median(
                runs.iter()
                    .map(|(r, _)| r.latency.value_at_quantile(0.5) as f64 / 1e6)
                    .collect(),
            );
            let p99 = median(
                runs.iter()
                    .map(|(r, _)| r.latency.value_at_quantile(0.99) as f64 / 1e6)
                    .collect(),
            );
            let cpu = median(runs.iter().map(|(_, c)| *c).collect());
            let failed: u64 = runs.iter().map(|(r, _)| r.failed).sum();
            // On a shared machine the server gets what others leave: connections per second of
            // its CPU time is the figure that compares across runs.
            let per_cpu = median(runs.iter().map(|(r, c)| r.rate() / c.max(1e-9)).collect());
            println!(
                "{:<11} {:>4} {:>9.0} {:>9.3} {:>9.3} {:>9.0}% {:>13.0} {:>7}",
                target.name(),
                k,
                rate,
                p50,
                p99,
                cpu * 100.0,
                per_cpu,
                failed
            );
            let line = serde_json::json!({
                "at": unix_now(),
                "target": target.name(),
                "concurrency": k,
                "seconds": a.seconds,
                "runs": a.common.runs,
                "conns_per_s": rate,
                "p50_ms": p50,
                "p99_ms": p99,
                "server_cpu": cpu,
                "conns_per_cpu_s": per_cpu,
                "resume": a.resume,
                "failed": failed,
            });
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&jsonl)?;
            writeln!(f, "{line}")?;
        }
    }
    Ok(())
}

async fn storm_main(a: StormArgs) -> anyhow::Result<()> {
    use natter_bench::storm::{self, StormSpec};
    std::fs::create_dir_all(&a.common.out)?;
    let stamp = unix_now();
    let json = a.common.out.join(format!("storm-{stamp}.jsonl"));
    let quiets: Vec<Option<usize>> = if a.quiet_room_members.is_empty() {
        vec![None]
    } else {
        a.quiet_room_members.iter().copied().map(Some).collect()
    };
    println!(
        "{:>6} {:>7} {:>14} {:>9} {:>9} {:>9} {:>8} {:>10} {:>8}",
        "N", "quiet", "all joined s", "p50 s", "p99 s", "text", "stranded", "server cpu", "target"
    );
    let mut failed = 0;
    for &clients in &a.clients {
        for &quiet in &quiets {
            let mut runs = Vec::new();
            for run in 0..a.common.runs {
                let tag = format!(
                    "storm-{stamp}-n{clients}-q{}-{run}",
                    quiet.map_or(-1, |q| q as i64)
                );
                let mut limits = format!("max_room_members = {}\n", clients.max(1));
                if let Some(q) = quiet {
                    limits.push_str(&format!("quiet_room_members = {q}\n"));
                }
                let servers =
                    start_servers_with(&a.common, Target::Natter, clients, &tag, &limits)?;
                let spec = StormSpec {
                    addr: servers.client_addr(),
                    clients,
                    timeout: Duration::from_secs(a.timeout_secs),
                };
                let s0 = servers.cpu()?;
                let local = tokio::task::LocalSet::new();
                let (r, cpu) = local
                    .run_until(async {
                        let t0 = Instant::now();
                        let (r, crowd) = storm::run(spec).await?;
                        let took = t0.elapsed().as_secs_f64().max(1e-9);
                        let cpu = (servers.cpu()? - s0) / took;
                        drop(crowd);
                        anyhow::Ok((r, cpu))
                    })
                    .await?;
                drop(local);
                let all = r.all_joined.map(|d| d.as_secs_f64());
                let q = |p: f64| r.join_time.value_at_quantile(p) as f64 / 1e9;
                eprintln!(
                    "  N={clients} quiet={} run {run}: all joined {}, p50 {:.3} s, p99 {:.3} s, {} greeted as text, {} stranded, server cpu {:.0}% {:?}",
                    quiet.map_or("default".into(), |q| q.to_string()),
                    all.map_or("never".into(), |s| format!("{s:.3} s")),
                    q(0.5),
                    q(0.99),
                    r.greeted_as_text,
                    r.stranded,
                    cpu * 100.0,
                    r.errors
                );
                let line = serde_json::json!({
                    "at": unix_now(), "clients": clients, "quiet_room_members": quiet,
                    "run": run, "all_joined_s": all, "p50_s": q(0.5), "p99_s": q(0.99),
                    "greeted_as_text": r.greeted_as_text, "stranded": r.stranded,
                    "server_cpu": cpu, "errors": r.errors,
                });
                report::append_json(&json, std::slice::from_ref(&line))?;
                runs.push((all, q(0.5), q(0.99), r.greeted_as_text, r.stranded, cpu));
                drop(servers);
            }
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            };
            // A run with anyone stranded never had all joined: it counts as infinitely slow.
            let all = median(runs.iter().map(|r| r.0.unwrap_or(f64::INFINITY)).collect());
            let stranded: u32 = runs.iter().map(|r| r.4).max().unwrap_or(0);
            let text = median(runs.iter().map(|r| f64::from(r.3)).collect());
            let met = all <= a.target_secs && stranded == 0;
            failed += usize::from(!met);
            println!(
                "{:>6} {:>7} {:>14.3} {:>9.3} {:>9.3} {:>9.0} {:>8} {:>9.0}% {:>8}",
                clients,
                quiet.map_or("default".into(), |q| q.to_string()),
                all,
                median(runs.iter().map(|r| r.1).collect()),
                median(runs.iter().map(|r| r.2).collect()),
                text,
                stranded,
                median(runs.iter().map(|r| r.5).collect()) * 100.0,
                if met { "met" } else { "MISSED" },
            );
        }
    }
    println!("JSON lines: {}", json.display());
    if failed > 0 {
        bail!(
            "{failed} storm configurations missed the target ({} s, none stranded)",
            a.target_secs
        );
    }
    Ok(())
}
