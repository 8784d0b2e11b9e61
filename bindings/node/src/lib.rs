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
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub usage_count: i64,
    pub enabled: bool,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub version: u32,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    pub status: String,
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
        }
    }
}

/// The answer of `verifyKey`: a normal result, not an exception. The record
/// is converted to a JS object only when read (most callers need `valid`).
#[napi]
pub struct VerifyResult {
    valid: bool,
    reason: &'static str,
    record: Option<CoreRecord>,
}

#[napi]
impl VerifyResult {
    /// True only when `reason` is "VALID".
    #[napi(getter)]
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// Why: "VALID", "MALFORMED", "NOT_FOUND", "DISABLED", "REVOKED", "EXPIRED", "INSUFFICIENT_SCOPE".
    #[napi(getter)]
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The key's record when the key was found, else undefined.
    #[napi(getter)]
    pub fn record(&self) -> Option<KeyRecord> {
        self.record.clone().map(Into::into)
    }
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
        actor: o.actor,
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
    #[napi(getter)]
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// The stored record.
    #[napi(getter)]
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
        f().map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()))
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
    #[napi(constructor)]
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
            },
        };
        let core = Core::open_with(&path, settings.into_options().map_err(err)?).map_err(err)?;
        Ok(TokenManager {
            inner: Mutex::new(Some(Arc::new(core))),
        })
    }

    /// Creates a key; the returned `key` is the only time the plaintext exists.
    #[napi]
    pub fn create_key(&self, options: CreateKeyOptions) -> Result<CreatedKey, Code> {
        let tm = self.core()?;
        let req = new_key_of(options)?;
        Ok(tm.create_key(&req).map_err(err)?.into())
    }

    /// Verifies a key; a refusal is `{ valid: false, reason }`, not an exception.
    #[napi]
    pub fn verify_key(
        &self,
        key: String,
        required_scopes: Option<Vec<String>>,
    ) -> Result<VerifyResult, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let v = tm.verify_key(&key, &s).map_err(err)?;
        Ok(VerifyResult {
            valid: v.valid,
            reason: v.reason.code(),
            record: v.record,
        })
    }

    /// The record of key `keyId`.
    #[napi]
    pub fn get_key(&self, key_id: String) -> Result<KeyRecord, Code> {
        Ok(self.core()?.get_key(&key_id).map_err(err)?.into())
    }

    /// One page of keys, oldest first.
    #[napi]
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
    #[napi]
    pub fn update_key(&self, key_id: String, options: UpdateKeyOptions) -> Result<KeyRecord, Code> {
        let tm = self.core()?;
        let expires_at = int(options.expires_at, "expiresAt")?;
        let clear = options.clear_expiry.unwrap_or(false);
        if clear && expires_at.is_some() {
            return Err(invalid("give expiresAt or clearExpiry, not both"));
        }
        let u = KeyUpdate {
            name: options.name,
            description: options.description,
            scopes: options.scopes,
            metadata: object(options.metadata, "metadata")?,
            expires_at: if clear {
                Some(None)
            } else {
                expires_at.map(Some)
            },
            actor: options.actor,
        };
        Ok(tm.update_key(&key_id, &u).map_err(err)?.into())
    }

    /// Disables a key until `enableKey`.
    #[napi]
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
    #[napi]
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
    #[napi]
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
    #[napi]
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
    #[napi]
    pub fn delete_key(&self, key_id: String, options: Option<ActorOptions>) -> Result<(), Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .delete_key(&key_id, actor.as_deref())
            .map_err(err)
    }

    /// One page of the audit trail, newest first.
    #[napi]
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
    #[napi]
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
    #[napi]
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
    #[napi]
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
    #[napi]
    pub fn list_signing_keys(&self) -> Result<Value, Code> {
        let keys = self.core()?.list_signing_keys().map_err(err)?;
        value_of(keys)
    }

    /// The public JWKS of the keys that verify now.
    #[napi]
    pub fn jwks(&self) -> Result<Value, Code> {
        self.core()?.jwks().map_err(err)
    }

    /// Signs `claims` with the active managed key.
    #[napi]
    pub fn issue_jwt(&self, claims: Value, options: Option<IssueOptions>) -> Result<String, Code> {
        let c = object(Some(claims), "claims")?.unwrap_or_default();
        let ttl = match options {
            None => None,
            Some(o) => int(o.ttl_seconds, "ttlSeconds")?,
        };
        self.core()?.issue_jwt(&c, ttl).map_err(err)
    }

    /// Verifies a token issued by this manager's keys (policy as JSON).
    #[napi]
    pub fn verify_jwt(&self, token: String, policy_json: String) -> Result<VerifiedJwt, Code> {
        let policy = policy_of(&policy_json)?;
        self.core()?
            .verify_jwt(&token, &policy)
            .map(verified)
            .map_err(err)
    }

    /// Exchanges a valid API key for a short-lived access token.
    #[napi]
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
    #[napi(ts_return_type = "Promise<CreatedKey>")]
    pub fn create_key_async(
        &self,
        options: CreateKeyOptions,
    ) -> Result<AsyncTask<Job<CreatedKey>>, Code> {
        let tm = self.core()?;
        let req = new_key_of(options)?;
        Ok(Job::new(move || tm.create_key(&req).map(Into::into)))
    }

    /// `verifyKey` off the JS thread.
    #[napi(ts_return_type = "Promise<VerifyResult>")]
    pub fn verify_key_async(
        &self,
        key: String,
        required_scopes: Option<Vec<String>>,
    ) -> Result<AsyncTask<Job<VerifyResult>>, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        Ok(Job::new(move || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.verify_key(&key, &s).map(|v| VerifyResult {
                valid: v.valid,
                reason: v.reason.code(),
                record: v.record,
            })
        }))
    }

    /// `revokeKey` off the JS thread.
    #[napi(ts_return_type = "Promise<KeyRecord>")]
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
    #[napi(ts_return_type = "Promise<CreatedKey>")]
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
    #[napi(ts_return_type = "Promise<ManagedKey>")]
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
    #[napi(ts_return_type = "Promise<ManagedKey>")]
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
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush_async(&self) -> Result<AsyncTask<Job<()>>, Code> {
        let tm = self.core()?;
        Ok(Job::new(move || tm.flush()))
    }

    /// Counters in the Prometheus text exposition format.
    #[napi]
    pub fn metrics(&self) -> Result<String, Code> {
        Ok(self.core()?.metrics())
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    #[napi]
    pub fn flush(&self) -> Result<(), Code> {
        self.core()?.flush().map_err(err)
    }

    /// Moves a manual clock (opened with `manualClockStart`); returns the new time.
    #[napi]
    pub fn advance_clock(&self, seconds: f64) -> Result<i64, Code> {
        let s = int(Some(seconds), "seconds")?.unwrap_or(0);
        self.core()?.advance_clock(s).map_err(err)
    }

    /// The manager's current time (Unix seconds).
    #[napi]
    pub fn now(&self) -> Result<i64, Code> {
        Ok(self.core()?.now())
    }

    /// Flushes and closes; later calls throw.
    #[napi]
    pub fn close(&self) -> Result<(), Code> {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(tm) => tm.flush().map_err(err),
            None => Ok(()),
        }
    }
}

fn keyring_of(key: Either<String, Buffer>) -> Result<irontoken::jwt::Keyring, Code> {
    use irontoken::jwt::{Keyring, VerifyingKey};
    match key {
        Either::A(text) => Keyring::from_text(&text),
        Either::B(bytes) => VerifyingKey::hmac(&bytes).map(Keyring::single),
    }
    .map_err(err)
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
    /// Parses `key` (PEM, JWK, JWKS, secret string, or Buffer secret) and the policy JSON.
    #[napi(constructor)]
    pub fn new(key: Either<String, Buffer>, policy_json: String) -> Result<Self, Code> {
        Ok(JwtVerifier(irontoken::jwt::Verifier::new(
            keyring_of(key)?,
            policy_of(&policy_json)?,
        )))
    }

    /// Verifies a JWT (at `now`, Unix seconds, or the system clock).
    #[napi]
    pub fn verify(&self, token: String, now: Option<f64>) -> Result<VerifiedJwt, Code> {
        let d = match int(now, "now")? {
            Some(t) => self.0.decode_at(&token, t),
            None => self.0.decode(&token),
        };
        d.map(verified).map_err(err)
    }

    /// Verifies a compact JWS (signature and header only).
    #[napi]
    pub fn verify_jws(&self, token: String) -> Result<VerifiedJws, Code> {
        let d = self.0.verify_jws(&token).map_err(err)?;
        Ok(VerifiedJws {
            payload: d.payload.into(),
            protected_header: Value::Object(d.header),
        })
    }
}

/// A signing key and algorithm parsed once, for many tokens.
#[napi]
pub struct JwtSigner(irontoken::jwt::Signer);

#[napi]
impl JwtSigner {
    /// Parses `key` (PEM private key or secret string, or Buffer secret) for `algorithm`.
    #[napi(constructor)]
    pub fn new(
        key: Either<String, Buffer>,
        algorithm: String,
        kid: Option<String>,
    ) -> Result<Self, Code> {
        use irontoken::jwt::{Signer, SigningKey};
        let sk = match key {
            Either::A(text) => SigningKey::from_text(&text),
            Either::B(bytes) => SigningKey::hmac(&bytes),
        }
        .map_err(err)?;
        Signer::named(sk, &algorithm, kid.as_deref())
            .map(JwtSigner)
            .map_err(err)
    }

    /// Signs `payload` (with optional extra header parameters).
    #[napi]
    pub fn sign(&self, payload: Value, header: Option<Value>) -> Result<String, Code> {
        let claims = object(Some(payload), "payload")?.unwrap_or_default();
        let header = object(header, "header")?;
        self.0.sign(&claims, header.as_ref()).map_err(err)
    }
}

/// Signs `payload` into a compact JWT.
#[napi]
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
#[napi]
pub fn jose_code(code: String) -> Option<String> {
    irontoken::ErrorKind::from_code(&code)
        .and_then(|k| k.jose_code())
        .map(str::to_string)
}

/// In-process rate limiter (GCRA buckets per key and named limit).
#[napi]
pub struct RateLimiter(irontoken::ratelimit::RateLimiter);

fn limits_from(limits: Value) -> Result<Vec<irontoken::ratelimit::Limit>, Code> {
    serde_json::from_value(limits).map_err(|e| invalid(&format!("limits: {e}")))
}

#[napi]
impl RateLimiter {
    /// A limiter keeping about `maxBuckets` buckets before evicting full ones.
    #[napi(constructor)]
    pub fn new(max_buckets: Option<f64>) -> Result<Self, Code> {
        let n = int(max_buckets, "maxBuckets")?.unwrap_or(1_000_000).max(1) as usize;
        Ok(RateLimiter(irontoken::ratelimit::RateLimiter::new(n)))
    }

    /// Counts one request of `key` against every limit (all-or-nothing).
    #[napi]
    pub fn check(&self, key: String, limits: Value, now_ms: Option<f64>) -> Result<Value, Code> {
        let limits = limits_from(limits)?;
        let now = int(now_ms, "nowMs")?.unwrap_or_else(irontoken::SystemClock::now_ms);
        let d = self.0.check(&key, &limits, now).map_err(err)?;
        value_of(d)
    }

    /// Answers as `check` would, without counting the request.
    #[napi]
    pub fn peek(&self, key: String, limits: Value, now_ms: Option<f64>) -> Result<Value, Code> {
        let limits = limits_from(limits)?;
        let now = int(now_ms, "nowMs")?.unwrap_or_else(irontoken::SystemClock::now_ms);
        let d = self.0.peek(&key, &limits, now).map_err(err)?;
        value_of(d)
    }

    /// Number of buckets held.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.0.len().min(u32::MAX as usize) as u32
    }
}

/// True if `key` has the shape and checksum of an irontoken key (no database lookup).
#[napi]
pub fn is_well_formed(key: String) -> bool {
    irontoken::keys::is_well_formed(&key)
}

/// The library version.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
