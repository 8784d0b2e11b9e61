//! Sessions in PostgreSQL.

use super::Pg;
use crate::error::Result;
use crate::model::keys::Page;
use crate::model::sessions::{Session, SessionFilter, SessionStatus};
use crate::store::{InsertSession, SessionStore};
use tokio_postgres::Row;

use super::queries::*;

/// The session columns; `$1` is "now": the status reads `expired` for a
/// live session whose next expiry (`ends_at`) has passed.
pub(super) const SESSION_COLUMNS: &str = "SELECT id, owner, key_id, session_type, \
    CASE WHEN ended_at IS NULL AND ends_at <= $1 THEN 'expired' ELSE status END AS eff, \
    metadata, created_at, updated_at, last_seen_at, expires_at, idle_timeout, ended_at, \
    end_reason, seq, ends_at, fingerprint IS NOT NULL FROM sessions";

pub(super) fn session(row: &Row) -> Result<Session> {
    let status: &str = row.try_get(4)?;
    Ok(Session::from_stored(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        status,
        json(row, 5)?,
        [row.try_get(6)?, row.try_get(7)?, row.try_get(8)?],
        row.try_get(9)?,
        row.try_get(10)?,
        row.try_get(11)?,
        row.try_get(12)?,
        row.try_get(14)?,
        row.try_get(15)?,
    ))
}

impl SessionStore for Pg<'_> {
    fn insert(&self, s: &InsertSession<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO sessions (id, owner, key_id, session_type, status, metadata, created_at, \
             updated_at, last_seen_at, expires_at, idle_timeout, ends_at, fingerprint) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $6, $6, $7, $8, $9, $10)",
            &[
                &s.id,
                &s.owner,
                &s.key_id,
                &s.session_type,
                &s.metadata_json,
                &s.now,
                &s.expires_at,
                &s.idle_timeout,
                &s.ends_at,
                &s.fingerprint,
            ],
        )?;
        Ok(())
    }

    fn get(&self, id: &str, now: i64) -> Result<Option<Session>> {
        let sql = format!("{SESSION_COLUMNS} WHERE id = $2{}", self.lock());
        self.query_opt(&sql, &[&now, &id])?
            .map(|r| session(&r))
            .transpose()
    }

    fn list(
        &self,
        f: &SessionFilter,
        status: Option<SessionStatus>,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<Session>> {
        let mut q = Query::new("SELECT * FROM (");
        q.text(SESSION_COLUMNS).arg(now); // $1
        q.push(") s WHERE seq > $", after_seq);
        for (col, v) in [
            ("owner", &f.owner),
            ("session_type", &f.session_type),
            ("key_id", &f.key_id),
        ] {
            if let Some(v) = v {
                q.push(&format!(" AND {col} = $"), v.clone());
            }
        }
        if let Some(s) = status {
            q.push(" AND eff = $", s.as_str().to_string());
        }
        q.push(" ORDER BY seq LIMIT $", limit as i64 + 1);
        page(q.run(self)?, limit, |r| Ok(r.try_get(13)?), session)
    }

    fn touch(&self, id: &str, now: i64, ends_at: Option<i64>) -> Result<()> {
        self.execute(
            "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2), \
             updated_at = greatest(updated_at, $2), ends_at = greatest(ends_at, $3) WHERE id = $1",
            &[&id, &now, &ends_at],
        )?;
        Ok(())
    }

    fn update(
        &self,
        id: &str,
        status: Option<&str>,
        metadata_json: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.execute(
            "UPDATE sessions SET status = coalesce($2, status), metadata = coalesce($3, metadata), \
             updated_at = greatest(updated_at, $4) WHERE id = $1",
            &[&id, &status, &metadata_json, &now],
        )?;
        Ok(())
    }

    fn end(&self, id: &str, reason: &str, now: i64) -> Result<()> {
        self.execute(
            "UPDATE sessions SET status = 'ended', ended_at = $2, end_reason = $3, \
             updated_at = greatest(updated_at, $2) WHERE id = $1 AND ended_at IS NULL",
            &[&id, &now, &reason],
        )?;
        Ok(())
    }

    fn end_for_key(&self, key_id: &str, reason: &str, now: i64) -> Result<u64> {
        self.execute(
            "UPDATE sessions SET status = 'ended', ended_at = $2, end_reason = $3, \
             updated_at = greatest(updated_at, $2) WHERE key_id = $1 AND ended_at IS NULL",
            &[&key_id, &now, &reason],
        )
    }

    fn mark_expired(&self, now: i64) -> Result<u64> {
        self.execute(
            "UPDATE sessions SET status = 'expired', end_reason = 'expired', \
               ended_at = ends_at, updated_at = greatest(updated_at, $1) \
             WHERE ended_at IS NULL AND ends_at <= $1",
            &[&now],
        )
    }

    fn purge(&self, before: i64) -> Result<u64> {
        self.execute(
            "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at <= $1",
            &[&before],
        )
    }

    fn fingerprint(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_opt("SELECT fingerprint FROM sessions WHERE id = $1", &[&id])?
            .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
            .transpose()?
            .flatten())
    }

    fn live_for_owner(&self, owner: &str, now: i64) -> Result<Vec<String>> {
        self.query(
            "SELECT id FROM sessions WHERE owner = $1 AND ended_at IS NULL \
             AND (ends_at IS NULL OR ends_at > $2) ORDER BY created_at, seq",
            &[&owner, &now],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    fn serialize_owner(&self, owner: &str) -> Result<()> {
        // One lock per owner (hashed): creations for one owner queue up.
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('itk-sessions:' || $1, 0))",
            &[&owner],
        )?;
        Ok(())
    }
}
