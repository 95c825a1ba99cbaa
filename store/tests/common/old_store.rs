//! Stores as older builds of natter left them, for the migration tests ("a store made by schema
//! N opens under this build and keeps X"). The store's unit tests (`src/sqlite/tests.rs`) and
//! its integration tests (`tests/common`) both include this file, beside the store's
//! `MIGRATIONS` in scope.

use super::{Config, MIGRATIONS, SCHEMA_VERSION, SqliteStore};

/// natter's SQLite application id ("NTR1"), said by every schema.
const APPLICATION_ID: i32 = 0x4e54_5231;

/// A store in `dir` as a build of schema `version` left it: every step up to it run as such a
/// build ran them, its version and application id said, then `rows` (SQL) written. The
/// connection is returned for rows that need parameters.
pub fn made_by_schema(dir: &std::path::Path, version: u32, rows: &str) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(dir.join("natter.db")).unwrap();
    c.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    for step in &MIGRATIONS[..version as usize] {
        c.execute_batch(step).unwrap();
    }
    c.execute_batch(&format!(
        "PRAGMA user_version = {version}; PRAGMA application_id = {APPLICATION_ID};"
    ))
    .unwrap();
    c.execute_batch(rows).unwrap();
    c
}

/// The schema (`user_version`) a connection's store says.
pub fn schema_of(c: &rusqlite::Connection) -> u32 {
    c.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// Opens the store in `dir`, an older one, and checks that opening upgraded it to this build's
/// schema.
pub fn upgraded(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(&Config::new(dir)).unwrap();
    let c = rusqlite::Connection::open(dir.join("natter.db")).unwrap();
    assert_eq!(schema_of(&c), SCHEMA_VERSION);
    store
}
