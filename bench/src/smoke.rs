//! The smoke mode: natter-server, the baseline and natter-bridge started in this process on
//! 127.0.0.1 port 0, a few hundred messages through each, closed and open loop. The caller
//! asserts that nothing was lost. Runs in seconds; `cargo test -p natter-bench` runs it.

use crate::Target;
use crate::load::{Load, LoadError, LoadResult, LoadSpec};
use natter_core::Millis;
use natter_core::hub::Config;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;

/// Why the smoke run could not run (losses are in the results, for the caller to assert on).
#[derive(Debug, Error)]
pub enum SmokeError {
    /// natter-server did not start.
    #[error(transparent)]
    Server(#[from] natter_server::ServerError),
    /// natter-bridge did not start.
    #[error(transparent)]
    Bridge(#[from] natter_bridge::BridgeError),
    /// A socket could not be bound.
    #[error("bind: {0}")]
    Bind(#[from] std::io::Error),
    /// A load run failed to set up.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The hub limits a benchmark needs: no flood control (a bench client does not pace itself),
/// queues deep enough for C × W messages in flight, no keepalive pings during a run. Everything
/// else stays at its default. The same values go into the server's config file
/// ([`bench_config_toml`]).
pub fn bench_hub_config(base: Config) -> Config {
    Config {
        flood_burst: BENCH_FLOOD_BURST,
        flood_refill: Millis(1),
        outbound_max_msgs: BENCH_OUTBOUND_MSGS,
        outbound_max_bytes: BENCH_OUTBOUND_BYTES,
        outbound_total_max_bytes: BENCH_OUTBOUND_TOTAL_BYTES,
        ping_after: Millis(BENCH_PING_AFTER_MS),
        exempt_loopback: true,
        ..base
    }
}

const BENCH_FLOOD_BURST: u32 = 4_000_000_000;
const BENCH_OUTBOUND_MSGS: usize = 65_536;
const BENCH_OUTBOUND_BYTES: usize = 64 * 1024 * 1024;
const BENCH_OUTBOUND_TOTAL_BYTES: usize = 16 * 1024 * 1024 * 1024;
const BENCH_PING_AFTER_MS: u64 = 3_600_000;

/// `natter-server --config` file with [`bench_hub_config`]'s values.
pub fn bench_config_toml() -> String {
    format!(
        "# Written by natter-bench: flood control off, deep queues, no pings during a run.\n\
         [limits]\nexempt_loopback = true\nflood_burst = {BENCH_FLOOD_BURST}\nflood_refill_ms = 1\n\
         outbound_max_msgs = {BENCH_OUTBOUND_MSGS}\noutbound_max_bytes = {BENCH_OUTBOUND_BYTES}\n\
         outbound_total_max_bytes = {BENCH_OUTBOUND_TOTAL_BYTES}\nping_after_ms = {BENCH_PING_AFTER_MS}\n"
    )
}

/// Runs the smoke set (inside a `LocalSet`): (what, result) per run.
pub async fn run(clients: u32, messages: u32) -> Result<Vec<(String, LoadResult)>, SmokeError> {
    let mut config = natter_server::ServerConfig::local_test();
    config.hub = bench_hub_config(config.hub);
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let cert_dir = std::env::temp_dir().join(format!("natter-bench-smoke-{}", std::process::id()));
    let certs = crate::tls::bench_certs(&cert_dir)?;
    config.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    // Every feature on (the natter-all target's server): metrics too.
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.tls_certs = Some(natter_server::TlsCerts {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
    });
    let server = natter_server::start(config).await?;
    let natter_addr = server.local_addrs()[0];
    let irc_addr = server.irc_addrs()[0];
    let tls_addr = server.tls_addrs()[0];

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let baseline_addr = listener.local_addr()?;
    let baseline = tokio::spawn(crate::baseline::serve(listener));

    let bridge = natter_bridge::start(natter_bridge::BridgeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        server: natter_addr,
        www_dir: std::env::temp_dir().join("natter-bench-no-page"),
        ..natter_bridge::BridgeConfig::default()
    })
    .await?;
    let bridge_addr = bridge.local_addr();

    let spec = |target, addr, verify, rate| LoadSpec {
        target,
        addr,
        clients,
        messages,
        window: 4,
        rate,
        verify,
        timeout: Duration::from_secs(20),
        ca_file: Some(certs.ca.clone()),
    };
    let runs = [
        (
            "natter closed loop",
            spec(Target::Natter, natter_addr, false, None),
        ),
        (
            "natter closed loop, verified",
            spec(Target::Natter, natter_addr, true, None),
        ),
        (
            "natter open loop",
            spec(Target::Natter, natter_addr, false, Some(2000.0)),
        ),
        (
            "natter-tls closed loop, verified",
            spec(Target::NatterTls, tls_addr, true, None),
        ),
        (
            "baseline closed loop",
            spec(Target::Baseline, baseline_addr, false, None),
        ),
        (
            "bridge closed loop, verified",
            spec(Target::Bridge, bridge_addr, true, None),
        ),
        (
            "natter with accounts signed in, verified",
            spec(Target::NatterAccounts, natter_addr, true, None),
        ),
        (
            "natter-all (every feature on), verified",
            spec(Target::NatterAll, natter_addr, true, None),
        ),
        ("irc closed loop", spec(Target::Irc, irc_addr, false, None)),
        (
            "irc closed loop, verified",
            spec(Target::Irc, irc_addr, true, None),
        ),
    ];
    let mut out = Vec::new();
    for (what, spec) in runs {
        // Each run in its own LocalSet: dropping it closes that run's clients.
        let local = tokio::task::LocalSet::new();
        let r = local
            .run_until(async move { Ok::<_, LoadError>(Load::connect(spec).await?.run().await) })
            .await?;
        out.push((what.to_owned(), r));
    }
    let _ = bridge.shutdown().await;
    let _ = server.shutdown().await;
    baseline.abort();
    let _ = std::fs::remove_dir_all(&cert_dir);
    Ok(out)
}
