//! What key material *is*, judged by its content and never by the type it
//! arrived in (bytes or text): the one classifier behind every surface.
//!
//! PEM armour anywhere in the input (after leading text such as openssl's
//! "Bag Attributes", a byte-order mark, CRLF line ends), DER (SPKI, PKCS#1,
//! PKCS#8, SEC1, X.509 certificates, or any other complete DER sequence),
//! JWK / JWKS JSON and OpenSSH public keys are asymmetric material. Only
//! material that is none of these can be an HMAC secret: a public key used
//! as an HMAC secret is the RS/HS confusion attack, whatever form it took.

use super::verifying_key::bad_key;
use crate::error::Result;

/// The UTF-8 byte-order mark some editors put in front of PEM and JSON files.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Key-type names that start an OpenSSH public key line (or its binary blob).
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
];

/// The structure found in a DER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerKind {
    /// SubjectPublicKeyInfo (`PUBLIC KEY`).
    Spki,
    /// PKCS#1 `RSAPublicKey` (`RSA PUBLIC KEY`).
    RsaPublic,
    /// PKCS#1 `RSAPrivateKey` (`RSA PRIVATE KEY`).
    RsaPrivate,
    /// PKCS#8 `PrivateKeyInfo` (`PRIVATE KEY`).
    Pkcs8,
    /// SEC1 `ECPrivateKey` (`EC PRIVATE KEY`).
    EcPrivate,
    /// An X.509 certificate (`CERTIFICATE`).
    Certificate,
    /// A DER sequence of another shape (never an HMAC secret either).
    Other,
}

impl DerKind {
    /// The PEM label of this structure.
    pub fn pem_label(self) -> &'static str {
        match self {
            DerKind::Spki => "PUBLIC KEY",
            DerKind::RsaPublic => "RSA PUBLIC KEY",
            DerKind::RsaPrivate => "RSA PRIVATE KEY",
            DerKind::Pkcs8 => "PRIVATE KEY",
            DerKind::EcPrivate => "EC PRIVATE KEY",
            DerKind::Certificate => "CERTIFICATE",
            DerKind::Other => "DER",
        }
    }

    fn from_pem_label(label: &str) -> Option<DerKind> {
        Some(match label {
            "PUBLIC KEY" => DerKind::Spki,
            "RSA PUBLIC KEY" => DerKind::RsaPublic,
            "RSA PRIVATE KEY" => DerKind::RsaPrivate,
            "PRIVATE KEY" => DerKind::Pkcs8,
            "EC PRIVATE KEY" => DerKind::EcPrivate,
            "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => DerKind::Certificate,
            _ => return None,
        })
    }

    /// True for public keys and certificates (what verifies).
    pub fn is_public(self) -> bool {
        matches!(
            self,
            DerKind::Spki | DerKind::RsaPublic | DerKind::Certificate
        )
    }

    /// True for private keys (what signs).
    pub fn is_private(self) -> bool {
        matches!(
            self,
            DerKind::RsaPrivate | DerKind::Pkcs8 | DerKind::EcPrivate
        )
    }
}

/// Key material, classified.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// A key or certificate in DER, found as DER or inside PEM armour.
    Der {
        /// Its structure.
        kind: DerKind,
        /// The DER bytes.
        der: Vec<u8>,
    },
    /// PEM armour whose label we do not use (e.g. `ENCRYPTED PRIVATE KEY`,
    /// `OPENSSH PRIVATE KEY`): asymmetric, but not loadable here.
    OtherPem {
        /// The label of the first block.
        label: String,
    },
    /// A JWK (a JSON object with `kty`), parsed.
    Jwk(serde_json::Value),
    /// A JWKS (a JSON object with `keys`), parsed.
    Jwks(serde_json::Value),
    /// An OpenSSH public key: its type name and its decoded wire blob.
    Ssh {
        /// The key type, e.g. `ssh-rsa`.
        key_type: String,
        /// The wire-format blob (base64-decoded).
        blob: Vec<u8>,
    },
    /// None of the above: usable only as an HMAC secret.
    Secret,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key bytes.
        f.write_str(self.describe())
    }
}

impl Material {
    /// A short name of what the material is, for messages and vectors:
    /// `pem`/`der` forms name their structure, e.g. `spki`, `certificate`.
    pub fn describe(&self) -> &'static str {
        match self {
            Material::Der { kind, .. } => match kind {
                DerKind::Spki => "spki",
                DerKind::RsaPublic => "pkcs1-public",
                DerKind::RsaPrivate => "pkcs1-private",
                DerKind::Pkcs8 => "pkcs8",
                DerKind::EcPrivate => "sec1",
                DerKind::Certificate => "certificate",
                DerKind::Other => "der",
            },
            Material::OtherPem { .. } => "pem",
            Material::Jwk(_) => "jwk",
            Material::Jwks(_) => "jwks",
            Material::Ssh { .. } => "ssh",
            Material::Secret => "secret",
        }
    }

    /// True for everything that is not an HMAC secret.
    pub fn is_asymmetric(&self) -> bool {
        !matches!(self, Material::Secret)
    }
}

/// The message for asymmetric material offered as an HMAC secret (PyJWT's wording).
pub(super) fn not_a_secret(m: &Material) -> crate::Error {
    bad_key(format!(
        "the specified key is an asymmetric key or certificate ({}) and must not be used as an HMAC secret",
        m.describe()
    ))
}

fn strip_bom(input: &[u8]) -> &[u8] {
    input.strip_prefix(BOM).unwrap_or(input)
}

/// True if `needle` occurs in `hay`.
pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The total length a DER element starting at `input[0]` claims (header +
/// content), if its header is well formed.
fn der_len(input: &[u8]) -> Option<usize> {
    let first = *input.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 || input.len() < 2 + n {
        return None;
    }
    let mut len = 0usize;
    for b in &input[2..2 + n] {
        len = (len << 8) | *b as usize;
    }
    Some(2 + n + len)
}

/// True if `der` is one DER element with the structure of an X.509
/// certificate (what PEM armour labelled CERTIFICATE must hold too).
pub(super) fn is_certificate_der(der: &[u8]) -> bool {
    der.first() == Some(&0x30)
        && der_len(der) == Some(der.len())
        && der_kind(der) == DerKind::Certificate
}

/// The structure of a DER sequence (caller checked it is one element).
fn der_kind(der: &[u8]) -> DerKind {
    use simple_asn1::ASN1Block as B;
    let Ok(blocks) = simple_asn1::from_der(der) else {
        return DerKind::Other;
    };
    let [B::Sequence(_, items)] = blocks.as_slice() else {
        return DerKind::Other;
    };
    let int_is = |b: &B, v: u32| matches!(b, B::Integer(_, n) if *n == v.into());
    match items.as_slice() {
        [B::Integer(..), B::Integer(..)] => DerKind::RsaPublic,
        [B::Sequence(..), B::BitString(..)] => DerKind::Spki,
        [B::Sequence(..), B::Sequence(..), B::BitString(..)] => DerKind::Certificate,
        [v, B::Sequence(..), B::OctetString(..), ..] if int_is(v, 0) || int_is(v, 1) => {
            DerKind::Pkcs8
        }
        [v, B::OctetString(..), ..] if int_is(v, 1) => DerKind::EcPrivate,
        [v, rest @ ..] if int_is(v, 0) && rest.len() >= 8 => DerKind::RsaPrivate,
        _ => DerKind::Other,
    }
}

/// A JSON object as JWK or JWKS material (parsed once, here).
fn classify_json(v: serde_json::Value) -> Result<Material> {
    match v.as_object() {
        Some(o) if o.contains_key("keys") => Ok(Material::Jwks(v)),
        Some(o) if o.contains_key("kty") => Ok(Material::Jwk(v)),
        _ => Err(bad_key(
            "the key is a JSON object that is neither a JWK (no \"kty\") nor a JWKS (no \"keys\")",
        )),
    }
}

fn classify_ssh(text: &[u8]) -> Option<Result<Material>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let key_type = parts.next()?;
    let known = SSH_KEY_TYPES.contains(&key_type) || key_type.ends_with("-cert-v01@openssh.com");
    if !known {
        return None;
    }
    use base64::Engine;
    let blob = parts
        .next()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    Some(match blob {
        Some(blob) => Ok(Material::Ssh {
            key_type: key_type.to_string(),
            blob,
        }),
        None => Err(bad_key(
            "the key looks like an OpenSSH public key but its base64 body does not decode",
        )),
    })
}

/// True if the raw bytes are an OpenSSH wire-format blob (length-prefixed
/// key-type name), as some tools store them.
fn is_ssh_blob(input: &[u8]) -> bool {
    if input.len() < 4 {
        return false;
    }
    let n = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
    input
        .get(4..4 + n)
        .and_then(|name| std::str::from_utf8(name).ok())
        .is_some_and(|name| SSH_KEY_TYPES.contains(&name))
}

/// Decides what `input` is from its content alone.
///
/// Errors (`INVALID_KEY_MATERIAL`) when the input is asymmetric-looking but
/// unreadable (PEM armour without a readable block, JSON that is not a
/// JWK/JWKS, an OpenSSH line that does not decode): such input is never
/// taken as an HMAC secret either.
pub fn classify(input: &[u8]) -> Result<Material> {
    let body = strip_bom(input);
    // PEM armour anywhere: leading text, CRLF and trailing text are fine.
    if contains(body, b"-----BEGIN ") {
        let blocks = pem::parse_many(body)
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad_key("the key has PEM armour but no readable PEM block"))?;
        // The first block that holds a key or certificate we use; else the
        // first block's label (asymmetric, not loadable).
        for b in &blocks {
            if let Some(kind) = DerKind::from_pem_label(b.tag()) {
                return Ok(Material::Der {
                    kind,
                    der: b.contents().to_vec(),
                });
            }
        }
        return Ok(Material::OtherPem {
            label: blocks[0].tag().chars().take(40).collect(),
        });
    }
    let trimmed = body.trim_ascii();
    // A JSON object is a JWK or JWKS (or a mistake); text or bytes that only
    // start with '{' (a random secret can) are not JSON.
    if trimmed.first() == Some(&b'{')
        && let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_slice(trimmed)
    {
        return classify_json(v);
    }
    if let Some(m) = classify_ssh(trimmed) {
        return m;
    }
    if is_ssh_blob(input) {
        return Ok(Material::Ssh {
            key_type: String::new(),
            blob: input.to_vec(),
        });
    }
    // DER of a key or certificate structure. A byte string that merely
    // parses as some other DER sequence stays a secret: random secrets can
    // (rarely) do that, and no public key takes that shape.
    if input.first() == Some(&0x30) && der_len(input) == Some(input.len()) {
        let kind = der_kind(input);
        if kind != DerKind::Other {
            return Ok(Material::Der {
                kind,
                der: input.to_vec(),
            });
        }
    }
    Ok(Material::Secret)
}

/// Reads OpenSSH wire-format strings (`u32` length + bytes).
pub(super) struct SshReader<'a>(pub(super) &'a [u8]);

impl<'a> SshReader<'a> {
    /// The next length-prefixed string.
    pub(super) fn string(&mut self) -> Result<&'a [u8]> {
        let bad = || bad_key("truncated OpenSSH public key");
        let len = self.0.get(..4).ok_or_else(bad)?;
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let s = self.0.get(4..4 + n).ok_or_else(bad)?;
        self.0 = &self.0[4 + n..];
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_secrets_are_secrets() {
        // 200k pseudo-random 32-byte secrets, a quarter forced to start like
        // DER (0x30, the right length), JSON ('{') or whitespace: all secrets.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..200_000u32 {
            let mut b = [0u8; 32];
            for chunk in b.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_le_bytes());
            }
            match i % 8 {
                0 => b[..2].copy_from_slice(&[0x30, 30]),
                1 => b[0] = b'{',
                2 => b[..2].copy_from_slice(b" {"),
                _ => {}
            }
            assert_eq!(classify(&b).unwrap(), Material::Secret, "{b:?}");
        }
    }

    #[test]
    fn secrets_and_lookalikes() {
        assert_eq!(classify(b"a-plain-secret").unwrap(), Material::Secret);
        assert_eq!(classify(&[0u8; 40]).unwrap(), Material::Secret);
        // DER of a key structure is never a secret; other DER may be.
        let pkcs1 = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        assert!(classify(&pkcs1).unwrap().is_asymmetric());
        let other = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(classify(&other).unwrap(), Material::Secret);
        assert!(
            classify(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host").is_ok_and(|m| m.is_asymmetric())
        );
        assert!(classify(b"ssh-rsa !!!").is_err());
        assert!(classify(b"\xEF\xBB\xBF{\"keys\":[]}").is_ok_and(|m| m.describe() == "jwks"));
        // Text or bytes that merely start with '{' are secrets; a JSON object
        // that is neither a JWK nor a JWKS is refused.
        assert_eq!(
            classify(b"{not json, a password").unwrap(),
            Material::Secret
        );
        assert_eq!(classify(b"{\xff\xfe binary").unwrap(), Material::Secret);
        assert!(classify(br#"{"a": 1}"#).is_err());
        assert_eq!(
            classify(b"ssh-is-my-password-of-32-bytes!!").unwrap(),
            Material::Secret
        );
        assert!(classify(b"-----BEGIN PUBLIC KEY-----\nnope").is_err());
        assert!(
            classify(
                b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
            )
            .is_ok_and(|m| m.is_asymmetric())
        );
    }
}
