//! Search: what a person typed, as FTS5 phrases taken literally, run over the index in windows
//! of event ids, newest first, with the common words checked per candidate.
//!
//! - **Literal words.** Each word becomes a quoted phrase (with `"` doubled) limited to the
//!   `text` column, so FTS5 sees no operator, column filter, prefix star or parenthesis,
//!   whatever the person typed. A room filter is one more phrase, on the `room` column (which
//!   holds room ids).
//! - **Windows.** The index is searched over windows of event ids, newest first (the first
//!   [`WINDOW_FIRST`] wide, doubling up to [`WINDOW_MAX`]), until enough results are found; the
//!   budget is checked between windows, since FTS5 cannot be stopped within one. A window with
//!   few matches is read oldest first, which is the direction FTS5 skips through cheaply, and
//!   its newest matches kept; a dense one is read newest first.
//! - **Common words.** Intersecting a word that is in most lines with rarer ones costs a skip
//!   through the common word's huge list for every candidate of the rare ones. So the most
//!   common words (and a busy room), by their share of the newest [`SAMPLE`] events, are left
//!   out of the index walk and checked on each candidate instead, newest first, until enough
//!   pass: as many as keep the checks few (see [`Plan::new`]).

use crate::ReadError;
use natter_core::RoomName;
use natter_core::limits::SEARCH_MAX_WORDS;
use natter_core::wire::RoomEvent;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Instant;

/// Event ids the first window covers: the newest this many events, where a word anyone uses
/// has its 50 newest matches.
pub(super) const WINDOW_FIRST: i64 = 1 << 16;

/// Event ids a window covers at most: bounds how long a search runs past its budget.
pub(super) const WINDOW_MAX: i64 = 1 << 20;

/// Matches in a window past which it is read newest first (see the module's docs).
const DENSE: usize = 512;

/// The newest events looked at to tell a common word from a rare one.
const SAMPLE: i64 = 4096;

/// The phrases checked per candidate must together pass at least 1/this of the candidates, so
/// that 50 results cost at most a few hundred checks: a word in most lines ("the") is checked,
/// two words that are each in a tenth of the lines are walked.
const CHECK_PASS_DIVISOR: i64 = 4;

/// Or the phrases walked must leave at most this many candidates in the whole store (a quiet
/// room and a rare word: then how many of them pass does not matter).
const CHECK_MAX_CANDIDATES: i64 = 1000;

/// Candidates asked for at a time from a dense window when some must still pass a check.
const CANDIDATES: usize = 256;

/// Matches with an event id in `?2..?3`, oldest first, at most `?4`.
pub(super) const OLDEST_FIRST_SQL: &str = "SELECT rowid FROM events_fts
    WHERE events_fts MATCH ?1 AND rowid >= ?2 AND rowid < ?3 ORDER BY rowid ASC LIMIT ?4";

/// Matches with an event id in `?2..?3`, newest first, at most `?4`.
pub(super) const NEWEST_FIRST_SQL: &str = "SELECT rowid FROM events_fts
    WHERE events_fts MATCH ?1 AND rowid >= ?2 AND rowid < ?3 ORDER BY rowid DESC LIMIT ?4";

/// Whether event `?2` matches `?1`.
const CHECK_SQL: &str = "SELECT 1 FROM events_fts WHERE events_fts MATCH ?1 AND rowid = ?2";

/// Matches among the events with an id above `?2`, at most `?3` counted.
const SAMPLE_SQL: &str = "SELECT count(*) FROM (SELECT 1 FROM events_fts
    WHERE events_fts MATCH ?1 AND rowid > ?2 LIMIT ?3)";

/// The row holding event `?1` and its room's name: the row starting last at or below it
/// (nothing when that row ends before it: the event is gone).
pub(super) const EVENT_BY_ID_SQL: &str = "SELECT r.name, e.seq, e.id, e.n, e.frames, e.ends
    FROM (SELECT room, seq, id, n, frames, ends FROM events WHERE id <= ?1 ORDER BY id DESC LIMIT 1) e
    JOIN rooms r ON r.id = e.room WHERE ?1 < e.id + e.n";

/// The last row a search read a result from: results are often neighbours, so the next one is
/// picked out of it without reading or scanning it again.
struct RowSeen {
    name: RoomName,
    seq: i64,
    id: i64,
    frames: String,
    /// Where each event's frame is in `frames`.
    at: Vec<(usize, usize)>,
}

/// The phrases for `typed`: its first [`SEARCH_MAX_WORDS`] words that hold something to find
/// (a letter, a digit, an emoji), each read as the index reads lines
/// ([`natter_core::search::searchable`]) and quoted, in the `text` column. Empty when no word holds anything the index stores (then
/// nothing can match).
///
/// A word is split again by the index's tokenizer inside its quotes, so `don't` is the phrase
/// `don t` and `foo-bar` the phrase `foo bar`: they match those words next to each other, as
/// the person meant; `テキスト` is the phrase `テ キ ス ト`, found inside `日本語テキスト`.
pub(crate) fn phrases(typed: &str) -> Vec<String> {
    natter_core::types::sanitize(typed)
        .split_whitespace()
        .filter(|w| natter_core::search::findable(w))
        .take(SEARCH_MAX_WORDS)
        .map(|w| {
            let w = natter_core::search::searchable(w);
            format!("text : \"{}\"", w.replace('"', "\"\""))
        })
        .collect()
}

/// The phrase for "in room `id`".
pub(crate) fn room_phrase(id: i64) -> String {
    format!("room : \"{id}\"")
}

/// The expression for "in one of the rooms `ids`" (not empty): one room's phrase, or theirs
/// joined by `OR` in parentheses (which is why the phrases of a plan are joined by an explicit
/// `AND`: FTS5 takes no implicit `AND` next to a parenthesis).
pub(crate) fn rooms_phrase(ids: &[i64]) -> String {
    match ids {
        [id] => room_phrase(*id),
        _ => {
            let each: Vec<String> = ids.iter().map(|id| room_phrase(*id)).collect();
            format!("({})", each.join(" OR "))
        }
    }
}

/// How a search runs: the phrases the index is walked for, and those checked per candidate.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    walk: String,
    check: Option<String>,
}

impl Plan {
    /// Splits `phrases` (all required) into those walked in the index and the common ones
    /// checked per candidate, by their share of the newest [`SAMPLE`] events (taking them for
    /// independent: an estimate). The most common are checked as long as the checks stay few:
    /// together they pass 1/[`CHECK_PASS_DIVISOR`] of the candidates, or the rarer phrases
    /// left to walk match at most [`CHECK_MAX_CANDIDATES`] of the `events` stored.
    pub(super) fn new(
        conn: &Connection,
        phrases: Vec<String>,
        newest: i64,
        events: i64,
    ) -> rusqlite::Result<Plan> {
        if phrases.len() < 2 {
            return Ok(Plan {
                walk: phrases.join(" AND "),
                check: None,
            });
        }
        let mut st = conn.prepare_cached(SAMPLE_SQL)?;
        let mut shares = Vec::new();
        for p in phrases {
            let n: i64 = st.query_row(params![p, newest - SAMPLE, SAMPLE], |r| r.get(0))?;
            // Not in the sample is not nowhere: half an event's worth.
            let n = if n > 0 { n as f64 } else { 0.5 };
            shares.push((n / SAMPLE as f64, p));
        }
        // Most common first.
        shares.sort_by(|a, b| b.0.total_cmp(&a.0));
        let product = |ps: &[(f64, String)]| ps.iter().map(|(share, _)| share).product::<f64>();
        let few_checks = |checked: usize| {
            let (check, walk) = shares.split_at(checked);
            product(check) * CHECK_PASS_DIVISOR as f64 >= 1.0
                || product(walk) * events as f64 <= CHECK_MAX_CANDIDATES as f64
        };
        // Checking more of the most common is never cheaper for the checks, so the phrases that
        // may be checked are a prefix; something is always left to walk.
        let checked = (1..shares.len())
            .take_while(|k| few_checks(*k))
            .last()
            .unwrap_or(0);
        let (check, walk) = shares.split_at(checked);
        let join = |ps: &[(f64, String)]| {
            ps.iter()
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        Ok(Plan {
            walk: join(walk),
            check: (!check.is_empty()).then(|| join(check)),
        })
    }
}

#[cfg(test)]
impl Plan {
    /// The phrases walked, and those checked per candidate.
    pub(super) fn parts(&self) -> (&str, Option<&str>) {
        (&self.walk, self.check.as_deref())
    }
}

/// Runs `plan` over events `oldest..=newest`, windows as in the module's docs, until `limit`
/// results or `deadline`: past it, what was found, or [`ReadError::TimedOut`] if nothing was.
pub(super) fn run(
    conn: &Connection,
    plan: &Plan,
    (oldest, newest): (i64, i64),
    (first_window, max_window): (i64, i64),
    limit: usize,
    deadline: Instant,
) -> Result<Vec<RoomEvent>, ReadError> {
    let mut hits = Vec::new();
    let mut below = newest.saturating_add(1);
    let mut window = first_window.max(1);
    let mut first = true;
    while below > oldest && hits.len() < limit {
        // Every search gets through its first window; then only while there is time.
        if !first && Instant::now() > deadline {
            if hits.is_empty() {
                return Err(ReadError::TimedOut);
            }
            break;
        }
        first = false;
        let from = below.saturating_sub(window).max(oldest);
        search_window(conn, plan, from, below, limit, deadline, &mut hits)?;
        below = from;
        window = window.saturating_mul(2).min(max_window.max(1));
    }
    Ok(hits)
}

/// Adds to `hits` (up to `limit` in all) the newest matches of `plan` with an event id in
/// `from..below`, newest first. Candidates that must pass a check are taken a batch at a time,
/// with the deadline looked at between batches.
fn search_window(
    conn: &Connection,
    plan: &Plan,
    from: i64,
    mut below: i64,
    limit: usize,
    deadline: Instant,
    hits: &mut Vec<RoomEvent>,
) -> Result<(), ReadError> {
    let sql = ReadError::from_sqlite;
    let ids = |order: &str, below: i64, n: usize| -> rusqlite::Result<Vec<i64>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        conn.prepare_cached(order)?
            .query_map(params![plan.walk, from, below, n], |r| r.get(0))?
            .collect()
    };
    let mut fetch = conn.prepare_cached(EVENT_BY_ID_SQL).map_err(sql)?;
    let mut seen: Option<RowSeen> = None;
    let mut check = conn.prepare_cached(CHECK_SQL).map_err(sql)?;
    let mut dense = false;
    loop {
        if dense && Instant::now() > deadline {
            return Ok(());
        }
        let wanted = limit - hits.len();
        // All the window's matches (newest first) if it has few, else its newest ones.
        let mut sparse = Vec::new();
        if !dense {
            sparse = ids(OLDEST_FIRST_SQL, below, DENSE).map_err(sql)?;
            dense = sparse.len() == DENSE;
        }
        let (candidates, all) = if dense {
            let n = if plan.check.is_some() {
                CANDIDATES
            } else {
                wanted
            };
            let newest = ids(NEWEST_FIRST_SQL, below, n).map_err(sql)?;
            let all = newest.len() < n;
            (newest, all)
        } else {
            sparse.reverse();
            (sparse, true)
        };
        let Some(&oldest_seen) = candidates.last() else {
            return Ok(());
        };
        for id in candidates {
            if hits.len() == limit {
                return Ok(());
            }
            if let Some(c) = &plan.check {
                let passes = check
                    .query_row(params![c, id], |_| Ok(()))
                    .optional()
                    .map_err(sql)?
                    .is_some();
                if !passes {
                    continue;
                }
            }
            // A line the index still holds after retention removed it (or one stored after
            // this search's view of the events) is no result.
            if !seen
                .as_ref()
                .is_some_and(|r| r.id <= id && id < r.id + r.at.len() as i64)
            {
                let Some((name, seq, first, n, frames, ends)) = fetch
                    .query_row([id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<Vec<u8>>>(5)?,
                        ))
                    })
                    .optional()
                    .map_err(sql)?
                else {
                    continue;
                };
                let name =
                    RoomName::try_from(name).map_err(|e| ReadError::Corrupt(e.to_string()))?;
                let at =
                    super::codec::frame_places(&frames, ends.as_deref(), n).ok_or_else(|| {
                        ReadError::Corrupt(format!("the row of events {first} of {name}"))
                    })?;
                seen = Some(RowSeen {
                    name,
                    seq,
                    id: first,
                    frames,
                    at,
                });
            }
            let Some(r) = &seen else {
                continue;
            };
            let k = usize::try_from(id - r.id).unwrap_or(0);
            let Some(&(from, to)) = r.at.get(k) else {
                continue;
            };
            let row = super::codec::parse_frame(&r.frames[from..to], r.seq + k as i64).ok_or_else(
                || ReadError::Corrupt(format!("the row of events {} of {}", r.id, r.name)),
            )?;
            hits.push(row.event(r.name.clone()).map_err(ReadError::Corrupt)?);
        }
        if all || hits.len() == limit {
            return Ok(());
        }
        below = oldest_seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_a_quoted_phrase_in_the_text_column() {
        assert_eq!(
            phrases("hello world"),
            vec![r#"text : "hello""#, r#"text : "world""#]
        );
        assert_eq!(
            phrases(r#"say "hi" NEAR(a b) x:y -z *"#).join(" "),
            r#"text : "say" text : """hi""" text : "NEAR(a" text : "b)" text : "x:y" text : "-z""#
        );
        assert_eq!(
            phrases("  AND  OR ").join(" "),
            r#"text : "AND" text : "OR""#
        );
        assert_eq!(room_phrase(12), r#"room : "12""#);
    }

    #[test]
    fn nothing_searchable_is_no_phrase() {
        assert!(phrases("").is_empty());
        assert!(phrases("  * - \" : ( ) \u{FE0F} \u{0}").is_empty());
        // An emoji is something to find (since the forty-first session): its stand-in.
        assert_eq!(phrases("* 😀 -").len(), 1);
    }

    #[test]
    fn words_are_capped() {
        let many = "w ".repeat(SEARCH_MAX_WORDS + 10);
        assert_eq!(phrases(&many).len(), SEARCH_MAX_WORDS);
    }
}
