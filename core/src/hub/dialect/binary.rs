//! The binary dialect (PROTOCOL.md): the `\0NTR` preamble, then length-prefixed bincode frames
//! of [`ClientMsg`] in and [`ServerMsg`] out. Spoken by the `natter` client and by the bridge on
//! behalf of browsers.

use super::{Dialect, EventRef, Form, Hello, IfTaken, Limit, Note, Reply, Request, Step};
use crate::hub::ConnKind;
use crate::limits::INBOUND_MAX_BYTES;
use crate::types::{Nick, RoomName};
use crate::wire::{
    ClientMsg, ErrorKind, FrameDecoder, MAGIC, OLDEST_VERSION, PROTOCOL_VERSION, ServerMsg,
    WireError, decode_payload, encode_frame_for,
};
use bytes::Bytes;

/// A binary connection: how much of the preamble has arrived, the frame decoder, and whether a
/// frame was seen yet (a bridge's `Forwarded` counts only as the very first).
#[derive(Debug, Default)]
pub(crate) struct Binary {
    magic_seen: u8,
    frames: FrameDecoder,
    any_frame: bool,
    /// A bridge speaks for a browser on it (its `Forwarded` was taken): a remembered
    /// device's door is the page (`/devices`).
    pub(crate) bridged: bool,
    /// The protocol version its hello said (0 before it): a version-5 client gets version 5's
    /// forms of what changed since ([`crate::wire::encode_frame_for`]).
    version: u16,
}

impl Binary {
    fn step(&mut self, msg: ClientMsg) -> Step {
        let first = !self.any_frame;
        self.any_frame = true;
        match msg {
            ClientMsg::Hello {
                version,
                nick,
                resume,
            } => {
                self.version = version;
                Step::Hello(Hello {
                    version: Some(version),
                    nick: Some(nick),
                    resume,
                    autojoin: None,
                    taken: IfTaken::Another,
                })
            }
            ClientMsg::Forwarded { peer, secret } => Step::Forwarded {
                peer,
                secret,
                first,
            },
            ClientMsg::Pong { token } => Step::PongTo(token),
            msg => Step::Request(Request::Msg(msg)),
        }
    }
}

fn fatal(limit: Option<Limit>, e: &WireError) -> Step {
    Step::Fatal {
        limit,
        kind: ErrorKind::Protocol,
        detail: e.to_string(),
    }
}

impl Dialect for Binary {
    fn kind(&self) -> ConnKind {
        ConnKind::Binary
    }

    fn feed(&mut self, mut data: &[u8], steps: &mut Vec<Step>) {
        let seen = usize::from(self.magic_seen);
        if seen < MAGIC.len() {
            let take = (MAGIC.len() - seen).min(data.len());
            if data[..take] != MAGIC[seen..seen + take] {
                steps.push(fatal(Some(Limit::Magic), &WireError::BadMagic));
                return;
            }
            // At most the magic's length (4), so it fits.
            self.magic_seen = (seen + take) as u8;
            data = &data[take..];
        }
        // Fed a piece at a time and drained after each, so the decoder holds at most one frame.
        for chunk in data.chunks(INBOUND_MAX_BYTES) {
            self.frames.extend(chunk);
            loop {
                let payload = match self.frames.next_frame() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        steps.push(fatal(Some(Limit::Frame), &e));
                        return;
                    }
                };
                match decode_payload::<ClientMsg>(&payload) {
                    Ok(msg) => steps.push(self.step(msg)),
                    Err(e) => {
                        steps.push(fatal(None, &e));
                        return;
                    }
                }
            }
        }
    }

    fn render(&self, reply: &Reply, me: Option<&Nick>) -> Option<Bytes> {
        let version = self.version.clamp(OLDEST_VERSION, PROTOCOL_VERSION);
        let frame = |msg: &ServerMsg| match encode_frame_for(msg, version) {
            Ok(b) => Some(b),
            Err(e) => {
                // Cannot happen: every field is bounded well inside a frame.
                tracing::warn!(error = %e, "reply did not encode");
                None
            }
        };
        match reply {
            // What its version cannot decode is not sent at all.
            Reply::Msg(msg) if !crate::wire::sent_to(msg, version) => None,
            // Client-only tags are an IRC notion: a natter client gets the message.
            Reply::Msg(msg)
            | Reply::Rejoined(msg)
            | Reply::Settings(msg)
            | Reply::Direct { msg, .. } => frame(msg),
            Reply::Welcome {
                nick,
                token,
                resumed,
                limits,
            } => {
                let Some(token) = token else {
                    debug_assert!(false, "a binary welcome without a resume token");
                    return None;
                };
                frame(&ServerMsg::Welcome {
                    version,
                    nick: nick.clone(),
                    token: token.clone(),
                    resumed: *resumed,
                    limits: *limits,
                })
            }
            Reply::Fatal { kind, detail } => {
                let error = frame(&ServerMsg::Error {
                    kind: *kind,
                    re: crate::wire::Re::Conn,
                    detail: detail.clone(),
                })?;
                let bye = frame(&ServerMsg::Bye {
                    reason: detail.clone(),
                })?;
                Some([error, bye].concat().into())
            }
            Reply::Killed { by, reason } => frame(&ServerMsg::Bye {
                reason: super::killed_words(by, reason.as_deref()),
            }),
            Reply::Ping(token) => frame(&ServerMsg::Ping { token: *token }),
            Reply::Own(bytes) => Some(bytes.clone()),
            Reply::Note(Note::SameNick(nick)) => frame(&ServerMsg::YourNick { nick: nick.clone() }),
            Reply::Note(Note::PastGone(room)) => frame(&ServerMsg::PastEnd {
                room: room.clone(),
                at_start: true,
            }),
            Reply::Note(Note::Size { room, members, .. }) => frame(&ServerMsg::Crowd {
                room: room.clone(),
                joined: 0,
                left: 0,
                members: *members,
            }),
            Reply::Note(Note::Invited { nick, room }) => Some(ServerMsg::InviteSent {
                room: room.clone(),
                nick: nick.clone(),
            })
            .filter(|msg| crate::wire::sent_to(msg, version))
            .and_then(|msg| frame(&msg)),
            Reply::Note(Note::Voiceless { room, why }) => frame(&ServerMsg::Error {
                kind: crate::wire::ErrorKind::Muted,
                re: crate::wire::Re::Room(room.clone()),
                detail: why.clone(),
            }),
            // What an action did where nothing else tells it (version 10 on).
            Reply::Note(
                note @ (Note::Unchanged(_)
                | Note::NickOnly(_)
                | Note::DoneOutside(_)
                | Note::ServerBan { .. }
                | Note::AdminDone(_)),
            ) => note
                .done_words()
                .and_then(|w| crate::types::Text::new(&w).ok())
                .map(ServerMsg::Done)
                .filter(|msg| crate::wire::sent_to(msg, version))
                .and_then(|msg| frame(&msg)),
            // A "back" from someone who was not away says so from version 10 on (before, as
            // any "back").
            Reply::Info(crate::hub::query::Info::NotAway)
                if version >= crate::wire::DONE_VERSION =>
            {
                crate::types::Text::new(crate::render::NOT_AWAY)
                    .ok()
                    .and_then(|t| frame(&ServerMsg::Done(t)))
            }
            // Of the answers to other dialects' questions, away news has a message of its own
            // from version 8 on.
            Reply::Info(info) => info
                .away_msg(me)
                .filter(|msg| crate::wire::sent_to(msg, version))
                .and_then(|msg| frame(&msg)),
            Reply::Note(_) => None,
        }
    }

    /// `Form(0)`: the event's frame as it is, and after a live join of someone away who is away
    /// there ([`ServerMsg::AwayHere`]); `Form(1)`: a client before
    /// [`crate::wire::NOTICE_VERSION`], which gets a notice as a say; `Form(2)`: one before
    /// [`crate::wire::AWAY_HERE_VERSION`], which gets the frame alone. (The current version's
    /// is `Form(0)`: a replay gives it the stored frames themselves.)
    fn event_form(&self, _room: &RoomName) -> Form {
        if self.version < crate::wire::NOTICE_VERSION {
            Form(1)
        } else if self.version < crate::wire::AWAY_HERE_VERSION {
            Form(2)
        } else {
            Form(0)
        }
    }

    fn render_event(&self, ev: &EventRef<'_>, form: Form) -> Option<Bytes> {
        if form == Form(1)
            && let Some(e) = ev.event()
            && matches!(e.kind, crate::wire::EventKind::Notice { .. })
        {
            return self.render(&Reply::Msg(ServerMsg::Event(e.clone())), None);
        }
        if form == Form(0)
            && let Some(away) = &ev.joined_as().away
            && let Some(e) = ev.event()
            && let Some(here) = self.render(
                &Reply::Msg(ServerMsg::AwayHere {
                    room: e.room.clone(),
                    away: vec![(e.from.clone(), away.clone())],
                }),
                None,
            )
        {
            return Some([ev.frame(), here].concat().into());
        }
        Some(ev.frame())
    }

    fn echoes_own(&self) -> bool {
        true
    }

    fn replays_own_join(&self) -> bool {
        true
    }

    fn keepalive(&self) -> bool {
        true
    }

    fn resumable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::nick;
    use crate::wire::encode_frame;

    fn feed(b: &mut Binary, data: &[u8]) -> Vec<Step> {
        let mut steps = Vec::new();
        b.feed(data, &mut steps);
        steps
    }

    #[test]
    fn preamble_then_frames_in_any_cut() {
        let hello = encode_frame(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("ann"),
            resume: None,
        })
        .unwrap();
        let ping = encode_frame(&ClientMsg::Ping { token: 3 }).unwrap();
        let all = [&MAGIC[..], &hello, &ping].concat();
        for cut in 0..all.len() {
            let mut b = Binary::default();
            let mut steps = feed(&mut b, &all[..cut]);
            steps.extend(feed(&mut b, &all[cut..]));
            assert_eq!(steps.len(), 2, "cut at {cut}");
            assert!(matches!(&steps[0], Step::Hello(h) if h.nick == Some(nick("ann"))));
            assert_eq!(
                steps[1],
                Step::Request(Request::Msg(ClientMsg::Ping { token: 3 }))
            );
        }
    }

    #[test]
    fn forwarded_counts_only_first() {
        let fwd = encode_frame(&ClientMsg::Forwarded {
            peer: "192.0.2.1".into(),
            secret: "s".into(),
        })
        .unwrap();
        let mut b = Binary::default();
        let steps = feed(&mut b, &[&MAGIC[..], &fwd, &fwd].concat());
        assert_eq!(
            steps,
            vec![
                Step::Forwarded {
                    peer: "192.0.2.1".into(),
                    secret: "s".into(),
                    first: true
                },
                Step::Forwarded {
                    peer: "192.0.2.1".into(),
                    secret: "s".into(),
                    first: false
                }
            ]
        );
    }

    #[test]
    fn bad_preamble_and_oversize_frames_are_fatal() {
        let mut b = Binary::default();
        let steps = feed(&mut b, b"\0NTX");
        assert!(matches!(
            steps[..],
            [Step::Fatal {
                limit: Some(Limit::Magic),
                ..
            }]
        ));
        let mut b = Binary::default();
        let steps = feed(&mut b, &[&MAGIC[..], &[0xff, 0xff, 0xff, 0xff]].concat());
        assert!(matches!(
            steps[..],
            [Step::Fatal {
                limit: Some(Limit::Frame),
                ..
            }]
        ));
        let mut b = Binary::default();
        let steps = feed(&mut b, &[&MAGIC[..], &[0, 0, 0, 1, 99]].concat());
        assert!(matches!(steps[..], [Step::Fatal { limit: None, .. }]));
    }
}
