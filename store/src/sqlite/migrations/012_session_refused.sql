-- Schema 12: a session's refused messages (natter-core's `SessionRecord::refused`): the ids of
-- messages the server refused (not in the room, muted, not stored, ...) and how, so that a
-- client resending one after a restart (it never heard the refusal: its connection dropped
-- first) is refused again, not told it was delivered because a later message of its was taken.
-- bincode of `Vec<(MsgId, ErrorKind)>` (the wire's encoding, whose numbering PROTOCOL.md fixes);
-- NULL when there are none, as in every row written before this step.
ALTER TABLE sessions ADD COLUMN refused BLOB;
