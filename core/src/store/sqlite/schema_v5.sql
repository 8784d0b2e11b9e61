-- Schema v5 (issue 10): verification reads nothing that flushes write.
-- Usage counters move to their own narrow table. Every flush rewrites them;
-- in api_keys (and in its covering index) those writes spread over the
-- whole file, so verifications of unrelated keys read their pages from the
-- WAL, and a flush of 100k counters wrote ~14k pages instead of ~330.
-- Verification answers with the counters this process last read plus its
-- own uses since; get_key and list_keys read the stored counters.
DROP INDEX api_keys_verify;
-- Keyed by the key's rowid: about 300 rows a page, one integer search. A
-- key's row is written by its first use (none: no use yet).
CREATE TABLE key_usage (
    seq          INTEGER PRIMARY KEY REFERENCES api_keys (seq) ON DELETE CASCADE,
    usage_count  INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    last_used_at INTEGER
);
INSERT INTO key_usage (seq, usage_count, last_used_at)
    SELECT seq, usage_count, last_used_at FROM api_keys;
ALTER TABLE api_keys DROP COLUMN usage_count;
ALTER TABLE api_keys DROP COLUMN last_used_at;
CREATE INDEX api_keys_state ON api_keys (key_hash, id, revision, enabled, revoked_at, expires_at);
