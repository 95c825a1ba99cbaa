//! A cluster node signs in to a NATS that requires credentials with credentials given apart
//! from `--cluster`'s address: `--nats-user` with `--nats-password-file`, or
//! `--nats-token-file`, or their environment variables (`NATTER_NATS_USER`,
//! `NATTER_NATS_PASSWORD`, `NATTER_NATS_TOKEN`), so that the secret is in neither `ps` nor the
//! shell's history; the `account` commands take them too. Against Debian's nats-server, started
//! by each test on a free port and stopped by its pid. Until the forty-first session the address
//! (`nats://USER:PASSWORD@HOST:PORT`, in `ps` unless it came from `NATTER_CLUSTER`) was the only
//! way.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use std::time::Duration;
use support::{NATS_VARS, node_until_joined};

/// A file holding `secret` and a newline, as `echo SECRET > FILE` writes it.
fn secret_file(dir: &tempfile::TempDir, name: &str, secret: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_signs_in_with_a_user_and_a_password_given_apart_and_never_logs_it() {
    let password = "N4ts-Apart-w0rd";
    let nats = Nats::start_with_user("natter", password);
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let right = secret_file(&dir, "right", password);
    let wrong = secret_file(&dir, "wrong", "wr0ng-Apart");

    let from_file = [
        "--cluster",
        &url,
        "--nats-user",
        "natter",
        "--nats-password-file",
        &right,
    ];
    let (joined, lines) = node_until_joined(&from_file, &[]).await;
    let all = lines.join("\n");
    assert!(joined, "the node did not join:\n{all}");
    assert!(
        !all.contains(password),
        "the password is in the log:\n{all}"
    );

    let env = [
        ("NATTER_NATS_USER", "natter"),
        ("NATTER_NATS_PASSWORD", password),
    ];
    let (joined, lines) = node_until_joined(&["--cluster", &url], &env).await;
    let all = lines.join("\n");
    assert!(joined, "the node did not join from the environment:\n{all}");
    assert!(
        !all.contains(password),
        "the password is in the log:\n{all}"
    );

    let wrongly = [
        "--cluster",
        &url,
        "--nats-user",
        "natter",
        "--nats-password-file",
        &wrong,
    ];
    let (joined, lines) = node_until_joined(&wrongly, &[]).await;
    let all = lines.join("\n");
    assert!(!joined, "joined with a wrong password:\n{all}");
    assert!(
        !all.contains("wr0ng-Apart"),
        "the password is in the log:\n{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot start") && l.contains("authorization violation")),
        "{all}"
    );

    // The account commands sign in with them too.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .args(["account", "list"])
            .args(from_file)
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_CLUSTER")
            .env_remove("NATTER_NATS_USER")
            .env_remove("NATTER_NATS_PASSWORD")
            .env_remove("NATTER_NATS_TOKEN")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the command ends within 30 s")
    .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// NATS's decentralized auth (an operator, accounts and users as JWTs, `nsc`): a node signs in
/// with a user's credentials file, `--nats-creds` (or `NATTER_NATS_CREDS`); one that is not a
/// credentials file stops the start saying so, without its contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_signs_in_with_a_credentials_file() {
    let (nats, creds) = Nats::start_with_creds();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let file = secret_file(&dir, "natter.creds", &creds);
    let seed = creds
        .lines()
        .find(|l| l.starts_with("SU"))
        .expect("a user's seed")
        .to_owned();

    let (joined, lines) = node_until_joined(&["--cluster", &url, "--nats-creds", &file], &[]).await;
    let all = lines.join("\n");
    assert!(joined, "the node did not join:\n{all}");
    assert!(!all.contains(&seed), "the seed is in the log:\n{all}");

    let env = [("NATTER_NATS_CREDS", file.as_str())];
    let (joined, lines) = node_until_joined(&["--cluster", &url], &env).await;
    assert!(
        joined,
        "the node did not join from the environment:\n{}",
        lines.join("\n")
    );

    // Without them: refused.
    let (joined, lines) = node_until_joined(&["--cluster", &url], &[]).await;
    assert!(!joined, "joined without credentials:\n{}", lines.join("\n"));

    let bad = secret_file(&dir, "bad.creds", "S3cret-not-creds");
    let (joined, lines) = node_until_joined(&["--cluster", &url, "--nats-creds", &bad], &[]).await;
    let all = lines.join("\n");
    assert!(!joined, "{all}");
    let said = lines
        .iter()
        .find(|l| l.contains("cannot start"))
        .unwrap_or_else(|| panic!("no reason given:\n{all}"));
    assert!(said.contains("--nats-creds"), "{said}");
    assert!(!all.contains("S3cret-not-creds"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_signs_in_with_a_token_from_a_file_or_the_environment() {
    let token = "t0ken-Apart-S3cret";
    let nats = Nats::start_with_token(token);
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let file = secret_file(&dir, "token", token);

    let (joined, lines) =
        node_until_joined(&["--cluster", &url, "--nats-token-file", &file], &[]).await;
    let all = lines.join("\n");
    assert!(joined, "the node did not join:\n{all}");
    assert!(!all.contains(token), "the token is in the log:\n{all}");

    let env = [("NATTER_NATS_TOKEN", token)];
    let (joined, lines) = node_until_joined(&["--cluster", &url], &env).await;
    let all = lines.join("\n");
    assert!(joined, "the node did not join from the environment:\n{all}");
    assert!(!all.contains(token), "the token is in the log:\n{all}");

    // Without it: refused, and said.
    let (joined, lines) = node_until_joined(&["--cluster", &url], &[]).await;
    let all = lines.join("\n");
    assert!(!joined, "joined without the token:\n{all}");
    assert!(lines.iter().any(|l| l.contains("cannot start")), "{all}");
}

/// Credentials that cannot be what the operator meant stop the start at once, saying why: a
/// user without its password, a password without its user, a user and a token, credentials in
/// the address and apart (one set would be silently left unused), a file that cannot be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_do_not_fit_together_stop_the_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let pw = secret_file(&dir, "pw", "S3cret-pw");
    let missing = dir.path().join("missing").to_str().unwrap().to_owned();
    let url = "nats://127.0.0.1:1";
    /// The flags, the variables, and what the line that stops the start says.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (
            &["--nats-user", "natter"],
            &[],
            "--nats-user needs its password",
        ),
        (
            &["--nats-password-file", pw.as_str()],
            &[],
            "needs --nats-user",
        ),
        (
            &["--nats-user", "natter"],
            &[
                ("NATTER_NATS_PASSWORD", "S3cret-pw"),
                ("NATTER_NATS_TOKEN", "t0ken"),
            ],
            "not several",
        ),
        (
            &["--nats-token-file", pw.as_str()],
            &[("NATTER_CLUSTER", "nats://u:p@127.0.0.1:1")],
            "given twice",
        ),
        // A user left in the environment beside a password in the address: said as given
        // twice (until the forty-second session, "--nats-user needs its password").
        (
            &[],
            &[
                ("NATTER_NATS_USER", "natter"),
                ("NATTER_CLUSTER", "nats://u:p@127.0.0.1:1"),
            ],
            "given twice",
        ),
        (
            &["--nats-token-file", missing.as_str()],
            &[],
            "cannot read the secret file",
        ),
    ];
    for (args, envs, words) in cases {
        let mut all = args.to_vec();
        if !envs.iter().any(|(k, _)| *k == "NATTER_CLUSTER") {
            all.extend(["--cluster", url]);
        }
        let (joined, lines) = node_until_joined(&all, envs).await;
        let log = lines.join("\n");
        assert!(!joined, "{args:?}: joined:\n{log}");
        let said = lines
            .iter()
            .find(|l| l.contains("cannot start"))
            .unwrap_or_else(|| panic!("{args:?}: no reason given:\n{log}"));
        assert!(said.contains(words), "{args:?}: {said}");
        assert!(
            !log.contains("S3cret-pw"),
            "{args:?}: the secret is in the log:\n{log}"
        );
    }
}

/// NATS credentials flags without `--cluster` (nor `NATTER_CLUSTER`) stop the command saying
/// so: `account add` went on to make the account in a local store no node reads, and the
/// server started alone, the flags read by nothing. Their variables alone (which may be set for
/// other uses) change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_flags_without_a_cluster_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pw = secret_file(&dir, "pw", "S3cret-pw");
    let data = dir.path().join("data");
    let account = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_natter-server"));
        cmd.args(["account", "add", "boss"])
            .args(extra)
            .arg("--data-dir")
            .arg(&data)
            .env("NATTER_PASSWORD", "boss passphrase")
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_CLUSTER")
            .env_remove("NATTER_DATA_DIR")
            .stdin(std::process::Stdio::null());
        for var in NATS_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(envs.iter().copied()).output().expect("runs")
    };
    for flags in [
        &["--nats-user", "natter", "--nats-password-file", pw.as_str()][..],
        &["--nats-token-file", pw.as_str()][..],
    ] {
        let out = account(flags, &[]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?}: {out:?}");
        assert!(said.contains("--cluster"), "{flags:?}: {said}");
        assert!(!said.contains("S3cret-pw"), "{flags:?}: {said}");
    }
    // The variables alone: the account is made in the data directory.
    let out = account(
        &[],
        &[
            ("NATTER_NATS_PASSWORD", "S3cret-pw"),
            ("NATTER_NATS_USER", "u"),
        ],
    );
    assert!(out.status.success(), "{out:?}");

    // The server too, at its start.
    let (joined, lines) = node_until_joined(&["--nats-token-file", pw.as_str()], &[]).await;
    let log = lines.join("\n");
    assert!(!joined, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot start") && l.contains("--cluster")),
        "{log}"
    );
}
