//! JS arguments as core values: numbers that must be integers, option
//! objects (camelCase) as core requests, keys given as strings or bytes.

use super::*;

pub(crate) fn object(v: Option<Value>, what: &str) -> Result<Option<Map<String, Value>>, Code> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(&format!("{what} must be a plain object"))),
    }
}

pub(crate) fn int(v: Option<f64>, what: &str) -> Result<Option<i64>, Code> {
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
pub(crate) fn uint<T: TryFrom<i64>>(v: Option<f64>, what: &str) -> Result<Option<T>, Code> {
    int(v, what)?
        .map(|n| T::try_from(n).map_err(|_| invalid(&format!("{what} is negative or too large"))))
        .transpose()
}

pub(crate) fn limit(v: Option<f64>) -> Result<Option<u32>, Code> {
    match int(v, "limit")? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid("limit must be 1-1000")),
    }
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
    /// SQLite page cache per connection, MiB (default 2).
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
    /// Quota alert levels, spend spikes and the alert webhook.
    #[napi(ts_type = "AlertSettings")]
    pub alerts: Option<Value>,
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
    /// Models the key may call (wildcard patterns, `gpt-4o*`; default: any).
    pub models: Option<Vec<String>>,
    /// Most tokens one request may declare (`verifyKeyWith(key, { tokens })`).
    pub max_tokens_per_request: Option<f64>,
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

pub(crate) fn rotate_due_of(o: Option<RotateDueOptions>) -> Result<(i64, Option<String>), Code> {
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
    /// Replaces the model allow-list ([] allows any model).
    pub models: Option<Vec<String>>,
    pub max_tokens_per_request: Option<f64>,
    pub clear_max_tokens_per_request: Option<bool>,
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
pub(crate) fn new_keys_of(requests: Vec<CreateKeyOptions>) -> Result<Vec<NewKey>, Code> {
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

pub(crate) fn new_key_of(o: CreateKeyOptions) -> Result<NewKey, Code> {
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
        models: o.models.unwrap_or_default(),
        max_tokens_per_request: uint(o.max_tokens_per_request, "maxTokensPerRequest")?,
        actor: o.actor,
    })
}

pub(crate) fn import_of(o: ImportKeyOptions) -> Result<irontoken::ImportKey, Code> {
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

pub(crate) fn imports_of(keys: Vec<ImportKeyOptions>) -> Result<Vec<irontoken::ImportKey>, Code> {
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

pub(crate) fn limits_of(v: Value, what: &str) -> Result<Vec<irontoken::ratelimit::Limit>, Code> {
    serde_json::from_value(convert_keys(v, snake_case))
        .map_err(|e| invalid(&format!("{what}: {}", camel_message(&e.to_string()))))
}

pub(crate) fn key_update_of(options: UpdateKeyOptions) -> Result<KeyUpdate, Code> {
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
        models: options.models,
        max_tokens_per_request: KeyUpdate::cleared(
            uint(options.max_tokens_per_request, "maxTokensPerRequest")?,
            options.clear_max_tokens_per_request.unwrap_or(false),
            "maxTokensPerRequest",
        )
        .map_err(err)?,
        actor: options.actor,
    })
}

pub(crate) fn rotate_options_of(options: Option<RotateKeyOptions>) -> Result<RotateOptions, Code> {
    Ok(match options {
        None => RotateOptions::default(),
        Some(o) => RotateOptions {
            overlap_seconds: int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
            expires_at: int(o.expires_at, "expiresAt")?.map(Some),
            actor: o.actor,
        },
    })
}

pub(crate) fn alg_of(name: &str) -> Result<irontoken::jwt::Alg, Code> {
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

/// A JS options object as the core request `T`.
pub(crate) fn req<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, Code> {
    if !v.is_object() {
        return Err(invalid(&format!("{what} must be a plain object")));
    }
    serde_json::from_value(convert_keys(v, snake_case))
        .map_err(|e| invalid(&format!("{what}: {}", camel_message(&e.to_string()))))
}

/// Like [`req`], with all defaults when the argument is absent.
pub(crate) fn req_or_default<T: serde::de::DeserializeOwned + Default>(
    v: Option<Value>,
    what: &str,
) -> Result<T, Code> {
    match v {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => req(v, what),
    }
}

pub(crate) fn micros(v: f64) -> Result<u64, Code> {
    u64::try_from(int(Some(v), "amountMicros")?.unwrap_or(0))
        .map_err(|_| invalid("amountMicros must be >= 0"))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EndOptions {
    pub(crate) reason: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TtlOptions {
    pub(crate) ttl_seconds: Option<i64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ScopeOptions {
    pub(crate) scope: irontoken::QuotaScope,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreditOptions {
    pub(crate) metric: irontoken::QuotaMetric,
    #[serde(default)]
    pub(crate) scope: irontoken::QuotaScope,
}

/// 2^53 - 1: the largest integer a JS number holds exactly.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

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
