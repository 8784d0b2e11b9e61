-- The PostgreSQL schema, version 1: the same tables, constraints and
-- triggers as the SQLite schema at its version 6, in PostgreSQL's types.
-- JSON columns stay text (the same text both stores return) with checks.
CREATE FUNCTION irontoken_json_is(doc text, kind text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN json_typeof(doc::json) = kind;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;

CREATE TABLE api_keys (
    seq            bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             text    NOT NULL UNIQUE CHECK (length(id) = 36),
    key_hash       bytea   NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix         text    NOT NULL CHECK (length(prefix) BETWEEN 1 AND 32),
    display_prefix text    NOT NULL CHECK (length(display_prefix) BETWEEN 3 AND 48),
    owner          text    NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    name           text    NOT NULL DEFAULT '' CHECK (length(name) <= 256),
    description    text    NOT NULL DEFAULT '' CHECK (length(description) <= 4096),
    scopes         text    NOT NULL DEFAULT '[]' CHECK (irontoken_json_is(scopes, 'array')),
    metadata       text    NOT NULL DEFAULT '{}' CHECK (irontoken_json_is(metadata, 'object')),
    created_at     bigint  NOT NULL,
    updated_at     bigint  NOT NULL CHECK (updated_at >= created_at),
    expires_at     bigint,
    enabled        boolean NOT NULL DEFAULT true,
    revoked_at     bigint,
    revoked_reason text CHECK (revoked_reason IS NULL OR length(revoked_reason) <= 1024),
    version        bigint  NOT NULL DEFAULT 1 CHECK (version >= 1),
    rotated_from   text REFERENCES api_keys (id) ON DELETE SET NULL,
    rotated_to     text REFERENCES api_keys (id) ON DELETE SET NULL,
    revision       bigint  NOT NULL DEFAULT 1 CHECK (revision >= 1),
    rate_limits    text    NOT NULL DEFAULT '[]' CHECK (irontoken_json_is(rate_limits, 'array')),
    CHECK (revoked_reason IS NULL OR revoked_at IS NOT NULL)
);
CREATE INDEX api_keys_owner ON api_keys (owner, seq);

-- Every change but usage counters bumps the revision (the record caches'
-- check) and tells every listening process which key changed.
CREATE FUNCTION irontoken_api_keys_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.owner, NEW.name, NEW.description, NEW.scopes, NEW.metadata, NEW.expires_at,
        NEW.enabled, NEW.revoked_at, NEW.revoked_reason, NEW.version, NEW.rotated_from,
        NEW.rotated_to, NEW.prefix, NEW.display_prefix, NEW.key_hash, NEW.rate_limits)
       IS DISTINCT FROM
       (OLD.owner, OLD.name, OLD.description, OLD.scopes, OLD.metadata, OLD.expires_at,
        OLD.enabled, OLD.revoked_at, OLD.revoked_reason, OLD.version, OLD.rotated_from,
        OLD.rotated_to, OLD.prefix, OLD.display_prefix, OLD.key_hash, OLD.rate_limits) THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_keys_revision BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION irontoken_api_keys_revision();

CREATE FUNCTION irontoken_api_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('irontoken_keys', encode(OLD.key_hash, 'hex'));
    ELSE
        PERFORM pg_notify('irontoken_keys', encode(NEW.key_hash, 'hex'));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION irontoken_api_keys_notify();

CREATE TABLE key_usage (
    seq          bigint PRIMARY KEY REFERENCES api_keys (seq) ON DELETE CASCADE,
    usage_count  bigint NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    last_used_at bigint
);

CREATE TABLE signing_keys (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid          text   NOT NULL UNIQUE CHECK (length(kid) BETWEEN 1 AND 128),
    alg          text   NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA', 'HS256')),
    status       text   NOT NULL CHECK (status IN ('active', 'verify_only', 'retired')),
    public_jwk   text   CHECK (public_jwk IS NULL OR irontoken_json_is(public_jwk, 'object')),
    private_enc  bytea  NOT NULL CHECK (length(private_enc) > 28),
    created_at   bigint NOT NULL,
    verify_until bigint,
    retired_at   bigint,
    CHECK ((alg = 'HS256') = (public_jwk IS NULL)),
    CHECK (status != 'verify_only' OR verify_until IS NOT NULL)
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

CREATE TABLE sessions (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text   NOT NULL UNIQUE CHECK (length(id) = 36),
    owner         text   NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    key_id        text   REFERENCES api_keys (id) ON DELETE SET NULL,
    session_type  text   NOT NULL CHECK (length(session_type) BETWEEN 1 AND 64),
    status        text   NOT NULL CHECK (status IN ('active', 'paused', 'ended', 'expired')),
    metadata      text   NOT NULL DEFAULT '{}' CHECK (irontoken_json_is(metadata, 'object')),
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL,
    last_seen_at  bigint NOT NULL,
    expires_at    bigint CHECK (expires_at IS NULL OR expires_at > created_at),
    idle_timeout  bigint CHECK (idle_timeout IS NULL OR idle_timeout > 0),
    ended_at      bigint,
    end_reason    text CHECK (end_reason IS NULL OR length(end_reason) <= 256),
    CHECK ((status IN ('ended', 'expired')) = (ended_at IS NOT NULL))
);
CREATE INDEX sessions_owner ON sessions (owner, seq);
CREATE INDEX sessions_key ON sessions (key_id) WHERE key_id IS NOT NULL;
CREATE INDEX sessions_live ON sessions (status, seq) WHERE ended_at IS NULL;

CREATE TABLE usage_records (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id         text   NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 128),
    at                 bigint NOT NULL,
    key_id             text,
    owner              text,
    session_id         text,
    agent_id           text,
    model              text   NOT NULL DEFAULT '' CHECK (length(model) <= 128),
    model_version      text   NOT NULL DEFAULT '' CHECK (length(model_version) <= 128),
    prompt_tokens      bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cache_read_tokens  bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    requests           bigint NOT NULL DEFAULT 1 CHECK (requests >= 0),
    cost_micros        bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    metadata           text   NOT NULL DEFAULT '{}' CHECK (irontoken_json_is(metadata, 'object')),
    reported_at_ms     bigint NOT NULL DEFAULT 0 CHECK (reported_at_ms >= 0),
    CHECK (key_id IS NOT NULL OR session_id IS NOT NULL OR agent_id IS NOT NULL)
);
CREATE INDEX usage_records_at ON usage_records (at);
CREATE INDEX usage_records_key ON usage_records (key_id, at);
CREATE INDEX usage_records_owner ON usage_records (owner, at);
CREATE INDEX usage_records_session ON usage_records (session_id, at);
CREATE INDEX usage_records_agent ON usage_records (agent_id, at);

CREATE TABLE quotas (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         text   NOT NULL CHECK (scope IN ('key', 'owner')),
    subject       text   NOT NULL CHECK (length(subject) BETWEEN 1 AND 256),
    metric        text   NOT NULL CHECK (metric IN ('requests', 'tokens', 'cost')),
    period        text   NOT NULL CHECK (period IN ('day', 'month', 'none')),
    limit_amount  bigint NOT NULL CHECK (limit_amount >= 0),
    used          bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved      bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    window_start  bigint NOT NULL,
    refill_amount bigint CHECK (refill_amount IS NULL OR refill_amount > 0),
    refill_period text   CHECK (refill_period IS NULL OR refill_period IN ('day', 'month')),
    alerted       bigint NOT NULL DEFAULT 0,
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL,
    UNIQUE (scope, subject, metric, period),
    CHECK ((refill_amount IS NULL) = (refill_period IS NULL)),
    CHECK (refill_period IS NULL OR period = 'none')
);

CREATE TABLE quota_reservations (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text   NOT NULL UNIQUE CHECK (length(id) = 36),
    key_id      text   NOT NULL,
    requests    bigint NOT NULL CHECK (requests >= 0),
    tokens      bigint NOT NULL CHECK (tokens >= 0),
    cost_micros bigint NOT NULL CHECK (cost_micros >= 0),
    items       text   NOT NULL CHECK (irontoken_json_is(items, 'array')),
    status      text   NOT NULL CHECK (status IN ('held', 'settled', 'released', 'expired')),
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL CHECK (expires_at > created_at),
    closed_at   bigint,
    CHECK ((status = 'held') = (closed_at IS NULL))
);
CREATE INDEX quota_reservations_held ON quota_reservations (key_id, expires_at) WHERE status = 'held';
CREATE INDEX quota_reservations_expiry ON quota_reservations (expires_at) WHERE status = 'held';

CREATE TABLE budgets (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text   NOT NULL UNIQUE CHECK (length(id) = 36),
    owner        text   NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    name         text   NOT NULL DEFAULT '' CHECK (length(name) <= 256),
    limit_micros bigint NOT NULL CHECK (limit_micros >= 0),
    spent_micros bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL
);

CREATE TABLE agent_tokens (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jti         text   NOT NULL UNIQUE CHECK (length(jti) = 36),
    agent_id    text   NOT NULL CHECK (length(agent_id) BETWEEN 1 AND 256),
    budget_id   text   NOT NULL REFERENCES budgets (id),
    permissions text   NOT NULL DEFAULT '[]' CHECK (irontoken_json_is(permissions, 'array')),
    issued_at   bigint NOT NULL,
    expires_at  bigint,
    revoked_at  bigint
);
CREATE UNIQUE INDEX agent_tokens_one_live ON agent_tokens (agent_id) WHERE revoked_at IS NULL;

CREATE TABLE budget_leases (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text   NOT NULL UNIQUE CHECK (length(id) = 36),
    budget_id     text   NOT NULL REFERENCES budgets (id),
    jti           text   NOT NULL REFERENCES agent_tokens (jti),
    amount_micros bigint NOT NULL CHECK (amount_micros >= 0),
    spent_micros  bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    status        text   NOT NULL CHECK (status IN ('active', 'released', 'revoked')),
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);
CREATE INDEX budget_leases_budget ON budget_leases (budget_id) WHERE status = 'active';
CREATE INDEX budget_leases_jti ON budget_leases (jti);

CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             bigint NOT NULL,
    action         text   NOT NULL CHECK (action IN (
                       'key.create', 'key.update', 'key.disable', 'key.enable',
                       'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
                       'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
                       'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
                       'agent_token.issue', 'agent_token.revoke')),
    key_id         text,
    display_prefix text CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          text CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        text   NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         text CHECK (detail IS NULL OR irontoken_json_is(detail, 'object')
                               OR irontoken_json_is(detail, 'array'))
);
CREATE INDEX audit_log_key ON audit_log (key_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE FUNCTION irontoken_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION irontoken_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION irontoken_append_only();

CREATE TABLE meta (
    name  text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    value text NOT NULL CHECK (length(value) <= 1024)
);

CREATE TABLE rate_buckets (
    bucket_key text   NOT NULL CHECK (length(bucket_key) BETWEEN 1 AND 512),
    name       text   NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    tat_us     bigint NOT NULL,
    PRIMARY KEY (bucket_key, name)
);
