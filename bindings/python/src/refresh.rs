//! Refresh-token families (`issue_token_pair`, `refresh_token_pair`, ...).

use super::*;

#[pymethods]
impl TokenManager {
    /// Starts a refresh-token family for `subject`: an access JWT (managed
    /// keys) and a refresh token that gets the next pair once. Returns
    /// `{access_token, refresh_token, expires_in, expires_at,
    /// refresh_expires_at, family_id, token_type, scopes}`.
    /// `dpop_jkt` (a proof's `jkt`) or `cert_thumbprint` bind the family to
    /// a key or a client certificate.
    #[pyo3(signature = (subject, *, scopes=None, ttl_seconds=900, refresh_ttl_seconds=None, family_ttl_seconds=None, claims=None, dpop_jkt=None, cert_thumbprint=None))]
    #[allow(clippy::too_many_arguments)]
    fn issue_token_pair<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        #[pyo3(from_py_with = scopes_arg)] scopes: Option<Vec<String>>,
        #[pyo3(from_py_with = int::<i64>)] ttl_seconds: i64,
        #[pyo3(from_py_with = opt_int::<i64>)] refresh_ttl_seconds: Option<i64>,
        #[pyo3(from_py_with = opt_int::<i64>)] family_ttl_seconds: Option<i64>,
        claims: Option<Bound<'_, PyAny>>,
        dpop_jkt: Option<String>,
        cert_thumbprint: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let req = irontoken::refresh::NewTokenPair {
            subject,
            scopes: scopes.unwrap_or_default(),
            claims: claims
                .map(|c| to_object(py, &c, "claims"))
                .transpose()?
                .unwrap_or_default(),
            ttl_seconds: Some(ttl_seconds),
            refresh_ttl_seconds,
            family_ttl_seconds,
            dpop_jkt,
            cert_thumbprint,
        };
        call_py(py, || tm.issue_token_pair(&req))
    }

    /// Spends `refresh_token` and returns the family's next pair. A token
    /// spent before raises `RefreshTokenReusedError` and revokes the family.
    /// A bound family needs `dpop_proof` (with `htm`, `htu` of the refresh
    /// request) or `client_cert`.
    #[pyo3(signature = (refresh_token, *, dpop_proof=None, htm=None, htu=None, dpop_nonce=None, client_cert=None))]
    #[allow(clippy::too_many_arguments)]
    fn refresh_token_pair<'py>(
        &self,
        py: Python<'py>,
        refresh_token: &str,
        dpop_proof: Option<String>,
        htm: Option<String>,
        htu: Option<String>,
        dpop_nonce: Option<String>,
        client_cert: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let presented =
            crate::dpop::presented(dpop_proof, htm, htu, dpop_nonce, client_cert.as_ref())
                .map_err(|e| to_py(py, e))?;
        call_py(py, || {
            tm.refresh_token_pair_presented(refresh_token, &presented)
        })
    }

    /// The token family `family_id` (status computed now).
    fn get_token_family<'py>(
        &self,
        py: Python<'py>,
        family_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        call_py(py, || tm.get_token_family(family_id))
    }

    /// Revokes the family `family_id`; False if it was revoked already.
    #[pyo3(signature = (family_id, *, reason=None))]
    fn revoke_token_family(
        &self,
        py: Python<'_>,
        family_id: &str,
        reason: Option<&str>,
    ) -> PyResult<bool> {
        let tm = self.core(py)?;
        call(py, || tm.revoke_token_family(family_id, reason))
    }

    /// Revokes every live family of `subject`; returns how many.
    #[pyo3(signature = (subject, *, reason=None))]
    fn revoke_token_families(
        &self,
        py: Python<'_>,
        subject: &str,
        reason: Option<&str>,
    ) -> PyResult<u64> {
        let tm = self.core(py)?;
        call(py, || tm.revoke_token_families(subject, reason))
    }
}
