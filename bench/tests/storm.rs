//! The storm command's client as a test: a few hundred clients connect at once into one room of
//! an in-process natter-server (127.0.0.1 port 0); every one ends up in the room.

use natter_bench::storm::{self, StormSpec};
use std::time::Duration;

#[test]
fn a_small_storm_gets_everyone_in() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = natter_server::ServerConfig::local_test();
        config.hub = natter_bench::smoke::bench_hub_config(config.hub);
        // A detection wait this short would send to text mode any client whose preamble the
        // server did not hold at its accept: they must come back. (Since issue 22's QA the
        // clients write right after their connect and the server takes those bytes with the
        // accept, so on loopback none is greeted as text any more.)
        config.hub.text_detect_wait = natter_core::Millis(10);
        let server = natter_server::start(config).await.expect("server starts");
        let spec = StormSpec {
            addr: server.local_addrs()[0],
            clients: 300,
            timeout: Duration::from_secs(60),
        };
        let local = tokio::task::LocalSet::new();
        let r = local
            .run_until(async {
                let (r, crowd) = storm::run(spec).await.expect("storm runs");
                drop(crowd);
                r
            })
            .await;
        assert_eq!(r.joined, 300, "{:?}", r.errors);
        assert_eq!(r.stranded, 0, "{:?}", r.errors);
        assert!(r.all_joined.is_some());
        assert_eq!(r.join_time.len(), 300);
        assert!(
            r.join_time.value_at_quantile(0.5) > 0,
            "join times recorded as they are"
        );
        eprintln!(
            "300 clients in {:?}, {} greeted as text and back",
            r.all_joined, r.greeted_as_text
        );
        drop(local);
        server.shutdown().await.expect("server shuts down");
    });
}
