//! A key's model policy: the models it may call (wildcard patterns, `*`
//! for any run of characters and `?` for one) and the most tokens one
//! request may declare. Stored as one JSON object per key (`{}`: none).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Most model patterns per key.
pub const MAX_MODELS: usize = 64;
/// Longest model pattern, and longest model name a verification takes.
pub const MAX_MODEL_LEN: usize = 128;
/// Largest `max_tokens_per_request` (and token count of a request): 2^53 - 1,
/// exact in every binding's numbers.
pub const MAX_TOKENS: u64 = (1 << 53) - 1;

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
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| wildmatch::WildMatch::new(p).matches(model))
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
