//! natter-core: the whole natter chat protocol as sans-IO state machines.
//!
//! - [`wire`]: the binary frame format and its messages;
//! - [`hub`]: the server side, one [`hub::Hub`] for all connections (binary and text mode);
//! - [`session`]: the client's protocol machine, one [`session::Session`] per user (CLI and
//!   browser);
//! - [`chat`]: the client's chat model, what a UI shows, folded from the session's events;
//! - [`command`]: the one parser for typed `/commands`;
//! - [`render`]: words for people, for every surface;
//! - [`limits`]: every limit, with its reason;
//! - [`persist`]: what the hub asks a durable store to keep and to find, as data;
//! - [`proxy`]: the PROXY protocol header a TCP proxy puts in front of a connection;
//! - [`bridge`]: the little of the protocol natter-bridge reads and writes itself.
//!
//! Nothing here performs I/O or reads a clock: bytes and `now` go in, bytes, events and the next
//! deadline come out. It builds for `wasm32-unknown-unknown`.
#![warn(missing_docs)]

pub mod accounts;
pub mod bridge;
pub mod chat;
pub mod command;
mod flood;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod limits;
pub mod moderation;
pub mod persist;
pub mod proxy;
pub mod render;
pub mod search;
pub mod session;
#[cfg(test)]
mod test_support;
pub mod time;
pub mod types;
pub mod wire;

pub use time::Millis;
pub use types::{ConnId, DeviceKey, MsgId, Nick, Password, ResumeToken, RoomName, Seq, Text};
