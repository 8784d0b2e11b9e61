-- Schema v8: a quota consumption that touches one row (PostgreSQL: schema
-- v4). A key quota row is `solo` when it is the only quota that applies to
-- its key: the key exists and is not rotated, has no other quota, and its
-- owner has none. Then a consumption is one UPDATE of that row (ONE_ROW_CONSUME
-- in quota.rs, with the simple-case checks); every other key takes the
-- general path. The triggers keep `solo` right whatever changes which quotas
-- apply to a key (SQLite has one writer at a time: no locks needed); each
-- recomputes it, from the view below, for the keys a change can affect. 0
-- is always safe: it only sends the key to the general path.
ALTER TABLE quotas ADD COLUMN solo INTEGER NOT NULL DEFAULT 0 CHECK (solo IN (0, 1));

-- What `solo` must be for each quota row.
CREATE VIEW quota_solo_want AS
SELECT q.seq AS seq,
       (q.scope = 'key'
        AND (SELECT rotated_to IS NULL FROM api_keys WHERE id = q.subject) IS 1
        AND (SELECT count(*) FROM quotas x WHERE x.scope = 'key' AND x.subject = q.subject) = 1
        AND NOT EXISTS (SELECT 1 FROM quotas o WHERE o.scope = 'owner'
                        AND o.subject = (SELECT owner FROM api_keys WHERE id = q.subject))) AS want
FROM quotas q;

CREATE TRIGGER quotas_solo_insert AFTER INSERT ON quotas BEGIN
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject = NEW.subject;
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject IN (SELECT id FROM api_keys WHERE owner = NEW.subject);
END;

CREATE TRIGGER quotas_solo_delete AFTER DELETE ON quotas BEGIN
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject = OLD.subject;
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject IN (SELECT id FROM api_keys WHERE owner = OLD.subject);
END;

CREATE TRIGGER quotas_solo_move AFTER UPDATE OF scope, subject ON quotas BEGIN
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE seq = NEW.seq;
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject = OLD.subject;
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject = NEW.subject;
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject IN (SELECT id FROM api_keys WHERE owner = OLD.subject);
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject IN (SELECT id FROM api_keys WHERE owner = NEW.subject);
END;

CREATE TRIGGER api_keys_solo_update AFTER UPDATE OF owner, rotated_to ON api_keys BEGIN
    UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq)
    WHERE scope = 'key' AND subject = NEW.id;
END;

-- Quotas left behind by a deleted key are never solo.
CREATE TRIGGER api_keys_solo_delete AFTER DELETE ON api_keys BEGIN
    UPDATE quotas SET solo = 0 WHERE scope = 'key' AND subject = OLD.id AND solo = 1;
END;

-- The quotas that exist already.
UPDATE quotas SET solo = (SELECT want FROM quota_solo_want w WHERE w.seq = quotas.seq);
