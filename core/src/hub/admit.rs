//! Admission: the per-address soft limits checked when a connection arrives (and again with the
//! real address when a trusted bridge forwards it), and the per-address counts of what outlives a
//! connection (users waiting for a resume, rooms created). The table of addresses is bounded
//! ([`MAX_TRACKED_IPS`]) and pruned a little at a time as windows age out, so a full table never
//! costs a scan of all of it.
//!
//! An IPv6 address counts by its /64: one customer line or one cloud VM usually gets a whole /64,
//! so counting its 2^64 addresses one by one would limit nothing (and let one attacker fill the
//! address table, refusing everyone else as "busy"). On top of that, a wider IPv6 prefix
//! ([`Config::ipv6_wide_prefix`], /48 by default) has [`WIDE_FACTOR`] times the per-address
//! limits: one site's 65,536 /64s are not 65,536 addresses.

use super::Config;
use super::dialect::Limit;
use crate::limits::MAX_TRACKED_IPS;
use crate::render::count;
use crate::time::Millis;
use core::net::IpAddr;
use std::collections::{HashMap, VecDeque};

/// A wide IPv6 prefix may hold this many times the per-address limits.
pub(crate) const WIDE_FACTOR: usize = 4;

/// Expired entries looked at, at most, when a new address finds the table full.
const PRUNE_STEP: usize = 64;

/// Why a connection (or a room creation) was refused: the limit, and words for the user.
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
    /// Users of this address waiting for a resume.
    detached: usize,
    room_window_start: Millis,
    rooms_created: u32,
}

impl IpStat {
    fn new(now: Millis) -> IpStat {
        IpStat {
            open: 0,
            window_start: now,
            connects: 0,
            detached: 0,
            room_window_start: now,
            rooms_created: 0,
        }
    }

    /// Nothing holds it and its windows have passed: it can be forgotten.
    fn idle(&self, cfg: &Config, now: Millis) -> bool {
        self.open == 0
            && self.detached == 0
            && now.since(self.window_start) >= cfg.connect_window
            && (self.rooms_created == 0
                || now.since(self.room_window_start) >= cfg.room_create_window)
    }
}

/// One tier of counts: per address key, with the order in which entries may expire.
#[derive(Debug, Default)]
struct Tier {
    map: HashMap<IpAddr, IpStat>,
    /// (when an entry was last touched, its key), oldest first; an entry may appear several
    /// times (only its latest touch can expire it).
    touched: VecDeque<(Millis, IpAddr)>,
}

impl Tier {
    fn entry(&mut self, cfg: &Config, key: IpAddr, now: Millis) -> Option<&mut IpStat> {
        if !self.map.contains_key(&key) {
            if self.map.len() >= MAX_TRACKED_IPS {
                self.prune(cfg, now, PRUNE_STEP);
                if self.map.len() >= MAX_TRACKED_IPS {
                    return None;
                }
            }
            self.touched.push_back((now, key));
        }
        Some(self.map.entry(key).or_insert_with(|| IpStat::new(now)))
    }

    fn touch(&mut self, key: IpAddr, now: Millis) {
        self.touched.push_back((now, key));
    }

    /// Forgets idle entries among the oldest `budget` touches.
    fn prune(&mut self, cfg: &Config, now: Millis, budget: usize) {
        for _ in 0..budget {
            let Some(&(at, key)) = self.touched.front() else {
                return;
            };
            if now.since(at) < cfg.connect_window {
                return;
            }
            self.touched.pop_front();
            match self.map.get(&key) {
                Some(st) if st.idle(cfg, now) => {
                    self.map.remove(&key);
                }
                // Held by nothing, but its room-creation window is still running: look again.
                Some(st) if st.open == 0 && st.detached == 0 => self.touched.push_back((now, key)),
                // Held (open or waiting users): touched again when released.
                _ => {}
            }
        }
    }
}

/// Open connections, recent connects, waiting users and room creations per address.
#[derive(Debug, Default)]
pub(crate) struct IpTable {
    /// Per address (an IPv6 /64).
    addrs: Tier,
    /// Per wide IPv6 prefix.
    wide: Tier,
}

impl IpTable {
    /// Whether `ip` is exempt from per-IP limits (and so not tracked at all).
    pub(crate) fn exempt(cfg: &Config, ip: IpAddr) -> bool {
        cfg.exempt_loopback && ip.is_loopback()
    }

    /// Records a connect from `ip` and decides. `Ok` means the caller now holds one "open" count
    /// for `ip` and must [`IpTable::release`] it.
    pub(crate) fn admit(&mut self, cfg: &Config, ip: IpAddr, now: Millis) -> Result<(), Refusal> {
        self.admit_as(cfg, ip, now, true)
    }

    /// As [`IpTable::admit`], for a connect already counted in the connect-rate windows by
    /// [`IpTable::attempt`] (before its TLS handshake): only the open connections are checked.
    pub(crate) fn admit_counted(
        &mut self,
        cfg: &Config,
        ip: IpAddr,
        now: Millis,
    ) -> Result<(), Refusal> {
        self.admit_as(cfg, ip, now, false)
    }

    /// Counts an attempt to connect from `ip` in its connect-rate windows, without opening
    /// anything: refused past [`Config::max_connects_per_window`], as a connect would be.
    pub(crate) fn attempt(&mut self, cfg: &Config, ip: IpAddr, now: Millis) -> Result<(), Refusal> {
        let wide = wide_key(cfg, ip);
        if let Some(w) = wide {
            let st = self.wide.entry(cfg, w, now).ok_or_else(busy)?;
            count_connect(cfg, st, now, WIDE_FACTOR, "your network")?;
        }
        let key = address_key(ip);
        let st = self.addrs.entry(cfg, key, now).ok_or_else(busy)?;
        count_connect(cfg, st, now, 1, "your address")?;
        self.addrs.touch(key, now);
        if let Some(w) = wide {
            self.wide.touch(w, now);
        }
        Ok(())
    }

    fn admit_as(
        &mut self,
        cfg: &Config,
        ip: IpAddr,
        now: Millis,
        count: bool,
    ) -> Result<(), Refusal> {
        let check = |st: &mut IpStat, factor, whose| {
            if count {
                count_connect(cfg, st, now, factor, whose)?;
            }
            open_one(cfg, st, factor, whose)
        };
        let wide = wide_key(cfg, ip);
        if let Some(w) = wide {
            let st = self.wide.entry(cfg, w, now).ok_or_else(busy)?;
            check(st, WIDE_FACTOR, "your network")?;
        }
        let key = address_key(ip);
        let st = self.addrs.entry(cfg, key, now).ok_or_else(busy)?;
        if let Err(r) = check(st, 1, "your address") {
            if let Some(w) = wide.and_then(|w| self.wide.map.get_mut(&w)) {
                w.open = w.open.saturating_sub(1);
            }
            return Err(r);
        }
        self.addrs.touch(key, now);
        if let Some(w) = wide {
            self.wide.touch(w, now);
        }
        Ok(())
    }

    /// A connection admitted for `ip` is gone. An entry nothing holds any more may expire from
    /// now on.
    pub(crate) fn release(&mut self, cfg: &Config, ip: IpAddr, now: Millis) {
        let key = address_key(ip);
        if let Some(st) = self.addrs.map.get_mut(&key) {
            st.open = st.open.saturating_sub(1);
            self.addrs.touch(key, now);
        }
        if let Some(w) = wide_key(cfg, ip)
            && let Some(st) = self.wide.map.get_mut(&w)
        {
            st.open = st.open.saturating_sub(1);
            self.wide.touch(w, now);
        }
    }

    /// A user of `ip` waits for a resume: `false` when the address already has as many waiting
    /// as it may (the caller then lets the user quit).
    pub(crate) fn detach(&mut self, cfg: &Config, ip: IpAddr, now: Millis) -> bool {
        let Some(st) = self.addrs.entry(cfg, address_key(ip), now) else {
            return false;
        };
        if st.detached >= cfg.max_detached_per_ip {
            return false;
        }
        st.detached += 1;
        true
    }

    /// A user of `ip` that waited for a resume resumed or quit.
    pub(crate) fn reattach(&mut self, ip: IpAddr, now: Millis) {
        let key = address_key(ip);
        if let Some(st) = self.addrs.map.get_mut(&key) {
            st.detached = st.detached.saturating_sub(1);
        }
        self.addrs.touch(key, now);
    }

    /// `ip` creates a room: refused past [`Config::max_room_creates_per_window`] in
    /// [`Config::room_create_window`].
    pub(crate) fn create_room(
        &mut self,
        cfg: &Config,
        ip: IpAddr,
        now: Millis,
    ) -> Result<(), Refusal> {
        let key = address_key(ip);
        let st = self.addrs.entry(cfg, key, now).ok_or_else(|| Refusal {
            limit: Limit::IpTable,
            detail: "the server is busy, try again in a minute".into(),
        })?;
        if now.since(st.room_window_start) >= cfg.room_create_window {
            st.room_window_start = now;
            st.rooms_created = 0;
        }
        if st.rooms_created >= cfg.max_room_creates_per_window {
            return Err(Refusal {
                limit: Limit::RoomCreates,
                detail: format!(
                    "your address has created {} in the last {}, the most allowed; \
                     join an existing room or try later",
                    count(u64::from(st.rooms_created), "room"),
                    count(cfg.room_create_window.0 / 1000, "second")
                ),
            });
        }
        st.rooms_created += 1;
        self.addrs.touch(key, now);
        Ok(())
    }

    /// Forgets addresses whose windows have passed and that hold nothing, a bounded number of
    /// entries per call; the periodic prune passes a large budget.
    pub(crate) fn prune(&mut self, cfg: &Config, now: Millis, budget: usize) {
        self.addrs.prune(cfg, now, budget);
        self.wide.prune(cfg, now, budget);
    }

    /// Addresses tracked.
    pub(crate) fn len(&self) -> usize {
        self.addrs.map.len() + self.wide.map.len()
    }
}

/// The hub's connect-rate windows alone, for a shell that must count attempts the hub never
/// hears of: natter-bridge's TLS handshakes, each far dearer than a plain connect. Per address
/// (an IPv6 /64, and its wide prefix with four times the limit), in a table bounded
/// and pruned as the hub's own. Loopback is counted like any address.
#[derive(Debug)]
pub struct ConnectRate {
    cfg: Config,
    table: IpTable,
}

impl ConnectRate {
    /// At most `max` attempts per address per `window`.
    pub fn new(max: u32, window: Millis) -> ConnectRate {
        ConnectRate {
            cfg: Config {
                max_connects_per_window: max.max(1),
                connect_window: window,
                exempt_loopback: false,
                ..Config::default()
            },
            table: IpTable::default(),
        }
    }

    /// Counts an attempt from `ip` at `now`: `Err` (words for the log) past the limit.
    pub fn attempt(&mut self, ip: IpAddr, now: Millis) -> Result<(), String> {
        // A little at a time, so the table stays small without a timer of its own.
        self.table.prune(&self.cfg, now, 4);
        self.table
            .attempt(&self.cfg, ip.to_canonical(), now)
            .map_err(|r| r.detail)
    }
}

/// The refusal when the table of addresses is full.
fn busy() -> Refusal {
    Refusal {
        limit: Limit::IpTable,
        detail: "the server is busy, try again in a minute".into(),
    }
}

/// Counts a connect against `st`'s connect-rate window (its limit × `factor`).
fn count_connect(
    cfg: &Config,
    st: &mut IpStat,
    now: Millis,
    factor: usize,
    whose: &str,
) -> Result<(), Refusal> {
    if now.since(st.window_start) >= cfg.connect_window {
        st.window_start = now;
        st.connects = 0;
    }
    st.connects = st.connects.saturating_add(1);
    let max_connects = cfg
        .max_connects_per_window
        .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX));
    if st.connects > max_connects {
        return Err(Refusal {
            limit: Limit::ConnectRate,
            detail: format!(
                "too many connections from {whose}: at most {max_connects} per {}",
                count(cfg.connect_window.0 / 1000, "second")
            ),
        });
    }
    Ok(())
}

/// One more open connection for `st` (its limit × `factor`); on success the caller holds it.
fn open_one(cfg: &Config, st: &mut IpStat, factor: usize, whose: &str) -> Result<(), Refusal> {
    if st.open >= cfg.max_connections_per_ip.saturating_mul(factor) {
        return Err(Refusal {
            limit: Limit::PerIp,
            detail: format!(
                "{whose} already has {} open, the most allowed",
                count(st.open as u64, "connection")
            ),
        });
    }
    st.open += 1;
    Ok(())
}

/// How often, at most, the log is told of connections refused at admission for one limit:
/// an address opening connections in a loop past its limit would otherwise write a `WARN` line
/// per connection (1,028 in one burst of the thirty-first session's attack pass).
pub(crate) const REFUSALS_SAID_EVERY: Millis = Millis(10_000);

/// The log's share of refusals at admission: the first refusal of a limit is said, then at
/// most one per [`REFUSALS_SAID_EVERY`], with how many went unsaid since. Refusals are all
/// counted in the metrics and every client is told; only the log is spared.
pub(crate) type RefusalLog = crate::time::SaidEvery<Limit>;

/// The key an address is counted under for per-address limits: an IPv4 address itself (also
/// when mapped into IPv6), an IPv6 address its /64. The bridge counts browsers the same way.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// The wide prefix an IPv6 address is also counted under, if that tier is on.
fn wide_key(cfg: &Config, ip: IpAddr) -> Option<IpAddr> {
    let IpAddr::V6(v6) = ip.to_canonical() else {
        return None;
    };
    let bits = u32::from(cfg.ipv6_wide_prefix);
    if bits == 0 || bits >= 64 {
        return None;
    }
    let mask = !(u128::MAX >> bits);
    Some(IpAddr::V6((u128::from(v6) & mask).into()))
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
        assert_eq!(t.addrs.map.len(), 2);
        // Released under the same key, from any address of the /64.
        t.release(&cfg, ip("2001:db8::77"), now);
        assert!(t.admit(&cfg, ip("2001:db8::99"), now).is_ok());
        // IPv4 (also mapped into IPv6) counts per address.
        assert!(t.admit(&cfg, ip("192.0.2.1"), now).is_ok());
        assert!(t.admit(&cfg, ip("::ffff:192.0.2.1"), now).is_ok());
        assert!(t.admit(&cfg, ip("192.0.2.1"), now).is_err());
        assert!(t.admit(&cfg, ip("192.0.2.2"), now).is_ok());
    }

    #[test]
    fn a_wide_ipv6_prefix_holds_a_few_times_one_address() {
        let cfg = Config {
            max_connections_per_ip: 2,
            ..Config::default()
        };
        let mut t = IpTable::default();
        let now = Millis(0);
        // Every connection from another /64 of one /48: 2 × 4 fit, the ninth does not.
        for i in 0..8 {
            let a = ip(&format!("2001:db8:7:{i:x}::1"));
            assert!(t.admit(&cfg, a, now).is_ok(), "{i}");
        }
        let ninth = t.admit(&cfg, ip("2001:db8:7:99::1"), now);
        assert_eq!(ninth.map_err(|r| r.limit), Err(Limit::PerIp));
        assert!(ninth_words_name_the_network(&cfg, &mut t));
        // Another /48 is not affected; the tier can be turned off.
        assert!(t.admit(&cfg, ip("2001:db8:8::1"), now).is_ok());
        let off = Config {
            ipv6_wide_prefix: 0,
            ..cfg.clone()
        };
        let mut t = IpTable::default();
        for i in 0..20 {
            assert!(
                t.admit(&off, ip(&format!("2001:db8:7:{i:x}::1")), now)
                    .is_ok()
            );
        }
    }

    fn ninth_words_name_the_network(cfg: &Config, t: &mut IpTable) -> bool {
        t.admit(cfg, ip("2001:db8:7:aa::1"), Millis(0))
            .is_err_and(|r| r.detail.contains("your network"))
    }

    #[test]
    fn a_full_table_is_pruned_a_little_at_a_time() {
        let cfg = Config::default();
        let mut t = IpTable::default();
        for i in 0..MAX_TRACKED_IPS as u32 {
            let a = IpAddr::V4(core::net::Ipv4Addr::from(0x0a00_0000u32 + i));
            t.admit(&cfg, a, Millis(0)).unwrap();
            t.release(&cfg, a, Millis(0));
        }
        // Full, and nothing expired yet: a new address is refused as busy.
        let refused = t.admit(&cfg, ip("192.0.2.1"), Millis(1));
        assert_eq!(refused.map_err(|r| r.limit), Err(Limit::IpTable));
        // Once windows pass, a new address frees a few entries, not the whole table.
        let later = cfg.connect_window;
        assert!(t.admit(&cfg, ip("192.0.2.1"), later).is_ok());
        assert!(
            t.addrs.map.len() > MAX_TRACKED_IPS - 2 * PRUNE_STEP,
            "pruned {}",
            MAX_TRACKED_IPS - t.addrs.map.len()
        );
        t.prune(&cfg, later, usize::MAX);
        assert_eq!(t.addrs.map.len(), 1);
    }

    /// A limit of one is said in the singular: until the thirty-first session's QA an address
    /// allowed one connection was told it "already has 1 connections open".
    #[test]
    fn counts_of_one_are_said_in_the_singular() {
        let cfg = Config {
            max_connections_per_ip: 1,
            max_connects_per_window: 1,
            max_room_creates_per_window: 1,
            connect_window: Millis(1_000),
            room_create_window: Millis(1_000),
            ..Config::default()
        };
        let mut t = IpTable::default();
        let a = ip("198.51.100.7");
        t.admit(&cfg, a, Millis(0)).unwrap();
        let r = t.admit(&cfg, a, Millis(5_000)).unwrap_err();
        assert_eq!(r.limit, Limit::PerIp);
        assert!(r.detail.contains("has 1 connection open,"), "{}", r.detail);
        t.release(&cfg, a, Millis(5_000));
        t.admit(&cfg, a, Millis(10_000)).unwrap();
        t.release(&cfg, a, Millis(10_000));
        let r = t.admit(&cfg, a, Millis(10_000)).unwrap_err();
        assert_eq!(r.limit, Limit::ConnectRate);
        assert!(r.detail.ends_with("at most 1 per 1 second"), "{}", r.detail);
        t.create_room(&cfg, a, Millis(10_000)).unwrap();
        let r = t.create_room(&cfg, a, Millis(10_000)).unwrap_err();
        assert!(
            r.detail.contains("created 1 room in the last 1 second,"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn waiting_users_and_room_creations_are_counted_per_address() {
        let cfg = Config {
            max_detached_per_ip: 2,
            max_room_creates_per_window: 3,
            ..Config::default()
        };
        let mut t = IpTable::default();
        let a = ip("198.51.100.7");
        let now = Millis(0);
        assert!(t.detach(&cfg, a, now) && t.detach(&cfg, a, now));
        assert!(!t.detach(&cfg, a, now), "a third waits no more");
        assert!(t.detach(&cfg, ip("198.51.100.8"), now), "another address");
        t.reattach(a, now);
        assert!(t.detach(&cfg, a, now));
        for _ in 0..3 {
            assert!(t.create_room(&cfg, a, now).is_ok());
        }
        let r = t.create_room(&cfg, a, now).unwrap_err();
        assert_eq!(r.limit, Limit::RoomCreates);
        assert!(t.create_room(&cfg, a, now + cfg.room_create_window).is_ok());
        // An address with users waiting is not forgotten when its windows pass.
        t.prune(&cfg, Millis(10_000_000), usize::MAX);
        assert!(t.addrs.map.contains_key(&a));
    }

    #[test]
    fn a_connect_rate_alone_counts_attempts_per_address_and_forgets_them_later() {
        let mut r = ConnectRate::new(3, Millis(10_000));
        let t0 = Millis(1_000);
        for _ in 0..3 {
            assert_eq!(r.attempt(ip("192.0.2.1"), t0), Ok(()));
        }
        let why = r.attempt(ip("192.0.2.1"), t0).unwrap_err();
        assert!(why.contains("at most 3 per 10 seconds"), "{why}");
        assert!(
            r.attempt(ip("::ffff:192.0.2.1"), t0).is_err(),
            "mapped is the same"
        );
        assert_eq!(r.attempt(ip("192.0.2.2"), t0), Ok(()), "its own count");
        assert!(r.attempt(ip("127.0.0.1"), t0).is_ok());
        for _ in 0..3 {
            let _ = r.attempt(ip("127.0.0.1"), t0);
        }
        assert!(
            r.attempt(ip("127.0.0.1"), t0).is_err(),
            "loopback is counted here"
        );
        // A window later the address may again, and the idle entries go a few at a time.
        let later = Millis(11_000);
        assert_eq!(r.attempt(ip("192.0.2.1"), later), Ok(()));
        for _ in 0..10 {
            let _ = r.attempt(ip("192.0.2.1"), later);
        }
        assert!(r.table.len() <= 2, "{} addresses kept", r.table.len());
    }
}
