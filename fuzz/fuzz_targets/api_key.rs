//! API key parsing: never panics; a key that parses has its display prefix
//! at its start and its checksum right.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = irontoken::keys::parse(text) {
        assert!(text.starts_with(p.display_prefix));
        assert!(irontoken::keys::is_well_formed(text));
    }
});
