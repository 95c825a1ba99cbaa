//! The `natter-bridge` binary: flags, the URLs it prints, JSON logs, and a clean exit on SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Kills the child if the test fails before it exits on its own.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the bridge binary relaying to `server` with `args` added, its log at `rust_log` to
/// `stderr`, its stdout piped.
fn spawn_bridge(server: &str, args: &[&str], rust_log: &str, stderr: Stdio) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
        .args(["--listen", "127.0.0.1:0", "--server", server])
        .args(args)
        .env("RUST_LOG", rust_log)
        .env("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("binary starts");
    Running(child)
}

/// The address in the URL the bridge prints first on stdout (where it listens).
async fn printed_addr(child: &mut Running) -> std::net::SocketAddr {
    let stdout = child.0.stdout.take().unwrap();
    let line = within(
        "the URL line",
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// A server on another machine reached without TLS is warned of at start (what browsers send,
/// passwords and keys among it, crosses that network in clear); one on this machine, or one
/// reached over TLS, is not. Until the thirty-first session nothing said so.
#[tokio::test]
async fn a_server_on_another_machine_reached_in_clear_is_warned_of() {
    for (args, warned) in [
        (&[][..], true),
        (
            &["--server-tls", "--server-name", "chat.example.org"][..],
            false,
        ),
    ] {
        let mut child = spawn_bridge("192.0.2.1:8000", args, "warn", Stdio::piped());
        printed_addr(&mut child).await;
        let _ = child.0.kill();
        let stderr = child.0.stderr.take().unwrap();
        let log: Vec<String> = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect();
        let said = log
            .iter()
            .any(|l| l.contains("reached in clear") && l.contains("192.0.2.1:8000"));
        assert_eq!(said, warned, "{args:?}: {log:#?}");
    }
    let mut child = spawn_bridge("127.0.0.1:8000", &[], "warn", Stdio::piped());
    printed_addr(&mut child).await;
    let _ = child.0.kill();
    let stderr = child.0.stderr.take().unwrap();
    let log: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(
        !log.iter().any(|l| l.contains("reached in clear")),
        "{log:#?}"
    );
}

/// README: a blank `NATTER_*` variable is taken as unset, as natter-server takes them. An
/// env file's `NATTER_BRIDGE_TRUSTED_PROXY=` stopped the bridge with clap's words about a flag
/// the operator never typed (`invalid value '' for '--trusted-proxy <ADDR>'`).
#[tokio::test]
async fn every_blank_natter_variable_is_taken_as_unset() {
    let bin = env!("CARGO_BIN_EXE_natter-bridge");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let mut names: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .collect();
    assert!(names.contains(&"NATTER_BRIDGE_SERVER"), "{names:?}");
    assert!(names.contains(&"NATTER_BRIDGE_TRUSTED_PROXY"), "{names:?}");
    names.push("NATTER_BRIDGE_SECRET");
    let server = FakeServer::start().await;
    let addr = server.addr.to_string();
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", "127.0.0.1:0", "--server", &addr])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in &names {
        cmd.env(name, "");
    }
    let mut child = Running(cmd.spawn().expect("binary starts"));
    // It listens (prints its URL) instead of stopping at start.
    let addr = printed_addr(&mut child).await;
    assert_ne!(addr.port(), 0);
}

#[cfg(unix)]
#[tokio::test]
async fn binary_serves_relays_and_exits_cleanly_on_sigterm() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), b"<p>natter</p>").unwrap();
    let mut server = FakeServer::start().await;
    // The server by host name, as an operator (and the README's cluster example) writes it.
    let www_dir = www.path().to_str().unwrap();
    let args = [
        "--www",
        www_dir,
        "--allow-origin",
        "https://chat.example.org",
        "--allow-host",
        "natter.example.org",
    ];
    let server_name = format!("localhost:{}", server.addr.port());
    let mut child = spawn_bridge(&server_name, &args, "warn", Stdio::null());
    // It prints the URL to open; the address in it is where it listens.
    let addr = printed_addr(&mut child).await;

    // The page under an --allow-host name is accepted; under another name, refused.
    let port = addr.port();
    let named = format!("natter.example.org:{port}");
    let page = connect_as(addr, Some(&named), Some(&format!("http://{named}"))).await;
    assert!(page.is_ok(), "{named}: {:?}", page.err());
    let _named_conn = server.accept_checked().await;
    let other = format!("other.example.org:{port}");
    let refused = connect_as(addr, Some(&other), Some(&format!("http://{other}"))).await;
    assert!(
        matches!(&refused, Err(WsError::Http(r)) if r.status() == 403),
        "{other}: {refused:?}"
    );
    drop(page);

    // A relayed browser (with an extra allowed Origin) is closed with 1001 on SIGTERM.
    let mut ws = connect_origin(addr, Some("https://chat.example.org"))
        .await
        .expect("allowed origin");
    let mut s = server.accept_checked().await;
    let t0 = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(close_code(&mut ws).await, CloseCode::Away);
    assert!(sees_eof(&mut s).await);
    let status = within(
        "exit",
        tokio::task::spawn_blocking(move || {
            let status = child.0.wait();
            (status, child)
        }),
    )
    .await
    .unwrap()
    .0
    .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

/// `--log-format json` writes one JSON object per log line (a connection's lines carry its span);
/// `--metrics-listen` serves the endpoint and the binary says where.
#[cfg(unix)]
#[tokio::test]
async fn binary_logs_json_and_serves_metrics() {
    let mut server = FakeServer::start().await;
    // The server by host name, as an operator (and the README's cluster example) writes it.
    let args = [
        "--www",
        "/nonexistent",
        "--log-format",
        "json",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let server_name = format!("localhost:{}", server.addr.port());
    let mut child = spawn_bridge(&server_name, &args, "info", Stdio::piped());
    // What it tells its user (stdout) and its log (stderr), as they come.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx2.send(line).is_err() {
                break;
            }
        }
    });
    // Everything it writes, on stdout and stderr alike, is JSON: a container's or a unit's log
    // takes both together. (It printed its two address lines for a person on stdout as they
    // are in text, which broke the JSON log.) The addresses are in the start-up lines.
    let mut json = Vec::new();
    let (mut addr, mut metrics) = (None, None);
    while addr.is_none() || metrics.is_none() {
        let line = within("the start-up lines", lines.recv())
            .await
            .expect("more output");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        let addr_in = |field: &str| -> std::net::SocketAddr {
            v[field].as_str().unwrap_or("").parse().unwrap()
        };
        if v["message"] == "bridge listening" {
            addr = Some(addr_in("listen"));
            // The endpoint says where it listens first; this line names the same address.
            assert_eq!(Some(addr_in("metrics")), metrics, "{line}");
        } else if v["message"] == "metrics endpoint listening" {
            metrics = Some(addr_in("listen"));
        }
        json.push(line);
    }
    let (addr, metrics) = (addr.unwrap(), metrics.unwrap());

    // A browser connects and leaves: its lines are logged within its connection's span.
    let ws = connect(addr).await;
    let _s = server.accept_checked().await;
    drop(ws);
    let mut connected = None;
    while connected.is_none() {
        let line = within("the browser's log line", lines.recv())
            .await
            .expect("more output");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        if v["message"] == "browser connected" {
            connected = Some(v);
        } else {
            // The log and the address lines come on two pipes: start-up lines may come late.
            json.push(line);
        }
    }
    let v = connected.unwrap();
    assert_eq!(v["level"], "INFO", "{v}");
    assert_eq!(
        v["peer"].as_str().map(|p| p.starts_with("127.0.0.1:")),
        Some(true),
        "{v}"
    );
    assert!(v["span"]["id"].is_u64(), "the connection's span: {v}");
    assert!(v["timestamp"].is_string(), "{v}");
    // The start-up lines were JSON too.
    let start: Vec<serde_json::Value> = json
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert!(
        start.iter().any(|v| v["message"] == "bridge listening"),
        "{json:?}"
    );

    // The endpoint answers.
    let mut s = within("connect", tokio::net::TcpStream::connect(metrics))
        .await
        .unwrap();
    within(
        "write",
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n"),
    )
    .await
    .unwrap();
    let mut body = String::new();
    within("read", s.read_to_string(&mut body)).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("natter_bridge_websocket_sessions"), "{body}");
}

/// No secret a browser sends reaches the log, at any level: with `RUST_LOG=trace`, tungstenite
/// logged every frame it read, payload and all (`received frame ... payload: 0x...`, `Received
/// message ...`), so a password typed in the page's sign-in form was in the bridge's log.
#[cfg(unix)]
#[tokio::test]
async fn at_trace_level_the_log_holds_no_frame_payload() {
    let mut server = FakeServer::start().await;
    let mut child = spawn_bridge(
        &server.addr.to_string(),
        &["--www", "/nonexistent"],
        "trace",
        Stdio::piped(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let addr = printed_addr(&mut child).await;

    let mut ws = connect(addr).await;
    let mut s = server.accept_checked().await;
    // A payload as a sign-in's: the password's bytes in the frame.
    let secret = b"hunter2-SignInPassword";
    send_bin(&mut ws, secret).await;
    let mut got = vec![0u8; 4 + secret.len()];
    within("relayed", s.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got[4..], secret);
    // A close frame: tungstenite says so at DEBUG, which the log keeps.
    within("close", futures_util::SinkExt::close(&mut ws))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.0.kill();
    let _ = child.0.wait();
    let log = log.join().unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains("DEBUG") && l.contains("Received close frame")),
        "tungstenite's log reaches the bridge's: {log:#?}"
    );
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let leaked: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("hunter2") || l.contains(&hex))
        .collect();
    assert!(leaked.is_empty(), "the payload in the log: {leaked:#?}");
}

/// Started with a shell's low soft limit of open files (256: fewer than two files for each of
/// its default 4,096 browsers), natter-bridge raises it to the hard limit before it listens.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn it_raises_a_low_open_file_limit_to_the_hard_limit() {
    let open_files = |limits: &str| -> (String, String) {
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("the open files line")
            .to_owned();
        let mut words = line.split_whitespace().skip(3);
        let soft = words.next().expect("soft").to_owned();
        let hard = words.next().expect("hard").to_owned();
        (soft, hard)
    };
    let (_, hard) = open_files(&std::fs::read_to_string("/proc/self/limits").unwrap());
    let server = FakeServer::start().await;
    let child = Command::new("sh")
        .args(["-c", r#"ulimit -S -n 256 && exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_natter-bridge"))
        .args(["--listen", "127.0.0.1:0", "--server"])
        .arg(server.addr.to_string())
        .env("RUST_LOG", "warn")
        .env("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut child = Running(child);
    // Listening (it prints its URL) comes after the limit is raised.
    let _addr = printed_addr(&mut child).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.0.id())).unwrap();
    assert_eq!(open_files(&limits), (hard.clone(), hard));
}

/// Every way the bridge's start fails is one `ERROR` line of its log (tracing's, JSON when asked
/// for), saying what failed and why, and a non-zero exit: a bad flag, a taken port, a bad
/// certificate, an unreadable secret file and an unknown server host were printed with
/// `eprintln!` outside the log.
#[tokio::test]
async fn every_failure_at_start_is_one_error_line_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("cert.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    let missing = dir.path().join("secret").display().to_string();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
            .args(args)
            .env_remove("NATTER_BRIDGE_SERVER")
            .env_remove("NATTER_BRIDGE_TRUSTED_PROXY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let short = dir.path().join("short-secret");
    std::fs::write(&short, "too short\n").unwrap();
    let short = short.display().to_string();
    let cases: [(&[&str], i32, &[&str]); 6] = [
        (
            &["--listen", "127.0.0.1:0", "--server-secret-file", &short],
            1,
            &[&short, "bridge secret", "must be 16 to 256 characters"],
        ),
        (
            &["--max-connections", "lots"],
            2,
            &["invalid value 'lots' for '--max-connections <N>'"],
        ),
        (&["--listen", &taken], 1, &["cannot listen on", &taken]),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                &garbage,
                "--tls-key",
                &garbage,
            ],
            1,
            &[&garbage, "no CERTIFICATE"],
        ),
        (
            &["--listen", "127.0.0.1:0", "--server-secret-file", &missing],
            1,
            &["cannot read the secret file", &missing],
        ),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--server",
                "nat-ter.invalid:8000",
            ],
            1,
            &["--server nat-ter.invalid:8000"],
        ),
    ];
    for (args, status, words) in cases {
        let (code, said) = within(
            "the bridge stops",
            tokio::task::spawn_blocking({
                let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                move || run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            }),
        )
        .await
        .unwrap();
        assert_eq!(code, Some(status), "{args:?}: {said}");
        let errors: Vec<&str> = said.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {said}");
        assert!(
            errors[0].contains(" ERROR natter_bridge: cannot start error="),
            "{args:?}: {said}"
        );
        for w in words {
            assert!(errors[0].contains(w), "{args:?}: {w:?} not in {said}");
        }
    }
    let (code, said) = run(&["--log-format", "json", "--listen", &taken]);
    assert_eq!(code, Some(1), "{said}");
    let line = said
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no JSON error line: {said}"));
    assert_eq!(line["message"], "cannot start", "{said}");
    assert!(line["error"].as_str().unwrap().contains(&taken), "{said}");
}

/// `GET path` on `addr` (the metrics endpoint): status and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = within("connect", tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", s.write_all(req.as_bytes())).await.unwrap();
    let mut all = Vec::new();
    within("read", s.read_to_end(&mut all)).await.unwrap();
    let all = String::from_utf8(all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// A bridge given another secret than the server's: the server refuses it with an error kind of
/// its own (`BridgeSecret`), and the bridge says so: a `WARN` line naming the secret with the
/// server's words, a close reason of its own for the browser (1013, as for a server it cannot
/// use), `secret_refused` in the metrics and `/readyz` saying why. It logged only
/// `reason=ServerClosed`, and the page saw a protocol error it could do nothing about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_with_the_wrong_secret_says_the_server_refused_it() {
    let server = natter_server::start(natter_server::ServerConfig::local_test())
        .await
        .unwrap();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--server")
            .arg(server.local_addrs()[0].to_string())
            .args(["--www", "/nonexistent"])
            .env("RUST_LOG", "info")
            .env("NATTER_BRIDGE_SECRET", "a secret that is not the server's")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let printed = within(
        "the two address lines",
        tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .take(2)
                .map(|l| l.unwrap())
                .collect::<Vec<_>>()
        }),
    )
    .await
    .unwrap();
    let addr_in = |prefix: &str| -> std::net::SocketAddr {
        let line = printed
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {printed:?}"));
        line.trim_end_matches("/metrics")
            .trim_end_matches('/')
            .parse()
            .unwrap()
    };
    let addr = addr_in("natter-bridge: open http://");
    let metrics = addr_in("natter-bridge: metrics on http://");

    let mut ws = connect(addr).await;
    match next_msg(&mut ws).await {
        Some(tokio_tungstenite::tungstenite::Message::Close(Some(f))) => {
            assert_eq!(f.code, CloseCode::Again);
            assert_eq!(
                f.reason.as_str(),
                "chat server refused this bridge's secret"
            );
        }
        other => panic!("expected the bridge's close, got {other:?}"),
    }
    let (status, why) = http_get(metrics, "/readyz").await;
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("refuses this bridge's secret"), "{why}");
    let (_, scraped) = http_get(metrics, "/metrics").await;
    assert!(
        scraped
            .contains("natter_bridge_websocket_sessions_ended_total{reason=\"secret_refused\"} 1"),
        "{scraped}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stderr = child.0.stderr.take().unwrap();
    let log = within(
        "the log to its end",
        tokio::task::spawn_blocking(move || std::io::read_to_string(stderr).unwrap()),
    )
    .await
    .unwrap();
    let warned = log
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains("refused this bridge's secret"))
        .unwrap_or_else(|| panic!("no warning: {log}"));
    assert!(
        warned.contains("NATTER_BRIDGE_SECRET") && warned.contains("is not this server's"),
        "{warned}"
    );
    assert!(log.contains("reason=SecretRefused"), "{log}");
    within("server shutdown", server.shutdown()).await.unwrap();
}

/// README ("Reload"): natter-server rereads its bridge secret file on SIGHUP, so a secret is
/// rotated without a restart; the bridge read its own only at start, so after a rotation every
/// browser was refused until the bridge was restarted, dropping them all. SIGHUP rereads
/// `--server-secret-file` too: new relays present the new secret.
#[cfg(unix)]
#[tokio::test]
async fn sighup_rereads_the_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "the first secret, rotated soon\n").unwrap();
    let mut server = FakeServer::start().await;
    let file_arg = file.display().to_string();
    let mut child = spawn_bridge(
        &server.addr.to_string(),
        &["--server-secret-file", &file_arg],
        "warn",
        Stdio::null(),
    );
    let addr = printed_addr(&mut child).await;
    let first = natter_core::wire::bridge_preamble("127.0.0.1", "the first secret, rotated soon");
    let second =
        natter_core::wire::bridge_preamble("127.0.0.1", "the second secret, after rotation");
    // What the bridge's next relay presents to the server (the first preamble is the shorter).
    let mut presented = async || {
        let _ws = connect(addr).await;
        let mut s = within("bridge connects", server.conns.recv())
            .await
            .expect("fake server running");
        let mut got = vec![0; first.len()];
        within("preamble", s.read_exact(&mut got)).await.unwrap();
        if got[..] != first[..] {
            got.resize(second.len(), 0);
            within("the rest", s.read_exact(&mut got[first.len()..]))
                .await
                .unwrap();
        }
        got
    };
    assert_eq!(presented().await, first);
    std::fs::write(&file, "the second secret, after rotation\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + STEP;
    loop {
        let got = presented().await;
        if got == second {
            break;
        }
        assert_eq!(got, first, "neither secret");
        assert!(
            Instant::now() < deadline,
            "the new secret was never presented"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An empty file is refused; the secret in use stays.
    std::fs::write(&file, "").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(presented().await, second);
    // So is one no server can have (natter-server takes 16 to 256 characters): it was taken,
    // and every browser from then on was refused by the server.
    std::fs::write(&file, "too short\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(presented().await, second);
}

/// A bridge at its connection cap answers 503 and says so in its log once (the operator learns
/// which limit to raise), not once per refusal: it said nothing above DEBUG, so browsers got
/// 503s while the log at its default level was silent.
#[cfg(unix)]
#[tokio::test]
async fn refusals_at_the_connection_cap_are_said_once_in_the_log() {
    let server = FakeServer::start().await;
    let mut child = spawn_bridge(
        &server.addr.to_string(),
        &["--www", "/nonexistent", "--max-connections", "1"],
        "info",
        Stdio::piped(),
    );
    let addr = printed_addr(&mut child).await;
    // One connection holds the only place (its request head not yet sent).
    let held = within("connect", tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let mut s = within("connect", tokio::net::TcpStream::connect(addr))
            .await
            .unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = within("the 503", s.read_to_end(&mut answer)).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 503"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    drop(held);
    let _ = child.0.kill();
    let stderr = child.0.stderr.take().unwrap();
    let log = within(
        "the log",
        tokio::task::spawn_blocking(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        }),
    )
    .await
    .unwrap();
    let said: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("at its connection cap"))
        .collect();
    assert_eq!(said.len(), 1, "{log:#?}");
    assert!(
        said[0].contains("WARN") && said[0].contains("max_connections=1"),
        "{}",
        said[0]
    );
}

/// A failed TLS handshake and a bad request head are said in the log at `INFO` (an operator
/// whose users' browsers fail the handshake has something to read at the default level), at
/// most once per 10 s for each kind with how many came since (a scanner does not write the
/// log line by line). Until the thirty-second session both were `DEBUG` only, counted in the
/// metrics and nowhere else.
#[cfg(unix)]
#[tokio::test]
async fn failed_tls_handshakes_and_bad_heads_are_said_once_per_10_s_at_info() {
    let dir = tempfile::tempdir().unwrap();
    let ca = natter_tls::dev_ca::DevCa::new("natter test CA").unwrap();
    let (cert, key) = ca
        .leaf(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir.path())
        .unwrap();
    let server = FakeServer::start().await;
    let mut child = spawn_bridge(
        &server.addr.to_string(),
        &[
            "--www",
            "/nonexistent",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        "info",
        Stdio::piped(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = within(
        "the URL line",
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let addr: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("https://"))
        .unwrap_or_else(|| panic!("no https URL in {line:?}"))
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    for _ in 0..4 {
        // A TLS record header (handshake, TLS 1.0) around bytes that are no ClientHello.
        let mut s = within("connect", tokio::net::TcpStream::connect(addr))
            .await
            .unwrap();
        write_all(
            &mut s,
            &[0x16, 0x03, 0x01, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef],
        )
        .await;
        assert!(sees_eof(&mut s).await);
        // Plain HTTP on the HTTPS port whose head HTTP cannot read: answered 400.
        let mut s = within("connect", tokio::net::TcpStream::connect(addr))
            .await
            .unwrap();
        write_all(&mut s, b"GARBAGE\r\n\r\n").await;
        let mut answer = String::new();
        within("the answer", s.read_to_string(&mut answer))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.0.kill();
    let _ = child.0.wait();
    let log = log.join().unwrap();
    let said = |words: &str| {
        log.iter()
            .filter(|l| l.contains(" INFO ") && l.contains(words))
            .cloned()
            .collect::<Vec<_>>()
    };
    let tls = said("TLS handshakes failed");
    assert_eq!(tls.len(), 1, "{log:#?}");
    assert!(tls[0].contains("count=1"), "{tls:?}");
    assert!(tls[0].contains("tls_handshake"), "{tls:?}");
    let heads = said("bad request heads");
    assert_eq!(heads.len(), 1, "{log:#?}");
    assert!(heads[0].contains("bad_request"), "{heads:?}");
}

/// A page asking for WebSockets again and again with an Origin the bridge does not allow (or
/// under a Host it was not told of, or without the Upgrade header) is refused each time and said
/// in the log once per 10 s for each kind, with how many came since, as the caps' and the
/// handshakes' refusals are. Until the forty-first session each refusal was a line of its own:
/// any page in any browser could fill the bridge's log.
#[cfg(unix)]
#[tokio::test]
async fn refused_websockets_are_said_once_per_10_s() {
    let server = FakeServer::start().await;
    let mut child = spawn_bridge(
        &server.addr.to_string(),
        &["--www", "/nonexistent"],
        "info",
        Stdio::piped(),
    );
    let addr = printed_addr(&mut child).await;
    let stderr = child.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    for _ in 0..5 {
        let e = connect_origin(addr, Some("http://evil.example"))
            .await
            .expect_err("a foreign origin");
        assert!(
            matches!(e, WsError::Http(ref r) if r.status() == 403),
            "{e}"
        );
        let e = connect_as(
            addr,
            Some("rebound.example:8080"),
            Some("http://rebound.example:8080"),
        )
        .await
        .expect_err("a rebound host");
        assert!(
            matches!(e, WsError::Http(ref r) if r.status() == 403),
            "{e}"
        );
        let mut s = within("connect", tokio::net::TcpStream::connect(addr))
            .await
            .unwrap();
        write_all(
            &mut s,
            format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
        )
        .await;
        let mut answer = String::new();
        let _ = within("the answer", s.read_to_string(&mut answer)).await;
        assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.0.kill();
    let _ = child.0.wait();
    let log = log.join().unwrap();
    for (words, level, reason) in [
        ("origin not allowed", " INFO ", r#"reason="origin""#),
        ("host not allowed", " WARN ", r#"reason="host""#),
        (
            "not a WebSocket handshake",
            " INFO ",
            r#"reason="handshake""#,
        ),
    ] {
        let said: Vec<&String> = log.iter().filter(|l| l.contains(words)).collect();
        assert_eq!(said.len(), 1, "{words}: {log:#?}");
        assert!(said[0].contains(level), "{}", said[0]);
        assert!(said[0].contains("count=1"), "{}", said[0]);
        assert!(said[0].contains(reason), "{}", said[0]);
    }
    let origin = log
        .iter()
        .find(|l| l.contains("origin not allowed"))
        .unwrap();
    assert!(origin.contains("evil.example"), "{origin}");
}

/// SIGHUP to a bridge with nothing it can reread (no `--tls-cert`, no `--server-secret-file`)
/// says so, instead of a bare `SIGHUP received: reloading` that left the operator wondering
/// what it did.
#[cfg(unix)]
#[tokio::test]
async fn sighup_with_nothing_to_reread_says_so() {
    let server = FakeServer::start().await;
    let mut child = spawn_bridge(&server.addr.to_string(), &[], "info", Stdio::piped());
    let _ = printed_addr(&mut child).await;
    let stderr = child.0.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, what: &str| loop {
        let line = within(what, rx.recv())
            .await
            .expect("the bridge's log goes on");
        if line.contains(what) {
            return line;
        }
    };
    next(&mut rx, "bridge listening").await;
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let said = next(&mut rx, "SIGHUP").await;
    assert!(said.contains("nothing to reread"), "{said}");
    assert!(
        said.contains("--tls-cert") && said.contains("--server-secret-file"),
        "{said}"
    );
}

/// `sig` twice: the first starts the graceful shutdown, which a page file being sent to a
/// browser that does not read holds up for the grace period (3 s); the second ends the process
/// at once with `status`.
#[cfg(unix)]
async fn second_signal_while_shutting_down(sig: nix::sys::signal::Signal, status: i32) {
    use std::io::{Read, Write};
    use std::sync::mpsc;
    let server = FakeServer::start().await;
    // More than the sockets' buffers take: its answer goes on for as long as it is not read.
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("big.wasm"), vec![b'n'; 32 << 20]).unwrap();
    let mut child = spawn_bridge(
        &server.addr.to_string(),
        &["--www", www.path().to_str().unwrap()],
        "info",
        Stdio::piped(),
    );
    let addr = printed_addr(&mut child).await;
    let stderr = child.0.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = |words: &str| {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(l) if l.contains(words) => return l,
                Ok(_) => {}
                Err(e) => panic!("no {words:?} in the log: {e}"),
            }
        }
    };
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    write!(silent, "GET /big.wasm HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    silent.set_read_timeout(Some(STEP)).expect("a read timeout");
    let mut start = [0u8; 12];
    silent.read_exact(&mut start).expect("the answer starts");
    assert_eq!(&start, b"HTTP/1.1 200");
    std::thread::sleep(Duration::from_millis(300));

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).unwrap());
    nix::sys::signal::kill(pid, sig).unwrap();
    until("bridge stopping");
    let second = Instant::now();
    nix::sys::signal::kill(pid, sig).unwrap();
    let said = until("second signal while shutting down");
    assert!(said.contains(sig.as_str()), "{said}");
    let exited = within(
        "the exit after the second signal",
        tokio::task::spawn_blocking(move || {
            let status = child.0.wait();
            (status, child)
        }),
    )
    .await
    .unwrap()
    .0
    .unwrap();
    assert_eq!(exited.code(), Some(status), "128 + the signal: {exited:?}");
    assert!(
        second.elapsed() < Duration::from_millis(1500),
        "exited {:?} after the second signal (the grace is 3 s)",
        second.elapsed()
    );
    drop(silent);
}

/// README: a second SIGINT or SIGTERM while the bridge shuts down ends it at once, with
/// 128 + the signal, as natter-server does; before, the bridge waited out its grace period.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_while_shutting_down_exits_at_once_with_143() {
    second_signal_while_shutting_down(nix::sys::signal::Signal::SIGTERM, 143).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_twice_exits_at_once_with_130() {
    second_signal_while_shutting_down(nix::sys::signal::Signal::SIGINT, 130).await;
}
