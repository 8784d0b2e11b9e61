//! Rate limits through the manager, in the store its options name
//! (`rate_limit_store`): the manager's database (default; shared by every
//! process that opens it), this process only (`local`), or Redis. The GCRA
//! arithmetic is `ratelimit`'s; this module picks where its state lives and
//! what a failing store means (`STORAGE`, or allowed when fail-open).

use crate::error::{Error, ErrorKind, Result};
use crate::manager::{Rates, TokenManager};
use crate::metrics::Metrics;
use crate::ratelimit::{
    CheckedLimits, Decision, Limit, RateLimitStore, RateLimiter, Verdict, gcra,
};
use crate::store::redis::RedisLimiter;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

impl TokenManager {
    /// Counts one request of `key` against every limit, all-or-nothing, in
    /// the manager's rate-limit store.
    pub fn rate_limit(&self, key: &str, limits: &[Limit]) -> Result<Decision> {
        self.rate_limit_decide(key, limits, true)
    }

    /// Answers as [`TokenManager::rate_limit`] would, counting nothing.
    pub fn rate_limit_peek(&self, key: &str, limits: &[Limit]) -> Result<Decision> {
        self.rate_limit_decide(key, limits, false)
    }

    /// Counts one request of `key` costing `cost` tokens (`cost` against
    /// the limits in tokens, 1 against the others), all-or-nothing.
    pub fn rate_limit_cost(&self, key: &str, limits: &[Limit], cost: u64) -> Result<Decision> {
        self.rate_limit_decide_cost(key, limits, true, cost)
    }

    /// [`TokenManager::rate_limit`] when `consume`, else the peek.
    pub fn rate_limit_decide(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
    ) -> Result<Decision> {
        self.rate_limit_decide_cost(key, limits, consume, 1)
    }

    /// [`TokenManager::rate_limit_decide`] for a request of `cost` tokens.
    pub fn rate_limit_decide_cost(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
        cost: u64,
    ) -> Result<Decision> {
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) =
            self.rate_limit_into(key, limits, consume, cost, &mut verdicts)?;
        Ok(Decision::from_verdicts(
            allowed,
            retry_after_ms,
            limits,
            &verdicts,
        ))
    }

    /// The decision as plain numbers: `out` receives one [`Verdict`] per
    /// limit; returns (allowed, retry_after_ms). The bindings' fast path.
    pub fn rate_limit_into(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        crate::ratelimit::validate_request(key, limits, cost)?;
        self.rate_limit_valid(key, limits, consume, cost, out)
    }

    /// Corrects the limits in tokens of `key` once a request's actual count
    /// is known (see [`RateLimiter::settle`]), in the manager's store.
    pub fn rate_limit_settle(
        &self,
        key: &str,
        limits: &[Limit],
        estimated: u64,
        actual: u64,
    ) -> Result<()> {
        crate::ratelimit::validate_request(key, limits, 1)?;
        let inner = self.inner();
        match &inner.rates {
            Rates::Local => {
                let now_ms = inner.clock.monotonic_ms();
                inner.limiter.settle(key, limits, estimated, actual, now_ms)
            }
            Rates::Store => {
                let now = inner.clock.now_ms().saturating_mul(1000);
                let tokens: Vec<&Limit> = limits
                    .iter()
                    .filter(|l| l.unit == crate::ratelimit::Unit::Tokens)
                    .collect();
                if tokens.is_empty() {
                    return Ok(());
                }
                let names: Vec<&str> = tokens.iter().map(|l| l.name.as_str()).collect();
                inner.db.write_relaxed(|tx| {
                    let stored = tx.rates().buckets(key, &names)?;
                    for ((l, s), name) in tokens.iter().zip(stored).zip(&names) {
                        let t = crate::ratelimit::settled(l, s, now, estimated, actual);
                        tx.rates().set_bucket(key, name, t)?;
                    }
                    Ok(())
                })
            }
            Rates::Redis(r) => r.settle(key, limits, estimated, actual),
            Rates::Broken(e) => Err(e.clone()),
        }
    }

    /// (store errors, requests allowed unchecked by fail-open) of this
    /// manager's rate limits so far (also in its metrics).
    pub fn rate_limit_failures(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.inner().metrics;
        (
            m.rate_limit_store_errors.load(Relaxed),
            m.rate_limit_fail_open.load(Relaxed),
        )
    }

    /// [`TokenManager::rate_limit_into`] with limits checked once (a
    /// limiter's own): only the key is checked per call.
    pub fn rate_limit_with(
        &self,
        key: &str,
        limits: &CheckedLimits,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        crate::ratelimit::validate_key(key)?;
        crate::ratelimit::validate_cost(limits, cost)?;
        self.rate_limit_valid(key, limits, consume, cost, out)
    }

    /// The decision for a key, limits and cost already checked.
    pub(crate) fn rate_limit_valid(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        let inner = self.inner();
        let answer = match &inner.rates {
            Rates::Local => {
                let now_ms = inner.clock.monotonic_ms();
                return Ok(inner
                    .limiter
                    .decide_checked(key, limits, now_ms, consume, cost, out));
            }
            Rates::Store => {
                let now_ms = inner.clock.now_ms();
                let names: Vec<&str> = limits.iter().map(|l| l.name.as_str()).collect();
                let decide = |tx: &dyn crate::store::Tx| {
                    let stored = tx.rates().buckets(key, &names)?;
                    let mut writes = Vec::new();
                    let answer = gcra(limits, &stored, now_ms, consume, cost, out, &mut |i, t| {
                        writes.push((i, t))
                    });
                    for (i, t) in writes {
                        tx.rates().set_bucket(key, names[i], t)?;
                    }
                    Ok(answer)
                };
                if consume {
                    inner.db.write_relaxed(decide)
                } else {
                    inner.db.read_snapshot(decide)
                }
            }
            Rates::Redis(r) => r.decide_into(key, limits, consume, cost, out),
            Rates::Broken(e) => Err(e.clone()),
        };
        let decided = fail_open_or(
            answer,
            inner.rate_limit_fail_open,
            &inner.metrics.rate_limit_store_errors,
            &inner.metrics.rate_limit_fail_open,
            limits,
            out,
        );
        if out.first().is_some_and(|v| v.degraded) {
            inner.signals.fail_open(key, inner.now());
        }
        decided
    }
}

/// What a failed store means: the error (default), or with fail-open an
/// unchecked allow whose remaining and reset are unknown (0). Both counted.
fn fail_open_or(
    answer: Result<(bool, u64)>,
    fail_open: bool,
    errors: &AtomicU64,
    opened: &AtomicU64,
    limits: &[Limit],
    out: &mut Vec<Verdict>,
) -> Result<(bool, u64)> {
    match answer {
        Err(e) if matches!(e.kind(), ErrorKind::Storage | ErrorKind::Busy) => {
            Metrics::inc(errors);
            if !fail_open {
                return Err(e);
            }
            Metrics::inc(opened);
            out.clear();
            out.extend(limits.iter().map(|_| Verdict {
                allowed: true,
                remaining: 0,
                retry_after_ms: 0,
                reset_ms: 0,
                degraded: true,
            }));
            Ok((true, 0))
        }
        other => other,
    }
}

/// A rate limiter without a manager: buckets in this process, or on a
/// Redis server shared by every process and host that names it. (Limits in
/// a manager's database: [`TokenManager::rate_limit`].)
pub struct SharedLimiter {
    local: RateLimiter,
    redis: Option<Box<RedisLimiter>>,
    fail_open: bool,
    errors: AtomicU64,
    opened: AtomicU64,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// A limiter on `store` (`Local` or `Redis`; `Store` needs a manager);
    /// `max_buckets` bounds local buckets, `timeout` each Redis call, and
    /// `fail_open` allows requests while Redis fails instead of `STORAGE`.
    pub fn open(
        store: &RateLimitStore,
        max_buckets: usize,
        timeout: Duration,
        fail_open: bool,
    ) -> Result<SharedLimiter> {
        let redis = match store {
            RateLimitStore::Local => None,
            RateLimitStore::Redis(url) => Some(Box::new(RedisLimiter::open(url, timeout)?)),
            RateLimitStore::Store => {
                return Err(Error::invalid(
                    "rate limits in a database need its manager: use TokenManager.rate_limit or pass the manager",
                ));
            }
        };
        Ok(SharedLimiter {
            local: RateLimiter::new(max_buckets),
            redis,
            fail_open,
            errors: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        })
    }

    /// True if the buckets live in this process (then `now_ms` may be injected).
    pub fn is_local(&self) -> bool {
        self.redis.is_none()
    }

    /// The in-process buckets, when they are where this limiter decides.
    pub fn local(&self) -> Option<&RateLimiter> {
        self.is_local().then_some(&self.local)
    }

    /// Like `RateLimiter::decide_into`; `now_ms` (local buckets only)
    /// defaults to the system clock, Redis uses the server's.
    pub fn decide_into(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: Option<i64>,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        crate::ratelimit::validate_request(key, limits, cost)?;
        self.decide_valid(key, limits, now_ms, consume, cost, out)
    }

    /// Corrects the limits in tokens of `key` once a request's actual count
    /// is known (see [`RateLimiter::settle`]); `now_ms` as for checks.
    pub fn settle(
        &self,
        key: &str,
        limits: &[Limit],
        estimated: u64,
        actual: u64,
        now_ms: Option<i64>,
    ) -> Result<()> {
        crate::ratelimit::validate_request(key, limits, 1)?;
        let Some(redis) = &self.redis else {
            let now = now_ms.unwrap_or_else(crate::clock::SystemClock::now_ms);
            return self.local.settle(key, limits, estimated, actual, now);
        };
        if now_ms.is_some() {
            return Err(Error::invalid(
                "now_ms applies to in-process limits only: Redis decides on its own clock",
            ));
        }
        redis.settle(key, limits, estimated, actual)
    }

    /// [`SharedLimiter::decide_into`] with limits checked once (the
    /// limiter's own): only the key is checked per call.
    pub fn decide_with(
        &self,
        key: &str,
        limits: &CheckedLimits,
        now_ms: Option<i64>,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        crate::ratelimit::validate_key(key)?;
        crate::ratelimit::validate_cost(limits, cost)?;
        self.decide_valid(key, limits, now_ms, consume, cost, out)
    }

    /// The decision for a key, limits and cost already checked.
    fn decide_valid(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: Option<i64>,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        let Some(redis) = &self.redis else {
            let now = now_ms.unwrap_or_else(crate::clock::SystemClock::now_ms);
            return Ok(self
                .local
                .decide_checked(key, limits, now, consume, cost, out));
        };
        if now_ms.is_some() {
            return Err(Error::invalid(
                "now_ms applies to in-process limits only: Redis decides on its own clock",
            ));
        }
        let answer = redis.decide_into(key, limits, consume, cost, out);
        fail_open_or(
            answer,
            self.fail_open,
            &self.errors,
            &self.opened,
            limits,
            out,
        )
    }

    /// Buckets held in this process (0 for Redis).
    pub fn len(&self) -> usize {
        self.local.len()
    }

    /// True if no bucket is held in this process.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }

    /// (store errors, requests allowed unchecked by fail-open) so far.
    pub fn failures(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.errors.load(Relaxed), self.opened.load(Relaxed))
    }
}
