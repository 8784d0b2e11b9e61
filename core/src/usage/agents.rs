//! Agent tokens, budgets and budget leases.
//!
//! A budget is an amount of money (micro-units) an owner lets agents spend.
//! An agent token is a JWT signed by the active managed signing key with
//! `sub` = `agent_id`, `agent_id`, `budget_id`, `permissions`, `iss` and a
//! `jti`; it has no `exp` unless an expiry is given. Each agent has exactly
//! one live token (a unique index in the schema): issuing a new one revokes
//! the previous token and its leases in the same transaction.
//!
//! A runtime holding the token takes a lease — a slice of the budget — spends
//! against it locally, reports usage (with request ids; a retried report
//! counts once) and refreshes the lease. Leases and reports are written at
//! once (a budget must never be oversold across processes): each is one
//! `BEGIN IMMEDIATE` transaction without fsync. A budget never grants more
//! than `limit − spent − outstanding leases`. Revoking the token (or
//! issuing a new one) revokes its leases: refresh then answers
//! `AGENT_TOKEN_REVOKED`; a report against a revoked lease is still
//! recorded — that money was spent — but nothing more can be leased.

pub use crate::model::agents::*;

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::Policy;
use crate::jwt::managed::MANAGED_ALGS;
use crate::keys::{check_actor, check_len};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use crate::store;
use crate::usage::UsageReport;
use serde_json::{Map, Value, json};

/// Lease lifetime when none is given (seconds).
pub const DEFAULT_LEASE_TTL: i64 = 3600;
const MAX_LEASE_TTL: i64 = 30 * 86_400;
const MAX_MICROS: u64 = i64::MAX as u64 / 4;

fn not_found(what: &str, id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no {what} with id {id:?}"))
}

fn micros(what: &str, n: u64) -> Result<i64> {
    if n > MAX_MICROS {
        return Err(Error::invalid(format!("{what} must be below 2^61")));
    }
    Ok(n as i64)
}

fn lease_ttl(ttl: Option<i64>) -> Result<i64> {
    let t = ttl.unwrap_or(DEFAULT_LEASE_TTL);
    if !(1..=MAX_LEASE_TTL).contains(&t) {
        return Err(Error::invalid(format!(
            "ttl_seconds must be 1-{MAX_LEASE_TTL}"
        )));
    }
    Ok(t)
}

/// Lease `id` as it stands, or `NOT_FOUND`.
fn lease_in(c: &dyn store::Tx, id: &str, now: i64) -> Result<Lease> {
    c.agents()
        .lease(id, now)?
        .ok_or_else(|| not_found("lease", id))
}

/// Budget `id` as it stands, or `NOT_FOUND`.
fn budget_in(c: &dyn store::Tx, id: &str, now: i64) -> Result<Budget> {
    c.agents()
        .budget(id, now)?
        .ok_or_else(|| not_found("budget", id))
}

/// `USAGE_EXCEEDED` unless `amount` fits in what the budget has available
/// (plus `own`: the unspent part of the lease asking, when it refreshes).
fn fits(b: &Budget, own: u64, amount: i64) -> Result<()> {
    let available = b.available_micros + own;
    if amount as u64 > available {
        return Err(Error::new(
            ErrorKind::UsageExceeded,
            format!(
                "budget {} has {available} micro-units available, {amount} asked",
                b.id
            ),
        ));
    }
    Ok(())
}

fn revoked(jti: &str) -> Error {
    Error::new(
        ErrorKind::AgentTokenRevoked,
        format!("agent token {jti} was revoked"),
    )
}

impl TokenManager {
    /// Creates a budget agents can lease from.
    pub fn create_budget(&self, b: &NewBudget) -> Result<Budget> {
        check_len("owner", &b.owner, 1, 256)?;
        check_len("name", &b.name, 0, 256)?;
        check_actor(b.actor.as_deref())?;
        let limit = micros("limit_micros", b.limit_micros)?;
        let now = self.inner().now();
        let id = uuid::Uuid::new_v4().to_string();
        self.inner().write(|tx| {
            tx.agents()
                .insert_budget(&id, &b.owner, &b.name, limit, now)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::BudgetCreate,
                key_id: None,
                display_prefix: None,
                actor: b.actor.clone(),
                outcome: "ok",
                detail: Some(json!({ "budget_id": id, "owner": b.owner, "limit_micros": limit })),
            })?;
            budget_in(tx, &id, now)
        })
    }

    /// The budget `id` as it stands.
    pub fn get_budget(&self, id: &str) -> Result<Budget> {
        let now = self.inner().now();
        self.inner().db.read(|c| budget_in(c, id, now))
    }

    /// Issues the agent's token (revoking its previous one and that one's leases).
    pub fn issue_agent_token(&self, req: &AgentTokenRequest) -> Result<AgentToken> {
        check_len("agent_id", &req.agent_id, 1, 256)?;
        check_actor(req.actor.as_deref())?;
        for p in &req.permissions {
            check_len("permission", p, 1, 128)?;
        }
        if req.permissions.len() > 64 {
            return Err(Error::invalid("at most 64 permissions"));
        }
        let issuer = req.issuer.clone().unwrap_or_else(|| "irontoken".into());
        check_len("issuer", &issuer, 1, 256)?;
        let now = self.inner().now();
        let expires_at = match req.ttl_seconds {
            Some(t) if t <= 0 => return Err(Error::invalid("ttl_seconds must be positive")),
            Some(t) => Some(crate::clock::time_after("ttl_seconds", now, t)?),
            None => None,
        };
        // Before signing; the foreign key checks it again in the transaction.
        self.get_budget(&req.budget_id)?;
        let claims = AgentClaims {
            jti: uuid::Uuid::new_v4().to_string(),
            agent_id: req.agent_id.clone(),
            budget_id: req.budget_id.clone(),
            permissions: req.permissions.clone(),
            issuer,
            issued_at: now,
            expires_at,
        };
        let mut c = Map::new();
        c.insert("sub".into(), json!(claims.agent_id));
        c.insert("agent_id".into(), json!(claims.agent_id));
        c.insert("budget_id".into(), json!(claims.budget_id));
        c.insert("permissions".into(), json!(claims.permissions));
        c.insert("iss".into(), json!(claims.issuer));
        c.insert("jti".into(), json!(claims.jti));
        c.insert("iat".into(), json!(now));
        c.insert("token_use".into(), json!("agent"));
        if let Some(e) = expires_at {
            c.insert("exp".into(), json!(e));
        }
        // Signed before the transaction (signing reads the key table); a
        // token whose row is not written never verifies.
        let token = self.sign_managed(&c)?;
        let replaced = self.inner().write(|tx| {
            let old = tx.agents().live_token(&claims.agent_id)?;
            if let Some(jti) = &old {
                tx.agents().revoke_token(jti, now)?;
            }
            tx.agents()
                .insert_token(&claims, &serde_json::to_string(&claims.permissions)?)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::AgentTokenIssue,
                key_id: None,
                display_prefix: None,
                actor: req.actor.clone(),
                outcome: "ok",
                detail: Some(json!({
                    "agent_id": claims.agent_id, "budget_id": claims.budget_id,
                    "jti": claims.jti, "replaced": old,
                })),
            })?;
            Ok(old)
        })?;
        Ok(AgentToken {
            token,
            claims,
            replaced,
        })
    }

    /// Verifies an agent token: signature (managed keys), expiry if any, and
    /// that it is the agent's live token. `AGENT_TOKEN_REVOKED` otherwise.
    pub fn verify_agent_token(&self, token: &str) -> Result<AgentClaims> {
        let mut policy = Policy::new(&MANAGED_ALGS);
        policy.require_exp = false;
        policy.required = ["jti", "agent_id", "budget_id", "iss", "iat"]
            .map(String::from)
            .to_vec();
        let d = self.verify_jwt(token, &policy)?;
        let s = |k: &str| d.claims.get(k).and_then(Value::as_str).map(str::to_string);
        let bad = || Error::new(ErrorKind::JwtInvalidClaim, "not an agent token");
        if d.claims.get("token_use").and_then(Value::as_str) != Some("agent") {
            return Err(bad());
        }
        let jti = s("jti").ok_or_else(bad)?;
        let stored = self
            .inner()
            .db
            .read(|c| c.agents().token(&jti))?
            .ok_or_else(|| revoked(&jti))?;
        if stored.1.is_some() {
            return Err(revoked(&jti));
        }
        Ok(AgentClaims {
            jti,
            agent_id: s("agent_id").ok_or_else(bad)?,
            budget_id: s("budget_id").ok_or_else(bad)?,
            permissions: serde_json::from_value(
                d.claims.get("permissions").cloned().unwrap_or(json!([])),
            )
            .map_err(|_| bad())?,
            issuer: s("iss").ok_or_else(bad)?,
            issued_at: d
                .claims
                .get("iat")
                .and_then(Value::as_i64)
                .ok_or_else(bad)?,
            expires_at: d.claims.get("exp").and_then(Value::as_i64),
        })
    }

    /// Revokes the live token of `agent_id` and its leases; returns its `jti`.
    pub fn revoke_agent_token(&self, agent_id: &str, actor: Option<&str>) -> Result<String> {
        check_actor(actor)?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            let jti = tx
                .agents()
                .live_token(agent_id)?
                .ok_or_else(|| not_found("live agent token for agent", agent_id))?;
            tx.agents().revoke_token(&jti, now)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::AgentTokenRevoke,
                key_id: None,
                display_prefix: None,
                actor: actor.map(str::to_string),
                outcome: "ok",
                detail: Some(json!({ "agent_id": agent_id, "jti": jti })),
            })?;
            Ok(jti)
        })
    }

    /// Takes a lease of `amount_micros` from the token's budget;
    /// `USAGE_EXCEEDED` if the budget has not that much available.
    pub fn acquire_lease(
        &self,
        agent_token: &str,
        amount_micros: u64,
        ttl_seconds: Option<i64>,
    ) -> Result<Lease> {
        let amount = micros("amount_micros", amount_micros)?;
        let ttl = lease_ttl(ttl_seconds)?;
        let claims = self.verify_agent_token(agent_token)?;
        let now = self.inner().now();
        let id = uuid::Uuid::new_v4().to_string();
        self.inner().db.write_relaxed(|tx| {
            if tx
                .agents()
                .token(&claims.jti)?
                .is_none_or(|t| t.1.is_some())
            {
                return Err(revoked(&claims.jti));
            }
            let b = budget_in(tx, &claims.budget_id, now)?;
            fits(&b, 0, amount)?;
            tx.agents()
                .insert_lease(&id, &claims, amount, now, now + ttl)?;
            lease_in(tx, &id, now)
        })
    }

    /// The lease `id` as it stands.
    pub fn get_lease(&self, id: &str) -> Result<Lease> {
        let now = self.inner().now();
        self.inner().db.read(|c| lease_in(c, id, now))
    }

    /// Extends a live lease so that `amount_micros` more is available on it
    /// (amount = spent + `amount_micros`) and renews its TTL; denied with
    /// `USAGE_EXCEEDED` beyond the budget, `AGENT_TOKEN_REVOKED` once the
    /// token was revoked.
    pub fn refresh_lease(
        &self,
        id: &str,
        amount_micros: u64,
        ttl_seconds: Option<i64>,
    ) -> Result<Lease> {
        let amount = micros("amount_micros", amount_micros)?;
        let ttl = lease_ttl(ttl_seconds)?;
        let now = self.inner().now();
        self.inner().db.write_relaxed(|tx| {
            let l = lease_in(tx, id, now)?;
            match l.status.as_str() {
                "revoked" => return Err(revoked(&l.jti)),
                "active" | "expired" => {}
                s => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("lease {id} is {s}"),
                    ));
                }
            }
            let b = budget_in(tx, &l.budget_id, now)?;
            // This lease's own unspent part is available to it again.
            let own = if l.status == "active" {
                l.remaining_micros
            } else {
                0
            };
            fits(&b, own, amount)?;
            tx.agents().set_lease(
                id,
                l.spent_micros as i64 + amount,
                "active",
                now,
                Some(now + ttl),
            )?;
            lease_in(tx, id, now)
        })
    }

    /// Ends a lease; its unspent part returns to the budget.
    pub fn release_lease(&self, id: &str) -> Result<Lease> {
        let now = self.inner().now();
        self.inner().db.write_relaxed(|tx| {
            let l = lease_in(tx, id, now)?;
            if l.status == "active" || l.status == "expired" {
                tx.agents()
                    .set_lease(id, l.amount_micros as i64, "released", now, None)?;
            }
            lease_in(tx, id, now)
        })
    }

    /// Records usage spent on lease `id` (`request_id` required: a retried
    /// report counts once) and charges its cost to the lease and the budget.
    pub fn report_lease_usage(&self, id: &str, report: &UsageReport) -> Result<Lease> {
        if report.request_id.is_none() {
            return Err(Error::invalid("request_id is required for lease usage"));
        }
        let now = self.inner().now();
        let mut p = crate::usage::prepare(report, now)?;
        // Charged to the lease when written: final, never replaced.
        p.reported_at_ms = 0;
        let mut counted = false;
        let lease = self.inner().db.write_relaxed(|tx| {
            let l = lease_in(tx, id, now)?;
            let b = budget_in(tx, &l.budget_id, now)?;
            p.agent_id = Some(l.agent_id.clone());
            p.owner = Some(b.owner);
            if tx.usage().insert(&p)? {
                counted = true;
                tx.agents()
                    .spend(id, &l.budget_id, p.numbers[5] as i64, now)?;
            }
            lease_in(tx, id, now)
        })?;
        if counted {
            self.inner().metrics.usage(&p.numbers);
        }
        Ok(lease)
    }
}
