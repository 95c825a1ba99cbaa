-- Schema 13: direct messages kept for an account that had nothing connected when they came,
-- until it signs in again (natter-core's `Write::HeldDirects`, at most 100 per account). The
-- hub writes an account's whole list each time it changes (one more kept, or none once
-- delivered): rows of the account are replaced in the writer's transaction.
--
-- account: the folded name. pos: the order they came (from 0). notice: 1 for a direct notice.
-- sender: the sender's nick as it was. id: the sender's message id. at: Unix milliseconds,
-- when it was sent. text: the message.
CREATE TABLE IF NOT EXISTS held_directs (
    account TEXT NOT NULL,
    pos     INTEGER NOT NULL,
    notice  INTEGER NOT NULL,
    sender  TEXT NOT NULL,
    id      INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (account, pos)
) WITHOUT ROWID;
