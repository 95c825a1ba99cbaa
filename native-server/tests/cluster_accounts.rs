//! Accounts in a cluster (issue 23) against a real nats-server with JetStream, started by each
//! test on a free port and stopped by its pid: an account registered on one node signs in on
//! another, one name registered at once on two nodes goes to one account, and an account (its
//! password, device key, rooms and read marker) survives its node restarting.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_core::wire::{ClientMsg, ErrorKind, Proof, ServerMsg};
use natter_core::{DeviceKey, Nick, Password, ResumeToken, Seq};
use natter_server::Server;
use std::net::SocketAddr;
use std::time::Duration;
use support::{BinClient, nick, room};

/// A natter-server node in this process, in the cluster at `nats`.
async fn node(nats: &Nats) -> Server {
    support::cluster_node(nats.url()).await
}

fn addr(s: &Server) -> SocketAddr {
    s.local_addrs()[0]
}

fn pw(s: &str) -> Password {
    Password(s.into())
}

/// What answers an account request: `Ok(account, key)` or `Err(kind, detail)`.
async fn answer(c: &mut BinClient) -> Result<(Nick, Option<DeviceKey>), (ErrorKind, String)> {
    let m = c
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. } | ServerMsg::Error { .. }),
            "an account answer",
        )
        .await;
    match m {
        ServerMsg::SignedIn { account, key, .. } => Ok((account, key)),
        ServerMsg::Error { kind, detail, .. } => Err((kind, detail.to_string())),
        _ => unreachable!("expect returned what it matched"),
    }
}

async fn register(c: &mut BinClient, password: &str, remember: bool) -> Result<Nick, String> {
    c.send(&ClientMsg::Register {
        password: pw(password),
        remember,
    })
    .await;
    answer(c).await.map(|a| a.0).map_err(|e| e.1)
}

/// A new connection to `at` that signs in to `account` with `proof`.
async fn sign_in(
    at: SocketAddr,
    guest: &str,
    account: &str,
    proof: Proof,
) -> (BinClient, Result<Nick, ErrorKind>) {
    let (mut c, _) = BinClient::hello(at, guest, None).await;
    c.send(&ClientMsg::SignIn {
        account: nick(account),
        proof,
        remember: false,
    })
    .await;
    let got = answer(&mut c).await.map(|a| a.0).map_err(|e| e.0);
    (c, got)
}

/// [`sign_in`] with a password, tried again (three times at most, 300 ms apart: the free
/// failures of an account) while the node has not heard of the account yet: a node learns of
/// another node's account through a watch, a moment after it is made.
async fn sign_in_soon(at: SocketAddr, account: &str, password: &str) -> BinClient {
    let mut last = None;
    for _ in 0..3 {
        let (c, got) = sign_in(at, "visitor", account, Proof::Password(pw(password))).await;
        match got {
            Ok(n) if n.as_str() == account => return c,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{account} did not sign in at {at}: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_registered_on_one_node_signs_in_on_another() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let (mut alice, _) = BinClient::hello(addr(&a), "alice", None).await;
    assert_eq!(
        register(&mut alice, "correct horse", false).await,
        Ok(nick("alice"))
    );
    alice.join("#r").await;
    drop(alice);
    // On the other node the nick is the account's.
    let (_, welcome) = BinClient::hello(addr(&b), "alice", None).await;
    assert!(
        matches!(&welcome, ServerMsg::Welcome { nick: n, .. } if *n != nick("alice")),
        "{welcome:?}"
    );
    let mut there = sign_in_soon(addr(&b), "alice", "correct horse").await;
    let (_, wrong) = sign_in(
        addr(&b),
        "mallory",
        "alice",
        Proof::Password(pw("wrong horse")),
    )
    .await;
    assert_eq!(wrong, Err(ErrorKind::SignInFailed));
    // She is in her room on this node too.
    let r = room("#r");
    there
        .expect(
            |m| matches!(m, ServerMsg::Joined { room, .. } if *room == r),
            "her room, joined on this node",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_registered_at_once_on_two_nodes_goes_to_one_account() {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let (mut x, mut y) = tokio::join!(
        BinClient::hello(addr(&a), "zed", None),
        BinClient::hello(addr(&b), "zed", None)
    );
    let (rx, ry) = tokio::join!(
        register(&mut x.0, "password of x", false),
        register(&mut y.0, "password of y", false)
    );
    let (rx, ry) = (
        rx.expect("x registers its nick"),
        ry.expect("y registers its nick"),
    );
    assert!(
        (rx == nick("zed")) != (ry == nick("zed")),
        "exactly one account is zed: {rx} {ry}"
    );
    let (winner, loser) = if rx == nick("zed") {
        ("password of x", "password of y")
    } else {
        ("password of y", "password of x")
    };
    // On both nodes, zed opens with the winner's password only.
    for at in [addr(&a), addr(&b)] {
        sign_in_soon(at, "zed", winner).await;
        let (_, got) = sign_in(at, "someone", "zed", Proof::Password(pw(loser))).await;
        assert_eq!(got, Err(ErrorKind::SignInFailed));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_survives_its_node_restarting() {
    let nats = Nats::start();
    let a = node(&nats).await;
    let (mut alice, _) = BinClient::hello(addr(&a), "alice", None).await;
    alice
        .send(&ClientMsg::Register {
            password: pw("correct horse"),
            remember: true,
        })
        .await;
    let key = answer(&mut alice)
        .await
        .expect("registered")
        .1
        .expect("a device key");
    alice.join("#r").await;
    alice.say("#r", "before the restart").await;
    let seq = match alice
        .expect(
            |m| matches!(m, ServerMsg::Event(e) if e.room == room("#r") && e.seq > Seq(1)),
            "her line back",
        )
        .await
    {
        ServerMsg::Event(e) => e.seq,
        _ => unreachable!("expect returned what it matched"),
    };
    alice
        .send(&ClientMsg::Read {
            room: room("#r"),
            seq,
        })
        .await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::ReadUpTo { seq: s, .. } if *s == seq),
            "her marker",
        )
        .await;
    drop(alice);
    a.shutdown().await.expect("the node stops");
    // The node comes back (a new process would be the same: nothing is kept on it).
    let a = node(&nats).await;
    let (mut back, got) = sign_in(
        addr(&a),
        "visitor",
        "alice",
        Proof::Password(pw("correct horse")),
    )
    .await;
    assert_eq!(got, Ok(nick("alice")));
    let r = room("#r");
    back.expect(
        |m| matches!(m, ServerMsg::Joined { room, .. } if *room == r),
        "her room",
    )
    .await;
    back.expect(
        |m| matches!(m, ServerMsg::ReadUpTo { room, seq: s } if *room == r && *s == seq),
        "her marker after the room's Joined",
    )
    .await;
    // The device key still opens, and a password change reaches another node (running
    // already: it hears of the change through its watch).
    let (_, got) = sign_in(addr(&a), "phone", "alice", Proof::Key(key.clone())).await;
    assert_eq!(got, Ok(nick("alice")));
    let b = node(&nats).await;
    back.send(&ClientMsg::ChangePassword {
        old: pw("correct horse"),
        new: pw("battery staple"),
    })
    .await;
    back.expect(|m| *m == ServerMsg::PasswordChanged, "changed")
        .await;
    sign_in_soon(addr(&b), "alice", "battery staple").await;
    let old = Proof::Password(pw("correct horse"));
    let (_, got) = sign_in(addr(&b), "v1", "alice", old).await;
    assert_eq!(got, Err(ErrorKind::SignInFailed));
    let (_, got) = sign_in(addr(&b), "v2", "alice", Proof::Key(key)).await;
    assert_eq!(
        got,
        Err(ErrorKind::SignInFailed),
        "a password change revokes keys"
    );
}

/// Runs `natter-server account ARGS --cluster URL` with `password` in NATTER_PASSWORD if given
/// (no terminal, no store). Returns its exit code and stdout.
async fn account_cmd(nats: &Nats, args: &[&str], password: Option<&str>) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter-server"));
    cmd.arg("account")
        .args(args)
        .arg("--cluster")
        .arg(nats.url())
        // A cheap hash, as the nodes of these tests use.
        .arg("--config")
        .arg(cheap_config())
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_PASSWORD")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("NATTER_PASSWORD", p);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("natter-server account finished within 30 s")
        .expect("run natter-server account");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for secret in ["kettle lantern", "staple kettle"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    (out.status.code().expect("exited"), stdout + &stderr)
}

/// A config file whose accounts hash cheaply (kept for the whole test run).
fn cheap_config() -> std::path::PathBuf {
    static FILE: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
        std::io::Write::write_all(
            &mut f,
            b"[accounts]\nhash_cost = { memory_kib = 64, iterations = 1 }\n",
        )
        .expect("written");
        f
    })
    .path()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_account_commands_work_on_the_clusters_accounts() {
    let nats = Nats::start();
    let a = node(&nats).await;
    let (code, out) = account_cmd(&nats, &["add", "bob"], Some("kettle lantern")).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("added account bob"), "{out}");
    // The running node heard of it at once: no reload.
    sign_in_soon(addr(&a), "bob", "kettle lantern").await;
    let (code, out) = account_cmd(&nats, &["add", "Bob"], Some("kettle lantern")).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("there is an account named bob already"),
        "{out}"
    );
    let (code, out) = account_cmd(&nats, &["list"], None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("bob\t"), "{out}");
    let (code, out) = account_cmd(&nats, &["passwd", "bob"], Some("staple kettle")).await;
    assert_eq!(code, 0, "{out}");
    sign_in_soon(addr(&a), "bob", "staple kettle").await;
    let (code, out) = account_cmd(&nats, &["remove", "bob"], None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("removed account bob"), "{out}");
    let (code, out) = account_cmd(&nats, &["remove", "bob"], None).await;
    assert_eq!(code, 1);
    assert!(out.contains("there is no account named bob"), "{out}");
    // Gone on the node too (it hears the removal through its watch).
    let mut gone = false;
    for _ in 0..3 {
        let (_, got) = sign_in(addr(&a), "v", "bob", Proof::Password(pw("staple kettle"))).await;
        if got == Err(ErrorKind::SignInFailed) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(gone, "the removed account still signs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_while_nats_is_down_is_refused_and_accounts_flow_again_after() {
    let mut nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let (mut alice, _) = BinClient::hello(addr(&a), "alice", None).await;
    nats.stop();
    let refused = register(&mut alice, "correct horse", false).await;
    let detail = refused.expect_err("not registered without NATS");
    assert!(
        detail.contains("cluster") && detail.contains("not registered"),
        "{detail}"
    );
    nats.run();
    // The nodes reconnect by themselves, and so do their accounts' watches: an account
    // registered on one node afterwards signs in on the other.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match register(&mut alice, "correct horse", false).await {
            Ok(n) => {
                assert_eq!(n, nick("alice"));
                break;
            }
            Err(why) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "never registered: {why}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    sign_in_soon(addr(&b), "alice", "correct horse").await;
}

/// A new connection to `at` signed in to `account` with `password` that shows it has its
/// resume token (a ping answered): the client and the token.
async fn device(at: SocketAddr, account: &str, password: &str) -> (BinClient, ResumeToken) {
    let (mut c, _) = BinClient::hello(at, "device", None).await;
    c.send(&ClientMsg::SignIn {
        account: nick(account),
        proof: Proof::Password(pw(password)),
        remember: false,
    })
    .await;
    let got = c
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "signed in")
        .await;
    let ServerMsg::SignedIn { token, .. } = got else {
        unreachable!("expect returned what it matched")
    };
    c.send(&ClientMsg::Ping { token: 7 }).await;
    c.expect(|m| matches!(m, ServerMsg::Pong { token: 7 }), "a pong")
        .await;
    (c, token)
}

/// Whether a hello with `token` at `at` resumes the session.
async fn resumes(at: SocketAddr, token: &ResumeToken) -> bool {
    let resume = natter_core::wire::Resume {
        token: token.clone(),
        rooms: Vec::new(),
    };
    let (_, welcome) = BinClient::hello(at, "someone", Some(resume)).await;
    matches!(welcome, ServerMsg::Welcome { resumed: true, .. })
}

/// A password changed where this node's users are not (here by the operator's command, which
/// writes the cluster's accounts; a device signed in on another node does the same) ends the
/// account's sessions on this node as a change made here would: a dropped device's token
/// opens nothing, a connected one goes on and its token opens nothing once it drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_elsewhere_ends_the_accounts_sessions_on_every_node() {
    let nats = Nats::start();
    let a = node(&nats).await;
    let (mut alice, _) = BinClient::hello(addr(&a), "alice", None).await;
    assert_eq!(
        register(&mut alice, "correct horse", false).await,
        Ok(nick("alice"))
    );
    let (dropped, dropped_token) = device(addr(&a), "alice", "correct horse").await;
    let (mut kept, kept_token) = device(addr(&a), "alice", "correct horse").await;
    drop(dropped);
    // Dropped: its session waits for a resume (the node notices the close at once).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (code, out) = account_cmd(&nats, &["passwd", "alice"], Some("staple kettle")).await;
    assert_eq!(code, 0, "{out}");
    // The node has heard once the new password opens.
    sign_in_soon(addr(&a), "alice", "staple kettle").await;

    assert!(
        !resumes(addr(&a), &dropped_token).await,
        "the dropped device's token still opens the session"
    );
    // The connected device goes on as alice until it drops.
    kept.send(&ClientMsg::Ping { token: 8 }).await;
    kept.expect(|m| matches!(m, ServerMsg::Pong { token: 8 }), "a pong")
        .await;
    drop(kept);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !resumes(addr(&a), &kept_token).await,
        "the connected device's token opens the session after it dropped"
    );
}

/// The config file in `dir` of the "unclaimed admin" tests: `boss` an admin, no account of it,
/// and a cheap hash.
fn boss_config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("natter.toml");
    std::fs::write(
        &cfg,
        "[accounts]\nadmins = [\"boss\"]\nhash_cost = { memory_kib = 64, iterations = 1 }\n",
    )
    .unwrap();
    cfg
}

/// natter-server started with `args` and `envs`, and the command its warning of an unclaimed
/// admin says to run (with the warning); `secret` is nowhere in its log.
async fn unclaimed_warning(
    args: &[&str],
    envs: &[(&str, &str)],
    secret: &str,
) -> (tokio::process::Child, String, String) {
    let (child, _log, _addr, seen) =
        support::spawn_server_seen(args, envs, Duration::from_secs(30)).await;
    let all = seen.join("\n");
    assert!(!all.contains(secret), "the secret is in the log:\n{all}");
    let warning = seen
        .iter()
        .find(|l| l.contains("admins names an account that does not exist"))
        .unwrap_or_else(|| panic!("no warning in {all}"));
    let command = warning
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {warning}"));
    (child, warning.clone(), command.to_owned())
}

/// `line` run by `sh` as pasted into a shell with the server's environment: natter-server on
/// the PATH, the config [`boss_config`] wrote in `dir`, a data directory there, the boss's
/// password, and `NATTER_CLUSTER` only if `cluster` is given. Its output, within 30 s.
async fn sh(line: &str, dir: &std::path::Path, cluster: Option<&str>) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_natter-server"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .env("PATH", &path)
        .env_remove("NATTER_CLUSTER")
        .env("NATTER_CONFIG", dir.join("natter.toml"))
        .env("NATTER_DATA_DIR", dir.join("data"))
        .env("NATTER_PASSWORD", "boss passphrase")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(url) = cluster {
        cmd.env("NATTER_CLUSTER", url);
    }
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("finished within 30 s")
        .expect("run sh")
}

/// The command the warning says to run when the cluster's address holds a password works pasted
/// as it is into a shell that has the server's environment, and the log never holds the
/// password (it said `--cluster nats://natter:***@...`, which fails to authenticate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unclaimed_admin_warning_behind_a_nats_password_works_pasted_and_hides_it() {
    let password = "N4ts-Pass-w0rd";
    let nats = Nats::start_with_user("natter", password);
    let url = format!("nats://natter:{password}@{}", nats.addr());
    let dir = tempfile::tempdir().unwrap();
    let cfg = boss_config(dir.path());
    let args = ["--listen", "127.0.0.1:0", "--config", cfg.to_str().unwrap()];
    let envs = [("NATTER_CLUSTER", url.as_str())];
    let (mut child, warning, command) = unclaimed_warning(&args, &envs, password).await;
    assert_eq!(
        command,
        "natter-server account add boss --cluster \"$NATTER_CLUSTER\""
    );
    assert!(warning.contains("nats://natter:***@"), "{warning}");
    let out = sh(&command, dir.path(), Some(&url)).await;
    assert!(out.status.success(), "{out:?}");
    let list = "natter-server account list --cluster \"$NATTER_CLUSTER\"";
    let out = sh(list, dir.path(), Some(&url)).await;
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(listed.starts_with("boss\t"), "{listed}");
    child.kill().await.unwrap();
}

/// A cluster node's start warns of an admin nobody has registered, and the command it says to
/// run makes the account in the cluster: run as written, it reaches the node's NATS (the
/// command without `--cluster` made it in a local store no node reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unclaimed_admin_warning_of_a_node_names_the_command_that_makes_it_in_the_cluster() {
    let nats = Nats::start();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let cfg = boss_config(dir.path());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        &url,
        "--config",
        cfg.to_str().unwrap(),
    ];
    let (mut child, _, command) = unclaimed_warning(&args, &[], "boss passphrase").await;
    assert_eq!(
        command,
        format!("natter-server account add boss --cluster {url}")
    );
    // Run as written (the config for its cheap hash, somewhere the user's data is not).
    let out = sh(&command, dir.path(), None).await;
    assert!(out.status.success(), "{out:?}");
    let (code, listed) = account_cmd(&nats, &["list"], None).await;
    assert_eq!(code, 0, "{listed}");
    assert!(listed.starts_with("boss\t"), "{listed}");
    child.kill().await.unwrap();
}

/// The operator removes a room's founder from the cluster (`natter-server account remove
/// --cluster`): a member on another node gets the room's settings with no founder, and the
/// name registered anew there founds and operates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founder_removed_from_the_cluster_leaves_its_room_with_none() {
    use natter_core::wire::ModAction;
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let mut alice = BinClient::registered(addr(&a), "alice", "kettle lantern").await;
    alice.join("#r").await;
    let moderate = |action| ClientMsg::Moderate {
        room: room("#r"),
        action,
    };
    alice.send(&moderate(ModAction::Register)).await;
    alice
        .expect(
            |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "alice"),
            "#r registered",
        )
        .await;
    let (mut bob, _) = BinClient::hello(addr(&b), "bob", None).await;
    bob.join("#r").await;
    let founder_of = |m: &ServerMsg| match m {
        ServerMsg::Policy {
            room: r, founder, ..
        } if *r == room("#r") => Some(founder.clone()),
        _ => None,
    };
    let (code, out) = account_cmd(&nats, &["remove", "alice"], None).await;
    assert_eq!(code, 0, "{out}");
    bob.expect(
        |m| founder_of(m) == Some(None),
        "#r's settings with no founder",
    )
    .await;
    // Said once, by alice's node, through the room's log.
    let said = |m: &ServerMsg| {
        matches!(m, ServerMsg::Event(ev) if ev.room == room("#r")
            && matches!(&ev.kind, natter_core::wire::EventKind::Mode { change }
                if change.as_str() == "account removed: no founder"))
    };
    bob.msgs_for(Duration::from_millis(500)).await;
    assert_eq!(
        bob.seen.iter().filter(|m| said(m)).count(),
        1,
        "{:?}",
        bob.seen
    );
    alice.send(&ClientMsg::Quit { reason: None }).await;
    // The name registered anew, on the other node (once alice's nick is free there).
    let mut newcomer = None;
    for _ in 0..10 {
        let (c, w) = BinClient::hello(addr(&b), "alice", None).await;
        if matches!(&w, ServerMsg::Welcome { nick: n, .. } if n.as_str() == "alice") {
            newcomer = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut newcomer = newcomer.expect("the nick alice is free again");
    assert_eq!(
        register(&mut newcomer, "staple kettle", false)
            .await
            .map(|n| n.to_string()),
        Ok("alice".to_owned())
    );
    newcomer.join("#r").await;
    newcomer.send(&moderate(ModAction::Settings)).await;
    let got = newcomer
        .expect(|m| founder_of(m).is_some(), "#r's settings")
        .await;
    assert_eq!(founder_of(&got), Some(None), "{got:?}");
    newcomer
        .send(&moderate(ModAction::Mode(
            natter_core::moderation::ModeChange::Moderated(true),
        )))
        .await;
    newcomer
        .expect(
            |m| {
                matches!(
                    m,
                    ServerMsg::Error {
                        kind: ErrorKind::NotOperator,
                        ..
                    }
                )
            },
            "no operator",
        )
        .await;
}

/// A node that signs in to NATS with credentials given apart from `--cluster` (`--nats-user`
/// and `--nats-password-file` here) warns of an unclaimed admin with a command that takes the
/// same credentials: pasted into a shell with the server's environment, it makes the account
/// in the cluster. It said `account add boss --cluster nats://...` alone, which NATS refuses
/// for want of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unclaimed_admin_warning_of_a_node_with_nats_credentials_apart_passes_them_on() {
    let password = "N4ts-Apart-w0rd";
    let nats = Nats::start_with_user("natter", password);
    let url = format!("nats://{}", nats.addr());
    let dir = tempfile::tempdir().unwrap();
    let cfg = boss_config(dir.path());
    let pw_file = dir.path().join("nats password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--config",
        cfg.to_str().unwrap(),
        "--cluster",
        &url,
        "--nats-user",
        "natter",
        "--nats-password-file",
        pw_file.to_str().unwrap(),
    ];
    let (mut child, _, command) = unclaimed_warning(&args, &[], password).await;
    let out = sh(&command, dir.path(), None).await;
    assert!(out.status.success(), "{command}: {out:?}");
    let list = format!(
        "natter-server account list --cluster {url} \
         --nats-user natter --nats-password-file '{}'",
        pw_file.display()
    );
    let listed = sh(&list, dir.path(), None).await;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("boss\t"), "{listed}");
    child.kill().await.unwrap();
}
