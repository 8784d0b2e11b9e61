//! The API-key format: `<prefix>_<body><checksum>`.
//!
//! - `prefix`: 1–32 characters, lowercase ASCII letters, digits and single
//!   underscores, starting with a letter and not ending with `_`
//!   (default `itk`, e.g. `sp_live`).
//! - `body`: [`BODY_LEN`] base62 characters (`0-9A-Za-z`), each drawn
//!   uniformly from the OS CSPRNG by rejection sampling: 43 × log2(62) ≈ 256
//!   bits, the entropy of 32 random bytes.
//! - `checksum`: CRC32 (IEEE) of `prefix + "_" + body`, in base62, left-padded
//!   with `0` to [`CHECKSUM_LEN`] characters (the GitHub token design), so a
//!   typo or a foreign string is rejected without a database lookup and secret
//!   scanners can recognise the keys.
//!
//! The whole key is at least 4 + 43 + 6 = 51 characters long.

use crate::error::{Error, Result};
use zeroize::Zeroizing;

/// The prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "itk";
/// Number of base62 characters of random body.
pub const BODY_LEN: usize = 43;
/// Number of base62 characters of checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 32;
/// Longest string that can possibly be a key; longer input is malformed at once.
pub const MAX_KEY_LEN: usize = MAX_PREFIX_LEN + 1 + BODY_LEN + CHECKSUM_LEN;
/// Characters of the body shown in the display prefix.
pub const DISPLAY_BODY_CHARS: usize = 8;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Checks that `prefix` is a valid key prefix.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix_ok(prefix) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "key prefix must be 1-{MAX_PREFIX_LEN} characters of a-z, 0-9 and single '_', \
             starting with a letter and not ending with '_' (got {} characters)",
            prefix.len()
        )))
    }
}

fn prefix_ok(prefix: &str) -> bool {
    let b = prefix.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_PREFIX_LEN
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'_'
        && !prefix.contains("__")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// The checksum characters, on the stack (verification computes one per call).
fn checksum(prefix: &str, body: &str) -> [u8; CHECKSUM_LEN] {
    let mut h = crc32fast::Hasher::new();
    h.update(prefix.as_bytes());
    h.update(b"_");
    h.update(body.as_bytes());
    let mut digits = [0u8; CHECKSUM_LEN];
    // 62^6 > 2^32: a CRC32 always fits in six base62 digits.
    let n = base62::encode_bytes(h.finalize(), &mut digits).unwrap_or(0);
    let mut out = [b'0'; CHECKSUM_LEN];
    out[CHECKSUM_LEN - n..].copy_from_slice(&digits[..n]);
    out
}

/// A freshly generated key. The plaintext is wiped from memory on drop.
pub struct GeneratedKey {
    /// The full plaintext key.
    pub plaintext: Zeroizing<String>,
    /// The display prefix (prefix, `_`, first body characters).
    pub display_prefix: String,
}

/// Generates a new key with `prefix` from the OS CSPRNG.
pub fn generate(prefix: &str) -> Result<GeneratedKey> {
    validate_prefix(prefix)?;
    let mut body = Zeroizing::new(String::with_capacity(BODY_LEN));
    let mut buf = Zeroizing::new([0u8; 64]);
    while body.len() < BODY_LEN {
        getrandom::fill(buf.as_mut()).map_err(|e| {
            Error::new(
                crate::ErrorKind::Internal,
                format!("OS random generator failed: {e}"),
            )
        })?;
        for &b in buf.iter() {
            // 248 = 4 * 62: rejecting bytes >= 248 keeps every character uniform.
            if b < 248 && body.len() < BODY_LEN {
                body.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    let mut plaintext = Zeroizing::new(String::with_capacity(prefix.len() + 1 + BODY_LEN + 6));
    plaintext.push_str(prefix);
    plaintext.push('_');
    plaintext.push_str(&body);
    plaintext.extend(checksum(prefix, &body).iter().map(|&b| b as char));
    let display_prefix = format!("{prefix}_{}", &body[..DISPLAY_BODY_CHARS]);
    Ok(GeneratedKey {
        plaintext,
        display_prefix,
    })
}

/// The parts of a well-formed key.
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    /// The display prefix: prefix, `_` and the first body characters.
    pub display_prefix: &'a str,
}

/// Checks shape and checksum of `key` without any database work.
///
/// Errors are [`crate::ErrorKind::KeyMalformed`] and never quote the input.
pub fn parse(key: &str) -> Result<ParsedKey<'_>> {
    let malformed = |why: &str| Error::new(crate::ErrorKind::KeyMalformed, why.to_string());
    if key.len() > MAX_KEY_LEN {
        return Err(malformed("too long to be an API key"));
    }
    let Some((prefix, tail)) = key.rsplit_once('_') else {
        return Err(malformed("no prefix separator '_'"));
    };
    if !prefix_ok(prefix) {
        return Err(malformed("invalid key prefix"));
    }
    if tail.len() != BODY_LEN + CHECKSUM_LEN || !tail.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(malformed("key body has the wrong length or characters"));
    }
    let (body, sum) = tail.split_at(BODY_LEN);
    if checksum(prefix, body) != sum.as_bytes() {
        return Err(malformed("checksum mismatch"));
    }
    Ok(ParsedKey {
        display_prefix: &key[..prefix.len() + 1 + DISPLAY_BODY_CHARS],
    })
}

/// Whether `s` holds a display prefix in irontoken's format (a valid key
/// prefix, `_`, and at least the displayed characters of a key body):
/// such text names a key.
pub(crate) fn names_a_key(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| word.rsplit_once('_'))
        .any(|(prefix, body)| prefix_ok(prefix) && body.len() >= DISPLAY_BODY_CHARS)
}

/// Query parameter names that carry credentials (compared lowercased, with
/// `-` read as `_`).
const CREDENTIAL_PARAMS: [&str; 17] = [
    "api_key",
    "apikey",
    "key",
    "x_api_key",
    "access_token",
    "token",
    "auth",
    "authorization",
    "bearer",
    "jwt",
    "id_token",
    "refresh_token",
    "secret",
    "client_secret",
    "password",
    "session",
    "session_id",
];

/// Whether a query parameter looks like a credential: its name (one of the
/// usual names, or the name of the credential's own `header`), or its value
/// shaped like an irontoken key or a JWT. The framework adapters refuse such
/// a request (URLs are logged), with this one rule on every surface.
pub fn is_credential_param(name: &str, value: &str, header: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let n = norm(name);
    if CREDENTIAL_PARAMS.contains(&n.as_str()) || n == norm(header) {
        return true;
    }
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let jwt = value.starts_with("eyJ")
        && matches!(value.split('.').collect::<Vec<_>>()[..],
            [h, p, sig] if b64url(h) && !p.is_empty() && b64url(p) && b64url(sig));
    jwt || (value.len() <= 256 && is_well_formed(value))
}

/// True if `key` has the shape and checksum of an irontoken API key.
pub fn is_well_formed(key: &str) -> bool {
    parse(key).is_ok()
}

/// A key that arrived as bytes (the raw value of a header), as text to
/// verify: bytes that are not UTF-8 become U+FFFD, which neither an
/// irontoken key nor a legacy key (visible ASCII) can hold, so such input
/// is answered `MALFORMED` without a lookup. Borrowed when already UTF-8.
pub fn key_from_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_params_by_name_and_by_value() {
        for (name, value) in [
            ("api_key", "x"),
            ("API-Key", "x"),
            ("X-API-KEY", "x"),
            ("access_token", ""),
            ("q", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"),
        ] {
            assert!(
                is_credential_param(name, value, "X-API-Key"),
                "{name}={value}"
            );
        }
        assert!(is_credential_param("my_header", "x", "My-Header"));
        for (name, value) in [
            ("page", "2"),
            ("sort", "name"),
            ("q", "eyJ.only"),
            ("q", "eyJa..c"),
        ] {
            assert!(
                !is_credential_param(name, value, "X-API-Key"),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = generate("itk").unwrap();
        let b = generate("sp_live").unwrap();
        assert_ne!(*a.plaintext, *b.plaintext);
        assert!(a.plaintext.len() >= 51);
        assert_eq!(a.plaintext.len(), 3 + 1 + BODY_LEN + CHECKSUM_LEN);
        let p = parse(&b.plaintext).unwrap();
        assert_eq!(p.display_prefix, b.display_prefix);
        assert!(b.display_prefix.starts_with("sp_live_"));
    }

    #[test]
    fn single_character_change_is_detected() {
        let k = generate("itk").unwrap();
        let mut bytes = k.plaintext.as_bytes().to_vec();
        for i in 4..bytes.len() {
            let orig = bytes[i];
            bytes[i] = if orig == b'a' { b'b' } else { b'a' };
            let s = std::str::from_utf8(&bytes).unwrap();
            assert!(parse(s).is_err(), "change at {i} not detected");
            bytes[i] = orig;
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for p in ["", "Itk", "1tk", "itk_", "a__b", "it-k", &"a".repeat(33)] {
            assert!(validate_prefix(p).is_err(), "{p:?}");
            assert!(generate(p).is_err());
        }
        for p in ["itk", "sp_live", "a", "a1_b2_c3"] {
            validate_prefix(p).unwrap();
        }
    }

    #[test]
    fn checksum_is_padded() {
        assert_eq!(checksum("a", "b").len(), CHECKSUM_LEN);
    }

    #[test]
    fn characters_are_roughly_uniform() {
        let mut counts = [0u32; 62];
        for _ in 0..20_000 {
            let k = generate("itk").unwrap();
            for c in k.plaintext[4..4 + BODY_LEN].bytes() {
                counts[ALPHABET.iter().position(|&a| a == c).unwrap()] += 1;
            }
        }
        // 860 000 draws, 13 871 expected per character (standard deviation
        // ~117, under 1 %). Every character within 6 % (7 deviations):
        // accepting one byte value more than the rejection bound (248)
        // makes the first character 24 % more frequent; a mapping without
        // rejection, 8 characters 25 %.
        let expected = (20_000 * BODY_LEN) as f64 / 62.0;
        for (i, &n) in counts.iter().enumerate() {
            let off = (n as f64 - expected).abs() / expected;
            assert!(
                off < 0.06,
                "character {i}: {n} draws, {expected:.0} expected"
            );
        }
    }
}
