-- Schema v9: a deleted key cannot come back (PostgreSQL: schema v5).
--
-- Deleting a key leaves its hash in `key_tombstones` (nothing else of the
-- key): an import of that key, by plaintext or by hash, is refused until
-- an operator lifts the tombstone (`lift_tombstone`, audited). A revoked
-- key keeps its row, which refuses the import by itself.
--
-- `legacy_ids` ties an imported key to the old system's record it came
-- from: one irontoken key per old record, ever (the claim outlives the
-- key, and goes with its tombstone). Without it a lenient old check (bcrypt
-- reads 72 bytes) turns one old key into many.
CREATE TABLE key_tombstones (
    key_hash   BLOB    PRIMARY KEY CHECK (length(key_hash) = 32),
    deleted_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE legacy_ids (
    legacy_id   TEXT    PRIMARY KEY CHECK (length(legacy_id) BETWEEN 1 AND 256),
    key_hash    BLOB    NOT NULL CHECK (length(key_hash) = 32),
    imported_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX legacy_ids_hash ON legacy_ids (key_hash);

-- The audit trail gains `key.tombstone_lift` (rebuilt as in v3).
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
ALTER TABLE audit_log RENAME TO audit_log_v8;
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
                       'key.create', 'key.update', 'key.disable', 'key.enable',
                       'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
                       'key.tombstone_lift',
                       'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
                       'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
                       'agent_token.issue', 'agent_token.revoke')),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO audit_log SELECT * FROM audit_log_v8;
DROP TABLE audit_log_v8;
CREATE INDEX audit_log_key ON audit_log (key_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
