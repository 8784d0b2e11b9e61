-- Schema v10 (issue 36): a key's model policy (SQLite: schema v15).
--
-- `model_policy` is a JSON object: `models` (wildcard patterns of the
-- models the key may call; absent: any) and `max_tokens_per_request`
-- (absent: no limit). `{}` is no policy. A change to it (and, mended here,
-- to `rotation_period`) moves the revision: every process's record cache
-- reads the key again at its next verification.
ALTER TABLE api_keys ADD COLUMN model_policy text NOT NULL DEFAULT '{}'
    CHECK (irontoken_json_is(model_policy, 'object'));

CREATE OR REPLACE FUNCTION irontoken_api_keys_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.owner, NEW.name, NEW.description, NEW.scopes, NEW.metadata, NEW.expires_at,
        NEW.enabled, NEW.revoked_at, NEW.revoked_reason, NEW.version, NEW.rotated_from,
        NEW.rotated_to, NEW.prefix, NEW.display_prefix, NEW.key_hash, NEW.rate_limits,
        NEW.rotation_period, NEW.model_policy)
       IS DISTINCT FROM
       (OLD.owner, OLD.name, OLD.description, OLD.scopes, OLD.metadata, OLD.expires_at,
        OLD.enabled, OLD.revoked_at, OLD.revoked_reason, OLD.version, OLD.rotated_from,
        OLD.rotated_to, OLD.prefix, OLD.display_prefix, OLD.key_hash, OLD.rate_limits,
        OLD.rotation_period, OLD.model_policy) THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END $$;
