-- Schema 20: each account as the running server last held it, by its folded name: the time it
-- was registered and its password's hash (the `accounts` row the server last read or wrote).
-- An account is its registration, not its name: `natter-server account remove alice` then
-- `account add alice` makes another account, registered at another time.
--
-- What the server writes of an account (its rooms, read markers, device keys, kept messages,
-- notes, a password change) is applied only while the `accounts` row is still the one held
-- here: once the operator removed the account, added the name again, or set its password, the
-- server's writes of it land nowhere until it reads the accounts again (its reload, or a
-- start), so they never reach another registration of the name and never undo the operator's
-- change. The rooms' founders, operators and voices name accounts by name: a start that finds
-- a name here held at another registration time than its `accounts` row lifts them (the rights
-- were the old account's). The row stays when the account is removed, its hash emptied, so
-- that the server's write of the removed account (a registration or password change not yet
-- stored, written again) does not make it again.
--
-- Filled here with every account as it is: a store of an older schema cannot tell which of
-- its accounts were removed and added again while the server was stopped.
CREATE TABLE IF NOT EXISTS server_accounts (
    name    TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    hash    TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO server_accounts (name, created, hash) SELECT name, created, hash FROM accounts;
