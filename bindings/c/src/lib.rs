//! C ABI of irontoken. Everything here converts types and maps errors; all
//! behaviour is in the `irontoken` crate.
//!
//! Conventions (also in README.md, "C API"):
//! - every fallible function returns an `itk_status`, `ITK_STATUS_OK` (0) on success;
//! - on failure, `itk_last_error_message` describes the error of the last
//!   failed call on this thread (a success clears it);
//! - out-params are written only on success;
//! - every `char *` the library returns is owned by the caller and freed with
//!   `itk_string_free` (which wipes it first: it may hold a key);
//! - `const char *` arguments are borrowed for the call only, must be
//!   NUL-terminated UTF-8; NULL or invalid UTF-8 gives `ITK_STATUS_INVALID_ARGUMENT`;
//! - an `itk_manager` may be used from many threads at once; free it once, last;
//! - a panic never crosses the boundary: it becomes `ITK_STATUS_INTERNAL`.
#![allow(non_camel_case_types)]
// The safety contract of every entry point is the one written above (and in
// the README): valid or NULL pointers, NUL-terminated strings, handles from
// this library. Repeating it on each function adds nothing.
#![allow(clippy::missing_safety_doc)]

use irontoken::{
    AuditFilter, Error, ErrorKind, KeyFilter, KeyUpdate, NewKey, OpenSettings, RotateOptions,
    TokenManager, VerifyReason,
};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use zeroize::Zeroize;

/// Result of every fallible call. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum itk_status {
    /// Success.
    Ok = 0,
    /// An argument was NULL, not UTF-8, malformed JSON, too long or out of range.
    InvalidArgument = 1,
    /// No API key with that id exists.
    KeyNotFound = 2,
    /// The string is not an API key of our format.
    KeyMalformed = 3,
    /// The key is disabled.
    KeyDisabled = 4,
    /// The key was revoked.
    KeyRevoked = 5,
    /// The key is past its expiry.
    KeyExpired = 6,
    /// The operation conflicts with the current state (e.g. key already rotated).
    Conflict = 7,
    /// The database failed.
    Storage = 8,
    /// The database stayed locked by another writer beyond the busy timeout.
    Busy = 9,
    /// The database was written by a newer irontoken.
    SchemaTooNew = 10,
    /// A bug in irontoken (a caught panic).
    Internal = 11,
    /// Not a compact JWS/JWT: shape, base64, JSON, duplicate members or size.
    JwtMalformed = 12,
    /// The signature does not match.
    JwtBadSignature = 13,
    /// `exp` has passed.
    JwtExpired = 14,
    /// `nbf` or `iat` is in the future.
    JwtNotYetValid = 15,
    /// `alg` is none, not allowed, or does not fit the key.
    JwtAlgNotAllowed = 16,
    /// `aud` does not match.
    JwtInvalidAudience = 17,
    /// `iss` does not match.
    JwtInvalidIssuer = 18,
    /// `sub` does not match.
    JwtInvalidSubject = 19,
    /// A required claim is absent.
    JwtMissingClaim = 20,
    /// A registered claim has the wrong JSON type.
    JwtInvalidClaim = 21,
    /// No key matches the token's `kid`.
    JwtKeyNotFound = 22,
    /// The header uses `crit` or `b64: false`.
    JwtUnsupportedHeader = 23,
    /// Key material is unparsable, unsupported or too weak.
    InvalidKeyMaterial = 24,
    /// Managed signing keys need a master key and none was configured.
    MasterKeyRequired = 25,
    /// No active managed signing key.
    NoActiveSigningKey = 26,
    /// No session with that id.
    SessionNotFound = 27,
    /// The session is past its absolute or idle expiry.
    SessionExpired = 28,
    /// The session was ended.
    SessionEnded = 29,
    /// A rate limit refused the request.
    RateLimited = 30,
    /// A quota, credit balance or budget has not enough left.
    UsageExceeded = 31,
    /// No quota, reservation, budget, lease or agent token with that id.
    NotFound = 32,
    /// The agent token was revoked (or replaced).
    AgentTokenRevoked = 33,
    /// A remote JWKS could not be fetched and no cached set may serve.
    JwksFetchFailed = 34,
    /// The database file is damaged; nothing is written to it.
    DatabaseCorrupt = 35,
    /// No irontoken database at the path (and `create` was false).
    DatabaseNotFound = 36,
    /// The master key does not open this database's signing keys.
    MasterKeyMismatch = 37,
}

/// Answer of `itk_key_verify`. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum itk_verify_reason {
    /// The key is good.
    Valid = 0,
    /// Not of our format or bad checksum; no database work was done.
    Malformed = 1,
    /// Well-formed but unknown.
    NotFound = 2,
    /// The key is disabled.
    Disabled = 3,
    /// The key was revoked.
    Revoked = 4,
    /// The key is past its expiry.
    Expired = 5,
    /// The key lacks a required scope.
    InsufficientScope = 6,
    /// A rate limit of the key refused the request (itk_key_verify_with).
    RateLimited = 7,
    /// A quota of the key is exhausted (itk_key_verify_with).
    UsageExceeded = 8,
}

const ALL_STATUSES: [itk_status; 38] = [
    itk_status::Ok,
    itk_status::InvalidArgument,
    itk_status::KeyNotFound,
    itk_status::KeyMalformed,
    itk_status::KeyDisabled,
    itk_status::KeyRevoked,
    itk_status::KeyExpired,
    itk_status::Conflict,
    itk_status::Storage,
    itk_status::Busy,
    itk_status::SchemaTooNew,
    itk_status::Internal,
    itk_status::JwtMalformed,
    itk_status::JwtBadSignature,
    itk_status::JwtExpired,
    itk_status::JwtNotYetValid,
    itk_status::JwtAlgNotAllowed,
    itk_status::JwtInvalidAudience,
    itk_status::JwtInvalidIssuer,
    itk_status::JwtInvalidSubject,
    itk_status::JwtMissingClaim,
    itk_status::JwtInvalidClaim,
    itk_status::JwtKeyNotFound,
    itk_status::JwtUnsupportedHeader,
    itk_status::InvalidKeyMaterial,
    itk_status::MasterKeyRequired,
    itk_status::NoActiveSigningKey,
    itk_status::SessionNotFound,
    itk_status::SessionExpired,
    itk_status::SessionEnded,
    itk_status::RateLimited,
    itk_status::UsageExceeded,
    itk_status::NotFound,
    itk_status::AgentTokenRevoked,
    itk_status::JwksFetchFailed,
    itk_status::DatabaseCorrupt,
    itk_status::DatabaseNotFound,
    itk_status::MasterKeyMismatch,
];

const ALL_REASONS: [itk_verify_reason; 9] = [
    itk_verify_reason::Valid,
    itk_verify_reason::Malformed,
    itk_verify_reason::NotFound,
    itk_verify_reason::Disabled,
    itk_verify_reason::Revoked,
    itk_verify_reason::Expired,
    itk_verify_reason::InsufficientScope,
    itk_verify_reason::RateLimited,
    itk_verify_reason::UsageExceeded,
];

fn status_of(kind: ErrorKind) -> itk_status {
    match kind {
        ErrorKind::InvalidArgument => itk_status::InvalidArgument,
        ErrorKind::KeyNotFound => itk_status::KeyNotFound,
        ErrorKind::KeyMalformed => itk_status::KeyMalformed,
        ErrorKind::KeyDisabled => itk_status::KeyDisabled,
        ErrorKind::KeyRevoked => itk_status::KeyRevoked,
        ErrorKind::KeyExpired => itk_status::KeyExpired,
        ErrorKind::Conflict => itk_status::Conflict,
        ErrorKind::Storage => itk_status::Storage,
        ErrorKind::Busy => itk_status::Busy,
        ErrorKind::SchemaTooNew => itk_status::SchemaTooNew,
        ErrorKind::JwtMalformed => itk_status::JwtMalformed,
        ErrorKind::JwtBadSignature => itk_status::JwtBadSignature,
        ErrorKind::JwtExpired => itk_status::JwtExpired,
        ErrorKind::JwtNotYetValid => itk_status::JwtNotYetValid,
        ErrorKind::JwtAlgNotAllowed => itk_status::JwtAlgNotAllowed,
        ErrorKind::JwtInvalidAudience => itk_status::JwtInvalidAudience,
        ErrorKind::JwtInvalidIssuer => itk_status::JwtInvalidIssuer,
        ErrorKind::JwtInvalidSubject => itk_status::JwtInvalidSubject,
        ErrorKind::JwtMissingClaim => itk_status::JwtMissingClaim,
        ErrorKind::JwtInvalidClaim => itk_status::JwtInvalidClaim,
        ErrorKind::JwtKeyNotFound => itk_status::JwtKeyNotFound,
        ErrorKind::JwtUnsupportedHeader => itk_status::JwtUnsupportedHeader,
        ErrorKind::InvalidKeyMaterial => itk_status::InvalidKeyMaterial,
        ErrorKind::MasterKeyRequired => itk_status::MasterKeyRequired,
        ErrorKind::NoActiveSigningKey => itk_status::NoActiveSigningKey,
        ErrorKind::SessionNotFound => itk_status::SessionNotFound,
        ErrorKind::SessionExpired => itk_status::SessionExpired,
        ErrorKind::SessionEnded => itk_status::SessionEnded,
        ErrorKind::RateLimited => itk_status::RateLimited,
        ErrorKind::UsageExceeded => itk_status::UsageExceeded,
        ErrorKind::NotFound => itk_status::NotFound,
        ErrorKind::AgentTokenRevoked => itk_status::AgentTokenRevoked,
        ErrorKind::JwksFetchFailed => itk_status::JwksFetchFailed,
        ErrorKind::DatabaseCorrupt => itk_status::DatabaseCorrupt,
        ErrorKind::DatabaseNotFound => itk_status::DatabaseNotFound,
        ErrorKind::MasterKeyMismatch => itk_status::MasterKeyMismatch,
        _ => itk_status::Internal,
    }
}

fn reason_of(r: VerifyReason) -> itk_verify_reason {
    match r {
        VerifyReason::Valid => itk_verify_reason::Valid,
        VerifyReason::Malformed => itk_verify_reason::Malformed,
        VerifyReason::NotFound => itk_verify_reason::NotFound,
        VerifyReason::Disabled => itk_verify_reason::Disabled,
        VerifyReason::Revoked => itk_verify_reason::Revoked,
        VerifyReason::Expired => itk_verify_reason::Expired,
        VerifyReason::InsufficientScope => itk_verify_reason::InsufficientScope,
        VerifyReason::RateLimited => itk_verify_reason::RateLimited,
        VerifyReason::UsageExceeded => itk_verify_reason::UsageExceeded,
    }
}

/// An open token manager (opaque). Create with `itk_manager_open`, free with `itk_manager_free`.
pub struct itk_manager {
    tm: TokenManager,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<(itk_status, CString)>> = const { RefCell::new(None) };
}

fn set_last_error(status: itk_status, message: &str) {
    let msg = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some((status, msg)));
}

/// The panic boundary around every entry point: runs `f`, maps its error or
/// panic to a status and records the message for `itk_last_error_message`.
fn guard(f: impl FnOnce() -> Result<(), Error>) -> itk_status {
    match irontoken::catch_panic(f) {
        Ok(()) => {
            LAST_ERROR.with(|e| *e.borrow_mut() = None);
            itk_status::Ok
        }
        Err(e) => {
            let status = status_of(e.kind());
            set_last_error(status, &e.to_string());
            status
        }
    }
}

/// Borrows a required C string as UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Error::invalid(format!("{name} is not valid UTF-8")))
}

/// Borrows an optional C string (NULL = absent) as UTF-8.
///
/// # Safety
/// As [`arg`].
unsafe fn opt_arg<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { arg(p, name) }.map(Some)
    }
}

/// Parses optional JSON (NULL = defaults) into `T`.
///
/// # Safety
/// As [`arg`].
unsafe fn json_arg<T: serde::de::DeserializeOwned + Default>(
    p: *const c_char,
    name: &str,
) -> Result<T, Error> {
    // SAFETY: forwarded contract.
    match unsafe { opt_arg(p, name) }? {
        None => Ok(T::default()),
        Some(s) => serde_json::from_str(s).map_err(|e| Error::invalid(format!("{name}: {e}"))),
    }
}

fn out<T>(p: *mut T, name: &str) -> Result<(), Error> {
    if p.is_null() {
        Err(Error::invalid(format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

/// Moves `value` to the heap and hands it to the caller through `*out`.
fn give<T>(out: *mut *mut T, value: T) -> Result<(), Error> {
    crate::out(out, "out")?;
    // SAFETY: `out` checked non-NULL.
    unsafe { *out = Box::into_raw(Box::new(value)) };
    Ok(())
}

/// Borrows a handle the caller got from `give` and has not freed.
fn handle<'a, T>(p: *const T, name: &str) -> Result<&'a T, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    // SAFETY: a non-NULL handle came from `give` and is not yet freed.
    Ok(unsafe { &*p })
}

/// Frees a handle (or buffer) from `give` / `Box::into_raw`; NULL is ignored;
/// a panic in a destructor stays on this side.
///
/// # Safety
/// `p` is NULL or came from `Box::into_raw` in this library, freed once.
unsafe fn release<T: ?Sized>(p: *mut T) {
    if p.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(p) });
    }));
}

fn manager<'a>(m: *const itk_manager) -> Result<&'a TokenManager, Error> {
    Ok(&handle(m, "manager")?.tm)
}

fn c_string(s: String) -> *mut c_char {
    // JSON and keys never contain NUL; the fallback keeps us panic-free.
    CString::new(s).unwrap_or_default().into_raw()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

/// Writes `s` to `*p` if `p` is not NULL.
fn write_opt(p: *mut *mut c_char, s: impl FnOnce() -> Result<String, Error>) -> Result<(), Error> {
    if !p.is_null() {
        let s = s()?;
        // SAFETY: non-NULL out-param supplied by the caller.
        unsafe { *p = c_string(s) };
    }
    Ok(())
}

/// The library version, a static string (do not free).
#[unsafe(no_mangle)]
pub extern "C" fn itk_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The stable code of a status number, e.g. "KEY_NOT_FOUND", or "UNKNOWN"
/// (static; do not free). Takes a plain number so any value is safe.
#[unsafe(no_mangle)]
pub extern "C" fn itk_status_code(status: u32) -> *const c_char {
    let s: &'static str = match ALL_STATUSES.get(status as usize).copied() {
        None => "UNKNOWN\0",
        Some(itk_status::Ok) => "OK\0",
        Some(itk_status::InvalidArgument) => "INVALID_ARGUMENT\0",
        Some(itk_status::KeyNotFound) => "KEY_NOT_FOUND\0",
        Some(itk_status::KeyMalformed) => "KEY_MALFORMED\0",
        Some(itk_status::KeyDisabled) => "KEY_DISABLED\0",
        Some(itk_status::KeyRevoked) => "KEY_REVOKED\0",
        Some(itk_status::KeyExpired) => "KEY_EXPIRED\0",
        Some(itk_status::Conflict) => "CONFLICT\0",
        Some(itk_status::Storage) => "STORAGE\0",
        Some(itk_status::Busy) => "BUSY\0",
        Some(itk_status::SchemaTooNew) => "SCHEMA_TOO_NEW\0",
        Some(itk_status::Internal) => "INTERNAL\0",
        Some(itk_status::JwtMalformed) => "JWT_MALFORMED\0",
        Some(itk_status::JwtBadSignature) => "JWT_BAD_SIGNATURE\0",
        Some(itk_status::JwtExpired) => "JWT_EXPIRED\0",
        Some(itk_status::JwtNotYetValid) => "JWT_NOT_YET_VALID\0",
        Some(itk_status::JwtAlgNotAllowed) => "JWT_ALG_NOT_ALLOWED\0",
        Some(itk_status::JwtInvalidAudience) => "JWT_INVALID_AUDIENCE\0",
        Some(itk_status::JwtInvalidIssuer) => "JWT_INVALID_ISSUER\0",
        Some(itk_status::JwtInvalidSubject) => "JWT_INVALID_SUBJECT\0",
        Some(itk_status::JwtMissingClaim) => "JWT_MISSING_CLAIM\0",
        Some(itk_status::JwtInvalidClaim) => "JWT_INVALID_CLAIM\0",
        Some(itk_status::JwtKeyNotFound) => "JWT_KEY_NOT_FOUND\0",
        Some(itk_status::JwtUnsupportedHeader) => "JWT_UNSUPPORTED_HEADER\0",
        Some(itk_status::InvalidKeyMaterial) => "INVALID_KEY_MATERIAL\0",
        Some(itk_status::MasterKeyRequired) => "MASTER_KEY_REQUIRED\0",
        Some(itk_status::NoActiveSigningKey) => "NO_ACTIVE_SIGNING_KEY\0",
        Some(itk_status::SessionNotFound) => "SESSION_NOT_FOUND\0",
        Some(itk_status::SessionExpired) => "SESSION_EXPIRED\0",
        Some(itk_status::SessionEnded) => "SESSION_ENDED\0",
        Some(itk_status::RateLimited) => "RATE_LIMITED\0",
        Some(itk_status::UsageExceeded) => "USAGE_EXCEEDED\0",
        Some(itk_status::NotFound) => "NOT_FOUND\0",
        Some(itk_status::AgentTokenRevoked) => "AGENT_TOKEN_REVOKED\0",
        Some(itk_status::JwksFetchFailed) => "JWKS_FETCH_FAILED\0",
        Some(itk_status::DatabaseCorrupt) => "DATABASE_CORRUPT\0",
        Some(itk_status::DatabaseNotFound) => "DATABASE_NOT_FOUND\0",
        Some(itk_status::MasterKeyMismatch) => "MASTER_KEY_MISMATCH\0",
    };
    s.as_ptr().cast()
}

/// The stable code of a verify reason number, e.g. "REVOKED", or "UNKNOWN"
/// (static; do not free). Takes a plain number so any value is safe.
#[unsafe(no_mangle)]
pub extern "C" fn itk_verify_reason_code(reason: u32) -> *const c_char {
    let s: &'static str = match ALL_REASONS.get(reason as usize).copied() {
        None => "UNKNOWN\0",
        Some(itk_verify_reason::Valid) => "VALID\0",
        Some(itk_verify_reason::Malformed) => "MALFORMED\0",
        Some(itk_verify_reason::NotFound) => "NOT_FOUND\0",
        Some(itk_verify_reason::Disabled) => "DISABLED\0",
        Some(itk_verify_reason::Revoked) => "REVOKED\0",
        Some(itk_verify_reason::Expired) => "EXPIRED\0",
        Some(itk_verify_reason::InsufficientScope) => "INSUFFICIENT_SCOPE\0",
        Some(itk_verify_reason::RateLimited) => "RATE_LIMITED\0",
        Some(itk_verify_reason::UsageExceeded) => "USAGE_EXCEEDED\0",
    };
    s.as_ptr().cast()
}

/// The status of the last failed call on this thread (`ITK_STATUS_OK` after a success).
#[unsafe(no_mangle)]
pub extern "C" fn itk_last_error_status() -> itk_status {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(itk_status::Ok, |(s, _)| *s))
}

/// Copies the message of the last failed call on this thread into `buf`
/// (`len` bytes, always NUL-terminated when `len > 0`, truncated if needed)
/// and returns the full message length without the NUL, like `snprintf`.
/// Returns 0 and writes "" if the last call succeeded. `buf` may be NULL when `len` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_last_error_message(buf: *mut c_char, len: usize) -> usize {
    let r = catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            let msg: &[u8] = e.as_ref().map_or(b"", |(_, m)| m.as_bytes());
            if !buf.is_null() && len > 0 {
                let n = msg.len().min(len - 1);
                // SAFETY: the caller gives `len` writable bytes at `buf`.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            msg.len()
        })
    });
    r.unwrap_or(0)
}

/// Frees a string returned by irontoken, wiping its bytes first. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `s` came from CString::into_raw in this library and is freed once.
        let mut bytes = unsafe { CString::from_raw(s) }.into_bytes_with_nul();
        bytes.zeroize();
    }));
}

/// Opens (creating and migrating if needed) the database at `path` (or
/// ":memory:") and writes the new manager to `*out`.
///
/// `options_json` may be NULL or a JSON object with any of
/// `durability` ("full" | "normal"), `busy_timeout_ms`, `flush_interval_ms`,
/// `manual_clock_start` (Unix seconds; tests), `master_key` (base64 or hex,
/// at least 32 bytes; default: the IRONTOKEN_MASTER_KEY environment variable),
/// `rsa_key_bits` (2048 or 3072, for generated RS256 signing keys), `create`
/// (default true; false: a missing or empty file is
/// `ITK_STATUS_DATABASE_NOT_FOUND` instead of a new database).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_manager_open(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut itk_manager,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let path = unsafe { arg(path, "path") }?;
        // SAFETY: as above.
        let settings: OpenSettings = unsafe { json_arg(options_json, "options_json") }?;
        crate::out(out, "out")?;
        let tm = TokenManager::open_with(path, settings.into_options()?)?;
        give(out, itk_manager { tm })
    })
}

/// Flushes buffered counters, stops the background writer and frees the
/// manager. NULL is ignored. No other thread may use it during or after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_manager_free(m: *mut itk_manager) {
    // SAFETY: `m` is NULL or came from itk_manager_open, freed once.
    unsafe { release(m) }
}

/// Writes buffered usage counters and failed-verification audit entries now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_manager_flush(m: *const itk_manager) -> itk_status {
    guard(|| manager(m)?.flush())
}

/// Writes the manager's counters, in the Prometheus text exposition format,
/// to `*out_text`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_manager_metrics(
    m: *const itk_manager,
    out_text: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_text, "out_text")?;
        let text = tm.metrics();
        write_opt(out_text, || Ok(text))
    })
}

/// Moves a manual clock (see `manual_clock_start`) by `seconds`;
/// `ITK_STATUS_INVALID_ARGUMENT` on the system clock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_manager_advance_clock(
    m: *const itk_manager,
    seconds: i64,
) -> itk_status {
    guard(|| manager(m)?.advance_clock(seconds).map(|_| ()))
}

/// Creates a key. `request_json` is an object with `owner` (required),
/// `name`, `description`, `scopes` (array), `metadata` (object),
/// `expires_at` or `expires_in` (seconds), `prefix`, `actor`.
/// Writes the plaintext key (shown only now) to `*out_key` and the record
/// JSON to `*out_record_json` (may be NULL if not wanted). Free both with `itk_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_create(
    m: *const itk_manager,
    request_json: *const c_char,
    out_key: *mut *mut c_char,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let req: NewKey = unsafe { json_arg(request_json, "request_json") }?;
        out(out_key, "out_key")?;
        let created = tm.create_key(&req)?;
        let record = to_json(&created.record)?;
        // SAFETY: out_key checked non-NULL.
        unsafe { *out_key = c_string(created.key.to_string()) };
        write_opt(out_record_json, || Ok(record))
    })
}

/// Creates many keys in one transaction: all or none (the first bad
/// request's index is in the message); at most 100 000 per call.
/// `requests_json` is an array of `itk_key_create` request objects. Writes a
/// JSON array of `{"key": plaintext, "record": {...}}` in request order to
/// `*out_created_json` (free with `itk_string_free`): it holds the
/// plaintexts, shown only now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_create_many(
    m: *const itk_manager,
    requests_json: *const c_char,
    out_created_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let text = unsafe { arg(requests_json, "requests_json") }?;
        let reqs: Vec<NewKey> = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("requests_json: {e}")))?;
        out(out_created_json, "out_created_json")?;
        let created = tm.create_keys(&reqs)?;
        let items: Vec<serde_json::Value> = created
            .iter()
            .map(|c| serde_json::json!({"key": &*c.key, "record": &c.record}))
            .collect();
        let text = to_json(&items)?;
        // SAFETY: out_created_json checked non-NULL.
        unsafe { *out_created_json = c_string(text) };
        Ok(())
    })
}

/// Most strings an array argument may hold.
const MAX_ARRAY: usize = 1024;

/// `n` C strings at `p` (NULL only when `n` is 0): the pointer and the count
/// are checked before anything is allocated or read.
///
/// # Safety
/// `p` points at `n` readable string pointers, each a C string.
unsafe fn str_array<'a>(
    p: *const *const c_char,
    n: usize,
    what: &str,
) -> Result<Vec<&'a str>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL but its count is {n}"
        )));
    }
    if n > MAX_ARRAY {
        return Err(Error::invalid(format!(
            "{what} holds {n} entries, at most {MAX_ARRAY} are accepted"
        )));
    }
    (0..n)
        .map(|i| {
            // SAFETY: i < n, per the contract; each entry is a C string.
            unsafe { arg(*p.add(i), what) }
        })
        .collect()
}

/// Verifies `key`. A refused key is a success with `*out_reason` != VALID.
/// `required_scopes` is an array of `n_scopes` strings (NULL when 0), all of
/// which the key must hold. If `out_record_json` is not NULL it receives the
/// key's record JSON when the key was found, else NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_verify(
    m: *const itk_manager,
    key: *const c_char,
    required_scopes: *const *const c_char,
    n_scopes: usize,
    out_reason: *mut itk_verify_reason,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_reason, "out_reason")?;
        // SAFETY: C string per the contract.
        let key = unsafe { arg(key, "key") }?;
        // SAFETY: the caller gives `n_scopes` string pointers.
        let scopes = unsafe { str_array(required_scopes, n_scopes, "required_scopes") }?;
        let v = tm.verify_key(key, &scopes)?;
        let record = v.record.as_ref().map(to_json).transpose()?;
        // SAFETY: checked non-NULL.
        unsafe { *out_reason = reason_of(v.reason) };
        if !out_record_json.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_record_json = record.map_or(std::ptr::null_mut(), c_string) };
        }
        Ok(())
    })
}

/// Writes the record JSON of key `id` to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let id = unsafe { arg(id, "id") }?;
        out(out_json, "out_json")?;
        let r = to_json(&tm.get_key(id)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Lists keys. `filter_json` may be NULL or an object with `owner`, `status`
/// ("active" | "disabled" | "revoked" | "expired"), `limit` (1-1000, default
/// 100), `cursor`. Writes `{"items": [...], "next_cursor": "..." | null}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_list(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, filter_json, out_json, |tm, f: &KeyFilter| {
            tm.list_keys(f)
        })
    }
}

/// Updates key `id` with `update_json`: any of `name`, `description`,
/// `scopes`, `metadata`, `expires_at` (null clears), `actor`. Writes the new
/// record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_update(
    m: *const itk_manager,
    id: *const c_char,
    update_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let id = unsafe { arg(id, "id") }?;
        // SAFETY: as above.
        let u: KeyUpdate = unsafe { json_arg(update_json, "update_json") }?;
        let r = to_json(&tm.update_key(id, &u)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Runs a listing: parses the optional filter JSON, writes the page as JSON.
///
/// # Safety
/// As the entry points that call it.
unsafe fn list_call<F: serde::de::DeserializeOwned + Default, T: serde::Serialize>(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
    list: impl FnOnce(&TokenManager, &F) -> Result<T, Error>,
) -> itk_status {
    // SAFETY: C string per the contract.
    let f = unsafe { json_arg::<F>(filter_json, "filter_json") };
    json_answer(m, out_json, |tm| {
        out(out_json, "out_json")?;
        list(tm, &f?)
    })
}

/// Runs a state change that takes a key id and an optional actor.
///
/// # Safety
/// As the entry points that call it.
unsafe fn actor_change(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
    op: fn(&TokenManager, &str, Option<&str>) -> Result<irontoken::KeyRecord, Error>,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, actor) = unsafe { (arg(id, "id")?, opt_arg(actor, "actor")?) };
        let r = to_json(&op(tm, id, actor)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Disables key `id`. `actor` may be NULL. Writes the record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_disable(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe { actor_change(m, id, actor, out_json, TokenManager::disable_key) }
}

/// Enables key `id` again. `actor` may be NULL. Writes the record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_enable(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe { actor_change(m, id, actor, out_json, TokenManager::enable_key) }
}

/// Revokes key `id` permanently. `reason` and `actor` may be NULL. Writes the
/// record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_revoke(
    m: *const itk_manager,
    id: *const c_char,
    reason: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, reason, actor) = unsafe {
            (
                arg(id, "id")?,
                opt_arg(reason, "reason")?,
                opt_arg(actor, "actor")?,
            )
        };
        let r = to_json(&tm.revoke_key(id, reason, actor)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Rotates key `id`. `options_json` may be NULL or an object with
/// `overlap_seconds` (default 0: the old key is revoked now), `expires_at`,
/// `actor`. Writes the new plaintext key to `*out_key` and the new record
/// JSON to `*out_record_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_rotate(
    m: *const itk_manager,
    id: *const c_char,
    options_json: *const c_char,
    out_key: *mut *mut c_char,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let id = unsafe { arg(id, "id") }?;
        // SAFETY: as above.
        let o: RotateOptions = unsafe { json_arg(options_json, "options_json") }?;
        out(out_key, "out_key")?;
        let created = tm.rotate_key(id, &o)?;
        let record = to_json(&created.record)?;
        // SAFETY: out_key checked non-NULL.
        unsafe { *out_key = c_string(created.key.to_string()) };
        write_opt(out_record_json, || Ok(record))
    })
}

/// Deletes the record of key `id` (its audit history stays). `actor` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_delete(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, actor) = unsafe { (arg(id, "id")?, opt_arg(actor, "actor")?) };
        tm.delete_key(id, actor)
    })
}

/// Lists the audit trail, newest first. `filter_json` may be NULL or an
/// object with `key_id`, `action`, `actor`, `outcome`, `since`, `until`,
/// `limit`, `cursor`. Writes `{"items": [...], "next_cursor": ...}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_audit_list(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, filter_json, out_json, |tm, f: &AuditFilter| {
            tm.list_audit(f)
        })
    }
}

/// Generates a managed signing key of `alg` ("RS256", "ES256", "EdDSA",
/// "HS256") and makes it active. `actor` may be NULL. Writes the key's JSON
/// (kid, alg, status, ...) to `*out_json` (may be NULL). Needs a master key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_create(
    m: *const itk_manager,
    alg: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (alg, actor) = unsafe { (arg(alg, "alg")?, opt_arg(actor, "actor")?) };
        let k = to_json(&tm.create_signing_key(irontoken::jwt::Alg::from_name(alg)?, actor)?)?;
        write_opt(out_json, || Ok(k))
    })
}

/// Makes a new signing key active. `options_json` may be NULL or an object
/// with `alg`, `overlap_seconds` (default 0), `actor`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_rotate(
    m: *const itk_manager,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct O {
        alg: Option<String>,
        overlap_seconds: i64,
        actor: Option<String>,
    }
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let o: O = unsafe { json_arg(options_json, "options_json") }?;
        let alg = o
            .alg
            .as_deref()
            .map(irontoken::jwt::Alg::from_name)
            .transpose()?;
        let k = to_json(&tm.rotate_signing_key(alg, o.overlap_seconds, o.actor.as_deref())?)?;
        write_opt(out_json, || Ok(k))
    })
}

/// Writes `[{...}, ...]`, every managed signing key (no private material), to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_list(
    m: *const itk_manager,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_json, "out_json")?;
        let keys = to_json(&tm.list_signing_keys()?)?;
        write_opt(out_json, || Ok(keys))
    })
}

/// Writes the public JWKS of the keys that verify now to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks(m: *const itk_manager, out_json: *mut *mut c_char) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_json, "out_json")?;
        let jwks = to_json(&tm.jwks()?)?;
        write_opt(out_json, || Ok(jwks))
    })
}

/// Signs `claims_json` with the active managed key; `ttl_seconds` <= 0 means
/// the default (900). Writes the token to `*out_token`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_issue(
    m: *const itk_manager,
    claims_json: *const c_char,
    ttl_seconds: i64,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let claims = unsafe { arg(claims_json, "claims_json") }?;
        out(out_token, "out_token")?;
        let claims = irontoken::jwt::object_from_json(claims, "claims_json")?;
        let t = tm.issue_jwt(&claims, (ttl_seconds > 0).then_some(ttl_seconds))?;
        write_opt(out_token, || Ok(t))
    })
}

/// Verifies a token issued by this manager's keys under `policy_json` (as
/// for `itk_jwt_verifier_new`). Writes `{"header": ..., "claims": ...}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verify_issued(
    m: *const itk_manager,
    token: *const c_char,
    policy_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (token, policy) = unsafe { (arg(token, "token")?, arg(policy_json, "policy_json")?) };
        out(out_json, "out_json")?;
        let d = tm.verify_jwt(
            token,
            &irontoken::jwt::PolicySettings::policy_from_json(policy)?,
        )?;
        let json = to_json(&serde_json::json!({"header": d.header, "claims": d.claims}))?;
        write_opt(out_json, || Ok(json))
    })
}

/// Exchanges a valid API key for an access token. `options_json` may be NULL
/// or an object with `required_scopes` (array) and `ttl_seconds`. Writes
/// `{"token", "expires_at", "key_id", "owner", "scopes"}` to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_api_key_exchange(
    m: *const itk_manager,
    api_key: *const c_char,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct O {
        required_scopes: Vec<String>,
        ttl_seconds: Option<i64>,
    }
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let key = unsafe { arg(api_key, "api_key") }?;
        // SAFETY: as above.
        let o: O = unsafe { json_arg(options_json, "options_json") }?;
        out(out_json, "out_json")?;
        let scopes: Vec<&str> = o.required_scopes.iter().map(String::as_str).collect();
        let at = to_json(&tm.exchange_api_key(key, &scopes, o.ttl_seconds)?)?;
        write_opt(out_json, || Ok(at))
    })
}

/// A key (or keyring) and a verification policy, parsed once (opaque).
/// Create with `itk_jwt_verifier_new`, free with `itk_jwt_verifier_free`.
pub struct itk_jwt_verifier {
    v: irontoken::jwt::Verifier,
}

fn new_verifier(
    keys: irontoken::jwt::Keyring,
    policy_json: &str,
    out: *mut *mut itk_jwt_verifier,
) -> Result<(), Error> {
    let policy = irontoken::jwt::PolicySettings::policy_from_json(policy_json)?;
    give(
        out,
        itk_jwt_verifier {
            v: irontoken::jwt::Verifier::new(keys, policy)?,
        },
    )
}

/// Parses `key` (a JWKS or JWK JSON text, a PEM public key or certificate
/// (anywhere in the text), an OpenSSH public key line, or an HMAC secret as
/// text; judged by content, see `itk_jwt_verifier_new_key`) and `policy_json` (`algorithms` required; optional
/// `leeway`, `issuer`, `audience` (array), `subject`, `required` (array),
/// `require_exp`, `require_sub`, `verify_exp`, `verify_nbf`, `verify_iat`,
/// `max_token_bytes`) into a verifier written to `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_new(
    key: *const c_char,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let (key, policy) = unsafe { (arg(key, "key")?, arg(policy_json, "policy_json")?) };
        crate::out(out, "out")?;
        new_verifier(irontoken::jwt::Keyring::from_text(key)?, policy, out)
    })
}

/// `len` bytes at `p` (NULL only with `len` 0), checked before any use.
///
/// # Safety
/// `p` points at `len` readable bytes that outlive the returned slice.
unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what} length is out of range")));
    }
    // SAFETY: non-NULL, length in range, readable per the contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Like `itk_jwt_verifier_new` with a binary HMAC secret of `len` bytes (at
/// least 32). Material that is a key or certificate in any form (PEM, DER,
/// JWK, OpenSSH) is refused with `ITK_STATUS_INVALID_KEY_MATERIAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_new_hmac(
    secret: *const u8,
    len: usize,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        verifier_from_bytes(secret, len, "secret", policy_json, out, |b| {
            Ok(irontoken::jwt::Keyring::single(
                irontoken::jwt::VerifyingKey::hmac(b)?,
            ))
        })
    }
}

/// A verifier from `len` bytes at `key`, loaded by `load`, and policy JSON.
///
/// # Safety
/// `key` points at `len` readable bytes; `policy_json` is a C string.
unsafe fn verifier_from_bytes(
    key: *const u8,
    len: usize,
    what: &str,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
    load: impl FnOnce(&[u8]) -> Result<irontoken::jwt::Keyring, Error>,
) -> itk_status {
    guard(|| {
        // SAFETY: the caller gives `len` readable bytes at `key`.
        let bytes = unsafe { bytes_arg(key, len, what) }?;
        // SAFETY: C string per the contract.
        let policy = unsafe { arg(policy_json, "policy_json") }?;
        crate::out(out, "out")?;
        new_verifier(load(bytes)?, policy, out)
    })
}

/// Like `itk_jwt_verifier_new` with key material of `len` bytes in any form,
/// judged by its content: PEM (anywhere in the bytes), DER (SPKI, PKCS#1,
/// certificate), JWK/JWKS JSON, an OpenSSH public key, or else an HMAC
/// secret. Asymmetric material is never used as an HMAC secret.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_new_key(
    key: *const u8,
    len: usize,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        verifier_from_bytes(key, len, "key", policy_json, out, |b| {
            irontoken::jwt::Keyring::from_bytes(b)
        })
    }
}

/// `*now`, or the system clock when `now` is NULL.
///
/// # Safety
/// `now` is NULL or points at a readable int64.
unsafe fn now_arg(now: *const i64) -> i64 {
    if now.is_null() {
        irontoken::Clock::now(&irontoken::SystemClock)
    } else {
        // SAFETY: non-NULL pointer to an int64 given by the caller.
        unsafe { *now }
    }
}

/// Writes a verified JWT as `{"header": {...}, "claims": {...}}`.
fn write_decoded(out_json: *mut *mut c_char, d: irontoken::jwt::Decoded) -> Result<(), Error> {
    let json = to_json(&serde_json::json!({"header": d.header, "claims": d.claims}))?;
    write_opt(out_json, || Ok(json))
}

/// Frees a verifier. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_free(v: *mut itk_jwt_verifier) {
    // SAFETY: `v` is NULL or came from itk_jwt_verifier_new*, freed once.
    unsafe { release(v) }
}

/// Verifies a JWT. `now` points at the time to check against (Unix seconds)
/// or is NULL for the system clock. On success writes
/// `{"header": {...}, "claims": {...}}` to `*out_json`; a refused token is an
/// error status (`ITK_STATUS_JWT_*`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_decode(
    v: *const itk_jwt_verifier,
    token: *const c_char,
    now: *const i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let v = &handle(v, "verifier")?.v;
        // SAFETY: C string per the contract.
        let token = unsafe { arg(token, "token") }?;
        out(out_json, "out_json")?;
        // SAFETY: `now` is NULL or points at an int64, per the contract.
        let d = v.decode_at(token, unsafe { now_arg(now) })?;
        write_decoded(out_json, d)
    })
}

/// Verifies a compact JWS (signature and header policy only; the payload can
/// be anything, e.g. a webhook body). On success writes the header JSON to
/// `*out_header_json` (may be NULL), the payload to `*out_payload` and its
/// length to `*out_len`; free the payload with `itk_bytes_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_verify_jws(
    v: *const itk_jwt_verifier,
    token: *const c_char,
    out_header_json: *mut *mut c_char,
    out_payload: *mut *mut u8,
    out_len: *mut usize,
) -> itk_status {
    guard(|| {
        let v = &handle(v, "verifier")?.v;
        // SAFETY: C string per the contract.
        let token = unsafe { arg(token, "token") }?;
        out(out_payload, "out_payload")?;
        out(out_len, "out_len")?;
        let d = v.verify_jws(token)?;
        let header = to_json(&d.header)?;
        write_opt(out_header_json, || Ok(header))?;
        let len = d.payload.len();
        let ptr = Box::into_raw(d.payload.into_boxed_slice()).cast::<u8>();
        // SAFETY: both out-params checked non-NULL.
        unsafe {
            *out_payload = ptr;
            *out_len = len;
        }
        Ok(())
    })
}

/// Frees a byte buffer returned by irontoken (`len` as returned). NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_bytes_free(p: *mut u8, len: usize) {
    // SAFETY: `p`/`len` are NULL or a boxed slice of this library, freed once.
    unsafe { release(std::ptr::slice_from_raw_parts_mut(p, len)) }
}

/// Parses a signing key given as text and names its algorithm and `kid`.
///
/// # Safety
/// C strings per the contract.
unsafe fn signer_from(
    key: *const c_char,
    alg: *const c_char,
    kid: *const c_char,
) -> Result<irontoken::jwt::Signer, Error> {
    // SAFETY: forwarded contract.
    let (key, alg, kid) = unsafe { (arg(key, "key")?, arg(alg, "alg")?, opt_arg(kid, "kid")?) };
    irontoken::jwt::Signer::named(irontoken::jwt::SigningKey::from_text(key)?, alg, kid)
}

/// Signs `claims_json` (a JSON object) with `key` (a PEM private key or an
/// HMAC secret as text) and `alg` (e.g. "RS256"). `header_json` (extra header
/// parameters) and `kid` may be NULL. Writes the token to `*out_token`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_encode(
    claims_json: *const c_char,
    key: *const c_char,
    alg: *const c_char,
    header_json: *const c_char,
    kid: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let signer = unsafe { signer_from(key, alg, kid) }?;
        // SAFETY: as above.
        unsafe { sign_into(&signer, claims_json, header_json, out_token) }
    })
}

/// Signs JSON claims (and optional header JSON) and writes the token.
///
/// # Safety
/// C strings per the contract.
unsafe fn sign_into(
    signer: &irontoken::jwt::Signer,
    claims_json: *const c_char,
    header_json: *const c_char,
    out_token: *mut *mut c_char,
) -> Result<(), Error> {
    // SAFETY: forwarded contract.
    let (claims, header) = unsafe {
        (
            arg(claims_json, "claims_json")?,
            opt_arg(header_json, "header_json")?,
        )
    };
    out(out_token, "out_token")?;
    let token = signer.sign_json(claims, header)?;
    write_opt(out_token, || Ok(token))
}

/// A remote JWKS with its cache (opaque): fetched over HTTPS (http:// only
/// to loopback unless `allow_http`), cached, refetched for an unknown `kid`
/// at most once per cooldown. Create with `itk_jwks_remote_new`, free with
/// `itk_jwks_remote_free`; safe to share between threads.
pub struct itk_jwks_remote {
    r: irontoken::jwt::RemoteJwks,
}

/// A remote JWKS at `url`; `options_json` may be NULL (defaults) or an
/// object with `timeout_ms` [5000], `max_bytes` [524288], `cache_max_age_ms`
/// [600000], `cooldown_ms` [30000], `stale_max_ms` [3600000], `allow_http`
/// [false], `headers` (object). Nothing is fetched until first use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_new(
    url: *const c_char,
    options_json: *const c_char,
    out: *mut *mut itk_jwks_remote,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let (url, options) = unsafe { (arg(url, "url")?, opt_arg(options_json, "options_json")?) };
        crate::out(out, "out")?;
        let opts = irontoken::jwt::RemoteJwksSettings::options_from_json(options.unwrap_or(""))?;
        let r = irontoken::jwt::RemoteJwks::new(url, opts)?;
        give(out, itk_jwks_remote { r })
    })
}

/// Verifies a JWT against the remote set under `policy_json` (as for
/// `itk_jwt_verifier_new`); `now` is NULL for the system clock. May block
/// on the network up to the timeout. On success writes
/// `{"header": {...}, "claims": {...}}` to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_decode(
    r: *const itk_jwks_remote,
    token: *const c_char,
    policy_json: *const c_char,
    now: *const i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let r = &handle(r, "remote")?.r;
        // SAFETY: C strings per the contract.
        let (token, policy) = unsafe { (arg(token, "token")?, arg(policy_json, "policy_json")?) };
        out(out_json, "out_json")?;
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy)?;
        // SAFETY: `now` is NULL or points at an int64, per the contract.
        let d = r.decode(token, &policy, unsafe { now_arg(now) })?;
        write_decoded(out_json, d)
    })
}

/// Fetches the set now; writes its JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_reload(
    r: *const itk_jwks_remote,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let r = &handle(r, "remote")?.r;
        r.refetch()?;
        let raw = r.raw()?.to_string();
        write_opt(out_json, || Ok(raw))
    })
}

/// How many times the set was fetched (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_fetch_count(r: *const itk_jwks_remote) -> u64 {
    handle(r, "remote").map(|h| h.r.fetch_count()).unwrap_or(0)
}

/// Frees a remote JWKS. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_free(r: *mut itk_jwks_remote) {
    // SAFETY: `r` is NULL or came from itk_jwks_remote_new, freed once.
    unsafe { release(r) }
}

/// A signing key and algorithm, parsed once (opaque). Create with
/// `itk_jwt_signer_new`, free with `itk_jwt_signer_free`.
pub struct itk_jwt_signer {
    s: irontoken::jwt::Signer,
}

/// Parses `key` (a PEM private key or an HMAC secret as text) for `alg`;
/// `kid` may be NULL. Writes the signer to `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_new(
    key: *const c_char,
    alg: *const c_char,
    kid: *const c_char,
    out: *mut *mut itk_jwt_signer,
) -> itk_status {
    guard(|| {
        crate::out(out, "out")?;
        // SAFETY: C strings per the contract.
        let s = unsafe { signer_from(key, alg, kid) }?;
        give(out, itk_jwt_signer { s })
    })
}

/// Signs `claims_json` (a JSON object; `header_json` may be NULL) into `*out_token`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_sign(
    s: *const itk_jwt_signer,
    claims_json: *const c_char,
    header_json: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let s = &handle(s, "signer")?.s;
        // SAFETY: C strings per the contract.
        unsafe { sign_into(s, claims_json, header_json, out_token) }
    })
}

/// Like `itk_jwt_signer_new` with key material of `len` bytes in any form,
/// judged by content: a private key in PEM or DER (PKCS#1, PKCS#8, SEC1), or
/// else an HMAC secret. Public keys and certificates are refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_new_key(
    key: *const u8,
    len: usize,
    alg: *const c_char,
    kid: *const c_char,
    out: *mut *mut itk_jwt_signer,
) -> itk_status {
    guard(|| {
        crate::out(out, "out")?;
        // SAFETY: the caller gives `len` readable bytes at `key`.
        let bytes = unsafe { bytes_arg(key, len, "key") }?;
        // SAFETY: C strings per the contract.
        let (alg, kid) = unsafe { (arg(alg, "alg")?, opt_arg(kid, "kid")?) };
        let s = irontoken::jwt::Signer::named(
            irontoken::jwt::SigningKey::from_bytes(bytes)?,
            alg,
            kid,
        )?;
        give(out, itk_jwt_signer { s })
    })
}

/// Frees a signer. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_free(s: *mut itk_jwt_signer) {
    // SAFETY: `s` is NULL or came from itk_jwt_signer_new, freed once.
    unsafe { release(s) }
}

/// A rate limiter (opaque): GCRA buckets per key and named limit, in this
/// process (`itk_ratelimiter_new`: not shared across processes) or on a
/// Redis server (`itk_ratelimiter_open`: shared by every process naming
/// it). Free with `itk_ratelimiter_free`.
pub struct itk_ratelimiter {
    rl: irontoken::SharedLimiter,
}

/// An in-process limiter keeping about `max_buckets` buckets before
/// evicting full ones.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_new(
    max_buckets: usize,
    out: *mut *mut itk_ratelimiter,
) -> itk_status {
    guard(|| {
        let rl = irontoken::SharedLimiter::open(
            &irontoken::RateLimitStore::Local,
            max_buckets.max(1),
            std::time::Duration::from_secs(1),
            false,
        )?;
        give(out, itk_ratelimiter { rl })
    })
}

/// Where `itk_ratelimiter_open` keeps the buckets.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimiterOptions {
    store: Option<String>,
    #[serde(default)]
    fail_open: bool,
    timeout_ms: Option<u64>,
    max_buckets: Option<usize>,
}

/// A limiter from `options_json`: `{"store": "local" | "redis://...",
/// "fail_open": false, "timeout_ms": 1000, "max_buckets": 1000000}` (every
/// field optional). With Redis, a check that cannot reach the server is
/// `ITK_STORAGE` within `timeout_ms`, or allowed when `fail_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_open(
    options_json: *const c_char,
    out: *mut *mut itk_ratelimiter,
) -> itk_status {
    guard(|| {
        // SAFETY: C string per the contract.
        let o: LimiterOptions = unsafe { json_req(options_json, "options_json") }?;
        let store = irontoken::RateLimitStore::parse(o.store.as_deref().unwrap_or("local"))?;
        let rl = irontoken::SharedLimiter::open(
            &store,
            o.max_buckets.unwrap_or(1_000_000).max(1),
            std::time::Duration::from_millis(o.timeout_ms.unwrap_or(1000)),
            o.fail_open,
        )?;
        give(out, itk_ratelimiter { rl })
    })
}

/// Frees a limiter. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_free(rl: *mut itk_ratelimiter) {
    // SAFETY: `rl` is NULL or came from itk_ratelimiter_new, freed once.
    unsafe { release(rl) }
}

/// Checks one request of `key` against `limits_json` (an array of
/// `{"name", "count", "period_ms", "burst"}`) at `now_ms` (in-process
/// limiters; a Redis limiter uses the server's clock and ignores it),
/// all-or-nothing; counts it only if `consume` and allowed. Writes the decision
/// `{"allowed", "retry_after_ms", "limits": [{"name", "remaining", "reset_ms"}]}`
/// to `*out_json` (may be NULL) and `allowed` to `*out_allowed` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_check(
    rl: *const itk_ratelimiter,
    key: *const c_char,
    limits_json: *const c_char,
    now_ms: i64,
    consume: bool,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let rl = &handle(rl, "limiter")?.rl;
        // SAFETY: C strings per the contract.
        let (key, limits) = unsafe { (arg(key, "key")?, arg(limits_json, "limits_json")?) };
        let limits = irontoken::ratelimit::Limit::list_from_json(limits)?;
        let now = rl.is_local().then_some(now_ms);
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) =
            rl.decide_into(key, &limits, now, consume, &mut verdicts)?;
        let d = irontoken::ratelimit::Decision {
            allowed,
            retry_after_ms,
            limits: limits
                .iter()
                .zip(&verdicts)
                .map(|(l, v)| irontoken::ratelimit::LimitState {
                    name: l.name.clone(),
                    remaining: v.remaining,
                    reset_ms: v.reset_ms,
                })
                .collect(),
        };
        let json = to_json(&d)?;
        if !out_allowed.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_allowed = d.allowed };
        }
        write_opt(out_json, || Ok(json))
    })
}

/// Checks one request of `key` against `limits_json` in the manager's
/// rate-limit store (option `rate_limit_store`: its database by default,
/// shared by every process), all-or-nothing; counts it only if `consume`
/// and allowed. Writes the decision as `itk_ratelimiter_check` does.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_rate_limit(
    m: *const itk_manager,
    key: *const c_char,
    limits_json: *const c_char,
    consume: bool,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (key, limits) = unsafe { (arg(key, "key"), arg(limits_json, "limits_json")) };
    json_answer(m, out_json, |tm| {
        let limits = irontoken::ratelimit::Limit::list_from_json(limits?)?;
        let d = tm.rate_limit_decide(key?, &limits, consume)?;
        if !out_allowed.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_allowed = d.allowed };
        }
        Ok(d)
    })
}

// ---------------------------------------------------------------------------
// Sessions, usage, quotas, agent budgets and signals. Requests and answers
// are JSON (the field names of the core types); NULL request JSON means "all
// defaults" where every field is optional.

/// Parses required JSON into `T`.
///
/// # Safety
/// As [`arg`].
unsafe fn json_req<T: serde::de::DeserializeOwned>(
    p: *const c_char,
    name: &str,
) -> Result<T, Error> {
    // SAFETY: forwarded contract.
    let s = unsafe { arg(p, name) }?;
    serde_json::from_str(s).map_err(|e| Error::invalid(format!("{name}: {e}")))
}

/// Runs `f` and writes its answer as JSON to `*out_json` (may be NULL).
fn json_answer<T: serde::Serialize>(
    m: *const itk_manager,
    out_json: *mut *mut c_char,
    f: impl FnOnce(&TokenManager) -> Result<T, Error>,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        let v = to_json(&f(tm)?)?;
        write_opt(out_json, || Ok(v))
    })
}

/// Writes a count to `*out` if not NULL.
fn write_count(out: *mut u64, n: u64) {
    if !out.is_null() {
        // SAFETY: non-NULL out-param supplied by the caller.
        unsafe { *out = n };
    }
}

/// Verifies `key` and, per `options_json` (NULL = none), checks
/// `required_scopes` (array), applies the key's rate limits
/// (`"rate_limit": true`) and consumes `"quota": {"requests", "tokens",
/// "cost_micros"}`. Writes the reason to `*out_reason` and the full answer
/// `{"valid", "reason", "record", "rate_limit", "quota"}` to `*out_json`
/// (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_verify_with(
    m: *const itk_manager,
    key: *const c_char,
    options_json: *const c_char,
    out_reason: *mut itk_verify_reason,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_reason, "out_reason")?;
        // SAFETY: C strings per the contract.
        let key = unsafe { arg(key, "key") }?;
        // SAFETY: as above.
        let o: irontoken::VerifyOptions = unsafe { json_arg(options_json, "options_json") }?;
        let v = tm.verify_key_with(key, &o)?;
        let json = to_json(&v)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_reason = reason_of(v.reason) };
        write_opt(out_json, || Ok(json))
    })
}

/// Creates a session from `request_json`: `owner` (required), `key_id`,
/// `session_type` (default "runtime"), `metadata`, `ttl_seconds`,
/// `idle_timeout_seconds`. Writes the session JSON (with its `id`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_create(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let req = unsafe { json_req::<irontoken::NewSession>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.create_session(&req?))
}

/// Writes the session `id` as JSON (its status computed now).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_session(id?))
}

/// Slides the idle expiry of a live session; writes the session JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_touch(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.touch_session(id?))
}

/// Changes `status` ("active" | "paused") and/or `metadata` of a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_update(
    m: *const itk_manager,
    id: *const c_char,
    update_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, u) = unsafe {
        (
            arg(id, "id"),
            json_req::<irontoken::SessionUpdate>(update_json, "update_json"),
        )
    };
    json_answer(m, out_json, |tm| tm.update_session(id?, &u?))
}

/// Ends a live session; `reason` may be NULL. Writes the session JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_end(
    m: *const itk_manager,
    id: *const c_char,
    reason: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, reason) = unsafe { (arg(id, "id"), opt_arg(reason, "reason")) };
    json_answer(m, out_json, |tm| tm.end_session(id?, reason?))
}

/// Lists sessions: `filter_json` may be NULL or have `owner`,
/// `session_type`, `status`, `key_id`, `limit`, `cursor`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_list(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(
            m,
            filter_json,
            out_json,
            |tm, f: &irontoken::SessionFilter| tm.list_sessions(f),
        )
    }
}

/// Marks expired live sessions as expired; writes how many to `*out_count` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_cleanup(
    m: *const itk_manager,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let n = manager(m)?.cleanup_expired_sessions()?;
        write_count(out_count, n);
        Ok(())
    })
}

/// Deletes sessions that ended at least `older_than_seconds` ago; writes
/// how many to `*out_count` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_purge(
    m: *const itk_manager,
    older_than_seconds: i64,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let n = manager(m)?.purge_sessions(older_than_seconds)?;
        write_count(out_count, n);
        Ok(())
    })
}

/// Records usage from `report_json`: `request_id`, `key_id` and/or
/// `session_id`, `model`, `model_version`, `prompt_tokens`,
/// `completion_tokens`, `cache_read_tokens`, `cache_write_tokens`,
/// `requests`, `cost_micros`, `metadata`, `at`. Writes
/// `{"request_id", "duplicate"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_usage_record(
    m: *const itk_manager,
    report_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let r = unsafe { json_req::<irontoken::UsageReport>(report_json, "report_json") };
    json_answer(m, out_json, |tm| tm.record_usage(&r?))
}

/// Usage totals: `query_json` may be NULL or have `since`, `until`,
/// `key_id`, `owner`, `model`, `session_id`, `agent_id`, `group_by`
/// (array of "key", "owner", "model", "session", "agent", "day"). Writes an array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_usage_summary(
    m: *const itk_manager,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, query_json, out_json, |tm, q: &irontoken::UsageQuery| {
            tm.usage_summary(q)
        })
    }
}

/// Raw usage records, a page at a time (`limit`, `cursor` plus the summary filters).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_usage_export(
    m: *const itk_manager,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, query_json, out_json, |tm, q: &irontoken::UsageQuery| {
            tm.export_usage(q)
        })
    }
}

/// Creates or changes a quota: `scope` ("key" | "owner"), `subject`,
/// `metric` ("requests" | "tokens" | "cost"), `period` ("day" | "month" |
/// "none"), `limit`, optional `refill_amount` + `refill_period`, `actor`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_set(
    m: *const itk_manager,
    spec_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let s = unsafe { json_req::<irontoken::QuotaSpec>(spec_json, "spec_json") };
    json_answer(m, out_json, |tm| tm.set_quota(&s?))
}

/// Removes a quota: `{"scope", "subject", "metric", "period", "actor"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_delete(
    m: *const itk_manager,
    selector_json: *const c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let s = unsafe { json_req::<irontoken::QuotaSelector>(selector_json, "selector_json") };
    json_answer(m, std::ptr::null_mut(), |tm| {
        let s = s?;
        tm.delete_quota(s.scope, &s.subject, s.metric, s.period, s.actor.as_deref())
    })
}

/// Lists the quotas of `scope` ("key" | "owner") `subject` as a JSON array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_list(
    m: *const itk_manager,
    scope: *const c_char,
    subject: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (scope, subject) = unsafe { (arg(scope, "scope"), arg(subject, "subject")) };
    json_answer(m, out_json, |tm| {
        let scope: irontoken::QuotaScope = serde_json::from_value(scope?.into())
            .map_err(|_| Error::invalid("scope must be \"key\" or \"owner\""))?;
        tm.list_quotas(scope, subject?)
    })
}

/// Adds credits to a balance: `{"scope", "subject", "metric", "amount"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_add_credits(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let s = unsafe { json_req::<irontoken::QuotaSelector>(request_json, "request_json") };
    json_answer(m, out_json, |tm| {
        let s = s?;
        tm.add_credits(s.scope, &s.subject, s.metric, s.amount)
    })
}

/// Checks and (if `consume`) consumes `amounts_json` (`{"requests",
/// "tokens", "cost_micros"}`) from every quota of key `key_id` and its
/// owner, all or nothing. Writes `{"allowed", "quotas", "denied_by"}` and
/// `allowed` to `*out_allowed` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_consume(
    m: *const itk_manager,
    key_id: *const c_char,
    amounts_json: *const c_char,
    consume: bool,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (key_id, a) = unsafe {
        (
            arg(key_id, "key_id"),
            json_req::<irontoken::Amounts>(amounts_json, "amounts_json"),
        )
    };
    json_answer(m, out_json, |tm| {
        let (key_id, a) = (key_id?, a?);
        let d = if consume {
            tm.consume_quota(key_id, &a)?
        } else {
            tm.peek_quota(key_id, &a)?
        };
        if !out_allowed.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_allowed = d.allowed };
        }
        Ok(d)
    })
}

/// Holds `amounts_json` for `ttl_seconds` (0 = default 300). Writes
/// `{"reservation": {...} | null, "decision": {...}}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_reserve(
    m: *const itk_manager,
    key_id: *const c_char,
    amounts_json: *const c_char,
    ttl_seconds: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (key_id, a) = unsafe {
        (
            arg(key_id, "key_id"),
            json_req::<irontoken::Amounts>(amounts_json, "amounts_json"),
        )
    };
    json_answer(m, out_json, |tm| {
        tm.reserve_quota(key_id?, &a?, (ttl_seconds != 0).then_some(ttl_seconds))
    })
}

/// Settles reservation `id` with the actual `amounts_json`, or releases it
/// when `amounts_json` is NULL. Writes the quotas after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_settle(
    m: *const itk_manager,
    id: *const c_char,
    amounts_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, a) = unsafe {
        (
            arg(id, "id"),
            opt_arg(amounts_json, "amounts_json").and_then(|s| {
                s.map(|s| {
                    serde_json::from_str::<irontoken::Amounts>(s)
                        .map_err(|e| Error::invalid(format!("amounts_json: {e}")))
                })
                .transpose()
            }),
        )
    };
    json_answer(m, out_json, |tm| match a? {
        Some(a) => tm.settle_reservation(id?, &a),
        None => tm.release_reservation(id?),
    })
}

/// Releases every quota hold past its TTL; writes how many to `*out_count` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_expire_reservations(
    m: *const itk_manager,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let n = manager(m)?.expire_reservations()?;
        write_count(out_count, n);
        Ok(())
    })
}

/// Creates a budget: `{"owner", "name", "limit_micros", "actor"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_budget_create(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let b = unsafe { json_req::<irontoken::NewBudget>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.create_budget(&b?))
}

/// Writes budget `id` (spent, leased, available) as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_budget_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_budget(id?))
}

/// Issues an agent token: `{"agent_id", "budget_id", "permissions",
/// "issuer", "ttl_seconds", "actor"}`; revokes the agent's previous token.
/// Writes `{"token", "claims", "replaced"}` (free it: it holds the token).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_agent_token_issue(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let r = unsafe { json_req::<irontoken::AgentTokenRequest>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.issue_agent_token(&r?))
}

/// Verifies an agent token; writes its claims JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_agent_token_verify(
    m: *const itk_manager,
    token: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let t = unsafe { arg(token, "token") };
    json_answer(m, out_json, |tm| tm.verify_agent_token(t?))
}

/// Revokes the live token of `agent_id` and its leases; `actor` may be NULL.
/// Writes the revoked `jti` as a JSON string to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_agent_token_revoke(
    m: *const itk_manager,
    agent_id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (a, actor) = unsafe { (arg(agent_id, "agent_id"), opt_arg(actor, "actor")) };
    json_answer(m, out_json, |tm| tm.revoke_agent_token(a?, actor?))
}

/// Takes a lease of `amount_micros` from the budget of `agent_token`
/// (`ttl_seconds` 0 = default 3600). Writes the lease JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_acquire(
    m: *const itk_manager,
    agent_token: *const c_char,
    amount_micros: u64,
    ttl_seconds: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let t = unsafe { arg(agent_token, "agent_token") };
    json_answer(m, out_json, |tm| {
        tm.acquire_lease(t?, amount_micros, (ttl_seconds != 0).then_some(ttl_seconds))
    })
}

/// Writes lease `id` (amount, spent, remaining, status) as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_lease(id?))
}

/// Makes `amount_micros` more available on lease `id` and renews it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_refresh(
    m: *const itk_manager,
    id: *const c_char,
    amount_micros: u64,
    ttl_seconds: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| {
        tm.refresh_lease(
            id?,
            amount_micros,
            (ttl_seconds != 0).then_some(ttl_seconds),
        )
    })
}

/// Ends lease `id` (its unspent part returns to the budget).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_release(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.release_lease(id?))
}

/// Reports usage spent on lease `id` (`report_json` as for
/// `itk_usage_record`, `request_id` required). Writes the lease JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_report(
    m: *const itk_manager,
    id: *const c_char,
    report_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, r) = unsafe {
        (
            arg(id, "id"),
            json_req::<irontoken::UsageReport>(report_json, "report_json"),
        )
    };
    json_answer(m, out_json, |tm| tm.report_lease_usage(id?, &r?))
}

/// Takes up to `max` pending signals (oldest first) as a JSON array of
/// `{"kind", "at", "key_id", "display_prefix", "detail"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_events_drain(
    m: *const itk_manager,
    max: usize,
    out_json: *mut *mut c_char,
) -> itk_status {
    json_answer(m, out_json, |tm| Ok(tm.drain_events(max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_core_numbers() {
        for k in ErrorKind::ALL {
            assert_eq!(status_of(k) as u32, k.status(), "{k}");
            // SAFETY: static NUL-terminated strings.
            let code = unsafe { CStr::from_ptr(itk_status_code(status_of(k) as u32)) };
            assert_eq!(code.to_str().unwrap(), k.code());
        }
        for r in VerifyReason::ALL {
            assert_eq!(reason_of(r) as u32, r.number());
            // SAFETY: static NUL-terminated strings.
            let code = unsafe { CStr::from_ptr(itk_verify_reason_code(reason_of(r) as u32)) };
            assert_eq!(code.to_str().unwrap(), r.code());
        }
        for (i, s) in ALL_STATUSES.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
        for (i, r) in ALL_REASONS.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        // SAFETY: static NUL-terminated string.
        let unknown = unsafe { CStr::from_ptr(itk_status_code(999)) };
        assert_eq!(unknown.to_str().unwrap(), "UNKNOWN");
    }
}
