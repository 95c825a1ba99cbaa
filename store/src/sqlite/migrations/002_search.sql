-- Schema 2: full-text search over chat lines (says and actions), newest first by event id.
-- The index holds no copy of the text (it reads it from `events` when it must), and is filled
-- here from the events already stored. Its `room` column holds the room's id as a word, so a
-- search in one room is an intersection of two word lists inside the index, not a walk over
-- every match in every room.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    room,
    content = 'events',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO events_fts (rowid, text, room) SELECT id, text, room FROM events WHERE kind IN (0, 1);
