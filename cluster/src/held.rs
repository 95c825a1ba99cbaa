//! Direct messages kept for accounts with nothing connected (`<prefix>_held`), as a single
//! node keeps them in its store: under the account's folded name, one entry holding them all
//! (at most [`MAX_HELD_DIRECTS`]), each numbered. A message is added with a compare-and-swap on
//! the entry's revision (of two nodes adding at once, one tries again on what the other
//! wrote), so none is lost and the bound holds cluster-wide. The node an account signs in on
//! reads the entry, its hub delivers them, and then those numbered up to the last delivered
//! are removed, compare-and-swap again, keeping any added meanwhile: delivered at least once
//! (a node that dies between the delivery and the removal has them delivered again at the
//! next sign-in), and a second sign-in elsewhere that read them too removes nothing more.
//! What the bucket holds for all accounts together is bounded by `[accounts] kept_bytes`
//! (see [`hold`]).

use async_nats::jetstream::kv;
use natter_core::Nick;
use natter_core::limits::{HELD_DIRECT_OVERHEAD, MAX_HELD_DIRECTS};
use natter_core::persist::HeldDirect;
use natter_core::wire::DirectMsg;
use tracing::{debug, warn};

use crate::names::nick_key;

/// An entry as the bucket keeps it (bincode).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Kept {
    /// The number the next message kept gets (numbers only grow, so a removal of those
    /// delivered never removes one kept after them).
    next: u64,
    /// The messages, oldest first: number, message, whether a notice.
    msgs: Vec<(u64, DirectMsg, bool)>,
}

/// The largest entry read (100 messages of at most 2,000 bytes of text, with their names).
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// How many times a compare-and-swap is tried while other nodes change the entry.
const TRIES: usize = 16;

/// The subject a node hears on that an account signed in there has messages kept for it
/// (kept while it signed in: its node read the entry before they were added).
pub(crate) fn nudge_subject(prefix: &str, node: &str) -> String {
    format!("{prefix}.node.{node}.held")
}

async fn read(held: &kv::Store, key: &str) -> Result<(Kept, Option<u64>), String> {
    let entry = held
        .entry(key)
        .await
        .map_err(|e| crate::node::unavailable(&e))?;
    match entry {
        Some(e) if e.operation == kv::Operation::Put => {
            let kept =
                crate::kept::decode_entry::<Kept, MAX_ENTRY_BYTES>(&e.value, "kept messages")?;
            Ok((kept, Some(e.revision)))
        }
        Some(e) => Ok((Kept::default(), Some(e.revision))),
        None => Ok((Kept::default(), None)),
    }
}

/// Writes `kept` over revision `at` (`None`: no entry yet); `Ok(false)`: someone wrote first.
async fn write(held: &kv::Store, key: &str, kept: &Kept, at: Option<u64>) -> Result<bool, String> {
    let value = crate::kept::encode_entry(kept)?;
    let done = match at {
        Some(rev) => held.update(key, value, rev).await.map(|_| ()).map_err(|e| {
            let lost = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
            (lost, e.to_string())
        }),
        None => held.create(key, value).await.map(|_| ()).map_err(|e| {
            let lost = e.kind() == kv::CreateErrorKind::AlreadyExists;
            (lost, e.to_string())
        }),
    };
    match done {
        Ok(()) => Ok(true),
        Err((true, _)) => Ok(false),
        Err((false, why)) => Err(crate::node::unavailable(&why)),
    }
}

/// Keeps `h` for `account`, unless the bucket holds `kept_bytes` or more with it (`[accounts]
/// kept_bytes`: for all accounts together, as one node bounds what it keeps): `Err` says why
/// not, in words for its sender.
///
/// The bytes counted are the bucket's as JetStream stores them (its stream's, read before the
/// write): every message kept with its names and JetStream's overhead, whichever node kept
/// it, and nothing left to drift when a node dies between two writes. The new message counts
/// as its text plus [`HELD_DIRECT_OVERHEAD`], as one node counts it. Nodes keeping messages at
/// the same moment may each pass the check before the others' writes: the bound can be
/// exceeded by at most one message per such node. An entry whose messages were delivered
/// stays (a few dozen bytes: its next number, which must only grow) and counts too.
pub(crate) async fn hold(
    held: &kv::Store,
    account: &Nick,
    h: HeldDirect,
    kept_bytes: usize,
) -> Result<(), String> {
    let key = nick_key(account);
    let stored = held
        .stream
        .get_info()
        .await
        .map_err(|e| crate::node::unavailable(&e))?
        .state
        .bytes;
    let cost = h.msg.text.as_str().len() + HELD_DIRECT_OVERHEAD;
    if usize::try_from(stored)
        .unwrap_or(usize::MAX)
        .saturating_add(cost)
        > kept_bytes
    {
        warn!(
            bytes = stored,
            kept_bytes,
            "direct messages kept for accounts with nothing connected are at their limit"
        );
        return Err(format!(
            "{account} is not connected, and the server keeps no more messages for accounts \
             that are away right now; try again once they are back"
        ));
    }
    for _ in 0..TRIES {
        let (mut kept, at) = read(held, &key).await?;
        if kept.msgs.len() >= MAX_HELD_DIRECTS {
            return Err(format!(
                "{account} is not connected and {MAX_HELD_DIRECTS} messages wait for them \
                 already; try again once they are back"
            ));
        }
        kept.next += 1;
        kept.msgs.push((kept.next, h.msg.clone(), h.notice));
        if write(held, &key, &kept, at).await? {
            return Ok(());
        }
    }
    Err(crate::node::unavailable(&"too many changes at once"))
}

/// The messages kept for `account`, numbered, oldest first.
pub(crate) async fn take(
    held: &kv::Store,
    account: &Nick,
) -> Result<Vec<(u64, HeldDirect)>, String> {
    let (kept, _) = read(held, &nick_key(account)).await?;
    Ok(kept
        .msgs
        .into_iter()
        .map(|(n, msg, notice)| (n, HeldDirect { msg, notice }))
        .collect())
}

/// Forgets every message kept for `account`: the account is being removed, and a later
/// account of that name (anyone may register it) must not read what was sent to this one, as
/// one node's store removes them with the account.
pub(crate) async fn drop_all(held: &kv::Store, account: &Nick) -> Result<(), String> {
    held.purge(nick_key(account))
        .await
        .map_err(|e| crate::node::unavailable(&e))?;
    debug!(%account, "kept direct messages forgotten with the account");
    Ok(())
}

/// Forgets the messages kept for `account` numbered up to `upto` (delivered).
pub(crate) async fn forget(held: &kv::Store, account: &Nick, upto: u64) -> Result<(), String> {
    let key = nick_key(account);
    for _ in 0..TRIES {
        let (mut kept, at) = read(held, &key).await?;
        let before = kept.msgs.len();
        kept.msgs.retain(|(n, _, _)| *n > upto);
        if kept.msgs.len() == before {
            return Ok(());
        }
        if write(held, &key, &kept, at).await? {
            debug!(%account, upto, "kept direct messages forgotten once delivered");
            return Ok(());
        }
    }
    Err(crate::node::unavailable(&"too many changes at once"))
}
