-- irontoken schema version 3: sessions, usage records, quotas and
-- reservations, per-key rate limits, budgets, agent tokens and leases.
-- Money is an integer count of micro-units of a currency, never a float.

-- Per-key rate limits (a JSON array of {name, count, period_ms, burst}).
ALTER TABLE api_keys ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(rate_limits) AND json_type(rate_limits) = 'array');

DROP TRIGGER api_keys_revision;
CREATE TRIGGER api_keys_revision AFTER UPDATE OF
    owner, name, description, scopes, metadata, expires_at, enabled, revoked_at,
    revoked_reason, version, rotated_from, rotated_to, prefix, display_prefix, key_hash,
    rate_limits
ON api_keys
BEGIN
    UPDATE api_keys SET revision = OLD.revision + 1 WHERE seq = NEW.seq;
END;

CREATE TABLE sessions (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    owner         TEXT    NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    key_id        TEXT    REFERENCES api_keys (id) ON DELETE SET NULL,
    session_type  TEXT    NOT NULL CHECK (length(session_type) BETWEEN 1 AND 64),
    status        TEXT    NOT NULL CHECK (status IN ('active', 'paused', 'ended', 'expired')),
    metadata      TEXT    NOT NULL DEFAULT '{}'
                  CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    -- Absolute end of life; NULL = none.
    expires_at    INTEGER CHECK (expires_at IS NULL OR expires_at > created_at),
    idle_timeout  INTEGER CHECK (idle_timeout IS NULL OR idle_timeout > 0),
    ended_at      INTEGER,
    end_reason    TEXT CHECK (end_reason IS NULL OR length(end_reason) <= 256),
    CHECK ((status IN ('ended', 'expired')) = (ended_at IS NOT NULL))
);
CREATE INDEX sessions_owner ON sessions (owner, seq);
CREATE INDEX sessions_key ON sessions (key_id) WHERE key_id IS NOT NULL;
CREATE INDEX sessions_live ON sessions (status, seq) WHERE ended_at IS NULL;

-- One row per reported request; request_id makes a retried report a no-op.
-- key_id/session_id carry no foreign key: usage history outlives the key.
CREATE TABLE usage_records (
    seq                INTEGER PRIMARY KEY,
    request_id         TEXT    NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 128),
    at                 INTEGER NOT NULL,
    key_id             TEXT,
    owner              TEXT,
    session_id         TEXT,
    agent_id           TEXT,
    model              TEXT    NOT NULL DEFAULT '' CHECK (length(model) <= 128),
    model_version      TEXT    NOT NULL DEFAULT '' CHECK (length(model_version) <= 128),
    prompt_tokens      INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    requests           INTEGER NOT NULL DEFAULT 1 CHECK (requests >= 0),
    cost_micros        INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    metadata           TEXT    NOT NULL DEFAULT '{}'
                       CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    CHECK (key_id IS NOT NULL OR session_id IS NOT NULL OR agent_id IS NOT NULL)
);
CREATE INDEX usage_records_at ON usage_records (at);
CREATE INDEX usage_records_key ON usage_records (key_id, at);
CREATE INDEX usage_records_owner ON usage_records (owner, at);
CREATE INDEX usage_records_session ON usage_records (session_id, at);
CREATE INDEX usage_records_agent ON usage_records (agent_id, at);

-- A limit on one metric over one window for a key or an owner.
-- period 'none' never resets: a credit balance (limit = credits granted so
-- far), optionally refilled up to refill_amount every refill_period.
CREATE TABLE quotas (
    seq           INTEGER PRIMARY KEY,
    scope         TEXT    NOT NULL CHECK (scope IN ('key', 'owner')),
    subject       TEXT    NOT NULL CHECK (length(subject) BETWEEN 1 AND 256),
    metric        TEXT    NOT NULL CHECK (metric IN ('requests', 'tokens', 'cost')),
    period        TEXT    NOT NULL CHECK (period IN ('day', 'month', 'none')),
    limit_amount  INTEGER NOT NULL CHECK (limit_amount >= 0),
    used          INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved      INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    window_start  INTEGER NOT NULL,
    refill_amount INTEGER CHECK (refill_amount IS NULL OR refill_amount > 0),
    refill_period TEXT CHECK (refill_period IS NULL OR refill_period IN ('day', 'month')),
    -- Highest alert level sent in this window (0, 80, 100).
    alerted       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (scope, subject, metric, period),
    CHECK ((refill_amount IS NULL) = (refill_period IS NULL)),
    CHECK (refill_period IS NULL OR period = 'none')
);

-- Amounts held for a call whose cost is known only afterwards.
-- items: JSON array of [quota seq, window_start, amount].
CREATE TABLE quota_reservations (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    key_id      TEXT    NOT NULL,
    requests    INTEGER NOT NULL CHECK (requests >= 0),
    tokens      INTEGER NOT NULL CHECK (tokens >= 0),
    cost_micros INTEGER NOT NULL CHECK (cost_micros >= 0),
    items       TEXT    NOT NULL CHECK (json_valid(items) AND json_type(items) = 'array'),
    status      TEXT    NOT NULL CHECK (status IN ('held', 'settled', 'released', 'expired')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL CHECK (expires_at > created_at),
    closed_at   INTEGER,
    CHECK ((status = 'held') = (closed_at IS NULL))
);
CREATE INDEX quota_reservations_held ON quota_reservations (key_id, expires_at) WHERE status = 'held';
CREATE INDEX quota_reservations_expiry ON quota_reservations (expires_at) WHERE status = 'held';

CREATE TABLE budgets (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    owner        TEXT    NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    name         TEXT    NOT NULL DEFAULT '' CHECK (length(name) <= 256),
    limit_micros INTEGER NOT NULL CHECK (limit_micros >= 0),
    spent_micros INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Agent tokens are JWTs; the row holds their id (jti), never the token.
CREATE TABLE agent_tokens (
    seq          INTEGER PRIMARY KEY,
    jti          TEXT    NOT NULL UNIQUE CHECK (length(jti) = 36),
    agent_id     TEXT    NOT NULL CHECK (length(agent_id) BETWEEN 1 AND 256),
    budget_id    TEXT    NOT NULL REFERENCES budgets (id),
    permissions  TEXT    NOT NULL DEFAULT '[]'
                 CHECK (json_valid(permissions) AND json_type(permissions) = 'array'),
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
-- Exactly one live token per agent, enforced by the schema.
CREATE UNIQUE INDEX agent_tokens_one_live ON agent_tokens (agent_id) WHERE revoked_at IS NULL;

CREATE TABLE budget_leases (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    budget_id    TEXT    NOT NULL REFERENCES budgets (id),
    jti          TEXT    NOT NULL REFERENCES agent_tokens (jti),
    amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0),
    spent_micros INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    status       TEXT    NOT NULL CHECK (status IN ('active', 'released', 'revoked')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX budget_leases_budget ON budget_leases (budget_id) WHERE status = 'active';
CREATE INDEX budget_leases_jti ON budget_leases (jti);

-- The audit trail gains quota, budget and agent-token actions (rebuilt as in v2).
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
ALTER TABLE audit_log RENAME TO audit_log_v2;
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
                       'key.create', 'key.update', 'key.disable', 'key.enable',
                       'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
                       'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
                       'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
                       'agent_token.issue', 'agent_token.revoke')),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO audit_log SELECT * FROM audit_log_v2;
DROP TABLE audit_log_v2;
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
