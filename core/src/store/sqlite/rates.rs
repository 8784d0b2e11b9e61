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

    fn purge_buckets(&self, now_us: i64) -> Result<u64> {
        let n = self
            .0
            .prepare_cached("DELETE FROM rate_buckets WHERE tat_us <= ?1")?
            .execute([now_us])?;
        Ok(n as u64)
    }
}
