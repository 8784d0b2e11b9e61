//! Verification keys (PEM, JWK, HMAC secrets) and keyrings (JWKS).
//!
//! A key is parsed once, when it is loaded; it knows its type and therefore
//! which algorithms may use it. RSA keys under 2048 bits and HMAC secrets
//! under 32 bytes are refused at load time.

use super::Alg;
use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use std::fmt;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Shortest HMAC secret accepted, in bytes.
pub const MIN_HMAC_BYTES: usize = 32;

pub(super) fn bad_key(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidKeyMaterial, msg)
}

/// What kind of key, and so which algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// A shared secret: HS256, HS384, HS512.
    Hmac,
    /// RSA with a modulus of `bits`: RS*, PS*.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA on P-256: ES256.
    EcP256,
    /// ECDSA on P-384: ES384.
    EcP384,
    /// Ed25519: EdDSA.
    Ed25519,
}

impl KeyType {
    /// The algorithms this type of key can verify.
    pub fn algorithms(self) -> &'static [Alg] {
        match self {
            KeyType::Hmac => &[Alg::HS256, Alg::HS384, Alg::HS512],
            KeyType::Rsa { .. } => &[
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ],
            KeyType::EcP256 => &[Alg::ES256],
            KeyType::EcP384 => &[Alg::ES384],
            KeyType::Ed25519 => &[Alg::EdDSA],
        }
    }
}

/// A parsed verification key with an optional `kid` and algorithm restriction.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    key_type: KeyType,
    /// Set when the key (e.g. a JWK's `alg`) allows exactly one algorithm.
    alg: Option<Alg>,
    decoding: DecodingKey,
    parsed: super::crypto::VerifyCache,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (an HMAC secret is one).
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn rsa_bits_of_modulus(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

/// Bits of the RSA modulus in a PKCS#1 DER: the integer at `index` of the
/// outer sequence (0 in `RSAPublicKey`, 1 in `RSAPrivateKey`, after the version).
pub(super) fn rsa_modulus_bits(der: &[u8], index: usize) -> Result<usize> {
    use simple_asn1::ASN1Block;
    let blocks = simple_asn1::from_der(der).map_err(|_| bad_key("invalid RSA key DER"))?;
    match blocks.first() {
        Some(ASN1Block::Sequence(_, items)) => match items.get(index) {
            Some(ASN1Block::Integer(_, n)) => Ok(n.bits() as usize),
            _ => Err(bad_key("invalid RSA key: no modulus")),
        },
        _ => Err(bad_key("invalid RSA key DER")),
    }
}

/// Refuses RSA moduli under [`MIN_RSA_BITS`].
pub(super) fn check_rsa_bits(bits: usize) -> Result<()> {
    if bits < MIN_RSA_BITS {
        return Err(bad_key(format!(
            "RSA key too small: {bits} bits, at least {MIN_RSA_BITS} required"
        )));
    }
    Ok(())
}

/// Refuses HMAC secrets under [`MIN_HMAC_BYTES`].
pub(super) fn check_hmac_len(secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_HMAC_BYTES {
        return Err(bad_key(format!(
            "HMAC secret too short: {} bytes, at least {MIN_HMAC_BYTES} required",
            secret.len()
        )));
    }
    Ok(())
}

impl VerifyingKey {
    /// An HMAC secret (at least 32 bytes).
    pub fn hmac(secret: &[u8]) -> Result<Self> {
        check_hmac_len(secret)?;
        Ok(VerifyingKey {
            kid: None,
            key_type: KeyType::Hmac,
            alg: None,
            decoding: DecodingKey::from_secret(secret),
            parsed: Default::default(),
        })
    }

    /// A public key in PEM: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`) or
    /// an X.509 certificate (`CERTIFICATE`); RSA, EC P-256/P-384 or Ed25519.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let bytes = pem.as_bytes();
        if pem.contains("PRIVATE KEY") {
            return Err(bad_key(
                "a private key was given where a public key is expected",
            ));
        }
        let (decoding, key_type) = if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
            let bits = match k.kind() {
                jsonwebtoken::DecodingKeyKind::SecretOrDer(der) => rsa_modulus_bits(der, 0)?,
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } => {
                    rsa_bits_of_modulus(n)
                }
            };
            (k, KeyType::Rsa { bits })
        } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
            let t = match k.kind() {
                jsonwebtoken::DecodingKeyKind::SecretOrDer(point) if point.len() == 65 => {
                    KeyType::EcP256
                }
                jsonwebtoken::DecodingKeyKind::SecretOrDer(point) if point.len() == 97 => {
                    KeyType::EcP384
                }
                _ => return Err(bad_key("unsupported EC curve (P-256 and P-384 are)")),
            };
            (k, t)
        } else if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
            (k, KeyType::Ed25519)
        } else {
            return Err(bad_key(
                "not a PEM public key or certificate of a supported type (RSA, EC P-256/P-384, Ed25519)",
            ));
        };
        VerifyingKey {
            kid: None,
            key_type,
            alg: None,
            decoding,
            parsed: Default::default(),
        }
        .checked()
    }

    /// A JWK (JSON text). Honors `kid`, `alg` and `use` (must be `sig` if present).
    pub fn from_jwk(json: &str) -> Result<Self> {
        let jwk: Jwk =
            serde_json::from_str(json).map_err(|e| bad_key(format!("invalid JWK: {e}")))?;
        Self::from_parsed_jwk(&jwk)
    }

    fn from_parsed_jwk(jwk: &Jwk) -> Result<Self> {
        if let Some(u) = &jwk.common.public_key_use
            && *u != PublicKeyUse::Signature
        {
            return Err(bad_key("JWK \"use\" is not \"sig\""));
        }
        let key_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => {
                let n = URL_SAFE_NO_PAD
                    .decode(p.n.trim_end_matches('='))
                    .map_err(|_| bad_key("invalid JWK: n is not base64url"))?;
                KeyType::Rsa {
                    bits: rsa_bits_of_modulus(&n),
                }
            }
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyType::EcP256,
                EllipticCurve::P384 => KeyType::EcP384,
                _ => return Err(bad_key("unsupported EC curve (P-256 and P-384 are)")),
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => KeyType::Ed25519,
                _ => return Err(bad_key("unsupported OKP curve (Ed25519 is)")),
            },
            AlgorithmParameters::OctetKey(p) => {
                let k = URL_SAFE_NO_PAD
                    .decode(p.value.trim_end_matches('='))
                    .map_err(|_| bad_key("invalid JWK: k is not base64url"))?;
                let mut key = Self::hmac(&k)?;
                key.kid = jwk.common.key_id.clone();
                key.alg = jwk_alg(jwk)?;
                return key.checked();
            }
            _ => return Err(bad_key("unsupported JWK key type")),
        };
        let decoding =
            DecodingKey::from_jwk(jwk).map_err(|e| bad_key(format!("invalid JWK: {e}")))?;
        VerifyingKey {
            kid: jwk.common.key_id.clone(),
            key_type,
            alg: jwk_alg(jwk)?,
            decoding,
            parsed: Default::default(),
        }
        .checked()
    }

    /// Refuses weak keys and algorithm restrictions that do not fit the key type.
    fn checked(self) -> Result<Self> {
        if let KeyType::Rsa { bits } = self.key_type {
            check_rsa_bits(bits)?;
        }
        if let Some(a) = self.alg
            && !self.key_type.algorithms().contains(&a)
        {
            return Err(bad_key(format!(
                "algorithm {} does not fit a {:?} key",
                a.as_str(),
                self.key_type
            )));
        }
        Ok(self)
    }

    /// Sets the key id used to select this key from a keyring.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Restricts the key to one algorithm (it must fit the key type).
    pub fn with_alg(mut self, alg: Alg) -> Result<Self> {
        self.alg = Some(alg);
        self.checked()
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// True if `signature` over `message` is valid under this key with `alg`
    /// (the parsed key is built on first use and kept).
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.allows(alg) && self.parsed.verify(&self.decoding, alg, message, signature)
    }

    /// True if this key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Alg) -> bool {
        self.key_type.algorithms().contains(&alg) && self.alg.is_none_or(|a| a == alg)
    }
}

fn jwk_alg(jwk: &Jwk) -> Result<Option<Alg>> {
    match &jwk.common.key_algorithm {
        None => Ok(None),
        Some(a) => {
            let name = serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            Alg::parse(&name).map(Some).ok_or_else(|| {
                bad_key(format!(
                    "JWK alg {name:?} is not a supported signature algorithm"
                ))
            })
        }
    }
}

/// Keys selected by `kid`. A token whose `kid` is unknown is refused; it
/// never falls back to another key. A token without `kid` is accepted only
/// when the keyring holds exactly one key; a keyring of one key without a
/// `kid` (a PEM or secret given directly) verifies whatever `kid` the token names.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<VerifyingKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Keyring::default()
    }

    /// A keyring holding one key.
    pub fn single(key: VerifyingKey) -> Self {
        Keyring { keys: vec![key] }
    }

    /// Parses a JWKS (`{"keys": [...]}`). Every key must be usable and have a
    /// distinct `kid` (when there is more than one).
    pub fn from_jwks(json: &str) -> Result<Self> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| bad_key(format!("invalid JWKS: {e}")))?;
        let mut ring = Keyring::new();
        for jwk in &set.keys {
            ring.add(VerifyingKey::from_parsed_jwk(jwk)?)?;
        }
        Ok(ring)
    }

    /// Parses key text as applications hold it: a JWKS (`{"keys": ...}`), a
    /// JWK (`{...}`), a PEM public key or certificate (`-----BEGIN`), or else
    /// an HMAC secret (its UTF-8 bytes, at least 32).
    pub fn from_text(text: &str) -> Result<Self> {
        let t = text.trim_start();
        if t.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(t)
                .map_err(|e| bad_key(format!("invalid JWK/JWKS JSON: {e}")))?;
            if v.get("keys").is_some() {
                Keyring::from_jwks(t)
            } else {
                Ok(Keyring::single(VerifyingKey::from_jwk(t)?))
            }
        } else if t.starts_with("-----BEGIN") {
            Ok(Keyring::single(VerifyingKey::from_pem(t)?))
        } else {
            Ok(Keyring::single(VerifyingKey::hmac(text.as_bytes())?))
        }
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
        }
        self.keys.push(key);
        Ok(())
    }

    /// The key with this `kid`.
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

    /// The key to verify a token with this header `kid`.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyingKey> {
        // One key given without a kid (a PEM or secret, as PyJWT and jose take
        // them): the token's kid names nothing we could confuse it with.
        if let [only] = self.keys.as_slice()
            && only.kid().is_none()
        {
            return Ok(only);
        }
        match kid {
            Some(kid) => self.get(kid).ok_or_else(|| {
                let shown: String = kid.chars().take(64).collect();
                Error::new(
                    ErrorKind::JwtKeyNotFound,
                    format!("no key with kid {shown:?}"),
                )
            }),
            None if self.keys.len() == 1 => Ok(&self.keys[0]),
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
