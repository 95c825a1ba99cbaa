//! Fuzzing on stable Rust: random and mutated inputs for the frame decoder, the Hub's byte input
//! (binary, text and IRC), the slash-command parser and the Session's input. Nothing may panic,
//! and what comes out stays within the frame limit.
//!
//! `cargo test` runs a short bounded pass (plus every file in `core/fuzz-corpus/`, where inputs
//! that once crashed are kept as regressions); `cargo xtask fuzz --stable --seconds N` sets
//! `NATTER_FUZZ_SECONDS` and keeps going with fresh seeds for that long. The coverage-guided
//! targets (cargo-fuzz, `fuzz/`, `cargo xtask fuzz`) go deeper; their kept inputs are replayed
//! by `fuzz_regressions.rs`.

use natter_core::chat::Chat;
use natter_core::command;
use natter_core::hub::{Config, Door, Hub};
use natter_core::limits::MAX_FRAME;
use natter_core::session::{Session, SessionConfig, Transport};
use natter_core::wire::{self, ClientMsg, FrameDecoder, ServerMsg};
use natter_core::{Millis, Nick, RoomName};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use std::time::{Duration, Instant};

/// One input: a few chunks of bytes, each delivered after some time passes.
type Chunks = Vec<(Vec<u8>, u16)>;

fn chunks() -> impl Strategy<Value = Chunks> {
    let chunk = prop_oneof![
        // Pure noise.
        proptest::collection::vec(any::<u8>(), 0..300),
        // A binary client: magic then noise, or magic then a real frame with bytes flipped.
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| {
            let mut out = wire::MAGIC.to_vec();
            out.append(&mut v);
            out
        }),
        (any::<u16>(), any::<u8>()).prop_map(|(pos, val)| {
            let mut out = wire::MAGIC.to_vec();
            let hello = ClientMsg::Hello {
                version: wire::PROTOCOL_VERSION,
                nick: Nick::new("fuzz").unwrap(),
                resume: None,
            };
            out.extend_from_slice(&wire::encode_frame(&hello).unwrap());
            out.extend_from_slice(
                &wire::encode_frame(&ClientMsg::Join { room: RoomName::lobby() }).unwrap(),
            );
            let at = pos as usize % out.len();
            out[at] = val;
            out
        }),
        // A person: text lines, including commands, control bytes and invalid UTF-8.
        "(/?(join|nick|msg|me|part|who|rooms|topic|quit|help)? ?[ -~\u{80}-\u{10FFFF}\x1b\r\x00]{0,80}\r?\n){0,4}"
            .prop_map(String::into_bytes),
        // An IRC client: commands with tags, CTCP, colours and junk in their parameters.
        "((@[a-z=;+]{0,12} )?(NICK|USER|CAP|JOIN|PART|PRIVMSG|NOTICE|TOPIC|MODE|WHO|WHOIS|AWAY|PING|PONG|LIST|NAMES|ISON|USERHOST|QUIT|TAGMSG)( :?[ -~\u{80}-\u{10FFFF}\x01\x03\r\x00]{0,40}){0,4}\r?\n){0,6}"
            .prop_map(String::into_bytes),
    ];
    proptest::collection::vec((chunk, any::<u16>()), 1..8)
}

fn hub_target(input: &Chunks) {
    let mut hub = Hub::new(Config::default());
    let mut now = Millis(1_000);
    let peer = core::net::IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 1));
    let mut conns: Vec<_> = (0..3).filter_map(|_| hub.accept(peer, now).ok()).collect();
    // And an IRC client, registered, that reads every chunk too: what follows reaches every
    // IRC command.
    let irc = hub.accept_on(Door::Irc, peer, now).ok();
    if let Some(irc) = irc {
        hub.handle_bytes(irc, b"NICK fuzzirc\r\nUSER f 0 * :f\r\n", now);
        conns.push(irc);
    }
    for (n, (bytes, wait)) in input.iter().enumerate() {
        let conn = conns[n % conns.len()];
        hub.handle_bytes(conn, bytes, now);
        if let Some(irc) = irc.filter(|i| *i != conn) {
            hub.handle_bytes(irc, bytes, now);
        }
        now = now + Millis(u64::from(*wait % 2_000));
        if hub.poll_timeout().is_some_and(|t| t <= now) {
            hub.handle_timeout(now);
        }
        while let Some(t) = hub.poll_transmit() {
            assert!(t.data.iter().all(|p| !p.is_empty()), "no empty piece");
            hub.handle_written(t.conn, t.len(), now);
        }
        while hub.poll_event().is_some() {}
    }
    for c in conns {
        hub.handle_close(c, now);
    }
}

fn decoder_target(input: &Chunks) {
    for (bytes, _) in input {
        let _ = wire::decode_payload::<ClientMsg>(bytes);
        let _ = wire::decode_payload::<ServerMsg>(bytes);
        let mut d = FrameDecoder::new();
        d.extend(bytes);
        while let Ok(Some(p)) = d.next_frame() {
            let _ = wire::decode_payload::<ClientMsg>(&p);
        }
        assert!(d.buffered() <= bytes.len());
        // The bridge's batch helpers agree with the decoder on where whole frames end.
        if let Ok(whole) = wire::whole_frames_len(bytes) {
            let mut d = FrameDecoder::new();
            d.extend(bytes);
            while let Ok(Some(_)) = d.next_frame() {}
            assert_eq!(whole, bytes.len() - d.buffered());
            assert!(wire::frame_payloads(&bytes[..whole]).all(|p| p.is_ok()));
        }
        let _ = command::parse(&String::from_utf8_lossy(bytes));
    }
}

fn session_target(input: &Chunks) {
    for transport in [Transport::Stream, Transport::Messages] {
        let config = SessionConfig {
            nick: Nick::new("fuzz").unwrap(),
            rooms: vec![RoomName::lobby()],
            transport,
            seed: 7,
        };
        let mut now = Millis(1_000);
        let mut chat = Chat::new(config.nick.clone());
        let mut s = Session::new(config, now);
        s.handle_connected(now);
        for (bytes, wait) in input {
            match transport {
                Transport::Stream => s.handle_bytes(bytes, now),
                Transport::Messages => {
                    s.handle_message(bytes, now);
                    // Also as one well-framed payload, so the noise reaches the decoder.
                    if let Ok(frame) = wire::frame_payload(bytes) {
                        s.handle_message(&frame, now);
                    }
                }
            }
            // Typed where the chat model says, as the TUI and the page do.
            s.handle_input_in(&String::from_utf8_lossy(bytes), chat.target().as_ref(), now);
            now = now + Millis(u64::from(*wait));
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            if chat.poll_timeout().is_some_and(|t| t <= now) {
                chat.handle_timeout(now);
            }
            while let Some(b) = s.poll_transmit() {
                assert!(b.len() <= MAX_FRAME + 4 + wire::MAGIC.len());
            }
            while let Some(ev) = s.poll_event() {
                chat.handle_event(&ev, now);
            }
            while chat.poll_change().is_some() {}
            while chat.poll_alert().is_some() {}
        }
        // Whatever the server sent, the model's words carry nothing a terminal would act on.
        for conv in chat.conversations().chain([chat.current_conv()]) {
            for line in conv.lines() {
                if let Some(words) = line.kind.words() {
                    assert!(!words.chars().any(char::is_control), "{words:?}");
                }
            }
        }
    }
}

fn all_targets(input: &Chunks) {
    decoder_target(input);
    hub_target(input);
    session_target(input);
}

fn run_for(cases: u32, seed: u64) {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    if let Err(e) = runner.run(&chunks(), |input| {
        all_targets(&input);
        Ok(())
    }) {
        panic!("fuzz failure with seed {seed}: {e}");
    }
}

#[test]
fn corpus_regressions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("core/fuzz-corpus exists") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        all_targets(&vec![(bytes, 500)]);
        n += 1;
    }
    assert!(n > 0, "the corpus is empty");
}

#[test]
fn fuzz() {
    let budget: u64 = std::env::var("NATTER_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if budget == 0 {
        // The regular test run: a bounded pass with a fixed seed.
        run_for(300, 1);
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(budget);
    let mut seed = u64::from(std::process::id());
    let mut total = 0u64;
    while Instant::now() < deadline {
        run_for(500, seed);
        total += 500;
        seed = seed.wrapping_add(1);
    }
    println!("fuzz: {total} inputs through every target, no failure");
}
