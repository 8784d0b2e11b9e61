-- irontoken schema version 2: managed JWT signing keys.
-- Private material is stored only encrypted (AES-256-GCM under a key derived
-- from the application's master key); public material as a JWK.

CREATE TABLE signing_keys (
    seq          INTEGER PRIMARY KEY,
    kid          TEXT    NOT NULL UNIQUE CHECK (length(kid) BETWEEN 1 AND 128),
    alg          TEXT    NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA', 'HS256')),
    status       TEXT    NOT NULL CHECK (status IN ('active', 'verify_only', 'retired')),
    public_jwk   TEXT    CHECK (public_jwk IS NULL OR json_valid(public_jwk)),
    private_enc  BLOB    NOT NULL CHECK (length(private_enc) > 28),
    created_at   INTEGER NOT NULL,
    verify_until INTEGER,
    retired_at   INTEGER,
    CHECK ((alg = 'HS256') = (public_jwk IS NULL)),
    CHECK (status != 'verify_only' OR verify_until IS NOT NULL)
);

-- At most one active key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

-- The audit trail gains the signing-key actions: rebuild the table with the
-- wider CHECK (SQLite cannot alter a CHECK), keeping every row and id.
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
ALTER TABLE audit_log RENAME TO audit_log_v1;
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
                       'key.create', 'key.update', 'key.disable', 'key.enable',
                       'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
                       'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
                       'token.exchange')),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO audit_log SELECT * FROM audit_log_v1;
DROP TABLE audit_log_v1;
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
