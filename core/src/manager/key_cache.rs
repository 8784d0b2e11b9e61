//! The key records verification keeps in memory, with this process's
//! unflushed uses counted in.

use super::Inner;
use crate::model::keys::KeyRecord;
use crate::store::sqlite::epoch::Changes;
use std::sync::Arc;
/// A key record as verification last read it, with this process's uses since.
pub(crate) struct CachedKey {
    /// The row's revision when it was read.
    pub revision: i64,
    /// The record then, its counters including this process's unflushed uses.
    pub record: KeyRecord,
    /// The record's model allow-list, compiled once.
    pub models: crate::model::keys::ModelPatterns,
    /// Successful verifications by this process since.
    pub uses: std::sync::atomic::AtomicU64,
    /// The latest of those uses (`i64::MIN`: none since the read).
    pub last_use: std::sync::atomic::AtomicI64,
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
            record,
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
