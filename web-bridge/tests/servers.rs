//! Several server addresses (the nodes of a natter cluster): each new WebSocket is relayed to
//! the address that last worked, or the next one that accepts; a dropped server connection
//! closes the WebSocket, and the page's next one goes to a node that works.

mod common;

use common::*;
use natter_bridge::BridgeConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn each_websocket_goes_to_an_address_that_accepts() {
    let (_held, dead) = refusing_addr();
    let mut a = FakeServer::start().await;
    let mut b = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(dead, PathBuf::from("/nonexistent"));
    config.more_servers = vec![a.addr, b.addr, dead];
    assert_eq!(
        config.servers(),
        vec![dead, a.addr, b.addr],
        "in order, once"
    );
    let bridge = bridge_with(config).await;

    // The first address refuses: the next one gets the browser.
    let mut ws1 = connect(bridge.local_addr()).await;
    let mut s1 = a.accept_checked().await;
    send_bin(&mut ws1, b"one").await;
    assert_eq!(read_n(&mut s1, 7).await, b"\0\0\0\x03one");
    // The next browser starts at the address that worked.
    let _ws2 = connect(bridge.local_addr()).await;
    let _s2 = a.accept_checked().await;

    // Node a dies: its browsers are closed (their pages reconnect) ...
    drop(a);
    within("server side closes", s1.shutdown()).await.unwrap();
    drop(s1);
    assert_eq!(close_code(&mut ws1).await, CloseCode::Normal);
    // ... and the next WebSocket reaches b, past a's refusal.
    let t0 = tokio::time::Instant::now();
    let mut ws3 = connect(bridge.local_addr()).await;
    let mut s3 = b.accept_checked().await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    send_bin(&mut ws3, b"three").await;
    assert_eq!(read_n(&mut s3, 9).await, b"\0\0\0\x05three");
    let _ws4 = connect(bridge.local_addr()).await;
    let _s4 = b.accept_checked().await;

    // Nobody accepts: the browser is told to try again later.
    drop(b);
    let mut ws5 = connect(bridge.local_addr()).await;
    assert_eq!(close_code(&mut ws5).await, CloseCode::Again);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[test]
fn server_addresses_are_read_as_operators_type_them() {
    use natter_bridge::resolve_servers;
    let s =
        |items: &[&str]| resolve_servers(&items.iter().map(|i| i.to_string()).collect::<Vec<_>>());
    let (addrs, name) = s(&["127.0.0.1:8000", "[::1]:8001"]).unwrap();
    assert_eq!(
        addrs,
        vec![
            "127.0.0.1:8000".parse::<SocketAddr>().unwrap(),
            "[::1]:8001".parse().unwrap()
        ]
    );
    assert_eq!(name, None, "an IP address is no name");
    // A host name, as the README's cluster example gives them: each of its addresses.
    let (addrs, name) = s(&["localhost:8000", "127.0.0.1:8000"]).unwrap();
    assert!(
        addrs.contains(&"127.0.0.1:8000".parse().unwrap()),
        "{addrs:?}"
    );
    assert_eq!(
        addrs
            .iter()
            .filter(|a| a.port() == 8000 && a.ip().is_ipv4())
            .count(),
        1,
        "once: {addrs:?}"
    );
    assert_eq!(name.as_deref(), Some("localhost"));
    // Bad ones say which and why.
    for (bad, why) in [
        ("localhost", "expected HOST:PORT"),
        ("localhost:99999", "expected HOST:PORT"),
        ("", "expected HOST:PORT"),
        ("nosuch.invalid:8000", "unknown host"),
    ] {
        let e = s(&[bad]).unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains(why), "{bad}: {e}");
    }
}
