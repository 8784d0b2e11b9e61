//! Refresh-token families as data: the request, the pair handed out and a
//! family as read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Lifetime of a refresh token after it is issued (14 days): a family not
/// refreshed for this long ends (the idle timeout).
pub const DEFAULT_REFRESH_TTL: i64 = 14 * 86_400;
/// Absolute lifetime of a family (90 days): no refresh token outlives it.
pub const DEFAULT_FAMILY_TTL: i64 = 90 * 86_400;
/// Longest family lifetime accepted (one year).
pub const MAX_FAMILY_TTL: i64 = 366 * 86_400;
/// How long an ended family is kept (so its tokens answer "expired" or
/// "revoked" rather than "invalid") before the upkeep deletes it (1 day).
pub const FAMILY_GRACE_SECONDS: i64 = 86_400;
/// The prefix of refresh tokens (`itkrt_<body><checksum>`, the API-key
/// format, so secret scanners and the adapters' credential checks see them).
pub const REFRESH_PREFIX: &str = "itkrt";
/// Claims an access token of a pair always carries, set by irontoken: a
/// caller's `claims` may not name them.
pub const RESERVED_CLAIMS: [&str; 7] = ["sub", "scope", "fid", "iat", "exp", "nbf", "jti"];

/// What [`crate::TokenManager::issue_token_pair`] is asked for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewTokenPair {
    /// Who the tokens are for: the access token's `sub` (1–256 characters).
    pub subject: String,
    /// Scopes, carried space-separated in the access token's `scope` claim.
    pub scopes: Vec<String>,
    /// Further claims of every access token of the family (e.g. `aud`,
    /// `cnf`); none of [`RESERVED_CLAIMS`].
    pub claims: Map<String, Value>,
    /// Access-token lifetime in seconds (default 15 minutes).
    pub ttl_seconds: Option<i64>,
    /// Refresh-token lifetime in seconds: the family's idle timeout
    /// (default [`DEFAULT_REFRESH_TTL`]).
    pub refresh_ttl_seconds: Option<i64>,
    /// The family's absolute lifetime in seconds (default
    /// [`DEFAULT_FAMILY_TTL`], at most [`MAX_FAMILY_TTL`]).
    pub family_ttl_seconds: Option<i64>,
    /// Binds the family to a DPoP key (RFC 9449): its JWK thumbprint, as a
    /// verified proof's `jkt`. Access tokens carry `cnf.jkt`, and every
    /// refresh needs a proof made with that key.
    pub dpop_jkt: Option<String>,
    /// Binds the family to a client certificate (RFC 8705): its SHA-256
    /// thumbprint (`cert_thumbprint`). Access tokens carry
    /// `cnf["x5t#S256"]`, and every refresh needs that certificate.
    pub cert_thumbprint: Option<String>,
}

/// An access token and the refresh token that gets the next pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenPair {
    /// The signed JWT (`sub`, `scope`, `fid`, `iat`, `exp`, `jti` and the
    /// family's claims).
    pub access_token: String,
    /// The opaque refresh token (shown once; stored only as its SHA-256).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// When the access token expires (Unix seconds).
    pub expires_at: i64,
    /// When the refresh token expires (Unix seconds).
    pub refresh_expires_at: i64,
    /// The family both belong to.
    pub family_id: String,
    /// Always `Bearer` (the OAuth 2.0 token response's `token_type`).
    pub token_type: &'static str,
    /// The scopes of the access token.
    pub scopes: Vec<String>,
}

/// A refresh-token family as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenFamily {
    /// UUID.
    pub id: String,
    /// The subject of its access tokens.
    pub subject: String,
    /// The scopes of its access tokens.
    pub scopes: Vec<String>,
    /// `active`, `revoked` or `expired` (past its absolute lifetime, or not
    /// refreshed within its idle timeout).
    pub status: String,
    /// When it was started (Unix seconds).
    pub created_at: i64,
    /// Its absolute end (Unix seconds).
    pub expires_at: i64,
    /// When its last refresh token was issued (Unix seconds).
    pub refreshed_at: i64,
    /// When its live refresh token expires unless used (Unix seconds).
    pub idle_expires_at: i64,
    /// How many refreshes it has had.
    pub generation: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Why (`reuse_detected` when a spent refresh token came back).
    pub revoke_reason: Option<String>,
}
