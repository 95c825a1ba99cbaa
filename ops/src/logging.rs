//! Log output for natter's binaries: human-readable lines (the default) or one JSON object per
//! line for log shippers (`--log-format json`). `RUST_LOG` filters both, except that what
//! prints the bytes on the wire (tungstenite's and async_nats' TRACE events, async_nats'
//! JetStream answers at DEBUG) is never logged: no secret a client sends (a password, a device
//! key, a resume token), nor a cluster's password hashes, nor its rooms' lines, may reach a log
//! at any level.

use crate::OpsError;
use tracing_subscriber::EnvFilter;

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event: `timestamp`, `level`, `target`, `message` and the event's
    /// fields at the top level, and the innermost span's fields under `span` (e.g. a connection's
    /// `id`).
    Json,
}

/// Installs the global subscriber: `RUST_LOG` if set, else `default_filter` (e.g. `"info"`).
/// A `RUST_LOG` that does not parse is said in a `WARN` line once the log is set up, and
/// `default_filter` used instead: a typo (`natter_server=debgu`) was dropped without a word,
/// and the operator waited for lines that would never come.
pub fn init(format: LogFormat, default_filter: &str) -> Result<(), OpsError> {
    let asked = std::env::var_os(EnvFilter::DEFAULT_ENV).filter(|v| !v.is_empty());
    let (filter, refused) = match asked.as_ref().map(|v| (v, v.to_str())) {
        None => (EnvFilter::new(default_filter), None),
        Some((_, Some(text))) => match EnvFilter::try_new(text) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(default_filter),
                Some((text.to_owned(), e.to_string())),
            ),
        },
        Some((raw, None)) => (
            EnvFilter::new(default_filter),
            Some((raw.to_string_lossy().into_owned(), "not UTF-8".to_owned())),
        ),
    };
    let filter = capped(filter);
    // A log nobody reads any more (its pipe closed) must not stop the process: by default a
    // failed log write is reported with `eprintln!`, which panics on that same pipe.
    // Logs go to stderr: a binary's stdout is for what it tells its user (where it listens).
    // Colours only on a terminal: a log read by a program (a test, a shipper) gets plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|e| OpsError::Logging(e.to_string()))?;
    if let Some((rust_log, error)) = refused {
        tracing::warn!(
            %rust_log,
            %error,
            default = default_filter,
            "RUST_LOG is not a log filter this understands; logging with the default filter instead"
        );
    }
    Ok(())
}

/// As [`init`], unless a global subscriber is installed already: how a binary that stops makes
/// sure the line saying why reaches the log, whether or not it got as far as setting it up
/// (a bad flag, an unreadable config file). `Err` only when none could be installed.
pub fn ensure(format: LogFormat, default_filter: &str) -> Result<(), OpsError> {
    if tracing::dispatcher::has_been_set() {
        return Ok(());
    }
    init(format, default_filter)
}

/// The log format a command line asks for, read before it is parsed (for the line that says
/// why it could not be): `--log-format json` or `--log-format=json` in `argv` (before any
/// `--`), else `json` in the variable `env`, else text.
pub fn format_asked(argv: &[std::ffi::OsString], env: Option<&str>) -> LogFormat {
    let json = |v: &str| v.trim().eq_ignore_ascii_case("json");
    let mut args = argv
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .take_while(|a| *a != "--");
    while let Some(a) = args.next() {
        if a == "--log-format" {
            return if args.next().is_some_and(json) {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
        }
        if let Some(v) = a.strip_prefix("--log-format=") {
            return if json(v) {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
        }
    }
    match env.and_then(std::env::var_os) {
        Some(v) if v.to_str().is_some_and(json) => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// Where TRACE events print what crosses the wire: tungstenite logs every WebSocket frame and
/// message it reads or writes (`received frame ... payload: 0x...`, `Received message ...`), so
/// a browser's password, device key or resume token would reach the log; the NATS client
/// (async_nats, a cluster node's) logs every message it reads from NATS whole (`read operation
/// completed op=Message { .. payload: b"..." }`): the accounts' argon2id hashes, direct
/// messages, every chat line. The crates, and their modules that log at TRACE (a directive
/// naming a module outranks one naming its crate).
const PAYLOAD_TARGETS: &[&str] = &[
    "tungstenite",
    "tungstenite::protocol",
    "tungstenite::protocol::frame",
    "tungstenite::protocol::frame::frame",
    "tokio_tungstenite",
    "tokio_tungstenite::compat",
    "async_nats",
    "async_nats::client",
    "async_nats::connection",
    "async_nats::jetstream::consumer::pull",
    "async_nats::jetstream::consumer::push",
    "async_nats::jetstream::object_store",
    "async_nats::service::endpoint",
];

/// Where DEBUG events print what NATS holds: async_nats logs each JetStream API request and its
/// answer whole at DEBUG (`JetStream request response: Ok("{...\"data\":\"...\"...}")`), and a
/// cluster node reads room logs' batches so (`Stream::get_raw_message`: each line its search
/// finds, each room it starts following), base64 with the room's subject. The module has no
/// line above DEBUG, so holding it at INFO hides nothing else.
const DEBUG_PAYLOAD_TARGETS: &[&str] = &["async_nats::jetstream::context"];

/// `filter`, with tungstenite, tokio_tungstenite and async_nats (and their modules) held at
/// DEBUG when it would let their TRACE events through (`RUST_LOG=trace`, or naming them), and
/// async_nats' JetStream answers held at INFO when it would let DEBUG events through: no secret
/// a client sends, nor a hash of one, nor what is said in the rooms, may reach a log at any
/// level. A filter at INFO or below is left as it is.
pub fn capped(filter: EnvFilter) -> EnvFilter {
    use tracing::level_filters::LevelFilter;
    let hint = filter.max_level_hint();
    if hint.is_some_and(|h| h < LevelFilter::DEBUG) {
        return filter;
    }
    let filter =
        DEBUG_PAYLOAD_TARGETS
            .iter()
            .fold(filter, |f, t| match format!("{t}=info").parse() {
                Ok(d) => f.add_directive(d),
                Err(_) => f,
            });
    if hint.is_some_and(|h| h < LevelFilter::TRACE) {
        return filter;
    }
    PAYLOAD_TARGETS
        .iter()
        .fold(filter, |f, t| match format!("{t}=debug").parse() {
            Ok(d) => f.add_directive(d),
            Err(_) => f,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing::subscriber::with_default;

    /// Whether an event of `target` at `level` gets through `filter`.
    fn passes(filter: &str, target: &'static str, level: Level) -> bool {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use tracing_subscriber::layer::SubscriberExt;
        struct Seen(Arc<AtomicBool>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let seen = Arc::new(AtomicBool::new(false));
        let subscriber = tracing_subscriber::registry()
            .with(capped(EnvFilter::new(filter)))
            .with(Seen(seen.clone()));
        with_default(subscriber, || match (target, level) {
            ("tungstenite::protocol", Level::TRACE) => {
                tracing::trace!(target: "tungstenite::protocol", "Received message secret")
            }
            ("tungstenite::protocol", Level::DEBUG) => {
                tracing::debug!(target: "tungstenite::protocol", "close frame")
            }
            ("tokio_tungstenite", Level::TRACE) => {
                tracing::trace!(target: "tokio_tungstenite", "read")
            }
            ("async_nats::connection", Level::TRACE) => {
                tracing::trace!(target: "async_nats::connection", "op=Message {{ payload: .. }}")
            }
            ("async_nats", Level::DEBUG) => tracing::debug!(target: "async_nats", "received PING"),
            ("async_nats::jetstream::context", Level::DEBUG) => tracing::debug!(
                target: "async_nats::jetstream::context",
                "JetStream request response: Ok(message data)"
            ),
            ("mio::poll", Level::TRACE) => tracing::trace!(target: "mio::poll", "poll"),
            ("natter_bridge", Level::INFO) => tracing::info!(target: "natter_bridge", "hi"),
            other => panic!("{other:?}"),
        });
        seen.load(Ordering::Relaxed)
    }

    #[test]
    fn the_format_asked_for_is_read_from_the_command_line_before_it_parses() {
        let argv = |a: &[&str]| -> Vec<std::ffi::OsString> { a.iter().map(Into::into).collect() };
        let json = [
            &["b", "--log-format", "json", "--bad"][..],
            &["b", "--max", "x", "--log-format=JSON"],
        ];
        for a in json {
            assert_eq!(format_asked(&argv(a), None), LogFormat::Json, "{a:?}");
        }
        for a in [
            &["b"][..],
            &["b", "--log-format", "text"],
            &["b", "--", "--log-format=json"],
            &["b", "--log-format"],
        ] {
            assert_eq!(format_asked(&argv(a), None), LogFormat::Text, "{a:?}");
        }
    }

    #[test]
    fn no_filter_lets_websocket_payloads_through() {
        for filter in [
            "trace",
            "info,tungstenite=trace",
            "tungstenite::protocol=trace",
        ] {
            assert!(
                !passes(filter, "tungstenite::protocol", Level::TRACE),
                "{filter}"
            );
            assert!(
                !passes(filter, "tokio_tungstenite", Level::TRACE),
                "{filter}"
            );
        }
        // The rest of TRACE stays, and tungstenite's DEBUG (no payloads) too.
        assert!(passes("trace", "mio::poll", Level::TRACE));
        assert!(passes("trace", "tungstenite::protocol", Level::DEBUG));
        // A quieter filter is left as it is: no tungstenite DEBUG lines added to `info`.
        assert!(!passes("info", "tungstenite::protocol", Level::DEBUG));
        assert!(passes("info", "natter_bridge", Level::INFO));
    }

    #[test]
    fn no_filter_lets_nats_payloads_through() {
        // The NATS client's TRACE lines print every message read from NATS whole: a cluster's
        // account records (argon2id hashes), direct messages, chat lines.
        for filter in [
            "trace",
            "info,async_nats=trace",
            "async_nats::connection=trace",
        ] {
            assert!(
                !passes(filter, "async_nats::connection", Level::TRACE),
                "{filter}"
            );
        }
        // Its DEBUG lines (no payloads) stay.
        assert!(passes("trace", "async_nats", Level::DEBUG));
        assert!(passes("async_nats=debug", "async_nats", Level::DEBUG));
    }

    #[test]
    fn no_filter_lets_jetstream_answers_through() {
        // async_nats logs each JetStream API answer whole at DEBUG: a stored message read back
        // (a cluster node reads room logs' batches so: every line its search index reads) is
        // there, base64, with its room's subject.
        for filter in [
            "debug",
            "trace",
            "info,async_nats=debug",
            "async_nats::jetstream=trace",
            "async_nats::jetstream::context=debug",
        ] {
            assert!(
                !passes(filter, "async_nats::jetstream::context", Level::DEBUG),
                "{filter}"
            );
        }
        // The NATS client's other DEBUG lines stay.
        assert!(passes("debug", "async_nats", Level::DEBUG));
    }
}
