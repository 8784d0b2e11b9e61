-- PostgreSQL schema v4: a quota consumption that touches one row, at the
-- cost of a hand-written `UPDATE ... WHERE used + n <= limit`.
--
-- A key quota row is `solo` when it is the only quota that applies to its
-- key: the key exists and is not rotated, has no other quota, and its owner
-- has none. Then a consumption is one UPDATE of that row (ONE_ROW_CONSUME in
-- queries.rs, with the simple-case checks of irontoken_consume, which stays
-- the path for every other key). `solo` is kept by the triggers below,
-- never by the callers: a change of which quotas apply to a key takes a
-- transaction-scoped advisory lock on the key's owner before it changes
-- anything and recomputes `solo` after, so two changes for one owner (an
-- owner quota and a key quota set at once on two hosts, say) are recomputed
-- one after the other and the later sees the earlier. (PostgreSQL locks a
-- row before its BEFORE DELETE trigger runs, so the store takes the owner's
-- lock itself before deleting a quota; a rotation holds it from its
-- api_keys update on.) `false` is always safe: it only sends the key to the
-- general path.
--
-- The row checks on the columns a consumption never changes move from CHECK
-- constraints (PostgreSQL prepares every CHECK of a table again for each
-- UPDATE: 11 of them cost as much as the update itself) into a trigger that
-- runs only when those columns change, with the same SQLSTATE (23514).
ALTER TABLE quotas ADD COLUMN solo boolean NOT NULL DEFAULT false;

-- The lock every change of an owner's quota layout takes first.
CREATE FUNCTION irontoken_lock_owner(p_owner text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(1769104929, hashtext(p_owner));
$$;

-- Recomputes `solo` for the key quotas of one key (p_key) or, with p_key
-- NULL, of every key of p_owner.
CREATE FUNCTION irontoken_refresh_solo(p_owner text, p_key text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM irontoken_lock_owner(p_owner);
    UPDATE quotas q SET solo = s.want
    FROM (SELECT k.seq,
                 a.rotated_to IS NULL
                 AND count(*) OVER (PARTITION BY k.subject) = 1
                 AND NOT EXISTS (SELECT 1 FROM quotas o
                                 WHERE o.scope = 'owner' AND o.subject = a.owner) AS want
          FROM api_keys a JOIN quotas k ON k.scope = 'key' AND k.subject = a.id
          WHERE a.owner = p_owner AND (p_key IS NULL OR a.id = p_key)) s
    WHERE q.seq = s.seq AND q.solo IS DISTINCT FROM s.want;
END $$;

-- The owner whose layout a quota row belongs to (NULL: a key that does not exist).
CREATE FUNCTION irontoken_quota_owner(p_scope text, p_subject text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_scope = 'owner' THEN p_subject
                ELSE (SELECT owner FROM api_keys WHERE id = p_subject) END;
$$;

CREATE FUNCTION irontoken_quotas_lock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        o := irontoken_quota_owner(OLD.scope, OLD.subject);
        IF o IS NOT NULL THEN PERFORM irontoken_lock_owner(o); END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        o := irontoken_quota_owner(NEW.scope, NEW.subject);
        IF o IS NOT NULL THEN PERFORM irontoken_lock_owner(o); END IF;
        -- A row arrives (or moves) not solo; the AFTER trigger decides.
        NEW.solo := false;
        RETURN NEW;
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER quotas_solo_lock BEFORE INSERT OR DELETE OR UPDATE OF scope, subject ON quotas
    FOR EACH ROW EXECUTE FUNCTION irontoken_quotas_lock();

CREATE FUNCTION irontoken_quotas_solo() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        o := irontoken_quota_owner(OLD.scope, OLD.subject);
        IF o IS NOT NULL THEN
            PERFORM irontoken_refresh_solo(o, CASE WHEN OLD.scope = 'key' THEN OLD.subject END);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        o := irontoken_quota_owner(NEW.scope, NEW.subject);
        IF o IS NOT NULL THEN
            PERFORM irontoken_refresh_solo(o, CASE WHEN NEW.scope = 'key' THEN NEW.subject END);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER quotas_solo AFTER INSERT OR DELETE OR UPDATE OF scope, subject ON quotas
    FOR EACH ROW EXECUTE FUNCTION irontoken_quotas_solo();

CREATE FUNCTION irontoken_api_keys_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM irontoken_lock_owner(OLD.owner);
        RETURN OLD;
    END IF;
    IF (NEW.owner, NEW.rotated_to) IS DISTINCT FROM (OLD.owner, OLD.rotated_to) THEN
        PERFORM irontoken_lock_owner(OLD.owner);
        PERFORM irontoken_lock_owner(NEW.owner);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_keys_solo_lock BEFORE DELETE OR UPDATE OF owner, rotated_to ON api_keys
    FOR EACH ROW EXECUTE FUNCTION irontoken_api_keys_lock();

CREATE FUNCTION irontoken_api_keys_solo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Quotas left behind by a deleted key are never solo.
        UPDATE quotas SET solo = false WHERE scope = 'key' AND subject = OLD.id AND solo;
    ELSIF (NEW.owner, NEW.rotated_to) IS DISTINCT FROM (OLD.owner, OLD.rotated_to) THEN
        PERFORM irontoken_refresh_solo(NEW.owner, NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_solo AFTER DELETE OR UPDATE OF owner, rotated_to ON api_keys
    FOR EACH ROW EXECUTE FUNCTION irontoken_api_keys_solo();

DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'quotas'::regclass AND contype = 'c' LOOP
        EXECUTE format('ALTER TABLE quotas DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE quotas ADD CONSTRAINT quotas_used_check CHECK (used >= 0),
                   ADD CONSTRAINT quotas_reserved_check CHECK (reserved >= 0);

CREATE FUNCTION irontoken_quotas_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- What the CHECK constraints of schema v1 said (NULL passes, as in a CHECK).
    IF (NEW.scope IN ('key', 'owner')
        AND length(NEW.subject) BETWEEN 1 AND 256
        AND NEW.metric IN ('requests', 'tokens', 'cost')
        AND NEW.period IN ('day', 'month', 'none')
        AND NEW.limit_amount >= 0
        AND (NEW.refill_amount IS NULL OR NEW.refill_amount > 0)
        AND (NEW.refill_period IS NULL OR NEW.refill_period IN ('day', 'month'))
        AND (NEW.refill_amount IS NULL) = (NEW.refill_period IS NULL)
        AND (NEW.refill_period IS NULL OR NEW.period = 'none')) IS NOT FALSE THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'new row for relation "quotas" violates check constraint "quotas_definition_check"'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'quotas_definition_check', TABLE = 'quotas';
END $$;
CREATE TRIGGER quotas_definition_check BEFORE INSERT OR UPDATE OF scope, subject, metric, period,
    limit_amount, refill_amount, refill_period ON quotas
    FOR EACH ROW EXECUTE FUNCTION irontoken_quotas_check();

-- The amount of a consumption a quota of `metric` counts (inlined by the planner).
CREATE FUNCTION irontoken_amount(metric text, requests bigint, tokens bigint, cost bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE metric WHEN 'requests' THEN requests WHEN 'tokens' THEN tokens ELSE cost END
$$;

-- The quotas that exist already.
UPDATE quotas q SET solo = true
FROM api_keys a
WHERE q.scope = 'key' AND q.subject = a.id AND a.rotated_to IS NULL
  AND NOT EXISTS (SELECT 1 FROM quotas o WHERE o.scope = 'owner' AND o.subject = a.owner)
  AND NOT EXISTS (SELECT 1 FROM quotas x WHERE x.scope = 'key' AND x.subject = q.subject
                                           AND x.seq <> q.seq);
