//! How a store is opened: where, how hard each commit is pushed to disk, what retention keeps,
//! and the sizes of its queues. Also where the data directory is when nobody says.

use crate::OpenError;
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the data directory (`--data-dir` wins over it).
pub const DATA_DIR_ENV: &str = "NATTER_DATA_DIR";

/// The database file inside the data directory (SQLite adds `-wal` and `-shm` beside it).
pub const DB_FILE: &str = "natter.db";

/// The lock file inside the data directory, held while a store is open so two servers never
/// write one store.
pub const LOCK_FILE: &str = "natter.lock";

/// The data directory: `flag` (`--data-dir PATH`) if given, else `$NATTER_DATA_DIR` if set and
/// not blank (empty or only white space, as natter's binaries take every blank `NATTER_*`
/// variable), else the user's data directory plus `natter` (`$XDG_DATA_HOME/natter`, that is
/// `~/.local/share/natter` on Linux).
pub fn resolve_data_dir(flag: Option<&Path>) -> Result<PathBuf, OpenError> {
    let home_data = directories::BaseDirs::new().map(|d| d.data_dir().to_path_buf());
    data_dir_from(flag, std::env::var_os(DATA_DIR_ENV), home_data)
}

/// Creates the data directory `dir` if it is missing, and any missing parent, readable by the
/// server's user only (0700, as the XDG base directory spec asks of what it creates there): the
/// store holds the rooms' history, password hashes and messages kept for accounts. A directory
/// that exists is left as it is. A file in its place is refused in those words (the system's
/// own, "File exists", reads as if the directory were fine).
pub(crate) fn create_data_dir(dir: &Path) -> Result<(), OpenError> {
    use std::os::unix::fs::DirBuilderExt;
    let refused = |source| OpenError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(refused(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is a file, not a directory",
        )));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(refused)
}

/// [`resolve_data_dir`] with its inputs passed in.
fn data_dir_from(
    flag: Option<&Path>,
    env: Option<OsString>,
    home_data: Option<PathBuf>,
) -> Result<PathBuf, OpenError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = env.filter(|v| !v.to_str().is_some_and(|v| v.trim().is_empty())) {
        return Ok(PathBuf::from(dir));
    }
    home_data
        .map(|d| d.join("natter"))
        .ok_or(OpenError::NoDataDir)
}

/// How hard a commit is pushed to disk: SQLite's `synchronous` setting, in WAL mode.
///
/// | setting | a process crash (`kill -9`, panic, OOM kill) | a power cut or OS crash |
/// | --- | --- | --- |
/// | `off` | loses nothing reported durable | may lose recent commits, and may **corrupt** the file |
/// | `normal` (default) | loses nothing reported durable | may lose the commits since the last checkpoint (a [`crate::SqliteHandle`] checkpoints every [`crate::sqlite::CHECKPOINT_EVERY`] on a thread of its own, and its writer past [`crate::sqlite::CHECKPOINT_BEHIND_PAGES`] pages of log; a store opened alone every [`WAL_AUTOCHECKPOINT_PAGES`] pages: a few MiB at most); never corrupts |
/// | `full` | loses nothing reported durable | loses nothing reported durable (one `fsync` of the log per commit) |
///
/// A commit is reported durable once SQLite has written it to the log file (`normal`, `off`)
/// or written and synced it (`full`). The operating system holds what a dead process wrote, so
/// `kill -9` can only lose batches not yet reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// No `fsync` at all.
    Off,
    /// `fsync` of the log at checkpoints only.
    #[default]
    Normal,
    /// `fsync` of the log at every commit.
    Full,
}

/// As the config file's `[store] synchronous` says it: `off`, `normal`, `full`.
impl core::fmt::Display for Synchronous {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Synchronous::Off => "off",
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
        })
    }
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Pages of write-ahead log after which a commit also checkpoints it into the database file
/// (SQLite's default). Under [`Synchronous::Normal`] this bounds what a power cut can lose.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 1000;

/// What history is kept. Pruning removes the oldest events first, a bounded number at a time on
/// the writer thread between batches, and never changes a room's last seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Events older than this many days are removed; 0 keeps them for ever.
    pub max_age_days: u32,
    /// The most bytes the store's files may take; past it the oldest events are removed; 0
    /// means no limit. What counts: the pages in use of `natter.db` and of the search index,
    /// plus the room their write-ahead logs may take ([`Retention::wal_limit`] each, kept aside
    /// from the budget). The files do not shrink: freed pages are reused for new events.
    pub max_bytes: u64,
}

/// The most a write-ahead log is kept at when nothing bounds it otherwise (no `max_bytes`).
pub const WAL_LIMIT_MAX: u64 = 64 * 1024 * 1024;

/// The least a write-ahead log is cut back to, however small `max_bytes` is.
pub const WAL_LIMIT_MIN: u64 = 64 * 1024;

impl Retention {
    /// What each write-ahead log (`natter.db-wal`, `search.db-wal`) is cut back to after a
    /// checkpoint (SQLite's `journal_size_limit`): 1/32 of `max_bytes`, between
    /// [`WAL_LIMIT_MIN`] and [`WAL_LIMIT_MAX`]. A log holds what was written since the last
    /// checkpoint (a store run by [`crate::SqliteHandle`] checkpoints every 100 ms), so it
    /// grows past this only for that long, by a commit bigger than it, or while a long read
    /// keeps it from being checkpointed; the next write after a checkpoint cuts it back.
    pub fn wal_limit(&self) -> u64 {
        if self.max_bytes == 0 {
            return WAL_LIMIT_MAX;
        }
        (self.max_bytes / 32).clamp(WAL_LIMIT_MIN, WAL_LIMIT_MAX)
    }

    /// The bytes of pages in use (the database's and the search index's) past which the
    /// oldest events are removed: `max_bytes` less the room of the two logs. `None`: no limit.
    pub fn pages_budget(&self) -> Option<u64> {
        (self.max_bytes > 0).then(|| self.max_bytes.saturating_sub(2 * self.wal_limit()))
    }
}

impl Default for Retention {
    /// Everything, up to 10 GiB.
    fn default() -> Retention {
        Retention {
            max_age_days: 0,
            max_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

/// Everything [`crate::SqliteStore::open`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The data directory (created if missing).
    pub dir: PathBuf,
    /// See [`Synchronous`].
    pub synchronous: Synchronous,
    /// See [`Retention`].
    pub retention: Retention,
    /// Batches in flight at most: submitted and not yet reported, plus reports not yet received.
    pub max_in_flight: usize,
    /// Threads answering `load` and history pages.
    pub history_threads: usize,
    /// Threads answering searches (kept apart so a slow search never delays a history page).
    pub search_threads: usize,
    /// Reads waiting per kind (history, search) at most; past it a read fails with
    /// [`crate::ReadError::Busy`] at once instead of queueing without bound.
    pub max_queued_reads: usize,
    /// A search running longer than this is stopped ([`crate::ReadError::TimedOut`]).
    pub search_budget: Duration,
}

impl Config {
    /// The defaults for a store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            synchronous: Synchronous::default(),
            retention: Retention::default(),
            max_in_flight: 64,
            history_threads: 1,
            search_threads: 1,
            max_queued_reads: 64,
            search_budget: Duration::from_secs(2),
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// The search index's file in the data directory (a derived cache of `natter.db`'s chat
    /// lines: deleting it while the server is stopped makes the next start rebuild it).
    pub fn search_path(&self) -> PathBuf {
        self.dir.join(crate::sqlite::SEARCH_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_made_for_the_store_is_the_users_only_and_one_there_is_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // As `~/.local/share/natter` on a first start, its parent missing too.
        let dir = tmp.path().join("share").join("natter");
        create_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("share")), 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_data_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o755, "the operator's choice is kept");
    }

    #[test]
    fn data_dir_prefers_flag_then_env_then_home() {
        let home = Some(PathBuf::from("/home/a/.local/share"));
        let env = Some(OsString::from("/srv/natter"));
        let flag = Path::new("/tmp/x");
        assert_eq!(
            data_dir_from(Some(flag), env.clone(), home.clone()).unwrap(),
            PathBuf::from("/tmp/x")
        );
        assert_eq!(
            data_dir_from(None, env, home.clone()).unwrap(),
            PathBuf::from("/srv/natter")
        );
        assert_eq!(
            data_dir_from(None, Some(OsString::new()), home.clone()).unwrap(),
            PathBuf::from("/home/a/.local/share/natter")
        );
        assert_eq!(
            data_dir_from(None, Some(OsString::from(" \t")), home.clone()).unwrap(),
            PathBuf::from("/home/a/.local/share/natter")
        );
        assert_eq!(
            data_dir_from(None, None, home).unwrap(),
            PathBuf::from("/home/a/.local/share/natter")
        );
        assert!(matches!(
            data_dir_from(None, None, None),
            Err(OpenError::NoDataDir)
        ));
    }

    #[test]
    fn synchronous_names() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let parse = |s: &str| {
            let d: StrDeserializer<'_, Error> = s.into_deserializer();
            Synchronous::deserialize(d).ok()
        };
        assert_eq!(parse("off"), Some(Synchronous::Off));
        assert_eq!(parse("normal"), Some(Synchronous::Normal));
        assert_eq!(parse("full"), Some(Synchronous::Full));
        assert_eq!(parse("extra"), None);
        // The log says it in the file's words ("store open synchronous=normal", not Normal).
        for s in [Synchronous::Off, Synchronous::Normal, Synchronous::Full] {
            assert_eq!(parse(&s.to_string()), Some(s));
        }
        assert_eq!(Synchronous::default(), Synchronous::Normal);
        let d = Retention::default();
        assert_eq!((d.max_age_days, d.max_bytes), (0, 10 << 30));
    }
}
