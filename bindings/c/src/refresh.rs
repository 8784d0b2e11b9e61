//! Refresh-token families over the C ABI: `itk_token_pair_*` and
//! `itk_token_family*`. Requests and answers are JSON with the field names
//! of the Python and Node surfaces; an answer holding a refresh token is a
//! secret: free it with `itk_string_free` (which wipes it).

use crate::{arg, guard, itk_manager, itk_status, json_answer, json_req, manager, opt_arg, out};
use std::ffi::c_char;

/// Starts a refresh-token family from `request_json` (`{"subject",
/// "scopes"?, "claims"?, "ttl_seconds"?, "refresh_ttl_seconds"?,
/// "family_ttl_seconds"?}`); writes the pair as JSON (`access_token`,
/// `refresh_token`, `expires_in`, `expires_at`, `refresh_expires_at`,
/// `family_id`, `token_type`, `scopes`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_pair_issue(
    m: *const itk_manager,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let r = unsafe { json_req::<irontoken::refresh::NewTokenPair>(request_json, "request_json") };
    json_answer(m, out_json, |tm| tm.issue_token_pair(&r?))
}

/// Spends `refresh_token` and writes the family's next pair as JSON.
/// `ITK_STATUS_REFRESH_TOKEN_REUSED` when it was spent before (the family
/// is revoked now); `..._INVALID`, `..._EXPIRED`, `..._REVOKED` otherwise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_pair_refresh(
    m: *const itk_manager,
    refresh_token: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let t = unsafe { arg(refresh_token, "refresh_token") };
    json_answer(m, out_json, |tm| tm.refresh_token_pair(t?))
}

/// Writes the token family `id` as JSON (status computed now).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_family_get(
    m: *const itk_manager,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let id = unsafe { arg(id, "id") };
    json_answer(m, out_json, |tm| tm.get_token_family(id?))
}

/// Revokes the token family `id` (`reason` may be NULL); writes 1 if this
/// call revoked it, 0 if it was revoked already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_family_revoke(
    m: *const itk_manager,
    id: *const c_char,
    reason: *const c_char,
    out_revoked: *mut i32,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (id, reason) = unsafe { (arg(id, "id")?, opt_arg(reason, "reason")?) };
        out(out_revoked, "out_revoked")?;
        let done = tm.revoke_token_family(id, reason)?;
        // SAFETY: checked non-NULL above, writable per the contract.
        unsafe { *out_revoked = i32::from(done) };
        Ok(())
    })
}

/// Revokes every live token family of `subject` (`reason` may be NULL);
/// writes how many it revoked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_families_revoke(
    m: *const itk_manager,
    subject: *const c_char,
    reason: *const c_char,
    out_count: *mut u64,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (subject, reason) = unsafe { (arg(subject, "subject")?, opt_arg(reason, "reason")?) };
        out(out_count, "out_count")?;
        let n = tm.revoke_token_families(subject, reason)?;
        // SAFETY: checked non-NULL above, writable per the contract.
        unsafe { *out_count = n };
        Ok(())
    })
}
