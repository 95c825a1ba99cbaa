//! Issue 8, the client side: a hostile server. Core's `Session` (the CLI's and the page's state
//! machine) and the `natter` CLI binary in line mode are fed well-formed but absurd messages (seqs
//! at `u64::MAX`, inverted and endless gaps, events for rooms never joined, a second welcome,
//! terminal escapes in the free-text `detail` and `reason` strings), then broken connections
//! (a partial frame then EOF, garbage, a 4 GiB length prefix). Nothing may panic, the session
//! keeps reconnecting, and no raw ESC reaches the CLI's output.

mod attack_support;

use attack_support::{Bytes64, natter_cli};
use natter_core::session::{Event, Session, SessionConfig, Transport};
use natter_core::wire::{
    DirectMsg, ErrorKind, EventKind, Limits, MAGIC, Re, RoomEvent, RoomInfo, ServerMsg,
    encode_frame,
};
use natter_core::{Millis, MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout};

const ESC_DETAIL: &str = "\x1b]0;pwned\x07\x1b[2J\x1b[31mhostile-detail\u{9b}1m";

fn n(s: &str) -> Nick {
    Nick::new(s).unwrap()
}
fn r(s: &str) -> RoomName {
    RoomName::new(s).unwrap()
}
fn t(s: &str) -> Text {
    Text::new(s).unwrap()
}

fn say(room: &str, seq: u64, text: &str) -> ServerMsg {
    ServerMsg::Event(RoomEvent {
        room: r(room),
        seq: Seq(seq),
        at: Millis(u64::MAX),
        from: n("mallory"),
        kind: EventKind::Say {
            id: MsgId(u64::MAX),
            text: t(text),
        },
    })
}

/// What the hostile server says after the client's hello, in order.
fn hostile_script() -> Vec<ServerMsg> {
    let lobby = "#lobby";
    let mut v = vec![
        ServerMsg::Welcome {
            version: natter_core::wire::PROTOCOL_VERSION,
            nick: n("victim"),
            token: ResumeToken([7; 32]),
            resumed: false,
            limits: Limits::default(),
        },
        ServerMsg::Joined {
            room: r(lobby),
            topic: Some(t("topic")),
            members: vec![n("victim"); 300],
            seq: Seq(u64::MAX - 1),
        },
        say(lobby, u64::MAX, "hostile-max-seq"),
        say(lobby, 0, "hostile-zero-seq"),
        ServerMsg::Gap {
            room: r(lobby),
            first: Seq(0),
            last: Seq(u64::MAX),
        },
        ServerMsg::Gap {
            room: r(lobby),
            first: Seq(10),
            last: Seq(5),
        },
        ServerMsg::Gap {
            room: r("#elsewhere"),
            first: Seq(1),
            last: Seq(100),
        },
        say("#elsewhere", 1, "hostile-unjoined-room"),
        ServerMsg::Joined {
            room: r(lobby),
            topic: None,
            members: Vec::new(),
            seq: Seq(0),
        },
        ServerMsg::Members {
            room: r("#nowhere"),
            members: (0..300).map(|i| n(&format!("m{i}"))).collect(),
        },
        ServerMsg::Rooms {
            rooms: (0..100)
                .map(|i| RoomInfo {
                    room: r(&format!("#r{i}")),
                    members: u32::MAX,
                })
                .collect(),
        },
        ServerMsg::Topic {
            room: r("#nowhere"),
            topic: None,
        },
        ServerMsg::YourNick { nick: n("someone") },
        ServerMsg::Direct(DirectMsg {
            from: n("a"),
            to: n("b"),
            id: MsgId(u64::MAX),
            at: Millis(0),
            text: t("hostile-dm-to-someone-else"),
        }),
        ServerMsg::Ack {
            id: MsgId(u64::MAX),
        },
        ServerMsg::Pong { token: 7 },
        ServerMsg::Ping { token: u64::MAX },
        ServerMsg::Parted {
            room: r("#nowhere"),
        },
        ServerMsg::Error {
            kind: ErrorKind::Flood,
            re: Re::Msg(MsgId(u64::MAX)),
            detail: ESC_DETAIL.into(),
        },
        ServerMsg::Error {
            kind: ErrorKind::BadCommand,
            re: Re::Conn,
            detail: format!("{}\n{}", "x".repeat(4000), ESC_DETAIL),
        },
        ServerMsg::Welcome {
            version: natter_core::wire::PROTOCOL_VERSION,
            nick: n("victim2"),
            token: ResumeToken([8; 32]),
            resumed: true,
            limits: Limits {
                flood_burst: 0,
                flood_refill: Millis(u64::MAX),
                max_text_bytes: 0,
                max_rooms_per_user: 0,
            },
        },
        say(lobby, 5, "hostile-after-second-welcome"),
        // Seqs at the very end of their range, in a room joined at u64::MAX.
        ServerMsg::Joined {
            room: r("#edge"),
            topic: None,
            members: vec![n("victim")],
            seq: Seq(u64::MAX),
        },
        say("#edge", u64::MAX, "hostile-edge-max"),
        ServerMsg::Gap {
            room: r("#edge"),
            first: Seq(u64::MAX),
            last: Seq(u64::MAX),
        },
        ServerMsg::Gap {
            room: r("#edge"),
            first: Seq(u64::MAX - 3),
            last: Seq(u64::MAX),
        },
        say("#edge", u64::MAX - 1, "hostile-edge-refill"),
        say("#edge", 1, "hostile-edge-wrapped"),
    ];
    v.push(ServerMsg::Bye {
        reason: format!("hostile-bye {ESC_DETAIL}"),
    });
    v
}

/// The broken connections that follow the script, one per reconnect.
fn broken_streams() -> Vec<Vec<u8>> {
    let welcome = encode_frame(&ServerMsg::Welcome {
        version: natter_core::wire::PROTOCOL_VERSION,
        nick: n("victim"),
        token: ResumeToken([7; 32]),
        resumed: true,
        limits: Limits::default(),
    })
    .unwrap();
    let long = encode_frame(&say("#lobby", 9, &"y".repeat(1500))).unwrap();
    vec![
        // A partial frame, then EOF.
        [&welcome[..], &long[..long.len() / 2]].concat(),
        // Garbage.
        Bytes64(3).fill(3000),
        // A 4 GiB length prefix.
        [&welcome[..], &[0xff, 0xff, 0xff, 0xff, 0, 0][..]].concat(),
        // A frame that decodes to nothing valid.
        [&welcome[..], &[0, 0, 0, 3, 0xff, 0xff, 0xff][..]].concat(),
    ]
}

/// The strings a UI shows for an event (what could carry an escape to a terminal).
fn shown(ev: &Event) -> Vec<String> {
    match ev {
        Event::Room(e) => vec![natter_core::render::event_line(e, None, Some(&n("victim")))],
        Event::Direct(d) => vec![natter_core::render::direct_line(d, &n("victim"))],
        Event::Error { text, .. } | Event::Info(text) => vec![text.clone()],
        Event::Joined { topic, .. } | Event::Topic { topic, .. } => {
            topic.iter().map(|t| t.as_str().to_owned()).collect()
        }
        _ => Vec::new(),
    }
}

/// Drives a Session through the script and the broken connections, in memory. A panic anywhere
/// fails the test; every shown string is checked for ESC.
fn drive_session(transport: Transport) {
    let config = SessionConfig {
        nick: n("victim"),
        rooms: vec![RoomName::lobby()],
        transport,
        seed: 9,
    };
    let mut now = Millis(0);
    let mut s = Session::new(config, now);
    let mut connects = 0;
    let mut events = Vec::new();
    let mut inputs: Vec<Vec<Vec<u8>>> = Vec::new();
    // Connection 1: the script, one message per read (or per WebSocket message).
    inputs.push(
        hostile_script()
            .iter()
            // Both carry length-prefixed frames: the bridge passes the server's bytes on in
            // batches of whole frames.
            .map(|m| encode_frame(m).unwrap().to_vec())
            .collect(),
    );
    for b in broken_streams() {
        inputs.push(match transport {
            Transport::Stream => vec![b],
            // Over WebSocket: the same bytes as whole messages (undecodable ones), an empty one.
            Transport::Messages => vec![b, Vec::new(), vec![0xff; 20_000]],
        });
    }
    let mut inputs = inputs.into_iter();
    // Bounded: at most this many steps of (events, one connection's input, the next timeout).
    for _ in 0..200 {
        while let Some(ev) = s.poll_event() {
            if ev == Event::Connect {
                connects += 1;
                s.handle_connected(now);
                while s.poll_transmit().is_some() {}
                match inputs.next() {
                    Some(chunks) => {
                        for c in chunks {
                            match transport {
                                Transport::Stream => s.handle_bytes(&c, now),
                                Transport::Messages => s.handle_message(&c, now),
                            }
                            now = now + Millis(1);
                        }
                        s.handle_disconnected("hostile server hung up", now);
                    }
                    None => s.handle_disconnected("no more hostile servers", now),
                }
            } else {
                events.push(ev);
            }
        }
        while s.poll_transmit().is_some() {}
        now = s
            .poll_timeout()
            .unwrap_or(now + Millis(1000))
            .max(now + Millis(1));
        s.handle_timeout(now);
    }
    for ev in &events {
        for line in shown(ev) {
            assert!(
                !line.contains('\x1b'),
                "{transport:?}: ESC in {line:?} from {ev:?}"
            );
        }
    }
    assert!(
        connects > broken_streams().len(),
        "{transport:?}: stopped reconnecting after {connects} connections; events: {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error { text, .. } if text.contains("hostile-detail"))),
        "{transport:?}: the error detail never showed; events: {events:#?}"
    );
}

#[test]
fn a_hostile_server_cannot_crash_or_escape_a_stream_session() {
    drive_session(Transport::Stream);
}

#[test]
fn a_hostile_server_cannot_crash_or_escape_a_websocket_session() {
    drive_session(Transport::Messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_cannot_crash_or_escape_the_cli() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let home = std::env::temp_dir().join(format!("natter-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut cli = tokio::process::Command::new(natter_cli())
        .args([
            "--lines", "--nick", "victim", "--room", "#lobby", "--wait", "30",
        ])
        .arg(addr.to_string())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter CLI starts");
    let stdin = cli.stdin.take();
    let out = cli.stdout.take().unwrap();
    let err = cli.stderr.take().unwrap();
    let collect = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(Ok(n)) = timeout(Duration::from_secs(60), r.read(&mut buf)).await {
                if n == 0 || all.len() > 1 << 20 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            all
        })
    };
    let out_task = collect(Box::new(out));
    let err_task = collect(Box::new(err));

    // Serve the script, then each broken connection, to whatever the CLI reconnects with.
    let mut conversations: Vec<Vec<u8>> = vec![
        hostile_script()
            .iter()
            .flat_map(|m| encode_frame(m).unwrap().to_vec())
            .collect(),
    ];
    conversations.extend(broken_streams());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut served = 0;
    for bytes in conversations {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok((mut s, _))) = timeout(left, listener.accept()).await else {
            break;
        };
        // Its preamble and hello (whatever it sends first).
        let mut first = [0u8; 256];
        let got = timeout(Duration::from_secs(5), s.read(&mut first)).await;
        assert!(
            matches!(got, Ok(Ok(n)) if n >= 4 && first[..4] == MAGIC),
            "the CLI did not open with the preamble"
        );
        let _ = timeout(Duration::from_secs(5), s.write_all(&bytes)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(s);
        served += 1;
    }
    drop(stdin);
    let _ = cli.start_kill();
    let status = timeout(Duration::from_secs(10), cli.wait())
        .await
        .expect("the CLI exits once killed")
        .expect("wait");
    let out = timeout(Duration::from_secs(10), out_task)
        .await
        .unwrap()
        .unwrap();
    let err = timeout(Duration::from_secs(10), err_task)
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    let out_text = String::from_utf8_lossy(&out);
    let err_text = String::from_utf8_lossy(&err);
    assert!(
        !err_text.contains("panicked") && status.code() != Some(101),
        "the CLI panicked ({status:?}): {err_text}"
    );
    assert_eq!(
        served,
        1 + broken_streams().len(),
        "the CLI stopped reconnecting; stdout: {out_text}\nstderr: {err_text}"
    );
    assert!(
        !out.contains(&0x1b),
        "raw ESC on the CLI's stdout: {out_text:?}"
    );
    assert!(
        out_text.contains("hostile-detail"),
        "the error never showed: {out_text:?}"
    );
}
