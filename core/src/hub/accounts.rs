//! Accounts: registering the nick one has, signing in from any connection (several at once),
//! device keys, read markers, and throttling of failed attempts.
//!
//! # Rules
//! - An account is a registered nick. Nobody else may take it: a guest asking for it gets
//!   another nick (or `NickTaken`, saying it is registered), and when its owner signs in while a
//!   guest holds it, the guest is renamed to a guest nick and told why.
//! - Signing in makes the connection a device of the account's user. When the user is not
//!   there yet, the connection's guest becomes it (renamed, keeping its rooms). When it is
//!   (another device, or always-on and offline), the guest leaves its rooms, the connection
//!   joins the account's rooms with what it missed since the account's read marker, and the
//!   account joins the rooms the guest was in.
//! - Password checks and hashes are [`Work`] for the shell ([`Hub::poll_work`]); a sign-in to an
//!   account that does not exist checks against a decoy hash of the same cost, and both fail
//!   with the same words, so neither the answer nor its timing tells whether the account exists.
//! - Failures are counted per account and per address; past a few, each try must wait twice as
//!   long as the one before (up to [`MAX_WAIT`]); a success clears the account's count.
//!   An account tried from an address its owner signed in from lately (a known address) is
//!   held by its own count only, not by the address's: one neighbour's typos or guesses behind
//!   a shared NAT do not lock out everyone else there (see [`KnownAddresses`]).
//!   Registrations are counted per address the same way. Both tables are bounded.
//! - A registered user is always-on (unless configured off): it stays in its rooms with no
//!   device connected.

use super::dialect::{Note, Reply};
use super::{ClusterOut, Device, DeviceId, Hub, UserId};
use crate::accounts::{HashCost, Outcome, PasswordHash, Work, WorkDone, WorkId, check_password};
use crate::limits::{
    HELD_DIRECT_OVERHEAD, MAX_DEVICE_KEYS, MAX_HELD_DIRECT_BYTES, MAX_HELD_DIRECTS,
    MAX_KNOWN_ADDRESSES, MAX_THROTTLED, MAX_WORK_QUEUED,
};
use crate::persist::{AccountRecord, HeldDirect, KeyRecord, LoadedAccount, Write};
use crate::time::Millis;
use crate::types::{ConnId, DeviceKey, DeviceLabel, Nick, Password, RoomName, Seq, Text};
use crate::wire::{DeviceUse, ErrorKind, Proof, Re, RememberedDevice, ServerMsg};
use core::hash::Hash;
use core::net::IpAddr;
use rand_core::RngCore;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use tracing::{debug, info, warn};

/// What follows a nick in the words of a refusal because an account owns it. The IRC dialect
/// looks for it to word its `433` (a nick in use and a nick owned want different advice).
pub(crate) const REGISTERED: &str = " is a registered account";

/// The longest a throttled account or address waits for its next try.
pub const MAX_WAIT: Millis = Millis(15 * 60 * 1000);
/// The first wait once throttling starts; each later failure doubles it.
const FIRST_WAIT: Millis = Millis(1000);
/// Failed sign-ins to one account before it is throttled.
const FREE_FAILS_ACCOUNT: u32 = 3;
/// Failed sign-ins from one address before it is throttled (a NAT may hold several people).
const FREE_FAILS_ADDRESS: u32 = 10;
/// Registrations from one address before more must wait.
const FREE_REGISTRATIONS: u32 = 3;
/// The first wait once registrations from an address are throttled (then doubling).
const REGISTRATION_WAIT: Millis = Millis(60 * 1000);
/// A throttling record nobody has touched for this long is forgotten.
const FORGET_AFTER: Millis = Millis(60 * 60 * 1000);
/// An address an account's owner has not signed in from for this long is no longer known
/// for it (a term's weekly lab, a month's holiday apart).
const KNOWN_FOR: Millis = Millis(30 * 24 * 60 * 60 * 1000);

/// Who may make accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone with a nick: `/register`.
    #[default]
    Open,
    /// Only the operator (`natter-server account add`).
    Closed,
}

/// The `[accounts]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Who may make accounts.
    pub registration: Registration,
    /// Registered users stay in their rooms while no device is connected.
    pub always_on: bool,
    /// The argon2id cost of new password hashes.
    pub hash_cost: HashCost,
    /// Server admins: accounts that are operators of every room, and may register, moderate
    /// and take over any room.
    pub admins: Vec<Nick>,
    /// Bytes of direct messages kept for accounts with nothing connected, all accounts
    /// together (each counted as its text plus [`HELD_DIRECT_OVERHEAD`]); one more past it is
    /// refused to its sender. 0 keeps none: a message to such an account is refused, as when
    /// nothing was kept.
    pub kept_bytes: usize,
}

impl Default for AccountsConfig {
    fn default() -> AccountsConfig {
        AccountsConfig {
            registration: Registration::Open,
            always_on: true,
            hash_cost: HashCost::OWASP,
            admins: Vec::new(),
            kept_bytes: MAX_HELD_DIRECT_BYTES,
        }
    }
}

/// One account, as the hub holds it.
#[derive(Debug)]
struct Account {
    name: Nick,
    hash: PasswordHash,
    /// When it was registered, as the store keeps it: a name removed and registered again
    /// (by the operator, between two reloads) is another account, with another time.
    created: Millis,
    /// Its user, while it has one (a device connected, or always-on).
    user: Option<UserId>,
    /// Read markers.
    read: BTreeMap<RoomName, Seq>,
    /// Its device keys' ids, oldest first.
    keys: VecDeque<u64>,
    /// The rooms it is in, as last written (a cluster node joins them when the account signs
    /// in there with no user of it yet).
    rooms: Vec<RoomName>,
    /// Direct messages that came while it had nothing connected, oldest first: delivered
    /// when it next signs in (see [`Hub::hold_direct`]).
    held: Vec<HeldDirect>,
}

/// What a piece of work out is for.
#[derive(Debug)]
enum Pending {
    SignIn {
        conn: ConnId,
        /// The folded account name, if it exists (else the check was against the decoy).
        account: Option<String>,
        /// The folded name asked for, whether or not it exists: its failures are counted
        /// either way, or throttling would tell which accounts exist.
        asked: String,
        remember: bool,
    },
    Register {
        conn: ConnId,
        nick: Nick,
        remember: bool,
    },
    /// A password change: the old password's check.
    CheckOld {
        conn: ConnId,
        account: String,
        new: Password,
    },
    /// A password change: the new password's hash.
    NewHash { conn: ConnId, account: String },
    /// IRC's `OPER`: the admin account's password check (see [`Hub::oper`]).
    Oper {
        conn: ConnId,
        /// The admin account (folded), if it exists (else the check was against the decoy).
        account: Option<String>,
        /// The folded name asked for, counted on failure as a sign-in's is.
        asked: String,
    },
}

/// Failures (or registrations) per key, with the wait they earned.
#[derive(Debug)]
struct Throttle<K> {
    map: HashMap<K, Strikes>,
    free: u32,
    first_wait: Millis,
}

#[derive(Debug, Clone)]
struct Strikes {
    count: u32,
    until: Millis,
    last: Millis,
    /// The account every counted failure was for, or `None` once they were for several: a
    /// success clears an address's failures only when they were all of the account it signs
    /// in to (its owner mistyping), never another's (see [`Throttle::clear_if_only`]).
    only: Option<String>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    fn new(free: u32, first_wait: Millis) -> Throttle<K> {
        Throttle {
            map: HashMap::new(),
            free,
            first_wait,
        }
    }

    /// How long `k` must still wait, if it must.
    fn wait(&self, k: &K, now: Millis) -> Option<Millis> {
        let s = self.map.get(k)?;
        (s.until > now).then(|| Millis(s.until.0 - now.0))
    }

    /// Counts a failure (or registration) of `k`; true when it is the one that starts the
    /// waits (the first past the free ones since `k` was last forgotten or cleared): what is
    /// worth a log line, once, rather than one per try.
    fn strike(&mut self, k: &K, of: &str, now: Millis) -> bool {
        if !self.map.contains_key(k) && self.map.len() >= MAX_THROTTLED {
            self.map.retain(|_, s| s.last.0 + FORGET_AFTER.0 > now.0);
            if self.map.len() >= MAX_THROTTLED {
                // Still full: the record touched longest ago makes room.
                if let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, s)| s.last)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        let s = self.map.entry(k.clone()).or_insert(Strikes {
            count: 0,
            until: now,
            last: now,
            only: Some(of.to_owned()),
        });
        if s.last.0 + FORGET_AFTER.0 <= now.0 {
            s.count = 0;
            s.only = Some(of.to_owned());
        }
        if s.only.as_deref() != Some(of) {
            s.only = None;
        }
        s.count += 1;
        s.last = now;
        if s.count > self.free {
            let doublings = (s.count - self.free - 1).min(20);
            let wait = self
                .first_wait
                .0
                .saturating_mul(1 << doublings)
                .min(MAX_WAIT.0);
            s.until = Millis(now.0 + wait);
        }
        s.count == self.free + 1
    }

    fn clear(&mut self, k: &K) {
        self.map.remove(k);
    }

    /// Clears `k`'s failures if every one of them was `of`'s. A sign-in to an account clears
    /// its address's count this way only: cleared by any success, an address's limit held
    /// nobody who had an account of their own (ten guesses at others' passwords, a sign-in to
    /// their own, ten more, ...).
    fn clear_if_only(&mut self, k: &K, of: &str) {
        if self
            .map
            .get(k)
            .is_some_and(|s| s.only.as_deref() == Some(of))
        {
            self.map.remove(k);
        }
    }
}

/// The addresses (throttling keys: an IPv6 /64 as one) each account signed in from lately.
///
/// A try at an account from one of its known addresses is held by the account's own throttle
/// only, neither held by nor counted against the address's: a lab, an office or a carrier's
/// NAT behind one address is not locked out by one neighbour's typos or guesses. A guesser
/// there gains nothing at such an account that a guesser anywhere lacks (the account's
/// throttle holds every address's tries at it), and guesses at every other account are bounded
/// by the address's throttle as before. Only a sign-in that proved the account (a password, a
/// device key, a registration) makes an address known, so nobody can add or push out another
/// account's. Memory only (a restart forgets them all); at most [`MAX_KNOWN_ADDRESSES`] per
/// account, the one signed in from longest ago going first; each forgotten after
/// [`KNOWN_FOR`], and all of an account's with it.
#[derive(Debug, Default)]
struct KnownAddresses {
    /// Folded account name → its addresses, the most recent sign-in last.
    map: HashMap<String, VecDeque<(IpAddr, Millis)>>,
}

impl KnownAddresses {
    /// Whether `account`'s owner signed in from `ip` within [`KNOWN_FOR`].
    fn knows(&self, account: &str, ip: &IpAddr, now: Millis) -> bool {
        self.map.get(account).is_some_and(|l| {
            l.iter()
                .any(|(a, at)| a == ip && at.0.saturating_add(KNOWN_FOR.0) > now.0)
        })
    }

    /// `account` signed in from `ip`.
    fn note(&mut self, account: &str, ip: IpAddr, now: Millis) {
        let l = self.map.entry(account.to_owned()).or_default();
        l.retain(|(a, at)| *a != ip && at.0.saturating_add(KNOWN_FOR.0) > now.0);
        while l.len() >= MAX_KNOWN_ADDRESSES {
            l.pop_front();
        }
        l.push_back((ip, now));
    }

    fn forget(&mut self, account: &str) {
        self.map.remove(account);
    }
}

/// The hub's accounts.
#[derive(Debug)]
pub(crate) struct Accounts {
    /// Folded name → account.
    by_name: HashMap<String, Account>,
    /// Device key id → (folded account name, the key as kept: the hash of its secret, when
    /// it was issued and last used).
    keys: HashMap<u64, (String, KeyRecord)>,
    /// Device key id → what its device is called (`/devices`), for the keys that have a label
    /// (one of [`Accounts::keys`] each: it goes with its key, [`Accounts::drop_key`]). Kept
    /// apart from the key records, which a cluster's accounts carry without labels.
    labels: FxHashMap<u64, DeviceLabel>,
    /// Connections that said what their device is called ([`ClientMsg::ThisDevice`]): the
    /// label a key issued to them gets. Gone with the connection.
    asked_labels: FxHashMap<ConnId, DeviceLabel>,
    work: VecDeque<Work>,
    pending: FxHashMap<WorkId, Pending>,
    next_work: u64,
    /// Connections with an account request out (one at a time each).
    busy: FxHashSet<ConnId>,
    /// Connections signed in before their registration (IRC's SASL): the account (folded)
    /// their user will be.
    preauth: FxHashMap<ConnId, String>,
    fails: Throttle<String>,
    addr_fails: Throttle<IpAddr>,
    registrations: Throttle<IpAddr>,
    known: KnownAddresses,
    /// Cluster mode: registrations waiting for the cluster to create their account, by the
    /// hub's number for the [`ClusterOut::CreateAccount`].
    registering: FxHashMap<u64, Registering>,
    /// With a store: registrations written and not yet stored, oldest first. Their accounts
    /// are held (a reload or a failed batch finds them), their registrants signed in once the
    /// store applied the write ([`Hub::registrations_settled`]): it does not when the operator
    /// added the name with the tool meanwhile ([`Hub::handle_stale_accounts`]).
    storing: Vec<Storing>,
    /// With a store: `/password`s written and not yet stored, oldest first (`remember`
    /// unused). One the store refuses (the operator set the password meanwhile) is told so
    /// after its answer ([`Hub::registrations_settled`]).
    changing: Vec<Storing>,
    /// Cluster mode: per account (folded), this node's writes not yet answered and the
    /// revision of the last answered (see [`Hub::handle_account_written`]).
    own_writes: FxHashMap<String, (u32, u64)>,
    /// Cluster mode: per account (folded), the latest news held back while this node's writes
    /// of it were unanswered, with its revision: applied once they are, if at least as recent
    /// (news may come before the answer to the write it shows, merged with another node's).
    held_news: FxHashMap<String, (LoadedAccount, u64)>,
    /// Cluster mode: per account (folded), read markers this node wrote and has not told its
    /// connections yet, one per room: told once the cluster answers their write (a client
    /// shown a marker the cluster lost would see it go back on another or a restarted node).
    held_markers: FxHashMap<String, Vec<HeldMarker>>,
    /// Bytes of direct messages kept for accounts, all together (bounded by
    /// [`AccountsConfig::kept_bytes`]).
    held_bytes: usize,
    /// Users given an admin account's powers by IRC's `OPER` (not signed in to it): the
    /// account (folded). Theirs while the account stays in `[accounts] admins` and the user
    /// is here.
    pub(super) opers: FxHashMap<UserId, String>,
}

/// What a kept direct message counts against [`AccountsConfig::kept_bytes`].
fn held_cost(h: &HeldDirect) -> usize {
    h.msg.text.as_str().len() + HELD_DIRECT_OVERHEAD
}

/// A read marker waiting for its write (see `Accounts::held_markers`).
#[derive(Debug)]
struct HeldMarker {
    room: RoomName,
    seq: Seq,
    /// This node's writes of the account still to be answered up to and including its own.
    ahead: u32,
}

/// A registration written to the store, waiting for it (see `Accounts::storing`).
#[derive(Debug)]
struct Storing {
    conn: ConnId,
    /// The account (folded).
    account: String,
    remember: bool,
}

/// A registration whose password is hashed, waiting for the cluster to create the account.
#[derive(Debug)]
struct Registering {
    conn: ConnId,
    nick: Nick,
    hash: PasswordHash,
    remember: bool,
    /// The registration asked for (the account's `created` in the cluster).
    created: Millis,
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts {
            by_name: HashMap::new(),
            keys: HashMap::new(),
            labels: FxHashMap::default(),
            asked_labels: FxHashMap::default(),
            work: VecDeque::new(),
            pending: FxHashMap::default(),
            next_work: 1,
            busy: FxHashSet::default(),
            preauth: FxHashMap::default(),
            fails: Throttle::new(FREE_FAILS_ACCOUNT, FIRST_WAIT),
            addr_fails: Throttle::new(FREE_FAILS_ADDRESS, FIRST_WAIT),
            // The wait starts with the registration that used the last free one.
            registrations: Throttle::new(FREE_REGISTRATIONS - 1, REGISTRATION_WAIT),
            known: KnownAddresses::default(),
            registering: FxHashMap::default(),
            storing: Vec::new(),
            changing: Vec::new(),
            own_writes: FxHashMap::default(),
            opers: FxHashMap::default(),
            held_news: FxHashMap::default(),
            held_markers: FxHashMap::default(),
            held_bytes: 0,
        }
    }
}

impl Accounts {
    /// Forgets device key `id`, and its label.
    fn drop_key(&mut self, id: u64) {
        self.keys.remove(&id);
        self.labels.remove(&id);
    }

    /// The user of the account named `folded`, while it has one.
    pub(super) fn user_of_account(&self, folded: &str) -> Option<UserId> {
        self.by_name.get(folded).and_then(|a| a.user)
    }

    /// Whether `nick` is registered.
    pub(crate) fn registered(&self, nick: &Nick) -> bool {
        // The folded nick inline: asked at every hello, a `String` each time was one more small
        // allocation per connection in a connect burst (issue 22).
        self.by_name.contains_key(nick.folded_key().as_str())
    }
}

/// What a connected device of an account the operator removed is told (`NotSignedIn`, with
/// `re: Conn`): it goes on as a guest under the same nick. IRC answers it `901`.
pub(crate) const ACCOUNT_REMOVED: &str =
    "the operator removed your account: you are a guest now (your nick stays until you leave)";

/// What a connected device is told when another device of its account forgot it
/// (`/devices forget`): `NotSignedIn` with these words, then `Bye` with them, and the close.
pub(crate) const DEVICE_FORGOTTEN: &str = "this device was forgotten by another of your devices \
    (/devices forget): you are signed out, and its remembered sign-in no longer works";

/// Whether a stored account is named as an IRC service (`NickServ`): such an account is not
/// used, since nobody may hold a service's nick (IRC clients send it their passwords). Neither
/// `/register` nor `natter-server account add` makes one; a store may hold one made before
/// `add` refused them, which the log names once per load.
fn service_account(name: &Nick) -> bool {
    if name.is_service() {
        warn!(
            account = %name,
            "an account named as an IRC service is not used: nobody may hold that nick (`natter-server account remove` it)"
        );
    }
    name.is_service()
}

/// "try again in 8 s".
fn retry_words(wait: Millis) -> String {
    let s = wait.0.div_ceil(1000);
    if s >= 120 {
        format!("try again in {} min", s.div_ceil(60))
    } else {
        format!("try again in {s} s")
    }
}

/// An argon2id hash of nothing anyone knows, at `cost`: what a sign-in to an account that does
/// not exist is checked against, so it costs what a real check costs.
fn decoy(cost: HashCost) -> PasswordHash {
    PasswordHash(format!(
        "$argon2id$v=19$m={},t={},p=1$ZGVjb3lkZWNveWRlY295$\
         AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        cost.memory_kib, cost.iterations
    ))
}

impl Hub {
    // ---- the shell's side ----

    /// Next slow computation to run off the hub's thread ([`Work::run`]), whose result goes to
    /// [`Hub::handle_work`].
    pub fn poll_work(&mut self) -> Option<Work> {
        self.accounts.work.pop_front()
    }

    /// A piece of work from [`Hub::poll_work`] is done.
    pub fn handle_work(&mut self, done: WorkDone, now: Millis) {
        self.now = self.now.max(now);
        let Some(p) = self.accounts.pending.remove(&done.id) else {
            return;
        };
        let conn = match &p {
            Pending::SignIn { conn, .. }
            | Pending::Register { conn, .. }
            | Pending::CheckOld { conn, .. }
            | Pending::NewHash { conn, .. }
            | Pending::Oper { conn, .. } => *conn,
        };
        self.accounts.busy.remove(&conn);
        if self.conns.get(&conn).is_none_or(|c| c.closing()) {
            return;
        }
        match (p, done.outcome) {
            (
                Pending::SignIn {
                    account: Some(account),
                    remember,
                    ..
                },
                Outcome::Verified(true),
            ) if self.accounts.by_name.contains_key(&account) && !self.storing(&account) => {
                self.signed_in(conn, &account, remember, None, now);
            }
            (Pending::SignIn { asked, .. }, Outcome::Verified(_)) => {
                self.sign_in_failed(conn, &asked, now);
            }
            (Pending::Register { nick, remember, .. }, Outcome::Hashed(hash)) => {
                self.registered(conn, nick, hash, remember, now)
            }
            (Pending::CheckOld { account, new, .. }, Outcome::Verified(true)) => {
                let cost = self.config.accounts.hash_cost;
                let salt = self.salt();
                self.queue_work(
                    conn,
                    |id| Work::Hash {
                        id,
                        password: new,
                        salt,
                        cost,
                    },
                    Pending::NewHash { conn, account },
                );
            }
            (Pending::CheckOld { account, .. }, Outcome::Verified(false)) => {
                // Counted as a failed sign-in (a stolen connection guessing the password is
                // throttled the same), but said as what it is: whoever typed `/password` is
                // signed in and named no account.
                self.count_failed_sign_in(conn, &account, now);
                let detail = "the old password is wrong".to_owned();
                self.error(conn, ErrorKind::SignInFailed, Re::Conn, detail);
            }
            (Pending::NewHash { account, .. }, Outcome::Hashed(hash)) => {
                self.password_changed(conn, &account, hash, now);
            }
            (
                Pending::Oper {
                    account: Some(account),
                    ..
                },
                Outcome::Verified(true),
            ) if self.accounts.by_name.contains_key(&account) => {
                self.opered(conn, account, now);
            }
            (Pending::Oper { asked, .. }, Outcome::Verified(_)) => {
                self.count_failed_sign_in(conn, &asked, now);
                let answer = super::dialect::OperAnswer::WrongPassword;
                self.reply(conn, Reply::Note(super::dialect::Note::Oper(answer)));
            }
            (_, outcome) => {
                tracing::warn!(conn = %conn, ?outcome, "account work failed");
                let detail = "the server could not check that now; try again".to_owned();
                self.error(conn, ErrorKind::Unavailable, Re::Conn, detail);
            }
        }
        // What the connection sent while it was being checked runs now, in order.
        self.run_pending(conn, now);
    }

    /// Accounts as stored, at start-up (with [`Hub::restore`]) or when the operator changed
    /// them (a reload): new accounts are added, changed hashes replaced, removed accounts
    /// forgotten (their users are guests from then on, and their rooms' rights lifted).
    pub fn load_accounts(&mut self, loaded: Vec<LoadedAccount>) {
        self.take_up_accounts(loaded, None);
    }

    /// [`Hub::load_accounts`]; at start-up also given `known`, each account as the server last
    /// held it ([`crate::persist::Loaded::known`], by folded name). Each account the hub did
    /// not hold as read is taken up ([`Write::Account`] as read), so that the store applies
    /// its writes of it. At start-up, an account held at another registration time is another
    /// account of the name (the operator removed the name and added it again while the server
    /// was stopped): the old one's rights in the rooms are lifted, and its names returned
    /// first, to end its resume sessions; an account whose password the operator set meanwhile
    /// is returned second, to end its sessions as a reload would.
    pub(super) fn take_up_accounts(
        &mut self,
        loaded: Vec<LoadedAccount>,
        known: Option<&FxHashMap<String, AccountRecord>>,
    ) -> (Vec<String>, Vec<String>) {
        let mut again = Vec::new();
        let mut passwd = Vec::new();
        let mut seen = FxHashSet::default();
        let mut reset = Vec::new();
        // Accounts whose own record the hub has written and the store has not made durable
        // yet (a registration, a `/password`, each maybe waiting for its retry after a failed
        // batch): the store's copy read here is older than the hub's. They stay as the hub
        // has them; the write lands after, and the next reload reads it. If the operator
        // changed the account meanwhile, the write changes nothing (the store applies the
        // hub's writes of an account only while it is as the hub last held it): the operator's
        // word stands, and the next reload reads it.
        let unsettled = self
            .durable
            .as_ref()
            .map(|d| d.accounts_unsettled())
            .unwrap_or_default();
        for name in &unsettled {
            info!(account = %name, "account written and not yet stored: this reload leaves it as it is (if the operator changed it, the store keeps the operator's change and the accounts are read again once the write is done)");
        }
        let loaded: Vec<LoadedAccount> = loaded
            .into_iter()
            .filter(|la| !unsettled.contains(&la.record.name.folded()))
            .collect();
        // A name the operator removed and added again since the last reload (`natter-server
        // account remove`, then `add`): the store's account is another one, registered at
        // another time. The old one goes first, as if the reload had come between the two (its
        // sessions end, its rooms' rights are lifted), and the new one comes in below as new.
        let recreated: Vec<String> = loaded
            .iter()
            .filter_map(|la| {
                let folded = la.record.name.folded();
                let a = self.accounts.by_name.get(&folded)?;
                (a.created != la.record.created).then_some(folded)
            })
            .collect();
        for name in recreated {
            info!(account = %name, "account removed and registered again: the old one's sessions end and its rooms' rights are lifted");
            self.forget_account(&name);
        }
        for la in loaded {
            if service_account(&la.record.name) {
                continue;
            }
            let folded = la.record.name.folded();
            seen.insert(folded.clone());
            let keys: VecDeque<u64> = la.keys.iter().map(|k| k.id).collect();
            for k in &la.keys {
                self.accounts.keys.insert(k.id, (folded.clone(), k.clone()));
            }
            let stored = self.cluster.is_none() && self.durable.is_some();
            let mut take_up = None;
            match self.accounts.by_name.get_mut(&folded) {
                Some(a) => {
                    // A new hash is the operator's `passwd`: the account's sessions end as
                    // at a `/password` (the store revoked its keys too).
                    if a.hash != la.record.hash {
                        reset.push(folded.clone());
                        // Taken up as read, and written whole (see below).
                        if stored {
                            take_up = Some(la.record.name.clone());
                        }
                    }
                    a.hash = la.record.hash;
                    // Keys the store no longer lists were revoked there (`natter-server
                    // account passwd`): they stop opening the account now, not at a restart.
                    let revoked: Vec<u64> = a
                        .keys
                        .iter()
                        .filter(|id| !keys.contains(id))
                        .copied()
                        .collect();
                    a.keys = keys;
                    for id in revoked {
                        if self
                            .accounts
                            .keys
                            .get(&id)
                            .is_some_and(|(owner, _)| *owner == folded)
                        {
                            self.accounts.drop_key(id);
                        }
                    }
                }
                None => {
                    let held = known.map(|k| k.get(&folded));
                    if let Some(Some(h)) = held {
                        if h.created != la.record.created {
                            info!(account = %la.record.name, "account removed and registered again while the server was stopped: the old one's sessions end and its rooms' rights are lifted");
                            let now = self.now;
                            self.account_rights_gone(&la.record.name, None, true, now);
                            again.push(folded.clone());
                        } else if h.hash != la.record.hash {
                            passwd.push(folded.clone());
                        }
                    }
                    // Taken up as read, before any other write of it: the store applies the
                    // hub's writes of an account only while it is as the hub last held it. (The
                    // store names what it held by the folded name: time and hash tell.)
                    let as_held = |h: &AccountRecord| {
                        h.created == la.record.created && h.hash == la.record.hash
                    };
                    if stored && held.is_none_or(|h| !h.is_some_and(as_held)) {
                        self.record(Write::Account(la.record.clone()));
                    }
                    let read = la.read.into_iter().collect();
                    self.accounts.by_name.insert(
                        folded.clone(),
                        Account {
                            name: la.record.name.clone(),
                            hash: la.record.hash,
                            created: la.record.created,
                            user: None,
                            read,
                            keys,
                            rooms: la.rooms.clone(),
                            held: {
                                self.accounts.held_bytes +=
                                    la.held.iter().map(held_cost).sum::<usize>();
                                la.held
                            },
                        },
                    );
                    // A guest holding the name (the nick was free until the operator's `account
                    // add`, or the user of the account of that name removed above) gives it up,
                    // as to an owner signing in: a guest never keeps a registered nick (a
                    // restart would make its restored session the account's user).
                    let now = self.now;
                    self.evict_nick_holder_for(
                        &la.record.name,
                        UserId(u64::MAX),
                        "the operator added it",
                        now,
                    );
                    if self.config.accounts.always_on && !la.rooms.is_empty() {
                        self.offline_user(&folded, la.rooms);
                    }
                }
            }
            // The same registration with the operator's password: taken up (its record as
            // read comes first), then written whole as the hub holds it. What the hub wrote of it
            // since the operator's `passwd` (a room joined, a marker, a message kept for it) the
            // store dropped, and the user was told of; it is the same account, so it lands now
            // (the keys are the store's: `passwd` revoked them all).
            if let Some(name) = take_up {
                for w in self.account_as_now(&name) {
                    self.record(w);
                }
            }
        }
        let gone: Vec<String> = self
            .accounts
            .by_name
            .keys()
            .filter(|k| !seen.contains(*k) && !unsettled.contains(*k))
            .cloned()
            .collect();
        for name in gone {
            self.forget_account(&name);
        }
        for name in reset {
            self.operator_set_password(&name);
        }
        (again, passwd)
    }

    /// The operator set `account`'s password (`natter-server account passwd`; `account` folded):
    /// its sessions end as at a `/password`.
    pub(super) fn operator_set_password(&mut self, account: &str) {
        info!(%account, "password set by the operator: the account's sessions end");
        self.end_sessions(account, None, self.now);
        // Nobody proved the new password anywhere yet (see `password_changed`).
        self.accounts.known.forget(account);
    }

    /// Accounts registered.
    pub fn account_count(&self) -> usize {
        self.accounts.by_name.len()
    }

    /// Names in `[accounts] admins` that are no account yet while anyone may register: whoever
    /// registers one first is a server admin (SECURITY.md, *What is not protected*). The shell
    /// warns of them at start and after the configuration or the accounts are reloaded.
    pub fn unclaimed_admins(&self) -> Vec<Nick> {
        if self.config.accounts.registration == Registration::Closed {
            return Vec::new();
        }
        self.config
            .accounts
            .admins
            .iter()
            .filter(|n| !self.accounts.registered(n))
            .cloned()
            .collect()
    }

    // ---- requests ----

    pub(super) fn sign_in(
        &mut self,
        conn: ConnId,
        account: Nick,
        proof: Proof,
        remember: bool,
        now: Millis,
    ) {
        let folded = account.folded();
        if let Some(words) = self.cluster_came_back(conn, &folded) {
            return self.error(conn, ErrorKind::Throttled, Re::Conn, words);
        }
        // The account's throttle is there against guessing its password. A device key of the
        // account (32 random bytes nobody guesses) still opens it, whatever the account's or the
        // address's waits: else anyone could keep an account's remembered devices out for good
        // with one wrong password per wait, and one guesser behind a NAT every device there. A
        // wrong key while the account waits is refused as throttled, neither counted nor logged,
        // as a password is.
        let owners_key = matches!(&proof, Proof::Key(k) if self.key_owner(k).as_deref() == Some(folded.as_str()));
        let spared = owners_key || self.known_here(conn, &folded, now);
        if !self.may_start(conn, spared, now) {
            return;
        }
        let banned = self
            .server_bans
            .iter()
            .any(|b| b.live(now) && b.mask.holds(Some(&folded), &account, None));
        if banned {
            let words = "that account is banned from this server".to_owned();
            return self.fatal(conn, ErrorKind::Banned, words, now);
        }
        if let Some(wait) = self.accounts.fails.wait(&folded, now)
            && !owners_key
        {
            return self.throttled(conn, "too many failed sign-ins to that account", wait);
        }
        if let Some(mine) = self.account_of_conn(conn) {
            if mine == folded {
                return self.signed_in_again(conn);
            }
            let detail = "you are signed in to another account: /logout first".to_owned();
            return self.error(conn, ErrorKind::Invalid, Re::Conn, detail);
        }
        // A registration not yet stored is no account to sign in to: the store may refuse it
        // (the operator made the name's account meanwhile), and its registrant signs in first.
        let exists = self.accounts.by_name.contains_key(&folded) && !self.storing(&folded);
        match proof {
            Proof::Key(key) => {
                let owner = self.key_owner(&key);
                if owner.as_deref() == Some(folded.as_str()) && exists {
                    self.signed_in(conn, &folded, false, Some(key.id()), now);
                } else {
                    self.sign_in_failed(conn, &folded, now);
                }
            }
            Proof::Password(password) => {
                let hash = match self.accounts.by_name.get(&folded).filter(|_| exists) {
                    Some(a) => a.hash.clone(),
                    None => decoy(self.config.accounts.hash_cost),
                };
                let account = exists.then(|| folded.clone());
                self.queue_work(
                    conn,
                    |id| Work::Verify { id, password, hash },
                    Pending::SignIn {
                        conn,
                        account,
                        asked: folded,
                        remember,
                    },
                );
            }
        }
    }

    /// IRC's `OPER name password`: the user of `conn` takes the server admin powers of the
    /// admin account `name` (`[accounts] admins`) once its password checks, without signing
    /// in to it (its nick, account and sessions stay as they are), as an IRC operator block
    /// grants them. A name that is no admin account is answered at once (`491`, nothing
    /// checked); a wrong password is a failed sign-in of that account (counted, logged,
    /// throttled: `464`). The powers last while the user is here and the account stays an
    /// admin; the audit log says who took them.
    pub(super) fn oper(&mut self, conn: ConnId, name: Nick, password: Password, now: Millis) {
        use super::dialect::{Note, OperAnswer};
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let folded = name.folded();
        if !self.is_admin_account(&folded) {
            return self.reply(conn, Reply::Note(Note::Oper(OperAnswer::NotAnAdmin)));
        }
        if self.is_admin_user(uid) {
            return self.reply(conn, Reply::Note(Note::Oper(OperAnswer::Granted)));
        }
        let spared = self.known_here(conn, &folded, now);
        if !self.may_start(conn, spared, now) {
            return;
        }
        if let Some(wait) = self.accounts.fails.wait(&folded, now) {
            return self.throttled(conn, "too many failed sign-ins to that account", wait);
        }
        let exists = self.accounts.by_name.contains_key(&folded);
        let hash = match self.accounts.by_name.get(&folded) {
            Some(a) => a.hash.clone(),
            None => decoy(self.config.accounts.hash_cost),
        };
        self.queue_work(
            conn,
            |id| Work::Verify { id, password, hash },
            Pending::Oper {
                conn,
                account: exists.then(|| folded.clone()),
                asked: folded,
            },
        );
    }

    /// `OPER`'s password checked: the user of `conn` has `account`'s admin powers.
    fn opered(&mut self, conn: ConnId, account: String, now: Millis) {
        use super::dialect::{Note, OperAnswer};
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        info!(conn = %conn, %nick, %account, "took a server admin's powers (OPER)");
        self.audit(None, &nick, format!("oper as {account}"), now);
        self.accounts.opers.insert(uid, account);
        if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
            d.opered();
        }
        self.reply(conn, Reply::Note(Note::Oper(OperAnswer::Granted)));
    }

    /// The powers `OPER`s gave end for the users whose admin account `ends` (removed, no
    /// admin any more, or its password changed): their IRC connections that showed `+o` are
    /// told (a `NOTICE` and `MODE nick -o`), so a client's view of its modes stays right.
    pub(super) fn end_opers(&mut self, ends: impl Fn(&str) -> bool) {
        use super::dialect::{Note, OperAnswer};
        let gone: Vec<UserId> = self
            .accounts
            .opers
            .iter()
            .filter(|(_, named)| ends(named))
            .map(|(uid, _)| *uid)
            .collect();
        for uid in gone {
            self.accounts.opers.remove(&uid);
            let on: Vec<ConnId> = self.user_conns(uid).collect();
            for c in on {
                let shown = self
                    .conns
                    .get_mut(&c)
                    .and_then(|c| c.dialect_mut())
                    .is_some_and(|d| d.deopered());
                if shown {
                    self.reply(c, Reply::Note(Note::Oper(OperAnswer::Ended)));
                }
            }
        }
    }

    /// Whether the account `folded` is a server admin (`[accounts] admins`).
    pub(super) fn is_admin_account(&self, folded: &str) -> bool {
        self.config
            .accounts
            .admins
            .iter()
            .any(|n| n.folded() == folded)
    }

    /// Whether `uid` has a server admin's powers: signed in to an admin account, or given
    /// one's by `OPER` (while that account is still an admin).
    pub(super) fn is_admin_user(&self, uid: UserId) -> bool {
        self.account_of(uid)
            .is_some_and(|a| self.is_admin_account(&a))
            || self
                .accounts
                .opers
                .get(&uid)
                .is_some_and(|a| self.is_admin_account(a))
    }

    pub(super) fn register(
        &mut self,
        conn: ConnId,
        password: Password,
        remember: bool,
        now: Millis,
    ) {
        // A new account is known nowhere: registrations are held by the address's waits.
        if !self.may_start(conn, false, now) {
            return;
        }
        if self.config.accounts.registration == Registration::Closed {
            let detail = "registration is closed here: accounts are made by the operator";
            return self.error(conn, ErrorKind::RegistrationClosed, Re::Conn, detail.into());
        }
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        if let Some(mine) = self.account_of(uid) {
            if mine == nick.folded() {
                return self.signed_in_again(conn);
            }
            let detail = format!("you are signed in as {mine} already");
            return self.error(conn, ErrorKind::Invalid, Re::Conn, detail);
        }
        if nick.is_guest() {
            let detail =
                "guest nicks cannot be registered: choose a nick with /nick first".to_owned();
            return self.error(conn, ErrorKind::Invalid, Re::Nick(nick), detail);
        }
        if self.accounts.registered(&nick) {
            let detail = format!("{nick} is registered already");
            return self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
        }
        if let Err(e) = check_password(&password) {
            return self.error(conn, ErrorKind::Invalid, Re::Conn, e.to_string());
        }
        if let Some(ip) = self.throttle_addr(conn)
            && let Some(wait) = self.accounts.registrations.wait(&ip, now)
        {
            return self.throttled(conn, "too many registrations from your address", wait);
        }
        let cost = self.config.accounts.hash_cost;
        let salt = self.salt();
        self.queue_work(
            conn,
            |id| Work::Hash {
                id,
                password,
                salt,
                cost,
            },
            Pending::Register {
                conn,
                nick,
                remember,
            },
        );
    }

    pub(super) fn sign_out(&mut self, conn: ConnId, now: Millis) {
        let Some(account) = self.account_of_conn(conn) else {
            return self.not_signed_in(conn);
        };
        let Some(did) = self.conns.get(&conn).and_then(|c| c.device()) else {
            return;
        };
        if let Some(id) = self.devices.get_mut(&did).and_then(|d| d.take_key()) {
            self.revoke_key(&account, id);
        }
        info!(conn = %conn, account = %account, "signed out");
        // The device leaves the account (an always-on account stays in its rooms).
        self.leave_device(did, None, now);
        // Said to nc (a program learns it from `SignOut`'s answer): the connection goes too,
        // which `nc` only notices at the next line typed.
        self.bye(
            conn,
            "signed out, and this connection is closed: connect again to chat as a guest",
            "signed out",
        );
    }

    /// `/devices`: the account's remembered devices (each holding one of its device keys),
    /// oldest first, with when each was remembered and last used, and which is this one.
    pub(super) fn list_devices(&mut self, conn: ConnId) {
        let Some(account) = self.account_of_conn(conn) else {
            return self.not_signed_in(conn);
        };
        if self.cluster.is_some() {
            return self.devices_not_in_cluster(conn);
        }
        let this = self.key_of_conn(conn);
        let devices = self
            .accounts
            .by_name
            .get(&account)
            .map(|a| {
                a.keys
                    .iter()
                    .filter_map(|id| self.accounts.keys.get(id))
                    .map(|(_, k)| RememberedDevice {
                        id: RememberedDevice::id_of(k.id),
                        remembered: k.created,
                        used: k.used.clone(),
                        this: Some(k.id) == this,
                        label: self.accounts.labels.get(&k.id).cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.reply(conn, Reply::Msg(ServerMsg::Devices { devices }));
    }

    /// `/devices forget ID`: the remembered device `id` ([`RememberedDevice::id`]) is
    /// forgotten: its key is revoked (a sign-in with it fails from now on), and the device, if
    /// connected or waiting for a resume, is signed out as a `/logout` there would (told
    /// `NotSignedIn` with [`DEVICE_FORGOTTEN`], then `Bye`, and closed; its session no longer
    /// resumes). The way to shut out a lost laptop without a `/password`, which signs out
    /// every device.
    pub(super) fn forget_remembered(&mut self, conn: ConnId, id: u32, now: Millis) {
        let Some(account) = self.account_of_conn(conn) else {
            return self.not_signed_in(conn);
        };
        if self.cluster.is_some() {
            return self.devices_not_in_cluster(conn);
        }
        let words = RememberedDevice::id_words(id);
        let key = self.accounts.by_name.get(&account).and_then(|a| {
            a.keys
                .iter()
                .find(|k| RememberedDevice::id_of(**k) == id)
                .copied()
        });
        let Some(key) = key else {
            let detail = format!("you have no remembered device {words} (/devices lists them)");
            return self.error(conn, ErrorKind::Invalid, Re::Conn, detail);
        };
        if self.key_of_conn(conn) == Some(key) {
            let detail = format!("{words} is this device: /logout signs it out and forgets it");
            return self.error(conn, ErrorKind::Invalid, Re::Conn, detail);
        }
        self.revoke_key(&account, key);
        let uid = self.accounts.by_name.get(&account).and_then(|a| a.user);
        let holders: Vec<DeviceId> = uid
            .map(|uid| self.devices_of(uid))
            .unwrap_or_default()
            .into_iter()
            .filter(|did| self.devices.get(did).and_then(Device::key) == Some(key))
            .collect();
        let signed_out = !holders.is_empty();
        for did in holders {
            let on = self.devices.get_mut(&did).and_then(|d| {
                d.take_key();
                d.conn
            });
            match on {
                Some(c) => {
                    let detail = DEVICE_FORGOTTEN.to_owned();
                    self.error(c, ErrorKind::NotSignedIn, Re::Conn, detail);
                    self.leave_device(did, None, now);
                    self.bye(c, DEVICE_FORGOTTEN, "device forgotten");
                }
                None => {
                    if self.timers.is_set(super::Timer::Grace(did)) {
                        self.undetach(did, now);
                    }
                    self.leave_device(did, None, now);
                }
            }
        }
        info!(conn = %conn, %account, device = %words, signed_out, "remembered device forgotten");
        let said = if signed_out {
            format!("device {words} is forgotten and signed out: its key opens nothing now")
        } else {
            format!("device {words} is forgotten: its key opens nothing now")
        };
        if let Ok(text) = Text::new(&said) {
            self.reply(conn, Reply::Msg(ServerMsg::Done(text)));
        }
    }

    /// `/devices` in a cluster: refused in words (a device's last use is not kept in the
    /// cluster's accounts).
    /// What this connection's device is called ([`ClientMsg::ThisDevice`]): the label of a
    /// device key issued to it from now on. A key it holds already keeps its own.
    pub(super) fn this_device(&mut self, conn: ConnId, label: DeviceLabel) {
        debug!(conn = %conn, label = %label, "device label");
        self.accounts.asked_labels.insert(conn, label);
    }

    /// `/devices name ID LABEL`: the remembered device `id` ([`RememberedDevice::id`]), this
    /// one too, is called `label` from now on.
    pub(super) fn name_device(&mut self, conn: ConnId, id: u32, label: DeviceLabel) {
        let Some(account) = self.account_of_conn(conn) else {
            return self.not_signed_in(conn);
        };
        if self.cluster.is_some() {
            return self.devices_not_in_cluster(conn);
        }
        let words = RememberedDevice::id_words(id);
        let found = self.accounts.by_name.get(&account).and_then(|a| {
            let key = a.keys.iter().find(|k| RememberedDevice::id_of(**k) == id)?;
            Some((*key, a.name.clone()))
        });
        let Some((key, name)) = found else {
            let detail = format!("you have no remembered device {words} (/devices lists them)");
            return self.error(conn, ErrorKind::Invalid, Re::Conn, detail);
        };
        info!(conn = %conn, %account, device = %words, label = %label, "remembered device named");
        let said = format!("device {words} is called {label} now");
        self.accounts.labels.insert(key, label.clone());
        self.record(Write::KeyLabel {
            account: name,
            id: key,
            label,
        });
        if let Ok(text) = Text::new(&said) {
            self.reply(conn, Reply::Msg(ServerMsg::Done(text)));
        }
    }

    /// Device keys' labels as stored, at start-up (with [`Hub::restore`], after the accounts):
    /// a label of a key no account holds is left out.
    pub(super) fn load_device_labels(&mut self, labels: Vec<(u64, DeviceLabel)>) {
        for (id, label) in labels {
            if self.accounts.keys.contains_key(&id) {
                self.accounts.labels.insert(id, label);
            }
        }
    }

    fn devices_not_in_cluster(&mut self, conn: ConnId) {
        let detail = "remembered devices cannot be listed, named or forgotten on a cluster yet: \
                      /password forgets every remembered device"
            .to_owned();
        self.error(conn, ErrorKind::Unavailable, Re::Conn, detail);
    }

    /// Whether device key `id` is one of the keys of the account user `uid` is signed in as.
    pub(super) fn key_of_user_account(&self, id: u64, uid: UserId) -> bool {
        let owner = self.accounts.keys.get(&id).map(|(owner, _)| owner.as_str());
        owner.is_some() && owner == self.account_of(uid).as_deref()
    }

    /// The id of the device key `conn`'s device signed in with or was given.
    fn key_of_conn(&self, conn: ConnId) -> Option<u64> {
        self.conns
            .get(&conn)
            .and_then(|c| c.device())
            .and_then(|did| self.devices.get(&did))
            .and_then(Device::key)
    }

    /// How `conn` came in, as a remembered device's last use tells it.
    fn device_use(&self, conn: ConnId, now: Millis) -> Option<DeviceUse> {
        let c = self.conns.get(&conn)?;
        Some(DeviceUse {
            at: now,
            door: c.dialect()?.device_door(),
            address: Some(c.client_ip()),
        })
    }

    /// The device key `id` was used on `conn` (a sign-in with it, or its device's session
    /// resumed there): kept for `/devices`, and stored (not in a cluster, whose accounts keep
    /// no use: a write per resume to every node for what it cannot list).
    pub(super) fn key_used(&mut self, conn: ConnId, id: u64, now: Millis) {
        let Some(used) = self.device_use(conn, now) else {
            return;
        };
        let Some((owner, kept)) = self.accounts.keys.get_mut(&id) else {
            return;
        };
        kept.used = Some(used.clone());
        let owner = owner.clone();
        if self.cluster.is_some() {
            return;
        }
        if let Some(name) = self.account_name(&owner) {
            self.record(Write::KeyUsed {
                account: name,
                id,
                used,
            });
        }
    }

    pub(super) fn change_password(
        &mut self,
        conn: ConnId,
        old: Password,
        new: Password,
        now: Millis,
    ) {
        let Some(account) = self.account_of_conn(conn) else {
            return self.not_signed_in(conn);
        };
        let spared = self.known_here(conn, &account, now);
        if !self.may_start(conn, spared, now) {
            return;
        }
        if let Some(wait) = self.accounts.fails.wait(&account, now) {
            return self.throttled(conn, "too many failed tries for that account", wait);
        }
        if let Err(e) = check_password(&new) {
            return self.error(conn, ErrorKind::Invalid, Re::Conn, e.to_string());
        }
        let Some(hash) = self.accounts.by_name.get(&account).map(|a| a.hash.clone()) else {
            return;
        };
        self.queue_work(
            conn,
            |id| Work::Verify {
                id,
                password: old,
                hash,
            },
            Pending::CheckOld { conn, account, new },
        );
    }

    pub(super) fn read_marker(&mut self, conn: ConnId, room: RoomName, seq: Seq) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        // A guest's reading is its own client's business.
        let Some(account) = self.account_of(uid) else {
            return;
        };
        let Some(latest) = self.rooms.get(&room).map(|r| r.last_seq) else {
            return;
        };
        if !self
            .users
            .get(&uid)
            .is_some_and(|u| u.rooms.contains(&room))
        {
            return;
        }
        let seq = seq.min(latest);
        let Some(a) = self.accounts.by_name.get_mut(&account) else {
            return;
        };
        let marker = a.read.entry(room.clone()).or_insert(Seq(0));
        if seq <= *marker {
            return;
        }
        *marker = seq;
        let name = a.name.clone();
        self.account_write(
            &name,
            Write::ReadMarker {
                account: name.clone(),
                room: room.clone(),
                seq,
            },
        );
        // Told once stored: a local store holds this output until its batch is durable, and
        // the cluster answers the write (`handle_account_written`).
        if self.cluster.is_some() {
            let folded = name.folded();
            let ahead = self.accounts.own_writes.get(&folded).map_or(0, |o| o.0);
            let held = self.accounts.held_markers.entry(folded).or_default();
            // A later marker of the room tells more than the one it overtakes.
            held.retain(|h| h.room != room);
            held.push(HeldMarker { room, seq, ahead });
            return;
        }
        self.tell_read_up_to(uid, &room, seq);
    }

    /// An nc or IRC connection of an account closes: it was shown its rooms live and has no way
    /// to say what it read, so its account has read them up to now. Else such an account,
    /// signing in again, got everything since it registered as "missed", every time.
    pub(super) fn read_on_leaving(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if !matches!(c.kind(), Some(super::ConnKind::Text | super::ConnKind::Irc)) {
            return;
        }
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        if self.account_of(uid).is_none() {
            return;
        }
        let rooms: Vec<(RoomName, Seq)> = self
            .users
            .get(&uid)
            .map(|u| {
                u.rooms
                    .iter()
                    .filter_map(|r| self.rooms.get(r).map(|room| (r.clone(), room.last_seq)))
                    .collect()
            })
            .unwrap_or_default();
        for (room, seq) in rooms {
            self.read_marker(conn, room, seq);
        }
    }

    /// Tells every connection of `uid` that its account has read `room` up to `seq`.
    fn tell_read_up_to(&mut self, uid: UserId, room: &RoomName, seq: Seq) {
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            let msg = ServerMsg::ReadUpTo {
                room: room.clone(),
                seq,
            };
            self.reply(c, Reply::Msg(msg));
        }
    }

    // ---- outcomes ----

    /// `conn` is signed in to `account` (folded): it becomes a device of the account's user.
    fn signed_in(
        &mut self,
        conn: ConnId,
        account: &str,
        remember: bool,
        used_key: Option<u64>,
        now: Millis,
    ) {
        self.stats.sign_ins_ok += 1;
        self.note_sign_in(conn, account, used_key.is_none(), now);
        let Some(guest) = self.user_of(conn) else {
            return self.pre_authenticated(conn, account);
        };
        let Some(did) = self.conns.get(&conn).and_then(|c| c.device()) else {
            return;
        };
        let Some(a) = self.accounts.by_name.get(account) else {
            return;
        };
        let name = a.name.clone();
        let existing = a.user.filter(|u| self.users.contains_key(u));
        // Cluster mode: no user of the account here yet, so its rooms are joined here.
        let stored_rooms = match (existing, &self.cluster) {
            (None, Some(_)) => a.rooms.clone(),
            _ => Vec::new(),
        };
        let fresh_here = existing.is_none();
        let signed_as = name.clone();
        info!(conn = %conn, account = %name, "signed in");
        let key = if remember {
            Some(self.new_key(account, conn, None, now))
        } else {
            None
        };
        if let Some(d) = self.devices.get_mut(&did) {
            d.set_key(key.as_ref().map(DeviceKey::id).or(used_key));
        }
        // Its session record names the key (a restarted hub ends it if the key is forgotten).
        self.device_changed(did);
        if let Some(id) = used_key {
            self.key_used(conn, id, now);
        }
        let only_device = self.users.get(&guest).is_some_and(|u| u.devices.len() == 1);
        match existing {
            None if only_device => {
                // The guest becomes the account's user: same rooms, the account's nick.
                let guest_nick = self.users.get(&guest).map(|u| u.nick.clone());
                self.evict_nick_holder(&name, guest, now);
                self.rename(guest, name.clone(), Some(conn), now);
                if let Some(old) = guest_nick.filter(|n| n.folded() != name.folded()) {
                    self.cluster_release(&old);
                }
                if let Some(u) = self.users.get_mut(&guest) {
                    u.set_account(Some(account.to_owned()));
                }
                if let Some(a) = self.accounts.by_name.get_mut(account) {
                    a.user = Some(guest);
                }
                self.account_news(guest);
                self.account_rooms_changed(guest);
                self.tell_signed_in(conn, did, name, key);
                self.send_markers(conn, guest);
                self.deliver_held(guest);
            }
            _ => {
                // An always-on account with nothing connected comes back.
                let was_offline = existing
                    .and_then(|u| self.users.get(&u))
                    .is_some_and(|u| u.devices.is_empty());
                let uid = match existing {
                    Some(uid) => uid,
                    None => {
                        // The guest has other devices (it cannot: guests have one), or the
                        // account's user was gone: a fresh one.
                        self.evict_nick_holder(&name, guest, now);
                        let uid = self.new_offline_user(name.clone(), account);
                        if let Some(a) = self.accounts.by_name.get_mut(account) {
                            a.user = Some(uid);
                        }
                        uid
                    }
                };
                let guest_rooms = self.move_device(conn, did, guest, uid, now);
                self.reply(conn, Reply::Msg(ServerMsg::YourNick { nick: name.clone() }));
                self.tell_signed_in(conn, did, name, key);
                self.enter_account_rooms(conn, uid);
                // The guest's rooms the account was not in become the account's, each entered
                // once, after the account's own.
                for room in guest_rooms {
                    if !self
                        .users
                        .get(&uid)
                        .is_some_and(|u| u.rooms.contains(&room))
                    {
                        self.join_as_member(conn, room, now);
                    }
                }
                self.send_markers(conn, uid);
                self.tell_own_away(conn, uid);
                self.tell_put_out_away(conn, uid);
                self.deliver_held(uid);
                if was_offline {
                    self.account_presence_changed(uid, false);
                }
            }
        }
        if fresh_here {
            self.cluster_signed_in(conn, &signed_as, stored_rooms, now);
        }
    }

    /// `conn` asks to sign in to (or to register) the account it is signed in to: its client
    /// did not hear the answer (the connection dropped before it came, and the resume that
    /// followed was the account's). It is told again, with a new token and the account's
    /// markers, rather than refused: refused, the client would take itself for a guest while
    /// the server has it as the account. Nothing is granted that the connection did not have.
    fn signed_in_again(&mut self, conn: ConnId) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let (Some(did), Some(name)) = (
            self.conns.get(&conn).and_then(|c| c.device()),
            self.users.get(&uid).map(|u| u.nick.clone()),
        ) else {
            return;
        };
        self.tell_signed_in(conn, did, name, None);
        self.send_markers(conn, uid);
    }

    /// Tells `conn` (device `did`) it is signed in to `account`, with a new resume token (the
    /// session is the account's now) if its dialect resumes, and, if one was made, its device
    /// key. Not on nc or IRC: a token there was never shown to anyone, and made the device of a
    /// dropped connection wait out the resume window for a resume that cannot come (its account
    /// shown present, a direct message to it kept for that resume, not said to be away).
    fn tell_signed_in(
        &mut self,
        conn: ConnId,
        did: DeviceId,
        account: Nick,
        key: Option<DeviceKey>,
    ) {
        let resumable = self
            .conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.resumable());
        let token = resumable
            .then(|| self.issue_token(did))
            .flatten()
            .unwrap_or(crate::types::ResumeToken([0; 32]));
        self.reply(
            conn,
            Reply::Msg(ServerMsg::SignedIn {
                account,
                token,
                key,
            }),
        );
    }

    /// Signed in before registration (IRC's SASL): the user it registers as is the account's.
    fn pre_authenticated(&mut self, conn: ConnId, account: &str) {
        let Some(name) = self.accounts.by_name.get(account).map(|a| a.name.clone()) else {
            return;
        };
        info!(conn = %conn, account = %name, "signed in before registration");
        self.accounts.preauth.insert(conn, account.to_owned());
        let token = crate::types::ResumeToken([0; 32]);
        self.reply(
            conn,
            Reply::Msg(ServerMsg::SignedIn {
                account: name,
                token,
                key: None,
            }),
        );
    }

    /// A connection signed in before registration registers: it becomes a device of its
    /// account's user (made now if there is none), welcomed with the account's nick and its
    /// rooms. False if it was not signed in.
    pub(super) fn register_signed_in(&mut self, conn: ConnId, now: Millis) -> bool {
        let Some(account) = self.accounts.preauth.remove(&conn) else {
            return false;
        };
        let Some(a) = self.accounts.by_name.get(&account) else {
            return false;
        };
        let name = a.name.clone();
        let existing = a.user.filter(|u| self.users.contains_key(u));
        let stored_rooms = match (existing, &self.cluster) {
            (None, Some(_)) => a.rooms.clone(),
            _ => Vec::new(),
        };
        let was_offline = existing
            .and_then(|u| self.users.get(&u))
            .is_some_and(|u| u.devices.is_empty());
        let uid = match existing {
            Some(uid) => uid,
            None => {
                self.evict_nick_holder(&name, UserId(u64::MAX), now);
                let uid = self.new_offline_user(name.clone(), &account);
                if let Some(a) = self.accounts.by_name.get_mut(&account) {
                    a.user = Some(uid);
                }
                uid
            }
        };
        let did = self.new_device(uid, Some(conn));
        self.make_ready(conn, uid, did, now);
        debug!(conn = %conn, %name, "registered as its account");
        self.welcome(conn, name.clone(), None, false);
        self.enter_account_rooms(conn, uid);
        self.send_markers(conn, uid);
        self.tell_own_away(conn, uid);
        self.tell_put_out_away(conn, uid);
        self.deliver_held(uid);
        if was_offline {
            self.account_presence_changed(uid, false);
        }
        if existing.is_none() {
            self.cluster_signed_in(conn, &name, stored_rooms, now);
        }
        true
    }

    /// `conn` proved `account` (folded): by its password (`password`: a sign-in, IRC's SASL or
    /// a registration), or by a device key. Its address becomes known for the account (see
    /// [`KnownAddresses`]). A password that checks clears the account's failures, and its
    /// address's when they were all for this account. A device key proves the device, not
    /// the password those failures guessed at: it clears nothing (else an owner's remembered
    /// page, reloaded, gave a guesser three more free tries).
    fn note_sign_in(&mut self, conn: ConnId, account: &str, password: bool, now: Millis) {
        let ip = self.throttle_addr(conn);
        if let Some(ip) = ip {
            self.accounts.known.note(account, ip, now);
        }
        if password {
            if let Some(ip) = ip {
                self.accounts.addr_fails.clear_if_only(&ip, account);
            }
            self.accounts.fails.clear(&account.to_owned());
        }
    }

    /// Whether `account` (folded) signed in from `conn`'s address lately: then its tries from
    /// there are held by its own throttle only (see [`KnownAddresses`]). Never for an exempt
    /// address (loopback), which no address throttle holds anyway.
    fn known_here(&self, conn: ConnId, account: &str, now: Millis) -> bool {
        self.throttle_addr(conn)
            .is_some_and(|ip| self.accounts.known.knows(account, &ip, now))
    }

    /// A sign-in to `account` (folded, whether it exists or not) failed.
    fn sign_in_failed(&mut self, conn: ConnId, account: &str, now: Millis) {
        self.count_failed_sign_in(conn, account, now);
        let detail = "wrong account name or password".to_owned();
        self.error(conn, ErrorKind::SignInFailed, Re::Conn, detail);
    }

    /// A wrong password for `account` (folded, as asked) on `conn`: counted, logged, and
    /// throttled, per account and per address (a sign-in's, a password change's or an
    /// `OPER`'s alike); per account only from one of the account's known addresses.
    fn count_failed_sign_in(&mut self, conn: ConnId, account: &str, now: Millis) {
        self.stats.sign_ins_failed += 1;
        let known = self.known_here(conn, account, now);
        // Each try checked is counted (metrics) and logged at info, in the one form SECURITY.md
        // gives for fail2ban: `sign-in failed peer=IP account=NAME` (the name tried, folded; a
        // nick cannot hold a space, so the line cannot be forged by it). Tries refused by the
        // throttle are never checked and have no line, so the throttle bounds the lines too.
        // The start of throttling, once per account or address, is at warn.
        let peer = self.conns.get(&conn).map(super::conn::Conn::client_ip);
        if let Some(peer) = peer {
            // `known`: the account signed in from this address lately, so the address's count
            // was left alone (its own still counts): what tells an operator which rule held.
            info!(peer = %peer, account = %account, conn = %conn, known, "sign-in failed");
        }
        if self
            .accounts
            .fails
            .strike(&account.to_owned(), account, now)
        {
            warn!(
                conn = %conn,
                account = %account,
                failures = FREE_FAILS_ACCOUNT + 1,
                "sign-ins to an account throttled after repeated wrong passwords"
            );
        }
        if let Some(ip) = self.throttle_addr(conn)
            && !known
            && self.accounts.addr_fails.strike(&ip, account, now)
        {
            warn!(
                conn = %conn,
                peer = %ip,
                failures = FREE_FAILS_ADDRESS + 1,
                "sign-ins from an address throttled after repeated failures"
            );
        }
    }

    fn registered(
        &mut self,
        conn: ConnId,
        nick: Nick,
        hash: PasswordHash,
        remember: bool,
        now: Millis,
    ) {
        let folded = nick.folded();
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let still = self
            .users
            .get(&uid)
            .is_some_and(|u| u.nick.folded() == folded && u.account().is_none());
        if !still || self.accounts.by_name.contains_key(&folded) {
            let detail = format!("{nick} could not be registered (it changed meanwhile)");
            return self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
        }
        if let Some(ip) = self.throttle_addr(conn)
            && self.accounts.registrations.strike(&ip, "", now)
        {
            warn!(
                conn = %conn,
                peer = %ip,
                registrations = FREE_REGISTRATIONS,
                "registrations from an address throttled"
            );
        }
        if self.cluster_register(conn, &nick, &hash, remember, now) {
            // The cluster decides; `handle_account_created` goes on.
            return;
        }
        self.record(Write::Account(AccountRecord {
            name: nick.clone(),
            hash: hash.clone(),
            created: now,
        }));
        self.accounts
            .by_name
            .insert(folded.clone(), Account::new(nick.clone(), hash, now));
        if self.durable.is_some() {
            // Signed in once the store applied it: the operator may have added the name with
            // the tool since the server read its accounts, and then the store keeps the
            // operator's account (`handle_stale_accounts`). What the connection sends
            // meanwhile waits. The rooms its user is in go with the registration, in the same
            // batch, as they did when the sign-in came at once: an account stored without
            // them, its user's session restored after a crash, would be in rooms the store
            // does not give it.
            let rooms: Vec<RoomName> = self
                .users
                .get(&uid)
                .map(|u| u.rooms.iter().cloned().collect())
                .unwrap_or_default();
            if let Some(a) = self.accounts.by_name.get_mut(&folded) {
                a.rooms.clone_from(&rooms);
            }
            self.record(Write::AccountRooms {
                account: nick.clone(),
                rooms,
            });
            self.accounts.storing.push(Storing {
                conn,
                account: folded,
                remember,
            });
            self.accounts.busy.insert(conn);
            return;
        }
        info!(conn = %conn, account = %nick, "registered");
        self.signed_in(conn, &folded, remember, None, now);
    }

    /// The store did not apply the server's writes of `accounts` in the batches it reports
    /// durable next: the operator changed each with `natter-server account …` since the server
    /// last read it (`passwd`, `remove`, or `add` of a name registered here meanwhile). Call
    /// it before that [`Hub::handle_durable`]. A registration among them was not made: its
    /// registrant is told the name is taken, and not signed in.
    ///
    /// The hub then holds those accounts otherwise than the store: it wants its accounts read
    /// again ([`Hub::poll_accounts_reload`]), as at a SIGHUP, so the operator's change is taken
    /// up without one (a SIGHUP whose reload came while the account's own write was on its way
    /// left that account as the hub had it, and the log asked for another).
    pub fn handle_stale_accounts(&mut self, accounts: &[Nick], now: Millis) {
        self.now = self.now.max(now);
        if let Some(d) = self.durable.as_mut() {
            d.stale.extend(accounts.iter().map(Nick::folded));
            d.reload |= !accounts.is_empty();
        }
    }

    /// Whether the hub wants its accounts read from the store again and handed to
    /// [`Hub::load_accounts`], as at a SIGHUP: the store reported writes of accounts the
    /// operator changed ([`Hub::handle_stale_accounts`]). `true` once per such report; a shell
    /// that reads them after every write handed out is stored (as for a SIGHUP) reads the
    /// operator's change.
    pub fn poll_accounts_reload(&mut self) -> bool {
        self.durable
            .as_mut()
            .is_some_and(|d| core::mem::take(&mut d.reload))
    }

    /// Whether the account `folded` is a registration not yet stored (`Accounts::storing`).
    fn storing(&self, folded: &str) -> bool {
        self.accounts.storing.iter().any(|r| r.account == folded)
    }

    /// Registrations whose write the store reported on ([`Hub::handle_durable`]): each is
    /// signed in, or, if the store kept the operator's account of its name instead
    /// (`stale`), told the name is taken.
    pub(super) fn registrations_settled(&mut self, stale: &BTreeSet<String>, now: Millis) {
        if self.accounts.storing.is_empty() && self.accounts.changing.is_empty() {
            return;
        }
        let unsettled = self
            .durable
            .as_ref()
            .map(|d| d.accounts_unsettled())
            .unwrap_or_default();
        // A `/password` the store refused: its answer (held until now) said it was changed;
        // what follows it says it was not, and the accounts read again (`poll_accounts_reload`)
        // bring the operator's password, which ends the account's sessions.
        let (settled, waiting): (Vec<Storing>, Vec<Storing>) =
            core::mem::take(&mut self.accounts.changing)
                .into_iter()
                .partition(|r| !unsettled.contains(&r.account));
        self.accounts.changing = waiting;
        for Storing { conn, account, .. } in settled {
            if stale.contains(&account) && self.conns.get(&conn).is_some_and(|c| !c.closing()) {
                let detail = "your new password was not kept: the server's operator set this account's password meanwhile (natter-server account passwd), and that one stands".to_owned();
                self.error(conn, ErrorKind::Invalid, Re::Conn, detail);
            }
        }
        let (settled, waiting): (Vec<Storing>, Vec<Storing>) =
            core::mem::take(&mut self.accounts.storing)
                .into_iter()
                .partition(|r| !unsettled.contains(&r.account));
        self.accounts.storing = waiting;
        for Storing {
            conn,
            account,
            remember,
        } in settled
        {
            self.accounts.busy.remove(&conn);
            let Some(name) = self.account_name(&account) else {
                continue;
            };
            let here = self.conns.get(&conn).is_some_and(|c| !c.closing());
            if stale.contains(&account) {
                info!(conn = %conn, account = %name, "registration not stored: the operator made an account of that name meanwhile");
                // Not made: nothing of it stays (nobody was signed in to it).
                self.forget_account(&account);
                if here {
                    let detail = format!(
                        "{name} is registered already (the server's operator made that account); yours was not made"
                    );
                    self.error(conn, ErrorKind::NickTaken, Re::Nick(name), detail);
                }
            } else if here {
                info!(conn = %conn, account = %name, "registered");
                self.signed_in(conn, &account, remember, None, now);
            } else {
                // Its connection dropped before the store answered: the registration is kept
                // as stored (a kill now would keep it all the same), and the guest waiting for
                // its resume gives the name up, as to an owner signing in: a guest never holds
                // a registered name (another client signing in to it would evict it). Its
                // client checks the lost registration by signing in at its next welcome.
                info!(conn = %conn, account = %name, "registered; its registrant's connection was gone before it was stored");
                self.evict_nick_holder_for(
                    &name,
                    UserId(u64::MAX),
                    "your registration of it was stored after your connection dropped (sign in to it)",
                    now,
                );
            }
            if here {
                self.run_pending(conn, now);
            }
        }
    }

    /// Registrations whose write was in a batch the store failed (`records`, folded; `why` in
    /// words for people): not made. Each registrant is told at once that it stays a guest, and
    /// what it sent meanwhile goes on. Its account is forgotten, so the batch's retry writes its
    /// drop, which changes nothing in the store. Until the forty-second session's review a
    /// registrant waited for a retry to be stored, unanswered and its chat held, for as long as
    /// the disk stayed full (issue 16: refused with a clear error).
    pub(super) fn registrations_failed(&mut self, records: &[String], why: &str, now: Millis) {
        if self.accounts.storing.is_empty() {
            return;
        }
        let (failed, waiting): (Vec<Storing>, Vec<Storing>) =
            core::mem::take(&mut self.accounts.storing)
                .into_iter()
                .partition(|r| records.contains(&r.account));
        self.accounts.storing = waiting;
        for Storing { conn, account, .. } in failed {
            self.accounts.busy.remove(&conn);
            let name = self.account_name(&account);
            self.forget_account(&account);
            let Some(name) = name else {
                continue;
            };
            info!(conn = %conn, account = %name, %why, "registration not stored");
            if self.conns.get(&conn).is_some_and(|c| !c.closing()) {
                let detail = format!("{why}; {name} was not registered: try again later");
                self.error(conn, ErrorKind::Unavailable, Re::Nick(name), detail);
                self.run_pending(conn, now);
            }
        }
    }

    fn password_changed(&mut self, conn: ConnId, account: &str, hash: PasswordHash, now: Millis) {
        let Some(a) = self.accounts.by_name.get_mut(account) else {
            return;
        };
        a.hash = hash.clone();
        let name = a.name.clone();
        let created = a.created;
        let keys: Vec<u64> = a.keys.drain(..).collect();
        // This device's label goes to its new key (below), whatever its connection said.
        let mine_label = self
            .key_of_conn(conn)
            .and_then(|id| self.accounts.labels.get(&id).cloned());
        for id in keys {
            self.accounts.drop_key(id);
        }
        self.account_write(
            &name,
            Write::Account(AccountRecord {
                name: name.clone(),
                hash,
                created,
            }),
        );
        self.account_write(
            &name,
            Write::RevokeKeys {
                account: name.clone(),
            },
        );
        if self.durable.is_some() && self.cluster.is_none() {
            self.accounts.changing.push(Storing {
                conn,
                account: account.to_owned(),
                remember: false,
            });
        }
        let mine = self.conns.get(&conn).and_then(|c| c.device());
        // The device that changed it was remembered: it stays so, with a new key in place of
        // its revoked one (sent before the answer, so that its client takes it as part of the
        // change), rather than forgetting its sign-in without a word.
        let remembered = mine
            .and_then(|did| self.devices.get(&did))
            .and_then(Device::key)
            .is_some();
        self.end_sessions(account, mine, now);
        // The addresses the old password (or a key now revoked) was proved from stop being
        // known, all but this one's, which proved it just now: a password is changed because
        // the old one got out, and whoever signed in with it was else spared its address's
        // waits at the account for 30 days more (its guesses logged `known=true`, which the
        // fail2ban filter leaves out).
        self.accounts.known.forget(account);
        if let Some(ip) = self.throttle_addr(conn) {
            self.accounts.known.note(account, ip, now);
        }
        info!(conn = %conn, account = %name, "password changed");
        if let Some(did) = mine.filter(|_| remembered) {
            let key = self.new_key(account, conn, mine_label, now);
            if let Some(d) = self.devices.get_mut(&did) {
                d.set_key(Some(key.id()));
            }
            self.device_changed(did);
            self.tell_signed_in(conn, did, name, Some(key));
        }
        self.reply(conn, Reply::Msg(ServerMsg::PasswordChanged));
    }

    /// The password of `account` (folded) changed: no device keeps a key that no longer opens
    /// anything, and no device's session but `mine` (the one that changed it, if here)
    /// outlives the old password: one waiting for a resume is signed out now, and a connected
    /// one's resume tokens open nothing (it goes on until it drops, then signs in again).
    /// Else a token copied from another device, or a lost laptop's, kept the account open
    /// whatever the password became.
    fn end_sessions(&mut self, account: &str, mine: Option<DeviceId>, now: Millis) {
        // And the powers an `OPER` with the old password gave (until this review whoever had
        // taken them with a leaked password stayed an admin after the change).
        self.end_opers(|named| named == account);
        let Some(uid) = self.accounts.by_name.get(account).and_then(|a| a.user) else {
            return;
        };
        let devices = self.devices_of(uid);
        for did in devices {
            let Some(d) = self.devices.get_mut(&did) else {
                continue;
            };
            d.set_key(None);
            if Some(did) == mine {
                continue;
            }
            if d.conn.is_some() {
                self.revoke_tokens(did);
            } else {
                if self.timers.is_set(super::Timer::Grace(did)) {
                    self.undetach(did, now);
                }
                self.leave_device(did, None, now);
            }
        }
    }

    // ---- pieces ----

    /// Whether `conn` may start an account request now (not one already out, not throttled by
    /// address unless `spared` (a known address of the account tried, or its owner's device
    /// key), room in the work queue); refused with its reason otherwise.
    fn may_start(&mut self, conn: ConnId, spared: bool, now: Millis) -> bool {
        if self.accounts.busy.contains(&conn) {
            let detail = "your last sign-in request is still being checked".to_owned();
            self.error(conn, ErrorKind::Unavailable, Re::Conn, detail);
            return false;
        }
        if let Some(ip) = self.throttle_addr(conn).filter(|_| !spared)
            && let Some(wait) = self.accounts.addr_fails.wait(&ip, now)
        {
            self.throttled(conn, "too many failed sign-ins from your address", wait);
            return false;
        }
        if self.accounts.pending.len() >= MAX_WORK_QUEUED {
            let detail = "the server is busy checking passwords; try again shortly".to_owned();
            self.error(conn, ErrorKind::Unavailable, Re::Conn, detail);
            return false;
        }
        true
    }

    fn throttled(&mut self, conn: ConnId, why: &str, wait: Millis) {
        self.stats.sign_ins_throttled += 1;
        let detail = format!("{why}: {}", retry_words(wait));
        self.error(conn, ErrorKind::Throttled, Re::Conn, detail);
    }

    fn not_signed_in(&mut self, conn: ConnId) {
        let detail = "you are not signed in (/login nick password)".to_owned();
        self.error(conn, ErrorKind::NotSignedIn, Re::Conn, detail);
    }

    fn queue_work(&mut self, conn: ConnId, work: impl FnOnce(WorkId) -> Work, p: Pending) {
        let id = WorkId(self.accounts.next_work);
        self.accounts.next_work += 1;
        self.accounts.work.push_back(work(id));
        self.accounts.pending.insert(id, p);
        self.accounts.busy.insert(conn);
    }

    fn salt(&mut self) -> [u8; 16] {
        let mut salt = [0u8; 16];
        self.rng.fill_bytes(&mut salt);
        salt
    }

    /// The address `conn`'s failures count under (none for exempt addresses).
    fn throttle_addr(&self, conn: ConnId) -> Option<IpAddr> {
        self.conns
            .get(&conn)
            .and_then(|c| c.counted_ip())
            .map(super::address_key)
    }

    /// An account's name as registered, from its folded form.
    pub(super) fn account_name(&self, folded: &str) -> Option<Nick> {
        self.accounts.by_name.get(folded).map(|a| a.name.clone())
    }

    /// The folded account name of `uid`, if it is signed in.
    pub(super) fn account_of(&self, uid: UserId) -> Option<String> {
        self.users
            .get(&uid)
            .and_then(|u| u.account().map(str::to_owned))
    }

    fn account_of_conn(&self, conn: ConnId) -> Option<String> {
        self.user_of(conn).and_then(|u| self.account_of(u))
    }

    /// The folded account a device key opens, compared in constant time.
    fn key_owner(&self, key: &DeviceKey) -> Option<String> {
        use subtle::ConstantTimeEq;
        let (owner, kept) = self.accounts.keys.get(&key.id())?;
        let shown = KeyRecord::of(key, Millis::ZERO).hash;
        bool::from(kept.hash.0.ct_eq(&shown.0)).then(|| owner.clone())
    }

    /// A new device key for `account`, given to `conn`'s device (its first use), labelled
    /// `label` (the label of the key it replaces), else as the connection said
    /// ([`ClientMsg::ThisDevice`]).
    fn new_key(
        &mut self,
        account: &str,
        conn: ConnId,
        label: Option<DeviceLabel>,
        now: Millis,
    ) -> DeviceKey {
        // Its short id (`/devices`) is unique among the account's keys too, so that
        // `/devices forget ID` names one device.
        let taken: FxHashSet<u32> = self
            .accounts
            .by_name
            .get(account)
            .map(|a| {
                a.keys
                    .iter()
                    .map(|id| RememberedDevice::id_of(*id))
                    .collect()
            })
            .unwrap_or_default();
        let key = loop {
            let mut k = [0u8; 32];
            self.rng.fill_bytes(&mut k);
            let k = DeviceKey(k);
            if !self.accounts.keys.contains_key(&k.id())
                && !taken.contains(&RememberedDevice::id_of(k.id()))
            {
                break k;
            }
        };
        let mut rec = KeyRecord::of(&key, now);
        rec.used = self.device_use(conn, now);
        let Some(a) = self.accounts.by_name.get_mut(account) else {
            return key;
        };
        a.keys.push_back(rec.id);
        let name = a.name.clone();
        let oldest = (a.keys.len() > MAX_DEVICE_KEYS)
            .then(|| a.keys.pop_front())
            .flatten();
        self.accounts
            .keys
            .insert(rec.id, (account.to_owned(), rec.clone()));
        let id = rec.id;
        self.account_write(
            &name,
            Write::AddKey {
                account: name.clone(),
                key: rec,
            },
        );
        // A cluster keeps no labels (its accounts carry keys without them: `/devices` is
        // refused there).
        let label = label.or_else(|| self.accounts.asked_labels.get(&conn).cloned());
        if self.cluster.is_none()
            && let Some(label) = label
        {
            self.accounts.labels.insert(id, label.clone());
            self.record(Write::KeyLabel {
                account: name,
                id,
                label,
            });
        }
        if let Some(old) = oldest {
            self.revoke_key(account, old);
        }
        key
    }

    fn revoke_key(&mut self, account: &str, id: u64) {
        self.accounts.drop_key(id);
        let mut name = None;
        if let Some(a) = self.accounts.by_name.get_mut(account) {
            a.keys.retain(|k| *k != id);
            name = Some(a.name.clone());
        }
        match name.or_else(|| Nick::new(account).ok()) {
            Some(name) => self.account_write(&name, Write::RevokeKey { id }),
            None => self.record(Write::RevokeKey { id }),
        }
    }

    /// A guest holding `name` (not `except`) is renamed to a guest nick and told why.
    fn evict_nick_holder(&mut self, name: &Nick, except: UserId, now: Millis) {
        self.evict_nick_holder_for(name, except, "its owner signed in", now);
    }

    /// [`Hub::evict_nick_holder`], saying `why` the account wants its nick now.
    fn evict_nick_holder_for(&mut self, name: &Nick, except: UserId, why: &str, now: Millis) {
        let Some(holder) = self.nicks.get(&self.users, name.folded_key().as_str()) else {
            return;
        };
        if holder == except {
            return;
        }
        let guest = self.guest_nick();
        let on: Vec<ConnId> = self.user_conns(holder).collect();
        // A guest is one connection (none while it waits for a resume): it is told by its
        // `YourNick`, so, as after a `/nick` of its own, it is spared the room event about
        // itself unless its dialect shows its own events (an IRC client would read a second
        // `NICK` from a nick it no longer has).
        self.rename(holder, guest.clone(), on.first().copied(), now);
        for c in on {
            let detail = format!("{name}{REGISTERED} and {why}: you are now {guest}");
            self.error(c, ErrorKind::NickTaken, Re::Nick(name.clone()), detail);
        }
    }

    /// Renames `uid` (the nick must be free, or its own): a nick event in each of its rooms and
    /// `YourNick` on each of its connections. `by`: the connection that asked, which does not
    /// see its own event if its dialect does not echo.
    fn rename(&mut self, uid: UserId, nick: Nick, by: Option<ConnId>, now: Millis) {
        if let Some(u) = self.users.get(&uid)
            && u.nick != nick
        {
            let ident = self.ident_of(uid, u);
            let old = u.nick.clone();
            let signed_in = u.account().is_some();
            self.whowas.record(uid, &old, ident, signed_in, now);
        }
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        let old = core::mem::replace(&mut u.nick, nick.clone());
        if old == nick {
            return;
        }
        let rooms: Vec<RoomName> = u.rooms.iter().cloned().collect();
        self.nicks.remove(old.folded_key().as_str(), uid);
        self.nicks.insert(&self.users, nick.folded_key(), uid);
        self.monitored_rename(&old, &nick);
        self.session_changed(uid);
        let skip = by.map_or(super::deliver::Skip::None, |c| self.skip_own(c));
        self.announce_rename(uid, &rooms, &old, &nick, skip, now);
    }

    /// A user for `account` with no device (always-on after a restart, or before its device
    /// moves in).
    fn new_offline_user(&mut self, name: Nick, account: &str) -> UserId {
        let uid = UserId(self.next_user);
        self.next_user += 1;
        self.nicks.insert(&self.users, name.folded_key(), uid);
        self.attach_gen += 1;
        let mut user = super::User::new(uid, name.clone());
        user.set_account(Some(account.to_owned()));
        self.users.insert(uid, Box::new(user));
        self.monitored_on(&name);
        uid
    }

    /// The user of a resume session restored at start-up, when its nick is an account's and
    /// the account has no user yet (not always-on, or in no room): the session was one of the
    /// account's devices (a guest never keeps a registered nick), so its user is the account's,
    /// as a session of an always-on account's offline user is. Else the device came back as a
    /// guest under the account's name, and the account's next sign-in renamed it away.
    pub(super) fn restored_account_user(&mut self, uid: UserId) {
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        let folded = u.nick.folded();
        let Some(a) = self.accounts.by_name.get_mut(&folded) else {
            return;
        };
        if a.user.is_some() {
            return;
        }
        u.set_account(Some(folded));
        a.user = Some(uid);
    }

    /// The writes that store `name`'s account as the hub holds it now (its record, rooms, read
    /// markers, device keys, kept messages and notes; or its removal when it is gone): what a failed batch's writes
    /// about it are replaced with (see [`Hub::handle_store_failed`]). Batches after that one
    /// wrote no later state than now, so nothing newer is overwritten.
    pub(super) fn account_as_now(&self, name: &Nick) -> Vec<Write> {
        let Some(a) = self.accounts.by_name.get(&name.folded()) else {
            return vec![Write::DropAccount(name.clone())];
        };
        let account = a.name.clone();
        let mut writes = vec![
            // Its time of registration, not now's: a failed registration's row is made by
            // this write, and a reload reading another time would take it for another account.
            Write::Account(AccountRecord {
                name: account.clone(),
                hash: a.hash.clone(),
                created: a.created,
            }),
            Write::AccountRooms {
                account: account.clone(),
                rooms: a.rooms.clone(),
            },
        ];
        writes.extend(a.read.iter().map(|(room, seq)| Write::ReadMarker {
            account: account.clone(),
            room: room.clone(),
            seq: *seq,
        }));
        writes.push(Write::RevokeKeys {
            account: account.clone(),
        });
        for id in &a.keys {
            if let Some((_, kept)) = self.accounts.keys.get(id) {
                writes.push(Write::AddKey {
                    account: account.clone(),
                    key: kept.clone(),
                });
            }
        }
        writes.push(Write::HeldDirects {
            account: account.clone(),
            held: a.held.clone(),
        });
        writes.push(Write::AwayNotes {
            account: account.clone(),
            notes: a
                .user
                .and_then(|uid| self.users.get(&uid)?.extra.as_ref())
                .map_or_else(Vec::new, |e| e.put_out_away.clone()),
        });
        writes
    }

    /// Keeps a direct message for the account `to` (folded), which has nothing connected, to
    /// deliver when a device of it resumes or it next signs in ([`Hub::deliver_held`]); written
    /// to the store with this
    /// batch, so the sender's echo (which follows the write) waits until it is durable. `Err`
    /// says why it is not kept: [`MAX_HELD_DIRECTS`] kept for it already, or
    /// [`AccountsConfig::kept_bytes`] reached (0: nothing is kept). Not in a cluster, which
    /// keeps them where every node reads them ([`Hub::cluster_hold`]).
    pub(super) fn hold_direct(&mut self, to: &str, held: HeldDirect) -> Result<(), String> {
        let Some(a) = self.accounts.by_name.get_mut(to) else {
            return Err(format!("nobody is called {}", held.msg.to));
        };
        if a.held.len() >= MAX_HELD_DIRECTS {
            return Err(format!(
                "{} is not connected and {MAX_HELD_DIRECTS} messages wait for them already; \
                 try again once they are back",
                a.name
            ));
        }
        let cost = held_cost(&held);
        if self.config.accounts.kept_bytes == 0 {
            return Err(format!(
                "{} is not connected; direct messages are not kept",
                a.name
            ));
        }
        if self.accounts.held_bytes + cost > self.config.accounts.kept_bytes {
            warn!(
                bytes = self.accounts.held_bytes,
                "direct messages kept for accounts with nothing connected are at their limit"
            );
            return Err(format!(
                "{} is not connected, and the server keeps no more messages for accounts \
                 that are away right now; try again once they are back",
                a.name
            ));
        }
        self.accounts.held_bytes += cost;
        a.held.push(held);
        let write = Write::HeldDirects {
            account: a.name.clone(),
            held: a.held.clone(),
        };
        let name = a.name.clone();
        self.account_write(&name, write);
        Ok(())
    }

    /// The account of `uid` signed in (or a device of it resumed): the direct messages kept
    /// for it while it had nothing connected go to every connection it has, oldest first, as
    /// they were sent (their
    /// time is when they were sent), and are no longer kept. Delivered at least once: a crash
    /// before the store forgets them delivers them again at the next sign-in.
    pub(super) fn deliver_held(&mut self, uid: UserId) {
        let Some(account) = self.account_of(uid) else {
            return;
        };
        let Some(a) = self.accounts.by_name.get_mut(&account) else {
            return;
        };
        if let Some(cl) = self.cluster.as_mut() {
            // Kept where every node reads them ([`Hub::handle_held`] delivers them).
            cl.ask_held(a.name.clone());
            return;
        }
        if a.held.is_empty() {
            return;
        }
        let held = core::mem::take(&mut a.held);
        let name = a.name.clone();
        self.accounts.held_bytes = self
            .accounts
            .held_bytes
            .saturating_sub(held.iter().map(held_cost).sum());
        let conns: Vec<ConnId> = self.user_conns(uid).collect();
        for h in &held {
            let signed_in = self.accounts.registered(&h.msg.from);
            let msg = if h.notice {
                ServerMsg::DirectNotice(h.msg.clone())
            } else {
                ServerMsg::Direct(h.msg.clone())
            };
            for &c in &conns {
                self.reply(
                    c,
                    Reply::Direct {
                        msg: msg.clone(),
                        tags: None,
                        signed_in,
                    },
                );
            }
        }
        debug!(account = %name, messages = held.len(), "kept direct messages delivered");
        self.account_write(
            &name,
            Write::HeldDirects {
                account: name.clone(),
                held: Vec::new(),
            },
        );
    }

    /// An always-on account's user at start-up, in its rooms (those that exist).
    fn offline_user(&mut self, account: &str, rooms: Vec<RoomName>) {
        let Some(name) = self.accounts.by_name.get(account).map(|a| a.name.clone()) else {
            return;
        };
        if self.nicks.contains_key(&self.users, account) {
            return;
        }
        let uid = self.new_offline_user(name, account);
        for room in rooms {
            if let Some(r) = self.rooms.get_mut(&room) {
                self.attach_gen += 1;
                r.members.insert(uid);
                if let Some(u) = self.users.get_mut(&uid) {
                    let nick = u.nick.clone();
                    u.rooms.insert(room.clone());
                    self.record_presence(&room, &nick, true);
                }
            }
        }
        if let Some(a) = self.accounts.by_name.get_mut(account) {
            a.user = Some(uid);
        }
    }

    /// Moves `conn`'s device from the guest `from` to the account's user `to`: the connection
    /// leaves the guest's rooms and the guest quits if that was its only device. Returns the
    /// guest's rooms, for the account to join those it is not in (once the connection was
    /// shown the account's own).
    fn move_device(
        &mut self,
        conn: ConnId,
        did: DeviceId,
        from: UserId,
        to: UserId,
        now: Millis,
    ) -> Vec<RoomName> {
        let guest_rooms: Vec<RoomName> = self
            .users
            .get(&from)
            .map(|u| u.rooms.iter().cloned().collect())
            .unwrap_or_default();
        for room in &guest_rooms {
            self.reply(conn, Reply::Msg(ServerMsg::Parted { room: room.clone() }));
            if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
                d.left(room, None);
            }
        }
        if let Some(u) = self.users.get_mut(&from) {
            self.attach_gen += 1;
            u.devices.retain(|d| *d != did);
        }
        if self.users.get(&from).is_some_and(|u| u.devices.is_empty()) {
            let reason = Text::new(super::dialect::QUIT_SIGNED_IN).ok();
            self.quit_user(from, reason, now);
        }
        if let Some(d) = self.devices.get_mut(&did) {
            d.user = to;
        }
        if let Some(u) = self.users.get_mut(&to) {
            self.attach_gen += 1;
            u.devices.push(did);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.make_ready(to, did);
        }
        self.device_changed(did);
        guest_rooms
    }

    /// Shows `conn` each room of `uid`: the room as it is now, then what came after the
    /// account's read marker (from the store when the ring lost it), or its recent lines.
    fn enter_account_rooms(&mut self, conn: ConnId, uid: UserId) {
        let account = self.account_of(uid);
        let rooms: Vec<RoomName> = self
            .users
            .get(&uid)
            .map(|u| u.rooms.iter().cloned().collect())
            .unwrap_or_default();
        for room in rooms {
            let Some(latest) = self.rooms.get(&room).map(|r| r.last_seq) else {
                continue;
            };
            if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
                d.entered(&room);
            }
            if let Some(joined) = self.joined_msg(&room, latest) {
                self.reply(conn, Reply::Msg(joined));
            }
            let now = self.now;
            self.tell_standing_on(conn, uid, &room, now);
            let marker = account
                .as_ref()
                .and_then(|a| self.accounts.by_name.get(a))
                .and_then(|a| a.read.get(&room).copied());
            match marker {
                Some(after) if after < latest => {
                    // Shown from its marker on: an `Older` from 0 pages back from there.
                    self.scroll_from(conn, &room, after.next());
                    let waits = self.history_waits(conn, &room, after);
                    if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
                        d.missed_waits(&room, waits);
                    }
                    self.reply(conn, Reply::Note(Note::MissedStart(room.clone())));
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.rare_mut().footers.insert(room.clone());
                    }
                    self.history(conn, room.clone(), after);
                    let cut = self
                        .conns
                        .get_mut(&conn)
                        .filter(|c| c.rare().is_some_and(|r| r.footers.contains(&room)))
                        .and_then(|c| c.dialect_mut())
                        .and_then(|d| d.missed_cut());
                    if let Some(end) = cut {
                        self.reply(conn, Reply::Own(end));
                    }
                }
                Some(_) => {}
                None => self.replay_recent(conn, &room, latest),
            }
        }
    }

    /// A device joining an account's user that is away (set on another of its doors, or
    /// before it last went offline) is told so, as that door was: every door of one person
    /// says the same.
    fn tell_own_away(&mut self, conn: ConnId, uid: UserId) {
        let Some(away) = self.users.get(&uid).and_then(|u| u.away().cloned()) else {
            return;
        };
        self.reply(conn, Reply::Info(super::query::Info::AwayNow(Some(away))));
        self.note_told_away(conn, true);
    }

    /// A device signing in to an always-on account that was put out of rooms while nothing
    /// of it was connected (kicked, banned, the room closed) is told who did it and why, once
    /// (the rooms are no longer among those it comes back to, and nothing else would say why);
    /// a resuming device too, of the rooms its resume did not replay. A client that cannot
    /// show them (natter's before protocol version 10, which has no `Done`) leaves them for
    /// the next that can: until the thirty-ninth session they were used up on it unseen.
    pub(super) fn tell_put_out_away(&mut self, conn: ConnId, uid: UserId) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let kept = u.extra.as_ref().map_or(&[][..], |e| &e.put_out_away[..]);
        if kept.is_empty() {
            return;
        }
        let shown = |words: &str| {
            let note = Reply::Note(Note::NickOnly(words.to_owned()));
            self.conns
                .get(&conn)
                .and_then(|c| c.dialect())
                .and_then(|d| d.render(&note, Some(&u.nick)))
                .is_some()
        };
        if !kept.iter().all(|(_, w)| shown(w)) {
            return;
        }
        let told = self
            .users
            .get_mut(&uid)
            .and_then(|u| u.extra.as_mut())
            .map(|e| core::mem::take(&mut e.put_out_away))
            .unwrap_or_default();
        if let Some(u) = self.users.get_mut(&uid) {
            u.drop_empty_extra();
        }
        // Forgotten in the store too: the words wait for that write (as any output after a
        // write does), so a crash before it is stored tells them again, never not at all.
        self.write_away_notes(uid);
        for (_, words) in told {
            self.reply(conn, Reply::Note(Note::NickOnly(words)));
        }
    }

    /// `uid`'s client heard what put it out of `room` some other way (a resume's replay of
    /// the room's event): the words kept for its sign-in go.
    pub(super) fn forget_put_out_away(&mut self, uid: UserId, room: &RoomName) {
        let mut forgot = false;
        if let Some(u) = self.users.get_mut(&uid) {
            if let Some(e) = u.extra.as_mut() {
                let before = e.put_out_away.len();
                e.put_out_away.retain(|(r, _)| r != room);
                forgot = e.put_out_away.len() < before;
            }
            u.drop_empty_extra();
        }
        if forgot {
            self.write_away_notes(uid);
        }
    }

    /// Writes the notes kept for `uid`'s account ([`Hub::keep_away_note`]) as they are now
    /// ([`Write::AwayNotes`]), so a restarted hub still tells them ([`Hub::restore_away_notes`]).
    /// Not in a cluster, whose hubs keep them in memory only (lost with the node).
    pub(super) fn write_away_notes(&mut self, uid: UserId) {
        if self.cluster.is_some() {
            return;
        }
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let Some(a) = u.account().and_then(|f| self.accounts.by_name.get(f)) else {
            return;
        };
        let write = Write::AwayNotes {
            account: a.name.clone(),
            notes: u
                .extra
                .as_ref()
                .map_or_else(Vec::new, |e| e.put_out_away.clone()),
        };
        self.record(write);
    }

    /// A restarted hub takes back the notes kept for accounts put out of rooms while away
    /// ([`crate::persist::Loaded::away_notes`]), onto each account's user (an always-on one,
    /// or the one of its restored resume sessions). An always-on account put out of its last
    /// room has no user at start (one is made for an always-on account in a room): it gets
    /// its offline user back, as it had before the restart, to hold them. An account with no
    /// user still (not always-on, its sessions ran out while the server was down) has no
    /// sign-in to wait for them as a user: its notes are forgotten, in the store too.
    pub(super) fn restore_away_notes(&mut self, notes: Vec<(Nick, Vec<(RoomName, String)>)>) {
        for (account, mut kept) in notes {
            if kept.is_empty() {
                continue;
            }
            let folded = account.folded();
            let user_of = |hub: &Hub| hub.accounts.by_name.get(&folded).and_then(|a| a.user);
            if self.cluster.is_none()
                && self.config.accounts.always_on
                && self.accounts.by_name.contains_key(&folded)
                && user_of(self).is_none()
            {
                self.offline_user(&folded, Vec::new());
            }
            let uid = user_of(self);
            let Some(u) = uid.and_then(|uid| self.users.get_mut(&uid)) else {
                if self.cluster.is_none() {
                    self.record(Write::AwayNotes {
                        account,
                        notes: Vec::new(),
                    });
                }
                continue;
            };
            kept.drain(..kept.len().saturating_sub(crate::limits::MAX_ROOMS_PER_USER));
            u.extra_mut().put_out_away = kept;
        }
    }

    /// A device resuming (`did`, now on `conn`) is told its user's away as a signing-in one is,
    /// and told it is back when its client last heard it was away: another device may have
    /// changed either while this one waited for its resume, and nothing reaches a device with
    /// no connection. A device that was not away and is not says nothing of it, unless its
    /// resume `took_over` a connection that may have been dead (what it was told there may
    /// never have arrived).
    pub(super) fn tell_away_on_resume(
        &mut self,
        conn: ConnId,
        uid: UserId,
        did: DeviceId,
        took_over: bool,
    ) {
        let away = self.users.get(&uid).and_then(|u| u.away().cloned());
        let told = self.devices.get(&did).is_some_and(Device::told_away);
        if away.is_some() || told || took_over {
            let now_away = away.is_some();
            self.reply(conn, Reply::Info(super::query::Info::AwayNow(away)));
            self.note_told_away(conn, now_away);
        }
    }

    /// `conn`'s device has just been told its user is away (`true`) or back.
    pub(super) fn note_told_away(&mut self, conn: ConnId, away: bool) {
        let did = self.conns.get(&conn).and_then(|c| c.device());
        if let Some(d) = did.and_then(|did| self.devices.get_mut(&did)) {
            d.set_told_away(away);
        }
    }

    /// The account's read markers, one per room it is in.
    fn send_markers(&mut self, conn: ConnId, uid: UserId) {
        let Some(account) = self.account_of(uid) else {
            return;
        };
        let Some(a) = self.accounts.by_name.get(&account) else {
            return;
        };
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let markers: Vec<(RoomName, Seq)> = a
            .read
            .iter()
            .filter(|(r, _)| u.rooms.contains(r))
            .map(|(r, s)| (r.clone(), *s))
            .collect();
        for (room, seq) in markers {
            self.reply(conn, Reply::Msg(ServerMsg::ReadUpTo { room, seq }));
        }
    }

    /// `uid`'s rooms changed: an account's are written (it stays in them while offline).
    pub(super) fn account_rooms_changed(&mut self, uid: UserId) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let Some(account) = u.account() else {
            return;
        };
        let rooms: Vec<RoomName> = u.rooms.iter().cloned().collect();
        let Some(a) = self.accounts.by_name.get_mut(account) else {
            return;
        };
        if a.rooms.len() == rooms.len() && rooms.iter().all(|r| a.rooms.contains(r)) {
            // Nothing changed: nothing is written. In a cluster a write of the rooms this node
            // knows could overwrite rooms another node wrote that this one has not heard of
            // yet (a join there followed at once by a sign-in here).
            return;
        }
        a.rooms.clone_from(&rooms);
        let name = a.name.clone();
        self.account_write(
            &name,
            Write::AccountRooms {
                account: name.clone(),
                rooms,
            },
        );
    }

    /// An admin put `account`'s user out of every room (a kill, a server ban): the account is in
    /// none of them any more, in the store too, so that a restart (which puts always-on
    /// accounts back into their stored rooms) does not bring it back, into a room closed
    /// meanwhile as much as any other.
    pub(super) fn account_out_of_its_rooms(&mut self, account: &str) {
        let Some(a) = self.accounts.by_name.get_mut(account) else {
            return;
        };
        if a.rooms.is_empty() {
            return;
        }
        a.rooms.clear();
        let name = a.name.clone();
        self.account_write(
            &name,
            Write::AccountRooms {
                account: name.clone(),
                rooms: Vec::new(),
            },
        );
    }

    /// `room` goes from the stored rooms of `uid`'s account (and only it: in a cluster, the
    /// other stored rooms' joins may still be on their way at sign-in).
    pub(super) fn account_drops_room(&mut self, uid: UserId, room: &RoomName) {
        let Some(account) = self.users.get(&uid).and_then(|u| u.account()) else {
            return;
        };
        let Some(a) = self.accounts.by_name.get_mut(account) else {
            return;
        };
        if !a.rooms.contains(room) {
            return;
        }
        a.rooms.retain(|r| r != room);
        let (name, rooms) = (a.name.clone(), a.rooms.clone());
        self.account_write(
            &name,
            Write::AccountRooms {
                account: name.clone(),
                rooms,
            },
        );
    }

    /// Whether a user with no device stays (an always-on account's).
    pub(super) fn stays_offline(&self, uid: UserId) -> bool {
        self.config.accounts.always_on
            && self.users.get(&uid).is_some_and(|u| u.account().is_some())
    }

    /// A user is gone: its account (if any) no longer has one.
    pub(super) fn user_gone(&mut self, account: Option<&str>) {
        if let Some(a) = account.and_then(|a| self.accounts.by_name.get_mut(a)) {
            a.user = None;
        }
    }

    /// The operator removed an account: its keys stop working, its rooms' founder, operator
    /// and voice are lifted ([`Hub::account_rights_gone`]); its user stays a guest-like
    /// user until it leaves, and leaves at once if nothing of it is connected (an always-on
    /// account's user has nobody behind it to leave later, and would hold the nick and its
    /// rooms until a restart).
    fn forget_account(&mut self, account: &str) {
        let Some(a) = self.accounts.by_name.remove(account) else {
            return;
        };
        // Whoever registers the name next has proved nothing from anywhere.
        self.accounts.known.forget(account);
        // An `OPER` with its password gave its powers: they go with it, as its sessions do
        // (until this review they stayed, and a `TAKEOVER` made the user's own nick the
        // founder, finding no account of that name).
        self.end_opers(|named| named == account);
        self.accounts.held_bytes = self
            .accounts
            .held_bytes
            .saturating_sub(a.held.iter().map(held_cost).sum());
        for id in a.keys {
            self.accounts.drop_key(id);
        }
        // Its rooms' founder, operator and voice: not whoever registers the name next. Said
        // by one node of a cluster: the one with the account's user.
        let now = self.now;
        let announce = self.cluster.is_none() || a.user.is_some();
        self.account_rights_gone(&a.name, Some(a.created), announce, now);
        if let Some(uid) = a.user
            && let Some(u) = self.users.get_mut(&uid)
        {
            u.set_account(None);
            self.account_news(uid);
            // Its connected devices are told: they are guests now (IRC: `901`).
            let on: Vec<ConnId> = self.user_conns(uid).collect();
            for c in on {
                let detail = ACCOUNT_REMOVED.to_owned();
                self.error(c, ErrorKind::NotSignedIn, Re::Conn, detail);
            }
            if self.users.get(&uid).is_some_and(|u| u.devices.is_empty()) {
                let reason = Text::new(super::dialect::QUIT_ACCOUNT_REMOVED).ok();
                self.quit_user(uid, reason, self.now);
            }
        }
    }

    /// `conn` has an account request being checked (what it sends meanwhile waits).
    pub(super) fn account_busy(&self, conn: ConnId) -> bool {
        !self.accounts.busy.is_empty() && self.accounts.busy.contains(&conn)
    }

    /// `conn` is gone: its account work is dropped when it comes back.
    pub(super) fn forget_account_work(&mut self, conn: ConnId) {
        self.accounts.busy.remove(&conn);
        self.accounts.preauth.remove(&conn);
        self.accounts.asked_labels.remove(&conn);
    }
}

/// Cluster mode (issue 23): accounts live where every node reads them (natter-cluster keeps
/// them in a JetStream key-value bucket), not in this hub's store. A registration is created
/// there first ([`ClusterOut::CreateAccount`], answered by [`Hub::handle_account_created`]);
/// every later change goes out as [`ClusterOut::AccountWrite`]; and each node is told every
/// account as it is after any node's change ([`Hub::handle_account`],
/// [`Hub::handle_account_dropped`]), this node's own included.
impl Hub {
    /// An account's write: to the store's batch, and in cluster mode to the cluster.
    fn account_write(&mut self, account: &Nick, write: Write) {
        if self.cluster.is_some() {
            let a = account.clone();
            let w = write.clone();
            // The registration this node knows: a write on its way while the operator removes
            // the account and adds it again does not land on the new one (session 42).
            let registered = self
                .accounts
                .by_name
                .get(&account.folded())
                .map(|a| a.created);
            self.cluster_ask(|_| ClusterOut::AccountWrite {
                account: a,
                registered,
                write: w,
            });
            let own = self
                .accounts
                .own_writes
                .entry(account.folded())
                .or_default();
            own.0 += 1;
        }
        self.record(write);
    }

    /// Cluster mode: this node's oldest [`ClusterOut::AccountWrite`] of `account` (folded) not
    /// yet answered is done: `Some(revision)`, the cluster's version of the account after it,
    /// or `None` if it could not be written (the account goes back to what the cluster says with
    /// its next news of it).
    /// Until every write of an account is answered, and then until news of the account at
    /// least that recent comes ([`Hub::handle_account`]), news of it is not applied: it would
    /// take back for a moment what this node did (a revoked key opening again). The latest
    /// news that came while a write was unanswered is held and applied once every write is
    /// answered, if it is at least as recent: it may hold another node's write merged in.
    pub fn handle_account_written(&mut self, account: &str, revision: Option<u64>) {
        let Some(own) = self.accounts.own_writes.get_mut(account) else {
            return;
        };
        own.0 = own.0.saturating_sub(1);
        own.1 = own.1.max(revision.unwrap_or(0));
        let unanswered = own.0;
        self.release_markers(account, revision.is_some());
        if unanswered == 0
            && let Some((news, revision)) = self.accounts.held_news.remove(account)
        {
            let now = self.now;
            self.handle_account(news, revision, now);
        }
    }

    /// Cluster mode: whether some of this node's account writes are not answered yet (a node
    /// shutting down waits for them, as a store is closed after its last batch).
    pub fn account_writes_unanswered(&self) -> bool {
        self.accounts.own_writes.values().any(|o| o.0 > 0)
    }

    /// Cluster mode: one more of this node's writes of `account` (folded) is answered (`stored`
    /// if the cluster holds it): the markers whose own write it was are told to the account's
    /// connections, or dropped if it was not stored (the cluster's next news of the account
    /// says what it holds).
    fn release_markers(&mut self, account: &str, stored: bool) {
        let Some(held) = self.accounts.held_markers.get_mut(account) else {
            return;
        };
        let mut due = Vec::new();
        held.retain_mut(|h| {
            h.ahead = h.ahead.saturating_sub(1);
            if h.ahead > 0 {
                return true;
            }
            if stored {
                due.push((h.room.clone(), h.seq));
            }
            false
        });
        if held.is_empty() {
            self.accounts.held_markers.remove(account);
        }
        let Some(uid) = self.accounts.by_name.get(account).and_then(|a| a.user) else {
            return;
        };
        for (room, seq) in due {
            if self
                .users
                .get(&uid)
                .is_some_and(|u| u.rooms.contains(&room))
            {
                self.tell_read_up_to(uid, &room, seq);
            }
        }
    }

    /// Cluster mode: `nick`'s registration (its password hashed) asks the cluster to create the
    /// account; what `conn` sends meanwhile waits. False without a cluster.
    fn cluster_register(
        &mut self,
        conn: ConnId,
        nick: &Nick,
        hash: &PasswordHash,
        remember: bool,
        now: Millis,
    ) -> bool {
        let record = AccountRecord {
            name: nick.clone(),
            hash: hash.clone(),
            created: now,
        };
        let Some(id) = self.cluster_ask(|id| ClusterOut::CreateAccount { id, record }) else {
            return false;
        };
        self.accounts.registering.insert(
            id,
            Registering {
                conn,
                nick: nick.clone(),
                hash: hash.clone(),
                remember,
                created: now,
            },
        );
        self.accounts.busy.insert(conn);
        true
    }

    /// The answer to [`ClusterOut::CreateAccount`] `id`: `Ok(true)` if the account was made
    /// (its registrant is signed in), `Ok(false)` if an account of that name exists (made on
    /// another node meanwhile: the registrant hears the name is taken), `Err` if the cluster
    /// could not say (why, in words for people).
    pub fn handle_account_created(&mut self, id: u64, created: Result<bool, String>, now: Millis) {
        self.now = self.now.max(now);
        let Some(r) = self.accounts.registering.remove(&id) else {
            return;
        };
        let Registering {
            conn,
            nick,
            hash,
            remember,
            created: registered,
        } = r;
        self.accounts.busy.remove(&conn);
        if created == Ok(true) {
            // A name new to the cluster: rights its rooms still give it are an earlier
            // account's of that name, removed while no node was there to lift them (each
            // node lifts them as it hears of a removal). Not the newcomer's.
            self.account_rights_gone(&nick, None, true, now);
        }
        if self.conns.get(&conn).is_none_or(|c| c.closing()) {
            // Made all the same: every node hears of it, and its owner can sign in.
            return;
        }
        match created {
            Ok(true) => {
                let folded = nick.folded();
                self.accounts
                    .by_name
                    .entry(folded.clone())
                    .or_insert_with(|| Account::new(nick.clone(), hash, registered));
                info!(conn = %conn, account = %nick, "registered in the cluster");
                self.signed_in(conn, &folded, remember, None, now);
            }
            Ok(false) => {
                let detail = format!("{nick} is registered already");
                self.error(conn, ErrorKind::NickTaken, Re::Nick(nick.clone()), detail);
                if self.accounts.registered(&nick) {
                    // Its account is known here already: the nick is the account's.
                    self.evict_nick_holder(&nick, UserId(u64::MAX), now);
                }
            }
            Err(why) => {
                let detail = format!("{why}; {nick} was not registered");
                self.error(conn, ErrorKind::Unavailable, Re::Nick(nick), detail);
            }
        }
        self.run_pending(conn, now);
    }

    /// Cluster mode: an account as the cluster holds it now, after a change made on any node
    /// (or read when the node starts). It is added, or its password hash, device keys and
    /// stored rooms replaced by these; read markers only move forward, and this node's
    /// connections of the account hear the ones that moved.
    ///
    /// `revision` is the cluster's version of the account (it grows with every change): news
    /// older than this node's own last write of the account, or while one is unanswered, is
    /// not applied (see [`Hub::handle_account_written`]).
    pub fn handle_account(&mut self, account: LoadedAccount, revision: u64, now: Millis) {
        self.now = self.now.max(now);
        // Direct messages kept for it are the cluster's, apart ([`Hub::handle_held`]).
        let LoadedAccount {
            record,
            rooms,
            read,
            keys,
            held: _,
        } = account;
        if service_account(&record.name) {
            return;
        }
        let folded = record.name.folded();
        if let Some(&(unanswered, last)) = self.accounts.own_writes.get(&folded) {
            if unanswered > 0 {
                debug!(account = %record.name, revision, "account news while our writes are on their way: held");
                let news = LoadedAccount {
                    record,
                    rooms,
                    read,
                    keys,
                    held: Vec::new(),
                };
                self.accounts.held_news.insert(folded, (news, revision));
                return;
            }
            if revision < last {
                debug!(account = %record.name, revision, "account news older than our writes");
                return;
            }
            self.accounts.own_writes.remove(&folded);
        }
        let ids: VecDeque<u64> = keys.iter().map(|k| k.id).collect();
        if let Some(a) = self.accounts.by_name.get(&folded) {
            for id in a.keys.iter().filter(|id| !ids.contains(id)) {
                self.accounts.keys.remove(id);
                self.accounts.labels.remove(id);
            }
        }
        for k in &keys {
            // What this node knows of a key's last use stays (the cluster keeps none).
            let used = self
                .accounts
                .keys
                .get(&k.id)
                .and_then(|(_, kept)| kept.used.clone());
            let mut k = k.clone();
            k.used = k.used.or(used);
            self.accounts.keys.insert(k.id, (folded.clone(), k));
        }
        let is_new = !self.accounts.by_name.contains_key(&folded);
        let registering_here = self
            .accounts
            .registering
            .values()
            .any(|r| r.nick.folded() == folded);
        if is_new && !registering_here {
            // Registered on another node: a user here holding the nick is renamed, as when an
            // owner signs in (it could only have it from a node that lost the nick's claim).
            self.evict_nick_holder(&record.name, UserId(u64::MAX), now);
        }
        let a = self
            .accounts
            .by_name
            .entry(folded.clone())
            .or_insert_with(|| {
                Account::new(record.name.clone(), record.hash.clone(), record.created)
            });
        // The password changed on another node (this node's own change comes back with the
        // hash it has already): the account's sessions here end, as the changing node's do.
        let password_changed = a.hash != record.hash;
        a.hash = record.hash;
        // The registration is the cluster's (its writes carry it, `ClusterOut::AccountWrite`).
        a.created = record.created;
        a.keys = ids;
        let before = core::mem::replace(&mut a.rooms, rooms);
        // Rooms the account joined on another node that this node had not heard of: its user
        // here signed in before that node's write of them came (the watch lags behind a join
        // there followed at once by a sign-in here), and joins them now, as it would have.
        let added: Vec<RoomName> = a
            .rooms
            .iter()
            .filter(|r| !before.contains(r))
            .cloned()
            .collect();
        let mut moved = Vec::new();
        for (room, seq) in read {
            let marker = a.read.entry(room.clone()).or_insert(Seq(0));
            if seq > *marker {
                *marker = seq;
                moved.push((room, seq));
            }
        }
        let user = a.user;
        if password_changed {
            // Nobody proved the new password from here (see `password_changed`).
            self.accounts.known.forget(&folded);
            // Nor did an `OPER` with the old one here, whether or not the account has a user
            // here (`end_sessions`, below, runs only when it has).
            self.end_opers(|named| named == folded);
        }
        let Some(uid) = user else {
            return;
        };
        if password_changed {
            info!(account = %record.name, "password changed on another node: sessions here end");
            self.end_sessions(&folded, None, now);
        }
        let conn = self
            .devices_of(uid)
            .into_iter()
            .find_map(|d| self.devices.get(&d).and_then(|d| d.conn));
        for room in added {
            let Some(conn) = conn else {
                break;
            };
            if self.member(uid, &room) {
                continue;
            }
            debug!(account = %record.name, %room, "a room the account joined elsewhere comes after its sign-in here: joined");
            self.join_as_member(conn, room, now);
        }
        for (room, seq) in moved {
            if !self
                .users
                .get(&uid)
                .is_some_and(|u| u.rooms.contains(&room))
            {
                continue;
            }
            self.tell_read_up_to(uid, &room, seq);
        }
    }

    /// Cluster mode: the account `folded` was removed (on any node): its keys stop working
    /// here; its user stays, as a guest, until it leaves.
    pub fn handle_account_dropped(&mut self, folded: &str, now: Millis) {
        self.now = self.now.max(now);
        self.accounts.own_writes.remove(folded);
        self.accounts.held_news.remove(folded);
        self.accounts.held_markers.remove(folded);
        self.forget_account(folded);
    }

    /// Cluster mode: `conn` signed in to `account` on a node with no user of it before: the
    /// account's nick becomes this node's in the cluster (the account proved it owns it), and
    /// the rooms the account was in (on whichever node) are joined here.
    fn cluster_signed_in(
        &mut self,
        conn: ConnId,
        account: &Nick,
        rooms: Vec<RoomName>,
        now: Millis,
    ) {
        let nick = account.clone();
        if self
            .cluster_ask(|id| ClusterOut::TakeOver { id, nick })
            .is_none()
        {
            return;
        }
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let mut markers = Vec::new();
        for room in rooms {
            if self
                .users
                .get(&uid)
                .is_some_and(|u| u.rooms.contains(&room))
            {
                continue;
            }
            let marker = self
                .accounts
                .by_name
                .get(&account.folded())
                .and_then(|a| a.read.get(&room).copied());
            self.join_as_member(conn, room.clone(), now);
            self.cluster_stored_join(uid, &room);
            markers.extend(marker.map(|seq| (room, seq)));
        }
        // Each marker after its room's `Joined` (a marker for a room the client does not
        // show yet means nothing to it): these wait for the joins like a request would.
        for (room, seq) in markers {
            let msg = ServerMsg::ReadUpTo { room, seq };
            self.run(conn, super::dialect::Request::Answer(Reply::Msg(msg)), now);
        }
    }
}

impl Account {
    /// A new account, in no room, with no read marker or key.
    fn new(name: Nick, hash: PasswordHash, created: Millis) -> Account {
        Account {
            name,
            hash,
            created,
            user: None,
            read: BTreeMap::new(),
            keys: VecDeque::new(),
            rooms: Vec::new(),
            held: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account's known addresses are few (the one signed in from longest ago goes first),
    /// and each is forgotten a while after its last sign-in; a sign-in again from one keeps it.
    #[test]
    fn known_addresses_are_bounded_per_account_and_forgotten() {
        let mut k = KnownAddresses::default();
        let at = |i: u8| IpAddr::from([198, 51, 100, i]);
        let mut now = Millis(1_000);
        for i in 0..20 {
            now = Millis(now.0 + 1_000);
            k.note("alice", at(i), now);
            // Coming back from the first keeps it among the most recent.
            k.note("alice", at(0), now);
        }
        assert_eq!(k.map["alice"].len(), MAX_KNOWN_ADDRESSES);
        assert!(k.knows("alice", &at(0), now));
        assert!(k.knows("alice", &at(19), now));
        assert!(!k.knows("alice", &at(1), now), "pushed out");
        assert!(!k.knows("bob", &at(19), now), "per account");
        let later = Millis(now.0 + KNOWN_FOR.0);
        assert!(!k.knows("alice", &at(19), later));
        k.note("alice", at(50), later);
        assert_eq!(
            k.map["alice"].len(),
            1,
            "the stale ones go at the next sign-in"
        );
        k.forget("alice");
        assert!(k.map.is_empty());
    }

    /// The strike that starts the waits says so, once per episode: the hub logs that one, not
    /// every guess after it.
    #[test]
    fn only_the_strike_that_starts_the_waits_is_worth_a_log_line() {
        let mut t: Throttle<u8> = Throttle::new(FREE_FAILS_ACCOUNT, FIRST_WAIT);
        let mut now = Millis(1_000);
        let started: Vec<bool> = (0..8)
            .map(|_| {
                now = Millis(now.0 + 60_000);
                t.strike(&1, "a", now)
            })
            .collect();
        assert_eq!(
            started,
            [false, false, false, true, false, false, false, false]
        );
        // Cleared by a success: a new episode is said again.
        t.clear(&1);
        let again: Vec<bool> = (0..5).map(|_| t.strike(&1, "a", now)).collect();
        assert_eq!(again, [false, false, false, true, false]);
        // Forgotten after an hour of quiet: the same.
        now = Millis(now.0 + FORGET_AFTER.0);
        let later: Vec<bool> = (0..4).map(|_| t.strike(&1, "a", now)).collect();
        assert_eq!(later, [false, false, false, true]);
    }
}
