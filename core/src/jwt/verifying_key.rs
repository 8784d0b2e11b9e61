//! Verification keys: one PEM, DER, JWK, OpenSSH key or HMAC secret,
//! parsed once (keyrings of them, JWKS, are in `keyring.rs`).
//!
//! A key is parsed once, when it is loaded; it knows its type and therefore
//! which algorithms may use it. What a key is comes from its content
//! ([`super::material::classify`]), never from whether it arrived as bytes or
//! text. RSA keys under 2048 bits, HMAC secrets under 32 bytes and Ed25519
//! public keys of small order are refused at load time; an HMAC secret must
//! also be as long as its algorithm's hash (HS384: 48, HS512: 64 bytes).
//!
//! A private JWK given for verification is used through its public part only
//! (the private members are ignored).

use super::Alg;
use super::material::{DerKind, Material, SshReader, classify, not_a_secret};
use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use std::fmt;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Shortest HMAC secret accepted, in bytes (the HS256 minimum).
pub const MIN_HMAC_BYTES: usize = 32;

/// Shortest HMAC secret `alg` may use (RFC 7518 §3.2: the hash size), 0 for
/// algorithms that are not HMAC.
pub fn min_hmac_bytes(alg: Alg) -> usize {
    match alg {
        Alg::HS256 => 32,
        Alg::HS384 => 48,
        Alg::HS512 => 64,
        _ => 0,
    }
}

/// Refuses an HMAC secret of `len` bytes for `alg` when it is shorter than
/// the algorithm's minimum.
pub(super) fn check_hmac_fits(len: usize, alg: Alg) -> Result<()> {
    let min = min_hmac_bytes(alg);
    if len < min {
        return Err(bad_key(format!(
            "HMAC secret too short for {}: {len} bytes, at least {min} required",
            alg.as_str()
        )));
    }
    Ok(())
}

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
    /// A short name for messages: `HMAC`, `RSA`, `EC P-256`, `EC P-384`, `Ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Hmac => "HMAC",
            KeyType::Rsa { .. } => "RSA",
            KeyType::EcP256 => "EC P-256",
            KeyType::EcP384 => "EC P-384",
            KeyType::Ed25519 => "Ed25519",
        }
    }

    /// The JWK `kty` of this type: `oct`, `RSA`, `EC` or `OKP`.
    pub fn kty(self) -> &'static str {
        match self {
            KeyType::Hmac => "oct",
            KeyType::Rsa { .. } => "RSA",
            KeyType::EcP256 | KeyType::EcP384 => "EC",
            KeyType::Ed25519 => "OKP",
        }
    }

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
    pub(super) kid: Option<String>,
    pub(super) key_type: KeyType,
    /// Set when the key (e.g. a JWK's `alg`) allows exactly one algorithm.
    pub(super) alg: Option<Alg>,
    /// Length of an HMAC secret in bytes (0 for public keys).
    pub(super) secret_len: usize,
    pub(super) decoding: DecodingKey,
    pub(super) parsed: super::crypto::VerifyCache,
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

/// The DER of the namedCurve OIDs of P-256 (1.2.840.10045.3.1.7) and P-384
/// (1.3.132.0.34), as an SPKI or certificate holds them.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn trim_zeros(v: &[u8]) -> &[u8] {
    let i = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[i..]
}

fn rsa_bits_of_modulus(n: &[u8]) -> usize {
    match trim_zeros(n) {
        [] => 0,
        n => n.len() * 8 - n[0].leading_zeros() as usize,
    }
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

/// Refuses an Ed25519 public key that is not a point of the curve or has
/// small order (such a key verifies forged signatures in lax verifiers).
pub(super) fn check_ed25519_point(raw: &[u8]) -> Result<()> {
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| bad_key("an Ed25519 public key is 32 bytes"))?;
    match curve25519_dalek::edwards::CompressedEdwardsY(bytes).decompress() {
        None => Err(bad_key(
            "the Ed25519 public key is not a point of the curve",
        )),
        Some(p) if p.is_small_order() => Err(bad_key("the Ed25519 public key has small order")),
        Some(_) => Ok(()),
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

/// Refuses asymmetric-looking material and secrets under [`MIN_HMAC_BYTES`].
pub(super) fn check_hmac_len(secret: &[u8]) -> Result<()> {
    let m = classify(secret)?;
    if m.is_asymmetric() {
        return Err(not_a_secret(&m));
    }
    check_secret_len(secret.len())
}

/// Refuses a secret (already known to be one) under [`MIN_HMAC_BYTES`].
pub(super) fn check_secret_len(len: usize) -> Result<()> {
    if len < MIN_HMAC_BYTES {
        return Err(bad_key(format!(
            "HMAC secret too short: {len} bytes, at least {MIN_HMAC_BYTES} required"
        )));
    }
    Ok(())
}

impl VerifyingKey {
    /// An HMAC secret (at least 32 bytes). Material that is a key or
    /// certificate in any form (PEM, DER, JWK, OpenSSH) is refused.
    pub fn hmac(secret: &[u8]) -> Result<Self> {
        check_hmac_len(secret)?;
        Ok(Self::secret_unchecked(secret))
    }

    fn secret_unchecked(secret: &[u8]) -> Self {
        VerifyingKey {
            kid: None,
            key_type: KeyType::Hmac,
            alg: None,
            secret_len: secret.len(),
            decoding: DecodingKey::from_secret(secret),
            parsed: Default::default(),
        }
    }

    /// One verification key from material in any form, judged by content:
    /// PEM (anywhere in the text), DER (SPKI, PKCS#1, certificate), a JWK,
    /// an OpenSSH public key, or else an HMAC secret. A JWKS is refused here
    /// (load it with [`Keyring::from_bytes`](super::Keyring::from_bytes)).
    pub fn from_bytes(input: &[u8]) -> Result<Self> {
        Self::from_material(classify(input)?, input)
    }

    /// A verification key from material classified from `input`.
    pub(super) fn from_material(m: Material, input: &[u8]) -> Result<Self> {
        match m {
            Material::Secret => {
                check_secret_len(input.len())?;
                Ok(Self::secret_unchecked(input))
            }
            Material::Der { kind, der } if kind.is_public() => Self::from_public_der(kind, &der),
            Material::Der { kind, .. } if kind.is_private() => Err(bad_key(
                "a private key was given where a public key is expected",
            )),
            Material::Der { .. } => Err(bad_key(
                "DER that is not a public key or certificate of a supported type",
            )),
            Material::OtherPem { label } => Err(bad_key(format!(
                "PEM block {label:?} is not a public key or certificate of a supported type"
            ))),
            Material::Jwk(v) => Self::from_jwk_value(v),
            Material::Jwks(_) => Err(bad_key("a JWKS holds a set of keys: load it as a keyring")),
            Material::Ssh { key_type, blob } => Self::from_ssh(&key_type, &blob),
        }
    }

    /// A public key in PEM: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`) or
    /// an X.509 certificate (`CERTIFICATE`); RSA, EC P-256/P-384 or Ed25519.
    /// Leading text (openssl's "Bag Attributes"), a byte-order mark and CRLF
    /// line ends are fine.
    pub fn from_pem(pem: &str) -> Result<Self> {
        match classify(pem.as_bytes())? {
            m @ (Material::Der { .. } | Material::OtherPem { .. }) => {
                Self::from_material(m, pem.as_bytes())
            }
            _ => Err(bad_key("not a PEM public key or certificate")),
        }
    }

    /// A public key from DER of a known structure.
    fn from_public_der(kind: DerKind, der: &[u8]) -> Result<Self> {
        let pem = pem::encode(&pem::Pem::new(kind.pem_label(), der.to_vec()));
        let bytes = pem.as_bytes();
        let (decoding, key_type) = if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
            let bits = match k.kind() {
                jsonwebtoken::DecodingKeyKind::SecretOrDer(der) => rsa_modulus_bits(der, 0)?,
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } => {
                    rsa_bits_of_modulus(n)
                }
            };
            (k, KeyType::Rsa { bits })
        } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
            // The point's length and the named curve both: secp256k1's
            // points are as long as P-256's.
            let named = |oid: &[u8]| super::material::contains(der, oid);
            let t = match k.kind() {
                jsonwebtoken::DecodingKeyKind::SecretOrDer(point)
                    if point.len() == 65 && named(OID_P256) =>
                {
                    KeyType::EcP256
                }
                jsonwebtoken::DecodingKeyKind::SecretOrDer(point)
                    if point.len() == 97 && named(OID_P384) =>
                {
                    KeyType::EcP384
                }
                _ => return Err(bad_key("unsupported EC curve (P-256 and P-384 are)")),
            };
            (k, t)
        } else if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
            if let jsonwebtoken::DecodingKeyKind::SecretOrDer(raw) = k.kind() {
                check_ed25519_point(raw)?;
            }
            (k, KeyType::Ed25519)
        } else {
            return Err(bad_key(
                "not a public key or certificate of a supported type (RSA, EC P-256/P-384, Ed25519)",
            ));
        };
        Self::public(decoding, key_type, None, None)
    }

    fn public(
        decoding: DecodingKey,
        key_type: KeyType,
        kid: Option<String>,
        alg: Option<Alg>,
    ) -> Result<Self> {
        VerifyingKey {
            kid,
            key_type,
            alg,
            secret_len: 0,
            decoding,
            parsed: Default::default(),
        }
        .checked()
    }

    /// An OpenSSH public key (`ssh-rsa`, `ecdsa-sha2-nistp256/384`,
    /// `ssh-ed25519`) from its wire blob.
    fn from_ssh(line_type: &str, blob: &[u8]) -> Result<Self> {
        let mut r = SshReader(blob);
        let name = r.string()?;
        if !line_type.is_empty() && name != line_type.as_bytes() {
            return Err(bad_key(
                "OpenSSH public key: the type on the line and in the key differ",
            ));
        }
        let (decoding, key_type) = match name {
            b"ssh-rsa" => {
                // mpints carry a leading zero to stay positive; not part of the value.
                let e = trim_zeros(r.string()?);
                let n = trim_zeros(r.string()?);
                (
                    DecodingKey::from_rsa_raw_components(n, e),
                    KeyType::Rsa {
                        bits: rsa_bits_of_modulus(n),
                    },
                )
            }
            b"ssh-ed25519" => {
                let pk = r.string()?;
                if pk.len() != 32 {
                    return Err(bad_key("OpenSSH Ed25519 key is not 32 bytes"));
                }
                check_ed25519_point(pk)?;
                (DecodingKey::from_ed_der(pk), KeyType::Ed25519)
            }
            b"ecdsa-sha2-nistp256" | b"ecdsa-sha2-nistp384" => {
                let _curve = r.string()?;
                let q = r.string()?;
                let t = match (name, q.len()) {
                    (b"ecdsa-sha2-nistp256", 65) => KeyType::EcP256,
                    (b"ecdsa-sha2-nistp384", 97) => KeyType::EcP384,
                    _ => return Err(bad_key("OpenSSH ECDSA key has a bad point")),
                };
                (DecodingKey::from_ec_der(q), t)
            }
            _ => {
                return Err(bad_key(
                    "unsupported OpenSSH key type (ssh-rsa, ecdsa-sha2-nistp256/384 and ssh-ed25519 are)",
                ));
            }
        };
        Self::public(decoding, key_type, None, None)
    }

    /// A JWK (JSON text). Honors `kid`, `alg` and `use` (must be `sig` if present).
    pub fn from_jwk(json: &str) -> Result<Self> {
        let jwk: Jwk =
            serde_json::from_str(json).map_err(|e| bad_key(format!("invalid JWK: {e}")))?;
        Self::from_parsed_jwk(&jwk)
    }

    /// [`VerifyingKey::from_jwk`] for JSON already parsed.
    pub(super) fn from_jwk_value(v: serde_json::Value) -> Result<Self> {
        let jwk: Jwk =
            serde_json::from_value(v).map_err(|e| bad_key(format!("invalid JWK: {e}")))?;
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
                EllipticCurve::Ed25519 => {
                    let x = URL_SAFE_NO_PAD
                        .decode(p.x.trim_end_matches('='))
                        .map_err(|_| bad_key("invalid JWK: x is not base64url"))?;
                    if x.len() != 32 {
                        return Err(bad_key("invalid JWK: an Ed25519 x is 32 bytes"));
                    }
                    check_ed25519_point(&x)?;
                    KeyType::Ed25519
                }
                _ => return Err(bad_key("unsupported OKP curve (Ed25519 is)")),
            },
            AlgorithmParameters::OctetKey(p) => {
                let k = URL_SAFE_NO_PAD
                    .decode(p.value.trim_end_matches('='))
                    .map_err(|_| bad_key("invalid JWK: k is not base64url"))?;
                // A JWK says what it is: its k is a secret whatever its bytes look like.
                check_secret_len(k.len())?;
                let mut key = Self::secret_unchecked(&k);
                key.kid = jwk.common.key_id.clone();
                key.alg = jwk_alg(jwk)?;
                return key.checked();
            }
            _ => return Err(bad_key("unsupported JWK key type")),
        };
        let decoding =
            DecodingKey::from_jwk(jwk).map_err(|e| bad_key(format!("invalid JWK: {e}")))?;
        Self::public(decoding, key_type, jwk.common.key_id.clone(), jwk_alg(jwk)?)
    }

    /// Refuses weak keys and algorithm restrictions that do not fit the key type.
    fn checked(self) -> Result<Self> {
        if let KeyType::Rsa { bits } = self.key_type {
            check_rsa_bits(bits)?;
        }
        if let Some(a) = self.alg
            && self.key_type == KeyType::Hmac
        {
            check_hmac_fits(self.secret_len, a)?;
        }
        if let Some(a) = self.alg
            && !self.key_type.algorithms().contains(&a)
        {
            return Err(bad_key(format!(
                "algorithm {} does not fit a {} key",
                a.as_str(),
                self.key_type.name()
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

    /// The one algorithm this key is restricted to (a JWK's `alg`), if any.
    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    /// True if `signature` over `message` is valid under this key with `alg`
    /// (the parsed key is built on first use and kept).
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.allows(alg) && self.parsed.verify(&self.decoding, alg, message, signature)
    }

    /// True if this key may verify a token signed with `alg` (an HMAC
    /// secret only for the algorithms it is long enough for).
    pub fn allows(&self, alg: Alg) -> bool {
        self.key_type.algorithms().contains(&alg)
            && self.alg.is_none_or(|a| a == alg)
            && self.secret_len >= min_hmac_bytes(alg)
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
