//! The relay against a fake server: framing both ways (batches of whole frames to the browser),
//! limits, close codes, caps, shutdown.

mod common;

use common::*;
use natter_bridge::{Bridge, BridgeConfig};
use natter_core::limits::MAX_FRAME;
use natter_core::wire;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

fn payload(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

/// A fake server, a bridge to it, a browser's WebSocket through the bridge, and the server's side
/// of the connection the bridge opened for it (preamble checked).
async fn relayed() -> (FakeServer, Bridge, Browser, TcpStream) {
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let ws = connect(bridge.local_addr()).await;
    let s = server.accept_checked().await;
    (server, bridge, ws, s)
}

#[tokio::test]
async fn frames_are_relayed_whole_in_both_directions() {
    let (_server, bridge, mut ws, mut s) = relayed().await;

    // Browser -> server: each message becomes exactly one length-prefixed frame.
    let sent = [
        payload(1, 1),
        payload(2, 300),
        payload(3, MAX_FRAME),
        Vec::new(),
    ];
    for p in &sent {
        send_bin(&mut ws, p).await;
    }
    let want: Vec<u8> = sent
        .iter()
        .flat_map(|p| wire::frame_payload(p).unwrap().to_vec())
        .collect();
    assert_eq!(read_n(&mut s, want.len()).await, want);

    // Server -> browser: a frame split across TCP writes (and so reads) arrives whole, with its
    // length prefix, as one message...
    s.set_nodelay(true).unwrap();
    let frame = wire::frame_payload(&payload(9, 5000)).unwrap();
    write_all(&mut s, &frame[..2]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_all(&mut s, &frame[2..1000]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_all(&mut s, &frame[1000..]).await;
    assert_eq!(next_msg(&mut ws).await, Some(Message::Binary(frame)));

    // ...and several frames in one write arrive byte for byte, cut only between frames.
    let several = frames(&[payload(20, 10), payload(30, 0), payload(40, MAX_FRAME)]);
    write_all(&mut s, &several).await;
    assert_eq!(recv_batches(&mut ws, several.len()).await.concat(), several);

    // The browser leaving closes the server connection.
    within("close", ws.close(None)).await.unwrap();
    assert!(sees_eof(&mut s).await);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

/// Frames for these payloads, back to back, as the server would write them.
fn frames(payloads: &[Vec<u8>]) -> Vec<u8> {
    payloads
        .iter()
        .flat_map(|p| wire::frame_payload(p).unwrap().to_vec())
        .collect()
}

/// Binary messages until `total` bytes have come; each must be one or more whole frames.
async fn recv_batches(ws: &mut Browser, total: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut n = 0;
    while n < total {
        match next_msg(ws).await {
            Some(Message::Binary(b)) => {
                assert!(!b.is_empty(), "no empty message");
                assert_eq!(wire::whole_frames_len(&b), Ok(b.len()), "whole frames only");
                n += b.len();
                got.push(b.to_vec());
            }
            other => panic!("expected a batch of frames, got {other:?}"),
        }
    }
    assert_eq!(n, total, "no more than was sent");
    got
}

#[tokio::test]
async fn server_frames_are_batched_per_read() {
    let (_server, bridge, mut ws, mut s) = relayed().await;
    s.set_nodelay(true).unwrap();

    // A hub cycle's worth of small frames in one write comes in fewer messages than frames
    // (one, unless the bridge's read happens to land inside the write).
    let small: Vec<Vec<u8>> = (0..100).map(|i| payload(i, 10)).collect();
    let bytes = frames(&small);
    write_all(&mut s, &bytes).await;
    let batches = recv_batches(&mut ws, bytes.len()).await;
    assert_eq!(batches.concat(), bytes);
    assert!(batches.len() < small.len(), "{} messages", batches.len());

    // A frame cut by a pause: the whole frames before the cut may go ahead, the cut one waits
    // for its rest, and nothing is lost, duplicated or reordered.
    let bytes = frames(&[payload(1, 30), payload(2, 4000), payload(3, 7)]);
    write_all(&mut s, &bytes[..40]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_all(&mut s, &bytes[40..]).await;
    assert_eq!(recv_batches(&mut ws, bytes.len()).await.concat(), bytes);

    // Far more than one read's worth at once (every frame at the limit): the batches stay
    // within the bridge's limits and tungstenite's write buffer.
    let big: Vec<Vec<u8>> = (0..40).map(|i| payload(i, MAX_FRAME)).collect();
    let bytes = frames(&big);
    let writer = tokio::spawn(async move {
        write_all(&mut s, &bytes).await;
        s
    });
    let want = frames(&big);
    let batches = recv_batches(&mut ws, want.len()).await;
    assert!(batches.len() >= 2, "more than one read's worth");
    assert_eq!(batches.concat(), want);
    let _s = within("writer", writer).await.unwrap();
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn oversize_messages_are_closed_with_1009() {
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    // Just over the frame limit (read whole, refused by the relay), and far over it (refused
    // by tungstenite from the frame header).
    for len in [MAX_FRAME + 1, 200 * 1024] {
        let mut ws = connect(bridge.local_addr()).await;
        let mut s = server.accept_checked().await;
        send_bin(&mut ws, &payload(5, 10)).await;
        assert_eq!(
            read_n(&mut s, 14).await,
            wire::frame_payload(&payload(5, 10)).unwrap().to_vec()
        );
        let _ = within(
            "send",
            futures_util::SinkExt::send(&mut ws, Message::Binary(payload(7, len).into())),
        )
        .await;
        assert_eq!(close_code(&mut ws).await, CloseCode::Size, "len {len}");
        // Nothing of the oversize message reaches the server; its connection is closed.
        assert!(sees_eof(&mut s).await, "len {len}");
    }
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn text_messages_are_closed_with_1003() {
    let (_server, bridge, mut ws, mut s) = relayed().await;
    within(
        "send",
        futures_util::SinkExt::send(&mut ws, Message::text("hello")),
    )
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Unsupported);
    assert!(sees_eof(&mut s).await);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

fn status_of(e: WsError) -> u16 {
    match e {
        WsError::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn origin_is_checked() {
    let server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.allowed_origins = vec!["https://chat.example.org".into()];
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();

    for bad in [
        "http://evil.example",
        "https://chat.example.org.evil",
        "null",
    ] {
        let e = connect_origin(addr, Some(bad)).await.expect_err("refused");
        assert_eq!(status_of(e), 403, "{bad}");
    }
    // Another port on the same host is another origin.
    let e = connect_origin(addr, Some(&format!("http://127.0.0.1:{}", addr.port() + 1)))
        .await
        .expect_err("refused");
    assert_eq!(status_of(e), 403);
    // Own origin, a configured extra, and (by default) no Origin at all are accepted.
    for ok in [
        Some(format!("http://{addr}")),
        Some("https://chat.example.org".into()),
        None,
    ] {
        let ws = connect_origin(addr, ok.as_deref()).await;
        assert!(ws.is_ok(), "{ok:?}: {:?}", ws.err());
    }
    within("shutdown", bridge.shutdown()).await.unwrap();

    // With allow_missing_origin off, no Origin is refused too.
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.allow_missing_origin = false;
    let bridge = bridge_with(config).await;
    let e = connect_origin(bridge.local_addr(), None)
        .await
        .expect_err("refused");
    assert_eq!(status_of(e), 403);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_rebound_host_is_refused_and_a_named_one_accepted() {
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.allowed_hosts = vec!["chat.example.org".into()];
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();
    let port = addr.port();

    // A page on evil.example whose name now resolves to the bridge: Host and Origin match.
    let rebound = format!("evil.example:{port}");
    let e = connect_as(addr, Some(&rebound), Some(&format!("http://{rebound}")))
        .await
        .expect_err("refused");
    match e {
        WsError::Http(resp) => {
            assert_eq!(resp.status().as_u16(), 403);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("--allow-host"), "body: {body:?}");
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    // The same under a name the bridge was given, and under localhost, relays.
    for host in [
        format!("chat.example.org:{port}"),
        format!("localhost:{port}"),
    ] {
        let mut ws = connect_as(addr, Some(&host), Some(&format!("http://{host}")))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e:?}"));
        let mut s = server.accept_checked().await;
        send_bin(&mut ws, b"hello").await;
        let want = wire::frame_payload(b"hello").unwrap();
        assert_eq!(read_n(&mut s, want.len()).await, want.to_vec(), "{host}");
    }
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn server_down_gives_a_prompt_clean_close() {
    // A port with nothing listening on it.
    let (_held, dead) = refusing_addr();
    let bridge = bridge(dead).await;
    let mut ws = connect(bridge.local_addr()).await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(close_code(&mut ws).await, CloseCode::Again);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn server_closing_closes_the_websocket() {
    let (mut server, bridge, mut ws, mut s) = relayed().await;
    // A last frame before the close still arrives.
    write_all(&mut s, &wire::frame_payload(b"bye").unwrap()).await;
    drop(s);
    assert_eq!(
        next_msg(&mut ws).await,
        Some(Message::Binary(wire::frame_payload(b"bye").unwrap()))
    );
    assert_eq!(close_code(&mut ws).await, CloseCode::Normal);

    // A server sending an oversize length prefix is cut off with 1011.
    let mut ws = connect(bridge.local_addr()).await;
    let mut s = server.accept_checked().await;
    write_all(&mut s, &((MAX_FRAME + 1) as u32).to_be_bytes()).await;
    assert_eq!(close_code(&mut ws).await, CloseCode::Error);
    assert!(sees_eof(&mut s).await);
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn fifty_browsers_each_get_their_own_connection() {
    const N: usize = 50;
    const ROUNDS: usize = 5;
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let addr = bridge.local_addr();

    // The fake server echoes every frame on every connection it gets, and counts connections.
    let (count_tx, mut count_rx) = tokio::sync::mpsc::channel::<()>(N);
    let echo = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..N {
            let mut s = server.accept_checked().await;
            let _ = count_tx.send(()).await;
            tasks.push(tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });

    let mut browsers = Vec::new();
    for i in 0..N {
        browsers.push(tokio::spawn(async move {
            let mut ws = connect(addr).await;
            for round in 0..ROUNDS {
                let msg = format!("browser {i} round {round}").into_bytes();
                send_bin(&mut ws, &msg).await;
                let echo = wire::frame_payload(&msg).unwrap();
                assert_eq!(next_msg(&mut ws).await, Some(Message::Binary(echo)));
            }
            within("close", ws.close(None)).await.unwrap();
        }));
    }
    for b in browsers {
        within("browser finishes", b).await.unwrap();
    }
    let mut conns = 0;
    while count_rx.try_recv().is_ok() {
        conns += 1;
    }
    assert_eq!(conns, N, "one server connection per browser");
    within("echo server ends", echo).await.unwrap();
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn per_ip_cap_refuses_the_extra_connection() {
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.max_connections_per_ip = 2;
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();
    let a = connect(addr).await;
    let _b = connect(addr).await;
    let _sa = server.accept_checked().await;
    let _sb = server.accept_checked().await;
    let third = connect_origin(addr, Some(&format!("http://{addr}"))).await;
    assert_eq!(
        status_of(third.expect_err("third connection from one IP refused")),
        503
    );
    // A slot frees up when a browser leaves.
    drop(a);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(ws) = connect_origin(addr, Some(&format!("http://{addr}"))).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "slot given back after a disconnect");
    within("shutdown", bridge.shutdown()).await.unwrap();
}

/// Opens `/ws` on `bridge` over a TCP connection that starts with `header` (a proxy's PROXY
/// header), as the bridge's own page would.
async fn through_proxy(bridge: std::net::SocketAddr, header: &[u8]) -> Result<(), WsError> {
    let mut tcp = within("connect", TcpStream::connect(bridge)).await.unwrap();
    tcp.write_all(header).await.unwrap();
    let req = tokio_tungstenite::tungstenite::handshake::client::Request::builder()
        .uri(format!("ws://{bridge}/ws"))
        .header("host", bridge.to_string())
        .header("origin", format!("http://{bridge}"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header(
            "sec-websocket-key",
            tokio_tungstenite::tungstenite::handshake::client::generate_key(),
        )
        .body(())
        .unwrap();
    let (ws, _) = within("handshake", tokio_tungstenite::client_async(req, tcp)).await?;
    // Kept open for the rest of the test: its slot counts.
    std::mem::forget(ws);
    Ok(())
}

/// The server's side of the bridge's next connection, its `Forwarded` checked to name `peer`.
async fn forwarded_as(server: &mut FakeServer, peer: &str) -> TcpStream {
    let mut s = within("bridge connects to the server", server.conns.recv())
        .await
        .expect("fake server running");
    let want = wire::bridge_preamble(peer, natter_core::hub::TEST_BRIDGE_SECRET);
    let mut got = vec![0u8; want.len()];
    within("preamble", s.read_exact(&mut got)).await.unwrap();
    assert_eq!(got, want, "Forwarded names {peer}");
    s
}

/// Issue 18 asked for PROXY headers on the bridge too: behind HAProxy or nginx `stream`, every
/// browser was the proxy's address, to the bridge's per-address cap (50 browsers for the whole
/// site) and to the server's limits (30 new connections per 10 s for everyone).
#[tokio::test]
async fn a_trusted_proxy_names_each_browser_and_the_caps_count_browsers() {
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.max_connections_per_ip = 1;
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let proxied = bridge_with(config).await;
    let addr = proxied.local_addr();
    through_proxy(addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n")
        .await
        .expect("the first browser");
    let _s1 = forwarded_as(&mut server, "203.0.113.7").await;
    // Version 2, another browser: its own slot, though the proxy's address is the same.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[203, 0, 113, 8, 127, 0, 0, 1, 0x9c, 0x41, 0x1f, 0x90]);
    through_proxy(addr, &v2).await.expect("the second browser");
    let _s2 = forwarded_as(&mut server, "203.0.113.8").await;
    // The first browser again: over its cap of 1.
    let again = through_proxy(addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 8080\r\n").await;
    assert_eq!(status_of(again.expect_err("over the cap")), 503);
    // A connection without a header is the proxy's own, and counted as it.
    let _own = connect(addr).await;
    let _s3 = forwarded_as(&mut server, "127.0.0.1").await;
    within("shutdown", proxied.shutdown()).await.unwrap();

    // From an address not trusted as a proxy, the header is not read: a bad request.
    let plain = bridge(server.addr).await;
    let mut tcp = within("connect", TcpStream::connect(plain.local_addr()))
        .await
        .unwrap();
    tcp.write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within("the answer and the close", tcp.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert!(server.conns.try_recv().is_err(), "nothing relayed");
    within("shutdown", plain.shutdown()).await.unwrap();
}

/// Opens `/ws` on `bridge` as an HTTP reverse proxy would pass a browser's upgrade on (nginx
/// `proxy_pass` with `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`): with these
/// `X-Forwarded-For` headers.
async fn through_http_proxy(
    bridge: std::net::SocketAddr,
    forwarded_for: &[&str],
) -> Result<Browser, WsError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut req = format!("ws://{bridge}/ws").into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert(
        "origin",
        HeaderValue::from_str(&format!("http://{bridge}")).unwrap(),
    );
    for v in forwarded_for {
        headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
    }
    within("handshake", tokio_tungstenite::connect_async(req))
        .await
        .map(|(ws, _)| ws)
}

/// Behind an HTTP reverse proxy (nginx `proxy_pass` with the WebSocket upgrade) every browser
/// was the proxy's address: on the bridge (its per-address cap, 50 browsers for the whole site)
/// and on the server (rate limits, bans by address), since the bridge read no
/// `X-Forwarded-For`. From a trusted proxy it now takes the rightmost address there that is not a
/// trusted proxy, counts it and names it to the server; from anyone else the header is ignored.
#[tokio::test]
async fn a_trusted_http_proxys_x_forwarded_for_names_each_browser() {
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.max_connections_per_ip = 1;
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let proxied = bridge_with(config).await;
    let addr = proxied.local_addr();
    // What the browser wrote itself (left) is not believed: nginx appended its real address.
    let _b1 = through_http_proxy(addr, &["6.6.6.6, 203.0.113.7"])
        .await
        .expect("the first browser");
    let _s1 = forwarded_as(&mut server, "203.0.113.7").await;
    // Another browser through the same proxy: its own slot under the cap of 1, and two
    // headers are one list.
    let _b2 = through_http_proxy(addr, &["6.6.6.6", "2001:db8::8"])
        .await
        .expect("the second browser");
    let _s2 = forwarded_as(&mut server, "2001:db8::8").await;
    // The first browser again: over its cap.
    let again = through_http_proxy(addr, &["203.0.113.7"]).await;
    assert_eq!(status_of(again.expect_err("over the cap")), 503);
    // The proxy naming itself last (a chain of two trusted hops): the one before it.
    let _b3 = through_http_proxy(addr, &["203.0.113.9, 127.0.0.1"])
        .await
        .expect("through two proxies");
    let _s3 = forwarded_as(&mut server, "203.0.113.9").await;
    // An entry the proxy vouches for that is not an address: the proxy is set up wrong, 400.
    let bad = through_http_proxy(addr, &["203.0.113.10, unknown"]).await;
    assert_eq!(status_of(bad.expect_err("bad X-Forwarded-For")), 400);
    // No header: the proxy's own connection, counted as it.
    let _own = connect(addr).await;
    let _s4 = forwarded_as(&mut server, "127.0.0.1").await;
    within("shutdown", proxied.shutdown()).await.unwrap();

    // From an address not trusted as a proxy, the header is ignored: the socket's address.
    let plain = bridge(server.addr).await;
    let _b = through_http_proxy(plain.local_addr(), &["203.0.113.7"])
        .await
        .expect("a browser");
    let _s = forwarded_as(&mut server, "127.0.0.1").await;
    within("shutdown", plain.shutdown()).await.unwrap();
}

/// Issue 18, finding 7: a connection over the total cap used to wait unseen in the listen
/// backlog; now it is answered 503 at once, before it has sent anything.
#[tokio::test]
async fn over_the_total_cap_a_connection_gets_503_at_once() {
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.max_connections = 1;
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();
    let mut first = connect(addr).await;
    let _s1 = server.accept_checked().await;

    let mut raw = within("connect", TcpStream::connect(addr)).await.unwrap();
    let mut answer = Vec::new();
    within("the 503 and the close", raw.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    // A WebSocket client gets it as the answer to its handshake.
    let refused = connect_origin(addr, Some(&format!("http://{addr}"))).await;
    assert_eq!(status_of(refused.expect_err("over the cap")), 503);

    // Once the first leaves, its slot serves a new connection.
    within("close", first.close(None)).await.unwrap();
    let mut again = None;
    for _ in 0..50 {
        if let Ok(ws) = connect_origin(addr, Some(&format!("http://{addr}"))).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "slot given back after a disconnect");
    let _s2 = server.accept_checked().await;
    within("shutdown", bridge.shutdown()).await.unwrap();
}

/// Issue 18, finding 7: the handshake has one budget, counted from the accept. A head that is
/// still coming when it runs out is cut then (not after a second budget for the WebSocket
/// handshake); one that completes within it is answered, however late in it.
#[tokio::test]
async fn the_handshake_has_one_budget_from_the_accept() {
    const BUDGET: Duration = Duration::from_millis(1000);
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.handshake_timeout = BUDGET;
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );

    // Trickled a byte every 20 ms: never complete within the budget. Cut at the budget.
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    let t0 = tokio::time::Instant::now();
    let (mut rx, mut tx) = s.split();
    let trickle = async {
        for b in head.as_bytes() {
            if tx.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::future::pending::<()>().await;
    };
    let mut got = Vec::new();
    let cut = tokio::select! {
        r = within("the bridge cuts the trickle", rx.read_to_end(&mut got)) => r,
        _ = trickle => unreachable!("pending"),
    };
    let took = t0.elapsed();
    assert!(cut.is_err() || got.is_empty(), "{cut:?} {got:?}");
    assert!(
        took >= BUDGET - Duration::from_millis(100) && took < 2 * BUDGET,
        "cut after {took:?} (budget {BUDGET:?})"
    );

    // The same head sent in three parts, the last at 70 % of the budget: a WebSocket.
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    let bytes = head.as_bytes();
    let third = bytes.len() / 3;
    for (i, part) in [
        &bytes[..third],
        &bytes[third..2 * third],
        &bytes[2 * third..],
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            tokio::time::sleep(BUDGET * 35 / 100).await;
        }
        within("write", s.write_all(part)).await.unwrap();
    }
    let mut answer = [0u8; 12];
    within("the 101", s.read_exact(&mut answer)).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 101");
    let _relayed = server.accept_checked().await;
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn silent_browsers_are_dropped_live_ones_kept() {
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    // Idle limit 700 ms: generous for a loaded test machine, still far below the step timeout.
    config.ping_interval = Duration::from_millis(100);
    config.ping_timeout = Duration::from_millis(600);
    let bridge = bridge_with(config).await;

    // A live browser keeps reading, so tungstenite answers the bridge's pings.
    let mut live = connect(bridge.local_addr()).await;
    let mut live_s = server.accept_checked().await;
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut live)).await
        {
            if matches!(m, Message::Ping(_)) {
                pings += 1;
            }
        }
        (pings, live)
    });
    // A dead one never reads, so never answers.
    let _dead = connect(bridge.local_addr()).await;
    let mut dead_s = server.accept_checked().await;
    assert!(sees_eof(&mut dead_s).await, "silent browser dropped");

    let (pings, mut live) = within("reader", reader).await.unwrap();
    assert!(pings >= 3, "pings seen: {pings}");
    // Still relaying after several idle periods.
    write_all(&mut live_s, &wire::frame_payload(b"still here").unwrap()).await;
    assert_eq!(
        next_msg(&mut live).await,
        Some(Message::Binary(wire::frame_payload(b"still here").unwrap()))
    );
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_and_stops_listening() {
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let addr = bridge.local_addr();
    let mut ws = connect(addr).await;
    let mut s = server.accept_checked().await;
    let closing = tokio::spawn(async move { close_code(&mut ws).await });
    let t0 = tokio::time::Instant::now();
    within("shutdown", bridge.shutdown()).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(within("close", closing).await.unwrap(), CloseCode::Away);
    assert!(sees_eof(&mut s).await);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_browser_that_stops_reading_is_dropped_after_the_write_timeout() {
    // SECURITY.md: a browser that does not take what the server sends is dropped within
    // `write_timeout`, and its server connection closed, instead of holding the relay forever.
    let mut server = FakeServer::start().await;
    let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
    config.write_timeout = Duration::from_millis(300);
    let bridge = bridge_with(config).await;
    // This browser never reads again.
    let _stuck = connect(bridge.local_addr()).await;
    let s = server.accept_checked().await;
    let (mut from_bridge, mut to_bridge) = s.into_split();
    // The server sends until the bridge stops taking it (the browser's socket buffers full);
    // bounded: 8192 frames at most, each write at most a step.
    let frame = wire::frame_payload(&payload(7, MAX_FRAME)).unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..8192 {
            match tokio::time::timeout(STEP, to_bridge.write_all(&frame)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    });
    let t0 = tokio::time::Instant::now();
    let mut b = [0u8; 64];
    assert!(
        matches!(
            within(
                "the bridge closes the server connection",
                from_bridge.read(&mut b)
            )
            .await,
            Ok(0) | Err(_)
        ),
        "the bridge closed the stuck browser's server connection"
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "not before the write timeout: {waited:?}"
    );
    writer.abort();
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_accepts_the_connection_is_given_up_after_connect_timeout() {
    // SECURITY.md: the bridge's connect to the server is bounded by `connect_timeout`. A listener
    // whose accept queue is full and never accepted drops new SYNs, so a connect to it never
    // completes (the kernel would retry for minutes).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(1).unwrap();
    let addr = full.local_addr().unwrap();
    let mut queued = Vec::new();
    let mut hangs = false;
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => queued.push(s),
            Ok(Err(e)) => panic!("connect failed instead of hanging: {e}"),
            Err(_) => {
                hangs = true;
                break;
            }
        }
    }
    assert!(hangs, "the full listener still completes connections");
    let mut config = BridgeConfig::local_test(addr, PathBuf::from("/nonexistent"));
    config.connect_timeout = Duration::from_millis(400);
    let bridge = bridge_with(config).await;
    let mut ws = connect(bridge.local_addr()).await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(close_code(&mut ws).await, CloseCode::Again);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "the connect was tried, not refused: {waited:?}"
    );
    within("shutdown", bridge.shutdown()).await.unwrap();
    drop((queued, full));
}

/// A connection with nothing to finish does not hold the shutdown: a trusted proxy's whose
/// PROXY header is not in yet, and one still in its TLS handshake, are closed at once, as a
/// request head still coming is. Until the forty-first session each held the shutdown for the
/// whole grace period (the header and the handshake may take the handshake budget).
#[tokio::test]
async fn a_connection_with_nothing_to_finish_is_closed_at_once_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let ca = natter_tls::dev_ca::DevCa::new("natter test CA").unwrap();
    let (cert, key) = ca
        .leaf(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir.path())
        .unwrap();
    let server = FakeServer::start().await;
    let proxy = |c: &mut BridgeConfig| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let tls = |c: &mut BridgeConfig| {
        c.tls = Some(natter_bridge::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    };
    /// What the case is, what it sets up, what the connection sends.
    type Case<'a> = (&'a str, &'a dyn Fn(&mut BridgeConfig), &'a [u8]);
    let cases: [Case; 4] = [
        ("a proxy's connection, no byte yet", &proxy, b""),
        (
            "a proxy's connection, half a PROXY header",
            &proxy,
            b"PROXY TCP4 203.0.113.7",
        ),
        ("a TLS connection, no byte yet", &tls, b""),
        (
            "a TLS connection, half a ClientHello",
            &tls,
            &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01],
        ),
    ];
    for (what, set, sent) in cases {
        let mut config = BridgeConfig::local_test(server.addr, PathBuf::from("/nonexistent"));
        config.shutdown_grace = Duration::from_secs(4);
        config.handshake_timeout = Duration::from_secs(10);
        set(&mut config);
        let bridge = bridge_with(config).await;
        let mut tcp = within("connect", TcpStream::connect(bridge.local_addr()))
            .await
            .unwrap();
        within("write", tcp.write_all(sent)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t0 = tokio::time::Instant::now();
        within("shutdown", bridge.shutdown()).await.unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{what}: the shutdown took {:?} (grace 4 s)",
            t0.elapsed()
        );
        assert!(sees_eof(&mut tcp).await, "{what}: closed");
    }
}
