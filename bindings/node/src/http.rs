//! The guards' HTTP answers (`irontoken::http`) for the Express and
//! Fastify adapters: status, code, message and headers come from core.

use crate::{Code, convert_keys, invalid, snake_case};
use irontoken::http::{Answer, KeyOutcome};
use napi_derive::napi;
use serde_json::Value;

/// An HTTP answer: admitted (status 200, no code) or refused.
#[napi(object)]
pub struct HttpAnswer {
    /// 200 when admitted; else 400, 401, 403, 429 or 503.
    pub status: u32,
    /// The refusal's code.
    pub code: Option<String>,
    /// The refusal's message (never a secret).
    pub message: Option<String>,
    /// Headers to send, in order, as `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
}

fn answer(a: Answer) -> HttpAnswer {
    HttpAnswer {
        status: a.status.into(),
        code: a.code,
        message: a.message,
        headers: a.headers.into_iter().map(|(k, v)| vec![k, v]).collect(),
    }
}

/// An API-key guard's answer: `outcome` holds `reason`, the key's `limits`,
/// the `rateLimit` check's answer, `quotaResetAt` and `now`.
#[napi(catch_unwind)]
pub fn http_api_key_answer(
    header: String,
    scopes: Vec<String>,
    outcome: Value,
) -> Result<HttpAnswer, napi::Error<Code>> {
    let o: KeyOutcome = serde_json::from_value(convert_keys(outcome, snake_case)).map_err(|e| {
        invalid(&format!(
            "outcome: {}",
            crate::camel_message(&e.to_string())
        ))
    })?;
    Ok(answer(irontoken::http::api_key_answer(
        &header, &scopes, &o,
    )))
}

/// A Bearer-JWT guard's answer for the code its verification ended with.
#[napi(catch_unwind)]
pub fn http_bearer_answer(code: String, scopes: Vec<String>) -> HttpAnswer {
    answer(irontoken::http::bearer_answer(&code, &scopes))
}

/// A DPoP guard's answer (RFC 9449) for the code its verification ended
/// with; `nonce` goes in a `DPoP-Nonce` header of a `use_dpop_nonce` answer.
#[napi(catch_unwind)]
pub fn http_dpop_answer(code: String, scopes: Vec<String>, nonce: Option<String>) -> HttpAnswer {
    answer(irontoken::http::dpop_answer(
        &code,
        &scopes,
        nonce.as_deref(),
    ))
}

/// A capability guard's answer for an authorization's reason (or `MISSING`).
#[napi(catch_unwind)]
pub fn http_capability_answer(reason: String) -> HttpAnswer {
    answer(irontoken::http::capability_answer(&reason))
}

/// The HTTP status of an error code (500 for an unknown one).
#[napi(catch_unwind)]
pub fn http_status_of(code: String) -> u32 {
    irontoken::http::status_of(&code).into()
}

/// What an LLM request declares, or the 400 answer refusing it.
#[napi(object)]
pub struct HttpLlmRequest {
    /// The refusal, when the request is refused.
    pub answer: Option<HttpAnswer>,
    /// The model, when the guard checks it.
    pub model: Option<String>,
    /// The tokens, when checked and declared.
    pub tokens: Option<f64>,
}

/// The body fields an LLM guard reads (model, then the token fields in
/// order): an adapter may pass just these to `httpLlmRequest`.
#[napi(catch_unwind)]
pub fn http_llm_body_fields() -> Vec<String> {
    irontoken::http::LLM_BODY_FIELDS
        .iter()
        .map(|f| f.to_string())
        .collect()
}

/// What an LLM request declares, read where its guard was told: each
/// source is "" (not checked), "body" (from `body`, the parsed JSON body or
/// null) or "value" (the given value, what the application's function
/// returned).
#[napi(catch_unwind)]
pub fn http_llm_request(
    body: Option<Value>,
    model_source: String,
    model: Option<Value>,
    tokens_source: String,
    tokens: Option<Value>,
) -> Result<HttpLlmRequest, napi::Error<Code>> {
    use irontoken::http::Declared;
    let (model, tokens) = (model.unwrap_or(Value::Null), tokens.unwrap_or(Value::Null));
    let named = |source: &str, v| Declared::named(source, v).map_err(crate::error::err);
    Ok(
        match irontoken::http::llm_request(
            body.as_ref(),
            named(&model_source, &model)?,
            named(&tokens_source, &tokens)?,
        ) {
            Ok(r) => HttpLlmRequest {
                answer: None,
                model: r.model,
                tokens: r.tokens.map(|t| t as f64),
            },
            Err(a) => HttpLlmRequest {
                answer: Some(answer(a)),
                model: None,
                tokens: None,
            },
        },
    )
}
