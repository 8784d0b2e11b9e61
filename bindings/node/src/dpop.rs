//! DPoP proofs (RFC 9449) and certificate thumbprints (RFC 8705):
//! `verifyDpopProof` on a manager (accepted once) and at module level
//! (stateless), `jwkThumbprint`, `certThumbprint`, and the proof of
//! possession `verifyJwt` and `refreshTokenPair` take.

use super::*;
use irontoken::jwt::dpop::{self, DpopCheck};

/// What a caller presented with a token: a DPoP proof with the request it
/// names, and/or the TLS client certificate (PEM text, DER or PEM Buffer).
#[napi(object)]
pub struct PresentedArg {
    /// The `DPoP` header's proof.
    pub dpop_proof: Option<String>,
    /// The request's method.
    pub htm: Option<String>,
    /// The request's URI.
    pub htu: Option<String>,
    /// The nonce the server gave the client, if any.
    pub dpop_nonce: Option<String>,
    /// The client certificate.
    pub client_cert: Option<Either<String, Buffer>>,
}

/// A [`PresentedArg`] as core takes it (the rules are core's).
pub(crate) fn presented_of(p: Option<PresentedArg>) -> Result<irontoken::replay::Presented, Code> {
    let Some(p) = p else {
        return Ok(Default::default());
    };
    let cert = p.client_cert.map(|c| match c {
        Either::A(text) => text.into_bytes(),
        Either::B(bytes) => bytes.to_vec(),
    });
    irontoken::replay::Presented::new(p.dpop_proof, p.htm, p.htu, p.dpop_nonce, cert).map_err(err)
}

/// The options of `verifyDpopProof`: `{ htm, htu, accessToken?, nonce?,
/// maxAgeSeconds?, jkt? }` (and `now` at module level).
fn check_of(options: Value) -> Result<(DpopCheck, Option<i64>), Code> {
    let mut o = options;
    let now = match o.as_object_mut().and_then(|m| m.remove("now")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| invalid("options.now must be an integer (Unix seconds)"))?,
        ),
    };
    Ok((req(o, "options")?, now))
}

#[napi]
impl TokenManager {
    /// Verifies a DPoP proof for the request and accepts it once: its
    /// `jti` is claimed in every process and host on the store.
    #[napi(
        catch_unwind,
        ts_args_type = "proof: string, options: DpopCheckOptions",
        ts_return_type = "DpopProof"
    )]
    pub fn verify_dpop_proof(&self, proof: String, options: Value) -> Result<Json, Code> {
        let (check, now) = check_of(options)?;
        if now.is_some() {
            return Err(invalid(
                "options.now is for the module-level verifyDpopProof",
            ));
        }
        ans(self.core()?.verify_dpop_proof(&proof, &check))
    }

    /// `verifyDpopProof` off the JS thread (its claim is a write).
    #[napi(
        catch_unwind,
        ts_args_type = "proof: string, options: DpopCheckOptions",
        ts_return_type = "Promise<DpopProof>"
    )]
    pub fn verify_dpop_proof_async(
        &self,
        proof: String,
        options: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let (check, now) = check_of(options)?;
        if now.is_some() {
            return Err(invalid(
                "options.now is for the module-level verifyDpopProof",
            ));
        }
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.verify_dpop_proof(&proof, &check))
        }))
    }

    /// `verifyJwt` with what the caller presented, off the JS thread (a
    /// DPoP proof's claim is a write): `{ payload, protectedHeader }`, the
    /// claims verbatim. Errors carry the irontoken code only.
    #[napi(
        catch_unwind,
        ts_args_type = "token: string, policyJson: string, presented?: PresentedOptions",
        ts_return_type = "Promise<{ payload: Record<string, unknown>; protectedHeader: Record<string, unknown> }>"
    )]
    pub fn verify_jwt_presented_async(
        &self,
        token: String,
        policy_json: String,
        presented: Option<PresentedArg>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let policy = irontoken::jwt::PolicySettings::policy_from_json(&policy_json).map_err(err)?;
        let p = presented_of(presented)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            let d = tm.verify_jwt_presented(&token, &policy, &p)?;
            json_text(&serde_json::json!({"payload": d.claims, "protectedHeader": d.header}))
        }))
    }
}

/// Verifies a DPoP proof without the replay check (`now`: Unix seconds,
/// default the system clock); a manager's `verifyDpopProof` accepts each
/// proof once.
#[napi(
    catch_unwind,
    ts_args_type = "proof: string, options: DpopCheckOptions & { now?: number }",
    ts_return_type = "DpopProof"
)]
pub fn verify_dpop_proof(proof: String, options: Value) -> Result<Json, Code> {
    use irontoken::Clock;
    let (check, now) = check_of(options)?;
    let now = now.unwrap_or_else(|| irontoken::SystemClock.now());
    ans(dpop::verify_proof(&proof, &check, now))
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK: what `cnf.jkt` holds.
#[napi(catch_unwind, ts_args_type = "jwk: Record<string, unknown>")]
pub fn jwk_thumbprint(jwk: Value) -> Result<String, Code> {
    match jwk {
        Value::Object(m) => dpop::jwk_thumbprint(&m).map_err(err),
        _ => Err(invalid("jwk must be a plain object")),
    }
}

/// The RFC 8705 thumbprint of a client certificate (PEM, DER, or PEM
/// percent-encoded as proxies forward it): what `cnf["x5t#S256"]` holds.
#[napi(catch_unwind)]
pub fn cert_thumbprint(cert: Either<String, Buffer>) -> Result<String, Code> {
    let bytes: &[u8] = match &cert {
        Either::A(t) => t.as_bytes(),
        Either::B(b) => b,
    };
    irontoken::jwt::mtls::cert_thumbprint(bytes).map_err(err)
}

/// The binding rule for claims verified anywhere (a `JwtVerifier`, a
/// remote JWKS): refuses a certificate-bound token without that
/// `clientCert` and a key-bound one when no proof is given; returns the
/// `jkt` a given DPoP proof must be made with (null: unbound).
#[napi(
    catch_unwind,
    ts_args_type = "claims: Record<string, unknown>, options?: { clientCert?: string | Uint8Array; proofGiven?: boolean }"
)]
pub fn token_binding(
    claims: Value,
    options: Option<TokenBindingOptions>,
) -> Result<Option<String>, Code> {
    let Value::Object(claims) = claims else {
        return Err(invalid("claims must be a plain object"));
    };
    let o = options.unwrap_or(TokenBindingOptions {
        client_cert: None,
        proof_given: None,
    });
    let cert: Option<Vec<u8>> = o.client_cert.map(|c| match c {
        Either::A(text) => text.into_bytes(),
        Either::B(bytes) => bytes.to_vec(),
    });
    irontoken::replay::binding_of(&claims, cert.as_deref(), o.proof_given.unwrap_or(false))
        .map(|j| j.map(str::to_string))
        .map_err(err)
}

/// Options of `tokenBinding`.
#[napi(object)]
pub struct TokenBindingOptions {
    /// The TLS client certificate presented.
    pub client_cert: Option<Either<String, Buffer>>,
    /// Whether a DPoP proof came with the token.
    pub proof_given: Option<bool>,
}
