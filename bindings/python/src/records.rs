//! Core answers as Python objects: the record classes (`KeyRecord`,
//! `CreatedKey`, `VerifyResult`, `AuditEntry`, `PageResult`) and dicts.

use super::*;

/// A string as Python's `repr` would show it (single quotes).
pub(crate) fn py_repr(s: &str) -> String {
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

pub(crate) fn opt_q(s: Option<&str>) -> String {
    s.map_or_else(|| "None".to_string(), py_repr)
}

/// The stored record of an API key (never the key itself).
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct KeyRecord(pub(crate) CoreRecord);

impl KeyRecord {
    /// `repr()` of a record (also inside a VerifyResult's repr).
    pub(crate) fn repr_of(r: &CoreRecord) -> String {
        format!(
            "KeyRecord(id={}, display_prefix={}, owner={}, name={}, status={})",
            py_repr(&r.id),
            py_repr(&r.display_prefix),
            py_repr(&r.owner),
            py_repr(&r.name),
            py_repr(r.status.as_str())
        )
    }
}

#[pymethods]
impl KeyRecord {
    /// Stable id (UUID).
    #[getter]
    pub(crate) fn id(&self) -> &str {
        &self.0.id
    }
    /// Key prefix, e.g. "itk".
    #[getter]
    pub(crate) fn prefix(&self) -> &str {
        &self.0.prefix
    }
    /// Prefix plus the first body characters.
    #[getter]
    pub(crate) fn display_prefix(&self) -> &str {
        &self.0.display_prefix
    }
    /// Owner of the key.
    #[getter]
    pub(crate) fn owner(&self) -> &str {
        &self.0.owner
    }
    /// Short name.
    #[getter]
    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }
    /// Description.
    #[getter]
    pub(crate) fn description(&self) -> &str {
        &self.0.description
    }
    /// Granted scopes.
    #[getter]
    pub(crate) fn scopes(&self) -> Vec<String> {
        self.0.scopes.clone()
    }
    /// Application metadata (a new dict each time).
    #[getter]
    pub(crate) fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(to_py_dict(py, &self.0.metadata)?.into_any())
    }
    /// Creation time (Unix seconds).
    #[getter]
    pub(crate) fn created_at(&self) -> i64 {
        self.0.created_at
    }
    /// Last change (Unix seconds).
    #[getter]
    pub(crate) fn updated_at(&self) -> i64 {
        self.0.updated_at
    }
    /// Expiry (Unix seconds) or None.
    #[getter]
    pub(crate) fn expires_at(&self) -> Option<i64> {
        self.0.expires_at
    }
    /// Last successful verification (Unix seconds) or None.
    #[getter]
    pub(crate) fn last_used_at(&self) -> Option<i64> {
        self.0.last_used_at
    }
    /// Number of successful verifications.
    #[getter]
    pub(crate) fn usage_count(&self) -> u64 {
        self.0.usage_count
    }
    /// False while disabled.
    #[getter]
    pub(crate) fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Revocation time or None.
    #[getter]
    pub(crate) fn revoked_at(&self) -> Option<i64> {
        self.0.revoked_at
    }
    /// Revocation reason or None.
    #[getter]
    pub(crate) fn revoked_reason(&self) -> Option<&str> {
        self.0.revoked_reason.as_deref()
    }
    /// 1 + number of rotations.
    #[getter]
    pub(crate) fn version(&self) -> u32 {
        self.0.version
    }
    /// Id of the key this one replaced.
    #[getter]
    pub(crate) fn rotated_from(&self) -> Option<&str> {
        self.0.rotated_from.as_deref()
    }
    /// Id of the key that replaced this one.
    #[getter]
    pub(crate) fn rotated_to(&self) -> Option<&str> {
        self.0.rotated_to.as_deref()
    }
    /// Rate limits applied by verify_key_with (list of dicts).
    #[getter]
    pub(crate) fn rate_limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_serialized(py, &self.0.rate_limits)
    }
    /// Seconds after creation at which the key is due for rotation (None: the manager's default).
    #[getter]
    pub(crate) fn rotation_period(&self) -> Option<i64> {
        self.0.rotation_period
    }
    /// Models the key may call (wildcard patterns; empty: any).
    #[getter]
    pub(crate) fn models(&self) -> Vec<String> {
        self.0.models.clone()
    }
    /// Most tokens one request may declare (None: no limit).
    #[getter]
    pub(crate) fn max_tokens_per_request(&self) -> Option<u64> {
        self.0.max_tokens_per_request
    }
    /// "active", "disabled", "revoked" or "expired" (when read).
    #[getter]
    pub(crate) fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// All fields as a dict.
    pub(crate) fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_serialized(py, &self.0)
    }
    /// The field names: with `__getitem__`, `dict(record)` is `to_dict()`,
    /// so FastAPI's `jsonable_encoder` returns a record as JSON.
    pub(crate) fn keys(&self) -> Vec<&'static str> {
        RECORD_FIELDS.to_vec()
    }
    /// One field by name (its getter: `dict(record)` converts each field once).
    pub(crate) fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        name: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !RECORD_FIELDS.contains(&name) {
            return Err(pyo3::exceptions::PyKeyError::new_err(name.to_string()));
        }
        slf.getattr(name)
    }
    /// pydantic (and FastAPI's response models): an instance validates as
    /// it is and serializes as `to_dict()`.
    #[classmethod]
    pub(crate) fn __get_pydantic_core_schema__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        _source: &Bound<'py, PyAny>,
        _handler: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        pydantic_schema(cls)
    }
    pub(crate) fn __repr__(&self) -> String {
        KeyRecord::repr_of(&self.0)
    }
    pub(crate) fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<KeyRecord>().is_ok_and(|o| o.get().0 == self.0)
    }
}

/// A key just created or rotated: `.key` is the plaintext, available only now.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct CreatedKey {
    pub(crate) key: String,
    pub(crate) record: Py<KeyRecord>,
    pub(crate) display_prefix: String,
}

impl CreatedKey {
    pub(crate) fn new(py: Python<'_>, c: CoreCreated) -> PyResult<Self> {
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
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
    /// The stored record.
    #[getter]
    pub(crate) fn record(&self, py: Python<'_>) -> Py<KeyRecord> {
        self.record.clone_ref(py)
    }
    /// `{"key": ..., "record": {...}}`: what a route creating a key returns
    /// to its owner, once (the plaintext is in it, on purpose).
    pub(crate) fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("key", &self.key)?;
        d.set_item("record", self.record.get().to_dict(py)?)?;
        Ok(d)
    }
    /// `"key"` and `"record"`: with `__getitem__`, `dict(created)` is `to_dict()`.
    pub(crate) fn keys(&self) -> [&'static str; 2] {
        ["key", "record"]
    }
    pub(crate) fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        match name {
            "key" => Ok(self.key.as_str().into_pyobject(py)?.into_any()),
            "record" => self.record.get().to_dict(py),
            _ => Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        }
    }
    /// pydantic (and FastAPI's response models): serializes as `to_dict()`.
    #[classmethod]
    pub(crate) fn __get_pydantic_core_schema__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        _source: &Bound<'py, PyAny>,
        _handler: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        pydantic_schema(cls)
    }
    pub(crate) fn __repr__(&self) -> String {
        format!(
            "CreatedKey(key='{}…', record={})",
            self.display_prefix,
            self.record.get().__repr__()
        )
    }
}

/// The fields of a record as `to_dict` names them (each has a getter; a
/// test checks the two agree).
pub(crate) const RECORD_FIELDS: [&str; 24] = [
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
    "models",
    "max_tokens_per_request",
    "rotation_period",
    "status",
];

/// A pydantic core schema for a record class: instances validate as they
/// are and serialize through their `to_dict` (pydantic is imported only here).
pub(crate) fn pydantic_schema<'py>(
    cls: &Bound<'py, pyo3::types::PyType>,
) -> PyResult<Bound<'py, PyAny>> {
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
pub(crate) struct VerifyResult {
    pub(crate) valid: bool,
    pub(crate) reason: &'static str,
    pub(crate) core_record: Option<irontoken::KeyRecord>,
    pub(crate) record: pyo3::sync::PyOnceLock<Py<KeyRecord>>,
    pub(crate) rate_limit: Option<Py<PyAny>>,
    pub(crate) quota: Option<Py<PyAny>>,
}

#[pymethods]
impl VerifyResult {
    /// True only when reason == "VALID".
    #[getter]
    pub(crate) fn valid(&self) -> bool {
        self.valid
    }
    /// "VALID", "MALFORMED", "NOT_FOUND", "DISABLED", "REVOKED", "EXPIRED" or "INSUFFICIENT_SCOPE".
    #[getter]
    pub(crate) fn reason(&self) -> &'static str {
        self.reason
    }
    /// The key's record when the key was found, else None.
    #[getter]
    pub(crate) fn record(&self, py: Python<'_>) -> PyResult<Option<Py<KeyRecord>>> {
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
    pub(crate) fn rate_limit(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.rate_limit.as_ref().map(|r| r.clone_ref(py))
    }
    /// The quota decision (dict) when quota was consumed, else None.
    #[getter]
    pub(crate) fn quota(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.quota.as_ref().map(|r| r.clone_ref(py))
    }
    pub(crate) fn __bool__(&self) -> bool {
        self.valid
    }
    pub(crate) fn __repr__(&self) -> String {
        match &self.core_record {
            Some(r) => format!(
                "VerifyResult(valid={}, reason={}, record={})",
                if self.valid { "True" } else { "False" },
                py_repr(self.reason),
                KeyRecord::repr_of(r)
            ),
            None => format!(
                "VerifyResult(valid={}, reason={}, record=None)",
                if self.valid { "True" } else { "False" },
                py_repr(self.reason)
            ),
        }
    }
}

impl VerifyResult {
    pub(crate) fn new(py: Python<'_>, v: Verification) -> PyResult<Self> {
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
pub(crate) struct AuditEntry(pub(crate) AuditEvent);

#[pymethods]
impl AuditEntry {
    /// Increasing id.
    #[getter]
    pub(crate) fn id(&self) -> i64 {
        self.0.id
    }
    /// Unix seconds.
    #[getter]
    pub(crate) fn at(&self) -> i64 {
        self.0.at
    }
    /// E.g. "key.revoke".
    #[getter]
    pub(crate) fn action(&self) -> &str {
        &self.0.action
    }
    /// The key concerned, if known.
    #[getter]
    pub(crate) fn key_id(&self) -> Option<&str> {
        self.0.key_id.as_deref()
    }
    /// The key's display prefix, if known.
    #[getter]
    pub(crate) fn display_prefix(&self) -> Option<&str> {
        self.0.display_prefix.as_deref()
    }
    /// Who acted, if given.
    #[getter]
    pub(crate) fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
    /// "ok" or the failed verification's reason.
    #[getter]
    pub(crate) fn outcome(&self) -> &str {
        &self.0.outcome
    }
    /// Extra details (dict) or None.
    #[getter]
    pub(crate) fn detail<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.0
            .detail
            .as_ref()
            .map(|d| to_py_value(py, d))
            .transpose()
    }
    pub(crate) fn __repr__(&self) -> String {
        format!(
            "AuditEntry(id={}, at={}, action={}, key_id={}, outcome={})",
            self.0.id,
            self.0.at,
            py_repr(&self.0.action),
            opt_q(self.0.key_id.as_deref()),
            py_repr(&self.0.outcome)
        )
    }
}

/// A page of results; pass `next_cursor` back as `cursor` for the next page.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct PageResult {
    pub(crate) items: Py<PyList>,
    pub(crate) next_cursor: Option<String>,
}

#[pymethods]
impl PageResult {
    /// The records of this page.
    #[getter]
    pub(crate) fn items(&self, py: Python<'_>) -> Py<PyList> {
        self.items.clone_ref(py)
    }
    /// Cursor of the next page, None on the last one.
    #[getter]
    pub(crate) fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }
    pub(crate) fn __len__(&self, py: Python<'_>) -> usize {
        self.items.bind(py).len()
    }
    pub(crate) fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.items.bind(py).try_iter().map(|i| i.into_any())
    }
    pub(crate) fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Page(items=<{} items>, next_cursor={})",
            self.items.bind(py).len(),
            opt_q(self.next_cursor.as_deref())
        )
    }
}

pub(crate) fn page<T, P: pyo3::PyClass + Into<PyClassInitializer<P>>>(
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

/// Any serializable record as the Python object `json.loads` would give.
pub(crate) fn to_py_serialized<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    // Straight to Python objects (pythonize), not through a serde_json::Value.
    pythonize::pythonize(py, v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The keys of a quota as Python sees it, in order (see `decision_dict`).
pub(crate) const QUOTA_FIELDS: [&str; 12] = [
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
pub(crate) fn quota_name<'py>(py: Python<'py>, name: &str) -> Bound<'py, pyo3::types::PyString> {
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
pub(crate) fn decision_dict<'py>(
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

/// A page of serializable records as a `PageResult` of dicts.
pub(crate) fn dict_page<T: serde::Serialize>(py: Python<'_>, p: Page<T>) -> PyResult<PageResult> {
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
pub(crate) fn to_py_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
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

pub(crate) fn to_py_dict<'py>(
    py: Python<'py>,
    m: &Map<String, Value>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, to_py_value(py, v)?)?;
    }
    Ok(d)
}
