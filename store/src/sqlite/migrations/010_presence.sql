-- Schema 10: who is in each room (the hub's `Write::Presence`), so a restarted server knows
-- who was there when it stopped, gracefully or killed: an IRC client that comes back kept the
-- room's window through the restart, and its join then replays only what came after it. A
-- member who said nothing for long (its join is older than the events loaded at start) or any
-- member of a big room (whose joins are not events) is known only from here.
--
-- One row per member: the room's name, the nick's folded form (the key, as the hub compares
-- nicks), and the nick as it is written. Written in the same transaction as the events beside
-- it. A restarted hub's first batch empties it (`Write::PresenceReset`) and writes whom it took
-- back into its rooms, so it never holds more than the rooms' members.
CREATE TABLE presence (
    room     TEXT NOT NULL,
    nick_key TEXT NOT NULL,
    nick     TEXT NOT NULL,
    PRIMARY KEY (room, nick_key)
) WITHOUT ROWID;
