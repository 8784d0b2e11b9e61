//! TokenManager methods on API keys: create (one or many), verify (plain
//! and with limits), get, list, update, disable, enable, revoke, rotate,
//! delete, and the audit trail.

use super::*;

#[pymethods]
impl TokenManager {
    /// Creates a key; the returned `.key` is the only time the plaintext exists.
    #[pyo3(signature = (owner, *, name=None, description=None, scopes=None, metadata=None, expires_at=None, expires_in=None, prefix=None, rate_limits=None, rotation_period=None, models=None, max_tokens_per_request=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_key(
        &self,
        py: Python<'_>,
        owner: String,
        name: Option<String>,
        description: Option<String>,
        #[pyo3(from_py_with = scopes_arg)] scopes: Option<Vec<String>>,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_at: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_in: Option<i64>,
        prefix: Option<String>,
        rate_limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] rotation_period: Option<i64>,
        #[pyo3(from_py_with = models_arg)] models: Option<Vec<String>>,
        #[pyo3(from_py_with = opt_int::<u64>)] max_tokens_per_request: Option<u64>,
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
            rotation_period,
            models: models.unwrap_or_default(),
            max_tokens_per_request,
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

    /// Imports a key from another system, by plaintext (`key`) or SHA-256
    /// (`key_hash`: 64 hex or 44 base64 characters); a key not in
    /// irontoken's format becomes a legacy key, verified by its hash.
    #[pyo3(signature = (key=None, *, key_hash=None, owner, name=None, description=None, scopes=None, metadata=None, expires_at=None, display_prefix=None, rate_limits=None, legacy_id=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn import_key(
        &self,
        py: Python<'_>,
        key: Option<String>,
        key_hash: Option<String>,
        owner: String,
        name: Option<String>,
        description: Option<String>,
        #[pyo3(from_py_with = scopes_arg)] scopes: Option<Vec<String>>,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_at: Option<i64>,
        display_prefix: Option<String>,
        rate_limits: Option<Bound<'_, PyAny>>,
        legacy_id: Option<String>,
        actor: Option<String>,
    ) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        let metadata = metadata
            .map(|m| to_object(py, &m, "metadata"))
            .transpose()?;
        let req = irontoken::ImportKey {
            key,
            key_hash,
            owner,
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            scopes: scopes.unwrap_or_default(),
            metadata,
            expires_at,
            display_prefix,
            rate_limits: rate_limits
                .map(|l| from_py(py, &l, "rate_limits"))
                .transpose()?
                .unwrap_or_default(),
            legacy_id,
            actor,
        };
        Ok(KeyRecord(call(py, move || tm.import_key(&req))?))
    }

    /// Imports many keys in one transaction: all of them or none (the first
    /// bad entry's index is in the error). Each entry is a dict with the
    /// keyword arguments of `import_key`. At most 100 000 per call.
    fn import_keys(&self, py: Python<'_>, keys: Bound<'_, PyAny>) -> PyResult<Vec<KeyRecord>> {
        let tm = self.core(py)?;
        let reqs: Vec<irontoken::ImportKey> = from_py(py, &keys, "keys")?;
        let records = call(py, move || tm.import_keys(&reqs))?;
        Ok(records.into_iter().map(KeyRecord).collect())
    }

    /// Verifies a key; a refusal is a result with `valid=False` and a reason, not an exception.
    #[pyo3(signature = (key, required_scopes=None))]
    fn verify_key(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = key_text)] key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
    ) -> PyResult<VerifyResult> {
        let tm = self.core(py)?;
        let scopes = required_scopes.unwrap_or_default();
        let v = call(py, || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.verify_key(&key, &s)
        })?;
        VerifyResult::new(py, v)
    }

    /// `verify_key` if it needs no network round trip (always on SQLite; on
    /// PostgreSQL when the key is in this process's caches), else None with
    /// nothing recorded: for event loops (AsyncTokenManager uses it).
    #[pyo3(signature = (key, required_scopes=None))]
    fn try_verify_key(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = key_text)] key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
    ) -> PyResult<Option<VerifyResult>> {
        let tm = self.core(py)?;
        let scopes = required_scopes.unwrap_or_default();
        let v = call(py, || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.try_verify_key(&key, &s)
        })?;
        v.map(|v| VerifyResult::new(py, v)).transpose()
    }

    /// The record of key `key_id`.
    fn get_key(&self, py: Python<'_>, key_id: &str) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        Ok(KeyRecord(call(py, || tm.get_key(key_id))?))
    }

    /// One page of keys, oldest first.
    #[pyo3(signature = (*, owner=None, status=None, prefix=None, limit=None, cursor=None))]
    #[allow(clippy::too_many_arguments)]
    fn list_keys(
        &self,
        py: Python<'_>,
        owner: Option<String>,
        status: Option<&str>,
        prefix: Option<String>,
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
            prefix,
            limit,
            cursor,
        };
        let p = call(py, || tm.list_keys(&f))?;
        page(py, p, KeyRecord)
    }

    /// Changes descriptive fields; `clear_expiry=True` removes the expiry.
    #[pyo3(signature = (key_id, *, name=None, description=None, scopes=None, metadata=None, expires_at=None, clear_expiry=false, rate_limits=None, rotation_period=None, clear_rotation_period=false, models=None, max_tokens_per_request=None, clear_max_tokens_per_request=false, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn update_key(
        &self,
        py: Python<'_>,
        key_id: &str,
        name: Option<String>,
        description: Option<String>,
        #[pyo3(from_py_with = scopes_arg)] scopes: Option<Vec<String>>,
        metadata: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] expires_at: Option<i64>,
        clear_expiry: bool,
        rate_limits: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<i64>)] rotation_period: Option<i64>,
        clear_rotation_period: bool,
        #[pyo3(from_py_with = models_arg)] models: Option<Vec<String>>,
        #[pyo3(from_py_with = opt_int::<u64>)] max_tokens_per_request: Option<u64>,
        clear_max_tokens_per_request: bool,
        actor: Option<String>,
    ) -> PyResult<KeyRecord> {
        let tm = self.core(py)?;
        let expiry =
            KeyUpdate::expiry_change(expires_at, clear_expiry).map_err(|e| to_py(py, e))?;
        let period =
            KeyUpdate::change_of(rotation_period, clear_rotation_period, "rotation period")
                .map_err(|e| to_py(py, e))?;
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
            rotation_period: period,
            models,
            max_tokens_per_request: KeyUpdate::cleared(
                max_tokens_per_request,
                clear_max_tokens_per_request,
                "max_tokens_per_request",
            )
            .map_err(|e| to_py(py, e))?,
            actor,
        };
        Ok(KeyRecord(call(py, || tm.update_key(key_id, &u))?))
    }

    /// Sets an owner's model policy (replacing any): every key of the owner
    /// is held to it as well as to its own (both allow-lists, the lower
    /// ceiling).
    #[pyo3(signature = (owner, *, models=None, max_tokens_per_request=None, actor=None))]
    fn set_owner_policy<'py>(
        &self,
        py: Python<'py>,
        owner: String,
        #[pyo3(from_py_with = models_arg)] models: Option<Vec<String>>,
        #[pyo3(from_py_with = opt_int::<u64>)] max_tokens_per_request: Option<u64>,
        actor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let spec = irontoken::OwnerPolicySpec {
            owner,
            models: models.unwrap_or_default(),
            max_tokens_per_request,
            actor,
        };
        let p = call(py, || tm.set_owner_policy(&spec))?;
        to_py_serialized(py, &p)
    }

    /// An owner's model policy, or None.
    fn get_owner_policy<'py>(&self, py: Python<'py>, owner: &str) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let p = call(py, || tm.get_owner_policy(owner))?;
        to_py_serialized(py, &p)
    }

    /// Removes an owner's model policy (audited); False if it had none.
    #[pyo3(signature = (owner, *, actor=None))]
    fn delete_owner_policy(
        &self,
        py: Python<'_>,
        owner: &str,
        actor: Option<String>,
    ) -> PyResult<bool> {
        let tm = self.core(py)?;
        call(py, || tm.delete_owner_policy(owner, actor.as_deref()))
    }

    /// Keys due for rotation now (at least their rotation period old), oldest first.
    #[pyo3(signature = (limit=100))]
    fn keys_due(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = int::<u32>)] limit: u32,
    ) -> PyResult<Vec<KeyRecord>> {
        let tm = self.core(py)?;
        Ok(call(py, || tm.keys_due(limit))?
            .into_iter()
            .map(KeyRecord)
            .collect())
    }

    /// Rotates every key due for rotation; the new keys (plaintexts shown
    /// only here) to hand to their owners. Safe from cron on several hosts.
    #[pyo3(signature = (*, overlap_seconds=0, actor=None))]
    fn rotate_due(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = int::<i64>)] overlap_seconds: i64,
        actor: Option<&str>,
    ) -> PyResult<Vec<CreatedKey>> {
        let tm = self.core(py)?;
        let created = call(py, || tm.rotate_due(overlap_seconds, actor))?;
        created
            .into_iter()
            .map(|c| CreatedKey::new(py, c))
            .collect()
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

    /// Lifts the tombstone a deleted key left (give the key or its SHA-256),
    /// so it may be imported again; audited. False when there was none.
    #[pyo3(signature = (key=None, *, key_hash=None, actor=None))]
    fn lift_tombstone(
        &self,
        py: Python<'_>,
        key: Option<&str>,
        key_hash: Option<&str>,
        actor: Option<&str>,
    ) -> PyResult<bool> {
        let tm = self.core(py)?;
        call(py, || tm.lift_tombstone(key, key_hash, actor))
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

    /// Verifies a key and, in the same call, applies its rate limits and consumes quota.
    #[pyo3(signature = (key, *, required_scopes=None, rate_limit=false, quota=None, tokens=None, model=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify_key_with(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = key_text)] key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
        rate_limit: bool,
        quota: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<u64>)] tokens: Option<u64>,
        model: Option<String>,
    ) -> PyResult<VerifyResult> {
        let tm = self.core(py)?;
        let o = verify_options(py, required_scopes, rate_limit, quota, tokens, model)?;
        let v = call(py, || tm.verify_key_with(&key, &o))?;
        VerifyResult::new(py, v)
    }

    /// `verify_key_with` if it needs no write and no round trip (no quota;
    /// rate limits only if the key has none or they are local), else None.
    #[pyo3(signature = (key, *, required_scopes=None, rate_limit=false, quota=None, tokens=None, model=None))]
    #[allow(clippy::too_many_arguments)]
    fn try_verify_key_with(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = key_text)] key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
        rate_limit: bool,
        quota: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_int::<u64>)] tokens: Option<u64>,
        model: Option<String>,
    ) -> PyResult<Option<VerifyResult>> {
        let tm = self.core(py)?;
        let o = verify_options(py, required_scopes, rate_limit, quota, tokens, model)?;
        let v = call(py, || tm.try_verify_key_with(&key, &o))?;
        v.map(|v| VerifyResult::new(py, v)).transpose()
    }

    /// Deprecated: the old name of `try_verify_key` (kept for one release).
    #[pyo3(signature = (key, required_scopes=None))]
    fn verify_key_now(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = key_text)] key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
    ) -> PyResult<Option<VerifyResult>> {
        renamed(py, c"verify_key_now is deprecated: use try_verify_key")?;
        self.try_verify_key(py, key, required_scopes)
    }

    /// Deprecated: the old name of `try_verify_key_with` (kept for one release).
    #[pyo3(signature = (key, *, required_scopes=None, rate_limit=false, quota=None))]
    fn verify_key_with_now(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = key_text)] key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
        rate_limit: bool,
        quota: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Option<VerifyResult>> {
        renamed(
            py,
            c"verify_key_with_now is deprecated: use try_verify_key_with",
        )?;
        self.try_verify_key_with(py, key, required_scopes, rate_limit, quota, None, None)
    }
}

/// Warns that a method was renamed (a `DeprecationWarning` at the caller).
fn renamed(py: Python<'_>, message: &std::ffi::CStr) -> PyResult<()> {
    let category = py.get_type::<pyo3::exceptions::PyDeprecationWarning>();
    PyErr::warn(py, &category, message, 1)
}

/// The options of `verify_key_with` and `try_verify_key_with`.
fn verify_options(
    py: Python<'_>,
    required_scopes: Option<Vec<String>>,
    rate_limit: bool,
    quota: Option<Bound<'_, PyAny>>,
    tokens: Option<u64>,
    model: Option<String>,
) -> PyResult<irontoken::VerifyOptions> {
    Ok(irontoken::VerifyOptions {
        required_scopes: required_scopes.unwrap_or_default(),
        rate_limit,
        quota: quota.map(|q| from_py(py, &q, "quota")).transpose()?,
        tokens,
        model,
    })
}
