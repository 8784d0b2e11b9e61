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
}

impl ErrorKind {
    /// Every kind, in status-number order.
    pub const ALL: [ErrorKind; 11] = [
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
}

/// The result type used throughout irontoken.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message` (which must not contain secrets).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
        }))
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

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        // SQLite messages carry table and column names, never bound values,
        // so they are safe to pass on.
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Error::new(ErrorKind::Busy, format!("database is locked: {e}"))
            }
            _ => Error::new(ErrorKind::Storage, format!("database error: {e}")),
        }
    }
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
