-- Schema 12: more of a resume session survives a restart (natter-core's `SessionRecord`).
--
-- `refused`: the ids of messages the server refused (not in the room, muted, not stored, ...)
-- and how, so that a client resending one after a restart (it never heard the refusal: its
-- connection dropped first) is refused again, not told it was delivered because a later
-- message of its was taken. bincode of `Vec<(MsgId, ErrorKind)>` (the wire's encoding, whose
-- numbering PROTOCOL.md fixes); NULL when there are none, as in every row written before.
--
-- `prev_id`, `prev_token`: the token before this one (its id, and the SHA-256 of its secret,
-- never the secret), while the client may not have received this one (a resume's welcome not
-- yet answered): a kill right after the resume leaves the client holding it, and it still
-- opens the session. NULL once the client showed it has the new token.
ALTER TABLE sessions ADD COLUMN refused BLOB;
ALTER TABLE sessions ADD COLUMN prev_id INTEGER;
ALTER TABLE sessions ADD COLUMN prev_token BLOB;
