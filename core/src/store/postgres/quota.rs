//! Quotas and reservations in PostgreSQL; the one-row fast path.

use super::Pg;
use crate::error::Result;
use crate::model::quota::{QuotaMetric, QuotaPeriod, QuotaRow, QuotaScope, QuotaSpec, Reservation};
use crate::store::{QuotaStore, quota_fast};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::queries::*;

pub(super) const QUOTA_COLUMNS: &str = "SELECT q.seq, q.scope, q.subject, q.metric, q.period, \
    q.limit_amount, q.used, q.reserved, q.window_start, q.refill_amount, q.refill_period, \
    q.alerted FROM quotas q";

pub(super) fn quota_row(r: &Row) -> Result<QuotaRow> {
    quota_row_at(r, 0)
}

/// The quota in the columns of `r` from `at` on (the `QUOTA_COLUMNS` order).
pub(super) fn quota_row_at(r: &Row, at: usize) -> Result<QuotaRow> {
    let refill_amount: Option<i64> = r.try_get(at + 9)?;
    let refill_period: Option<String> = r.try_get(at + 10)?;
    let refill = match refill_amount.zip(refill_period) {
        Some((amount, every)) => Some((count(amount), QuotaPeriod::parse(&every)?)),
        None => None,
    };
    Ok(QuotaRow {
        seq: r.try_get(at)?,
        scope: QuotaScope::parse(r.try_get(at + 1)?)?,
        subject: r.try_get(at + 2)?,
        metric: QuotaMetric::parse(r.try_get(at + 3)?)?,
        period: QuotaPeriod::parse(r.try_get(at + 4)?)?,
        limit: count(r.try_get(at + 5)?),
        used: count(r.try_get(at + 6)?),
        reserved: count(r.try_get(at + 7)?),
        window_start: r.try_get(at + 8)?,
        refill,
        alerted: r.try_get(at + 11)?,
        dirty: false,
    })
}

impl QuotaStore for Pg<'_> {
    fn key_owner(&self, key_id: &str) -> Result<Option<(String, Option<String>)>> {
        self.query_opt(
            "SELECT owner, rotated_to FROM api_keys WHERE id = $1",
            &[&key_id],
        )?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
    }

    fn move_key_quotas(&self, from: &str, to: &str) -> Result<()> {
        // The owner's lock before the rows' (see `delete`).
        self.execute(
            "SELECT irontoken_lock_owner(owner) FROM api_keys WHERE id = ANY (ARRAY[$1, $2])",
            &[&from, &to],
        )?;
        self.execute(
            "UPDATE quotas SET subject = $2 WHERE scope = 'key' AND subject = $1",
            &[&from, &to],
        )?;
        Ok(())
    }

    fn delete_key_quotas(&self, key_id: &str) -> Result<()> {
        self.execute(
            "DELETE FROM quotas WHERE scope = 'key' AND subject = $1",
            &[&key_id],
        )?;
        Ok(())
    }

    fn most_spent(&self, limit: u32) -> Result<Vec<QuotaRow>> {
        let sql = format!(
            "{QUOTA_COLUMNS} WHERE q.limit_amount > 0 \
             ORDER BY (q.used + q.reserved)::float8 / q.limit_amount DESC, q.seq LIMIT $1"
        );
        self.query(&sql, &[&(limit as i64)])?
            .iter()
            .map(quota_row)
            .collect()
    }

    fn for_subjects(&self, subjects: &[(QuotaScope, &str)]) -> Result<Vec<QuotaRow>> {
        // One round trip for all subjects; rows come back per subject, in
        // the order given, each subject's in creation order (and are locked
        // in that order within a write).
        let scopes: Vec<&str> = subjects.iter().map(|(s, _)| s.as_str()).collect();
        let names: Vec<&str> = subjects.iter().map(|(_, n)| *n).collect();
        let sql = format!(
            "{QUOTA_COLUMNS} JOIN unnest($1::text[], $2::text[]) WITH ORDINALITY \
             AS s(scope, subject, i) ON q.scope = s.scope AND q.subject = s.subject \
             ORDER BY s.i, q.seq{}",
            if self.write { " FOR UPDATE OF q" } else { "" }
        );
        self.query(&sql, &[&scopes, &names])?
            .iter()
            .map(quota_row)
            .collect()
    }

    fn find(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
    ) -> Result<Option<QuotaRow>> {
        let sql = format!(
            "{QUOTA_COLUMNS} WHERE q.scope = $1 AND q.subject = $2 AND q.metric = $3 AND q.period = $4{}",
            self.lock()
        );
        self.query_opt(
            &sql,
            &[
                &scope.as_str(),
                &subject,
                &metric.as_str(),
                &period.as_str(),
            ],
        )?
        .map(|r| quota_row(&r))
        .transpose()
    }

    fn upsert(
        &self,
        s: &QuotaSpec,
        refill: Option<(u64, QuotaPeriod)>,
        window_start: i64,
        now: i64,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, \
               refill_amount, refill_period, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (scope, subject, metric, period) DO UPDATE SET \
               limit_amount = excluded.limit_amount, refill_amount = excluded.refill_amount, \
               refill_period = excluded.refill_period, alerted = 0, updated_at = excluded.updated_at",
            &[
                &s.scope.as_str(),
                &s.subject,
                &s.metric.as_str(),
                &s.period.as_str(),
                &(s.limit as i64),
                &window_start,
                &refill.map(|r| r.0 as i64),
                &refill.map(|r| r.1.as_str()),
                &now,
            ],
        )?;
        Ok(())
    }

    fn delete(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
    ) -> Result<bool> {
        // The owner's lock before the row's (the DELETE locks the row before
        // its trigger runs): the order every change of an owner's quota
        // layout takes (schema v4), so two hosts never deadlock.
        self.execute(
            "SELECT irontoken_lock_owner(o) FROM (SELECT irontoken_quota_owner($1, $2) AS o) s \
             WHERE o IS NOT NULL",
            &[&scope.as_str(), &subject],
        )?;
        // Then the key quota rows whose flag the delete recomputes, in the
        // order a consumption locks them (key rows by seq, before any owner
        // row): a consumption holding a key row and waiting for the owner's
        // row being deleted would otherwise wait on a delete that waits on it.
        self.execute(
            "SELECT 1 FROM quotas q WHERE q.scope = 'key' AND (q.subject = $2 \
             OR ($1 = 'owner' AND q.subject IN (SELECT id FROM api_keys WHERE owner = $2))) \
             ORDER BY q.seq FOR UPDATE",
            &[&scope.as_str(), &subject],
        )?;
        let n = self.execute(
            "DELETE FROM quotas WHERE scope = $1 AND subject = $2 AND metric = $3 AND period = $4",
            &[
                &scope.as_str(),
                &subject,
                &metric.as_str(),
                &period.as_str(),
            ],
        )?;
        Ok(n == 1)
    }

    fn save(&self, r: &QuotaRow, now: i64) -> Result<()> {
        self.execute(
            "UPDATE quotas SET limit_amount = $2, used = $3, reserved = $4, window_start = $5, \
             alerted = $6, updated_at = greatest(updated_at, $7) WHERE seq = $1",
            &[
                &r.seq,
                &(r.limit as i64),
                &(r.used as i64),
                &(r.reserved as i64),
                &r.window_start,
                &r.alerted,
                &now,
            ],
        )?;
        Ok(())
    }

    fn insert_reservation(&self, r: &Reservation, items: &str) -> Result<()> {
        self.execute(
            "INSERT INTO quota_reservations (id, key_id, requests, tokens, cost_micros, items, \
             status, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'held', $7, $8)",
            &[
                &r.id,
                &r.key_id,
                &(r.amounts.requests as i64),
                &(r.amounts.tokens as i64),
                &(r.amounts.cost_micros as i64),
                &items,
                &r.created_at,
                &r.expires_at,
            ],
        )?;
        Ok(())
    }

    fn reservation_state(&self, id: &str) -> Result<Option<(String, String)>> {
        let sql = format!(
            "SELECT key_id, status FROM quota_reservations WHERE id = $1{}",
            self.lock()
        );
        self.query_opt(&sql, &[&id])?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    fn mark_reservation(&self, id: &str, status: &str, now: i64) -> Result<()> {
        self.execute(
            "UPDATE quota_reservations SET status = $2, closed_at = coalesce(closed_at, $3) \
             WHERE id = $1",
            &[&id, &status, &now],
        )?;
        Ok(())
    }

    fn release_reservation(&self, id: &str, status: &str, now: i64) -> Result<()> {
        // Locked: another host releasing it at the same time waits, then
        // finds it no longer held and gives nothing back twice.
        let Some(row) = self.query_opt(
            "SELECT items FROM quota_reservations WHERE id = $1 AND status = 'held' FOR UPDATE",
            &[&id],
        )?
        else {
            return Ok(());
        };
        let items: Vec<[i64; 2]> = json(&row, 0)?;
        for [seq, amount] in items {
            self.execute(
                "UPDATE quotas SET reserved = greatest(0, reserved - $2), \
                 updated_at = greatest(updated_at, $3) WHERE seq = $1",
                &[&seq, &amount, &now],
            )?;
        }
        self.execute(
            "UPDATE quota_reservations SET status = $2, closed_at = $3 WHERE id = $1",
            &[&id, &status, &now],
        )?;
        Ok(())
    }

    fn expired_holds(&self, key_id: &str, now: i64) -> Result<Vec<[i64; 2]>> {
        let mut out = Vec::new();
        for r in self.query(
            "SELECT items FROM quota_reservations WHERE status = 'held' AND expires_at <= $2 \
             AND key_id = $1",
            &[&key_id, &now],
        )? {
            out.extend(json::<Vec<[i64; 2]>>(&r, 0)?);
        }
        Ok(out)
    }

    fn solo_row(&self, key_id: &str) -> Result<Option<QuotaRow>> {
        let sql = format!("{QUOTA_COLUMNS} WHERE q.scope = 'key' AND q.subject = $1 AND q.solo");
        self.query_opt(&sql, &[&key_id])?
            .map(|r| quota_row(&r))
            .transpose()
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
        let level = first_level as i64;
        let params: [&(dyn ToSql + Sync); 8] = [
            &key_id, &requests, &tokens, &cost, &day, &month, &now, &level,
        ];
        if which == quota_fast::Rows::OneRow {
            // The key's only quota, charged by one UPDATE; the row comes
            // back as it was.
            let rows = self.query(quota_fast::one_row(quota_fast::Dialect::Postgres), &params)?;
            return if rows.is_empty() {
                Ok(None)
            } else {
                rows.iter()
                    .map(|r| quota_row_at(r, 0))
                    .collect::<Result<_>>()
                    .map(Some)
            };
        }
        // Every quota of the key and its owner, all or nothing.
        let rows = self.query(quota_fast::all_rows(), &params)?;
        let applied = match rows.first() {
            Some(r) => r.try_get::<_, bool>(0)?,
            None => false,
        };
        if !applied {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<_, Option<i64>>(1)?.is_some() {
                out.push(quota_row_at(r, 1)?);
            }
        }
        Ok(Some(out))
    }

    fn expire_reservations(&self, key_id: &str, now: i64) -> Result<u64> {
        let ids: Vec<String> = self
            .query(
                "SELECT id FROM quota_reservations WHERE status = 'held' AND expires_at <= $2 \
                 AND key_id = $1 ORDER BY id",
                &[&key_id, &now],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        for id in &ids {
            self.release_reservation(id, "expired", now)?;
        }
        Ok(ids.len() as u64)
    }

    fn reservation_key(&self, id: &str) -> Result<Option<String>> {
        self.query_opt(
            "SELECT key_id FROM quota_reservations WHERE id = $1",
            &[&id],
        )?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(Into::into)
    }

    fn expired_keys(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        self.query(
            "SELECT DISTINCT key_id FROM quota_reservations \
             WHERE status = 'held' AND expires_at <= $1 LIMIT $2",
            &[&now, &limit],
        )?
        .iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
    }
}
