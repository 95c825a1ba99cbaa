//! `natter --remember` against a real natter-server: a registration (or sign-in) that asks to
//! be remembered keeps the device key in a private file under `$XDG_STATE_HOME/natter/`, and the
//! next `natter --login` signs in with it, no password at hand; a password change rewrites it; a
//! key the server refuses (the device forgotten from another client) is deleted and the client
//! falls back to the password, or exits 1 without one; `--forget-device` revokes it; a key file
//! others may read is refused.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use support::{Client, WAIT, server};

const PASSWORD: &str = "long-passphrase-1";

/// The environment every run gets: its own state directory, and no password.
fn env(state: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("XDG_STATE_HOME", state.display().to_string()),
        ("NATTER_PASSWORD", String::new()),
    ]
}

fn start(name: &str, args: &[&str], addr: SocketAddr, env: &[(&str, String)]) -> Client {
    let mut all: Vec<String> = vec!["--nick".into(), name.into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.push(addr.to_string());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Client::start_env(name, &all, &env)
}

/// Runs natter to its end with no input, its stdout and stderr kept.
async fn run_to_end(args: &[String], env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("XDG_CONFIG_HOME", support::config_home())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(WAIT + Duration::from_secs(5), cmd.output())
        .await
        .expect("natter ends in time")
        .expect("natter runs");
    eprintln!(
        "[run {args:?}] status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn args(list: &[&str], addr: SocketAddr) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|a| a.to_string()).collect();
    v.push(addr.to_string());
    v
}

/// Where the key of `nick` at `addr` is kept.
fn key_file(state: &Path, nick: &str, addr: SocketAddr) -> PathBuf {
    state
        .join("natter")
        .join("devices")
        .join(format!("{nick}@{}_{}", addr.ip(), addr.port()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `nick` registers with `--remember` (a typed `/register`), which keeps its key; returns the
/// file.
async fn register_remembered(state: &Path, addr: SocketAddr, nick: &str) -> PathBuf {
    register_remembered_by(state, addr, nick, &["--remember"]).await
}

/// As [`register_remembered`], remembering as `flags` say.
async fn register_remembered_by(
    state: &Path,
    addr: SocketAddr,
    nick: &str,
    flags: &[&str],
) -> PathBuf {
    let mut c = start(nick, flags, addr, &env(state));
    c.expect(&format!("-- connected as {nick}")).await;
    c.send(&format!("/register {PASSWORD}")).await;
    c.expect(&format!("-- you are signed in as {nick}")).await;
    let file = key_file(state, nick, addr);
    c.expect(&format!(
        "-- this device is remembered: its key is kept in {} (natter --forget-device forgets it)",
        file.display()
    ))
    .await;
    c.close_stdin();
    assert!(c.exit_status().await.success());
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_device_signs_in_again_without_a_password() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "ann").await;
    assert_eq!(mode(&file), 0o600, "the key file is its owner's only");
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.starts_with("# natter device key "), "{first}");

    // No password anywhere (NATTER_PASSWORD blank, no password_file, no terminal to ask on):
    // signed in with the key.
    let mut bob = start("bob", &[], addr, &env(state.path()));
    bob.expect("-- connected as bob").await;
    let mut ann = start("ann", &["--login"], addr, &env(state.path()));
    ann.expect("-- you are signed in as ann").await;
    ann.send("hello from a remembered terminal").await;
    bob.expect("[#lobby] <ann> hello from a remembered terminal")
        .await;
    // `/devices` marks this one, with the label it was given.
    ann.send("/devices").await;
    ann.expect("-- 1 remembered device (/devices name ID label names one, /devices forget ID signs one out for good):").await;
    let line = ann
        .expect_where("this device", |l| l.contains("(this device)"))
        .await;
    assert!(line.contains("\"natter on "), "{line}");

    // A password change gives this device a new key: the file is rewritten.
    ann.send(&format!("/password {PASSWORD} another-passphrase-2"))
        .await;
    ann.expect_containing("your password was changed; this device stays remembered")
        .await;
    ann.expect(&format!(
        "-- the new device key is kept in {}",
        file.display()
    ))
    .await;
    ann.close_stdin();
    assert!(ann.exit_status().await.success());
    let second = std::fs::read_to_string(&file).unwrap();
    assert_ne!(first, second, "a new key");
    assert_eq!(mode(&file), 0o600);
    // Only the key file in the directory: the temporary file was renamed.
    assert_eq!(
        std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
        1
    );

    // The new key signs in; signing out revokes it, and its file goes.
    let mut ann = start("ann", &["--login"], addr, &env(state.path()));
    ann.expect("-- you are signed in as ann").await;
    ann.send("/logout").await;
    ann.expect(&format!(
        "-- the device key kept in {} is deleted (signing out revokes it)",
        file.display()
    ))
    .await;
    ann.close_stdin();
    assert!(ann.exit_status().await.success());
    assert!(!file.exists());
    bob.close_stdin();
    assert!(bob.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// Forgets every device of `nick`'s from another client signed in with the password.
async fn forget_from_elsewhere(addr: SocketAddr, nick: &str) {
    let elsewhere = tempfile::tempdir().unwrap();
    let mut env = env(elsewhere.path());
    env[1].1 = PASSWORD.to_owned();
    let mut other = start(nick, &["--login"], addr, &env);
    other
        .expect(&format!("-- you are signed in as {nick}"))
        .await;
    other.send("/devices").await;
    let line = other
        .expect_where("the remembered device", |l| l.contains("\"natter on "))
        .await;
    let id = &line["-- ".len().."-- ".len() + 8];
    other.send(&format!("/devices forget {id}")).await;
    other.expect_containing(id).await;
    other.close_stdin();
    assert!(other.exit_status().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_forgotten_elsewhere_is_deleted_and_the_password_signs_in_or_it_exits_1() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();

    // With a password at hand: the key is refused, the file deleted, the password signs in.
    // (Remembered by the config file's `remember = true` this time.)
    let config = state.path().join("config.toml");
    std::fs::write(&config, "remember = true\n").unwrap();
    let config = config.display().to_string();
    let file = register_remembered_by(state.path(), addr, "cy", &["--config", &config]).await;
    forget_from_elsewhere(addr, "cy").await;
    let mut with_password = env(state.path());
    with_password[1].1 = PASSWORD.to_owned();
    let mut cy = start("cy", &["--login"], addr, &with_password);
    cy.expect(&format!(
        "-- the server refused the device key kept in {} (the device was forgotten, the \
         password changed, or the account is gone): the file is deleted; signing in with the \
         password",
        file.display()
    ))
    .await;
    cy.expect("-- you are signed in as cy").await;
    cy.close_stdin();
    assert!(cy.exit_status().await.success());
    assert!(!file.exists(), "the refused key is deleted");

    // Without one: told, the file deleted, exit 1.
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "dee").await;
    forget_from_elsewhere(addr, "dee").await;
    let out = run_to_end(
        &args(&["--login", "--nick", "dee"], addr),
        &env(state.path()),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "-- the server refused the device key kept in {} (the device was forgotten, the \
             password changed, or the account is gone): the file is deleted; sign in with \
             --login and the password",
            file.display()
        )),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("natter: could not sign in with this device's key: "),
        "{stderr}"
    );
    assert!(!file.exists(), "the refused key is deleted");
    server.shutdown().await.expect("server shuts down");
}

/// A device forgotten from another while it is signed in with its kept key, a password at
/// hand: the server signs it out (which revokes the key, and the client lets go of the password
/// too), so the file is deleted as after a sign-out, and natter does not say that it signs in
/// with the password, which it does not do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_forgotten_while_signed_in_deletes_its_key_as_a_sign_out() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "hal").await;
    let mut with_password = env(state.path());
    with_password[1].1 = PASSWORD.to_owned();
    let mut hal = start("hal", &["--login"], addr, &with_password);
    hal.expect("-- you are signed in as hal").await;
    forget_from_elsewhere(addr, "hal").await;
    hal.expect(&format!(
        "-- the device key kept in {} is deleted (signing out revokes it)",
        file.display()
    ))
    .await;
    assert!(!file.exists(), "the revoked key is deleted");
    // `--login`: the account's only session ends (`natter: signed out by the server: ...` on
    // stderr) rather than talking on as a guest.
    let status = hal.exit_status().await;
    assert_eq!(status.code(), Some(1), "{:#?}", hal.seen);
    hal.drain().await;
    assert!(
        !hal.seen
            .iter()
            .any(|l| l.contains("refused") || l.contains("signing in with the password")),
        "{:#?}",
        hal.seen
    );
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_device_revokes_the_key_and_deletes_the_file() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "eve").await;
    let copy = std::fs::read(&file).unwrap();
    let out = run_to_end(
        &args(&["--forget-device", "--nick", "eve"], addr),
        &env(state.path()),
    )
    .await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("natter: the server forgot this device (key ")
            && stderr.contains(&format!("{} is deleted", file.display())),
        "{stderr}"
    );
    assert!(!file.exists());

    // The server took it back: the same key (a copy someone kept) signs in no more.
    std::fs::write(&file, &copy).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_to_end(
        &args(&["--login", "--nick", "eve"], addr),
        &env(state.path()),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!file.exists());

    // Nothing kept: said, exit 1.
    let out = run_to_end(
        &args(&["--forget-device", "--nick", "eve"], addr),
        &env(state.path()),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("natter: no device key is kept for eve at "),
        "{stderr}"
    );
    server.shutdown().await.expect("server shuts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_others_may_read_or_that_holds_no_key_is_refused() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "flo").await;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let login = args(&["--login", "--nick", "flo"], addr);
    let out = run_to_end(&login, &env(state.path())).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing connected");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "natter: the device key file {} is open to its group and every other user (mode \
             0644; it must be 0600)",
            file.display()
        )) && stderr.contains(&format!("chmod 600 {}", file.display())),
        "{stderr}"
    );
    assert!(file.exists(), "kept for the user to decide");

    // The fix the message gives works.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut flo = start("flo", &["--login"], addr, &env(state.path()));
    flo.expect("-- you are signed in as flo").await;
    flo.close_stdin();
    assert!(flo.exit_status().await.success());

    // A directory others may write to: they could have put the key there.
    let dir = file.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let out = run_to_end(&login, &env(state.path())).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing connected");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "natter: the device key directory {} may be written to by its group (mode 0770; it \
             must be 0700)",
            dir.display()
        )) && stderr.contains(&format!("run chmod 700 {};", dir.display())),
        "{stderr}"
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut flo = start("flo", &["--login"], addr, &env(state.path()));
    flo.expect("-- you are signed in as flo").await;
    flo.close_stdin();
    assert!(flo.exit_status().await.success());

    std::fs::write(&file, "not a key\n").unwrap();
    let out = run_to_end(&login, &env(state.path())).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "natter: {} is not a natter device key file (the key is not 64 hex digits)",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    server.shutdown().await.expect("server shuts down");
}

/// A device remembered for one account, run as a guest under that account's name with
/// `--remember`, that signs in to another with a typed `/login` keeps the other's key in the
/// other's file: the first account's file is left as it was, and still signs in. (Signed in, a
/// `/login` to another account is refused: `/logout` first, which revokes the key.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_login_to_another_account_keeps_its_key_in_its_own_file() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let ann_file = register_remembered(state.path(), addr, "ann").await;
    let ann_key = std::fs::read_to_string(&ann_file).unwrap();
    let mut reg = start("bob", &[], addr, &env(state.path()));
    reg.expect("-- connected as bob").await;
    reg.send(&format!("/register {PASSWORD}")).await;
    reg.expect("-- you are signed in as bob").await;
    reg.close_stdin();
    assert!(reg.exit_status().await.success());

    // A guest asking for ann's nick (a registered one: given another), then `/login bob`.
    let mut ann = start("ann", &["--remember"], addr, &env(state.path()));
    ann.expect_containing("-- connected as ").await;
    ann.send(&format!("/login bob {PASSWORD}")).await;
    ann.expect("-- you are signed in as bob").await;
    let bob_file = key_file(state.path(), "bob", addr);
    ann.expect(&format!(
        "-- this device is remembered: its key is kept in {} (natter --forget-device forgets it)",
        bob_file.display()
    ))
    .await;
    ann.close_stdin();
    assert!(ann.exit_status().await.success());
    assert_eq!(
        std::fs::read_to_string(&ann_file).unwrap(),
        ann_key,
        "ann's file is left alone"
    );
    assert_ne!(std::fs::read_to_string(&bob_file).unwrap(), ann_key);

    // Each file signs in to its own account, no password at hand.
    for who in ["ann", "bob"] {
        let mut c = start(who, &["--login"], addr, &env(state.path()));
        c.expect(&format!("-- you are signed in as {who}")).await;
        c.close_stdin();
        assert!(c.exit_status().await.success());
    }
    server.shutdown().await.expect("server shuts down");
}

/// `natter --login --remember` with the password remembers the device; once the key is
/// refused, the same command signs in with the password and keeps the new key it asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_remember_keeps_a_key_and_keeps_a_new_one_after_a_refusal() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let mut reg = start("gil", &[], addr, &env(state.path()));
    reg.expect("-- connected as gil").await;
    reg.send(&format!("/register {PASSWORD}")).await;
    reg.expect("-- you are signed in as gil").await;
    reg.close_stdin();
    assert!(reg.exit_status().await.success());
    let file = key_file(state.path(), "gil", addr);
    assert!(
        !file.exists(),
        "a registration without --remember keeps nothing"
    );

    let mut with_password = env(state.path());
    with_password[1].1 = PASSWORD.to_owned();
    let remembered = format!(
        "-- this device is remembered: its key is kept in {} (natter --forget-device forgets it)",
        file.display()
    );
    let mut gil = start("gil", &["--login", "--remember"], addr, &with_password);
    gil.expect("-- you are signed in as gil").await;
    gil.expect(&remembered).await;
    gil.close_stdin();
    assert!(gil.exit_status().await.success());
    let first = std::fs::read_to_string(&file).unwrap();

    forget_from_elsewhere(addr, "gil").await;
    let mut gil = start("gil", &["--login", "--remember"], addr, &with_password);
    gil.expect_containing("the file is deleted; signing in with the password")
        .await;
    gil.expect("-- you are signed in as gil").await;
    gil.expect(&remembered).await;
    gil.close_stdin();
    assert!(gil.exit_status().await.success());
    assert_ne!(std::fs::read_to_string(&file).unwrap(), first, "a new key");

    // And it signs in with no password.
    let mut gil = start("gil", &["--login"], addr, &env(state.path()));
    gil.expect("-- you are signed in as gil").await;
    gil.close_stdin();
    assert!(gil.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// `--forget-device` with the server out of reach: the file goes anyway, and natter says the
/// server still takes the key and how to forget it from elsewhere (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_device_out_of_reach_deletes_the_file_and_says_what_is_left_to_do() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "hal").await;
    let hex = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    server.shutdown().await.expect("server shuts down");
    let out = run_to_end(
        &args(&["--forget-device", "--nick", "hal", "--wait", "1"], addr),
        &env(state.path()),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "natter: {} is deleted, but the server was not told to forget the key (could not \
             connect to {addr} within 1s",
            file.display()
        )) && stderr.contains(&format!(
            "/devices forget {} from a signed-in client",
            &hex[..8]
        )),
        "{stderr}"
    );
    assert!(!file.exists());
}

/// `natter --login` whose kept key is refused (forgotten elsewhere) and signs in with the
/// password, fed a `/password` line that works: every line was done, exit 0. The `/password`
/// line counted as typed from the moment it was read, which is before the start-up sign-in was
/// answered, so the key's refusal was taken for that line's and line mode exited 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_key_refused_is_not_taken_for_a_typed_account_line_read_before_it() {
    let (server, addr) = server().await;
    let state = tempfile::tempdir().unwrap();
    let file = register_remembered(state.path(), addr, "fay").await;
    forget_from_elsewhere(addr, "fay").await;
    let mut with_password = env(state.path());
    with_password[1].1 = PASSWORD.to_owned();
    let mut fay = start("fay", &["--login"], addr, &with_password);
    // Read at once, typed in turn once the sign-in is through.
    fay.send(&format!("/password {PASSWORD} another-passphrase-3"))
        .await;
    fay.expect(&format!(
        "-- the server refused the device key kept in {} (the device was forgotten, the \
         password changed, or the account is gone): the file is deleted; signing in with the \
         password",
        file.display()
    ))
    .await;
    fay.expect("-- you are signed in as fay").await;
    fay.expect_containing("your password was changed").await;
    fay.close_stdin();
    let status = fay.exit_status().await;
    assert!(status.success(), "{status}: {:#?}", fay.seen);
    server.shutdown().await.expect("server shuts down");
}
