//! The `natter-server` binary: it prints the address it bound, serves, and on SIGTERM tells its
//! clients it is going away and exits 0.

mod support;

use support::*;
use tokio::process::Command;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_says_goodbye_and_exits_zero() {
    let (mut child, mut log, addr) = spawn_server(
        &["--listen", "127.0.0.1:0", "--shutdown-grace-ms", "2000"],
        &[patient()],
    )
    .await;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let (mut a, nick_a) = TextClient::entered(addr, "a").await;
    let (mut b, _) = TextClient::entered(addr, "b").await;
    a.send("over the process boundary").await;
    b.expect(
        |l| l == format!("<{nick_a}> over the process boundary"),
        "a's line",
    )
    .await;
    let (mut bin, _) = BinClient::hello(addr, "bin", None).await;

    let status = sigterm(&mut child).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let got = bin.expect_closed().await;
    assert!(
        matches!(got.last(), Some(natter_core::wire::ServerMsg::Bye { .. })),
        "{got:#?}"
    );
    let lines = a.expect_closed().await;
    assert!(lines.iter().any(|l| l.starts_with("-- ")), "{lines:?}");
    b.expect_closed().await;
    // The log has one connect and one disconnect line per client, with the peer address.
    let mut rest = String::new();
    let _ = timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_string(&mut log, &mut rest),
    )
    .await;
    assert!(rest.contains("disconnected"), "{rest}");
    assert!(rest.contains("peer=127.0.0.1:"), "{rest}");
}

/// A grace of a second or less made every shutdown with clients still connected warn
/// `connections still open after the grace period; aborting`: each connection, its goodbye
/// written, drains its peer's unread input for up to a second (so the close does not reset
/// it), and the accept loops waited the grace alone. Clients that stay connected (nc does, after
/// the server's FIN) get their goodbye, the process exits 0, and the log warns of nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_grace_does_not_warn_of_connections_only_draining() {
    let (mut child, mut log, addr) = spawn_server(
        &["--listen", "127.0.0.1:0", "--shutdown-grace-ms", "300"],
        &[patient()],
    )
    .await;
    let (mut a, _) = TextClient::entered(addr, "a").await;
    let (mut b, _) = TextClient::entered(addr, "b").await;
    let (mut bin, _) = BinClient::hello(addr, "bin", None).await;

    let status = sigterm(&mut child).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    for c in [&mut a, &mut b] {
        let lines = c.expect_closed().await;
        assert!(
            lines.iter().any(|l| l.contains("server shutting down")),
            "{lines:?}"
        );
    }
    let got = bin.expect_closed().await;
    assert!(
        matches!(got.last(), Some(natter_core::wire::ServerMsg::Bye { .. })),
        "{got:#?}"
    );
    let mut rest = String::new();
    let _ = timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_string(&mut log, &mut rest),
    )
    .await;
    assert!(rest.contains("server stopped"), "{rest}");
    assert!(!rest.contains("after the grace period"), "{rest}");
    assert!(!rest.contains("grace ran out"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_name_the_client_a_proxy_named_and_the_proxy_beside_it() {
    // Behind a proxy (or the bridge) every connection's socket is the proxy's: the "ready",
    // "limit hit", "closing" and "disconnected" lines named only that address, so an operator
    // looking for whoever hit a limit found the proxy (and might have banned the bridge).
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (_child, mut log, addr) = spawn_server(
        &["--listen", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"],
        &[],
    )
    .await;
    let mut proxied = connect(addr).await;
    proxied
        .write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 8000\r\nhello\r\n")
        .await
        .expect("write");
    let (mut direct, _) = TextClient::welcomed(addr, "direct").await;
    direct.send("/quit").await;
    direct.expect_closed().await;
    drop(proxied);
    let mut lines: Vec<String> = Vec::new();
    timeout(WAIT, async {
        while lines.iter().filter(|l| l.contains("disconnected")).count() < 2 {
            let mut line = String::new();
            assert!(log.read_line(&mut line).await.expect("read the log") > 0);
            lines.push(line);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("two disconnected lines: {lines:#?}"));
    let with = |what: &str, peer: &str| {
        lines
            .iter()
            .filter(|l| l.contains(what) && l.contains(peer))
            .count()
    };
    for what in ["ready", "disconnected"] {
        assert_eq!(
            with(what, "peer=203.0.113.7 via=127.0.0.1"),
            1,
            "{what}: {lines:#?}"
        );
        // A direct client's line has its own address and no `via`.
        let direct: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(what) && l.contains("peer=127.0.0.1"))
            .collect();
        assert!(
            direct.len() == 1 && !direct[0].contains("via="),
            "{what}: {lines:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_flags() {
    let out = timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .arg("--help")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("--help timed out")
    .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--listen", "--config", "--trusted-proxy", "NATTER_LISTEN"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_a_config_file_and_the_environment() {
    // The file sets the listen address and a limit; the environment sets the grace.
    let path = std::env::temp_dir().join(format!("natter-server-test-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "listen = [\"127.0.0.1:0\"]\n[limits]\nmax_connections = 1\n",
    )
    .expect("write the config file");
    let config = path.to_str().expect("a UTF-8 temp path").to_owned();
    let (mut child, _log, addr) = spawn_server(
        &[],
        &[
            ("NATTER_CONFIG", &config),
            ("NATTER_SHUTDOWN_GRACE_MS", "500"),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&path);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let (_a, _) = TextClient::welcomed(addr, "a").await;
    // max_connections = 1 from the file: the second is turned away.
    let mut b = TextClient::connect(addr, "b").await;
    let got = b.expect_closed().await;
    assert!(got.iter().any(|l| l.contains("full")), "{got:?}");
    assert_eq!(sigterm(&mut child).await.code(), Some(0));
}

/// The environment natter-server runs with now, as the kernel has it (`/proc/PID/environ`,
/// after it executed itself again the new image's), NULs as newlines. (glibc rewrites its
/// tunables there as it reads them: `:` may show as a newline.)
fn environ(child: &tokio::process::Child) -> String {
    let pid = child.id().expect("running");
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read the environment");
    String::from_utf8_lossy(&raw).replace('\0', "\n")
}

/// natter-server runs with glibc's small-chunk caches off (less memory held after a burst of
/// connections), set by executing itself again with `GLIBC_TUNABLES`; an operator's own
/// setting is kept instead. Either way it serves.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_runs_with_its_allocator_settings_unless_given_others() {
    let (child, _log, addr) = spawn_server(&["--listen", "127.0.0.1:0"], &[]).await;
    let env = environ(&child);
    assert!(
        env.contains("GLIBC_TUNABLES=glibc.malloc.mxfast=0") && env.contains("tcache_count=0"),
        "{env}"
    );
    TextClient::welcomed(addr, "a").await;
    drop(child);

    let mine = "glibc.malloc.arena_max=2";
    let (child, _log, addr) =
        spawn_server(&["--listen", "127.0.0.1:0"], &[("GLIBC_TUNABLES", mine)]).await;
    let env = environ(&child);
    assert!(env.contains(&format!("GLIBC_TUNABLES={mine}")), "{env}");
    assert!(!env.contains("mxfast"), "{env}");
    TextClient::welcomed(addr, "b").await;
}

/// Executing itself again (through `/proc/self/exe`) does not rename the process `exe`: the
/// operator's `ps`, `top`, `pgrep natter-server` and `pkill natter-server` find it by its name.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_keeps_its_name() {
    let (child, _log, addr) = spawn_server(&["--listen", "127.0.0.1:0"], &[]).await;
    let pid = child.id().expect("running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("read its name");
    assert_eq!(comm.trim_end(), "natter-server");
    TextClient::welcomed(addr, "a").await;
}

/// Started with a shell's low soft limit of open files (256), natter-server raises it to the
/// hard limit and says so, and serves more connections than the old limit allowed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_raises_a_low_open_file_limit_to_the_hard_limit() {
    let hard = std::fs::read_to_string("/proc/self/limits")
        .expect("read limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .expect("the open files line");
    let wrapper = ["sh", "-c", r#"ulimit -S -n 256 && exec "$0" "$@""#];
    let (child, mut log, addr, seen) = spawn_server_wrapped(
        &wrapper,
        &["--listen", "127.0.0.1:0"],
        &[patient()],
        SERVER_START,
    )
    .await;
    let pid = child.id().expect("a pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("the open files line");
    let soft = line.split_whitespace().nth(3).expect("the soft limit");
    assert_eq!(soft, hard, "{line}");
    assert!(
        seen.iter()
            .any(|l| l.contains("open-file limit raised") && l.contains("from=256")),
        "{seen:?}"
    );
    // Its log is read on (a line per connection would fill the pipe and stop it).
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        while log.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    // 300 connections at once (loopback is exempt from the per-address limits): past the 256
    // files it started with. Each sends the binary preamble and waits, so that none is greeted
    // as a person: 300 guests joining #lobby, each join told to all the others, kept a loaded
    // machine's server busy past the last one's wait for its welcome.
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut c = connect(addr).await;
        tokio::io::AsyncWriteExt::write_all(&mut c, &natter_core::wire::MAGIC)
            .await
            .expect("write the preamble");
        held.push(c);
    }
    let (_last, nick) = TextClient::entered(addr, "last").await;
    assert!(!nick.is_empty());
}

/// Runs the binary with `args` and `envs` to its end (it must fail at start): its exit code and
/// what it said on stderr.
async fn refused_at_start(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .args(args)
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_DATA_DIR")
            .envs(envs.iter().copied())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("natter-server did not exit")
    .expect("run natter-server");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The usual ways of writing yes and no in an environment variable are taken for a boolean
/// flag's (`NATTER_EPHEMERAL=1` was refused: only `true` and `false` were).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boolean_environment_variables_take_1_yes_on_and_their_opposites() {
    for yes in ["1", "yes", "on", "True"] {
        let (mut child, _log, _addr, seen) = spawn_server_seen(
            &["--listen", "127.0.0.1:0"],
            &[("NATTER_EPHEMERAL", yes), ("NATTER_CLUSTER_LINE_IDS", yes)],
            SERVER_START,
        )
        .await;
        assert!(
            seen.iter().any(|l| l.contains("no store")),
            "NATTER_EPHEMERAL={yes}: {seen:?}"
        );
        assert_eq!(sigterm(&mut child).await.code(), Some(0));
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().display().to_string();
    for no in ["0", "no", "off", "false"] {
        let (mut child, _log, _addr, seen) = spawn_server_seen(
            &["--listen", "127.0.0.1:0", "--data-dir", &data],
            &[("NATTER_EPHEMERAL", no), ("NATTER_CLUSTER_LINE_IDS", no)],
            SERVER_START,
        )
        .await;
        assert!(
            !seen.iter().any(|l| l.contains("no store")),
            "NATTER_EPHEMERAL={no}: {seen:?}"
        );
        assert_eq!(sigterm(&mut child).await.code(), Some(0));
    }
}

/// The environment variables `--help` names (`[env: NATTER_LISTEN=]`), each once.
fn variables_in_help(bin: &str) -> Vec<String> {
    let out = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .expect("runs --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// README: a blank `NATTER_*` variable (an env file's `NATTER_LOG_FORMAT=`, a compose file's
/// `${NATTER_LISTEN}` left unset) is taken as unset. Only NATTER_DATA_DIR was: clap took the
/// empty text as the flag's value, and the server stopped with the flag's words (`invalid
/// value '' for '--log-format <FORMAT>'`), an empty NATTER_EPHEMERAL made it ephemeral.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blank_natter_variable_is_taken_as_unset() {
    let bin = env!("CARGO_BIN_EXE_natter-server");
    let mut names = variables_in_help(bin);
    assert!(
        names.len() >= 15 && names.iter().all(|n| n.starts_with("NATTER_")),
        "{names:?}"
    );
    // Read apart from the flags: the bridge secret and an account command's password.
    names.extend(["NATTER_BRIDGE_SECRET".into(), "NATTER_PASSWORD".into()]);
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg").display().to_string();
    let cfg = dir.path().join("natter.toml");
    // The address from the file: the blank NATTER_LISTEN over it is no address.
    std::fs::write(&cfg, "listen = [\"127.0.0.1:0\"]\n").unwrap();
    for blank in ["", "  "] {
        let mut env: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), blank)).collect();
        env.push(("XDG_DATA_HOME", &xdg));
        let (mut child, _log, _addr, seen) =
            spawn_server_seen(&["--config", cfg.to_str().unwrap()], &env, SERVER_START).await;
        // The defaults: a store in the default data directory, text logs.
        assert!(
            seen.iter()
                .any(|l| l.contains("store open") && l.contains(&xdg)),
            "{blank:?}: {seen:#?}"
        );
        assert!(seen.iter().all(|l| !l.starts_with('{')), "{seen:#?}");
        assert_eq!(sigterm(&mut child).await.code(), Some(0));
    }
    // An account command asks for the password instead of taking an empty one (no terminal
    // here: said so).
    let out = Command::new(bin)
        .args(["account", "add", "alice", "--data-dir"])
        .arg(dir.path().join("accounts"))
        .env("NATTER_PASSWORD", "")
        .stdin(std::process::Stdio::null())
        .output();
    let out = timeout(WAIT, out).await.expect("exits").unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no password: run this on a terminal"),
        "{said}"
    );
}

/// A bad flag or value given to `audit` or `account` is said as that command's failure, as a
/// bad config file is, not as `cannot start`: nothing was starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_flag_of_a_command_is_said_as_the_commands_failure() {
    let cases: [(&[&str], &str); 4] = [
        (&["audit", "--limit", "x"], "audit command failed"),
        (
            &["--config", "/nonexistent", "account", "list", "--bogus"],
            "account command failed",
        ),
        (&["account", "frobnicate"], "account command failed"),
        (&["--listen", "nowhere"], "cannot start"),
    ];
    for (args, doing) in cases {
        let (code, said) = refused_at_start(args, &[]).await;
        assert_eq!(code, Some(2), "{args:?}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "{args:?}: {said}");
        assert!(
            said.contains(&format!(" ERROR natter_server: {doing} error=")),
            "{args:?}: {said}"
        );
    }
}

/// A bad value from an environment variable is said with the variable's name (the operator
/// set that, not the flag), in one line of the log; from the flag, with the flag's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_value_from_the_environment_names_the_variable() {
    let (code, said) = refused_at_start(&[], &[("NATTER_MAX_CONNECTIONS", "lots")]).await;
    assert_eq!(code, Some(2), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(
        said.contains(" ERROR natter_server: cannot start error=NATTER_MAX_CONNECTIONS=lots")
            && said.contains("--max-connections")
            && said.contains("invalid digit"),
        "{said}"
    );
    let (code, said) = refused_at_start(&[], &[("NATTER_EPHEMERAL", "maybe")]).await;
    assert_eq!(code, Some(2), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(
        said.contains(" ERROR natter_server: cannot start error=NATTER_EPHEMERAL=maybe")
            && said.contains("yes/no"),
        "{said}"
    );
    let (code, said) = refused_at_start(&[], &[("NATTER_LOG_FORMAT", "xml")]).await;
    assert_eq!(code, Some(2), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(
        said.contains(" ERROR natter_server: cannot start error=NATTER_LOG_FORMAT=xml")
            && said.contains("text, json"),
        "{said}"
    );
    // Given as a flag (which wins over the variable), it is the flag that is named.
    let (code, said) = refused_at_start(
        &["--max-connections", "many"],
        &[("NATTER_MAX_CONNECTIONS", "lots")],
    )
    .await;
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("'many'") && said.contains("--max-connections") && !said.contains("lots"),
        "{said}"
    );
}

/// The `ERROR` line a failed start leaves in the text log, if there is exactly one: `None` when
/// there is none or several.
fn the_error_line(stderr: &str) -> Option<&str> {
    let mut errors = stderr.lines().filter(|l| l.contains(" ERROR "));
    let line = errors.next()?;
    errors.next().is_none().then_some(line)
}

/// Every way a start fails is one `ERROR` line of the log (tracing's, in the format asked for),
/// saying what failed and why, and a non-zero exit. A bad flag, an unreadable or bad config file,
/// a taken port, a bad certificate and a bad data directory were printed with `eprintln!`
/// instead, outside the log: a JSON log's reader got a bare text line, and none had a level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_at_start_is_one_error_line_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let bad_toml = dir.path().join("natter.toml");
    std::fs::write(&bad_toml, "[limits]\nflood_burst = \"x\"\n").unwrap();
    let garbage = dir.path().join("cert.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.toml");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let (garbage, bad_toml, missing) = (
        garbage.display().to_string(),
        bad_toml.display().to_string(),
        missing.display().to_string(),
    );
    let cases: [(&[&str], i32, &[&str]); 6] = [
        (
            &["--max-connections", "lots"],
            2,
            &["invalid value 'lots' for '--max-connections <N>'"],
        ),
        (
            &["--config", &missing],
            1,
            &["cannot read config file", &missing, "No such file"],
        ),
        (
            &["--config", &bad_toml],
            1,
            &["bad config file", &bad_toml, "line 2, column 15"],
        ),
        (
            &["--ephemeral", "--listen", &taken],
            1,
            &["cannot listen on", &taken, "in use"],
        ),
        (
            &[
                "--ephemeral",
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &garbage,
                "--tls-key",
                &garbage,
            ],
            1,
            &[&garbage, "no CERTIFICATE"],
        ),
        (
            &["--listen", "127.0.0.1:0", "--data-dir", &garbage],
            1,
            &[&garbage, "not a directory"],
        ),
    ];
    for (args, status, words) in cases {
        let (code, said) = refused_at_start(args, &[]).await;
        assert_eq!(code, Some(status), "{args:?}: {said}");
        let line = the_error_line(&said).unwrap_or_else(|| panic!("{args:?}: {said}"));
        assert!(
            line.contains(" ERROR natter_server: cannot start error="),
            "{args:?}: {line}"
        );
        for w in words {
            assert!(line.contains(w), "{args:?}: {w:?} not in {line}");
        }
    }
    // Asked for JSON, the line is JSON too, even before the flags could be read.
    for args in [
        &["--log-format", "json", "--config", &missing][..],
        &["--log-format=json", "--max-connections", "lots"],
    ] {
        let (code, said) = refused_at_start(args, &[]).await;
        assert!(matches!(code, Some(1 | 2)), "{args:?}: {said}");
        let line: serde_json::Value =
            serde_json::from_str(said.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {said}"));
        assert_eq!(line["level"], "ERROR", "{said}");
        assert_eq!(line["message"], "cannot start", "{said}");
        assert!(
            line["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{said}"
        );
    }
}

/// README: "Both log with `RUST_LOG` (e.g. `RUST_LOG=natter_server=debug`)". A filter that does
/// not parse (a typo in a level) was replaced by the default without a word: the operator
/// waited for debug lines that never came. It is said in the log, and the default used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_log_that_does_not_parse_is_said_in_the_log() {
    let (mut child, _log, _addr, seen) = spawn_server_seen(
        &["--listen", "127.0.0.1:0"],
        &[("RUST_LOG", "natter_server=debgu")],
        SERVER_START,
    )
    .await;
    let said = seen
        .iter()
        .find(|l| l.contains(" WARN ") && l.contains("RUST_LOG is not a log filter"))
        .unwrap_or_else(|| panic!("not said: {seen:?}"));
    assert!(said.contains("natter_server=debgu"), "{said}");
    // The default filter (info) is in force: the start's INFO lines are there.
    assert!(seen.iter().any(|l| l.contains(" INFO ")), "{seen:?}");
    assert_eq!(sigterm(&mut child).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_tokens_copied_replaced_or_guessed_are_logged_with_the_peer() {
    // Found by the hostile-input pass: a resume with a token that opens nothing, one refused
    // because the session is alive elsewhere, and a session taken over from a connection that
    // did not answer left no line at the default level (only `ready ... resumed=false`), so
    // an operator could not see a copied or guessed token being tried.
    use natter_core::ResumeToken;
    use natter_core::wire::{ClientMsg, Resume, ServerMsg};
    use tokio::io::AsyncBufReadExt;
    let (_child, mut log, addr) = spawn_server(&["--listen", "127.0.0.1:0"], &[patient()]).await;
    let token_of = |w: &ServerMsg| match w {
        ServerMsg::Welcome { token, .. } => token.clone(),
        other => panic!("no welcome: {other:?}"),
    };
    let resume = |token: ResumeToken| {
        Some(Resume {
            token,
            rooms: Vec::new(),
        })
    };
    let (_owner, welcome) = BinClient::hello(addr, "owner", None).await;
    let token = token_of(&welcome);

    // A guess: the right id, a wrong secret.
    let mut guessed = token.0;
    guessed[ResumeToken::ID_LEN..].fill(0);
    let (_g, w) = BinClient::hello(addr, "guesser", resume(ResumeToken(guessed))).await;
    assert!(matches!(w, ServerMsg::Welcome { resumed: false, .. }));

    // A copy, while the owner's connection does not answer (it reads nothing): taken over.
    let (mut thief, w) = BinClient::hello(addr, "thief", resume(token)).await;
    assert!(
        matches!(w, ServerMsg::Welcome { resumed: true, .. }),
        "{w:?}"
    );
    let thiefs = token_of(&w);

    // A copy of the new token, while its holder answers: refused.
    let mut copy = BinClient::connect(addr, "copy").await;
    copy.send(&ClientMsg::Hello {
        version: natter_core::wire::PROTOCOL_VERSION,
        nick: nick("copy"),
        resume: resume(thiefs),
    })
    .await;
    let ping = thief
        .expect(|m| matches!(m, ServerMsg::Ping { .. }), "the probe")
        .await;
    let ServerMsg::Ping { token: probe } = ping else {
        unreachable!()
    };
    thief.send(&ClientMsg::Pong { token: probe }).await;
    let w = copy
        .expect(
            |m| matches!(m, ServerMsg::Welcome { .. }),
            "a fresh welcome",
        )
        .await;
    assert!(matches!(w, ServerMsg::Welcome { resumed: false, .. }));

    let mut lines: Vec<String> = Vec::new();
    let wanted = [
        "resume refused",
        "opens no session",
        "taken over",
        "alive on another connection",
    ];
    timeout(WAIT, async {
        while !wanted.iter().all(|w| {
            lines
                .iter()
                .any(|l| l.contains(w) && l.contains("peer=127.0.0.1"))
        }) {
            let mut line = String::new();
            assert!(log.read_line(&mut line).await.expect("read the log") > 0);
            lines.push(line);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the resume lines: {lines:#?}"));
    let taken = lines.iter().find(|l| l.contains("taken over")).unwrap();
    assert!(
        taken.contains(" INFO ") && taken.contains("old_peer=127.0.0.1"),
        "{taken}"
    );
}
