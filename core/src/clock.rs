//! Sources of "now": the system clock and a manual one for tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" in Unix seconds. Inject one to test expiry without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current time in Unix seconds.
    fn now(&self) -> i64;
    /// The current time in Unix milliseconds; default `now() * 1000`.
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
    /// Milliseconds that only move forward (in-process rate limits); the
    /// system clock counts them from a monotonic source, so stepping the
    /// wall clock back does not lock keys out. Default: `now_ms()`.
    fn monotonic_ms(&self) -> i64 {
        self.now_ms()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The current time in Unix milliseconds (the rate limiter's unit).
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemClock::now_ms().div_euclid(1000)
    }
    fn now_ms(&self) -> i64 {
        SystemClock::now_ms()
    }
    fn monotonic_ms(&self) -> i64 {
        // Wall time at the first call, then a monotonic clock's progress.
        static ANCHOR: std::sync::OnceLock<(std::time::Instant, i64)> = std::sync::OnceLock::new();
        let (start, wall) =
            ANCHOR.get_or_init(|| (std::time::Instant::now(), SystemClock::now_ms()));
        wall.saturating_add(start.elapsed().as_millis() as i64)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `t` (Unix seconds).
    pub fn new(t: i64) -> Self {
        ManualClock(AtomicI64::new(t.saturating_mul(1000)))
    }
    /// Sets the time (Unix seconds).
    pub fn set(&self, t: i64) {
        self.0.store(t.saturating_mul(1000), Ordering::SeqCst);
    }
    /// Moves the time by `secs` (may be negative).
    pub fn advance(&self, secs: i64) {
        self.0
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
    /// Sets the time in Unix milliseconds.
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Moves the time by `ms` milliseconds (may be negative).
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst).div_euclid(1000)
    }
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
