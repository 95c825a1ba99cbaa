//! Rooms' topics in the cluster: one KV entry per room (`<prefix>_topics`, keyed by the hex of
//! its name) holding the topic of the room's newest `Topic` event told, with the event's seq
//! ([`RoomTopic`]). The node that published the event writes it once the room's log has stored
//! it ([`ClusterOut::Topic`](natter_core::hub::ClusterOut::Topic)), compare-and-swap on the
//! entry's revision, and never over a topic of a later seq: two nodes' topics, or one written
//! late, leave the log's last one. Every node watches the bucket from its start and hands each
//! to its hub, so a node none of whose users is in a room knows its topic (`LIST`, `TOPIC`).
//! The topic is an event of the room's log as before; this is a copy of the newest one. A
//! room closed (`/close`) loses its entry
//! ([`ClusterOut::TopicGone`](natter_core::hub::ClusterOut::TopicGone)): deleted, with a
//! compare-and-swap on the revision read, unless it holds a topic of a seq after the newest
//! the closing node knew of (set after the close, in the room opened again). It goes through
//! the same ordered writer as the node's topics, so a topic this node set before the close
//! cannot land after it; one set on another node just before the close and written there only
//! after the delete is kept (as before the close).

use crate::names::room_key;
use crate::node::ClusterIn;
use crate::{ClusterConfig, ClusterError};
use async_nats::jetstream::{self, kv};
use natter_core::RoomName;
use natter_core::hub::RoomTopic;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Tries of one write against other nodes' writes of the same room before it is given up.
const MAX_WRITE_TRIES: usize = 16;
/// How long a write is tried again while NATS does not answer (then it is given up, logged:
/// the room's log still has the topic; nodes not in the room go on with the one before).
const WRITE_PATIENCE: Duration = Duration::from_secs(30);
/// The largest topic entry read (a topic is a line of text).
const MAX_ENTRY_BYTES: usize = 64 << 10;

/// A room's topic as the bucket keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredTopic {
    room: RoomName,
    topic: RoomTopic,
    /// The node that wrote it.
    node: String,
}

fn decode(value: &[u8]) -> Result<StoredTopic, String> {
    crate::kept::decode_entry::<StoredTopic, MAX_ENTRY_BYTES>(value, "a room's topic")
}

/// The topics' side of a node: where to send the hub's topics, and the bucket's watch.
pub(crate) struct TopicsLink {
    pub(crate) writes: mpsc::UnboundedSender<(RoomName, TopicOp)>,
    pub(crate) watch: JoinHandle<()>,
}

/// Opens the bucket and starts the task that writes this node's topics in order and the one
/// that hands every room's (from the bucket's first revision: each room's latest) to the hub.
pub(crate) async fn start(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    me: &str,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
) -> Result<TopicsLink, ClusterError> {
    let topics = crate::node::bucket(js, cfg, "topics", Duration::ZERO).await?;
    let (writes, rx) = mpsc::unbounded_channel();
    // Ends when the driver (which holds the sender) does.
    tokio::spawn(keep_topics(
        topics.clone(),
        me.to_owned(),
        cfg.ack_timeout,
        rx,
    ));
    let watch = tokio::spawn(crate::kept::watch_changes(
        topics, 1, tx, links, "topics", news,
    ));
    Ok(TopicsLink { writes, watch })
}

/// What the hub asked of a room's topic, done in order by [`keep_topics`].
#[derive(Debug)]
pub(crate) enum TopicOp {
    /// Keep this one, unless one of a later seq is kept.
    Set(RoomTopic),
    /// The room was closed: remove the one kept unless its seq is after this.
    Gone(u64),
}

/// Writes the hub's topics in order, each try bounded by `wait`, again while NATS does not
/// answer, for up to [`WRITE_PATIENCE`].
async fn keep_topics(
    topics: kv::Store,
    me: String,
    wait: Duration,
    mut rx: mpsc::UnboundedReceiver<(RoomName, TopicOp)>,
) {
    while let Some((room, op)) = rx.recv().await {
        let label = ("room's topic", &room);
        let written = crate::kept::patiently(wait, WRITE_PATIENCE, label, || async {
            match &op {
                TopicOp::Set(topic) => write(&topics, &me, &room, topic).await,
                TopicOp::Gone(upto) => gone(&topics, &room, *upto).await,
            }
        });
        if let Err(e) = written.await {
            warn!(%room, error = %e, "room's topic not kept in the cluster; given up");
        }
    }
}

/// Writes `topic` as `room`'s unless the entry holds one of the same or a later seq: read,
/// compare, compare-and-swap on the revision read (a `create` if there is none), again if
/// another node wrote in between.
pub(crate) async fn write(
    topics: &kv::Store,
    me: &str,
    room: &RoomName,
    topic: &RoomTopic,
) -> Result<(), String> {
    let key = room_key(room);
    let value = crate::kept::encode_entry(&StoredTopic {
        room: room.clone(),
        topic: topic.clone(),
        node: me.to_owned(),
    })?;
    for _ in 0..MAX_WRITE_TRIES {
        let entry = topics
            .entry(&key)
            .await
            .map_err(|e| e.to_string())?
            .filter(|e| e.operation == kv::Operation::Put);
        // An entry that does not read is written over.
        if let Some(e) = &entry
            && decode(&e.value).is_ok_and(|kept| kept.topic.seq >= topic.seq)
        {
            debug!(%room, seq = topic.seq, "a later topic is kept already");
            return Ok(());
        }
        let read = entry.map(|e| e.revision);
        match crate::kept::write_over(topics, &key, value.clone(), read).await? {
            Some(_) => return Ok(()),
            None => debug!(%room, "another node wrote the room's topic meanwhile; again"),
        }
    }
    Err(format!("{MAX_WRITE_TRIES} tries lost to other writers"))
}

/// Removes `room`'s entry unless it holds a topic of a seq after `upto` (one that does not
/// read goes too): read, compare, delete with a compare-and-swap on the revision read, again
/// if another node wrote in between.
pub(crate) async fn gone(topics: &kv::Store, room: &RoomName, upto: u64) -> Result<(), String> {
    let key = room_key(room);
    for _ in 0..MAX_WRITE_TRIES {
        let Some(entry) = topics
            .entry(&key)
            .await
            .map_err(|e| e.to_string())?
            .filter(|e| e.operation == kv::Operation::Put)
        else {
            return Ok(());
        };
        if decode(&entry.value).is_ok_and(|kept| kept.topic.seq > upto) {
            debug!(%room, upto, "a topic set after the close is kept");
            return Ok(());
        }
        match topics
            .delete_expect_revision(&key, Some(entry.revision))
            .await
        {
            Ok(()) => {
                debug!(%room, "closed room's topic removed from the cluster");
                return Ok(());
            }
            Err(e) => debug!(%room, error = %e, "closed room's topic: its removal raced; again"),
        }
    }
    Err(format!("{MAX_WRITE_TRIES} tries lost to other writers"))
}

/// What a bucket entry tells the hub: the room's topic, or that none is kept any more.
fn news(entry: &kv::Entry) -> Option<ClusterIn> {
    match entry.operation {
        kv::Operation::Put => match decode(&entry.value) {
            Ok(s) => Some(ClusterIn::Topic {
                room: s.room,
                topic: Some(s.topic),
            }),
            Err(why) => {
                warn!(key = %entry.key, %why, "room's topic not understood; skipped");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => Some(ClusterIn::Topic {
            room: RoomName::new(&crate::names::unhex(&entry.key)?).ok()?,
            topic: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::{Millis, Nick, Text};

    #[test]
    fn a_topic_reads_back_as_written() {
        let stored = StoredTopic {
            room: RoomName::new("#Rust.dev").unwrap(),
            topic: RoomTopic {
                seq: 42,
                topic: Text::new("release on friday").ok(),
                by: Nick::new("alice").unwrap(),
                at: Millis(1_700_000_000_000),
            },
            node: "node1".into(),
        };
        let bytes = crate::kept::encode_entry(&stored).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!((back.room, back.topic), (stored.room, stored.topic));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_rooms_topic_goes_unless_a_later_one_was_set() {
        let nats = crate::test_server::NatsServer::start();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let cfg = ClusterConfig::new(vec![nats.url()]);
        let kv = crate::node::bucket(&js, &cfg, "topics", Duration::ZERO)
            .await
            .unwrap();
        let room = RoomName::new("#closing").unwrap();
        let topic = |seq| RoomTopic {
            seq,
            topic: Text::new("old plans").ok(),
            by: Nick::new("alice").unwrap(),
            at: Millis(1),
        };
        let kept = async |kv: &kv::Store| {
            let e = kv.entry(room_key(&room)).await.unwrap();
            e.filter(|e| e.operation == kv::Operation::Put)
                .map(|e| decode(&e.value).unwrap().topic.seq)
        };
        write(&kv, "a", &room, &topic(5)).await.unwrap();
        // Closed after seq 9: the topic of seq 5 goes; a second close finds nothing.
        gone(&kv, &room, 9).await.unwrap();
        assert_eq!(kept(&kv).await, None);
        gone(&kv, &room, 9).await.unwrap();
        // The room opened again and set a topic: a late close of the old room leaves it.
        write(&kv, "b", &room, &topic(12)).await.unwrap();
        assert_eq!(kept(&kv).await, Some(12));
        gone(&kv, &room, 9).await.unwrap();
        assert_eq!(kept(&kv).await, Some(12));
        // A watcher hears the removal as "none kept".
        gone(&kv, &room, 12).await.unwrap();
        let last = kv.entry(room_key(&room)).await.unwrap().unwrap();
        assert!(matches!(
            news(&last),
            Some(ClusterIn::Topic { topic: None, .. })
        ));
    }
}
