//! Admission: the per-IP soft limits checked when a connection arrives (and again with the real
//! address when a trusted bridge forwards it). The table of addresses is bounded
//! ([`MAX_TRACKED_IPS`]) and pruned as windows age out.
//!
//! An IPv6 address counts by its /64: one customer line or one cloud VM usually gets a whole /64,
//! so counting its 2^64 addresses one by one would limit nothing (and let one attacker fill the
//! address table, refusing everyone else as "busy").

use super::Config;
use super::dialect::Limit;
use crate::limits::MAX_TRACKED_IPS;
use crate::time::Millis;
use core::net::IpAddr;
use std::collections::HashMap;

/// Why a connection was refused: the limit, and words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) limit: Limit,
    pub(crate) detail: String,
}

#[derive(Debug, Clone)]
struct IpStat {
    open: usize,
    window_start: Millis,
    connects: u32,
}

/// Open connections and recent connects per address.
#[derive(Debug, Default)]
pub(crate) struct IpTable {
    map: HashMap<IpAddr, IpStat>,
}

impl IpTable {
    /// Whether `ip` is exempt from per-IP limits (and so not tracked at all).
    pub(crate) fn exempt(cfg: &Config, ip: IpAddr) -> bool {
        cfg.exempt_loopback && ip.is_loopback()
    }

    /// Records a connect from `ip` and decides. `Ok` means the caller now holds one "open" count
    /// for `ip` and must [`IpTable::release`] it.
    pub(crate) fn admit(&mut self, cfg: &Config, ip: IpAddr, now: Millis) -> Result<(), Refusal> {
        let ip = address_key(ip);
        if !self.map.contains_key(&ip) && self.map.len() >= MAX_TRACKED_IPS {
            self.prune(cfg, now);
            if self.map.len() >= MAX_TRACKED_IPS {
                return Err(Refusal {
                    limit: Limit::IpTable,
                    detail: "the server is busy, try again in a minute".into(),
                });
            }
        }
        let st = self.map.entry(ip).or_insert(IpStat {
            open: 0,
            window_start: now,
            connects: 0,
        });
        if now.since(st.window_start) >= cfg.connect_window {
            st.window_start = now;
            st.connects = 0;
        }
        st.connects = st.connects.saturating_add(1);
        if st.connects > cfg.max_connects_per_window {
            return Err(Refusal {
                limit: Limit::ConnectRate,
                detail: format!(
                    "too many connections from your address: at most {} per {} seconds",
                    cfg.max_connects_per_window,
                    cfg.connect_window.0 / 1000
                ),
            });
        }
        if st.open >= cfg.max_connections_per_ip {
            return Err(Refusal {
                limit: Limit::PerIp,
                detail: format!(
                    "your address already has {} connections open, the most allowed",
                    st.open
                ),
            });
        }
        st.open += 1;
        Ok(())
    }

    /// A connection admitted for `ip` is gone.
    pub(crate) fn release(&mut self, ip: IpAddr) {
        let ip = address_key(ip);
        if let Some(st) = self.map.get_mut(&ip) {
            st.open = st.open.saturating_sub(1);
        }
    }

    /// Forgets addresses with nothing open whose window has passed.
    pub(crate) fn prune(&mut self, cfg: &Config, now: Millis) {
        self.map
            .retain(|_, st| st.open > 0 || now.since(st.window_start) < cfg.connect_window);
    }

    /// Addresses tracked.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The key an address is counted under for per-address limits: an IPv4 address itself (also
/// when mapped into IPv6), an IPv6 address its /64. The bridge counts browsers the same way.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let cfg = Config {
            max_connections_per_ip: 2,
            ..Config::default()
        };
        let mut t = IpTable::default();
        let now = Millis(0);
        assert!(t.admit(&cfg, ip("2001:db8::1"), now).is_ok());
        assert!(t.admit(&cfg, ip("2001:db8::ffff:2"), now).is_ok());
        let third = t.admit(&cfg, ip("2001:db8:0:0:1234::3"), now);
        assert_eq!(third.map_err(|r| r.limit), Err(Limit::PerIp), "same /64");
        assert!(
            t.admit(&cfg, ip("2001:db8:0:1::1"), now).is_ok(),
            "next /64"
        );
        assert_eq!(t.len(), 2);
        // Released under the same key, from any address of the /64.
        t.release(ip("2001:db8::77"));
        assert!(t.admit(&cfg, ip("2001:db8::99"), now).is_ok());
        // IPv4 (also mapped into IPv6) counts per address.
        assert!(t.admit(&cfg, ip("192.0.2.1"), now).is_ok());
        assert!(t.admit(&cfg, ip("::ffff:192.0.2.1"), now).is_ok());
        assert!(t.admit(&cfg, ip("192.0.2.1"), now).is_err());
        assert!(t.admit(&cfg, ip("192.0.2.2"), now).is_ok());
    }
}
