//! The key records verification keeps in memory, with this process's
//! unflushed uses counted in.

use super::Inner;
use crate::model::keys::{KeyRecord, KeyStatus};
use crate::store::sqlite::epoch::Changes;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A key record as verification last read it, with this process's uses since.
pub(crate) struct CachedKey {
    /// The row's revision when it was read.
    pub revision: i64,
    /// The record then, its counters including this process's unflushed uses.
    pub record: PackedRecord,
    /// The record's model allow-list, compiled once.
    pub models: crate::model::keys::ModelPatterns,
    /// Successful verifications by this process since.
    pub uses: std::sync::atomic::AtomicU64,
    /// The latest of those uses (`i64::MIN`: none since the read).
    pub last_use: std::sync::atomic::AtomicI64,
}

/// The texts of a [`KeyRecord`] every record has, in their order in
/// [`PackedRecord::text`]: id, prefix, display prefix, owner, name,
/// description; then the three optional ones (revoked reason, rotated from,
/// rotated to), then the scopes, then the models.
const FIXED_TEXTS: usize = 6;

/// The optional texts, after the fixed ones.
const OPTIONAL_TEXTS: usize = 3;

/// A [`KeyRecord`] in three allocations instead of one per text: the form
/// the key cache holds (about 350 bytes for a typical key, against 1 KiB
/// for the record itself), unpacked into a record for each answer.
#[derive(Debug)]
pub(crate) struct PackedRecord {
    /// Every text of the record, one after another (see [`FIXED_TEXTS`]).
    text: Box<str>,
    /// Where each text of `text` ends.
    ends: Box<[u32]>,
    /// How many of the texts after the optional ones are scopes (the rest
    /// are models).
    scopes: u32,
    /// Bit `i` set: optional text `i` is present.
    present: u8,
    enabled: bool,
    status: KeyStatus,
    version: u32,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    rotation_period: Option<i64>,
    max_tokens_per_request: Option<u64>,
    usage_count: u64,
    /// `None` for the usual empty object.
    metadata: Option<Box<Map<String, Value>>>,
    rate_limits: Box<[crate::ratelimit::Limit]>,
}

impl PackedRecord {
    /// `r` packed.
    pub fn pack(r: KeyRecord) -> PackedRecord {
        let optional = [&r.revoked_reason, &r.rotated_from, &r.rotated_to];
        let texts = [
            &r.id,
            &r.prefix,
            &r.display_prefix,
            &r.owner,
            &r.name,
            &r.description,
        ]
        .into_iter()
        .chain(optional.iter().map(|o| o.as_ref().unwrap_or(&r.id)))
        .chain(&r.scopes)
        .chain(&r.models);
        let mut text = String::new();
        let mut ends =
            Vec::with_capacity(FIXED_TEXTS + OPTIONAL_TEXTS + r.scopes.len() + r.models.len());
        for (i, t) in texts.enumerate() {
            let absent = (FIXED_TEXTS..FIXED_TEXTS + OPTIONAL_TEXTS).contains(&i)
                && optional[i - FIXED_TEXTS].is_none();
            if !absent {
                text.push_str(t);
            }
            // Texts are bounded far below 4 GiB (a record is a row).
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        let present = optional
            .iter()
            .enumerate()
            .fold(0, |bits, (i, o)| bits | (u8::from(o.is_some()) << i));
        PackedRecord {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            scopes: u32::try_from(r.scopes.len()).unwrap_or(u32::MAX),
            present,
            enabled: r.enabled,
            status: r.status,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            rotation_period: r.rotation_period,
            max_tokens_per_request: r.max_tokens_per_request,
            usage_count: r.usage_count,
            metadata: (!r.metadata.is_empty()).then(|| Box::new(r.metadata)),
            rate_limits: r.rate_limits.into_boxed_slice(),
        }
    }

    /// Text `i` (see [`FIXED_TEXTS`]).
    fn text(&self, i: usize) -> &str {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        &self.text[start..self.ends[i] as usize]
    }

    /// Optional text `i` (0: revoked reason, 1: rotated from, 2: rotated to).
    fn optional(&self, i: usize) -> Option<String> {
        (self.present & (1 << i) != 0).then(|| self.text(FIXED_TEXTS + i).to_string())
    }

    /// The texts from index `from`, `n` of them.
    fn texts(&self, from: usize, n: usize) -> Vec<String> {
        (from..from + n).map(|i| self.text(i).to_string()).collect()
    }

    /// The record, as it was packed.
    pub fn unpack(&self) -> KeyRecord {
        let lists = FIXED_TEXTS + OPTIONAL_TEXTS;
        let scopes = self.scopes as usize;
        KeyRecord {
            id: self.text(0).to_string(),
            prefix: self.text(1).to_string(),
            display_prefix: self.text(2).to_string(),
            owner: self.text(3).to_string(),
            name: self.text(4).to_string(),
            description: self.text(5).to_string(),
            scopes: self.texts(lists, scopes),
            metadata: self.metadata.as_deref().cloned().unwrap_or_default(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            usage_count: self.usage_count,
            enabled: self.enabled,
            revoked_at: self.revoked_at,
            revoked_reason: self.optional(0),
            version: self.version,
            rotated_from: self.optional(1),
            rotated_to: self.optional(2),
            rate_limits: self.rate_limits.to_vec(),
            models: self.texts(lists + scopes, self.ends.len() - lists - scopes),
            max_tokens_per_request: self.max_tokens_per_request,
            rotation_period: self.rotation_period,
            status: self.status,
        }
    }

    /// True unless the key was disabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// When the key was revoked, if it was.
    pub fn revoked_at(&self) -> Option<i64> {
        self.revoked_at
    }

    /// When the key stops verifying, if ever.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Most tokens one request may declare, if bounded.
    pub fn max_tokens_per_request(&self) -> Option<u64> {
        self.max_tokens_per_request
    }

    /// The key's rate limits.
    pub fn rate_limits(&self) -> &[crate::ratelimit::Limit] {
        &self.rate_limits
    }
}

impl CachedKey {
    /// The usage counters of the key for this process: as read, plus the
    /// uses since (`extra` counts a use being made now, at `now`).
    pub fn counters(&self, now: i64, extra: u64) -> (u64, Option<i64>) {
        use std::sync::atomic::Ordering;
        let since = self.uses.fetch_add(extra, Ordering::Relaxed) + extra;
        let latest = if extra > 0 {
            self.last_use.fetch_max(now, Ordering::Relaxed).max(now)
        } else {
            self.last_use.load(Ordering::Relaxed)
        };
        // `None` orders below every `Some`, so this keeps the later of the two.
        let last = self
            .record
            .last_used_at
            .max((latest > i64::MIN).then_some(latest));
        (self.record.usage_count.saturating_add(since), last)
    }
}

impl CachedKey {
    /// An entry for a record read at `revision` (its counters already
    /// including this process's unflushed uses).
    pub fn new(record: KeyRecord, revision: i64) -> Arc<CachedKey> {
        Arc::new(CachedKey {
            revision,
            models: crate::model::keys::ModelPatterns::new(&record.models),
            record: PackedRecord::pack(record),
            uses: std::sync::atomic::AtomicU64::new(0),
            last_use: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }
}

impl Inner {
    /// The cached record of the key with this hash if it was read at `revision`.
    pub fn cached_key(&self, hash: &[u8; 32], revision: i64) -> Option<Arc<CachedKey>> {
        self.records.get(hash).filter(|c| c.revision == revision)
    }

    /// The cached record of the key with this hash, whatever its revision:
    /// for callers that know the cache is current (the state epoch).
    pub fn cached_current(&self, hash: &[u8; 32]) -> Option<Arc<CachedKey>> {
        self.records.get(hash)
    }

    /// Remembers `entry` as the record of the key with this hash.
    pub fn cache_key(&self, hash: &[u8; 32], entry: &Arc<CachedKey>) {
        self.records.insert(*hash, entry.clone());
    }

    /// Forgets the records of keys whose state changed.
    pub fn forget_keys(&self, changes: Changes) {
        match changes {
            Changes::Keys(hashes) => {
                for h in &hashes {
                    self.records.remove(h);
                }
            }
            Changes::All => self.records.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{Limit, Unit};

    fn record() -> KeyRecord {
        KeyRecord {
            id: "6f1c3f8e-1d2a-4b5c-9e7f-0a1b2c3d4e5f".into(),
            prefix: "sp_live".into(),
            display_prefix: "sp_live_AbC1".into(),
            owner: "tenant-ü".into(),
            name: String::new(),
            description: "a key\nwith lines".into(),
            scopes: vec!["read".into(), String::new(), "wrïte".into()],
            metadata: Map::new(),
            created_at: 1,
            updated_at: 2,
            expires_at: Some(3),
            last_used_at: None,
            usage_count: 7,
            enabled: false,
            revoked_at: Some(4),
            revoked_reason: None,
            version: 3,
            rotated_from: Some("old".into()),
            rotated_to: Some(String::new()),
            rate_limits: vec![Limit {
                name: "per_minute".into(),
                count: 60,
                period_ms: 60_000,
                burst: 10,
                unit: Unit::Tokens,
            }],
            models: vec!["gpt-4o*".into()],
            max_tokens_per_request: Some(4096),
            rotation_period: Some(86_400),
            status: KeyStatus::Revoked,
        }
    }

    #[test]
    fn a_packed_record_unpacks_to_itself() {
        let mut r = record();
        assert_eq!(PackedRecord::pack(r.clone()).unpack(), r);
        // Every optional text absent or present, empty lists, metadata.
        for bits in 0..8u8 {
            r.revoked_reason = (bits & 1 != 0).then(|| "leaked".into());
            r.rotated_from = (bits & 2 != 0).then(String::new);
            r.rotated_to = (bits & 4 != 0).then(|| "next".into());
            r.scopes = (0..bits).map(|i| format!("s{i}")).collect();
            r.models = (0..bits % 3).map(|i| format!("m{i}*")).collect();
            r.metadata = (0..bits % 2)
                .map(|i| (format!("k{i}"), Value::from(i)))
                .collect();
            assert_eq!(PackedRecord::pack(r.clone()).unpack(), r, "bits {bits}");
        }
    }

    #[test]
    fn a_packed_record_answers_what_verification_reads() {
        let p = PackedRecord::pack(record());
        assert!(!p.enabled());
        assert_eq!((p.revoked_at(), p.expires_at()), (Some(4), Some(3)));
        assert_eq!(p.max_tokens_per_request(), Some(4096));
        assert_eq!(p.rate_limits(), record().rate_limits.as_slice());
    }
}
