//! Issue 21: `--metrics-listen`. Browsers (WebSockets driving core's `Session`, as the page does)
//! connect and chat through a real natter-server while `/metrics` is scraped and parsed with a
//! Prometheus text parser: the counters move as they should. `/healthz` and `/readyz` follow the
//! bridge and the server.

mod common;

use common::user::User;
use common::*;
use natter_bridge::BridgeConfig;
use natter_core::session::{Event, Transport};
use natter_core::wire::EventKind;
use natter_server::ServerConfig;
use prometheus_parse::{Scrape, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RUN: Duration = Duration::from_secs(10);

/// `GET path` on the metrics endpoint: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", s.write_all(req.as_bytes())).await.unwrap();
    let mut all = Vec::new();
    within("read", s.read_to_end(&mut all)).await.unwrap();
    let all = String::from_utf8(all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("parses as Prometheus text")
}

/// The value of the sample `metric` whose labels include `labels` (OpenMetrics counters come out
/// untyped from this parser: their `_total` name differs from their TYPE line's).
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = s
        .samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)));
    match found.map(|x| &x.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{metric} {labels:?}: {other:?} in {:#?}", s.samples),
    }
}

fn said(ev: &Event, text: &str) -> bool {
    matches!(ev, Event::Room(r) if matches!(&r.kind, EventKind::Say { text: t, .. } if t.as_str() == text))
}

fn joined(ev: &Event) -> bool {
    matches!(ev, Event::Joined { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_browsers_chat_through_a_real_server() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let mut config = BridgeConfig::local_test(server.local_addrs()[0], "/nonexistent".into());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    config.allowed_hosts = vec!["chat.example.org".into()];
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();
    let m = bridge.metrics_addr().expect("metrics are served");

    let before = scrape(m).await;
    assert_eq!(value(&before, "natter_bridge_websocket_sessions", &[]), 0.0);
    for dir in ["to_server", "to_browser"] {
        let d = [("direction", dir)];
        assert_eq!(value(&before, "natter_bridge_relayed_bytes_total", &d), 0.0);
        assert_eq!(
            value(&before, "natter_bridge_relay_latency_seconds_count", &d),
            0.0
        );
    }
    assert_eq!(get(m, "/healthz").await.0, 200);
    assert_eq!(get(m, "/readyz").await, (200, "ready\n".into()));

    let mut alice = User::new("alice", addr, Transport::Messages, 1);
    let mut bob = User::new("bob", addr, Transport::Messages, 2);
    alice.run_until("alice joins", RUN, joined).await;
    bob.run_until("bob joins", RUN, joined).await;
    alice.say("counted").await;
    bob.run_until("bob hears alice", RUN, |e| said(e, "counted"))
        .await;
    alice
        .run_until("alice's echo", RUN, |e| said(e, "counted"))
        .await;

    let during = scrape(m).await;
    assert_eq!(value(&during, "natter_bridge_websocket_sessions", &[]), 2.0);
    assert!(value(&during, "natter_bridge_connections_total", &[]) >= 2.0);
    for dir in ["to_server", "to_browser"] {
        let d = [("direction", dir)];
        let bytes = value(&during, "natter_bridge_relayed_bytes_total", &d);
        // Two Hellos, a Say ("counted"), each with a 4-byte prefix; the other way two Welcomes,
        // joins, and the message twice.
        assert!(bytes > 40.0, "{dir}: {bytes} bytes");
        let relays = value(&during, "natter_bridge_relay_latency_seconds_count", &d);
        assert!(relays >= 2.0, "{dir}: {relays} relays timed");
        let sum = value(&during, "natter_bridge_relay_latency_seconds_sum", &d);
        assert!(
            sum > 0.0 && sum < relays,
            "{dir}: {sum} s over {relays} relays"
        );
    }

    // Refusals are counted by reason: a wrong Origin, a rebound Host, a bad handshake.
    assert!(
        connect_origin(addr, Some("http://evil.example"))
            .await
            .is_err()
    );
    let rebound = format!("evil.example:{}", addr.port());
    assert!(
        connect_as(addr, Some(&rebound), Some(&format!("http://{rebound}")))
            .await
            .is_err()
    );
    let mut raw = within("connect", TcpStream::connect(addr)).await.unwrap();
    let bad = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\r\n");
    within("write", raw.write_all(bad.as_bytes()))
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = within("answer", raw.read_to_end(&mut answer)).await;
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");

    // Bob leaves: one session left, one ended because the browser closed it.
    let bob_msgs = bob.events.len();
    bob.say("/quit").await;
    bob.run(Duration::from_millis(300), |_| false).await;
    let mut after = scrape(m).await;
    for _ in 0..50 {
        if value(&after, "natter_bridge_websocket_sessions", &[]) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape(m).await;
    }
    assert_eq!(
        value(&after, "natter_bridge_websocket_sessions", &[]),
        1.0,
        "bob's events: {:?}",
        &bob.events[bob_msgs..]
    );
    let ended: f64 = ["browser_closed", "browser_gone", "server_closed"]
        .iter()
        .map(|r| {
            value(
                &after,
                "natter_bridge_websocket_sessions_ended_total",
                &[("reason", r)],
            )
        })
        .sum();
    assert_eq!(ended, 1.0);

    // A browser whose tab or network goes away (its socket closes with no close frame) is
    // `browser_gone`, not a protocol error (it was counted as one until the twenty-ninth
    // session's hostile-input pass), so the operator can tell attacks from closed tabs.
    let gone = |s: &Scrape| {
        value(
            s,
            "natter_bridge_websocket_sessions_ended_total",
            &[("reason", "browser_gone")],
        )
    };
    let gone_before = gone(&after);
    let tab = connect_origin(addr, None).await.expect("upgraded");
    let mut wait = scrape(m).await;
    for _ in 0..50 {
        if value(&wait, "natter_bridge_websocket_sessions", &[]) == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        wait = scrape(m).await;
    }
    assert_eq!(value(&wait, "natter_bridge_websocket_sessions", &[]), 2.0);
    drop(tab);
    let mut after = scrape(m).await;
    for _ in 0..50 {
        if value(&after, "natter_bridge_websocket_sessions", &[]) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape(m).await;
    }
    assert_eq!(gone(&after), gone_before + 1.0);
    assert_eq!(
        value(
            &after,
            "natter_bridge_websocket_sessions_ended_total",
            &[("reason", "browser_protocol_error")],
        ),
        0.0
    );
    for (reason, n) in [
        ("origin", 1.0),
        ("host", 1.0),
        ("handshake", 1.0),
        ("capacity", 0.0),
    ] {
        assert_eq!(
            value(&after, "natter_bridge_refused_total", &[("reason", reason)]),
            n,
            "{reason}"
        );
    }
    // Counters only grow.
    for dir in ["to_server", "to_browser"] {
        let d = [("direction", dir)];
        assert!(
            value(&after, "natter_bridge_relayed_bytes_total", &d)
                >= value(&during, "natter_bridge_relayed_bytes_total", &d)
        );
    }

    // natter-server goes away: the bridge is alive but not ready (alice's relay sees the server
    // close, and her reconnect fails to reach it).
    within("server shutdown", server.shutdown()).await.unwrap();
    let mut ready = get(m, "/readyz").await;
    for _ in 0..100 {
        if ready.0 == 503 {
            break;
        }
        alice.run(Duration::from_millis(100), |_| false).await;
        ready = get(m, "/readyz").await;
    }
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(ready.1.contains("does not accept connections"), "{ready:?}");
    assert_eq!(get(m, "/healthz").await.0, 200);

    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    assert!(
        TcpStream::connect(m).await.is_err(),
        "the metrics endpoint stops with the bridge"
    );
}

/// A request to `/ws` that is not a WebSocket handshake (what a reverse proxy without the
/// Upgrade lines sends on for every browser: nginx's default is HTTP/1.0 and `Connection:
/// close`) is a refused handshake in the metrics and one line of the log. It was answered 426
/// with neither, so such a proxy left the operator nothing to see but browsers that never
/// connected.
#[tokio::test]
async fn a_request_on_ws_without_the_upgrade_header_is_counted_as_a_refused_handshake() {
    let mut config =
        BridgeConfig::local_test("127.0.0.1:1".parse().unwrap(), "/nonexistent".into());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let bridge = bridge_with(config).await;
    let (addr, m) = (bridge.local_addr(), bridge.metrics_addr().unwrap());
    let handshakes =
        |s: &Scrape| value(s, "natter_bridge_refused_total", &[("reason", "handshake")]);
    assert_eq!(handshakes(&scrape(m).await), 0.0);
    for (request, status, counted) in [
        (
            "GET /ws HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            "426",
            1.0,
        ),
        (
            "POST /ws HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n",
            "405",
            2.0,
        ),
        // A page that is not there is not a handshake.
        (
            "GET /nothing.js HTTP/1.1\r\nHost: {addr}\r\n\r\n",
            "404",
            2.0,
        ),
    ] {
        let mut raw = within("connect", TcpStream::connect(addr)).await.unwrap();
        let request = request.replace("{addr}", &addr.to_string());
        within("write", raw.write_all(request.as_bytes()))
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = within("answer", raw.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.") && answer.split(' ').nth(1) == Some(status),
            "{request}: {answer}"
        );
        assert_eq!(handshakes(&scrape(m).await), counted, "{request}");
    }
    within("bridge shutdown", bridge.shutdown()).await.unwrap();
}
