//! `irontoken usage|quota|sessions|budgets|agents`: the operator's side of
//! sessions, usage records, quotas and agent budgets.

use crate::args::{duration, instant};
use crate::output::{Printer, table, time};
use clap::{Args, Subcommand, ValueEnum};
use irontoken::{
    AgentTokenRequest, Budget, Error, NewBudget, Quota, QuotaMetric, QuotaPeriod, QuotaScope,
    QuotaSpec, Session, SessionFilter, TokenManager, UsageQuery, UsageRecord,
};
use std::io::Write;

/// Usage records: totals and raw export.
#[derive(Subcommand)]
pub enum UsageCmd {
    /// Totals over a time range, grouped by key, owner, model, session, agent and/or day.
    Report {
        #[command(flatten)]
        filter: UsageFilter,
        /// Group by (comma-separated): key, owner, model, session, agent, day, hour.
        #[arg(long, value_delimiter = ',')]
        group_by: Vec<String>,
        /// A time bucket first (UTC): hour or day, e.g. `--by hour --group-by model`.
        #[arg(long, value_parser = ["hour", "day"])]
        by: Option<String>,
    },
    /// Every matching record, oldest first, as CSV or JSON lines.
    Export {
        #[command(flatten)]
        filter: UsageFilter,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// Export formats.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Which usage records.
#[derive(Args)]
pub struct UsageFilter {
    /// From this time (Unix seconds or RFC 3339), inclusive.
    #[arg(long, value_parser = instant)]
    since: Option<i64>,
    /// Until this time (Unix seconds or RFC 3339), exclusive.
    #[arg(long, value_parser = instant)]
    until: Option<i64>,
    /// Only this key.
    #[arg(long)]
    key_id: Option<String>,
    /// Only this owner.
    #[arg(long)]
    owner: Option<String>,
    /// Only this model.
    #[arg(long)]
    model: Option<String>,
    /// Only this session.
    #[arg(long)]
    session_id: Option<String>,
    /// Only this agent.
    #[arg(long)]
    agent_id: Option<String>,
}

impl UsageFilter {
    fn query(&self) -> UsageQuery {
        UsageQuery {
            since: self.since,
            until: self.until,
            key_id: self.key_id.clone(),
            owner: self.owner.clone(),
            model: self.model.clone(),
            session_id: self.session_id.clone(),
            agent_id: self.agent_id.clone(),
            ..Default::default()
        }
    }
}

/// Whom a quota applies to.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Subject {
    /// A key id.
    #[arg(long)]
    key: Option<String>,
    /// An owner (all their keys together).
    #[arg(long)]
    owner: Option<String>,
}

impl Subject {
    fn get(&self) -> (QuotaScope, &str) {
        match (&self.key, &self.owner) {
            (Some(k), _) => (QuotaScope::Key, k),
            (None, Some(o)) => (QuotaScope::Owner, o),
            (None, None) => (QuotaScope::Key, ""),
        }
    }
}

/// A quota name (metric, period) parsed by core.
fn name<T: std::str::FromStr<Err = Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: Error| e.message().to_string())
}

/// Quotas of keys and owners.
#[derive(Subcommand)]
pub enum QuotaCmd {
    /// Create or change a quota (the current window's use is kept).
    Set {
        #[command(flatten)]
        subject: Subject,
        /// What is counted: requests, tokens or cost (micro-units).
        #[arg(long, value_parser = name::<QuotaMetric>)]
        metric: QuotaMetric,
        /// The window: day, month (UTC) or none (a credit balance).
        #[arg(long, value_parser = name::<QuotaPeriod>)]
        period: QuotaPeriod,
        /// Limit per window (cost in micro-units; a balance: credits granted).
        #[arg(long)]
        limit: u64,
        /// Balances: raise the remaining balance to this amount...
        #[arg(long, requires = "refill_period")]
        refill_amount: Option<u64>,
        /// ...every day or month.
        #[arg(long, value_parser = name::<QuotaPeriod>, requires = "refill_amount")]
        refill_period: Option<QuotaPeriod>,
    },
    /// List the quotas of a key or owner with their state.
    List {
        #[command(flatten)]
        subject: Subject,
    },
    /// Remove a quota.
    Delete {
        #[command(flatten)]
        subject: Subject,
        /// What is counted: requests, tokens or cost (micro-units).
        #[arg(long, value_parser = name::<QuotaMetric>)]
        metric: QuotaMetric,
        /// The window: day, month (UTC) or none (a credit balance).
        #[arg(long, value_parser = name::<QuotaPeriod>)]
        period: QuotaPeriod,
    },
    /// Add credits to a balance (a quota with period none).
    Credit {
        #[command(flatten)]
        subject: Subject,
        /// What is counted: requests, tokens or cost (micro-units).
        #[arg(long, value_parser = name::<QuotaMetric>)]
        metric: QuotaMetric,
        /// Amount to add.
        #[arg(long)]
        amount: u64,
    },
}

/// Sessions.
#[derive(Subcommand)]
pub enum SessionsCmd {
    /// List sessions, oldest first.
    List {
        /// Only this owner's.
        #[arg(long)]
        owner: Option<String>,
        /// Only of this type.
        #[arg(long = "type")]
        session_type: Option<String>,
        /// Only in this status: active, paused, ended, expired.
        #[arg(long)]
        status: Option<String>,
        /// Only of this key.
        #[arg(long)]
        key_id: Option<String>,
        /// Page size (1-1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor from the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one session.
    Show {
        /// Session id.
        id: String,
    },
    /// End a live session.
    End {
        /// Session id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replace a live session by a new id (on a privilege change): the old
    /// id is refused from now on. Prints the new session.
    Rotate {
        /// Session id.
        id: String,
        /// The fingerprint a bound session was created with.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// End every live session of an owner ("sign out everywhere").
    EndAll {
        /// The owner.
        #[arg(long)]
        owner: String,
        /// Keep this session.
        #[arg(long)]
        except: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Mark expired sessions; optionally delete those ended long ago.
    Cleanup {
        /// Also delete sessions that ended at least this long ago: 30d, 12h, seconds.
        #[arg(long, value_parser = duration)]
        purge_older_than: Option<i64>,
    },
}

/// Budgets agents lease from.
#[derive(Subcommand)]
pub enum BudgetsCmd {
    /// Create a budget.
    Create {
        /// Owner.
        #[arg(long)]
        owner: String,
        /// Total in micro-units (1.00 = 1000000).
        #[arg(long)]
        limit_micros: u64,
        /// Name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Show a budget: spent, leased, available.
    Show {
        /// Budget id.
        id: String,
    },
}

/// Agent tokens (need IRONTOKEN_MASTER_KEY and an active signing key).
#[derive(Subcommand)]
pub enum AgentsCmd {
    /// Issue the agent's token (revokes its previous one); printed once.
    Issue {
        /// Agent id.
        #[arg(long)]
        agent: String,
        /// Budget id.
        #[arg(long)]
        budget: String,
        /// Permission carried in the token (repeatable).
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Issuer (default irontoken).
        #[arg(long)]
        issuer: Option<String>,
        /// Lifetime: 1h, 1d, seconds (default: no expiry).
        #[arg(long, value_parser = duration)]
        ttl: Option<i64>,
    },
    /// Revoke the agent's live token and its leases.
    Revoke {
        /// Agent id.
        #[arg(long)]
        agent: String,
    },
}

/// Micro-units as a decimal with six places.
pub fn money(micros: u128) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Runs a `usage` command.
pub fn run_usage(tm: &TokenManager, cmd: &UsageCmd, out: Printer) -> Result<(), Error> {
    match cmd {
        UsageCmd::Report {
            filter,
            group_by,
            by,
        } => {
            let group_by: Vec<String> = by.iter().chain(group_by).cloned().collect();
            let group_by = &group_by;
            let rows = tm.usage_summary(&UsageQuery {
                group_by: group_by.clone(),
                ..filter.query()
            })?;
            if out.json {
                crate::output::print_json(&rows);
                return Ok(());
            }
            if out.quiet {
                return Ok(());
            }
            let mut header: Vec<&str> = Vec::new();
            for g in group_by {
                header.push(match g.as_str() {
                    "key" => "KEY",
                    "owner" => "OWNER",
                    "model" => "MODEL",
                    "session" => "SESSION",
                    "agent" => "AGENT",
                    "hour" => "HOUR",
                    _ => "DAY",
                });
            }
            header.extend([
                "RECORDS",
                "REQUESTS",
                "PROMPT",
                "COMPLETION",
                "CACHE_R",
                "CACHE_W",
                "COST",
            ]);
            let body = rows
                .iter()
                .map(|t| {
                    let mut r = Vec::new();
                    for g in group_by {
                        let v = match g.as_str() {
                            "key" => &t.key_id,
                            "owner" => &t.owner,
                            "model" => &t.model,
                            "session" => &t.session_id,
                            "agent" => &t.agent_id,
                            "hour" => &t.hour,
                            _ => &t.day,
                        };
                        r.push(v.clone().filter(|s| !s.is_empty()).unwrap_or("-".into()));
                    }
                    r.extend([
                        t.records.to_string(),
                        t.requests.to_string(),
                        t.prompt_tokens.to_string(),
                        t.completion_tokens.to_string(),
                        t.cache_read_tokens.to_string(),
                        t.cache_write_tokens.to_string(),
                        money(t.cost_micros),
                    ]);
                    r
                })
                .collect();
            table(&header, body);
        }
        UsageCmd::Export {
            filter,
            format,
            output,
        } => {
            let out: Box<dyn Write> =
                match output {
                    Some(p) => Box::new(std::fs::File::create(p).map_err(|e| {
                        Error::invalid(format!("cannot write {}: {e}", p.display()))
                    })?),
                    None => Box::new(std::io::stdout().lock()),
                };
            let n = export(tm, filter.query(), *format, out)?;
            eprintln!("{n} usage records");
        }
    }
    Ok(())
}

const CSV_HEADER: [&str; 16] = [
    "request_id",
    "at",
    "key_id",
    "owner",
    "session_id",
    "agent_id",
    "model",
    "model_version",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests",
    "cost_micros",
    "metadata",
    "time",
];

fn csv_row(r: &UsageRecord) -> [String; 16] {
    let o = |s: &Option<String>| s.clone().unwrap_or_default();
    [
        r.request_id.clone(),
        r.at.to_string(),
        o(&r.key_id),
        o(&r.owner),
        o(&r.session_id),
        o(&r.agent_id),
        r.model.clone(),
        r.model_version.clone(),
        r.prompt_tokens.to_string(),
        r.completion_tokens.to_string(),
        r.cache_read_tokens.to_string(),
        r.cache_write_tokens.to_string(),
        r.requests.to_string(),
        r.cost_micros.to_string(),
        serde_json::Value::Object(r.metadata.clone()).to_string(),
        time(Some(r.at)),
    ]
}

/// Writes every matching record, a page of 1000 at a time; returns how many.
fn export(
    tm: &TokenManager,
    mut q: UsageQuery,
    format: Format,
    mut out: Box<dyn Write>,
) -> Result<u64, Error> {
    let io = |e: std::io::Error| Error::invalid(format!("write failed: {e}"));
    let bad = |e: csv::Error| Error::invalid(format!("write failed: {e}"));
    let mut n = 0;
    q.limit = Some(1000);
    let mut csv = match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(CSV_HEADER).map_err(bad)?;
            Some(w)
        }
        Format::Jsonl => None,
    };
    loop {
        let page = tm.export_usage(&q)?;
        for r in &page.items {
            match csv.as_mut() {
                Some(w) => w.write_record(csv_row(r)).map_err(bad)?,
                None => {
                    out.write_all(serde_json::to_string(r)?.as_bytes())
                        .map_err(io)?;
                    out.write_all(b"\n").map_err(io)?;
                }
            }
            n += 1;
        }
        // Each page goes out as it is read: memory stays bounded by a page.
        if let Some(w) = csv.as_mut() {
            w.flush().map_err(io)?;
            out.write_all(w.get_ref()).map_err(io)?;
            *w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    out.flush().map_err(io)?;
    Ok(n)
}

fn quotas(list: &[Quota], out: Printer) {
    if out.json {
        crate::output::print_json(&list);
        return;
    }
    if out.quiet {
        return;
    }
    let header = [
        "SCOPE",
        "SUBJECT",
        "METRIC",
        "PERIOD",
        "LIMIT",
        "USED",
        "RESERVED",
        "REMAINING",
        "RESETS",
    ];
    let rows = list
        .iter()
        .map(|q| {
            vec![
                q.scope.as_str().into(),
                q.subject.clone(),
                q.metric.as_str().into(),
                q.period.as_str().into(),
                q.limit.to_string(),
                q.used.to_string(),
                q.reserved.to_string(),
                q.remaining.to_string(),
                time(q.reset_at),
            ]
        })
        .collect();
    table(&header, rows);
}

/// Runs a `quota` command.
pub fn run_quota(
    tm: &TokenManager,
    cmd: &QuotaCmd,
    out: Printer,
    actor: Option<&str>,
) -> Result<(), Error> {
    match cmd {
        QuotaCmd::Set {
            subject,
            metric: m,
            period: p,
            limit,
            refill_amount,
            refill_period,
        } => {
            let (scope, s) = subject.get();
            let q = tm.set_quota(&QuotaSpec {
                scope,
                subject: s.into(),
                metric: *m,
                period: *p,
                limit: *limit,
                refill_amount: *refill_amount,
                refill_period: *refill_period,
                actor: actor.map(str::to_string),
            })?;
            quotas(&[q], out);
        }
        QuotaCmd::List { subject } => {
            let (scope, s) = subject.get();
            quotas(&tm.list_quotas(scope, s)?, out);
        }
        QuotaCmd::Delete {
            subject,
            metric: m,
            period: p,
        } => {
            let (scope, s) = subject.get();
            tm.delete_quota(scope, s, *m, *p, actor)?;
            out.done(
                serde_json::json!({"deleted": true}),
                format_args!("deleted"),
            );
        }
        QuotaCmd::Credit {
            subject,
            metric: m,
            amount,
        } => {
            let (scope, s) = subject.get();
            quotas(&[tm.add_credits(scope, s, *m, *amount)?], out);
        }
    }
    Ok(())
}

fn sessions(list: &[Session]) {
    let header = ["ID", "OWNER", "TYPE", "STATUS", "KEY", "CREATED", "EXPIRES"];
    let rows = list
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.owner.clone(),
                s.session_type.clone(),
                s.status.as_str().into(),
                s.key_id.clone().unwrap_or("-".into()),
                time(Some(s.created_at)),
                time(s.ended_at.or(s.expires_next_at)),
            ]
        })
        .collect();
    table(&header, rows);
}

/// Runs a `sessions` command.
pub fn run_sessions(tm: &TokenManager, cmd: &SessionsCmd, out: Printer) -> Result<(), Error> {
    match cmd {
        SessionsCmd::List {
            owner,
            session_type,
            status,
            key_id,
            limit,
            cursor,
        } => {
            let page = tm.list_sessions(&SessionFilter {
                owner: owner.clone(),
                session_type: session_type.clone(),
                status: status.clone(),
                key_id: key_id.clone(),
                limit: *limit,
                cursor: cursor.clone(),
            })?;
            if out.json {
                crate::output::print_json(&page);
            } else if out.quiet {
                for s in &page.items {
                    say!("{}", s.id);
                }
            } else {
                sessions(&page.items);
                if let Some(c) = &page.next_cursor {
                    eprintln!("more: --cursor {c}");
                }
            }
        }
        SessionsCmd::Show { id } => {
            out.value(&tm.get_session(id)?, |s| sessions(std::slice::from_ref(s)));
        }
        SessionsCmd::End { id, reason } => {
            out.value(&tm.end_session(id, reason.as_deref())?, |s| {
                sessions(std::slice::from_ref(s))
            });
        }
        SessionsCmd::Rotate { id, fingerprint } => {
            out.value(&tm.rotate_session(id, fingerprint.as_deref())?, |s| {
                sessions(std::slice::from_ref(s))
            });
        }
        SessionsCmd::EndAll {
            owner,
            except,
            reason,
        } => {
            let n = tm.end_sessions(owner, reason.as_deref(), except.as_deref())?;
            out.done(
                serde_json::json!({"ended": n}),
                format_args!("ended {n} sessions"),
            );
        }
        SessionsCmd::Cleanup { purge_older_than } => {
            let marked = tm.cleanup_expired_sessions()?;
            let purged = purge_older_than.map(|s| tm.purge_sessions(s)).transpose()?;
            out.done(
                serde_json::json!({"expired": marked, "purged": purged}),
                format_args!("expired {marked}, purged {}", purged.unwrap_or(0)),
            );
        }
    }
    Ok(())
}

fn budget(b: &Budget) {
    table(
        &[
            "ID",
            "OWNER",
            "NAME",
            "LIMIT",
            "SPENT",
            "LEASED",
            "AVAILABLE",
            "CREATED",
        ],
        vec![vec![
            b.id.clone(),
            b.owner.clone(),
            b.name.clone(),
            money(b.limit_micros.into()),
            money(b.spent_micros.into()),
            money(b.leased_micros.into()),
            money(b.available_micros.into()),
            time(Some(b.created_at)),
        ]],
    );
}

/// Runs a `budgets` command.
pub fn run_budgets(
    tm: &TokenManager,
    cmd: &BudgetsCmd,
    out: Printer,
    actor: Option<&str>,
) -> Result<(), Error> {
    let b = match cmd {
        BudgetsCmd::Create {
            owner,
            limit_micros,
            name,
        } => tm.create_budget(&NewBudget {
            owner: owner.clone(),
            name: name.clone(),
            limit_micros: *limit_micros,
            actor: actor.map(str::to_string),
        })?,
        BudgetsCmd::Show { id } => tm.get_budget(id)?,
    };
    // Quiet: the new budget's id is what a script needs.
    let created = matches!(cmd, BudgetsCmd::Create { .. });
    out.value_or(&b, budget, |b| {
        if created {
            say!("{}", b.id)
        }
    });
    Ok(())
}

/// Runs an `agents` command.
pub fn run_agents(
    tm: &TokenManager,
    cmd: &AgentsCmd,
    out: Printer,
    actor: Option<&str>,
) -> Result<(), Error> {
    match cmd {
        AgentsCmd::Issue {
            agent,
            budget,
            permissions,
            issuer,
            ttl,
        } => {
            let t = tm.issue_agent_token(&AgentTokenRequest {
                agent_id: agent.clone(),
                budget_id: budget.clone(),
                permissions: permissions.clone(),
                issuer: issuer.clone(),
                ttl_seconds: *ttl,
                actor: actor.map(str::to_string),
            })?;
            out.essential(serde_json::to_value(&t).unwrap_or_default(), &t.token);
        }
        AgentsCmd::Revoke { agent } => {
            let jti = tm.revoke_agent_token(agent, actor)?;
            out.done(
                serde_json::json!({"revoked": jti}),
                format_args!("revoked {jti}"),
            );
        }
    }
    Ok(())
}
