//! GCRA with random limits and random (also backward) times: never panics,
//! and never admits more than burst + rate x elapsed in a forward run.
#![no_main]
use irontoken::ratelimit::{Limit, RateLimiter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let count = 1 + data[0] as u64 % 50;
    let period_ms = 1 + u16::from_le_bytes([data[1], data[2]]) as u64 * 10;
    let burst = 1 + data[3] as u64 % 20;
    let Ok(limit) = Limit::new("l", count, period_ms, burst) else {
        return;
    };
    let rl = RateLimiter::new(64);
    let start = 1_700_000_000_000i64;
    let mut now = start;
    let mut allowed = 0u64;
    let mut forward = true;
    for b in &data[4..] {
        let step = (*b as i64 & 0x7f) * 7;
        if b & 0x80 != 0 {
            now -= step * 50; // a clock stepping back
            forward = false;
        } else {
            now += step;
        }
        if rl.check("k", std::slice::from_ref(&limit), now).is_ok_and(|d| d.allowed) {
            allowed += 1;
        }
    }
    if forward {
        let elapsed = (now - start) as u64;
        let bound = burst + (elapsed * count).div_ceil(period_ms) + 1;
        assert!(allowed <= bound, "{allowed} > {bound}");
    }
});
