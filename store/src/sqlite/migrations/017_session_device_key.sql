-- Schema 17: the id of the device key a resume session's device holds (natter-core's
-- `SessionRecord::device_key`), so that a restarted server still knows which session
-- `/devices forget` must end. NULL in rows written before and for a device holding none.
ALTER TABLE sessions ADD COLUMN device_key INTEGER;
