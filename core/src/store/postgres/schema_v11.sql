-- Schema v11 (issue 36): model policies per owner (SQLite: schema v16).
--
-- An owner's policy applies to every key of the owner together with the
-- key's own: a model must be allowed by both lists, and the lower
-- `max_tokens_per_request` wins. Read by a verification that names a model
-- or declares tokens.
CREATE TABLE owner_policies (
    owner        text   PRIMARY KEY CHECK (length(owner) BETWEEN 1 AND 256),
    model_policy text   NOT NULL CHECK (irontoken_json_is(model_policy, 'object')),
    updated_at   bigint NOT NULL
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
    'capability_root.create', 'capability_root.rotate',
    'token_family.create', 'token_family.revoke',
    'session.rotate', 'session.end_all',
    'owner_policy.set', 'owner_policy.delete'));
