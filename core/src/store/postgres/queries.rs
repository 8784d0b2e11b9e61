//! The queries of the storage interface in PostgreSQL's dialect. Reads
//! that a write transaction acts on lock their rows (`Pg::lock`).

use super::Pg;
use crate::error::{Error, ErrorKind, Result};
use crate::model::agents::{AgentClaims, Budget, Lease};
use crate::model::audit::{AuditEvent, AuditFilter, NewAuditEvent};
use crate::model::keys::{KeyFilter, KeyRecord, KeyStatus, Page};
use crate::model::quota::{QuotaMetric, QuotaPeriod, QuotaRow, QuotaScope, QuotaSpec, Reservation};
use crate::model::sessions::{Session, SessionFilter, SessionStatus};
use crate::model::usage::{PendingUsage, SUMMED, UsageQuery, UsageRecord, UsageTotals};
use crate::store::{
    AgentStore, AuditStore, InsertKey, InsertSession, KeyState, KeyStore, MetaStore, QuotaStore,
    RateStore, SessionStore, SigningRow, SigningStore, UpdateFields, UsageStore,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

type Param = Box<dyn ToSql + Sync>;

/// A stored count or amount (kept >= 0 by the schema) as `u64`.
fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// A JSON text column parsed as `T`.
fn json<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> Result<T> {
    let s: &str = row.try_get(i)?;
    serde_json::from_str(s).map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            format!("a stored JSON column is invalid: {e}"),
        )
    })
}

/// Builds a query with numbered parameters.
struct Query {
    sql: String,
    args: Vec<Param>,
}

impl Query {
    fn new(sql: &str) -> Query {
        Query {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }
    /// Appends `sql` with `$` replaced by the next parameter's number.
    fn push(&mut self, sql: &str, arg: impl ToSql + Sync + 'static) -> &mut Self {
        self.args.push(Box::new(arg));
        self.sql
            .push_str(&sql.replace('$', &format!("${}", self.args.len())));
        self
    }
    /// Adds a parameter that `sql` already given refers to by number.
    fn arg(&mut self, arg: impl ToSql + Sync + 'static) -> &mut Self {
        self.args.push(Box::new(arg));
        self
    }
    fn text(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
    fn run(&self, pg: &Pg<'_>) -> Result<Vec<Row>> {
        pg.query(&self.sql, &self.params())
    }
}

/// A page of at most `limit` items from `rows` (fetched with `limit + 1`),
/// the cursor being `cursor(last item's row)`.
fn page<T>(
    rows: Vec<Row>,
    limit: u32,
    cursor: impl Fn(&Row) -> Result<i64>,
    item: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let more = rows.len() > limit as usize;
    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        items.push(item(row)?);
        last = Some(cursor(row)?);
    }
    Ok(Page {
        items,
        next_cursor: if more {
            last.map(|s| s.to_string())
        } else {
            None
        },
    })
}

const KEY_COLUMNS: &str = "SELECT k.id, k.prefix, k.display_prefix, k.owner, k.name, \
    k.description, k.scopes, k.metadata, k.created_at, k.updated_at, k.expires_at, k.enabled, \
    k.revoked_at, k.revoked_reason, k.version, k.rotated_from, k.rotated_to, k.seq, k.revision, \
    k.rate_limits, u.usage_count, u.last_used_at, k.rotation_period FROM api_keys k \
    LEFT JOIN key_usage u ON u.seq = k.seq";

fn key_record(row: &Row, now: i64) -> Result<KeyRecord> {
    let mut r = KeyRecord {
        id: row.try_get(0)?,
        prefix: row.try_get(1)?,
        display_prefix: row.try_get(2)?,
        owner: row.try_get(3)?,
        name: row.try_get(4)?,
        description: row.try_get(5)?,
        scopes: json(row, 6)?,
        metadata: json(row, 7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
        expires_at: row.try_get(10)?,
        enabled: row.try_get(11)?,
        revoked_at: row.try_get(12)?,
        revoked_reason: row.try_get(13)?,
        version: row.try_get::<_, i64>(14)?.clamp(1, u32::MAX as i64) as u32,
        rotated_from: row.try_get(15)?,
        rotated_to: row.try_get(16)?,
        rate_limits: json(row, 19)?,
        usage_count: count(row.try_get::<_, Option<i64>>(20)?.unwrap_or(0)),
        last_used_at: row.try_get(21)?,
        rotation_period: row.try_get(22)?,
        status: KeyStatus::Active,
    };
    r.status = r.status_at(now);
    Ok(r)
}

impl Pg<'_> {
    /// Runs an `UPDATE`/`DELETE` of one key that ends in `RETURNING
    /// key_hash`; forgets that key's cached state; `CONFLICT` unless
    /// exactly one row changed.
    fn change_key(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<()> {
        let rows = self.query(sql, params)?;
        for r in &rows {
            let hash: &[u8] = r.try_get(0)?;
            if let Ok(h) = <[u8; 32]>::try_from(hash) {
                self.key_changed(h);
            }
        }
        expect_one(rows.len() as u64)
    }
}

fn expect_one(n: u64) -> Result<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Conflict,
            "the key changed concurrently; retry",
        ))
    }
}

impl KeyStore for Pg<'_> {
    fn insert(&self, k: &InsertKey<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO api_keys (id, key_hash, prefix, display_prefix, owner, name, description, \
             scopes, metadata, created_at, updated_at, expires_at, version, rotated_from, rate_limits, \
             rotation_period) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15)",
            &[
                &k.id,
                &&k.key_hash[..],
                &k.prefix,
                &k.display_prefix,
                &k.owner,
                &k.name,
                &k.description,
                &k.scopes_json,
                &k.metadata_json,
                &k.now,
                &k.expires_at,
                &(k.version as i64),
                &k.rotated_from,
                &k.rate_limits_json,
                &k.rotation_period,
            ],
        )?;
        self.key_changed(*k.key_hash);
        Ok(())
    }

    fn due(
        &self,
        now: i64,
        default_period: Option<i64>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<KeyRecord>> {
        let sql = format!(
            "{KEY_COLUMNS} WHERE k.rotated_to IS NULL AND k.revoked_at IS NULL AND k.enabled \
             AND (k.expires_at IS NULL OR k.expires_at > $1) \
             AND k.created_at + coalesce(k.rotation_period, $2::bigint) <= $1 \
             AND ($3::bigint IS NULL OR k.created_at + coalesce(k.rotation_period, $2::bigint) > $3) \
             ORDER BY k.seq LIMIT $4"
        );
        self.query(&sql, &[&now, &default_period, &since, &(limit as i64)])?
            .iter()
            .map(|r| key_record(r, now))
            .collect()
    }

    fn with_state_by_hash(
        &self,
        hash: &[u8; 32],
        then: &mut dyn FnMut(Option<KeyState>) -> Result<()>,
    ) -> Result<()> {
        let state = self.key_state(hash, || {
            let row = self.query_opt(
                "SELECT seq, id, revision, enabled, revoked_at, expires_at FROM api_keys \
                 WHERE key_hash = $1",
                &[&&hash[..]],
            )?;
            row.map(|r| {
                Ok(KeyState {
                    seq: r.try_get(0)?,
                    id: r.try_get(1)?,
                    revision: r.try_get(2)?,
                    enabled: r.try_get(3)?,
                    revoked_at: r.try_get(4)?,
                    expires_at: r.try_get(5)?,
                })
            })
            .transpose()
        })?;
        then(state)
    }

    fn get_by_seq(&self, seq: i64, now: i64) -> Result<Option<(KeyRecord, i64)>> {
        let sql = format!("{KEY_COLUMNS} WHERE k.seq = $1");
        self.query_opt(&sql, &[&seq])?
            .map(|r| Ok((key_record(&r, now)?, r.try_get(18)?)))
            .transpose()
    }

    fn get_with_revision(&self, id: &str, now: i64) -> Result<Option<(KeyRecord, i64)>> {
        let sql = if self.write {
            // Lock the key's row (not the counters') for the transaction.
            // NO KEY UPDATE, as PostgreSQL's own UPDATE of non-key columns
            // takes: changes of one key still go one at a time, but a flush
            // adding to its counters (whose foreign key takes KEY SHARE on
            // this row) is not made to wait, so a state change carrying
            // other keys' counters never deadlocks with it.
            format!("{KEY_COLUMNS} WHERE k.id = $1 FOR NO KEY UPDATE OF k")
        } else {
            format!("{KEY_COLUMNS} WHERE k.id = $1")
        };
        self.query_opt(&sql, &[&id])?
            .map(|r| Ok((key_record(&r, now)?, r.try_get(18)?)))
            .transpose()
    }

    fn list(
        &self,
        filter: &KeyFilter,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<KeyRecord>> {
        let mut q = Query::new(KEY_COLUMNS);
        q.push(" WHERE k.seq > $", after_seq);
        if let Some(owner) = &filter.owner {
            q.push(" AND k.owner = $", owner.clone());
        }
        if let Some(prefix) = &filter.prefix {
            q.push(
                " AND substr(k.display_prefix, 1, $",
                prefix.chars().count() as i32,
            )
            .push(") = $", prefix.clone());
        }
        if let Some(status) = filter.status {
            let live = " AND (k.expires_at IS NULL OR k.expires_at > $)";
            match status {
                KeyStatus::Active => {
                    q.text(" AND k.revoked_at IS NULL AND k.enabled")
                        .push(live, now);
                }
                KeyStatus::Disabled => {
                    q.text(" AND k.revoked_at IS NULL AND NOT k.enabled")
                        .push(live, now);
                }
                KeyStatus::Revoked => {
                    q.text(" AND k.revoked_at IS NOT NULL");
                }
                KeyStatus::Expired => {
                    q.push(
                        " AND k.revoked_at IS NULL AND k.expires_at IS NOT NULL AND k.expires_at <= $",
                        now,
                    );
                }
            }
        }
        q.push(" ORDER BY k.seq LIMIT $", limit as i64 + 1);
        page(
            q.run(self)?,
            limit,
            |r| Ok(r.try_get(17)?),
            |r| key_record(r, now),
        )
    }

    fn update(&self, id: &str, u: &UpdateFields<'_>, now: i64) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET name = coalesce($2, name), description = coalesce($3, description), \
             scopes = coalesce($4, scopes), metadata = coalesce($5, metadata), \
             expires_at = CASE WHEN $6 THEN $7 ELSE expires_at END, \
             updated_at = greatest(updated_at, $8), rate_limits = coalesce($9, rate_limits), \
             rotation_period = CASE WHEN $10 THEN $11 ELSE rotation_period END \
             WHERE id = $1 RETURNING key_hash",
            &[
                &id,
                &u.name,
                &u.description,
                &u.scopes_json,
                &u.metadata_json,
                &u.expires_at.is_some(),
                &u.expires_at.flatten(),
                &now,
                &u.rate_limits_json,
                &u.rotation_period.is_some(),
                &u.rotation_period.flatten(),
            ],
        )
    }

    fn set_enabled(&self, id: &str, enabled: bool, now: i64) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET enabled = $2, updated_at = greatest(updated_at, $3) WHERE id = $1 RETURNING key_hash",
            &[&id, &enabled, &now],
        )
    }

    fn revoke(&self, id: &str, reason: Option<&str>, now: i64) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET revoked_at = $3, revoked_reason = $2, \
             updated_at = greatest(updated_at, $3) WHERE id = $1 AND revoked_at IS NULL RETURNING key_hash",
            &[&id, &reason, &now],
        )
    }

    fn link_rotation(
        &self,
        old_id: &str,
        new_id: &str,
        old_expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET rotated_to = $2, expires_at = $3, \
             updated_at = greatest(updated_at, $4) WHERE id = $1 AND rotated_to IS NULL RETURNING key_hash",
            &[&old_id, &new_id, &old_expires_at, &now],
        )
    }

    fn delete(&self, id: &str, now: i64) -> Result<()> {
        self.change_key(
            "WITH gone AS (DELETE FROM api_keys WHERE id = $1 RETURNING key_hash), \
             stone AS (INSERT INTO key_tombstones (key_hash, deleted_at) \
                       SELECT key_hash, $2 FROM gone ON CONFLICT DO NOTHING) \
             SELECT key_hash FROM gone",
            &[&id, &now],
        )
    }

    fn counts_by_owner(&self, now: i64, limit: u32) -> Result<Vec<(String, [u64; 4])>> {
        let rows = self.query(
            "SELECT owner, \
             count(*) FILTER (WHERE revoked_at IS NULL AND enabled AND (expires_at IS NULL OR expires_at > $1)), \
             count(*) FILTER (WHERE revoked_at IS NULL AND NOT enabled AND (expires_at IS NULL OR expires_at > $1)), \
             count(*) FILTER (WHERE revoked_at IS NOT NULL), \
             count(*) FILTER (WHERE revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1) \
             FROM api_keys GROUP BY owner ORDER BY count(*) DESC, owner LIMIT $2",
            &[&now, &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                let n = |i: usize| -> Result<u64> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
                Ok((r.try_get(0)?, [n(1)?, n(2)?, n(3)?, n(4)?]))
            })
            .collect()
    }

    fn counts(&self, now: i64) -> Result<[u64; 4]> {
        let rows = self.query(
            "SELECT \
             count(*) FILTER (WHERE revoked_at IS NULL AND enabled AND (expires_at IS NULL OR expires_at > $1)), \
             count(*) FILTER (WHERE revoked_at IS NULL AND NOT enabled AND (expires_at IS NULL OR expires_at > $1)), \
             count(*) FILTER (WHERE revoked_at IS NOT NULL), \
             count(*) FILTER (WHERE revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1) \
             FROM api_keys",
            &[&now],
        )?;
        let r = &rows[0];
        let n = |i: usize| -> Result<u64> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
        Ok([n(0)?, n(1)?, n(2)?, n(3)?])
    }

    fn tombstoned(&self, hash: &[u8; 32]) -> Result<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM key_tombstones WHERE key_hash = $1",
                &[&&hash[..]],
            )?
            .is_some())
    }

    fn lift_tombstone(&self, hash: &[u8; 32]) -> Result<bool> {
        let rows = self.query(
            "WITH stone AS (DELETE FROM key_tombstones WHERE key_hash = $1 RETURNING key_hash), \
             ids AS (DELETE FROM legacy_ids WHERE key_hash IN (SELECT key_hash FROM stone)) \
             SELECT 1 FROM stone",
            &[&&hash[..]],
        )?;
        Ok(!rows.is_empty())
    }

    fn claim_legacy_id(&self, legacy_id: &str, hash: &[u8; 32], now: i64) -> Result<bool> {
        let n = self.execute(
            "INSERT INTO legacy_ids (legacy_id, key_hash, imported_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[&legacy_id, &&hash[..], &now],
        )?;
        Ok(n == 1)
    }

    fn add_usage(&self, id: &str, count: u64, last_used: i64) -> Result<()> {
        self.execute(
            "INSERT INTO key_usage (seq, usage_count, last_used_at) \
             SELECT seq, $2, $3 FROM api_keys WHERE id = $1 \
             ON CONFLICT (seq) DO UPDATE SET usage_count = key_usage.usage_count + excluded.usage_count, \
             last_used_at = greatest(key_usage.last_used_at, excluded.last_used_at)",
            &[&id, &(count.min(i64::MAX as u64) as i64), &last_used],
        )?;
        Ok(())
    }

    fn add_usage_many(&self, uses: &[(&str, u64, i64)]) -> Result<()> {
        self.add_usage_batch(uses)
    }
}

impl Pg<'_> {
    /// The counters of several keys in one statement (one round trip),
    /// their rows locked in the order given: the flush gives them in
    /// key-id order (`write_some`), so two hosts flushing overlapping keys
    /// never deadlock (they did: `deadlock detected` under 4 verifying
    /// processes, bench/revocation_lag_python.py).
    fn add_usage_batch(&self, uses: &[(&str, u64, i64)]) -> Result<()> {
        let ids: Vec<&str> = uses.iter().map(|u| u.0).collect();
        let counts: Vec<i64> = uses
            .iter()
            .map(|u| u.1.min(i64::MAX as u64) as i64)
            .collect();
        let times: Vec<i64> = uses.iter().map(|u| u.2).collect();
        self.execute(
            "INSERT INTO key_usage (seq, usage_count, last_used_at) \
             SELECT k.seq, u.n, u.t FROM unnest($1::text[], $2::bigint[], $3::bigint[]) \
             WITH ORDINALITY AS u(id, n, t, i) JOIN api_keys k ON k.id = u.id ORDER BY u.i \
             ON CONFLICT (seq) DO UPDATE SET usage_count = key_usage.usage_count + excluded.usage_count, \
             last_used_at = greatest(key_usage.last_used_at, excluded.last_used_at)",
            &[&ids, &counts, &times],
        )?;
        Ok(())
    }
}

impl AuditStore for Pg<'_> {
    fn insert(&self, e: &NewAuditEvent) -> Result<()> {
        let detail = e.detail.as_ref().map(|d| d.to_string());
        self.execute(
            "INSERT INTO audit_log (at, action, key_id, display_prefix, actor, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &e.at,
                &e.action.as_str(),
                &e.key_id,
                &e.display_prefix,
                &e.actor,
                &e.outcome,
                &detail,
            ],
        )?;
        Ok(())
    }

    fn list(&self, f: &AuditFilter, limit: u32, before_id: i64) -> Result<Page<AuditEvent>> {
        let mut q = Query::new(
            "SELECT id, at, action, key_id, display_prefix, actor, outcome, detail FROM audit_log",
        );
        q.push(" WHERE id < $", before_id);
        for (col, v) in [
            ("key_id", &f.key_id),
            ("action", &f.action),
            ("actor", &f.actor),
            ("outcome", &f.outcome),
        ] {
            if let Some(v) = v {
                q.push(&format!(" AND {col} = $"), v.clone());
            }
        }
        if let Some(t) = f.since {
            q.push(" AND at >= $", t);
        }
        if let Some(t) = f.until {
            q.push(" AND at < $", t);
        }
        q.push(" ORDER BY id DESC LIMIT $", limit as i64 + 1);
        page(
            q.run(self)?,
            limit,
            |r| Ok(r.try_get(0)?),
            |r| {
                let detail: Option<String> = r.try_get(7)?;
                Ok(AuditEvent {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    action: r.try_get(2)?,
                    key_id: r.try_get(3)?,
                    display_prefix: r.try_get(4)?,
                    actor: r.try_get(5)?,
                    outcome: r.try_get(6)?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            },
        )
    }
}

const QUOTA_COLUMNS: &str = "SELECT q.seq, q.scope, q.subject, q.metric, q.period, \
    q.limit_amount, q.used, q.reserved, q.window_start, q.refill_amount, q.refill_period, \
    q.alerted FROM quotas q";

fn quota_row(r: &Row) -> Result<QuotaRow> {
    quota_row_at(r, 0)
}

/// The quota in the columns of `r` from `at` on (the `QUOTA_COLUMNS` order).
fn quota_row_at(r: &Row, at: usize) -> Result<QuotaRow> {
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
        key_id: &str,
        amounts: &crate::model::quota::Amounts,
        [day, month]: [i64; 2],
        now: i64,
    ) -> Result<Option<Vec<QuotaRow>>> {
        let [requests, tokens, cost] = amounts.as_sql();
        let params: [&(dyn ToSql + Sync); 7] =
            [&key_id, &requests, &tokens, &cost, &day, &month, &now];
        let hints = &self.store.general_hint;
        let hinted = hints
            .get(key_id)
            .is_some_and(|at| at.elapsed() < super::GENERAL_HINT);
        if !hinted {
            // The key's only quota, charged by one UPDATE (schema v4); the
            // rows come back as they were.
            let rows = self.query(ONE_ROW_CONSUME, &params)?;
            if !rows.is_empty() {
                return rows
                    .iter()
                    .map(|r| quota_row_at(r, 0))
                    .collect::<Result<_>>()
                    .map(Some);
            }
            hints.insert(key_id.to_string(), std::time::Instant::now());
        }
        let rows = self.query(
            "SELECT * FROM irontoken_consume($1, $2, $3, $4, $5, $6, $7)",
            &params,
        )?;
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

/// A consumption charged to a key's solo quota row (schema v4) in one
/// statement, committed without waiting for the WAL flush like the general
/// path; returns the row as it was, or nothing (then the general path).
/// The same checks as `irontoken_consume` in `schema_v4.sql`.
const ONE_ROW_CONSUME: &str = "\
WITH relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) \
UPDATE quotas q SET used = q.used + irontoken_amount(q.metric, $2, $3, $4), \
    updated_at = CASE WHEN irontoken_amount(q.metric, $2, $3, $4) > 0 \
                      THEN greatest(q.updated_at, $7::bigint) ELSE q.updated_at END \
WHERE EXISTS (SELECT 1 FROM relaxed) \
  AND q.scope = 'key' AND q.subject = $1 AND q.solo \
  AND q.reserved = 0 AND q.refill_amount IS NULL \
  AND (q.period = 'none' OR q.window_start = CASE q.period WHEN 'day' THEN $5::bigint ELSE $6::bigint END) \
  AND (irontoken_amount(q.metric, $2, $3, $4) = 0 \
       OR irontoken_amount(q.metric, $2, $3, $4) < q.limit_amount - q.limit_amount / 5 - q.used) \
RETURNING q.seq, q.scope, q.subject, q.metric, q.period, q.limit_amount, \
    q.used - irontoken_amount(q.metric, $2, $3, $4), q.reserved, q.window_start, \
    q.refill_amount, q.refill_period, q.alerted";

/// The SQL of each of [`GROUPS`], in its order.
const GROUP_COLUMNS: [&str; 6] = [
    "key_id",
    "owner",
    "model",
    "session_id",
    "agent_id",
    "to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
];

fn usage_filters(q: &UsageQuery, sql: &mut Query) {
    if let Some(t) = q.since {
        sql.push(" AND at >= $", t);
    }
    if let Some(t) = q.until {
        sql.push(" AND at < $", t);
    }
    for (col, v) in [
        ("key_id", &q.key_id),
        ("owner", &q.owner),
        ("model", &q.model),
        ("session_id", &q.session_id),
        ("agent_id", &q.agent_id),
    ] {
        if let Some(v) = v {
            sql.push(&format!(" AND {col} = $"), v.clone());
        }
    }
}

impl UsageStore for Pg<'_> {
    fn exists(&self, request_id: &str) -> Result<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM usage_records WHERE request_id = $1",
                &[&request_id],
            )?
            .is_some())
    }

    fn insert(&self, u: &PendingUsage) -> Result<bool> {
        let [p, c, cr, cw, req, cost] = u.numbers.map(|n| n as i64);
        let n = self.execute(
            "INSERT INTO usage_records (request_id, at, key_id, owner, session_id, model, \
             model_version, prompt_tokens, completion_tokens, cache_read_tokens, \
             cache_write_tokens, requests, cost_micros, metadata, agent_id, reported_at_ms) \
             VALUES ($1, $2, $3, coalesce((SELECT owner FROM api_keys WHERE id = $3), \
                     (SELECT owner FROM sessions WHERE id = $4), $15), $4, $5, $6, $7, $8, $9, \
                     $10, $11, $12, $13, $14, $16) \
             ON CONFLICT (request_id) DO UPDATE SET at = excluded.at, key_id = excluded.key_id, \
               owner = excluded.owner, session_id = excluded.session_id, model = excluded.model, \
               model_version = excluded.model_version, prompt_tokens = excluded.prompt_tokens, \
               completion_tokens = excluded.completion_tokens, \
               cache_read_tokens = excluded.cache_read_tokens, \
               cache_write_tokens = excluded.cache_write_tokens, requests = excluded.requests, \
               cost_micros = excluded.cost_micros, metadata = excluded.metadata, \
               agent_id = excluded.agent_id, reported_at_ms = excluded.reported_at_ms \
             WHERE excluded.reported_at_ms > 0 AND usage_records.reported_at_ms > 0 \
               AND excluded.reported_at_ms < usage_records.reported_at_ms",
            &[
                &u.request_id,
                &u.at,
                &u.key_id,
                &u.session_id,
                &u.model,
                &u.model_version,
                &p,
                &c,
                &cr,
                &cw,
                &req,
                &cost,
                &u.metadata_json,
                &u.agent_id,
                &u.owner,
                &u.reported_at_ms,
            ],
        )?;
        Ok(n == 1)
    }

    fn summary(&self, q: &UsageQuery, groups: &[usize]) -> Result<Vec<UsageTotals>> {
        let cols: Vec<&str> = groups.iter().map(|&i| GROUP_COLUMNS[i]).collect();
        let mut sql = String::from("SELECT ");
        for c in &cols {
            sql.push_str(c);
            sql.push_str(", ");
        }
        sql.push_str("count(*)");
        // Sums as text: PostgreSQL adds bigints exactly (numeric), however many.
        for c in SUMMED {
            sql.push_str(&format!(", coalesce(sum({c}), 0)::text"));
        }
        sql.push_str(" FROM usage_records WHERE true");
        let mut query = Query::new(&sql);
        usage_filters(q, &mut query);
        if !cols.is_empty() {
            let list = (1..=cols.len())
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            query.text(&format!(" GROUP BY {list} ORDER BY {list}"));
        }
        let mut out = Vec::new();
        for row in query.run(self)? {
            let n = groups.len();
            let values = (0..n)
                .map(|j| row.try_get::<_, Option<String>>(j))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut sums = [0u128; SUMMED.len()];
            for (k, s) in sums.iter_mut().enumerate() {
                let text: &str = row.try_get(n + 1 + k)?;
                *s = text.parse::<u128>().unwrap_or(u128::MAX);
            }
            let t = UsageTotals::from_row(groups, values, count(row.try_get(n)?), sums);
            out.push(t);
        }
        Ok(out)
    }

    fn export(&self, q: &UsageQuery, limit: u32, after_seq: i64) -> Result<Page<UsageRecord>> {
        let mut query = Query::new(
            "SELECT request_id, at, key_id, owner, session_id, model, model_version, prompt_tokens, \
             completion_tokens, cache_read_tokens, cache_write_tokens, requests, cost_micros, \
             metadata, seq, agent_id FROM usage_records",
        );
        query.push(" WHERE seq > $", after_seq);
        usage_filters(q, &mut query);
        query.push(" ORDER BY seq LIMIT $", limit as i64 + 1);
        page(
            query.run(self)?,
            limit,
            |r| Ok(r.try_get(14)?),
            |row| {
                Ok(UsageRecord {
                    request_id: row.try_get(0)?,
                    at: row.try_get(1)?,
                    key_id: row.try_get(2)?,
                    owner: row.try_get(3)?,
                    session_id: row.try_get(4)?,
                    agent_id: row.try_get(15)?,
                    model: row.try_get(5)?,
                    model_version: row.try_get(6)?,
                    prompt_tokens: count(row.try_get(7)?),
                    completion_tokens: count(row.try_get(8)?),
                    cache_read_tokens: count(row.try_get(9)?),
                    cache_write_tokens: count(row.try_get(10)?),
                    requests: count(row.try_get(11)?),
                    cost_micros: count(row.try_get(12)?),
                    metadata: json(row, 13)?,
                })
            },
        )
    }
}

/// The session columns; `$1` is "now": the status reads `expired` for a
/// live session past its absolute or idle expiry.
const SESSION_COLUMNS: &str = "SELECT id, owner, key_id, session_type, \
    CASE WHEN ended_at IS NULL AND ((expires_at IS NOT NULL AND expires_at <= $1) \
      OR (idle_timeout IS NOT NULL AND last_seen_at + idle_timeout <= $1)) \
    THEN 'expired' ELSE status END AS eff, \
    metadata, created_at, updated_at, last_seen_at, expires_at, idle_timeout, ended_at, \
    end_reason, seq FROM sessions";

fn session(row: &Row) -> Result<Session> {
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
    ))
}

impl SessionStore for Pg<'_> {
    fn insert(&self, s: &InsertSession<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO sessions (id, owner, key_id, session_type, status, metadata, created_at, \
             updated_at, last_seen_at, expires_at, idle_timeout) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $6, $6, $7, $8)",
            &[
                &s.id,
                &s.owner,
                &s.key_id,
                &s.session_type,
                &s.metadata_json,
                &s.now,
                &s.expires_at,
                &s.idle_timeout,
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

    fn touch(&self, id: &str, now: i64) -> Result<()> {
        self.execute(
            "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2), \
             updated_at = greatest(updated_at, $2) WHERE id = $1",
            &[&id, &now],
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
               ended_at = least(coalesce(expires_at, last_seen_at + idle_timeout), \
                                coalesce(last_seen_at + idle_timeout, expires_at)), \
               updated_at = greatest(updated_at, $1) \
             WHERE ended_at IS NULL AND ((expires_at IS NOT NULL AND expires_at <= $1) \
               OR (idle_timeout IS NOT NULL AND last_seen_at + idle_timeout <= $1))",
            &[&now],
        )
    }

    fn purge(&self, before: i64) -> Result<u64> {
        self.execute(
            "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at <= $1",
            &[&before],
        )
    }
}

const SIGNING_COLUMNS: &str = "SELECT kid, alg, status, public_jwk, private_enc, created_at, verify_until, retired_at FROM signing_keys";

fn signing_row(r: &Row) -> Result<SigningRow> {
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
const SIGNING_LOCK: i64 = 0x6974_6b73_6967_6e00; // "itksign"

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

impl AgentStore for Pg<'_> {
    fn insert_budget(&self, id: &str, owner: &str, name: &str, limit: i64, now: i64) -> Result<()> {
        self.execute(
            "INSERT INTO budgets (id, owner, name, limit_micros, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
            &[&id, &owner, &name, &limit, &now],
        )?;
        Ok(())
    }

    fn budget(&self, id: &str, now: i64) -> Result<Option<Budget>> {
        // In a write the budget row is locked first: leases and spending of
        // one budget are decided one transaction at a time.
        if self.write {
            self.query_opt("SELECT 1 FROM budgets WHERE id = $1 FOR UPDATE", &[&id])?;
        }
        self.query_opt(
            "SELECT id, owner, name, limit_micros, spent_micros, created_at, \
               (SELECT coalesce(sum(greatest(0, amount_micros - spent_micros)), 0)::bigint \
                  FROM budget_leases WHERE budget_id = budgets.id AND status = 'active' \
                  AND expires_at > $2) \
             FROM budgets WHERE id = $1",
            &[&id, &now],
        )?
        .map(|r| {
            let limit: i64 = r.try_get(3)?;
            let spent: i64 = r.try_get(4)?;
            let leased: i64 = r.try_get(6)?;
            Ok(Budget {
                id: r.try_get(0)?,
                owner: r.try_get(1)?,
                name: r.try_get(2)?,
                limit_micros: count(limit),
                spent_micros: count(spent),
                leased_micros: count(leased),
                available_micros: count(limit - spent - leased),
                created_at: r.try_get(5)?,
            })
        })
        .transpose()
    }

    fn live_token(&self, agent_id: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT jti FROM agent_tokens WHERE agent_id = $1 AND revoked_at IS NULL{}",
            self.lock()
        );
        self.query_opt(&sql, &[&agent_id])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn token(&self, jti: &str) -> Result<Option<(String, Option<i64>)>> {
        let sql = format!(
            "SELECT agent_id, revoked_at FROM agent_tokens WHERE jti = $1{}",
            self.lock()
        );
        self.query_opt(&sql, &[&jti])?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    fn insert_token(&self, t: &AgentClaims, permissions: &str) -> Result<()> {
        self.execute(
            "INSERT INTO agent_tokens (jti, agent_id, budget_id, permissions, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &t.jti,
                &t.agent_id,
                &t.budget_id,
                &permissions,
                &t.issued_at,
                &t.expires_at,
            ],
        )?;
        Ok(())
    }

    fn revoke_token(&self, jti: &str, now: i64) -> Result<()> {
        self.execute(
            "UPDATE agent_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL",
            &[&jti, &now],
        )?;
        self.execute(
            "UPDATE budget_leases SET status = 'revoked', updated_at = $2 \
             WHERE jti = $1 AND status = 'active'",
            &[&jti, &now],
        )?;
        Ok(())
    }

    fn insert_lease(
        &self,
        id: &str,
        t: &AgentClaims,
        amount: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO budget_leases (id, budget_id, jti, amount_micros, status, created_at, \
             expires_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $5)",
            &[&id, &t.budget_id, &t.jti, &amount, &now, &expires_at],
        )?;
        Ok(())
    }

    fn lease(&self, id: &str, now: i64) -> Result<Option<Lease>> {
        let sql = format!(
            "SELECT l.id, l.budget_id, t.agent_id, l.jti, l.amount_micros, l.spent_micros, \
               CASE WHEN l.status = 'active' AND l.expires_at <= $2 THEN 'expired' ELSE l.status END, \
               l.created_at, l.expires_at \
             FROM budget_leases l JOIN agent_tokens t ON t.jti = l.jti WHERE l.id = $1{}",
            if self.write { " FOR UPDATE OF l" } else { "" }
        );
        self.query_opt(&sql, &[&id, &now])?
            .map(|r| {
                let amount: i64 = r.try_get(4)?;
                let spent: i64 = r.try_get(5)?;
                Ok(Lease {
                    id: r.try_get(0)?,
                    budget_id: r.try_get(1)?,
                    agent_id: r.try_get(2)?,
                    jti: r.try_get(3)?,
                    amount_micros: count(amount),
                    spent_micros: count(spent),
                    remaining_micros: count(amount - spent),
                    status: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    expires_at: r.try_get(8)?,
                })
            })
            .transpose()
    }

    fn set_lease(
        &self,
        id: &str,
        amount: i64,
        status: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.execute(
            "UPDATE budget_leases SET amount_micros = $2, status = $3, updated_at = $4, \
             expires_at = coalesce($5, expires_at) WHERE id = $1",
            &[&id, &amount, &status, &now, &expires_at],
        )?;
        Ok(())
    }

    fn spend(&self, id: &str, budget_id: &str, cost: i64, now: i64) -> Result<()> {
        self.execute(
            "UPDATE budget_leases SET spent_micros = spent_micros + $2, updated_at = $3 WHERE id = $1",
            &[&id, &cost, &now],
        )?;
        self.execute(
            "UPDATE budgets SET spent_micros = spent_micros + $2, \
             updated_at = greatest(updated_at, $3) WHERE id = $1",
            &[&budget_id, &cost, &now],
        )?;
        Ok(())
    }
}

impl MetaStore for Pg<'_> {
    fn get(&self, name: &str) -> Result<Option<String>> {
        self.query_opt("SELECT value FROM meta WHERE name = $1", &[&name])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn put_once(&self, name: &str, value: &str) -> Result<bool> {
        Ok(self.execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&name, &value],
        )? == 1)
    }
}

impl RateStore for Pg<'_> {
    fn buckets(&self, key: &str, names: &[&str]) -> Result<Vec<Option<i64>>> {
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort_unstable();
        if self.write {
            // A row to lock even for a full bucket (0: long past, the same as
            // none), so no two hosts decide on one bucket at once; locked in
            // name order, so two checks never wait on each other.
            self.execute(
                "INSERT INTO rate_buckets (bucket_key, name, tat_us) \
                 SELECT $1, n, 0 FROM unnest($2::text[]) AS n ORDER BY n ON CONFLICT DO NOTHING",
                &[&key, &sorted],
            )?;
        }
        let sql = format!(
            "SELECT name, tat_us FROM rate_buckets WHERE bucket_key = $1 AND name = ANY($2) \
             ORDER BY name{}",
            self.lock()
        );
        let mut found = std::collections::HashMap::new();
        for r in self.query(&sql, &[&key, &sorted])? {
            found.insert(r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?);
        }
        Ok(names.iter().map(|n| found.get(*n).copied()).collect())
    }

    fn set_bucket(&self, key: &str, name: &str, tat_us: i64) -> Result<()> {
        self.execute(
            "INSERT INTO rate_buckets (bucket_key, name, tat_us) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket_key, name) DO UPDATE SET tat_us = excluded.tat_us",
            &[&key, &name, &tat_us],
        )?;
        Ok(())
    }

    fn purge_buckets(&self, now_us: i64) -> Result<u64> {
        self.execute("DELETE FROM rate_buckets WHERE tat_us <= $1", &[&now_us])
    }
}
