//! Rate limits: the manager's store (`rate_limit`) and the `RateLimiter`
//! class (in process, Redis, or a manager) with its `RateDecision`.

use super::*;
use irontoken::ratelimit::CheckedLimits;

#[pymethods]
impl TokenManager {
    /// Counts one request of `key` against `limits` (list of {"name",
    /// "count", "period_ms", "burst"}), all-or-nothing, in the manager's
    /// rate-limit store (option `rate_limit_store`); `peek=True` counts nothing.
    #[pyo3(signature = (key, limits, *, peek=false, cost=1))]
    fn rate_limit(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Bound<'_, PyAny>,
        peek: bool,
        #[pyo3(from_py_with = int::<u64>)] cost: u64,
    ) -> PyResult<RateDecision> {
        let rl = RateLimiter {
            backend: Limiter::Manager(self.core(py)?),
            limits: None,
        };
        rl.decide(py, key, Some(&limits), None, !peek, cost)
    }

    /// Corrects key `key_id`'s limits in tokens once a request's actual
    /// token count is known: `verify_key_with(tokens=estimated)` counted
    /// `estimated`, the request used `actual`.
    fn settle_tokens(
        &self,
        py: Python<'_>,
        key_id: &str,
        #[pyo3(from_py_with = int::<u64>)] estimated: u64,
        #[pyo3(from_py_with = int::<u64>)] actual: u64,
    ) -> PyResult<()> {
        let tm = self.core(py)?;
        call(py, || tm.settle_tokens(key_id, estimated, actual))
    }
}

/// Rate limiter: GCRA buckets per key and named limit, in this process
/// (default), on a Redis server, or in a manager's store. Limits given to
/// the constructor are parsed once and used by `check(key)`.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct RateLimiter {
    backend: Limiter,
    limits: Option<CheckedLimits>,
}

/// Where a `RateLimiter` keeps its buckets.
pub(crate) enum Limiter {
    Shared(irontoken::SharedLimiter),
    Manager(Arc<Core>),
}

impl RateLimiter {
    fn decide(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Option<&Bound<'_, PyAny>>,
        now_ms: Option<i64>,
        consume: bool,
        cost: u64,
    ) -> PyResult<RateDecision> {
        let limits = self.limits_or(py, limits)?;
        if let (Limiter::Shared(s), true, 1) = (&self.backend, consume, limits.len())
            && let Some(local) = s.local()
        {
            // One limit in process: checked without any allocation.
            let now = now_ms.unwrap_or_else(irontoken::SystemClock::now_ms);
            let v = local
                .check_single(key, &limits, cost, now)
                .map_err(|e| to_py(py, e))?;
            return Ok(RateDecision {
                allowed: v.allowed,
                retry_after_ms: v.retry_after_ms,
                limits: limits.shared(),
                first: v,
                rest: Vec::new(),
            });
        }
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) = match &self.backend {
            Limiter::Shared(s) if s.is_local() => s
                .decide_with(key, &limits, now_ms, consume, cost, &mut verdicts)
                .map_err(|e| to_py(py, e))?,
            // A round trip to Redis or the database: without the GIL.
            Limiter::Shared(s) => call(py, || {
                s.decide_with(key, &limits, now_ms, consume, cost, &mut verdicts)
            })?,
            Limiter::Manager(tm) => {
                no_clock(py, now_ms)?;
                call(py, || {
                    tm.rate_limit_with(key, &limits, consume, cost, &mut verdicts)
                })?
            }
        };
        let first = verdicts.remove(0);
        Ok(RateDecision {
            allowed,
            retry_after_ms,
            limits: limits.shared(),
            first,
            rest: verdicts,
        })
    }

    /// The limits given to a call, else the constructor's.
    fn limits_or(
        &self,
        py: Python<'_>,
        limits: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<CheckedLimits> {
        match (limits, &self.limits) {
            (Some(l), _) => CheckedLimits::new(limits_of(py, l)?).map_err(|e| to_py(py, e)),
            (None, Some(l)) => Ok(l.clone()),
            (None, None) => Err(to_py(
                py,
                Error::invalid("no limits: give them to RateLimiter(limits=...) or to check()"),
            )),
        }
    }
}

/// A manager's limits run on its clock: `now_ms` is refused.
fn no_clock(py: Python<'_>, now_ms: Option<i64>) -> PyResult<()> {
    match now_ms {
        Some(_) => Err(to_py(
            py,
            Error::invalid("now_ms applies to in-process limits only: the manager uses its clock"),
        )),
        None => Ok(()),
    }
}

/// Limits given as a list of dicts (`name`, `count`, `period_ms`, `burst`),
/// read straight into core's `Limit` (its serde rules: `burst` defaults to
/// `count`, unknown fields refused) without a JSON round trip. Bools are
/// refused where a count is expected, as for every other int argument.
pub(crate) fn limits_of(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
) -> PyResult<Vec<irontoken::ratelimit::Limit>> {
    let bad = |what: String| to_py(py, Error::invalid(format!("limits: {what}")));
    if let Ok(list) = v.try_iter() {
        for item in list {
            let item = item?;
            if let Ok(d) = item.cast::<PyDict>() {
                for (_, value) in d.iter() {
                    if value.is_instance_of::<pyo3::types::PyBool>() {
                        return Err(bad("counts must be ints, not bools".into()));
                    }
                }
            }
        }
    }
    pythonize::depythonize(v).map_err(|e| bad(e.to_string()))
}

#[pymethods]
impl RateLimiter {
    #[new]
    #[pyo3(signature = (limits=None, max_buckets=1_000_000, *, store=None, fail_open=false, timeout_ms=1000, manager=None))]
    fn new(
        py: Python<'_>,
        limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = int::<usize>)] max_buckets: usize,
        store: Option<String>,
        fail_open: bool,
        #[pyo3(from_py_with = int::<u64>)] timeout_ms: u64,
        manager: Option<PyRef<'_, TokenManager>>,
    ) -> PyResult<Self> {
        let limits = match limits {
            None => None,
            Some(l) => Some(CheckedLimits::new(limits_of(py, &l)?).map_err(|e| to_py(py, e))?),
        };
        let backend = match (manager, store) {
            (Some(_), Some(_)) => {
                return Err(to_py(
                    py,
                    Error::invalid(
                        "give store or manager, not both (a manager's limits use its rate_limit_store)",
                    ),
                ));
            }
            (Some(tm), None) => Limiter::Manager(tm.core(py)?),
            (None, store) => {
                let store = irontoken::RateLimitStore::parse(store.as_deref().unwrap_or("local"))
                    .map_err(|e| to_py(py, e))?;
                let timeout = std::time::Duration::from_millis(timeout_ms);
                Limiter::Shared(
                    irontoken::SharedLimiter::open(&store, max_buckets, timeout, fail_open)
                        .map_err(|e| to_py(py, e))?,
                )
            }
        };
        Ok(RateLimiter { backend, limits })
    }

    /// Counts one request of `key` against every limit, all-or-nothing:
    /// `cost` (its tokens) against the limits in tokens, 1 against the
    /// others. `limits` (list of {"name", "count", "period_ms", "burst",
    /// "unit"}) defaults to the constructor's; `now_ms` to the system clock.
    #[pyo3(signature = (key, limits=None, now_ms=None, *, cost=1))]
    fn check(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] now_ms: Option<i64>,
        #[pyo3(from_py_with = int::<u64>)] cost: u64,
    ) -> PyResult<RateDecision> {
        self.decide(py, key, limits.as_ref(), now_ms, true, cost)
    }

    /// Answers as `check` would, without counting the request.
    #[pyo3(signature = (key, limits=None, now_ms=None, *, cost=1))]
    fn peek(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] now_ms: Option<i64>,
        #[pyo3(from_py_with = int::<u64>)] cost: u64,
    ) -> PyResult<RateDecision> {
        self.decide(py, key, limits.as_ref(), now_ms, false, cost)
    }

    /// Corrects the limits in tokens of `key` once a request's actual
    /// token count is known: its check counted `estimated`, it used
    /// `actual`. An under-estimate can empty a bucket, never overdraw it
    /// beyond one burst; limits counting requests are left as they are.
    #[pyo3(signature = (key, *, estimated, actual, limits=None, now_ms=None))]
    fn settle(
        &self,
        py: Python<'_>,
        key: &str,
        #[pyo3(from_py_with = int::<u64>)] estimated: u64,
        #[pyo3(from_py_with = int::<u64>)] actual: u64,
        limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] now_ms: Option<i64>,
    ) -> PyResult<()> {
        let limits = self.limits_or(py, limits.as_ref())?;
        match &self.backend {
            Limiter::Shared(s) if s.is_local() => s
                .settle(key, &limits, estimated, actual, now_ms)
                .map_err(|e| to_py(py, e)),
            Limiter::Shared(s) => call(py, || s.settle(key, &limits, estimated, actual, now_ms)),
            Limiter::Manager(tm) => {
                no_clock(py, now_ms)?;
                call(py, || tm.rate_limit_settle(key, &limits, estimated, actual))
            }
        }
    }

    /// What the store's failures cost so far: {"store_errors": checks whose
    /// store failed, "fail_open": requests fail-open let through unchecked}.
    /// A limiter on a manager: the manager's counters (see its metrics).
    #[getter]
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let (errors, opened) = match &self.backend {
            Limiter::Shared(s) => s.failures(),
            Limiter::Manager(tm) => tm.rate_limit_failures(),
        };
        let d = pyo3::types::PyDict::new(py);
        d.set_item("store_errors", errors)?;
        d.set_item("fail_open", opened)?;
        Ok(d)
    }

    /// Number of buckets held in this process (0 for Redis or a manager).
    fn __len__(&self) -> usize {
        match &self.backend {
            Limiter::Shared(s) => s.len(),
            Limiter::Manager(_) => 0,
        }
    }
}

/// The answer of a rate-limit check: `allowed`, `retry_after_ms` and, per
/// limit, `remaining` and `reset_ms`. Truthy when allowed; also readable as
/// a mapping (`d["allowed"]`) like the dicts of earlier versions.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct RateDecision {
    allowed: bool,
    retry_after_ms: u64,
    limits: Arc<[irontoken::ratelimit::Limit]>,
    /// The first limit's answer (there is always one), then the others'.
    first: irontoken::ratelimit::Verdict,
    rest: Vec<irontoken::ratelimit::Verdict>,
}

impl RateDecision {
    fn verdicts(&self) -> impl Iterator<Item = &irontoken::ratelimit::Verdict> {
        std::iter::once(&self.first).chain(&self.rest)
    }
}

#[pymethods]
impl RateDecision {
    /// True if the request is within every limit (and, for `check`, was counted).
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }
    /// Milliseconds to wait before the request would be allowed (0 if allowed).
    #[getter]
    fn retry_after_ms(&self) -> u64 {
        self.retry_after_ms
    }
    /// True when the store failed and fail-open let the request through
    /// unchecked: the limits' `remaining` and `reset_ms` are unknown (0).
    #[getter]
    fn degraded(&self) -> bool {
        self.verdicts().any(|v| v.degraded)
    }
    /// Per limit, in order: {"name", "remaining", "reset_ms"}.
    #[getter]
    fn limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let items = self
            .limits
            .iter()
            .zip(self.verdicts())
            .map(|(l, v)| {
                let d = pyo3::types::PyDict::new(py);
                d.set_item("name", &l.name)?;
                d.set_item("remaining", v.remaining)?;
                d.set_item("reset_ms", v.reset_ms)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        pyo3::types::PyList::new(py, items)
    }
    fn __bool__(&self) -> bool {
        self.allowed
    }
    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match name {
            "allowed" => Ok(pyo3::types::PyBool::new(py, self.allowed)
                .to_owned()
                .into_any()),
            "retry_after_ms" => Ok(self.retry_after_ms.into_pyobject(py)?.into_any()),
            "limits" => Ok(self.limits(py)?.into_any()),
            "degraded" => Ok(pyo3::types::PyBool::new(py, self.degraded())
                .to_owned()
                .into_any()),
            _ => Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        }
    }
    /// The decision as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("allowed", self.allowed)?;
        d.set_item("retry_after_ms", self.retry_after_ms)?;
        d.set_item("limits", self.limits(py)?)?;
        d.set_item("degraded", self.degraded())?;
        Ok(d)
    }
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(o) = other.cast::<RateDecision>() {
            let o = o.get();
            return Ok(self.allowed == o.allowed
                && self.retry_after_ms == o.retry_after_ms
                && self.verdicts().eq(o.verdicts())
                && self
                    .limits
                    .iter()
                    .map(|l| &l.name)
                    .eq(o.limits.iter().map(|l| &l.name)));
        }
        // A dict of earlier versions (no "degraded") equals a checked answer.
        let mine = self.to_dict(py)?;
        if !self.degraded()
            && let Ok(d) = other.cast::<pyo3::types::PyDict>()
            && !d.contains("degraded")?
        {
            mine.del_item("degraded")?;
        }
        mine.eq(other)
    }
    fn __repr__(&self) -> String {
        format!(
            "RateDecision(allowed={}, retry_after_ms={}{})",
            if self.allowed { "True" } else { "False" },
            self.retry_after_ms,
            if self.degraded() {
                ", degraded=True"
            } else {
                ""
            }
        )
    }
}
