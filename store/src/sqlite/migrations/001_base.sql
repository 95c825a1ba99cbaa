-- Schema 1: rooms, their events, and resume sessions.

-- A room and what is derived from its events: its topic, and the highest seq ever stored
-- (kept when retention removes events, so a room's seqs never restart).
CREATE TABLE rooms (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    topic    TEXT,
    last_seq INTEGER NOT NULL
);

-- One row per room event, kept in (room, seq) order: a room's history is contiguous on disk, so
-- a page of it, or a room's newest events at startup, is a few page reads even when nothing is
-- cached. `id` numbers events in the order they were stored: the smallest are the oldest (what
-- retention removes first), the largest the newest (what search returns first).
-- kind: 0 say, 1 act, 2 join, 3 part, 4 quit, 5 nick, 6 topic.
-- msg_id: the sender's message id (say, act). text: the text (say, act), the reason (part,
-- quit), the new nick (nick) or the topic (topic; NULL when cleared).
CREATE TABLE events (
    room   INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    id     INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    nick   TEXT NOT NULL,
    kind   INTEGER NOT NULL,
    msg_id INTEGER,
    text   TEXT,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_by_id ON events (id);

-- Resume sessions, keyed by the SHA-256 of the resume token's secret (never the token).
-- token_id: the token's id (not secret; the 64 bits stored as a signed integer), which a resume
-- names. rooms: the room names, separated by spaces.
CREATE TABLE sessions (
    token    BLOB PRIMARY KEY,
    token_id INTEGER NOT NULL,
    nick    TEXT NOT NULL,
    rooms   TEXT NOT NULL,
    last_id INTEGER NOT NULL,
    updated INTEGER NOT NULL
) WITHOUT ROWID;
