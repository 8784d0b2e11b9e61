//! Queries on `token_families` and `refresh_tokens`.

use super::Sql;
use crate::error::Result;
use crate::store::{FamilyRow, FamilyStore, RefreshRow};
use rusqlite::{OptionalExtension, Row, params};

const SELECT_FAMILY: &str = "SELECT id, subject, scopes, claims, access_ttl, refresh_ttl, \
     created_at, expires_at, refreshed_at, ends_at, generation, revoked_at, revoke_reason \
     FROM token_families";

fn family(r: &Row<'_>) -> rusqlite::Result<FamilyRow> {
    Ok(FamilyRow {
        id: r.get(0)?,
        subject: r.get(1)?,
        scopes_json: r.get(2)?,
        claims_json: r.get(3)?,
        access_ttl: r.get(4)?,
        refresh_ttl: r.get(5)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        refreshed_at: r.get(8)?,
        ends_at: r.get(9)?,
        generation: r.get(10)?,
        revoked_at: r.get(11)?,
        revoke_reason: r.get(12)?,
    })
}

impl FamilyStore for Sql<'_> {
    fn insert_family(&self, f: &FamilyRow) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO token_families (id, subject, scopes, claims, access_ttl, \
                 refresh_ttl, created_at, expires_at, refreshed_at, ends_at, generation) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                f.id,
                f.subject,
                f.scopes_json,
                f.claims_json,
                f.access_ttl,
                f.refresh_ttl,
                f.created_at,
                f.expires_at,
                f.refreshed_at,
                f.ends_at,
                f.generation
            ])?;
        Ok(())
    }

    fn family(&self, id: &str) -> Result<Option<FamilyRow>> {
        Ok(self
            .0
            .prepare_cached(&format!("{SELECT_FAMILY} WHERE id = ?1"))?
            .query_row(params![id], family)
            .optional()?)
    }

    fn insert_token(
        &self,
        hash: &[u8; 32],
        family_id: &str,
        generation: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO refresh_tokens (token_hash, family_id, generation, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&hash[..], family_id, generation, expires_at])?;
        Ok(())
    }

    fn token(&self, hash: &[u8; 32]) -> Result<Option<RefreshRow>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT family_id, generation, expires_at, spent_at FROM refresh_tokens \
                 WHERE token_hash = ?1",
            )?
            .query_row(params![&hash[..]], |r| {
                Ok(RefreshRow {
                    family_id: r.get(0)?,
                    generation: r.get(1)?,
                    expires_at: r.get(2)?,
                    spent_at: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn spend(&self, hash: &[u8; 32], now: i64) -> Result<bool> {
        let n = self
            .0
            .prepare_cached(
                "UPDATE refresh_tokens SET spent_at = ?2 \
                 WHERE token_hash = ?1 AND spent_at IS NULL",
            )?
            .execute(params![&hash[..], now])?;
        Ok(n == 1)
    }

    fn refreshed(&self, family_id: &str, generation: i64, now: i64, ends_at: i64) -> Result<bool> {
        let n = self
            .0
            .prepare_cached(
                "UPDATE token_families SET generation = ?2, refreshed_at = max(refreshed_at, ?3), \
                 ends_at = ?4 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![family_id, generation, now, ends_at])?;
        Ok(n == 1)
    }

    fn revoke_family(&self, id: &str, reason: &str, now: i64) -> Result<bool> {
        let n = self
            .0
            .prepare_cached(
                "UPDATE token_families SET revoked_at = ?2, revoke_reason = ?3 \
                 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, now, reason])?;
        Ok(n == 1)
    }

    fn revoke_subject(&self, subject: &str, reason: &str, now: i64) -> Result<Vec<String>> {
        let mut st = self.0.prepare_cached(
            "UPDATE token_families SET revoked_at = ?2, revoke_reason = ?3 \
             WHERE subject = ?1 AND revoked_at IS NULL AND expires_at > ?2 RETURNING id",
        )?;
        let ids = st
            .query_map(params![subject, now, reason], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    fn purge(&self, before: i64) -> Result<u64> {
        const ENDED: &str = "ends_at < ?1";
        self.0
            .prepare_cached(&format!(
                "DELETE FROM refresh_tokens WHERE family_id IN \
                 (SELECT id FROM token_families WHERE {ENDED})"
            ))?
            .execute(params![before])?;
        let n = self
            .0
            .prepare_cached(&format!("DELETE FROM token_families WHERE {ENDED}"))?
            .execute(params![before])?;
        Ok(n as u64)
    }
}
