//! Queries on `quotas` and `quota_reservations`.

use super::Sql;
use crate::error::Result;
use crate::model::quota::{QuotaMetric, QuotaPeriod, QuotaRow, QuotaScope, QuotaSpec, Reservation};
use crate::store::{QuotaStore, quota_fast};
use rusqlite::{OptionalExtension, Row, params};

/// The quota columns `row` reads, then `$rest` (a WHERE clause): one
/// constant string per query, so the statement cache finds it without
/// building the text on every call.
macro_rules! select_quotas {
    ($rest:literal) => {
        concat!(
            "SELECT seq, scope, subject, metric, period, limit_amount, used, reserved, \
             window_start, refill_amount, refill_period, alerted FROM quotas ",
            $rest
        )
    };
}

fn row(r: &Row<'_>) -> Result<QuotaRow> {
    // Names read in place: no string is made for a value parsed at once.
    let bad = |i: usize, e: rusqlite::types::FromSqlError| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let text = |i: usize| r.get_ref(i)?.as_str_or_null().map_err(|e| bad(i, e));
    let name = |i: usize| r.get_ref(i)?.as_str().map_err(|e| bad(i, e));
    let refill_amount: Option<i64> = r.get(9)?;
    let refill = match refill_amount.zip(text(10)?) {
        Some((amount, every)) => Some((super::count(amount), QuotaPeriod::parse(every)?)),
        None => None,
    };
    Ok(QuotaRow {
        seq: r.get(0)?,
        scope: QuotaScope::parse(name(1)?)?,
        subject: r.get(2)?,
        metric: QuotaMetric::parse(name(3)?)?,
        period: QuotaPeriod::parse(name(4)?)?,
        limit: super::count(r.get(5)?),
        used: super::count(r.get(6)?),
        reserved: super::count(r.get(7)?),
        window_start: r.get(8)?,
        refill,
        alerted: r.get(11)?,
        dirty: false,
    })
}

impl QuotaStore for Sql<'_> {
    fn solo_row(&self, key_id: &str) -> Result<Option<QuotaRow>> {
        let mut stmt = self.0.prepare_cached(select_quotas!(
            "WHERE scope = 'key' AND subject = ?1 AND solo = 1"
        ))?;
        let mut rows = stmt.query(params![key_id])?;
        rows.next()?.map(row).transpose()
    }

    fn consume_fast(
        &self,
        which: quota_fast::Rows,
        key_id: &str,
        amounts: &crate::model::quota::Amounts,
        [day, month]: [i64; 2],
        now: i64,
        first_level: u8,
    ) -> Result<Option<Vec<QuotaRow>>> {
        let [requests, tokens, cost] = amounts.as_sql();
        let sql = match which {
            quota_fast::Rows::OneRow => quota_fast::one_row(quota_fast::Dialect::Sqlite),
            quota_fast::Rows::AllRows => quota_fast::all_rows_sqlite(),
        };
        let mut stmt = self.0.prepare_cached(sql)?;
        let level = first_level as i64;
        let mut rows = stmt.query(params![
            key_id, requests, tokens, cost, day, month, now, level
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row(r)?);
        }
        // The general path's order: the key's rows, then the owner's.
        out.sort_by_key(|r| (r.scope != QuotaScope::Key, r.seq));
        Ok((!out.is_empty()).then_some(out))
    }

    /// The owner of key `key_id` and the key that replaced it (rotation), or
    /// None if there is no such key.
    fn key_owner(&self, key_id: &str) -> Result<Option<(String, Option<String>)>> {
        let c = self.0;
        Ok(
            c.prepare_cached("SELECT owner, rotated_to FROM api_keys WHERE id = ?1")?
                .query_row(params![key_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
        )
    }

    /// Moves the key-scoped quotas of a rotated key to its successor.
    fn move_key_quotas(&self, from: &str, to: &str) -> Result<()> {
        let c = self.0;
        c.prepare_cached("UPDATE quotas SET subject = ?2 WHERE scope = 'key' AND subject = ?1")?
            .execute(params![from, to])?;
        Ok(())
    }

    /// Deletes the key-scoped quotas of a deleted key.
    fn delete_key_quotas(&self, key_id: &str) -> Result<()> {
        let c = self.0;
        c.prepare_cached("DELETE FROM quotas WHERE scope = 'key' AND subject = ?1")?
            .execute(params![key_id])?;
        Ok(())
    }

    /// The quotas of the given subjects, in a stable order.
    fn most_spent(&self, limit: u32) -> Result<Vec<QuotaRow>> {
        let mut stmt = self.0.prepare_cached(select_quotas!(
            "WHERE limit_amount > 0 ORDER BY (used + reserved) * 1.0 / limit_amount DESC, seq LIMIT ?1"
        ))?;
        let mut rows = stmt.query([limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row(r)?);
        }
        Ok(out)
    }

    fn for_subjects(&self, subjects: &[(QuotaScope, &str)]) -> Result<Vec<QuotaRow>> {
        let c = self.0;
        let mut out: Vec<QuotaRow> = Vec::new();
        // No ORDER BY: with one, SQLite marks the statement as depending on the
        // bound values, and rusqlite's statement cache then re-prepares it on
        // every use. Sorted here instead (creation order within each subject).
        let mut stmt = c.prepare_cached(select_quotas!("WHERE scope = ?1 AND subject = ?2"))?;
        for (scope, subject) in subjects {
            let start = out.len();
            let mut rows = stmt.query(params![scope.as_str(), subject])?;
            while let Some(r) = rows.next()? {
                out.push(row(r)?);
            }
            out[start..].sort_by_key(|r| r.seq);
        }
        Ok(out)
    }

    fn find(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
    ) -> Result<Option<QuotaRow>> {
        let c = self.0;
        let mut stmt = c.prepare_cached(select_quotas!(
            "WHERE scope = ?1 AND subject = ?2 AND metric = ?3 AND period = ?4"
        ))?;
        let mut rows = stmt.query(params![
            scope.as_str(),
            subject,
            metric.as_str(),
            period.as_str()
        ])?;
        rows.next()?.map(row).transpose()
    }

    fn upsert(
        &self,
        s: &QuotaSpec,
        refill: Option<(u64, QuotaPeriod)>,
        window_start: i64,
        now: i64,
    ) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, \
           refill_amount, refill_period, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
         ON CONFLICT (scope, subject, metric, period) DO UPDATE SET \
           limit_amount = excluded.limit_amount, refill_amount = excluded.refill_amount, \
           refill_period = excluded.refill_period, alerted = 0, updated_at = excluded.updated_at",
        )?
        .execute(params![
            s.scope.as_str(),
            s.subject,
            s.metric.as_str(),
            s.period.as_str(),
            s.limit as i64,
            window_start,
            refill.map(|r| r.0 as i64),
            refill.map(|r| r.1.as_str()),
            now
        ])?;
        Ok(())
    }

    fn delete(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
    ) -> Result<bool> {
        let c = self.0;
        let n = c
        .prepare_cached(
            "DELETE FROM quotas WHERE scope = ?1 AND subject = ?2 AND metric = ?3 AND period = ?4",
        )?
        .execute(params![
            scope.as_str(),
            subject,
            metric.as_str(),
            period.as_str()
        ])?;
        Ok(n == 1)
    }

    fn save(&self, r: &QuotaRow, now: i64) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "UPDATE quotas SET limit_amount = ?2, used = ?3, reserved = ?4, window_start = ?5, \
         alerted = ?6, updated_at = max(updated_at, ?7) WHERE seq = ?1",
        )?
        .execute(params![
            r.seq,
            r.limit as i64,
            r.used as i64,
            r.reserved as i64,
            r.window_start,
            r.alerted,
            now
        ])?;
        Ok(())
    }

    fn insert_reservation(&self, r: &Reservation, items: &str) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "INSERT INTO quota_reservations (id, key_id, requests, tokens, cost_micros, items, \
         status, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'held', ?7, ?8)",
        )?
        .execute(params![
            r.id,
            r.key_id,
            r.amounts.requests as i64,
            r.amounts.tokens as i64,
            r.amounts.cost_micros as i64,
            items,
            r.created_at,
            r.expires_at
        ])?;
        Ok(())
    }

    /// (key id, status) of reservation `id`.
    fn reservation_state(&self, id: &str) -> Result<Option<(String, String)>> {
        let c = self.0;
        Ok(
            c.prepare_cached("SELECT key_id, status FROM quota_reservations WHERE id = ?1")?
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
        )
    }

    fn mark_reservation(&self, id: &str, status: &str, now: i64) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "UPDATE quota_reservations SET status = ?2, closed_at = coalesce(closed_at, ?3) \
         WHERE id = ?1",
        )?
        .execute(params![id, status, now])?;
        Ok(())
    }

    /// Gives a held reservation's amounts back to its quotas and closes it as `status`.
    fn release_reservation(&self, id: &str, status: &str, now: i64) -> Result<()> {
        let c = self.0;
        let items: String = c
            .prepare_cached(
                "SELECT items FROM quota_reservations WHERE id = ?1 AND status = 'held'",
            )?
            .query_row(params![id], |r| r.get(0))?;
        let items: Vec<[i64; 2]> = serde_json::from_str(&items)?;
        let mut give = c.prepare_cached(
            "UPDATE quotas SET reserved = max(0, reserved - ?2), updated_at = max(updated_at, ?3) \
         WHERE seq = ?1",
        )?;
        for [seq, amount] in items {
            give.execute(params![seq, amount, now])?;
        }
        c.prepare_cached(
            "UPDATE quota_reservations SET status = ?2, closed_at = ?3 WHERE id = ?1",
        )?
        .execute(params![id, status, now])?;
        Ok(())
    }

    /// What held-but-expired reservations of `key_id` still hold, per quota
    /// row (seq, amount): a read-only view subtracts them instead of releasing.
    fn expired_holds(&self, key_id: &str, now: i64) -> Result<Vec<[i64; 2]>> {
        let c = self.0;
        let lists: Vec<String> = c
            .prepare_cached(
                "SELECT items FROM quota_reservations WHERE status = 'held' AND expires_at <= ?2 \
             AND key_id = ?1",
            )?
            .query_map(params![key_id, now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for l in lists {
            out.extend(serde_json::from_str::<Vec<[i64; 2]>>(&l)?);
        }
        Ok(out)
    }

    /// Releases the held reservations of `key_id` past their TTL; returns how many.
    fn expire_reservations(&self, key_id: &str, now: i64) -> Result<u64> {
        let c = self.0;
        let ids: Vec<String> = c
            .prepare_cached(
                "SELECT id FROM quota_reservations WHERE status = 'held' AND expires_at <= ?2 \
             AND key_id = ?1",
            )?
            .query_map(params![key_id, now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in &ids {
            self.release_reservation(id, "expired", now)?;
        }
        Ok(ids.len() as u64)
    }

    fn reservation_key(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .prepare_cached("SELECT key_id FROM quota_reservations WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }

    fn expired_keys(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT DISTINCT key_id FROM quota_reservations \
                 WHERE status = 'held' AND expires_at <= ?1 LIMIT ?2",
            )?
            .query_map(params![now, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }
}
