//! The SQLite backend used synchronously, on real files in temp dirs: every event kind kept
//! exactly, batches all or nothing, room metadata, sessions, history pages, search with hostile
//! input, faults at open, migrations, retention and backup.

mod common;

use common::old_store::{made_by_schema, upgraded};
use common::*;
use natter_core::limits::{HISTORY_PAGE_MAX, SEARCH_MAX_RESULTS};
use natter_core::wire::{ErrorKind, EventKind};
use natter_core::{Millis, MsgId, ResumeToken, Seq};
use natter_store::{
    Batch, BatchId, Config, HistoryQuery, LoadOptions, OpenError, RecentRooms, Retention,
    SearchQuery, SessionRecord, SqliteStore, TokenHash, Write, WriteError,
};

fn load_all(store: &SqliteStore, recent: usize) -> natter_store::Loaded {
    store
        .reader()
        .unwrap()
        .load(&LoadOptions {
            recent,
            recent_rooms: RecentRooms::All,
            sessions_since: Millis(0),
        })
        .unwrap()
}

fn search(store: &SqliteStore, words: &str, room: Option<&str>) -> Vec<(String, u64)> {
    store
        .reader()
        .unwrap()
        .search(&SearchQuery {
            words: words.into(),
            rooms: room.map(common::room).into_iter().collect(),
            limit: SEARCH_MAX_RESULTS,
        })
        .unwrap_or_else(|e| panic!("search {words:?} failed: {e}"))
        .into_iter()
        .map(|e| (e.room.to_string(), e.seq.0))
        .collect()
}

#[test]
fn every_event_kind_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let kinds = vec![
        EventKind::Join,
        EventKind::Say {
            id: MsgId(7),
            text: text("  indented, with é and 😀 "),
        },
        EventKind::Act {
            id: MsgId(u64::MAX >> 1),
            text: text("waves"),
        },
        EventKind::Part { reason: None },
        EventKind::Part {
            reason: Some(text("bye")),
        },
        EventKind::Quit { reason: None },
        EventKind::Quit {
            reason: Some(text("gone")),
        },
        EventKind::Nick { new: nick("[bob]") },
        EventKind::Topic {
            topic: Some(text("rust")),
        },
        EventKind::Topic { topic: None },
        EventKind::Notice {
            id: MsgId(8),
            text: text("a notice, not a say"),
        },
    ];
    let events: Vec<_> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| event("#all", i as u64 + 1, "Alice", k))
        .collect();
    store.write(&batch(1, events.clone())).unwrap();
    assert_eq!(all_events(&store, "#all"), events);
    let loaded = load_all(&store, 100);
    assert_eq!(loaded.rooms.len(), 1);
    let r = &loaded.rooms[0];
    assert_eq!(r.name, room("#all"));
    assert_eq!(r.last_seq, Seq(events.len() as u64));
    assert_eq!(r.recent, events);
    // The last topic event cleared it.
    assert_eq!(r.topic, None);
}

#[test]
fn room_metadata_follows_events_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        let topic = |seq, t: &str| {
            event(
                "#a",
                seq,
                "bob",
                EventKind::Topic {
                    topic: Some(text(t)),
                },
            )
        };
        store
            .write(&batch(
                1,
                [say("#a", 1, "x"), topic(2, "first"), say("#b", 1, "y")],
            ))
            .unwrap();
        store
            .write(&batch(2, [topic(3, "second"), say("#a", 4, "z")]))
            .unwrap();
    }
    let store = open(dir.path());
    let loaded = load_all(&store, 2);
    let a = loaded.rooms.iter().find(|r| r.name == room("#a")).unwrap();
    assert_eq!(a.topic, Some(text("second")));
    assert_eq!(a.last_seq, Seq(4));
    assert_eq!(
        a.recent.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        vec![3, 4],
        "the newest N, oldest first"
    );
    let b = loaded.rooms.iter().find(|r| r.name == room("#b")).unwrap();
    assert_eq!((b.topic.clone(), b.last_seq), (None, Seq(1)));
}

/// An admin's close of a room (its `Mode` `close` event) forgets its topic with its settings
/// (PROTOCOL.md, `Close`); another mode change does not.
#[test]
fn a_closed_rooms_topic_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let topic = |r: &str, seq| {
        event(
            r,
            seq,
            "bob",
            EventKind::Topic {
                topic: Some(text("old plans")),
            },
        )
    };
    let mode = |r: &str, seq, change: &str| {
        event(
            r,
            seq,
            "root",
            EventKind::Mode {
                change: text(change),
            },
        )
    };
    store
        .write(&batch(
            1,
            [
                topic("#a", 1),
                mode("#a", 2, "close: moved to #b"),
                topic("#c", 1),
                mode("#c", 2, "+m"),
            ],
        ))
        .unwrap();
    let loaded = load_all(&store, 2);
    let topic_of = |r: &str| {
        loaded
            .rooms
            .iter()
            .find(|x| x.name == room(r))
            .unwrap()
            .topic
            .clone()
    };
    assert_eq!(topic_of("#a"), None);
    assert_eq!(topic_of("#c"), Some(text("old plans")));
}

#[test]
fn a_batch_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.write(&batch(1, [say("#a", 1, "one")])).unwrap();
    let session = SessionRecord {
        token: TokenHash::of(&ResumeToken([9; 32])),
        token_id: 0x0102_0304_0506_0708,
        nick: nick("carol"),
        rooms: vec![room("#a")],
        last_id: MsgId(3),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        device_key: None,
        updated: Millis(T0),
    };
    // A new room, a session, a topic, then a duplicate seq: the whole batch fails.
    let mut bad = batch(
        2,
        [
            say("#new", 1, "two"),
            event(
                "#a",
                2,
                "bob",
                EventKind::Topic {
                    topic: Some(text("t")),
                },
            ),
        ],
    );
    bad.push(Write::Session(session.clone()));
    bad.push(Write::Event(say("#a", 1, "again")));
    assert_eq!(
        store.write(&bad),
        Err(WriteError::Duplicate {
            room: room("#a"),
            seq: Seq(1)
        })
    );
    let loaded = load_all(&store, 10);
    assert_eq!(loaded.rooms.len(), 1, "the new room was not created");
    assert_eq!(loaded.rooms[0].topic, None);
    assert_eq!(loaded.rooms[0].last_seq, Seq(1));
    assert!(loaded.sessions.is_empty());
    assert_eq!(all_events(&store, "#a"), vec![say("#a", 1, "one")]);
    assert!(search(&store, "two", None).is_empty());
    // The store goes on: the same room created again works (its id was not kept from the
    // failed transaction).
    store
        .write(&batch(3, [say("#new", 1, "two"), say("#a", 2, "three")]))
        .unwrap();
    assert_eq!(all_events(&store, "#new"), vec![say("#new", 1, "two")]);
    assert_eq!(search(&store, "two", None), vec![("#new".into(), 1)]);
}

#[test]
fn a_group_commit_is_all_or_nothing_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let group = [
        batch(1, [say("#a", 1, "one")]),
        batch(2, [say("#a", 2, "two")]),
        batch(3, [say("#a", 2, "dup")]),
    ];
    assert!(store.write_group(&group).is_err());
    assert!(all_events(&store, "#a").is_empty());
    store.write_group(&group[..2]).unwrap();
    assert_eq!(all_events(&store, "#a").len(), 2);
}

#[test]
fn numbers_past_i64_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let e = event(
        "#a",
        u64::MAX,
        "alice",
        EventKind::Say {
            id: MsgId(1),
            text: text("x"),
        },
    );
    assert_eq!(
        store.write(&batch(1, [e])),
        Err(WriteError::OutOfRange {
            what: "seq",
            value: u64::MAX
        })
    );
}

#[test]
fn sessions_round_trip_by_token_hash() {
    let dir = tempfile::tempdir().unwrap();
    let token = ResumeToken(*b"0123456789abcdef0123456789ABCDEF");
    let s1 = SessionRecord {
        token: TokenHash::of(&token),
        token_id: 0x0102_0304_0506_0708,
        nick: nick("alice"),
        rooms: vec![room("#a"), room("#b")],
        last_id: MsgId(41),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        device_key: None,
        updated: Millis(T0),
    };
    let s2 = SessionRecord {
        token: TokenHash::of(&ResumeToken([1; 32])),
        token_id: u64::MAX,
        nick: nick("bob"),
        rooms: vec![],
        last_id: MsgId(0),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        // The device key's id, all 64 bits (schema 17).
        device_key: Some(0x8000_0000_0000_0001),
        updated: Millis(T0 + 10),
    };
    {
        let mut store = open(dir.path());
        let mut b = Batch::new(BatchId(1));
        b.push(Write::Session(s1.clone()));
        b.push(Write::Session(s2.clone()));
        store.write(&b).unwrap();
        // Replaced: the last accepted id moves on, past two messages refused.
        let s1b = SessionRecord {
            last_id: MsgId(42),
            took_zero: false,
            refused: vec![
                (MsgId(40), ErrorKind::NotInRoom),
                (MsgId(41), ErrorKind::NotStored),
            ],
            prev: Some((u64::MAX - 1, TokenHash::of(&ResumeToken([3; 32])))),
            put_out: Vec::new(),
            device_key: None,
            updated: Millis(T0 + 20),
            ..s1.clone()
        };
        // Only bob's last id (and time) move; a session with no record gets none.
        store
            .write(&Batch {
                id: BatchId(2),
                writes: vec![
                    Write::Session(s1b),
                    Write::SessionLastId {
                        token: s2.token,
                        last_id: MsgId(7),
                        updated: Millis(T0 + 12),
                    },
                    Write::SessionLastId {
                        token: TokenHash::of(&ResumeToken([2; 32])),
                        last_id: MsgId(8),
                        updated: Millis(T0 + 12),
                    },
                ],
            })
            .unwrap();
    }
    let mut store = open(dir.path());
    let mut sessions = load_all(&store, 0).sessions;
    sessions.sort_by_key(|s| s.nick.clone());
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].last_id, MsgId(42));
    assert_eq!(sessions[0].rooms, s1.rooms);
    assert_eq!(
        sessions[0].refused,
        [
            (MsgId(40), ErrorKind::NotInRoom),
            (MsgId(41), ErrorKind::NotStored)
        ]
    );
    assert_eq!(
        sessions[0].prev,
        Some((u64::MAX - 1, TokenHash::of(&ResumeToken([3; 32]))))
    );
    assert_eq!(
        sessions[1],
        SessionRecord {
            last_id: MsgId(7),
            took_zero: false,
            put_out: Vec::new(),
            updated: Millis(T0 + 12),
            ..s2.clone()
        }
    );
    // Only the recent ones, when asked.
    let recent = store
        .reader()
        .unwrap()
        .load(&LoadOptions {
            recent: 0,
            recent_rooms: RecentRooms::OfSessions,
            sessions_since: Millis(T0 + 15),
        })
        .unwrap();
    assert_eq!(recent.sessions.len(), 1);
    assert_eq!(recent.sessions[0].nick, nick("alice"));
    // Ended one by one, or all before a time.
    store
        .write(&Batch {
            id: BatchId(3),
            writes: vec![Write::EndSession(s2.token)],
        })
        .unwrap();
    assert_eq!(load_all(&store, 0).sessions.len(), 1);
    store
        .write(&Batch {
            id: BatchId(4),
            writes: vec![Write::EndSessionsBefore(Millis(T0 + 21))],
        })
        .unwrap();
    assert!(load_all(&store, 0).sessions.is_empty());
    // The token itself is nowhere in the files.
    drop(store);
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!bytes.windows(24).any(|w| w == token.secret()));
    }
}

#[test]
fn load_returns_recent_events_only_for_the_rooms_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .write(&batch(
            1,
            (1..=5)
                .map(|s| say("#a", s, "x"))
                .chain([say("#b", 1, "y")]),
        ))
        .unwrap();
    store
        .write(&Batch {
            id: BatchId(2),
            writes: vec![Write::Session(SessionRecord {
                token: TokenHash([3; 32]),
                token_id: 0x0102_0304_0506_0708,
                nick: nick("dave"),
                rooms: vec![room("#b")],
                last_id: MsgId(1),
                took_zero: false,
                prev: None,
                refused: Vec::new(),
                put_out: Vec::new(),
                device_key: None,
                updated: Millis(T0),
            })],
        })
        .unwrap();
    let loaded = store
        .reader()
        .unwrap()
        .load(&LoadOptions {
            recent: 3,
            recent_rooms: RecentRooms::OfSessions,
            sessions_since: Millis(0),
        })
        .unwrap();
    let a = loaded.rooms.iter().find(|r| r.name == room("#a")).unwrap();
    let b = loaded.rooms.iter().find(|r| r.name == room("#b")).unwrap();
    assert!(a.recent.is_empty());
    assert_eq!(a.last_seq, Seq(5));
    assert_eq!(b.recent.len(), 1);
}

#[test]
fn history_pages_go_back_to_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .write(&batch(
            1,
            (1..=25).map(|s| say("#a", s, &format!("line {s}"))),
        ))
        .unwrap();
    let mut reader = store.reader().unwrap();
    let mut history = store.reader().unwrap();
    let mut page = |before: u64, limit: usize| {
        history
            .history(&HistoryQuery {
                room: room("#a"),
                before: Seq(before),
                limit,
            })
            .unwrap()
    };
    let p = page(26, 10);
    assert_eq!(
        p.events.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        (16..=25).collect::<Vec<_>>()
    );
    assert!(!p.at_start);
    let p = page(16, 10);
    assert_eq!(p.events.first().unwrap().seq, Seq(6));
    assert!(!p.at_start);
    let p = page(6, 10);
    assert_eq!(
        p.events.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(p.at_start);
    // Exactly the rest: the page knows nothing is older.
    assert!(page(11, 10).at_start);
    assert!(page(1, 10).events.is_empty());
    // Unknown rooms have no history; limits are capped.
    let none = reader
        .history(&HistoryQuery {
            room: room("#nope"),
            before: Seq(u64::MAX),
            limit: 10,
        })
        .unwrap();
    assert!(none.events.is_empty() && none.at_start);
    store
        .write(&batch(2, (26..=500).map(|s| say("#a", s, "more"))))
        .unwrap();
    assert_eq!(page(u64::MAX, 100_000).events.len(), HISTORY_PAGE_MAX);
}

#[test]
fn search_finds_words_newest_first_with_an_optional_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .write(&batch(
            1,
            [
                say("#a", 1, "The quick brown fox"),
                say("#b", 1, "a QUICK café"),
                event(
                    "#a",
                    2,
                    "bob",
                    EventKind::Act {
                        id: MsgId(1),
                        text: text("jumps quickly over the fox"),
                    },
                ),
                event(
                    "#a",
                    3,
                    "bob",
                    EventKind::Topic {
                        topic: Some(text("quick topics are not chat lines")),
                    },
                ),
                event(
                    "#a",
                    4,
                    "bob",
                    EventKind::Part {
                        reason: Some(text("quick exit")),
                    },
                ),
            ],
        ))
        .unwrap();
    assert_eq!(
        search(&store, "quick", None),
        vec![("#b".into(), 1), ("#a".into(), 1)]
    );
    assert_eq!(search(&store, "quick", Some("#a")), vec![("#a".into(), 1)]);
    assert_eq!(
        search(&store, "FOX", None),
        vec![("#a".into(), 2), ("#a".into(), 1)]
    );
    assert_eq!(search(&store, "fox brown", None), vec![("#a".into(), 1)]);
    assert_eq!(
        search(&store, "cafe", None),
        vec![("#b".into(), 1)],
        "accents fold"
    );
    assert!(search(&store, "quick", Some("#nope")).is_empty());
    assert!(search(&store, "absent", None).is_empty());
    // Hits carry everything a result line shows.
    let hit = store
        .reader()
        .unwrap()
        .search(&SearchQuery {
            words: "jumps".into(),
            rooms: Vec::new(),
            limit: 5,
        })
        .unwrap();
    assert_eq!(hit[0].from, nick("bob"));
    assert_eq!(hit[0].at, Millis(T0 + 2000));
    // At most the cap, newest first: with a few matches, and with many (read another way).
    store
        .write(&batch(2, (10..=200).map(|s| say("#c", s, "flood"))))
        .unwrap();
    let hits = search(&store, "flood", None);
    assert_eq!(hits.len(), SEARCH_MAX_RESULTS);
    assert_eq!(hits[0].1, 200);
    assert_eq!(hits[49].1, 151);
    store
        .write(&batch(3, (201..=3000).map(|s| say("#c", s, "flood"))))
        .unwrap();
    let hits = search(&store, "flood", Some("#c"));
    assert_eq!(
        hits.iter().map(|h| h.1).collect::<Vec<_>>(),
        (2951..=3000).rev().collect::<Vec<_>>()
    );
    // A notice is a chat line: found like a say.
    store
        .write(&batch(
            4,
            [event(
                "#d",
                1,
                "bot",
                EventKind::Notice {
                    id: MsgId(1),
                    text: text("build heralded"),
                },
            )],
        ))
        .unwrap();
    assert_eq!(search(&store, "heralded", None), vec![("#d".into(), 1)]);
}

#[test]
fn hostile_search_strings_never_error_and_match_literally() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let lines = [
        "say \"hello\" to NEAR friends",
        "use a:b and c-d please",
        "(parens) AND OR NOT words",
        "prefix star* here",
        "don't panic",
        "plain hello",
    ];
    store
        .write(&batch(
            1,
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| say("#x", i as u64 + 1, l)),
        ))
        .unwrap();
    let hostile = [
        "\"",
        "\"\"",
        "\"hello",
        "hello\"",
        "*",
        "**",
        "hel*",
        "-",
        "-hello",
        "NEAR",
        "NEAR(",
        "NEAR(a b, 3)",
        ":",
        "a:",
        ":b",
        "x:y",
        "text:hello",
        "(",
        ")",
        "()",
        "(hello",
        "AND",
        "OR",
        "NOT",
        "hello AND",
        "OR hello",
        "NOT hello",
        "^hello",
        "+",
        "{text}: hello",
        "'; DROP TABLE events; --",
        "\\",
        "\0",
        "\u{202E}hello",
        "😀",
        "hello\u{0}world",
        "%",
        "_",
        "a OR b",
        "rowid:1",
        "\"\"\"\"\"",
        "col:\"x\"*",
        "*hello*",
        "NEAR/2",
    ];
    let mut reader = store.reader().unwrap();
    for q in hostile {
        let r = reader.search(&SearchQuery {
            words: q.into(),
            rooms: Vec::new(),
            limit: 50,
        });
        assert!(r.is_ok(), "{q:?} gave {r:?}");
    }
    // Literal meaning: operators are words, quotes and stars are not syntax.
    assert_eq!(search(&store, "NEAR", None), vec![("#x".into(), 1)]);
    assert_eq!(
        search(&store, "\"hello\"", None),
        vec![("#x".into(), 6), ("#x".into(), 1)]
    );
    assert_eq!(search(&store, "AND OR NOT", None), vec![("#x".into(), 3)]);
    assert_eq!(
        search(&store, "NOT hello", None),
        Vec::<(String, u64)>::new()
    );
    assert_eq!(
        search(&store, "hello OR words", None),
        Vec::<(String, u64)>::new()
    );
    assert_eq!(search(&store, "a:b", None), vec![("#x".into(), 2)]);
    assert_eq!(search(&store, "c-d", None), vec![("#x".into(), 2)]);
    assert_eq!(search(&store, "-d", None), vec![("#x".into(), 2)]);
    assert_eq!(search(&store, "(parens)", None), vec![("#x".into(), 3)]);
    assert_eq!(search(&store, "star*", None), vec![("#x".into(), 4)]);
    assert_eq!(
        search(&store, "sta*", None),
        Vec::<(String, u64)>::new(),
        "no prefix search"
    );
    assert_eq!(search(&store, "don't", None), vec![("#x".into(), 5)]);
    assert!(search(&store, "* - : ( )", None).is_empty());
}

#[test]
fn open_refuses_an_unusable_data_dir_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("natter");
    match SqliteStore::open(&Config::new(&under)) {
        Err(e @ OpenError::DataDir { .. }) => {
            assert!(e.to_string().contains(&under.display().to_string()), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    // A file that is named as the directory itself.
    match SqliteStore::open(&Config::new(&file)) {
        Err(e @ OpenError::DataDir { .. }) => {
            let said = e.to_string();
            assert!(said.contains(&file.display().to_string()), "{said}");
            assert!(said.ends_with("it is a file, not a directory"), "{said}");
        }
        other => panic!("{:?}", other.err()),
    }
    // A directory where the database file should be.
    let d2 = dir.path().join("d2");
    std::fs::create_dir_all(d2.join(natter_store::DB_FILE)).unwrap();
    match SqliteStore::open(&Config::new(&d2)) {
        Err(e @ OpenError::Unwritable { .. }) => {
            assert!(e.to_string().contains("natter.db"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn open_refuses_a_corrupt_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("natter.db"), vec![0x5a; 8192]).unwrap();
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::Corrupt { .. }) => {
            assert!(e.to_string().contains("natter.db"), "{e}");
        }
        other => panic!("{:?}", other.err()),
    }
    // The file is left as it was.
    assert_eq!(
        std::fs::read(dir.path().join("natter.db")).unwrap(),
        vec![0x5a; 8192]
    );

    let d2 = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(d2.path().join("natter.db")).unwrap();
        c.execute_batch("CREATE TABLE something (x); INSERT INTO something VALUES (1);")
            .unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&Config::new(d2.path())),
        Err(OpenError::Foreign { .. })
    ));
    let d3 = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(d3.path().join("natter.db")).unwrap();
        c.execute_batch("PRAGMA application_id = 42;").unwrap();
    }
    assert!(matches!(
        SqliteStore::open(&Config::new(d3.path())),
        Err(OpenError::Foreign { .. })
    ));
}

/// A write-ahead log beside `natter.db` that is not its own (a copy put in place as `natter.db`
/// with the old file's `natter.db-wal` left beside it) is refused, and both files are left as
/// they were, so that moving the log away gives the store back. SQLite folds a log into its
/// file when the last connection closes: closing the refused connection used to write the
/// stranger's pages into `natter.db` and delete the log, and the store was lost.
#[test]
fn a_write_ahead_log_from_another_file_is_refused_and_nothing_is_folded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        store.write(&batch(1, [say("#a", 1, "kept")])).unwrap();
    }
    let db = dir.path().join("natter.db");
    let wal = dir.path().join("natter.db-wal");
    assert!(!wal.exists(), "a clean close folds the log in");
    let before = std::fs::read(&db).unwrap();
    // Another database's log, left by a connection that did not fold it.
    let other = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(other.path().join("other.db")).unwrap();
        c.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (zeroblob(20000));",
        )
        .unwrap();
    }
    let stranger = std::fs::read(other.path().join("other.db-wal")).unwrap();
    assert!(!stranger.is_empty());
    std::fs::write(&wal, &stranger).unwrap();
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::StrangeLog { .. }) => {
            let said = e.to_string();
            assert!(said.contains("natter.db-wal"), "{said}");
            assert!(said.contains("left as they were"), "{said}");
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(
        std::fs::read(&db).unwrap() == before,
        "natter.db was written"
    );
    assert!(
        std::fs::read(&wal).is_ok_and(|w| w == stranger),
        "the log was folded in or removed"
    );
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(dir.path().join("natter.db-shm"));
    let store = open(dir.path());
    let kept: Vec<u64> = all_events(&store, "#a").iter().map(|e| e.seq.0).collect();
    assert_eq!(kept, vec![1]);
}

/// The likeliest stranger's log: the store's own, left by a crash, beside a backup put back as
/// `natter.db` (README's restore asks to remove it; the crash that makes one restore is the
/// time it is there). Its pages, a checkpoint newer than the backup, read over the copy's:
/// SQLite's words were "natter.db: Query returned no rows" (a row the store always holds read
/// from a page of another time), an `Sqlite` error, not said with the log, so nothing told the
/// operator what to move. It is `StrangeLog`, both files left as they were.
#[test]
fn a_backup_put_back_beside_the_crashed_files_own_log_is_refused_naming_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let backup = side.path().join("backup.db");
    let restored = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        let line = |r: &str, seq: u64| say(r, seq, &format!("line {seq} {}", "x".repeat(300)));
        for i in 1..=200 {
            store.write(&batch(i, [line("#a", i)])).unwrap();
        }
        store.backup(&backup).unwrap();
        for i in 1..=200 {
            store.write(&batch(200 + i, [line("#b", i)])).unwrap();
            if i == 100 {
                // The server's checkpoints: the file moves on past the backup, the log
                // starts again.
                let c = rusqlite::Connection::open(dir.path().join("natter.db")).unwrap();
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
            }
        }
        // The crash: the log as it is while the store runs; the backup put in place.
        for f in ["natter.db-wal", "natter.seqs"] {
            std::fs::copy(dir.path().join(f), restored.path().join(f)).unwrap();
        }
        std::fs::copy(&backup, restored.path().join("natter.db")).unwrap();
    }
    let db = restored.path().join("natter.db");
    let wal = restored.path().join("natter.db-wal");
    let (copy, log) = (std::fs::read(&db).unwrap(), std::fs::read(&wal).unwrap());
    assert!(!log.is_empty());
    match SqliteStore::open(&Config::new(restored.path())) {
        Err(e @ OpenError::StrangeLog { .. }) => {
            let said = e.to_string();
            assert!(said.contains("natter.db-wal"), "{said}");
            assert!(said.contains("put back from a backup"), "{said}");
        }
        Err(e) => panic!("refused, but not said with the log: {e:?}"),
        Ok(_) => panic!("opened the backup read with another time's pages"),
    }
    assert!(std::fs::read(&db).unwrap() == copy, "natter.db was written");
    assert!(
        std::fs::read(&wal).is_ok_and(|w| w == log),
        "the log was folded in or removed"
    );
    // Moved away, the backup opens as it was taken.
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(restored.path().join("natter.db-shm"));
    let store = open(restored.path());
    assert_eq!(all_events(&store, "#a").len(), 200);
    assert!(all_events(&store, "#b").is_empty());
}

/// A `natter.db` cut to no bytes (a copy onto a full disk, a file emptied by mistake) is a new
/// database to SQLite: the store used to make a new, empty one in it, with a WARN, and every
/// line was gone. Beside a `natter.seqs` that says rooms had lines, it is refused and left as it
/// is; without one (nothing was ever stored) it is a new store, as before.
#[test]
fn an_emptied_database_file_is_refused_beside_the_seqs_given_out() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        store.write(&batch(1, [say("#a", 1, "kept")])).unwrap();
    }
    let db = dir.path().join("natter.db");
    std::fs::write(&db, b"").unwrap();
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::Corrupt { .. }) => {
            let said = e.to_string();
            assert!(said.contains("natter.db"), "{said}");
            assert!(
                said.contains("empty") && said.contains("natter.seqs"),
                "{said}"
            );
        }
        other => panic!("{:?}", other.err()),
    }
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left as it was");
    // Nothing stored before: an empty file is a new store.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("natter.db"), b"").unwrap();
    drop(open(fresh.path()));
    // The operator's way on: without the seqs, a new store.
    std::fs::remove_file(dir.path().join("natter.seqs")).unwrap();
    let store = open(dir.path());
    assert!(all_events(&store, "#a").is_empty());
}

/// A `natter.seqs` that holds no mark that reads (a torn line, the zeros or the junk a power
/// cut can leave, which the store's open skips) says no room had lines: an empty or missing
/// `natter.db` beside it is a new store, not refused as emptied (the operator was told to
/// remove a file that protects nothing). One mark that reads, among junk, still refuses it.
#[test]
fn a_seqs_file_of_junk_only_does_not_refuse_an_empty_database() {
    for junk in [
        &b"junk\n"[..],
        b"12",
        b"12 \n",
        b"\0\0\0\0\0\0\0\0",
        b"0 #a\n",
        b"\xff\xfe 7 #a\n",
    ] {
        for emptied in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("natter.seqs"), junk).unwrap();
            if emptied {
                std::fs::write(dir.path().join("natter.db"), b"").unwrap();
            }
            let store = SqliteStore::open(&Config::new(dir.path()))
                .unwrap_or_else(|e| panic!("{junk:?} (emptied: {emptied}): {e}"));
            assert!(all_events(&store, "#a").is_empty());
        }
    }
    // A mark after junk and before a torn last line: rooms had lines.
    for emptied in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("natter.seqs"),
            b"\xff\xfe junk\n3 #a\n\0\x004",
        )
        .unwrap();
        if emptied {
            std::fs::write(dir.path().join("natter.db"), b"").unwrap();
        }
        let refused = SqliteStore::open(&Config::new(dir.path())).err();
        assert!(
            matches!(
                refused,
                Some(OpenError::Corrupt { .. } | OpenError::Missing { .. })
            ),
            "emptied: {emptied}: {refused:?}"
        );
    }
}

/// A `natter.db` that is not there at all (deleted by mistake, or a restore that left the copy
/// elsewhere) beside a `natter.seqs` that says rooms had lines is refused as an emptied one is:
/// SQLite would make a new, empty store in its place, and the server started on it with only a
/// WARN about the seqs. Nothing is made; the operator's way on is the same.
#[test]
fn a_missing_database_file_is_refused_beside_the_seqs_given_out() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        store.write(&batch(1, [say("#a", 1, "kept")])).unwrap();
    }
    let db = dir.path().join("natter.db");
    let moved = dir.path().join("natter.db.moved");
    std::fs::rename(&db, &moved).unwrap();
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::Missing { .. }) => {
            let said = e.to_string();
            assert!(said.contains("natter.db is not there"), "{said}");
            assert!(said.contains("natter.seqs"), "{said}");
            assert!(said.contains("remove"), "{said}");
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(!db.exists(), "no new store was made in its place");
    // The accounts' command (`natter-server account`, the server stopped) refuses it too.
    assert!(matches!(
        natter_store::AccountStore::open(&Config::new(dir.path())),
        Err(OpenError::Missing { .. })
    ));
    assert!(!db.exists(), "no new store was made in its place");
    // Put back, it opens as it was.
    std::fs::rename(&moved, &db).unwrap();
    let store = open(dir.path());
    let kept: Vec<u64> = all_events(&store, "#a").iter().map(|e| e.seq.0).collect();
    assert_eq!(kept, vec![1]);
    drop(store);
    // Without the seqs, a new store, as before.
    std::fs::remove_file(&db).unwrap();
    std::fs::remove_file(dir.path().join("natter.seqs")).unwrap();
    let store = open(dir.path());
    assert!(all_events(&store, "#a").is_empty());
}

#[test]
fn open_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let c = rusqlite::Connection::open(dir.path().join("natter.db")).unwrap();
        c.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::NewerSchema { found: 99, .. }) => {
            assert!(e.to_string().contains("natter.db"), "{e}");
        }
        other => panic!("{:?}", other.err()),
    }
}

/// A lock file that cannot be made is named as the file it is (it was called "data directory
/// …/natter.lock").
#[test]
fn a_lock_file_that_cannot_be_made_is_named_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("natter.lock");
    std::fs::create_dir(&lock).unwrap();
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::File { .. }) => {
            let said = e.to_string();
            assert!(said.starts_with(&lock.display().to_string()), "{said}");
            assert!(!said.starts_with("data directory"), "{said}");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_second_writer_on_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    match SqliteStore::open(&Config::new(dir.path())) {
        Err(e @ OpenError::Locked { .. }) => assert!(e.to_string().contains("natter.lock")),
        other => panic!("{:?}", other.err()),
    }
    drop(first);
    drop(open(dir.path()));
}

#[test]
fn a_schema_1_store_is_upgraded_and_its_lines_become_searchable() {
    let dir = tempfile::tempdir().unwrap();
    // What schema 1 of natter wrote: its tables, its version, its rows.
    made_by_schema(
        dir.path(),
        1,
        "INSERT INTO rooms (id, name, topic, last_seq) VALUES (1, '#old', 'kept', 3);
         INSERT INTO events (room, seq, id, at, nick, kind, msg_id, text) VALUES
           (1, 1, 1, 1700000001000, 'alice', 2, NULL, NULL),
           (1, 2, 2, 1700000002000, 'alice', 0, 5, 'written before search existed'),
           (1, 3, 3, 1700000003000, 'alice', 6, NULL, 'kept');
         INSERT INTO sessions VALUES (x'0101010101010101010101010101010101010101010101010101010101010101', 7, 'alice', '#old', 5, 1700000003000);",
    );
    let mut store = upgraded(dir.path());
    assert_eq!(
        search(&store, "before search", None),
        vec![("#old".into(), 2)]
    );
    let loaded = load_all(&store, 10);
    assert_eq!(loaded.rooms[0].topic, Some(text("kept")));
    assert_eq!(loaded.rooms[0].recent.len(), 3);
    assert_eq!(loaded.sessions[0].last_id, MsgId(5));
    // And it goes on from there.
    store.write(&batch(1, [say("#old", 4, "after")])).unwrap();
    assert_eq!(search(&store, "after", None), vec![("#old".into(), 4)]);
}

#[test]
fn retention_by_age_removes_old_events_and_keeps_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.retention = Retention {
        max_age_days: 1,
        max_bytes: 0,
    };
    let mut store = SqliteStore::open(&config).unwrap();
    // 3000 events a second apart in #a, 100 per commit (a row of `events` each); "now" puts
    // the first 2499 past a day. A row goes as a whole once its newest event is old: the
    // rows up to seq 2400.
    for b in 0..30 {
        store
            .write(&batch(
                b,
                (b * 100 + 1..=(b + 1) * 100).map(|s| say("#a", s, &format!("old {s}"))),
            ))
            .unwrap();
    }
    let now = Millis(T0 + 2500 * 1000 + 86_400_000);
    let first = store.prune_step(now).unwrap();
    assert_eq!(
        first.events,
        natter_store::sqlite::PRUNE_STEP,
        "one bounded step"
    );
    assert!(first.more);
    let second = store.prune_step(now).unwrap();
    assert_eq!(first.events + second.events, 2400);
    assert!(!store.prune_step(now).unwrap().more);
    let kept = all_events(&store, "#a");
    assert_eq!(kept.first().unwrap().seq, Seq(2401));
    assert!(search(&store, "old", None).iter().all(|(_, s)| *s >= 2401));
    assert!(
        search(&store, "2400", None).is_empty(),
        "the index lost them too"
    );
    assert_eq!(search(&store, "2401", None), vec![("#a".into(), 2401)]);
    assert_eq!(search(&store, "2499", None), vec![("#a".into(), 2499)]);
    // Everything goes; the room's seq does not restart.
    store.prune_step(Millis(u64::MAX / 2)).unwrap();
    assert!(all_events(&store, "#a").is_empty());
    assert_eq!(load_all(&store, 10).rooms[0].last_seq, Seq(3000));
}

#[test]
fn retention_by_size_removes_the_oldest_until_under() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.retention = Retention {
        max_age_days: 0,
        max_bytes: 512 * 1024,
    };
    let mut store = SqliteStore::open(&config).unwrap();
    let line = "lorem ipsum dolor sit amet ".repeat(8);
    for b in 0..20u64 {
        store
            .write(&batch(
                b,
                (b * 500 + 1..=(b + 1) * 500).map(|s| say("#a", s, &format!("{line}{s}"))),
            ))
            .unwrap();
    }
    let mut steps = 0;
    loop {
        let p = store.prune_step(Millis(T0)).unwrap();
        steps += 1;
        assert!(p.events <= natter_store::sqlite::PRUNE_STEP);
        if !p.more {
            break;
        }
        assert!(steps < 100);
    }
    let kept = all_events(&store, "#a");
    assert!(!kept.is_empty() && kept.len() < 10_000, "{}", kept.len());
    assert_eq!(kept.last().unwrap().seq, Seq(10_000), "the newest stay");
    let seqs: Vec<u64> = kept.iter().map(|e| e.seq.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "oldest first, no holes"
    );
    // Writing on reuses the freed pages; pruning keeps it near the budget.
    store
        .write(&batch(99, [say("#a", 10_001, "still counting")]))
        .unwrap();
    assert_eq!(load_all(&store, 1).rooms[0].last_seq, Seq(10_001));
}

#[test]
fn the_write_ahead_logs_are_cut_back_to_their_share_of_max_bytes() {
    // README ("Durable history"): `max_bytes` is what the store's files may take, the logs
    // beside them included. Their `journal_size_limit` was 64 MiB whatever `max_bytes` said: a
    // store limited to 8 MiB kept a log of as many MiB as its last burst beside it.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.retention = Retention {
        max_age_days: 0,
        max_bytes: 8 << 20,
    };
    let limit = config.retention.wal_limit();
    assert_eq!(limit, 256 << 10);
    assert_eq!(config.retention.pages_budget(), Some((8 << 20) - 2 * limit));
    let mut store = SqliteStore::open(&config).unwrap();
    let size = |f: &str| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len());
    // A burst: one commit of a few MiB.
    let words = |s: u64| -> String {
        (0..120u64)
            .map(|i| {
                format!(
                    "{:x}",
                    (s * 7919 + i).wrapping_mul(2_654_435_761) % 1_000_003
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    store
        .write(&batch(1, (1..=1000).map(|s| say("#a", s, &words(s)))))
        .unwrap();
    assert!(
        size("natter.db-wal") > 2 * limit,
        "the burst went through the log"
    );
    // `natter.db` checkpointed, as `SqliteHandle`'s checkpoint thread does (every 100 ms); the
    // index checkpoints its own log once it holds its share.
    rusqlite::Connection::open(dir.path().join("natter.db"))
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .unwrap();
    // The writes after the checkpoint cut each log back.
    for b in 2..6u64 {
        store
            .write(&batch(b, [say("#a", 999 + b, "small")]))
            .unwrap();
    }
    for log in ["natter.db-wal", "search.db-wal"] {
        assert!(size(log) <= limit, "{log}: {} > {limit}", size(log));
    }
    // No limit: the logs keep their old bound.
    assert_eq!(
        Retention {
            max_age_days: 0,
            max_bytes: 0
        }
        .wal_limit(),
        64 << 20
    );
    assert_eq!(Retention::default().wal_limit(), 64 << 20);
}

#[test]
fn retention_by_size_counts_the_pages_the_search_index_uses_not_its_file() {
    // A store of 2000 lines, its index file then grown by pages it holds free (as merges and
    // removed lines leave them: the file never shrinks).
    let dir = tempfile::tempdir().unwrap();
    let line = "lorem ipsum dolor sit amet ".repeat(8);
    {
        let mut store = open(dir.path());
        for b in 0..4u64 {
            store
                .write(&batch(
                    b,
                    (b * 500 + 1..=(b + 1) * 500).map(|s| say("#a", s, &format!("{line}{s}"))),
                ))
                .unwrap();
        }
    }
    let index_file = dir.path().join("search.db");
    {
        let conn = rusqlite::Connection::open(&index_file).unwrap();
        conn.execute_batch(
            "CREATE TABLE ballast (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO ballast SELECT zeroblob(4000) FROM n;
             DROP TABLE ballast;",
        )
        .unwrap();
    }
    let free_bytes = 4_000_000;
    assert!(std::fs::metadata(&index_file).unwrap().len() > free_bytes);
    // A budget the pages in use fit in three times over, but not with the free ones.
    let used: u64 = ["natter.db", "search.db"]
        .iter()
        .map(|f| {
            let conn = rusqlite::Connection::open(dir.path().join(f)).unwrap();
            let get = |p: &str| -> i64 { conn.pragma_query_value(None, p, |r| r.get(0)).unwrap() };
            u64::try_from((get("page_count") - get("freelist_count")) * get("page_size")).unwrap()
        })
        .sum();
    assert!(used * 3 < free_bytes, "{used}");
    let mut config = Config::new(dir.path());
    config.retention = Retention {
        max_age_days: 0,
        max_bytes: used * 3,
    };
    let mut store = SqliteStore::open(&config).unwrap();
    assert!(
        std::fs::metadata(&index_file).unwrap().len() > free_bytes,
        "the index was kept, not rebuilt"
    );
    for _ in 0..5 {
        assert_eq!(store.prune_step(Millis(T0)).unwrap().events, 0);
    }
    assert_eq!(
        all_events(&store, "#a").len(),
        2000,
        "nothing was over the budget"
    );
}

#[test]
fn backup_is_a_consistent_copy_that_opens_as_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .write(&batch(1, (1..=100).map(|s| say("#a", s, "backed up"))))
        .unwrap();
    let copy = tempfile::tempdir().unwrap();
    store.backup(&copy.path().join("natter.db")).unwrap();
    store.write(&batch(2, [say("#a", 101, "after")])).unwrap();
    let restored = open(copy.path());
    assert_eq!(all_events(&restored, "#a").len(), 100);
    assert_eq!(search(&restored, "backed", None).len(), 50);
    // The target must be new.
    assert!(store.backup(&copy.path().join("natter.db")).is_err());
}

#[test]
fn readers_open_beside_the_writer_and_see_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path());
    // Nothing there yet: a reader does not create a store.
    assert!(natter_store::Reader::open(&config).is_err());
    let mut store = SqliteStore::open(&config).unwrap();
    let mut reader = natter_store::Reader::open(&config).unwrap();
    store.write(&batch(1, [say("#a", 1, "seen")])).unwrap();
    let page = reader
        .history(&HistoryQuery {
            room: room("#a"),
            before: Seq(u64::MAX),
            limit: 10,
        })
        .unwrap();
    assert_eq!(page.events, vec![say("#a", 1, "seen")]);
}

#[test]
fn a_group_of_many_events_is_stored_in_order_and_a_duplicate_among_them_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    // 45 events in two rooms, joins among the says: multi-row inserts of 32 and 8 rows, then
    // the last 5 one by one.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut all = Vec::new();
    for i in 1..=45u64 {
        let (r, list) = if i % 3 == 0 {
            ("#b", &mut b)
        } else {
            ("#a", &mut a)
        };
        let seq = list.len() as u64 + 1;
        let ev = if i % 7 == 0 {
            event(r, seq, "bob", EventKind::Join)
        } else {
            say(r, seq, &format!("line {i} word{i}"))
        };
        list.push(ev.clone());
        all.push(ev);
    }
    store
        .write_group(&[batch(1, all[..20].to_vec()), batch(2, all[20..].to_vec())])
        .unwrap();
    assert_eq!(all_events(&store, "#a"), a);
    assert_eq!(all_events(&store, "#b"), b);
    let says = all
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Say { .. }))
        .count();
    assert_eq!(search(&store, "line", None).len(), says);
    assert_eq!(search(&store, "word44", None).len(), 1);
    assert_eq!(search(&store, "word45", Some("#b")).len(), 1);
    // A seq stored already, in the middle of a 32-row chunk: nothing of the batch is stored,
    // and the duplicate is named.
    let next = a.len() as u64 + 1;
    let mut again: Vec<_> = (next..next + 40)
        .map(|seq| say("#a", seq, &format!("again {seq}")))
        .collect();
    again[20] = say("#a", 5, "again five");
    assert_eq!(
        store.write(&batch(3, again)),
        Err(WriteError::Duplicate {
            room: room("#a"),
            seq: Seq(5)
        })
    );
    assert_eq!(all_events(&store, "#a"), a);
    assert!(search(&store, "again", None).is_empty());
}

#[test]
fn a_conflict_rolls_the_whole_group_back_and_the_next_write_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let a: Vec<_> = (1..=40)
        .map(|s| say("#a", s, &format!("first {s}")))
        .collect();
    store.write(&batch(1, a.clone())).unwrap();
    // A room made by this group, then 32-row chunks into #a with a seq stored already in the
    // second chunk: the group's first try rolls back at that chunk (the room's row, its
    // events and the first chunk with it), the second names the duplicate.
    let fresh: Vec<_> = (1..=12)
        .map(|s| say("#new", s, &format!("fresh {s}")))
        .collect();
    let mut more: Vec<_> = (41..=104)
        .map(|s| say("#a", s, &format!("more {s}")))
        .collect();
    more[40] = say("#a", 7, "more seven");
    assert_eq!(
        store.write_group(&[batch(2, fresh.clone()), batch(3, more)]),
        Err(WriteError::Duplicate {
            room: room("#a"),
            seq: Seq(7)
        })
    );
    assert_eq!(all_events(&store, "#a"), a);
    assert!(all_events(&store, "#new").is_empty());
    assert!(search(&store, "more", None).is_empty());
    // Nothing the failed group learnt (the room's id, event ids) is used again.
    store.write(&batch(4, fresh.clone())).unwrap();
    let next: Vec<_> = (41..=80)
        .map(|s| say("#a", s, &format!("next {s}")))
        .collect();
    store.write(&batch(5, next.clone())).unwrap();
    assert_eq!(all_events(&store, "#new"), fresh);
    assert_eq!(all_events(&store, "#a"), [a, next].concat());
    assert_eq!(search(&store, "fresh", Some("#new")).len(), 12);
    assert_eq!(search(&store, "next", Some("#a")).len(), 40);
}

#[test]
fn in_a_group_a_sessions_last_id_is_written_once_with_the_same_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let record = |k: u8, last: u64| SessionRecord {
        token: TokenHash::of(&ResumeToken([k; 32])),
        token_id: u64::from(k),
        nick: nick(&format!("user{k}")),
        rooms: vec![],
        last_id: MsgId(last),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        device_key: None,
        updated: Millis(T0),
    };
    let last_id = |k: u8, id: u64| Write::SessionLastId {
        token: TokenHash::of(&ResumeToken([k; 32])),
        last_id: MsgId(id),
        updated: Millis(T0 + id),
    };
    let batch = |id: u64, writes: Vec<Write>| Batch {
        id: BatchId(id),
        writes,
    };
    let mut store = open(dir.path());
    store
        .write(&batch(
            1,
            vec![
                Write::Session(record(1, 0)),
                Write::Session(record(2, 0)),
                Write::Session(record(3, 0)),
            ],
        ))
        .unwrap();
    // One group: user1's id moves three times; user2's session ends between two moves; user3's
    // record is written again after its only move.
    store
        .write_group(&[
            batch(2, vec![last_id(1, 5), last_id(2, 5), last_id(3, 5)]),
            batch(
                3,
                vec![
                    last_id(1, 6),
                    Write::EndSession(TokenHash::of(&ResumeToken([2; 32]))),
                ],
            ),
            batch(
                4,
                vec![last_id(1, 7), last_id(2, 7), Write::Session(record(3, 3))],
            ),
        ])
        .unwrap();
    let mut sessions = load_all(&store, 0).sessions;
    sessions.sort_by_key(|s| s.token_id);
    let got: Vec<(u64, u64, u64)> = sessions
        .iter()
        .map(|s| (s.token_id, s.last_id.0, s.updated.0 - T0))
        .collect();
    assert_eq!(got, vec![(1, 7, 7), (3, 3, 0)]);
}

/// Rows of `session_ids` (last ids not folded into `sessions` yet), read beside the writer.
fn unfolded_rows(dir: &std::path::Path) -> i64 {
    rusqlite::Connection::open(dir.join("natter.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM session_ids", [], |r| r.get(0))
        .unwrap()
}

fn session_of(k: u8, last: u64, updated: u64) -> SessionRecord {
    SessionRecord {
        token: TokenHash::of(&ResumeToken([k; 32])),
        token_id: u64::from(k),
        nick: nick(&format!("user{k}")),
        rooms: vec![],
        last_id: MsgId(last),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        device_key: None,
        updated: Millis(updated),
    }
}

fn last_id_of(k: u8, id: u64, updated: u64) -> Write {
    Write::SessionLastId {
        token: TokenHash::of(&ResumeToken([k; 32])),
        last_id: MsgId(id),
        updated: Millis(updated),
    }
}

/// (token id, last id, updated - T0) of every session loaded that was updated at `since` or later.
fn last_ids(store: &SqliteStore, since: u64) -> Vec<(u64, u64, u64)> {
    let mut got: Vec<(u64, u64, u64)> = store
        .reader()
        .unwrap()
        .load(&LoadOptions {
            recent: 0,
            recent_rooms: RecentRooms::All,
            sessions_since: Millis(since),
        })
        .unwrap()
        .sessions
        .iter()
        .map(|s| (s.token_id, s.last_id.0, s.updated.0 - T0))
        .collect();
    got.sort_unstable();
    got
}

#[test]
fn last_ids_not_folded_yet_are_loaded_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![
                Write::Session(session_of(1, 0, T0)),
                Write::Session(session_of(2, 0, T0)),
            ],
        })
        .unwrap();
    store
        .write_group(&[
            Batch {
                id: BatchId(2),
                writes: vec![
                    Write::Event(say("#a", 1, "one")),
                    last_id_of(1, 5, T0 + 5),
                    last_id_of(2, 6, T0 + 6),
                ],
            },
            Batch {
                id: BatchId(3),
                writes: vec![Write::Event(say("#a", 2, "two")), last_id_of(1, 9, T0 + 9)],
            },
        ])
        .unwrap();
    store
        .write(&Batch {
            id: BatchId(4),
            writes: vec![last_id_of(2, 10, T0 + 10)],
        })
        .unwrap();
    // Written as rows of their own, not into `sessions`, and loaded all the same, their times
    // counting for which sessions are recent.
    assert!(unfolded_rows(dir.path()) > 0);
    assert_eq!(last_ids(&store, 0), vec![(1, 9, 9), (2, 10, 10)]);
    assert_eq!(last_ids(&store, T0 + 10), vec![(2, 10, 10)]);
    // A crash: nothing folded them. The next open does.
    drop(store);
    assert!(unfolded_rows(dir.path()) > 0);
    let mut store = open(dir.path());
    assert_eq!(unfolded_rows(dir.path()), 0);
    assert_eq!(last_ids(&store, 0), vec![(1, 9, 9), (2, 10, 10)]);
    // Past FOLD_IDS_ROWS rows the writer says a fold is due; folding changes nothing loaded.
    let rows = natter_store::sqlite::FOLD_IDS_ROWS;
    for i in 0..rows {
        assert!(!store.fold_due());
        store
            .write(&Batch {
                id: BatchId(10 + i),
                writes: vec![last_id_of(1, 100 + i, T0 + 100 + i)],
            })
            .unwrap();
    }
    assert!(store.fold_due());
    let before = last_ids(&store, 0);
    assert_eq!(before, vec![(1, 99 + rows, 99 + rows), (2, 10, 10)]);
    store.fold_session_ids().unwrap();
    assert!(!store.fold_due());
    assert_eq!(unfolded_rows(dir.path()), 0);
    assert_eq!(last_ids(&store, 0), before);
}

#[test]
fn session_writes_after_last_ids_not_folded_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .write(&Batch {
            id: BatchId(1),
            writes: (1..=3)
                .map(|k| Write::Session(session_of(k, 0, T0)))
                .collect(),
        })
        .unwrap();
    // Moved in earlier commits, not folded.
    store
        .write(&Batch {
            id: BatchId(2),
            writes: vec![last_id_of(1, 50, T0 + 50), last_id_of(3, 8, T0 + 8)],
        })
        .unwrap();
    assert!(unfolded_rows(dir.path()) > 0);
    // Ending the sessions older than T0 + 30 keeps user1 (moved at T0 + 50) and ends user2
    // and user3; user1's whole record written afterwards wins over its earlier last id.
    store
        .write(&Batch {
            id: BatchId(3),
            writes: vec![
                Write::EndSessionsBefore(Millis(T0 + 30)),
                Write::Session(session_of(1, 40, T0 + 40)),
            ],
        })
        .unwrap();
    assert_eq!(unfolded_rows(dir.path()), 0);
    assert_eq!(last_ids(&store, 0), vec![(1, 40, 40)]);
}

#[test]
fn a_schema_5_store_is_upgraded_and_its_sessions_move_on() {
    let dir = tempfile::tempdir().unwrap();
    let token = TokenHash::of(&ResumeToken([1; 32]));
    made_by_schema(dir.path(), 5, "")
        .execute(
            "INSERT INTO sessions VALUES (?1, 1, 'user1', '', 5, ?2)",
            rusqlite::params![&token.0[..], T0 as i64],
        )
        .unwrap();
    let mut store = upgraded(dir.path());
    assert_eq!(last_ids(&store, 0), vec![(1, 5, 0)]);
    store
        .write(&Batch {
            id: BatchId(1),
            writes: vec![last_id_of(1, 6, T0 + 6)],
        })
        .unwrap();
    assert_eq!(last_ids(&store, 0), vec![(1, 6, 6)]);
}

#[test]
fn unspaced_scripts_and_emoji_are_searchable() {
    // A run of Chinese, Japanese or Korean characters is not one word (`テキスト` is found in
    // `日本語テキスト`), and an emoji is a word (it was dropped until the forty-first session).
    // Each way a line reaches the index: handed over by its commit (held), and read back from
    // `events` (a rebuild: the index file removed before the next open).
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        "日本語テキストです",
        "great🎉party tonight",
        "ok 👍🏽 done",
        "한국어를 배워요",
        "plain great words",
        "中文搜索测试",
        "rare 𠀀𠀁𠀂 ideographs",
    ];
    // A private-use character typed as a font's icon, the one that stands in for 🎉 in the
    // index: found as itself, never as the emoji.
    let icon = natter_core::search::searchable("🎉").trim().to_owned();
    let icon_line = format!("my {icon} icon");
    let lines: Vec<&str> = lines.into_iter().chain([icon_line.as_str()]).collect();
    {
        let mut store = open(dir.path());
        store
            .write(&batch(
                1,
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| say("#x", i as u64 + 1, l)),
            ))
            .unwrap();
        let check = |store: &SqliteStore| {
            let x = |seqs: &[u64]| -> Vec<(String, u64)> {
                seqs.iter().map(|s| ("#x".to_owned(), *s)).collect()
            };
            assert_eq!(search(store, "テキスト", None), x(&[1]));
            assert_eq!(search(store, "本語", None), x(&[1]));
            assert_eq!(search(store, "本日", None), x(&[]), "characters in order");
            assert_eq!(search(store, "🎉", None), x(&[2]));
            assert_eq!(search(store, "great", None), x(&[5, 2]));
            assert_eq!(search(store, "🎉 tonight", None), x(&[2]));
            assert_eq!(search(store, "🎈", None), x(&[]));
            assert_eq!(search(store, "👍", None), x(&[3]), "with its skin tone");
            assert_eq!(search(store, "한국어", None), x(&[4]));
            assert_eq!(search(store, "搜索", None), x(&[6]));
            // Ideographs beyond the Basic Multilingual Plane (CJK extension B) are letters.
            assert_eq!(search(store, "𠀁", None), x(&[7]));
            assert_eq!(search(store, "𠀁𠀂", None), x(&[7]));
            assert_eq!(search(store, "𠀂𠀁", None), x(&[]));
            assert_eq!(search(store, &icon, None), x(&[8]));
        };
        check(&store);
        drop(store);
        std::fs::remove_file(dir.path().join(natter_store::sqlite::SEARCH_FILE)).unwrap();
        // Rebuilt in the background at open, and finished by the close.
        drop(open(dir.path()));
        let store = open(dir.path());
        check(&store);
    }
}
