//! natter-server over real sockets on 127.0.0.1: text and binary clients chatting, rooms, resume,
//! every limit, and graceful shutdown (in process and of the binary on SIGTERM).

mod support;

use natter_core::wire::{ClientMsg, ErrorKind, EventKind, Resume, RoomEvent, ServerMsg};
use natter_core::{Millis, Seq};
use natter_server::{ServerConfig, start};
use std::time::Duration;
use support::*;
use tokio::time::timeout;

/// Shutting down, including the going-away notices, takes at most this long.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

async fn stop(server: natter_server::Server) {
    timeout(SHUTDOWN_WAIT, server.shutdown())
        .await
        .expect("shutdown timed out")
        .expect("shutdown failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_text_clients_chat_without_echo() {
    let server = start(ServerConfig::local_test()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, nick_b) = TextClient::welcomed(addr, "b").await;
    assert!(nick_a.starts_with("guest"), "{nick_a}");
    assert_ne!(nick_a, nick_b);
    // a hears b arrive.
    a.expect_has(&format!("-- {nick_b} joined #lobby")).await;

    a.send("hello from a").await;
    b.expect(|l| l == format!("<{nick_a}> hello from a"), "a's line")
        .await;
    b.send("and hi from b").await;
    a.expect(|l| l == format!("<{nick_b}> and hi from b"), "b's line")
        .await;
    // By now a's own line would have come back, had it been echoed.
    assert!(
        !a.seen.iter().any(|l| l.contains("hello from a")),
        "echoed to the sender: {:#?}",
        a.seen
    );
    assert!(
        !b.seen.iter().any(|l| l.contains("and hi from b")),
        "echoed to the sender: {:#?}",
        b.seen
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_binary_clients_share_a_room() {
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut bin, welcome) = BinClient::hello(addr, "bina", None).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { nick, resumed: false, .. } if nick.as_str() == "bina"),
        "{welcome:?}"
    );
    bin.join("#lobby").await;
    let (mut txt, tnick) = TextClient::entered(addr, "txt").await;
    txt.send("hi binary").await;
    let ev = bin
        .expect(
            |m| {
                matches!(
                    m,
                    ServerMsg::Event(RoomEvent {
                        kind: EventKind::Say { .. },
                        ..
                    })
                )
            },
            "the text user's line",
        )
        .await;
    let ServerMsg::Event(ev) = ev else {
        unreachable!()
    };
    assert_eq!(ev.from.as_str(), tnick);
    assert_eq!(ev.room.as_str(), "#lobby");
    assert!(matches!(&ev.kind, EventKind::Say { text, .. } if text.as_str() == "hi binary"));
    // Server timestamps are Unix milliseconds (after 2020).
    assert!(ev.at > Millis(1_577_836_800_000), "{:?}", ev.at);

    let id = bin.say("#lobby", "hi text").await;
    txt.expect(|l| l == "<bina> hi text", "the binary user's line")
        .await;
    // The binary sender gets its own say back as the acknowledgement.
    bin.expect(
        |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Say { id: i, .. }, .. }) if *i == id),
        "own say echoed as ack",
    )
    .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_dms_nicks_topics_and_history() {
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut alice, _) = BinClient::hello(addr, "alice", None).await;
    alice.join("#rust").await;
    for t in ["m1", "m2", "m3"] {
        alice.say("#rust", t).await;
    }
    for t in ["m1", "m2", "m3"] {
        alice
            .expect(|m| said(std::slice::from_ref(m)) == [t], "own say")
            .await;
    }

    let (mut carol, _) = TextClient::entered(addr, "carol").await;
    // Nick clash, case-insensitively.
    carol.send("/nick ALICE").await;
    carol
        .expect(|l| l.starts_with("ERROR:"), "nick taken error")
        .await;
    carol.send("/nick carol").await;
    carol.expect_has("carol").await;

    // Join replays history and lists members.
    carol.send("/join #rust").await;
    carol.expect_has("-- you are in #rust with: alice").await;
    for t in ["m1", "m2", "m3"] {
        carol
            .expect(|l| l == format!("<alice> {t}"), "history replay")
            .await;
    }
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Join, from, .. }) if from.as_str() == "carol"),
            "carol's join",
        )
        .await;

    // Topic.
    carol.send("/topic #rust all about Rust").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Topic { topic: Some(t) }, .. }) if t.as_str() == "all about Rust"),
            "topic event",
        )
        .await;
    alice
        .send(&ClientMsg::Topic {
            room: room("#rust"),
            topic: None,
        })
        .await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Topic { topic: Some(t), .. } if t.as_str() == "all about Rust"),
            "topic reply",
        )
        .await;

    // Member list.
    alice
        .send(&ClientMsg::Who {
            room: room("#rust"),
        })
        .await;
    let m = alice
        .expect(|m| matches!(m, ServerMsg::Members { .. }), "members")
        .await;
    let ServerMsg::Members { members, .. } = m else {
        unreachable!()
    };
    let mut names: Vec<&str> = members.iter().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "carol"]);
    carol.send("/who").await;
    carol.expect_has("-- #rust (2):").await;
    carol.send("/rooms").await;
    carol.expect_has("#rust (2)").await;

    // Direct messages both ways.
    let id = alice.id();
    alice
        .send(&ClientMsg::Msg {
            to: nick("carol"),
            id,
            text: text("psst"),
        })
        .await;
    carol.expect(|l| l == "*alice* psst", "a DM").await;
    carol.send("/msg alice hey you").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Direct(dm) if dm.from.as_str() == "carol" && dm.text.as_str() == "hey you"),
            "a DM back",
        )
        .await;
    carol.send("/msg nobody hello?").await;
    carol
        .expect(|l| l.starts_with("ERROR:"), "no such nick")
        .await;

    // Chat in the room, then part.
    carol.send("hello rust").await;
    alice
        .expect(
            |m| said(std::slice::from_ref(m)) == ["hello rust"],
            "carol's line",
        )
        .await;
    carol.send("/part #rust").await;
    carol.expect_has("-- you left #rust").await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Part { .. }, from, .. }) if from.as_str() == "carol"),
            "carol's part",
        )
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_delivers_missed_messages_exactly_once() {
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut alice, welcome) = BinClient::hello(addr, "alice", None).await;
    let ServerMsg::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    alice.join("#lobby").await;
    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    bob.join("#lobby").await;
    bob.say("#lobby", "before").await;
    let before = alice
        .expect(|m| said(std::slice::from_ref(m)) == ["before"], "before")
        .await;
    let ServerMsg::Event(RoomEvent { seq: last_seen, .. }) = before else {
        unreachable!()
    };

    // Cut alice's socket mid-conversation.
    drop(alice);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for t in ["while-1", "while-2", "while-3"] {
        bob.say("#lobby", t).await;
    }
    for t in ["while-1", "while-2", "while-3"] {
        bob.expect(|m| said(std::slice::from_ref(m)) == [t], "own say")
            .await;
    }

    let resume = Resume {
        token,
        rooms: vec![(room("#lobby"), last_seen)],
    };
    let (mut alice, welcome) = BinClient::hello(addr, "someone", Some(resume)).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { nick, resumed: true, .. } if nick.as_str() == "alice"),
        "{welcome:?}"
    );
    bob.say("#lobby", "after").await;
    alice
        .expect(|m| said(std::slice::from_ref(m)) == ["after"], "after")
        .await;
    // Anything duplicated would have arrived by now; give stragglers a moment anyway.
    let mut all = alice.seen.clone();
    all.extend(alice.msgs_for(Duration::from_millis(300)).await);
    assert_eq!(
        said(&all),
        ["while-1", "while-2", "while-3", "after"],
        "{all:#?}"
    );
    let mut seqs: Vec<Seq> = all
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(e) => Some(e.seq),
            _ => None,
        })
        .collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "an event arrived twice: {all:#?}");
    // Bob saw neither a quit nor a second join of alice.
    let bob_saw = bob.msgs_for(Duration::from_millis(200)).await;
    assert!(
        !bob.seen.iter().chain(&bob_saw).any(|m| matches!(
            m,
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Quit { .. },
                ..
            })
        )),
        "{:#?}",
        bob.seen
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frame_and_garbage_close_only_the_offender() {
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::entered(addr, "a").await;
    let (mut b, _) = TextClient::entered(addr, "b").await;

    let (mut big, _) = BinClient::hello(addr, "big", None).await;
    let over = u32::try_from(natter_core::limits::MAX_FRAME + 1).unwrap();
    big.send_raw(&frame_header(over)).await;
    big.send_raw(&[0u8; 512]).await;
    let got = big.expect_closed_with(ErrorKind::Protocol).await;
    assert!(
        matches!(got.last(), Some(ServerMsg::Bye { .. })),
        "{got:#?}"
    );

    // Garbage after a valid preamble: a malformed frame.
    let mut junk = BinClient::connect(addr, "junk").await;
    junk.send_raw(&[0, 0, 0, 3, 0xff, 0xfe, 0xfd]).await;
    junk.expect_closed_with(ErrorKind::Protocol).await;

    a.send("still here").await;
    b.expect(|l| l == format!("<{nick_a}> still here"), "chat goes on")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_line_is_cut_and_reported() {
    let server = start(ServerConfig::local_test()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    let long = "x".repeat(natter_core::limits::MAX_LINE_BYTES * 4);
    a.send(&long).await;
    let err = a.expect(|l| l.starts_with("ERROR:"), "line too long").await;
    assert_eq!(err, "ERROR: line too long (max 2000 bytes), cut");
    // The others get the line cut at the limit: not more, and not nothing.
    let cut = "x".repeat(natter_core::limits::MAX_TEXT_BYTES);
    b.expect(|l| l == format!("<{nick_a}> {cut}"), "the cut line")
        .await;
    // Told once: no second refusal of what was cut.
    let more = a.lines_for(Duration::from_millis(300)).await;
    assert!(more.is_empty(), "{more:?}");
    // The connection still works.
    a.send("short one").await;
    b.expect(|l| l == format!("<{nick_a}> short one"), "chat goes on")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_lines_and_garbage_do_not_hurt_anyone() {
    let server = start(ServerConfig::local_test()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;

    // A line that never ends: 1 MiB without a newline, written while others chat.
    let (mut endless, _) = TextClient::welcomed(addr, "endless").await;
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..16 {
        endless.send_raw(&chunk).await;
    }
    a.send("during the endless line").await;
    b.expect(
        |l| l == format!("<{nick_a}> during the endless line"),
        "chat goes on",
    )
    .await;
    endless.send_raw(b"\nback to normal\n").await;
    endless
        .expect(|l| l.starts_with("ERROR:"), "line too long")
        .await;
    a.expect(|l| l.ends_with("> back to normal"), "the next line")
        .await;

    // Bytes that are neither UTF-8 nor the binary preamble, with terminal escapes.
    let mut junk = TextClient::connect(addr, "junk").await;
    let mut bytes: Vec<u8> = (0..8192u32)
        .map(|i| u8::try_from((i * 7919 + 13) % 251).unwrap() | 0x80)
        .collect();
    bytes.extend_from_slice(b"\x1b[2J\r\n\xff\xfe\n");
    junk.send_raw(&bytes).await;
    let _ = junk.lines_for(Duration::from_millis(300)).await;
    // Whatever others were shown of it carries no escape character.
    let shown = a.lines_for(Duration::from_millis(300)).await;
    assert!(shown.iter().all(|l| !l.contains('\x1b')), "{shown:?}");

    a.send("still here").await;
    b.expect(|l| l == format!("<{nick_a}> still here"), "chat goes on")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_is_refused_with_an_error_and_others_keep_talking() {
    let server = start(ServerConfig::local_test()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut flooder, _) = TextClient::welcomed(addr, "flooder").await;
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    let burst = natter_core::limits::FLOOD_BURST as usize + natter_core::limits::FLOOD_QUEUE;
    let mut lines = String::new();
    for i in 0..burst + 10 {
        lines.push_str(&format!("flood {i}\n"));
    }
    flooder.send_raw(lines.as_bytes()).await;
    flooder
        .expect(|l| l.starts_with("ERROR:"), "flood refusal")
        .await;
    a.send("unaffected").await;
    b.expect(|l| l == format!("<{nick_a}> unaffected"), "chat goes on")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_from_one_address() {
    let mut config = ServerConfig::local_test_patient();
    // 127.0.0.1 is neither exempt nor a trusted bridge (whose people count by their own address).
    config.hub.exempt_loopback = false;
    config.hub.trusted_proxies.clear();
    config.hub.max_connections_per_ip = 3;
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::entered(addr, "a").await;
    let (mut b, _) = TextClient::entered(addr, "b").await;
    let (_c, _) = TextClient::entered(addr, "c").await;

    let mut d = TextClient::connect(addr, "d").await;
    let got = d.expect_closed().await;
    assert!(got.iter().any(|l| l.starts_with("ERROR:")), "{got:?}");
    BinClient::refused_as_full(addr, "eve").await;

    a.send("three is company").await;
    b.expect(
        |l| l == format!("<{nick_a}> three is company"),
        "chat goes on",
    )
    .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_timeout_closes_a_silent_binary_client() {
    let mut config = ServerConfig::local_test();
    config.hub.hello_timeout = Millis(800);
    // As long as the hello timeout allows: `mute`'s preamble, however late a loaded machine
    // sends it, is taken as binary (the people here press Enter and are greeted at once).
    config.hub.text_detect_wait = config.hub.hello_timeout;
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::entered(addr, "a").await;
    let (mut b, _) = TextClient::entered(addr, "b").await;

    let started = std::time::Instant::now();
    let mut mute = BinClient::connect(addr, "mute").await;
    mute.expect_closed_with(ErrorKind::Timeout).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    a.send("patient").await;
    b.expect(|l| l == format!("<{nick_a}> patient"), "chat goes on")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_tells_everyone() {
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut txt, _) = TextClient::entered(addr, "txt").await;
    let (mut bin, _) = BinClient::hello(addr, "bin", None).await;
    let started = std::time::Instant::now();
    stop(server).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let got = bin.expect_closed().await;
    assert!(
        matches!(got.last(), Some(ServerMsg::Bye { .. })),
        "{got:#?}"
    );
    let lines = txt.expect_closed().await;
    assert!(lines.iter().any(|l| l.starts_with("-- ")), "{lines:?}");
    // Nobody can connect any more.
    let refused = timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect attempt timed out");
    assert!(refused.is_err(), "still accepting after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_half_open_client_is_pinged_then_dropped() {
    let mut config = ServerConfig::local_test_patient();
    config.hub.ping_after = Millis(300);
    // Generous, so `alive` answers in time on a loaded machine.
    config.hub.ping_timeout = Millis(1500);
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut alive, _) = BinClient::hello(addr, "alive", None).await;
    let (mut mute, _) = BinClient::hello(addr, "mute", None).await;

    // `alive` answers pings and stays; `mute` does not and is dropped.
    let answer = async {
        for _ in 0..3 {
            let ping = alive
                .expect(|m| matches!(m, ServerMsg::Ping { .. }), "a ping")
                .await;
            let ServerMsg::Ping { token } = ping else {
                unreachable!()
            };
            alive.send(&ClientMsg::Pong { token }).await;
        }
    };
    let (_, got) = tokio::join!(answer, mute.expect_closed_with(ErrorKind::Timeout));
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Ping { .. })),
        "{got:#?}"
    );
    alive.join("#lobby").await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_new_connections_from_one_address() {
    let mut config = ServerConfig::local_test();
    config.hub.exempt_loopback = false;
    config.hub.trusted_proxies.clear();
    config.hub.max_connects_per_window = 3;
    config.hub.connect_window = Millis(60_000);
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    {
        let (mut c, _) = TextClient::welcomed(addr, "c").await;
        c.send("/quit").await;
        c.expect_closed().await;
    }
    // Only two are connected now, but this is the fourth connect in the window.
    let mut d = TextClient::connect(addr, "d").await;
    let got = d.expect_closed().await;
    assert!(got.iter().any(|l| l.starts_with("ERROR:")), "{got:?}");
    a.send("still fine").await;
    b.expect(|l| l == format!("<{nick_a}> still fine"), "chat goes on")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listening_address_serves_the_same_rooms() {
    let mut config = ServerConfig::local_test();
    config.listen = vec![
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    ];
    let server = start(config).await.unwrap();
    let addrs = server.local_addrs();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1]);
    let (mut a, nick_a) = TextClient::welcomed(addrs[0], "a").await;
    let (mut b, _) = TextClient::welcomed(addrs[1], "b").await;
    a.send("across ports").await;
    b.expect(|l| l == format!("<{nick_a}> across ports"), "a's line")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_help_and_quit() {
    let server = start(ServerConfig::local_test()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::welcomed(addr, "a").await;
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    a.send("/help").await;
    for cmd in ["/join", "/msg", "/nick", "/quit"] {
        a.expect_has(cmd).await;
    }
    // The whole list fits the 80 columns of a terminal nc runs in (a third of its lines
    // wrapped there mid-word).
    a.expect_has("-- anything else you type").await;
    let from = a.seen.iter().rposition(|l| l == "-- commands:").unwrap();
    let help = &a.seen[from..];
    assert!(help.len() > 40, "{help:#?}");
    for l in help {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    a.send("/quit gone fishing").await;
    a.expect_closed().await;
    b.expect(
        |l| l == format!("-- {nick_a} quit (gone fishing)"),
        "a's quit",
    )
    .await;
    stop(server).await;
}

/// `printf 'hi\n/who\n/rooms' | ncat 127.0.0.1 8000` (ncat, `nc -N` and `nc -q N` shut their
/// side of the socket at the end of input and go on reading): the script is greeted, its lines
/// are said and answered, the last one without its newline too, and it quits; before, the end
/// of input closed the connection at once and the script read nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_ends_its_input_reads_the_answers_before_the_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(ServerConfig::local_test()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    let mut script = connect(addr).await;
    script
        .write_all(b"hello from a script\n/who\n/rooms")
        .await
        .unwrap();
    script.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(10), script.read_to_end(&mut got))
        .await
        .expect("the server closes once it has answered")
        .unwrap();
    let got = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert!(lines[0].starts_with("Welcome to natter, "), "{got}");
    assert!(
        lines.iter().any(|l| l.starts_with("-- #lobby (2): ")),
        "{got}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("-- rooms: #lobby")),
        "{got}"
    );
    assert_eq!(lines.last(), Some(&"-- goodbye"), "{got}");
    b.expect(
        |l| l.ends_with("> hello from a script"),
        "the script's line",
    )
    .await;
    b.expect(|l| l.ends_with(" quit (Connection closed)"), "its quit")
        .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_bridge_forwards_real_addresses() {
    let mut config = ServerConfig::local_test_patient();
    config.hub.exempt_loopback = false;
    config.hub.max_connections_per_ip = 1;
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    // Two browsers through the bridge on 127.0.0.1: each counts as its own address.
    let mut welcomed = Vec::new();
    for (i, ip) in ["203.0.113.1", "203.0.113.2", "203.0.113.1"]
        .into_iter()
        .enumerate()
    {
        let mut c = BinClient::connect(addr, &format!("browser{i}")).await;
        c.send(&ClientMsg::Forwarded {
            peer: ip.into(),
            secret: natter_core::hub::TEST_BRIDGE_SECRET.into(),
        })
        .await;
        c.send(&ClientMsg::Hello {
            version: natter_core::wire::PROTOCOL_VERSION,
            nick: nick(&format!("web{i}")),
            resume: None,
        })
        .await;
        let first = c
            .expect(
                |m| matches!(m, ServerMsg::Welcome { .. } | ServerMsg::Error { .. }),
                "welcome or error",
            )
            .await;
        welcomed.push((c, first));
    }
    assert!(
        matches!(welcomed[0].1, ServerMsg::Welcome { .. }),
        "{:?}",
        welcomed[0].1
    );
    assert!(
        matches!(welcomed[1].1, ServerMsg::Welcome { .. }),
        "{:?}",
        welcomed[1].1
    );
    assert!(
        matches!(
            welcomed[2].1,
            ServerMsg::Error {
                kind: ErrorKind::Full,
                ..
            }
        ),
        "{:?}",
        welcomed[2].1
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_says_so() {
    let mut config = ServerConfig::local_test_patient();
    config.hub.max_connections = 2;
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, nick_a) = TextClient::entered(addr, "a").await;
    let (mut b, _) = TextClient::entered(addr, "b").await;
    let mut c = TextClient::connect(addr, "c").await;
    let got = c.expect_closed().await;
    assert!(
        got.iter()
            .any(|l| l.starts_with("ERROR:") && l.contains("full")),
        "{got:?}"
    );
    BinClient::refused_as_full(addr, "dora").await;
    a.send("just us").await;
    b.expect(|l| l == format!("<{nick_a}> just us"), "chat goes on")
        .await;
    // Room again once someone leaves (the server may take a moment to count the close).
    b.send("/quit").await;
    b.expect_closed().await;
    let mut admitted = false;
    for _ in 0..20 {
        let mut e = TextClient::connect(addr, "e").await;
        e.send("").await;
        match e.next_line(WAIT).await {
            Got::Msg(l) if l.starts_with("Welcome") => {
                admitted = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(admitted, "no room after a quit");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_big_room_is_written_in_turns_and_nothing_waits_for_more_input() {
    // Two members make a big fan-out here (1,024 by default), and a turn each takes 50 ms.
    let mut config = ServerConfig::local_test_patient();
    config.hub.paced_fanout = 2;
    config.hub.fanout_pace = Millis(50);
    config.hub.flood_refill = Millis::ZERO;
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut members = Vec::new();
    for i in 0..12 {
        let (mut m, _) = BinClient::hello(addr, &format!("m{i}"), None).await;
        m.join("#big").await;
        members.push(m);
    }
    // Thirty lines at once, then silence: what is left after the first fan-out goes out in
    // turns, woken by the hub's own deadline, not by any later input.
    const LINES: usize = 30;
    let sent = std::time::Instant::now();
    for n in 0..LINES {
        members[0].say("#big", &format!("line {n}")).await;
    }
    for m in &mut members[1..] {
        let mut got = Vec::new();
        while got.len() < LINES {
            let ev = m
                .expect(
                    |msg| {
                        matches!(
                            msg,
                            ServerMsg::Event(RoomEvent {
                                kind: EventKind::Say { .. },
                                ..
                            })
                        )
                    },
                    "a line of the burst",
                )
                .await;
            if let ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { text, .. },
                ..
            }) = ev
            {
                got.push(text.to_string());
            }
        }
        let want: Vec<String> = (0..LINES).map(|n| format!("line {n}")).collect();
        assert_eq!(got, want, "{}: every line, in order", m.name);
    }
    // Each member's turn comes every 50 ms; a hub that waited for input (a keepalive, 30 s on)
    // would take far longer.
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(5), "the burst took {took:?}");
    stop(server).await;
}
