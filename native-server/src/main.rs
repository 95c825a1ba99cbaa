//! `natter-server`: reads flags, environment and an optional TOML file, seeds the hub from the
//! OS's randomness, runs the server, reloads the file's limits, the accounts and the TLS
//! certificate on SIGHUP and shuts down gracefully on SIGINT/SIGTERM. `natter-server account …`
//! manages accounts in the same store instead (`account_cmd`), `natter-server audit` prints the
//! moderation audit log.

mod account_cmd;
mod malloc_tune;

use anyhow::Context;
use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::{ArgAction, Parser, Subcommand};
use natter_core::hub::Config;
use natter_ops::LogFormat;
use natter_server::{Server, ServerConfig, TlsCerts, random_seed};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{error, info, warn};

const DEFAULT_LISTEN: &str = "0.0.0.0:8000";
const DEFAULT_GRACE_MS: u64 = 5_000;

/// natter's chat server. Binary clients (natter, the web bridge) and people on nc/telnet share
/// one port, IRC clients come in on IRC listeners, all in the same rooms. Logs go to stderr;
/// set RUST_LOG (default: info, and warn for the NATS client's own lines). SIGHUP reloads the
/// config file (`[limits]`, `[accounts]`, `[irc]`, `motd`, trusted proxies, the bridge secret),
/// the TLS certificate and the accounts in the store.
#[derive(Debug, Parser)]
#[command(name = "natter-server", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on, IPv4 or IPv6 (repeatable) [default: 0.0.0.0:8000]
    #[arg(
        short,
        long = "listen",
        value_name = "ADDR",
        env = "NATTER_LISTEN",
        value_delimiter = ','
    )]
    listen: Vec<SocketAddr>,
    /// Address to listen on for IRC clients, e.g. 127.0.0.1:6667 (repeatable) [default: none]
    #[arg(
        long = "irc-listen",
        value_name = "ADDR",
        env = "NATTER_IRC_LISTEN",
        value_delimiter = ','
    )]
    irc_listen: Vec<SocketAddr>,
    /// The IRC listener's server name, a hostname (the source of its numerics, in PONG, 004,
    /// 312 and 391) [default: natter.irc]
    #[arg(
        long = "irc-server-name",
        value_name = "NAME",
        env = "NATTER_IRC_SERVER_NAME"
    )]
    irc_server_name: Option<String>,
    /// Address to listen on for TLS, both dialects (repeatable; needs --tls-cert and --tls-key).
    /// Alone, without --listen, the server speaks TLS only [default: none]
    #[arg(
        long = "tls-listen",
        value_name = "ADDR",
        env = "NATTER_TLS_LISTEN",
        value_delimiter = ','
    )]
    tls_listen: Vec<SocketAddr>,
    /// Address to listen on for IRC over TLS, e.g. 127.0.0.1:6697 (repeatable; the same
    /// certificate as --tls-listen) [default: none]
    #[arg(
        long = "irc-tls-listen",
        value_name = "ADDR",
        env = "NATTER_IRC_TLS_LISTEN",
        value_delimiter = ','
    )]
    irc_tls_listen: Vec<SocketAddr>,
    /// The TLS certificate chain, PEM, leaf first (reread on SIGHUP)
    #[arg(long, value_name = "PEM", env = "NATTER_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key, PEM (reread on SIGHUP)
    #[arg(long, value_name = "PEM", env = "NATTER_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// TOML file with `listen`, `irc_listen`, `tls_listen`, `irc_tls_listen`, `tls_cert`,
    /// `tls_key`, `trusted_proxies`, `shutdown_grace_ms`, `metrics_listen`, `log_format`, `motd`,
    /// a `[limits]`, an `[irc]` and an `[accounts]` table (reloaded on SIGHUP) and a `[store]` table
    #[arg(short, long, value_name = "FILE", env = "NATTER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// A proxy in front of the server (repeatable): its connections may start with a PROXY
    /// protocol header naming the client, and are not counted as its own address [default: none]
    #[arg(
        long = "trusted-proxy",
        value_name = "IP",
        env = "NATTER_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<IpAddr>,
    /// Connections at once, in total [default: 20000, or `[limits] max_connections`]
    #[arg(long, value_name = "N", env = "NATTER_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections at once from one IP address (an IPv6 address: its /64) [default: 50, or
    /// `[limits] max_connections_per_ip`]
    #[arg(long, value_name = "N", env = "NATTER_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// How long shutdown waits for going-away notices to be written, in milliseconds [default: 5000]
    #[arg(long, value_name = "MS", env = "NATTER_SHUTDOWN_GRACE_MS")]
    shutdown_grace_ms: Option<u64>,
    /// Where rooms, history and resume sessions are kept (SQLite) [default: $XDG_DATA_HOME/natter]
    // Blank is no data dir given (see `given_data_dir`): clap's path parser refuses a blank
    // value, which stopped a server whose NATTER_DATA_DIR was set but empty.
    #[arg(
        long,
        value_name = "PATH",
        env = "NATTER_DATA_DIR",
        global = true,
        value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from)
    )]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory only: rooms and history are forgotten at exit
    /// (NATTER_EPHEMERAL: true/false, yes/no, on/off or 1/0; false, or a --data-dir, wins over
    /// the config file's `ephemeral = true`)
    #[arg(
        long,
        value_name = "BOOL",
        env = "NATTER_EPHEMERAL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    ephemeral: Option<bool>,
    /// Join a cluster through NATS with JetStream at this address (repeat it, or separate
    /// several with commas, for several NATS servers): rooms, history, nicks and accounts are
    /// shared with the other nodes, and the local store is not used (`account` commands then
    /// work on the cluster's accounts). A NATS that requires credentials takes them from
    /// --nats-user with --nats-password-file, or --nats-token-file, or in the address:
    /// nats://USER:PASSWORD@HOST:PORT or nats://TOKEN@HOST:PORT (the log shows `***`)
    #[arg(
        long,
        value_name = "nats://HOST:PORT",
        env = "NATTER_CLUSTER",
        hide_env_values = true,
        value_delimiter = ',',
        global = true
    )]
    cluster: Vec<String>,
    /// With --cluster: the NATS user natter signs in as, its password in --nats-password-file
    /// (or NATTER_NATS_PASSWORD): unlike one in --cluster's address, out of `ps` and the
    /// shell's history [default: none]
    #[arg(long, value_name = "USER", env = "NATTER_NATS_USER", global = true)]
    nats_user: Option<String>,
    /// With --nats-user: a file holding its NATS password (or set NATTER_NATS_PASSWORD)
    #[arg(long, value_name = "FILE", global = true)]
    nats_password_file: Option<PathBuf>,
    /// With --cluster: a file holding the token NATS requires (`nats-server --auth`; or set
    /// NATTER_NATS_TOKEN)
    #[arg(long, value_name = "FILE", global = true)]
    nats_token_file: Option<PathBuf>,
    /// With --cluster: a NATS credentials file, a user's JWT and NKey seed (NATS's
    /// decentralized auth; `nsc generate creds`, what `nats --creds` takes)
    #[arg(long, value_name = "FILE", env = "NATTER_NATS_CREDS", global = true)]
    nats_creds: Option<PathBuf>,
    /// Copies JetStream keeps of each room and bucket it makes (3 on a three-server NATS
    /// cluster) [default: 1]
    #[arg(long, value_name = "N", env = "NATTER_CLUSTER_REPLICAS")]
    cluster_replicas: Option<usize>,
    /// How long this node's lease in the cluster lasts without a refresh: once it has run out
    /// and one more lease has passed, the other nodes take its users for gone (a node stopped
    /// with SIGTERM tells them at once) [default: 15000]
    #[arg(long, value_name = "MS", env = "NATTER_CLUSTER_LEASE_MS")]
    cluster_lease_ms: Option<u64>,
    /// Give each chat line a JetStream message id, so that a copy of a line a node sends late
    /// (after a reconnection) is stored once: costs NATS about a third more CPU per message
    /// (NATTER_CLUSTER_LINE_IDS: true/false, yes/no, on/off or 1/0)
    #[arg(long, env = "NATTER_CLUSTER_LINE_IDS", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    cluster_line_ids: bool,
    /// A file holding the bridge secret (or set NATTER_BRIDGE_SECRET): natter-bridge presents it
    /// to name each browser's address. Without one, no bridge may name addresses.
    #[arg(long, value_name = "FILE")]
    bridge_secret_file: Option<PathBuf>,
    /// Serve Prometheus metrics at /metrics, and /healthz and /readyz, on this address (keep it
    /// off the public network) [default: none]
    #[arg(long, value_name = "ADDR", env = "NATTER_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Log lines as human-readable text or as one JSON object per line [default: text]
    #[arg(long, value_name = "FORMAT", env = "NATTER_LOG_FORMAT")]
    log_format: Option<LogFormat>,
}

/// Instead of running the server.
#[derive(Debug, Subcommand)]
enum Command {
    /// Manages accounts in the server's store (the same data directory and config as the
    /// server). Works while the server runs; a running server applies the changes on SIGHUP.
    /// With --cluster, on the cluster's accounts instead: every node hears a change at once.
    /// Passwords are asked on the terminal without echo, or read from --password-file or
    /// NATTER_PASSWORD, never given as arguments.
    Account {
        #[command(subcommand)]
        cmd: account_cmd::AccountCmd,
    },
    /// Prints the moderation audit log (what operators and admins did), oldest first, from the
    /// server's store (a cluster keeps none)
    Audit {
        /// Only this room
        #[arg(long)]
        room: Option<String>,
        /// The newest this many lines
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// The config file. Every key is optional; flags and environment variables win over it. The
/// `[limits]` table is the hub's [`Config`] itself: its field names, times as `*_ms`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Vec<SocketAddr>,
    irc_listen: Vec<SocketAddr>,
    tls_listen: Vec<SocketAddr>,
    irc_tls_listen: Vec<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    trusted_proxies: Option<Vec<IpAddr>>,
    shutdown_grace_ms: Option<u64>,
    metrics_listen: Option<SocketAddr>,
    log_format: Option<FileLogFormat>,
    /// The message of the day: IRC's MOTD and the lines under an nc user's welcome (up to
    /// 20 lines; reloaded on SIGHUP).
    motd: Option<String>,
    limits: Config,
    irc: IrcFile,
    store: StoreFile,
    accounts: natter_core::hub::AccountsConfig,
}

/// `log_format` in the file: `text` or `json`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FileLogFormat {
    Text,
    Json,
}

impl From<FileLogFormat> for LogFormat {
    fn from(f: FileLogFormat) -> LogFormat {
        match f {
            FileLogFormat::Text => LogFormat::Text,
            FileLogFormat::Json => LogFormat::Json,
        }
    }
}

/// The `[irc]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct IrcFile {
    /// As `--irc-server-name`.
    server_name: Option<String>,
}

/// The `[store]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StoreFile {
    /// As `--data-dir`.
    data_dir: Option<PathBuf>,
    /// As `--ephemeral`.
    ephemeral: bool,
    /// `off`, `normal` (the default) or `full`: what a crash or a power cut can lose.
    synchronous: natter_store::Synchronous,
    /// Events older than this many days are pruned (0: kept for ever).
    max_age_days: u32,
    /// The store is pruned, oldest first, past this many bytes [default: 10 GiB].
    max_bytes: Option<u64>,
}

/// Flags over environment over file over defaults.
fn server_config(args: &Args, file: &FileConfig, seed: [u8; 32]) -> anyhow::Result<ServerConfig> {
    let tls_listen = if args.tls_listen.is_empty() {
        file.tls_listen.clone()
    } else {
        args.tls_listen.clone()
    };
    let irc_tls_listen = if args.irc_tls_listen.is_empty() {
        file.irc_tls_listen.clone()
    } else {
        args.irc_tls_listen.clone()
    };
    let any_tls = !tls_listen.is_empty() || !irc_tls_listen.is_empty();
    let listen = if !args.listen.is_empty() {
        args.listen.clone()
    } else if !file.listen.is_empty() {
        file.listen.clone()
    } else if any_tls {
        // TLS listeners alone: no plaintext port unless one is asked for.
        Vec::new()
    } else {
        vec![DEFAULT_LISTEN.parse().context("default listen address")?]
    };
    let tls_certs = tls_certs(args, file, any_tls)?;
    let irc_listen = if args.irc_listen.is_empty() {
        file.irc_listen.clone()
    } else {
        args.irc_listen.clone()
    };
    let mut hub = Config {
        secret_seed: seed,
        accounts: file.accounts.clone(),
        ..file.limits.clone()
    };
    // Said by the flag's name, not by the `[limits]` key the hub's check would name (the
    // operator may have no config file at all).
    for (flag, n) in [
        (
            "--max-connections (NATTER_MAX_CONNECTIONS)",
            args.max_connections,
        ),
        (
            "--max-connections-per-ip (NATTER_MAX_CONNECTIONS_PER_IP)",
            args.max_connections_per_ip,
        ),
    ] {
        if n == Some(0) {
            anyhow::bail!("{flag} 0: must be at least 1");
        }
    }
    set_opt(args.max_connections, &mut hub.max_connections);
    set_opt(args.max_connections_per_ip, &mut hub.max_connections_per_ip);
    hub.trusted_proxies = if !args.trusted_proxy.is_empty() {
        args.trusted_proxy.clone()
    } else {
        file.trusted_proxies.clone().unwrap_or_default()
    };
    hub.bridge_secret = natter_ops::bridge_secret(args.bridge_secret_file.as_deref())?
        .map(|s| natter_core::hub::BridgeSecret::new(&s))
        .transpose()?;
    hub.motd = file
        .motd
        .as_deref()
        .map(natter_core::hub::Motd::new)
        .transpose()?;
    if let Some(name) = args
        .irc_server_name
        .as_deref()
        .or(file.irc.server_name.as_deref())
    {
        hub.irc_server_name = natter_core::hub::ServerName::new(name)?;
    }
    hub.validate()?;
    // Before a cluster's search index reads the table for its directory only.
    check_store_file(&file.store)?;
    // Without the NATS credentials given apart (`nats_credentials`): read at start only, not
    // at each reload (a file removed after the start would refuse every reload).
    let cluster = (!args.cluster.is_empty()).then(|| {
        let mut c = natter_cluster::ClusterConfig::new(args.cluster.clone());
        c.replicas = args.cluster_replicas.unwrap_or(1);
        if let Some(ms) = args.cluster_lease_ms {
            c.lease = std::time::Duration::from_millis(ms.max(300));
        }
        // The node's search index goes in the data dir (the OS's temporary one with
        // --ephemeral, or when there is no data dir to be had).
        let data_dir = store_config(args, &file.store).ok().flatten();
        c.search_dir = data_dir.map(|s| s.dir.join("cluster-search"));
        c.line_ids = args.cluster_line_ids;
        c
    });
    let store = match cluster {
        Some(_) => None,
        None => store_config(args, &file.store)?,
    };
    let grace = args
        .shutdown_grace_ms
        .or(file.shutdown_grace_ms)
        .unwrap_or(DEFAULT_GRACE_MS);
    Ok(ServerConfig {
        listen,
        irc_listen,
        tls_listen,
        irc_tls_listen,
        tls_certs,
        hub,
        shutdown_grace: Duration::from_millis(grace),
        store,
        metrics_listen: args.metrics_listen.or(file.metrics_listen),
        cluster,
        // Given apart from the file, at start (`with_nats_credentials`).
        nats_flags: natter_server::NatsFlags::default(),
    })
}

/// The environment variable holding `--nats-user`'s password, when `--nats-password-file` is
/// not given.
const NATS_PASSWORD_ENV: &str = "NATTER_NATS_PASSWORD";
/// The environment variable holding the NATS token, when `--nats-token-file` is not given.
const NATS_TOKEN_ENV: &str = "NATTER_NATS_TOKEN";

/// What a start with NATS credentials both in `--cluster`'s address and apart is told.
const TWICE: &str = "NATS credentials are given twice, in --cluster's address and apart \
                     (--nats-user, --nats-password-file, --nats-token-file, --nats-creds or \
                     their variables): give them once";

/// `cluster` (none without `--cluster`) with the NATS credentials given apart from its
/// addresses: `--nats-user` and its password, or a token, from files or the environment, never
/// the command line. Read at start (and by the `account` commands), not at a reload. Returns
/// the flags an `account` command needs to sign in as the server does (for the unclaimed-admin
/// warning's command), which name where the secret is, never the secret.
fn with_nats_credentials(
    cluster: Option<&mut natter_cluster::ClusterConfig>,
    args: &Args,
) -> anyhow::Result<natter_server::NatsFlags> {
    use natter_cluster::NatsCredentials;
    let Some(c) = cluster else {
        // Flags on the command line without a cluster would be read by nothing: an `account`
        // command made the account in a local store no node reads, a server ran alone. Their
        // variables alone may be set for other uses, and change nothing.
        let flag = |given: bool, env: Option<&str>| {
            given && env.is_none_or(|v| std::env::var_os(v).is_none())
        };
        let given = [
            (
                "--nats-user",
                flag(args.nats_user.is_some(), Some("NATTER_NATS_USER")),
            ),
            (
                "--nats-password-file",
                flag(args.nats_password_file.is_some(), None),
            ),
            (
                "--nats-token-file",
                flag(args.nats_token_file.is_some(), None),
            ),
            (
                "--nats-creds",
                flag(args.nats_creds.is_some(), Some("NATTER_NATS_CREDS")),
            ),
        ];
        if let Some((name, _)) = given.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{name} is for a cluster's NATS, and there is no --cluster (nor NATTER_CLUSTER): \
                 give the cluster's addresses too"
            );
        }
        return Ok(natter_server::NatsFlags::default());
    };
    let user = args.nats_user.as_deref().map(str::trim);
    let password = natter_ops::secret(args.nats_password_file.as_deref(), NATS_PASSWORD_ENV)?;
    let token = natter_ops::secret(args.nats_token_file.as_deref(), NATS_TOKEN_ENV)?;
    let creds = match &args.nats_creds {
        Some(file) => Some((
            file,
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --nats-creds {}", file.display()))?,
        )),
        None => None,
    };
    let user = user.filter(|u| !u.is_empty());
    let apart = user.is_some() || password.is_some() || token.is_some() || creds.is_some();
    // Said before what is missing apart: `NATTER_NATS_USER` left in the environment beside an
    // address with credentials was told "--nats-user needs its password" (session 42).
    if apart && c.credentials_in_address() {
        anyhow::bail!("{TWICE}");
    }
    c.credentials = match (user, password, token, creds) {
        (None, None, None, None) => None,
        (Some(user), Some(password), None, None) => {
            Some(NatsCredentials::UserPassword(user.to_owned(), password))
        }
        (None, None, Some(token), None) => Some(NatsCredentials::Token(token)),
        (None, None, None, Some((file, text))) => Some(
            NatsCredentials::creds(text)
                .map_err(|e| anyhow::anyhow!("--nats-creds {}: {e}", file.display()))?,
        ),
        (Some(_), None, None, None) => anyhow::bail!(
            "--nats-user needs its password: --nats-password-file FILE, or {NATS_PASSWORD_ENV}"
        ),
        (None, Some(_), None, None) => anyhow::bail!(
            "a NATS password (--nats-password-file or {NATS_PASSWORD_ENV}) needs --nats-user"
        ),
        _ => anyhow::bail!(
            "NATS takes one kind of credentials, not several: --nats-user with \
             --nats-password-file ({NATS_PASSWORD_ENV}), --nats-token-file ({NATS_TOKEN_ENV}), \
             or --nats-creds"
        ),
    };
    if c.credentials_twice() {
        anyhow::bail!("{TWICE}");
    }
    let path = |flag: &str, file: &std::path::Path| [flag.to_owned(), file.display().to_string()];
    let mut flags = natter_server::NatsFlags::default();
    match &c.credentials {
        None => {}
        Some(NatsCredentials::UserPassword(user, _)) => {
            flags.args.extend(["--nats-user".to_owned(), user.clone()]);
            match &args.nats_password_file {
                Some(file) => flags.args.extend(path("--nats-password-file", file)),
                None => flags.variable = Some(NATS_PASSWORD_ENV),
            }
        }
        Some(NatsCredentials::Token(_)) => match &args.nats_token_file {
            Some(file) => flags.args.extend(path("--nats-token-file", file)),
            None => flags.variable = Some(NATS_TOKEN_ENV),
        },
        Some(NatsCredentials::Creds(_)) => {
            if let Some(file) = &args.nats_creds {
                flags.args.extend(path("--nats-creds", file));
            }
        }
    }
    Ok(flags)
}

/// The certificate and key: both or neither, and both when there are TLS listeners (natter's
/// or IRC's: they share the certificate).
fn tls_certs(args: &Args, file: &FileConfig, any_tls: bool) -> anyhow::Result<Option<TlsCerts>> {
    let cert = args.tls_cert.clone().or_else(|| file.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| file.tls_key.clone());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsCerts { cert, key })),
        (None, None) if !any_tls => Ok(None),
        (None, None) => {
            anyhow::bail!("--tls-listen and --irc-tls-listen need --tls-cert and --tls-key")
        }
        (Some(_), None) => anyhow::bail!("--tls-cert needs --tls-key"),
        (None, Some(_)) => anyhow::bail!("--tls-key needs --tls-cert"),
    }
}

/// The data dir given to the server itself (`--data-dir`, or `NATTER_DATA_DIR`), if any. A
/// blank one is none, as `natter_store::resolve_data_dir` reads the variable: an env file's
/// `NATTER_DATA_DIR=`, or a compose file's `${NATTER_DATA_DIR}` left unset, means the default.
fn given_data_dir(args: &Args) -> Option<&Path> {
    args.data_dir
        .as_deref()
        .filter(|d| !d.as_os_str().is_empty())
}

/// Where the store lives and how it writes, or `None` with `--ephemeral`.
fn store_config(args: &Args, file: &StoreFile) -> anyhow::Result<Option<natter_store::Config>> {
    check_store_file(file)?;
    // The flag (or its variable) over the file, as for every other setting: a data dir named
    // there asks for a store in it, whatever the file's `ephemeral` says.
    let given = given_data_dir(args);
    let ephemeral = args.ephemeral.unwrap_or(file.ephemeral && given.is_none());
    if ephemeral {
        return Ok(None);
    }
    let flag = given.or(file.data_dir.as_deref());
    let dir = natter_store::resolve_data_dir(flag)?;
    let mut c = natter_store::Config::new(dir);
    c.synchronous = file.synchronous;
    c.retention.max_age_days = file.max_age_days;
    if let Some(b) = file.max_bytes {
        c.retention.max_bytes = b;
    }
    Ok(Some(c))
}

/// The least `[store] max_bytes` other than 0 (no limit).
const MIN_STORE_BYTES: u64 = 1 << 20;

/// Refuses a `[store]` table whose `max_bytes` would keep nothing: a size written in other units
/// (`10` for 10 GiB) would prune every line but the newest as soon as it is stored.
fn check_store_file(file: &StoreFile) -> anyhow::Result<()> {
    match file.max_bytes {
        Some(b) if b != 0 && b < MIN_STORE_BYTES => anyhow::bail!(
            "[store] max_bytes = {b} is less than the least a store is kept in, {MIN_STORE_BYTES} bytes (1 MiB); it counts bytes (10 GiB is 10737418240; 0: no limit)"
        ),
        _ => Ok(()),
    }
}

/// The log's format: the flag (or its variable) over the file over text.
fn log_format(args: &Args, file: &FileConfig) -> LogFormat {
    args.log_format
        .or(file.log_format.map(LogFormat::from))
        .unwrap_or_default()
}

fn set_opt<T>(v: Option<T>, to: &mut T) {
    if let Some(v) = v {
        *to = v;
    }
}

/// Reads and parses the config file. A TOML error is one line (`line L, column C: why`), at
/// start as at a reload: it goes to the log, where TOML's drawing of the line with a caret under
/// it would be cut into several entries (journald takes each line as one), the reason on the
/// last of them.
fn read_file_config(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let bad = || format!("bad config file {}", path.display());
    match toml::from_str(&text) {
        Ok(file) => Ok(file),
        Err(e) => {
            let why = e.message().trim().replace('\n', " ");
            let Some(span) = e.span() else {
                anyhow::bail!("{}: {why}", bad());
            };
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            anyhow::bail!("{}: line {line}, column {column}: {why}", bad())
        }
    }
}

/// The log filter when `RUST_LOG` is not set. The NATS client says each of its events at info
/// (every reconnection attempt while NATS is away); natter-cluster says what they mean, once.
const DEFAULT_LOG_FILTER: &str = "info,async_nats=warn";

/// How far a run got, for the line that says why it stopped: the log's format as far as it is
/// known (the flag's, then the config file's), and what was being done.
struct Progress {
    format: LogFormat,
    doing: &'static str,
    /// A signal stopped the start: what it left running (a store's open on a blocking thread,
    /// which a schema migration can keep busy for minutes) is not waited for.
    abandoned: bool,
    /// A second SIGINT or SIGTERM came while the server shut down: the process exits at once
    /// with this status (128 + the signal's number, as a shell reports a process a signal
    /// ended), leaving what still runs unfinished, as `abandoned` does.
    forced: Option<u8>,
}

fn main() -> std::process::ExitCode {
    // First of all, before a thread exists: this may start the binary again.
    let tuned = malloc_tune::reexec();
    // A bad value from an environment variable is said with the variable's name.
    let args: Args = match natter_ops::args::parse() {
        Ok(args) => args,
        Err(words) => {
            let argv: Vec<_> = std::env::args_os().collect();
            let format = natter_ops::logging::format_asked(&argv, Some("NATTER_LOG_FORMAT"));
            return stopped(format, doing_asked(&argv), &words, 2);
        }
    };
    let mut progress = Progress {
        format: args.log_format.unwrap_or_default(),
        doing: doing(args.command.as_ref()),
        abandoned: false,
        forced: None,
    };
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            let ran = runtime.block_on(run(tuned, args, &mut progress));
            if progress.abandoned || progress.forced.is_some() {
                // Dropping the runtime would wait for its blocking threads: the store's open
                // (a migration, a large store's load) went on to its end after the signal.
                // The process exits while it runs instead, as if killed, which SQLite is made
                // for: a migration step is one transaction, and one that did not commit is not
                // in the file at the next open (its pages in the write-ahead log are ignored);
                // at open, natter.seqs is only replaced by a rename. The directory's lock goes
                // with the process. A forced stop (a second signal during the shutdown) leaves
                // the store's writer the same way, perhaps in a commit: that commit is in the
                // file at the next open or not at all, and those before it are.
                runtime.shutdown_background();
            }
            ran
        });
    match ran {
        Ok(()) => match progress.forced {
            Some(status) => std::process::ExitCode::from(status),
            None => std::process::ExitCode::SUCCESS,
        },
        // The operator's words: each cause once, no backtrace.
        Err(e) => stopped(
            progress.format,
            progress.doing,
            &natter_ops::error_words(e.as_ref()),
            1,
        ),
    }
}

/// What a run that fails was doing, by its command: for the line that says why it stopped.
fn doing(command: Option<&Command>) -> &'static str {
    doing_named(match command {
        None => None,
        Some(Command::Account { .. }) => Some("account"),
        Some(Command::Audit { .. }) => Some("audit"),
    })
}

/// [`doing`] for arguments that do not parse, by the command they name as far as they read
/// (a bad flag of `audit` was said as `cannot start`, though nothing was starting).
fn doing_asked(argv: &[std::ffi::OsString]) -> &'static str {
    use clap::CommandFactory;
    let matches = Args::command()
        .ignore_errors(true)
        .try_get_matches_from(argv);
    doing_named(matches.as_ref().ok().and_then(|m| m.subcommand_name()))
}

/// [`doing`] by the command's name.
fn doing_named(command: Option<&str>) -> &'static str {
    match command {
        Some("account") => "account command failed",
        Some("audit") => "audit command failed",
        _ => "cannot start",
    }
}

/// Says why the process stops as an `ERROR` line of its log (set up now in `format` if it was
/// not yet: a bad flag or config file comes before it), and gives the exit status.
fn stopped(format: LogFormat, doing: &str, why: &str, status: u8) -> std::process::ExitCode {
    if natter_ops::logging::ensure(format, DEFAULT_LOG_FILTER).is_ok() {
        error!(error = %why, "{doing}");
    } else {
        // No log to be had: stderr as it is.
        eprintln!("natter-server: {doing}: {why}");
    }
    std::process::ExitCode::from(status)
}

async fn run(tuned: malloc_tune::Tuned, args: Args, progress: &mut Progress) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let file = read_file_config(args.config.as_ref())?;
    let format = log_format(&args, &file);
    progress.format = format;
    natter_ops::logging::init(format, DEFAULT_LOG_FILTER)?;
    match tuned {
        malloc_tune::Tuned::Yes | malloc_tune::Tuned::NotGlibc => {}
        malloc_tune::Tuned::Failed(e) => {
            warn!(error = %e, "could not restart with natter's allocator settings; glibc's defaults stay");
        }
    }
    if let Some(Command::Account { cmd }) = &args.command {
        // The file as the server would take it: a cost argon2 refuses is said as at a start,
        // before a store is made for an account that could not be.
        Config {
            accounts: file.accounts.clone(),
            ..file.limits.clone()
        }
        .validate()?;
        let cost = file.accounts.hash_cost;
        let done = if args.cluster.is_empty() {
            with_nats_credentials(None, &args)?;
            let store = store_config(&args, &file.store)?;
            account_cmd::run(cmd, store, cost, &mut std::io::stdout().lock())
        } else {
            // In a cluster the accounts are the cluster's, not a store's.
            let mut cluster = natter_cluster::ClusterConfig::new(args.cluster.clone());
            with_nats_credentials(Some(&mut cluster), &args)?;
            account_cmd::run_cluster(cmd, &cluster, cost, &mut std::io::stdout().lock()).await
        };
        if let Err(e) = done {
            // The command's answer to the operator who typed it (not a log line): the words
            // only, no error chain, no backtrace.
            eprintln!("natter-server account: {e}");
            let status = if matches!(e, account_cmd::AccountError::Interrupted) {
                natter_ops::prompt::INTERRUPTED_STATUS.into()
            } else {
                1
            };
            std::process::exit(status);
        }
        return Ok(());
    }
    if let Some(Command::Audit { room, limit }) = &args.command {
        // `--cluster` is global (for `account`): given here, the local store's log would be
        // printed as if it were the cluster's.
        let done = if args.cluster.is_empty() {
            let store = store_config(&args, &file.store)?;
            let out = &mut std::io::stdout().lock();
            account_cmd::audit(store, room.as_deref(), *limit, out)
        } else {
            Err(account_cmd::AccountError::ClusterAuditLog)
        };
        if let Err(e) = done {
            // As the account command's.
            eprintln!("natter-server audit: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let mut running = server_config(&args, &file, random_seed()?)?;
    running.nats_flags = with_nats_credentials(running.cluster.as_mut(), &args)?;
    // A file per connection (the socket cap allows an eighth more than max_connections, and
    // 64 for what a handshake holds), plus the listeners, the store's files and the like.
    let conns = running.hub.max_connections as u64;
    let need = conns + conns / 8 + 64 + 64;
    if let Err(e) = natter_ops::raise_open_files(need, "max_connections") {
        warn!(error = %e, "cannot read or raise the open-file limit");
    }
    // Before anything listens: a SIGHUP (a reload, a log rotation) or a SIGTERM that comes
    // once the server says it listens must find its handler, not the default action, which
    // ends the process at once.
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    // A start can take a while (up to 30 s waiting for NATS, a large store's loading): a
    // SIGINT or SIGTERM meanwhile stops it there, as it would the running server, instead of
    // waiting for the start to end (systemd kills a unit that does not stop in time).
    let server = tokio::select! {
        started = natter_server::start(running.clone()) => started?,
        _ = int.recv() => return stopped_while_starting(progress),
        _ = term.recv() => return stopped_while_starting(progress),
    };
    if let Some(addr) = server.metrics_addr() {
        info!(%addr, "metrics at /metrics, health at /healthz and /readyz");
    }

    let failed = loop {
        tokio::select! {
            _ = int.recv() => break false,
            _ = term.recv() => break false,
            _ = hup.recv() => on_sighup(&server, &args, &mut running, format).await,
            // A bug, or the store's writer gone: nothing is served any more. Exit (status 1)
            // for a supervisor to start the server again, rather than run on looking alive.
            () = server.failed() => break true,
        }
    };
    if failed {
        progress.doing = "server failed";
        error!(
            "the server's hub task stopped (see the lines above); closing every connection and exiting"
        );
        // Closes the listeners and the connections; its error is the task's, said below.
        if let Stopped::Forced(status) = shut_down(server, &mut int, &mut term).await {
            progress.forced = Some(status);
            return Ok(());
        }
        anyhow::bail!("the hub task stopped unexpectedly");
    }
    info!("signal received; shutting down");
    progress.doing = "shutdown failed";
    match shut_down(server, &mut int, &mut term).await {
        Stopped::Done(done) => done?,
        Stopped::Forced(status) => progress.forced = Some(status),
    }
    Ok(())
}

/// How [`shut_down`] ended.
enum Stopped {
    /// The graceful shutdown ran to its end.
    Done(Result<(), natter_server::ServerError>),
    /// A second SIGINT or SIGTERM cut it short: exit now with this status.
    Forced(u8),
}

/// The exit status after a second SIGINT: 128 + 2, as a shell reports a process Ctrl+C ended.
const FORCED_BY_SIGINT: u8 = 130;
/// The exit status after a second SIGTERM: 128 + 15.
const FORCED_BY_SIGTERM: u8 = 143;

/// Shuts the server down gracefully (up to its grace, and the drain after it), unless a second
/// SIGINT or SIGTERM comes meanwhile: an operator's Ctrl+C pressed again means "now". Then
/// it says so and gives up the shutdown where it is, for the process to exit at once. What
/// the store committed is kept: its database is SQLite in WAL mode, for which an exit in the
/// middle of a write (or a checkpoint) is a crash that loses nothing committed; a transaction
/// cut short is not in the file at the next open. What clients were told was stored had been
/// committed before they were told.
async fn shut_down(
    server: Server,
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
) -> Stopped {
    let (name, status) = tokio::select! {
        done = server.shutdown() => return Stopped::Done(done),
        _ = int.recv() => ("SIGINT", FORCED_BY_SIGINT),
        _ = term.recv() => ("SIGTERM", FORCED_BY_SIGTERM),
    };
    warn!(
        signal = name,
        status,
        "second signal while shutting down: exiting now, without waiting for the clients still being told; what the store committed is kept"
    );
    Stopped::Forced(status)
}

/// A SIGINT or SIGTERM came before the server was started: what the start had made (its
/// listeners, the metrics endpoint, the store) goes with it, unfinished and not waited for
/// (`Progress::abandoned`), and the process exits 0.
fn stopped_while_starting(progress: &mut Progress) -> anyhow::Result<()> {
    info!("signal received while starting; stopping");
    progress.abandoned = true;
    Ok(())
}

/// SIGHUP: everything a running server reloads. Each reload logs its own outcome and keeps what
/// runs when it fails; one failing does not stop the others.
async fn on_sighup(server: &Server, args: &Args, running: &mut ServerConfig, format: LogFormat) {
    info!("SIGHUP received: reloading");
    reload_config(server, args, running, format).await;
    // A bad certificate file is refused and the certificate in use stays.
    // A reload that worked is logged once, with the file, by `Certificates::reload`.
    if let Err(e) = server.reload_certificates() {
        error!(error = %e, "TLS certificate not reloaded; the old one stays");
    }
    if running.store.is_some() {
        match server.reload_accounts().await {
            Ok(n) => info!(accounts = n, "accounts reloaded from the store"),
            Err(e) => {
                error!(error = %e, "accounts reload failed; the accounts loaded before are kept")
            }
        }
    }
}

/// Reads the config file again (none: the flags alone, whose bridge secret file is read again
/// too) and hands its `[limits]` (and trusted proxies, bridge secret) to the hub; logs every value that changed. What only a restart can change (listen addresses,
/// the `[store]` table, the TLS files' paths, the metrics address, the shutdown grace, the log
/// format, `format` in force) is logged as waiting for one. An
/// unreadable or invalid file is refused with the reason, and the running config kept.
async fn reload_config(
    server: &Server,
    args: &Args,
    running: &mut ServerConfig,
    format: LogFormat,
) {
    let path = args.config.as_ref();
    if path.is_none() {
        // Not a warning: SIGHUP is also how the TLS certificate and the accounts are reloaded,
        // e.g. after every certificate renewal, with every setting given as a flag. The flags'
        // own files (the bridge secret's) are read again all the same.
        info!("config reload: no config file to read (the server was started without --config)");
    }
    let shown = path.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
    let next = read_file_config(path).and_then(|file| {
        let next = server_config(args, &file, running.hub.secret_seed)?;
        Ok((next, log_format(args, &file)))
    });
    let (next, next_format) = match next {
        Ok(next) => next,
        Err(e) => {
            error!(file = %shown, error = %format!("{e:#}"), "config reload refused; the running config is kept");
            return;
        }
    };
    let fixed = [
        ("listen", next.listen != running.listen),
        ("irc_listen", next.irc_listen != running.irc_listen),
        ("tls_listen", next.tls_listen != running.tls_listen),
        (
            "irc_tls_listen",
            next.irc_tls_listen != running.irc_tls_listen,
        ),
        (
            "metrics_listen",
            next.metrics_listen != running.metrics_listen,
        ),
        (
            "shutdown_grace_ms",
            next.shutdown_grace != running.shutdown_grace,
        ),
        // The whole table: `data_dir`, and `synchronous` and retention (`max_age_days`,
        // `max_bytes`), which the store's writer was opened with.
        ("store", next.store != running.store),
        // The files SIGHUP rereads are the ones the server started with.
        ("tls_cert/tls_key", next.tls_certs != running.tls_certs),
        // The log is set up once, at start.
        ("log_format", next_format != format),
    ];
    match server.reconfigure(next.hub.clone()).await {
        Ok(changes) => {
            for c in &changes {
                info!(key = %c.key, old = %c.old, new = %c.new, "config changed");
            }
            for (key, changed) in fixed {
                if changed {
                    warn!(
                        key = %key,
                        "config reload: this setting changed in the file; it takes effect at the next restart"
                    );
                }
            }
            info!(file = %shown, changed = changes.len(), "config reloaded");
            running.hub = next.hub;
        }
        Err(e) => {
            error!(file = %shown, error = %e, "config reload refused; the running config is kept");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NATS user given apart (`--nats-user`, or `NATTER_NATS_USER`, which clap reads the
    /// same) beside credentials in `--cluster`'s address is told the credentials are given
    /// twice: it was told "--nats-user needs its password", as if the address held none. A
    /// user alone, with an address without credentials, still hears that.
    #[test]
    fn a_nats_user_beside_credentials_in_the_address_is_told_they_are_given_twice() {
        let refused = |address: &str| {
            let args = Args::parse_from(["natter-server", "--nats-user", "natter"]);
            let mut c = natter_cluster::ClusterConfig::new(vec![address.to_owned()]);
            with_nats_credentials(Some(&mut c), &args)
                .unwrap_err()
                .to_string()
        };
        let said = refused("nats://natter:S3cret@127.0.0.1:4222");
        assert!(said.contains("given twice"), "{said}");
        assert!(!said.contains("S3cret"), "{said}");
        let said = refused("nats://127.0.0.1:4222");
        assert!(said.contains("--nats-user needs its password"), "{said}");
    }

    #[test]
    fn the_irc_server_name_comes_from_the_flag_or_the_irc_table_and_is_a_hostname() {
        let none = Args::parse_from(["natter-server"]);
        let c = server_config(&none, &FileConfig::default(), [1; 32]).unwrap();
        assert_eq!(c.hub.irc_server_name.as_str(), "natter.irc");
        let file: FileConfig = toml::from_str("[irc]\nserver_name = \"My.Little.Server\"").unwrap();
        let c = server_config(&none, &file, [1; 32]).unwrap();
        assert_eq!(c.hub.irc_server_name.as_str(), "My.Little.Server");
        let flag = Args::parse_from(["natter-server", "--irc-server-name", "irc.example.org"]);
        let c = server_config(&flag, &file, [1; 32]).unwrap();
        assert_eq!(c.hub.irc_server_name.as_str(), "irc.example.org");
        let bad: FileConfig = toml::from_str("[irc]\nserver_name = \"no spaces\"").unwrap();
        let refused = server_config(&none, &bad, [1; 32]).unwrap_err().to_string();
        assert!(
            refused.starts_with("[irc] server_name = \"no spaces\": "),
            "{refused}"
        );
        assert!(toml::from_str::<FileConfig>("[irc]\nname = \"x\"").is_err());
    }

    #[test]
    fn precedence_is_flags_then_file_then_defaults() {
        let args = Args::parse_from(["natter-server", "--max-connections", "7"]);
        let file: FileConfig = toml::from_str(
            r#"
            listen = ["127.0.0.1:9000", "[::1]:9000"]
            irc_listen = ["127.0.0.1:6667"]
            shutdown_grace_ms = 250
            motd = """
            Welcome to our natter.
            Be kind."""
            [limits]
            max_connections = 99
            max_connections_per_ip = 3
            exempt_loopback = false
            hello_timeout_ms = 1500
            outbound_total_max_bytes = 1048576
            "#,
        )
        .unwrap();
        let c = server_config(&args, &file, [1; 32]).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[1], "[::1]:9000".parse().unwrap());
        assert_eq!(c.irc_listen, vec!["127.0.0.1:6667".parse().unwrap()]);
        assert_eq!(c.hub.max_connections, 7);
        assert_eq!(c.hub.max_connections_per_ip, 3);
        assert!(!c.hub.exempt_loopback);
        assert_eq!(c.hub.hello_timeout, natter_core::Millis(1500));
        assert_eq!(c.hub.outbound_total_max_bytes, 1 << 20);
        assert_eq!(c.hub.secret_seed, [1; 32]);
        assert_eq!(c.shutdown_grace, Duration::from_millis(250));
        let motd: Vec<&str> = c.hub.motd.as_ref().unwrap().lines().collect();
        assert_eq!(
            motd,
            ["            Welcome to our natter.", "            Be kind."]
        );
        let long = FileConfig {
            motd: Some("line\n".repeat(21)),
            ..FileConfig::default()
        };
        let refused = server_config(&args, &long, [1; 32])
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("motd = (21 lines): "), "{refused}");
        assert!(
            c.hub.trusted_proxies.is_empty(),
            "no proxy is trusted unless named"
        );

        let args = Args::parse_from([
            "natter-server",
            "--listen",
            "127.0.0.1:1",
            "-l",
            "[::]:2",
            "--trusted-proxy",
            "10.0.0.1",
            "--irc-listen",
            "127.0.0.1:6667,[::1]:6667",
        ]);
        let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.irc_listen.len(), 2);
        assert_eq!(c.hub.trusted_proxies, vec![IpAddr::from([10, 0, 0, 1])]);
        assert_eq!(c.hub.max_connections, natter_core::limits::MAX_CONNECTIONS);
    }

    #[test]
    fn metrics_address_and_log_format_from_flags_environment_or_file() {
        let file: FileConfig =
            toml::from_str("metrics_listen = \"127.0.0.1:9100\"\nlog_format = \"json\"").unwrap();
        let args = Args::parse_from(["natter-server"]);
        let c = server_config(&args, &file, [0; 32]).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(file.log_format.map(LogFormat::from), Some(LogFormat::Json));
        let args = Args::parse_from([
            "natter-server",
            "--metrics-listen",
            "[::1]:9200",
            "--log-format",
            "text",
        ]);
        let c = server_config(&args, &file, [0; 32]).unwrap();
        assert_eq!(c.metrics_listen, Some("[::1]:9200".parse().unwrap()));
        assert_eq!(args.log_format, Some(LogFormat::Text));
        let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
        assert_eq!(c.metrics_listen, Some("[::1]:9200".parse().unwrap()));
        assert!(toml::from_str::<FileConfig>("log_format = \"yaml\"").is_err());
        let none = Args::parse_from(["natter-server"]);
        let c = server_config(&none, &FileConfig::default(), [0; 32]).unwrap();
        assert_eq!(c.metrics_listen, None, "no endpoint unless asked");
    }

    #[test]
    fn tls_flags() {
        let args = Args::parse_from([
            "natter-server",
            "--tls-listen",
            "127.0.0.1:8443",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
        assert!(c.listen.is_empty(), "--tls-listen alone: TLS only");
        assert_eq!(c.tls_listen, vec!["127.0.0.1:8443".parse().unwrap()]);
        assert_eq!(c.tls_certs.unwrap().key, PathBuf::from("k.pem"));
        let args = Args::parse_from([
            "natter-server",
            "-l",
            "127.0.0.1:1",
            "--tls-listen",
            "127.0.0.1:2",
        ]);
        let e = server_config(&args, &FileConfig::default(), [0; 32]).unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        let args = Args::parse_from(["natter-server", "--tls-cert", "c.pem"]);
        assert!(server_config(&args, &FileConfig::default(), [0; 32]).is_err());
        let file: FileConfig = toml::from_str(
            "listen = [\"127.0.0.1:8000\"]\ntls_listen = [\"127.0.0.1:8443\"]\ntls_cert = \"c\"\ntls_key = \"k\"",
        )
        .unwrap();
        let c = server_config(&Args::parse_from(["natter-server"]), &file, [0; 32]).unwrap();
        assert_eq!((c.listen.len(), c.tls_listen.len()), (1, 1), "both");
        assert!(c.irc_tls_listen.is_empty(), "no IRC over TLS unless asked");
    }

    #[test]
    fn irc_tls_flags_file_key_and_shared_certificate() {
        let args = Args::parse_from([
            "natter-server",
            "--irc-tls-listen",
            "127.0.0.1:6697,[::1]:6697",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
        assert_eq!(c.irc_tls_listen.len(), 2);
        assert!(c.listen.is_empty(), "--irc-tls-listen alone: TLS only");
        assert!(c.tls_listen.is_empty());
        // Without a certificate it is refused, naming what is missing.
        let args = Args::parse_from(["natter-server", "--irc-tls-listen", "127.0.0.1:6697"]);
        let e = server_config(&args, &FileConfig::default(), [0; 32]).unwrap_err();
        assert!(
            e.to_string().contains("--irc-tls-listen need --tls-cert"),
            "{e}"
        );
        // From the file, beside natter's own TLS port; a flag wins over the file.
        let file: FileConfig = toml::from_str(
            "tls_listen = [\"127.0.0.1:8443\"]\nirc_tls_listen = [\"127.0.0.1:6697\"]\ntls_cert = \"c\"\ntls_key = \"k\"",
        )
        .unwrap();
        let c = server_config(&Args::parse_from(["natter-server"]), &file, [0; 32]).unwrap();
        assert_eq!(c.irc_tls_listen, vec!["127.0.0.1:6697".parse().unwrap()]);
        assert_eq!(c.tls_listen.len(), 1);
        let args = Args::parse_from(["natter-server", "--irc-tls-listen", "127.0.0.1:7000"]);
        let c = server_config(&args, &file, [0; 32]).unwrap();
        assert_eq!(c.irc_tls_listen, vec!["127.0.0.1:7000".parse().unwrap()]);
    }

    /// The example config file with every setting uncommented (`#key = value` and the lines of
    /// a commented multi-line value; prose comments are `# ...`).
    fn example_config_uncommented() -> String {
        include_str!("../../deploy/natter.toml")
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The field names a `Deserialize` struct takes, as serde hands them to a deserializer.
    fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
        use serde::de::value::Error;
        struct Grab(std::rc::Rc<std::cell::Cell<&'static [&'static str]>>);
        impl<'de> serde::Deserializer<'de> for Grab {
            type Error = Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
                Err(serde::de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Error> {
                self.0.set(fields);
                Err(serde::de::Error::custom("only the fields were wanted"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf
                option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let fields = std::rc::Rc::new(std::cell::Cell::new(&[][..]));
        let _ = T::deserialize(Grab(fields.clone()));
        fields.get()
    }

    #[test]
    fn the_example_config_file_names_every_key_at_its_default() {
        // deploy/natter.toml is what an operator copies: every key the server takes, each at
        // the default the code has, so that its numbers cannot drift from the constants.
        let as_shipped: FileConfig = toml::from_str(include_str!("../../deploy/natter.toml"))
            .expect("the example parses as shipped (all commented out)");
        let text = example_config_uncommented();
        let file: FileConfig = toml::from_str(&text).expect("the example parses uncommented");
        let table: toml::Table = toml::from_str(&text).unwrap();
        let keys = |t: Option<&str>| -> Vec<String> {
            let t = match t {
                None => &table,
                Some(name) => table[name].as_table().unwrap(),
            };
            let mut k: Vec<String> = t.keys().cloned().collect();
            k.sort();
            k
        };
        let sorted = |f: &[&str]| -> Vec<String> {
            let mut k: Vec<String> = f.iter().map(|f| f.to_string()).collect();
            k.sort();
            k
        };
        assert_eq!(keys(None), sorted(fields_of::<FileConfig>()));
        // The hub's fields the server sets from elsewhere are `#[serde(skip)]`: not named.
        assert_eq!(keys(Some("limits")), sorted(fields_of::<Config>()));
        assert_eq!(
            keys(Some("accounts")),
            sorted(fields_of::<natter_core::hub::AccountsConfig>())
        );
        assert_eq!(keys(Some("irc")), sorted(fields_of::<IrcFile>()));
        assert_eq!(keys(Some("store")), sorted(fields_of::<StoreFile>()));

        let defaults = Config::default();
        assert_eq!(
            format!("{:?}", file.limits),
            format!("{defaults:?}"),
            "every [limits] value in deploy/natter.toml is the code's default"
        );
        assert_eq!(format!("{:?}", as_shipped.limits), format!("{defaults:?}"));
        assert_eq!(file.accounts, natter_core::hub::AccountsConfig::default());
        assert_eq!(
            file.irc.server_name.as_deref(),
            Some(defaults.irc_server_name.as_str())
        );
        let store = natter_store::Config::new(PathBuf::from("/nowhere"));
        assert!(!file.store.ephemeral);
        assert_eq!(file.store.synchronous, store.synchronous);
        assert_eq!(file.store.max_age_days, store.retention.max_age_days);
        assert_eq!(file.store.max_bytes, Some(store.retention.max_bytes));
        assert_eq!(file.listen, vec![DEFAULT_LISTEN.parse().unwrap()]);
        assert_eq!(file.shutdown_grace_ms, Some(DEFAULT_GRACE_MS));
        assert!(matches!(file.log_format, Some(FileLogFormat::Text)));
        assert!(file.irc_listen.is_empty() && file.tls_listen.is_empty());
        assert_eq!(file.trusted_proxies, Some(Vec::new()));
        // And the server takes it whole, as at start.
        let args = Args::parse_from(["natter-server", "--ephemeral"]);
        let c = server_config(&args, &file, [0; 32]).unwrap();
        assert_eq!(c.hub.motd.unwrap().lines().count(), 2);
    }

    #[test]
    fn every_flag_and_variable_is_in_the_readme() {
        // An operator learns the flags from README.md: each one `--help` lists, and each
        // environment variable standing for one, is named there.
        use clap::CommandFactory;
        let readme = include_str!("../../README.md");
        let mut missing = Vec::new();
        let mut commands = vec![Args::command()];
        while let Some(cmd) = commands.pop() {
            for a in cmd.get_arguments() {
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
            commands.extend(cmd.get_subcommands().cloned());
        }
        assert!(missing.is_empty(), "not in README.md: {missing:?}");
    }

    #[test]
    fn the_defaults_help_states_are_the_codes() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        let limits = natter_core::limits::MAX_CONNECTIONS;
        let per_ip = natter_core::limits::MAX_CONNECTIONS_PER_IP;
        for said in [
            format!("[default: {limits}, or `[limits] max_connections`]"),
            format!("[default: {per_ip}, or"),
            format!("[default: {DEFAULT_LISTEN}]"),
            format!("[default: {DEFAULT_GRACE_MS}]"),
            format!("[default: {}]", natter_core::hub::ServerName::default()),
        ] {
            assert!(help.contains(&said), "--help does not say {said}");
        }
        let lease = natter_cluster::ClusterConfig::new(Vec::new())
            .lease
            .as_millis();
        assert!(
            help.contains(&format!("[default: {lease}]")),
            "lease {lease}"
        );
    }

    #[test]
    fn defaults_and_bad_files() {
        let args = Args::parse_from(["natter-server"]);
        let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
        assert_eq!(c.listen, vec![DEFAULT_LISTEN.parse().unwrap()]);
        assert!(c.irc_listen.is_empty(), "no IRC listener unless asked");
        assert_eq!(c.shutdown_grace, Duration::from_millis(DEFAULT_GRACE_MS));
        assert!(toml::from_str::<FileConfig>("lisen = []").is_err());
        assert!(toml::from_str::<FileConfig>("[limits]\nflood = 3").is_err());
        // Every table refuses a key it does not know, by name, rather than ignore a misspelling
        // (README: "a key it does not know stops the server at start").
        for (text, key) in [
            ("[store]\nmax_age = 3", "max_age"),
            ("[accounts]\nregistraton = \"closed\"", "registraton"),
            (
                "[accounts]\nhash_cost = { memory_kib = 64, iterations = 1, lanes = 2 }",
                "lanes",
            ),
            // Set only from the top level, never from `[limits]`.
            ("[limits]\ntrusted_proxies = []", "trusted_proxies"),
            ("[metrics]\nlisten = \"127.0.0.1:0\"", "metrics"),
        ] {
            let e = toml::from_str::<FileConfig>(text).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{text}: {e}");
        }
        // A value that would make the hub spin is refused, naming the key.
        let file: FileConfig = toml::from_str("[limits]\nconnect_window_ms = 0").unwrap();
        let e = server_config(&args, &file, [0; 32])
            .unwrap_err()
            .to_string();
        assert!(e.contains("connect_window_ms = 0"), "{e}");
        // The same limit given as a flag (or its environment variable) is refused by that name.
        let flagged = Args::parse_from(["natter-server", "--max-connections-per-ip", "0"]);
        let e = server_config(&flagged, &FileConfig::default(), [0; 32])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--max-connections-per-ip (NATTER_MAX_CONNECTIONS_PER_IP) 0: "),
            "{e}"
        );
    }

    #[test]
    fn a_bad_file_is_one_line_in_the_log() {
        // A reload's refusal, and a start's, is one log line: TOML's drawing of the line with
        // a caret under it became five lines of the text log (five journal entries under
        // systemd), the reason on the last of them.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("natter.toml");
        std::fs::write(
            &path,
            "[limits]\nmax_connections = 5\nflood_burst = \"x\"\n",
        )
        .unwrap();
        let e = format!("{:#}", read_file_config(Some(&path)).unwrap_err());
        assert!(!e.contains('\n'), "{e}");
        assert!(e.starts_with("bad config file "), "{e}");
        assert!(
            e.contains("line 3, column 15: invalid type: string \"x\""),
            "{e}"
        );
    }

    #[test]
    fn the_command_line_says_whether_there_is_a_store_over_the_file() {
        let store = |argv: &[&str], file_ephemeral: bool| {
            let args = Args::try_parse_from(argv).unwrap();
            let file = StoreFile {
                data_dir: Some(PathBuf::from("/srv/file")),
                ephemeral: file_ephemeral,
                ..StoreFile::default()
            };
            store_config(&args, &file).unwrap().map(|c| c.dir)
        };
        let file_dir = Some(PathBuf::from("/srv/file"));
        assert_eq!(store(&["natter-server"], false), file_dir);
        assert_eq!(store(&["natter-server"], true), None);
        assert_eq!(store(&["natter-server", "--ephemeral"], false), None);
        assert_eq!(store(&["natter-server", "--ephemeral=true"], false), None);
        // NATTER_EPHEMERAL=false (clap reads the variable as it reads `=false`) and a data dir
        // given to the server itself win over the file's `ephemeral = true`: an operator's
        // explicit store is never memory only because of a file.
        assert_eq!(
            store(&["natter-server", "--ephemeral=false"], true),
            file_dir
        );
        assert_eq!(
            store(&["natter-server", "--data-dir", "/srv/flag"], true),
            Some(PathBuf::from("/srv/flag"))
        );
        // Both given to the server: memory only, as asked last for a test or a benchmark.
        assert_eq!(
            store(
                &["natter-server", "--data-dir", "/srv/flag", "--ephemeral"],
                false
            ),
            None
        );
        // The flag takes no value unless written with `=`: the word after it is not eaten.
        let args = Args::try_parse_from(["natter-server", "--ephemeral", "audit"]).unwrap();
        assert_eq!(args.ephemeral, Some(true));
        assert!(matches!(args.command, Some(Command::Audit { .. })));
    }

    #[test]
    fn a_clusters_search_index_goes_in_the_data_dir_unless_ephemeral() {
        let search_dir = |argv: &[&str]| {
            let args = Args::parse_from(argv);
            let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
            assert!(c.store.is_none(), "a cluster opens no store");
            c.cluster.expect("a cluster").search_dir
        };
        let cluster = ["natter-server", "--cluster", "nats://127.0.0.1:4222"];
        let with_dir = [&cluster[..], &["--data-dir", "/srv/natter"]].concat();
        assert_eq!(
            search_dir(&with_dir),
            Some(PathBuf::from("/srv/natter/cluster-search"))
        );
        let ephemeral = [&with_dir[..], &["--ephemeral"]].concat();
        assert_eq!(search_dir(&ephemeral), None);
        let line_ids = |argv: &[&str]| {
            let args = Args::parse_from(argv);
            let c = server_config(&args, &FileConfig::default(), [0; 32]).unwrap();
            c.cluster.expect("a cluster").line_ids
        };
        assert!(!line_ids(&cluster));
        assert!(line_ids(&[&cluster[..], &["--cluster-line-ids"]].concat()));
    }
}
