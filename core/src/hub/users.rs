//! Users' identities: creating a user, free nicks (`alice_2`, `guest1234`) and resume tokens
//! drawn from the hub's seeded ChaCha RNG.

use super::room::RoomSet;
use super::{Hub, User, UserId};
use crate::limits::MAX_NICK_LEN;
use crate::types::{ConnId, MsgId, Nick, ResumeToken};
use rand_core::RngCore;

impl Hub {
    /// A new user on `conn` (the caller makes the connection ready for it).
    pub(super) fn new_user(
        &mut self,
        nick: Nick,
        conn: ConnId,
        token: Option<ResumeToken>,
    ) -> UserId {
        let uid = UserId(self.next_user);
        self.next_user += 1;
        self.nicks.insert(nick.folded(), uid);
        if let Some(t) = &token {
            self.tokens.insert(t.clone(), uid);
        }
        self.users.insert(
            uid,
            Box::new(User {
                nick,
                conn: Some(conn),
                rooms: RoomSet::default(),
                token,
                last_id: MsgId(0),
                away: None,
            }),
        );
        uid
    }

    pub(super) fn nick_free(&self, nick: &Nick) -> bool {
        !self.nicks.contains_key(&nick.folded())
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

    pub(super) fn fresh_token(&mut self) -> ResumeToken {
        loop {
            let mut t = [0u8; 16];
            self.rng.fill_bytes(&mut t);
            let t = ResumeToken(t);
            if !self.tokens.contains_key(&t) {
                return t;
            }
        }
    }
}
