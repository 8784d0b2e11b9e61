//! Certificate-bound access tokens (RFC 8705 §3): a token carries the
//! SHA-256 thumbprint of the client certificate it was issued to
//! (`cnf["x5t#S256"]`) and is accepted only over a TLS connection that
//! presented that certificate.

use super::material::{DerKind, Material, classify, is_certificate_der};
use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest certificate accepted, bytes (PEM or DER).
pub const MAX_CERT_BYTES: usize = 64 * 1024;

fn bad(why: &str) -> Error {
    Error::new(ErrorKind::InvalidKeyMaterial, why.to_string())
}

/// The DER bytes of a client certificate given as PEM, as PEM
/// percent-encoded the way TLS-terminating proxies forward it (nginx
/// `$ssl_client_escaped_cert` keeps the dashes, Envoy's XFCC `Cert=`
/// escapes all), or as DER. What it is comes from [`classify`], as for keys.
pub fn cert_der(cert: &[u8]) -> Result<Vec<u8>> {
    if cert.len() > MAX_CERT_BYTES {
        return Err(bad("the client certificate is over 64 KiB"));
    }
    let escaped = std::str::from_utf8(cert).ok().map(str::trim).filter(|t| {
        let head = t.get(..20).unwrap_or(t).to_ascii_uppercase();
        t.contains('%')
            && (head.starts_with("-----BEGIN") || head.starts_with("%2D%2D%2D%2D%2DBEGIN"))
    });
    let decoded = escaped.map(|t| percent_decode_str(t).collect::<Vec<u8>>());
    match classify(decoded.as_deref().unwrap_or(cert)) {
        Ok(Material::Der {
            kind: DerKind::Certificate,
            der,
        }) if is_certificate_der(&der) => Ok(der),
        _ => Err(bad(
            "the client certificate is neither a PEM nor a DER certificate",
        )),
    }
}

/// The RFC 8705 thumbprint of a client certificate: base64url(SHA-256(DER)).
pub fn cert_thumbprint(cert: &[u8]) -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der(cert)?)))
}

/// The `cnf["x5t#S256"]` an access token's claims bind it to, if any.
pub fn bound_thumbprint(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("x5t#S256")?.as_str()
}
