//! The smoke mode as a test: a few hundred messages through natter-server, the baseline,
//! natter-bridge, natter-server's TLS listener and its IRC listener, and natter-server with every
//! feature on (all in-process on 127.0.0.1 port 0), nothing
//! lost, nothing duplicated.

use std::time::Duration;

#[test]
fn smoke_loses_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(120), natter_bench::smoke::run(6, 40)).await
        })
        .expect("smoke run within its time bound")
        .expect("smoke run set up");
    assert_eq!(results.len(), 10);
    for (what, r) in &results {
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        assert!(r.complete, "{what}: incomplete, lost {}", r.lost);
        assert_eq!(r.lost, 0, "{what}");
        assert_eq!(r.duplicated, 0, "{what}");
        assert_eq!(r.deliveries, r.expected, "{what}");
        assert_eq!(
            r.latency.len(),
            r.deliveries,
            "{what}: a latency per delivery"
        );
    }
    // natter echoes to the sender (C × C × M); the baseline relays to the others (C × (C-1) × M).
    let find = |w: &str| &results.iter().find(|(x, _)| x == w).unwrap().1;
    assert_eq!(find("natter closed loop").expected, 6 * 6 * 40);
    assert_eq!(
        find("natter with accounts signed in, verified").expected,
        6 * 6 * 40
    );
    // Every feature on: signed in, the same counts as plain natter.
    assert_eq!(
        find("natter-all (every feature on), verified").expected,
        6 * 6 * 40
    );
    assert_eq!(find("baseline closed loop").expected, 6 * 5 * 40);
    // Over TLS the same frames, the same counts.
    assert_eq!(
        find("natter-tls closed loop, verified").expected,
        6 * 6 * 40
    );
    // IRC clients ask for echo-message: the sender's copy is its ack, as with natter.
    assert_eq!(find("irc closed loop, verified").expected, 6 * 6 * 40);
}
