//! Properties of the SQLite backend that need its insides: the work of startup and of a
//! history page does not grow with the history (counted in SQLite instructions, not timed), the
//! query plans use the indexes, a full disk, and the search budget.

use super::read::HISTORY_SQL;
use super::search::{EVENT_BY_ID_SQL, NEWEST_FIRST_SQL, OLDEST_FIRST_SQL};
use super::*;
use crate::{
    Batch, BatchId, Config, HistoryQuery, LoadOptions, ReadError, RecentRooms, SearchQuery, Write,
    WriteError,
};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// A store with `per_room` events in each of three rooms, written in batches of 4608 (six
/// full rows of each room).
fn filled(dir: &std::path::Path, per_room: u64) -> SqliteStore {
    let mut store = SqliteStore::open(&Config::new(dir)).unwrap();
    let mut writes = Vec::new();
    for seq in 1..=per_room {
        for room in ["#a", "#b", "#c"] {
            writes.push(Write::Event(say(room, seq, &format!("common line {seq}"))));
        }
    }
    for (i, chunk) in writes.chunks(3 * 6 * ROW_EVENTS).enumerate() {
        store
            .write(&Batch {
                id: BatchId(i as u64),
                writes: chunk.to_vec(),
            })
            .unwrap();
    }
    store
}

/// `f`'s result and the SQLite virtual-machine instructions it ran.
fn steps<T>(reader: &mut Reader, f: impl FnOnce(&mut Reader) -> T) -> (T, u64) {
    let n = Arc::new(AtomicU64::new(0));
    let count = n.clone();
    reader
        .conn
        .progress_handler(
            1,
            Some(move || {
                count.fetch_add(1, Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
    let out = f(reader);
    reader
        .conn
        .progress_handler(0, None::<fn() -> bool>)
        .unwrap();
    (out, n.load(Ordering::Relaxed))
}

fn load_opts() -> LoadOptions {
    LoadOptions {
        recent: 50,
        recent_rooms: RecentRooms::All,
        sessions_since: Millis(0),
    }
}

fn page(before: u64) -> HistoryQuery {
    HistoryQuery {
        room: RoomName::new("#b").unwrap(),
        before: Seq(before),
        limit: 50,
    }
}

#[test]
fn startup_and_history_work_do_not_grow_with_the_history() {
    let small_dir = tempfile::tempdir().unwrap();
    let big_dir = tempfile::tempdir().unwrap();
    // Both past the few thousand events a search samples to tell common words from rare ones;
    // each room's rows full (`ROW_EVENTS`), so that both read rows of the same size.
    let small = filled(small_dir.path(), 8 * ROW_EVENTS as u64);
    let big = filled(big_dir.path(), 40 * ROW_EVENTS as u64);
    let (mut rs, mut rb) = (small.reader().unwrap(), big.reader().unwrap());

    let (ls, small_load) = steps(&mut rs, |r| r.load(&load_opts()).unwrap());
    let (lb, big_load) = steps(&mut rb, |r| r.load(&load_opts()).unwrap());
    assert_eq!(ls.rooms.len(), 3);
    assert_eq!(lb.rooms[1].recent.len(), 50);
    assert_eq!(lb.rooms[1].last_seq, Seq(40 * ROW_EVENTS as u64));
    // Same rows read, whatever lies behind them: equal work, give or take a little.
    assert!(
        big_load <= small_load + small_load / 10,
        "load: {small_load} instructions with 6,000 events, {big_load} with 30,000"
    );

    let (_, small_page) = steps(&mut rs, |r| r.history(&page(600)).unwrap());
    let (p, big_page) = steps(&mut rb, |r| r.history(&page(5_000)).unwrap());
    assert_eq!(p.events.first().unwrap().seq, Seq(4_950));
    assert!(
        big_page <= small_page + small_page / 10,
        "history: {small_page} vs {big_page}"
    );

    // A search reads the index's pages through SQL too, and a bigger index has a few more
    // segments: its work grows a little, not with the events (a scan of 30,000 would be 5×).
    let q = SearchQuery {
        words: "line 42".into(),
        rooms: vec![RoomName::new("#b").unwrap()],
        limit: 50,
    };
    let (hits, small_search) = steps(&mut rs, |r| r.search(&q).unwrap());
    assert_eq!(hits.len(), 1);
    let (hits, big_search) = steps(&mut rb, |r| r.search(&q).unwrap());
    assert_eq!(hits.len(), 1);
    assert!(
        big_search <= small_search * 2,
        "search: {small_search} vs {big_search}"
    );
}

#[test]
fn queries_use_the_indexes_and_never_sort() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 10);
    let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> String {
        let mut st = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = st.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    };
    let history = plan(HISTORY_SQL, &[&1, &100, &50]);
    assert!(
        history.contains("USING INDEX events_by_seq (room=? AND seq<?)"),
        "{history}"
    );
    assert!(!history.contains("TEMP B-TREE"), "{history}");
    let by_id = plan(EVENT_BY_ID_SQL, &[&7]);
    assert!(by_id.contains("INTEGER PRIMARY KEY"), "{by_id}");
    // Retention walks the oldest ids, never the whole table.
    let seven: &dyn rusqlite::ToSql = &7;
    for (sql, params) in [
        (retention::OLD_UPTO_SQL, &[seven, seven][..]),
        (retention::REMOVED_LINES_SQL, &[seven][..]),
        (retention::DELETE_UPTO_SQL, &[seven][..]),
    ] {
        let p = plan(sql, params);
        assert!(p.contains("INTEGER PRIMARY KEY"), "{sql}: {p}");
        assert!(!p.contains("SCAN events"), "{sql}: {p}");
    }
    let mut reader = store.reader().unwrap();
    for sql in [NEWEST_FIRST_SQL, OLDEST_FIRST_SQL] {
        let search = reader.plan(sql, &[&"text : \"x\" room : \"1\"", &1, &100, &50]);
        assert!(search.contains("VIRTUAL TABLE INDEX"), "{search}");
        assert!(!search.contains("TEMP B-TREE"), "{search}");
    }
}

/// The disk is full from now on: the database may not grow past the pages it has.
fn fill_the_disk(store: &SqliteStore) {
    let pages: i64 = store
        .conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
}

#[test]
fn a_full_disk_fails_writes_not_reads_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 10);
    fill_the_disk(&store);
    let big = "y".repeat(1900);
    let fat = |id: u64, from: u64| Batch {
        id: BatchId(id),
        writes: (from..from + 300)
            .map(|s| Write::Event(say("#a", s, &big)))
            .collect(),
    };
    assert_eq!(store.write(&fat(1, 11)), Err(WriteError::DiskFull));
    assert_eq!(
        store.write_group(&[fat(2, 11), fat(3, 311)]),
        Err(WriteError::DiskFull)
    );
    // Pruning may fail too, and says so rather than panicking.
    let _ = store.prune_step(Millis(u64::MAX / 2));
    let mut reader = store.reader().unwrap();
    let before = reader.history(&page(u64::MAX)).unwrap();
    assert_eq!(before.events.len(), 10);
    store
        .conn
        .pragma_update(None, "max_page_count", 1_073_741_823)
        .unwrap();
    store.write(&fat(4, 11)).unwrap();
    let hits = reader
        .search(&SearchQuery {
            words: "yyyy".into(),
            rooms: Vec::new(),
            limit: 50,
        })
        .unwrap();
    assert!(hits.is_empty(), "whole words only");
    let page_a = reader
        .history(&HistoryQuery {
            room: RoomName::new("#a").unwrap(),
            before: Seq(u64::MAX),
            limit: 200,
        })
        .unwrap();
    assert_eq!(page_a.events.last().unwrap().seq, Seq(310));
}

#[test]
fn a_search_past_its_budget_stops_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(dir.path(), 100);
    store
        .write(&Batch {
            id: BatchId(99),
            writes: vec![Write::Event(say("#d", 1, "needle in the newest line"))],
        })
        .unwrap();
    // 301 events in steps of 10 ids, and no time at all: only the first step runs.
    let mut hurried = Reader::open_path(store.path(), Duration::ZERO).unwrap();
    hurried.search_window = (10, 10);
    let q = |words: &str| SearchQuery {
        words: words.into(),
        rooms: Vec::new(),
        limit: 50,
    };
    // The newest step holds a match: it is returned.
    assert_eq!(hurried.search(&q("needle")).unwrap().len(), 1);
    // Found in the first step, more wanted, out of time: what was found.
    assert_eq!(hurried.search(&q("common line")).unwrap().len(), 9);
    // Nothing in the first step, out of time: said so.
    assert_eq!(hurried.search(&q("line 1")), Err(ReadError::TimedOut));
    // With time, the same searches go through every step.
    let mut patient = store.reader().unwrap();
    patient.search_window = (10, 10);
    assert_eq!(patient.search(&q("common line")).unwrap().len(), 50);
    let hits = patient.search(&q("line 1")).unwrap();
    assert_eq!(hits.len(), 3, "line 1 of #a, #b and #c, the oldest events");
    // And the reader is fine afterwards.
    assert!(hurried.history(&page(u64::MAX)).is_ok());
}

#[test]
fn search_finds_exactly_what_a_plain_scan_finds() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    // Lines of skewed words: "common" in most, "often" in many, w0..w9 in few; most lines in
    // #busy. Every way through the search (sparse and dense windows, common words checked per
    // candidate, a busy or quiet room) must give what a scan of the lines gives.
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut lines: Vec<(&str, u64, String)> = Vec::new();
    let mut seqs = [0u64; 3];
    let rooms = ["#busy", "#some", "#quiet"];
    for _ in 0..6000 {
        let r = match rng.next_u32() % 20 {
            0..=13 => 0,
            14..=18 => 1,
            _ => 2,
        };
        let mut words = Vec::new();
        if rng.next_u32() % 10 < 8 {
            words.push("common".to_owned());
        }
        if rng.next_u32() % 10 < 3 {
            words.push("often".to_owned());
        }
        for _ in 0..3 {
            if rng.next_u32() % 5 == 0 {
                words.push(format!("w{}", rng.next_u32() % 10));
            }
        }
        words.push("x".to_owned());
        seqs[r] += 1;
        lines.push((rooms[r], seqs[r], words.join(" ")));
    }
    // A commit numbers its events room by room (a row per room and run of seqs): with each
    // commit's lines in room order, the order of the lines is the order of their ids.
    for chunk in lines.chunks_mut(1000) {
        chunk.sort_by_key(|(r, _, _)| rooms.iter().position(|x| x == r));
    }
    for (i, chunk) in lines.chunks(1000).enumerate() {
        store
            .write(&Batch {
                id: BatchId(i as u64),
                writes: chunk
                    .iter()
                    .map(|(r, s, t)| Write::Event(say(r, *s, t)))
                    .collect(),
            })
            .unwrap();
    }
    let mut reader = store.reader().unwrap();
    reader.search_window = (1024, 2048);
    let vocab = ["common", "often", "w1", "w2", "w3", "w7"];
    let mut queries = Vec::new();
    for a in vocab {
        queries.push(vec![a]);
        for b in vocab {
            if a < b {
                queries.push(vec![a, b]);
                for c in ["w4", "common"] {
                    if c != a && c != b {
                        queries.push(vec![a, b, c]);
                    }
                }
            }
        }
    }
    // The ways through: a common word beside a rare one is checked, not walked; all common,
    // all walked.
    let plan = |typed: &str, events: i64| {
        let tx = reader.conn.unchecked_transaction().unwrap();
        let plan =
            super::search::Plan::new(&tx, super::search::phrases(typed), 6000, events).unwrap();
        let (walk, check) = plan.parts();
        (walk.to_owned(), check.map(str::to_owned))
    };
    assert_eq!(
        plan("w1 common", 6000),
        (
            "text : \"w1\"".to_owned(),
            Some("text : \"common\"".to_owned())
        )
    );
    // "often" (3 in 10) would pass too few candidates beside "common" (8 in 10): walked.
    assert_eq!(
        plan("common often", 6000),
        (
            "text : \"often\"".to_owned(),
            Some("text : \"common\"".to_owned())
        )
    );
    // Two rare words: one is checked on the few candidates of the other here, but over ten
    // million events both are walked.
    assert!(plan("w1 w2", 6000).1.is_some());
    assert_eq!(plan("w1 w2", 10_000_000).1, None);
    for words in &queries {
        // Every room, one room, and two of three (a user's rooms: the busy one's lines must
        // not take the places of theirs).
        let sets: [&[&str]; 5] = [
            &[],
            &["#busy"],
            &["#quiet"],
            &["#some", "#quiet"],
            &["#nowhere"],
        ];
        for room in sets {
            let expect: Vec<(String, u64)> = lines
                .iter()
                .rev()
                .filter(|(r, _, t)| {
                    (room.is_empty() || room.contains(r))
                        && words.iter().all(|w| t.split(' ').any(|x| x == *w))
                })
                .take(50)
                .map(|(r, s, _)| (r.to_string(), *s))
                .collect();
            let got: Vec<(String, u64)> = reader
                .search(&SearchQuery {
                    words: words.join(" "),
                    rooms: room.iter().map(|r| RoomName::new(r).unwrap()).collect(),
                    limit: 50,
                })
                .unwrap()
                .into_iter()
                .map(|e| (e.room.to_string(), e.seq.0))
                .collect();
            assert_eq!(got, expect, "{words:?} in {room:?}");
        }
    }
}

mod accounts {
    use super::*;
    use crate::{AccountStore, TokenHash};
    use natter_core::accounts::PasswordHash;
    use natter_core::persist::{AccountRecord, KeyRecord, LoadedAccount};

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    fn record(name: &str, hash: &str, created: u64) -> AccountRecord {
        AccountRecord {
            name: nick(name),
            hash: PasswordHash(hash.into()),
            created: Millis(created),
        }
    }

    fn key(id: u64, byte: u8, created: u64) -> KeyRecord {
        KeyRecord {
            id,
            hash: TokenHash([byte; 32]),
            created: Millis(created),
            used: None,
        }
    }

    fn write(store: &mut SqliteStore, writes: Vec<Write>) -> Result<(), WriteError> {
        store.write(&Batch {
            id: BatchId(0),
            writes,
        })
    }

    fn accounts(store: &SqliteStore) -> Vec<LoadedAccount> {
        let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
        let alone = store.reader().unwrap().accounts().unwrap();
        assert_eq!(loaded.accounts, alone, "load and accounts agree");
        alone
    }

    /// Rows of the four account tables that belong to the folded name `account`.
    fn rows_of(store: &SqliteStore, account: &str) -> i64 {
        store
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM accounts WHERE name = ?1)
                      + (SELECT count(*) FROM account_rooms WHERE account = ?1)
                      + (SELECT count(*) FROM read_markers WHERE account = ?1)
                      + (SELECT count(*) FROM device_keys WHERE account = ?1)",
                [account],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// alice with two rooms, a marker and two keys; bob with a room, a marker and a key.
    fn two_accounts(store: &mut SqliteStore) {
        write(
            store,
            vec![
                Write::Account(record("Alice", "$argon2id$a", 1_700_000_000_000)),
                Write::AccountRooms {
                    account: nick("alice"),
                    rooms: vec![room("#zeta"), room("#alpha")],
                },
                Write::ReadMarker {
                    account: nick("ALICE"),
                    room: room("#zeta"),
                    seq: Seq(12),
                },
                Write::AddKey {
                    account: nick("alice"),
                    key: key(u64::MAX, 1, 10),
                },
                Write::AddKey {
                    account: nick("alice"),
                    key: key(7, 2, 20),
                },
                Write::Account(record("bob", "$argon2id$b", 1_700_000_000_001)),
                Write::AccountRooms {
                    account: nick("bob"),
                    rooms: vec![room("#zeta")],
                },
                Write::ReadMarker {
                    account: nick("bob"),
                    room: room("#zeta"),
                    seq: Seq(3),
                },
                Write::AddKey {
                    account: nick("bob"),
                    key: key(8, 3, 30),
                },
            ],
        )
        .unwrap();
    }

    #[test]
    fn accounts_round_trip_by_folded_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        assert!(accounts(&store).is_empty());
        two_accounts(&mut store);
        let got = accounts(&store);
        assert_eq!(
            got[0],
            LoadedAccount {
                record: record("Alice", "$argon2id$a", 1_700_000_000_000),
                rooms: vec![room("#zeta"), room("#alpha")],
                read: vec![(room("#zeta"), Seq(12))],
                keys: vec![key(u64::MAX, 1, 10), key(7, 2, 20)],
                held: Vec::new(),
            }
        );
        assert_eq!(got[1].record.name, nick("bob"));
        assert_eq!(got.len(), 2);

        // A new hash under another case replaces the hash only (a server writes the account's
        // own registration time: another is another account's, see
        // `the_servers_writes_of_an_account_the_operator_changed_land_nowhere`); new rooms
        // replace the rooms.
        write(
            &mut store,
            vec![
                Write::Account(record("ALICE", "$argon2id$new", 1_700_000_000_000)),
                Write::AccountRooms {
                    account: nick("Alice"),
                    rooms: vec![room("#beta")],
                },
            ],
        )
        .unwrap();
        let got = accounts(&store);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].record,
            record("Alice", "$argon2id$new", 1_700_000_000_000)
        );
        assert_eq!(got[0].rooms, vec![room("#beta")]);
        assert_eq!(got[0].keys.len(), 2);

        // And it all survives closing and opening again.
        drop(store);
        let store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        assert_eq!(accounts(&store)[0].rooms, vec![room("#beta")]);
    }

    /// The messages kept for an account with nothing connected (schema 13): the whole list
    /// replaced by each write, in order, read back after closing and opening again, an empty
    /// list clearing it, and dropping the account dropping them.
    #[test]
    fn messages_kept_for_an_account_are_replaced_whole_and_read_back() {
        use natter_core::persist::HeldDirect;
        use natter_core::wire::DirectMsg;
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        two_accounts(&mut store);
        let kept = |from: &str, id: u64, text: &str, notice: bool| HeldDirect {
            msg: DirectMsg {
                from: nick(from),
                to: nick("Alice"),
                id: MsgId(id),
                at: Millis(1_700_000_000_000 + id % 1_000),
                text: Text::new(text).unwrap(),
            },
            notice,
        };
        let first = vec![kept("carol", u64::MAX, "are you there?", false)];
        let both = vec![
            first[0].clone(),
            kept("Dave", 2, "psst — 'quoted' \"text\"", true),
        ];
        for held in [&first, &both] {
            write(
                &mut store,
                vec![Write::HeldDirects {
                    account: nick("ALICE"),
                    held: held.clone(),
                }],
            )
            .unwrap();
        }
        assert_eq!(accounts(&store)[0].held, both);
        assert!(accounts(&store)[1].held.is_empty(), "bob's are bob's");
        drop(store);
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        assert_eq!(accounts(&store)[0].held, both);
        write(
            &mut store,
            vec![Write::HeldDirects {
                account: nick("alice"),
                held: Vec::new(),
            }],
        )
        .unwrap();
        assert!(accounts(&store)[0].held.is_empty());
        write(
            &mut store,
            vec![
                Write::HeldDirects {
                    account: nick("alice"),
                    held: first,
                },
                Write::DropAccount(nick("alice")),
            ],
        )
        .unwrap();
        let left: i64 = store
            .conn
            .query_row("SELECT count(*) FROM held_directs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "dropped with the account");
    }

    /// The notes loaded for each account (schema 19), as words.
    fn notes_of(store: &SqliteStore) -> Vec<(String, Vec<(String, String)>)> {
        let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
        loaded
            .away_notes
            .into_iter()
            .map(|(a, notes)| {
                let notes = notes
                    .into_iter()
                    .map(|(r, w)| (r.as_str().to_owned(), w))
                    .collect();
                (a.as_str().to_owned(), notes)
            })
            .collect()
    }

    /// The notes kept for an account put out of rooms while away (schema 19): the whole list
    /// replaced by each write, in order, under the account's name as registered, read back
    /// after closing and opening again, an empty list clearing it, and dropping the account
    /// dropping them.
    #[test]
    fn notes_kept_for_an_account_are_replaced_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        two_accounts(&mut store);
        let note = |r: &str, w: &str| (room(r), w.to_owned());
        let kicked = note(
            "#zeta",
            "while you were away, bob put you out of #zeta (spam)",
        );
        let closed = note(
            "#alpha",
            "while you were away, root closed #alpha — 'bye' \"all\"",
        );
        for notes in [vec![kicked.clone()], vec![kicked.clone(), closed.clone()]] {
            write(
                &mut store,
                vec![Write::AwayNotes {
                    account: nick("ALICE"),
                    notes,
                }],
            )
            .unwrap();
        }
        write(
            &mut store,
            vec![Write::AwayNotes {
                account: nick("bob"),
                notes: vec![note("#zeta", "while you were away, #zeta was closed")],
            }],
        )
        .unwrap();
        let want = vec![
            (
                "Alice".to_owned(),
                vec![
                    ("#zeta".to_owned(), kicked.1.clone()),
                    ("#alpha".to_owned(), closed.1.clone()),
                ],
            ),
            (
                "bob".to_owned(),
                vec![(
                    "#zeta".to_owned(),
                    "while you were away, #zeta was closed".to_owned(),
                )],
            ),
        ];
        assert_eq!(notes_of(&store), want);
        drop(store);
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        assert_eq!(notes_of(&store), want, "after closing and opening again");
        // Fewer once one is told (a resume heard the room's own event), the order kept.
        write(
            &mut store,
            vec![Write::AwayNotes {
                account: nick("alice"),
                notes: vec![closed.clone()],
            }],
        )
        .unwrap();
        assert_eq!(
            notes_of(&store)[0].1,
            [("#alpha".to_owned(), closed.1.clone())]
        );
        write(
            &mut store,
            vec![Write::AwayNotes {
                account: nick("bob"),
                notes: Vec::new(),
            }],
        )
        .unwrap();
        assert_eq!(notes_of(&store).len(), 1, "bob's told: none left");
        write(&mut store, vec![Write::DropAccount(nick("alice"))]).unwrap();
        let left: i64 = store
            .conn
            .query_row("SELECT count(*) FROM away_notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "dropped with the account");
        assert!(notes_of(&store).is_empty());
    }

    /// Step 19 on a store made by schema 18 (every step before it run as such a build did):
    /// its accounts come through with no note kept, and one can be kept after.
    #[test]
    fn a_schema_18_store_gains_the_away_notes_table() {
        let dir = tempfile::tempdir().unwrap();
        made_by_schema(dir.path(), 18, ALICE);
        let mut store = upgraded(dir.path());
        let got = accounts(&store);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.name, nick("Alice"));
        assert!(notes_of(&store).is_empty());
        let words = "while you were away, bob put you out of #r".to_owned();
        write(
            &mut store,
            vec![Write::AwayNotes {
                account: nick("alice"),
                notes: vec![(room("#r"), words.clone())],
            }],
        )
        .unwrap();
        assert_eq!(
            notes_of(&store),
            [("Alice".to_owned(), vec![("#r".to_owned(), words)])]
        );
    }

    /// Step 20 on a store made by schema 19: each account is held as it is (the server's
    /// writes of it apply), and loads as known.
    #[test]
    fn a_schema_19_store_holds_each_account_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        made_by_schema(dir.path(), 19, ALICE);
        let mut store = upgraded(dir.path());
        let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
        assert_eq!(
            loaded.known,
            [record("alice", "$argon2id$a", 1_700_000_000_000)]
        );
        write(
            &mut store,
            vec![Write::AccountRooms {
                account: nick("alice"),
                rooms: vec![room("#r")],
            }],
        )
        .unwrap();
        assert_eq!(accounts(&store)[0].rooms, [room("#r")]);
    }

    /// An account is its registration: what the server writes of an account the operator
    /// changed since the server read it (removed, removed and added again, a password set)
    /// lands nowhere, so it never reaches another account of the name and never undoes the
    /// operator's word, until the server takes the account up as stored (its reload, a start).
    /// The operator adds `alice` with the tool while the server runs; before the SIGHUP that
    /// would load it, a guest named alice registers in the server. The registration is not
    /// applied (the operator's account stands), and the store says so (`take_stale`): until
    /// the forty-second session nothing did, and the server told its user the account was
    /// made. A write that applies, and a failed one, name nothing.
    #[test]
    fn a_registration_the_operators_account_of_its_name_refuses_is_said_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
        let operators = record("Alice", "$argon2id$operator", 10);
        admin
            .write(&Batch {
                id: BatchId(0),
                writes: vec![Write::Account(operators.clone())],
            })
            .unwrap();
        write(
            &mut store,
            vec![
                Write::Account(record("alice", "$argon2id$guest", 20)),
                Write::AccountRooms {
                    account: nick("alice"),
                    rooms: vec![room("#guest")],
                },
                Write::Account(record("bob", "$argon2id$bob", 20)),
            ],
        )
        .unwrap();
        assert_eq!(
            store.take_stale(),
            [nick("alice")],
            "named once, for the refused registration and its rooms"
        );
        assert!(store.take_stale().is_empty(), "taken");
        let got = accounts(&store);
        let alice = got
            .iter()
            .find(|a| a.record.name.folded() == "alice")
            .unwrap();
        assert_eq!(alice.record, operators, "the operator's account stands");
        assert!(alice.rooms.is_empty());
        // Applied writes name nothing.
        write(
            &mut store,
            vec![Write::AccountRooms {
                account: nick("bob"),
                rooms: vec![room("#b")],
            }],
        )
        .unwrap();
        assert!(store.take_stale().is_empty());
        // Nor does a failed batch: nothing of it was applied, or refused.
        let failed = write(
            &mut store,
            vec![
                Write::Account(record("alice", "$argon2id$guest", 30)),
                // A time no row holds: the batch fails after alice's write was refused.
                Write::Account(record("carol", "$argon2id$carol", u64::MAX)),
            ],
        );
        assert!(failed.is_err());
        assert!(store.take_stale().is_empty());
    }

    #[test]
    fn the_servers_writes_of_an_account_the_operator_changed_land_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        let old = record("Alice", "$argon2id$old", 10);
        write(
            &mut store,
            vec![
                Write::Account(old.clone()),
                Write::AccountRooms {
                    account: nick("alice"),
                    rooms: vec![room("#old")],
                },
            ],
        )
        .unwrap();
        assert_eq!(accounts(&store)[0].rooms, [room("#old")]);
        let known = |store: &SqliteStore| store.reader().unwrap().load(&load_opts()).unwrap().known;
        assert_eq!(known(&store), [record("alice", "$argon2id$old", 10)]);

        // `account remove alice`, `account add alice`, while the server runs on.
        let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
        let operator = |admin: &mut AccountStore, writes: Vec<Write>| {
            admin
                .write(&Batch {
                    id: BatchId(0),
                    writes,
                })
                .unwrap()
        };
        operator(&mut admin, vec![Write::DropAccount(nick("alice"))]);
        let new = record("Alice", "$argon2id$new", 20);
        operator(&mut admin, vec![Write::Account(new.clone())]);
        let held = vec![natter_core::persist::HeldDirect {
            msg: natter_core::wire::DirectMsg {
                from: nick("bob"),
                to: nick("Alice"),
                id: MsgId(1),
                at: Millis(5),
                text: Text::new("for the old alice").unwrap(),
            },
            notice: false,
        }];
        let old_accounts = vec![
            Write::AccountRooms {
                account: nick("alice"),
                rooms: vec![room("#old")],
            },
            Write::ReadMarker {
                account: nick("alice"),
                room: room("#old"),
                seq: Seq(3),
            },
            Write::AddKey {
                account: nick("alice"),
                key: key(1, 1, 11),
            },
            Write::HeldDirects {
                account: nick("alice"),
                held: held.clone(),
            },
            Write::AwayNotes {
                account: nick("alice"),
                notes: vec![(room("#old"), "put out".into())],
            },
            // The old account's password change, and its registration written again.
            Write::Account(record("Alice", "$argon2id$changed", 10)),
            Write::Account(old.clone()),
        ];
        write(&mut store, old_accounts.clone()).unwrap();
        let got = accounts(&store);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record, new, "the operator's account stands");
        assert!(
            got[0].rooms.is_empty()
                && got[0].read.is_empty()
                && got[0].keys.is_empty()
                && got[0].held.is_empty(),
            "nothing of the old account reaches the new one: {:?}",
            got[0]
        );
        assert!(notes_of(&store).is_empty());

        // The server reads the accounts again and takes the new one up: its writes apply.
        write(
            &mut store,
            vec![
                Write::Account(new.clone()),
                Write::AccountRooms {
                    account: nick("alice"),
                    rooms: vec![room("#new")],
                },
            ],
        )
        .unwrap();
        assert_eq!(accounts(&store)[0].rooms, [room("#new")]);
        assert_eq!(known(&store), [record("alice", "$argon2id$new", 20)]);

        // `account passwd alice` while the account's own change is not yet stored: the
        // operator's password stays, and no key of the old password lands.
        let set = record("Alice", "$argon2id$set", 20);
        operator(
            &mut admin,
            vec![
                Write::Account(set.clone()),
                Write::RevokeKeys {
                    account: nick("alice"),
                },
            ],
        );
        write(
            &mut store,
            vec![
                Write::Account(record("Alice", "$argon2id$mine", 20)),
                Write::AddKey {
                    account: nick("alice"),
                    key: key(2, 2, 21),
                },
            ],
        )
        .unwrap();
        let got = accounts(&store);
        assert_eq!(got[0].record, set, "the operator's password stays");
        assert!(got[0].keys.is_empty());
        // Taken up at the reload: the server's writes apply again.
        write(
            &mut store,
            vec![
                Write::Account(set.clone()),
                Write::AddKey {
                    account: nick("alice"),
                    key: key(3, 3, 22),
                },
            ],
        )
        .unwrap();
        assert_eq!(accounts(&store)[0].keys, [key(3, 3, 22)]);

        // `account remove alice`: the server's account written again does not make it again.
        operator(&mut admin, vec![Write::DropAccount(nick("alice"))]);
        write(&mut store, vec![Write::Account(set.clone())]).unwrap();
        assert!(accounts(&store).is_empty(), "the removal stands");
        // A registration of the name later is another account: made.
        let later = record("alice", "$argon2id$later", 30);
        write(&mut store, vec![Write::Account(later.clone())]).unwrap();
        assert_eq!(accounts(&store)[0].record, later);
    }

    /// alice's account as every schema since accounts (3) stores it.
    const ALICE: &str = "INSERT INTO accounts (name, display, hash, created)
         VALUES ('alice', 'Alice', '$argon2id$a', 1700000000000);";

    /// Step 13 on a store made by schema 12 (every step before it run as such a build did):
    /// its accounts come through with no message kept, and one can be kept after.
    #[test]
    fn a_schema_12_store_gains_the_kept_messages_table() {
        let dir = tempfile::tempdir().unwrap();
        made_by_schema(dir.path(), 12, ALICE);
        let mut store = upgraded(dir.path());
        let got = accounts(&store);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.name, nick("Alice"));
        assert!(got[0].held.is_empty());
        let held = vec![natter_core::persist::HeldDirect {
            msg: natter_core::wire::DirectMsg {
                from: nick("bob"),
                to: nick("Alice"),
                id: MsgId(1),
                at: Millis(5),
                text: Text::new("hi").unwrap(),
            },
            notice: false,
        }];
        write(
            &mut store,
            vec![Write::HeldDirects {
                account: nick("alice"),
                held: held.clone(),
            }],
        )
        .unwrap();
        assert_eq!(accounts(&store)[0].held, held);
    }

    /// Step 16 on a store made by schema 15: its device keys come through with no use kept,
    /// a use is kept after (time, door, address) and moves with each later one, and a key
    /// added with its first use keeps it.
    #[test]
    fn a_schema_15_store_gains_device_keys_last_use() {
        use natter_core::wire::{DeviceDoor, DeviceUse};
        let dir = tempfile::tempdir().unwrap();
        made_by_schema(
            dir.path(),
            15,
            &format!(
                "{ALICE}
                 INSERT INTO device_keys (id, account, hash, created)
                 VALUES (77, 'alice', x'{}', 1700000000001);",
                "03".repeat(32)
            ),
        );
        let mut store = upgraded(dir.path());
        let got = accounts(&store);
        assert_eq!(got[0].keys, vec![key(77, 3, 1_700_000_000_001)]);
        let used = |at, door, address: Option<&str>| DeviceUse {
            at: Millis(at),
            door,
            address: address.map(|a| a.parse().unwrap()),
        };
        let page = used(1_700_000_000_500, DeviceDoor::Page, Some("2001:db8::7"));
        write(
            &mut store,
            vec![Write::KeyUsed {
                account: nick("alice"),
                id: 77,
                used: page.clone(),
            }],
        )
        .unwrap();
        assert_eq!(accounts(&store)[0].keys[0].used, Some(page));
        let client = used(1_700_000_000_900, DeviceDoor::Client, None);
        let mut added = key(78, 4, 1_700_000_000_800);
        added.used = Some(used(1_700_000_000_800, DeviceDoor::Text, Some("192.0.2.1")));
        write(
            &mut store,
            vec![
                Write::KeyUsed {
                    account: nick("alice"),
                    id: 77,
                    used: client.clone(),
                },
                Write::AddKey {
                    account: nick("alice"),
                    key: added.clone(),
                },
                // A key no longer kept stays unkept.
                Write::KeyUsed {
                    account: nick("alice"),
                    id: 99,
                    used: client.clone(),
                },
            ],
        )
        .unwrap();
        let keys = accounts(&store).remove(0).keys;
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[0].used, Some(client));
        assert_eq!(keys[1], added);
    }

    /// Step 18 on a store made by schema 17: its device keys come through unlabelled, a label
    /// written after reads back (the last one given), a label of a key not kept stays unkept,
    /// and a label goes with its key.
    #[test]
    fn a_schema_17_store_gains_device_labels() {
        use natter_core::types::DeviceLabel;
        let label = |s: &str| DeviceLabel::new(s).unwrap();
        let labels = |store: &SqliteStore| {
            let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
            loaded
                .device_labels
                .into_iter()
                .map(|(id, l)| (id, l.as_str().to_owned()))
                .collect::<Vec<_>>()
        };
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path());
        let mut store = SqliteStore::open(&config).unwrap();
        two_accounts(&mut store);
        let alice_keys = accounts(&store).remove(0).keys;
        assert!(alice_keys.len() >= 2, "{alice_keys:?}");
        let (k1, k2) = (alice_keys[0].id, alice_keys[1].id);
        let named = |id, s: &str| Write::KeyLabel {
            account: nick("alice"),
            id,
            label: label(s),
        };
        write(&mut store, vec![named(k1, "natter on laptop")]).unwrap();
        assert_eq!(labels(&store), [(k1, "natter on laptop".to_owned())]);
        drop(store);
        // The same store as schema 17 made it: no label column.
        taken_back_to_schema(dir.path(), 17, "");
        let mut store = upgraded(dir.path());
        assert_eq!(accounts(&store)[0].keys, alice_keys);
        assert!(labels(&store).is_empty());
        write(
            &mut store,
            vec![
                named(k2, "Chromium on Linux"),
                named(k1, "old name"),
                named(k1, "work laptop"),
                // A key no longer kept stays unkept.
                named(0x5eed, "nobody's"),
            ],
        )
        .unwrap();
        let mut got = labels(&store);
        got.sort();
        let mut want = vec![
            (k1, "work laptop".to_owned()),
            (k2, "Chromium on Linux".to_owned()),
        ];
        want.sort();
        assert_eq!(got, want);
        write(&mut store, vec![Write::RevokeKey { id: k1 }]).unwrap();
        assert_eq!(labels(&store), [(k2, "Chromium on Linux".to_owned())]);
        assert_eq!(accounts(&store)[0].keys.len(), alice_keys.len() - 1);
    }

    #[test]
    fn a_read_marker_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        two_accounts(&mut store);
        let marker = |seq| Write::ReadMarker {
            account: nick("alice"),
            room: room("#zeta"),
            seq: Seq(seq),
        };
        write(&mut store, vec![marker(5)]).unwrap();
        assert_eq!(accounts(&store)[0].read, vec![(room("#zeta"), Seq(12))]);
        write(&mut store, vec![marker(40), marker(30)]).unwrap();
        assert_eq!(accounts(&store)[0].read, vec![(room("#zeta"), Seq(40))]);
        write(
            &mut store,
            vec![Write::ReadMarker {
                account: nick("alice"),
                room: room("#alpha"),
                seq: Seq(1),
            }],
        )
        .unwrap();
        assert_eq!(
            accounts(&store)[0].read,
            vec![(room("#alpha"), Seq(1)), (room("#zeta"), Seq(40))]
        );
        assert_eq!(accounts(&store)[1].read, vec![(room("#zeta"), Seq(3))]);
        assert!(matches!(
            write(&mut store, vec![marker(u64::MAX)]),
            Err(WriteError::OutOfRange { what: "seq", .. })
        ));
    }

    #[test]
    fn dropping_an_account_removes_everything_of_it_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        two_accounts(&mut store);
        assert_eq!(rows_of(&store, "alice"), 6);
        write(&mut store, vec![Write::DropAccount(nick("ALICE"))]).unwrap();
        assert_eq!(rows_of(&store, "alice"), 0);
        let got = accounts(&store);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.name, nick("bob"));
        assert_eq!(
            (got[0].rooms.len(), got[0].read.len(), got[0].keys.len()),
            (1, 1, 1)
        );
        // The name can be registered again, from nothing.
        write(
            &mut store,
            vec![Write::Account(record("alice", "$argon2id$c", 9))],
        )
        .unwrap();
        let again = &accounts(&store)[0];
        assert_eq!(again.record, record("alice", "$argon2id$c", 9));
        assert!(again.rooms.is_empty() && again.read.is_empty() && again.keys.is_empty());
    }

    #[test]
    fn keys_are_revoked_one_or_all_of_an_account() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        two_accounts(&mut store);
        write(&mut store, vec![Write::RevokeKey { id: u64::MAX }]).unwrap();
        assert_eq!(accounts(&store)[0].keys, vec![key(7, 2, 20)]);
        // Revoking a key that is not there is not an error (it may have gone with its account).
        write(&mut store, vec![Write::RevokeKey { id: 12345 }]).unwrap();
        write(
            &mut store,
            vec![
                Write::AddKey {
                    account: nick("alice"),
                    key: key(9, 4, 40),
                },
                Write::RevokeKeys {
                    account: nick("Alice"),
                },
            ],
        )
        .unwrap();
        let got = accounts(&store);
        assert!(got[0].keys.is_empty());
        assert_eq!(got[1].keys, vec![key(8, 3, 30)], "bob's key stays");

        // A key id stored already fails the whole batch.
        let e = write(
            &mut store,
            vec![
                Write::AddKey {
                    account: nick("alice"),
                    key: key(10, 5, 50),
                },
                Write::AddKey {
                    account: nick("alice"),
                    key: key(8, 6, 60),
                },
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("device key 8"), "{e}");
        assert!(accounts(&store)[0].keys.is_empty(), "nothing of it stored");
    }

    #[test]
    fn the_account_store_works_beside_a_running_writer() {
        let dir = tempfile::tempdir().unwrap();
        // With no server, it creates the store.
        {
            let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
            admin
                .write(&Batch {
                    id: BatchId(0),
                    writes: vec![Write::Account(record("carol", "$argon2id$x", 3))],
                })
                .unwrap();
        }
        let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
        write(&mut store, vec![Write::Event(say("#a", 1, "hi"))]).unwrap();
        // The server holds the directory; the operator's door opens all the same.
        let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
        assert_eq!(
            admin.account(&nick("CAROL")).unwrap(),
            Some(record("carol", "$argon2id$x", 3))
        );
        assert_eq!(admin.account(&nick("dave")).unwrap(), None);
        admin
            .write(&Batch {
                id: BatchId(1),
                writes: vec![
                    Write::Account(record("dave", "$argon2id$y", 4)),
                    Write::RevokeKeys {
                        account: nick("dave"),
                    },
                ],
            })
            .unwrap();
        // Room events are the server's alone.
        let e = admin
            .write(&Batch {
                id: BatchId(2),
                writes: vec![
                    Write::DropAccount(nick("carol")),
                    Write::Event(say("#a", 2, "no")),
                ],
            })
            .unwrap_err();
        assert!(e.to_string().contains("not an account write"), "{e}");
        let names: Vec<_> = admin
            .accounts()
            .unwrap()
            .into_iter()
            .map(|a| a.record.name)
            .collect();
        assert_eq!(names, vec![nick("carol"), nick("dave")]);
        // The server's writer goes on, and its readers see the operator's writes.
        write(&mut store, vec![Write::Event(say("#a", 2, "still here"))]).unwrap();
        assert_eq!(accounts(&store).len(), 2);
    }
}

#[test]
fn a_schema_2_store_gains_accounts_and_a_running_older_server_is_not_upgraded_under_it() {
    use crate::{AccountStore, OpenError};
    let dir = tempfile::tempdir().unwrap();
    // What schema 2 of natter wrote.
    made_by_schema(
        dir.path(),
        2,
        "INSERT INTO rooms (id, name, topic, last_seq) VALUES (1, '#old', NULL, 7);",
    );
    {
        // An older server holds the directory: the operator's tool refuses to upgrade under it.
        let _server = super::write::DirLock::take(&dir.path().join("natter.lock")).unwrap();
        match AccountStore::open(&Config::new(dir.path())) {
            Err(e @ OpenError::Sqlite { .. }) => {
                assert!(e.to_string().contains("schema version 2"), "{e}")
            }
            other => panic!("{:?}", other.err()),
        }
    }
    // With nobody on it, it is upgraded (by the tool as by a server) and keeps its rooms.
    let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
    assert!(admin.accounts().unwrap().is_empty());
    drop(admin);
    let store = upgraded(dir.path());
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.rooms[0].last_seq, Seq(7));
    assert!(loaded.accounts.is_empty());
}

#[test]
fn seqs_given_out_to_events_that_were_not_stored_are_not_given_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    let room = |s: &str| RoomName::new(s).unwrap();
    let batch = |id, writes| Batch {
        id: BatchId(id),
        writes,
    };
    store
        .write(&batch(
            1,
            vec![
                Write::Event(say("#a", 1, "one")),
                Write::Event(say("#a", 2, "two")),
            ],
        ))
        .unwrap();
    // Seqs 3 to 5 of #a and 1 of #new were given out in a batch that failed: the next one
    // says so, alone or grouped with events (both paths of the writer).
    store
        .write(&batch(
            2,
            vec![Write::SeqsUsed {
                room: room("#a"),
                upto: Seq(5),
            }],
        ))
        .unwrap();
    store
        .write(&batch(
            3,
            vec![
                Write::Event(say("#b", 1, "b")),
                Write::SeqsUsed {
                    room: room("#new"),
                    upto: Seq(1),
                },
                Write::Event(say("#b", 2, "b")),
                // Never lowers what is stored.
                Write::SeqsUsed {
                    room: room("#a"),
                    upto: Seq(4),
                },
            ],
        ))
        .unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    let last = |name: &str| {
        loaded
            .rooms
            .iter()
            .find(|r| r.name == room(name))
            .map(|r| r.last_seq)
    };
    assert_eq!(last("#a"), Some(Seq(5)));
    assert_eq!(last("#new"), Some(Seq(1)));
    assert_eq!(last("#b"), Some(Seq(2)));
    // The events stored are still read back, and nothing past them.
    let a = loaded.rooms.iter().find(|r| r.name == room("#a")).unwrap();
    assert_eq!(
        a.recent.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

/// A backup put back (README's restore) went back to its rooms' seqs: those given out after it
/// were given out again, to other events, which clients that had seen the first ones took for
/// them (issue 16: "a room's seqs never restart"). The marks kept beside `natter.db` raise them.
#[test]
fn a_restored_backup_goes_on_after_the_seqs_given_out_since() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    let copies = tempfile::tempdir().unwrap();
    let backup = copies.path().join("natter-backup.db");
    let events = |room: &str, seqs: std::ops::RangeInclusive<u64>| Batch {
        id: BatchId(seqs.start() * 100),
        writes: seqs.map(|s| Write::Event(say(room, s, "line"))).collect(),
    };
    {
        let mut store = SqliteStore::open(&config).unwrap();
        store.write(&events("#a", 1..=10)).unwrap();
        store.write(&events("#b", 1..=3)).unwrap();
        store.backup(&backup).unwrap();
        store.write(&events("#a", 11..=20)).unwrap();
        store.write(&events("#c", 1..=2)).unwrap();
    }
    for f in ["natter.db-wal", "natter.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::copy(&backup, dir.path().join(crate::config::DB_FILE)).unwrap();
    let mut store = SqliteStore::open(&config).unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    let last = |name: &str| {
        loaded
            .rooms
            .iter()
            .find(|r| r.name.as_str() == name)
            .map(|r| r.last_seq)
    };
    assert_eq!(last("#a"), Some(Seq(20)), "not 10 again");
    assert_eq!(last("#b"), Some(Seq(3)));
    assert_eq!(last("#c"), Some(Seq(2)), "a room made after the backup");
    let a = loaded
        .rooms
        .iter()
        .find(|r| r.name.as_str() == "#a")
        .unwrap();
    assert_eq!(
        a.recent.last().map(|e| e.seq),
        Some(Seq(10)),
        "what the copy holds"
    );
    // The room goes on after them, and a later open keeps it so.
    store.write(&events("#a", 21..=21)).unwrap();
    drop(store);
    let store = SqliteStore::open(&config).unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    let a = loaded
        .rooms
        .iter()
        .find(|r| r.name.as_str() == "#a")
        .unwrap();
    assert_eq!(a.last_seq, Seq(21));
    drop(store);
    // A marks file lost or torn costs only this protection.
    std::fs::write(dir.path().join(SEQS_FILE), "junk\n99").unwrap();
    let store = SqliteStore::open(&config).unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.rooms.len(), 3);
}

#[test]
fn room_settings_and_moderation_events_come_back_as_written() {
    use natter_core::moderation::{Entry, Mask, Modes, Policy};
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    let nick = |s: &str| Nick::new(s).unwrap();
    let policy = Policy {
        founder: Some(nick("alice")),
        ops: vec![nick("olga")],
        voiced: vec![nick("vic")],
        modes: Modes {
            invite_only: true,
            key: Text::new("sesame").ok(),
            moderated: true,
            topic_ops: false,
            limit: Some(50),
        },
        bans: vec![Entry {
            mask: Mask::parse("203.0.113.0/24").unwrap(),
            until: Some(Millis(1_800_000_000_000)),
            by: nick("alice"),
            reason: Text::new("spam").ok(),
            at: Millis(1_700_000_000_000),
        }],
        mutes: vec![Entry {
            mask: Mask::Account(nick("eve")),
            until: None,
            by: nick("olga"),
            reason: None,
            at: Millis(1_700_000_123_000),
        }],
    };
    let mut kick = say("#r", 1, "x");
    kick.kind = EventKind::Kick {
        target: nick("bob"),
        reason: Text::new("too loud, twice").ok(),
    };
    let mut bare_kick = say("#r", 2, "x");
    bare_kick.kind = EventKind::Kick {
        target: nick("carl"),
        reason: None,
    };
    let mut mode = say("#r", 3, "x");
    mode.kind = EventKind::Mode {
        change: Text::new("+b account:eve").unwrap(),
    };
    let room = RoomName::new("#r").unwrap();
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![
                Write::Event(kick.clone()),
                Write::Event(bare_kick.clone()),
                Write::Event(mode.clone()),
                Write::RoomPolicy {
                    room: room.clone(),
                    policy: Some(policy.clone()),
                },
                Write::RoomPolicy {
                    room: RoomName::new("#gone").unwrap(),
                    policy: Some(Policy::default()),
                },
                Write::RoomPolicy {
                    room: RoomName::new("#gone").unwrap(),
                    policy: None,
                },
                Write::ServerBans(policy.bans.clone()),
            ],
        })
        .unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.server_bans, policy.bans);
    assert_eq!(loaded.policies, vec![(room, policy)]);
    let r = loaded
        .rooms
        .iter()
        .find(|r| r.name.as_str() == "#r")
        .unwrap();
    assert_eq!(r.recent, vec![kick, bare_kick, mode]);
}

/// The hits of `words` over every room, as (room, seq), newest first.
fn hits(reader: &mut Reader, words: &str) -> Vec<(String, u64)> {
    reader
        .search(&SearchQuery {
            words: words.into(),
            rooms: Vec::new(),
            limit: 50,
        })
        .unwrap()
        .iter()
        .map(|e| (e.room.to_string(), e.seq.0))
        .collect()
}

#[test]
fn lines_indexed_from_what_the_writer_holds_or_read_back_are_found_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    store.defer_search(true).unwrap();
    let act = |room: &str, seq: u64, text: &str| RoomEvent {
        kind: EventKind::Act {
            id: MsgId(seq),
            text: Text::new(text).unwrap(),
        },
        ..say(room, seq, text)
    };
    let join = |room: &str, seq: u64| RoomEvent {
        kind: EventKind::Join,
        ..say(room, seq, "x")
    };
    let batch = |id: u64, events: Vec<RoomEvent>| Batch {
        id: BatchId(id),
        writes: events.into_iter().map(Write::Event).collect(),
    };
    // Says, an action and joins (not indexed) in two rooms, held by the writer and indexed
    // from there.
    store
        .write(&batch(
            1,
            vec![
                join("#a", 1),
                say("#a", 2, "alpha one"),
                join("#b", 1),
                act("#b", 2, "waves alpha"),
                say("#a", 3, "gamma"),
            ],
        ))
        .unwrap();
    store
        .write(&batch(2, vec![say("#b", 3, "alpha again")]))
        .unwrap();
    assert!(store.held_complete());
    assert_eq!(store.search_lag(), 6);
    assert_eq!(store.catch_up_search().unwrap(), 6);
    assert_eq!(store.search_lag(), 0);
    let mut reader = store.reader().unwrap();
    let alpha = vec![("#b".to_owned(), 3), ("#b".into(), 2), ("#a".into(), 2)];
    assert_eq!(hits(&mut reader, "alpha"), alpha);
    assert_eq!(hits(&mut reader, "gamma"), vec![("#a".to_owned(), 3)]);

    // Long lines, then an index step that fails (no room for the index's pages): what was
    // held went into the failed step, so the next one reads the lines back from `events`.
    // (Each line has a long word of its own, so the index needs pages for them.)
    let long = |i: u64| format!("beta{i} {i}{}", "q".repeat(900));
    store
        .write(&batch(3, (4..64).map(|s| say("#a", s, &long(s))).collect()))
        .unwrap();
    // The index's file is the one that cannot grow.
    store
        .index_sql("PRAGMA main.max_page_count = (SELECT page_count FROM pragma_page_count)")
        .unwrap_or_else(|_| {
            let pages: i64 = rusqlite::Connection::open(store.search_path())
                .unwrap()
                .pragma_query_value(None, "page_count", |r| r.get(0))
                .unwrap();
            store
                .index_sql(&format!("PRAGMA main.max_page_count = {pages}"))
                .unwrap();
        });
    assert_eq!(store.catch_up_search(), Err(WriteError::DiskFull));
    assert!(!store.held_complete());
    assert_eq!(store.search_lag(), 60);
    store
        .index_sql("PRAGMA main.max_page_count = 1073741823")
        .unwrap();
    // A group stored meanwhile joins the lines to read back.
    store
        .write(&batch(4, vec![say("#b", 4, "alpha late")]))
        .unwrap();
    assert_eq!(store.catch_up_search().unwrap(), 61);
    assert!(store.held_complete(), "held again once caught up");
    assert_eq!(hits(&mut reader, "beta63"), vec![("#a".to_owned(), 63)]);
    assert_eq!(hits(&mut reader, "beta4"), vec![("#a".to_owned(), 4)]);
    let mut alpha_late = vec![("#b".to_owned(), 4)];
    alpha_late.extend(alpha.clone());
    assert_eq!(hits(&mut reader, "alpha"), alpha_late);

    // A group that fails is not held: its lines are not stored, nor indexed.
    let duplicate = batch(5, vec![say("#a", 64, "delta"), say("#a", 2, "delta")]);
    assert!(store.write(&duplicate).is_err());
    store
        .write(&batch(6, vec![say("#a", 64, "epsilon")]))
        .unwrap();
    assert_eq!(store.catch_up_search().unwrap(), 1);
    assert!(hits(&mut reader, "delta").is_empty());
    assert_eq!(hits(&mut reader, "epsilon"), vec![("#a".to_owned(), 64)]);
}

/// The segments of the search index of `dir` (read from its file, as it stands on the disk
/// and in its log) and its `automerge` setting.
fn index_segments(dir: &std::path::Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(dir.join(SEARCH_FILE)).unwrap();
    let segments = conn
        .query_row(
            "SELECT count(DISTINCT segid) FROM events_fts_idx",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let automerge = conn
        .query_row(
            "SELECT v FROM events_fts_config WHERE k = 'automerge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (segments, automerge)
}

#[test]
fn indexing_leaves_up_to_8_segments_a_level_and_an_idle_merge_folds_them_finding_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    store.defer_search(true).unwrap();
    // Seven steps of two lines each: seven segments, which FTS5's default (4 a level) would
    // have merged already.
    for step in 0..7u64 {
        let writes = (1..=2)
            .map(|k| {
                let seq = step * 2 + k;
                Write::Event(say("#a", seq, &format!("word{seq} common")))
            })
            .collect();
        store
            .write(&Batch {
                id: BatchId(step),
                writes,
            })
            .unwrap();
        assert_eq!(store.catch_up_search().unwrap(), 2);
    }
    assert_eq!(index_segments(dir.path()), (7, 8));
    let mut reader = store.reader().unwrap();
    let all: Vec<(String, u64)> = (1..=14).rev().map(|s| ("#a".to_owned(), s)).collect();
    assert_eq!(hits(&mut reader, "common"), all);
    // Merge steps until one finds nothing to merge (a bounded number: a few pages each).
    let mut steps = 0;
    while store.merge_search_idle().unwrap() {
        steps += 1;
        assert!(steps < 100, "merging never ends");
    }
    let (segments, _) = index_segments(dir.path());
    assert!(segments <= 2, "{segments} segments left");
    assert!(!store.merge_search_idle().unwrap(), "nothing more to merge");
    assert_eq!(hits(&mut reader, "common"), all);
    assert_eq!(hits(&mut reader, "word7"), vec![("#a".to_owned(), 7)]);
    assert_eq!(
        hits(&mut reader, "word14 common"),
        vec![("#a".to_owned(), 14)]
    );
}

/// A store whose index holds seven segments of one line each ("again", seqs 1 to 7 of #a),
/// indexed inline, one step a line.
fn seven_segments() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    store.defer_search(true).unwrap();
    for step in 0..7u64 {
        store
            .write(&Batch {
                id: BatchId(step),
                writes: vec![Write::Event(say("#a", step + 1, "again"))],
            })
            .unwrap();
        store.catch_up_search().unwrap();
    }
    assert_eq!(index_segments(dir.path()).0, 7);
    (dir, store)
}

#[test]
fn an_index_thread_with_nothing_to_index_merges_the_segments_left_behind() {
    let (dir, mut store) = seven_segments();
    // The thread is told nothing: it finds nothing to index, and merges.
    let (to, rx) = std::sync::mpsc::channel();
    let (indexer, _) = store.detach_index(to).unwrap();
    let thread = std::thread::spawn(move || run_index(indexer, &rx));
    let mut waited = 0;
    while index_segments(dir.path()).0 > 2 {
        waited += 1;
        assert!(waited < 500, "not merged: {:?}", index_segments(dir.path()));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(store);
    thread.join().unwrap();
    assert_eq!(found(dir.path(), "again").len(), 7);
}

#[test]
fn an_index_thread_fed_lines_at_a_human_pace_merges_between_its_steps() {
    let (dir, mut store) = seven_segments();
    let (to, rx) = std::sync::mpsc::channel();
    let (indexer, _) = store.detach_index(to).unwrap();
    let thread = std::thread::spawn(move || run_index(indexer, &rx));
    // A line every 50 ms: never a quiet second, but never a full step either. Each step (one
    // per `INDEX_LAG`) adds a segment; the merges between them fold the old ones.
    let mut seq = 7;
    let mut fewest = i64::MAX;
    for _ in 0..100 {
        seq += 1;
        store
            .write(&Batch {
                id: BatchId(seq),
                writes: vec![Write::Event(say("#a", seq, "again"))],
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        fewest = fewest.min(index_segments(dir.path()).0);
        if fewest <= 3 {
            break;
        }
    }
    assert!(fewest <= 3, "never merged below {fewest} segments");
    drop(store);
    thread.join().unwrap();
    assert_eq!(
        found(dir.path(), "again").len(),
        usize::try_from(seq).unwrap()
    );
}

/// The `user_version` of `dir`'s search index file.
fn index_version(dir: &std::path::Path) -> i32 {
    rusqlite::Connection::open(dir.join(SEARCH_FILE))
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// The lines of `dir`'s store that hold `words`, as (room, seq), by a reader of its own.
fn found(dir: &std::path::Path, words: &str) -> Vec<(String, u64)> {
    hits(&mut Reader::open(&Config::new(dir)).unwrap(), words)
}

/// Runs `sql` on the search index's file of `dir` (the store closed).
fn on_index(dir: &std::path::Path, sql: &str) {
    rusqlite::Connection::open(dir.join(SEARCH_FILE))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn the_search_index_is_rebuilt_when_it_may_be_torn_or_wrong_and_kept_after_a_process_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    let write =
        |store: &mut SqliteStore, id: u64, seqs: std::ops::RangeInclusive<u64>, text: &str| {
            store
                .write(&Batch {
                    id: BatchId(id),
                    writes: seqs.map(|s| Write::Event(say("#a", s, text))).collect(),
                })
                .unwrap();
        };
    let mut store = SqliteStore::open(&config).unwrap();
    write(&mut store, 1, 1..=3, "kept line");
    drop(store);
    let kept = vec![("#a".to_owned(), 3), ("#a".into(), 2), ("#a".into(), 1)];
    assert_eq!(found(dir.path(), "kept"), kept);
    // A planted entry tells a rebuilt index (it is gone) from a kept one (it is a result).
    let plant = "INSERT INTO events_fts (rowid, text, room) VALUES (2, 'planted', '1');";

    // The process died (the file's log is consistent): kept, and caught up at the next open.
    let mut store = SqliteStore::open(&config).unwrap();
    store.defer_search(true).unwrap();
    write(&mut store, 2, 4..=4, "kept line");
    store.crash();
    on_index(dir.path(), plant);
    let store = SqliteStore::open(&config).unwrap();
    assert_eq!(store.search_indexed(), 4, "caught up");
    assert_eq!(found(dir.path(), "planted"), vec![("#a".to_owned(), 2)]);
    store.crash();

    // Not closed cleanly on another boot of the machine (a power cut): rebuilt.
    on_index(dir.path(), "UPDATE search_state SET boot = 'another boot'");
    drop(SqliteStore::open(&config).unwrap());
    assert!(found(dir.path(), "planted").is_empty(), "rebuilt");
    assert_eq!(found(dir.path(), "kept").len(), 4);

    // Closed cleanly: kept, whatever the boot.
    on_index(
        dir.path(),
        &format!("{plant} UPDATE search_state SET boot = 'another boot'"),
    );
    drop(SqliteStore::open(&config).unwrap());
    assert_eq!(found(dir.path(), "planted"), vec![("#a".to_owned(), 2)]);

    // Versions 1 and 2 (a run of CJK characters one word, emoji dropped), 3 (a typed private-use
    // character taken for an emoji), and a version this build does not know: rebuilt, with
    // FTS5's automerge set again.
    for version in [1, 2, 3, 99] {
        // Planted still from the step above for the first; again after each rebuild.
        let plant = if version == 1 { "" } else { plant };
        on_index(
            dir.path(),
            &format!(
                "{plant} INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', 4);
                 PRAGMA user_version = {version};"
            ),
        );
        assert_eq!(found(dir.path(), "planted"), vec![("#a".to_owned(), 2)]);
        drop(SqliteStore::open(&config).unwrap());
        assert!(found(dir.path(), "planted").is_empty(), "{version} rebuilt");
        assert_eq!(found(dir.path(), "kept").len(), 4);
        assert_eq!(index_version(dir.path()), 4);
        assert_eq!(index_segments(dir.path()).1, 8);
    }
    on_index(dir.path(), plant);

    // Ahead of the events stored (as with a backup restored beside a newer index): rebuilt.
    on_index(dir.path(), "UPDATE search_state SET indexed = 99");
    drop(SqliteStore::open(&config).unwrap());
    assert!(found(dir.path(), "planted").is_empty(), "rebuilt");

    // Of another store: rebuilt.
    on_index(
        dir.path(),
        &format!("{plant} UPDATE search_state SET store = x'00'"),
    );
    drop(SqliteStore::open(&config).unwrap());
    assert!(found(dir.path(), "planted").is_empty(), "rebuilt");

    // Damaged, or gone: rebuilt.
    std::fs::write(
        dir.path().join(SEARCH_FILE),
        b"not a database at all, not at all",
    )
    .unwrap();
    drop(SqliteStore::open(&config).unwrap());
    assert_eq!(found(dir.path(), "kept").len(), 4);
    std::fs::remove_file(dir.path().join(SEARCH_FILE)).unwrap();
    drop(SqliteStore::open(&config).unwrap());
    assert_eq!(found(dir.path(), "kept").len(), 4);
    assert!(found(dir.path(), "planted").is_empty());
}

#[test]
fn a_schema_6_store_drops_its_index_and_a_server_rebuilds_it_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    // What schema 6 of natter wrote: the index inside natter.db.
    made_by_schema(
        dir.path(),
        6,
        "INSERT INTO rooms (id, name, topic, last_seq) VALUES (1, '#old', NULL, 0);
             INSERT INTO events (room, seq, id, at, nick, kind, msg_id, text) VALUES
                 (1, 1, 1, 1700000000000, 'alice', 0, 1, 'an old line'),
                 (1, 2, 2, 1700000000001, 'bob', 0, 2, 'another old line');
             INSERT INTO events_fts (rowid, text, room) VALUES
                 (1, 'an old line', '1'), (2, 'another old line', '1');
             UPDATE search_state SET indexed = 2;",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (handle, _reports) = crate::SqliteHandle::open(&Config::new(dir.path())).unwrap();
        use crate::Store;
        let got = handle
            .search(SearchQuery {
                words: "old line".into(),
                rooms: Vec::new(),
                limit: 50,
            })
            .await
            .unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.seq.0).collect();
        assert_eq!(seqs, vec![2, 1]);
        handle.close().await;
    });
    let c = rusqlite::Connection::open(dir.path().join("natter.db")).unwrap();
    assert_eq!(schema_of(&c), SCHEMA_VERSION);
    let left: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('events_fts', 'search_state')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the index is no longer in natter.db");
}

#[test]
fn a_write_to_the_search_index_never_holds_a_commit_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    // The index's connection in the middle of a step (a deferred transaction that wrote the
    // index file, with `natter.db` attached to it): the writer commits at once all the same.
    let begin = match index::STEP_BEGIN {
        rusqlite::TransactionBehavior::Deferred => "DEFERRED",
        rusqlite::TransactionBehavior::Immediate => "IMMEDIATE",
        _ => "EXCLUSIVE",
    };
    store
        .index_sql(&format!(
            "BEGIN {begin}; UPDATE search_state SET indexed = indexed;"
        ))
        .unwrap();
    let started = std::time::Instant::now();
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![Write::Event(say("#a", 1, "not held up"))],
        })
        .ok();
    store.index_sql("COMMIT").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the commit waited {:?}",
        started.elapsed()
    );
    store.catch_up_search().unwrap();
    let mut reader = store.reader().unwrap();
    assert_eq!(hits(&mut reader, "held"), vec![("#a".to_owned(), 1)]);
}

/// A store only `natter-server account` has written (no server ran, so no index file): a reader
/// opens it, loads it and finds nothing, instead of failing to open the missing index.
#[test]
fn a_store_without_its_index_file_is_read_and_searched() {
    let dir = tempfile::tempdir().unwrap();
    drop(crate::AccountStore::open(&Config::new(dir.path())).unwrap());
    assert!(!dir.path().join(SEARCH_FILE).exists());
    assert!(found(dir.path(), "anything").is_empty());
    assert!(
        !dir.path().join(SEARCH_FILE).exists(),
        "a reader made no file"
    );
}

#[test]
fn an_index_thread_far_behind_is_handed_no_more_lines_than_it_may_hold_and_reads_back_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    // The index thread's queue, with nobody taking from it (a thread starved of CPU).
    let (to, wakes) = std::sync::mpsc::channel();
    let (indexer, progress) = store.detach_index(to).unwrap();
    let per = 4096u64;
    let batches = super::held::HELD_MAX as u64 / per + 3;
    for b in 0..batches {
        let writes = (b * per + 1..=(b + 1) * per)
            .map(|s| Write::Event(say("#a", s, &format!("line{s} flood"))))
            .collect();
        store
            .write(&Batch {
                id: BatchId(b),
                writes,
            })
            .unwrap();
    }
    let stored = (batches * per) as i64;
    assert_eq!(progress.stored.load(Ordering::Acquire), stored);
    // What waits in the queue stays bounded: the last commits handed their lines over as
    // "read them back".
    assert!(progress.queued.load(Ordering::Acquire) <= super::held::HELD_MAX);
    let cmds: Vec<IndexCmd> = progress.take_posted();
    let handed: usize = cmds
        .iter()
        .map(|c| match c {
            IndexCmd::Stored { lines, .. } => lines.as_ref().map_or(0, Vec::len),
            _ => 0,
        })
        .sum();
    assert_eq!(handed, progress.queued.load(Ordering::Acquire));
    assert!(handed <= super::held::HELD_MAX);
    let not_handed = cmds
        .iter()
        .filter(|c| matches!(c, IndexCmd::Stored { lines: None, .. }))
        .count();
    assert_eq!(not_handed, 3, "the commits past the bound");
    // The thread was woken once, for the first step due, not once per commit.
    let woken: Vec<IndexCmd> = wakes.try_iter().collect();
    assert_eq!(woken.len(), 1, "{woken:?}");
    assert!(matches!(woken[0], IndexCmd::Wake));
    // The thread gets its turn: it takes the queue (then the store's close), and every line
    // is indexed, the ones not handed over read back from `events`.
    for cmd in cmds {
        progress.post(cmd, false);
    }
    let thread = std::thread::spawn(move || run_index(indexer, &wakes));
    drop(store);
    thread.join().unwrap();
    assert_eq!(progress.queued.load(Ordering::Acquire), 0);
    assert_eq!(progress.indexed(), stored);
    assert_eq!(found(dir.path(), "line1"), vec![("#a".to_owned(), 1)]);
    let last = format!("line{stored}");
    assert_eq!(
        found(dir.path(), &last),
        vec![("#a".to_owned(), stored as u64)]
    );
    assert_eq!(found(dir.path(), "flood").len(), 50);
}

#[test]
fn a_schema_7_stores_bans_come_back_without_a_time_and_are_written_with_one_after() {
    use natter_core::moderation::Mask;
    // What schema 4 to 7 wrote: bans and mutes without the time they were set.
    #[derive(serde::Serialize)]
    struct OldEntry {
        mask: Mask,
        until: Option<Millis>,
        by: Nick,
        reason: Option<Text>,
    }
    #[derive(serde::Serialize)]
    struct OldPolicy {
        founder: Option<Nick>,
        ops: Vec<Nick>,
        voiced: Vec<Nick>,
        modes: natter_core::moderation::Modes,
        bans: Vec<OldEntry>,
        mutes: Vec<OldEntry>,
    }
    let nick = |s: &str| Nick::new(s).unwrap();
    let old = |m: &str| OldEntry {
        mask: Mask::parse(m).unwrap(),
        until: Some(Millis(1_800_000_000_000)),
        by: nick("alice"),
        reason: Text::new("spam").ok(),
    };
    let policy = OldPolicy {
        founder: Some(nick("alice")),
        ops: Vec::new(),
        voiced: Vec::new(),
        modes: Default::default(),
        bans: vec![old("nick:eve"), old("203.0.113.0/24")],
        mutes: vec![old("nick:mallory")],
    };
    let cfg = bincode::config::standard();
    let policy_blob = bincode::serde::encode_to_vec(&policy, cfg).unwrap();
    let bans_blob = bincode::serde::encode_to_vec(vec![old("198.51.100.0/24")], cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let c = made_by_schema(dir.path(), 7, "");
        c.execute(
            "INSERT INTO room_policies (room, policy) VALUES ('#r', ?1)",
            [&policy_blob],
        )
        .unwrap();
        c.execute(
            "INSERT INTO server_bans (id, bans) VALUES (1, ?1)",
            [&bans_blob],
        )
        .unwrap();
    }
    let mut store = upgraded(dir.path());
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    let (room, mut got) = loaded
        .policies
        .into_iter()
        .next()
        .expect("the room's settings");
    assert_eq!(room.as_str(), "#r");
    let masks = |v: &[natter_core::moderation::Entry]| -> Vec<String> {
        v.iter().map(|e| e.mask.to_string()).collect()
    };
    assert_eq!(masks(&got.bans), ["nick:eve", "203.0.113.0/24"]);
    assert_eq!(masks(&got.mutes), ["nick:mallory"]);
    assert!(got.bans.iter().chain(&got.mutes).all(|e| e.at == Millis(0)
        && e.until == Some(Millis(1_800_000_000_000))
        && e.by.as_str() == "alice"));
    assert_eq!(masks(&loaded.server_bans), ["198.51.100.0/24"]);
    assert_eq!(loaded.server_bans[0].at, Millis(0));
    // Changed, they are written in the new layout, with the time.
    got.bans[0].at = Millis(1_700_000_000_000);
    let mut bans = loaded.server_bans.clone();
    bans[0].at = Millis(1_700_000_001_000);
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![
                Write::RoomPolicy {
                    room: room.clone(),
                    policy: Some(got.clone()),
                },
                Write::ServerBans(bans.clone()),
            ],
        })
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.policies, vec![(room, got)]);
    assert_eq!(loaded.server_bans, bans);
}

#[test]
fn a_schema_8_store_has_its_events_rewritten_several_to_a_row_and_reads_them_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let odd = "he said \"hi\" \\ to é\ttab";
    // (room, seq, id, kind, msg_id, text) as schema 8 stored them.
    type OldRow = (i64, i64, i64, i64, Option<i64>, Option<String>);
    let mut old: Vec<OldRow> = Vec::new();
    // #a: 300 events with seqs and ids following one by one (two rows: 256 and 44).
    for s in 1..=300 {
        old.push((1, s, s, 0, Some(s), Some(format!("run line {s}"))));
    }
    // #a and #b taking turns: their ids do not follow one by one (a row each).
    for k in 0..10 {
        old.push((
            1,
            301 + k,
            301 + 2 * k,
            0,
            Some(1000 + k),
            Some(format!("turn a {k}")),
        ));
        old.push((
            2,
            1 + k,
            302 + 2 * k,
            0,
            Some(2000 + k),
            Some(format!("turn b {k}")),
        ));
    }
    // A gap in #a's seqs (a new row), then events without a message id or a text.
    old.push((1, 320, 321, 0, Some(3000), Some(odd.to_owned())));
    old.push((1, 321, 322, 6, None, None));
    old.push((1, 322, 323, 2, None, None));
    {
        let c = made_by_schema(
            dir.path(),
            8,
            "INSERT INTO rooms (id, name, topic, last_seq) VALUES (1, '#a', NULL, 0), (2, '#b', NULL, 0);",
        );
        let mut st = c
            .prepare("INSERT INTO events (room, seq, id, at, nick, kind, msg_id, text) VALUES (?1, ?2, ?3, ?4, 'alice', ?5, ?6, ?7)")
            .unwrap();
        for (room, seq, id, kind, msg_id, text) in &old {
            st.execute(rusqlite::params![
                room,
                seq,
                id,
                1_700_000_000_000 + id,
                kind,
                msg_id,
                text
            ])
            .unwrap();
        }
    }
    let mut store = upgraded(dir.path());
    let rows: Vec<(i64, i64, i64, i64)> = store
        .conn
        .prepare("SELECT room, seq, n, id FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // #a 301 follows #a 300 in seq and id: the 45th of the second row.
    assert_eq!(rows.len(), 2 + 19 + 1, "{rows:?}");
    assert_eq!(rows[0], (1, 1, 256, 1));
    assert_eq!(rows[1], (1, 257, 45, 257));
    assert_eq!(rows[2], (2, 1, 1, 302));
    assert_eq!(rows[21], (1, 320, 3, 321));
    // Every event reads back as it was, by history, by load and by search.
    let expected = |room: i64| -> Vec<RoomEvent> {
        let name = RoomName::new(if room == 1 { "#a" } else { "#b" }).unwrap();
        old.iter()
            .filter(|e| e.0 == room)
            .map(|&(_, seq, id, kind, msg_id, ref text)| {
                super::codec::Row {
                    seq,
                    at: 1_700_000_000_000 + id,
                    nick: "alice".into(),
                    kind,
                    msg_id,
                    text: text.clone(),
                }
                .event(name.clone())
                .unwrap()
            })
            .collect()
    };
    let mut reader = store.reader().unwrap();
    for (room, name) in [(1, "#a"), (2, "#b")] {
        let mut got = Vec::new();
        let mut before = Seq(u64::MAX);
        loop {
            let page = reader
                .history(&HistoryQuery {
                    room: RoomName::new(name).unwrap(),
                    before,
                    limit: 7,
                })
                .unwrap();
            let mut events = page.events;
            if let Some(first) = events.first() {
                before = first.seq;
            }
            events.extend(got);
            got = events;
            if page.at_start {
                break;
            }
        }
        assert_eq!(got, expected(room), "{name}");
    }
    let loaded = reader
        .load(&LoadOptions {
            recent: 1000,
            recent_rooms: RecentRooms::All,
            sessions_since: Millis(0),
        })
        .unwrap();
    assert_eq!(loaded.rooms[0].recent, expected(1));
    assert_eq!(loaded.rooms[0].last_seq, Seq(322));
    assert_eq!(loaded.rooms[1].last_seq, Seq(10));
    let found = reader
        .search(&SearchQuery {
            words: "said hi".into(),
            rooms: Vec::new(),
            limit: 50,
        })
        .unwrap();
    assert_eq!(found, vec![expected(1)[310].clone()]);
    let found = reader
        .search(&SearchQuery {
            words: "run line".into(),
            rooms: Vec::new(),
            limit: 50,
        })
        .unwrap();
    let seqs: Vec<u64> = found.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (251..=300).rev().collect::<Vec<_>>());
    // And it goes on from there: the next id, a new row, a duplicate refused.
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![Write::Event(say("#a", 323, "after the rewrite"))],
        })
        .unwrap();
    assert_eq!(store.next_id, 325);
    let dup = store.write(&Batch {
        id: BatchId(2),
        writes: vec![Write::Event(say("#a", 5, "again"))],
    });
    assert!(
        matches!(dup, Err(WriteError::Duplicate { ref room, seq: Seq(5) }) if room.as_str() == "#a"),
        "{dup:?}"
    );
}

#[test]
fn a_commit_writes_a_row_per_room_and_run_of_seqs_and_refuses_any_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    // #a 1..=300 and #b 1..=3 taking turns, then #a 302 (a gap): rows #a 1..=256, #b 1..=3,
    // #a 257..=300, #a 302.
    let mut writes = Vec::new();
    for s in 1..=300 {
        writes.push(Write::Event(say("#a", s, &format!("a {s}"))));
        if s <= 3 {
            writes.push(Write::Event(say("#b", s, &format!("b {s}"))));
        }
    }
    writes.push(Write::Event(say("#a", 302, "a 302")));
    store
        .write(&Batch {
            id: BatchId(1),
            writes,
        })
        .unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = store
        .conn
        .prepare("SELECT room, seq, n, id FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, 1, 256, 1),
            (2, 1, 3, 257),
            (1, 257, 44, 260),
            (1, 302, 1, 304)
        ]
    );
    // Overlapping a stored row anywhere, or another event of the same commit, fails the
    // whole batch, naming the first seq stored already.
    for (seqs, dup) in [
        (vec![("#a", 301), ("#a", 302)], 302),
        (vec![("#a", 100)], 100),
        (vec![("#b", 4), ("#b", 5), ("#b", 4)], 4),
        (vec![("#a", 250), ("#a", 251)], 250),
        (vec![("#c", 1), ("#a", 303), ("#a", 300)], 300),
    ] {
        let writes = seqs
            .iter()
            .map(|&(r, s)| Write::Event(say(r, s, "again")))
            .collect();
        let got = store.write(&Batch {
            id: BatchId(2),
            writes,
        });
        assert!(
            matches!(got, Err(WriteError::Duplicate { seq, .. }) if seq == Seq(dup)),
            "{seqs:?}: {got:?}"
        );
    }
    assert_eq!(store.next_id, 305);
    // A row whose first seq is below a stored row's and whose last is inside it.
    let writes = (299..=301)
        .map(|s| Write::Event(say("#a", s, "x")))
        .collect();
    let got = store.write(&Batch {
        id: BatchId(3),
        writes,
    });
    assert!(
        matches!(got, Err(WriteError::Duplicate { seq: Seq(299), .. })),
        "{got:?}"
    );
    let writes = vec![Write::Event(say("#a", 301, "fills the gap"))];
    store
        .write(&Batch {
            id: BatchId(4),
            writes,
        })
        .unwrap();
    assert_eq!(store.next_id, 306);
}

#[test]
fn a_read_back_picks_the_lines_of_an_id_range_out_of_rows_it_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    store.defer_search(true).unwrap();
    // Rows: #a 1..=256 (ids 1..=256), #a 257..=300 (ids 257..=300).
    let writes = (1..=300)
        .map(|s| Write::Event(say("#a", s, &format!("line n{s}"))))
        .collect();
    store
        .write(&Batch {
            id: BatchId(1),
            writes,
        })
        .unwrap();
    // What a step reading back ids 101..=260 indexes (both rows cut), nothing else.
    assert!(super::index::INDEX_RANGE_SQL.contains(&format!("?1 - {ROW_EVENTS}")));
    let range = super::index::INDEX_RANGE_SQL
        .replace("?1", "100")
        .replace("?2", "260");
    store.index_sql(&range).unwrap();
    let mut reader = store.reader().unwrap();
    let mut find = |words: &str| -> Vec<u64> {
        reader
            .search(&SearchQuery {
                words: words.into(),
                rooms: Vec::new(),
                limit: 50,
            })
            .unwrap()
            .iter()
            .map(|e| e.seq.0)
            .collect()
    };
    assert_eq!(find("line"), (211..=260).rev().collect::<Vec<_>>());
    assert_eq!(find("n101"), vec![101]);
    assert_eq!(find("n260"), vec![260]);
    assert!(find("n100").is_empty());
    assert!(find("n261").is_empty());
    assert!(find("n1").is_empty());
}

#[test]
fn texts_with_quotes_backslashes_and_any_character_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    let texts = [
        r#"she said "hi" \o/ \"#,
        "\\u0041 is not A",
        "naïve — 日本語 😀 \u{7f}",
        "}], [\"",
    ];
    let writes = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Write::Event(say("#a", i as u64 + 1, t)))
        .collect();
    store
        .write(&Batch {
            id: BatchId(1),
            writes,
        })
        .unwrap();
    let page = store
        .reader()
        .unwrap()
        .history(&HistoryQuery {
            room: RoomName::new("#a").unwrap(),
            before: Seq(u64::MAX),
            limit: 10,
        })
        .unwrap();
    let got: Vec<RoomEvent> = page.events;
    let want: Vec<RoomEvent> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| say("#a", i as u64 + 1, t))
        .collect();
    assert_eq!(got, want);
}

fn presence(room: &str, nick: &str, here: bool) -> Write {
    Write::Presence {
        room: RoomName::new(room).unwrap(),
        nick: Nick::new(nick).unwrap(),
        here,
    }
}

/// Who each room's `present` holds, sorted, by room.
fn present_of(loaded: &crate::Loaded) -> Vec<(String, Vec<String>)> {
    loaded
        .rooms
        .iter()
        .map(|r| {
            let mut nicks: Vec<String> = r.present.iter().map(|n| n.as_str().to_owned()).collect();
            nicks.sort();
            (r.name.as_str().to_owned(), nicks)
        })
        .collect()
}

#[test]
fn who_is_in_each_room_is_stored_with_the_events_and_comes_back_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    // Presence writes between a room's events: the events still go into one row.
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![
                Write::Event(say("#a", 1, "one")),
                presence("#a", "alice", true),
                Write::Event(say("#a", 2, "two")),
                presence("#a", "Bob", true),
                presence("#a", "carol", true),
                Write::Event(say("#b", 1, "b one")),
                presence("#b", "alice", true),
                Write::Event(say("#a", 3, "three")),
            ],
        })
        .unwrap();
    let rows: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM events WHERE room = (SELECT id FROM rooms WHERE name = '#a')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1, "#a's three events in one row");
    // A leave, a nick's case changed (the same key), a nick change away.
    store
        .write(&Batch {
            id: BatchId(2),
            writes: vec![
                presence("#a", "carol", false),
                presence("#a", "BOB", true),
                presence("#b", "alice", false),
                presence("#b", "alicia", true),
                presence("#a", "nobody", false),
            ],
        })
        .unwrap();
    let s = |room: &str, nicks: &[&str]| {
        (
            room.to_owned(),
            nicks.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
    };
    let want = vec![s("#a", &["BOB", "alice"]), s("#b", &["alicia"])];
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(present_of(&loaded), want);
    assert_eq!(loaded.rooms[0].recent.len(), 3);
    drop(store);

    let mut store = SqliteStore::open(&Config::new(dir.path())).unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(present_of(&loaded), want, "after a reopen");
    // A restarted hub's first batch: the record starts again with whom it took back.
    store
        .write(&Batch {
            id: BatchId(3),
            writes: vec![Write::PresenceReset, presence("#b", "dave", true)],
        })
        .unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(present_of(&loaded), vec![s("#a", &[]), s("#b", &["dave"])]);
    // A failed batch leaves the record as it was.
    let bad = Batch {
        id: BatchId(4),
        writes: vec![
            Write::PresenceReset,
            presence("#a", "erin", true),
            Write::Event(say("#b", 1, "a seq stored already")),
        ],
    };
    assert!(store.write(&bad).is_err());
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(present_of(&loaded), vec![s("#a", &[]), s("#b", &["dave"])]);
}

#[test]
fn a_schema_9_store_opens_knowing_nobody_in_its_rooms_and_keeps_who_enters() {
    let dir = tempfile::tempdir().unwrap();
    // What schema 9 of natter wrote: one room with one event in a row.
    made_by_schema(
        dir.path(),
        9,
        "INSERT INTO rooms (id, name, topic, last_seq) VALUES (1, '#old', NULL, 1);
         INSERT INTO events (room, seq, n, id, at, frames, ends) VALUES
             (1, 1, 1, 1, 1700000000001, '[[1700000000001,\"alice\",0,1,\"an old line\"]]', NULL);",
    );
    let mut store = upgraded(dir.path());
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.rooms.len(), 1);
    assert_eq!(loaded.rooms[0].recent.len(), 1);
    assert_eq!(loaded.rooms[0].last_seq, Seq(1));
    assert!(loaded.rooms[0].present.is_empty());
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![Write::PresenceReset, presence("#old", "alice", true)],
        })
        .unwrap();
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(
        present_of(&loaded),
        vec![("#old".to_owned(), vec!["alice".to_owned()])]
    );
}

/// The columns each schema step added to an existing table (the version the step makes, the
/// table, the column), in order: what a store of an older version lacked. A test that turns a
/// store back into an older version drops those of every later step ([`back_to_schema`]), so a
/// new step's columns are listed here once, not in every such test
/// (`every_added_column_is_listed_for_the_tests_of_older_stores` holds the list to the steps).
const ADDED_COLUMNS: &[(u32, &str, &str)] = &[
    (12, "sessions", "refused"),
    (12, "sessions", "prev_id"),
    (12, "sessions", "prev_token"),
    (14, "sessions", "took_zero"),
    (15, "sessions", "put_out"),
    (16, "device_keys", "used"),
    (16, "device_keys", "door"),
    (16, "device_keys", "address"),
    (17, "sessions", "device_key"),
    (18, "device_keys", "label"),
];

/// SQL that takes the columns of a store back to schema `version` (dropping what later steps
/// added, see [`ADDED_COLUMNS`]) and says that version.
fn back_to_schema(version: u32) -> String {
    let mut sql: String = ADDED_COLUMNS
        .iter()
        .filter(|(step, ..)| *step > version)
        .map(|(_, table, column)| format!("ALTER TABLE {table} DROP COLUMN {column};\n"))
        .collect();
    sql.push_str(&format!("PRAGMA user_version = {version};"));
    sql
}

// The migration tests: "a store made by schema N opens under this build and keeps X". Each says
// how its old store is made (by that schema's steps, [`made_by_schema`], or by this build and
// then taken back, [`taken_back_to_schema`]) and what it keeps; opening it again is
// [`upgraded`].

#[path = "../../tests/common/old_store.rs"]
mod old_store;
use old_store::{made_by_schema, schema_of, upgraded};

#[test]
fn old_stores_say_the_application_id_of_this_build() {
    let dir = tempfile::tempdir().unwrap();
    let c = made_by_schema(dir.path(), 1, "");
    let id: i32 = c
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(id, schema::APPLICATION_ID);
}

/// Takes the closed store in `dir`, made by this build, back to schema `version` in one
/// transaction: `first` (SQL undoing what the later steps did besides adding columns; often
/// nothing), then [`back_to_schema`].
fn taken_back_to_schema(dir: &std::path::Path, version: u32, first: &str) {
    rusqlite::Connection::open(dir.join("natter.db"))
        .unwrap()
        .execute_batch(&format!(
            "BEGIN;\n{first}\n{}\nCOMMIT;",
            back_to_schema(version)
        ))
        .unwrap();
}

/// A session of `nick` holding `token` (its hash and id) in #a, up to `last_id`, with nothing
/// else: a migration test of sessions changes the field its step added.
fn session(token: (u8, u64), nick: &str, last_id: u64) -> crate::SessionRecord {
    crate::SessionRecord {
        token: crate::TokenHash([token.0; 32]),
        token_id: token.1,
        nick: Nick::new(nick).unwrap(),
        rooms: vec![RoomName::new("#a").unwrap()],
        last_id: MsgId(last_id),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        device_key: None,
        updated: Millis(1),
    }
}

/// Writes `session` as batch `id`.
fn write_session(store: &mut SqliteStore, id: u64, session: &crate::SessionRecord) {
    store
        .write(&Batch {
            id: BatchId(id),
            writes: vec![Write::Session(session.clone())],
        })
        .unwrap();
}

/// `session`, written by this build (and read back as written), then its store taken back to
/// schema `version` and upgraded: the store, and the sessions it reads.
fn session_through_schema(
    dir: &std::path::Path,
    version: u32,
    session: &crate::SessionRecord,
) -> (SqliteStore, Vec<crate::SessionRecord>) {
    let mut store = SqliteStore::open(&Config::new(dir)).unwrap();
    write_session(&mut store, 1, session);
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.sessions, std::slice::from_ref(session));
    drop(store);
    taken_back_to_schema(dir, version, "");
    let store = upgraded(dir);
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    (store, loaded.sessions)
}

#[test]
fn every_added_column_is_listed_for_the_tests_of_older_stores() {
    let mut added = Vec::new();
    for (i, step) in super::schema::MIGRATIONS.iter().enumerate().skip(11) {
        for line in step.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
                let mut words = rest.split_whitespace();
                let table = words.next().unwrap();
                assert_eq!(
                    (words.next(), words.next()),
                    (Some("ADD"), Some("COLUMN")),
                    "{line}"
                );
                let column = words.next().unwrap();
                added.push((i as u32 + 1, table, column));
            }
        }
    }
    assert_eq!(added, ADDED_COLUMNS);
}

#[test]
fn a_schema_10_store_keeps_every_event_when_its_rows_move_to_a_rowid_table() {
    use natter_core::persist::HistoryPage;
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    // Lines of ~750 bytes, eight to a row: rows spill onto overflow pages, as a busy room's do.
    let long = |seq: u64| format!("line{seq} {}", "word ".repeat(150));
    let mut store = SqliteStore::open(&config).unwrap();
    let mut next = [0u64; 2];
    for batch in 0..6u64 {
        let writes = ["#a", "#b"]
            .iter()
            .enumerate()
            .filter(|(k, _)| batch % 3 != 2 || *k == 0)
            .flat_map(|(k, room)| {
                let from = next[k] + 1;
                next[k] += 8;
                (from..=next[k]).map(|seq| Write::Event(say(room, seq, &long(seq))))
            })
            .collect();
        store
            .write(&Batch {
                id: BatchId(batch),
                writes,
            })
            .unwrap();
    }
    let pages = |store: &SqliteStore| -> Vec<HistoryPage> {
        let mut reader = store.reader().unwrap();
        ["#a", "#b"]
            .iter()
            .flat_map(|room| [u64::MAX, 10].map(|before| (room, before)))
            .map(|(room, before)| {
                reader
                    .history(&HistoryQuery {
                        room: RoomName::new(room).unwrap(),
                        before: Seq(before),
                        limit: 50,
                    })
                    .unwrap()
            })
            .collect()
    };
    let before = pages(&store);
    assert_eq!(before[0].events.len(), 48);
    assert_eq!(before[2].events.len(), 32);
    drop(store);
    // What schema 10 wrote: the same rows in a WITHOUT ROWID table keyed by (room, seq) (and
    // sessions without schema 12's column).
    taken_back_to_schema(
        dir.path(),
        10,
        "ALTER TABLE events RENAME TO events_v11;
         DROP INDEX events_by_seq;
         CREATE TABLE events (
             room INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,
             id INTEGER NOT NULL, at INTEGER NOT NULL, frames TEXT NOT NULL, ends BLOB,
             PRIMARY KEY (room, seq)
         ) WITHOUT ROWID;
         CREATE UNIQUE INDEX events_by_id ON events (id);
         INSERT INTO events SELECT room, seq, n, id, at, frames, ends FROM events_v11;
         DROP TABLE events_v11;",
    );
    let mut store = upgraded(dir.path());
    let table: String = store
        .conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!table.contains("WITHOUT ROWID"), "{table}");
    assert_eq!(pages(&store), before);
    assert_eq!(
        found(dir.path(), "line7").len(),
        2,
        "#a and #b each have a seq 7"
    );
    // New rows follow the old ones, in the rooms' seqs and in ids.
    store
        .write(&Batch {
            id: BatchId(9),
            writes: vec![Write::Event(say("#b", next[1] + 1, "after the move"))],
        })
        .unwrap();
    let after = pages(&store);
    assert_eq!(after[2].events.len(), 33);
    assert_eq!(after[0], before[0]);
    assert_eq!(
        found(dir.path(), "move"),
        vec![("#b".to_owned(), next[1] + 1)]
    );
}

#[test]
fn a_schema_11_store_keeps_its_sessions_with_nothing_refused_and_no_token_before() {
    use natter_core::wire::ErrorKind;
    let dir = tempfile::tempdir().unwrap();
    let session = crate::SessionRecord {
        refused: vec![(MsgId(4), ErrorKind::Muted)],
        ..session((5, 7), "alice", 9)
    };
    // What schema 11 had: the same row without the column.
    let (mut store, sessions) = session_through_schema(dir.path(), 11, &session);
    let nothing_refused = crate::SessionRecord {
        refused: Vec::new(),
        prev: None,
        ..session.clone()
    };
    assert_eq!(sessions, [nothing_refused]);
    // Written again, with what was refused and the token before: read back as written.
    write_session(&mut store, 2, &session);
    let loaded = store.reader().unwrap().load(&load_opts()).unwrap();
    assert_eq!(loaded.sessions, [session]);
}

#[test]
fn a_schema_13_store_keeps_its_sessions_and_a_taken_id_0_reads_back() {
    // Schema 14: whether a session took a message with id 0 (a resend of it after a restart
    // is acknowledged, not taken again). A record written before reads as having taken none.
    let dir = tempfile::tempdir().unwrap();
    let session = crate::SessionRecord {
        took_zero: true,
        ..session((6, 8), "zoe", 0)
    };
    let (_, sessions) = session_through_schema(dir.path(), 13, &session);
    let before = crate::SessionRecord {
        took_zero: false,
        ..session
    };
    assert_eq!(sessions, [before]);
}

#[test]
fn a_schema_14_store_keeps_its_sessions_and_the_rooms_put_out_of_read_back() {
    // Schema 15: the rooms a session's user left while its client may not have heard (its
    // resume after a restart replays who put it out, and why). A record written before reads
    // as put out of none.
    let dir = tempfile::tempdir().unwrap();
    let session = crate::SessionRecord {
        put_out: vec![RoomName::new("#b").unwrap(), RoomName::new("#c").unwrap()],
        ..session((5, 9), "zed", 2)
    };
    let (_, sessions) = session_through_schema(dir.path(), 14, &session);
    let before = crate::SessionRecord {
        put_out: Vec::new(),
        ..session
    };
    assert_eq!(sessions, [before]);
}

#[test]
fn a_schema_16_store_keeps_its_sessions_and_the_device_key_reads_back() {
    // Schema 17: the device key a session's device holds (a restarted server ends the session
    // when that device is forgotten). A record written before reads as holding none.
    let dir = tempfile::tempdir().unwrap();
    let session = crate::SessionRecord {
        device_key: Some(u64::MAX - 6),
        ..session((6, 10), "zed", 2)
    };
    let (_, sessions) = session_through_schema(dir.path(), 16, &session);
    let before = crate::SessionRecord {
        device_key: None,
        ..session
    };
    assert_eq!(sessions, [before]);
}

#[test]
fn a_write_that_opening_needs_on_a_full_disk_says_the_disk_is_full_not_a_message() {
    use crate::OpenError;
    // A server stopped on a full disk leaves its last message ids unfolded (the close's fold
    // failed too); started again on that disk, the fold at open failed with a sender's words:
    // "cannot start error=.../natter.db: folding sessions' last message ids: the server's disk
    // is full: the message was not stored". README ("Durable history"): a full disk at start
    // is said as `... cannot be opened for writing: the disk is full ...`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    let what = "folding sessions' last message ids";
    let e = schema::write_error_at_open(&path, what, WriteError::DiskFull);
    assert!(matches!(e, OpenError::Unwritable { .. }), "{e:?}");
    let said = e.to_string();
    assert!(
        said.starts_with(&format!(
            "{} cannot be opened for writing: the disk is full (",
            path.display()
        )),
        "{said}"
    );
    assert!(said.contains(what), "{said}");
    assert!(!said.contains("message was not stored"), "{said}");
    // Any other failure keeps what it was, in the store's words, not a sender's.
    let e = schema::write_error_at_open(&path, what, WriteError::Storage("no such table".into()));
    assert!(matches!(e, OpenError::Sqlite { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("{}: {what}: no such table", path.display())
    );
}

#[test]
fn only_natter_db_is_said_as_read_with_its_log() {
    use crate::OpenError;
    // `with_log` turns a refusal of `natter.db` into `StrangeLog` when a log is beside it. Open
    // also fails for the search index (`search.db`, its own log) with the same kinds: said with
    // natter.db's log, the operator was told to move `natter.db-wal` away, which holds the
    // last commits after a crash.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    std::fs::write(dir.path().join("natter.db-wal"), b"the last commits").unwrap();
    let corrupt = |path: &std::path::Path| OpenError::Corrupt {
        path: path.to_path_buf(),
        detail: "database disk image is malformed".into(),
    };
    let search = dir.path().join("search.db");
    let e = schema::with_log(&db, corrupt(&search));
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}");
    assert!(!e.to_string().contains("natter.db-wal"), "{e}");
    let e = schema::with_log(&db, corrupt(&db));
    assert!(matches!(e, OpenError::StrangeLog { .. }), "{e:?}");
}

/// The mode of each file in `dir`, by name.
#[cfg(unix)]
fn file_modes(dir: &std::path::Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut modes: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            (e.file_name().to_string_lossy().into_owned(), mode)
        })
        .collect();
    modes.sort();
    modes
}

#[cfg(unix)]
#[test]
fn the_store_files_are_the_servers_users_only() {
    // Until the thirty-third session natter.db, its -wal and -shm and search.db were made
    // 0644 (under the usual umask) inside the 0700 data dir: readable by anyone who could get
    // into the directory (a backup copied elsewhere, a dir made 0755 by hand). They hold the
    // rooms' history and password hashes.
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    let mut store = filled(&dir, 20);
    store.catch_up_search().unwrap();
    let mut reader = store.reader().unwrap();
    assert_eq!(hits(&mut reader, "line 7").len(), 3);
    let modes = file_modes(&dir);
    for name in ["natter.db", "natter.db-wal", "natter.db-shm", SEARCH_FILE] {
        assert!(modes.iter().any(|(n, _)| n == name), "{name}: {modes:?}");
    }
    assert!(modes.iter().all(|(_, m)| *m == 0o600), "{modes:?}");
    drop(reader);
    drop(store);
    // A store made before: its files are narrowed at the next open.
    for (name, _) in file_modes(&dir) {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = SqliteStore::open(&Config::new(&dir)).unwrap();
    let modes = file_modes(&dir);
    assert!(modes.iter().all(|(_, m)| *m == 0o600), "{modes:?}");
    drop(store);
}
