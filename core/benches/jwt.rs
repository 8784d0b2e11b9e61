//! Criterion benchmarks of JWT verify and sign per algorithm, key parsed once.
//! Run: `cargo bench -p irontoken --bench jwt`.

use criterion::{Criterion, criterion_group, criterion_main};
use irontoken::jwt::{Alg, Keyring, Policy, SigningKey, Verifier, VerifyingKey, encode};
use serde_json::json;
use std::hint::black_box;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/jwt/keys");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{name}")).unwrap()
}

fn bench_jwt(c: &mut Criterion) {
    let now = 1_700_000_000;
    let claims = json!({"sub": "user-1", "iss": "https://issuer.test", "exp": now + 600, "iat": now, "scope": "read write"});
    let claims = claims.as_object().unwrap().clone();
    let secret = b"irontoken-test-hmac-secret-of-32-bytes!!";
    let setups: Vec<(Alg, SigningKey, VerifyingKey)> = vec![
        (
            Alg::HS256,
            SigningKey::hmac(secret).unwrap(),
            VerifyingKey::hmac(secret).unwrap(),
        ),
        (
            Alg::RS256,
            SigningKey::from_pem(&read("rsa_private.pem")).unwrap(),
            VerifyingKey::from_pem(&read("rsa_public.pem")).unwrap(),
        ),
        (
            Alg::ES256,
            SigningKey::from_pem(&read("ec_p256_private.pem")).unwrap(),
            VerifyingKey::from_pem(&read("ec_p256_public.pem")).unwrap(),
        ),
        (
            Alg::EdDSA,
            SigningKey::from_pem(&read("ed25519_private.pem")).unwrap(),
            VerifyingKey::from_pem(&read("ed25519_public.pem")).unwrap(),
        ),
    ];
    let mut g = c.benchmark_group("jwt");
    for (alg, sk, vk) in setups {
        let token = encode(&claims, &sk, alg, None).unwrap();
        let v = Verifier::new(Keyring::single(vk), Policy::new(&[alg])).unwrap();
        g.bench_function(format!("verify_{}", alg.as_str()), |b| {
            b.iter(|| v.decode_at(black_box(&token), now).unwrap())
        });
        g.bench_function(format!("sign_{}", alg.as_str()), |b| {
            b.iter(|| encode(black_box(&claims), &sk, alg, None).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_jwt);
criterion_main!(benches);
