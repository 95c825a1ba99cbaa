//! Opening the database file: telling a natter store from anything else, refusing one newer
//! than this build, and bringing an older one up to date one numbered step at a time
//! (`PRAGMA user_version` holds the step reached).

use crate::{OpenError, WriteError};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::Path;
use tracing::{debug, info};

/// `PRAGMA application_id` of a natter store: "NTR1" in ASCII. Tells a natter store from
/// another program's SQLite file.
pub(crate) const APPLICATION_ID: i32 = 0x4e54_5231;

/// The schema steps, in order: step `i` takes a store from version `i` to `i + 1` (the SQL of
/// `migrations/00N_*.sql`). Public so a test can build a store of an older version.
pub const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_base.sql"),
    include_str!("migrations/002_search.sql"),
    include_str!("migrations/003_accounts.sql"),
    include_str!("migrations/004_policies.sql"),
    include_str!("migrations/005_search_lag.sql"),
    include_str!("migrations/006_session_ids.sql"),
    include_str!("migrations/007_search_file.sql"),
    include_str!("migrations/008_ban_times.sql"),
    include_str!("migrations/009_event_rows.sql"),
    include_str!("migrations/010_presence.sql"),
    include_str!("migrations/011_events_rowid.sql"),
    include_str!("migrations/012_session_state.sql"),
    include_str!("migrations/013_held_directs.sql"),
    include_str!("migrations/014_took_zero.sql"),
    include_str!("migrations/015_put_out.sql"),
    include_str!("migrations/016_device_use.sql"),
    include_str!("migrations/017_session_device_key.sql"),
    include_str!("migrations/018_device_label.sql"),
    include_str!("migrations/019_away_notes.sql"),
    include_str!("migrations/020_server_accounts.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Before the first connection of the process: SQLite allocates through mimalloc
/// (`natter-sqlite-mem`), unless something in the process used SQLite before (then it keeps its
/// own allocator, which works as well, only slower for the search index).
pub(crate) fn sqlite_memory() {
    if let Err(e) = natter_sqlite_mem::install() {
        tracing::debug!(error = %e, "SQLite keeps its own allocator");
    }
}

/// Makes `path` (a database file) readable by the server's user only, creating it empty (which
/// SQLite takes for a new database) with mode 0600 if it is not there: it holds the rooms'
/// history and password hashes, and SQLite gives the `-wal` and `-shm` files it makes beside
/// it the database file's mode. A file made by an older natter (0644, under the umask) is
/// narrowed to 0600, with the `-wal` and `-shm` files already there. What cannot be done is
/// left to SQLite's open, which says why in its words (a directory in the file's place, a
/// read-only file, a full disk).
pub(crate) fn private_file(path: &Path) {
    if let Err(e) = narrow(path) {
        debug!(path = %path.display(), error = %e, "database file: not made 0600 before its open");
    }
}

fn narrow(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)?;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            let private = std::fs::Permissions::from_mode(0o600);
            file.set_permissions(private.clone())?;
            for suffix in ["-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                match std::fs::set_permissions(&side, private.clone()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens `path` (creating it) for the writer: checks what it is, applies missing migrations.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    sqlite_memory();
    private_file(path);
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    // Until the store is known to be good ([`fold_on_close`]), closing this connection leaves
    // the write-ahead log as it is: SQLite folds the log into the file at the last close, and
    // a log that is not this file's (a backup put in place with the old log beside it) would
    // be written into it, and removed, by the close of a connection that refused the file.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| open_error(path, e))?;
    // The first read of the file: a file that is not a database fails here.
    let (app_id, version) = identify(&conn, path)?;
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| open_error(path, e))?
    {
        return Err(OpenError::Unwritable {
            path: path.to_path_buf(),
            detail: "the file is read-only".into(),
        });
    }
    if app_id == 0 && version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        if tables > 0 {
            return Err(OpenError::Foreign {
                path: path.to_path_buf(),
                detail: format!(
                    "it holds {tables} {} and no natter schema version",
                    if tables == 1 { "table" } else { "tables" }
                ),
            });
        }
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Unwritable {
            path: path.to_path_buf(),
            detail: format!("write-ahead logging is not possible here (journal mode {mode})"),
        });
    }
    migrate(&conn, path, version)?;
    Ok(conn)
}

/// The store opened by [`open_writer`] is good: closing `conn` folds the write-ahead log into
/// the file again, as SQLite does by default (a clean stop leaves no log behind).
pub(crate) fn fold_on_close(conn: &Connection, path: &Path) -> Result<(), OpenError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
        .map(|_| ())
        .map_err(|e| open_error(path, e))
}

/// `e`, refusing the database file at `db`, said with the write-ahead log beside it when there
/// is one: what could not be read may be the log's pages, another file's (see
/// [`OpenError::StrangeLog`]). So is any other refusal of what SQLite read there (`Sqlite`): a
/// copy read with pages of another time gives whatever those pages hold ("Query returned no
/// rows" for a row every store has), not always `Corrupt`. A refusal of another file (the
/// search index's) stays as it is: its words would send the operator to move away a log that
/// may hold the last commits.
pub(crate) fn with_log(db: &Path, e: OpenError) -> OpenError {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    let bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    match e {
        OpenError::Corrupt { path, detail }
        | OpenError::Foreign { path, detail }
        | OpenError::Sqlite { path, detail }
            if bytes > 0 && path == db =>
        {
            OpenError::StrangeLog {
                path,
                wal,
                bytes,
                detail,
            }
        }
        e => e,
    }
}

/// Opens `path` for reading, after the writer has opened (and migrated) it.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, OpenError> {
    // Read-write flags even so: a WAL reader needs the shared-memory file. `query_only` keeps
    // this connection from writing.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    sqlite_memory();
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    let (_, version) = identify(&conn, path)?;
    if version != SCHEMA_VERSION {
        return Err(OpenError::Sqlite {
            path: path.to_path_buf(),
            detail: format!("schema version {version} while {SCHEMA_VERSION} was expected"),
        });
    }
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Opens `path` for writing beside a running server (which holds the directory's lock and has
/// brought the schema up to date): never creates or upgrades it, and refuses a version other
/// than this build's.
pub(crate) fn open_beside(path: &Path) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    sqlite_memory();
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    let (_, version) = identify(&conn, path)?;
    if version != SCHEMA_VERSION {
        return Err(OpenError::Sqlite {
            path: path.to_path_buf(),
            detail: format!(
                "schema version {version} while {SCHEMA_VERSION} was expected: the server running on it is of another version; stop it, or use its own natter-server"
            ),
        });
    }
    Ok(conn)
}

/// The file's application id and schema version, refusing files that are not natter stores
/// or are newer than this build.
fn identify(conn: &Connection, path: &Path) -> Result<(i32, u32), OpenError> {
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(OpenError::Foreign {
            path: path.to_path_buf(),
            detail: format!("application id {app_id:#x}"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    Ok((app_id, version))
}

/// Applies the steps from `version` on, each in its own transaction with the version bump.
fn migrate(conn: &Connection, path: &Path, version: u32) -> Result<(), OpenError> {
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let from = from as u32;
        let step = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let applied = conn
                .execute_batch(sql)
                .and_then(|()| conn.pragma_update(None, "user_version", from + 1))
                .and_then(|()| conn.pragma_update(None, "application_id", APPLICATION_ID))
                .and_then(|()| conn.execute_batch("COMMIT"));
            if applied.is_err() {
                // Keeps the error of the step, not of the rollback.
                let _ = conn.execute_batch("ROLLBACK");
            }
            applied
        };
        step().map_err(|e| match open_error(path, e) {
            OpenError::Sqlite { path, detail } => OpenError::Migration { path, from, detail },
            other => other,
        })?;
        debug!(path = %path.display(), from, to = from + 1, "store schema step applied");
    }
    // One line for the operator, not one per step (a new store took eleven).
    if version == 0 {
        info!(path = %path.display(), schema = SCHEMA_VERSION, "new store created");
    } else if version < SCHEMA_VERSION {
        info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "store schema upgraded");
    }
    Ok(())
}

/// The open error for what SQLite said about `path`.
pub(crate) fn open_error(path: &Path, e: rusqlite::Error) -> OpenError {
    let path = path.to_path_buf();
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            OpenError::Corrupt { path, detail }
        }
        Some(ErrorCode::SystemIoFailure | ErrorCode::DiskFull) => {
            // SQLite says "disk I/O error" when a full disk keeps it from making the log's
            // shared-memory file: say what the operator must fix, not a failing drive.
            let detail = match free_bytes(&path) {
                Some(free) if free < FULL_BELOW => {
                    format!("the disk is full ({free} bytes free; SQLite said: {detail})")
                }
                _ => detail,
            };
            OpenError::Unwritable { path, detail }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            OpenError::Unwritable { path, detail }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => OpenError::Locked { path },
        _ => OpenError::Sqlite { path, detail },
    }
}

/// The open error for a write that opening needs (`what`: folding the last run's message ids,
/// catching the search index up) which failed with `e`. It is said as any write refused at
/// open is (`Unwritable`, a full disk as the disk's), not in the words its sender gets from a
/// refused batch ("the message was not stored"): at start no message is being sent.
pub(crate) fn write_error_at_open(path: &Path, what: &str, e: WriteError) -> OpenError {
    let path = path.to_path_buf();
    let free = free_bytes(&path);
    match e {
        WriteError::DiskFull => {
            let free = free.map_or_else(String::new, |b| format!("{b} bytes free; "));
            OpenError::Unwritable {
                path,
                detail: format!("the disk is full ({free}{what} needs room)"),
            }
        }
        // SQLite says "disk I/O error" where a full disk stops some writes (see `open_error`).
        WriteError::Storage(said) => match free {
            Some(free) if free < FULL_BELOW => OpenError::Unwritable {
                path,
                detail: format!(
                    "the disk is full ({free} bytes free; {what} needs room; SQLite said: {said})"
                ),
            },
            _ => OpenError::Sqlite {
                path,
                detail: format!("{what}: {said}"),
            },
        },
        e => OpenError::Sqlite {
            path,
            detail: format!("{what}: {e}"),
        },
    }
}

/// Free space under which an I/O error at open is said to be a full disk: less than SQLite
/// needs for the log's shared-memory file and a few pages.
const FULL_BELOW: u64 = 1 << 20;

/// Bytes free to this process on the file system of `path`'s directory, where it can be told.
fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let st = nix::sys::statvfs::statvfs(dir.unwrap_or(Path::new("."))).ok()?;
        Some(st.blocks_available().saturating_mul(st.fragment_size()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}
