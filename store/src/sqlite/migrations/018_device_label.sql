-- Schema 18: what a remembered device is called (natter-core's `Write::KeyLabel`, shown by
-- `/devices`): the label its client gave when the key was issued, or one given later with
-- `/devices name`. NULL in rows written before and for a device that gave none.
ALTER TABLE device_keys ADD COLUMN label TEXT;
