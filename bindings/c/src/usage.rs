//! Sessions, usage records, quotas and reservations, agent budgets, tokens
//! and leases, operator signals: requests and answers are JSON.

use super::*;

// Sessions, usage, quotas, agent budgets and signals. Requests and answers
// are JSON (the field names of the core types); NULL request JSON means "all
// defaults" where every field is optional.

/// Writes a count to `*out` if not NULL.
fn write_count(out: *mut u64, n: u64) {
    if !out.is_null() {
        // SAFETY: non-NULL out-param supplied by the caller.
        unsafe { *out = n };
    }
}

/// Verifies `key` and, per `options_json` (NULL = none), checks
/// `required_scopes` (array), the key's model policy (`"model"`:
/// `ITK_VERIFY_REASON_MODEL_NOT_ALLOWED`; `"tokens"`:
/// `ITK_VERIFY_REASON_REQUEST_TOO_LARGE`), applies the key's rate limits
/// (`"rate_limit": true`; limits in tokens count `"tokens"`) and consumes
/// `"quota": {"requests", "tokens", "cost_micros"}`. A refusal for the
/// key's state, scopes or policy consumes nothing. Writes the reason to `*out_reason` and the full answer
/// `{"valid", "reason", "record", "rate_limit", "quota"}` to `*out_json`
/// (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_verify_with(
    m: *const itk_manager,
    key: *const c_char,
    options_json: *const c_char,
    out_reason: *mut itk_verify_reason,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded under the same contract.
    unsafe { verify_with(m, key, options_json, out_reason, out_json, false) }
}

/// `itk_key_verify_with` if it needs no write and no network round trip
/// (no quota; rate limits only if the key has none or they are local; the
/// key's state as `itk_key_try_verify` reads it), else `ITK_STATUS_BUSY`
/// with nothing written and nothing recorded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_try_verify_with(
    m: *const itk_manager,
    key: *const c_char,
    options_json: *const c_char,
    out_reason: *mut itk_verify_reason,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded under the same contract.
    unsafe { verify_with(m, key, options_json, out_reason, out_json, true) }
}

/// Deprecated: the old name of `itk_key_try_verify_with` (kept for one release).
///
/// # Safety
/// As `itk_key_verify_with`.
#[unsafe(no_mangle)]
#[deprecated(note = "renamed itk_key_try_verify_with")]
pub unsafe extern "C" fn itk_key_verify_with_now(
    m: *const itk_manager,
    key: *const c_char,
    options_json: *const c_char,
    out_reason: *mut itk_verify_reason,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded under the same contract.
    unsafe { itk_key_try_verify_with(m, key, options_json, out_reason, out_json) }
}

/// The body of `itk_key_verify_with` and `itk_key_try_verify_with`.
///
/// # Safety
/// As `itk_key_verify_with`.
unsafe fn verify_with(
    m: *const itk_manager,
    key: *const c_char,
    options_json: *const c_char,
    out_reason: *mut itk_verify_reason,
    out_json: *mut *mut c_char,
    now: bool,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_reason, "out_reason")?;
        // SAFETY: C strings per the contract.
        let key = unsafe { arg(key, "key") }?;
        // SAFETY: as above.
        let o: irontoken::VerifyOptions = unsafe { json_arg(options_json, "options_json") }?;
        let v = if now {
            tm.try_verify_key_with(key, &o)?.ok_or_else(|| {
                irontoken::Error::new(
                    irontoken::ErrorKind::Busy,
                    "the answer needs a write or a round trip: call itk_key_verify_with",
                )
            })?
        } else {
            tm.verify_key_with(key, &o)?
        };
        let json = to_json(&v)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_reason = reason_of(v.reason) };
        write_opt(out_json, || Ok(json))
    })
}

/// Creates a session from `request_json`: `owner` (required), `key_id`,
/// `session_type` (default "runtime"), `metadata`, `ttl_seconds`,
/// `idle_timeout_seconds`. Writes the session JSON (with its `id`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_create(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let req = unsafe { json_req::<irontoken::NewSession>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.create_session(&req?))
}

/// Writes the session `id` as JSON (its status computed now).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_session(id?))
}

/// Slides the idle expiry of a live session; writes the session JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_touch(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.touch_session(id?))
}

/// Changes `status` ("active" | "paused") and/or `metadata` of a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_update(
    m: *const itk_manager,
    id: *const c_char,
    update_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, u) = unsafe {
        (
            arg(id, "id"),
            json_req::<irontoken::SessionUpdate>(update_json, "update_json"),
        )
    };
    json_answer(m, out_json, |tm| tm.update_session(id?, &u?))
}

/// Ends a live session; `reason` may be NULL. Writes the session JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_end(
    m: *const itk_manager,
    id: *const c_char,
    reason: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, reason) = unsafe { (arg(id, "id"), opt_arg(reason, "reason")) };
    json_answer(m, out_json, |tm| tm.end_session(id?, reason?))
}

/// Lists sessions: `filter_json` may be NULL or have `owner`,
/// `session_type`, `status`, `key_id`, `limit`, `cursor`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_list(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(
            m,
            filter_json,
            out_json,
            |tm, f: &irontoken::SessionFilter| tm.list_sessions(f),
        )
    }
}

/// Marks expired live sessions as expired; writes how many to `*out_count` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_cleanup(
    m: *const itk_manager,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let n = manager(m)?.cleanup_expired_sessions()?;
        write_count(out_count, n);
        Ok(())
    })
}

/// Deletes sessions that ended at least `older_than_seconds` ago; writes
/// how many to `*out_count` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_purge(
    m: *const itk_manager,
    older_than_seconds: i64,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let n = manager(m)?.purge_sessions(older_than_seconds)?;
        write_count(out_count, n);
        Ok(())
    })
}

/// Records usage from `report_json`: `request_id`, `key_id` and/or
/// `session_id`, `model`, `model_version`, `prompt_tokens`,
/// `completion_tokens`, `cache_read_tokens`, `cache_write_tokens`,
/// `requests`, `cost_micros`, `metadata`, `at`. Writes
/// `{"request_id", "duplicate"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_usage_record(
    m: *const itk_manager,
    report_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let r = unsafe { json_req::<irontoken::UsageReport>(report_json, "report_json") };
    json_answer(m, out_json, |tm| tm.record_usage(&r?))
}

/// Usage totals: `query_json` may be NULL or have `since`, `until`,
/// `key_id`, `owner`, `model`, `session_id`, `agent_id`, `group_by`
/// (array of "key", "owner", "model", "session", "agent", "day"). Writes an array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_usage_summary(
    m: *const itk_manager,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, query_json, out_json, |tm, q: &irontoken::UsageQuery| {
            tm.usage_summary(q)
        })
    }
}

/// Keys by state and owner, use over the last `window_seconds` (1 s – 366
/// days), and the `top` (1–100) owners, keys (by requests) and quotas (most
/// spent), as a JSON object written to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_stats(
    m: *const itk_manager,
    window_seconds: i64,
    top: u32,
    out_json: *mut *mut c_char,
) -> itk_status {
    json_answer(m, out_json, |tm| tm.stats(window_seconds, top))
}

/// Raw usage records, a page at a time (`limit`, `cursor` plus the summary filters).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_usage_export(
    m: *const itk_manager,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, query_json, out_json, |tm, q: &irontoken::UsageQuery| {
            tm.export_usage(q)
        })
    }
}

/// Creates or changes a quota: `scope` ("key" | "owner"), `subject`,
/// `metric` ("requests" | "tokens" | "cost"), `period` ("day" | "month" |
/// "none"), `limit`, optional `refill_amount` + `refill_period`, `actor`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_set(
    m: *const itk_manager,
    spec_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let s = unsafe { json_req::<irontoken::QuotaSpec>(spec_json, "spec_json") };
    json_answer(m, out_json, |tm| tm.set_quota(&s?))
}

/// Removes a quota: `{"scope", "subject", "metric", "period", "actor"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_delete(
    m: *const itk_manager,
    selector_json: *const c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let s = unsafe { json_req::<irontoken::QuotaSelector>(selector_json, "selector_json") };
    json_answer(m, std::ptr::null_mut(), |tm| {
        let s = s?;
        tm.delete_quota(s.scope, &s.subject, s.metric, s.period, s.actor.as_deref())
    })
}

/// Lists the quotas of `scope` ("key" | "owner") `subject` as a JSON array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_list(
    m: *const itk_manager,
    scope: *const c_char,
    subject: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (scope, subject) = unsafe { (arg(scope, "scope"), arg(subject, "subject")) };
    json_answer(m, out_json, |tm| {
        let scope: irontoken::QuotaScope = serde_json::from_value(scope?.into())
            .map_err(|_| Error::invalid("scope must be \"key\" or \"owner\""))?;
        tm.list_quotas(scope, subject?)
    })
}

/// Adds credits to a balance: `{"scope", "subject", "metric", "amount"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_add_credits(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let s = unsafe { json_req::<irontoken::QuotaSelector>(request_json, "request_json") };
    json_answer(m, out_json, |tm| {
        let s = s?;
        tm.add_credits(s.scope, &s.subject, s.metric, s.amount)
    })
}

/// Checks and (if `consume`) consumes `amounts_json` (`{"requests",
/// "tokens", "cost_micros"}`) from every quota of key `key_id` and its
/// owner, all or nothing. Writes `{"allowed", "quotas", "denied_by"}` and
/// `allowed` to `*out_allowed` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_consume(
    m: *const itk_manager,
    key_id: *const c_char,
    amounts_json: *const c_char,
    consume: bool,
    out_allowed: *mut bool,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (key_id, a) = unsafe {
        (
            arg(key_id, "key_id"),
            json_req::<irontoken::Amounts>(amounts_json, "amounts_json"),
        )
    };
    json_answer(m, out_json, |tm| {
        let (key_id, a) = (key_id?, a?);
        let d = if consume {
            tm.consume_quota(key_id, &a)?
        } else {
            tm.peek_quota(key_id, &a)?
        };
        if !out_allowed.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_allowed = d.allowed };
        }
        Ok(d)
    })
}

/// Holds `amounts_json` for `ttl_seconds` (0 = default 300). Writes
/// `{"reservation": {...} | null, "decision": {...}}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_reserve(
    m: *const itk_manager,
    key_id: *const c_char,
    amounts_json: *const c_char,
    ttl_seconds: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (key_id, a) = unsafe {
        (
            arg(key_id, "key_id"),
            json_req::<irontoken::Amounts>(amounts_json, "amounts_json"),
        )
    };
    json_answer(m, out_json, |tm| {
        tm.reserve_quota(key_id?, &a?, (ttl_seconds != 0).then_some(ttl_seconds))
    })
}

/// Settles reservation `id` with the actual `amounts_json`, or releases it
/// when `amounts_json` is NULL. Writes the quotas after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_settle(
    m: *const itk_manager,
    id: *const c_char,
    amounts_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, a) = unsafe {
        (
            arg(id, "id"),
            opt_arg(amounts_json, "amounts_json").and_then(|s| {
                s.map(|s| {
                    serde_json::from_str::<irontoken::Amounts>(s)
                        .map_err(|e| Error::invalid(format!("amounts_json: {e}")))
                })
                .transpose()
            }),
        )
    };
    json_answer(m, out_json, |tm| match a? {
        Some(a) => tm.settle_reservation(id?, &a),
        None => tm.release_reservation(id?),
    })
}

/// Releases every quota hold past its TTL; writes how many to `*out_count` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_quota_expire_reservations(
    m: *const itk_manager,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let n = manager(m)?.expire_reservations()?;
        write_count(out_count, n);
        Ok(())
    })
}

/// Creates a budget: `{"owner", "name", "limit_micros", "actor"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_budget_create(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let b = unsafe { json_req::<irontoken::NewBudget>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.create_budget(&b?))
}

/// Writes budget `id` (spent, leased, available) as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_budget_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_budget(id?))
}

/// Issues an agent token: `{"agent_id", "budget_id", "permissions",
/// "issuer", "ttl_seconds", "actor"}`; revokes the agent's previous token.
/// Writes `{"token", "claims", "replaced"}` (free it: it holds the token).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_agent_token_issue(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let r = unsafe { json_req::<irontoken::AgentTokenRequest>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.issue_agent_token(&r?))
}

/// Verifies an agent token; writes its claims JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_agent_token_verify(
    m: *const itk_manager,
    token: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let t = unsafe { arg(token, "token") };
    json_answer(m, out_json, |tm| tm.verify_agent_token(t?))
}

/// Revokes the live token of `agent_id` and its leases; `actor` may be NULL.
/// Writes the revoked `jti` as a JSON string to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_agent_token_revoke(
    m: *const itk_manager,
    agent_id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (a, actor) = unsafe { (arg(agent_id, "agent_id"), opt_arg(actor, "actor")) };
    json_answer(m, out_json, |tm| tm.revoke_agent_token(a?, actor?))
}

/// Takes a lease of `amount_micros` from the budget of `agent_token`
/// (`ttl_seconds` 0 = default 3600). Writes the lease JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_acquire(
    m: *const itk_manager,
    agent_token: *const c_char,
    amount_micros: u64,
    ttl_seconds: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let t = unsafe { arg(agent_token, "agent_token") };
    json_answer(m, out_json, |tm| {
        tm.acquire_lease(t?, amount_micros, (ttl_seconds != 0).then_some(ttl_seconds))
    })
}

/// Writes lease `id` (amount, spent, remaining, status) as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_lease(id?))
}

/// Makes `amount_micros` more available on lease `id` and renews it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_refresh(
    m: *const itk_manager,
    id: *const c_char,
    amount_micros: u64,
    ttl_seconds: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| {
        tm.refresh_lease(
            id?,
            amount_micros,
            (ttl_seconds != 0).then_some(ttl_seconds),
        )
    })
}

/// Ends lease `id` (its unspent part returns to the budget).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_release(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.release_lease(id?))
}

/// Reports usage spent on lease `id` (`report_json` as for
/// `itk_usage_record`, `request_id` required). Writes the lease JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_lease_report(
    m: *const itk_manager,
    id: *const c_char,
    report_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, r) = unsafe {
        (
            arg(id, "id"),
            json_req::<irontoken::UsageReport>(report_json, "report_json"),
        )
    };
    json_answer(m, out_json, |tm| tm.report_lease_usage(id?, &r?))
}

/// Takes up to `max` pending signals (oldest first) as a JSON array of
/// `{"kind", "at", "key_id", "display_prefix", "detail"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_events_drain(
    m: *const itk_manager,
    max: usize,
    out_json: *mut *mut c_char,
) -> itk_status {
    json_answer(m, out_json, |tm| Ok(tm.drain_events(max)))
}

/// Checks a live session on a request — bound to `fingerprint` (may be
/// NULL) if it is bound at all — and records the activity; writes the
/// session JSON. `ITK_STATUS_SESSION_FINGERPRINT_MISMATCH` for another one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_verify(
    m: *const itk_manager,
    id: *const c_char,
    fingerprint: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, fp) = unsafe { (arg(id, "id"), opt_arg(fingerprint, "fingerprint")) };
    json_answer(m, out_json, |tm| tm.verify_session(id?, fp?))
}

/// Replaces a live session by a new id (the old one is refused from now
/// on; `fingerprint` may be NULL); writes the new session JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_session_rotate(
    m: *const itk_manager,
    id: *const c_char,
    fingerprint: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, fp) = unsafe { (arg(id, "id"), opt_arg(fingerprint, "fingerprint")) };
    json_answer(m, out_json, |tm| tm.rotate_session(id?, fp?))
}

/// Ends every live session of `owner` but `except_id` (both of the last
/// two may be NULL: `reason` defaults to "ended"); writes how many.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_sessions_end(
    m: *const itk_manager,
    owner: *const c_char,
    reason: *const c_char,
    except_id: *const c_char,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (owner, reason, except) = unsafe {
            (
                arg(owner, "owner")?,
                opt_arg(reason, "reason")?,
                opt_arg(except_id, "except_id")?,
            )
        };
        out(out_count, "out_count")?;
        let n = tm.end_sessions(owner, reason, except)?;
        // SAFETY: checked non-NULL above, writable per the contract.
        unsafe { *out_count = n };
        Ok(())
    })
}

/// Checks an alert webhook's `Irontoken-Signature` header against the raw
/// body (`body_len` bytes) and the secret (`secret_len` bytes): its
/// HMAC-SHA256, and its time within `tolerance_seconds` of `now` (Unix
/// seconds; 0 for the system clock). `ITK_STATUS_OK`, or
/// `ITK_STATUS_INVALID_ARGUMENT` for a forged, altered, stale or malformed
/// signature (or a NULL argument).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_webhook_verify(
    secret: *const u8,
    secret_len: usize,
    header: *const c_char,
    body: *const u8,
    body_len: usize,
    now: i64,
    tolerance_seconds: u64,
) -> itk_status {
    guard(|| {
        if secret.is_null() || body.is_null() {
            return Err(Error::invalid("secret and body must not be NULL"));
        }
        // SAFETY: C string per the contract.
        let header = unsafe { arg(header, "header") }?;
        // SAFETY: `secret_len` and `body_len` readable bytes per the contract.
        let (secret, body) = unsafe {
            (
                std::slice::from_raw_parts(secret, secret_len),
                std::slice::from_raw_parts(body, body_len),
            )
        };
        let now = if now == 0 {
            irontoken::SystemClock::now_ms() / 1000
        } else {
            now
        };
        irontoken::alerts::verify_signature(
            secret,
            header,
            body,
            now,
            std::time::Duration::from_secs(tolerance_seconds),
        )
    })
}
