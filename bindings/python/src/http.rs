//! The guards' HTTP answers (`irontoken::http`) for the FastAPI adapter:
//! status, code, message and headers come from core.

use crate::error::to_py;
use irontoken::Error;
use irontoken::http::{Answer, KeyOutcome};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// An answer as `(status, code, message, headers)`, the headers a dict in order.
type PyAnswer<'py> = (u16, Option<String>, Option<String>, Bound<'py, PyDict>);

fn answer(py: Python<'_>, a: Answer) -> PyResult<PyAnswer<'_>> {
    let headers = PyDict::new(py);
    for (k, v) in a.headers {
        headers.set_item(k, v)?;
    }
    Ok((a.status, a.code, a.message, headers))
}

/// An API-key guard's answer: `outcome` holds `reason`, the key's `limits`,
/// the `rate_limit` check's answer, `quota_reset_at` and `now`.
#[pyfunction]
pub(crate) fn http_api_key_answer<'py>(
    py: Python<'py>,
    header: &str,
    scopes: Vec<String>,
    outcome: &Bound<'py, PyAny>,
) -> PyResult<PyAnswer<'py>> {
    let o: KeyOutcome = pythonize::depythonize(outcome)
        .map_err(|e| to_py(py, Error::invalid(format!("outcome: {e}"))))?;
    answer(py, irontoken::http::api_key_answer(header, &scopes, &o))
}

/// A Bearer-JWT guard's answer for the code its verification ended with.
#[pyfunction]
pub(crate) fn http_bearer_answer<'py>(
    py: Python<'py>,
    code: &str,
    scopes: Vec<String>,
) -> PyResult<PyAnswer<'py>> {
    answer(py, irontoken::http::bearer_answer(code, &scopes))
}

/// A DPoP guard's answer (RFC 9449) for the code its verification ended
/// with; `nonce` goes in a `DPoP-Nonce` header of a `use_dpop_nonce` answer.
#[pyfunction]
#[pyo3(signature = (code, scopes, nonce=None))]
pub(crate) fn http_dpop_answer<'py>(
    py: Python<'py>,
    code: &str,
    scopes: Vec<String>,
    nonce: Option<&str>,
) -> PyResult<PyAnswer<'py>> {
    answer(py, irontoken::http::dpop_answer(code, &scopes, nonce))
}

/// A capability guard's answer for an authorization's reason (or `MISSING`).
#[pyfunction]
pub(crate) fn http_capability_answer<'py>(
    py: Python<'py>,
    reason: &str,
) -> PyResult<PyAnswer<'py>> {
    answer(py, irontoken::http::capability_answer(reason))
}

/// The HTTP status of an error code (500 for an unknown one).
#[pyfunction]
pub(crate) fn http_status_of(code: &str) -> u16 {
    irontoken::http::status_of(code)
}

/// The body fields an LLM guard reads (model, then the token fields in order):
/// an adapter may pass just these to `http_llm_request`.
#[pyfunction]
pub(crate) fn http_llm_body_fields() -> Vec<&'static str> {
    irontoken::http::LLM_BODY_FIELDS.to_vec()
}

/// What an LLM request declares, read where its guard was told: each of
/// `model_source` / `tokens_source` is "" (not checked), "body" (from
/// `body`, the parsed JSON body or None) or "value" (the given value, what
/// the application's function returned). Returns `(None, model, tokens)`,
/// or `(answer, None, None)`: the 400 refusing the request.
#[pyfunction]
pub(crate) fn http_llm_request<'py>(
    py: Python<'py>,
    body: Option<&Bound<'py, PyAny>>,
    model_source: &str,
    model: Option<&Bound<'py, PyAny>>,
    tokens_source: &str,
    tokens: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Option<PyAnswer<'py>>, Option<String>, Option<u64>)> {
    use irontoken::http::Declared;
    use serde_json::Value;
    // A value with no JSON form (an int past 64 bits, an object) is one
    // neither a model name nor a count: refused as such.
    let json = |v: Option<&Bound<'py, PyAny>>| -> Value {
        v.map_or(Value::Null, |v| {
            pythonize::depythonize(v).unwrap_or(Value::Array(Vec::new()))
        })
    };
    let body = body.and_then(|b| pythonize::depythonize::<Value>(b).ok());
    let (model, tokens) = (json(model), json(tokens));
    let got = irontoken::http::llm_request(
        body.as_ref(),
        Declared::named(model_source, &model).map_err(|e| to_py(py, e))?,
        Declared::named(tokens_source, &tokens).map_err(|e| to_py(py, e))?,
    );
    match got {
        Ok(r) => Ok((None, r.model, r.tokens)),
        Err(a) => Ok((Some(answer(py, a)?), None, None)),
    }
}
