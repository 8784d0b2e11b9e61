-- Schema v13 (issue 35): one-time JWT ids (PostgreSQL: schema v8).
--
-- `claim_jti` records the SHA-256 of a token's `jti` until the token
-- expires (plus a grace for clock leeway): the first claim wins, every
-- later one of the same jti is refused, in every process on this store.
-- Expired claims are purged in the background (memory stays bounded).
CREATE TABLE jti_claims (
    jti_hash   BLOB    PRIMARY KEY CHECK (length(jti_hash) = 32),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX jti_claims_expiry ON jti_claims (expires_at);
