-- Schema v14 (issue 35): refresh-token families and session fingerprints
-- (PostgreSQL: schema v9).
--
-- `issue_token_pair` starts a family: an access JWT plus an opaque refresh
-- token, stored as its SHA-256 like an API key. Each refresh spends the
-- presented token and adds the next one; presenting a spent token again
-- revokes the whole family (reuse detection, OAuth 2.0 Security BCP 4.14).
-- A family ends at `expires_at` (absolute lifetime) and a refresh token at
-- its own `expires_at` (the idle timeout); both are purged after a grace.
CREATE TABLE token_families (
    id            TEXT    PRIMARY KEY CHECK (length(id) = 36),
    subject       TEXT    NOT NULL CHECK (length(subject) BETWEEN 1 AND 256),
    scopes        TEXT    NOT NULL CHECK (json_valid(scopes)),
    claims        TEXT    NOT NULL CHECK (json_valid(claims)),
    access_ttl    INTEGER NOT NULL CHECK (access_ttl > 0),
    refresh_ttl   INTEGER NOT NULL CHECK (refresh_ttl > 0),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    refreshed_at  INTEGER NOT NULL,
    -- When the live refresh token lapses: min(its expiry, expires_at).
    ends_at       INTEGER NOT NULL,
    generation    INTEGER NOT NULL CHECK (generation >= 0),
    revoked_at    INTEGER,
    revoke_reason TEXT CHECK (revoke_reason IS NULL OR length(revoke_reason) <= 256)
);
CREATE INDEX token_families_subject ON token_families (subject);
CREATE INDEX token_families_ends ON token_families (ends_at);

CREATE TABLE refresh_tokens (
    token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id  TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    spent_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Sessions may be bound to a caller-chosen fingerprint (its SHA-256).
ALTER TABLE sessions ADD COLUMN fingerprint BLOB CHECK (fingerprint IS NULL OR length(fingerprint) = 32);
CREATE INDEX sessions_owner_live ON sessions (owner, ends_at) WHERE ended_at IS NULL;

-- The audit trail gains the family and session actions (rebuilt as in v12).
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
ALTER TABLE audit_log RENAME TO audit_log_v13;
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
                       'capability_root.create', 'capability_root.rotate',
                       'token_family.create', 'token_family.revoke',
                       'session.rotate', 'session.end_all')),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO audit_log SELECT * FROM audit_log_v13;
DROP TABLE audit_log_v13;
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
