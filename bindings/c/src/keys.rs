//! API keys: create (one or many), verify, get, list, update, disable,
//! enable, revoke, rotate, delete, and the audit trail.

use super::*;

/// Creates a key. `request_json` is an object with `owner` (required),
/// `name`, `description`, `scopes` (array), `metadata` (object),
/// `expires_at` or `expires_in` (seconds), `prefix`, `rate_limits` (array;
/// `"unit": "tokens"` for a limit of LLM tokens), `rotation_period`,
/// `models` (array of patterns such as `"gpt-4o*"`),
/// `max_tokens_per_request`, `actor`.
/// Writes the plaintext key (shown only now) to `*out_key` and the record
/// JSON to `*out_record_json` (may be NULL if not wanted). Free both with `itk_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_create(
    m: *const itk_manager,
    request_json: *const c_char,
    out_key: *mut *mut c_char,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let req: NewKey = unsafe { json_arg(request_json, "request_json") }?;
        out(out_key, "out_key")?;
        let created = tm.create_key(&req)?;
        let record = to_json(&created.record)?;
        // SAFETY: out_key checked non-NULL.
        unsafe { *out_key = c_string(created.key.to_string()) };
        write_opt(out_record_json, || Ok(record))
    })
}

/// Creates many keys in one transaction: all or none (the first bad
/// request's index is in the message); at most 100 000 per call.
/// `requests_json` is an array of `itk_key_create` request objects. Writes a
/// JSON array of `{"key": plaintext, "record": {...}}` in request order to
/// `*out_created_json` (free with `itk_string_free`): it holds the
/// plaintexts, shown only now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_create_many(
    m: *const itk_manager,
    requests_json: *const c_char,
    out_created_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let text = unsafe { arg(requests_json, "requests_json") }?;
        let reqs: Vec<NewKey> = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("requests_json: {e}")))?;
        out(out_created_json, "out_created_json")?;
        let created = tm.create_keys(&reqs)?;
        let items: Vec<serde_json::Value> = created
            .iter()
            .map(|c| serde_json::json!({"key": &*c.key, "record": &c.record}))
            .collect();
        let text = to_json(&items)?;
        // SAFETY: out_created_json checked non-NULL.
        unsafe { *out_created_json = c_string(text) };
        Ok(())
    })
}

/// Imports a key from another system. `request_json` is an object with
/// `key` (the plaintext) or `key_hash` (its SHA-256: 64 hex or 44 base64
/// characters), `owner` (required), `name`, `description`, `scopes`,
/// `metadata`, `expires_at`, `display_prefix`, `rate_limits`, `legacy_id`
/// (the old record's id: one key per id, ever), `actor`. A key not in
/// irontoken's format becomes a legacy key, verified by its hash. Writes the
/// record JSON to `*out_record_json` (may be NULL if not wanted; free with
/// `itk_string_free`). `CONFLICT` if the key is here already, was deleted
/// (its tombstone: `itk_key_lift_tombstone`) or its `legacy_id` was used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_import(
    m: *const itk_manager,
    request_json: *const c_char,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let req: irontoken::ImportKey = unsafe { json_arg(request_json, "request_json") }?;
        let record = tm.import_key(&req)?;
        write_opt(out_record_json, || to_json(&record))
    })
}

/// Imports many keys in one transaction: all or none (the first bad entry's
/// index is in the message); at most 100 000 per call. `requests_json` is an
/// array of `itk_key_import` request objects; the records, in order, go to
/// `*out_records_json` as a JSON array (may be NULL; free with `itk_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_import_many(
    m: *const itk_manager,
    requests_json: *const c_char,
    out_records_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let reqs: Vec<irontoken::ImportKey> = unsafe { json_arg(requests_json, "requests_json") }?;
        let records = tm.import_keys(&reqs)?;
        write_opt(out_records_json, || to_json(&records))
    })
}

/// The keys due for rotation now (at least their `rotation_period`, or the
/// manager's `default_rotation_period`, old), oldest first, at most `limit`
/// (1-1000): a JSON array of records to `*out_json` (free with `itk_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_keys_due(
    m: *const itk_manager,
    limit: u32,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_json, "out_json")?;
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("limit must be 1-1000"));
        }
        let text = to_json(&tm.keys_due(limit)?)?;
        // SAFETY: out_json checked non-NULL.
        unsafe { *out_json = c_string(text) };
        Ok(())
    })
}

/// Rotates every key due for rotation (safe from cron on several hosts at
/// once: each due key is rotated once). `options_json` may be NULL or an
/// object with `overlap_seconds` (default 0) and `actor`. Writes a JSON array
/// of `{"key": plaintext, "record": {...}}` to `*out_created_json` (free with
/// `itk_string_free`): the new plaintexts, shown only now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_keys_rotate_due(
    m: *const itk_manager,
    options_json: *const c_char,
    out_created_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let o: OverlapOptions = unsafe { json_arg(options_json, "options_json") }?;
        out(out_created_json, "out_created_json")?;
        let created = tm.rotate_due(o.overlap_seconds, o.actor.as_deref())?;
        let items: Vec<serde_json::Value> = created
            .iter()
            .map(|c| serde_json::json!({"key": &*c.key, "record": &c.record}))
            .collect();
        let text = to_json(&items)?;
        // SAFETY: out_created_json checked non-NULL.
        unsafe { *out_created_json = c_string(text) };
        Ok(())
    })
}

/// Most strings an array argument may hold.
const MAX_ARRAY: usize = irontoken::MAX_REQUIRED_SCOPES;

/// `n` C strings at `p` (NULL only when `n` is 0): the pointer and the count
/// are checked before anything is allocated or read.
///
/// # Safety
/// `p` points at `n` readable string pointers, each a C string.
unsafe fn str_array<'a>(
    p: *const *const c_char,
    n: usize,
    what: &str,
) -> Result<Vec<&'a str>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL but its count is {n}"
        )));
    }
    if n > MAX_ARRAY {
        return Err(Error::invalid(format!(
            "{what} holds {n} entries, at most {MAX_ARRAY} are accepted"
        )));
    }
    (0..n)
        .map(|i| {
            // SAFETY: i < n, per the contract; each entry is a C string.
            unsafe { arg(*p.add(i), what) }
        })
        .collect()
}

/// Verifies `key`. A refused key is a success with `*out_reason` != VALID.
/// `required_scopes` is an array of `n_scopes` strings (NULL when 0), all of
/// which the key must hold. If `out_record_json` is not NULL it receives the
/// key's record JSON when the key was found, else NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_verify(
    m: *const itk_manager,
    key: *const c_char,
    required_scopes: *const *const c_char,
    n_scopes: usize,
    out_reason: *mut itk_verify_reason,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded under the same contract.
    unsafe {
        verify(
            m,
            key,
            required_scopes,
            n_scopes,
            out_reason,
            out_record_json,
            false,
        )
    }
}

/// `itk_key_verify` if it needs no network round trip — always on SQLite,
/// on PostgreSQL when the key is in this process's notified caches — else
/// `ITK_STATUS_BUSY` with nothing written and nothing recorded: for event
/// loops, which then call `itk_key_verify` off their thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_try_verify(
    m: *const itk_manager,
    key: *const c_char,
    required_scopes: *const *const c_char,
    n_scopes: usize,
    out_reason: *mut itk_verify_reason,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded under the same contract.
    unsafe {
        verify(
            m,
            key,
            required_scopes,
            n_scopes,
            out_reason,
            out_record_json,
            true,
        )
    }
}

/// Deprecated: the old name of `itk_key_try_verify` (kept for one release).
///
/// # Safety
/// As `itk_key_verify`.
#[unsafe(no_mangle)]
#[deprecated(note = "renamed itk_key_try_verify")]
pub unsafe extern "C" fn itk_key_verify_now(
    m: *const itk_manager,
    key: *const c_char,
    required_scopes: *const *const c_char,
    n_scopes: usize,
    out_reason: *mut itk_verify_reason,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded under the same contract.
    unsafe {
        itk_key_try_verify(
            m,
            key,
            required_scopes,
            n_scopes,
            out_reason,
            out_record_json,
        )
    }
}

/// The body of `itk_key_verify` and `itk_key_try_verify`.
///
/// # Safety
/// As `itk_key_verify`.
unsafe fn verify(
    m: *const itk_manager,
    key: *const c_char,
    required_scopes: *const *const c_char,
    n_scopes: usize,
    out_reason: *mut itk_verify_reason,
    out_record_json: *mut *mut c_char,
    now: bool,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_reason, "out_reason")?;
        // SAFETY: C string per the contract.
        let key = unsafe { arg(key, "key") }?;
        // SAFETY: the caller gives `n_scopes` string pointers.
        let scopes = unsafe { str_array(required_scopes, n_scopes, "required_scopes") }?;
        let v = if now {
            tm.try_verify_key(key, &scopes)?.ok_or_else(|| {
                Error::new(
                    irontoken::ErrorKind::Busy,
                    "the answer needs a round trip to the database: call itk_key_verify",
                )
            })?
        } else {
            tm.verify_key(key, &scopes)?
        };
        let record = v.record.as_ref().map(to_json).transpose()?;
        // SAFETY: checked non-NULL.
        unsafe { *out_reason = reason_of(v.reason) };
        if !out_record_json.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_record_json = record.map_or(std::ptr::null_mut(), c_string) };
        }
        Ok(())
    })
}

/// Writes the record JSON of key `id` to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let id = unsafe { arg(id, "id") }?;
        out(out_json, "out_json")?;
        let r = to_json(&tm.get_key(id)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Lists keys. `filter_json` may be NULL or an object with `owner`, `status`
/// ("active" | "disabled" | "revoked" | "expired"), `limit` (1-1000, default
/// 100), `cursor`. Writes `{"items": [...], "next_cursor": "..." | null}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_list(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, filter_json, out_json, |tm, f: &KeyFilter| {
            tm.list_keys(f)
        })
    }
}

/// Updates key `id` with `update_json`: any of `name`, `description`,
/// `scopes`, `metadata`, `expires_at` (null clears), `rate_limits`,
/// `rotation_period` (null clears), `models` (`[]`: any model),
/// `max_tokens_per_request` (null clears), `actor`. Writes the new
/// record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_update(
    m: *const itk_manager,
    id: *const c_char,
    update_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let id = unsafe { arg(id, "id") }?;
        // SAFETY: as above.
        let u: KeyUpdate = unsafe { json_arg(update_json, "update_json") }?;
        let r = to_json(&tm.update_key(id, &u)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Runs a state change that takes a key id and an optional actor.
///
/// # Safety
/// As the entry points that call it.
unsafe fn actor_change(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
    op: fn(&TokenManager, &str, Option<&str>) -> Result<irontoken::KeyRecord, Error>,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, actor) = unsafe { (arg(id, "id")?, opt_arg(actor, "actor")?) };
        let r = to_json(&op(tm, id, actor)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Disables key `id`. `actor` may be NULL. Writes the record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_disable(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe { actor_change(m, id, actor, out_json, TokenManager::disable_key) }
}

/// Enables key `id` again. `actor` may be NULL. Writes the record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_enable(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe { actor_change(m, id, actor, out_json, TokenManager::enable_key) }
}

/// Revokes key `id` permanently. `reason` and `actor` may be NULL. Writes the
/// record JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_revoke(
    m: *const itk_manager,
    id: *const c_char,
    reason: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, reason, actor) = unsafe {
            (
                arg(id, "id")?,
                opt_arg(reason, "reason")?,
                opt_arg(actor, "actor")?,
            )
        };
        let r = to_json(&tm.revoke_key(id, reason, actor)?)?;
        write_opt(out_json, || Ok(r))
    })
}

/// Rotates key `id`. `options_json` may be NULL or an object with
/// `overlap_seconds` (default 0: the old key is revoked now), `expires_at`,
/// `actor`. Writes the new plaintext key to `*out_key` and the new record
/// JSON to `*out_record_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_rotate(
    m: *const itk_manager,
    id: *const c_char,
    options_json: *const c_char,
    out_key: *mut *mut c_char,
    out_record_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let id = unsafe { arg(id, "id") }?;
        // SAFETY: as above.
        let o: RotateOptions = unsafe { json_arg(options_json, "options_json") }?;
        out(out_key, "out_key")?;
        let created = tm.rotate_key(id, &o)?;
        let record = to_json(&created.record)?;
        // SAFETY: out_key checked non-NULL.
        unsafe { *out_key = c_string(created.key.to_string()) };
        write_opt(out_record_json, || Ok(record))
    })
}

/// Deletes the record of key `id` (its audit history stays). `actor` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_delete(
    m: *const itk_manager,
    id: *const c_char,
    actor: *const c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, actor) = unsafe { (arg(id, "id")?, opt_arg(actor, "actor")?) };
        tm.delete_key(id, actor)
    })
}

/// Lifts the tombstone a deleted key left, so the key may be imported
/// again (audited as `key.tombstone_lift`). Give `key` (the plaintext) or
/// `key_hash` (its SHA-256: 64 hex or 44 base64 characters), the other NULL;
/// `actor` may be NULL. `*out_lifted` (may be NULL) says whether a
/// tombstone was lifted (false: there was none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_key_lift_tombstone(
    m: *const itk_manager,
    key: *const c_char,
    key_hash: *const c_char,
    actor: *const c_char,
    out_lifted: *mut bool,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (key, key_hash, actor) = unsafe {
            (
                opt_arg(key, "key")?,
                opt_arg(key_hash, "key_hash")?,
                opt_arg(actor, "actor")?,
            )
        };
        let lifted = tm.lift_tombstone(key, key_hash, actor)?;
        if !out_lifted.is_null() {
            // SAFETY: non-NULL, points to a bool per the contract.
            unsafe { *out_lifted = lifted };
        }
        Ok(())
    })
}

/// Lists the audit trail, newest first. `filter_json` may be NULL or an
/// object with `key_id`, `action`, `actor`, `outcome`, `since`, `until`,
/// `limit`, `cursor`. Writes `{"items": [...], "next_cursor": ...}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_audit_list(
    m: *const itk_manager,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        list_call(m, filter_json, out_json, |tm, f: &AuditFilter| {
            tm.list_audit(f)
        })
    }
}

/// Sets an owner's model policy (replacing any): `request_json` is
/// `{"owner", "models": [patterns], "max_tokens_per_request", "actor"}`.
/// Every key of the owner is held to it as well as to its own (both
/// allow-lists, the lower ceiling). Writes the policy JSON `{"owner",
/// "models", "max_tokens_per_request", "updated_at"}` to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_owner_policy_set(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let spec: irontoken::OwnerPolicySpec = unsafe { json_arg(request_json, "request_json") }?;
        let p = to_json(&tm.set_owner_policy(&spec)?)?;
        write_opt(out_json, || Ok(p))
    })
}

/// Writes an owner's model policy JSON to `*out_json`, or NULL when the
/// owner has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_owner_policy_get(
    m: *const itk_manager,
    owner: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let owner = unsafe { arg(owner, "owner") }?;
        out(out_json, "out_json")?;
        let p = tm
            .get_owner_policy(owner)?
            .map(|p| to_json(&p))
            .transpose()?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_json = p.map_or(std::ptr::null_mut(), c_string) };
        Ok(())
    })
}

/// Removes an owner's model policy (audited; `actor` may be NULL); writes
/// whether it had one to `*out_deleted` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_owner_policy_delete(
    m: *const itk_manager,
    owner: *const c_char,
    actor: *const c_char,
    out_deleted: *mut bool,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract (`actor` may be NULL).
        let (owner, actor) = unsafe { (arg(owner, "owner")?, opt_arg(actor, "actor")?) };
        let had = tm.delete_owner_policy(owner, actor)?;
        if !out_deleted.is_null() {
            // SAFETY: non-NULL out-param.
            unsafe { *out_deleted = had };
        }
        Ok(())
    })
}
