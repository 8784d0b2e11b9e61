-- PostgreSQL schema v5: a deleted key cannot come back (SQLite: schema v9).
--
-- Deleting a key leaves its hash in `key_tombstones` (nothing else of the
-- key): an import of that key, by plaintext or by hash, is refused until
-- an operator lifts the tombstone (`lift_tombstone`, audited). A revoked
-- key keeps its row, which refuses the import by itself.
--
-- `legacy_ids` ties an imported key to the old system's record it came
-- from: one irontoken key per old record, ever (the claim outlives the
-- key, and goes with its tombstone).
CREATE TABLE key_tombstones (
    key_hash   bytea  PRIMARY KEY CHECK (length(key_hash) = 32),
    deleted_at bigint NOT NULL
);

CREATE TABLE legacy_ids (
    legacy_id   text   PRIMARY KEY CHECK (length(legacy_id) BETWEEN 1 AND 256),
    key_hash    bytea  NOT NULL CHECK (length(key_hash) = 32),
    imported_at bigint NOT NULL
);
CREATE INDEX legacy_ids_hash ON legacy_ids (key_hash);

-- The audit trail gains `key.tombstone_lift`.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'key.create', 'key.update', 'key.disable', 'key.enable',
    'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
    'key.tombstone_lift',
    'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
    'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
    'agent_token.issue', 'agent_token.revoke'));
