//! Issue 16's promise, end to end without sockets: programs (the CLI's and the page's
//! `Session` and `Chat`) and people on nc chat through a hub with a durable store whose commits
//! come late, sometimes fail (a full disk), and which is killed (`kill -9`) and restarted from
//! what it committed, in any order. Whatever happens:
//!
//! - a message its sender was told is delivered is stored exactly once, and one it was told is
//!   not delivered is not stored;
//! - no message is stored twice, nor any room's seq given to two events (seqs never restart);
//! - nobody is shown an event that is not durable: everything any client saw is in the store,
//!   as it saw it, even when the server was killed right after (a seq whose batch failed is
//!   shown to nobody: the room goes on past it);
//! - every message a program sent settles once, and each member sees each event of a room
//!   once, or is told of a gap where it missed some.
//!
//! With accounts (programs register, sign in, two of them to one account, sign out; accounts
//! always-on or not), besides: a program whose last word was that it is signed in is, after
//! any restart, signed in to that account, which the store has, in the account's stored rooms,
//! and the hub agrees; every read marker a device was told is stored, and the markers a device
//! is told never go back. A kill right after a failed batch, before the next one is stored,
//! is left out, as for seqs (ARCHITECTURE.md, "Store", item 5).

mod harness;

use harness::{Kind, Net, seen_once_or_in_a_gap, small_queues};
use natter_core::hub::Config;
use natter_core::persist::{BatchId, Write};
use natter_core::session::{About, Event};
use natter_core::wire::{ErrorKind, EventKind};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
enum Op {
    Say(usize),
    TextSay,
    Join(usize, usize),
    Cut(usize),
    Stall(usize, bool),
    Advance(u64),
    /// The store commits this many of the batches waiting.
    Commit(usize),
    /// The store fails the oldest batch waiting.
    Fail,
    /// `kill -9`, and a restart from what is committed.
    Crash,
    /// Program `i` registers the nick it has (`/register`).
    Register(usize),
    /// Program `i` signs in to account `a` (`/login`): a second device when another program
    /// is signed in to it.
    Login(usize, usize),
    /// Program `i` signs out (`/logout`).
    Logout(usize),
}

const ROOMS: [&str; 2] = ["#lobby", "#rust"];
/// The programs' first nicks, and the accounts they may register and sign in to.
const NAMES: [&str; 3] = ["ann", "ben", "cat"];
/// Every account's password.
const PASSWORD: &str = "correct horse";

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize).prop_map(Op::Say),
        2 => Just(Op::TextSay),
        1 => (0..3usize, 0..2usize).prop_map(|(i, r)| Op::Join(i, r)),
        1 => (0..3usize).prop_map(Op::Cut),
        1 => (0..3usize, any::<bool>()).prop_map(|(i, s)| Op::Stall(i, s)),
        2 => (0..3_000u64).prop_map(Op::Advance),
        2 => (1..30u64).prop_map(Op::Advance),
        5 => (1..4usize).prop_map(Op::Commit),
        1 => Just(Op::Fail),
        1 => Just(Op::Crash),
    ]
}

/// [`op`], and accounts: registrations, sign-ins (several devices of one account), sign-outs.
fn account_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => op(),
        1 => (0..3usize).prop_map(Op::Register),
        1 => (0..3usize, 0..3usize).prop_map(|(i, a)| Op::Login(i, a)),
        1 => (0..3usize).prop_map(Op::Logout),
    ]
}

fn durable() -> Config {
    Config {
        durable: true,
        ..small_queues()
    }
}

/// [`durable`], with accounts that stay in their rooms while offline, or not.
fn durable_accounts(always_on: bool) -> Config {
    let mut config = durable();
    config.accounts.always_on = always_on;
    config
}

/// The text of a chat line, whatever kind of line it is.
fn said(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::Say { text, .. } | EventKind::Act { text, .. } => Some(text.to_string()),
        _ => None,
    }
}

/// Whether program `i` heard the answer to the account request it made when it had `asked`
/// events (a sign-out's is its own [`Event::SignedOut`]; the server's `NotSignedIn` answers a
/// guest's sign-out, not a sign-in).
fn answered(net: &Net, i: usize, asked: usize) -> bool {
    net.events(i)[asked..].iter().any(|e| match e {
        Event::SignedIn { .. } | Event::SignedOut => true,
        Event::Error {
            about: About::Account,
            kind,
            ..
        } => *kind != Some(ErrorKind::NotSignedIn),
        _ => false,
    }) || asked == 0
}

fn check_run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    check_run_with(durable(), ops)
}

fn check_run_with(config: Config, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut net = Net::new(config);
    let s: Vec<usize> = NAMES
        .iter()
        .map(|n| net.add_session(n, &["#lobby"]))
        .collect();
    let t = net.add_text();
    net.commit(usize::MAX);
    let mut counter = 0;
    // How many events each program had when it last asked for an account change.
    let mut asked = [0; NAMES.len()];
    // Whether each program's last account request was a sign-out.
    let mut out = [false; NAMES.len()];
    // The batch that writes again what a failed batch wrote about accounts and ended sessions.
    let mut rewritten: Option<BatchId> = None;
    // The last batch handed out when a batch last failed: until one after it is stored, what
    // the failed one held and is written again (seqs given out, sessions, accounts, refusals)
    // lives in memory only. After failures in a row, the next batch waits a moment.
    let mut failed_under: Option<u64> = None;
    for op in ops {
        match op {
            Op::Say(i) => {
                counter += 1;
                net.type_line(s[i], &format!("m{counter}"));
            }
            Op::TextSay => {
                if net.clients[t].conn.is_some() {
                    counter += 1;
                    net.type_line(t, &format!("t{counter}"));
                }
            }
            Op::Join(i, r) => net.type_line(s[i], &format!("/join {}", ROOMS[r])),
            Op::Cut(i) => net.cut(s[i]),
            Op::Stall(i, on) => net.set_stalled(s[i], on),
            Op::Advance(ms) => net.advance(Millis(ms)),
            Op::Commit(n) => net.commit(n),
            Op::Fail => {
                let waiting = net.store.as_ref().is_some_and(|st| !st.pending.is_empty());
                let accounts = net
                    .store
                    .as_ref()
                    .and_then(|st| st.pending.front())
                    .is_some_and(|b| {
                        b.writes.iter().any(|w| {
                            matches!(
                                w,
                                Write::Account(_)
                                    | Write::AccountRooms { .. }
                                    | Write::ReadMarker { .. }
                                    | Write::AddKey { .. }
                                    | Write::RevokeKey { .. }
                                    | Write::RevokeKeys { .. }
                                    | Write::EndSession(_)
                            )
                        })
                    });
                if waiting {
                    failed_under = net.store.as_ref().map(|st| st.handed);
                }
                net.fail();
                if accounts {
                    // Written again with the next batch: until it is stored, a kill loses them.
                    rewritten = net
                        .store
                        .as_ref()
                        .and_then(|st| st.pending.back())
                        .map(|b| b.id);
                }
            }
            // One account request at a time: what a program is signed in to is then the
            // answer to its last request.
            Op::Register(i) if answered(&net, s[i], asked[i]) => {
                asked[i] = net.events(s[i]).len();
                out[i] = false;
                net.type_line(s[i], &format!("/register {PASSWORD}"));
            }
            Op::Login(i, a) if answered(&net, s[i], asked[i]) => {
                asked[i] = net.events(s[i]).len();
                out[i] = false;
                net.type_line(s[i], &format!("/login {} {PASSWORD}", NAMES[a]));
            }
            Op::Logout(i) if answered(&net, s[i], asked[i]) => {
                // Whatever sign-in answer comes after it (one the session made by itself, in
                // flight), the program ends signed out: nothing to check of its account.
                asked[i] = net.events(s[i]).len();
                out[i] = true;
                net.type_line(s[i], "/logout");
            }
            Op::Register(_) | Op::Login(..) | Op::Logout(_) => {}
            Op::Crash => {
                // Not between a failed batch and the store of the seqs its events had taken
                // (`Write::SeqsUsed`, in the next batch): a kill there leaves those seqs to be
                // given out again, which clients may have heard of in a gap marker
                // (ARCHITECTURE.md, "Store", item 5).
                let window = net.store.as_ref().is_some_and(|st| {
                    st.pending
                        .iter()
                        .flat_map(|b| &b.writes)
                        .any(|w| matches!(w, Write::SeqsUsed { .. }))
                });
                let window = window
                    || failed_under
                        .is_some_and(|m| net.store.as_ref().is_some_and(|st| st.committed <= m))
                    || rewritten.is_some_and(|id| {
                        net.store
                            .as_ref()
                            .is_some_and(|st| st.pending.iter().any(|b| b.id <= id))
                    });
                if !window {
                    net.crash();
                }
            }
        }
    }
    // The disk is fine from now on: everything settles.
    for &i in &s {
        net.set_stalled(i, false);
    }
    for _ in 0..20 {
        net.commit(usize::MAX);
        net.advance(Millis(5_000));
    }
    // What was released may make a read marker move (a signed-in program read it): stored too.
    for _ in 0..5 {
        net.commit(usize::MAX);
    }
    let store = net.store.as_ref().expect("a durable hub");
    prop_assert!(store.pending.is_empty(), "batches left waiting");
    prop_assert!(
        store.written_twice.is_empty(),
        "seqs written twice: {:?}",
        store.written_twice
    );

    // Every line stored, by its text: where.
    let mut stored: BTreeMap<String, Vec<(RoomName, u64)>> = BTreeMap::new();
    for (room, events) in &store.events {
        for (seq, ev) in events {
            if let Some(text) = said(&ev.kind) {
                stored.entry(text).or_default().push((room.clone(), *seq));
            }
        }
    }
    for (text, at) in &stored {
        prop_assert!(at.len() == 1, "{text} stored {} times: {at:?}", at.len());
    }

    for &i in &s {
        let events = net.events(i);
        // Every message settles once; delivered ones are stored, refused ones are not.
        let mut queued: BTreeMap<MsgId, String> = BTreeMap::new();
        let mut settled = BTreeSet::new();
        // Sent to a session the server could not resume: whether it took them, nobody knows
        // (they are not sent again, so never doubled).
        let mut unknown = BTreeSet::new();
        for e in events {
            match e {
                Event::Queued { id, text, .. } => {
                    prop_assert!(queued.insert(*id, text.to_string()).is_none());
                }
                Event::Error {
                    kind: None,
                    about: About::Message(id),
                    text,
                } if text.contains("could not be resumed") => {
                    unknown.insert(*id);
                }
                Event::Settled { id, delivered } => {
                    prop_assert!(settled.insert(*id), "client {i} settled {id:?} twice");
                    let text = &queued[id];
                    if unknown.contains(id) {
                        prop_assert!(!*delivered);
                        continue;
                    }
                    prop_assert_eq!(
                        stored.contains_key(text),
                        *delivered,
                        "client {} was told {} was {}delivered",
                        i,
                        text,
                        if *delivered { "" } else { "not " }
                    );
                }
                _ => {}
            }
        }
        let ids: BTreeSet<MsgId> = queued.keys().copied().collect();
        prop_assert_eq!(&ids, &settled, "client {} left messages unsettled", i);

        // What it was shown is durable, as shown.
        for e in events {
            if let Event::Room(ev) = e {
                let kept = store.events.get(&ev.room).and_then(|e| e.get(&ev.seq.0));
                prop_assert!(
                    kept.is_some_and(|k| k.kind == ev.kind),
                    "client {i} was shown {} #{} {:?}, the store has {:?}",
                    ev.room,
                    ev.seq,
                    ev.kind,
                    kept.map(|k| &k.kind)
                );
            }
        }
        // Each event once, or a gap, while in the room (the server may part it: a join whose
        // batch failed and a crash before its session was stored again leave it in none of its
        // rooms after the restart). A seq whose batch failed was never shown to anyone nor
        // stored: nothing to miss.
        seen_once_or_in_a_gap(&net, i, |room, lo, hi| {
            store
                .events
                .get(room)
                .into_iter()
                .flat_map(|e| e.range(lo..=hi).map(|(q, _)| *q))
                .collect()
        })
        .map_err(TestCaseError::fail)?;
    }
    check_accounts(&mut net, &s, &asked, &out)?;
    // People on nc are shown only what is stored too.
    if let Kind::Text { lines, .. } = &net.clients[t].kind {
        for line in lines {
            if let Some(text) = line.rsplit("> ").next().filter(|w| w.starts_with('m')) {
                prop_assert!(
                    stored.contains_key(text),
                    "nc was shown {line:?}, not stored"
                );
            }
        }
    }
    Ok(())
}

/// What the accounts' programs were told holds in the store and the hub once all settled:
/// a program whose last word was that it is signed in (and which asked for no other account
/// since) is, after any restart, signed in to that account, which the store has, in the
/// account's stored rooms, and so says the hub; a read marker any device was told is stored
/// (never lost, never behind what was shown), and the markers a device is told never go back.
fn check_accounts(
    net: &mut Net,
    s: &[usize],
    asked: &[usize],
    out: &[bool],
) -> Result<(), TestCaseError> {
    for ((&i, &asked), &out) in s.iter().zip(asked).zip(out) {
        let mut last: Option<Nick> = None;
        let mut last_at = 0;
        // Whose markers come: the account the connection is signed in to, whose name its nick
        // is (a device may be told some before its client heard it signed in: a resume).
        let mut nick = String::new();
        // Whether the client heard it is signed in since its last welcome that was no resume.
        let mut heard = false;
        let mut told: BTreeMap<(String, RoomName), Seq> = BTreeMap::new();
        let mut unheard = Vec::new();
        for (at, e) in net.events(i).iter().enumerate() {
            match e {
                Event::Welcome {
                    nick: n, resumed, ..
                } => {
                    nick = n.folded();
                    heard &= *resumed;
                }
                Event::Nick(n) => nick = n.folded(),
                Event::SignedIn { account, .. } => {
                    (last, last_at) = (Some(account.clone()), at);
                    heard = true;
                    unheard.clear();
                }
                Event::SignedOut => (last, last_at) = (None, at),
                Event::ReadUpTo { room, seq } => {
                    if !heard {
                        unheard.push((room.clone(), *seq));
                    }
                    let before = told.insert((nick.clone(), room.clone()), *seq);
                    prop_assert!(
                        before.is_none_or(|b| b <= *seq),
                        "client {} was told its marker in {} went back from {:?} to {}",
                        i,
                        room,
                        before,
                        seq
                    );
                }
                _ => {}
            }
        }
        prop_assert!(
            unheard.is_empty(),
            "client {i} was told read markers {unheard:?} and never that it is signed in"
        );
        let store = net.store.as_ref().expect("a durable hub");
        for ((account, room), seq) in &told {
            let kept = store
                .accounts
                .get(account)
                .and_then(|a| a.read.iter().find(|(r, _)| r == room))
                .map(|(_, s)| *s);
            prop_assert!(
                kept.is_some_and(|k| k >= *seq),
                "client {i} was told {account} read {room} up to {seq}, the store has {kept:?}"
            );
        }
        let Some(account) = last.filter(|_| last_at >= asked && !out) else {
            continue;
        };
        let stored = store.accounts.get(&account.folded()).cloned();
        prop_assert!(
            stored.is_some(),
            "client {i} was signed in to {account}, which the store does not have"
        );
        let stored = stored.expect("checked");
        let conn = net.clients[i].conn;
        let session = net.session(i);
        prop_assert_eq!(
            session.account(),
            Some(&account),
            "client {} is not signed in to {} any more",
            i,
            account
        );
        let mine: BTreeSet<RoomName> = session.rooms().into_iter().collect();
        let theirs: BTreeSet<RoomName> = stored.rooms.iter().cloned().collect();
        prop_assert_eq!(
            &mine,
            &theirs,
            "client {} of {} is in other rooms than the store says",
            i,
            account
        );
        let conn = conn.expect("connected once all settled");
        prop_assert!(
            net.hub
                .nick(conn)
                .is_some_and(|n| n.folded() == account.folded()),
            "the hub has client {i} as {:?}, not {account}",
            net.hub.nick(conn)
        );
        for room in &mine {
            prop_assert!(
                net.hub.is_member(&account, room),
                "the hub has {account} out of {room}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_lines_are_stored_once_and_nobody_sees_what_is_not(
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        check_run(ops)?;
    }

    #[test]
    fn what_accounts_were_told_is_stored_and_outlives_a_kill(
        always_on in any::<bool>(),
        ops in proptest::collection::vec(account_op(), 1..80),
    ) {
        check_run_with(durable_accounts(always_on), ops)?;
    }
}

// The shrunk cases the property found in the code before it, each a bug of its own.
use Op::{Advance, Commit, Crash, Cut, Fail, Join, Login, Logout, Register, Say, Stall, TextSay};

#[test]
fn a_message_whose_batch_failed_while_its_sender_was_away_is_refused_again_when_resent() {
    let ops = vec![
        Say(0),
        Say(0),
        Say(0),
        Say(0),
        Commit(1),
        Cut(0),
        Fail,
        Say(0),
        Say(0),
        Say(0),
    ];
    check_run(ops).unwrap();
}

#[test]
fn a_refusal_lost_with_the_connection_is_repeated_after_a_later_message_was_taken() {
    let ops = vec![
        Commit(1),
        Cut(2),
        Advance(154),
        Say(1),
        Cut(1),
        Say(0),
        Say(0),
        Commit(1),
        Fail,
        Say(0),
        Advance(222),
        Fail,
        Fail,
        Say(0),
        Commit(2),
        Cut(1),
    ];
    check_run(ops).unwrap();
}

#[test]
fn a_refill_never_shows_an_event_before_it_is_stored() {
    let ops = vec![
        Say(0),
        Say(0),
        Say(2),
        Say(2),
        Commit(3),
        Crash,
        Advance(222),
        Say(2),
        Say(2),
        Cut(0),
        Say(2),
        Advance(0),
        Join(2, 1),
        Say(2),
        Commit(3),
        Say(0),
        Fail,
        Say(0),
        Say(1),
        Commit(1),
        Crash,
    ];
    check_run(ops).unwrap();
}

#[test]
fn a_session_that_could_not_be_resumed_does_not_send_its_messages_again() {
    let ops = vec![
        Stall(0, false),
        Say(0),
        Say(2),
        Stall(2, true),
        Commit(1),
        Cut(2),
        Advance(154),
        Commit(3),
        Crash,
    ];
    check_run(ops).unwrap();
}

#[test]
fn a_gap_marker_for_what_the_ring_lost_waits_behind_one_the_connection_owes() {
    let mut ops = vec![Say(0); 6];
    ops.extend([
        Commit(1),
        Stall(1, true),
        Stall(2, false),
        Say(0),
        Say(0),
        Say(0),
        Advance(0),
    ]);
    ops.extend(vec![Say(0); 8]);
    ops.extend([Stall(0, false), Stall(0, false)]);
    ops.extend(vec![Say(0); 6]);
    ops.extend([Cut(1), Say(0), Say(0)]);
    check_run(ops).unwrap();
}

#[test]
fn seqs_of_a_failed_batch_are_not_given_out_again_after_a_restart() {
    let ops = vec![
        Say(0),
        Say(0),
        Say(0),
        Say(2),
        Commit(3),
        Fail,
        Commit(1),
        Crash,
        Advance(154),
        Crash,
        Advance(244),
        Crash,
        Advance(201),
        Say(0),
    ];
    check_run(ops).unwrap();
}

#[test]
fn a_gap_marker_first_after_a_rejoin_counts_what_was_missed_before_it() {
    let ops = vec![
        Say(0),
        Join(1, 1),
        Commit(3),
        Stall(1, true),
        Say(0),
        Say(0),
        Crash,
        Join(2, 1),
        Advance(0),
        Say(0),
        Advance(222),
        Commit(2),
        Commit(3),
        Say(2),
        Say(1),
        Say(2),
        Say(0),
        Say(2),
        Join(0, 1),
        Commit(1),
        Commit(2),
        Say(2),
        Commit(1),
        Say(2),
        Commit(2),
        Say(2),
        Say(0),
        Say(0),
        Say(0),
        Say(2),
        Say(0),
        Crash,
        Say(2),
        Say(0),
        Say(2),
        Commit(1),
        Advance(227),
        Advance(1),
        Advance(1),
    ];
    check_run(ops).unwrap();
}

#[test]
fn a_device_of_an_account_resumed_after_a_restart_is_the_account_s_not_a_guest() {
    let ops = vec![Register(2), Commit(2), Login(0, 2), Crash];
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_device_signed_in_again_to_a_room_with_nothing_new_is_not_replayed_it_again() {
    let ops = vec![
        Commit(1),
        Register(2),
        Login(0, 2),
        Commit(2),
        Register(1),
        Say(0),
        Cut(0),
        Logout(0),
        Commit(2),
        Crash,
        Logout(1),
        Register(0),
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_registration_whose_batch_failed_is_written_again() {
    let ops = vec![Register(0), Commit(1), Fail];
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_replay_after_the_read_marker_that_stopped_is_announced_as_a_gap() {
    let ops = vec![
        Register(1),
        Say(0),
        Commit(1),
        Commit(2),
        Say(0),
        Say(0),
        Say(0),
        Commit(1),
        Say(0),
        Commit(3),
        Login(2, 1),
        Commit(1),
        Say(0),
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_registration_whose_answer_was_lost_with_the_connection_is_answered_again() {
    let ops = vec![
        Register(1),
        Cut(1),
        Login(2, 1),
        Advance(222),
        Stall(0, false),
        Say(0),
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_refill_asked_for_waits_behind_the_gap_marker_the_connection_owes() {
    let ops = vec![
        Crash,
        Say(0),
        Say(0),
        Cut(0),
        Advance(222),
        Commit(2),
        Commit(2),
        Commit(2),
        Crash,
        Say(2),
        Register(2),
        Login(0, 2),
        Commit(1),
        Advance(203),
        Cut(1),
        Cut(0),
        Advance(471),
        Commit(3),
        Commit(1),
        TextSay,
        Commit(1),
        Commit(1),
        Crash,
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_rename_replayed_from_before_the_join_is_not_taken_for_ours() {
    let mut ops = vec![Register(2), Say(0), Say(0), Join(2, 0), Say(0), Say(0)];
    ops.extend([
        Stall(0, false),
        Say(0),
        Commit(1),
        Commit(1),
        Logout(0),
        Logout(2),
    ]);
    ops.extend([
        Commit(2),
        Commit(2),
        Commit(2),
        Say(0),
        Advance(154),
        Commit(2),
    ]);
    ops.extend([Login(2, 2), Commit(2), Logout(2), Say(0), Commit(1), Say(0)]);
    ops.extend([
        Stall(0, false),
        Commit(2),
        Advance(227),
        Commit(2),
        Crash,
        Advance(235),
    ]);
    ops.extend([Commit(2), Say(1), Commit(2), Commit(1), Say(2)]);
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_replay_after_the_read_marker_owed_behind_a_gap_marker_is_not_dropped() {
    let mut ops = vec![
        Register(1),
        Join(2, 1),
        Say(0),
        Fail,
        Say(0),
        Say(0),
        Say(0),
    ];
    ops.extend([
        Stall(0, false),
        Say(0),
        Fail,
        Say(0),
        Commit(3),
        Cut(2),
        Fail,
        Logout(1),
    ]);
    ops.extend([Say(0), Say(0), Say(0), Say(0), Stall(0, false)]);
    ops.extend(vec![Say(0); 9]);
    ops.extend([Commit(2), Commit(2)]);
    ops.extend(vec![Say(0); 6]);
    ops.extend([
        Commit(1),
        Say(0),
        Commit(3),
        Say(1),
        Say(0),
        Login(1, 1),
        Say(0),
    ]);
    ops.extend([Join(1, 1), Say(0)]);
    check_run_with(durable_accounts(true), ops).unwrap();
}

#[test]
fn a_gap_marker_owed_starts_where_a_refill_owed_before_it_does() {
    let mut ops = vec![
        Crash,
        Commit(1),
        Say(0),
        Advance(222),
        Say(0),
        Say(0),
        Say(0),
    ];
    ops.extend([
        Fail,
        Say(0),
        Say(0),
        Cut(2),
        Commit(1),
        Commit(2),
        Say(0),
        Commit(1),
    ]);
    ops.extend([
        Say(0),
        Crash,
        Say(0),
        Login(2, 1),
        Say(0),
        Stall(2, true),
        Stall(0, true),
    ]);
    ops.extend([
        Say(0),
        Say(0),
        Register(1),
        Say(0),
        Advance(227),
        Commit(3),
        Commit(1),
    ]);
    ops.extend([Say(0), Commit(1), Say(0), Say(2), Say(0)]);
    check_run_with(durable_accounts(false), ops).unwrap();
}

#[test]
fn a_replay_after_the_read_marker_that_stopped_in_a_store_page_is_announced_as_a_gap() {
    let ops = vec![
        Register(1),
        Join(0, 1),
        Say(1),
        Say(0),
        Say(1),
        Commit(3),
        Register(2),
        Commit(2),
        Fail,
        Logout(1),
        Commit(3),
        Crash,
        Say(1),
        Say(1),
        Advance(222),
        Stall(2, false),
        Commit(1),
        Login(0, 2),
        Say(0),
        Commit(3),
        Commit(1),
        Say(1),
        Stall(1, false),
        Fail,
        Say(1),
        Stall(0, false),
        Commit(3),
        Say(1),
        Say(1),
        Say(1),
        Cut(0),
        Logout(2),
        Join(0, 0),
        Advance(0),
        Cut(0),
        Commit(2),
        Commit(2),
        Say(0),
        Fail,
        Advance(227),
        Say(0),
        Stall(0, false),
        Commit(2),
        Login(1, 1),
        Say(0),
        Commit(1),
        Commit(1),
        Commit(3),
        Cut(0),
        Logout(0),
        Say(0),
        Login(0, 1),
        Crash,
        Login(2, 1),
        Logout(1),
        Say(2),
        Advance(144),
        Say(0),
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// A device that signs in to an account whose user is already in a room (here after a kill, its
/// earlier sign-in lost) is replayed what the account missed since its read marker, from the
/// store: the room's live lines wait for that page (found by a longer hunt: the live line came
/// first, and the replayed quit of the device's guest, never sent to it live, was taken for
/// seen and missed with no gap marker).
#[test]
fn a_sign_in_catch_up_from_the_store_comes_before_live_lines() {
    let mut ops = vec![
        Say(0),
        Say(0),
        Cut(0),
        Stall(0, false),
        Say(0),
        Cut(0),
        Say(0),
    ];
    ops.extend([
        Register(2),
        Login(0, 0),
        Commit(1),
        Advance(210),
        Say(0),
        Say(1),
    ]);
    ops.extend([
        Commit(1),
        Commit(2),
        Commit(2),
        Say(0),
        Say(0),
        Say(0),
        Say(0),
        Say(0),
    ]);
    ops.extend([
        Commit(1),
        Stall(0, false),
        Say(0),
        Advance(0),
        Say(0),
        Login(0, 0),
        Crash,
    ]);
    ops.extend(vec![Say(0); 9]);
    ops.extend([
        Advance(196),
        Commit(1),
        Say(0),
        Commit(1),
        Say(0),
        Cut(2),
        Say(1),
        Say(0),
    ]);
    ops.extend([Commit(1), Login(0, 2), Advance(26)]);
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// A sign-in the session made by itself (its credentials kept) is taken, and the connection
/// is lost before the answer; the user signs out meanwhile. The resume is the account's (the
/// server took the sign-in) while the client takes itself for a guest and asks nothing: the
/// account's read markers that reach it before its sign-out are not shown (the client was told
/// markers of an account it never heard it was signed in to).
#[test]
fn a_client_that_signed_out_is_not_shown_markers_of_a_sign_in_it_never_heard() {
    let mut ops = vec![
        Say(0),
        Register(0),
        Stall(2, false),
        Advance(0),
        Advance(0),
        Crash,
    ];
    ops.extend([
        Logout(1),
        Login(1, 0),
        Advance(222),
        Commit(3),
        Commit(1),
        Commit(2),
    ]);
    ops.extend([
        Advance(1),
        Fail,
        Say(0),
        Advance(202),
        Fail,
        Commit(1),
        Commit(1),
        Cut(1),
    ]);
    ops.extend([Say(0), Logout(1), Say(0), Say(0)]);
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// As above, with the user asking meanwhile to sign in to another account: the resume is the
/// first account's, the sign-in asked for is refused, and that account's read markers that
/// come while it is asked are not shown (found by the hunt after the case above was fixed).
#[test]
fn a_client_asking_for_another_account_is_not_shown_markers_of_a_sign_in_it_never_heard() {
    let ops = vec![
        Crash,
        Logout(2),
        Register(2),
        Login(0, 2),
        Advance(154),
        Say(0),
        Commit(2),
        Commit(1),
        Advance(227),
        Commit(1),
        Cut(0),
        Advance(196),
        Say(0),
        Commit(2),
        Cut(2),
        Login(2, 0),
        Say(0),
        Stall(0, false),
        Advance(235),
        Say(0),
        Stall(0, false),
        Commit(2),
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// After a resume, a program sends again what it was not answered, with its new lines: past a
/// full flood queue, the copy of a line the room has was refused as a flood, and the client
/// settled as not delivered a line everyone saw.
#[test]
fn a_resend_past_a_full_flood_queue_is_acknowledged_not_refused() {
    let mut ops = vec![Crash];
    ops.extend(std::iter::repeat_n(Say(2), 8));
    ops.extend([Say(0), Say(0), Say(2), Say(0), Say(2), Fail]);
    ops.extend(std::iter::repeat_n(Say(2), 5));
    ops.extend([
        Advance(222),
        Say(0),
        Say(2),
        Commit(2),
        Join(2, 1),
        Say(2),
        Cut(2),
        Logout(2),
        Logout(2),
        Say(0),
        Say(0),
        Register(2),
    ]);
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// A line taken, its batch failed while its sender's connection was down: the refusal was
/// kept in memory only, and after a kill the resend was acknowledged as had, by the last id
/// the session record carried. Refusals are stored with the session record now.
#[test]
fn a_refusal_its_client_did_not_hear_outlives_a_kill() {
    let ops = vec![
        Commit(1),
        Say(2),
        Say(0),
        Say(0),
        Say(0),
        Cut(2),
        Fail,
        Commit(2),
        Commit(2),
        Crash,
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// Lines lost with a failed batch while their sender was away, and a batch after it already
/// in flight with the sender's session record (its last id past them, no refusal): the
/// refusals must be written at once, not with the sender's next line.
#[test]
fn a_refusal_under_a_session_record_in_flight_is_written_at_once() {
    let ops = vec![
        Say(0),
        Say(0),
        Say(0),
        Say(1),
        Cut(0),
        Fail,
        Say(0),
        Say(0),
        Commit(1),
        Commit(1),
        Fail,
        Say(0),
        Commit(2),
        Commit(1),
        Crash,
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// A program resumed after a restart, and the server stored the new token it issued; the
/// program read nothing (stalled) before a second kill. The token it holds, the one before,
/// was good in the hub until it showed it has the new one, but not in the store: after the
/// restart its session had expired, and it was no longer signed in.
#[test]
fn a_token_the_client_may_not_have_received_leaves_the_one_before_good_after_a_kill() {
    let ops = vec![
        Crash,
        Commit(1),
        Advance(222),
        Commit(2),
        Commit(1),
        Crash,
        Logout(2),
        Advance(227),
        Commit(1),
        Commit(3),
        Cut(0),
        Login(2, 0),
        Say(1),
        Say(1),
        Commit(1),
        Advance(144),
        Register(1),
        Crash,
        Advance(235),
        Commit(1),
        Commit(1),
        Commit(1),
        Login(2, 1),
        Commit(1),
        Commit(1),
        Stall(2, true),
        Crash,
        Advance(229),
        Say(0),
        Commit(2),
        Say(0),
        Commit(2),
        Crash,
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}

/// A line lost with a failed batch after a later line of its sender's was taken, not yet
/// handed to the store (the batch after failures in a row waits): the refusal was kept for the
/// sender's next line, and the later one's batch stored its last id without it.
#[test]
fn a_refusal_behind_a_later_line_not_yet_written_goes_with_it() {
    let ops = vec![
        Commit(1),
        Say(0),
        Say(0),
        Say(0),
        Fail,
        Say(1),
        Fail,
        Commit(2),
        Say(1),
        Fail,
        Stall(0, false),
        Advance(50),
        Cut(1),
        Commit(1),
        Crash,
    ];
    check_run_with(durable(), ops).unwrap();
}

/// A registrant cut before its registration was stored, the store keeping it meanwhile:
/// another program signing in to the account took the guest's rename away from the name, heard
/// after its own `YourNick`, for its own, and ended told read markers under the guest's nick.
#[test]
fn a_sign_in_hears_the_rename_of_the_guest_it_took_the_name_from_as_another_s() {
    let ops = vec![
        Commit(1),
        Stall(0, false),
        Say(0),
        Say(0),
        Register(2),
        Commit(1),
        Cut(2),
        Say(0),
        Logout(1),
        Say(0),
        Stall(0, false),
        Say(0),
        Say(0),
        Say(0),
        Commit(1),
        Say(0),
        Say(0),
        Commit(1),
        Login(1, 2),
    ];
    check_run_with(durable_accounts(false), ops).unwrap();
}
