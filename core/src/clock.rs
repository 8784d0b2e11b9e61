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
        self.advance_ms(secs.saturating_mul(1000));
    }
    /// Sets the time in Unix milliseconds.
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Moves the time by `ms` milliseconds (may be negative).
    pub fn advance_ms(&self, ms: i64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
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

/// The latest time irontoken stores or signs, 9999-12-31T23:59:59Z: the end
/// of RFC 3339's range and of common date types (Python's `datetime`), and
/// exact as a JS number. Expiries past it are refused, not saturated.
pub const MAX_TIME: i64 = 253_402_300_799;

/// `t` when it is at most [`MAX_TIME`], else `INVALID_ARGUMENT` naming `what`.
pub fn check_time(what: &str, t: i64) -> crate::error::Result<i64> {
    if t <= MAX_TIME {
        Ok(t)
    } else {
        Err(crate::error::Error::invalid(format!(
            "{what} is past 9999-12-31T23:59:59Z (Unix {MAX_TIME})"
        )))
    }
}

/// `now + secs` when it is at most [`MAX_TIME`], else `INVALID_ARGUMENT`
/// naming `what` (a duration that would end past it).
pub fn time_after(what: &str, now: i64, secs: i64) -> crate::error::Result<i64> {
    check_time(what, now.saturating_add(secs))
}

/// A rotation's `overlap_seconds` (API or signing key): at least 0, ending
/// no later than [`MAX_TIME`].
pub fn check_overlap(now: i64, overlap_seconds: i64) -> crate::error::Result<()> {
    if overlap_seconds < 0 {
        return Err(crate::error::Error::invalid("overlap_seconds must be >= 0"));
    }
    time_after("overlap_seconds", now, overlap_seconds).map(drop)
}

/// A new expiry `t` at `now`: in the future (else `INVALID_ARGUMENT` saying
/// `in_past`) and no later than [`MAX_TIME`].
pub fn check_expiry(t: i64, now: i64, in_past: &str) -> crate::error::Result<i64> {
    if t <= now {
        return Err(crate::error::Error::invalid(in_past));
    }
    check_time("expires_at", t)
}
