//! Rate limits: in-process or Redis limiters, and the manager's store.

use super::*;

/// A rate limiter (opaque): GCRA buckets per key and named limit, in this
/// process (`itk_ratelimiter_new`: not shared across processes) or on a
/// Redis server (`itk_ratelimiter_open`: shared by every process naming
/// it). Free with `itk_ratelimiter_free`.
pub struct itk_ratelimiter {
    rl: irontoken::SharedLimiter,
}

/// An in-process limiter keeping about `max_buckets` buckets before
/// evicting full ones.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_new(
    max_buckets: usize,
    out: *mut *mut itk_ratelimiter,
) -> itk_status {
    guard(|| {
        let rl = irontoken::SharedLimiter::open(
            &irontoken::RateLimitStore::Local,
            max_buckets.max(1),
            std::time::Duration::from_secs(1),
            false,
        )?;
        give(out, itk_ratelimiter { rl })
    })
}

/// Where `itk_ratelimiter_open` keeps the buckets.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimiterOptions {
    store: Option<String>,
    #[serde(default)]
    fail_open: bool,
    timeout_ms: Option<u64>,
    max_buckets: Option<usize>,
}

/// A limiter from `options_json`: `{"store": "local" | "redis://...",
/// "fail_open": false, "timeout_ms": 1000, "max_buckets": 1000000}` (every
/// field optional). With Redis, a check that cannot reach the server is
/// `ITK_STORAGE` within `timeout_ms`, or allowed when `fail_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_open(
    options_json: *const c_char,
    out: *mut *mut itk_ratelimiter,
) -> itk_status {
    guard(|| {
        // SAFETY: C string per the contract.
        let o: LimiterOptions = unsafe { json_req(options_json, "options_json") }?;
        let store = irontoken::RateLimitStore::parse(o.store.as_deref().unwrap_or("local"))?;
        let rl = irontoken::SharedLimiter::open(
            &store,
            o.max_buckets.unwrap_or(1_000_000).max(1),
            std::time::Duration::from_millis(o.timeout_ms.unwrap_or(1000)),
            o.fail_open,
        )?;
        give(out, itk_ratelimiter { rl })
    })
}

/// Frees a limiter. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_free(rl: *mut itk_ratelimiter) {
    // SAFETY: `rl` is NULL or came from itk_ratelimiter_new, freed once.
    unsafe { release(rl) }
}

/// What the limiter's store failures cost so far: `*out_store_errors`
/// checks whose store failed, `*out_fail_open` requests let through
/// unchecked by `fail_open` (either may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_failures(
    rl: *const itk_ratelimiter,
    out_store_errors: *mut u64,
    out_fail_open: *mut u64,
) -> itk_status {
    guard(|| {
        let (errors, opened) = handle(rl, "limiter")?.rl.failures();
        // SAFETY: each out-param is NULL or points to a u64, per the contract.
        unsafe {
            if !out_store_errors.is_null() {
                *out_store_errors = errors;
            }
            if !out_fail_open.is_null() {
                *out_fail_open = opened;
            }
        }
        Ok(())
    })
}

/// Checks one request of `key` (1–512 bytes) against `limits_json` (an array of
/// `{"name", "count", "period_ms", "burst"}`) at `now_ms` (in-process
/// limiters; a Redis limiter uses the server's clock and ignores it),
/// all-or-nothing; counts it only if `consume` and allowed. Writes the decision
/// `{"allowed", "retry_after_ms", "limits": [{"name", "remaining", "reset_ms"}],
/// "degraded"}` to `*out_json` (may be NULL) and `allowed` to `*out_allowed`
/// (may be NULL). `degraded` is true when the store failed and `fail_open`
/// let the request through unchecked (remaining and reset unknown).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_check(
    rl: *const itk_ratelimiter,
    key: *const c_char,
    limits_json: *const c_char,
    now_ms: i64,
    consume: bool,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: the caller's pointers, passed on under the same contract.
    unsafe {
        itk_ratelimiter_check_cost(
            rl,
            key,
            limits_json,
            now_ms,
            consume,
            1,
            out_allowed,
            out_json,
        )
    }
}

/// `itk_ratelimiter_check` for a request of `cost` tokens: `cost` counts
/// against the limits whose `"unit"` is `"tokens"`, 1 against the others.
/// A cost other than 1 without such a limit, or above one's burst, is
/// `ITK_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn itk_ratelimiter_check_cost(
    rl: *const itk_ratelimiter,
    key: *const c_char,
    limits_json: *const c_char,
    now_ms: i64,
    consume: bool,
    cost: u64,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let rl = &handle(rl, "limiter")?.rl;
        // SAFETY: C strings per the contract.
        let (key, limits) = unsafe { key_and_limits(key, limits_json) }?;
        let now = rl.is_local().then_some(now_ms);
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) =
            rl.decide_into(key, &limits, now, consume, cost, &mut verdicts)?;
        let d = irontoken::ratelimit::Decision::from_verdicts(
            allowed,
            retry_after_ms,
            &limits,
            &verdicts,
        );
        let json = to_json(&d)?;
        if !out_allowed.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_allowed = d.allowed };
        }
        write_opt(out_json, || Ok(json))
    })
}

/// Checks one request of `key` against `limits_json` in the manager's
/// rate-limit store (option `rate_limit_store`: its database by default,
/// shared by every process), all-or-nothing; counts it only if `consume`
/// and allowed. Writes the decision as `itk_ratelimiter_check` does.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_rate_limit(
    m: *const itk_manager,
    key: *const c_char,
    limits_json: *const c_char,
    consume: bool,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: the caller's pointers, passed on under the same contract.
    unsafe { itk_rate_limit_cost(m, key, limits_json, consume, 1, out_allowed, out_json) }
}

/// `itk_rate_limit` for a request of `cost` tokens (see
/// `itk_ratelimiter_check_cost`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_rate_limit_cost(
    m: *const itk_manager,
    key: *const c_char,
    limits_json: *const c_char,
    consume: bool,
    cost: u64,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let read = unsafe { key_and_limits(key, limits_json) };
    json_answer(m, out_json, |tm| {
        let (key, limits) = read?;
        let d = tm.rate_limit_decide_cost(key, &limits, consume, cost)?;
        if !out_allowed.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_allowed = d.allowed };
        }
        Ok(d)
    })
}

/// Corrects the limits in tokens of `key` (those of `limits_json` whose
/// `"unit"` is `"tokens"`) once a request's actual count is known: its
/// check counted `estimated`, it used `actual`. An under-estimate can empty
/// a bucket, never overdraw it beyond one burst. `now_ms` as for checks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_ratelimiter_settle(
    rl: *const itk_ratelimiter,
    key: *const c_char,
    limits_json: *const c_char,
    estimated: u64,
    actual: u64,
    now_ms: i64,
) -> itk_status {
    guard(|| {
        let rl = &handle(rl, "limiter")?.rl;
        // SAFETY: C strings per the contract.
        let (key, limits) = unsafe { key_and_limits(key, limits_json) }?;
        let now = rl.is_local().then_some(now_ms);
        rl.settle(key, &limits, estimated, actual, now)
    })
}

/// `itk_ratelimiter_settle` in the manager's rate-limit store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_rate_limit_settle(
    m: *const itk_manager,
    key: *const c_char,
    limits_json: *const c_char,
    estimated: u64,
    actual: u64,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (key, limits) = unsafe { key_and_limits(key, limits_json) }?;
        tm.rate_limit_settle(key, &limits, estimated, actual)
    })
}

/// Corrects key `key_id`'s limits in tokens once a request's actual token
/// count is known: `itk_key_verify_with` with `"tokens": estimated` counted
/// `estimated`, the request used `actual`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_settle_tokens(
    m: *const itk_manager,
    key_id: *const c_char,
    estimated: u64,
    actual: u64,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let key_id = unsafe { arg(key_id, "key_id") }?;
        tm.settle_tokens(key_id, estimated, actual)
    })
}

// ---------------------------------------------------------------------------

/// The key and the parsed limits every check and settle takes.
///
/// # Safety
/// `key` and `limits_json` are NULL or NUL-terminated strings.
unsafe fn key_and_limits<'a>(
    key: *const c_char,
    limits_json: *const c_char,
) -> Result<(&'a str, Vec<irontoken::ratelimit::Limit>), Error> {
    // SAFETY: as the caller promised.
    let (key, limits) = unsafe { (arg(key, "key")?, arg(limits_json, "limits_json")?) };
    Ok((key, irontoken::ratelimit::Limit::list_from_json(limits)?))
}
