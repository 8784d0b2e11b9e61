//! `irontoken keys`: create, list, verify, change, rotate, import and
//! delete API keys.

use crate::Outcome;
use crate::args::{duration, instant, limit, metadata, secret};
use crate::output::{Printer, deliver_key, print_fields, shown};
use clap::{Args, Subcommand};
use irontoken::{
    Error, ImportKey, KeyFilter, KeyStatus, KeyUpdate, NewKey, Page, RotateOptions, TokenManager,
};
use serde_json::{Value, json};

/// Key commands.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create a key; the plaintext is printed once, now.
    Create(CreateArgs),
    /// An owner's model policy, applied to every key of the owner with the key's own.
    #[command(subcommand)]
    OwnerPolicy(OwnerPolicyCmd),
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
        /// Tokens the request declares (checked against the key's
        /// max-tokens-per-request, counted by its limits in tokens).
        #[arg(long)]
        tokens: Option<u64>,
        /// The model the request calls (checked against the key's models).
        #[arg(long)]
        model: Option<String>,
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
        /// How long the old key keeps verifying: 1h, 1d, seconds (0: revoked now).
        #[arg(long, value_parser = duration, default_value = "0")]
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
        #[arg(long, value_parser = duration)]
        default_period: Option<i64>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Rotate every key due for rotation and print the new keys — their
    /// plaintexts, shown once, go to the owners. Safe from cron on several
    /// hosts at once.
    RotateDue {
        /// How long the old keys keep verifying: 1h, 1d (default 0: revoked now).
        #[arg(long, value_parser = duration, default_value = "0")]
        overlap: i64,
        /// Period for keys without their own (90d...).
        #[arg(long, value_parser = duration)]
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
        /// Token lifetime: 15m, 1h, seconds (default 15m).
        #[arg(long, value_parser = duration)]
        ttl: Option<i64>,
    },
}

/// `keys owner-policy`.
#[derive(Subcommand)]
pub enum OwnerPolicyCmd {
    /// Set (replace) an owner's model policy; prints it as JSON.
    Set {
        /// The owner.
        owner: String,
        /// A model the owner's keys may call, wildcards allowed (repeatable; none: any).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Most tokens one request of the owner's keys may declare.
        #[arg(long)]
        max_tokens_per_request: Option<u64>,
    },
    /// Print an owner's model policy as JSON (null: none).
    Show {
        /// The owner.
        owner: String,
    },
    /// Remove an owner's model policy.
    Delete {
        /// The owner.
        owner: String,
    },
}

/// `keys create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Owner of the key (user, service, tenant).
    #[arg(long)]
    pub owner: String,
    /// Short name.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Scope granted (repeatable).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Metadata as a JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Lifetime: 90d, 12h, seconds.
    #[arg(long, value_parser = duration, conflicts_with = "expires_at")]
    pub expires_in: Option<i64>,
    /// Expiry: RFC 3339 (2027-01-01T00:00:00Z) or Unix seconds.
    #[arg(long, value_parser = instant)]
    pub expires_at: Option<i64>,
    /// Key prefix (default itk).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Rate limit NAME=COUNT[tokens]/PERIOD[:BURST] applied by verify_key_with,
    /// e.g. per_second=10/1s:20, per_day=10000/1d or tpm=100000tokens/1m
    /// (repeatable).
    #[arg(long = "rate-limit", value_parser = limit)]
    pub rate_limits: Vec<irontoken::ratelimit::Limit>,
    /// Rotation period (90d, 12w...): the key is due for `keys rotate-due`
    /// once that old; rotations keep it.
    #[arg(long, value_parser = duration)]
    pub rotation_period: Option<i64>,
    /// A model the key may call, wildcards allowed: gpt-4o* (repeatable;
    /// none: any model).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Most tokens one request may declare.
    #[arg(long)]
    pub max_tokens_per_request: Option<u64>,
}

/// `keys list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only this owner's keys.
    #[arg(long)]
    pub owner: Option<String>,
    /// Only keys in this state: active, disabled, revoked, expired.
    #[arg(long)]
    pub status: Option<String>,
    /// Only keys whose display prefix (itk_AbC1, as listings and logs show it) starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Page size (1-1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `keys update`.
#[derive(Args)]
pub struct UpdateArgs {
    /// Key id.
    pub id: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// New scope list (repeatable; replaces the list).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Remove every scope.
    #[arg(long, conflicts_with = "scopes")]
    pub clear_scopes: bool,
    /// New metadata JSON object (replaces it).
    #[arg(long)]
    pub metadata: Option<String>,
    /// New expiry: RFC 3339 or Unix seconds.
    #[arg(long, value_parser = instant, conflicts_with_all = ["expires_in", "no_expiry"])]
    pub expires_at: Option<i64>,
    /// New lifetime from now: 90d, 12h, seconds.
    #[arg(long, value_parser = duration, conflicts_with = "no_expiry")]
    pub expires_in: Option<i64>,
    /// Remove the expiry.
    #[arg(long)]
    pub no_expiry: bool,
    /// New rate limits NAME=COUNT/PERIOD[:BURST] (repeatable; replaces the list).
    #[arg(long = "rate-limit", value_parser = limit)]
    pub rate_limits: Vec<irontoken::ratelimit::Limit>,
    /// Remove every rate limit.
    #[arg(long, conflicts_with = "rate_limits")]
    pub clear_rate_limits: bool,
    /// New rotation period (90d, 12w...).
    #[arg(long, value_parser = duration)]
    pub rotation_period: Option<i64>,
    /// Remove the key's own rotation period (the manager default applies).
    #[arg(long, conflicts_with = "rotation_period")]
    pub clear_rotation_period: bool,
    /// New model allow-list, wildcards allowed (repeatable; replaces the list).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Remove the model allow-list (any model).
    #[arg(long, conflicts_with = "models")]
    pub clear_models: bool,
    /// New most tokens one request may declare.
    #[arg(long)]
    pub max_tokens_per_request: Option<u64>,
    /// Remove the per-request token limit.
    #[arg(long, conflicts_with = "max_tokens_per_request")]
    pub clear_max_tokens_per_request: bool,
}

/// Runs a `keys` command.
pub fn run(
    tm: &TokenManager,
    cmd: &KeysCmd,
    out: Printer,
    actor: Option<String>,
) -> Result<Outcome, Error> {
    match cmd {
        KeysCmd::Create(a) => {
            let created = tm.create_key_then(
                &NewKey {
                    owner: a.owner.clone(),
                    name: a.name.clone(),
                    description: a.description.clone(),
                    scopes: a.scopes.clone(),
                    metadata: metadata(&a.metadata)?,
                    expires_at: a.expires_at,
                    expires_in: a.expires_in,
                    prefix: a.prefix.clone(),
                    rate_limits: a.rate_limits.clone(),
                    rotation_period: a.rotation_period,
                    models: a.models.clone(),
                    max_tokens_per_request: a.max_tokens_per_request,
                    actor,
                },
                deliver_key(out.json),
            )?;
            out.created(&created);
        }
        KeysCmd::List(a) => {
            let status = a.status.as_deref().map(KeyStatus::parse).transpose()?;
            out.keys(&tm.list_keys(&KeyFilter {
                owner: a.owner.clone(),
                status,
                prefix: a.prefix.clone(),
                limit: a.limit,
                cursor: a.cursor.clone(),
            })?);
        }
        KeysCmd::Show { id } => out.record(&tm.get_key(id)?),
        KeysCmd::Verify {
            key,
            scopes,
            rate_limit,
            tokens,
            model,
        } => {
            let key = secret(key, "IRONTOKEN_KEY", "key")?;
            let v = tm.verify_key_with(
                &key,
                &irontoken::VerifyOptions {
                    required_scopes: scopes.clone(),
                    rate_limit: *rate_limit,
                    quota: None,
                    tokens: *tokens,
                    model: model.clone(),
                },
            )?;
            // The verdict is the output: printed even with --quiet.
            if out.json {
                crate::output::print_json(&v);
            } else {
                say!("{}", v.reason.code());
                if let Some(r) = v.record.as_ref().filter(|_| !out.quiet) {
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
            let rate_limits = if a.clear_rate_limits {
                Some(Vec::new())
            } else if a.rate_limits.is_empty() {
                None
            } else {
                Some(a.rate_limits.clone())
            };
            let r = tm.update_key(
                &a.id,
                &KeyUpdate {
                    name: a.name.clone(),
                    description: a.description.clone(),
                    scopes,
                    metadata: metadata(&a.metadata)?,
                    expires_at,
                    rate_limits,
                    rotation_period: KeyUpdate::change_of(
                        a.rotation_period,
                        a.clear_rotation_period,
                        "rotation period",
                    )?,
                    models: if a.clear_models {
                        Some(Vec::new())
                    } else {
                        Some(a.models.clone()).filter(|m| !m.is_empty())
                    },
                    max_tokens_per_request: KeyUpdate::cleared(
                        a.max_tokens_per_request,
                        a.clear_max_tokens_per_request,
                        "max tokens per request",
                    )?,
                    actor,
                },
            )?;
            out.record(&r);
        }
        KeysCmd::OwnerPolicy(cmd) => match cmd {
            OwnerPolicyCmd::Set {
                owner,
                models,
                max_tokens_per_request,
            } => crate::output::print_json(&tm.set_owner_policy(&irontoken::OwnerPolicySpec {
                owner: owner.clone(),
                models: models.clone(),
                max_tokens_per_request: *max_tokens_per_request,
                actor,
            })?),
            OwnerPolicyCmd::Show { owner } => {
                crate::output::print_json(&tm.get_owner_policy(owner)?)
            }
            OwnerPolicyCmd::Delete { owner } => {
                let had = tm.delete_owner_policy(owner, actor.as_deref())?;
                say!("{}", if had { "deleted" } else { "no policy" });
            }
        },
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
            let key = secret(key, "IRONTOKEN_KEY", "key")?;
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let at = tm.exchange_api_key(&key, &scopes, *ttl)?;
            out.essential(serde_json::to_value(&at).unwrap_or_default(), &at.token);
        }
        KeysCmd::Import { file, format } => {
            let (reqs, lines) = read_imports(file, format.as_deref(), actor.as_deref())?;
            let bar = crate::output::progress(2 * reqs.len() as u64, "importing");
            let label = |i: usize| format!("line {}", lines.get(i).copied().unwrap_or(0));
            let records =
                tm.import_keys_reporting(&reqs, &label, &mut |n| bar.set_position(n as u64));
            bar.finish_and_clear();
            let records = records?;
            let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
            let n = records.len();
            out.done(
                json!({"imported": n, "ids": ids}),
                format_args!("imported {n} key{}", if n == 1 { "" } else { "s" }),
            );
        }
        KeysCmd::Due { limit, .. } => out.keys(&Page {
            items: tm.keys_due(*limit)?,
            next_cursor: None,
        }),
        KeysCmd::RotateDue { overlap, .. } => {
            let created = tm.rotate_due(*overlap, actor.as_deref())?;
            // The new keys are the output: printed even with --quiet.
            if out.json {
                let items: Vec<Value> = created
                    .iter()
                    .map(|c| json!({"key": &*c.key, "record": &c.record}))
                    .collect();
                say!("{}", Value::Array(items));
            } else {
                out.hint(format_args!(
                    "rotated {} key(s); the new keys are shown once: hand them to their owners",
                    created.len()
                ));
                for c in &created {
                    say!("{}\t{}\t{}", shown(&c.record.owner), c.record.id, &*c.key);
                }
            }
        }
        KeysCmd::Delete { id } => {
            tm.delete_key(id, actor.as_deref())?;
            out.done(json!({"deleted": id}), format_args!("deleted {id}"));
        }
        KeysCmd::LiftTombstone { key_hash } => {
            let lifted = tm.lift_tombstone(None, Some(key_hash), actor.as_deref())?;
            out.done(
                json!({"lifted": lifted}),
                format_args!(
                    "{}",
                    if lifted {
                        "lifted: the key may be imported again"
                    } else {
                        "no tombstone for this key hash"
                    }
                ),
            );
            if !lifted {
                return Ok(Outcome::Refused);
            }
        }
    }
    Ok(Outcome::Ok)
}

/// The import requests in `file` (CSV or JSON lines), hashes only, with
/// the line each starts on (errors name it).
fn read_imports(
    file: &std::path::Path,
    format: Option<&str>,
    actor: Option<&str>,
) -> Result<(Vec<ImportKey>, Vec<usize>), Error> {
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
    let (mut reqs, lines) = if csv {
        imports_from_csv(&text)?
    } else {
        let mut out = Vec::new();
        let mut lines = Vec::new();
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
            lines.push(i + 1);
        }
        (out, lines)
    };
    for (r, line) in reqs.iter_mut().zip(&lines) {
        if r.key.is_some() {
            return Err(Error::invalid(format!(
                "line {line}: plaintext keys are not imported from files (give key_hash, the SHA-256)"
            )));
        }
        if r.actor.is_none() {
            r.actor = actor.map(str::to_string);
        }
    }
    Ok((reqs, lines))
}

/// The requests of a CSV file and the line each record starts on.
fn imports_from_csv(text: &str) -> Result<(Vec<ImportKey>, Vec<usize>), Error> {
    let bad = |line: usize, what: String| Error::invalid(format!("line {line}: {what}"));
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
    let mut lines = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| match e.position() {
            Some(p) => bad(p.line() as usize, format!("{e}")),
            None => Error::invalid(format!("CSV: {e}")),
        })?;
        let row = rec.position().map_or(0, |p| p.line() as usize);
        lines.push(row);
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
                .map(|v| instant(&v).map_err(|e| bad(row, format!("expires_at: {e}"))))
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
    Ok((out, lines))
}
