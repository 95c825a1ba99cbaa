//! Issue 8, address-based limits against an attacker who owns a whole IPv6 /64 (what one
//! customer line or one cloud VM usually gets): its 2^64 addresses must count as one for the
//! per-address limits, or they limit nothing (and fill the address table for everyone). Distinct
//! /64s and distinct IPv4 addresses still count separately. Addresses come through a trusted
//! proxy connection (`Forwarded`), as browsers' do through the bridge.

mod attack_support;

use attack_support::{End, hello_via_bridge};
use natter_core::limits;
use natter_core::wire::{ErrorKind, ServerMsg};
use natter_server::{ServerConfig, start};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::{Instant, timeout};

/// Connects as `peer` (forwarded) and says hello as `nick`: true if welcomed, false if refused
/// with `Error{Full}` and a close; panics on anything else.
async fn admitted(addr: SocketAddr, peer: String, nick: String) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (end, c) = hello_via_bridge(addr, &peer, &nick, deadline)
        .await
        .expect("connect and say hello");
    let msgs = c.frames().expect("frames");
    match (end, msgs.as_slice()) {
        (End::Open, [ServerMsg::Welcome { .. }, ..]) => {
            // Keep it open until the test ends (so it counts as open).
            std::mem::forget(c);
            true
        }
        (
            End::Closed,
            [
                ServerMsg::Error {
                    kind: ErrorKind::Full,
                    ..
                },
                ServerMsg::Bye { .. },
            ],
        ) => false,
        other => panic!("{peer}: neither welcomed nor refused: {other:?}"),
    }
}

async fn count_admitted(addr: SocketAddr, peers: Vec<String>, tag: &str) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in peers.into_iter().enumerate() {
        tasks.spawn(admitted(addr, p, format!("{tag}{i}")));
    }
    let mut n = 0;
    while let Some(r) = timeout(Duration::from_secs(30), tasks.join_next())
        .await
        .expect("connections settle in time")
    {
        n += usize::from(r.expect("no panic"));
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ipv6_slash_64_counts_as_one_address() {
    // Patient: under load a bridge connection's preamble can come after the default wait.
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let cap = limits::MAX_CONNECTIONS_PER_IP.min(limits::MAX_CONNECTS_PER_WINDOW as usize);

    // 200 different addresses, all in 2001:db8:1:2::/64.
    let one_net = (0..200u32)
        .map(|i| format!("2001:db8:1:2:{:x}:{:x}::{:x}", (i * 7919) % 65536, i, i + 1))
        .collect();
    let n = count_admitted(addr, one_net, "v").await;
    assert_eq!(n, cap, "addresses of one /64 admitted");

    // Forty /64s, one connection each: all admitted.
    let many_nets = (0..40u32).map(|i| format!("2001:db8:2:{i:x}::1")).collect();
    assert_eq!(count_admitted(addr, many_nets, "w").await, 40);

    // Forty IPv4 addresses, also counted one by one.
    let v4 = (0..40u32)
        .map(|i| format!("198.51.100.{}", i + 1))
        .collect();
    assert_eq!(count_admitted(addr, v4, "x").await, 40);

    timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown in time")
        .expect("shutdown");
}
