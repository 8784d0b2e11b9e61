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

mod args;
pub mod capability;
pub mod dpop;
mod error;
mod http;
mod jwt;
mod keys;
mod manager;
mod ratelimit;
mod records;
pub mod refresh;
pub mod usage;

pub use args::*;
pub use error::*;
pub use http::*;
pub use jwt::*;
pub use manager::*;
pub use ratelimit::*;
pub use records::*;

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

/// The request id a client header carries, if a usage report takes it as
/// is (core's rule: 1-128 visible ASCII characters); else null.
#[napi(catch_unwind)]
pub fn request_id_from_header(value: String) -> Option<String> {
    irontoken::usage::request_id_from_header(&value).map(str::to_string)
}

/// The library version.
#[napi(catch_unwind)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
