//! Accounts over real sockets: an nc user registers its nick and signs in from a second
//! connection, a binary client hears both; a wrong password and a guest taking the nick are
//! refused with clear words; with a store, the account and its rooms survive a restart.

mod support;

use natter_core::types::MsgId;
use natter_core::wire::{ClientMsg, ServerMsg};
use natter_server::{ServerConfig, start};
use std::path::Path;
use std::time::Duration;
use support::*;
use tokio::process::Child;
use tokio::time::timeout;

async fn stop(server: natter_server::Server) {
    timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown timed out")
        .expect("shutdown failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nc_registers_and_signs_in_twice_and_everyone_hears_one_alice() {
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, _) = TextClient::entered(addr, "a").await;
    a.send("/nick alice").await;
    a.expect_has("you are now known as alice").await;
    a.send("/register correct horse").await;
    a.expect_has("you are signed in as alice").await;

    let (mut b, _) = TextClient::entered(addr, "b").await;
    b.send("/nick alice").await;
    let refused = b.expect(|l| l.starts_with("ERROR:"), "a refusal").await;
    assert!(refused.contains("registered"), "{refused}");
    b.send("/login alice wrong horse").await;
    let refused = b.expect(|l| l.starts_with("ERROR:"), "a refusal").await;
    assert!(
        refused.contains("wrong account name or password"),
        "{refused}"
    );
    b.send("/login alice correct horse").await;
    b.expect_has("you are signed in as alice").await;

    let (mut carol, _) = BinClient::hello(addr, "carol", None).await;
    carol.join("#lobby").await;
    b.send("hello from the second connection").await;
    a.expect(
        |l| l == "<alice> hello from the second connection",
        "the line said on alice's other connection",
    )
    .await;
    carol
        .expect(
            |m| said(std::slice::from_ref(m)) == ["hello from the second connection"],
            "alice's line",
        )
        .await;
    // Still one alice in the room.
    carol
        .send(&ClientMsg::Who {
            room: room("#lobby"),
        })
        .await;
    let who = carol
        .expect(
            |m| matches!(m, ServerMsg::Members { .. }),
            "the member list",
        )
        .await;
    let ServerMsg::Members { members, .. } = who else {
        unreachable!()
    };
    assert_eq!(
        members.iter().filter(|n| n.as_str() == "alice").count(),
        1,
        "{members:?}"
    );
    b.send("/logout").await;
    let last = b.expect_closed().await;
    assert!(
        last.iter().any(|l| l
            == "-- signed out, and this connection is closed: connect again to chat as a guest"),
        "{last:?}"
    );
    stop(server).await;
}

async fn start_stored(dir: &Path) -> (Child, std::net::SocketAddr) {
    let (child, _log, addr) = patient_stored_server(dir, &[]).await;
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_and_its_rooms_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start_stored(dir.path()).await;
    let (mut a, _) = TextClient::entered(addr, "a").await;
    a.send("/nick dora").await;
    a.expect_has("you are now known as dora").await;
    a.send("/register a long passphrase").await;
    a.expect_has("you are signed in as dora").await;
    a.send("/join #kept").await;
    a.expect_has("#kept").await;
    a.send("/quit").await;
    a.expect_closed().await;
    assert!(sigterm(&mut server).await.success());

    let (_server, addr) = start_stored(dir.path()).await;
    // Always-on: dora is still in #kept, though nobody is connected as dora.
    let (mut watcher, _) = BinClient::hello(addr, "watcher", None).await;
    watcher.join("#kept").await;
    watcher
        .send(&ClientMsg::Who {
            room: room("#kept"),
        })
        .await;
    let who = watcher
        .expect(
            |m| matches!(m, ServerMsg::Members { .. }),
            "the member list",
        )
        .await;
    assert!(
        matches!(&who, ServerMsg::Members { members, .. } if members.iter().any(|n| n.as_str() == "dora")),
        "{who:?}"
    );
    // The nick is still owned, and the password still opens it.
    let (mut b, _) = TextClient::entered(addr, "b").await;
    b.send("/login dora a long passphrase").await;
    b.expect_has("you are signed in as dora").await;
    b.expect_has("#kept").await;
    // The account is in #lobby and #kept: talk in #kept.
    b.send("/join #kept").await;
    b.expect_has("you are now talking in #kept").await;
    b.send("back again").await;
    watcher
        .expect(
            |m| said(std::slice::from_ref(m)) == ["back again"],
            "dora's line",
        )
        .await;
}

/// Reads the server's `log` up to a line holding `until`: the lines read. None may hold `secret`
/// (a password tried).
async fn read_log_until(
    log: &mut tokio::io::BufReader<tokio::process::ChildStderr>,
    until: &str,
    secret: &str,
) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = Vec::new();
    timeout(Duration::from_secs(10), async {
        loop {
            let mut line = String::new();
            let n = log.read_line(&mut line).await.expect("read the log");
            assert!(n > 0, "natter-server exited");
            assert!(!line.contains(secret), "a password in the log: {line}");
            let done = line.contains(until);
            lines.push(line);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no log line with {until}"));
    lines
}

/// Password guessing on nc against the real binary: each wrong try is refused in words, the
/// throttled ones say when to try again, and the log says once that the account is throttled.
/// Each try that was checked has its `sign-in failed` line (for fail2ban), the throttled ones
/// none: the throttle bounds the lines as it bounds the checks. No line holds the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_refused_in_words_and_logged_once() {
    let (_child, mut log, addr) = spawn_server(&["--listen", "127.0.0.1:0"], &[patient()]).await;
    let (mut a, _) = TextClient::entered(addr, "a").await;
    a.send("/nick alice").await;
    a.expect_has("you are now known as alice").await;
    a.send("/register correct horse").await;
    a.expect_has("you are signed in as alice").await;

    let (mut m, _) = TextClient::entered(addr, "m").await;
    let mut refusals = Vec::new();
    for _ in 0..8 {
        m.send("/login alice guessing-0000").await;
        refusals.push(m.expect(|l| l.starts_with("ERROR:"), "a refusal").await);
    }
    // Past the wait, a wrong try is checked again (and doubles the wait): still no new line.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    m.send("/login alice guessing-0000").await;
    refusals.push(m.expect(|l| l.starts_with("ERROR:"), "a refusal").await);
    for (i, r) in refusals.iter().enumerate() {
        let want = match i {
            0..=3 | 8 => "wrong account name or password",
            _ => "too many failed sign-ins to that account: try again in",
        };
        assert!(r.contains(want), "try {i}: {r}");
    }

    // A marker in the log after every try: the hello of a client called `marker`.
    let _marker = BinClient::hello(addr, "marker", None).await;
    let lines = read_log_until(&mut log, "nick=marker", "guessing-0000").await;
    let throttled: Vec<&String> = lines.iter().filter(|l| l.contains("throttled")).collect();
    let failed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("sign-in failed"))
        .collect();
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert!(throttled[0].contains("WARN"), "{throttled:?}");
    assert!(throttled[0].contains("account=alice"), "{throttled:?}");
    // Tries 0..=3 and 8 were checked; 4..=7 were throttled before any check.
    assert_eq!(failed.len(), 5, "{failed:?}");
    for l in &failed {
        assert!(
            l.contains(" INFO ") && l.contains("peer=127.0.0.1 account=alice"),
            "{l}"
        );
    }
}

/// Every failed sign-in has one `INFO ... sign-in failed peer=IP account=NAME` line, whatever
/// the dialect (nc, natter's binary protocol, IRC's SASL) and whether the account exists: the
/// line fail2ban's filter in SECURITY.md looks for. The password is in none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failed_sign_in_is_logged_with_its_address_and_account() {
    use natter_core::wire::Proof;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (_child, mut log, addr) = spawn_server(
        &["--listen", "127.0.0.1:0", "--irc-listen", "127.0.0.1:0"],
        &[patient()],
    )
    .await;
    let lines = read_log_until(&mut log, "door=Irc ", "wrong horse").await;
    let irc_addr: std::net::SocketAddr = lines
        .last()
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("the IRC listener's address");
    let _alice = BinClient::registered(addr, "alice", "correct horse").await;

    // nc, an account nobody registered.
    let (mut nc, _) = TextClient::entered(addr, "nc").await;
    nc.send("/login nobody wrong horse").await;
    nc.expect_has("wrong account name or password").await;
    // natter's binary protocol, a wrong password.
    let (mut bin, _) = BinClient::hello(addr, "bin", None).await;
    bin.send(&ClientMsg::SignIn {
        account: nick("alice"),
        proof: Proof::Password(natter_core::Password("wrong horse".into())),
        remember: false,
    })
    .await;
    bin.expect(|m| matches!(m, ServerMsg::Error { .. }), "the refusal")
        .await;
    // IRC's SASL PLAIN: "\0alice\0wrong horse".
    let mut irc = tokio::io::BufReader::new(connect(irc_addr).await);
    irc.get_mut()
        .write_all(b"CAP REQ :sasl\r\nNICK ircguess\r\nUSER g 0 * :g\r\nAUTHENTICATE PLAIN\r\n")
        .await
        .expect("write");
    let mut said = String::new();
    timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                irc.read_line(&mut line).await.expect("read") > 0,
                "closed: {said}"
            );
            said.push_str(&line);
            if line.contains(" AUTHENTICATE +") {
                irc.get_mut()
                    .write_all(b"AUTHENTICATE AGFsaWNlAHdyb25nIGhvcnNl\r\n")
                    .await
                    .expect("write");
            }
            if line.contains(" 904 ") {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no 904: {said}"));

    let _marker = BinClient::hello(addr, "marker", None).await;
    let lines = read_log_until(&mut log, "nick=marker", "wrong horse").await;
    let failed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("sign-in failed"))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for (line, account) in failed.iter().zip(["nobody", "alice", "alice"]) {
        assert!(line.contains(" INFO "), "{line}");
        let want = format!("sign-in failed peer=127.0.0.1 account={account} ");
        assert!(line.contains(&want), "{want:?} not in {line}");
        // Loopback is exempt from the per-address limits, so no address of it is known.
        assert!(line.contains(" known=false"), "{line}");
    }
}

/// README's fail2ban filter, as written, catches a failed sign-in in both log formats: its
/// first `failregex` the text format's line, its second `--log-format json`'s (the format the
/// systemd unit in deploy/ uses), with the client's address where fail2ban reads `<HOST>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readmes_fail2ban_filter_matches_both_log_formats() {
    use tokio::io::AsyncBufReadExt;
    let readme = include_str!("../../README.md");
    let filter = readme
        .split("# /etc/fail2ban/filter.d/natter.conf")
        .nth(1)
        .and_then(|f| f.split("[Init]").next())
        .expect("README's fail2ban filter");
    // `failregex = A` and its continuation lines, each one regex; `\S+` stands for a word.
    let regexes: Vec<String> = filter
        .lines()
        .skip_while(|l| !l.starts_with("failregex"))
        .take_while(|l| l.starts_with("failregex") || l.starts_with(' '))
        .map(|l| {
            l.trim_start_matches("failregex =")
                .trim()
                .replace("\\S+", "")
        })
        .collect();
    assert_eq!(regexes.len(), 2, "{filter}");
    for (format, regex) in ["text", "json"].into_iter().zip(&regexes) {
        let (before, after) = regex
            .split_once("<HOST>")
            .unwrap_or_else(|| panic!("no <HOST> in {regex}"));
        // Port 0, the address read from the log: a port found free here and bound by the
        // server later can be taken meanwhile by another test's socket.
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .args(["--listen", "127.0.0.1:0", "--log-format", format])
            .env("RUST_LOG", "info")
            .env("NATTER_EPHEMERAL", "true")
            .env_remove("NATTER_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn natter-server");
        let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let listen: std::net::SocketAddr = timeout(WAIT, async {
            loop {
                line.clear();
                assert!(log.read_line(&mut line).await.unwrap() > 0, "exited");
                // `addr=127.0.0.1:N` in text, `"addr":"127.0.0.1:N"` in JSON.
                if let Some((_, at)) = line
                    .contains("listening")
                    .then(|| line.split_once("127.0.0.1:"))
                    .flatten()
                {
                    let port: String = at.chars().take_while(char::is_ascii_digit).collect();
                    return format!("127.0.0.1:{port}")
                        .parse()
                        .expect("a port in the log line");
                }
            }
        })
        .await
        .expect("natter-server listens");
        let (mut nc, _) = TextClient::welcomed(listen, "nc").await;
        nc.send("/login bob wrong horse").await;
        nc.expect_has("wrong account name or password").await;
        let want = format!("{before}127.0.0.1{after}");
        let found = timeout(Duration::from_secs(10), async {
            loop {
                line.clear();
                assert!(log.read_line(&mut line).await.unwrap() > 0, "exited");
                if line.contains("sign-in failed") {
                    return line.clone();
                }
            }
        })
        .await
        .expect("a sign-in failed line");
        assert!(found.contains(&want), "{format}: {want:?} not in {found}");
        child.kill().await.ok();
    }
}

/// Over real sockets: a laptop's connection drops (its session waits for a resume), the
/// password is changed from another device, and the laptop's token (or a copy of it) no longer
/// opens the account's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_leaves_a_dropped_devices_token_useless() {
    use natter_core::wire::{ErrorKind, Proof, Resume};
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut desk = BinClient::registered(addr, "alice", "correct horse").await;

    let (mut laptop, _) = BinClient::hello(addr, "laptop", None).await;
    laptop
        .send(&ClientMsg::SignIn {
            account: nick("alice"),
            proof: Proof::Password(natter_core::Password("correct horse".into())),
            remember: false,
        })
        .await;
    let ServerMsg::SignedIn { token, .. } = laptop
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "signed in")
        .await
    else {
        unreachable!("expect returned what it matched");
    };
    // The laptop shows it holds the token (the one before it stops), then drops.
    laptop.send(&ClientMsg::Ping { token: 7 }).await;
    laptop
        .expect(|m| matches!(m, ServerMsg::Pong { token: 7 }), "pong")
        .await;
    drop(laptop);
    tokio::time::sleep(Duration::from_millis(300)).await;

    desk.send(&ClientMsg::ChangePassword {
        old: natter_core::Password("correct horse".into()),
        new: natter_core::Password("battery staple".into()),
    })
    .await;
    desk.expect(|m| matches!(m, ServerMsg::PasswordChanged), "the change")
        .await;

    let mut thief = BinClient::connect(addr, "thief").await;
    thief
        .send(&ClientMsg::Hello {
            version: natter_core::wire::PROTOCOL_VERSION,
            nick: nick("thief"),
            resume: Some(Resume {
                token,
                rooms: Vec::new(),
            }),
        })
        .await;
    thief
        .expect(
            |m| {
                matches!(
                    m,
                    ServerMsg::Error {
                        kind: ErrorKind::ResumeFailed,
                        ..
                    }
                )
            },
            "the resume refused",
        )
        .await;
    let welcome = thief
        .expect(
            |m| matches!(m, ServerMsg::Welcome { .. }),
            "a fresh welcome",
        )
        .await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() != "alice"),
        "{welcome:?}"
    );
    stop(server).await;
}

/// The real binary started with an admin named in `[accounts] admins` whose account does not
/// exist: while anyone may register, the log warns (once, before it listens) that whoever
/// registers the name first becomes a server admin; with registration closed it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_name_nobody_registered_is_warned_of_at_start() {
    async fn start_log(config: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("natter.toml");
        std::fs::write(&path, config).expect("write the config");
        let path = path.display().to_string();
        let args = ["--listen", "127.0.0.1:0", "--config", &path];
        let (_child, _, _, seen) = spawn_server_seen(&args, &[], Duration::from_secs(20)).await;
        seen
    }
    let open = start_log("[accounts]\nadmins = [\"root\"]\n").await;
    let warned: Vec<_> = open.iter().filter(|l| l.contains("admin=root")).collect();
    assert_eq!(warned.len(), 1, "{open:?}");
    assert!(warned[0].contains("WARN"), "{warned:?}");
    assert!(warned[0].contains("registers it first"), "{warned:?}");
    let closed = start_log("[accounts]\nregistration = \"closed\"\nadmins = [\"root\"]\n").await;
    assert!(
        !closed.iter().any(|l| l.contains("admin=root")),
        "{closed:?}"
    );
}

/// A direct message to an account with nothing connected is kept in the store: a SIGKILL of
/// the server does not lose it (the sender's echo came after it was durable), and the
/// account's next sign-in, on nc after the restart, shows it once, with the time it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_to_an_account_with_nothing_connected_waits_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start_stored(dir.path()).await;
    let (mut a, _) = TextClient::entered(addr, "a").await;
    a.send("/nick erin").await;
    a.expect_has("you are now known as erin").await;
    a.send("/register a long passphrase").await;
    a.expect_has("you are signed in as erin").await;
    a.send("/quit").await;
    a.expect_closed().await;
    // A binary sender: the echo is the acknowledgement, and it is told the message waits.
    let (mut bob, _) = BinClient::hello(addr, "bob", None).await;
    bob.send(&ClientMsg::Msg {
        to: nick("erin"),
        id: MsgId(1),
        text: text("lunch tomorrow?"),
    })
    .await;
    bob.expect(
        |m| matches!(m, ServerMsg::Direct(dm) if dm.text.as_str() == "lunch tomorrow?"),
        "the echo",
    )
    .await;
    bob.expect(
        |m| matches!(m, ServerMsg::Away { nick, away: Some(w) } if nick.as_str() == "erin" && w.as_str().contains("waits for them")),
        "that it waits",
    )
    .await;
    server.start_kill().expect("SIGKILL natter-server");
    server.wait().await.expect("wait for natter-server");

    let (_server, addr) = start_stored(dir.path()).await;
    let (mut b, _) = TextClient::entered(addr, "b").await;
    b.send("/login erin a long passphrase").await;
    b.expect_has("you are signed in as erin").await;
    b.expect_has("*bob* lunch tomorrow?").await;
    // Once: signed in again elsewhere, it is not there.
    let (mut c, _) = TextClient::entered(addr, "c").await;
    c.send("/login erin a long passphrase").await;
    c.expect_has("you are signed in as erin").await;
    let rest = c.lines_for(std::time::Duration::from_millis(500)).await;
    assert!(
        !rest.iter().any(|l| l.contains("lunch tomorrow?")),
        "delivered once: {rest:?}"
    );
}

/// Over real sockets, with an account: a token copied from the owner's `SignedIn` cannot take
/// the session while its owner is connected and answers the probe; the owner's own resume
/// after a drop works once, with a new token; and the copied (now previous) token then opens
/// nothing (SECURITY.md, *Sessions*; the hub's tests check the same without sockets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_account_token_takes_nothing_and_stops_working_once_replaced() {
    use natter_core::wire::{ErrorKind, Resume};
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut desk, _) = BinClient::hello(addr, "alice", None).await;
    desk.send(&ClientMsg::Register {
        password: natter_core::Password("correct horse".into()),
        remember: false,
    })
    .await;
    let ServerMsg::SignedIn { token, .. } = desk
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
        .await
    else {
        unreachable!("expect returned what it matched");
    };
    desk.join("#w").await;
    let resume_with = |token: &natter_core::types::ResumeToken| {
        Some(Resume {
            token: token.clone(),
            rooms: Vec::new(),
        })
    };
    let refused = |m: &ServerMsg| {
        matches!(
            m,
            ServerMsg::Error {
                kind: ErrorKind::ResumeFailed,
                ..
            }
        )
    };

    // A thief presents the token while the desk is connected: the server probes the desk,
    // which answers, and keeps its session.
    let copy = resume_with(&token);
    let thief = tokio::spawn(async move {
        let mut thief = BinClient::connect(addr, "thief").await;
        thief
            .send(&ClientMsg::Hello {
                version: natter_core::wire::PROTOCOL_VERSION,
                nick: nick("thief"),
                resume: copy,
            })
            .await;
        thief.expect(refused, "the resume refused").await;
        thief
            .expect(
                |m| matches!(m, ServerMsg::Welcome { .. }),
                "a fresh welcome",
            )
            .await
    });
    let ServerMsg::Ping { token: probe } = desk
        .expect(|m| matches!(m, ServerMsg::Ping { .. }), "the probe")
        .await
    else {
        unreachable!("expect returned what it matched");
    };
    desk.send(&ClientMsg::Pong { token: probe }).await;
    let welcome = timeout(Duration::from_secs(10), thief)
        .await
        .expect("the thief is answered")
        .unwrap();
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() != "alice"),
        "{welcome:?}"
    );
    desk.say("#w", "still mine").await;

    // The desk's connection drops; its client resumes with the token, gets a new one and
    // shows it has it.
    drop(desk);
    let (mut back, welcome) = BinClient::hello(addr, "alice", resume_with(&token)).await;
    let ServerMsg::Welcome {
        resumed: true,
        nick: n,
        token: newer,
        ..
    } = welcome
    else {
        panic!("not resumed: {welcome:?}");
    };
    assert_eq!(n.as_str(), "alice");
    assert_ne!(newer, token, "every welcome a new token");
    back.send(&ClientMsg::Ping { token: 5 }).await;
    back.expect(|m| matches!(m, ServerMsg::Pong { token: 5 }), "pong")
        .await;

    // The copy is the token before: it opens nothing now, whoever holds the session.
    drop(back);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, welcome) = BinClient::hello(addr, "thief", resume_with(&token)).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() != "alice"),
        "{welcome:?}"
    );
    let (_, welcome) = BinClient::hello(addr, "alice", resume_with(&newer)).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { resumed: true, .. }),
        "the newer one still does: {welcome:?}"
    );
    stop(server).await;
}

/// A lost laptop, signed out alone: two remembered devices of alice over real sockets; the
/// desk lists both (the laptop's door and address as the server saw them, the desk marked as
/// this device), forgets the laptop, and the laptop, still connected, is told why and closed;
/// its key opens nothing after, while the desk stays signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_device_forgotten_from_another_is_told_and_its_key_opens_nothing() {
    use natter_core::wire::{DeviceDoor, ErrorKind, Proof, RememberedDevice};
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let password = || natter_core::Password("correct horse".into());
    let _account = BinClient::registered(addr, "alice", "correct horse").await;
    // Two remembered devices: each signs in with "remember me" and gets a key.
    let mut keys = Vec::new();
    let mut devices = Vec::new();
    for name in ["desk", "laptop"] {
        let (mut c, _) = BinClient::hello(addr, name, None).await;
        c.send(&ClientMsg::SignIn {
            account: nick("alice"),
            proof: Proof::Password(password()),
            remember: true,
        })
        .await;
        let ServerMsg::SignedIn { key: Some(key), .. } = c
            .expect(
                |m| matches!(m, ServerMsg::SignedIn { key: Some(_), .. }),
                "signed in with a key",
            )
            .await
        else {
            unreachable!("expect returned what it matched");
        };
        keys.push(key);
        devices.push(c);
    }
    let mut laptop = devices.pop().unwrap();
    let mut desk = devices.pop().unwrap();
    let laptop_id = RememberedDevice::id_of(keys[1].id());

    desk.send(&ClientMsg::Devices).await;
    let ServerMsg::Devices { devices: list } = desk
        .expect(
            |m| matches!(m, ServerMsg::Devices { .. }),
            "the device list",
        )
        .await
    else {
        unreachable!("expect returned what it matched");
    };
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].id, RememberedDevice::id_of(keys[0].id()));
    assert!(list[0].this && !list[1].this, "{list:?}");
    assert_eq!(list[1].id, laptop_id);
    let used = list[1].used.clone().expect("its sign-in is its use");
    assert_eq!(used.door, DeviceDoor::Client);
    assert_eq!(used.address, Some(addr.ip()));

    desk.send(&ClientMsg::ForgetDevice { id: laptop_id }).await;
    desk.expect(
        |m| matches!(m, ServerMsg::Done(w) if w.as_str().contains("forgotten and signed out")),
        "the forgetting done",
    )
    .await;
    let told = laptop.expect_closed_with(ErrorKind::NotSignedIn).await;
    assert!(
        told.iter().any(
            |m| matches!(m, ServerMsg::Bye { reason } if reason.contains("forgotten by another of your devices"))
        ),
        "{told:?}"
    );

    let (mut thief, _) = BinClient::hello(addr, "thief", None).await;
    thief
        .send(&ClientMsg::SignIn {
            account: nick("alice"),
            proof: Proof::Key(keys[1].clone()),
            remember: false,
        })
        .await;
    thief
        .expect(
            |m| {
                matches!(
                    m,
                    ServerMsg::Error {
                        kind: ErrorKind::SignInFailed,
                        ..
                    }
                )
            },
            "the forgotten key refused",
        )
        .await;
    // The desk is still alice, and its own key still opens the account.
    desk.send(&ClientMsg::Devices).await;
    let ServerMsg::Devices { devices: list } = desk
        .expect(
            |m| matches!(m, ServerMsg::Devices { .. }),
            "the device list",
        )
        .await
    else {
        unreachable!("expect returned what it matched");
    };
    assert_eq!(list.len(), 1, "{list:?}");
    let (mut again, _) = BinClient::hello(addr, "again", None).await;
    again
        .send(&ClientMsg::SignIn {
            account: nick("alice"),
            proof: Proof::Key(keys[0].clone()),
            remember: false,
        })
        .await;
    again
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. }),
            "the desk's key opens",
        )
        .await;
    stop(server).await;
}

/// A lab behind one address (here 127.0.0.1, counted as any address): eleven mistyped
/// passwords from neighbours start the address's waits, which hold a name never signed in to
/// from there; alice, who proved her account from there before, still signs in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_behind_one_address_still_signs_in_after_its_neighbours_typos() {
    let mut config = ServerConfig::local_test();
    // 127.0.0.1 is neither exempt nor a trusted proxy: the lab's one address.
    config.hub.exempt_loopback = false;
    config.hub.trusted_proxies.clear();
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut a, _) = TextClient::welcomed(addr, "a").await;
    a.send("/nick alice").await;
    a.expect_has("you are now known as alice").await;
    a.send("/register correct horse").await;
    a.expect_has("you are signed in as alice").await;
    // (Her registration proved the account from this address, as a sign-in does.)

    // Two neighbours mistype their passwords, eleven times in all (each within its flood
    // burst), one refusal read before the next try.
    let (mut s1, _) = TextClient::welcomed(addr, "s1").await;
    let (mut s2, _) = TextClient::welcomed(addr, "s2").await;
    for i in 0..11 {
        let s = if i % 2 == 0 { &mut s1 } else { &mut s2 };
        s.send(&format!("/login student{i} typo typo")).await;
        let r = s.expect(|l| l.starts_with("ERROR:"), "a refusal").await;
        assert!(r.contains("wrong account name or password"), "{i}: {r}");
    }
    s1.send("/login bob correct horse").await;
    let r = s1.expect(|l| l.starts_with("ERROR:"), "a refusal").await;
    assert!(
        r.contains("too many failed sign-ins from your address"),
        "{r}"
    );
    // Alice mistypes once (her own count) and then is in, with no wait.
    let (mut b, _) = TextClient::welcomed(addr, "b").await;
    b.send("/login alice correct hose").await;
    let r = b.expect(|l| l.starts_with("ERROR:"), "a refusal").await;
    assert!(r.contains("wrong account name or password"), "{r}");
    b.send("/login alice correct horse").await;
    b.expect_has("you are signed in as alice").await;
    // The address still waits for the names it does not know.
    s2.send("/login bob correct horse").await;
    let r = s2.expect(|l| l.starts_with("ERROR:"), "a refusal").await;
    assert!(r.contains("from your address"), "{r}");
    stop(server).await;
}

/// The ids and labels of the account's remembered devices, as `c` is told them.
async fn labels_listed(c: &mut BinClient) -> Vec<(u32, Option<String>)> {
    c.send(&ClientMsg::Devices).await;
    let ServerMsg::Devices { devices } = c
        .expect(
            |m| matches!(m, ServerMsg::Devices { .. }),
            "the device list",
        )
        .await
    else {
        unreachable!("expect returned what it matched");
    };
    devices
        .into_iter()
        .map(|d| (d.id, d.label.map(|l| l.as_str().to_owned())))
        .collect()
}

/// Device labels over real sockets: a device that says what it is called before its
/// remembered sign-in is listed with that label by another device of the account, which
/// renames it; a client of version 12 signed in to the same account gets the list as version
/// 12 had it (the same devices, no labels, its bytes), and still decodes everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_label_is_listed_by_another_device_and_a_version_12_client_gets_none() {
    use natter_core::types::DeviceLabel;
    use natter_core::wire::{
        DeviceUse, FrameDecoder, MAGIC, Proof, RememberedDevice, decode_payload, encode_frame,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(ServerConfig::local_test_patient()).await.unwrap();
    let addr = server.local_addrs()[0];
    let password = || natter_core::Password("correct horse".into());
    let label = |s: &str| DeviceLabel::new(s).unwrap();
    let _account = BinClient::registered(addr, "alice", "correct horse").await;
    let mut ids = Vec::new();
    let mut devices = Vec::new();
    for (name, said) in [("desk", None), ("laptop", Some("natter on laptop"))] {
        let (mut c, _) = BinClient::hello(addr, name, None).await;
        if let Some(said) = said {
            c.send(&ClientMsg::ThisDevice { label: label(said) }).await;
        }
        c.send(&ClientMsg::SignIn {
            account: nick("alice"),
            proof: Proof::Password(password()),
            remember: true,
        })
        .await;
        let ServerMsg::SignedIn { key: Some(key), .. } = c
            .expect(
                |m| matches!(m, ServerMsg::SignedIn { key: Some(_), .. }),
                "signed in with a key",
            )
            .await
        else {
            unreachable!("expect returned what it matched");
        };
        ids.push(RememberedDevice::id_of(key.id()));
        devices.push(c);
    }
    let mut desk = devices.remove(0);
    assert_eq!(
        labels_listed(&mut desk).await,
        [
            (ids[0], None),
            (ids[1], Some("natter on laptop".to_owned()))
        ]
    );
    desk.send(&ClientMsg::NameDevice {
        id: ids[0],
        label: label("desk at work"),
    })
    .await;
    desk.expect(
        |m| matches!(m, ServerMsg::Done(w) if w.as_str().ends_with("is called desk at work now")),
        "the naming done",
    )
    .await;
    assert_eq!(
        labels_listed(&mut devices[0]).await,
        [
            (ids[0], Some("desk at work".to_owned())),
            (ids[1], Some("natter on laptop".to_owned()))
        ]
    );

    // A client of 12: it cannot say a label, and its list is version 12's.
    let mut old = support::connect(addr).await;
    let mut out = MAGIC.to_vec();
    for m in [
        ClientMsg::Hello {
            version: 12,
            nick: nick("old"),
            resume: None,
        },
        ClientMsg::SignIn {
            account: nick("alice"),
            proof: Proof::Password(password()),
            remember: false,
        },
        ClientMsg::Devices,
    ] {
        out.extend_from_slice(&encode_frame(&m).unwrap());
    }
    old.write_all(&out).await.unwrap();
    type V12 = (
        u32,
        Vec<(u32, natter_core::Millis, Option<DeviceUse>, bool)>,
    );
    let mut dec = FrameDecoder::new();
    let mut buf = [0u8; 8192];
    let mut seen = Vec::new();
    let got: V12 = timeout(WAIT, async {
        loop {
            while let Some(p) = dec.next_frame().unwrap() {
                // The list is variant 35; everything before it decodes as it always did.
                if p.first() == Some(&35) {
                    return decode_payload::<V12>(&p).expect("version 12's list");
                }
                seen.push(decode_payload::<ServerMsg>(&p).expect("a message of 12"));
            }
            let n = old.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {seen:?}");
            dec.extend(&buf[..n]);
        }
    })
    .await
    .expect("the list, in time");
    assert!(
        seen.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
        "{seen:?}"
    );
    assert_eq!(got.0, 35);
    assert_eq!(
        got.1.iter().map(|d| (d.0, d.3)).collect::<Vec<_>>(),
        [(ids[0], false), (ids[1], false)]
    );
    stop(server).await;
}
