//! What every PostgreSQL query file shares: the statement builder, pages,
//! row decoding helpers. Reads that a write transaction acts on lock their
//! rows (`Pg::lock`).

use super::Pg;
use crate::error::{Error, ErrorKind, Result};
use crate::model::keys::{KeyRecord, KeyStatus, Page};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

type Param = Box<dyn ToSql + Sync>;

/// A stored count or amount (kept >= 0 by the schema) as `u64`.
pub(super) fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// A JSON text column parsed as `T`.
pub(super) fn json<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> Result<T> {
    let s: &str = row.try_get(i)?;
    serde_json::from_str(s).map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            format!("a stored JSON column is invalid: {e}"),
        )
    })
}

/// Builds a query with numbered parameters.
pub(super) struct Query {
    sql: String,
    args: Vec<Param>,
}

impl Query {
    pub(super) fn new(sql: &str) -> Query {
        Query {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }
    /// Appends `sql` with `$` replaced by the next parameter's number.
    pub(super) fn push(&mut self, sql: &str, arg: impl ToSql + Sync + 'static) -> &mut Self {
        self.args.push(Box::new(arg));
        self.sql
            .push_str(&sql.replace('$', &format!("${}", self.args.len())));
        self
    }
    /// Adds a parameter that `sql` already given refers to by number.
    pub(super) fn arg(&mut self, arg: impl ToSql + Sync + 'static) -> &mut Self {
        self.args.push(Box::new(arg));
        self
    }
    pub(super) fn text(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
    pub(super) fn run(&self, pg: &Pg<'_>) -> Result<Vec<Row>> {
        pg.query(&self.sql, &self.params())
    }
}

/// A page of at most `limit` items from `rows` (fetched with `limit + 1`),
/// the cursor being `cursor(last item's row)`.
pub(super) fn page<T>(
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

pub(super) const KEY_COLUMNS: &str = "SELECT k.id, k.prefix, k.display_prefix, k.owner, k.name, \
    k.description, k.scopes, k.metadata, k.created_at, k.updated_at, k.expires_at, k.enabled, \
    k.revoked_at, k.revoked_reason, k.version, k.rotated_from, k.rotated_to, k.seq, k.revision, \
    k.rate_limits, u.usage_count, u.last_used_at, k.rotation_period, k.model_policy FROM api_keys k \
    LEFT JOIN key_usage u ON u.seq = k.seq";

pub(super) fn key_record(row: &Row, now: i64) -> Result<KeyRecord> {
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
        models: Vec::new(),
        max_tokens_per_request: None,
        status: KeyStatus::Active,
    };
    let policy: crate::keys::models::ModelPolicy = json(row, 23)?;
    (r.models, r.max_tokens_per_request) = (policy.models, policy.max_tokens_per_request);
    r.status = r.status_at(now);
    Ok(r)
}

impl Pg<'_> {
    /// Runs an `UPDATE`/`DELETE` of one key that ends in `RETURNING
    /// key_hash`; forgets that key's cached state; `CONFLICT` unless
    /// exactly one row changed.
    pub(super) fn change_key(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<()> {
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

pub(super) fn expect_one(n: u64) -> Result<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Conflict,
            "the key changed concurrently; retry",
        ))
    }
}
