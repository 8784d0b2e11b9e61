//! Scheduled rotation of API keys: a key is due once it is its
//! `rotation_period` old (or the manager's `default_rotation_period`);
//! `rotate_due` rotates every due key and hands each new plaintext back
//! exactly once. Safe from cron on several hosts at once: a key already
//! rotated by another caller is skipped (rotating it twice is `CONFLICT`).

use super::{CreatedKey, KeyRecord, RotateOptions};
use crate::error::{ErrorKind, Result};
use crate::manager::TokenManager;

/// Keys one `keys_due` page holds at most.
const DUE_PAGE: u32 = 1000;

impl TokenManager {
    /// The keys due for rotation now (active, at least their rotation
    /// period old), oldest first, at most `limit` (≤ 1000).
    pub fn keys_due(&self, limit: u32) -> Result<Vec<KeyRecord>> {
        let inner = self.inner();
        let now = inner.now();
        let period = inner.default_rotation_period;
        inner
            .db
            .read(|c| c.keys().due(now, period, None, limit.clamp(1, DUE_PAGE)))
    }

    /// Rotates every key due for rotation; the old keys verify for
    /// `overlap_seconds` more. Returns the new keys — their plaintexts,
    /// shown only here, go to the keys' owners. A key rotated meanwhile by
    /// another caller (another host's cron) is skipped.
    pub fn rotate_due(&self, overlap_seconds: i64, actor: Option<&str>) -> Result<Vec<CreatedKey>> {
        let opts = RotateOptions {
            overlap_seconds,
            expires_at: None,
            actor: actor.map(str::to_string),
        };
        // As rotate_key checks it, but also when no key is due.
        crate::clock::check_overlap(self.inner().now(), overlap_seconds)?;
        let mut out = Vec::new();
        loop {
            let due = self.keys_due(DUE_PAGE)?;
            let mut progressed = false;
            for r in &due {
                match self.rotate_key(&r.id, &opts) {
                    Ok(created) => {
                        out.push(created);
                        progressed = true;
                    }
                    // Rotated, revoked, disabled or deleted since it was listed.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::Conflict
                                | ErrorKind::KeyRevoked
                                | ErrorKind::KeyNotFound
                                | ErrorKind::KeyDisabled
                                | ErrorKind::KeyExpired
                        ) => {}
                    Err(e) => return Err(e),
                }
            }
            // A full page may have more behind it; a page with nothing
            // rotated cannot change on the next look.
            if due.len() < DUE_PAGE as usize || !progressed {
                return Ok(out);
            }
        }
    }
}
