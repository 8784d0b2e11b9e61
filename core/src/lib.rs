//! irontoken: API-token management in one Rust core, called in-process from
//! Python, Node.js and C.
//!
//! Open a [`TokenManager`] on a SQLite file (or `":memory:"`), then create,
//! verify, list, update, disable, enable, revoke and rotate API keys; every
//! change lands in an append-only audit trail.
//!
//! ```
//! use irontoken::{TokenManager, NewKey, VerifyReason};
//! let tm = TokenManager::open(":memory:")?;
//! let created = tm.create_key(&NewKey { owner: "alice".into(), scopes: vec!["read".into()], ..Default::default() })?;
//! let v = tm.verify_key(&created.key, &["read"])?;
//! assert!(v.valid);
//! assert_eq!(tm.verify_key("itk_nonsense", &[])?.reason, VerifyReason::Malformed);
//! # Ok::<(), irontoken::Error>(())
//! ```
#![deny(missing_docs)]

pub mod alerts;
mod audit_trail;
pub mod capability;
mod clock;
mod error;
mod fork;
pub mod http;
pub mod jwt;
pub mod keys;
mod manager;
mod metrics;
mod model;
pub mod ratelimit;
pub mod refresh;
pub mod replay;
pub mod sessions;
pub mod signals;
mod store;
pub mod usage;

pub use model::audit;

pub use alerts::{AlertSettings, WebhookSettings};
pub use audit::{AuditEvent, AuditFilter};
pub use capability::{
    Attenuation, Authorization, CapabilityInfo, CapabilityRequest, CapabilityRoot, MintCapability,
};
pub use error::{Error, ErrorKind, Result, catch_panic};
pub use keys::{
    CreatedKey, ImportKey, KeyFilter, KeyRecord, KeyStatus, KeyUpdate, LEGACY_PREFIX,
    LEGACY_RECHECK_MS, MAX_BULK_KEYS, MAX_REQUIRED_SCOPES, NewKey, Page, RotateOptions,
    Verification, VerifyOptions, VerifyReason, is_bidi_or_invisible,
    models::{OwnerPolicy, OwnerPolicySpec},
};
pub use manager::{
    Clock, DB_ENV, DoctorReport, MASTER_KEY_ENV, MAX_TIME, ManualClock, OpenSettings, Options,
    RATE_LIMIT_STORE_ENV, STORAGE_TIMEOUT_ENV, SystemClock, TokenManager, parse_master_key,
};
pub use ratelimit::RateLimitStore;
pub use sessions::{NewSession, Session, SessionFilter, SessionStatus, SessionUpdate};
pub use signals::Event;
pub use store::redis::RedisLimiter;
pub use store::{Durability, SCHEMA_VERSION};
pub use usage::agents::{AgentClaims, AgentToken, AgentTokenRequest, Budget, Lease, NewBudget};
pub use usage::quota::{
    Amounts, Quota, QuotaDecision, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSelector, QuotaSpec,
    Reservation, Reserved,
};
pub use usage::rate_limits::SharedLimiter;
pub use usage::{MAX_USAGE_NUMBER, Recorded, UsageQuery, UsageRecord, UsageReport, UsageTotals};
