-- PostgreSQL schema v6: the quota fast path leaves the database, and a
-- session's next expiry becomes one column.
--
-- Both fast-path statements are rendered by the library from one
-- definition for both dialects (store/quota_fast.rs): the one-row UPDATE
-- of a key's `solo` quota and the all-rows statement that locks, checks and
-- charges every quota of a key and its owner. The PL/pgSQL function that
-- held a second copy of the rule, and its helper, go.
DROP FUNCTION IF EXISTS irontoken_consume(text, bigint, bigint, bigint, bigint, bigint, bigint);
DROP FUNCTION IF EXISTS irontoken_amount(text, bigint, bigint, bigint);

-- A session's next expiry is one column (SQLite: schema v10): the earlier
-- of its absolute expiry and its last touch plus its idle timeout, NULL for
-- never, computed by the library (`model::sessions::next_expiry`) when a
-- session is created or touched. Queries only compare it with now. This
-- backfill is the rule's last copy in SQL.
ALTER TABLE sessions ADD COLUMN ends_at bigint;
UPDATE sessions SET ends_at = CASE
    WHEN idle_timeout IS NULL THEN expires_at
    WHEN expires_at IS NULL THEN last_seen_at + idle_timeout
    ELSE least(expires_at, last_seen_at + idle_timeout) END;
CREATE INDEX sessions_ends ON sessions (ends_at) WHERE ended_at IS NULL AND ends_at IS NOT NULL;
