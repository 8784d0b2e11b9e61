-- Schema v12 (issue 34): capability tokens (Biscuit) for agents and tools
-- (PostgreSQL: schema v7).
--
-- `capability_roots` holds the Ed25519 root keys that sign capability
-- tokens, sealed under the master key like `signing_keys` (AES-256-GCM,
-- the kid bound in); `seq` is the token's root key id. At most one is
-- active; a rotated one verifies until `verify_until`.
CREATE TABLE capability_roots (
    seq          INTEGER PRIMARY KEY,
    kid          TEXT    NOT NULL UNIQUE CHECK (length(kid) BETWEEN 1 AND 128),
    status       TEXT    NOT NULL CHECK (status IN ('active', 'verify_only', 'retired')),
    public_key   TEXT    NOT NULL CHECK (length(public_key) = 72),
    private_enc  BLOB    NOT NULL CHECK (length(private_enc) > 28),
    created_at   INTEGER NOT NULL,
    verify_until INTEGER,
    retired_at   INTEGER,
    CHECK (status != 'verify_only' OR verify_until IS NOT NULL)
);
CREATE UNIQUE INDEX capability_roots_one_active ON capability_roots (status)
    WHERE status = 'active';

-- A revoked block (its revocation id: the block's signature). A token is
-- refused when any block of its chain is here, so revoking a token refuses
-- every token attenuated from it.
CREATE TABLE capability_revocations (
    revocation_id BLOB    PRIMARY KEY CHECK (length(revocation_id) BETWEEN 1 AND 128),
    revoked_at    INTEGER NOT NULL,
    reason        TEXT CHECK (reason IS NULL OR length(reason) <= 256)
) WITHOUT ROWID;

-- What was charged through a block that carries a spending ceiling: every
-- authorization with a cost adds it to each such block of its chain, and
-- is refused when any of them would pass its ceiling.
CREATE TABLE capability_spend (
    revocation_id BLOB    PRIMARY KEY CHECK (length(revocation_id) BETWEEN 1 AND 128),
    spent_micros  INTEGER NOT NULL CHECK (spent_micros >= 0),
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- The audit trail gains the capability actions (rebuilt as in v9).
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
ALTER TABLE audit_log RENAME TO audit_log_v11;
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
                       'key.create', 'key.update', 'key.disable', 'key.enable',
                       'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
                       'key.tombstone_lift',
                       'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
                       'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
                       'agent_token.issue', 'agent_token.revoke',
                       'capability.mint', 'capability.revoke',
                       'capability_root.create', 'capability_root.rotate')),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO audit_log SELECT * FROM audit_log_v11;
DROP TABLE audit_log_v11;
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
