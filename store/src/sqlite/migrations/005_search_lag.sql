-- Schema 5: the search index may lag behind the events. The writer of a running server indexes
-- chat lines in transactions of their own, behind the commits that store them (`events` is the
-- durable record); `indexed` is the event id up to which every say and action is in
-- `events_fts`. Opening the store indexes whatever is stored past it. Everything stored before
-- this step was indexed with its commit.
CREATE TABLE search_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    indexed INTEGER NOT NULL
);
INSERT INTO search_state (id, indexed) SELECT 1, coalesce(max(id), 0) FROM events;
