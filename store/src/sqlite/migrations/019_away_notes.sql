-- Schema 19: the notes kept for an always-on account put out of rooms while nothing of it was
-- connected (kicked, banned, the room closed), told at its next sign-in (natter-core's
-- `Write::AwayNotes`, at most one per room and 100 per account). The hub writes an account's
-- whole list each time it changes (one more kept, or fewer once told): rows of the account are
-- replaced in the writer's transaction, and go with the account (`DropAccount`).
--
-- account: the folded name. room: the room it was put out of. pos: the order they came (from
-- 0). words: what it is told ("while you were away, alice put you out of #r (spam)").
CREATE TABLE IF NOT EXISTS away_notes (
    account TEXT NOT NULL,
    room    TEXT NOT NULL,
    pos     INTEGER NOT NULL,
    words   TEXT NOT NULL,
    PRIMARY KEY (account, room)
) WITHOUT ROWID;
