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
use pyo3::types::{PyDict, PyList, PyType};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

mod jwt;
mod keys;
mod ratelimit;
mod usage;

use jwt::*;
use ratelimit::*;

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
            format!("expected an int, got {}", type_name(ob))
        };
        to_py(py, Error::invalid(msg))
    })
}

/// The name of `ob`'s type, for an error message.
fn type_name(ob: &Bound<'_, PyAny>) -> String {
    ob.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
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

/// A list-of-strings argument (scopes, algorithms...): a `str` is refused
/// with a TypeError saying so (iterating it would give its characters;
/// PyO3's own message is "Can't extract `str` to `Vec`"), as is any other
/// non-sequence or an item that is not a `str`.
fn strings(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if ob.is_instance_of::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} must be a list of strings, not a str (put a single value in a list)"
        )));
    }
    ob.extract::<Vec<String>>().map_err(|e| {
        if !e.is_instance_of::<pyo3::exceptions::PyTypeError>(ob.py()) {
            return e; // a str that is not valid text (a lone surrogate)
        }
        let bad = ob.try_iter().ok().and_then(|mut it| {
            it.find_map(|i| {
                i.ok()
                    .filter(|i| !i.is_instance_of::<pyo3::types::PyString>())
            })
        });
        pyo3::exceptions::PyTypeError::new_err(match bad {
            Some(item) => format!(
                "{what} must be a list of strings, not a list holding {}",
                type_name(&item)
            ),
            None => format!("{what} must be a list of strings, not {}", type_name(ob)),
        })
    })
}

/// [`strings`] for an optional argument (`None` stays `None`).
fn opt_strings(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<Vec<String>>> {
    if ob.is_none() {
        Ok(None)
    } else {
        strings(ob, what).map(Some)
    }
}

/// One `from_py_with` function per optional list-of-strings argument,
/// naming it in the error ([`strings`]).
macro_rules! list_args {
    ($($f:ident => $what:literal),* $(,)?) => {$(
        #[doc = concat!("The optional `", $what, "` argument (see [`strings`]).")]
        fn $f(ob: &Bound<'_, PyAny>) -> PyResult<Option<Vec<String>>> {
            opt_strings(ob, $what)
        }
    )*};
}

list_args!(
    scopes_arg => "scopes",
    required_scopes_arg => "required_scopes",
    audience_arg => "audience",
    required_arg => "required",
    group_by_arg => "group_by",
    permissions_arg => "permissions",
);

/// The `algorithms` argument (see [`strings`]).
fn algorithms_arg(ob: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    strings(ob, "algorithms")
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
    /// Seconds after creation at which the key is due for rotation (None: the manager's default).
    #[getter]
    fn rotation_period(&self) -> Option<i64> {
        self.0.rotation_period
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
    /// The field names: with `__getitem__`, `dict(record)` is `to_dict()`,
    /// so FastAPI's `jsonable_encoder` returns a record as JSON.
    fn keys(&self) -> Vec<&'static str> {
        RECORD_FIELDS.to_vec()
    }
    /// One field by name (its getter: `dict(record)` converts each field once).
    fn __getitem__<'py>(slf: &Bound<'py, Self>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if !RECORD_FIELDS.contains(&name) {
            return Err(pyo3::exceptions::PyKeyError::new_err(name.to_string()));
        }
        slf.getattr(name)
    }
    /// pydantic (and FastAPI's response models): an instance validates as
    /// it is and serializes as `to_dict()`.
    #[classmethod]
    fn __get_pydantic_core_schema__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        _source: &Bound<'py, PyAny>,
        _handler: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        pydantic_schema(cls)
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
    /// `{"key": ..., "record": {...}}`: what a route creating a key returns
    /// to its owner, once (the plaintext is in it, on purpose).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("key", &self.key)?;
        d.set_item("record", self.record.get().to_dict(py)?)?;
        Ok(d)
    }
    /// `"key"` and `"record"`: with `__getitem__`, `dict(created)` is `to_dict()`.
    fn keys(&self) -> [&'static str; 2] {
        ["key", "record"]
    }
    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match name {
            "key" => Ok(self.key.as_str().into_pyobject(py)?.into_any()),
            "record" => self.record.get().to_dict(py),
            _ => Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        }
    }
    /// pydantic (and FastAPI's response models): serializes as `to_dict()`.
    #[classmethod]
    fn __get_pydantic_core_schema__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        _source: &Bound<'py, PyAny>,
        _handler: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        pydantic_schema(cls)
    }
    fn __repr__(&self) -> String {
        format!(
            "CreatedKey(key='{}…', record={})",
            self.display_prefix,
            self.record.get().__repr__()
        )
    }
}

/// The fields of a record as `to_dict` names them (each has a getter; a
/// test checks the two agree).
const RECORD_FIELDS: [&str; 22] = [
    "id",
    "prefix",
    "display_prefix",
    "owner",
    "name",
    "description",
    "scopes",
    "metadata",
    "created_at",
    "updated_at",
    "expires_at",
    "last_used_at",
    "usage_count",
    "enabled",
    "revoked_at",
    "revoked_reason",
    "version",
    "rotated_from",
    "rotated_to",
    "rate_limits",
    "rotation_period",
    "status",
];

/// A pydantic core schema for a record class: instances validate as they
/// are and serialize through their `to_dict` (pydantic is imported only here).
fn pydantic_schema<'py>(cls: &Bound<'py, pyo3::types::PyType>) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    let cs = py.import("pydantic_core")?.getattr("core_schema")?;
    let serialize = cs.call_method1(
        "plain_serializer_function_ser_schema",
        (cls.getattr("to_dict")?,),
    )?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("serialization", serialize)?;
    cs.call_method("is_instance_schema", (cls,), Some(&kwargs))
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
    #[pyo3(signature = (path, *, durability=None, busy_timeout_ms=None, flush_interval_ms=None, flush_threshold=None, manual_clock_start=None, master_key=None, rsa_key_bits=None, create=None, key_cache_size=None, page_cache_mib=None, mmap_mib=None, rate_limit_store=None, rate_limit_fail_open=None, rate_limit_timeout_ms=None, strict=None, default_rotation_period=None, storage_timeout_ms=None, max_staleness_ms=None, verify_fail_open=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    ) -> PyResult<Self> {
        let settings = OpenSettings {
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
    fn from_env<'py>(
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

/// The keys of a quota as Python sees it, in order (see `decision_dict`).
const QUOTA_FIELDS: [&str; 12] = [
    "scope",
    "subject",
    "metric",
    "period",
    "limit",
    "used",
    "reserved",
    "remaining",
    "window_start",
    "reset_at",
    "refill_amount",
    "refill_period",
];

/// A quota's scope, metric or period name as a Python string, made once
/// per interpreter for each of the few names there are.
fn quota_name<'py>(py: Python<'py>, name: &str) -> Bound<'py, pyo3::types::PyString> {
    use pyo3::intern;
    let known = match name {
        "key" => intern!(py, "key"),
        "owner" => intern!(py, "owner"),
        "requests" => intern!(py, "requests"),
        "tokens" => intern!(py, "tokens"),
        "cost" => intern!(py, "cost"),
        "day" => intern!(py, "day"),
        "month" => intern!(py, "month"),
        "none" => intern!(py, "none"),
        other => return pyo3::types::PyString::new(py, other),
    };
    known.clone()
}

/// A quota decision as the dict `to_py_serialized` would give, built with
/// interned keys (the hot path of `consume_quota`: a third faster than the
/// generic conversion). `test_usage.py` checks the keys against the types.
fn decision_dict<'py>(
    py: Python<'py>,
    d: &irontoken::QuotaDecision,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::intern;
    // A quota's dict copies a template holding its keys (sized already, in
    // order) and replaces the values: no dict grows key by key per answer.
    static TEMPLATE: pyo3::sync::PyOnceLock<Py<PyDict>> = pyo3::sync::PyOnceLock::new();
    let template = TEMPLATE.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let t = PyDict::new(py);
        for k in QUOTA_FIELDS {
            t.set_item(pyo3::types::PyString::intern(py, k), py.None())?;
        }
        Ok(t.unbind())
    })?;
    let quota = |q: &irontoken::Quota| -> PyResult<Bound<'py, PyDict>> {
        let o = template.bind(py).copy()?;
        o.set_item(intern!(py, "scope"), quota_name(py, q.scope.as_str()))?;
        o.set_item(intern!(py, "subject"), &q.subject)?;
        o.set_item(intern!(py, "metric"), quota_name(py, q.metric.as_str()))?;
        o.set_item(intern!(py, "period"), quota_name(py, q.period.as_str()))?;
        o.set_item(intern!(py, "limit"), q.limit)?;
        o.set_item(intern!(py, "used"), q.used)?;
        o.set_item(intern!(py, "reserved"), q.reserved)?;
        o.set_item(intern!(py, "remaining"), q.remaining)?;
        o.set_item(intern!(py, "window_start"), q.window_start)?;
        o.set_item(intern!(py, "reset_at"), q.reset_at)?;
        o.set_item(intern!(py, "refill_amount"), q.refill_amount)?;
        o.set_item(
            intern!(py, "refill_period"),
            q.refill_period.map(|p| quota_name(py, p.as_str())),
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

/// An API key from Python: a `str` read in place (no copy), or the raw
/// bytes of a header (`bytes`, `bytearray`) through
/// [`irontoken::keys::key_from_bytes`] (not UTF-8: answered MALFORMED). A
/// `str` with lone surrogates is read the same way (U+FFFD in place).
enum KeyText {
    Str(pyo3::pybacked::PyBackedStr),
    Owned(String),
}

impl std::ops::Deref for KeyText {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            KeyText::Str(s) => s,
            KeyText::Owned(s) => s,
        }
    }
}

fn key_text(ob: &Bound<'_, PyAny>) -> PyResult<KeyText> {
    // One type check per call; a failed extraction (an error object) only
    // for a str with lone surrogates.
    if let Ok(s) = ob.cast::<pyo3::types::PyString>() {
        return Ok(match pyo3::pybacked::PyBackedStr::try_from(s.clone()) {
            Ok(text) => KeyText::Str(text),
            Err(_) => KeyText::Owned(s.to_string_lossy().into_owned()),
        });
    }
    if let Ok(b) = ob.extract::<pyo3::pybacked::PyBackedBytes>() {
        return Ok(KeyText::Owned(
            irontoken::keys::key_from_bytes(&b).into_owned(),
        ));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "key must be str or bytes, not {}",
        ob.get_type().name()?
    )))
}

/// Checks shape and checksum of a key without a database (True if it could be one of ours).
#[pyfunction]
fn is_well_formed(#[pyo3(from_py_with = key_text)] key: KeyText) -> bool {
    irontoken::keys::is_well_formed(&key)
}

/// Whether a query parameter looks like a credential (its name, or a value
/// shaped like a key or a JWT): the adapters' one rule, from core.
#[pyfunction]
fn is_credential_param(name: &str, value: &str, header: &str) -> bool {
    irontoken::keys::is_credential_param(name, value, header)
}

/// Whether a key refused with `reason` may be a key of the old system
/// (core's rule: unknown to irontoken, a legacy key's shape, not our format).
#[pyfunction]
fn may_be_legacy(key: &str, reason: &str) -> bool {
    irontoken::VerifyReason::from_code(reason)
        .is_some_and(|r| irontoken::keys::may_be_legacy(key, r))
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
    m.add_function(wrap_pyfunction!(is_credential_param, m)?)?;
    m.add_function(wrap_pyfunction!(may_be_legacy, m)?)?;
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
