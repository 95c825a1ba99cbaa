//! `natter-server account …`, the real binary: add, list, passwd, remove and their refusals,
//! exit codes, that a password never shows in what it prints, and that what it writes is what
//! the store loads and the server signs in with (also when written while the server runs).

mod support;

use natter_core::Nick;
use natter_core::accounts::verify_password;
use natter_core::persist::{BatchId, KeyRecord, LoadedAccount, TokenHash, Write};
use natter_core::types::Password;
use natter_store::{Batch, Config, LoadOptions, Reader, RecentRooms, SqliteStore};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use support::*;
use tokio::process::Command;
use tokio::time::timeout;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "staple kettle lantern";

/// Runs `natter-server account ARGS` on the store in `dir`, with `password` in NATTER_PASSWORD
/// if given; no terminal. Returns its exit code, stdout and stderr.
async fn account(dir: &Path, args: &[&str], password: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter-server"));
    cmd.arg("account")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_EPHEMERAL")
        .env_remove("NATTER_PASSWORD")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("NATTER_PASSWORD", p);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("natter-server account finished within 30 s")
        .expect("run natter-server account");
    let (stdout, stderr) = (
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    );
    for secret in [PASSWORD, NEW_PASSWORD, "short"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a password was printed: {stdout} {stderr}"
        );
    }
    (status.code().expect("exited, not killed"), stdout, stderr)
}

/// The accounts as natter-store loads them for a starting hub.
fn loaded(dir: &Path) -> Vec<LoadedAccount> {
    Reader::open(&Config::new(dir))
        .unwrap()
        .load(&LoadOptions {
            recent: 0,
            recent_rooms: RecentRooms::All,
            sessions_since: natter_core::Millis(0),
        })
        .unwrap()
        .accounts
}

fn verifies(a: &LoadedAccount, p: &str) -> bool {
    verify_password(&Password(p.into()), &a.record.hash).unwrap()
}

#[tokio::test]
async fn add_list_passwd_remove_and_their_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let (code, out, _) = account(d, &["add", "Alice"], Some(PASSWORD)).await;
    assert_eq!(code, 0);
    assert_eq!(out, "added account Alice\n");

    let (code, out, err) = account(d, &["add", "alice"], Some(PASSWORD)).await;
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("there is an account named Alice already"),
        "{err}"
    );

    let (code, out, _) = account(d, &["list"], None).await;
    assert_eq!(code, 0);
    let (name, created) = out.trim_end().split_once('\t').expect("name TAB time");
    assert_eq!(name, "Alice");
    assert!(
        created.starts_with("20") && created.ends_with('Z') && created.len() == 20,
        "{created}"
    );
    assert!(!out.contains("argon2"), "no hash in the list: {out}");
    let before = loaded(d);
    assert!(verifies(&before[0], PASSWORD));

    // The new password from a file; the environment's is ignored then.
    let file = d.join("new-password");
    std::fs::write(&file, format!("{NEW_PASSWORD}\n")).unwrap();
    let (code, out, _) = account(
        d,
        &["passwd", "ALICE", "--password-file", file.to_str().unwrap()],
        Some(PASSWORD),
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("changed the password of Alice"), "{out}");
    let after = loaded(d);
    assert!(verifies(&after[0], NEW_PASSWORD));
    assert!(!verifies(&after[0], PASSWORD));
    assert_eq!(after[0].record.created, before[0].record.created);

    let (code, _, err) = account(d, &["passwd", "bob"], Some(NEW_PASSWORD)).await;
    assert_eq!(code, 1);
    assert!(err.contains("there is no account named bob"), "{err}");

    let (code, _, err) = account(d, &["remove", "bob"], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("there is no account named bob"), "{err}");

    let (code, out, _) = account(d, &["remove", "alice"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("removed account Alice"), "{out}");
    let (code, out, _) = account(d, &["list"], None).await;
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(loaded(d).is_empty());
}

#[tokio::test]
async fn bad_passwords_names_and_sources_are_refused_with_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, err) = account(d, &["add", "carol"], Some("short")).await;
    assert_eq!(code, 1);
    assert!(err.contains("at least 8 characters"), "{err}");

    // No terminal, no file, no variable: it says where a password can come from.
    let (code, _, err) = account(d, &["add", "carol"], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("--password-file"), "{err}");

    let (code, _, err) = account(d, &["add", "guest1234"], Some(PASSWORD)).await;
    assert_eq!(code, 1);
    assert!(err.contains("guest nick"), "{err}");

    // An IRC service's nick: whoever signed in to it would be sent what IRC clients send
    // NickServ (passwords), and nobody may hold one (SECURITY.md).
    for service in ["NickServ", "chanserv"] {
        let (code, _, err) = account(d, &["add", service], Some(PASSWORD)).await;
        assert_eq!(code, 1, "{service}");
        assert!(err.contains("IRC service"), "{err}");
    }

    let (code, _, err) = account(d, &["add", "not a nick"], Some(PASSWORD)).await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot be an account"), "{err}");

    let missing = d.join("nowhere");
    let (code, _, err) = account(
        d,
        &["add", "carol", "--password-file", missing.to_str().unwrap()],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot read the password file"), "{err}");

    // Never on the command line: clap has no such option.
    let (code, _, _) = account(d, &["add", "carol", "--password", PASSWORD], None).await;
    assert_eq!(code, 2, "a usage error");

    assert!(loaded(d).is_empty(), "nothing was stored");
}

#[tokio::test]
async fn the_store_loads_what_add_wrote_and_passwd_revokes_device_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, _) = account(d, &["add", "Dora"], Some(PASSWORD)).await;
    assert_eq!(code, 0);
    let got = loaded(d);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record.name, Nick::new("Dora").unwrap());
    assert!(
        got[0]
            .record
            .hash
            .0
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "OWASP's cost by default: {}",
        got[0].record.hash.0
    );
    assert!(verifies(&got[0], PASSWORD));
    assert!(!verifies(&got[0], "correct horse battery!"));
    // Only the hash is kept: the password's bytes are in no file of the store.
    for entry in std::fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is in {}",
            path.display()
        );
    }

    // Two remembered devices, as the hub would store them (once it read the account and took
    // it up: the store applies a server's writes of an account only as it last held it);
    // passwd revokes both.
    {
        let dora = loaded(d)[0].record.clone();
        let mut store = SqliteStore::open(&Config::new(d)).unwrap();
        let key = |id| KeyRecord {
            id,
            hash: TokenHash([id as u8; 32]),
            created: natter_core::Millis(1),
            used: None,
        };
        store
            .write(&Batch {
                id: BatchId(0),
                writes: vec![
                    Write::Account(dora),
                    Write::AddKey {
                        account: Nick::new("dora").unwrap(),
                        key: key(1),
                    },
                    Write::AddKey {
                        account: Nick::new("dora").unwrap(),
                        key: key(2),
                    },
                ],
            })
            .unwrap();
    }
    assert_eq!(loaded(d)[0].keys.len(), 2);
    let (code, _, _) = account(d, &["passwd", "dora"], Some(NEW_PASSWORD)).await;
    assert_eq!(code, 0);
    let got = loaded(d);
    assert!(got[0].keys.is_empty());
    assert!(verifies(&got[0], NEW_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_added_while_the_server_runs_signs_in_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let server_args = ["--listen", "127.0.0.1:0", "--data-dir", d.as_str()];
    let no_ephemeral = [("NATTER_EPHEMERAL", "false")];
    let (mut server, _log, _) = spawn_server(&server_args, &no_ephemeral).await;
    // The server holds the store; the tool writes beside it all the same.
    let (code, _, err) = account(dir.path(), &["add", "erin"], Some(PASSWORD)).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = account(dir.path(), &["list"], None).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("erin\t"), "{out}");
    assert!(sigterm(&mut server).await.success());

    let (_server, _log, addr) = spawn_server(&server_args, &no_ephemeral).await;
    let (mut c, _) = TextClient::welcomed(addr, "c").await;
    c.send(&format!("/login erin {PASSWORD}")).await;
    c.expect_has("you are signed in as erin").await;
}

#[tokio::test]
async fn a_directory_without_a_store_is_said_and_left_alone_except_by_add() {
    // Under the systemd unit the store is /var/lib/natter; `natter-server account list` run as
    // root without --data-dir looked in root's ~/.local/share/natter, made an empty store
    // there and listed nothing, without a word: the operator's `add` then went to a store no
    // server reads.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("elsewhere");
    let said = |err: &str| {
        err.contains(&format!(
            "there is no store at {} yet",
            d.join("natter.db").display()
        )) && err.contains("--data-dir")
    };
    let (code, out, err) = account(&d, &["list"], None).await;
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(said(&err), "{err}");
    assert!(!err.contains("making"), "{err}");
    for args in [&["remove", "alice"][..], &["passwd", "alice"]] {
        let (code, _, err) = account(&d, args, Some(PASSWORD)).await;
        assert_eq!(code, 1);
        assert!(said(&err), "{err}");
        assert!(err.contains("there is no account named alice"), "{err}");
    }
    // So does the audit log.
    let audit = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["audit", "--data-dir"])
        .arg(&d)
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_EPHEMERAL")
        .output()
        .await
        .unwrap();
    assert!(audit.status.success());
    assert!(audit.stdout.is_empty());
    assert!(said(&String::from_utf8_lossy(&audit.stderr)));
    assert!(!d.exists(), "nothing made by list, remove, passwd or audit");
    // `add` makes the store (accounts may be made before the server's first start), and says
    // where.
    let (code, out, err) = account(&d, &["add", "alice"], Some(PASSWORD)).await;
    assert_eq!((code, out.as_str()), (0, "added account alice\n"));
    assert!(said(&err), "{err}");
    assert!(err.contains("yet: making a new one;"), "{err}");
    // With the store there, nothing more is said.
    let (code, out, err) = account(&d, &["list"], None).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("alice\t"), "{out}");
    assert!(!err.contains("no store"), "{err}");
}

/// A data directory whose `natter.db` is gone while its `natter.seqs` says rooms had lines is
/// not one without a store yet: `account list` said "there is no store at ... yet" and listed
/// nothing, `remove` "no account named", `audit` nothing, all with status 0, and `add` said
/// "making a new one" before the store refused to be made again. Each says what the server
/// says at start, with status 1, and makes nothing.
#[tokio::test]
async fn a_store_gone_from_beside_its_seqs_is_said_as_gone_not_as_none_yet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("natter.seqs"), "42 #lobby\n").unwrap();
    let gone = |err: &str| {
        err.contains(&format!("{} is not there", d.join("natter.db").display()))
            && err.contains("natter.seqs")
            && !err.contains("no store at")
            && !err.contains("making")
    };
    for args in [&["list"][..], &["remove", "alice"], &["add", "alice"]] {
        let (code, _, err) = account(d, args, Some(PASSWORD)).await;
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(gone(&err), "{args:?}: {err}");
    }
    let audit = Command::new(env!("CARGO_BIN_EXE_natter-server"))
        .args(["audit", "--data-dir"])
        .arg(d)
        .env_remove("NATTER_CONFIG")
        .env_remove("NATTER_DATA_DIR")
        .env_remove("NATTER_EPHEMERAL")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&audit.stderr);
    assert_eq!(audit.status.code(), Some(1), "{err}");
    assert!(gone(&err), "{err}");
    assert!(!d.join("natter.db").exists(), "no store made");
}

/// A `natter.seqs` of junk only (a torn line after a power cut) holds no mark: the start makes
/// a new store beside it, and the account commands say there is no store yet, as without the
/// file (they said "natter.db is not there" and exited 1 while the start did not refuse it).
#[tokio::test]
async fn a_seqs_file_of_junk_is_no_store_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("natter.seqs"), b"\0\0\0\x0012 ").unwrap();
    let (code, out, err) = account(d, &["list"], None).await;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("there is no store at"), "{err}");
    assert!(!d.join("natter.db").exists(), "nothing made by list");
    let (code, out, err) = account(d, &["add", "alice"], Some(PASSWORD)).await;
    assert_eq!((code, out.as_str()), (0, "added account alice\n"), "{err}");
    assert!(err.contains("yet: making a new one;"), "{err}");
}

/// A cluster's nodes keep no audit log (they have no store): `audit --cluster` (or with
/// NATTER_CLUSTER set, as a node's environment file has it) printed the local store's, another
/// server's or none, with status 0, as if it were the cluster's. It says so, with status 1, and
/// makes nothing.
#[tokio::test]
async fn audit_in_a_cluster_says_the_cluster_keeps_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    for env in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter-server"));
        cmd.arg("audit")
            .arg("--data-dir")
            .arg(&d)
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_DATA_DIR")
            .env_remove("NATTER_EPHEMERAL")
            .env_remove("NATTER_CLUSTER")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if env {
            cmd.env("NATTER_CLUSTER", "nats://natter:pw-Secret@127.0.0.1:1");
        } else {
            cmd.args(["--cluster", "nats://natter:pw-Secret@127.0.0.1:1"]);
        }
        let out = timeout(Duration::from_secs(30), cmd.output())
            .await
            .expect("finished within 30 s")
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env}: {err}");
        assert!(out.stdout.is_empty(), "{env}: {out:?}");
        assert!(
            err.starts_with("natter-server audit: ") && err.contains("cluster keeps no audit log"),
            "{env}: {err}"
        );
        assert!(!err.contains("pw-Secret"), "{err}");
        assert!(!d.exists(), "nothing made");
    }
}

/// A `[accounts] hash_cost` argon2 refuses stops `account add` as it stops the server, naming
/// the key, before a store is made; it used to make the store, then say "password refused".
#[tokio::test]
async fn a_hash_cost_argon2_refuses_is_said_by_name_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("natter.toml");
    std::fs::write(
        &config,
        "[accounts]\nhash_cost = { memory_kib = 1, iterations = 0 }\n",
    )
    .unwrap();
    let d = dir.path().join("store");
    let out = timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .args(["account", "add", "erin", "--data-dir"])
            .arg(&d)
            .arg("--config")
            .arg(&config)
            .env_remove("NATTER_DATA_DIR")
            .env_remove("NATTER_EPHEMERAL")
            .env("NATTER_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("finished")
    .expect("run natter-server account");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[accounts] hash_cost = { memory_kib = 1, iterations = 0 }: "),
        "{err}"
    );
    assert!(!d.exists(), "no store made");
}

/// `passwd` on a running server's store, then SIGHUP: the remembered device's key stopped
/// opening the account only at the next restart (the reload replaced the account's list of
/// keys, not the server's table of them). It stops at the reload, as the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_then_sighup_stops_a_remembered_devices_key_at_once() {
    use natter_core::wire::{ClientMsg, ErrorKind, Proof, ServerMsg};
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let server_args = ["--listen", "127.0.0.1:0", "--data-dir", d.as_str()];
    let (server, mut log, addr) =
        spawn_server(&server_args, &[("NATTER_EPHEMERAL", "false")]).await;
    let (mut desk, _) = BinClient::hello(addr, "fay", None).await;
    desk.send(&ClientMsg::Register {
        password: natter_core::Password(PASSWORD.into()),
        remember: true,
    })
    .await;
    let ServerMsg::SignedIn { key: Some(key), .. } = desk
        .expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
        .await
    else {
        panic!("no key");
    };
    desk.send(&ClientMsg::Quit { reason: None }).await;
    drop(desk);

    let (code, _, err) = account(dir.path(), &["passwd", "fay"], Some(NEW_PASSWORD)).await;
    assert_eq!(code, 0, "{err}");
    let pid = server.id().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(log.read_line(&mut line).await.unwrap() > 0, "log ended");
            if line.contains("accounts reloaded from the store") {
                break;
            }
        }
    })
    .await
    .expect("the reload is logged");

    let (mut laptop, _) = BinClient::hello(addr, "laptop", None).await;
    laptop
        .send(&ClientMsg::SignIn {
            account: Nick::new("fay").unwrap(),
            proof: Proof::Key(key),
            remember: false,
        })
        .await;
    let got = laptop
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. } | ServerMsg::Error { .. }),
            "an answer",
        )
        .await;
    assert!(
        matches!(
            got,
            ServerMsg::Error {
                kind: ErrorKind::SignInFailed,
                ..
            }
        ),
        "the revoked key still signs in: {got:?}"
    );
    laptop
        .send(&ClientMsg::SignIn {
            account: Nick::new("fay").unwrap(),
            proof: Proof::Password(natter_core::Password(NEW_PASSWORD.into())),
            remember: false,
        })
        .await;
    laptop
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. }),
            "the new password",
        )
        .await;
}

/// `account add alice` while the server runs, and before the SIGHUP that would load it, a
/// guest named alice registers in the server: it is told the name is taken, and is not signed
/// in; the operator's account stays as the operator made it. Until the forty-second session
/// the guest was told it was registered and signed in, and nothing of it was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_after_the_operator_added_its_name_is_told_taken() {
    use natter_core::wire::{ClientMsg, ErrorKind, ServerMsg};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let server_args = ["--listen", "127.0.0.1:0", "--data-dir", d.as_str()];
    let (_server, _log, addr) = spawn_server(&server_args, &[("NATTER_EPHEMERAL", "false")]).await;
    let (code, _, err) = account(dir.path(), &["add", "alice"], Some(PASSWORD)).await;
    assert_eq!(code, 0, "{err}");

    let (mut guest, _) = BinClient::hello(addr, "alice", None).await;
    guest
        .send(&ClientMsg::Register {
            password: natter_core::Password(NEW_PASSWORD.into()),
            remember: true,
        })
        .await;
    let got = guest
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. } | ServerMsg::Error { .. }),
            "the registration's answer",
        )
        .await;
    let ServerMsg::Error { kind, detail, .. } = &got else {
        panic!("registered over the operator's account: {got:?}");
    };
    assert_eq!(*kind, ErrorKind::NickTaken, "{got:?}");
    assert!(detail.contains("alice is registered already"), "{detail}");
    // The operator's account, as the operator made it.
    let stored = loaded(dir.path());
    assert_eq!(stored.len(), 1);
    assert!(verifies(&stored[0], PASSWORD));
    assert!(stored[0].keys.is_empty() && stored[0].rooms.is_empty());
    // And the server read its accounts again by itself, without a SIGHUP: the guest gives the
    // name up, and the operator's password signs in.
    let got = guest
        .expect(
            |m| matches!(m, ServerMsg::Error { detail, .. } if detail.contains("the operator added it")),
            "the guest renamed",
        )
        .await;
    assert!(
        matches!(
            got,
            ServerMsg::Error {
                kind: ErrorKind::NickTaken,
                ..
            }
        ),
        "{got:?}"
    );
    let (mut owner, _) = BinClient::hello(addr, "owner", None).await;
    owner
        .send(&ClientMsg::SignIn {
            account: Nick::new("alice").unwrap(),
            proof: natter_core::wire::Proof::Password(natter_core::Password(PASSWORD.into())),
            remember: false,
        })
        .await;
    let got = owner
        .expect(
            |m| matches!(m, ServerMsg::SignedIn { .. } | ServerMsg::Error { .. }),
            "the sign-in's answer",
        )
        .await;
    assert!(
        matches!(got, ServerMsg::SignedIn { .. }),
        "the operator's account does not sign in: {got:?}"
    );
}

/// `account remove fay` while the server runs and fay is signed in, then no SIGHUP: fay's next
/// change of her account (a room joined, written to the store) is refused by the store, and the
/// server reads its accounts again by itself: fay is told she is a guest now. Until the
/// forty-second session the server went on with the removed account until a SIGHUP (what it
/// wrote of it landing nowhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_accounts_next_write_makes_the_running_server_read_the_removal() {
    use natter_core::RoomName;
    use natter_core::wire::{ClientMsg, ErrorKind, ServerMsg};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let server_args = ["--listen", "127.0.0.1:0", "--data-dir", d.as_str()];
    let (_server, _log, addr) = spawn_server(&server_args, &[("NATTER_EPHEMERAL", "false")]).await;
    let (mut fay, _) = BinClient::hello(addr, "fay", None).await;
    fay.send(&ClientMsg::Register {
        password: natter_core::Password(PASSWORD.into()),
        remember: false,
    })
    .await;
    fay.expect(|m| matches!(m, ServerMsg::SignedIn { .. }), "registered")
        .await;

    let (code, _, err) = account(dir.path(), &["remove", "fay"], None).await;
    assert_eq!(code, 0, "{err}");
    fay.send(&ClientMsg::Join {
        room: RoomName::new("#after").unwrap(),
    })
    .await;
    let got = fay
        .expect(
            |m| {
                matches!(
                    m,
                    ServerMsg::Error {
                        kind: ErrorKind::NotSignedIn,
                        ..
                    }
                )
            },
            "told the account is gone, with no SIGHUP",
        )
        .await;
    let ServerMsg::Error { detail, .. } = got else {
        unreachable!()
    };
    assert!(
        detail.contains("the operator removed your account"),
        "{detail}"
    );
    assert!(loaded(dir.path()).is_empty(), "the removal stands");
}
