-- Schema 15: the rooms a resume session's user left while its client may not have heard it
-- (natter-core's `SessionRecord::put_out`), space-separated like `rooms`: its resume after a
-- restart replays what put it out (who, why) instead of a bare `Parted`. Empty in every row
-- written before (as those servers forgot it).
ALTER TABLE sessions ADD COLUMN put_out TEXT NOT NULL DEFAULT '';
