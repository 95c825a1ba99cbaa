//! Moderation's vocabulary: what a room's founder and operators set (its policy: operators,
//! voices, modes, bans, mutes), the masks a ban or mute names, and the durations people type.
//! The rules that use them are the hub's (`hub/moderate.rs`); these types go on the wire and
//! into the store.

use crate::limits::MAX_TEXT_BYTES;
use crate::time::Millis;
use crate::types::{Nick, Text};
use core::net::IpAddr;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bans, and mutes, one room may hold.
pub const MAX_BANS_PER_ROOM: usize = 500;
/// Operators and voiced members one room may name.
pub const MAX_OPS_PER_ROOM: usize = 100;
/// The longest ban or mute: a year.
pub const MAX_DURATION: Millis = Millis(365 * 24 * 3600 * 1000);

/// Who a ban or a mute holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mask {
    /// A registered account, on every device and under every nick (`account:alice`).
    Account(Nick),
    /// Whoever has this nick (`nick:bob`), while they have it.
    Nick(Nick),
    /// Every connection from this network (`203.0.113.0/24`, `2001:db8::/48`, or one address).
    Net {
        /// The network's address (its host bits zero).
        addr: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
}

/// Why a mask or a duration did not parse. The text is shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaskError {
    /// Not a nick, an account, or an address.
    #[error("{0:?} is not a nick, account:NAME, nick:NAME, an address or a network (a.b.c.d/N)")]
    Unknown(String),
    /// A network prefix out of range, or too wide to be a sensible ban.
    #[error("the prefix /{0} is out of range (IPv4 /8 to /32, IPv6 /16 to /128)")]
    Prefix(u8),
    /// A duration that does not read as `N` followed by `m`, `h` or `d`.
    #[error("{0:?} is not a duration like 30m, 12h or 7d")]
    Duration(String),
    /// A duration over [`MAX_DURATION`].
    #[error("at most 365 days")]
    TooLong,
}

impl Mask {
    /// Reads a mask as an operator types it: `account:NAME`, `nick:NAME`, an address, or a
    /// network in CIDR form. A bare name is a nick (the hub widens a present user's nick to its
    /// account, or its address).
    pub fn parse(s: &str) -> Result<Mask, MaskError> {
        let unknown = || {
            MaskError::Unknown(crate::types::sanitize(
                &s.chars().take(64).collect::<String>(),
            ))
        };
        if let Some(name) = s.strip_prefix("account:") {
            return Nick::new(name).map(Mask::Account).map_err(|_| unknown());
        }
        if let Some(name) = s.strip_prefix("nick:") {
            return Nick::new(name).map(Mask::Nick).map_err(|_| unknown());
        }
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        match addr.parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p.parse::<u8>().map_err(|_| unknown())?,
                };
                let min = if ip.is_ipv4() { 8 } else { 16 };
                if prefix < min || prefix > max {
                    return Err(MaskError::Prefix(prefix));
                }
                Ok(Mask::Net {
                    addr: network(ip, prefix),
                    prefix,
                })
            }
            Err(_) if prefix.is_none() => Nick::new(s).map(Mask::Nick).map_err(|_| unknown()),
            Err(_) => Err(unknown()),
        }
    }

    /// Whether this mask holds a connection from `ip` whatever its nick and account: only an
    /// address or network does.
    pub fn holds_addr(&self, ip: IpAddr) -> bool {
        match self {
            Mask::Account(_) | Mask::Nick(_) => false,
            Mask::Net { addr, prefix } => {
                let ip = ip.to_canonical();
                ip.is_ipv4() == addr.is_ipv4() && network(ip, *prefix) == *addr
            }
        }
    }

    /// Whether it holds someone with `account` (if signed in), `nick` and address `ip`.
    pub fn holds(&self, account: Option<&str>, nick: &Nick, ip: Option<IpAddr>) -> bool {
        match self {
            Mask::Account(a) => account.is_some_and(|x| x == a.folded()),
            Mask::Nick(n) => n.folded() == nick.folded(),
            Mask::Net { .. } => ip.is_some_and(|ip| self.holds_addr(ip)),
        }
    }
}

impl core::fmt::Display for Mask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Mask::Account(a) => write!(f, "account:{a}"),
            Mask::Nick(n) => write!(f, "nick:{n}"),
            Mask::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
        }
    }
}

/// `ip` with all but its first `prefix` bits zero.
fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// Reads `30m`, `12h`, `7d` (also `90s`, `2w` and `1y`, a year of 365 days: the longest).
pub fn parse_duration(s: &str) -> Result<Millis, MaskError> {
    let bad = || {
        MaskError::Duration(crate::types::sanitize(
            &s.chars().take(32).collect::<String>(),
        ))
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let ms = match unit {
        's' => 1000,
        'm' => 60 * 1000,
        'h' => 3600 * 1000,
        'd' => 24 * 3600 * 1000,
        'w' => 7 * 24 * 3600 * 1000,
        'y' => 365 * 24 * 3600 * 1000,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    let total = n.checked_mul(ms).ok_or(MaskError::TooLong)?;
    if total > MAX_DURATION.0 {
        return Err(MaskError::TooLong);
    }
    Ok(Millis(total))
}

/// A ban or a mute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Who it holds.
    pub mask: Mask,
    /// Until when (`None`: until lifted).
    pub until: Option<Millis>,
    /// The operator who set it.
    pub by: Nick,
    /// Why, if they said.
    pub reason: Option<Text>,
    /// When it was set (`Millis(0)`: before natter recorded it; IRC's 367 shows it).
    pub at: Millis,
}

/// What stores and cluster buckets wrote before bans recorded when they were set: read back
/// as they are, with `at` unknown (`Millis(0)`).
pub mod v1 {
    use super::{Mask, Modes, Nick, Text};
    use crate::time::Millis;
    use serde::Deserialize;

    /// [`super::Entry`] without `at`.
    #[derive(Debug, Deserialize)]
    pub struct Entry {
        mask: Mask,
        until: Option<Millis>,
        by: Nick,
        reason: Option<Text>,
    }

    impl From<Entry> for super::Entry {
        fn from(e: Entry) -> super::Entry {
            super::Entry {
                mask: e.mask,
                until: e.until,
                by: e.by,
                reason: e.reason,
                at: Millis(0),
            }
        }
    }

    /// [`super::Policy`] whose bans and mutes are [`Entry`]s.
    #[derive(Debug, Deserialize)]
    pub struct Policy {
        founder: Option<Nick>,
        ops: Vec<Nick>,
        voiced: Vec<Nick>,
        modes: Modes,
        bans: Vec<Entry>,
        mutes: Vec<Entry>,
    }

    impl From<Policy> for super::Policy {
        fn from(p: Policy) -> super::Policy {
            super::Policy {
                founder: p.founder,
                ops: p.ops,
                voiced: p.voiced,
                modes: p.modes,
                bans: p.bans.into_iter().map(Into::into).collect(),
                mutes: p.mutes.into_iter().map(Into::into).collect(),
            }
        }
    }
}

impl Entry {
    /// Whether it still holds at `now`.
    pub fn live(&self, now: Millis) -> bool {
        self.until.is_none_or(|u| u > now)
    }
}

/// A room's modes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modes {
    /// `+i`: only the invited (and operators) may join.
    pub invite_only: bool,
    /// `+k`: joining needs this key.
    pub key: Option<Text>,
    /// `+m`: only operators and voiced members speak.
    pub moderated: bool,
    /// `+t`: only operators set the topic.
    pub topic_ops: bool,
    /// `+l`: at most this many members.
    pub limit: Option<u32>,
}

impl Modes {
    /// As IRC writes them: `+imt`, `+kl key 50`, or `+` for none.
    pub fn letters(&self) -> String {
        let mut s = String::from("+");
        for (on, c) in [
            (self.invite_only, 'i'),
            (self.moderated, 'm'),
            (self.topic_ops, 't'),
            (self.key.is_some(), 'k'),
            (self.limit.is_some(), 'l'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }
}

/// One mode change, as `/mode #room +m` asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeChange {
    /// `+i` / `-i`.
    InviteOnly(bool),
    /// `+k KEY` / `-k`.
    Key(Option<Text>),
    /// `+m` / `-m`.
    Moderated(bool),
    /// `+t` / `-t`.
    TopicOps(bool),
    /// `+l N` / `-l`.
    Limit(Option<u32>),
}

impl ModeChange {
    /// Reads `+i`, `-k`, `+k key`, `+l 50`...
    pub fn parse(flag: &str, arg: Option<&str>) -> Result<ModeChange, String> {
        let usage = || "modes: +i -i +k KEY -k +m -m +t -t +l N -l".to_owned();
        let (on, letter) = match flag.as_bytes() {
            [b'+', c] => (true, *c),
            [b'-', c] => (false, *c),
            _ => return Err(usage()),
        };
        Ok(match (letter, on) {
            (b'i', on) => ModeChange::InviteOnly(on),
            (b'm', on) => ModeChange::Moderated(on),
            (b't', on) => ModeChange::TopicOps(on),
            (b'k', true) => {
                let key = arg.ok_or_else(|| "+k needs a key".to_owned())?;
                if key.contains(char::is_whitespace) || key.len() > 64 {
                    return Err("a key is one word of at most 64 bytes".into());
                }
                ModeChange::Key(Some(Text::new(key).map_err(|e| e.to_string())?))
            }
            (b'k', false) => ModeChange::Key(None),
            (b'l', true) => {
                // A number past what a count can hold is a number all the same: the hub caps
                // it at the largest room (as IRC servers clamp `+l`), so it reads as "the most".
                let n = arg
                    .filter(|a| {
                        !a.is_empty() && a.len() <= 64 && a.bytes().all(|b| b.is_ascii_digit())
                    })
                    .map(|a| a.parse::<u32>().unwrap_or(u32::MAX))
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "+l needs a whole number of members above 0".to_owned())?;
                ModeChange::Limit(Some(n))
            }
            (b'l', false) => ModeChange::Limit(None),
            _ => return Err(format!("there is no mode {flag}; {}", usage())),
        })
    }

    /// As an event shows it: `+m`, `+k`, `+l 50` (a key is never shown).
    pub fn words(&self) -> String {
        let sign = |on: bool| if on { '+' } else { '-' };
        match self {
            ModeChange::InviteOnly(on) => format!("{}i", sign(*on)),
            ModeChange::Moderated(on) => format!("{}m", sign(*on)),
            ModeChange::TopicOps(on) => format!("{}t", sign(*on)),
            ModeChange::Key(k) => format!("{}k", sign(k.is_some())),
            ModeChange::Limit(Some(n)) => format!("+l {n}"),
            ModeChange::Limit(None) => "-l".into(),
        }
    }
}

/// What a room's founder and operators have set: kept with the room (and in the store) once
/// the room is registered or anything is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The account that registered the room.
    pub founder: Option<Nick>,
    /// Operators (accounts).
    pub ops: Vec<Nick>,
    /// Voiced members (accounts or nicks): they speak in a `+m` room.
    pub voiced: Vec<Nick>,
    /// Modes.
    pub modes: Modes,
    /// Bans.
    pub bans: Vec<Entry>,
    /// Mutes: they read but do not speak.
    pub mutes: Vec<Entry>,
}

impl Policy {
    /// Whether `account` is the founder or an operator.
    pub fn is_op(&self, account: Option<&str>) -> bool {
        let Some(a) = account else {
            return false;
        };
        self.founder.as_ref().is_some_and(|f| f.folded() == a)
            || self.ops.iter().any(|o| o.folded() == a)
    }

    /// The live ban holding someone, if any.
    pub fn ban_of(
        &self,
        account: Option<&str>,
        nick: &Nick,
        ip: Option<IpAddr>,
        now: Millis,
    ) -> Option<&Entry> {
        self.bans
            .iter()
            .find(|b| b.live(now) && b.mask.holds(account, nick, ip))
    }

    /// The live mute holding someone, if any.
    pub fn mute_of(
        &self,
        account: Option<&str>,
        nick: &Nick,
        ip: Option<IpAddr>,
        now: Millis,
    ) -> Option<&Entry> {
        self.mutes
            .iter()
            .find(|b| b.live(now) && b.mask.holds(account, nick, ip))
    }

    /// Forgets bans and mutes that ran out.
    pub fn expire(&mut self, now: Millis) {
        self.bans.retain(|b| b.live(now));
        self.mutes.retain(|b| b.live(now));
    }

    /// Whether it keeps anything at `now`: a founder, operators, voices, a mode, or a live
    /// ban or mute. Settings that keep nothing (an invitation's in a cluster, a room whose
    /// last ban ran out) are no reason to keep a room nobody is in.
    pub fn keeps_anything(&self, now: Millis) -> bool {
        self.founder.is_some()
            || !self.ops.is_empty()
            || !self.voiced.is_empty()
            || self.modes != Modes::default()
            || self.bans.iter().chain(&self.mutes).any(|b| b.live(now))
    }

    /// The soonest time a ban or mute runs out.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.bans
            .iter()
            .chain(&self.mutes)
            .filter_map(|b| b.until)
            .min()
    }
}

/// A reason as typed, cut to what a text may hold.
pub fn reason(s: &str) -> Option<Text> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let cut: String = s.chars().take(MAX_TEXT_BYTES / 4).collect();
    Text::new(&cut).ok()
}

/// Nicks one room remembers as invited (the oldest invite goes first).
pub const MAX_INVITED: usize = 100;

/// One change to a room's settings, as an operator made it. In a cluster (issue 23) a room's
/// settings are kept where every node reads them, and each node's changes are merged into
/// them as they are then ([`SharedRoom::apply`]): two operators changing one room on two nodes
/// at once both land, whichever writes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyEdit {
    /// The room is registered to (or taken over by) this account.
    Founder(Nick),
    /// This account is made an operator.
    Op(Nick),
    /// This account is no longer an operator.
    Deop(Nick),
    /// This account or nick is voiced.
    Voice(Nick),
    /// This account or nick is no longer voiced.
    Devoice(Nick),
    /// A mode is set.
    Mode(ModeChange),
    /// A ban is set (one on the same mask before is replaced).
    Ban(Entry),
    /// The ban on this mask is lifted.
    Unban(Mask),
    /// A mute is set (one on the same mask before is replaced).
    Mute(Entry),
    /// The mute on this mask is lifted.
    Unmute(Mask),
    /// `nick` is invited (by `by`) until it joins.
    Invite {
        /// Who is invited.
        nick: Nick,
        /// The operator who invited.
        by: Nick,
    },
    /// `nick`'s invitation was used (it joined).
    Uninvite(Nick),
    /// The room was closed (by whom and why): its settings and invitations are forgotten.
    Close(RoomClose),
    /// This account was removed (`natter-server account remove`): if it is still the room's
    /// founder, the room has none now (a founder named since, by a take-over, stays), and it
    /// operates and is voiced no more. One edit for the three, so that the cluster leaves them
    /// out together for a name registered again (until the forty-second session's review the
    /// operator and voice went as a `Deop` and a `Devoice`, by name).
    AccountGone {
        /// The account's name.
        name: Nick,
        /// The removed account's registration (its `created`): a cluster leaves the edit out
        /// once the name is registered again (the new holder's node lifted what it found,
        /// and a late removal would undo the new holder's `/register` of the room, or its
        /// `/op` and `/voice` by the founder); from `account add --cluster`, the registration
        /// about to be made (left out if another was made first). `None`: rights an earlier
        /// account left under a name registered anew.
        registered: Option<Millis>,
    },
}

/// Who closed a room and why ([`PolicyEdit::Close`]). In a cluster the close's news carries
/// them, so every node tells its members the words the closing node tells its own ("Channel
/// closed by root: moved"), whichever comes first there, the news or the close's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClose {
    /// The admin who closed it.
    pub by: Nick,
    /// Why, as the admin said.
    pub reason: Option<Text>,
}

/// The words of the `Mode` event that tells a room's members the rights of an account the
/// operator removed were lifted there (its founder, operator and voice): the event is from the
/// account's name. [`ACCOUNT_REMOVED_FOUNDER`] when it was the room's founder.
pub const ACCOUNT_REMOVED: &str = "account removed";
/// [`ACCOUNT_REMOVED`] when the account was the room's founder: the room has none now.
pub const ACCOUNT_REMOVED_FOUNDER: &str = "account removed: no founder";

/// A room's settings as a cluster keeps them: its policy and who is invited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRoom {
    /// The founder, operators, voices, modes, bans and mutes.
    pub policy: Policy,
    /// Who is invited, and by whom, oldest first (at most [`MAX_INVITED`]).
    pub invited: Vec<(Nick, Nick)>,
}

impl SharedRoom {
    /// Merges `edit` in, with the hub's own rules and caps (an edit past a cap is left out;
    /// the hub checked it against what it knew). False when the room was closed: nothing of it
    /// is kept (settings back to none are kept: only a close makes members leave).
    pub fn apply(&mut self, edit: &PolicyEdit) -> bool {
        let same = |a: &Nick, b: &Nick| a.folded() == b.folded();
        let p = &mut self.policy;
        match edit {
            PolicyEdit::Founder(n) => p.founder = Some(n.clone()),
            PolicyEdit::Op(n) => {
                if !p.ops.iter().any(|o| same(o, n)) && p.ops.len() < MAX_OPS_PER_ROOM {
                    p.ops.push(n.clone());
                }
            }
            PolicyEdit::Deop(n) => p.ops.retain(|o| !same(o, n)),
            PolicyEdit::Voice(n) => {
                if !p.voiced.iter().any(|v| same(v, n)) && p.voiced.len() < MAX_OPS_PER_ROOM {
                    p.voiced.push(n.clone());
                }
            }
            PolicyEdit::Devoice(n) => p.voiced.retain(|v| !same(v, n)),
            PolicyEdit::Mode(change) => match change {
                ModeChange::InviteOnly(on) => p.modes.invite_only = *on,
                ModeChange::Key(k) => p.modes.key = k.clone(),
                ModeChange::Moderated(on) => p.modes.moderated = *on,
                ModeChange::TopicOps(on) => p.modes.topic_ops = *on,
                ModeChange::Limit(n) => p.modes.limit = *n,
            },
            PolicyEdit::Ban(e) => {
                p.bans.retain(|b| b.mask != e.mask);
                if p.bans.len() < MAX_BANS_PER_ROOM {
                    p.bans.push(e.clone());
                }
            }
            PolicyEdit::Unban(m) => p.bans.retain(|b| b.mask != *m),
            PolicyEdit::Mute(e) => {
                p.mutes.retain(|b| b.mask != e.mask);
                if p.mutes.len() < MAX_BANS_PER_ROOM {
                    p.mutes.push(e.clone());
                }
            }
            PolicyEdit::Unmute(m) => p.mutes.retain(|b| b.mask != *m),
            PolicyEdit::Invite { nick, by } => {
                self.invited.retain(|(n, _)| !same(n, nick));
                if self.invited.len() >= MAX_INVITED {
                    self.invited.remove(0);
                }
                self.invited.push((nick.clone(), by.clone()));
            }
            PolicyEdit::Uninvite(nick) => self.invited.retain(|(n, _)| !same(n, nick)),
            PolicyEdit::Close(_) => {
                *self = SharedRoom::default();
                return false;
            }
            PolicyEdit::AccountGone { name: n, .. } => {
                if p.founder.as_ref().is_some_and(|f| same(f, n)) {
                    p.founder = None;
                }
                p.ops.retain(|o| !same(o, n));
                p.voiced.retain(|v| !same(v, n));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::nick;

    #[test]
    fn masks_read_as_operators_type_them() {
        assert_eq!(
            Mask::parse("account:Alice"),
            Ok(Mask::Account(nick("Alice")))
        );
        assert_eq!(Mask::parse("bob"), Ok(Mask::Nick(nick("bob"))));
        assert_eq!(
            Mask::parse("203.0.113.77/24"),
            Ok(Mask::Net {
                addr: "203.0.113.0".parse().unwrap(),
                prefix: 24
            })
        );
        assert_eq!(
            Mask::parse("::ffff:198.51.100.1").unwrap().to_string(),
            "198.51.100.1/32"
        );
        assert_eq!(Mask::parse("10.0.0.0/4"), Err(MaskError::Prefix(4)));
        assert!(matches!(
            Mask::parse("not a mask!"),
            Err(MaskError::Unknown(_))
        ));
        assert!(
            matches!(Mask::parse("\u{1b}[31m"), Err(MaskError::Unknown(s)) if !s.contains('\u{1b}'))
        );
    }

    #[test]
    fn masks_hold_accounts_nicks_and_networks() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let bob = nick("bob");
        assert!(
            Mask::parse("account:bob")
                .unwrap()
                .holds(Some("bob"), &nick("x"), None)
        );
        assert!(!Mask::parse("account:bob").unwrap().holds(None, &bob, None));
        assert!(Mask::parse("BOB").unwrap().holds(None, &bob, None));
        let net = Mask::parse("2001:db8::/48").unwrap();
        assert!(net.holds(None, &bob, ip("2001:db8:0:1::5")));
        assert!(!net.holds(None, &bob, ip("2001:db9::5")));
        assert!(!net.holds(None, &bob, ip("192.0.2.1")));
        assert!(
            Mask::parse("192.0.2.0/24")
                .unwrap()
                .holds(None, &bob, ip("::ffff:192.0.2.9"))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Millis(30 * 60 * 1000)));
        assert_eq!(parse_duration("7d"), Ok(Millis(7 * 24 * 3600 * 1000)));
        assert_eq!(parse_duration("366d"), Err(MaskError::TooLong));
        assert_eq!(parse_duration("99999999999999w"), Err(MaskError::TooLong));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("é").is_err());
        // "At most a year": a year can be said as one.
        assert_eq!(parse_duration("1y"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("2y"), Err(MaskError::TooLong));
    }

    #[test]
    fn modes_parse_and_read_back() {
        assert_eq!(
            ModeChange::parse("+i", None),
            Ok(ModeChange::InviteOnly(true))
        );
        assert_eq!(
            ModeChange::parse("+l", Some("50")),
            Ok(ModeChange::Limit(Some(50)))
        );
        assert!(ModeChange::parse("+l", Some("0")).is_err());
        assert!(ModeChange::parse("+k", None).is_err());
        assert!(ModeChange::parse("+x", None).is_err());
        assert_eq!(
            ModeChange::parse("+k", Some("sesame")).unwrap().words(),
            "+k"
        );
        let m = Modes {
            invite_only: true,
            key: Text::new("k").ok(),
            ..Modes::default()
        };
        assert_eq!(m.letters(), "+ik");
    }

    #[test]
    fn edits_merge_into_a_shared_room_whatever_else_changed() {
        let mut a = SharedRoom::default();
        let ban = |m: &str| Entry {
            mask: Mask::parse(m).unwrap(),
            until: None,
            by: nick("op"),
            reason: None,
            at: crate::time::Millis(0),
        };
        // Two operators' edits, each applied to what the other left.
        assert!(a.apply(&PolicyEdit::Ban(ban("bob"))));
        assert!(a.apply(&PolicyEdit::Mode(ModeChange::Moderated(true))));
        assert!(a.apply(&PolicyEdit::Ban(ban("carl"))));
        assert!(a.apply(&PolicyEdit::Ban(ban("bob"))));
        assert_eq!(a.policy.bans.len(), 2, "one ban per mask");
        assert!(a.policy.modes.moderated);
        assert!(a.apply(&PolicyEdit::Op(nick("Dave"))));
        assert!(a.apply(&PolicyEdit::Op(nick("dave"))));
        assert_eq!(a.policy.ops, [nick("Dave")]);
        assert!(a.apply(&PolicyEdit::Deop(nick("DAVE"))));
        assert!(a.policy.ops.is_empty());
        for i in 0..=MAX_INVITED {
            let edit = PolicyEdit::Invite {
                nick: nick(&format!("n{i}")),
                by: nick("op"),
            };
            assert!(a.apply(&edit));
        }
        assert_eq!(a.invited.len(), MAX_INVITED, "the oldest invite went");
        assert_eq!(a.invited[0].0, nick("n1"));
        assert!(a.apply(&PolicyEdit::Uninvite(nick("N1"))));
        assert_eq!(a.invited.len(), MAX_INVITED - 1);
        assert!(a.apply(&PolicyEdit::Unban(Mask::parse("bob").unwrap())));
        assert_eq!(a.policy.bans.len(), 1);
        assert!(a.apply(&PolicyEdit::Founder(nick("Erin"))));
        let gone = |n: &str| PolicyEdit::AccountGone {
            name: nick(n),
            registered: None,
        };
        assert!(a.apply(&gone("frank")));
        assert_eq!(
            a.policy.founder,
            Some(nick("Erin")),
            "a founder named since stays"
        );
        assert!(a.apply(&gone("ERIN")));
        assert_eq!(
            a.policy.founder, None,
            "the removed account founds no longer"
        );
        let close = PolicyEdit::Close(RoomClose {
            by: nick("root"),
            reason: None,
        });
        assert!(!a.apply(&close), "a close keeps nothing");
        assert_eq!(a, SharedRoom::default());
    }
}
