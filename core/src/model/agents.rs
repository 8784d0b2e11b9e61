//! Agent budgets, tokens and leases as data.

use serde::{Deserialize, Serialize};

/// A budget to create.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewBudget {
    /// Owner (1–256 characters).
    pub owner: String,
    /// Name (≤ 256 characters).
    pub name: String,
    /// Total that may be spent, in micro-units.
    pub limit_micros: u64,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

/// A budget as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// UUID.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Total that may be spent.
    pub limit_micros: u64,
    /// Spent (reported usage).
    pub spent_micros: u64,
    /// Leased and not yet spent, over live leases.
    pub leased_micros: u64,
    /// limit − spent − leased, never below 0: what a new lease may take.
    pub available_micros: u64,
    /// Creation.
    pub created_at: i64,
}

/// An agent token to issue.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentTokenRequest {
    /// The agent (1–256 characters).
    pub agent_id: String,
    /// The budget it spends from.
    pub budget_id: String,
    /// Permissions carried in the token.
    pub permissions: Vec<String>,
    /// `iss` claim; default `irontoken`.
    pub issuer: Option<String>,
    /// Lifetime in seconds; none = no `exp` (long-lived until revoked).
    pub ttl_seconds: Option<i64>,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

/// An issued agent token.
#[derive(Debug, Clone, Serialize)]
pub struct AgentToken {
    /// The signed JWT (shown now; only its `jti` is stored).
    pub token: String,
    /// Its claims.
    pub claims: AgentClaims,
    /// The `jti` of the token this one replaced (now revoked), if any.
    pub replaced: Option<String>,
}

/// The claims of a verified agent token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentClaims {
    /// Token id.
    pub jti: String,
    /// The agent.
    pub agent_id: String,
    /// Its budget.
    pub budget_id: String,
    /// Permissions.
    pub permissions: Vec<String>,
    /// Issuer.
    pub issuer: String,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
}

/// A slice of a budget held by an agent's runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// UUID.
    pub id: String,
    /// The budget.
    pub budget_id: String,
    /// The agent.
    pub agent_id: String,
    /// The token it was taken with.
    pub jti: String,
    /// Leased amount (grows with refreshes).
    pub amount_micros: u64,
    /// Spent against it.
    pub spent_micros: u64,
    /// amount − spent, never below 0.
    pub remaining_micros: u64,
    /// `active`, `released`, `revoked` or `expired`.
    pub status: String,
    /// Creation.
    pub created_at: i64,
    /// End of the lease unless refreshed.
    pub expires_at: i64,
}
