//! Where a reader is in a room, in headless Chromium against an in-process natter-server and
//! natter-bridge on 127.0.0.1:0, as every chat page keeps it: a room scrolled up stays where its
//! reader left it while new lines arrive below, while another room's join inserts its replay,
//! when another conversation is opened and this one again (until the forty-first session every
//! room shown went to its bottom), through a server restart and a window resized; a "new messages below" cue
//! counts what came meanwhile and goes down to it; a room at its bottom follows its newest
//! lines, shown or not; and a line said from a room scrolled up goes down to where it is said.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use serde_json::Value as Json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// Lines said in `#lobby` before the page comes: several screens of them, all replayed on join.
const OLD_LINES: usize = 80;

/// The line the reader scrolls to, at the top of the log: with screens of lines below it.
const READ: &str = "old line 030";

/// How far the line read may move on screen (sub-pixel rounding), in CSS pixels.
const SLACK: f64 = 2.0;

async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, line: &str) {
    timeout(STEP, w.write_all(format!("{line}\r\n").as_bytes()))
        .await
        .expect("the server reads in time")
        .expect("write to the server");
}

/// `conv`'s log, as JS.
fn log_js(conv: &str) -> String {
    format!(
        "document.querySelector('.log[data-conv=\"{}\"]')",
        conv.replace('"', "")
    )
}

/// How far below the top of `#lobby`'s log (on screen) the line containing `text` is, in CSS
/// pixels; `None` while the log is hidden or has no such line.
async fn offset_of(b: &Browser, text: &str) -> Option<f64> {
    js(
        b,
        &format!(
            "const log = {}; if (!log || log.hidden) return null; \
             const l = [...log.querySelectorAll('.line')].find(e => e.textContent.includes({})); \
             return l ? l.getBoundingClientRect().top - log.getBoundingClientRect().top : null;",
            log_js("#lobby"),
            Json::from(text)
        ),
    )
    .await
    .as_f64()
}

/// Scrolls `#lobby`'s log so that the line containing `text` is at its top; returns how far
/// below the top it then is (0, or near it).
async fn scroll_to(b: &Browser, text: &str) -> f64 {
    js(
        b,
        &format!(
            "const log = {}; \
             const l = [...log.querySelectorAll('.line')].find(e => e.textContent.includes({})); \
             log.scrollTop += l.getBoundingClientRect().top - log.getBoundingClientRect().top; \
             return true;",
            log_js("#lobby"),
            Json::from(text)
        ),
    )
    .await;
    // The scroll event (which the page reads) comes with the next frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    offset_of(b, text)
        .await
        .expect("the line read is on screen")
}

/// Whether `#lobby`'s log is scrolled to its newest lines.
async fn at_bottom(b: &Browser) -> bool {
    js(
        b,
        &format!(
            "const log = {}; return !log.hidden && \
             log.scrollHeight - log.scrollTop - log.clientHeight < 2;",
            log_js("#lobby")
        ),
    )
    .await
    .as_bool()
    .unwrap_or(false)
}

/// What the "new messages below" cue says ('' while hidden).
async fn cue(b: &Browser) -> String {
    js(
        b,
        "const c = document.getElementById('new-below'); return !c || c.hidden ? '' : c.textContent;",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Waits until the open conversation is `conv` (its log on screen).
async fn wait_shown(b: &Browser, conv: &str) {
    wait_for!(
        format!("{conv} on screen"),
        js(
            b,
            &format!("const l = {}; return !!l && !l.hidden;", log_js(conv))
        )
        .await
        .as_bool()
        .filter(|s| *s)
    );
}

/// Opens `conv` from the sidebar, as a person does.
async fn click_conv(b: &Browser, conv: &str) {
    js(
        b,
        &format!(
            "document.querySelector('.conv-list button[data-conv=\"{conv}\"]').click(); return true;"
        ),
    )
    .await;
    wait_shown(b, conv).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Waits until `#lobby`'s log has a line containing `text`.
async fn wait_line(b: &Browser, text: &str) {
    wait_for!(
        format!("{text:?} in #lobby's log"),
        log_of(b, "#lobby")
            .await
            .iter()
            .any(|l| l.contains(text))
            .then_some(())
    );
}

/// Asserts that the line read is where it was on screen, `offset` below the log's top.
async fn assert_in_place(b: &Browser, offset: f64, when: &str) {
    let now = offset_of(b, READ).await;
    assert!(
        now.is_some_and(|o| (o - offset).abs() <= SLACK),
        "{when}: {READ:?} moved from {offset} to {now:?} below the log's top"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_scrolled_up_keeps_its_readers_place() {
    let mut config = natter_server::ServerConfig::local_test();
    config.hub.history_on_join = OLD_LINES + 20;
    config.hub.flood_burst = 1_000;
    config.hub.flood_refill = natter_core::Millis(1);
    let again = config.clone();
    with_page_and_server_within(
        SCENARIO_LIMIT,
        "natter-reading-place",
        config,
        |b, page, server| scenario(b, page, server, again),
    )
    .await;
}

async fn scenario(
    browser: Browser,
    page: String,
    server: TestServer,
    config: natter_server::ServerConfig,
) {
    let b = &browser;
    let (mut nc, nc_out) = nc(server.addr(), "netcat").await;
    for i in 1..=OLD_LINES {
        say(&mut nc, &format!("old line {i:03}")).await;
    }
    say(&mut nc, "/who").await;
    wait_for!("nc's /who answer", nc_out.has("#lobby (1): netcat"));
    open_page_as(b, &page, Some("reader")).await;
    wait_line(b, &format!("old line {OLD_LINES:03}")).await;
    wait_line(b, "you are in #lobby").await;
    assert!(
        at_bottom(b).await,
        "a room first shown is at its newest lines"
    );
    // #side: the other conversation the reader goes to and comes back from.
    type_line(b, "/join #side").await;
    wait_shown(b, "#side").await;
    click_conv(b, "#lobby").await;
    assert!(
        at_bottom(b).await,
        "back at its newest lines, where it was left"
    );

    // Scrolled up, new lines below: the line read stays where it is.
    let offset = scroll_to(b, READ).await;
    assert!(offset.abs() <= SLACK, "{offset}");
    assert!(!at_bottom(b).await);
    assert_eq!(cue(b).await, "", "nothing new yet");
    for i in 1..=3 {
        say(&mut nc, &format!("new line {i}")).await;
    }
    wait_line(b, "new line 3").await;
    assert_in_place(b, offset, "new lines arrived below").await;

    // Another conversation opened, lines said here meanwhile, and this one again: where it was
    // read, the cue counting what came below, on screen and while away.
    click_conv(b, "#side").await;
    for i in 1..=4 {
        say(&mut nc, &format!("said while away {i}")).await;
    }
    wait_line(b, "said while away 4").await;
    click_conv(b, "#lobby").await;
    assert_in_place(b, offset, "#lobby opened again").await;
    assert_eq!(cue(b).await, "7 new messages below");
    click_conv(b, "#side").await;
    assert_eq!(cue(b).await, "", "#side has nothing new below");
    click_conv(b, "#lobby").await;
    assert_in_place(b, offset, "#lobby opened once more").await;

    // Another room joined while this one is scrolled up: its replay is inserted in its own log,
    // above the notice of the join (until the fortieth session's review every log was drawn
    // again at each line of it), and this one, opened again, is where it was read.
    let (mut otter, otter_out) = common::nc(server.addr(), "otter").await;
    say(&mut otter, "/join #other").await;
    for i in 1..=5 {
        say(&mut otter, &format!("in other {i}")).await;
    }
    say(&mut otter, "/who").await;
    wait_for!("otter in #other", otter_out.has("#other (1): otter"));
    type_line(b, "/join #other").await;
    wait_shown(b, "#other").await;
    wait_for!(
        "#other's replay",
        log_of(b, "#other")
            .await
            .iter()
            .any(|l| l.contains("in other 5"))
            .then_some(())
    );
    let lines = log_of(b, "#other").await;
    let at = |t: &str| {
        lines
            .iter()
            .position(|l| l.contains(t))
            .unwrap_or_else(|| panic!("{t}: {lines:#?}"))
    };
    assert!(
        at("in other 5") < at("you are in #other"),
        "inserted above the notice of the join: {lines:#?}"
    );
    click_conv(b, "#lobby").await;
    assert_in_place(b, offset, "another room's replay inserted").await;

    // The server restarted (its memory lost): the page comes back into #lobby, what was said
    // meanwhile and the notices of the drop below what is read, which stays where it is.
    server.stop().await;
    wait_for!(
        "the page to see the server gone",
        (conn_state(b).await == "reconnecting").then_some(())
    );
    let mut again = config;
    again.listen = vec![server.addr()];
    let restarted = timeout(STEP, natter_server::start(again))
        .await
        .expect("natter-server starts again in time")
        .expect("natter-server starts again on its port");
    let (mut nc, nc_out) = common::nc(server.addr(), "netcat").await;
    for i in 1..=3 {
        say(&mut nc, &format!("said after the restart {i}")).await;
    }
    say(&mut nc, "/who").await;
    wait_for!("nc's /who answer", nc_out.has("#lobby ("));
    wait_line(b, "said after the restart 3").await;
    wait_for!(
        "the page connected again",
        (conn_state(b).await == "connected").then_some(())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_in_place(b, offset, "back after a server restart").await;

    // The cue goes down to the newest lines, and goes.
    js(
        b,
        "document.getElementById('new-below').click(); return true;",
    )
    .await;
    wait_for!("the log at its bottom", at_bottom(b).await.then_some(()));
    wait_for!("the cue gone", cue(b).await.is_empty().then_some(()));

    // At the bottom, it follows new lines, shown or not.
    say(&mut nc, "live line 1").await;
    wait_line(b, "live line 1").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(at_bottom(b).await, "following the newest lines");
    click_conv(b, "#side").await;
    for i in 2..=30 {
        say(&mut nc, &format!("live line {i}")).await;
    }
    wait_line(b, "live line 30").await;
    click_conv(b, "#lobby").await;
    assert!(at_bottom(b).await, "left at the bottom, back at the bottom");
    assert_eq!(cue(b).await, "");

    // Said from a room scrolled up: down to where it is said.
    scroll_to(b, READ).await;
    assert!(!at_bottom(b).await);
    type_line(b, "hello from the top").await;
    wait_for!(
        "the line said, at the bottom",
        chat(b, "#lobby")
            .await
            .iter()
            .any(|(n, t)| n == "reader" && t == "hello from the top")
            .then_some(())
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        at_bottom(b).await,
        "a line said goes down to where it is said"
    );
    // So does one said here with `/msg #lobby` (until the forty-second session it stayed up).
    scroll_to(b, READ).await;
    assert!(!at_bottom(b).await);
    type_line(b, "/msg #lobby hello with /msg").await;
    wait_line(b, "hello with /msg").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        at_bottom(b).await,
        "a line said with /msg #lobby goes down to where it is said"
    );

    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
    timeout(STEP, restarted.shutdown())
        .await
        .expect("natter-server stops in time")
        .expect("natter-server stops");
}

/// Resized while scrolled up (the window narrowed or widened, so every line above wraps anew):
/// the line read stays at the top of the log. Until the forty-first session's review only a log at
/// its bottom was kept so: the scroll position in pixels stayed, and the reader's line moved by
/// however much the lines above it grew or shrank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_scrolled_up_keeps_its_place_through_a_resize() {
    let mut config = natter_server::ServerConfig::local_test();
    config.hub.history_on_join = OLD_LINES + 20;
    config.hub.flood_burst = 1_000;
    config.hub.flood_refill = natter_core::Millis(1);
    with_page_and_server_within(
        SCENARIO_LIMIT,
        "natter-reading-place-resize",
        config,
        resize_scenario,
    )
    .await;
}

async fn resize_scenario(browser: Browser, page: String, server: TestServer) {
    let b = &browser;
    let (mut nc, nc_out) = nc(server.addr(), "netcat").await;
    // Long lines, which wrap to more rows in a narrower log.
    let words = "and some more words to wrap ".repeat(12);
    for i in 1..=OLD_LINES {
        say(&mut nc, &format!("old line {i:03} {words}")).await;
    }
    say(&mut nc, "/who").await;
    wait_for!("nc's /who answer", nc_out.has("#lobby (1): netcat"));
    open_page_as(b, &page, Some("reader")).await;
    wait_line(b, &format!("old line {OLD_LINES:03}")).await;
    wait_line(b, "you are in #lobby").await;

    let offset = scroll_to(b, READ).await;
    assert!(offset.abs() <= SLACK, "{offset}");
    let height = || async {
        js(
            b,
            &format!(
                "return [...{}.querySelectorAll('.line')].find(e => e.textContent.includes({})) \
                 .getBoundingClientRect().height;",
                log_js("#lobby"),
                Json::from(READ)
            ),
        )
        .await
        .as_f64()
        .expect("the line read's height")
    };
    let wide = height().await;
    for (w, when) in [
        (900, "the window narrowed"),
        (1280, "the window widened again"),
    ] {
        timeout(STEP, b.set_window_size(w, 800))
            .await
            .expect("the browser resizes in time")
            .expect("the browser resizes");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!at_bottom(b).await, "{when}: still scrolled up");
        assert_in_place(b, offset, when).await;
        if w == 900 {
            assert!(
                height().await > wide,
                "the lines wrap to more rows: the test tests"
            );
        }
    }

    // From the keyboard, typing at the bottom (the log is not where the focus is): Page Up and
    // Page Down scroll it a screen (until the forty-first session's review they did nothing
    // there), Ctrl+End goes down to its newest lines; the input keeps the focus.
    use fantoccini::key::Key;
    let input = b
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("the input");
    let press = |keys: String| {
        let input = input.clone();
        async move {
            timeout(STEP, input.send_keys(&keys))
                .await
                .expect("keys pressed in time")
                .expect("press keys");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    };
    press(char::from(Key::PageUp).to_string()).await;
    let up = offset_of(b, READ)
        .await
        .expect("the line read is on screen");
    assert!(
        up > offset + 100.0,
        "Page Up scrolled up a screen: {offset} -> {up}"
    );
    press(char::from(Key::PageDown).to_string()).await;
    assert_in_place(b, offset, "Page Up then Page Down").await;
    press(Key::Control + &Key::End).await;
    wait_for!("the log at its bottom", at_bottom(b).await.then_some(()));
    let focused = js(b, "return document.activeElement.id;").await;
    assert_eq!(focused, "input", "the input keeps the focus");

    // The cue counts others' messages only: one's own said to the room from another
    // conversation (`/msg #lobby` typed in #side, which leaves #lobby where it is read) is not
    // news (until the forty-first session's review it was counted); netcat's is.
    let offset = scroll_to(b, READ).await;
    type_line(b, "/join #side").await;
    wait_shown(b, "#side").await;
    type_line(b, "/msg #lobby said by me with a command").await;
    wait_line(b, "said by me with a command").await;
    click_conv(b, "#lobby").await;
    assert_in_place(b, offset, "one's own line said from another room").await;
    assert_eq!(cue(b).await, "", "one's own line is not a new message");
    say(&mut nc, "said by netcat").await;
    wait_line(b, "said by netcat").await;
    wait_for!(
        "the cue counting netcat's line",
        (cue(b).await == "1 new message below").then_some(())
    );

    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
}
