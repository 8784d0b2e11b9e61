//! Records and requests of the API-key lifecycle.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use zeroize::Zeroizing;

/// The state of a key at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Verifies (subject to scopes).
    Active,
    /// Temporarily refused; `enable` brings it back.
    Disabled,
    /// Permanently refused.
    Revoked,
    /// Past its `expires_at`.
    Expired,
}

impl KeyStatus {
    /// The lowercase name used in JSON and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
        }
    }

    /// Parses a lowercase status name.
    pub fn parse(s: &str) -> crate::Result<KeyStatus> {
        match s {
            "active" => Ok(KeyStatus::Active),
            "disabled" => Ok(KeyStatus::Disabled),
            "revoked" => Ok(KeyStatus::Revoked),
            "expired" => Ok(KeyStatus::Expired),
            _ => Err(crate::Error::invalid(
                "status must be one of active, disabled, revoked, expired",
            )),
        }
    }
}

/// A stored API key, as the database holds it: never the plaintext.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// Stable id (UUID v4).
    pub id: String,
    /// The key's prefix, e.g. `itk` or `sp_live`.
    pub prefix: String,
    /// Prefix plus the first body characters, to tell keys apart in a list.
    pub display_prefix: String,
    /// Who the key belongs to (user, service, tenant id).
    pub owner: String,
    /// Short human name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Permissions granted to the key.
    pub scopes: Vec<String>,
    /// Free JSON object of the application.
    pub metadata: Map<String, Value>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Last change of the record (Unix seconds).
    pub updated_at: i64,
    /// When the key stops verifying (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// Last successful verification (Unix seconds), if any.
    pub last_used_at: Option<i64>,
    /// Number of successful verifications.
    pub usage_count: u64,
    /// False while disabled.
    pub enabled: bool,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Why the key was revoked, if given.
    pub revoked_reason: Option<String>,
    /// 1 for a new key, +1 per rotation.
    pub version: u32,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub rotated_to: Option<String>,
    /// Rate limits applied by `verify_key_with` (all-or-nothing, per key).
    pub rate_limits: Vec<crate::ratelimit::Limit>,
    /// Models the key may call (`*` matches any run of characters, as in
    /// `gpt-4o*`); empty: any. Checked when a verification names a model.
    pub models: Vec<String>,
    /// Most tokens one request may declare (`verify_key_with(tokens=)`).
    pub max_tokens_per_request: Option<u64>,
    /// Seconds after creation at which the key is due for rotation (`None`:
    /// the manager's `default_rotation_period`, if any).
    pub rotation_period: Option<i64>,
    /// State at the time the record was read.
    pub status: KeyStatus,
}

/// Largest `max_tokens_per_request` (and token count of a request): 2^53 - 1,
/// exact in every binding's numbers.
pub const MAX_TOKENS: u64 = (1 << 53) - 1;

/// A model allow-list compiled once (a cached key's, see
/// [`KeyRecord::models`]): `*` any run of characters, `?` one; none: any.
#[derive(Debug, Default)]
pub(crate) struct ModelPatterns(Vec<wildmatch::WildMatch>);

impl ModelPatterns {
    /// The patterns compiled.
    pub(crate) fn new(patterns: &[String]) -> ModelPatterns {
        ModelPatterns(
            patterns
                .iter()
                .map(|p| wildmatch::WildMatch::new(p))
                .collect(),
        )
    }

    /// True if `model` matches a pattern (any model when there are none).
    pub(crate) fn allows(&self, model: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| p.matches(model))
    }
}

/// An owner's model policy as verifications apply it, compiled once (see
/// `TokenManager::set_owner_policy`).
#[derive(Debug)]
pub(crate) struct OwnerRules {
    /// The models the owner's keys may call.
    pub models: ModelPatterns,
    /// Most tokens one request of the owner's keys may declare.
    pub max_tokens_per_request: Option<u64>,
}

impl OwnerRules {
    /// True if `tokens` is more than the policy allows per request.
    pub(crate) fn too_many(&self, tokens: u64) -> bool {
        self.max_tokens_per_request.is_some_and(|max| tokens > max)
    }
}

impl KeyRecord {
    /// The status of this record at time `now`.
    pub fn status_at(&self, now: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| now >= e) {
            KeyStatus::Expired
        } else if !self.enabled {
            KeyStatus::Disabled
        } else {
            KeyStatus::Active
        }
    }
}

/// A key just created or rotated: the plaintext, shown exactly once, and its record.
pub struct CreatedKey {
    /// The plaintext key. Hand it to the user now; it cannot be retrieved later.
    /// Wiped from memory when dropped.
    pub key: Zeroizing<String>,
    /// The stored record.
    pub record: KeyRecord,
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &format_args!("{}…", self.record.display_prefix))
            .field("record", &self.record)
            .finish()
    }
}

/// What to create. Only `owner` is required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewKey {
    /// Who the key belongs to (required, 1–256 characters).
    pub owner: String,
    /// Short human name (≤ 256 characters).
    pub name: String,
    /// Free text (≤ 4096 characters).
    pub description: String,
    /// Permissions (≤ 64, each 1–128 characters without whitespace).
    pub scopes: Vec<String>,
    /// JSON object (≤ 16 KiB serialized).
    pub metadata: Option<Map<String, Value>>,
    /// Absolute expiry (Unix seconds, in the future).
    pub expires_at: Option<i64>,
    /// Expiry relative to now, in seconds (> 0). Exclusive with `expires_at`.
    pub expires_in: Option<i64>,
    /// Key prefix; default `itk`.
    pub prefix: Option<String>,
    /// Named rate limits of this key (≤ 16, unique names).
    pub rate_limits: Vec<crate::ratelimit::Limit>,
    /// Models the key may call (≤ 64 patterns; `*` matches any run of
    /// characters); empty: any.
    pub models: Vec<String>,
    /// Most tokens one request may declare.
    pub max_tokens_per_request: Option<u64>,
    /// Seconds after creation at which the key is due for rotation
    /// (`rotate_due`); rotations keep it.
    pub rotation_period: Option<i64>,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

/// A key brought in from another system (Unkey's migration model): its
/// plaintext or the SHA-256 of it, with the record's fields. A key not in
/// irontoken's format is a *legacy* key: no checksum, found by its hash.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportKey {
    /// The key itself (exclusive with `key_hash`); never stored.
    pub key: Option<String>,
    /// The SHA-256 of the key: 64 hex characters or 44 of base64.
    pub key_hash: Option<String>,
    /// Who the key belongs to (required, 1–256 characters).
    pub owner: String,
    /// Short human name (≤ 256 characters).
    pub name: String,
    /// Free text (≤ 4096 characters).
    pub description: String,
    /// Permissions (≤ 64, each 1–128 characters without whitespace).
    pub scopes: Vec<String>,
    /// JSON object (≤ 16 KiB serialized).
    pub metadata: Option<Map<String, Value>>,
    /// Absolute expiry (Unix seconds, in the future).
    pub expires_at: Option<i64>,
    /// What listings and logs show for the key (≤ 32 printable characters;
    /// default: the key's own prefix for irontoken keys, else the first
    /// characters of a plaintext, else `legacy`).
    pub display_prefix: Option<String>,
    /// Named rate limits of this key (≤ 16, unique names).
    pub rate_limits: Vec<crate::ratelimit::Limit>,
    /// The old system's id of the record this key comes from (1–256
    /// characters): one irontoken key per old record, ever — a second
    /// import naming it is a `CONFLICT`, even after the first key is deleted.
    pub legacy_id: Option<String>,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

impl std::fmt::Debug for ImportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportKey")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_hash", &self.key_hash.as_ref().map(|_| "<redacted>"))
            .field("owner", &self.owner)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("display_prefix", &self.display_prefix)
            .field("legacy_id", &self.legacy_id)
            .finish_non_exhaustive()
    }
}

/// A change to a key's descriptive fields. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New scopes (replaces the list).
    pub scopes: Option<Vec<String>>,
    /// New metadata (replaces the object).
    pub metadata: Option<Map<String, Value>>,
    /// `Some(Some(t))` sets the expiry, `Some(None)` (JSON `null`) clears it.
    #[serde(deserialize_with = "some_of")]
    pub expires_at: Option<Option<i64>>,
    /// New rate limits (replaces the list; empty removes them).
    pub rate_limits: Option<Vec<crate::ratelimit::Limit>>,
    /// New model allow-list (replaces the list; empty allows any model).
    pub models: Option<Vec<String>>,
    /// `Some(Some(n))` sets the most tokens per request, `Some(None)` (JSON
    /// `null`) clears it.
    #[serde(deserialize_with = "some_u64")]
    pub max_tokens_per_request: Option<Option<u64>>,
    /// `Some(Some(s))` sets the rotation period, `Some(None)` (JSON `null`) clears it.
    #[serde(deserialize_with = "some_of")]
    pub rotation_period: Option<Option<i64>>,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

impl KeyUpdate {
    /// The `expires_at` change from a binding's two arguments: a new expiry,
    /// or `clear` to remove it; giving both is `INVALID_ARGUMENT`.
    pub fn expiry_change(
        expires_at: Option<i64>,
        clear: bool,
    ) -> crate::Result<Option<Option<i64>>> {
        Self::change_of(expires_at, clear, "expiry")
    }

    /// A clearable field's change from a new `value` or `clear`; giving
    /// both is `INVALID_ARGUMENT` (naming `what`).
    pub fn change_of(
        value: Option<i64>,
        clear: bool,
        what: &str,
    ) -> crate::Result<Option<Option<i64>>> {
        Self::cleared(value, clear, what)
    }

    /// [`KeyUpdate::change_of`] for a field of any type.
    pub fn cleared<T>(
        value: Option<T>,
        clear: bool,
        what: &str,
    ) -> crate::Result<Option<Option<T>>> {
        match (value, clear) {
            (Some(_), true) => Err(crate::Error::invalid(format!(
                "give a new {what} or clear it, not both"
            ))),
            (_, true) => Ok(Some(None)),
            (v, false) => Ok(v.map(Some)),
        }
    }
}

fn some_of<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

fn some_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// How to rotate a key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotateOptions {
    /// Seconds during which the old key still verifies; 0 revokes it at once.
    pub overlap_seconds: i64,
    /// Expiry of the new key. Default: as long a lifetime as the old key had
    /// (`expires_at - created_at`) counted from now, or none if it had none.
    #[serde(deserialize_with = "some_of")]
    pub expires_at: Option<Option<i64>>,
    /// Who performs the action, for the audit trail.
    pub actor: Option<String>,
}

/// Which keys to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyFilter {
    /// Only keys of this owner.
    pub owner: Option<String>,
    /// Only keys in this state (at the time of the call).
    pub status: Option<KeyStatus>,
    /// Only keys whose display prefix (the `itk_AbC1` a listing or a log
    /// line shows) starts with this (1–64 characters).
    pub prefix: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of records; pass `next_cursor` to get the next one.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The records, oldest first for keys, newest first for the audit trail.
    pub items: Vec<T>,
    /// Opaque cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a verification answered as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyReason {
    /// The key is good.
    Valid,
    /// Not of our format or bad checksum; no database work was done.
    Malformed,
    /// Well-formed, but no such key is stored.
    NotFound,
    /// The key is disabled.
    Disabled,
    /// The key was revoked.
    Revoked,
    /// The key is past its expiry.
    Expired,
    /// The key lacks one of the required scopes.
    InsufficientScope,
    /// The key is good but one of its rate limits refused this request
    /// (only when the verification was asked to apply them).
    RateLimited,
    /// The key is good but a quota or credit balance is exhausted
    /// (only when the verification was asked to consume quota).
    UsageExceeded,
    /// The key is good but may not call the model the request names.
    ModelNotAllowed,
    /// The key is good but the request declares more tokens than the key
    /// allows per request, or than one of its token limits admits at once.
    RequestTooLarge,
}

impl VerifyReason {
    /// Every reason, in the order of their stable numbers (0 = VALID).
    pub const ALL: [VerifyReason; 11] = [
        VerifyReason::Valid,
        VerifyReason::Malformed,
        VerifyReason::NotFound,
        VerifyReason::Disabled,
        VerifyReason::Revoked,
        VerifyReason::Expired,
        VerifyReason::InsufficientScope,
        VerifyReason::RateLimited,
        VerifyReason::UsageExceeded,
        VerifyReason::ModelNotAllowed,
        VerifyReason::RequestTooLarge,
    ];

    /// The reason a stable code names (`"NOT_FOUND"`), if any.
    pub fn from_code(code: &str) -> Option<VerifyReason> {
        VerifyReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The stable code, e.g. `"NOT_FOUND"`.
    pub const fn code(self) -> &'static str {
        match self {
            VerifyReason::Valid => "VALID",
            VerifyReason::Malformed => "MALFORMED",
            VerifyReason::NotFound => "NOT_FOUND",
            VerifyReason::Disabled => "DISABLED",
            VerifyReason::Revoked => "REVOKED",
            VerifyReason::Expired => "EXPIRED",
            VerifyReason::InsufficientScope => "INSUFFICIENT_SCOPE",
            VerifyReason::RateLimited => "RATE_LIMITED",
            VerifyReason::UsageExceeded => "USAGE_EXCEEDED",
            VerifyReason::ModelNotAllowed => "MODEL_NOT_ALLOWED",
            VerifyReason::RequestTooLarge => "REQUEST_TOO_LARGE",
        }
    }

    /// The stable number (C `itk_verify_reason`).
    pub const fn number(self) -> u32 {
        match self {
            VerifyReason::Valid => 0,
            VerifyReason::Malformed => 1,
            VerifyReason::NotFound => 2,
            VerifyReason::Disabled => 3,
            VerifyReason::Revoked => 4,
            VerifyReason::Expired => 5,
            VerifyReason::InsufficientScope => 6,
            VerifyReason::RateLimited => 7,
            VerifyReason::UsageExceeded => 8,
            VerifyReason::ModelNotAllowed => 9,
            VerifyReason::RequestTooLarge => 10,
        }
    }
}

/// The answer of a key verification: a normal result, not an error.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// True only for [`VerifyReason::Valid`].
    pub valid: bool,
    /// Why.
    pub reason: VerifyReason,
    /// The key's record when the key was found (also when it is refused).
    pub record: Option<KeyRecord>,
    /// The rate-limit answer, when limits were applied.
    pub rate_limit: Option<crate::ratelimit::Decision>,
    /// The quota answer, when quota was consumed.
    pub quota: Option<crate::model::quota::QuotaDecision>,
}

/// What [`crate::TokenManager::verify_key_with`] checks besides the key itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyOptions {
    /// Scopes the key must all hold.
    pub required_scopes: Vec<String>,
    /// Apply the key's configured rate limits.
    pub rate_limit: bool,
    /// Consume these amounts from the key's (and its owner's) quotas, e.g. `{"requests": 1}`.
    pub quota: Option<crate::model::quota::Amounts>,
    /// Tokens the request declares (an estimate when the count is known
    /// only afterwards: settle with `settle_tokens`): counted against the
    /// key's limits in tokens and checked against `max_tokens_per_request`.
    pub tokens: Option<u64>,
    /// The model the request calls, checked against the key's `models`.
    pub model: Option<String>,
}

/// Whether the database holds imported legacy keys, as last seen by this
/// process (see `keys::import`).
#[derive(Default)]
pub struct LegacyKeys {
    pub(crate) present: std::sync::atomic::AtomicBool,
    /// Wall-clock ms of the last look at the meta entry (0: never).
    pub(crate) checked_ms: std::sync::atomic::AtomicI64,
}
