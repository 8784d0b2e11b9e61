//! Criterion benchmarks of API-key create and verify with 100k keys in a
//! file-backed store (WAL), and verification over a random working set of
//! 1M keys (the database built once with `create_keys` and kept under
//! `target/bench/criterion-keys-1m`). Run: `make bench` (or `cargo bench -p
//! irontoken --bench keys`).

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
    let created = tm.create_keys(&vec![req.clone(); KEYS]).unwrap();
    let valid = created[KEYS / 2].key.to_string();
    drop(created);
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

/// Verification of random keys out of 1M stored: every call a different
/// key, most of them not in the record cache (the flat-verify goal).
fn bench_random_1m(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/criterion-keys-1m");
    let (db, list) = (dir.join("keys.db"), dir.join("keys.txt"));
    if !list.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(&db);
        let tm = open(&db);
        let req = NewKey {
            owner: "bench".into(),
            scopes: vec!["read".into()],
            ..Default::default()
        };
        let mut keys = Vec::with_capacity(N);
        for _ in 0..N / 50_000 {
            let created = tm.create_keys(&vec![req.clone(); 50_000]).unwrap();
            keys.extend(created.iter().map(|c| c.key.to_string()));
        }
        drop(tm);
        std::fs::write(&list, keys.join("\n")).unwrap();
    }
    let keys: Vec<String> = std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let tm = open(&db);
    // A fixed pseudo-random order (xorshift), the same every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let order: Vec<usize> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % keys.len() as u64) as usize
        })
        .collect();
    let mut i = 0;
    let mut g = c.benchmark_group("keys_1m");
    g.bench_function("verify_random", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            let v = tm.verify_key(black_box(&keys[order[i]]), &[]).unwrap();
            assert!(v.valid);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_keys, bench_random_1m);
criterion_main!(benches);
