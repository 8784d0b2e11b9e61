//! Criterion benchmarks of quota consumption, usage recording and the
//! combined verify (key + rate limit + quota), on a database file with the
//! default durability (FULL). Run: `cargo bench -p irontoken --bench usage`.

use criterion::{Criterion, criterion_group, criterion_main};
use irontoken::ratelimit::Limit;
use irontoken::{
    Amounts, NewKey, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSpec, TokenManager, UsageReport,
    VerifyOptions,
};
use std::hint::black_box;

fn bench_usage(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let tm = TokenManager::open(path.to_str().unwrap()).unwrap();
    let created = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            rate_limits: vec![
                Limit::new("per_second", 1_000_000_000, 1000, 1_000_000_000).unwrap(),
            ],
            ..Default::default()
        })
        .unwrap();
    let kid = created.record.id.clone();
    for (scope, subject, metric) in [
        (QuotaScope::Key, kid.as_str(), QuotaMetric::Requests),
        (QuotaScope::Owner, "acme", QuotaMetric::Tokens),
    ] {
        tm.set_quota(&QuotaSpec {
            scope,
            subject: subject.into(),
            metric,
            period: QuotaPeriod::Month,
            limit: 1 << 60,
            refill_amount: None,
            refill_period: None,
            actor: None,
        })
        .unwrap();
    }
    let mut g = c.benchmark_group("usage");
    let one = Amounts {
        requests: 1,
        tokens: 100,
        cost_micros: 0,
    };
    g.bench_function("quota_consume_2_quotas", |b| {
        b.iter(|| assert!(tm.consume_quota(black_box(&kid), &one).unwrap().allowed))
    });
    g.bench_function("quota_peek_2_quotas", |b| {
        b.iter(|| tm.peek_quota(black_box(&kid), &one).unwrap())
    });
    let mut n = 0u64;
    g.bench_function("usage_record", |b| {
        b.iter(|| {
            n += 1;
            tm.record_usage(&UsageReport {
                request_id: Some(format!("req-{n}")),
                key_id: Some(kid.clone()),
                model: Some("gpt-4o".into()),
                prompt_tokens: 1200,
                completion_tokens: 300,
                cost_micros: 4_500,
                ..Default::default()
            })
            .unwrap()
        })
    });
    let rl_only = VerifyOptions {
        rate_limit: true,
        ..Default::default()
    };
    g.bench_function("verify_key_with_rate_limit", |b| {
        b.iter(|| {
            assert!(
                tm.verify_key_with(black_box(&created.key), &rl_only)
                    .unwrap()
                    .valid
            )
        })
    });
    let both = VerifyOptions {
        rate_limit: true,
        quota: Some(Amounts {
            requests: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    g.bench_function("verify_key_with_rate_limit_and_quota", |b| {
        b.iter(|| {
            assert!(
                tm.verify_key_with(black_box(&created.key), &both)
                    .unwrap()
                    .valid
            )
        })
    });
    let bare = tm
        .create_key(&NewKey {
            owner: "no-quotas".into(),
            ..Default::default()
        })
        .unwrap();
    g.bench_function("verify_key_with_quota_none_configured", |b| {
        b.iter(|| {
            assert!(
                tm.verify_key_with(black_box(&bare.key), &both)
                    .unwrap()
                    .valid
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_usage);
criterion_main!(benches);
