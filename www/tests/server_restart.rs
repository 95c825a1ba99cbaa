//! The page in headless Chromium while natter-server (with its store) is killed with SIGKILL
//! and started again on the same port, the bridge staying up: the page shows that the
//! connection was lost, reconnects by itself through the bridge, resumes its session (its nick,
//! no "messages missed" marker: the store has every line), delivers the line typed while the
//! server was down once, and shows every line once, as does a person on `nc`. And while the
//! server stays away for several attempts: the conversation says why once, the status line
//! counts the attempts, and "reconnected" is said once; a server that comes back full, refusing
//! each attempt, is said once too. A signed-in page comes back signed in, with a line said
//! before it was back shown once; a server that lost its store brings the page back in its
//! rooms, saying it could not resume, with the line typed meanwhile sent once.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI); the full
/// server's one waits out several of the longest backoffs.
const SCENARIO_LIMIT: Duration = Duration::from_secs(180);

/// natter-server on `addr` with its store in `data`, taking the test bridge's secret; returns
/// once it says it listens (its log read for that line, then drained). Port 0 asks for a free
/// port: the address it listens on is returned.
async fn start_server(addr: SocketAddr, data: &Path) -> (Child, SocketAddr) {
    start_server_with(addr, data, &[]).await
}

/// As [`start_server`], with more flags.
async fn start_server_with(addr: SocketAddr, data: &Path, flags: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(workspace_bin("natter-server").await)
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .args(flags)
        .env("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET)
        // Its warnings, and the line that says where it listens.
        .env("RUST_LOG", "warn,natter_server::server=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start natter-server");
    let mut log = BufReader::new(child.stderr.take().expect("piped stderr"));
    // A server that cannot bind (a restart on a port something else took meanwhile) exits:
    // said with its log, not found out later as a page that never reconnects.
    let listening = timeout(STEP, async {
        let mut seen = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = log.read_line(&mut line).await.expect("read the log");
            assert!(n > 0, "natter-server on {addr} exited; its log:\n{seen}");
            seen.push_str(&line);
            if line.contains("listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                let a = a.split_whitespace().next().unwrap_or_default();
                break a.parse::<SocketAddr>().expect("an address in the log line");
            }
        }
    })
    .await
    .expect("natter-server says it listens");
    tokio::spawn(async move {
        let mut line = String::new();
        while log.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            eprint!("[natter-server] {line}");
            line.clear();
        }
    });
    (child, listening)
}

/// The text of every line of the page's `#lobby` log (notices too).
async fn page_log(b: &Browser) -> Vec<String> {
    let v = js(
        b,
        r##"return [...document.querySelectorAll('.log[data-conv="#lobby"] .line')].map(l => l.textContent);"##,
    )
    .await;
    v.as_array()
        .expect("an array")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Starts natter-server (its store in a fresh directory) on a free port, natter-bridge before it
/// and a headless Chromium, runs `scenario` (the browser, the page's address, the server's
/// address, the server process and the store's directory) within [`SCENARIO_LIMIT`], and
/// stops everything, whatever the scenario did. `tag` names the temporary directories.
async fn with_page<F, Fut>(tag: &str, scenario: F)
where
    F: FnOnce(Browser, String, SocketAddr, Child, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let www = www_dir();
    let data = TempDir::new(&format!("{tag}-store"));
    // Port 0: a port found free here and given to the server later could be taken meanwhile.
    let (server, addr) = start_server(SocketAddr::from(([127, 0, 0, 1], 0)), &data.0).await;
    let bridge = natter_bridge::start(natter_bridge::BridgeConfig::local_test(addr, www))
        .await
        .expect("start natter-bridge");
    let (driver, port) = start_chromedriver();
    let profile = TempDir::new(&format!("{tag}-chromium"));
    let browser = open_browser(port, &profile.0, &[]).await;
    let page = format!("http://{}/", bridge.local_addr());
    let mut task = tokio::spawn(scenario(
        browser.clone(),
        page,
        addr,
        server,
        data.0.clone(),
    ));
    let outcome = timeout(SCENARIO_LIMIT, &mut task).await;
    task.abort();
    let _ = timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => panic!("the scenario did not finish within {SCENARIO_LIMIT:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_resumes_once_a_killed_server_is_back_with_nothing_lost_or_doubled() {
    with_page("natter-restart", scenario).await;
}

async fn scenario(
    browser: Browser,
    page: String,
    addr: SocketAddr,
    mut server: Child,
    data: std::path::PathBuf,
) {
    let b = &browser;
    open_page_as(b, &page, Some("webby")).await;
    let (mut nc_w, nc_out) = nc(addr, "netcat").await;
    nc_w.write_all(b"one\r\n").await.expect("write");
    type_line(b, "page one").await;
    wait_for!("the page to show nc's line", {
        page_said(b)
            .await
            .contains(&"<netcat> one".to_owned())
            .then_some(())
    });
    wait_for!("nc to hear the page", nc_out.has("<webby> page one"));

    // The server dies (SIGKILL: no goodbye) and stays away a moment.
    server.kill().await.expect("kill natter-server");
    drop(nc_w);
    // The state and the banner read together: read one after the other, the next attempt
    // (state "connecting", banner "reconnecting…") could come between them on a busy machine.
    let banner = wait_for!("the page to show it is reconnecting", {
        let seen = js(
            b,
            "return window.natterDebug.state() === 'reconnecting' \
               ? document.getElementById('banner').textContent : null;",
        )
        .await;
        seen.as_str().map(str::to_owned)
    });
    assert!(banner.contains("Connection lost"), "banner: {banner:?}");
    // Typed while the server is down: kept, sent once it is back.
    type_line(b, "typed while down").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = page_log(b).await;
    assert_eq!(
        log.iter().filter(|l| l.contains("connection lost")).count(),
        1,
        "the loss is said once, failed attempts are not more losses: {log:#?}"
    );

    // Back on the same port with the same store: the page resumes through the same bridge.
    let _server = start_server(addr, &data).await;
    wait_for!(
        "the page to reconnect",
        (conn_state(b).await == "connected").then_some(())
    );
    let (mut nc_w, nc_out) = nc(addr, "netcat").await;
    wait_for!(
        "nc to get the line typed while the server was down",
        nc_out.has("<webby> typed while down")
    );
    nc_w.write_all(b"two\r\n").await.expect("write");
    let all: Vec<String> = [
        "<netcat> one",
        "<webby> page one",
        "<webby> typed while down",
        "<netcat> two",
    ]
    .map(str::to_owned)
    .to_vec();
    wait_for!("the page to show nc's line after the restart", {
        page_said(b).await.contains(&all[3]).then_some(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = page_said(b).await;
    let ours: Vec<String> = shown.iter().filter(|l| all.contains(l)).cloned().collect();
    assert_eq!(ours, all, "each once, in order: {shown:#?}");
    assert_eq!(nc_out.count("<webby> typed while down"), 1);
    let log = page_log(b).await;
    assert!(
        !log.iter().any(|l| l.contains("missed here")),
        "the store has every line: no gap marker: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("reconnected as webby")),
        "the page says it resumed: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_once_that_it_cannot_reach_the_server_and_once_that_it_is_back() {
    with_page("natter-unreachable", unreachable_scenario).await;
}

/// The server stays away for several attempts and comes back: the conversation says once that
/// the connection was lost and once why the attempts fail (not once per attempt, with or without
/// a line typed meanwhile), the status line counts the attempts, and the page says once that it
/// reconnected.
async fn unreachable_scenario(
    browser: Browser,
    page: String,
    addr: SocketAddr,
    mut server: Child,
    data: std::path::PathBuf,
) {
    let b = &browser;
    open_page_as(b, &page, Some("webby")).await;
    server.kill().await.expect("kill natter-server");
    wait_for!(
        "the page to show it is reconnecting",
        (conn_state(b).await == "reconnecting").then_some(())
    );
    let attempt = || async {
        js(b, "return natterDebug.attempt();")
            .await
            .as_u64()
            .unwrap_or(0)
    };
    wait_for!("a second attempt", (attempt().await >= 2).then_some(()));
    type_line(b, "typed while down").await;
    // Attempts 2, 3 and 4 fail at 0.5 s, about 1 s and about 2 s apart.
    wait_for!("a fourth attempt", (attempt().await >= 4).then_some(()));
    let status = text_of(b, "#status").await;
    assert!(status.contains("attempt"), "the status counts: {status:?}");
    let log = page_log(b).await;
    let count = |log: &[String], words: &str| log.iter().filter(|l| l.contains(words)).count();
    assert_eq!(count(&log, "connection lost"), 1, "{log:#?}");
    assert_eq!(
        count(&log, "cannot reach the chat server"),
        1,
        "why the attempts fail is said once: {log:#?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("did not welcome") || l.contains("1013")),
        "in words, not a close code: {log:#?}"
    );

    let _server = start_server(addr, &data).await;
    wait_for!(
        "the page to reconnect",
        (conn_state(b).await == "connected").then_some(())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = page_log(b).await;
    assert_eq!(count(&log, "reconnected as webby"), 1, "{log:#?}");
    assert_eq!(count(&log, "cannot reach the chat server"), 1, "{log:#?}");
    let status = text_of(b, "#status").await;
    assert_eq!(status, "connected");
}

/// How long a person on `nc` may wait for the server's greeting (it waits up to a second for
/// a binary preamble first).
const GREETING_LIMIT: Duration = Duration::from_secs(5);

/// The longest the page waits before its `attempt`th attempt since the last welcome: the
/// session's backoff, `RECONNECT_MIN·2^(n-1)` capped at `RECONNECT_MAX` (its jitter only
/// shortens it).
fn longest_wait(attempt: u64) -> Duration {
    use natter_core::limits::{RECONNECT_MAX, RECONNECT_MIN};
    let exp = attempt.saturating_sub(1).min(32);
    Duration::from_millis(
        RECONNECT_MIN
            .0
            .saturating_mul(1 << exp)
            .min(RECONNECT_MAX.0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_refusing_the_page_is_said_once_over_several_attempts() {
    with_page("natter-full", full_scenario).await;
}

/// The server comes back full (one connection at most, held by a person on `nc`): each of the
/// page's attempts is refused with an error and a goodbye, and the conversation says why once,
/// not twice per attempt; once there is room the page reconnects and says so once.
async fn full_scenario(
    browser: Browser,
    page: String,
    addr: SocketAddr,
    mut server: Child,
    data: std::path::PathBuf,
) {
    let b = &browser;
    open_page_as(b, &page, Some("webby")).await;
    // In #lobby before the server goes (connected is not joined yet: on a loaded machine the
    // kill could come first, and what the page says would go to no #lobby to be read in).
    wait_for!(
        "the page in #lobby",
        (!page_log(b).await.is_empty()).then_some(())
    );
    server.kill().await.expect("kill natter-server");
    let attempt = || async {
        js(b, "return natterDebug.attempt();")
            .await
            .as_u64()
            .unwrap_or(0)
    };
    let retry_in = || async {
        js(b, "return natterDebug.retryIn();")
            .await
            .as_f64()
            .unwrap_or(0.0)
    };
    // Start the full server well before the page's next attempt, so nc takes the one place:
    // with over 2.5 s to go, a loaded machine has time to start it and let nc in.
    wait_for!("an attempt due in over two seconds", {
        (attempt().await >= 3 && retry_in().await > 2_500.0).then_some(())
    });
    let (mut full, _) = start_server_with(addr, &data, &["--max-connections", "1"]).await;
    // The one place: nc is greeted once
    // the server gives up waiting for a binary preamble, which a loaded machine may take a
    // while to do, so each try waits for the greeting (or the refusal) rather than a fixed time.
    let mut holder = None;
    for _ in 0..10 {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (read, write) = stream.into_split();
        let out = capture(read);
        let greeted = timeout(GREETING_LIMIT, async {
            loop {
                if out.has("Welcome to natter").is_some() {
                    return true;
                }
                if out.has("full").is_some() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        if greeted == Ok(true) {
            holder = Some((write, out));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nc_w = holder.expect("a person on nc gets the full server's one place");
    assert_ne!(
        conn_state(b).await,
        "connected",
        "the page did not take it first"
    );
    // Three more attempts take the backoff's three next waits at most (the last ones are
    // 7.5 to 15 s each): the deadline follows from them, not from one step's.
    let before = attempt().await;
    let waits: Duration = (before + 1..=before + 3).map(longest_wait).sum();
    wait_for!(
        "three attempts refused by the full server",
        waits + STEP,
        (attempt().await >= before + 3).then_some(())
    );
    let log = page_log(b).await;
    let full_words = "the server is full";
    assert_eq!(
        log.iter().filter(|l| l.contains(full_words)).count(),
        1,
        "said once over the attempts: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("error")),
        "a refused attempt is not an error line besides: {log:#?}"
    );
    // Room again: the next attempt gets in.
    drop(nc_w);
    full.kill().await.expect("kill the full server");
    let _server = start_server(addr, &data).await;
    wait_for!(
        "the page to reconnect",
        (conn_state(b).await == "connected").then_some(())
    );
    // Said once: waited for, then given time to be said twice.
    wait_for!(
        "the page to say it reconnected",
        page_log(b)
            .await
            .iter()
            .any(|l| l.contains("reconnected as webby"))
            .then_some(())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = page_log(b).await;
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("reconnected as webby"))
            .count(),
        1,
        "{log:#?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.contains(full_words)).count(),
        1,
        "{log:#?}"
    );
}

/// How many of `lines` contain `words`.
fn count(lines: &[String], words: &str) -> usize {
    lines.iter().filter(|l| l.contains(words)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_page_comes_back_signed_in_and_shows_what_it_missed_once() {
    with_page("natter-restart-account", account_scenario).await;
}

/// Registered and remembered in the dialog; the server is killed and comes back on its store
/// while the page waits to try again; nc says a line before the page is back. The page comes
/// back signed in to the same account (resumed: no sign-in asked again), shows the line it
/// missed once, and the line typed meanwhile goes once.
async fn account_scenario(
    browser: Browser,
    page: String,
    addr: SocketAddr,
    mut server: Child,
    data: std::path::PathBuf,
) {
    let b = &browser;
    open_and_register_remembered(b, &page, "rosa", "correct horse battery").await;
    let account = || async {
        js(b, "return natterDebug.account();")
            .await
            .as_str()
            .map(str::to_owned)
    };
    wait_for!(
        "the page to be signed in as rosa",
        (account().await.as_deref() == Some("rosa")).then_some(())
    );
    seen_then_killed(b, addr, &mut server).await;
    let attempt = || async {
        js(b, "return natterDebug.attempt();")
            .await
            .as_u64()
            .unwrap_or(0)
    };
    let retry_in = || async {
        js(b, "return natterDebug.retryIn();")
            .await
            .as_f64()
            .unwrap_or(0.0)
    };
    // Back while the page waits over a second to try again: nc speaks before the page is back.
    wait_for!("an attempt due in over a second", {
        (attempt().await >= 3 && retry_in().await > 1_200.0).then_some(())
    });
    let _server = start_server(addr, &data).await;
    let (mut nc_w, nc_out) = nc(addr, "netcat").await;
    nc_w.write_all(b"while away\r\n").await.expect("write");
    wait_for!(
        "the page to reconnect",
        (conn_state(b).await == "connected").then_some(())
    );
    wait_for!(
        "nc to get the line typed while the server was down",
        nc_out.has("<rosa> typed while down")
    );
    nc_w.write_all(b"after\r\n").await.expect("write");
    wait_for!("the page to show nc's line after the restart", {
        page_said(b)
            .await
            .contains(&"<netcat> after".to_owned())
            .then_some(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let said = page_said(b).await;
    for line in [
        "<netcat> before",
        "<netcat> while away",
        "<rosa> typed while down",
        "<netcat> after",
    ] {
        assert_eq!(count(&said, line), 1, "{line} once: {said:#?}");
    }
    assert_eq!(nc_out.count("<rosa> typed while down"), 1);
    assert_eq!(account().await.as_deref(), Some("rosa"), "still signed in");
    let log = page_log(b).await;
    assert_eq!(count(&log, "reconnected as rosa"), 1, "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("missed here")), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lost_its_store_brings_the_page_back_in_its_rooms() {
    with_page("natter-restart-lost", lost_scenario).await;
}

/// The server comes back without its store (a new data directory): the page cannot resume,
/// says so and that lines may have been missed, joins its rooms again, and sends the line
/// typed while the server was away once.
async fn lost_scenario(
    browser: Browser,
    page: String,
    addr: SocketAddr,
    mut server: Child,
    _data: std::path::PathBuf,
) {
    let b = &browser;
    open_page_as(b, &page, Some("webby")).await;
    type_line(b, "/join #side").await;
    wait_for!("#side joined", {
        log_of(b, "#side")
            .await
            .iter()
            .any(|l| l.contains("you are in #side"))
            .then_some(())
    });
    js(
        b,
        r##"document.querySelector('button[data-conv="#lobby"]').click();"##,
    )
    .await;
    seen_then_killed(b, addr, &mut server).await;
    let fresh = TempDir::new("natter-restart-fresh");
    let _server = start_server(addr, &fresh.0).await;
    wait_for!(
        "the page to reconnect",
        (conn_state(b).await == "connected").then_some(())
    );
    let (mut nc_w, nc_out) = nc(addr, "netcat").await;
    nc_w.write_all(b"/join #side\r\n").await.expect("write");
    wait_for!("webby back in #side", nc_out.has("#side with: webby"));
    wait_for!("the line typed while down", {
        page_said(b)
            .await
            .contains(&"<webby> typed while down".to_owned())
            .then_some(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let said = page_said(b).await;
    assert_eq!(count(&said, "<webby> typed while down"), 1, "{said:#?}");
    let log = page_log(b).await;
    assert_eq!(count(&log, "could not resume the session"), 1, "{log:#?}");
    assert_eq!(count(&log, "connection lost"), 1, "{log:#?}");
}

/// The page shows a line said on nc ("before"); then natter-server is killed, the page says it
/// is reconnecting, and a line is typed while the server is down ("typed while down").
async fn seen_then_killed(b: &Browser, addr: SocketAddr, server: &mut Child) {
    let (mut nc_w, _) = nc(addr, "netcat").await;
    nc_w.write_all(b"before\r\n").await.expect("write");
    wait_for!("the page to show nc's line", {
        page_said(b)
            .await
            .contains(&"<netcat> before".to_owned())
            .then_some(())
    });
    server.kill().await.expect("kill natter-server");
    drop(nc_w);
    wait_for!(
        "the page to show it is reconnecting",
        (conn_state(b).await == "reconnecting").then_some(())
    );
    type_line(b, "typed while down").await;
}
