-- PostgreSQL schema v7 (issue 34): capability tokens (SQLite: schema v12).
-- The roots that sign them (sealed under the master key, `seq` is the
-- token's root key id), the revoked blocks, and what was charged through
-- each block that carries a spending ceiling.
CREATE TABLE capability_roots (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid          text   NOT NULL UNIQUE CHECK (length(kid) BETWEEN 1 AND 128),
    status       text   NOT NULL CHECK (status IN ('active', 'verify_only', 'retired')),
    public_key   text   NOT NULL CHECK (length(public_key) = 72),
    private_enc  bytea  NOT NULL CHECK (length(private_enc) > 28),
    created_at   bigint NOT NULL,
    verify_until bigint,
    retired_at   bigint,
    CHECK (status != 'verify_only' OR verify_until IS NOT NULL)
);
CREATE UNIQUE INDEX capability_roots_one_active ON capability_roots (status)
    WHERE status = 'active';

CREATE TABLE capability_revocations (
    revocation_id bytea  PRIMARY KEY CHECK (length(revocation_id) BETWEEN 1 AND 128),
    revoked_at    bigint NOT NULL,
    reason        text CHECK (reason IS NULL OR length(reason) <= 256)
);

CREATE TABLE capability_spend (
    revocation_id bytea  PRIMARY KEY CHECK (length(revocation_id) BETWEEN 1 AND 128),
    spent_micros  bigint NOT NULL CHECK (spent_micros >= 0),
    updated_at    bigint NOT NULL
);

ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'key.create', 'key.update', 'key.disable', 'key.enable',
    'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
    'key.tombstone_lift',
    'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
    'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
    'agent_token.issue', 'agent_token.revoke',
    'capability.mint', 'capability.revoke',
    'capability_root.create', 'capability_root.rotate'));
