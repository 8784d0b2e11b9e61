//! Queries on `usage_records`.

use super::Sql;
use crate::error::Result;
use crate::model::keys::Page;
use crate::model::usage::{PendingUsage, SUMMED, UsageQuery, UsageRecord, UsageTotals};
use crate::store::UsageStore;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};

fn filters(q: &UsageQuery, sql: &mut String, args: &mut Vec<SqlValue>) {
    if let Some(t) = q.since {
        sql.push_str(" AND at >= ?");
        args.push(t.into());
    }
    if let Some(t) = q.until {
        sql.push_str(" AND at < ?");
        args.push(t.into());
    }
    for (col, v) in [
        ("key_id", &q.key_id),
        ("owner", &q.owner),
        ("model", &q.model),
        ("session_id", &q.session_id),
        ("agent_id", &q.agent_id),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ?"));
            args.push(v.clone().into());
        }
    }
}

/// The SQL of each of [`GROUPS`], in its order.
const GROUP_COLUMNS: [&str; 7] = [
    "key_id",
    "owner",
    "model",
    "session_id",
    "agent_id",
    "date(at, 'unixepoch')",
    "strftime('%Y-%m-%dT%H:00:00Z', at, 'unixepoch')",
];

const SPLIT: u32 = 26;
const LOW_MASK: i64 = (1 << SPLIT) - 1;

impl UsageStore for Sql<'_> {
    fn exists(&self, request_id: &str) -> Result<bool> {
        let conn = self.0;
        Ok(conn
            .prepare_cached("SELECT 1 FROM usage_records WHERE request_id = ?1")?
            .query_row(params![request_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Inserts a record unless its request id is known; true if inserted.
    /// A record already stored is replaced only by a report made earlier (a
    /// smaller non-zero `reported_at_ms`): the first report wins, whichever
    /// process flushes first. `reported_at_ms` 0 marks a final record.
    fn insert(&self, u: &PendingUsage) -> Result<bool> {
        let conn = self.0;
        let [p, c, cr, cw, req, cost] = u.numbers.map(|n| n as i64);
        let n = conn
            .prepare_cached(
                "INSERT INTO usage_records (request_id, at, key_id, owner, session_id, model, \
             model_version, prompt_tokens, completion_tokens, cache_read_tokens, \
             cache_write_tokens, requests, cost_micros, metadata, agent_id, reported_at_ms) \
             VALUES (?1, ?2, ?3, coalesce((SELECT owner FROM api_keys WHERE id = ?3), \
                     (SELECT owner FROM sessions WHERE id = ?4), ?15), ?4, ?5, ?6, ?7, ?8, ?9, \
                     ?10, ?11, ?12, ?13, ?14, ?16) \
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
            )?
            .execute(params![
                u.request_id,
                u.at,
                u.key_id,
                u.session_id,
                u.model,
                u.model_version,
                p,
                c,
                cr,
                cw,
                req,
                cost,
                u.metadata_json,
                u.agent_id,
                u.owner,
                u.reported_at_ms
            ])?;
        Ok(n == 1)
    }

    fn summary(&self, q: &UsageQuery, groups: &[usize]) -> Result<Vec<UsageTotals>> {
        let conn = self.0;
        let cols: Vec<&str> = groups.iter().map(|&i| GROUP_COLUMNS[i]).collect();
        let mut sql = String::from("SELECT ");
        for c in &cols {
            sql.push_str(c);
            sql.push_str(", ");
        }
        sql.push_str("count(*)");
        // Each sum in two halves (high and low 26 bits) so SQLite's 64-bit sum
        // cannot overflow; they are joined in 128 bits below.
        for c in SUMMED {
            sql.push_str(&format!(
                ", coalesce(sum({c} >> {SPLIT}), 0), coalesce(sum({c} & {LOW_MASK}), 0)"
            ));
        }
        sql.push_str(" FROM usage_records WHERE 1");
        let mut args = Vec::new();
        filters(q, &mut sql, &mut args);
        if !cols.is_empty() {
            let list = cols.join(", ");
            sql.push_str(&format!(" GROUP BY {list} ORDER BY {list}"));
        }
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let n = groups.len();
            let values = (0..n)
                .map(|j| row.get::<_, Option<String>>(j))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut sums = [0u128; SUMMED.len()];
            for (k, s) in sums.iter_mut().enumerate() {
                let hi: i64 = row.get(n + 1 + 2 * k)?;
                let lo: i64 = row.get(n + 2 + 2 * k)?;
                *s = ((hi.max(0) as u128) << SPLIT) + lo.max(0) as u128;
            }
            let t = UsageTotals::from_row(groups, values, super::count(row.get(n)?), sums);
            out.push(t);
        }
        Ok(out)
    }

    fn export(&self, q: &UsageQuery, limit: u32, after_seq: i64) -> Result<Page<UsageRecord>> {
        let conn = self.0;
        let mut sql = String::from(
            "SELECT request_id, at, key_id, owner, session_id, model, model_version, prompt_tokens, \
         completion_tokens, cache_read_tokens, cache_write_tokens, requests, cost_micros, \
         metadata, seq, agent_id FROM usage_records WHERE seq > ?",
        );
        let mut args: Vec<SqlValue> = vec![after_seq.into()];
        filters(q, &mut sql, &mut args);
        sql.push_str(" ORDER BY seq LIMIT ?");
        super::paged(conn, &sql, args, limit, after_seq, 14, |row| {
            Ok(UsageRecord {
                request_id: row.get(0)?,
                at: row.get(1)?,
                key_id: row.get(2)?,
                owner: row.get(3)?,
                session_id: row.get(4)?,
                agent_id: row.get(15)?,
                model: row.get(5)?,
                model_version: row.get(6)?,
                prompt_tokens: super::count(row.get(7)?),
                completion_tokens: super::count(row.get(8)?),
                cache_read_tokens: super::count(row.get(9)?),
                cache_write_tokens: super::count(row.get(10)?),
                requests: super::count(row.get(11)?),
                cost_micros: super::count(row.get(12)?),
                metadata: super::json_col(row, 13)?,
            })
        })
    }
}
