//! Queries on `sessions`.

use super::Sql;
use crate::error::Result;
use crate::model::keys::Page;
use crate::model::sessions::{Session, SessionFilter, SessionStatus};
use crate::store::{InsertSession, SessionStore};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params};

/// The selected columns; `?1` is "now": the status column reads `expired`
/// for a live session whose next expiry (`ends_at`) has passed, whether or
/// not `cleanup_expired` has run.
macro_rules! select_sessions {
    ($($rest:literal)?) => {
        concat!(
            "SELECT id, owner, key_id, session_type, \
               CASE WHEN ended_at IS NULL AND ends_at <= ?1 THEN 'expired' ELSE status END AS eff, \
             metadata, created_at, updated_at, last_seen_at, expires_at, idle_timeout, \
             ended_at, end_reason, seq, ends_at, fingerprint IS NOT NULL FROM sessions",
            $($rest)?
        )
    };
}

fn session(row: &Row<'_>) -> rusqlite::Result<Session> {
    let status: String = row.get(4)?;
    Ok(Session::from_stored(
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        &status,
        super::json_col(row, 5)?,
        [row.get(6)?, row.get(7)?, row.get(8)?],
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
        row.get(14)?,
        row.get(15)?,
    ))
}

impl SessionStore for Sql<'_> {
    fn insert(&self, s: &InsertSession<'_>) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "INSERT INTO sessions (id, owner, key_id, session_type, status, metadata, created_at, \
         updated_at, last_seen_at, expires_at, idle_timeout, ends_at, fingerprint) \
         VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?6, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            s.id,
            s.owner,
            s.key_id,
            s.session_type,
            s.metadata_json,
            s.now,
            s.expires_at,
            s.idle_timeout,
            s.ends_at,
            s.fingerprint
        ])?;
        Ok(())
    }

    fn get(&self, id: &str, now: i64) -> Result<Option<Session>> {
        let conn = self.0;
        Ok(conn
            .prepare_cached(select_sessions!(" WHERE id = ?2"))?
            .query_row(params![now, id], session)
            .optional()?)
    }

    fn list(
        &self,
        f: &SessionFilter,
        status: Option<SessionStatus>,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<Session>> {
        let conn = self.0;
        // The computed status is the fifth column; filter on it in an outer query.
        let mut sql = format!(
            "SELECT * FROM ({}) WHERE seq > ?2",
            select_sessions!().replace(
                "THEN 'expired' ELSE status END,",
                "THEN 'expired' ELSE status END AS eff,"
            )
        );
        let mut args: Vec<SqlValue> = vec![now.into(), after_seq.into()];
        for (col, v) in [
            ("owner", &f.owner),
            ("session_type", &f.session_type),
            ("key_id", &f.key_id),
        ] {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                args.push(v.clone().into());
            }
        }
        if let Some(s) = status {
            sql.push_str(" AND eff = ?");
            args.push(s.as_str().to_string().into());
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        super::paged(conn, &sql, args, limit, after_seq, 13, |row| {
            Ok(session(row)?)
        })
    }

    fn touch(&self, id: &str, now: i64, ends_at: Option<i64>) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2), \
                 updated_at = max(updated_at, ?2), ends_at = max(ends_at, ?3) WHERE id = ?1",
            )?
            .execute(params![id, now, ends_at])?;
        Ok(())
    }

    fn update(
        &self,
        id: &str,
        status: Option<&str>,
        metadata_json: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "UPDATE sessions SET status = coalesce(?2, status), metadata = coalesce(?3, metadata), \
         updated_at = max(updated_at, ?4) WHERE id = ?1",
        )?
        .execute(params![id, status, metadata_json, now])?;
        Ok(())
    }

    fn end(&self, id: &str, reason: &str, now: i64) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "UPDATE sessions SET status = 'ended', ended_at = ?2, end_reason = ?3, \
         updated_at = max(updated_at, ?2) WHERE id = ?1 AND ended_at IS NULL",
        )?
        .execute(params![id, now, reason])?;
        Ok(())
    }

    /// Ends the live sessions of key `key_id`; returns how many.
    fn end_for_key(&self, key_id: &str, reason: &str, now: i64) -> Result<u64> {
        let conn = self.0;
        let n = conn
            .prepare_cached(
                "UPDATE sessions SET status = 'ended', ended_at = ?2, end_reason = ?3, \
             updated_at = max(updated_at, ?2) WHERE key_id = ?1 AND ended_at IS NULL",
            )?
            .execute(params![key_id, now, reason])?;
        Ok(n as u64)
    }

    /// Marks live sessions past their expiry as `expired` (ended at the expiry
    /// time); returns how many.
    fn mark_expired(&self, now: i64) -> Result<u64> {
        let conn = self.0;
        let n = conn
            .prepare_cached(
                "UPDATE sessions SET status = 'expired', end_reason = 'expired', \
                 ended_at = ends_at, updated_at = max(updated_at, ?1) \
                 WHERE ended_at IS NULL AND ends_at <= ?1",
            )?
            .execute(params![now])?;
        Ok(n as u64)
    }

    /// Deletes sessions that ended at or before `before`; returns how many.
    fn purge(&self, before: i64) -> Result<u64> {
        let conn = self.0;
        let n = conn
            .prepare_cached("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at <= ?1")?
            .execute(params![before])?;
        Ok(n as u64)
    }

    fn fingerprint(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .0
            .prepare_cached("SELECT fingerprint FROM sessions WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn live_for_owner(&self, owner: &str, now: i64) -> Result<Vec<String>> {
        let mut st = self.0.prepare_cached(
            "SELECT id FROM sessions WHERE owner = ?1 AND ended_at IS NULL \
             AND (ends_at IS NULL OR ends_at > ?2) ORDER BY created_at, seq",
        )?;
        let ids = st
            .query_map(params![owner, now], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    fn serialize_owner(&self, _owner: &str) -> Result<()> {
        // A SQLite write transaction holds the database's one write lock.
        Ok(())
    }
}
