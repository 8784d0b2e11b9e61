//! Queries on `budgets`, `agent_tokens` and `budget_leases`.

use super::Sql;
use crate::error::Result;
use crate::model::agents::{AgentClaims, Budget, Lease};
use crate::store::AgentStore;
use rusqlite::{OptionalExtension, params};

impl AgentStore for Sql<'_> {
    fn insert_budget(&self, id: &str, owner: &str, name: &str, limit: i64, now: i64) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "INSERT INTO budgets (id, owner, name, limit_micros, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![id, owner, name, limit, now])?;
        Ok(())
    }

    /// A budget with its outstanding leases (live: active and unexpired).
    fn budget(&self, id: &str, now: i64) -> Result<Option<Budget>> {
        let c = self.0;
        Ok(c.prepare_cached(
            "SELECT id, owner, name, limit_micros, spent_micros, created_at, \
           (SELECT coalesce(sum(max(0, amount_micros - spent_micros)), 0) FROM budget_leases \
              WHERE budget_id = budgets.id AND status = 'active' AND expires_at > ?2) \
         FROM budgets WHERE id = ?1",
        )?
        .query_row(params![id, now], |r| {
            let limit: i64 = r.get(3)?;
            let spent: i64 = r.get(4)?;
            let leased: i64 = r.get(6)?;
            Ok(Budget {
                id: r.get(0)?,
                owner: r.get(1)?,
                name: r.get(2)?,
                limit_micros: super::count(limit),
                spent_micros: super::count(spent),
                leased_micros: super::count(leased),
                available_micros: super::count(limit - spent - leased),
                created_at: r.get(5)?,
            })
        })
        .optional()?)
    }

    /// The `jti` of the agent's live token.
    fn live_token(&self, agent_id: &str) -> Result<Option<String>> {
        let c = self.0;
        Ok(c.prepare_cached(
            "SELECT jti FROM agent_tokens WHERE agent_id = ?1 AND revoked_at IS NULL",
        )?
        .query_row(params![agent_id], |r| r.get(0))
        .optional()?)
    }

    /// (agent id, revoked_at) of token `jti`.
    fn token(&self, jti: &str) -> Result<Option<(String, Option<i64>)>> {
        let c = self.0;
        Ok(
            c.prepare_cached("SELECT agent_id, revoked_at FROM agent_tokens WHERE jti = ?1")?
                .query_row(params![jti], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
        )
    }

    fn insert_token(&self, t: &AgentClaims, permissions: &str) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
        "INSERT INTO agent_tokens (jti, agent_id, budget_id, permissions, issued_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        t.jti,
        t.agent_id,
        t.budget_id,
        permissions,
        t.issued_at,
        t.expires_at
    ])?;
        Ok(())
    }

    /// Revokes token `jti` and its active leases.
    fn revoke_token(&self, jti: &str, now: i64) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "UPDATE agent_tokens SET revoked_at = ?2 WHERE jti = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![jti, now])?;
        c.prepare_cached(
            "UPDATE budget_leases SET status = 'revoked', updated_at = ?2 \
         WHERE jti = ?1 AND status = 'active'",
        )?
        .execute(params![jti, now])?;
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
        let c = self.0;
        c.prepare_cached(
            "INSERT INTO budget_leases (id, budget_id, jti, amount_micros, status, created_at, \
         expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?5)",
        )?
        .execute(params![id, t.budget_id, t.jti, amount, now, expires_at])?;
        Ok(())
    }

    fn lease(&self, id: &str, now: i64) -> Result<Option<Lease>> {
        let c = self.0;
        Ok(c.prepare_cached(
            "SELECT l.id, l.budget_id, t.agent_id, l.jti, l.amount_micros, l.spent_micros, \
           CASE WHEN l.status = 'active' AND l.expires_at <= ?2 THEN 'expired' ELSE l.status END, \
           l.created_at, l.expires_at \
         FROM budget_leases l JOIN agent_tokens t ON t.jti = l.jti WHERE l.id = ?1",
        )?
        .query_row(params![id, now], |r| {
            let amount: i64 = r.get(4)?;
            let spent: i64 = r.get(5)?;
            Ok(Lease {
                id: r.get(0)?,
                budget_id: r.get(1)?,
                agent_id: r.get(2)?,
                jti: r.get(3)?,
                amount_micros: super::count(amount),
                spent_micros: super::count(spent),
                remaining_micros: super::count(amount - spent),
                status: r.get(6)?,
                created_at: r.get(7)?,
                expires_at: r.get(8)?,
            })
        })
        .optional()?)
    }

    fn set_lease(
        &self,
        id: &str,
        amount: i64,
        status: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
            "UPDATE budget_leases SET amount_micros = ?2, status = ?3, updated_at = ?4, \
         expires_at = coalesce(?5, expires_at) WHERE id = ?1",
        )?
        .execute(params![id, amount, status, now, expires_at])?;
        Ok(())
    }

    /// Charges `cost` to lease `id` and its budget.
    fn spend(&self, id: &str, budget_id: &str, cost: i64, now: i64) -> Result<()> {
        let c = self.0;
        c.prepare_cached(
        "UPDATE budget_leases SET spent_micros = spent_micros + ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, cost, now])?;
        c.prepare_cached(
            "UPDATE budgets SET spent_micros = spent_micros + ?2, updated_at = max(updated_at, ?3) \
         WHERE id = ?1",
        )?
        .execute(params![budget_id, cost, now])?;
        Ok(())
    }
}
