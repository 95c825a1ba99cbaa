//! The page in a real headless Chromium, end to end: an in-process natter-server and natter-bridge
//! on 127.0.0.1:0, chromedriver on a port it picks, a `natter` line-mode client and a raw-TCP text
//! user (as `nc`) in `#lobby` with the browser user. Everyone sees everyone; the browser's
//! WebSocket is cut (a quick drop, then the bridge gone for a while) and it shows "reconnecting…",
//! resumes, and shows nothing twice; `<script>` in a message stays text.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::{Client as Browser, Locator};
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(240);
/// Room events the test server keeps for replay (the default is far more).
const HISTORY: usize = 6;
/// Messages said while the bridge is down, more than [`HISTORY`]: some of them are lost to the
/// browser and must show up as a gap marker.
const FILLERS: usize = 10;

async fn has_line(b: &Browser, conv: &str, nick: &str, text: &str) -> Option<()> {
    chat(b, conv)
        .await
        .iter()
        .any(|(n, t)| n == nick && t == text)
        .then_some(())
}

/// Every chat line appears once: the texts this test sends are all different, and a room's
/// events carry distinct seqs.
async fn assert_no_duplicates(b: &Browser, conv: &str) {
    let lines = chat(b, conv).await;
    for (i, l) in lines.iter().enumerate() {
        assert!(
            !lines[..i].contains(l),
            "{l:?} shows twice in {conv}: {lines:#?}"
        );
    }
    let seqs = js(
        b,
        &format!(
            r#"return [...document.querySelectorAll('.log[data-conv="{conv}"] .line[data-seq]')].map(l => l.dataset.seq);"#
        ),
    )
    .await;
    let seqs: Vec<&str> = seqs
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for (i, s) in seqs.iter().enumerate() {
        assert!(!seqs[..i].contains(s), "seq {s} shows twice in {conv}");
    }
}

/// Who should see a chat line: the page (in `#lobby`), the CLI user or the nc user.
#[derive(Debug, Clone, Copy)]
enum Viewer {
    Page,
    Cli,
    Nc,
}

/// Waits, in order, until each viewer shows `<nick> text` (the page: in `#lobby`).
async fn wait_seen(b: &Browser, cli: &Captured, nc: &Captured, seen: &[(Viewer, &str, &str)]) {
    for &(viewer, nick, text) in seen {
        let line = format!("<{nick}> {text}");
        wait_for!(
            format!("{viewer:?} to see {line}"),
            STEP,
            match viewer {
                Viewer::Page => has_line(b, "#lobby", nick, text).await,
                Viewer::Cli => cli.has(&line),
                Viewer::Nc => nc.has(&line),
            }
        );
    }
}

async fn screenshot(b: &Browser, name: &str) {
    let png = timeout(STEP, b.screenshot())
        .await
        .expect("screenshot in time")
        .expect("a screenshot");
    let dir = repo().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    std::fs::write(dir.join(name), png).expect("write the screenshot");
}

/// The W3C WebDriver "Set Permission" command (chromedriver implements it): what a person
/// grants a site in the browser's prompt, granted through the driver.
#[derive(Debug)]
struct SetPermission {
    name: &'static str,
    state: &'static str,
}

impl fantoccini::wd::WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/permissions",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"descriptor": {"name": self.name}, "state": self.state});
        (http::Method::POST, Some(body.to_string()))
    }
}

async fn title(b: &Browser) -> String {
    js(b, "return document.title;")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The notifications the page showed, as its test hook recorded them.
async fn notifications(b: &Browser) -> Vec<Json> {
    js(b, "return window.natterDebug.notifications;")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

// --- the other two users ---------------------------------------------------------------------------

struct TextUser {
    write: tokio::net::tcp::OwnedWriteHalf,
    out: Captured,
}

impl TextUser {
    async fn connect(server: SocketAddr, nick: &str) -> TextUser {
        let stream = timeout(STEP, TcpStream::connect(server))
            .await
            .expect("connect in time")
            .expect("connect to natter-server");
        let (read, write) = stream.into_split();
        let mut user = TextUser {
            write,
            out: capture(read),
        };
        // A person says nothing at first and is greeted in text mode.
        wait_for!(
            "the text-mode welcome",
            STEP,
            user.out.has("Welcome to natter")
        );
        user.say(&format!("/nick {nick}")).await;
        wait_for!(
            "the text user's new nick",
            STEP,
            user.out.has(&format!("known as {nick}"))
        );
        user
    }

    async fn say(&mut self, line: &str) {
        timeout(STEP, self.write.write_all(format!("{line}\r\n").as_bytes()))
            .await
            .expect("server reads in time")
            .expect("write to the server");
    }
}

// --- the tests --------------------------------------------------------------------------------------

/// An `env` import would mean native code (a libc shim, `std::time`, getrandom's fallback) slipped
/// into the wasm: the browser could not even instantiate it.
#[test]
fn wasm_imports_only_from_wasm_bindgen() {
    let wasm = std::fs::read(www_dir().join("natter_web_bg.wasm")).expect("read the wasm");
    let mut modules = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::ImportSection(reader) = payload.expect("a valid wasm module") {
            for import in reader.into_imports() {
                let import = import.expect("a valid import");
                modules.push(format!("{}::{}", import.module, import.name));
            }
        }
    }
    assert!(!modules.is_empty(), "the page's wasm imports its JS glue");
    // wasm-bindgen names its glue module `wbg` in older versions and `./natter_web_bg.js` (the
    // JS file it writes next to the wasm) in 0.2.130; `__wbindgen_*` are its intrinsics.
    let from_bindgen = |module: &str| {
        module == "wbg" || module.starts_with("__wbindgen_") || module == "./natter_web_bg.js"
    };
    for m in &modules {
        let module = m.split("::").next().unwrap_or_default();
        assert_ne!(
            module, "env",
            "native code leaked into the wasm: it imports {m}"
        );
        assert!(
            from_bindgen(module),
            "unexpected wasm import {m} (only wasm-bindgen's glue allowed): {modules:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chats_with_cli_and_nc_users_and_survives_reconnects() {
    // A short history, so the bridge outage below outlasts it and the page must show a gap.
    let mut server_config = natter_server::ServerConfig::local_test();
    server_config.hub.history_len = HISTORY;
    server_config.hub.history_on_join = HISTORY;
    with_browser(server_config, scenario).await;
}

/// Runs `scenario` against a natter-server with `server_config`, a natter-bridge serving the
/// page and a headless Chromium, bounded by [`SCENARIO_LIMIT`], and stops them all afterwards
/// (also when the scenario fails). The scenario gets the browser, the server's address, the
/// bridge and the page's directory, and returns the bridge (it may restart it).
async fn with_browser<F, Fut>(server_config: natter_server::ServerConfig, scenario: F)
where
    F: FnOnce(Browser, SocketAddr, natter_bridge::Bridge, PathBuf) -> Fut,
    Fut: std::future::Future<Output = natter_bridge::Bridge> + Send + 'static,
{
    let www = www_dir();
    let (driver, driver_port) = start_chromedriver();
    let profile = TempDir::new("natter-chromium");
    let server = natter_server::start(server_config)
        .await
        .expect("start natter-server");
    let server_addr = *server
        .local_addrs()
        .first()
        .expect("the server listens somewhere");
    let bridge = natter_bridge::start(natter_bridge::BridgeConfig::local_test(
        server_addr,
        www.clone(),
    ))
    .await
    .expect("start natter-bridge");
    let browser = open_browser(driver_port, &profile.0, &[]).await;

    // In a task, so a failed assertion (a panic) still lets us clean up before reporting it.
    let mut task = tokio::spawn(scenario(browser.clone(), server_addr, bridge, www));
    let outcome = timeout(SCENARIO_LIMIT, &mut task).await;
    let in_time = outcome.is_ok();
    task.abort();
    // The session ends Chromium, the guard ends chromedriver (and anything left in its group).
    let _ = timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    let bridge = match outcome {
        Ok(Ok(bridge)) => Some(bridge),
        Ok(Err(e)) if e.is_panic() => {
            let _ = timeout(Duration::from_secs(10), server.shutdown()).await;
            std::panic::resume_unwind(e.into_panic());
        }
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => None,
    };
    if let Some(bridge) = bridge {
        let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    }
    let _ = timeout(Duration::from_secs(10), server.shutdown()).await;
    assert!(
        in_time,
        "the scenario did not finish within {SCENARIO_LIMIT:?}"
    );
}

/// The conversation. Returns the (restarted) bridge so the caller can shut it down.
async fn scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    let bridge_addr = bridge.local_addr();
    timeout(STEP, b.goto(&format!("http://{bridge_addr}/")))
        .await
        .expect("page loads in time")
        .expect("open the page");

    // The nick prompt refuses a bad nick with core's reason, then accepts a good one.
    let nick_input = nick_prompt(b).await;
    nick_input.clear().await.expect("clear the nick");
    nick_input.send_keys("9lives").await.expect("type a nick");
    click_join(b).await;
    let err = text_of(b, "#nick-error").await;
    assert!(
        err.contains("starts with a letter"),
        "bad nick explained: {err:?}"
    );
    screenshot(b, "nick.png").await;
    nick_input.clear().await.expect("clear the nick");
    nick_input.send_keys("webby").await.expect("type a nick");
    click_join(b).await;
    wait_for!(
        "the browser to connect",
        STEP,
        (conn_state(b).await == "connected").then_some(())
    );
    wait_for!(
        "the browser to be in #lobby",
        STEP,
        text_of(b, "#member-list")
            .await
            .contains("webby")
            .then_some(())
    );

    // The other two arrive.
    let mut nc = TextUser::connect(server_addr, "netcat").await;
    let config_home = TempDir::new("natter-cli-config");
    let mut cli = Cli::start("clint", server_addr, &config_home.0).await;
    wait_for!("the browser to list netcat and clint", STEP, {
        let members = text_of(b, "#member-list").await;
        (members.contains("netcat") && members.contains("clint")).then_some(())
    });

    // Everyone talks; everyone hears the other two.
    type_line(b, "hello from the browser").await;
    cli.say("hello from the cli").await;
    nc.say("hello from nc").await;
    use Viewer::{Cli as C, Nc as N, Page as P};
    let (from_b, from_c, from_n) = (
        "hello from the browser",
        "hello from the cli",
        "hello from nc",
    );
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[
            (P, "clint", from_c),
            (P, "netcat", from_n),
            (P, "webby", from_b),
            (C, "webby", from_b),
            (C, "netcat", from_n),
            (N, "webby", from_b),
            (N, "clint", from_c),
        ],
    )
    .await;

    // Issue 6's "messages with timestamps and nick colours, joins shown quietly": each line of
    // the three carries its time (a `<time>` with the instant), each speaker has a colour of
    // their own, and the others' joins are quiet lines, not messages.
    let look = js(
        b,
        r##"const log = document.querySelector('.log[data-conv="#lobby"]');
        const said = [...log.querySelectorAll('.line.say')].filter(l => l.textContent.includes('hello from'));
        return {
            times: said.map(l => { const t = l.querySelector('time'); return t ? t.getAttribute('datetime') || '' : ''; }),
            colours: said.map(l => { const n = l.querySelector('.nick'); return n ? getComputedStyle(n).color : ''; }),
            joins: [...log.querySelectorAll('.line')].filter(l => / joined #lobby/.test(l.textContent)).map(l => l.className),
        };"##,
    )
    .await;
    let strs = |k: &str| -> Vec<String> {
        look[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (times, colours, joins) = (strs("times"), strs("colours"), strs("joins"));
    assert_eq!(times.len(), 3, "three lines said: {look}");
    assert!(
        times
            .iter()
            .all(|t| t.starts_with("20") && t.ends_with('Z')),
        "each line has its time: {times:?}"
    );
    let distinct: std::collections::HashSet<&String> = colours.iter().collect();
    assert!(
        distinct.len() == 3 && colours.iter().all(|c| c.starts_with("rgb")),
        "three speakers, three colours: {colours:?}"
    );
    assert!(
        !joins.is_empty()
            && joins
                .iter()
                .all(|c| c.contains("quiet") && !c.contains("say")),
        "joins are quiet lines: {joins:?}"
    );

    // /me and the topic, from the page.
    type_line(b, "/me waves at everyone").await;
    type_line(b, "/topic natter end-to-end").await;
    wait_for!(
        "the cli to see the action",
        STEP,
        cli.out.has("* webby waves at everyone")
    );
    wait_for!(
        "the topic in the page header",
        STEP,
        text_of(b, "#topic")
            .await
            .contains("natter end-to-end")
            .then_some(())
    );

    // Member lists print when asked for.
    type_line(b, "/who").await;
    wait_for!(
        "the /who answer",
        STEP,
        text_of(b, r##".log[data-conv="#lobby"]"##)
            .await
            .contains("#lobby (3): ")
            .then_some(())
    );

    type_line(b, "/help").await;
    wait_for!(
        "the /help list",
        STEP,
        text_of(b, r##".log[data-conv="#lobby"] .line.help"##)
            .await
            .contains("/join #room")
            .then_some(())
    );
    // Then the page's keys, as the TUI's help says its own.
    let help = log_of(b, "#lobby").await;
    assert!(
        help.last().is_some_and(|l| l.contains("keys: Enter sends")),
        "{help:#?}"
    );

    // Markup in a message is text: shown as typed, and no element is made from it.
    let hostile = "<script>alert(1)</script> & <b>bold</b> <img src=x onerror=alert(2)>";
    nc.say(hostile).await;
    wait_seen(b, &cli.out, &nc.out, &[(P, "netcat", hostile)]).await;
    let made = js(
        b,
        "return [document.scripts.length, document.querySelectorAll('#logs script, #logs b, #logs img').length];",
    )
    .await;
    assert_eq!(
        made,
        json!([1, 0]),
        "only app.js is a script; no element came from message text"
    );
    assert!(
        b.get_alert_text().await.is_err(),
        "no alert dialog may be open"
    );

    // Right-to-left words read right to left: a line's text (and the topic) takes its
    // direction from its first strong character, isolated from the nick and time around it,
    // so a Hebrew question's "?" ends it on the left; an English line stays left to right.
    let rtl = "שלום לכולם, מה שלומכם?";
    cli.say(rtl).await;
    wait_seen(b, &cli.out, &nc.out, &[(P, "clint", rtl)]).await;
    type_line(b, &format!("/topic {rtl}")).await;
    wait_for!(
        "the right-to-left topic in the header",
        STEP,
        (text_of(b, "#topic").await == rtl).then_some(())
    );
    let dirs = js(
        b,
        &format!(
            r##"const text = (t) => [...document.querySelectorAll('.log[data-conv="#lobby"] .line .text')]
                  .find((e) => e.textContent === t);
                return [text({rtl}), text("hello from nc"), document.getElementById("topic")]
                  .map((e) => e && (e.matches(":dir(rtl)") ? "rtl" : "ltr"));"##,
            rtl = json!(rtl)
        ),
    )
    .await;
    assert_eq!(
        dirs,
        json!(["rtl", "ltr", "rtl"]),
        "each text in its own direction"
    );

    // A quick cut: the page reconnects by itself and shows nothing twice.
    let dropped = js(b, "return window.natterDebug.dropSocket();").await;
    assert_eq!(dropped, json!(true), "there was a socket to drop");
    wait_for!(
        "the page to resume after the drop",
        STEP,
        text_of(b, "#logs")
            .await
            .contains("picked up where you left off")
            .then_some(())
    );
    wait_for!(
        "the page to be connected again",
        STEP,
        (conn_state(b).await == "connected").then_some(())
    );
    cli.say("after the quick drop").await;
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[(P, "clint", "after the quick drop")],
    )
    .await;
    assert_no_duplicates(b, "#lobby").await;

    // A real outage: the bridge goes away. The page says so, people keep talking, the page
    // types into the void; when the bridge is back on the same port the page resumes and every
    // one of those messages shows exactly once, everywhere.
    timeout(STEP, bridge.shutdown())
        .await
        .expect("bridge stops in time")
        .expect("bridge stops cleanly");
    wait_for!(
        "the page to show it is reconnecting",
        STEP,
        (conn_state(b).await == "reconnecting").then_some(())
    );
    let banner = text_of(b, "#banner").await;
    assert!(
        banner.contains("reconnecting"),
        "a visible reconnecting state: {banner:?}"
    );
    let status = text_of(b, "#status").await;
    assert!(
        status.contains("reconnecting"),
        "status says it: {status:?}"
    );
    for i in 1..=FILLERS {
        nc.say(&format!("filler {i}")).await;
    }
    nc.say("said during the outage").await;
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[(C, "netcat", "said during the outage")],
    )
    .await;
    cli.say("also said during the outage").await;
    type_line(b, "typed while offline").await;
    wait_for!(
        "a greyed-out placeholder for the line typed offline",
        STEP,
        (text_of(b, ".line.pending")
            .await
            .contains("typed while offline"))
        .then_some(())
    );
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[(C, "clint", "also said during the outage")],
    )
    .await;
    let mut config = natter_bridge::BridgeConfig::local_test(server_addr, www);
    config.listen = bridge_addr;
    let bridge = natter_bridge::start(config)
        .await
        .expect("restart the bridge on the same port");
    wait_for!(
        "the page to reconnect to the new bridge",
        Duration::from_secs(45),
        (conn_state(b).await == "connected").then_some(())
    );
    // Why the attempts failed, in words: the browser says only 1006 of a socket to a bridge
    // that is not there.
    let lobby = js(b, r##"return natterDebug.lines("#lobby");"##).await;
    let lobby: Vec<String> = serde_json::from_value(lobby).expect("the lines are strings");
    assert!(
        lobby
            .iter()
            .any(|l| l.contains("cannot reach the chat server"))
            && !lobby.iter().any(|l| l.contains("1006")),
        "{lobby:#?}"
    );
    let offline = "typed while offline";
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[
            (P, "netcat", "said during the outage"),
            (P, "clint", "also said during the outage"),
            (P, "webby", offline),
            (C, "webby", offline),
            (N, "webby", offline),
        ],
    )
    .await;
    // The fillers beyond the history are gone for the browser: a gap marker says so, and what
    // the history still had is shown (once).
    let gap = wait_for!(
        "a gap marker where history was lost",
        STEP,
        Some(text_of(b, r##".log[data-conv="#lobby"] .line.gap"##).await).filter(|t| !t.is_empty())
    );
    assert!(gap.contains("missed here"), "gap marker text: {gap:?}");
    let fillers = chat(b, "#lobby")
        .await
        .into_iter()
        .filter(|(_, t)| t.starts_with("filler "))
        .count();
    assert!(
        fillers < FILLERS,
        "{fillers} of {FILLERS} fillers shown although the history holds {HISTORY} events"
    );
    assert!(
        has_line(b, "#lobby", "netcat", &format!("filler {FILLERS}"))
            .await
            .is_some(),
        "the newest filler is still in the history and shown"
    );
    // Let any late duplicate arrive before counting.
    nc.say("last word").await;
    wait_seen(b, &cli.out, &nc.out, &[(P, "netcat", "last word")]).await;
    assert_no_duplicates(b, "#lobby").await;
    assert_eq!(
        js(
            b,
            "return document.querySelectorAll('.line.pending').length;"
        )
        .await,
        json!(0),
        "the placeholder went when the server echoed the line"
    );
    assert_eq!(
        cli.out.count("<webby> typed while offline"),
        1,
        "the offline line reaches the cli once"
    );
    assert_eq!(
        nc.out.count("<webby> typed while offline"),
        1,
        "the offline line reaches nc once"
    );

    // More than one conversation: a second room with an unread count, and a DM.
    type_line(b, "/join #rust").await;
    wait_for!(
        "the page to switch to #rust",
        STEP,
        (text_of(b, "#conv-name").await == "#rust").then_some(())
    );
    b.find(Locator::Css(r##"#room-list button[data-conv="#lobby"]"##))
        .await
        .expect("#lobby in the room list")
        .click()
        .await
        .expect("switch to #lobby");
    cli.say("/join #rust").await;
    // Typed chat goes to the joined room once the join is answered.
    wait_for!(
        "the cli to be in #rust",
        STEP,
        cli.out.has("-- you are in #rust ")
    );
    cli.say("anyone here into rust?").await;
    wait_for!(
        "an unread count on #rust",
        STEP,
        (text_of(b, r##"#room-list button[data-conv="#rust"] .badge"##).await == "1").then_some(())
    );
    nc.say("/msg webby psst, this one is just for you").await;
    wait_for!(
        "the DM in its own conversation",
        STEP,
        has_line(b, "@netcat", "netcat", "psst, this one is just for you").await
    );
    // Answering: a member's name opens the DM; lines typed there go to them only.
    b.find(Locator::XPath(
        "//ul[@id='member-list']//button[span[text()='netcat']]",
    ))
    .await
    .expect("netcat in the member list")
    .click()
    .await
    .expect("open the DM");
    wait_for!(
        "the DM conversation on screen",
        STEP,
        (text_of(b, "#conv-name").await == "netcat").then_some(())
    );
    type_line(b, "hi netcat, privately").await;
    wait_for!(
        "nc to get the DM",
        STEP,
        nc.out.has("*webby* hi netcat, privately")
    );
    wait_for!(
        "the sent DM in the page",
        STEP,
        has_line(b, "@netcat", "webby", "hi netcat, privately").await
    );
    assert_eq!(
        cli.out.count("hi netcat, privately"),
        0,
        "a DM reaches nobody else"
    );
    b.find(Locator::Css(r##"#room-list button[data-conv="#lobby"]"##))
        .await
        .expect("#lobby in the room list")
        .click()
        .await
        .expect("back to #lobby");

    // Up brings back what was typed before.
    let input = b.find(Locator::Id("input")).await.expect("the input");
    input
        .send_keys(&char::from(fantoccini::key::Key::Up).to_string())
        .await
        .expect("press Up");
    let recalled = js(b, "return document.getElementById('input').value;").await;
    assert_eq!(
        recalled,
        json!("hi netcat, privately"),
        "Up recalls the last line"
    );
    input.clear().await.expect("clear the input");

    // Tab completes a member's nick; with no nick to complete it stays in the input (it moved
    // on to Send, whose Enter sent the half-typed line).
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    input
        .send_keys(&format!("hey cl{tab}"))
        .await
        .expect("type and press Tab");
    let state = "return [document.getElementById('input').value, document.activeElement.id];";
    assert_eq!(
        js(b, state).await,
        json!(["hey clint ", "input"]),
        "completed"
    );
    input
        .send_keys(&format!("and zz{tab}"))
        .await
        .expect("type and press Tab");
    assert_eq!(
        js(b, state).await,
        json!(["hey clint and zz", "input"]),
        "nothing to complete: still typing there"
    );
    input.clear().await.expect("clear the input");

    type_line(b, "the page works nicely").await;
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[(P, "webby", "the page works nicely")],
    )
    .await;
    screenshot(b, "chat.png").await;

    // Counts in the title: #rust still has clint's line unread.
    assert_eq!(title(b).await, "(1) #lobby · natter");

    // Desktop notifications, once allowed: granted through the driver as a person would in the
    // browser's prompt.
    timeout(
        STEP,
        b.issue_cmd(SetPermission {
            name: "notifications",
            state: "granted",
        }),
    )
    .await
    .expect("set permission in time")
    .expect("chromedriver sets the notification permission");
    assert_eq!(
        js(b, "return Notification.permission;").await,
        json!("granted")
    );
    // While the page is looked at, a mention is highlighted but not notified.
    nc.say("webby: are you reading this?").await;
    wait_seen(
        b,
        &cli.out,
        &nc.out,
        &[(P, "netcat", "webby: are you reading this?")],
    )
    .await;
    let mark = text_of(
        b,
        r##".log[data-conv="#lobby"] .line.mention:last-child mark.me"##,
    )
    .await;
    assert_eq!(mark, "webby", "the mention of our nick is marked");
    assert!(
        notifications(b).await.is_empty(),
        "no notification while visible"
    );
    // Another tab in front hides the page. What it notifies is mirrored where that tab can read
    // it (same origin); the page itself is not looked at until it is done.
    let page = b.window().await.expect("the page's window");
    js(
        b,
        "setInterval(() => localStorage.setItem('natter-test-notes', \
           JSON.stringify({notes: window.natterDebug.notifications, hidden: document.hidden, \
                           title: document.title})), 200); return true;",
    )
    .await;
    let other = b.new_window(true).await.expect("a new tab");
    b.switch_to_window(other.handle)
        .await
        .expect("switch to the new tab");
    b.goto(&format!("http://{bridge_addr}/?observer"))
        .await
        .expect("open the observer tab");
    let mirrored = || async {
        js(
            b,
            "return JSON.parse(localStorage.getItem('natter-test-notes') ?? 'null');",
        )
        .await
    };
    wait_for!("the page to be hidden behind the other tab", STEP, {
        let v = mirrored().await;
        (v["hidden"] == json!(true)).then_some(())
    });
    nc.say("webby: ping while you are away").await;
    cli.say("/msg webby psst, one more").await;
    // Shown: the browser fired the notifications' `show` events.
    let seen = wait_for!("two notifications shown by the hidden page", STEP, {
        let v = mirrored().await;
        let notes = v["notes"].as_array().cloned().unwrap_or_default();
        (notes.len() >= 2 && notes.iter().all(|n| n["shown"] == json!(true))).then_some(v)
    });
    let notes = seen["notes"].as_array().expect("notes");
    // (The two senders are independent: either may come first.)
    let mut got: Vec<(String, String)> = notes
        .iter()
        .map(|n| {
            assert_eq!(n["error"], json!(false), "the browser refused it: {n:?}");
            let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
            (s("title"), s("body"))
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("clint (direct message)".into(), "psst, one more".into()),
            (
                "netcat in #lobby".into(),
                "webby: ping while you are away".into()
            ),
        ],
        "exactly these were notified"
    );
    // Unread while hidden: the open room counts too, mentions marked in the title.
    let hidden_title = seen["title"].as_str().unwrap_or_default().to_owned();
    assert!(
        hidden_title.starts_with("(3, @2) "),
        "title while hidden: {hidden_title:?}"
    );
    b.close_window().await.expect("close the observer tab");
    b.switch_to_window(page).await.expect("back to the page");
    wait_for!("the page to read what came while it was hidden", STEP, {
        let t = title(b).await;
        (t == "(2, @1) #lobby · natter").then_some(())
    });

    // The same page at phone width: side panels collapse into drawers.
    timeout(STEP, b.set_window_size(390, 800))
        .await
        .expect("resize in time")
        .expect("resize");
    wait_for!(
        "the rooms panel to collapse at phone width",
        STEP,
        js(
            b,
            "const r = document.getElementById('sidebar').getBoundingClientRect(); return r.right <= 0;",
        )
        .await
        .as_bool()
        .filter(|hidden| *hidden)
    );
    screenshot(b, "chat-mobile.png").await;
    b.find(Locator::Id("toggle-rooms"))
        .await
        .expect("the rooms button")
        .click()
        .await
        .expect("open the rooms drawer");
    wait_for!(
        "the rooms drawer to slide in",
        STEP,
        js(
            b,
            "return document.getElementById('sidebar').getBoundingClientRect().left >= 0;",
        )
        .await
        .as_bool()
        .filter(|open| *open)
    );
    screenshot(b, "chat-mobile-rooms.png").await;
    b.find(Locator::Css(r##"#room-list button[data-conv="#rust"]"##))
        .await
        .expect("#rust in the drawer")
        .click()
        .await
        .expect("switch to #rust");
    wait_for!(
        "#rust on screen, drawer closed",
        STEP,
        (text_of(b, "#conv-name").await == "#rust").then_some(())
    );
    assert!(
        has_line(b, "#rust", "clint", "anyone here into rust?")
            .await
            .is_some(),
        "#rust's unread line is there"
    );
    assert_eq!(
        text_of(b, r##"#room-list button[data-conv="#rust"] .badge"##).await,
        "",
        "reading a room clears its count"
    );

    // Nothing went wrong in the page's scripts (or the wasm) along the way.
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, json!([]), "script errors in the page");

    // Leaving: the page says so and offers to join again; the others see the quit.
    type_line(b, "/quit see you").await;
    wait_for!(
        "the page to show it has left",
        STEP,
        (conn_state(b).await == "closed").then_some(())
    );
    let banner = text_of(b, "#banner").await;
    assert!(
        banner.contains("left the chat"),
        "banner after /quit: {banner:?}"
    );
    wait_for!(
        "nc to see the quit",
        STEP,
        nc.out.has("webby quit (see you)")
    );

    let _ = timeout(Duration::from_secs(5), cli.stdin.shutdown()).await;
    let _ = cli.child.start_kill();
    let _ = timeout(Duration::from_secs(5), cli.child.wait()).await;
    bridge
}

/// Lines said before the page joins a server that keeps [`SCROLL_RING`] events and replays
/// [`SCROLL_JOIN`] on join: the rest is older history, loaded by scrolling up (two pages of
/// `SCROLLBACK_PAGE`).
const SCROLL_LINES: usize = 150;
const SCROLL_RING: usize = 200;
const SCROLL_JOIN: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_to_the_top_loads_older_lines_and_search_shows_hits() {
    let mut server_config = natter_server::ServerConfig::local_test();
    server_config.hub.history_len = SCROLL_RING;
    server_config.hub.history_on_join = SCROLL_JOIN;
    // Quick talkers: the lines below go in at once.
    server_config.hub.flood_burst = 1_000;
    server_config.hub.flood_refill = natter_core::Millis(1);
    with_browser(server_config, scrollback_scenario).await;
}

/// The same with a store (natter-server's default) and a ring smaller than what was said: the
/// older lines scrolling up loads, with its "loading" and "beginning of #lobby" markers, and the
/// search panel's hits come from the store (the test above reads them from the ring only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_to_the_top_loads_older_lines_from_the_store_and_search_shows_hits() {
    let data = tempfile::tempdir().expect("a store directory");
    let mut server_config = natter_server::ServerConfig::local_test();
    server_config.store = Some(natter_store::Config::new(data.path().join("data")));
    server_config.hub.history_len = SCROLL_JOIN + 10;
    server_config.hub.history_on_join = SCROLL_JOIN;
    server_config.hub.flood_burst = 1_000;
    server_config.hub.flood_refill = natter_core::Millis(1);
    with_browser(server_config, scrollback_scenario).await;
}

/// `/history 3` typed at the bottom of a room: the three lines before the oldest shown go in
/// front of the log, above the screen, and the log goes up to show them (it stayed at the
/// bottom, and the command seemed to do nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_typed_at_the_bottom_shows_the_lines_it_brought() {
    let mut server_config = natter_server::ServerConfig::local_test();
    server_config.hub.history_on_join = SCROLL_JOIN;
    server_config.hub.flood_burst = 1_000;
    server_config.hub.flood_refill = natter_core::Millis(1);
    with_browser(server_config, history_scenario).await;
}

async fn history_scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    let mut nc = TextUser::connect(server_addr, "netcat").await;
    for i in 1..=SCROLL_LINES {
        nc.say(&format!("old line {i:03}")).await;
    }
    nc.say("/who").await;
    wait_for!("nc's /who answer", STEP, nc.out.has("#lobby (1): netcat"));
    timeout(
        STEP,
        b.goto(&format!("http://{}/?nick=histy", bridge.local_addr())),
    )
    .await
    .expect("page loads in time")
    .expect("open the page");
    wait_for!(
        "the nick prompt",
        STEP,
        js(b, "return document.getElementById('nick-dialog').open;")
            .await
            .as_bool()
            .filter(|open| *open)
    );
    click_join(b).await;
    let last = format!("old line {SCROLL_LINES:03}");
    wait_for!(
        "the join replay",
        STEP,
        has_line(b, "#lobby", "netcat", &last).await
    );
    let shown = chat(b, "#lobby")
        .await
        .into_iter()
        .filter_map(|(_, t)| t.strip_prefix("old line ")?.parse::<usize>().ok())
        .min()
        .expect("old lines shown");
    let scrolls = js(
        b,
        &format!("const l = {LOBBY_LOG}; return l.scrollHeight > l.clientHeight + 200;"),
    )
    .await;
    assert_eq!(scrolls, json!(true), "the log scrolls");
    let wanted = format!("old line {:03}", shown - 3);
    assert!(has_line(b, "#lobby", "netcat", &wanted).await.is_none());
    type_line(b, "/history 3").await;
    wait_for!(
        "the lines /history brought",
        STEP,
        has_line(b, "#lobby", "netcat", &wanted).await
    );
    // Shown: the first of them is within the log's visible part.
    let seen = wait_for!(
        "the first line /history brought on screen",
        STEP,
        js(
            b,
            &format!(
                "const log = {LOBBY_LOG}; \
                 const l = [...log.querySelectorAll('.line')].find(e => e.textContent.includes('{wanted}')); \
                 const top = l.getBoundingClientRect().top - log.getBoundingClientRect().top; \
                 return top >= 0 && top < log.clientHeight ? top : null;"
            ),
        )
        .await
        .as_f64()
    );
    assert!(seen >= 0.0);
    screenshot(b, "history_typed.png").await;

    // Left and joined again, the room keeps its lines: `/history` goes on below the oldest of
    // them. It asked below the oldest the session had shown since the join, lines the page
    // held already, and nothing came.
    type_line(b, "/part").await;
    wait_for!(
        "the part",
        STEP,
        js(
            b,
            "return document.body.textContent.includes('you left #lobby');"
        )
        .await
        .as_bool()
        .filter(|left| *left)
    );
    type_line(b, "/join #lobby").await;
    wait_for!(
        "the join again, said in the room that kept its lines",
        STEP,
        js(
            b,
            &format!(
                "const l = {LOBBY_LOG}; return l && l.textContent.split('you are in #lobby').length > 2 \
                 && l.textContent.includes('{last}');"
            ),
        )
        .await
        .as_bool()
        .filter(|back| *back)
    );
    let wanted = format!("old line {:03}", shown - 6);
    assert!(has_line(b, "#lobby", "netcat", &wanted).await.is_none());
    type_line(b, "/history 3").await;
    wait_for!(
        "the lines /history brought after the join again",
        STEP,
        has_line(b, "#lobby", "netcat", &wanted).await
    );
    assert_no_duplicates(b, "#lobby").await;

    // Another room joined: its replay, said before the join, goes above the notice of the
    // join, in order, each line inserted before the next line drawn (it redrew every log,
    // losing where a reader scrolled up in any of them was).
    nc.say("/join #other").await;
    for i in 1..=5 {
        nc.say(&format!("in other {i}")).await;
    }
    nc.say("/who").await;
    wait_for!("nc in #other", STEP, nc.out.has("#other (1): netcat"));
    type_line(b, "/join #other").await;
    wait_for!(
        "#other's replay",
        STEP,
        has_line(b, "#other", "netcat", "in other 5").await
    );
    let lines = page_lines(b, "#other").await;
    let at = |t: &str| {
        lines
            .iter()
            .position(|l| l.contains(t))
            .unwrap_or_else(|| panic!("{t}: {lines:#?}"))
    };
    let said: Vec<usize> = (1..=5).map(|i| at(&format!("in other {i}"))).collect();
    assert!(said.windows(2).all(|w| w[0] < w[1]), "{lines:#?}");
    assert!(said[4] < at("you are in #other"), "{lines:#?}");
    assert_no_duplicates(b, "#other").await;
    bridge
}

/// The page's `#lobby` log, as JS.
const LOBBY_LOG: &str = r##"document.querySelector('.log[data-conv="#lobby"]')"##;

/// The seqs of the room events in `#lobby`'s log, in the order shown.
async fn lobby_seqs(b: &Browser) -> Vec<u64> {
    let v = js(
        b,
        &format!(
            "return [...{LOBBY_LOG}.querySelectorAll('.line[data-seq]')].map(l => Number(l.dataset.seq));"
        ),
    )
    .await;
    v.as_array()
        .expect("an array")
        .iter()
        .filter_map(Json::as_u64)
        .collect()
}

/// What the top of `#lobby`'s log says, and its state.
async fn lobby_top(b: &Browser) -> (String, String) {
    let v = js(
        b,
        &format!("const t = {LOBBY_LOG}.querySelector('.history-top'); return [t.dataset.state ?? '', t.textContent];"),
    )
    .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
    )
}

async fn scrollback_scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    // Someone talked a lot before the page came.
    let mut nc = TextUser::connect(server_addr, "netcat").await;
    for i in 1..=SCROLL_LINES {
        nc.say(&format!("old line {i:03}")).await;
    }
    let hostile = r#"he said "quoted" * -minus NEAR(a b) col:on"#;
    nc.say(hostile).await;
    // Answered after every line before it: all of them are in the room's history.
    nc.say("/who").await;
    wait_for!("nc's /who answer", STEP, nc.out.has("#lobby (1): netcat"));

    timeout(
        STEP,
        b.goto(&format!("http://{}/?nick=scrolly", bridge.local_addr())),
    )
    .await
    .expect("page loads in time")
    .expect("open the page");
    wait_for!(
        "the nick prompt",
        STEP,
        js(b, "return document.getElementById('nick-dialog').open;")
            .await
            .as_bool()
            .filter(|open| *open)
    );
    click_join(b).await;
    wait_for!(
        "the join replay",
        STEP,
        has_line(b, "#lobby", "netcat", hostile).await
    );
    let replayed = lobby_seqs(b).await;
    assert!(
        replayed.len() <= SCROLL_JOIN,
        "{} events replayed",
        replayed.len()
    );
    assert!(
        has_line(b, "#lobby", "netcat", "old line 001")
            .await
            .is_none()
    );
    assert_eq!(lobby_top(b).await.0, "more");

    // Scroll to the top: the model asks for the lines below the oldest shown. The line that was
    // at the top of the history stays where it is on screen while they are put above it.
    let anchor = js(
        b,
        &format!(
            "const log = {LOBBY_LOG}; log.scrollTop = 0; \
             const a = log.querySelector('.line[data-seq]'); \
             return [a.dataset.id, a.getBoundingClientRect().top - log.getBoundingClientRect().top, \
                     log.scrollHeight > log.clientHeight];"
        ),
    )
    .await;
    assert_eq!(anchor[2], json!(true), "the log scrolls");
    let anchor_id = anchor[0].as_str().expect("an id").to_owned();
    let anchor_top = anchor[1].as_f64().expect("a position");
    wait_for!(
        "older lines above the history",
        STEP,
        has_line(b, "#lobby", "netcat", "old line 100").await
    );
    let moved = js(
        b,
        &format!(
            "const log = {LOBBY_LOG}; const a = log.querySelector('.line[data-id=\"{anchor_id}\"]'); \
             return a.getBoundingClientRect().top - log.getBoundingClientRect().top;"
        ),
    )
    .await
    .as_f64()
    .expect("a position");
    assert!(
        (moved - anchor_top).abs() < 2.0,
        "the line being read moved from {anchor_top}px to {moved}px"
    );
    let tops = js(b, "return window.natterDebug.tops;").await;
    assert!(
        tops.as_array()
            .expect("tops")
            .iter()
            .any(|t| t == "#lobby loading: loading older lines…"),
        "a visible loading state: {tops}"
    );
    screenshot(b, "scrollback.png").await;

    // Again to the top: the rest, and the beginning of the room.
    js(b, &format!("{LOBBY_LOG}.scrollTop = 0; return true;")).await;
    wait_for!(
        "the beginning of #lobby",
        STEP,
        (lobby_top(b).await == ("start".into(), "the beginning of #lobby".into())).then_some(())
    );
    assert!(
        has_line(b, "#lobby", "netcat", "old line 001")
            .await
            .is_some()
    );
    let seqs = lobby_seqs(b).await;
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "every event once, in order: {seqs:?}"
    );
    assert_eq!(seqs.first(), Some(&1), "from the room's first event");
    assert_no_duplicates(b, "#lobby").await;
    let said = chat(b, "#lobby")
        .await
        .iter()
        .filter(|(_, t)| t.starts_with("old line "))
        .count();
    assert_eq!(said, SCROLL_LINES, "every line said is shown");

    // Search from the header: a panel of hits with room, time, nick and text.
    let search = b
        .find(Locator::Id("search-input"))
        .await
        .expect("the search box");
    search
        .send_keys(&format!(
            "old line 007{}",
            char::from(fantoccini::key::Key::Enter)
        ))
        .await
        .expect("search");
    wait_for!(
        "the search's results",
        STEP,
        (text_of(b, "#search-title").await == r#"1 result for "old line 007" in all your rooms"#)
            .then_some(())
    );
    let hit = js(
        b,
        "const h = document.querySelector('#search-hits .hit'); \
         return [h.querySelector('.room').textContent, h.querySelector('.nick').textContent, \
                 h.querySelector('.text').textContent, h.querySelector('.time').textContent];",
    )
    .await;
    assert_eq!(hit[0], json!("#lobby"));
    assert_eq!(hit[1], json!("netcat"));
    assert_eq!(hit[2], json!("old line 007"));
    let time = hit[3].as_str().unwrap_or_default();
    assert!(
        time.len() == 16 && time.starts_with("20"),
        "a date and a time: {time:?}"
    );
    screenshot(b, "search.png").await;

    // A room first in the box names the room to search, as `/search #room words` does.
    search.clear().await.expect("clear the search box");
    search
        .send_keys(&format!(
            "#lobby old line 008{}",
            char::from(fantoccini::key::Key::Enter)
        ))
        .await
        .expect("search a room");
    wait_for!(
        "the room search's results",
        STEP,
        (text_of(b, "#search-title").await == r#"1 result for "old line 008" in #lobby"#)
            .then_some(())
    );
    assert_eq!(text_of(b, "#search-hits .hit .text").await, "old line 008");

    // Typed, with search syntax that is just words here.
    type_line(b, r#"/search "quoted" -minus NEAR(a col:on"#).await;
    wait_for!(
        "the typed search's results",
        STEP,
        (text_of(b, "#search-title").await
            == r#"1 result for ""quoted" -minus NEAR(a col:on" in all your rooms"#)
            .then_some(())
    );
    assert_eq!(text_of(b, "#search-hits .hit .text").await, hostile);
    b.find(Locator::Id("search-close"))
        .await
        .expect("the close button")
        .click()
        .await
        .expect("close the results");
    wait_for!(
        "the results to close",
        STEP,
        js(b, "return document.getElementById('search-panel').hidden;")
            .await
            .as_bool()
            .filter(|hidden| *hidden)
    );

    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, json!([]), "script errors in the page");
    bridge
}

// --- accounts ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_reload_signed_in_by_the_kept_key_then_sign_out() {
    with_browser(natter_server::ServerConfig::local_test(), accounts_scenario).await;
}

async fn account_of(b: &Browser) -> Option<String> {
    js(
        b,
        "return window.natterDebug ? window.natterDebug.account() : null;",
    )
    .await
    .as_str()
    .map(str::to_owned)
}

/// Opens the page and registers `nick` (password "correct horse battery") in its dialog; returns
/// once the page is signed in.
async fn register_on_page(b: &Browser, bridge: &natter_bridge::Bridge, nick: &str) {
    let page = format!("http://{}/", bridge.local_addr());
    timeout(STEP, b.goto(&page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let nick_input = nick_prompt(b).await;
    nick_input.clear().await.expect("clear the nick");
    nick_input.send_keys(nick).await.expect("type a nick");
    b.find(Locator::Id("password-input"))
        .await
        .expect("the password field")
        .send_keys("correct horse battery")
        .await
        .expect("type a password");
    click(b, "#register").await;
    wait_for!(
        format!("the page to be signed in as {nick}"),
        STEP,
        (account_of(b).await.as_deref() == Some(nick)).then_some(())
    );
}

async fn kept_sign_in(b: &Browser) -> Json {
    js(
        b,
        "return window.natterDebug ? window.natterDebug.keptSignIn() : null;",
    )
    .await
}

async fn accounts_scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    let page = format!("http://{}/", bridge.local_addr());
    timeout(STEP, b.goto(&page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let nick_input = nick_prompt(b).await;

    // A password the server would refuse is refused in the dialog, by the server's rule.
    nick_input.clear().await.expect("clear the nick");
    nick_input.send_keys("rosa").await.expect("type a nick");
    let password = b.find(Locator::Id("password-input")).await.expect("pw");
    password.send_keys("short").await.expect("type a password");
    b.find(Locator::Id("register"))
        .await
        .expect("the register button")
        .click()
        .await
        .expect("click register");
    let err = text_of(b, "#nick-error").await;
    assert!(err.contains("at least 8"), "{err:?}");
    assert!(dialog_open(b).await);
    screenshot(b, "account-dialog.png").await;

    // Register, remembered.
    password.clear().await.expect("clear the password");
    password
        .send_keys("correct horse battery")
        .await
        .expect("type a password");
    b.find(Locator::Id("remember-input"))
        .await
        .expect("remember me")
        .click()
        .await
        .expect("tick remember me");
    b.find(Locator::Id("register"))
        .await
        .expect("the register button")
        .click()
        .await
        .expect("click register");
    wait_for!(
        "the page to be signed in as rosa",
        STEP,
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    wait_for!(
        "the device key to be kept",
        STEP,
        kept_sign_in(b)
            .await
            .get("key")
            .and_then(Json::as_str)
            .map(str::to_owned)
    );
    let kept = kept_sign_in(b).await;
    assert_eq!(kept["account"], "rosa");
    assert_eq!(kept["key"].as_str().map(str::len), Some(64), "{kept}");
    let storage = js(b, "return JSON.stringify({...localStorage});").await;
    assert!(
        !storage
            .as_str()
            .unwrap_or_default()
            .contains("correct horse"),
        "the password is never kept: {storage}"
    );
    let me = text_of(b, ".me").await;
    assert!(me.contains("you are rosa · signed in"), "{me:?}");
    screenshot(b, "signed-in.png").await;

    // Someone else cannot take the nick now.
    let mut nc = TextUser::connect(server_addr, "netcat").await;
    nc.say("/nick rosa").await;
    wait_for!("the refusal", STEP, nc.out.has("registered"));

    // Reloaded: signed in again with the kept key, without the dialog.
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "the page to sign in with the kept key",
        STEP,
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    assert!(!dialog_open(b).await, "no nick dialog when remembered");
    assert_eq!(text_of(b, "#me-nick").await, "rosa");
    wait_for!(
        "rosa in #lobby again",
        STEP,
        text_of(b, "#member-list")
            .await
            .contains("rosa")
            .then_some(())
    );
    type_line(b, "back after a reload").await;
    wait_for!(
        "nc to hear rosa",
        STEP,
        nc.out.has("<rosa> back after a reload")
    );

    // The same account in the terminal client at once: each sees what the other says, and so
    // does nc, from one rosa.
    let config_home = TempDir::new("natter-cli-config");
    let mut cli = Cli::start_with(
        "rosa",
        &[server_addr],
        &config_home.0,
        Some("correct horse battery"),
    )
    .await;
    wait_for!(
        "the CLI to sign in",
        STEP,
        cli.out.has("-- you are signed in as rosa")
    );
    cli.say("from rosa's terminal").await;
    wait_for!(
        "the terminal's line in the page",
        STEP,
        has_line(b, "#lobby", "rosa", "from rosa's terminal").await
    );
    wait_for!(
        "the terminal's line on nc",
        STEP,
        nc.out.has("<rosa> from rosa's terminal")
    );
    type_line(b, "from rosa's browser").await;
    wait_for!(
        "the page's line in the terminal",
        STEP,
        cli.out.has("[#lobby] <rosa> from rosa's browser")
    );
    assert_eq!(
        text_of(b, "#member-list").await.matches("rosa").count(),
        1,
        "one rosa, on two devices"
    );

    // Read markers: a second device of the account reads #side, and the first one's unread
    // badge there clears.
    type_line(b, "/join #side").await;
    wait_for!(
        "#side listed",
        STEP,
        (!text_of(b, r##"button[data-conv="#side"]"##)
            .await
            .is_empty())
        .then_some(())
    );
    b.find(Locator::Css(r##"button[data-conv="#lobby"]"##))
        .await
        .expect("#lobby in the list")
        .click()
        .await
        .expect("open #lobby");
    nc.say("/join #side").await;
    wait_for!("nc in #side", STEP, nc.out.has("#side"));
    nc.say("one for the side room").await;
    nc.say("two for the side room").await;
    let badge = r##"button[data-conv="#side"] .badge"##;
    wait_for!(
        "the unread badge of #side",
        STEP,
        (text_of(b, badge).await == "2").then_some(())
    );
    let first = timeout(STEP, b.window())
        .await
        .expect("in time")
        .expect("this window");
    let second = timeout(STEP, b.new_window(true))
        .await
        .expect("in time")
        .expect("a second tab");
    timeout(STEP, b.switch_to_window(second.handle))
        .await
        .expect("in time")
        .expect("to the second tab");
    timeout(STEP, b.goto(&page))
        .await
        .expect("page loads in time")
        .expect("open the page again");
    wait_for!(
        "the second tab to sign in with the kept key",
        STEP,
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    let side = wait_for!(
        "#side in the second tab",
        STEP,
        b.find(Locator::Css(r##"button[data-conv="#side"]"##))
            .await
            .ok()
    );
    wait_for!(
        "the side room's lines in the second tab",
        STEP,
        has_line(b, "#side", "netcat", "two for the side room").await
    );
    side.click().await.expect("read #side in the second tab");
    timeout(STEP, b.close_window())
        .await
        .expect("in time")
        .expect("close the second tab");
    timeout(STEP, b.switch_to_window(first))
        .await
        .expect("in time")
        .expect("back to the first tab");
    wait_for!(
        "the first tab's #side badge to clear",
        STEP,
        text_of(b, badge).await.is_empty().then_some(())
    );
    screenshot(b, "read-elsewhere.png").await;

    // Signed out: the key is forgotten here and revoked on the server.
    let key = kept_sign_in(b).await["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    b.find(Locator::Id("sign-out"))
        .await
        .expect("the sign-out button")
        .click()
        .await
        .expect("click sign out");
    wait_for!(
        "the page to be a guest",
        STEP,
        account_of(b).await.is_none().then_some(())
    );
    assert!(kept_sign_in(b).await.is_null());
    wait_for!(
        "the page to be back as a guest",
        STEP,
        (conn_state(b).await == "connected" && text_of(b, "#me-nick").await != "rosa")
            .then_some(())
    );
    assert!(
        text_of(b, "#sign-out").await.is_empty() || !text_of(b, ".me").await.contains("signed in")
    );
    // The old key no longer opens the account.
    let script = format!(
        "localStorage.setItem('natter.signin', JSON.stringify({{account: 'rosa', key: '{key}'}}));"
    );
    js(b, &script).await;
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "the revoked key to be refused and forgotten",
        STEP,
        kept_sign_in(b).await.is_null().then_some(())
    );
    assert_eq!(account_of(b).await, None);
    wait_for!(
        "the refusal shown",
        STEP,
        text_of(b, "#banner")
            .await
            .contains("remembered sign-in no longer works")
            .then_some(())
    );
    screenshot(b, "key-refused.png").await;
    // Reloaded with nothing kept: the dialog asks again.
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "the prompt to open again",
        STEP,
        dialog_open(b).await.then_some(())
    );

    // A wrong password in the dialog is said in the dialog, which stays open (never joining as
    // a guest under another nick): the account name stays, the password field is cleared and
    // has the focus, for another try.
    let nick_input = b.find(Locator::Id("nick-input")).await.expect("nick");
    nick_input.clear().await.expect("clear the nick");
    nick_input.send_keys("rosa").await.expect("type a nick");
    let password = b.find(Locator::Id("password-input")).await.expect("pw");
    password
        .send_keys("not the password")
        .await
        .expect("type a password");
    b.find(Locator::Id("sign-in"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("click sign in");
    wait_for!(
        "the refusal in the dialog",
        STEP,
        (text_of(b, "#nick-error").await == "could not sign in: wrong account name or password")
            .then_some(())
    );
    assert!(dialog_open(b).await, "the dialog stays open");
    let fields = js(
        b,
        "return [document.getElementById('nick-input').value, \
                 document.getElementById('password-input').value, \
                 document.activeElement && document.activeElement.id, \
                 document.getElementById('password-input').getAttribute('aria-invalid'), \
                 document.getElementById('banner').hidden];",
    )
    .await;
    assert_eq!(
        fields,
        serde_json::json!(["rosa", "", "password-input", "true", true]),
        "the account name kept, the password cleared and focused, no banner behind"
    );
    assert_eq!(account_of(b).await, None);
    screenshot(b, "sign-in-refused.png").await;
    // The right password, typed where the focus is, and Enter: signed in from the same dialog.
    password
        .send_keys("correct horse battery\u{E007}")
        .await
        .expect("type the password and Enter");
    wait_for!(
        "the page to be signed in as rosa",
        STEP,
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    wait_for!(
        "the dialog to close and the input to have the focus",
        STEP,
        (!dialog_open(b).await
            && js(
                b,
                "return document.activeElement && document.activeElement.id;"
            )
            .await
            .as_str()
                == Some("input"))
        .then_some(())
    );
    assert_eq!(text_of(b, "#nick-error").await, "");
    assert_eq!(conn_state(b).await, "connected");

    // Signed out with the button: the focus goes to the input (the button is gone), and the
    // guest's page offers the dialog again ("Sign in or register"), which Escape closes.
    click(b, "#sign-out").await;
    wait_for!(
        "the page to be a guest offering to sign in",
        STEP,
        (account_of(b).await.is_none()
            && js(b, "return !document.getElementById('sign-in-open').hidden;")
                .await
                .as_bool()
                == Some(true))
        .then_some(())
    );
    let focus = js(
        b,
        "return document.activeElement && document.activeElement.id;",
    )
    .await;
    assert_eq!(focus, "input", "the focus is not left on the page");
    click(b, "#sign-in-open").await;
    wait_for!(
        "the dialog for the guest",
        STEP,
        dialog_open(b).await.then_some(())
    );
    b.active_element()
        .await
        .expect("the focused element")
        .send_keys("\u{E00C}")
        .await
        .expect("press Escape");
    wait_for!(
        "Escape to close the guest's dialog",
        STEP,
        (!dialog_open(b).await).then_some(())
    );
    assert_eq!(conn_state(b).await, "connected", "still here as a guest");
    // Opened again: the account's name and password, Enter, and signed in (where the guest
    // stands: the same session becomes the account's).
    click(b, "#sign-in-open").await;
    wait_for!("the dialog again", STEP, dialog_open(b).await.then_some(()));
    let nick_input = b.find(Locator::Id("nick-input")).await.expect("nick");
    nick_input.clear().await.expect("clear the nick");
    nick_input.send_keys("rosa").await.expect("type a nick");
    b.find(Locator::Id("password-input"))
        .await
        .expect("pw")
        .send_keys("correct horse battery\u{E007}")
        .await
        .expect("type the password and Enter");
    wait_for!(
        "the guest's page to be signed in as rosa",
        STEP,
        (account_of(b).await.as_deref() == Some("rosa") && !dialog_open(b).await).then_some(())
    );
    assert_eq!(text_of(b, "#me-nick").await, "rosa");
    screenshot(b, "sign-in-refused.png").await;
    bridge
}

// --- moderation from the page ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founder_bans_from_the_member_menu_and_moderates_in_the_settings_panel() {
    // With a message of the day, which the page shows when it connects.
    let mut config = natter_server::ServerConfig::local_test();
    config.hub.motd = Some(natter_core::hub::Motd::new("Welcome to the club server.").unwrap());
    with_browser(config, moderation_scenario).await;
}

/// The room's settings as the page's model has them (`null` when it is not in the room).
async fn policy_of(b: &Browser, room: &str) -> Json {
    js(
        b,
        &format!("return window.natterDebug ? window.natterDebug.policy('{room}') : null;"),
    )
    .await
}

/// Clicks the element `css` names once it appears. The page may draw it again between the
/// find and the click (a list re-rendered by news from the server): then it is found again.
async fn click(b: &Browser, css: &str) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let found = b
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} appears: {e}"));
        match found.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale element") => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "click {css}: still redrawn after {STEP:?}: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("click {css}: {e}"),
        }
    }
}

async fn page_lines(b: &Browser, conv: &str) -> Vec<String> {
    let v = js(
        b,
        &format!("return window.natterDebug ? window.natterDebug.lines('{conv}') : [];"),
    )
    .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn moderation_scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    // The founder registers an account in the dialog, then a room with a typed command.
    register_on_page(b, &bridge, "fern").await;
    wait_for!(
        "the server's message of the day in the page",
        STEP,
        js(
            b,
            "return [...document.querySelectorAll('.line')].map(l => l.textContent);"
        )
        .await
        .as_array()
        .is_some_and(|ls| ls.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.contains("Welcome to the club server."))))
        .then_some(())
    );
    type_line(b, "/join #club").await;
    wait_for!(
        "#club to be open",
        STEP,
        (policy_of(b, "#club").await.is_object()).then_some(())
    );
    type_line(b, "/register #club").await;
    wait_for!(
        "fern to be #club's founder",
        STEP,
        (policy_of(b, "#club").await["am_founder"] == json!(true)).then_some(())
    );
    wait_for!(
        "the founder's mark in the member list",
        STEP,
        (text_of(b, "#member-list button[data-nick=\"fern\"] .mark").await == "~").then_some(())
    );

    // Two text users join: one to be banned, one to be silenced by +m.
    let mut troll = TextUser::connect(server_addr, "troll").await;
    troll.say("/join #club").await;
    let mut quiet = TextUser::connect(server_addr, "quiet").await;
    quiet.say("/join #club").await;
    for nick in ["troll", "quiet"] {
        in_member_list(b, nick).await;
    }

    // The member menu: an operator's click on a member offers the actions; Ban bans.
    click(b, "#member-list button[data-nick=\"troll\"]").await;
    wait_for!(
        "the member menu",
        STEP,
        (js(b, "return !document.getElementById('member-menu').hidden;").await == json!(true))
            .then_some(())
    );
    assert_eq!(text_of(b, "#member-menu-nick").await, "troll");
    for action in ["message", "kick", "ban", "mute", "op"] {
        assert!(
            !text_of(b, &format!("#member-menu button[data-action=\"{action}\"]"))
                .await
                .is_empty(),
            "the founder is offered {action}"
        );
    }
    screenshot(b, "member-menu.png").await;
    click(b, "#member-menu button[data-action=\"ban\"]").await;
    wait_for!(
        "troll to be put out of the member list",
        STEP,
        text_of(b, "#member-list button[data-nick=\"troll\"]")
            .await
            .is_empty()
            .then_some(())
    );
    wait_for!(
        "the ban as a line in the page",
        STEP,
        page_lines(b, "#club")
            .await
            .iter()
            .any(|l| l.contains("troll") && l.contains("ban"))
            .then_some(())
    );
    // Banned, troll cannot come back.
    troll.say("/join #club").await;
    wait_for!(
        "troll to be refused as banned",
        STEP,
        troll.out.has("you are banned from #club")
    );

    // The settings panel: the founder sees the ban and turns on +m.
    click(b, "#settings-toggle").await;
    wait_for!(
        "the ban list in the settings panel",
        STEP,
        text_of(b, "#ban-list")
            .await
            .contains("troll")
            .then_some(())
    );
    assert!(
        text_of(b, "#settings-summary")
            .await
            .contains("registered to fern")
    );
    click(b, "#mode-m").await;
    wait_for!(
        "#club to be moderated",
        STEP,
        (policy_of(b, "#club").await["moderated"] == json!(true)).then_some(())
    );
    wait_for!(
        "the mode change as a line in the page",
        STEP,
        page_lines(b, "#club")
            .await
            .iter()
            .any(|l| l.contains("+m"))
            .then_some(())
    );
    assert!(
        text_of(b, "#settings-summary").await.contains("+m"),
        "the panel shows the mode"
    );
    screenshot(b, "room-settings.png").await;
    // A member who is neither operator nor voiced is refused.
    quiet.say("can anyone hear me").await;
    wait_for!(
        "quiet's message to be refused",
        STEP,
        quiet.out.has("only operators and voiced members speak")
    );
    sleep(Duration::from_millis(300)).await;
    assert!(
        !page_lines(b, "#club")
            .await
            .iter()
            .any(|l| l.contains("can anyone hear me")),
        "nobody heard it"
    );

    // Unban from the panel: the list empties and troll may come back.
    click(b, "#ban-list button.unban").await;
    wait_for!(
        "the ban list to be empty",
        STEP,
        text_of(b, "#ban-list")
            .await
            .contains("nobody is banned")
            .then_some(())
    );
    troll.say("/join #club").await;
    in_member_list(b, "troll").await;

    // A ban by mask from the panel: a network, as typed.
    type_into(b, "#ban-mask", "203.0.113.0/24").await;
    type_into(b, "#ban-for", "1h").await;
    click(b, "#ban-form button[type=\"submit\"]").await;
    wait_for!(
        "the network ban in the panel's list",
        STEP,
        text_of(b, "#ban-list")
            .await
            .contains("203.0.113.0/24")
            .then_some(())
    );

    // Invite-only, and an invitation from the panel reaches the invited.
    let mut guest = TextUser::connect(server_addr, "guest").await;
    click(b, "#mode-i").await;
    wait_for!(
        "#club to be invite-only",
        STEP,
        (policy_of(b, "#club").await["invite_only"] == json!(true)).then_some(())
    );
    guest.say("/join #club").await;
    wait_for!(
        "guest to be refused without an invitation",
        STEP,
        guest.out.has("invite")
    );
    type_into(b, "#invite-input", "guest").await;
    click(b, "#invite-form button[type=\"submit\"]").await;
    wait_for!(
        "guest to be told of the invitation",
        STEP,
        guest.out.has("fern invites you to #club")
    );
    guest.say("/join #club").await;
    in_member_list(b, "guest").await;

    // Another operator's ban shows in the open panel without asking: quiet signs up, is made
    // an operator, and bans troll by account mask from nc.
    quiet.say("/register correct horse battery").await;
    wait_for!(
        "quiet to be signed in",
        STEP,
        quiet.out.has("you are signed in as quiet")
    );
    type_line(b, "/op quiet").await;
    wait_for!(
        "quiet to be an operator",
        STEP,
        (text_of(b, "#member-list button[data-nick=\"quiet\"] .mark").await == "@").then_some(())
    );
    quiet.say("/ban nick:spammer 1d").await;
    wait_for!(
        "the other operator's ban in the open panel",
        STEP,
        text_of(b, "#ban-list")
            .await
            .contains("nick:spammer")
            .then_some(())
    );
    screenshot(b, "room-settings-bans.png").await;
    bridge
}

/// A page that joins a room registered earlier marks its founder and operators at once, and
/// an operator who joins gets the member menu at once: the page learns the room's settings
/// with the join (it learned them only from the room's next change, so a joiner saw nobody
/// in charge and an operator's click on a member only opened a direct conversation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_joining_a_registered_room_knows_its_founder_and_operators_at_once() {
    with_browser(
        natter_server::ServerConfig::local_test(),
        joining_a_registered_room,
    )
    .await;
}

async fn joining_a_registered_room(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    let mut boss = TextUser::connect(server_addr, "boss").await;
    boss.say("/register correct horse battery").await;
    wait_for!("boss signed in", STEP, boss.out.has("signed in as boss"));
    boss.say("/join #hq").await;
    boss.say("/register #hq").await;
    wait_for!("#hq registered", STEP, boss.out.has("boss set #hq +r"));
    let mut troll = TextUser::connect(server_addr, "troll").await;
    troll.say("/join #hq").await;

    // The page registers an account in the dialog, and joins the room already registered.
    register_on_page(b, &bridge, "deputy").await;
    type_line(b, "/join #hq").await;
    in_member_list(b, "boss").await;
    wait_for!(
        "the founder's mark on boss without any change to the room",
        STEP,
        (text_of(b, "#member-list button[data-nick=\"boss\"] .mark").await == "~").then_some(())
    );
    assert_eq!(policy_of(b, "#hq").await["am_op"], json!(false));
    boss.say("/op deputy").await;
    wait_for!(
        "deputy to be an operator",
        STEP,
        (policy_of(b, "#hq").await["am_op"] == json!(true)).then_some(())
    );

    // The operator leaves and comes back: an operator from the start, with the member menu.
    type_line(b, "/part #hq").await;
    wait_for!(
        "the page out of #hq",
        STEP,
        troll.out.has("deputy left #hq")
    );
    type_line(b, "/join #hq").await;
    wait_for!(
        "the page back in #hq",
        STEP,
        (troll.out.count("deputy joined #hq") == 2).then_some(())
    );
    wait_for!(
        "the page to know it is an operator of #hq again",
        STEP,
        (policy_of(b, "#hq").await["am_op"] == json!(true)).then_some(())
    );
    let menu = || async {
        click(b, "#member-list button[data-nick=\"troll\"]").await;
        wait_for!(
            "the member menu",
            STEP,
            (js(b, "return !document.getElementById('member-menu').hidden;").await == json!(true))
                .then_some(())
        );
    };
    // A mute shows in the settings panel, with a button that lifts it.
    menu().await;
    click(b, "#member-menu button[data-action=\"mute\"]").await;
    wait_for!(
        "troll muted",
        STEP,
        troll.out.has("deputy set #hq +q nick:troll")
    );
    click(b, "#settings-toggle").await;
    wait_for!(
        "the mute in the panel",
        STEP,
        text_of(b, "#mute-list")
            .await
            .contains("nick:troll")
            .then_some(())
    );
    assert!(text_of(b, "#ban-list").await.contains("nobody is banned"));
    click(b, "#mute-list button.unmute").await;
    wait_for!(
        "the mute lifted",
        STEP,
        troll.out.has("deputy set #hq -q nick:troll")
    );
    wait_for!(
        "the panel's mutes empty",
        STEP,
        text_of(b, "#mute-list")
            .await
            .contains("nobody is muted")
            .then_some(())
    );
    click(b, "#settings-toggle").await;
    menu().await;
    click(b, "#member-menu button[data-action=\"kick\"]").await;
    wait_for!(
        "troll put out",
        STEP,
        troll.out.has("deputy put you out of #hq")
    );
    bridge
}

/// Waits until `nick` is in the open room's member list.
async fn in_member_list(b: &Browser, nick: &str) {
    wait_for!(
        format!("{nick} in the member list"),
        STEP,
        (!text_of(b, &format!("#member-list button[data-nick=\"{nick}\"]"))
            .await
            .is_empty())
        .then_some(())
    );
}

/// Types `text` into the input `css` (cleared first).
async fn type_into(b: &Browser, css: &str, text: &str) {
    let input = b
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} appears: {e}"));
    input.clear().await.expect("clear the input");
    input.send_keys(text).await.expect("type into the input");
}

// --- who is away, in the member list ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_list_marks_who_is_away_and_follows_changes() {
    with_browser(natter_server::ServerConfig::local_test(), away_scenario).await;
}

/// `(class, tooltip)` of `nick`'s row in the member list: the `li`'s classes and the nick's title.
async fn member_row(b: &Browser, nick: &str) -> (String, String) {
    let script = format!(
        r#"const n = document.querySelector('#member-list button[data-nick="{nick}"]');
           return n ? [n.closest('li').className, n.querySelector('.nick').title] : ['', ''];"#
    );
    let v = js(b, &script).await;
    let s = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
    (s(0), s(1))
}

async fn away_scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    let b = &browser;
    // Away before the page arrives: the page learns it from its join.
    let mut napper = TextUser::connect(server_addr, "napper").await;
    napper.say("/away at lunch").await;
    wait_for!("napper to be away", STEP, napper.out.has("you are away"));
    let mut awake = TextUser::connect(server_addr, "awake").await;
    open_page_as(
        b,
        &format!("http://{}/", bridge.local_addr()),
        Some("webby"),
    )
    .await;
    for nick in ["napper", "awake"] {
        in_member_list(b, nick).await;
    }
    let away = |c: &str| c.split_whitespace().any(|c| c == "away");
    wait_for!(
        "napper marked away",
        STEP,
        away(&member_row(b, "napper").await.0).then_some(())
    );
    assert_eq!(member_row(b, "napper").await.1, "away: at lunch");
    let (class, tip) = member_row(b, "awake").await;
    assert!(!away(&class) && tip.is_empty(), "{class:?} {tip:?}");
    screenshot(b, "member-away.png").await;

    // Changes follow: back, then away with another message.
    napper.say("/back").await;
    wait_for!(
        "napper no longer marked away",
        STEP,
        (!away(&member_row(b, "napper").await.0)).then_some(())
    );
    awake.say("/away brb").await;
    wait_for!(
        "awake marked away",
        STEP,
        (member_row(b, "awake").await == ("away".to_owned(), "away: brb".to_owned())).then_some(())
    );

    // Someone away who joins is marked from their join on.
    let mut later = TextUser::connect(server_addr, "later").await;
    later.say("/part #lobby").await;
    later.say("/away gone fishing").await;
    wait_for!("later to be away", STEP, later.out.has("you are away"));
    wait_for!(
        "later gone from the list",
        STEP,
        text_of(b, "#member-list button[data-nick=\"later\"]")
            .await
            .is_empty()
            .then_some(())
    );
    later.say("/join #lobby").await;
    in_member_list(b, "later").await;
    wait_for!(
        "later marked away",
        STEP,
        (member_row(b, "later").await.1 == "away: gone fishing").then_some(())
    );
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, json!([]), "the page logged errors");
    bridge
}

/// The devices panel, in Chromium: the page registers remembered (labelled as the browser it
/// is), another device of the account says "natter on laptop" and signs in remembered over
/// natter's protocol; the panel (opened from the account area) lists both with their labels,
/// last use, door and address, marks this one, and has a Forget button on the other only,
/// which asks first ("Keep it" keeps it); forgotten, the other device is signed out and
/// closed and the list, asked again, holds this page alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_panel_lists_labelled_devices_and_forgets_another() {
    with_browser(natter_server::ServerConfig::local_test(), devices_scenario).await;
}

/// The devices panel's rows: (id, label, last use in words, this device, has a Forget button).
async fn device_rows(b: &Browser) -> Vec<(String, String, String, bool, bool)> {
    let rows = js(
        b,
        "return [...document.querySelectorAll('#devices-list .device')].map(d => [\
           d.dataset.id, d.querySelector('.device-label').textContent, \
           d.querySelector('.device-last').textContent, \
           d.querySelector('.device-this') !== null, \
           d.querySelector('.device-forget') !== null]);",
    )
    .await;
    rows.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
            (s(0), s(1), s(2), r[3] == json!(true), r[4] == json!(true))
        })
        .collect()
}

async fn devices_scenario(
    browser: Browser,
    server_addr: SocketAddr,
    bridge: natter_bridge::Bridge,
    _www: PathBuf,
) -> natter_bridge::Bridge {
    use natter_core::types::DeviceLabel;
    use natter_core::wire::{
        ClientMsg, FrameDecoder, MAGIC, PROTOCOL_VERSION, Proof, RememberedDevice, ServerMsg,
        decode_payload, encode_frame,
    };
    use tokio::io::AsyncReadExt;
    let b = &browser;
    let page = format!("http://{}/", bridge.local_addr());
    open_and_register_remembered(b, &page, "rosa", "correct horse battery").await;
    wait_for!(
        "the page to be signed in as rosa",
        STEP,
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    // Signed in: the account area shows the Devices button.
    assert!(
        !js(b, "return document.getElementById('devices-open').hidden;")
            .await
            .as_bool()
            .unwrap_or(true)
    );

    // The laptop: natter's protocol, labelled, remembered.
    let mut laptop = TcpStream::connect(server_addr).await.expect("connect");
    let mut out = MAGIC.to_vec();
    for m in [
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: natter_core::Nick::new("laptop").unwrap(),
            resume: None,
        },
        ClientMsg::ThisDevice {
            label: DeviceLabel::new("natter on laptop").unwrap(),
        },
        ClientMsg::SignIn {
            account: natter_core::Nick::new("rosa").unwrap(),
            proof: Proof::Password(natter_core::Password("correct horse battery".into())),
            remember: true,
        },
    ] {
        out.extend_from_slice(&encode_frame(&m).unwrap());
    }
    laptop.write_all(&out).await.expect("write");
    let mut dec = FrameDecoder::new();
    let mut buf = [0u8; 8192];
    let key = timeout(STEP, async {
        loop {
            while let Some(p) = dec.next_frame().unwrap() {
                if let Ok(ServerMsg::SignedIn { key: Some(k), .. }) = decode_payload(&p) {
                    return k;
                }
            }
            let n = laptop.read(&mut buf).await.expect("read");
            assert!(n > 0, "the laptop was closed before signing in");
            dec.extend(&buf[..n]);
        }
    })
    .await
    .expect("the laptop signed in with a key");
    let laptop_id = RememberedDevice::id_words(RememberedDevice::id_of(key.id()));

    click(b, "#devices-open").await;
    let rows = wait_for!("both devices in the panel", STEP, {
        let rows = device_rows(b).await;
        (rows.len() == 2).then_some(rows)
    });
    let (this, other) = (&rows[0], &rows[1]);
    assert!(this.3 && !this.4, "this page: marked, no Forget: {rows:?}");
    assert!(
        this.1.ends_with(" on Linux") && this.1 != "unnamed device",
        "the page's label names the browser and system: {rows:?}"
    );
    assert!(
        this.2.contains("through the page from 127.0.0.1"),
        "{rows:?}"
    );
    assert_eq!(other.0, laptop_id);
    assert_eq!(other.1, "natter on laptop");
    assert!(!other.3 && other.4, "the laptop: a Forget button: {rows:?}");
    assert!(
        other.2.contains("through the natter client from 127.0.0.1"),
        "{rows:?}"
    );
    assert_eq!(text_of(b, "#devices-title").await, "2 remembered devices");
    screenshot(b, "devices.png").await;

    // Forget asks first; "Keep it" keeps it.
    let forget = format!("#devices-list .device[data-id='{laptop_id}'] .device-forget");
    click(b, &forget).await;
    let ask = text_of(b, "#devices-list .device-confirm").await;
    assert!(ask.contains("Forget natter on laptop?"), "{ask:?}");
    click(b, "#devices-list .device-no").await;
    assert_eq!(device_rows(b).await.len(), 2);
    click(b, &forget).await;
    click(b, "#devices-list .device-yes").await;
    wait_for!("the list to hold this page alone", STEP, {
        let rows = device_rows(b).await;
        (rows.len() == 1 && rows[0].3).then_some(())
    });
    assert_eq!(text_of(b, "#devices-title").await, "1 remembered device");
    // The laptop was signed out and closed.
    let closed = timeout(STEP, async {
        loop {
            match laptop.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the forgotten laptop is closed");
    // Closing the panel hides it; the conversation said what the forget did.
    click(b, "#devices-close").await;
    assert!(
        js(b, "return document.getElementById('devices-panel').hidden;")
            .await
            .as_bool()
            .unwrap_or(false)
    );
    wait_for!(
        "the forget's words in the conversation",
        STEP,
        log_of(b, "#lobby")
            .await
            .iter()
            .any(|l| l.contains(&format!("device {laptop_id} is forgotten")))
            .then_some(())
    );
    bridge
}
