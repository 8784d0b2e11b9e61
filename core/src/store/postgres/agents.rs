//! Budgets, agent tokens and leases in PostgreSQL.

use super::Pg;
use crate::error::Result;
use crate::model::agents::{AgentClaims, Budget, Lease};
use crate::store::AgentStore;

use super::queries::*;

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
