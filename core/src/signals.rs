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
pub(crate) const MAX_TRACKED: usize = 10_000;

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

/// Per-minute totals of `N` counters of one key with their trailing
/// averages (each finished minute weighs 0.2, an idle one counts as 0):
/// what the spike alerts (requests here, spend in `alerts`) compare.
pub(crate) struct Minutes<const N: usize> {
    /// The minute the totals are of (Unix minutes).
    pub minute: i64,
    /// The totals so far in that minute.
    pub now: [u64; N],
    /// The trailing averages of the minutes before.
    pub avg: [f64; N],
    /// Minutes folded into the averages.
    pub history: u32,
    /// The last minute a spike was raised for (`i64::MIN`: none).
    pub alerted: i64,
}

impl<const N: usize> Minutes<N> {
    /// Nothing counted yet, from `minute` on.
    pub(crate) fn starting(minute: i64) -> Self {
        Minutes {
            minute,
            now: [0; N],
            avg: [0.0; N],
            history: 0,
            alerted: i64::MIN,
        }
    }

    /// Adds `amounts` at `minute`, folding the finished minute and the idle
    /// ones since into the averages first.
    pub(crate) fn add(&mut self, minute: i64, amounts: [u64; N]) {
        if minute > self.minute {
            let idle = (minute - self.minute - 1).min(60);
            for (avg, now) in self.avg.iter_mut().zip(self.now) {
                *avg = 0.8 * *avg + 0.2 * now as f64;
                for _ in 0..idle {
                    *avg *= 0.8;
                }
            }
            self.history = self.history.saturating_add(1 + idle as u32);
            self.minute = minute;
            self.now = [0; N];
        }
        for (total, n) in self.now.iter_mut().zip(amounts) {
            *total = total.saturating_add(n);
        }
    }

    /// True once [`SPIKE_HISTORY`] minutes are folded in and no spike was
    /// raised for the current minute yet.
    pub(crate) fn may_alert(&self) -> bool {
        self.history >= SPIKE_HISTORY && self.alerted != self.minute
    }
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
    activity: [Mutex<HashMap<u64, Minutes<1>>>; ACTIVITY_SHARDS],
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
pub(crate) fn tracked<V>(
    m: &mut HashMap<u64, V>,
    h: u64,
    cap: usize,
    new: impl FnOnce() -> V,
) -> &mut V {
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
            let a = tracked(&mut m, h, MAX_TRACKED / ACTIVITY_SHARDS, || {
                Minutes::starting(minute)
            });
            a.add(minute, [n]);
            let spiking =
                a.may_alert() && a.now[0] >= SPIKE_MIN && a.now[0] as f64 > SPIKE_FACTOR * a.avg[0];
            if spiking {
                a.alerted = minute;
            }
            spiking.then_some((a.now[0], a.avg[0]))
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
