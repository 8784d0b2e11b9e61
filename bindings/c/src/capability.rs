//! Capability tokens (Biscuit) over the C ABI: `itk_cap_*`.
//!
//! Tokens are base64url strings; requests and answers are JSON with the
//! field names of the Python and Node surfaces. A refused authorization is
//! an answer (`ITK_STATUS_OK`, `"allowed": false` and a stable `reason`),
//! not an error.

use crate::{arg, guard, itk_manager, itk_status, json_answer, json_req, manager, opt_arg, out};
use crate::{to_json, write_opt};
use irontoken::capability;
use std::ffi::c_char;

/// Mints a capability token for an active key from `request_json`
/// (`{"key_id", "tools": [...], "ttl_seconds", "ceiling_micros"?,
/// "resources"?: [...], "lease_id"?, "actor"?}`); writes the token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_mint(
    m: *const itk_manager,
    request_json: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let r = unsafe { json_req::<irontoken::MintCapability>(request_json, "request_json") };
    guard(|| {
        let tm = manager(m)?;
        out(out_token, "out_token")?;
        let t = tm.mint_capability(&r?)?;
        write_opt(out_token, || Ok(t))
    })
}

/// Narrows `token` offline by one block (no manager, no store):
/// `attenuation_json` may be NULL or `{"tools"?, "ceiling_micros"?,
/// "ttl_seconds"?, "resources"?, "session_id"?, "datalog"?}`. Writes the
/// new token; `ITK_STATUS_CAPABILITY_SEALED` if `token` is sealed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_attenuate(
    token: *const c_char,
    attenuation_json: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let (t, a) = unsafe {
            (
                arg(token, "token")?,
                crate::json_arg::<irontoken::Attenuation>(attenuation_json, "attenuation_json")?,
            )
        };
        out(out_token, "out_token")?;
        let t = capability::attenuate(t, &a)?;
        write_opt(out_token, || Ok(t))
    })
}

/// Seals `token` (no further block can be appended); writes the result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_seal(
    token: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C string per the contract.
        let t = unsafe { arg(token, "token") }?;
        out(out_token, "out_token")?;
        let t = capability::seal(t)?;
        write_opt(out_token, || Ok(t))
    })
}

/// Writes what `token` states, unverified: `{"root_key_id", "blocks",
/// "revocation_ids", "sealed", "tools", "resources", "expires_at",
/// "ceiling_micros", "key_id"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_inspect(
    token: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C string per the contract.
        let t = unsafe { arg(token, "token") }?;
        out(out_json, "out_json")?;
        let json = to_json(&capability::inspect(t)?)?;
        write_opt(out_json, || Ok(json))
    })
}

/// Decides `request_json` (`{"tool", "resource"?, "cost_micros"?,
/// "session_id"?}`) under `token`, charging the cost when allowed. Writes
/// the answer JSON (`allowed`, `reason`, limits) to `*out_json` (may be
/// NULL) and 1 or 0 to `*out_allowed` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_authorize(
    m: *const itk_manager,
    token: *const c_char,
    request_json: *const c_char,
    out_allowed: *mut i32,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (t, r) = unsafe {
        (
            arg(token, "token"),
            json_req::<irontoken::CapabilityRequest>(request_json, "request_json"),
        )
    };
    guard(|| {
        let tm = manager(m)?;
        let a = tm.authorize(t?, &r?)?;
        if !out_allowed.is_null() {
            // SAFETY: non-NULL, writable per the contract.
            unsafe { *out_allowed = i32::from(a.allowed) };
        }
        let json = to_json(&a)?;
        write_opt(out_json, || Ok(json))
    })
}

/// Revokes `token`'s last block: it and every token attenuated from it are
/// refused from the next call on. Writes the revocation id (JSON string).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_revoke(
    m: *const itk_manager,
    token: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (t, actor) = unsafe { (arg(token, "token"), opt_arg(actor, "actor")) };
    json_answer(m, out_json, |tm| tm.revoke_capability(t?, actor?))
}

/// Revokes a block by revocation id (hex); writes `true` if it was not
/// revoked before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_revoke_id(
    m: *const itk_manager,
    revocation_id: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (id, actor) = unsafe { (arg(revocation_id, "revocation_id"), opt_arg(actor, "actor")) };
    json_answer(m, out_json, |tm| tm.revoke_capability_id(id?, actor?))
}

/// Writes the active root's public key (`ed25519/<hex>`), creating the
/// root on first use (needs the master key).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_public_key(
    m: *const itk_manager,
    out_key: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_key, "out_key")?;
        let k = tm.capability_public_key()?;
        write_opt(out_key, || Ok(k))
    })
}

/// Writes every root key that verifies now as a JSON array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_public_keys(
    m: *const itk_manager,
    out_json: *mut *mut c_char,
) -> itk_status {
    json_answer(m, out_json, |tm| tm.capability_public_keys())
}

/// Replaces the active root; the previous one verifies `overlap_seconds`
/// more (0: retired at once). Writes the new root as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cap_root_rotate(
    m: *const itk_manager,
    overlap_seconds: i64,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C string per the contract.
    let actor = unsafe { opt_arg(actor, "actor") };
    json_answer(m, out_json, |tm| {
        tm.rotate_capability_key(overlap_seconds, actor?)
    })
}

/// Claims the one-time id `jti` of a token expiring at `expires_at` (Unix
/// seconds): writes 1 to `*out_claimed` the first time, 0 for every later
/// claim of the same id by any process or host on this store (or on the
/// Redis of `rate_limit_store`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jti_claim(
    m: *const itk_manager,
    jti: *const c_char,
    expires_at: i64,
    out_claimed: *mut i32,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let jti = unsafe { arg(jti, "jti") }?;
        out(out_claimed, "out_claimed")?;
        let claimed = tm.claim_jti(jti, expires_at)?;
        // SAFETY: checked non-NULL above, writable per the contract.
        unsafe { *out_claimed = i32::from(claimed) };
        Ok(())
    })
}
