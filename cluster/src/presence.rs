//! Who is on the cluster: one KV entry per user (`<prefix>_users`, keyed like the nick's owner
//! by the hex of its folded nick) holding what its node says of it ([`Presence`]: the nick as
//! spelt, the account, the away message) and the node's id. The nick's owner entry
//! (`<prefix>_nicks`) stays the node id alone, compared byte for byte by claims, take-overs and
//! reaps; this one rides beside it, written by the node holding the user whenever it changes
//! and removed when the node no longer has the user, only if the entry is still that node's
//! (another node may have taken the nick over meanwhile). Every node watches the bucket and
//! hands each change to its hub, which answers WHOIS, ISON, USERHOST and away from its copy.

use crate::names::{nick_key, unhex};
use crate::node::ClusterIn;
use crate::{ClusterConfig, ClusterError};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use natter_core::Nick;
use natter_core::hub::Presence;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// How long a record's write is tried again while NATS does not answer (then it is given up,
/// logged: the next change of the user writes it whole again).
const WRITE_PATIENCE: Duration = Duration::from_secs(10);
/// The largest entry read (bincode's limit before it allocates): two nicks, an away message,
/// its rooms' names, IRC's user and real names (a line's worth) and a node id.
const MAX_ENTRY_BYTES: usize = 4 << 10;

/// A user's entry as the bucket keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredUser {
    presence: Presence,
    /// The node holding the user.
    node: String,
}

/// A record as nodes wrote it before records said whether anything of the user is connected:
/// read as connected.
#[derive(serde::Deserialize)]
struct StoredUserV3 {
    presence: PresenceV3,
    node: String,
}

#[derive(serde::Deserialize)]
struct PresenceV3 {
    nick: Nick,
    account: Option<Nick>,
    away: Option<natter_core::Text>,
    rooms: Vec<natter_core::RoomName>,
    irc: Option<(Box<str>, Box<str>)>,
}

impl From<StoredUserV3> for StoredUser {
    fn from(o: StoredUserV3) -> StoredUser {
        let PresenceV3 {
            nick,
            account,
            away,
            rooms,
            irc,
        } = o.presence;
        StoredUser {
            presence: Presence {
                nick,
                account,
                away,
                rooms,
                irc,
                offline: false,
            },
            node: o.node,
        }
    }
}

/// A record as nodes wrote it before records carried IRC's user and real names: read with
/// none.
#[derive(serde::Deserialize)]
struct StoredUserV2 {
    presence: PresenceV2,
    node: String,
}

#[derive(serde::Deserialize)]
struct PresenceV2 {
    nick: Nick,
    account: Option<Nick>,
    away: Option<natter_core::Text>,
    rooms: Vec<natter_core::RoomName>,
}

impl From<StoredUserV2> for StoredUser {
    fn from(o: StoredUserV2) -> StoredUser {
        let PresenceV2 {
            nick,
            account,
            away,
            rooms,
        } = o.presence;
        StoredUser {
            presence: Presence {
                nick,
                account,
                away,
                rooms,
                irc: None,
                offline: false,
            },
            node: o.node,
        }
    }
}

/// A record as nodes wrote it before records named the user's rooms: read with none.
#[derive(serde::Deserialize)]
struct StoredUserV1 {
    presence: PresenceV1,
    node: String,
}

#[derive(serde::Deserialize)]
struct PresenceV1 {
    nick: Nick,
    account: Option<Nick>,
    away: Option<natter_core::Text>,
}

impl From<StoredUserV1> for StoredUser {
    fn from(o: StoredUserV1) -> StoredUser {
        let PresenceV1 {
            nick,
            account,
            away,
        } = o.presence;
        StoredUser {
            presence: Presence {
                nick,
                account,
                away,
                rooms: Vec::new(),
                irc: None,
                offline: false,
            },
            node: o.node,
        }
    }
}

fn encode(presence: &Presence, node: &str) -> Result<Bytes, String> {
    let stored = StoredUser {
        presence: presence.clone(),
        node: node.to_owned(),
    };
    crate::kept::encode_entry(&stored)
}

fn decode(value: &[u8]) -> Result<(Presence, String), String> {
    let what = "a user's record";
    let s = crate::kept::decode_entry_or_older::<StoredUser, StoredUserV3, MAX_ENTRY_BYTES>(
        value, what,
    )
    .or_else(|e| {
        crate::kept::decode_entry::<StoredUserV2, MAX_ENTRY_BYTES>(value, what)
            .map(Into::into)
            .map_err(|_| e)
    })
    .or_else(|e| {
        crate::kept::decode_entry::<StoredUserV1, MAX_ENTRY_BYTES>(value, what)
            .map(Into::into)
            .map_err(|_| e)
    })?;
    Ok((s.presence, s.node))
}

/// The users' side of a node: where to send the hub's records, and the watch.
pub(crate) struct UsersLink {
    pub(crate) writes: mpsc::UnboundedSender<(Nick, Option<Presence>)>,
    pub(crate) watch: JoinHandle<()>,
    /// The bucket, to forget a dead node's users ([`forget`]).
    pub(crate) users: kv::Store,
}

/// Opens the bucket and starts the task that writes this node's records in order and the one
/// that watches every node's (from the first: each user's latest record, then every change).
pub(crate) async fn start(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    me: &str,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
) -> Result<UsersLink, ClusterError> {
    let users = crate::node::bucket(js, cfg, "users", Duration::ZERO).await?;
    let (writes, rx) = mpsc::unbounded_channel();
    // Ends when the driver (which holds the sender) does.
    tokio::spawn(keep_users(
        users.clone(),
        me.to_owned(),
        cfg.ack_timeout,
        rx,
    ));
    let mine = me.to_owned();
    let watch = tokio::spawn(crate::kept::watch_changes(
        users.clone(),
        1,
        tx,
        links,
        "users",
        move |entry| news(entry, &mine),
    ));
    Ok(UsersLink {
        writes,
        watch,
        users,
    })
}

/// Writes the hub's records in order, each try bounded by `wait`, again while NATS does not
/// answer, for up to [`WRITE_PATIENCE`].
async fn keep_users(
    users: kv::Store,
    me: String,
    wait: Duration,
    mut rx: mpsc::UnboundedReceiver<(Nick, Option<Presence>)>,
) {
    while let Some((nick, presence)) = rx.recv().await {
        let label = ("user's record", &nick);
        let written = crate::kept::patiently(wait, WRITE_PATIENCE, label, || {
            write(&users, &me, &nick, presence.as_ref())
        });
        if let Err(e) = written.await {
            warn!(%nick, error = %e, "user's record not written; given up");
        }
    }
}

/// Puts `nick`'s record, or removes it if it is still this node's.
async fn write(
    users: &kv::Store,
    me: &str,
    nick: &Nick,
    presence: Option<&Presence>,
) -> Result<(), String> {
    let key = nick_key(nick);
    if let Some(p) = presence {
        users
            .put(&key, encode(p, me)?)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    let Some(entry) = users.entry(&key).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if entry.operation != kv::Operation::Put {
        return Ok(());
    }
    let mine = decode(&entry.value).is_ok_and(|(_, node)| node == me);
    if !mine {
        debug!(%nick, "user's record is another node's now: kept");
        return Ok(());
    }
    match users
        .delete_expect_revision(&key, Some(entry.revision))
        .await
    {
        Ok(()) => Ok(()),
        // Another node wrote it in between: it is theirs.
        Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Forgets `nicks`, users of `node`, a node whose lease ran out (`ClusterOut::Forget`): each
/// one's record and its nick's ownership are deleted if still `node`'s, compare-and-swap on the
/// revision read (a node that took the nick over meanwhile keeps it). Several nodes may do it
/// at once: whoever comes second finds the entries gone or changed.
pub(crate) async fn forget(
    users: &kv::Store,
    nicks: &kv::Store,
    node: &str,
    gone: &[Nick],
) -> Result<(), String> {
    for nick in gone {
        // The nick first: once a node hears the record gone, the nick is free.
        let key = nick_key(nick);
        if let Some(e) = nicks.entry(&key).await.map_err(|e| e.to_string())?
            && e.operation == kv::Operation::Put
            && e.value.as_ref() == node.as_bytes()
        {
            delete_if(nicks, &key, e.revision).await?;
        }
        if let Some(e) = users.entry(&key).await.map_err(|e| e.to_string())?
            && e.operation == kv::Operation::Put
            && decode(&e.value).is_ok_and(|(_, n)| n == node)
        {
            delete_if(users, &key, e.revision).await?;
        }
    }
    Ok(())
}

/// Deletes `key` if its revision is still `revision` (else another node changed it: kept).
async fn delete_if(store: &kv::Store, key: &str, revision: u64) -> Result<(), String> {
    match store.delete_expect_revision(key, Some(revision)).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// What a bucket entry tells the hub of node `me`: the user as its node says, or that nobody
/// has the nick.
fn news(entry: &kv::Entry, me: &str) -> Option<ClusterIn> {
    match entry.operation {
        kv::Operation::Put => match decode(&entry.value) {
            Ok((presence, node)) => Some(ClusterIn::Presence {
                nick: presence.nick.clone(),
                presence: Some(presence),
                mine: node == me,
                node,
            }),
            Err(why) => {
                warn!(key = %entry.key, %why, "user's record not understood; skipped");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => Some(ClusterIn::Presence {
            nick: Nick::new(&unhex(&entry.key)?).ok()?,
            presence: None,
            node: String::new(),
            mine: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let p = Presence {
            nick: Nick::new("Bob").unwrap(),
            account: Some(Nick::new("bob").unwrap()),
            away: natter_core::Text::new("lunch").ok(),
            rooms: vec![natter_core::RoomName::new("#a").unwrap()],
            irc: Some(("~bob".into(), "Bob Stone".into())),
            offline: true,
        };
        let bytes = encode(&p, "node1").unwrap();
        assert_eq!(decode(&bytes).unwrap(), (p.clone(), "node1".to_owned()));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err());
        assert_eq!(unhex(&nick_key(&p.nick)).as_deref(), Some("bob"));
    }

    #[test]
    fn a_record_an_older_node_wrote_reads_with_no_rooms() {
        #[derive(serde::Serialize)]
        struct V1 {
            nick: Nick,
            account: Option<Nick>,
            away: Option<natter_core::Text>,
            node: String,
        }
        let old = V1 {
            nick: Nick::new("Bob").unwrap(),
            account: None,
            away: None,
            node: "node1".to_owned(),
        };
        let bytes = crate::kept::encode_entry(&old).unwrap();
        let (p, node) = decode(&bytes).unwrap();
        assert_eq!((p.nick.as_str(), node.as_str()), ("Bob", "node1"));
        assert!(p.rooms.is_empty());
    }

    #[test]
    fn a_record_a_node_wrote_before_irc_names_were_shared_reads_with_none() {
        #[derive(serde::Serialize)]
        struct V2 {
            nick: Nick,
            account: Option<Nick>,
            away: Option<natter_core::Text>,
            rooms: Vec<natter_core::RoomName>,
            node: String,
        }
        let old = V2 {
            nick: Nick::new("Bob").unwrap(),
            account: None,
            away: natter_core::Text::new("lunch").ok(),
            rooms: vec![natter_core::RoomName::new("#a").unwrap()],
            node: "node-7f3a".to_owned(),
        };
        let bytes = crate::kept::encode_entry(&old).unwrap();
        let (p, node) = decode(&bytes).unwrap();
        assert_eq!((p.nick.as_str(), node.as_str()), ("Bob", "node-7f3a"));
        assert_eq!(p.rooms.len(), 1);
        assert_eq!(p.away.as_ref().map(|a| a.as_str()), Some("lunch"));
        assert_eq!(p.irc, None);
    }

    #[test]
    fn a_record_a_node_wrote_before_offline_was_shared_reads_as_connected() {
        #[derive(serde::Serialize)]
        struct V3 {
            nick: Nick,
            account: Option<Nick>,
            away: Option<natter_core::Text>,
            rooms: Vec<natter_core::RoomName>,
            irc: Option<(Box<str>, Box<str>)>,
            node: String,
        }
        let old = V3 {
            nick: Nick::new("Bob").unwrap(),
            account: Some(Nick::new("bob").unwrap()),
            away: None,
            rooms: vec![natter_core::RoomName::new("#a").unwrap()],
            irc: Some(("~bob".into(), "Bob Stone".into())),
            node: "node-7f3a0c1d2e".to_owned(),
        };
        let bytes = crate::kept::encode_entry(&old).unwrap();
        let (p, node) = decode(&bytes).unwrap();
        assert_eq!((p.nick.as_str(), node.as_str()), ("Bob", "node-7f3a0c1d2e"));
        assert_eq!(p.irc.as_ref().map(|i| &*i.1), Some("Bob Stone"));
        assert!(!p.offline);
    }
}
