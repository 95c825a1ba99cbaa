//! What every browser test needs: the built page, chromedriver in a process group of its own
//! (killed with Chromium and its helpers on drop), a headless Chromium session, scripts run in
//! the page, the nick prompt, typing a line, and output captured from children and sockets.
//! Every wait is bounded.
#![allow(dead_code)] // each test file uses a different part

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// One step (the page loading, a line arriving, a reconnect) must happen within this.
pub const STEP: Duration = Duration::from_secs(30);

/// Lines kept from a child's or socket's output (far more than a scenario produces).
const MAX_CAPTURED_LINES: usize = 10_000;

/// Waits until `$body` (an `Option`) is `Some`, polling every 100 ms; panics with `$what`
/// after `$limit` (default [`STEP`]).
macro_rules! wait_for {
    ($what:expr, $limit:expr, $body:expr) => {{
        let limit: std::time::Duration = $limit;
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(v) = $body {
                break v;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out after {limit:?} waiting for {}", $what);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
    ($what:expr, $body:expr) => {
        wait_for!($what, $crate::common::STEP, $body)
    };
}

pub fn repo() -> PathBuf {
    // www/ is one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("www/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory (a test is `<target>/debug/deps/<name>-<hash>`), where `cargo
/// xtask web` puts the page, also under `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| repo().join("target"))
}

/// The built page's directory, checked.
pub fn www_dir() -> PathBuf {
    let dir = target_dir().join("www");
    let wasm = dir.join("natter_web_bg.wasm");
    assert!(
        wasm.is_file() && dir.join("index.html").is_file() && dir.join("natter_web.js").is_file(),
        "{} (or index.html / natter_web.js) is missing: run `cargo xtask web` (or `cargo xtask test`) first",
        wasm.display()
    );
    dir
}

/// A child process in its own process group, killed with its whole group on drop (chromedriver
/// starts Chromium, which starts helpers; none may outlive the test).
pub struct Group(pub Child);

impl Group {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).spawn().map(Group)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The group this test created, by its id: killpg(2), not the `kill` program, whose
        // procps-ng 4.0.2 reads `kill -KILL -13624` as process group 1 (that is, everything).
        // A group id of 0 or 1 would mean our own group or every process: never signal those.
        if let Ok(pgid) = i32::try_from(self.0.id())
            && pgid > 1
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh directory, removed on drop (Chromium's profile, a CLI's config home).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines read from a child or a socket, shared with the task that reads them.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    pub fn push(&self, line: String) {
        let mut v = self.0.lock().expect("capture lock");
        if v.len() < MAX_CAPTURED_LINES {
            v.push(line);
        }
    }
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("capture lock").clone()
    }
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
    pub fn has(&self, needle: &str) -> Option<()> {
        (self.count(needle) > 0).then_some(())
    }
}

/// Reads `read` line by line into a [`Captured`], in a task.
pub fn capture<R: tokio::io::AsyncRead + Unpin + Send + 'static>(read: R) -> Captured {
    let out = Captured::default();
    let sink = out.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.push(line);
        }
    });
    out
}

/// The `natter` CLI in line mode (`--lines`, in `#lobby`), its stdout captured.
pub struct Cli {
    pub child: tokio::process::Child,
    pub stdin: tokio::process::ChildStdin,
    pub out: Captured,
}

impl Cli {
    /// `natter --lines --nick NICK SERVER`.
    pub async fn start(nick: &str, server: std::net::SocketAddr, config_home: &Path) -> Cli {
        Cli::start_with(nick, &[server], config_home, None).await
    }

    /// `natter --lines --nick NICK ADDR,ADDR,...` (the first address first, the others when it
    /// fails), signed in with `--login` and `NATTER_PASSWORD` when `password` is given.
    pub async fn start_with(
        nick: &str,
        servers: &[std::net::SocketAddr],
        config_home: &Path,
        password: Option<&str>,
    ) -> Cli {
        let servers: Vec<String> = servers.iter().map(ToString::to_string).collect();
        let mut cmd = tokio::process::Command::new(workspace_bin("natter").await);
        if let Some(p) = password {
            cmd.arg("--login").env("NATTER_PASSWORD", p);
        }
        let mut child = cmd
            .args(["--lines", "--nick", nick, &servers.join(",")])
            .env("RUST_LOG", "warn")
            // No config file of whoever runs the tests may change the nick or rooms.
            .env("XDG_CONFIG_HOME", config_home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start natter");
        let stdin = child.stdin.take().expect("piped stdin");
        let out = capture(child.stdout.take().expect("piped stdout"));
        Cli { child, stdin, out }
    }

    /// Types `line` (chat, or a `/command`).
    pub async fn say(&mut self, line: &str) {
        timeout(STEP, self.stdin.write_all(format!("{line}\n").as_bytes()))
            .await
            .expect("natter reads its stdin")
            .expect("write to natter");
    }

    /// Waits until the CLI has printed exactly `line`.
    pub async fn expect(&self, line: &str) {
        wait_for!(
            format!("the CLI to print {line:?}"),
            self.out.lines().iter().any(|l| l == line).then_some(())
        );
    }
}

/// Starts chromedriver on a port it chooses (`--port=0`) and returns it with that port.
pub fn start_chromedriver() -> (Group, u16) {
    for bin in ["/usr/bin/chromedriver", "/usr/bin/chromium"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: `apt-get install -y chromium chromium-driver` (cargo xtask test does it)"
        );
    }
    // A chromedriver that has not said its port within a step (seen once on a loaded machine)
    // is stopped and started again, at most three times; the failure shows what it printed.
    let mut said = Vec::new();
    for _ in 0..3 {
        let mut child = Group::spawn(
            Command::new("/usr/bin/chromedriver")
                .arg("--port=0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .expect("start chromedriver");
        let stdout = child.0.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "ChromeDriver was started successfully on port 39441."
                // (The line before it says "on port 0".)
                let port = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok());
                if tx.send((line, port)).is_err() {
                    return;
                }
            }
        });
        let deadline = std::time::Instant::now() + STEP;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((_, Some(port))) => return (child, port),
                Ok((line, None)) => said.push(line),
                Err(_) => break,
            }
        }
        said.push("(no port within a step: chromedriver started again)".into());
    }
    panic!("chromedriver did not say which port it listens on: {said:?}");
}

/// A headless Chromium session through the chromedriver on `port`, with its profile in
/// `profile` and `extra` arguments (e.g. which certificate key to trust).
pub async fn open_browser(port: u16, profile: &Path, extra: &[String]) -> Browser {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(extra.iter().cloned());
    // Some flags (a trusted key's hash) are honoured only with a profile of one's own.
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    timeout(
        STEP,
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .expect("chromedriver answers in time")
    .expect("a WebDriver session with Chromium")
}

/// Runs `script` in the page and returns its value.
pub async fn js(b: &Browser, script: &str) -> Json {
    timeout(STEP, b.execute(script, vec![]))
        .await
        .expect("script finishes in time")
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// The page's connection state (`natterDebug.state()`), or `no page` before it has loaded.
pub async fn conn_state(b: &Browser) -> String {
    js(
        b,
        "return window.natterDebug ? window.natterDebug.state() : 'no page';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The text of the first element `css` selects ('' if none).
pub async fn text_of(b: &Browser, css: &str) -> String {
    let script =
        format!("const e = document.querySelector('{css}'); return e ? e.textContent : '';");
    js(b, &script).await.as_str().unwrap_or_default().to_owned()
}

/// Whether the nick prompt is open.
pub async fn dialog_open(b: &Browser) -> bool {
    js(b, "return document.getElementById('nick-dialog').open;")
        .await
        .as_bool()
        .unwrap_or(false)
}

/// Waits for the wasm to load and the nick prompt to open.
pub async fn nick_prompt(b: &Browser) -> fantoccini::elements::Element {
    let input = b
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("nick-input"))
        .await
        .expect("the nick prompt");
    wait_for!(
        "the wasm to load and the nick prompt to open",
        dialog_open(b).await.then_some(())
    );
    input
}

/// Clicks the nick prompt's join button.
pub async fn click_join(b: &Browser) {
    b.find(Locator::Id("nick-go"))
        .await
        .expect("the join button")
        .click()
        .await
        .expect("click join");
}

/// Opens `url`, and signs in at the nick prompt as `nick` (`None`: the nick the prompt
/// offers); returns once the page is connected.
pub async fn open_page_as(b: &Browser, url: &str, nick: Option<&str>) {
    timeout(STEP, b.goto(url))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let input = nick_prompt(b).await;
    if let Some(nick) = nick {
        input.clear().await.expect("clear the nick");
        input.send_keys(nick).await.expect("type a nick");
    }
    click_join(b).await;
    wait_for!(
        "the page to connect",
        (conn_state(b).await == "connected").then_some(())
    );
}

/// `(nick, text)` of every chat line (say and /me) in a conversation's log, in order; not the
/// lines typed and not yet echoed by the server.
pub async fn chat(b: &Browser, conv: &str) -> Vec<(String, String)> {
    let script = format!(
        r#"return [...document.querySelectorAll('.log[data-conv="{conv}"] :is(.line.say, .line.act):not(.outgoing)')]
             .map(l => [l.querySelector('.nick').textContent, l.querySelector('.text').textContent]);"#
    );
    let v = js(b, &script).await;
    v.as_array()
        .expect("an array")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_owned(),
                pair[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The page's chat lines in `#lobby`, as `<nick> text`.
pub async fn page_said(b: &Browser) -> Vec<String> {
    chat(b, "#lobby")
        .await
        .into_iter()
        .map(|(n, t)| format!("<{n}> {t}"))
        .collect()
}

/// The text of every line of conversation `conv`'s log (notices and refusals too).
pub async fn log_of(b: &Browser, conv: &str) -> Vec<String> {
    let script = format!(
        "return window.natterDebug ? window.natterDebug.lines({}) : [];",
        Json::from(conv)
    );
    js(b, &script)
        .await
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Opens `page`, and registers `nick` with `password` in the sign-in dialog, "Remember me"
/// ticked; returns once the dialog has closed (it stays open until the server takes the
/// registration: the page behind it cannot be typed into before).
pub async fn open_and_register_remembered(b: &Browser, page: &str, nick: &str, password: &str) {
    timeout(STEP, b.goto(page))
        .await
        .expect("page loads in time")
        .expect("open the page");
    let input = nick_prompt(b).await;
    input.clear().await.expect("clear the nick");
    input.send_keys(nick).await.expect("type a nick");
    let script = format!(
        "document.getElementById('password-input').value = {}; \
         document.getElementById('remember-input').checked = true; \
         document.getElementById('register').click();",
        Json::from(password)
    );
    js(b, &script).await;
    wait_for!(
        format!("the dialog to close, {nick} registered"),
        (!dialog_open(b).await).then_some(())
    );
}

/// Types `line` into the input and sends it.
pub async fn type_line(b: &Browser, line: &str) {
    let input = b.find(Locator::Id("input")).await.expect("the input");
    input.send_keys(line).await.expect("typing");
    b.find(Locator::Css("#input-form button"))
        .await
        .expect("the send button")
        .click()
        .await
        .expect("clicking send");
}

/// A binary of the workspace's package of the same name: the one cargo built into this
/// target directory if it is there, else built in a target directory of its own (the outer
/// `cargo test` holds the lock on the usual one).
pub async fn workspace_bin(name: &str) -> PathBuf {
    let bin = target_dir().join("debug").join(name);
    if bin.is_file() {
        return bin;
    }
    let target = repo().join(format!("target/e2e-{name}"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = timeout(
        Duration::from_secs(900),
        tokio::process::Command::new(cargo)
            .args(["build", "-p", name, "--target-dir"])
            .arg(&target)
            .current_dir(repo())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .unwrap_or_else(|_| panic!("cargo build -p {name} finishes within 15 minutes"))
    .expect("cargo runs");
    assert!(status.success(), "cargo build -p {name} failed");
    target.join("debug").join(name)
}

/// A person on `nc` at `addr`, renamed to `nick`, in `#lobby` (where text users start): what
/// it writes, and what it has been sent.
pub async fn nc(
    addr: std::net::SocketAddr,
    nick: &str,
) -> (tokio::net::tcp::OwnedWriteHalf, Captured) {
    let stream = timeout(STEP, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect to the server");
    let (read, mut write) = stream.into_split();
    let out = capture(read);
    wait_for!("the text-mode welcome", out.has("Welcome to natter"));
    write
        .write_all(format!("/nick {nick}\r\n").as_bytes())
        .await
        .expect("write to the server");
    wait_for!("the new nick", out.has(&format!("known as {nick}")));
    (write, out)
}

/// Runs `scenario` (the browser, the page's address, the server's address) against an
/// in-process natter-server with `config` and natter-bridge, within `limit`, and stops
/// everything whatever the scenario did.
pub async fn with_page_within<F, Fut>(
    limit: Duration,
    tag: &str,
    config: natter_server::ServerConfig,
    scenario: F,
) where
    F: FnOnce(Browser, String, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_page_and_server_within(limit, tag, config, |b, page, server| {
        scenario(b, page, server.addr())
    })
    .await;
}

/// The in-process natter-server of [`with_page_and_server_within`], which the scenario may stop
/// when it wants ([`TestServer::stop`]); whatever the scenario did, it is stopped after.
#[derive(Clone)]
pub struct TestServer {
    addr: std::net::SocketAddr,
    server: Arc<tokio::sync::Mutex<Option<natter_server::Server>>>,
}

impl TestServer {
    /// Where it listens (natter's own protocol).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops it (the bridge stays, and cannot reach it); nothing if it was stopped already.
    pub async fn stop(&self) {
        let server = self.server.lock().await.take();
        if let Some(server) = server {
            timeout(STEP, server.shutdown())
                .await
                .expect("the server stops in time")
                .expect("stop natter-server");
        }
    }
}

/// As [`with_page_within`], the scenario given the server itself, to stop when it wants.
pub async fn with_page_and_server_within<F, Fut>(
    limit: Duration,
    tag: &str,
    config: natter_server::ServerConfig,
    scenario: F,
) where
    F: FnOnce(Browser, String, TestServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let www = www_dir();
    let server = natter_server::start(config)
        .await
        .expect("start natter-server");
    let addr = *server
        .local_addrs()
        .first()
        .expect("the server listens somewhere");
    let server = TestServer {
        addr,
        server: Arc::new(tokio::sync::Mutex::new(Some(server))),
    };
    let bridge = natter_bridge::start(natter_bridge::BridgeConfig::local_test(addr, www))
        .await
        .expect("start natter-bridge");
    let (driver, port) = start_chromedriver();
    let profile = TempDir::new(&format!("{tag}-chromium"));
    let browser = open_browser(port, &profile.0, &[]).await;
    let page = format!("http://{}/", bridge.local_addr());
    let mut task = tokio::spawn(scenario(browser.clone(), page, server.clone()));
    let outcome = timeout(limit, &mut task).await;
    task.abort();
    let _ = timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    // Stopped whatever the scenario did (a scenario that panicked holding the lock let it go).
    let left = server.server.lock().await.take();
    if let Some(left) = left {
        let _ = timeout(Duration::from_secs(10), left.shutdown()).await;
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => panic!("the scenario did not finish within {limit:?}"),
    }
}
