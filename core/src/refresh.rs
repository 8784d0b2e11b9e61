//! Refresh-token families with reuse detection (OAuth 2.0 Security BCP
//! §4.14, OAuth 2.1 §4.3.1): an access JWT signed with the managed keys
//! plus an opaque refresh token stored as its SHA-256.
//!
//! - [`TokenManager::refresh_token_pair`] spends the presented refresh
//!   token and issues the next pair of the same family, in one transaction:
//!   of two refreshes of one token (any processes, any hosts on the store)
//!   exactly one spends it.
//! - A spent token presented again means two parties hold it: the whole
//!   family is revoked (the live refresh token with it) and the caller gets
//!   `REFRESH_TOKEN_REUSED`; an event `refresh_token_reused` and an audit
//!   entry record it. The loser of a race is such a caller.
//! - A family ends at its absolute lifetime, or when its live refresh token
//!   lapses unused (the idle timeout); it can be revoked by id or for a
//!   subject. Access tokens already issued live until their own `exp`.

pub use crate::model::refresh::*;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{generate_token, hash_key, is_well_formed};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use crate::replay::Presented;
use crate::signals::Event;
use crate::store::{self, FamilyRow};
use serde_json::{Map, Value, json};

/// Largest JSON text of a family's extra claims, in bytes.
pub const MAX_FAMILY_CLAIMS_BYTES: usize = 8 * 1024;
/// The revoke reason recorded when a spent refresh token came back.
pub const REUSE_REASON: &str = "reuse_detected";

fn ttl(what: &str, v: Option<i64>, default: i64, max: i64) -> Result<i64> {
    match v.unwrap_or(default) {
        n if n <= 0 => Err(Error::invalid(format!("{what} must be positive"))),
        n if n > max => Err(Error::invalid(format!("{what} must be at most {max}"))),
        n => Ok(n),
    }
}

/// The family's state at `now`, as [`TokenFamily::status`] says it.
fn status(f: &FamilyRow, now: i64) -> &'static str {
    if f.revoked_at.is_some() {
        "revoked"
    } else if f.ends_at <= now {
        "expired"
    } else {
        "active"
    }
}

/// `REFRESH_TOKEN_REVOKED` for family `f`.
fn revoked(f: &FamilyRow) -> Error {
    Error::new(
        ErrorKind::RefreshTokenRevoked,
        format!(
            "the token family {} was revoked ({})",
            f.id,
            f.revoke_reason.as_deref().unwrap_or("revoked")
        ),
    )
}

/// Refuses a family that is revoked or ended.
fn live(f: &FamilyRow, now: i64) -> Result<()> {
    match status(f, now) {
        "revoked" => Err(revoked(f)),
        "expired" => Err(Error::new(
            ErrorKind::RefreshTokenExpired,
            if f.expires_at <= now {
                format!("the token family {} reached its absolute lifetime", f.id)
            } else {
                format!(
                    "the refresh token of family {} lapsed unused (idle timeout)",
                    f.id
                )
            },
        )),
        _ => Ok(()),
    }
}

/// The hash of `token` if it has the refresh-token shape and checksum
/// (refused without a lookup otherwise; the error never quotes it).
fn parse(token: &str) -> Result<[u8; 32]> {
    let shaped = token
        .strip_prefix(REFRESH_PREFIX)
        .is_some_and(|t| t.starts_with('_'))
        && is_well_formed(token);
    if !shaped {
        return Err(Error::new(
            ErrorKind::RefreshTokenInvalid,
            "not a refresh token (wrong shape or checksum)",
        ));
    }
    Ok(hash_key(token))
}

fn to_family(f: &FamilyRow, now: i64) -> Result<TokenFamily> {
    Ok(TokenFamily {
        id: f.id.clone(),
        subject: f.subject.clone(),
        scopes: serde_json::from_str(&f.scopes_json)?,
        status: status(f, now).to_string(),
        created_at: f.created_at,
        expires_at: f.expires_at,
        refreshed_at: f.refreshed_at,
        idle_expires_at: f.ends_at,
        generation: f.generation,
        revoked_at: f.revoked_at,
        revoke_reason: f.revoke_reason.clone(),
    })
}

/// What the refresh transaction decided.
enum Refresh {
    /// Spent; the next token is stored.
    Done,
    /// The token was spent already: the family is revoked now.
    Reused { generation: i64 },
}

impl TokenManager {
    /// Starts a refresh-token family for `req.subject`: an access JWT
    /// (managed signing keys; `sub`, `scope`, `fid`, `iat`, `exp`, `jti`
    /// and `req.claims`) and a refresh token that gets the next pair once.
    pub fn issue_token_pair(&self, req: &NewTokenPair) -> Result<TokenPair> {
        crate::keys::check_len("subject", &req.subject, 1, 256)?;
        let (scopes, scopes_json) = crate::keys::scopes_json(&req.scopes)?;
        if let Some(k) = RESERVED_CLAIMS
            .iter()
            .find(|k| req.claims.contains_key(**k))
        {
            return Err(Error::invalid(format!(
                "claim {k:?} is set by irontoken in a token pair; it cannot be given"
            )));
        }
        let mut claims = req.claims.clone();
        let mut cnf = Map::new();
        for (name, v) in [("jkt", &req.dpop_jkt), ("x5t#S256", &req.cert_thumbprint)] {
            if let Some(t) = v {
                // Both are base64url SHA-256 digests: 43 characters.
                let ok = t.len() == 43
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(Error::invalid(format!(
                        "{name} must be a base64url SHA-256 thumbprint (43 characters)"
                    )));
                }
                cnf.insert(name.into(), json!(t));
            }
        }
        if !cnf.is_empty() {
            if claims.contains_key("cnf") {
                return Err(Error::invalid(
                    "give the binding as dpop_jkt / cert_thumbprint or as a cnf claim, not both",
                ));
            }
            claims.insert("cnf".into(), Value::Object(cnf));
        }
        let claims_json = serde_json::to_string(&claims)?;
        if claims_json.len() > MAX_FAMILY_CLAIMS_BYTES {
            return Err(Error::invalid(format!(
                "claims must be at most {MAX_FAMILY_CLAIMS_BYTES} bytes of JSON"
            )));
        }
        let access_ttl = ttl(
            "ttl_seconds",
            req.ttl_seconds,
            crate::jwt::managed::DEFAULT_TOKEN_TTL,
            MAX_FAMILY_TTL,
        )?;
        let family_ttl = ttl(
            "family_ttl_seconds",
            req.family_ttl_seconds,
            DEFAULT_FAMILY_TTL,
            MAX_FAMILY_TTL,
        )?;
        let refresh_ttl = ttl(
            "refresh_ttl_seconds",
            req.refresh_ttl_seconds,
            DEFAULT_REFRESH_TTL.min(family_ttl),
            MAX_FAMILY_TTL,
        )?;
        let now = self.inner().now();
        let expires_at = crate::clock::time_after("family_ttl_seconds", now, family_ttl)?;
        let ends_at =
            crate::clock::time_after("refresh_ttl_seconds", now, refresh_ttl)?.min(expires_at);
        let family = FamilyRow {
            id: uuid::Uuid::new_v4().to_string(),
            subject: req.subject.clone(),
            scopes_json,
            claims_json,
            access_ttl,
            refresh_ttl,
            created_at: now,
            expires_at,
            refreshed_at: now,
            ends_at,
            generation: 0,
            revoked_at: None,
            revoke_reason: None,
        };
        // Signed first: a missing signing key leaves nothing behind.
        let (access_token, exp) = self.sign_access(&family, &claims, &scopes, now)?;
        let refresh = generate_token(REFRESH_PREFIX)?;
        self.inner().write(|tx| {
            tx.families().insert_family(&family)?;
            tx.families()
                .insert_token(&hash_key(&refresh.plaintext), &family.id, 0, ends_at)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::TokenFamilyCreate,
                key_id: None,
                display_prefix: None,
                actor: None,
                outcome: "ok",
                detail: Some(json!({
                    "family_id": family.id,
                    "subject": family.subject,
                    "expires_at": expires_at,
                })),
            })
        })?;
        crate::metrics::Metrics::inc(&self.inner().metrics.token_pairs_issued);
        Ok(pair(
            access_token,
            &refresh.plaintext,
            exp,
            now,
            &family,
            scopes,
        ))
    }

    /// Spends `refresh_token` and returns the family's next pair.
    ///
    /// Errors: `REFRESH_TOKEN_INVALID` (not issued here), `REFRESH_TOKEN_EXPIRED`
    /// (idle timeout or absolute lifetime), `REFRESH_TOKEN_REVOKED`, and
    /// `REFRESH_TOKEN_REUSED` when the token was spent before — the family
    /// is then revoked, so the pair issued for the first use stops
    /// refreshing too (a thief and the client both sign in again).
    ///
    /// A family bound to a DPoP key or a client certificate refuses a
    /// refresh without its proof: use [`TokenManager::refresh_token_pair_presented`].
    pub fn refresh_token_pair(&self, refresh_token: &str) -> Result<TokenPair> {
        self.refresh_token_pair_presented(refresh_token, &Presented::default())
    }

    /// [`TokenManager::refresh_token_pair`] with the proof of possession of
    /// a bound family: a DPoP proof of the family's key for the refresh
    /// request (`dpop_proof` + `dpop`, its `jti` claimed), and/or the
    /// family's client certificate.
    pub fn refresh_token_pair_presented(
        &self,
        refresh_token: &str,
        presented: &Presented,
    ) -> Result<TokenPair> {
        let h = parse(refresh_token)?;
        let now = self.inner().now();
        let unknown = || {
            Error::new(
                ErrorKind::RefreshTokenInvalid,
                "unknown refresh token (never issued here, or purged)",
            )
        };
        let (row, family) = self
            .inner()
            .db
            .read(|c| {
                let Some(row) = c.families().token(&h)? else {
                    return Ok(None);
                };
                Ok(c.families().family(&row.family_id)?.map(|f| (row, f)))
            })?
            .ok_or_else(unknown)?;
        live(&family, now)?;
        let claims: Map<String, Value> = serde_json::from_str(&family.claims_json)?;
        // A bound family refreshes only with its proof (no `ath`: no access token).
        self.check_binding(&claims, presented, None)?;
        let scopes: Vec<String> = serde_json::from_str(&family.scopes_json)?;
        // The next pair is made before the transaction (signing reads the
        // key table): a failure here spends nothing.
        let next = if row.spent_at.is_none() {
            let access = self.sign_access(&family, &claims, &scopes, now)?;
            Some((access, generate_token(REFRESH_PREFIX)?))
        } else {
            None
        };
        let ends_at = now
            .saturating_add(family.refresh_ttl)
            .min(family.expires_at);
        let decided = self.inner().write(|tx| {
            let f = tx.families().family(&family.id)?.ok_or_else(unknown)?;
            if f.revoked_at.is_some() {
                return Err(revoked(&f));
            }
            if !tx.families().spend(&h, now)? {
                tx.families().revoke_family(&f.id, REUSE_REASON, now)?;
                audit_revoke(tx, &f.id, &f.subject, REUSE_REASON, now)?;
                return Ok(Refresh::Reused {
                    generation: row.generation,
                });
            }
            live(&f, now)?;
            if row.expires_at <= now {
                return Err(Error::new(
                    ErrorKind::RefreshTokenExpired,
                    "the refresh token lapsed unused (idle timeout)",
                ));
            }
            let Some((_, refresh)) = &next else {
                return Err(Error::new(ErrorKind::Internal, "refresh token state moved"));
            };
            let generation = f.generation + 1;
            if !tx.families().refreshed(&f.id, generation, now, ends_at)? {
                // Revoked by a transaction that committed after the read above.
                return Err(revoked(&f));
            }
            tx.families().insert_token(
                &hash_key(&refresh.plaintext),
                &f.id,
                generation,
                ends_at,
            )?;
            Ok(Refresh::Done)
        })?;
        match (decided, next) {
            (Refresh::Done, Some(((access, exp), refresh))) => {
                crate::metrics::Metrics::inc(&self.inner().metrics.refreshes);
                let family = FamilyRow { ends_at, ..family };
                Ok(pair(access, &refresh.plaintext, exp, now, &family, scopes))
            }
            (Refresh::Reused { generation }, _) => {
                let inner = self.inner();
                crate::metrics::Metrics::inc(&inner.metrics.refresh_reuse);
                inner.signals.push(Event {
                    kind: "refresh_token_reused".into(),
                    at: now,
                    key_id: None,
                    display_prefix: None,
                    detail: json!({
                        "family_id": family.id,
                        "subject": family.subject,
                        "generation": generation,
                    }),
                });
                Err(Error::new(
                    ErrorKind::RefreshTokenReused,
                    format!(
                        "the refresh token was already used: token family {} is revoked \
                         (reuse detected)",
                        family.id
                    ),
                ))
            }
            (Refresh::Done, None) => Err(Error::new(ErrorKind::Internal, "no pair was made")),
        }
    }

    /// The family `id` (also when revoked or ended, until purged).
    pub fn get_token_family(&self, id: &str) -> Result<TokenFamily> {
        let now = self.inner().now();
        let f = self
            .inner()
            .db
            .read(|c| c.families().family(id))?
            .ok_or_else(|| family_not_found(id))?;
        to_family(&f, now)
    }

    /// Revokes the family `id`: its refresh token is refused from now on
    /// (`REFRESH_TOKEN_REVOKED`). False if it was revoked already.
    pub fn revoke_token_family(&self, id: &str, reason: Option<&str>) -> Result<bool> {
        let reason = crate::keys::reason_or(reason, "revoked")?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            let f = tx
                .families()
                .family(id)?
                .ok_or_else(|| family_not_found(id))?;
            let done = tx.families().revoke_family(id, reason, now)?;
            if done {
                audit_revoke(tx, &f.id, &f.subject, reason, now)?;
            }
            Ok(done)
        })
    }

    /// Revokes every live family of `subject` (sign-out everywhere); returns
    /// how many it revoked.
    pub fn revoke_token_families(&self, subject: &str, reason: Option<&str>) -> Result<u64> {
        crate::keys::check_len("subject", subject, 1, 256)?;
        let reason = crate::keys::reason_or(reason, "revoked")?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            let ids = tx.families().revoke_subject(subject, reason, now)?;
            for id in &ids {
                audit_revoke(tx, id, subject, reason, now)?;
            }
            Ok(ids.len() as u64)
        })
    }

    /// Signs the family's access token at `now`: its claims plus `sub`,
    /// `scope`, `fid`, `iat`, `exp` (never past the family's end) and `jti`.
    fn sign_access(
        &self,
        f: &FamilyRow,
        extra: &Map<String, Value>,
        scopes: &[String],
        now: i64,
    ) -> Result<(String, i64)> {
        let exp = now.saturating_add(f.access_ttl).min(f.expires_at);
        let mut c = extra.clone();
        c.insert("sub".into(), json!(f.subject));
        c.insert("scope".into(), json!(scopes.join(" ")));
        c.insert("fid".into(), json!(f.id));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(exp));
        c.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        Ok((self.sign_managed(&c)?, exp))
    }
}

fn pair(
    access_token: String,
    refresh: &str,
    exp: i64,
    now: i64,
    f: &FamilyRow,
    scopes: Vec<String>,
) -> TokenPair {
    TokenPair {
        access_token,
        refresh_token: refresh.to_string(),
        expires_in: exp - now,
        expires_at: exp,
        refresh_expires_at: f.ends_at,
        family_id: f.id.clone(),
        token_type: "Bearer",
        scopes,
    }
}

/// The audit entry of a revoked family (outcome `reuse_detected` when a
/// spent refresh token came back).
fn audit_revoke(
    tx: &dyn store::Tx,
    family_id: &str,
    subject: &str,
    reason: &str,
    now: i64,
) -> Result<()> {
    tx.audit().insert(&NewAuditEvent {
        at: now,
        action: AuditAction::TokenFamilyRevoke,
        key_id: None,
        display_prefix: None,
        actor: None,
        outcome: if reason == REUSE_REASON {
            REUSE_REASON
        } else {
            "ok"
        },
        detail: Some(json!({"family_id": family_id, "subject": subject, "reason": reason})),
    })
}

fn family_not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no token family with id {:?}",
            id.chars().take(64).collect::<String>()
        ),
    )
}
