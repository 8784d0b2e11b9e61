//! Rate limits: the manager's store (`rateLimit`) and the `RateLimiter`
//! engine (in process, Redis, or a manager).

use super::*;
use irontoken::ratelimit::CheckedLimits;
use std::borrow::Cow;

#[napi]
impl TokenManager {
    /// Counts one request of `key` against `limits`, all-or-nothing, in the
    /// manager's rate-limit store (option `rateLimitStore`); `{ peek: true }`
    /// counts nothing.
    #[napi(catch_unwind)]
    pub fn rate_limit(
        &self,
        key: String,
        limits: Value,
        options: Option<RateLimitOptions>,
    ) -> Result<RateDecision, Code> {
        let limits = limits_of(limits, "limits")?;
        let (consume, cost) = RateLimitOptions::read(options)?;
        let d = self
            .core()?
            .rate_limit_decide_cost(&key, &limits, consume, cost)
            .map_err(err)?;
        Ok(d.into())
    }

    /// Corrects key `keyId`'s limits in tokens once a request's actual
    /// token count is known: `verifyKeyWith(key, { tokens: estimated })`
    /// counted `estimated`, the request used `actual`.
    #[napi(catch_unwind)]
    pub fn settle_tokens(&self, key_id: String, estimated: f64, actual: f64) -> Result<(), Code> {
        let (estimated, actual) = token_counts(estimated, actual)?;
        self.core()?
            .settle_tokens(&key_id, estimated, actual)
            .map_err(err)
    }

    /// `settleTokens` off the JS thread (a Redis or database round trip).
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn settle_tokens_async(
        &self,
        key_id: String,
        estimated: f64,
        actual: f64,
    ) -> Result<AsyncTask<Job<()>>, Code> {
        let (estimated, actual) = token_counts(estimated, actual)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.settle_tokens(&key_id, estimated, actual)
        }))
    }

    /// `rateLimit` off the JS thread (a Redis or database round trip).
    #[napi(catch_unwind, ts_return_type = "Promise<RateDecision>")]
    pub fn rate_limit_async(
        &self,
        key: String,
        limits: Value,
        options: Option<RateLimitOptions>,
    ) -> Result<AsyncTask<Job<RateDecision>>, Code> {
        let limits = limits_of(limits, "limits")?;
        let (consume, cost) = RateLimitOptions::read(options)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.rate_limit_decide_cost(&key, &limits, consume, cost)
                .map(Into::into)
        }))
    }
}

/// The estimated and actual token counts of a settlement, as integers.
fn token_counts(estimated: f64, actual: f64) -> Result<(u64, u64), Code> {
    let e = uint::<u64>(Some(estimated), "estimated")?.unwrap_or(0);
    let a = uint::<u64>(Some(actual), "actual")?.unwrap_or(0);
    Ok((e, a))
}

/// In-process rate limiter (GCRA buckets per key and named limit) with its
/// default limits. index.js wraps it as `RateLimiter`; the calls take it as
/// an `External` (a class method pays napi-rs's borrow tracking, about
/// 150 ns a call) and build each result from plain numbers.
pub struct Limiter {
    inner: LimiterBackend,
    /// Limits given to the constructor, parsed and checked once.
    limits: Option<CheckedLimits>,
    /// The answers of `rateLimiterChecker`'s function (f64 bits), which JS reads through a
    /// Float64Array over the same memory (`rateLimiterBuffer`): shared, so it
    /// lives until both the limiter and the array are gone.
    out: Arc<[std::sync::atomic::AtomicU64]>,
}

/// Where a `RateLimiter` keeps its buckets.
enum LimiterBackend {
    /// In this process or on Redis.
    Shared(irontoken::SharedLimiter),
    /// In a manager's rate-limit store.
    Manager(Arc<Core>),
}

impl LimiterBackend {
    fn decide_into(
        &self,
        key: &str,
        limits: &CheckedLimits,
        now_ms: Option<i64>,
        consume: bool,
        cost: u64,
        out: &mut Vec<irontoken::ratelimit::Verdict>,
    ) -> std::result::Result<(bool, u64), CoreError> {
        match self {
            LimiterBackend::Shared(s) => s.decide_with(key, limits, now_ms, consume, cost, out),
            LimiterBackend::Manager(_) if now_ms.is_some() => Err(no_clock()),
            LimiterBackend::Manager(tm) => tm.rate_limit_with(key, limits, consume, cost, out),
        }
    }

    fn settle(
        &self,
        key: &str,
        limits: &CheckedLimits,
        estimated: u64,
        actual: u64,
        now_ms: Option<i64>,
    ) -> std::result::Result<(), CoreError> {
        match self {
            LimiterBackend::Shared(s) => s.settle(key, limits, estimated, actual, now_ms),
            LimiterBackend::Manager(_) if now_ms.is_some() => Err(no_clock()),
            LimiterBackend::Manager(tm) => tm.rate_limit_settle(key, limits, estimated, actual),
        }
    }
}

/// A manager's limits run on its clock.
fn no_clock() -> CoreError {
    CoreError::invalid("nowMs applies to in-process limits only: the manager uses its clock")
}

/// Where `rateLimiterNew` keeps the buckets.
#[napi(object)]
pub struct LimiterOptions {
    /// "local" (default) or a redis:// URL.
    pub store: Option<String>,
    /// Allow requests while Redis fails (default false: STORAGE).
    pub fail_open: Option<bool>,
    /// Milliseconds each Redis call may take (default 1000).
    pub timeout_ms: Option<f64>,
}

/// A limiter keeping about `maxBuckets` buckets before evicting full ones,
/// with default `limits` (camelCase or snake_case fields), in this process,
/// on Redis (`options.store`) or in `manager`'s rate-limit store.
#[napi(catch_unwind, ts_return_type = "ExternalObject<'RateLimiter'>")]
pub fn rate_limiter_new(
    max_buckets: Option<f64>,
    limits: Option<Value>,
    options: Option<LimiterOptions>,
    manager: Option<&TokenManager>,
) -> Result<External<Arc<Limiter>>, Code> {
    let n = int(max_buckets, "maxBuckets")?.unwrap_or(1_000_000);
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid("maxBuckets must be >= 1"))?;
    let limits = match limits {
        None => None,
        Some(l) => Some(CheckedLimits::new(limits_of(l, "limits")?).map_err(err)?),
    };
    let store = options.as_ref().and_then(|o| o.store.clone());
    let inner = match (manager, store) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give store or manager, not both (a manager's limits use its rateLimitStore)",
            ));
        }
        (Some(tm), None) => LimiterBackend::Manager(tm.core()?),
        (None, store) => {
            let store = irontoken::RateLimitStore::parse(store.as_deref().unwrap_or("local"))
                .map_err(err)?;
            let timeout_ms =
                int(options.as_ref().and_then(|o| o.timeout_ms), "timeoutMs")?.unwrap_or(1000);
            let timeout_ms =
                u64::try_from(timeout_ms).map_err(|_| invalid("timeoutMs must be > 0"))?;
            let fail_open = options.as_ref().and_then(|o| o.fail_open).unwrap_or(false);
            LimiterBackend::Shared(
                irontoken::SharedLimiter::open(
                    &store,
                    n,
                    std::time::Duration::from_millis(timeout_ms),
                    fail_open,
                )
                .map_err(err)?,
            )
        }
    };
    let slots = 1 + 2 * limits.as_ref().map_or(0, |l| l.len());
    Ok(External::new(Arc::new(Limiter {
        inner,
        limits,
        out: (0..slots)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    })))
}

/// The Float64Array `rateLimiterChecker`'s function writes its answers into: retryAfterMs,
/// then remaining and resetMs of each of the limiter's limits.
#[napi(catch_unwind)]
pub fn rate_limiter_buffer(rl: &External<Arc<Limiter>>) -> Float64Array {
    let shared = rl.out.clone();
    let ptr = shared.as_ptr() as *mut f64;
    let len = shared.len();
    // SAFETY: `AtomicU64` has the size and alignment of `f64`; the memory stays
    // alive until the array's finalizer drops its share of the Arc; JS reads it
    // on the thread that writes it (a synchronous call), never concurrently.
    unsafe { Float64Array::with_external_data(ptr, len, move |_, _| drop(shared)) }
}

impl Limiter {
    /// Counts (`consume`) or peeks one request of `key` against the
    /// limiter's limits, writes the answer into `out` and returns whether it
    /// is allowed.
    fn decide_own(&self, key: &str, consume: bool) -> std::result::Result<bool, CoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(limits) = &self.limits else {
            return Err(CoreError::invalid(
                "no limits: give them to new RateLimiter({ limits }) or to check()",
            ));
        };
        thread_local! {
            /// The verdicts of the last check on this thread (no allocation per call).
            static VERDICTS: std::cell::RefCell<Vec<irontoken::ratelimit::Verdict>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let put = |i: usize, v: f64| self.out[i].store(v.to_bits(), Relaxed);
        VERDICTS.with_borrow_mut(|verdicts| {
            let (allowed, retry_after_ms) = self
                .inner
                .decide_into(key, limits, None, consume, 1, verdicts)?;
            write_answer(retry_after_ms, verdicts, put);
            Ok(allowed)
        })
    }
}

/// What a checker function holds: its limiter and whether it counts.
struct Bound {
    limiter: Arc<Limiter>,
    consume: bool,
}

/// `check(key)` (`consume`) or `peek(key)` as a native function bound to
/// this limiter, taking the key alone: the hot path of `RateLimiter.check`.
/// It is a plain Node-API callback: napi-rs's argument machinery (borrow
/// scopes, tagged externals, a `String` per call) cost more than the check.
#[napi(catch_unwind, ts_return_type = "(key: string) => boolean")]
pub fn rate_limiter_checker(
    env: Env,
    rl: &External<Arc<Limiter>>,
    consume: bool,
) -> Result<Unknown<'static>, Code> {
    use napi::sys;
    let share = Box::into_raw(Box::new(Bound {
        limiter: Arc::clone(rl),
        consume,
    }))
    .cast::<std::ffi::c_void>();
    let mut f = std::ptr::null_mut();
    let name = if consume { "check" } else { "peek" };
    // SAFETY: `share` is owned by the function, given back by `drop_share`
    // when the function is collected (or right here if it cannot be made);
    // `check_callback` only borrows it while the function is alive.
    unsafe {
        let made = sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(check_callback),
            share,
            &mut f,
        );
        if made != sys::Status::napi_ok
            || sys::napi_add_finalizer(
                env.raw(),
                f,
                share,
                Some(drop_share),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ) != sys::Status::napi_ok
        {
            drop(Box::from_raw(share.cast::<Bound>()));
            return Err(napi::Error::new(
                Code("INTERNAL"),
                "INTERNAL: could not make the check function".to_string(),
            ));
        }
        Unknown::from_napi_value(env.raw(), f)
            .map_err(|e| napi::Error::new(Code("INTERNAL"), e.reason))
    }
}

/// Gives back what a checker function held.
unsafe extern "C" fn drop_share(
    _env: napi::sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    // SAFETY: `data` is the `Bound` `rate_limiter_checker` made, dropped once.
    drop(unsafe { Box::from_raw(data.cast::<Bound>()) });
}

/// Longest rate-limit key read by `check_callback`, in bytes; a longer key
/// is refused (the core's bound is 512), so a stack buffer one byte over it
/// tells a longer key by its length.
const KEY_BUFFER: usize = irontoken::ratelimit::MAX_KEY_LEN + 8;

/// The checker's Node-API callback: `fn(key)`, its [`Bound`] in `data`.
unsafe extern "C" fn check_callback(
    env: napi::sys::napi_env,
    info: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
    use napi::sys;
    let mut argc = 1usize;
    let mut argv = [std::ptr::null_mut(); 1];
    let mut data = std::ptr::null_mut();
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); KEY_BUFFER];
    let mut len = 0usize;
    // SAFETY: the arguments are those Node-API documents; `data` is the
    // `Bound` `rate_limiter_checker` attached, alive while the function is.
    let answer = unsafe {
        if sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut data,
        ) != sys::Status::napi_ok
            || data.is_null()
        {
            return throw(env, "INTERNAL", "INTERNAL: no limiter");
        }
        if sys::napi_get_value_string_utf8(
            env,
            argv[0],
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut len,
        ) != sys::Status::napi_ok
        {
            return throw(
                env,
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT: a rate-limit key must be a string",
            );
        }
        let bound = &*(data.cast::<Bound>());
        // V8 writes whole characters as UTF-8; a key cut at the buffer's end is
        // longer than any key allowed, and refused as such by the check.
        // SAFETY: Node-API wrote `len` bytes (at most the buffer less its NUL).
        let written =
            std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len.min(KEY_BUFFER - 1));
        let key = String::from_utf8_lossy(written);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bound.limiter.decide_own(&key, bound.consume)
        }))
    };
    match answer {
        Ok(Ok(allowed)) => {
            let mut v = std::ptr::null_mut();
            // SAFETY: a boolean of this env.
            unsafe { sys::napi_get_boolean(env, allowed, &mut v) };
            v
        }
        Ok(Err(e)) => {
            let msg = e.to_string();
            // SAFETY: throwing on this env's thread.
            unsafe { throw(env, e.code(), &msg) }
        }
        // SAFETY: as above.
        Err(_) => unsafe { throw(env, "INTERNAL", "INTERNAL: the rate limiter panicked") },
    }
}

/// Throws an Error with `code` and `msg`; returns no value.
unsafe fn throw(env: napi::sys::napi_env, code: &str, msg: &str) -> napi::sys::napi_value {
    let code = std::ffi::CString::new(code).unwrap_or_default();
    let msg = std::ffi::CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: NUL-terminated strings; `env` is the calling thread's.
    unsafe { napi::sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr()) };
    std::ptr::null_mut()
}

/// Writes a rate-limit answer as the JS side reads it: retryAfterMs at 0
/// (-1: allowed unchecked by fail-open, `degraded`), then remaining and
/// resetMs of each limit (clamped to safe integers).
fn write_answer(
    retry_after_ms: u64,
    verdicts: &[irontoken::ratelimit::Verdict],
    mut put: impl FnMut(usize, f64),
) {
    let safe = |v: u64| v.min(MAX_SAFE_INTEGER) as f64;
    let degraded = verdicts.iter().any(|v| v.degraded);
    put(0, if degraded { -1.0 } else { safe(retry_after_ms) });
    for (i, v) in verdicts.iter().enumerate() {
        put(1 + 2 * i, safe(v.remaining));
        put(2 + 2 * i, safe(v.reset_ms));
    }
}

/// Counts (`consume`) or peeks one request of `key` against `limits`
/// (default: the limiter's), all-or-nothing. Writes `retryAfterMs` to
/// `out[0]`, then `remaining` and `resetMs` of each limit; returns whether
/// the request is allowed.
#[napi(catch_unwind)]
pub fn rate_limiter_decide(
    rl: &External<Arc<Limiter>>,
    key: String,
    consume: bool,
    now_ms: Option<f64>,
    mut out: Float64ArraySlice<'_>,
    limits: Option<Value>,
    cost: Option<f64>,
) -> Result<bool, Code> {
    let limits = rl.limits_or(limits)?;
    if out.len() < 1 + 2 * limits.len() {
        return Err(invalid("result buffer too small"));
    }
    let now = int(now_ms, "nowMs")?;
    let cost = uint::<u64>(cost, "cost")?.unwrap_or(1);
    let mut verdicts = Vec::with_capacity(limits.len());
    let (allowed, retry_after_ms) = rl
        .inner
        .decide_into(&key, &limits, now, consume, cost, &mut verdicts)
        .map_err(err)?;
    // SAFETY: a synchronous call on the JS thread: nothing else touches the
    // buffer while this runs.
    let out = unsafe { out.as_mut() };
    write_answer(retry_after_ms, &verdicts, |i, v| out[i] = v);
    Ok(allowed)
}

/// Corrects the limits in tokens of `key` (default: the limiter's limits)
/// once a request's actual token count is known: its check counted
/// `estimated`, it used `actual`.
#[napi(catch_unwind)]
pub fn rate_limiter_settle(
    rl: &External<Arc<Limiter>>,
    key: String,
    estimated: f64,
    actual: f64,
    now_ms: Option<f64>,
    limits: Option<Value>,
) -> Result<(), Code> {
    let limits = rl.limits_or(limits)?;
    let (estimated, actual) = token_counts(estimated, actual)?;
    let now = int(now_ms, "nowMs")?;
    rl.inner
        .settle(&key, &limits, estimated, actual, now)
        .map_err(err)
}

impl Limiter {
    /// The limits given to a call, else the constructor's (borrowed).
    fn limits_or(&self, limits: Option<Value>) -> Result<Cow<'_, CheckedLimits>, Code> {
        match (limits, &self.limits) {
            (Some(l), _) => CheckedLimits::new(limits_of(l, "limits")?)
                .map(Cow::Owned)
                .map_err(err),
            (None, Some(l)) => Ok(Cow::Borrowed(l)),
            (None, None) => Err(invalid(
                "no limits: give them to new RateLimiter({ limits }) or to check()",
            )),
        }
    }
}

/// What the store's failures cost so far: checks whose store failed, and
/// requests fail-open let through unchecked (a manager's: its counters).
#[napi(object)]
pub struct LimiterFailures {
    pub store_errors: f64,
    pub fail_open: f64,
}

/// The failures of a limiter's store so far.
#[napi(catch_unwind)]
pub fn rate_limiter_failures(rl: &External<Arc<Limiter>>) -> LimiterFailures {
    let (errors, opened) = match &rl.inner {
        LimiterBackend::Shared(s) => s.failures(),
        LimiterBackend::Manager(tm) => tm.rate_limit_failures(),
    };
    let safe = |v: u64| v.min(MAX_SAFE_INTEGER) as f64;
    LimiterFailures {
        store_errors: safe(errors),
        fail_open: safe(opened),
    }
}

/// Number of buckets held in this process (0 for Redis or a manager).
#[napi(catch_unwind)]
pub fn rate_limiter_size(rl: &External<Arc<Limiter>>) -> u32 {
    match &rl.inner {
        LimiterBackend::Shared(s) => s.len().min(u32::MAX as usize) as u32,
        LimiterBackend::Manager(_) => 0,
    }
}

/// Options of `rateLimit`.
#[napi(object)]
pub struct RateLimitOptions {
    /// Answer without counting the request.
    pub peek: Option<bool>,
    /// The request's tokens, counted against the limits in tokens (default 1).
    pub cost: Option<f64>,
}

impl RateLimitOptions {
    /// (consume, cost) of the options.
    fn read(o: Option<RateLimitOptions>) -> Result<(bool, u64), Code> {
        let consume = !o.as_ref().and_then(|o| o.peek).unwrap_or(false);
        let cost = uint::<u64>(o.and_then(|o| o.cost), "cost")?.unwrap_or(1);
        Ok((consume, cost))
    }
}

/// One limit's state after a rate-limit check.
#[napi(object)]
pub struct RateLimitState {
    pub name: String,
    /// Requests still allowed right now.
    pub remaining: f64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: f64,
}

/// The answer of `rateLimit`.
#[napi(object)]
pub struct RateDecision {
    /// True if the request is within every limit (and was counted, unless peeked).
    pub allowed: bool,
    /// Milliseconds to wait before the request would be allowed (0 if allowed).
    pub retry_after_ms: f64,
    /// Per limit, in the order given.
    pub limits: Vec<RateLimitState>,
    /// True when the store failed and fail-open let the request through
    /// unchecked: remaining and resetMs are unknown (0).
    pub degraded: bool,
}

impl From<irontoken::ratelimit::Decision> for RateDecision {
    fn from(d: irontoken::ratelimit::Decision) -> Self {
        let safe = |v: u64| v.min(MAX_SAFE_INTEGER) as f64;
        RateDecision {
            allowed: d.allowed,
            retry_after_ms: safe(d.retry_after_ms),
            limits: d
                .limits
                .into_iter()
                .map(|l| RateLimitState {
                    name: l.name,
                    remaining: safe(l.remaining),
                    reset_ms: safe(l.reset_ms),
                })
                .collect(),
            degraded: d.degraded,
        }
    }
}
