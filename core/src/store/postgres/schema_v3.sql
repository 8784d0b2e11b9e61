-- PostgreSQL schema v3 (= SQLite v7): scheduled rotation of API keys. A key
-- is due for rotation once it is rotation_period seconds old (NULL: the
-- manager's default, if any); rotate_key carries the period over.
ALTER TABLE api_keys ADD COLUMN rotation_period bigint
    CHECK (rotation_period IS NULL OR rotation_period > 0);
