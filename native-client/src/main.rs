//! `natter`: the terminal chat client. A full-screen UI on a terminal (drawing natter-core's chat
//! model), plain lines when piped (worded by natter-core's `render::session_lines`). Both drive
//! natter-core's Session through [`driver`].

/// A line for the person running natter, on stderr. `eprintln!` panics when stderr is closed
/// (`natter ... 2>&1 | head` once `head` has its lines): natter then ended with a panic's status
/// (101) instead of its own; a line that cannot be written is let go.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod clock;
mod config;
mod driver;
mod forget;
mod keys;
mod line;
mod login;
mod tui;

use anyhow::Context;
use clap::Parser;
use natter_core::session::{Session, SessionConfig, Transport};
use natter_core::wire::Proof;
use natter_core::{Nick, RoomName};
use std::hash::{BuildHasher, Hasher};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
On a terminal natter runs full-screen. Keys: Enter send, Up/Down history, Tab complete a nick,
a /command or a #room (again: the next match), Ctrl+Left/Right or Alt+B/F move by word,
Alt+1..9 or Ctrl+N/Ctrl+P switch conversations, PgUp/PgDn or the mouse wheel scroll (Shift+drag
selects text), Ctrl+L redraws, Ctrl+C (or Ctrl+D on an empty line) quit. Type /help for commands;
/clear empties the view; /query nick opens a direct conversation. Mentions of your
nick are highlighted; a mention or a direct message rings the bell (--no-bell, or bell = false
in the config file, turns that off).

When stdin or stdout is not a terminal it reads lines from stdin and prints one event per line:
  [#room] <nick> text        chat (always with the room)
  [#room] * nick text        action
  [#room] -nick- text        notice (/notice #room text)
  [#room] -- nick joined #room   (and other room notices)
  *nick* text / -> *nick* text   direct message received / sent
  -nick- text / -> -nick- text   direct notice received / sent (/notice nick text)
  error: words               errors
  -- you are in #room with: nick, ...   a join, below the room's recent lines
  -- away here: nick (text)  who is away, after joining a room (then each change once:
                             -- nick is away: text, -- nick is back)
  -- words                   other notices
All of it goes to stdout (account and moderation answers and errors too); stderr has only
natter's own words about the run (why it exited 1, a skipped line, logs with RUST_LOG).
At the end of input it waits until the server has acknowledged and answered every line, then exits 0
(1 if that does not happen within --wait seconds, default 10, or the server refused a message, a
room to join or a /nick, or a line could not be done: an unknown command, a usage error, a
command the server refused; every line is still tried, and stderr says how many were not done).
Example: echo hi | natter --nick bot

--login signs in to the account named by the nick (--nick or the config file). The password
comes from the environment variable NATTER_PASSWORD (unless blank), else the file named by
password_file in the config file, else it is asked for on the terminal without echo; it is never
a flag. It is kept in memory only, to sign in again after a server restart.

--remember (or remember = true in the config file) asks the server for a device key with the
sign-in (or a typed /login or /register) and keeps it, never the password, in a file only you may
read: $XDG_STATE_HOME/natter/devices/ACCOUNT@HOST_PORT (default ~/.local/state/natter/devices/).
The next --login for that server and account signs in with it and asks for no password; a key
the server refuses (the device forgotten with /devices forget, the password changed) is deleted
and the password is used: NATTER_PASSWORD or password_file, else the full-screen client asks
for it (line mode exits 1). A key file others may read, or that belongs to another user, is
refused (chmod 600 it), and so is a devices directory others may write to (chmod 700 it).
natter --forget-device --nick ACCOUNT SERVER has the server revoke the key and deletes the file.

With --tls, --ca-file or a natters:// address the server's certificate is always verified; one
that does not verify ends natter at once with exit status 1 and the reason.

Several server addresses (natter a:8000 b:8000, or a:8000,b:8000) are nodes of one cluster: natter
connects to the first, and when an address cannot be reached (or does not answer) tries the next
at once; after a whole round fails it waits (backoff) before the next. A connection lost after the
server answered tries the same address first.

Config file: ~/.config/natter/config.toml (or --config) with server (one address, several
comma-separated, or a list), nick, rooms, bell, password_file and remember.";

/// natter: chat in shared rooms.
#[derive(Debug, Parser)]
#[command(name = "natter", version, about, after_help = AFTER_HELP)]
struct Args {
    /// Nick to use (default: from the config file, else $USER, else guest).
    #[arg(long, short)]
    nick: Option<String>,
    /// Room to join at start; repeat for more (default: #lobby).
    #[arg(long = "room", short, value_name = "#ROOM")]
    rooms: Vec<String>,
    /// Config file (default: config.toml in the per-user config directory).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write logs to FILE (level from RUST_LOG, default info).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Sign in to the account named by the nick: with the device key kept by --remember if
    /// there is one, else the password (NATTER_PASSWORD, the config file's password_file, or
    /// asked on the terminal).
    #[arg(long)]
    login: bool,
    /// Remember this device: the sign-in (or a typed /login or /register) asks the server for
    /// a device key, kept in a private file, and the next --login uses it instead of the
    /// password. Also remember = true in the config file.
    #[arg(long)]
    remember: bool,
    /// Forget this device: tell the server to revoke the key kept for the nick's account at the
    /// server (by signing in with it and out), and delete its file.
    #[arg(long, conflicts_with_all = ["login", "remember"])]
    forget_device: bool,
    /// Use line mode even on a terminal.
    #[arg(long)]
    lines: bool,
    /// Line mode: seconds to wait at the end of input for the server to acknowledge everything.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    wait: u64,
    /// Ring the terminal bell on a mention of your nick or a direct message (the default).
    #[arg(long, overrides_with = "no_bell")]
    bell: bool,
    /// Do not ring the bell.
    #[arg(long, overrides_with = "bell")]
    no_bell: bool,
    /// Connect over TLS, verifying the server against the system's root certificates (or
    /// --ca-file's CA). Also: a natters://HOST or natters://HOST:PORT address (default port 8443).
    #[arg(long)]
    tls: bool,
    /// Trust only the CA certificates in this PEM file (a private CA); implies --tls.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Server as HOST, HOST:PORT or natters://HOST(:PORT) (default: from the config file, else
    /// 127.0.0.1:8000). Several (repeated or comma-separated) are nodes of one cluster: tried in
    /// order, the next when one cannot be reached.
    #[arg(value_name = "SERVER")]
    servers: Vec<String>,
}

/// The full-screen client's first words when no server was given (natter run bare, as a new
/// user does): which one it tries and how to pick another, above the refusals that follow
/// when nothing listens there.
fn default_server_words(nick: &Nick) -> String {
    let file = config::default_path()
        .map_or_else(|| "the config file".to_owned(), |p| p.display().to_string());
    format!(
        "no server given: trying {} (the default) as {nick}; to choose: natter --nick NICK \
         HOST:PORT, or server and nick in {file} (natter --help says more)",
        config::DEFAULT_SERVER
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // Ctrl+C at the password prompt: the status a shell knows from SIGINT, nothing said.
        Err(e) if matches!(e.downcast_ref(), Some(login::LoginError::Interrupted)) => {
            ExitCode::from(natter_ops::prompt::INTERRUPTED_STATUS)
        }
        Err(e) => {
            // Each cause once: natter's errors word their cause into their message, which
            // anyhow's `{:#}` would say again.
            tell!("natter: {}", natter_ops::error_words(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let line_mode =
        args.lines || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal();
    init_logging(args.log.as_deref(), line_mode)?;

    let file = match &args.config {
        Some(path) => config::load(path, true)?,
        None => match config::default_path() {
            Some(path) => config::load(&path, false)?,
            None => config::FileConfig::default(),
        },
    };
    let nick = match args.nick.as_deref().or(file.nick.as_deref()) {
        Some(n) => Nick::new(n).with_context(|| format!("bad nick {n:?}"))?,
        None => config::default_nick(),
    };
    let chose_server = !args.servers.is_empty() || file.server.is_some();
    let server_items = if !args.servers.is_empty() {
        args.servers.clone()
    } else if let Some(s) = &file.server {
        s.items()
    } else {
        vec![config::DEFAULT_SERVER.to_owned()]
    };
    let mut servers = config::parse_servers(&server_items)?;
    for server in &mut servers {
        server.tls |= args.tls || args.ca_file.is_some();
    }
    let tls = if servers.iter().any(|s| s.tls) {
        let trust = match &args.ca_file {
            Some(path) => natter_tls::Trust::CaFile(path.clone()),
            None => natter_tls::Trust::SystemRoots,
        };
        Some(natter_tls::client_config(&trust)?)
    } else {
        None
    };
    let room_args = if args.rooms.is_empty() {
        file.rooms.clone().unwrap_or_default()
    } else {
        args.rooms.clone()
    };
    let mut rooms = room_args
        .iter()
        .map(|r| RoomName::new(r).with_context(|| format!("bad room {r:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if rooms.is_empty() {
        rooms.push(RoomName::lobby());
    }
    rooms.dedup();

    let remember = args.remember || file.remember == Some(true);
    // Keys are kept under the first address (a cluster's nodes share accounts).
    let store = if remember || args.forget_device {
        Some(keys::KeyStore::for_server(&servers[0])?)
    } else if args.login {
        // No state directory: no key kept, the password as before.
        keys::KeyStore::for_server(&servers[0]).ok()
    } else {
        None
    };
    if args.forget_device {
        let store = store.context("no key store")?;
        return forget_device(&store, nick, servers, tls, args.wait);
    }
    let mut kept = match (&store, args.login) {
        (Some(store), true) => store.load(&nick)?,
        _ => None,
    };
    let bell = if args.bell || args.no_bell {
        args.bell
    } else {
        file.bell.unwrap_or(true)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // At most twice: the full-screen client whose kept key the server refused with no password
    // at hand asks for the password on the terminal and starts again.
    let result = loop {
        // Asked before the screen is taken over, so the prompt is readable.
        let password = if args.login {
            // Blank is unset, as for every NATTER_* variable: the file or the prompt is asked.
            let env = natter_ops::args::env_var(login::PASSWORD_ENV)
                .map(|v| v.into_string())
                .transpose()
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8", login::PASSWORD_ENV))?;
            let file = file.password_file.as_deref().map(config::expand_home);
            if kept.is_some() {
                // The key signs in; a password at hand (never asked for: the key is there so
                // that it is not) is for a key the server refuses.
                login::password_at_hand(env, file.as_deref())?
            } else {
                Some(login::password(nick.as_str(), env, file.as_deref())?)
            }
        } else {
            None
        };
        if password.is_some() || kept.is_some() {
            warn_of_clear_sign_in(&servers, kept.is_some());
        }
        let may_ask_again = kept.is_some() && password.is_none() && !line_mode;
        let (session, has_password) = session(
            SessionConfig {
                nick: nick.clone(),
                rooms: rooms.clone(),
                transport: Transport::Stream,
                seed: random_seed(),
            },
            args.login,
            remember,
            kept.clone(),
            password,
        );
        let keeper = match &store {
            Some(store) if remember || kept.is_some() => Some(keys::Keeper::new(
                store.clone(),
                kept.clone().map(|key| (nick.clone(), key)),
                has_password,
            )),
            _ => None,
        };
        let mut driver_config = driver::DriverConfig::new(servers.clone());
        driver_config.settle_timeout = std::time::Duration::from_secs(args.wait);
        driver_config.tls = tls.clone();
        driver_config.keeper = keeper;

        let result = if line_mode {
            runtime
                .block_on(line::run(session, driver_config))
                .map_err(anyhow::Error::from)
        } else {
            runtime
                .block_on(tui::run(
                    session,
                    driver_config,
                    tui::Options {
                        bell,
                        first_note: (!chose_server).then(|| default_server_words(&nick)),
                    },
                ))
                .map_err(anyhow::Error::from)
        };
        // The key is gone from its file, and the session ended for want of a sign-in: the
        // server refused the key (the keeper deleted the file). The screen is the shell's
        // again: say so there, and ask.
        let refused = |e: &anyhow::Error| {
            matches!(
                e.downcast_ref(),
                Some(tui::TuiError::Driver(driver::DriverError::Fatal(_)))
            )
        };
        if may_ask_again
            && result.as_ref().is_err_and(refused)
            && store
                .as_ref()
                .is_some_and(|s| matches!(s.load(&nick), Ok(None)))
        {
            tell!(
                "natter: the server refused this device's key (the device was forgotten, the \
                 password changed, or the account is gone); its file is deleted"
            );
            kept = None;
            continue;
        }
        break result;
    };
    // Nothing left worth waiting for (a blocked stdin read cannot be cancelled).
    runtime.shutdown_background();
    match result {
        Err(e) if args.login => Err(with_register_hint(e, &nick, &servers[0])),
        r => r,
    }
}

/// The server's words for a sign-in with a wrong account name or password (the same for an
/// account that does not exist).
const WRONG_PASSWORD: &str = "wrong account name or password";

/// `natter --login` refused its password: the server does not say whether the account exists
/// (the same words for a wrong password), and a newcomer may have taken `--login` for the way
/// to make one; the refusal then says how to make it.
fn with_register_hint(e: anyhow::Error, nick: &Nick, server: &driver::ServerAddr) -> anyhow::Error {
    let fatal = match (e.downcast_ref(), e.downcast_ref()) {
        (Some(tui::TuiError::Driver(d)), _) | (_, Some(line::LineError::Driver(d))) => d,
        _ => return e,
    };
    match fatal {
        // The session's words for a refused password sign-in (a key's are `could not sign in
        // with this device's key`, and the key was the account's), with the server's words for
        // a wrong name or password: not a throttled or banned sign-in, which no new account
        // would get past.
        driver::DriverError::Fatal(why)
            if why.starts_with("could not sign in: ") && why.ends_with(WRONG_PASSWORD) =>
        {
            anyhow::anyhow!(
                "{why} (if there is no account {nick} yet, make it: natter --nick {nick} \
                 {server}, then type /register and a password)"
            )
        }
        _ => e,
    }
}

/// The session for the run: signing in to the account named by its nick if `login` (with the
/// kept key, and the password to fall back to if at hand; else the password), asking for a
/// device key when `remember`. Also whether it has a password to sign in with.
fn session(
    config: SessionConfig,
    login: bool,
    remember: bool,
    kept: Option<natter_core::DeviceKey>,
    password: Option<natter_core::Password>,
) -> (Session, bool) {
    let account = config.nick.clone();
    let mut session = Session::new(config, clock::now());
    if remember || kept.is_some() {
        session.set_device_label(Some(keys::device_label()));
    }
    session.set_remember(remember);
    let has_password = password.is_some();
    if login {
        // Sent right after the welcome, before the rooms are asked for.
        match (kept, password) {
            (Some(key), password) => {
                session.sign_in_with_key(account, key, password, remember, clock::now());
            }
            (None, Some(password)) => {
                session.sign_in(account, Proof::Password(password), remember, clock::now());
            }
            (None, None) => {}
        }
        // A refused password ends the client: a script must not talk under a guest's nick.
        session.require_sign_in();
        // Asked for on the command line, not in a dialog someone watches: a link dropped
        // before the answer signs in again once it is back (as IRC clients redo SASL).
        session.keep_sign_in();
    }
    (session, has_password)
}

/// `--login` to a server on another machine without TLS: the password crosses the network in
/// clear, so say so on stderr (natter's own words about the run) before anything is sent.
fn warn_of_clear_sign_in(servers: &[driver::ServerAddr], key: bool) {
    let what = if key {
        "this device's key crosses"
    } else {
        "your password crosses"
    };
    let local = |host: &str| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    for s in servers.iter().filter(|s| !s.tls && !local(&s.host)) {
        eprintln!(
            "natter: warning: {s} is reached without TLS: {what} the network in clear (use \
             natters://{}:PORT, --tls or --ca-file with the server's TLS port)",
            s.host
        );
    }
}

/// `--forget-device`: the server revokes the key kept for `nick`'s account (a sign-in with it
/// and a sign-out), and its file is deleted. The file goes even when the server could not be
/// told; then natter says so, with the device's id to forget from elsewhere, and exits 1.
fn forget_device(
    store: &keys::KeyStore,
    nick: Nick,
    servers: Vec<driver::ServerAddr>,
    tls: Option<std::sync::Arc<natter_tls::rustls::ClientConfig>>,
    wait: u64,
) -> anyhow::Result<()> {
    let path = store.path(&nick);
    let key = match store.load_to_revoke(&nick) {
        Ok(Some(key)) => key,
        Ok(None) => anyhow::bail!(
            "no device key is kept for {nick} at {} ({} does not exist)",
            store.server(),
            path.display()
        ),
        Err(e @ keys::KeyFileError::Bad { .. }) => {
            store.delete(&nick)?;
            tell!("natter: {e}: deleted it (it held no key to revoke)");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    warn_of_clear_sign_in(&servers, true);
    let id = natter_core::wire::RememberedDevice::id_words(
        natter_core::wire::RememberedDevice::id_of(key.id()),
    );
    let mut session = Session::new(
        SessionConfig {
            nick: nick.clone(),
            rooms: Vec::new(),
            transport: Transport::Stream,
            seed: random_seed(),
        },
        clock::now(),
    );
    session.sign_in_with_key(nick.clone(), key, None, false, clock::now());
    session.require_sign_in();
    let mut config = driver::DriverConfig::new(servers);
    config.settle_timeout = std::time::Duration::from_secs(wait);
    config.tls = tls;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(forget::run(session, config));
    runtime.shutdown_background();
    store.delete(&nick)?;
    let path = path.display();
    match outcome {
        forget::Outcome::Revoked => {
            tell!("natter: the server forgot this device (key {id}); {path} is deleted");
            Ok(())
        }
        forget::Outcome::AlreadyRefused => {
            tell!(
                "natter: the server no longer took this device's key {id} (forgotten already); \
                 {path} is deleted"
            );
            Ok(())
        }
        forget::Outcome::NotTold(why) => anyhow::bail!(
            "{path} is deleted, but the server was not told to forget the key ({why}): forget \
             it with /devices forget {id} from a signed-in client"
        ),
    }
}

/// A seed for reconnect jitter, from std's per-process random hasher keys.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

fn init_logging(log: Option<&std::path::Path>, line_mode: bool) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if let Some(path) = log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open log file {}", path.display()))?;
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    } else if line_mode && std::env::var_os("RUST_LOG").is_some() {
        // Never onto the TUI's screen: stderr logging is for line mode only.
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `natter --login` refused: the hint to make the account was added to every refusal of a
    /// password sign-in, a throttled one (`too many failed sign-ins from your address`) too,
    /// where making an account is no way past it. Only a wrong name or password gets it.
    #[test]
    fn only_a_wrong_name_or_password_says_how_to_make_the_account() {
        let nick = Nick::new("newcomer").unwrap();
        let server = driver::ServerAddr {
            host: "127.0.0.1".into(),
            port: 7000,
            tls: false,
        };
        let refused = |why: &str| {
            let e = anyhow::Error::from(line::LineError::Driver(driver::DriverError::Fatal(
                why.to_owned(),
            )));
            with_register_hint(e, &nick, &server).to_string()
        };
        assert_eq!(
            refused("could not sign in: wrong account name or password"),
            "could not sign in: wrong account name or password (if there is no account \
             newcomer yet, make it: natter --nick newcomer 127.0.0.1:7000, then type /register \
             and a password)"
        );
        for why in [
            "could not sign in: too many failed sign-ins from your address: try again in 30 s",
            "could not sign in: too many failed sign-ins to that account: try again in 30 s",
            "could not sign in with this device's key: wrong account name or password",
        ] {
            assert!(!refused(why).contains("make it"), "{why}");
        }
    }
}
