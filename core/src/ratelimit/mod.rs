//! In-process rate limiting: GCRA (the generic cell rate algorithm, an exact
//! token bucket kept as one timestamp per bucket) per key and named limit.
//!
//! - A [`Limit`] allows `count` units per `period_ms` with bursts of up to
//!   `burst` units (the bucket's capacity). A unit is a request (the
//!   default) or, for `"unit": "tokens"`, an LLM token: a request counts
//!   its cost (`check_cost`) against the limits in tokens and 1 against the
//!   others, so tokens per minute and requests per minute hold together.
//! - [`RateLimiter::settle`] corrects a check whose cost was an estimate
//!   once the actual count is known (tokens limits only).
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

/// Checks one request's key, limits and cost, as every store takes them.
pub(crate) fn validate_request(key: &str, limits: &[Limit], cost: u64) -> Result<()> {
    validate_key(key)?;
    validate_request_limits(limits)?;
    validate_cost(limits, cost)
}

/// Checks a request's cost against limits: a cost other than 1 needs a
/// limit in tokens (it would count for nothing else), and a cost above a
/// tokens limit's burst could never be admitted, however long it waited.
pub(crate) fn validate_cost(limits: &[Limit], cost: u64) -> Result<()> {
    if cost != 1 && !limits.iter().any(|l| l.unit == Unit::Tokens) {
        return Err(Error::invalid(
            "a cost counts against limits in tokens (\"unit\": \"tokens\"); these limits count requests",
        ));
    }
    if let Some(l) = too_small_for(limits, cost) {
        return Err(Error::invalid(format!(
            "a cost of {cost} is more than limit {:?} admits at once (burst {}): no wait would let it through",
            l.name, l.burst
        )));
    }
    Ok(())
}

/// The first tokens limit whose burst is below `cost`, if any: a request of
/// that cost is never admitted by it.
pub fn too_small_for(limits: &[Limit], cost: u64) -> Option<&Limit> {
    limits
        .iter()
        .find(|l| l.unit == Unit::Tokens && cost > l.burst)
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

/// What a limit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Requests: every admitted request counts 1. The default.
    #[default]
    Requests,
    /// LLM tokens: a request counts its cost (its tokens; see
    /// [`RateLimiter::check_cost`]) — tokens per minute, say.
    Tokens,
}

impl Unit {
    fn is_requests(&self) -> bool {
        *self == Unit::Requests
    }
}

/// One named limit: `count` units per `period_ms`, bursts up to `burst`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(from = "LimitSpec")]
pub struct Limit {
    /// Name, e.g. `per_second` or `per_day`; buckets are per key and name.
    pub name: String,
    /// Units per period.
    pub count: u64,
    /// Period length in milliseconds.
    pub period_ms: u64,
    /// Largest burst (bucket capacity); at least 1.
    pub burst: u64,
    /// What is counted: requests (the default, left out of JSON) or tokens.
    #[serde(default, skip_serializing_if = "Unit::is_requests")]
    pub unit: Unit,
}

/// A limit as given: `burst` defaults to `count`, `unit` to requests.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSpec {
    name: String,
    count: u64,
    period_ms: u64,
    burst: Option<u64>,
    #[serde(default)]
    unit: Unit,
}

impl From<LimitSpec> for Limit {
    fn from(s: LimitSpec) -> Limit {
        Limit {
            burst: s.burst.unwrap_or(s.count),
            name: s.name,
            count: s.count,
            period_ms: s.period_ms,
            unit: s.unit,
        }
    }
}

impl Limit {
    /// A limit of `count` requests per `period_ms` with bursts of `burst`.
    pub fn new(name: &str, count: u64, period_ms: u64, burst: u64) -> Result<Limit> {
        let l = Limit {
            name: name.to_string(),
            count,
            period_ms,
            burst,
            unit: Unit::Requests,
        };
        l.validate()?;
        Ok(l)
    }

    /// A limit of `count` tokens per `period_ms` with bursts of `burst`
    /// tokens (tokens per minute: `period_ms` 60 000).
    pub fn tokens(name: &str, count: u64, period_ms: u64, burst: u64) -> Result<Limit> {
        let l = Limit {
            unit: Unit::Tokens,
            ..Limit::new(name, count, period_ms, burst)?
        };
        Ok(l)
    }

    /// The units a request of `cost` counts against this limit: 1 for a
    /// limit of requests, `cost` for one of tokens.
    pub fn units(&self, cost: u64) -> u64 {
        match self.unit {
            Unit::Requests => 1,
            Unit::Tokens => cost,
        }
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
        Ok(self.count_one(key, limit, now_ms, 1))
    }

    /// Counts one request of `key` and `cost` against a list of one checked
    /// limit, without allocation (the bindings' hot path; longer lists:
    /// `decide_into`).
    pub fn check_single(
        &self,
        key: &str,
        limits: &CheckedLimits,
        cost: u64,
        now_ms: i64,
    ) -> Result<Verdict> {
        validate_key(key)?;
        validate_cost(limits, cost)?;
        match &limits[..] {
            [one] => Ok(self.count_one(key, one, now_ms, cost)),
            _ => Err(Error::invalid("check_single takes a list of one limit")),
        }
    }

    /// [`RateLimiter::check_one`] for a key, limit and cost already checked.
    fn count_one(&self, key: &str, limit: &Limit, now_ms: i64, cost: u64) -> Verdict {
        let now = now_ms.saturating_mul(1000);
        let (shard, id) = self.locate(key);
        let bucket = id(&limit.name);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let step = Step::new(limit, shard.get(&bucket).copied(), now, limit.units(cost));
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

    /// Counts one request of `key` costing `cost` tokens: `cost` against
    /// the limits in tokens, 1 against the others, all-or-nothing.
    pub fn check_cost(
        &self,
        key: &str,
        limits: &[Limit],
        cost: u64,
        now_ms: i64,
    ) -> Result<Decision> {
        self.decide_cost(key, limits, now_ms, true, cost)
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
        self.decide_cost(key, limits, now_ms, consume, 1)
    }

    /// [`RateLimiter::decide`] for a request of `cost` tokens.
    pub fn decide_cost(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: i64,
        consume: bool,
        cost: u64,
    ) -> Result<Decision> {
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) =
            self.decide_into(key, limits, now_ms, consume, cost, &mut verdicts)?;
        Ok(Decision::from_verdicts(
            allowed,
            retry_after_ms,
            limits,
            &verdicts,
        ))
    }

    /// [`RateLimiter::decide_cost`] without building names: `out` receives
    /// one [`Verdict`] per limit, in order; returns (allowed,
    /// retry_after_ms). The bindings' hot path (a result object built from
    /// plain numbers).
    pub fn decide_into(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: i64,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        validate_request(key, limits, cost)?;
        Ok(self.decide_checked(key, limits, now_ms, consume, cost, out))
    }

    /// [`RateLimiter::decide_into`] for a key, limits and cost already
    /// checked (the manager checks them once for every store).
    pub(crate) fn decide_checked(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: i64,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> (bool, u64) {
        out.clear();
        if consume && let [one] = limits {
            // One limit: no intermediate allocation.
            let v = self.count_one(key, one, now_ms, cost);
            out.push(v);
            return (v.allowed, v.retry_after_ms);
        }
        let (shard, id) = self.locate(key);
        let buckets: Vec<u64> = limits.iter().map(|l| id(&l.name)).collect();
        let now = now_ms.saturating_mul(1000);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let stored: Vec<Option<i64>> = buckets.iter().map(|b| shard.get(b).copied()).collect();
        let mut writes: Vec<(u64, i64)> = Vec::new();
        let answer = gcra(
            limits,
            &stored,
            now_ms,
            consume,
            cost,
            out,
            &mut |i, tat| writes.push((buckets[i], tat)),
        );
        if !writes.is_empty() {
            self.store(&mut shard, now, writes);
        }
        answer
    }

    /// Corrects the tokens limits of `key` once a request's actual count
    /// is known: `actual - estimated` more tokens (fewer when negative) than
    /// its check counted. An under-estimate can empty a bucket, never
    /// overdraw it beyond one burst; an over-estimate is given back up to a
    /// full bucket. Limits counting requests are left as they are.
    pub fn settle(
        &self,
        key: &str,
        limits: &[Limit],
        estimated: u64,
        actual: u64,
        now_ms: i64,
    ) -> Result<()> {
        validate_request(key, limits, 1)?;
        let (shard, id) = self.locate(key);
        let now = now_ms.saturating_mul(1000);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let writes: Vec<(u64, i64)> = limits
            .iter()
            .filter(|l| l.unit == Unit::Tokens)
            .map(|l| {
                let b = id(&l.name);
                (
                    b,
                    settled(l, shard.get(&b).copied(), now, estimated, actual),
                )
            })
            .collect();
        self.store(&mut shard, now, writes);
        Ok(())
    }
}

/// A bucket's theoretical arrival time (µs) after a settlement of
/// `actual - estimated` tokens at `now` (µs): moved by that many emission
/// intervals, kept between a full bucket (`now`) and an empty one
/// (`now + capacity`). Every store settles with this arithmetic (Redis in
/// its script: the clamped shift is [`settle_shift_us`]).
pub(crate) fn settled(
    limit: &Limit,
    stored: Option<i64>,
    now: i64,
    estimated: u64,
    actual: u64,
) -> i64 {
    let capacity = limit.interval_us().saturating_mul(limit.burst as i64);
    let ahead = stored
        .unwrap_or(now)
        .max(now)
        .min(now.saturating_add(capacity));
    ahead
        .saturating_add(settle_shift_us(limit, estimated, actual))
        .clamp(now, now.saturating_add(capacity))
}

/// The shift of a settlement in µs, bounded to ± one full bucket (a larger
/// one is clamped away anyway, and the bound keeps Redis's doubles exact).
pub(crate) fn settle_shift_us(limit: &Limit, estimated: u64, actual: u64) -> i64 {
    let capacity = limit.interval_us() as i128 * limit.burst as i128;
    let delta = (actual as i128 - estimated as i128) * limit.interval_us() as i128;
    delta.clamp(-capacity, capacity) as i64
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
    cost: u64,
    out: &mut Vec<Verdict>,
    write: &mut dyn FnMut(usize, i64),
) -> (bool, u64) {
    let now = now_ms.saturating_mul(1000);
    let steps: Vec<Step> = limits
        .iter()
        .zip(stored)
        .map(|(l, s)| Step::new(l, *s, now, l.units(cost)))
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
    /// The time the request needs free: its own units, at least one (a
    /// request of no tokens still needs a bucket that is not empty).
    need: i64,
    interval: i64,
    capacity: i64,
}

impl Step {
    /// The step of a request counting `units` (validated: at most the burst).
    fn new(limit: &Limit, stored: Option<i64>, now: i64, units: u64) -> Step {
        let interval = limit.interval_us();
        let capacity = interval.saturating_mul(limit.burst as i64);
        // A stored time further ahead than a full burst can only come from
        // a clock that stepped back: clamp it, so a backward step never
        // locks a key out for longer than one emission interval.
        let ahead = stored.unwrap_or(now).max(now);
        let tat = ahead.min(now.saturating_add(capacity));
        let units = units.min(limit.burst) as i64;
        Step {
            tat,
            clamped: tat < ahead,
            new_tat: tat.saturating_add(interval.saturating_mul(units)),
            need: interval.saturating_mul(units.max(1)),
            interval,
            capacity,
        }
    }

    /// Microseconds before this limit admits the request (0: now).
    fn wait_us(&self, now: i64) -> i64 {
        (self.tat + self.need - self.capacity - now).max(0)
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
    fn tokens_and_requests_together() {
        let rl = RateLimiter::default();
        // 1000 tokens a minute and 3 requests a minute.
        let limits = [
            Limit::tokens("tpm", 1000, 60_000, 1000).unwrap(),
            Limit::new("rpm", 3, 60_000, 3).unwrap(),
        ];
        let d = rl.check_cost("k", &limits, 600, 0).unwrap();
        assert!(d.allowed);
        assert_eq!((d.limits[0].remaining, d.limits[1].remaining), (400, 2));
        // 500 more tokens do not fit: refused, and nothing is taken.
        let d = rl.check_cost("k", &limits, 500, 0).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 6000, "100 tokens refill in 6 s");
        assert_eq!((d.limits[0].remaining, d.limits[1].remaining), (400, 2));
        assert!(rl.check_cost("k", &limits, 400, 0).unwrap().allowed);
        // An empty bucket refuses even a request of no tokens.
        let d = rl.check_cost("k", &limits, 0, 0).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 60, "one token refills in 60 ms");
        // The request limit counts requests, whatever their tokens.
        assert!(rl.check_cost("k", &limits, 0, 60).unwrap().allowed);
        let d = rl.check_cost("k", &limits, 0, 120).unwrap();
        assert!(!d.allowed, "three requests a minute");
        // A cost no wait would admit, and a cost without a tokens limit.
        assert!(rl.check_cost("k", &limits, 1001, 0).is_err());
        assert!(rl.check_cost("k", &limits[1..], 5, 0).is_err());
        assert!(rl.check_cost("k", &limits[1..], 1, 0).is_ok());
    }

    #[test]
    fn settle_moves_only_tokens_limits() {
        let rl = RateLimiter::default();
        let limits = [
            Limit::tokens("tpm", 1000, 60_000, 1000).unwrap(),
            Limit::new("rpm", 100, 60_000, 100).unwrap(),
        ];
        let d = rl.check_cost("k", &limits, 800, 0).unwrap();
        assert_eq!(d.limits[0].remaining, 200);
        // It used 300: 500 tokens come back, the request stays counted.
        rl.settle("k", &limits, 800, 300, 0).unwrap();
        // (A peek answers as if this request were counted: 98 requests left.)
        let p = rl.decide_cost("k", &limits, 0, false, 0).unwrap();
        assert_eq!((p.limits[0].remaining, p.limits[1].remaining), (700, 98));
        // It used 2000 against an estimate of 300: the bucket is emptied,
        // not overdrawn beyond one burst.
        rl.settle("k", &limits, 300, 2000, 0).unwrap();
        let p = rl.decide_cost("k", &limits, 0, false, 1).unwrap();
        assert!(!p.allowed);
        assert_eq!(p.limits[0].remaining, 0);
        assert_eq!(p.limits[0].reset_ms, 60_000);
        // A refund never makes a bucket fuller than full.
        rl.settle("k", &limits, 5000, 0, 0).unwrap();
        let p = rl.decide_cost("k", &limits, 0, false, 0).unwrap();
        assert_eq!(p.limits[0].remaining, 1000);
    }

    #[test]
    fn limits_json_keeps_the_unit() {
        let l = Limit::list_from_json(
            r#"[{"name": "tpm", "count": 100000, "period_ms": 60000, "unit": "tokens"},
                {"name": "rpm", "count": 60, "period_ms": 60000}]"#,
        )
        .unwrap();
        assert_eq!(l[0].unit, Unit::Tokens);
        assert_eq!(l[1].unit, Unit::Requests);
        let text = serde_json::to_string(&l).unwrap();
        assert!(text.contains(r#""unit":"tokens""#));
        assert_eq!(
            text.matches("unit").count(),
            1,
            "requests is the default: {text}"
        );
        assert!(
            Limit::list_from_json(r#"[{"name":"x","count":1,"period_ms":1,"unit":"bytes"}]"#)
                .is_err()
        );
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
