//! The hub alone on issue 22's big room, in memory: `MEMBERS` binary members in one room, each
//! saying a line in turn (`PER_READ` lines in each read, as a client with that many
//! unacknowledged lines sends them), `PER_CYCLE` lines per cycle, every transmit polled and reported written
//! after each cycle (as natter-server does when it holds big fan-outs, see `PACE` in
//! native-server/src/hub_task.rs). No sockets, no threads: what it measures is the hub's own
//! cost per delivery (the broadcast's walk, the queues, the transmits), which a loaded machine
//! cannot skew the way it skews a whole server's CPU. Run it under `perf stat -e
//! instructions:u,cycles:u`:
//!
//! ```sh
//! cargo build --release -p natter-core --example bigroom_hub
//! perf stat -e instructions:u,cycles:u target/release/examples/bigroom_hub [MEMBERS] [LINES] [PER_CYCLE] [PER_READ]
//! ```

use natter_core::hub::{Config, Hub};
use natter_core::wire::{ClientMsg, MAGIC, PROTOCOL_VERSION, encode_frame};
use natter_core::{ConnId, Millis, MsgId, Nick, RoomName, Text};
use std::net::{IpAddr, Ipv4Addr};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Polls every transmit and reports it written; returns the bytes.
fn pump(hub: &mut Hub, now: Millis) -> usize {
    let mut n = 0;
    while let Some(t) = hub.poll_transmit() {
        let len = t.len();
        n += len;
        hub.handle_written(t.conn, len, now);
    }
    while hub.poll_event().is_some() {}
    n
}

/// This thread's CPU time so far, in clock ticks (utime + stime of /proc/thread-self/stat): the
/// measure, as wall time on a shared machine counts other processes' time too.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis: state is the 3rd field, utime the 14th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum()
}

fn frame(m: &ClientMsg) -> Vec<u8> {
    encode_frame(m).expect("a frame").to_vec()
}

fn main() {
    let members = arg(1, 3000);
    let lines = arg(2, 30_000);
    let per_cycle = arg(3, 2).max(1);
    let per_read = arg(4, 1).clamp(1, per_cycle);
    let mut hub = Hub::new(Config {
        secret_seed: [7; 32],
        max_connections: members + 100,
        flood_burst: 1_000_000,
        flood_queue: 1_000_000,
        history_on_join: 0,
        ..Config::default()
    });
    let room = RoomName::new("#big").expect("a room");
    let mut now = Millis(1_000);
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut conns: Vec<ConnId> = Vec::with_capacity(members);
    for i in 0..members {
        let c = hub.accept(peer, now).expect("accepted");
        hub.handle_bytes(c, &MAGIC, now);
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: Nick::new(&format!("m{i}")).expect("a nick"),
            resume: None,
        };
        hub.handle_bytes(c, &frame(&hello), now);
        hub.handle_bytes(c, &frame(&ClientMsg::Join { room: room.clone() }), now);
        pump(&mut hub, now);
        conns.push(c);
    }
    // Every line's frame made before the clock starts; a fresh id per line from one member
    // (the hub acknowledges a resent id without delivering it).
    let says: Vec<Vec<u8>> = (0..lines)
        .map(|k| {
            frame(&ClientMsg::Say {
                room: room.clone(),
                // Increasing for every sender, whatever the order.
                id: MsgId(k as u64 + 1),
                text: Text::new(&format!(
                    "line {k}, about fifty bytes long, more or less...."
                ))
                .expect("a text"),
            })
        })
        .collect();
    let before = hub.stats().deliveries;
    let started = std::time::Instant::now();
    let ticks = cpu_ticks();
    let mut bytes = 0;
    let mut read = Vec::new();
    for (k, say) in says.iter().enumerate() {
        let i = (k / per_read) % members;
        read.extend_from_slice(say);
        if (k + 1) % per_read == 0 || k + 1 == says.len() {
            hub.handle_bytes(conns[i], &read, now);
            read.clear();
        }
        if (k + 1) % per_cycle == 0 {
            now = now + Millis(4 * per_cycle as u64);
            bytes += pump(&mut hub, now);
        }
    }
    bytes += pump(&mut hub, now);
    let took = started.elapsed();
    // Clock ticks are 10 ms on Linux.
    let cpu_ns = (cpu_ticks() - ticks) as f64 * 1e7;
    let deliveries = hub.stats().deliveries - before;
    println!(
        "members {members} lines {lines} per cycle {per_cycle} per read {per_read}: {deliveries} deliveries, {bytes} bytes, {:.1} ns of CPU per delivery ({:.2} s of CPU, {:.2} s wall)",
        cpu_ns / deliveries.max(1) as f64,
        cpu_ns / 1e9,
        took.as_secs_f64()
    );
}
