-- Schema v17 (issue 33): an owner's model policy is remembered by each
-- process under the state epoch (v11) instead of read by every verification
-- that names a model or declares tokens. A change of a policy moves the
-- epoch and logs no key: every process then forgets the states it cached
-- (policies change rarely; an owner's keys may be many) and reads the
-- policy again. Triggers, so every writer keeps the rule.
CREATE TRIGGER owner_policies_epoch_insert AFTER INSERT ON owner_policies
BEGIN
    UPDATE key_epoch SET epoch = epoch + 1 WHERE one = 1;
END;
CREATE TRIGGER owner_policies_epoch_update AFTER UPDATE ON owner_policies
BEGIN
    UPDATE key_epoch SET epoch = epoch + 1 WHERE one = 1;
END;
CREATE TRIGGER owner_policies_epoch_delete AFTER DELETE ON owner_policies
BEGIN
    UPDATE key_epoch SET epoch = epoch + 1 WHERE one = 1;
END;
