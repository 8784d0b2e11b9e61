//! What an HTTP service answers for a credential: the status, the error
//! code and message, and the headers (`WWW-Authenticate`, `Retry-After`,
//! the IETF `RateLimit-Policy` / `RateLimit`). The FastAPI, Express and
//! Fastify adapters call these functions and only wrap the answer in their
//! framework's response; `tests/vectors/http.json` holds the cases every
//! suite runs.
//!
//! - [`api_key_answer`]: an API-key guard's answer, from the facts of one
//!   verification ([`KeyOutcome`]).
//! - [`bearer_answer`]: a Bearer-JWT guard's answer, from the code a
//!   verification ended with.
//! - [`llm_request`]: what an LLM request declares (model, tokens), read
//!   from its JSON body or given, or the 400 refusing it.
//! - [`ErrorKind::http_status`] (and [`status_of`] for a code as text): the
//!   status of an error raised by the application's own routes.
//!
//! No answer carries a credential or a server detail: a 503 says only that
//! authentication is unavailable.

use crate::error::ErrorKind;
use serde::{Deserialize, Serialize};

/// An HTTP answer: admitted (`status` 200, no code) or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// 200 when admitted; else 400, 401, 403, 429 or 503.
    pub status: u16,
    /// The refusal's code (`MISSING`, `REVOKED`, `JWT_EXPIRED`, ...).
    pub code: Option<String>,
    /// The refusal's message, for the client (never a secret).
    pub message: Option<String>,
    /// Headers to send, in order (also on an admission: the rate-limit ones).
    pub headers: Vec<(String, String)>,
}

/// A key's rate limit as its record lists it (`record.rate_limits`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LimitPolicy {
    /// The limit's name.
    pub name: String,
    /// Requests per period.
    pub count: u64,
    /// Period length in milliseconds.
    pub period_ms: u64,
}

/// One limit's state after a check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LimitNow {
    /// The limit's name.
    pub name: String,
    /// Requests still allowed.
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

/// A rate-limit check's answer (`result.rate_limit`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RateNow {
    /// Allowed unchecked by fail-open: the limits' state is unknown.
    pub degraded: bool,
    /// Milliseconds to wait before a retry may pass.
    pub retry_after_ms: u64,
    /// Each limit's state.
    pub limits: Vec<LimitNow>,
}

/// The facts of one API-key verification an HTTP answer depends on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyOutcome {
    /// The verification's reason (`VALID`, `NOT_FOUND`, `RATE_LIMITED`, ...),
    /// `MISSING` when the request carried no key, `CREDENTIAL_IN_QUERY`, or an
    /// error code when the store could not answer (`STORAGE`, `BUSY`).
    pub reason: String,
    /// The key's rate limits (from its record; empty when not found).
    pub limits: Vec<LimitPolicy>,
    /// The rate-limit check's answer, when one ran.
    pub rate_limit: Option<RateNow>,
    /// When the quota that refused the request starts a new window.
    pub quota_reset_at: Option<i64>,
    /// The manager's clock, seconds (for `Retry-After` of a quota).
    pub now: i64,
}

/// The message of each refusal an API-key guard gives.
fn key_message(reason: &str) -> &'static str {
    match reason {
        "MISSING" => "an API key is required",
        "MALFORMED" | "NOT_FOUND" => "the API key is not valid",
        "EXPIRED" => "the API key has expired",
        "DISABLED" => "the API key is disabled",
        "REVOKED" => "the API key has been revoked",
        "INSUFFICIENT_SCOPE" => "the API key lacks a required scope",
        "RATE_LIMITED" => "too many requests",
        "USAGE_EXCEEDED" => "the usage quota is exhausted",
        "MODEL_NOT_ALLOWED" => "the API key may not call this model",
        "REQUEST_TOO_LARGE" => "the request declares more tokens than the API key allows at once",
        _ => "the API key was refused",
    }
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

fn refusal(status: u16, code: &str, message: &str, headers: Vec<(String, String)>) -> Answer {
    Answer {
        status,
        code: Some(code.to_string()),
        message: Some(message.to_string()),
        headers,
    }
}

/// Whole seconds, rounded up.
fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The answer when a credential sits in the query string: nothing was checked.
pub fn query_refusal() -> Answer {
    refusal(
        400,
        "CREDENTIAL_IN_QUERY",
        "credentials go in a header, never in the URL (URLs are logged): nothing was checked",
        Vec::new(),
    )
}

/// The answer when the store could not judge the credential (`code` is
/// `STORAGE`, `BUSY`, `JWKS_FETCH_FAILED`...): 503, retry in a second.
pub fn unavailable(code: &str) -> Answer {
    refusal(
        503,
        code,
        "authentication is unavailable, retry",
        vec![header("Retry-After", "1")],
    )
}

/// The IETF `RateLimit-Policy` and `RateLimit` headers of a key's limits and
/// a check's answer; none when the key has no limits or the answer is
/// degraded (a made-up `r=0` would tell the client to stop).
pub fn rate_limit_headers(
    limits: &[LimitPolicy],
    state: Option<&RateNow>,
) -> Vec<(String, String)> {
    let Some(state) = state else {
        return Vec::new();
    };
    if limits.is_empty() || state.degraded {
        return Vec::new();
    }
    let policy = limits
        .iter()
        .map(|l| {
            format!(
                "\"{}\";q={};w={}",
                l.name,
                l.count,
                seconds(l.period_ms).max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = vec![header("RateLimit-Policy", policy)];
    if !state.limits.is_empty() {
        let now = state
            .limits
            .iter()
            .map(|s| format!("\"{}\";r={};t={}", s.name, s.remaining, seconds(s.reset_ms)))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(header("RateLimit", now));
    }
    out
}

/// An API-key guard's answer for `outcome`, the key read from header
/// `header_name` and `scopes` required: 200 with the rate-limit headers,
/// 401 (`WWW-Authenticate: ApiKey header="..."`), 403 naming the scopes,
/// 429 with `Retry-After`, 403 for a model the key may not call, 413 for
/// more tokens than it allows at once, 400 for a credential in the query, 503 when the
/// store could not answer.
pub fn api_key_answer(header_name: &str, scopes: &[String], outcome: &KeyOutcome) -> Answer {
    let challenge = format!("ApiKey header=\"{header_name}\"");
    let reason = outcome.reason.as_str();
    let limit_headers = rate_limit_headers(&outcome.limits, outcome.rate_limit.as_ref());
    let message = key_message(reason);
    match reason {
        "VALID" => Answer {
            status: 200,
            code: None,
            message: None,
            headers: limit_headers,
        },
        "CREDENTIAL_IN_QUERY" => query_refusal(),
        "MISSING" => refusal(
            401,
            reason,
            message,
            vec![header("WWW-Authenticate", challenge)],
        ),
        "MALFORMED" | "NOT_FOUND" | "EXPIRED" | "DISABLED" | "REVOKED" => refusal(
            401,
            reason,
            message,
            vec![header(
                "WWW-Authenticate",
                format!("{challenge}, error=\"invalid_key\""),
            )],
        ),
        "INSUFFICIENT_SCOPE" => refusal(
            403,
            reason,
            message,
            vec![header(
                "WWW-Authenticate",
                format!(
                    "{challenge}, error=\"insufficient_scope\", scope=\"{}\"",
                    scopes.join(" ")
                ),
            )],
        ),
        "RATE_LIMITED" => {
            let wait = outcome
                .rate_limit
                .as_ref()
                .map_or(1000, |r| r.retry_after_ms);
            let mut headers = vec![header("Retry-After", seconds(wait).max(1).to_string())];
            headers.extend(limit_headers);
            refusal(429, reason, message, headers)
        }
        "USAGE_EXCEEDED" => {
            let mut headers = limit_headers;
            if let Some(reset) = outcome.quota_reset_at {
                let wait = reset.saturating_sub(outcome.now).max(1);
                headers.push(header("Retry-After", wait.to_string()));
            }
            refusal(429, reason, message, headers)
        }
        // A policy refusal: no other credential, and no wait, would mend it.
        "MODEL_NOT_ALLOWED" => refusal(403, reason, message, Vec::new()),
        "REQUEST_TOO_LARGE" => refusal(413, reason, message, Vec::new()),
        code if ErrorKind::from_code(code).is_some_and(|k| k.http_status() == 503) => {
            unavailable(code)
        }
        _ => refusal(
            401,
            reason,
            message,
            vec![header("WWW-Authenticate", challenge)],
        ),
    }
}

/// A Bearer-JWT guard's answer for the code its verification ended with:
/// `VALID` (200), `MISSING`, a `JWT_*` refusal (401 `invalid_token`),
/// `INSUFFICIENT_SCOPE` (403 naming `scopes`), `CREDENTIAL_IN_QUERY` (400),
/// anything else 503 (a JWKS that cannot be fetched: the token was not judged).
pub fn bearer_answer(code: &str, scopes: &[String]) -> Answer {
    match code {
        "VALID" => Answer {
            status: 200,
            code: None,
            message: None,
            headers: Vec::new(),
        },
        "CREDENTIAL_IN_QUERY" => query_refusal(),
        "MISSING" => refusal(
            401,
            code,
            "a Bearer token is required",
            vec![header("WWW-Authenticate", "Bearer realm=\"api\"")],
        ),
        "INSUFFICIENT_SCOPE" => refusal(
            403,
            code,
            "the token lacks a required scope",
            vec![header(
                "WWW-Authenticate",
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    scopes.join(" ")
                ),
            )],
        ),
        c if refused_token(c) => refusal(
            401,
            c,
            "the token was refused",
            vec![header(
                "WWW-Authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{c}\""),
            )],
        ),
        c => unavailable(c),
    }
}

/// Codes that judge the token (401), rather than a store that did not answer.
fn refused_token(code: &str) -> bool {
    code.starts_with("JWT_") || code.starts_with("DPOP_") || code.starts_with("MTLS_")
}

/// A DPoP guard's answer (RFC 9449 §7.1) for the code its verification
/// ended with: `WWW-Authenticate: DPoP` with `algs`, and `error` =
/// `invalid_dpop_proof`, `use_dpop_nonce` (with a fresh `DPoP-Nonce`
/// header when `nonce` is given), `invalid_token` or `insufficient_scope`.
pub fn dpop_answer(code: &str, scopes: &[String], nonce: Option<&str>) -> Answer {
    let algs: Vec<&str> = crate::jwt::dpop::DPOP_ALGS
        .iter()
        .map(|a| a.as_str())
        .collect();
    let challenge = |error: Option<&str>| {
        let mut v = format!("DPoP algs=\"{}\"", algs.join(" "));
        if let Some(e) = error {
            v.push_str(&format!(", error=\"{e}\", error_description=\"{code}\""));
        }
        header("WWW-Authenticate", v)
    };
    match code {
        "VALID" => bearer_answer(code, scopes),
        "CREDENTIAL_IN_QUERY" => query_refusal(),
        "MISSING" => refusal(
            401,
            code,
            "a DPoP-bound token and its DPoP proof are required",
            vec![challenge(None)],
        ),
        "INSUFFICIENT_SCOPE" => refusal(
            403,
            code,
            "the token lacks a required scope",
            vec![header(
                "WWW-Authenticate",
                format!(
                    "DPoP error=\"insufficient_scope\", scope=\"{}\"",
                    scopes.join(" ")
                ),
            )],
        ),
        "DPOP_NONCE_REQUIRED" => {
            let mut h = vec![challenge(Some("use_dpop_nonce"))];
            if let Some(n) = nonce {
                h.push(header("DPoP-Nonce", n));
            }
            refusal(401, code, "the DPoP proof must carry the server's nonce", h)
        }
        "DPOP_PROOF_INVALID" | "DPOP_PROOF_REPLAYED" => refusal(
            401,
            code,
            "the DPoP proof was refused",
            vec![challenge(Some("invalid_dpop_proof"))],
        ),
        c if refused_token(c) => refusal(
            401,
            c,
            "the token was refused",
            vec![challenge(Some("invalid_token"))],
        ),
        c => unavailable(c),
    }
}

/// A capability guard's answer for an authorization's reason (or `MISSING`
/// when no Bearer token came): 401 for a token that is not a live one of
/// ours (malformed, forged, revoked, expired, its key inactive), 403 for a
/// call the token does not allow, 429 for a ceiling or lease spent, 503 for
/// a store that did not answer.
pub fn capability_answer(reason: &str) -> Answer {
    let invalid = || {
        vec![header(
            "WWW-Authenticate",
            format!("Bearer error=\"invalid_token\", error_description=\"{reason}\""),
        )]
    };
    match reason {
        "OK" => Answer {
            status: 200,
            code: None,
            message: None,
            headers: Vec::new(),
        },
        "CREDENTIAL_IN_QUERY" => query_refusal(),
        "MISSING" => refusal(
            401,
            reason,
            "a Bearer capability token is required",
            vec![header("WWW-Authenticate", "Bearer realm=\"api\"")],
        ),
        "CAPABILITY_MALFORMED"
        | "CAPABILITY_BAD_SIGNATURE"
        | "CAPABILITY_REVOKED"
        | "CAPABILITY_EXPIRED"
        | "KEY_NOT_FOUND"
        | "KEY_DISABLED"
        | "KEY_REVOKED"
        | "KEY_EXPIRED" => refusal(401, reason, "the capability token was refused", invalid()),
        "TOOL_NOT_ALLOWED" | "CAPABILITY_DENIED" | "CAPABILITY_TOO_COMPLEX" => refusal(
            403,
            reason,
            "the capability token does not allow this call",
            vec![header(
                "WWW-Authenticate",
                format!("Bearer error=\"insufficient_scope\", error_description=\"{reason}\""),
            )],
        ),
        "CEILING_EXCEEDED" | "BUDGET_EXCEEDED" => refusal(
            429,
            reason,
            "the capability's spending ceiling or budget is spent",
            Vec::new(),
        ),
        c => unavailable(c),
    }
}

/// The top-level fields of an OpenAI- or Anthropic-shaped JSON body that
/// [`llm_request`] reads: the model, then the fields bounding the request's
/// output tokens, in the order read (the first present counts). An adapter
/// may pass the body with only these fields.
pub const LLM_BODY_FIELDS: [&str; 4] = [
    "model",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
];

/// Where an LLM guard reads one fact of a request (its model, its tokens).
#[derive(Debug, Clone, Copy)]
pub enum Declared<'a> {
    /// Not checked.
    Unchecked,
    /// The request's JSON body (see [`LLM_BODY_FIELDS`]).
    InBody,
    /// What the application's function returned (JSON null: nothing).
    Given(&'a serde_json::Value),
}

impl<'a> Declared<'a> {
    /// A source by the name the bindings take: "" (not checked), "body", or
    /// "value" (then `value`).
    pub fn named(source: &str, value: &'a serde_json::Value) -> crate::Result<Declared<'a>> {
        Ok(match source {
            "" => Declared::Unchecked,
            "body" => Declared::InBody,
            "value" => Declared::Given(value),
            other => {
                return Err(crate::Error::invalid(format!(
                    "a source must be \"\", \"body\" or \"value\" (got {other:?})"
                )));
            }
        })
    }
}

/// What an LLM request declares: the model it calls, the tokens it may use.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct LlmRequest {
    /// The model, when the guard checks it.
    pub model: Option<String>,
    /// The tokens, when the guard checks them and the request declares some.
    pub tokens: Option<u64>,
}

/// The model and tokens a request declares, read where its guard was told
/// (`body`: the request's parsed JSON body, if it parsed), or the 400
/// answer: a body that is not a JSON object when one is read; no model (or
/// not a non-empty string) when the model is checked — the guard fails
/// closed rather than let a request past an allow-list; a token count that
/// is not an integer from 0 to 2^53 - 1. A request declaring no tokens
/// passes (its tokens are not counted).
pub fn llm_request(
    body: Option<&serde_json::Value>,
    model: Declared<'_>,
    tokens: Declared<'_>,
) -> Result<LlmRequest, Answer> {
    use serde_json::Value;
    let bad = |message: &str| refusal(400, "INVALID_ARGUMENT", message, Vec::new());
    let read = |d: Declared<'_>, fields: &[&str]| -> Result<Option<Value>, Answer> {
        Ok(match d {
            Declared::Unchecked => None,
            Declared::Given(v) => Some(v.clone()),
            Declared::InBody => {
                let Some(Value::Object(b)) = body else {
                    return Err(bad(
                        "the request body must be a JSON object (parsed before the guard)",
                    ));
                };
                Some(
                    fields
                        .iter()
                        .find_map(|f| b.get(*f))
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            }
        })
    };
    let mut out = LlmRequest::default();
    if let Some(v) = read(model, &LLM_BODY_FIELDS[..1])? {
        match v {
            Value::String(s) if !s.is_empty() => out.model = Some(s),
            _ => return Err(bad("the request names no model")),
        }
    }
    if let Some(v) = read(tokens, &LLM_BODY_FIELDS[1..])? {
        out.tokens = match &v {
            Value::Null => None,
            Value::Number(n) => Some(
                n.as_u64()
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                            .map(|f| f as u64)
                    })
                    .filter(|n| *n <= crate::model::keys::MAX_TOKENS)
                    .ok_or_else(|| {
                        bad("the request's token count must be an integer from 0 to 2^53 - 1")
                    })?,
            ),
            _ => {
                return Err(bad(
                    "the request's token count must be an integer from 0 to 2^53 - 1",
                ));
            }
        };
    }
    Ok(out)
}

/// The HTTP status of an error code (`KEY_NOT_FOUND` → 404); 500 for a code
/// irontoken does not have.
pub fn status_of(code: &str) -> u16 {
    ErrorKind::from_code(code).map_or(500, ErrorKind::http_status)
}
