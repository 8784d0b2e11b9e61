//! Queries on the capability tables: root keys, revoked blocks, spend.

use super::Sql;
use crate::error::Result;
use crate::store::{CapabilityStore, RootRow};
use rusqlite::{OptionalExtension, params};

impl CapabilityStore for Sql<'_> {
    fn insert_root(&self, r: &RootRow) -> Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO capability_roots (kid, status, public_key, private_enc, created_at, \
                 verify_until, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                r.kid,
                r.status,
                r.public_key,
                r.private_enc,
                r.created_at,
                r.verify_until,
                r.retired_at
            ])?;
        Ok(self.0.last_insert_rowid())
    }

    fn roots(&self) -> Result<Vec<RootRow>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT seq, kid, status, public_key, private_enc, created_at, verify_until, \
             retired_at FROM capability_roots ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RootRow {
                seq: r.get(0)?,
                kid: r.get(1)?,
                status: r.get(2)?,
                public_key: r.get(3)?,
                private_enc: r.get(4)?,
                created_at: r.get(5)?,
                verify_until: r.get(6)?,
                retired_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn set_root_status(
        &self,
        seq: i64,
        status: &str,
        verify_until: Option<i64>,
        retired_at: Option<i64>,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE capability_roots SET status = ?2, verify_until = ?3, retired_at = ?4 \
                 WHERE seq = ?1",
            )?
            .execute(params![seq, status, verify_until, retired_at])?;
        Ok(())
    }

    fn serialize_roots(&self) -> Result<()> {
        // A write transaction here is BEGIN IMMEDIATE: it holds the only write lock.
        Ok(())
    }

    fn revoke(&self, revocation_id: &[u8], reason: Option<&str>, now: i64) -> Result<bool> {
        let n = self
            .0
            .prepare_cached(
                "INSERT INTO capability_revocations (revocation_id, revoked_at, reason) \
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![revocation_id, now, reason])?;
        Ok(n == 1)
    }

    fn first_revoked(&self, ids: &[&[u8]]) -> Result<Option<usize>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT 1 FROM capability_revocations WHERE revocation_id = ?1")?;
        for (i, id) in ids.iter().enumerate() {
            if stmt.exists([id])? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    fn spent(&self, ids: &[&[u8]]) -> Result<Vec<i64>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT spent_micros FROM capability_spend WHERE revocation_id = ?1")?;
        ids.iter()
            .map(|id| {
                Ok(stmt
                    .query_row([id], |r| r.get::<_, i64>(0))
                    .optional()?
                    .unwrap_or(0))
            })
            .collect()
    }

    fn charge(
        &self,
        revocation_id: &[u8],
        cost: i64,
        ceiling: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        if cost > ceiling {
            return Ok(None);
        }
        Ok(self
            .0
            .prepare_cached(
                "INSERT INTO capability_spend (revocation_id, spent_micros, updated_at) \
                 VALUES (?1, ?2, ?4) ON CONFLICT (revocation_id) DO UPDATE \
                 SET spent_micros = spent_micros + excluded.spent_micros, updated_at = ?4 \
                 WHERE spent_micros + excluded.spent_micros <= ?3 RETURNING spent_micros",
            )?
            .query_row(params![revocation_id, cost, ceiling, now], |r| r.get(0))
            .optional()?)
    }
}
