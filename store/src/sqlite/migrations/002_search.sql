-- Schema 2: full-text search over chat lines (says and actions), newest first by event id.
-- The index holds no copy of the text (it reads it from `events` when it must), and is filled
-- here from the events already stored.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    content = 'events',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO events_fts (rowid, text) SELECT id, text FROM events WHERE kind IN (0, 1);
