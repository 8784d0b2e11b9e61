//! What the behaviour suites share: a manager on a manual clock, a key,
//! a quota spec, a key with a daily request quota.

use irontoken::{
    Amounts, NewKey, Options, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSpec, TokenManager,
};

/// 2026-02-01T00:00:00Z, where the behaviour suites' clocks start.
pub const T0: i64 = 1_769_904_000;

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
