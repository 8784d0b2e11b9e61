-- PostgreSQL schema v8 (issue 35): one-time JWT ids (SQLite: schema v13).
CREATE TABLE jti_claims (
    jti_hash   bytea  PRIMARY KEY CHECK (length(jti_hash) = 32),
    expires_at bigint NOT NULL
);
CREATE INDEX jti_claims_expiry ON jti_claims (expires_at);
