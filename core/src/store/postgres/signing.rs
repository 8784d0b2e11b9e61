//! Managed signing keys in PostgreSQL.

use super::Pg;
use crate::error::Result;
use crate::store::{SigningRow, SigningStore};
use tokio_postgres::Row;

pub(super) const SIGNING_COLUMNS: &str = "SELECT kid, alg, status, public_jwk, private_enc, created_at, verify_until, retired_at FROM signing_keys";

pub(super) fn signing_row(r: &Row) -> Result<SigningRow> {
    Ok(SigningRow {
        kid: r.try_get(0)?,
        alg: r.try_get(1)?,
        status: r.try_get(2)?,
        public_jwk: r.try_get(3)?,
        private_enc: r.try_get(4)?,
        created_at: r.try_get(5)?,
        verify_until: r.try_get(6)?,
        retired_at: r.try_get(7)?,
    })
}

/// The advisory lock serializing changes of the signing keys (any fixed number).
pub(super) const SIGNING_LOCK: i64 = 0x6974_6b73_6967_6e00; // "itksign"

impl SigningStore for Pg<'_> {
    fn insert(&self, k: &SigningRow) -> Result<()> {
        self.execute(
            "INSERT INTO signing_keys (kid, alg, status, public_jwk, private_enc, created_at, \
             verify_until, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &k.kid,
                &k.alg,
                &k.status,
                &k.public_jwk,
                &k.private_enc,
                &k.created_at,
                &k.verify_until,
                &k.retired_at,
            ],
        )?;
        Ok(())
    }

    fn all(&self) -> Result<Vec<SigningRow>> {
        let sql = format!("{SIGNING_COLUMNS} ORDER BY seq{}", self.lock());
        self.query(&sql, &[])?.iter().map(signing_row).collect()
    }

    fn get(&self, kid: &str) -> Result<Option<SigningRow>> {
        let sql = format!("{SIGNING_COLUMNS} WHERE kid = $1{}", self.lock());
        self.query_opt(&sql, &[&kid])?
            .map(|r| signing_row(&r))
            .transpose()
    }

    fn active(&self) -> Result<Option<SigningRow>> {
        let sql = format!("{SIGNING_COLUMNS} WHERE status = 'active'{}", self.lock());
        self.query_opt(&sql, &[])?
            .map(|r| signing_row(&r))
            .transpose()
    }

    fn set_status(
        &self,
        kid: &str,
        status: &str,
        verify_until: Option<i64>,
        retired_at: Option<i64>,
    ) -> Result<()> {
        self.execute(
            "UPDATE signing_keys SET status = $2, verify_until = $3, retired_at = $4 WHERE kid = $1",
            &[&kid, &status, &verify_until, &retired_at],
        )?;
        Ok(())
    }

    fn serialize(&self) -> Result<()> {
        // An advisory lock held to the end of the transaction; the statements
        // after it see what the previous holder committed (read committed).
        self.execute("SELECT pg_advisory_xact_lock($1)", &[&SIGNING_LOCK])?;
        Ok(())
    }

    fn fingerprint(&self, now: i64) -> Result<String> {
        let row = self.query_opt(
            "SELECT coalesce(string_agg(kid || ':' || status, ',' ORDER BY seq), '') \
             FROM signing_keys WHERE status = 'active' \
             OR (status = 'verify_only' AND verify_until > $1)",
            &[&now],
        )?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => String::new(),
        })
    }
}
