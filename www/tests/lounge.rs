//! The Lounge, a web IRC client (on irc-framework, the npm library many bots and bridges use
//! too), on natter's IRC listeners, used through its own web UI in headless Chromium, in one
//! room with an nc user and the `natter` CLI in line mode: joining with the room's history,
//! messages, actions and notices every way (a notice also from a bare IRC connection), topics,
//! nick changes, away, the member list, parts and quits, a reconnection that does not show the
//! history twice, a graceful restart of natter-server (on its store and its ports) through which
//! The Lounge shows each line once, and a second network over TLS (a certificate of the test's own CA) that signs
//! in to an account with SASL PLAIN and reconnects to what the account missed; The Lounge shows
//! no error on either.
//!
//! Needs The Lounge and its node in `<target>/lounge/` (`cargo xtask test` installs them with
//! npm from `www/tests/lounge/package.json`) and Chromium with chromedriver.

#[macro_use]
mod common;

use common::*;
use fantoccini::{Client as Browser, Locator};
use natter_tls::dev_ca::DevCa;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// The Lounge's user, and its password (the hash below is bcrypt's, cost 4, of this).
const USER: &str = "tester";
const PASSWORD: &str = "lounge-test-pw";
const PASSWORD_HASH: &str = "$2a$04$lWVXpVDlR.vBcaStG1HybesGg5IHpOZR.Nz6VzVViAAPTfTzEDi9.";

/// Where `cargo xtask test` installs The Lounge: its node and its entry point, checked.
fn lounge_install() -> (PathBuf, PathBuf) {
    let dir = target_dir().join("lounge");
    let node = ["x64", "arm64"]
        .iter()
        .map(|cpu| dir.join(format!("node_modules/node-linux-{cpu}/bin/node")))
        .find(|node| node.exists())
        .unwrap_or_default();
    let main = dir.join("node_modules/thelounge/index.js");
    assert!(
        node.exists() && main.exists(),
        "The Lounge is not installed in {}: run `cargo xtask test`, which installs it and node 22 \
         with npm from www/tests/lounge/package.json",
        dir.display()
    );
    (node, main)
}

/// natter-server in this process, its store in the test's directory: the scenario restarts it
/// (on the same store and ports), and the test shuts down whichever is running at the end.
struct Natter {
    config: natter_server::ServerConfig,
    server: Mutex<Option<natter_server::Server>>,
}

impl Natter {
    async fn start(config: natter_server::ServerConfig) -> Arc<Natter> {
        let server = natter_server::start(config.clone())
            .await
            .expect("start natter-server");
        Arc::new(Natter {
            config,
            server: Mutex::new(Some(server)),
        })
    }

    /// Runs `f` on the running server.
    fn with<T>(&self, f: impl FnOnce(&natter_server::Server) -> T) -> T {
        f(self
            .server
            .lock()
            .expect("server lock")
            .as_ref()
            .expect("a server is running"))
    }

    /// A graceful restart, as an operator's upgrade: the server tells everyone it is going away
    /// and stops, and a new one on the same store takes the addresses it had (the listeners set
    /// SO_REUSEADDR, so they are free at once).
    async fn restart(&self) {
        let old = self.take().expect("a server is running");
        let mut config = self.config.clone();
        config.listen = old.local_addrs();
        config.irc_listen = old.irc_addrs();
        config.irc_tls_listen = old.irc_tls_addrs();
        timeout(STEP, old.shutdown())
            .await
            .expect("natter-server stops in time")
            .expect("natter-server stops");
        let new = timeout(STEP, natter_server::start(config))
            .await
            .expect("natter-server starts again in time")
            .expect("natter-server starts again on its store and ports");
        *self.server.lock().expect("server lock") = Some(new);
    }

    fn take(&self) -> Option<natter_server::Server> {
        self.server.lock().expect("server lock").take()
    }

    async fn shutdown(&self) {
        if let Some(server) = self.take() {
            let _ = timeout(Duration::from_secs(10), server.shutdown()).await;
        }
    }
}

/// The Lounge running in private mode (one user, [`USER`]) with its home in `home`, its
/// network form filled in for natter's plain IRC listener `irc`, trusting the CA in `ca`.
struct Lounge {
    _process: Group,
    url: String,
}

fn start_lounge(home: &Path, irc: SocketAddr, ca: &Path) -> Lounge {
    let (node, main) = lounge_install();
    std::fs::create_dir_all(home.join("users")).expect("The Lounge's home");
    let config = format!(
        r##""use strict";
module.exports = {{
  public: false, host: "127.0.0.1", port: 0, reverseProxy: false, prefetch: false,
  fileUpload: {{ enable: false }}, transports: ["websocket"], messageStorage: [],
  identd: {{ enable: false }}, lockNetwork: false, leaveMessage: "",
  defaults: {{ name: "natter", host: "127.0.0.1", port: {port}, password: "", tls: false,
    rejectUnauthorized: true, nick: "lounger", username: "lounger", realname: "A Lounge user",
    join: "#lobby", leaveMessage: "" }},
  debug: {{ ircFramework: false, raw: true }},
}};
"##,
        port = irc.port()
    );
    std::fs::write(home.join("config.js"), config).expect("config.js");
    let user = serde_json::json!({
        "password": PASSWORD_HASH, "log": false, "sessions": {}, "clientSettings": {},
        "networks": [],
    });
    std::fs::write(home.join(format!("users/{USER}.json")), user.to_string()).expect("user");
    let mut process = Group::spawn(
        Command::new(node)
            .arg(main)
            .arg("start")
            .env("THELOUNGE_HOME", home)
            .env("NODE_EXTRA_CA_CERTS", ca)
            .env("FORCE_COLOR", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .expect("start The Lounge");
    let stdout = process.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // "2026-12-04 18:08:06 [INFO] Available at http://127.0.0.1:40123/ in private mode"
            let url = line
                .split("Available at ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned);
            // Read on once nobody listens: a closed pipe would kill The Lounge (EPIPE).
            let _ = tx.send((line, url));
        }
    });
    let mut said = Vec::new();
    let deadline = std::time::Instant::now() + STEP;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((_, Some(url))) => {
                return Lounge {
                    _process: process,
                    url,
                };
            }
            Ok((line, None)) => said.push(line),
            Err(_) => break,
        }
    }
    panic!("The Lounge did not say where it listens: {said:?}");
}

/// The messages The Lounge shows in the open buffer, as `type|from|text` (`message|ncuser|hi`,
/// `action|lounger|waves`, `join|lounger|...`).
async fn shown(b: &Browser) -> Vec<String> {
    strings(
        b,
        "return [...document.querySelectorAll('#chat .msg[data-type]')].map(m =>
           m.dataset.type + '|' + (m.dataset.from || '') + '|' +
           (m.querySelector('.content') || m).innerText.trim());",
    )
    .await
}

/// What `script` returns, an array of strings.
async fn strings(b: &Browser, script: &str) -> Vec<String> {
    js(b, script)
        .await
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// How many messages of the open buffer are exactly `line` (see [`shown`]).
async fn count(b: &Browser, line: &str) -> usize {
    shown(b).await.iter().filter(|l| *l == line).count()
}

/// Waits until the open buffer shows `line` (see [`shown`]).
async fn wait_shown(b: &Browser, line: &str) {
    wait_for!(
        format!("The Lounge to show {line:?}"),
        (count(b, line).await > 0).then_some(())
    );
}

/// Waits until some message of the open buffer contains `part`.
async fn wait_shown_part(b: &Browser, part: &str) {
    wait_for!(
        format!("The Lounge to show a message containing {part:?}"),
        shown(b)
            .await
            .iter()
            .any(|l| l.contains(part))
            .then_some(())
    );
}

/// Waits until the open buffer shows a message of `kind` from `from` whose text contains `part`.
async fn wait_kind(b: &Browser, kind: &str, from: &str, part: &str) {
    let head = format!("{kind}|{from}|");
    wait_for!(
        format!("The Lounge to show a {kind} of {from} with {part:?}"),
        shown(b)
            .await
            .iter()
            .any(|l| l.starts_with(&head) && l.contains(part))
            .then_some(())
    );
}

/// Opens the buffer `name` (`#lobby`, or `lobby` for the network's own) of the `net`th network.
async fn open(b: &Browser, net: usize, name: &str) {
    let item = if name == "lobby" {
        "[data-type=\"lobby\"]".to_owned()
    } else {
        format!("[data-name=\"{name}\"]")
    };
    let script = format!(
        "const n = document.querySelectorAll('#sidebar .network')[{net}];
         const e = n && n.querySelector('.channel-list-item{item}');
         if (e) {{ e.click(); return true; }} return false;"
    );
    wait_for!(
        format!("buffer {name} of network {net} in the sidebar"),
        js(b, &script)
            .await
            .as_bool()
            .unwrap_or(false)
            .then_some(())
    );
    let title = if name == "lobby" { "" } else { name };
    wait_for!(
        format!("buffer {name} to open"),
        text_of(b, "#chat .header .title")
            .await
            .contains(title)
            .then_some(())
    );
}

/// Types `line` into the input and sends it with the send button (Enter would pick a
/// completion when the autocomplete menu is open).
async fn say(b: &Browser, line: &str) {
    let input = b.find(Locator::Id("input")).await.expect("the input");
    input.send_keys(line).await.expect("typing");
    b.find(Locator::Id("submit"))
        .await
        .expect("the send button")
        .click()
        .await
        .expect("clicking send");
    wait_for!(
        format!("the input to empty after {line:?}"),
        js(b, "return document.querySelector('#input').value;")
            .await
            .as_str()
            .is_some_and(str::is_empty)
            .then_some(())
    );
}

/// The nicks in the open channel's member list.
async fn members(b: &Browser) -> Vec<String> {
    strings(
        b,
        "return [...document.querySelectorAll('.userlist .user')].map(u => u.dataset.name);",
    )
    .await
}

/// Fills the connect form's field `name` with `value`.
async fn fill(b: &Browser, name: &str, value: &str) {
    let field = b
        .find(Locator::Css(&format!("#connect input[name=\"{name}\"]")))
        .await
        .unwrap_or_else(|e| panic!("connect form field {name}: {e}"));
    field.clear().await.expect("clear a field");
    field.send_keys(value).await.expect("type into a field");
}

/// Clicks what `css` selects.
async fn click(b: &Browser, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// The server's goodbyes, IRC `ERROR :Closing Link: natter (...)` lines that The Lounge shows
/// as errors: after its own `/disconnect` (its QUIT's reason inside), and when natter-server
/// restarts.
fn goodbye(shown: &str) -> bool {
    shown.starts_with("error||Closing Link: natter (") && shown.ends_with(") (irc)")
}

/// Asserts that The Lounge shows no error in the `net`th network's channel and its own buffer
/// (but the server's [`goodbye`]s).
async fn no_errors(b: &Browser, net: usize) {
    for buffer in ["#lobby", "lobby"] {
        open(b, net, buffer).await;
        let errors: Vec<String> = shown(b)
            .await
            .into_iter()
            .filter(|l| l.starts_with("error|") && !goodbye(l))
            .collect();
        assert!(errors.is_empty(), "network {net}, {buffer}: {errors:#?}");
    }
}

/// An nc user's line.
async fn nc_send(w: &mut tokio::net::tcp::OwnedWriteHalf, line: &str) {
    w.write_all(format!("{line}\r\n").as_bytes())
        .await
        .expect("write to the server");
}

async fn nc_expect(out: &Captured, line: &str) {
    wait_for!(
        format!("nc to read {line:?}"),
        out.lines().iter().any(|l| l == line).then_some(())
    );
}

/// A user on a bare IRC connection, registered as `nick` and in `#lobby`.
async fn irc_user(irc: SocketAddr, nick: &str) -> (tokio::net::tcp::OwnedWriteHalf, Captured) {
    let stream = timeout(STEP, tokio::net::TcpStream::connect(irc))
        .await
        .expect("connect in time")
        .expect("connect to the IRC listener");
    let (read, mut write) = stream.into_split();
    let out = common::capture(read);
    nc_send(&mut write, &format!("NICK {nick}")).await;
    nc_send(&mut write, &format!("USER {nick} 0 * :{nick}")).await;
    wait_for!("the IRC welcome", out.has(&format!(" 001 {nick} ")));
    nc_send(&mut write, "JOIN #lobby").await;
    wait_for!("the IRC join", out.has(&format!(" 366 {nick} #lobby ")));
    (write, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lounge_chats_with_nc_and_the_cli_and_signs_in_over_tls() {
    let started = std::time::Instant::now();
    lounge_install();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = DevCa::new("natter lounge test CA").expect("a CA");
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.cert_pem()).expect("ca.pem");
    let (cert, key) = ca
        .leaf(&["localhost", "127.0.0.1"])
        .expect("a certificate")
        .write(dir.path())
        .expect("write the certificate");
    let mut config = natter_server::ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.irc_tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.tls_certs = Some(natter_server::TlsCerts { cert, key });
    config.store = Some(natter_store::Config::new(dir.path().join("data")));
    let natter = Natter::start(config).await;
    let lounge = start_lounge(
        &dir.path().join("lounge-home"),
        natter.with(|s| s.irc_addrs()[0]),
        &ca_pem,
    );
    let (driver, port) = start_chromedriver();
    let profile = TempDir::new("natter-lounge-chromium");
    let browser = open_browser(port, &profile.0, &[]).await;
    let mut task = tokio::spawn(scenario(
        browser.clone(),
        lounge.url.clone(),
        natter.clone(),
        dir.path().join("cli-config"),
    ));
    let outcome = timeout(SCENARIO_LIMIT, &mut task).await;
    task.abort();
    if !matches!(outcome, Ok(Ok(()))) {
        // What The Lounge showed: the open buffer, then each network's own, where The Lounge
        // puts the raw IRC lines (`debug.raw`) natter sent it.
        let shows = tokio::spawn(what_the_lounge_shows(browser.clone()));
        match timeout(Duration::from_secs(20), shows).await {
            Ok(Ok(shown)) => eprintln!("The Lounge showed, at the end:\n{shown}"),
            _ => eprintln!("(what The Lounge showed could not be read)"),
        }
    }
    let _ = timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    drop(lounge);
    natter.shutdown().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => panic!("the scenario did not finish within {SCENARIO_LIMIT:?}"),
    }
    eprintln!("The Lounge scenario took {:.1?}", started.elapsed());
}

/// The messages of the open buffer, then of each network's own buffer (which holds the raw IRC
/// lines), for a failing run's report.
async fn what_the_lounge_shows(b: Browser) -> String {
    let mut out = format!("open buffer: {:#?}\n", shown(&b).await);
    for net in 0..2 {
        open(&b, net, "lobby").await;
        out += &format!("network {net}'s buffer: {:#?}\n", shown(&b).await);
    }
    out
}

async fn scenario(browser: Browser, url: String, natter: Arc<Natter>, cli_config: PathBuf) {
    let b = &browser;
    // The addresses stay the same through the restart.
    let (text_addr, irc, irc_tls) =
        natter.with(|s| (s.local_addrs()[0], s.irc_addrs()[0], s.irc_tls_addrs()[0]));
    // Before The Lounge comes: an nc user says something and sets the topic, and carol makes an
    // account (SASL signs in to it later) and leaves.
    let (mut nc, nc_out) = common::nc(text_addr, "ncuser").await;
    nc_send(&mut nc, "said before the lounge came").await;
    nc_send(&mut nc, "/topic natter meets the lounge").await;
    nc_expect(
        &nc_out,
        "-- ncuser set the topic of #lobby: natter meets the lounge",
    )
    .await;
    let (mut carol, carol_out) = common::nc(text_addr, "carol").await;
    nc_send(&mut carol, "/register carols-secret").await;
    wait_for!("carol's account", carol_out.has("signed in as carol"));
    nc_send(&mut carol, "/quit").await;
    let mut cli = Cli::start("cliuser", text_addr, &cli_config).await;
    cli.expect("-- connected as cliuser").await;

    // Sign in to The Lounge and connect to natter with its form (filled in from the config).
    timeout(STEP, b.goto(&url))
        .await
        .expect("The Lounge loads in time")
        .expect("open The Lounge");
    let name = b
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("signin-username"))
        .await
        .expect("the sign-in form");
    name.send_keys(USER).await.expect("type the user");
    b.find(Locator::Id("signin-password"))
        .await
        .expect("the password field")
        .send_keys(PASSWORD)
        .await
        .expect("type the password");
    click(b, "#sign-in button[type=submit]").await;
    b.wait()
        .at_most(STEP)
        .for_element(Locator::Css("#connect input[name=\"nick\"]"))
        .await
        .expect("the connect form");
    click(b, "#connect button[type=submit]").await;

    // The join: the room's history (said before), its topic and its members.
    open(b, 0, "#lobby").await;
    wait_shown(b, "message|ncuser|said before the lounge came").await;
    wait_for!(
        "the topic in the header",
        text_of(b, "#chat .header .topic")
            .await
            .contains("natter meets the lounge")
            .then_some(())
    );
    wait_for!("the member list", {
        let m = members(b).await;
        ["cliuser", "lounger", "ncuser"]
            .iter()
            .all(|n| m.iter().any(|x| x == n))
            .then_some(())
    });
    nc_expect(&nc_out, "-- lounger joined #lobby").await;
    cli.expect("[#lobby] -- lounger joined #lobby").await;

    // Messages and actions every way; The Lounge shows its own once (echo-message).
    say(b, "hello from the lounge").await;
    nc_expect(&nc_out, "<lounger> hello from the lounge").await;
    cli.expect("[#lobby] <lounger> hello from the lounge").await;
    say(b, "/me waves from the lounge").await;
    nc_expect(&nc_out, "* lounger waves from the lounge").await;
    cli.expect("[#lobby] * lounger waves from the lounge").await;
    nc_send(&mut nc, "hi lounger, from nc").await;
    wait_shown(b, "message|ncuser|hi lounger, from nc").await;
    nc_send(&mut nc, "/me nods on nc").await;
    wait_shown(b, "action|ncuser|ncuser nods on nc").await;
    cli.say("hello from the cli").await;
    wait_shown(b, "message|cliuser|hello from the cli").await;
    cli.say("/me types in the cli").await;
    wait_shown(b, "action|cliuser|cliuser types in the cli").await;
    assert_eq!(count(b, "message|lounger|hello from the lounge").await, 1);
    assert_eq!(
        count(b, "action|lounger|lounger waves from the lounge").await,
        1
    );
    // Notices: The Lounge's `/notice` is a notice for nc (shown once in The Lounge, whose echo
    // is the only copy), and a NOTICE from another IRC user, to the channel or to The Lounge's
    // nick, is a notice in The Lounge.
    say(b, "/notice #lobby notice from the lounge").await;
    nc_expect(&nc_out, "-lounger- notice from the lounge").await;
    cli.expect("[#lobby] -lounger- notice from the lounge")
        .await;
    let (mut ircuser, irc_out) = irc_user(irc, "ircuser").await;
    nc_send(&mut ircuser, "NOTICE #lobby :notice from irc").await;
    nc_expect(&nc_out, "-ircuser- notice from irc").await;
    wait_shown(b, "notice|ircuser|notice from irc").await;
    // A direct one shows in the open channel, as The Lounge shows notices from nicks.
    nc_send(&mut ircuser, "NOTICE lounger :to the lounge alone").await;
    wait_shown(b, "notice|ircuser|to the lounge alone").await;
    assert_eq!(
        count(b, "notice|lounger|notice from the lounge").await,
        1,
        "{:#?}",
        shown(b).await
    );
    assert!(
        !irc_out
            .lines()
            .iter()
            .any(|l| l.split(' ').nth(1).is_some_and(|c| c.starts_with('4'))),
        "the NOTICE was not refused: {:#?}",
        irc_out.lines()
    );
    // A mention is highlighted.
    let highlighted = js(
        b,
        "return [...document.querySelectorAll('#chat .msg.highlight')].map(m => m.innerText);",
    )
    .await;
    assert!(
        highlighted.to_string().contains("hi lounger, from nc"),
        "{highlighted}"
    );

    // Topics both ways.
    say(b, "/topic the lounge set this").await;
    nc_expect(
        &nc_out,
        "-- lounger set the topic of #lobby: the lounge set this",
    )
    .await;
    cli.expect("[#lobby] -- lounger set the topic of #lobby: the lounge set this")
        .await;
    cli.say("/topic the cli set this").await;
    wait_for!(
        "the CLI's topic in the header",
        text_of(b, "#chat .header .topic")
            .await
            .contains("the cli set this")
            .then_some(())
    );

    // Nick changes both ways, and the member list follows.
    say(b, "/nick lounge2").await;
    nc_expect(&nc_out, "-- lounger is now known as lounge2").await;
    cli.expect("[#lobby] -- lounger is now known as lounge2")
        .await;
    nc_send(&mut nc, "/nick ncuser2").await;
    wait_for!("ncuser2 in the member list", {
        let m = members(b).await;
        (m.iter().any(|n| n == "ncuser2") && !m.iter().any(|n| n == "ncuser")).then_some(())
    });
    wait_kind(b, "nick", "ncuser", "ncuser2").await;

    // Away: The Lounge hears that it is marked away.
    say(b, "/away gone for tea").await;
    open(b, 0, "lobby").await;
    wait_shown_part(b, "You have been marked as being away").await;
    say(b, "/back").await;
    wait_shown_part(b, "You are no longer marked as being away").await;

    // Part and quit: The Lounge shows the CLI leave and nc quit.
    open(b, 0, "#lobby").await;
    cli.say("/part").await;
    wait_kind(b, "part", "cliuser", "has left the channel").await;
    nc_send(&mut nc, "/quit off now").await;
    wait_kind(b, "quit", "ncuser2", "off now").await;
    wait_for!("the member list without them", {
        let m = members(b).await;
        (!m.iter().any(|n| n == "cliuser" || n == "ncuser2") && m.iter().any(|n| n == "lounge2"))
            .then_some(())
    });

    // Reconnecting: The Lounge keeps its buffer, and the room does not replay into it what is
    // already there; what was said while it was away comes.
    cli.say("/join #lobby").await;
    // Line mode says our own join once, by the notice of it: the first visit's and this one.
    wait_for!(
        "the CLI back in #lobby",
        (cli.out.count("-- you are in #lobby") >= 2).then_some(())
    );
    wait_for!(
        "cliuser in the member list again",
        members(b)
            .await
            .iter()
            .any(|n| n == "cliuser")
            .then_some(())
    );
    say(b, "/disconnect brb").await;
    cli.expect("[#lobby] -- lounge2 quit (brb)").await;
    open(b, 0, "lobby").await;
    wait_shown_part(b, "Disconnected from the network").await;
    cli.say("said while the lounge was away").await;
    cli.expect("[#lobby] <cliuser> said while the lounge was away")
        .await;
    say(b, "/connect").await;
    cli.expect("[#lobby] -- lounge2 joined #lobby").await;
    // Registered before this (it joins after the welcome); see the restart below.
    let registered = tokio::time::Instant::now();
    open(b, 0, "#lobby").await;
    wait_shown(b, "message|cliuser|said while the lounge was away").await;
    for line in [
        "message|ncuser|said before the lounge came",
        "message|lounger|hello from the lounge",
        "message|ncuser|hi lounger, from nc",
        "message|cliuser|said while the lounge was away",
        "notice|lounger|notice from the lounge",
        "notice|ircuser|notice from irc",
    ] {
        assert_eq!(count(b, line).await, 1, "{line}: {:#?}", shown(b).await);
    }

    // Nothing The Lounge did was refused: its only error is the goodbye of its own /disconnect.
    no_errors(b, 0).await;

    // natter-server restarts gracefully (an upgrade) on its store and its ports: The Lounge,
    // which keeps its buffers, reconnects and joins #lobby again, and the room does not replay
    // to it what it shows already (the store kept who was in the room and what each saw); what
    // is said after the restart comes once.
    open(b, 0, "#lobby").await;
    let before: Vec<String> = shown(b)
        .await
        .into_iter()
        .filter(|l| {
            ["message|", "action|", "notice|"]
                .iter()
                .any(|kind| l.starts_with(kind))
        })
        .collect();
    assert!(
        before.len() >= 6,
        "lines shown before the restart: {before:#?}"
    );
    open(b, 0, "lobby").await;
    let dropped = |l: &String| l.contains("Disconnected from the network");
    let drops = shown(b).await.iter().filter(|l| dropped(l)).count();
    let joins = cli.out.count("[#lobby] -- lounge2 joined #lobby");
    // irc-framework reconnects by itself only from a connection registered for over 5 s (a
    // network that drops a client just after its welcome is refusing it); the first attempt
    // comes 2 to 7 s after the drop.
    tokio::time::sleep_until(registered + Duration::from_millis(5_500)).await;
    natter.restart().await;
    let gone = wait_for!(
        "The Lounge to see the server go",
        shown(b).await.into_iter().filter(dropped).nth(drops)
    );
    assert!(
        gone.contains("Reconnecting in"),
        "The Lounge reconnects by itself: {gone}"
    );
    cli.expect("-- reconnected as cliuser; picked up where you left off")
        .await;
    wait_for!(
        "The Lounge in #lobby again",
        (cli.out.count("[#lobby] -- lounge2 joined #lobby") > joins).then_some(())
    );
    open(b, 0, "#lobby").await;
    cli.say("said after the restart").await;
    wait_shown(b, "message|cliuser|said after the restart").await;
    for line in before
        .iter()
        .map(String::as_str)
        .chain(["message|cliuser|said after the restart"])
    {
        assert_eq!(count(b, line).await, 1, "{line}: {:#?}", shown(b).await);
    }
    no_errors(b, 0).await;

    // A second network over TLS (the test's CA, certificates checked) that signs in to carol's
    // account with SASL PLAIN, whatever nick the form asks for.
    timeout(STEP, b.goto(&format!("{url}#/connect")))
        .await
        .expect("the connect page in time")
        .expect("open the connect page");
    b.wait()
        .at_most(STEP)
        .for_element(Locator::Css("#connect input[name=\"nick\"]"))
        .await
        .expect("the connect form");
    fill(b, "name", "natter-tls").await;
    fill(b, "host", "localhost").await;
    fill(b, "port", &irc_tls.port().to_string()).await;
    fill(b, "nick", "someone").await;
    click(b, "#connect input[name=\"tls\"]").await;
    let trusted = js(
        b,
        "return document.querySelector('#connect input[name=\"rejectUnauthorized\"]').checked;",
    )
    .await;
    assert_eq!(trusted.as_bool(), Some(true), "certificates are checked");
    click(b, "#connect input[name=\"sasl\"][value=\"plain\"]").await;
    fill(b, "saslAccount", "carol").await;
    fill(b, "saslPassword", "carols-secret").await;
    click(b, "#connect button[type=submit]").await;
    open(b, 1, "lobby").await;
    wait_shown_part(b, "Logged in as: carol").await;
    wait_shown_part(b, "You're now known as carol").await;
    open(b, 1, "#lobby").await;
    say(b, "carol over tls").await;
    cli.expect("[#lobby] <carol> carol over tls").await;
    wait_for!("carol and cliuser in the TLS network's member list", {
        let m = members(b).await;
        ["carol", "cliuser", "lounge2"]
            .iter()
            .all(|n| m.iter().any(|x| x == n))
            .then_some(())
    });
    // Signed in, a reconnect brings what the account missed since this connection closed (its
    // read marker), and not again what The Lounge shows already.
    cli.say("before carol drops").await;
    wait_shown(b, "message|cliuser|before carol drops").await;
    let gone = "-- carol is away: not connected; your message waits for them";
    let said = |cli: &Cli| cli.out.lines().iter().filter(|l| *l == gone).count();
    let before = said(&cli);
    say(b, "/disconnect").await;
    // The server has seen carol's last connection go (her account stays in the room) before
    // cliuser speaks: a line written to a connection whose client has already sent QUIT
    // reaches nobody, and IRC has no acknowledgement to tell the server so.
    wait_for!("the CLI to hear that carol is not connected", {
        (said(&cli) > before).then_some(())
    });
    cli.say("while carol is away").await;
    cli.expect("[#lobby] <cliuser> while carol is away").await;
    open(b, 1, "lobby").await;
    wait_shown_part(b, "Disconnected from the network").await;
    say(b, "/connect").await;
    open(b, 1, "#lobby").await;
    wait_shown(b, "message|cliuser|while carol is away").await;
    for line in [
        "message|carol|carol over tls",
        "message|cliuser|before carol drops",
        "message|cliuser|while carol is away",
    ] {
        assert_eq!(count(b, line).await, 1, "{line}: {:#?}", shown(b).await);
    }
    no_errors(b, 1).await;
}
