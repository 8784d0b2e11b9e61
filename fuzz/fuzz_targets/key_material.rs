//! The key-material classifier and loaders: never panic; material judged
//! asymmetric never loads as an HMAC secret.
#![no_main]
use irontoken::jwt::{SigningKey, VerifyingKey, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let m = classify(data);
    let _ = irontoken::jwt::Keyring::from_bytes(data);
    let _ = SigningKey::from_bytes(data);
    if let Ok(m) = m
        && m.is_asymmetric()
    {
        assert!(VerifyingKey::hmac(data).is_err());
        assert!(SigningKey::hmac(data).is_err());
    }
});
