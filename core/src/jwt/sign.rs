//! Signing: compact JWS/JWT from a private key or an HMAC secret.

use super::Alg;
use super::keys::{KeyType, bad_key, check_hmac_len, check_rsa_bits, rsa_modulus_bits};
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

/// DER encodings of the curve OIDs prime256v1 and secp384r1.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl SigningKey {
    /// An HMAC secret (at least 32 bytes).
    pub fn hmac(secret: &[u8]) -> Result<Self> {
        check_hmac_len(secret)?;
        Ok(SigningKey {
            kid: None,
            key_type: KeyType::Hmac,
            encoding: EncodingKey::from_secret(secret),
            parsed: Default::default(),
        })
    }

    /// A private key in PEM: RSA (PKCS#1 or PKCS#8, ≥ 2048 bits), EC P-256 or
    /// P-384 (PKCS#8) or Ed25519 (PKCS#8).
    pub fn from_pem(pem: &str) -> Result<Self> {
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
            encoding,
            parsed: Default::default(),
        })
    }

    /// Parses key text: a PEM private key (`-----BEGIN`), or else an HMAC
    /// secret (its UTF-8 bytes, at least 32).
    pub fn from_text(text: &str) -> Result<Self> {
        if text.trim_start().starts_with("-----BEGIN") {
            SigningKey::from_pem(text)
        } else {
            SigningKey::hmac(text.as_bytes())
        }
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

/// Signs `claims` with `key` and `alg` into a compact JWT. `extra_header`
/// adds header parameters (e.g. `typ`, `cty`); `alg`, `crit` and `b64` are
/// ours to set, and `kid` comes from the key.
pub fn encode(
    claims: &Map<String, Value>,
    key: &SigningKey,
    alg: Alg,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String> {
    if !key.key_type.algorithms().contains(&alg) {
        return Err(Error::new(
            ErrorKind::JwtAlgNotAllowed,
            format!(
                "algorithm {} does not fit a {:?} key",
                alg.as_str(),
                key.key_type
            ),
        ));
    }
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
