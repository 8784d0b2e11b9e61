//! Refresh-token families and their tokens in PostgreSQL.

use super::Pg;
use crate::error::Result;
use crate::store::{FamilyRow, FamilyStore, RefreshRow};

/// A family that ended (its live refresh token lapsed).
const ENDED: &str = "ends_at < $1";

impl FamilyStore for Pg<'_> {
    fn insert_family(&self, f: &FamilyRow) -> Result<()> {
        self.execute(
            "INSERT INTO token_families (id, subject, scopes, claims, access_ttl, refresh_ttl, \
             created_at, expires_at, refreshed_at, ends_at, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &f.id,
                &f.subject,
                &f.scopes_json,
                &f.claims_json,
                &f.access_ttl,
                &f.refresh_ttl,
                &f.created_at,
                &f.expires_at,
                &f.refreshed_at,
                &f.ends_at,
                &f.generation,
            ],
        )?;
        Ok(())
    }

    fn family(&self, id: &str) -> Result<Option<FamilyRow>> {
        let row = self.query_opt(
            "SELECT id, subject, scopes, claims, access_ttl, refresh_ttl, created_at, \
             expires_at, refreshed_at, ends_at, generation, revoked_at, revoke_reason \
             FROM token_families WHERE id = $1",
            &[&id],
        )?;
        row.map(|r| {
            Ok(FamilyRow {
                id: r.try_get(0)?,
                subject: r.try_get(1)?,
                scopes_json: r.try_get(2)?,
                claims_json: r.try_get(3)?,
                access_ttl: r.try_get(4)?,
                refresh_ttl: r.try_get(5)?,
                created_at: r.try_get(6)?,
                expires_at: r.try_get(7)?,
                refreshed_at: r.try_get(8)?,
                ends_at: r.try_get(9)?,
                generation: r.try_get(10)?,
                revoked_at: r.try_get(11)?,
                revoke_reason: r.try_get(12)?,
            })
        })
        .transpose()
    }

    fn insert_token(
        &self,
        hash: &[u8; 32],
        family_id: &str,
        generation: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, generation, expires_at) \
             VALUES ($1, $2, $3, $4)",
            &[&&hash[..], &family_id, &generation, &expires_at],
        )?;
        Ok(())
    }

    fn token(&self, hash: &[u8; 32]) -> Result<Option<RefreshRow>> {
        let row = self.query_opt(
            "SELECT family_id, generation, expires_at, spent_at FROM refresh_tokens \
             WHERE token_hash = $1",
            &[&&hash[..]],
        )?;
        row.map(|r| {
            Ok(RefreshRow {
                family_id: r.try_get(0)?,
                generation: r.try_get(1)?,
                expires_at: r.try_get(2)?,
                spent_at: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn spend(&self, hash: &[u8; 32], now: i64) -> Result<bool> {
        // Read committed: a second transaction waits on the row lock, then
        // re-checks `spent_at IS NULL` against the committed row.
        let n = self.execute(
            "UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1 AND spent_at IS NULL",
            &[&&hash[..], &now],
        )?;
        Ok(n == 1)
    }

    fn refreshed(&self, family_id: &str, generation: i64, now: i64, ends_at: i64) -> Result<bool> {
        let n = self.execute(
            "UPDATE token_families SET generation = $2, \
             refreshed_at = GREATEST(refreshed_at, $3), ends_at = $4 \
             WHERE id = $1 AND revoked_at IS NULL",
            &[&family_id, &generation, &now, &ends_at],
        )?;
        Ok(n == 1)
    }

    fn revoke_family(&self, id: &str, reason: &str, now: i64) -> Result<bool> {
        let n = self.execute(
            "UPDATE token_families SET revoked_at = $2, revoke_reason = $3 \
             WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now, &reason],
        )?;
        Ok(n == 1)
    }

    fn revoke_subject(&self, subject: &str, reason: &str, now: i64) -> Result<Vec<String>> {
        self.query(
            "UPDATE token_families SET revoked_at = $2, revoke_reason = $3 \
             WHERE subject = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING id",
            &[&subject, &now, &reason],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    fn purge(&self, before: i64) -> Result<u64> {
        self.execute(
            &format!(
                "DELETE FROM refresh_tokens WHERE family_id IN \
                 (SELECT id FROM token_families WHERE {ENDED})"
            ),
            &[&before],
        )?;
        self.execute(
            &format!("DELETE FROM token_families WHERE {ENDED}"),
            &[&before],
        )
    }
}
