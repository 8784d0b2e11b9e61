//! DPoP proofs (RFC 9449) and certificate-bound tokens (RFC 8705) over the
//! C ABI: `itk_dpop_verify_proof(_at)`, `itk_jwk_thumbprint`,
//! `itk_cert_thumbprint`, and the proof of possession that
//! `itk_jwt_verify_issued_presented` and `itk_token_pair_refresh_presented`
//! take as JSON.

use crate::{arg, guard, itk_manager, itk_status, json_answer, json_req, manager, out};
use crate::{c_string, to_json, write_opt};
use irontoken::Error;
use irontoken::jwt::dpop::{self, DpopCheck};
use irontoken::replay::Presented;
use std::ffi::c_char;

/// The JSON of a presented proof of possession: `{"dpop_proof", "htm",
/// "htu", "dpop_nonce", "client_cert"}` (every field optional; the
/// certificate as PEM text).
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PresentedJson {
    dpop_proof: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    dpop_nonce: Option<String>,
    client_cert: Option<String>,
}

/// `presented_json` as core takes it (the rules are core's).
pub(crate) fn presented(json: &str) -> Result<Presented, Error> {
    let p: PresentedJson =
        serde_json::from_str(json).map_err(|e| Error::invalid(format!("presented_json: {e}")))?;
    Presented::new(
        p.dpop_proof,
        p.htm,
        p.htu,
        p.dpop_nonce,
        p.client_cert.map(String::into_bytes),
    )
}

/// Verifies a DPoP proof against `check_json` (`{"htm", "htu",
/// "access_token"?, "nonce"?, "max_age_seconds"?, "jkt"?}`) and accepts it
/// once (its `jti` claimed on the store: `ITK_STATUS_DPOP_PROOF_REPLAYED`
/// after). Writes the proof's `jkt`, `alg`, `jwk`, `jti`, `iat`, `htm`,
/// `htu`, `ath`, `nonce` as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_dpop_verify_proof(
    m: *const itk_manager,
    proof: *const c_char,
    check_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (proof, check) = unsafe {
        (
            arg(proof, "proof"),
            json_req::<DpopCheck>(check_json, "check_json"),
        )
    };
    json_answer(m, out_json, |tm| tm.verify_dpop_proof(proof?, &check?))
}

/// Verifies a DPoP proof at `now` (Unix seconds) without the replay check
/// (no manager); otherwise as `itk_dpop_verify_proof`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_dpop_verify_proof_at(
    proof: *const c_char,
    check_json: *const c_char,
    now: i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let (proof, check) = unsafe {
            (
                arg(proof, "proof")?,
                json_req::<DpopCheck>(check_json, "check_json")?,
            )
        };
        let p = dpop::verify_proof(proof, &check, now)?;
        let json = to_json(&p)?;
        write_opt(out_json, || Ok(json))
    })
}

/// Writes the RFC 7638 SHA-256 thumbprint of the public JWK `jwk_json`
/// (what `cnf.jkt` holds).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwk_thumbprint(
    jwk_json: *const c_char,
    out_thumbprint: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C string per the contract.
        let jwk = unsafe {
            json_req::<serde_json::Map<String, serde_json::Value>>(jwk_json, "jwk_json")
        }?;
        out(out_thumbprint, "out_thumbprint")?;
        let t = dpop::jwk_thumbprint(&jwk)?;
        write_opt(out_thumbprint, || Ok(t))
    })
}

/// Writes the RFC 8705 thumbprint of the client certificate in `cert`
/// (`len` bytes of PEM, DER, or PEM percent-encoded as proxies forward it):
/// what `cnf["x5t#S256"]` holds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_cert_thumbprint(
    cert: *const u8,
    len: usize,
    out_thumbprint: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        if cert.is_null() {
            return Err(Error::invalid("cert is NULL"));
        }
        out(out_thumbprint, "out_thumbprint")?;
        // SAFETY: `len` readable bytes at `cert` per the contract.
        let bytes = unsafe { std::slice::from_raw_parts(cert, len) };
        let t = irontoken::jwt::mtls::cert_thumbprint(bytes)?;
        write_opt(out_thumbprint, || Ok(t))
    })
}

/// Spends `refresh_token` of a family bound to a DPoP key or a client
/// certificate, with its proof in `presented_json` (as for
/// `itk_jwt_verify_issued_presented`); writes the next pair as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_pair_refresh_presented(
    m: *const itk_manager,
    refresh_token: *const c_char,
    presented_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: C strings per the contract.
    let (t, p) = unsafe {
        (
            arg(refresh_token, "refresh_token"),
            arg(presented_json, "presented_json"),
        )
    };
    json_answer(m, out_json, |tm| {
        tm.refresh_token_pair_presented(t?, &presented(p?)?)
    })
}

/// Verifies a token issued by this manager's keys with what the caller
/// presented (`presented_json`: `{"dpop_proof", "htm", "htu",
/// "dpop_nonce", "client_cert"}`): a token bound to a DPoP key or a client
/// certificate (`cnf`) needs its proof; `once` != 0 also claims its `jti`.
/// Writes `{"header": ..., "claims": ...}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verify_issued_presented(
    m: *const itk_manager,
    token: *const c_char,
    policy_json: *const c_char,
    presented_json: *const c_char,
    once: i32,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (token, policy, presented_json) = unsafe {
            (
                arg(token, "token")?,
                arg(policy_json, "policy_json")?,
                arg(presented_json, "presented_json")?,
            )
        };
        out(out_json, "out_json")?;
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy)?;
        let p = presented(presented_json)?;
        let d = if once != 0 {
            tm.verify_jwt_presented_once(token, &policy, &p)?
        } else {
            tm.verify_jwt_presented(token, &policy, &p)?
        };
        let json = to_json(&serde_json::json!({"header": d.header, "claims": d.claims}))?;
        write_opt(out_json, || Ok(json))
    })
}

/// The binding rule for claims another verifier checked (`claims_json`):
/// `ITK_STATUS_MTLS_BINDING_MISMATCH` for a certificate-bound token without
/// that certificate (`cert`, `cert_len` bytes; NULL for none),
/// `ITK_STATUS_DPOP_BINDING_MISMATCH` for a key-bound one when
/// `proof_given` is 0. Writes the `jkt` a proof must be made with, or NULL
/// for an unbound token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_token_binding(
    claims_json: *const c_char,
    cert: *const u8,
    cert_len: usize,
    proof_given: i32,
    out_jkt: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // SAFETY: C string per the contract.
        let claims = unsafe {
            json_req::<serde_json::Map<String, serde_json::Value>>(claims_json, "claims_json")
        }?;
        out(out_jkt, "out_jkt")?;
        // SAFETY: `cert_len` readable bytes at a non-NULL `cert` per the contract.
        let cert = (!cert.is_null()).then(|| unsafe { std::slice::from_raw_parts(cert, cert_len) });
        let jkt = irontoken::replay::binding_of(&claims, cert, proof_given != 0)?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_jkt = jkt.map_or(std::ptr::null_mut(), |j| c_string(j.to_string())) };
        Ok(())
    })
}
