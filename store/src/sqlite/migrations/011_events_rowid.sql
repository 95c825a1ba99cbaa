-- Schema 11: `events` keyed by its integer `id` (a rowid table), its (room, seq) in an index.
-- A WITHOUT ROWID table keeps whole rows in its B-tree's cells, interior ones included, and a
-- seek compares the key with whole records: a row of a commit's events (~10 KB at 100 events)
-- spills onto overflow pages, and every comparison on the way read them back (at 50 clients
-- the writer read 17,000 pages a second of rows it had just written, and copied them: a third of
-- its CPU). SQLite's own advice is WITHOUT ROWID only for rows under about 1/20 of a page. Now a
-- seek compares integers (`id`) or a small index entry (room, seq, id), and a row's pages are
-- read only when the row itself is.
ALTER TABLE events RENAME TO events_v10;
DROP INDEX events_by_id;
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    room   INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    frames TEXT NOT NULL,
    ends   BLOB
);
INSERT INTO events (id, room, seq, n, at, frames, ends)
SELECT id, room, seq, n, at, frames, ends FROM events_v10 ORDER BY id;
DROP TABLE events_v10;
CREATE UNIQUE INDEX events_by_seq ON events (room, seq);
