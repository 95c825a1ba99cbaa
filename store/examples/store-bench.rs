//! `store-bench`: figures for natter's durable store (issue 16), printed, not asserted.
//!
//! 1. Sustained writes into one room through [`SqliteHandle`] (batches as the hub would hand
//!    them out, group commit on the writer thread), on an empty store.
//! 2. A store of `--messages` chat lines (10 million by default) over `--rooms` rooms, filled
//!    with big transactions (reused if the directory already holds that many).
//! 3. On it: open + load time (what a server does before it listens), history pages, `/search`
//!    latency p50/p99/max for words drawn like a person's (common and rare, some with a room),
//!    sustained writes again, and disk bytes per message.
//!
//! `cargo run --release -p natter-store --example store-bench -- --help`

use anyhow::{Context, bail};
use clap::Parser;
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use natter_store::{
    Batch, BatchId, Config, HistoryQuery, LoadOptions, RecentRooms, Report, SearchQuery,
    SqliteHandle, SqliteStore, Store, SubmitError, Write,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "store-bench", about = "Figures for natter's durable store")]
struct Cli {
    /// Where the big store lives (kept between runs: a store already holding the messages is
    /// reused).
    #[arg(long, default_value = "target/store-bench")]
    dir: PathBuf,
    /// Chat lines in the big store.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Rooms they are spread over (Zipf-like: a few busy rooms, many quiet ones).
    #[arg(long, default_value_t = 200)]
    rooms: u64,
    /// Messages for each sustained-write measurement.
    #[arg(long, default_value_t = 1_000_000)]
    write_messages: u64,
    /// Messages per submitted batch in the sustained-write measurements.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Searches to time.
    #[arg(long, default_value_t = 2000)]
    searches: usize,
    /// Events per room that `load` returns (the hub's history ring).
    #[arg(long, default_value_t = 256)]
    recent: usize,
    /// Fill a fresh big store even if one is there.
    #[arg(long)]
    refill: bool,
}

/// Words people use, by rank: word `k` is drawn with weight 1/(k+1).
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(n: usize) -> Vocabulary {
        const SYLLABLES: [&str; 24] = [
            "ka", "to", "ri", "mu", "ne", "sa", "lo", "vi", "de", "po", "fi", "gu", "ha", "je",
            "ly", "qu", "ro", "ba", "ze", "wi", "xo", "co", "tu", "me",
        ];
        let words: Vec<String> = (0..n)
            .map(|k| {
                let mut k = k + 1;
                let mut w = String::new();
                while k > 0 {
                    w.push_str(SYLLABLES[k % SYLLABLES.len()]);
                    k /= SYLLABLES.len();
                }
                w
            })
            .collect();
        let mut sum = 0.0;
        let cumulative = (0..n)
            .map(|k| {
                sum += 1.0 / (k as f64 + 1.0);
                sum
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    fn rank(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = unit(rng) * total;
        self.cumulative
            .partition_point(|c| *c < x)
            .min(self.words.len() - 1)
    }

    fn word(&self, rng: &mut ChaCha8Rng) -> &str {
        &self.words[self.rank(rng)]
    }

    /// A chat line of 6 to 20 words.
    fn line(&self, rng: &mut ChaCha8Rng) -> String {
        let n = 6 + (rng.next_u32() % 15) as usize;
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s
    }
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn room(i: u64) -> RoomName {
    RoomName::new(&format!("#room{i}")).expect("a valid room name")
}

fn say(room: RoomName, seq: u64, nick: u64, text: String, at: u64) -> RoomEvent {
    RoomEvent {
        room,
        seq: Seq(seq),
        at: Millis(at),
        from: Nick::new(&format!("user{nick}")).expect("a valid nick"),
        kind: EventKind::Say {
            id: MsgId(seq),
            text: Text::new(&text).expect("a valid text"),
        },
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Drops the store's files from the operating system's page cache, so the next open reads from
/// the disk as after a reboot (Linux; elsewhere a no-op).
fn evict(dir: &Path) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    for name in [
        natter_store::DB_FILE,
        "natter.db-wal",
        natter_store::sqlite::SEARCH_FILE,
        "search.db-wal",
    ] {
        let Ok(f) = std::fs::File::open(dir.join(name)) else {
            continue;
        };
        nix::fcntl::posix_fadvise(
            &f,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )?;
    }
    Ok(())
}

/// Opens the store and loads it as a server starting up: the handle, its reports, the load,
/// and the time open took and open + load took.
async fn open_and_load(
    dir: &Path,
    recent: usize,
) -> anyhow::Result<(
    SqliteHandle,
    natter_store::Reports,
    natter_store::Loaded,
    Duration,
    Duration,
)> {
    let t0 = Instant::now();
    let (store, reports) = SqliteHandle::open(&Config::new(dir))?;
    let opened = t0.elapsed();
    let loaded = store
        .load(LoadOptions {
            recent,
            recent_rooms: RecentRooms::All,
            sessions_since: Millis(0),
        })
        .await?;
    Ok((store, reports, loaded, opened, t0.elapsed()))
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for f in std::fs::read_dir(dir)? {
        let f = f?;
        // The events and the search index's file beside them.
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with("natter.db") || name.starts_with("search.db") {
            total += f.metadata()?.len();
        }
    }
    Ok(total)
}

/// Writes `n` messages into one room through the threaded store, `batch` per submitted batch,
/// as fast as the store takes them; messages per second from first submit to last report.
async fn sustained_writes(
    store: &SqliteHandle,
    reports: &mut natter_store::Reports,
    vocab: &Vocabulary,
    n: u64,
    batch: u64,
    room_name: &RoomName,
    first_seq: u64,
) -> anyhow::Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Texts made before the clock starts: the hub hands the store finished events.
    let texts: Vec<String> = (0..4096).map(|_| vocab.line(&mut rng)).collect();
    let batches = n.div_ceil(batch);
    let make = |b: u64| Batch {
        id: BatchId(b),
        writes: (b * batch..((b + 1) * batch).min(n))
            .map(|i| {
                Write::Event(say(
                    room_name.clone(),
                    first_seq + i,
                    i % 50,
                    texts[i as usize % texts.len()].clone(),
                    1_700_000_000_000 + i,
                ))
            })
            .collect(),
    };
    let t0 = Instant::now();
    let mut next = 0;
    let mut pending = None;
    let mut done = false;
    while !done {
        while next < batches || pending.is_some() {
            let b = pending.take().unwrap_or_else(|| {
                next += 1;
                make(next - 1)
            });
            match store.try_submit(b) {
                Ok(()) => {}
                Err(SubmitError::Full(b)) => {
                    pending = Some(b);
                    break;
                }
                Err(SubmitError::Closed(_)) => bail!("store closed"),
            }
        }
        match reports.recv().await {
            Some(Report::Durable { upto }) => done = upto.0 + 1 == batches,
            Some(Report::Failed { batch, error }) => bail!("{batch} failed: {error}"),
            Some(Report::Stale { accounts }) => bail!("no account written: {accounts:?}"),
            None => bail!("store closed"),
        }
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// Fills `dir` with `n` chat lines over `rooms` rooms, in transactions of 50,000.
fn fill(dir: &Path, n: u64, rooms: u64, vocab: &Vocabulary) -> anyhow::Result<()> {
    let mut store = SqliteStore::open(&Config::new(dir))?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // Room weights 1/(k+1): #room0 is the busiest.
    let room_vocab = Vocabulary::new(rooms as usize);
    let mut seqs = vec![0u64; rooms as usize];
    let t0 = Instant::now();
    let chunk = 50_000;
    let mut written = 0;
    let mut id = 0;
    while written < n {
        let k = chunk.min(n - written);
        let writes = (0..k)
            .map(|i| {
                let r = room_vocab.rank(&mut rng);
                seqs[r] += 1;
                Write::Event(say(
                    room(r as u64),
                    seqs[r],
                    u64::from(rng.next_u32() % 1000),
                    vocab.line(&mut rng),
                    1_700_000_000_000 + (written + i) * 100,
                ))
            })
            .collect();
        store.write(&Batch {
            id: BatchId(id),
            writes,
        })?;
        id += 1;
        written += k;
        if written % 1_000_000 == 0 || written == n {
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "  filled {written} in {s:.0} s ({:.0} messages/s)",
                written as f64 / s
            );
        }
    }
    Ok(())
}

struct Searches {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
    hits: usize,
    slowest: (Duration, String),
}

/// CPU time this thread has used (Linux; elsewhere zero).
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
        return Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32);
    }
    Duration::ZERO
}

/// Where searches run: through the handle (its search thread), or on a reader in this thread
/// (so its CPU time can be measured too).
enum On<'a> {
    Handle(&'a SqliteHandle),
    Reader(&'a mut natter_store::Reader),
}

/// `n` searches of 1 to 3 words drawn like the text's, a quarter of them in one room; their
/// times sorted.
async fn searches(
    mut on: On<'_>,
    vocab: &Vocabulary,
    rooms: &[RoomName],
    n: usize,
    seed: u64,
) -> anyhow::Result<Searches> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = Searches {
        wall: Vec::new(),
        cpu: Vec::new(),
        hits: 0,
        slowest: (Duration::ZERO, String::new()),
    };
    for _ in 0..n {
        let k = match rng.next_u32() % 10 {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let words: Vec<&str> = (0..k).map(|_| vocab.word(&mut rng)).collect();
        let words = words.join(" ");
        let room =
            (rng.next_u32() % 4 == 0).then(|| rooms[rng.next_u32() as usize % rooms.len()].clone());
        let label = format!("{words:?} in {room:?}");
        let q = SearchQuery {
            words,
            rooms: room.into_iter().collect(),
            limit: 50,
        };
        let (t, c) = (Instant::now(), thread_cpu());
        let found = match &mut on {
            On::Handle(h) => h.search(q).await?,
            On::Reader(r) => r.search(&q)?,
        };
        let (took, cpu) = (t.elapsed(), thread_cpu().saturating_sub(c));
        s.hits += found.len();
        if took > s.slowest.0 {
            s.slowest = (took, label);
        }
        s.wall.push(took);
        s.cpu.push(cpu);
    }
    s.wall.sort();
    s.cpu.sort();
    Ok(s)
}

fn figures(times: &[Duration]) -> String {
    format!(
        "p50 {} p99 {} max {}",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        ms(times.last().copied().unwrap_or_default())
    )
}

fn stored_messages(dir: &Path) -> u64 {
    if !dir.join(natter_store::DB_FILE).exists() {
        return 0;
    }
    let Ok(store) = SqliteStore::open(&Config::new(dir)) else {
        return 0;
    };
    let Ok(loaded) = store.reader().and_then(|mut r| {
        r.load(&LoadOptions {
            recent: 0,
            recent_rooms: RecentRooms::All,
            sessions_since: Millis(0),
        })
        .map_err(|e| natter_store::OpenError::Sqlite {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        })
    }) else {
        return 0;
    };
    loaded.rooms.iter().map(|r| r.last_seq.0).sum()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let vocab = Vocabulary::new(50_000);
    println!("natter-store bench: SQLite (bundled), WAL, synchronous=normal (the default)\n");

    // 1. Sustained writes into one room, empty store.
    let fresh = tempfile::tempdir_in(cli.dir.parent().unwrap_or(Path::new(".")))
        .or_else(|_| tempfile::tempdir())?;
    {
        let (store, mut reports) = SqliteHandle::open(&Config::new(fresh.path()))?;
        let rate = sustained_writes(
            &store,
            &mut reports,
            &vocab,
            cli.write_messages,
            cli.batch,
            &RoomName::new("#writes")?,
            1,
        )
        .await?;
        store.close().await;
        println!(
            "sustained writes, one room, empty store: {rate:.0} messages/s ({} messages in batches of {})",
            cli.write_messages, cli.batch
        );
    }
    drop(fresh);

    // 2. The big store.
    if cli.refill && cli.dir.exists() {
        std::fs::remove_dir_all(&cli.dir).context("removing the old store")?;
    }
    let have = stored_messages(&cli.dir);
    if have < cli.messages {
        if have > 0 {
            std::fs::remove_dir_all(&cli.dir).context("removing a partial store")?;
        }
        eprintln!(
            "filling {} with {} messages...",
            cli.dir.display(),
            cli.messages
        );
        let t0 = Instant::now();
        fill(&cli.dir, cli.messages, cli.rooms, &vocab)?;
        println!(
            "fill: {} messages in {:.0} s ({:.0} messages/s, transactions of 50,000)",
            cli.messages,
            t0.elapsed().as_secs_f64(),
            cli.messages as f64 / t0.elapsed().as_secs_f64()
        );
    } else {
        println!("reusing {} ({have} messages)", cli.dir.display());
    }
    {
        // Checkpointed so the file size is the store's, not a log's.
        let store = SqliteStore::open(&Config::new(&cli.dir))?;
        drop(store);
    }
    let bytes = dir_bytes(&cli.dir)?;
    let stored = stored_messages(&cli.dir);
    println!(
        "disk: {:.2} GiB for {stored} messages = {:.0} bytes per message (average text {:.0} bytes)",
        bytes as f64 / (1u64 << 30) as f64,
        bytes as f64 / stored as f64,
        {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            (0..10_000)
                .map(|_| vocab.line(&mut rng).len())
                .sum::<usize>() as f64
                / 10_000.0
        }
    );

    // 3. Open + load, as a server starting up: after a reboot (nothing of the file in the page
    // cache), and after a restart (the file cached, as after `kill -9` and a restart).
    evict(&cli.dir)?;
    let (store, reports, _, opened, total) = open_and_load(&cli.dir, cli.recent).await?;
    store.close().await;
    drop(reports);
    println!(
        "open + load, file not cached: {} (open {})",
        ms(total),
        ms(opened)
    );
    let (store, mut reports, loaded, opened, total) = open_and_load(&cli.dir, cli.recent).await?;
    let events: usize = loaded.rooms.iter().map(|r| r.recent.len()).sum();
    println!(
        "open + load, file cached: {} (open {}; load: {} rooms with their {} newest events, {events} events)",
        ms(total),
        ms(opened),
        loaded.rooms.len(),
        cli.recent
    );

    // History pages: 50 events before a random point of a random room.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut times = Vec::new();
    for _ in 0..1000 {
        let r = &loaded.rooms[rng.next_u32() as usize % loaded.rooms.len()];
        let before = 1 + rng.next_u64() % r.last_seq.0.max(1);
        let t = Instant::now();
        store
            .history(HistoryQuery {
                room: r.name.clone(),
                before: Seq(before),
                limit: 50,
            })
            .await?;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "history page of 50: p50 {} p99 {} max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times.last().copied().unwrap_or_default())
    );

    // Searches: a first pass right after the cold start (the index's pages come off the disk),
    // then a second with other words, as a server that has run a while.
    let rooms: Vec<RoomName> = loaded.rooms.iter().map(|r| r.name.clone()).collect();
    let first = searches(On::Handle(&store), &vocab, &rooms, cli.searches, 4).await?;
    println!(
        "search, right after the cold start ({} queries, {:.1} results each): {} (slowest: {})",
        cli.searches,
        first.hits as f64 / cli.searches as f64,
        figures(&first.wall),
        first.slowest.1
    );
    // A server that has run a while has its index in memory: read the file once, then search
    // again with other words, on a reader in this thread to see its CPU time as well.
    let t = Instant::now();
    let read = std::io::copy(
        &mut std::fs::File::open(cli.dir.join(natter_store::DB_FILE))?,
        &mut std::io::sink(),
    )?;
    println!(
        "(read the file once: {:.2} GiB in {:.1} s)",
        read as f64 / (1u64 << 30) as f64,
        t.elapsed().as_secs_f64()
    );
    let mut reader = natter_store::Reader::open(&Config::new(&cli.dir))?;
    let warm = searches(On::Reader(&mut reader), &vocab, &rooms, cli.searches, 5).await?;
    println!(
        "search, file cached ({} queries, {:.1} results each): wall {}; CPU {} (slowest: {})",
        cli.searches,
        warm.hits as f64 / cli.searches as f64,
        figures(&warm.wall),
        figures(&warm.cpu),
        warm.slowest.1
    );

    // Sustained writes again, into the busiest room of the big store.
    let busiest = loaded
        .rooms
        .iter()
        .max_by_key(|r| r.last_seq)
        .context("no rooms")?;
    let rate = sustained_writes(
        &store,
        &mut reports,
        &vocab,
        cli.write_messages,
        cli.batch,
        &busiest.name,
        busiest.last_seq.0 + 1,
    )
    .await?;
    println!(
        "sustained writes, one room, big store: {rate:.0} messages/s ({} messages in batches of {})",
        cli.write_messages, cli.batch
    );
    store.close().await;
    Ok(())
}
