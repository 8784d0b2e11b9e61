//! C ABI of irontoken. Everything here converts types and maps errors; all
//! behaviour is in the `irontoken` crate.
//!
//! Conventions (also in docs/reference/c-api.md):
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
// docs/reference/c-api.md): valid or NULL pointers, NUL-terminated strings, handles from
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

mod capability;
mod dpop;
mod jwt;
mod keys;
mod ratelimit;
mod refresh;
mod usage;

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
    /// Not a capability token (encoding, size, block count).
    CapabilityMalformed = 38,
    /// The capability token is sealed: no block can be appended.
    CapabilitySealed = 39,
    /// The token's `jti` was already accepted once.
    JwtReplayed = 40,
    /// A spent refresh token was presented again: its family is revoked.
    RefreshTokenReused = 41,
    /// Not a refresh token this store issued.
    RefreshTokenInvalid = 42,
    /// The refresh token or its family is past its lifetime.
    RefreshTokenExpired = 43,
    /// The refresh token's family was revoked.
    RefreshTokenRevoked = 44,
    /// The DPoP proof is not valid (the message says which check failed).
    DpopProofInvalid = 45,
    /// The DPoP proof lacks the server's current nonce.
    DpopNonceRequired = 46,
    /// The DPoP proof was accepted once already.
    DpopProofReplayed = 47,
    /// The access token is bound to another key than the proof's.
    DpopBindingMismatch = 48,
    /// The access token is bound to another client certificate, or none was presented.
    MtlsBindingMismatch = 49,
    /// The session is bound to another fingerprint than the one presented.
    SessionFingerprintMismatch = 50,
    /// The owner has as many live sessions as `max_concurrent` allows.
    SessionLimitExceeded = 51,
    /// The API key may not call the model the request names.
    ModelNotAllowed = 52,
    /// The request declares more tokens than the API key allows at once.
    RequestTooLarge = 53,
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
    /// The key may not call the model the request names (itk_key_verify_with).
    ModelNotAllowed = 9,
    /// The request declares more tokens than the key allows at once
    /// (itk_key_verify_with).
    RequestTooLarge = 10,
}

const ALL_STATUSES: [itk_status; 54] = [
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
    itk_status::CapabilityMalformed,
    itk_status::CapabilitySealed,
    itk_status::JwtReplayed,
    itk_status::RefreshTokenReused,
    itk_status::RefreshTokenInvalid,
    itk_status::RefreshTokenExpired,
    itk_status::RefreshTokenRevoked,
    itk_status::DpopProofInvalid,
    itk_status::DpopNonceRequired,
    itk_status::DpopProofReplayed,
    itk_status::DpopBindingMismatch,
    itk_status::MtlsBindingMismatch,
    itk_status::SessionFingerprintMismatch,
    itk_status::SessionLimitExceeded,
    itk_status::ModelNotAllowed,
    itk_status::RequestTooLarge,
];

const ALL_REASONS: [itk_verify_reason; 11] = [
    itk_verify_reason::Valid,
    itk_verify_reason::Malformed,
    itk_verify_reason::NotFound,
    itk_verify_reason::Disabled,
    itk_verify_reason::Revoked,
    itk_verify_reason::Expired,
    itk_verify_reason::InsufficientScope,
    itk_verify_reason::RateLimited,
    itk_verify_reason::UsageExceeded,
    itk_verify_reason::ModelNotAllowed,
    itk_verify_reason::RequestTooLarge,
];

/// The C status of an error kind: the enum member with the kind's stable
/// number (core's `ErrorKind::status`, the one table of numbers).
fn status_of(kind: ErrorKind) -> itk_status {
    ALL_STATUSES
        .get(kind.status() as usize)
        .copied()
        .unwrap_or(itk_status::Internal)
}

/// The C reason of a verify reason, by core's stable number.
fn reason_of(r: VerifyReason) -> itk_verify_reason {
    ALL_REASONS[r.number() as usize]
}

/// A static, NUL-terminated copy of each code: index = stable number.
fn c_codes(codes: impl Iterator<Item = &'static str>) -> Vec<CString> {
    codes.map(|c| CString::new(c).unwrap_or_default()).collect()
}

/// An open token manager (opaque). Create with `itk_manager_open`, free with `itk_manager_free`.
pub struct itk_manager {
    tm: TokenManager,
}

/// The last failed call on this thread: its status, message and the JWT
/// claim it was about (empty when none).
struct LastError {
    status: itk_status,
    message: CString,
    claim: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

fn set_last_error(status: itk_status, message: &str, claim: Option<&str>) {
    let last = LastError {
        status,
        message: c_text(message),
        claim: c_text(claim.unwrap_or("")),
    };
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(last));
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
            set_last_error(status, &e.to_string(), e.claim());
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
        Some(s) => serde_json::from_str(s)
            .map_err(|e| Error::invalid(format!("{name}: {}", without_values(&e.to_string())))),
    }
}

/// A serde message without the string values it quotes (`invalid type:
/// string "sk_live_..."`): a key put in the wrong field stays out of errors.
fn without_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + "string \"".len()..];
        // The value ends at the last quote before ", expected" (values may hold quotes).
        let end = after
            .find("\", expected")
            .or_else(|| after.rfind('"'))
            .unwrap_or(after.len());
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Options of the scheduled rotations (`itk_keys_rotate_due`,
/// `itk_signing_key_rotate_if_due`): `overlap_seconds` (default 0), `actor`.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct OverlapOptions {
    overlap_seconds: i64,
    actor: Option<String>,
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
    static CODES: std::sync::OnceLock<Vec<CString>> = std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| {
        c_codes(std::iter::once("OK").chain(ErrorKind::ALL.iter().map(|k| k.code())))
    });
    match codes.get(status as usize) {
        Some(c) => c.as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    }
}

/// The HTTP status a service answers with for a status number (core's
/// table, as the FastAPI and Node adapters): 200 for `ITK_STATUS_OK`, 400,
/// 401, 404, 409, 429, 503, and 500 for anything else, an unknown number too.
#[unsafe(no_mangle)]
pub extern "C" fn itk_http_status(status: u32) -> u16 {
    if status == 0 {
        return 200;
    }
    ErrorKind::ALL
        .iter()
        .find(|k| k.status() == status)
        .map_or(500, |k| k.http_status())
}

/// The stable code of a verify reason number, e.g. "REVOKED", or "UNKNOWN"
/// (static; do not free). Takes a plain number so any value is safe.
#[unsafe(no_mangle)]
pub extern "C" fn itk_verify_reason_code(reason: u32) -> *const c_char {
    static CODES: std::sync::OnceLock<Vec<CString>> = std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| c_codes(VerifyReason::ALL.iter().map(|r| r.code())));
    match codes.get(reason as usize) {
        Some(c) => c.as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    }
}

/// The status of the last failed call on this thread (`ITK_STATUS_OK` after a success).
#[unsafe(no_mangle)]
pub extern "C" fn itk_last_error_status() -> itk_status {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(itk_status::Ok, |l| l.status))
}

/// Copies the message of the last failed call on this thread into `buf`
/// (`len` bytes, always NUL-terminated when `len > 0`, truncated if needed)
/// and returns the full message length without the NUL, like `snprintf`.
/// Returns 0 and writes "" if the last call succeeded. `buf` may be NULL when `len` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_last_error_message(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded under the same contract.
    unsafe { copy_last(buf, len, |l| l.message.as_bytes()) }
}

/// Copies the JWT claim the last failed call on this thread was about
/// (`exp`, `aud`, a required claim...) into `buf`, as
/// `itk_last_error_message` copies the message; "" (and 0) when the error
/// was about no claim or the last call succeeded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_last_error_claim(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded under the same contract.
    unsafe { copy_last(buf, len, |l| l.claim.as_bytes()) }
}

/// Copies a part of the last error into `buf` (`len` bytes, NUL-terminated
/// when `len > 0`, truncated if needed); returns its full length.
///
/// # Safety
/// `buf` points at `len` writable bytes (or `len` is 0).
unsafe fn copy_last(buf: *mut c_char, len: usize, part: impl Fn(&LastError) -> &[u8]) -> usize {
    let r = catch_unwind(AssertUnwindSafe(|| {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            let text: &[u8] = e.as_ref().map_or(b"", &part);
            if !buf.is_null() && len > 0 {
                let n = text.len().min(len - 1);
                // SAFETY: the caller gives `len` writable bytes at `buf`.
                unsafe {
                    std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            text.len()
        })
    }));
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

/// Opens (creating and migrating if needed) the database at `path` — a
/// SQLite file, ":memory:", a `sqlite://` URL or a `postgresql://` URL —
/// and writes the new manager to `*out`.
///
/// `options_json` may be NULL or a JSON object with any of
/// `durability` ("full" | "normal"), `busy_timeout_ms`, `flush_interval_ms`,
/// `flush_threshold` (buffered entries that ask for an early flush, default
/// 4096, 1 to 16777216), `manual_clock_start` (Unix seconds; tests), `master_key` (base64 or hex,
/// at least 32 bytes; default: the IRONTOKEN_MASTER_KEY environment variable),
/// `rsa_key_bits` (2048 or 3072, for generated RS256 signing keys), `create`
/// (default true; false: a missing or empty file is
/// `ITK_STATUS_DATABASE_NOT_FOUND` instead of a new database),
/// `key_cache_size`, `page_cache_mib`, `mmap_mib`, `rate_limit_store`
/// ("store" (default), "local" or a redis:// URL), `rate_limit_fail_open`,
/// `rate_limit_timeout_ms`, `strict` (read key state from the database on every
/// verification), `storage_timeout_ms` (PostgreSQL: the most one call waits
/// on the server in all, default 5000), `max_staleness_ms` (PostgreSQL: how
/// long a cached key state is trusted without a live change channel,
/// default 1000), `verify_fail_open` (PostgreSQL: verify from a stale state
/// when the server cannot answer; default false).
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

/// Opens the database the environment variable `IRONTOKEN_DB` names (a
/// SQLite path or a postgresql:// URL), as `itk_manager_open` with
/// `options_json` (NULL or a JSON object); `IRONTOKEN_RATE_LIMIT_STORE` and
/// `IRONTOKEN_STORAGE_TIMEOUT_MS` fill `rate_limit_store` and
/// `storage_timeout_ms` when the options leave them out.
/// `ITK_STATUS_INVALID_ARGUMENT` when `IRONTOKEN_DB` is not set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_manager_open_env(
    options_json: *const c_char,
    out: *mut *mut itk_manager,
) -> itk_status {
    guard(|| {
        // SAFETY: a C string per the contract.
        let settings: OpenSettings = unsafe { json_arg(options_json, "options_json") }?;
        crate::out(out, "out")?;
        let (db, settings) = settings.with_env()?;
        let tm = TokenManager::open_with(&db, settings.into_options()?)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_quote_string_values() {
        for text in [
            r#"{"owner": "a", "scopes": "sk_live_SECRET\"quoted"}"#,
            r#"{"owner": "a", "expires_at": "sk_live_SECRET"}"#,
            r#"{"owner": 5, "key": 7, "display_prefix": {"x": "sk_live_SECRET"}}"#,
        ] {
            let e = serde_json::from_str::<irontoken::ImportKey>(text).unwrap_err();
            let msg = without_values(&e.to_string());
            assert!(!msg.contains("SECRET"), "{msg}");
            assert!(
                msg.contains("a string") || msg.contains("sequence"),
                "{msg}"
            );
        }
        assert_eq!(
            without_values("missing field `owner`"),
            "missing field `owner`"
        );
    }

    #[test]
    fn statuses_match_the_core_numbers() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(
                k.status() as usize,
                i + 1,
                "ErrorKind::ALL is in number order"
            );
        }
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
