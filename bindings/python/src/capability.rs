//! Capability tokens (Biscuit): `TokenManager.mint_capability`,
//! `authorize`, `revoke_capability`, the root keys, and the module-level
//! offline `attenuate`, `seal` and `inspect_capability`.

use super::*;
use irontoken::capability;

/// The answer of `TokenManager.authorize`: truthy when allowed; fields as
/// attributes or items (`a.reason`, `a["reason"]`), `to_dict()` for a dict.
#[pyclass(module = "irontoken", frozen)]
pub(crate) struct Authorization {
    allowed: bool,
    fields: Py<PyDict>,
}

#[pymethods]
impl Authorization {
    /// Whether the request may go ahead (and, with a cost, was charged).
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }
    /// `OK`, or the stable code of the refusal.
    #[getter]
    fn reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "reason")
    }
    /// What failed, for logs (never a secret).
    #[getter]
    fn message<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "message")
    }
    /// The API key the token acts for.
    #[getter]
    fn key_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "key_id")
    }
    /// That key's owner.
    #[getter]
    fn owner<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "owner")
    }
    /// The tools every typed block allows.
    #[getter]
    fn tools<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "tools")
    }
    /// The resources every typed block allows (None: any).
    #[getter]
    fn resources<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "resources")
    }
    /// The earliest expiry in the chain (Unix seconds).
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "expires_at")
    }
    /// The smallest ceiling in the chain.
    #[getter]
    fn ceiling_micros<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "ceiling_micros")
    }
    /// What can still be charged after this request (None: unbounded).
    #[getter]
    fn remaining_micros<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "remaining_micros")
    }
    /// The budget lease charges are taken from.
    #[getter]
    fn lease_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "lease_id")
    }
    /// What this request charged.
    #[getter]
    fn charged_micros<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "charged_micros")
    }
    /// Blocks in the chain.
    #[getter]
    fn blocks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__getitem__(py, "blocks")
    }
    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.fields
            .bind(py)
            .get_item(name)?
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))
    }
    fn __bool__(&self) -> bool {
        self.allowed
    }
    /// The field names: with `__getitem__`, `dict(a)` is `to_dict()`.
    fn keys<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.fields.bind(py).keys()
    }
    /// The answer as a plain dict (JSON-ready).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.fields.bind(py).copy()
    }
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(o) = other.cast::<Authorization>() {
            return self.fields.bind(py).eq(o.get().fields.bind(py));
        }
        self.fields.bind(py).eq(other)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let d = self.fields.bind(py);
        let reason: String = d
            .get_item("reason")?
            .map(|r| r.extract())
            .transpose()?
            .unwrap_or_default();
        Ok(format!(
            "Authorization(allowed={}, reason={})",
            if self.allowed { "True" } else { "False" },
            py_repr(&reason)
        ))
    }
}

#[pymethods]
impl TokenManager {
    /// Mints a capability token (Biscuit, base64url) for an active key:
    /// the tools it may call, for how long, on which resources, with what
    /// spending ceiling, charged to which budget lease.
    #[pyo3(signature = (key_id, *, tools, ttl_seconds, ceiling_micros=None, resources=None, lease_id=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn mint_capability(
        &self,
        py: Python<'_>,
        key_id: String,
        tools: Bound<'_, PyAny>,
        #[pyo3(from_py_with = int::<i64>)] ttl_seconds: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] ceiling_micros: Option<i64>,
        resources: Option<Bound<'_, PyAny>>,
        lease_id: Option<String>,
        actor: Option<String>,
    ) -> PyResult<String> {
        let tm = self.core(py)?;
        let m = irontoken::MintCapability {
            key_id,
            tools: strings(&tools, "tools")?,
            ttl_seconds,
            ceiling_micros: ceiling_micros
                .map(|c| non_negative(py, c, "ceiling_micros"))
                .transpose()?,
            resources: resources.map(|r| strings(&r, "resources")).transpose()?,
            lease_id,
            actor,
        };
        call(py, || tm.mint_capability(&m))
    }

    /// Decides whether `token` allows calling `tool` (on `resource`, in
    /// `session_id`), charging `cost_micros` when it does. A refusal is an
    /// answer (`allowed` False with a stable `reason`), not an exception.
    #[pyo3(signature = (token, *, tool, resource=None, cost_micros=0, session_id=None))]
    fn authorize(
        &self,
        py: Python<'_>,
        token: &str,
        tool: String,
        resource: Option<String>,
        #[pyo3(from_py_with = int::<i64>)] cost_micros: i64,
        session_id: Option<String>,
    ) -> PyResult<Authorization> {
        let tm = self.core(py)?;
        let req = irontoken::CapabilityRequest {
            tool,
            resource,
            cost_micros: non_negative(py, cost_micros, "cost_micros")?,
            session_id,
        };
        let a = call(py, || tm.authorize(token, &req))?;
        let fields = to_py_serialized(py, &a)?.cast_into::<PyDict>()?.unbind();
        Ok(Authorization {
            allowed: a.allowed,
            fields,
        })
    }

    /// Revokes `token`'s last block: it and every token attenuated from it
    /// are refused from the next call on, in every process. Returns the
    /// revocation id (hex).
    #[pyo3(signature = (token, *, actor=None))]
    fn revoke_capability(
        &self,
        py: Python<'_>,
        token: &str,
        actor: Option<&str>,
    ) -> PyResult<String> {
        let tm = self.core(py)?;
        call(py, || tm.revoke_capability(token, actor))
    }

    /// Revokes a block by revocation id (hex): every token holding it is
    /// refused. True if it was not revoked before.
    #[pyo3(signature = (revocation_id, *, actor=None))]
    fn revoke_capability_id(
        &self,
        py: Python<'_>,
        revocation_id: &str,
        actor: Option<&str>,
    ) -> PyResult<bool> {
        let tm = self.core(py)?;
        call(py, || tm.revoke_capability_id(revocation_id, actor))
    }

    /// The active root's public key, `ed25519/<hex>` (created on first use).
    fn capability_public_key(&self, py: Python<'_>) -> PyResult<String> {
        let tm = self.core(py)?;
        call(py, || tm.capability_public_key())
    }

    /// Every root public key that verifies now, `ed25519/<hex>`, oldest first.
    fn capability_public_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let tm = self.core(py)?;
        call(py, || {
            Ok(tm
                .capability_public_keys()?
                .into_iter()
                .map(|r| r.public_key)
                .collect())
        })
    }

    /// Claims the one-time id `jti` of a token expiring at `expires_at`:
    /// True the first time, False for every later claim of the same id, in
    /// every process and host on this store (or the Redis of rate limits).
    #[pyo3(signature = (jti, *, expires_at))]
    fn claim_jti(
        &self,
        py: Python<'_>,
        jti: &str,
        #[pyo3(from_py_with = int::<i64>)] expires_at: i64,
    ) -> PyResult<bool> {
        let tm = self.core(py)?;
        call(py, || tm.claim_jti(jti, expires_at))
    }

    /// Every root key that verifies now, with its id, status and window.
    fn capability_roots<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.capability_public_keys())
    }

    /// Replaces the active capability root; the previous one verifies for
    /// `overlap_seconds` more (0: its tokens are refused at once).
    #[pyo3(signature = (*, overlap_seconds=86400, actor=None))]
    fn rotate_capability_key<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = int::<i64>)] overlap_seconds: i64,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.rotate_capability_key(overlap_seconds, actor))
    }
}

/// Narrows a capability token offline (no store, no key): the result allows
/// at most what `token` allows. `datalog` appends raw Datalog to the block.
#[pyfunction]
#[pyo3(signature = (token, *, tools=None, ceiling_micros=None, ttl_seconds=None, resources=None, session_id=None, datalog=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn attenuate(
    py: Python<'_>,
    token: &str,
    tools: Option<Bound<'_, PyAny>>,
    #[pyo3(from_py_with = opt_int::<i64>)] ceiling_micros: Option<i64>,
    #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    resources: Option<Bound<'_, PyAny>>,
    session_id: Option<String>,
    datalog: Option<String>,
) -> PyResult<String> {
    let a = irontoken::Attenuation {
        tools: tools.map(|t| strings(&t, "tools")).transpose()?,
        ceiling_micros: ceiling_micros
            .map(|c| non_negative(py, c, "ceiling_micros"))
            .transpose()?,
        ttl_seconds,
        resources: resources.map(|r| strings(&r, "resources")).transpose()?,
        session_id,
        datalog,
    };
    call(py, || capability::attenuate(token, &a))
}

/// Seals a capability token: it authorizes as before, and no block can be
/// appended any more.
#[pyfunction]
pub(crate) fn seal(py: Python<'_>, token: &str) -> PyResult<String> {
    call(py, || capability::seal(token))
}

/// What a capability token states, unverified: blocks (Datalog), revocation
/// ids, sealed, and the limits its typed blocks give.
#[pyfunction]
pub(crate) fn inspect_capability<'py>(py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
    call_py(py, || capability::inspect(token))
}
