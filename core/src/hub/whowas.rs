//! IRC's WHOWAS memory: who gave up a nick lately (a quit, a nick change, an IRC connection's
//! end), with the user name and real name it had then. Server-wide and bounded: the newest
//! [`WHOWAS_LEN`] records, the oldest forgotten first.

use super::UserId;
use super::query::{Ident, Was};
use crate::limits::WHOWAS_LEN;
use crate::time::Millis;
use crate::types::Nick;
use std::collections::VecDeque;

/// The records, oldest first, each with the user it was (to record a user once when its
/// connection's end and its quit come one after the other).
#[derive(Debug, Default)]
pub(super) struct Whowas {
    records: VecDeque<(UserId, Was)>,
}

impl Whowas {
    /// `uid`, called `nick` (signed in to the account of that name or not), gave it up at
    /// `at`; unless the newest record says so already.
    pub(super) fn record(
        &mut self,
        uid: UserId,
        nick: &Nick,
        ident: Ident,
        signed_in: bool,
        at: Millis,
    ) {
        if self
            .records
            .back()
            .is_some_and(|(u, w)| *u == uid && w.nick == *nick)
        {
            return;
        }
        if self.records.len() == WHOWAS_LEN {
            self.records.pop_front();
        }
        let was = Was {
            nick: nick.clone(),
            ident,
            signed_in,
            at,
        };
        self.records.push_back((uid, was));
    }

    /// The newest `count` records of `nick` (compared as nicks are), newest first.
    pub(super) fn of(&self, nick: &Nick, count: usize) -> Vec<Was> {
        let key = nick.folded_key();
        self.records
            .iter()
            .rev()
            .filter(|(_, w)| w.nick.folded_key() == key)
            .take(count)
            .map(|(_, w)| w.clone())
            .collect()
    }

    /// How many records are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(user: &str) -> Ident {
        Ident {
            user: user.into(),
            realname: "Real".into(),
        }
    }

    #[test]
    fn the_memory_is_bounded_newest_first_and_records_a_user_once() {
        let mut w = Whowas::default();
        let bob = Nick::new("bob").unwrap();
        w.record(UserId(1), &bob, ident("~one"), false, Millis(1));
        // The connection's end, then the quit: one record.
        w.record(UserId(1), &bob, ident("~one"), false, Millis(1));
        w.record(
            UserId(2),
            &Nick::new("Bob").unwrap(),
            ident("~two"),
            false,
            Millis(2),
        );
        let was = w.of(&bob, 10);
        assert_eq!(was.len(), 2);
        assert_eq!(&*was[0].ident.user, "~two", "newest first");
        assert_eq!(w.of(&bob, 1).len(), 1);
        assert!(w.of(&Nick::new("carol").unwrap(), 10).is_empty());
        for i in 0..WHOWAS_LEN as u64 + 100 {
            w.record(
                UserId(10 + i),
                &Nick::new("x").unwrap(),
                ident("~x"),
                false,
                Millis(i),
            );
        }
        assert_eq!(w.len(), WHOWAS_LEN);
        assert!(w.of(&bob, 10).is_empty(), "the oldest are forgotten");
    }
}
