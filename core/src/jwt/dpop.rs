//! DPoP proofs (RFC 9449): a JWT the client signs per request with a key it
//! holds, naming the request's method and URI, so a stolen access token
//! bound to that key (`cnf.jkt`) is useless without the key.
//!
//! [`verify_proof`] checks one proof as RFC 9449 §4.3 lists, statelessly;
//! `TokenManager::verify_dpop_proof` adds the replay check (the proof's
//! `jti` accepted once, in every process and host on the store).

use super::verify::{claims_of, split};
use super::{Alg, Keyring, Policy, VerifyingKey, verify_jws};
use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The algorithms a proof may use: asymmetric only (never `none` or HMAC,
/// which would need a secret shared with the client).
pub const DPOP_ALGS: [Alg; 9] = [
    Alg::ES256,
    Alg::ES384,
    Alg::EdDSA,
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
];
/// How old a proof may be by default (its `iat`), seconds.
pub const DEFAULT_DPOP_MAX_AGE: i64 = 300;
/// How far in the future a proof's `iat` may be by default (clock skew).
pub const DEFAULT_DPOP_LEEWAY: i64 = 5;
/// Largest proof accepted, bytes (a proof carries one public key).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted, bytes.
pub const MAX_PROOF_JTI: usize = 256;
/// JWK members that hold private key material: a proof carrying one is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must match: the request it came with and, optionally, the
/// access token, the server's nonce and the key the token is bound to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpopCheck {
    /// The request's HTTP method (`GET`, `POST`...), compared exactly.
    pub htm: String,
    /// The request's URI; compared with the proof's `htu` without query and
    /// fragment, after normalizing scheme, host and default port.
    pub htu: String,
    /// The access token sent with the proof: its hash must be the proof's `ath`.
    pub access_token: Option<String>,
    /// The nonce the server gave the client (`DPoP-Nonce`): the proof's
    /// `nonce` must equal it (`DPOP_NONCE_REQUIRED` otherwise).
    pub nonce: Option<String>,
    /// Oldest accepted `iat`, seconds before now (default 300).
    pub max_age_seconds: Option<i64>,
    /// Tolerated clock skew for an `iat` ahead of now (default 5).
    pub leeway_seconds: Option<i64>,
    /// The JWK thumbprint the access token is bound to (`cnf.jkt`): the
    /// proof's key must have it (`DPOP_BINDING_MISMATCH` otherwise).
    pub jkt: Option<String>,
}

/// A verified proof.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpopProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key (base64url): the
    /// value to bind tokens to (`cnf.jkt`).
    pub jkt: String,
    /// The proof's algorithm.
    pub alg: String,
    /// The proof's public key (its `jwk` header).
    pub jwk: Map<String, Value>,
    /// The proof's id.
    pub jti: String,
    /// When it was made (Unix seconds).
    pub iat: i64,
    /// The method it names.
    pub htm: String,
    /// The URI it names.
    pub htu: String,
    /// The access-token hash it carries, if any.
    pub ath: Option<String>,
    /// The nonce it carries, if any.
    pub nonce: Option<String>,
}

fn invalid(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::DpopProofInvalid, why)
}

fn bad_jwk(why: &str) -> Error {
    Error::new(ErrorKind::InvalidKeyMaterial, why.to_string())
}

/// The `ath` of an access token: base64url(SHA-256(token)).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (base64url): the
/// required members of its key type, in lexicographic order, no spaces.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String> {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("RSA") => &["e", "kty", "n"],
        _ => return Err(bad_jwk("the jwk has no supported kty (EC, OKP, RSA)")),
    };
    let mut canonical = Map::new();
    for m in members {
        match jwk.get(*m) {
            Some(v @ Value::String(_)) => canonical.insert((*m).to_string(), v.clone()),
            _ => return Err(bad_jwk(&format!("the jwk has no string member {m:?}"))),
        };
    }
    // serde_json's Map keeps keys sorted (no preserve_order feature) and
    // writes no whitespace: exactly the RFC 7638 form.
    let text = serde_json::to_string(&canonical)?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

/// A URI as `htu` compares it: scheme and host lowercased, the default port
/// dropped, query and fragment removed, an empty path as `/`.
pub fn normalize_htu(uri: &str) -> Result<String> {
    let bad = || invalid("htu is not an absolute http(s) URI");
    let uri = uri.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || uri.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let mut host = authority.to_ascii_lowercase();
    if host.ends_with(default_port) {
        host.truncate(host.len() - default_port.len());
    }
    Ok(format!("{scheme}://{host}{path}"))
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(format!("the proof's {name} is not a string"))),
        None => Err(invalid(format!("the proof has no {name} claim"))),
    }
}

/// Verifies a DPoP proof against `check` at `now` (Unix seconds), without
/// the replay check. Errors: `DPOP_PROOF_INVALID` (with the check that
/// failed), `DPOP_NONCE_REQUIRED`, `DPOP_BINDING_MISMATCH`.
pub fn verify_proof(proof: &str, check: &DpopCheck, now: i64) -> Result<DpopProof> {
    let max_age = check.max_age_seconds.unwrap_or(DEFAULT_DPOP_MAX_AGE);
    let leeway = check.leeway_seconds.unwrap_or(DEFAULT_DPOP_LEEWAY);
    if !(1..=86_400).contains(&max_age) || !(0..=300).contains(&leeway) {
        return Err(Error::invalid(
            "max_age_seconds must be 1..86400 and leeway_seconds 0..300",
        ));
    }
    if check.htm.is_empty() {
        return Err(Error::invalid("htm (the request's method) is required"));
    }
    let want_htu = normalize_htu(&check.htu)
        .map_err(|_| Error::invalid("htu (the request's URI) must be an absolute http(s) URI"))?;
    // The header (read unverified) names the key; the signature by that
    // key is checked next, with everything else.
    let (_, _, _, header) =
        split(proof, MAX_PROOF_BYTES).map_err(|e| invalid(e.message().to_string()))?;
    let header = &header;
    match header.get("typ").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(invalid("the proof's typ is not dpop+jwt")),
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .filter(|a| DPOP_ALGS.contains(a))
        .ok_or_else(|| invalid("the proof's alg is not an accepted asymmetric algorithm"))?;
    let jwk = match header.get("jwk") {
        Some(Value::Object(j)) => j,
        _ => return Err(invalid("the proof has no jwk header")),
    };
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(invalid(format!(
            "the proof's jwk holds private key material ({m})"
        )));
    }
    let jkt =
        jwk_thumbprint(jwk).map_err(|e| invalid(format!("the proof's jwk: {}", e.message())))?;
    let key = VerifyingKey::from_jwk_value(Value::Object(jwk.clone()))
        .and_then(|k| k.with_alg(alg))
        .map_err(|e| invalid(format!("the proof's jwk: {}", e.message())))?;
    let mut keys = Keyring::new();
    keys.add(key)?;
    let mut policy = Policy::new(&[alg]);
    policy.max_token_bytes = MAX_PROOF_BYTES;
    let jws = verify_jws(proof, &keys, &policy).map_err(|e| invalid(e.message().to_string()))?;
    let claims = claims_of(&jws.payload).map_err(|e| invalid(e.message().to_string()))?;

    let jti = text(&claims, "jti")?;
    if jti.is_empty() || jti.len() > MAX_PROOF_JTI {
        return Err(invalid(format!(
            "the proof's jti must be 1-{MAX_PROOF_JTI} bytes"
        )));
    }
    let htm = text(&claims, "htm")?;
    if htm != check.htm {
        return Err(invalid(
            "the proof's htm does not match the request's method",
        ));
    }
    let htu = text(&claims, "htu")?;
    if normalize_htu(htu).ok().as_deref() != Some(want_htu.as_str()) {
        return Err(invalid("the proof's htu does not match the request's URI"));
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| invalid("the proof's iat is not a number"))?,
        Some(_) => return Err(invalid("the proof's iat is not a number")),
        None => return Err(invalid("the proof has no iat claim")),
    };
    if iat > now.saturating_add(leeway) {
        return Err(invalid("the proof's iat is in the future"));
    }
    if iat < now.saturating_sub(max_age) {
        return Err(invalid(format!(
            "the proof is older than {max_age} seconds"
        )));
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("the proof's nonce is not a string")),
    };
    if let Some(want) = &check.nonce
        && nonce.as_deref() != Some(want.as_str())
    {
        return Err(Error::new(
            ErrorKind::DpopNonceRequired,
            "the proof must carry the server's current nonce (DPoP-Nonce)",
        ));
    }
    let ath = match claims.get("ath") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("the proof's ath is not a string")),
    };
    if let Some(token) = &check.access_token
        && ath.as_deref() != Some(access_token_hash(token).as_str())
    {
        return Err(invalid(
            "the proof's ath is not the hash of the access token sent with it",
        ));
    }
    if let Some(want) = &check.jkt
        && *want != jkt
    {
        return Err(Error::new(
            ErrorKind::DpopBindingMismatch,
            "the proof's key is not the key the access token is bound to (cnf.jkt)",
        ));
    }
    Ok(DpopProof {
        jkt,
        alg: alg.as_str().to_string(),
        jwk: jwk.clone(),
        jti: jti.to_string(),
        iat,
        htm: htm.to_string(),
        htu: htu.to_string(),
        ath,
        nonce,
    })
}

/// The `cnf.jkt` an access token's claims bind it to, if any.
pub fn bound_jkt(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("jkt")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalization() {
        for (a, b) in [
            (
                "https://Server.Example.com/token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com:443/x?y=1#z",
                "https://server.example.com/x",
            ),
            ("HTTP://h:80", "http://h/"),
            ("http://h:8080/p", "http://h:8080/p"),
        ] {
            assert_eq!(normalize_htu(a).unwrap(), b);
        }
        for bad in ["", "/relative", "ftp://h/", "https:///x", "https://u@h/"] {
            assert!(normalize_htu(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
