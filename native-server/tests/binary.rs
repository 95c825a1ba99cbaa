//! The `natter-server` binary: it prints the address it bound, serves, and on SIGTERM tells its
//! clients it is going away and exits 0.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::time::timeout;

/// Starts the binary with `args` and `envs`; returns it (killed when dropped), its log and the
/// address it says it listens on.
async fn spawn_server(
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, BufReader<ChildStderr>, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NATTER_LISTEN")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_SHUTDOWN_GRACE_MS")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter-server");
    let mut log = BufReader::new(child.stderr.take().expect("piped stderr"));
    let addr = timeout(WAIT, async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = log.read_line(&mut line).await.expect("read the log");
            assert!(n > 0, "natter-server exited before listening");
            if line.contains("listening") {
                if let Some(a) = line.split("addr=").nth(1) {
                    let a = a.split_whitespace().next().unwrap_or_default();
                    return a.parse::<SocketAddr>().expect("an address in the log line");
                }
            }
        }
    })
    .await
    .expect("no 'listening' log line");
    (child, log, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_says_goodbye_and_exits_zero() {
    let (mut child, mut log, addr) = spawn_server(
        &["--listen", "127.0.0.1:0", "--shutdown-grace-ms", "2000"],
        &[],
    )
    .await;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    a.send("over the process boundary").await;
    b.expect(
        |l| l == format!("<{nick_a}> over the process boundary"),
        "a's line",
    )
    .await;
    let (mut bin, _) = BinClient::hello(addr, "bin", None).await;

    let status = sigterm(&mut child).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let got = bin.expect_closed().await;
    assert!(
        matches!(got.last(), Some(natter_core::wire::ServerMsg::Bye { .. })),
        "{got:#?}"
    );
    let lines = a.expect_closed().await;
    assert!(lines.iter().any(|l| l.starts_with("-- ")), "{lines:?}");
    b.expect_closed().await;
    // The log has one connect and one disconnect line per client, with the peer address.
    let mut rest = String::new();
    let _ = timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_string(&mut log, &mut rest),
    )
    .await;
    assert!(rest.contains("disconnected"), "{rest}");
    assert!(rest.contains("peer=127.0.0.1:"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_flags() {
    let out = timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .arg("--help")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("--help timed out")
    .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--listen", "--config", "--trusted-proxy", "NATTER_LISTEN"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

async fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running child has a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("natter-server did not exit within 10 s of SIGTERM")
        .expect("wait for natter-server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_a_config_file_and_the_environment() {
    // The file sets the listen address and a limit; the environment sets the grace.
    let path = std::env::temp_dir().join(format!("natter-server-test-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "listen = [\"127.0.0.1:0\"]\n[limits]\nmax_connections = 1\n",
    )
    .expect("write the config file");
    let config = path.to_str().expect("a UTF-8 temp path").to_owned();
    let (mut child, _log, addr) = spawn_server(
        &[],
        &[
            ("NATTER_CONFIG", &config),
            ("NATTER_SHUTDOWN_GRACE_MS", "500"),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&path);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let (_a, _) = TextClient::welcomed(addr, "a").await;
    // max_connections = 1 from the file: the second is turned away.
    let mut b = TextClient::connect(addr, "b").await;
    let got = b.expect_closed().await;
    assert!(got.iter().any(|l| l.contains("full")), "{got:?}");
    assert_eq!(sigterm(&mut child).await.code(), Some(0));
}
