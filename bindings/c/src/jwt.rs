//! JWT: managed signing keys, issuance and API key exchange, verifiers
//! (PEM, DER, JWK, HMAC), remote JWKS, signers.

use super::*;

/// Generates a managed signing key of `alg` ("RS256", "ES256", "EdDSA",
/// "HS256") and makes it active. `actor` may be NULL. Writes the key's JSON
/// (kid, alg, status, ...) to `*out_json` (may be NULL). Needs a master key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_create(
    m: *const itk_manager,
    alg: *const c_char,
    actor: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (alg, actor) = unsafe { (arg(alg, "alg")?, opt_arg(actor, "actor")?) };
        let k = to_json(&tm.create_signing_key(irontoken::jwt::Alg::from_name(alg)?, actor)?)?;
        write_opt(out_json, || Ok(k))
    })
}

/// The scheduled rotation (cron on any number of hosts at once): rotates the
/// active signing key if it is at least `every_seconds` old. `options_json`
/// may be NULL or an object with `overlap_seconds` (default 0) and `actor`.
/// Writes the new key's JSON to `*out_json`, or `null` when it was not due
/// (may be NULL; free with `itk_string_free`). Serialized across processes
/// and hosts: a due key is rotated once. `NOT_FOUND` with no active key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_rotate_if_due(
    m: *const itk_manager,
    every_seconds: i64,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let o: OverlapOptions = unsafe { json_arg(options_json, "options_json") }?;
        let k =
            tm.rotate_signing_key_if_due(every_seconds, o.overlap_seconds, o.actor.as_deref())?;
        let text = to_json(&k)?;
        write_opt(out_json, || Ok(text))
    })
}

/// Makes a new signing key active. `options_json` may be NULL or an object
/// with `alg`, `overlap_seconds` (default 0), `actor`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_rotate(
    m: *const itk_manager,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct O {
        alg: Option<String>,
        overlap_seconds: i64,
        actor: Option<String>,
    }
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let o: O = unsafe { json_arg(options_json, "options_json") }?;
        let alg = o
            .alg
            .as_deref()
            .map(irontoken::jwt::Alg::from_name)
            .transpose()?;
        let k = to_json(&tm.rotate_signing_key(alg, o.overlap_seconds, o.actor.as_deref())?)?;
        write_opt(out_json, || Ok(k))
    })
}

/// Writes `[{...}, ...]`, every managed signing key (no private material), to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_signing_key_list(
    m: *const itk_manager,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_json, "out_json")?;
        let keys = to_json(&tm.list_signing_keys()?)?;
        write_opt(out_json, || Ok(keys))
    })
}

/// Writes the public JWKS of the keys that verify now to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks(m: *const itk_manager, out_json: *mut *mut c_char) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        out(out_json, "out_json")?;
        let jwks = to_json(&tm.jwks()?)?;
        write_opt(out_json, || Ok(jwks))
    })
}

/// Signs `claims_json` with the active managed key; `ttl_seconds` <= 0 means
/// the default (900). Writes the token to `*out_token`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_issue(
    m: *const itk_manager,
    claims_json: *const c_char,
    ttl_seconds: i64,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C string per the contract.
        let claims = unsafe { arg(claims_json, "claims_json") }?;
        out(out_token, "out_token")?;
        let claims = irontoken::jwt::object_from_json(claims, "claims_json")?;
        let t = tm.issue_jwt(&claims, (ttl_seconds > 0).then_some(ttl_seconds))?;
        write_opt(out_token, || Ok(t))
    })
}

/// Verifies a token issued by this manager's keys under `policy_json` (as
/// for `itk_jwt_verifier_new`). Writes `{"header": ..., "claims": ...}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verify_issued(
    m: *const itk_manager,
    token: *const c_char,
    policy_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe { verify_issued(m, token, policy_json, out_json, false) }
}

/// Like `itk_jwt_verify_issued`, then claims the token's `jti` until its
/// `exp`: a token accepted once is refused with `ITK_STATUS_JWT_REPLAYED`
/// after, in every process and host on the store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verify_issued_once(
    m: *const itk_manager,
    token: *const c_char,
    policy_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe { verify_issued(m, token, policy_json, out_json, true) }
}

/// `itk_jwt_verify_issued` (`once`: and its jti claimed).
///
/// # Safety
/// As the entry points that call it.
unsafe fn verify_issued(
    m: *const itk_manager,
    token: *const c_char,
    policy_json: *const c_char,
    out_json: *mut *mut c_char,
    once: bool,
) -> itk_status {
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let (token, policy) = unsafe { (arg(token, "token")?, arg(policy_json, "policy_json")?) };
        out(out_json, "out_json")?;
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy)?;
        let d = if once {
            tm.verify_jwt_once(token, &policy)?
        } else {
            tm.verify_jwt(token, &policy)?
        };
        let json = to_json(&serde_json::json!({"header": d.header, "claims": d.claims}))?;
        write_opt(out_json, || Ok(json))
    })
}

/// Exchanges a valid API key for an access token. `options_json` may be NULL
/// or an object with `required_scopes` (array) and `ttl_seconds`. Writes
/// `{"token", "expires_at", "key_id", "owner", "scopes"}` to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_api_key_exchange(
    m: *const itk_manager,
    api_key: *const c_char,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> itk_status {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct O {
        required_scopes: Vec<String>,
        ttl_seconds: Option<i64>,
    }
    guard(|| {
        let tm = manager(m)?;
        // SAFETY: C strings per the contract.
        let key = unsafe { arg(api_key, "api_key") }?;
        // SAFETY: as above.
        let o: O = unsafe { json_arg(options_json, "options_json") }?;
        out(out_json, "out_json")?;
        let scopes: Vec<&str> = o.required_scopes.iter().map(String::as_str).collect();
        let at = to_json(&tm.exchange_api_key(key, &scopes, o.ttl_seconds)?)?;
        write_opt(out_json, || Ok(at))
    })
}

/// A key (or keyring) and a verification policy, parsed once (opaque).
/// Create with `itk_jwt_verifier_new`, free with `itk_jwt_verifier_free`.
pub struct itk_jwt_verifier {
    v: irontoken::jwt::Verifier,
}

fn new_verifier(
    keys: irontoken::jwt::Keyring,
    policy_json: &str,
    out: *mut *mut itk_jwt_verifier,
) -> Result<(), Error> {
    let policy = irontoken::jwt::PolicySettings::policy_from_json(policy_json)?;
    give(
        out,
        itk_jwt_verifier {
            v: irontoken::jwt::Verifier::new(keys, policy)?,
        },
    )
}

/// Parses `key` (a JWKS or JWK JSON text, a PEM public key or certificate
/// (anywhere in the text), an OpenSSH public key line, or an HMAC secret as
/// text; judged by content, see `itk_jwt_verifier_new_key`) and `policy_json` (`algorithms` required; optional
/// `leeway`, `issuer` (string or array), `audience` (array), `subject`, `required` (array),
/// `require_exp` [true], `require_sub` [false], `verify_exp`, `verify_nbf`, `verify_iat`,
/// `verify_aud`, `verify_iss`, `verify_sub` [true], `strict_aud` [false],
/// `max_token_bytes`) into a verifier written to `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_new(
    key: *const c_char,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let (key, policy) = unsafe { (arg(key, "key")?, arg(policy_json, "policy_json")?) };
        crate::out(out, "out")?;
        new_verifier(irontoken::jwt::Keyring::from_text(key)?, policy, out)
    })
}

/// `len` bytes at `p` (NULL only with `len` 0), checked before any use.
///
/// # Safety
/// `p` points at `len` readable bytes that outlive the returned slice.
unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what} length is out of range")));
    }
    // SAFETY: non-NULL, length in range, readable per the contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Like `itk_jwt_verifier_new` with a binary HMAC secret of `len` bytes (at
/// least 32). Material that is a key or certificate in any form (PEM, DER,
/// JWK, OpenSSH) is refused with `ITK_STATUS_INVALID_KEY_MATERIAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_new_hmac(
    secret: *const u8,
    len: usize,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        verifier_from_bytes(secret, len, "secret", policy_json, out, |b| {
            Ok(irontoken::jwt::Keyring::single(
                irontoken::jwt::VerifyingKey::hmac(b)?,
            ))
        })
    }
}

/// A verifier from `len` bytes at `key`, loaded by `load`, and policy JSON.
///
/// # Safety
/// `key` points at `len` readable bytes; `policy_json` is a C string.
unsafe fn verifier_from_bytes(
    key: *const u8,
    len: usize,
    what: &str,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
    load: impl FnOnce(&[u8]) -> Result<irontoken::jwt::Keyring, Error>,
) -> itk_status {
    guard(|| {
        // SAFETY: the caller gives `len` readable bytes at `key`.
        let bytes = unsafe { bytes_arg(key, len, what) }?;
        // SAFETY: C string per the contract.
        let policy = unsafe { arg(policy_json, "policy_json") }?;
        crate::out(out, "out")?;
        new_verifier(load(bytes)?, policy, out)
    })
}

/// Like `itk_jwt_verifier_new` with key material of `len` bytes in any form,
/// judged by its content: PEM (anywhere in the bytes), DER (SPKI, PKCS#1,
/// certificate), JWK/JWKS JSON, an OpenSSH public key, or else an HMAC
/// secret. Asymmetric material is never used as an HMAC secret.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_new_key(
    key: *const u8,
    len: usize,
    policy_json: *const c_char,
    out: *mut *mut itk_jwt_verifier,
) -> itk_status {
    // SAFETY: forwarded contract.
    unsafe {
        verifier_from_bytes(key, len, "key", policy_json, out, |b| {
            irontoken::jwt::Keyring::from_bytes(b)
        })
    }
}

/// `*now`, or the system clock when `now` is NULL.
///
/// # Safety
/// `now` is NULL or points at a readable int64.
unsafe fn now_arg(now: *const i64) -> i64 {
    if now.is_null() {
        irontoken::Clock::now(&irontoken::SystemClock)
    } else {
        // SAFETY: non-NULL pointer to an int64 given by the caller.
        unsafe { *now }
    }
}

/// Writes a verified JWT as `{"header": {...}, "claims": {...}}`.
fn write_decoded(out_json: *mut *mut c_char, d: irontoken::jwt::Decoded) -> Result<(), Error> {
    let json = to_json(&serde_json::json!({"header": d.header, "claims": d.claims}))?;
    write_opt(out_json, || Ok(json))
}

/// Frees a verifier. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_free(v: *mut itk_jwt_verifier) {
    // SAFETY: `v` is NULL or came from itk_jwt_verifier_new*, freed once.
    unsafe { release(v) }
}

/// Verifies a JWT. `now` points at the time to check against (Unix seconds)
/// or is NULL for the system clock. On success writes
/// `{"header": {...}, "claims": {...}}` to `*out_json`; a refused token is an
/// error status (`ITK_STATUS_JWT_*`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_decode(
    v: *const itk_jwt_verifier,
    token: *const c_char,
    now: *const i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let v = &handle(v, "verifier")?.v;
        // SAFETY: C string per the contract.
        let token = unsafe { arg(token, "token") }?;
        out(out_json, "out_json")?;
        // SAFETY: `now` is NULL or points at an int64, per the contract.
        let d = v.decode_at(token, unsafe { now_arg(now) })?;
        write_decoded(out_json, d)
    })
}

/// Verifies a compact JWS (signature and header policy only; the payload can
/// be anything, e.g. a webhook body). On success writes the header JSON to
/// `*out_header_json` (may be NULL), the payload to `*out_payload` and its
/// length to `*out_len`; free the payload with `itk_bytes_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_verifier_verify_jws(
    v: *const itk_jwt_verifier,
    token: *const c_char,
    out_header_json: *mut *mut c_char,
    out_payload: *mut *mut u8,
    out_len: *mut usize,
) -> itk_status {
    guard(|| {
        let v = &handle(v, "verifier")?.v;
        // SAFETY: C string per the contract.
        let token = unsafe { arg(token, "token") }?;
        out(out_payload, "out_payload")?;
        out(out_len, "out_len")?;
        let d = v.verify_jws(token)?;
        let header = to_json(&d.header)?;
        write_opt(out_header_json, || Ok(header))?;
        let len = d.payload.len();
        let ptr = Box::into_raw(d.payload.into_boxed_slice()).cast::<u8>();
        // SAFETY: both out-params checked non-NULL.
        unsafe {
            *out_payload = ptr;
            *out_len = len;
        }
        Ok(())
    })
}

/// Frees a byte buffer returned by irontoken (`len` as returned). NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_bytes_free(p: *mut u8, len: usize) {
    // SAFETY: `p`/`len` are NULL or a boxed slice of this library, freed once.
    unsafe { release(std::ptr::slice_from_raw_parts_mut(p, len)) }
}

/// Parses a signing key given as text and names its algorithm and `kid`.
///
/// # Safety
/// C strings per the contract.
unsafe fn signer_from(
    key: *const c_char,
    alg: *const c_char,
    kid: *const c_char,
) -> Result<irontoken::jwt::Signer, Error> {
    // SAFETY: forwarded contract.
    let (key, alg, kid) = unsafe { (arg(key, "key")?, arg(alg, "alg")?, opt_arg(kid, "kid")?) };
    irontoken::jwt::Signer::named(irontoken::jwt::SigningKey::from_text(key)?, alg, kid)
}

/// Signs `claims_json` (a JSON object) with `key` (a PEM private key or an
/// HMAC secret as text) and `alg` (e.g. "RS256"). `header_json` (extra header
/// parameters) and `kid` may be NULL. Writes the token to `*out_token`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_encode(
    claims_json: *const c_char,
    key: *const c_char,
    alg: *const c_char,
    header_json: *const c_char,
    kid: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        // Arguments first, in order: NULL claims is INVALID_ARGUMENT whatever the key.
        // SAFETY: C string per the contract.
        unsafe { arg(claims_json, "claims_json") }?;
        // SAFETY: C strings per the contract.
        let signer = unsafe { signer_from(key, alg, kid) }?;
        // SAFETY: as above.
        unsafe { sign_into(&signer, claims_json, header_json, out_token) }
    })
}

/// Signs JSON claims (and optional header JSON) and writes the token.
///
/// # Safety
/// C strings per the contract.
unsafe fn sign_into(
    signer: &irontoken::jwt::Signer,
    claims_json: *const c_char,
    header_json: *const c_char,
    out_token: *mut *mut c_char,
) -> Result<(), Error> {
    // SAFETY: forwarded contract.
    let (claims, header) = unsafe {
        (
            arg(claims_json, "claims_json")?,
            opt_arg(header_json, "header_json")?,
        )
    };
    out(out_token, "out_token")?;
    let token = signer.sign_json(claims, header)?;
    write_opt(out_token, || Ok(token))
}

/// A remote JWKS with its cache (opaque): fetched over HTTPS (http:// only
/// to loopback unless `allow_http`), cached, refetched for an unknown `kid`
/// at most once per cooldown. Create with `itk_jwks_remote_new`, free with
/// `itk_jwks_remote_free`; safe to share between threads.
pub struct itk_jwks_remote {
    r: irontoken::jwt::RemoteJwks,
}

/// A remote JWKS at `url`; `options_json` may be NULL (defaults) or an
/// object with `timeout_ms` [5000], `max_bytes` [524288], `cache_max_age_ms`
/// [600000], `cooldown_ms` [30000], `stale_max_ms` [3600000], `allow_http`
/// [false], `headers` (object). Nothing is fetched until first use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_new(
    url: *const c_char,
    options_json: *const c_char,
    out: *mut *mut itk_jwks_remote,
) -> itk_status {
    guard(|| {
        // SAFETY: C strings per the contract.
        let (url, options) = unsafe { (arg(url, "url")?, opt_arg(options_json, "options_json")?) };
        crate::out(out, "out")?;
        let opts = irontoken::jwt::RemoteJwksSettings::options_from_json(options.unwrap_or(""))?;
        let r = irontoken::jwt::RemoteJwks::new(url, opts)?;
        give(out, itk_jwks_remote { r })
    })
}

/// Verifies a JWT against the remote set under `policy_json` (as for
/// `itk_jwt_verifier_new`); `now` is NULL for the system clock. May block
/// on the network up to the timeout. On success writes
/// `{"header": {...}, "claims": {...}}` to `*out_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_decode(
    r: *const itk_jwks_remote,
    token: *const c_char,
    policy_json: *const c_char,
    now: *const i64,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let r = &handle(r, "remote")?.r;
        // SAFETY: C strings per the contract.
        let (token, policy) = unsafe { (arg(token, "token")?, arg(policy_json, "policy_json")?) };
        out(out_json, "out_json")?;
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy)?;
        // SAFETY: `now` is NULL or points at an int64, per the contract.
        let d = r.decode(token, &policy, unsafe { now_arg(now) })?;
        write_decoded(out_json, d)
    })
}

/// Fetches the set now; writes its JSON to `*out_json` (may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_reload(
    r: *const itk_jwks_remote,
    out_json: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let r = &handle(r, "remote")?.r;
        r.refetch()?;
        let raw = r.raw()?.to_string();
        write_opt(out_json, || Ok(raw))
    })
}

/// How many times the set was fetched (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_fetch_count(r: *const itk_jwks_remote) -> u64 {
    handle(r, "remote").map(|h| h.r.fetch_count()).unwrap_or(0)
}

/// Frees a remote JWKS. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwks_remote_free(r: *mut itk_jwks_remote) {
    // SAFETY: `r` is NULL or came from itk_jwks_remote_new, freed once.
    unsafe { release(r) }
}

/// A signing key and algorithm, parsed once (opaque). Create with
/// `itk_jwt_signer_new`, free with `itk_jwt_signer_free`.
pub struct itk_jwt_signer {
    s: irontoken::jwt::Signer,
}

/// Parses `key` (a PEM private key or an HMAC secret as text) for `alg`;
/// `kid` may be NULL. Writes the signer to `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_new(
    key: *const c_char,
    alg: *const c_char,
    kid: *const c_char,
    out: *mut *mut itk_jwt_signer,
) -> itk_status {
    guard(|| {
        crate::out(out, "out")?;
        // SAFETY: C strings per the contract.
        let s = unsafe { signer_from(key, alg, kid) }?;
        give(out, itk_jwt_signer { s })
    })
}

/// Signs `claims_json` (a JSON object; `header_json` may be NULL) into `*out_token`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_sign(
    s: *const itk_jwt_signer,
    claims_json: *const c_char,
    header_json: *const c_char,
    out_token: *mut *mut c_char,
) -> itk_status {
    guard(|| {
        let s = &handle(s, "signer")?.s;
        // SAFETY: C strings per the contract.
        unsafe { sign_into(s, claims_json, header_json, out_token) }
    })
}

/// Like `itk_jwt_signer_new` with key material of `len` bytes in any form,
/// judged by content: a private key in PEM or DER (PKCS#1, PKCS#8, SEC1), or
/// else an HMAC secret. Public keys and certificates are refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_new_key(
    key: *const u8,
    len: usize,
    alg: *const c_char,
    kid: *const c_char,
    out: *mut *mut itk_jwt_signer,
) -> itk_status {
    guard(|| {
        crate::out(out, "out")?;
        // SAFETY: the caller gives `len` readable bytes at `key`.
        let bytes = unsafe { bytes_arg(key, len, "key") }?;
        // SAFETY: C strings per the contract.
        let (alg, kid) = unsafe { (arg(alg, "alg")?, opt_arg(kid, "kid")?) };
        let s = irontoken::jwt::Signer::named(
            irontoken::jwt::SigningKey::from_bytes(bytes)?,
            alg,
            kid,
        )?;
        give(out, itk_jwt_signer { s })
    })
}

/// Frees a signer. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn itk_jwt_signer_free(s: *mut itk_jwt_signer) {
    // SAFETY: `s` is NULL or came from itk_jwt_signer_new, freed once.
    unsafe { release(s) }
}
