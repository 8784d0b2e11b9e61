//! Keyrings: verification keys selected by `kid` (a JWKS, or one key given
//! directly), and the process-wide cache of parsed keys.

use super::Alg;
use super::material::{Material, classify};
use super::verifying_key::*;
use crate::error::{Error, ErrorKind, Result};

/// Parsed keys kept by [`Keyring::from_bytes_cached`].
const CACHED_KEYS: usize = 256;

/// Largest key input [`Keyring::from_bytes_cached`] keeps (a JWKS of a few
/// dozen RSA keys).
pub const CACHED_KEY_MAX_BYTES: usize = 64 * 1024;

/// The process-wide cache of parsed keys, by the SHA-256 of their bytes (no
/// second copy of a secret is kept).
static KEYRING_CACHE: std::sync::OnceLock<
    quick_cache::sync::Cache<[u8; 32], std::sync::Arc<Keyring>>,
> = std::sync::OnceLock::new();

/// Keys selected by `kid`. A token whose `kid` is unknown is refused; it
/// never falls back to another key. A token without `kid` is accepted only
/// when the keyring holds exactly one key; a keyring of one key without a
/// `kid` (a PEM or secret given directly) verifies whatever `kid` the token names.
///
/// A keyring read from a JWKS skips the keys it cannot use (unsupported
/// `kty`/`crv`, `use: enc`, weak or malformed keys), as jose and PyJWT do, and
/// is refused only when no usable key remains; its `oct` keys verify only
/// when the caller's policy allows an HMAC algorithm.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<VerifyingKey>,
    /// True when read from a JWKS (each key carries its own type).
    set: bool,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Keyring::default()
    }

    /// A keyring holding one key.
    pub fn single(key: VerifyingKey) -> Self {
        Keyring {
            keys: vec![key],
            set: false,
        }
    }

    /// Parses a JWKS (`{"keys": [...]}`); unusable keys are skipped, and
    /// the set is refused only if none is left.
    pub fn from_jwks(json: &str) -> Result<Self> {
        let v = serde_json::from_str(json.trim_start_matches('\u{feff}'))
            .map_err(|e| bad_key(format!("invalid JWKS: {e}")))?;
        Keyring::from_jwks_value(v)
    }

    /// A JWKS published by someone else (a remote set): like
    /// [`Keyring::from_jwks`], but `oct` keys are skipped — a secret that
    /// is published verifies nothing (jose's `createRemoteJWKSet` does the same).
    pub fn from_public_jwks(json: &str) -> Result<Self> {
        let mut v: serde_json::Value = serde_json::from_str(json.trim_start_matches('\u{feff}'))
            .map_err(|e| bad_key(format!("invalid JWKS: {e}")))?;
        if let Some(keys) = v.get_mut("keys").and_then(|k| k.as_array_mut()) {
            let before = keys.len();
            keys.retain(|k| k.get("kty").and_then(|t| t.as_str()) != Some("oct"));
            if keys.is_empty() && before > 0 {
                return Err(bad_key(
                    "the JWKS holds only symmetric (oct) keys, which a published set never yields",
                ));
            }
        }
        Keyring::from_jwks_value(v)
    }

    /// [`Keyring::from_jwks`] for JSON already parsed.
    fn from_jwks_value(v: serde_json::Value) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set =
            serde_json::from_value(v).map_err(|e| bad_key(format!("invalid JWKS: {e}")))?;
        let mut ring = Keyring {
            keys: Vec::with_capacity(set.keys.len()),
            set: true,
        };
        let mut first_error = None;
        for value in set.keys {
            let loaded = VerifyingKey::from_jwk_value(value);
            match loaded {
                Ok(k) => ring.keys.push(k),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if ring.keys.is_empty() {
            return Err(match first_error {
                Some(e) => bad_key(format!("the JWKS holds no usable key ({})", e.message())),
                None => bad_key("the JWKS holds no keys"),
            });
        }
        Ok(ring)
    }

    /// Key material in any form, judged by its content: a JWKS, a JWK, PEM
    /// (anywhere in the text), DER, an OpenSSH public key, or else an HMAC
    /// secret (at least 32 bytes).
    pub fn from_bytes(input: &[u8]) -> Result<Self> {
        match classify(input)? {
            Material::Jwks(v) => Keyring::from_jwks_value(v),
            m => Ok(Keyring::single(VerifyingKey::from_material(m, input)?)),
        }
    }

    /// [`Keyring::from_bytes`] through a small process-wide cache keyed by
    /// the SHA-256 of the bytes, for one-shot calls that pass the same key every time
    /// (`jwt.decode(token, pem)` in a loop costs what a verifier object
    /// costs). Inputs over [`CACHED_KEY_MAX_BYTES`] are parsed every call;
    /// failures are never cached.
    pub fn from_bytes_cached(input: &[u8]) -> Result<std::sync::Arc<Self>> {
        if input.len() > CACHED_KEY_MAX_BYTES {
            return Keyring::from_bytes(input).map(std::sync::Arc::new);
        }
        use sha2::Digest;
        let cache = KEYRING_CACHE.get_or_init(|| quick_cache::sync::Cache::new(CACHED_KEYS));
        let digest: [u8; 32] = sha2::Sha256::digest(input).into();
        if let Some(k) = cache.get(&digest) {
            return Ok(k);
        }
        let k = std::sync::Arc::new(Keyring::from_bytes(input)?);
        cache.insert(digest, k.clone());
        Ok(k)
    }

    /// [`Keyring::from_bytes`] for key text.
    pub fn from_text(text: &str) -> Result<Self> {
        Keyring::from_bytes(text.as_bytes())
    }

    /// Adds a key; with several keys, each needs a distinct `kid`.
    pub fn add(&mut self, key: VerifyingKey) -> Result<()> {
        if !self.keys.is_empty() {
            let Some(kid) = key.kid() else {
                return Err(Error::invalid(
                    "every key of a keyring with several keys needs a kid",
                ));
            };
            if self.keys.iter().any(|k| k.kid().is_none()) {
                return Err(Error::invalid(
                    "every key of a keyring with several keys needs a kid",
                ));
            }
            if self.get(kid).is_some() {
                return Err(Error::invalid(format!("duplicate kid {kid:?} in keyring")));
            }
            self.set = true;
        }
        self.keys.push(key);
        Ok(())
    }

    /// The (first) key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid() == Some(kid))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Refuses a policy that could use one key two ways: a single key
    /// given directly (not a JWKS) with an allow-list mixing HMAC and
    /// public-key algorithms (the RS/HS confusion), or an HMAC secret
    /// shorter than an allowed HMAC algorithm needs.
    pub fn check_algorithms(&self, algorithms: &[Alg]) -> Result<()> {
        // A JWKS, or a key pinned to one algorithm, cannot be used two ways;
        // it must still hold a key for one of the algorithms.
        let [only] = self.keys.as_slice() else {
            return self.check_set_fits(algorithms);
        };
        if self.set || only.alg.is_some() {
            return self.check_set_fits(algorithms);
        }
        let hmac = algorithms.iter().find(|a| min_hmac_bytes(**a) > 0);
        let public = algorithms.iter().find(|a| min_hmac_bytes(**a) == 0);
        if let (Some(h), Some(p)) = (hmac, public) {
            return Err(Error::new(
                ErrorKind::JwtAlgNotAllowed,
                format!(
                    "the allowed algorithms mix HMAC ({}) and public-key ({}) algorithms for one key; allow one family",
                    h.as_str(),
                    p.as_str()
                ),
            ));
        }
        let is_secret = only.key_type == KeyType::Hmac;
        match (hmac, public) {
            (Some(_), None) if !is_secret => {
                return Err(bad_key(format!(
                    "the key is an asymmetric key ({}) and must not be used as an HMAC secret",
                    only.key_type.name()
                )));
            }
            (None, Some(p)) if is_secret => {
                return Err(bad_key(format!(
                    "the key is an HMAC secret (not a PEM, DER, JWK or OpenSSH public key) and cannot verify {}",
                    p.as_str()
                )));
            }
            _ => {}
        }
        if is_secret {
            for a in algorithms {
                check_hmac_fits(only.secret_len, *a)?;
            }
        }
        Ok(())
    }

    fn check_set_fits(&self, algorithms: &[Alg]) -> Result<()> {
        if self.keys.is_empty()
            || self
                .keys
                .iter()
                .any(|k| algorithms.iter().any(|a| k.allows(*a)))
        {
            return Ok(());
        }
        let names: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
        Err(bad_key(format!(
            "no key of the set can verify the allowed algorithms ({})",
            names.join(", ")
        )))
    }

    /// The key to verify a token with this header `kid` and algorithm.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Alg) -> Result<&VerifyingKey> {
        let not_fit = || {
            Error::new(
                ErrorKind::JwtAlgNotAllowed,
                format!("algorithm {} does not fit the selected key", alg.as_str()),
            )
        };
        // One key given without a kid (a PEM or secret, as PyJWT and jose take
        // them): the token's kid names nothing we could confuse it with.
        if let [only] = self.keys.as_slice()
            && (only.kid().is_none() || kid.is_none())
        {
            return if only.allows(alg) {
                Ok(only)
            } else {
                Err(not_fit())
            };
        }
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid() == Some(kid)).peekable();
                if named.peek().is_none() {
                    let shown: String = kid.chars().take(64).collect();
                    return Err(Error::new(
                        ErrorKind::JwtKeyNotFound,
                        format!("no key with kid {shown:?}"),
                    ));
                }
                named.find(|k| k.allows(alg)).ok_or_else(not_fit)
            }
            None if self.keys.is_empty() => Err(Error::new(
                ErrorKind::JwtKeyNotFound,
                "the keyring is empty",
            )),
            None => Err(Error::new(
                ErrorKind::JwtKeyNotFound,
                "the token has no kid and the keyring holds several keys",
            )),
        }
    }
}
