//! A chat client for tests, as the page (WebSocket through the bridge) or the CLI (TCP) drives
//! core's `Session`: the session decides, this loop moves bytes and time.

use super::{Browser, connect_origin, within};
use futures_util::{SinkExt, StreamExt};
use natter_core::Millis;
use natter_core::session::{Event, Session, SessionConfig, Transport};
use natter_core::types::{Nick, RoomName};
use natter_core::wire::EventKind;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How a user is connected.
pub enum Link {
    None,
    Ws(Box<Browser>),
    Tcp(TcpStream),
}

/// A client as the CLI or the page drives it: the Session decides, this loop moves bytes and time.
pub struct User {
    pub name: String,
    pub session: Session,
    pub link: Link,
    /// WebSocket through a bridge at this address, or TCP to a server (or proxy) at it.
    pub target: SocketAddr,
    pub transport: Transport,
    /// TCP only: a small receive buffer, so a client that stops reading backs up quickly.
    pub small_rcvbuf: bool,
    /// Stop reading (a member that does not keep up).
    pub paused: bool,
    pub t0: Instant,
    pub events: Vec<Event>,
}

impl User {
    pub fn new(nick: &str, target: SocketAddr, transport: Transport, seed: u64) -> User {
        let config = SessionConfig {
            nick: Nick::new(nick).unwrap(),
            rooms: vec![RoomName::lobby()],
            transport,
            seed,
        };
        User {
            name: nick.to_owned(),
            session: Session::new(config, Millis(0)),
            link: Link::None,
            target,
            transport,
            small_rcvbuf: false,
            paused: false,
            t0: Instant::now(),
            events: Vec::new(),
        }
    }

    pub fn now(&self) -> Millis {
        Millis(self.t0.elapsed().as_millis() as u64)
    }

    pub fn lost(&mut self, why: &str) {
        self.link = Link::None;
        let now = self.now();
        self.session.handle_disconnected(why, now);
    }

    pub async fn flush(&mut self) {
        while let Some(b) = self.session.poll_transmit() {
            let ok = match &mut self.link {
                Link::None => true,
                Link::Ws(ws) => within("ws send", ws.send(Message::Binary(b))).await.is_ok(),
                Link::Tcp(s) => within("tcp send", s.write_all(&b)).await.is_ok(),
            };
            if !ok {
                self.lost("send failed");
            }
        }
    }

    pub async fn open(&mut self) {
        let now = self.now();
        match self.transport {
            Transport::Messages => {
                match connect_origin(self.target, Some(&format!("http://{}", self.target))).await {
                    Ok(ws) => {
                        self.link = Link::Ws(Box::new(ws));
                        self.session.handle_connected(now);
                    }
                    Err(e) => self.session.handle_disconnected(&e.to_string(), now),
                }
            }
            Transport::Stream => {
                let sock = TcpSocket::new_v4().unwrap();
                if self.small_rcvbuf {
                    sock.set_recv_buffer_size(4096).unwrap();
                }
                match within("tcp connect", sock.connect(self.target)).await {
                    Ok(s) => {
                        self.link = Link::Tcp(s);
                        self.session.handle_connected(now);
                    }
                    Err(e) => self.session.handle_disconnected(&e.to_string(), now),
                }
            }
        }
    }

    /// Runs until `done` holds for an event, one seen before included (panics after `limit`).
    pub async fn run_until(&mut self, what: &str, limit: Duration, done: impl Fn(&Event) -> bool) {
        if !self.run(limit, done).await {
            self.timed_out(what);
        }
    }

    /// Runs until `done` holds for an event that arrives from now on (panics after `limit`).
    pub async fn run_until_new(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Event) -> bool,
    ) {
        if !self.run_new(limit, done).await {
            self.timed_out(what);
        }
    }

    fn timed_out(&self, what: &str) -> ! {
        panic!(
            "{}: timed out waiting for: {what}; events so far: {:#?}",
            self.name, self.events
        );
    }

    /// Runs for `limit` (or until `done` holds for an event, one seen before included: true).
    pub async fn run(&mut self, limit: Duration, done: impl Fn(&Event) -> bool) -> bool {
        if self.events.iter().any(&done) {
            return true;
        }
        self.run_new(limit, done).await
    }

    /// Runs for `limit` (or until `done` holds for an event that arrives from now on: true).
    pub async fn run_new(&mut self, limit: Duration, done: impl Fn(&Event) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            self.flush().await;
            let mut hit = false;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    Event::Connect => self.open().await,
                    Event::Close => {
                        self.flush().await;
                        match std::mem::replace(&mut self.link, Link::None) {
                            Link::Ws(mut ws) => {
                                let _ = within("close", (*ws).close(None)).await;
                            }
                            Link::Tcp(s) => drop(s),
                            Link::None => {}
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
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let wake = self
                .session
                .poll_timeout()
                .map(|t| self.t0 + Duration::from_millis(t.0))
                .unwrap_or(deadline)
                .min(deadline);
            let paused = self.paused;
            let mut buf = vec![0u8; 8192];
            let next = async {
                match &mut self.link {
                    Link::Ws(ws) if !paused => match ws.next().await {
                        Some(Ok(Message::Binary(b))) => Some(Some(b.to_vec())),
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => None,
                        Some(Ok(_)) => Some(None),
                    },
                    Link::Tcp(s) if !paused => match s.read(&mut buf).await {
                        Ok(0) | Err(_) => None,
                        Ok(n) => Some(Some(buf[..n].to_vec())),
                    },
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                got = next => {
                    let now = self.now();
                    match got {
                        Some(Some(b)) => match self.transport {
                            Transport::Messages => self.session.handle_message(&b, now),
                            Transport::Stream => self.session.handle_bytes(&b, now),
                        },
                        Some(None) => {}
                        None => self.lost("connection closed"),
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
            }
        }
    }

    pub async fn say(&mut self, line: &str) {
        let now = self.now();
        self.session.handle_input(line, now);
        self.flush().await;
    }

    /// How often each say text arrived (room events).
    pub fn said_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for e in &self.events {
            if let Event::Room(r) = e
                && let EventKind::Say { text, .. } = &r.kind
            {
                *m.entry(text.as_str().to_owned()).or_default() += 1;
            }
        }
        m
    }
}
