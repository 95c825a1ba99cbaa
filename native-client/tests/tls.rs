//! The CLI over TLS against a real natter-server with a throwaway CA (rcgen): `--ca-file`
//! chats with a plain client; a certificate that does not verify, or a server that does not
//! speak TLS, ends the client at once with exit status 1 and the reason.

mod support;

use natter_server::{Server, ServerConfig, TlsCerts};
use natter_tls::dev_ca::DevCa;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::Client;
use tokio::process::Command;

struct Setup {
    server: Server,
    plain: SocketAddr,
    tls: SocketAddr,
    ca_file: PathBuf,
    dir: tempfile::TempDir,
}

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
    let mut c = ServerConfig::local_test_patient();
    c.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    c.tls_certs = Some(TlsCerts { cert, key });
    let server = natter_server::start(c).await.unwrap();
    let (plain, tls) = (server.local_addrs()[0], server.tls_addrs()[0]);
    Setup {
        server,
        plain,
        tls,
        ca_file,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ca_file_the_cli_chats_over_tls_with_a_plain_client() {
    let s = setup().await;
    let ca = s.ca_file.to_str().unwrap().to_owned();
    let mut alice = Client::start_with(
        "alice",
        &[
            "--nick".into(),
            "alice".into(),
            "--ca-file".into(),
            ca,
            format!("natters://127.0.0.1:{}", s.tls.port()),
        ],
    );
    alice.expect("-- connected as alice").await;
    let mut bob = Client::start("bob", s.plain, &[]);
    bob.expect("-- connected as bob").await;
    alice.expect("[#lobby] -- bob joined #lobby").await;
    alice.send("hello over tls").await;
    bob.expect("[#lobby] <alice> hello over tls").await;
    bob.send("hello in clear").await;
    alice.expect("[#lobby] <bob> hello in clear").await;
    alice.close_stdin();
    bob.close_stdin();
    assert!(alice.exit_status().await.success());
    assert!(bob.exit_status().await.success());
    s.server.shutdown().await.unwrap();
}

/// Runs `natter ARGS` with stdin left open; it must exit 1 within 5 s. Returns its stderr.
async fn fails_at_once(args: &[String]) -> String {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--lines", "--nick", "carol"])
        .args(args)
        .env("XDG_CONFIG_HOME", support::config_home())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter starts");
    let stdin = child.stdin.take();
    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("natter {args:?} still running after 5 s"))
        .unwrap();
    drop(stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("natter {args:?}: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_ends_the_client_with_the_reason() {
    let s = setup().await;
    let tls_url = format!("natters://127.0.0.1:{}", s.tls.port());

    // A CA that did not sign the server's certificate.
    let other = s.dir.path().join("other-ca.pem");
    std::fs::write(&other, DevCa::new("other CA").unwrap().cert_pem()).unwrap();
    let err = fails_at_once(&[
        "--ca-file".into(),
        other.to_str().unwrap().into(),
        tls_url.clone(),
    ])
    .await;
    assert!(err.contains("certificate"), "{err}");
    assert!(
        err.contains("UnknownIssuer") || err.contains("issuer"),
        "{err}"
    );

    // The system's roots do not know the test CA either (or there are none: also exit 1).
    let err = fails_at_once(&["--tls".into(), tls_url.clone()]).await;
    assert!(err.contains("certificate"), "{err}");

    // The plain port does not speak TLS.
    let plain = format!("natters://127.0.0.1:{}", s.plain.port());
    let err = fails_at_once(&[
        "--ca-file".into(),
        s.ca_file.to_str().unwrap().into(),
        plain,
    ])
    .await;
    assert!(err.contains("TLS"), "{err}");

    // A CA file that is not there is named.
    let missing = s.dir.path().join("missing-ca.pem");
    let err = fails_at_once(&[
        "--ca-file".into(),
        missing.to_str().unwrap().into(),
        tls_url,
    ])
    .await;
    assert!(err.contains("missing-ca.pem"), "{err}");
    s.server.shutdown().await.unwrap();
}

/// `--login` to a server on another machine without TLS says, on stderr and before anything is
/// sent, that the password crosses the network in clear; over TLS, or to this machine, nothing
/// is said. Until the thirty-first session nothing was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_without_tls_to_another_machine_is_warned_of() {
    // 192.0.2.1 (TEST-NET-1) is never answered: the client is stopped once it has spoken.
    for (server, extra, warned) in [
        ("192.0.2.1:8000", None, true),
        ("natters://192.0.2.1:8443", None, false),
        ("192.0.2.1:8443", Some("--tls"), false),
        ("127.0.0.1:9", None, false),
        ("localhost:9", None, false),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
        cmd.args(["--lines", "--login", "--nick", "alice"])
            .args(extra)
            .arg(server)
            .env("NATTER_PASSWORD", "correct horse")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("natter starts");
        tokio::time::sleep(Duration::from_millis(700)).await;
        child.start_kill().unwrap();
        let out = child.wait_with_output().await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.contains("crosses the network in clear"),
            warned,
            "{server} {extra:?}: {err}"
        );
    }
}

/// A CA certificate served as the server's own (what `openssl req -x509` makes unless told
/// otherwise; `native-server/tests/tls.rs` makes one with openssl itself) is refused by every verifying client, even with it as the CA file: the CLI says
/// what that means and what the operator should do, not rustls's `CaUsedAsEndEntity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_as_the_servers_own_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = natter_tls::dev_ca::self_signed_ca_leaf(&["localhost", "127.0.0.1"]).unwrap();
    let (cert, key) = leaf.write(dir.path()).unwrap();
    let mut c = ServerConfig::local_test_patient();
    c.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    c.tls_certs = Some(TlsCerts {
        cert: cert.clone(),
        key,
    });
    let server = natter_server::start(c).await.unwrap();
    let tls_url = format!("natters://127.0.0.1:{}", server.tls_addrs()[0].port());
    let err = fails_at_once(&["--ca-file".into(), cert.to_str().unwrap().into(), tls_url]).await;
    assert!(!err.contains("CaUsedAsEndEntity"), "{err}");
    assert!(
        err.contains("is a CA certificate") && err.contains("basicConstraints=critical,CA:FALSE"),
        "{err}"
    );
    server.shutdown().await.unwrap();
}
