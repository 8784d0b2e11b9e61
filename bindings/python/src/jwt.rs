//! JWT: managed signing keys, issuance and API key exchange on the
//! manager; key material, verifiers, remote JWKS and signers.

use super::*;

#[pymethods]
impl TokenManager {
    /// Generates a managed signing key (RS256, ES256, EdDSA, HS256) and makes it active.
    #[pyo3(signature = (algorithm, *, actor=None))]
    fn create_signing_key<'py>(
        &self,
        py: Python<'py>,
        algorithm: &str,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let alg = irontoken::jwt::Alg::from_name(algorithm).map_err(|e| to_py(py, e))?;
        let k = call(py, || tm.create_signing_key(alg, actor))?;
        to_py_serialized(py, &k)
    }

    /// Makes a new key active; the old one verifies for `overlap_seconds` more.
    #[pyo3(signature = (*, algorithm=None, overlap_seconds=0, actor=None))]
    fn rotate_signing_key<'py>(
        &self,
        py: Python<'py>,
        algorithm: Option<&str>,
        #[pyo3(from_py_with = int::<i64>)] overlap_seconds: i64,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let alg = algorithm
            .map(irontoken::jwt::Alg::from_name)
            .transpose()
            .map_err(|e| to_py(py, e))?;
        let k = call(py, || tm.rotate_signing_key(alg, overlap_seconds, actor))?;
        to_py_serialized(py, &k)
    }

    /// The scheduled rotation (cron on any number of hosts): rotates the
    /// active key if it is at least `every_seconds` old; the new key, or None.
    #[pyo3(signature = (every_seconds, *, overlap_seconds=0, actor=None))]
    fn rotate_signing_key_if_due<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = int::<i64>)] every_seconds: i64,
        #[pyo3(from_py_with = int::<i64>)] overlap_seconds: i64,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let k = call(py, || {
            tm.rotate_signing_key_if_due(every_seconds, overlap_seconds, actor)
        })?;
        to_py_serialized(py, &k)
    }

    /// Retires a signing key now.
    #[pyo3(signature = (kid, *, actor=None))]
    fn retire_signing_key<'py>(
        &self,
        py: Python<'py>,
        kid: &str,
        actor: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let k = call(py, || tm.retire_signing_key(kid, actor))?;
        to_py_serialized(py, &k)
    }

    /// Every managed signing key (no private material).
    fn list_signing_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let keys = call(py, || tm.list_signing_keys())?;
        to_py_serialized(py, &keys)
    }

    /// The public JWKS of the keys that verify now.
    fn jwks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let v = call(py, || tm.jwks())?;
        to_py_value(py, &v)
    }

    /// Signs `claims` with the active managed key (iat, exp, jti added when absent).
    #[pyo3(signature = (claims, *, ttl_seconds=None))]
    fn issue_jwt(
        &self,
        py: Python<'_>,
        claims: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<String> {
        let tm = self.core(py)?;
        let c = to_object(py, claims, "claims")?;
        call(py, || tm.issue_jwt(&c, ttl_seconds))
    }

    /// Verifies a token issued by this manager's keys; returns its claims.
    /// With `require_fresh_jti`, its `jti` is claimed until its `exp`: a
    /// token accepted once raises `TokenReplayedError` (`JWT_REPLAYED`) after.
    /// A token bound to a DPoP key or a client certificate (`cnf`) needs
    /// `dpop_proof` with the request's `htm` and `htu` (and the server's
    /// `dpop_nonce`, if it gives one), or `client_cert`.
    #[pyo3(signature = (token, *, algorithms, audience=None, issuer=None, subject=None, leeway=0, required=None, require_exp=None, require_sub=None, require_fresh_jti=false, dpop_proof=None, htm=None, htu=None, dpop_nonce=None, client_cert=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify_jwt<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        #[pyo3(from_py_with = algorithms_arg)] algorithms: Vec<String>,
        #[pyo3(from_py_with = audience_arg)] audience: Option<Vec<String>>,
        issuer: Option<String>,
        subject: Option<String>,
        #[pyo3(from_py_with = int::<i64>)] leeway: i64,
        #[pyo3(from_py_with = required_arg)] required: Option<Vec<String>>,
        require_exp: Option<bool>,
        require_sub: Option<bool>,
        require_fresh_jti: bool,
        dpop_proof: Option<String>,
        htm: Option<String>,
        htu: Option<String>,
        dpop_nonce: Option<String>,
        client_cert: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let tm = self.core(py)?;
        let presented =
            crate::dpop::presented(dpop_proof, htm, htu, dpop_nonce, client_cert.as_ref())
                .map_err(|e| to_py(py, e))?;
        let policy = irontoken::jwt::PolicySettings {
            algorithms,
            leeway: Some(leeway),
            issuer: issuer.map(Into::into),
            audience,
            subject,
            required,
            require_exp,
            require_sub,
            ..Default::default()
        }
        .into_policy()
        .map_err(|e| to_py(py, e))?;
        let d = call(py, || {
            if require_fresh_jti {
                tm.verify_jwt_presented_once(token, &policy, &presented)
            } else {
                tm.verify_jwt_presented(token, &policy, &presented)
            }
        })?;
        to_py_dict(py, &d.claims)
    }

    /// Exchanges a valid API key for a short-lived access token.
    #[pyo3(signature = (api_key, *, required_scopes=None, ttl_seconds=None))]
    fn exchange_api_key<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = key_text)] api_key: KeyText,
        #[pyo3(from_py_with = required_scopes_arg)] required_scopes: Option<Vec<String>>,
        #[pyo3(from_py_with = opt_int::<i64>)] ttl_seconds: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tm = self.core(py)?;
        let scopes = required_scopes.unwrap_or_default();
        let at = call(py, || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.exchange_api_key(&api_key, &s, ttl_seconds)
        })?;
        to_py_serialized(py, &at)
    }
}

/// Key material from Python as bytes, whichever of str, bytes, bytearray or
/// memoryview it came as: what it is comes from its content, in core.
pub(crate) fn key_material(key: &Bound<'_, PyAny>) -> Result<Vec<u8>, Error> {
    if let Ok(b) = key.cast::<pyo3::types::PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = key.extract::<String>() {
        return Ok(s.into_bytes());
    }
    if let Ok(v) = key.extract::<Vec<u8>>() {
        return Ok(v);
    }
    Err(Error::new(
        irontoken::ErrorKind::InvalidKeyMaterial,
        "key must be str or bytes (PEM, DER, JWK, JWKS, OpenSSH public key or HMAC secret)",
    ))
}

/// A keyring from Python key material (str or bytes, judged by content, or
/// a parsed `Jwk`).
pub(crate) fn keyring_of(key: &Bound<'_, PyAny>) -> Result<Arc<irontoken::jwt::Keyring>, Error> {
    if let Ok(j) = key.cast::<Jwk>() {
        return Ok(Arc::new(irontoken::jwt::Keyring::single(j.get().0.clone())));
    }
    irontoken::jwt::Keyring::from_bytes_cached(&key_material(key)?)
}

/// One JWK parsed once (PyJWK's key): verifies without re-parsing.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct Jwk(irontoken::jwt::VerifyingKey);

#[pymethods]
impl Jwk {
    #[new]
    fn new(py: Python<'_>, json: &str) -> PyResult<Self> {
        irontoken::jwt::VerifyingKey::from_jwk(json)
            .map(Jwk)
            .map_err(|e| to_py(py, e))
    }

    /// The JWK `kid`, if any.
    #[getter]
    fn kid(&self) -> Option<String> {
        self.0.kid().map(str::to_string)
    }

    /// The JWK `kty`: `oct`, `RSA`, `EC` or `OKP`.
    #[getter]
    fn key_type(&self) -> &'static str {
        self.0.key_type().kty()
    }

    /// The JWK `alg`, if it names one.
    #[getter]
    fn algorithm(&self) -> Option<&'static str> {
        self.0.alg().map(|a| a.as_str())
    }

    fn __repr__(&self) -> String {
        format!(
            "Jwk(kty={:?}, kid={:?})",
            self.0.key_type().kty(),
            self.0.kid()
        )
    }
}

/// A remote JWKS with its cache (PyJWKClient's engine); network waits run
/// without the GIL.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct RemoteJwks(irontoken::jwt::RemoteJwks);

#[pymethods]
impl RemoteJwks {
    #[new]
    fn new(py: Python<'_>, url: &str, options_json: &str) -> PyResult<Self> {
        irontoken::jwt::RemoteJwksSettings::options_from_json(options_json)
            .and_then(|o| irontoken::jwt::RemoteJwks::new(url, o))
            .map(RemoteJwks)
            .map_err(|e| to_py(py, e))
    }

    /// Verifies a JWT against the set; returns (header dict, claims dict).
    #[pyo3(signature = (token, policy_json, now=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        policy_json: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy_json)
            .map_err(|e| to_py(py, e))?;
        let now = now.unwrap_or_else(|| irontoken::Clock::now(&irontoken::SystemClock));
        let d = call(py, || self.0.decode(token, &policy, now))?;
        Ok((to_py_dict(py, &d.header)?, to_py_dict(py, &d.claims)?))
    }

    /// The key with this kid (refetching once, outside the cooldown, if absent).
    fn key(&self, py: Python<'_>, kid: &str) -> PyResult<Jwk> {
        call(py, || self.0.key(kid)).map(Jwk)
    }

    /// The raw JSON of the current set (fetched when absent or old).
    #[pyo3(signature = (refresh=false))]
    fn raw(&self, py: Python<'_>, refresh: bool) -> PyResult<String> {
        call(py, || {
            if refresh {
                self.0.refetch()?;
            }
            self.0.raw()
        })
        .map(|r| r.to_string())
    }

    /// The URL.
    #[getter]
    fn url(&self) -> String {
        self.0.url().to_string()
    }

    /// How many fetches were made.
    #[getter]
    fn fetch_count(&self) -> u64 {
        self.0.fetch_count()
    }
}

/// Reads a token WITHOUT verifying it: (header dict, payload bytes, signature bytes).
#[pyfunction]
pub(crate) fn jwt_unverified<'py>(
    py: Python<'py>,
    token: &str,
) -> PyResult<(Bound<'py, PyDict>, Vec<u8>, Vec<u8>)> {
    let u = irontoken::jwt::decode_unverified(token, irontoken::jwt::DEFAULT_MAX_TOKEN_BYTES)
        .map_err(|e| to_py(py, e))?;
    Ok((to_py_dict(py, &u.header)?, u.payload, u.signature))
}

/// A signer from Python key material (str or bytes; judged by content).
pub(crate) fn signer_of(
    key: &Bound<'_, PyAny>,
    algorithm: &str,
    kid: Option<&str>,
) -> Result<irontoken::jwt::Signer, Error> {
    use irontoken::jwt::{Signer, SigningKey};
    Signer::named(
        SigningKey::from_bytes_cached(&key_material(key)?)?,
        algorithm,
        kid,
    )
}

/// A keyring and policy parsed once; `decode` reuses them for every token.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct JwtVerifier(irontoken::jwt::Verifier);

#[pymethods]
impl JwtVerifier {
    #[new]
    fn new(py: Python<'_>, key: &Bound<'_, PyAny>, policy_json: &str) -> PyResult<Self> {
        let keys = keyring_of(key).map_err(|e| to_py(py, e))?;
        let policy = irontoken::jwt::PolicySettings::policy_from_json(policy_json)
            .map_err(|e| to_py(py, e))?;
        irontoken::jwt::Verifier::new(keys, policy)
            .map(JwtVerifier)
            .map_err(|e| to_py(py, e))
    }

    /// Verifies a JWT; returns its claims as a dict.
    #[pyo3(signature = (token, now=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = call(py, || match now {
            Some(t) => self.0.decode_at(token, t),
            None => self.0.decode(token),
        })?;
        to_py_dict(py, &d.claims)
    }

    /// Verifies a JWT; returns (header dict, claims dict).
    #[pyo3(signature = (token, now=None))]
    fn decode_complete<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let d = call(py, || match now {
            Some(t) => self.0.decode_at(token, t),
            None => self.0.decode(token),
        })?;
        Ok((to_py_dict(py, &d.header)?, to_py_dict(py, &d.claims)?))
    }

    /// Verifies a compact JWS; returns (header dict, payload bytes).
    fn verify_jws<'py>(
        &self,
        py: Python<'py>,
        token: &str,
    ) -> PyResult<(Bound<'py, PyDict>, Vec<u8>)> {
        let d = call(py, || self.0.verify_jws(token))?;
        Ok((to_py_dict(py, &d.header)?, d.payload))
    }
}

/// Verifies a JWT with key material parsed for this call; returns (header dict, claims dict).
#[pyfunction]
#[pyo3(signature = (token, key, policy_json, now=None))]
pub(crate) fn jwt_decode<'py>(
    py: Python<'py>,
    token: &str,
    key: &Bound<'_, PyAny>,
    policy_json: &str,
    #[pyo3(from_py_with = opt_int::<i64>)] now: Option<i64>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let keys = keyring_of(key).map_err(|e| to_py(py, e))?;
    let policy =
        irontoken::jwt::PolicySettings::policy_from_json(policy_json).map_err(|e| to_py(py, e))?;
    irontoken::jwt::Verifier::new(keys, policy)
        .map(JwtVerifier)
        .map_err(|e| to_py(py, e))?
        .decode_complete(py, token, now)
}

/// A signing key and algorithm parsed once, for many tokens.
#[pyclass(frozen, module = "irontoken._native")]
pub(crate) struct JwtSigner(irontoken::jwt::Signer);

#[pymethods]
impl JwtSigner {
    #[new]
    #[pyo3(signature = (key, algorithm, kid=None))]
    fn new(
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        algorithm: &str,
        kid: Option<String>,
    ) -> PyResult<Self> {
        signer_of(key, algorithm, kid.as_deref())
            .map(JwtSigner)
            .map_err(|e| to_py(py, e))
    }

    /// Signs claims (a JSON object text) with optional extra header JSON.
    #[pyo3(signature = (claims_json, headers_json=None))]
    fn sign(
        &self,
        py: Python<'_>,
        claims_json: &str,
        headers_json: Option<&str>,
    ) -> PyResult<String> {
        call(py, || self.0.sign_json(claims_json, headers_json))
    }
}

/// Signs claims (a JSON object text) into a compact JWT.
#[pyfunction]
#[pyo3(signature = (claims_json, key, algorithm, headers_json=None, kid=None))]
pub(crate) fn jwt_encode(
    py: Python<'_>,
    claims_json: &str,
    key: &Bound<'_, PyAny>,
    algorithm: &str,
    headers_json: Option<&str>,
    kid: Option<String>,
) -> PyResult<String> {
    let signer = signer_of(key, algorithm, kid.as_deref()).map_err(|e| to_py(py, e))?;
    call(py, || signer.sign_json(claims_json, headers_json))
}
