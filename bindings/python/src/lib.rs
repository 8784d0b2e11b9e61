//! Python binding of irontoken (`irontoken._native`). Converts types, maps
//! errors to the exception classes of `irontoken.errors`, and releases the
//! GIL around every call into the core. No token semantics live here.

use irontoken::{
    AuditEvent, AuditFilter, CreatedKey as CoreCreated, Error, KeyFilter, KeyRecord as CoreRecord,
    KeyStatus, KeyUpdate, NewKey, OpenSettings, Page, RotateOptions, TokenManager as Core,
    Verification,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// Converts a core error into the matching `irontoken.errors` exception.
fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let module = py.import("irontoken.errors")?;
        let exc = module.call_method1("_from_native", (e.code(), e.message()))?;
        Ok(PyErr::from_value(exc))
    })();
    made.unwrap_or_else(|err| err)
}

/// Runs `f` without the GIL and converts its error.
fn call<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    // A panic becomes our InternalError (an Exception), never PyO3's
    // PanicException (a BaseException that `except Exception` misses).
    py.detach(|| irontoken::catch_panic(f))
        .map_err(|e| to_py(py, e))
}

/// An int argument as i64: bools are not numbers, floats are not ints, and
/// ints beyond 64 bits are `InvalidArgumentError` (never `OverflowError`).
fn py_int(ob: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = ob.py();
    if ob.is_instance_of::<pyo3::types::PyBool>() {
        return Err(to_py(py, Error::invalid("expected an int, got a bool")));
    }
    ob.extract::<i64>().map_err(|e| {
        let msg = if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) {
            "an int argument is out of range (it must fit in 64 bits)".to_string()
        } else {
            let t = ob
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            format!("expected an int, got {t}")
        };
        to_py(py, Error::invalid(msg))
    })
}

/// An int argument as `T` (`from_py_with = int::<T>`): [`py_int`], then
/// range-checked (e.g. a count that must not be negative).
fn int<T: TryFrom<i64>>(ob: &Bound<'_, PyAny>) -> PyResult<T> {
    let v = py_int(ob)?;
    T::try_from(v).map_err(|_| {
        to_py(
            ob.py(),
            Error::invalid(format!("{v} is out of range for this argument")),
        )
    })
}

/// [`int`] for an optional argument (`None` stays `None`).
fn opt_int<T: TryFrom<i64>>(ob: &Bound<'_, PyAny>) -> PyResult<Option<T>> {
    if ob.is_none() {
        Ok(None)
    } else {
        int(ob).map(Some)
    }
}

/// A Python mapping as a JSON object (through `json.dumps`).
fn to_object(py: Python<'_>, v: &Bound<'_, PyAny>, what: &str) -> PyResult<Map<String, Value>> {
    if !v.is_instance_of::<PyDict>() {
        return Err(to_py(py, Error::invalid(format!("{what} must be a dict"))));
    }
    from_py(py, v, what)
}

/// A string as Python's `repr` would show it (single quotes).
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn opt_q(s: Option<&str>) -> String {
    s.map_or_else(|| "None".to_string(), q)
}

/// The stored record of an API key (never the key itself).
#[pyclass(frozen, module = "irontoken._native")]
struct KeyRecord(CoreRecord);

impl KeyRecord {
    /// `repr()` of a record (also inside a VerifyResult's repr).
    fn repr_of(r: &CoreRecord) -> String {
        format!(
            "KeyRecord(id={}, display_prefix={}, owner={}, name={}, status={})",
            q(&r.id),
            q(&r.display_prefix),
            q(&r.owner),
            q(&r.name),
            q(r.status.as_str())
        )
    }
}

#[pymethods]
impl KeyRecord {
    /// Stable id (UUID).
    #[getter]
    fn id(&self) -> &str {
        &self.0.id
    }
    /// Key prefix, e.g. "itk".
    #[getter]
    fn prefix(&self) -> &str {
        &self.0.prefix
    }
    /// Prefix plus the first body characters.
    #[getter]
    fn display_prefix(&self) -> &str {
        &self.0.display_prefix
    }
    /// Owner of the key.
    #[getter]
    fn owner(&self) -> &str {
        &self.0.owner
    }
    /// Short name.
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    /// Description.
    #[getter]
    fn description(&self) -> &str {
        &self.0.description
    }
    /// Granted scopes.
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.0.scopes.clone()
    }
    /// Application metadata (a new dict each time).
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(to_py_dict(py, &self.0.metadata)?.into_any())
    }
    /// Creation time (Unix seconds).
    #[getter]
    fn created_at(&self) -> i64 {
        self.0.created_at
    }
    /// Last change (Unix seconds).
    #[getter]
    fn updated_at(&self) -> i64 {
        self.0.updated_at
    }
    /// Expiry (Unix seconds) or None.
    #[getter]
    fn expires_at(&self) -> Option<i64> {
        self.0.expires_at
    }
    /// Last successful verification (Unix seconds) or None.
    #[getter]
    fn last_used_at(&self) -> Option<i64> {
        self.0.last_used_at
    }
    /// Number of successful verifications.
    #[getter]
    fn usage_count(&self) -> u64 {
        self.0.usage_count
    }
    /// False while disabled.
    #[getter]
    fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Revocation time or None.
    #[getter]
    fn revoked_at(&self) -> Option<i64> {
        self.0.revoked_at
    }
    /// Revocation reason or None.
    #[getter]
    fn revoked_reason(&self) -> Option<&str> {
        self.0.revoked_reason.as_deref()
    }
    /// 1 + number of rotations.
    #[getter]
    fn version(&self) -> u32 {
        self.0.version
    }
    /// Id of the key this one replaced.
    #[getter]
    fn rotated_from(&self) -> Option<&str> {
        self.0.rotated_from.as_deref()
    }
    /// Id of the key that replaced this one.
    #[getter]
    fn rotated_to(&self) -> Option<&str> {
        self.0.rotated_to.as_deref()
    }
    /// Rate limits applied by verify_key_with (list of dicts).
    #[getter]
    fn rate_limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_serialized(py, &self.0.rate_limits)
    }
    /// "active", "disabled", "revoked" or "expired" (when read).
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// All fields as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_serialized(py, &self.0)
    }
    fn __repr__(&self) -> String {
        KeyRecord::repr_of(&self.0)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<KeyRecord>().is_ok_and(|o| o.get().0 == self.0)
    }
}

/// A key just created or rotated: `.key` is the plaintext, available only now.
#[pyclass(frozen, module = "irontoken._native")]
struct CreatedKey {
    key: String,
    record: Py<KeyRecord>,
    display_prefix: String,
}

impl CreatedKey {
    fn new(py: Python<'_>, c: CoreCreated) -> PyResult<Self> {
        let display_prefix = c.record.display_prefix.clone();
        Ok(CreatedKey {
            key: c.key.to_string(),
            record: Py::new(py, KeyRecord(c.record))?,
            display_prefix,
        })
    }
}

#[pymethods]
impl CreatedKey {
    /// The plaintext key. Give it to the user now; it cannot be read back later.
    #[getter]
    fn key(&self) -> &str {
        &self.key
    }
    /// The stored record.
    #[getter]
    fn record(&self, py: Python<'_>) -> Py<KeyRecord> {
        self.record.clone_ref(py)
    }
    fn __repr__(&self) -> String {
        format!(
            "CreatedKey(key='{}…', record={})",
            self.display_prefix,
            self.record.get().__repr__()
        )
    }
}

/// The answer of `verify_key`: a normal result, not an exception. The
/// Python record object is made when `.record` is first read (most callers
/// only look at `valid`).
#[pyclass(frozen, module = "irontoken._native")]
struct VerifyResult {
    valid: bool,
    reason: &'static str,
    core_record: Option<irontoken::KeyRecord>,
    record: pyo3::sync::PyOnceLock<Py<KeyRecord>>,
    rate_limit: Option<Py<PyAny>>,
    quota: Option<Py<PyAny>>,
}

#[pymethods]
impl VerifyResult {
    /// True only when reason == "VALID".
    #[getter]
    fn valid(&self) -> bool {
        self.valid
    }
    /// "VALID", "MALFORMED", "NOT_FOUND", "DISABLED", "REVOKED", "EXPIRED" or "INSUFFICIENT_SCOPE".
    #[getter]
    fn reason(&self) -> &'static str {
        self.reason
    }
    /// The key's record when the key was found, else None.
    #[getter]
    fn record(&self, py: Python<'_>) -> PyResult<Option<Py<KeyRecord>>> {
        let Some(core) = &self.core_record else {
            return Ok(None);
        };
        let r = self
            .record
            .get_or_try_init(py, || Py::new(py, KeyRecord(core.clone())))?;
        Ok(Some(r.clone_ref(py)))
    }
    /// The rate-limit decision (dict) when limits were applied, else None.
    #[getter]
    fn rate_limit(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.rate_limit.as_ref().map(|r| r.clone_ref(py))
    }
    /// The quota decision (dict) when quota was consumed, else None.
    #[getter]
    fn quota(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.quota.as_ref().map(|r| r.clone_ref(py))
    }
    fn __bool__(&self) -> bool {
        self.valid
    }
    fn __repr__(&self) -> String {
        match &self.core_record {
            Some(r) => format!(
                "VerifyResult(valid={}, reason={}, record={})",
                if self.valid { "True" } else { "False" },
                q(self.reason),
                KeyRecord::repr_of(r)
            ),
            None => format!(
                "VerifyResult(valid={}, reason={}, record=None)",
                if self.valid { "True" } else { "False" },
                q(self.reason)
            ),
        }
    }
}

impl VerifyResult {
    fn new(py: Python<'_>, v: Verification) -> PyResult<Self> {
        Ok(VerifyResult {
            valid: v.valid,
            reason: v.reason.code(),
            core_record: v.record,
            record: pyo3::sync::PyOnceLock::new(),
            rate_limit: v
                .rate_limit
                .map(|d| to_py_serialized(py, &d).map(Bound::unbind))
                .transpose()?,
            quota: v
                .quota
                .map(|d| to_py_serialized(py, &d).map(Bound::unbind))
                .transpose()?,
        })
    }
}

/// One entry of the audit trail.
#[pyclass(frozen, module = "irontoken._native")]
struct AuditEntry(AuditEvent);

#[pymethods]
impl AuditEntry {
    /// Increasing id.
    #[getter]
    fn id(&self) -> i64 {
        self.0.id
    }
    /// Unix seconds.
    #[getter]
    fn at(&self) -> i64 {
        self.0.at
    }
    /// E.g. "key.revoke".
    #[getter]
    fn action(&self) -> &str {
        &self.0.action
    }
    /// The key concerned, if known.
    #[getter]
    fn key_id(&self) -> Option<&str> {
        self.0.key_id.as_deref()
    }
    /// The key's display prefix, if known.
    #[getter]
    fn display_prefix(&self) -> Option<&str> {
        self.0.display_prefix.as_deref()
    }
    /// Who acted, if given.
    #[getter]
    fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
    /// "ok" or the failed verification's reason.
    #[getter]
    fn outcome(&self) -> &str {
        &self.0.outcome
    }
    /// Extra details (dict) or None.
    #[getter]
    fn detail<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.0
            .detail
            .as_ref()
            .map(|d| to_py_value(py, d))
            .transpose()
    }
    fn __repr__(&self) -> String {
        format!(
            "AuditEntry(id={}, at={}, action={}, key_id={}, outcome={})",
            self.0.id,
            self.0.at,
            q(&self.0.action),
            opt_q(self.0.key_id.as_deref()),
            q(&self.0.outcome)
        )
    }
}

/// A page of results; pass `next_cursor` back as `cursor` for the next page.
#[pyclass(frozen, module = "irontoken._native")]
struct PageResult {
    items: Py<PyList>,
    next_cursor: Option<String>,
}

#[pymethods]
impl PageResult {
    /// The records of this page.
    #[getter]
    fn items(&self, py: Python<'_>) -> Py<PyList> {
        self.items.clone_ref(py)
    }
    /// Cursor of the next page, None on the last one.
    #[getter]
    fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }
    fn __len__(&self, py: Python<'_>) -> usize {
        self.items.bind(py).len()
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.items.bind(py).try_iter().map(|i| i.into_any())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Page(items=<{} items>, next_cursor={})",
            self.items.bind(py).len(),
            opt_q(self.next_cursor.as_deref())
        )
    }
}

fn page<T, P: pyo3::PyClass + Into<PyClassInitializer<P>>>(
    py: Python<'_>,
    p: Page<T>,
    wrap: impl Fn(T) -> P,
) -> PyResult<PageResult> {
    let items = PyList::empty(py);
    for it in p.items {
        items.append(Py::new(py, wrap(it))?)?;
    }
    Ok(PageResult {
        items: items.unbind(),
        next_cursor: p.next_cursor,
    })
}

/// The entry object: opened on a SQLite path or ":memory:"; safe to share
/// across threads; several processes may open the same file.
#[pyclass(frozen, module = "irontoken._native")]
struct TokenManager {
    inner: Mutex<Option<Arc<Core>>>,
}

impl TokenManager {
    fn core(&self, py: Python<'_>) -> PyResult<Arc<Core>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.clone()
            .ok_or_else(|| to_py(py, Error::invalid("the TokenManager is closed")))
    }
}

#[pymethods]
impl TokenManager {
    #[new]
    #[pyo3(signature = (path, *, durability=None, busy_timeout_ms=None, flush_interval_ms=None, manual_clock_start=None, master_key=None, rsa_key_bits=None, create=None, key_cache_size=None, page_cache_mib=None, mmap_mib=None, rate_limit_store=None, rate_limit_fail_open=None, rate_limit_timeout_ms=None, strict=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: String,
        durability: Option<String>,
        #[pyo3(from_py_with = opt_int::<u64>)] busy_timeout_ms: Option<u64>,
        #[pyo3(from_py_with = opt_int::<u64>)] flush_interval_ms: Option<u64>,
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
    ) -> PyResult<Self> {
        let settings = OpenSettings {
            strict,
            rate_limit_store,
            rate_limit_fail_open,
            rate_limit_timeout_ms,
            key_cache_size,
            page_cache_mib,
            mmap_mib,
            durability,
            busy_timeout_ms,
            flush_interval_ms,
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

    /// Counts one request of `key` against `limits` (list of {"name",
    /// "count", "period_ms", "burst"}), all-or-nothing, in the manager's
    /// rate-limit store (option `rate_limit_store`); `peek=True` counts nothing.
    #[pyo3(signature = (key, limits, *, peek=false))]
    fn rate_limit(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Bound<'_, PyAny>,
        peek: bool,
    ) -> PyResult<RateDecision> {
        let rl = RateLimiter {
            backend: Limiter::Manager(self.core(py)?),
            limits: None,
        };
        rl.decide(py, key, Some(&limits), None, !peek)
    }

    /// Creates a key; the returned `.key` is the only time the plaintext exists.
    #[pyo3(signature = (owner, *, name=None, description=None, scopes=None, metadata=None, expires_at=None, expires_in=None, prefix=None, rate_limits=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_key(
        &self,
        py: Python<'_>,
        owner: String,
        name: Option<String>,
        description: Option<String>,
        scopes: Option<Vec<String>>,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_at: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_in: Option<i64>,
        prefix: Option<String>,
        rate_limits: Option<Bound<'_, PyAny>>,
        actor: Option<String>,
    ) -> PyResult<CreatedKey> {
        let tm = self.core(py)?;
        let metadata = metadata
            .map(|m| to_object(py, &m, "metadata"))
            .transpose()?;
        let req = NewKey {
            owner,
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            scopes: scopes.unwrap_or_default(),
            metadata,
            expires_at,
            expires_in,
            prefix,
            rate_limits: rate_limits
                .map(|l| from_py(py, &l, "rate_limits"))
                .transpose()?
                .unwrap_or_default(),
            actor,
        };
        let c = call(py, move || tm.create_key(&req))?;
        CreatedKey::new(py, c)
    }

    /// Creates many keys in one transaction: all of them or none (the first
    /// bad request's index is in the error). Each request is a dict with the
    /// keyword arguments of `create_key`. At most 100 000 per call.
    fn create_keys(&self, py: Python<'_>, requests: Bound<'_, PyAny>) -> PyResult<Vec<CreatedKey>> {
        let tm = self.core(py)?;
        let reqs: Vec<NewKey> = from_py(py, &requests, "requests")?;
        let created = call(py, move || tm.create_keys(&reqs))?;
        created
            .into_iter()
            .map(|c| CreatedKey::new(py, c))
            .collect()
    }

    /// Verifies a key; a refusal is a result with `valid=False` and a reason, not an exception.
    #[pyo3(signature = (key, required_scopes=None))]
    fn verify_key(
        &self,
        py: Python<'_>,
        key: &str,
        required_scopes: Option<Vec<String>>,
    ) -> PyResult<VerifyResult> {
        let tm = self.core(py)?;
        let scopes = required_scopes.unwrap_or_default();
        let v = call(py, || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.verify_key(key, &s)
        })?;
        VerifyResult::new(py, v)
    }

    /// The record of key `key_id`.
    fn get_key(&self, py: Python<'_>, key_id: &str) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        Ok(KeyRecord(call(py, || tm.get_key(key_id))?))
    }

    /// One page of keys, oldest first.
    #[pyo3(signature = (*, owner=None, status=None, limit=None, cursor=None))]
    fn list_keys(
        &self,
        py: Python<'_>,
        owner: Option<String>,
        status: Option<&str>,
        #[pyo3(from_py_with = opt_int::<u32>)] limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<PageResult> {
        let tm = self.core(py)?;
        let status = status
            .map(KeyStatus::parse)
            .transpose()
            .map_err(|e| to_py(py, e))?;
        let f = KeyFilter {
            owner,
            status,
            limit,
            cursor,
        };
        let p = call(py, || tm.list_keys(&f))?;
        page(py, p, KeyRecord)
    }

    /// Changes descriptive fields; `clear_expiry=True` removes the expiry.
    #[pyo3(signature = (key_id, *, name=None, description=None, scopes=None, metadata=None, expires_at=None, clear_expiry=false, rate_limits=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn update_key(
        &self,
        py: Python<'_>,
        key_id: &str,
        name: Option<String>,
        description: Option<String>,
        scopes: Option<Vec<String>>,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_at: Option<i64>,
        clear_expiry: bool,
        rate_limits: Option<Bound<'_, PyAny>>,
        actor: Option<String>,
    ) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        let expiry =
            KeyUpdate::expiry_change(expires_at, clear_expiry).map_err(|e| to_py(py, e))?;
        let metadata = metadata
            .map(|m| to_object(py, &m, "metadata"))
            .transpose()?;
        let u = KeyUpdate {
            name,
            description,
            scopes,
            metadata,
            expires_at: expiry,
            rate_limits: rate_limits
                .map(|l| from_py(py, &l, "rate_limits"))
                .transpose()?,
            actor,
        };
        Ok(KeyRecord(call(py, || tm.update_key(key_id, &u))?))
    }

    /// Disables a key until `enable_key`.
    #[pyo3(signature = (key_id, *, actor=None))]
    fn disable_key(
        &self,
        py: Python<'_>,
        key_id: &str,
        actor: Option<&str>,
    ) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        Ok(KeyRecord(call(py, || tm.disable_key(key_id, actor))?))
    }

    /// Enables a disabled key.
    #[pyo3(signature = (key_id, *, actor=None))]
    fn enable_key(&self, py: Python<'_>, key_id: &str, actor: Option<&str>) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        Ok(KeyRecord(call(py, || tm.enable_key(key_id, actor))?))
    }

    /// Revokes a key permanently.
    #[pyo3(signature = (key_id, *, reason=None, actor=None))]
    fn revoke_key(
        &self,
        py: Python<'_>,
        key_id: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        Ok(KeyRecord(call(py, || {
            tm.revoke_key(key_id, reason, actor)
        })?))
    }

    /// Replaces a key; the old one verifies for `overlap_seconds` more (0: revoked now).
    #[pyo3(signature = (key_id, *, overlap_seconds=0, expires_at=None, actor=None))]
    fn rotate_key(
        &self,
        py: Python<'_>,
        key_id: &str,
        #[pyo3(from_py_with = int::<i64>)] overlap_seconds: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_at: Option<i64>,
        actor: Option<String>,
    ) -> PyResult<CreatedKey> {
        let tm = self.core(py)?;
        let o = RotateOptions {
            overlap_seconds,
            expires_at: expires_at.map(Some),
            actor,
        };
        let c = call(py, || tm.rotate_key(key_id, &o))?;
        CreatedKey::new(py, c)
    }

    /// Deletes a key's record (its audit history stays).
    #[pyo3(signature = (key_id, *, actor=None))]
    fn delete_key(&self, py: Python<'_>, key_id: &str, actor: Option<&str>) -> PyResult<()> {
        let tm = self.core(py)?;
        call(py, || tm.delete_key(key_id, actor))
    }

    /// One page of the audit trail, newest first.
    #[pyo3(signature = (*, key_id=None, action=None, actor=None, outcome=None, since=None, until=None, limit=None, cursor=None))]
    #[allow(clippy::too_many_arguments)]
    fn list_audit(
        &self,
        py: Python<'_>,
        key_id: Option<String>,
        action: Option<String>,
        actor: Option<String>,
        outcome: Option<String>,
        #[pyo3(from_py_with = opt_int::<i64>)] since: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] until: Option<i64>,
        #[pyo3(from_py_with = opt_int::<u32>)] limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<PageResult> {
        let tm = self.core(py)?;
        let f = AuditFilter {
            key_id,
            action,
            actor,
            outcome,
            since,
            until,
            limit,
            cursor,
        };
        let p = call(py, || tm.list_audit(&f))?;
        page(py, p, AuditEntry)
    }

    /// Generates a managed signing key (RS256, ES256, EdDSA, HS256) and makes it active.
    #[pyo3(signature = (algorithm, *, actor=None))]
    fn create_signing_key<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let alg = irontoken::jwt::Alg::from_name(algorithm).map_err(|e| to_py(py, e))?;
        let k = call(py, || tm.create_signing_key(alg, actor))?;
        to_py_serialized(py, &k)
    }

    /// Makes a new key active; the old one verifies for `overlap_seconds` more.
    #[pyo3(signature = (*, algorithm=None, overlap_seconds=0, actor=None))]
    fn rotate_signing_key<'py>(
        &self,
        py: Python<'py>,
        algorithm: Option<&str>,
        #[pyo3(from_py_with = int::<i64>)] overlap_seconds: i64,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let alg = algorithm
            .map(irontoken::jwt::Alg::from_name)
            .transpose()
            .map_err(|e| to_py(py, e))?;
        let k = call(py, || tm.rotate_signing_key(alg, overlap_seconds, actor))?;
        to_py_serialized(py, &k)
    }

    /// Retires a signing key now.
    #[pyo3(signature = (kid, *, actor=None))]
    fn retire_signing_key<'py>(
        &self,
        py: Python<'py>,
        kid: &str,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let k = call(py, || tm.retire_signing_key(kid, actor))?;
        to_py_serialized(py, &k)
    }

    /// Every managed signing key (no private material).
    fn list_signing_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let keys = call(py, || tm.list_signing_keys())?;
        to_py_serialized(py, &keys)
    }

    /// The public JWKS of the keys that verify now.
    fn jwks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let v = call(py, || tm.jwks())?;
        to_py_value(py, &v)
    }

    /// Signs `claims` with the active managed key (iat, exp, jti added when absent).
    #[pyo3(signature = (claims, *, ttl_seconds=None))]
    fn issue_jwt(
        &self,
        py: Python<'_>,
        claims: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<String> {
        let tm = self.core(py)?;
        let c = to_object(py, claims, "claims")?;
        call(py, || tm.issue_jwt(&c, ttl_seconds))
    }

    /// Verifies a token issued by this manager's keys; returns its claims.
    #[pyo3(signature = (token, *, algorithms, audience=None, issuer=None, subject=None, leeway=0, required=None, require_exp=None, require_sub=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify_jwt<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        algorithms: Vec<String>,
        audience: Option<Vec<String>>,
        issuer: Option<String>,
        subject: Option<String>,
        #[pyo3(from_py_with = int::<i64>)] leeway: i64,
        required: Option<Vec<String>>,
        require_exp: Option<bool>,
        require_sub: Option<bool>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let tm = self.core(py)?;
        let policy = irontoken::jwt::PolicySettings {
            algorithms,
            leeway: Some(leeway),
            issuer,
            audience,
            subject,
            required,
            require_exp,
            require_sub,
            ..Default::default()
        }
        .into_policy()
        .map_err(|e| to_py(py, e))?;
        let d = call(py, || tm.verify_jwt(token, &policy))?;
        to_py_dict(py, &d.claims)
    }

    /// Exchanges a valid API key for a short-lived access token.
    #[pyo3(signature = (api_key, *, required_scopes=None, ttl_seconds=None))]
    fn exchange_api_key<'py>(
        &self,
        py: Python<'py>,
        api_key: &str,
        required_scopes: Option<Vec<String>>,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let scopes = required_scopes.unwrap_or_default();
        let at = call(py, || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.exchange_api_key(api_key, &s, ttl_seconds)
        })?;
        to_py_serialized(py, &at)
    }

    /// Verifies a key and, in the same call, applies its rate limits and consumes quota.
    #[pyo3(signature = (key, *, required_scopes=None, rate_limit=false, quota=None))]
    fn verify_key_with(
        &self,
        py: Python<'_>,
        key: &str,
        required_scopes: Option<Vec<String>>,
        rate_limit: bool,
        quota: Option<Bound<'_, PyAny>>,
    ) -> PyResult<VerifyResult> {
        let tm = self.core(py)?;
        let o = irontoken::VerifyOptions {
            required_scopes: required_scopes.unwrap_or_default(),
            rate_limit,
            quota: quota.map(|q| from_py(py, &q, "quota")).transpose()?,
        };
        let v = call(py, || tm.verify_key_with(key, &o))?;
        VerifyResult::new(py, v)
    }

    /// Creates a session; returns it as a dict (its `id` is a UUID).
    #[pyo3(signature = (owner, *, key_id=None, session_type=None, metadata=None, ttl_seconds=None, idle_timeout_seconds=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_session<'py>(
        &self,
        py: Python<'py>,
        owner: String,
        key_id: Option<String>,
        session_type: Option<String>,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] idle_timeout_seconds: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let req = irontoken::NewSession {
            owner,
            key_id,
            session_type,
            metadata: metadata
                .map(|m| to_object(py, &m, "metadata"))
                .transpose()?,
            ttl_seconds,
            idle_timeout_seconds,
        };
        let s = call(py, || tm.create_session(&req))?;
        to_py_serialized(py, &s)
    }

    /// The session `session_id` (status computed now).
    fn get_session<'py>(&self, py: Python<'py>, session_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.get_session(session_id))
    }

    /// Slides the idle expiry of a live session (never past the absolute one).
    fn touch_session<'py>(&self, py: Python<'py>, session_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.touch_session(session_id))
    }

    /// Changes the status ("active" / "paused") and/or metadata of a live session.
    #[pyo3(signature = (session_id, *, status=None, metadata=None))]
    fn update_session<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
        status: Option<String>,
        metadata: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let u = irontoken::SessionUpdate {
            status,
            metadata: metadata
                .map(|m| to_object(py, &m, "metadata"))
                .transpose()?,
        };
        call_py(py, || tm.update_session(session_id, &u))
    }

    /// Ends a live session.
    #[pyo3(signature = (session_id, *, reason=None))]
    fn end_session<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
        reason: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.end_session(session_id, reason))
    }

    /// One page of sessions (dicts), oldest first.
    #[pyo3(signature = (*, owner=None, session_type=None, status=None, key_id=None, limit=None, cursor=None))]
    #[allow(clippy::too_many_arguments)]
    fn list_sessions(
        &self,
        py: Python<'_>,
        owner: Option<String>,
        session_type: Option<String>,
        status: Option<String>,
        key_id: Option<String>,
        #[pyo3(from_py_with = opt_int::<u32>)] limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<PageResult> {
        let tm = self.core(py)?;
        let f = irontoken::SessionFilter {
            owner,
            session_type,
            status,
            key_id,
            limit,
            cursor,
        };
        dict_page(py, call(py, || tm.list_sessions(&f))?)
    }

    /// Marks live sessions past their expiry as expired; returns how many.
    fn cleanup_expired_sessions(&self, py: Python<'_>) -> PyResult<u64> {
        let tm = self.core(py)?;
        call(py, || tm.cleanup_expired_sessions())
    }

    /// Deletes sessions that ended at least `older_than_seconds` ago; returns how many.
    fn purge_sessions(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = int::<i64>)] older_than_seconds: i64,
    ) -> PyResult<u64> {
        let tm = self.core(py)?;
        call(py, || tm.purge_sessions(older_than_seconds))
    }

    /// Records usage (buffered); the same `request_id` twice counts once.
    #[pyo3(signature = (*, request_id=None, key_id=None, session_id=None, model=None, model_version=None, prompt_tokens=0, completion_tokens=0, cache_read_tokens=0, cache_write_tokens=0, requests=None, cost_micros=0, metadata=None, at=None))]
    #[allow(clippy::too_many_arguments)]
    fn record_usage<'py>(
        &self,
        py: Python<'py>,
        request_id: Option<String>,
        key_id: Option<String>,
        session_id: Option<String>,
        model: Option<String>,
        model_version: Option<String>,
        #[pyo3(from_py_with = int::<i64>)] prompt_tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] completion_tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cache_read_tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cache_write_tokens: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] requests: Option<i64>,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] at: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let r = irontoken::UsageReport {
            request_id,
            key_id,
            session_id,
            model,
            model_version,
            at,
            ..counted(
                py,
                [
                    prompt_tokens,
                    completion_tokens,
                    cache_read_tokens,
                    cache_write_tokens,
                    cost_micros,
                ],
                requests,
                metadata,
            )?
        };
        call_py(py, || tm.record_usage(&r))
    }

    /// Usage totals grouped by any of "key", "owner", "model", "session", "agent", "day".
    #[pyo3(signature = (*, since=None, until=None, key_id=None, owner=None, model=None, session_id=None, agent_id=None, group_by=None))]
    #[allow(clippy::too_many_arguments)]
    fn usage_summary<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = opt_int::<i64>)] since: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] until: Option<i64>,
        key_id: Option<String>,
        owner: Option<String>,
        model: Option<String>,
        session_id: Option<String>,
        agent_id: Option<String>,
        group_by: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let q = irontoken::UsageQuery {
            since,
            until,
            key_id,
            owner,
            model,
            session_id,
            agent_id,
            group_by: group_by.unwrap_or_default(),
            ..Default::default()
        };
        call_py(py, || tm.usage_summary(&q))
    }

    /// One page of raw usage records (dicts), oldest first.
    #[pyo3(signature = (*, since=None, until=None, key_id=None, owner=None, model=None, session_id=None, agent_id=None, limit=None, cursor=None))]
    #[allow(clippy::too_many_arguments)]
    fn export_usage(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = opt_int::<i64>)] since: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] until: Option<i64>,
        key_id: Option<String>,
        owner: Option<String>,
        model: Option<String>,
        session_id: Option<String>,
        agent_id: Option<String>,
        #[pyo3(from_py_with = opt_int::<u32>)] limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<PageResult> {
        let tm = self.core(py)?;
        let q = irontoken::UsageQuery {
            since,
            until,
            key_id,
            owner,
            model,
            session_id,
            agent_id,
            limit,
            cursor,
            ..Default::default()
        };
        dict_page(py, call(py, || tm.export_usage(&q))?)
    }

    /// Creates or changes a quota of a key (scope "key") or an owner (scope "owner").
    #[pyo3(signature = (subject, *, metric, period, limit, scope="key", refill_amount=None, refill_period=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn set_quota<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        metric: &str,
        period: &str,
        #[pyo3(from_py_with = int::<i64>)] limit: i64,
        scope: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] refill_amount: Option<i64>,
        refill_period: Option<&str>,
        actor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let s = irontoken::QuotaSpec {
            scope: name_of(py, scope)?,
            subject,
            metric: name_of(py, metric)?,
            period: name_of(py, period)?,
            limit: nn(py, limit, "limit")?,
            refill_amount: refill_amount
                .map(|a| nn(py, a, "refill_amount"))
                .transpose()?,
            refill_period: refill_period.map(|p| name_of(py, p)).transpose()?,
            actor,
        };
        call_py(py, || tm.set_quota(&s))
    }

    /// Removes a quota.
    #[pyo3(signature = (subject, *, metric, period, scope="key", actor=None))]
    fn delete_quota(
        &self,
        py: Python<'_>,
        subject: &str,
        metric: &str,
        period: &str,
        scope: &str,
        actor: Option<&str>,
    ) -> PyResult<()> {
        let tm = self.core(py)?;
        let (scope, metric, period) = (
            name_of(py, scope)?,
            name_of(py, metric)?,
            name_of(py, period)?,
        );
        call(py, || {
            tm.delete_quota(scope, subject, metric, period, actor)
        })
    }

    /// The quotas of a key or owner as they stand now.
    #[pyo3(signature = (subject, *, scope="key"))]
    fn list_quotas<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        scope: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let scope = name_of(py, scope)?;
        call_py(py, || tm.list_quotas(scope, subject))
    }

    /// Adds `amount` to a credit balance (a quota with period "none").
    #[pyo3(signature = (subject, amount, *, metric, scope="key"))]
    fn add_credits<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        #[pyo3(from_py_with = int::<i64>)] amount: i64,
        metric: &str,
        scope: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let amount = nn(py, amount, "amount")?;
        let (scope, metric) = (name_of(py, scope)?, name_of(py, metric)?);
        to_py_serialized(
            py,
            &call(py, || tm.add_credits(scope, subject, metric, amount))?,
        )
    }

    /// Checks and consumes from every quota of the key and its owner, all or nothing.
    #[pyo3(signature = (key_id, *, requests=0, tokens=0, cost_micros=0))]
    fn consume_quota<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        #[pyo3(from_py_with = int::<i64>)] requests: i64,
        #[pyo3(from_py_with = int::<i64>)] tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let a = amounts(py, requests, tokens, cost_micros)?;
        decision_dict(py, &call(py, || tm.consume_quota(key_id, &a))?)
    }

    /// Answers what `consume_quota` would, without consuming.
    #[pyo3(signature = (key_id, *, requests=0, tokens=0, cost_micros=0))]
    fn peek_quota<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        #[pyo3(from_py_with = int::<i64>)] requests: i64,
        #[pyo3(from_py_with = int::<i64>)] tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let a = amounts(py, requests, tokens, cost_micros)?;
        decision_dict(py, &call(py, || tm.peek_quota(key_id, &a))?)
    }

    /// Holds an estimate for `ttl_seconds` (default 300); settle or release it later.
    #[pyo3(signature = (key_id, *, requests=0, tokens=0, cost_micros=0, ttl_seconds=None))]
    fn reserve_quota<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        #[pyo3(from_py_with = int::<i64>)] requests: i64,
        #[pyo3(from_py_with = int::<i64>)] tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let a = amounts(py, requests, tokens, cost_micros)?;
        call_py(py, || tm.reserve_quota(key_id, &a, ttl_seconds))
    }

    /// Charges the actual amounts of a reserved call (in full) and ends the hold.
    #[pyo3(signature = (reservation_id, *, requests=0, tokens=0, cost_micros=0))]
    fn settle_reservation<'py>(
        &self,
        py: Python<'py>,
        reservation_id: &str,
        #[pyo3(from_py_with = int::<i64>)] requests: i64,
        #[pyo3(from_py_with = int::<i64>)] tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let a = amounts(py, requests, tokens, cost_micros)?;
        call_py(py, || tm.settle_reservation(reservation_id, &a))
    }

    /// Gives a hold back without charging.
    fn release_reservation<'py>(
        &self,
        py: Python<'py>,
        reservation_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.release_reservation(reservation_id))
    }

    /// Releases every hold past its TTL; returns how many.
    fn expire_reservations(&self, py: Python<'_>) -> PyResult<u64> {
        let tm = self.core(py)?;
        call(py, || tm.expire_reservations())
    }

    /// Creates a budget (micro-units) agents can lease from.
    #[pyo3(signature = (owner, limit_micros, *, name=None, actor=None))]
    fn create_budget<'py>(
        &self,
        py: Python<'py>,
        owner: String,
        #[pyo3(from_py_with = int::<i64>)] limit_micros: i64,
        name: Option<String>,
        actor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let b = irontoken::NewBudget {
            owner,
            name: name.unwrap_or_default(),
            limit_micros: nn(py, limit_micros, "limit_micros")?,
            actor,
        };
        call_py(py, || tm.create_budget(&b))
    }

    /// The budget `budget_id` (spent, leased, available).
    fn get_budget<'py>(&self, py: Python<'py>, budget_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.get_budget(budget_id))
    }

    /// Issues the agent's token (revoking its previous one); returns token and claims.
    #[pyo3(signature = (agent_id, budget_id, *, permissions=None, issuer=None, ttl_seconds=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn issue_agent_token<'py>(
        &self,
        py: Python<'py>,
        agent_id: String,
        budget_id: String,
        permissions: Option<Vec<String>>,
        issuer: Option<String>,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
        actor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let r = irontoken::AgentTokenRequest {
            agent_id,
            budget_id,
            permissions: permissions.unwrap_or_default(),
            issuer,
            ttl_seconds,
            actor,
        };
        call_py(py, || tm.issue_agent_token(&r))
    }

    /// Verifies an agent token (signature, expiry, still the agent's live token).
    fn verify_agent_token<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.verify_agent_token(token))
    }

    /// Revokes the agent's live token and its leases; returns the token's jti.
    #[pyo3(signature = (agent_id, *, actor=None))]
    fn revoke_agent_token(
        &self,
        py: Python<'_>,
        agent_id: &str,
        actor: Option<&str>,
    ) -> PyResult<String> {
        let tm = self.core(py)?;
        call(py, || tm.revoke_agent_token(agent_id, actor))
    }

    /// Takes a lease of `amount_micros` from the agent token's budget.
    #[pyo3(signature = (agent_token, amount_micros, *, ttl_seconds=None))]
    fn acquire_lease<'py>(
        &self,
        py: Python<'py>,
        agent_token: &str,
        #[pyo3(from_py_with = int::<i64>)] amount_micros: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let amount_micros = nn(py, amount_micros, "amount_micros")?;
        call_py(py, || {
            tm.acquire_lease(agent_token, amount_micros, ttl_seconds)
        })
    }

    /// The lease `lease_id`.
    fn get_lease<'py>(&self, py: Python<'py>, lease_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.get_lease(lease_id))
    }

    /// Makes `amount_micros` more available on a lease and renews it.
    #[pyo3(signature = (lease_id, amount_micros, *, ttl_seconds=None))]
    fn refresh_lease<'py>(
        &self,
        py: Python<'py>,
        lease_id: &str,
        #[pyo3(from_py_with = int::<i64>)] amount_micros: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let amount_micros = nn(py, amount_micros, "amount_micros")?;
        call_py(py, || {
            tm.refresh_lease(lease_id, amount_micros, ttl_seconds)
        })
    }

    /// Ends a lease; its unspent part returns to the budget.
    fn release_lease<'py>(&self, py: Python<'py>, lease_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.release_lease(lease_id))
    }

    /// Reports usage spent on a lease (`request_id` required; retries count once).
    #[pyo3(signature = (lease_id, *, request_id, cost_micros=0, model=None, model_version=None, prompt_tokens=0, completion_tokens=0, cache_read_tokens=0, cache_write_tokens=0, requests=None, metadata=None))]
    #[allow(clippy::too_many_arguments)]
    fn report_lease_usage<'py>(
        &self,
        py: Python<'py>,
        lease_id: &str,
        request_id: String,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
        model: Option<String>,
        model_version: Option<String>,
        #[pyo3(from_py_with = int::<i64>)] prompt_tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] completion_tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cache_read_tokens: i64,
        #[pyo3(from_py_with = int::<i64>)] cache_write_tokens: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] requests: Option<i64>,
        metadata: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let r = irontoken::UsageReport {
            request_id: Some(request_id),
            model,
            model_version,
            ..counted(
                py,
                [
                    prompt_tokens,
                    completion_tokens,
                    cache_read_tokens,
                    cache_write_tokens,
                    cost_micros,
                ],
                requests,
                metadata,
            )?
        };
        call_py(py, || tm.report_lease_usage(lease_id, &r))
    }

    /// Takes up to `max` pending signals (dicts), oldest first.
    #[pyo3(signature = (max=100))]
    fn drain_events<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = int::<usize>)] max: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        to_py_serialized(py, &tm.drain_events(max))
    }

    /// Counters in the Prometheus text exposition format.
    fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.core(py)?.metrics())
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let tm = self.core(py)?;
        call(py, || tm.flush())
    }

    /// Moves a manual clock (opened with `manual_clock_start`); returns the new time.
    fn advance_clock(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = int::<i64>)] seconds: i64,
    ) -> PyResult<i64> {
        let tm = self.core(py)?;
        call(py, || tm.advance_clock(seconds))
    }

    /// The manager's current time (Unix seconds).
    fn now(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(self.core(py)?.now())
    }

    /// Flushes and closes; later calls raise. Calls already running finish first.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
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

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let open = self.inner.lock().map(|g| g.is_some()).unwrap_or(false);
        format!("TokenManager(open={})", if open { "True" } else { "False" })
    }
}

/// Key material from Python as bytes, whichever of str, bytes, bytearray or
/// memoryview it came as: what it is comes from its content, in core.
fn key_material(key: &Bound<'_, PyAny>) -> Result<Vec<u8>, Error> {
    if let Ok(b) = key.cast::<pyo3::types::PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = key.extract::<String>() {
        return Ok(s.into_bytes());
    }
    if let Ok(v) = key.extract::<Vec<u8>>() {
        return Ok(v);
    }
    Err(Error::new(
        irontoken::ErrorKind::InvalidKeyMaterial,
        "key must be str or bytes (PEM, DER, JWK, JWKS, OpenSSH public key or HMAC secret)",
    ))
}

/// A keyring from Python key material (str or bytes, judged by content, or
/// a parsed `Jwk`).
fn keyring_of(key: &Bound<'_, PyAny>) -> Result<Arc<irontoken::jwt::Keyring>, Error> {
    if let Ok(j) = key.cast::<Jwk>() {
        return Ok(Arc::new(irontoken::jwt::Keyring::single(j.get().0.clone())));
    }
    irontoken::jwt::Keyring::from_bytes_cached(&key_material(key)?)
}

/// One JWK parsed once (PyJWK's key): verifies without re-parsing.
#[pyclass(frozen, module = "irontoken._native")]
struct Jwk(irontoken::jwt::VerifyingKey);

#[pymethods]
impl Jwk {
    #[new]
    fn new(py: Python<'_>, json: &str) -> PyResult<Self> {
        irontoken::jwt::VerifyingKey::from_jwk(json)
            .map(Jwk)
            .map_err(|e| to_py(py, e))
    }

    /// The JWK `kid`, if any.
    #[getter]
    fn kid(&self) -> Option<String> {
        self.0.kid().map(str::to_string)
    }

    /// The JWK `kty`: `oct`, `RSA`, `EC` or `OKP`.
    #[getter]
    fn key_type(&self) -> &'static str {
        self.0.key_type().kty()
    }

    /// The JWK `alg`, if it names one.
    #[getter]
    fn algorithm(&self) -> Option<&'static str> {
        self.0.alg().map(|a| a.as_str())
    }

    fn __repr__(&self) -> String {
        format!(
            "Jwk(kty={:?}, kid={:?})",
            self.0.key_type().kty(),
            self.0.kid()
        )
    }
}

/// A remote JWKS with its cache (PyJWKClient's engine); network waits run
/// without the GIL.
#[pyclass(frozen, module = "irontoken._native")]
struct RemoteJwks(irontoken::jwt::RemoteJwks);

#[pymethods]
impl RemoteJwks {
    #[new]
    fn new(py: Python<'_>, url: &str, options_json: &str) -> PyResult<Self> {
        irontoken::jwt::RemoteJwksSettings::options_from_json(options_json)
            .and_then(|o| irontoken::jwt::RemoteJwks::new(url, o))
            .map(RemoteJwks)
            .map_err(|e| to_py(py, e))
    }

    /// Verifies a JWT against the set; returns (header dict, claims dict).
    #[pyo3(signature = (token, policy_json, now=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        policy_json: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy_json)
            .map_err(|e| to_py(py, e))?;
        let now = now.unwrap_or_else(|| irontoken::Clock::now(&irontoken::SystemClock));
        let d = call(py, || self.0.decode(token, &policy, now))?;
        Ok((to_py_dict(py, &d.header)?, to_py_dict(py, &d.claims)?))
    }

    /// The key with this kid (refetching once, outside the cooldown, if absent).
    fn key(&self, py: Python<'_>, kid: &str) -> PyResult<Jwk> {
        call(py, || self.0.key(kid)).map(Jwk)
    }

    /// The raw JSON of the current set (fetched when absent or old).
    #[pyo3(signature = (refresh=false))]
    fn raw(&self, py: Python<'_>, refresh: bool) -> PyResult<String> {
        call(py, || {
            if refresh {
                self.0.refetch()?;
            }
            self.0.raw()
        })
        .map(|r| r.to_string())
    }

    /// The URL.
    #[getter]
    fn url(&self) -> String {
        self.0.url().to_string()
    }

    /// How many fetches were made.
    #[getter]
    fn fetch_count(&self) -> u64 {
        self.0.fetch_count()
    }
}

/// Reads a token WITHOUT verifying it: (header dict, payload bytes, signature bytes).
#[pyfunction]
fn jwt_unverified<'py>(
    py: Python<'py>,
    token: &str,
) -> PyResult<(Bound<'py, PyDict>, Vec<u8>, Vec<u8>)> {
    let u = irontoken::jwt::decode_unverified(token, irontoken::jwt::DEFAULT_MAX_TOKEN_BYTES)
        .map_err(|e| to_py(py, e))?;
    Ok((to_py_dict(py, &u.header)?, u.payload, u.signature))
}

/// A signer from Python key material (str or bytes; judged by content).
fn signer_of(
    key: &Bound<'_, PyAny>,
    algorithm: &str,
    kid: Option<&str>,
) -> Result<irontoken::jwt::Signer, Error> {
    use irontoken::jwt::{Signer, SigningKey};
    Signer::named(
        SigningKey::from_bytes_cached(&key_material(key)?)?,
        algorithm,
        kid,
    )
}

/// Any serializable record as the Python object `json.loads` would give.
fn to_py_serialized<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    // Straight to Python objects (pythonize), not through a serde_json::Value.
    pythonize::pythonize(py, v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// A count or amount that must not be negative (an `InvalidArgumentError`, a
/// `ValueError`, rather than Python's `OverflowError`).
fn nn(py: Python<'_>, v: i64, what: &str) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| to_py(py, Error::invalid(format!("{what} must be >= 0"))))
}

/// The counted part of a usage report from keyword arguments: prompt,
/// completion, cache-read and cache-write tokens and cost (each >= 0),
/// requests and metadata; the other fields empty.
fn counted(
    py: Python<'_>,
    [prompt, completion, cache_read, cache_write, cost]: [i64; 5],
    requests: Option<i64>,
    metadata: Option<Bound<'_, PyAny>>,
) -> PyResult<irontoken::UsageReport> {
    Ok(irontoken::UsageReport {
        prompt_tokens: nn(py, prompt, "prompt_tokens")?,
        completion_tokens: nn(py, completion, "completion_tokens")?,
        cache_read_tokens: nn(py, cache_read, "cache_read_tokens")?,
        cache_write_tokens: nn(py, cache_write, "cache_write_tokens")?,
        requests: requests.map(|r| nn(py, r, "requests")).transpose()?,
        cost_micros: nn(py, cost, "cost_micros")?,
        metadata: metadata
            .map(|m| to_object(py, &m, "metadata"))
            .transpose()?,
        ..Default::default()
    })
}

/// Quota amounts from keyword arguments.
fn amounts(py: Python<'_>, requests: i64, tokens: i64, cost: i64) -> PyResult<irontoken::Amounts> {
    Ok(irontoken::Amounts {
        requests: nn(py, requests, "requests")?,
        tokens: nn(py, tokens, "tokens")?,
        cost_micros: nn(py, cost, "cost_micros")?,
    })
}

/// A quota decision as the dict `to_py_serialized` would give, built with
/// interned keys (the hot path of `consume_quota`: a third faster than the
/// generic conversion). `test_usage.py` checks the keys against the types.
fn decision_dict<'py>(
    py: Python<'py>,
    d: &irontoken::QuotaDecision,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::intern;
    let quota = |q: &irontoken::Quota| -> PyResult<Bound<'py, PyDict>> {
        let o = PyDict::new(py);
        o.set_item(intern!(py, "scope"), q.scope.as_str())?;
        o.set_item(intern!(py, "subject"), &q.subject)?;
        o.set_item(intern!(py, "metric"), q.metric.as_str())?;
        o.set_item(intern!(py, "period"), q.period.as_str())?;
        o.set_item(intern!(py, "limit"), q.limit)?;
        o.set_item(intern!(py, "used"), q.used)?;
        o.set_item(intern!(py, "reserved"), q.reserved)?;
        o.set_item(intern!(py, "remaining"), q.remaining)?;
        o.set_item(intern!(py, "window_start"), q.window_start)?;
        o.set_item(intern!(py, "reset_at"), q.reset_at)?;
        o.set_item(intern!(py, "refill_amount"), q.refill_amount)?;
        o.set_item(
            intern!(py, "refill_period"),
            q.refill_period.map(|p| p.as_str()),
        )?;
        Ok(o)
    };
    let out = PyDict::new(py);
    out.set_item(intern!(py, "allowed"), d.allowed)?;
    let list = PyList::empty(py);
    for q in &d.quotas {
        list.append(quota(q)?)?;
    }
    out.set_item(intern!(py, "quotas"), list)?;
    out.set_item(
        intern!(py, "denied_by"),
        d.denied_by.as_ref().map(quota).transpose()?,
    )?;
    Ok(out.into_any())
}

/// Runs `f` without the GIL and returns its answer as Python data (dicts, lists).
fn call_py<'py, T: serde::Serialize + Send>(
    py: Python<'py>,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    to_py_serialized(py, &call(py, f)?)
}

/// Any JSON-serializable Python value as `T` (through `json.dumps`).
fn from_py<T: serde::de::DeserializeOwned>(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<T> {
    let dumped = py
        .import("json")?
        .call_method1("dumps", (v,))
        .map_err(|_| {
            to_py(
                py,
                Error::invalid(format!("{what} must be JSON-serializable")),
            )
        })?;
    let s: String = dumped.extract()?;
    serde_json::from_str(&s).map_err(|e| to_py(py, Error::invalid(format!("{what}: {e}"))))
}

/// A name such as "day" or "owner" as the core enum `T`.
fn name_of<T: std::str::FromStr<Err = Error>>(py: Python<'_>, name: &str) -> PyResult<T> {
    name.parse().map_err(|e| to_py(py, e))
}

/// A page of serializable records as a `PageResult` of dicts.
fn dict_page<T: serde::Serialize>(py: Python<'_>, p: Page<T>) -> PyResult<PageResult> {
    let items = PyList::empty(py);
    for it in &p.items {
        items.append(to_py_serialized(py, it)?)?;
    }
    Ok(PageResult {
        items: items.unbind(),
        next_cursor: p.next_cursor,
    })
}

/// A JSON value as the Python object `json.loads` would give.
fn to_py_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_bound_py_any(py)?,
            (None, Some(u)) => u.into_bound_py_any(py)?,
            _ => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
        },
        Value::String(s) => s.into_bound_py_any(py)?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for it in items {
                list.append(to_py_value(py, it)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => to_py_dict(py, m)?.into_any(),
    })
}

fn to_py_dict<'py>(py: Python<'py>, m: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, to_py_value(py, v)?)?;
    }
    Ok(d)
}

/// A keyring and policy parsed once; `decode` reuses them for every token.
#[pyclass(frozen, module = "irontoken._native")]
struct JwtVerifier(irontoken::jwt::Verifier);

#[pymethods]
impl JwtVerifier {
    #[new]
    fn new(py: Python<'_>, key: &Bound<'_, PyAny>, policy_json: &str) -> PyResult<Self> {
        let keys = keyring_of(key).map_err(|e| to_py(py, e))?;
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy_json)
            .map_err(|e| to_py(py, e))?;
        irontoken::jwt::Verifier::new(keys, policy)
            .map(JwtVerifier)
            .map_err(|e| to_py(py, e))
    }

    /// Verifies a JWT; returns its claims as a dict.
    #[pyo3(signature = (token, now=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = call(py, || match now {
            Some(t) => self.0.decode_at(token, t),
            None => self.0.decode(token),
        })?;
        to_py_dict(py, &d.claims)
    }

    /// Verifies a JWT; returns (header dict, claims dict).
    #[pyo3(signature = (token, now=None))]
    fn decode_complete<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let d = call(py, || match now {
            Some(t) => self.0.decode_at(token, t),
            None => self.0.decode(token),
        })?;
        Ok((to_py_dict(py, &d.header)?, to_py_dict(py, &d.claims)?))
    }

    /// Verifies a compact JWS; returns (header dict, payload bytes).
    fn verify_jws<'py>(
        &self,
        py: Python<'py>,
        token: &str,
    ) -> PyResult<(Bound<'py, PyDict>, Vec<u8>)> {
        let d = call(py, || self.0.verify_jws(token))?;
        Ok((to_py_dict(py, &d.header)?, d.payload))
    }
}

/// Verifies a JWT with key material parsed for this call; returns (header dict, claims dict).
#[pyfunction]
#[pyo3(signature = (token, key, policy_json, now=None))]
fn jwt_decode<'py>(
    py: Python<'py>,
    token: &str,
    key: &Bound<'_, PyAny>,
    policy_json: &str,
    #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let keys = keyring_of(key).map_err(|e| to_py(py, e))?;
    let policy =
        irontoken::jwt::PolicySettings::policy_from_json(policy_json).map_err(|e| to_py(py, e))?;
    irontoken::jwt::Verifier::new(keys, policy)
        .map(JwtVerifier)
        .map_err(|e| to_py(py, e))?
        .decode_complete(py, token, now)
}

/// A signing key and algorithm parsed once, for many tokens.
#[pyclass(frozen, module = "irontoken._native")]
struct JwtSigner(irontoken::jwt::Signer);

#[pymethods]
impl JwtSigner {
    #[new]
    #[pyo3(signature = (key, algorithm, kid=None))]
    fn new(
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        algorithm: &str,
        kid: Option<String>,
    ) -> PyResult<Self> {
        signer_of(key, algorithm, kid.as_deref())
            .map(JwtSigner)
            .map_err(|e| to_py(py, e))
    }

    /// Signs claims (a JSON object text) with optional extra header JSON.
    #[pyo3(signature = (claims_json, headers_json=None))]
    fn sign(
        &self,
        py: Python<'_>,
        claims_json: &str,
        headers_json: Option<&str>,
    ) -> PyResult<String> {
        call(py, || self.0.sign_json(claims_json, headers_json))
    }
}

/// Signs claims (a JSON object text) into a compact JWT.
#[pyfunction]
#[pyo3(signature = (claims_json, key, algorithm, headers_json=None, kid=None))]
fn jwt_encode(
    py: Python<'_>,
    claims_json: &str,
    key: &Bound<'_, PyAny>,
    algorithm: &str,
    headers_json: Option<&str>,
    kid: Option<String>,
) -> PyResult<String> {
    let signer = signer_of(key, algorithm, kid.as_deref()).map_err(|e| to_py(py, e))?;
    call(py, || signer.sign_json(claims_json, headers_json))
}

/// Rate limiter: GCRA buckets per key and named limit, in this process
/// (default), on a Redis server, or in a manager's store. Limits given to
/// the constructor are parsed once and used by `check(key)`.
#[pyclass(frozen, module = "irontoken._native")]
struct RateLimiter {
    backend: Limiter,
    limits: Option<Arc<[irontoken::ratelimit::Limit]>>,
}

/// Where a `RateLimiter` keeps its buckets.
enum Limiter {
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
    ) -> PyResult<RateDecision> {
        let limits: Arc<[irontoken::ratelimit::Limit]> = match (limits, &self.limits) {
            (Some(l), _) => limits_of(py, l)?.into(),
            (None, Some(l)) => l.clone(),
            (None, None) => {
                return Err(to_py(
                    py,
                    Error::invalid("no limits: give them to RateLimiter(limits=...) or to check()"),
                ));
            }
        };
        if let (Limiter::Shared(s), true) = (&self.backend, consume)
            && let (Some(local), [one]) = (s.local(), &limits[..])
        {
            // One limit in process: checked without any allocation.
            let now = now_ms.unwrap_or_else(irontoken::SystemClock::now_ms);
            let v = local.check_one(key, one, now).map_err(|e| to_py(py, e))?;
            return Ok(RateDecision {
                allowed: v.allowed,
                retry_after_ms: v.retry_after_ms,
                limits,
                first: v,
                rest: Vec::new(),
            });
        }
        let mut verdicts = Vec::with_capacity(limits.len());
        let (allowed, retry_after_ms) = match &self.backend {
            Limiter::Shared(s) if s.is_local() => s
                .decide_into(key, &limits, now_ms, consume, &mut verdicts)
                .map_err(|e| to_py(py, e))?,
            // A round trip to Redis or the database: without the GIL.
            Limiter::Shared(s) => call(py, || {
                s.decide_into(key, &limits, now_ms, consume, &mut verdicts)
            })?,
            Limiter::Manager(tm) => {
                if now_ms.is_some() {
                    return Err(to_py(
                        py,
                        Error::invalid(
                            "now_ms applies to in-process limits only: the manager uses its clock",
                        ),
                    ));
                }
                call(py, || {
                    tm.rate_limit_into(key, &limits, consume, &mut verdicts)
                })?
            }
        };
        let first = verdicts.remove(0);
        Ok(RateDecision {
            allowed,
            retry_after_ms,
            limits,
            first,
            rest: verdicts,
        })
    }
}

/// Limits given as a list of dicts (`name`, `count`, `period_ms`, `burst`),
/// read straight into core's `Limit` (its serde rules: `burst` defaults to
/// `count`, unknown fields refused) without a JSON round trip. Bools are
/// refused where a count is expected, as for every other int argument.
fn limits_of(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<irontoken::ratelimit::Limit>> {
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
            Some(l) => {
                let l = limits_of(py, &l)?;
                if l.is_empty() {
                    return Err(to_py(py, Error::invalid("no limits given")));
                }
                irontoken::ratelimit::Limit::validate_list(&l).map_err(|e| to_py(py, e))?;
                Some(l.into())
            }
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

    /// Counts one request of `key` against every limit, all-or-nothing.
    /// `limits` (list of {"name", "count", "period_ms", "burst"}) defaults to
    /// the constructor's; `now_ms` defaults to the system clock.
    #[pyo3(signature = (key, limits=None, now_ms=None))]
    fn check(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] now_ms: Option<i64>,
    ) -> PyResult<RateDecision> {
        self.decide(py, key, limits.as_ref(), now_ms, true)
    }

    /// Answers as `check` would, without counting the request.
    #[pyo3(signature = (key, limits=None, now_ms=None))]
    fn peek(
        &self,
        py: Python<'_>,
        key: &str,
        limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] now_ms: Option<i64>,
    ) -> PyResult<RateDecision> {
        self.decide(py, key, limits.as_ref(), now_ms, false)
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
struct RateDecision {
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
            _ => Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        }
    }
    /// The decision as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("allowed", self.allowed)?;
        d.set_item("retry_after_ms", self.retry_after_ms)?;
        d.set_item("limits", self.limits(py)?)?;
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
        self.to_dict(py)?.eq(other)
    }
    fn __repr__(&self) -> String {
        format!(
            "RateDecision(allowed={}, retry_after_ms={})",
            if self.allowed { "True" } else { "False" },
            self.retry_after_ms
        )
    }
}

/// Checks shape and checksum of a key without a database (True if it could be one of ours).
#[pyfunction]
fn is_well_formed(key: &str) -> bool {
    irontoken::keys::is_well_formed(key)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TokenManager>()?;
    m.add_class::<KeyRecord>()?;
    m.add_class::<CreatedKey>()?;
    m.add_class::<VerifyResult>()?;
    m.add_class::<AuditEntry>()?;
    m.add_class::<PageResult>()?;
    m.add_function(wrap_pyfunction!(is_well_formed, m)?)?;
    m.add_class::<JwtVerifier>()?;
    m.add_class::<JwtSigner>()?;
    m.add_class::<RateLimiter>()?;
    m.add_class::<RateDecision>()?;
    m.add_function(wrap_pyfunction!(jwt_decode, m)?)?;
    m.add_function(wrap_pyfunction!(jwt_unverified, m)?)?;
    m.add_class::<Jwk>()?;
    m.add_class::<RemoteJwks>()?;
    m.add_function(wrap_pyfunction!(jwt_encode, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SCHEMA_VERSION", irontoken::SCHEMA_VERSION)?;
    Ok(())
}
