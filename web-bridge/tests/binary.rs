//! The `natter-bridge` binary: flags, the URL it prints, and a clean exit on SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
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

#[cfg(unix)]
#[tokio::test]
async fn binary_serves_relays_and_exits_cleanly_on_sigterm() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), b"<p>natter</p>").unwrap();
    let mut server = FakeServer::start().await;
    let child = Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
        .args(["--listen", "127.0.0.1:0", "--server"])
        .arg(server.addr.to_string())
        .arg("--www")
        .arg(www.path())
        .args(["--allow-origin", "https://chat.example.org"])
        .args(["--allow-host", "natter.example.org"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut child = Running(child);

    // It prints the URL to open; the address in it is where it listens.
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
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();

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
