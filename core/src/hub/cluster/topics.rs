//! Rooms' topics in a cluster. A topic is a room event in the room's log, so the nodes that
//! follow the room know it; a node none of whose users is in the room did not, and listed the
//! room without a topic (`LIST`, `/rooms`) and answered `TOPIC #room` with "not in it". Now the
//! node that published a `Topic` event, once the log has stored it, tells the cluster the
//! room's topic with the event's seq ([`ClusterOut::Topic`]); natter-cluster keeps the newest
//! of each room by seq (one that reaches the key-value store late never replaces a newer one)
//! and every node hears it ([`Hub::handle_topic`]). A node answers with it for the rooms its
//! own users are not in; the rooms they are in have the log's topic, and the cluster's fills
//! in one set before the recent events a node reads when it starts following the room.

use super::super::Hub;
use super::super::room::TopicSet;
use super::ClusterOut;
use crate::time::Millis;
use crate::types::{Nick, RoomName, Seq, Text};
use tracing::debug;

/// A room's topic as the cluster keeps it: from the room's newest `Topic` event told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomTopic {
    /// The event's seq in the room's log: a topic replaces one of a lower seq only.
    pub seq: u64,
    /// The topic (`None`: cleared).
    pub topic: Option<Text>,
    /// Who set it.
    pub by: Nick,
    /// When.
    pub at: Millis,
}

impl Hub {
    /// A `Topic` event of `room`'s log, with its `seq`: kept as the room's newest (the log is
    /// never behind the cluster's copy); if this node published it (`mine`), the cluster is
    /// told.
    pub(in crate::hub) fn topic_from_log(
        &mut self,
        room: &RoomName,
        seq: Seq,
        topic: Option<Text>,
        by: Nick,
        at: Millis,
        mine: bool,
    ) {
        let told = RoomTopic {
            seq: seq.0,
            topic,
            by,
            at,
        };
        self.keep_topic(room, &told);
        if !mine {
            return;
        }
        if let Some(cl) = self.cluster.as_mut() {
            cl.out.push_back(ClusterOut::Topic {
                room: room.clone(),
                topic: told,
            });
        }
    }

    /// Cluster mode: `room` is being closed here: the topic the cluster keeps of it goes
    /// (unless a later one came meanwhile, [`ClusterOut::TopicGone`]), so that no node
    /// answers `TOPIC` or fills in a room of that name opened again with the closed room's.
    pub(in crate::hub) fn topic_gone(&mut self, room: &RoomName) {
        let last = self.rooms.get(room).map_or(0, |r| r.last_seq.0);
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        let told = cl.topics.remove(room).map_or(0, |t| t.seq);
        cl.out.push_back(ClusterOut::TopicGone {
            room: room.clone(),
            upto: last.max(told),
        });
    }

    /// Keeps `told` as `room`'s topic if it is newer than the one kept; whether it was.
    fn keep_topic(&mut self, room: &RoomName, told: &RoomTopic) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        match cl.topics.get(room) {
            Some(kept) if kept.seq >= told.seq => false,
            _ => {
                cl.topics.insert(room.clone(), told.clone());
                true
            }
        }
    }

    /// Cluster mode: `room`'s topic as the cluster keeps it, told by the node that set it (or
    /// read when this node starts; `None`: the cluster keeps none any more). A topic older
    /// than the one known is ignored. A room this node's users are in keeps the log's topic,
    /// unless the log's events read here were all after this one (the node started following
    /// the room after it was set): then it has it from here.
    pub fn handle_topic(&mut self, room: RoomName, topic: Option<RoomTopic>) {
        let Some(told) = topic else {
            if let Some(cl) = self.cluster.as_mut() {
                cl.topics.remove(&room);
            }
            return;
        };
        if self.keep_topic(&room, &told) {
            debug!(%room, seq = told.seq, "room's topic from the cluster");
            self.fill_topic(&room);
        }
    }

    /// A room held here whose log events read here never set its topic takes the cluster's,
    /// if that one is in the part of the log before them (later, the log brings it itself).
    pub(in crate::hub) fn fill_topic(&mut self, room: &RoomName) {
        let Some(told) = self.cluster.as_ref().and_then(|cl| cl.topics.get(room)) else {
            return;
        };
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.topic.is_some() || r.topic_set.is_some() || told.seq > r.last_seq.0 {
            return;
        }
        let by = TopicSet {
            by: told.by.clone(),
            at: told.at,
        };
        r.set_topic(told.topic.clone(), Some(by));
    }

    /// Cluster mode: the topic the cluster keeps of `room`, for a room no user here is in.
    pub(in crate::hub) fn remote_topic(&self, room: &RoomName) -> Option<&RoomTopic> {
        let cl = self.cluster.as_ref()?;
        if self.rooms.get(room).is_some_and(|r| !r.members.is_empty()) {
            return None;
        }
        cl.topics.get(room)
    }
}
