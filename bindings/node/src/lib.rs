//! Node.js binding of irontoken (napi-rs). Converts option bags and records,
//! and maps core errors to JS errors whose `code` is the stable code. No
//! token semantics live here.
#![allow(missing_docs)] // napi-derive generates undocumented items.

use irontoken::{
    AuditEvent, AuditFilter, Error as CoreError, KeyFilter, KeyRecord as CoreRecord, KeyStatus,
    KeyUpdate, NewKey, OpenSettings, RotateOptions, TokenManager as Core,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

mod jwt;
mod keys;
mod ratelimit;
mod usage;

pub use jwt::*;
pub use ratelimit::*;

/// The stable code of an error, used as the JS error's `code`.
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

fn err(e: CoreError) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

fn invalid(msg: &str) -> napi::Error<Code> {
    err(CoreError::invalid(msg))
}

fn object(v: Option<Value>, what: &str) -> Result<Option<Map<String, Value>>, Code> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(&format!("{what} must be a plain object"))),
    }
}

fn int(v: Option<f64>, what: &str) -> Result<Option<i64>, Code> {
    match v {
        None => Ok(None),
        Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
            Ok(Some(f as i64))
        }
        Some(_) => Err(invalid(&format!("{what} must be an integer"))),
    }
}

/// An optional integer option that cannot be negative, as the type the
/// core takes (whose own range check follows: `INVALID_ARGUMENT` with the
/// accepted range).
fn uint<T: TryFrom<i64>>(v: Option<f64>, what: &str) -> Result<Option<T>, Code> {
    int(v, what)?
        .map(|n| T::try_from(n).map_err(|_| invalid(&format!("{what} is negative or too large"))))
        .transpose()
}

fn limit(v: Option<f64>) -> Result<Option<u32>, Code> {
    match int(v, "limit")? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid("limit must be 1-1000")),
    }
}

/// The stored record of an API key (never the key itself).
#[napi(object)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: String,
    pub prefix: String,
    pub display_prefix: String,
    pub owner: String,
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
    pub metadata: Value,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    pub usage_count: i64,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<String>,
    pub status: String,
    #[napi(ts_type = "RateLimitSpec[]")]
    pub rate_limits: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<i64>,
}

impl From<CoreRecord> for KeyRecord {
    fn from(r: CoreRecord) -> Self {
        KeyRecord {
            status: r.status.as_str().to_string(),
            id: r.id,
            prefix: r.prefix,
            display_prefix: r.display_prefix,
            owner: r.owner,
            name: r.name,
            description: r.description,
            scopes: r.scopes,
            metadata: Value::Object(r.metadata),
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            usage_count: r.usage_count.min(i64::MAX as u64) as i64,
            enabled: r.enabled,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
            version: r.version,
            rotated_from: r.rotated_from,
            rotated_to: r.rotated_to,
            rate_limits: convert_keys(
                serde_json::to_value(&r.rate_limits).unwrap_or(Value::Array(Vec::new())),
                camel_case,
            ),
            rotation_period: r.rotation_period,
        }
    }
}

/// `verifyKey`'s answer as text: the reason, then, when the key was found, a
/// newline and the record as JSON. index.js builds its `VerifyResult` from
/// it and parses the record only when read: no native object per result, so
/// nothing waits for a finalizer (a loop of 2M synchronous verifications
/// held 1.7 GB when each result wrapped a native record).
fn verify_text(v: irontoken::Verification) -> irontoken::Result<String> {
    let internal = |e: String| CoreError::new(irontoken::ErrorKind::Internal, e);
    let mut out = Vec::with_capacity(if v.record.is_some() { 640 } else { 16 });
    out.extend_from_slice(v.reason.code().as_bytes());
    if let Some(r) = v.record {
        out.push(b'\n');
        serde_json::to_writer(&mut out, &KeyRecord::from(r))
            .map_err(|e| internal(e.to_string()))?;
    }
    String::from_utf8(out).map_err(|e| internal(e.to_string()))
}

/// One audit entry.
#[napi(object)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub key_id: Option<String>,
    pub display_prefix: Option<String>,
    pub actor: Option<String>,
    pub outcome: String,
    pub detail: Option<Value>,
}

impl From<AuditEvent> for AuditEntry {
    fn from(e: AuditEvent) -> Self {
        AuditEntry {
            id: e.id,
            at: e.at,
            action: e.action,
            key_id: e.key_id,
            display_prefix: e.display_prefix,
            actor: e.actor,
            outcome: e.outcome,
            detail: e.detail,
        }
    }
}

/// A page of keys.
#[napi(object)]
pub struct KeyPage {
    pub items: Vec<KeyRecord>,
    pub next_cursor: Option<String>,
}

/// A page of audit entries.
#[napi(object)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// Options of `new TokenManager(path, options)`.
#[napi(object)]
pub struct OpenOptions {
    pub durability: Option<String>,
    pub busy_timeout_ms: Option<f64>,
    pub flush_interval_ms: Option<f64>,
    /// Buffered entries that ask for an early flush (default 4096; a use
    /// counter weighs 1/8); eight times it, verification writes inline.
    pub flush_threshold: Option<f64>,
    pub manual_clock_start: Option<f64>,
    pub master_key: Option<String>,
    pub rsa_key_bits: Option<f64>,
    /// Create a missing database file (default true); false: DATABASE_NOT_FOUND.
    pub create: Option<bool>,
    /// Key records cached by verification (default 50000).
    pub key_cache_size: Option<f64>,
    /// SQLite page cache per connection, MiB (default 8).
    pub page_cache_mib: Option<f64>,
    /// Memory-mapped part of the database file, MiB (default 0 = off; see docs/guides/storage.md).
    pub mmap_mib: Option<f64>,
    /// Where rate-limit state lives: "store" (default), "local" or a redis:// URL.
    pub rate_limit_store: Option<String>,
    /// Allow requests when the rate-limit store fails (default false: STORAGE).
    pub rate_limit_fail_open: Option<bool>,
    /// Milliseconds a rate-limit check waits for Redis (default 1000).
    pub rate_limit_timeout_ms: Option<f64>,
    /// PostgreSQL: read key state from the database on every verification
    /// instead of the change-notified cache (default false).
    pub strict: Option<bool>,
    /// PostgreSQL: milliseconds one call may wait on the server in all (default 5000).
    pub storage_timeout_ms: Option<f64>,
    /// PostgreSQL: milliseconds a cached key state is trusted without a live change channel (default 1000).
    pub max_staleness_ms: Option<f64>,
    /// PostgreSQL: verify from a stale cached state when the server cannot answer (default false).
    pub verify_fail_open: Option<bool>,
    /// Seconds after which keys without their own rotation period are due (rotateDue).
    pub default_rotation_period: Option<f64>,
}

/// Options of `createKey`.
#[napi(object)]
pub struct CreateKeyOptions {
    pub owner: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub expires_at: Option<f64>,
    pub expires_in: Option<f64>,
    pub prefix: Option<String>,
    #[napi(ts_type = "RateLimitSpec[]")]
    pub rate_limits: Option<Value>,
    /// Seconds after creation at which the key is due for rotation (rotateDue).
    pub rotation_period: Option<f64>,
    pub actor: Option<String>,
}

/// What `importKey` takes: the key (`key`) or its SHA-256 (`keyHash`), and the record.
#[napi(object)]
pub struct ImportKeyOptions {
    pub key: Option<String>,
    pub key_hash: Option<String>,
    pub owner: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub expires_at: Option<f64>,
    pub display_prefix: Option<String>,
    #[napi(ts_type = "RateLimitSpec[]")]
    pub rate_limits: Option<Value>,
    /// The old system's id of the record the key comes from (one key per id, ever).
    pub legacy_id: Option<String>,
    pub actor: Option<String>,
}

/// What `liftTombstone` takes: the deleted key (`key`) or its SHA-256 (`keyHash`).
#[napi(object)]
pub struct LiftTombstoneOptions {
    pub key: Option<String>,
    pub key_hash: Option<String>,
    pub actor: Option<String>,
}

/// Options of `rotateDue`.
#[napi(object)]
pub struct RotateDueOptions {
    /// Seconds the old keys keep verifying (default 0: revoked at once).
    pub overlap_seconds: Option<f64>,
    pub actor: Option<String>,
}

fn rotate_due_of(o: Option<RotateDueOptions>) -> Result<(i64, Option<String>), Code> {
    match o {
        None => Ok((0, None)),
        Some(o) => Ok((
            int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
            o.actor,
        )),
    }
}

/// Options of `listKeys`.
#[napi(object)]
pub struct ListKeysOptions {
    pub owner: Option<String>,
    pub status: Option<String>,
    /// Only keys whose display prefix starts with this.
    pub prefix: Option<String>,
    pub limit: Option<f64>,
    pub cursor: Option<String>,
}

/// Options of `updateKey`.
#[napi(object)]
pub struct UpdateKeyOptions {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub expires_at: Option<f64>,
    pub clear_expiry: Option<bool>,
    #[napi(ts_type = "RateLimitSpec[]")]
    pub rate_limits: Option<Value>,
    pub rotation_period: Option<f64>,
    pub clear_rotation_period: Option<bool>,
    pub actor: Option<String>,
}

/// Options of `disableKey`, `enableKey`, `deleteKey`.
#[napi(object)]
pub struct ActorOptions {
    pub actor: Option<String>,
}

/// Options of `revokeKey`.
#[napi(object)]
pub struct RevokeOptions {
    pub reason: Option<String>,
    pub actor: Option<String>,
}

/// Options of `rotateKey`.
#[napi(object)]
pub struct RotateKeyOptions {
    pub overlap_seconds: Option<f64>,
    pub expires_at: Option<f64>,
    pub actor: Option<String>,
}

/// Options of `rotateSigningKey`.
#[napi(object)]
pub struct RotateSigningOptions {
    pub algorithm: Option<String>,
    pub overlap_seconds: Option<f64>,
    pub actor: Option<String>,
}

/// Options of `issueJwt`.
#[napi(object)]
pub struct IssueOptions {
    pub ttl_seconds: Option<f64>,
}

/// Options of `exchangeApiKey`.
#[napi(object)]
pub struct ExchangeOptions {
    pub required_scopes: Option<Vec<String>>,
    pub ttl_seconds: Option<f64>,
}

/// The requests of `createKeys`; a bad one is named by its index.
fn new_keys_of(requests: Vec<CreateKeyOptions>) -> Result<Vec<NewKey>, Code> {
    requests
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            new_key_of(o).map_err(|e| {
                let msg = format!("key {i}: {}", e.reason);
                napi::Error::new(e.status, msg)
            })
        })
        .collect()
}

fn new_key_of(o: CreateKeyOptions) -> Result<NewKey, Code> {
    Ok(NewKey {
        owner: o.owner,
        name: o.name.unwrap_or_default(),
        description: o.description.unwrap_or_default(),
        scopes: o.scopes.unwrap_or_default(),
        metadata: object(o.metadata, "metadata")?,
        expires_at: int(o.expires_at, "expiresAt")?,
        expires_in: int(o.expires_in, "expiresIn")?,
        prefix: o.prefix,
        rate_limits: o
            .rate_limits
            .map(|l| limits_of(l, "rateLimits"))
            .transpose()?
            .unwrap_or_default(),
        rotation_period: int(o.rotation_period, "rotationPeriod")?,
        actor: o.actor,
    })
}

fn import_of(o: ImportKeyOptions) -> Result<irontoken::ImportKey, Code> {
    Ok(irontoken::ImportKey {
        key: o.key,
        key_hash: o.key_hash,
        owner: o.owner,
        name: o.name.unwrap_or_default(),
        description: o.description.unwrap_or_default(),
        scopes: o.scopes.unwrap_or_default(),
        metadata: object(o.metadata, "metadata")?,
        expires_at: int(o.expires_at, "expiresAt")?,
        display_prefix: o.display_prefix,
        rate_limits: o
            .rate_limits
            .map(|l| limits_of(l, "rateLimits"))
            .transpose()?
            .unwrap_or_default(),
        legacy_id: o.legacy_id,
        actor: o.actor,
    })
}

fn imports_of(keys: Vec<ImportKeyOptions>) -> Result<Vec<irontoken::ImportKey>, Code> {
    keys.into_iter()
        .enumerate()
        .map(|(i, o)| {
            import_of(o).map_err(|e| {
                let msg = format!("key {i}: {}", e.reason);
                napi::Error::new(e.status, msg)
            })
        })
        .collect()
}

fn limits_of(v: Value, what: &str) -> Result<Vec<irontoken::ratelimit::Limit>, Code> {
    serde_json::from_value(convert_keys(v, snake_case))
        .map_err(|e| invalid(&format!("{what}: {}", camel_message(&e.to_string()))))
}

fn key_update_of(options: UpdateKeyOptions) -> Result<KeyUpdate, Code> {
    let expires_at = KeyUpdate::expiry_change(
        int(options.expires_at, "expiresAt")?,
        options.clear_expiry.unwrap_or(false),
    )
    .map_err(err)?;
    Ok(KeyUpdate {
        name: options.name,
        description: options.description,
        scopes: options.scopes,
        metadata: object(options.metadata, "metadata")?,
        expires_at,
        rate_limits: options
            .rate_limits
            .map(|l| limits_of(l, "rateLimits"))
            .transpose()?,
        rotation_period: KeyUpdate::change_of(
            int(options.rotation_period, "rotationPeriod")?,
            options.clear_rotation_period.unwrap_or(false),
            "rotation period",
        )
        .map_err(err)?,
        actor: options.actor,
    })
}

fn rotate_options_of(options: Option<RotateKeyOptions>) -> Result<RotateOptions, Code> {
    Ok(match options {
        None => RotateOptions::default(),
        Some(o) => RotateOptions {
            overlap_seconds: int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
            expires_at: int(o.expires_at, "expiresAt")?.map(Some),
            actor: o.actor,
        },
    })
}

fn alg_of(name: &str) -> Result<irontoken::jwt::Alg, Code> {
    irontoken::jwt::Alg::from_name(name).map_err(err)
}

/// Options of `listAudit`.
#[napi(object)]
pub struct ListAuditOptions {
    pub key_id: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub limit: Option<f64>,
    pub cursor: Option<String>,
}

/// A key just created or rotated. `key` is the plaintext, available only now;
/// it is a getter so that logging the object does not print it.
#[napi]
pub struct CreatedKey {
    key: String,
    record: CoreRecord,
}

#[napi]
impl CreatedKey {
    /// The plaintext key. Hand it to the user now; it cannot be read back later.
    #[napi(catch_unwind, getter)]
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// The stored record.
    #[napi(catch_unwind, getter)]
    pub fn record(&self) -> KeyRecord {
        self.record.clone().into()
    }
}

impl From<irontoken::CreatedKey> for CreatedKey {
    fn from(c: irontoken::CreatedKey) -> Self {
        CreatedKey {
            key: c.key.to_string(),
            record: c.record,
        }
    }
}

/// An answer written as JSON text (camelCase names), turned into JS values
/// by one `JSON.parse`: V8 builds the objects itself, several times faster
/// than one N-API call per property. Written where the answer is made (on
/// the libuv pool for the `*Async` methods).
pub struct Json(String);

impl TypeName for Json {
    fn type_name() -> &'static str {
        "Object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Json {
    /// `JSON.parse` of the text in `env`.
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        val: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        use napi::sys;
        let text = val.0;
        let check = |status: sys::napi_status| {
            if status == sys::Status::napi_ok {
                Ok(())
            } else {
                Err(napi::Error::new(
                    napi::Status::from(status),
                    "converting an answer to a JS value failed",
                ))
            }
        };
        let mut global = std::ptr::null_mut();
        let mut json = std::ptr::null_mut();
        let mut parse = std::ptr::null_mut();
        let mut input = std::ptr::null_mut();
        let mut out = std::ptr::null_mut();
        // SAFETY: `env` is the live environment napi-rs passes in; every
        // out-pointer is a local, and the string pointer/length describe `text`.
        unsafe {
            check(sys::napi_get_global(env, &mut global))?;
            check(sys::napi_get_named_property(
                env,
                global,
                c"JSON".as_ptr(),
                &mut json,
            ))?;
            check(sys::napi_get_named_property(
                env,
                json,
                c"parse".as_ptr(),
                &mut parse,
            ))?;
            check(sys::napi_create_string_utf8(
                env,
                text.as_ptr().cast(),
                text.len() as isize,
                &mut input,
            ))?;
            check(sys::napi_call_function(
                env, json, parse, 1, &input, &mut out,
            ))?;
        }
        Ok(out)
    }
}

/// The answer of `verifyKeyWith` as JSON text: the record written as
/// `verifyKey` writes it (absent optional fields left out), the rate-limit
/// and quota decisions converted to camelCase only when present.
fn verify_with_text(v: irontoken::Verification) -> std::result::Result<Json, CoreError> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        valid: bool,
        reason: &'static str,
        record: Option<KeyRecord>,
        rate_limit: Option<Value>,
        quota: Option<Value>,
    }
    json_text(&Answer {
        valid: v.valid,
        reason: v.reason.code(),
        record: v.record.map(KeyRecord::from),
        rate_limit: v.rate_limit.map(camel_value).transpose()?,
        quota: v.quota.map(camel_value).transpose()?,
    })
}

fn internal(e: serde_json::Error) -> CoreError {
    CoreError::new(irontoken::ErrorKind::Internal, e.to_string())
}

/// A serializable core answer as a JSON value with camelCase keys.
fn camel_value<T: serde::Serialize>(v: T) -> std::result::Result<Value, CoreError> {
    serde_json::to_value(v)
        .map(|v| convert_keys(v, camel_case))
        .map_err(internal)
}

fn json_text<T: serde::Serialize>(v: &T) -> std::result::Result<Json, CoreError> {
    serde_json::to_string(v).map(Json).map_err(internal)
}

/// Work run on the libuv thread pool (the `*Async` methods): the JS thread
/// never waits for a commit's fsync or an RSA key generation. A rejection's
/// message starts with the stable code; index.js copies it to `err.code`.
pub struct Job<T> {
    work: Option<Box<dyn FnOnce() -> std::result::Result<T, CoreError> + Send>>,
}

impl<T> Job<T> {
    fn new(
        f: impl FnOnce() -> std::result::Result<T, CoreError> + Send + 'static,
    ) -> AsyncTask<Self>
    where
        T: Send + ToNapiValue + TypeName + 'static,
    {
        AsyncTask::new(Job {
            work: Some(Box::new(f)),
        })
    }
}

impl<T: Send + ToNapiValue + TypeName + 'static> Task for Job<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        let f = self
            .work
            .take()
            .ok_or_else(|| napi::Error::new(Status::GenericFailure, "INTERNAL: job ran twice"))?;
        // A panic on the pool thread becomes an INTERNAL rejection, never an abort.
        irontoken::catch_panic(f)
            .map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()))
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }
}

/// The entry object, opened on a SQLite path or ":memory:".
#[napi]
pub struct TokenManager {
    inner: Mutex<Option<Arc<Core>>>,
}

impl TokenManager {
    fn core(&self) -> Result<Arc<Core>, Code> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| invalid("the TokenManager is closed"))
    }
}

#[napi]
impl TokenManager {
    /// Opens (creating and migrating if needed) the database at `path`.
    #[napi(catch_unwind, constructor)]
    pub fn new(path: String, options: Option<OpenOptions>) -> Result<Self, Code> {
        let settings = match options {
            None => OpenSettings::default(),
            Some(o) => OpenSettings {
                durability: o.durability,
                busy_timeout_ms: uint(o.busy_timeout_ms, "busyTimeoutMs")?,
                flush_interval_ms: uint(o.flush_interval_ms, "flushIntervalMs")?,
                flush_threshold: uint(o.flush_threshold, "flushThreshold")?,
                manual_clock_start: int(o.manual_clock_start, "manualClockStart")?,
                master_key: o.master_key,
                rsa_key_bits: uint(o.rsa_key_bits, "rsaKeyBits")?,
                create: o.create,
                key_cache_size: uint(o.key_cache_size, "keyCacheSize")?,
                page_cache_mib: uint(o.page_cache_mib, "pageCacheMib")?,
                mmap_mib: uint(o.mmap_mib, "mmapMib")?,
                rate_limit_store: o.rate_limit_store,
                rate_limit_fail_open: o.rate_limit_fail_open,
                strict: o.strict,
                storage_timeout_ms: uint(o.storage_timeout_ms, "storageTimeoutMs")?,
                max_staleness_ms: uint(o.max_staleness_ms, "maxStalenessMs")?,
                verify_fail_open: o.verify_fail_open,
                default_rotation_period: int(o.default_rotation_period, "defaultRotationPeriod")?,
                rate_limit_timeout_ms: uint(o.rate_limit_timeout_ms, "rateLimitTimeoutMs")?,
            },
        };
        let core = Core::open_with(&path, settings.into_options().map_err(err)?).map_err(err)?;
        Ok(TokenManager {
            inner: Mutex::new(Some(Arc::new(core))),
        })
    }

    /// `flush` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn flush_async(&self) -> Result<AsyncTask<Job<()>>, Code> {
        let tm = self.core()?;
        Ok(Job::new(move || tm.flush()))
    }

    /// Takes up to `max` (default 100) pending signals, oldest first.
    #[napi(catch_unwind, ts_return_type = "IronTokenEvent[]")]
    pub fn drain_events(&self, max: Option<f64>) -> Result<Json, Code> {
        let max = uint::<usize>(max, "max")?.unwrap_or(100);
        ans(Ok(self.core()?.drain_events(max)))
    }

    /// Counters in the Prometheus text exposition format.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> Result<String, Code> {
        Ok(self.core()?.metrics())
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    #[napi(catch_unwind)]
    pub fn flush(&self) -> Result<(), Code> {
        self.core()?.flush().map_err(err)
    }

    /// Moves a manual clock (opened with `manualClockStart`); returns the new time.
    #[napi(catch_unwind)]
    pub fn advance_clock(&self, seconds: f64) -> Result<i64, Code> {
        let s = int(Some(seconds), "seconds")?.unwrap_or(0);
        self.core()?.advance_clock(s).map_err(err)
    }

    /// The manager's current time (Unix seconds).
    #[napi(catch_unwind)]
    pub fn now(&self) -> Result<i64, Code> {
        Ok(self.core()?.now())
    }

    /// Flushes and closes; later calls throw.
    #[napi(catch_unwind)]
    pub fn close(&self) -> Result<(), Code> {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(tm) => tm.flush().map_err(err),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions, usage, quotas, budgets and signals take and give plain objects:
// camelCase keys in JS, the core's snake_case field names inside. The keys of
// `metadata` and `detail` objects are the caller's data and stay as they are.

const VERBATIM: [&str; 2] = ["metadata", "detail"];

fn convert_keys(v: Value, key: fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let nk = key(&k);
                    let v = if VERBATIM.contains(&nk.as_str()) {
                        v
                    } else {
                        convert_keys(v, key)
                    };
                    (nk, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| convert_keys(v, key)).collect()),
        Value::Number(n) => Value::Number(safe_integer(n)),
        v => v,
    }
}

/// JS numbers beyond 2^32 arrive as floats: an integral one within the safe
/// range (|n| <= 2^53 - 1) becomes the integer it is, so u64 fields take
/// every safe integer. Fractions and unsafe integers stay floats, which a
/// u64 field refuses (INVALID_ARGUMENT).
fn safe_integer(n: serde_json::Number) -> serde_json::Number {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= MAX_SAFE => {
            serde_json::Number::from(f as i64)
        }
        _ => n,
    }
}

fn snake_case(k: &str) -> String {
    let mut out = String::with_capacity(k.len() + 4);
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel_case(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut up = false;
    for c in k.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A JS options object as the core request `T`.
fn req<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, Code> {
    if !v.is_object() {
        return Err(invalid(&format!("{what} must be a plain object")));
    }
    serde_json::from_value(convert_keys(v, snake_case))
        .map_err(|e| invalid(&format!("{what}: {}", camel_message(&e.to_string()))))
}

/// Like [`req`], with all defaults when the argument is absent.
fn req_or_default<T: serde::de::DeserializeOwned + Default>(
    v: Option<Value>,
    what: &str,
) -> Result<T, Code> {
    match v {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => req(v, what),
    }
}

/// serde names fields in snake_case; JS callers wrote camelCase.
fn camel_message(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    for (i, part) in m.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&camel_case(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// A core answer as a JS object with camelCase keys.
fn ans<T: serde::Serialize>(r: std::result::Result<T, CoreError>) -> Result<Json, Code> {
    json_ans(r).map_err(err)
}

/// [`ans`] for the `*Async` jobs.
fn json_ans<T: serde::Serialize>(
    r: std::result::Result<T, CoreError>,
) -> std::result::Result<Json, CoreError> {
    json_text(&camel_value(r?)?)
}

fn micros(v: f64) -> Result<u64, Code> {
    u64::try_from(int(Some(v), "amountMicros")?.unwrap_or(0))
        .map_err(|_| invalid("amountMicros must be >= 0"))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct EndOptions {
    reason: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct TtlOptions {
    ttl_seconds: Option<i64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ScopeOptions {
    scope: irontoken::QuotaScope,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditOptions {
    metric: irontoken::QuotaMetric,
    #[serde(default)]
    scope: irontoken::QuotaScope,
}

/// 2^53 - 1: the largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// An API key as JS passes it: a string, or the raw bytes of a header (a
/// Buffer or any Uint8Array), read through core's `key_from_bytes` (not
/// UTF-8: answered MALFORMED).
pub(crate) type KeyArg = Either<String, Uint8Array>;

/// The text of a [`KeyArg`], borrowed when it can be.
pub(crate) fn key_text(key: &KeyArg) -> std::borrow::Cow<'_, str> {
    match key {
        Either::A(text) => std::borrow::Cow::Borrowed(text),
        Either::B(bytes) => irontoken::keys::key_from_bytes(bytes),
    }
}

/// True if `key` has the shape and checksum of an irontoken key (no database lookup).
#[napi(catch_unwind)]
pub fn is_well_formed(key: KeyArg) -> bool {
    irontoken::keys::is_well_formed(&key_text(&key))
}

/// Whether a query parameter looks like a credential (its name, or a value
/// shaped like a key or a JWT): the adapters' one rule, from core.
#[napi(catch_unwind)]
pub fn is_credential_param(name: String, value: String, header: String) -> bool {
    irontoken::keys::is_credential_param(&name, &value, &header)
}

/// Where `TokenManager.fromEnv` opens: the database `IRONTOKEN_DB` names
/// and the two settings the environment may give, each kept when the caller
/// gives it (core's rule, `OpenSettings::with_env`).
#[napi(object)]
pub struct EnvSettings {
    /// The database path or URL.
    pub db: String,
    /// `store`, `local` or a `redis://` URL.
    pub rate_limit_store: Option<String>,
    /// PostgreSQL call bound in milliseconds.
    pub storage_timeout_ms: Option<f64>,
}

/// The database and settings from the environment (see [`EnvSettings`]).
#[napi(catch_unwind)]
pub fn env_settings(
    rate_limit_store: Option<String>,
    storage_timeout_ms: Option<f64>,
) -> Result<EnvSettings, Code> {
    let given = irontoken::OpenSettings {
        rate_limit_store,
        storage_timeout_ms: uint(storage_timeout_ms, "storageTimeoutMs")?,
        ..Default::default()
    };
    let (db, s) = given.with_env().map_err(err)?;
    Ok(EnvSettings {
        db,
        rate_limit_store: s.rate_limit_store,
        storage_timeout_ms: s.storage_timeout_ms.map(|ms| ms as f64),
    })
}

/// Whether a key refused with `reason` may be a key of the old system
/// (core's rule: unknown to irontoken, a legacy key's shape, not our format).
#[napi(catch_unwind)]
pub fn may_be_legacy(key: String, reason: String) -> bool {
    irontoken::VerifyReason::from_code(&reason)
        .is_some_and(|r| irontoken::keys::may_be_legacy(&key, r))
}

/// The library version.
#[napi(catch_unwind)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
