-- Schema v15 (issue 36): a key's model policy (PostgreSQL: schema v10).
--
-- `model_policy` is a JSON object: `models` (wildcard patterns of the
-- models the key may call; absent: any) and `max_tokens_per_request`
-- (absent: no limit). `{}` is no policy. A change to it is a change of the
-- key's state: it moves the revision and the epoch, so every process
-- applies the new policy at its next verification.
ALTER TABLE api_keys ADD COLUMN model_policy TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(model_policy) AND json_type(model_policy) = 'object');

DROP TRIGGER api_keys_revision;
CREATE TRIGGER api_keys_revision AFTER UPDATE OF
    owner, name, description, scopes, metadata, expires_at, enabled, revoked_at,
    revoked_reason, version, rotated_from, rotated_to, prefix, display_prefix, key_hash,
    rate_limits, rotation_period, model_policy
ON api_keys
BEGIN
    UPDATE api_keys SET revision = OLD.revision + 1 WHERE seq = NEW.seq;
    UPDATE key_epoch SET epoch = epoch + 1 WHERE one = 1;
    INSERT INTO key_changes (epoch, key_hash) SELECT epoch, OLD.key_hash FROM key_epoch;
    INSERT INTO key_changes (epoch, key_hash)
        SELECT epoch + 1, NEW.key_hash FROM key_epoch WHERE NEW.key_hash IS NOT OLD.key_hash;
    UPDATE key_epoch SET epoch = epoch + 1 WHERE NEW.key_hash IS NOT OLD.key_hash;
    DELETE FROM key_changes WHERE epoch <= (SELECT epoch FROM key_epoch) - 65536;
END;
