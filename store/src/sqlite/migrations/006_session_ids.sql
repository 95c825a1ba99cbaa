-- Schema 6: a session's last message id moves with nearly every message, so it is no longer
-- updated in place in every commit (one `UPDATE` of `sessions` per sender per commit). A commit
-- appends one row here instead, holding the last id and time of every session it moved: `ids`
-- is a run of 48-byte entries (the token hash, 32 bytes; the last id and the time, each a
-- little-endian 64-bit integer), later rows and later entries winning. The writer folds the
-- rows into `sessions` from time to time, before any other write to `sessions`, and when the
-- store opens; a reader applies the rows not folded yet on top of `sessions`.
CREATE TABLE session_ids (
    id  INTEGER PRIMARY KEY,
    ids BLOB NOT NULL
);

-- Also from this step on, a commit no longer writes `rooms.last_seq`: it is a floor, raised to a
-- room's highest stored seq by retention before it removes events, and a reader takes the larger
-- of it and the highest seq in `events` (one index lookup per room). Older builds, which take the
-- column alone, must not open such a store: hence a step of its own.
