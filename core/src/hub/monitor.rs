//! IRC's `MONITOR` (IRCv3): each IRC connection's list of nicks to be told about when they come
//! and go (`730`/`731`), kept by the hub because presence is the hub's. "Online" is what `ISON`
//! says: a user has the nick here (connected, in its resume window, or an always-on account's),
//! or a user on another node of a cluster has it.
//!
//! Bounded: at most [`IRC_MONITOR_MAX`] nicks a connection (the `MONITOR=` the welcome
//! announces); a connection's list goes with it. Both maps are empty while nobody monitors,
//! so a server without IRC users pays nothing.

use super::ConnId;
use super::dialect::{MonitorNote, MonitorOp, Reply};
use super::query::Info;
use crate::limits::IRC_MONITOR_MAX;
use crate::types::{FoldedNick, Nick};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// The lists, and for each nick the connections that watch it.
#[derive(Debug, Default)]
pub(super) struct Monitors {
    /// Each connection's nicks, as it gave them, in the order it gave them.
    lists: FxHashMap<ConnId, Vec<Nick>>,
    /// Folded nick → the connections watching it.
    watchers: FxHashMap<FoldedNick, Vec<ConnId>>,
}

/// What [`Monitors::add`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Added {
    /// Nicks now on the list (those there already included: their state is told again, as
    /// the specification's servers do).
    pub(super) listed: Vec<Nick>,
    /// Nicks left out because the list is full (IRC: `734`).
    pub(super) over: Vec<Nick>,
}

impl Monitors {
    /// Whether nobody watches anything (the presence hooks' fast path).
    pub(super) fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Puts `nicks` on `conn`'s list, while it has room.
    pub(super) fn add(&mut self, conn: ConnId, nicks: Vec<Nick>) -> Added {
        let mut out = Added::default();
        let list = self.lists.entry(conn).or_default();
        for nick in nicks {
            let key = nick.folded_key();
            if list.iter().any(|n| n.folded_key() == key) {
                out.listed.push(nick);
                continue;
            }
            if list.len() >= IRC_MONITOR_MAX {
                out.over.push(nick);
                continue;
            }
            list.push(nick.clone());
            self.watchers.entry(key).or_default().push(conn);
            out.listed.push(nick);
        }
        if list.is_empty() {
            self.lists.remove(&conn);
        }
        out
    }

    /// Takes `nicks` off `conn`'s list (those not on it are ignored).
    pub(super) fn remove(&mut self, conn: ConnId, nicks: &[Nick]) {
        let Some(list) = self.lists.get_mut(&conn) else {
            return;
        };
        for nick in nicks {
            let key = nick.folded_key();
            let before = list.len();
            list.retain(|n| n.folded_key() != key);
            if list.len() != before {
                unwatch(&mut self.watchers, &key, conn);
            }
        }
        if list.is_empty() {
            self.lists.remove(&conn);
        }
    }

    /// Empties `conn`'s list (`MONITOR C`, and when the connection goes).
    pub(super) fn clear(&mut self, conn: ConnId) {
        let Some(list) = self.lists.remove(&conn) else {
            return;
        };
        for nick in list {
            unwatch(&mut self.watchers, &nick.folded_key(), conn);
        }
    }

    /// `conn`'s list, in the order given.
    pub(super) fn list(&self, conn: ConnId) -> &[Nick] {
        self.lists.get(&conn).map_or(&[], Vec::as_slice)
    }

    /// The connections watching `nick`.
    pub(super) fn watching(&self, nick: &Nick) -> Vec<ConnId> {
        self.watchers
            .get(&nick.folded_key())
            .cloned()
            .unwrap_or_default()
    }

    /// How many nicks are watched, over all connections.
    pub(super) fn watched(&self) -> usize {
        self.watchers.values().map(Vec::len).sum()
    }
}

fn unwatch(watchers: &mut FxHashMap<FoldedNick, Vec<ConnId>>, key: &FoldedNick, conn: ConnId) {
    if let Some(conns) = watchers.get_mut(key) {
        conns.retain(|c| *c != conn);
        if conns.is_empty() {
            watchers.remove(key);
        }
    }
}

impl super::Hub {
    /// Runs a `MONITOR` request of `conn`'s.
    pub(super) fn monitor(&mut self, conn: ConnId, op: MonitorOp) {
        match op {
            MonitorOp::Add(nicks) => {
                let added = self.monitors.add(conn, nicks);
                self.monitor_status(conn, &added.listed);
                if !added.over.is_empty() {
                    self.reply(conn, note(MonitorNote::Full(added.over)));
                }
            }
            MonitorOp::Remove(nicks) => self.monitors.remove(conn, &nicks),
            MonitorOp::Clear => self.monitors.clear(conn),
            MonitorOp::List => {
                let list = self.monitors.list(conn).to_vec();
                self.reply(conn, note(MonitorNote::List(list)));
            }
            MonitorOp::Status => {
                let list = self.monitors.list(conn).to_vec();
                self.monitor_status(conn, &list);
            }
        }
    }

    /// Tells `conn` which of `nicks` are on (as their users have them) and which are not.
    fn monitor_status(&mut self, conn: ConnId, nicks: &[Nick]) {
        let mut on = Vec::new();
        let mut off = Vec::new();
        for nick in nicks {
            match self.present(nick) {
                Some(p) => on.push(p.nick),
                None => off.push(nick.clone()),
            }
        }
        if !on.is_empty() {
            self.reply(conn, note(MonitorNote::Online(on)));
        }
        if !off.is_empty() {
            self.reply(conn, note(MonitorNote::Offline(off)));
        }
    }

    /// `nick` is had now (a user took it here, or one on another node): its watchers hear.
    pub(super) fn monitored_on(&mut self, nick: &Nick) {
        if self.monitors.is_empty() {
            return;
        }
        for c in self.monitors.watching(nick) {
            self.reply(c, note(MonitorNote::Online(vec![nick.clone()])));
        }
    }

    /// `nick` was given up here (or on another node): unless someone still has it, its
    /// watchers hear, of the nick as its user had it (as ergo says it).
    pub(super) fn monitored_off(&mut self, nick: &Nick) {
        if self.monitors.is_empty() || self.present(nick).is_some() {
            return;
        }
        for c in self.monitors.watching(nick) {
            self.reply(c, note(MonitorNote::Offline(vec![nick.clone()])));
        }
    }

    /// A user's nick went from `old` to `new`: watchers of each hear, unless only its case
    /// changed (the same nick, as IRC compares them).
    pub(super) fn monitored_rename(&mut self, old: &Nick, new: &Nick) {
        if old.folded_key() != new.folded_key() {
            self.monitored_off(old);
            self.monitored_on(new);
        }
    }

    /// News of `uid`'s (its away, account or real name) for the connections that monitor its
    /// nick and are not among `told` (its co-members' connections) nor its own, as
    /// [`Info::Monitored`]: IRC's `extended-monitor` shows it to those that asked for it.
    pub(super) fn monitored_news(
        &mut self,
        uid: super::UserId,
        told: &BTreeSet<ConnId>,
        news: &Info,
    ) {
        if self.monitors.is_empty() {
            return;
        }
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        self.monitored_news_of(&nick, told, news, Some(uid));
    }

    /// [`Hub::monitored_news`] of `nick` (a user here, `own`, or on another node).
    pub(super) fn monitored_news_of(
        &mut self,
        nick: &Nick,
        told: &BTreeSet<ConnId>,
        news: &Info,
        own: Option<super::UserId>,
    ) {
        for c in self.monitors.watching(nick) {
            if told.contains(&c) || own.is_some_and(|u| self.user_of(c) == Some(u)) {
                continue;
            }
            self.reply(c, Reply::Info(Info::Monitored(Box::new(news.clone()))));
        }
    }

    /// `conn` is gone: its list goes with it.
    pub(super) fn forget_monitors(&mut self, conn: ConnId) {
        self.monitors.clear(conn);
    }
}

fn note(n: MonitorNote) -> super::dialect::Reply {
    super::dialect::Reply::Note(super::dialect::Note::Monitor(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nicks(names: &[&str]) -> Vec<Nick> {
        names.iter().map(|n| Nick::new(n).unwrap()).collect()
    }

    #[test]
    fn lists_are_per_connection_bounded_and_leave_nothing_behind() {
        let mut m = Monitors::default();
        let (a, b) = (ConnId(1), ConnId(2));
        let got = m.add(a, nicks(&["Bob", "cat", "bob"]));
        assert_eq!(
            got.listed,
            nicks(&["Bob", "cat", "bob"]),
            "bob twice: listed once"
        );
        assert_eq!(m.list(a), nicks(&["Bob", "cat"]).as_slice());
        m.add(b, nicks(&["BOB"]));
        assert_eq!(m.watching(&Nick::new("bob").unwrap()), vec![a, b]);
        m.remove(a, &nicks(&["BOB", "nobody"]));
        assert_eq!(m.list(a), nicks(&["cat"]).as_slice());
        assert_eq!(m.watching(&Nick::new("bob").unwrap()).len(), 1);
        m.clear(b);
        m.clear(a);
        assert!(m.is_empty() && m.lists.is_empty());

        // Full: the rest is refused, and what was there stays.
        let many: Vec<Nick> = (0..IRC_MONITOR_MAX + 3)
            .map(|i| Nick::new(&format!("n{i}")).unwrap())
            .collect();
        let got = m.add(a, many);
        assert_eq!(got.listed.len(), IRC_MONITOR_MAX);
        assert_eq!(got.over.len(), 3);
        assert_eq!(m.watched(), IRC_MONITOR_MAX);
        m.clear(a);
        assert!(m.is_empty() && m.lists.is_empty());
    }
}
