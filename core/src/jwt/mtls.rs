//! Certificate-bound access tokens (RFC 8705 §3): a token carries the
//! SHA-256 thumbprint of the client certificate it was issued to
//! (`cnf["x5t#S256"]`) and is accepted only over a TLS connection that
//! presented that certificate.

use crate::error::{Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest certificate accepted, bytes (PEM or DER).
pub const MAX_CERT_BYTES: usize = 64 * 1024;

fn bad(why: &str) -> Error {
    Error::new(ErrorKind::InvalidKeyMaterial, why.to_string())
}

/// The DER bytes of a client certificate given as PEM (`-----BEGIN
/// CERTIFICATE-----`), as PEM percent-encoded the way TLS-terminating
/// proxies forward it (nginx `$ssl_client_escaped_cert`, Envoy's XFCC
/// `Cert=`), or as DER.
pub fn cert_der(cert: &[u8]) -> Result<Vec<u8>> {
    if cert.len() > MAX_CERT_BYTES {
        return Err(bad("the client certificate is over 64 KiB"));
    }
    let text = std::str::from_utf8(cert).ok().map(str::trim);
    // nginx's $ssl_client_escaped_cert keeps the dashes and escapes the
    // rest (`-----BEGIN%20CERTIFICATE-----%0A...`); others escape all.
    let pem_text = match text {
        Some(t) if t.starts_with("-----BEGIN") && !t.contains('%') => Some(t.to_string()),
        Some(t)
            if t.starts_with("-----BEGIN")
                || t.starts_with("%2D%2D%2D%2D%2DBEGIN")
                || t.starts_with("%2d%2d%2d%2d%2dBEGIN") =>
        {
            Some(percent_decode(t)?)
        }
        _ => None,
    };
    let der = match pem_text {
        Some(p) => {
            let block = pem::parse(p.as_bytes())
                .map_err(|_| bad("the client certificate is not valid PEM"))?;
            if block.tag() != "CERTIFICATE" {
                return Err(bad("the PEM block is not a CERTIFICATE"));
            }
            block.into_contents()
        }
        None => cert.to_vec(),
    };
    // A DER certificate is one SEQUENCE spanning the whole input.
    if der.len() < 16 || der[0] != 0x30 {
        return Err(bad("the client certificate is neither PEM nor DER"));
    }
    Ok(der)
}

fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("the client certificate's percent-encoding is broken"))?;
            out.push(hex);
            i += 3;
        } else {
            // `+` stays: it is a base64 character, not a space, here.
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("the client certificate is not text"))
}

/// The RFC 8705 thumbprint of a client certificate: base64url(SHA-256(DER)).
pub fn cert_thumbprint(cert: &[u8]) -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der(cert)?)))
}

/// The `cnf["x5t#S256"]` an access token's claims bind it to, if any.
pub fn bound_thumbprint(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("x5t#S256")?.as_str()
}
