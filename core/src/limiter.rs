//! Rate limits through the manager, in the store its options name
//! (`rate_limit_store`): the manager's database (default; shared by every
//! process that opens it), this process only (`local`), or Redis. The GCRA
//! arithmetic is `ratelimit`'s; this module picks where its state lives and
//! what a failing store means (`STORAGE`, or allowed when fail-open).

use crate::error::{Error, ErrorKind, Result};
use crate::manager::{Rates, TokenManager};
use crate::metrics::Metrics;
use crate::ratelimit::{Decision, Limit, LimitState, Verdict, gcra};

/// Longest key a rate limit is counted under (bytes).
const MAX_KEY: usize = 512;

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

    /// [`TokenManager::rate_limit`] when `consume`, else the peek.
    pub fn rate_limit_decide(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
    ) -> Result<Decision> {
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) =
            self.rate_limit_into(key, limits, consume, &mut verdicts)?;
        Ok(Decision {
            allowed,
            retry_after_ms,
            limits: limits
                .iter()
                .zip(&verdicts)
                .map(|(l, v)| LimitState {
                    name: l.name.clone(),
                    remaining: v.remaining,
                    reset_ms: v.reset_ms,
                })
                .collect(),
        })
    }

    /// The decision as plain numbers: `out` receives one [`Verdict`] per
    /// limit; returns (allowed, retry_after_ms). The bindings' fast path.
    pub fn rate_limit_into(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(Error::invalid(format!(
                "a rate-limit key must be 1-{MAX_KEY} bytes"
            )));
        }
        if limits.is_empty() {
            return Err(Error::invalid("no limits given"));
        }
        Limit::validate_list(limits)?;
        let inner = self.inner();
        let answer = match &inner.rates {
            Rates::Local => {
                let now_ms = inner.clock.monotonic_ms();
                return inner.limiter.decide_into(key, limits, now_ms, consume, out);
            }
            Rates::Store => {
                let now_ms = inner.clock.now_ms();
                let names: Vec<&str> = limits.iter().map(|l| l.name.as_str()).collect();
                let decide = |tx: &dyn crate::store::Tx| {
                    let stored = tx.rates().buckets(key, &names)?;
                    let mut writes = Vec::new();
                    let answer = gcra(limits, &stored, now_ms, consume, out, &mut |i, t| {
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
            Rates::Redis(r) => r.decide_into(key, limits, consume, out),
            Rates::Broken(e) => Err(e.clone()),
        };
        match answer {
            Err(e) if matches!(e.kind(), ErrorKind::Storage | ErrorKind::Busy) => {
                Metrics::inc(&inner.metrics.rate_limit_store_errors);
                if !inner.rate_limit_fail_open {
                    return Err(e);
                }
                // Fail-open: allowed, unchecked; remaining and reset unknown (0).
                Metrics::inc(&inner.metrics.rate_limit_fail_open);
                out.clear();
                out.extend(limits.iter().map(|_| Verdict {
                    allowed: true,
                    remaining: 0,
                    retry_after_ms: 0,
                    reset_ms: 0,
                }));
                Ok((true, 0))
            }
            other => other,
        }
    }
}
