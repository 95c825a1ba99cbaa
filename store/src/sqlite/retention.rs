//! Retention: removing the oldest events once they are older than `max_age_days` or the store
//! is past `max_bytes`, in small steps (each a short transaction of at most [`PRUNE_STEP`]
//! events, in whole rows of `events`) that the writer runs between batches. Rooms keep their rows, so their last seq and
//! topic survive the removal of every event they had.

use super::SqliteStore;
use super::held::HeldLine;
use crate::WriteError;
use natter_core::Millis;
use rusqlite::{OptionalExtension, params};
use std::time::{Duration, Instant};
use tracing::debug;

/// Events removed by one step at most: a step is one short transaction, so a batch waits for at
/// most one step (a few milliseconds).
pub const PRUNE_STEP: usize = 2000;

/// How often the writer looks whether anything is due, when the last look found nothing.
pub const PRUNE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Extra events removed when over `max_bytes`, as a fraction (1/n) of those stored: the search
/// index gives its space back only when it merges, so removing just enough would have the next
/// check remove more, again and again.
const BYTES_SLACK_DIVISOR: u64 = 100;

/// The last event id of the rows that end below id `?1` and whose newest event is older than
/// `?2`. Insertion order is time order (the hub stamps events as it sequences them), so the old
/// rows are a prefix of the ids; a row goes as a whole, once its newest event is old.
pub(super) const OLD_UPTO_SQL: &str = "SELECT max(id + n - 1) FROM
    (SELECT id, n, at FROM events WHERE id < ?1 AND id + n <= ?1 ORDER BY id) WHERE at < ?2";

/// The first and last event id of the row holding event `?1`: a step removes whole rows.
pub(super) const ROW_SQL: &str =
    "SELECT id, id + n - 1 FROM events WHERE id <= ?1 ORDER BY id DESC LIMIT 1";

/// The chat lines with an id up to `?1` (the end of a row), which the search index removes (it
/// needs their text back to find their entries).
pub(super) const REMOVED_LINES_SQL: &str = "SELECT e.id + j.key, e.room, j.value ->> 4
    FROM events e, json_each(e.frames) j WHERE e.id <= ?1 AND j.value ->> 2 IN (0, 1)
    ORDER BY e.id";

/// Raises `rooms.last_seq` of every room with events up to id `?1` to its highest stored seq
/// (commits do not write it), so removing them never lowers a room's last seq.
pub(super) const KEEP_LAST_SEQ_SQL: &str = "UPDATE rooms
    SET last_seq = max(last_seq, coalesce((SELECT seq + n - 1 FROM events
        WHERE events.room = rooms.id ORDER BY seq DESC LIMIT 1), 0))
    WHERE id IN (SELECT room FROM events WHERE id <= ?1)";

/// The events in the rows up to id `?1` (the end of a row).
pub(super) const COUNT_UPTO_SQL: &str = "SELECT coalesce(sum(n), 0) FROM events WHERE id <= ?1";

/// Removes the rows of events with ids up to `?1` (the end of a row).
pub(super) const DELETE_UPTO_SQL: &str = "DELETE FROM events WHERE id <= ?1";

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Events removed.
    pub events: usize,
    /// More is due: run another step soon.
    pub more: bool,
}

/// What the writer remembers between steps.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Events still to remove for `max_bytes`, decided at the last size check.
    owed: u64,
    last_check: Option<Instant>,
    more: bool,
}

impl SqliteStore {
    /// Whether a prune step is due (something was left to do at the last step, or the last
    /// check is [`PRUNE_CHECK_EVERY`] old).
    pub fn prune_due(&self) -> bool {
        let r = self.config.retention;
        if r.max_age_days == 0 && r.max_bytes == 0 {
            return false;
        }
        self.retention.more
            || self
                .retention
                .last_check
                .is_none_or(|t| t.elapsed() >= PRUNE_CHECK_EVERY)
    }

    /// Removes at most [`PRUNE_STEP`] of the oldest events that retention no longer keeps, with
    /// `now` the current Unix time in milliseconds.
    pub fn prune_step(&mut self, now: Millis) -> Result<Pruned, WriteError> {
        self.retention.last_check = Some(Instant::now());
        let stepped = self.prune(now);
        self.retention.more = stepped.as_ref().is_ok_and(|p| p.more);
        if let Ok(p) = stepped
            && p.events > 0
        {
            debug!(events = p.events, more = p.more, "pruned");
        }
        stepped
    }

    fn prune(&mut self, now: Millis) -> Result<Pruned, WriteError> {
        let sql = WriteError::from_sqlite;
        let r = self.config.retention;
        // The search index counts too (a derived cache, but on the same disk): the part of its
        // file in use, as the database's is counted.
        let index = self.index_used_bytes();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let span: Option<(i64, i64)> = tx
            .query_row(super::read::SPAN_SQL, [], |row| {
                Ok(row
                    .get::<_, Option<i64>>(0)?
                    .zip(row.get::<_, Option<i64>>(1)?))
            })
            .map_err(sql)?;
        let Some((first, last)) = span else {
            self.retention.owed = 0;
            return Ok(Pruned::default());
        };
        if let Some(budget) = r.pages_budget()
            && self.retention.owed == 0
        {
            // Ids are handed out in order and removed from the front, so they are dense.
            let stored = u64::try_from(last - first + 1).unwrap_or(1);
            let used = used_bytes(&tx).map_err(sql)? + index;
            if used > budget {
                let per_event = (used / stored).max(1);
                let over = (used - budget).div_ceil(per_event);
                self.retention.owed = over + stored / BYTES_SLACK_DIVISOR;
            }
        }
        let by_bytes = self.retention.owed.min(PRUNE_STEP as u64);
        // The newest id this step removes.
        let mut upto = first + i64::try_from(by_bytes).unwrap_or(0) - 1;
        if r.max_age_days > 0 {
            let cutoff = now.0.saturating_sub(u64::from(r.max_age_days) * 86_400_000);
            let cutoff = i64::try_from(cutoff).unwrap_or(i64::MAX);
            let old_upto: Option<i64> = tx
                .query_row(
                    OLD_UPTO_SQL,
                    params![first + PRUNE_STEP as i64, cutoff],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql)?
                .flatten();
            upto = upto.max(old_upto.unwrap_or(0));
        }
        if upto < first {
            return Ok(Pruned::default());
        }
        // Whole rows: up to the last row that ends by `upto`, or the first row if it does not.
        let (start, end): (i64, i64) = tx
            .query_row(ROW_SQL, [upto], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sql)?;
        let upto = if end == upto || start <= first {
            end
        } else {
            start - 1
        };
        // A room's last seq is its highest stored seq: kept in its row before events go.
        tx.execute(KEEP_LAST_SEQ_SQL, [upto]).map_err(sql)?;
        // The search index removes these lines once they are gone (it needs their text).
        let lines = tx
            .prepare_cached(REMOVED_LINES_SQL)
            .and_then(|mut st| {
                st.query_map([upto], |r| {
                    Ok(HeldLine {
                        id: r.get(0)?,
                        room: r.get(1)?,
                        text: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql)?;
        let removed: i64 = tx
            .query_row(COUNT_UPTO_SQL, [upto], |row| row.get(0))
            .map_err(sql)?;
        let removed = usize::try_from(removed).unwrap_or(0);
        tx.execute(DELETE_UPTO_SQL, [upto]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        self.removed(upto, lines);
        self.retention.owed = self.retention.owed.saturating_sub(removed as u64);
        // A step that went as far as it may (less at most a row) leaves more to look at.
        let full = upto - first + 1 + super::ROW_EVENTS as i64 > PRUNE_STEP as i64;
        let more = self.retention.owed > 0 || (full && upto < last);
        Ok(Pruned {
            events: removed,
            more,
        })
    }
}

/// Bytes of the database file in use (its pages less the free ones): of `natter.db` on the
/// writer's connection, of the search index's file on the indexer's.
pub(super) fn used_bytes(conn: &rusqlite::Connection) -> rusqlite::Result<u64> {
    let get = |name: &str| -> rusqlite::Result<u64> {
        let v: i64 = conn.pragma_query_value(None, name, |r| r.get(0))?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    Ok(get("page_count")?.saturating_sub(get("freelist_count")?) * get("page_size")?)
}
