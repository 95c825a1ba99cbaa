//! Helpers shared by the store's integration tests: events, batches and stores in temp dirs.
#![allow(dead_code)]

use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use natter_store::sqlite::{MIGRATIONS, SCHEMA_VERSION};
use natter_store::{Batch, BatchId, Config, HistoryQuery, SqliteStore, Write};

pub mod old_store;

/// The time of event `seq` in the tests: one event a second from a fixed day.
pub const T0: u64 = 1_700_000_000_000;

pub fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("a valid room name")
}

pub fn nick(n: &str) -> Nick {
    Nick::new(n).expect("a valid nick")
}

pub fn text(t: &str) -> Text {
    Text::new(t).expect("a valid text")
}

pub fn event(r: &str, seq: u64, from: &str, kind: EventKind) -> RoomEvent {
    RoomEvent {
        room: room(r),
        seq: Seq(seq),
        at: Millis(T0.saturating_add(seq.saturating_mul(1000))),
        from: nick(from),
        kind,
    }
}

pub fn say(r: &str, seq: u64, t: &str) -> RoomEvent {
    event(
        r,
        seq,
        "alice",
        EventKind::Say {
            id: MsgId(seq),
            text: text(t),
        },
    )
}

pub fn batch(id: u64, events: impl IntoIterator<Item = RoomEvent>) -> Batch {
    Batch {
        id: BatchId(id),
        writes: events.into_iter().map(Write::Event).collect(),
    }
}

pub fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(&Config::new(dir)).expect("the store opens")
}

/// Every stored event of `r`, oldest first.
pub fn all_events(store: &SqliteStore, r: &str) -> Vec<RoomEvent> {
    let mut reader = store.reader().expect("a reader");
    let mut out = Vec::new();
    let mut before = Seq(u64::MAX);
    loop {
        let page = reader
            .history(&HistoryQuery {
                room: room(r),
                before,
                limit: 200,
            })
            .expect("history reads");
        let first = page.events.first().map(|e| e.seq);
        let mut events = page.events;
        events.append(&mut out);
        out = events;
        match first {
            Some(seq) if !page.at_start => before = seq,
            _ => return out,
        }
    }
}
