//! Sessions as data: status, record, requests and filters.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The session type used when none is given.
pub const DEFAULT_SESSION_TYPE: &str = "runtime";

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Live.
    Active,
    /// Live but paused by the application (it still expires).
    Paused,
    /// Ended by the application (or by revoking its key).
    Ended,
    /// Past its absolute or idle expiry.
    Expired,
}

impl SessionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Paused => "paused",
            SessionStatus::Ended => "ended",
            SessionStatus::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<SessionStatus> {
        match s {
            "active" => Ok(SessionStatus::Active),
            "paused" => Ok(SessionStatus::Paused),
            "ended" => Ok(SessionStatus::Ended),
            "expired" => Ok(SessionStatus::Expired),
            _ => Err(Error::invalid(
                "session status must be one of active, paused, ended, expired",
            )),
        }
    }

    /// True for `active` and `paused`.
    pub fn is_live(self) -> bool {
        matches!(self, SessionStatus::Active | SessionStatus::Paused)
    }
}

/// A session as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    /// UUID.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// The API key the session belongs to, if any.
    pub key_id: Option<String>,
    /// E.g. `runtime`.
    pub session_type: String,
    /// Status at the time of reading.
    pub status: SessionStatus,
    /// Application metadata (e.g. `max_memory_mb`).
    pub metadata: Map<String, Value>,
    /// Creation (Unix seconds).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Last touch.
    pub last_seen_at: i64,
    /// Absolute expiry, if any.
    pub expires_at: Option<i64>,
    /// Idle timeout in seconds, if any.
    pub idle_timeout: Option<i64>,
    /// When the session expires if not touched: min(absolute, last touch + idle).
    pub expires_next_at: Option<i64>,
    /// When it ended or expired.
    pub ended_at: Option<i64>,
    /// Why it ended (`expired`, `key_revoked`, `rotated`, or the caller's reason).
    pub end_reason: Option<String>,
    /// Whether it is bound to a fingerprint (never the fingerprint itself).
    pub fingerprint_bound: bool,
}

/// When a live session expires if nothing happens: the earlier of its
/// absolute expiry and its last touch plus its idle timeout (`None`:
/// never). The one statement of the rule: stores keep its value in their
/// `ends_at` column and only compare it with now.
pub(crate) fn next_expiry(
    expires_at: Option<i64>,
    idle_timeout: Option<i64>,
    last_seen_at: i64,
) -> Option<i64> {
    let idle_end = idle_timeout.map(|t| last_seen_at.saturating_add(t));
    match (expires_at, idle_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Session {
    /// A session from its stored columns (`status` as the store reads it:
    /// `expired` once `ends_at` has passed): for an expired session never
    /// ended explicitly, when and why.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_stored(
        id: String,
        owner: String,
        key_id: Option<String>,
        session_type: String,
        status: &str,
        metadata: Map<String, Value>,
        [created_at, updated_at, last_seen_at]: [i64; 3],
        expires_at: Option<i64>,
        idle_timeout: Option<i64>,
        ended_at: Option<i64>,
        end_reason: Option<String>,
        ends_at: Option<i64>,
        fingerprint_bound: bool,
    ) -> Session {
        let expiry = ends_at;
        let status = SessionStatus::parse(status).unwrap_or(SessionStatus::Expired);
        Session {
            id,
            owner,
            key_id,
            session_type,
            status,
            metadata,
            created_at,
            updated_at,
            last_seen_at,
            expires_at,
            idle_timeout,
            expires_next_at: expiry,
            ended_at: match (ended_at, status) {
                (None, SessionStatus::Expired) => expiry,
                (e, _) => e,
            },
            end_reason: match end_reason {
                None if status == SessionStatus::Expired => Some("expired".into()),
                r => r,
            },
            fingerprint_bound,
        }
    }
}

/// A session to create.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewSession {
    /// Owner (required, 1–256 characters).
    pub owner: String,
    /// The API key it belongs to (must be active).
    pub key_id: Option<String>,
    /// Type (1–64 characters); default `runtime`.
    pub session_type: Option<String>,
    /// JSON object (≤ 16 KiB).
    pub metadata: Option<Map<String, Value>>,
    /// Absolute lifetime in seconds; none = no absolute expiry.
    pub ttl_seconds: Option<i64>,
    /// Idle timeout in seconds; none = never idles out.
    pub idle_timeout_seconds: Option<i64>,
    /// Binds the session to a caller-chosen fingerprint (say, a hash of the
    /// user agent and the key id; 1–1024 bytes, kept as its SHA-256): a
    /// check with another one is refused (`SESSION_FINGERPRINT_MISMATCH`).
    pub fingerprint: Option<String>,
    /// At most this many live sessions for the owner: one more is refused
    /// (`SESSION_LIMIT_EXCEEDED`), or ends the oldest with `evict_oldest`.
    pub max_concurrent: Option<u32>,
    /// With `max_concurrent`: end the owner's oldest live sessions to make
    /// room instead of refusing.
    pub evict_oldest: bool,
}

/// A change to a live session.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionUpdate {
    /// `active` or `paused` (end a session with `end_session`).
    pub status: Option<String>,
    /// Replaces the metadata.
    pub metadata: Option<Map<String, Value>>,
}

/// Which sessions to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionFilter {
    /// Only this owner's.
    pub owner: Option<String>,
    /// Only of this type.
    pub session_type: Option<String>,
    /// Only in this status (as computed now).
    pub status: Option<String>,
    /// Only of this key.
    pub key_id: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
