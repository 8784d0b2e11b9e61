//! Criterion benchmarks of API-key create and verify with 100k keys in a
//! file-backed store (WAL). Run: `make bench` (or `cargo bench -p irontoken --bench keys`).

use criterion::{Criterion, criterion_group, criterion_main};
use irontoken::{Durability, NewKey, Options, TokenManager};
use std::hint::black_box;

const KEYS: usize = 100_000;

fn open(path: &std::path::Path) -> TokenManager {
    TokenManager::open_with(
        path.to_str().unwrap(),
        Options::default().durability(Durability::Normal),
    )
    .unwrap()
}

fn bench_keys(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let tm = open(&path);
    let req = NewKey {
        owner: "bench".into(),
        scopes: vec!["read".into(), "write".into()],
        ..Default::default()
    };
    let mut sample = None;
    for i in 0..KEYS {
        let created = tm.create_key(&req).unwrap();
        if i == KEYS / 2 {
            sample = Some(created.key.to_string());
        }
    }
    let valid = sample.unwrap();
    // Well-formed (checksum ok) but never stored.
    let unknown = irontoken_unknown_key(&tm);
    tm.flush().unwrap();

    let mut g = c.benchmark_group("keys_100k");
    g.bench_function("verify_valid", |b| {
        b.iter(|| {
            let v = tm.verify_key(black_box(&valid), &[]).unwrap();
            assert!(v.valid);
        })
    });
    g.bench_function("verify_valid_with_scopes", |b| {
        b.iter(|| {
            let v = tm
                .verify_key(black_box(&valid), &["read", "write"])
                .unwrap();
            assert!(v.valid);
        })
    });
    g.bench_function("verify_not_found", |b| {
        b.iter(|| {
            let v = tm.verify_key(black_box(&unknown), &[]).unwrap();
            assert!(!v.valid);
        })
    });
    g.bench_function("verify_malformed", |b| {
        b.iter(|| {
            let v = tm.verify_key(black_box("itk_not-a-key"), &[]).unwrap();
            assert!(!v.valid);
        })
    });
    g.sample_size(30);
    g.bench_function("create_synchronous_normal", |b| {
        b.iter(|| tm.create_key(black_box(&req)).unwrap())
    });
    g.finish();
}

/// A key of valid shape and checksum that is not in the store: create one
/// in a throw-away in-memory manager.
fn irontoken_unknown_key(_tm: &TokenManager) -> String {
    let other = TokenManager::open(":memory:").unwrap();
    other
        .create_key(&NewKey {
            owner: "x".into(),
            ..Default::default()
        })
        .unwrap()
        .key
        .to_string()
}

criterion_group!(benches, bench_keys);
criterion_main!(benches);
