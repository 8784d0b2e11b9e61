//! Queries on `rate_buckets` (rate-limit state shared through the file).

use super::Sql;
use crate::error::Result;
use crate::store::RateStore;
use rusqlite::{OptionalExtension, params};

impl RateStore for Sql<'_> {
    fn buckets(&self, key: &str, names: &[&str]) -> Result<Vec<Option<i64>>> {
        // In a write transaction SQLite already holds the file's write lock:
        // nothing else reads-then-writes these rows meanwhile.
        let mut stmt = self.0.prepare_cached(
            "SELECT tat_us FROM rate_buckets WHERE bucket_key = ?1 AND name = ?2",
        )?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(
                stmt.query_row(params![key, name], |r| r.get(0))
                    .optional()?,
            );
        }
        Ok(out)
    }

    fn set_bucket(&self, key: &str, name: &str, tat_us: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO rate_buckets (bucket_key, name, tat_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (bucket_key, name) DO UPDATE SET tat_us = excluded.tat_us",
            )?
            .execute(params![key, name, tat_us])?;
        Ok(())
    }

    fn claim_jti(&self, jti_hash: &[u8; 32], expires_at: i64) -> Result<bool> {
        let n = self
            .0
            .prepare_cached(
                "INSERT INTO jti_claims (jti_hash, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(rusqlite::params![&jti_hash[..], expires_at])?;
        Ok(n == 1)
    }

    fn purge_jti(&self, before: i64) -> Result<u64> {
        let n = self
            .0
            .prepare_cached("DELETE FROM jti_claims WHERE expires_at < ?1")?
            .execute([before])?;
        Ok(n as u64)
    }

    fn purge_buckets(&self, now_us: i64) -> Result<u64> {
        let n = self
            .0
            .prepare_cached("DELETE FROM rate_buckets WHERE tat_us <= ?1")?
            .execute([now_us])?;
        Ok(n as u64)
    }
}
