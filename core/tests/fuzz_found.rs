//! Bugs the coverage-guided fuzzers found (`cargo xtask fuzz`), each as a plain test through the
//! public API that failed before its fix. The inputs that found them are kept in
//! `fuzz/regressions/<target>/` and replayed by `fuzz_regressions.rs`.

use natter_core::hub::{Config, Hub};
use natter_core::wire::{self, ClientMsg, FrameDecoder, Resume, ServerMsg};
use natter_core::{ConnId, Millis, Nick, ResumeToken};
use std::net::{IpAddr, Ipv4Addr};

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

/// Everything the hub wrote to `conn` so far (others' transmits are dropped), decoded.
fn recv(hub: &mut Hub, conn: ConnId, now: Millis) -> Vec<ServerMsg> {
    let mut out = Vec::new();
    while let Some(t) = hub.poll_transmit() {
        hub.handle_written(t.conn, t.len(), now);
        if t.conn != conn {
            continue;
        }
        let mut d = FrameDecoder::new();
        d.extend(&t.concat());
        while let Some(p) = d.next_frame().unwrap() {
            out.push(wire::decode_payload(&p).unwrap());
        }
    }
    while hub.poll_event().is_some() {}
    out
}

fn hello(nick: &str, resume: Option<ResumeToken>) -> Vec<u8> {
    let mut out = wire::MAGIC.to_vec();
    let hello = ClientMsg::Hello {
        version: wire::PROTOCOL_VERSION,
        nick: Nick::new(nick).unwrap(),
        resume: resume.map(|token| Resume {
            token,
            rooms: Vec::new(),
        }),
    };
    out.extend_from_slice(&wire::encode_frame(&hello).unwrap());
    out
}

fn welcome(msgs: &[ServerMsg]) -> (Nick, ResumeToken) {
    msgs.iter()
        .find_map(|m| match m {
            ServerMsg::Welcome { nick, token, .. } => Some((nick.clone(), token.clone())),
            _ => None,
        })
        .expect("a welcome")
}

/// Found by the `hub` target: a resume of a session still attached elsewhere probes the old
/// connection; when the newcomer closed while waiting and then the old connection closed too,
/// the session was handed to the newcomer that no longer existed. The user was never released:
/// its nick stayed taken for good and each such pair of connections leaked a user.
#[test]
fn a_session_probed_for_a_newcomer_that_left_is_released() {
    let mut hub = Hub::new(Config::default());
    let mut now = Millis(1_000);
    let owner = hub.accept(ip(1), now).unwrap();
    hub.handle_bytes(owner, &hello("ann", None), now);
    let (_, token) = welcome(&recv(&mut hub, owner, now));

    // Someone presents the token from elsewhere: the owner is probed.
    let newcomer = hub.accept(ip(2), now).unwrap();
    hub.handle_bytes(newcomer, &hello("ann", Some(token)), now);
    recv(&mut hub, newcomer, now);
    // The newcomer leaves before the probe's outcome, then the owner's connection drops.
    hub.handle_close(newcomer, now);
    hub.handle_close(owner, now);
    recv(&mut hub, owner, now);

    // Once the resume grace is over nothing of ann is left, and the nick is free again.
    for _ in 0..10 {
        now = now + Millis(60_000);
        if hub.poll_timeout().is_some_and(|t| t <= now) {
            hub.handle_timeout(now);
        }
        recv(&mut hub, owner, now);
    }
    assert_eq!(hub.connections(), 0);
    assert_eq!(hub.users(), 0, "the user was left behind");
    let again = hub.accept(ip(3), now).unwrap();
    hub.handle_bytes(again, &hello("ann", None), now);
    let (nick, _) = welcome(&recv(&mut hub, again, now));
    assert_eq!(nick.as_str(), "ann");
}
