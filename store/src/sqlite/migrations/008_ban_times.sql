-- Schema 8: a ban or mute records when it was set (natter-core's `moderation::Entry` gained
-- `at`, which IRC's 367 shows). The blobs of `room_policies` and `server_bans` are bincode, so
-- each row says which layout it holds: 1, what schema 4 to 7 wrote (entries without `at`, read
-- back with `at` unknown, 0); 2, entries with `at`. Rows are rewritten in layout 2 when their
-- room's settings or the server's bans next change.
ALTER TABLE room_policies ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE server_bans ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
