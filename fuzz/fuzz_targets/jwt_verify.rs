//! JWT verification with random key material, a random allow-list and a
//! random token: never panics, and never accepts a token whose algorithm
//! is outside the allow-list.
#![no_main]
use irontoken::jwt::{Alg, Keyring, Policy, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mask = u16::from_le_bytes([data[0], data[1]]);
    let split = (u16::from_le_bytes([data[2], data[3]]) as usize).min(data.len() - 4);
    let (key, token) = data[4..].split_at(split);
    let algs: Vec<Alg> = Alg::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, a)| *a)
        .collect();
    let _ = irontoken::jwt::classify(key);
    let Ok(ring) = Keyring::from_bytes(key) else {
        return;
    };
    let Ok(token) = std::str::from_utf8(token) else {
        return;
    };
    let mut policy = Policy::new(&algs);
    policy.require_exp = mask & 0x8000 != 0;
    policy.require_sub = false;
    if let Ok(v) = Verifier::new(ring, policy)
        && let Ok(d) = v.decode_at(token, 1_700_000_000)
    {
        let alg = d.header["alg"].as_str().unwrap_or_default();
        assert!(algs.iter().any(|a| a.as_str() == alg));
    }
});
