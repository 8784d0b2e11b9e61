//! Keys brought in from another system: as plaintext or as the SHA-256 of
//! the key (Unkey's migration model). A key in irontoken's format keeps its
//! prefix; any other is a *legacy* key — no checksum, found by its hash.
//!
//! Verification rejects a string that is not in irontoken's format without
//! a lookup (`MALFORMED`) until the database holds a legacy key (the meta
//! entry `legacy_keys`, set by the first such import). From then on such a
//! string is looked up by hash — `NOT_FOUND` when unknown, which is the
//! answer an upgrade-on-use path waits for. Another process's first legacy
//! import is noticed within [`LEGACY_RECHECK_MS`].

use super::{
    DEFAULT_PREFIX, ImportKey, Insert, KeyRecord, MAX_BULK_KEYS, NewKey, format, hash_key,
    insert_record, new_insert,
};
use crate::error::{Error, ErrorKind, Result};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use base64::Engine;
use serde_json::json;
use std::sync::atomic::Ordering;

/// The meta entry set once a legacy key is imported.
const LEGACY_META: &str = "legacy_keys";
/// How often another process's first legacy import is looked for.
pub const LEGACY_RECHECK_MS: i64 = 1000;
/// The prefix recorded for legacy keys.
pub const LEGACY_PREFIX: &str = "legacy";
/// Shortest and longest plaintext a legacy key may have.
const LEGACY_LEN: std::ops::RangeInclusive<usize> = 16..=512;
/// Shortest and longest display prefix given to an import, in characters
/// (the stored column allows 3-48: the generated ones are longer).
const DISPLAY_LEN: std::ops::RangeInclusive<usize> = 3..=32;

/// Whether `s` can be a legacy key worth a lookup: 16–512 bytes of visible
/// ASCII (no spaces or control characters).
fn legacy_shaped(s: &str) -> bool {
    LEGACY_LEN.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether a key refused with `reason` may be a key of the old system,
/// worth asking the old check about (`verify_or_upgrade` and the adapters'
/// `legacy_check`): irontoken does not know it (`NOT_FOUND`, or `MALFORMED`
/// before the first legacy import), it has a legacy key's shape (16–512
/// visible ASCII characters) and it is not in irontoken's own format.
pub fn may_be_legacy(key: &str, reason: crate::model::keys::VerifyReason) -> bool {
    use crate::model::keys::VerifyReason::{Malformed, NotFound};
    matches!(reason, NotFound | Malformed)
        && legacy_shaped(key)
        && !super::format::is_well_formed(key)
}

/// The SHA-256 a `key_hash` names (64 hex or 44 base64 characters).
fn decode_hash(h: &str) -> Result<[u8; 32]> {
    let bytes = if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .ok()
    } else if h.len() == 44 {
        base64::engine::general_purpose::STANDARD
            .decode(h)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(h))
            .ok()
    } else {
        None
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            Error::invalid("key_hash must be a SHA-256: 64 hex characters or 44 of base64")
        })
}

/// An import checked and ready to write.
struct Prepared {
    insert: Insert,
    hash: [u8; 32],
    display_prefix: String,
    legacy: bool,
    by_hash: bool,
    legacy_id: Option<String>,
}

fn prepare(req: &ImportKey, now: i64) -> Result<Prepared> {
    let mut insert = new_insert(
        &NewKey {
            owner: req.owner.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            scopes: req.scopes.clone(),
            metadata: req.metadata.clone(),
            expires_at: req.expires_at,
            rate_limits: req.rate_limits.clone(),
            actor: req.actor.clone(),
            ..Default::default()
        },
        now,
    )?;
    if let Some(d) = &req.display_prefix
        && (!DISPLAY_LEN.contains(&d.chars().count())
            || d.chars()
                .any(|c| c.is_control() || super::is_bidi_or_invisible(c)))
    {
        return Err(Error::invalid(format!(
            "display_prefix must be {}-{} printable characters",
            DISPLAY_LEN.start(),
            DISPLAY_LEN.end()
        )));
    }
    if let Some(id) = &req.legacy_id {
        super::check_len("legacy_id", id, 1, 256)?;
    }
    let (hash, prefix, display, legacy, by_hash) = match (&req.key, &req.key_hash) {
        (Some(key), None) => match format::parse(key) {
            Ok(p) => (
                hash_key(key),
                key.rsplit_once('_')
                    .map_or(DEFAULT_PREFIX, |(pre, _)| pre)
                    .to_string(),
                p.display_prefix.to_string(),
                false,
                false,
            ),
            Err(_) if legacy_shaped(key) => {
                // Show a little of a long key, nothing of a short one.
                let shown = key.len() / 8;
                let display = match shown {
                    0..=1 => LEGACY_PREFIX.to_string(),
                    n => format!("{LEGACY_PREFIX}:{}", &key[..n.min(6)]),
                };
                (
                    hash_key(key),
                    LEGACY_PREFIX.to_string(),
                    display,
                    true,
                    false,
                )
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "key: not an irontoken key, and a legacy key must be {}-{} characters \
                         of visible ASCII (no spaces)",
                        LEGACY_LEN.start(),
                        LEGACY_LEN.end()
                    ),
                ));
            }
        },
        (None, Some(h)) => (
            decode_hash(h)?,
            LEGACY_PREFIX.to_string(),
            LEGACY_PREFIX.to_string(),
            // The key behind a hash may be in any format: look strings up by hash.
            true,
            true,
        ),
        _ => return Err(Error::invalid("give exactly one of key and key_hash")),
    };
    if prefix != DEFAULT_PREFIX || legacy {
        insert.prefix = prefix;
    }
    // A display prefix in irontoken's own format names a key: it must be
    // this key's (else a listing shows another key's prefix for it).
    if let Some(d) = &req.display_prefix
        && *d != display
        && format::names_a_key(d)
    {
        return Err(Error::invalid(
            "display_prefix looks like another irontoken key's; give this key's own or none",
        ));
    }
    Ok(Prepared {
        insert,
        hash,
        display_prefix: req.display_prefix.clone().unwrap_or(display),
        legacy,
        by_hash,
        legacy_id: req.legacy_id.clone(),
    })
}

impl TokenManager {
    /// Imports a key from another system (its plaintext or SHA-256) with
    /// its record; `CONFLICT` if the key is here already. Audited as
    /// `key.create` with `"imported": true`.
    pub fn import_key(&self, req: &ImportKey) -> Result<KeyRecord> {
        Ok(self.import_keys(std::slice::from_ref(req))?.remove(0))
    }

    /// Imports many keys in one transaction: all of them, or none when any
    /// is invalid or already here (its index is in the message). At most
    /// [`MAX_BULK_KEYS`] per call.
    pub fn import_keys(&self, reqs: &[ImportKey]) -> Result<Vec<KeyRecord>> {
        self.import_keys_reporting(reqs, &|i| format!("key {i}"), &mut |_| {})
    }

    /// [`import_keys`](Self::import_keys) for tools: `label(i)` names entry
    /// `i` in an error's message (a file's line number, say), and
    /// `progress(n)` is called as entries are checked and written (`n` of
    /// `2 × reqs.len()`: every entry is checked, then written).
    pub fn import_keys_reporting(
        &self,
        reqs: &[ImportKey],
        label: &dyn Fn(usize) -> String,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<KeyRecord>> {
        /// Entries between two progress calls.
        const STEP: usize = 1024;
        if reqs.len() > MAX_BULK_KEYS {
            return Err(Error::invalid(format!(
                "at most {MAX_BULK_KEYS} keys per call (got {})",
                reqs.len()
            )));
        }
        let now = self.inner().now();
        let indexed = |i: usize, e: Error| {
            let msg = if reqs.len() > 1 {
                format!("{}: {}", label(i), e.message())
            } else {
                e.message().to_string()
            };
            Error::new(e.kind(), msg)
        };
        let prepared = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i % STEP == 0 {
                    progress(i);
                }
                prepare(r, now).map_err(|e| indexed(i, e))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::HashSet::new();
        let mut old_ids = std::collections::HashSet::new();
        for (i, p) in prepared.iter().enumerate() {
            if !seen.insert(p.hash) {
                return Err(indexed(
                    i,
                    Error::new(ErrorKind::Conflict, "the same key twice in one import"),
                ));
            }
            if let Some(id) = &p.legacy_id
                && !old_ids.insert(id.as_str())
            {
                return Err(indexed(
                    i,
                    Error::new(
                        ErrorKind::Conflict,
                        "the same legacy_id twice in one import",
                    ),
                ));
            }
        }
        let any_legacy = prepared.iter().any(|p| p.legacy);
        let records = self.inner().write_bulk(|tx| {
            if any_legacy {
                tx.meta().put_once(LEGACY_META, "1")?;
            }
            let mut out = Vec::with_capacity(prepared.len());
            for (i, (p, req)) in prepared.iter().zip(reqs).enumerate() {
                if i % STEP == 0 {
                    progress(reqs.len() + i);
                }
                let mut exists = false;
                tx.keys().with_state_by_hash(&p.hash, &mut |st| {
                    exists = st.is_some();
                    Ok(())
                })?;
                if exists {
                    return Err(indexed(
                        i,
                        Error::new(ErrorKind::Conflict, "this key is here already"),
                    ));
                }
                if tx.keys().tombstoned(&p.hash)? {
                    return Err(indexed(
                        i,
                        Error::new(
                            ErrorKind::Conflict,
                            "this key was deleted and stays refused (lift_tombstone allows it again)",
                        ),
                    ));
                }
                if let Some(id) = &p.legacy_id
                    && !tx.keys().claim_legacy_id(id, &p.hash, now)?
                {
                    return Err(indexed(
                        i,
                        Error::new(
                            ErrorKind::Conflict,
                            "a key was imported for this legacy_id already (one irontoken key per old record)",
                        ),
                    ));
                }
                let record =
                    insert_record(tx, p.insert.clone(), &p.hash, p.display_prefix.clone(), now)?;
                tx.audit().insert(&NewAuditEvent {
                    at: now,
                    action: AuditAction::KeyCreate,
                    key_id: Some(record.id.clone()),
                    display_prefix: Some(record.display_prefix.clone()),
                    actor: req.actor.clone(),
                    outcome: "ok",
                    detail: Some(json!({
                        "owner": record.owner,
                        "scopes": record.scopes,
                        "expires_at": record.expires_at,
                        "imported": true,
                        "legacy": p.legacy,
                        "by_hash": p.by_hash,
                        "legacy_id": p.legacy_id,
                    })),
                })?;
                out.push(record);
            }
            Ok(out)
        })?;
        progress(2 * reqs.len());
        if any_legacy {
            self.inner().legacy.present.store(true, Ordering::Relaxed);
        }
        self.inner()
            .metrics
            .keys_created
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(records)
    }

    /// Lifts the tombstone a deleted key left (give the key or its SHA-256,
    /// as to `import_key`), so the key may be imported again, with the old
    /// record ids claimed for it; audited as `key.tombstone_lift`. False
    /// when there was no tombstone (nothing is written).
    pub fn lift_tombstone(
        &self,
        key: Option<&str>,
        key_hash: Option<&str>,
        actor: Option<&str>,
    ) -> Result<bool> {
        super::check_actor(actor)?;
        let (hash, display) = match (key, key_hash) {
            (Some(k), None) => (
                hash_key(k),
                format::parse(k).ok().map(|p| p.display_prefix.to_string()),
            ),
            (None, Some(h)) => (decode_hash(h)?, None),
            _ => return Err(Error::invalid("give exactly one of key and key_hash")),
        };
        let now = self.inner().now();
        self.inner().write(|tx| {
            if !tx.keys().lift_tombstone(&hash)? {
                return Ok(false);
            }
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::KeyTombstoneLift,
                key_id: None,
                display_prefix: display.clone(),
                actor: actor.map(str::to_string),
                outcome: "ok",
                detail: Some(json!({ "by_hash": key_hash.is_some() })),
            })?;
            Ok(true)
        })
    }

    /// Whether a string not in irontoken's format should be looked up by
    /// hash: it has a legacy key's shape and the database holds legacy keys
    /// (re-read from the database at most every [`LEGACY_RECHECK_MS`]).
    pub(crate) fn legacy_lookup(&self, key: &str, access: crate::store::Access) -> Result<bool> {
        if !legacy_shaped(key) {
            return Ok(false);
        }
        let legacy = &self.inner().legacy;
        if legacy.present.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let last = legacy.checked_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < LEGACY_RECHECK_MS {
            return Ok(false);
        }
        let present = self
            .inner()
            .db
            .with(access, |c| c.meta().get(LEGACY_META))?
            .is_some();
        legacy.checked_ms.store(now_ms.max(1), Ordering::Relaxed);
        legacy.present.store(present, Ordering::Relaxed);
        Ok(present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_decode_from_hex_and_base64_only() {
        let h = hash_key("sk_legacy_0123456789abcdef");
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(decode_hash(&hex).unwrap(), h);
        assert_eq!(decode_hash(&hex.to_uppercase()).unwrap(), h);
        let b64 = base64::engine::general_purpose::STANDARD.encode(h);
        assert_eq!(decode_hash(&b64).unwrap(), h);
        let url = base64::engine::general_purpose::URL_SAFE.encode(h);
        assert_eq!(decode_hash(&url).unwrap(), h);
        for bad in [
            "",
            "abc",
            &hex[..63],
            &format!("{}g", &hex[..63]),
            "=".repeat(44).as_str(),
        ] {
            assert!(decode_hash(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn legacy_shape_is_visible_ascii_of_sane_length() {
        use crate::model::keys::VerifyReason;
        assert!(may_be_legacy("dev-key-0123456789", VerifyReason::NotFound));
        assert!(may_be_legacy("dev-key-0123456789", VerifyReason::Malformed));
        assert!(!may_be_legacy("dev-key-0123456789", VerifyReason::Revoked));
        assert!(!may_be_legacy("short", VerifyReason::NotFound));
        assert!(legacy_shaped("dev-key-0123456789"));
        assert!(!legacy_shaped("short"));
        assert!(!legacy_shaped("has a space in the middle"));
        assert!(!legacy_shaped("tab\tinside-0123456789"));
        assert!(!legacy_shaped("ünïcödé-0123456789-0123"));
        assert!(!legacy_shaped(&"x".repeat(513)));
    }
}
