//! Signals an operator wants to see, kept in a bounded in-memory queue per
//! manager and taken with [`crate::TokenManager::drain_events`]:
//!
//! - `auth_failure_burst`: at least [`FAILURE_BURST`] failed verifications
//!   for one key prefix (display prefix, or the bare prefix of malformed
//!   keys) within [`FAILURE_WINDOW`] seconds; once per prefix and window.
//! - `quota_threshold`: a quota's use crossed 80 % or 100 % of its limit
//!   (once per level and window).
//! - `usage_spike`: a key's requests in the current minute exceed
//!   [`SPIKE_FACTOR`] × its own moving average per minute (and at least
//!   [`SPIKE_MIN`]), after [`SPIKE_HISTORY`] minutes of history; once per
//!   key and minute.
//!
//! - `rate_limit_fail_open`: the rate-limit store failed and fail-open let
//!   requests through unchecked; once per minute while it lasts, with the
//!   count of such requests in the minute before and the last key.
//! - `spend_spike`, `refresh_token_reused`, `key_rotation_due`: see
//!   [`crate::alerts`], [`crate::refresh`] and key rotation.
//!
//! Every event is also offered to the alert webhook when one is set
//! ([`crate::alerts`]): never waiting for it.
//! Events are per process (what this manager saw) and are not persisted;
//! the queue keeps the newest [`MAX_EVENTS`] and counts what it dropped.

use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The event kinds counted one by one in the metrics (`irontoken_alerts_total`).
pub const KINDS: [&str; 7] = [
    "auth_failure_burst",
    "quota_threshold",
    "usage_spike",
    "spend_spike",
    "rate_limit_fail_open",
    "refresh_token_reused",
    "key_rotation_due",
];

/// Failed verifications for one prefix that make a burst.
pub const FAILURE_BURST: u64 = 20;
/// Window of a failure burst, seconds.
pub const FAILURE_WINDOW: i64 = 60;
/// How far above its own average a key's per-minute requests must go.
pub const SPIKE_FACTOR: f64 = 10.0;
/// Fewest requests in one minute that can be a spike.
pub const SPIKE_MIN: u64 = 100;
/// Minutes of history before spikes are judged.
pub const SPIKE_HISTORY: u32 = 5;
/// Events kept before the oldest are dropped.
pub const MAX_EVENTS: usize = 1024;
/// Tracked prefixes / keys before the trackers start over (bounded memory).
const MAX_TRACKED: usize = 10_000;

/// One signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `auth_failure_burst`, `quota_threshold` or `usage_spike`.
    pub kind: String,
    /// When (Unix seconds).
    pub at: i64,
    /// The key concerned, if known.
    pub key_id: Option<String>,
    /// The display prefix concerned, if known (never more of a key).
    pub display_prefix: Option<String>,
    /// Details (counts, limits, level).
    pub detail: Value,
}

#[derive(Default)]
struct Activity {
    minute: i64,
    count: u64,
    avg: f64,
    history: u32,
    alerted: i64,
}

/// Shards of the per-key activity tracker: a successful verification
/// touches one shard, so threads verifying different keys rarely meet.
const ACTIVITY_SHARDS: usize = 16;

#[derive(Default)]
pub(crate) struct Signals {
    queue: Mutex<VecDeque<Event>>,
    pub dropped: AtomicU64,
    pub emitted: AtomicU64,
    /// Keyed by a 64-bit keyed hash of the prefix (window start, count).
    failures: Mutex<HashMap<u64, (i64, u64)>>,
    /// Keyed by a 64-bit keyed hash of the key id; the shard is taken from
    /// the same hash. A collision would merge two trackers (odds ~n²/2⁶⁵).
    activity: [Mutex<HashMap<u64, Activity>>; ACTIVITY_SHARDS],
    hasher: std::hash::RandomState,
    /// Requests let through unchecked by fail-open: (minute, count in it).
    fail_open: Mutex<(i64, u64)>,
    /// Events emitted, by kind ([`KINDS`]).
    pub by_kind: [AtomicU64; KINDS.len()],
    /// Where events are delivered besides the queue, if anywhere.
    webhook: OnceLock<Arc<crate::alerts::Webhook>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entry for `h` in a bounded tracker, which starts over when full.
fn tracked<V>(m: &mut HashMap<u64, V>, h: u64, cap: usize, new: impl FnOnce() -> V) -> &mut V {
    if m.len() >= cap && !m.contains_key(&h) {
        m.clear();
    }
    m.entry(h).or_insert_with(new)
}

impl Signals {
    /// Offers every event from now on to `webhook` too.
    pub fn deliver_to(&self, webhook: Arc<crate::alerts::Webhook>) {
        let _ = self.webhook.set(webhook);
    }

    /// The webhook events are offered to, if any.
    pub fn webhook(&self) -> Option<&crate::alerts::Webhook> {
        self.webhook.get().map(|w| &**w)
    }

    pub fn push(&self, e: Event) {
        if let Some(i) = KINDS.iter().position(|k| *k == e.kind) {
            self.by_kind[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(w) = self.webhook.get() {
            w.offer(&e);
        }
        let mut q = lock(&self.queue);
        if q.len() >= MAX_EVENTS {
            q.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(e);
        self.emitted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn drain(&self, max: usize) -> Vec<Event> {
        let mut q = lock(&self.queue);
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// A failed verification for `prefix`.
    pub fn failure(&self, prefix: &str, key_id: Option<&str>, now: i64) {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(prefix);
        let count = {
            let mut m = lock(&self.failures);
            let e = tracked(&mut m, h, MAX_TRACKED, || (now, 0));
            if now - e.0 >= FAILURE_WINDOW {
                *e = (now, 0);
            }
            e.1 += 1;
            e.1
        };
        if count == FAILURE_BURST {
            self.push(Event {
                kind: "auth_failure_burst".into(),
                at: now,
                key_id: key_id.map(str::to_string),
                display_prefix: Some(prefix.to_string()),
                detail: serde_json::json!({ "failures": count, "window_seconds": FAILURE_WINDOW }),
            });
        }
    }

    /// A request let through unchecked by the rate-limit fail-open: an
    /// event the first time in each minute.
    pub fn fail_open(&self, key: &str, now: i64) {
        let minute = now.div_euclid(60);
        let before = {
            let mut f = lock(&self.fail_open);
            if f.0 == minute && f.1 > 0 {
                f.1 += 1;
                return;
            }
            let before = if f.0 == minute - 1 { f.1 } else { 0 };
            *f = (minute, 1);
            before
        };
        self.push(Event {
            kind: "rate_limit_fail_open".into(),
            at: now,
            key_id: None,
            display_prefix: None,
            detail: serde_json::json!({
                "rate_limit_key": key.chars().take(64).collect::<String>(),
                "unchecked_last_minute": before,
            }),
        });
    }

    /// `n` requests by key `key_id` (on the verification hot path: one hash
    /// of the id, no allocation).
    pub fn activity(&self, key_id: &str, n: u64, now: i64) {
        use std::hash::BuildHasher;
        let minute = now.div_euclid(60);
        let h = self.hasher.hash_one(key_id);
        let spike = {
            let mut m = lock(&self.activity[(h as usize) % ACTIVITY_SHARDS]);
            let a = tracked(&mut m, h, MAX_TRACKED / ACTIVITY_SHARDS, || Activity {
                minute,
                alerted: i64::MIN,
                ..Default::default()
            });
            if minute > a.minute {
                // Fold the finished minute, then the idle ones, into the average.
                let idle = (minute - a.minute - 1).min(60);
                a.avg = 0.8 * a.avg + 0.2 * a.count as f64;
                for _ in 0..idle {
                    a.avg *= 0.8;
                }
                a.history = a.history.saturating_add(1 + idle as u32);
                a.minute = minute;
                a.count = 0;
            }
            a.count = a.count.saturating_add(n);
            let spiking = a.history >= SPIKE_HISTORY
                && a.count >= SPIKE_MIN
                && a.count as f64 > SPIKE_FACTOR * a.avg
                && a.alerted != minute;
            if spiking {
                a.alerted = minute;
            }
            spiking.then_some((a.count, a.avg))
        };
        if let Some((count, avg)) = spike {
            self.push(Event {
                kind: "usage_spike".into(),
                at: now,
                key_id: Some(key_id.to_string()),
                display_prefix: None,
                detail: serde_json::json!({
                    "requests_this_minute": count,
                    "average_per_minute": (avg * 100.0).round() / 100.0,
                }),
            });
        }
    }
}
