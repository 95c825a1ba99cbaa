//! The hub's tunables. Every default comes from [`crate::limits`], where each number has its
//! reason; a server reads overrides from its TOML `[limits]` table straight into [`Config`]
//! (times as `*_ms`), and [`Config::validate`] refuses values that would break the hub.

use crate::time::Millis;
use core::net::IpAddr;
use serde::Deserialize;
use thiserror::Error;

/// Tunables. [`Config::default`] takes every value from [`crate::limits`]. Deserializes from a
/// table whose keys are the field names (times with an `_ms` suffix); missing keys keep their
/// defaults, unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seed for resume tokens and guest nicks. Must come from the OS's random source in a real
    /// server: resume tokens are credentials. Never read from a file.
    #[serde(skip)]
    pub secret_seed: [u8; 32],
    /// Work with a durable store: writes are handed out with [`super::Hub::poll_store`] and
    /// output that follows them waits until they are durable. Set by the server when it has a
    /// store, not from `[limits]`.
    #[serde(skip)]
    pub durable: bool,
    /// The `[accounts]` settings (a table of their own in a server's config file).
    #[serde(skip)]
    pub accounts: super::AccountsConfig,
    /// The secret a bridge must present in its [`crate::wire::ClientMsg::Forwarded`] to name a
    /// browser's address (`None`: no bridge may). Set by the server from its environment or a
    /// file, never from `[limits]`.
    #[serde(skip)]
    pub bridge_secret: Option<BridgeSecret>,
    /// Proxies in front of the server: connections from them may start with a PROXY protocol
    /// header naming the client, and are counted by the address they (or a bridge's
    /// `Forwarded`) name, not their own. Set by the server from its own flags.
    #[serde(skip)]
    pub trusted_proxies: Vec<IpAddr>,
    /// The message of the day (`None`: the IRC listener's own words, nothing on nc). Set by the
    /// server from its config file's top-level `motd`, never from `[limits]`.
    #[serde(skip)]
    pub motd: Option<Motd>,
    /// The IRC listener's server name (`[irc] server_name`): the source of its numerics, in
    /// `PING`/`PONG`, `004`, `312` and `391`. New IRC connections take it after a reload.
    #[serde(skip)]
    pub irc_server_name: ServerName,
    /// Loopback addresses are exempt from the per-IP limits.
    pub exempt_loopback: bool,
    /// See [`crate::limits::MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`crate::limits::MAX_CONNECTIONS_PER_IP`].
    pub max_connections_per_ip: usize,
    /// See [`crate::limits::MAX_CONNECTS_PER_WINDOW`].
    pub max_connects_per_window: u32,
    /// See [`crate::limits::IPV6_WIDE_PREFIX`]; 0 turns the wide tier off.
    pub ipv6_wide_prefix: u8,
    /// See [`crate::limits::MAX_DETACHED_PER_IP`].
    pub max_detached_per_ip: usize,
    /// See [`crate::limits::MAX_ROOM_CREATES_PER_WINDOW`].
    pub max_room_creates_per_window: u32,
    /// See [`crate::limits::ROOM_CREATE_WINDOW`].
    #[serde(rename = "room_create_window_ms")]
    pub room_create_window: Millis,
    /// See [`crate::limits::MAX_ROOM_MEMBERS`].
    pub max_room_members: usize,
    /// See [`crate::limits::MAX_ROOMS`].
    pub max_rooms: usize,
    /// See [`crate::limits::CONNECT_WINDOW`].
    #[serde(rename = "connect_window_ms")]
    pub connect_window: Millis,
    /// See [`crate::limits::FLOOD_BURST`].
    pub flood_burst: u32,
    /// See [`crate::limits::FLOOD_REFILL`]. Zero turns flood control off (benchmarks).
    #[serde(rename = "flood_refill_ms")]
    pub flood_refill: Millis,
    /// See [`crate::limits::FLOOD_QUEUE`].
    pub flood_queue: usize,
    /// See [`crate::limits::NICK_BURST`].
    pub nick_burst: u32,
    /// See [`crate::limits::NICK_REFILL`]. Zero turns the nick-change limit off.
    #[serde(rename = "nick_refill_ms")]
    pub nick_refill: Millis,
    /// See [`crate::limits::PING_AFTER`].
    #[serde(rename = "ping_after_ms")]
    pub ping_after: Millis,
    /// See [`crate::limits::PING_TIMEOUT`].
    #[serde(rename = "ping_timeout_ms")]
    pub ping_timeout: Millis,
    /// See [`crate::limits::HELLO_TIMEOUT`].
    #[serde(rename = "hello_timeout_ms")]
    pub hello_timeout: Millis,
    /// See [`crate::limits::TEXT_DETECT_WAIT`].
    #[serde(rename = "text_detect_wait_ms")]
    pub text_detect_wait: Millis,
    /// See [`crate::limits::RESUME_GRACE`].
    #[serde(rename = "resume_grace_ms")]
    pub resume_grace: Millis,
    /// See [`crate::limits::TAKEOVER_PROBE`].
    #[serde(rename = "takeover_probe_ms")]
    pub takeover_probe: Millis,
    /// See [`crate::limits::OUTBOUND_MAX_MSGS`].
    pub outbound_max_msgs: usize,
    /// See [`crate::limits::OUTBOUND_MAX_BYTES`].
    pub outbound_max_bytes: usize,
    /// See [`crate::limits::OUTBOUND_TOTAL_MAX_BYTES`]. Its pressure floor is
    /// `outbound_max_bytes / 16` ([`crate::limits::OUTBOUND_PRESSURE_FLOOR`] by default).
    pub outbound_total_max_bytes: usize,
    /// See [`crate::limits::HISTORY_LEN`].
    pub history_len: usize,
    /// See [`crate::limits::HISTORY_BUDGET_BYTES`].
    pub history_budget_bytes: usize,
    /// See [`crate::limits::HISTORY_ON_JOIN`].
    pub history_on_join: usize,
    /// See [`crate::limits::QUIET_ROOM_MEMBERS`].
    pub quiet_room_members: usize,
    /// See [`crate::limits::CROWD_SUMMARY_EVERY`].
    #[serde(rename = "crowd_summary_ms")]
    pub crowd_summary_every: Millis,
    /// See [`crate::limits::PACED_FANOUT`].
    pub paced_fanout: usize,
    /// See [`crate::limits::FANOUT_PACE`]; 0 turns pacing off.
    #[serde(rename = "fanout_pace_ms")]
    pub fanout_pace: Millis,
}

impl Default for Config {
    fn default() -> Config {
        use crate::limits::*;
        Config {
            secret_seed: [0; 32],
            durable: false,
            accounts: super::AccountsConfig::default(),
            bridge_secret: None,
            trusted_proxies: Vec::new(),
            motd: None,
            irc_server_name: ServerName::default(),
            exempt_loopback: true,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            max_connects_per_window: MAX_CONNECTS_PER_WINDOW,
            ipv6_wide_prefix: IPV6_WIDE_PREFIX,
            max_detached_per_ip: MAX_DETACHED_PER_IP,
            max_room_creates_per_window: MAX_ROOM_CREATES_PER_WINDOW,
            room_create_window: ROOM_CREATE_WINDOW,
            max_room_members: MAX_ROOM_MEMBERS,
            max_rooms: MAX_ROOMS,
            connect_window: CONNECT_WINDOW,
            flood_burst: FLOOD_BURST,
            flood_refill: FLOOD_REFILL,
            flood_queue: FLOOD_QUEUE,
            nick_burst: NICK_BURST,
            nick_refill: NICK_REFILL,
            ping_after: PING_AFTER,
            ping_timeout: PING_TIMEOUT,
            hello_timeout: HELLO_TIMEOUT,
            text_detect_wait: TEXT_DETECT_WAIT,
            resume_grace: RESUME_GRACE,
            takeover_probe: TAKEOVER_PROBE,
            outbound_max_msgs: OUTBOUND_MAX_MSGS,
            outbound_max_bytes: OUTBOUND_MAX_BYTES,
            outbound_total_max_bytes: OUTBOUND_TOTAL_MAX_BYTES,
            history_len: HISTORY_LEN,
            history_budget_bytes: HISTORY_BUDGET_BYTES,
            history_on_join: HISTORY_ON_JOIN,
            quiet_room_members: QUIET_ROOM_MEMBERS,
            crowd_summary_every: CROWD_SUMMARY_EVERY,
            paced_fanout: PACED_FANOUT,
            fanout_pace: FANOUT_PACE,
        }
    }
}

/// The bridge secret, as the hub keeps it: a hash, compared in constant time. Its `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BridgeSecret([u8; 32]);

/// The secret both `local_test` configurations (natter-server's and natter-bridge's) use, so
/// tests that start both in one process agree. Never use it in a real deployment.
pub const TEST_BRIDGE_SECRET: &str = "natter local test bridge secret";

impl BridgeSecret {
    /// The secret `s` (16 to [`crate::wire::MAX_BRIDGE_SECRET`] characters).
    pub fn new(s: &str) -> Result<BridgeSecret, ConfigError> {
        let n = s.chars().count();
        if !(16..=crate::wire::MAX_BRIDGE_SECRET).contains(&n) {
            return Err(ConfigError {
                table: None,
                key: "bridge secret",
                value: format!("({})", crate::render::count(n as u64, "character")),
                why: "must be 16 to 256 characters",
            });
        }
        Ok(BridgeSecret(Self::hash(s)))
    }

    fn hash(s: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(s.as_bytes()).into()
    }

    /// Whether `presented` is the secret.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&Self::hash(presented)))
    }
}

impl core::fmt::Debug for BridgeSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BridgeSecret(…)")
    }
}

/// Lines a message of the day holds at most.
pub const MAX_MOTD_LINES: usize = 20;

/// The message of the day an operator sets: IRC clients get it as `MOTD` (at registration and
/// when asked), nc users under their welcome. Lines of clean [`crate::Text`]; an empty line
/// stays empty, control characters are cleaned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Motd(std::sync::Arc<[Box<str>]>);

impl Motd {
    /// The message `s`, one line per line of it (trailing empty lines dropped): at most
    /// [`MAX_MOTD_LINES`] lines of at most [`crate::limits::MAX_TEXT_BYTES`] bytes each.
    pub fn new(s: &str) -> Result<Motd, ConfigError> {
        let refuse = |why| ConfigError {
            table: None,
            key: "motd",
            value: format!("({} lines)", s.lines().count()),
            why,
        };
        let lines: Vec<&str> = s.trim_end().lines().collect();
        if lines.is_empty() {
            return Err(refuse("is empty: leave it out for none"));
        }
        if lines.len() > MAX_MOTD_LINES {
            return Err(refuse("has more than 20 lines"));
        }
        let lines = lines
            .iter()
            .map(|l| match crate::Text::new(l) {
                Ok(t) => Ok(Box::from(t.as_str())),
                Err(crate::types::InvalidName::EmptyText) => Ok(Box::from("")),
                Err(_) => Err(refuse("has a line longer than a chat line may be")),
            })
            .collect::<Result<Vec<Box<str>>, _>>()?;
        Ok(Motd(lines.into()))
    }

    /// Its lines.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(AsRef::as_ref)
    }

    /// Its lines as the binary protocol's [`crate::wire::ServerMsg::Motd`] carries them
    /// (`None` for an empty line).
    pub fn to_wire(&self) -> Vec<Option<crate::Text>> {
        self.lines().map(|l| crate::Text::new(l).ok()).collect()
    }
}

/// The name an IRC server gives itself when none is configured.
pub const DEFAULT_SERVER_NAME: &str = "natter.irc";

/// The longest server name: IRC servers' `HOSTLEN` (63, a DNS label's length, is what most
/// IRC daemons allow a server's name), so that every numeric's prefix stays short.
pub const MAX_SERVER_NAME_LEN: usize = 63;

/// The IRC listener's server name: a hostname (dot-separated labels of ASCII letters, digits
/// and `-`, none starting or ending with `-`), at most [`MAX_SERVER_NAME_LEN`] bytes. It need
/// not resolve; IRC clients show it and send it back in `PING`s. Cheap to clone (each IRC
/// connection holds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName(std::sync::Arc<str>);

impl ServerName {
    /// The name `s`, if it is a hostname.
    pub fn new(s: &str) -> Result<ServerName, ConfigError> {
        let refuse = |why| ConfigError {
            table: Some("irc"),
            key: "server_name",
            value: format!("{:?}", s.chars().take(80).collect::<String>()),
            why,
        };
        if s.is_empty() || s.len() > MAX_SERVER_NAME_LEN {
            return Err(refuse("must be 1 to 63 bytes"));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !s.split('.').all(label_ok) {
            return Err(refuse(
                "must be a hostname: labels of letters, digits and - separated by dots",
            ));
        }
        Ok(ServerName(s.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ServerName {
    fn default() -> ServerName {
        ServerName(DEFAULT_SERVER_NAME.into())
    }
}

impl core::fmt::Display for ServerName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A config value the hub cannot run with. The text names the key as it is written in the
/// config file, under its table (`[limits] flood_burst = 0: ...`, or `motd = (21 lines): ...` for
/// a top-level key).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{key} = {value}: {why}", table.map(|t| format!("[{t}] ")).unwrap_or_default())]
pub struct ConfigError {
    /// The table the key is written in (`limits`), `None` for a top-level key or a setting
    /// that is not in the file (a secret read from its own file).
    pub table: Option<&'static str>,
    /// The key, as written in the config file.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// Why it is refused.
    pub why: &'static str,
}

/// The shortest keepalive and handshake times the hub accepts: below this, timers would fire
/// faster than any peer can answer, and a zero would make them spin.
const MIN_TIMER: Millis = Millis(10);

/// The longest fan-out pace the hub accepts: every member of a busy big room may wait this long.
const MAX_FANOUT_PACE: Millis = Millis(1_000);

impl Config {
    /// Checks every value: a timer of zero (it would spin), a limit of zero where nothing could
    /// get through, a wait that outlasts the one it belongs to. The first problem is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn err(key: &'static str, value: impl ToString, why: &'static str) -> ConfigError {
            ConfigError {
                table: Some("limits"),
                key,
                value: value.to_string(),
                why,
            }
        }
        let timers = [
            ("connect_window_ms", self.connect_window),
            ("room_create_window_ms", self.room_create_window),
            ("ping_after_ms", self.ping_after),
            ("ping_timeout_ms", self.ping_timeout),
            ("hello_timeout_ms", self.hello_timeout),
            ("text_detect_wait_ms", self.text_detect_wait),
            ("takeover_probe_ms", self.takeover_probe),
            ("crowd_summary_ms", self.crowd_summary_every),
        ];
        for (key, t) in timers {
            if t < MIN_TIMER {
                return Err(err(key, t.0, "must be at least 10 ms"));
            }
        }
        let counts = [
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("outbound_max_msgs", self.outbound_max_msgs),
            ("outbound_max_bytes", self.outbound_max_bytes),
            ("outbound_total_max_bytes", self.outbound_total_max_bytes),
            ("max_room_members", self.max_room_members),
            ("max_rooms", self.max_rooms),
            ("paced_fanout", self.paced_fanout),
        ];
        for (key, n) in counts {
            if n == 0 {
                return Err(err(key, n, "must be at least 1"));
            }
        }
        if self.max_connects_per_window == 0 {
            return Err(err("max_connects_per_window", 0, "must be at least 1"));
        }
        if self.max_room_creates_per_window == 0 {
            return Err(err("max_room_creates_per_window", 0, "must be at least 1"));
        }
        if !(self.ipv6_wide_prefix == 0 || (16..64).contains(&self.ipv6_wide_prefix)) {
            return Err(err(
                "ipv6_wide_prefix",
                self.ipv6_wide_prefix,
                "must be 0 (off) or a prefix length from 16 to 63",
            ));
        }
        if self.fanout_pace > MAX_FANOUT_PACE {
            return Err(err(
                "fanout_pace_ms",
                self.fanout_pace.0,
                "must be at most 1000 ms (0 turns pacing off)",
            ));
        }
        if self.flood_burst == 0 {
            return Err(err("flood_burst", 0, "must be at least 1"));
        }
        if self.nick_burst == 0 {
            return Err(err("nick_burst", 0, "must be at least 1"));
        }
        if self.text_detect_wait > self.hello_timeout {
            return Err(err(
                "text_detect_wait_ms",
                self.text_detect_wait.0,
                "must not be longer than hello_timeout_ms",
            ));
        }
        if self.history_on_join > self.history_len {
            return Err(err(
                "history_on_join",
                self.history_on_join,
                "must not be more than history_len",
            ));
        }
        let cost = self.accounts.hash_cost;
        if !cost.is_usable() {
            // Else every registration and password change would fail, each saying only
            // "try again".
            return Err(ConfigError {
                table: Some("accounts"),
                key: "hash_cost",
                value: format!(
                    "{{ memory_kib = {}, iterations = {} }}",
                    cost.memory_kib, cost.iterations
                ),
                why: "argon2 needs memory_kib of at least 8 and iterations of at least 1",
            });
        }
        Ok(())
    }

    /// The limits a client must respect, as [`crate::wire::ServerMsg::Welcome`] announces them.
    pub fn announced_limits(&self) -> crate::wire::Limits {
        crate::wire::Limits {
            flood_burst: self.flood_burst,
            flood_refill: self.flood_refill,
            max_text_bytes: u32::try_from(crate::limits::MAX_TEXT_BYTES).unwrap_or(u32::MAX),
            max_rooms_per_user: u32::try_from(crate::limits::MAX_ROOMS_PER_USER)
                .unwrap_or(u32::MAX),
        }
    }

    /// The outbound queue limits in force.
    pub(crate) fn queue_limits(&self) -> super::conn::QueueLimits {
        use crate::limits::{OUTBOUND_HARD_MAX_BYTES, OUTBOUND_MAX_BYTES};
        super::conn::QueueLimits {
            max_msgs: self.outbound_max_msgs,
            max_bytes: self.outbound_max_bytes,
            hard_bytes: self
                .outbound_max_bytes
                .saturating_add(OUTBOUND_HARD_MAX_BYTES - OUTBOUND_MAX_BYTES),
            total_bytes: self.outbound_total_max_bytes,
            pressure_floor: self.outbound_max_bytes / 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_hash_cost_argon2_refuses_is_refused_by_name() {
        for (memory_kib, iterations) in [(1, 2), (19_456, 0)] {
            let mut c = Config::default();
            c.accounts.hash_cost = crate::accounts::HashCost {
                memory_kib,
                iterations,
            };
            let e = c.validate().unwrap_err();
            assert_eq!((e.table, e.key), (Some("accounts"), "hash_cost"));
            assert!(
                e.to_string().starts_with(&format!(
                    "[accounts] hash_cost = {{ memory_kib = {memory_kib}, iterations = {iterations} }}: "
                )),
                "{e}"
            );
        }
        let mut c = Config::default();
        c.accounts.hash_cost = crate::accounts::HashCost::TEST;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn spinning_timers_and_zero_limits_are_refused_by_name() {
        let c = Config {
            connect_window: Millis(0),
            ..Config::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "connect_window_ms");
        assert!(
            e.to_string()
                .starts_with("[limits] connect_window_ms = 0: "),
            "{e}"
        );
        let c = Config {
            flood_burst: 0,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "flood_burst");
        let c = Config {
            nick_burst: 0,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "nick_burst");
        let c = Config {
            text_detect_wait: Millis(20_000),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "text_detect_wait_ms");
        let c = Config {
            flood_refill: Millis(0),
            ..Config::default()
        };
        assert_eq!(
            c.validate(),
            Ok(()),
            "a zero refill turns flood control off"
        );
    }
}
