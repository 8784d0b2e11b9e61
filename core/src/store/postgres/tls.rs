//! TLS to PostgreSQL: which connections use it, and the rustls client that
//! verifies the server.
//!
//! `sslmode=require`, `verify-ca` and `verify-full` connect over TLS and
//! always verify the server's certificate chain and host name — against the
//! PEM file named by `sslrootcert`, or else the Mozilla roots. (Stricter
//! than libpq, whose `require` encrypts without verifying: an unverified
//! channel is open to whoever sits in between, which is what TLS is asked to
//! prevent.) `disable`, `allow` and `prefer` — the default — connect without
//! TLS.

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::link::Drive;
use crate::error::{Error, Result};

/// How connections are made: in clear, or over TLS with this client.
#[derive(Clone)]
pub(crate) enum Tls {
    /// No TLS (`sslmode` disable, allow, prefer or absent).
    Off,
    /// TLS with the server verified (`sslmode` require, verify-ca, verify-full).
    On(MakeRustlsConnect),
}

impl Tls {
    /// Whether connections are encrypted.
    pub(crate) fn enabled(&self) -> bool {
        matches!(self, Tls::On(_))
    }

    /// Connects `config` this way (on the caller's runtime).
    pub(crate) async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> std::result::Result<(tokio_postgres::Client, Box<dyn Drive>), tokio_postgres::Error> {
        Ok(match self {
            Tls::Off => {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                (client, Box::new(conn) as Box<dyn Drive>)
            }
            Tls::On(make) => {
                let (client, conn) = config.connect(make.clone()).await?;
                (client, Box::new(conn) as Box<dyn Drive>)
            }
        })
    }
}

/// Takes the TLS parameters out of a `postgresql://` URL: returns the URL
/// as `tokio_postgres::Config` understands it (which knows `sslmode` disable,
/// prefer and require only, and no `sslrootcert`) and the TLS to use.
pub(crate) fn split(url: &str) -> Result<(String, Tls)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => return Ok((url.to_string(), Tls::Off)),
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut rootcert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || {
            percent_decode_str(v)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| Error::invalid(format!("PostgreSQL URL: {k} is not UTF-8")))
        };
        match k {
            "sslmode" => mode = Some(value()?),
            "sslrootcert" => rootcert = Some(value()?),
            "sslcert" | "sslkey" | "sslcrl" | "sslpassword" => {
                return Err(Error::invalid(format!(
                    "PostgreSQL URL: {k} is not supported (client certificates and CRLs are not; \
                     use sslrootcert to name the server's CA)"
                )));
            }
            _ => kept.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => {
            if rootcert.is_some() {
                return Err(Error::invalid(
                    "PostgreSQL URL: sslrootcert needs sslmode=verify-full (or require / verify-ca)",
                ));
            }
            Tls::Off
        }
        Some("require" | "verify-ca" | "verify-full") => {
            Tls::On(MakeRustlsConnect::new(client_config(rootcert.as_deref())?))
        }
        Some(other) => {
            return Err(Error::invalid(format!(
                "PostgreSQL URL: unknown sslmode {other:?} (disable, allow, prefer, require, verify-ca, verify-full)"
            )));
        }
    };
    if let Some(m) = &mode {
        // tokio_postgres::Config: require means "TLS or fail"; the others, none.
        kept.push(if tls.enabled() {
            "sslmode=require"
        } else if m == "disable" {
            "sslmode=disable"
        } else {
            "sslmode=prefer"
        });
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

/// A rustls client trusting `rootcert` (PEM certificates) or the Mozilla roots.
fn client_config(rootcert: Option<&str>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match rootcert {
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| {
                Error::invalid(format!(
                    "PostgreSQL sslrootcert {path:?} cannot be read: {e}"
                ))
            })?;
            let blocks = pem::parse_many(&text).map_err(|_| {
                Error::invalid(format!("PostgreSQL sslrootcert {path:?} is not PEM"))
            })?;
            for b in blocks.iter().filter(|b| b.tag() == "CERTIFICATE") {
                roots.add(b.contents().to_vec().into()).map_err(|e| {
                    Error::invalid(format!(
                        "PostgreSQL sslrootcert {path:?}: a certificate is not usable: {e}"
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(Error::invalid(format!(
                    "PostgreSQL sslrootcert {path:?} holds no certificate"
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_tls_pass_through() {
        for url in [
            "postgresql://u@h/db",
            "postgresql://u@h/db?sslmode=disable",
            "postgresql://u@h/db?sslmode=prefer&connect_timeout=3",
        ] {
            let (out, tls) = split(url).unwrap();
            assert!(!tls.enabled(), "{url}");
            assert!(out.starts_with("postgresql://u@h/db"), "{out}");
        }
        let (out, _) = split("postgresql://u@h/db?sslmode=allow&application_name=x").unwrap();
        assert_eq!(out, "postgresql://u@h/db?application_name=x&sslmode=prefer");
    }

    #[test]
    fn verifying_modes_turn_tls_on_and_strip_what_postgres_does_not_know() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let (out, tls) = split(&format!("postgresql://u@h/db?sslmode={mode}")).unwrap();
            assert!(tls.enabled(), "{mode}");
            assert_eq!(out, "postgresql://u@h/db?sslmode=require");
        }
    }

    #[test]
    fn bad_tls_parameters_are_refused_with_the_reason() {
        let err = |url: &str| split(url).err().expect(url).to_string();
        assert!(err("postgresql://h/db?sslmode=bogus").contains("unknown sslmode"));
        assert!(err("postgresql://h/db?sslrootcert=%2Ftmp%2Fca.pem").contains("needs sslmode"));
        assert!(
            err("postgresql://h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .contains("cannot be read")
        );
        assert!(err("postgresql://h/db?sslmode=require&sslcert=/c.pem").contains("not supported"));
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let url = format!(
            "postgresql://h/db?sslmode=verify-full&sslrootcert={}",
            junk.display()
        );
        assert!(err(&url).contains("holds no certificate") || err(&url).contains("not PEM"));
    }
}
