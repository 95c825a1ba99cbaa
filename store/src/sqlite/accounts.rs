//! Accounts in the store: applying the account writes (`Account`, `DropAccount`,
//! `AccountRooms`, `ReadMarker`, `AddKey`, `KeyUsed`, `RevokeKey`, `RevokeKeys`, `HeldDirects`,
//! `AwayNotes`) inside a writer's transaction, loading every account back, and [`AccountStore`], the operator's door to them
//! (`natter-server account …`), which works whether or not a server has the store open.
//! Accounts are keyed by their folded name ([`Nick::folded`]).

use super::codec::int;
use super::schema;
use super::write::{DirLock, token_hash};
use crate::config::LOCK_FILE;
use crate::{Batch, Config, OpenError, ReadError, WriteError};
use natter_core::accounts::PasswordHash;
use natter_core::persist::{AccountRecord, HeldDirect, KeyRecord, LoadedAccount, Write};
use natter_core::types::{DeviceLabel, InvalidName, MsgId, Text};
use natter_core::wire::DirectMsg;
use natter_core::wire::{DeviceDoor, DeviceUse};
use natter_core::{Millis, Nick, RoomName, Seq};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tracing::debug;

/// Who applies an account write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    /// The running server's writer: its writes of an account apply only to the account as the
    /// server last held it (`server_accounts`, see `migrations/020_server_accounts.sql`).
    Server,
    /// The operator's tool (`natter-server account …`): its word holds.
    Operator,
}

/// The account a write is about, for the writes that belong to one (a key revoked by its id
/// alone names none: its id is never given out again).
fn account_of(write: &Write) -> Option<&Nick> {
    match write {
        Write::DropAccount(account)
        | Write::AccountRooms { account, .. }
        | Write::ReadMarker { account, .. }
        | Write::AddKey { account, .. }
        | Write::KeyUsed { account, .. }
        | Write::KeyLabel { account, .. }
        | Write::RevokeKeys { account }
        | Write::HeldDirects { account, .. }
        | Write::AwayNotes { account, .. } => Some(account),
        _ => None,
    }
}

/// Whether the account named `account` (folded) is stored as the server last held it: the
/// same registration (its time) and the same password hash.
fn held_as_stored(tx: &Connection, account: &str) -> Result<bool, WriteError> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM accounts a JOIN server_accounts s ON s.name = a.name
         WHERE a.name = ?1 AND s.created = a.created AND s.hash = a.hash)",
    )
    .and_then(|mut st| st.query_row([account], |r| r.get(0)))
    .map_err(WriteError::from_sqlite)
}

/// A server's [`Write::Account`] (a registration, a password change, or the server taking up
/// the account as the store holds it after reading it): applied, and the account held as
/// written, unless the operator changed it since the server last held it. Then the operator's
/// word stands: a removed registration is not made again, a name added again keeps its new
/// account, a password the operator set stays; the server reads it at its reload. `Ok(false)`
/// then.
fn server_account(tx: &Connection, rec: &AccountRecord) -> Result<bool, WriteError> {
    let sql = WriteError::from_sqlite;
    let name = rec.name.folded();
    let created = int("time", rec.created.0)?;
    let row = |table: &str| -> Result<Option<(i64, String)>, WriteError> {
        tx.prepare_cached(&format!(
            "SELECT created, hash FROM {table} WHERE name = ?1"
        ))
        .and_then(|mut st| {
            st.query_row([&name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql)
    };
    let (stored, held) = (row("accounts")?, row("server_accounts")?);
    let applies = match &stored {
        // A registration, unless it is the one the operator removed since.
        None => held.as_ref().is_none_or(|(c, _)| *c != created),
        // Another account of the name: the operator removed this one and added the name again.
        Some((c, _)) if *c != created => false,
        // Unchanged since the server held it, or the server takes up the operator's password.
        Some(s) => held.as_ref() == Some(s) || s.1 == rec.hash.0,
    };
    if !applies {
        debug!(account = %rec.name, "the server's write of an account the operator changed since it read it: not applied");
        return Ok(false);
    }
    upsert(tx, rec)?;
    tx.prepare_cached(
        "INSERT INTO server_accounts (name, created, hash) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET created = excluded.created, hash = excluded.hash",
    )
    .and_then(|mut st| st.execute(params![name, created, rec.hash.0]))
    .map(|_| true)
    .map_err(sql)
}

/// Applies `write` inside the open transaction `tx` if it is an account write; `Ok(false)` if it
/// is not one. A server's write of an account the operator changed since the server last held
/// it is taken and changes nothing ([`By::Server`]); its account is added to `stale` (once), for
/// the server to hear (`Report::Stale`): it holds that account otherwise than the store does.
/// A drop is not: the server forgot that account already.
pub(super) fn apply(
    tx: &Connection,
    write: &Write,
    by: By,
    stale: &mut Vec<Nick>,
) -> Result<bool, WriteError> {
    let sql = WriteError::from_sqlite;
    if by == By::Server {
        let mut note = |account: &Nick| {
            if !stale.iter().any(|s| s.folded() == account.folded()) {
                stale.push(account.clone());
            }
        };
        if let Write::Account(rec) = write {
            if !server_account(tx, rec)? {
                note(&rec.name);
            }
            return Ok(true);
        }
        if let Some(account) = account_of(write)
            && !held_as_stored(tx, &account.folded())?
        {
            debug!(%account, "the server's write of an account the operator changed since it read it: not applied");
            if !matches!(write, Write::DropAccount(_)) {
                note(account);
            }
            return Ok(true);
        }
    }
    match write {
        Write::Account(rec) => upsert(tx, rec)?,
        Write::DropAccount(name) => {
            let name = name.folded();
            for delete in [
                "DELETE FROM accounts WHERE name = ?1",
                "DELETE FROM account_rooms WHERE account = ?1",
                "DELETE FROM read_markers WHERE account = ?1",
                "DELETE FROM device_keys WHERE account = ?1",
                "DELETE FROM held_directs WHERE account = ?1",
                "DELETE FROM away_notes WHERE account = ?1",
                // Its name and registration time stay (see `server_accounts`), not its hash.
                "UPDATE server_accounts SET hash = '' WHERE name = ?1",
            ] {
                tx.prepare_cached(delete)
                    .and_then(|mut st| st.execute([&name]))
                    .map_err(sql)?;
            }
        }
        Write::AccountRooms { account, rooms } => {
            let account = account.folded();
            tx.prepare_cached("DELETE FROM account_rooms WHERE account = ?1")
                .and_then(|mut st| st.execute([&account]))
                .map_err(sql)?;
            let mut st = tx
                .prepare_cached("INSERT INTO account_rooms (account, pos, room) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
                .map_err(sql)?;
            for (pos, room) in rooms.iter().enumerate() {
                let pos = int("room position", pos as u64)?;
                st.execute(params![account, pos, room.as_str()])
                    .map_err(sql)?;
            }
        }
        Write::ReadMarker { account, room, seq } => {
            let seq = int("seq", seq.0)?;
            tx.prepare_cached(
                "INSERT INTO read_markers (account, room, seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, room) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .and_then(|mut st| st.execute(params![account.folded(), room.as_str(), seq]))
            .map_err(sql)?;
        }
        Write::AddKey { account, key } => {
            let created = int("time", key.created.0)?;
            let (used, door, address) = use_columns(key.used.as_ref())?;
            let added = tx
                .prepare_cached(
                    "INSERT INTO device_keys (id, account, hash, created, used, door, address)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        key_id(key.id),
                        account.folded(),
                        &key.hash.0[..],
                        created,
                        used,
                        door,
                        address
                    ])
                });
            match added {
                Ok(_) => {}
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    return Err(WriteError::Storage(format!(
                        "device key {} is stored already",
                        key.id
                    )));
                }
                Err(e) => return Err(sql(e)),
            }
        }
        Write::RevokeKey { id } => {
            tx.prepare_cached("DELETE FROM device_keys WHERE id = ?1")
                .and_then(|mut st| st.execute([key_id(*id)]))
                .map_err(sql)?;
        }
        Write::KeyUsed { id, used, .. } => {
            let (at, door, address) = use_columns(Some(used))?;
            tx.prepare_cached(
                "UPDATE device_keys SET used = ?2, door = ?3, address = ?4 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![key_id(*id), at, door, address]))
            .map_err(sql)?;
        }
        Write::KeyLabel { id, label, .. } => {
            tx.prepare_cached("UPDATE device_keys SET label = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![key_id(*id), label.as_str()]))
                .map_err(sql)?;
        }
        Write::RevokeKeys { account } => {
            tx.prepare_cached("DELETE FROM device_keys WHERE account = ?1")
                .and_then(|mut st| st.execute([account.folded()]))
                .map_err(sql)?;
        }
        Write::HeldDirects { account, held } => {
            let account = account.folded();
            tx.prepare_cached("DELETE FROM held_directs WHERE account = ?1")
                .and_then(|mut st| st.execute([&account]))
                .map_err(sql)?;
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO held_directs (account, pos, notice, sender, id, at, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql)?;
            for (pos, h) in held.iter().enumerate() {
                let pos = int("position", pos as u64)?;
                let at = int("time", h.msg.at.0)?;
                st.execute(params![
                    account,
                    pos,
                    h.notice,
                    h.msg.from.as_str(),
                    key_id(h.msg.id.0),
                    at,
                    h.msg.text.as_str()
                ])
                .map_err(sql)?;
            }
        }
        Write::AwayNotes { account, notes } => {
            let account = account.folded();
            tx.prepare_cached("DELETE FROM away_notes WHERE account = ?1")
                .and_then(|mut st| st.execute([&account]))
                .map_err(sql)?;
            // One per room: a later note of a room replaces an earlier one (the hub keeps one).
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO away_notes (account, room, pos, words) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account, room) DO UPDATE SET pos = excluded.pos,
                     words = excluded.words",
                )
                .map_err(sql)?;
            for (pos, (room, words)) in notes.iter().enumerate() {
                let pos = int("position", pos as u64)?;
                st.execute(params![account, room.as_str(), pos, words])
                    .map_err(sql)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Creates the account, or replaces its password hash (its display name and creation time stay).
fn upsert(tx: &Connection, rec: &AccountRecord) -> Result<(), WriteError> {
    let created = int("time", rec.created.0)?;
    tx.prepare_cached(
        "INSERT INTO accounts (name, display, hash, created) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
    )
    .and_then(|mut st| {
        st.execute(params![
            rec.name.folded(),
            rec.name.as_str(),
            rec.hash.0,
            created
        ])
    })
    .map(|_| ())
    .map_err(WriteError::from_sqlite)
}

/// A key's last use as its columns: the time, the door's word and the address as text.
#[allow(clippy::type_complexity)]
fn use_columns(
    used: Option<&DeviceUse>,
) -> Result<(Option<i64>, Option<&'static str>, Option<String>), WriteError> {
    let Some(u) = used else {
        return Ok((None, None, None));
    };
    Ok((
        Some(int("time", u.at.0)?),
        Some(door_word(u.door)),
        u.address.map(|a| a.to_string()),
    ))
}

/// A door as the `door` column holds it.
fn door_word(door: DeviceDoor) -> &'static str {
    match door {
        DeviceDoor::Client => "client",
        DeviceDoor::Page => "page",
        DeviceDoor::Text => "text",
        DeviceDoor::Irc => "irc",
    }
}

/// The door a `door` column names.
fn door_of(word: &str) -> Option<DeviceDoor> {
    Some(match word {
        "client" => DeviceDoor::Client,
        "page" => DeviceDoor::Page,
        "text" => DeviceDoor::Text,
        "irc" => DeviceDoor::Irc,
        _ => return None,
    })
}

/// A device key's id as stored: all 64 bits, as SQLite's signed integer.
fn key_id(id: u64) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

/// Every device key's label (what [`Reader::load`] returns as `device_labels`), by key id. A
/// label that does not read as one (only a hand edit makes one) is left out: it only informs.
///
/// [`Reader::load`]: super::read::Reader::load
pub(super) fn labels(conn: &Connection) -> Result<Vec<(u64, DeviceLabel)>, ReadError> {
    let sql = ReadError::from_sqlite;
    let mut st = conn
        .prepare("SELECT id, label FROM device_keys WHERE label IS NOT NULL ORDER BY id")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, label) = row.map_err(sql)?;
        if let Ok(label) = DeviceLabel::new(&label) {
            out.push((u64::from_ne_bytes(id.to_ne_bytes()), label));
        }
    }
    Ok(out)
}

/// The notes kept for accounts put out of rooms while away (schema 19), per account (its name
/// as registered), oldest first. A row naming no account (only a hand edit makes one), or a
/// room that does not read, is left out: a note only informs.
#[allow(clippy::type_complexity)]
pub(super) fn away_notes(
    conn: &Connection,
) -> Result<Vec<(Nick, Vec<(RoomName, String)>)>, ReadError> {
    let sql = ReadError::from_sqlite;
    let mut st = conn
        .prepare(
            "SELECT a.display, n.room, n.words FROM away_notes n
             JOIN accounts a ON a.name = n.account ORDER BY n.account, n.pos",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out: Vec<(Nick, Vec<(RoomName, String)>)> = Vec::new();
    for row in rows {
        let (display, room, words) = row.map_err(sql)?;
        let (Ok(account), Ok(room)) = (Nick::new(&display), RoomName::new(&room)) else {
            continue;
        };
        match out.last_mut() {
            Some((a, notes)) if *a == account => notes.push((room, words)),
            _ => out.push((account, vec![(room, words)])),
        }
    }
    Ok(out)
}

/// Each account as the running server last held it (schema 20, `server_accounts`): what
/// [`Reader::load`] returns as `known`. A row that does not read (only a hand edit makes
/// one) is left out.
///
/// [`Reader::load`]: super::read::Reader::load
pub(super) fn known(conn: &Connection) -> Result<Vec<AccountRecord>, ReadError> {
    let sql = ReadError::from_sqlite;
    let mut st = conn
        .prepare("SELECT name, created, hash FROM server_accounts ORDER BY name")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, created, hash) = row.map_err(sql)?;
        if let (Ok(name), Ok(created)) = (Nick::new(&name), u64::try_from(created)) {
            out.push(AccountRecord {
                name,
                hash: PasswordHash(hash),
                created: Millis(created),
            });
        }
    }
    Ok(out)
}

fn corrupt(detail: impl Into<String>) -> ReadError {
    ReadError::Corrupt(detail.into())
}

fn unsigned(what: &str, v: i64) -> Result<u64, ReadError> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative {what} {v}")))
}

/// Every account with its rooms, read markers and keys, by folded name. Rows of other tables
/// that name no account (only a hand edit makes them) are left out.
pub(super) fn load(conn: &Connection) -> Result<Vec<LoadedAccount>, ReadError> {
    let sql = ReadError::from_sqlite;
    let mut accounts = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut st = conn
        .prepare("SELECT name, display, hash, created FROM accounts ORDER BY name")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (folded, display, hash, created) = row.map_err(sql)?;
        let name = Nick::new(&display).map_err(|e| corrupt(format!("account {display}: {e}")))?;
        if name.folded() != folded {
            return Err(corrupt(format!("account {display} is filed as {folded}")));
        }
        index.insert(folded, accounts.len());
        accounts.push(LoadedAccount {
            record: AccountRecord {
                name,
                hash: PasswordHash(hash),
                created: Millis(unsigned("time", created)?),
            },
            rooms: Vec::new(),
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        });
    }

    let mut st = conn
        .prepare("SELECT account, room FROM account_rooms ORDER BY account, pos")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql)?;
    for row in rows {
        let (account, room) = row.map_err(sql)?;
        if let Some(&i) = index.get(&account) {
            let room = RoomName::try_from(room)
                .map_err(|e| corrupt(format!("a room of account {account}: {e}")))?;
            accounts[i].rooms.push(room);
        }
    }

    let mut st = conn
        .prepare("SELECT account, room, seq FROM read_markers ORDER BY account, room")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (account, room, seq) = row.map_err(sql)?;
        if let Some(&i) = index.get(&account) {
            let room = RoomName::try_from(room)
                .map_err(|e| corrupt(format!("a read marker of account {account}: {e}")))?;
            accounts[i].read.push((room, Seq(unsigned("seq", seq)?)));
        }
    }

    let mut st = conn
        .prepare(
            "SELECT account, id, hash, created, used, door, address FROM device_keys
             ORDER BY account, created, id",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ),
                (
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ),
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let ((account, id, hash, created), (used, door, address)) = row.map_err(sql)?;
        if let Some(&i) = index.get(&account) {
            let hash = token_hash(&hash)
                .ok_or_else(|| corrupt(format!("a device key hash of account {account}")))?;
            // A use whose door or address does not read is kept as none: it only informs.
            let used = match (used, door.as_deref().and_then(door_of)) {
                (Some(at), Some(door)) => Some(DeviceUse {
                    at: Millis(unsigned("time", at)?),
                    door,
                    address: address.and_then(|a| a.parse().ok()),
                }),
                _ => None,
            };
            accounts[i].keys.push(KeyRecord {
                id: u64::from_ne_bytes(id.to_ne_bytes()),
                hash,
                created: Millis(unsigned("time", created)?),
                used,
            });
        }
    }

    let mut st = conn
        .prepare(
            "SELECT account, notice, sender, id, at, text FROM held_directs ORDER BY account, pos",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (account, notice, sender, id, at, text) = row.map_err(sql)?;
        if let Some(&i) = index.get(&account) {
            let a = &mut accounts[i];
            let bad =
                |e: InvalidName| corrupt(format!("a message kept for account {account}: {e}"));
            a.held.push(HeldDirect {
                msg: DirectMsg {
                    from: Nick::new(&sender).map_err(bad)?,
                    to: a.record.name.clone(),
                    id: MsgId(u64::from_ne_bytes(id.to_ne_bytes())),
                    at: Millis(unsigned("time", at)?),
                    text: Text::new(&text).map_err(bad)?,
                },
                notice,
            });
        }
    }
    Ok(accounts)
}

/// The operator's door to a store's accounts: what `natter-server account add|remove|list|passwd`
/// uses. It opens the store whether or not a server is running on it: SQLite orders its writes
/// against the server's (each waits up to five seconds for the other's transaction), and it
/// applies account writes only, which touch no table the server's writer caches. A running
/// server learns of them when it reloads its accounts.
///
/// With no server running it creates and upgrades the store like [`crate::SqliteStore::open`]
/// (holding the directory's lock while it does); with one running it refuses a store whose
/// schema is not this build's, rather than upgrade it under the server.
pub struct AccountStore {
    conn: Connection,
    path: PathBuf,
}

impl AccountStore {
    /// Opens the store in `config.dir` for account writes.
    pub fn open(config: &Config) -> Result<AccountStore, OpenError> {
        let dir = &config.dir;
        crate::config::create_data_dir(dir)?;
        let path = config.db_path();
        let conn = match DirLock::take(&dir.join(LOCK_FILE)) {
            // Nobody else has it: open it as a server would (creating or upgrading it), then
            // let the lock go so a server can start while this runs.
            Ok(_lock) => {
                super::seqmarks::refuse_emptied(dir, &path)?;
                let conn = schema::open_writer(&path).map_err(|e| schema::with_log(&path, e))?;
                schema::fold_on_close(&conn, &path)?;
                conn
            }
            Err(OpenError::Locked { .. }) => schema::open_beside(&path)?,
            Err(e) => return Err(e),
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| schema::open_error(&path, e))?;
        Ok(AccountStore { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every account, with its rooms, read markers and device keys.
    pub fn accounts(&mut self) -> Result<Vec<LoadedAccount>, ReadError> {
        let tx = self.conn.transaction().map_err(ReadError::from_sqlite)?;
        load(&tx)
    }

    /// The newest `limit` lines of the moderation audit log (of `room` only, if given),
    /// oldest first.
    pub fn audit(
        &mut self,
        room: Option<&natter_core::RoomName>,
        limit: usize,
    ) -> Result<Vec<natter_core::persist::AuditRecord>, ReadError> {
        super::policies::audit(&self.conn, room, limit)
    }

    /// The account named `name` (in any case), if there is one.
    pub fn account(&mut self, name: &Nick) -> Result<Option<AccountRecord>, ReadError> {
        let found: Option<(String, String, i64)> = self
            .conn
            .query_row(
                "SELECT display, hash, created FROM accounts WHERE name = ?1",
                [name.folded()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(ReadError::from_sqlite)?;
        found
            .map(|(display, hash, created)| {
                Ok(AccountRecord {
                    name: Nick::new(&display)
                        .map_err(|e| corrupt(format!("account {display}: {e}")))?,
                    hash: PasswordHash(hash),
                    created: Millis(unsigned("time", created)?),
                })
            })
            .transpose()
    }

    /// Stores `batch`, which may hold account writes only, in one transaction: all of it, or
    /// (on error) nothing.
    pub fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(WriteError::from_sqlite)?;
        for write in &batch.writes {
            if !apply(&tx, write, By::Operator, &mut Vec::new())? {
                return Err(WriteError::Storage(format!(
                    "not an account write: {write:?}"
                )));
            }
        }
        tx.commit().map_err(WriteError::from_sqlite)
    }
}
