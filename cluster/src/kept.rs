//! What the buckets every node keeps whole (accounts, rooms' settings) have in common: a node
//! starting reads each key's latest entry before it serves anyone, then watches the bucket from
//! the revision after and hands each change to its hub, watching again from where it was after
//! NATS comes back.

use crate::node::ClusterIn;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::debug;

/// Runs `write` (each try bounded by `wait`) again every 250 ms while it fails, NATS not
/// answering or no leader elected yet, for up to `patience`: its value, or the last error (the
/// caller gives up and says so). Each retry is logged at debug, `what` about `about`.
pub(crate) async fn patiently<T, Fut>(
    wait: Duration,
    patience: Duration,
    (what, about): (&str, &(impl std::fmt::Display + Sync)),
    mut write: impl FnMut() -> Fut,
) -> Result<T, String>
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let give_up = tokio::time::Instant::now() + patience;
    loop {
        let tried = tokio::time::timeout(wait, write())
            .await
            .unwrap_or_else(|_| Err("no answer in time".to_owned()));
        match tried {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() >= give_up => return Err(e),
            Err(e) => {
                debug!(%about, error = %e, "{what} not written yet; again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Writes `value` under `key` over the entry as it was read: a compare-and-swap on its
/// `revision`, or a `create` when there was none. The entry's new revision, or `None` when
/// another node wrote in between (read it again and retry).
pub(crate) async fn write_over(
    store: &kv::Store,
    key: &str,
    value: bytes::Bytes,
    revision: Option<u64>,
) -> Result<Option<u64>, String> {
    match revision {
        Some(revision) => match store.update(key, value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(e.to_string()),
        },
        None => match store.create(key, value).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// A bucket entry's value: `stored` in bincode.
pub(crate) fn encode_entry<T: serde::Serialize>(stored: &T) -> Result<bytes::Bytes, String> {
    bincode::serde::encode_to_vec(stored, bincode::config::standard())
        .map(bytes::Bytes::from)
        .map_err(|e| e.to_string())
}

/// A bucket entry's value read back: at most `MAX` bytes are decoded (bincode's limit before it
/// allocates), and bytes after the value are refused (`what` names it in the error).
pub(crate) fn decode_entry<T: serde::de::DeserializeOwned, const MAX: usize>(
    value: &[u8],
    what: &str,
) -> Result<T, String> {
    let config = bincode::config::standard().with_limit::<MAX>();
    let (stored, used): (T, usize) =
        bincode::serde::decode_from_slice(value, config).map_err(|e| e.to_string())?;
    if used != value.len() {
        return Err(format!("trailing bytes after {what}"));
    }
    Ok(stored)
}

/// A bucket entry's value read back as [`decode_entry`] does, or else, if it does not read as
/// `T`, as `Old`, the layout an older build wrote (the error is `T`'s).
pub(crate) fn decode_entry_or_older<T, Old, const MAX: usize>(
    value: &[u8],
    what: &str,
) -> Result<T, String>
where
    T: serde::de::DeserializeOwned,
    Old: serde::de::DeserializeOwned + Into<T>,
{
    decode_entry::<T, MAX>(value, what).or_else(|e| {
        decode_entry::<Old, MAX>(value, what)
            .map(Into::into)
            .map_err(|_| e)
    })
}

/// Every key's latest entry in `bucket` (`stream`: its stream; removals included), by key,
/// and the revision to watch from for what comes after. `what` names the bucket in errors.
pub(crate) async fn read_all(
    js: &jetstream::Context,
    stream: &str,
    bucket: &kv::Store,
    wait: Duration,
    what: &str,
) -> Result<(Vec<kv::Entry>, u64), String> {
    let last = js
        .get_stream(stream)
        .await
        .map_err(|e| e.to_string())?
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence;
    if last == 0 {
        return Ok((Vec::new(), 1));
    }
    // The bucket keeps one value per key: read from its first revision, it is each key's
    // latest (or its removal).
    let mut entries = bucket
        .watch_all_from_revision(1)
        .await
        .map_err(|e| e.to_string())?;
    let mut found: BTreeMap<String, kv::Entry> = BTreeMap::new();
    let mut seen = 0;
    let read = async {
        while seen < last {
            let Some(entry) = entries.next().await else {
                return Err(format!("the {what}' watch ended"));
            };
            let entry = entry.map_err(|e| e.to_string())?;
            seen = entry.revision;
            found.insert(entry.key.clone(), entry);
        }
        Ok(())
    };
    tokio::time::timeout(wait, read)
        .await
        .map_err(|_| format!("the {what} were not read in time"))??;
    Ok((found.into_values().collect(), seen + 1))
}

/// Hands every change of `bucket` from revision `from` on to the hub, in order, as `news`
/// words it (`None`: skipped); after NATS comes back (a new connection) it watches again from
/// the revision after the last one handed over. Ends when the hub's side is gone.
pub(crate) async fn watch_changes(
    bucket: kv::Store,
    mut from: u64,
    tx: mpsc::UnboundedSender<ClusterIn>,
    mut links: watch::Receiver<u64>,
    what: &'static str,
    news: impl Fn(&kv::Entry) -> Option<ClusterIn>,
) {
    links.mark_unchanged();
    loop {
        let mut entries = match bucket.watch_all_from_revision(from).await {
            Ok(w) => w,
            Err(e) => {
                debug!(error = %e, what, "watch waits for NATS");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                e = entries.next() => match e {
                    Some(Ok(entry)) => {
                        from = entry.revision + 1;
                        if let Some(n) = news(&entry)
                            && tx.send(n).is_err()
                        {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        debug!(error = %e, what, "watch");
                        continue;
                    }
                    None => break,
                },
                changed = links.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        debug!(from, what, "watch reads again");
    }
}
