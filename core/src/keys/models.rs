//! A key's model policy: the models it may call (wildcard patterns, `*`
//! for any run of characters and `?` for one) and the most tokens one
//! request may declare. Stored as one JSON object per key (`{}`: none).
//!
//! An owner may have a policy too ([`TokenManager::set_owner_policy`]): it
//! applies to every key of the owner together with the key's own — a model
//! must be allowed by both lists, and the lower ceiling wins.

use crate::error::{Error, ErrorKind, Result};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use serde::{Deserialize, Serialize};

/// Most model patterns per key.
pub const MAX_MODELS: usize = 64;
/// Longest model pattern, and longest model name a verification takes.
pub const MAX_MODEL_LEN: usize = 128;
pub use crate::model::keys::MAX_TOKENS;

/// The policy as the key's JSON column holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ModelPolicy {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_request: Option<u64>,
}

impl ModelPolicy {
    /// A policy checked for storage: at most [`MAX_MODELS`] patterns of
    /// 1–[`MAX_MODEL_LEN`] characters without whitespace or control
    /// characters, and a positive `max_tokens_per_request` of at most
    /// [`MAX_TOKENS`].
    pub fn new(models: &[String], max_tokens_per_request: Option<u64>) -> Result<ModelPolicy> {
        if models.len() > MAX_MODELS {
            return Err(Error::invalid(format!(
                "at most {MAX_MODELS} model patterns per key"
            )));
        }
        for m in models {
            check_model("a model pattern", m)?;
        }
        if let Some(n) = max_tokens_per_request
            && !(1..=MAX_TOKENS).contains(&n)
        {
            return Err(Error::invalid(format!(
                "max_tokens_per_request must be 1 to {MAX_TOKENS}"
            )));
        }
        Ok(ModelPolicy {
            models: models.to_vec(),
            max_tokens_per_request,
        })
    }

    /// The JSON the key's column stores.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// A stored policy (as written by [`ModelPolicy::to_json`]).
    pub fn from_json(text: &str) -> Result<ModelPolicy> {
        serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::DatabaseCorrupt,
                format!("a stored model policy does not parse: {e}"),
            )
        })
    }

    /// The policy as verifications apply it, its patterns compiled.
    pub fn rules(&self) -> crate::model::keys::OwnerRules {
        crate::model::keys::OwnerRules {
            models: crate::model::keys::ModelPatterns::new(&self.models),
            max_tokens_per_request: self.max_tokens_per_request,
        }
    }
}

/// An owner's model policy, applied with each of the owner's keys' own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerPolicy {
    /// The owner.
    pub owner: String,
    /// Models the owner's keys may call (patterns; empty: any).
    pub models: Vec<String>,
    /// Most tokens one request of the owner's keys may declare.
    pub max_tokens_per_request: Option<u64>,
    /// When the policy was set (Unix seconds).
    pub updated_at: i64,
}

/// An owner's model policy to set (it replaces any the owner had).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnerPolicySpec {
    /// The owner (1-256 characters), as keys name it.
    pub owner: String,
    /// Models the owner's keys may call (≤ 64 patterns); empty: any.
    pub models: Vec<String>,
    /// Most tokens one request of the owner's keys may declare.
    pub max_tokens_per_request: Option<u64>,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

impl TokenManager {
    /// Sets the model policy of an owner: every key of the owner is held to
    /// it as well as to its own (both allow-lists, the lower ceiling), from
    /// every process's next verification that names a model or tokens.
    pub fn set_owner_policy(&self, spec: &OwnerPolicySpec) -> Result<OwnerPolicy> {
        super::check_len("owner", &spec.owner, 1, super::MAX_OWNER)?;
        super::check_actor(spec.actor.as_deref())?;
        let policy = ModelPolicy::new(&spec.models, spec.max_tokens_per_request)?;
        let json = policy.to_json()?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            tx.keys().set_owner_policy(&spec.owner, &json, now)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::OwnerPolicySet,
                key_id: None,
                display_prefix: None,
                actor: spec.actor.clone(),
                outcome: "ok",
                detail: Some(serde_json::json!({
                    "owner": spec.owner, "models": policy.models,
                    "max_tokens_per_request": policy.max_tokens_per_request,
                })),
            })
        })?;
        Ok(OwnerPolicy {
            owner: spec.owner.clone(),
            models: policy.models,
            max_tokens_per_request: policy.max_tokens_per_request,
            updated_at: now,
        })
    }

    /// The model policy of `owner`, if one is set.
    pub fn get_owner_policy(&self, owner: &str) -> Result<Option<OwnerPolicy>> {
        super::check_len("owner", owner, 1, super::MAX_OWNER)?;
        let found = self.inner().db.read(|c| c.keys().owner_policy(owner))?;
        found
            .map(|(json, updated_at)| {
                let p = ModelPolicy::from_json(&json)?;
                Ok(OwnerPolicy {
                    owner: owner.to_string(),
                    models: p.models,
                    max_tokens_per_request: p.max_tokens_per_request,
                    updated_at,
                })
            })
            .transpose()
    }

    /// Removes the model policy of `owner` (audited); false if it had none.
    pub fn delete_owner_policy(&self, owner: &str, actor: Option<&str>) -> Result<bool> {
        super::check_len("owner", owner, 1, super::MAX_OWNER)?;
        super::check_actor(actor)?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            let had = tx.keys().delete_owner_policy(owner)?;
            if had {
                tx.audit().insert(&NewAuditEvent {
                    at: now,
                    action: AuditAction::OwnerPolicyDelete,
                    key_id: None,
                    display_prefix: None,
                    actor: actor.map(str::to_string),
                    outcome: "ok",
                    detail: Some(serde_json::json!({ "owner": owner })),
                })?;
            }
            Ok(had)
        })
    }
}

/// Checks a model name or pattern: 1–[`MAX_MODEL_LEN`] characters, none
/// of them whitespace or a control character.
pub(crate) fn check_model(what: &str, m: &str) -> Result<()> {
    if m.is_empty()
        || m.chars().count() > MAX_MODEL_LEN
        || m.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(format!(
            "{what} must be 1-{MAX_MODEL_LEN} characters without spaces or control characters"
        )));
    }
    Ok(())
}

/// True if `model` is allowed by `patterns` (any model when there are none).
pub fn model_allowed(patterns: &[String], model: &str) -> bool {
    crate::model::keys::ModelPatterns::new(patterns).allows(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = vec!["gpt-4o*".to_string(), "claude-?-opus".to_string()];
        assert!(model_allowed(&p, "gpt-4o"));
        assert!(model_allowed(&p, "gpt-4o-mini-2024-07-18"));
        assert!(model_allowed(&p, "claude-3-opus"));
        assert!(!model_allowed(&p, "gpt-4"));
        assert!(!model_allowed(&p, "GPT-4o"), "case matters");
        assert!(!model_allowed(&p, "claude-3-sonnet"));
        assert!(!model_allowed(&p, "xgpt-4o"));
        assert!(model_allowed(&[], "anything"));
    }

    #[test]
    fn validation() {
        assert!(ModelPolicy::new(&["".into()], None).is_err());
        assert!(ModelPolicy::new(&["a b".into()], None).is_err());
        assert!(ModelPolicy::new(&["a\u{0}".into()], None).is_err());
        assert!(ModelPolicy::new(&["x".repeat(129)], None).is_err());
        assert!(ModelPolicy::new(&vec!["m".to_string(); 65], None).is_err());
        assert!(ModelPolicy::new(&[], Some(0)).is_err());
        assert!(ModelPolicy::new(&[], Some(MAX_TOKENS + 1)).is_err());
        let p = ModelPolicy::new(&["gpt-4o*".into()], Some(4000)).unwrap();
        assert_eq!(
            p.to_json().unwrap(),
            r#"{"models":["gpt-4o*"],"max_tokens_per_request":4000}"#
        );
        assert_eq!(ModelPolicy::default().to_json().unwrap(), "{}");
    }
}
