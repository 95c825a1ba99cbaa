//! Chat lines the writer holds between storing them and indexing them for search, so that the
//! index step inserts them from memory instead of reading them back from `events` (a lookup
//! by id and then by (room, seq) per line, about a tenth of the writer's time).
//!
//! FTS5 writes its pending words out as an index segment whenever a statement opens a
//! savepoint inside the transaction, so the lines must go in with one statement: an
//! `INSERT … SELECT` over `rarray` (the held ids), with two SQL functions of this connection
//! handing out each line's text and room by its position.

use natter_core::search::searchable;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::{Connection, params};
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Lines held at most: past this (index steps failing, say on a full disk), the writer stops
/// holding them and the next step reads them back from `events`.
pub(super) const HELD_MAX: usize = 1 << 16;

/// Indexes the held lines: `?1` is the array of their event ids, in the order held.
const INDEX_HELD_SQL: &str = "INSERT INTO events_fts (rowid, text, room)
    SELECT value, natter_held_text(rowid), natter_held_room(rowid) FROM rarray(?1)";

/// Removes the lines of `?1` (their event ids, with their text and room handed out by
/// position as for [`INDEX_HELD_SQL`]) from the index.
const UNINDEX_HELD_SQL: &str = "INSERT INTO events_fts (events_fts, rowid, text, room)
    SELECT 'delete', value, natter_held_text(rowid), natter_held_room(rowid) FROM rarray(?1)";

/// A chat line stored and not indexed yet.
#[derive(Debug, Clone)]
pub(crate) struct HeldLine {
    pub(crate) id: i64,
    pub(crate) room: i64,
    pub(crate) text: String,
}

/// The lines held, and what the SQL functions read them from during an index step.
#[derive(Debug)]
pub(super) struct Held {
    /// Every chat line stored past the index's `indexed`, oldest first; `None` when some of
    /// them are not held (after a crash, a failed step, or too many).
    lines: Option<Vec<HeldLine>>,
    /// The lines of the index step running (empty between steps).
    shared: Arc<Mutex<Vec<HeldLine>>>,
}

fn lock(m: &Mutex<Vec<HeldLine>>) -> MutexGuard<'_, Vec<HeldLine>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Held {
    /// Registers `rarray` and the functions on the index's connection. `complete`: nothing is
    /// stored past the index (else the first step reads back).
    pub(super) fn install(conn: &Connection, complete: bool) -> rusqlite::Result<Held> {
        rusqlite::vtab::array::load_module(conn)?;
        let shared: Arc<Mutex<Vec<HeldLine>>> = Arc::default();
        let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY;
        let lines = Arc::clone(&shared);
        conn.create_scalar_function("natter_held_text", 1, flags, move |ctx| {
            let i = position(ctx.get::<i64>(0)?)?;
            let mut lines = lock(&lines);
            let line = lines.get_mut(i).ok_or_else(|| missing(i))?;
            // Each line's text is asked for once: handed over, not copied (unless a script
            // without spaces or an emoji in it must be set apart).
            let text = std::mem::take(&mut line.text);
            Ok(match searchable(&text) {
                Cow::Borrowed(_) => text,
                Cow::Owned(apart) => apart,
            })
        })?;
        // The text of lines read back from `events` (`INDEX_RANGE_SQL`), read the same way.
        conn.create_scalar_function(
            "natter_searchable",
            1,
            flags | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let text = ctx.get_raw(0);
                Ok(text
                    .as_str_or_null()?
                    .map(|text| searchable(text).into_owned()))
            },
        )?;
        let lines = Arc::clone(&shared);
        conn.create_scalar_function("natter_held_room", 1, flags, move |ctx| {
            let i = position(ctx.get::<i64>(0)?)?;
            lock(&lines)
                .get(i)
                .map(|l| l.room)
                .ok_or_else(|| missing(i))
        })?;
        Ok(Held {
            lines: complete.then(Vec::new),
            shared,
        })
    }

    /// Adds the lines of a committed group (oldest first); `None`: they were not handed over
    /// (the next step reads them back).
    pub(super) fn extend(&mut self, lines: Option<Vec<HeldLine>>) {
        let Some(lines) = lines else {
            self.lines = None;
            return;
        };
        if let Some(held) = &mut self.lines {
            if held.len() + lines.len() > HELD_MAX {
                self.lines = None;
            } else if held.is_empty() {
                *held = lines;
            } else {
                held.extend(lines);
            }
        }
    }

    /// Every line stored is indexed: nothing to hold.
    pub(super) fn caught_up(&mut self) {
        match &mut self.lines {
            Some(held) => held.clear(),
            None => self.lines = Some(Vec::new()),
        }
    }

    /// Some stored lines are not held: the next step reads them back.
    pub(super) fn forget(&mut self) {
        self.lines = None;
    }

    /// Lines with an event id up to `upto` were removed from `events` before they were
    /// indexed: they are never indexed.
    pub(super) fn drop_upto(&mut self, upto: i64) {
        if let Some(held) = &mut self.lines {
            held.retain(|l| l.id > upto);
        }
    }

    /// Removes `lines` (indexed before, with the text and room they were indexed with) from
    /// the index inside the open transaction `tx`, in one statement.
    pub(super) fn unindex(&self, tx: &Connection, lines: Vec<HeldLine>) -> rusqlite::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let ids: Rc<Vec<Value>> = Rc::new(lines.iter().map(|l| Value::Integer(l.id)).collect());
        *lock(&self.shared) = lines;
        let done = tx
            .prepare_cached(UNINDEX_HELD_SQL)
            .and_then(|mut st| st.execute(params![ids]))
            .map(|_| ());
        lock(&self.shared).clear();
        done
    }

    /// Whether every line past the index is held.
    pub(super) fn is_complete(&self) -> bool {
        self.lines.is_some()
    }

    /// Indexes the held lines inside the open transaction `tx` (one statement). Afterwards
    /// they are no longer held: on success the caller says [`Held::caught_up`], on failure
    /// they are forgotten (the next step reads them back from `events`). `None`: not
    /// complete, nothing done.
    pub(super) fn index(&mut self, tx: &Connection) -> Option<rusqlite::Result<()>> {
        let lines = self.lines.take()?;
        if lines.is_empty() {
            self.lines = Some(lines);
            return Some(Ok(()));
        }
        let ids: Rc<Vec<Value>> = Rc::new(lines.iter().map(|l| Value::Integer(l.id)).collect());
        *lock(&self.shared) = lines;
        let done = tx
            .prepare_cached(INDEX_HELD_SQL)
            .and_then(|mut st| st.execute(params![ids]))
            .map(|_| ());
        let mut lines = std::mem::take(&mut *lock(&self.shared));
        if done.is_ok() {
            // Keeps the allocation for the next lines.
            lines.clear();
            self.lines = Some(lines);
        }
        Some(done)
    }
}

/// The index into the held lines of `rarray`'s rowid (from 1).
fn position(rowid: i64) -> rusqlite::Result<usize> {
    usize::try_from(rowid - 1).map_err(|_| missing(0))
}

fn missing(i: usize) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(format!("no held line at {i}").into())
}
