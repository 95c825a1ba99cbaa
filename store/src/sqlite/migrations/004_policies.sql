-- Rooms' settings (founder, operators, voices, modes, bans, mutes), one row per room that has
-- any, as natter-core's `moderation::Policy` in bincode (standard config). A registered room
-- outlives its members, so its row outlives them too.
CREATE TABLE room_policies (
    room   TEXT PRIMARY KEY,
    policy BLOB NOT NULL
) WITHOUT ROWID;

-- The moderation audit log: what operators and admins did, oldest first by id.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    room   TEXT,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL
);
