//! The `natter-server` binary: it prints the address it bound, serves, and on SIGTERM tells its
//! clients it is going away and exits 0.

mod support;

use support::*;
use tokio::process::Command;
use tokio::time::timeout;

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
