//! Verification of compact JWS and JWT under a [`Policy`].

use super::json::parse_object;
use super::{Alg, Keyring};
use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Default bound on the size of a token, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a token must satisfy. Build with [`Policy::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Algorithms accepted (the token's `alg` must be one, and fit the key).
    pub algorithms: Vec<Alg>,
    /// Seconds of clock skew tolerated for `exp`, `nbf` and `iat`.
    pub leeway: i64,
    /// Accepted `iss` values (exact match, any of); empty does not check it.
    pub issuer: Vec<String>,
    /// Accepted audiences: the token's `aud` (string or list) must contain
    /// one. Empty: a token carrying `aud` is refused (as PyJWT does).
    pub audience: Vec<String>,
    /// Expected `sub` (exact match); `None` does not check its value.
    pub subject: Option<String>,
    /// Claims that must be present.
    pub required: Vec<String>,
    /// `exp` must be present (default true).
    pub require_exp: bool,
    /// `sub` must be present (default false, as in PyJWT and jose).
    pub require_sub: bool,
    /// Check `exp` (default true).
    pub verify_exp: bool,
    /// Check `nbf` (default true).
    pub verify_nbf: bool,
    /// Check that `iat` is not in the future (default true).
    pub verify_iat: bool,
    /// Check `aud` against [`Policy::audience`] (default true; off, `aud`
    /// is not looked at: PyJWT's `verify_aud: False`).
    pub verify_aud: bool,
    /// Check `iss` against [`Policy::issuer`] (default true).
    pub verify_iss: bool,
    /// Check `sub` against [`Policy::subject`] (default true).
    pub verify_sub: bool,
    /// `aud` must be a single string equal to the one accepted audience
    /// (PyJWT's `strict_aud`; default false).
    pub strict_aud: bool,
    /// Tokens longer than this are refused before decoding (default 8 KiB).
    pub max_token_bytes: usize,
}

impl Policy {
    /// The default policy for tokens signed with one of `algorithms`.
    pub fn new(algorithms: &[Alg]) -> Self {
        Policy {
            algorithms: algorithms.to_vec(),
            leeway: 0,
            issuer: Vec::new(),
            audience: Vec::new(),
            subject: None,
            required: Vec::new(),
            require_exp: true,
            require_sub: false,
            verify_exp: true,
            verify_nbf: true,
            verify_iat: true,
            verify_aud: true,
            verify_iss: true,
            verify_sub: true,
            strict_aud: false,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// [`Policy`] as plain data, for the bindings (JSON, keyword arguments,
/// option bags). Absent fields keep the defaults of [`Policy::new`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Accepted algorithm names (required, non-empty).
    pub algorithms: Vec<String>,
    /// Leeway in seconds.
    pub leeway: Option<i64>,
    /// Accepted issuer: one, or a list (any of).
    pub issuer: Option<OneOrMany>,
    /// Accepted audiences.
    pub audience: Option<Vec<String>>,
    /// Expected subject.
    pub subject: Option<String>,
    /// Claims that must be present.
    pub required: Option<Vec<String>>,
    /// Whether `exp` must be present.
    pub require_exp: Option<bool>,
    /// Whether `sub` must be present.
    pub require_sub: Option<bool>,
    /// Whether to check `exp`.
    pub verify_exp: Option<bool>,
    /// Whether to check `nbf`.
    pub verify_nbf: Option<bool>,
    /// Whether to check `iat`.
    pub verify_iat: Option<bool>,
    /// Whether to check `aud`.
    pub verify_aud: Option<bool>,
    /// Whether to check `iss`.
    pub verify_iss: Option<bool>,
    /// Whether to check `sub`.
    pub verify_sub: Option<bool>,
    /// Whether `aud` must be exactly the one accepted audience.
    pub strict_aud: Option<bool>,
    /// Size bound in bytes.
    pub max_token_bytes: Option<usize>,
}

impl PolicySettings {
    /// Parses the settings from JSON and builds the [`Policy`].
    pub fn policy_from_json(text: &str) -> Result<Policy> {
        let s: PolicySettings =
            serde_json::from_str(text).map_err(|e| Error::invalid(format!("policy: {e}")))?;
        s.into_policy()
    }

    /// Checks the settings and builds the [`Policy`].
    pub fn into_policy(self) -> Result<Policy> {
        if self.algorithms.is_empty() {
            return Err(Error::invalid(
                "algorithms must name at least one algorithm (there is no default)",
            ));
        }
        let mut algs = Vec::with_capacity(self.algorithms.len());
        for name in &self.algorithms {
            let alg = Alg::parse(name).ok_or_else(|| {
                let shown: String = name.chars().take(16).collect();
                Error::invalid(format!("unsupported algorithm {shown:?}"))
            })?;
            algs.push(alg);
        }
        let mut p = Policy::new(&algs);
        if let Some(l) = self.leeway {
            if l < 0 {
                return Err(Error::invalid("leeway must be >= 0"));
            }
            p.leeway = l;
        }
        p.issuer = match self.issuer {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s],
            Some(OneOrMany::Many(list)) if list.is_empty() => {
                return Err(Error::invalid("issuer: an empty list accepts no token"));
            }
            Some(OneOrMany::Many(list)) => list,
        };
        p.audience = self.audience.unwrap_or_default();
        p.subject = self.subject;
        p.required = self.required.unwrap_or_default();
        p.require_exp = self.require_exp.unwrap_or(p.require_exp);
        p.require_sub = self.require_sub.unwrap_or(p.require_sub);
        p.verify_exp = self.verify_exp.unwrap_or(p.verify_exp);
        p.verify_nbf = self.verify_nbf.unwrap_or(p.verify_nbf);
        p.verify_iat = self.verify_iat.unwrap_or(p.verify_iat);
        p.verify_aud = self.verify_aud.unwrap_or(p.verify_aud);
        p.verify_iss = self.verify_iss.unwrap_or(p.verify_iss);
        p.verify_sub = self.verify_sub.unwrap_or(p.verify_sub);
        p.strict_aud = self.strict_aud.unwrap_or(p.strict_aud);
        if p.strict_aud && p.audience.len() != 1 {
            return Err(Error::invalid(
                "strict_aud needs exactly one accepted audience",
            ));
        }
        if let Some(n) = self.max_token_bytes {
            if n == 0 {
                return Err(Error::invalid("max_token_bytes must be positive"));
            }
            p.max_token_bytes = n;
        }
        Ok(p)
    }
}

/// A string or a list of strings (an issuer or several, in settings).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Any of these.
    Many(Vec<String>),
}

impl From<String> for OneOrMany {
    fn from(s: String) -> Self {
        OneOrMany::One(s)
    }
}

/// A verified JWT: its header and all its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

/// A verified JWS: its header and raw payload.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload bytes, as signed.
    pub payload: Vec<u8>,
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> Error {
    Error::new(kind, msg)
}

fn malformed(msg: impl Into<String>) -> Error {
    err(ErrorKind::JwtMalformed, msg)
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(format!("{what} is not canonical base64url")))
}

/// The three parts of a compact JWS and its parsed header, checked for the
/// size bound (before any decoding) and a string `kid`.
pub(super) fn split(
    token: &str,
    max_bytes: usize,
) -> Result<(&str, &str, &str, Map<String, Value>)> {
    if token.len() > max_bytes {
        return Err(malformed(format!(
            "token is {} bytes, over the {max_bytes} byte limit",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a compact JWS has exactly three dot-separated parts",
        ));
    };
    if h64.is_empty() {
        return Err(malformed("empty header"));
    }
    let header = parse_object(&b64(h64, "header")?)
        .map_err(|e| malformed(format!("header is not a JSON object: {e}")))?;
    if header.get("kid").is_some_and(|k| !k.is_string()) {
        return Err(malformed("header kid is not a string"));
    }
    Ok((h64, p64, s64, header))
}

/// The claims of a JWT payload: a JSON object without duplicate members.
pub(super) fn claims_of(payload: &[u8]) -> Result<Map<String, Value>> {
    parse_object(payload).map_err(|e| malformed(format!("claims are not a JSON object: {e}")))
}

/// A token read WITHOUT verifying its signature or claims (PyJWT's
/// `verify_signature: False`, `get_unverified_header`): for routing only,
/// e.g. finding the issuer or `kid` before choosing the key. Never trust it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The header.
    pub header: Map<String, Value>,
    /// The payload bytes (claims JSON for a JWT).
    pub payload: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl Unverified {
    /// The payload as a JSON object (claims), unverified.
    pub fn claims(&self) -> Result<Map<String, Value>> {
        claims_of(&self.payload)
    }
}

/// Parses a compact JWS without verifying anything but its shape (size
/// bound, three canonical base64url parts, a header that is a JSON object
/// without duplicate members, a string `kid` if present).
pub fn decode_unverified(token: &str, max_token_bytes: usize) -> Result<Unverified> {
    let (_, p64, s64, header) = split(token, max_token_bytes)?;
    Ok(Unverified {
        header,
        payload: b64(p64, "payload")?,
        signature: b64(s64, "signature")?,
    })
}

/// Checks size, shape, header and signature; returns header and payload.
/// The caller has checked the policy's algorithms against the keyring
/// ([`Keyring::check_algorithms`]).
pub(super) fn verify_signature(token: &str, keys: &Keyring, policy: &Policy) -> Result<DecodedJws> {
    let (h64, p64, s64, header) = split(token, policy.max_token_bytes)?;

    let alg_name = match header.get("alg") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(malformed("header alg is not a string")),
        None => return Err(malformed("header has no alg")),
    };
    let Some(alg) = Alg::parse(alg_name) else {
        let shown: String = alg_name.chars().take(16).collect();
        return Err(err(
            ErrorKind::JwtAlgNotAllowed,
            format!("algorithm {shown:?} is not accepted"),
        ));
    };
    if !policy.algorithms.contains(&alg) {
        return Err(err(
            ErrorKind::JwtAlgNotAllowed,
            format!("algorithm {} is not in the allowed list", alg.as_str()),
        ));
    }
    if header.contains_key("crit") {
        return Err(err(
            ErrorKind::JwtUnsupportedHeader,
            "crit header parameters are not understood",
        ));
    }
    match header.get("b64") {
        None | Some(Value::Bool(true)) => {}
        Some(_) => {
            return Err(err(
                ErrorKind::JwtUnsupportedHeader,
                "unencoded payloads (b64) are not supported",
            ));
        }
    }
    // `split` refused a kid that is not a string.
    let kid = header.get("kid").and_then(Value::as_str);
    let key = keys.select(kid, alg)?;
    // Canonical base64url for the signature, then the cryptographic check.
    let signature = b64(s64, "signature")?;
    let signing_input = &token[..h64.len() + 1 + p64.len()];
    if !key.verify(alg, signing_input.as_bytes(), &signature) {
        return Err(err(
            ErrorKind::JwtBadSignature,
            "signature verification failed",
        ));
    }
    Ok(DecodedJws {
        header,
        payload: b64(p64, "payload")?,
    })
}

/// Verifies a compact JWS (signature and header policy only; the payload
/// can be anything) and returns its header and payload bytes.
pub fn verify_jws(token: &str, keys: &Keyring, policy: &Policy) -> Result<DecodedJws> {
    keys.check_algorithms(&policy.algorithms)?;
    verify_signature(token, keys, policy)
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(err(
            ErrorKind::JwtInvalidClaim,
            format!("claim {name} must be a number"),
        )
        .about_claim(name)),
    }
}

fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(
            ErrorKind::JwtInvalidClaim,
            format!("claim {name} must be a string"),
        )
        .about_claim(name)),
    }
}

fn missing(name: &str) -> Error {
    err(
        ErrorKind::JwtMissingClaim,
        format!("token is missing the {name:?} claim"),
    )
    .about_claim(name)
}

/// Checks the registered claims against `policy` at time `now` (Unix seconds).
fn check_claims(claims: &Map<String, Value>, policy: &Policy, now: i64) -> Result<()> {
    let now = now as f64;
    let leeway = policy.leeway.max(0) as f64;
    let exp = number(claims, "exp")?;
    let nbf = number(claims, "nbf")?;
    let iat = number(claims, "iat")?;
    let iss = string(claims, "iss")?;
    let sub = string(claims, "sub")?;
    string(claims, "jti")?;
    let aud: Option<Vec<&str>> = match claims.get("aud") {
        _ if !policy.verify_aud => None,
        None => None,
        Some(Value::String(s)) if policy.strict_aud => Some(vec![s.as_str()]),
        Some(_) if policy.strict_aud => {
            return Err(err(
                ErrorKind::JwtInvalidAudience,
                "claim aud must be a single string (strict_aud)",
            )
            .about_claim("aud"));
        }
        Some(Value::String(s)) => Some(vec![s.as_str()]),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str().ok_or_else(|| {
                        err(
                            ErrorKind::JwtInvalidClaim,
                            "claim aud must be a string or a list of strings",
                        )
                        .about_claim("aud")
                    })
                })
                .collect::<Result<_>>()?,
        ),
        Some(_) => {
            return Err(err(
                ErrorKind::JwtInvalidClaim,
                "claim aud must be a string or a list of strings",
            )
            .about_claim("aud"));
        }
    };

    if policy.require_exp && exp.is_none() {
        return Err(missing("exp"));
    }
    if policy.require_sub && sub.is_none() {
        return Err(missing("sub"));
    }
    for name in &policy.required {
        if !claims.contains_key(name) {
            return Err(missing(name));
        }
    }
    if policy.verify_exp
        && let Some(exp) = exp
        && now - leeway >= exp
    {
        return Err(err(ErrorKind::JwtExpired, "token has expired").about_claim("exp"));
    }
    if policy.verify_nbf
        && let Some(nbf) = nbf
        && nbf > now + leeway
    {
        return Err(
            err(ErrorKind::JwtNotYetValid, "token is not valid yet (nbf)").about_claim("nbf"),
        );
    }
    if policy.verify_iat
        && let Some(iat) = iat
        && iat > now + leeway
    {
        return Err(err(
            ErrorKind::JwtNotYetValid,
            "token was issued in the future (iat)",
        )
        .about_claim("iat"));
    }
    if policy.verify_iss && !policy.issuer.is_empty() {
        match iss {
            None => return Err(missing("iss")),
            Some(i) if !policy.issuer.iter().any(|w| w == i) => {
                return Err(
                    err(ErrorKind::JwtInvalidIssuer, "issuer does not match").about_claim("iss")
                );
            }
            Some(_) => {}
        }
    }
    match (&aud, policy.audience.is_empty()) {
        _ if !policy.verify_aud => {}
        (None, true) => {}
        (None, false) => return Err(missing("aud")),
        (Some(_), true) => {
            return Err(err(
                ErrorKind::JwtInvalidAudience,
                "token has an audience but none is expected",
            )
            .about_claim("aud"));
        }
        (Some(list), false) => {
            if !list.iter().any(|a| policy.audience.iter().any(|w| w == a)) {
                return Err(
                    err(ErrorKind::JwtInvalidAudience, "audience does not match")
                        .about_claim("aud"),
                );
            }
        }
    }
    if let Some(want) = policy.subject.as_ref().filter(|_| policy.verify_sub)
        && sub != Some(want.as_str())
    {
        return Err(err(ErrorKind::JwtInvalidSubject, "subject does not match").about_claim("sub"));
    }
    Ok(())
}

/// Verifies a JWT at time `now` (Unix seconds) and returns header and claims.
pub fn decode(token: &str, keys: &Keyring, policy: &Policy, now: i64) -> Result<Decoded> {
    keys.check_algorithms(&policy.algorithms)?;
    decode_checked(token, keys, policy, now)
}

/// [`decode`] for a keyring and policy already checked together.
pub(super) fn decode_checked(
    token: &str,
    keys: &Keyring,
    policy: &Policy,
    now: i64,
) -> Result<Decoded> {
    let jws = verify_signature(token, keys, policy)?;
    let claims = claims_of(&jws.payload)?;
    check_claims(&claims, policy, now)?;
    Ok(Decoded {
        header: jws.header,
        claims,
    })
}
