//! JWT and JWS: verification under an explicit policy, and signing.
//!
//! The `jsonwebtoken` crate (aws-lc-rs backend) computes and checks
//! signatures; this module owns the policy around it:
//! - the allowed algorithms come from the caller and the key, never from the
//!   token; `none` is never accepted; an algorithm must fit the key type
//!   (no RS/HS confusion);
//! - the key is chosen by `kid` from a [`Keyring`]; an unknown `kid` is an
//!   error, never a fallback;
//! - tokens over [`Policy::max_token_bytes`] are refused before any decoding;
//!   duplicate JSON member names, `crit`, and `b64: false` are refused;
//!   `jku`, `x5u`, `jwk` and `x5c` are never used to find a key; nested
//!   tokens (`cty: JWT`) are not unwrapped;
//! - claims: `exp` (required by default), `nbf`, `iat` (not in the future),
//!   `iss`, `aud`, `sub` (required by default), required claims, leeway, and
//!   registered claims of the wrong JSON type are refused.

mod crypto;
pub mod dpop;
mod json;
mod keyring;
pub(crate) mod managed;
pub mod material;
pub mod mtls;
pub mod remote;
mod sign;
mod verify;
mod verifying_key;

pub use keyring::{CACHED_KEY_MAX_BYTES, Keyring};
pub use managed::{AccessToken, DEFAULT_TOKEN_TTL, MANAGED_ALGS, ManagedKey};
pub use material::{Material, classify};
pub use remote::{RemoteJwks, RemoteJwksOptions, RemoteJwksSettings};
pub use sign::{SigningKey, encode};
pub use verify::{
    DEFAULT_MAX_TOKEN_BYTES, Decoded, DecodedJws, OneOrMany, Policy, PolicySettings, Unverified,
    decode, decode_unverified, verify_jws,
};
pub use verifying_key::{KeyType, MIN_HMAC_BYTES, MIN_RSA_BITS, VerifyingKey, min_hmac_bytes};

use crate::clock::{Clock, SystemClock};
use crate::error::Result;

/// A keyring and a policy, parsed once and reused for every token (the fast
/// path: no key parsing per call).
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: std::sync::Arc<Keyring>,
    policy: Policy,
}

impl Verifier {
    /// A verifier over `keys` with `policy`; refuses one key given directly
    /// with algorithms of both the HMAC and the public-key families, and an
    /// HMAC secret too short for an allowed algorithm.
    pub fn new(keys: impl Into<std::sync::Arc<Keyring>>, policy: Policy) -> Result<Self> {
        let keys = keys.into();
        keys.check_algorithms(&policy.algorithms)?;
        Ok(Verifier { keys, policy })
    }

    /// Verifies a JWT at time `now` (Unix seconds).
    pub fn decode_at(&self, token: &str, now: i64) -> Result<Decoded> {
        verify::decode_checked(token, &self.keys, &self.policy, now)
    }

    /// Verifies a JWT against the system clock.
    pub fn decode(&self, token: &str) -> Result<Decoded> {
        self.decode_at(token, SystemClock.now())
    }

    /// Verifies a compact JWS (signature and header only).
    pub fn verify_jws(&self, token: &str) -> Result<DecodedJws> {
        verify::verify_signature(token, &self.keys, &self.policy)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The keyring.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }
}

/// A signing key and algorithm, parsed once, for many tokens.
#[derive(Debug, Clone)]
pub struct Signer {
    key: SigningKey,
    alg: Alg,
}

impl Signer {
    /// A signer; the algorithm must fit the key (an HMAC secret must be
    /// long enough for it).
    pub fn new(key: SigningKey, alg: Alg) -> Result<Self> {
        sign::check_fit(&key, alg)?;
        Ok(Signer { key, alg })
    }

    /// Signs `claims` (with optional extra header parameters) into a compact JWT.
    pub fn sign(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        extra_header: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String> {
        encode(claims, &self.key, self.alg, extra_header)
    }

    /// A signer for the algorithm named `alg`, writing `kid` (if given) into
    /// the headers: the one constructor every binding needs.
    pub fn named(key: SigningKey, alg: &str, kid: Option<&str>) -> Result<Self> {
        let key = match kid {
            Some(k) => key.with_kid(k),
            None => key,
        };
        Signer::new(key, Alg::from_name(alg)?)
    }

    /// Signs claims given as JSON text, with optional extra header parameters
    /// as JSON text (how the C and Python surfaces hand them over).
    pub fn sign_json(&self, claims_json: &str, header_json: Option<&str>) -> Result<String> {
        let claims = object_from_json(claims_json, "claims")?;
        let header = header_json
            .map(|h| object_from_json(h, "header"))
            .transpose()?;
        self.sign(&claims, header.as_ref())
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }
}

/// A JWS signature algorithm (`none` is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    /// HMAC SHA-256.
    HS256,
    /// HMAC SHA-384.
    HS384,
    /// HMAC SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    RS512,
    /// RSASSA-PSS SHA-256.
    PS256,
    /// RSASSA-PSS SHA-384.
    PS384,
    /// RSASSA-PSS SHA-512.
    PS512,
    /// ECDSA P-256 SHA-256.
    ES256,
    /// ECDSA P-384 SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 12] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// The JOSE name, e.g. `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// The algorithm with this exact JOSE name (case-sensitive; `none` is not one).
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Like [`Alg::parse`], with the error every surface reports for an
    /// unknown name (`JWT_ALG_NOT_ALLOWED`).
    pub fn from_name(name: &str) -> Result<Alg> {
        Alg::parse(name).ok_or_else(|| {
            let shown: String = name.chars().take(16).collect();
            crate::Error::new(
                crate::ErrorKind::JwtAlgNotAllowed,
                format!("unsupported algorithm {shown:?}"),
            )
        })
    }
}

/// Parses `text` as a JSON object (claims or header parameters given as
/// JSON by a binding); `what` names the argument in the error.
pub fn object_from_json(
    text: &str,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(crate::Error::invalid(format!(
            "{what} must be a JSON object"
        ))),
    }
}

/// Parsed managed signing keys (see `managed`), reused while the key table is unchanged.
pub(crate) struct Loaded {
    pub fingerprint: String,
    pub keys: Keyring,
    pub signer: Option<Signer>,
}
