-- PostgreSQL schema v9 (issue 35): refresh-token families and session
-- fingerprints (SQLite: schema v14).
CREATE TABLE token_families (
    id            text   PRIMARY KEY CHECK (length(id) = 36),
    subject       text   NOT NULL CHECK (length(subject) BETWEEN 1 AND 256),
    scopes        text   NOT NULL,
    claims        text   NOT NULL,
    access_ttl    bigint NOT NULL CHECK (access_ttl > 0),
    refresh_ttl   bigint NOT NULL CHECK (refresh_ttl > 0),
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL,
    refreshed_at  bigint NOT NULL,
    ends_at       bigint NOT NULL,
    generation    bigint NOT NULL CHECK (generation >= 0),
    revoked_at    bigint,
    revoke_reason text CHECK (revoke_reason IS NULL OR length(revoke_reason) <= 256)
);
CREATE INDEX token_families_subject ON token_families (subject);
CREATE INDEX token_families_ends ON token_families (ends_at);

CREATE TABLE refresh_tokens (
    token_hash bytea  PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id  text   NOT NULL,
    generation bigint NOT NULL,
    expires_at bigint NOT NULL,
    spent_at   bigint
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

ALTER TABLE sessions ADD COLUMN fingerprint bytea CHECK (fingerprint IS NULL OR length(fingerprint) = 32);
CREATE INDEX sessions_owner_live ON sessions (owner, ends_at) WHERE ended_at IS NULL;

ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'key.create', 'key.update', 'key.disable', 'key.enable',
    'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
    'key.tombstone_lift',
    'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
    'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
    'agent_token.issue', 'agent_token.revoke',
    'capability.mint', 'capability.revoke',
    'capability_root.create', 'capability_root.rotate',
    'token_family.create', 'token_family.revoke',
    'session.rotate', 'session.end_all'));
