//! JWT: managed signing keys, issuance and API key exchange on the
//! manager; verifiers, remote JWKS and signers as classes.

use super::*;

#[napi]
impl TokenManager {
    /// Generates a managed signing key (RS256, ES256, EdDSA, HS256) and makes it active.
    #[napi(catch_unwind, ts_return_type = "ManagedKey")]
    pub fn create_signing_key(
        &self,
        algorithm: String,
        options: Option<ActorOptions>,
    ) -> Result<Json, Code> {
        let alg = alg_of(&algorithm)?;
        let actor = options.and_then(|o| o.actor);
        ans(self.core()?.create_signing_key(alg, actor.as_deref()))
    }

    /// Makes a new key active; the old one verifies for `overlapSeconds` more.
    #[napi(catch_unwind, ts_return_type = "ManagedKey")]
    pub fn rotate_signing_key(&self, options: Option<RotateSigningOptions>) -> Result<Json, Code> {
        let (alg, overlap, actor) = match options {
            None => (None, 0, None),
            Some(o) => (
                o.algorithm.as_deref().map(alg_of).transpose()?,
                int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                o.actor,
            ),
        };
        ans(self
            .core()?
            .rotate_signing_key(alg, overlap, actor.as_deref()))
    }

    /// The scheduled rotation (cron on any number of hosts): rotates the
    /// active key if it is at least `everySeconds` old; the new key, or null.
    #[napi(catch_unwind, ts_return_type = "ManagedKey | null")]
    pub fn rotate_signing_key_if_due(
        &self,
        every_seconds: f64,
        options: Option<RotateSigningOptions>,
    ) -> Result<Json, Code> {
        let every = int(Some(every_seconds), "everySeconds")?.unwrap_or(0);
        let (overlap, actor) = match options {
            None => (0, None),
            Some(o) => {
                if o.algorithm.is_some() {
                    return Err(invalid(
                        "algorithm: a due rotation keeps the key's algorithm",
                    ));
                }
                (
                    int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                    o.actor,
                )
            }
        };
        ans(self
            .core()?
            .rotate_signing_key_if_due(every, overlap, actor.as_deref()))
    }

    /// Retires a signing key now.
    #[napi(catch_unwind, ts_return_type = "ManagedKey")]
    pub fn retire_signing_key(
        &self,
        kid: String,
        options: Option<ActorOptions>,
    ) -> Result<Json, Code> {
        let actor = options.and_then(|o| o.actor);
        ans(self.core()?.retire_signing_key(&kid, actor.as_deref()))
    }

    /// Every managed signing key (no private material).
    #[napi(catch_unwind, ts_return_type = "ManagedKey[]")]
    pub fn list_signing_keys(&self) -> Result<Json, Code> {
        ans(self.core()?.list_signing_keys())
    }

    /// The public JWKS of the keys that verify now.
    #[napi(catch_unwind)]
    pub fn jwks(&self) -> Result<Value, Code> {
        self.core()?.jwks().map_err(err)
    }

    /// Signs `claims` with the active managed key.
    #[napi(catch_unwind)]
    pub fn issue_jwt(&self, claims: Value, options: Option<IssueOptions>) -> Result<String, Code> {
        let c = object(Some(claims), "claims")?.unwrap_or_default();
        let ttl = match options {
            None => None,
            Some(o) => int(o.ttl_seconds, "ttlSeconds")?,
        };
        self.core()?.issue_jwt(&c, ttl).map_err(err)
    }

    /// Verifies a token issued by this manager's keys (policy as JSON).
    #[napi(catch_unwind)]
    pub fn verify_jwt(
        &self,
        env: Env,
        token: String,
        policy_json: String,
        presented: Option<crate::dpop::PresentedArg>,
    ) -> napi::Result<VerifiedJwt> {
        self.verify_issued(env, &token, &policy_json, presented, false)
    }

    /// `verifyJwt`, then the token's `jti` claimed until its `exp`: a token
    /// accepted once is refused with `JWT_REPLAYED` after.
    #[napi(catch_unwind)]
    pub fn verify_jwt_once(
        &self,
        env: Env,
        token: String,
        policy_json: String,
        presented: Option<crate::dpop::PresentedArg>,
    ) -> napi::Result<VerifiedJwt> {
        self.verify_issued(env, &token, &policy_json, presented, true)
    }

    /// Exchanges a valid API key for a short-lived access token.
    #[napi(catch_unwind, ts_return_type = "AccessToken")]
    pub fn exchange_api_key(
        &self,
        api_key: KeyArg,
        options: Option<ExchangeOptions>,
    ) -> Result<Json, Code> {
        let (scopes, ttl) = match options {
            None => (Vec::new(), None),
            Some(o) => (
                o.required_scopes.unwrap_or_default(),
                int(o.ttl_seconds, "ttlSeconds")?,
            ),
        };
        let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        ans(self.core()?.exchange_api_key(&key_text(&api_key), &s, ttl))
    }

    /// `createSigningKey` off the JS thread (RSA generation takes a while).
    #[napi(catch_unwind, ts_return_type = "Promise<ManagedKey>")]
    pub fn create_signing_key_async(
        &self,
        algorithm: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        let alg = alg_of(&algorithm)?;
        let actor = options.and_then(|o| o.actor);
        Ok(Job::new(move || {
            json_ans(tm.create_signing_key(alg, actor.as_deref()))
        }))
    }

    /// `rotateSigningKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<ManagedKey>")]
    pub fn rotate_signing_key_async(
        &self,
        options: Option<RotateSigningOptions>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        let (alg, overlap, actor) = match options {
            None => (None, 0, None),
            Some(o) => (
                o.algorithm.as_deref().map(alg_of).transpose()?,
                int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                o.actor,
            ),
        };
        Ok(Job::new(move || {
            json_ans(tm.rotate_signing_key(alg, overlap, actor.as_deref()))
        }))
    }
}

/// Key material as a string or Buffer: judged by content in core, never by type.
fn key_bytes(key: &Either<String, Buffer>) -> &[u8] {
    match key {
        Either::A(text) => text.as_bytes(),
        Either::B(bytes) => bytes,
    }
}

fn keyring_of(key: Either<String, Buffer>) -> Result<Arc<irontoken::jwt::Keyring>, Code> {
    irontoken::jwt::Keyring::from_bytes_cached(key_bytes(&key)).map_err(err)
}

fn policy_of(policy_json: &str) -> Result<irontoken::jwt::Policy, Code> {
    irontoken::jwt::PolicySettings::policy_from_json(policy_json).map_err(err)
}

/// A verified JWT, named as jose names its result.
#[napi(object)]
pub struct VerifiedJwt {
    pub payload: Value,
    pub protected_header: Value,
}

/// A verified JWS with its raw payload.
#[napi(object)]
pub struct VerifiedJws {
    pub payload: Buffer,
    pub protected_header: Value,
}

fn verified(d: irontoken::jwt::Decoded) -> VerifiedJwt {
    VerifiedJwt {
        payload: Value::Object(d.claims),
        protected_header: Value::Object(d.header),
    }
}

/// A key (or keyring) and policy parsed once, for many tokens.
#[napi]
pub struct JwtVerifier(irontoken::jwt::Verifier);

#[napi]
impl JwtVerifier {
    /// Parses `key` (PEM, DER, JWK, JWKS, OpenSSH public key or HMAC secret,
    /// as a string or Buffer; judged by content) and the policy JSON.
    #[napi(catch_unwind, constructor)]
    pub fn new(key: Either<String, Buffer>, policy_json: String) -> Result<Self, Code> {
        irontoken::jwt::Verifier::new(keyring_of(key)?, policy_of(&policy_json)?)
            .map(JwtVerifier)
            .map_err(err)
    }

    /// Verifies a JWT (at `now`, Unix seconds, or the system clock).
    #[napi(catch_unwind)]
    pub fn verify(&self, env: Env, token: String, now: Option<f64>) -> napi::Result<VerifiedJwt> {
        let d = match int(now, "now").map_err(|e| code_js_error(&env, e))? {
            Some(t) => self.0.decode_at(&token, t),
            None => self.0.decode(&token),
        };
        d.map(verified).map_err(|e| core_js_error(&env, &e))
    }

    /// Verifies a compact JWS (signature and header only).
    #[napi(catch_unwind)]
    pub fn verify_jws(&self, token: String) -> Result<VerifiedJws, Code> {
        let d = self.0.verify_jws(&token).map_err(err)?;
        Ok(VerifiedJws {
            payload: d.payload.into(),
            protected_header: Value::Object(d.header),
        })
    }
}

/// The policy JSON and the time (`now`, or the system clock) of a verification.
fn policy_at(policy_json: &str, now: Option<f64>) -> Result<(irontoken::jwt::Policy, i64), Code> {
    let now = int(now, "now")?.unwrap_or_else(|| irontoken::Clock::now(&irontoken::SystemClock));
    Ok((policy_of(policy_json)?, now))
}

/// A remote JWKS with its cache (the engine of `createRemoteJWKSet`); its
/// calls that may fetch run on the libuv pool.
#[napi]
pub struct RemoteJwks(Arc<irontoken::jwt::RemoteJwks>);

#[napi]
impl RemoteJwks {
    /// A remote set at `url` with options JSON (`timeout_ms`, `max_bytes`,
    /// `cache_max_age_ms`, `cooldown_ms`, `stale_max_ms`, `allow_http`, `headers`).
    #[napi(catch_unwind, constructor)]
    pub fn new(url: String, options_json: String) -> Result<Self, Code> {
        irontoken::jwt::RemoteJwksSettings::options_from_json(&options_json)
            .and_then(|o| irontoken::jwt::RemoteJwks::new(&url, o))
            .map(|r| RemoteJwks(Arc::new(r)))
            .map_err(err)
    }

    /// Verifies a JWT against the set off the JS thread (at `now`, Unix
    /// seconds, or the system clock); resolves `{ payload, protectedHeader }`.
    #[napi(
        catch_unwind,
        ts_return_type = "Promise<{ payload: Record<string, unknown>; protectedHeader: Record<string, unknown> }>"
    )]
    pub fn verify_async(
        &self,
        token: String,
        policy_json: String,
        now: Option<f64>,
    ) -> Result<AsyncTask<Job<VerifiedJwt>>, Code> {
        let (policy, now) = policy_at(&policy_json, now)?;
        let remote = self.0.clone();
        Ok(Job::new(move || {
            remote.decode(&token, &policy, now).map(verified)
        }))
    }

    /// Verifies on the JS thread when no fetch is needed (the set is cached
    /// and fresh, the kid known or not refetchable): `{ payload,
    /// protectedHeader }`, or `null` when `verifyAsync` must run.
    #[napi(
        catch_unwind,
        ts_return_type = "{ payload: Record<string, unknown>; protectedHeader: Record<string, unknown> } | null"
    )]
    pub fn verify_cached(
        &self,
        env: Env,
        token: String,
        policy_json: String,
        now: Option<f64>,
    ) -> napi::Result<Option<VerifiedJwt>> {
        let (policy, now) = policy_at(&policy_json, now).map_err(|e| code_js_error(&env, e))?;
        match self.0.decode_cached(&token, &policy, now) {
            None => Ok(None),
            Some(r) => r
                .map(|d| Some(verified(d)))
                .map_err(|e| core_js_error(&env, &e)),
        }
    }

    /// Fetches the set now off the JS thread; resolves its JSON.
    #[napi(catch_unwind, ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn reload_async(&self) -> AsyncTask<Job<Json>> {
        let remote = self.0.clone();
        Job::new(move || {
            remote.refetch()?;
            let raw = remote.raw()?;
            serde_json::from_str(&raw)
                .map(Json)
                .map_err(|e| CoreError::new(irontoken::ErrorKind::Internal, e.to_string()))
        })
    }

    /// How many times the set was fetched.
    #[napi(catch_unwind, getter)]
    pub fn fetch_count(&self) -> f64 {
        self.0.fetch_count() as f64
    }
}

/// A signing key and algorithm parsed once, for many tokens.
#[napi]
pub struct JwtSigner(irontoken::jwt::Signer);

#[napi]
impl JwtSigner {
    /// Parses `key` (a private key in PEM or DER, or an HMAC secret, as a
    /// string or Buffer; judged by content) for `algorithm`.
    #[napi(catch_unwind, constructor)]
    pub fn new(
        key: Either<String, Buffer>,
        algorithm: String,
        kid: Option<String>,
    ) -> Result<Self, Code> {
        use irontoken::jwt::{Signer, SigningKey};
        let sk = SigningKey::from_bytes_cached(key_bytes(&key)).map_err(err)?;
        Signer::named(sk, &algorithm, kid.as_deref())
            .map(JwtSigner)
            .map_err(err)
    }

    /// Signs `payload` (with optional extra header parameters).
    #[napi(catch_unwind)]
    pub fn sign(&self, payload: Value, header: Option<Value>) -> Result<String, Code> {
        let claims = object(Some(payload), "payload")?.unwrap_or_default();
        let header = object(header, "header")?;
        self.0.sign(&claims, header.as_ref()).map_err(err)
    }
}

/// Signs `payload` into a compact JWT.
#[napi(catch_unwind)]
pub fn jwt_sign(
    payload: Value,
    key: Either<String, Buffer>,
    algorithm: String,
    header: Option<Value>,
    kid: Option<String>,
) -> Result<String, Code> {
    JwtSigner::new(key, algorithm, kid)?.sign(payload, header)
}

/// The jose error code with the same meaning as irontoken's `code`, if any.
#[napi(catch_unwind)]
pub fn jose_code(code: String) -> Option<String> {
    irontoken::ErrorKind::from_code(&code)
        .and_then(|k| k.jose_code())
        .map(str::to_string)
}

impl TokenManager {
    /// `verifyJwt` (`once`: and its jti claimed), errors as jose's.
    fn verify_issued(
        &self,
        env: Env,
        token: &str,
        policy_json: &str,
        presented: Option<crate::dpop::PresentedArg>,
        once: bool,
    ) -> napi::Result<VerifiedJwt> {
        let policy = policy_of(policy_json).map_err(|e| code_js_error(&env, e))?;
        let tm = self.core().map_err(|e| code_js_error(&env, e))?;
        let presented = crate::dpop::presented_of(presented).map_err(|e| code_js_error(&env, e))?;
        let d = if once {
            tm.verify_jwt_presented_once(token, &policy, &presented)
        } else {
            tm.verify_jwt_presented(token, &policy, &presented)
        };
        d.map(verified).map_err(|e| core_js_error(&env, &e))
    }
}
