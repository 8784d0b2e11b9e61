//! Managed signing keys: generated here, stored encrypted in the database,
//! rotated by `kid` with a verify-only overlap, exported as a JWKS, and used
//! to issue tokens — including access tokens in exchange for an API key.
//!
//! Private material is encrypted with AES-256-GCM under a key derived (HKDF
//! SHA-256) from the application's master key; the `kid` and algorithm are
//! bound in as associated data, so a ciphertext cannot be moved to another
//! row. Without a master key every operation here fails with
//! `MASTER_KEY_REQUIRED`; there is no default secret.

use super::{Alg, Decoded, Keyring, Loaded, Policy, Signer, SigningKey, VerifyingKey, decode};
use crate::error::{Error, ErrorKind, Result};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use crate::store::{SigningRow, Tx};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as sig, KeyPair};
use aws_lc_rs::{hkdf, rand};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// Lifetime of an issued token when the caller gives none (15 minutes).
pub const DEFAULT_TOKEN_TTL: i64 = 900;

/// Algorithms of managed keys.
pub const MANAGED_ALGS: [Alg; 4] = [Alg::RS256, Alg::ES256, Alg::EdDSA, Alg::HS256];

/// A managed signing key as listed (never its private material).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManagedKey {
    /// Key id, written into the `kid` header of the tokens it signs.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// `active` (signs and verifies), `verify_only` (verifies until
    /// `verify_until`), or `retired`.
    pub status: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// End of the verify-only window.
    pub verify_until: Option<i64>,
    /// When it was retired.
    pub retired_at: Option<i64>,
}

/// An access token issued in exchange for an API key.
#[derive(Debug, Clone, Serialize)]
pub struct AccessToken {
    /// The signed JWT.
    pub token: String,
    /// Its expiry (Unix seconds).
    pub expires_at: i64,
    /// The API key it was issued for.
    pub key_id: String,
    /// The key's owner (the token's `sub`).
    pub owner: String,
    /// The scopes carried in the token's `scope` claim.
    pub scopes: Vec<String>,
}

fn effective_status(r: &SigningRow, now: i64) -> &str {
    match r.status.as_str() {
        "verify_only" if r.verify_until.is_some_and(|t| t <= now) => "retired",
        s => s,
    }
}

fn info(r: &SigningRow, now: i64) -> ManagedKey {
    ManagedKey {
        kid: r.kid.clone(),
        alg: r.alg.clone(),
        status: effective_status(r, now).to_string(),
        created_at: r.created_at,
        verify_until: r.verify_until,
        retired_at: r.retired_at,
    }
}

fn aead(master: &[u8]) -> Result<LessSafeKey> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"irontoken signing keys").extract(master);
    let okm = prk
        .expand(&[b"aes-256-gcm v1"], &AES_256_GCM)
        .map_err(|_| Error::new(ErrorKind::Internal, "key derivation failed"))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Name of the master-key check value in `meta`.
const MASTER_CHECK: &str = "master_key_check";

/// A value derived from the master key (HKDF, a separate label from the
/// encryption key) that tells whether a master key is the one this
/// database's signing keys were sealed with, without revealing it.
fn check_value(master: &[u8]) -> Result<String> {
    struct Len16;
    impl hkdf::KeyType for Len16 {
        fn len(&self) -> usize {
            16
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"irontoken master key check").extract(master);
    let mut out = [0u8; 16];
    prk.expand(&[b"check v1"], Len16)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| Error::new(ErrorKind::Internal, "key derivation failed"))?;
    Ok(out.iter().map(|b| format!("{b:02x}")).collect())
}

fn mismatch() -> Error {
    Error::new(
        ErrorKind::MasterKeyMismatch,
        "the master key does not open this database's signing keys (another master key was used); nothing was written",
    )
}

fn aad(kid: &str, alg: &str) -> Vec<u8> {
    format!("irontoken:{kid}:{alg}").into_bytes()
}

pub(crate) fn seal(master: &[u8], kid: &str, alg: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let key = aead(master)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce).map_err(|_| Error::new(ErrorKind::Internal, "random failed"))?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(kid, alg).as_slice()),
        &mut buf,
    )
    .map_err(|_| Error::new(ErrorKind::Internal, "encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

pub(crate) fn open_sealed(
    master: &[u8],
    kid: &str,
    alg: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() <= NONCE_LEN {
        return Err(Error::new(
            ErrorKind::InvalidKeyMaterial,
            "stored signing key is truncated",
        ));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| Error::new(ErrorKind::InvalidKeyMaterial, "bad nonce"))?;
    let mut buf = Zeroizing::new(body.to_vec());
    let plain_len = aead(master)?
        .open_in_place(nonce, Aad::from(aad(kid, alg).as_slice()), &mut buf)
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidKeyMaterial,
                format!("cannot decrypt signing key {kid}: wrong master key or altered row"),
            )
        })?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

fn pem_pkcs8(der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn internal(what: &str) -> Error {
    Error::new(ErrorKind::Internal, format!("{what} failed"))
}

/// Generates private material (PKCS#8 DER, or the HMAC secret) and the public JWK.
fn generate(alg: Alg, kid: &str, rsa_bits: usize) -> Result<(Zeroizing<Vec<u8>>, Option<Value>)> {
    let rng = rand::SystemRandom::new();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    Ok(match alg {
        Alg::RS256 => {
            let size = if rsa_bits >= 3072 {
                aws_lc_rs::rsa::KeySize::Rsa3072
            } else {
                aws_lc_rs::rsa::KeySize::Rsa2048
            };
            let kp = sig::RsaKeyPair::generate(size).map_err(|_| internal("RSA key generation"))?;
            let der = kp.as_der().map_err(|_| internal("RSA encoding"))?;
            let public = kp.public_key();
            let jwk = json!({
                "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            (Zeroizing::new(der.as_ref().to_vec()), Some(jwk))
        }
        Alg::ES256 => {
            let doc =
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| internal("EC key generation"))?;
            let kp =
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                    .map_err(|_| internal("EC key parsing"))?;
            let point = kp.public_key().as_ref();
            let jwk = json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            });
            (Zeroizing::new(doc.as_ref().to_vec()), Some(jwk))
        }
        Alg::EdDSA => {
            let doc = sig::Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(|_| internal("Ed25519 key generation"))?;
            let kp = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(doc.as_ref())
                .map_err(|_| internal("Ed25519 key parsing"))?;
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
                "x": b64(kp.public_key().as_ref()),
            });
            (Zeroizing::new(doc.as_ref().to_vec()), Some(jwk))
        }
        Alg::HS256 => {
            let mut secret = Zeroizing::new(vec![0u8; 32]);
            rand::fill(&mut secret).map_err(|_| internal("random"))?;
            (secret, None)
        }
        other => {
            return Err(Error::invalid(format!(
                "managed keys are RS256, ES256, EdDSA or HS256 (got {})",
                other.as_str()
            )));
        }
    })
}

impl TokenManager {
    pub(crate) fn master(&self) -> Result<&[u8]> {
        self.options().master_key.as_deref().map(|k| k.as_slice()).ok_or_else(|| {
            Error::new(
                ErrorKind::MasterKeyRequired,
                "managed signing keys need a master key (option master_key or IRONTOKEN_MASTER_KEY)",
            )
        })
    }

    /// Inside a write: refuses a master key other than the one this
    /// database's keys were sealed with. The first key written stores the
    /// check value; a database from before the check is checked by opening
    /// one of its stored keys.
    pub(crate) fn ensure_master(&self, tx: &dyn Tx) -> Result<()> {
        let master = self.master()?;
        let ours = check_value(master)?;
        match tx.meta().get(MASTER_CHECK)? {
            Some(stored) if stored == ours => Ok(()),
            Some(_) => Err(mismatch()),
            None => {
                if let Some(r) = tx.signing().all()?.first() {
                    open_sealed(master, &r.kid, &r.alg, &r.private_enc).map_err(|_| mismatch())?;
                }
                tx.meta().put_once(MASTER_CHECK, &ours)?;
                Ok(())
            }
        }
    }

    fn new_key_row(&self, alg: Alg, now: i64) -> Result<SigningRow> {
        let master = self.master()?;
        let kid = format!(
            "{}-{}",
            alg.as_str().to_ascii_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let (private, jwk) = generate(alg, &kid, self.inner().rsa_key_bits)?;
        Ok(SigningRow {
            private_enc: seal(master, &kid, alg.as_str(), &private)?,
            kid,
            alg: alg.as_str().to_string(),
            status: "active".into(),
            public_jwk: jwk.map(|j| j.to_string()),
            created_at: now,
            verify_until: None,
            retired_at: None,
        })
    }

    fn audit_signing(
        tx: &dyn Tx,
        action: AuditAction,
        kid: &str,
        actor: Option<&str>,
        now: i64,
        detail: Value,
    ) -> Result<()> {
        tx.audit().insert(&NewAuditEvent {
            at: now,
            action,
            key_id: Some(kid.to_string()),
            display_prefix: None,
            actor: actor.map(str::to_string),
            outcome: "ok",
            detail: Some(detail),
        })
    }

    /// Generates a managed signing key of `alg` (RS256, ES256, EdDSA, HS256)
    /// and makes it the active one. Fails with `CONFLICT` if one is active
    /// already: rotate instead.
    pub fn create_signing_key(&self, alg: Alg, actor: Option<&str>) -> Result<ManagedKey> {
        let now = self.inner().now();
        let row = self.new_key_row(alg, now)?;
        self.inner().write(|tx| {
            self.ensure_master(tx)?;
            if tx.signing().active()?.is_some() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "an active signing key exists: rotate it instead",
                ));
            }
            Self::insert_signing(tx, &row, actor, now)
        })
    }

    /// Stores a new signing key with its `signing_key.create` audit entry.
    fn insert_signing(
        tx: &dyn Tx,
        row: &SigningRow,
        actor: Option<&str>,
        now: i64,
    ) -> Result<ManagedKey> {
        tx.signing().insert(row)?;
        Self::audit_signing(
            tx,
            AuditAction::SigningKeyCreate,
            &row.kid,
            actor,
            now,
            json!({"alg": row.alg}),
        )?;
        Ok(info(row, now))
    }

    /// Generates a new active key (of `alg`, or the current key's algorithm);
    /// the previous active key verifies for `overlap_seconds` more, then retires
    /// (0: retired at once). With no active key this is `create_signing_key`.
    pub fn rotate_signing_key(
        &self,
        alg: Option<Alg>,
        overlap_seconds: i64,
        actor: Option<&str>,
    ) -> Result<ManagedKey> {
        let now = self.inner().now();
        crate::clock::check_overlap(now, overlap_seconds)?;
        let current = self.inner().db.read(|c| c.signing().active())?;
        let alg = match (alg, &current) {
            (Some(a), _) => a,
            (None, Some(c)) => Alg::parse(&c.alg).ok_or_else(|| internal("stored algorithm"))?,
            (None, None) => {
                return Err(Error::invalid(
                    "no active key to rotate: give the algorithm",
                ));
            }
        };
        let row = self.new_key_row(alg, now)?;
        self.inner().write(|tx| {
            self.ensure_master(tx)?;
            tx.signing().serialize()?;
            let old = tx.signing().active()?;
            Self::replace_active(tx, old, &row, overlap_seconds, actor, now)
        })
    }

    /// Makes `row` the active key; `old` (the active one, if any) verifies
    /// for `overlap_seconds` more, then retires (0: retired at once).
    fn replace_active(
        tx: &dyn Tx,
        old: Option<SigningRow>,
        row: &SigningRow,
        overlap_seconds: i64,
        actor: Option<&str>,
        now: i64,
    ) -> Result<ManagedKey> {
        if let Some(old) = old {
            if overlap_seconds == 0 {
                tx.signing()
                    .set_status(&old.kid, "retired", None, Some(now))?;
            } else {
                tx.signing().set_status(
                    &old.kid,
                    "verify_only",
                    // Bounded by the callers (check_overlap): no overflow.
                    Some(now.saturating_add(overlap_seconds)),
                    None,
                )?;
            }
            Self::audit_signing(
                tx,
                AuditAction::SigningKeyRotate,
                &old.kid,
                actor,
                now,
                json!({"rotated_to": row.kid, "overlap_seconds": overlap_seconds}),
            )?;
        }
        Self::insert_signing(tx, row, actor, now)
    }

    /// The scheduled rotation (cron, on any number of hosts at once): rotates
    /// the active signing key if it is at least `every_seconds` old and
    /// returns the new one, else `None`. Concurrent callers are serialized
    /// and re-check inside the transaction, so a due key is rotated once.
    /// `NOT_FOUND` when there is no active key.
    pub fn rotate_signing_key_if_due(
        &self,
        every_seconds: i64,
        overlap_seconds: i64,
        actor: Option<&str>,
    ) -> Result<Option<ManagedKey>> {
        if every_seconds <= 0 {
            return Err(Error::invalid("every_seconds must be > 0"));
        }
        let now = self.inner().now();
        crate::clock::check_overlap(now, overlap_seconds)?;
        let due = |k: &SigningRow| now.saturating_sub(k.created_at) >= every_seconds;
        let current = self
            .inner()
            .db
            .read(|c| c.signing().active())?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "no active signing key: create one first",
                )
            })?;
        if !due(&current) {
            return Ok(None);
        }
        let alg = Alg::parse(&current.alg).ok_or_else(|| internal("stored algorithm"))?;
        let row = self.new_key_row(alg, now)?;
        self.inner().write(|tx| {
            self.ensure_master(tx)?;
            tx.signing().serialize()?;
            match tx.signing().active()? {
                // Another process rotated it meanwhile (or retired it).
                Some(old) if due(&old) => {
                    Self::replace_active(tx, Some(old), &row, overlap_seconds, actor, now).map(Some)
                }
                _ => Ok(None),
            }
        })
    }

    /// Retires a signing key now: it neither signs nor verifies any more.
    pub fn retire_signing_key(&self, kid: &str, actor: Option<&str>) -> Result<ManagedKey> {
        let now = self.inner().now();
        self.inner().write(|tx| {
            let row = tx.signing().get(kid)?.ok_or_else(|| {
                Error::new(ErrorKind::JwtKeyNotFound, "no signing key with that kid")
            })?;
            tx.signing().set_status(kid, "retired", None, Some(now))?;
            Self::audit_signing(
                tx,
                AuditAction::SigningKeyRetire,
                kid,
                actor,
                now,
                json!({"was": row.status}),
            )?;
            let row = tx
                .signing()
                .get(kid)?
                .ok_or_else(|| internal("reading the key back"))?;
            Ok(info(&row, now))
        })
    }

    /// Every managed signing key, oldest first (never private material).
    pub fn list_signing_keys(&self) -> Result<Vec<ManagedKey>> {
        let now = self.inner().now();
        let rows = self.inner().db.read(|c| c.signing().all())?;
        Ok(rows.iter().map(|r| info(r, now)).collect())
    }

    /// The public JWKS of the keys that verify now (active and verify-only);
    /// HMAC keys are never published.
    pub fn jwks(&self) -> Result<Value> {
        let now = self.inner().now();
        let rows = self.inner().db.read(|c| c.signing().all())?;
        let keys: Vec<Value> = rows
            .iter()
            .filter(|r| matches!(effective_status(r, now), "active" | "verify_only"))
            .filter_map(|r| r.public_jwk.as_deref())
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// The parsed keys, reloaded when the key table changed.
    fn loaded<T>(&self, f: impl FnOnce(&Loaded) -> Result<T>) -> Result<T> {
        let now = self.inner().now();
        let fp = self.inner().db.read(|c| c.signing().fingerprint(now))?;
        let inner = self.inner();
        let mut cache = inner.signing.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|l| l.fingerprint != fp) {
            let master = self.master()?;
            let (stored, rows) = self
                .inner()
                .db
                .read(|c| Ok((c.meta().get(MASTER_CHECK)?, c.signing().all()?)))?;
            if let Some(stored) = stored
                && stored != check_value(master)?
            {
                return Err(mismatch());
            }
            let mut keys = Keyring::new();
            let mut signer = None;
            for r in rows
                .iter()
                .filter(|r| matches!(effective_status(r, now), "active" | "verify_only"))
            {
                let alg = Alg::parse(&r.alg).ok_or_else(|| internal("stored algorithm"))?;
                let private = open_sealed(master, &r.kid, &r.alg, &r.private_enc)?;
                let (sk, vk) = if alg == Alg::HS256 {
                    (SigningKey::hmac(&private)?, VerifyingKey::hmac(&private)?)
                } else {
                    let jwk = r
                        .public_jwk
                        .as_deref()
                        .ok_or_else(|| internal("public key"))?;
                    (
                        SigningKey::from_pem(&pem_pkcs8(&private))?,
                        VerifyingKey::from_jwk(jwk)?,
                    )
                };
                keys.add(vk.with_kid(r.kid.clone()).with_alg(alg)?)?;
                if r.status == "active" {
                    signer = Some(Signer::new(sk.with_kid(r.kid.clone()), alg)?);
                }
            }
            *cache = Some(Loaded {
                fingerprint: fp,
                keys,
                signer,
            });
        }
        match cache.as_ref() {
            Some(l) => f(l),
            None => Err(internal("loading signing keys")),
        }
    }

    /// Signs `claims` with the active managed key. `iat` (now), `exp` (now +
    /// `ttl_seconds`, default 15 minutes) and `jti` are added when absent.
    pub fn issue_jwt(
        &self,
        claims: &Map<String, Value>,
        ttl_seconds: Option<i64>,
    ) -> Result<String> {
        let ttl = ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL);
        if ttl <= 0 {
            return Err(Error::invalid("ttl_seconds must be positive"));
        }
        let now = self.inner().now();
        let mut c = claims.clone();
        c.entry("iat").or_insert(json!(now));
        let exp = crate::clock::time_after("ttl_seconds", now, ttl)?;
        c.entry("exp").or_insert(json!(exp));
        c.entry("jti")
            .or_insert(json!(uuid::Uuid::new_v4().to_string()));
        self.sign_managed(&c)
    }

    /// Signs `claims` exactly as given with the active managed key.
    pub(crate) fn sign_managed(&self, claims: &Map<String, Value>) -> Result<String> {
        self.loaded(|l| {
            let signer = l.signer.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorKind::NoActiveSigningKey,
                    "no active signing key: create one first",
                )
            })?;
            let t = signer.sign(claims, None)?;
            crate::metrics::Metrics::inc(&self.inner().metrics.jwt_issued);
            Ok(t)
        })
    }

    /// Verifies a token issued by this manager's keys (active or within a
    /// rotation overlap) under `policy`, at the manager's time.
    ///
    /// A token bound to a key or a client certificate (`cnf.jkt`,
    /// `cnf["x5t#S256"]`) is not a bearer token: it is refused here
    /// (`DPOP_BINDING_MISMATCH` / `MTLS_BINDING_MISMATCH`) and accepted by
    /// [`TokenManager::verify_jwt_presented`] with its proof.
    pub fn verify_jwt(&self, token: &str, policy: &Policy) -> Result<Decoded> {
        self.verify_jwt_presented(token, policy, &Default::default())
    }

    /// [`TokenManager::verify_jwt`] without the check of a binding.
    pub(crate) fn verify_jwt_unbound(&self, token: &str, policy: &Policy) -> Result<Decoded> {
        let now = self.inner().now();
        self.loaded(|l| decode(token, &l.keys, policy, now))
    }

    /// Exchanges a valid API key for a short-lived access token: `sub` = the
    /// key's owner, `key_id`, `scope` (space-separated scopes), lifetime
    /// `ttl_seconds` (default 15 minutes) but never past the key's expiry.
    /// A key that does not verify yields no token (its reason as the error).
    pub fn exchange_api_key(
        &self,
        api_key: &str,
        required_scopes: &[&str],
        ttl_seconds: Option<i64>,
    ) -> Result<AccessToken> {
        use crate::keys::VerifyReason as R;
        let v = self.verify_key(api_key, required_scopes)?;
        let record = match (v.reason, v.record) {
            (R::Valid, Some(r)) => r,
            (reason, _) => {
                let kind = match reason {
                    R::Malformed => ErrorKind::KeyMalformed,
                    R::NotFound | R::Valid => ErrorKind::KeyNotFound,
                    R::Disabled => ErrorKind::KeyDisabled,
                    R::Revoked => ErrorKind::KeyRevoked,
                    R::Expired => ErrorKind::KeyExpired,
                    R::InsufficientScope => ErrorKind::InvalidArgument,
                    R::RateLimited => ErrorKind::RateLimited,
                    R::UsageExceeded => ErrorKind::UsageExceeded,
                    R::ModelNotAllowed => ErrorKind::ModelNotAllowed,
                    R::RequestTooLarge => ErrorKind::RequestTooLarge,
                };
                return Err(Error::new(
                    kind,
                    format!("API key refused: {}", reason.code()),
                ));
            }
        };
        let now = self.inner().now();
        let ttl = ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL);
        if ttl <= 0 {
            return Err(Error::invalid("ttl_seconds must be positive"));
        }
        let until = crate::clock::time_after("ttl_seconds", now, ttl)?;
        let exp = record.expires_at.map_or(until, |e| e.min(until));
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(record.owner));
        claims.insert("key_id".into(), json!(record.id));
        claims.insert("scope".into(), json!(record.scopes.join(" ")));
        claims.insert("exp".into(), json!(exp));
        let token = self.issue_jwt(&claims, Some(ttl))?;
        self.inner().write(|tx| {
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::TokenExchange,
                key_id: Some(record.id.clone()),
                display_prefix: Some(record.display_prefix.clone()),
                actor: None,
                outcome: "ok",
                detail: Some(json!({"expires_at": exp})),
            })
        })?;
        crate::metrics::Metrics::inc(&self.inner().metrics.exchanges);
        Ok(AccessToken {
            token,
            expires_at: exp,
            key_id: record.id,
            owner: record.owner,
            scopes: record.scopes,
        })
    }
}
