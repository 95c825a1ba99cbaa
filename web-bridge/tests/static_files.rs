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
        // No other site may frame the page (it signs in with its origin's device key there).
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            r.header("content-security-policy"),
            Some("frame-ancestors 'none'"),
            "{path}"
        );
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

/// A page directory with a wasm file and the `.br`/`.gz` beside it that `cargo xtask web` writes
/// (their contents are stand-ins: the bridge sends them as they are).
fn precompressed_page() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path();
    let wasm: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(www.join("index.html"), b"<!doctype html>").unwrap();
    std::fs::write(www.join("natter_web_bg.wasm"), &wasm).unwrap();
    std::fs::write(www.join("natter_web_bg.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(www.join("natter_web_bg.wasm.gz"), b"gzip bytes").unwrap();
    (dir, wasm)
}

async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Reply {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n"),
    )
    .await
}

#[tokio::test]
async fn precompressed_files_validators_and_cache_headers() {
    let (dir, wasm) = precompressed_page();
    let server = FakeServer::start().await;
    let bridge = bridge_with(BridgeConfig::local_test(
        server.addr,
        dir.path().to_path_buf(),
    ))
    .await;
    let addr = bridge.local_addr();

    // The encoding the browser takes, brotli first; the type stays the file's.
    for (accept, encoding, body) in [
        (
            "Accept-Encoding: gzip, deflate, br, zstd\r\n",
            Some("br"),
            &b"brotli bytes"[..],
        ),
        (
            "Accept-Encoding: gzip\r\n",
            Some("gzip"),
            &b"gzip bytes"[..],
        ),
        ("", None, &wasm[..]),
    ] {
        let r = get_with(addr, "/natter_web_bg.wasm", accept).await;
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(r.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(r.header("content-type"), Some("application/wasm"));
        assert_eq!(r.header("vary"), Some("accept-encoding"));
        assert_eq!(r.body, body, "{accept:?}");
    }

    // Validators, and the answers to them.
    let r = get(addr, "/natter_web_bg.wasm").await;
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let etag = r.header("etag").expect("an ETag").to_owned();
    let modified = r.header("last-modified").expect("Last-Modified").to_owned();
    let r = get_with(
        addr,
        "/natter_web_bg.wasm",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(&*etag));
    let r = get_with(
        addr,
        "/natter_web_bg.wasm",
        &format!("If-Modified-Since: {modified}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = get_with(
        addr,
        "/natter_web_bg.wasm",
        "If-None-Match: \"another\"\r\n",
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, wasm.len()));
    // The compressed representation has an ETag of its own.
    let r = get_with(addr, "/natter_web_bg.wasm", "Accept-Encoding: br\r\n").await;
    assert_ne!(r.header("etag"), Some(&*etag));
    // A range of the file.
    let r = get_with(addr, "/natter_web_bg.wasm", "Range: bytes=10-19\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &wasm[10..20]);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn stale_precompressed_files_are_not_served() {
    let (dir, wasm) = precompressed_page();
    // The wasm was rebuilt after its .br and .gz were made.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("natter_web_bg.wasm"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let server = FakeServer::start().await;
    let bridge = bridge_with(BridgeConfig::local_test(
        server.addr,
        dir.path().to_path_buf(),
    ))
    .await;
    let r = get_with(
        bridge.local_addr(),
        "/natter_web_bg.wasm",
        "Accept-Encoding: br, gzip\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, wasm);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn request_head_limits() {
    let server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let addr = bridge.local_addr();
    // 32 headers pass (and find no file), 33 are too many.
    let headers = |n: usize| (0..n).map(|i| format!("X-{i}: y\r\n")).collect::<String>();
    assert_eq!(get_with(addr, "/", &headers(31)).await.status, 404);
    assert_eq!(get_with(addr, "/", &headers(33)).await.status, 431);
    // A head just under 8 KiB passes, one over is refused.
    let pad = |n: usize| format!("X-Pad: {}\r\n", "a".repeat(n));
    assert_eq!(get_with(addr, "/", &pad(7000)).await.status, 404);
    assert_eq!(get_with(addr, "/", &pad(9000)).await.status, 431);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

/// Random bytes as a request head: the bridge answers with a status of its own or closes, within
/// the step time, and still serves afterwards (no panic, no hang).
#[test]
fn random_request_heads_are_answered_or_closed() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, bridge) = rt.block_on(async {
        let server = FakeServer::start().await;
        let b = bridge(server.addr).await;
        (server, b)
    });
    let addr = bridge.local_addr();
    let config = proptest::test_runner::Config {
        cases: 48,
        ..Default::default()
    };
    let line = proptest::collection::vec(proptest::num::u8::ANY, 0..300);
    let prefixes = proptest::sample::select(vec![
        &b""[..],
        b"GET / HTTP/1.1\r\n",
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n",
    ]);
    proptest::proptest!(config, |(prefix in prefixes, junk in line)| {
        let mut raw = prefix.to_vec();
        raw.extend_from_slice(&junk);
        raw.extend_from_slice(b"\r\n\r\n");
        let answer = rt.block_on(async {
            let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
            let _ = within("write", s.write_all(&raw)).await;
            let mut all = Vec::new();
            // The bridge's handshake budget in local_test is 5 s: a head that is not complete
            // (junk that never ends one) is cut then, within the step time.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(8),
                s.read_to_end(&mut all),
            )
            .await
            .expect("answered or closed");
            all
        });
        let text = String::from_utf8_lossy(&answer);
        proptest::prop_assert!(
            answer.is_empty() || ["400", "404", "405", "426", "431"].iter().any(|c| text.starts_with(&format!("HTTP/1.1 {c} "))),
            "{raw:?} -> {text:?}"
        );
    });
    rt.block_on(async {
        assert_eq!(get(addr, "/").await.status, 404, "still serving");
        within("shutdown", bridge.shutdown()).await.unwrap();
        drop(server);
    });
}

/// A page directory holding one file of 32 MiB (`/big.wasm`), more than the sockets' buffers
/// take: its answer is in progress for as long as its reader does not read.
fn big_page() -> (tempfile::TempDir, usize) {
    const BIG: usize = 32 << 20;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.wasm"), vec![b'n'; BIG]).unwrap();
    (dir, BIG)
}

/// A page request that has sent its head and read `first` bytes of the answer.
async fn reading_big(addr: SocketAddr, first: usize) -> TcpStream {
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    let head = format!("GET /big.wasm HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", s.write_all(head.as_bytes())).await.unwrap();
    let mut start = vec![0u8; first];
    within("the answer starts", s.read_exact(&mut start))
        .await
        .unwrap();
    assert!(start.starts_with(b"HTTP/1.1 200 "));
    s
}

/// A page answer goes on past the handshake budget (up to `PAGE_TIMEOUT`) and through a
/// shutdown: a reader gets the whole file, and the shutdown ends once it is out; one that does
/// not read holds the shutdown for the grace period, then is cut. Until the forty-first
/// session the answer was taken for a request head still coming (the phase was read before the
/// wait, the service changes it during it): cut at the handshake budget, and dropped at once
/// on shutdown, as a 32 MB page to a browser that did not read was seen to be.
#[tokio::test]
async fn a_page_answer_goes_on_past_the_handshake_budget_and_through_a_shutdown() {
    use std::time::{Duration, Instant};
    let (dir, size) = big_page();
    let server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, dir.path().to_path_buf());
    config.handshake_timeout = Duration::from_millis(300);
    config.shutdown_grace = Duration::from_secs(3);
    let bridge = bridge_with(config.clone()).await;
    let mut s = reading_big(bridge.local_addr(), 64 * 1024).await;
    // Past the handshake budget, the answer half sent.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let began = Instant::now();
    let stopping = tokio::spawn(bridge.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rest = Vec::new();
    within("the rest of the answer", s.read_to_end(&mut rest))
        .await
        .expect("the answer goes on");
    let got = 64 * 1024 + rest.len();
    assert!(got > size, "{got} bytes of a {size}-byte file and its head");
    assert!(rest.ends_with(b"nnnn"));
    within("shutdown", stopping).await.unwrap().unwrap();
    assert!(
        began.elapsed() < Duration::from_millis(2500),
        "the shutdown waited {:?} after the answer was out",
        began.elapsed()
    );

    // A reader that reads no more: the shutdown waits out its grace (1 s here), no longer.
    config.shutdown_grace = Duration::from_secs(1);
    let bridge = bridge_with(config).await;
    let mut s = reading_big(bridge.local_addr(), 64 * 1024).await;
    let began = Instant::now();
    within("shutdown", bridge.shutdown()).await.unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "the shutdown took {took:?} with an answer in progress (grace 1 s)"
    );
    let mut rest = Vec::new();
    let _ = within("cut", s.read_to_end(&mut rest)).await;
    assert!(64 * 1024 + rest.len() < size, "the answer was cut");
}
