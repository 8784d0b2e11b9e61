//! One-time ids: a token's or a proof's `jti` accepted once, in every
//! process and host sharing the store (or the Redis server rate limits use).

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::{Decoded, Policy};
use crate::manager::{Rates, TokenManager};
use sha2::{Digest, Sha256};

/// How long past its `expires_at` a claimed id is still kept: a token
/// accepted within a verifier's clock leeway after its expiry is still
/// refused a second time.
pub const JTI_GRACE_SECONDS: i64 = 300;
/// Longest id accepted, in bytes.
pub const MAX_JTI_LEN: usize = 1024;
/// Furthest ahead `expires_at` may be (one year).
pub const MAX_JTI_LIFETIME: i64 = 366 * 86_400;

impl TokenManager {
    /// Claims the one-time id `jti` of a token that expires at `expires_at`
    /// (Unix seconds): true the first time, false for every later claim of
    /// the same id by any process or host on this store — or on the Redis
    /// server when `rate_limit_store` names one. The id is kept (as its
    /// SHA-256) until `expires_at` plus [`JTI_GRACE_SECONDS`], then purged,
    /// so memory stays bounded by the ids of live tokens.
    pub fn claim_jti(&self, jti: &str, expires_at: i64) -> Result<bool> {
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(Error::invalid(format!(
                "jti must be 1 to {MAX_JTI_LEN} bytes"
            )));
        }
        let inner = self.inner();
        let now = inner.now();
        if expires_at > now.saturating_add(MAX_JTI_LIFETIME) {
            return Err(Error::invalid(
                "expires_at is more than a year ahead: a one-time id is kept until then",
            ));
        }
        let keep = expires_at.max(now).saturating_add(JTI_GRACE_SECONDS);
        let hash: [u8; 32] = Sha256::digest(jti.as_bytes()).into();
        match &inner.rates {
            Rates::Redis(r) => r.claim_jti(&hash, keep),
            Rates::Broken(e) => Err(e.clone()),
            // Durable: a claim lost in a crash would let the id be replayed.
            Rates::Local | Rates::Store => inner.db.write(|tx| tx.rates().claim_jti(&hash, keep)),
        }
    }

    /// [`TokenManager::verify_jwt`], then claims the token's `jti` until its
    /// `exp` ([`TokenManager::claim_jti`]): a token accepted once is refused
    /// with `JWT_REPLAYED` every later time, in every process and host on
    /// the store. Both claims are required (`JWT_MISSING_CLAIM`); a refused
    /// token claims nothing.
    pub fn verify_jwt_once(&self, token: &str, policy: &Policy) -> Result<Decoded> {
        let d = self.verify_jwt(token, policy)?;
        let claim = |name: &str| {
            d.claims.get(name).ok_or_else(|| {
                Error::new(
                    ErrorKind::JwtMissingClaim,
                    format!("a one-time token needs the {name} claim"),
                )
                .about_claim(name)
            })
        };
        let jti = claim("jti")?.as_str().ok_or_else(|| {
            Error::new(ErrorKind::JwtInvalidClaim, "jti must be a string").about_claim("jti")
        })?;
        let exp = claim("exp")?.as_i64().ok_or_else(|| {
            Error::new(ErrorKind::JwtInvalidClaim, "exp must be an integer").about_claim("exp")
        })?;
        if !self.claim_jti(jti, exp)? {
            return Err(Error::new(
                ErrorKind::JwtReplayed,
                "the token was already accepted once (its jti is claimed)",
            )
            .about_claim("jti"));
        }
        Ok(d)
    }
}
