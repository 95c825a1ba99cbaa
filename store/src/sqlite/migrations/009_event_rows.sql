-- Schema 9: several events per row. A commit of ~100 events of one room wrote ~100 rows of
-- `events` and as many entries of `events_by_id` (B-tree inserts, records, and the pages they
-- touch); it now writes one row per room (and run of consecutive seqs) per commit, holding
-- the events packed. Readers pick their events out of a row (`json_each`, or `->` by position).
--
-- A row: `seq` and `id` are its first event's seq and insertion id; the row's `n` events have
-- the seqs `seq .. seq + n - 1` and the ids `id .. id + n - 1` (a row never holds a gap in
-- either), `n` at most 256 (`ROW_EVENTS` in `sqlite/write.rs`). `at` is the newest event's time
-- (what retention looks at: a row goes as a whole, once its newest event is past
-- `max_age_days`). `frames` is a JSON array with one `[at, nick, kind, msg_id, text]` per
-- event, in seq order (the columns of schema 8's rows, `null` where those were NULL). `ends`
-- says where each frame ends in `frames` (a little-endian 32-bit byte offset per event), so a
-- reader picks one event out without scanning the row; NULL in the rows this step rewrites
-- (readers then scan `frames`).
ALTER TABLE events RENAME TO events_v8;
DROP INDEX events_by_id;
CREATE TABLE events (
    room   INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    id     INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    frames TEXT NOT NULL,
    ends   BLOB,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_by_id ON events (id);

-- The events of schema 8, rewritten once, in one pass over them in (room, seq) order: a run
-- of a room's events whose seqs and ids both follow one by one becomes one row (at most 256
-- events), anything else starts a new row.
INSERT INTO events (room, seq, n, id, at, frames)
SELECT room, min(seq), count(*), min(id), max(at),
       json_group_array(json_array(at, nick, kind, msg_id, text) ORDER BY seq)
FROM (
    SELECT *, (row_number() OVER (PARTITION BY room, run ORDER BY seq) - 1) / 256 AS part
    FROM (
        SELECT *, sum(brk) OVER (PARTITION BY room ORDER BY seq ROWS UNBOUNDED PRECEDING) AS run
        FROM (
            SELECT room, seq, id, at, nick, kind, msg_id, text,
                   CASE WHEN seq = 1 + lag(seq) OVER w AND id = 1 + lag(id) OVER w
                        THEN 0 ELSE 1 END AS brk
            FROM events_v8
            WINDOW w AS (PARTITION BY room ORDER BY seq)
        )
    )
)
GROUP BY room, run, part;
DROP TABLE events_v8;
