//! Operations over real sockets: `/metrics` scraped while nc, IRC and binary clients connect and
//! chat (parsed with a Prometheus text parser), `/healthz` and `/readyz`; and on the real binary,
//! JSON logs and a SIGHUP reload that changes a limit for new connections, while an invalid file
//! changes nothing and the server keeps running.

mod support;

use natter_core::wire::ServerMsg;
use natter_server::ServerConfig;
use prometheus_parse::{Scrape, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStderr, Command};
use tokio::time::{Instant, sleep, timeout};

/// `GET path` on the metrics endpoint: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = connect(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: ops\r\n\r\n");
    timeout(WAIT, s.write_all(req.as_bytes()))
        .await
        .expect("write timed out")
        .expect("write failed");
    let mut all = Vec::new();
    timeout(WAIT, s.read_to_end(&mut all))
        .await
        .expect("read timed out")
        .expect("read failed");
    let all = String::from_utf8(all).expect("utf-8 answer");
    let status = all
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {all:?}"));
    let body = all.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// `/metrics`, parsed.
async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {body}"
    );
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("parses as Prometheus text")
}

/// The sample `name` with exactly these labels' values (other labels may exist), if present.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
}

/// Scrapes until `ok` holds for a scrape (the hub copies its counts every 100 ms), within WAIT.
async fn scrape_until(addr: SocketAddr, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = scrape(addr).await;
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}: {:#?}",
            s.samples
                .iter()
                .map(|x| (&x.metric, &x.labels, &x.value))
                .collect::<Vec<_>>()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

fn at_least(s: &Scrape, name: &str, labels: &[(&str, &str)], n: f64) -> bool {
    value(s, name, labels).is_some_and(|v| v >= n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_nc_irc_and_binary_clients_chat() {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::local_test_patient();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.store = Some(natter_store::Config::new(data.path()));
    config.hub.max_connections = 3;
    let server = natter_server::start(config).await.unwrap();
    let natter = server.local_addrs()[0];
    let irc = server.irc_addrs()[0];
    let m = server.metrics_addr().expect("a metrics address");

    assert_eq!(get(m, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(get(m, "/readyz").await, (200, "ready\n".into()));
    let before = scrape(m).await;
    assert_eq!(value(&before, "natter_users", &[]), Some(0.0));
    assert_eq!(
        value(&before, "natter_sign_ins_total", &[("outcome", "failed")]),
        Some(0.0)
    );
    for kind in ["say", "join", "query"] {
        assert_eq!(
            value(&before, "natter_messages_in_total", &[("kind", kind)]),
            Some(0.0),
            "every kind is shown from the start"
        );
    }
    for scope in ["room", "server"] {
        assert_eq!(
            value(
                &before,
                "natter_moderation_actions_total",
                &[("scope", scope)]
            ),
            Some(0.0),
            "{scope}"
        );
    }

    let (mut nc, _) = TextClient::entered(natter, "nc").await;
    nc.send("/join #ops").await;
    nc.expect_has("#ops").await;
    // nc signs up and registers #ops: a moderation action.
    nc.send("/nick ncops").await;
    nc.send("/register correct-horse-battery").await;
    nc.send("/register #ops").await;
    scrape_until(m, "a room registered", |s| {
        value(s, "natter_moderation_actions_total", &[("scope", "room")]) == Some(1.0)
            && value(s, "natter_sign_ins_total", &[("outcome", "ok")]) == Some(1.0)
    })
    .await;
    let (mut bin, _) = BinClient::hello(natter, "bin", None).await;
    bin.join("#ops").await;
    let mut ircc = TextClient::connect(irc, "irc").await;
    ircc.send_raw(b"NICK ircy\r\nUSER ircy 0 * :Irc\r\nJOIN #ops\r\n")
        .await;
    ircc.expect(|l| l.contains(" 366 "), "the end of #ops' names")
        .await;
    nc.send("hello from nc").await;
    bin.expect(
        |m| said(std::slice::from_ref(m)) == ["hello from nc"],
        "nc's line",
    )
    .await;
    bin.say("#ops", "hello from bin").await;
    nc.expect_has("hello from bin").await;
    ircc.expect_has("hello from bin").await;
    // A fourth connection is one too many.
    let mut extra = TextClient::connect(natter, "extra").await;
    let words = extra.expect_closed().await;
    assert!(words.iter().any(|l| l.contains("full")), "{words:?}");

    let s = scrape_until(m, "three chatting clients and a refusal", |s| {
        at_least(
            s,
            "natter_connections_refused_total",
            &[("reason", "full")],
            1.0,
        ) && at_least(s, "natter_messages_in_total", &[("kind", "say")], 2.0)
    })
    .await;
    for dialect in ["text", "binary", "irc"] {
        assert_eq!(
            value(
                &s,
                "natter_connections",
                &[("dialect", dialect), ("state", "ready")]
            ),
            Some(1.0),
            "{dialect}"
        );
    }
    assert_eq!(value(&s, "natter_users", &[]), Some(3.0));
    assert!(at_least(&s, "natter_rooms", &[], 1.0));
    assert!(at_least(
        &s,
        "natter_messages_in_total",
        &[("kind", "join")],
        3.0
    ));
    // Two lines to a room of three: the binary sender gets its own back, so at least 5.
    assert!(at_least(&s, "natter_deliveries_total", &[], 5.0));
    for direction in ["in", "out"] {
        let got = value(&s, "natter_socket_bytes_total", &[("direction", direction)]);
        assert!(got.is_some_and(|v| v > 100.0), "{direction}: {got:?}");
    }
    assert!(at_least(&s, "natter_hub_batch_seconds_count", &[], 1.0));
    // Room events were written: the store committed and nothing waits.
    assert!(at_least(&s, "natter_store_commit_seconds_count", &[], 1.0));
    assert!(value(&s, "natter_store_queue_batches", &[]).is_some());
    assert!(value(&s, "natter_outbound_queue_bytes", &[("of", "largest")]).is_some());
    // Bounded cardinality: no label names a room, a nick or an address.
    let (_, body) = get(m, "/metrics").await;
    for private in ["#ops", "ircy", "127.0.0.1", "bin\""] {
        assert!(!body.contains(private), "{private} in the metrics");
    }

    // Nick changes past their own bucket (NICK_BURST) are refused, and counted as flood
    // (until the thirty-third session only the log said so).
    let mut nicks = String::new();
    for k in 0..=natter_core::limits::NICK_BURST {
        nicks.push_str(&format!("NICK ircy{k}\r\n"));
    }
    ircc.send_raw(nicks.as_bytes()).await;
    ircc.expect(|l| l.contains(" 438 "), "the refused change (438)")
        .await;
    scrape_until(m, "the refused nick change", |s| {
        value(
            s,
            "natter_flood_total",
            &[("outcome", "refused"), ("kind", "nick")],
        ) == Some(1.0)
    })
    .await;

    // The binary client leaves; the census follows.
    bin.send(&natter_core::wire::ClientMsg::Quit { reason: None })
        .await;
    bin.expect_closed().await;
    scrape_until(m, "the binary client gone", |s| {
        value(
            s,
            "natter_connections",
            &[("dialect", "binary"), ("state", "ready")],
        ) == Some(0.0)
            && at_least(s, "natter_messages_in_total", &[("kind", "quit")], 1.0)
    })
    .await;

    // Wrong method, unknown path.
    let mut s = connect(m).await;
    s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    timeout(WAIT, s.read_to_string(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert!(all.starts_with("HTTP/1.1 405"), "{all}");
    assert_eq!(get(m, "/nope").await.0, 404);

    timeout(WAIT, server.shutdown()).await.unwrap().unwrap();
    assert!(
        TcpStream::connect(m).await.is_err(),
        "the metrics endpoint stops with the server"
    );
}

// ---- the real binary ----

/// The binary with JSON logs: it, its log (every line checked to be JSON) and the natter and
/// metrics addresses it logs.
async fn spawn_json(args: &[&str]) -> (Child, Log, SocketAddr, SocketAddr) {
    spawn_logging(&[args, &["--log-format", "json"]].concat()).await
}

/// As [`spawn_json`], listening for natter and metrics on 127.0.0.1 port 0, with `more`.
async fn spawn_local(more: &[&str]) -> (Child, Log, SocketAddr, SocketAddr) {
    let local = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"];
    spawn_json(&[&local[..], more].concat()).await
}

/// As [`spawn_json`], without the `--log-format` flag: `args` ask for JSON some other way
/// (the config file's `log_format`).
async fn spawn_logging(args: &[&str]) -> (Child, Log, SocketAddr, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(args)
        .args(if args.contains(&"--data-dir") {
            &[][..]
        } else {
            &["--ephemeral"][..]
        })
        .env("RUST_LOG", "info")
        .env_remove("NATTER_LISTEN")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_METRICS_LISTEN")
        .env_remove("NATTER_LOG_FORMAT")
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_EPHEMERAL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter-server");
    let mut log = Log(BufReader::new(child.stderr.take().expect("piped stderr")));
    let mut natter = None;
    let mut metrics = None;
    while natter.is_none() || metrics.is_none() {
        let ev = log.next().await;
        let field = |k: &str| ev.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        match field("message").as_deref() {
            Some("listening") if field("door").as_deref() == Some("Natter") => {
                natter = field("addr").and_then(|a| a.parse().ok());
            }
            Some("metrics endpoint listening") => {
                metrics = field("listen").and_then(|a| a.parse().ok());
            }
            _ => {}
        }
    }
    (child, log, natter.unwrap(), metrics.unwrap())
}

/// The server's JSON log.
struct Log(BufReader<ChildStderr>);

impl Log {
    /// The next log event; panics if a line is not one JSON object, or after WAIT.
    async fn next(&mut self) -> serde_json::Map<String, serde_json::Value> {
        let mut line = String::new();
        let n = timeout(WAIT, self.0.read_line(&mut line))
            .await
            .expect("no log line in time")
            .expect("read the log");
        assert!(n > 0, "natter-server exited");
        match serde_json::from_str(&line) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => panic!("not a JSON log line: {line:?}"),
        }
    }

    /// Reads events until one has `message`; returns it.
    async fn until(&mut self, message: &str) -> serde_json::Map<String, serde_json::Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no {message:?} in the log");
            let ev = self.next().await;
            if ev.get("message").and_then(|m| m.as_str()) == Some(message) {
                return ev;
            }
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("running child has a pid").to_string();
    let sent = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

/// natter-server with JSON logs, its metrics endpoint, and the config file `cfg`.
async fn spawn_with_config(cfg: &str) -> (Child, Log, SocketAddr, SocketAddr) {
    spawn_local(&["--config", cfg]).await
}

/// SIGTERM to `child`: it exits 0 within 10 s.
async fn stop(mut child: Child) {
    signal(&child, "-TERM");
    let status = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

fn write_config(path: &Path, max_connections: usize) {
    std::fs::write(
        path,
        format!("[limits]\nmax_connections = {max_connections}\nhello_timeout_ms = 8000\n"),
    )
    .unwrap();
}

/// A text client that is welcomed, or the words it was refused with.
async fn try_text(addr: SocketAddr, name: &str) -> Result<TextClient, Vec<String>> {
    let mut c = TextClient::connect(addr, name).await;
    let first = c
        .expect(
            |l| l.starts_with("Welcome") || l.starts_with("ERROR"),
            "a welcome or an error",
        )
        .await;
    if first.starts_with("Welcome") {
        Ok(c)
    } else {
        let mut words = vec![first];
        words.extend(c.expect_closed().await);
        Err(words)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_limits_for_new_connections_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    write_config(&file, 2);
    let cfg = file.to_str().unwrap();
    let (child, mut log, addr, m) = spawn_with_config(cfg).await;
    assert_eq!(get(m, "/healthz").await.0, 200);
    // The endpoint starts before the listeners: until they are up it says so.
    let deadline = Instant::now() + WAIT;
    loop {
        match get(m, "/readyz").await {
            (200, body) => break assert_eq!(body, "ready\n"),
            (503, body) => assert!(body.contains("not listening"), "{body}"),
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "never ready");
        sleep(Duration::from_millis(20)).await;
    }

    let mut a = try_text(addr, "a").await.expect("a is let in");
    let mut b = try_text(addr, "b").await.expect("b is let in");
    let words = try_text(addr, "c").await.err().expect("a third is refused");
    assert!(words.iter().any(|l| l.contains("full")), "{words:?}");

    // Three allowed from now on: the two open connections stay, a third gets in.
    write_config(&file, 3);
    signal(&child, "-HUP");
    let changed = log.until("config changed").await;
    assert_eq!(changed["key"], "max_connections");
    assert_eq!(
        (changed["old"].as_str(), changed["new"].as_str()),
        (Some("2"), Some("3"))
    );
    log.until("config reloaded").await;
    let mut c = try_text(addr, "c")
        .await
        .expect("a third is let in after the reload");
    let words = try_text(addr, "d")
        .await
        .err()
        .expect("a fourth is refused");
    assert!(words.iter().any(|l| l.contains("full")), "{words:?}");
    a.send("/join #hup").await;
    a.expect_has("#hup").await;
    b.send("/join #hup").await;
    b.expect_has("#hup").await;
    b.send("still here").await;
    a.expect_has("still here").await;

    // An invalid value, then a file that does not parse: refused, nothing changes.
    std::fs::write(
        &file,
        "[limits]\nmax_connections = 9\nconnect_window_ms = 0\n",
    )
    .unwrap();
    signal(&child, "-HUP");
    let refused = log
        .until("config reload refused; the running config is kept")
        .await;
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(why.contains("connect_window_ms = 0"), "{refused:?}");
    std::fs::write(&file, "[limits\nmax_connections = 9\n").unwrap();
    signal(&child, "-HUP");
    let refused = log
        .until("config reload refused; the running config is kept")
        .await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("bad config file"),
        "{refused:?}"
    );
    let words = try_text(addr, "d")
        .await
        .err()
        .expect("still three at most");
    assert!(words.iter().any(|l| l.contains("full")), "{words:?}");
    c.send("/join #hup").await;
    c.expect_has("#hup").await;
    c.send("after the bad reloads").await;
    a.expect_has("after the bad reloads").await;
    b.expect_has("after the bad reloads").await;

    let s = scrape_until(m, "the refusals", |s| {
        at_least(
            s,
            "natter_connections_refused_total",
            &[("reason", "full")],
            3.0,
        )
    })
    .await;
    assert_eq!(
        value(
            &s,
            "natter_connections",
            &[("dialect", "text"), ("state", "ready")]
        ),
        Some(3.0)
    );

    stop(child).await;
}

/// The message of the day in the config file: nc users get it under their welcome, and a
/// SIGHUP with a new one gives the next user the new words (the open connections stay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_message_of_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    std::fs::write(
        &file,
        "motd = \"\"\"\nWelcome to the lab.\nBe kind.\"\"\"\n",
    )
    .unwrap();
    let cfg = file.to_str().unwrap();
    let (child, mut log, addr, _m) = spawn_with_config(cfg).await;
    let mut a = try_text(addr, "a").await.expect("a is let in");
    a.expect_has("-- Welcome to the lab.").await;
    a.expect_has("-- Be kind.").await;

    std::fs::write(&file, "motd = \"Maintenance at noon.\"\n").unwrap();
    signal(&child, "-HUP");
    let changed = log.until("config changed").await;
    assert_eq!(changed["key"], "motd");
    assert_eq!(
        (changed["old"].as_str(), changed["new"].as_str()),
        (Some("(2 lines)"), Some("(1 line)"))
    );
    log.until("config reloaded").await;
    let mut b = try_text(addr, "b").await.expect("b is let in");
    b.expect_has("-- Maintenance at noon.").await;
    a.send("still here").await;
    b.expect_has("still here").await;
    // A binary client (the CLI, the page) gets it as `Motd` right after its welcome.
    let (mut c, _) = BinClient::hello(addr, "c", None).await;
    let next = c.next_msg(Duration::from_secs(5)).await;
    assert!(
        matches!(&next, Got::Msg(ServerMsg::Motd { lines })
            if lines.len() == 1 && lines[0].as_ref().map(|t| t.as_str()) == Some("Maintenance at noon.")),
        "{next:?}"
    );

    stop(child).await;
}

/// `natter-server account ARGS` on the store in `dir` (the password in NATTER_PASSWORD): whether
/// it succeeded.
async fn account_tool(dir: &Path, args: &[&str], password: &str) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .arg("account")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_EPHEMERAL")
        .env("NATTER_PASSWORD", password)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = timeout(Duration::from_secs(30), out)
        .await
        .expect("the account tool finished")
        .expect("run the account tool");
    out.status.success()
}

/// alice registers and founds #r (+t); carol registers, joins and is made its operator.
async fn alice_founds_r_with_carol_its_operator(addr: SocketAddr) -> (TextClient, TextClient) {
    let (mut alice, _) = TextClient::welcomed(addr, "alice").await;
    alice.send("/nick alice").await;
    alice.expect_has("you are now known as alice").await;
    alice.send("/register correct horse").await;
    alice.expect_has("you are signed in as alice").await;
    alice.send("/join #r").await;
    alice.send("/register #r").await;
    alice.expect_has("alice set #r +r").await;
    alice.send("/mode #r +t").await;
    alice.expect_has("alice set #r +t").await;
    let (mut carol, _) = TextClient::welcomed(addr, "carol").await;
    carol.send("/nick carol").await;
    carol.expect_has("you are now known as carol").await;
    carol.send("/register carol's passphrase").await;
    carol.expect_has("you are signed in as carol").await;
    carol.send("/join #r").await;
    alice.expect_has("carol joined #r").await;
    alice.send("/op carol").await;
    carol.expect_has("alice set #r +o carol").await;
    (alice, carol)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_accounts_the_operator_changed_and_keeps_those_registered_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (child, mut log, addr, _m) = spawn_local(&["--data-dir", data]).await;
    // dora registers through the server; erin is added by the operator beside it.
    let (mut dora, _) = TextClient::welcomed(addr, "dora").await;
    dora.send("/nick dora").await;
    dora.expect_has("you are now known as dora").await;
    dora.send("/register a long passphrase").await;
    dora.expect_has("you are signed in as dora").await;
    assert!(account_tool(dir.path(), &["add", "erin"], "erin's own passphrase").await);
    let (mut e, _) = TextClient::welcomed(addr, "e").await;
    e.send("/login erin erin's own passphrase").await;
    e.expect_has("wrong account name or password").await;

    signal(&child, "-HUP");
    let done = log.until("accounts reloaded from the store").await;
    assert_eq!(done["accounts"], 2, "{done:?}");
    e.send("/login erin erin's own passphrase").await;
    e.expect_has("you are signed in as erin").await;
    let (mut d2, _) = TextClient::welcomed(addr, "d2").await;
    d2.send("/login dora a long passphrase").await;
    d2.expect_has("you are signed in as dora").await;

    // Removed by the operator: no more sign-ins once reloaded.
    assert!(account_tool(dir.path(), &["remove", "erin"], "").await);
    signal(&child, "-HUP");
    let done = log.until("accounts reloaded from the store").await;
    assert_eq!(done["accounts"], 1, "{done:?}");
    let (mut e2, _) = TextClient::welcomed(addr, "e2").await;
    e2.send("/login erin erin's own passphrase").await;
    e2.expect_has("wrong account name or password").await;
    dora.send("still talking").await;
    d2.expect_has("still talking").await;

    stop(child).await;
}

/// The operator removes the founder's account (`natter-server account remove`, then SIGHUP):
/// the room's members are told it has no founder now; after a restart, whoever registers the
/// name next is no founder or operator of the room (its operator carol still is), cannot lock
/// or set its topic, make operators, or register the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_founders_room_does_not_pass_to_whoever_registers_the_name_next() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--data-dir", data];
    let (child, mut log, addr, _m) = spawn_local(&args).await;
    let (mut alice, _carol) = alice_founds_r_with_carol_its_operator(addr).await;
    let (mut bob, _) = TextClient::welcomed(addr, "bob").await;
    bob.send("/nick bob").await;
    bob.expect_has("you are now known as bob").await;
    bob.send("/join #r").await;
    bob.expect_has("you are in #r").await;

    assert!(account_tool(dir.path(), &["remove", "alice"], "").await);
    signal(&child, "-HUP");
    log.until("accounts reloaded from the store").await;
    bob.expect_has("the account alice was removed: #r has no founder now")
        .await;
    alice.send("/quit").await;
    stop(child).await;

    let (child, _log, addr, _m) = spawn_local(&args).await;
    let (mut newcomer, _) = TextClient::welcomed(addr, "alice").await;
    newcomer.send("/nick alice").await;
    newcomer.expect_has("you are now known as alice").await;
    newcomer.send("/register another passphrase").await;
    newcomer.expect_has("you are signed in as alice").await;
    newcomer.send("/join #r").await;
    newcomer.expect_has("you are in #r").await;
    newcomer.send("/mode #r").await;
    newcomer
        .expect_has("#r is not registered; operators: carol")
        .await;
    newcomer.send("/topic mine now").await;
    newcomer
        .expect_has("only operators set the topic of #r (+t)")
        .await;
    newcomer.send("/op alice").await;
    newcomer
        .expect_has("only the founder of #r makes operators")
        .await;
    newcomer.send("/register #r").await;
    newcomer
        .expect_has("#r has operators: one of them (or a server admin) registers it")
        .await;
    // Its operator runs it still, and registers it.
    let (mut carol, _) = TextClient::welcomed(addr, "carol").await;
    carol.send("/login carol carol's passphrase").await;
    carol.expect_has("you are signed in as carol").await;
    carol.send("/join #r").await;
    carol.send("/register #r").await;
    newcomer.expect_has("carol set #r +r").await;
    stop(child).await;
}

/// The operator removes alice's account and adds "alice" again for somebody else before the
/// server rereads its accounts (`account remove alice`, `account add alice`, then SIGHUP): the
/// old alice's rights go, and her connection is a guest's, as if the reload had come between
/// the two. carol, registered from her client and untouched, stays signed in and an operator:
/// the reload tells a new account from an old one by the time the store keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_removed_and_added_again_before_the_reload_keeps_no_rights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--data-dir", data];
    let (child, mut log, addr, _m) = spawn_local(&args).await;
    let (mut alice, mut carol) = alice_founds_r_with_carol_its_operator(addr).await;

    assert!(account_tool(dir.path(), &["remove", "alice"], "").await);
    assert!(account_tool(dir.path(), &["add", "alice"], "somebody else's passphrase").await);
    signal(&child, "-HUP");
    log.until("accounts reloaded from the store").await;
    carol
        .expect_has("the account alice was removed: #r has no founder now")
        .await;
    alice
        .expect_has("the operator removed your account: you are a guest now")
        .await;
    carol.send("/mode #r").await;
    carol
        .expect_has("#r is not registered; operators: carol")
        .await;
    // carol's account is the one she registered: still signed in, still an operator.
    carol.send("/topic carol's room").await;
    carol.expect_has("carol set the topic of #r").await;
    alice.send("/topic alice's again").await;
    alice
        .expect_has("only operators set the topic of #r (+t)")
        .await;
    stop(child).await;
}

/// The operator removes alice's account while the server runs, stops the server and adds
/// "alice" again for somebody else (`account remove alice`, stop, `account add alice`, start).
/// What the running server wrote of the old alice after her removal (a room she joined) never
/// reached the store, so the new account is in none of her rooms; and after the start the new
/// alice is no founder or operator of #r, which the old one founded: the start tells the two
/// accounts apart by the registration time the store keeps of the one the server held (until
/// the forty-first session only a reload could, and the newcomer ran #r).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_removed_and_added_again_while_the_server_was_stopped_keeps_no_rights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--data-dir", data];
    let (child, _log, addr, _m) = spawn_local(&args).await;
    let (mut alice, _carol) = alice_founds_r_with_carol_its_operator(addr).await;
    assert!(account_tool(dir.path(), &["remove", "alice"], "").await);
    // No reload: the server still takes her for an account, and writes what she does.
    alice.send("/join #later").await;
    alice.expect_has("you are in #later").await;
    alice.send("/quit").await;
    stop(child).await;

    assert!(account_tool(dir.path(), &["add", "alice"], "somebody else's passphrase").await);
    let mut store = natter_store::AccountStore::open(&natter_store::Config::new(dir.path()))
        .expect("the store opens");
    let newcomer = store
        .accounts()
        .expect("the accounts read")
        .into_iter()
        .find(|a| a.record.name.as_str() == "alice")
        .expect("the new alice");
    assert!(
        newcomer.rooms.is_empty() && newcomer.read.is_empty(),
        "nothing of the old alice reached the new one: {newcomer:?}"
    );
    drop(store);

    let (child, _log, addr, _m) = spawn_local(&args).await;
    let (mut newcomer, _) = TextClient::welcomed(addr, "someone").await;
    newcomer
        .send("/login alice somebody else's passphrase")
        .await;
    newcomer.expect_has("you are signed in as alice").await;
    newcomer.send("/join #r").await;
    newcomer.expect_has("you are in #r").await;
    newcomer.send("/mode #r").await;
    newcomer
        .expect_has("#r is not registered; operators: carol")
        .await;
    newcomer.send("/topic mine now").await;
    newcomer
        .expect_has("only operators set the topic of #r (+t)")
        .await;
    newcomer.send("/op alice").await;
    newcomer
        .expect_has("only the founder of #r makes operators")
        .await;
    stop(child).await;
}

/// The rooms the store holds for `account` (folded) in the store in `dir`, the server stopped.
fn stored_rooms(dir: &Path, account: &str) -> Vec<String> {
    let mut store =
        natter_store::AccountStore::open(&natter_store::Config::new(dir)).expect("the store opens");
    store
        .accounts()
        .expect("the accounts read")
        .into_iter()
        .find(|a| a.record.name.folded() == account)
        .map(|a| a.rooms.iter().map(|r| r.as_str().to_owned()).collect())
        .unwrap_or_else(|| panic!("{account} is stored"))
}

/// The operator adds erin while the server runs, then SIGHUP: the reload takes erin up, so
/// what the server writes of her from then on lands (her rooms are there after the stop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_added_before_the_reload_keeps_the_rooms_it_joins_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--data-dir", data];
    let (child, mut log, addr, _m) = spawn_local(&args).await;
    assert!(account_tool(dir.path(), &["add", "erin"], "erin's own passphrase").await);
    signal(&child, "-HUP");
    log.until("accounts reloaded from the store").await;
    let (mut e, _) = TextClient::welcomed(addr, "e").await;
    e.send("/login erin erin's own passphrase").await;
    e.expect_has("you are signed in as erin").await;
    e.send("/join #erins").await;
    e.expect_has("you are in #erins").await;
    e.send("/quit").await;
    stop(child).await;
    assert!(
        stored_rooms(dir.path(), "erin").contains(&"#erins".to_owned()),
        "{:?}",
        stored_rooms(dir.path(), "erin")
    );
}

/// The operator sets dora's password while the server runs (`account passwd dora`), and dora,
/// still connected, joins #between before the SIGHUP. The account is the same registration:
/// the reload takes it up with its new password and writes it whole as the server holds it, so
/// the join dora was told of stays (until the forty-first session's review the store dropped
/// the server's writes of the account until the reload, and nothing wrote them again: after a
/// restart dora was no longer in #between).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_joined_between_the_operators_passwd_and_the_reload_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--data-dir", data];
    let (child, mut log, addr, _m) = spawn_local(&args).await;
    let (mut dora, _) = TextClient::welcomed(addr, "dora").await;
    dora.send("/nick dora").await;
    dora.expect_has("you are now known as dora").await;
    dora.send("/register a long passphrase").await;
    dora.expect_has("you are signed in as dora").await;
    dora.send("/join #before").await;
    dora.expect_has("you are in #before").await;
    assert!(account_tool(dir.path(), &["passwd", "dora"], "a new passphrase").await);
    dora.send("/join #between").await;
    dora.expect_has("you are in #between").await;
    signal(&child, "-HUP");
    log.until("accounts reloaded from the store").await;
    let (mut d2, _) = TextClient::welcomed(addr, "d2").await;
    d2.send("/login dora a new passphrase").await;
    d2.expect_has("you are signed in as dora").await;
    d2.send("/quit").await;
    dora.send("/quit").await;
    stop(child).await;
    let rooms = stored_rooms(dir.path(), "dora");
    for r in ["#before", "#between"] {
        assert!(rooms.contains(&r.to_owned()), "{r} not stored: {rooms:?}");
    }
}

/// SIGHUP to a server started with flags only (to reload its certificate after a renewal, say)
/// is not a warning in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_config_file_is_no_warning() {
    let (child, mut log, _addr, _m) = spawn_local(&[]).await;
    signal(&child, "-HUP");
    let said = log
        .until("config reload: no config file to read (the server was started without --config)")
        .await;
    assert_eq!(said["level"], "INFO", "{said:?}");
    stop(child).await;
}

/// The operator follows the start's warning about an admin nobody registered (`natter-server
/// account add boss`, then SIGHUP): the reload does not warn again about the account just
/// made. (It did: the config was reloaded, and checked against the accounts, before the
/// accounts were.) An admin still missing after the reload is still warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_after_the_operator_makes_an_admin_account_does_not_ask_for_it_again() {
    let unclaimed = |ev: &serde_json::Map<String, serde_json::Value>| {
        ev.get("message").and_then(|m| m.as_str()).is_some_and(|m| {
            m.starts_with("[accounts] admins names an account that does not exist")
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("natter.toml");
    std::fs::write(&cfg, "[accounts]\nadmins = [\"boss\", \"chief\"]\n").unwrap();
    let data = dir.path().join("data");
    let (child, mut log, _addr, _m) = spawn_local(&[
        "--config",
        cfg.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .await;
    assert!(account_tool(&data, &["add", "boss"], "the boss's passphrase").await);
    signal(&child, "-HUP");
    log.until("SIGHUP received: reloading").await;
    let mut warned = Vec::new();
    loop {
        let ev = log.next().await;
        if unclaimed(&ev) {
            warned.push(ev["admin"].as_str().unwrap_or_default().to_owned());
            // The command it gives makes the account where this server reads it: a server
            // given `--data-dir` is named it (without it `account add` opened the default
            // data directory, and the server never saw the account).
            let said = ev["message"].as_str().unwrap_or_default();
            let command = format!(
                "`natter-server account add chief --data-dir {}`",
                data.display()
            );
            assert!(said.ends_with(&command), "{said}");
        }
        if ev.get("message").and_then(|m| m.as_str()) == Some("accounts reloaded from the store") {
            break;
        }
    }
    assert_eq!(
        warned,
        ["chief"],
        "warned about {warned:?} after boss was made"
    );
    stop(child).await;
}

/// A file system of its own (a small tmpfs), unmounted when dropped: `None` where this process
/// may not mount one (not root, or no right to mount in its namespace).
/// A directory with a small tmpfs mounted on it; `.1`: mounted through `sudo`.
struct SmallDisk(tempfile::TempDir, bool);

impl SmallDisk {
    /// Mounts a tmpfs of `bytes`, as root or through passwordless `sudo` (as `cargo xtask test`
    /// installs its Debian packages). A machine that allows neither fails the test with the
    /// reason: a disk that really fills is what the test is about, so it never passes by skipping.
    fn mount(bytes: usize) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let size = format!("size={bytes}");
        let args = ["mount", "-t", "tmpfs", "-o", &size, "tmpfs"];
        let root = nix::unistd::geteuid().is_root();
        let mut mount = if root {
            std::process::Command::new(args[0])
        } else {
            let mut sudo = std::process::Command::new("sudo");
            sudo.args(["-n", args[0]]);
            sudo
        };
        let out = mount
            .args(&args[1..])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill a real disk, which needs root or passwordless \
             sudo (as `cargo xtask test` has for its packages): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallDisk(dir, !root)
    }

    /// Fills the disk with a file of its own (until the first write fails).
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 << 10];
        for _ in 0..10_000 {
            if f.write_all(&chunk).and_then(|()| f.sync_all()).is_err() {
                break;
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let mut umount = if self.1 {
            let mut sudo = std::process::Command::new("sudo");
            sudo.args(["-n", "umount"]);
            sudo
        } else {
            std::process::Command::new("umount")
        };
        let _ = umount.arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_logged_once_and_the_server_is_ready_again_when_space_returns() {
    // README ("Durable history", "Operations"): senders are refused while the disk is full,
    // `/readyz` says so, the log says it once (not every 100 ms: the log is often on the same
    // disk), and when space returns `/readyz` is 200 again without waiting for a message (a
    // server its balancer took out of rotation would never get one) and writes work again.
    let disk = SmallDisk::mount(4 << 20);
    let data = disk.0.path().join("data");
    let cfg = disk.0.path().join("natter.toml");
    // Flood control out of the way: the disk is filled by one sender.
    std::fs::write(
        &cfg,
        "[limits]\nflood_burst = 100000\nflood_refill_ms = 1\n",
    )
    .unwrap();
    let (child, log, natter, metrics) = spawn_local(&[
        "--config",
        &cfg.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ])
    .await;
    // Every log event from now on, read as it comes.
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = tokio::spawn({
        let events = events.clone();
        let mut log = log;
        async move {
            let mut line = String::new();
            while log.0.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                let ev: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
                events.lock().unwrap().push(ev);
                line.clear();
            }
        }
    });
    let said = |message: &str| {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .count()
    };
    let (mut alice, _) = TextClient::welcomed(natter, "alice").await;
    assert_eq!(get(metrics, "/readyz").await.0, 200);

    let filler = disk.fill();
    let line = "x".repeat(1500);
    let mut refused = None;
    for i in 0..2_000 {
        alice.send(&format!("{i} {line}")).await;
        if let Got::Msg(l) = alice.next_line(Duration::from_millis(5)).await
            && l.contains("disk is full")
        {
            refused = Some(l);
            break;
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("never refused; seen {:#?}", alice.seen));
    assert!(refused.starts_with("ERROR: "), "{refused}");
    let (status, body) = get(metrics, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk is full"), "{body}");
    // The disk stays full for a while: the writer, checkpoints and the index keep trying.
    for i in 0..20 {
        alice.send(&format!("still full {i}")).await;
        sleep(Duration::from_millis(100)).await;
    }
    let warnings = || {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "WARN")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let during = warnings();
    // Writing messages, checkpoints, the index, retention, folding: each said once at most.
    let kinds: std::collections::HashSet<&String> = during.iter().collect();
    assert!(
        !during.is_empty() && kinds.len() == during.len() && during.len() <= 5,
        "each kind of failure said once: {during:#?}"
    );

    // Nothing said it works while the disk is full (a small write let through is no sign).
    let early: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.ends_with("works again"))
        .map(str::to_owned)
        .collect();
    assert!(early.is_empty(), "while the disk is full: {early:#?}");
    // Space returns; nobody sends anything.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(metrics, "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {body}");
        sleep(Duration::from_millis(100)).await;
    }
    // Writes work again, and the log says so once they have worked for a moment (a success
    // right after a failure is no sign of room: a full disk lets a small write through).
    let deadline = Instant::now() + WAIT;
    let mut i = 0;
    while said("store: writing messages works again") == 0 {
        assert!(Instant::now() < deadline, "no word of writes working again");
        alice.send(&format!("back again {i}")).await;
        i += 1;
        sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(warnings().len(), during.len(), "{:#?}", warnings());
    let (mut bob, _) = TextClient::welcomed(natter, "bob").await;
    bob.send("/history 1").await;
    bob.expect_has("back again").await;
    stop(child).await;
    reader.abort();
}

/// Sends long lines as `c` until one is refused for a full disk; that refusal.
async fn send_until_the_disk_is_full(c: &mut TextClient, tag: &str) -> String {
    let line = "x".repeat(1500);
    for i in 0..2_000 {
        c.send(&format!("{tag} {i} {line}")).await;
        if let Got::Msg(l) = c.next_line(Duration::from_millis(5)).await
            && l.contains("disk is full")
        {
            return l;
        }
    }
    panic!("never refused; seen {:#?}", c.seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_on_a_full_disk_starts_again_and_takes_messages_once_there_is_room() {
    // README ("Durable history"): a full disk stops the server at start only where opening
    // needs room. A server killed (-9) while its disk was full has every file it opens, yet
    // it did not start again while the disk stayed full: opening folded sessions' last
    // message ids with a write even when there were none ("folding sessions' last message
    // ids needs room"). It starts now, reads work, new messages are refused until there is
    // room, and then taken.
    let disk = SmallDisk::mount(4 << 20);
    let data = disk.0.path().join("data");
    let cfg = disk.0.path().join("natter.toml");
    std::fs::write(
        &cfg,
        "[limits]\nflood_burst = 100000\nflood_refill_ms = 1\n",
    )
    .unwrap();
    let (cfg, data) = (cfg.display().to_string(), data.display().to_string());
    let args = ["--config", &cfg, "--data-dir", &data];
    let (mut child, _log, natter, _) = spawn_local(&args).await;
    let (mut alice, _) = TextClient::welcomed(natter, "alice").await;
    alice.send("said before the disk filled").await;
    let filler = disk.fill();
    send_until_the_disk_is_full(&mut alice, "alice").await;
    signal(&child, "-KILL");
    timeout(WAIT, child.wait()).await.expect("killed").unwrap();
    drop(alice);

    // Still full: it starts all the same (spawn_local waits for it to listen).
    let (child, log, natter, metrics) = spawn_local(&args).await;
    let drain = tokio::spawn(async move {
        let mut log = log;
        let mut line = String::new();
        while log.0.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    let (mut bob, _) = TextClient::welcomed(natter, "bob").await;
    bob.send("/history 50").await;
    bob.expect_has("said before the disk filled").await;
    let refused = send_until_the_disk_is_full(&mut bob, "bob").await;
    assert!(refused.starts_with("ERROR: "), "{refused}");
    assert_eq!(get(metrics, "/readyz").await.0, 503);

    // Room again: taken, and stored.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + WAIT;
    while get(metrics, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        sleep(Duration::from_millis(100)).await;
    }
    bob.send("taken once there is room").await;
    let (mut carol, _) = TextClient::welcomed(natter, "carol").await;
    carol.send("/history 5").await;
    carol.expect_has("taken once there is room").await;
    stop(child).await;
    drain.abort();
}

/// What one SIGHUP to a server with a store said, up to its last line (`accounts reloaded`).
#[derive(Debug, Default)]
struct Reloaded {
    /// The keys it warned wait for a restart.
    waiting: Vec<String>,
    /// The keys it changed.
    changed: Vec<String>,
    /// The certificate files it said it reloaded.
    certs: Vec<String>,
}

async fn reload(child: &Child, log: &mut Log) -> Reloaded {
    signal(child, "-HUP");
    let mut r = Reloaded::default();
    loop {
        let ev = log.next().await;
        let field = |k: &str| ev.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        match field("message").as_deref() {
            Some(m) if m.starts_with("accounts reload") => return r,
            Some(m) if m.contains("takes effect at the next restart") => {
                r.waiting.push(field("key").unwrap());
            }
            Some("config changed") => r.changed.push(field("key").unwrap()),
            Some("TLS certificate reloaded") => r.certs.push(field("cert").unwrap_or_default()),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_says_which_changed_settings_wait_for_a_restart() {
    // README ("Reload"): `[store]` takes effect at the next restart and a reload says so in a
    // warning; so do the TLS files' paths (SIGHUP rereads the files the server started with).
    // A changed retention or certificate path used to pass without a word.
    let dir = tempfile::tempdir().unwrap();
    let ca = natter_tls::dev_ca::DevCa::new("reload CA").unwrap();
    let mut pairs = Vec::new();
    for name in ["a", "b"] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        pairs.push(ca.leaf(&["localhost"]).unwrap().write(&d).unwrap());
    }
    let file = dir.path().join("natter.toml");
    let write = |(cert, key): &(std::path::PathBuf, std::path::PathBuf), days: u32| {
        std::fs::write(
            &file,
            format!(
                "tls_listen = [\"127.0.0.1:0\"]\ntls_cert = {:?}\ntls_key = {:?}\n\
                 [limits]\nmax_connections = 50\n[store]\nmax_age_days = {days}\n",
                cert.display().to_string(),
                key.display().to_string(),
            ),
        )
        .unwrap();
    };
    write(&pairs[0], 30);
    let data = dir.path().join("data");
    let (child, mut log, _, _) = spawn_local(&[
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .await;
    // Nothing changed: nothing waits.
    let cert_a = pairs[0].0.display().to_string();
    let r = reload(&child, &mut log).await;
    assert!(r.waiting.is_empty() && r.changed.is_empty(), "{r:?}");
    assert_eq!(r.certs, std::slice::from_ref(&cert_a), "said once");

    write(&pairs[1], 7);
    let r = reload(&child, &mut log).await;
    assert_eq!(r.waiting, ["store", "tls_cert/tls_key"]);
    // The certificate reloaded is still the one the server started with, said once.
    assert_eq!(r.certs, [cert_a]);

    // Limits still apply live beside them.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("max_connections = 50", "max_connections = 60"),
    )
    .unwrap();
    let r = reload(&child, &mut log).await;
    assert_eq!(r.changed, ["max_connections"]);
    assert_eq!(r.waiting, ["store", "tls_cert/tls_key"], "until a restart");
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_says_a_changed_log_format_waits_for_a_restart() {
    // The log is set up once, at start: a `log_format` changed in the file used to pass a
    // reload without a word (`config reloaded changed=0`) while the log kept its format.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    std::fs::write(&file, "log_format = \"json\"\n").unwrap();
    let (child, mut log, _, _) = spawn_logging(&[
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ])
    .await;
    signal(&child, "-HUP");
    let done = log.until("config reloaded").await;
    assert_eq!(done["changed"], 0);
    std::fs::write(&file, "log_format = \"text\"\n").unwrap();
    signal(&child, "-HUP");
    let mut waiting = Vec::new();
    loop {
        // Still JSON: the format in force stays until a restart.
        let ev = log.next().await;
        let message = ev["message"].as_str().unwrap_or_default();
        if message.contains("takes effect at the next restart") {
            waiting.push(ev["key"].as_str().unwrap().to_owned());
        }
        if message == "config reloaded" {
            break;
        }
    }
    assert_eq!(waiting, ["log_format"]);
    stop(child).await;
}

/// natter-server started on the store in `data`: it exits 1 at once, its last log line saying
/// it cannot start and naming `data`; that line.
async fn refused_at_start(data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_EPHEMERAL")
        .stdin(Stdio::null())
        .output();
    let out = timeout(WAIT, out).await.expect("exits").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let said = stderr.lines().last().unwrap_or_default();
    assert!(
        said.contains(" ERROR natter_server: cannot start error="),
        "{stderr}"
    );
    assert!(said.contains(&data.display().to_string()), "{said}");
    said.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_a_full_disk_is_refused_at_start_saying_the_disk_is_full() {
    // README ("Durable history"): a data directory the server cannot use stops it at start
    // with the path and why. On a full disk SQLite says "disk I/O error" (it cannot make the
    // log's shared-memory file), which sends an operator looking for a failing drive.
    let disk = SmallDisk::mount(4 << 20);
    let data = disk.0.path().join("data");
    let (child, _, _, _) = spawn_local(&["--data-dir", &data.display().to_string()]).await;
    stop(child).await;
    let _filler = disk.fill();
    let said = refused_at_start(&data).await;
    assert!(said.contains("disk is full"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_index_cannot_be_made_on_a_full_disk_is_refused_saying_the_disk_is_full() {
    // As above, where the store's own files open and the search index's do not: natter.db
    // kept its log and shared-memory file (a server killed, -9) and search.db's shared memory
    // went (closed, as its connection closes last). Opening the index then failed with
    // SQLite's "disk I/O error" alone: it was taken for an index to rebuild, its files were
    // removed (which freed room) and making it again failed, said as is.
    let disk = SmallDisk::mount(4 << 20);
    let data = disk.0.path().join("data");
    let (child, _, _, _) = spawn_local(&["--data-dir", &data.display().to_string()]).await;
    signal(&child, "-KILL");
    let mut child = child;
    timeout(WAIT, child.wait()).await.expect("killed").unwrap();
    assert!(
        data.join("natter.db-shm").exists(),
        "killed, natter.db keeps its shared memory"
    );
    std::fs::remove_file(data.join("search.db-shm")).unwrap();
    let _filler = disk.fill();
    let said = refused_at_start(&data).await;
    assert!(said.contains("disk is full"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_bridge_secret_file_without_a_config_file() {
    // README ("Reload"): SIGHUP rereads the bridge secret file. Given as a flag, with no
    // config file, it was not: the reload stopped at "no config file to read", and a secret
    // rotated on disk went unused until a restart.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("bridge-secret");
    std::fs::write(&secret, "the first bridge secret\n").unwrap();
    let (child, mut log, _, _) =
        spawn_local(&["--bridge-secret-file", secret.to_str().unwrap()]).await;
    std::fs::write(&secret, "the second bridge secret\n").unwrap();
    signal(&child, "-HUP");
    let mut changed = Vec::new();
    loop {
        let ev = log.next().await;
        match ev["message"].as_str().unwrap_or_default() {
            "config changed" => changed.push(ev["key"].as_str().unwrap().to_owned()),
            "config reloaded" => break,
            _ => {}
        }
    }
    assert_eq!(changed, ["bridge_secret"]);
    stop(child).await;
}

#[tokio::test]
async fn sigterm_while_starting_stops_the_server_at_once() {
    // A node waits up to 30 s for NATS at start (a large store takes a while to load too): an
    // operator's Ctrl+C or `systemctl stop` meanwhile must stop it then, not once the wait is
    // over (systemd kills it after TimeoutStopSec). A port nothing listens on: NATS is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--cluster",
        ])
        .arg(format!("nats://127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_LOG_FORMAT")
        .env_remove("NATTER_CLUSTER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter-server");
    let mut log = Log(BufReader::new(child.stderr.take().expect("piped stderr")));
    log.until("NATS does not answer yet; waiting for it").await;
    let asked = Instant::now();
    signal(&child, "-TERM");
    let status = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("natter-server exits within 10 s of SIGTERM, not after its 30 s wait for NATS")
        .unwrap();
    assert_eq!(status.code(), Some(0), "after {:?}", asked.elapsed());
    log.until("signal received while starting; stopping").await;
}

#[tokio::test]
async fn sigterm_while_the_store_opens_stops_the_server_without_waiting_for_the_open() {
    // The store opens on a blocking thread (a schema migration can take minutes on a large
    // store): a SIGTERM meanwhile stopped the start, but the process then waited for that
    // thread, as dropping the runtime does. Here the open waits on a lock this test holds on
    // `natter.db` (SQLite waits 5 s for it, then gives up).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let held = rusqlite::Connection::open(&db).unwrap();
    held.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_LOG_FORMAT")
        .env_remove("NATTER_CLUSTER")
        .env_remove("NATTER_EPHEMERAL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter-server");
    let mut log = Log(BufReader::new(child.stderr.take().expect("piped stderr")));
    // Its SIGTERM handler is set just before the start (which opens the store at once): a
    // SIGTERM before it would end the process by the default action, not by the server.
    let status = format!("/proc/{}/status", child.id().unwrap());
    let caught = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << (15 - 1)) != 0)
    };
    let set = Instant::now();
    while !caught(&std::fs::read_to_string(&status).unwrap_or_default()) {
        assert!(
            set.elapsed() < Duration::from_secs(10),
            "no SIGTERM handler"
        );
        sleep(Duration::from_millis(20)).await;
    }
    sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    signal(&child, "-TERM");
    let status = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("natter-server exits within 10 s of SIGTERM")
        .unwrap();
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "after {took:?}");
    assert!(
        took < Duration::from_millis(2500),
        "it waited {took:?} for the store's open after SIGTERM"
    );
    log.until("signal received while starting; stopping").await;
    held.execute_batch("ROLLBACK").unwrap();
}

/// `chattr FLAG path`, as root or through passwordless `sudo` (as [`SmallDisk`]).
fn chattr(flag: &str, path: &Path) {
    let mut cmd = if nix::unistd::geteuid().is_root() {
        std::process::Command::new("chattr")
    } else {
        let mut sudo = std::process::Command::new("sudo");
        sudo.args(["-n", "chattr"]);
        sudo
    };
    let out = cmd.arg(flag).arg(path).output().expect("running chattr");
    assert!(
        out.status.success(),
        "this test makes the store's file immutable (even root cannot write it then), which \
         needs root or passwordless sudo: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Makes `path` writable again when dropped, also when the test fails.
struct Immutable<'a>(&'a Path);

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        chattr("-i", self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_a_store_that_cannot_be_written_is_not_ready() {
    // README ("Operations"): `/readyz` is 503 when the store's database file cannot be opened
    // for writing (a read-only remount, lost permissions) before a write fails, and 200 again
    // once it can. Tests run as root, for whom permissions are no obstacle: an immutable file
    // refuses root too.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, _log, _natter, metrics) =
        spawn_local(&["--data-dir", &data.display().to_string()]).await;
    let ready = async || {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = get(metrics, "/readyz").await;
            if got.0 == 200 || Instant::now() > deadline {
                return got;
            }
            sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(ready().await, (200, "ready\n".to_owned()));
    let db = data.join("natter.db");
    chattr("+i", &db);
    let guard = Immutable(&db);
    let (status, body) = get(metrics, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: the store ") && body.contains("is not writable"),
        "{body}"
    );
    drop(guard);
    assert_eq!(ready().await, (200, "ready\n".to_owned()));
    stop(child).await;
}

/// `sig` to the process this test started, by its pid (never a group).
fn kill_child(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = child.id().expect("running child has a pid");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    nix::sys::signal::kill(pid, sig).expect("signal the child");
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_while_shutting_down_exits_at_once_and_the_store_opens_after() {
    second_signal_while_shutting_down(nix::sys::signal::Signal::SIGTERM, "SIGTERM", 143).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_twice_exits_at_once_with_status_130() {
    second_signal_while_shutting_down(nix::sys::signal::Signal::SIGINT, "SIGINT", 130).await;
}

/// `sig` twice: the first starts the graceful shutdown, the second ends the process at once
/// with `status` (README: 128 + the signal).
async fn second_signal_while_shutting_down(sig: nix::sys::signal::Signal, name: &str, status: i32) {
    // An operator's Ctrl+C (or SIGTERM) pressed again means "now". The shutdown here waits for
    // a connection on the TLS port that has sent nothing (its handshake has the hello timeout,
    // 20 s, within the grace of 30 s): without the second signal the process would run on that
    // long; the second one ends it at once, and the store is whole after.
    let dir = tempfile::tempdir().unwrap();
    let ca = natter_tls::dev_ca::DevCa::new("second signal CA").unwrap();
    let (cert, key) = ca.leaf(&["localhost"]).unwrap().write(dir.path()).unwrap();
    let cfg = dir.path().join("natter.toml");
    std::fs::write(
        &cfg,
        format!(
            "shutdown_grace_ms = 30000\ntls_listen = [\"127.0.0.1:0\"]\ntls_cert = {:?}\n\
             tls_key = {:?}\n[limits]\nhello_timeout_ms = 20000\n",
            cert.display().to_string(),
            key.display().to_string(),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let data_arg = data.display().to_string();
    let cfg_arg = cfg.display().to_string();
    let args = [
        "--config",
        cfg_arg.as_str(),
        "--data-dir",
        data_arg.as_str(),
    ];
    let (child, mut log, addr, _) = spawn_local(&args).await;
    let tls = loop {
        let ev = log.until("listening").await;
        if ev.get("door").and_then(|d| d.as_str()) == Some("NatterTls") {
            break ev["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap();
        }
    };
    let silent = timeout(WAIT, TcpStream::connect(tls))
        .await
        .unwrap()
        .unwrap();

    let (mut carol, _) = TextClient::entered(addr, "carol").await;
    carol.send("/join #ops").await;
    carol.expect_has("#ops").await;
    let (mut alice, _) = TextClient::entered(addr, "alice").await;
    alice.send("/join #ops").await;
    alice.expect_has("#ops").await;
    for i in 0..20 {
        alice.send(&format!("line {i}")).await;
    }
    alice.send("kept before the stop").await;
    // Seen by another client: stored (what is sent out was committed first).
    carol.expect_has("kept before the stop").await;

    kill_child(&child, sig);
    log.until("shutting down: telling every client").await;
    let second = Instant::now();
    kill_child(&child, sig);
    let said = log
        .until("second signal while shutting down: exiting now, without waiting for the clients still being told; what the store committed is kept")
        .await;
    assert_eq!(said.get("signal").and_then(|s| s.as_str()), Some(name));
    let mut child = child;
    let exited = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after the second signal, not after the silent connection's 20 s")
        .unwrap();
    assert_eq!(exited.code(), Some(status), "128 + {name}, as README says");
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "exited {:?} after the second signal",
        second.elapsed()
    );
    drop((silent, alice, carol));

    // The store is whole, and holds what was acknowledged.
    let db = rusqlite::Connection::open(data.join("natter.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);
    let (child, _log, addr, _) = spawn_local(&args).await;
    let (mut bob, _) = TextClient::entered(addr, "bob").await;
    bob.send("/join #ops").await;
    bob.expect_has("kept before the stop").await;
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_opens_connections_are_refused_and_readyz_says_starting() {
    // A store that takes a while to open (a migration): the open waits here on a lock this test
    // holds on `natter.db` (SQLite waits 5 s for it). Meanwhile a client must not be accepted
    // and left unanswered: its connection is refused (clients retry), and /readyz is 503.
    let dir = tempfile::tempdir().unwrap();
    let held = rusqlite::Connection::open(dir.path().join("natter.db")).unwrap();
    held.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let spawn = |metrics: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_natter-server"));
        c.args(["--listen", &addr.to_string(), "--log-format", "json"])
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_LOG_FORMAT")
            .env_remove("NATTER_CLUSTER")
            .env_remove("NATTER_EPHEMERAL")
            .env_remove("NATTER_METRICS_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if metrics {
            c.args(["--metrics-listen", "127.0.0.1:0"]);
        }
        let mut child = c.spawn().expect("spawn natter-server");
        let log = Log(BufReader::new(child.stderr.take().expect("piped stderr")));
        (child, log)
    };

    // The port in use stops the start at once, not after the store's open.
    let taken = std::net::TcpListener::bind(addr).unwrap();
    let (mut child, mut log) = spawn(false);
    let status = timeout(Duration::from_secs(4), child.wait())
        .await
        .expect("an address in use is said before the store opens")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let why = log.until("cannot start").await;
    let why = why
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or_default();
    assert!(why.contains(&format!("cannot listen on {addr}")), "{why}");
    drop(taken);

    let (child, mut log) = spawn(true);
    let metrics: SocketAddr = log
        .until("metrics endpoint listening")
        .await
        .get("listen")
        .and_then(|a| a.as_str())
        .and_then(|a| a.parse().ok())
        .expect("the metrics address");
    let (status, body) = get(metrics, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("starting"), "{body}");
    let refused = timeout(Duration::from_secs(2), TcpStream::connect(addr))
        .await
        .expect("a connection while the store opens is answered at once");
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused,
    );

    held.execute_batch("ROLLBACK").unwrap();
    log.until("store open").await;
    log.until("listening").await;
    let (mut c, _) = TextClient::entered(addr, "early").await;
    c.send("/join #later").await;
    c.expect_has("#later").await;
    assert_eq!(get(metrics, "/readyz").await.0, 200);
    stop(child).await;
}

/// natter-server on `addr` with its store in `dir` and JSON logs: it, and its log.
fn spawn_on(addr: SocketAddr, dir: &Path, more: &[&str]) -> (Child, Log) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["--listen", &addr.to_string(), "--log-format", "json"])
        .args(more)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_LOG_FORMAT")
        .env_remove("NATTER_CLUSTER")
        .env_remove("NATTER_EPHEMERAL")
        .env_remove("NATTER_METRICS_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter-server");
    let log = Log(BufReader::new(child.stderr.take().expect("piped stderr")));
    (child, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_port_of_one_still_starting_stops_at_once_and_a_restart_binds() {
    // The first server's store takes a while to open (a migration; here a lock this test holds
    // on its `natter.db`, which SQLite waits 5 s for): its port is bound, not listening yet. A
    // second server started on that port meanwhile (another store) must stop at once, before
    // it opens (or migrates) its own store: with address reuse Linux let it bind beside the
    // first, and it failed only at its listen, once its store was open.
    let first_dir = tempfile::tempdir().unwrap();
    let held = rusqlite::Connection::open(first_dir.path().join("natter.db")).unwrap();
    held.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Its metrics endpoint starts after its ports are bound, before the store opens.
    let (first, mut first_log) =
        spawn_on(addr, first_dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    first_log.until("metrics endpoint listening").await;
    let refused = TcpStream::connect(addr).await.map(drop).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let second_dir = tempfile::tempdir().unwrap();
    let (mut second, mut second_log) = spawn_on(addr, second_dir.path(), &[]);
    let status = timeout(Duration::from_secs(3), second.wait())
        .await
        .expect("the second server stops at once, not after its store's open")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let why = second_log.until("cannot start").await;
    let why = why["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        why.contains(&format!("cannot listen on {addr}")) && why.contains("already in use"),
        "{why}"
    );
    assert!(
        !second_dir.path().join("natter.db").exists(),
        "the second server made a store"
    );

    // The first goes on, and serves once its store is open.
    held.execute_batch("ROLLBACK").unwrap();
    first_log.until("store open").await;
    first_log.until("listening").await;
    let (mut c, _) = TextClient::entered(addr, "early").await;
    c.send("/join #here").await;
    c.expect_has("#here").await;
    // Stopped with a client on: the server closes it first, which leaves the port's side of
    // it in TIME_WAIT for a minute. A restart right away binds all the same.
    let mut first = first;
    signal(&first, "-TERM");
    c.expect_closed().await;
    drop(c);
    let status = timeout(Duration::from_secs(10), first.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let (again, mut log) = spawn_on(addr, first_dir.path(), &[]);
    log.until("listening").await;
    let (mut c, _) = TextClient::entered(addr, "again").await;
    c.send("/join #here").await;
    c.expect_has("#here").await;
    stop(again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_store_max_bytes_below_1_mib_is_refused_as_a_whole_naming_the_key() {
    // As any invalid value in a reloaded file (README, "Reload"): the file is refused as a
    // whole, the log line names the key, and nothing else in it is taken. The same value stops
    // the server at start; `[store]` waits for a restart anyway.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    std::fs::write(&file, "[limits]\nmax_connections = 50\n").unwrap();
    let data = dir.path().join("data");
    let (child, mut log, _, _) = spawn_local(&[
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .await;
    std::fs::write(
        &file,
        "[limits]\nmax_connections = 60\n[store]\nmax_bytes = 10\n",
    )
    .unwrap();
    signal(&child, "-HUP");
    let refused = log
        .until("config reload refused; the running config is kept")
        .await;
    let why = refused
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or_default();
    assert!(
        why.contains("[store] max_bytes = 10 is less than") && why.contains("it counts bytes"),
        "{why}"
    );
    log.until("accounts reloaded from the store").await;
    // max_connections was not taken with it: once the file is fixed, it is the change.
    std::fs::write(&file, "[limits]\nmax_connections = 60\n").unwrap();
    let r = reload(&child, &mut log).await;
    assert_eq!(r.changed, ["max_connections"]);
    assert!(r.waiting.is_empty(), "{r:?}");
    stop(child).await;
}
