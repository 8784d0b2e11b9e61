//! `irontoken`: administer API keys and read the audit trail from a shell.
//!
//! Exit codes: 0 success (and a VALID key for `keys verify`); 1 a key that
//! `keys verify` refused; 2 a usage error; 10 + the error's stable number
//! for every other failure (e.g. 12 = KEY_NOT_FOUND, 18 = STORAGE).

/// Prints a line on stdout; once stdout is closed (a reader such as
/// `head` went away), further output is dropped quietly instead of the
/// panic `println!` gives.
macro_rules! say {
    ($($t:tt)*) => { $crate::say_line(format_args!($($t)*)) };
}

mod usage;

use clap::{Args, Parser, Subcommand};
use irontoken::{
    AuditEvent, AuditFilter, Clock, CreatedKey, Error, ImportKey, KeyFilter, KeyRecord, KeyStatus,
    KeyUpdate, NewKey, Page, RotateOptions, TokenManager,
};
use serde_json::{Map, Value, json};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "irontoken",
    version,
    about = "Manage irontoken API keys and read the audit trail"
)]
struct Cli {
    /// SQLite database file (created if missing), sqlite:// URL, or a
    /// postgresql:// URL (many hosts).
    #[arg(
        long,
        env = "IRONTOKEN_DB",
        global = true,
        default_value = "irontoken.db"
    )]
    db: String,
    /// Where rate-limit state lives: store (the database, shared by every
    /// process; default), local, or a redis:// URL.
    #[arg(long, env = "IRONTOKEN_RATE_LIMIT_STORE", global = true)]
    rate_limit_store: Option<String>,
    /// PostgreSQL: the most one call waits on the server in all, in
    /// milliseconds (connect, statements, commit; default 5000).
    #[arg(
        long = "storage-timeout",
        env = "IRONTOKEN_STORAGE_TIMEOUT_MS",
        global = true,
        value_name = "MS"
    )]
    storage_timeout: Option<u64>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Who is acting, recorded in the audit trail.
    #[arg(long, env = "IRONTOKEN_ACTOR", global = true)]
    actor: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, verify and manage API keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Verify and sign JWTs (no database needed).
    #[command(subcommand)]
    Jwt(JwtCmd),
    /// Usage records: `report` totals, `export` CSV or JSON lines.
    #[command(subcommand)]
    Usage(usage::UsageCmd),
    /// Quotas of keys and owners.
    #[command(subcommand)]
    Quota(usage::QuotaCmd),
    /// Sessions.
    #[command(subcommand)]
    Sessions(usage::SessionsCmd),
    /// Budgets agents lease from.
    #[command(subcommand)]
    Budgets(usage::BudgetsCmd),
    /// Agent tokens.
    #[command(subcommand)]
    Agents(usage::AgentsCmd),
    /// Check a request against rate limits in the rate-limit store (exit 1 when refused).
    #[command(subcommand)]
    Ratelimit(RatelimitCmd),
    /// Check the database file: SQLite's full integrity_check, schema
    /// version, journal mode, file permissions (exit 1 if anything is wrong).
    Doctor,
}

impl Command {
    /// True for the commands that may create the database file; every
    /// other command (reads, verifies, updates) refuses a missing or empty
    /// file with DATABASE_NOT_FOUND instead of creating an empty database.
    fn creates(&self) -> bool {
        matches!(
            self,
            Command::Keys(KeysCmd::Create(_) | KeysCmd::Import { .. })
                | Command::Jwt(JwtCmd::Keys(SigningCmd::Generate { .. }))
                | Command::Quota(usage::QuotaCmd::Set { .. })
                | Command::Budgets(usage::BudgetsCmd::Create { .. })
        )
    }
}

#[derive(Subcommand)]
enum RatelimitCmd {
    /// Count one request of KEY against the limits, all-or-nothing.
    Check {
        /// Whose request (an API key id, a client id, an IP...).
        key: String,
        /// A limit NAME=COUNT/PERIOD[:BURST] (repeatable, at least one).
        #[arg(long = "limit", value_parser = parse_limit, required = true)]
        limits: Vec<irontoken::ratelimit::Limit>,
        /// Answer without counting the request.
        #[arg(long)]
        peek: bool,
    },
}

#[derive(Subcommand)]
enum SigningCmd {
    /// Generate a signing key and make it active (needs IRONTOKEN_MASTER_KEY).
    Generate {
        /// RS256, ES256, EdDSA or HS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// RSA size for RS256: 2048 or 3072.
        #[arg(long, default_value_t = 2048)]
        rsa_bits: usize,
    },
    /// Make a new key active; the old one verifies for --overlap seconds.
    Rotate {
        /// Algorithm of the new key (default: the current key's).
        #[arg(long)]
        alg: Option<String>,
        /// Seconds the old key keeps verifying (0: retired now).
        #[arg(long, default_value_t = 0)]
        overlap: i64,
        /// RSA size for RS256: 2048 or 3072.
        #[arg(long, default_value_t = 2048)]
        rsa_bits: usize,
    },
    /// Rotate the active key if it is at least --every old (cron-safe on
    /// many hosts at once: a due key is rotated once). Prints the new key,
    /// or `null` when the active one is not due.
    RotateDue {
        /// Rotation period: 90d, 12w, 2160h...
        #[arg(long, value_parser = parse_seconds)]
        every: i64,
        /// How long the old key keeps verifying: 1d, 6h... (default 0: retired now).
        #[arg(long, value_parser = parse_seconds, default_value = "0s")]
        overlap: i64,
    },
    /// Retire a key now.
    Retire {
        /// Key id.
        kid: String,
    },
    /// List the signing keys.
    List,
    /// Print the public JWKS.
    Jwks,
}

#[derive(Subcommand)]
enum JwtCmd {
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
        /// Lifetime in seconds (default 900).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Verify a JWT: print its claims (exit 0), or the error (exit 10 + code).
    Verify {
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
        /// Expected issuer.
        #[arg(long = "iss")]
        issuer: Option<String>,
        /// Expected subject.
        #[arg(long = "sub")]
        subject: Option<String>,
        /// Seconds of clock skew tolerated.
        #[arg(long, default_value_t = 0)]
        leeway: i64,
        /// A claim that must be present (repeatable).
        #[arg(long = "require")]
        required: Vec<String>,
        /// Do not require `sub`.
        #[arg(long)]
        no_require_sub: bool,
        /// Do not require `exp`.
        #[arg(long)]
        no_require_exp: bool,
    },
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
        /// Sets `iat` to now and `exp` to now + this many seconds.
        #[arg(long)]
        expires_in: Option<i64>,
        /// Key id written to the header.
        #[arg(long)]
        kid: Option<String>,
    },
}

/// Where key material comes from (never the command line itself).
#[derive(Args)]
struct KeySource {
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

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key; the plaintext is printed once, now.
    Create(CreateArgs),
    /// List keys (oldest first).
    List(ListArgs),
    /// Show one key's record.
    Show {
        /// Key id.
        id: String,
    },
    /// Verify a key: exit 0 if valid, 1 if refused.
    Verify {
        /// The key; `-` or absent reads it from IRONTOKEN_KEY or the first line of stdin.
        key: Option<String>,
        /// A scope the key must hold (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Also apply the key's own rate limits (counted in the rate-limit store).
        #[arg(long)]
        rate_limit: bool,
    },
    /// Change name, description, scopes, metadata or expiry.
    Update(UpdateArgs),
    /// Disable a key until enabled again.
    Disable {
        /// Key id.
        id: String,
    },
    /// Enable a disabled key.
    Enable {
        /// Key id.
        id: String,
    },
    /// Revoke a key permanently.
    Revoke {
        /// Key id.
        id: String,
        /// Why (kept in the record and the audit trail).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replace a key by a new one; the new plaintext is printed once, now.
    Rotate {
        /// Key id.
        id: String,
        /// Seconds the old key keeps verifying (0: revoke it now).
        #[arg(long, default_value_t = 0)]
        overlap: i64,
    },
    /// Import keys from another system by their SHA-256, all or none:
    /// CSV (header: key_hash, owner, and optionally name, description,
    /// scopes (space-separated), expires_at, display_prefix, metadata,
    /// legacy_id) or
    /// JSON lines (import_key objects with key_hash). Plaintexts are refused.
    Import {
        /// The file (`-`: stdin).
        file: std::path::PathBuf,
        /// csv or jsonl (default: from the file name, jsonl otherwise).
        #[arg(long)]
        format: Option<String>,
    },
    /// List the keys due for rotation (at least their rotation period old).
    Due {
        /// Period for keys without their own (90d...).
        #[arg(long, value_parser = parse_seconds)]
        default_period: Option<i64>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Rotate every key due for rotation and print the new keys — their
    /// plaintexts, shown once, go to the owners. Safe from cron on several
    /// hosts at once.
    RotateDue {
        /// How long the old keys keep verifying (default 0s: revoked now).
        #[arg(long, value_parser = parse_seconds, default_value = "0s")]
        overlap: i64,
        /// Period for keys without their own (90d...).
        #[arg(long, value_parser = parse_seconds)]
        default_period: Option<i64>,
    },
    /// Delete a key's record (its audit history stays). Its hash stays as a
    /// tombstone: importing the key again is refused until lift-tombstone.
    Delete {
        /// Key id.
        id: String,
    },
    /// Lift a deleted key's tombstone so the key may be imported again
    /// (audited). Exits 1 when there was none.
    LiftTombstone {
        /// The deleted key's SHA-256 (64 hex or 44 base64 characters).
        #[arg(long)]
        key_hash: String,
    },
    /// Exchange an API key for a short-lived access token (a JWT).
    Exchange {
        /// The key; `-` or absent reads it from IRONTOKEN_KEY or stdin.
        key: Option<String>,
        /// A scope the key must hold (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Token lifetime in seconds (default 900).
        #[arg(long)]
        ttl: Option<i64>,
    },
}

#[derive(Args)]
struct CreateArgs {
    /// Owner of the key (user, service, tenant).
    #[arg(long)]
    owner: String,
    /// Short name.
    #[arg(long, default_value = "")]
    name: String,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Scope granted (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Metadata as a JSON object.
    #[arg(long)]
    metadata: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, conflicts_with = "expires_at")]
    expires_in: Option<i64>,
    /// Expiry as Unix seconds.
    #[arg(long)]
    expires_at: Option<i64>,
    /// Key prefix (default itk).
    #[arg(long)]
    prefix: Option<String>,
    /// Rate limit NAME=COUNT/PERIOD[:BURST] applied by verify_key_with,
    /// e.g. per_second=10/1s:20 or per_day=10000/1d (repeatable).
    #[arg(long = "rate-limit", value_parser = parse_limit)]
    rate_limits: Vec<irontoken::ratelimit::Limit>,
    /// Rotation period (90d, 12w...): the key is due for `keys rotate-due`
    /// once that old; rotations keep it.
    #[arg(long, value_parser = parse_seconds)]
    rotation_period: Option<i64>,
}

#[derive(Args)]
struct ListArgs {
    /// Only this owner's keys.
    #[arg(long)]
    owner: Option<String>,
    /// Only keys in this state: active, disabled, revoked, expired.
    #[arg(long)]
    status: Option<String>,
    /// Page size (1-1000).
    #[arg(long)]
    limit: Option<u32>,
    /// Cursor from the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Args)]
struct UpdateArgs {
    /// Key id.
    id: String,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    /// New scope list (repeatable; replaces the list).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Remove every scope.
    #[arg(long, conflicts_with = "scopes")]
    clear_scopes: bool,
    /// New metadata JSON object (replaces it).
    #[arg(long)]
    metadata: Option<String>,
    /// New expiry as Unix seconds.
    #[arg(long, conflicts_with_all = ["expires_in", "no_expiry"])]
    expires_at: Option<i64>,
    /// New lifetime from now, in seconds.
    #[arg(long, conflicts_with = "no_expiry")]
    expires_in: Option<i64>,
    /// Remove the expiry.
    #[arg(long)]
    no_expiry: bool,
    /// New rate limits NAME=COUNT/PERIOD[:BURST] (repeatable; replaces the list).
    #[arg(long = "rate-limit", value_parser = parse_limit)]
    rate_limits: Vec<irontoken::ratelimit::Limit>,
    /// Remove every rate limit.
    #[arg(long, conflicts_with = "rate_limits")]
    clear_rate_limits: bool,
    /// New rotation period (90d, 12w...).
    #[arg(long, value_parser = parse_seconds)]
    rotation_period: Option<i64>,
    /// Remove the key's own rotation period (the manager default applies).
    #[arg(long, conflicts_with = "rotation_period")]
    clear_rotation_period: bool,
}

/// Parses a humantime duration (90d, 6h, 30s) into whole seconds.
fn parse_seconds(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    i64::try_from(d.as_secs()).map_err(|_| format!("{s:?}: too long"))
}

/// Parses NAME=COUNT/PERIOD[:BURST]; PERIOD is a humantime duration (1s, 1m, 1d).
fn parse_limit(s: &str) -> Result<irontoken::ratelimit::Limit, String> {
    let bad = || format!("{s:?}: expected NAME=COUNT/PERIOD[:BURST], e.g. per_second=10/1s:20");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (count, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (period, burst) = match rest.split_once(':') {
        Some((p, b)) => (p, Some(b)),
        None => (rest, None),
    };
    let count: u64 = count.parse().map_err(|_| bad())?;
    let period = humantime::parse_duration(period).map_err(|e| format!("{s:?}: {e}"))?;
    let burst = match burst {
        Some(b) => b.parse().map_err(|_| bad())?,
        None => count,
    };
    irontoken::ratelimit::Limit::new(name, count, period.as_millis() as u64, burst)
        .map_err(|e| e.message().to_string())
}

#[derive(Subcommand)]
enum AuditCmd {
    /// List audit events, newest first.
    List {
        /// Only this key's events.
        #[arg(long)]
        key_id: Option<String>,
        /// Only this action, e.g. key.revoke or key.verify.
        #[arg(long)]
        action: Option<String>,
        /// Only this outcome, e.g. NOT_FOUND.
        #[arg(long)]
        outcome: Option<String>,
        /// Only events by this actor.
        #[arg(long = "by")]
        by: Option<String>,
        /// Only events at or after this Unix time.
        #[arg(long)]
        since: Option<i64>,
        /// Only events before this Unix time.
        #[arg(long)]
        until: Option<i64>,
        /// Page size (1-1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor from the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
}

/// What a command ended with.
enum Outcome {
    Ok,
    Refused,
}

/// Set once a write to stdout failed (EPIPE): nothing more is printed.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes one line to stdout, or drops it once stdout is closed.
fn say_line(args: std::fmt::Arguments<'_>) {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{args}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes a new key's plaintext to stdout before its transaction commits:
/// if it cannot be written, the key is not created.
fn deliver_key(json: bool) -> impl FnOnce(&CreatedKey) -> Result<(), Error> {
    move |c| {
        let text = if json {
            let v = json!({"key": c.key.as_str(), "record": c.record});
            serde_json::to_string_pretty(&v).unwrap_or_default()
        } else {
            c.key.as_str().to_string()
        };
        if stdout_is_void() {
            return Err(Error::new(
                irontoken::ErrorKind::Internal,
                "stdout is closed: the new key would be seen by nobody, so nothing was created",
            ));
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|_| out.flush())
            .map_err(|e| {
                Error::new(
                    irontoken::ErrorKind::Internal,
                    format!("could not write the new key to stdout ({e}): nothing was created"),
                )
            })
    }
}

/// Whether stdout was closed (`>&-`). Rust's runtime puts /dev/null, opened
/// read-write, in place of a closed stdout, where every write succeeds and a
/// new key would be lost. A shell's `> /dev/null` opens it write-only: that
/// is the caller's explicit choice, and stays allowed. (A pipe whose reader
/// left is caught by the write itself.) Linux reads the open mode from
/// /proc; elsewhere only a missing descriptor counts.
#[cfg(unix)]
fn stdout_is_void() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return true; // no descriptor at all
    };
    drop(fd);
    let (Ok(out), Ok(null)) = (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    if !(out.file_type().is_char_device() && out.rdev() == null.rdev()) {
        return false;
    }
    // `flags:` is octal; O_ACCMODE is 3 and O_RDWR 2.
    std::fs::read_to_string("/proc/self/fdinfo/1")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        })
        .is_some_and(|flags| flags & 3 == 2)
}

#[cfg(not(unix))]
fn stdout_is_void() -> bool {
    false
}

/// A value as it may be shown on a terminal: control, bidi and invisible
/// characters become visible `\u{...}` escapes, so stored text cannot forge
/// rows or reorder a listing.
fn shown(s: &str) -> String {
    if !s
        .chars()
        .any(|c| c.is_control() || irontoken::is_bidi_or_invisible(c))
    {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() || irontoken::is_bidi_or_invisible(c) {
                format!("\\u{{{:04x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        Err(e) => {
            if cli.json {
                let body = json!({"error": {"code": e.code(), "message": e.message()}});
                eprintln!("{body}");
            } else {
                eprintln!("irontoken: {e}");
            }
            ExitCode::from(10 + e.kind().status() as u8)
        }
    }
}

fn parse_metadata(s: &Option<String>) -> Result<Option<Map<String, Value>>, Error> {
    match s {
        None => Ok(None),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(Error::invalid("--metadata must be a JSON object")),
        },
    }
}

fn run_jwt(cmd: &JwtCmd, json_out: bool) -> Result<Outcome, Error> {
    use irontoken::jwt::{Keyring, PolicySettings, Signer, SigningKey, Verifier};
    match cmd {
        JwtCmd::Keys(_) | JwtCmd::Issue { .. } => {
            return Err(Error::invalid("this command needs the database"));
        }
        JwtCmd::Verify {
            token,
            key,
            algs,
            audience,
            issuer,
            subject,
            leeway,
            required,
            no_require_sub,
            no_require_exp,
        } => {
            let token = read_secret_arg(token, "IRONTOKEN_JWT", "token")?;
            let policy = PolicySettings {
                algorithms: algs.clone(),
                leeway: Some(*leeway),
                issuer: issuer.clone(),
                audience: (!audience.is_empty()).then(|| audience.clone()),
                subject: subject.clone(),
                required: Some(required.clone()),
                require_exp: Some(!no_require_exp),
                require_sub: Some(!no_require_sub),
                ..Default::default()
            }
            .into_policy()?;
            let d = match &key.jwks_url {
                Some(url) => {
                    let opts = irontoken::jwt::RemoteJwksOptions {
                        allow_http: key.allow_http,
                        ..Default::default()
                    };
                    irontoken::jwt::RemoteJwks::new(url, opts)?.decode(
                        &token,
                        &policy,
                        irontoken::SystemClock.now(),
                    )?
                }
                None => {
                    Verifier::new(Keyring::from_bytes(&key.bytes()?)?, policy)?.decode(&token)?
                }
            };
            let out = if json_out {
                json!({"header": d.header, "claims": d.claims})
            } else {
                Value::Object(d.claims)
            };
            say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        JwtCmd::Sign {
            key,
            alg,
            claims,
            sub,
            expires_in,
            kid,
        } => {
            let mut claims = match serde_json::from_str::<Value>(claims) {
                Ok(Value::Object(m)) => m,
                _ => return Err(Error::invalid("--claims must be a JSON object")),
            };
            if let Some(s) = sub {
                claims.insert("sub".into(), json!(s));
            }
            if let Some(d) = expires_in {
                let now = irontoken::SystemClock.now();
                claims.insert("iat".into(), json!(now));
                claims.insert("exp".into(), json!(now.saturating_add(*d)));
            }
            let signer =
                Signer::named(SigningKey::from_bytes(&key.bytes()?)?, alg, kid.as_deref())?;
            say!("{}", signer.sign(&claims, None)?);
        }
    }
    Ok(Outcome::Ok)
}

/// A secret-ish argument: given, from an environment variable, or from stdin with `-`.
/// Bytes that are not UTF-8 (in the variable or on stdin) become U+FFFD, which
/// no key or token holds: a refusal (`MALFORMED`), as a header's bytes are in
/// Python and Node, not an error about reading.
fn read_secret_arg(arg: &Option<String>, env: &str, what: &str) -> Result<String, Error> {
    if let Some(v) = arg.as_deref().filter(|v| *v != "-") {
        return Ok(v.to_string());
    }
    if arg.is_none()
        && let Some(v) = std::env::var_os(env)
    {
        return Ok(irontoken::keys::key_from_bytes(v.as_encoded_bytes()).into_owned());
    }
    let stdin = std::io::stdin();
    if arg.is_none() && stdin.is_terminal() {
        return Err(Error::invalid(format!(
            "give the {what} as an argument, in {env}, or on stdin with '-'"
        )));
    }
    let mut line = Vec::new();
    stdin
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::invalid(format!("cannot read the {what} from stdin: {e}")))?;
    let text = irontoken::keys::key_from_bytes(&line);
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// `irontoken doctor`: prints what [`TokenManager::doctor`] found.
fn doctor(db: &str, json_out: bool) -> Result<Outcome, Error> {
    let r = TokenManager::doctor(db)?;
    if json_out {
        print_json(&r);
    } else {
        say!(
            "file            {} ({} bytes)",
            shown(&r.path),
            r.size_bytes
        );
        say!(
            "schema          v{} (this irontoken writes v{})",
            r.schema_version,
            r.supported_schema_version
        );
        say!("journal mode    {}", r.journal_mode);
        if r.integrity_problems.is_empty() {
            say!("integrity       ok (integrity_check)");
        } else {
            say!("integrity       {} problem(s):", r.integrity_problems.len());
            for p in &r.integrity_problems {
                say!("  {}", shown(p));
            }
        }
        for p in &r.readable_by_others {
            say!(
                "permissions     {} is readable by others (chmod 600)",
                shown(p)
            );
        }
        say!("{}", if r.ok { "ok" } else { "NEEDS ATTENTION" });
    }
    Ok(if r.ok { Outcome::Ok } else { Outcome::Refused })
}

fn print_json(v: &impl serde::Serialize) {
    say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn run_managed(tm: &TokenManager, cmd: &JwtCmd, actor: Option<&str>) -> Result<Outcome, Error> {
    let alg = irontoken::jwt::Alg::from_name;
    match cmd {
        JwtCmd::Keys(SigningCmd::Generate { alg: a, .. }) => {
            print_json(&tm.create_signing_key(alg(a)?, actor)?)
        }
        JwtCmd::Keys(SigningCmd::Rotate {
            alg: a, overlap, ..
        }) => {
            let a = a.as_deref().map(alg).transpose()?;
            print_json(&tm.rotate_signing_key(a, *overlap, actor)?)
        }
        JwtCmd::Keys(SigningCmd::RotateDue { every, overlap }) => {
            // The new key, or null when the active one is not due yet.
            print_json(&tm.rotate_signing_key_if_due(*every, *overlap, actor)?)
        }
        JwtCmd::Keys(SigningCmd::Retire { kid }) => print_json(&tm.retire_signing_key(kid, actor)?),
        JwtCmd::Keys(SigningCmd::List) => print_json(&tm.list_signing_keys()?),
        JwtCmd::Keys(SigningCmd::Jwks) => print_json(&tm.jwks()?),
        JwtCmd::Issue { claims, sub, ttl } => {
            let mut c = match serde_json::from_str::<Value>(claims) {
                Ok(Value::Object(m)) => m,
                _ => return Err(Error::invalid("--claims must be a JSON object")),
            };
            if let Some(s) = sub {
                c.insert("sub".into(), json!(s));
            }
            say!("{}", tm.issue_jwt(&c, *ttl)?);
        }
        JwtCmd::Verify { .. } | JwtCmd::Sign { .. } => {
            return Err(Error::invalid("not a database command"));
        }
    }
    Ok(Outcome::Ok)
}

fn run(cli: &Cli) -> Result<Outcome, Error> {
    if let Command::Jwt(cmd @ (JwtCmd::Verify { .. } | JwtCmd::Sign { .. })) = &cli.command {
        return run_jwt(cmd, cli.json);
    }
    let rsa_bits = match &cli.command {
        Command::Jwt(JwtCmd::Keys(
            SigningCmd::Generate { rsa_bits, .. } | SigningCmd::Rotate { rsa_bits, .. },
        )) => *rsa_bits,
        _ => 2048,
    };
    if let Command::Doctor = &cli.command {
        return doctor(&cli.db, cli.json);
    }
    let mut options = irontoken::Options::default()
        .rsa_key_bits(rsa_bits)?
        .create(cli.command.creates());
    if let Some(store) = &cli.rate_limit_store {
        options.rate_limit_store = irontoken::RateLimitStore::parse(store)?;
    }
    if let Some(ms) = cli.storage_timeout {
        options.storage_timeout = std::time::Duration::from_millis(ms);
    }
    if let Command::Keys(
        KeysCmd::Due {
            default_period: Some(p),
            ..
        }
        | KeysCmd::RotateDue {
            default_period: Some(p),
            ..
        },
    ) = &cli.command
    {
        options = options.default_rotation_period(*p)?;
    }
    let tm = TokenManager::open_with(&cli.db, options)?;
    if let Command::Ratelimit(RatelimitCmd::Check { key, limits, peek }) = &cli.command {
        let d = tm.rate_limit_decide(key, limits, !peek)?;
        if cli.json {
            say!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
        } else {
            say!(
                "{}",
                if d.allowed {
                    "ALLOWED".to_string()
                } else {
                    format!("RATE_LIMITED retry_after_ms={}", d.retry_after_ms)
                }
            );
            for l in &d.limits {
                say!(
                    "{}\tremaining={}\treset_ms={}",
                    l.name,
                    l.remaining,
                    l.reset_ms
                );
            }
        }
        return Ok(if d.allowed {
            Outcome::Ok
        } else {
            Outcome::Refused
        });
    }
    if let Command::Jwt(cmd) = &cli.command {
        return run_managed(&tm, cmd, cli.actor.as_deref());
    }
    let actor = cli.actor.clone();
    let out = Printer { json: cli.json };
    let a = actor.as_deref();
    match &cli.command {
        Command::Usage(cmd) => usage::run_usage(&tm, cmd, cli.json)?,
        Command::Quota(cmd) => usage::run_quota(&tm, cmd, cli.json, a)?,
        Command::Sessions(cmd) => usage::run_sessions(&tm, cmd, cli.json)?,
        Command::Budgets(cmd) => usage::run_budgets(&tm, cmd, a)?,
        Command::Agents(cmd) => usage::run_agents(&tm, cmd, cli.json, a)?,
        Command::Keys(cmd) => match cmd {
            KeysCmd::Create(a) => {
                let created = tm.create_key_then(
                    &NewKey {
                        owner: a.owner.clone(),
                        name: a.name.clone(),
                        description: a.description.clone(),
                        scopes: a.scopes.clone(),
                        metadata: parse_metadata(&a.metadata)?,
                        expires_at: a.expires_at,
                        expires_in: a.expires_in,
                        prefix: a.prefix.clone(),
                        rate_limits: a.rate_limits.clone(),
                        rotation_period: a.rotation_period,
                        actor,
                    },
                    deliver_key(out.json),
                )?;
                out.created(&created);
            }
            KeysCmd::List(a) => {
                let status = a.status.as_deref().map(KeyStatus::parse).transpose()?;
                let page = tm.list_keys(&KeyFilter {
                    owner: a.owner.clone(),
                    status,
                    limit: a.limit,
                    cursor: a.cursor.clone(),
                })?;
                out.keys(&page);
            }
            KeysCmd::Show { id } => out.record(&tm.get_key(id)?),
            KeysCmd::Verify {
                key,
                scopes,
                rate_limit,
            } => {
                let key = read_secret_arg(key, "IRONTOKEN_KEY", "key")?;
                let v = tm.verify_key_with(
                    &key,
                    &irontoken::VerifyOptions {
                        required_scopes: scopes.clone(),
                        rate_limit: *rate_limit,
                        quota: None,
                    },
                )?;
                if out.json {
                    say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    say!("{}", v.reason.code());
                    if let Some(r) = &v.record {
                        print_fields(r);
                    }
                }
                return Ok(if v.valid {
                    Outcome::Ok
                } else {
                    Outcome::Refused
                });
            }
            KeysCmd::Update(a) => {
                let scopes = if a.clear_scopes {
                    Some(Vec::new())
                } else if a.scopes.is_empty() {
                    None
                } else {
                    Some(a.scopes.clone())
                };
                let expires_at = if a.no_expiry {
                    Some(None)
                } else if let Some(d) = a.expires_in {
                    Some(Some(tm.now().saturating_add(d)))
                } else {
                    a.expires_at.map(Some)
                };
                let r = tm.update_key(
                    &a.id,
                    &KeyUpdate {
                        name: a.name.clone(),
                        description: a.description.clone(),
                        scopes,
                        metadata: parse_metadata(&a.metadata)?,
                        expires_at,
                        rate_limits: if a.clear_rate_limits {
                            Some(Vec::new())
                        } else if a.rate_limits.is_empty() {
                            None
                        } else {
                            Some(a.rate_limits.clone())
                        },
                        rotation_period: KeyUpdate::change_of(
                            a.rotation_period,
                            a.clear_rotation_period,
                            "rotation period",
                        )?,
                        actor,
                    },
                )?;
                out.record(&r);
            }
            KeysCmd::Disable { id } => out.record(&tm.disable_key(id, actor.as_deref())?),
            KeysCmd::Enable { id } => out.record(&tm.enable_key(id, actor.as_deref())?),
            KeysCmd::Revoke { id, reason } => {
                out.record(&tm.revoke_key(id, reason.as_deref(), actor.as_deref())?)
            }
            KeysCmd::Rotate { id, overlap } => {
                let created = tm.rotate_key_then(
                    id,
                    &RotateOptions {
                        overlap_seconds: *overlap,
                        expires_at: None,
                        actor,
                    },
                    deliver_key(out.json),
                )?;
                out.created(&created);
            }
            KeysCmd::Exchange { key, scopes, ttl } => {
                let key = read_secret_arg(key, "IRONTOKEN_KEY", "key")?;
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                let at = tm.exchange_api_key(&key, &scopes, *ttl)?;
                if out.json {
                    print_json(&at);
                } else {
                    say!("{}", at.token);
                }
            }
            KeysCmd::Import { file, format } => {
                let reqs = read_imports(file, format.as_deref(), actor.as_deref())?;
                let records = tm.import_keys(&reqs)?;
                if out.json {
                    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
                    say!("{}", json!({"imported": records.len(), "ids": ids}));
                } else {
                    let n = records.len();
                    say!("imported {n} key{}", if n == 1 { "" } else { "s" });
                }
            }
            KeysCmd::Due { limit, .. } => out.keys(&Page {
                items: tm.keys_due(*limit)?,
                next_cursor: None,
            }),
            KeysCmd::RotateDue { overlap, .. } => {
                let created = tm.rotate_due(*overlap, actor.as_deref())?;
                if out.json {
                    let items: Vec<Value> = created
                        .iter()
                        .map(|c| json!({"key": &*c.key, "record": &c.record}))
                        .collect();
                    say!("{}", Value::Array(items));
                } else {
                    eprintln!(
                        "rotated {} key(s); the new keys are shown once: hand them to their owners",
                        created.len()
                    );
                    for c in &created {
                        say!("{}\t{}\t{}", shown(&c.record.owner), c.record.id, &*c.key);
                    }
                }
            }
            KeysCmd::Delete { id } => {
                tm.delete_key(id, actor.as_deref())?;
                if out.json {
                    say!("{}", json!({"deleted": id}));
                } else {
                    say!("deleted {id}");
                }
            }
            KeysCmd::LiftTombstone { key_hash } => {
                let lifted = tm.lift_tombstone(None, Some(key_hash), actor.as_deref())?;
                if out.json {
                    say!("{}", json!({"lifted": lifted}));
                } else if lifted {
                    say!("lifted: the key may be imported again");
                } else {
                    say!("no tombstone for this key hash");
                }
                if !lifted {
                    return Ok(Outcome::Refused);
                }
            }
        },
        Command::Jwt(_) | Command::Doctor | Command::Ratelimit(_) => {
            return Err(Error::invalid("handled above"));
        }
        Command::Audit(AuditCmd::List {
            key_id,
            action,
            outcome,
            by,
            since,
            until,
            limit,
            cursor,
        }) => {
            let page = tm.list_audit(&AuditFilter {
                key_id: key_id.clone(),
                action: action.clone(),
                actor: by.clone(),
                outcome: outcome.clone(),
                since: *since,
                until: *until,
                limit: *limit,
                cursor: cursor.clone(),
            })?;
            out.audit(&page);
        }
    }
    Ok(Outcome::Ok)
}

fn time(t: Option<i64>) -> String {
    match t {
        None => "-".into(),
        // Outside what RFC 3339 shows (a database written before expiries
        // were bounded to the year 9999): the number, not a panic.
        Some(t) if !(0..=irontoken::MAX_TIME).contains(&t) => t.to_string(),
        Some(t) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64))
            .to_string(),
    }
}

fn print_fields(r: &KeyRecord) {
    let rows = [
        ("id", r.id.clone()),
        ("prefix", format!("{}…", r.display_prefix)),
        ("owner", r.owner.clone()),
        ("name", r.name.clone()),
        ("description", r.description.clone()),
        ("status", r.status.as_str().to_string()),
        ("scopes", r.scopes.join(" ")),
        ("metadata", Value::Object(r.metadata.clone()).to_string()),
        ("created", time(Some(r.created_at))),
        ("expires", time(r.expires_at)),
        ("last used", time(r.last_used_at)),
        ("uses", r.usage_count.to_string()),
        ("version", r.version.to_string()),
        ("rotated from", r.rotated_from.clone().unwrap_or("-".into())),
        ("rotated to", r.rotated_to.clone().unwrap_or("-".into())),
        ("revoked", time(r.revoked_at)),
    ];
    for (k, v) in rows {
        say!("  {k:<13} {}", shown(&v));
    }
}

/// Prints a table with a header row, columns padded to their widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| shown(c)).collect())
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        say!("{}", s.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

struct Printer {
    json: bool,
}

impl Printer {
    /// After [`deliver_key`] wrote the key (and committed): the record.
    fn created(&self, c: &CreatedKey) {
        if !self.json {
            eprintln!("(this key is shown once: store it now)");
            print_fields(&c.record);
        }
    }

    fn record(&self, r: &KeyRecord) {
        if self.json {
            say!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        } else {
            print_fields(r);
        }
    }

    /// Prints a page as JSON, or as a table with a cursor hint on stderr.
    fn page<T: serde::Serialize>(
        &self,
        page: &Page<T>,
        header: &[&str],
        row: impl Fn(&T) -> Vec<String>,
    ) {
        if self.json {
            say!("{}", serde_json::to_string_pretty(page).unwrap_or_default());
            return;
        }
        table(header, page.items.iter().map(row).collect());
        if let Some(c) = &page.next_cursor {
            eprintln!("more: --cursor {c}");
        }
    }

    fn keys(&self, page: &Page<KeyRecord>) {
        let header = [
            "ID", "PREFIX", "OWNER", "NAME", "STATUS", "SCOPES", "EXPIRES", "USES",
        ];
        self.page(page, &header, |r| {
            vec![
                r.id.clone(),
                format!("{}…", r.display_prefix),
                r.owner.clone(),
                r.name.clone(),
                r.status.as_str().into(),
                r.scopes.join(","),
                time(r.expires_at),
                r.usage_count.to_string(),
            ]
        });
    }

    fn audit(&self, page: &Page<AuditEvent>) {
        let header = [
            "ID", "TIME", "ACTION", "OUTCOME", "COUNT", "KEY", "PREFIX", "ACTOR",
        ];
        self.page(page, &header, |e| {
            let count = e
                .detail
                .as_ref()
                .and_then(|d| d.get("count"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            vec![
                e.id.to_string(),
                time(Some(e.at)),
                e.action.clone(),
                e.outcome.clone(),
                count.to_string(),
                e.key_id.clone().unwrap_or("-".into()),
                e.display_prefix.clone().unwrap_or("-".into()),
                e.actor.clone().unwrap_or("-".into()),
            ]
        });
    }
}

/// The import requests in `file` (CSV or JSON lines), hashes only.
fn read_imports(
    file: &std::path::Path,
    format: Option<&str>,
    actor: Option<&str>,
) -> Result<Vec<ImportKey>, Error> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::invalid(format!("cannot read stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Error::invalid(format!("cannot read {}: {e}", file.display())))?
    };
    let csv = match format {
        Some("csv") => true,
        Some("jsonl") => false,
        Some(f) => return Err(Error::invalid(format!("--format: csv or jsonl, not {f:?}"))),
        None => file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    let mut reqs = if csv {
        imports_from_csv(&text)?
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let req: ImportKey = serde_json::from_str(line).map_err(|e| {
                // serde quotes values; name the line and the column only.
                Error::invalid(format!(
                    "line {}: not an import object (column {}: {})",
                    i + 1,
                    e.column(),
                    match e.classify() {
                        serde_json::error::Category::Data =>
                            "a field is missing or of the wrong type",
                        _ => "not valid JSON",
                    }
                ))
            })?;
            out.push(req);
        }
        out
    };
    for (i, r) in reqs.iter_mut().enumerate() {
        if r.key.is_some() {
            return Err(Error::invalid(format!(
                "entry {}: plaintext keys are not imported from files (give key_hash, the SHA-256)",
                i + 1
            )));
        }
        if r.actor.is_none() {
            r.actor = actor.map(str::to_string);
        }
    }
    Ok(reqs)
}

fn imports_from_csv(text: &str) -> Result<Vec<ImportKey>, Error> {
    let bad = |row: usize, what: String| Error::invalid(format!("row {row}: {what}"));
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rd
        .headers()
        .map_err(|e| Error::invalid(format!("CSV header: {e}")))?
        .clone();
    for h in &headers {
        if !matches!(
            h,
            "key_hash"
                | "owner"
                | "name"
                | "description"
                | "scopes"
                | "expires_at"
                | "display_prefix"
                | "metadata"
                | "legacy_id"
        ) {
            return Err(Error::invalid(format!(
                "CSV column {h:?} is not one of key_hash, owner, name, description, scopes, \
                 expires_at, display_prefix, metadata, legacy_id"
            )));
        }
    }
    let mut out = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let row = i + 2;
        let rec = rec.map_err(|e| bad(row, format!("{e}")))?;
        let get = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|p| rec.get(p))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        out.push(ImportKey {
            key_hash: get("key_hash"),
            owner: get("owner").unwrap_or_default(),
            name: get("name").unwrap_or_default(),
            description: get("description").unwrap_or_default(),
            scopes: get("scopes")
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            expires_at: get("expires_at")
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| bad(row, "expires_at: Unix seconds".into()))
                })
                .transpose()?,
            display_prefix: get("display_prefix"),
            legacy_id: get("legacy_id"),
            metadata: get("metadata")
                .map(|m| match serde_json::from_str::<serde_json::Value>(&m) {
                    Ok(serde_json::Value::Object(o)) => Ok(o),
                    _ => Err(bad(row, "metadata: a JSON object".into())),
                })
                .transpose()?,
            ..Default::default()
        });
    }
    Ok(out)
}
