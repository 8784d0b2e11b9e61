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
use crate::store;
use serde_json::Map;

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
        let id = uuid::Uuid::new_v4().to_string();
        let s = self.inner().write(|tx| {
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
        if let Some(r) = reason {
            crate::keys::check_text("reason", r, 1, 256)?;
        }
        self.session_change(id, "end", false, |tx, now, _| {
            tx.sessions().end(id, reason.unwrap_or("ended"), now)
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
