//! Clustered natter (issue 23) with the page in headless Chromium: a nats-server with
//! JetStream, three natter-server processes, natter-bridge given all three addresses, a `natter`
//! line-mode user and a person on `nc` on other nodes. Every line reaches every member once, in
//! one order; then the page's node is killed (SIGKILL) in the middle of a stream of
//! acknowledged lines: the bridge closes the page's socket, the page reconnects, the bridge
//! relays it to the next node, and the page shows every acknowledged line exactly once, as
//! does history.
//!
//! Needs the built page: `cargo xtask web` (or `cargo xtask test`) puts it in `<target>/www/`;
//! and nats-server (`cargo xtask test` installs it).

#[macro_use]
mod common;

use common::*;
use fantoccini::Client as Browser;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// The whole scenario must finish within this (a hung browser must not hang CI).
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

use natter_cluster::test_server::{NatsServer as Nats, NodeProcess as Node};

/// The chat lines (`<nick> text`) of a CLI's or nc's output in `#lobby`, in order.
fn said(out: &Captured) -> Vec<String> {
    out.lines()
        .iter()
        .filter_map(|l| {
            let l = l.strip_prefix("[#lobby] ").unwrap_or(l);
            l.starts_with('<').then(|| l.to_owned())
        })
        .collect()
}

/// `lines` restricted to those in `keep`, in their order.
fn only(lines: &[String], keep: &[String]) -> Vec<String> {
    lines.iter().filter(|l| keep.contains(l)).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_cli_and_nc_on_three_nodes_and_the_pages_node_killed() {
    let www = www_dir();
    let nats = Nats::start();
    let bin = workspace_bin("natter-server").await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        // The bridge's secret (`BridgeConfig::local_test`): it names each browser's address.
        let secret = ("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET);
        nodes.push(Node::start(&bin, &nats, &[secret]).await);
    }
    // The bridge knows all three nodes, the page's node first.
    let mut bc = natter_bridge::BridgeConfig::local_test(nodes[0].addr, www);
    bc.more_servers = vec![nodes[1].addr, nodes[2].addr];
    let bridge = natter_bridge::start(bc).await.expect("start natter-bridge");
    let (driver, port) = start_chromedriver();
    let profile = TempDir::new("natter-cluster-chromium");
    let browser = open_browser(port, &profile.0, &[]).await;
    let page = format!("http://{}/", bridge.local_addr());
    let mut task = tokio::spawn(scenario(browser.clone(), page, nodes));
    let outcome = timeout(SCENARIO_LIMIT, &mut task).await;
    task.abort();
    let _ = timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    let _ = timeout(Duration::from_secs(10), bridge.shutdown()).await;
    drop(nats);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the scenario task failed: {e}"),
        Err(_) => panic!("the scenario did not finish within {SCENARIO_LIMIT:?}"),
    }
}

async fn scenario(browser: Browser, page: String, mut nodes: Vec<Node>) {
    let b = &browser;
    let a: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    open_page_as(b, &page, Some("webby")).await;
    let (mut nc_w, nc_out) = nc(a[2], "netcat").await;
    let home = TempDir::new("natter-cluster-cli");
    let mut cli = Cli::start_with("clint", &[a[1], a[2], a[0]], &home.0, None).await;
    wait_for!("the CLI in #lobby", cli.out.has("-- you are in #lobby "));
    wait_for!("the page to list netcat and clint", {
        let members = text_of(b, "#member-list").await;
        (members.contains("netcat") && members.contains("clint")).then_some(())
    });

    // Everyone talks at once.
    let mut all = Vec::new();
    for i in 0..3 {
        type_line(b, &format!("page {i}")).await;
        cli.stdin
            .write_all(format!("cli {i}\n").as_bytes())
            .await
            .expect("write to natter");
        nc_w.write_all(format!("nc {i}\r\n").as_bytes())
            .await
            .expect("write to the node");
        all.push(format!("<webby> page {i}"));
        all.push(format!("<clint> cli {i}"));
        all.push(format!("<netcat> nc {i}"));
    }
    let at_cli = wait_for!("the CLI to hear everyone", {
        let s = only(&said(&cli.out), &all);
        (s.len() >= all.len()).then_some(s)
    });
    let at_page = wait_for!("the page to show everyone", {
        let s = only(&page_said(b).await, &all);
        (s.len() >= all.len()).then_some(s)
    });
    let nc_hears: Vec<String> = all
        .iter()
        .filter(|l| !l.starts_with("<netcat>"))
        .cloned()
        .collect();
    let at_nc = wait_for!("nc to hear the others", {
        let s = only(&said(&nc_out), &nc_hears);
        (s.len() >= nc_hears.len()).then_some(s)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for l in &all {
        assert_eq!(
            at_cli.iter().filter(|x| *x == l).count(),
            1,
            "{l}: {at_cli:#?}"
        );
        assert_eq!(
            at_page.iter().filter(|x| *x == l).count(),
            1,
            "{l}: {at_page:#?}"
        );
    }
    assert_eq!(
        only(&page_said(b).await, &all).len(),
        all.len(),
        "nothing more"
    );
    // One order: the CLI's (it prints in seq order), at nc, and among others' lines on the
    // page (where one's own line sits is the page's choice).
    assert_eq!(at_nc, only(&at_cli, &nc_hears));
    let others: Vec<String> = all
        .iter()
        .filter(|l| !l.starts_with("<webby>"))
        .cloned()
        .collect();
    assert_eq!(only(&at_page, &others), only(&at_cli, &others));

    // A stream of lines from the CLI, each sent once the last is acknowledged; the page's node
    // dies in the middle of it.
    const SENT: usize = 20;
    let stream: Vec<String> = (0..SENT).map(|i| format!("<clint> s{i:02}")).collect();
    for i in 0..SENT {
        cli.stdin
            .write_all(format!("s{i:02}\n").as_bytes())
            .await
            .expect("write to natter");
    }
    wait_for!("a few acknowledged", cli.out.has("[#lobby] <clint> s05"));
    nodes[0].kill().await;
    wait_for!(
        "every line acknowledged",
        cli.out.has("[#lobby] <clint> s19")
    );

    // The page is back, through the bridge's next address, with every line once, in order.
    wait_for!("the page to show the last line", {
        let s = page_said(b).await;
        (s.contains(&stream[SENT - 1]) && conn_state(b).await == "connected").then_some(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = page_said(b).await;
    assert_eq!(
        only(&shown, &stream),
        stream,
        "each once, in order: {shown:#?}"
    );
    for l in &all {
        assert_eq!(
            shown.iter().filter(|x| *x == l).count(),
            1,
            "{l} again: {shown:#?}"
        );
    }
    let seqs = js(
        b,
        r##"return [...document.querySelectorAll('.log[data-conv="#lobby"] .line[data-seq]')].map(l => l.dataset.seq);"##,
    )
    .await;
    let seqs: Vec<&str> = seqs
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for (i, s) in seqs.iter().enumerate() {
        assert!(!seqs[..i].contains(s), "seq {s} shows twice");
    }
    // And it talks again: the others hear it once.
    type_line(b, "back on another node").await;
    wait_for!(
        "the CLI to hear the page again",
        cli.out.has("> back on another node")
    );
    wait_for!(
        "nc to hear the page again",
        nc_out.has("> back on another node")
    );
    assert_eq!(nc_out.count("> back on another node"), 1);
    assert_eq!(only(&said(&nc_out), &stream), stream);

    // History: someone new on the third node gets each line once.
    let (_late_w, late) = nc(a[2], "late").await;
    wait_for!(
        "the late user's history",
        late.has("-- (end of recent messages)")
    );
    assert_eq!(only(&said(&late), &stream), stream, "{:#?}", late.lines());

    drop(cli.stdin);
    let status = timeout(STEP, cli.child.wait())
        .await
        .expect("natter exits in time")
        .expect("wait for natter");
    assert!(status.success(), "natter settles and exits");
}
