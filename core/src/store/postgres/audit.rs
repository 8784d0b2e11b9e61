//! The audit trail in PostgreSQL (append-only).

use super::Pg;
use crate::error::Result;
use crate::model::audit::{AuditEvent, AuditFilter, NewAuditEvent};
use crate::model::keys::Page;
use crate::store::AuditStore;

use super::queries::*;

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
