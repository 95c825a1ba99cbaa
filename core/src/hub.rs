//! The server's state machine: connections, nicks, rooms, history, flood control, keepalive,
//! slow-consumer gaps and resume. It owns no socket and reads no clock.
//!
//! # Driving a `Hub`
//! A shell (natter-server) calls, for each connection, [`Hub::accept`] when a socket is accepted,
//! [`Hub::handle_bytes`] with whatever the socket read, [`Hub::handle_written`] when bytes it was
//! given have been written to the socket, and [`Hub::handle_close`] when the socket is gone. After
//! any call it drains [`Hub::poll_transmit`] (bytes to write, per connection, in order) and
//! [`Hub::poll_event`] (things to log, and connections to close once their bytes are written),
//! then sleeps until the next input or [`Hub::poll_timeout`], when it calls
//! [`Hub::handle_timeout`]. Time is always the caller's `now`.

use crate::time::Millis;
use crate::types::{ConnId, Nick};
use bytes::Bytes;
use core::net::IpAddr;
use thiserror::Error;

/// Tunables. [`Config::default`] takes every value from [`crate::limits`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed for resume tokens and guest nicks. Must come from the OS's random source in a real
    /// server: resume tokens are credentials.
    pub secret_seed: [u8; 32],
    /// Addresses allowed to send [`crate::wire::ClientMsg::Forwarded`] (the bridge).
    pub trusted_proxies: Vec<IpAddr>,
    /// Loopback addresses are exempt from the per-IP limits.
    pub exempt_loopback: bool,
    /// See [`crate::limits::MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`crate::limits::MAX_CONNECTIONS_PER_IP`].
    pub max_connections_per_ip: usize,
    /// See [`crate::limits::MAX_CONNECTS_PER_WINDOW`].
    pub max_connects_per_window: u32,
    /// See [`crate::limits::CONNECT_WINDOW`].
    pub connect_window: Millis,
    /// See [`crate::limits::FLOOD_BURST`].
    pub flood_burst: u32,
    /// See [`crate::limits::FLOOD_REFILL`].
    pub flood_refill: Millis,
    /// See [`crate::limits::FLOOD_QUEUE`].
    pub flood_queue: usize,
    /// See [`crate::limits::PING_AFTER`].
    pub ping_after: Millis,
    /// See [`crate::limits::PING_TIMEOUT`].
    pub ping_timeout: Millis,
    /// See [`crate::limits::HELLO_TIMEOUT`].
    pub hello_timeout: Millis,
    /// See [`crate::limits::TEXT_DETECT_WAIT`].
    pub text_detect_wait: Millis,
    /// See [`crate::limits::RESUME_GRACE`].
    pub resume_grace: Millis,
    /// See [`crate::limits::OUTBOUND_MAX_MSGS`].
    pub outbound_max_msgs: usize,
    /// See [`crate::limits::OUTBOUND_MAX_BYTES`].
    pub outbound_max_bytes: usize,
    /// See [`crate::limits::HISTORY_LEN`].
    pub history_len: usize,
    /// See [`crate::limits::HISTORY_ON_JOIN`].
    pub history_on_join: usize,
}

impl Default for Config {
    fn default() -> Config {
        use crate::limits::*;
        Config {
            secret_seed: [0; 32],
            trusted_proxies: Vec::new(),
            exempt_loopback: true,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            max_connects_per_window: MAX_CONNECTS_PER_WINDOW,
            connect_window: CONNECT_WINDOW,
            flood_burst: FLOOD_BURST,
            flood_refill: FLOOD_REFILL,
            flood_queue: FLOOD_QUEUE,
            ping_after: PING_AFTER,
            ping_timeout: PING_TIMEOUT,
            hello_timeout: HELLO_TIMEOUT,
            text_detect_wait: TEXT_DETECT_WAIT,
            resume_grace: RESUME_GRACE,
            outbound_max_msgs: OUTBOUND_MAX_MSGS,
            outbound_max_bytes: OUTBOUND_MAX_BYTES,
            history_len: HISTORY_LEN,
            history_on_join: HISTORY_ON_JOIN,
        }
    }
}

/// Why [`Hub::accept`] turned a connection away outright (the shell just closes the socket).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    /// Far past every limit: not even worth telling.
    #[error("too many connections")]
    Overloaded,
}

/// Bytes to write to one connection, in the order polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub conn: ConnId,
    /// What. Shared between all recipients of a broadcast.
    pub data: Bytes,
}

/// How a connection talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// A program speaking the binary protocol.
    Binary,
    /// A person on `nc`/`telnet`.
    Text,
}

/// Things the shell logs or acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A connection identified itself and has a nick.
    Ready {
        /// Connection.
        conn: ConnId,
        /// How it talks.
        kind: ConnKind,
        /// Its nick.
        nick: Nick,
        /// It resumed an earlier session.
        resumed: bool,
    },
    /// A limit was hit (logged once per connection and limit). The client was told.
    LimitHit {
        /// Connection.
        conn: ConnId,
        /// Which limit, as a short stable word (`flood`, `line`, `frame`, `queue`, `per-ip`, ...).
        limit: &'static str,
        /// Words for the log.
        detail: String,
    },
    /// Close this connection once the transmits already polled for it are written.
    Close {
        /// Connection.
        conn: ConnId,
        /// Words for the log.
        reason: String,
    },
}

/// The chat server's state. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Hub {
    config: Config,
}

impl Hub {
    /// A hub with no connections.
    pub fn new(config: Config) -> Hub {
        Hub { config }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A socket from `peer` was accepted. Soft limits (per-IP, connect rate, server full) are
    /// answered in the client's own mode (text line or error frame) once it is known, then closed;
    /// `Err` only when even that is too much.
    pub fn accept(&mut self, peer: IpAddr, now: Millis) -> Result<ConnId, Refused> {
        todo!("{peer} {now}")
    }

    /// Bytes read from `conn`'s socket.
    pub fn handle_bytes(&mut self, conn: ConnId, data: &[u8], now: Millis) {
        todo!("{conn} {} {now}", data.len())
    }

    /// `n` bytes of what was polled for `conn` have been written to its socket.
    pub fn handle_written(&mut self, conn: ConnId, n: usize, now: Millis) {
        todo!("{conn} {n} {now}")
    }

    /// `conn`'s socket is gone (peer closed, error, or the shell closed it after `Close`).
    pub fn handle_close(&mut self, conn: ConnId, now: Millis) {
        todo!("{conn} {now}")
    }

    /// A deadline from [`Hub::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        todo!("{now}")
    }

    /// The server is going away: every connection is told and then closed (`Close` events).
    pub fn shutdown(&mut self, now: Millis) {
        todo!("{now}")
    }

    /// Next bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!()
    }

    /// Next event to log or act on.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        todo!()
    }

    /// When [`Hub::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!()
    }

    /// Connections open.
    pub fn connections(&self) -> usize {
        todo!()
    }
}
