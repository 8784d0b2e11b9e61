//! Rate-limit buckets in PostgreSQL (the `store` rate-limit store).

use super::Pg;
use crate::error::Result;
use crate::store::RateStore;

impl RateStore for Pg<'_> {
    fn buckets(&self, key: &str, names: &[&str]) -> Result<Vec<Option<i64>>> {
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort_unstable();
        if self.write {
            // A row to lock even for a full bucket (0: long past, the same as
            // none), so no two hosts decide on one bucket at once; locked in
            // name order, so two checks never wait on each other.
            self.execute(
                "INSERT INTO rate_buckets (bucket_key, name, tat_us) \
                 SELECT $1, n, 0 FROM unnest($2::text[]) AS n ORDER BY n ON CONFLICT DO NOTHING",
                &[&key, &sorted],
            )?;
        }
        let sql = format!(
            "SELECT name, tat_us FROM rate_buckets WHERE bucket_key = $1 AND name = ANY($2) \
             ORDER BY name{}",
            self.lock()
        );
        let mut found = std::collections::HashMap::new();
        for r in self.query(&sql, &[&key, &sorted])? {
            found.insert(r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?);
        }
        Ok(names.iter().map(|n| found.get(*n).copied()).collect())
    }

    fn set_bucket(&self, key: &str, name: &str, tat_us: i64) -> Result<()> {
        self.execute(
            "INSERT INTO rate_buckets (bucket_key, name, tat_us) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket_key, name) DO UPDATE SET tat_us = excluded.tat_us",
            &[&key, &name, &tat_us],
        )?;
        Ok(())
    }

    fn claim_jti(&self, jti_hash: &[u8; 32], expires_at: i64) -> Result<bool> {
        let n = self.execute(
            "INSERT INTO jti_claims (jti_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&&jti_hash[..], &expires_at],
        )?;
        Ok(n == 1)
    }

    fn purge_jti(&self, before: i64) -> Result<u64> {
        self.execute("DELETE FROM jti_claims WHERE expires_at < $1", &[&before])
    }

    fn purge_buckets(&self, now_us: i64) -> Result<u64> {
        self.execute("DELETE FROM rate_buckets WHERE tat_us <= $1", &[&now_us])
    }
}
