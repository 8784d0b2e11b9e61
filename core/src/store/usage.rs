//! Queries on `usage_records`.

use crate::error::Result;
use crate::keys::Page;
use crate::usage::{GROUPS, PendingUsage, UsageQuery, UsageRecord, UsageTotals};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

pub(crate) fn exists(conn: &Connection, request_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM usage_records WHERE request_id = ?1")?
        .query_row(params![request_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Inserts a record unless its request id is known; true if inserted.
pub(crate) fn insert(conn: &Connection, u: &PendingUsage) -> Result<bool> {
    let [p, c, cr, cw, req, cost] = u.numbers.map(|n| n as i64);
    let n = conn
        .prepare_cached(
            "INSERT INTO usage_records (request_id, at, key_id, owner, session_id, model, \
             model_version, prompt_tokens, completion_tokens, cache_read_tokens, \
             cache_write_tokens, requests, cost_micros, metadata, agent_id) \
             VALUES (?1, ?2, ?3, coalesce((SELECT owner FROM api_keys WHERE id = ?3), \
                     (SELECT owner FROM sessions WHERE id = ?4), ?15), ?4, ?5, ?6, ?7, ?8, ?9, \
                     ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (request_id) DO NOTHING",
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
            u.owner
        ])?;
    Ok(n == 1)
}

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

pub(crate) fn summary(
    conn: &Connection,
    q: &UsageQuery,
    groups: &[usize],
) -> Result<Vec<UsageTotals>> {
    let cols: Vec<&str> = groups.iter().map(|&i| GROUPS[i].1).collect();
    let mut sql = String::from("SELECT ");
    for c in &cols {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str(
        "count(*), coalesce(sum(requests), 0), coalesce(sum(prompt_tokens), 0), \
         coalesce(sum(completion_tokens), 0), coalesce(sum(cache_read_tokens), 0), \
         coalesce(sum(cache_write_tokens), 0), coalesce(sum(cost_micros), 0) \
         FROM usage_records WHERE 1",
    );
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
        let mut t = UsageTotals::default();
        for (j, &g) in groups.iter().enumerate() {
            let v: Option<String> = row.get(j)?;
            let v = Some(v.unwrap_or_default());
            match GROUPS[g].0 {
                "key" => t.key_id = v,
                "owner" => t.owner = v,
                "model" => t.model = v,
                "session" => t.session_id = v,
                "agent" => t.agent_id = v,
                _ => t.day = v,
            }
        }
        let n = groups.len();
        t.records = super::count(row.get(n)?);
        t.requests = super::count(row.get(n + 1)?);
        t.prompt_tokens = super::count(row.get(n + 2)?);
        t.completion_tokens = super::count(row.get(n + 3)?);
        t.cache_read_tokens = super::count(row.get(n + 4)?);
        t.cache_write_tokens = super::count(row.get(n + 5)?);
        t.cost_micros = super::count(row.get(n + 6)?);
        t.total_tokens = t.prompt_tokens + t.completion_tokens;
        out.push(t);
    }
    Ok(out)
}

pub(crate) fn export(
    conn: &Connection,
    q: &UsageQuery,
    limit: u32,
    after_seq: i64,
) -> Result<Page<UsageRecord>> {
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
