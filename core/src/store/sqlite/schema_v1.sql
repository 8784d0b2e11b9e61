-- irontoken schema version 1: API keys and the audit trail.
-- Times are Unix seconds (UTC). No column ever holds a plaintext key.

CREATE TABLE api_keys (
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    key_hash       BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix         TEXT    NOT NULL CHECK (length(prefix) BETWEEN 1 AND 32),
    display_prefix TEXT    NOT NULL CHECK (length(display_prefix) BETWEEN 3 AND 48),
    owner          TEXT    NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    name           TEXT    NOT NULL DEFAULT '' CHECK (length(name) <= 256),
    description    TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 4096),
    scopes         TEXT    NOT NULL DEFAULT '[]'
                   CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    metadata       TEXT    NOT NULL DEFAULT '{}'
                   CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL CHECK (updated_at >= created_at),
    expires_at     INTEGER,
    last_used_at   INTEGER,
    usage_count    INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    revoked_at     INTEGER,
    revoked_reason TEXT CHECK (revoked_reason IS NULL OR length(revoked_reason) <= 1024),
    version        INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    rotated_from   TEXT REFERENCES api_keys (id) ON DELETE SET NULL,
    rotated_to     TEXT REFERENCES api_keys (id) ON DELETE SET NULL,
    -- Bumped by the trigger below on every change except usage counters:
    -- lets verification reuse a cached record while the revision matches.
    revision       INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1),
    CHECK (revoked_reason IS NULL OR revoked_at IS NOT NULL)
);

CREATE INDEX api_keys_owner ON api_keys (owner, seq);

-- Covering index of the verification hot path: one B-tree search answers
-- state and counters without reading the table row.
CREATE INDEX api_keys_verify ON api_keys (
    key_hash, id, revision, enabled, revoked_at, expires_at, usage_count, last_used_at
);

CREATE TRIGGER api_keys_revision AFTER UPDATE OF
    owner, name, description, scopes, metadata, expires_at, enabled, revoked_at,
    revoked_reason, version, rotated_from, rotated_to, prefix, display_prefix, key_hash
ON api_keys
BEGIN
    UPDATE api_keys SET revision = OLD.revision + 1 WHERE seq = NEW.seq;
END;

-- Append-only: the triggers below refuse UPDATE and DELETE.
-- key_id has no foreign key so that deleting a key keeps its history.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
                       'key.create', 'key.update', 'key.disable', 'key.enable',
                       'key.revoke', 'key.rotate', 'key.delete', 'key.verify')),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);

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
