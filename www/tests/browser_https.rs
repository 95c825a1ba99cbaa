//! The page over https in a real headless Chromium: natter-bridge serves it with a certificate
//! from a throwaway CA (rcgen), Chromium trusts that certificate's key through
//! `--ignore-certificate-errors-spki-list` (the key's SHA-256, as the driver can pass it), the
//! page (asked for at its http:// address, which the bridge sends on to https) opens its socket
//! as wss by itself and chats with a person on `nc`. A browser given
//! another key's hash gets no page: the test checks trust, not just TLS.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use natter_tls::dev_ca::DevCa;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// Chromium trusting the certificate whose key hashes to `spki` (base64 SHA-256).
async fn open_trusting(port: u16, profile: &Path, spki: &str) -> Browser {
    open_browser(
        port,
        profile,
        &[format!("--ignore-certificate-errors-spki-list={spki}")],
    )
    .await
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
    // What a person types without the scheme's s: the bridge sends it to the https page.
    let typed = format!("http://{}/?nick=webby", bridge.local_addr());

    let (driver, port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let b = open_trusting(port, profile.path(), &leaf.spki_sha256_base64()).await;
    let outcome = tokio::spawn({
        let b = b.clone();
        async move {
            timeout(STEP, b.goto(&typed))
                .await
                .expect("page loads in time")
                .expect("open the page over https, from its http:// address");
            nick_prompt(&b).await;
            click_join(&b).await;
            wait_for!(
                "the page to connect over wss",
                STEP,
                (conn_state(&b).await == "connected").then_some(())
            );
            let scheme = js(&b, "return location.protocol;").await;
            assert_eq!(scheme, json!("https:"), "sent on from http://");

            // A person on nc in #lobby.
            let (read, mut write) = TcpStream::connect(server_addr).await.unwrap().into_split();
            let lines = capture(read);
            wait_for!("nc's welcome", STEP, lines.has("Welcome to natter"));

            type_line(&b, "hello over wss").await;
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
    let b2 = open_trusting(port, profile2.path(), &other.spki_sha256_base64()).await;
    let untrusted = tokio::spawn({
        let b2 = b2.clone();
        async move {
            // Either the navigation fails, or it lands on Chromium's certificate error page.
            let _ = timeout(STEP, b2.goto(&url)).await;
            sleep(Duration::from_millis(500)).await;
            conn_state(&b2).await
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
