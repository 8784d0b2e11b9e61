//! `irontoken jwt`: verify and sign tokens with given keys (no database),
//! and the database's managed signing keys, JWKS and issuance.

use crate::Outcome;
use crate::args::{duration, object, secret};
use crate::output::{Printer, table, time};
use clap::{Args, Subcommand};
use irontoken::jwt::{ManagedKey, OneOrMany, PolicySettings};
use irontoken::{Clock, Error, TokenManager};
use serde_json::{Value, json};

/// Managed signing keys.
#[derive(Subcommand)]
pub enum SigningCmd {
    /// Generate a signing key and make it active (needs IRONTOKEN_MASTER_KEY).
    Generate {
        /// RS256, ES256, EdDSA or HS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// RSA size for RS256: 2048 or 3072.
        #[arg(long, default_value_t = 2048)]
        rsa_bits: usize,
    },
    /// Make a new key active; the old one verifies for --overlap.
    Rotate {
        /// Algorithm of the new key (default: the current key's).
        #[arg(long)]
        alg: Option<String>,
        /// How long the old key keeps verifying: 1h, 1d, seconds (0: retired now).
        #[arg(long, value_parser = duration, default_value = "0")]
        overlap: i64,
        /// RSA size for RS256: 2048 or 3072.
        #[arg(long, default_value_t = 2048)]
        rsa_bits: usize,
    },
    /// Rotate the active key if it is at least --every old (cron-safe on
    /// many hosts at once: a due key is rotated once). Prints the new key,
    /// or `null` when the active one is not due.
    RotateDue {
        /// Rotation period: 90d, 12w, 2160h, seconds.
        #[arg(long, value_parser = duration)]
        every: i64,
        /// How long the old key keeps verifying: 1d, 6h... (default 0: retired now).
        #[arg(long, value_parser = duration, default_value = "0")]
        overlap: i64,
    },
    /// Retire a key now.
    Retire {
        /// Key id.
        kid: String,
    },
    /// List the signing keys.
    List,
    /// Print the public JWKS (JSON always: it is a JSON document).
    Jwks,
}

/// JWT commands.
#[derive(Subcommand)]
pub enum JwtCmd {
    /// Managed signing keys stored in the database.
    #[command(subcommand)]
    Keys(SigningCmd),
    /// Issue a token signed by the active managed key.
    Issue {
        /// Claims as a JSON object.
        #[arg(long, default_value = "{}")]
        claims: String,
        /// Sets `sub`.
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime: 15m, 1h, seconds (default 15m).
        #[arg(long, value_parser = duration)]
        ttl: Option<i64>,
    },
    /// Start a refresh-token family: print the access and refresh tokens
    /// (JSON: the OAuth token response's fields plus `family_id`).
    Pair {
        /// The access tokens' `sub`.
        subject: String,
        /// Scope of the access tokens (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Further claims of every access token, as a JSON object.
        #[arg(long, default_value = "{}")]
        claims: String,
        /// Access-token lifetime: 15m, 1h, seconds (default 15m).
        #[arg(long, value_parser = duration)]
        ttl: Option<i64>,
        /// Refresh-token lifetime, the family's idle timeout (default 14d).
        #[arg(long, value_parser = duration)]
        refresh_ttl: Option<i64>,
        /// The family's absolute lifetime (default 90d).
        #[arg(long, value_parser = duration)]
        family_ttl: Option<i64>,
        /// Bind the family to a DPoP key: its JWK thumbprint (a proof's jkt).
        #[arg(long)]
        dpop_jkt: Option<String>,
        /// Bind the family to the client certificate in this file (PEM or DER).
        #[arg(long)]
        cert_file: Option<std::path::PathBuf>,
    },
    /// Print the RFC 8705 thumbprint of a client certificate (PEM or DER
    /// file): what a certificate-bound token's cnf["x5t#S256"] holds.
    CertThumbprint {
        /// The certificate file.
        file: std::path::PathBuf,
    },
    /// Spend a refresh token for the next pair (printed as JSON). A token
    /// spent before revokes its whole family (exit 10 + REFRESH_TOKEN_REUSED).
    Refresh {
        /// The refresh token; `-` or absent reads it from
        /// IRONTOKEN_REFRESH_TOKEN or stdin (keep it off the command line).
        token: Option<String>,
    },
    /// Show a refresh-token family.
    Family {
        /// Family id.
        id: String,
    },
    /// Revoke a refresh-token family (its refresh token is refused).
    RevokeFamily {
        /// Family id.
        id: String,
        /// Why (kept with the family and in the audit trail).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revoke every live refresh-token family of a subject.
    RevokeFamilies {
        /// The subject.
        #[arg(long)]
        subject: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Claim a one-time id until --expires-at: exit 0 the first time, 1 if
    /// any process or host claimed it before.
    ClaimJti {
        /// The id.
        jti: String,
        /// Until when it is kept (Unix seconds; at most a year ahead).
        #[arg(long)]
        expires_at: i64,
    },
    /// Verify a JWT: print its claims (exit 0), or the error (exit 10 + code).
    Verify(VerifyArgs),
    /// Sign claims into a JWT and print it.
    Sign {
        #[command(flatten)]
        key: KeySource,
        /// Algorithm, e.g. RS256, ES256, EdDSA, HS256.
        #[arg(long)]
        alg: String,
        /// Claims as a JSON object.
        #[arg(long, default_value = "{}")]
        claims: String,
        /// Sets `sub`.
        #[arg(long)]
        sub: Option<String>,
        /// Sets `iat` to now and `exp` to now + this: 15m, 1h, seconds.
        #[arg(long, value_parser = duration)]
        expires_in: Option<i64>,
        /// Key id written to the header.
        #[arg(long)]
        kid: Option<String>,
    },
}

/// What `jwt verify` checks.
#[derive(Args)]
pub struct VerifyArgs {
    /// The token; `-` or absent reads it from IRONTOKEN_JWT or stdin.
    token: Option<String>,
    #[command(flatten)]
    key: KeySource,
    /// Accepted algorithm (repeatable, at least one).
    #[arg(long = "alg", required = true)]
    algs: Vec<String>,
    /// Accepted audience (repeatable).
    #[arg(long = "aud")]
    audience: Vec<String>,
    /// Accepted issuer (repeatable: any of).
    #[arg(long = "iss")]
    issuer: Vec<String>,
    /// Expected subject.
    #[arg(long = "sub")]
    subject: Option<String>,
    /// Clock skew tolerated: 30s, 2m, seconds.
    #[arg(long, value_parser = duration, default_value = "0")]
    leeway: i64,
    /// A claim that must be present (repeatable).
    #[arg(long = "require")]
    required: Vec<String>,
    /// Require `sub` (not required by default, as in PyJWT and jose).
    #[arg(long)]
    require_sub: bool,
    /// Do not require `exp`.
    #[arg(long)]
    no_require_exp: bool,
}

impl JwtCmd {
    /// Whether the command works on given keys only, without the database.
    pub fn needs_no_database(&self) -> bool {
        matches!(
            self,
            JwtCmd::Verify(_) | JwtCmd::Sign { .. } | JwtCmd::CertThumbprint { .. }
        )
    }

    /// The RSA size a command that makes an RS256 key asks for.
    pub fn rsa_bits(&self) -> usize {
        match self {
            JwtCmd::Keys(
                SigningCmd::Generate { rsa_bits, .. } | SigningCmd::Rotate { rsa_bits, .. },
            ) => *rsa_bits,
            _ => 2048,
        }
    }
}

/// Where key material comes from (never the command line itself).
#[derive(Args)]
pub struct KeySource {
    /// File with a key in any form, judged by content: PEM (anywhere in the
    /// file) or DER key or certificate, JWK or JWKS, OpenSSH public key, or
    /// else an HMAC secret (its bytes as they are).
    #[arg(
        long,
        conflicts_with_all = ["key_env", "jwks_url"],
        required_unless_present_any = ["key_env", "jwks_url"]
    )]
    key_file: Option<std::path::PathBuf>,
    /// Environment variable holding the key text (e.g. an HMAC secret).
    #[arg(long, conflicts_with = "jwks_url")]
    key_env: Option<String>,
    /// A JWKS URL (an identity provider's jwks_uri) to verify against:
    /// https://, or http:// to a loopback host (or with --allow-http).
    #[arg(long)]
    jwks_url: Option<String>,
    /// Allow --jwks-url over http:// to any host.
    #[arg(long, requires = "jwks_url")]
    allow_http: bool,
}

impl KeySource {
    fn bytes(&self) -> Result<Vec<u8>, Error> {
        match (&self.key_file, &self.key_env) {
            (Some(path), _) => std::fs::read(path).map_err(|e| {
                Error::invalid(format!("cannot read key file {}: {e}", path.display()))
            }),
            (None, Some(var)) => std::env::var(var)
                .map(String::into_bytes)
                .map_err(|_| Error::invalid(format!("environment variable {var} is not set"))),
            (None, None) if self.jwks_url.is_some() => Err(Error::invalid(
                "a JWKS URL verifies only: give --key-file or --key-env to sign",
            )),
            (None, None) => Err(Error::invalid("give --key-file or --key-env")),
        }
    }
}

/// The RFC 8705 thumbprint of the certificate in `path`.
fn thumbprint_of(path: &std::path::Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::invalid(format!(
            "cannot read certificate file {}: {e}",
            path.display()
        ))
    })?;
    irontoken::jwt::mtls::cert_thumbprint(&bytes)
}

/// Claims from `--claims`, with `--sub` set.
fn claims_of(claims: &str, sub: &Option<String>) -> Result<serde_json::Map<String, Value>, Error> {
    let mut c = object(claims, "--claims")?;
    if let Some(s) = sub {
        c.insert("sub".into(), json!(s));
    }
    Ok(c)
}

/// `jwt verify` and `jwt sign`: given keys, no database.
pub fn run_offline(cmd: &JwtCmd, out: Printer) -> Result<Outcome, Error> {
    use irontoken::jwt::{Keyring, Signer, SigningKey, Verifier};
    match cmd {
        JwtCmd::Verify(a) => {
            let token = secret(&a.token, "IRONTOKEN_JWT", "token")?;
            let policy = PolicySettings {
                algorithms: a.algs.clone(),
                leeway: Some(a.leeway),
                issuer: (!a.issuer.is_empty()).then(|| OneOrMany::Many(a.issuer.clone())),
                audience: (!a.audience.is_empty()).then(|| a.audience.clone()),
                subject: a.subject.clone(),
                required: Some(a.required.clone()),
                require_exp: Some(!a.no_require_exp),
                require_sub: Some(a.require_sub),
                ..Default::default()
            }
            .into_policy()?;
            let d = match &a.key.jwks_url {
                Some(url) => {
                    let opts = irontoken::jwt::RemoteJwksOptions {
                        allow_http: a.key.allow_http,
                        ..Default::default()
                    };
                    irontoken::jwt::RemoteJwks::new(url, opts)?.decode(
                        &token,
                        &policy,
                        irontoken::SystemClock.now(),
                    )?
                }
                None => {
                    Verifier::new(Keyring::from_bytes(&a.key.bytes()?)?, policy)?.decode(&token)?
                }
            };
            // The claims are the output; --json adds the header.
            if out.json {
                crate::output::print_json(&json!({"header": d.header, "claims": d.claims}));
            } else {
                crate::output::print_json(&Value::Object(d.claims));
            }
        }
        JwtCmd::CertThumbprint { file } => {
            let t = thumbprint_of(file)?;
            out.essential(json!({"x5t#S256": t}), &t);
        }
        JwtCmd::Sign {
            key,
            alg,
            claims,
            sub,
            expires_in,
            kid,
        } => {
            let mut claims = claims_of(claims, sub)?;
            if let Some(d) = expires_in {
                let now = irontoken::SystemClock.now();
                claims.insert("iat".into(), json!(now));
                claims.insert("exp".into(), json!(now.saturating_add(*d)));
            }
            let signer =
                Signer::named(SigningKey::from_bytes(&key.bytes()?)?, alg, kid.as_deref())?;
            let token = signer.sign(&claims, None)?;
            out.essential(json!({"token": token}), &token);
        }
        _ => return Err(Error::invalid("this command needs the database")),
    }
    Ok(Outcome::Ok)
}

fn signing_rows(keys: &[&ManagedKey]) {
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.alg.clone(),
                k.status.clone(),
                time(Some(k.created_at)),
                time(k.verify_until),
                time(k.retired_at),
            ]
        })
        .collect();
    table(
        &[
            "KID",
            "ALG",
            "STATUS",
            "CREATED",
            "VERIFIES UNTIL",
            "RETIRED",
        ],
        rows,
    );
}

/// The signing keys: a JSON array, a table, or their kids (quiet).
fn signing_keys(out: Printer, keys: &[ManagedKey]) {
    out.value_or(
        &keys,
        |keys| signing_rows(&keys.iter().collect::<Vec<_>>()),
        |keys| keys.iter().for_each(|k| say!("{}", k.kid)),
    );
}

/// One signing key: a JSON object, a table row, or its kid (quiet).
fn signing_key(out: Printer, key: &ManagedKey) {
    out.value_or(key, |k| signing_rows(&[k]), |k| say!("{}", k.kid));
}

/// The managed-key commands, on the database.
pub fn run_managed(
    tm: &TokenManager,
    cmd: &JwtCmd,
    out: Printer,
    actor: Option<&str>,
) -> Result<Outcome, Error> {
    let alg = irontoken::jwt::Alg::from_name;
    match cmd {
        JwtCmd::Keys(SigningCmd::Generate { alg: a, .. }) => {
            signing_key(out, &tm.create_signing_key(alg(a)?, actor)?)
        }
        JwtCmd::Keys(SigningCmd::Rotate {
            alg: a, overlap, ..
        }) => {
            let a = a.as_deref().map(alg).transpose()?;
            signing_key(out, &tm.rotate_signing_key(a, *overlap, actor)?)
        }
        JwtCmd::Keys(SigningCmd::RotateDue { every, overlap }) => {
            match tm.rotate_signing_key_if_due(*every, *overlap, actor)? {
                Some(k) => signing_key(out, &k),
                None => out.done(
                    json!(null),
                    format_args!("not due: the active key is younger than the period"),
                ),
            }
        }
        JwtCmd::Keys(SigningCmd::Retire { kid }) => {
            signing_key(out, &tm.retire_signing_key(kid, actor)?)
        }
        JwtCmd::Keys(SigningCmd::List) => signing_keys(out, &tm.list_signing_keys()?),
        JwtCmd::Keys(SigningCmd::Jwks) => crate::output::print_json(&tm.jwks()?),
        JwtCmd::Issue { claims, sub, ttl } => {
            let token = tm.issue_jwt(&claims_of(claims, sub)?, *ttl)?;
            out.essential(json!({"token": token}), &token);
        }
        JwtCmd::Pair {
            subject,
            scopes,
            claims,
            ttl,
            refresh_ttl,
            family_ttl,
            dpop_jkt,
            cert_file,
        } => {
            let cert_thumbprint = cert_file.as_deref().map(thumbprint_of).transpose()?;
            let pair = tm.issue_token_pair(&irontoken::refresh::NewTokenPair {
                subject: subject.clone(),
                scopes: scopes.clone(),
                claims: object(claims, "--claims")?,
                ttl_seconds: *ttl,
                refresh_ttl_seconds: *refresh_ttl,
                family_ttl_seconds: *family_ttl,
                dpop_jkt: dpop_jkt.clone(),
                cert_thumbprint,
            })?;
            crate::output::print_json(&serde_json::to_value(pair)?);
        }
        JwtCmd::Refresh { token } => {
            let token = secret(token, "IRONTOKEN_REFRESH_TOKEN", "refresh token")?;
            let pair = tm.refresh_token_pair(&token)?;
            crate::output::print_json(&serde_json::to_value(pair)?);
        }
        JwtCmd::Family { id } => {
            crate::output::print_json(&serde_json::to_value(tm.get_token_family(id)?)?);
        }
        JwtCmd::RevokeFamily { id, reason } => {
            let done = tm.revoke_token_family(id, reason.as_deref())?;
            out.done(
                json!({"revoked": done}),
                format_args!("{}", if done { "revoked" } else { "already revoked" }),
            );
        }
        JwtCmd::RevokeFamilies { subject, reason } => {
            let n = tm.revoke_token_families(subject, reason.as_deref())?;
            out.done(json!({"revoked": n}), format_args!("revoked {n} families"));
        }
        JwtCmd::ClaimJti { jti, expires_at } => {
            let claimed = tm.claim_jti(jti, *expires_at)?;
            out.done(
                json!({"claimed": claimed}),
                format_args!(
                    "{}",
                    if claimed {
                        "claimed"
                    } else {
                        "already claimed"
                    }
                ),
            );
            if !claimed {
                return Ok(Outcome::Refused);
            }
        }
        JwtCmd::Verify(_) | JwtCmd::Sign { .. } | JwtCmd::CertThumbprint { .. } => {
            return Err(Error::invalid("not a database command"));
        }
    }
    Ok(Outcome::Ok)
}
