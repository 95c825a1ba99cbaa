//! Rooms' settings in the cluster: one KV entry per room (`<prefix>_rooms`, keyed by the hex of
//! its name) holding its moderation state whole: founder, operators, voices, modes, bans,
//! mutes and invitations ([`SharedRoom`]). The hub hands each change an operator made as an
//! edit ([`PolicyEdit`]), not as the room's new state: the edit is applied to the entry as it
//! is ([`SharedRoom::apply`], core's rule) and written back with a compare-and-swap on the
//! revision read (or a `create` for a room with no entry yet), again until no other node wrote
//! in between, so two operators changing one room on two nodes at once both land. A close
//! removes the entry with a removal that carries who closed the room and why ([`RoomClose`]
//! in the removal's body, which KV readers ignore), so that every node tells its members the
//! same words; a room with no entry gets the removal too, for every node to hear of the close.
//! Every node watches the bucket and hands each room as it is after a change to its hub; a
//! node starting reads every room before it serves anyone.

use crate::names::room_key;
use crate::node::ClusterIn;
use crate::{ClusterConfig, ClusterError};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use natter_core::moderation::{Policy, PolicyEdit, RoomClose, SharedRoom};
use natter_core::{Nick, RoomName};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Tries of one edit against other nodes' edits of the same room before it is given up
/// (logged): each lost race means another node wrote in between.
const MAX_WRITE_TRIES: usize = 16;
/// How long an edit is tried again while NATS does not answer (then it is given up, logged,
/// and the node goes back to what the cluster holds).
const WRITE_PATIENCE: Duration = Duration::from_secs(30);
/// The largest room entry read (bincode's limit before it allocates): 500 bans and 500 mutes
/// with reasons, 100 operators, voices and invitations fit well inside.
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// A room's settings as the bucket keeps them.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRoom {
    room: RoomName,
    policy: Policy,
    /// (invited, by whom), oldest first.
    invited: Vec<(Nick, Nick)>,
    /// The node that wrote it last.
    node: String,
}

fn encode_room(room: &RoomName, s: &SharedRoom, node: &str) -> Result<Bytes, String> {
    let stored = StoredRoom {
        room: room.clone(),
        policy: s.policy.clone(),
        invited: s.invited.clone(),
        node: node.to_owned(),
    };
    crate::kept::encode_entry(&stored)
}

/// A room's settings as the bucket kept them before bans recorded when they were set.
#[derive(serde::Deserialize)]
struct StoredRoomV1 {
    room: RoomName,
    policy: natter_core::moderation::v1::Policy,
    invited: Vec<(Nick, Nick)>,
    node: String,
}

impl From<StoredRoomV1> for StoredRoom {
    fn from(o: StoredRoomV1) -> StoredRoom {
        StoredRoom {
            room: o.room,
            policy: o.policy.into(),
            invited: o.invited,
            node: o.node,
        }
    }
}

fn decode_room(value: &[u8]) -> Result<(RoomName, SharedRoom), String> {
    // An entry written before bans had their time is read as it is (the time unknown); the
    // next change of the room writes it anew.
    let s = crate::kept::decode_entry_or_older::<StoredRoom, StoredRoomV1, MAX_ENTRY_BYTES>(
        value,
        "a room's settings",
    )?;
    let shared = SharedRoom {
        policy: s.policy,
        invited: s.invited,
    };
    Ok((s.room, shared))
}

/// A close as a room's removal carries it: the room, who closed it and why, and the node.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredClose {
    room: RoomName,
    close: RoomClose,
    node: String,
}

/// The largest close read from a removal (a room name, a nick, a reason and a node's name).
const MAX_CLOSE_BYTES: usize = 4096;

fn encode_close(room: &RoomName, close: &RoomClose, node: &str) -> Result<Bytes, String> {
    crate::kept::encode_entry(&StoredClose {
        room: room.clone(),
        close: close.clone(),
        node: node.to_owned(),
    })
}

/// Who closed the room and why, as its removal says (nothing in one from a node older than
/// the forty-second session, or one that is not understood: logged, the close holds).
fn decode_close(room: &RoomName, value: &[u8]) -> Option<RoomClose> {
    if value.is_empty() {
        return None;
    }
    match crate::kept::decode_entry::<StoredClose, MAX_CLOSE_BYTES>(value, "a room's close") {
        Ok(s) if s.room == *room => Some(s.close),
        Ok(s) => {
            warn!(%room, other = %s.room, "a room's removal names another room; not used");
            None
        }
        Err(why) => {
            warn!(%room, %why, "who closed a room not understood; the close holds");
            None
        }
    }
}

/// The room a key names (keys are the hex of its name).
fn room_of_key(key: &str) -> Option<RoomName> {
    RoomName::new(&crate::names::unhex(key)?).ok()
}

/// A room as the cluster holds it, with its entry's revision.
pub type KeptRoom = (RoomName, SharedRoom, u64);

/// The rooms' side of a node: where to send the hub's edits, and the rooms read at start.
pub(crate) struct RoomsLink {
    pub(crate) edits: mpsc::UnboundedSender<(RoomName, PolicyEdit)>,
    pub(crate) kept: Vec<KeptRoom>,
    pub(crate) watch: JoinHandle<()>,
}

/// Opens the bucket, reads every room in it, and starts the task that does this node's edits
/// in order and the one that watches every node's.
pub(crate) async fn start(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    me: &str,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
) -> Result<RoomsLink, ClusterError> {
    let rooms = crate::node::bucket(js, cfg, "rooms", Duration::ZERO).await?;
    let stream = format!("KV_{}_rooms", cfg.prefix);
    let (kept, from) = load(js, &stream, &rooms, 5 * cfg.ack_timeout)
        .await
        .map_err(|why| ClusterError::JetStream {
            what: "rooms' settings",
            why,
        })?;
    // A removed account's lift is checked against the name's registration there.
    let accounts = crate::node::bucket(js, cfg, "accounts", Duration::ZERO).await?;
    let (edits, rx) = mpsc::unbounded_channel();
    // Ends when the driver (which holds the sender) does.
    tokio::spawn(keep_rooms(
        (js.clone(), accounts),
        rooms.clone(),
        me.to_owned(),
        cfg.ack_timeout,
        rx,
        tx.clone(),
    ));
    let watch = tokio::spawn(crate::kept::watch_changes(
        rooms, from, tx, links, "rooms", news,
    ));
    Ok(RoomsLink { edits, kept, watch })
}

/// Does the hub's edits in order, each try bounded by `wait`, again while NATS does not answer,
/// for up to [`WRITE_PATIENCE`]; answers each ([`ClusterIn::RoomWritten`]).
async fn keep_rooms(
    (js, accounts): (jetstream::Context, kv::Store),
    rooms: kv::Store,
    me: String,
    wait: Duration,
    mut rx: mpsc::UnboundedReceiver<(RoomName, PolicyEdit)>,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    while let Some((room, edit)) = rx.recv().await {
        let label = ("room settings", &room);
        let written = crate::kept::patiently(wait, WRITE_PATIENCE, label, || {
            apply((&js, &accounts), &rooms, &me, &room, &edit)
        });
        let revision = match written.await {
            Ok(revision) => Some(revision),
            Err(e) => {
                warn!(%room, error = %e, "room settings not written; given up");
                None
            }
        };
        if tx.send(ClusterIn::RoomWritten { room, revision }).is_err() {
            return;
        }
    }
}

/// Applies `edit` to `room`'s entry: read, apply, compare-and-swap on the revision read (a
/// `create` if there is none), again if another node wrote in between; a close removes it
/// ([`remove`]). The entry's revision after it. A removed founder's lift
/// ([`PolicyEdit::AccountGone`], its founder, operator and voice) is left out when `accounts` holds the name at another
/// registration: the new holder's `/register` of the room stands (its node lifted what it
/// found when the name was registered again).
pub(crate) async fn apply(
    (js, accounts): (&jetstream::Context, &kv::Store),
    rooms: &kv::Store,
    me: &str,
    room: &RoomName,
    edit: &PolicyEdit,
) -> Result<u64, String> {
    let key = room_key(room);
    if let PolicyEdit::AccountGone {
        name,
        registered: Some(registered),
    } = edit
        && let Some(e) = accounts
            .entry(crate::names::nick_key(name))
            .await
            .map_err(|e| e.to_string())?
            .filter(|e| e.operation == kv::Operation::Put)
        && crate::accounts::decode_account(&e.value)?.record.created != *registered
    {
        info!(%room, account = %name, "a removed account's lift after the name was registered again; left out");
        let last = rooms.entry(&key).await.map_err(|e| e.to_string())?;
        return Ok(last.map_or(0, |e| e.revision));
    }
    for _ in 0..MAX_WRITE_TRIES {
        let last = rooms.entry(&key).await.map_err(|e| e.to_string())?;
        let last_revision = last.as_ref().map_or(0, |e| e.revision);
        let entry = last.filter(|e| e.operation == kv::Operation::Put);
        let mut shared = match &entry {
            Some(e) => decode_room(&e.value)?.1,
            None => SharedRoom::default(),
        };
        if !shared.apply(edit) {
            let PolicyEdit::Close(close) = edit else {
                return Err("only a close removes a room".to_owned());
            };
            match remove(js, rooms, &key, (room, close, me), last_revision).await? {
                Some(revision) => {
                    info!(%room, "room's settings removed from the cluster");
                    return Ok(revision);
                }
                None => {
                    debug!(%room, "room removal raced; again");
                    continue;
                }
            }
        }
        let value = encode_room(room, &shared, me)?;
        let read = entry.map(|e| e.revision);
        match crate::kept::write_over(rooms, &key, value, read).await? {
            Some(revision) => return Ok(revision),
            None => debug!(%room, "another node changed the room's entry meanwhile; again"),
        }
    }
    Err(format!("{MAX_WRITE_TRIES} tries lost to other writers"))
}

/// Removes `key`'s entry over its last message (`revision`, 0 for none: a room nobody
/// registered is removed too, for every node to hear of its close), the removal carrying who
/// closed `room` and why (KV readers take a removal's body for nothing). Its revision, or
/// `None` when another node wrote in between. A bucket reached through another JetStream
/// domain gets a bare removal (as before the forty-second session: the words are lost).
async fn remove(
    js: &jetstream::Context,
    rooms: &kv::Store,
    key: &str,
    (room, close, me): (&RoomName, &RoomClose, &str),
    revision: u64,
) -> Result<Option<u64>, String> {
    if rooms.use_jetstream_prefix {
        let expect = (revision > 0).then_some(revision);
        return match rooms.delete_expect_revision(key, expect).await {
            Ok(()) => Ok(Some(revision)),
            Err(e) => {
                debug!(%room, error = %e, "room removal failed");
                Ok(None)
            }
        };
    }
    let subject = format!(
        "{}{key}",
        rooms.put_prefix.as_deref().unwrap_or(&rooms.prefix)
    );
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("KV-Operation", "DEL");
    headers.insert(
        async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
        revision.to_string().as_str(),
    );
    let body = encode_close(room, close, me)?;
    let ack = js
        .publish_with_headers(subject, headers, body)
        .await
        .map_err(|e| e.to_string())?;
    match ack.await {
        Ok(ack) => Ok(Some(ack.sequence)),
        // The server refuses a removal over another last message: another node wrote.
        Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// What a bucket entry tells the hub: the room as it is, or its removal.
fn news(entry: &kv::Entry) -> Option<ClusterIn> {
    match entry.operation {
        kv::Operation::Put => match decode_room(&entry.value) {
            Ok((room, shared)) => Some(ClusterIn::Room {
                room,
                shared: Some(shared),
                close: None,
                revision: entry.revision,
            }),
            Err(why) => {
                warn!(key = %entry.key, %why, "room settings not understood; skipped");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            let room = room_of_key(&entry.key)?;
            Some(ClusterIn::Room {
                close: decode_close(&room, &entry.value),
                room,
                shared: None,
                revision: entry.revision,
            })
        }
    }
}

/// Every room the bucket holds with its revision (`stream`: the bucket's stream), and the
/// revision to watch from for what comes after.
pub(crate) async fn load(
    js: &jetstream::Context,
    stream: &str,
    rooms: &kv::Store,
    wait: Duration,
) -> Result<(Vec<KeptRoom>, u64), String> {
    let (entries, from) = crate::kept::read_all(js, stream, rooms, wait, "rooms' settings").await?;
    let all = entries
        .iter()
        .filter_map(|e| match news(e) {
            Some(ClusterIn::Room {
                room,
                shared: Some(shared),
                revision,
                ..
            }) => Some((room, shared, revision)),
            _ => None,
        })
        .collect();
    Ok((all, from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::moderation::{Entry, Mask};

    #[test]
    fn a_room_reads_back_as_written_and_its_key_names_it() {
        let room = RoomName::new("#Rust.dev").unwrap();
        let mut s = SharedRoom::default();
        s.apply(&PolicyEdit::Ban(Entry {
            mask: Mask::parse("203.0.113.0/24").unwrap(),
            until: None,
            by: Nick::new("op").unwrap(),
            reason: None,
            at: natter_core::Millis(1_700_000_000_000),
        }));
        s.apply(&PolicyEdit::Invite {
            nick: Nick::new("bob").unwrap(),
            by: Nick::new("op").unwrap(),
        });
        let bytes = encode_room(&room, &s, "node1").unwrap();
        assert_eq!(decode_room(&bytes).unwrap(), (room.clone(), s));
        assert!(decode_room(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode_room(&longer).is_err());
        assert_eq!(room_of_key(&room_key(&room)), Some(room));
        assert_eq!(room_of_key("zz"), None);
    }

    #[test]
    fn a_room_written_before_bans_had_their_time_reads_with_the_time_unknown() {
        use natter_core::moderation::Modes;
        use natter_core::{Millis, Text};
        // The layout older builds wrote: bans and mutes without `at`.
        type OldEntry = (Mask, Option<Millis>, Nick, Option<Text>);
        type OldPolicy = (Option<Nick>, Vec<Nick>, Vec<Nick>, Modes);
        #[derive(serde::Serialize)]
        struct Old {
            room: RoomName,
            policy: (OldPolicy, Vec<OldEntry>, Vec<OldEntry>),
            invited: Vec<(Nick, Nick)>,
            node: String,
        }
        let room = RoomName::new("#old").unwrap();
        let op = Nick::new("op").unwrap();
        let mask = Mask::parse("nick:eve").unwrap();
        let old = Old {
            room: room.clone(),
            policy: (
                (
                    Some(op.clone()),
                    vec![op.clone()],
                    Vec::new(),
                    Modes::default(),
                ),
                vec![(mask.clone(), None, op.clone(), Text::new("spam").ok())],
                vec![(mask.clone(), Some(Millis(9)), op.clone(), None)],
            ),
            invited: Vec::new(),
            node: "node0".into(),
        };
        let bytes = crate::kept::encode_entry(&old).unwrap();
        let (got_room, got) = decode_room(&bytes).unwrap();
        assert_eq!(got_room, room);
        assert_eq!(got.policy.founder, Some(op.clone()));
        let ban = &got.policy.bans[0];
        assert_eq!((&ban.mask, ban.at), (&mask, Millis(0)));
        assert_eq!(ban.reason.as_ref().map(Text::as_str), Some("spam"));
        assert_eq!(got.policy.mutes[0].until, Some(Millis(9)));
    }
}
