//! `natter-server account add|remove|list|passwd`: the operator's tool for accounts. It works on
//! the server's store (the data directory found as the server finds it), also while the server
//! runs: a running server applies the changes when it reloads its accounts (SIGHUP). Passwords
//! come from the terminal without echo, a file (`--password-file`) or `NATTER_PASSWORD`, never
//! from the command line, and are never printed.

use clap::{Args, Subcommand};
use natter_core::Millis;
use natter_core::accounts::{HashCost, PasswordError, check_password, hash_password};
use natter_core::limits::PASSWORD_MAX_BYTES;
use natter_core::persist::{AccountRecord, Batch, BatchId, Write};
use natter_core::types::{InvalidName, Nick, Password};
use natter_store::{AccountStore, DATA_DIR_ENV, OpenError, ReadError, WriteError};
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The environment variable a script can hand the password in.
pub const PASSWORD_ENV: &str = "NATTER_PASSWORD";

/// What to do with accounts.
#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Registers NAME as an account (nobody else may then take the nick)
    Add {
        /// The account's name: the nick it owns
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Removes an account with its rooms, read markers and device keys
    Remove {
        /// The account's name
        name: String,
    },
    /// Lists the accounts: name and when created (UTC), one a line
    List,
    /// Sets a new password and revokes every device key of the account (its remembered
    /// devices must sign in again); a running server also ends the account's sessions at its
    /// reload, as a password change does
    Passwd {
        /// The account's name
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

/// Where a new password comes from: `--password-file`, else `NATTER_PASSWORD`, else the terminal
/// (asked twice, without echo).
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from this file (one line) instead of the terminal; scripts can also set
    /// NATTER_PASSWORD
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

/// Why an account command failed. Each says what to do about it.
#[derive(Debug, Error)]
pub enum AccountError {
    /// Accounts need the store.
    #[error("accounts are kept in the store, and this server is configured --ephemeral")]
    Ephemeral,
    /// Not a valid nick.
    #[error("{name:?} cannot be an account: {reason}")]
    BadName {
        /// What was given.
        name: String,
        /// Why not.
        reason: InvalidName,
    },
    /// `audit --room` of something that is no room name.
    #[error("{name:?} is not a room name: {reason}")]
    BadRoom {
        /// What was given.
        name: String,
        /// Why not.
        reason: InvalidName,
    },
    /// `audit` of a server without a store.
    #[error("the audit log is kept in the store, and this server is configured --ephemeral")]
    NoAuditLog,
    /// `audit` given `--cluster` (or NATTER_CLUSTER): the nodes keep no store.
    #[error(
        "a cluster keeps no audit log (its nodes keep no store); each moderation action is a \
         room event in the room's history, and counted in natter_moderation_actions_total"
    )]
    ClusterAuditLog,
    /// Guest nicks stay free for guests.
    #[error("{0} is a guest nick (guest and digits): those cannot be registered")]
    GuestName(Nick),
    /// IRC services' nicks are nobody's: IRC clients send their passwords there.
    #[error(
        "{0} is an IRC service's nick: natter runs no services, and nobody may hold one (IRC clients send it their passwords)"
    )]
    ServiceName(Nick),
    /// `add` of a name taken.
    #[error("there is an account named {0} already")]
    Exists(Nick),
    /// `remove` or `passwd` of a name not taken.
    #[error("there is no account named {0}")]
    Unknown(Nick),
    /// The password breaks a rule.
    #[error("password refused: {0}")]
    BadPassword(#[from] PasswordError),
    /// The two entries on the terminal differ.
    #[error("the two passwords typed differ; nothing was changed")]
    Mismatch,
    /// No terminal to ask on, and no other source.
    #[error(
        "no password: run this on a terminal, or give --password-file PATH, or set {PASSWORD_ENV} ({0})"
    )]
    NoPassword(std::io::Error),
    /// Ctrl+C at the password prompt: the terminal is as it was, nothing was changed, and the
    /// command exits 130 as if by SIGINT.
    #[error("interrupted at the password prompt; nothing was changed")]
    Interrupted,
    /// The password file could not be read.
    #[error("cannot read the password file {}: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The password is not UTF-8 text.
    #[error("the password from {0} is not UTF-8 text")]
    NotText(String),
    /// No randomness for the salt.
    #[error("no randomness for the password's salt: {0}")]
    Random(getrandom::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The store could not be read.
    #[error("reading the accounts failed: {0}")]
    Read(#[from] ReadError),
    /// The store refused the write.
    #[error("the change was not stored: {}", write_detail(.0))]
    Write(#[from] WriteError),
    /// The cluster could not be reached, or did not do what was asked.
    #[error("the cluster's accounts: {0}")]
    Cluster(String),
}

/// A store write error in an operator's words (its own text speaks of a chat message).
fn write_detail(e: &WriteError) -> String {
    match e {
        WriteError::Storage(detail) => detail.clone(),
        WriteError::DiskFull => "the disk is full".into(),
        other => other.to_string(),
    }
}

/// Whether `config`'s directory has no store yet, which is then said on stderr: most likely
/// the server keeps its store elsewhere (a systemd unit's `--data-dir /var/lib/natter`, while
/// the command, run as root, looked in root's `~/.local/share/natter`).
/// `makes`: the command goes on to make the store (`account add`), which is said too, so that
/// the line does not read as a failure.
fn no_store_yet(command: &str, config: &natter_store::Config, makes: bool) -> bool {
    let db = config.db_path();
    // A store that was there (its seq marks beside it say rooms had lines) and is gone is not
    // one not made yet: its open refuses it, saying so, as the server's start does (and only
    // then: a marks file of junk alone says nothing).
    let was_there = natter_store::sqlite::holds_marks(&config.dir);
    let missing = !db.exists() && !was_there;
    if missing {
        let making = if makes { ": making a new one" } else { "" };
        eprintln!(
            "natter-server {command}: there is no store at {} yet{making}; if the server keeps \
             its store elsewhere, give its data directory (--data-dir, {DATA_DIR_ENV}, or \
             [store] data_dir in --config)",
            db.display()
        );
    }
    missing
}

/// `natter-server audit`: the newest `limit` lines of the moderation audit log (of `room`
/// only, if given), oldest first, one a line: time, room, who, what.
pub fn audit(
    store: Option<natter_store::Config>,
    room: Option<&str>,
    limit: usize,
    out: &mut dyn std::io::Write,
) -> Result<(), AccountError> {
    let config = store.ok_or(AccountError::NoAuditLog)?;
    let missing = no_store_yet("audit", &config, false);
    let room = room
        .map(|r| {
            natter_core::RoomName::new(r).map_err(|reason| AccountError::BadRoom {
                name: r.to_owned(),
                reason,
            })
        })
        .transpose()?;
    if missing {
        // Nothing was done there: nothing to list, and no store to make.
        return Ok(());
    }
    let mut store = AccountStore::open(&config)?;
    for a in store.audit(room.as_ref(), limit)? {
        let room = a.room.as_ref().map_or("-", natter_core::RoomName::as_str);
        say(
            out,
            format_args!("{}\t{room}\t{}\t{}", utc(a.at), a.actor, a.action),
        );
    }
    Ok(())
}

/// Runs `cmd` on the store `store` (`None` when the server is configured ephemeral), hashing new
/// passwords at `cost`; what it reports goes to `out`.
pub fn run(
    cmd: &AccountCmd,
    store: Option<natter_store::Config>,
    cost: HashCost,
    out: &mut dyn std::io::Write,
) -> Result<(), AccountError> {
    let config = store.ok_or(AccountError::Ephemeral)?;
    // `add` makes the store (accounts may be made before the server's first start), the others
    // leave the directory as it is.
    let new_store = no_store_yet("account", &config, matches!(cmd, AccountCmd::Add { .. }));
    // A name is checked before the store is opened; an existing account before a password is
    // asked for.
    match cmd {
        AccountCmd::List if new_store => {}
        AccountCmd::Remove { name } | AccountCmd::Passwd { name, .. } if new_store => {
            return Err(AccountError::Unknown(account_name(name)?));
        }
        AccountCmd::Add { name, password } => {
            let name = new_account_name(name)?;
            let mut store = AccountStore::open(&config)?;
            if let Some(found) = store.account(&name)? {
                return Err(AccountError::Exists(found.name));
            }
            let password = new_password(password, &name)?;
            let record = AccountRecord {
                hash: hash(&password, cost)?,
                name,
                created: unix_now(),
            };
            let name = record.name.clone();
            store.write(&batch(vec![Write::Account(record)]))?;
            say(out, format_args!("added account {name}"));
        }
        AccountCmd::Remove { name } => {
            let name = account_name(name)?;
            let mut store = AccountStore::open(&config)?;
            let found = store.account(&name)?.ok_or(AccountError::Unknown(name))?;
            store.write(&batch(vec![Write::DropAccount(found.name.clone())]))?;
            say(
                out,
                format_args!(
                    "removed account {} with its rooms, read markers and device keys",
                    found.name
                ),
            );
        }
        AccountCmd::List => {
            let mut store = AccountStore::open(&config)?;
            for a in store.accounts()? {
                say(
                    out,
                    format_args!("{}\t{}", a.record.name, utc(a.record.created)),
                );
            }
        }
        AccountCmd::Passwd { name, password } => {
            let name = account_name(name)?;
            let mut store = AccountStore::open(&config)?;
            let found = store.account(&name)?.ok_or(AccountError::Unknown(name))?;
            let password = new_password(password, &found.name)?;
            let record = AccountRecord {
                hash: hash(&password, cost)?,
                ..found
            };
            let name = record.name.clone();
            store.write(&batch(vec![
                Write::Account(record),
                Write::RevokeKeys {
                    account: name.clone(),
                },
            ]))?;
            say(
                out,
                format_args!("changed the password of {name} and revoked its device keys"),
            );
        }
    }
    Ok(())
}

/// Runs `cmd` on the accounts of the cluster `cluster` (`--cluster`), as [`run`] does on a
/// store: the nodes hear each change at once (no reload needed).
pub async fn run_cluster(
    cmd: &AccountCmd,
    cluster: &natter_cluster::ClusterConfig,
    cost: HashCost,
    out: &mut dyn std::io::Write,
) -> Result<(), AccountError> {
    use natter_cluster::ClusterAccounts;
    let failed = |e: String| AccountError::Cluster(e);
    let open = || async {
        ClusterAccounts::open(cluster)
            .await
            .map_err(|e| AccountError::Cluster(e.to_string()))
    };
    match cmd {
        AccountCmd::Add { name, password } => {
            let name = new_account_name(name)?;
            let accounts = open().await?;
            if let Some(found) = accounts.get(&name).await.map_err(failed)? {
                return Err(AccountError::Exists(found.record.name));
            }
            let password = new_password(password, &name)?;
            let record = AccountRecord {
                hash: hash(&password, cost)?,
                name: name.clone(),
                created: unix_now(),
            };
            if !accounts.create(record).await.map_err(failed)? {
                return Err(AccountError::Exists(name));
            }
            say(out, format_args!("added account {name}"));
        }
        AccountCmd::Remove { name } => {
            let name = account_name(name)?;
            let accounts = open().await?;
            let found = accounts.get(&name).await.map_err(failed)?;
            let found = found.ok_or(AccountError::Unknown(name))?.record.name;
            let drop = Write::DropAccount(found.clone());
            accounts.write(&found, &drop).await.map_err(failed)?;
            say(
                out,
                format_args!(
                    "removed account {found} with its rooms, read markers and device keys"
                ),
            );
        }
        AccountCmd::List => {
            let accounts = open().await?;
            let mut all = accounts.list().await.map_err(failed)?;
            all.sort_by_key(|a| a.record.name.folded());
            for a in all {
                say(
                    out,
                    format_args!("{}\t{}", a.record.name, utc(a.record.created)),
                );
            }
        }
        AccountCmd::Passwd { name, password } => {
            let name = account_name(name)?;
            let accounts = open().await?;
            let found = accounts.get(&name).await.map_err(failed)?;
            let found = found.ok_or(AccountError::Unknown(name))?.record;
            let password = new_password(password, &found.name)?;
            let name = found.name.clone();
            let record = AccountRecord {
                hash: hash(&password, cost)?,
                ..found
            };
            accounts
                .write(&name, &Write::Account(record))
                .await
                .map_err(failed)?;
            let revoke = Write::RevokeKeys {
                account: name.clone(),
            };
            accounts.write(&name, &revoke).await.map_err(failed)?;
            say(
                out,
                format_args!("changed the password of {name} and revoked its device keys"),
            );
        }
    }
    Ok(())
}

/// Writes a line of the report; a closed stdout (`| head`) is not the command's failure.
fn say(out: &mut dyn std::io::Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(out, "{line}");
}

fn batch(writes: Vec<Write>) -> Batch {
    Batch {
        id: BatchId(0),
        writes,
    }
}

fn account_name(name: &str) -> Result<Nick, AccountError> {
    Nick::new(name).map_err(|reason| AccountError::BadName {
        name: name.to_owned(),
        reason,
    })
}

/// A name `add` may register: a nick, neither a guest's nor an IRC service's (the rules a
/// `/register` meets, where the nick was checked when it was taken).
fn new_account_name(name: &str) -> Result<Nick, AccountError> {
    let name = account_name(name)?;
    if name.is_guest() {
        return Err(AccountError::GuestName(name));
    }
    if name.is_service() {
        return Err(AccountError::ServiceName(name));
    }
    Ok(name)
}

/// The new password, from the first source given, checked against the rules.
fn new_password(src: &PasswordSource, name: &Nick) -> Result<Password, AccountError> {
    let password = if let Some(path) = &src.password_file {
        read_password_file(path)?
    } else if let Some(v) = natter_ops::args::env_var(PASSWORD_ENV) {
        Password(
            v.into_string()
                .map_err(|_| AccountError::NotText(PASSWORD_ENV.into()))?,
        )
    } else {
        let first = ask(&format!("New password for {name}: "))?;
        check_password(&Password(first.clone()))?;
        let again = ask("Again: ")?;
        if first != again {
            return Err(AccountError::Mismatch);
        }
        Password(first)
    };
    check_password(&password)?;
    Ok(password)
}

/// One entry on the terminal, echo off before the prompt is written; Ctrl+C gives the terminal
/// back ([`natter_ops::prompt`], the prompt `natter --login` uses too).
fn ask(prompt: &str) -> Result<String, AccountError> {
    use natter_ops::prompt::PromptError;
    natter_ops::prompt::hidden(prompt, PASSWORD_MAX_BYTES).map_err(|e| match e {
        PromptError::NoTerminal(e) | PromptError::Terminal(e) => AccountError::NoPassword(e),
        PromptError::Interrupted => AccountError::Interrupted,
    })
}

/// The password in `path`: the file's text less one line ending. Reads a bounded amount, so a
/// wrong path (a device, a huge file) costs nothing.
fn read_password_file(path: &Path) -> Result<Password, AccountError> {
    let failed = |source| AccountError::PasswordFile {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(PASSWORD_MAX_BYTES as u64 + 3)
                .read_to_end(&mut bytes)
        })
        .map_err(failed)?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| AccountError::NotText(path.display().to_string()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    // Anything longer than the limit was cut short above; the rules refuse it as too long.
    Ok(Password(text))
}

/// Hashes `p` at `cost` with a fresh random salt.
fn hash(p: &Password, cost: HashCost) -> Result<natter_core::accounts::PasswordHash, AccountError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(AccountError::Random)?;
    Ok(hash_password(p, &salt, cost)?)
}

/// Now, in Unix milliseconds (the hub's clock in a running server).
fn unix_now() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Unix milliseconds as an RFC 3339 UTC time to the second (`2026-12-03T04:46:07Z`).
fn utc(t: Millis) -> String {
    t.rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc(Millis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(utc(Millis(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(utc(Millis(1_796_273_167_999)), "2026-12-03T04:46:07Z");
        assert_eq!(utc(Millis(4_102_444_799_000)), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn a_password_file_loses_one_line_ending_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        for (text, want) in [
            ("correct horse\n", "correct horse"),
            ("correct horse\r\n", "correct horse"),
            ("correct horse", "correct horse"),
            (" spaced out \n\n", " spaced out \n"),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_password_file(&path).unwrap().0, want);
        }
        std::fs::write(&path, "x".repeat(10_000)).unwrap();
        assert_eq!(
            check_password(&read_password_file(&path).unwrap()),
            Err(PasswordError::TooLong)
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_password_file(&path),
            Err(AccountError::NotText(_))
        ));
        let e = read_password_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn audit_refusals_speak_of_rooms_and_the_audit_log_not_accounts() {
        let mut out = Vec::new();
        let e = audit(None, None, 10, &mut out).unwrap_err();
        assert!(e.to_string().starts_with("the audit log is kept"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let store = Some(natter_store::Config::new(dir.path()));
        let e = audit(store, Some("bad room"), 10, &mut out).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("\"bad room\" is not a room name: "),
            "{e}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn guest_nicks_are_recognised() {
        let n = |s| Nick::new(s).unwrap();
        assert!(n("guest1234").is_guest());
        assert!(n("Guest7").is_guest());
        assert!(!n("guest").is_guest());
        assert!(!n("guesthouse").is_guest());
        assert!(!n("alice").is_guest());
    }
}
