//! natter-bridge with TLS on both sides, real certificates from a throwaway CA (rcgen): the
//! page over https and the socket as wss, the https origin rule, the bridge reaching the
//! server's TLS listener (an untrusted certificate closes the WebSocket with 1013), and the
//! certificate reloaded.

mod common;

use common::{STEP, within};
use futures_util::{SinkExt, StreamExt};
use natter_bridge::{Bridge, BridgeConfig, ServerTls, TlsFiles};
use natter_core::wire::{
    ClientMsg, FrameDecoder, PROTOCOL_VERSION, ServerMsg, decode_payload, encode_frame,
};
use natter_core::{MsgId, Nick, RoomName, Text};
use natter_server::{Server, ServerConfig, TlsCerts};
use natter_tls::dev_ca::DevCa;
use natter_tls::{Trust, client_config, server_name};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Tls = natter_tls::client::TlsStream<TcpStream>;

struct Setup {
    dir: tempfile::TempDir,
    ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    www: PathBuf,
    server: Server,
}

const PAGE: &str = "<!doctype html><title>natter over https</title>";

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("natter test CA").unwrap();
    let (cert, key) = ca
        .leaf(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir.path())
        .unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), PAGE).unwrap();
    let mut c = ServerConfig::local_test();
    c.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    c.tls_certs = Some(TlsCerts {
        cert: cert.clone(),
        key: key.clone(),
    });
    let server = natter_server::start(c).await.unwrap();
    Setup {
        dir,
        ca_file,
        cert,
        key,
        www,
        server,
    }
}

/// A bridge serving https with the setup's certificate, relaying to `server` (plain).
async fn https_bridge(s: &Setup) -> Bridge {
    let mut c = BridgeConfig::local_test(s.server.local_addrs()[0], s.www.clone());
    c.tls = Some(TlsFiles {
        cert: s.cert.clone(),
        key: s.key.clone(),
    });
    natter_bridge::start(c).await.unwrap()
}

async fn tls_to(addr: SocketAddr, ca_file: &Path) -> std::io::Result<Tls> {
    let tcp = within("connect", TcpStream::connect(addr)).await?;
    let connector =
        natter_tls::TlsConnector::from(client_config(&Trust::CaFile(ca_file.to_owned())).unwrap());
    within(
        "TLS handshake",
        connector.connect(server_name("127.0.0.1").unwrap(), tcp),
    )
    .await
}

/// A browser's WebSocket over TLS (`wss://`) with this Origin.
async fn wss(
    bridge: SocketAddr,
    ca_file: &Path,
    origin: &str,
) -> Result<WebSocketStream<Tls>, tokio_tungstenite::tungstenite::Error> {
    let tls = tls_to(bridge, ca_file).await.expect("TLS to the bridge");
    let mut req = format!("wss://{bridge}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    within(
        "websocket handshake",
        tokio_tungstenite::client_async(req, tls),
    )
    .await
    .map(|(ws, _)| ws)
}

/// The page's protocol, by hand: bare payloads out, batches of frames in.
struct Page {
    ws: WebSocketStream<Tls>,
    decoder: FrameDecoder,
}

impl Page {
    async fn send(&mut self, msg: &ClientMsg) {
        let frame = encode_frame(msg).unwrap();
        // The page sends one payload per message, without the length prefix.
        let payload = frame[natter_core::wire::LEN_PREFIX..].to_vec();
        within("send", self.ws.send(Message::Binary(payload.into())))
            .await
            .unwrap();
    }

    /// Reads until a message `pred` accepts; panics on close or after a step.
    async fn expect(&mut self, what: &str, pred: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        within(what, async {
            loop {
                while let Some(p) = self.decoder.next_frame().unwrap() {
                    let m: ServerMsg = decode_payload(&p).unwrap();
                    if pred(&m) {
                        return m;
                    }
                }
                match self.ws.next().await {
                    Some(Ok(Message::Binary(b))) => self.decoder.extend(&b),
                    Some(Ok(_)) => {}
                    other => panic!("waiting for {what}: {other:?}"),
                }
            }
        })
        .await
    }

    async fn hello(ws: WebSocketStream<Tls>, nick: &str) -> Page {
        let mut p = Page {
            ws,
            decoder: FrameDecoder::new(),
        };
        p.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: Nick::new(nick).unwrap(),
            resume: None,
        })
        .await;
        p.expect("welcome", |m| matches!(m, ServerMsg::Welcome { .. }))
            .await;
        p
    }
}

/// A person on `nc` on the server's plain port.
async fn nc(
    addr: SocketAddr,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    expect_line(&mut r, "Welcome to natter").await;
    (r, w)
}

async fn expect_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, part: &str) -> String {
    within(part, async {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                r.read_line(&mut line).await.unwrap() > 0,
                "closed before {part:?}"
            );
            if line.contains(part) {
                return line.clone();
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_over_https_and_chat_over_wss() {
    let s = setup().await;
    let bridge = https_bridge(&s).await;
    let addr = bridge.local_addr();
    assert!(bridge.is_https());

    // The page, over https.
    let mut tls = tls_to(addr, &s.ca_file).await.unwrap();
    tls.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut page = Vec::new();
    let _ = within("the page", tls.read_to_end(&mut page)).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(PAGE), "{page}");

    // Plain http on the https port gets no page.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = within("plain http refused", plain.read_to_end(&mut got)).await;
    assert!(!String::from_utf8_lossy(&got).contains(PAGE));

    // The socket, as wss with the page's own origin, chats with a person on nc.
    let ws = wss(addr, &s.ca_file, &format!("https://{addr}"))
        .await
        .expect("wss with the https origin");
    let mut browser = Page::hello(ws, "webby").await;
    let lobby = RoomName::lobby();
    browser
        .send(&ClientMsg::Join {
            room: lobby.clone(),
        })
        .await;
    browser
        .expect("joined", |m| matches!(m, ServerMsg::Joined { .. }))
        .await;
    let (mut r, mut w) = nc(s.server.local_addrs()[0]).await;
    browser
        .send(&ClientMsg::Say {
            room: lobby,
            id: MsgId(1),
            text: Text::new("hello over wss").unwrap(),
        })
        .await;
    expect_line(&mut r, "<webby> hello over wss").await;
    w.write_all(b"hello back\n").await.unwrap();
    browser
        .expect("the nc line", |m| format!("{m:?}").contains("hello back"))
        .await;

    // Over https, a page on http:// (or elsewhere) may not use the socket.
    let refused = wss(addr, &s.ca_file, &format!("http://{addr}")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );
    bridge.shutdown().await.unwrap();
    s.server.shutdown().await.unwrap();
}

/// A plain http bridge relaying to the server's TLS listener, trusting `ca_file`.
async fn bridge_to_tls_server(s: &Setup, ca_file: &Path) -> Bridge {
    let mut c = BridgeConfig::local_test(s.server.tls_addrs()[0], s.www.clone());
    c.server_tls = Some(ServerTls {
        trust: Trust::CaFile(ca_file.to_owned()),
        name: "localhost".into(),
    });
    natter_bridge::start(c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_reaches_the_server_over_tls_and_refuses_an_untrusted_certificate() {
    let s = setup().await;
    let bridge = bridge_to_tls_server(&s, &s.ca_file).await;
    let addr = bridge.local_addr();
    let ws = common::connect(addr).await;
    let mut ws = ws;
    // The hello reaches the server through TLS and the welcome comes back.
    let frame = encode_frame(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: Nick::new("viatls").unwrap(),
        resume: None,
    })
    .unwrap();
    common::send_bin(&mut ws, &frame[natter_core::wire::LEN_PREFIX..]).await;
    let mut dec = FrameDecoder::new();
    let welcome = within("welcome", async {
        loop {
            match common::next_msg(&mut ws).await {
                Some(Message::Binary(b)) => dec.extend(&b),
                other => panic!("{other:?}"),
            }
            if let Some(p) = dec.next_frame().unwrap() {
                return decode_payload::<ServerMsg>(&p).unwrap();
            }
        }
    })
    .await;
    assert!(matches!(welcome, ServerMsg::Welcome { .. }), "{welcome:?}");
    bridge.shutdown().await.unwrap();

    // A CA that did not sign the server's certificate: the browser is told 1013.
    let other = s.dir.path().join("other.pem");
    std::fs::write(&other, DevCa::new("other CA").unwrap().cert_pem()).unwrap();
    let bridge = bridge_to_tls_server(&s, &other).await;
    let mut ws = common::connect(bridge.local_addr()).await;
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Again);
    bridge.shutdown().await.unwrap();
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_certificate_reloads_and_a_broken_one_is_refused() {
    let s = setup().await;
    let bridge = https_bridge(&s).await;
    let addr = bridge.local_addr();
    assert!(tls_to(addr, &s.ca_file).await.is_ok());
    let ca2 = DevCa::new("second CA").unwrap();
    ca2.leaf(&["127.0.0.1"])
        .unwrap()
        .write(s.dir.path())
        .unwrap();
    let ca2_file = s.dir.path().join("ca2.pem");
    std::fs::write(&ca2_file, ca2.cert_pem()).unwrap();
    bridge.reload_certificates().unwrap();
    let e = tls_to(addr, &s.ca_file).await.unwrap_err();
    assert!(natter_tls::is_certificate_error(&e), "{e}");
    assert!(tls_to(addr, &ca2_file).await.is_ok());
    std::fs::write(&s.key, "not a key").unwrap();
    assert!(bridge.reload_certificates().is_err());
    assert!(
        tls_to(addr, &ca2_file).await.is_ok(),
        "the old certificate stays"
    );
    let _ = STEP;
    bridge.shutdown().await.unwrap();
    s.server.shutdown().await.unwrap();
}

/// Failed TLS handshakes are counted apart (`natter_bridge_refused_total{reason="tls_handshake"}`):
/// a plain HTTP request and a client that does not trust the certificate each add one; a
/// handshake that succeeds adds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tls_handshakes_are_counted() {
    let s = setup().await;
    let mut c = BridgeConfig::local_test(s.server.local_addrs()[0], s.www.clone());
    c.tls = Some(TlsFiles {
        cert: s.cert.clone(),
        key: s.key.clone(),
    });
    c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let bridge = natter_bridge::start(c).await.unwrap();
    let addr = bridge.local_addr();
    let metrics = bridge.metrics_addr().expect("metrics are served");
    let failed = || async move {
        let mut m = within("connect", TcpStream::connect(metrics))
            .await
            .unwrap();
        let req = format!("GET /metrics HTTP/1.1\r\nHost: {metrics}\r\n\r\n");
        within("write", m.write_all(req.as_bytes())).await.unwrap();
        let mut body = String::new();
        within("read", m.read_to_string(&mut body)).await.unwrap();
        let line = body
            .lines()
            .find(|l| l.starts_with("natter_bridge_refused_total{reason=\"tls_handshake\"}"))
            .unwrap_or_else(|| panic!("no tls_handshake count in {body}"))
            .to_owned();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(failed().await, 0);
    assert!(tls_to(addr, &s.ca_file).await.is_ok());
    assert_eq!(failed().await, 0, "a good handshake is not counted");

    // Plain HTTP on the https port is sent to its https address (not a failed handshake)...
    let mut plain = within("connect", TcpStream::connect(addr)).await.unwrap();
    within(
        "write",
        plain.write_all(b"GET /app.js?v=2 HTTP/1.1\r\nHost: chat.example:8080\r\n\r\n"),
    )
    .await
    .unwrap();
    let mut rest = Vec::new();
    let _ = within("read", plain.read_to_end(&mut rest)).await;
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.starts_with("HTTP/1.1 307 Temporary Redirect\r\n"),
        "{answer}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("location: https://chat.example:8080/app.js?v=2\r\n"),
        "{answer}"
    );
    // ...while a handshake record that is not one fails the handshake.
    let mut junk = within("connect", TcpStream::connect(addr)).await.unwrap();
    within(
        "write",
        junk.write_all(&[0x16, 0x03, 0x01, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]),
    )
    .await
    .unwrap();
    let mut rest = Vec::new();
    let _ = within("read", junk.read_to_end(&mut rest)).await;
    // A client trusting another CA gives up on the certificate (and tells the bridge).
    let other = DevCa::new("another CA").unwrap();
    let other_file = s.dir.path().join("other-ca.pem");
    std::fs::write(&other_file, other.cert_pem()).unwrap();
    assert!(tls_to(addr, &other_file).await.is_err());
    // The bridge counts after its side of the handshake ends: wait for both.
    let mut n = 0;
    for _ in 0..100 {
        n = failed().await;
        if n >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(n, 2, "two failed handshakes");
    bridge.shutdown().await.unwrap();
    s.server.shutdown().await.unwrap();
}

/// A TLS handshake is dear: past `max_tls_handshakes_per_ip` in 10 s, an address's next
/// connection is closed before its handshake (and counted), while other work goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_past_the_rate_are_closed_before_they_start() {
    let s = setup().await;
    let mut c = BridgeConfig::local_test(s.server.local_addrs()[0], s.www.clone());
    c.tls = Some(TlsFiles {
        cert: s.cert.clone(),
        key: s.key.clone(),
    });
    c.max_tls_handshakes_per_ip = 3;
    let bridge = natter_bridge::start(c).await.unwrap();
    let addr = bridge.local_addr();
    let mut up = Vec::new();
    for n in 0..3 {
        up.push(
            tls_to(addr, &s.ca_file)
                .await
                .unwrap_or_else(|e| panic!("handshake {n}: {e}")),
        );
    }
    assert!(
        tls_to(addr, &s.ca_file).await.is_err(),
        "a fourth handshake within 10 s went through"
    );
    // Those already up are served.
    let mut tls = up.pop().unwrap();
    tls.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut page = Vec::new();
    let _ = within("the page", tls.read_to_end(&mut page)).await;
    assert!(String::from_utf8_lossy(&page).starts_with("HTTP/1.1 200"));
    bridge.shutdown().await.unwrap();
    s.server.shutdown().await.unwrap();
}

/// The binary: `--tls-cert/--tls-key` serve https (the printed URL says so), `--server-ca` and
/// `--server-name` reach the server's TLS listener, SIGHUP rereads the certificate and a broken
/// key is refused in the log.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_https_relays_over_tls_and_reloads_on_sighup() {
    let s = setup().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
        .args(["--listen", "127.0.0.1:0", "--server"])
        .arg(s.server.tls_addrs()[0].to_string())
        .args(["--server-name", "localhost", "--server-ca"])
        .arg(&s.ca_file)
        .arg("--tls-cert")
        .arg(&s.cert)
        .arg("--tls-key")
        .arg(&s.key)
        .arg("--www")
        .arg(&s.www)
        .env("RUST_LOG", "info")
        .env("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter-bridge starts");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = within("the URL line", out.next_line())
        .await
        .unwrap()
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no https URL in {line:?}"));
    let addr: SocketAddr = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log_line = async |part: &str| {
        within(part, async {
            while let Some(l) = log.next_line().await.unwrap() {
                if l.contains(part) {
                    return l;
                }
            }
            panic!("natter-bridge's log ended before {part:?}");
        })
        .await
    };

    // Through wss and the server's TLS listener to a welcome.
    let ws = wss(addr, &s.ca_file, &format!("https://{addr}"))
        .await
        .unwrap();
    let _browser = Page::hello(ws, "binary").await;

    // SIGHUP with a certificate from another CA in the files: new handshakes get it.
    let ca2 = DevCa::new("second CA").unwrap();
    ca2.leaf(&["127.0.0.1"])
        .unwrap()
        .write(s.dir.path())
        .unwrap();
    let ca2_file = s.dir.path().join("ca2.pem");
    std::fs::write(&ca2_file, ca2.cert_pem()).unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    log_line("TLS certificate reloaded").await;
    assert!(tls_to(addr, &ca2_file).await.is_ok());
    assert!(tls_to(addr, &s.ca_file).await.is_err());

    // A broken key: refused in the log, the certificate in use stays.
    std::fs::write(&s.key, "not a key").unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    log_line("not reloaded").await;
    assert!(tls_to(addr, &ca2_file).await.is_ok());

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = within("exit after SIGTERM", child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    s.server.shutdown().await.unwrap();
}

/// `GET /readyz` on the metrics endpoint at `addr`: status and body.
async fn readyz(addr: SocketAddr) -> (u16, String) {
    let mut s = within("connect", TcpStream::connect(addr)).await.unwrap();
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", s.write_all(req.as_bytes())).await.unwrap();
    let mut all = Vec::new();
    within("read", s.read_to_end(&mut all)).await.unwrap();
    let all = String::from_utf8(all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("a whole response");
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_over_tls_needs_a_certificate_the_bridge_trusts() {
    // README: /readyz is 200 when natter-server accepts connections. Over TLS its probe was a
    // TCP connect only: a bridge that trusts another CA (every browser closed with 1013) said
    // ready as soon as no relay had failed in the last 5 s.
    let s = setup().await;
    let start = |ca: PathBuf| {
        let mut c = BridgeConfig::local_test(s.server.tls_addrs()[0], s.www.clone());
        c.server_tls = Some(ServerTls {
            trust: Trust::CaFile(ca),
            name: "localhost".into(),
        });
        c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        natter_bridge::start(c)
    };
    let other = s.dir.path().join("other.pem");
    std::fs::write(&other, DevCa::new("other CA").unwrap().cert_pem()).unwrap();
    let untrusting = start(other).await.unwrap();
    let (status, body) = readyz(untrusting.metrics_addr().unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TLS certificate is not trusted"), "{body}");
    untrusting.shutdown().await.unwrap();

    let trusting = start(s.ca_file.clone()).await.unwrap();
    assert_eq!(
        readyz(trusting.metrics_addr().unwrap()).await,
        (200, "ready\n".into())
    );
    trusting.shutdown().await.unwrap();
    s.server.shutdown().await.unwrap();
}
