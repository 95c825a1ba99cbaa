//! What the generator puts on the wire for each target, and how it recognises a delivery in
//! what comes back, without decoding every frame: a chat event ends with its text, so the last
//! [`PAYLOAD_LEN`] bytes of a delivery are the bench [`Stamp`]. Everything else (welcome,
//! joined, join events, errors) is decoded properly. `verify` decodes deliveries too.

use crate::Target;
use crate::stamp::{PAYLOAD_LEN, Stamp};
use bytes::Bytes;
use natter_core::wire::{
    ClientMsg, EventKind, MAGIC, PROTOCOL_VERSION, RoomEvent, ServerMsg, decode_payload,
    encode_frame, encode_payload,
};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// Why the generator could not build or understand a message.
#[derive(Debug, Error)]
pub enum BenchWireError {
    /// A name or text the generator made was refused by natter's types (a bench bug).
    #[error("invalid bench name or text: {0}")]
    Invalid(String),
    /// natter's encoder failed.
    #[error(transparent)]
    Wire(#[from] natter_core::wire::WireError),
}

/// What one received payload was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A bench message.
    Delivery(Stamp),
    /// The client is in the room (natter: `Joined`; baseline: its greeting).
    Ready,
    /// The server skipped room events for this client (it read too slowly).
    Gap,
    /// The server reported an error or said goodbye.
    Failed(String),
    /// Anything else (welcome, other members' joins, history).
    Other,
}

/// Encodings for one target and room. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Codec {
    target: Target,
    /// Unique per codec in this process: old members of an earlier run (kept by the hub for
    /// resume, with their history) never collide with this run's nicks and room.
    tag: String,
    room: RoomName,
    /// First byte of an encoded `ServerMsg::Event`.
    event_tag: u8,
    verify: bool,
}

impl Codec {
    /// A codec for `target`; `verify` decodes every delivery fully and compares.
    pub fn new(target: Target, room: &str, verify: bool) -> Result<Codec, BenchWireError> {
        let target = target.wire();
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}", (u64::from(std::process::id()) << 12) ^ n);
        let room = RoomName::new(&format!("{room}-{tag}"))
            .map_err(|e| BenchWireError::Invalid(e.to_string()))?;
        let sample = encode_payload(&ServerMsg::Event(RoomEvent {
            room: room.clone(),
            seq: Seq(1),
            at: Millis(1),
            from: nick("x", 0)?,
            kind: EventKind::Join,
        }))?;
        Ok(Codec {
            target,
            tag,
            room,
            event_tag: sample[0],
            verify,
        })
    }

    /// What a client sends before its first message: for TCP with the length prefixes, for the
    /// bridge one bare payload per WebSocket message (the bridge adds the prefixes). Empty for the
    /// baseline.
    pub fn handshake(&self, client: u32, room: &RoomName) -> Result<Vec<Bytes>, BenchWireError> {
        if self.target.speaks_irc() {
            // echo-message: the sender's own copy is its acknowledgement, as with natter.
            let register = format!(
                "CAP REQ :echo-message\r\nNICK {}\r\nUSER bench 0 * :bench\r\nCAP END\r\n",
                nick_text(&self.tag, client)
            );
            return Ok(vec![Bytes::from(register)]);
        }
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick(&self.tag, client)?,
            resume: None,
        };
        let join = ClientMsg::Join { room: room.clone() };
        match self.target {
            Target::Baseline => Ok(Vec::new()),
            Target::Irc | Target::Inspircd => Ok(Vec::new()),
            Target::Natter | Target::NatterTls | Target::NatterStore | Target::NatterMetrics => {
                let mut first = MAGIC.to_vec();
                first.extend_from_slice(&encode_frame(&hello)?);
                first.extend_from_slice(&encode_frame(&join)?);
                Ok(vec![Bytes::from(first)])
            }
            Target::NatterAccounts | Target::NatterAll => {
                // Registered (and so signed in) before the run: its messages are an account's.
                let register = ClientMsg::Register {
                    password: natter_core::types::Password("bench password".into()),
                    remember: false,
                };
                let mut first = MAGIC.to_vec();
                first.extend_from_slice(&encode_frame(&hello)?);
                first.extend_from_slice(&encode_frame(&register)?);
                first.extend_from_slice(&encode_frame(&join)?);
                Ok(vec![Bytes::from(first)])
            }
            Target::Bridge => Ok(vec![encode_payload(&hello)?, encode_payload(&join)?]),
        }
    }

    /// What an IRC client sends once it is registered (`001`): the JOIN of the room.
    pub fn irc_join(&self) -> Bytes {
        Bytes::from(format!("JOIN {}\r\n", self.room))
    }

    /// Whether an IRC line is the end of registration (`001`).
    pub fn irc_welcomed(line: &[u8]) -> bool {
        let mut words = line.split(|b| *b == b' ');
        words.next().is_some_and(|w| w.starts_with(b":")) && words.next() == Some(b"001")
    }

    /// The target this codec speaks to.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The room of this codec.
    pub fn room(&self) -> &RoomName {
        &self.room
    }

    /// One chat message carrying `stamp`: a frame for TCP, a bare payload for the bridge. The
    /// baseline gets the same bytes natter gets; it relays them unread.
    pub fn say(&self, stamp: Stamp) -> Result<Bytes, BenchWireError> {
        if self.target.speaks_irc() {
            return Ok(Bytes::from(format!(
                "PRIVMSG {} :{}\r\n",
                self.room,
                stamp.text()
            )));
        }
        let text = Text::new(&stamp.text()).map_err(|e| BenchWireError::Invalid(e.to_string()))?;
        let msg = ClientMsg::Say {
            room: self.room.clone(),
            // Ids must grow from 1: the hub takes an id at or below the last one for a resend.
            id: MsgId(u64::from(stamp.seq) + 1),
            text,
        };
        Ok(match self.target {
            Target::Bridge => encode_payload(&msg)?,
            _ => encode_frame(&msg)?,
        })
    }

    /// What `payload` (one frame without its length prefix; the bridge's batches are cut into
    /// these by the reader; for IRC one line without its CR LF) is.
    pub fn classify(&self, payload: &[u8]) -> Received {
        match self.target {
            Target::Irc | Target::Inspircd => self.classify_line(payload),
            Target::Baseline => {
                if payload.is_empty() {
                    return Received::Ready;
                }
                match tail_stamp(payload) {
                    Some(s) => Received::Delivery(s),
                    None => {
                        Received::Failed("baseline relayed bytes that are no bench message".into())
                    }
                }
            }
            Target::Natter
            | Target::NatterTls
            | Target::NatterStore
            | Target::NatterAccounts
            | Target::NatterMetrics
            | Target::NatterAll
            | Target::Bridge => {
                if !self.verify
                    && payload.first() == Some(&self.event_tag)
                    && payload.len() > PAYLOAD_LEN
                    && payload[payload.len() - PAYLOAD_LEN - 1] == PAYLOAD_LEN as u8
                    && let Some(s) = tail_stamp(payload)
                {
                    return Received::Delivery(s);
                }
                self.decode(payload)
            }
        }
    }

    /// An IRC line: a delivery is a PRIVMSG whose text is a stamp (the fast path reads only its
    /// last 65 bytes: `:` and the stamp); the end of NAMES of the room means in the room.
    fn classify_line(&self, line: &[u8]) -> Received {
        let n = line.len();
        if !self.verify
            && n > PAYLOAD_LEN + 1
            && line[n - PAYLOAD_LEN - 1] == b':'
            && let Some(s) = tail_stamp(line)
        {
            return Received::Delivery(s);
        }
        let text = String::from_utf8_lossy(line);
        let mut words = text.split(' ');
        let source = words.next().unwrap_or_default();
        let command = words.next().unwrap_or_default();
        let target = words.next().unwrap_or_default();
        match command {
            "PRIVMSG" if target == self.room.as_str() => {
                let said = text.split_once(" :").map_or("", |(_, t)| t);
                match Stamp::parse(said.as_bytes()) {
                    Some(s) => {
                        let from = source.trim_start_matches(':').split('!').next();
                        if from == Some(nick_text(&self.tag, s.sender).as_str()) {
                            Received::Delivery(s)
                        } else {
                            Received::Failed(format!(
                                "message of sender {} arrived from {source}",
                                s.sender
                            ))
                        }
                    }
                    None => Received::Other,
                }
            }
            "366" if words.next() == Some(self.room.as_str()) => Received::Ready,
            "NOTICE" if text.contains("were not delivered") => Received::Gap,
            _ if source == "ERROR" => Received::Failed(format!("server closed: {text}")),
            // 422: no message of the day, which InspIRCd's bench config has none of.
            c if c.len() == 3 && (c.starts_with('4') || c.starts_with('5')) && c != "422" => {
                Received::Failed(format!("server refused: {text}"))
            }
            _ => Received::Other,
        }
    }

    fn decode(&self, payload: &[u8]) -> Received {
        let msg = match decode_payload::<ServerMsg>(payload) {
            Ok(m) => m,
            Err(e) => return Received::Failed(format!("undecodable frame from server: {e}")),
        };
        match msg {
            ServerMsg::Joined { room, .. } if room == self.room => Received::Ready,
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { text, .. },
                from,
                ..
            }) => match Stamp::parse(text.as_str().as_bytes()) {
                Some(s) if from.as_str() == nick_text(&self.tag, s.sender) => Received::Delivery(s),
                Some(s) => Received::Failed(format!(
                    "message of sender {} arrived from nick {from}",
                    s.sender
                )),
                None => Received::Other,
            },
            ServerMsg::Gap { .. } => Received::Gap,
            ServerMsg::Error { kind, detail, .. } => {
                Received::Failed(format!("server error {kind:?}: {detail}"))
            }
            ServerMsg::Bye { reason } => Received::Failed(format!("server said bye: {reason}")),
            _ => Received::Other,
        }
    }
}

fn tail_stamp(payload: &[u8]) -> Option<Stamp> {
    let from = payload.len().checked_sub(PAYLOAD_LEN)?;
    Stamp::parse(&payload[from..])
}

fn nick_text(tag: &str, client: u32) -> String {
    format!("n{tag}-{client}")
}

/// The nick of bench client `client` of the codec tagged `tag`.
fn nick(tag: &str, client: u32) -> Result<Nick, BenchWireError> {
    Nick::new(&nick_text(tag, client)).map_err(|e| BenchWireError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::wire::FrameDecoder;

    fn event(c: &Codec, stamp: Stamp, from: u32) -> Vec<u8> {
        encode_payload(&ServerMsg::Event(RoomEvent {
            room: c.room().clone(),
            seq: Seq(77),
            at: Millis(1_700_000_000_000),
            from: nick(&c.tag, from).unwrap(),
            kind: EventKind::Say {
                id: MsgId(u64::from(stamp.seq)),
                text: Text::new(&stamp.text()).unwrap(),
            },
        }))
        .unwrap()
        .to_vec()
    }

    #[test]
    fn fast_path_and_full_decode_agree() {
        let s = Stamp {
            sender: 3,
            seq: 9,
            sent_ns: 12345,
        };
        for verify in [false, true] {
            let c = Codec::new(Target::Natter, "#bench", verify).unwrap();
            assert_eq!(c.classify(&event(&c, s, 3)), Received::Delivery(s));
            let joined = encode_payload(&ServerMsg::Joined {
                room: c.room().clone(),
                topic: None,
                members: vec![],
                seq: Seq(1),
            })
            .unwrap();
            assert_eq!(c.classify(&joined), Received::Ready);
            let err = encode_payload(&ServerMsg::Error {
                kind: natter_core::wire::ErrorKind::Flood,
                re: natter_core::wire::Re::Conn,
                detail: "slow".into(),
            })
            .unwrap();
            assert!(matches!(c.classify(&err), Received::Failed(_)));
        }
        // Full decoding also checks the sender's nick.
        let c = Codec::new(Target::Natter, "#bench", true).unwrap();
        assert!(matches!(c.classify(&event(&c, s, 4)), Received::Failed(_)));
    }

    #[test]
    fn irc_lines_are_deliveries_readiness_and_errors() {
        let s = Stamp {
            sender: 2,
            seq: 7,
            sent_ns: 99,
        };
        for verify in [false, true] {
            let c = Codec::new(Target::Irc, "#bench", verify).unwrap();
            let said = c.say(s).unwrap();
            let said = std::str::from_utf8(&said).unwrap();
            assert!(said.starts_with(&format!("PRIVMSG {} :", c.room())));
            let from = nick_text(&c.tag, 2);
            let line = format!(":{from}!{from}@natter {}", said.trim_end());
            assert_eq!(c.classify(line.as_bytes()), Received::Delivery(s));
            let names = format!(":natter.irc 366 {from} {} :End of /NAMES list", c.room());
            assert_eq!(c.classify(names.as_bytes()), Received::Ready);
            assert!(matches!(c.classify(b"ERROR :goodbye"), Received::Failed(_)));
            assert!(matches!(
                c.classify(b":natter.irc 404 x #b :Cannot send"),
                Received::Failed(_)
            ));
            assert_eq!(c.classify(b":natter.irc 372 x :- motd"), Received::Other);
        }
        // Full reading checks the sender's nick.
        let c = Codec::new(Target::Irc, "#bench", true).unwrap();
        let said = c.say(s).unwrap();
        let line = format!(
            ":someone!x@y {}",
            std::str::from_utf8(&said).unwrap().trim_end()
        );
        assert!(matches!(c.classify(line.as_bytes()), Received::Failed(_)));
        assert!(Codec::irc_welcomed(b":natter.irc 001 n :Welcome"));
        assert!(!Codec::irc_welcomed(b":natter.irc 002 n :Your host"));
    }

    #[test]
    fn baseline_sees_the_say_frame_it_relays() {
        let c = Codec::new(Target::Baseline, "#bench", false).unwrap();
        let s = Stamp {
            sender: 1,
            seq: 2,
            sent_ns: 3,
        };
        let frame = c.say(s).unwrap();
        let mut d = FrameDecoder::new();
        d.extend(&frame);
        let payload = d.next_frame().unwrap().unwrap();
        assert_eq!(c.classify(&payload), Received::Delivery(s));
        assert_eq!(c.classify(&[]), Received::Ready);
        assert!(c.handshake(1, c.room()).unwrap().is_empty());
    }
}
