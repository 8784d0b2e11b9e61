-- Schema v4 (issue 9).
-- Which report of a request id came first (wall-clock milliseconds when it
-- was reported; 0 = final, never replaced: rows written before v4 and
-- reports charged to a lease): a buffered report flushed later still wins
-- if it was made earlier.
ALTER TABLE usage_records ADD COLUMN reported_at_ms INTEGER NOT NULL DEFAULT 0
    CHECK (reported_at_ms >= 0);

-- Facts about the database itself, e.g. the master-key check value.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    value TEXT NOT NULL CHECK (length(value) <= 1024)
) WITHOUT ROWID;
