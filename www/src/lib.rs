//! natter-web: core's client [`Session`] for the browser page, through wasm-bindgen.
//!
//! The page owns the WebSocket and the timers; this crate owns nothing but the protocol, and even
//! that is core's: [`Client`] is a thin wrapper that turns JS numbers into [`Millis`], byte arrays
//! into payloads, and core's [`Event`]s into plain JS objects (see [`View`]) the page can render.
//!
//! Driving it from JS (the same order as [`Session`]'s docs):
//! 1. drain `poll_event()` until `undefined`: `{type: "connect"}` means open a WebSocket now,
//!    `{type: "close"}` close it, everything else is for the UI;
//! 2. drain `poll_transmit()` and send each `Uint8Array` as one binary WebSocket message;
//! 3. arm one timer for `poll_timeout()` (a `Date.now()`-style time) that calls `handle_timeout`;
//! 4. after any input (`handle_*`, `switch_room`), go to 1.
#![warn(missing_docs)]

use natter_core::Millis;
use natter_core::session::{ConnState, Event, Session, SessionConfig, Target, Transport};
use natter_core::types::{Nick, RoomName};
use natter_core::wire::{EventKind, RoomEvent};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// A `Date.now()` value as core's time. Negative, NaN or huge values (a confused clock) saturate
/// instead of failing: `as` from `f64` to `u64` clamps and maps NaN to 0.
fn millis(now: f64) -> Millis {
    Millis(now as u64)
}

/// Core's numbers as JS numbers. Exact below 2^53, which seqs, ids and Unix milliseconds stay
/// under; a hostile server sending more gets rounded numbers, not an exception.
fn num(n: u64) -> f64 {
    n as f64
}

/// The browser's chat client: core's [`Session`] over a message transport (the page's WebSocket
/// to natter-bridge: it sends one bare frame payload per binary message and receives batches of
/// whole length-prefixed frames; see PROTOCOL.md).
#[wasm_bindgen]
pub struct Client {
    session: Session,
}

#[wasm_bindgen]
impl Client {
    /// A client for `nick` that will join `#lobby`. `seed` is any number (the page passes a random
    /// one; it only spreads reconnect attempts), `now` is `Date.now()`. Throws the reason, in
    /// words, when the nick is not valid.
    #[wasm_bindgen(constructor)]
    pub fn new(nick: &str, seed: f64, now: f64) -> Result<Client, JsError> {
        let nick = Nick::new(nick.trim()).map_err(|e| JsError::new(&e.to_string()))?;
        let config = SessionConfig {
            nick,
            rooms: vec![RoomName::lobby()],
            transport: Transport::Messages,
            seed: seed as u64,
        };
        Ok(Client {
            session: Session::new(config, millis(now)),
        })
    }

    /// The WebSocket opened.
    pub fn handle_connected(&mut self, now: f64) {
        self.session.handle_connected(millis(now));
    }

    /// The WebSocket failed to open or closed; `reason` is for the log and the UI.
    pub fn handle_disconnected(&mut self, reason: &str, now: f64) {
        self.session.handle_disconnected(reason, millis(now));
    }

    /// One binary WebSocket message arrived (one or more whole frames, prefixes included).
    pub fn handle_message(&mut self, bytes: &[u8], now: f64) {
        self.session.handle_message(bytes, millis(now));
    }

    /// The user typed `line` (chat for the current room, or a `/command`).
    pub fn handle_input(&mut self, line: &str, now: f64) {
        self.session.handle_input(line, millis(now));
    }

    /// Makes `room` the one typed chat goes to. False if it is not a valid room we are in.
    pub fn switch_room(&mut self, room: &str) -> bool {
        match RoomName::new(room) {
            Ok(room) => self.session.switch_room(&room),
            Err(_) => false,
        }
    }

    /// The time from `poll_timeout` has come.
    pub fn handle_timeout(&mut self, now: f64) {
        self.session.handle_timeout(millis(now));
    }

    /// The network is back (the browser's `online` event): reconnect now if waiting to.
    pub fn reconnect_now(&mut self, now: f64) {
        self.session.reconnect_now(millis(now));
    }

    /// The next WebSocket message to send, or `undefined`.
    pub fn poll_transmit(&mut self) -> Option<js_sys::Uint8Array> {
        self.session
            .poll_transmit()
            .map(|b| js_sys::Uint8Array::from(&b[..]))
    }

    /// The next event as a plain object `{type: "room", ...}` (see the crate docs), or
    /// `undefined` when there is none.
    pub fn poll_event(&mut self) -> JsValue {
        let Some(ev) = self.session.poll_event() else {
            return JsValue::UNDEFINED;
        };
        let view = View::from(ev);
        match view.serialize(&serde_wasm_bindgen::Serializer::new()) {
            Ok(v) => v,
            // Cannot happen for these plain structs; if it did, the UI should hear about it
            // rather than lose the event silently.
            Err(e) => JsValue::from_str(&format!("natter-web: event not convertible: {e}")),
        }
    }

    /// When to call `handle_timeout` next (a `Date.now()` value), or `undefined` for never.
    pub fn poll_timeout(&self) -> Option<f64> {
        self.session.poll_timeout().map(|t| num(t.0))
    }

    /// Our nick (the wanted one until the server welcomes us).
    pub fn nick(&self) -> String {
        self.session.nick().to_string()
    }

    /// The room typed chat goes to, if any.
    pub fn current_room(&self) -> Option<String> {
        self.session.current_room().map(|r| r.to_string())
    }
}

/// Why `nick` cannot be used, in words, or `undefined` if it can: the nick prompt checks with
/// core's own rule before connecting.
#[wasm_bindgen]
pub fn nick_error(nick: &str) -> Option<String> {
    Nick::new(nick.trim()).err().map(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Sends panics to the browser console with their message instead of a bare "unreachable".
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("natter-web panicked: {info}"))
    }));
}

/// A core [`Event`] as the page sees it: serialised to a plain JS object whose `type` field is
/// the variant name in lower case (`"room"`, `"gap"`, ...), names and texts as strings, seqs and
/// times as numbers. Optional fields are absent (`undefined`) when there is nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum View {
    /// Open a WebSocket now.
    Connect,
    /// Close the WebSocket (after sending what was polled).
    Close,
    /// Connection state: `state` is `connecting`, `connected`, `reconnecting` or `closed`.
    #[serde(rename_all = "camelCase")]
    State {
        /// The state's name.
        state: &'static str,
        /// Reconnecting: when the next attempt starts.
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<f64>,
        /// Reconnecting: attempts since the last success.
        #[serde(skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    /// Welcomed by the server.
    Welcome {
        /// Our nick.
        nick: String,
        /// The earlier session was resumed.
        resumed: bool,
    },
    /// We are in a room.
    Joined {
        /// Room.
        room: String,
        /// Topic.
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// Members.
        members: Vec<String>,
    },
    /// We left a room.
    Parted {
        /// Room.
        room: String,
    },
    /// A room event; `kind` is `say`, `act`, `join`, `part`, `quit`, `nick` or `topic`.
    #[serde(rename_all = "camelCase")]
    Room {
        /// Room.
        room: String,
        /// Position in the room.
        seq: f64,
        /// Server time (Unix milliseconds).
        at: f64,
        /// Who.
        from: String,
        /// What.
        kind: &'static str,
        /// Say/act text, part/quit reason, new topic.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Say/act: the sender's message id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<f64>,
        /// Nick change: the new nick.
        #[serde(skip_serializing_if = "Option::is_none")]
        new_nick: Option<String>,
    },
    /// A direct message (ours come back as the acknowledgement).
    Direct {
        /// Sender.
        from: String,
        /// Recipient.
        to: String,
        /// The sender's id.
        id: f64,
        /// Server time.
        at: f64,
        /// Text.
        text: String,
    },
    /// Events `first..=last` of `room` were missed (`count` of them).
    Gap {
        /// Room.
        room: String,
        /// First missed seq.
        first: f64,
        /// Last missed seq.
        last: f64,
        /// How many.
        count: f64,
    },
    /// A room's member list.
    Members {
        /// Room.
        room: String,
        /// Members.
        members: Vec<String>,
        /// The answer to a `/who` (show it), not the session's own refresh.
        asked: bool,
    },
    /// The server's rooms.
    Rooms {
        /// Rooms and their member counts.
        rooms: Vec<RoomLine>,
    },
    /// A room's topic.
    Topic {
        /// Room.
        room: String,
        /// Topic, absent when none.
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// Our nick changed.
    Nick {
        /// The new nick.
        nick: String,
    },
    /// Something went wrong; `text` says what.
    Error {
        /// The server's error kind (`NickTaken`, `Flood`, ...), when it sent one.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        /// Words for people.
        text: String,
    },
    /// Local information (`/help` and the like).
    Info {
        /// Words for people.
        text: String,
    },
    /// A message we typed is on its way; `settled` with the same id follows.
    Queued {
        /// Its id.
        id: f64,
        /// The room it goes to (absent for a DM).
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The nick it goes to (a DM).
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// An action (`/me`).
        act: bool,
        /// Text.
        text: String,
    },
    /// The message `id` was acknowledged (`delivered`) or will never be.
    Settled {
        /// Its id.
        id: f64,
        /// Whether the server took it.
        delivered: bool,
    },
}

/// One line of a room list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomLine {
    /// Room.
    pub room: String,
    /// Members.
    pub members: u32,
}

fn names<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(T::to_string).collect()
}

impl From<Event> for View {
    fn from(ev: Event) -> View {
        match ev {
            Event::Connect => View::Connect,
            Event::Close => View::Close,
            Event::State(s) => {
                let (state, at, attempt) = match s {
                    ConnState::Connecting => ("connecting", None, None),
                    ConnState::Connected => ("connected", None, None),
                    ConnState::Reconnecting { at, attempt } => {
                        ("reconnecting", Some(num(at.0)), Some(attempt))
                    }
                    ConnState::Closed => ("closed", None, None),
                };
                View::State { state, at, attempt }
            }
            Event::Welcome { nick, resumed } => View::Welcome {
                nick: nick.to_string(),
                resumed,
            },
            Event::Joined {
                room,
                topic,
                members,
            } => View::Joined {
                room: room.to_string(),
                topic: topic.map(|t| t.to_string()),
                members: names(&members),
            },
            Event::Parted { room } => View::Parted {
                room: room.to_string(),
            },
            Event::Room(ev) => room_view(ev),
            Event::Direct(dm) => View::Direct {
                from: dm.from.to_string(),
                to: dm.to.to_string(),
                id: num(dm.id.0),
                at: num(dm.at.0),
                text: dm.text.to_string(),
            },
            Event::Gap { room, first, last } => View::Gap {
                room: room.to_string(),
                first: num(first.0),
                last: num(last.0),
                count: num(last.0.saturating_sub(first.0).saturating_add(1)),
            },
            Event::Members {
                room,
                members,
                asked,
            } => View::Members {
                room: room.to_string(),
                members: names(&members),
                asked,
            },
            Event::Rooms(rooms) => View::Rooms {
                rooms: rooms
                    .into_iter()
                    .map(|r| RoomLine {
                        room: r.room.to_string(),
                        members: r.members,
                    })
                    .collect(),
            },
            Event::Topic { room, topic } => View::Topic {
                room: room.to_string(),
                topic: topic.map(|t| t.to_string()),
            },
            Event::Nick(nick) => View::Nick {
                nick: nick.to_string(),
            },
            Event::Error { kind, text } => View::Error {
                kind: kind.map(|k| format!("{k:?}")),
                text,
            },
            Event::Info(text) => View::Info { text },
            Event::Queued { id, to, act, text } => {
                let (room, to) = match to {
                    Target::Room(r) => (Some(r.to_string()), None),
                    Target::Nick(n) => (None, Some(n.to_string())),
                };
                View::Queued {
                    id: num(id.0),
                    room,
                    to,
                    act,
                    text: text.to_string(),
                }
            }
            Event::Settled { id, delivered } => View::Settled {
                id: num(id.0),
                delivered,
            },
        }
    }
}

fn room_view(ev: RoomEvent) -> View {
    let (kind, text, id, new_nick) = match ev.kind {
        EventKind::Say { id, text } => ("say", Some(text), Some(num(id.0)), None),
        EventKind::Act { id, text } => ("act", Some(text), Some(num(id.0)), None),
        EventKind::Join => ("join", None, None, None),
        EventKind::Part { reason } => ("part", reason, None, None),
        EventKind::Quit { reason } => ("quit", reason, None, None),
        EventKind::Nick { new } => ("nick", None, None, Some(new.to_string())),
        EventKind::Topic { topic } => ("topic", topic, None, None),
    };
    View::Room {
        room: ev.room.to_string(),
        seq: num(ev.seq.0),
        at: num(ev.at.0),
        from: ev.from.to_string(),
        kind,
        text: text.map(|t| t.to_string()),
        id,
        new_nick,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::types::{MsgId, Seq, Text};
    use natter_core::wire::ErrorKind;

    #[test]
    fn nick_errors_come_from_core_in_words() {
        assert_eq!(nick_error("alice"), None);
        assert_eq!(nick_error("  alice "), None);
        assert!(nick_error("").unwrap().contains("empty"));
        assert!(
            nick_error("9lives")
                .unwrap()
                .contains("starts with a letter")
        );
        assert!(nick_error(&"a".repeat(40)).unwrap().contains("at most"));
    }

    #[test]
    fn clock_values_saturate() {
        assert_eq!(millis(-5.0), Millis(0));
        assert_eq!(millis(f64::NAN), Millis(0));
        assert_eq!(millis(1_700_000_000_123.9), Millis(1_700_000_000_123));
        assert_eq!(millis(f64::INFINITY), Millis(u64::MAX));
    }

    #[test]
    fn room_events_become_flat_views() {
        let ev = RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(7),
            at: Millis(1_700_000_000_000),
            from: Nick::new("alice").unwrap(),
            kind: EventKind::Act {
                id: MsgId(3),
                text: Text::new("<script>alert(1)</script>").unwrap(),
            },
        };
        assert_eq!(
            View::from(Event::Room(ev)),
            View::Room {
                room: "#lobby".into(),
                seq: 7.0,
                at: 1_700_000_000_000.0,
                from: "alice".into(),
                kind: "act",
                text: Some("<script>alert(1)</script>".into()),
                id: Some(3.0),
                new_nick: None,
            }
        );
        let nick = RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(8),
            at: Millis(0),
            from: Nick::new("alice").unwrap(),
            kind: EventKind::Nick {
                new: Nick::new("al").unwrap(),
            },
        };
        match View::from(Event::Room(nick)) {
            View::Room {
                kind,
                new_nick,
                text,
                ..
            } => {
                assert_eq!(kind, "nick");
                assert_eq!(new_nick.as_deref(), Some("al"));
                assert_eq!(text, None);
            }
            other => panic!("{other:?}"),
        }
    }

    /// The page reads these names (www/static/app.js): `type` tags in lower camel case, optional
    /// fields absent rather than null. serde_json sees the same serde data model that
    /// serde-wasm-bindgen turns into JS objects.
    #[test]
    fn views_have_the_shape_the_page_reads() {
        let nick = RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(8),
            at: Millis(5),
            from: Nick::new("alice").unwrap(),
            kind: EventKind::Nick {
                new: Nick::new("al").unwrap(),
            },
        };
        assert_eq!(
            serde_json::to_value(View::from(Event::Room(nick))).unwrap(),
            serde_json::json!({
                "type": "room", "room": "#lobby", "seq": 8.0, "at": 5.0,
                "from": "alice", "kind": "nick", "newNick": "al"
            })
        );
        assert_eq!(
            serde_json::to_value(View::from(Event::State(ConnState::Connected))).unwrap(),
            serde_json::json!({"type": "state", "state": "connected"})
        );
        assert_eq!(
            serde_json::to_value(View::from(Event::Joined {
                room: RoomName::lobby(),
                topic: None,
                members: vec![Nick::new("bob").unwrap()],
            }))
            .unwrap(),
            serde_json::json!({"type": "joined", "room": "#lobby", "members": ["bob"]})
        );
        assert_eq!(
            serde_json::to_value(View::from(Event::Connect)).unwrap(),
            serde_json::json!({"type": "connect"})
        );
    }

    #[test]
    fn gaps_count_inclusively_and_states_carry_their_deadline() {
        assert_eq!(
            View::from(Event::Gap {
                room: RoomName::lobby(),
                first: Seq(3),
                last: Seq(7),
            }),
            View::Gap {
                room: "#lobby".into(),
                first: 3.0,
                last: 7.0,
                count: 5.0,
            }
        );
        assert_eq!(
            View::from(Event::State(ConnState::Reconnecting {
                at: Millis(1500),
                attempt: 2,
            })),
            View::State {
                state: "reconnecting",
                at: Some(1500.0),
                attempt: Some(2),
            }
        );
        assert_eq!(
            View::from(Event::Error {
                kind: Some(ErrorKind::NickTaken),
                text: "taken".into(),
            }),
            View::Error {
                kind: Some("NickTaken".into()),
                text: "taken".into(),
            }
        );
    }
}
