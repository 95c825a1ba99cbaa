//! Server-wide bans in a cluster: an admin's ban is the cluster's, not a node's. Each ban or
//! lift made here goes out as [`ClusterOut::ServerBan`] (natter-cluster keeps one key-value
//! entry per mask, so two admins' bans on two nodes both land, and a ban replaces one on the
//! same mask), and every node hears each mask's ban as it is after any change
//! ([`Hub::handle_server_ban`]), this one too, and a node starting hears them all before it
//! serves anyone. A node enforces the news on its own users: whom a ban holds is told and put
//! out, as on the admin's node. `Hello`, `SignIn` and `Bans` read the same list as a single
//! node's, so a ban holds at every door of every node; its term is a time (the nodes' clocks
//! are the wall clock), so it runs out everywhere at once.

use super::super::{Hub, UserId};
use super::ClusterOut;
use crate::moderation::{Entry, Mask};
use crate::time::Millis;
use std::collections::BTreeMap;
use tracing::{debug, info};

/// A mask as the cluster keys it: its names folded (`nick:Bob` and `nick:bob` are one ban).
pub fn mask_key(mask: &Mask) -> String {
    match mask {
        Mask::Account(a) => format!("account:{}", a.folded()),
        Mask::Nick(n) => format!("nick:{}", n.folded()),
        Mask::Net { .. } => mask.to_string(),
    }
}

/// The hub's side of the cluster's server bans.
#[derive(Debug, Default)]
pub(crate) struct Bans {
    /// Per mask (its key): this node's changes not yet answered, and the revision of the
    /// last answered one. News older than that is not applied (an unban here would be taken
    /// back for a moment, and whom the ban holds put out again).
    own: BTreeMap<String, (u32, u64)>,
    /// The latest news of a mask held back while this node's changes of it were unanswered.
    held: BTreeMap<String, (Mask, Option<Entry>, u64)>,
    /// The revision of each ban in force here, as the cluster's news said.
    revisions: BTreeMap<String, u64>,
    /// Bans that ran out, asked to be removed ([`ClusterOut::ExpireServerBan`]): at which
    /// revision, and when.
    expiring: BTreeMap<String, (u64, Millis)>,
}

/// A server ban that ran out, asked to be removed, still kept this long after is asked again
/// (the cluster could not remove it, or whoever did died first).
const EXPIRE_RETRY: Millis = Millis(30_000);

impl Hub {
    /// A server ban set (`Some`) or lifted (`None`) here: in a cluster, it goes to every node
    /// ([`ClusterOut::ServerBan`]). Nothing without a cluster (the store gets the whole list).
    pub(in crate::hub) fn cluster_server_ban(&mut self, mask: &Mask, ban: Option<Entry>) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        cl.out.push_back(ClusterOut::ServerBan {
            mask: mask.clone(),
            ban,
        });
        cl.bans.own.entry(mask_key(mask)).or_default().0 += 1;
    }

    /// Cluster mode: this node's oldest [`ClusterOut::ServerBan`] of `mask` not yet answered
    /// is done: `Some(revision)`, the cluster's version of the mask's entry after it, or `None`
    /// if it could not be written (the next news of the mask says what the cluster holds).
    pub fn handle_server_ban_written(&mut self, mask: &Mask, revision: Option<u64>, now: Millis) {
        let key = mask_key(mask);
        let Some(bans) = self.cluster.as_mut().map(|cl| &mut cl.bans) else {
            return;
        };
        let Some(own) = bans.own.get_mut(&key) else {
            return;
        };
        own.0 = own.0.saturating_sub(1);
        own.1 = own.1.max(revision.unwrap_or(0));
        if own.0 > 0 {
            return;
        }
        if let Some((mask, ban, revision)) = bans.held.remove(&key) {
            self.handle_server_ban(mask, ban, revision, now);
        }
    }

    /// Cluster mode: the server ban on `mask` as the cluster holds it now, after a change
    /// made on any node (or read when this node starts): `Some`, set (a new one replaces one
    /// on the same mask); `None`, lifted. `revision` is the cluster's version of the mask's
    /// entry: news older than this node's own last change of it, or while one is unanswered,
    /// is not applied. Users here that a live ban holds are told and put out, but for the
    /// admin who set it (its own node spares it too: a network ban may hold its address).
    pub fn handle_server_ban(
        &mut self,
        mask: Mask,
        ban: Option<Entry>,
        revision: u64,
        now: Millis,
    ) {
        self.now = self.now.max(now);
        let key = mask_key(&mask);
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        if let Some(&(unanswered, last)) = cl.bans.own.get(&key) {
            if unanswered > 0 {
                debug!(%mask, revision, "server ban news while our change is on its way: held");
                cl.bans.held.insert(key, (mask, ban, revision));
                return;
            }
            if revision < last {
                debug!(%mask, revision, "server ban news older than our change");
                return;
            }
            cl.bans.own.remove(&key);
        }
        match &ban {
            Some(_) => cl.bans.revisions.insert(key.clone(), revision),
            None => cl.bans.revisions.remove(&key),
        };
        let before = self.server_bans.len();
        self.server_bans.retain(|b| mask_key(&b.mask) != key);
        let Some(ban) = ban else {
            if self.server_bans.len() != before {
                info!(%mask, "server ban lifted in the cluster");
            }
            return;
        };
        self.server_bans.push(ban.clone());
        if !ban.live(now) {
            return;
        }
        let held: Vec<UserId> = self
            .users
            .keys()
            .copied()
            .filter(|u| {
                self.users
                    .get(u)
                    .is_some_and(|x| x.nick.folded() != ban.by.folded())
                    && self.server_banned(*u, None, now).is_some()
            })
            .collect();
        let why = match &ban.reason {
            Some(r) => format!("{}{}: {r}", super::super::dialect::QUIT_BANNED, ban.by),
            None => format!("{}{}", super::super::dialect::QUIT_BANNED, ban.by),
        };
        for u in held {
            info!(%mask, by = %ban.by, "server ban from the cluster: user put out");
            self.remove_user(u, &why, now);
        }
    }

    /// Cluster mode: asks the cluster to remove the server bans whose term is over
    /// ([`ClusterOut::ExpireServerBan`]), each at the revision this node heard, so that they do
    /// not linger there (every node sees them run out at once; the first to remove one does).
    /// Again after [`EXPIRE_RETRY`] while one is still kept; not for a ban whose change here is
    /// unanswered (its revision is not known yet).
    pub(super) fn expire_server_bans(&mut self, now: Millis) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let bans = &mut cl.bans;
        let over: BTreeMap<String, &Entry> = self
            .server_bans
            .iter()
            .filter(|b| !b.live(now))
            .map(|b| (mask_key(&b.mask), b))
            .collect();
        bans.expiring.retain(|key, _| over.contains_key(key));
        for (key, ban) in over {
            let Some(&revision) = bans.revisions.get(&key) else {
                continue;
            };
            if bans
                .own
                .get(&key)
                .is_some_and(|&(unanswered, _)| unanswered > 0)
            {
                continue;
            }
            let asked = bans.expiring.get(&key);
            if asked.is_some_and(|&(r, at)| r == revision && now < at + EXPIRE_RETRY) {
                continue;
            }
            debug!(mask = %ban.mask, revision, "server ban ran out: asked to be removed");
            bans.expiring.insert(key, (revision, now));
            cl.out.push_back(ClusterOut::ExpireServerBan {
                mask: ban.mask.clone(),
                revision,
            });
        }
    }
}
