//! Core answers as JS values: records, pages, created keys, and JSON text
//! turned into objects with camelCase names (exact integers kept).

use super::*;

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
    /// Models the key may call (wildcard patterns; empty: any).
    pub models: Vec<String>,
    /// Most tokens one request may declare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_request: Option<i64>,
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
            models: r.models,
            max_tokens_per_request: r.max_tokens_per_request.map(|n| n as i64),
        }
    }
}

/// `verifyKey`'s answer as text: the reason, then, when the key was found, a
/// newline and the record as JSON. index.js builds its `VerifyResult` from
/// it and parses the record only when read: no native object per result, so
/// nothing waits for a finalizer (a loop of 2M synchronous verifications
/// held 1.7 GB when each result wrapped a native record).
pub(crate) fn verify_text(v: irontoken::Verification) -> irontoken::Result<String> {
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

/// A key just created or rotated. `key` is the plaintext, available only now;
/// it is a getter so that logging the object does not print it.
#[napi]
pub struct CreatedKey {
    pub(crate) key: String,
    pub(crate) record: CoreRecord,
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
pub struct Json(pub(crate) String);

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
pub(crate) fn verify_with_text(v: irontoken::Verification) -> std::result::Result<Json, CoreError> {
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

pub(crate) fn internal(e: serde_json::Error) -> CoreError {
    CoreError::new(irontoken::ErrorKind::Internal, e.to_string())
}

/// A serializable core answer as a JSON value with camelCase keys.
pub(crate) fn camel_value<T: serde::Serialize>(v: T) -> std::result::Result<Value, CoreError> {
    serde_json::to_value(v)
        .map(|v| convert_keys(v, camel_case))
        .map_err(internal)
}

pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> std::result::Result<Json, CoreError> {
    serde_json::to_string(v).map(Json).map_err(internal)
}

pub(crate) const VERBATIM: [&str; 2] = ["metadata", "detail"];

pub(crate) fn convert_keys(v: Value, key: fn(&str) -> String) -> Value {
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
pub(crate) fn safe_integer(n: serde_json::Number) -> serde_json::Number {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= MAX_SAFE => {
            serde_json::Number::from(f as i64)
        }
        _ => n,
    }
}

pub(crate) fn snake_case(k: &str) -> String {
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

pub(crate) fn camel_case(k: &str) -> String {
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

/// serde names fields in snake_case; JS callers wrote camelCase.
pub(crate) fn camel_message(m: &str) -> String {
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
pub(crate) fn ans<T: serde::Serialize>(r: std::result::Result<T, CoreError>) -> Result<Json, Code> {
    json_ans(r).map_err(err)
}

/// [`ans`] for the `*Async` jobs.
pub(crate) fn json_ans<T: serde::Serialize>(
    r: std::result::Result<T, CoreError>,
) -> std::result::Result<Json, CoreError> {
    json_text(&camel_value(r?)?)
}
