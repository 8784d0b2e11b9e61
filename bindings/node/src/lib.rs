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
    pub manual_clock_start: Option<f64>,
    pub master_key: Option<String>,
    pub rsa_key_bits: Option<f64>,
    /// Create a missing database file (default true); false: DATABASE_NOT_FOUND.
    pub create: Option<bool>,
    /// Key records cached by verification (default 50000).
    pub key_cache_size: Option<f64>,
    /// SQLite page cache per connection, MiB (default 8).
    pub page_cache_mib: Option<f64>,
    /// Memory-mapped part of the database file, MiB (default 0 = off; see README, Storage).
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
}

/// Options of `rateLimit`.
#[napi(object)]
pub struct RateLimitOptions {
    /// Answer without counting the request.
    pub peek: Option<bool>,
}

/// One limit's state after a rate-limit check.
#[napi(object)]
pub struct RateLimitState {
    pub name: String,
    /// Requests still allowed right now.
    pub remaining: f64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: f64,
}

/// The answer of `rateLimit`.
#[napi(object)]
pub struct RateDecision {
    /// True if the request is within every limit (and was counted, unless peeked).
    pub allowed: bool,
    /// Milliseconds to wait before the request would be allowed (0 if allowed).
    pub retry_after_ms: f64,
    /// Per limit, in the order given.
    pub limits: Vec<RateLimitState>,
}

impl From<irontoken::ratelimit::Decision> for RateDecision {
    fn from(d: irontoken::ratelimit::Decision) -> Self {
        let safe = |v: u64| v.min(MAX_SAFE_INTEGER) as f64;
        RateDecision {
            allowed: d.allowed,
            retry_after_ms: safe(d.retry_after_ms),
            limits: d
                .limits
                .into_iter()
                .map(|l| RateLimitState {
                    name: l.name,
                    remaining: safe(l.remaining),
                    reset_ms: safe(l.reset_ms),
                })
                .collect(),
        }
    }
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
    pub actor: Option<String>,
}

/// Options of `listKeys`.
#[napi(object)]
pub struct ListKeysOptions {
    pub owner: Option<String>,
    pub status: Option<String>,
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
        actor: o.actor,
    })
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

/// A serializable record as a JS value.
fn value_of<T: serde::Serialize>(v: T) -> Result<Value, Code> {
    serde_json::to_value(v).map_err(|e| {
        err(CoreError::new(
            irontoken::ErrorKind::Internal,
            e.to_string(),
        ))
    })
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

/// A JSON value resolved by a `*Async` method.
pub struct Json(Value);

impl TypeName for Json {
    fn type_name() -> &'static str {
        "Object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        val: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        // SAFETY: forwarded from napi's own conversion contract.
        unsafe { Value::to_napi_value(env, val.0) }
    }
}

fn json_of<T: serde::Serialize>(v: T) -> std::result::Result<Json, CoreError> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| CoreError::new(irontoken::ErrorKind::Internal, e.to_string()))
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
                busy_timeout_ms: int(o.busy_timeout_ms, "busyTimeoutMs")?
                    .map(|v| u64::try_from(v).map_err(|_| invalid("busyTimeoutMs must be >= 0")))
                    .transpose()?,
                flush_interval_ms: int(o.flush_interval_ms, "flushIntervalMs")?
                    .map(|v| u64::try_from(v).map_err(|_| invalid("flushIntervalMs must be > 0")))
                    .transpose()?,
                manual_clock_start: int(o.manual_clock_start, "manualClockStart")?,
                master_key: o.master_key,
                rsa_key_bits: int(o.rsa_key_bits, "rsaKeyBits")?
                    .map(|b| {
                        usize::try_from(b).map_err(|_| invalid("rsaKeyBits must be 2048 or 3072"))
                    })
                    .transpose()?,
                create: o.create,
                key_cache_size: int(o.key_cache_size, "keyCacheSize")?
                    .map(|n| usize::try_from(n).map_err(|_| invalid("keyCacheSize must be >= 1")))
                    .transpose()?,
                page_cache_mib: int(o.page_cache_mib, "pageCacheMib")?
                    .map(|n| u32::try_from(n).map_err(|_| invalid("pageCacheMib must be >= 1")))
                    .transpose()?,
                mmap_mib: int(o.mmap_mib, "mmapMib")?
                    .map(|n| u32::try_from(n).map_err(|_| invalid("mmapMib must be >= 0")))
                    .transpose()?,
                rate_limit_store: o.rate_limit_store,
                rate_limit_fail_open: o.rate_limit_fail_open,
                strict: o.strict,
                rate_limit_timeout_ms: int(o.rate_limit_timeout_ms, "rateLimitTimeoutMs")?
                    .map(|n| {
                        u64::try_from(n).map_err(|_| invalid("rateLimitTimeoutMs must be > 0"))
                    })
                    .transpose()?,
            },
        };
        let core = Core::open_with(&path, settings.into_options().map_err(err)?).map_err(err)?;
        Ok(TokenManager {
            inner: Mutex::new(Some(Arc::new(core))),
        })
    }

    /// Counts one request of `key` against `limits`, all-or-nothing, in the
    /// manager's rate-limit store (option `rateLimitStore`); `{ peek: true }`
    /// counts nothing.
    #[napi(catch_unwind)]
    pub fn rate_limit(
        &self,
        key: String,
        limits: Value,
        options: Option<RateLimitOptions>,
    ) -> Result<RateDecision, Code> {
        let limits = limits_of(limits, "limits")?;
        let consume = !options.and_then(|o| o.peek).unwrap_or(false);
        let d = self
            .core()?
            .rate_limit_decide(&key, &limits, consume)
            .map_err(err)?;
        Ok(d.into())
    }

    /// `rateLimit` off the JS thread (a Redis or database round trip).
    #[napi(catch_unwind, ts_return_type = "Promise<RateDecision>")]
    pub fn rate_limit_async(
        &self,
        key: String,
        limits: Value,
        options: Option<RateLimitOptions>,
    ) -> Result<AsyncTask<Job<RateDecision>>, Code> {
        let limits = limits_of(limits, "limits")?;
        let consume = !options.and_then(|o| o.peek).unwrap_or(false);
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.rate_limit_decide(&key, &limits, consume).map(Into::into)
        }))
    }

    /// Creates a key; the returned `key` is the only time the plaintext exists.
    #[napi(catch_unwind)]
    pub fn create_key(&self, options: CreateKeyOptions) -> Result<CreatedKey, Code> {
        let tm = self.core()?;
        let req = new_key_of(options)?;
        Ok(tm.create_key(&req).map_err(err)?.into())
    }

    /// Creates many keys in one transaction: all of them or none (the first
    /// bad request's index is in the error). At most 100 000 per call.
    #[napi(catch_unwind)]
    pub fn create_keys(&self, requests: Vec<CreateKeyOptions>) -> Result<Vec<CreatedKey>, Code> {
        let tm = self.core()?;
        let reqs = new_keys_of(requests)?;
        Ok(tm
            .create_keys(&reqs)
            .map_err(err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// `verifyKey` (index.js): the answer as text, see [`verify_text`].
    #[napi(catch_unwind)]
    pub fn verify_key_text(
        &self,
        key: String,
        required_scopes: Option<Vec<String>>,
    ) -> Result<String, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        verify_text(tm.verify_key(&key, &s).map_err(err)?).map_err(err)
    }

    /// The record of key `keyId`.
    #[napi(catch_unwind)]
    pub fn get_key(&self, key_id: String) -> Result<KeyRecord, Code> {
        Ok(self.core()?.get_key(&key_id).map_err(err)?.into())
    }

    /// One page of keys, oldest first.
    #[napi(catch_unwind)]
    pub fn list_keys(&self, options: Option<ListKeysOptions>) -> Result<KeyPage, Code> {
        let tm = self.core()?;
        let f = match options {
            None => KeyFilter::default(),
            Some(o) => KeyFilter {
                owner: o.owner,
                status: o
                    .status
                    .as_deref()
                    .map(KeyStatus::parse)
                    .transpose()
                    .map_err(err)?,
                limit: limit(o.limit)?,
                cursor: o.cursor,
            },
        };
        let p = tm.list_keys(&f).map_err(err)?;
        Ok(KeyPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        })
    }

    /// Changes descriptive fields; `clearExpiry: true` removes the expiry.
    #[napi(catch_unwind)]
    pub fn update_key(&self, key_id: String, options: UpdateKeyOptions) -> Result<KeyRecord, Code> {
        let u = key_update_of(options)?;
        Ok(self.core()?.update_key(&key_id, &u).map_err(err)?.into())
    }

    /// `updateKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn update_key_async(
        &self,
        key_id: String,
        options: UpdateKeyOptions,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let u = key_update_of(options)?;
        let tm = self.core()?;
        Ok(Job::new(move || tm.update_key(&key_id, &u).map(Into::into)))
    }

    /// `disableKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn disable_key_async(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let actor = options.and_then(|o| o.actor);
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.disable_key(&key_id, actor.as_deref()).map(Into::into)
        }))
    }

    /// `enableKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn enable_key_async(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let actor = options.and_then(|o| o.actor);
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.enable_key(&key_id, actor.as_deref()).map(Into::into)
        }))
    }

    /// `deleteKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn delete_key_async(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<()>>, Code> {
        let actor = options.and_then(|o| o.actor);
        let tm = self.core()?;
        Ok(Job::new(move || tm.delete_key(&key_id, actor.as_deref())))
    }

    /// `createSession` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "options: CreateSessionOptions",
        ts_return_type = "Promise<Session>"
    )]
    pub fn create_session_async(&self, options: Value) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::NewSession = req(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.create_session(&r))))
    }

    /// `endSession` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, options?: { reason?: string }",
        ts_return_type = "Promise<Session>"
    )]
    pub fn end_session_async(
        &self,
        session_id: String,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: EndOptions = req_or_default(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.end_session(&session_id, o.reason.as_deref()))
        }))
    }

    /// Disables a key until `enableKey`.
    #[napi(catch_unwind)]
    pub fn disable_key(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<KeyRecord, Code> {
        let actor = options.and_then(|o| o.actor);
        let r = self.core()?.disable_key(&key_id, actor.as_deref());
        Ok(r.map_err(err)?.into())
    }

    /// Enables a disabled key.
    #[napi(catch_unwind)]
    pub fn enable_key(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<KeyRecord, Code> {
        let actor = options.and_then(|o| o.actor);
        let r = self.core()?.enable_key(&key_id, actor.as_deref());
        Ok(r.map_err(err)?.into())
    }

    /// Revokes a key permanently.
    #[napi(catch_unwind)]
    pub fn revoke_key(
        &self,
        key_id: String,
        options: Option<RevokeOptions>,
    ) -> Result<KeyRecord, Code> {
        let (reason, actor) = options.map_or((None, None), |o| (o.reason, o.actor));
        let r = self
            .core()?
            .revoke_key(&key_id, reason.as_deref(), actor.as_deref());
        Ok(r.map_err(err)?.into())
    }

    /// Replaces a key; the old one verifies for `overlapSeconds` more (0: revoked now).
    #[napi(catch_unwind)]
    pub fn rotate_key(
        &self,
        key_id: String,
        options: Option<RotateKeyOptions>,
    ) -> Result<CreatedKey, Code> {
        let tm = self.core()?;
        let o = match options {
            None => RotateOptions::default(),
            Some(o) => RotateOptions {
                overlap_seconds: int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                expires_at: int(o.expires_at, "expiresAt")?.map(Some),
                actor: o.actor,
            },
        };
        Ok(tm.rotate_key(&key_id, &o).map_err(err)?.into())
    }

    /// Deletes a key's record (its audit history stays).
    #[napi(catch_unwind)]
    pub fn delete_key(&self, key_id: String, options: Option<ActorOptions>) -> Result<(), Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .delete_key(&key_id, actor.as_deref())
            .map_err(err)
    }

    /// One page of the audit trail, newest first.
    #[napi(catch_unwind)]
    pub fn list_audit(&self, options: Option<ListAuditOptions>) -> Result<AuditPage, Code> {
        let tm = self.core()?;
        let f = match options {
            None => AuditFilter::default(),
            Some(o) => AuditFilter {
                key_id: o.key_id,
                action: o.action,
                actor: o.actor,
                outcome: o.outcome,
                since: int(o.since, "since")?,
                until: int(o.until, "until")?,
                limit: limit(o.limit)?,
                cursor: o.cursor,
            },
        };
        let p = tm.list_audit(&f).map_err(err)?;
        Ok(AuditPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        })
    }

    /// Generates a managed signing key (RS256, ES256, EdDSA, HS256) and makes it active.
    #[napi(catch_unwind)]
    pub fn create_signing_key(
        &self,
        algorithm: String,
        options: Option<ActorOptions>,
    ) -> Result<Value, Code> {
        let alg = alg_of(&algorithm)?;
        let actor = options.and_then(|o| o.actor);
        let k = self
            .core()?
            .create_signing_key(alg, actor.as_deref())
            .map_err(err)?;
        value_of(k)
    }

    /// Makes a new key active; the old one verifies for `overlapSeconds` more.
    #[napi(catch_unwind)]
    pub fn rotate_signing_key(&self, options: Option<RotateSigningOptions>) -> Result<Value, Code> {
        let (alg, overlap, actor) = match options {
            None => (None, 0, None),
            Some(o) => (
                o.algorithm.as_deref().map(alg_of).transpose()?,
                int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                o.actor,
            ),
        };
        let k = self
            .core()?
            .rotate_signing_key(alg, overlap, actor.as_deref())
            .map_err(err)?;
        value_of(k)
    }

    /// Retires a signing key now.
    #[napi(catch_unwind)]
    pub fn retire_signing_key(
        &self,
        kid: String,
        options: Option<ActorOptions>,
    ) -> Result<Value, Code> {
        let actor = options.and_then(|o| o.actor);
        let k = self
            .core()?
            .retire_signing_key(&kid, actor.as_deref())
            .map_err(err)?;
        value_of(k)
    }

    /// Every managed signing key (no private material).
    #[napi(catch_unwind)]
    pub fn list_signing_keys(&self) -> Result<Value, Code> {
        let keys = self.core()?.list_signing_keys().map_err(err)?;
        value_of(keys)
    }

    /// The public JWKS of the keys that verify now.
    #[napi(catch_unwind)]
    pub fn jwks(&self) -> Result<Value, Code> {
        self.core()?.jwks().map_err(err)
    }

    /// Signs `claims` with the active managed key.
    #[napi(catch_unwind)]
    pub fn issue_jwt(&self, claims: Value, options: Option<IssueOptions>) -> Result<String, Code> {
        let c = object(Some(claims), "claims")?.unwrap_or_default();
        let ttl = match options {
            None => None,
            Some(o) => int(o.ttl_seconds, "ttlSeconds")?,
        };
        self.core()?.issue_jwt(&c, ttl).map_err(err)
    }

    /// Verifies a token issued by this manager's keys (policy as JSON).
    #[napi(catch_unwind)]
    pub fn verify_jwt(&self, token: String, policy_json: String) -> Result<VerifiedJwt, Code> {
        let policy = policy_of(&policy_json)?;
        self.core()?
            .verify_jwt(&token, &policy)
            .map(verified)
            .map_err(err)
    }

    /// Exchanges a valid API key for a short-lived access token.
    #[napi(catch_unwind)]
    pub fn exchange_api_key(
        &self,
        api_key: String,
        options: Option<ExchangeOptions>,
    ) -> Result<Value, Code> {
        let (scopes, ttl) = match options {
            None => (Vec::new(), None),
            Some(o) => (
                o.required_scopes.unwrap_or_default(),
                int(o.ttl_seconds, "ttlSeconds")?,
            ),
        };
        let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let at = self
            .core()?
            .exchange_api_key(&api_key, &s, ttl)
            .map_err(err)?;
        value_of(at)
    }

    /// `createKey` off the JS thread; resolves to a CreatedKey.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey>")]
    pub fn create_key_async(
        &self,
        options: CreateKeyOptions,
    ) -> Result<AsyncTask<Job<CreatedKey>>, Code> {
        let tm = self.core()?;
        let req = new_key_of(options)?;
        Ok(Job::new(move || tm.create_key(&req).map(Into::into)))
    }

    /// `createKeys` off the JS thread; resolves to the created keys.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey[]>")]
    pub fn create_keys_async(
        &self,
        requests: Vec<CreateKeyOptions>,
    ) -> Result<AsyncTask<Job<Vec<CreatedKey>>>, Code> {
        let tm = self.core()?;
        let reqs = new_keys_of(requests)?;
        Ok(Job::new(move || {
            tm.create_keys(&reqs)
                .map(|v| v.into_iter().map(Into::into).collect())
        }))
    }

    /// `verifyKeyAsync` (index.js): [`TokenManager::verify_key_text`] off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn verify_key_text_async(
        &self,
        key: String,
        required_scopes: Option<Vec<String>>,
    ) -> Result<AsyncTask<Job<String>>, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        Ok(Job::new(move || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.verify_key(&key, &s).and_then(verify_text)
        }))
    }

    /// `revokeKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn revoke_key_async(
        &self,
        key_id: String,
        options: Option<RevokeOptions>,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let tm = self.core()?;
        let (reason, actor) = options.map_or((None, None), |o| (o.reason, o.actor));
        Ok(Job::new(move || {
            tm.revoke_key(&key_id, reason.as_deref(), actor.as_deref())
                .map(Into::into)
        }))
    }

    /// `rotateKey` off the JS thread; resolves to a CreatedKey.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey>")]
    pub fn rotate_key_async(
        &self,
        key_id: String,
        options: Option<RotateKeyOptions>,
    ) -> Result<AsyncTask<Job<CreatedKey>>, Code> {
        let tm = self.core()?;
        let o = rotate_options_of(options)?;
        Ok(Job::new(move || tm.rotate_key(&key_id, &o).map(Into::into)))
    }

    /// `createSigningKey` off the JS thread (RSA generation takes a while).
    #[napi(catch_unwind, ts_return_type = "Promise<ManagedKey>")]
    pub fn create_signing_key_async(
        &self,
        algorithm: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        let alg = alg_of(&algorithm)?;
        let actor = options.and_then(|o| o.actor);
        Ok(Job::new(move || {
            json_of(tm.create_signing_key(alg, actor.as_deref())?)
        }))
    }

    /// `rotateSigningKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<ManagedKey>")]
    pub fn rotate_signing_key_async(
        &self,
        options: Option<RotateSigningOptions>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        let (alg, overlap, actor) = match options {
            None => (None, 0, None),
            Some(o) => (
                o.algorithm.as_deref().map(alg_of).transpose()?,
                int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                o.actor,
            ),
        };
        Ok(Job::new(move || {
            json_of(tm.rotate_signing_key(alg, overlap, actor.as_deref())?)
        }))
    }

    /// `flush` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn flush_async(&self) -> Result<AsyncTask<Job<()>>, Code> {
        let tm = self.core()?;
        Ok(Job::new(move || tm.flush()))
    }

    /// Verifies a key and applies its rate limits and quota in one call;
    /// answers `{ valid, reason, record, rateLimit, quota }`.
    #[napi(catch_unwind, ts_return_type = "VerifyWithResult")]
    pub fn verify_key_with(&self, key: String, options: Option<Value>) -> Result<Value, Code> {
        let o: irontoken::VerifyOptions = req_or_default(options, "options")?;
        ans(self.core()?.verify_key_with(&key, &o))
    }

    /// `verifyKeyWith` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<VerifyWithResult>")]
    pub fn verify_key_with_async(
        &self,
        key: String,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: irontoken::VerifyOptions = req_or_default(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.verify_key_with(&key, &o))))
    }

    /// Creates a session: `{ owner, keyId?, sessionType?, metadata?, ttlSeconds?, idleTimeoutSeconds? }`.
    #[napi(
        catch_unwind,
        ts_args_type = "options: CreateSessionOptions",
        ts_return_type = "Session"
    )]
    pub fn create_session(&self, options: Value) -> Result<Value, Code> {
        let r: irontoken::NewSession = req(options, "options")?;
        ans(self.core()?.create_session(&r))
    }

    /// The session `sessionId` (status computed now).
    #[napi(catch_unwind, ts_return_type = "Session")]
    pub fn get_session(&self, session_id: String) -> Result<Value, Code> {
        ans(self.core()?.get_session(&session_id))
    }

    /// Slides the idle expiry of a live session (never past the absolute one).
    #[napi(catch_unwind, ts_return_type = "Session")]
    pub fn touch_session(&self, session_id: String) -> Result<Value, Code> {
        ans(self.core()?.touch_session(&session_id))
    }

    /// Changes `status` ("active" | "paused") and/or `metadata` of a live session.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, update: { status?: 'active' | 'paused'; metadata?: Record<string, unknown> }",
        ts_return_type = "Session"
    )]
    pub fn update_session(&self, session_id: String, update: Value) -> Result<Value, Code> {
        let u: irontoken::SessionUpdate = req(update, "update")?;
        ans(self.core()?.update_session(&session_id, &u))
    }

    /// Ends a live session.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, options?: { reason?: string }",
        ts_return_type = "Session"
    )]
    pub fn end_session(&self, session_id: String, options: Option<Value>) -> Result<Value, Code> {
        let o: EndOptions = req_or_default(options, "options")?;
        ans(self.core()?.end_session(&session_id, o.reason.as_deref()))
    }

    /// One page of sessions, oldest first.
    #[napi(
        catch_unwind,
        ts_args_type = "filter?: ListSessionsOptions",
        ts_return_type = "Page<Session>"
    )]
    pub fn list_sessions(&self, filter: Option<Value>) -> Result<Value, Code> {
        let f: irontoken::SessionFilter = req_or_default(filter, "filter")?;
        ans(self.core()?.list_sessions(&f))
    }

    /// Marks live sessions past their expiry as expired; returns how many.
    #[napi(catch_unwind)]
    pub fn cleanup_expired_sessions(&self) -> Result<i64, Code> {
        Ok(self.core()?.cleanup_expired_sessions().map_err(err)? as i64)
    }

    /// Deletes sessions that ended at least `olderThanSeconds` ago; returns how many.
    #[napi(catch_unwind)]
    pub fn purge_sessions(&self, older_than_seconds: f64) -> Result<i64, Code> {
        let s = int(Some(older_than_seconds), "olderThanSeconds")?.unwrap_or(0);
        Ok(self.core()?.purge_sessions(s).map_err(err)? as i64)
    }

    /// Records usage (buffered); the same `requestId` twice counts once.
    #[napi(
        catch_unwind,
        ts_args_type = "report: UsageReport",
        ts_return_type = "Recorded"
    )]
    pub fn record_usage(&self, report: Value) -> Result<Value, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        ans(self.core()?.record_usage(&r))
    }

    /// `recordUsage` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "report: UsageReport",
        ts_return_type = "Promise<Recorded>"
    )]
    pub fn record_usage_async(&self, report: Value) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.record_usage(&r))))
    }

    /// Usage totals, grouped by any of "key", "owner", "model", "session", "agent", "day".
    #[napi(
        catch_unwind,
        ts_args_type = "query?: UsageQuery",
        ts_return_type = "UsageTotals[]"
    )]
    pub fn usage_summary(&self, query: Option<Value>) -> Result<Value, Code> {
        let q: irontoken::UsageQuery = req_or_default(query, "query")?;
        ans(self.core()?.usage_summary(&q))
    }

    /// One page of raw usage records, oldest first.
    #[napi(
        catch_unwind,
        ts_args_type = "query?: UsageQuery",
        ts_return_type = "Page<UsageRecord>"
    )]
    pub fn export_usage(&self, query: Option<Value>) -> Result<Value, Code> {
        let q: irontoken::UsageQuery = req_or_default(query, "query")?;
        ans(self.core()?.export_usage(&q))
    }

    /// Creates or changes a quota.
    #[napi(
        catch_unwind,
        ts_args_type = "spec: QuotaSpec",
        ts_return_type = "Quota"
    )]
    pub fn set_quota(&self, spec: Value) -> Result<Value, Code> {
        let s: irontoken::QuotaSpec = req(spec, "spec")?;
        ans(self.core()?.set_quota(&s))
    }

    /// Removes a quota.
    #[napi(
        catch_unwind,
        ts_args_type = "selector: QuotaSelector & { actor?: string }"
    )]
    pub fn delete_quota(&self, selector: Value) -> Result<(), Code> {
        let s: irontoken::QuotaSelector = req(selector, "selector")?;
        self.core()?
            .delete_quota(s.scope, &s.subject, s.metric, s.period, s.actor.as_deref())
            .map_err(err)
    }

    /// The quotas of a key (default) or owner as they stand now.
    #[napi(
        catch_unwind,
        ts_args_type = "subject: string, options?: { scope?: QuotaScope }",
        ts_return_type = "Quota[]"
    )]
    pub fn list_quotas(&self, subject: String, options: Option<Value>) -> Result<Value, Code> {
        let o: ScopeOptions = req_or_default(options, "options")?;
        ans(self.core()?.list_quotas(o.scope, &subject))
    }

    /// Adds `amount` to a credit balance (period "none").
    #[napi(
        catch_unwind,
        ts_args_type = "subject: string, amount: number, options: { metric: QuotaMetric; scope?: QuotaScope }",
        ts_return_type = "Quota"
    )]
    pub fn add_credits(&self, subject: String, amount: f64, options: Value) -> Result<Value, Code> {
        let o: CreditOptions = req(options, "options")?;
        let amount = u64::try_from(int(Some(amount), "amount")?.unwrap_or(0))
            .map_err(|_| invalid("amount must be positive"))?;
        ans(self
            .core()?
            .add_credits(o.scope, &subject, o.metric, amount))
    }

    /// Checks and consumes from every quota of the key and its owner, all or nothing.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts",
        ts_return_type = "QuotaDecision"
    )]
    pub fn consume_quota(&self, key_id: String, amounts: Value) -> Result<Value, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        ans(self.core()?.consume_quota(&key_id, &a))
    }

    /// `consumeQuota` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts",
        ts_return_type = "Promise<QuotaDecision>"
    )]
    pub fn consume_quota_async(
        &self,
        key_id: String,
        amounts: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.consume_quota(&key_id, &a))))
    }

    /// Answers what `consumeQuota` would, without consuming.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts",
        ts_return_type = "QuotaDecision"
    )]
    pub fn peek_quota(&self, key_id: String, amounts: Value) -> Result<Value, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        ans(self.core()?.peek_quota(&key_id, &a))
    }

    /// Holds an estimate for `ttlSeconds` (default 300).
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts, options?: { ttlSeconds?: number }",
        ts_return_type = "Reserved"
    )]
    pub fn reserve_quota(
        &self,
        key_id: String,
        amounts: Value,
        options: Option<Value>,
    ) -> Result<Value, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let o: TtlOptions = req_or_default(options, "options")?;
        ans(self.core()?.reserve_quota(&key_id, &a, o.ttl_seconds))
    }

    /// Charges the actual amounts of a reserved call (in full) and ends the hold.
    #[napi(
        catch_unwind,
        ts_args_type = "reservationId: string, amounts: Amounts",
        ts_return_type = "QuotaDecision"
    )]
    pub fn settle_reservation(
        &self,
        reservation_id: String,
        amounts: Value,
    ) -> Result<Value, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        ans(self.core()?.settle_reservation(&reservation_id, &a))
    }

    /// Gives a hold back without charging.
    #[napi(catch_unwind, ts_return_type = "QuotaDecision")]
    pub fn release_reservation(&self, reservation_id: String) -> Result<Value, Code> {
        ans(self.core()?.release_reservation(&reservation_id))
    }

    /// Releases every hold past its TTL; returns how many.
    #[napi(catch_unwind)]
    pub fn expire_reservations(&self) -> Result<i64, Code> {
        Ok(self.core()?.expire_reservations().map_err(err)? as i64)
    }

    /// Creates a budget agents can lease from.
    #[napi(
        catch_unwind,
        ts_args_type = "options: { owner: string; limitMicros: number; name?: string; actor?: string }",
        ts_return_type = "Budget"
    )]
    pub fn create_budget(&self, options: Value) -> Result<Value, Code> {
        let b: irontoken::NewBudget = req(options, "options")?;
        ans(self.core()?.create_budget(&b))
    }

    /// The budget `budgetId` (spent, leased, available).
    #[napi(catch_unwind, ts_return_type = "Budget")]
    pub fn get_budget(&self, budget_id: String) -> Result<Value, Code> {
        ans(self.core()?.get_budget(&budget_id))
    }

    /// Issues the agent's token (revoking its previous one).
    #[napi(
        catch_unwind,
        ts_args_type = "options: AgentTokenOptions",
        ts_return_type = "AgentToken"
    )]
    pub fn issue_agent_token(&self, options: Value) -> Result<Value, Code> {
        let r: irontoken::AgentTokenRequest = req(options, "options")?;
        ans(self.core()?.issue_agent_token(&r))
    }

    /// Verifies an agent token (signature, expiry, still the agent's live token).
    #[napi(catch_unwind, ts_return_type = "AgentClaims")]
    pub fn verify_agent_token(&self, token: String) -> Result<Value, Code> {
        ans(self.core()?.verify_agent_token(&token))
    }

    /// Revokes the agent's live token and its leases; returns the token's jti.
    #[napi(catch_unwind)]
    pub fn revoke_agent_token(
        &self,
        agent_id: String,
        options: Option<ActorOptions>,
    ) -> Result<String, Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .revoke_agent_token(&agent_id, actor.as_deref())
            .map_err(err)
    }

    /// Takes a lease of `amountMicros` from the agent token's budget.
    #[napi(
        catch_unwind,
        ts_args_type = "agentToken: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Lease"
    )]
    pub fn acquire_lease(
        &self,
        agent_token: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<Value, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        ans(self
            .core()?
            .acquire_lease(&agent_token, amount, o.ttl_seconds))
    }

    /// The lease `leaseId`.
    #[napi(catch_unwind, ts_return_type = "Lease")]
    pub fn get_lease(&self, lease_id: String) -> Result<Value, Code> {
        ans(self.core()?.get_lease(&lease_id))
    }

    /// Makes `amountMicros` more available on a lease and renews it.
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Lease"
    )]
    pub fn refresh_lease(
        &self,
        lease_id: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<Value, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        ans(self.core()?.refresh_lease(&lease_id, amount, o.ttl_seconds))
    }

    /// Ends a lease; its unspent part returns to the budget.
    #[napi(catch_unwind, ts_return_type = "Lease")]
    pub fn release_lease(&self, lease_id: String) -> Result<Value, Code> {
        ans(self.core()?.release_lease(&lease_id))
    }

    /// Reports usage spent on a lease (`requestId` required; retries count once).
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, report: UsageReport",
        ts_return_type = "Lease"
    )]
    pub fn report_lease_usage(&self, lease_id: String, report: Value) -> Result<Value, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        ans(self.core()?.report_lease_usage(&lease_id, &r))
    }

    /// `touchSession` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<Session>")]
    pub fn touch_session_async(&self, session_id: String) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.touch_session(&session_id))))
    }

    /// `reserveQuota` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts, options?: { ttlSeconds?: number }",
        ts_return_type = "Promise<Reserved>"
    )]
    pub fn reserve_quota_async(
        &self,
        key_id: String,
        amounts: Value,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let o: TtlOptions = req_or_default(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.reserve_quota(&key_id, &a, o.ttl_seconds))
        }))
    }

    /// `settleReservation` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "reservationId: string, amounts: Amounts",
        ts_return_type = "Promise<QuotaDecision>"
    )]
    pub fn settle_reservation_async(
        &self,
        reservation_id: String,
        amounts: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.settle_reservation(&reservation_id, &a))
        }))
    }

    /// `acquireLease` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "agentToken: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Promise<Lease>"
    )]
    pub fn acquire_lease_async(
        &self,
        agent_token: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.acquire_lease(&agent_token, amount, o.ttl_seconds))
        }))
    }

    /// `refreshLease` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Promise<Lease>"
    )]
    pub fn refresh_lease_async(
        &self,
        lease_id: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.refresh_lease(&lease_id, amount, o.ttl_seconds))
        }))
    }

    /// `reportLeaseUsage` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, report: UsageReport",
        ts_return_type = "Promise<Lease>"
    )]
    pub fn report_lease_usage_async(
        &self,
        lease_id: String,
        report: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.report_lease_usage(&lease_id, &r))
        }))
    }

    /// Takes up to `max` (default 100) pending signals, oldest first.
    #[napi(catch_unwind, ts_return_type = "IronTokenEvent[]")]
    pub fn drain_events(&self, max: Option<f64>) -> Result<Value, Code> {
        let max = int(max, "max")?.unwrap_or(100).max(0) as usize;
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
fn ans<T: serde::Serialize>(r: std::result::Result<T, CoreError>) -> Result<Value, Code> {
    let v = value_of(r.map_err(err)?)?;
    Ok(convert_keys(v, camel_case))
}

/// [`ans`] for the `*Async` jobs.
fn json_ans<T: serde::Serialize>(
    r: std::result::Result<T, CoreError>,
) -> std::result::Result<Json, CoreError> {
    json_of(r?).map(|j| Json(convert_keys(j.0, camel_case)))
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

/// Key material as a string or Buffer: judged by content in core, never by type.
fn key_bytes(key: &Either<String, Buffer>) -> &[u8] {
    match key {
        Either::A(text) => text.as_bytes(),
        Either::B(bytes) => bytes,
    }
}

fn keyring_of(key: Either<String, Buffer>) -> Result<Arc<irontoken::jwt::Keyring>, Code> {
    irontoken::jwt::Keyring::from_bytes_cached(key_bytes(&key)).map_err(err)
}

fn policy_of(policy_json: &str) -> Result<irontoken::jwt::Policy, Code> {
    irontoken::jwt::PolicySettings::policy_from_json(policy_json).map_err(err)
}

/// A verified JWT, named as jose names its result.
#[napi(object)]
pub struct VerifiedJwt {
    pub payload: Value,
    pub protected_header: Value,
}

/// A verified JWS with its raw payload.
#[napi(object)]
pub struct VerifiedJws {
    pub payload: Buffer,
    pub protected_header: Value,
}

fn verified(d: irontoken::jwt::Decoded) -> VerifiedJwt {
    VerifiedJwt {
        payload: Value::Object(d.claims),
        protected_header: Value::Object(d.header),
    }
}

/// A key (or keyring) and policy parsed once, for many tokens.
#[napi]
pub struct JwtVerifier(irontoken::jwt::Verifier);

#[napi]
impl JwtVerifier {
    /// Parses `key` (PEM, DER, JWK, JWKS, OpenSSH public key or HMAC secret,
    /// as a string or Buffer; judged by content) and the policy JSON.
    #[napi(catch_unwind, constructor)]
    pub fn new(key: Either<String, Buffer>, policy_json: String) -> Result<Self, Code> {
        irontoken::jwt::Verifier::new(keyring_of(key)?, policy_of(&policy_json)?)
            .map(JwtVerifier)
            .map_err(err)
    }

    /// Verifies a JWT (at `now`, Unix seconds, or the system clock).
    #[napi(catch_unwind)]
    pub fn verify(&self, token: String, now: Option<f64>) -> Result<VerifiedJwt, Code> {
        let d = match int(now, "now")? {
            Some(t) => self.0.decode_at(&token, t),
            None => self.0.decode(&token),
        };
        d.map(verified).map_err(err)
    }

    /// Verifies a compact JWS (signature and header only).
    #[napi(catch_unwind)]
    pub fn verify_jws(&self, token: String) -> Result<VerifiedJws, Code> {
        let d = self.0.verify_jws(&token).map_err(err)?;
        Ok(VerifiedJws {
            payload: d.payload.into(),
            protected_header: Value::Object(d.header),
        })
    }
}

/// The policy JSON and the time (`now`, or the system clock) of a verification.
fn policy_at(policy_json: &str, now: Option<f64>) -> Result<(irontoken::jwt::Policy, i64), Code> {
    let now = int(now, "now")?.unwrap_or_else(|| irontoken::Clock::now(&irontoken::SystemClock));
    Ok((policy_of(policy_json)?, now))
}

/// A remote JWKS with its cache (the engine of `createRemoteJWKSet`); its
/// calls that may fetch run on the libuv pool.
#[napi]
pub struct RemoteJwks(Arc<irontoken::jwt::RemoteJwks>);

#[napi]
impl RemoteJwks {
    /// A remote set at `url` with options JSON (`timeout_ms`, `max_bytes`,
    /// `cache_max_age_ms`, `cooldown_ms`, `stale_max_ms`, `allow_http`, `headers`).
    #[napi(catch_unwind, constructor)]
    pub fn new(url: String, options_json: String) -> Result<Self, Code> {
        irontoken::jwt::RemoteJwksSettings::options_from_json(&options_json)
            .and_then(|o| irontoken::jwt::RemoteJwks::new(&url, o))
            .map(|r| RemoteJwks(Arc::new(r)))
            .map_err(err)
    }

    /// Verifies a JWT against the set off the JS thread (at `now`, Unix
    /// seconds, or the system clock); resolves `{ payload, protectedHeader }`.
    #[napi(
        catch_unwind,
        ts_return_type = "Promise<{ payload: Record<string, unknown>; protectedHeader: Record<string, unknown> }>"
    )]
    pub fn verify_async(
        &self,
        token: String,
        policy_json: String,
        now: Option<f64>,
    ) -> Result<AsyncTask<Job<VerifiedJwt>>, Code> {
        let (policy, now) = policy_at(&policy_json, now)?;
        let remote = self.0.clone();
        Ok(Job::new(move || {
            remote.decode(&token, &policy, now).map(verified)
        }))
    }

    /// Verifies on the JS thread when no fetch is needed (the set is cached
    /// and fresh, the kid known or not refetchable): `{ payload,
    /// protectedHeader }`, or `null` when `verifyAsync` must run.
    #[napi(
        catch_unwind,
        ts_return_type = "{ payload: Record<string, unknown>; protectedHeader: Record<string, unknown> } | null"
    )]
    pub fn verify_cached(
        &self,
        token: String,
        policy_json: String,
        now: Option<f64>,
    ) -> Result<Option<VerifiedJwt>, Code> {
        let (policy, now) = policy_at(&policy_json, now)?;
        match self.0.decode_cached(&token, &policy, now) {
            None => Ok(None),
            Some(r) => r.map(|d| Some(verified(d))).map_err(err),
        }
    }

    /// Fetches the set now off the JS thread; resolves its JSON.
    #[napi(catch_unwind, ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn reload_async(&self) -> AsyncTask<Job<Json>> {
        let remote = self.0.clone();
        Job::new(move || {
            remote.refetch()?;
            let raw = remote.raw()?;
            serde_json::from_str(&raw)
                .map(Json)
                .map_err(|e| CoreError::new(irontoken::ErrorKind::Internal, e.to_string()))
        })
    }

    /// How many times the set was fetched.
    #[napi(catch_unwind, getter)]
    pub fn fetch_count(&self) -> f64 {
        self.0.fetch_count() as f64
    }
}

/// A signing key and algorithm parsed once, for many tokens.
#[napi]
pub struct JwtSigner(irontoken::jwt::Signer);

#[napi]
impl JwtSigner {
    /// Parses `key` (a private key in PEM or DER, or an HMAC secret, as a
    /// string or Buffer; judged by content) for `algorithm`.
    #[napi(catch_unwind, constructor)]
    pub fn new(
        key: Either<String, Buffer>,
        algorithm: String,
        kid: Option<String>,
    ) -> Result<Self, Code> {
        use irontoken::jwt::{Signer, SigningKey};
        let sk = SigningKey::from_bytes_cached(key_bytes(&key)).map_err(err)?;
        Signer::named(sk, &algorithm, kid.as_deref())
            .map(JwtSigner)
            .map_err(err)
    }

    /// Signs `payload` (with optional extra header parameters).
    #[napi(catch_unwind)]
    pub fn sign(&self, payload: Value, header: Option<Value>) -> Result<String, Code> {
        let claims = object(Some(payload), "payload")?.unwrap_or_default();
        let header = object(header, "header")?;
        self.0.sign(&claims, header.as_ref()).map_err(err)
    }
}

/// Signs `payload` into a compact JWT.
#[napi(catch_unwind)]
pub fn jwt_sign(
    payload: Value,
    key: Either<String, Buffer>,
    algorithm: String,
    header: Option<Value>,
    kid: Option<String>,
) -> Result<String, Code> {
    JwtSigner::new(key, algorithm, kid)?.sign(payload, header)
}

/// The jose error code with the same meaning as irontoken's `code`, if any.
#[napi(catch_unwind)]
pub fn jose_code(code: String) -> Option<String> {
    irontoken::ErrorKind::from_code(&code)
        .and_then(|k| k.jose_code())
        .map(str::to_string)
}

/// In-process rate limiter (GCRA buckets per key and named limit) with its
/// default limits. index.js wraps it as `RateLimiter`; the calls take it as
/// an `External` (a class method pays napi-rs's borrow tracking, about
/// 150 ns a call) and build each result from plain numbers.
pub struct Limiter {
    inner: LimiterBackend,
    /// Limits given to the constructor, parsed once.
    limits: Option<Arc<[irontoken::ratelimit::Limit]>>,
    /// The answers of `rateLimiterCheck` (f64 bits), which JS reads through a
    /// Float64Array over the same memory (`rateLimiterBuffer`): shared, so it
    /// lives until both the limiter and the array are gone.
    out: Arc<[std::sync::atomic::AtomicU64]>,
}

/// Where a `RateLimiter` keeps its buckets.
enum LimiterBackend {
    /// In this process or on Redis.
    Shared(irontoken::SharedLimiter),
    /// In a manager's rate-limit store.
    Manager(Arc<Core>),
}

impl LimiterBackend {
    fn decide_into(
        &self,
        key: &str,
        limits: &[irontoken::ratelimit::Limit],
        now_ms: Option<i64>,
        consume: bool,
        out: &mut Vec<irontoken::ratelimit::Verdict>,
    ) -> std::result::Result<(bool, u64), CoreError> {
        match self {
            LimiterBackend::Shared(s) => s.decide_into(key, limits, now_ms, consume, out),
            LimiterBackend::Manager(_) if now_ms.is_some() => Err(CoreError::invalid(
                "nowMs applies to in-process limits only: the manager uses its clock",
            )),
            LimiterBackend::Manager(tm) => tm.rate_limit_into(key, limits, consume, out),
        }
    }
}

/// Where `rateLimiterNew` keeps the buckets.
#[napi(object)]
pub struct LimiterOptions {
    /// "local" (default) or a redis:// URL.
    pub store: Option<String>,
    /// Allow requests while Redis fails (default false: STORAGE).
    pub fail_open: Option<bool>,
    /// Milliseconds each Redis call may take (default 1000).
    pub timeout_ms: Option<f64>,
}

/// A limiter keeping about `maxBuckets` buckets before evicting full ones,
/// with default `limits` (camelCase or snake_case fields), in this process,
/// on Redis (`options.store`) or in `manager`'s rate-limit store.
#[napi(catch_unwind, ts_return_type = "ExternalObject<'RateLimiter'>")]
pub fn rate_limiter_new(
    max_buckets: Option<f64>,
    limits: Option<Value>,
    options: Option<LimiterOptions>,
    manager: Option<&TokenManager>,
) -> Result<External<Limiter>, Code> {
    let n = int(max_buckets, "maxBuckets")?.unwrap_or(1_000_000);
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid("maxBuckets must be >= 1"))?;
    let limits = match limits {
        None => None,
        Some(l) => {
            let l = limits_of(l, "limits")?;
            if l.is_empty() {
                return Err(invalid("no limits given"));
            }
            irontoken::ratelimit::Limit::validate_list(&l).map_err(err)?;
            Some(l.into())
        }
    };
    let store = options.as_ref().and_then(|o| o.store.clone());
    let inner = match (manager, store) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give store or manager, not both (a manager's limits use its rateLimitStore)",
            ));
        }
        (Some(tm), None) => LimiterBackend::Manager(tm.core()?),
        (None, store) => {
            let store = irontoken::RateLimitStore::parse(store.as_deref().unwrap_or("local"))
                .map_err(err)?;
            let timeout_ms =
                int(options.as_ref().and_then(|o| o.timeout_ms), "timeoutMs")?.unwrap_or(1000);
            let timeout_ms =
                u64::try_from(timeout_ms).map_err(|_| invalid("timeoutMs must be > 0"))?;
            let fail_open = options.as_ref().and_then(|o| o.fail_open).unwrap_or(false);
            LimiterBackend::Shared(
                irontoken::SharedLimiter::open(
                    &store,
                    n,
                    std::time::Duration::from_millis(timeout_ms),
                    fail_open,
                )
                .map_err(err)?,
            )
        }
    };
    let slots = 1 + 2 * limits.as_ref().map_or(0, |l: &Arc<[_]>| l.len());
    Ok(External::new(Limiter {
        inner,
        limits,
        out: (0..slots)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    }))
}

/// The Float64Array `rateLimiterCheck` writes its answers into: retryAfterMs,
/// then remaining and resetMs of each of the limiter's limits.
#[napi(catch_unwind)]
pub fn rate_limiter_buffer(rl: &External<Limiter>) -> Float64Array {
    let shared = rl.out.clone();
    let ptr = shared.as_ptr() as *mut f64;
    let len = shared.len();
    // SAFETY: `AtomicU64` has the size and alignment of `f64`; the memory stays
    // alive until the array's finalizer drops its share of the Arc; JS reads it
    // on the thread that writes it (a synchronous call), never concurrently.
    unsafe { Float64Array::with_external_data(ptr, len, move |_, _| drop(shared)) }
}

/// `check(key)` with the limiter's limits and the system clock: counts one
/// request of `key` and writes the answer into `rateLimiterBuffer`'s array;
/// returns whether it is allowed. The hot path: two arguments.
#[napi(catch_unwind)]
pub fn rate_limiter_check(rl: &External<Limiter>, key: String) -> Result<bool, Code> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(limits) = &rl.limits else {
        return Err(invalid(
            "no limits: give them to new RateLimiter({ limits }) or to check()",
        ));
    };
    let put = |i: usize, v: f64| rl.out[i].store(v.to_bits(), Relaxed);
    let mut verdicts = Vec::with_capacity(limits.len());
    let (allowed, retry_after_ms) = rl
        .inner
        .decide_into(&key, limits, None, true, &mut verdicts)
        .map_err(err)?;
    write_answer(retry_after_ms, &verdicts, put);
    Ok(allowed)
}

/// Writes a rate-limit answer as the JS side reads it: retryAfterMs at 0,
/// then remaining and resetMs of each limit (clamped to safe integers).
fn write_answer(
    retry_after_ms: u64,
    verdicts: &[irontoken::ratelimit::Verdict],
    mut put: impl FnMut(usize, f64),
) {
    let safe = |v: u64| v.min(MAX_SAFE_INTEGER) as f64;
    put(0, safe(retry_after_ms));
    for (i, v) in verdicts.iter().enumerate() {
        put(1 + 2 * i, safe(v.remaining));
        put(2 + 2 * i, safe(v.reset_ms));
    }
}

/// Counts (`consume`) or peeks one request of `key` against `limits`
/// (default: the limiter's), all-or-nothing. Writes `retryAfterMs` to
/// `out[0]`, then `remaining` and `resetMs` of each limit; returns whether
/// the request is allowed.
#[napi(catch_unwind)]
pub fn rate_limiter_decide(
    rl: &External<Limiter>,
    key: String,
    consume: bool,
    now_ms: Option<f64>,
    mut out: Float64ArraySlice<'_>,
    limits: Option<Value>,
) -> Result<bool, Code> {
    let limits: Arc<[irontoken::ratelimit::Limit]> = match (limits, &rl.limits) {
        (Some(l), _) => limits_of(l, "limits")?.into(),
        (None, Some(l)) => l.clone(),
        (None, None) => {
            return Err(invalid(
                "no limits: give them to new RateLimiter({ limits }) or to check()",
            ));
        }
    };
    if out.len() < 1 + 2 * limits.len() {
        return Err(invalid("result buffer too small"));
    }
    let now = int(now_ms, "nowMs")?;
    let mut verdicts = Vec::with_capacity(limits.len());
    let (allowed, retry_after_ms) = rl
        .inner
        .decide_into(&key, &limits, now, consume, &mut verdicts)
        .map_err(err)?;
    // SAFETY: a synchronous call on the JS thread: nothing else touches the
    // buffer while this runs.
    let out = unsafe { out.as_mut() };
    write_answer(retry_after_ms, &verdicts, |i, v| out[i] = v);
    Ok(allowed)
}

/// Number of buckets held in this process (0 for Redis or a manager).
#[napi(catch_unwind)]
pub fn rate_limiter_size(rl: &External<Limiter>) -> u32 {
    match &rl.inner {
        LimiterBackend::Shared(s) => s.len().min(u32::MAX as usize) as u32,
        LimiterBackend::Manager(_) => 0,
    }
}

/// 2^53 - 1: the largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// True if `key` has the shape and checksum of an irontoken key (no database lookup).
#[napi(catch_unwind)]
pub fn is_well_formed(key: String) -> bool {
    irontoken::keys::is_well_formed(&key)
}

/// The library version.
#[napi(catch_unwind)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
