//! Line mode against a real natter-server: what scripts and pipes see.

mod support;

use support::cluster::Nc;
use support::{Client, long_history, server, server_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_chat_in_rooms_and_by_direct_message() {
    let (server, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect("-- connected as alice").await;
    alice.expect_containing("-- you are in #lobby ").await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect("-- connected as bob").await;
    alice.expect("[#lobby] -- bob joined #lobby").await;

    // Chat in the current room reaches the other client, with the room named.
    bob.send("hello alice").await;
    alice.expect("[#lobby] <bob> hello alice").await;
    bob.expect("[#lobby] <bob> hello alice").await;
    alice.send("/me waves").await;
    bob.expect("[#lobby] * alice waves").await;

    // A second room: joining makes it current; its chat is labelled with it.
    alice.send("/join #rust").await;
    alice.expect_containing("-- you are in #rust ").await;
    bob.send("/join #Rust").await;
    alice.expect("[#rust] -- bob joined #rust").await;
    // Typed chat goes to the joined room once the join is answered.
    bob.expect_containing("-- you are in #rust ").await;
    bob.send("in rust now").await;
    alice.expect("[#rust] <bob> in rust now").await;

    // Direct messages: the recipient and the sender's acknowledgement.
    alice.send("/msg bob psst").await;
    bob.expect("*alice* psst").await;
    alice.expect("-> *bob* psst").await;

    // Notices, to a room and to a nick, reach a person on nc as `-nick- text`; the sender and
    // the room's other client see them as notices too.
    let mut carol = Nc::join(addr, "carol", "#lobby").await;
    alice.expect_containing("is now known as carol").await;
    alice.send("/notice #lobby build is green").await;
    carol
        .expect_where("the room notice", |l| l == "-alice- build is green")
        .await;
    bob.expect("[#lobby] -alice- build is green").await;
    alice.expect("[#lobby] -alice- build is green").await;
    alice.send("/notice carol just you").await;
    carol
        .expect_where("the direct notice", |l| l == "-alice- just you")
        .await;
    alice.expect("-> -carol- just you").await;
    bob.send("/notice").await;
    bob.expect("error: usage: /notice #room|nick text").await;
    drop(carol);

    // Away: said to oneself and to co-members, and a direct message to someone away is
    // answered with it; /back ends it.
    alice.send("/away at lunch").await;
    alice
        .expect("-- you are away: at lunch (/back when you are back)")
        .await;
    bob.expect("-- alice is away: at lunch").await;
    bob.send("/msg alice still there?").await;
    bob.expect("-> *alice* still there?").await;
    bob.expect("-- alice is away: at lunch").await;
    alice.send("/back").await;
    alice.expect("-- you are back (no longer away)").await;
    bob.expect("-- alice is back").await;

    // Errors read as words.
    bob.send("/nick alice").await;
    let err = bob
        .expect_where("an error line", |l| l.starts_with("error: "))
        .await;
    assert!(err.to_lowercase().contains("nick"), "{err}");
    assert!(
        !err.contains('{') && !err.contains("Some("),
        "debug dump: {err}"
    );
    bob.send("/frobnicate").await;
    bob.expect("error: unknown command /frobnicate (try /help; to say a line that starts with /, type it as //)")
        .await;

    // End of input: both leave cleanly; bob's refused /nick makes his status 1 (see
    // `a_refused_nick_change_makes_the_exit_status_1`; his typo would too).
    alice.close_stdin();
    bob.close_stdin();
    assert!(alice.exit_status().await.success());
    assert_eq!(bob.exit_status().await.code(), Some(1));
    alice.drain().await;
    assert_eq!(alice.count("[#lobby] <bob> hello alice"), 1);
    assert_eq!(alice.count("[#lobby] <bob> in rust now"), 0);
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piped_client_sends_its_lines_and_exits_once_acknowledged() {
    let (server, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;

    // Like `printf 'first\nsecond\n' | natter --nick bot`: all input is there before it connects.
    let mut bot = Client::start("bot", addr, &[]);
    bot.send("first").await;
    bot.send("second").await;
    bot.send("/msg alice done").await;
    bot.close_stdin();
    let status = bot.exit_status().await;
    assert!(status.success(), "bot exited with {status}");
    bot.drain().await;
    // It exited only after the server acknowledged its lines (their echoes).
    assert!(
        bot.seen.contains(&"[#lobby] <bot> first".to_owned()),
        "{:#?}",
        bot.seen
    );
    assert!(bot.seen.contains(&"[#lobby] <bot> second".to_owned()));
    assert!(bot.seen.contains(&"-> *alice* done".to_owned()));
    // The end of its input was a quit it asked for: a goodbye, as nc says, not a drop.
    assert_eq!(
        bot.seen.last().map(String::as_str),
        Some("-- goodbye"),
        "{:#?}",
        bot.seen
    );
    assert_eq!(bot.count("-- disconnected"), 0);

    alice.expect("[#lobby] <bot> first").await;
    alice.expect("[#lobby] <bot> second").await;
    alice.expect("*bot* done").await;
    // It said goodbye rather than vanishing (so its nick is free again at once).
    alice.expect_containing("bot quit").await;

    // The same nick can be used again straight away.
    let mut again = Client::start("bot", addr, &[]);
    again.send("back").await;
    again.close_stdin();
    assert!(again.exit_status().await.success());
    alice.expect("[#lobby] <bot> back").await;

    alice.close_stdin();
    assert!(alice.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_gets_an_answer_exits_1() {
    // A port nobody listens on.
    let (_held, addr) = support::refusing_addr();
    let mut c = Client::start("lonely", addr, &["--wait", "1"]);
    c.send("anyone?").await;
    c.close_stdin();
    let status = c.exit_status().await;
    assert_eq!(status.code(), Some(1), "{:#?}", c.seen);
}

/// `natter --nick nobody --wait 2 ADDR < /dev/null`, run until it gives up (bounded).
async fn natter_that_gives_up(addr: std::net::SocketAddr) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--nick", "nobody", "--wait", "2", &addr.to_string()])
        .env("XDG_CONFIG_HOME", support::config_home())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("natter exits after --wait")
        .expect("natter runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_is_said_so_not_called_a_lost_connection() {
    let (_held, addr) = support::refusing_addr();
    let out = natter_that_gives_up(addr).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let said = format!("-- could not connect to {addr}: ");
    assert!(lines.len() >= 2, "a line per attempt: {lines:#?}");
    for l in &lines {
        // Each attempt: why, and when the next one is. Nothing was lost: it never connected.
        assert!(
            l.starts_with(&said) && l.contains("; retrying in "),
            "{lines:#?}"
        );
        assert!(!l.contains("lost"), "{lines:#?}");
    }
    assert!(
        stderr.starts_with(&format!("natter: could not connect to {addr} within 2s: ")),
        "{stderr}"
    );
}

/// `printf '/kick nobody\n/ban\n' | natter`: the server's refusal of the kick is printed
/// before what the next line brings (here a usage error natter says at once). It came after
/// it: line mode read the next line as soon as the kick was sent, nothing acknowledging it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_answer_is_printed_before_the_next_lines() {
    let (server, addr) = server().await;
    let mut c = Client::start("kicker", addr, &[]);
    c.expect_containing("-- you are in #lobby ").await;
    c.send("/kick nobody").await;
    c.send("/ban").await;
    c.expect_containing("error: usage: /ban").await;
    let refusal = c
        .seen
        .iter()
        .position(|l| l.starts_with("error: ") && l.contains("operator"));
    let usage = c.seen.iter().position(|l| l.contains("usage: /ban"));
    assert!(
        refusal.is_some_and(|r| usage.is_some_and(|u| r < u)),
        "{:#?}",
        c.seen
    );
    c.close_stdin();
    // Neither line was done: the status says so.
    assert_eq!(c.exit_status().await.code(), Some(1), "{:#?}", c.seen);
    server.shutdown().await.expect("server shuts down");
}

/// A port that greets every connection as a person on nc and hangs up (a full natter server's
/// text refusal; a text-only door): the exit message says so, with what it said. Before, it
/// named no reason ("no answer") or an earlier attempt's, and never the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_names_the_latest_attempts_real_failure() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let refuser = tokio::spawn(async move {
        // Bounded: natter tries a few times within its --wait.
        for _ in 0..200 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let _ = s
                .write_all(b"ERROR: the server is full, try again later\r\n")
                .await;
            let _ = s.shutdown().await;
        }
    });
    let out = natter_that_gives_up(addr).await;
    refuser.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "natter: could not connect to {addr} within 2s: the server took us for a text \
             client (our preamble came late); it said \"ERROR: the server is full, try again \
             later\""
        ),
        "{stdout}"
    );
}

/// A server that takes the connection and never says a word (stopped, hung): `--wait 2` with
/// nothing to send took 22 s, the Session's 20 s wait for a welcome and then the 2 s, since
/// line mode reads no line before the welcome and so never saw the input end. The wait now
/// counts from the end of input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_welcomes_ends_line_mode_at_wait() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        // Accepts and holds each connection, saying nothing (bounded).
        let mut held = Vec::new();
        for _ in 0..20 {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let out = natter_that_gives_up(addr).await;
    let took = started.elapsed();
    silent.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        took < std::time::Duration::from_secs(8),
        "took {took:?}: {stdout}{stderr}"
    );
    assert!(
        stderr.starts_with(&format!("natter: could not connect to {addr} within 2s: ")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_ends_natter_with_its_own_status_not_a_panic() {
    // `natter ... 2>&1 | head`: once head has gone, the last words went to a closed pipe and
    // `eprintln!` panicked (status 101).
    let (_held, addr) = support::refusing_addr();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--nick", "nobody", "--wait", "1", &addr.to_string()])
        .env("XDG_CONFIG_HOME", support::config_home())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter runs");
    drop(child.stderr.take());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("natter exits after --wait")
        .expect("its status");
    assert_eq!(status.code(), Some(1), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_up_before_its_welcome_is_not_a_lost_connection_either() {
    // Accepts and closes at once, every time (a server at its connection limit does that).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hangs_up = tokio::spawn(async move {
        for _ in 0..1_000 {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            drop(sock);
        }
    });
    let out = natter_that_gives_up(addr).await;
    hangs_up.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "{lines:#?}");
    for l in &lines {
        assert!(
            l.starts_with("-- the server did not welcome us: ") && l.contains("; retrying in "),
            "{lines:#?}"
        );
        assert!(!l.contains("lost"), "{lines:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_of_another_protocol_version_ends_the_client_with_exit_1() {
    use natter_core::wire::{ErrorKind, ServerMsg, encode_frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A fake server that refuses every hello the way a newer natter-server would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 256];
        let _ = sock.read(&mut buf).await;
        let refuse = ServerMsg::Error {
            kind: ErrorKind::Version,
            re: natter_core::wire::Re::Conn,
            detail: "this server speaks protocol version 9".into(),
        };
        let bye = ServerMsg::Bye {
            reason: "version mismatch".into(),
        };
        for m in [refuse, bye] {
            sock.write_all(&encode_frame(&m).expect("encodes"))
                .await
                .expect("write");
        }
        // Hold the socket until the client hangs up.
        let _ = sock.read(&mut buf).await;
    });
    let mut c = Client::start("future", addr, &["--wait", "5"]);
    c.expect_containing("protocol version 9").await;
    let status = c.exit_status().await;
    assert_eq!(status.code(), Some(1), "{:#?}", c.seen);
    fake.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_given_on_the_command_line_are_joined() {
    let (server, addr) = server().await;
    let mut c = Client::start("multi", addr, &["--room", "#one", "--room", "two"]);
    c.expect_containing("-- you are in #one ").await;
    c.expect_containing("-- you are in #two ").await;
    c.send("/rooms").await;
    let rooms = c.expect_containing("-- rooms: ").await;
    assert!(
        rooms.contains("#one (1)") && rooms.contains("#two (1)"),
        "{rooms}"
    );
    // Typed chat goes to the first room.
    c.send("hi one").await;
    c.expect("[#one] <multi> hi one").await;
    c.close_stdin();
    assert!(c.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_lines_follow_each_other_in_order_and_at_the_servers_pace() {
    let (server, addr) = server().await;
    // More lines than the server's flood burst: line mode feeds each once the one before is
    // acknowledged, so none is refused; and a /join is answered before the next line is said.
    let mut bot = Client::start("pacer", addr, &[]);
    bot.send("/join #side").await;
    bot.send("in side").await;
    bot.send("/topic #side pacing").await;
    let n = natter_core::limits::FLOOD_BURST as usize + 6;
    for i in 0..n {
        bot.send(&format!("line {i}")).await;
    }
    bot.close_stdin();
    let status = bot.exit_status().await;
    bot.drain().await;
    assert!(status.success(), "{status}: {:#?}", bot.seen);
    assert_eq!(bot.count("[#side] <pacer> in side"), 1, "{:#?}", bot.seen);
    assert_eq!(
        bot.count("[#side] -- pacer set the topic of #side: pacing"),
        1
    );
    let said: Vec<&String> = bot
        .seen
        .iter()
        .filter(|l| l.contains("<pacer> line "))
        .collect();
    let want: Vec<String> = (0..n)
        .map(|i| format!("[#side] <pacer> line {i}"))
        .collect();
    assert_eq!(said, want.iter().collect::<Vec<_>>());
    assert!(
        !bot.seen.iter().any(|l| l.starts_with("error: ")),
        "{:#?}",
        bot.seen
    );
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_gives_server_nick_and_rooms_and_flags_override_it() {
    let (server, addr) = server().await;
    let dir = std::env::temp_dir().join(format!("natter-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("config dir");
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!("server = \"{addr}\"\nnick = \"fromfile\"\nrooms = [\"#cfg\"]\n"),
    )
    .expect("write config");
    let config = file.display().to_string();

    let mut c = Client::start_with("fromfile", &["--config".into(), config.clone()]);
    c.expect("-- connected as fromfile").await;
    c.expect_containing("-- you are in #cfg ").await;
    c.close_stdin();
    assert!(c.exit_status().await.success());

    let args = ["--config", &config, "--nick", "flagged", "--room", "#flag"].map(String::from);
    let mut d = Client::start_with("flagged", &args);
    d.expect("-- connected as flagged").await;
    d.expect_containing("-- you are in #flag ").await;
    d.close_stdin();
    assert!(d.exit_status().await.success());

    // A broken config file is an error in words, not a panic.
    std::fs::write(&file, "nick = 42\n").expect("write config");
    let mut e = Client::start_with("broken", &["--config".into(), config]);
    e.close_stdin();
    assert_eq!(e.exit_status().await.code(), Some(1));
    // A missing one (or password file) is said once: it was "cannot read FILE: No such file or
    // directory (os error 2): No such file or directory (os error 2)".
    let missing = dir.join("missing.toml");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("--config")
        .arg(&missing)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("natter runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("natter: cannot read {}: ", missing.display())),
        "{err}"
    );
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_search_print_one_line_each_with_room_and_time() {
    let (server, addr) = server_with(long_history).await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    for i in 1..=60 {
        bob.send(&format!("old line {i:03}")).await;
    }
    let hostile = r#"he said "quoted" * -minus NEAR(a b) col:on"#;
    bob.send(hostile).await;
    bob.expect(&format!("[#lobby] <bob> {hostile}")).await;

    // A script searches and pages back, and exits once every answer is in.
    let mut carol = Client::start("carol", addr, &[]);
    carol.send("/search old line 007").await;
    // Search syntax typed by a person is just words: no error, the line that holds them.
    carol.send(r#"/search "quoted" -minus NEAR(a col:on"#).await;
    carol.send("/search nothing like this").await;
    carol.send("/history 3").await;
    carol.send("/history 2").await;
    carol.close_stdin();
    let status = carol.exit_status().await;
    carol.drain().await;
    assert!(
        status.success(),
        "carol exited with {status}: {:#?}",
        carol.seen
    );
    let seen = &carol.seen;
    let hit = |line: &str, body: &str| {
        line.starts_with("[#lobby 20") && line.ends_with(&format!("] {body}"))
    };
    let at = |l: &str| seen.iter().position(|s| s == l);
    // The join replays the last 50 events: lines 013..060 and the rest.
    assert!(at("[#lobby] <bob> old line 013").is_some(), "{seen:#?}");
    assert!(at("[#lobby] <bob> old line 012").is_none(), "{seen:#?}");
    let results: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("-- ") && (l.ends_with("result") || l.ends_with("results")))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        results
            .iter()
            .map(|&i| seen[i].as_str())
            .collect::<Vec<_>>(),
        ["-- 1 result", "-- 1 result", "-- no results"],
        "{seen:#?}"
    );
    assert!(
        hit(&seen[results[0] - 1], "<bob> old line 007"),
        "{seen:#?}"
    );
    assert!(hit(&seen[results[1] - 1], &format!("<bob> {hostile}")));
    assert!(!seen.iter().any(|l| l.starts_with("error:")), "{seen:#?}");
    // /history goes back from the oldest line shown, a page at a time, with room and time.
    let pages: Vec<&String> = seen
        .iter()
        .filter(|l| l.starts_with("[#lobby 20"))
        .collect();
    let bodies: Vec<&str> = pages
        .iter()
        .map(|l| l.split_once("] ").map_or("", |(_, b)| b))
        .collect();
    assert_eq!(
        bodies,
        [
            "<bob> old line 007",
            &format!("<bob> {hostile}"),
            "<bob> old line 010",
            "<bob> old line 011",
            "<bob> old line 012",
            "<bob> old line 008",
            "<bob> old line 009",
        ],
        "{seen:#?}"
    );
    assert_eq!(carol.count("-- (/history #lobby shows older lines)"), 2);
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// The operator's message of the day is printed when the client connects, one line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_message_of_the_day_is_printed_on_connecting() {
    let (server, addr) = server_with(|hub| {
        hub.motd = Some(natter_core::hub::Motd::new("Welcome to the lab.\nBe kind.").unwrap());
    })
    .await;
    let mut c = Client::start("reader", addr, &[]);
    let first = c.expect_containing("Welcome to the lab.").await;
    assert!(first.starts_with("-- "), "{first}");
    c.expect_containing("Be kind.").await;
    c.close_stdin();
    assert!(c.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piped_question_is_answered_before_the_client_exits() {
    let (server, addr) = server().await;
    // Like `printf '/who\n/rooms\n/bans\n/kick nobody\n' | natter --nick asker`: nothing
    // acknowledges these, so the client used to leave before their answers came.
    let mut asker = Client::start("asker", addr, &[]);
    for line in ["/who", "/rooms", "/bans", "/kick nobody"] {
        asker.send(line).await;
    }
    asker.close_stdin();
    // The kick was refused (the line was not done): exit status 1, once every answer is in.
    let status = asker.exit_status().await;
    assert_eq!(status.code(), Some(1), "asker exited with {status}");
    asker.drain().await;
    let seen = &asker.seen;
    for want in [
        "-- #lobby (1): asker",
        "-- rooms: #lobby (1)",
        "-- nobody is banned or muted in #lobby",
    ] {
        assert!(seen.iter().any(|l| l == want), "{want}: {seen:#?}");
    }
    // The refused kick (nobody is an operator of an unregistered room) says so.
    assert!(
        seen.iter()
            .any(|l| l == "error: you are not an operator of #lobby"),
        "{seen:#?}"
    );
    server.shutdown().await.expect("server shuts down");
}

/// `seq 30 | natter --nick bot` twice in a row: the first run's quit goes out while its flood
/// tokens are spent, and it hangs up at once. It still quits (the room hears it now), so the
/// second run gets its nick back instead of `bot_2` while the first waited for a resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_quits_after_more_lines_than_the_flood_burst_frees_its_nick() {
    let (server, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;
    let mut bot = Client::start("bot", addr, &[]);
    bot.expect("-- connected as bot").await;
    let n = natter_core::limits::FLOOD_BURST as usize + 6;
    for i in 0..n {
        bot.send(&format!("line {i}")).await;
    }
    bot.close_stdin();
    let status = bot.exit_status().await;
    assert!(status.success(), "{status}");
    alice.expect("[#lobby] -- bot quit").await;
    let mut again = Client::start("bot", addr, &[]);
    again.expect("-- connected as bot").await;
    again.close_stdin();
    assert!(again.exit_status().await.success());
    alice.close_stdin();
    assert!(alice.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_makes_a_piped_client_exit_1_with_the_reason() {
    // README: a piped client "exits 0 once the server acknowledged it". A message the server
    // refused (here a direct message to nobody; a full disk or a muted room alike) was said as
    // `error: ...` on stdout, and the client exited 0 all the same: a script took it for said.
    let (server, addr) = server().await;
    let run = |input: &'static str| {
        let addr = addr.to_string();
        async move {
            use tokio::io::AsyncWriteExt;
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
                .args(["--nick", "bot", &addr])
                .env("XDG_CONFIG_HOME", support::config_home())
                .env_remove("RUST_LOG")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("natter runs");
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).await.unwrap();
            drop(stdin);
            tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
                .await
                .expect("natter exits")
                .expect("natter runs")
        }
    };
    let out = run("first\n/msg nobody-here hello\nlast\n").await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[#lobby] <bot> last"),
        "the rest went: {stdout}"
    );
    assert!(
        stderr.contains("natter: the server refused 1 of the messages sent (the last: "),
        "{stderr}"
    );
    // Everything taken: 0, as before.
    let out = run("first\nlast\n").await;
    assert!(out.status.success(), "{out:?}");
    server.shutdown().await.expect("server shuts down");
}

/// `printf '/frob\n/ban\nfirst\n/kick nobody\nlast\n' | natter`: lines natter could not do
/// (an unknown command, a usage error) or the server refused (a kick by someone who is not an
/// operator) exited 0 at the end of input, so a script could not tell. Every line is still
/// tried; the exit status is 1 and stderr says how many lines were not done, and why the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_not_done_make_a_piped_client_exit_1_after_trying_every_line() {
    let (server, addr) = server().await;
    let run = |input: &'static str| {
        let addr = addr.to_string();
        async move {
            use tokio::io::AsyncWriteExt;
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
                .args(["--nick", "bot", &addr])
                .env("XDG_CONFIG_HOME", support::config_home())
                .env_remove("RUST_LOG")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("natter runs");
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).await.unwrap();
            drop(stdin);
            tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
                .await
                .expect("natter exits")
                .expect("natter runs")
        }
    };
    let out = run("/frob\n/ban\nfirst\n/kick nobody\nlast\n").await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for said in ["[#lobby] <bot> first", "[#lobby] <bot> last"] {
        assert!(stdout.contains(said), "every line is tried: {stdout}");
    }
    assert!(stdout.contains("error: unknown command /frob"), "{stdout}");
    assert!(stdout.contains("error: usage: /ban"), "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        "natter: 3 lines of the input could not be done (the last: you are not an operator of \
         #lobby)",
        "{stdout}"
    );
    // One typo alone is enough.
    let out = run("hello\n/jion #x\n").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "natter: 1 line of the input could not be done (the last: unknown command /jion"
        ),
        "{stderr}"
    );
    // Every line done: 0, as before.
    let out = run("hello\n/who\n").await;
    assert!(out.status.success(), "{out:?}");
    server.shutdown().await.expect("server shuts down");
}

/// A script's `/nick` that the server refuses (the nick is someone else's) makes the exit status
/// 1, as a refused message or join does: what followed was said under the old nick, which a
/// script author did not ask for. It is said on stdout as an `error:` line and on stderr with
/// the reason; the lines after it are still said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_nick_change_makes_the_exit_status_1() {
    use tokio::io::AsyncWriteExt;
    let (server, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect_containing("-- you are in #lobby").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--nick", "bot", &addr.to_string()])
        .env("XDG_CONFIG_HOME", support::config_home())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"/nick alice\nstill bot\n")
        .await
        .expect("write");
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("natter exits")
        .expect("natter runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("error: could not change your nick to alice: ")),
        "{stdout}"
    );
    assert!(stdout.contains("[#lobby] <bot> still bot"), "{stdout}");
    assert!(
        stderr.contains("natter: could not change the nick to alice: "),
        "{stderr}"
    );
    // A /nick that works is no failure.
    let mut carol = Client::start("carol", addr, &[]);
    carol.send("/nick caroline").await;
    carol.expect("-- you are now known as caroline").await;
    carol.close_stdin();
    assert!(carol.exit_status().await.success(), "{:#?}", carol.seen);
    alice.close_stdin();
    assert!(alice.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// `/quit` typed says goodbye, as nc does (it said `-- disconnected`, as a drop does), and the
/// client exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_typed_says_goodbye() {
    let (server, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;
    alice.send("/quit see you").await;
    alice.expect("-- goodbye").await;
    assert!(alice.exit_status().await.success());
    alice.drain().await;
    assert_eq!(alice.count("-- disconnected"), 0, "{:#?}", alice.seen);
    server.shutdown().await.expect("server shuts down");
}

/// Line mode printed our own join twice: `-- you are in #lobby with: bob`, then the join's
/// replay's last event, `[#lobby] -- alice joined #lobby`. Once now, by the notice, below the
/// replay; the replay's other joins are printed, and the others still see ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_join_is_printed_once() {
    let (server, addr) = server().await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    bob.send("before alice").await;
    bob.expect("[#lobby] <bob> before alice").await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect("-- you are in #lobby with: bob").await;
    // The join's replay, older, above the notice of the join, as the TUI and the page show
    // it (until the forty-first session line mode printed it below).
    for replayed in [
        "[#lobby] -- bob joined #lobby",
        "[#lobby] <bob> before alice",
    ] {
        assert_eq!(alice.count(replayed), 1, "{replayed}: {:#?}", alice.seen);
    }
    bob.expect("[#lobby] -- alice joined #lobby").await;
    alice.send("hi").await;
    alice.expect("[#lobby] <alice> hi").await;
    assert_eq!(
        alice.count("[#lobby] -- alice joined #lobby"),
        0,
        "{:#?}",
        alice.seen
    );
    assert_eq!(
        alice
            .seen
            .iter()
            .filter(|l| l.starts_with("-- you are in #lobby"))
            .count(),
        1,
        "{:#?}",
        alice.seen
    );
    server.shutdown().await.expect("server shuts down");
}

/// `/join #a #b` on one line, then the end of input at once: each room's replay prints above
/// its own notice (`-- you are in #a ...` held while #a's replay prints, said before #b's
/// join), every line once, nothing left held at the exit, `-- goodbye` last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_joined_at_once_each_print_their_replay_above_their_notice() {
    let (server, addr) = server().await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    for room in ["#a", "#b"] {
        bob.send(&format!("/join {room}")).await;
        bob.expect_containing(&format!("-- you are in {room}"))
            .await;
        bob.send(&format!("said in {room}")).await;
        bob.expect(&format!("[{room}] <bob> said in {room}")).await;
    }
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;
    alice.send("/join #a #b").await;
    alice.close_stdin();
    alice.expect("-- goodbye").await;
    assert!(alice.exit_status().await.success(), "{:#?}", alice.seen);
    let at = |line: &str| {
        assert_eq!(alice.count(line), 1, "{line}: {:#?}", alice.seen);
        alice.seen.iter().position(|l| l == line).unwrap()
    };
    let notice = |room: &str| {
        let found: Vec<usize> = (0..alice.seen.len())
            .filter(|i| alice.seen[*i].starts_with(&format!("-- you are in {room} ")))
            .collect();
        assert_eq!(found.len(), 1, "{room}: {:#?}", alice.seen);
        found[0]
    };
    let (a, b) = (notice("#a"), notice("#b"));
    assert!(at("[#a] <bob> said in #a") < a, "{:#?}", alice.seen);
    assert!(a < at("[#b] <bob> said in #b"), "{:#?}", alice.seen);
    assert!(at("[#b] <bob> said in #b") < b, "{:#?}", alice.seen);
    assert_eq!(alice.seen.last().map(String::as_str), Some("-- goodbye"));
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// A join's replay that came later than half a second after its `Joined` printed below
/// "-- you are in #room" (line mode said the notice when nothing came for 500 ms). The replay of
/// a join we asked for ends with our own join, and the notice waits for it: the older lines
/// come first however late they are. A fake server sends the replay 1.5 s after the `Joined`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_replay_still_prints_above_the_notice_of_the_join() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(late_replay_server(listener, "slow", &[1_500]));
    let mut c = Client::start("slow", addr, &["--room", "#late"]);
    c.expect_containing("-- you are in #late").await;
    let said = c
        .seen
        .iter()
        .position(|l| l.ends_with("<bob> said before you came"));
    let notice = c
        .seen
        .iter()
        .position(|l| l.starts_with("-- you are in #late"));
    assert!(
        said.is_some() && said < notice,
        "the replay above the notice: {:#?}",
        c.seen
    );
    c.close_stdin();
    c.exit_status().await;
    fake.abort();
}

/// `/join #a #b`: the session shows (focuses) only the last room named, and line mode took
/// only a shown room's join for one it asked for; #a's notice was held half a second, and its
/// replay, later than that, printed below it. Every room the input names is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_replay_of_each_room_of_one_join_line_prints_above_its_notice() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(late_replay_server(listener, "slow", &[1_500]));
    let mut c = Client::start("slow", addr, &["--room", "#first"]);
    c.expect_containing("-- you are in #first").await;
    c.send("/join #a #b").await;
    c.expect_containing("-- you are in #b").await;
    for room in ["#a", "#b"] {
        let at = |pred: &dyn Fn(&str) -> bool| {
            let found: Vec<usize> = (0..c.seen.len()).filter(|i| pred(&c.seen[*i])).collect();
            assert_eq!(found.len(), 1, "{room}: {:#?}", c.seen);
            found[0]
        };
        let said = at(&|l: &str| l == format!("[{room}] <bob> said before you came"));
        let notice = at(&|l: &str| l.starts_with(&format!("-- you are in {room} ")));
        assert!(
            said < notice,
            "{room}'s replay above its notice: {:#?}",
            c.seen
        );
    }
    c.close_stdin();
    c.exit_status().await;
    fake.abort();
}

/// The notice of a join was said when nothing came for 5 s: a replay that kept coming, an
/// event every 2 s, held it until its end however long that was (each event started the wait
/// again), though the wait is said to be 5 s at most. It is 5 s from the join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notice_of_a_join_waits_5_s_at_most_for_a_replay_that_keeps_coming() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(late_replay_server(
        listener,
        "slow",
        &[2_000, 2_000, 2_000, 2_000],
    ));
    let mut c = Client::start("slow", addr, &["--room", "#slow"]);
    c.expect("[#slow] <bob> said before you came, 3").await;
    let at = |line: &str| c.seen.iter().position(|l| l.starts_with(line));
    let notice = at("-- you are in #slow");
    // Said at 5 s: after the line at 4 s, before the one at 6 s.
    assert!(
        notice.is_some()
            && at("[#slow] <bob> said before you came, 1") < notice
            && notice < at("[#slow] <bob> said before you came, 2"),
        "{:#?}",
        c.seen
    );
    c.close_stdin();
    c.exit_status().await;
    fake.abort();
}

/// A fake server for `nick` that answers each join with its `Joined` at once and its replay
/// late: a line of bob's after each wait of `trickle` (in ms; the first "said before you
/// came"), then our own join; a quit with its goodbye.
async fn late_replay_server(listener: tokio::net::TcpListener, nick: &str, trickle: &[u64]) {
    use natter_core::wire::{
        ClientMsg, EventKind, FrameDecoder, Limits, MAGIC, PROTOCOL_VERSION, RoomEvent, ServerMsg,
        decode_payload, encode_frame,
    };
    use natter_core::{Millis, MsgId, Nick, ResumeToken, Seq, Text};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await.expect("accept");
    let mut magic = [0u8; 4];
    sock.read_exact(&mut magic).await.expect("preamble");
    assert_eq!(magic, MAGIC);
    let mut frames = FrameDecoder::new();
    let mut buf = [0u8; 4096];
    let mut welcomed = false;
    let (me, bob) = (Nick::new(nick).unwrap(), Nick::new("bob").unwrap());
    // Bounded: the client sends a hello, its joins and little else.
    for _ in 0..100 {
        let n = sock.read(&mut buf).await.expect("read");
        if n == 0 {
            return;
        }
        frames.extend(&buf[..n]);
        while let Some(frame) = frames.next_frame().expect("a frame") {
            let msg: ClientMsg = decode_payload(&frame).expect("a client message");
            let mut out = Vec::new();
            match msg {
                ClientMsg::Hello { .. } if !welcomed => {
                    welcomed = true;
                    out.push(ServerMsg::Welcome {
                        version: PROTOCOL_VERSION,
                        nick: me.clone(),
                        token: ResumeToken([7; 32]),
                        resumed: false,
                        limits: Limits::default(),
                    });
                }
                ClientMsg::Join { room } => {
                    let ours = Seq(trickle.len() as u64 + 2);
                    let event = |seq, from: &Nick, kind| {
                        ServerMsg::Event(RoomEvent {
                            room: room.clone(),
                            seq,
                            at: Millis(1_700_000_000_000),
                            from: from.clone(),
                            kind,
                        })
                    };
                    let joined = ServerMsg::Joined {
                        room: room.clone(),
                        topic: None,
                        members: vec![me.clone(), bob.clone()],
                        seq: ours,
                    };
                    sock.write_all(&encode_frame(&joined).expect("encodes"))
                        .await
                        .expect("write");
                    for (i, wait) in trickle.iter().enumerate() {
                        tokio::time::sleep(std::time::Duration::from_millis(*wait)).await;
                        let text = match i {
                            0 => "said before you came".to_owned(),
                            _ => format!("said before you came, {i}"),
                        };
                        let said = EventKind::Say {
                            id: MsgId(i as u64 + 1),
                            text: Text::new(&text).unwrap(),
                        };
                        let said = event(Seq(i as u64 + 1), &bob, said);
                        sock.write_all(&encode_frame(&said).expect("encodes"))
                            .await
                            .expect("write");
                    }
                    out.push(event(ours, &me, EventKind::Join));
                }
                ClientMsg::Quit { .. } => {
                    out.push(ServerMsg::Bye {
                        reason: "bye".into(),
                    });
                }
                _ => {}
            }
            let bye = out.iter().any(|m| matches!(m, ServerMsg::Bye { .. }));
            for m in out {
                sock.write_all(&encode_frame(&m).expect("encodes"))
                    .await
                    .expect("write");
            }
            if bye {
                // The server closes after its goodbye.
                return;
            }
        }
    }
}
