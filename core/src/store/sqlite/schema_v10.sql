-- Schema v10: a session's next expiry is one column (PostgreSQL: schema v6).
--
-- `ends_at` is when a live session expires if nothing happens: the earlier
-- of its absolute expiry and its last touch plus its idle timeout (NULL:
-- never). The library computes it (`model::sessions::next_expiry`) when a
-- session is created or touched; the queries only compare it with now, so
-- the rule is written once. This backfill is its last copy in SQL.
ALTER TABLE sessions ADD COLUMN ends_at INTEGER;
UPDATE sessions SET ends_at = CASE
    WHEN idle_timeout IS NULL THEN expires_at
    WHEN expires_at IS NULL THEN last_seen_at + idle_timeout
    ELSE min(expires_at, last_seen_at + idle_timeout) END;
CREATE INDEX sessions_ends ON sessions (ends_at) WHERE ended_at IS NULL AND ends_at IS NOT NULL;
