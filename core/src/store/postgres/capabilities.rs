//! Capability root keys, revoked blocks and spend in PostgreSQL.

use super::Pg;
use crate::error::Result;
use crate::store::{CapabilityStore, RootRow};

/// The advisory lock serializing changes of the root keys (any fixed number).
const ROOTS_LOCK: i64 = 0x6974_6b63_6170_7300; // "itkcaps"

impl CapabilityStore for Pg<'_> {
    fn insert_root(&self, r: &RootRow) -> Result<i64> {
        let row = self.query_opt(
            "INSERT INTO capability_roots (kid, status, public_key, private_enc, created_at, \
             verify_until, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
            &[
                &r.kid,
                &r.status,
                &r.public_key,
                &r.private_enc,
                &r.created_at,
                &r.verify_until,
                &r.retired_at,
            ],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or_default())
    }

    fn roots(&self) -> Result<Vec<RootRow>> {
        self.query(
            "SELECT seq, kid, status, public_key, private_enc, created_at, verify_until, \
             retired_at FROM capability_roots ORDER BY seq",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(RootRow {
                seq: r.try_get(0)?,
                kid: r.try_get(1)?,
                status: r.try_get(2)?,
                public_key: r.try_get(3)?,
                private_enc: r.try_get(4)?,
                created_at: r.try_get(5)?,
                verify_until: r.try_get(6)?,
                retired_at: r.try_get(7)?,
            })
        })
        .collect()
    }

    fn set_root_status(
        &self,
        seq: i64,
        status: &str,
        verify_until: Option<i64>,
        retired_at: Option<i64>,
    ) -> Result<()> {
        self.execute(
            "UPDATE capability_roots SET status = $2, verify_until = $3, retired_at = $4 \
             WHERE seq = $1",
            &[&seq, &status, &verify_until, &retired_at],
        )?;
        Ok(())
    }

    fn serialize_roots(&self) -> Result<()> {
        self.execute("SELECT pg_advisory_xact_lock($1)", &[&ROOTS_LOCK])?;
        Ok(())
    }

    fn revoke(&self, revocation_id: &[u8], reason: Option<&str>, now: i64) -> Result<bool> {
        let n = self.execute(
            "INSERT INTO capability_revocations (revocation_id, revoked_at, reason) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&revocation_id, &now, &reason],
        )?;
        Ok(n == 1)
    }

    fn first_revoked(&self, ids: &[&[u8]]) -> Result<Option<usize>> {
        let owned: Vec<&[u8]> = ids.to_vec();
        let rows = self.query(
            "SELECT revocation_id FROM capability_revocations WHERE revocation_id = ANY($1)",
            &[&owned],
        )?;
        let revoked: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        Ok(ids.iter().position(|id| revoked.iter().any(|r| r == id)))
    }

    fn spent(&self, ids: &[&[u8]]) -> Result<Vec<i64>> {
        let owned: Vec<&[u8]> = ids.to_vec();
        let rows = self.query(
            "SELECT revocation_id, spent_micros FROM capability_spend \
             WHERE revocation_id = ANY($1)",
            &[&owned],
        )?;
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            found.push((r.try_get::<_, Vec<u8>>(0)?, r.try_get::<_, i64>(1)?));
        }
        Ok(ids
            .iter()
            .map(|id| found.iter().find(|(k, _)| k == id).map_or(0, |(_, v)| *v))
            .collect())
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
        // One statement: the row is locked by the upsert, so two charges
        // through one block are decided one after the other.
        self.query_opt(
            "INSERT INTO capability_spend AS s (revocation_id, spent_micros, updated_at) \
             VALUES ($1, $2, $4) ON CONFLICT (revocation_id) DO UPDATE \
             SET spent_micros = s.spent_micros + excluded.spent_micros, updated_at = $4 \
             WHERE s.spent_micros + excluded.spent_micros <= $3 RETURNING spent_micros",
            &[&revocation_id, &cost, &ceiling, &now],
        )?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }
}
