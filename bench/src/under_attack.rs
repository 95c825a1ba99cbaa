//! `natter-bench attack`: the well-behaved clients' latency on a calm server and under the
//! attack mix, in one run against one server process. Windows alternate: calm, then attacked
//! (the attackers a separate process, started for the window and stopped after it), `rounds`
//! times; the clients talk throughout and each echo counts in the window its line was sent in.
//! The figure to read is attacked p99 / calm p99: both come from the same server and the same
//! minutes of the machine.
//!
//! The server is pinned to one CPU; the attackers' process to the other, beside the well-behaved
//! clients (this process). The clients and the server run under the real-time FIFO policy
//! ([`REALTIME_PRIORITY`]; or, without it, at a raised niceness, [`BOOST`]), the attackers under
//! the usual policy and ten steps nicer: the attackers take whatever their core has left, the
//! clients' few wake-ups come first there, and other work on a shared machine does not stand in
//! line before the server. Their timing is then the server's, not a busy machine's. (The kernel
//! keeps 5 % of each second from real-time work: a server that needs its whole core under
//! attack is stopped for 50 ms a second, which shows in the attacked p99.)

use crate::attack::{AttackCounts, Mix};
use crate::legit::{Legit, LegitError, LegitResult};
use crate::procs::{ProcError, ServerProc};
use serde::Serialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::AsyncReadExt;

/// The real-time (FIFO) priority `natter-bench attack` gives itself before it starts
/// natter-server, which inherits it.
pub const REALTIME_PRIORITY: u8 = 10;

/// Without real-time scheduling, the niceness `natter-bench attack` gives itself (the well-behaved clients) before it starts
/// natter-server, which inherits it: ahead of other work on the machine (builds, other
/// benchmarks), so that what they measure is the server's own response to the attack. Needs
/// root (or `CAP_SYS_NICE`); without it they run at the usual priority and the attackers ten
/// steps behind.
pub const BOOST: i32 = -10;

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// natter-server binary.
    pub server_bin: PathBuf,
    /// This program (it runs `attackers` as a child).
    pub bench_bin: PathBuf,
    /// Where the server's log goes.
    pub logs: PathBuf,
    /// CPU of the server, if pinned.
    pub server_cpu: Option<usize>,
    /// CPU of the attackers, if pinned.
    pub attack_cpu: Option<usize>,
    /// Well-behaved clients.
    pub legit: u32,
    /// Between two lines of one well-behaved client.
    pub pace: Duration,
    /// Length of each measured window.
    pub window: Duration,
    /// Calm + attacked window pairs.
    pub rounds: u32,
    /// Attackers run this long before their window starts.
    pub warmup: Duration,
    /// After the attackers stop, before the next calm window.
    pub settle: Duration,
    /// The attack.
    pub mix: Mix,
}

/// Why the run could not be made.
#[derive(Debug, Error)]
pub enum UnderAttackError {
    /// The server did not start, or `/proc` could not be read.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// The well-behaved clients could not join.
    #[error(transparent)]
    Legit(#[from] LegitError),
    /// The attackers' process failed.
    #[error("attackers: {0}")]
    Attackers(String),
}

/// One window's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Echoes timed.
    pub samples: usize,
    /// Lines sent in the window and never echoed.
    pub lost: usize,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Slowest, µs.
    pub max_us: f64,
    /// natter-server's CPU over the windows, share of one core.
    pub server_cpu: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Well-behaved clients.
    pub legit: u32,
    /// Their pace, ms.
    pub pace_ms: u64,
    /// Seconds per window.
    pub window_s: f64,
    /// Window pairs.
    pub rounds: u32,
    /// The attack.
    pub mix: Mix,
    /// Calm windows together.
    pub calm: Phase,
    /// Attacked windows together.
    pub attacked: Phase,
    /// Attacked p99 / calm p99.
    pub p99_ratio: f64,
    /// Each attacked window's p99 / the calm window before it, µs / µs.
    pub round_ratios: Vec<f64>,
    /// Errors, gaps, closes the well-behaved clients got (should be 0).
    pub unexpected: u64,
    /// The first few of them.
    pub notes: Vec<String>,
    /// What the attackers did, per attacked window.
    pub attackers: Vec<AttackCounts>,
}

/// One measured window.
#[derive(Debug, Clone, Copy)]
struct Window {
    attacked: bool,
    start: Duration,
    end: Duration,
    cpu_s: f64,
}

/// Runs it; the server is stopped when this returns. Call inside a `tokio::task::LocalSet`.
pub async fn run(spec: &Spec) -> Result<Figures, UnderAttackError> {
    std::fs::create_dir_all(&spec.logs).map_err(|source| ProcError::Io {
        what: format!("create {}", spec.logs.display()),
        source,
    })?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Natter's default limits: flood control on, per-address limits for the forwarded address.
    // It inherits this process's priority (see the module's docs).
    let server = ServerProc::spawn(
        "natter-server",
        &spec.server_bin,
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--ephemeral".into(),
        ],
        &[
            ("RUST_LOG", "info"),
            ("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET),
        ],
        spec.server_cpu,
        spec.logs.join(format!("natter-server-attack-{stamp}.log")),
        "door=Natter",
    )?;
    let addr = server.addr;
    let legit = Legit::connect(addr, spec.legit).await?;
    let started = legit.started;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let clients = legit.run(
        spec.pace,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(2),
    );
    let driver = async {
        let r = drive(spec, &server, started).await;
        let _ = stop_tx.send(());
        r
    };
    let (result, driven) = tokio::join!(clients, driver);
    let (windows, attackers) = driven?;
    Ok(figures(spec, &result, &windows, attackers))
}

/// The windows, in order, and what the attackers reported.
async fn drive(
    spec: &Spec,
    server: &ServerProc,
    started: Instant,
) -> Result<(Vec<Window>, Vec<AttackCounts>), UnderAttackError> {
    let mut windows = Vec::new();
    let mut counts = Vec::new();
    // The clients' first lines, before anything is measured.
    tokio::time::sleep(spec.pace * 2).await;
    for _ in 0..spec.rounds {
        windows.push(measure(server, started, spec.window, false).await?);
        let attackers = start_attackers(spec, server.addr)?;
        tokio::time::sleep(spec.warmup).await;
        windows.push(measure(server, started, spec.window, true).await?);
        counts.push(finish_attackers(attackers, spec.warmup).await?);
        tokio::time::sleep(spec.settle).await;
    }
    Ok((windows, counts))
}

async fn measure(
    server: &ServerProc,
    started: Instant,
    length: Duration,
    attacked: bool,
) -> Result<Window, UnderAttackError> {
    let (c0, start) = (server.cpu_seconds()?, started.elapsed());
    tokio::time::sleep(length).await;
    Ok(Window {
        attacked,
        start,
        end: started.elapsed(),
        cpu_s: server.cpu_seconds()? - c0,
    })
}

fn start_attackers(
    spec: &Spec,
    addr: std::net::SocketAddr,
) -> Result<tokio::process::Child, UnderAttackError> {
    // Ten steps behind this process (back at the usual priority when it runs at [`BOOST`]): on
    // the core it shares with the well-behaved clients, they go first.
    // The usual scheduling policy too, should this process run under a real-time one.
    let mut cmd = tokio::process::Command::new("chrt");
    cmd.args(["--other", "0", "nice", "-n", "10"]);
    if let Some(cpu) = spec.attack_cpu {
        cmd.args(["taskset", "-c", &cpu.to_string()]);
    }
    let run_for = spec.warmup + spec.window + Duration::from_millis(200);
    cmd.arg(&spec.bench_bin)
        .args([
            "attackers".to_owned(),
            "--addr".to_owned(),
            addr.to_string(),
            "--millis".to_owned(),
            run_for.as_millis().to_string(),
        ])
        .args(spec.mix.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd.spawn()
        .map_err(|e| UnderAttackError::Attackers(format!("cannot start: {e}")))
}

async fn finish_attackers(
    mut child: tokio::process::Child,
    grace: Duration,
) -> Result<AttackCounts, UnderAttackError> {
    let mut out = String::new();
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| UnderAttackError::Attackers("no stdout".into()))?;
    let read = async {
        let _ = stdout.read_to_string(&mut out).await;
        child.wait().await
    };
    let status = tokio::time::timeout(grace + Duration::from_secs(10), read)
        .await
        .map_err(|_| UnderAttackError::Attackers("did not stop in time".into()))?
        .map_err(|e| UnderAttackError::Attackers(e.to_string()))?;
    if !status.success() {
        return Err(UnderAttackError::Attackers(format!("exited with {status}")));
    }
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| UnderAttackError::Attackers(format!("bad report {line:?}: {e}")))
}

/// Sorts the samples into the windows and sums them up.
fn figures(
    spec: &Spec,
    r: &LegitResult,
    windows: &[Window],
    attackers: Vec<AttackCounts>,
) -> Figures {
    let within = |w: &Window, t: Duration| t >= w.start && t < w.end;
    let phase = |attacked: bool| -> Phase {
        let ws: Vec<&Window> = windows.iter().filter(|w| w.attacked == attacked).collect();
        let mut lat: Vec<Duration> = r
            .samples
            .iter()
            .filter(|s| ws.iter().any(|w| within(w, s.sent)))
            .map(|s| s.latency)
            .collect();
        let lost = r
            .lost
            .iter()
            .filter(|t| ws.iter().any(|w| within(w, **t)))
            .count();
        let secs: f64 = ws.iter().map(|w| (w.end - w.start).as_secs_f64()).sum();
        let cpu: f64 = ws.iter().map(|w| w.cpu_s).sum();
        summarise(&mut lat, lost, cpu / secs.max(1e-9))
    };
    let calm = phase(false);
    let attacked = phase(true);
    let round_ratios = windows
        .chunks(2)
        .filter_map(|pair| {
            let [c, a] = pair else { return None };
            let p99 = |w: &Window| {
                let mut lat: Vec<Duration> = r
                    .samples
                    .iter()
                    .filter(|s| within(w, s.sent))
                    .map(|s| s.latency)
                    .collect();
                summarise(&mut lat, 0, 0.0).p99_us
            };
            Some(p99(a) / p99(c).max(1.0))
        })
        .collect();
    Figures {
        legit: spec.legit,
        pace_ms: spec.pace.as_millis() as u64,
        window_s: spec.window.as_secs_f64(),
        rounds: spec.rounds,
        mix: spec.mix,
        p99_ratio: attacked.p99_us / calm.p99_us.max(1.0),
        calm,
        attacked,
        round_ratios,
        unexpected: r.unexpected,
        notes: r.notes.clone(),
        attackers,
    }
}

fn summarise(lat: &mut [Duration], lost: usize, server_cpu: f64) -> Phase {
    lat.sort_unstable();
    let q = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64() * 1e6
    };
    Phase {
        samples: lat.len(),
        lost,
        p50_us: q(0.5),
        p99_us: q(0.99),
        max_us: q(1.0),
        server_cpu,
    }
}

/// The table printed for a run.
pub fn table(f: &Figures) -> String {
    let mut s = format!(
        "{} well-behaved clients, a line each every {} ms; {} × ({:.0} s calm, {:.0} s attacked)\n\
         phase        samples   lost    p50 ms    p99 ms    max ms  srv cpu\n",
        f.legit, f.pace_ms, f.rounds, f.window_s, f.window_s
    );
    for (name, p) in [("calm", &f.calm), ("attacked", &f.attacked)] {
        s.push_str(&format!(
            "{name:<10} {:>9} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>7.0}%\n",
            p.samples,
            p.lost,
            p.p50_us / 1e3,
            p.p99_us / 1e3,
            p.max_us / 1e3,
            p.server_cpu * 100.0
        ));
    }
    let rounds: Vec<String> = f.round_ratios.iter().map(|r| format!("{r:.2}")).collect();
    s.push_str(&format!(
        "attacked p99 / calm p99 = {:.2} x (per round: {})\n",
        f.p99_ratio,
        rounds.join(", ")
    ));
    for (i, a) in f.attackers.iter().enumerate() {
        s.push_str(&format!(
            "attackers, round {i}: {} connections, {:.1} MB sent, {:.1} MB received, {} closed by \
             the server, same address {} admitted / {} refused, {} timeouts\n",
            a.connects,
            a.bytes_sent as f64 / 1e6,
            a.bytes_received as f64 / 1e6,
            a.closed_by_server,
            a.same_address_admitted,
            a.same_address_refused,
            a.timeouts
        ));
    }
    if f.unexpected > 0 {
        s.push_str(&format!(
            "well-behaved clients got {} unexpected answers: {:?}\n",
            f.unexpected, f.notes
        ));
    }
    s
}
