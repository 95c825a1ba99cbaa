//! A new configuration for a running hub (a server reloading its config file): checked with
//! [`Config::validate`], compared with the one in force, and applied to what happens next.
//! Nothing already under way is undone: open connections stay, a connection admitted under the
//! old limits keeps its place, and every limit is read afresh the next time it is checked (the
//! next accept, request, write or timer). The few values that cannot change safely while
//! connections hold state keyed by them are refused, and the running configuration is kept.

use super::Hub;
use super::config::{Config, ConfigError};
use core::fmt;
use thiserror::Error;

/// One value that changed, as the config file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key, one word that log queries can match: `[limits]` names bare (times as `*_ms`),
    /// other tables' with the table's name and a dot (`accounts.registration`,
    /// `irc.server_name`), and `bridge_secret` for the secret natter-bridge presents.
    pub key: &'static str,
    /// The value in force before.
    pub old: String,
    /// The value in force now.
    pub new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.old, self.new)
    }
}

/// Why [`Hub::reconfigure`] kept the running configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReconfigError {
    /// A value the hub cannot run with.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// A value that only a restart can change.
    #[error("{} cannot change while the server runs (state held for connected users depends on it); restart to change it", .0.key)]
    Fixed(Change),
}

/// Values that stay as they started: the per-address table keys its entries by the IPv6 wide
/// prefix, so a connection admitted under one prefix length would be released under another.
/// `always_on` decides whether users with no device stay in their rooms: changing it would leave
/// the users kept so far (or dropped) under the other rule.
const FIXED: [&str; 2] = ["ipv6_wide_prefix", "accounts.always_on"];

impl Hub {
    /// Takes `config` for everything from now on and returns what changed (empty: nothing).
    /// The secret seed and durability are the hub's own and stay as they are whatever `config`
    /// says. An invalid config, or one that changes a value only a restart may change, is
    /// refused and the running one kept.
    pub fn reconfigure(&mut self, mut config: Config) -> Result<Vec<Change>, ReconfigError> {
        config.validate()?;
        config.secret_seed = self.config.secret_seed;
        config.durable = self.config.durable;
        let changes = changes(&self.config, &config);
        if let Some(c) = changes.iter().find(|c| FIXED.contains(&c.key)) {
            return Err(ReconfigError::Fixed(c.clone()));
        }
        self.config = config;
        // An account no longer among the admins takes the powers `OPER`s with it gave.
        let admins: Vec<String> = self
            .config
            .accounts
            .admins
            .iter()
            .map(crate::types::Nick::folded)
            .collect();
        self.end_opers(|named| !admins.iter().any(|a| a == named));
        Ok(changes)
    }
}

/// Every value that differs between `old` and `new`, in the order of [`Config`]'s fields.
fn changes(old: &Config, new: &Config) -> Vec<Change> {
    fn cmp<T: PartialEq>(
        out: &mut Vec<Change>,
        key: &'static str,
        a: &T,
        b: &T,
        show: fn(&T) -> String,
    ) {
        if a != b {
            out.push(Change {
                key,
                old: show(a),
                new: show(b),
            });
        }
    }
    fn num<T: ToString>(v: &T) -> String {
        v.to_string()
    }
    fn ms(v: &crate::time::Millis) -> String {
        v.0.to_string()
    }
    // Destructured whole, so a new field cannot be forgotten here.
    let Config {
        secret_seed: _,
        durable: _,
        bridge_secret,
        trusted_proxies,
        motd,
        irc_server_name,
        exempt_loopback,
        max_connections,
        max_connections_per_ip,
        max_connects_per_window,
        ipv6_wide_prefix,
        max_detached_per_ip,
        max_room_creates_per_window,
        room_create_window,
        max_room_members,
        max_rooms,
        connect_window,
        flood_burst,
        flood_refill,
        flood_queue,
        nick_burst,
        nick_refill,
        ping_after,
        ping_timeout,
        hello_timeout,
        text_detect_wait,
        resume_grace,
        takeover_probe,
        outbound_max_msgs,
        outbound_max_bytes,
        outbound_total_max_bytes,
        history_len,
        history_budget_bytes,
        history_on_join,
        quiet_room_members,
        crowd_summary_every,
        paced_fanout,
        fanout_pace,
        accounts,
    } = old;
    // The same for the `[accounts]` table.
    let super::AccountsConfig {
        registration,
        always_on,
        hash_cost,
        admins,
        kept_bytes,
    } = accounts;
    let mut out = Vec::new();
    let o = &mut out;
    cmp(o, "bridge_secret", bridge_secret, &new.bridge_secret, |s| {
        if s.is_some() { "(set)" } else { "(none)" }.to_owned()
    });
    cmp(
        o,
        "trusted_proxies",
        trusted_proxies,
        &new.trusted_proxies,
        |v| format!("{v:?}"),
    );
    cmp(o, "motd", motd, &new.motd, |m| match m {
        Some(m) => match m.lines().count() {
            1 => "(1 line)".to_owned(),
            n => format!("({n} lines)"),
        },
        None => "(none)".to_owned(),
    });
    cmp(
        o,
        "irc.server_name",
        irc_server_name,
        &new.irc_server_name,
        |n| n.to_string(),
    );
    cmp(
        o,
        "exempt_loopback",
        exempt_loopback,
        &new.exempt_loopback,
        num,
    );
    cmp(
        o,
        "max_connections",
        max_connections,
        &new.max_connections,
        num,
    );
    cmp(
        o,
        "max_connections_per_ip",
        max_connections_per_ip,
        &new.max_connections_per_ip,
        num,
    );
    cmp(
        o,
        "max_connects_per_window",
        max_connects_per_window,
        &new.max_connects_per_window,
        num,
    );
    cmp(
        o,
        "ipv6_wide_prefix",
        ipv6_wide_prefix,
        &new.ipv6_wide_prefix,
        num,
    );
    cmp(
        o,
        "max_detached_per_ip",
        max_detached_per_ip,
        &new.max_detached_per_ip,
        num,
    );
    cmp(
        o,
        "max_room_creates_per_window",
        max_room_creates_per_window,
        &new.max_room_creates_per_window,
        num,
    );
    cmp(
        o,
        "room_create_window_ms",
        room_create_window,
        &new.room_create_window,
        ms,
    );
    cmp(
        o,
        "max_room_members",
        max_room_members,
        &new.max_room_members,
        num,
    );
    cmp(o, "max_rooms", max_rooms, &new.max_rooms, num);
    cmp(
        o,
        "connect_window_ms",
        connect_window,
        &new.connect_window,
        ms,
    );
    cmp(o, "flood_burst", flood_burst, &new.flood_burst, num);
    cmp(o, "flood_refill_ms", flood_refill, &new.flood_refill, ms);
    cmp(o, "flood_queue", flood_queue, &new.flood_queue, num);
    cmp(o, "nick_burst", nick_burst, &new.nick_burst, num);
    cmp(o, "nick_refill_ms", nick_refill, &new.nick_refill, ms);
    cmp(o, "ping_after_ms", ping_after, &new.ping_after, ms);
    cmp(o, "ping_timeout_ms", ping_timeout, &new.ping_timeout, ms);
    cmp(o, "hello_timeout_ms", hello_timeout, &new.hello_timeout, ms);
    cmp(
        o,
        "text_detect_wait_ms",
        text_detect_wait,
        &new.text_detect_wait,
        ms,
    );
    cmp(o, "resume_grace_ms", resume_grace, &new.resume_grace, ms);
    cmp(
        o,
        "takeover_probe_ms",
        takeover_probe,
        &new.takeover_probe,
        ms,
    );
    cmp(
        o,
        "outbound_max_msgs",
        outbound_max_msgs,
        &new.outbound_max_msgs,
        num,
    );
    cmp(
        o,
        "outbound_max_bytes",
        outbound_max_bytes,
        &new.outbound_max_bytes,
        num,
    );
    cmp(
        o,
        "outbound_total_max_bytes",
        outbound_total_max_bytes,
        &new.outbound_total_max_bytes,
        num,
    );
    cmp(o, "history_len", history_len, &new.history_len, num);
    cmp(
        o,
        "history_budget_bytes",
        history_budget_bytes,
        &new.history_budget_bytes,
        num,
    );
    cmp(
        o,
        "accounts.registration",
        registration,
        &new.accounts.registration,
        |v| format!("{v:?}").to_lowercase(),
    );
    cmp(o, "accounts.admins", admins, &new.accounts.admins, |v| {
        let names: Vec<&str> = v.iter().map(|n| n.as_str()).collect();
        format!("[{}]", names.join(", "))
    });
    cmp(
        o,
        "accounts.always_on",
        always_on,
        &new.accounts.always_on,
        num,
    );
    cmp(
        o,
        "accounts.hash_cost",
        hash_cost,
        &new.accounts.hash_cost,
        |v| format!("{} KiB, {} passes", v.memory_kib, v.iterations),
    );
    cmp(
        o,
        "accounts.kept_bytes",
        kept_bytes,
        &new.accounts.kept_bytes,
        num,
    );
    cmp(
        o,
        "history_on_join",
        history_on_join,
        &new.history_on_join,
        num,
    );
    cmp(
        o,
        "quiet_room_members",
        quiet_room_members,
        &new.quiet_room_members,
        num,
    );
    cmp(
        o,
        "crowd_summary_ms",
        crowd_summary_every,
        &new.crowd_summary_every,
        ms,
    );
    cmp(o, "paced_fanout", paced_fanout, &new.paced_fanout, num);
    cmp(o, "fanout_pace_ms", fanout_pace, &new.fanout_pace, ms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accounts_value_that_changes_is_named() {
        // README ("Reload"): each changed value is logged. `[accounts] kept_bytes` applied
        // silently: the log said `config reloaded changed=0` while the limit moved.
        let old = Config::default();
        let mut new = old.clone();
        new.accounts.kept_bytes = old.accounts.kept_bytes / 2;
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].key, "accounts.kept_bytes");
        assert_eq!(c[0].new, (old.accounts.kept_bytes / 2).to_string());
    }

    #[test]
    fn every_key_is_one_word_in_the_files_terms() {
        // The log's `key` field is what an operator's query matches: it was `bridge secret`
        // (a space) and `[irc] server_name` beside `accounts.registration`.
        let old = Config::default();
        let new = Config {
            bridge_secret: Some(crate::hub::BridgeSecret::new("0123456789abcdef").unwrap()),
            irc_server_name: crate::hub::ServerName::new("irc.example.org").unwrap(),
            ..old.clone()
        };
        let keys: Vec<&str> = changes(&old, &new).iter().map(|c| c.key).collect();
        assert_eq!(keys, ["bridge_secret", "irc.server_name"]);
    }
}
