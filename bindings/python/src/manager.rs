//! `TokenManager`: the Python class over the core manager (opening, from_env,
//! events, metrics); its key, usage, JWT and rate-limit methods are in
//! keys.rs, usage.rs, jwt.rs and ratelimit.rs.

use super::*;

/// The entry object: opened on a SQLite path or ":memory:"; safe to share
/// across threads; several processes may open the same file.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct TokenManager {
    pub(crate) inner: Mutex<Option<Arc<Core>>>,
}

impl TokenManager {
    pub(crate) fn core(&self, py: Python<'_>) -> PyResult<Arc<Core>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.clone()
            .ok_or_else(|| to_py(py, Error::invalid("the TokenManager is closed")))
    }
}

#[pymethods]
impl TokenManager {
    #[new]
    #[pyo3(signature = (path, *, durability=None, busy_timeout_ms=None, flush_interval_ms=None, flush_threshold=None, manual_clock_start=None, master_key=None, rsa_key_bits=None, create=None, key_cache_size=None, page_cache_mib=None, mmap_mib=None, rate_limit_store=None, rate_limit_fail_open=None, rate_limit_timeout_ms=None, strict=None, default_rotation_period=None, storage_timeout_ms=None, max_staleness_ms=None, verify_fail_open=None, alerts=None))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        py: Python<'_>,
        path: String,
        durability: Option<String>,
        #[pyo3(from_py_with = opt_int::<u64>)] busy_timeout_ms: Option<u64>,
        #[pyo3(from_py_with = opt_int::<u64>)] flush_interval_ms: Option<u64>,
        #[pyo3(from_py_with = opt_int::<usize>)] flush_threshold: Option<usize>,
        #[pyo3(from_py_with = opt_int::<i64>)] manual_clock_start: Option<i64>,
        master_key: Option<String>,
        #[pyo3(from_py_with = opt_int::<usize>)] rsa_key_bits: Option<usize>,
        create: Option<bool>,
        #[pyo3(from_py_with = opt_int::<usize>)] key_cache_size: Option<usize>,
        #[pyo3(from_py_with = opt_int::<u32>)] page_cache_mib: Option<u32>,
        #[pyo3(from_py_with = opt_int::<u32>)] mmap_mib: Option<u32>,
        rate_limit_store: Option<String>,
        rate_limit_fail_open: Option<bool>,
        #[pyo3(from_py_with = opt_int::<u64>)] rate_limit_timeout_ms: Option<u64>,
        strict: Option<bool>,
        #[pyo3(from_py_with = opt_int::<i64>)] default_rotation_period: Option<i64>,
        #[pyo3(from_py_with = opt_int::<u64>)] storage_timeout_ms: Option<u64>,
        #[pyo3(from_py_with = opt_int::<u64>)] max_staleness_ms: Option<u64>,
        verify_fail_open: Option<bool>,
        alerts: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let alerts = alerts.map(|a| from_py(py, &a, "alerts")).transpose()?;
        let settings = OpenSettings {
            alerts,
            strict,
            storage_timeout_ms,
            max_staleness_ms,
            verify_fail_open,
            default_rotation_period,
            rate_limit_store,
            rate_limit_fail_open,
            rate_limit_timeout_ms,
            key_cache_size,
            page_cache_mib,
            mmap_mib,
            durability,
            busy_timeout_ms,
            flush_interval_ms,
            flush_threshold,
            manual_clock_start,
            master_key,
            rsa_key_bits,
            create,
        };
        let core = call(py, move || Core::open_with(&path, settings.into_options()?))?;
        Ok(TokenManager {
            inner: Mutex::new(Some(Arc::new(core))),
        })
    }

    /// Opens the database `IRONTOKEN_DB` names (a SQLite path or a
    /// postgresql:// URL); `IRONTOKEN_RATE_LIMIT_STORE` and
    /// `IRONTOKEN_STORAGE_TIMEOUT_MS` fill `rate_limit_store` and
    /// `storage_timeout_ms` when not given. `InvalidArgumentError` when
    /// `IRONTOKEN_DB` is not set.
    #[classmethod]
    #[pyo3(signature = (**options))]
    pub(crate) fn from_env<'py>(
        cls: &Bound<'py, PyType>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let kw = match options {
            Some(o) => o.copy()?,
            None => PyDict::new(py),
        };
        let given = |name: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
            Ok(kw.get_item(name)?.filter(|v| !v.is_none()))
        };
        let settings = irontoken::OpenSettings {
            rate_limit_store: given("rate_limit_store")?
                .map(|v| v.extract::<String>())
                .transpose()?,
            storage_timeout_ms: given("storage_timeout_ms")?
                .map(|v| opt_int::<u64>(&v))
                .transpose()?
                .flatten(),
            ..Default::default()
        };
        let (db, env) = settings.with_env().map_err(|e| to_py(py, e))?;
        if let Some(v) = env.rate_limit_store {
            kw.set_item("rate_limit_store", v)?;
        }
        if let Some(v) = env.storage_timeout_ms {
            kw.set_item("storage_timeout_ms", v)?;
        }
        cls.call((db,), Some(&kw))
    }

    /// Takes up to `max` pending signals (dicts), oldest first.
    #[pyo3(signature = (max=100))]
    pub(crate) fn drain_events<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = int::<usize>)] max: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        to_py_serialized(py, &tm.drain_events(max))
    }

    /// Counters in the Prometheus text exposition format.
    pub(crate) fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.core(py)?.metrics())
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    pub(crate) fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let tm = self.core(py)?;
        call(py, || tm.flush())
    }

    /// Moves a manual clock (opened with `manual_clock_start`); returns the new time.
    pub(crate) fn advance_clock(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = int::<i64>)] seconds: i64,
    ) -> PyResult<i64> {
        let tm = self.core(py)?;
        call(py, || tm.advance_clock(seconds))
    }

    /// The manager's current time (Unix seconds).
    pub(crate) fn now(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(self.core(py)?.now())
    }

    /// Flushes and closes; later calls raise. Calls already running finish first.
    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tm) = taken {
            call(py, move || {
                let r = tm.flush();
                drop(tm);
                r
            })?;
        }
        Ok(())
    }

    pub(crate) fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    pub(crate) fn __exit__(
        &self,
        py: Python<'_>,
        _args: &Bound<'_, pyo3::types::PyTuple>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    pub(crate) fn __repr__(&self) -> String {
        let open = self.inner.lock().map(|g| g.is_some()).unwrap_or(false);
        format!("TokenManager(open={})", if open { "True" } else { "False" })
    }
}
