//! The strict JSON reader and the compact-JWS splitter, through the
//! unverified read: never panics; duplicate members are refused.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = irontoken::jwt::decode_unverified(token, 8192) {
        let _ = u.claims();
        assert!(u.header.get("kid").is_none_or(|k| k.is_string()));
    }
});
