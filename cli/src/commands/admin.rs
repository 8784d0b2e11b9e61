//! Operator commands around the keys: the audit trail, rate-limit checks,
//! `doctor`, `stats`, shell completions and man pages.

use super::usage::money;
use crate::Outcome;
use crate::args::{duration, instant, limit};
use crate::output::{Printer, shown, table, time};
use clap::Subcommand;
use irontoken::usage::stats::Stats;
use irontoken::{AuditFilter, DoctorReport, Error, TokenManager};

/// Rate-limit commands.
#[derive(Subcommand)]
pub enum RatelimitCmd {
    /// Count one request of KEY against the limits, all-or-nothing.
    Check {
        /// Whose request (an API key id, a client id, an IP...).
        key: String,
        /// A limit NAME=COUNT[tokens]/PERIOD[:BURST] (repeatable, at least one).
        #[arg(long = "limit", value_parser = limit, required = true)]
        limits: Vec<irontoken::ratelimit::Limit>,
        /// Answer without counting the request.
        #[arg(long)]
        peek: bool,
        /// The request's tokens, counted against the limits in tokens.
        #[arg(long, default_value_t = 1)]
        cost: u64,
    },
}

/// Audit commands.
#[derive(Subcommand)]
pub enum AuditCmd {
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
        /// Only events at or after this instant (RFC 3339 or Unix seconds).
        #[arg(long, value_parser = instant)]
        since: Option<i64>,
        /// Only events before this instant (RFC 3339 or Unix seconds).
        #[arg(long, value_parser = instant)]
        until: Option<i64>,
        /// Page size (1-1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor from the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
}

/// `irontoken stats` options.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// The usage window: 1d, 1h, 7d, seconds.
    #[arg(long, value_parser = duration, default_value = "1d")]
    window: i64,
    /// How many owners, keys and quotas to list (1-100).
    #[arg(long, default_value_t = 10)]
    top: u32,
}

/// `irontoken ratelimit check`.
pub fn ratelimit(tm: &TokenManager, cmd: &RatelimitCmd, out: Printer) -> Result<Outcome, Error> {
    let RatelimitCmd::Check {
        key,
        limits,
        peek,
        cost,
    } = cmd;
    let d = tm.rate_limit_decide_cost(key, limits, !peek, *cost)?;
    // The verdict is the output: printed even with --quiet.
    if out.json {
        crate::output::print_json(&d);
    } else if d.allowed {
        say!("ALLOWED");
    } else {
        say!("RATE_LIMITED retry_after_ms={}", d.retry_after_ms);
    }
    if !out.json && !out.quiet {
        for l in &d.limits {
            say!(
                "{}\tremaining={}\treset_ms={}",
                l.name,
                l.remaining,
                l.reset_ms
            );
        }
    }
    Ok(if d.allowed {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

/// `irontoken audit list`.
pub fn audit(tm: &TokenManager, cmd: &AuditCmd, out: Printer) -> Result<Outcome, Error> {
    let AuditCmd::List {
        key_id,
        action,
        outcome,
        by,
        since,
        until,
        limit,
        cursor,
    } = cmd;
    out.audit(&tm.list_audit(&AuditFilter {
        key_id: key_id.clone(),
        action: action.clone(),
        actor: by.clone(),
        outcome: outcome.clone(),
        since: *since,
        until: *until,
        limit: *limit,
        cursor: cursor.clone(),
    })?);
    Ok(Outcome::Ok)
}

/// `irontoken doctor`: prints what [`TokenManager::doctor_with`] found
/// (exit 1 when anything needs attention).
pub fn doctor(db: &str, options: &irontoken::Options, out: Printer) -> Result<Outcome, Error> {
    let r = TokenManager::doctor_with(db, options)?;
    out.value_or(&r, print_doctor, |r| {
        say!("{}", if r.ok { "ok" } else { "NEEDS ATTENTION" })
    });
    Ok(if r.ok { Outcome::Ok } else { Outcome::Refused })
}

fn print_doctor(r: &DoctorReport) {
    if r.backend == "postgresql" {
        say!(
            "database        {} ({} bytes)",
            shown(&r.path),
            r.size_bytes
        );
        say!(
            "server          PostgreSQL {}",
            shown(r.server_version.as_deref().unwrap_or("?"))
        );
        say!(
            "connection      {} ({} ms to connect and answer)",
            if r.tls == Some(true) {
                "TLS"
            } else {
                "NOT ENCRYPTED (sslmode=require to insist on TLS)"
            },
            r.round_trip_ms.unwrap_or(0)
        );
    } else {
        say!(
            "file            {} ({} bytes)",
            shown(&r.path),
            r.size_bytes
        );
    }
    say!(
        "schema          v{} (this irontoken writes v{})",
        r.schema_version,
        r.supported_schema_version
    );
    if r.backend == "sqlite" {
        say!("journal mode    {}", r.journal_mode);
    }
    if r.integrity_problems.is_empty() {
        say!("integrity       ok");
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

/// `irontoken stats`.
pub fn stats(tm: &TokenManager, a: &StatsArgs, out: Printer) -> Result<Outcome, Error> {
    let s = tm.stats(a.window, a.top)?;
    out.value_or(&s, print_stats, |s| say!("{}", s.keys.active));
    Ok(Outcome::Ok)
}

fn print_stats(s: &Stats) {
    let k = &s.keys;
    say!(
        "keys            {} ({} active, {} disabled, {} revoked, {} expired)",
        k.total,
        k.active,
        k.disabled,
        k.revoked,
        k.expired
    );
    let u = &s.usage;
    say!(
        "usage since {}: {} requests, {} prompt + {} completion tokens, cost {}",
        time(Some(s.since)),
        u.requests,
        u.prompt_tokens,
        u.completion_tokens,
        money(u.cost_micros)
    );
    if !s.owners.is_empty() {
        say!("");
        table(
            &["OWNER", "KEYS", "ACTIVE", "DISABLED", "REVOKED", "EXPIRED"],
            s.owners
                .iter()
                .map(|o| {
                    let k = &o.keys;
                    vec![
                        o.owner.clone(),
                        k.total.to_string(),
                        k.active.to_string(),
                        k.disabled.to_string(),
                        k.revoked.to_string(),
                        k.expired.to_string(),
                    ]
                })
                .collect(),
        );
    }
    if !s.top_keys.is_empty() {
        say!("");
        table(
            &["TOP KEY", "REQUESTS", "TOKENS", "COST"],
            s.top_keys
                .iter()
                .map(|t| {
                    vec![
                        t.key_id.clone().unwrap_or_default(),
                        t.requests.to_string(),
                        (t.prompt_tokens + t.completion_tokens).to_string(),
                        money(t.cost_micros),
                    ]
                })
                .collect(),
        );
    }
    if !s.quotas.is_empty() {
        say!("");
        table(
            &[
                "QUOTA", "METRIC", "PERIOD", "USED", "LIMIT", "BURN", "RESETS",
            ],
            s.quotas
                .iter()
                .map(|q| {
                    let quota = &q.quota;
                    vec![
                        format!("{}:{}", quota.scope.as_str(), quota.subject),
                        quota.metric.as_str().to_string(),
                        quota.period.as_str().to_string(),
                        (quota.used + quota.reserved).to_string(),
                        quota.limit.to_string(),
                        format!("{:.0}%", q.burn * 100.0),
                        time(quota.reset_at),
                    ]
                })
                .collect(),
        );
    }
}

/// Shells `irontoken completions` writes a script for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    /// bash: `source <(irontoken completions bash)`.
    Bash,
    /// zsh: a `_irontoken` file on `$fpath`.
    Zsh,
    /// fish: `~/.config/fish/completions/irontoken.fish`.
    Fish,
    /// PowerShell.
    Powershell,
    /// Elvish.
    Elvish,
}

/// `irontoken completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> Result<Outcome, Error> {
    use clap::CommandFactory;
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), "irontoken", &mut buf);
    write_stdout(&buf)
}

/// `irontoken man-pages DIR`: one page per command (irontoken.1,
/// irontoken-keys.1, irontoken-keys-create.1, ...) written to DIR.
pub fn man_pages(dir: &std::path::Path) -> Result<Outcome, Error> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)
        .and_then(|_| clap_mangen::generate_to(crate::Cli::command(), dir))
        .map_err(|e| Error::invalid(format!("cannot write man pages to {}: {e}", dir.display())))?;
    Ok(Outcome::Ok)
}

fn write_stdout(bytes: &[u8]) -> Result<Outcome, Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| {
            Error::new(
                irontoken::ErrorKind::Internal,
                format!("cannot write to stdout: {e}"),
            )
        })?;
    Ok(Outcome::Ok)
}
