//! Queries on `audit_log`.

use super::Sql;
use crate::error::Result;
use crate::model::audit::{AuditEvent, AuditFilter, NewAuditEvent};
use crate::model::keys::Page;
use crate::store::AuditStore;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter};

impl AuditStore for Sql<'_> {
    fn insert(&self, e: &NewAuditEvent) -> Result<()> {
        let conn = self.0;
        let detail = e.detail.as_ref().map(|d| d.to_string());
        conn.prepare_cached(
            "INSERT INTO audit_log (at, action, key_id, display_prefix, actor, outcome, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            e.at,
            e.action.as_str(),
            e.key_id,
            e.display_prefix,
            e.actor,
            e.outcome,
            detail
        ])?;
        Ok(())
    }

    fn list(&self, f: &AuditFilter, limit: u32, before_id: i64) -> Result<Page<AuditEvent>> {
        let conn = self.0;
        let mut sql = String::from(
            "SELECT id, at, action, key_id, display_prefix, actor, outcome, detail \
         FROM audit_log WHERE id < ?",
        );
        let mut args: Vec<SqlValue> = vec![before_id.into()];
        let mut eq = |col: &str, v: &Option<String>| {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                args.push(v.clone().into());
            }
        };
        eq("key_id", &f.key_id);
        eq("action", &f.action);
        eq("actor", &f.actor);
        eq("outcome", &f.outcome);
        if let Some(t) = f.since {
            sql.push_str(" AND at >= ?");
            args.push(t.into());
        }
        if let Some(t) = f.until {
            sql.push_str(" AND at < ?");
            args.push(t.into());
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push((limit as i64 + 1).into());
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut items: Vec<AuditEvent> = Vec::new();
        let mut more = false;
        while let Some(row) = rows.next()? {
            if items.len() == limit as usize {
                more = true;
                break;
            }
            let detail: Option<String> = row.get(7)?;
            items.push(AuditEvent {
                id: row.get(0)?,
                at: row.get(1)?,
                action: row.get(2)?,
                key_id: row.get(3)?,
                display_prefix: row.get(4)?,
                actor: row.get(5)?,
                outcome: row.get(6)?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            });
        }
        let next_cursor = if more {
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
