//! Criterion benchmarks of the in-process rate limiter: one key, 100k keys,
//! and two threads on one limiter. Run: `cargo bench -p irontoken --bench ratelimit`.

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

criterion_group!(benches, bench_ratelimit);
criterion_main!(benches);
