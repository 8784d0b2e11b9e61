//! Criterion benchmarks of capability tokens: `authorize` on a 3-block
//! token (warm: signatures verified once), its parts (the Datalog checks,
//! the store reads), attenuation, and minting.
//! Run: `cargo bench -p irontoken --bench capability`.

use criterion::{Criterion, criterion_group, criterion_main};
use irontoken::capability::{self, Attenuation};
use irontoken::{CapabilityRequest, MintCapability, NewKey, Options, TokenManager};
use std::hint::black_box;

fn bench_capability(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.db");
    let tm = TokenManager::open_with(
        path.to_str().unwrap(),
        Options::default().master_key(&[7u8; 32]).unwrap(),
    )
    .unwrap();
    let key_id = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            ..Default::default()
        })
        .unwrap()
        .record
        .id;
    let mint = MintCapability {
        key_id,
        tools: vec!["search".into(), "fetch".into(), "read".into()],
        ttl_seconds: 3600,
        ceiling_micros: Some(1 << 50),
        ..Default::default()
    };
    let token = tm.mint_capability(&mint).unwrap();
    let token = capability::attenuate(
        &token,
        &Attenuation {
            tools: Some(vec!["search".into(), "fetch".into()]),
            ttl_seconds: Some(1800),
            ..Default::default()
        },
    )
    .unwrap();
    let token = capability::attenuate(
        &token,
        &Attenuation {
            tools: Some(vec!["search".into()]),
            ceiling_micros: Some(1 << 40),
            ..Default::default()
        },
    )
    .unwrap();
    let free = CapabilityRequest {
        tool: "search".into(),
        ..Default::default()
    };
    let paid = CapabilityRequest {
        cost_micros: 1,
        ..free.clone()
    };
    assert!(tm.authorize(&token, &free).unwrap().allowed);
    let mut g = c.benchmark_group("capability");
    g.bench_function("authorize_3_blocks", |b| {
        b.iter(|| black_box(tm.authorize(black_box(&token), &free).unwrap()))
    });
    g.bench_function("authorize_3_blocks_charged", |b| {
        b.iter(|| black_box(tm.authorize(black_box(&token), &paid).unwrap()))
    });
    g.bench_function("attenuate", |b| {
        let a = Attenuation {
            tools: Some(vec!["search".into()]),
            ..Default::default()
        };
        b.iter(|| black_box(capability::attenuate(black_box(&token), &a).unwrap()))
    });
    g.bench_function("inspect", |b| {
        b.iter(|| black_box(capability::inspect(black_box(&token)).unwrap()))
    });
    g.bench_function("mint", |b| {
        b.iter(|| black_box(tm.mint_capability(&mint).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_capability);
criterion_main!(benches);
