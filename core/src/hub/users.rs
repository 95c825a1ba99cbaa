//! Users' identities: creating a user, free nicks (`alice_2`, `guest1234`) and resume tokens
//! drawn from the hub's seeded ChaCha RNG.

use super::{Device, DeviceId, Hub, ResumeKey, User, UserId};
use crate::limits::MAX_NICK_LEN;
use crate::types::{ConnId, MsgId, Nick, ResumeToken};

use rand_core::RngCore;

impl Hub {
    /// A new user on `conn`, with its first device (the caller makes the connection ready for
    /// it and issues its resume token, if its dialect resumes).
    pub(super) fn new_user(&mut self, nick: Nick, conn: ConnId) -> (UserId, DeviceId) {
        let uid = UserId(self.next_user);
        self.next_user += 1;
        self.nicks.insert(nick.folded_key(), uid);
        self.attach_gen += 1;
        self.users.insert(uid, Box::new(User::new(uid, nick)));
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
        token_id: u64,
        token_hash: &crate::persist::TokenHash,
        last_id: MsgId,
        now: crate::time::Millis,
    ) -> DeviceId {
        let did = self.new_device(uid, None);
        if let Some(d) = self.devices.get_mut(&did) {
            d.resume = Some(super::ResumeKey {
                id: token_id,
                hash: token_hash.0,
            });
            d.last_id = last_id;
        }
        self.tokens.insert(token_id, did);
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

    /// Whether nobody has `nick` and it is not a registered account's.
    pub(super) fn nick_free(&self, nick: &Nick) -> bool {
        !self.nicks.contains_key(nick.folded_key().as_str()) && !self.accounts.registered(nick)
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
            if let Ok(nick) = Nick::new(&format!("{base}{suffix}")) {
                if self.nick_free(&nick) {
                    return nick;
                }
            }
        }
        self.guest_nick()
    }

    /// A free `guestNNNN` nick.
    pub(super) fn guest_nick(&mut self) -> Nick {
        for _ in 0..100 {
            let n = 1000 + self.rng.next_u32() % 9000;
            if let Ok(nick) = Nick::new(&format!("guest{n}")) {
                if self.nick_free(&nick) {
                    return nick;
                }
            }
        }
        // Ten thousand guests at once: count on from the user counter until one is free.
        let mut n = self.next_user;
        loop {
            if let Ok(nick) = Nick::new(&format!("guest{n}")) {
                if self.nick_free(&nick) {
                    return nick;
                }
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
            if !self.tokens.contains_key(&t.id()) {
                break t;
            }
        };
        let d = self.devices.get_mut(&did)?;
        if let Some(old) = d.resume.replace(ResumeKey::of(&token)) {
            if d.prev_resume().is_none() {
                // The client has `old` (it used it, or received it): it stays good until the
                // client shows it has the new one.
                d.set_prev_resume(old);
            } else {
                // `old` never reached the client: the token it holds is still `prev_resume`.
                self.tokens.remove(&old.id);
            }
            self.session_ended(old);
        }
        self.tokens.insert(token.id(), did);
        self.device_changed(did);
        Some(token)
    }

    /// The device a resume token opens: its current token, or the one before while the client
    /// may not have received the current one.
    pub(super) fn token_device(&self, token: &ResumeToken) -> Option<DeviceId> {
        let did = *self.tokens.get(&token.id())?;
        let d = self.devices.get(&did)?;
        let opens = |k: Option<&ResumeKey>| k.is_some_and(|k| k.opens(token));
        (opens(d.resume.as_ref()) || opens(d.prev_resume())).then_some(did)
    }

    /// `did`'s connection sent something after its welcome: the client has its current token,
    /// and the one before stops working.
    pub(super) fn token_received(&mut self, did: DeviceId) {
        if let Some(d) = self.devices.get_mut(&did)
            && let Some(prev) = d.take_prev_resume()
        {
            self.tokens.remove(&prev.id);
        }
    }
}

/// Users by folded nick (an account's folded name for an always-on account's user).
///
/// The id is kept as bytes (alignment 1) beside the 17-byte inline key, so a table slot is 25
/// bytes, not the 32 a `u64` beside it takes once aligned: 7 bytes less per slot, in a table
/// of up to twice as many slots as users (issue 22's idle memory).
#[derive(Debug, Default)]
pub(super) struct Nicks(std::collections::HashMap<crate::types::FoldedNick, [u8; 8]>);

impl Nicks {
    pub(super) fn get(&self, folded: &str) -> Option<UserId> {
        self.0.get(folded).map(|b| UserId(u64::from_ne_bytes(*b)))
    }

    pub(super) fn contains_key(&self, folded: &str) -> bool {
        self.0.contains_key(folded)
    }

    pub(super) fn insert(&mut self, key: crate::types::FoldedNick, uid: UserId) {
        self.0.insert(key, uid.0.to_ne_bytes());
    }

    pub(super) fn remove(&mut self, folded: &str) -> Option<UserId> {
        self.0.remove(folded).map(|b| UserId(u64::from_ne_bytes(b)))
    }
}
