//! Rooms' settings (`room_policies`): written whole on every change, read at start-up; and the
//! moderation audit log (`audit`), read by `natter-server audit`.

use crate::{ReadError, WriteError};
use natter_core::RoomName;
use natter_core::moderation::{Entry, Policy, v1};
use natter_core::persist::Write;
use rusqlite::Connection;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The layout of the blobs this build writes (the `format` column, see
/// `migrations/008_ban_times.sql`): entries with the time they were set.
const FORMAT: i64 = 2;

/// A `format` 1 or 2 blob of `T`, whose layout 1 is `Old`, as `T`.
fn decode<T, Old>(blob: &[u8], format: i64, what: &str) -> Result<T, ReadError>
where
    T: serde::de::DeserializeOwned,
    Old: serde::de::DeserializeOwned + Into<T>,
{
    let bad = |e: bincode::error::DecodeError| ReadError::Corrupt(format!("{what}: {e}"));
    match format {
        1 => bincode::serde::decode_from_slice::<Old, _>(blob, config())
            .map(|(v, _)| v.into())
            .map_err(bad),
        FORMAT => bincode::serde::decode_from_slice::<T, _>(blob, config())
            .map(|(v, _)| v)
            .map_err(bad),
        other => Err(ReadError::Corrupt(format!(
            "{what}: unknown layout {other}"
        ))),
    }
}

/// Applies `write` inside the open transaction `tx` if it is a room-settings write; `Ok(false)`
/// if it is not one.
pub(super) fn apply(tx: &Connection, write: &Write) -> Result<bool, WriteError> {
    let sql = WriteError::from_sqlite;
    if let Write::Audit(a) = write {
        let at = super::codec::int("time", a.at.0)?;
        tx.prepare_cached("INSERT INTO audit (at, room, actor, action) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| {
                st.execute(rusqlite::params![
                    at,
                    a.room.as_ref().map(RoomName::as_str),
                    a.actor.as_str(),
                    a.action
                ])
            })
            .map_err(sql)?;
        return Ok(true);
    }
    if let Write::ServerBans(bans) = write {
        let blob = bincode::serde::encode_to_vec(bans, config())
            .map_err(|e| WriteError::Storage(format!("server bans: {e}")))?;
        tx.prepare_cached(
            "INSERT INTO server_bans (id, bans, format) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET bans = excluded.bans, format = excluded.format",
        )
        .and_then(|mut st| st.execute(rusqlite::params![blob, FORMAT]))
        .map_err(sql)?;
        return Ok(true);
    }
    let Write::RoomPolicy { room, policy } = write else {
        return Ok(false);
    };
    match policy {
        Some(p) => {
            let blob = bincode::serde::encode_to_vec(p, config())
                .map_err(|e| WriteError::Storage(format!("room settings of {room}: {e}")))?;
            tx.prepare_cached(
                "INSERT INTO room_policies (room, policy, format) VALUES (?1, ?2, ?3)
                 ON CONFLICT (room) DO UPDATE SET policy = excluded.policy, format = excluded.format",
            )
            .and_then(|mut st| st.execute(rusqlite::params![room.as_str(), blob, FORMAT]))
            .map_err(sql)?;
        }
        None => {
            tx.prepare_cached("DELETE FROM room_policies WHERE room = ?1")
                .and_then(|mut st| st.execute([room.as_str()]))
                .map_err(sql)?;
        }
    }
    Ok(true)
}

/// Every room's settings. A row that does not decode is reported as damage.
pub(super) fn load(conn: &Connection) -> Result<Vec<(RoomName, Policy)>, ReadError> {
    let mut st = conn
        .prepare("SELECT room, policy, format FROM room_policies ORDER BY room")
        .map_err(ReadError::from_sqlite)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(ReadError::from_sqlite)?;
    let mut out = Vec::new();
    for row in rows {
        let (room, blob, format) = row.map_err(ReadError::from_sqlite)?;
        let name = RoomName::new(&room)
            .map_err(|e| ReadError::Corrupt(format!("room settings of {room:?}: {e}")))?;
        let what = format!("room settings of {room}");
        let policy = decode::<Policy, v1::Policy>(&blob, format, &what)?;
        out.push((name, policy));
    }
    Ok(out)
}

/// The newest `limit` lines of the audit log (of `room` only, if given), oldest first.
pub(super) fn audit(
    conn: &Connection,
    room: Option<&RoomName>,
    limit: usize,
) -> Result<Vec<natter_core::persist::AuditRecord>, ReadError> {
    use natter_core::{Millis, Nick};
    let mut st = conn
        .prepare(
            "SELECT at, room, actor, action FROM audit
             WHERE ?1 IS NULL OR room = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(ReadError::from_sqlite)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = st
        .query_map(rusqlite::params![room.map(RoomName::as_str), limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(ReadError::from_sqlite)?;
    let mut out = Vec::new();
    for row in rows {
        let (at, room, actor, action) = row.map_err(ReadError::from_sqlite)?;
        let bad = |e: &dyn std::fmt::Display| ReadError::Corrupt(format!("audit line: {e}"));
        out.push(natter_core::persist::AuditRecord {
            at: Millis(u64::try_from(at).map_err(|e| bad(&e))?),
            room: room
                .map(|r| RoomName::new(&r))
                .transpose()
                .map_err(|e| bad(&e))?,
            actor: Nick::new(&actor).map_err(|e| bad(&e))?,
            action,
        });
    }
    out.reverse();
    Ok(out)
}

/// The server-wide bans (none if never set).
pub(super) fn server_bans(
    conn: &Connection,
) -> Result<Vec<natter_core::moderation::Entry>, ReadError> {
    use rusqlite::OptionalExtension;
    let row: Option<(Vec<u8>, i64)> = conn
        .query_row(
            "SELECT bans, format FROM server_bans WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(ReadError::from_sqlite)?;
    let Some((blob, format)) = row else {
        return Ok(Vec::new());
    };
    let old: Vec<v1::Entry> = match format {
        1 => decode::<Vec<v1::Entry>, Vec<v1::Entry>>(&blob, 1, "server bans")?,
        _ => return decode::<Vec<Entry>, Vec<Entry>>(&blob, format, "server bans"),
    };
    Ok(old.into_iter().map(Into::into).collect())
}
