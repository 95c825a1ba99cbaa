-- Schema 1: rooms, their events, and resume sessions.

-- A room and what is derived from its events: its topic, and the highest seq ever stored
-- (kept when retention removes events, so a room's seqs never restart).
CREATE TABLE rooms (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    topic    TEXT,
    last_seq INTEGER NOT NULL
);

-- One row per room event. `id` is the insertion order, so the smallest ids are the oldest
-- events (what retention removes first) and the largest the newest (what search returns first).
-- kind: 0 say, 1 act, 2 join, 3 part, 4 quit, 5 nick, 6 topic.
-- msg_id: the sender's message id (say, act). text: the text (say, act), the reason (part,
-- quit), the new nick (nick) or the topic (topic; NULL when cleared).
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    room   INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    nick   TEXT NOT NULL,
    kind   INTEGER NOT NULL,
    msg_id INTEGER,
    text   TEXT
);
CREATE UNIQUE INDEX events_by_room_seq ON events (room, seq);

-- Resume sessions, keyed by the SHA-256 of the resume token (never the token).
-- rooms: the room names, separated by spaces.
CREATE TABLE sessions (
    token   BLOB PRIMARY KEY,
    nick    TEXT NOT NULL,
    rooms   TEXT NOT NULL,
    last_id INTEGER NOT NULL,
    updated INTEGER NOT NULL
) WITHOUT ROWID;
