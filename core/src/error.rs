//! The one error type of irontoken and its stable codes.
//!
//! Every failure carries an [`ErrorKind`]. Each kind has a stable string code
//! ([`ErrorKind::code`], e.g. `KEY_NOT_FOUND`) and a stable number
//! ([`ErrorKind::status`], used by the C ABI as `itk_status`). Numbers are
//! never reused: a retired kind keeps its number reserved.
//!
//! Messages never contain a secret, a full key or a full token.

use std::fmt;

/// What went wrong, with a stable code and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument was missing, too long, of the wrong shape or out of range.
    InvalidArgument,
    /// No API key with that id exists.
    KeyNotFound,
    /// The string is not an API key of our format (shape or checksum).
    KeyMalformed,
    /// The key exists but is disabled.
    KeyDisabled,
    /// The key was revoked; revocation is permanent.
    KeyRevoked,
    /// The key is past its expiry.
    KeyExpired,
    /// The operation conflicts with the current state (e.g. a key already rotated).
    Conflict,
    /// The database failed (I/O, corruption, constraint).
    Storage,
    /// The database stayed locked by another writer beyond the busy timeout.
    Busy,
    /// The database was written by a newer irontoken and cannot be opened.
    SchemaTooNew,
    /// A bug: a panic was caught or an invariant broke.
    Internal,
    /// Not a compact JWS/JWT: bad shape, base64, JSON (including duplicate
    /// keys) or over the size bound.
    JwtMalformed,
    /// The signature does not match.
    JwtBadSignature,
    /// `exp` has passed (beyond the leeway).
    JwtExpired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    JwtNotYetValid,
    /// The token's `alg` is `none`, not allowed by the policy, or does not fit the key.
    JwtAlgNotAllowed,
    /// `aud` does not match the expected audience.
    JwtInvalidAudience,
    /// `iss` does not match the expected issuer.
    JwtInvalidIssuer,
    /// `sub` does not match the expected subject.
    JwtInvalidSubject,
    /// A required claim is absent.
    JwtMissingClaim,
    /// A registered claim has the wrong JSON type.
    JwtInvalidClaim,
    /// No key in the keyring matches the token's `kid`.
    JwtKeyNotFound,
    /// The header uses a feature we refuse (`crit`, `b64: false`).
    JwtUnsupportedHeader,
    /// Key material is unusable: unparsable, of an unsupported type, or too weak.
    InvalidKeyMaterial,
    /// Managed signing keys need a master key and none was configured.
    MasterKeyRequired,
    /// No active managed signing key: generate one first.
    NoActiveSigningKey,
    /// No session with that id exists.
    SessionNotFound,
    /// The session is past its absolute or idle expiry.
    SessionExpired,
    /// The session was ended.
    SessionEnded,
    /// A rate limit refused the request; retry after the time given.
    RateLimited,
    /// A quota, credit balance or budget has not enough left.
    UsageExceeded,
    /// No record with that id (quota, reservation, budget, lease, agent token).
    NotFound,
    /// The agent token was revoked (a newer one was issued, or it was revoked by hand).
    AgentTokenRevoked,
    /// A remote JWKS could not be fetched (network, timeout, HTTP status,
    /// size bound, or no usable key in the answer) and no cached set may serve.
    JwksFetchFailed,
    /// The database file is damaged (SQLite's `quick_check` or a read found
    /// corruption, or it is not a SQLite database): nothing is written to it.
    DatabaseCorrupt,
    /// No irontoken database at the path, and creating one was not allowed
    /// (or the file there is empty: a new database is made only where no
    /// file exists).
    DatabaseNotFound,
    /// The master key does not open this database's signing keys (another
    /// process or an earlier run used a different one); nothing was written.
    MasterKeyMismatch,
    /// Not a capability token: bad encoding, over the size or block bound,
    /// or a block that does not read back.
    CapabilityMalformed,
    /// The capability token is sealed: no block can be appended.
    CapabilitySealed,
    /// The token's `jti` was already accepted once (a one-time token replayed).
    JwtReplayed,
    /// A spent refresh token was presented again: its whole family is
    /// revoked (reuse detection).
    RefreshTokenReused,
    /// Not a refresh token this store issued (malformed or unknown).
    RefreshTokenInvalid,
    /// The refresh token or its family is past its lifetime.
    RefreshTokenExpired,
    /// The refresh token's family was revoked.
    RefreshTokenRevoked,
    /// The DPoP proof is not valid: shape, typ, alg, key, signature, htm, htu,
    /// iat or ath (the message says which).
    DpopProofInvalid,
    /// The DPoP proof lacks the server's current nonce (answer with a new
    /// `DPoP-Nonce`).
    DpopNonceRequired,
    /// The DPoP proof's `jti` was accepted once already (a replayed proof).
    DpopProofReplayed,
    /// The access token is bound to another key than the proof's (`cnf.jkt`),
    /// or a bound token came without a proof.
    DpopBindingMismatch,
    /// The access token is bound to a client certificate (`cnf["x5t#S256"]`)
    /// other than the one presented, or none was presented.
    MtlsBindingMismatch,
    /// The session is bound to another fingerprint than the one presented.
    SessionFingerprintMismatch,
    /// The owner has as many live sessions as `max_concurrent` allows.
    SessionLimitExceeded,
    /// The API key may not call the model the request names.
    ModelNotAllowed,
    /// The request declares more tokens than the API key allows at once.
    RequestTooLarge,
}

impl ErrorKind {
    /// Every kind, in status-number order.
    pub const ALL: [ErrorKind; 53] = [
        ErrorKind::InvalidArgument,
        ErrorKind::KeyNotFound,
        ErrorKind::KeyMalformed,
        ErrorKind::KeyDisabled,
        ErrorKind::KeyRevoked,
        ErrorKind::KeyExpired,
        ErrorKind::Conflict,
        ErrorKind::Storage,
        ErrorKind::Busy,
        ErrorKind::SchemaTooNew,
        ErrorKind::Internal,
        ErrorKind::JwtMalformed,
        ErrorKind::JwtBadSignature,
        ErrorKind::JwtExpired,
        ErrorKind::JwtNotYetValid,
        ErrorKind::JwtAlgNotAllowed,
        ErrorKind::JwtInvalidAudience,
        ErrorKind::JwtInvalidIssuer,
        ErrorKind::JwtInvalidSubject,
        ErrorKind::JwtMissingClaim,
        ErrorKind::JwtInvalidClaim,
        ErrorKind::JwtKeyNotFound,
        ErrorKind::JwtUnsupportedHeader,
        ErrorKind::InvalidKeyMaterial,
        ErrorKind::MasterKeyRequired,
        ErrorKind::NoActiveSigningKey,
        ErrorKind::SessionNotFound,
        ErrorKind::SessionExpired,
        ErrorKind::SessionEnded,
        ErrorKind::RateLimited,
        ErrorKind::UsageExceeded,
        ErrorKind::NotFound,
        ErrorKind::AgentTokenRevoked,
        ErrorKind::JwksFetchFailed,
        ErrorKind::DatabaseCorrupt,
        ErrorKind::DatabaseNotFound,
        ErrorKind::MasterKeyMismatch,
        ErrorKind::CapabilityMalformed,
        ErrorKind::CapabilitySealed,
        ErrorKind::JwtReplayed,
        ErrorKind::RefreshTokenReused,
        ErrorKind::RefreshTokenInvalid,
        ErrorKind::RefreshTokenExpired,
        ErrorKind::RefreshTokenRevoked,
        ErrorKind::DpopProofInvalid,
        ErrorKind::DpopNonceRequired,
        ErrorKind::DpopProofReplayed,
        ErrorKind::DpopBindingMismatch,
        ErrorKind::MtlsBindingMismatch,
        ErrorKind::SessionFingerprintMismatch,
        ErrorKind::SessionLimitExceeded,
        ErrorKind::ModelNotAllowed,
        ErrorKind::RequestTooLarge,
    ];

    /// The stable string code, e.g. `"KEY_NOT_FOUND"`.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::KeyNotFound => "KEY_NOT_FOUND",
            ErrorKind::KeyMalformed => "KEY_MALFORMED",
            ErrorKind::KeyDisabled => "KEY_DISABLED",
            ErrorKind::KeyRevoked => "KEY_REVOKED",
            ErrorKind::KeyExpired => "KEY_EXPIRED",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::Storage => "STORAGE",
            ErrorKind::Busy => "BUSY",
            ErrorKind::SchemaTooNew => "SCHEMA_TOO_NEW",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::JwtMalformed => "JWT_MALFORMED",
            ErrorKind::JwtBadSignature => "JWT_BAD_SIGNATURE",
            ErrorKind::JwtExpired => "JWT_EXPIRED",
            ErrorKind::JwtNotYetValid => "JWT_NOT_YET_VALID",
            ErrorKind::JwtAlgNotAllowed => "JWT_ALG_NOT_ALLOWED",
            ErrorKind::JwtInvalidAudience => "JWT_INVALID_AUDIENCE",
            ErrorKind::JwtInvalidIssuer => "JWT_INVALID_ISSUER",
            ErrorKind::JwtInvalidSubject => "JWT_INVALID_SUBJECT",
            ErrorKind::JwtMissingClaim => "JWT_MISSING_CLAIM",
            ErrorKind::JwtInvalidClaim => "JWT_INVALID_CLAIM",
            ErrorKind::JwtKeyNotFound => "JWT_KEY_NOT_FOUND",
            ErrorKind::JwtUnsupportedHeader => "JWT_UNSUPPORTED_HEADER",
            ErrorKind::InvalidKeyMaterial => "INVALID_KEY_MATERIAL",
            ErrorKind::MasterKeyRequired => "MASTER_KEY_REQUIRED",
            ErrorKind::NoActiveSigningKey => "NO_ACTIVE_SIGNING_KEY",
            ErrorKind::SessionNotFound => "SESSION_NOT_FOUND",
            ErrorKind::SessionExpired => "SESSION_EXPIRED",
            ErrorKind::SessionEnded => "SESSION_ENDED",
            ErrorKind::RateLimited => "RATE_LIMITED",
            ErrorKind::UsageExceeded => "USAGE_EXCEEDED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::AgentTokenRevoked => "AGENT_TOKEN_REVOKED",
            ErrorKind::JwksFetchFailed => "JWKS_FETCH_FAILED",
            ErrorKind::DatabaseCorrupt => "DATABASE_CORRUPT",
            ErrorKind::DatabaseNotFound => "DATABASE_NOT_FOUND",
            ErrorKind::MasterKeyMismatch => "MASTER_KEY_MISMATCH",
            ErrorKind::CapabilityMalformed => "CAPABILITY_MALFORMED",
            ErrorKind::CapabilitySealed => "CAPABILITY_SEALED",
            ErrorKind::JwtReplayed => "JWT_REPLAYED",
            ErrorKind::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            ErrorKind::RefreshTokenInvalid => "REFRESH_TOKEN_INVALID",
            ErrorKind::RefreshTokenExpired => "REFRESH_TOKEN_EXPIRED",
            ErrorKind::RefreshTokenRevoked => "REFRESH_TOKEN_REVOKED",
            ErrorKind::DpopProofInvalid => "DPOP_PROOF_INVALID",
            ErrorKind::DpopNonceRequired => "DPOP_NONCE_REQUIRED",
            ErrorKind::DpopProofReplayed => "DPOP_PROOF_REPLAYED",
            ErrorKind::DpopBindingMismatch => "DPOP_BINDING_MISMATCH",
            ErrorKind::MtlsBindingMismatch => "MTLS_BINDING_MISMATCH",
            ErrorKind::SessionFingerprintMismatch => "SESSION_FINGERPRINT_MISMATCH",
            ErrorKind::SessionLimitExceeded => "SESSION_LIMIT_EXCEEDED",
            ErrorKind::ModelNotAllowed => "MODEL_NOT_ALLOWED",
            ErrorKind::RequestTooLarge => "REQUEST_TOO_LARGE",
        }
    }

    /// The stable number of this kind (0 is reserved for success).
    pub const fn status(self) -> u32 {
        match self {
            ErrorKind::InvalidArgument => 1,
            ErrorKind::KeyNotFound => 2,
            ErrorKind::KeyMalformed => 3,
            ErrorKind::KeyDisabled => 4,
            ErrorKind::KeyRevoked => 5,
            ErrorKind::KeyExpired => 6,
            ErrorKind::Conflict => 7,
            ErrorKind::Storage => 8,
            ErrorKind::Busy => 9,
            ErrorKind::SchemaTooNew => 10,
            ErrorKind::Internal => 11,
            ErrorKind::JwtMalformed => 12,
            ErrorKind::JwtBadSignature => 13,
            ErrorKind::JwtExpired => 14,
            ErrorKind::JwtNotYetValid => 15,
            ErrorKind::JwtAlgNotAllowed => 16,
            ErrorKind::JwtInvalidAudience => 17,
            ErrorKind::JwtInvalidIssuer => 18,
            ErrorKind::JwtInvalidSubject => 19,
            ErrorKind::JwtMissingClaim => 20,
            ErrorKind::JwtInvalidClaim => 21,
            ErrorKind::JwtKeyNotFound => 22,
            ErrorKind::JwtUnsupportedHeader => 23,
            ErrorKind::InvalidKeyMaterial => 24,
            ErrorKind::MasterKeyRequired => 25,
            ErrorKind::NoActiveSigningKey => 26,
            ErrorKind::SessionNotFound => 27,
            ErrorKind::SessionExpired => 28,
            ErrorKind::SessionEnded => 29,
            ErrorKind::RateLimited => 30,
            ErrorKind::UsageExceeded => 31,
            ErrorKind::NotFound => 32,
            ErrorKind::AgentTokenRevoked => 33,
            ErrorKind::JwksFetchFailed => 34,
            ErrorKind::DatabaseCorrupt => 35,
            ErrorKind::DatabaseNotFound => 36,
            ErrorKind::MasterKeyMismatch => 37,
            ErrorKind::CapabilityMalformed => 38,
            ErrorKind::CapabilitySealed => 39,
            ErrorKind::JwtReplayed => 40,
            ErrorKind::RefreshTokenReused => 41,
            ErrorKind::RefreshTokenInvalid => 42,
            ErrorKind::RefreshTokenExpired => 43,
            ErrorKind::RefreshTokenRevoked => 44,
            ErrorKind::DpopProofInvalid => 45,
            ErrorKind::DpopNonceRequired => 46,
            ErrorKind::DpopProofReplayed => 47,
            ErrorKind::DpopBindingMismatch => 48,
            ErrorKind::MtlsBindingMismatch => 49,
            ErrorKind::SessionFingerprintMismatch => 50,
            ErrorKind::SessionLimitExceeded => 51,
            ErrorKind::ModelNotAllowed => 52,
            ErrorKind::RequestTooLarge => 53,
        }
    }

    /// The HTTP status an application's route answers with for this kind
    /// (`irontoken::http`): 400 bad input, 401 a refused token, 404 not
    /// found, 409 a state conflict, 429 a limit, 503 the store did not
    /// answer, 500 anything else.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument
            | ErrorKind::KeyMalformed
            | ErrorKind::JwtMalformed
            | ErrorKind::CapabilityMalformed => 400,
            ErrorKind::JwtBadSignature
            | ErrorKind::JwtExpired
            | ErrorKind::JwtNotYetValid
            | ErrorKind::JwtAlgNotAllowed
            | ErrorKind::JwtInvalidAudience
            | ErrorKind::JwtInvalidIssuer
            | ErrorKind::JwtInvalidSubject
            | ErrorKind::JwtMissingClaim
            | ErrorKind::JwtInvalidClaim
            | ErrorKind::JwtKeyNotFound
            | ErrorKind::JwtUnsupportedHeader
            | ErrorKind::JwtReplayed
            | ErrorKind::RefreshTokenReused
            | ErrorKind::RefreshTokenInvalid
            | ErrorKind::RefreshTokenExpired
            | ErrorKind::RefreshTokenRevoked
            | ErrorKind::DpopProofInvalid
            | ErrorKind::DpopNonceRequired
            | ErrorKind::DpopProofReplayed
            | ErrorKind::DpopBindingMismatch
            | ErrorKind::MtlsBindingMismatch
            | ErrorKind::SessionFingerprintMismatch => 401,
            ErrorKind::KeyNotFound | ErrorKind::NotFound | ErrorKind::SessionNotFound => 404,
            ErrorKind::Conflict
            | ErrorKind::KeyRevoked
            | ErrorKind::KeyDisabled
            | ErrorKind::KeyExpired
            | ErrorKind::SessionExpired
            | ErrorKind::SessionEnded
            | ErrorKind::AgentTokenRevoked
            | ErrorKind::NoActiveSigningKey
            | ErrorKind::CapabilitySealed => 409,
            ErrorKind::RateLimited | ErrorKind::UsageExceeded | ErrorKind::SessionLimitExceeded => {
                429
            }
            ErrorKind::ModelNotAllowed => 403,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::Storage | ErrorKind::Busy | ErrorKind::JwksFetchFailed => 503,
            ErrorKind::SchemaTooNew
            | ErrorKind::Internal
            | ErrorKind::InvalidKeyMaterial
            | ErrorKind::MasterKeyRequired
            | ErrorKind::DatabaseCorrupt
            | ErrorKind::DatabaseNotFound
            | ErrorKind::MasterKeyMismatch => 500,
        }
    }

    /// The `jose` (Node.js) error code with the same meaning, if there is one:
    /// Node's JWT functions put it in `err.code`, with ours in `err.irontokenCode`.
    pub const fn jose_code(self) -> Option<&'static str> {
        match self {
            ErrorKind::JwtMalformed => Some("ERR_JWT_INVALID"),
            ErrorKind::JwtBadSignature => Some("ERR_JWS_SIGNATURE_VERIFICATION_FAILED"),
            ErrorKind::JwtExpired => Some("ERR_JWT_EXPIRED"),
            ErrorKind::JwtNotYetValid
            | ErrorKind::JwtInvalidAudience
            | ErrorKind::JwtInvalidIssuer
            | ErrorKind::JwtInvalidSubject
            | ErrorKind::JwtMissingClaim
            | ErrorKind::JwtInvalidClaim
            | ErrorKind::JwtReplayed => Some("ERR_JWT_CLAIM_VALIDATION_FAILED"),
            ErrorKind::JwtAlgNotAllowed => Some("ERR_JOSE_ALG_NOT_ALLOWED"),
            ErrorKind::JwtKeyNotFound => Some("ERR_JWKS_NO_MATCHING_KEY"),
            ErrorKind::JwtUnsupportedHeader => Some("ERR_JOSE_NOT_SUPPORTED"),
            ErrorKind::JwksFetchFailed => Some("ERR_JOSE_GENERIC"),
            _ => None,
        }
    }

    /// The kind with this string code, if any.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An irontoken error: a kind plus a human-readable message free of secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    message: String,
    /// The JWT claim the error is about (`exp`, `aud`, a required claim...).
    claim: Option<Box<str>>,
}

/// The result type used throughout irontoken.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message` (which must not contain secrets).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            claim: None,
        }))
    }

    /// This error, naming the JWT claim it is about (carried as data: the
    /// bindings hand it on as jose's `claim` and PyJWT's `.claim`).
    pub fn about_claim(mut self, claim: &str) -> Self {
        self.0.claim = Some(claim.into());
        self
    }

    /// The JWT claim the error is about, if it is about one.
    pub fn claim(&self) -> Option<&str> {
        self.0.claim.as_deref()
    }

    /// Shorthand for an [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The stable string code of the kind.
    pub fn code(&self) -> &'static str {
        self.0.kind.code()
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind.code(), self.0.message)
    }
}

impl std::error::Error for Error {}

/// Runs `f` and turns a panic inside it into an `INTERNAL` error: what every
/// binding does at its boundary, so no panic reaches a caller as anything
/// but irontoken's error (never a process abort or Python's PanicException).
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::Internal,
            "a bug in irontoken (panic); the call did nothing more",
        ))
    })
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::invalid(format!("invalid JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_numbers_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.status() as usize, i + 1);
            assert!(seen.insert(k.code()));
            assert_eq!(ErrorKind::from_code(k.code()), Some(*k));
        }
        assert_eq!(ErrorKind::from_code("NOPE"), None);
    }

    #[test]
    fn display_has_code_and_message() {
        let e = Error::new(ErrorKind::KeyNotFound, "no key with id abc");
        assert_eq!(e.to_string(), "KEY_NOT_FOUND: no key with id abc");
        assert_eq!(e.code(), "KEY_NOT_FOUND");
    }
}

#[cfg(test)]
mod vector_tests {
    use super::ErrorKind;

    #[test]
    fn codes_match_the_shared_vector() {
        let raw = include_str!("../../tests/vectors/error_codes.json");
        let doc: serde_json::Value = serde_json::from_str(raw).unwrap();
        let codes = doc["codes"].as_array().unwrap();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for c in codes {
            let kind = ErrorKind::from_code(c["code"].as_str().unwrap()).unwrap();
            assert_eq!(kind.status() as u64, c["number"].as_u64().unwrap());
        }
    }
}
