//! The page's clocks, its Tab key and its tabs, in headless Chromium against an in-process
//! natter-server and natter-bridge on 127.0.0.1:0: the keepalive and reconnects keep their
//! schedule when the computer's clock is set back or forward (the page times them on the
//! monotonic clock), and a link that died in a sleep is checked at once on waking, while the
//! times shown follow the wall clock; Tab completes commands, rooms
//! and nicks as the terminal client does; and two tabs of one browser share its remembered
//! sign-in side by side (a sign-out in one is the browser's, and each forgets only its own key).
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use natter_core::wire::{ClientMsg, decode_payload};
use serde_json::Value as Json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// An hour, in milliseconds: how far the wall clock is stepped.
const HOUR: i64 = 3_600_000;

/// Steps the page's wall clock (`Date.now()`, as a clock set back or forward does) to the real
/// one plus `step_ms`, and records from then on what the page sends on its WebSocket (its time
/// on the monotonic clock, and its bytes), for [`pings_sent`].
async fn step_wall_clock(b: &Browser, step_ms: i64) {
    js(
        b,
        &format!(
            "if (!window.clockTest) {{
               const real = Date.now.bind(Date);
               window.clockTest = {{ step: 0, sends: [] }};
               Date.now = () => real() + window.clockTest.step;
               const send = WebSocket.prototype.send;
               WebSocket.prototype.send = function (data) {{
                 if (window.clockTest.sends.length < 1000) {{
                   window.clockTest.sends.push([performance.now(), Array.from(new Uint8Array(data))]);
                 }}
                 return send.call(this, data);
               }};
             }}
             window.clockTest.step = {step_ms};"
        ),
    )
    .await;
}

/// The pings (the keepalive) the page has sent since [`step_wall_clock`] first ran: when, on
/// the page's monotonic clock (`performance.now()`).
async fn pings_sent(b: &Browser) -> Vec<f64> {
    let sends = js(b, "return window.clockTest ? window.clockTest.sends : [];").await;
    sends
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|s| {
            let bytes: Vec<u8> = s[1]
                .as_array()?
                .iter()
                .filter_map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                .collect();
            let msg: ClientMsg = decode_payload(&bytes).ok()?;
            matches!(msg, ClientMsg::Ping { .. }).then(|| s[0].as_f64().unwrap_or(0.0))
        })
        .collect()
}

async fn perf_now(b: &Browser) -> f64 {
    js(b, "return performance.now();")
        .await
        .as_f64()
        .expect("a number")
}

/// The wall-clock stamp (`data-at`) of the last line of `conv`'s log.
async fn last_stamp(b: &Browser, conv: &str) -> Option<i64> {
    let script = format!(
        "const l = [...document.querySelectorAll('.log[data-conv=\"{conv}\"] .line')].pop(); \
         return l ? Number(l.dataset.at) : null;"
    );
    js(b, &script).await.as_i64()
}

async fn real_wall_clock(b: &Browser) -> i64 {
    js(b, "return performance.timeOrigin + performance.now();")
        .await
        .as_f64()
        .expect("a number") as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_and_reconnect_keep_their_schedule_when_the_wall_clock_steps() {
    with_page_within(
        SCENARIO_LIMIT,
        "natter-clocks",
        natter_server::ServerConfig::local_test(),
        clocks_scenario,
    )
    .await;
}

async fn clocks_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("tick")).await;
    wait_for!(
        "#lobby on the page",
        (!log_of(b, "#lobby").await.is_empty()).then_some(())
    );

    // Set an hour forward just after the welcome: nothing is due before the keepalive's
    // twenty seconds of silence from the server. Anything that wakes the page (here a click
    // on its room) must not take the hour for silence: until the fortieth session its timer
    // was armed at once and the keepalive pinged straight away, and went on pinging on the
    // wall clock. The page cannot tell a clock set forward from a sleep (the wall clock moved,
    // the monotonic one did not): since the forty-second session it checks the link once, one
    // ping, whose answer the keepalive then counts its silence from.
    step_wall_clock(b, HOUR).await;
    let forward = perf_now(b).await;
    js(
        b,
        r##"document.querySelector('#room-list button[data-conv="#lobby"]').click();"##,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let early: Vec<f64> = pings_sent(b)
        .await
        .into_iter()
        .filter(|&t| t - forward < 6_000.0)
        .collect();
    assert!(
        early.len() <= 1,
        "a clock set forward fired the keepalive early: pings {early:?} after the step at {forward}"
    );

    // Set back an hour (from the real time): the keepalive's timer was armed before, and its
    // ping still goes after the server's twenty seconds of silence, not an hour later (until
    // the fortieth session the page woke on time, found the deadline an hour away, and slept
    // again).
    step_wall_clock(b, -HOUR).await;
    let back = perf_now(b).await;
    let started = Instant::now();
    let ping = wait_for!(
        "the keepalive's ping after the clock was set back",
        Duration::from_secs(35),
        pings_sent(b).await.into_iter().find(|&t| t > back)
    );
    assert!(
        ping - back < 25_000.0,
        "the ping came {} ms after the clock was set back ({:?} in the test's time)",
        ping - back,
        started.elapsed()
    );
    assert_eq!(conn_state(b).await, "connected");

    // Lines made here bear the wall clock, stepped or not: the times shown are the clock's.
    type_line(b, "/help").await;
    let real = real_wall_clock(b).await;
    let shown = wait_for!(
        "/help's lines",
        last_stamp(b, "#lobby")
            .await
            .filter(|&at| at < real - HOUR / 2)
    );
    let expected = real_wall_clock(b).await - HOUR;
    assert!(
        (shown - expected).abs() < 60_000,
        "a line made here is stamped {shown}, the wall clock reads {expected}"
    );

    // The connection drops; once its reconnect is scheduled (within a quarter of a second,
    // the first step of the backoff), the clock is set back another hour: it still reconnects
    // on time. (Until the fortieth session it waited the hour.)
    let waited = js(
        b,
        &format!(
            "window.natterDebug.dropSocket();
             return new Promise((done) => {{
               const from = performance.now();
               const poll = setInterval(() => {{
                 if (window.natterDebug.state() === 'reconnecting') {{
                   clearInterval(poll);
                   window.clockTest.step = {};
                   done(performance.now() - from);
                 }} else if (performance.now() - from > 10000) {{
                   clearInterval(poll);
                   done(null);
                 }}
               }}, 1);
             }});",
            -2 * HOUR
        ),
    )
    .await;
    assert!(
        waited.is_number(),
        "the page did not wait to reconnect: {waited}"
    );
    let dropped = Instant::now();
    wait_for!(
        "the page to reconnect after the clock was set back",
        Duration::from_secs(10),
        (conn_state(b).await == "connected").then_some(())
    );
    assert!(
        dropped.elapsed() < Duration::from_secs(10),
        "{:?}",
        dropped.elapsed()
    );
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
}

/// A sleep: the monotonic clock, and the keepalive's deadlines on it, stop (Chromium on Linux
/// and macOS), the wall clock goes on, and the link may die meanwhile while still looking open.
/// On waking the page checks it at once: a ping within the wake check's tick, and a dead link
/// given up within that ping's few seconds (4 s). Until the forty-second session it was found at
/// the next keepalive, after twenty seconds of silence counted from the last thing heard
/// before the sleep, then the timeout: up to 35 s; until the forty-third, within the
/// keepalive's timeout (15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_died_in_a_sleep_is_checked_at_once_on_waking() {
    with_page_within(
        SCENARIO_LIMIT,
        "natter-wake",
        natter_server::ServerConfig::local_test(),
        wake_scenario,
    )
    .await;
}

async fn wake_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("sleepy")).await;
    wait_for!(
        "#lobby on the page",
        (!log_of(b, "#lobby").await.is_empty()).then_some(())
    );
    step_wall_clock(b, 0).await;
    // Something heard just before the sleep (the echo of a line): the keepalive would wait
    // twenty seconds of silence from it.
    type_line(b, "good night").await;
    wait_for!(
        "the line's echo",
        chat(b, "#lobby")
            .await
            .iter()
            .any(|(n, t)| n == "sleepy" && t == "good night")
            .then_some(())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The link dies in the sleep, and still looks open: nothing more is heard on it.
    assert_eq!(js(b, "return window.natterDebug.deafen();").await, true);
    // The wake: an hour on the wall clock, none on the monotonic one (it stopped).
    step_wall_clock(b, HOUR).await;
    let woke = perf_now(b).await;
    let started = Instant::now();
    let ping = wait_for!(
        "a ping on waking",
        Duration::from_secs(10),
        pings_sent(b).await.into_iter().find(|&t| t > woke)
    );
    assert!(
        ping - woke < 4_000.0,
        "the link was checked {} ms after the wake",
        ping - woke
    );
    wait_for!(
        "the dead link given up",
        Duration::from_secs(30),
        (conn_state(b).await != "connected").then_some(())
    );
    // The tick (2 s) and the wake ping's 4 s, with room for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the dead link was found {:?} after the wake",
        started.elapsed()
    );
    wait_for!(
        "connected again",
        Duration::from_secs(20),
        (conn_state(b).await == "connected").then_some(())
    );
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
}

/// The input's text and the focused element's id.
async fn input_state(b: &Browser) -> Json {
    js(
        b,
        "return [document.getElementById('input').value, document.activeElement.id];",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_completes_commands_rooms_and_nicks_as_the_terminal_does() {
    with_page_within(
        SCENARIO_LIMIT,
        "natter-tab",
        natter_server::ServerConfig::local_test(),
        tab_scenario,
    )
    .await;
}

async fn tab_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (_clint, _clint_out) = nc(addr, "clint").await;
    open_page_as(b, &page, Some("tabby")).await;
    type_line(b, "/join #rust").await;
    type_line(b, "/join #ruby").await;
    wait_for!(
        "#rust and #ruby on the page",
        (!text_of(b, r##"#room-list button[data-conv="#ruby"]"##)
            .await
            .is_empty()
            && !text_of(b, r##"#room-list button[data-conv="#rust"]"##)
                .await
                .is_empty())
        .then_some(())
    );
    js(
        b,
        r##"document.querySelector('#room-list button[data-conv="#lobby"]').click();"##,
    )
    .await;
    wait_for!(
        "clint among #lobby's members",
        (text_of(b, "#member-list").await.contains("clint")).then_some(())
    );
    let input = b
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("the input");
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    let press = |keys: String| {
        let input = input.clone();
        async move { input.send_keys(&keys).await.expect("typing") }
    };

    // A command at the start of the line, then a room we are in, each taking a space; Tab
    // again: the next match. (Until the fortieth session the page completed nicks only: `/jo`
    // and Tab stayed `/jo`.)
    press(format!("/jo{tab}")).await;
    assert_eq!(input_state(b).await, serde_json::json!(["/join ", "input"]));
    press(format!("#ru{tab}")).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["/join #rust ", "input"])
    );
    press(tab.clone()).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["/join #ruby ", "input"])
    );
    input.clear().await.expect("clear the input");
    // The page's own commands as well as the session's, its own first (as in the terminal).
    press(format!("/cl{tab}")).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["/clear ", "input"])
    );
    press(tab.clone()).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["/close ", "input"])
    );
    input.clear().await.expect("clear the input");
    // A nick starting the line is addressed (`: `), elsewhere it takes a space.
    press(format!("cl{tab}")).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["clint: ", "input"])
    );
    press(format!("see /jo{tab}")).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["clint: see /jo", "input"]),
        "a command only at the start: in a message, nothing completes, and the input keeps the focus"
    );
    input.clear().await.expect("clear the input");
    press(format!("hi cl{tab}")).await;
    assert_eq!(
        input_state(b).await,
        serde_json::json!(["hi clint ", "input"])
    );
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
}

/// What a tab shows: `[state, account, nick, dialog open, banner]`.
async fn tab_view(b: &Browser) -> Json {
    js(
        b,
        "const d = window.natterDebug; \
         const banner = document.getElementById('banner'); \
         return [d ? d.state() : 'no page', d ? d.account() : null, \
                 document.getElementById('me-nick').textContent, \
                 document.getElementById('nick-dialog').open, \
                 banner.hidden ? '' : banner.textContent];",
    )
    .await
}

/// The sign-in this browser keeps ("Remember me"): its account, if any.
async fn saved_account(b: &Browser) -> Option<String> {
    js(
        b,
        "const k = window.natterDebug.keptSignIn(); return k ? k.account : null;",
    )
    .await
    .as_str()
    .map(str::to_owned)
}

/// Signs in or registers (`button`) from a guest's page, "Remember me" ticked.
async fn sign_in_remembered(b: &Browser, nick: &str, password: &str, button: &str) {
    js(b, "document.getElementById('sign-in-open').click();").await;
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    let script = format!(
        "document.getElementById('nick-input').value = {}; \
         document.getElementById('password-input').value = {}; \
         document.getElementById('remember-input').checked = true; \
         document.getElementById('{button}').click();",
        Json::from(nick),
        Json::from(password)
    );
    js(b, &script).await;
    wait_for!(
        format!("{nick} signed in"),
        (tab_view(b).await[1] == nick && !dialog_open(b).await).then_some(())
    );
}

async fn switch(b: &Browser, tab: &fantoccini::wd::WindowHandle) {
    timeout(STEP, b.switch_to_window(tab.clone()))
        .await
        .expect("switch in time")
        .expect("switch tabs");
}

/// A new tab of the same browser (its profile: localStorage shared), the page opened in it.
async fn open_tab(b: &Browser, page: &str) -> fantoccini::wd::WindowHandle {
    let tab = timeout(STEP, b.new_window(true))
        .await
        .expect("a new tab in time")
        .expect("a new tab")
        .handle;
    switch(b, &tab).await;
    timeout(STEP, b.goto(page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    tab
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_of_one_browser_share_its_remembered_sign_in_side_by_side() {
    with_page_within(
        SCENARIO_LIMIT,
        "natter-two-tabs",
        natter_server::ServerConfig::local_test(),
        two_tabs_scenario,
    )
    .await;
}

async fn two_tabs_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (_watcher, watched) = nc(addr, "watcher").await;
    open_and_register_remembered(b, &page, "rosa", "correct horse battery").await;
    let first = b.window().await.expect("the first tab");

    // A second tab signs in with the sign-in this browser keeps, no questions asked, and the
    // two work side by side: what one says, the other shows, and neither is signed out.
    let second = open_tab(b, &page).await;
    wait_for!(
        "the second tab signed in as rosa",
        (tab_view(b).await == serde_json::json!(["connected", "rosa", "rosa", false, ""]))
            .then_some(())
    );
    type_line(b, "hello from the second tab").await;
    switch(b, &first).await;
    wait_for!(
        "the first tab to show the second's line",
        page_said(b)
            .await
            .contains(&"<rosa> hello from the second tab".to_owned())
            .then_some(())
    );
    type_line(b, "and from the first").await;
    wait_for!(
        "watcher to hear both",
        watched.has("<rosa> and from the first")
    );
    assert_eq!(
        tab_view(b).await,
        serde_json::json!(["connected", "rosa", "rosa", false, ""])
    );

    // Signing out in one tab signs this browser out: the other tab, signed in with the same
    // remembered key (which the server has just forgotten), signs out too, rather than go on
    // until its next reconnect is refused and it says that its remembered sign-in no longer
    // works (so until the fortieth session).
    switch(b, &second).await;
    js(b, "document.getElementById('sign-out').click();").await;
    wait_for!(
        "the second tab to sign out",
        (tab_view(b).await[1].is_null()).then_some(())
    );
    switch(b, &first).await;
    wait_for!(
        "the first tab to sign out too",
        (tab_view(b).await[1].is_null() && conn_state(b).await == "connected").then_some(())
    );
    js(b, "window.natterDebug.dropSocket();").await;
    wait_for!(
        "the first tab back, as a guest",
        (conn_state(b).await == "connected").then_some(())
    );
    let view = tab_view(b).await;
    assert_eq!(view[1], Json::Null, "{view}");
    assert_eq!(view[4], "", "no banner: {view}");
    assert_eq!(saved_account(b).await, None);

    // Each tab keeps and forgets its own: the first signs in again, remembered; the second
    // registers tess, remembered (the browser now keeps tess's sign-in). The first signing
    // out forgets its own sign-in, not the one the browser keeps now (until the fortieth
    // session it forgot whichever the browser kept).
    sign_in_remembered(b, "rosa", "correct horse battery", "sign-in").await;
    assert_eq!(saved_account(b).await.as_deref(), Some("rosa"));
    switch(b, &second).await;
    sign_in_remembered(b, "tess", "battery staple horse", "register").await;
    assert_eq!(saved_account(b).await.as_deref(), Some("tess"));
    switch(b, &first).await;
    assert_eq!(
        tab_view(b).await[1],
        "rosa",
        "the first tab goes on as rosa"
    );
    js(b, "document.getElementById('sign-out').click();").await;
    wait_for!(
        "the first tab to sign out",
        (tab_view(b).await[1].is_null()).then_some(())
    );
    assert_eq!(saved_account(b).await.as_deref(), Some("tess"));
    switch(b, &second).await;
    assert_eq!(
        tab_view(b).await[1],
        "tess",
        "another account's tab is not signed out"
    );

    // A tab opened later signs in with what the browser keeps.
    open_tab(b, &page).await;
    wait_for!(
        "the third tab signed in as tess",
        (tab_view(b).await[1] == "tess").then_some(())
    );
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_in_one_tab_signs_no_other_tab_out() {
    with_page_within(
        SCENARIO_LIMIT,
        "natter-tabs-password",
        natter_server::ServerConfig::local_test(),
        tabs_password_scenario,
    )
    .await;
}

/// Two tabs signed in with the browser's remembered key; `/password` typed in one. While the
/// change waits for the server's answer the session holds no key (it lends it to the change):
/// until the fortieth session's review the page took that for a sign-out and forgot the
/// browser's key, and the other tab, seeing it go, signed out, revoking the key on the
/// server. A change refused (the old password wrong) then left the browser keeping a key that
/// opened nothing, and the other tab signed out by a change that was not its key's.
async fn tabs_password_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_and_register_remembered(b, &page, "rosa", "correct horse battery").await;
    let first = b.window().await.expect("the first tab");
    let second = open_tab(b, &page).await;
    wait_for!(
        "the second tab signed in as rosa",
        (tab_view(b).await == serde_json::json!(["connected", "rosa", "rosa", false, ""]))
            .then_some(())
    );
    switch(b, &first).await;
    type_line(b, "/password wrong-old-password new-password-9").await;
    wait_for!(
        "the refusal",
        js(
            b,
            "return [...document.querySelectorAll('.line')].some(l => \
             l.textContent.includes('the old password is wrong'));"
        )
        .await
        .as_bool()
        .unwrap_or(false)
        .then_some(())
    );
    assert_eq!(tab_view(b).await[1], "rosa");
    assert_eq!(saved_account(b).await.as_deref(), Some("rosa"));
    switch(b, &second).await;
    // Give a storage event time to arrive (it comes within milliseconds when it does).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        tab_view(b).await[1],
        "rosa",
        "the other tab is not signed out by a refused password change"
    );
    // A `/login` to another account typed there, refused (`/logout first`), lets nothing go
    // either (the session holds that sign-in's password in place of the key meanwhile).
    switch(b, &first).await;
    type_line(b, "/login tess battery staple horse").await;
    wait_for!(
        "the answer to the /login",
        js(
            b,
            "return [...document.querySelectorAll('.line')].some(l => \
             l.textContent.includes('/logout first'));"
        )
        .await
        .as_bool()
        .unwrap_or(false)
        .then_some(())
    );
    assert_eq!(saved_account(b).await.as_deref(), Some("rosa"));
    switch(b, &second).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        tab_view(b).await[1],
        "rosa",
        "the other tab is not signed out by a /login refused"
    );
    // The browser's key still opens the account: a tab opened now signs in with it.
    open_tab(b, &page).await;
    wait_for!(
        "a third tab signed in by the kept key",
        (tab_view(b).await[1] == "rosa").then_some(())
    );
    let view = tab_view(b).await;
    assert!(
        !view[4].as_str().unwrap_or("").contains("no longer works"),
        "{view}"
    );
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, Json::Array(vec![]), "no script errors");
}
