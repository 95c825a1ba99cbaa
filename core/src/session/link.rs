//! The session's link to the server: where it is with its transport (opening, open, welcomed,
//! waiting to reconnect, closed), the frame decoder and the bytes queued for the driver, the
//! keepalive, and the reconnect backoff. It knows nothing of rooms or messages: the session asks
//! it to send a message and tells it what happened to the transport.

use super::Transport;
use super::timers::{Timer, Timers};
use crate::limits::{
    CLIENT_PING_AFTER, CONNECT_TIMEOUT, MAX_QUEUED_TRANSMITS, PING_TIMEOUT, QUICK_RECONNECTS,
    RECONNECT_MAX, RECONNECT_MIN, WAKE_PING_TIMEOUT,
};
use crate::time::Millis;
use crate::wire::{self, ClientMsg, FrameDecoder, MAGIC, WireError};
use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::VecDeque;

/// Where the link is with its transport. One enum, so no illegal pair of flags can exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// `Event::Connect` was emitted; waiting for the driver to report the transport open.
    Opening,
    /// The transport is open and the hello sent; `welcomed` once the server answered.
    Open { welcomed: bool },
    /// Waiting to reconnect; `lost` when a welcomed connection was lost (else an attempt
    /// failed: no connection, or no welcome on it).
    Waiting {
        at: Millis,
        attempt: u32,
        lost: bool,
    },
    /// Done for good.
    Closed,
}

/// Why [`Link::send`] could not queue a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SendError {
    /// No transport is open: nothing is queued (the session keeps what matters).
    NotOpen,
    /// The driver is not taking bytes out fast enough: the link should be given up on.
    Backlog,
    /// The message could not be encoded (a bug, not input).
    Encode(WireError),
}

/// How other services start talking, which a natter server never does: an IRC server (a
/// prefixed line, or `ERROR :` where natter says `ERROR: `), a web server, SSH, a mail or FTP
/// server. Seen first on a stream, the port is not natter's (see [`Link::first_bytes`]).
const FOREIGN_STARTS: &[&[u8]] = &[
    b":", b"ERROR :", b"NOTICE ", b"PING ", b"HTTP/", b"SSH-", b"220 ", b"+OK", b"* OK",
];

/// What the first bytes heard on a stream transport say (see [`Link::first_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FirstBytes {
    /// Frames (or not the first bytes, or not a stream): read them as frames.
    Frames,
    /// Text: a natter server took us for a person on `nc`.
    TookUsForText,
    /// Another service (see [`FOREIGN_STARTS`]).
    NotNatter,
}

/// The transport side of a session. See the module docs.
#[derive(Debug)]
pub(super) struct Link {
    transport: Transport,
    phase: Phase,
    timers: Timers,
    decoder: FrameDecoder,
    transmits: VecDeque<Bytes>,
    ping_token: u64,
    backoff: Backoff,
    /// Bytes came from the server on this transport.
    heard_bytes: bool,
    /// Reconnects at once since the last welcome (see [`Link::first_bytes`]).
    quick_retries: u32,
    /// Which of the driver's server addresses the connections go to.
    servers: Servers,
    /// Attempts since the last welcome that did not get one (what a UI shows as the attempt).
    tries: u32,
    /// The ping due now probes a link after a wake: it has [`WAKE_PING_TIMEOUT`] to be answered.
    probe: bool,
    /// What wakes did to the reconnect backoff (see [`Link::woke`]).
    wake: WakeSkip,
}

/// A wake may start a waiting attempt at once; the time it skipped is waited after that
/// attempt, and no wake cuts that longer wait short. So wakes one after another (a wall clock
/// that jumps every few seconds looks like a sleep each time) bring at most one attempt more
/// than the backoff would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WakeSkip {
    /// No wait cut short since the last welcome, or the time skipped was waited.
    Free,
    /// A wake cut a wait short by this much: added to the next wait of the backoff.
    Owed(Millis),
    /// The wait now running carries the time skipped: wakes leave it alone.
    Paying,
}

impl Link {
    pub(super) fn new(transport: Transport, seed: u64) -> Link {
        Link {
            transport,
            phase: Phase::Closed,
            timers: Timers::default(),
            decoder: FrameDecoder::new(),
            transmits: VecDeque::new(),
            ping_token: 0,
            backoff: Backoff::new(seed),
            heard_bytes: false,
            quick_retries: 0,
            servers: Servers::default(),
            tries: 0,
            probe: false,
            wake: WakeSkip::Free,
        }
    }

    /// The driver holds `count` server addresses (at least one). The first connection goes to
    /// the first; see [`Servers`] for the next.
    pub(super) fn set_servers(&mut self, count: usize) {
        self.servers = Servers::new(count);
    }

    /// The address (index into the driver's list) the current or next connection uses.
    pub(super) fn server(&self) -> usize {
        self.servers.current
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// The transport is open (welcomed or not).
    pub(super) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// The server welcomed us on the open transport.
    pub(super) fn is_welcomed(&self) -> bool {
        self.phase == (Phase::Open { welcomed: true })
    }

    /// Opening, or open: a transport is (being) used.
    pub(super) fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Opening | Phase::Open { .. })
    }

    /// Starts a connection attempt, bounded by [`CONNECT_TIMEOUT`] until the welcome.
    pub(super) fn start_connect(&mut self, now: Millis) {
        self.phase = Phase::Opening;
        self.timers.stop_all();
        self.timers.set(Timer::Connect, now + CONNECT_TIMEOUT);
    }

    /// The transport opened: a fresh decoder, and the preamble when the transport wants one.
    /// False if no transport was being opened.
    pub(super) fn opened(&mut self, now: Millis) -> bool {
        if self.phase != Phase::Opening {
            return false;
        }
        self.phase = Phase::Open { welcomed: false };
        self.decoder = FrameDecoder::new();
        self.transmits.clear();
        self.heard_bytes = false;
        // The connect deadline keeps running until the welcome.
        self.heard(now);
        if self.transport == Transport::Stream {
            self.transmits.push_back(Bytes::from_static(&MAGIC));
        }
        true
    }

    /// The server's welcome arrived. False if it was not expected (a second one).
    pub(super) fn welcomed(&mut self) -> bool {
        if self.phase != (Phase::Open { welcomed: false }) {
            return false;
        }
        self.timers.stop(Timer::Connect);
        self.phase = Phase::Open { welcomed: true };
        self.backoff.reset();
        self.wake = WakeSkip::Free;
        self.quick_retries = 0;
        self.tries = 0;
        self.servers.welcomed();
        true
    }

    /// What the first bytes of this stream transport, `data`, say about who answered (see
    /// [`FirstBytes`]). Every frame starts with a length prefix whose first byte is 0 (a frame
    /// is far below 16 MiB), and a text greeting starts with a letter: that is a natter server
    /// that took us for a person typing on `nc`, because our preamble reached it after its
    /// detection wait (a slow or lossy link, a server busy with a storm of connections). What
    /// starts as another service does ([`FOREIGN_STARTS`], or a TLS record) is not natter's
    /// port at all.
    pub(super) fn first_bytes(&mut self, data: &[u8]) -> FirstBytes {
        let first = !self.heard_bytes;
        self.heard_bytes |= !data.is_empty();
        if !(first
            && self.transport == Transport::Stream
            && self.phase == (Phase::Open { welcomed: false }))
        {
            return FirstBytes::Frames;
        }
        match data.first() {
            None | Some(0) => FirstBytes::Frames,
            // A TLS record (an alert, a handshake): a TLS port reached without TLS.
            Some(0x15 | 0x16) => FirstBytes::NotNatter,
            Some(_) if FOREIGN_STARTS.iter().any(|p| data.starts_with(p)) => FirstBytes::NotNatter,
            Some(_) => FirstBytes::TookUsForText,
        }
    }

    /// A message arrived on this message transport (the bridge relays only the server's bytes).
    pub(super) fn heard_message(&mut self) {
        self.heard_bytes = true;
    }

    /// A message transport on which nothing came: the bridge took the WebSocket but the server
    /// never answered through it (the bridge could not reach it, or it closed at once).
    pub(super) fn bridge_unanswered(&self) -> bool {
        self.transport == Transport::Messages && !self.heard_bytes
    }

    /// Something was heard from the server: it is alive, restart the keepalive.
    pub(super) fn heard(&mut self, now: Millis) {
        self.timers.stop(Timer::PingTimeout);
        self.timers.set(Timer::Ping, now + CLIENT_PING_AFTER);
        self.probe = false;
    }

    /// Moves the keepalive's ping to `now`, to be answered within [`WAKE_PING_TIMEOUT`] (see
    /// [`super::Session::check_link`]); false when none is armed (the link is not up, or a ping
    /// waits for its answer already: that one is given up as soon).
    pub(super) fn ping_now(&mut self, now: Millis) -> bool {
        if let Some(at) = self.timers.at(Timer::PingTimeout) {
            self.timers
                .set(Timer::PingTimeout, at.min(now + WAKE_PING_TIMEOUT));
            return false;
        }
        if self.timers.at(Timer::Ping).is_none() {
            return false;
        }
        self.timers.set(Timer::Ping, now);
        self.probe = true;
        true
    }

    /// The computer woke (see [`super::Session::check_link`]): true when a waiting attempt is
    /// to start now. It does unless a wake cut short the wait before this one: the time that
    /// skipped is waited first ([`WakeSkip`]).
    pub(super) fn woke(&mut self, now: Millis) -> bool {
        let Phase::Waiting { at, .. } = self.phase else {
            return false;
        };
        if self.wake != WakeSkip::Free {
            return false;
        }
        self.wake = WakeSkip::Owed(at.since(now));
        true
    }

    /// Feeds bytes read from a stream transport to the decoder.
    pub(super) fn decoder(&mut self) -> &mut FrameDecoder {
        &mut self.decoder
    }

    /// Encodes `msg` for the transport and queues it for the driver.
    pub(super) fn send(&mut self, msg: &ClientMsg) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::NotOpen);
        }
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            return Err(SendError::Backlog);
        }
        let encoded = match self.transport {
            Transport::Stream => wire::encode_frame(msg),
            Transport::Messages => wire::encode_payload(msg),
        };
        self.transmits
            .push_back(encoded.map_err(SendError::Encode)?);
        Ok(())
    }

    pub(super) fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The transport is given up on: the next attempt is scheduled after the backoff, or at
    /// once when `quick` (the server took us for a person: trying again is all it takes), up to
    /// [`QUICK_RECONNECTS`] times in a row. An attempt that got no welcome moves on to the next
    /// server address, at once while some address has not failed since the last welcome (see
    /// [`Servers`]). Returns the new phase (`Waiting`).
    pub(super) fn reconnect(&mut self, now: Millis, quick: bool) -> Phase {
        // Lost after a welcome: that server worked, so it is tried again first, unless it sent
        // us away (`Link::sent_away` moved on already).
        let failed_attempt = self.phase != (Phase::Open { welcomed: true });
        self.transmits.clear();
        self.decoder = FrameDecoder::new();
        self.timers.stop_all();
        let quick = quick && self.quick_retries < QUICK_RECONNECTS;
        let (at, attempt) = if quick {
            self.quick_retries += 1;
            (now, self.quick_retries)
        } else {
            self.tries = self.tries.saturating_add(1);
            if failed_attempt && self.servers.failed() {
                (now, self.tries)
            } else {
                let at = self.backoff.next(now);
                let at = match self.wake {
                    WakeSkip::Owed(skipped) => {
                        self.wake = WakeSkip::Paying;
                        at + skipped
                    }
                    // The longer wait ended (or was cut short by the network coming back).
                    WakeSkip::Paying | WakeSkip::Free => {
                        self.wake = WakeSkip::Free;
                        at
                    }
                };
                (at, self.tries)
            }
        };
        self.phase = Phase::Waiting {
            at,
            attempt,
            lost: !failed_attempt,
        };
        self.timers.set(Timer::Reconnect, at);
        self.phase
    }

    /// The server sent us away after its welcome (a `Bye`: it shuts down, or a cluster moved
    /// our account's user to another node): the next address is tried first, after the usual
    /// wait. With one address nothing changes. In a cluster this is what lets two devices of
    /// one account on two nodes end on one: the one sent away goes where the other is, instead
    /// of signing in again where it was and sending the other away in turn, for ever.
    pub(super) fn sent_away(&mut self) {
        self.servers.current = (self.servers.current + 1) % self.servers.count;
    }

    /// The link just scheduled to reconnect was closed as asked (a sign-out), not lost: the
    /// wait is marked so ([`ConnState::Reconnecting`] with `lost: false`).
    ///
    /// [`ConnState::Reconnecting`]: super::ConnState::Reconnecting
    pub(super) fn closed_as_asked(&mut self) {
        if let Phase::Waiting { lost, .. } = &mut self.phase {
            *lost = false;
        }
    }

    /// Ends the link for good. False if it already was.
    pub(super) fn close(&mut self) -> bool {
        if self.phase == Phase::Closed {
            return false;
        }
        self.phase = Phase::Closed;
        self.timers.stop_all();
        self.decoder = FrameDecoder::new();
        true
    }

    /// What the link's deadlines ask for at `now`, in the order they are to be acted on.
    pub(super) fn expired(&mut self, now: Millis) -> Expired {
        let open = self.is_open();
        Expired {
            connect: self
                .timers
                .take_expired(Timer::Connect, now)
                .then_some(open),
            dead: self.timers.take_expired(Timer::PingTimeout, now),
            ping: self.timers.take_expired(Timer::Ping, now).then(|| {
                self.ping_token = self.ping_token.wrapping_add(1);
                let answer_within = if std::mem::take(&mut self.probe) {
                    WAKE_PING_TIMEOUT
                } else {
                    PING_TIMEOUT
                };
                self.timers.set(Timer::PingTimeout, now + answer_within);
                self.ping_token
            }),
            reconnect: self.timers.take_expired(Timer::Reconnect, now),
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.timers.next()
    }

    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    #[cfg(test)]
    pub(super) fn queued_transmits(&self) -> usize {
        self.transmits.len()
    }
}

/// What [`Link::expired`] found due.
#[derive(Debug, Default)]
pub(super) struct Expired {
    /// The connect deadline passed; `Some(true)` if the transport had opened (no welcome).
    pub connect: Option<bool>,
    /// A ping went unanswered.
    pub dead: bool,
    /// Time to ping, with this token.
    pub ping: Option<u64>,
    /// Time for the next connection attempt.
    pub reconnect: bool,
}

/// Reconnect backoff: `RECONNECT_MIN·2^(n-1)` capped at `RECONNECT_MAX`, jittered into its upper
/// half by a seeded RNG, so clients that lost the same server do not all come back at once.
#[derive(Debug)]
struct Backoff {
    rng: ChaCha8Rng,
    /// Waits since the last welcome (with one server address, failed connections; with
    /// several, rounds in which every address failed).
    attempt: u32,
}

impl Backoff {
    fn new(seed: u64) -> Backoff {
        Backoff {
            rng: ChaCha8Rng::seed_from_u64(seed),
            attempt: 0,
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    /// When the next attempt starts.
    fn next(&mut self, now: Millis) -> Millis {
        self.attempt = self.attempt.saturating_add(1);
        let exp = self.attempt.saturating_sub(1).min(32);
        let base = RECONNECT_MIN
            .0
            .saturating_mul(1u64 << exp)
            .min(RECONNECT_MAX.0);
        let half = base / 2;
        let wait = Millis(half + self.rng.next_u64() % (base - half + 1));
        now + wait
    }
}

/// The driver's server addresses, as far as deciding goes: how many there are and which one is
/// used. They are equivalent (nodes of one cluster): a connection goes to the current one until
/// an attempt there fails (refused, timed out, or no welcome), then to the next, at once while
/// some address has not failed since the last welcome. When every address has failed in a row
/// the backoff is waited before the next round. A connection lost after a welcome tries the
/// same address first: the server was fine a moment ago, and resume tokens may be its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Servers {
    /// How many addresses (at least 1).
    count: usize,
    /// The one in use.
    current: usize,
    /// Addresses that failed in a row since the last welcome or the last full round.
    failed: usize,
}

impl Default for Servers {
    fn default() -> Servers {
        Servers::new(1)
    }
}

impl Servers {
    fn new(count: usize) -> Servers {
        Servers {
            count: count.max(1),
            current: 0,
            failed: 0,
        }
    }

    fn welcomed(&mut self) {
        self.failed = 0;
    }

    /// An attempt at the current address failed: moves to the next. True when that one is to
    /// be tried at once (it has not failed in this round); false when the round is over and
    /// the backoff comes first.
    fn failed(&mut self) -> bool {
        self.current = (self.current + 1) % self.count;
        self.failed += 1;
        if self.failed < self.count {
            return true;
        }
        self.failed = 0;
        false
    }
}
