-- Schema v16 (issue 36): model policies per owner (PostgreSQL: schema v11).
--
-- An owner's policy applies to every key of the owner together with the
-- key's own: a model must be allowed by both lists, and the lower
-- `max_tokens_per_request` wins. Read by a verification that names a model
-- or declares tokens.
CREATE TABLE owner_policies (
    owner        TEXT    PRIMARY KEY CHECK (length(owner) BETWEEN 1 AND 256),
    model_policy TEXT    NOT NULL
                 CHECK (json_valid(model_policy) AND json_type(model_policy) = 'object'),
    updated_at   INTEGER NOT NULL
);

-- The audit trail gains owner_policy.set|delete. Its list of actions moves
-- from a CHECK, which only a copy of the whole table can change (v12, v14),
-- to a trigger: a later action replaces the trigger and copies nothing.
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
ALTER TABLE audit_log RENAME TO audit_log_v15;
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    key_id         TEXT,
    display_prefix TEXT CHECK (display_prefix IS NULL OR length(display_prefix) <= 48),
    actor          TEXT CHECK (actor IS NULL OR length(actor) <= 256),
    outcome        TEXT    NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    detail         TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO audit_log SELECT * FROM audit_log_v15;
DROP TABLE audit_log_v15;
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
CREATE TRIGGER audit_log_action BEFORE INSERT ON audit_log
WHEN NEW.action NOT IN (
    'key.create', 'key.update', 'key.disable', 'key.enable',
    'key.revoke', 'key.rotate', 'key.delete', 'key.verify',
    'key.tombstone_lift',
    'signing_key.create', 'signing_key.rotate', 'signing_key.retire',
    'token.exchange', 'quota.set', 'quota.delete', 'budget.create',
    'agent_token.issue', 'agent_token.revoke',
    'capability.mint', 'capability.revoke',
    'capability_root.create', 'capability_root.rotate',
    'token_family.create', 'token_family.revoke',
    'session.rotate', 'session.end_all',
    'owner_policy.set', 'owner_policy.delete')
BEGIN
    SELECT RAISE(ABORT, 'audit_log: unknown action');
END;
