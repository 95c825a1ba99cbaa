//! `--remember`: the device key the server gives a remembered sign-in, kept in a file so that
//! the next `natter --login` signs in without the password (as the page keeps its key in the
//! browser's storage).
//!
//! One file per (server, account): `$XDG_STATE_HOME/natter/devices/ACCOUNT@HOST_PORT` (by
//! default `~/.local/state/natter/devices/`; the `directories` crate's state directory, its
//! local data directory where a platform has none), mode 0600 in a 0700 directory, written to a
//! temporary file and renamed over the old one. A cluster's key is kept under its first
//! address. The file is a comment and 64 hex digits; one that other users may read, or that
//! belongs to another user, is refused, as ssh refuses such a private key, and so is every key
//! in a directory others may write to (they could have put a key of theirs there, or replace
//! ours), or under a directory others could move it from (one of another user's, or one others
//! may write to that is not sticky), as ssh checks the directories above the files it trusts.
//! Saving refuses the same way, so natter never writes a key that it refuses at the next start.
//!
//! What to do with the file after the Session's events is decided by [`step`], a pure function;
//! [`Keeper`] carries it out. The decisions about the key itself (the key first, the password
//! once if it is refused) are the Session's ([`Session::sign_in_with_key`]).

use crate::driver::ServerAddr;
use natter_core::Nick;
use natter_core::session::{About, Event, Session};
use natter_core::types::DeviceKey;
use natter_core::wire::ErrorKind;
use natter_core::wire::RememberedDevice;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The directory under natter's state directory that holds the key files.
const KEYS_DIR: &str = "devices";

/// A key file larger than this is not one (it holds two short lines).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// What is wrong with a key file, or why it could not be written or deleted.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// There is no per-user directory to keep keys in.
    #[error(
        "there is no directory to keep the device key in (set XDG_STATE_HOME or HOME), so natter \
         cannot remember this device"
    )]
    NoDirectory,
    /// The file could not be read.
    #[error("cannot read the device key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Other users may read the file: the key may have been copied.
    #[error(
        "the device key file {path} {what}: natter does not use a key others may have copied. If \
         nobody else could have read it, run chmod 600 {path}; otherwise delete it (natter \
         --forget-device also tells the server to forget the key) and sign in again with \
         --login --remember"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
    /// The file belongs to another user: someone else put it there, and could change it.
    #[error(
        "the device key file {path} belongs to another user (uid {owner}; natter runs as uid \
         {me}): natter does not use a key someone else could have written. Delete it and sign \
         in again with --login --remember"
    )]
    NotOwned {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user natter runs as.
        me: u32,
    },
    /// Others may write to the directory of key files: they could have put a key of their own
    /// there, or replace one.
    #[error(
        "the device key directory {dir} {what}: others could put a key of their own in it or \
         replace yours, so natter uses none of its keys. If nobody else could have written to \
         it, run chmod 700 {dir}; otherwise delete the directory and sign in again with --login \
         --remember"
    )]
    OpenDirectory {
        /// The directory.
        dir: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
    /// A directory above the directory of key files may be written to by another user (and
    /// is not sticky), or belongs to one: they could rename the key directory away and put one
    /// of theirs in its place, with a key of theirs in it.
    #[error(
        "{parent}, a directory above the device key directory {dir}, {what}: others could swap \
         the key directory for one of theirs, so natter uses none of its keys. If nobody else \
         could have written to it, run chmod go-w {parent} (or keep natter's state elsewhere: \
         XDG_STATE_HOME); otherwise also delete {dir} and sign in again with --login --remember"
    )]
    OpenParent {
        /// The directory of key files.
        dir: PathBuf,
        /// The directory above it that others may write to.
        parent: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
    /// The contents are not a device key.
    #[error(
        "{path} is not a natter device key file ({why}); delete it and sign in again with \
         --login --remember"
    )]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: BadKey,
    },
    /// The file (or its directory) could not be written.
    #[error("cannot write the device key file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be deleted.
    #[error("cannot delete the device key file {path}: {source}")]
    Delete {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a key file's text is not a key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadKey {
    /// Larger than any key file natter writes.
    #[error("larger than {MAX_KEY_FILE_BYTES} bytes")]
    TooLarge,
    /// Not UTF-8.
    #[error("not text")]
    NotText,
    /// No line other than comments.
    #[error("no key in it")]
    Empty,
    /// More than one line that is not a comment.
    #[error("more than one key line")]
    TwoKeys,
    /// The key line is not 64 hex digits.
    #[error("the key is not 64 hex digits")]
    NotHex,
    /// Not a plain file (a directory, a FIFO, a device): never opened, as opening a FIFO
    /// waits for a writer, for ever.
    #[error("not a plain file")]
    NotAFile,
}

/// natter's per-user state directory: `$XDG_STATE_HOME/natter` (default
/// `~/.local/state/natter`), or the local data directory where the platform has no state
/// directory (macOS, Windows).
pub fn state_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "natter")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_owned(),
    )
}

/// The key file's name for `account` at `server`: `ACCOUNT@HOST_PORT`, the account folded (an
/// account's name is case-insensitive) and the host lowercased, every byte but `a-z 0-9 . - _`
/// as `%XX` (an IPv6 address's colons, a nick's brackets), so that the name is one plain path
/// component on any file system.
pub fn file_name(server: &ServerAddr, account: &Nick) -> String {
    format!(
        "{}@{}_{}",
        escape(&account.folded()),
        escape(&server.host.to_ascii_lowercase()),
        server.port
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A key file's text: a comment saying what it is and how to revoke it, and the key as 64 hex
/// digits.
pub fn render(key: &DeviceKey, account: &Nick, server: &ServerAddr) -> String {
    let id = RememberedDevice::id_words(RememberedDevice::id_of(key.id()));
    let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "# natter device key {id}: signs in as {account} at {server} without the password; keep \
         it secret.\n# natter --forget-device (or /devices forget {id} from another device) \
         revokes it.\n{hex}\n"
    )
}

/// The key in a key file's text: the one line that is neither blank nor a `#` comment.
pub fn parse(text: &str) -> Result<DeviceKey, BadKey> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or(BadKey::Empty)?;
    if lines.next().is_some() {
        return Err(BadKey::TwoKeys);
    }
    let digits = line.as_bytes();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(BadKey::NotHex);
    }
    let mut key = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| BadKey::NotHex)?;
        key[i] = u8::from_str_radix(pair, 16).map_err(|_| BadKey::NotHex)?;
    }
    Ok(DeviceKey(key))
}

/// Whether a key file of this mode (its permission bits) may be used: only by its owner, as
/// ssh takes a private key. `Err` says what is wrong.
pub fn check_mode(mode: u32) -> Result<(), String> {
    let loose = mode & 0o077;
    if loose == 0 {
        return Ok(());
    }
    let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
        (true, true) => "its group and every other user",
        (true, false) => "its group",
        _ => "every other user",
    };
    Err(format!(
        "is open to {who} (mode {:04o}; it must be 0600)",
        mode & 0o7777
    ))
}

/// Whether the directory of key files, of this mode and owner, may hold keys natter uses: only
/// its owner (`me`) may write to it. `Err` says what is wrong.
pub fn check_dir(mode: u32, owner: u32, me: u32) -> Result<(), String> {
    if owner != me {
        return Err(format!(
            "belongs to another user (uid {owner}; natter runs as uid {me})"
        ));
    }
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, true) => "its group and every other user",
        (true, false) => "its group",
        (false, true) => "every other user",
    };
    Err(format!(
        "may be written to by {who} (mode {:04o}; it must be 0700)",
        mode & 0o7777
    ))
}

/// Whether a directory above the directory of key files, of this mode and owner, keeps it
/// where it is, as ssh takes the directories above a file it trusts: it belongs to `me` or to
/// root, and nobody else may write to it, unless it is sticky (`/tmp`): there others may add
/// names but not rename or delete ours. `Err` says what is wrong.
pub fn check_parent(mode: u32, owner: u32, me: u32) -> Result<(), String> {
    if owner != me && owner != 0 {
        return Err(format!(
            "belongs to another user (uid {owner}; natter runs as uid {me})"
        ));
    }
    if mode & 0o1000 != 0 {
        return Ok(());
    }
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, true) => "its group and every other user",
        (true, false) => "its group",
        (false, true) => "every other user",
    };
    Err(format!(
        "may be written to by {who} and is not sticky (mode {:04o})",
        mode & 0o7777
    ))
}

/// Where the keys for one server are kept.
#[derive(Debug, Clone)]
pub struct KeyStore {
    /// The directory of key files (`…/natter/devices`).
    dir: PathBuf,
    /// The server (a cluster's first address).
    server: ServerAddr,
    /// The user the files and their directory must belong to: the one natter runs as.
    me: u32,
}

impl KeyStore {
    /// The store for `server` under natter's state directory ([`state_dir`]).
    pub fn for_server(server: &ServerAddr) -> Result<KeyStore, KeyFileError> {
        let dir = state_dir().ok_or(KeyFileError::NoDirectory)?;
        Ok(KeyStore::in_dir(dir.join(KEYS_DIR), server))
    }

    /// The store for `server` in `dir` (tests).
    pub fn in_dir(dir: PathBuf, server: &ServerAddr) -> KeyStore {
        KeyStore {
            dir,
            server: server.clone(),
            me: nix::unistd::geteuid().as_raw(),
        }
    }

    /// The server whose keys these are.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// The key file of `account`.
    pub fn path(&self, account: &Nick) -> PathBuf {
        self.dir.join(file_name(&self.server, account))
    }

    /// The key kept for `account`, if there is a file. A file others may read, or that
    /// belongs to another user, or that is not a key, is an error; so is any file in a
    /// directory others may write to.
    pub fn load(&self, account: &Nick) -> Result<Option<DeviceKey>, KeyFileError> {
        let path = self.path(account);
        match std::fs::metadata(&self.dir) {
            Ok(_) => self.check_tree()?,
            // No directory: no file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KeyFileError::Read { path, source }),
        }
        let text = match read_private(&path, self.me) {
            Ok(text) => text,
            Err(KeyFileError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        parse(&text)
            .map(Some)
            .map_err(|why| KeyFileError::Bad { path, why })
    }

    /// Whether the directory of key files (which exists) may hold keys natter uses: only this
    /// user may write to it ([`check_dir`]), and nobody else may move it: each directory above
    /// it, the symbolic links resolved, passes [`check_parent`].
    fn check_tree(&self) -> Result<(), KeyFileError> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let read = |source| KeyFileError::Read {
            path: self.dir.clone(),
            source,
        };
        let real = std::fs::canonicalize(&self.dir).map_err(read)?;
        let meta = std::fs::metadata(&real).map_err(read)?;
        if let Err(what) = check_dir(meta.permissions().mode(), meta.uid(), self.me) {
            return Err(KeyFileError::OpenDirectory {
                dir: self.dir.clone(),
                what,
            });
        }
        for parent in real.ancestors().skip(1) {
            let meta = std::fs::metadata(parent).map_err(read)?;
            if let Err(what) = check_parent(meta.permissions().mode(), meta.uid(), self.me) {
                return Err(KeyFileError::OpenParent {
                    dir: self.dir.clone(),
                    parent: parent.to_owned(),
                    what,
                });
            }
        }
        Ok(())
    }

    /// The key in `account`'s file whatever its mode or its directory's (to revoke a key that
    /// may have been copied): `Ok(None)` without a file, `Err` with a file that holds no key or
    /// belongs to another user.
    pub fn load_to_revoke(&self, account: &Nick) -> Result<Option<DeviceKey>, KeyFileError> {
        match self.load(account) {
            Err(KeyFileError::Exposed { path, .. }) => self.read_loose(path),
            Err(KeyFileError::OpenDirectory { .. } | KeyFileError::OpenParent { .. }) => {
                self.read_loose(self.path(account))
            }
            r => r,
        }
    }

    /// The key in the file at `path` whatever its mode, if it is there and this user's.
    fn read_loose(&self, path: PathBuf) -> Result<Option<DeviceKey>, KeyFileError> {
        use std::os::unix::fs::MetadataExt;
        match open_plain(&path) {
            Err(KeyFileError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
            Ok((_, meta)) if meta.uid() != self.me => Err(KeyFileError::NotOwned {
                path,
                owner: meta.uid(),
                me: self.me,
            }),
            Ok((file, _)) => {
                let text = read_bounded(file, &path)?;
                parse(&text)
                    .map(Some)
                    .map_err(|why| KeyFileError::Bad { path, why })
            }
        }
    }

    /// Keeps `key` as `account`'s: written to a temporary file (0600) in the 0700 directory and
    /// renamed over the old file, so that a crash leaves the old key or the new one, never half
    /// of one. Returns the file's path. Never a key [`KeyStore::load`] would refuse: a
    /// directory of this user's that others may write to is made 0700 first; one that belongs
    /// to another user, or under a directory others could move it from, is refused as `load`
    /// refuses it, with the same words, and nothing is written.
    pub fn save(&self, account: &Nick, key: &DeviceKey) -> Result<PathBuf, KeyFileError> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
        let path = self.path(account);
        let err = |source| KeyFileError::Write {
            path: path.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(err)?;
        // A directory made before (by hand, or by an older umask) is made private too; not
        // someone else's (root could change it, and the key would then be refused).
        let meta = std::fs::metadata(&self.dir).map_err(err)?;
        if meta.uid() == self.me && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(err)?;
        }
        self.check_tree()?;
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            file_name(&self.server, account),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(render(key, account, &self.server).as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename itself, on disk.
            if let Ok(dir) = std::fs::File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })?;
        Ok(path)
    }

    /// Deletes `account`'s key file unless it holds another key than `key` (another natter
    /// wrote a new one meanwhile): false when it is left. A file that holds no key goes.
    pub fn delete_holding(
        &self,
        account: &Nick,
        key: Option<&DeviceKey>,
    ) -> Result<bool, KeyFileError> {
        match (self.load_to_revoke(account), key) {
            (Ok(Some(held)), Some(key)) if held != *key => Ok(false),
            _ => self.delete(account).map(|_| true),
        }
    }

    /// Deletes `account`'s key file; whether there was one.
    pub fn delete(&self, account: &Nick) -> Result<bool, KeyFileError> {
        let path = self.path(account);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(KeyFileError::Delete { path, source }),
        }
    }
}

/// The key file at `path`, opened if it is a plain file: what is there is looked at before it
/// is opened (a FIFO, which would keep `open` waiting for a writer for ever, or a device, is
/// never opened) and again once it is.
fn open_plain(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), KeyFileError> {
    let err = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let not_a_file = || KeyFileError::Bad {
        path: path.to_owned(),
        why: BadKey::NotAFile,
    };
    if !std::fs::metadata(path).map_err(err)?.is_file() {
        return Err(not_a_file());
    }
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    Ok((file, meta))
}

/// A key file's text, if it belongs to `me` and only they may read it.
fn read_private(path: &Path, me: u32) -> Result<String, KeyFileError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (file, meta) = open_plain(path)?;
    if meta.uid() != me {
        return Err(KeyFileError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    if let Err(what) = check_mode(meta.permissions().mode()) {
        return Err(KeyFileError::Exposed {
            path: path.to_owned(),
            what,
        });
    }
    read_bounded(file, path)
}

fn read_bounded(file: std::fs::File, path: &Path) -> Result<String, KeyFileError> {
    let bad = |why| KeyFileError::Bad {
        path: path.to_owned(),
        why,
    };
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(bad(BadKey::TooLarge));
    }
    String::from_utf8(bytes).map_err(|_| bad(BadKey::NotText))
}

/// What one of the Session's events says about the account, for the [`Keeper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct News {
    /// An account error: a sign-in (or registration) refused or throttled.
    pub refused: bool,
    /// Signed out: by this device, or by the server (`NotSignedIn` while signed in: the
    /// device was forgotten from another one, or the account removed), which revokes the key
    /// and lets go of the password too.
    pub signed_out: bool,
}

impl News {
    /// The news in `ev`, if it is about the account (a sign-in, a sign-out, an account error).
    pub fn of(ev: &Event) -> Option<News> {
        match ev {
            Event::SignedIn { .. } => Some(News {
                refused: false,
                signed_out: false,
            }),
            Event::SignedOut
            | Event::Error {
                about: About::Account,
                kind: Some(ErrorKind::NotSignedIn),
                ..
            } => Some(News {
                refused: false,
                signed_out: true,
            }),
            Event::Error {
                about: About::Account,
                ..
            } => Some(News {
                refused: true,
                signed_out: false,
            }),
            _ => None,
        }
    }
}

/// What to do with the key files after a batch of the Session's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Nothing,
    /// The session holds `key` for `account`, which is not what the file holds (a new key: a
    /// sign-in or registration that asked for one, a password change's new key): keep it.
    Save {
        /// The account.
        account: Nick,
        /// The key.
        key: DeviceKey,
        /// Another key of this account was kept before (a rekey, a fallback sign-in).
        replaces: bool,
    },
    /// The server refused the kept key of `account`: delete its file.
    Refused(Nick),
    /// Signed out on this device (the server revokes its key): delete `account`'s file.
    SignedOut(Nick),
}

/// What to do with the key files, from what the Session holds now and held before this batch
/// of events, what the file holds (`kept`, as far as this process knows), and whether the
/// batch brought an account error (`refused`) or a sign-out.
///
/// A key held while signed in that the file does not hold is kept. The kept key going from the
/// session with an account error is a refusal; with a sign-out, a sign-out; going otherwise
/// (a typed `/login` to another account, a password change on its way) leaves the file, which
/// the server still takes.
pub fn step(
    kept: Option<&(Nick, DeviceKey)>,
    held_before: Option<&DeviceKey>,
    signed_in: Option<&Nick>,
    held: Option<&DeviceKey>,
    refused: bool,
    signed_out: bool,
) -> Step {
    if let (Some(account), Some(key)) = (signed_in, held) {
        return match kept {
            Some((a, k)) if a.folded() == account.folded() && k == key => Step::Nothing,
            _ => Step::Save {
                account: account.clone(),
                key: key.clone(),
                replaces: kept.is_some_and(|(a, _)| a.folded() == account.folded()),
            },
        };
    }
    match kept {
        Some((account, key)) if held.is_none() && held_before == Some(key) => {
            if signed_out {
                Step::SignedOut(account.clone())
            } else if refused {
                Step::Refused(account.clone())
            } else {
                Step::Nothing
            }
        }
        _ => Step::Nothing,
    }
}

/// Keeps the key files in step with the Session (see [`step`]); run by the driver after each
/// batch of events. What it did is said as a line for the person ([`Keeper::after`]).
#[derive(Debug, Clone)]
pub struct Keeper {
    store: KeyStore,
    /// What the file of the account holds, as far as this process knows.
    kept: Option<(Nick, DeviceKey)>,
    /// The key the session held after the last batch.
    held: Option<DeviceKey>,
    /// The session has a password to sign in with if the kept key is refused.
    has_password: bool,
}

impl Keeper {
    /// A keeper for `store`; `kept` is the key read from the file at start (and the session's
    /// sign-in with it), `has_password` whether the session can fall back to a password.
    pub fn new(store: KeyStore, kept: Option<(Nick, DeviceKey)>, has_password: bool) -> Keeper {
        let held = kept.as_ref().map(|(_, k)| k.clone());
        Keeper {
            store,
            kept,
            held,
            has_password,
        }
    }

    /// After a batch of the Session's events (`refused`: it held an account error;
    /// `signed_out`: a sign-out): writes or deletes the key file as [`step`] says, and returns
    /// the line that tells the person, if any.
    pub fn after(&mut self, session: &Session, refused: bool, signed_out: bool) -> Option<String> {
        let held = session.device_key();
        let step = step(
            self.kept.as_ref(),
            self.held.as_ref(),
            session.account(),
            held,
            refused,
            signed_out,
        );
        self.held = held.cloned();
        match step {
            Step::Nothing => None,
            Step::Save {
                account,
                key,
                replaces,
            } => {
                let said = match self.store.save(&account, &key) {
                    Ok(path) if replaces => {
                        format!("the new device key is kept in {}", path.display())
                    }
                    Ok(path) => format!(
                        "this device is remembered: its key is kept in {} (natter \
                         --forget-device forgets it)",
                        path.display()
                    ),
                    Err(e) => return Some(format!("error: {e}")),
                };
                self.kept = Some((account, key));
                Some(said)
            }
            Step::Refused(account) => {
                let key = self.kept.take().map(|(_, k)| k);
                let path = self.store.path(&account);
                let next = if self.has_password {
                    "signing in with the password"
                } else {
                    "sign in with --login and the password (NATTER_PASSWORD, password_file or \
                     the prompt)"
                };
                Some(match self.store.delete_holding(&account, key.as_ref()) {
                    Ok(false) => format!(
                        "the server refused this device's key; {} holds another one now (kept); \
                         {next}",
                        path.display()
                    ),
                    Ok(true) => format!(
                        "the server refused the device key kept in {} (the device was forgotten, \
                         the password changed, or the account is gone): the file is deleted; \
                         {next}",
                        path.display()
                    ),
                    Err(e) => format!("error: the server refused the device key: {e}"),
                })
            }
            Step::SignedOut(account) => {
                let key = self.kept.take().map(|(_, k)| k);
                Some(match self.store.delete_holding(&account, key.as_ref()) {
                    Ok(false) => format!(
                        "{} holds another device key than the one signed out (kept)",
                        self.store.path(&account).display()
                    ),
                    Ok(true) => format!(
                        "the device key kept in {} is deleted (signing out revokes it)",
                        self.store.path(&account).display()
                    ),
                    Err(e) => format!("error: {e}"),
                })
            }
        }
    }
}

/// This device's label: `natter on HOSTNAME` (cleaned and cut as core cuts a label a client
/// makes up), `natter` if the host has no name to read.
pub fn device_label() -> natter_core::types::DeviceLabel {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let mut text = String::new();
            std::fs::File::open(p)
                .and_then(|f| f.take(256).read_to_string(&mut text))
                .ok()?;
            let name = text.trim().to_owned();
            (!name.is_empty()).then_some(name)
        })
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.trim().is_empty())
        });
    label_for(host.as_deref())
}

/// `natter on HOST`, or `natter` without a host (or when nothing of it is left once cleaned).
pub fn label_for(host: Option<&str>) -> natter_core::types::DeviceLabel {
    use natter_core::types::DeviceLabel;
    host.and_then(|h| {
        let h = DeviceLabel::cut(h)?;
        DeviceLabel::cut(&format!("natter on {}", h.as_str()))
    })
    .unwrap_or_else(|| DeviceLabel::new("natter").expect("natter is a label"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.into(),
            port,
            tls: false,
        }
    }

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    #[test]
    fn file_names_are_one_plain_component_per_server_and_account() {
        assert_eq!(
            file_name(&addr("127.0.0.1", 8000), &nick("Ann")),
            "ann@127.0.0.1_8000"
        );
        assert_eq!(
            file_name(&addr("::1", 8443), &nick("[bob]")),
            "%5Bbob%5D@%3A%3A1_8443"
        );
        assert_eq!(
            file_name(&addr("Chat.Example", 7), &nick("a|b")),
            "a%7Cb@chat.example_7"
        );
        // The same account and server whatever the case; another port is another file.
        assert_eq!(
            file_name(&addr("h", 1), &nick("ANN")),
            file_name(&addr("H", 1), &nick("ann"))
        );
        assert_ne!(
            file_name(&addr("h", 1), &nick("ann")),
            file_name(&addr("h", 2), &nick("ann"))
        );
        for name in [
            file_name(&addr("::1", 8443), &nick("x^{}")),
            file_name(&addr("a.b-c_d", 1), &nick("z")),
        ] {
            assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        }
    }

    #[test]
    fn a_key_file_reads_back_what_was_written() {
        let key = DeviceKey(std::array::from_fn(|i| (i * 7) as u8));
        let text = render(&key, &nick("ann"), &addr("chat.example", 8000));
        assert!(text.starts_with("# natter device key "), "{text}");
        assert!(text.contains("ann at chat.example:8000"), "{text}");
        assert_eq!(parse(&text), Ok(key.clone()));
        // Uppercase digits, blank lines and CRLF are taken.
        let hex: String = key.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse(&format!("\r\n# c\r\n  {hex}  \r\n\n")), Ok(key));
    }

    #[test]
    fn a_key_file_that_is_not_a_key_says_why() {
        let hex = "ab".repeat(32);
        assert_eq!(parse(""), Err(BadKey::Empty));
        assert_eq!(parse("# only a comment\n"), Err(BadKey::Empty));
        assert_eq!(parse(&format!("{hex}\n{hex}\n")), Err(BadKey::TwoKeys));
        assert_eq!(parse(&hex[..62]), Err(BadKey::NotHex));
        assert_eq!(parse(&format!("{hex}0")), Err(BadKey::NotHex));
        assert_eq!(parse(&format!("{}zz", &hex[..62])), Err(BadKey::NotHex));
        assert_eq!(parse(&"é".repeat(32)), Err(BadKey::NotHex));
    }

    #[test]
    fn only_a_file_its_owner_alone_may_read_is_used() {
        assert_eq!(check_mode(0o100600), Ok(()));
        assert_eq!(check_mode(0o400), Ok(()));
        let e = check_mode(0o100644).unwrap_err();
        assert!(e.contains("its group and every other user"), "{e}");
        assert!(e.contains("0644"), "{e}");
        assert!(check_mode(0o640).unwrap_err().contains("its group"));
        assert!(
            check_mode(0o604)
                .unwrap_err()
                .starts_with("is open to every other user")
        );
        assert!(check_mode(0o601).is_err(), "even others' execute bit");
    }

    #[test]
    fn only_a_directory_its_owner_alone_may_write_to_holds_keys() {
        assert_eq!(check_dir(0o40700, 5, 5), Ok(()));
        // Read or searched by others: only their names show, as ssh allows for ~/.ssh.
        assert_eq!(check_dir(0o755, 5, 5), Ok(()));
        let e = check_dir(0o40777, 5, 5).unwrap_err();
        assert_eq!(
            e,
            "may be written to by its group and every other user (mode 0777; it must be 0700)"
        );
        assert_eq!(
            check_dir(0o775, 5, 5),
            Err("may be written to by its group (mode 0775; it must be 0700)".into())
        );
        assert!(
            check_dir(0o720, 5, 5)
                .unwrap_err()
                .contains("by its group (")
        );
        assert!(check_dir(0o1777, 5, 5).unwrap_err().contains("(mode 1777;"));
        assert!(
            check_dir(0o702, 5, 5)
                .unwrap_err()
                .contains("every other user")
        );
        assert_eq!(
            check_dir(0o700, 0, 5),
            Err("belongs to another user (uid 0; natter runs as uid 5)".into())
        );
    }

    #[test]
    fn a_key_in_an_open_directory_or_another_users_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("devices");
        let store = KeyStore::in_dir(dir.clone(), &addr("127.0.0.1", 8000));
        let ann = nick("ann");
        let path = store.save(&ann, &DeviceKey([1; 32])).unwrap();

        // Its directory open to others' writes: refused, with the fix, but still revocable.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = store.load(&ann).unwrap_err();
        assert!(matches!(e, KeyFileError::OpenDirectory { .. }), "{e}");
        let words = e.to_string();
        assert!(
            words.contains("may be written to by its group and every other user (mode 0777")
                && words.contains(&format!("run chmod 700 {}", dir.display())),
            "{words}"
        );
        assert_eq!(
            store.load_to_revoke(&ann).unwrap(),
            Some(DeviceKey([1; 32]))
        );
        assert!(
            store.load_to_revoke(&nick("bob")).unwrap().is_none(),
            "no file: no key"
        );
        // The fix given works.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(store.load(&ann).unwrap(), Some(DeviceKey([1; 32])));

        // The same files to another user (as if they were not this user's): the directory is
        // theirs, and so is the file.
        let me = store.me;
        let other = KeyStore {
            me: me + 1,
            ..store.clone()
        };
        let e = other.load(&ann).unwrap_err();
        assert!(e.to_string().contains("belongs to another user"), "{e}");
        let e = read_private(&path, me + 1).unwrap_err();
        assert!(matches!(e, KeyFileError::NotOwned { .. }), "{e}");
        assert!(
            e.to_string().contains(&format!(
                "belongs to another user (uid {me}; natter runs as uid {})",
                me + 1
            )),
            "{e}"
        );
        // Not revoked with either: the key is someone else's.
        let e = other.load_to_revoke(&ann).unwrap_err();
        assert!(matches!(e, KeyFileError::NotOwned { .. }), "{e}");
        // No directory at all: no key.
        let none = KeyStore::in_dir(tmp.path().join("none"), &addr("127.0.0.1", 8000));
        assert!(none.load(&ann).unwrap().is_none());
    }

    #[test]
    fn only_directories_others_cannot_move_the_keys_from_are_above_them() {
        assert_eq!(check_parent(0o40755, 5, 5), Ok(()));
        assert_eq!(check_parent(0o755, 0, 5), Ok(()), "root's");
        assert_eq!(check_parent(0o1777, 0, 5), Ok(()), "sticky, as /tmp");
        assert_eq!(
            check_parent(0o777, 5, 5),
            Err(
                "may be written to by its group and every other user and is not sticky \
                 (mode 0777)"
                    .into()
            )
        );
        assert!(
            check_parent(0o775, 0, 5)
                .unwrap_err()
                .contains("its group and")
        );
        assert!(
            check_parent(0o757, 5, 5)
                .unwrap_err()
                .contains("by every other user")
        );
        assert_eq!(
            check_parent(0o1777, 7, 5),
            Err("belongs to another user (uid 7; natter runs as uid 5)".into()),
            "its owner may delete anything in it, sticky or not"
        );
    }

    /// A 0700 key directory under one that anybody may write to (and is not sticky) could be
    /// renamed away and replaced by someone else's, with their key in it: only the file and the
    /// key directory were checked. Now every directory above is, as ssh checks them; saving
    /// refuses the same way, so it never writes a key the next start would refuse.
    #[test]
    fn a_key_under_a_directory_others_may_write_to_is_refused_and_not_saved() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = open.join("natter").join("devices");
        let store = KeyStore::in_dir(dir.clone(), &addr("127.0.0.1", 8000));
        let ann = nick("ann");
        let e = store.save(&ann, &DeviceKey([1; 32])).unwrap_err();
        assert!(matches!(e, KeyFileError::OpenParent { .. }), "{e}");
        let words = e.to_string();
        assert!(
            words.starts_with(&format!(
                "{}, a directory above the device key directory {}, may be written to by its \
                 group and every other user and is not sticky (mode 0777)",
                open.display(),
                dir.display()
            )) && words.contains(&format!("run chmod go-w {}", open.display())),
            "{words}"
        );
        assert!(!store.path(&ann).exists(), "nothing written");
        // Sticky, as /tmp: others cannot move what is ours.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let path = store.save(&ann, &DeviceKey([1; 32])).unwrap();
        assert_eq!(store.load(&ann).unwrap(), Some(DeviceKey([1; 32])));
        // Not sticky any more: refused on load, but still revocable.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = store.load(&ann).unwrap_err();
        assert!(matches!(e, KeyFileError::OpenParent { .. }), "{e}");
        assert_eq!(
            store.load_to_revoke(&ann).unwrap(),
            Some(DeviceKey([1; 32]))
        );
        // Reached through a symbolic link from a safe place: the real path is checked.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(open.join("natter"), &link).unwrap();
        let linked = KeyStore::in_dir(link.join("devices"), &addr("127.0.0.1", 8000));
        let e = linked.load(&ann).unwrap_err();
        assert!(matches!(e, KeyFileError::OpenParent { .. }), "{e}");
        // The fix given works.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(linked.load(&ann).unwrap(), Some(DeviceKey([1; 32])));
        assert!(path.exists());
    }

    /// A key directory of another user's (one root may write to): the key was written, and
    /// the next start refused it as someone else's directory. Refused before it is written,
    /// in the words the load says.
    #[test]
    fn a_key_is_not_saved_where_the_next_load_would_refuse_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("devices");
        let mine = KeyStore::in_dir(dir.clone(), &addr("127.0.0.1", 8000));
        let ann = nick("ann");
        mine.save(&ann, &DeviceKey([1; 32])).unwrap();
        // The same directory to another user (as if it were not this user's).
        let other = KeyStore {
            me: mine.me + 1,
            ..mine.clone()
        };
        let bob = nick("bob");
        let e = other.save(&bob, &DeviceKey([2; 32])).unwrap_err();
        assert!(matches!(e, KeyFileError::OpenDirectory { .. }), "{e}");
        assert!(e.to_string().contains("belongs to another user"), "{e}");
        assert!(!other.path(&bob).exists(), "nothing written");
        // Whatever saving did not refuse, loading takes.
        assert_eq!(mine.load(&ann).unwrap(), Some(DeviceKey([1; 32])));
    }

    #[test]
    fn the_label_names_the_host() {
        assert_eq!(label_for(Some("laptop")).as_str(), "natter on laptop");
        assert_eq!(label_for(Some("a\tb\n")).as_str(), "natter on a b");
        assert_eq!(label_for(None).as_str(), "natter");
        assert_eq!(label_for(Some(" \t\n")).as_str(), "natter");
        let long = label_for(Some(&"h".repeat(500)));
        assert!(long.as_str().len() <= natter_core::limits::MAX_DEVICE_LABEL_BYTES);
        assert!(long.as_str().starts_with("natter on hhh"));
    }

    #[test]
    fn steps_follow_the_session() {
        let (a, b) = (nick("ann"), nick("bob"));
        let (k1, k2) = (DeviceKey([1; 32]), DeviceKey([2; 32]));
        let kept = (a.clone(), k1.clone());
        // Signed in with the kept key: nothing to do.
        assert_eq!(
            step(Some(&kept), Some(&k1), Some(&a), Some(&k1), false, false),
            Step::Nothing
        );
        // A first key, and a new one for the same account (a rekey).
        assert_eq!(
            step(None, None, Some(&a), Some(&k1), false, false),
            Step::Save {
                account: a.clone(),
                key: k1.clone(),
                replaces: false
            }
        );
        assert_eq!(
            step(Some(&kept), Some(&k1), Some(&a), Some(&k2), false, false),
            Step::Save {
                account: a.clone(),
                key: k2.clone(),
                replaces: true
            }
        );
        // Not signed in yet with a key: not kept until the server says whose it is.
        assert_eq!(
            step(None, None, None, Some(&k1), false, false),
            Step::Nothing
        );
        // The kept key refused, or signed out.
        assert_eq!(
            step(Some(&kept), Some(&k1), None, None, true, false),
            Step::Refused(a.clone())
        );
        assert_eq!(
            step(Some(&kept), Some(&k1), None, None, false, true),
            Step::SignedOut(a.clone())
        );
        // The key let go without a refusal (a password change on its way), or a refusal of
        // another sign-in after a typed /login to another account: the file stays.
        assert_eq!(
            step(Some(&kept), Some(&k1), Some(&a), None, false, false),
            Step::Nothing
        );
        assert_eq!(
            step(Some(&kept), None, None, None, true, false),
            Step::Nothing
        );
        // Another account's key is kept in its own file.
        assert_eq!(
            step(Some(&kept), None, Some(&b), Some(&k2), false, false),
            Step::Save {
                account: b,
                key: k2,
                replaces: false
            }
        );
    }

    #[test]
    fn the_server_signing_this_device_out_is_a_sign_out_not_a_refusal() {
        use natter_core::session::About;
        let error = |kind| Event::Error {
            kind: Some(kind),
            about: About::Account,
            text: "t".into(),
        };
        let (refusal, sign_out) = (
            News {
                refused: true,
                signed_out: false,
            },
            News {
                refused: false,
                signed_out: true,
            },
        );
        assert_eq!(News::of(&error(ErrorKind::SignInFailed)), Some(refusal));
        assert_eq!(News::of(&error(ErrorKind::Throttled)), Some(refusal));
        // Forgotten from another device, or the account removed: signed out by the server,
        // the password let go of with the key.
        assert_eq!(News::of(&error(ErrorKind::NotSignedIn)), Some(sign_out));
        assert_eq!(News::of(&Event::SignedOut), Some(sign_out));
        assert_eq!(News::of(&Event::Info("x".into())), None);
        let (a, k) = (nick("ann"), DeviceKey([1; 32]));
        let kept = (a.clone(), k.clone());
        assert_eq!(
            step(Some(&kept), Some(&k), None, None, false, true),
            Step::SignedOut(a)
        );
    }

    #[test]
    fn keys_are_saved_private_replaced_whole_and_deleted() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("natter").join("devices");
        let store = KeyStore::in_dir(dir.clone(), &addr("127.0.0.1", 8000));
        let ann = nick("ann");
        assert!(store.load(&ann).unwrap().is_none(), "no file: no key");
        let path = store.save(&ann, &DeviceKey([1; 32])).unwrap();
        assert_eq!(path, dir.join("ann@127.0.0.1_8000"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(store.load(&ann).unwrap(), Some(DeviceKey([1; 32])));
        store.save(&ann, &DeviceKey([2; 32])).unwrap();
        assert_eq!(store.load(&ann).unwrap(), Some(DeviceKey([2; 32])));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        // A file others may read is refused, but can still be revoked.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = store.load(&ann).unwrap_err();
        assert!(matches!(e, KeyFileError::Exposed { .. }), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert_eq!(
            store.load_to_revoke(&ann).unwrap(),
            Some(DeviceKey([2; 32]))
        );
        std::fs::write(&path, "nonsense").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = store.load(&ann).unwrap_err();
        assert!(
            matches!(
                e,
                KeyFileError::Bad {
                    why: BadKey::NotHex,
                    ..
                }
            ),
            "{e}"
        );
        std::fs::write(&path, vec![b'#'; 5000]).unwrap();
        assert!(matches!(
            store.load(&ann),
            Err(KeyFileError::Bad {
                why: BadKey::TooLarge,
                ..
            })
        ));
        // A file holding another key than the one refused is left; one holding it goes.
        store.save(&ann, &DeviceKey([4; 32])).unwrap();
        assert!(
            !store
                .delete_holding(&ann, Some(&DeviceKey([3; 32])))
                .unwrap()
        );
        assert!(path.exists());
        assert!(
            store
                .delete_holding(&ann, Some(&DeviceKey([4; 32])))
                .unwrap()
        );
        assert!(!path.exists());
        std::fs::write(&path, "garbage").unwrap();
        assert!(store.delete(&ann).unwrap());
        assert!(!store.delete(&ann).unwrap());
        // Not a plain file (a FIFO, a directory): said at once, never opened (opening a FIFO
        // would wait for a writer for ever).
        store.delete(&ann).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(fifo.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, a) = (store.clone(), ann.clone());
        std::thread::spawn(move || {
            let _ = tx.send((
                s.load(&a).map_err(|e| e.to_string()),
                s.load_to_revoke(&a).map_err(|e| e.to_string()),
            ));
        });
        let (load, revoke) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a FIFO is not opened");
        for e in [load.unwrap_err(), revoke.unwrap_err()] {
            assert!(e.contains("(not a plain file)"), "{e}");
        }
        assert!(store.delete(&ann).unwrap(), "and it can be deleted");
        std::fs::create_dir(&path).unwrap();
        let e = store.load(&ann).unwrap_err();
        assert!(
            matches!(
                e,
                KeyFileError::Bad {
                    why: BadKey::NotAFile,
                    ..
                }
            ),
            "{e}"
        );
        std::fs::remove_dir(&path).unwrap();
        // A directory left open to others is made private on the next save.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        store.save(&ann, &DeviceKey([3; 32])).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
