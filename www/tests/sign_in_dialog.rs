//! The sign-in dialog, in headless Chromium against an in-process natter-server and
//! natter-bridge on 127.0.0.1:0: one request at a time (a double click, Enter then a click, or
//! Enter held down asks nothing twice, and the answer shown is the first one's); a guest
//! signing in or registering from its page does it where it stands, its rooms and what it saw
//! kept (while its server is away it asks nothing, and Escape goes back to the page); and a
//! guest's session that nobody will resume ends when its page goes, so its nick does not
//! linger in other people's member lists.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// Runs `scenario` (the browser, the page's address, the server's address) against an
/// in-process natter-server and natter-bridge, within [`SCENARIO_LIMIT`], and stops everything
/// whatever the scenario did.
async fn with_page<F, Fut>(tag: &str, scenario: F)
where
    F: FnOnce(Browser, String, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_page_config(tag, natter_server::ServerConfig::local_test(), scenario).await;
}

/// As [`with_page`], the server configured with `config`.
async fn with_page_config<F, Fut>(tag: &str, config: natter_server::ServerConfig, scenario: F)
where
    F: FnOnce(Browser, String, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_page_within(SCENARIO_LIMIT, tag, config, scenario).await;
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

async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, line: &str) {
    timeout(STEP, w.write_all(format!("{line}\r\n").as_bytes()))
        .await
        .expect("the server reads in time")
        .expect("write to the server");
}

/// Every line of every conversation the page shows, for a failure's message and for what must
/// never be said.
async fn every_line(b: &Browser) -> String {
    js(
        b,
        "return [...document.querySelectorAll('.log .line')].map(x => x.textContent).join('\\n');",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// What the dialog shows: `[open, busy, error, status]`.
async fn dialog_view(b: &Browser) -> serde_json::Value {
    js(
        b,
        "return [document.getElementById('nick-dialog').open, \
                 document.getElementById('nick-form').getAttribute('aria-busy'), \
                 document.getElementById('nick-error').textContent, \
                 document.getElementById('nick-status').textContent];",
    )
    .await
}

/// Waits until the dialog says `error`; panics with what the dialog and the page show.
async fn wait_dialog_error(b: &Browser, error: &str) {
    let deadline = std::time::Instant::now() + STEP;
    while text_of(b, "#nick-error").await != error {
        if std::time::Instant::now() > deadline {
            panic!(
                "the dialog did not say {error:?} within {STEP:?}: {} {}",
                dialog_view(b).await,
                every_line(b).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- one request at a time ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_submit_of_the_dialog_asks_once_and_shows_that_answer() {
    with_page("natter-dialog-double", double_submit_scenario).await;
}

async fn double_submit_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    timeout(STEP, b.goto(&page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let nick = nick_prompt(b).await;
    nick.clear().await.expect("clear the nick");
    nick.send_keys("dora").await.expect("type a nick");
    // A double click on Register: two clicks in one go, before any answer can come. The
    // first makes the dialog busy, so the second asks nothing (until the thirty-seventh
    // session it dropped the first registration and asked again: "taken", for the account
    // just made).
    let busy = js(
        b,
        "document.getElementById('password-input').value = 'correct horse battery'; \
         const r = document.getElementById('register'); \
         r.click(); \
         const busy = [r.disabled, document.getElementById('sign-in').disabled, \
                       document.getElementById('nick-go').disabled, \
                       document.getElementById('password-input').readOnly, \
                       document.getElementById('nick-form').getAttribute('aria-busy')]; \
         r.dispatchEvent(new MouseEvent('click', {bubbles: true})); \
         r.click(); \
         return busy;",
    )
    .await;
    assert_eq!(
        busy,
        serde_json::json!([true, true, true, true, "true"]),
        "asked: the dialog is busy"
    );
    wait_for!(
        "the page to be signed in as dora",
        (account_of(b).await.as_deref() == Some("dora") && !dialog_open(b).await).then_some(())
    );
    let lines = every_line(b).await;
    assert!(
        !lines.contains("could not register") && !lines.contains("taken"),
        "one registration, taken: {lines}"
    );
    assert_eq!(text_of(b, "#me-nick").await, "dora");

    // Signed out, and back in from the dialog with a wrong password: Enter, then a click on
    // Sign in while it waits. One refusal is shown, for what was typed; then the right
    // password, Enter twice: signed in once.
    js(b, "document.getElementById('sign-out').click();").await;
    wait_for!(
        "the page to be a guest",
        (account_of(b).await.is_none() && conn_state(b).await == "connected").then_some(())
    );
    js(b, "document.getElementById('sign-in-open').click();").await;
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    let nick = b
        .find(fantoccini::Locator::Id("nick-input"))
        .await
        .expect("the nick field");
    nick.clear().await.expect("clear the nick");
    nick.send_keys("dora").await.expect("type a nick");
    // Enter (the form's implicit submission: `requestSubmit`, with no button), then a click
    // on Sign in and Enter again, in one go: before any answer can come.
    let twice = |password: &str| {
        format!(
            "const f = document.getElementById('nick-form'); \
             document.getElementById('password-input').value = {}; \
             f.requestSubmit(); \
             const busy = f.getAttribute('aria-busy'); \
             document.getElementById('sign-in').click(); \
             f.requestSubmit(); \
             return busy;",
            serde_json::Value::from(password)
        )
    };
    assert_eq!(js(b, &twice("not the password")).await, "true");
    wait_dialog_error(b, "could not sign in: wrong account name or password").await;
    assert_eq!(
        dialog_view(b).await,
        serde_json::json!([
            true,
            "false",
            "could not sign in: wrong account name or password",
            ""
        ]),
        "refused: the dialog takes input again"
    );
    assert_eq!(account_of(b).await, None);
    assert_eq!(conn_state(b).await, "connected", "still the guest it was");
    assert_eq!(js(b, &twice("correct horse battery")).await, "true");
    wait_for!(
        "signed in as dora again",
        (account_of(b).await.as_deref() == Some("dora") && !dialog_open(b).await).then_some(())
    );
    let lines = every_line(b).await;
    assert_eq!(
        lines.matches("wrong account name or password").count(),
        1,
        "one refusal, for the one wrong password asked: {lines}"
    );
    assert_eq!(text_of(b, "#nick-error").await, "");
}

// --- Enter held down ---------------------------------------------------------------------------

/// A Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`), for what
/// WebDriver's own keys cannot do: a key held down, whose repeats the browser marks as such.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Enter pressed in what has the focus (`repeat`: one of the repeats of a key held down), as
/// the keyboard makes it: trusted, so the form's implicit submission follows. Returns once the
/// page has handled it.
async fn enter_down(b: &Browser, repeat: bool) {
    let params = serde_json::json!({
        "type": "keyDown", "key": "Enter", "code": "Enter",
        "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
        "text": "\r", "unmodifiedText": "\r", "autoRepeat": repeat,
    });
    timeout(
        STEP,
        b.issue_cmd(Cdp {
            cmd: "Input.dispatchKeyEvent",
            params,
        }),
    )
    .await
    .expect("the key in time")
    .expect("chromedriver presses Enter");
}

/// Enter let go.
async fn enter_up(b: &Browser) {
    let params = serde_json::json!({
        "type": "keyUp", "key": "Enter", "code": "Enter",
        "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
    });
    timeout(
        STEP,
        b.issue_cmd(Cdp {
            cmd: "Input.dispatchKeyEvent",
            params,
        }),
    )
    .await
    .expect("the key in time")
    .expect("chromedriver lets Enter go");
}

/// Types a wrong password in the dialog's password field and holds Enter down: the first
/// press asks, and once the refusal is shown (the password field emptied, focused) the key's
/// repeats must not ask again; with the field empty they would be the form's first button's,
/// "Join", and join as a guest, the dialog gone with the refusal it showed.
async fn hold_enter_on_a_wrong_password(b: &Browser) {
    let password = b
        .find(fantoccini::Locator::Id("password-input"))
        .await
        .expect("the password field");
    password
        .send_keys("not the password")
        .await
        .expect("type a password");
    enter_down(b, false).await;
    let deadline = std::time::Instant::now() + STEP;
    while !text_of(b, "#nick-error")
        .await
        .contains("wrong account name or password")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal in the dialog within {STEP:?}: {} {}",
            dialog_view(b).await,
            every_line(b).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        enter_down(b, true).await;
    }
    enter_up(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_held_down_asks_once_and_the_refusal_stays() {
    with_page("natter-dialog-held", held_enter_scenario).await;
}

async fn held_enter_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    // At the start: the dialog's own sign-in, refused.
    timeout(STEP, b.goto(&page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let nick = nick_prompt(b).await;
    nick.clear().await.expect("clear the nick");
    nick.send_keys("nobody").await.expect("type a nick");
    hold_enter_on_a_wrong_password(b).await;
    let view = dialog_view(b).await;
    assert_eq!(view[0], true, "the dialog stays: {view}");
    assert!(
        view[2]
            .as_str()
            .is_some_and(|e| e.contains("wrong account name or password")),
        "the refusal stays: {view}"
    );
    assert_eq!(view[1], "false", "it takes input again: {view}");
    assert_eq!(text_of(b, "#me-nick").await, "", "nobody joined as a guest");

    // From a guest's page: its sign-in where it stands, refused.
    click_join(b).await;
    wait_for!(
        "the page to join as a guest",
        (conn_state(b).await == "connected" && !dialog_open(b).await).then_some(())
    );
    js(b, "document.getElementById('sign-in-open').click();").await;
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    hold_enter_on_a_wrong_password(b).await;
    let view = dialog_view(b).await;
    assert_eq!(view[0], true, "the dialog stays: {view}");
    assert!(
        view[2]
            .as_str()
            .is_some_and(|e| e.contains("wrong account name or password")),
        "the refusal stays: {view}"
    );
    assert_eq!(view[1], "false", "it takes input again: {view}");
    assert_eq!(account_of(b).await, None);
    assert_eq!(conn_state(b).await, "connected", "still the guest it was");
    let lines = every_line(b).await;
    assert_eq!(
        lines.matches("wrong account name or password").count(),
        1,
        "asked once: {lines}"
    );
}

// --- a guest signing in keeps its rooms ---------------------------------------------------------

/// The rooms the page lists, sorted.
async fn rooms_listed(b: &Browser) -> Vec<String> {
    let v = js(
        b,
        "return [...document.querySelectorAll('#room-list button')].map(e => e.dataset.conv);",
    )
    .await;
    let mut rooms: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    rooms.sort();
    rooms
}

/// Opens the dialog from the guest's page, types `nick` and `password` and clicks `button`.
async fn ask_from_the_page(b: &Browser, nick: &str, password: &str, button: &str) {
    js(b, "document.getElementById('sign-in-open').click();").await;
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    let script = format!(
        "document.getElementById('nick-input').value = {}; \
         document.getElementById('password-input').value = {}; \
         document.getElementById('{button}').click();",
        serde_json::Value::from(nick),
        serde_json::Value::from(password)
    );
    js(b, &script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_signing_in_from_its_page_keeps_its_rooms() {
    // The terminal client is found (built, if it was not) before the scenario's time starts:
    // its build, minutes on a loaded machine, counted against the scenario's limit.
    workspace_bin("natter").await;
    with_page("natter-dialog-rooms", keeps_rooms_scenario).await;
}

async fn keeps_rooms_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    // rosa's account, made in the terminal client (which then goes: the account stays).
    let config_home = TempDir::new("natter-dialog-cli");
    let mut cli = Cli::start("rosa", addr, &config_home.0).await;
    cli.say("/register correct horse battery").await;
    wait_for!(
        "the CLI to register",
        cli.out.has("-- you are signed in as rosa")
    );
    cli.say("/quit").await;
    // Gone before the page signs in to the account, so that the sign-in finds it as said below
    // (always on, no device connected), not, on a loaded machine, with the quit still on its
    // way from a slow process.
    timeout(STEP, cli.child.wait())
        .await
        .expect("the CLI quits in time")
        .expect("wait for the CLI");

    // A guest, gus, in #lobby and #side with netcat, says something in #side.
    let (mut nc_w, nc_out) = nc(addr, "netcat").await;
    say(&mut nc_w, "/join #side").await;
    open_page_as(b, &page, Some("gus")).await;
    js(
        b,
        "const i = document.getElementById('input'); i.value = '/join #side'; \
         document.querySelector('#input-form button').click();",
    )
    .await;
    wait_for!(
        "gus in #side",
        (rooms_listed(b).await == ["#lobby", "#side"]).then_some(())
    );
    type_line(b, "said as a guest").await;
    wait_for!("netcat to hear gus", nc_out.has("<gus> said as a guest"));

    // A wrong password: said in the dialog; gus is still gus, in both rooms.
    ask_from_the_page(b, "rosa", "not the password", "sign-in").await;
    wait_dialog_error(b, "could not sign in: wrong account name or password").await;
    assert!(dialog_open(b).await);
    assert_eq!(conn_state(b).await, "connected");
    assert_eq!(text_of(b, "#me-nick").await, "gus");
    assert_eq!(rooms_listed(b).await, ["#lobby", "#side"]);

    // The right one: signed in where it stands (until the thirty-seventh session the guest
    // quit and the account started in #lobby alone).
    let script = "document.getElementById('password-input').value = 'correct horse battery'; \
                  document.getElementById('sign-in').click();";
    js(b, script).await;
    wait_for!(
        "the page to be signed in as rosa",
        (account_of(b).await.as_deref() == Some("rosa") && !dialog_open(b).await).then_some(())
    );
    assert_eq!(text_of(b, "#me-nick").await, "rosa");
    // rosa's account was there before (always on): the server moves the guest's connection to
    // it, leaving the guest's rooms and entering the account's, then the guest's (its own
    // messages, which the bridge may hand the page in more than one batch).
    wait_for!(
        "its rooms kept",
        (rooms_listed(b).await == ["#lobby", "#side"]).then_some(())
    );
    wait_for!(
        "what it saw in #side",
        log_of(b, "#side")
            .await
            .iter()
            .any(|l| l.contains("said as a guest"))
            .then_some(())
    );
    type_line(b, "said as rosa").await;
    wait_for!("netcat to hear rosa", nc_out.has("<rosa> said as rosa"));
    // netcat sees rosa's account take gus's place in #side (the account's user, always on,
    // was there before: the guest's connection becomes one of its devices).
    wait_for!(
        "netcat to see rosa in #side",
        nc_out.has("-- rosa joined #side")
    );

    // Signed out (a guest again, in its rooms), then registering under another nick from the
    // dialog: renamed, then registered, where it stands. A taken one is refused in the
    // dialog, and the guest stays as it was.
    js(b, "document.getElementById('sign-out').click();").await;
    wait_for!(
        "a guest again",
        (account_of(b).await.is_none()
            && conn_state(b).await == "connected"
            && rooms_listed(b).await == ["#lobby", "#side"])
        .then_some(())
    );
    let guest = text_of(b, "#me-nick").await;
    ask_from_the_page(b, "rosa", "another good password", "register").await;
    wait_for!(
        "the refusal in the dialog",
        text_of(b, "#nick-error")
            .await
            .contains("registered")
            .then_some(())
    );
    assert_eq!(
        dialog_view(b).await[1],
        "false",
        "refused: the dialog takes input again"
    );
    assert_eq!(text_of(b, "#me-nick").await, guest);
    js(
        b,
        "document.getElementById('nick-input').value = 'gustav'; \
         document.getElementById('password-input').value = 'another good password'; \
         document.getElementById('register').click();",
    )
    .await;
    wait_for!(
        "the page to be signed in as gustav",
        (account_of(b).await.as_deref() == Some("gustav") && !dialog_open(b).await).then_some(())
    );
    wait_for!(
        "its rooms kept",
        (rooms_listed(b).await == ["#lobby", "#side"]).then_some(())
    );
    let lines = every_line(b).await;
    assert!(
        !lines.contains("could not register"),
        "registered once: {lines}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_refused_after_its_rename_leaves_the_guest_as_it_was() {
    let mut config = natter_server::ServerConfig::local_test();
    config.hub.accounts.registration = natter_core::hub::Registration::Closed;
    with_page_config("natter-dialog-closed", config, closed_scenario).await;
}

async fn closed_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (_nc_w, nc_out) = nc(addr, "watcher").await;
    open_page_as(b, &page, Some("gus")).await;
    // Registering under another nick on a server that makes accounts only through its
    // operator: the guest is renamed for it, the registration is refused, and the guest goes
    // back to the nick it had (until the thirty-eighth session it stayed renamed, though the
    // dialog's refusal says the page goes on as the guest it was).
    ask_from_the_page(b, "gustav", "another good password", "register").await;
    wait_dialog_error(
        b,
        "could not register: registration is closed here: accounts are made by the operator",
    )
    .await;
    wait_for!(
        "the guest back as gus",
        (text_of(b, "#me-nick").await == "gus").then_some(())
    );
    wait_for!(
        "netcat to see gus come back",
        nc_out.has("gustav is now known as gus")
    );
    assert_eq!(account_of(b).await, None);
    assert!(dialog_open(b).await, "the refusal stays said");
}

// --- no ghost -----------------------------------------------------------------------------------

/// The members of `#lobby` as netcat's `/who` lists them now.
async fn lobby_who(w: &mut tokio::net::tcp::OwnedWriteHalf, out: &Captured) -> String {
    let before = out.count("#lobby (");
    say(w, "/who").await;
    wait_for!(
        "netcat's /who answer",
        out.lines()
            .iter()
            .filter(|l| l.contains("#lobby ("))
            .nth(before)
            .cloned()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_page_nobody_will_resume_quits_when_it_goes() {
    with_page("natter-dialog-ghost", ghost_scenario).await;
}

/// rosa, remembered; her key is revoked (signed out), and the page is given it back, as a
/// browser whose key was revoked elsewhere: the reload's sign-in with it is refused, and the
/// page is a guest only because of that. Such a page keeps no session for a reload (the reload
/// offers the form). Returns the guest's nick, once connected.
async fn a_guest_whose_key_was_refused(b: &Browser, page: &str) -> String {
    open_and_register_remembered(b, page, "rosa", "correct horse battery").await;
    let kept = js(b, "return window.natterDebug.keptSignIn();").await;
    js(b, "document.getElementById('sign-out').click();").await;
    wait_for!(
        "the page to be a guest",
        (account_of(b).await.is_none() && conn_state(b).await == "connected").then_some(())
    );
    let script = format!("localStorage.setItem('natter.signin', JSON.stringify({kept}));");
    js(b, &script).await;
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "the kept key to be refused",
        text_of(b, "#banner")
            .await
            .contains("remembered sign-in no longer works")
            .then_some(())
    );
    wait_for!(
        "the page connected as a guest",
        (conn_state(b).await == "connected").then_some(())
    );
    let guest = text_of(b, "#me-nick").await;
    assert_ne!(guest, "rosa");
    guest
}

async fn ghost_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (mut nc_w, nc_out) = nc(addr, "watcher").await;
    let guest = a_guest_whose_key_was_refused(b, &page).await;
    let who = lobby_who(&mut nc_w, &nc_out).await;
    assert!(who.contains(&guest), "{guest} in #lobby: {who}");

    // Reloaded: the form is offered, and the guest it was quits as the page goes (until the
    // thirty-seventh session it closed plainly, and the server held its session, the nick in
    // #lobby, for its 2-minute resume window). Within a step, far less than that window.
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "the dialog on the reloaded page",
        dialog_open(b).await.then_some(())
    );
    wait_for!(format!("{guest} gone from #lobby"), {
        let who = lobby_who(&mut nc_w, &nc_out).await;
        (!who.contains(&guest)).then_some(())
    });
    let heard = nc_out.lines();
    assert!(
        heard
            .iter()
            .any(|l| l.contains(&guest) && l.contains("left the page")),
        "netcat saw {guest} go: {heard:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_page_nobody_will_resume_quits_into_the_back_forward_cache() {
    with_page("natter-dialog-bfcache", bfcache_scenario).await;
}

async fn bfcache_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (mut nc_w, nc_out) = nc(addr, "watcher").await;
    let guest = a_guest_whose_key_was_refused(b, &page).await;
    let who = lobby_who(&mut nc_w, &nc_out).await;
    assert!(who.contains(&guest), "{guest} in #lobby: {who}");
    // Whether the browser kept the page in its back/forward cache as it went (the test's own
    // note, read on the next page of the same origin).
    js(
        b,
        "addEventListener('pagehide', (e) => \
           localStorage.setItem('test.persisted', String(e.persisted)));",
    )
    .await;
    // Navigated away (a link followed): the page goes into the back/forward cache, and comes
    // back from it only as a reload (`pageshow`), which offers the form. Nobody resumes the
    // guest's session, so it quits as the page goes, as on a reload or a close (until the
    // thirty-eighth session it closed plainly there, and the server held it, the nick in
    // #lobby, for its 2-minute resume window).
    let away = format!("{page}away.txt");
    timeout(STEP, b.goto(&away))
        .await
        .expect("navigate in time")
        .expect("navigate away");
    let persisted = js(b, "return localStorage.getItem('test.persisted');").await;
    assert_eq!(
        persisted, "true",
        "the page went into the back/forward cache (else this tests nothing new)"
    );
    wait_for!(format!("{guest} gone from #lobby"), {
        let who = lobby_who(&mut nc_w, &nc_out).await;
        (!who.contains(&guest)).then_some(())
    });
    let heard = nc_out.lines();
    assert!(
        heard
            .iter()
            .any(|l| l.contains(&guest) && l.contains("left the page")),
        "netcat saw {guest} go: {heard:#?}"
    );
}

// --- signing in while the server is away -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_asking_to_sign_in_while_the_server_is_away_is_told_and_goes_on() {
    with_page_and_server_within(
        SCENARIO_LIMIT,
        "natter-dialog-away",
        natter_server::ServerConfig::local_test(),
        away_scenario,
    )
    .await;
}

async fn away_scenario(browser: Browser, page: String, server: TestServer) {
    let b = &browser;
    open_page_as(b, &page, Some("gus")).await;
    // The server goes (the bridge stays): the page waits to reconnect.
    server.stop().await;
    wait_for!(
        "the page to wait to reconnect",
        (conn_state(b).await == "reconnecting").then_some(())
    );
    // Asked meanwhile, the sign-in is not taken: said in the dialog, which the person can
    // leave with Escape, back to the guest's page (until the thirty-eighth session it was asked
    // and the dialog stayed busy, its buttons disabled and Escape refused, until the server
    // came back: the page could not be used meanwhile).
    ask_from_the_page(b, "gus", "correct horse battery", "sign-in").await;
    let view = dialog_view(b).await;
    assert_eq!(view[0], true, "{view}");
    assert_ne!(
        view[1], "true",
        "nothing asked, nothing to wait for: {view}"
    );
    assert!(
        view[2]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the chat server")),
        "said why: {view}"
    );
    b.active_element()
        .await
        .expect("the focused element")
        .send_keys(&char::from(fantoccini::key::Key::Escape).to_string())
        .await
        .expect("press Escape");
    wait_for!(
        "the dialog to close on Escape",
        (!dialog_open(b).await).then_some(())
    );
    assert_eq!(text_of(b, "#me-nick").await, "gus");
    assert_eq!(account_of(b).await, None);
}

// --- a sign-in the connection dropped before its answer -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_the_connection_dropped_before_its_answer_stops_the_dialog_waiting() {
    with_page("natter-dialog-drop", drop_scenario).await;
}

async fn drop_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    // rosa's account, made on nc (which then goes: the account stays).
    let (mut rosa, rosa_out) = nc(addr, "rosa").await;
    say(&mut rosa, "/register correct horse battery").await;
    wait_for!("rosa to be signed in", rosa_out.has("signed in as rosa"));
    say(&mut rosa, "/quit").await;

    open_page_as(b, &page, Some("gus")).await;
    js(b, "document.getElementById('sign-in-open').click();").await;
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    // The socket goes as the sign-in is asked: the page's session sent it on a link that is
    // closing (nothing reaches the server), and no answer can come on it. Until the
    // fortieth session the dialog stayed busy until the server was reached again, then signed
    // in by itself, long after the person had given up on it.
    js(
        b,
        "document.getElementById('nick-input').value = 'rosa'; \
         document.getElementById('password-input').value = 'correct horse battery'; \
         window.natterDebug.dropSocket(); \
         document.getElementById('sign-in').click();",
    )
    .await;
    wait_dialog_error(
        b,
        "could not sign in: the connection dropped before the server answered; try again \
         once it is back",
    )
    .await;
    let view = dialog_view(b).await;
    assert_eq!(view[0], true, "the dialog stays, saying why: {view}");
    assert_ne!(view[1], "true", "not waiting: {view}");
    // Back on the server, the page is still the guest it was, and stays so.
    wait_for!(
        "the page to reconnect",
        (conn_state(b).await == "connected").then_some(())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(account_of(b).await, None, "{}", every_line(b).await);
    assert_eq!(text_of(b, "#me-nick").await, "gus");
    assert_eq!(dialog_view(b).await[0], true);
    // Asked again, it is answered.
    js(
        b,
        "document.getElementById('password-input').value = 'correct horse battery'; \
         document.getElementById('sign-in').click();",
    )
    .await;
    wait_for!(
        "the sign-in asked again to be taken",
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    wait_for!("the dialog to close", (!dialog_open(b).await).then_some(()));
}

// --- a registration the connection lost, said in the dialog's words -----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_registration_is_said_in_the_dialogs_words() {
    with_page(
        "natter-dialog-lost-registration",
        lost_registration_scenario,
    )
    .await;
}

/// The socket goes as a registration is asked: it never reaches the server. Back, the page
/// signs in to find out whether it went through (it did not), and the dialog says so with its
/// own button for what to do next: the session's words end "(/register again)", a command to
/// type at the bottom, where the dialog has nowhere to type one (until the forty-first
/// session it said that). Its Register button then does it.
async fn lost_registration_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("gus")).await;
    js(b, "document.getElementById('sign-in-open').click();").await;
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    js(
        b,
        "document.getElementById('nick-input').value = 'gus'; \
         document.getElementById('password-input').value = 'correct horse battery'; \
         window.natterDebug.dropSocket(); \
         document.getElementById('register').click();",
    )
    .await;
    wait_dialog_error(
        b,
        "your registration of gus did not go through: the connection dropped before the server \
         answered, and the server has no account gus with that password; press Register to \
         try again",
    )
    .await;
    let view = dialog_view(b).await;
    assert_eq!(view[0], true, "the dialog stays, saying why: {view}");
    assert_ne!(view[1], "true", "not waiting: {view}");
    assert_eq!(account_of(b).await, None);
    js(
        b,
        "document.getElementById('password-input').value = 'correct horse battery'; \
         document.getElementById('register').click();",
    )
    .await;
    wait_for!(
        "the registration asked again to be taken",
        (account_of(b).await.as_deref() == Some("gus")).then_some(())
    );
    wait_for!("the dialog to close", (!dialog_open(b).await).then_some(()));
}
