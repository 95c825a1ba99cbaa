//! Who is on the cluster, for the questions IRC asks about users (WHOIS, ISON, USERHOST, WHO's
//! away flag, the away reply to a private message, away-notify): each node tells the cluster
//! what its users are ([`Presence`]: the nick as spelt, the account, the away message, the
//! rooms it is in) as it changes, under the user's folded nick, beside the nick's owner
//! (`ClusterOut::Presence`); every node keeps a copy of every other node's
//! ([`Hub::handle_presence`]) and answers from it, never by asking another node while a user
//! waits. Away is carried with the user's record
//! rather than as an event in the rooms' logs: it is the user's, not a room's (a user in no
//! room shared with this node is away too), and it is not history.
//!
//! A record names its node: one of a node whose lease ran out is not believed (its users are
//! gone, or came back elsewhere under a record of their own), and is forgotten by the cluster
//! (`ClusterOut::Forget`), with its nick's ownership.

use super::super::Hub;
use super::super::dialect::Reply;
use super::super::query::{Ident, Info, Present};
use super::ClusterOut;
use crate::Millis;
use crate::limits::MAX_MEMBERS_LISTED;
use crate::types::{ConnId, Nick, RoomName, Text};
use std::collections::{BTreeMap, BTreeSet};

/// Records of a node that is gone still kept this long after their [`ClusterOut::Forget`] was
/// handed out (the cluster could not remove them, or whoever did died first) are handed out
/// again.
const FORGET_RETRY: Millis = Millis(30_000);

/// What a user on some node is, as every node may know it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Presence {
    /// The nick as the user spells it.
    pub nick: Nick,
    /// The account it is signed in to (its name as registered), if any.
    pub account: Option<Nick>,
    /// Its away message, while away.
    pub away: Option<Text>,
    /// The rooms it is in (by name), so that every node lists the rooms whose members are all
    /// on other nodes (`/rooms`, IRC's `LIST`). Empty in a record an older node wrote.
    pub rooms: Vec<RoomName>,
    /// On IRC: its user name as WHO and WHOIS show it (its nick since the forty-first session;
    /// before, `~` and its `USER`, which a reader ignores) and its real name (`USER`'s, or the
    /// last `SETNAME`), so every node shows them. `None` for natter's own
    /// doors and nc, and in a record an older node wrote.
    pub irc: Option<(Box<str>, Box<str>)>,
    /// Nothing of the user is connected: an account that stays in its rooms (always-on). Every
    /// node answers WHOIS of it as its own node does (`Offline`, not on another node) and
    /// shows it away, "not connected; your message waits for them", unless it set an away of
    /// its own. `false` in a record an older node wrote.
    pub offline: bool,
}

impl Presence {
    /// The away message other users are shown: its own, else, for an account with nothing
    /// connected, that messages to it wait for it ([`Hub::shown_away`] on its node).
    pub(in crate::hub) fn shown_away(&self) -> Option<Text> {
        if self.away.is_some() {
            return self.away.clone();
        }
        (self.offline && self.account.is_some())
            .then(|| Text::new(super::super::ops::KEPT_WORDS).ok())
            .flatten()
    }
}

/// The hub's side of presence.
#[derive(Debug, Default)]
pub(crate) struct Presences {
    /// Users here whose presence may have changed, by folded nick (told at the next poll).
    dirty: BTreeMap<String, Nick>,
    /// What this node last told of its users, by folded nick.
    told: BTreeMap<String, Presence>,
    /// Every node's users as the cluster says, by folded nick, with their node.
    known: BTreeMap<String, (Presence, String)>,
    /// Folded nicks whose record in `known` another node wrote ([`Hub::handle_record_elsewhere`];
    /// `known` names the writer, but not which node is this one).
    elsewhere: BTreeSet<String>,
    /// How many of the users in `known` are in each room, by their records (kept as records
    /// come, so that listing the rooms does not walk every user).
    rooms: BTreeMap<RoomName, usize>,
    /// The nodes alive at the last listing (`None`: not listed yet; every node is believed).
    alive: Option<BTreeSet<String>>,
    /// Nodes gone whose users' records were handed out to be forgotten, and when.
    forgotten: BTreeMap<String, Millis>,
}

impl Hub {
    /// The user called `nick` here (or no longer) may be something else now: the cluster is
    /// told at the next poll.
    pub(in crate::hub) fn cluster_presence_changed(&mut self, nick: &Nick) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.presence.dirty.insert(nick.folded(), nick.clone());
        }
    }

    /// The presences to tell the cluster of, since the last poll: only what changed.
    pub(super) fn poll_presence(&mut self) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        if cl.presence.dirty.is_empty() {
            return;
        }
        // A user whose nick this node is taking over: told once the take-over is answered,
        // so that a node hearing the record reads the nick's entry as this node's (see
        // `Hub::handle_record_elsewhere`).
        let taking: BTreeSet<&String> = cl.taking.values().collect();
        let (wait, dirty): (BTreeMap<_, _>, BTreeMap<_, _>) =
            core::mem::take(&mut cl.presence.dirty)
                .into_iter()
                .partition(|(f, _)| taking.contains(f));
        cl.presence.dirty = wait;
        for (folded, nick) in dirty {
            let now = self.presence_here(&folded);
            let Some(cl) = self.cluster.as_mut() else {
                return;
            };
            if cl.presence.told.get(&folded) == now.as_ref() {
                continue;
            }
            match &now {
                Some(p) => cl.presence.told.insert(folded, p.clone()),
                None => cl.presence.told.remove(&folded),
            };
            cl.out.push_back(ClusterOut::Presence {
                nick,
                presence: now,
            });
        }
    }

    /// What this node's user with the folded nick `folded` is, if there is one.
    fn presence_here(&self, folded: &str) -> Option<Presence> {
        let uid = self.nicks.get(&self.users, folded)?;
        let u = self.users.get(&uid)?;
        let account = self
            .account_of(uid)
            .map(|a| self.account_name(&a).unwrap_or_else(|| u.nick.clone()));
        Some(Presence {
            nick: u.nick.clone(),
            account,
            away: u.away().cloned(),
            rooms: u.rooms.iter().cloned().collect(),
            irc: self.irc_ident(uid).map(|i| (i.user, i.realname)),
            offline: u.devices.is_empty() && u.account().is_some(),
        })
    }

    /// Cluster mode: the user name and real name WHO and WHOIS show of the user on another
    /// node called `nick`: its IRC ones from its record, else words saying where it is.
    pub(in crate::hub) fn remote_ident(&self, nick: &Nick) -> Ident {
        match self.remote_presence(nick) {
            Some(p) if p.offline && p.irc.is_none() => {
                Ident::natter(&p.nick, "with nothing connected")
            }
            Some(p) => Ident::remote(&p.nick, p.irc.as_ref()),
            None => Ident::remote(nick, None),
        }
    }

    /// Cluster mode: the rooms no member here is in that users on other nodes are in, by
    /// their records, each with how many of them are in it: what `/rooms`, `LIST` and
    /// LUSERS show of the rooms only other nodes' users are in. (A node's records are
    /// forgotten at the listing that finds its lease gone, so they are counted until then.)
    pub(in crate::hub) fn remote_only_rooms(&self) -> BTreeMap<RoomName, usize> {
        let Some(cl) = self.cluster.as_ref() else {
            return BTreeMap::new();
        };
        cl.presence
            .rooms
            .iter()
            .filter(|(room, _)| self.rooms.get(*room).is_none_or(|r| r.members.is_empty()))
            .map(|(room, n)| (room.clone(), *n))
            .collect()
    }

    /// Cluster mode: the users on other nodes in `room`, by their records, when no member here
    /// is in it (else its roster answers): `/who`, WHO and NAMES of a room only other nodes'
    /// users are in. At most [`MAX_MEMBERS_LISTED`].
    pub(in crate::hub) fn remote_only_members(&self, room: &RoomName) -> Vec<&Presence> {
        let Some(cl) = self.cluster.as_ref() else {
            return Vec::new();
        };
        let here = self.rooms.get(room).is_some_and(|r| !r.members.is_empty());
        if here || !cl.presence.rooms.contains_key(room) {
            return Vec::new();
        }
        cl.presence
            .known
            .iter()
            .filter(|(folded, (p, node))| {
                let alive = cl.presence.alive.as_ref().is_none_or(|a| a.contains(node));
                alive
                    && p.rooms.contains(room)
                    && !self.nicks.contains_key(&self.users, folded.as_str())
            })
            .map(|(_, (p, _))| p)
            .take(MAX_MEMBERS_LISTED)
            .collect()
    }

    /// Cluster mode: what the user called `nick` (folded: the key) on node `node` is now, as
    /// the cluster says (`None`: nobody has the nick there any more). Local members sharing a
    /// followed room with the user hear when its away message changes (IRC's away-notify).
    pub fn handle_presence(&mut self, nick: &Nick, presence: Option<Presence>, node: &str) {
        let folded = nick.folded();
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let before = cl
            .presence
            .known
            .get(&folded)
            .map(|(p, _)| (p.shown_away(), p.irc.clone()))
            .unwrap_or_default();
        let (before, realname_before) = before;
        let realname = presence.as_ref().and_then(|p| p.irc.clone());
        let after = presence.as_ref().and_then(Presence::shown_away);
        let shown = presence.as_ref().map(|p| p.nick.clone());
        let was_known = cl.presence.known.contains_key(&folded);
        if presence.is_none() && self.nicks.contains_key(&self.users, folded.as_str()) {
            // Removed while a user here has the nick: another node forgot it (this node's
            // lease lapsed while it lived, see `ClusterOut::Forget`). Told again at the next
            // poll, so other nodes know the user once they list this node alive again.
            cl.presence.told.remove(&folded);
            cl.presence.dirty.insert(folded.clone(), nick.clone());
        }
        let p = &mut cl.presence;
        let old = match presence {
            Some(new) => {
                for room in &new.rooms {
                    *p.rooms.entry(room.clone()).or_default() += 1;
                }
                p.known.insert(folded.clone(), (new, node.to_owned()))
            }
            None => p.known.remove(&folded),
        };
        // Told again by `handle_record_elsewhere` if another node wrote it.
        p.elsewhere.remove(&folded);
        for room in old.iter().flat_map(|(o, _)| &o.rooms) {
            if let Some(n) = p.rooms.get_mut(room) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    p.rooms.remove(room);
                }
            }
        }
        // IRC's MONITOR: a nick now had, or no longer had, on another node (a user here with
        // it is what its watchers hear of).
        if !self.nicks.contains_key(&self.users, folded.as_str()) {
            match (&shown, was_known) {
                (Some(n), false) => self.monitored_on(n),
                (None, true) => self.monitored_off(nick),
                _ => {}
            }
        }
        if self.nicks.contains_key(&self.users, folded.as_str()) {
            return;
        }
        let Some(shown) = shown else {
            return;
        };
        let mut news = Vec::new();
        if before != after {
            news.push(Info::Away {
                nick: shown.clone(),
                away: after.clone(),
            });
        }
        // A real name changed (IRC's `SETNAME`), not one first heard of.
        if let (Some((_, old)), Some((_, new))) = (&realname_before, &realname)
            && old != new
        {
            news.push(Info::SetName {
                nick: shown.clone(),
                realname: new.clone(),
            });
        }
        if news.is_empty() {
            return;
        }
        let conns = self.conns_sharing_with_remote(&folded);
        for news in news {
            self.monitored_news_of(&shown, &conns, &news, None);
            for c in &conns {
                self.reply(*c, Reply::Info(news.clone()));
            }
        }
    }

    /// The connections of this node's members of the followed rooms whose roster holds the
    /// user on another node with the folded nick `folded`, each once.
    fn conns_sharing_with_remote(&self, folded: &str) -> BTreeSet<ConnId> {
        let Some(cl) = self.cluster.as_ref() else {
            return BTreeSet::new();
        };
        let rooms: Vec<&RoomName> = cl
            .rosters
            .iter()
            .filter(|(_, r)| r.members.contains_key(folded))
            .map(|(room, _)| room)
            .collect();
        rooms
            .into_iter()
            .filter_map(|room| self.rooms.get(room))
            .flat_map(|r| r.members.iter())
            .flat_map(|m| self.user_conns(*m))
            .collect()
    }

    /// Cluster mode: the nodes alive now (see [`Hub::handle_nodes`]): records of others are
    /// not believed, and are handed out to be forgotten ([`ClusterOut::Forget`]), so that they
    /// do not linger in the cluster (a node starting believes every record until its first
    /// listing) and their nicks are free. Again after [`FORGET_RETRY`] while still kept.
    pub(super) fn presence_nodes(&mut self, alive: &[String], now: Millis) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let alive: BTreeSet<String> = alive.iter().cloned().collect();
        let mut gone: BTreeMap<String, Vec<Nick>> = BTreeMap::new();
        for (p, node) in cl.presence.known.values() {
            if !node.is_empty() && !alive.contains(node) {
                gone.entry(node.clone()).or_default().push(p.nick.clone());
            }
        }
        let p = &mut cl.presence;
        p.forgotten.retain(|node, _| gone.contains_key(node));
        for (node, nicks) in gone {
            if p.forgotten
                .get(&node)
                .is_some_and(|&at| now < at + FORGET_RETRY)
            {
                continue;
            }
            p.forgotten.insert(node.clone(), now);
            cl.out.push_back(ClusterOut::Forget { node, nicks });
        }
        cl.presence.alive = Some(alive);
    }

    /// The folded nicks of the users on nodes alive, as the cluster says (this node's too).
    pub(super) fn presence_nicks(&self) -> impl Iterator<Item = &String> {
        let p = self.cluster.as_ref().map(|cl| &cl.presence);
        p.into_iter().flat_map(|p| {
            p.known.iter().filter_map(|(folded, (_, node))| {
                let alive = p.alive.as_ref().is_none_or(|a| a.contains(node));
                alive.then_some(folded)
            })
        })
    }

    /// Cluster mode: the user on another node called `nick`, as its node says (`None` if a
    /// user here has the nick, nobody has it, or its node is gone).
    pub(in crate::hub) fn remote_presence(&self, nick: &Nick) -> Option<&Presence> {
        let folded = nick.folded_key();
        if self.nicks.contains_key(&self.users, folded.as_str()) {
            return None;
        }
        let cl = self.cluster.as_ref()?;
        let (p, node) = cl.presence.known.get(folded.as_str())?;
        let alive = cl.presence.alive.as_ref().is_none_or(|a| a.contains(node));
        alive.then_some(p)
    }

    /// Another node wrote the record of `folded` the cluster has now (see
    /// [`Presences::elsewhere`]).
    pub(in crate::hub) fn note_record_elsewhere(&mut self, folded: &str) {
        let Some(p) = self.cluster.as_mut().map(|cl| &mut cl.presence) else {
            return;
        };
        if p.known.contains_key(folded) {
            p.elsewhere.insert(folded.to_owned());
        }
    }

    /// Whether the cluster's record of `folded` now is another node's.
    pub(in crate::hub) fn recorded_elsewhere(&self, folded: &str) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|cl| cl.presence.elsewhere.contains(folded))
    }

    /// [`Present`] of the user on another node called `nick`, from its presence.
    pub(in crate::hub) fn remote_present(&self, nick: &Nick) -> Option<Present> {
        self.remote_presence(nick).map(|p| Present {
            ident: self.remote_ident(&p.nick),
            account: p.account.clone(),
            nick: p.nick.clone(),
            away: p.shown_away(),
            mark: "",
            oper: false,
        })
    }

    /// The account the user on another node called `nick` is signed in to, from its record.
    pub(in crate::hub) fn remote_account(&self, nick: &Nick) -> Option<Nick> {
        self.remote_presence(nick).and_then(|p| p.account.clone())
    }

    /// The away message the cluster's record of `nick` holds, whichever node told it (alive
    /// or not): a session taken over from that node keeps it.
    pub(super) fn told_away(&self, nick: &Nick) -> Option<Text> {
        let cl = self.cluster.as_ref()?;
        let (p, _) = cl.presence.known.get(&nick.folded())?;
        p.away.clone()
    }

    /// The away message of the user on another node called `nick`, if it is away.
    pub(in crate::hub) fn remote_away(&self, nick: &Nick) -> Option<Text> {
        self.remote_presence(nick).and_then(Presence::shown_away)
    }
}
