-- Schema 14: whether a resume session took a message with id 0 (natter-core's
-- `SessionRecord::took_zero`). A client may count its message ids from 0, and `last_id` 0 is
-- also what a session that took nothing yet has: without this, a resend of that first message
-- after a restart was taken again, delivered twice. 0 in every row written before (as those
-- servers forgot it).
ALTER TABLE sessions ADD COLUMN took_zero INTEGER NOT NULL DEFAULT 0;
