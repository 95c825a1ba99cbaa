-- Schema 3: accounts, the rooms they stay in, their read markers and their device keys. An
-- account is named by its folded name (the nick in ASCII lower case, so `Alice` and `alice` are
-- one account); every other table refers to it by that. No passwords, keys or tokens in clear.

-- name: the folded name (the key). display: the name as registered. hash: the password's
-- argon2id hash as a PHC string. created: Unix milliseconds.
CREATE TABLE accounts (
    name    TEXT PRIMARY KEY,
    display TEXT NOT NULL,
    hash    TEXT NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;

-- The rooms an account is in, in the order the hub gave them (pos from 0).
CREATE TABLE account_rooms (
    account TEXT NOT NULL,
    pos     INTEGER NOT NULL,
    room    TEXT NOT NULL,
    PRIMARY KEY (account, pos)
) WITHOUT ROWID;

-- The newest seq an account has read in a room (only ever raised).
CREATE TABLE read_markers (
    account TEXT NOT NULL,
    room    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (account, room)
) WITHOUT ROWID;

-- Device keys: the id (not secret; its 64 bits stored as a signed integer) and the SHA-256 of
-- the key's secret (never the key). created: Unix milliseconds.
CREATE TABLE device_keys (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    hash    BLOB NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX device_keys_by_account ON device_keys (account);
