//! API keys: generation, format and checksum, hashing, lifecycle, rotation.
//!
//! Only the SHA-256 of a full key is stored (unique index, lookup by hash)
//! together with a short display prefix. The plaintext is returned exactly
//! once, by [`TokenManager::create_key`] or [`TokenManager::rotate_key`].

mod format;
mod import;
pub mod models;
mod schedule;
mod validate;
mod verify;

pub(crate) use format::generate as generate_token;
pub(crate) use validate::*;
pub use validate::{MAX_REQUIRED_SCOPES, is_bidi_or_invisible};

pub use crate::model::keys::LegacyKeys;
pub use import::{LEGACY_PREFIX, LEGACY_RECHECK_MS, may_be_legacy};

pub use crate::model::keys::{
    CreatedKey, ImportKey, KeyFilter, KeyRecord, KeyStatus, KeyUpdate, NewKey, Page, RotateOptions,
    Verification, VerifyOptions, VerifyReason,
};
pub use format::{
    BODY_LEN, CHECKSUM_LEN, DEFAULT_PREFIX, MAX_KEY_LEN, MAX_PREFIX_LEN, ParsedKey,
    is_credential_param, is_well_formed, key_from_bytes, parse, validate_prefix,
};

use crate::clock::{MAX_TIME, check_expiry, check_overlap, time_after};
use crate::error::{Error, ErrorKind, Result};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use crate::store;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The SHA-256 stored in place of a secret (an API key, a refresh token, a
/// session fingerprint): lookups compare it, never the text.
pub(crate) fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn not_found(id: &str) -> Error {
    // Ids are not secrets, but cap what we echo.
    let shown: String = id.chars().take(MAX_ID).collect();
    Error::new(ErrorKind::KeyNotFound, format!("no key with id {shown:?}"))
}

pub(crate) fn refuse_status(r: &KeyRecord, what: &str) -> Result<()> {
    let (kind, state) = match r.status {
        KeyStatus::Active => return Ok(()),
        KeyStatus::Disabled => (ErrorKind::KeyDisabled, "disabled"),
        KeyStatus::Revoked => (ErrorKind::KeyRevoked, "revoked"),
        KeyStatus::Expired => (ErrorKind::KeyExpired, "expired"),
    };
    Err(Error::new(
        kind,
        format!("cannot {what} key {}: it is {state}", r.id),
    ))
}

/// A validated key to insert: the fields and their JSON columns.
#[derive(Clone)]
struct Insert {
    owner: String,
    name: String,
    description: String,
    scopes: Vec<String>,
    scopes_json: String,
    metadata: Map<String, Value>,
    metadata_json: String,
    prefix: String,
    expires_at: Option<i64>,
    version: u32,
    rotated_from: Option<String>,
    rate_limits: Vec<crate::ratelimit::Limit>,
    rate_limits_json: String,
    model_policy: models::ModelPolicy,
    rotation_period: Option<i64>,
}

/// Most keys one [`TokenManager::create_keys`] call creates.
pub const MAX_BULK_KEYS: usize = 100_000;

fn rate_limits_json(limits: &[crate::ratelimit::Limit]) -> Result<String> {
    crate::ratelimit::Limit::validate_list(limits)?;
    Ok(serde_json::to_string(limits)?)
}

/// The refusal of an `expires_at` that is not in the future.
const EXPIRY_IN_PAST: &str = "expires_at must be in the future";

/// Validates a key request at time `now` into the row to insert.
fn new_insert(req: &NewKey, now: i64) -> Result<Insert> {
    check_len("owner", &req.owner, 1, MAX_OWNER)?;
    check_len("name", &req.name, 0, MAX_NAME)?;
    check_text("description", &req.description, 0, MAX_DESCRIPTION)?;
    check_actor(req.actor.as_deref())?;
    let expires_at = match (req.expires_at, req.expires_in) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("give expires_at or expires_in, not both"));
        }
        (Some(t), None) => Some(check_expiry(t, now, EXPIRY_IN_PAST)?),
        (None, Some(d)) if d <= 0 => {
            return Err(Error::invalid("expires_in must be positive"));
        }
        (None, Some(d)) => Some(time_after("expires_in", now, d)?),
        (None, None) => None,
    };
    let prefix = req.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
    validate_prefix(prefix)?;
    let (scopes, scopes_json) = scopes_json(&req.scopes)?;
    let metadata = req.metadata.clone().unwrap_or_default();
    Ok(Insert {
        owner: req.owner.clone(),
        name: req.name.clone(),
        description: req.description.clone(),
        scopes,
        scopes_json,
        metadata_json: metadata_json(&metadata)?,
        metadata,
        prefix: prefix.to_string(),
        expires_at,
        version: 1,
        rotated_from: None,
        rate_limits_json: rate_limits_json(&req.rate_limits)?,
        rate_limits: req.rate_limits.clone(),
        model_policy: models::ModelPolicy::new(&req.models, req.max_tokens_per_request)?,
        rotation_period: check_rotation_period(req.rotation_period)?,
    })
}

/// Longest rotation period accepted (ten years).
const MAX_ROTATION_PERIOD: i64 = 10 * 366 * 86_400;

/// A rotation period is 1 s to ten years.
fn check_rotation_period(p: Option<i64>) -> Result<Option<i64>> {
    match p {
        Some(s) if !(1..=MAX_ROTATION_PERIOD).contains(&s) => Err(Error::invalid(format!(
            "rotation_period must be 1-{MAX_ROTATION_PERIOD} seconds"
        ))),
        p => Ok(p),
    }
}

/// Writes the `key.create` audit entry of a new key.
fn audit_create(
    tx: &dyn store::Tx,
    created: &CreatedKey,
    actor: Option<String>,
    now: i64,
) -> Result<()> {
    tx.audit().insert(&NewAuditEvent {
        at: now,
        action: AuditAction::KeyCreate,
        key_id: Some(created.record.id.clone()),
        display_prefix: Some(created.record.display_prefix.clone()),
        actor,
        outcome: "ok",
        detail: Some(json!({
            "owner": created.record.owner,
            "scopes": created.record.scopes,
            "expires_at": created.record.expires_at,
        })),
    })
}

/// Writes a key row under `hash` and returns its record (built from what
/// was written, not read back).
fn insert_record(
    tx: &dyn store::Tx,
    k: Insert,
    hash: &[u8; 32],
    display_prefix: String,
    now: i64,
) -> Result<KeyRecord> {
    let id = uuid::Uuid::now_v7().to_string();
    tx.keys().insert(&store::InsertKey {
        id: &id,
        key_hash: hash,
        prefix: &k.prefix,
        display_prefix: &display_prefix,
        owner: &k.owner,
        name: &k.name,
        description: &k.description,
        scopes_json: &k.scopes_json,
        metadata_json: &k.metadata_json,
        now,
        expires_at: k.expires_at,
        version: k.version,
        rotated_from: k.rotated_from.as_deref(),
        rate_limits_json: &k.rate_limits_json,
        model_policy_json: &k.model_policy.to_json()?,
        rotation_period: k.rotation_period,
    })?;
    let mut record = KeyRecord {
        id,
        prefix: k.prefix,
        display_prefix,
        owner: k.owner,
        name: k.name,
        description: k.description,
        scopes: k.scopes,
        metadata: k.metadata,
        created_at: now,
        updated_at: now,
        expires_at: k.expires_at,
        last_used_at: None,
        usage_count: 0,
        enabled: true,
        revoked_at: None,
        revoked_reason: None,
        version: k.version,
        rotated_from: k.rotated_from,
        rotated_to: None,
        rate_limits: k.rate_limits,
        models: k.model_policy.models,
        max_tokens_per_request: k.model_policy.max_tokens_per_request,
        rotation_period: k.rotation_period,
        status: KeyStatus::Active,
    };
    record.status = record.status_at(now);
    Ok(record)
}

impl TokenManager {
    /// Creates a key and returns its plaintext (the only time it is available) and record.
    pub fn create_key(&self, req: &NewKey) -> Result<CreatedKey> {
        self.create_key_then(req, |_| Ok(()))
    }

    /// Like [`TokenManager::create_key`], but calls `deliver` with the new
    /// key before the transaction commits: if it fails (the plaintext could
    /// not be written out), nothing is committed and its error is returned.
    pub fn create_key_then(
        &self,
        req: &NewKey,
        deliver: impl FnOnce(&CreatedKey) -> Result<()>,
    ) -> Result<CreatedKey> {
        let now = self.inner().now();
        let ins = new_insert(req, now)?;
        self.inner().write(|tx| {
            let created = self.insert_key(tx, ins, now)?;
            audit_create(tx, &created, req.actor.clone(), now)?;
            deliver(&created)?;
            Ok(created)
        })
    }

    /// Creates many keys in one transaction: all of them, or none when any
    /// request is invalid (its index is in the message) or a write fails.
    /// For migrations and test fixtures; at most [`MAX_BULK_KEYS`] per call.
    /// Each key gets its own `key.create` audit entry, as with `create_key`.
    pub fn create_keys(&self, reqs: &[NewKey]) -> Result<Vec<CreatedKey>> {
        if reqs.len() > MAX_BULK_KEYS {
            return Err(Error::invalid(format!(
                "at most {MAX_BULK_KEYS} keys per call (got {})",
                reqs.len()
            )));
        }
        let now = self.inner().now();
        let inserts = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                new_insert(r, now).map_err(|e| {
                    let msg = format!("key {i}: {}", e.message());
                    Error::new(e.kind(), msg)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner().write_bulk(|tx| {
            let mut out = Vec::with_capacity(inserts.len());
            for (ins, req) in inserts.into_iter().zip(reqs) {
                let created = self.insert_key(tx, ins, now)?;
                audit_create(tx, &created, req.actor.clone(), now)?;
                out.push(created);
            }
            Ok(out)
        })
    }

    /// Inserts a validated key and returns it with its record (built from
    /// what was written, not read back).
    fn insert_key(&self, tx: &dyn store::Tx, k: Insert, now: i64) -> Result<CreatedKey> {
        crate::metrics::Metrics::inc(&self.inner().metrics.keys_created);
        let generated = format::generate(&k.prefix)?;
        let hash = hash_key(&generated.plaintext);
        let record = insert_record(tx, k, &hash, generated.display_prefix, now)?;
        Ok(CreatedKey {
            key: generated.plaintext,
            record,
        })
    }

    /// Adds this process's not-yet-flushed uses to a record read from the database.
    fn with_pending(&self, mut r: KeyRecord) -> KeyRecord {
        if let Some((n, t)) = self.inner().pending_use(&r.id) {
            r.usage_count += n;
            r.last_used_at = Some(r.last_used_at.map_or(t, |l| l.max(t)));
        }
        r
    }

    /// Runs `read` (a database read plus this process's buffered uses)
    /// again, behind the flush under way, when a write of buffered entries
    /// ran meanwhile: its uses were then in neither place.
    fn counted<T>(&self, mut read: impl FnMut() -> Result<T>) -> Result<T> {
        for _ in 0..3 {
            let inner = self.inner();
            let marks = inner.carry_marks();
            let v = read()?;
            if inner.carried_nothing_since(marks) {
                return Ok(v);
            }
            inner.wait_for_flush();
        }
        read()
    }

    /// The record of key `id`.
    pub fn get_key(&self, id: &str) -> Result<KeyRecord> {
        check_id(id)?;
        let now = self.inner().now();
        let r = self.counted(|| {
            let r = self.inner().db.read_snapshot(|c| c.keys().get(id, now))?;
            Ok(r.map(|r| self.with_pending(r)))
        })?;
        r.ok_or_else(|| not_found(id))
    }

    /// One page of key records, oldest first, filtered by owner and status.
    pub fn list_keys(&self, filter: &KeyFilter) -> Result<Page<KeyRecord>> {
        check_filters(&[
            ("owner", filter.owner.as_deref()),
            ("prefix", filter.prefix.as_deref()),
        ])?;
        if let Some(p) = &filter.prefix {
            check_len("prefix", p, 1, 64)?;
        }
        let limit = page_limit(filter.limit)?;
        let after = parse_cursor(&filter.cursor, 0)?;
        let now = self.inner().now();
        self.counted(|| {
            let mut page = self
                .inner()
                .db
                .read_snapshot(|c| c.keys().list(filter, limit, after, now))?;
            page.items = page
                .items
                .into_iter()
                .map(|r| self.with_pending(r))
                .collect();
            Ok(page)
        })
    }

    /// Changes name, description, scopes, metadata or expiry of key `id`.
    /// A revoked key cannot be changed.
    pub fn update_key(&self, id: &str, u: &KeyUpdate) -> Result<KeyRecord> {
        check_id(id)?;
        let now = self.inner().now();
        if let Some(n) = &u.name {
            check_len("name", n, 0, MAX_NAME)?;
        }
        if let Some(d) = &u.description {
            check_len("description", d, 0, MAX_DESCRIPTION)?;
        }
        check_actor(u.actor.as_deref())?;
        let scopes = u
            .scopes
            .as_deref()
            .map(scopes_json)
            .transpose()?
            .map(|(_, json)| json);
        let metadata = u.metadata.as_ref().map(metadata_json).transpose()?;
        let limits = u.rate_limits.as_deref().map(rate_limits_json).transpose()?;
        if let Some(Some(t)) = u.expires_at {
            check_expiry(
                t,
                now,
                "expires_at must be in the future (revoke or disable to stop a key now)",
            )?;
        }
        if let Some(p) = u.rotation_period {
            check_rotation_period(p)?;
        }
        // Each half of the model policy is checked now, merged with the
        // stored other half in the transaction.
        models::ModelPolicy::new(
            u.models.as_deref().unwrap_or_default(),
            u.max_tokens_per_request.flatten(),
        )?;
        let mut changed: Vec<&str> = Vec::new();
        for (f, set) in [
            ("name", u.name.is_some()),
            ("description", u.description.is_some()),
            ("scopes", scopes.is_some()),
            ("metadata", metadata.is_some()),
            ("expires_at", u.expires_at.is_some()),
            ("rate_limits", limits.is_some()),
            ("rotation_period", u.rotation_period.is_some()),
            ("models", u.models.is_some()),
            ("max_tokens_per_request", u.max_tokens_per_request.is_some()),
        ] {
            if set {
                changed.push(f);
            }
        }
        if changed.is_empty() {
            return Err(Error::invalid("nothing to update"));
        }
        self.change(
            id,
            AuditAction::KeyUpdate,
            u.actor.as_deref(),
            now,
            |tx, r| {
                if r.status == KeyStatus::Revoked {
                    refuse_status(r, "update")?;
                }
                let policy = (u.models.is_some() || u.max_tokens_per_request.is_some())
                    .then(|| {
                        models::ModelPolicy::new(
                            u.models.as_deref().unwrap_or(&r.models),
                            u.max_tokens_per_request.unwrap_or(r.max_tokens_per_request),
                        )?
                        .to_json()
                    })
                    .transpose()?;
                tx.keys().update(
                    id,
                    &store::UpdateFields {
                        name: u.name.as_deref(),
                        description: u.description.as_deref(),
                        scopes_json: scopes.as_deref(),
                        metadata_json: metadata.as_deref(),
                        expires_at: u.expires_at,
                        rate_limits_json: limits.as_deref(),
                        model_policy_json: policy.as_deref(),
                        rotation_period: u.rotation_period,
                    },
                    now,
                )?;
                Ok(Some(json!({ "fields": changed })))
            },
        )
    }

    /// Disables key `id` (verification answers `DISABLED` until enabled).
    pub fn disable_key(&self, id: &str, actor: Option<&str>) -> Result<KeyRecord> {
        self.set_enabled(id, false, actor)
    }

    /// Enables key `id` again.
    pub fn enable_key(&self, id: &str, actor: Option<&str>) -> Result<KeyRecord> {
        self.set_enabled(id, true, actor)
    }

    fn set_enabled(&self, id: &str, enabled: bool, actor: Option<&str>) -> Result<KeyRecord> {
        check_id(id)?;
        check_actor(actor)?;
        let now = self.inner().now();
        let action = if enabled {
            AuditAction::KeyEnable
        } else {
            AuditAction::KeyDisable
        };
        self.change(id, action, actor, now, |tx, r| {
            if r.revoked_at.is_some() {
                refuse_status(r, if enabled { "enable" } else { "disable" })?;
            }
            tx.keys().set_enabled(id, enabled, now)?;
            Ok(None)
        })
    }

    /// Revokes key `id` permanently. Revoking a revoked key is a `KEY_REVOKED` error.
    pub fn revoke_key(
        &self,
        id: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<KeyRecord> {
        check_id(id)?;
        check_actor(actor)?;
        if let Some(r) = reason {
            check_text("reason", r, 1, MAX_REASON)?;
        }
        let now = self.inner().now();
        self.change(id, AuditAction::KeyRevoke, actor, now, |tx, r| {
            if r.revoked_at.is_some() {
                refuse_status(r, "revoke")?;
            }
            tx.keys().revoke(id, reason, now)?;
            let ended = tx.sessions().end_for_key(id, "key_revoked", now)?;
            crate::metrics::Metrics::inc(&self.inner().metrics.keys_revoked);
            Ok(Some(json!({ "reason": reason, "sessions_ended": ended })))
        })
    }

    /// Deletes the record of key `id` (its audit history stays). Prefer
    /// revoke: a deleted key simply answers `NOT_FOUND`. The key's hash
    /// stays as a tombstone: importing the key again (by plaintext, hash or
    /// `verify_or_upgrade`) is refused until [`TokenManager::lift_tombstone`].
    pub fn delete_key(&self, id: &str, actor: Option<&str>) -> Result<()> {
        check_id(id)?;
        check_actor(actor)?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            let r = tx.keys().get(id, now)?.ok_or_else(|| not_found(id))?;
            tx.keys().delete(id, now)?;
            tx.quota().delete_key_quotas(id)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::KeyDelete,
                key_id: Some(r.id),
                display_prefix: Some(r.display_prefix),
                actor: actor.map(str::to_string),
                outcome: "ok",
                detail: None,
            })
        })
    }

    /// Runs one audited change on key `id` in a transaction and returns the new record.
    fn change(
        &self,
        id: &str,
        action: AuditAction,
        actor: Option<&str>,
        now: i64,
        f: impl FnOnce(&dyn store::Tx, &KeyRecord) -> Result<Option<Value>>,
    ) -> Result<KeyRecord> {
        let record = self.inner().write(|tx| {
            let before = tx.keys().get(id, now)?.ok_or_else(|| not_found(id))?;
            let detail = f(tx, &before)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action,
                key_id: Some(before.id.clone()),
                display_prefix: Some(before.display_prefix.clone()),
                actor: actor.map(str::to_string),
                outcome: "ok",
                detail,
            })?;
            tx.keys()
                .get(id, now)?
                .ok_or_else(|| Error::new(ErrorKind::Internal, "changed key vanished"))
        })?;
        Ok(self.with_pending(record))
    }

    /// Replaces key `id` by a new key with the same owner, name, description,
    /// scopes and metadata (`version` + 1, `rotated_from` = old id). The old key
    /// keeps verifying for `overlap_seconds`, then answers `EXPIRED`; with 0 it
    /// is revoked at once. Only an active key that was not rotated before can
    /// be rotated.
    pub fn rotate_key(&self, id: &str, opts: &RotateOptions) -> Result<CreatedKey> {
        self.rotate_key_then(id, opts, |_| Ok(()))
    }

    /// Like [`TokenManager::rotate_key`], but calls `deliver` with the new
    /// key before the transaction commits (nothing is committed if it fails).
    pub fn rotate_key_then(
        &self,
        id: &str,
        opts: &RotateOptions,
        deliver: impl FnOnce(&CreatedKey) -> Result<()>,
    ) -> Result<CreatedKey> {
        check_id(id)?;
        check_actor(opts.actor.as_deref())?;
        let now = self.inner().now();
        check_overlap(now, opts.overlap_seconds)?;
        if let Some(Some(t)) = opts.expires_at {
            check_expiry(t, now, EXPIRY_IN_PAST)?;
        }
        self.inner().write(|tx| {
            let old = tx.keys().get(id, now)?.ok_or_else(|| not_found(id))?;
            refuse_status(&old, "rotate")?;
            if let Some(next) = &old.rotated_to {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("key {} was already rotated to {next}", old.id),
                ));
            }
            let expires_at = match opts.expires_at {
                Some(e) => e,
                None => old
                    .expires_at
                    // The old key's lifetime again, ending no later than MAX_TIME.
                    .map(|e| {
                        now.saturating_add((e - old.created_at).max(1))
                            .min(MAX_TIME)
                    }),
            };
            let created = self.insert_key(
                tx,
                Insert {
                    owner: old.owner.clone(),
                    name: old.name.clone(),
                    description: old.description.clone(),
                    scopes_json: serde_json::to_string(&old.scopes)?,
                    scopes: old.scopes.clone(),
                    metadata_json: serde_json::to_string(&old.metadata)?,
                    metadata: old.metadata.clone(),
                    prefix: old.prefix.clone(),
                    expires_at,
                    version: old.version.saturating_add(1),
                    rotated_from: Some(old.id.clone()),
                    rate_limits_json: serde_json::to_string(&old.rate_limits)?,
                    rate_limits: old.rate_limits.clone(),
                    model_policy: models::ModelPolicy {
                        models: old.models.clone(),
                        max_tokens_per_request: old.max_tokens_per_request,
                    },
                    rotation_period: old.rotation_period,
                },
                now,
            )?;
            let new_id = &created.record.id;
            tx.quota().move_key_quotas(&old.id, new_id)?;
            if opts.overlap_seconds == 0 {
                tx.keys()
                    .link_rotation(&old.id, new_id, old.expires_at, now)?;
                tx.keys().revoke(&old.id, Some("rotated"), now)?;
            } else {
                // Expiry is kept in whole seconds: the overlap ends at the
                // first whole second at or after now + overlap, measured in
                // milliseconds, so it is never shorter than asked (an
                // overlap of 2 s began at x.7 used to end 1.3 s later).
                let end_ms = self
                    .inner()
                    .clock
                    .now_ms()
                    .saturating_add(opts.overlap_seconds.saturating_mul(1000));
                let end = end_ms.saturating_add(999).div_euclid(1000).min(MAX_TIME);
                let end = old.expires_at.map_or(end, |e| e.min(end));
                tx.keys().link_rotation(&old.id, new_id, Some(end), now)?;
            }
            let actor = opts.actor.clone();
            for (key_id, prefix, detail) in [
                (
                    &old.id,
                    &old.display_prefix,
                    json!({"rotated_to": new_id, "overlap_seconds": opts.overlap_seconds}),
                ),
                (
                    new_id,
                    &created.record.display_prefix,
                    json!({"rotated_from": old.id, "version": created.record.version}),
                ),
            ] {
                let action = if key_id == &old.id {
                    AuditAction::KeyRotate
                } else {
                    AuditAction::KeyCreate
                };
                tx.audit().insert(&NewAuditEvent {
                    at: now,
                    action,
                    key_id: Some(key_id.clone()),
                    display_prefix: Some(prefix.clone()),
                    actor: actor.clone(),
                    outcome: "ok",
                    detail: Some(detail),
                })?;
            }
            deliver(&created)?;
            Ok(created)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character rules, one char at a time (the reference the fast
    /// ASCII path must agree with).
    fn reference(s: &str, min: usize, max: usize, multiline: bool) -> bool {
        let n = s.chars().count();
        let allowed = |c: char| multiline && (c == '\n' || c == '\t');
        (min..=max).contains(&n)
            && !s.chars().any(|c| c.is_control() && !allowed(c))
            && !s.chars().any(is_bidi_or_invisible)
    }

    #[test]
    fn ascii_and_other_text_follow_the_same_rules() {
        let mut cases: Vec<String> = (0u8..=127)
            .flat_map(|b| {
                let c = b as char;
                [format!("a{c}b"), format!("{c}"), format!("é{c}")]
            })
            .collect();
        cases.extend(
            [
                "",
                "abc",
                "abcd",
                "é",
                "éé",
                "\u{85}",
                "\u{202e}",
                "a\u{200b}",
                "x\u{9f}",
            ]
            .map(String::from),
        );
        for s in &cases {
            for multiline in [false, true] {
                assert_eq!(
                    check_chars("t", s, 1, 3, multiline).is_ok(),
                    reference(s, 1, 3, multiline),
                    "{s:?} multiline {multiline}"
                );
            }
        }
        let e = check_len("owner", "a\u{7f}", 1, 8).unwrap_err();
        assert!(e.to_string().contains("control characters"), "{e}");
        let e = check_len("owner", "abcd", 1, 3).unwrap_err();
        assert!(e.to_string().contains("1-3 characters (got 4)"), "{e}");
    }
}
