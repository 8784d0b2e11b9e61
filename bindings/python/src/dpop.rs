//! DPoP proofs (RFC 9449) and certificate thumbprints (RFC 8705):
//! `tm.verify_dpop_proof`, the stateless `dpop_verify_proof`,
//! `jwk_thumbprint` and `cert_thumbprint`, and the `Presented` that
//! `verify_jwt` and `refresh_token_pair` build from their keywords.

use super::*;
use irontoken::jwt::dpop::{self, DpopCheck};

/// The request a DPoP proof must match.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dpop_check(
    htm: String,
    htu: String,
    access_token: Option<String>,
    nonce: Option<String>,
    max_age_seconds: i64,
    jkt: Option<String>,
) -> DpopCheck {
    DpopCheck {
        htm,
        htu,
        access_token,
        nonce,
        max_age_seconds: Some(max_age_seconds),
        leeway_seconds: None,
        jkt,
    }
}

/// What a caller presented with a token, from the keywords of
/// `verify_jwt` / `refresh_token_pair` (the rules are core's).
pub(crate) fn presented(
    dpop_proof: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    dpop_nonce: Option<String>,
    client_cert: Option<&Bound<'_, PyAny>>,
) -> Result<irontoken::replay::Presented, Error> {
    let cert = client_cert.map(crate::jwt::key_material).transpose()?;
    irontoken::replay::Presented::new(dpop_proof, htm, htu, dpop_nonce, cert)
}

#[pymethods]
impl TokenManager {
    /// Verifies a DPoP proof for the request (`htm`, `htu`) and accepts it
    /// once: its `jti` is claimed in every process and host on the store.
    /// Returns the proof's `jkt`, `alg`, `jwk`, `jti`, `iat`, `htm`, `htu`,
    /// `ath`, `nonce`.
    #[pyo3(signature = (proof, *, htm, htu, access_token=None, nonce=None, max_age_seconds=300, jkt=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify_dpop_proof<'py>(
        &self,
        py: Python<'py>,
        proof: &str,
        htm: String,
        htu: String,
        access_token: Option<String>,
        nonce: Option<String>,
        #[pyo3(from_py_with = int::<i64>)] max_age_seconds: i64,
        jkt: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let check = dpop_check(htm, htu, access_token, nonce, max_age_seconds, jkt);
        call_py(py, || tm.verify_dpop_proof(proof, &check))
    }
}

/// Verifies a DPoP proof without the replay check (`now`: Unix seconds,
/// default the system clock). Use a manager's `verify_dpop_proof` to accept
/// each proof once.
#[pyfunction]
#[pyo3(signature = (proof, *, htm, htu, access_token=None, nonce=None, max_age_seconds=300, jkt=None, now=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn dpop_verify_proof<'py>(
    py: Python<'py>,
    proof: &str,
    htm: String,
    htu: String,
    access_token: Option<String>,
    nonce: Option<String>,
    #[pyo3(from_py_with = int::<i64>)] max_age_seconds: i64,
    jkt: Option<String>,
    #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    use irontoken::Clock;
    let check = dpop_check(htm, htu, access_token, nonce, max_age_seconds, jkt);
    let now = now.unwrap_or_else(|| irontoken::SystemClock.now());
    call_py(py, || dpop::verify_proof(proof, &check, now))
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (base64url): what
/// `cnf.jkt` holds.
#[pyfunction]
pub(crate) fn jwk_thumbprint(py: Python<'_>, jwk: &Bound<'_, PyAny>) -> PyResult<String> {
    let j = to_object(py, jwk, "jwk")?;
    dpop::jwk_thumbprint(&j).map_err(|e| to_py(py, e))
}

/// The RFC 8705 thumbprint of a client certificate (PEM, DER, or PEM
/// percent-encoded as proxies forward it): what `cnf["x5t#S256"]` holds.
#[pyfunction]
pub(crate) fn cert_thumbprint(py: Python<'_>, cert: &Bound<'_, PyAny>) -> PyResult<String> {
    let bytes = crate::jwt::key_material(cert).map_err(|e| to_py(py, e))?;
    irontoken::jwt::mtls::cert_thumbprint(&bytes).map_err(|e| to_py(py, e))
}

/// The binding rule for claims verified anywhere (a `JwtVerifier`, a
/// remote JWKS): refuses a certificate-bound token without that
/// `client_cert` and a key-bound one when no proof is given; returns the
/// `jkt` a given DPoP proof must be made with (None: unbound).
#[pyfunction]
#[pyo3(signature = (claims, *, client_cert=None, proof_given=false))]
pub(crate) fn token_binding(
    py: Python<'_>,
    claims: &Bound<'_, PyAny>,
    client_cert: Option<Bound<'_, PyAny>>,
    proof_given: bool,
) -> PyResult<Option<String>> {
    let claims = to_object(py, claims, "claims")?;
    let cert = client_cert
        .as_ref()
        .map(crate::jwt::key_material)
        .transpose()
        .map_err(|e| to_py(py, e))?;
    irontoken::replay::binding_of(&claims, cert.as_deref(), proof_given)
        .map(|j| j.map(str::to_string))
        .map_err(|e| to_py(py, e))
}
