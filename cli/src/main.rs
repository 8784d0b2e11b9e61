//! `irontoken`: administer API keys and read the audit trail from a shell.
//!
//! Exit codes: 0 success (and a VALID key for `keys verify`); 1 a key that
//! `keys verify` refused (and the other checks' "no": `ratelimit check`,
//! `doctor`, `keys lift-tombstone`); 2 a usage error; 10 + the error's
//! stable number for every other failure (e.g. 12 = KEY_NOT_FOUND, 18 =
//! STORAGE).
//!
//! Every duration option takes one grammar (`3600`, `30s`, `15m`, `1h`,
//! `90d`), every instant RFC 3339 or Unix seconds; every command takes
//! `--json` and `--quiet`.

/// Prints a line on stdout; once stdout is closed (a reader such as
/// `head` went away), further output is dropped quietly instead of the
/// panic `println!` gives.
macro_rules! say {
    ($($t:tt)*) => { $crate::output::say_line(format_args!($($t)*)) };
}

mod args;
mod commands;
mod output;

use clap::{Parser, Subcommand};
use commands::{admin, cap, jwt, keys, usage};
use irontoken::{Error, TokenManager};
use output::Printer;
use std::process::ExitCode;

/// The command line.
#[derive(Parser)]
#[command(
    name = "irontoken",
    version,
    about = "Manage irontoken API keys and read the audit trail"
)]
pub struct Cli {
    /// SQLite database file (created if missing), sqlite:// URL, or a
    /// postgresql:// URL (many hosts).
    #[arg(long, env = irontoken::DB_ENV, global = true, default_value = "irontoken.db")]
    db: String,
    /// Where rate-limit state lives: store (the database, shared by every
    /// process; default), local, or a redis:// URL.
    #[arg(long, env = irontoken::RATE_LIMIT_STORE_ENV, global = true)]
    rate_limit_store: Option<String>,
    /// PostgreSQL: the most one call waits on the server in all, in
    /// milliseconds (connect, statements, commit; default 5000).
    #[arg(
        long = "storage-timeout",
        env = irontoken::STORAGE_TIMEOUT_ENV,
        global = true,
        value_name = "MS"
    )]
    storage_timeout: Option<u64>,
    /// Print JSON instead of tables (errors too, on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Print only what a script needs: new keys and tokens, verdicts, ids
    /// of listed items; no records, tables or hints.
    #[arg(long, short, global = true, conflicts_with = "json")]
    quiet: bool,
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
    Keys(keys::KeysCmd),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(admin::AuditCmd),
    /// Verify and sign JWTs (no database needed); managed signing keys.
    #[command(subcommand)]
    Jwt(jwt::JwtCmd),
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
    /// Capability tokens for agents and tools: mint, attenuate, inspect, authorize, revoke.
    #[command(subcommand)]
    Cap(cap::CapCmd),
    /// Check a request against rate limits in the rate-limit store (exit 1 when refused).
    #[command(subcommand)]
    Ratelimit(admin::RatelimitCmd),
    /// Keys by state and owner, use over the last day, the heaviest keys
    /// and the quotas closest to their limits.
    Stats(admin::StatsArgs),
    /// Check the database: a SQLite file's full integrity_check, schema
    /// version, journal mode and permissions, or a PostgreSQL server's
    /// schema, version, TLS and round trip (exit 1 if anything is wrong).
    Doctor,
    /// Print a shell completion script: `source <(irontoken completions bash)`.
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        #[arg(value_enum)]
        shell: admin::Shell,
    },
    /// Write the man pages (irontoken.1 and one per command) to DIR.
    #[command(hide = true)]
    ManPages {
        /// The directory (created if missing).
        dir: std::path::PathBuf,
    },
}

impl Command {
    /// True for the commands that may create the database file; every
    /// other command (reads, verifies, updates) refuses a missing or empty
    /// file with DATABASE_NOT_FOUND instead of creating an empty database.
    fn creates(&self) -> bool {
        matches!(
            self,
            Command::Keys(keys::KeysCmd::Create(_) | keys::KeysCmd::Import { .. })
                | Command::Jwt(jwt::JwtCmd::Keys(jwt::SigningCmd::Generate { .. }))
                | Command::Quota(usage::QuotaCmd::Set { .. })
                | Command::Budgets(usage::BudgetsCmd::Create { .. })
        )
    }
}

/// What a command ended with.
pub enum Outcome {
    /// Done (exit 0).
    Ok,
    /// A check said no (exit 1).
    Refused,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let created = NewFile::before(&cli);
    match run(&cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        Err(e) => {
            created.remove();
            if cli.json {
                let body = serde_json::json!({"error": {"code": e.code(), "message": e.message()}});
                eprintln!("{body}");
            } else {
                eprintln!("irontoken: {e}");
            }
            ExitCode::from(10 + e.kind().status() as u8)
        }
    }
}

/// A SQLite file a creating command would make: removed again (with its
/// -wal and -shm) when the command fails, so a failed `keys import` or
/// `keys create` leaves nothing behind.
struct NewFile(Option<std::path::PathBuf>);

impl NewFile {
    fn before(cli: &Cli) -> NewFile {
        let db = cli.db.as_str();
        let path = match db.strip_prefix("sqlite:///") {
            Some(rest) => Some(rest),
            None if db.contains("://") => None,
            None => Some(db),
        };
        NewFile(
            path.filter(|p| {
                cli.command.creates()
                    && !p.is_empty()
                    && *p != ":memory:"
                    && !std::path::Path::new(p).exists()
            })
            .map(Into::into),
        )
    }

    fn remove(self) {
        if let Some(p) = self.0 {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = p.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
        }
    }
}

/// The options every database command opens with.
fn options_of(cli: &Cli) -> Result<irontoken::Options, Error> {
    let rsa_bits = match &cli.command {
        Command::Jwt(cmd) => cmd.rsa_bits(),
        _ => 2048,
    };
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
        keys::KeysCmd::Due {
            default_period: Some(p),
            ..
        }
        | keys::KeysCmd::RotateDue {
            default_period: Some(p),
            ..
        },
    ) = &cli.command
    {
        options = options.default_rotation_period(*p)?;
    }
    Ok(options)
}

fn run(cli: &Cli) -> Result<Outcome, Error> {
    let out = Printer {
        json: cli.json,
        quiet: cli.quiet,
    };
    match &cli.command {
        Command::Completions { shell } => return admin::completions(*shell),
        Command::ManPages { dir } => return admin::man_pages(dir),
        Command::Jwt(cmd) if cmd.needs_no_database() => return jwt::run_offline(cmd, out),
        Command::Cap(cmd) if cmd.needs_no_database() => return cap::run_offline(cmd, out),
        Command::Doctor => return admin::doctor(&cli.db, &options_of(cli)?, out),
        _ => {}
    }
    let tm = TokenManager::open_with(&cli.db, options_of(cli)?)?;
    let actor = cli.actor.clone();
    let a = actor.as_deref();
    match &cli.command {
        Command::Keys(cmd) => return keys::run(&tm, cmd, out, actor),
        Command::Cap(cmd) => return cap::run(&tm, cmd, out, a),
        Command::Jwt(cmd) => return jwt::run_managed(&tm, cmd, out, a),
        Command::Ratelimit(cmd) => return admin::ratelimit(&tm, cmd, out),
        Command::Audit(cmd) => return admin::audit(&tm, cmd, out),
        Command::Stats(args) => return admin::stats(&tm, args, out),
        Command::Usage(cmd) => usage::run_usage(&tm, cmd, out)?,
        Command::Quota(cmd) => usage::run_quota(&tm, cmd, out, a)?,
        Command::Sessions(cmd) => usage::run_sessions(&tm, cmd, out)?,
        Command::Budgets(cmd) => usage::run_budgets(&tm, cmd, out, a)?,
        Command::Agents(cmd) => usage::run_agents(&tm, cmd, out, a)?,
        Command::Doctor | Command::Completions { .. } | Command::ManPages { .. } => {
            return Err(Error::invalid("handled above"));
        }
    }
    Ok(Outcome::Ok)
}
