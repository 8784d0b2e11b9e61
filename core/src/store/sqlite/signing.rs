//! Queries on `signing_keys`.

use super::Sql;
use crate::error::Result;
use crate::store::{SigningRow, SigningStore};
use rusqlite::{OptionalExtension, Row, params};

const COLUMNS: &str =
    "kid, alg, status, public_jwk, private_enc, created_at, verify_until, retired_at";

fn row(r: &Row<'_>) -> rusqlite::Result<SigningRow> {
    Ok(SigningRow {
        kid: r.get(0)?,
        alg: r.get(1)?,
        status: r.get(2)?,
        public_jwk: r.get(3)?,
        private_enc: r.get(4)?,
        created_at: r.get(5)?,
        verify_until: r.get(6)?,
        retired_at: r.get(7)?,
    })
}

impl SigningStore for Sql<'_> {
    fn insert(&self, k: &SigningRow) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "INSERT INTO signing_keys (kid, alg, status, public_jwk, private_enc, created_at, \
         verify_until, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            k.kid,
            k.alg,
            k.status,
            k.public_jwk,
            k.private_enc,
            k.created_at,
            k.verify_until,
            k.retired_at
        ])?;
        Ok(())
    }

    fn all(&self) -> Result<Vec<SigningRow>> {
        let conn = self.0;
        let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY seq");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn get(&self, kid: &str) -> Result<Option<SigningRow>> {
        let conn = self.0;
        let sql = format!("SELECT {COLUMNS} FROM signing_keys WHERE kid = ?1");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([kid], row)
            .optional()?)
    }

    fn active(&self) -> Result<Option<SigningRow>> {
        let conn = self.0;
        let sql = format!("SELECT {COLUMNS} FROM signing_keys WHERE status = 'active'");
        Ok(conn.prepare_cached(&sql)?.query_row([], row).optional()?)
    }

    fn set_status(
        &self,
        kid: &str,
        status: &str,
        verify_until: Option<i64>,
        retired_at: Option<i64>,
    ) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
        "UPDATE signing_keys SET status = ?2, verify_until = ?3, retired_at = ?4 WHERE kid = ?1",
    )?
    .execute(params![kid, status, verify_until, retired_at])?;
        Ok(())
    }

    /// Changes whenever the set of usable keys changes (including a
    /// verify-only key's window closing at `now`).
    fn serialize(&self) -> Result<()> {
        // A write transaction here is BEGIN IMMEDIATE: it holds the only write lock.
        Ok(())
    }

    fn fingerprint(&self, now: i64) -> Result<String> {
        let conn = self.0;
        Ok(conn
            .prepare_cached(
                "SELECT coalesce(group_concat(kid || ':' || status, ','), '') FROM \
             (SELECT kid, status FROM signing_keys WHERE status = 'active' \
              OR (status = 'verify_only' AND verify_until > ?1) ORDER BY seq)",
            )?
            .query_row([now], |r| r.get(0))?)
    }
}
