//! What natter-bridge reads and writes of the chat protocol itself. The bridge relays frames
//! byte for byte and decodes nothing else: it hands this module whole frames (cut with
//! [`wire::whole_frames_len`]) and carries out what it says. The server's first message may be
//! its refusal of the bridge's secret; a page that was left (its WebSocket closed with
//! [`LEFT_THE_PAGE`]) is let go at the server's probe, when a reload resumed its session
//! elsewhere, or quit for after [`LEFT_PAGE_GRACE`](crate::limits::LEFT_PAGE_GRACE).

use crate::types::Text;
use crate::wire::{self, ClientMsg, ErrorKind, ServerMsg};
use bytes::Bytes;

/// The close code of a page's WebSocket closed because the page was left for good or for a
/// reload, which the page cannot tell apart (`pagehide` not kept in the back/forward cache):
/// www/static/app.js closes with it, and the bridge then holds the page's server connection
/// for [`LEFT_PAGE_GRACE`](crate::limits::LEFT_PAGE_GRACE) before it quits for it.
pub const LEFT_THE_PAGE: u16 = 4100;

/// The reason of the quit the bridge sends for a page left for good.
const LEFT_REASON: &str = "left the page";

/// The server's words, if the first of `frames` (whole frames, the first the server sent after
/// the bridge's `Forwarded`) is its refusal of the bridge's secret (`ErrorKind::BridgeSecret`):
/// the bridge's to log, not the browser's to see.
pub fn secret_refusal(frames: &[u8]) -> Option<String> {
    let Some(Ok(payload)) = wire::frame_payloads(frames).next() else {
        return None;
    };
    match wire::decode_payload::<ServerMsg>(payload) {
        Ok(ServerMsg::Error {
            kind: ErrorKind::BridgeSecret,
            detail,
            ..
        }) => Some(detail),
        _ => None,
    }
}

/// Whether `frames` (whole frames the server sent on the connection of a page that was left)
/// hold the server's probe: the `Ping` marked [`wire::PROBE_TOKEN`] it sends the attached
/// connection when a reload's `Hello` resumes the session on a new one. The bridge then lets
/// the held connection go unanswered, so the newcomer takes the session over at once, and
/// sends no quit. Anything else is dropped: room events, and keepalive pings (a page that only
/// reads a busy room is pinged every [`PING_AFTER`](crate::limits::PING_AFTER); taken for a
/// probe, one in the grace left a tab closed for good holding its nick for the resume window).
/// A damaged frame is not a probe.
pub fn resumed_elsewhere(frames: &[u8]) -> bool {
    wire::frame_payloads(frames).any(|p| {
        p.is_ok_and(|p| {
            matches!(
                wire::decode_payload::<ServerMsg>(p),
                Ok(ServerMsg::Ping { token }) if token & wire::PROBE_TOKEN != 0
            )
        })
    })
}

/// The frame the bridge writes for a page left for good (no probe within the grace): a `Quit`
/// saying so, after which the page's nick is free and its rooms see it go.
pub fn quit_for_left_page() -> Bytes {
    let quit = ClientMsg::Quit {
        reason: Text::new(LEFT_REASON).ok(),
    };
    // Cannot fail: a quit with a short reason encodes far below MAX_FRAME.
    wire::encode_frame(&quit).expect("a quit encodes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::text;
    use crate::wire::{Re, encode_frame};

    fn frames(msgs: &[ServerMsg]) -> Vec<u8> {
        msgs.iter()
            .flat_map(|m| encode_frame(m).unwrap().to_vec())
            .collect()
    }

    fn refusal(kind: ErrorKind) -> ServerMsg {
        ServerMsg::Error {
            kind,
            re: Re::Conn,
            detail: "the bridge secret is wrong".into(),
        }
    }

    /// Only the first frame is the answer to the bridge's `Forwarded`; a refusal of another
    /// kind, or one further on, is the browser's.
    #[test]
    fn the_secrets_refusal_is_the_first_frame_of_its_kind() {
        assert_eq!(
            secret_refusal(&frames(&[refusal(ErrorKind::BridgeSecret)])).as_deref(),
            Some("the bridge secret is wrong")
        );
        let pong = ServerMsg::Pong { token: 1 };
        assert_eq!(
            secret_refusal(&frames(&[refusal(ErrorKind::BridgeSecret), pong.clone()])).as_deref(),
            Some("the bridge secret is wrong")
        );
        assert_eq!(
            secret_refusal(&frames(&[pong, refusal(ErrorKind::BridgeSecret)])),
            None
        );
        assert_eq!(
            secret_refusal(&frames(&[refusal(ErrorKind::Protocol)])),
            None
        );
        assert_eq!(secret_refusal(&[]), None);
        assert_eq!(secret_refusal(&[0, 0, 0, 2, 0xff, 0xff]), None, "junk");
    }

    /// The server's probe among what else a held connection gets: a reload resumed the
    /// session. Room events, pongs, keepalive pings and damaged frames are not.
    #[test]
    fn a_held_page_is_let_go_at_the_servers_probe_only() {
        let pong = ServerMsg::Pong { token: 1 };
        let bye = ServerMsg::Bye {
            reason: "bye".into(),
        };
        assert!(!resumed_elsewhere(&frames(&[pong.clone(), bye])));
        assert!(!resumed_elsewhere(&[]));
        assert!(!resumed_elsewhere(&[0, 0, 0, 1, 0xff]), "not a message");
        // Found in the thirty-first session's audit: any ping was taken for the probe, so a
        // keepalive in the grace kept a closed tab's nick for the whole resume window.
        assert!(
            !resumed_elsewhere(&frames(&[ServerMsg::Ping { token: 9 }])),
            "a keepalive"
        );
        assert!(resumed_elsewhere(&frames(&[
            pong,
            ServerMsg::Ping {
                token: wire::PROBE_TOKEN | 9
            }
        ])));
    }

    #[test]
    fn the_quit_for_a_left_page_says_so() {
        let quit = quit_for_left_page();
        let payload = wire::frame_payloads(&quit).next().unwrap().unwrap();
        assert_eq!(
            wire::decode_payload::<ClientMsg>(payload).unwrap(),
            ClientMsg::Quit {
                reason: Some(text("left the page"))
            }
        );
        assert_eq!(
            wire::whole_frames_len(&quit).unwrap(),
            quit.len(),
            "one frame"
        );
    }
}
