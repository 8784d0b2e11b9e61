//! Python binding of irontoken (`irontoken._native`). Converts types, maps
//! errors to the exception classes of `irontoken.errors`, and releases the
//! GIL around every call into the core. No token semantics live here.

use irontoken::{
    AuditEvent, AuditFilter, CreatedKey as CoreCreated, Error, KeyFilter, KeyRecord as CoreRecord,
    KeyStatus, KeyUpdate, NewKey, OpenSettings, Page, RotateOptions, TokenManager as Core,
    Verification,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

#[macro_use]
mod args;
mod capability;
mod dpop;
mod error;
mod http;
mod jwt;
mod keys;
mod manager;
mod ratelimit;
mod records;
mod refresh;
mod usage;

use args::*;
use error::*;
use jwt::*;
use manager::*;
use ratelimit::*;
use records::*;

/// Checks shape and checksum of a key without a database (True if it could be one of ours).
#[pyfunction]
fn is_well_formed(#[pyo3(from_py_with = key_text)] key: KeyText) -> bool {
    irontoken::keys::is_well_formed(&key)
}

/// Whether a query parameter looks like a credential (its name, or a value
/// shaped like a key or a JWT): the adapters' one rule, from core.
#[pyfunction]
fn is_credential_param(name: &str, value: &str, header: &str) -> bool {
    irontoken::keys::is_credential_param(name, value, header)
}

/// Whether a key refused with `reason` may be a key of the old system
/// (core's rule: unknown to irontoken, a legacy key's shape, not our format).
#[pyfunction]
fn may_be_legacy(key: &str, reason: &str) -> bool {
    irontoken::VerifyReason::from_code(reason)
        .is_some_and(|r| irontoken::keys::may_be_legacy(key, r))
}

/// The request id a client header carries, if a usage report takes it as
/// is (core's rule: 1-128 visible ASCII characters); else None.
#[pyfunction]
fn request_id_from_header(value: &str) -> Option<&str> {
    irontoken::usage::request_id_from_header(value)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TokenManager>()?;
    m.add_class::<KeyRecord>()?;
    m.add_class::<CreatedKey>()?;
    m.add_class::<VerifyResult>()?;
    m.add_class::<AuditEntry>()?;
    m.add_class::<PageResult>()?;
    m.add_function(wrap_pyfunction!(is_well_formed, m)?)?;
    m.add_function(wrap_pyfunction!(is_credential_param, m)?)?;
    m.add_function(wrap_pyfunction!(may_be_legacy, m)?)?;
    m.add_function(wrap_pyfunction!(request_id_from_header, m)?)?;
    m.add_function(wrap_pyfunction!(usage::verify_webhook_signature, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_api_key_answer, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_bearer_answer, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_status_of, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_capability_answer, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_dpop_answer, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_llm_request, m)?)?;
    m.add_function(wrap_pyfunction!(http::http_llm_body_fields, m)?)?;
    m.add_class::<JwtVerifier>()?;
    m.add_class::<JwtSigner>()?;
    m.add_class::<RateLimiter>()?;
    m.add_class::<RateDecision>()?;
    m.add_function(wrap_pyfunction!(jwt_decode, m)?)?;
    m.add_function(wrap_pyfunction!(jwt_unverified, m)?)?;
    m.add_class::<Jwk>()?;
    m.add_class::<RemoteJwks>()?;
    m.add_function(wrap_pyfunction!(jwt_encode, m)?)?;
    m.add_class::<capability::Authorization>()?;
    m.add_function(wrap_pyfunction!(capability::attenuate, m)?)?;
    m.add_function(wrap_pyfunction!(dpop::dpop_verify_proof, m)?)?;
    m.add_function(wrap_pyfunction!(dpop::jwk_thumbprint, m)?)?;
    m.add_function(wrap_pyfunction!(dpop::cert_thumbprint, m)?)?;
    m.add_function(wrap_pyfunction!(dpop::token_binding, m)?)?;
    m.add_function(wrap_pyfunction!(capability::seal, m)?)?;
    m.add_function(wrap_pyfunction!(capability::inspect_capability, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SCHEMA_VERSION", irontoken::SCHEMA_VERSION)?;
    Ok(())
}
