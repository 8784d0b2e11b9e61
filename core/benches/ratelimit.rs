//! Criterion benchmarks of the in-process rate limiter: one key, 100k keys,
//! two threads on one limiter, and a weighted (tokens per minute + requests
//! per minute) check against an unweighted one; `verify_key_with` with a
//! model and tokens against the same call without them.
//! Run: `cargo bench -p irontoken --bench ratelimit`.

use criterion::{Criterion, criterion_group, criterion_main};
use irontoken::ratelimit::{Limit, RateLimiter};
use std::hint::black_box;
use std::sync::Arc;

fn bench_ratelimit(c: &mut Criterion) {
    // A limit that never denies, so every iteration takes the full path.
    let limit = Limit::new("per_second", 1_000_000_000, 1000, 1_000_000_000).unwrap();
    let mut g = c.benchmark_group("ratelimit");

    let rl = RateLimiter::default();
    g.bench_function("check_one_1_key", |b| {
        b.iter(|| rl.check_one(black_box("key-1"), &limit, 1_000).unwrap())
    });

    let keys: Vec<String> = (0..100_000).map(|i| format!("key-{i}")).collect();
    let rl = RateLimiter::default();
    for k in &keys {
        rl.check_one(k, &limit, 1_000).unwrap();
    }
    let mut i = 0usize;
    g.bench_function("check_one_100k_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            rl.check_one(black_box(&keys[i]), &limit, 1_000).unwrap()
        })
    });

    let two = [
        limit.clone(),
        Limit::new("per_day", 1_000_000_000, 86_400_000, 1_000_000_000).unwrap(),
    ];
    g.bench_function("check_2_limits_all_or_nothing", |b| {
        b.iter(|| rl.check(black_box("key-1"), &two, 1_000).unwrap())
    });

    // The same two limits, the first counting tokens: a request of 500 tokens.
    let weighted = [
        Limit::tokens("tpm", 1_000_000_000, 60_000, 1_000_000_000).unwrap(),
        Limit::new("rpm", 1_000_000_000, 60_000, 1_000_000_000).unwrap(),
    ];
    let unweighted = [
        Limit::new("tpm", 1_000_000_000, 60_000, 1_000_000_000).unwrap(),
        weighted[1].clone(),
    ];
    g.bench_function("check_2_limits_unweighted", |b| {
        b.iter(|| rl.check(black_box("key-2"), &unweighted, 1_000).unwrap())
    });
    g.bench_function("check_2_limits_weighted_500_tokens", |b| {
        b.iter(|| {
            rl.check_cost(black_box("key-3"), &weighted, black_box(500), 1_000)
                .unwrap()
        })
    });

    let shared = Arc::new(RateLimiter::default());
    g.bench_function("check_one_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let rl = shared.clone();
                    let limit = limit.clone();
                    std::thread::spawn(move || {
                        let key = format!("thread-{t}");
                        for _ in 0..iters {
                            black_box(rl.check_one(&key, &limit, 1_000).unwrap());
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            start.elapsed() / 2
        })
    });
    g.finish();
}

/// `verify_key_with` on a key with a TPM and an RPM limit (in-process
/// buckets, so the figure is the verification's, not a store's): today's
/// call, then with a model checked against an allow-list and 500 tokens.
fn bench_verify_with_model(c: &mut Criterion) {
    let mut o = irontoken::Options::default();
    o.rate_limit_store = irontoken::RateLimitStore::Local;
    let tm = irontoken::TokenManager::open_with(":memory:", o).unwrap();
    let key = tm
        .create_key(&irontoken::NewKey {
            owner: "acme".into(),
            rate_limits: vec![
                Limit::tokens("tpm", 1_000_000_000_000, 60_000, 1_000_000_000_000).unwrap(),
                Limit::new("rpm", 1_000_000_000_000, 60_000, 1_000_000_000_000).unwrap(),
            ],
            models: vec!["gpt-4o*".into(), "claude-*".into(), "o3*".into()],
            max_tokens_per_request: Some(100_000),
            ..Default::default()
        })
        .unwrap()
        .key
        .to_string();
    let mut g = c.benchmark_group("verify_with");
    let plain = irontoken::VerifyOptions {
        rate_limit: true,
        ..Default::default()
    };
    g.bench_function("rate_limit", |b| {
        b.iter(|| assert!(tm.verify_key_with(black_box(&key), &plain).unwrap().valid))
    });
    let llm = irontoken::VerifyOptions {
        rate_limit: true,
        tokens: Some(500),
        model: Some("claude-3-5-sonnet".into()),
        ..Default::default()
    };
    g.bench_function("rate_limit_model_tokens", |b| {
        b.iter(|| assert!(tm.verify_key_with(black_box(&key), &llm).unwrap().valid))
    });
    g.finish();
}

criterion_group!(benches, bench_ratelimit, bench_verify_with_model);
criterion_main!(benches);
