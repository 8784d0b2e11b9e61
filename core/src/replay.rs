//! One-time ids: a token's or a proof's `jti` accepted once, in every
//! process and host sharing the store (or the Redis server rate limits use).

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::dpop::{self, DpopCheck, DpopProof};
use crate::jwt::mtls;
use crate::jwt::{Decoded, Policy};
use crate::manager::{Rates, TokenManager};
use serde_json::{Map, Value};
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
        self.verify_jwt_presented_once(token, policy, &Presented::default())
    }

    /// [`TokenManager::verify_jwt_presented`], then the token's `jti` is
    /// claimed as by [`TokenManager::verify_jwt_once`].
    pub fn verify_jwt_presented_once(
        &self,
        token: &str,
        policy: &Policy,
        presented: &Presented,
    ) -> Result<Decoded> {
        let d = self.verify_jwt_presented(token, policy, presented)?;
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

/// What a caller presented with an access token beyond the token itself:
/// a DPoP proof with the request it came with, and/or the client
/// certificate of the TLS connection (RFC 8705).
#[derive(Debug, Clone, Default)]
pub struct Presented {
    /// The `DPoP` header's proof.
    pub dpop_proof: Option<String>,
    /// The request the proof must name (method, URI, the server's nonce).
    pub dpop: Option<DpopCheck>,
    /// The client certificate: PEM, DER, or PEM percent-encoded as proxies
    /// forward it.
    pub client_cert: Option<Vec<u8>>,
}

impl Presented {
    /// From a request's parts, as every surface takes them: the proof, the
    /// request's method and URI (both needed with a proof), the server's
    /// nonce, the client certificate.
    pub fn new(
        dpop_proof: Option<String>,
        htm: Option<String>,
        htu: Option<String>,
        dpop_nonce: Option<String>,
        client_cert: Option<Vec<u8>>,
    ) -> Result<Presented> {
        let dpop = match (htm, htu) {
            (Some(htm), Some(htu)) => Some(DpopCheck {
                htm,
                htu,
                nonce: dpop_nonce,
                ..Default::default()
            }),
            _ if dpop_proof.is_some() => {
                return Err(Error::invalid(
                    "a DPoP proof needs the request's htm and htu",
                ));
            }
            _ => None,
        };
        Ok(Presented {
            dpop_proof,
            dpop,
            client_cert,
        })
    }
}

impl TokenManager {
    /// Verifies a DPoP proof ([`crate::jwt::dpop::verify_proof`]) and claims
    /// its `jti` (per key) until it is too old to pass: a proof is accepted
    /// once in every process and host on the store (`DPOP_PROOF_REPLAYED`).
    pub fn verify_dpop_proof(&self, proof: &str, check: &DpopCheck) -> Result<DpopProof> {
        let now = self.inner().now();
        let p = dpop::verify_proof(proof, check, now)?;
        let max_age = check.max_age_seconds.unwrap_or(dpop::DEFAULT_DPOP_MAX_AGE);
        let leeway = check.leeway_seconds.unwrap_or(dpop::DEFAULT_DPOP_LEEWAY);
        let id = format!("dpop:{}:{}", p.jkt, p.jti);
        if !self.claim_jti(&id, p.iat.saturating_add(max_age + leeway))? {
            return Err(Error::new(
                ErrorKind::DpopProofReplayed,
                "the DPoP proof was already accepted once (its jti is claimed)",
            ));
        }
        Ok(p)
    }

    /// [`TokenManager::verify_jwt`] for a token that may be bound to a key
    /// (`cnf.jkt`, RFC 9449) or a client certificate (`cnf["x5t#S256"]`,
    /// RFC 8705): a bound token is accepted only with the proof of
    /// possession in `presented`, and a DPoP proof given for an unbound
    /// token is still verified (and claimed).
    pub fn verify_jwt_presented(
        &self,
        token: &str,
        policy: &Policy,
        presented: &Presented,
    ) -> Result<Decoded> {
        let d = self.verify_jwt_unbound(token, policy)?;
        self.check_binding(&d.claims, presented, Some(token))?;
        Ok(d)
    }

    /// Refuses claims bound to a key or a client certificate (`cnf.jkt`,
    /// `cnf["x5t#S256"]`) without the proof of possession in `presented`
    /// (a DPoP proof of `access_token`, if given, is claimed once). A DPoP
    /// proof given for unbound claims is still verified.
    pub(crate) fn check_binding(
        &self,
        claims: &Map<String, Value>,
        presented: &Presented,
        access_token: Option<&str>,
    ) -> Result<()> {
        let proof = presented.dpop_proof.as_deref();
        let jkt = binding_of(claims, presented.client_cert.as_deref(), proof.is_some())?;
        if let Some(proof) = proof {
            let check = presented.dpop.as_ref().ok_or_else(|| {
                Error::invalid("a DPoP proof needs the request's htm and htu to be checked")
            })?;
            let check = DpopCheck {
                access_token: access_token.map(str::to_string),
                jkt: jkt.map(str::to_string),
                ..check.clone()
            };
            self.verify_dpop_proof(proof, &check)?;
        }
        Ok(())
    }
}

/// The binding rule for claims verified anywhere (by a manager, a
/// `JwtVerifier`, a remote JWKS): refuses what no proof can mend — a
/// certificate-bound token (`cnf["x5t#S256"]`) without that `client_cert`
/// (`MTLS_BINDING_MISMATCH`), a key-bound token (`cnf.jkt`) when no DPoP
/// proof is given (`DPOP_BINDING_MISMATCH`) — and returns the key
/// thumbprint a given proof must be made with (`None`: unbound).
pub fn binding_of<'c>(
    claims: &'c Map<String, Value>,
    client_cert: Option<&[u8]>,
    proof_given: bool,
) -> Result<Option<&'c str>> {
    if let Some(want) = mtls::bound_thumbprint(claims) {
        // A certificate that does not parse binds nothing either.
        let got = client_cert.and_then(|c| mtls::cert_thumbprint(c).ok());
        if got.as_deref() != Some(want) {
            return Err(Error::new(
                ErrorKind::MtlsBindingMismatch,
                "bound to a client certificate (cnf x5t#S256): not the one presented",
            ));
        }
    }
    let jkt = dpop::bound_jkt(claims);
    if jkt.is_some() && !proof_given {
        return Err(Error::new(
            ErrorKind::DpopBindingMismatch,
            "bound to a DPoP key (cnf.jkt): a DPoP proof of that key is needed",
        ));
    }
    Ok(jkt)
}
