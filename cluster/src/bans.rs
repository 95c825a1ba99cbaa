//! Server-wide bans in the cluster: one KV entry per mask (`<prefix>_bans`, keyed by the hex of
//! [`mask_key`]: its names folded), holding the ban or, once lifted, a tombstone (a lift is a
//! write like a ban, so its revision orders it against the ban it lifts, and every node hears
//! it through the same watch). One entry per mask needs no compare-and-swap: two admins' bans
//! of different masks are different keys, and a ban replaces one on the same mask, as on a
//! single node. Every node watches the bucket and hands each mask's ban to its hub; a node
//! starting reads them all before it serves anyone. A ban whose term is over is removed
//! ([`expire`]), compare-and-swap on the revision that ran out: of the nodes that see it run
//! out, one removes it, and a ban set again on the mask meanwhile stays.

use crate::node::ClusterIn;
use crate::{ClusterConfig, ClusterError};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use natter_core::hub::mask_key;
use natter_core::moderation::{Entry, Mask};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::warn;

/// How long a ban or a lift is tried again while NATS does not answer (then it is given up,
/// logged, and the node goes back to what the cluster holds).
const WRITE_PATIENCE: Duration = Duration::from_secs(30);
/// The largest entry read (bincode's limit before it allocates): a mask, a nick and a reason.
const MAX_ENTRY_BYTES: usize = 4 << 10;

/// A mask's entry as the bucket keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredBan {
    mask: Mask,
    /// `None`: lifted.
    ban: Option<Entry>,
    /// The node that wrote it.
    node: String,
}

fn encode(mask: &Mask, ban: Option<&Entry>, node: &str) -> Result<Bytes, String> {
    let stored = StoredBan {
        mask: mask.clone(),
        ban: ban.cloned(),
        node: node.to_owned(),
    };
    crate::kept::encode_entry(&stored)
}

/// A mask's entry as the bucket kept it before bans recorded when they were set.
#[derive(serde::Deserialize)]
struct StoredBanV1 {
    mask: Mask,
    ban: Option<natter_core::moderation::v1::Entry>,
    node: String,
}

impl From<StoredBanV1> for StoredBan {
    fn from(o: StoredBanV1) -> StoredBan {
        StoredBan {
            mask: o.mask,
            ban: o.ban.map(Into::into),
            node: o.node,
        }
    }
}

fn decode(value: &[u8]) -> Result<(Mask, Option<Entry>), String> {
    // An entry written before bans had their time is read as it is (the time unknown).
    let s = crate::kept::decode_entry_or_older::<StoredBan, StoredBanV1, MAX_ENTRY_BYTES>(
        value,
        "a server ban",
    )?;
    if s.ban.as_ref().is_some_and(|b| b.mask != s.mask) {
        return Err("a server ban under another mask".into());
    }
    Ok((s.mask, s.ban))
}

/// The KV key of `mask`'s ban.
pub fn ban_key(mask: &Mask) -> String {
    crate::names::hex(&mask_key(mask))
}

/// A server ban as the cluster holds it, with its entry's revision.
pub type KeptBan = (Entry, u64);

/// The bans' side of a node: where to send the hub's changes, and the bans read at start.
pub(crate) struct BansLink {
    pub(crate) changes: mpsc::UnboundedSender<(Mask, Option<Entry>)>,
    pub(crate) kept: Vec<KeptBan>,
    pub(crate) watch: JoinHandle<()>,
    /// The bucket, to remove bans that ran out ([`expire`]).
    pub(crate) bans: kv::Store,
}

/// Opens the bucket, reads every ban in it, and starts the task that writes this node's
/// changes in order and the one that watches every node's.
pub(crate) async fn start(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    me: &str,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
) -> Result<BansLink, ClusterError> {
    let bans = crate::node::bucket(js, cfg, "bans", Duration::ZERO).await?;
    let stream = format!("KV_{}_bans", cfg.prefix);
    let (entries, from) =
        crate::kept::read_all(js, &stream, &bans, 5 * cfg.ack_timeout, "server bans")
            .await
            .map_err(|why| ClusterError::JetStream {
                what: "server bans",
                why,
            })?;
    let kept = entries
        .iter()
        .filter_map(|e| match news(e)? {
            ClusterIn::ServerBan {
                ban: Some(ban),
                revision,
                ..
            } => Some((ban, revision)),
            _ => None,
        })
        .collect();
    let (changes, rx) = mpsc::unbounded_channel();
    // Ends when the driver (which holds the sender) does.
    tokio::spawn(keep_bans(
        bans.clone(),
        me.to_owned(),
        cfg.ack_timeout,
        rx,
        tx.clone(),
    ));
    let watch = tokio::spawn(crate::kept::watch_changes(
        bans.clone(),
        from,
        tx,
        links,
        "server bans",
        news,
    ));
    Ok(BansLink {
        changes,
        kept,
        watch,
        bans,
    })
}

/// Writes the hub's bans and lifts in order, each try bounded by `wait`, again while NATS does
/// not answer, for up to [`WRITE_PATIENCE`]; answers each ([`ClusterIn::ServerBanWritten`]).
async fn keep_bans(
    bans: kv::Store,
    me: String,
    wait: Duration,
    mut rx: mpsc::UnboundedReceiver<(Mask, Option<Entry>)>,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    while let Some((mask, ban)) = rx.recv().await {
        let revision = match encode(&mask, ban.as_ref(), &me) {
            Ok(value) => {
                let label = ("server ban", &mask);
                let written = crate::kept::patiently(wait, WRITE_PATIENCE, label, || async {
                    let put = bans.put(ban_key(&mask), value.clone()).await;
                    put.map_err(|e| e.to_string())
                });
                written.await.map_or_else(
                    |e| {
                        warn!(%mask, error = %e, "server ban not written; given up");
                        None
                    },
                    Some,
                )
            }
            Err(e) => {
                warn!(%mask, error = %e, "server ban not encoded; given up");
                None
            }
        };
        if tx
            .send(ClusterIn::ServerBanWritten { mask, revision })
            .is_err()
        {
            return;
        }
    }
}

/// Removes `mask`'s entry if it is still at `revision` (`ClusterOut::ExpireServerBan`: its
/// term is over). Whether it was removed here: `false` if another node did first or the mask
/// was banned or lifted again meanwhile.
pub(crate) async fn expire(bans: &kv::Store, mask: &Mask, revision: u64) -> Result<bool, String> {
    match bans
        .delete_expect_revision(ban_key(mask), Some(revision))
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// What a bucket entry tells the hub: the mask's ban as it is (or its lift; a removal, of a ban
/// that ran out, is one too).
fn news(entry: &kv::Entry) -> Option<ClusterIn> {
    if entry.operation != kv::Operation::Put {
        let mask = crate::names::unhex(&entry.key).and_then(|k| Mask::parse(&k).ok());
        let Some(mask) = mask else {
            warn!(key = %entry.key, "server ban's removal not understood; skipped");
            return None;
        };
        return Some(ClusterIn::ServerBan {
            mask,
            ban: None,
            revision: entry.revision,
        });
    }
    match decode(&entry.value) {
        Ok((mask, ban)) => Some(ClusterIn::ServerBan {
            mask,
            ban,
            revision: entry.revision,
        }),
        Err(why) => {
            warn!(key = %entry.key, %why, "server ban not understood; skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::Nick;

    #[test]
    fn a_ban_reads_back_as_written_and_one_mask_has_one_key_whatever_its_case() {
        let mask = Mask::parse("nick:Mallory").unwrap();
        let ban = Entry {
            mask: mask.clone(),
            until: Some(natter_core::Millis(42)),
            by: Nick::new("root").unwrap(),
            reason: natter_core::Text::new("spam").ok(),
            at: natter_core::Millis(1_700_000_000_000),
        };
        let bytes = encode(&mask, Some(&ban), "node1").unwrap();
        assert_eq!(decode(&bytes).unwrap(), (mask.clone(), Some(ban.clone())));
        let lifted = encode(&mask, None, "node1").unwrap();
        assert_eq!(decode(&lifted).unwrap(), (mask.clone(), None));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // What nodes wrote before bans had their time: read with the time unknown.
        #[derive(serde::Serialize)]
        struct Old {
            mask: Mask,
            ban: Option<(
                Mask,
                Option<natter_core::Millis>,
                Nick,
                Option<natter_core::Text>,
            )>,
            node: String,
        }
        let old = Old {
            mask: mask.clone(),
            ban: Some((mask.clone(), ban.until, ban.by.clone(), ban.reason.clone())),
            node: "node0".into(),
        };
        let bytes = crate::kept::encode_entry(&old).unwrap();
        let before = Entry {
            at: natter_core::Millis(0),
            ..ban.clone()
        };
        assert_eq!(decode(&bytes).unwrap(), (mask.clone(), Some(before)));
        let other = Mask::parse("nick:mallory").unwrap();
        assert_eq!(ban_key(&mask), ban_key(&other));
        assert!(ban_key(&mask).bytes().all(|c| c.is_ascii_hexdigit()));
        let net = Mask::parse("203.0.113.0/24").unwrap();
        assert_ne!(ban_key(&net), ban_key(&mask));
        // A removal's key says which mask it was.
        for m in [&mask, &net, &Mask::parse("account:Ann[1]").unwrap()] {
            let back = crate::names::unhex(&ban_key(m)).and_then(|k| Mask::parse(&k).ok());
            assert_eq!(back.map(|b| mask_key(&b)), Some(mask_key(m)));
        }
        let wrong = encode(&net, Some(&ban), "node1").unwrap();
        assert!(decode(&wrong).is_err(), "a ban under another mask's entry");
    }
}
