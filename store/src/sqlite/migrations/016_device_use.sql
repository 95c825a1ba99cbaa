-- Schema 16: a device key's last use, for `/devices` (natter-core's `KeyRecord::used`): when
-- it last signed in or its device's session resumed (Unix milliseconds), through which door
-- (`client`, `page`, `text`, `irc`) and from which address as the server saw it (as text; NULL
-- when it knew none). All NULL in rows written before (those servers kept no use) and for a key
-- not used since.
ALTER TABLE device_keys ADD COLUMN used INTEGER;
ALTER TABLE device_keys ADD COLUMN door TEXT;
ALTER TABLE device_keys ADD COLUMN address TEXT;
