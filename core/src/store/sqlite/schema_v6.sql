-- Schema v6 (issue 11): rate-limit state shared by every process on the file.
-- One row per (key, limit name): the bucket's theoretical arrival time in
-- microseconds (GCRA). A row whose time has passed is a full bucket, the
-- same as no row: the flusher deletes them.
CREATE TABLE rate_buckets (
    bucket_key TEXT NOT NULL CHECK (length(bucket_key) BETWEEN 1 AND 512),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    tat_us     INTEGER NOT NULL,
    PRIMARY KEY (bucket_key, name)
) WITHOUT ROWID;
