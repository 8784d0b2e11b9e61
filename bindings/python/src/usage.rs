//! TokenManager methods on sessions, usage records, quotas and
//! reservations, agent budgets, tokens and leases.

use super::*;

#[pymethods]
impl TokenManager {
    /// Creates a session; returns it as a dict (its `id` is a UUID).
    /// `fingerprint` binds it (a check with another one is refused);
    /// `max_concurrent` caps the owner's live sessions (refuse, or end the
    /// oldest with `evict_oldest`).
    #[pyo3(signature = (owner, *, key_id=None, session_type=None, metadata=None, ttl_seconds=None, idle_timeout_seconds=None, fingerprint=None, max_concurrent=None, evict_oldest=false))]
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
        fingerprint: Option<String>,
        #[pyo3(from_py_with = opt_int::<u32>)] max_concurrent: Option<u32>,
        evict_oldest: bool,
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
            fingerprint,
            max_concurrent,
            evict_oldest,
        };
        let s = call(py, || tm.create_session(&req))?;
        to_py_serialized(py, &s)
    }

    /// Checks a live session on a request (bound to `fingerprint` if bound
    /// at all) and records the activity.
    #[pyo3(signature = (session_id, *, fingerprint=None))]
    fn verify_session<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
        fingerprint: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.verify_session(session_id, fingerprint))
    }

    /// Replaces a live session by a new id (the old one is refused from
    /// now on); returns the new session.
    #[pyo3(signature = (session_id, *, fingerprint=None))]
    fn rotate_session<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
        fingerprint: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.rotate_session(session_id, fingerprint))
    }

    /// Ends every live session of `owner` but `except_session_id`; returns how many.
    #[pyo3(signature = (owner, *, reason=None, except_session_id=None))]
    fn end_sessions(
        &self,
        py: Python<'_>,
        owner: &str,
        reason: Option<&str>,
        except_session_id: Option<&str>,
    ) -> PyResult<u64> {
        let tm = self.core(py)?;
        call(py, || tm.end_sessions(owner, reason, except_session_id))
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
        #[pyo3(from_py_with = group_by_arg)] group_by: Option<Vec<String>>,
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

    /// Keys by state and owner, use over the last `window_seconds`, the
    /// `top` owners, keys (by requests) and quotas (most spent) (a dict).
    #[pyo3(signature = (*, window_seconds=86_400, top=10))]
    fn stats<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = int::<i64>)] window_seconds: i64,
        #[pyo3(from_py_with = int::<u32>)] top: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.stats(window_seconds, top))
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
            limit: non_negative(py, limit, "limit")?,
            refill_amount: refill_amount
                .map(|a| non_negative(py, a, "refill_amount"))
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
        let amount = non_negative(py, amount, "amount")?;
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
            limit_micros: non_negative(py, limit_micros, "limit_micros")?,
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
        #[pyo3(from_py_with = permissions_arg)] permissions: Option<Vec<String>>,
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
        let amount_micros = non_negative(py, amount_micros, "amount_micros")?;
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
        let amount_micros = non_negative(py, amount_micros, "amount_micros")?;
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
}

/// Checks an alert webhook's `Irontoken-Signature` header against the raw
/// `body` and `secret` (str or bytes): its HMAC-SHA256, and its time within
/// `tolerance_seconds` of `now` (default: the system clock). Raises
/// `InvalidArgumentError` for a forged, altered, stale or malformed one.
#[pyfunction]
#[pyo3(signature = (secret, header, body, *, now=None, tolerance_seconds=300))]
pub(crate) fn verify_webhook_signature(
    py: Python<'_>,
    secret: &Bound<'_, PyAny>,
    header: &str,
    body: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    #[pyo3(from_py_with = int::<u64>)] tolerance_seconds: u64,
) -> PyResult<()> {
    let bytes = |v: &Bound<'_, PyAny>, what: &str| {
        crate::jwt::key_material(v)
            .map_err(|_| to_py(py, Error::invalid(format!("{what} must be str or bytes"))))
    };
    let (secret, body) = (bytes(secret, "secret")?, bytes(body, "body")?);
    let now = now.unwrap_or_else(|| irontoken::SystemClock::now_ms() / 1000);
    irontoken::alerts::verify_signature(
        &secret,
        header,
        &body,
        now,
        std::time::Duration::from_secs(tolerance_seconds),
    )
    .map_err(|e| to_py(py, e))
}
