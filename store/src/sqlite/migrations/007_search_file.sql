-- Schema 7: the search index moves out of this file into `search.db` beside it, a derived
-- cache written by a connection (and, in a server, a thread) of its own with its own write-ahead
-- log, so a commit of events never waits behind an index step or its checkpoints (see
-- `sqlite/index.rs`). The index here is dropped; the new file is built from `events` in the
-- background after this step. `store_identity` tells the index file which store it belongs to
-- (an index file of another store is rebuilt, never used).
DROP TABLE events_fts;
DROP TABLE search_state;
CREATE TABLE store_identity (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    uid BLOB NOT NULL
);
INSERT INTO store_identity (id, uid) VALUES (1, randomblob(16));
