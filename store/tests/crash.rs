//! Crash consistency with a real `kill -9`: a child process streams batches into the store
//! through [`SqliteHandle`] and prints every durable report; the parent kills it with SIGKILL
//! mid-stream, reopens the store and checks that every batch reported durable is there exactly
//! once, that no batch is half there, and that a room's seqs and a session's last message id
//! agree with the batches present. Three rounds on the same store, each child going on from
//! what the last one left.
//!
//! Its own `main` (no libtest harness): the child is this same binary run with `--child DIR`.

mod common;

use common::{all_events, nick, open, room, text};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, ResumeToken, Seq};
use natter_store::{
    Batch, BatchId, Config, LoadOptions, RecentRooms, Report, SessionRecord, SqliteHandle, Store,
    SubmitError, TokenHash, Write,
};
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Events of batch `b` in `#crash` (1 to 7, so batches are not all alike).
fn len(b: u64) -> u64 {
    1 + b % 7
}

/// The seq of batch `b`'s first event in `#crash`.
fn start(b: u64) -> u64 {
    1 + (1..b).map(len).sum::<u64>()
}

fn token() -> TokenHash {
    TokenHash::of(&ResumeToken([7; 32]))
}

fn line(b: u64, i: u64) -> String {
    // Long enough that a few hundred batches pass a WAL checkpoint.
    format!("batch {b} event {i} {}", "pad ".repeat(200))
}

/// Batch `b`: its events in `#crash`, one event in `#side` (seq `b`), and the session's last
/// message id set to `b`.
fn make_batch(b: u64) -> Batch {
    let mut writes: Vec<Write> = (0..len(b))
        .map(|i| {
            Write::Event(RoomEvent {
                room: room("#crash"),
                seq: Seq(start(b) + i),
                at: Millis(b),
                from: nick("writer"),
                kind: EventKind::Say {
                    id: MsgId(b),
                    text: text(&line(b, i)),
                },
            })
        })
        .collect();
    writes.push(Write::Event(RoomEvent {
        room: room("#side"),
        seq: Seq(b),
        at: Millis(b),
        from: nick("writer"),
        kind: EventKind::Join,
    }));
    writes.push(Write::Session(SessionRecord {
        token: token(),
        token_id: 0x0102_0304_0506_0708,
        nick: nick("writer"),
        rooms: vec![room("#crash"), room("#side")],
        last_id: MsgId(b),
        took_zero: false,
        prev: None,
        refused: Vec::new(),
        put_out: Vec::new(),
        device_key: None,
        updated: Millis(b),
    }));
    Batch {
        id: BatchId(b),
        writes,
    }
}

/// The child: goes on from the last batch stored, submitting as fast as the store takes them,
/// printing `durable N` for every report, until it is killed.
fn child(dir: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let (store, mut reports) = SqliteHandle::open(&Config::new(dir)).expect("the store opens");
        let loaded = store
            .load(LoadOptions {
                recent: 0,
                recent_rooms: RecentRooms::All,
                sessions_since: Millis(0),
            })
            .await
            .expect("load");
        let side = loaded.rooms.iter().find(|r| r.name == room("#side"));
        let mut next = side.map_or(1, |r| r.last_seq.0 + 1);
        let mut out = std::io::stdout().lock();
        writeln!(out, "start {next}").expect("stdout");
        out.flush().expect("stdout");
        loop {
            loop {
                match store.try_submit(make_batch(next)) {
                    Ok(()) => next += 1,
                    Err(SubmitError::Full(_)) => break,
                    Err(SubmitError::Closed(_)) => return,
                }
            }
            match reports.recv().await {
                Some(Report::Durable { upto }) => {
                    writeln!(out, "durable {}", upto.0).expect("stdout");
                    out.flush().expect("stdout");
                }
                Some(Report::Failed { batch, error }) => panic!("{batch} failed: {error}"),
                Some(Report::Stale { accounts }) => panic!("no account written: {accounts:?}"),
                None => return,
            }
        }
    });
}

/// One round: start a child, let it report `reports` durable lines, kill it with SIGKILL at
/// once, return the highest batch it reported durable.
fn round(exe: &std::path::Path, dir: &std::path::Path, reports: usize) -> u64 {
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut durable = 0;
    let mut seen = 0;
    while seen < reports {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                panic!("child stopped reporting after {seen} reports: {e}");
            }
        };
        if let Some(n) = l.strip_prefix("durable ") {
            durable = n.parse().expect("a batch number");
            seen += 1;
        }
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no goodbye.
    child.kill().expect("kill");
    child.wait().expect("reaped");
    // Whatever the pipe still holds was printed before the kill: it counts too.
    reader.join().expect("the reader thread");
    for l in rx.try_iter() {
        if let Some(n) = l.strip_prefix("durable ") {
            durable = durable.max(n.parse().expect("a batch number"));
        }
    }
    durable
}

/// Checks the store after a kill: the batches present are exactly 1..=B for some B at least
/// `durable`, each whole, each once; returns B.
fn check(dir: &std::path::Path, durable: u64) -> u64 {
    let store = open(dir);
    let side = all_events(&store, "#side");
    let b = side.len() as u64;
    assert!(
        b >= durable,
        "batch {durable} was reported durable, only {b} are stored"
    );
    for (i, e) in side.iter().enumerate() {
        assert_eq!(
            e.seq,
            Seq(i as u64 + 1),
            "#side has every batch once, in order"
        );
    }
    let crash = all_events(&store, "#crash");
    assert_eq!(
        crash.len() as u64,
        start(b + 1) - 1,
        "#crash holds exactly the events of batches 1..={b}: none half there"
    );
    let mut expect = 1;
    for batch in 1..=b {
        for i in 0..len(batch) {
            let e = &crash[expect as usize - 1];
            assert_eq!(e.seq, Seq(expect));
            match &e.kind {
                EventKind::Say { id, text } => {
                    assert_eq!(*id, MsgId(batch));
                    assert_eq!(text.as_str(), line(batch, i));
                }
                other => panic!("{other:?}"),
            }
            expect += 1;
        }
    }
    let loaded = store
        .reader()
        .expect("a reader")
        .load(&LoadOptions {
            recent: 1,
            recent_rooms: RecentRooms::All,
            sessions_since: Millis(0),
        })
        .expect("load");
    let last = |name: &str| {
        loaded
            .rooms
            .iter()
            .find(|r| r.name == room(name))
            .map_or(0, |r| r.last_seq.0)
    };
    assert_eq!(last("#crash"), start(b + 1) - 1);
    assert_eq!(last("#side"), b);
    let session = loaded.sessions.iter().find(|s| s.token == token());
    assert_eq!(
        session.map_or(0, |s| s.last_id.0),
        b,
        "the session moved with its batches"
    );
    b
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(args.get(i + 1).expect("--child DIR"));
        return;
    }
    const NAME: &str = "crash_consistency_under_sigkill";
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    // Like libtest: a name filter that does not match runs nothing.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !NAME.contains(f.as_str())) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.00s\n"
        );
        return;
    }
    println!("\nrunning 1 test");
    let t0 = Instant::now();
    let exe = std::env::current_exe().expect("this test's path");
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut stored = 0;
    for reports in [60, 250, 600] {
        let durable = round(&exe, dir.path(), reports);
        assert!(
            durable > stored,
            "round made progress ({stored} -> {durable})"
        );
        stored = check(dir.path(), durable);
        eprintln!("killed after batch {durable} was reported durable; {stored} batches stored");
    }
    println!("test {NAME} ... ok");
    println!(
        "\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
        t0.elapsed().as_secs_f64()
    );
}
