//! Readers: connections that only read (startup load, account reloads, history pages, search), each on its own
//! snapshot of the write-ahead log, so they never wait for the writer nor it for them.

use super::write::token_hash;
use super::{schema, search};
use crate::{
    Config, HistoryPage, HistoryQuery, LoadOptions, Loaded, LoadedRoom, OpenError, ReadError,
    RecentRooms, SearchQuery, SessionRecord,
};
use natter_core::limits::{HISTORY_PAGE_MAX, SEARCH_LOOKED_FOR};
use natter_core::persist::LoadedAccount;
use natter_core::wire::RoomEvent;
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// A connection that reads. Cheap to keep, not shared between threads.
pub struct Reader {
    pub(super) conn: Connection,
    search_budget: Duration,
    /// Event ids a search window covers: the first, and the most (see `sqlite/search.rs`).
    pub(super) search_window: (i64, i64),
}

/// A value out of the database that is not valid.
fn corrupt(detail: impl Into<String>) -> ReadError {
    ReadError::Corrupt(detail.into())
}

fn int_u64(what: &str, v: i64) -> Result<u64, ReadError> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative {what} {v}")))
}

impl Reader {
    /// A reader of the store in `config.dir`, which a writer ([`crate::SqliteStore`] or
    /// [`crate::SqliteHandle`]) has opened at least once (readers never create or upgrade a
    /// store). Readers can be opened while the writer runs, from other threads or processes.
    pub fn open(config: &Config) -> Result<Reader, OpenError> {
        Reader::open_path(&config.db_path(), config.search_budget)
    }

    pub(crate) fn open_path(path: &Path, search_budget: Duration) -> Result<Reader, OpenError> {
        let conn = schema::open_reader(path)?;
        // The search index's file, beside it (the writer made it): `events_fts` is found there.
        let index = path.with_file_name(super::SEARCH_FILE);
        let index = index.to_str().ok_or_else(|| OpenError::Sqlite {
            path: index.clone(),
            detail: "the path is not UTF-8".into(),
        })?;
        if Path::new(index).exists() {
            conn.execute("ATTACH DATABASE ?1 AS search", [index])
                .map_err(|e| schema::open_error(path, e))?;
        } else {
            // No server has run on this store yet (e.g. only `natter-server account` wrote it):
            // nothing is indexed, so an empty index in memory answers searches with nothing.
            let sql = super::index::empty_schema_sql("search");
            conn.execute_batch(&format!(
                "ATTACH DATABASE ':memory:' AS search; PRAGMA query_only = OFF; {sql} \
                 PRAGMA query_only = ON;"
            ))
            .map_err(|e| schema::open_error(path, e))?;
        }
        conn.execute_batch(
            "PRAGMA cache_size = -32768; PRAGMA search.cache_size = -32768; PRAGMA temp_store = MEMORY;",
        )
        .map_err(|e| schema::open_error(path, e))?;
        Ok(Reader {
            conn,
            search_budget,
            search_window: (search::WINDOW_FIRST, search::WINDOW_MAX),
        })
    }

    /// The query plan of `sql` on this connection (tests).
    #[cfg(test)]
    pub(crate) fn plan(&mut self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
        let mut st = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = st.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Rooms, sessions and the recent events of some rooms: what a hub needs at startup. Reads
    /// one row per room and session and at most `opts.recent` events per room, by index: the
    /// time does not grow with the history stored.
    pub fn load(&mut self, opts: &LoadOptions) -> Result<Loaded, ReadError> {
        let tx = self.conn.transaction().map_err(ReadError::from_sqlite)?;
        let sessions = load_sessions(&tx, opts.sessions_since)?;
        let wanted: Option<HashSet<&RoomName>> = match opts.recent_rooms {
            RecentRooms::All => None,
            RecentRooms::OfSessions => Some(sessions.iter().flat_map(|s| &s.rooms).collect()),
        };
        let mut present = load_presence(&tx)?;
        let mut rooms = Vec::new();
        let mut st = tx.prepare(LOAD_ROOMS_SQL).map_err(ReadError::from_sqlite)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(ReadError::from_sqlite)?;
        for row in rows {
            let (id, name, topic, last_seq) = row.map_err(ReadError::from_sqlite)?;
            let name = RoomName::try_from(name).map_err(|e| corrupt(e.to_string()))?;
            let topic = topic
                .map(|t| Text::try_from(t).map_err(|e| corrupt(format!("topic of {name}: {e}"))))
                .transpose()?;
            let recent = match &wanted {
                Some(w) if !w.contains(&name) => Vec::new(),
                _ => newest(&tx, id, &name, Seq(u64::MAX), opts.recent)?,
            };
            rooms.push(LoadedRoom {
                last_seq: Seq(int_u64("seq", last_seq)?),
                present: present.remove(name.as_str()).unwrap_or_default(),
                name,
                topic,
                recent,
            });
        }
        drop(st);
        let accounts = super::accounts::load(&tx)?;
        Ok(Loaded {
            rooms,
            sessions,
            accounts,
            policies: super::policies::load(&tx)?,
            server_bans: super::policies::server_bans(&tx)?,
            device_labels: super::accounts::labels(&tx)?,
            away_notes: super::accounts::away_notes(&tx)?,
            known: super::accounts::known(&tx)?,
        })
    }

    /// Every account with its rooms, read markers and device keys (what [`Reader::load`]
    /// returns of them): for a running server reloading its accounts.
    pub fn accounts(&mut self) -> Result<Vec<LoadedAccount>, ReadError> {
        let tx = self.conn.transaction().map_err(ReadError::from_sqlite)?;
        super::accounts::load(&tx)
    }

    /// A page of `q.room`'s history: the newest `q.limit` (at most [`HISTORY_PAGE_MAX`]) events
    /// before `q.before`, oldest first. An unknown room has an empty history.
    pub fn history(&mut self, q: &HistoryQuery) -> Result<HistoryPage, ReadError> {
        let limit = q.limit.min(HISTORY_PAGE_MAX);
        let tx = self.conn.transaction().map_err(ReadError::from_sqlite)?;
        let Some(room) = room_id(&tx, &q.room)? else {
            return Ok(HistoryPage {
                events: Vec::new(),
                at_start: true,
            });
        };
        // One more than asked for says whether anything older is left.
        let mut events = newest(&tx, room, &q.room, q.before, limit + 1)?;
        let at_start = events.len() <= limit;
        if !at_start {
            events.remove(0);
        }
        Ok(HistoryPage { events, at_start })
    }

    /// Says and actions holding every word of `q.words` (taken literally), newest first, at
    /// most `q.limit` (at most [`SEARCH_LOOKED_FOR`]). The index is searched in windows of
    /// event ids, newest first, until enough results are found; past the search budget no new
    /// window starts, and what was found is returned, or [`ReadError::TimedOut`] if nothing was
    /// (words that are everywhere but never together, over a long history). See
    /// `sqlite/search.rs` for how.
    pub fn search(&mut self, q: &SearchQuery) -> Result<Vec<RoomEvent>, ReadError> {
        let limit = q.limit.min(SEARCH_LOOKED_FOR);
        let mut phrases = search::phrases(&q.words);
        if limit == 0 || phrases.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + self.search_budget;
        let tx = self.conn.transaction().map_err(ReadError::from_sqlite)?;
        if !q.rooms.is_empty() {
            let mut ids = Vec::with_capacity(q.rooms.len());
            for name in &q.rooms {
                ids.extend(room_id(&tx, name)?);
            }
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            phrases.push(search::rooms_phrase(&ids));
        }
        let span: Option<(i64, i64)> = tx
            .query_row(SPAN_SQL, [], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
            })
            .map_err(ReadError::from_sqlite)?;
        let Some(span) = span else {
            return Ok(Vec::new());
        };
        let events = span.1 - span.0 + 1;
        let plan =
            search::Plan::new(&tx, phrases, span.1, events).map_err(ReadError::from_sqlite)?;
        search::run(&tx, &plan, span, self.search_window, limit, deadline)
    }
}

/// The first and the last event id stored (`NULL`s when none is).
pub(crate) const SPAN_SQL: &str = "SELECT (SELECT min(id) FROM events),
    (SELECT id + n - 1 FROM events ORDER BY id DESC LIMIT 1)";

/// A page of history: the rows of room `?1` starting below seq `?2`, newest first, at most
/// `?3` (each holds at least one event below `?2`), by the room-and-seq key.
pub(super) const HISTORY_SQL: &str = "SELECT seq, n, frames, ends FROM events
    WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";

fn room_id(conn: &Connection, room: &RoomName) -> Result<Option<i64>, ReadError> {
    conn.prepare_cached("SELECT id FROM rooms WHERE name = ?1")
        .and_then(|mut st| st.query_row([room.as_str()], |r| r.get(0)).optional())
        .map_err(ReadError::from_sqlite)
}

/// The newest `n` events of room `id` (named `name`) with a seq below `before`, oldest first.
fn newest(
    conn: &Connection,
    id: i64,
    name: &RoomName,
    before: Seq,
    n: usize,
) -> Result<Vec<RoomEvent>, ReadError> {
    let before = i64::try_from(before.0).unwrap_or(i64::MAX);
    let mut rows = conn
        .prepare_cached(HISTORY_SQL)
        .map_err(ReadError::from_sqlite)?;
    let mut batches = rows
        .query(params![id, before, i64::try_from(n).unwrap_or(i64::MAX)])
        .map_err(ReadError::from_sqlite)?;
    // Newest first.
    let mut events = Vec::new();
    while events.len() < n {
        let Some(batch) = batches.next().map_err(ReadError::from_sqlite)? else {
            break;
        };
        let seq: i64 = batch.get(0).map_err(ReadError::from_sqlite)?;
        let count: i64 = batch.get(1).map_err(ReadError::from_sqlite)?;
        let frames = batch.get_ref(2).map_err(ReadError::from_sqlite)?;
        let damaged = || corrupt(format!("the row of events {seq} of {name}"));
        let frames = frames.as_str().map_err(|_| damaged())?;
        let ends = batch.get_ref(3).map_err(ReadError::from_sqlite)?;
        let at = super::codec::frame_places(frames, ends.as_blob_or_null().ok().flatten(), count)
            .ok_or_else(damaged)?;
        // The row's events below `before` (at least one: the row starts below it), newest
        // first, as many as are still wanted.
        let below = usize::try_from(before.saturating_sub(seq)).unwrap_or(usize::MAX);
        for k in (0..at.len().min(below)).rev() {
            if events.len() == n {
                break;
            }
            let (from, to) = at[k];
            let row =
                super::codec::parse_frame(&frames[from..to], seq + k as i64).ok_or_else(damaged)?;
            events.push(row.event(name.clone()).map_err(corrupt)?);
        }
    }
    events.reverse();
    Ok(events)
}

/// Who is in each room (`migrations/010_presence.sql`), by room name.
fn load_presence(conn: &Connection) -> Result<HashMap<String, Vec<Nick>>, ReadError> {
    let mut st = conn
        .prepare("SELECT room, nick FROM presence")
        .map_err(ReadError::from_sqlite)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(ReadError::from_sqlite)?;
    let mut present: HashMap<String, Vec<Nick>> = HashMap::new();
    for row in rows {
        let (room, nick) = row.map_err(ReadError::from_sqlite)?;
        let nick = Nick::new(&nick).map_err(|e| corrupt(format!("present in {room}: {e}")))?;
        present.entry(room).or_default().push(nick);
    }
    Ok(present)
}

/// The sessions updated at `since` or later, with the last ids the writer has not folded into
/// `sessions` yet applied on top.
/// Every room with its topic and last seq: the larger of `rooms.last_seq` (raised when
/// retention removes events) and the highest seq stored (one index lookup per room).
pub(super) const LOAD_ROOMS_SQL: &str = "SELECT id, name, topic,
    max(last_seq, coalesce((SELECT seq + n - 1 FROM events WHERE events.room = rooms.id
                            ORDER BY seq DESC LIMIT 1), 0))
    FROM rooms ORDER BY name";

fn load_sessions(conn: &Connection, since: Millis) -> Result<Vec<SessionRecord>, ReadError> {
    let since = i64::try_from(since.0).unwrap_or(i64::MAX);
    let unfolded = super::write::unfolded_ids(conn)
        .map_err(ReadError::from_sqlite)?
        .ok_or_else(|| corrupt("a session_ids row"))?;
    let mut st = conn
        .prepare(
            "SELECT token, nick, rooms, last_id, updated, token_id, refused, prev_id, prev_token, \
             took_zero, put_out, device_key FROM sessions WHERE updated >= ?1 OR ?2",
        )
        .map_err(ReadError::from_sqlite)?;
    let rows = st
        .query_map(params![since, !unfolded.is_empty()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<Vec<u8>>>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<Vec<u8>>>(8)?,
                r.get::<_, bool>(9)?,
                r.get::<_, String>(10)?,
                r.get::<_, Option<i64>>(11)?,
            ))
        })
        .map_err(ReadError::from_sqlite)?;
    let mut sessions = Vec::new();
    for row in rows {
        let (
            token,
            nick,
            rooms,
            mut last_id,
            mut updated,
            token_id,
            refused,
            prev_id,
            prev,
            zero,
            put_out,
            device_key,
        ) = row.map_err(ReadError::from_sqlite)?;
        let token = token_hash(&token).ok_or_else(|| corrupt("a session token hash"))?;
        if let Some(&(id, at)) = unfolded.get(&token) {
            (last_id, updated) = (id, at);
        }
        if updated < since {
            continue;
        }
        let nick = Nick::try_from(nick).map_err(|e| corrupt(format!("session nick: {e}")))?;
        let room_list = |list: &str, what: &str| {
            list.split_whitespace()
                .map(|r| RoomName::try_from(r.to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| corrupt(format!("{what} of session of {nick}: {e}")))
        };
        let rooms = room_list(&rooms, "rooms")?;
        let put_out = room_list(&put_out, "rooms put out of")?;
        let refused = super::codec::refused_of(refused.as_deref())
            .ok_or_else(|| corrupt(format!("refused messages of session of {nick}")))?;
        let prev = match (prev_id, prev) {
            (Some(id), Some(hash)) => Some((
                u64::from_ne_bytes(id.to_ne_bytes()),
                token_hash(&hash).ok_or_else(|| corrupt("a session's token before"))?,
            )),
            _ => None,
        };
        sessions.push(SessionRecord {
            token,
            token_id: u64::from_ne_bytes(token_id.to_ne_bytes()),
            rooms,
            last_id: MsgId(int_u64("message id", last_id)?),
            took_zero: zero,
            refused,
            prev,
            put_out,
            device_key: device_key.map(|k| u64::from_ne_bytes(k.to_ne_bytes())),
            updated: Millis(int_u64("time", updated)?),
            nick,
        });
    }
    Ok(sessions)
}
