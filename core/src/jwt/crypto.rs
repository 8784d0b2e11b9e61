//! Parsed key material, kept for the life of a key: aws-lc-rs objects built
//! once per (key, algorithm) on first use, so no call parses a key again.
//! (`jsonwebtoken::crypto` re-parses the DER of the key on every call.)

use super::Alg;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use aws_lc_rs::{hmac, rand};
use jsonwebtoken::{DecodingKey, DecodingKeyKind, EncodingKey};
use std::sync::{Arc, OnceLock};

fn index(alg: Alg) -> usize {
    Alg::ALL.iter().position(|a| *a == alg).unwrap_or(0)
}

fn hmac_alg(alg: Alg) -> Option<hmac::Algorithm> {
    match alg {
        Alg::HS256 => Some(hmac::HMAC_SHA256),
        Alg::HS384 => Some(hmac::HMAC_SHA384),
        Alg::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn verification(alg: Alg) -> Option<&'static dyn VerificationAlgorithm> {
    if let Some(rsa) = rsa_params(alg) {
        return Some(rsa);
    }
    Some(match alg {
        Alg::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Alg::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Alg::EdDSA => &sig::ED25519,
        _ => return None,
    })
}

fn rsa_params(alg: Alg) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Alg::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Alg::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Alg::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Alg::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

enum Verify {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

/// Per-algorithm parsed forms of one verification key.
#[derive(Clone, Default)]
pub(crate) struct VerifyCache(Arc<[OnceLock<Option<Verify>>; 12]>);

impl VerifyCache {
    fn build(key: &DecodingKey, alg: Alg) -> Option<Verify> {
        if let Some(h) = hmac_alg(alg) {
            return match key.kind() {
                DecodingKeyKind::SecretOrDer(secret) => {
                    Some(Verify::Hmac(Box::new(hmac::Key::new(h, secret))))
                }
                _ => None,
            };
        }
        let parsed = match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => {
                ParsedPublicKey::new(verification(alg)?, der).ok()?
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => sig::RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .to_parsed_public_key(rsa_params(alg)?)
            .ok()?,
        };
        Some(Verify::Public(parsed))
    }

    /// True if `signature` is valid for `message` under `key` with `alg`.
    pub(crate) fn verify(
        &self,
        key: &DecodingKey,
        alg: Alg,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        match self.0[index(alg)].get_or_init(|| Self::build(key, alg)) {
            Some(Verify::Hmac(k)) => hmac::verify(k, message, signature).is_ok(),
            Some(Verify::Public(p)) => p.verify_sig(message, signature).is_ok(),
            None => false,
        }
    }
}

enum Sign {
    Hmac(Box<hmac::Key>),
    Rsa(sig::RsaKeyPair),
    Ecdsa(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
}

/// Per-algorithm parsed forms of one signing key.
#[derive(Clone, Default)]
pub(crate) struct SignCache(Arc<[OnceLock<Option<Sign>>; 12]>);

impl SignCache {
    fn build(key: &EncodingKey, alg: Alg) -> Option<Sign> {
        let der = key.as_bytes();
        Some(match alg {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => {
                Sign::Hmac(Box::new(hmac::Key::new(hmac_alg(alg)?, der)))
            }
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Sign::Rsa(sig::RsaKeyPair::from_der(der).ok()?)
            }
            // PKCS#8 or SEC1 (`EC PRIVATE KEY`).
            Alg::ES256 => Sign::Ecdsa(
                sig::EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .ok()?,
            ),
            Alg::ES384 => Sign::Ecdsa(
                sig::EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, der)
                    .ok()?,
            ),
            Alg::EdDSA => Sign::Ed(sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?),
        })
    }

    /// The signature of `message` under `key` with `alg`, or None if the key cannot sign it.
    pub(crate) fn sign(&self, key: &EncodingKey, alg: Alg, message: &[u8]) -> Option<Vec<u8>> {
        let rng = rand::SystemRandom::new();
        match self.0[index(alg)]
            .get_or_init(|| Self::build(key, alg))
            .as_ref()?
        {
            Sign::Hmac(k) => Some(hmac::sign(k, message).as_ref().to_vec()),
            Sign::Rsa(k) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    Alg::RS256 => &sig::RSA_PKCS1_SHA256,
                    Alg::RS384 => &sig::RSA_PKCS1_SHA384,
                    Alg::RS512 => &sig::RSA_PKCS1_SHA512,
                    Alg::PS256 => &sig::RSA_PSS_SHA256,
                    Alg::PS384 => &sig::RSA_PSS_SHA384,
                    Alg::PS512 => &sig::RSA_PSS_SHA512,
                    _ => return None,
                };
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut out).ok()?;
                Some(out)
            }
            Sign::Ecdsa(k) => Some(k.sign(&rng, message).ok()?.as_ref().to_vec()),
            Sign::Ed(k) => Some(k.sign(message).as_ref().to_vec()),
        }
    }
}
