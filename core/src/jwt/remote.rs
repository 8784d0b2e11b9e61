//! A JWKS fetched from a URL (an identity provider's `jwks_uri`), cached,
//! and refetched when it ages or when a token names a `kid` it lacks — the
//! one implementation behind Python's `PyJWKClient`, Node's
//! `createRemoteJWKSet`, C's `itk_jwks_remote_*` and `irontoken jwt verify
//! --jwks-url`.
//!
//! - HTTPS through ureq + rustls (aws-lc-rs provider, Mozilla roots from
//!   webpki-roots; no OpenSSL). `http://` only for loopback hosts or when the
//!   caller allows it explicitly. No redirects are followed.
//! - Every fetch has a timeout and a response size cap; the answer must be a
//!   JWKS with at least one usable key (unusable keys are skipped, as in
//!   [`Keyring::from_jwks`]). A published set never yields a symmetric
//!   (`oct`) key: its secret is public ([`Keyring::from_public_jwks`]).
//! - The set is cached for `cache_max_age`; an unknown `kid` refetches at
//!   most once per `cooldown`, at least a second (a flood of made-up kids
//!   costs one request per cooldown); while refetches fail, the last good set keeps serving for at
//!   most `stale_max` past its age, then `JWKS_FETCH_FAILED`.
//! - One fetch at a time: concurrent callers wait for it and share its answer.

use super::{Decoded, Keyring, Policy, VerifyingKey, decode};
use crate::error::{Error, ErrorKind, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest cooldown: a flood of tokens with made-up kids costs at most
/// one fetch a second.
pub const MIN_COOLDOWN: Duration = Duration::from_secs(1);

/// Options of a [`RemoteJwks`]; `Default` gives the values documented per field.
#[derive(Debug, Clone)]
pub struct RemoteJwksOptions {
    /// Whole-request timeout (default 5 s).
    pub timeout: Duration,
    /// Largest accepted response body in bytes (default 512 KiB).
    pub max_bytes: u64,
    /// How long a fetched set is used without refetching (default 10 min).
    pub cache_max_age: Duration,
    /// Least time between two fetches caused by unknown `kid`s (default
    /// 30 s, at least [`MIN_COOLDOWN`]).
    pub cooldown: Duration,
    /// How long past `cache_max_age` the last good set still serves while
    /// refetches fail (default 1 h).
    pub stale_max: Duration,
    /// Allow `http://` to any host (default false: loopback only).
    pub allow_http: bool,
    /// Extra request headers (name, value).
    pub headers: Vec<(String, String)>,
}

impl Default for RemoteJwksOptions {
    fn default() -> Self {
        RemoteJwksOptions {
            timeout: Duration::from_secs(5),
            max_bytes: 512 * 1024,
            cache_max_age: Duration::from_secs(600),
            cooldown: Duration::from_secs(30),
            stale_max: Duration::from_secs(3600),
            allow_http: false,
            headers: Vec::new(),
        }
    }
}

/// [`RemoteJwksOptions`] as plain data for the bindings (JSON, keyword
/// arguments, option bags); absent fields keep the defaults.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteJwksSettings {
    /// Whole-request timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Largest accepted response body in bytes.
    pub max_bytes: Option<u64>,
    /// Cache lifetime of a fetched set in milliseconds.
    pub cache_max_age_ms: Option<u64>,
    /// Least time between unknown-kid refetches in milliseconds.
    pub cooldown_ms: Option<u64>,
    /// How long a stale set serves while refetches fail, in milliseconds.
    pub stale_max_ms: Option<u64>,
    /// Allow `http://` to any host.
    pub allow_http: Option<bool>,
    /// Extra request headers.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
}

impl RemoteJwksSettings {
    /// The options these settings give (bounds are checked by [`RemoteJwks::new`]).
    pub fn into_options(self) -> RemoteJwksOptions {
        let d = RemoteJwksOptions::default();
        let ms =
            |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
        RemoteJwksOptions {
            timeout: ms(self.timeout_ms, d.timeout),
            max_bytes: self.max_bytes.unwrap_or(d.max_bytes),
            cache_max_age: ms(self.cache_max_age_ms, d.cache_max_age),
            cooldown: ms(self.cooldown_ms, d.cooldown),
            stale_max: ms(self.stale_max_ms, d.stale_max),
            allow_http: self.allow_http.unwrap_or(false),
            headers: self.headers.unwrap_or_default().into_iter().collect(),
        }
    }

    /// Parses settings from JSON (`{}` or empty text: the defaults).
    pub fn options_from_json(text: &str) -> Result<RemoteJwksOptions> {
        if text.trim().is_empty() {
            return Ok(RemoteJwksOptions::default());
        }
        let s: RemoteJwksSettings = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("remote JWKS options: {e}")))?;
        Ok(s.into_options())
    }
}

/// The last good set and when it was fetched.
struct Cached {
    keys: Arc<Keyring>,
    raw: Arc<String>,
    at: Instant,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// When the last fetch (good or bad) finished.
    last_attempt: Option<Instant>,
    /// The error of the last fetch, if it failed.
    last_error: Option<Error>,
    fetches: u64,
}

/// A remote JWKS with its cache. `Send + Sync`; share it behind an `Arc`.
pub struct RemoteJwks {
    url: String,
    opts: RemoteJwksOptions,
    agent: ureq::Agent,
    state: Mutex<State>,
    /// Held while fetching, so one fetch runs at a time.
    fetching: Mutex<()>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn fetch_failed(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::JwksFetchFailed, msg)
}

/// A transport error while `doing` the fetch, timeouts named as such.
fn http_failed(e: ureq::Error, doing: &str) -> Error {
    match e {
        ureq::Error::Timeout(_) => fetch_failed("fetching the JWKS timed out"),
        e => fetch_failed(format!("{doing} the JWKS failed: {e}")),
    }
}

/// The host of an `http(s)://host[:port]/...` URL, brackets removed.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RemoteJwks {
    /// A remote set at `url` (nothing is fetched until first use). Refuses
    /// URLs that are not `https://`, or `http://` to a loopback host unless
    /// `allow_http`, and options out of range.
    pub fn new(url: &str, opts: RemoteJwksOptions) -> Result<Self> {
        let host = if let Some(rest) = url.strip_prefix("https://") {
            host_of(rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            let host = host_of(rest);
            if !opts.allow_http && !is_loopback(host) {
                return Err(Error::invalid(
                    "a JWKS URL must be https:// (http:// only for loopback hosts, or with allow_http)",
                ));
            }
            host
        } else {
            return Err(Error::invalid("a JWKS URL must start with https://"));
        };
        if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_control()) {
            return Err(Error::invalid("the JWKS URL has no host or is malformed"));
        }
        if opts.timeout < Duration::from_millis(1) || opts.timeout > Duration::from_secs(300) {
            return Err(Error::invalid("timeout must be between 1 ms and 300 s"));
        }
        if opts.max_bytes == 0 || opts.max_bytes > 16 * 1024 * 1024 {
            return Err(Error::invalid("max_bytes must be between 1 and 16 MiB"));
        }
        for (k, v) in &opts.headers {
            let bad = |t: &str| t.is_empty() || t.chars().any(|c| c.is_control());
            if bad(k) || v.chars().any(|c| c.is_control()) {
                return Err(Error::invalid(
                    "header names and values must not hold control characters",
                ));
            }
        }
        if opts.cooldown < MIN_COOLDOWN {
            return Err(Error::invalid(
                "cooldown must be at least 1 s (a flood of unknown kids refetches at most once per cooldown)",
            ));
        }
        let year = Duration::from_secs(366 * 86400);
        if opts.cache_max_age > year || opts.cooldown > year || opts.stale_max > year {
            return Err(Error::invalid(
                "cache_max_age, cooldown and stale_max must be at most a year",
            ));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::WebPki)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(opts.timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .https_only(!url.starts_with("http://"))
            .build()
            .new_agent();
        Ok(RemoteJwks {
            url: url.to_string(),
            opts,
            agent,
            state: Mutex::new(State::default()),
            fetching: Mutex::new(()),
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many fetches were made (good or bad).
    pub fn fetch_count(&self) -> u64 {
        self.lock().fetches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One HTTP GET of the set, parsed.
    fn get(&self) -> Result<(Keyring, String)> {
        let mut req = self
            .agent
            .get(&self.url)
            .header("Accept", "application/json");
        for (k, v) in &self.opts.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.call().map_err(|e| http_failed(e, "fetching"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(fetch_failed(format!(
                "fetching the JWKS answered HTTP {status} (200 expected)"
            )));
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(self.opts.max_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => fetch_failed(format!(
                    "the JWKS answer is over the {} byte limit",
                    self.opts.max_bytes
                )),
                e => http_failed(e, "reading"),
            })?;
        let text = String::from_utf8(body)
            .map_err(|_| fetch_failed("the JWKS answer is not UTF-8 JSON"))?;
        let keys = Keyring::from_public_jwks(&text)
            .map_err(|e| fetch_failed(format!("the JWKS answer is unusable: {}", e.message())))?;
        Ok((keys, text))
    }

    /// Fetches now, one fetch at a time: a caller that waited while another
    /// fetch finished after `since` takes that fetch's result instead.
    fn refresh(&self, since: Option<Instant>) -> Result<()> {
        let _one = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(since), Some(last)) = (since, self.lock().last_attempt)
            && last > since
        {
            return Ok(()); // another caller fetched while we waited
        }
        let got = self.get();
        let mut st = self.lock();
        st.fetches += 1;
        st.last_attempt = Some(Instant::now());
        st.last_error = got.as_ref().err().cloned();
        let (keys, raw) = got?;
        st.cached = Some(Cached {
            keys: Arc::new(keys),
            raw: Arc::new(raw),
            at: Instant::now(),
        });
        Ok(())
    }

    /// The current set: cached while fresh, refetched when old; the last
    /// good set serves up to `stale_max` past its age while refetches fail.
    pub fn keyring(&self) -> Result<Arc<Keyring>> {
        Ok(self.current()?.0)
    }

    /// The raw JSON of the current set (PyJWKClient's `fetch_data`).
    pub fn raw(&self) -> Result<Arc<String>> {
        Ok(self.current()?.1)
    }

    /// Fetches now, whatever the cache holds (PyJWKClient's `refresh=True`);
    /// a failed fetch is an error here (the cached set stays for other calls).
    pub fn refetch(&self) -> Result<Arc<Keyring>> {
        self.refresh(None)?;
        self.keyring()
    }

    fn current(&self) -> Result<(Arc<Keyring>, Arc<String>)> {
        let now = Instant::now();
        let serve_until = self.opts.cache_max_age.saturating_add(self.opts.stale_max);
        {
            let st = self.lock();
            // After a failed fetch, no new attempt inside the cooldown: the
            // last good set serves (while its stale window lasts), or the error.
            let failed_recently = st.last_error.is_some()
                && st
                    .last_attempt
                    .is_some_and(|t| now.duration_since(t) < self.opts.cooldown);
            match (&st.cached, &st.last_error) {
                (Some(c), _) if now.duration_since(c.at) < self.opts.cache_max_age => {
                    return Ok((c.keys.clone(), c.raw.clone()));
                }
                (Some(c), _) if failed_recently && now.duration_since(c.at) < serve_until => {
                    return Ok((c.keys.clone(), c.raw.clone()));
                }
                (None, Some(e)) if failed_recently => return Err(e.clone()),
                _ => {}
            }
        }
        let started = Instant::now();
        let result = self.refresh(Some(started));
        let st = self.lock();
        match (&st.cached, result) {
            (Some(c), Ok(())) => Ok((c.keys.clone(), c.raw.clone())),
            (Some(c), Err(e)) => {
                if now.duration_since(c.at) < serve_until {
                    Ok((c.keys.clone(), c.raw.clone()))
                } else {
                    Err(e)
                }
            }
            (None, Err(e)) => Err(e),
            // Another caller's fetch, which we waited for, failed.
            (None, Ok(())) => Err(st
                .last_error
                .clone()
                .unwrap_or_else(|| fetch_failed("the JWKS could not be fetched"))),
        }
    }

    /// True if an unknown-kid refetch may run now (outside the cooldown).
    fn may_refetch(&self) -> bool {
        self.lock()
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.opts.cooldown)
    }

    /// The key with this `kid`, refetching once (outside the cooldown) when
    /// the cached set lacks it.
    pub fn key(&self, kid: &str) -> Result<VerifyingKey> {
        if let Some(k) = self.keyring()?.get(kid) {
            return Ok(k.clone());
        }
        if self.may_refetch() {
            // A refetch failing here leaves the cached set in place.
            let _ = self.refresh(Some(Instant::now()));
            if let Some(k) = self.keyring()?.get(kid) {
                return Ok(k.clone());
            }
        }
        let shown: String = kid.chars().take(64).collect();
        Err(Error::new(
            ErrorKind::JwtKeyNotFound,
            format!("no key with kid {shown:?} in the remote JWKS"),
        ))
    }

    /// [`RemoteJwks::decode`] when it needs no network: `None` when the set
    /// is missing or old, or the token names an unknown `kid` that may be
    /// refetched (then call `decode`, off any event loop).
    pub fn decode_cached(&self, token: &str, policy: &Policy, now: i64) -> Option<Result<Decoded>> {
        let keys = {
            let st = self.lock();
            let c = st.cached.as_ref()?;
            if c.at.elapsed() >= self.opts.cache_max_age {
                return None;
            }
            c.keys.clone()
        };
        self.decode_with(&keys, token, policy, now)
    }

    /// Verifies against `keys`; `None` when the token names an unknown
    /// `kid` and a refetch may run (outside the cooldown).
    fn decode_with(
        &self,
        keys: &Keyring,
        token: &str,
        policy: &Policy,
        now: i64,
    ) -> Option<Result<Decoded>> {
        match decode(token, keys, policy, now) {
            Err(e) if e.kind() == ErrorKind::JwtKeyNotFound && self.may_refetch() => None,
            r => Some(r),
        }
    }

    /// Verifies a JWT against the set at time `now` (Unix seconds); a token
    /// naming an unknown `kid` refetches once (outside the cooldown).
    pub fn decode(&self, token: &str, policy: &Policy, now: i64) -> Result<Decoded> {
        if let Some(r) = self.decode_with(&*self.keyring()?, token, policy, now) {
            return r;
        }
        // A refetch failing here leaves the cached set in place.
        let _ = self.refresh(Some(Instant::now()));
        decode(token, &*self.keyring()?, policy, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let o = RemoteJwksOptions::default;
        assert!(RemoteJwks::new("https://idp.example/jwks", o()).is_ok());
        assert!(RemoteJwks::new("http://127.0.0.1:8080/jwks", o()).is_ok());
        assert!(RemoteJwks::new("http://[::1]:8080/jwks", o()).is_ok());
        assert!(RemoteJwks::new("http://localhost/jwks", o()).is_ok());
        for bad in [
            "http://idp.example/jwks",
            "http://127.0.0.1.evil.example/jwks",
            "http://user@evil.example/x",
            "ftp://idp.example/jwks",
            "https:///nohost",
            "idp.example/jwks",
        ] {
            let e = RemoteJwks::new(bad, o()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        let allowed = RemoteJwksOptions {
            allow_http: true,
            ..o()
        };
        assert!(RemoteJwks::new("http://idp.example/jwks", allowed).is_ok());
        let zero = RemoteJwksOptions {
            timeout: Duration::ZERO,
            ..o()
        };
        assert!(RemoteJwks::new("https://idp.example/jwks", zero).is_err());
    }
}
