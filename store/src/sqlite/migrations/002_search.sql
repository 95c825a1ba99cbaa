-- Schema 2: full-text search over chat lines (says and actions). The index's rowid is the
-- event's id, so it is walked newest first without a sort; its `room` column holds the room's
-- id as a word, so a search in one room is an intersection of two word lists inside the index.
-- It holds no copy of the text (`content = ''`): results are read from `events` by id, and a
-- removal passes the removed text back in ('delete'). Nor does it keep each line's length in
-- words (`columnsize = 0`), which only ranking by relevance needs: results are newest first.
-- Filled here from the events already stored.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    room,
    content = '',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO events_fts (rowid, text, room) SELECT id, text, room FROM events WHERE kind IN (0, 1);
