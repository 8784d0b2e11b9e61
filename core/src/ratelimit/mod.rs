//! In-process rate limiting: GCRA (the generic cell rate algorithm, an exact
//! token bucket kept as one timestamp per bucket) per key and named limit.
//!
//! - A [`Limit`] allows `count` requests per `period_ms` with bursts of up to
//!   `burst` requests (the bucket's capacity).
//! - [`RateLimiter::check`] checks several limits of one key all-or-nothing:
//!   a denied request consumes from none of them. [`RateLimiter::peek`]
//!   answers the same without consuming.
//! - State lives in memory, sharded by key; a bucket that has refilled
//!   completely carries no information and is evicted when a shard passes its
//!   bound, so memory stays bounded however many keys pass through.
//! - Across processes nothing is shared: each process enforces its own
//!   buckets, so N processes admit up to N times the configured rate.
//!
//! Times are milliseconds on the caller's clock (inject one in tests).

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// Longest key a rate limit is counted under, in bytes (on every store).
pub const MAX_KEY_LEN: usize = 512;

/// Checks a rate-limit key: 1 to [`MAX_KEY_LEN`] bytes. An empty key is
/// almost always a missing identity (no header, no address), and would put
/// every such caller in one bucket.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "a rate-limit key must be 1-{MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// Checks one request's key and limits, as every store takes them.
pub(crate) fn validate_request(key: &str, limits: &[Limit]) -> Result<()> {
    validate_key(key)?;
    validate_request_limits(limits)
}

/// Checks the limits of one request: at least one, and a valid list.
fn validate_request_limits(limits: &[Limit]) -> Result<()> {
    if limits.is_empty() {
        return Err(Error::invalid("no limits given"));
    }
    Limit::validate_list(limits)
}

/// Limits checked once (at least one, at most 16, names distinct, each in
/// range), so a limiter holding them checks only the key on each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLimits(Arc<[Limit]>);

impl CheckedLimits {
    /// Checks `limits` as every check would.
    pub fn new(limits: Vec<Limit>) -> Result<CheckedLimits> {
        validate_request_limits(&limits)?;
        Ok(CheckedLimits(limits.into()))
    }

    /// The limits, shared (for answers that name them).
    pub fn shared(&self) -> Arc<[Limit]> {
        Arc::clone(&self.0)
    }
}

impl std::ops::Deref for CheckedLimits {
    type Target = [Limit];
    fn deref(&self) -> &[Limit] {
        &self.0
    }
}

/// Where a manager keeps rate-limit state (its option `rate_limit_store`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RateLimitStore {
    /// The manager's database, shared by every process (and host) that
    /// opens it: a per-key limit holds however many workers run. The default.
    #[default]
    Store,
    /// In this process only (fastest): N processes admit up to N times the rate.
    Local,
    /// A Redis server (`redis://` URL): shared by every process that names it.
    Redis(String),
}

impl RateLimitStore {
    /// Parses `"store"`, `"local"` or a `redis://` URL.
    pub fn parse(text: &str) -> Result<RateLimitStore> {
        match text {
            "store" => Ok(RateLimitStore::Store),
            "local" => Ok(RateLimitStore::Local),
            url if url.starts_with("redis://") || url.starts_with("unix://") => {
                Ok(RateLimitStore::Redis(url.to_string()))
            }
            _ => Err(Error::invalid(
                "rate_limit_store must be \"store\", \"local\" or a redis:// URL",
            )),
        }
    }
}

/// One named limit: `count` requests per `period_ms`, bursts up to `burst`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(from = "LimitSpec")]
pub struct Limit {
    /// Name, e.g. `per_second` or `per_day`; buckets are per key and name.
    pub name: String,
    /// Requests per period.
    pub count: u64,
    /// Period length in milliseconds.
    pub period_ms: u64,
    /// Largest burst (bucket capacity); at least 1.
    pub burst: u64,
}

/// A limit as given: `burst` defaults to `count`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSpec {
    name: String,
    count: u64,
    period_ms: u64,
    burst: Option<u64>,
}

impl From<LimitSpec> for Limit {
    fn from(s: LimitSpec) -> Limit {
        Limit {
            burst: s.burst.unwrap_or(s.count),
            name: s.name,
            count: s.count,
            period_ms: s.period_ms,
        }
    }
}

impl Limit {
    /// A limit of `count` per `period_ms` with bursts of `burst`.
    pub fn new(name: &str, count: u64, period_ms: u64, burst: u64) -> Result<Limit> {
        let l = Limit {
            name: name.to_string(),
            count,
            period_ms,
            burst,
        };
        l.validate()?;
        Ok(l)
    }

    /// Parses a JSON array of limits (`[{"name", "count", "period_ms", "burst"}]`);
    /// [`RateLimiter::check`] and [`RateLimiter::peek`] validate them.
    pub fn list_from_json(text: &str) -> Result<Vec<Limit>> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("limits: {e}")))
    }

    /// Checks a key's list of limits: each valid, names unique, at most 16.
    pub fn validate_list(limits: &[Limit]) -> Result<()> {
        if limits.len() > 16 {
            return Err(Error::invalid("at most 16 rate limits per key"));
        }
        for (i, l) in limits.iter().enumerate() {
            l.validate()?;
            if limits[..i].iter().any(|o| o.name == l.name) {
                return Err(Error::invalid(format!(
                    "rate limit name {:?} given twice",
                    l.name
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.count == 0 || self.period_ms == 0 || self.burst == 0 {
            return Err(Error::invalid(
                "count, period_ms and burst must be positive",
            ));
        }
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(Error::invalid("limit name must be 1-64 bytes"));
        }
        // Shared stores (Redis scripts) count in doubles: keep every time
        // exact there. A full burst must refill within a century.
        if self.period_ms > MAX_SPAN_MS
            || (self.interval_us() as i128) * (self.burst as i128) > (MAX_SPAN_MS as i128) * 1000
        {
            return Err(Error::invalid(
                "a limit's period, and the time a full burst takes to refill, must be at most 100 years",
            ));
        }
        Ok(())
    }

    /// Time between two requests at the sustained rate, in microseconds.
    pub(crate) fn interval_us(&self) -> i64 {
        ((self.period_ms as i128 * 1000) / self.count as i128).max(1) as i64
    }
}

/// The state of one limit after a check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LimitState {
    /// The limit's name.
    pub name: String,
    /// Requests still allowed right now (after this one, if it was allowed).
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

/// The answer of a check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// True if the request is within every limit (and, for `check`, was counted).
    pub allowed: bool,
    /// Milliseconds to wait before the request would be allowed (0 if allowed).
    pub retry_after_ms: u64,
    /// Per-limit state, in the order given.
    pub limits: Vec<LimitState>,
    /// True when the store failed and fail-open allowed the request
    /// unchecked (the limits' state is unknown: send no `RateLimit` header).
    pub degraded: bool,
}

impl Decision {
    /// The decision of `limits` from their verdicts (as `decide_into` and
    /// its kin write them): allowed, the wait, and each limit's state.
    pub fn from_verdicts(
        allowed: bool,
        retry_after_ms: u64,
        limits: &[Limit],
        verdicts: &[Verdict],
    ) -> Decision {
        Decision {
            allowed,
            retry_after_ms,
            limits: limits
                .iter()
                .zip(verdicts)
                .map(|(l, v)| LimitState {
                    name: l.name.clone(),
                    remaining: v.remaining,
                    reset_ms: v.reset_ms,
                })
                .collect(),
            degraded: verdicts.iter().any(|v| v.degraded),
        }
    }
}

const SHARDS: usize = 64;

/// The longest period (and full-burst refill time) of a limit: 100 years, ms.
const MAX_SPAN_MS: u64 = 100 * 366 * 86_400_000;

/// Bucket id → theoretical arrival time (µs). The id is a 64-bit keyed hash
/// of (key, limit name); a collision would merge two buckets, with odds of
/// about n²/2⁶⁵ for n buckets (10⁻⁸ at a million). The id is already a
/// keyed hash, so the map uses it as it is.
type Shard = HashMap<u64, i64, nohash_hasher::BuildNoHashHasher<u64>>;

/// One limit's answer, without allocation (see [`RateLimiter::check_one`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// True if allowed (and, for `check_one`, counted).
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u64,
    /// Milliseconds to wait before the request would be allowed.
    pub retry_after_ms: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
    /// True when the store failed and fail-open allowed the request
    /// unchecked: `remaining` and `reset_ms` are unknown (0).
    pub degraded: bool,
}

/// Buckets for many keys; `Send + Sync`, share one per process.
pub struct RateLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    max_per_shard: usize,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("buckets", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(1_000_000)
    }
}

impl RateLimiter {
    /// A limiter keeping about `max_buckets` buckets before evicting full ones.
    pub fn new(max_buckets: usize) -> Self {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Default::default(),
            max_per_shard: (max_buckets / SHARDS).max(16),
        }
    }

    /// The shard of `key` (all limits of a key live in one shard, so a
    /// check is atomic) and the bucket id of each limit name.
    fn locate<'a>(&'a self, key: &'a str) -> (usize, impl Fn(&str) -> u64 + 'a) {
        let shard = (self.hasher.hash_one(key) as usize) % SHARDS;
        let id = move |name: &str| self.hasher.hash_one((key, name));
        (shard, id)
    }

    /// Stores new arrival times, evicting full buckets first when the shard
    /// is at its bound (they say nothing a fresh bucket would not).
    fn store(&self, shard: &mut Shard, now: i64, buckets: impl IntoIterator<Item = (u64, i64)>) {
        if shard.len() >= self.max_per_shard {
            shard.retain(|_, tat| *tat > now);
        }
        for (bucket, tat) in buckets {
            shard.insert(bucket, tat);
        }
    }

    /// One limit, no allocation: the hot path of a per-key check.
    pub fn check_one(&self, key: &str, limit: &Limit, now_ms: i64) -> Result<Verdict> {
        validate_key(key)?;
        limit.validate()?;
        Ok(self.count_one(key, limit, now_ms))
    }

    /// Counts one request of `key` against a list of one checked limit,
    /// without allocation (the bindings' hot path; longer lists: `decide_into`).
    pub fn check_single(&self, key: &str, limits: &CheckedLimits, now_ms: i64) -> Result<Verdict> {
        validate_key(key)?;
        match &limits[..] {
            [one] => Ok(self.count_one(key, one, now_ms)),
            _ => Err(Error::invalid("check_single takes a list of one limit")),
        }
    }

    /// [`RateLimiter::check_one`] for a key and limit already checked.
    fn count_one(&self, key: &str, limit: &Limit, now_ms: i64) -> Verdict {
        let now = now_ms.saturating_mul(1000);
        let (shard, id) = self.locate(key);
        let bucket = id(&limit.name);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let step = Step::new(limit, shard.get(&bucket).copied(), now);
        let wait = step.wait_us(now);
        if wait == 0 {
            self.store(&mut shard, now, [(bucket, step.new_tat)]);
        } else if step.clamped {
            self.store(&mut shard, now, [(bucket, step.tat)]);
        }
        let (remaining, reset_ms) = step.after(wait == 0, now);
        Verdict {
            allowed: wait == 0,
            remaining,
            retry_after_ms: (wait as u64).div_ceil(1000),
            reset_ms,
            degraded: false,
        }
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// True if no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one request of `key` against every limit, all-or-nothing, at `now_ms`.
    pub fn check(&self, key: &str, limits: &[Limit], now_ms: i64) -> Result<Decision> {
        self.decide(key, limits, now_ms, true)
    }

    /// Answers as `check` would, without counting the request.
    pub fn peek(&self, key: &str, limits: &[Limit], now_ms: i64) -> Result<Decision> {
        self.decide(key, limits, now_ms, false)
    }

    /// `check` when `consume`, else `peek` (for callers that take the choice as data).
    pub fn decide(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: i64,
        consume: bool,
    ) -> Result<Decision> {
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) =
            self.decide_into(key, limits, now_ms, consume, &mut verdicts)?;
        Ok(Decision::from_verdicts(
            allowed,
            retry_after_ms,
            limits,
            &verdicts,
        ))
    }

    /// [`RateLimiter::decide`] without building names: `out` receives one
    /// [`Verdict`] per limit, in order; returns (allowed, retry_after_ms).
    /// The bindings' hot path (a result object built from plain numbers).
    pub fn decide_into(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: i64,
        consume: bool,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        validate_request(key, limits)?;
        Ok(self.decide_checked(key, limits, now_ms, consume, out))
    }

    /// [`RateLimiter::decide_into`] for a key and limits already checked
    /// (the manager checks them once for every store).
    pub(crate) fn decide_checked(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: i64,
        consume: bool,
        out: &mut Vec<Verdict>,
    ) -> (bool, u64) {
        out.clear();
        if consume && let [one] = limits {
            // One limit: no intermediate allocation.
            let v = self.count_one(key, one, now_ms);
            out.push(v);
            return (v.allowed, v.retry_after_ms);
        }
        let (shard, id) = self.locate(key);
        let buckets: Vec<u64> = limits.iter().map(|l| id(&l.name)).collect();
        let now = now_ms.saturating_mul(1000);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let stored: Vec<Option<i64>> = buckets.iter().map(|b| shard.get(b).copied()).collect();
        let mut writes: Vec<(u64, i64)> = Vec::new();
        let answer = gcra(limits, &stored, now_ms, consume, out, &mut |i, tat| {
            writes.push((buckets[i], tat))
        });
        if !writes.is_empty() {
            self.store(&mut shard, now, writes);
        }
        answer
    }
}

/// The GCRA decision for one request over `limits` (validated) at `now_ms`,
/// from each limit's stored theoretical arrival time (µs; `None`: a full
/// bucket), all-or-nothing: `out` receives one [`Verdict`] per limit and
/// `write(i, tat)` each arrival time to store — every limit's when the
/// request is allowed and counted, only clamped ones (a clock that stepped
/// back) otherwise. Returns (allowed, retry_after_ms). Every store of rate
/// limit state (in process, a database) runs this same arithmetic.
pub(crate) fn gcra(
    limits: &[Limit],
    stored: &[Option<i64>],
    now_ms: i64,
    consume: bool,
    out: &mut Vec<Verdict>,
    write: &mut dyn FnMut(usize, i64),
) -> (bool, u64) {
    let now = now_ms.saturating_mul(1000);
    let steps: Vec<Step> = limits
        .iter()
        .zip(stored)
        .map(|(l, s)| Step::new(l, *s, now))
        .collect();
    // The request waits for its slowest limit.
    let wait = steps.iter().map(|s| s.wait_us(now)).max().unwrap_or(0);
    let allowed = wait == 0;
    if consume {
        for (i, s) in steps.iter().enumerate() {
            if allowed {
                write(i, s.new_tat);
            } else if s.clamped {
                write(i, s.tat);
            }
        }
    }
    let retry_after_ms = (wait as u64).div_ceil(1000);
    out.clear();
    out.extend(steps.iter().map(|s| {
        let (remaining, reset_ms) = s.after(allowed, now);
        Verdict {
            allowed,
            remaining,
            retry_after_ms,
            reset_ms,
            degraded: false,
        }
    }));
    (allowed, retry_after_ms)
}

/// One limit's GCRA arithmetic at `now` (µs), from the bucket's stored
/// theoretical arrival time (none: a full bucket).
#[derive(Debug, Clone, Copy)]
struct Step {
    tat: i64,
    /// The stored time was clamped (the clock stepped back): store `tat`
    /// even when the request is refused, so the lockout ends on time.
    clamped: bool,
    new_tat: i64,
    interval: i64,
    capacity: i64,
}

impl Step {
    fn new(limit: &Limit, stored: Option<i64>, now: i64) -> Step {
        let interval = limit.interval_us();
        let capacity = interval.saturating_mul(limit.burst as i64);
        // A stored time further ahead than a full burst can only come from
        // a clock that stepped back: clamp it, so a backward step never
        // locks a key out for longer than one emission interval.
        let ahead = stored.unwrap_or(now).max(now);
        let tat = ahead.min(now.saturating_add(capacity));
        Step {
            tat,
            clamped: tat < ahead,
            new_tat: tat.saturating_add(interval),
            interval,
            capacity,
        }
    }

    /// Microseconds before this limit admits the request (0: now).
    fn wait_us(&self, now: i64) -> i64 {
        (self.new_tat - self.capacity - now).max(0)
    }

    /// (remaining, reset_ms) once the request is counted (`allowed`) or not.
    fn after(&self, allowed: bool, now: i64) -> (u64, u64) {
        let after = if allowed { self.new_tat } else { self.tat };
        (
            ((now + self.capacity - after).max(0) / self.interval) as u64,
            ((after - now).max(0) as u64).div_ceil(1000),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let rl = RateLimiter::default();
        let l = [Limit::new("s", 10, 1000, 5).unwrap()]; // 10/s, burst 5
        for i in 0..5 {
            let d = rl.check("k", &l, 0).unwrap();
            assert!(d.allowed, "{i}");
            assert_eq!(d.limits[0].remaining, 4 - i);
        }
        let d = rl.check("k", &l, 0).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 100);
        assert!(!rl.check("k", &l, 99).unwrap().allowed);
        assert!(rl.check("k", &l, 100).unwrap().allowed);
        // Other keys are independent.
        assert!(rl.check("other", &l, 0).unwrap().allowed);
    }

    #[test]
    fn all_or_nothing_and_peek() {
        let rl = RateLimiter::default();
        let limits = [
            Limit::new("per_second", 100, 1000, 100).unwrap(),
            Limit::new("per_minute", 2, 60_000, 2).unwrap(),
        ];
        assert!(rl.check("k", &limits, 0).unwrap().allowed);
        assert!(rl.check("k", &limits, 0).unwrap().allowed);
        let denied = rl.check("k", &limits, 0).unwrap();
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_ms, 30_000);
        // The denied request took nothing from per_second.
        assert_eq!(denied.limits[0].remaining, 98);
        let p = rl.peek("k", &limits, 30_000).unwrap();
        assert!(p.allowed);
        assert_eq!(
            rl.peek("k", &limits, 30_000).unwrap(),
            p,
            "peek consumes nothing"
        );
        assert!(Limit::new("x", 0, 1, 1).is_err());
        assert!(rl.check("k", &[], 0).is_err());
    }

    #[test]
    fn check_one_matches_check() {
        let a = RateLimiter::default();
        let b = RateLimiter::default();
        let l = Limit::new("s", 3, 1000, 2).unwrap();
        for t in [0, 0, 0, 100, 333, 334, 700, 2000] {
            let one = a.check_one("k", &l, t).unwrap();
            let many = b.check("k", std::slice::from_ref(&l), t).unwrap();
            assert_eq!(one.allowed, many.allowed, "t={t}");
            assert_eq!(one.remaining, many.limits[0].remaining, "t={t}");
            assert_eq!(one.retry_after_ms, many.retry_after_ms, "t={t}");
            assert_eq!(one.reset_ms, many.limits[0].reset_ms, "t={t}");
        }
    }

    #[test]
    fn memory_stays_bounded() {
        let rl = RateLimiter::new(64 * 16);
        let l = [Limit::new("s", 1000, 1000, 10).unwrap()];
        for i in 0..100_000 {
            // Each key is used once, 10 ms apart: its bucket refills long before reuse.
            rl.check(&format!("key-{i}"), &l, i * 10).unwrap();
        }
        assert!(rl.len() <= 64 * 17, "{} buckets", rl.len());
    }
}
