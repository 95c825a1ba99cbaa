//! The threaded store: batches in, reports out in order, the in-flight bound, a full disk while
//! running, reads beside writes, and closing.

use super::*;
use crate::sqlite::{INDEX_BATCH, INDEX_LAG};
use crate::{BatchId, Report, Write};
use natter_core::wire::EventKind;
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use std::time::Duration;

fn say(room: &str, seq: u64, text: &str) -> RoomEvent {
    RoomEvent {
        room: RoomName::new(room).unwrap(),
        seq: Seq(seq),
        at: Millis(1_700_000_000_000 + seq),
        from: Nick::new("alice").unwrap(),
        kind: EventKind::Say {
            id: MsgId(seq),
            text: Text::new(text).unwrap(),
        },
    }
}

fn batch(id: u64, seqs: std::ops::RangeInclusive<u64>, text: &str) -> Batch {
    Batch {
        id: BatchId(id),
        writes: seqs.map(|s| Write::Event(say("#a", s, text))).collect(),
    }
}

/// Receives reports until batch `upto` is covered, with a time bound.
async fn reports_until(reports: &mut Reports, upto: u64) -> Vec<Report> {
    let mut got = Vec::new();
    loop {
        let r = tokio::time::timeout(Duration::from_secs(20), reports.recv())
            .await
            .expect("a report within 20 s")
            .expect("the store is open");
        let done = match &r {
            Report::Durable { upto: u } => u.0 >= upto,
            Report::Failed { batch, .. } => batch.0 >= upto,
            Report::Stale { .. } => false,
        };
        got.push(r);
        if done {
            return got;
        }
    }
}

fn history(n: usize) -> HistoryQuery {
    HistoryQuery {
        room: RoomName::new("#a").unwrap(),
        before: Seq(u64::MAX),
        limit: n,
    }
}

#[tokio::test]
async fn batches_are_reported_durable_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    // As a shell holds it: a store chosen at start, behind the trait.
    let store: Arc<dyn Store> = Arc::new(handle);
    for b in 0..50u64 {
        store
            .try_submit(batch(b, b * 10 + 1..=b * 10 + 10, "hello"))
            .unwrap();
    }
    let got = reports_until(&mut reports, 49).await;
    let mut last = None;
    for r in &got {
        match r {
            Report::Durable { upto } => {
                assert!(last < Some(*upto), "in order");
                last = Some(*upto);
            }
            Report::Failed { batch, error } => panic!("{batch} failed: {error}"),
            Report::Stale { accounts } => panic!("no account written: {accounts:?}"),
        }
    }
    let page = store.history(history(200)).await.unwrap();
    assert_eq!(page.events.len(), 200);
    assert_eq!(page.events.last().unwrap().seq, Seq(500));
    let hits = store
        .search(SearchQuery {
            words: "hello".into(),
            rooms: Vec::new(),
            limit: 50,
        })
        .await
        .unwrap();
    assert_eq!(hits.len(), 50);
    assert_eq!(hits[0].seq, Seq(500));
    store.close().await;
}

#[tokio::test]
async fn in_flight_batches_are_bounded_and_ready_says_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.max_in_flight = 2;
    let (store, mut reports) = SqliteHandle::open(&config).unwrap();
    store.try_submit(batch(1, 1..=1, "a")).unwrap();
    store.try_submit(batch(2, 2..=2, "b")).unwrap();
    let third = match store.try_submit(batch(3, 3..=3, "c")) {
        Err(SubmitError::Full(b)) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(third.id, BatchId(3), "the batch is handed back");
    // `ready` waits for reports to be received, so it is awaited beside them.
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            tokio::select! {
                () = store.ready() => break,
                r = reports.recv() => received.push(r.unwrap()),
            }
        }
    })
    .await
    .unwrap();
    assert!(!received.is_empty());
    store.try_submit(third).unwrap();
    reports_until(&mut reports, 3).await;
    assert_eq!(store.history(history(10)).await.unwrap().events.len(), 3);
    store.close().await;
}

#[tokio::test]
async fn a_full_disk_fails_the_batch_keeps_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    store.try_submit(batch(1, 1..=100, "before")).unwrap();
    assert_eq!(
        reports_until(&mut reports, 1).await,
        vec![Report::Durable { upto: BatchId(1) }]
    );
    // The "disk" is full: the database may not grow past its size now.
    let pages: i64 = rusqlite::Connection::open(store.path())
        .unwrap()
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store.writer_sql(&format!("PRAGMA max_page_count = {pages}"));
    let big = "x".repeat(1500);
    store.try_submit(batch(2, 101..=400, &big)).unwrap();
    let got = reports_until(&mut reports, 2).await;
    assert_eq!(
        got,
        vec![Report::Failed {
            batch: BatchId(2),
            error: WriteError::DiskFull
        }]
    );
    assert!(WriteError::DiskFull.to_string().contains("disk is full"));
    // Reads keep working and see everything committed before.
    let page = store.history(history(200)).await.unwrap();
    assert_eq!(page.events.len(), 100);
    assert_eq!(page.events.last().unwrap().seq, Seq(100));
    // Space comes back: the same events are written.
    store.writer_sql("PRAGMA max_page_count = 1073741823");
    store.try_submit(batch(3, 101..=400, &big)).unwrap();
    assert_eq!(
        reports_until(&mut reports, 3).await,
        vec![Report::Durable { upto: BatchId(3) }]
    );
    store.close().await;
    // Reopened: batches 1 and 3, nothing of 2 twice.
    let reopened = crate::SqliteStore::open(&Config::new(dir.path())).unwrap();
    let page = reopened.reader().unwrap().history(&history(200)).unwrap();
    assert_eq!(page.events.last().unwrap().seq, Seq(400));
    assert_eq!(page.events.len(), 200);
}

#[tokio::test]
async fn in_a_group_only_the_bad_batch_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    // Submitted at once, so the writer is likely to take them as one group; either way the
    // duplicate fails alone and the reports say so in order.
    store.try_submit(batch(1, 1..=5, "a")).unwrap();
    store.try_submit(batch(2, 5..=6, "dup")).unwrap();
    store.try_submit(batch(3, 6..=8, "c")).unwrap();
    let got = reports_until(&mut reports, 3).await;
    let failed: Vec<_> = got
        .iter()
        .filter_map(|r| match r {
            Report::Failed { batch, error } => Some((*batch, error.clone())),
            Report::Durable { .. } | Report::Stale { .. } => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![(
            BatchId(2),
            WriteError::Duplicate {
                room: RoomName::new("#a").unwrap(),
                seq: Seq(5)
            }
        )]
    );
    assert_eq!(got.last(), Some(&Report::Durable { upto: BatchId(3) }));
    let seqs: Vec<u64> = store
        .history(history(50))
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.seq.0)
        .collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    store.close().await;
}

#[tokio::test]
async fn close_writes_what_is_queued_then_refuses_and_releases_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    let (store, mut reports) = SqliteHandle::open(&config).unwrap();
    let other = store.clone();
    for b in 1..=10 {
        store.try_submit(batch(b, b..=b, "queued")).unwrap();
    }
    store.close().await;
    // Every queued batch was written and reported; then the reports end.
    let mut covered = 0;
    while let Some(r) = reports.recv().await {
        if let Report::Durable { upto } = r {
            covered = upto.0;
        }
    }
    assert_eq!(covered, 10);
    assert!(matches!(
        other.try_submit(batch(11, 11..=11, "late")),
        Err(SubmitError::Closed(_))
    ));
    assert_eq!(other.history(history(5)).await, Err(ReadError::Closed));
    other.ready().await;
    // The lock is released: the store opens again at once, with everything in it.
    let (again, _reports) = SqliteHandle::open(&config).unwrap();
    assert_eq!(again.history(history(50)).await.unwrap().events.len(), 10);
    again.close().await;
}

#[tokio::test]
async fn close_returns_once_every_connection_is_closed_and_the_log_is_gone() {
    // The server exits right after "store closed". The readers closed their connections
    // after the writer, on their own: the writer, not the last, could not remove natter.db's
    // write-ahead log and shared-memory file, and the process exited before the readers did,
    // so they stayed (and a full disk at the next start failed elsewhere than at them).
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    let (store, mut reports) = SqliteHandle::open(&config).unwrap();
    store.try_submit(batch(1, 1..=200, "kept")).unwrap();
    reports_until(&mut reports, 1).await;
    // Reads queued when the store closes keep the reader busy past the writer's close.
    let reads: Vec<_> = (0..config.max_queued_reads)
        .map(|_| store.history(history(200)))
        .collect();
    store.close().await;
    for name in ["natter.db-wal", "natter.db-shm"] {
        assert!(!dir.path().join(name).exists(), "{name} stays after close");
    }
    for read in reads {
        assert_eq!(read.await.unwrap().events.len(), 200);
    }
}

#[tokio::test]
async fn backup_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    store.try_submit(batch(1, 1..=20, "saved")).unwrap();
    reports_until(&mut reports, 1).await;
    let copy = tempfile::tempdir().unwrap();
    store
        .backup(copy.path().join(crate::DB_FILE))
        .await
        .unwrap();
    store.close().await;
    let (restored, _r) = SqliteHandle::open(&Config::new(copy.path())).unwrap();
    assert_eq!(
        restored.history(history(50)).await.unwrap().events.len(),
        20
    );
    restored.close().await;
}

#[tokio::test]
async fn accounts_written_beside_the_running_store_are_read_by_it() {
    use crate::AccountStore;
    use natter_core::accounts::PasswordHash;
    use natter_core::persist::AccountRecord;
    let dir = tempfile::tempdir().unwrap();
    let (handle, _reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    assert!(handle.accounts().await.unwrap().is_empty());
    // What `natter-server account add` does while the server runs.
    let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
    admin
        .write(&Batch {
            id: BatchId(0),
            writes: vec![Write::Account(AccountRecord {
                name: Nick::new("Erin").unwrap(),
                hash: PasswordHash("$argon2id$e".into()),
                created: Millis(1),
            })],
        })
        .unwrap();
    let got = handle.accounts().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record.name, Nick::new("Erin").unwrap());
    handle.close().await;
    assert_eq!(handle.accounts().await, Err(ReadError::Closed));
}

fn search_q(words: &str) -> SearchQuery {
    SearchQuery {
        words: words.into(),
        rooms: Vec::new(),
        limit: 50,
    }
}

/// How many stored events a reader of `dir` sees indexed for search.
fn indexed(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(crate::sqlite::SEARCH_FILE)).unwrap();
    conn.query_row("SELECT indexed FROM search_state", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn lines_are_indexed_behind_the_commits_and_a_search_finds_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    let started = std::time::Instant::now();
    store.try_submit(batch(0, 1..=10, "hello")).unwrap();
    store.try_submit(batch(1, 11..=11, "needle")).unwrap();
    reports_until(&mut reports, 1).await;
    if started.elapsed() < INDEX_LAG / 2 {
        // Durable, and not indexed yet: fewer than INDEX_BATCH events wait, for less than
        // INDEX_LAG.
        assert_eq!(indexed(dir.path()), 0, "indexing waits behind the commits");
    }
    // A search has the index thread index them first.
    let hits = store.search(search_q("needle")).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].seq, Seq(11));
    assert_eq!(indexed(dir.path()), 11);
    // Left alone, the lines are indexed within INDEX_LAG.
    store.try_submit(batch(2, 12..=12, "later")).unwrap();
    reports_until(&mut reports, 2).await;
    let deadline = std::time::Instant::now() + INDEX_LAG * 10;
    while indexed(dir.path()) < 12 {
        assert!(
            std::time::Instant::now() < deadline,
            "indexed within the lag"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
}

#[tokio::test]
async fn the_index_thread_catches_up_with_a_flood_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
    // Five times INDEX_BATCH lines as fast as the writer takes them, nobody searching.
    let per = 512u64;
    let batches = 5 * INDEX_BATCH as u64 / per;
    let mut next = 0;
    while next < batches {
        match store.try_submit(batch(next, next * per + 1..=(next + 1) * per, "flood")) {
            Ok(()) => next += 1,
            Err(SubmitError::Full(_)) => {
                reports.recv().await.unwrap();
            }
            Err(SubmitError::Closed(_)) => panic!("closed"),
        }
    }
    reports_until(&mut reports, batches - 1).await;
    let stored = (batches * per) as i64;
    // The index thread steps by itself as the lines come (everything queued at a time), and
    // is done soon after the last commit, nobody searching.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while indexed(dir.path()) < stored {
        assert!(
            std::time::Instant::now() < deadline,
            "{} events still wait to be indexed",
            stored - indexed(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Closing indexes the rest.
    store.close().await;
    assert_eq!(indexed(dir.path()), stored);
}

#[tokio::test]
async fn lines_not_indexed_before_a_crash_are_found_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    {
        let mut store = SqliteStore::open(&config).unwrap();
        store.defer_search(true).unwrap();
        store.write(&batch(0, 1..=5, "before the crash")).unwrap();
        assert_eq!(store.search_lag(), 5);
        // Dropped without catching up: as after kill -9 (the writer's memory is gone, the
        // events are in the file).
        store.crash();
    }
    assert_eq!(indexed(dir.path()), 0);
    let (store, _reports) = SqliteHandle::open(&config).unwrap();
    // The index thread indexes the tail in the background; a search waits for it.
    let hits = store.search(search_q("crash")).await.unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(indexed(dir.path()), 5, "the tail is indexed");
    // A reader of its own (no writer to ask) finds them too.
    let mut reader = crate::Reader::open(&config).unwrap();
    assert_eq!(reader.search(&search_q("crash")).unwrap().len(), 5);
    store.close().await;
}

#[test]
fn pruning_removes_indexed_lines_from_the_index_and_never_indexes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.retention.max_age_days = 1;
    let mut store = SqliteStore::open(&config).unwrap();
    store.defer_search(true).unwrap();
    // Lines from 1,700,000,000,000 ms (2023): older than a day. Half of them indexed.
    store.write(&batch(0, 1..=10, "old words")).unwrap();
    store.catch_up_search().unwrap();
    store.write(&batch(1, 11..=20, "old words")).unwrap();
    assert_eq!(store.search_lag(), 10);
    let pruned = store.prune_step(crate::sqlite::unix_now()).unwrap();
    assert_eq!(pruned.events, 20);
    store.catch_up_search().unwrap();
    assert_eq!(store.search_lag(), 0);
    // The index holds nothing of them (a removal of lines never indexed would damage it).
    let mut reader = crate::Reader::open(&config).unwrap();
    assert!(reader.search(&search_q("old")).unwrap().is_empty());
    store.write(&batch(2, 21..=21, "new words")).unwrap();
    store.catch_up_search().unwrap();
    assert_eq!(reader.search(&search_q("words")).unwrap().len(), 1);
    let index = rusqlite::Connection::open(store.search_path()).unwrap();
    let check: String = index
        .query_row(
            "INSERT INTO events_fts (events_fts) VALUES ('integrity-check') RETURNING 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(check, "ok");
    // What the index holds: one line (the word "words" is in one row).
    let rows: i64 = index
        .query_row(
            "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'words'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}
