//! What the behaviour suites share: a manager on a manual clock, a key,
//! a quota spec, a key with a daily request quota.

use irontoken::{
    Amounts, NewKey, Options, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSpec, TokenManager,
};
use serde_json::json;

/// 2026-02-01T00:00:00Z, where the behaviour suites' clocks start.
pub const T0: i64 = 1_769_904_000;

/// 2023-11-14T22:13:20Z, where the key suites' clocks start (keys,
/// verify, rotation, validation): their answers are written for it.
pub const KEYS_T0: i64 = 1_700_000_000;

/// A manager on the store under test at [`KEYS_T0`].
pub fn manager() -> super::Managed {
    super::open_private(Options::default().manual_clock(KEYS_T0))
}

/// A key request of `owner` with a name, two scopes and metadata.
pub fn new_key(owner: &str) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: "ci".into(),
        scopes: vec!["read".into(), "write".into()],
        metadata: Some(json!({"team": "core", "n": 1}).as_object().unwrap().clone()),
        ..Default::default()
    }
}

/// A manager on the store under test (SQLite in memory, or PostgreSQL).
pub fn manager_at(t: i64) -> super::Managed {
    super::open_private(
        Options::default()
            .manual_clock(t)
            .master_key(&[7u8; 32])
            .unwrap(),
    )
}

/// A new key of `owner`; its id.
pub fn key(tm: &TokenManager, owner: &str) -> String {
    tm.create_key(&NewKey {
        owner: owner.into(),
        ..Default::default()
    })
    .unwrap()
    .record
    .id
}

/// A quota spec without refill or actor.
pub fn spec(
    scope: QuotaScope,
    subject: &str,
    metric: QuotaMetric,
    period: QuotaPeriod,
    limit: u64,
) -> QuotaSpec {
    QuotaSpec {
        scope,
        subject: subject.into(),
        metric,
        period,
        limit,
        refill_amount: None,
        refill_period: None,
        actor: None,
    }
}

/// A key of `owner` with a daily quota of `limit` requests.
pub fn key_with_daily_requests(tm: &TokenManager, owner: &str, limit: u64) -> String {
    let k = key(tm, owner);
    tm.set_quota(&spec(
        QuotaScope::Key,
        &k,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        limit,
    ))
    .unwrap();
    k
}

/// `n` requests.
pub fn requests(n: u64) -> Amounts {
    Amounts {
        requests: n,
        ..Default::default()
    }
}
