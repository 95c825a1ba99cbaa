//! A lossy link delays the client's first bytes past the server's detection wait: the server
//! greets the connection as a person on `nc`, which a binary client cannot read. The client sees
//! it, says so, reconnects at once (no backoff) and gets in on the next connection.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Client, server_with};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay that holds the client's bytes of the first connection through it for `delay`
/// before passing them on (what a lossy link's retransmissions do); later connections pass at
/// once. Dropped with its task, which aborts every relayed connection.
struct SlowFirst {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowFirst {
    async fn start(to: SocketAddr, delay: Duration) -> SlowFirst {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
                conns.spawn(relay(inbound, to, first.then_some(delay)));
                while conns.try_join_next().is_some() {}
            }
        });
        SlowFirst {
            addr,
            connections,
            task,
        }
    }
}

impl Drop for SlowFirst {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(inbound: TcpStream, to: SocketAddr, delay: Option<Duration>) {
    let Ok(outbound) = TcpStream::connect(to).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = inbound.into_split();
    let (mut server_rx, mut server_tx) = outbound.into_split();
    let up = async {
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        tokio::io::copy(&mut client_rx, &mut server_tx).await
    };
    let down = tokio::io::copy(&mut server_rx, &mut client_tx);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preamble_delayed_past_the_detection_wait_still_ends_up_connected() {
    let wait = Duration::from_millis(200);
    let (server, addr) = server_with(|hub| {
        hub.text_detect_wait = natter_core::Millis(wait.as_millis() as u64);
    })
    .await;
    let relay = SlowFirst::start(addr, wait * 4).await;
    let started = Instant::now();
    let mut alice = Client::start("alice", relay.addr, &[]);
    let notice = alice
        .expect_where("the text greeting noticed", |l| {
            l.contains("took us for a text client")
        })
        .await;
    assert!(notice.contains("reconnecting"), "{notice}");
    alice.expect("-- connected as alice").await;
    alice.expect_containing("-- you are in #lobby ").await;
    // Greeted as text after the 200 ms wait, then straight back in: no backoff, and never the
    // 800 ms the first connection's bytes were held.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(relay.connections.load(Ordering::SeqCst), 2);
    assert!(
        !alice.seen.iter().any(|l| l.contains("bad data")),
        "{:#?}",
        alice.seen
    );
    // It works as any session does from there.
    alice.send("made it").await;
    alice.expect("[#lobby] <alice> made it").await;
    alice.close_stdin();
    assert!(alice.exit_status().await.success());
    drop(relay);
    server.shutdown().await.expect("server shuts down");
}
