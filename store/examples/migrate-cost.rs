//! `migrate-cost`: how long the first open of an older store takes with this build. Builds a
//! schema 8 store of `--events` says in `--rooms` rooms (taking turns in runs of `--run`, as
//! commits would), brings it up to `--from` with the steps' SQL (untimed), then opens it and
//! prints the time and the rows made: from 8, step 9 rewrites the events several to a row
//! (`migrations/009_event_rows.sql`); from 10, step 11 moves the rows into a rowid table
//! (`migrations/011_events_rowid.sql`).
//!
//! `cargo run --release -p natter-store --example migrate-cost -- --events 1000000 [--from 10]`

use clap::Parser;
use natter_store::sqlite::MIGRATIONS;
use natter_store::{Config, SqliteStore};
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "migrate-cost",
    about = "The first open's time, migrating an older store"
)]
struct Cli {
    /// Events in the schema 8 store.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Rooms they are in.
    #[arg(long, default_value_t = 10)]
    rooms: u64,
    /// Events of one room in a row before the next room's (what one commit held).
    #[arg(long, default_value_t = 100)]
    run: u64,
    /// The schema version the store is brought up to before the timed open (8 to 10).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(8..=10))]
    from: u32,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = tempfile::tempdir()?;
    {
        let c = rusqlite::Connection::open(dir.path().join("natter.db"))?;
        c.execute_batch("PRAGMA journal_mode = WAL")?;
        for step in &MIGRATIONS[..8] {
            c.execute_batch(step)?;
        }
        c.execute_batch("PRAGMA user_version = 8; PRAGMA application_id = 1314148913;")?;
        let tx = c.unchecked_transaction()?;
        for r in 1..=cli.rooms {
            tx.execute(
                "INSERT INTO rooms (id, name, topic, last_seq) VALUES (?1, ?2, NULL, 0)",
                rusqlite::params![r as i64, format!("#room{r}")],
            )?;
        }
        let mut seqs = vec![0i64; cli.rooms as usize + 1];
        let mut st = tx.prepare(
            "INSERT INTO events (room, seq, id, at, nick, kind, msg_id, text)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?3, ?6)",
        )?;
        for id in 1..=cli.events as i64 {
            let room = ((id - 1) as u64 / cli.run % cli.rooms + 1) as usize;
            seqs[room] += 1;
            let text = format!(
                "NB{:08x}{:016x} a line of the old schema ..........",
                room, id
            );
            st.execute(rusqlite::params![
                room as i64,
                seqs[room],
                id,
                1_700_000_000_000 + id,
                format!("bench{}", id % 50),
                text
            ])?;
        }
        drop(st);
        tx.commit()?;
        for step in &MIGRATIONS[8..cli.from as usize] {
            c.execute_batch(&format!("BEGIN; {step} COMMIT;"))?;
        }
        c.pragma_update(None, "user_version", cli.from)?;
    }
    let size = std::fs::metadata(dir.path().join("natter.db"))?.len();
    let began = Instant::now();
    let store = SqliteStore::open_deferred(&Config::new(dir.path()))?;
    let first = began.elapsed();
    let rows: i64 = rusqlite::Connection::open(dir.path().join("natter.db"))?.query_row(
        "SELECT count(*) FROM events",
        [],
        |r| r.get(0),
    )?;
    println!(
        "{} events ({:.0} MB at schema {}): the first open (the migration) {:.2} s, {} rows",
        cli.events,
        size as f64 / 1e6,
        cli.from,
        first.as_secs_f64(),
        rows,
    );
    // Not closed: a close would catch the search index up on every line first.
    std::mem::forget(store);
    Ok(())
}
