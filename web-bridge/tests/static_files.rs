//! The page side: static files, content types, and requests that must not reach the disk.

mod common;

use common::*;
use natter_bridge::BridgeConfig;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a raw request (so paths are not normalised by a client library) and reads the reply.
async fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    within("write", s.write_all(raw.as_bytes())).await.unwrap();
    let mut all = Vec::new();
    within("read reply", s.read_to_end(&mut all)).await.unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8(all[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: all[split + 4..].to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
    .await
}

#[tokio::test]
async fn serves_the_page_with_content_types_and_refuses_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("assets")).unwrap();
    let index = b"<!doctype html><title>natter</title>".to_vec();
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .chain(0..=255u8)
        .collect();
    std::fs::write(www.join("index.html"), &index).unwrap();
    std::fs::write(www.join("natter_web_bg.wasm"), &wasm).unwrap();
    std::fs::write(www.join("natter_web.js"), b"export default 1;").unwrap();
    std::fs::write(www.join("assets/style.css"), b"body{}").unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"do not serve").unwrap();
    std::fs::write(www.join(".hidden"), b"do not serve").unwrap();

    let server = FakeServer::start().await;
    let bridge = bridge_with(BridgeConfig::local_test(server.addr, www.clone())).await;
    let addr = bridge.local_addr();

    for path in ["/", "/index.html", "/?nick=alice"] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.body, index);
    }
    let r = get(addr, "/natter_web_bg.wasm").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/wasm"));
    assert_eq!(r.header("content-length"), Some(&*wasm.len().to_string()));
    assert_eq!(r.body, wasm);
    let r = get(addr, "/natter_web.js").await;
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let r = get(addr, "/assets/style.css").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/css; charset=utf-8"))
    );

    // HEAD: headers only.
    let r = request(addr, &format!("HEAD / HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(&*index.len().to_string()));
    assert!(r.body.is_empty());

    for bad in [
        "/../secret.txt",
        "/../Cargo.toml",
        "/%2e%2e/secret.txt",
        "/assets/../../secret.txt",
        "/..%2fsecret.txt",
        "/.hidden",
        "/missing.html",
        "/assets",
    ] {
        let r = get(addr, bad).await;
        assert_eq!(r.status, 404, "{bad}");
        assert!(!String::from_utf8_lossy(&r.body).contains("do not serve"));
    }

    // /ws without an upgrade, other methods, garbage.
    assert_eq!(get(addr, "/ws").await.status, 426);
    let r = request(
        addr,
        &format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(request(addr, "NOT HTTP AT ALL\r\n\r\n").await.status, 400);
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(10_000));
    assert_eq!(request(addr, &huge).await.status, 431);

    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn slow_request_heads_time_out() {
    let server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, "/nonexistent".into());
    config.handshake_timeout = std::time::Duration::from_millis(300);
    let bridge = bridge_with(config).await;
    let mut s = within("connect", TcpStream::connect(bridge.local_addr()))
        .await
        .unwrap();
    within("write", s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n"))
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The bridge hangs up (read returns EOF or a reset) instead of waiting forever.
    let r = within("bridge hangs up", s.read_to_end(&mut buf)).await;
    assert!(r.is_err() || buf.is_empty(), "{r:?} {buf:?}");
    within("shutdown", bridge.shutdown()).await.unwrap();
}
