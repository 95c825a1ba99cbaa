//! Property test: random sequences of chat, joins, dropped connections, stalled readers and time
//! passing, thrown at one Hub with three Sessions and a text user. After every run:
//! - no member receives a room event (room, seq) twice;
//! - a member receives every event of a room it is in, from the first it saw to the last, or a gap
//!   marker covering each one it did not get;
//! - what the hub has handed out for a connection and not seen written stays under its limit;
//! - every message a session typed is settled exactly once, as delivered.

mod harness;

use harness::{Net, seen_once_or_in_a_gap, small_queues};
use natter_core::Millis;
use natter_core::hub::Config;
use natter_core::limits::OUTBOUND_HARD_MAX_BYTES;
use natter_core::session::Event;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Op {
    Say(usize),
    TextSay,
    Join(usize, usize),
    Cut(usize),
    Stall(usize, bool),
    Advance(u64),
}

const ROOMS: [&str; 2] = ["#lobby", "#rust"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize).prop_map(Op::Say),
        2 => Just(Op::TextSay),
        1 => (0..3usize, 0..2usize).prop_map(|(i, r)| Op::Join(i, r)),
        1 => (0..3usize).prop_map(Op::Cut),
        2 => (0..3usize, any::<bool>()).prop_map(|(i, s)| Op::Stall(i, s)),
        2 => (0..3_000u64).prop_map(Op::Advance),
        // Moments apart, so that fan-outs come in quick succession (and, paced, take turns).
        2 => (1..30u64).prop_map(Op::Advance),
    ]
}

fn check_bounded(net: &Net) -> Result<(), TestCaseError> {
    for c in &net.clients {
        let held: usize = c.inbox.iter().map(|b| b.len()).sum();
        prop_assert!(held <= OUTBOUND_HARD_MAX_BYTES, "{held} bytes held");
    }
    Ok(())
}

/// Runs `ops` against a hub with `config` and checks every property above.
fn check_run(ops: Vec<Op>, config: Config) -> Result<(), TestCaseError> {
    let mut net = Net::new(config);
    let s: Vec<usize> = ["ann", "ben", "cat"]
        .iter()
        .map(|n| net.add_session(n, &["#lobby"]))
        .collect();
    let t = net.add_text();
    let mut counter = 0;
    for op in ops {
        match op {
            Op::Say(i) => {
                counter += 1;
                net.type_line(s[i], &format!("m{counter}"));
            }
            Op::TextSay => {
                counter += 1;
                net.type_line(t, &format!("t{counter}"));
            }
            Op::Join(i, r) => net.type_line(s[i], &format!("/join {}", ROOMS[r])),
            Op::Cut(i) => net.cut(s[i]),
            Op::Stall(i, on) => net.set_stalled(s[i], on),
            Op::Advance(ms) => net.advance(Millis(ms)),
        }
        check_bounded(&net)?;
    }
    for &i in &s {
        net.set_stalled(i, false);
    }
    net.advance(Millis(30_000));

    for &i in &s {
        // Every message typed settles exactly once, and here (nobody quit) as delivered.
        let mut queued = BTreeSet::new();
        let mut settled = BTreeSet::new();
        for e in net.events(i) {
            match e {
                Event::Queued { id, .. } => prop_assert!(queued.insert(*id)),
                Event::Settled { id, delivered } => {
                    prop_assert!(*delivered, "client {} message {:?} refused", i, id);
                    prop_assert!(settled.insert(*id), "client {} settled {:?} twice", i, id);
                }
                _ => {}
            }
        }
        prop_assert_eq!(&queued, &settled, "client {} left messages unsettled", i);

        seen_once_or_in_a_gap(&net, i, |_, lo, hi| (lo..=hi).collect())
            .map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn members_see_every_event_once_or_a_gap(ops in proptest::collection::vec(op(), 1..60)) {
        check_run(ops, small_queues())?;
    }

    /// The same with every fan-out to two or more connections paced (see
    /// `natter_core::limits::FANOUT_PACE`): turns hold output back, and nothing may be lost,
    /// doubled or left unsettled for it.
    #[test]
    fn members_see_every_event_once_or_a_gap_when_fan_outs_take_turns(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let config = Config { paced_fanout: 2, fanout_pace: Millis(24), ..small_queues() };
        check_run(ops, config)?;
    }
}
