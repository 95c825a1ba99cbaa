//! `commit-cost`: the writer's CPU per message on natter-bench's fan-out pattern, without the
//! network: `--senders` resume sessions in one room, each group commit holding `--group`
//! says (64-byte bench texts, one unique word each) and the last message id of every sender in
//! it, written with [`SqliteStore`] on this thread. Prints the thread's CPU time per message
//! (the search index's catch-up included), and the bytes written per message.
//!
//! `cargo run --release -p natter-store --example commit-cost -- --group 50,200`

use clap::Parser;
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use natter_store::{Batch, BatchId, Config, SessionRecord, SqliteStore, TokenHash, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "commit-cost", about = "The store writer's CPU per message")]
struct Cli {
    /// Messages per commit (comma-separated list: one measurement each).
    #[arg(long, value_delimiter = ',', default_value = "20,50,200")]
    group: Vec<usize>,
    /// Messages per measurement.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    /// Senders (resume sessions) taking turns.
    #[arg(long, default_value_t = 50)]
    senders: usize,
    /// Index chat lines in every commit, as a store opened alone does (by default they are
    /// indexed behind the commits, as natter-server's writer does).
    #[arg(long)]
    index_in_commit: bool,
}

/// CPU time this thread has used (Linux; elsewhere zero).
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
        return Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32);
    }
    Duration::ZERO
}

/// Bytes this process has written (Linux: `wchar` of `/proc/self/io`; elsewhere zero).
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar: ").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

fn nick(i: usize) -> Nick {
    Nick::new(&format!("bench{i}")).expect("a valid nick")
}

fn token(i: usize) -> TokenHash {
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(
        &(i as u64 + 1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .to_le_bytes(),
    );
    TokenHash(t)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let room = RoomName::new("#bench").expect("a valid room");
    for &group in &cli.group {
        let dir = tempfile::tempdir()?;
        let mut store = SqliteStore::open(&Config::new(dir.path()))?;
        store.defer_search(!cli.index_in_commit)?;
        let mut id = 0u64;
        let sessions = (0..cli.senders)
            .map(|i| {
                Write::Session(SessionRecord {
                    token: token(i),
                    token_id: i as u64,
                    nick: nick(i),
                    rooms: vec![room.clone()],
                    last_id: MsgId(0),
                    took_zero: false,
                    prev: None,
                    refused: Vec::new(),
                    put_out: Vec::new(),
                    device_key: None,
                    updated: Millis(1),
                })
            })
            .collect();
        store.write(&Batch {
            id: BatchId(id),
            writes: sessions,
        })?;
        let (bytes, wall) = (written(), Instant::now());
        // Only the store's time: building the batches is the hub's.
        let mut in_window = Duration::ZERO;
        let mut commits = Duration::ZERO;
        let (mut commit_walls, mut step_walls) = (Vec::new(), Vec::new());
        let mut seq = 0u64;
        while (seq as usize) < cli.messages {
            id += 1;
            let mut writes = Vec::with_capacity(group * 2);
            let mut senders = std::collections::BTreeSet::new();
            for _ in 0..group {
                seq += 1;
                let s = seq as usize % cli.senders;
                senders.insert(s);
                let mut text = format!("NB{:08x}{:08x}{:016x}", s, seq, seq * 7919);
                text.extend(std::iter::repeat_n('.', 30));
                writes.push(Write::Event(RoomEvent {
                    room: room.clone(),
                    seq: Seq(seq),
                    at: Millis(seq),
                    from: nick(s),
                    kind: EventKind::Say {
                        id: MsgId(seq),
                        text: Text::new(&text).expect("a valid text"),
                    },
                }));
            }
            for s in senders {
                writes.push(Write::SessionLastId {
                    token: token(s),
                    last_id: MsgId(seq),
                    updated: Millis(seq),
                });
            }
            let batch = Batch {
                id: BatchId(id),
                writes,
            };
            let (cpu, began) = (thread_cpu(), Instant::now());
            store.write(&batch)?;
            if store.fold_due() {
                store.fold_session_ids()?;
            }
            let committed = thread_cpu();
            commits += committed - cpu;
            commit_walls.push(began.elapsed());
            if store.index_due() {
                store.catch_up_search()?;
            }
            // What the next batch waits for when the index steps on the writer's thread.
            step_walls.push(began.elapsed());
            in_window += thread_cpu() - cpu;
        }
        let (caught_up, cpu) = (Instant::now(), thread_cpu());
        store.catch_up_search()?;
        let cpu = in_window + (thread_cpu() - cpu);
        // The search index's steps (a thread of their own in a server).
        let index = cpu.saturating_sub(commits);
        let (bytes, wall) = (written() - bytes, wall.elapsed());
        let n = seq as f64;
        println!(
            "group {group:4}: {:6.2} us CPU/message ({:6.2} while writing; commits {:6.2}, index steps {:6.2}; {:.1} ms catching up the index), {:7.0} bytes written/message, {:8.0} messages/s",
            cpu.as_secs_f64() * 1e6 / n,
            in_window.as_secs_f64() * 1e6 / n,
            commits.as_secs_f64() * 1e6 / n,
            index.as_secs_f64() * 1e6 / n,
            caught_up.elapsed().as_secs_f64() * 1e3,
            bytes as f64 / n,
            n / wall.as_secs_f64(),
        );
        println!(
            "            writer busy per commit (wall): commits alone {}; commits with the index steps between them {}",
            quantiles(&mut commit_walls),
            quantiles(&mut step_walls),
        );
    }
    Ok(())
}

/// p50, p99 and max of `walls`, in milliseconds.
fn quantiles(walls: &mut [Duration]) -> String {
    walls.sort();
    let at = |q: f64| {
        let i = ((walls.len() as f64 - 1.0) * q).round() as usize;
        walls.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}
