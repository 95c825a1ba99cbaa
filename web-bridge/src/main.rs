//! `natter-bridge`: serves the natter page and relays its WebSockets to natter-server.
//! Stops on Ctrl+C / SIGTERM: closes WebSockets with 1001 and exits 0 within the grace period;
//! a second one meanwhile exits at once with 130 / 143 (128 + the signal), as natter-server does.
//! SIGHUP rereads the TLS certificate (`--tls-cert`/`--tls-key`) and the bridge secret's file
//! (`--server-secret-file`).

use anyhow::Context;
use clap::Parser;
use natter_bridge::{BridgeConfig, ServerTls, TlsFiles};
use natter_ops::LogFormat;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// natter's WebSocket <-> TCP bridge; also serves the browser page.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address for browsers (page on `/`, WebSocket on `/ws`).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// natter-server address, IP:PORT or HOST:PORT (env NATTER_BRIDGE_SERVER; a host name is
    /// resolved at start, to each of its addresses). Repeat it, or separate with commas, for
    /// the nodes of a natter cluster: each browser is relayed to the address that last worked,
    /// or the next that accepts.
    #[arg(
        long,
        env = "NATTER_BRIDGE_SERVER",
        value_delimiter = ',',
        default_value = "127.0.0.1:8000",
        value_name = "ADDR"
    )]
    server: Vec<String>,
    /// Serve the page over https and the WebSocket as wss with this certificate chain (PEM,
    /// leaf first; reread on SIGHUP). The page's own origin is then `https://` + Host.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Reach natter-server's TLS listener (--server is then its --tls-listen address), verifying
    /// its certificate against the system's roots or --server-ca.
    #[arg(long)]
    server_tls: bool,
    /// Trust only the CA certificates in this PEM file for the server; implies --server-tls.
    #[arg(long, value_name = "PEM")]
    server_ca: Option<PathBuf>,
    /// The name the server's certificate must carry [default: --server's host name or IP
    /// address; needed with several --server addresses].
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Directory of the built page [default: `www` in the target directory this binary was
    /// built into, where `cargo xtask web` puts the page; `target/www` if that cannot be told].
    #[arg(long, value_name = "DIR")]
    www: Option<PathBuf>,
    /// Also allow WebSockets from this Origin (repeatable), e.g. `https://chat.example.org`.
    /// The bridge's own origin (`http://` + Host) is allowed under a known Host (see
    /// `--allow-host`).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Serve the page's WebSocket under this host name too (repeatable), e.g.
    /// `chat.example.org`. IP addresses and `localhost` need none; other names are refused
    /// (HTTP 403), which stops pages that rebind their DNS name to this address.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_host: Vec<String>,
    /// Refuse WebSocket requests without an Origin header (non-browser clients).
    #[arg(long)]
    require_origin: bool,
    /// Most connections at once, in total (more get a 503) [default: 4096].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Most connections at once from one address (IPv6: one /64) [default: 50].
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<usize>,
    /// With --tls-cert: most TLS handshakes one address may start per 10 s (more are closed
    /// before their handshake) [default: 120].
    #[arg(long, value_name = "N")]
    max_tls_handshakes_per_ip: Option<u32>,
    /// Serve OpenMetrics at `/metrics`, and `/healthz` and `/readyz`, on this address (keep it
    /// off the public network).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Log lines as text (default) or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    log_format: LogFormat,
    /// A file holding natter-server's bridge secret (or set NATTER_BRIDGE_SECRET): the bridge
    /// then names each browser's address to the server. Without one, every browser counts as
    /// the bridge's own address in the server's per-address limits.
    #[arg(long, value_name = "FILE")]
    server_secret_file: Option<PathBuf>,
    /// A proxy in front of the bridge (repeatable, or comma-separated): its connections may
    /// start with a PROXY protocol header (v1 or v2) naming the browser, or, from an HTTP
    /// reverse proxy, name it in X-Forwarded-For (the rightmost address there that is not a
    /// trusted proxy); the caps count that address and the server is told it [default: none]
    #[arg(
        long = "trusted-proxy",
        value_name = "IP",
        env = "NATTER_BRIDGE_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<IpAddr>,
}

/// The page's default directory: `www` beside the profile directory holding this binary
/// (`<target>/release/natter-bridge` -> `<target>/www`), whatever the target directory is.
fn default_www() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("www")))
        .unwrap_or_else(|| PathBuf::from("target/www"))
}

fn main() -> std::process::ExitCode {
    // A bad value from an environment variable is said with the variable's name.
    let args: Args = match natter_ops::args::parse() {
        Ok(args) => args,
        Err(words) => {
            let argv: Vec<_> = std::env::args_os().collect();
            let format = natter_ops::logging::format_asked(&argv, None);
            return stopped(format, "cannot start", &words, 2);
        }
    };
    let format = args.log_format;
    let mut doing = "cannot start";
    let mut forced = None;
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            let ran = runtime.block_on(run(args, &mut doing, &mut forced));
            if forced.is_some() {
                // Dropping the runtime would wait for its blocking threads (a page file being
                // read): a forced stop leaves them, as natter-server's does.
                runtime.shutdown_background();
            }
            ran
        });
    match ran {
        Ok(()) => match forced {
            Some(status) => std::process::ExitCode::from(status),
            None => std::process::ExitCode::SUCCESS,
        },
        // The operator's words: each cause once, no backtrace.
        Err(e) => stopped(format, doing, &natter_ops::error_words(e.as_ref()), 1),
    }
}

/// Says why the process stops as an `ERROR` line of its log (set up now if it was not yet),
/// and gives the exit status.
fn stopped(format: LogFormat, doing: &str, why: &str, status: u8) -> std::process::ExitCode {
    if natter_ops::logging::ensure(format, "info").is_ok() {
        tracing::error!(error = %why, "{doing}");
    } else {
        // No log to be had: stderr as it is.
        eprintln!("natter-bridge: {doing}: {why}");
    }
    std::process::ExitCode::from(status)
}

/// The exit status after a second SIGINT during the shutdown: 128 + 2, as natter-server's.
const FORCED_BY_SIGINT: u8 = 130;
/// The exit status after a second SIGTERM: 128 + 15.
const FORCED_BY_SIGTERM: u8 = 143;

async fn run(args: Args, doing: &mut &'static str, forced: &mut Option<u8>) -> anyhow::Result<()> {
    natter_ops::logging::init(args.log_format, "info")?;
    let www = args.www.unwrap_or_else(default_www);
    if !www.join("index.html").is_file() {
        tracing::warn!(www = %www.display(), "no index.html there yet; build the page with `cargo xtask web`");
    }
    let defaults = BridgeConfig::default();
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let (servers, first_name) = natter_bridge::resolve_servers(&args.server)?;
    let (server, more_servers) = match servers.split_first() {
        Some((first, rest)) => (*first, rest.to_vec()),
        None => anyhow::bail!("--server: no address given"),
    };
    if (args.server_tls || args.server_ca.is_some())
        && args.server_name.is_none()
        && args.server.len() > 1
    {
        anyhow::bail!(
            "--server-name is needed with several --server addresses over TLS (a name every \
             node's certificate carries)"
        );
    }
    let server_tls = (args.server_tls || args.server_ca.is_some()).then(|| ServerTls {
        trust: match args.server_ca {
            Some(ca) => natter_tls::Trust::CaFile(ca),
            None => natter_tls::Trust::SystemRoots,
        },
        name: args
            .server_name
            .or(first_name)
            .unwrap_or_else(|| server.ip().to_string()),
    });
    let config = BridgeConfig {
        listen: args.listen,
        server,
        more_servers,
        tls,
        server_tls,
        www_dir: www,
        allowed_origins: args.allow_origin,
        allowed_hosts: args.allow_host,
        allow_missing_origin: !args.require_origin,
        max_connections: args.max_connections.unwrap_or(defaults.max_connections),
        max_connections_per_ip: args
            .max_connections_per_ip
            .unwrap_or(defaults.max_connections_per_ip),
        max_tls_handshakes_per_ip: args
            .max_tls_handshakes_per_ip
            .unwrap_or(defaults.max_tls_handshakes_per_ip),
        metrics_listen: args.metrics_listen,
        server_secret: server_secret(args.server_secret_file.as_deref())?,
        trusted_proxies: args.trusted_proxy,
        ..defaults
    };
    // Two files a browser (its WebSocket, its connection to the server), plus the listener,
    // the page's files being read and the like.
    let need = 2 * config.max_connections as u64 + 64;
    if let Err(e) = natter_ops::raise_open_files(need, "--max-connections") {
        tracing::warn!(error = %e, "cannot read or raise the open-file limit");
    }
    if config.server_secret.is_none() {
        tracing::warn!(
            "no bridge secret (NATTER_BRIDGE_SECRET or --server-secret-file): the server will count \
             every browser as this bridge's address"
        );
    }
    // A server on another machine reached without TLS: whatever browsers send (passwords,
    // device keys, resume tokens) crosses that network in clear, however the page was served.
    let in_clear: Vec<String> = match config.server_tls {
        Some(_) => Vec::new(),
        None => config
            .servers()
            .iter()
            .filter(|a| !a.ip().is_loopback())
            .map(ToString::to_string)
            .collect(),
    };
    if !in_clear.is_empty() {
        tracing::warn!(
            servers = %in_clear.join(","),
            "natter-server is reached in clear on another machine: browsers' passwords, device \
             keys and resume tokens cross that network unencrypted; give it --tls-listen and \
             this bridge --server-tls (or --server-ca)"
        );
    }
    // Before anything listens: a SIGHUP or SIGTERM that comes once the bridge says where it
    // listens must find its handler, not the default action, which ends the process at once.
    let mut stop = StopSignals::new()?;
    #[cfg(unix)]
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let bridge = natter_bridge::start(config).await?;
    // The two lines for a person at a terminal (and for scripts that start the bridge): with
    // `--log-format json` they are left out, as a container's or a unit's log takes stdout and
    // stderr together, and a JSON log must hold only JSON; the same addresses are in the log
    // (`bridge listening` and `metrics endpoint listening`).
    let tell = args.log_format == LogFormat::Text;
    let scheme = if bridge.is_https() { "https" } else { "http" };
    if tell {
        println!("natter-bridge: open {scheme}://{}/", bridge.local_addr());
    }
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(
        hup,
        bridge.certificates(),
        bridge.server_secret(),
        args.server_secret_file,
    ));
    if let Some(addr) = bridge.metrics_addr().filter(|_| tell) {
        println!("natter-bridge: metrics on http://{addr}/metrics");
    }
    stop.next().await?;
    tracing::info!("shutting down");
    *doing = "shutdown failed";
    // A second SIGINT or SIGTERM meanwhile means "now" (an operator's Ctrl+C pressed again):
    // the shutdown is left where it is (browsers not yet closed with 1001 see their connection
    // drop, and the page reconnects), and the process exits with 128 + the signal.
    tokio::select! {
        done = bridge.shutdown() => done?,
        second = stop.next() => {
            let (name, status) = second?;
            tracing::warn!(
                signal = name,
                status,
                "second signal while shutting down: exiting now, without waiting for the connections still open"
            );
            *forced = Some(status);
        }
    }
    Ok(())
}

/// The bridge secret from `file` (or NATTER_BRIDGE_SECRET), held to natter-server's rule for
/// one (16 to 256 characters): a secret no server can have would get every browser refused, so
/// it is refused here, at start as at a reload (where the secret in use then stays, as the
/// server keeps its own).
fn server_secret(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    let secret = natter_ops::bridge_secret(file)?;
    if let Some(s) = &secret {
        let from = file.map_or_else(
            || natter_ops::BRIDGE_SECRET_ENV.to_owned(),
            |f| f.display().to_string(),
        );
        natter_core::hub::BridgeSecret::new(s).map_err(|e| anyhow::anyhow!("{from}: {e}"))?;
    }
    Ok(secret)
}

/// SIGHUP: the bridge's certificate and key are read again, and so is `--server-secret-file`
/// (natter-server rereads its own on SIGHUP: a secret rotated on both takes effect without
/// dropping a browser); a bad or empty file is refused in the log and what is in use stays.
#[cfg(unix)]
async fn reload_on_sighup(
    hup: std::io::Result<tokio::signal::unix::Signal>,
    certificates: natter_bridge::Certificates,
    secret: natter_bridge::ServerSecret,
    secret_file: Option<PathBuf>,
) {
    let mut hup = match hup {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; nothing will reload");
            return;
        }
    };
    while hup.recv().await.is_some() {
        if !certificates.any() && secret_file.is_none() {
            tracing::info!(
                "SIGHUP received: nothing to reread (no --tls-cert, no --server-secret-file); \
                 the bridge's other settings are flags, read at start"
            );
            continue;
        }
        tracing::info!("SIGHUP received: reloading");
        if let Err(e) = certificates.reload() {
            tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays");
        }
        let Some(file) = &secret_file else {
            continue;
        };
        let shown = file.display();
        match server_secret(Some(file)) {
            Ok(Some(s)) if secret.set(Some(&s)) => {
                tracing::info!(file = %shown, "bridge secret reloaded: new relays present it");
            }
            Ok(Some(_)) => tracing::info!(file = %shown, "bridge secret unchanged"),
            Ok(None) => tracing::error!(
                file = %shown,
                "bridge secret not reloaded: the file is empty; the secret in use stays"
            ),
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "bridge secret not reloaded; the secret in use stays"
            ),
        }
    }
}

/// Ctrl+C, or SIGTERM on Unix: the handlers are installed by [`StopSignals::new`], and
/// [`StopSignals::next`] waits for either, each time.
struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
            let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
            Ok(StopSignals { int, term })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// The next stop signal: its name and the status a forced exit by it has.
    async fn next(&mut self) -> anyhow::Result<(&'static str, u8)> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Ok(("SIGINT", FORCED_BY_SIGINT)),
                _ = self.term.recv() => Ok(("SIGTERM", FORCED_BY_SIGTERM)),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl+C")?;
            Ok(("SIGINT", FORCED_BY_SIGINT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_and_variable_is_in_the_readme() {
        // An operator learns the bridge's flags from README.md: each one `--help` lists, and
        // each environment variable standing for one, is named there.
        use clap::CommandFactory;
        let readme = include_str!("../../README.md");
        let mut missing = Vec::new();
        for a in Args::command().get_arguments() {
            if let Some(long) = a.get_long()
                && !["help", "version"].contains(&long)
                && !readme.contains(&format!("--{long}"))
            {
                missing.push(format!("--{long}"));
            }
            if let Some(var) = a.get_env().and_then(|v| v.to_str())
                && !readme.contains(var)
            {
                missing.push(var.to_string());
            }
        }
        assert!(missing.is_empty(), "not in README.md: {missing:?}");
    }
}
