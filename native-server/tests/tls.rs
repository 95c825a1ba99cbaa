//! natter-server's TLS listeners with real certificates (a throwaway CA made by rcgen): both
//! dialects over TLS chatting with plain clients, `openssl s_client`, plaintext refused, the
//! handshake bounded, the certificate reloaded on SIGHUP, and a PROXY header before TLS; and
//! the IRC listener over TLS (`--irc-tls-listen`) on the same terms.

mod support;

use natter_core::wire::{ClientMsg, PROTOCOL_VERSION, ServerMsg};
use natter_server::{ServerConfig, TlsCerts};
use natter_tls::dev_ca::{DevCa, Leaf};
use natter_tls::{Trust, client_config, server_name};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// A CA, a certificate for localhost and 127.0.0.1, and their files.
struct Pki {
    ca: DevCa,
    leaf: Leaf,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("natter test CA").unwrap();
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
    let (cert, key) = leaf.write(dir.path()).unwrap();
    let ca_file = write_ca(dir.path(), "ca.pem", &ca);
    Pki {
        ca,
        leaf,
        dir,
        ca_file,
        cert,
        key,
    }
}

fn write_ca(dir: &Path, name: &str, ca: &DevCa) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, ca.cert_pem()).unwrap();
    path
}

/// `local_test` with a TLS listener beside the plain one.
fn tls_config(p: &Pki) -> ServerConfig {
    let mut c = ServerConfig::local_test();
    c.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    c.tls_certs = Some(TlsCerts {
        cert: p.cert.clone(),
        key: p.key.clone(),
    });
    c
}

/// A TLS handshake over `tcp`, trusting the CA in `ca_file`, checking the name `localhost`.
async fn tls_over(
    tcp: TcpStream,
    ca_file: &Path,
) -> std::io::Result<natter_tls::client::TlsStream<TcpStream>> {
    let connector =
        natter_tls::TlsConnector::from(client_config(&Trust::CaFile(ca_file.to_owned())).unwrap());
    timeout(
        WAIT,
        connector.connect(server_name("localhost").unwrap(), tcp),
    )
    .await
    .expect("handshake timed out")
}

async fn tls_connect(
    addr: SocketAddr,
    ca_file: &Path,
) -> std::io::Result<natter_tls::client::TlsStream<TcpStream>> {
    tls_over(connect(addr).await, ca_file).await
}

async fn tls_text(addr: SocketAddr, ca_file: &Path, name: &str) -> (TextClient, String) {
    let s = tls_connect(addr, ca_file).await.expect("TLS handshake");
    let mut c = TextClient::over(s, name);
    let nick = c.welcome().await;
    (c, nick)
}

async fn tls_bin(addr: SocketAddr, ca_file: &Path, nick_: &str) -> BinClient {
    let s = tls_connect(addr, ca_file).await.expect("TLS handshake");
    let mut c = BinClient::over(s, nick_).await;
    c.send(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick(nick_),
        resume: None,
    })
    .await;
    c.expect(|m| matches!(m, ServerMsg::Welcome { .. }), "welcome")
        .await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_binary_over_tls_chat_with_plain_clients() {
    let p = pki();
    let mut config = tls_config(&p);
    // Patient: the binary clients' preambles stay binary on a loaded machine; the people press
    // Enter to be greeted at once.
    config.hub.text_detect_wait = natter_server::PATIENT_DETECT_WAIT;
    let server = natter_server::start(config).await.unwrap();
    let (plain, tls) = (server.local_addrs()[0], server.tls_addrs()[0]);
    let s = tls_connect(tls, &p.ca_file).await.expect("TLS handshake");
    let mut t_tls = TextClient::over(s, "t-tls");
    let nick_t = t_tls.enter().await;
    let (mut t_plain, nick_p) = TextClient::entered(plain, "t-plain").await;
    let mut b_tls = tls_bin(tls, &p.ca_file, "btls").await;
    let (mut b_plain, _) = BinClient::hello(plain, "bplain", None).await;
    b_tls.join("#lobby").await;
    b_plain.join("#lobby").await;

    t_tls.send("over tls").await;
    t_plain
        .expect(
            |l| l == format!("<{nick_t}> over tls"),
            "the TLS user's line",
        )
        .await;
    b_tls
        .expect(
            |m| said(std::slice::from_ref(m)) == ["over tls"],
            "the line",
        )
        .await;
    t_plain.send("in clear").await;
    t_tls
        .expect(
            |l| l == format!("<{nick_p}> in clear"),
            "the plain user's line",
        )
        .await;
    b_tls.say("#lobby", "binary over tls").await;
    b_plain
        .expect(
            |m| said(std::slice::from_ref(m)) == ["binary over tls"],
            "the binary TLS line",
        )
        .await;
    t_tls
        .expect(|l| l.ends_with("binary over tls"), "the binary TLS line")
        .await;
    server.shutdown().await.unwrap();
    // The TLS clients are told too.
    t_tls.expect_closed().await;
    b_tls.expect_closed().await;
}

/// `openssl s_client` connected to `addr`, verifying against `ca_file` as `localhost`; stdin
/// and stdout piped, killed when dropped.
fn s_client(addr: std::net::SocketAddr, ca_file: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-servername",
            "localhost",
        ])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(ca_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl is installed (cargo xtask install)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_gets_the_text_welcome() {
    let p = pki();
    let server = natter_server::start(tls_config(&p)).await.unwrap();
    let tls = server.tls_addrs()[0];
    let mut child = s_client(tls, &p.ca_file);
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let welcome = timeout(WAIT, async {
        while let Some(l) = out.next_line().await.unwrap() {
            if l.starts_with("Welcome to natter, ") {
                return l;
            }
        }
        panic!("openssl's output ended without a welcome");
    })
    .await
    .expect("no welcome through openssl s_client");
    assert!(welcome.ends_with('!') || welcome.contains('!'), "{welcome}");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"/quit\n").await.unwrap();
    drop(stdin);
    let _ = timeout(WAIT, child.wait()).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_on_the_tls_port_is_refused() {
    let p = pki();
    let server = natter_server::start(tls_config(&p)).await.unwrap();
    let tls = server.tls_addrs()[0];
    let mut s = connect(tls).await;
    s.write_all(b"hello there\n").await.unwrap();
    let mut got = Vec::new();
    timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("the server closes a plaintext connection on its TLS port")
        .ok();
    let shown = String::from_utf8_lossy(&got);
    assert!(!shown.contains("Welcome"), "{shown}");
    // Told in words, with the plain port to use instead (not a TLS alert's binary junk).
    let plain = server.local_addrs()[0].port();
    assert_eq!(
        shown,
        format!(
            "ERROR: this port speaks TLS: connect with natter natters://HOST:PORT, or openssl \
             s_client -connect HOST:PORT; nc and telnet connect to port {plain}\r\n"
        )
    );
    // Nobody joined: a TLS client sees no one else in #lobby's greeting.
    let (mut c, _) = tls_text(tls, &p.ca_file, "after").await;
    c.send("/who").await;
    let lines = c.lines_for(Duration::from_millis(500)).await;
    assert!(!lines.iter().any(|l| l.contains("hello")), "{lines:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_on_the_tls_port_is_told_at_the_hello_timeout() {
    let p = pki();
    let mut config = tls_config(&p);
    config.hub.hello_timeout = natter_core::Millis(600);
    let server = natter_server::start(config).await.unwrap();
    // A person on nc waits to be greeted: at the hello timeout, words rather than a bare close.
    let mut s = connect(server.tls_addrs()[0]).await;
    let mut got = Vec::new();
    timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("the server closes a silent connection at its hello timeout")
        .ok();
    let shown = String::from_utf8_lossy(&got);
    assert!(shown.starts_with("ERROR: this port speaks TLS"), "{shown}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_bounded_in_time_and_per_address() {
    let p = pki();
    let mut config = tls_config(&p);
    config.hub.hello_timeout = natter_core::Millis(1_000);
    config.hub.text_detect_wait = natter_core::Millis(200);
    config.hub.exempt_loopback = false;
    config.hub.max_connections_per_ip = 2;
    // Not a proxy: its sockets are counted as its own.
    config.hub.trusted_proxies.clear();
    let server = natter_server::start(config).await.unwrap();
    let tls = server.tls_addrs()[0];
    // Two silent sockets hold the address's two handshake places.
    let t0 = Instant::now();
    let mut silent = vec![connect(tls).await, connect(tls).await];
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third handshake from the address is turned away at once.
    let mut third = connect(tls).await;
    let mut buf = [0u8; 64];
    let n = timeout(Duration::from_millis(800), third.read(&mut buf))
        .await
        .expect("a third handshake from one address is closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // The silent ones are told and closed once the hello timeout is over, not later.
    for s in &mut silent {
        let mut got = Vec::new();
        timeout(Duration::from_secs(3), s.read_to_end(&mut got))
            .await
            .expect("a silent handshake is closed after the hello timeout")
            .ok();
        let shown = String::from_utf8_lossy(&got);
        assert!(shown.starts_with("ERROR: this port speaks TLS"), "{shown}");
    }
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // Their places are free again.
    let (mut c, _) = tls_text(tls, &p.ca_file, "later").await;
    c.expect_has("you are in #lobby").await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_count_against_the_connect_rate_before_they_start() {
    let p = pki();
    let mut config = tls_config(&p);
    config.hub.exempt_loopback = false;
    config.hub.trusted_proxies.clear();
    config.hub.max_connects_per_window = 3;
    let server = natter_server::start(config).await.unwrap();
    let tls = server.tls_addrs()[0];
    // Three handshakes in the window go through, and their connections are not counted again.
    let mut users = Vec::new();
    for i in 0..3 {
        let (mut c, _) = tls_text(tls, &p.ca_file, &format!("t{i}")).await;
        c.expect_has("you are in #lobby").await;
        users.push(c);
    }
    // A fourth is closed before its handshake starts: no TLS work is spent on it.
    let t0 = Instant::now();
    let fourth = tls_connect(tls, &p.ca_file).await;
    assert!(
        fourth.is_err(),
        "a fourth handshake in the window went through"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // The three are still in and chat.
    users[0].send("still here").await;
    users[1].expect_has("still here").await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_may_come_before_the_handshake_from_a_trusted_proxy_only() {
    let p = pki();
    let mut config = tls_config(&p);
    config.hub.max_connections_per_ip = 1;
    // local_test trusts 127.0.0.1 as a proxy.
    let server = natter_server::start(config).await.unwrap();
    let tls = server.tls_addrs()[0];
    let v1 = |ip: &str| format!("PROXY TCP4 {ip} 127.0.0.1 40000 8443\r\n").into_bytes();
    let v2 = |ip: [u8; 4]| {
        let mut h = natter_core::proxy::V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12]);
        h.extend_from_slice(&ip);
        h.extend_from_slice(&[127, 0, 0, 1, 0x9c, 0x40, 0x20, 0xfb]);
        h
    };
    let proxied = |header: Vec<u8>| {
        let ca = p.ca_file.clone();
        async move {
            let mut tcp = connect(tls).await;
            tcp.write_all(&header).await.unwrap();
            let s = tls_over(tcp, &ca)
                .await
                .expect("TLS after the PROXY header");
            TextClient::over(s, "proxied")
        }
    };
    // v1 names 192.0.2.7: one connection from it is welcome, a second is over its limit.
    let mut a = proxied(v1("192.0.2.7")).await;
    a.welcome().await;
    let mut a2 = proxied(v1("192.0.2.7")).await;
    let lines = a2.expect_closed().await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("192.0.2.7") || l.contains("already has")),
        "the second from the named address is counted against it: {lines:?}"
    );
    // v2 names 192.0.2.8: counted on its own, so welcome although .7 is full.
    let mut b = proxied(v2([192, 0, 2, 8])).await;
    b.welcome().await;
    let mut b2 = proxied(v2([192, 0, 2, 8])).await;
    b2.expect_closed().await;
    server.shutdown().await.unwrap();

    // From an address not trusted as a proxy, the header is not read: the handshake fails.
    let mut config = tls_config(&p);
    config.hub.trusted_proxies.clear();
    let server = natter_server::start(config).await.unwrap();
    let mut tcp = connect(server.tls_addrs()[0]).await;
    tcp.write_all(&v1("192.0.2.9")).await.unwrap();
    assert!(tls_over(tcp, &p.ca_file).await.is_err());
    server.shutdown().await.unwrap();
}

/// Waits for a log line containing `part`; returns it.
async fn log_line(log: &mut BufReader<tokio::process::ChildStderr>, part: &str) -> String {
    timeout(WAIT, async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = log.read_line(&mut line).await.expect("read the log");
            assert!(n > 0, "natter-server exited; waiting for {part:?}");
            if line.contains(part) {
                return line.clone();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no log line with {part:?}"))
}

/// The natter-server binary with only `listen_flag` (a TLS door) on a free port and the test
/// certificate: the child, its log and the listener's address.
async fn spawn_tls_only(
    listen_flag: &str,
    p: &Pki,
) -> (
    tokio::process::Child,
    tokio::io::BufReader<tokio::process::ChildStderr>,
    std::net::SocketAddr,
) {
    let (cert, key) = (p.cert.to_str().unwrap(), p.key.to_str().unwrap());
    let args = [
        listen_flag,
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    spawn_server(&args, &[]).await
}

/// A certificate from a second CA written over `p`'s files and SIGHUP sent to `child`: the log
/// says it was reloaded, and the next handshake on `addr` sees it (the first CA no longer
/// verifies it). The second CA's file, and `child`'s pid for more signals.
async fn reload_from_a_second_ca(
    child: &tokio::process::Child,
    log: &mut BufReader<tokio::process::ChildStderr>,
    p: &Pki,
    addr: SocketAddr,
) -> (PathBuf, nix::unistd::Pid) {
    let ca2 = DevCa::new("second CA").unwrap();
    ca2.leaf(&["localhost"])
        .unwrap()
        .write(p.dir.path())
        .unwrap();
    let ca2_file = write_ca(p.dir.path(), "ca2.pem", &ca2);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    log_line(log, "TLS certificate reloaded").await;
    let e = tls_connect(addr, &p.ca_file).await.unwrap_err();
    assert!(natter_tls::is_certificate_error(&e), "{e}");
    (ca2_file, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_refuses_a_broken_key() {
    let p = pki();
    // TLS only: no --listen, so the one listening line is the TLS listener's.
    let (mut child, mut log, tls) = spawn_tls_only("--tls-listen", &p).await;
    let (mut old, nick_old) = tls_text(tls, &p.ca_file, "old").await;

    let (ca2_file, pid) = reload_from_a_second_ca(&child, &mut log, &p, tls).await;
    let (mut new, _) = tls_text(tls, &ca2_file, "new").await;
    // The connection made before the reload is still there and chatting.
    new.send("after the reload").await;
    old.expect(
        |l| l.ends_with("> after the reload"),
        "the new client's line",
    )
    .await;
    old.send("still here").await;
    new.expect(
        |l| l == format!("<{nick_old}> still here"),
        "the old client's line",
    )
    .await;

    // A broken key is refused in the log; the certificate in use stays.
    std::fs::write(
        &p.key,
        "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let line = log_line(&mut log, "not reloaded").await;
    assert!(line.contains("key"), "{line}");
    let (mut again, _) = tls_text(tls, &ca2_file, "again").await;
    again.expect_has("you are in #lobby").await;
    let _ = &p.leaf;
    let _ = &p.ca;

    let status = sigterm(&mut child).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listen_without_a_certificate_is_refused() {
    let mut c = ServerConfig::local_test();
    c.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let e = natter_server::start(c).await.unwrap_err();
    assert!(e.to_string().contains("--tls-cert"), "{e}");
    let p = pki();
    let mut c = tls_config(&p);
    c.tls_certs.as_mut().unwrap().key = p.dir.path().join("missing.pem");
    let e = natter_server::start(c).await.unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

// ---- IRC over TLS ----

/// `local_test` with an IRC-over-TLS listener beside the plain natter port.
fn irc_tls_config(p: &Pki) -> ServerConfig {
    let mut c = ServerConfig::local_test();
    c.irc_tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    c.tls_certs = Some(TlsCerts {
        cert: p.cert.clone(),
        key: p.key.clone(),
    });
    c
}

/// An IRC client over TLS (tokio-rustls, trusting the test CA), registered as `nick`: returns
/// once the MOTD's end (376) came.
async fn irc_tls(addr: SocketAddr, ca_file: &Path, nick: &str) -> TextClient {
    let s = tls_connect(addr, ca_file).await.expect("TLS handshake");
    let mut c = TextClient::over(s, nick);
    c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick} over TLS"))
        .await;
    let welcome = c.expect_has(" 001 ").await;
    assert_eq!(
        welcome,
        format!(":natter.irc 001 {nick} :Welcome to the natter IRC network, {nick}!{nick}@natter")
    );
    c.expect_has(" 376 ").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_over_tls_registers_and_chats_with_a_plain_nc_user() {
    let p = pki();
    let server = natter_server::start(irc_tls_config(&p)).await.unwrap();
    assert!(server.tls_addrs().is_empty(), "no natter TLS port asked");
    assert!(server.irc_addrs().is_empty(), "no plain IRC port asked");
    let (plain, irc) = (server.local_addrs()[0], server.irc_tls_addrs()[0]);
    let (mut nc, nc_nick) = TextClient::welcomed(plain, "nc").await;
    let mut i = irc_tls(irc, &p.ca_file, "tlsirc").await;
    i.send("JOIN #lobby").await;
    let names = i.expect_has(" 353 tlsirc ").await;
    assert!(names.contains(&nc_nick), "{names}");
    i.expect_has(" 366 tlsirc #lobby ").await;
    nc.expect(|l| l == "-- tlsirc joined #lobby", "the join")
        .await;

    i.send("PRIVMSG #lobby :hello from TLS").await;
    nc.expect(|l| l == "<tlsirc> hello from TLS", "the IRC line")
        .await;
    nc.send("hello in clear").await;
    i.expect(
        |l| l == format!(":{nc_nick}!{nc_nick}@natter PRIVMSG #lobby :hello in clear"),
        "the nc line",
    )
    .await;
    i.send("PRIVMSG #lobby :\u{1}ACTION waves\u{1}").await;
    nc.expect(|l| l == "* tlsirc waves", "the action").await;

    i.send("QUIT :bye").await;
    let last = i.expect_closed().await;
    assert_eq!(
        last.last().map(String::as_str),
        Some("ERROR :Closing Link: natter (Quit: bye)")
    );
    nc.expect(|l| l == "-- tlsirc quit (bye)", "the quit").await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_registers_on_the_irc_tls_port() {
    let p = pki();
    let server = natter_server::start(irc_tls_config(&p)).await.unwrap();
    let irc = server.irc_tls_addrs()[0];
    let mut child = s_client(irc, &p.ca_file);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"NICK ossl\r\nUSER ossl 0 * :openssl\r\n")
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let welcome = timeout(WAIT, async {
        while let Some(l) = out.next_line().await.unwrap() {
            if l.contains(" 001 ") {
                return l;
            }
        }
        panic!("openssl's output ended without a 001");
    })
    .await
    .expect("no 001 through openssl s_client");
    assert!(
        welcome.starts_with(":natter.irc 001 ossl :Welcome"),
        "{welcome}"
    );
    stdin.write_all(b"QUIT\r\n").await.unwrap();
    drop(stdin);
    let _ = timeout(WAIT, child.wait()).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_irc_on_the_irc_tls_port_is_refused() {
    let p = pki();
    let server = natter_server::start(irc_tls_config(&p)).await.unwrap();
    let irc = server.irc_tls_addrs()[0];
    let mut s = connect(irc).await;
    s.write_all(b"NICK sneaky\r\nUSER sneaky 0 * :in clear\r\nJOIN #lobby\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("the server closes plain IRC on its TLS port")
        .ok();
    let shown = String::from_utf8_lossy(&got);
    assert!(!shown.contains(" 001 "), "{shown}");
    // An ERROR line the IRC client shows (there is no plain IRC port here to point at).
    assert_eq!(
        shown,
        "ERROR :Closing Link: natter (this port speaks TLS: turn TLS on for this server in \
         your IRC client)\r\n"
    );
    assert!(!shown.contains("sneaky"), "{shown}");
    // Nobody registered: the nick is free and #lobby holds only the TLS client.
    let mut c = irc_tls(irc, &p.ca_file, "sneaky").await;
    c.send("JOIN #lobby").await;
    let names = c.expect_has(" 353 sneaky ").await;
    assert!(names.ends_with(":sneaky"), "{names}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_of_the_irc_tls_port() {
    let p = pki();
    // IRC over TLS only: the one listening line is its listener's.
    let (mut child, mut log, irc) = spawn_tls_only("--irc-tls-listen", &p).await;
    let mut old = irc_tls(irc, &p.ca_file, "old").await;
    old.send("JOIN #tls").await;
    old.expect_has(" 366 old #tls ").await;

    let (ca2_file, _) = reload_from_a_second_ca(&child, &mut log, &p, irc).await;
    let mut new = irc_tls(irc, &ca2_file, "new").await;
    new.send("JOIN #tls").await;
    new.expect_has(" 366 new #tls ").await;
    new.send("PRIVMSG #tls :after the reload").await;
    old.expect(
        |l| l == ":new!new@natter PRIVMSG #tls :after the reload",
        "the new client's line on the connection made before the reload",
    )
    .await;
    let status = sigterm(&mut child).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_cap_holds_back_accepts_until_a_socket_closes() {
    // SECURITY.md: sockets open at once are capped at `max_connections` + 1/8 + 64, whatever
    // stage they are in. Silent sockets on the TLS port hold their place before the hub sees
    // them (waiting for a PROXY header or a handshake), so with `max_connections = 1` the cap
    // is 65 and 65 of them keep a 66th from being accepted at all, though the hub alone would
    // welcome it. (Only a TLS listener: each listener's accept loop takes its place before it
    // accepts, so an idle plain listener would hold one.)
    let p = pki();
    let mut config = tls_config(&p);
    config.listen.clear();
    config.hub.max_connections = 1;
    config.hub.hello_timeout = natter_core::Millis(60_000);
    config.hub.text_detect_wait = natter_core::Millis(100);
    let server = natter_server::start(config).await.unwrap();
    let tls = server.tls_addrs()[0];
    const CAP: usize = 1 + 64;
    let mut silent = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        silent.push(connect(tls).await);
    }
    // The 66th: its TCP connect completes in the kernel's backlog, its handshake does not.
    let ca = p.ca_file.clone();
    let tcp = connect(tls).await;
    let pending = tokio::spawn(async move { tls_over(tcp, &ca).await });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!pending.is_finished(), "a socket over the cap was served");
    // The silent ones were accepted and are held, not closed.
    let mut b = [0u8; 16];
    for (i, s) in silent.iter_mut().enumerate() {
        let r = timeout(Duration::from_millis(10), s.read(&mut b)).await;
        assert!(r.is_err(), "silent socket {i} is still open: {r:?}");
    }
    // One silent socket goes: its place goes to the one waiting in the backlog.
    drop(silent.pop());
    let stream = timeout(WAIT, pending)
        .await
        .expect("accepted once a place is free")
        .unwrap()
        .expect("handshake");
    let mut c = TextClient::over(stream, "waiting");
    c.welcome().await;
    drop(silent);
    server.shutdown().await.unwrap();
}

/// A connection task that outlives the shutdown grace (here: a TLS handshake that never comes,
/// with a hello timeout far beyond the grace) is aborted when the grace ends: the shutdown
/// returns soon after it and the socket is closed, not left to the hello timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_aborts_connections_left_after_the_grace() {
    let p = pki();
    let mut config = tls_config(&p);
    config.hub.hello_timeout = natter_core::Millis(60_000);
    config.shutdown_grace = Duration::from_millis(300);
    let server = natter_server::start(config).await.unwrap();
    let tls = server.tls_addrs()[0];
    let mut silent = vec![connect(tls).await, connect(tls).await];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown ends after the grace")
        .unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let mut buf = [0u8; 64];
    for s in &mut silent {
        let n = timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("an aborted connection's socket is closed");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
}

/// A self-signed certificate from `openssl req -x509` (P-256, for localhost), in `dir`: the
/// command an operator without a CA types. `extra` adds `-addext` values.
fn openssl_self_signed(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    for e in extra {
        cmd.args(["-addext", e]);
    }
    let out = cmd
        .output()
        .expect("openssl is installed (cargo xtask install)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `openssl req -x509` makes a CA certificate unless told otherwise, which every verifying
/// client (natter's, the bridge's) refuses as a server's own, even as its CA file, with
/// "CaUsedAsEndEntity": the server says so in its log at start, with the `-addext` that makes
/// one that works. One made with that is not warned of, and is trusted as its own CA file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_as_the_servers_own_is_warned_of_at_start() {
    for ca in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let extra: &[&str] = if ca {
            &[]
        } else {
            &["basicConstraints=critical,CA:FALSE"]
        };
        let (cert, key) = openssl_self_signed(dir.path(), extra);
        let args = [
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        let (_child, _log, addr, seen) = spawn_server_seen(&args, &[], SERVER_START).await;
        let warned = seen
            .iter()
            .any(|l| l.contains("WARN") && l.contains("is a CA certificate"));
        assert_eq!(warned, ca, "{seen:?}");
        let shook = tls_connect(addr, &cert).await;
        assert_eq!(shook.is_ok(), !ca, "{:?}", shook.err());
    }
}
