//! The client's state machine, shared by the CLI and the browser page: handshake, typed input
//! (through [`crate::command::parse`]), message ids and resend, last seq per room, resume, gap
//! refill, keepalive and the decision when to reconnect (backoff with seeded jitter).
//!
//! # Driving a `Session`
//! The driver loops: drain [`Session::poll_event`] (UI events, and the instructions
//! [`Event::Connect`] / [`Event::Close`]) and [`Session::poll_transmit`] (bytes to send), then
//! waits for input, bytes, or [`Session::poll_timeout`]. On `Connect` it opens a transport and
//! calls [`Session::handle_connected`] or [`Session::handle_disconnected`]; bytes read go to
//! [`Session::handle_bytes`] (TCP) or [`Session::handle_message`] (one WebSocket message).

use crate::limits::MAX_MEMBERS_LISTED;
use crate::time::Millis;
use crate::types::{Nick, RoomName, Seq, Text};
use crate::wire::{DirectMsg, ErrorKind, RoomEvent, RoomInfo};
use bytes::Bytes;

/// How the session's bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A byte stream (TCP): preamble, then length-prefixed frames.
    Stream,
    /// A message transport (WebSocket through natter-bridge): each transmit is one frame payload
    /// with no prefix and no preamble (the bridge adds them), each received message is one payload.
    Messages,
}

/// What a session starts with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Wanted nick.
    pub nick: Nick,
    /// Rooms to join on the first connect (`#lobby` by default).
    pub rooms: Vec<RoomName>,
    /// How bytes travel.
    pub transport: Transport,
    /// Seed for reconnect jitter (any value; tests fix it).
    pub seed: u64,
}

/// Connection state, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Waiting for the transport or the welcome.
    Connecting,
    /// Welcomed; chatting.
    Connected,
    /// Lost; the next attempt is at `at`.
    Reconnecting {
        /// When the next attempt starts.
        at: Millis,
        /// Attempts so far since the last success.
        attempt: u32,
    },
    /// Ended (after `/quit`, or a fatal error such as a protocol version mismatch).
    Closed,
}

/// What the session has to say to its driver and UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Driver: open a transport now.
    Connect,
    /// Driver: close the transport once the bytes already polled are written.
    Close,
    /// The connection state changed.
    State(ConnState),
    /// The server welcomed us.
    Welcome {
        /// Our nick.
        nick: Nick,
        /// The earlier session was resumed (rooms and nick kept, missed events follow).
        resumed: bool,
    },
    /// We are in a room.
    Joined {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
        /// Members.
        members: Vec<Nick>,
    },
    /// We left a room.
    Parted {
        /// Room.
        room: RoomName,
    },
    /// A room event, once each, in seq order per room (refills after a gap come after it).
    Room(RoomEvent),
    /// A direct message (ours come back as their acknowledgement).
    Direct(DirectMsg),
    /// Room events `first..=last` were missed; a refill of what the server still has was asked for.
    Gap {
        /// Room.
        room: RoomName,
        /// First missed seq.
        first: Seq,
        /// Last missed seq.
        last: Seq,
    },
    /// Members of a room (reply to `/who`, also after joins and parts).
    Members {
        /// Room.
        room: RoomName,
        /// Members.
        members: Vec<Nick>,
    },
    /// Rooms on the server.
    Rooms(Vec<RoomInfo>),
    /// A room's topic (reply to `/topic`).
    Topic {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
    },
    /// Our nick changed.
    Nick(Nick),
    /// Something went wrong, in words (server errors, bad commands, refused input).
    Error {
        /// Kind, when the server sent it.
        kind: Option<ErrorKind>,
        /// Words for people.
        text: String,
    },
    /// Local information for the user (`/help`, "not resumed", ...).
    Info(String),
}

/// A client session. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
}

#[allow(clippy::needless_pass_by_value)]
impl Session {
    /// A new session; its first event is [`Event::Connect`].
    pub fn new(config: SessionConfig, now: Millis) -> Session {
        let _ = (now, MAX_MEMBERS_LISTED);
        Session { config }
    }

    /// The transport is open: the preamble (stream) and hello, with resume data if any, are queued.
    pub fn handle_connected(&mut self, now: Millis) {
        todo!("{now}")
    }

    /// The transport failed to open, or was lost. A reconnect is scheduled (unless closed).
    pub fn handle_disconnected(&mut self, reason: &str, now: Millis) {
        todo!("{reason} {now}")
    }

    /// Bytes read from a stream transport.
    pub fn handle_bytes(&mut self, data: &[u8], now: Millis) {
        todo!("{} {now}", data.len())
    }

    /// One message read from a message transport (one frame payload).
    pub fn handle_message(&mut self, payload: &[u8], now: Millis) {
        todo!("{} {now}", payload.len())
    }

    /// A line the user typed: chat for the current room, or a `/command`.
    pub fn handle_input(&mut self, line: &str, now: Millis) {
        todo!("{line} {now}")
    }

    /// Makes `room` (which we are in) the room typed chat goes to. False if we are not in it.
    pub fn switch_room(&mut self, room: &RoomName) -> bool {
        todo!("{room}")
    }

    /// A deadline from [`Session::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        todo!("{now}")
    }

    /// Next bytes (stream) or message (message transport) to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        todo!()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!()
    }

    /// Our nick (the wanted one until welcomed).
    pub fn nick(&self) -> &Nick {
        &self.config.nick
    }

    /// The room typed chat goes to.
    pub fn current_room(&self) -> Option<&RoomName> {
        todo!()
    }

    /// Rooms we are in, in join order.
    pub fn rooms(&self) -> Vec<RoomName> {
        todo!()
    }

    /// Connection state.
    pub fn state(&self) -> ConnState {
        todo!()
    }

    /// True when connected and nothing we sent awaits the server's answer (messages acknowledged,
    /// joins answered): a line-mode client may exit.
    pub fn is_settled(&self) -> bool {
        todo!()
    }
}
