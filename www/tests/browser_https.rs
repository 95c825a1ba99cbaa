//! The page over https in a real headless Chromium: natter-bridge serves it with a certificate
//! from a throwaway CA (rcgen), Chromium trusts that certificate's key through
//! `--ignore-certificate-errors-spki-list` (the key's SHA-256, as the driver can pass it), the
//! page opens its socket as wss by itself and chats with a person on `nc`. A browser given
//! another key's hash gets no page: the test checks trust, not just TLS.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use natter_tls::dev_ca::DevCa;
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// One step (the page loading, a line arriving) must happen within this.
const STEP: Duration = Duration::from_secs(30);

/// Cargo's target directory (this test is `<target>/debug/deps/browser_https-<hash>`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .expect("the test binary lives in the target directory")
}

fn www_dir() -> PathBuf {
    let dir = target_dir().join("www");
    assert!(
        dir.join("index.html").is_file() && dir.join("natter_web_bg.wasm").is_file(),
        "{} has no built page: run `cargo xtask web` (or `cargo xtask test`) first",
        dir.display()
    );
    dir
}

macro_rules! wait_for {
    ($what:expr, $limit:expr, $body:expr) => {{
        let limit: Duration = $limit;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = $body {
                break v;
            }
            if Instant::now() > deadline {
                panic!("timed out after {limit:?} waiting for {}", $what);
            }
            sleep(Duration::from_millis(100)).await;
        }
    }};
}

/// chromedriver in its own process group, killed with the group on drop (Chromium and its
/// helpers too).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // Our own group's id, never 0 or 1 (that would be us, or everything).
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

fn start_chromedriver() -> (Group, u16) {
    use std::os::unix::process::CommandExt;
    for bin in ["/usr/bin/chromedriver", "/usr/bin/chromium"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing (cargo xtask install)"
        );
    }
    let mut child = Group(
        Command::new("/usr/bin/chromedriver")
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
            }
        }
    });
    let port = rx
        .recv_timeout(STEP)
        .ok()
        .flatten()
        .expect("chromedriver did not say which port it listens on");
    (child, port)
}

/// Chromium trusting the certificate whose key hashes to `spki` (base64 SHA-256).
async fn open_browser(port: u16, profile: &Path, spki: &str) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                format!("--ignore-certificate-errors-spki-list={spki}"),
                // The flag above is honoured only with a profile directory of one's own.
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
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

async fn js(b: &Browser, script: &str) -> Json {
    timeout(STEP, b.execute(script, vec![]))
        .await
        .expect("script finishes in time")
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

async fn page_state(b: &Browser) -> String {
    js(
        b,
        "return window.natterDebug ? window.natterDebug.state() : 'no page';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Lines a person on `nc` reads, gathered by a task.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Lines {
    fn has(&self, part: &str) -> Option<()> {
        let v = self.0.lock().expect("lines lock");
        v.iter().any(|l| l.contains(part)).then_some(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_over_https_chats_over_wss_and_an_unknown_key_gets_no_page() {
    let www = www_dir();
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("natter test CA").unwrap();
    let leaf = ca.leaf(&["127.0.0.1", "localhost"]).unwrap();
    let (cert, key) = leaf.write(dir.path()).unwrap();
    let other = ca.leaf(&["127.0.0.1"]).unwrap();

    let server = natter_server::start(natter_server::ServerConfig::local_test())
        .await
        .unwrap();
    let server_addr = server.local_addrs()[0];
    let mut bc = natter_bridge::BridgeConfig::local_test(server_addr, www);
    bc.tls = Some(natter_bridge::TlsFiles { cert, key });
    let bridge = natter_bridge::start(bc).await.unwrap();
    let url = format!("https://{}/?nick=webby", bridge.local_addr());

    let (driver, port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let b = open_browser(port, profile.path(), &leaf.spki_sha256_base64()).await;
    let outcome = tokio::spawn({
        let b = b.clone();
        let url = url.clone();
        async move {
            timeout(STEP, b.goto(&url))
                .await
                .expect("page loads in time")
                .expect("open the page over https");
            wait_for!(
                "the nick prompt",
                STEP,
                js(&b, "return document.getElementById('nick-dialog').open;")
                    .await
                    .as_bool()
                    .filter(|open| *open)
            );
            b.find(Locator::Id("nick-go"))
                .await
                .expect("the join button")
                .click()
                .await
                .expect("click join");
            wait_for!(
                "the page to connect over wss",
                STEP,
                (page_state(&b).await == "connected").then_some(())
            );
            let scheme = js(&b, "return location.protocol;").await;
            assert_eq!(scheme, json!("https:"));

            // A person on nc in #lobby.
            let (read, mut write) = TcpStream::connect(server_addr).await.unwrap().into_split();
            let lines = Lines::default();
            let sink = lines.clone();
            tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(l)) = r.next_line().await {
                    sink.0.lock().expect("lines lock").push(l);
                }
            });
            wait_for!("nc's welcome", STEP, lines.has("Welcome to natter"));

            let input = b.find(Locator::Id("input")).await.expect("the input");
            input.send_keys("hello over wss").await.expect("typing");
            b.find(Locator::Css("#input-form button"))
                .await
                .expect("the send button")
                .click()
                .await
                .expect("clicking send");
            wait_for!(
                "nc to hear the page",
                STEP,
                lines.has("<webby> hello over wss")
            );
            write.write_all(b"hello https page\r\n").await.unwrap();
            wait_for!(
                "the page to show nc's line",
                STEP,
                js(
                    &b,
                    "return document.body.innerText.includes('hello https page');"
                )
                .await
                .as_bool()
                .filter(|seen| *seen)
            );
        }
    })
    .await;
    let _ = timeout(Duration::from_secs(10), b.close()).await;

    // Another key's hash: Chromium does not trust the bridge, and shows no page.
    let profile2 = tempfile::tempdir().unwrap();
    let b2 = open_browser(port, profile2.path(), &other.spki_sha256_base64()).await;
    let untrusted = tokio::spawn({
        let b2 = b2.clone();
        async move {
            // Either the navigation fails, or it lands on Chromium's certificate error page.
            let _ = timeout(STEP, b2.goto(&url)).await;
            sleep(Duration::from_millis(500)).await;
            page_state(&b2).await
        }
    })
    .await;
    let _ = timeout(Duration::from_secs(10), b2.close()).await;
    drop(driver);
    let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    let _ = timeout(Duration::from_secs(10), server.shutdown()).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    assert_eq!(
        untrusted.expect("the untrusted visit finishes"),
        "no page",
        "a browser that does not trust the key must not run the page"
    );
}
