//! Rooms' settings (`room_policies`): written whole on every change, read at start-up.

use crate::{ReadError, WriteError};
use natter_core::RoomName;
use natter_core::moderation::Policy;
use natter_core::persist::Write;
use rusqlite::Connection;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Applies `write` inside the open transaction `tx` if it is a room-settings write; `Ok(false)`
/// if it is not one.
pub(super) fn apply(tx: &Connection, write: &Write) -> Result<bool, WriteError> {
    let sql = WriteError::from_sqlite;
    let Write::RoomPolicy { room, policy } = write else {
        return Ok(false);
    };
    match policy {
        Some(p) => {
            let blob = bincode::serde::encode_to_vec(p, config())
                .map_err(|e| WriteError::Storage(format!("room settings of {room}: {e}")))?;
            tx.prepare_cached(
                "INSERT INTO room_policies (room, policy) VALUES (?1, ?2)
                 ON CONFLICT (room) DO UPDATE SET policy = excluded.policy",
            )
            .and_then(|mut st| st.execute(rusqlite::params![room.as_str(), blob]))
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
        .prepare("SELECT room, policy FROM room_policies ORDER BY room")
        .map_err(ReadError::from_sqlite)?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(ReadError::from_sqlite)?;
    let mut out = Vec::new();
    for row in rows {
        let (room, blob) = row.map_err(ReadError::from_sqlite)?;
        let name = RoomName::new(&room)
            .map_err(|e| ReadError::Corrupt(format!("room settings of {room:?}: {e}")))?;
        let (policy, _) = bincode::serde::decode_from_slice::<Policy, _>(&blob, config())
            .map_err(|e| ReadError::Corrupt(format!("room settings of {room}: {e}")))?;
        out.push((name, policy));
    }
    Ok(out)
}
