//! Signing: compact JWS/JWT from a private key or an HMAC secret.

use super::Alg;
use super::material::{DerKind, Material, classify, contains};
use super::verifying_key::{KeyType, bad_key, check_hmac_len, check_rsa_bits, rsa_modulus_bits};
use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Map, Value};
use std::fmt;

/// A private key or HMAC secret that signs tokens, with an optional `kid`.
#[derive(Clone)]
pub struct SigningKey {
    kid: Option<String>,
    key_type: KeyType,
    /// Length of an HMAC secret in bytes (0 for private keys).
    secret_len: usize,
    encoding: EncodingKey,
    parsed: super::crypto::SignCache,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

/// Parsed signing keys kept by [`SigningKey::from_bytes_cached`].
const CACHED_SIGNING_KEYS: usize = 64;

/// The process-wide cache of parsed signing keys, by the SHA-256 of their bytes.
static SIGNING_CACHE: std::sync::OnceLock<quick_cache::sync::Cache<[u8; 32], SigningKey>> =
    std::sync::OnceLock::new();

/// DER encodings of the curve OIDs prime256v1 and secp384r1.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

impl SigningKey {
    /// An HMAC secret (at least 32 bytes). Material that is a key or
    /// certificate in any form (PEM, DER, JWK, OpenSSH) is refused.
    pub fn hmac(secret: &[u8]) -> Result<Self> {
        check_hmac_len(secret)?;
        Ok(Self::secret_unchecked(secret))
    }

    fn secret_unchecked(secret: &[u8]) -> Self {
        SigningKey {
            kid: None,
            key_type: KeyType::Hmac,
            secret_len: secret.len(),
            encoding: EncodingKey::from_secret(secret),
            parsed: Default::default(),
        }
    }

    /// A signing key from material in any form, judged by content: a private
    /// key in PEM (anywhere in the text) or DER (PKCS#1, PKCS#8, SEC1), or
    /// else an HMAC secret. Public keys, certificates, JWKs and OpenSSH keys
    /// are refused (they cannot sign, and are never HMAC secrets).
    pub fn from_bytes(input: &[u8]) -> Result<Self> {
        Self::from_material(classify(input)?, input)
    }

    /// [`SigningKey::from_bytes`] through a small process-wide cache keyed by
    /// the SHA-256 of the bytes: one-shot signing with the same key reuses
    /// the parsed key (an RSA key pair takes ~100 µs to load). Failures are
    /// never cached.
    pub fn from_bytes_cached(input: &[u8]) -> Result<Self> {
        use sha2::Digest;
        if input.len() > super::keyring::CACHED_KEY_MAX_BYTES {
            return Self::from_bytes(input);
        }
        let cache =
            SIGNING_CACHE.get_or_init(|| quick_cache::sync::Cache::new(CACHED_SIGNING_KEYS));
        let digest: [u8; 32] = sha2::Sha256::digest(input).into();
        if let Some(k) = cache.get(&digest) {
            return Ok(k);
        }
        let k = Self::from_bytes(input)?;
        cache.insert(digest, k.clone());
        Ok(k)
    }

    fn from_material(m: Material, input: &[u8]) -> Result<Self> {
        match m {
            Material::Secret => {
                super::verifying_key::check_secret_len(input.len())?;
                Ok(Self::secret_unchecked(input))
            }
            Material::Der { kind, der } if kind.is_private() => Self::from_private_der(kind, &der),
            Material::OtherPem { label } if label == "ENCRYPTED PRIVATE KEY" => Err(bad_key(
                "encrypted private keys are not supported: decrypt the key first",
            )),
            Material::OtherPem { label } if label == "OPENSSH PRIVATE KEY" => Err(bad_key(
                "OpenSSH private keys are not supported: convert to PKCS#8 (ssh-keygen -p -m PKCS8)",
            )),
            Material::Jwk(_) | Material::Jwks(_) => Err(bad_key(
                "JWK private keys cannot sign here: give the private key in PEM or DER",
            )),
            m => Err(bad_key(format!(
                "a public key or certificate ({}) cannot sign tokens: give the private key",
                m.describe()
            ))),
        }
    }

    /// A private key in PEM: RSA (PKCS#1 or PKCS#8, ≥ 2048 bits), EC P-256 or
    /// P-384 (PKCS#8 or SEC1) or Ed25519 (PKCS#8). Leading text, a
    /// byte-order mark and CRLF line ends are fine.
    pub fn from_pem(pem: &str) -> Result<Self> {
        match classify(pem.as_bytes())? {
            Material::Secret => Err(bad_key("not a PEM private key")),
            m => Self::from_material(m, pem.as_bytes()),
        }
    }

    fn from_private_der(kind: DerKind, der: &[u8]) -> Result<Self> {
        if kind == DerKind::EcPrivate {
            let t = if contains(der, OID_P256) {
                KeyType::EcP256
            } else if contains(der, OID_P384) {
                KeyType::EcP384
            } else {
                return Err(bad_key("unsupported EC curve (P-256 and P-384 are)"));
            };
            let alg = if t == KeyType::EcP256 {
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(alg, der)
                .map_err(|_| bad_key("invalid EC private key"))?;
            return Ok(SigningKey {
                kid: None,
                key_type: t,
                secret_len: 0,
                encoding: EncodingKey::from_ec_der(der),
                parsed: Default::default(),
            });
        }
        let pem = pem::encode(&pem::Pem::new(kind.pem_label(), der.to_vec()));
        let bytes = pem.as_bytes();
        let (encoding, key_type) = if let Ok(k) = EncodingKey::from_rsa_pem(bytes) {
            let bits = rsa_modulus_bits(k.as_bytes(), 1)?;
            check_rsa_bits(bits)?;
            (k, KeyType::Rsa { bits })
        } else if let Ok(k) = EncodingKey::from_ec_pem(bytes) {
            let t = if contains(k.as_bytes(), OID_P256) {
                KeyType::EcP256
            } else if contains(k.as_bytes(), OID_P384) {
                KeyType::EcP384
            } else {
                return Err(bad_key("unsupported EC curve (P-256 and P-384 are)"));
            };
            (k, t)
        } else if let Ok(k) = EncodingKey::from_ed_pem(bytes) {
            (k, KeyType::Ed25519)
        } else {
            return Err(bad_key(
                "not a PEM private key of a supported type (RSA, EC P-256/P-384, Ed25519)",
            ));
        };
        Ok(SigningKey {
            kid: None,
            key_type,
            secret_len: 0,
            encoding,
            parsed: Default::default(),
        })
    }

    /// [`SigningKey::from_bytes`] for key text.
    pub fn from_text(text: &str) -> Result<Self> {
        SigningKey::from_bytes(text.as_bytes())
    }

    /// Sets the `kid` written into the headers of the tokens this key signs.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// Refuses an algorithm that does not fit the key: a private key never signs
/// HMAC and a secret never signs with a public-key algorithm
/// (`INVALID_KEY_MATERIAL`); an HMAC secret must be long enough for its
/// algorithm; other mismatches are `JWT_ALG_NOT_ALLOWED`.
pub(super) fn check_fit(key: &SigningKey, alg: Alg) -> Result<()> {
    let hmac_alg = super::verifying_key::min_hmac_bytes(alg) > 0;
    match (key.key_type == KeyType::Hmac, hmac_alg) {
        (false, true) => {
            return Err(bad_key(format!(
                "the key is an asymmetric key ({}) and must not be used as an HMAC secret",
                key.key_type.name()
            )));
        }
        (true, false) => {
            return Err(bad_key(format!(
                "the key is an HMAC secret (not a PEM or DER private key) and cannot sign {}",
                alg.as_str()
            )));
        }
        (true, true) => super::verifying_key::check_hmac_fits(key.secret_len, alg)?,
        (false, false) => {}
    }
    if !key.key_type.algorithms().contains(&alg) {
        return Err(Error::new(
            ErrorKind::JwtAlgNotAllowed,
            format!(
                "algorithm {} does not fit a {} key",
                alg.as_str(),
                key.key_type.name()
            ),
        ));
    }
    Ok(())
}

/// Signs `claims` with `key` and `alg` into a compact JWT. `extra_header`
/// adds header parameters (e.g. `typ`, `cty`); `alg`, `crit` and `b64` are
/// ours to set, and `kid` comes from the key.
pub fn encode(
    claims: &Map<String, Value>,
    key: &SigningKey,
    alg: Alg,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String> {
    check_fit(key, alg)?;
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(alg.as_str().into()));
    header.insert("typ".into(), Value::String("JWT".into()));
    if let Some(extra) = extra_header {
        for (k, v) in extra {
            if matches!(k.as_str(), "alg" | "crit" | "b64" | "kid") {
                return Err(Error::invalid(format!(
                    "header parameter {k:?} cannot be set by the caller"
                )));
            }
            header.insert(k.clone(), v.clone());
        }
    }
    if let Some(kid) = &key.kid {
        header.insert("kid".into(), Value::String(kid.clone()));
    }
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    let signing_input = format!("{h}.{p}");
    let sig = key
        .parsed
        .sign(&key.encoding, alg, signing_input.as_bytes())
        .ok_or_else(|| bad_key("the key cannot sign with this algorithm"))?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}
