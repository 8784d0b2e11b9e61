//! Sessions: a UUID handed to a runtime, with an owner, an optional API key,
//! a type, metadata, an absolute lifetime and an idle timeout.
//!
//! - [`TokenManager::touch_session`] slides the idle expiry, never past the
//!   absolute one.
//! - The status is computed when read: a session past its expiry reads as
//!   `expired` whether or not [`TokenManager::cleanup_expired_sessions`] has
//!   run; cleanup only makes it permanent (and lets `purge_sessions` delete it).
//! - Revoking an API key ends its live sessions in the same transaction
//!   (`end_reason = "key_revoked"`). Disabling a key does not: a disabled
//!   key can be enabled again, and its sessions keep their own timeouts.

pub use crate::model::sessions::*;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{Page, check_len, metadata_json, page_limit, parse_cursor, refuse_status};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use crate::store;
use serde_json::{Map, json};

fn check_session_id(id: &str) -> Result<()> {
    if id.len() != 36 {
        return Err(Error::new(
            ErrorKind::SessionNotFound,
            "no session with that id (session ids are UUIDs)",
        ));
    }
    Ok(())
}

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::SessionNotFound,
        format!("no session with id {id:?}"),
    )
}

/// Refuses a session that is not live.
fn live(s: &Session, what: &str) -> Result<()> {
    match s.status {
        SessionStatus::Ended => Err(Error::new(
            ErrorKind::SessionEnded,
            format!("cannot {what} session {}: it was ended", s.id),
        )),
        SessionStatus::Expired => Err(Error::new(
            ErrorKind::SessionExpired,
            format!("cannot {what} session {}: it expired", s.id),
        )),
        _ => Ok(()),
    }
}

/// The SHA-256 kept of a caller's fingerprint.
fn fingerprint_hash(f: &str) -> Result<[u8; 32]> {
    if f.is_empty() || f.len() > 1024 {
        return Err(Error::invalid("fingerprint must be 1-1024 bytes"));
    }
    Ok(crate::keys::hash_key(f))
}

/// The fingerprint hash session `id` is bound to, after refusing `given`
/// if it is another one (or none while the session is bound). Compared in
/// constant time.
fn check_fingerprint(tx: &dyn store::Tx, id: &str, given: Option<&str>) -> Result<Option<Vec<u8>>> {
    let stored = tx.sessions().fingerprint(id)?;
    let given = given.map(fingerprint_hash).transpose()?;
    let same = match (&stored, &given) {
        (None, _) => true,
        (Some(s), Some(g)) => aws_lc_rs::constant_time::verify_slices_are_equal(s, g).is_ok(),
        (Some(_), None) => false,
    };
    if same {
        Ok(stored)
    } else {
        Err(Error::new(
            ErrorKind::SessionFingerprintMismatch,
            format!("session {id} is bound to another fingerprint"),
        ))
    }
}

/// Makes room for one more of `owner`'s live sessions under `max`: ends the
/// oldest with `evict`, else refuses (`SESSION_LIMIT_EXCEEDED`).
fn make_room(tx: &dyn store::Tx, owner: &str, max: usize, evict: bool, now: i64) -> Result<()> {
    tx.sessions().serialize_owner(owner)?;
    let live = tx.sessions().live_for_owner(owner, now)?;
    if live.len() < max {
        return Ok(());
    }
    if !evict {
        return Err(Error::new(
            ErrorKind::SessionLimitExceeded,
            format!("the owner has {} live sessions (at most {max})", live.len()),
        ));
    }
    for old in &live[..=live.len() - max] {
        tx.sessions().end(old, "evicted", now)?;
    }
    Ok(())
}

fn positive(what: &str, v: Option<i64>) -> Result<Option<i64>> {
    match v {
        Some(n) if n <= 0 => Err(Error::invalid(format!("{what} must be positive"))),
        v => Ok(v),
    }
}

impl TokenManager {
    /// Creates a session and returns it (its `id` is a new UUID).
    pub fn create_session(&self, req: &NewSession) -> Result<Session> {
        check_len("owner", &req.owner, 1, 256)?;
        let session_type = req.session_type.as_deref().unwrap_or(DEFAULT_SESSION_TYPE);
        check_len("session_type", session_type, 1, 64)?;
        let ttl = positive("ttl_seconds", req.ttl_seconds)?;
        let idle = positive("idle_timeout_seconds", req.idle_timeout_seconds)?;
        let empty = Map::new();
        let metadata = metadata_json(req.metadata.as_ref().unwrap_or(&empty))?;
        let now = self.inner().now();
        let expires_at = ttl
            .map(|t| crate::clock::time_after("ttl_seconds", now, t))
            .transpose()?;
        if let Some(i) = idle {
            crate::clock::time_after("idle_timeout_seconds", now, i)?;
        }
        let fingerprint = req
            .fingerprint
            .as_deref()
            .map(fingerprint_hash)
            .transpose()?;
        if req.max_concurrent == Some(0) {
            return Err(Error::invalid("max_concurrent must be at least 1"));
        }
        if req.evict_oldest && req.max_concurrent.is_none() {
            return Err(Error::invalid("evict_oldest needs max_concurrent"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let s = self.inner().write(|tx| {
            if let Some(max) = req.max_concurrent {
                make_room(tx, &req.owner, max as usize, req.evict_oldest, now)?;
            }
            if let Some(k) = &req.key_id {
                let key = tx.keys().get(k, now)?.ok_or_else(|| {
                    Error::new(ErrorKind::KeyNotFound, format!("no key with id {k:?}"))
                })?;
                refuse_status(&key, "open a session for")?;
            }
            tx.sessions().insert(&store::InsertSession {
                id: &id,
                owner: &req.owner,
                key_id: req.key_id.as_deref(),
                session_type,
                metadata_json: &metadata,
                now,
                expires_at,
                idle_timeout: idle,
                ends_at: crate::model::sessions::next_expiry(expires_at, idle, now),
                fingerprint: fingerprint.as_ref().map(|f| &f[..]),
            })?;
            tx.sessions()
                .get(&id, now)?
                .ok_or_else(|| Error::new(ErrorKind::Internal, "inserted session not found"))
        })?;
        crate::metrics::Metrics::inc(&self.inner().metrics.sessions_created);
        Ok(s)
    }

    /// The session `id` (also when ended or expired).
    pub fn get_session(&self, id: &str) -> Result<Session> {
        check_session_id(id)?;
        let now = self.inner().now();
        self.inner()
            .db
            .read(|c| c.sessions().get(id, now))?
            .ok_or_else(|| not_found(id))
    }

    /// Records activity: slides the idle expiry (never past the absolute
    /// one). `SESSION_EXPIRED` / `SESSION_ENDED` if the session is not live.
    pub fn touch_session(&self, id: &str) -> Result<Session> {
        self.session_change(id, "touch", true, |tx, now, s| {
            let last = s.last_seen_at.max(now);
            let ends_at = crate::model::sessions::next_expiry(s.expires_at, s.idle_timeout, last);
            tx.sessions().touch(id, now, ends_at)
        })
    }

    /// Changes the status (`active` / `paused`) and/or metadata of a live session.
    pub fn update_session(&self, id: &str, u: &SessionUpdate) -> Result<Session> {
        let status = match u.status.as_deref() {
            None => None,
            Some(s @ ("active" | "paused")) => Some(s),
            Some(_) => {
                return Err(Error::invalid(
                    "status must be \"active\" or \"paused\" (use end_session to end it)",
                ));
            }
        };
        let metadata = u.metadata.as_ref().map(metadata_json).transpose()?;
        if status.is_none() && metadata.is_none() {
            return Err(Error::invalid("nothing to update"));
        }
        self.session_change(id, "update", false, |tx, now, _| {
            tx.sessions().update(id, status, metadata.as_deref(), now)
        })
    }

    /// Ends a live session; `reason` (≤ 256 characters) defaults to `ended`.
    pub fn end_session(&self, id: &str, reason: Option<&str>) -> Result<Session> {
        let reason = crate::keys::reason_or(reason, "ended")?;
        self.session_change(id, "end", false, |tx, now, _| {
            tx.sessions().end(id, reason, now)
        })
    }

    /// Checks a live session on a request: bound to `fingerprint` if it is
    /// bound at all (`SESSION_FINGERPRINT_MISMATCH` otherwise, as when a
    /// stolen session id comes from another client), then records the
    /// activity (slides the idle expiry).
    pub fn verify_session(&self, id: &str, fingerprint: Option<&str>) -> Result<Session> {
        self.session_change(id, "use", true, |tx, now, s| {
            check_fingerprint(tx, id, fingerprint)?;
            let last = s.last_seen_at.max(now);
            let ends_at = crate::model::sessions::next_expiry(s.expires_at, s.idle_timeout, last);
            tx.sessions().touch(id, now, ends_at)
        })
    }

    /// Replaces a live session by a new id (on a privilege change: sign-in,
    /// elevation), in one transaction: the old id is ended (`rotated`) and
    /// refused from now on; the new one keeps owner, key, type, metadata,
    /// absolute expiry and idle timeout, and the fingerprint binding (the
    /// given `fingerprint` must match a bound session). Returns the new one.
    pub fn rotate_session(&self, id: &str, fingerprint: Option<&str>) -> Result<Session> {
        check_session_id(id)?;
        let now = self.inner().now();
        let new_id = uuid::Uuid::new_v4().to_string();
        self.inner().write(|tx| {
            let s = tx.sessions().get(id, now)?.ok_or_else(|| not_found(id))?;
            live(&s, "rotate")?;
            let bound = check_fingerprint(tx, id, fingerprint)?;
            let metadata = metadata_json(&s.metadata)?;
            tx.sessions().end(id, "rotated", now)?;
            tx.sessions().insert(&store::InsertSession {
                id: &new_id,
                owner: &s.owner,
                key_id: s.key_id.as_deref(),
                session_type: &s.session_type,
                metadata_json: &metadata,
                now,
                expires_at: s.expires_at,
                idle_timeout: s.idle_timeout,
                ends_at: crate::model::sessions::next_expiry(s.expires_at, s.idle_timeout, now),
                fingerprint: bound.as_deref(),
            })?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::SessionRotate,
                key_id: s.key_id.clone(),
                display_prefix: None,
                actor: None,
                outcome: "ok",
                detail: Some(json!({"from": id, "to": new_id, "owner": s.owner})),
            })?;
            tx.sessions()
                .get(&new_id, now)?
                .ok_or_else(|| Error::new(ErrorKind::Internal, "rotated session not found"))
        })
    }

    /// Ends every live session of `owner` ("sign out everywhere"), but
    /// `except` (the caller's own session, say); returns how many it ended.
    pub fn end_sessions(
        &self,
        owner: &str,
        reason: Option<&str>,
        except: Option<&str>,
    ) -> Result<u64> {
        check_len("owner", owner, 1, 256)?;
        let reason = crate::keys::reason_or(reason, "ended")?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            tx.sessions().serialize_owner(owner)?;
            let mut n = 0;
            for id in tx.sessions().live_for_owner(owner, now)? {
                if Some(id.as_str()) != except {
                    tx.sessions().end(&id, reason, now)?;
                    n += 1;
                }
            }
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::SessionEndAll,
                key_id: None,
                display_prefix: None,
                actor: None,
                outcome: "ok",
                detail: Some(
                    json!({"owner": owner, "ended": n, "reason": reason, "except": except}),
                ),
            })?;
            Ok(n)
        })
    }

    /// Changes a live session in one transaction; `relaxed` commits without
    /// an fsync (touches: frequent, and losing the last one on power loss
    /// only ends a session a little earlier).
    fn session_change(
        &self,
        id: &str,
        what: &str,
        relaxed: bool,
        f: impl FnOnce(&dyn store::Tx, i64, &Session) -> Result<()>,
    ) -> Result<Session> {
        check_session_id(id)?;
        let now = self.inner().now();
        let body = |tx: &dyn store::Tx| {
            let s = tx.sessions().get(id, now)?.ok_or_else(|| not_found(id))?;
            live(&s, what)?;
            f(tx, now, &s)?;
            tx.sessions()
                .get(id, now)?
                .ok_or_else(|| Error::new(ErrorKind::Internal, "session vanished"))
        };
        if relaxed {
            self.inner().db.write_relaxed(body)
        } else {
            self.inner().db.write(body)
        }
    }

    /// One page of sessions, oldest first, filtered by owner, type, status, key.
    pub fn list_sessions(&self, f: &SessionFilter) -> Result<Page<Session>> {
        crate::keys::check_filters(&[
            ("owner", f.owner.as_deref()),
            ("session_type", f.session_type.as_deref()),
            ("key_id", f.key_id.as_deref()),
        ])?;
        let limit = page_limit(f.limit)?;
        let after = parse_cursor(&f.cursor, 0)?;
        let status = f.status.as_deref().map(SessionStatus::parse).transpose()?;
        let now = self.inner().now();
        self.inner()
            .db
            .read(|c| c.sessions().list(f, status, limit, after, now))
    }

    /// Marks every live session past its expiry as `expired` and returns how
    /// many it marked. Reads already answer `expired` before cleanup runs.
    pub fn cleanup_expired_sessions(&self) -> Result<u64> {
        let now = self.inner().now();
        self.inner().db.write(|tx| tx.sessions().mark_expired(now))
    }

    /// Deletes sessions that ended or expired at least `older_than_seconds`
    /// ago (run cleanup first to include unmarked expired ones); returns how many.
    pub fn purge_sessions(&self, older_than_seconds: i64) -> Result<u64> {
        if older_than_seconds < 0 {
            return Err(Error::invalid("older_than_seconds must be >= 0"));
        }
        let now = self.inner().now();
        self.inner()
            .db
            .write(|tx| tx.sessions().purge(now.saturating_sub(older_than_seconds)))
    }
}
