//! The page and an IRC client in one room: an in-process natter-server (with an IRC listener)
//! and natter-bridge on 127.0.0.1:0, the page in headless Chromium, and a raw IRC client over
//! TCP. Messages, actions, topics, joins and nick changes go both ways and read right on each
//! side, and an IRC notice shows as a notice. (irssi and WeeChat with nc and the CLI:
//! `native-client/tests/irc_clients.rs`.)
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `target/www/`.

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(180);

/// Whether the page's `#lobby` shows a chat line (say or /me) of `nick` with `text`.
async fn shows(b: &Browser, nick: &str, text: &str) -> Option<()> {
    let script = r##"return [...document.querySelectorAll('.log[data-conv="#lobby"] :is(.line.say, .line.act):not(.pending)')]
         .map(l => [l.querySelector('.nick').textContent, l.querySelector('.text').textContent]);"##;
    let lines = timeout(STEP, b.execute(script, vec![]))
        .await
        .expect("script in time")
        .expect("script runs");
    lines
        .as_array()?
        .iter()
        .any(|p| p[0].as_str() == Some(nick) && p[1].as_str() == Some(text))
        .then_some(())
}

/// Whether the page's `#lobby` shows a notice line (`said-notice`) of `nick` with `text`, its
/// nick drawn between dashes (`-ircy-`) by the page's style, and no say or action with that text.
async fn notice_shown(b: &Browser, nick: &str, text: &str) -> Option<()> {
    let script = r##"const log = document.querySelector('.log[data-conv="#lobby"]');
         if (!log) return [[], 0];
         const nick = l => {
           const n = l.querySelector('.nick');
           const s = p => getComputedStyle(n, p).content.replaceAll('"', '');
           return s('::before') + n.textContent + s('::after');
         };
         return [[...log.querySelectorAll('.line.said-notice')]
           .map(l => [nick(l), l.querySelector('.text').textContent]),
           [...log.querySelectorAll('.line.say, .line.act')]
           .filter(l => l.querySelector('.text').textContent === arguments[0]).length];"##;
    let got = timeout(STEP, b.execute(script, vec![text.into()]))
        .await
        .expect("script in time")
        .expect("script runs");
    let shown = format!("-{nick}-");
    let notices = got.get(0)?.as_array()?;
    let as_say = got.get(1)?.as_u64()?;
    assert_eq!(as_say, 0, "the notice is shown as a say or an action too");
    notices
        .iter()
        .any(|p| p[0].as_str() == Some(shown.as_str()) && p[1].as_str() == Some(text))
        .then_some(())
}

/// A raw IRC client.
struct Irc {
    reader: tokio::io::BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    seen: Vec<String>,
}

impl Irc {
    async fn connect(addr: SocketAddr, nick: &str) -> Irc {
        let stream = timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (r, w) = stream.into_split();
        let mut irc = Irc {
            reader: tokio::io::BufReader::new(r),
            writer: w,
            seen: Vec::new(),
        };
        irc.send(&format!("NICK {nick}")).await;
        irc.send("USER irc 0 * :an IRC user").await;
        irc.expect(&[" 001 "]).await;
        irc
    }

    async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("IRC write");
    }

    /// Waits for a line containing every one of `parts`.
    async fn expect(&mut self, parts: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let mut buf = String::new();
            match tokio::time::timeout_at(deadline, self.reader.read_line(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    let line = buf.trim_end().to_owned();
                    self.seen.push(line.clone());
                    if parts.iter().all(|p| line.contains(p)) {
                        return line;
                    }
                }
                other => panic!(
                    "IRC: no line with {parts:?} ({other:?}); saw {:#?}",
                    self.seen
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_an_irc_client_talk_both_ways() {
    let www = www_dir();
    let (driver, port) = start_chromedriver();
    let profile = TempDir::new("natter-irc-chromium");
    let mut config = natter_server::ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let server = natter_server::start(config)
        .await
        .expect("start natter-server");
    let irc_addr = server.irc_addrs()[0];
    let bridge = natter_bridge::start(natter_bridge::BridgeConfig::local_test(
        server.local_addrs()[0],
        www,
    ))
    .await
    .expect("start natter-bridge");
    let browser = open_browser(port, &profile.0, &[]).await;
    let page = format!("http://{}/", bridge.local_addr());
    let mut task = tokio::spawn(scenario(browser.clone(), page, irc_addr));
    let outcome = timeout(SCENARIO_LIMIT, &mut task).await;
    task.abort();
    let _ = timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    let _ = timeout(Duration::from_secs(10), server.shutdown()).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => panic!("the scenario did not finish within {SCENARIO_LIMIT:?}"),
    }
}

async fn scenario(browser: Browser, page: String, irc_addr: SocketAddr) {
    let b = &browser;
    open_page_as(b, &page, Some("webby")).await;
    wait_for!(
        "the page in #lobby",
        text_of(b, "#member-list")
            .await
            .contains("webby")
            .then_some(())
    );

    // The IRC client joins: it sees the page's user, and the page sees it arrive.
    let mut irc = Irc::connect(irc_addr, "ircy").await;
    irc.send("JOIN #lobby").await;
    let names = irc.expect(&[" 353 ircy = #lobby :"]).await;
    assert!(names.contains("webby"), "{names}");
    wait_for!(
        "ircy in the page's member list",
        text_of(b, "#member-list")
            .await
            .contains("ircy")
            .then_some(())
    );

    // Messages and actions both ways.
    type_line(b, "hello from the page").await;
    irc.expect(&[":webby!webby@natter PRIVMSG #lobby :hello from the page"])
        .await;
    irc.send("PRIVMSG #lobby :hello from IRC").await;
    wait_for!(
        "the IRC line on the page",
        shows(b, "ircy", "hello from IRC").await
    );
    type_line(b, "/me waves from the page").await;
    irc.expect(&["PRIVMSG #lobby :\x01ACTION waves from the page\x01"])
        .await;
    irc.send("PRIVMSG #lobby :\x01ACTION waves back\x01").await;
    wait_for!(
        "the IRC action on the page",
        shows(b, "ircy", "waves back").await
    );

    // A NOTICE stays a notice: the page shows it as one (`-ircy-`, dimmed), not as a say.
    irc.send("NOTICE #lobby :heads up from IRC").await;
    wait_for!(
        "the IRC notice on the page, as a notice",
        notice_shown(b, "ircy", "heads up from IRC").await
    );

    // And the other way: `/notice` typed on the page is a NOTICE on IRC, to the room and to a
    // nick, and the page shows its own room notice as a notice (once echoed, not as a say).
    type_line(b, "/notice #lobby heads up from the page").await;
    irc.expect(&[":webby!webby@natter NOTICE #lobby :heads up from the page"])
        .await;
    wait_for!(
        "the page's own notice on the page, as a notice",
        notice_shown(b, "webby", "heads up from the page").await
    );
    type_line(b, "/notice ircy only for you").await;
    irc.expect(&[":webby!webby@natter NOTICE ircy :only for you"])
        .await;

    // Topics both ways.
    irc.send("TOPIC #lobby :set over IRC").await;
    wait_for!(
        "the IRC topic in the page header",
        text_of(b, "#topic")
            .await
            .contains("set over IRC")
            .then_some(())
    );
    type_line(b, "/topic set on the page").await;
    irc.expect(&[":webby!webby@natter TOPIC #lobby :set on the page"])
        .await;

    // Nick changes both ways.
    irc.send("NICK ircy2").await;
    irc.expect(&[":ircy!ircy@natter NICK :ircy2"]).await;
    wait_for!(
        "the new IRC nick in the member list",
        text_of(b, "#member-list")
            .await
            .contains("ircy2")
            .then_some(())
    );
    type_line(b, "/nick webster").await;
    irc.expect(&[":webby!webby@natter NICK :webster"]).await;

    // A direct message from IRC reaches the page's user, and a part shows on the page.
    irc.send("PRIVMSG webster :just for you").await;
    wait_for!(
        "the DM on the page",
        text_of(b, "#logs")
            .await
            .contains("just for you")
            .then_some(())
    );
    irc.send("PART #lobby :bye page").await;
    irc.expect(&[":ircy2!ircy2@natter PART #lobby :bye page"])
        .await;
    wait_for!(
        "ircy2 gone from the member list",
        (!text_of(b, "#member-list").await.contains("ircy2")).then_some(())
    );
}
