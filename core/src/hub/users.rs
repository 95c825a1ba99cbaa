//! Users' identities: creating a user, free nicks (`alice_2`, `guest1234`) and resume tokens
//! drawn from the hub's seeded ChaCha RNG.

use super::idmap::IdMap;
use super::{Device, DeviceId, Hub, ResumeKey, User, UserId};
use crate::limits::MAX_NICK_LEN;
use crate::types::{ConnId, MsgId, Nick, ResumeToken};
use std::hash::BuildHasher;

use rand_core::RngCore;

impl Hub {
    /// A new user on `conn`, with its first device (the caller makes the connection ready for
    /// it and issues its resume token, if its dialect resumes).
    pub(super) fn new_user(&mut self, nick: Nick, conn: ConnId) -> (UserId, DeviceId) {
        let uid = UserId(self.next_user);
        self.next_user += 1;
        self.nicks.insert(&self.users, nick.folded_key(), uid);
        self.attach_gen += 1;
        self.users
            .insert(uid, Box::new(User::new(uid, nick.clone())));
        self.note_users_peak();
        self.monitored_on(&nick);
        let did = self.new_device(uid, Some(conn));
        (uid, did)
    }

    /// A new device of `uid`, attached to `conn` if given.
    pub(super) fn new_device(&mut self, uid: UserId, conn: Option<ConnId>) -> DeviceId {
        let addr = conn
            .and_then(|c| self.conns.get(&c))
            .and_then(|c| c.counted_ip());
        let did = DeviceId(self.next_device);
        self.next_device += 1;
        self.attach_gen += 1;
        self.devices.insert(
            did,
            Box::new(Device {
                id: did,
                user: uid,
                conn,
                resume: None,
                last_id: MsgId(0),
                addr,
                rare: None,
                seen: super::Seen::default(),
            }),
        );
        if let Some(u) = self.users.get_mut(&uid) {
            self.attach_gen += 1;
            u.devices.push(did);
        }
        did
    }

    /// A device of `uid` for a session restored from its record (the store's, or another
    /// node's): detached, waiting for its client to resume with the token whose id and hash
    /// are given, within the resume grace.
    pub(super) fn restored_device(
        &mut self,
        uid: UserId,
        record: &crate::persist::SessionRecord,
        now: crate::time::Millis,
    ) -> DeviceId {
        let did = self.new_device(uid, None);
        if let Some(d) = self.devices.get_mut(&did) {
            d.resume = Some(super::ResumeKey {
                id: record.token_id,
                hash: record.token.0,
            });
            d.last_id = record.last_id;
            if record.took_zero && record.last_id == MsgId(0) {
                d.rare.get_or_insert_with(Box::default).took_zero = true;
            }
            for &(id, kind) in &record.refused {
                d.refuse(id, kind);
            }
            if let Some((id, hash)) = record.prev {
                d.set_prev_resume(super::ResumeKey { id, hash: hash.0 });
            }
            for room in &record.put_out {
                d.note_put_out(room);
            }
        }
        // The device key it held, if its account still has it: `/devices forget` ends this
        // session as it would have before the restart.
        let key = record
            .device_key
            .filter(|k| self.key_of_user_account(*k, uid));
        if let Some(d) = self.devices.get_mut(&did) {
            d.set_key(key);
        }
        self.tokens
            .insert(&self.devices, record.token_id, did, Which::Current);
        if let Some((id, _)) = record.prev {
            self.tokens.insert(&self.devices, id, did, Which::Prev);
        }
        self.detached += 1;
        self.timers
            .set(super::Timer::Grace(did), now + self.config.resume_grace);
        did
    }

    /// The connections a user is on now.
    pub(super) fn user_conns(&self, uid: UserId) -> impl Iterator<Item = ConnId> + '_ {
        self.users
            .get(&uid)
            .into_iter()
            .flat_map(|u| u.devices.iter())
            .filter_map(|d| self.devices.get(d).and_then(|d| d.conn))
    }

    /// A user's devices, copied out (for a loop that changes the hub as it goes).
    pub(super) fn devices_of(&self, uid: UserId) -> Vec<DeviceId> {
        self.users
            .get(&uid)
            .map(|u| u.devices.to_vec())
            .unwrap_or_default()
    }

    /// The id `conn`'s device expects next from its client (ids count per device).
    pub(super) fn next_id(&self, conn: ConnId) -> MsgId {
        self.conns
            .get(&conn)
            .and_then(|c| c.device())
            .and_then(|d| self.devices.get(&d))
            .map_or(MsgId(1), |d| MsgId(d.last_id.0 + 1))
    }

    /// Whether a user is on any connection now.
    pub(super) fn online(&self, uid: UserId) -> bool {
        self.user_conns(uid).next().is_some()
    }

    /// Whether nobody has `nick`, it is not a registered account's and not a service's.
    pub(super) fn nick_free(&self, nick: &Nick) -> bool {
        !nick.is_service()
            && !self
                .nicks
                .contains_key(&self.users, nick.folded_key().as_str())
            && !self.accounts.registered(nick)
    }

    /// `want` if free, else `want_2`, `want_3`, ... cut to fit, else a guest nick.
    pub(super) fn free_nick(&mut self, want: Nick) -> Nick {
        if self.nick_free(&want) {
            return want;
        }
        for n in 2..1000u32 {
            let suffix = format!("_{n}");
            let base: String = want
                .as_str()
                .chars()
                .take(MAX_NICK_LEN - suffix.len())
                .collect();
            if let Ok(nick) = Nick::new(&format!("{base}{suffix}"))
                && self.nick_free(&nick)
            {
                return nick;
            }
        }
        self.guest_nick()
    }

    /// A free `guestNNNN` nick.
    pub(super) fn guest_nick(&mut self) -> Nick {
        for _ in 0..100 {
            let n = 1000 + self.rng.next_u32() % 9000;
            if let Ok(nick) = Nick::new(&format!("guest{n}"))
                && self.nick_free(&nick)
            {
                return nick;
            }
        }
        // Ten thousand guests at once: count on from the user counter until one is free.
        let mut n = self.next_user;
        loop {
            if let Ok(nick) = Nick::new(&format!("guest{n}"))
                && self.nick_free(&nick)
            {
                return nick;
            }
            n += 1;
        }
    }

    /// Issues `uid` a new resume token. The one before stops working as soon as the client has
    /// shown it has the new one (its connection sends anything after the welcome; see
    /// [`Hub::token_received`]). The hub keeps only a token's id and a hash of its secret.
    pub(super) fn issue_token(&mut self, did: DeviceId) -> Option<ResumeToken> {
        let token = loop {
            let mut t = [0u8; 32];
            self.rng.fill_bytes(&mut t);
            let t = ResumeToken(t);
            if !self.tokens.contains_key(&self.devices, t.id()) {
                break t;
            }
        };
        let d = self.devices.get_mut(&did)?;
        let had_prev = d.prev_resume().is_some();
        // Out of the table before the device's keys change (the table finds a slot's key
        // through the device).
        let old = d.resume.take();
        if let Some(old) = old {
            self.tokens.remove(old.id, did, Which::Current);
        }
        let d = self.devices.get_mut(&did)?;
        d.resume = Some(ResumeKey::of(&token));
        if let Some(old) = old {
            if !had_prev {
                // The client has `old` (it used it, or received it): it stays good until the
                // client shows it has the new one.
                d.set_prev_resume(old);
                self.tokens.insert(&self.devices, old.id, did, Which::Prev);
            }
            // Otherwise `old` never reached the client: the token it holds is still
            // `prev_resume`, and `old` is gone.
            self.session_ended(old);
        }
        self.tokens
            .insert(&self.devices, token.id(), did, Which::Current);
        self.device_changed(did);
        Some(token)
    }

    /// The device a resume token opens: its current token, or the one before while the client
    /// may not have received the current one.
    pub(super) fn token_device(&self, token: &ResumeToken) -> Option<DeviceId> {
        let did = self.tokens.get(&self.devices, token.id())?;
        let d = self.devices.get(&did)?;
        let opens = |k: Option<&ResumeKey>| k.is_some_and(|k| k.opens(token));
        (opens(d.resume.as_ref()) || opens(d.prev_resume())).then_some(did)
    }

    /// Device `did`'s resume tokens open nothing from now on (the current one and the one
    /// before), and the store forgets its session: a connection it is on goes on, but once
    /// it drops the device is gone, not waiting for a resume.
    pub(super) fn revoke_tokens(&mut self, did: DeviceId) {
        let Some(d) = self.devices.get_mut(&did) else {
            return;
        };
        let current = d.resume.take();
        let prev = d.take_prev_resume();
        if let Some(key) = current {
            self.tokens.remove(key.id, did, Which::Current);
            self.session_ended(key);
        }
        if let Some(key) = prev {
            self.tokens.remove(key.id, did, Which::Prev);
        }
    }

    /// `did`'s connection sent something after its welcome: the client has its current token,
    /// and the one before stops working (in the store too: its record is written again).
    pub(super) fn token_received(&mut self, did: DeviceId) {
        if let Some(d) = self.devices.get_mut(&did)
            && let Some(prev) = d.take_prev_resume()
        {
            self.tokens.remove(prev.id, did, Which::Prev);
            self.device_changed(did);
        }
    }
}

/// Users by folded nick (an account's folded name for an always-on account's user, which is
/// its nick too).
///
/// A slot is the user id alone, 8 bytes: the key is the user's own nick, folded, read through
/// the users table when a lookup compares or the table grows (25-byte slots before, the
/// inline key and the id; 17 bytes less per slot in a table of up to twice as many slots as
/// users, issue 22's idle memory). So every id in it must be a user in the users table whose
/// nick folds to the key it went in under, whenever the table is searched or grows: a user goes
/// in with [`Nicks::insert`] just before its record (nothing else is inserted in between),
/// and [`Nicks::remove`] takes the id it removes, so it works after the user is gone or its
/// nick has changed (it compares ids, under the old key's hash). Hashed with a random key
/// (SipHash, as the `HashMap` before): nicks are chosen by clients.
#[derive(Debug, Default)]
pub(super) struct Nicks {
    table: hashbrown::HashTable<UserId>,
    hasher: std::hash::RandomState,
}

impl Nicks {
    fn hash(&self, folded: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(folded)
    }

    pub(super) fn get(&self, users: &IdMap<User>, folded: &str) -> Option<UserId> {
        self.table
            .find(self.hash(folded), |uid| {
                users
                    .get(uid)
                    .is_some_and(|u| u.nick.folded_key().as_str() == folded)
            })
            .copied()
    }

    pub(super) fn contains_key(&self, users: &IdMap<User>, folded: &str) -> bool {
        self.get(users, folded).is_some()
    }

    /// `uid` under `key`, which must be free; `users` must hold every user already in the
    /// table (their nicks hash them again if it grows).
    pub(super) fn insert(
        &mut self,
        users: &IdMap<User>,
        key: crate::types::FoldedNick,
        uid: UserId,
    ) {
        let hash = self.hash(key.as_str());
        let hasher = &self.hasher;
        self.table.insert_unique(hash, uid, |other| {
            use std::hash::BuildHasher;
            let u = users.get(other);
            debug_assert!(u.is_some(), "a nick's user is in the users table");
            u.map_or(0, |u| hasher.hash_one(u.nick.folded_key().as_str()))
        });
    }

    /// Removes `uid` from under `folded` (its key when it went in).
    pub(super) fn remove(&mut self, folded: &str, uid: UserId) {
        if let Ok(e) = self.table.find_entry(self.hash(folded), |&x| x == uid) {
            e.remove();
        }
    }
}

/// Which of a device's tokens a slot of [`Tokens`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// `Device::resume`.
    Current,
    /// `Device::prev_resume`.
    Prev,
}

/// Resume token id → device, for the devices' current tokens and those before them.
///
/// A slot is 8 bytes: the device id, its top bit saying which of the device's two tokens it
/// stands for (the current one or the one before). The key, the token's id, is read through
/// the device's record when a lookup compares or the table grows (16-byte slots before, the id
/// and the device: 8 bytes less per slot in a table of up to twice as many slots as devices,
/// issue 22's idle memory). So every slot must be a device in the devices table holding that
/// token whenever the table is searched or grows: a slot goes in ([`Tokens::insert`]) once the
/// device holds the token and leaves ([`Tokens::remove`], which compares slots, not keys, so it
/// works whatever the device holds by then) before the device drops or swaps it, with no
/// insert in between. Hashed with a random key (SipHash, as the `HashMap` before): restored
/// sessions bring their ids, and clients name ids when they resume.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    table: hashbrown::HashTable<u64>,
    hasher: std::hash::RandomState,
}

/// The top bit of a slot: the device's token before its current one.
const PREV: u64 = 1 << 63;

impl Tokens {
    fn slot(did: DeviceId, which: Which) -> u64 {
        debug_assert!(did.0 & PREV == 0, "device ids stay below 2^63");
        match which {
            Which::Current => did.0,
            Which::Prev => did.0 | PREV,
        }
    }

    /// The token id a slot stands for, read through its device.
    fn key(devices: &IdMap<Device>, slot: u64) -> Option<u64> {
        let d = devices.get(&DeviceId(slot & !PREV))?;
        let k = if slot & PREV == 0 {
            d.resume.as_ref()
        } else {
            d.prev_resume()
        };
        k.map(|k| k.id)
    }

    pub(super) fn get(&self, devices: &IdMap<Device>, id: u64) -> Option<DeviceId> {
        self.table
            .find(self.hasher.hash_one(id), |&slot| {
                Self::key(devices, slot) == Some(id)
            })
            .map(|&slot| DeviceId(slot & !PREV))
    }

    pub(super) fn contains_key(&self, devices: &IdMap<Device>, id: u64) -> bool {
        self.get(devices, id).is_some()
    }

    /// Token `id`, which `did` holds as `which` now and no other device holds; `devices` must
    /// hold every token already in the table (their ids hash them again if it grows).
    pub(super) fn insert(&mut self, devices: &IdMap<Device>, id: u64, did: DeviceId, which: Which) {
        debug_assert_eq!(Self::key(devices, Self::slot(did, which)), Some(id));
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(id), Self::slot(did, which), |&slot| {
                let k = Self::key(devices, slot);
                debug_assert!(k.is_some(), "a token's device holds it");
                k.map_or(0, |k| hasher.hash_one(k))
            });
    }

    /// Removes token `id`, which went in as `did`'s `which`.
    pub(super) fn remove(&mut self, id: u64, did: DeviceId, which: Which) {
        let slot = Self::slot(did, which);
        if let Ok(e) = self
            .table
            .find_entry(self.hasher.hash_one(id), |&x| x == slot)
        {
            e.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token table holds device ids alone and finds them through the devices' tokens,
    /// current and previous: across growth, a token moved from current to previous, a removal
    /// after the device is gone, and a removal under the wrong device or role.
    #[test]
    fn the_token_table_finds_devices_through_their_tokens() {
        let key = |id: u64| ResumeKey { id, hash: [0; 32] };
        let device = |i: u64| {
            Box::new(Device {
                id: DeviceId(i),
                user: UserId(i),
                conn: None,
                resume: Some(key(1000 + i)),
                last_id: MsgId(0),
                addr: None,
                rare: None,
                seen: super::super::Seen::default(),
            })
        };
        let mut devices: IdMap<Device> = IdMap::default();
        let mut tokens = Tokens::default();
        for i in 0..300u64 {
            assert!(!tokens.contains_key(&devices, 1000 + i));
            devices.insert(DeviceId(i), device(i));
            tokens.insert(&devices, 1000 + i, DeviceId(i), Which::Current);
        }
        for i in 0..300u64 {
            assert_eq!(tokens.get(&devices, 1000 + i), Some(DeviceId(i)));
        }
        assert_eq!(tokens.get(&devices, 1300), None);
        // Device 7 gets a new token; the old one becomes its previous (as `issue_token` does).
        tokens.remove(1007, DeviceId(7), Which::Current);
        let d = devices.get_mut(&DeviceId(7)).unwrap();
        d.resume = Some(key(5007));
        d.set_prev_resume(key(1007));
        tokens.insert(&devices, 1007, DeviceId(7), Which::Prev);
        tokens.insert(&devices, 5007, DeviceId(7), Which::Current);
        // Growth: every slot hashed again through its device, both of 7's included.
        for i in 300..700u64 {
            devices.insert(DeviceId(i), device(i));
            tokens.insert(&devices, 1000 + i, DeviceId(i), Which::Current);
        }
        assert_eq!(tokens.get(&devices, 1007), Some(DeviceId(7)));
        assert_eq!(tokens.get(&devices, 5007), Some(DeviceId(7)));
        assert_eq!(tokens.get(&devices, 1699), Some(DeviceId(699)));
        // The wrong role or device removes nothing.
        tokens.remove(1007, DeviceId(7), Which::Current);
        tokens.remove(1008, DeviceId(9), Which::Current);
        assert_eq!(tokens.get(&devices, 1007), Some(DeviceId(7)));
        assert_eq!(tokens.get(&devices, 1008), Some(DeviceId(8)));
        // The client showed it has the new token: the previous one goes.
        let prev = devices.get_mut(&DeviceId(7)).unwrap().take_prev_resume();
        assert_eq!(prev, Some(key(1007)));
        tokens.remove(1007, DeviceId(7), Which::Prev);
        assert_eq!(tokens.get(&devices, 1007), None);
        // A device gone from the table, then its token.
        devices.remove(&DeviceId(9)).unwrap();
        assert_eq!(tokens.get(&devices, 1009), None);
        tokens.remove(1009, DeviceId(9), Which::Current);
        assert_eq!(tokens.table.len(), 699);
        for i in 700..800u64 {
            devices.insert(DeviceId(i), device(i));
            tokens.insert(&devices, 1000 + i, DeviceId(i), Which::Current);
        }
        assert_eq!(tokens.get(&devices, 5007), Some(DeviceId(7)));
        assert_eq!(tokens.get(&devices, 1799), Some(DeviceId(799)));
    }

    /// The table holds ids alone and finds them through the users' nicks: across growth,
    /// a rename (removed under the old key once the nick has changed) and a removal after the
    /// user is gone.
    #[test]
    fn the_nick_table_finds_users_through_their_nicks() {
        let nick = |s: &str| Nick::new(s).unwrap();
        let mut users: IdMap<User> = IdMap::default();
        let mut nicks = Nicks::default();
        for i in 0..300u64 {
            let n = nick(&format!("User{i}"));
            assert!(!nicks.contains_key(&users, n.folded_key().as_str()));
            nicks.insert(&users, n.folded_key(), UserId(i));
            users.insert(UserId(i), Box::new(User::new(UserId(i), n)));
        }
        for i in 0..300u64 {
            assert_eq!(nicks.get(&users, &format!("user{i}")), Some(UserId(i)));
        }
        assert_eq!(nicks.get(&users, "user300"), None);
        // A rename: the record's nick first, then the table.
        let u = users.get_mut(&UserId(7)).unwrap();
        let old = core::mem::replace(&mut u.nick, nick("Renamed"));
        nicks.remove(old.folded_key().as_str(), UserId(7));
        nicks.insert(&users, nick("Renamed").folded_key(), UserId(7));
        assert_eq!(nicks.get(&users, "user7"), None);
        assert_eq!(nicks.get(&users, "renamed"), Some(UserId(7)));
        // Gone from the users table, then from the nicks.
        let u = users.remove(&UserId(9)).unwrap();
        assert_eq!(nicks.get(&users, "user9"), None);
        nicks.remove(u.nick.folded_key().as_str(), u.id);
        // Removing under the wrong id leaves the right one.
        nicks.remove("user10", UserId(11));
        assert_eq!(nicks.get(&users, "user10"), Some(UserId(10)));
        for i in 300..400u64 {
            let n = nick(&format!("more{i}"));
            nicks.insert(&users, n.folded_key(), UserId(i));
            users.insert(UserId(i), Box::new(User::new(UserId(i), n)));
        }
        assert_eq!(nicks.table.len(), 399);
        assert_eq!(nicks.get(&users, "renamed"), Some(UserId(7)));
        assert_eq!(nicks.get(&users, "user299"), Some(UserId(299)));
        assert_eq!(nicks.get(&users, "more350"), Some(UserId(350)));
    }
}
