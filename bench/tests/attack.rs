//! `natter-bench attack`'s parts against an in-process natter-server on 127.0.0.1 port 0: the
//! attack mix (one attacker of each kind) runs for a few seconds while the well-behaved clients
//! talk. They lose nothing and get no error, gap or close; the attackers really attacked (they
//! connected, sent, were closed and refused by the server).

use natter_bench::attack::{Mix, attackers};
use natter_bench::legit::Legit;
use std::time::Duration;

#[test]
fn the_mix_attacks_and_well_behaved_clients_lose_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = natter_server::ServerConfig::local_test();
        // Loopback is trusted as a proxy in the test config; the attackers and clients here are
        // plain clients (a trusted proxy's connection that sends no header is served as one).
        config.hub.trusted_proxies.clear();
        let server = natter_server::start(config).await.unwrap();
        let addr = server.local_addrs()[0];
        let local = tokio::task::LocalSet::new();
        let (result, counts) = local
            .run_until(async {
                let legit = Legit::connect(addr, 4).await.expect("clients join");
                let attack = tokio::spawn(attackers(addr, Mix::one_each(), Duration::from_secs(4)));
                let result = legit
                    .run(
                        Duration::from_millis(200),
                        tokio::time::sleep(Duration::from_secs(4)),
                        Duration::from_secs(5),
                    )
                    .await;
                let counts = tokio::time::timeout(Duration::from_secs(20), attack)
                    .await
                    .expect("the attackers stop at their deadline")
                    .expect("the attackers did not panic");
                (result, counts)
            })
            .await;
        tokio::time::timeout(Duration::from_secs(10), server.shutdown())
            .await
            .expect("shutdown in time")
            .expect("shutdown");

        assert_eq!(result.unexpected, 0, "{:?}", result.notes);
        assert!(result.lost.is_empty(), "lost {} lines", result.lost.len());
        // 4 clients, a line every 200 ms for 4 s: about 80 echoes.
        assert!(
            result.samples.len() >= 60,
            "{} echoes",
            result.samples.len()
        );
        assert!(counts.connects >= 10, "{counts:?}");
        assert!(counts.bytes_sent > 100_000, "{counts:?}");
        // Huge frames and the per-address limits get connections closed.
        assert!(counts.closed_by_server >= 2, "{counts:?}");
        assert!(
            counts.same_address_admitted + counts.same_address_refused >= 1,
            "{counts:?}"
        );
    });
}
