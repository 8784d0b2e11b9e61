//! `TokenManager`: the JS class over the core manager (opening, events,
//! metrics) and the libuv jobs of the `*Async` methods; its key, usage,
//! JWT and rate-limit methods are in keys.rs, usage.rs, jwt.rs and ratelimit.rs.

use super::*;

/// Work run on the libuv thread pool (the `*Async` methods): the JS thread
/// never waits for a commit's fsync or an RSA key generation. A rejection
/// is an `Error` with the stable `code` (and `claim`) as data, made on the
/// JS thread from the core error the work returned.
pub struct Job<T> {
    pub(crate) work: Option<Box<dyn FnOnce() -> std::result::Result<T, CoreError> + Send>>,
    /// The core error of a failed run, for `reject`.
    failed: Option<CoreError>,
}

impl<T> Job<T> {
    pub(crate) fn new(
        f: impl FnOnce() -> std::result::Result<T, CoreError> + Send + 'static,
    ) -> AsyncTask<Self>
    where
        T: Send + ToNapiValue + TypeName + 'static,
    {
        AsyncTask::new(Job {
            work: Some(Box::new(f)),
            failed: None,
        })
    }
}

impl<T: Send + ToNapiValue + TypeName + 'static> Task for Job<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        let f = self
            .work
            .take()
            .ok_or_else(|| napi::Error::new(Status::GenericFailure, "INTERNAL: job ran twice"))?;
        // A panic on the pool thread becomes an INTERNAL rejection, never an abort.
        irontoken::catch_panic(f).map_err(|e| {
            let out = napi::Error::new(Status::GenericFailure, e.to_string());
            self.failed = Some(e);
            out
        })
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<T> {
        Err(match self.failed.take() {
            Some(e) => core_js_error(&env, &e),
            None => err,
        })
    }
}

/// The entry object, opened on a SQLite path or ":memory:".
#[napi]
pub struct TokenManager {
    pub(crate) inner: Mutex<Option<Arc<Core>>>,
}

impl TokenManager {
    pub(crate) fn core(&self) -> Result<Arc<Core>, Code> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| invalid("the TokenManager is closed"))
    }
}

#[napi]
impl TokenManager {
    /// Opens (creating and migrating if needed) the database at `path`.
    #[napi(catch_unwind, constructor)]
    pub fn new(path: String, options: Option<OpenOptions>) -> Result<Self, Code> {
        let settings = match options {
            None => OpenSettings::default(),
            Some(o) => OpenSettings {
                durability: o.durability,
                busy_timeout_ms: uint(o.busy_timeout_ms, "busyTimeoutMs")?,
                flush_interval_ms: uint(o.flush_interval_ms, "flushIntervalMs")?,
                flush_threshold: uint(o.flush_threshold, "flushThreshold")?,
                manual_clock_start: int(o.manual_clock_start, "manualClockStart")?,
                master_key: o.master_key,
                rsa_key_bits: uint(o.rsa_key_bits, "rsaKeyBits")?,
                create: o.create,
                key_cache_size: uint(o.key_cache_size, "keyCacheSize")?,
                page_cache_mib: uint(o.page_cache_mib, "pageCacheMib")?,
                mmap_mib: uint(o.mmap_mib, "mmapMib")?,
                rate_limit_store: o.rate_limit_store,
                rate_limit_fail_open: o.rate_limit_fail_open,
                strict: o.strict,
                storage_timeout_ms: uint(o.storage_timeout_ms, "storageTimeoutMs")?,
                max_staleness_ms: uint(o.max_staleness_ms, "maxStalenessMs")?,
                verify_fail_open: o.verify_fail_open,
                default_rotation_period: int(o.default_rotation_period, "defaultRotationPeriod")?,
                rate_limit_timeout_ms: uint(o.rate_limit_timeout_ms, "rateLimitTimeoutMs")?,
                alerts: o.alerts.map(|a| req(a, "alerts")).transpose()?,
            },
        };
        let core = Core::open_with(&path, settings.into_options().map_err(err)?).map_err(err)?;
        Ok(TokenManager {
            inner: Mutex::new(Some(Arc::new(core))),
        })
    }

    /// `flush` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn flush_async(&self) -> Result<AsyncTask<Job<()>>, Code> {
        let tm = self.core()?;
        Ok(Job::new(move || tm.flush()))
    }

    /// Takes up to `max` (default 100) pending signals, oldest first.
    #[napi(catch_unwind, ts_return_type = "IronTokenEvent[]")]
    pub fn drain_events(&self, max: Option<f64>) -> Result<Json, Code> {
        let max = uint::<usize>(max, "max")?.unwrap_or(100);
        ans(Ok(self.core()?.drain_events(max)))
    }

    /// Counters in the Prometheus text exposition format.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> Result<String, Code> {
        Ok(self.core()?.metrics())
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    #[napi(catch_unwind)]
    pub fn flush(&self) -> Result<(), Code> {
        self.core()?.flush().map_err(err)
    }

    /// Moves a manual clock (opened with `manualClockStart`); returns the new time.
    #[napi(catch_unwind)]
    pub fn advance_clock(&self, seconds: f64) -> Result<i64, Code> {
        let s = int(Some(seconds), "seconds")?.unwrap_or(0);
        self.core()?.advance_clock(s).map_err(err)
    }

    /// The manager's current time (Unix seconds).
    #[napi(catch_unwind)]
    pub fn now(&self) -> Result<i64, Code> {
        Ok(self.core()?.now())
    }

    /// Flushes and closes; later calls throw.
    #[napi(catch_unwind)]
    pub fn close(&self) -> Result<(), Code> {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(tm) => tm.flush().map_err(err),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions, usage, quotas, budgets and signals take and give plain objects:
// camelCase keys in JS, the core's snake_case field names inside. The keys of
// `metadata` and `detail` objects are the caller's data and stay as they are.
