//! End to end through the real natter-server: browsers (core's `Session` with
//! `Transport::Messages`, as the page runs it) chat through the bridge, and reconnect after the
//! server restarts.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use natter_bridge::BridgeConfig;
use natter_core::Millis;
use natter_core::session::{ConnState, Event, Session, SessionConfig, Transport};
use natter_core::types::{Nick, RoomName};
use natter_core::wire::EventKind;
use natter_server::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A browser as the page drives it: the Session decides, this loop moves messages and time.
struct WebUser {
    session: Session,
    ws: Option<Browser>,
    bridge: SocketAddr,
    t0: Instant,
    events: Vec<Event>,
}

impl WebUser {
    fn new(nick: &str, bridge: SocketAddr, seed: u64) -> WebUser {
        let t0 = Instant::now();
        let config = SessionConfig {
            nick: Nick::new(nick).unwrap(),
            rooms: vec![RoomName::lobby()],
            transport: Transport::Messages,
            seed,
        };
        WebUser {
            session: Session::new(config, Millis(0)),
            ws: None,
            bridge,
            t0,
            events: Vec::new(),
        }
    }

    fn now(&self) -> Millis {
        Millis(self.t0.elapsed().as_millis() as u64)
    }

    /// Sends what the session has to send.
    async fn flush(&mut self) {
        while let Some(msg) = self.session.poll_transmit() {
            if let Some(ws) = &mut self.ws {
                if within("send", ws.send(Message::Binary(msg))).await.is_err() {
                    self.ws = None;
                    self.session.handle_disconnected("send failed", self.now());
                }
            }
        }
    }

    /// Runs the session until `done` holds for an event it produced (panics after [`STEP`]).
    /// Everything pending is handled and sent before it returns.
    async fn run_until(&mut self, what: &str, done: impl Fn(&Event) -> bool) {
        let deadline = Instant::now() + STEP;
        loop {
            self.flush().await;
            let mut hit = false;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    Event::Connect => {
                        let now = self.now();
                        match connect_origin(self.bridge, Some(&format!("http://{}", self.bridge)))
                            .await
                        {
                            Ok(ws) => {
                                self.ws = Some(ws);
                                self.session.handle_connected(now);
                            }
                            Err(e) => self.session.handle_disconnected(&e.to_string(), now),
                        }
                    }
                    Event::Close => {
                        // "Once the bytes already polled are written."
                        self.flush().await;
                        if let Some(mut ws) = self.ws.take() {
                            let _ = within("close", ws.close(None)).await;
                        }
                    }
                    ev => {
                        hit |= done(&ev);
                        self.events.push(ev);
                    }
                }
            }
            self.flush().await;
            if hit {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what}; events so far: {:#?}",
                self.events
            );
            let wake = self
                .session
                .poll_timeout()
                .map(|t| self.t0 + Duration::from_millis(t.0))
                .unwrap_or(deadline)
                .min(deadline);
            let next = async {
                match &mut self.ws {
                    Some(ws) => ws.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = next => {
                    let now = self.now();
                    match m {
                        Some(Ok(Message::Binary(b))) => self.session.handle_message(&b, now),
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            self.ws = None;
                            self.session.handle_disconnected("websocket closed", now);
                        }
                        Some(Ok(_)) => {}
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
            }
        }
    }

    async fn say(&mut self, line: &str) {
        let now = self.now();
        self.session.handle_input(line, now);
        self.flush().await;
    }
}

fn said(ev: &Event, from: &str, text: &str) -> bool {
    matches!(ev, Event::Room(r)
        if r.from.as_str() == from
            && matches!(&r.kind, EventKind::Say { text: t, .. } if t.as_str() == text))
}

fn room_join(ev: &Event, who: &str) -> bool {
    matches!(ev, Event::Room(r) if r.from.as_str() == who && r.kind == EventKind::Join)
}

fn joined(ev: &Event) -> bool {
    matches!(ev, Event::Joined { .. })
}

#[tokio::test]
async fn two_browsers_chat_through_the_real_server() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let bridge = bridge_with(BridgeConfig::local_test(
        server.local_addrs()[0],
        "/nonexistent".into(),
    ))
    .await;
    let mut alice = WebUser::new("alice", bridge.local_addr(), 1);
    let mut bob = WebUser::new("bob", bridge.local_addr(), 2);
    alice.run_until("alice joins", joined).await;
    bob.run_until("bob joins", joined).await;

    alice.say("hello from the browser").await;
    bob.run_until("bob hears alice", |e| {
        said(e, "alice", "hello from the browser")
    })
    .await;
    bob.say("hi alice <script>").await;
    alice
        .run_until("alice hears bob", |e| said(e, "bob", "hi alice <script>"))
        .await;
    // Her own line came back once, in order, before bob's answer.
    let own: Vec<_> = alice
        .events
        .iter()
        .filter(|e| said(e, "alice", "hello from the browser"))
        .collect();
    assert_eq!(own.len(), 1);

    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    within("server shutdown", server.shutdown()).await.unwrap();
}

#[tokio::test]
async fn browsers_reconnect_when_the_server_comes_back() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let server_addr = server.local_addrs()[0];
    let bridge = bridge_with(BridgeConfig::local_test(server_addr, "/nonexistent".into())).await;
    let mut alice = WebUser::new("alice", bridge.local_addr(), 3);
    let mut bob = WebUser::new("bob", bridge.local_addr(), 4);
    alice.run_until("alice joins", joined).await;
    bob.run_until("bob joins", joined).await;

    // Server gone: the bridge closes the WebSockets and the sessions start reconnecting.
    within("server shutdown", server.shutdown()).await.unwrap();
    let reconnecting = |e: &Event| matches!(e, Event::State(ConnState::Reconnecting { .. }));
    alice.run_until("alice notices", reconnecting).await;
    bob.run_until("bob notices", reconnecting).await;
    // While it is down, attempts through the bridge fail cleanly and keep being retried.
    let attempts = |u: &WebUser| {
        u.events
            .iter()
            .filter(|e| matches!(e, Event::State(ConnState::Reconnecting { .. })))
            .count()
    };
    let before = attempts(&alice);
    alice
        .run_until(
            "alice retries",
            |e| matches!(e, Event::State(ConnState::Reconnecting { attempt, .. }) if *attempt >= 2),
        )
        .await;
    assert!(attempts(&alice) > before);

    // Back on the same address: both get in again and talk.
    let mut config = ServerConfig::local_test();
    config.listen = vec![server_addr];
    let server = natter_server::start(config).await.unwrap();
    // (A fresh server cannot resume the sessions; they start anew and rejoin their rooms.)
    alice
        .run_until("alice rejoins", |e| room_join(e, "alice"))
        .await;
    bob.run_until("bob rejoins", |e| room_join(e, "bob")).await;
    alice.say("back again").await;
    bob.run_until("bob hears alice", |e| said(e, "alice", "back again"))
        .await;

    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    within("server shutdown", server.shutdown()).await.unwrap();
}
