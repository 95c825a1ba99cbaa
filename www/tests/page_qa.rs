//! The page as its users use it, in headless Chromium against an in-process natter-server and
//! natter-bridge on 127.0.0.1:0: what goes wrong is said in words (a line too long, a room that
//! does not exist, a moderated room, said on joining it, the server's flood control), never
//! silently dropped; the account commands typed at the bottom (`/register`, `/login`,
//! `/logout`, `/password`) do what they do on nc, with the page saying what became of a
//! remembered sign-in; a guest's reload resumes its session, past the resume window it
//! joins its rooms again (a `+k` one with the key the tab kept), and its tab closed for good
//! quits at once (through the bridge's short grace); a search hit opens its room at the line;
//! `/history` at a room's beginning shows that it is; web addresses are safe links; a page left
//! open overnight says its day marks again.
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

/// [`with_page_within`] [`SCENARIO_LIMIT`].
async fn with_page<F, Fut>(tag: &str, config: natter_server::ServerConfig, scenario: F)
where
    F: FnOnce(Browser, String, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_page_within(SCENARIO_LIMIT, tag, config, scenario).await;
}

/// Waits until a line of `conv`'s log contains every one of `words`; returns it. Panics with
/// every log of the page after [`STEP`].
async fn wait_said(b: &Browser, conv: &str, words: &[&str]) -> String {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        if let Some(l) = log_of(b, conv)
            .await
            .into_iter()
            .find(|l| words.iter().all(|w| l.contains(w)))
        {
            return l;
        }
        if std::time::Instant::now() > deadline {
            let all = js(
                b,
                "return [...document.querySelectorAll('.log')].map(l => [l.dataset.conv, \
                 [...l.querySelectorAll('.line')].map(x => x.textContent)]);",
            )
            .await;
            panic!("no line in {conv} with {words:?} within {STEP:?}; the page: {all:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `line` from the input as if typed (set at once: typing 2000 characters one key at a
/// time takes the driver long).
async fn send_line(b: &Browser, line: &str) {
    let script = format!(
        "const i = document.getElementById('input'); i.value = {}; \
         document.querySelector('#input-form button').click();",
        serde_json::Value::from(line)
    );
    js(b, &script).await;
}

async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, line: &str) {
    timeout(STEP, w.write_all(format!("{line}\r\n").as_bytes()))
        .await
        .expect("the server reads in time")
        .expect("write to the server");
}

// --- errors in words ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_done_is_said_in_words() {
    let mut config = natter_server::ServerConfig::local_test();
    // A strict server: a burst of 3, then a line every 300 ms. The page paces itself to what
    // the server's welcome says, so a quick run of lines waits (shown as waiting) rather than
    // being refused, and every one of them arrives once.
    config.hub.flood_burst = 3;
    config.hub.flood_refill = natter_core::Millis(300);
    with_page("natter-qa-errors", config, errors_scenario).await;
}

async fn errors_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("pat")).await;
    let (mut fern, fern_out) = nc(addr, "fern").await;
    let limit = natter_core::limits::MAX_TEXT_BYTES;

    // A line too long, typed (or pasted): refused with its length and the limit, not cut to
    // fit and sent (as an input's maxlength would, without a word).
    type_line(b, &"y".repeat(limit + 100)).await;
    wait_said(
        b,
        "#lobby",
        &[&format!("{} bytes long; the limit is {limit}", limit + 100)],
    )
    .await;
    // The same from a script setting the input.
    send_line(b, &"x".repeat(limit + 1)).await;
    wait_said(
        b,
        "#lobby",
        &[&format!("{} bytes long; the limit is {limit}", limit + 1)],
    )
    .await;
    send_line(b, "after the long ones").await;
    wait_for!(
        "fern to hear the next line",
        fern_out.has("<pat> after the long ones")
    );
    assert!(
        !fern_out
            .lines()
            .iter()
            .any(|l| l.contains("yyyyyyyy") || l.contains("xxxxxxxx")),
        "nothing of a line too long was sent: {:?}",
        fern_out.lines().iter().map(String::len).collect::<Vec<_>>()
    );

    // Rooms that do not exist, and a person who is not there.
    send_line(b, "/topic #nowhere").await;
    wait_said(b, "#lobby", &["there is no room #nowhere"]).await;
    send_line(b, "/part #nowhere").await;
    wait_said(
        b,
        "#lobby",
        &["could not leave #nowhere", "not in #nowhere"],
    )
    .await;
    send_line(b, "/history #nowhere").await;
    wait_said(b, "#lobby", &["older lines of #nowhere", "not in #nowhere"]).await;
    // A search of a room we are not in, from the search box: said in the results panel,
    // where the person is looking.
    let script = "document.getElementById('search-input').value = '#nowhere hello'; \
                  document.getElementById('search-form').requestSubmit();";
    js(b, script).await;
    wait_for!("the refusal in the search panel", {
        let panel = js(
            b,
            "const p = document.getElementById('search-panel'); \
             return p.hidden ? '' : document.getElementById('search-title').textContent;",
        )
        .await;
        panel
            .as_str()
            .filter(|t| t.contains("you are not in #nowhere"))
            .map(str::to_owned)
    });
    js(b, "document.getElementById('search-close').click();").await;
    send_line(b, "/msg nobody hi").await;
    wait_said(b, "#lobby", &["not delivered", "nobody is called nobody"]).await;

    // A muted room: fern founds #hush and sets +m; pat joins, speaks, and is told why not.
    say(&mut fern, "/register correct horse battery").await;
    wait_for!("fern to be signed in", fern_out.has("signed in as fern"));
    for line in ["/join #hush", "/register #hush", "/mode #hush +m"] {
        say(&mut fern, line).await;
    }
    wait_for!("#hush to be +m", fern_out.has("set #hush +m"));
    send_line(b, "/join #hush").await;
    wait_said(b, "#hush", &["you are in #hush"]).await;
    // Told on joining, before trying to speak: a notice in the room, not an error.
    let told = wait_said(b, "#hush", &["#hush is moderated", "not speak there"]).await;
    let kind = js(
        b,
        "return [...document.querySelectorAll('.log[data-conv=\"#hush\"] .line')] \
           .find(l => l.textContent.includes('not speak there')).className;",
    )
    .await;
    let kind = kind.as_str().unwrap_or_default();
    assert!(
        kind.contains("notice") && !kind.contains("error"),
        "{told:?} is shown as {kind:?}"
    );
    send_line(b, "may I speak").await;
    wait_said(
        b,
        "#hush",
        &["may I speak", "not delivered: #hush is moderated"],
    )
    .await;

    // A quick run of lines on the strict server: each arrives once, in order.
    click_conv(b, "#lobby").await;
    for i in 0..12 {
        send_line(b, &format!("quick {i}")).await;
    }
    wait_for!("fern to hear the last", fern_out.has("<pat> quick 11"));
    let heard: Vec<String> = fern_out
        .lines()
        .into_iter()
        .filter(|l| l.contains("<pat> quick "))
        .collect();
    let want: Vec<String> = (0..12)
        .map(|i| format!("[#lobby] <pat> quick {i}"))
        .collect();
    assert_eq!(heard, want, "each once, in order");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = log_of(b, "#lobby").await;
    assert!(
        !log.iter()
            .any(|l| l.contains("quick") && l.contains("not delivered")),
        "none refused: {log:#?}"
    );
}

/// Opens a conversation from the sidebar.
async fn click_conv(b: &Browser, key: &str) {
    let script = format!("document.querySelector('button[data-conv=\"{key}\"]').click();");
    js(b, &script).await;
}

// --- account commands typed at the bottom ------------------------------------------------------

async fn account_of(b: &Browser) -> Option<String> {
    js(
        b,
        "return window.natterDebug ? window.natterDebug.account() : null;",
    )
    .await
    .as_str()
    .map(str::to_owned)
}

async fn kept_sign_in(b: &Browser) -> serde_json::Value {
    js(
        b,
        "return window.natterDebug ? window.natterDebug.keptSignIn() : null;",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_account_commands_do_what_they_say() {
    with_page(
        "natter-qa-accounts",
        natter_server::ServerConfig::local_test(),
        accounts_scenario,
    )
    .await;
}

/// Registered and remembered in the dialog, then `/logout` typed: the page is a guest, the
/// key is forgotten, and nothing says the remembered sign-in "no longer works" (it was let
/// go) or that the connection was lost (the server closes it as asked). `/login` with a wrong password says so and stays a guest; with the right one it signs
/// in (not remembered: a reload asks again, the nick filled in).
async fn accounts_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_and_register_remembered(b, &page, "rosa", "correct horse battery").await;
    wait_for!(
        "the device key to be kept",
        kept_sign_in(b)
            .await
            .get("key")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    );
    assert_eq!(account_of(b).await.as_deref(), Some("rosa"));

    // Everything the banner says from here on, however briefly.
    js(
        b,
        "const e = document.getElementById('banner'); window.bannerSaid = []; \
         new MutationObserver(() => { if (!e.hidden) window.bannerSaid.push(e.textContent); }) \
           .observe(e, { childList: true, subtree: true, attributes: true, characterData: true });",
    )
    .await;
    send_line(b, "/logout").await;
    wait_said(b, "#lobby", &["you signed out"]).await;
    wait_for!(
        "the page to be back as a guest",
        (conn_state(b).await == "connected" && account_of(b).await.is_none()).then_some(())
    );
    assert!(kept_sign_in(b).await.is_null(), "the key is forgotten");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let said = js(b, "return window.bannerSaid;").await;
    assert!(
        !said.to_string().contains("no longer works"),
        "signing out is not a refused sign-in: {said:#}"
    );
    // The close a sign-out asks for is not a lost connection: said once, back at once.
    assert!(
        !said.to_string().contains("Connection lost"),
        "signing out loses nothing: {said:#}"
    );
    let log = log_of(b, "#lobby").await;
    assert!(
        !log.iter().any(|l| l.contains("connection lost")),
        "signing out loses nothing: {log:#?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.contains("you signed out")).count(),
        1,
        "{log:#?}"
    );

    send_line(b, "/login rosa not the password").await;
    wait_said(b, "#lobby", &["wrong account name or password"]).await;
    assert_eq!(account_of(b).await, None);
    assert_eq!(conn_state(b).await, "connected", "still here, as a guest");

    send_line(b, "/login rosa correct horse battery").await;
    wait_for!(
        "signed in as rosa",
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    assert_eq!(text_of(b, "#me-nick").await, "rosa");
    assert!(
        kept_sign_in(b).await.is_null(),
        "a typed /login is not remembered"
    );
    // Nor kept for Up: the line before the two `/login`s comes back, never a password (until
    // the thirty-first session Up on the page showed the password typed last).
    let input = b
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("the input");
    input
        .send_keys(&char::from(fantoccini::key::Key::Up).to_string())
        .await
        .expect("press Up");
    let recalled = js(b, "return document.getElementById('input').value;").await;
    assert_eq!(recalled, "/logout", "Up skips lines with a password");
    input.clear().await.expect("clear the input");

    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!("the dialog again", dialog_open(b).await.then_some(()));
    let offered = js(b, "return document.getElementById('nick-input').value;").await;
    assert_eq!(offered, "rosa");
}

// --- a reload ----------------------------------------------------------------------------------

/// A guest `nick` in `#lobby` and `#rust`, looking at `#lobby`, and an nc user who saw it
/// join (its writer and what it heard).
async fn guest_in_two_rooms(
    b: &Browser,
    page: &str,
    addr: SocketAddr,
    nick: &str,
) -> (tokio::net::tcp::OwnedWriteHalf, Captured) {
    let (nc_w, nc_out) = nc(addr, "netcat").await;
    open_page_as(b, page, Some(nick)).await;
    let joined = format!("{nick} joined #lobby");
    wait_for!("nc to see the guest join", nc_out.has(&joined));
    send_line(b, "/join #rust").await;
    wait_said(b, "#rust", &["you are in #rust"]).await;
    click_conv(b, "#lobby").await;
    (nc_w, nc_out)
}

/// The rooms the page lists, sorted, once it lists at least two.
async fn two_rooms_listed(b: &Browser) -> Vec<String> {
    wait_for!("its rooms", {
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
        (rooms.len() >= 2).then_some(rooms)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_reloading_the_page_gets_its_session_back() {
    with_page(
        "natter-qa-reload",
        natter_server::ServerConfig::local_test(),
        reload_scenario,
    )
    .await;
}

/// A guest leaves the page (a reload, or a visit elsewhere in the same tab) and comes back: the
/// tab kept its session, which resumes: the same nick with no dialog, its rooms, and what was
/// said while it was away, once (not what it had seen). Nobody sees it leave or come back.
async fn reload_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (mut nc_w, nc_out) = guest_in_two_rooms(b, &page, addr, "pat").await;
    say(&mut nc_w, "before the reload").await;
    wait_said(b, "#lobby", &["before the reload"]).await;
    // The page talks before it goes: the server has its messages' ids, and the reloaded page's
    // must go on after them (one the server took for a resend was acknowledged and said to
    // nobody: the first lines typed after a reload vanished).
    send_line(b, "pat, as it goes").await;
    wait_for!("nc to hear pat", nc_out.has("<pat> pat, as it goes"));

    // Away for a moment (the tab shows another page), while netcat talks; then back.
    timeout(STEP, b.goto("about:blank"))
        .await
        .expect("leave in time")
        .expect("leave");
    say(&mut nc_w, "while you were away").await;
    timeout(STEP, b.goto(&page))
        .await
        .expect("come back in time")
        .expect("come back");
    wait_for!(
        "the page to be back",
        (conn_state(b).await == "connected").then_some(())
    );
    assert!(!dialog_open(b).await, "no nick asked for");
    assert_eq!(text_of(b, "#me-nick").await, "pat");
    assert_eq!(two_rooms_listed(b).await, ["#lobby", "#rust"]);
    click_conv(b, "#lobby").await;
    wait_said(b, "#lobby", &["while you were away"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = log_of(b, "#lobby").await;
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("while you were away"))
            .count(),
        1,
        "what it missed, once: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("before the reload")),
        "not what it had seen: {log:#?}"
    );
    let kept = js(b, "return sessionStorage.getItem('natter.session');").await;
    assert!(
        kept.is_null(),
        "taken, kept again when the page goes: {kept}"
    );

    // It goes on as pat; nobody saw it go or come back, also once the bridge's grace for the
    // page that was left is over (it let that connection go when the reload resumed).
    tokio::time::sleep(Duration::from_secs(6)).await;
    send_line(b, "back again").await;
    wait_for!("nc to hear pat", nc_out.has("<pat> back again"));
    wait_said(b, "#lobby", &["pat", "back again"]).await;
    assert_eq!(conn_state(b).await, "connected");
    assert_eq!(nc_out.count("pat quit"), 0, "{:#?}", nc_out.lines());
    assert_eq!(
        nc_out.count("pat joined #lobby"),
        1,
        "{:#?}",
        nc_out.lines()
    );
    assert_eq!(nc_out.count("pat_2"), 0, "{:#?}", nc_out.lines());
}

// --- a tab closed and opened again -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_who_closes_its_tab_quits_at_once_and_comes_back_in_its_rooms() {
    with_page(
        "natter-qa-reopen",
        natter_server::ServerConfig::local_test(),
        reopen_scenario,
    )
    .await;
}

/// A guest closes its tab: the page quits (the bridge does it for the page that was left, after
/// its short grace), so its rooms see it go and its nick is free at once, not after the
/// server's resume window (2 minutes). The page opened again in a new tab comes back as the
/// same nick (free again) in the same rooms, with no dialog, from what the browser kept, and
/// says it could not resume. Taken once: a second new tab opened meanwhile starts its own
/// session instead of taking this one over.
async fn reopen_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (mut nc_w, nc_out) = guest_in_two_rooms(b, &page, addr, "tess").await;

    // A second tab; the first one closed.
    let first = timeout(STEP, b.window())
        .await
        .expect("the window in time")
        .expect("the window");
    let second = timeout(STEP, b.new_window(true))
        .await
        .expect("a new tab in time")
        .expect("a new tab")
        .handle;
    let closed = std::time::Instant::now();
    timeout(STEP, b.close_window())
        .await
        .expect("close in time")
        .expect("close the first tab");
    assert_ne!(first, second);
    timeout(STEP, b.switch_to_window(second.clone()))
        .await
        .expect("switch in time")
        .expect("switch to the new tab");
    wait_for!(
        "nc to see tess quit",
        nc_out.has("tess quit (left the page)")
    );
    assert!(
        closed.elapsed() < Duration::from_secs(20),
        "at once, not after the resume window: {:?}",
        closed.elapsed()
    );
    say(&mut nc_w, "after the tab was closed").await;
    timeout(STEP, b.goto(&page))
        .await
        .expect("open in time")
        .expect("open the page again");
    wait_for!(
        "the page to be back",
        (conn_state(b).await == "connected").then_some(())
    );
    assert!(!dialog_open(b).await, "no nick asked for");
    assert_eq!(text_of(b, "#me-nick").await, "tess", "the nick was free");
    assert_eq!(two_rooms_listed(b).await, ["#lobby", "#rust"]);
    wait_anywhere(b, "could not resume").await;
    wait_for!(
        "nc to see tess back",
        (nc_out.count("tess joined #lobby") == 2).then_some(())
    );
    let last = js(b, "return localStorage.getItem('natter.lastSession');").await;
    assert!(last.is_null(), "taken from the browser once: {last}");

    // Another new tab while this one is open: a new session, asked for its nick.
    let third = timeout(STEP, b.new_window(true))
        .await
        .expect("a new tab in time")
        .expect("a new tab")
        .handle;
    timeout(STEP, b.switch_to_window(third))
        .await
        .expect("switch in time")
        .expect("switch to the third tab");
    timeout(STEP, b.goto(&page))
        .await
        .expect("open in time")
        .expect("open the page in a third tab");
    wait_for!("the dialog", dialog_open(b).await.then_some(()));
    timeout(STEP, b.close_window())
        .await
        .expect("close in time")
        .expect("close the third tab");
    timeout(STEP, b.switch_to_window(second))
        .await
        .expect("switch in time")
        .expect("back to the second tab");

    send_line(b, "still here").await;
    wait_for!("nc to hear tess", nc_out.has("<tess> still here"));
    assert_eq!(nc_out.count("tess quit"), 1, "{:#?}", nc_out.lines());
    assert_eq!(nc_out.count("tess_2"), 0, "{:#?}", nc_out.lines());
}

// --- a password change on a remembered page -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_keeps_a_remembered_page_remembered() {
    with_page(
        "natter-qa-password",
        natter_server::ServerConfig::local_test(),
        password_scenario,
    )
    .await;
}

/// Registered and remembered, then `/password` typed: the server revokes every key, this
/// page's with them, and gives this page a new one, which it keeps in place of the old. The
/// conversation says the device stays remembered, the banner says nothing, and a reload signs
/// in again by itself with the new key.
async fn password_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_and_register_remembered(b, &page, "rosa", "old-password-1").await;
    let kept_key = || async {
        kept_sign_in(b)
            .await
            .get("key")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let old_key = wait_for!("the device key to be kept", kept_key().await);
    send_line(b, "/password old-password-1 new-password-2").await;
    wait_said(
        b,
        "#lobby",
        &["your password was changed", "this device stays remembered"],
    )
    .await;
    let new_key = wait_for!(
        "a new key kept in place of the old",
        kept_key().await.filter(|k| *k != old_key)
    );
    let banner = js(
        b,
        "const e = document.getElementById('banner'); return e.hidden ? '' : e.textContent;",
    )
    .await;
    assert!(
        !banner.to_string().contains("no longer works"),
        "nothing was lost: {banner}"
    );
    assert_eq!(account_of(b).await.as_deref(), Some("rosa"));

    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "signed in again by the new key",
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    assert!(!dialog_open(b).await, "nothing asked");
    assert_eq!(kept_key().await, Some(new_key), "the key still kept");
}

// --- a password change typed before the remembered sign-in went through ------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_before_the_sign_in_keeps_no_revoked_key() {
    let store = TempDir::new("natter-qa-early-password-store");
    let mut config = natter_server::ServerConfig::local_test();
    config.store = Some(natter_store::Config::new(store.0.join("data")));
    let again = config.clone();
    with_page_and_server_within(
        SCENARIO_LIMIT,
        "natter-qa-early-password",
        config,
        |b, page, server| early_password_scenario(b, page, server, again),
    )
    .await;
}

/// A remembered page loaded while its server is away (restarted on its store), `/password`
/// typed before the sign-in with the kept key went through: the change waits for the sign-in,
/// and the server, taking it, revokes every key of the account, this page's with them, and
/// gives this remembered device a new one before its answer. Until the forty-first session the
/// session took that key for a second sign-in and the answer then dropped it, and the page
/// went on keeping the revoked key (as for a change still waiting for its answer): its next
/// load signed in with a key that opened nothing ("your remembered sign-in no longer works").
/// Now the new key is kept in place of the revoked one, and the next load signs in with it.
async fn early_password_scenario(
    browser: Browser,
    page: String,
    server: TestServer,
    config: natter_server::ServerConfig,
) {
    let b = &browser;
    open_and_register_remembered(b, &page, "rosa", "old-password-1").await;
    let kept_key = || async {
        kept_sign_in(b)
            .await
            .get("key")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let old_key = wait_for!("the device key to be kept", kept_key().await);
    server.stop().await;
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "the reloaded page to wait for its server",
        js(
            b,
            "return !!window.natterDebug && window.natterDebug.state() === 'reconnecting';"
        )
        .await
        .as_bool()
        .filter(|w| *w)
    );
    assert_eq!(account_of(b).await, None, "not signed in yet");
    send_line(b, "/password old-password-1 new-password-2").await;
    let mut again = config;
    again.listen = vec![server.addr()];
    let restarted = timeout(STEP, natter_server::start(again))
        .await
        .expect("natter-server starts again in time")
        .expect("natter-server starts again on its store and port");
    wait_anywhere(b, "your password was changed").await;
    assert_eq!(account_of(b).await.as_deref(), Some("rosa"));
    let new_key = wait_for!(
        "the revoked key replaced by the new one",
        kept_key().await.filter(|k| *k != old_key)
    );
    wait_anywhere(b, "this device stays remembered").await;
    let signed_in = every_line(b)
        .await
        .iter()
        .filter(|l| l.contains("you are signed in as rosa"))
        .count();
    assert_eq!(signed_in, 1, "one sign-in: {:#?}", every_line(b).await);

    // The next load signs in with the new key, asking nothing.
    timeout(STEP, b.refresh())
        .await
        .expect("reload in time")
        .expect("reload");
    wait_for!(
        "signed in again by the new key",
        (account_of(b).await.as_deref() == Some("rosa")).then_some(())
    );
    assert!(!dialog_open(b).await, "nothing asked");
    assert_eq!(kept_key().await, Some(new_key), "the key still kept");
    let banner = js(
        b,
        "const e = document.getElementById('banner'); return e.hidden ? '' : e.textContent;",
    )
    .await;
    assert!(
        !banner.to_string().contains("no longer works"),
        "the key kept works: {banner}"
    );
    timeout(STEP, restarted.shutdown())
        .await
        .expect("natter-server stops in time")
        .expect("natter-server stops");
}

// --- kicks, away answers and an admin's answers, said once and where they belong -------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicks_away_answers_and_admin_answers_are_said_where_they_belong() {
    let mut config = natter_server::ServerConfig::local_test();
    config.hub.accounts.admins = vec![natter_core::Nick::new("root").expect("a nick")];
    with_page("natter-qa-answers", config, answers_scenario).await;
}

/// Waits until some line of the page says `words`; panics with every line after [`STEP`].
async fn wait_anywhere(b: &Browser, words: &str) {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let all = every_line(b).await;
        if all.iter().any(|l| l.contains(words)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line with {words:?} within {STEP:?}; the page: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every line of every conversation the page has drawn.
async fn every_line(b: &Browser) -> Vec<String> {
    js(
        b,
        "return [...document.querySelectorAll('.log .line')].map(l => l.textContent);",
    )
    .await
    .as_array()
    .map(|a| {
        a.iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect()
    })
    .unwrap_or_default()
}

/// Put out of a room, the page says who did it and why, and not also "you left" (as if it
/// had left of its own accord). Writing to someone away, the answer is said in the direct
/// conversation, once while it stays the same (the server repeats it after each message). A
/// server admin acting where no room's event
/// tells it (a server ban, a takeover or close, a change that changes nothing) hears what it
/// did, as nc does; refused, it hears why each time.
async fn answers_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("root")).await;
    let (mut boss, boss_out) = nc(addr, "boss").await;
    say(&mut boss, "/register correct horse battery").await;
    wait_for!("boss signed in", boss_out.has("signed in as boss"));
    say(&mut boss, "/join #hq").await;
    say(&mut boss, "/register #hq").await;
    wait_for!("#hq registered", boss_out.has("+r"));

    // Kicked: the kick's line where the page lands, and no "you left #hq".
    type_line(b, "/join #hq").await;
    wait_for!("root in #hq", boss_out.has("root joined #hq"));
    say(&mut boss, "/kick root flooding").await;
    let kick = wait_said(b, "#lobby", &["boss put you out of #hq", "flooding"]).await;
    assert!(kick.contains("(flooding)"), "{kick:?}");
    // The page settles (a line after the kick shows where it landed).
    type_line(b, "/topic").await;
    wait_said(b, "#lobby", &["topic"]).await;
    let all = every_line(b).await;
    assert!(
        !all.iter().any(|l| l.contains("you left #hq")),
        "a kick said as a leave too: {all:#?}"
    );
    assert_eq!(
        all.iter()
            .filter(|l| l.contains("boss put you out of #hq"))
            .count(),
        1,
        "{all:#?}"
    );

    // Writing to someone away: the answer beside what was written, once.
    let (mut napper, napper_out) = nc(addr, "napper").await;
    say(&mut napper, "/part #lobby").await;
    say(&mut napper, "/away at lunch").await;
    wait_for!("napper away", napper_out.has("you are away"));
    type_line(b, "/msg napper are you there?").await;
    wait_said(b, "@napper", &["napper is away: at lunch"]).await;
    type_line(b, "/msg napper hello?").await;
    wait_for!("the second message", napper_out.has("hello?"));
    // One more, so the server's answer to the second has come (it answers in order).
    type_line(b, "/msg napper third").await;
    wait_said(b, "@napper", &["third"]).await;
    let dm = log_of(b, "@napper").await;
    assert_eq!(
        dm.iter()
            .filter(|l| l.contains("napper is away: at lunch"))
            .count(),
        1,
        "{dm:#?}"
    );

    // Not an admin yet: refused in words, each time.
    type_line(b, "/gbans").await;
    type_line(b, "/gban 203.0.113.0/24").await;
    wait_for!(
        "two refusals",
        (every_line(b)
            .await
            .iter()
            .filter(|l| l.contains("that is for server admins"))
            .count()
            == 2)
            .then_some(())
    );
    // The admin's account: what it does outside any room is answered.
    type_line(b, "/register correct horse battery").await;
    wait_for!(
        "signed in as root",
        (account_of(b).await.as_deref() == Some("root")).then_some(())
    );
    say(&mut boss, "/join #two").await;
    wait_for!("boss in #two", boss_out.has("you are in #two"));
    type_line(b, "/gban 203.0.113.0/24 1h").await;
    type_line(b, "/takeover #hq").await;
    type_line(b, "/kick #two boss being bossy").await;
    type_line(b, "/mode #hq -m").await;
    type_line(b, "/gunban 203.0.113.0/24").await;
    for words in [
        "203.0.113.0/24 is banned from the server",
        "you took over #hq: you are its founder",
        "root put boss out of #two (being bossy)",
        "-m changes nothing in #hq",
        "203.0.113.0/24 is no longer banned from the server",
    ] {
        wait_anywhere(b, words).await;
    }
    type_line(b, "/close #hq").await;
    wait_anywhere(b, "you closed #hq: its 1 member left it").await;
    let errors = js(b, "return window.natterDebug.errors;").await;
    assert_eq!(errors, serde_json::json!([]), "the page logged errors");
}

// --- Tab, again and again ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tabs_cycle_through_every_nick_that_matches() {
    let config = natter_server::ServerConfig::local_test();
    with_page("natter-qa-tabs", config, tabs_scenario).await;
}

async fn tabs_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("webby")).await;
    let (_clara, _) = nc(addr, "clara").await;
    let (_clint, _) = nc(addr, "clint").await;
    let (_nora, _) = nc(addr, "nora").await;
    wait_for!("the page lists clara, clint and nora", {
        let members = text_of(b, "#member-list").await;
        ["clara", "clint", "nora"]
            .iter()
            .all(|n| members.contains(n))
            .then_some(())
    });
    let input = b
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("the input");
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    let state = "return [document.getElementById('input').value, document.activeElement.id];";
    input
        .send_keys(&format!("cl{tab}"))
        .await
        .expect("type cl, Tab");
    assert_eq!(js(b, state).await, serde_json::json!(["clara: ", "input"]));
    input.send_keys(&tab).await.expect("Tab again");
    assert_eq!(
        js(b, state).await,
        serde_json::json!(["clint: ", "input"]),
        "the next nick that matched, in its place"
    );
    input.send_keys(&tab).await.expect("and again");
    assert_eq!(
        js(b, state).await,
        serde_json::json!(["clara: ", "input"]),
        "round again, nora never (she does not match)"
    );
    // Another key ends the run: the nick stays, and Tab after a space moves on as anywhere.
    input
        .send_keys(&format!("hi and n{tab}"))
        .await
        .expect("type on, Tab");
    assert_eq!(
        js(b, state).await,
        serde_json::json!(["clara: hi and nora ", "input"]),
        "a new word completes afresh"
    );
}

// --- a search hit opens its room at the line -----------------------------------------------------

/// A server whose talkers go quickly (the lines below go in at once).
fn quick_server() -> natter_server::ServerConfig {
    let mut config = natter_server::ServerConfig::local_test();
    config.hub.flood_burst = 1_000;
    config.hub.flood_refill = natter_core::Millis(1);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_hit_opens_its_room_at_the_line_from_the_ring() {
    with_page("natter-qa-hit-ring", quick_server(), |b, page, addr| {
        search_hit_scenario(b, page, addr, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_hit_opens_its_room_at_the_line_from_the_store() {
    let data = tempfile::tempdir().expect("a store directory");
    let mut config = quick_server();
    config.store = Some(natter_store::Config::new(data.path().join("data")));
    with_page("natter-qa-hit-store", config, |b, page, addr| {
        search_hit_scenario(b, page, addr, false)
    })
    .await;
}

/// Searches from the header box for `words` and waits for `n` hits.
async fn search_for(b: &Browser, words: &str, n: usize) {
    let script = format!(
        "document.getElementById('search-input').value = {}; \
         document.getElementById('search-form').requestSubmit();",
        serde_json::Value::from(words)
    );
    js(b, &script).await;
    wait_for!(
        format!("{n} hit(s) for {words:?}"),
        (js(
            b,
            "return document.getElementById('search-panel').dataset.state === 'done' \
                && document.querySelectorAll('#search-hits .hit').length;"
        )
        .await
        .as_u64()
            == Some(n as u64))
        .then_some(())
    );
}

/// Whether the line of `conv` whose text is `text` is on screen within its log, highlighted
/// as the line a hit opened (`found`): `Some(true)` both, `Some(false)` there but not so,
/// `None` not in the log.
async fn hit_line(b: &Browser, conv: &str, text: &str) -> Option<bool> {
    let script = format!(
        r#"const log = document.querySelector('.log[data-conv="{conv}"]');
           const l = [...log.querySelectorAll('.line')]
             .find(e => e.querySelector('.text')?.textContent === {text});
           if (!l) return null;
           const r = l.getBoundingClientRect(), v = log.getBoundingClientRect();
           return !log.hidden && r.top >= v.top && r.bottom <= v.bottom && l.classList.contains('found');"#,
        text = serde_json::Value::from(text)
    );
    js(b, &script).await.as_bool()
}

/// Someone said many lines before the page joined: the join shows the last of them. A search
/// hit far above them, clicked, opens the room at that line: its older lines are loaded page
/// after page until it is there, then it is scrolled to and highlighted. From the keyboard
/// too (Enter on a hit). With a memory-only server (`ring`), a hit whose line the server has
/// since dropped says so under the search's title.
async fn search_hit_scenario(browser: Browser, page: String, addr: SocketAddr, ring: bool) {
    let b = &browser;
    let (mut talker, talker_out) = nc(addr, "talker").await;
    for i in 1..=300 {
        say(&mut talker, &format!("talk {i:03}")).await;
    }
    say(&mut talker, "/who").await;
    wait_for!("the talk said", talker_out.has("#lobby (1): talker"));
    open_page_as(b, &page, Some("finder")).await;
    wait_said(b, "#lobby", &["talk 300"]).await;
    assert!(
        hit_line(b, "#lobby", "talk 120").await.is_none(),
        "not shown yet"
    );
    // Another room open: the hit opens #lobby.
    send_line(b, "/join #elsewhere").await;
    wait_said(b, "#elsewhere", &["you are in #elsewhere"]).await;

    search_for(b, "talk 120", 1).await;
    b.find(fantoccini::Locator::Css("#search-hits .hit"))
        .await
        .expect("the hit")
        .click()
        .await
        .expect("click the hit");
    wait_for!(
        "the hit's line on screen, highlighted",
        (hit_line(b, "#lobby", "talk 120").await == Some(true)).then_some(())
    );
    assert_eq!(text_of(b, "#conv-name").await, "#lobby");
    let seqs = js(
        b,
        r##"return [...document.querySelectorAll('.log[data-conv="#lobby"] .line[data-seq]')]
             .map(l => Number(l.dataset.seq));"##,
    )
    .await;
    let seqs: Vec<u64> = seqs
        .as_array()
        .expect("seqs")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {seqs:?}"
    );

    // From the keyboard: back to #elsewhere, a hit further up, Enter on it.
    click_conv(b, "#elsewhere").await;
    search_for(b, "talk 060", 1).await;
    let hit = b
        .find(fantoccini::Locator::Css("#search-hits .hit"))
        .await
        .expect("the hit");
    js(b, "document.querySelector('#search-hits .hit').focus();").await;
    hit.send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
        .await
        .expect("Enter on the hit");
    wait_for!(
        "the keyboard's hit on screen, highlighted",
        (hit_line(b, "#lobby", "talk 060").await == Some(true)).then_some(())
    );

    if !ring {
        return;
    }
    // The memory-only server keeps a room's last 256 events. A hit found while its line was
    // among them, whose line then falls out (300 lines more), is said to be older than what
    // the server keeps once every line above the page's is loaded.
    say(&mut talker, "/join #old").await;
    for i in 1..=300 {
        say(&mut talker, &format!("old {i:03}")).await;
    }
    say(&mut talker, "/who").await;
    wait_for!("the old talk said", talker_out.has("#old (1): talker"));
    send_line(b, "/join #old").await;
    wait_said(b, "#old", &["old 300"]).await;
    search_for(b, "#old old 100", 1).await;
    for i in 1..=300 {
        say(&mut talker, &format!("newer {i:03}")).await;
    }
    wait_said(b, "#old", &["newer 300"]).await;
    click_conv(b, "#lobby").await;
    b.find(fantoccini::Locator::Css("#search-hits .hit"))
        .await
        .expect("the hit")
        .click()
        .await
        .expect("click the hit");
    wait_for!(
        "the page to say the line is gone",
        (text_of(b, "#search-note").await
            == "that line is older than what the server keeps of #old")
            .then_some(())
    );
    assert_eq!(text_of(b, "#conv-name").await, "#old");
    assert!(hit_line(b, "#old", "old 100").await.is_none());
}

// --- a room's key, kept with the session -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_past_the_resume_window_joins_a_keyed_room_with_its_key() {
    let mut config = natter_server::ServerConfig::local_test();
    // A short resume window, to be past it soon.
    config.hub.resume_grace = natter_core::Millis(1_000);
    with_page("natter-qa-keyed", config, keyed_scenario).await;
}

/// A guest joined a `+k` room with its key (`/join #vault sesame`) and leaves the page for
/// longer than the server keeps its session: back in the same tab, it starts again as the same
/// nick in the same rooms, the keyed one joined with the key this tab kept (not refused for
/// want of it).
async fn keyed_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (mut keeper, keeper_out) = nc(addr, "keeper").await;
    say(&mut keeper, "/register correct horse battery").await;
    wait_for!("keeper signed in", keeper_out.has("signed in as keeper"));
    for line in ["/join #vault", "/register #vault", "/mode #vault +k sesame"] {
        say(&mut keeper, line).await;
    }
    wait_for!("#vault to be +k", keeper_out.has("+k"));
    open_page_as(b, &page, Some("kay")).await;
    send_line(b, "/join #vault sesame").await;
    wait_for!("kay in #vault", keeper_out.has("kay joined #vault"));
    wait_said(b, "#vault", &["you are in #vault"]).await;

    timeout(STEP, b.goto("about:blank"))
        .await
        .expect("leave in time")
        .expect("leave");
    // Past the bridge's grace for a page that was left and the server's resume window.
    tokio::time::sleep(Duration::from_secs(8)).await;
    timeout(STEP, b.goto(&page))
        .await
        .expect("come back in time")
        .expect("come back");
    wait_for!(
        "the page to be back",
        (conn_state(b).await == "connected").then_some(())
    );
    assert!(!dialog_open(b).await, "no nick asked for");
    wait_anywhere(b, "could not resume").await;
    wait_for!(
        "kay back in #vault",
        (keeper_out.count("kay joined #vault") == 2).then_some(())
    );
    assert_eq!(two_rooms_listed(b).await, ["#lobby", "#vault"]);
    let all = every_line(b).await;
    assert!(
        !all.iter()
            .any(|l| l.contains("needs its key") || l.contains("not the key of")),
        "joined with its key: {all:#?}"
    );
}

// --- /history at the beginning of a room ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_typed_at_a_rooms_beginning_says_so_where_it_can_be_seen() {
    with_page(
        "natter-qa-history-start",
        quick_server(),
        history_start_scenario,
    )
    .await;
}

/// The whole room is on the page (its first event too) and the log scrolls: `/history 5` typed
/// at the bottom brings nothing, and the log goes up to its top, which says this is the
/// beginning of the room (it stayed at the bottom: the command seemed to do nothing, where nc
/// and the terminal client say `(the beginning of #lobby)`).
async fn history_start_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (mut talker, talker_out) = nc(addr, "talker").await;
    for i in 1..=40 {
        say(&mut talker, &format!("early {i:02}")).await;
    }
    say(&mut talker, "/who").await;
    wait_for!("the talk said", talker_out.has("#lobby (1): talker"));
    open_page_as(b, &page, Some("reader")).await;
    wait_said(b, "#lobby", &["early 40"]).await;
    let log = r##"document.querySelector('.log[data-conv="#lobby"]')"##;
    let scrolls = js(
        b,
        &format!("const l = {log}; return l.scrollHeight > l.clientHeight + 100;"),
    )
    .await;
    assert_eq!(scrolls, serde_json::json!(true), "the log scrolls");
    send_line(b, "/history 5").await;
    wait_for!(
        "the top of #lobby on screen, saying it is the beginning",
        js(
            b,
            &format!(
                "const l = {log}; const t = l.querySelector('.history-top'); \
                 const r = t.getBoundingClientRect(), v = l.getBoundingClientRect(); \
                 return !t.hidden && t.textContent.includes('the beginning of #lobby') \
                   && r.bottom > v.top && r.top < v.bottom;"
            ),
        )
        .await
        .as_bool()
        .filter(|x| *x)
    );
}

// --- the keyboard alone, on a phone ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_alone_joins_talks_and_moves_on_a_phone() {
    with_page(
        "natter-qa-keys",
        natter_server::ServerConfig::local_test(),
        keyboard_scenario,
    )
    .await;
}

/// Presses `key` where the focus is.
async fn press(b: &Browser, key: fantoccini::key::Key) {
    b.active_element()
        .await
        .expect("something has the focus")
        .send_keys(&char::from(key).to_string())
        .await
        .expect("a key press");
}

/// What has the focus: `id`, or `in:drawer` for something inside a closed drawer.
async fn focused(b: &Browser) -> String {
    js(
        b,
        "const a = document.activeElement; \
         const drawer = a.closest('.sidebar, .members'); \
         const app = document.getElementById('app'); \
         const open = app.classList.contains('show-rooms') || app.classList.contains('show-members'); \
         return drawer && !open ? 'in:closed-drawer' : (a.id || a.tagName);",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// On a phone-sized window, with the keyboard alone: the nick typed and Enter, then the input
/// line has the focus (it went back to nothing when the dialog closed: the person had to find
/// it); Tab does not walk through the drawers slid away off screen (the rooms list, the join
/// box, the members); a drawer opened from its button is walked through, and Escape closes it,
/// the focus back on its button.
async fn keyboard_scenario(browser: Browser, page: String, addr: SocketAddr) {
    use fantoccini::key::Key;
    let b = &browser;
    timeout(STEP, b.set_window_size(390, 800))
        .await
        .expect("resize in time")
        .expect("a phone-sized window");
    let (_nc_w, nc_out) = nc(addr, "netcat").await;
    timeout(STEP, b.goto(&page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let input = nick_prompt(b).await;
    input.clear().await.expect("clear the nick");
    input.send_keys("keys").await.expect("type a nick");
    press(b, Key::Enter).await;
    wait_for!(
        "the page to connect",
        (conn_state(b).await == "connected").then_some(())
    );
    assert_eq!(focused(b).await, "input", "the input line has the focus");
    b.active_element()
        .await
        .expect("the input")
        .send_keys("typed at once")
        .await
        .expect("typing");
    press(b, Key::Enter).await;
    wait_for!("nc to hear it", nc_out.has("<keys> typed at once"));

    let mut walked = Vec::new();
    for _ in 0..12 {
        press(b, Key::Tab).await;
        walked.push(focused(b).await);
    }
    assert!(
        !walked.iter().any(|f| f == "in:closed-drawer"),
        "Tab went into a drawer off screen: {walked:?}"
    );
    js(b, "document.getElementById('toggle-rooms').focus();").await;
    press(b, Key::Enter).await;
    let mut walked = Vec::new();
    for _ in 0..4 {
        press(b, Key::Tab).await;
        walked.push(
            js(
                b,
                "return document.activeElement.dataset.conv ?? document.activeElement.id;",
            )
            .await,
        );
    }
    assert!(
        walked.iter().any(|f| f == "#lobby"),
        "the open drawer's rooms are walked through: {walked:?}"
    );
    press(b, Key::Escape).await;
    wait_for!(
        "the drawer to close",
        js(
            b,
            "return !document.getElementById('app').classList.contains('show-rooms');"
        )
        .await
        .as_bool()
        .filter(|x| *x)
    );
    assert_eq!(focused(b).await, "toggle-rooms");
}

// --- links -------------------------------------------------------------------------------------

/// Web addresses in what people say, and in a topic, are links: `http(s)` ones only (never
/// `javascript:` or `data:`), without the punctuation that ends the sentence around them, opening
/// in a tab of their own that gets neither this page nor its address; the text around them, and a
/// mention of our nick in it, stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_addresses_in_lines_and_topics_are_safe_links() {
    with_page(
        "natter-qa-links",
        natter_server::ServerConfig::local_test(),
        links_scenario,
    )
    .await;
}

async fn links_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("pat")).await;
    let (mut fern, _fern_out) = nc(addr, "fern").await;
    let said = "see https://example.com/a?b=1&c=(2). or (https://example.org/x) \
                but not javascript:alert(1) nor data:text/html,hi nor https:evil, pat";
    say(&mut fern, said).await;
    wait_said(b, "#lobby", &["javascript:alert(1)"]).await;
    let line = js(
        b,
        "const t = [...document.querySelectorAll('.log[data-conv=\"#lobby\"] .line .text')] \
           .find(t => t.textContent.includes('javascript:')); \
         return { text: t.textContent, \
                  links: [...t.querySelectorAll('a')].map(a => [a.getAttribute('href'), \
                          a.textContent, a.target, a.rel]), \
                  marks: [...t.querySelectorAll('mark.me')].map(m => m.textContent) };",
    )
    .await;
    assert_eq!(line["text"], said, "the line reads as it was said: {line}");
    let links: Vec<Vec<String>> = serde_json::from_value(line["links"].clone()).expect("links");
    let want = |url: &str| {
        vec![
            url.to_owned(),
            url.to_owned(),
            "_blank".to_owned(),
            "noopener noreferrer".to_owned(),
        ]
    };
    assert_eq!(
        links,
        vec![
            want("https://example.com/a?b=1&c=(2)"),
            want("https://example.org/x")
        ],
        "the two web addresses, and nothing else, are links: {line}"
    );
    assert_eq!(line["marks"], serde_json::json!(["pat"]), "{line}");

    // A topic's address is a link too (the sentence's full stop left out of it).
    say(&mut fern, "/topic the rules: https://example.com/rules.").await;
    wait_for!("the topic's link", {
        let v = js(
            b,
            "const t = document.getElementById('topic'); \
             return [t.textContent, [...t.querySelectorAll('a')].map(a => \
                     [a.getAttribute('href'), a.target, a.rel])];",
        )
        .await;
        (v == serde_json::json!([
            "the rules: https://example.com/rules.",
            [["https://example.com/rules", "_blank", "noopener noreferrer"]]
        ]))
        .then_some(())
    });
}

// --- day marks ---------------------------------------------------------------------------------

/// A page left open past midnight says its day marks again: what was "Today" is "Yesterday" once
/// a line of the new day comes, never two days both "Today".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_marks_follow_the_day_on_a_page_left_open_overnight() {
    with_page(
        "natter-qa-days",
        natter_server::ServerConfig::local_test(),
        days_scenario,
    )
    .await;
}

async fn day_marks(b: &Browser) -> serde_json::Value {
    js(
        b,
        "return [...document.querySelectorAll('.log[data-conv=\"#lobby\"] .day')] \
           .map(d => d.textContent);",
    )
    .await
}

async fn days_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("pat")).await;
    wait_said(b, "#lobby", &["#lobby"]).await;
    assert_eq!(day_marks(b).await, serde_json::json!(["Today"]));
    // The page's clock goes on to the same hour tomorrow (the lines already shown keep theirs).
    js(
        b,
        "const Real = Date, later = 86400000; \
         window.Date = class extends Real { \
           constructor(...a) { if (a.length) super(...a); else super(Real.now() + later); } \
           static now() { return Real.now() + later; } };",
    )
    .await;
    // A line made now, by the page itself: a new day's mark, and yesterday's said so.
    send_line(b, "/help").await;
    wait_for!("a second day mark", {
        let marks = day_marks(b).await;
        (marks.as_array().map(Vec::len) == Some(2)).then_some(marks)
    });
    assert_eq!(
        day_marks(b).await,
        serde_json::json!(["Yesterday", "Today"])
    );
}

// --- a phone's width -----------------------------------------------------------------------------

/// On a phone, a line from someone with a long nick still reads as a line: its text flows on under
/// the nick rather than being squeezed into the sliver of width the nick leaves (a word a row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_nick_leaves_its_text_the_width_of_a_phone() {
    with_page(
        "natter-qa-narrow",
        natter_server::ServerConfig::local_test(),
        narrow_scenario,
    )
    .await;
}

async fn narrow_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    timeout(STEP, b.set_window_size(360, 740))
        .await
        .expect("resize in time")
        .expect("resize the window");
    open_page_as(b, &page, Some("pat")).await;
    let nick = "W".repeat(natter_core::limits::MAX_NICK_LEN);
    let (mut fern, _fern_out) = nc(addr, &nick).await;
    say(&mut fern, "one two three four five six seven eight nine").await;
    wait_said(b, "#lobby", &["eight nine"]).await;
    let v = js(
        b,
        "const l = [...document.querySelectorAll('.log[data-conv=\"#lobby\"] .line')] \
           .find(x => x.textContent.includes('eight nine')); \
         const row = parseFloat(getComputedStyle(l.querySelector('.text')).lineHeight); \
         return [l.getBoundingClientRect().height / row, innerWidth, \
                 document.documentElement.scrollWidth, \
                 l.querySelector('.text').getBoundingClientRect().width / \
                   l.getBoundingClientRect().width];",
    )
    .await;
    // The widest nick there is (capital Ws) gets a row of its own after the time; the words
    // then take one more (in a column of the width the nick leaves, they took 36).
    let rows = v[0].as_f64().expect("a height");
    assert!(
        rows < 4.0,
        "nine short words take {rows} rows on a phone: {v}"
    );
    let share = v[3].as_f64().expect("a width");
    assert!(share > 0.8, "the text has {share} of the line's width: {v}");
    assert_eq!(v[1], v[2], "nothing wider than the screen: {v}");
}

// --- leaving the open conversation -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_open_conversation_lands_where_the_person_was_before() {
    with_page(
        "natter-qa-leave",
        natter_server::ServerConfig::local_test(),
        leave_scenario,
    )
    .await;
}

/// What the page shows as open: the visible logs, the selected list entries, the header, and
/// every listed conversation.
async fn view(b: &Browser) -> serde_json::Value {
    js(
        b,
        "return { visible: [...document.querySelectorAll('.log')].filter(l => !l.hidden)\
           .map(l => l.dataset.conv), \
         selected: [...document.querySelectorAll('.conv-list button[aria-current=\"true\"]')]\
           .map(b => b.dataset.conv), \
         header: document.getElementById('conv-name').textContent, \
         listed: [...document.querySelectorAll('.conv-list button')].map(b => b.dataset.conv) };",
    )
    .await
}

/// Waits until the page shows `key` open and nothing else (its log, its list entry, its label
/// on top) and `gone` is listed no more.
async fn wait_showing(b: &Browser, key: &str, gone: &str) {
    let mut last = serde_json::Value::Null;
    let shown = timeout(STEP, async {
        loop {
            last = view(b).await;
            let one = |f: &str| last[f] == serde_json::json!([key]);
            let listed = last["listed"]
                .as_array()
                .is_some_and(|l| l.iter().any(|k| k == key));
            let gone_too = last["listed"]
                .as_array()
                .is_some_and(|l| l.iter().all(|k| k != gone));
            if one("visible")
                && one("selected")
                && last["header"] == key.trim_start_matches('@')
                && listed
                && gone_too
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(shown.is_ok(), "{key} open, {gone} gone; the page: {last:#}");
}

/// `/part` in the open room lands in the conversation read before it (not the first room), the
/// list and the view agreeing, and the part is said there; `/part` typed in a direct
/// conversation closes it the same way, as in the TUI (not "not a room"); `/clear` empties the
/// open conversation on the page (not "unknown command").
async fn leave_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (_nc_w, _nc_out) = nc(addr, "netcat").await;
    open_page_as(b, &page, Some("lee")).await;
    send_line(b, "/join #rust").await;
    wait_said(b, "#rust", &["you are in #rust"]).await;
    send_line(b, "/join #go").await;
    wait_said(b, "#go", &["you are in #go"]).await;
    click_conv(b, "#rust").await;
    click_conv(b, "#go").await;

    send_line(b, "/part").await;
    wait_showing(b, "#rust", "#go").await;
    wait_said(b, "#rust", &["#go"]).await;

    send_line(b, "/msg netcat psst").await;
    wait_for!(
        "@netcat listed",
        view(b).await["listed"]
            .as_array()
            .is_some_and(|l| l.iter().any(|k| k == "@netcat"))
            .then_some(())
    );
    click_conv(b, "@netcat").await;
    wait_showing(b, "@netcat", "#go").await;
    send_line(b, "/part").await;
    wait_showing(b, "#rust", "@netcat").await;
    wait_said(b, "#rust", &["closed the conversation with netcat"]).await;

    send_line(b, "/clear").await;
    wait_for!(
        "#rust's lines to go",
        log_of(b, "#rust").await.is_empty().then_some(())
    );
    wait_showing(b, "#rust", "@netcat").await;
    for conv in ["#lobby", "#rust"] {
        let log = log_of(b, conv).await;
        assert!(
            log.iter()
                .all(|l| !l.contains("unknown") && !l.contains("not a room")),
            "{conv}: {log:#?}"
        );
    }
}

// --- /query ------------------------------------------------------------------------------------

/// The conversation the page shows: its visible log's key, and the sidebar's current entry.
async fn shown_conv(b: &Browser) -> (String, String) {
    let v = js(
        b,
        "const l = document.querySelector('.log:not([hidden])'); \
         const c = document.querySelector('.conv-list [aria-current=\"true\"]'); \
         return [l ? l.dataset.conv : '', c ? c.dataset.conv : ''];",
    )
    .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
    )
}

/// `/query nick [text]` was the terminal client's only: the page sent `/query bob hi` as a
/// `/msg` with nothing opened and said `/msg`'s usage to `/query bob`. It opens and shows the
/// direct conversation now (with text, sent there), and alone says how it is typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_opens_and_shows_the_direct_conversation() {
    with_page(
        "natter-page-query",
        natter_server::ServerConfig::local_test(),
        query_scenario,
    )
    .await;
}

async fn query_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (_bob, bob_out) = nc(addr, "bob").await;
    open_page_as(b, &page, Some("ann")).await;
    let lobby = || ("#lobby".to_owned(), "#lobby".to_owned());
    assert_eq!(shown_conv(b).await, lobby());

    send_line(b, "/query").await;
    wait_said(b, "#lobby", &["usage: /query nick [text]"]).await;
    assert_eq!(shown_conv(b).await, lobby(), "nothing opened");
    // No nick: why, not `/msg`'s usage (a command not typed).
    send_line(b, "/query b@d").await;
    wait_said(b, "#lobby", &["a nick starts with", "(got \"b@d\")"]).await;
    assert_eq!(shown_conv(b).await, lobby(), "nothing opened");

    send_line(b, "/query bob").await;
    wait_for!(
        "@bob to be shown",
        (shown_conv(b).await == ("@bob".to_owned(), "@bob".to_owned())).then_some(())
    );

    // From #lobby, with text: opened, and the text said to bob.
    js(
        b,
        "document.querySelector('.conv-list [data-conv=\"#lobby\"]').click();",
    )
    .await;
    wait_for!(
        "#lobby to be shown",
        (shown_conv(b).await == lobby()).then_some(())
    );
    send_line(b, "/query bob hi from the page").await;
    wait_for!(
        "@bob to be shown again",
        (shown_conv(b).await == ("@bob".to_owned(), "@bob".to_owned())).then_some(())
    );
    wait_for!("bob to get it", bob_out.has("hi from the page"));
    wait_for!(
        "the line in @bob",
        chat(b, "@bob")
            .await
            .contains(&("ann".to_owned(), "hi from the page".to_owned()))
            .then_some(())
    );
    // /part there closes it, saying how to open it again.
    send_line(b, "/part").await;
    wait_said(
        b,
        "#lobby",
        &["closed the conversation with bob", "/query bob"],
    )
    .await;
}

/// The sidebar's room box joins the room typed, or says why not: `a b` there joined `#a` with
/// the key `b` until the fortieth session (the box made it `/join #a b`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_box_joins_a_room_or_says_why_not() {
    with_page(
        "natter-qa-room-box",
        natter_server::ServerConfig::local_test(),
        room_box_scenario,
    )
    .await;
}

async fn room_box_scenario(browser: Browser, page: String, _addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("boxy")).await;
    let submit = |room: &str| {
        format!(
            "document.getElementById('join-input').value = {}; \
             document.getElementById('join-form').requestSubmit(); \
             return document.getElementById('join-input').value;",
            serde_json::Value::from(room)
        )
    };
    let left = js(b, &submit("a b")).await;
    wait_said(b, "#lobby", &["a room name is", "a b"]).await;
    assert_eq!(left, "a b", "the box keeps what was typed, to be mended");
    assert_eq!(text_of(b, "#conv-name").await, "#lobby");
    let rooms = js(
        b,
        "return [...document.querySelectorAll('#room-list button')].map(x => x.dataset.conv);",
    )
    .await;
    assert_eq!(rooms, serde_json::json!(["#lobby"]), "no room joined");
    // A name without its `#` is a room all the same.
    let left = js(b, &submit("Rust")).await;
    assert_eq!(left, "");
    wait_for!(
        "#rust open",
        (text_of(b, "#conv-name").await == "#rust").then_some(())
    );
}

/// `/msg nick text` typed in a room says there what was sent, as the terminal client does:
/// until the fortieth session the line went to the direct conversation out of sight, and
/// Enter seemed to do nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_typed_in_a_room_is_said_there() {
    with_page(
        "natter-qa-msg-elsewhere",
        natter_server::ServerConfig::local_test(),
        msg_elsewhere_scenario,
    )
    .await;
}

async fn msg_elsewhere_scenario(browser: Browser, page: String, addr: SocketAddr) {
    let b = &browser;
    let (_wren, heard) = nc(addr, "wren").await;
    open_page_as(b, &page, Some("mo")).await;
    type_line(b, "/msg wren hi there").await;
    wait_for!("wren to get it", heard.has("*mo* hi there"));
    wait_said(b, "#lobby", &["-> *wren* hi there"]).await;
    assert_eq!(text_of(b, "#conv-name").await, "#lobby");
    // In the direct conversation itself the line shows as it is: nothing more is said.
    js(b, "document.querySelector('#dm-list button').click();").await;
    wait_for!(
        "@wren open",
        (text_of(b, "#conv-name").await == "wren").then_some(())
    );
    type_line(b, "/msg wren again").await;
    wait_for!("wren to get the second", heard.has("*mo* again"));
    wait_said(b, "@wren", &["again"]).await;
    let said = log_of(b, "@wren").await;
    assert!(!said.iter().any(|l| l.contains("-> *wren*")), "{said:?}");
}
