//! The append-only audit trail.
//!
//! Every state change of a key is written in the same transaction as the
//! change itself. Failed verifications are buffered and written with the
//! usage counters (see [`crate::TokenManager::flush`]); the schema refuses
//! UPDATE and DELETE on the table.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    /// A key was created.
    #[serde(rename = "key.create")]
    KeyCreate,
    /// A key's fields were changed.
    #[serde(rename = "key.update")]
    KeyUpdate,
    /// A key was disabled.
    #[serde(rename = "key.disable")]
    KeyDisable,
    /// A key was enabled again.
    #[serde(rename = "key.enable")]
    KeyEnable,
    /// A key was revoked.
    #[serde(rename = "key.revoke")]
    KeyRevoke,
    /// A key was rotated (logged on the old key; detail names the new one).
    #[serde(rename = "key.rotate")]
    KeyRotate,
    /// A key record was deleted.
    #[serde(rename = "key.delete")]
    KeyDelete,
    /// A verification failed (outcome = the reason code).
    #[serde(rename = "key.verify")]
    KeyVerify,
    /// A deleted key's tombstone was lifted: the key may be imported again.
    #[serde(rename = "key.tombstone_lift")]
    KeyTombstoneLift,
    /// A managed signing key was created.
    #[serde(rename = "signing_key.create")]
    SigningKeyCreate,
    /// The active signing key was replaced (logged on the old key).
    #[serde(rename = "signing_key.rotate")]
    SigningKeyRotate,
    /// A signing key was retired.
    #[serde(rename = "signing_key.retire")]
    SigningKeyRetire,
    /// An API key was exchanged for an access token.
    #[serde(rename = "token.exchange")]
    TokenExchange,
    /// A quota was created or changed (subject in detail).
    #[serde(rename = "quota.set")]
    QuotaSet,
    /// A quota was removed.
    #[serde(rename = "quota.delete")]
    QuotaDelete,
    /// A budget for agents was created.
    #[serde(rename = "budget.create")]
    BudgetCreate,
    /// An agent token was issued (the previous one of the agent is revoked).
    #[serde(rename = "agent_token.issue")]
    AgentTokenIssue,
    /// An agent token was revoked, with its leases.
    #[serde(rename = "agent_token.revoke")]
    AgentTokenRevoke,
    /// A capability token was minted from a key (detail: tools, ceiling, expiry).
    #[serde(rename = "capability.mint")]
    CapabilityMint,
    /// A capability block was revoked, with every token attenuated from it.
    #[serde(rename = "capability.revoke")]
    CapabilityRevoke,
    /// A capability root key was created.
    #[serde(rename = "capability_root.create")]
    CapabilityRootCreate,
    /// The active capability root key was replaced (logged on the old key).
    #[serde(rename = "capability_root.rotate")]
    CapabilityRootRotate,
    /// A refresh-token family was started (detail: family, expiry).
    #[serde(rename = "token_family.create")]
    TokenFamilyCreate,
    /// A refresh-token family was revoked (detail: family, reason; outcome
    /// `reuse_detected` when a spent refresh token was presented again).
    #[serde(rename = "token_family.revoke")]
    TokenFamilyRevoke,
    /// A session was replaced by a new id (detail: old and new id).
    #[serde(rename = "session.rotate")]
    SessionRotate,
    /// Every live session of an owner was ended (detail: owner, count).
    #[serde(rename = "session.end_all")]
    SessionEndAll,
    /// An owner's model policy was set (detail: owner, models, ceiling).
    #[serde(rename = "owner_policy.set")]
    OwnerPolicySet,
    /// An owner's model policy was removed (detail: owner).
    #[serde(rename = "owner_policy.delete")]
    OwnerPolicyDelete,
}

impl AuditAction {
    /// The stored name, e.g. `"key.revoke"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::KeyCreate => "key.create",
            AuditAction::KeyUpdate => "key.update",
            AuditAction::KeyDisable => "key.disable",
            AuditAction::KeyEnable => "key.enable",
            AuditAction::KeyRevoke => "key.revoke",
            AuditAction::KeyRotate => "key.rotate",
            AuditAction::KeyDelete => "key.delete",
            AuditAction::KeyVerify => "key.verify",
            AuditAction::KeyTombstoneLift => "key.tombstone_lift",
            AuditAction::SigningKeyCreate => "signing_key.create",
            AuditAction::SigningKeyRotate => "signing_key.rotate",
            AuditAction::SigningKeyRetire => "signing_key.retire",
            AuditAction::TokenExchange => "token.exchange",
            AuditAction::QuotaSet => "quota.set",
            AuditAction::QuotaDelete => "quota.delete",
            AuditAction::BudgetCreate => "budget.create",
            AuditAction::AgentTokenIssue => "agent_token.issue",
            AuditAction::AgentTokenRevoke => "agent_token.revoke",
            AuditAction::CapabilityMint => "capability.mint",
            AuditAction::CapabilityRevoke => "capability.revoke",
            AuditAction::CapabilityRootCreate => "capability_root.create",
            AuditAction::CapabilityRootRotate => "capability_root.rotate",
            AuditAction::TokenFamilyCreate => "token_family.create",
            AuditAction::TokenFamilyRevoke => "token_family.revoke",
            AuditAction::SessionRotate => "session.rotate",
            AuditAction::SessionEndAll => "session.end_all",
            AuditAction::OwnerPolicySet => "owner_policy.set",
            AuditAction::OwnerPolicyDelete => "owner_policy.delete",
        }
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Increasing id (the order of the trail).
    pub id: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// What, e.g. `key.revoke`.
    pub action: String,
    /// The key concerned, when known.
    pub key_id: Option<String>,
    /// The key's display prefix, when known (never more of the key).
    pub display_prefix: Option<String>,
    /// Who did it, if the caller said.
    pub actor: Option<String>,
    /// `ok` for changes; the reason code for failed verifications.
    pub outcome: String,
    /// Extra JSON (changed fields, rotation partner, revoke reason).
    pub detail: Option<Value>,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditFilter {
    /// Only events of this key.
    pub key_id: Option<String>,
    /// Only this action (e.g. `key.verify`).
    pub action: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this outcome (e.g. `NOT_FOUND`).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events before this time.
    pub until: Option<i64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An event not yet written.
#[derive(Debug, Clone)]
pub(crate) struct NewAuditEvent {
    pub at: i64,
    pub action: AuditAction,
    pub key_id: Option<String>,
    pub display_prefix: Option<String>,
    pub actor: Option<String>,
    pub outcome: &'static str,
    pub detail: Option<Value>,
}
