//! Usage records in PostgreSQL: inserts, summaries, export.

use super::Pg;
use crate::error::Result;
use crate::model::keys::Page;
use crate::model::usage::{PendingUsage, SUMMED, UsageQuery, UsageRecord, UsageTotals};
use crate::store::UsageStore;

use super::queries::*;

/// The SQL of each of [`GROUPS`], in its order.
pub(super) const GROUP_COLUMNS: [&str; 7] = [
    "key_id",
    "owner",
    "model",
    "session_id",
    "agent_id",
    "to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')",
];

pub(super) fn usage_filters(q: &UsageQuery, sql: &mut Query) {
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
