-- Schema v11 (issue 33): the key-state epoch.
--
-- Verification keeps key states in memory and needs to know, on every
-- call, whether any of them changed since it read them. Before v11 it
-- answered that by searching the 100 MB key-state index on every call. Now
-- every change of a key's state bumps one counter, `key_epoch.epoch`, in
-- the same transaction, and logs which key changed in `key_changes`: a
-- process whose cached states were read at epoch E re-reads only the keys
-- logged after E. Triggers do both, so every writer (any process, any
-- version at this schema, the sqlite3 shell) keeps the rule.
CREATE TABLE key_epoch (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    epoch INTEGER NOT NULL CHECK (epoch >= 0)
);
INSERT INTO key_epoch (one, epoch) VALUES (1, 0);

-- One row per state change: the epoch it made and the key's hash. Only
-- the last 65 536 are kept; a reader further behind forgets every state.
CREATE TABLE key_changes (
    epoch    INTEGER PRIMARY KEY,
    key_hash BLOB NOT NULL
);

-- Every change that moves the revision (the record cache's check) is a
-- state change; rotation_period joins the list.
DROP TRIGGER api_keys_revision;
CREATE TRIGGER api_keys_revision AFTER UPDATE OF
    owner, name, description, scopes, metadata, expires_at, enabled, revoked_at,
    revoked_reason, version, rotated_from, rotated_to, prefix, display_prefix, key_hash,
    rate_limits, rotation_period
ON api_keys
BEGIN
    UPDATE api_keys SET revision = OLD.revision + 1 WHERE seq = NEW.seq;
    UPDATE key_epoch SET epoch = epoch + 1 WHERE one = 1;
    INSERT INTO key_changes (epoch, key_hash) SELECT epoch, OLD.key_hash FROM key_epoch;
    INSERT INTO key_changes (epoch, key_hash)
        SELECT epoch + 1, NEW.key_hash FROM key_epoch WHERE NEW.key_hash IS NOT OLD.key_hash;
    UPDATE key_epoch SET epoch = epoch + 1 WHERE NEW.key_hash IS NOT OLD.key_hash;
    DELETE FROM key_changes WHERE epoch <= (SELECT epoch FROM key_epoch) - 65536;
END;

CREATE TRIGGER api_keys_epoch_delete AFTER DELETE ON api_keys
BEGIN
    UPDATE key_epoch SET epoch = epoch + 1 WHERE one = 1;
    INSERT INTO key_changes (epoch, key_hash) SELECT epoch, OLD.key_hash FROM key_epoch;
    DELETE FROM key_changes WHERE epoch <= (SELECT epoch FROM key_epoch) - 65536;
END;

-- Verification finds a key by its hash through the UNIQUE index on
-- key_hash (and its state in the cached row); the covering state index
-- was read on every call and is no longer needed. One index fewer for
-- every key created.
DROP INDEX api_keys_state;
