//! `irontoken cap`: capability tokens (Biscuit) for agents and tools.
//! `attenuate` and `inspect` need no database; a TOKEN argument of `-`
//! is read from stdin (a long token stays out of the process list).

use crate::Outcome;
use crate::args::duration;
use crate::output::{Printer, print_json};
use clap::{Args, Subcommand};
use irontoken::capability;
use irontoken::{Attenuation, CapabilityRequest, Error, MintCapability, TokenManager};
use std::io::Read;

/// Capability commands.
#[derive(Subcommand)]
pub enum CapCmd {
    /// Mint a token for an active key (needs IRONTOKEN_MASTER_KEY); printed once.
    Mint {
        /// The key id the token acts for.
        #[arg(long = "key")]
        key_id: String,
        /// A tool it may call (repeatable, at least one).
        #[arg(long = "tool", required = true)]
        tools: Vec<String>,
        /// Lifetime: 1h, 1d, seconds.
        #[arg(long, value_parser = duration)]
        ttl: i64,
        /// Most ever charged through it (micro-units).
        #[arg(long = "ceiling")]
        ceiling_micros: Option<u64>,
        /// A resource it may touch (repeatable; none: any).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// A budget lease every charge is taken from.
        #[arg(long = "lease")]
        lease_id: Option<String>,
    },
    /// Narrow a token offline by one block (no database).
    Attenuate(AttenuateArgs),
    /// Print a token's blocks, revocation ids and stated limits, unverified (no database).
    Inspect {
        /// The token, or - for stdin.
        token: String,
    },
    /// Decide a tool call under a token, charging its cost when allowed (exit 1 when refused).
    Authorize {
        /// The token, or - for stdin.
        token: String,
        /// The tool about to be called.
        #[arg(long)]
        tool: String,
        /// The resource it acts on.
        #[arg(long)]
        resource: Option<String>,
        /// What the call costs (micro-units), charged when allowed.
        #[arg(long = "cost", default_value_t = 0)]
        cost_micros: u64,
        /// The session the call belongs to.
        #[arg(long = "session")]
        session_id: Option<String>,
    },
    /// Revoke a token's last block (and every token attenuated from it), or a block by id.
    Revoke {
        /// The token, or - for stdin.
        #[arg(required_unless_present = "id", conflicts_with = "id")]
        token: Option<String>,
        /// A revocation id (hex) instead of a token.
        #[arg(long)]
        id: Option<String>,
    },
    /// Print the active root's public key (ed25519/<hex>), or every live one with --all.
    PublicKey {
        /// Every root key that verifies now.
        #[arg(long)]
        all: bool,
    },
    /// Replace the active root; the previous one verifies for --overlap more.
    Rotate {
        /// How long tokens of the previous root still verify (default 1d; 0: at once).
        #[arg(long, value_parser = duration, default_value = "1d")]
        overlap: i64,
    },
}

/// The narrowing of `cap attenuate`.
#[derive(Args)]
pub struct AttenuateArgs {
    /// The token, or - for stdin.
    token: String,
    /// Only these tools (repeatable).
    #[arg(long = "tool")]
    tools: Vec<String>,
    /// At most this much charged from here on (micro-units).
    #[arg(long = "ceiling")]
    ceiling_micros: Option<u64>,
    /// Expires this long from now (or earlier).
    #[arg(long, value_parser = duration)]
    ttl: Option<i64>,
    /// Only these resources (repeatable).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// Only requests in this session.
    #[arg(long = "session")]
    session_id: Option<String>,
    /// Raw Datalog appended to the block.
    #[arg(long)]
    datalog: Option<String>,
    /// Seal the result: no block can be appended after this one.
    #[arg(long)]
    seal: bool,
}

impl CapCmd {
    /// True for the commands that run without a database.
    pub fn needs_no_database(&self) -> bool {
        matches!(self, CapCmd::Attenuate(_) | CapCmd::Inspect { .. })
    }
}

/// The token argument, or stdin's first line for `-`.
fn token_of(arg: &str) -> Result<String, Error> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .take(capability::MAX_TOKEN_BYTES as u64 + 2)
        .read_to_string(&mut s)
        .map_err(|e| Error::invalid(format!("reading the token from stdin: {e}")))?;
    Ok(s.trim().to_string())
}

fn some(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// Runs `cap attenuate` and `cap inspect`.
pub fn run_offline(cmd: &CapCmd, out: Printer) -> Result<Outcome, Error> {
    match cmd {
        CapCmd::Attenuate(a) => {
            let mut t = capability::attenuate(
                &token_of(&a.token)?,
                &Attenuation {
                    tools: some(&a.tools),
                    ceiling_micros: a.ceiling_micros,
                    ttl_seconds: a.ttl,
                    resources: some(&a.resources),
                    session_id: a.session_id.clone(),
                    datalog: a.datalog.clone(),
                },
            )?;
            if a.seal {
                t = capability::seal(&t)?;
            }
            out.essential(serde_json::json!({ "token": t }), &t);
        }
        CapCmd::Inspect { token } => {
            let info = capability::inspect(&token_of(token)?)?;
            out.value(&info, |i| {
                for (n, (src, id)) in i.blocks.iter().zip(&i.revocation_ids).enumerate() {
                    say!("block {n} (revocation id {id}):");
                    for line in src.lines() {
                        say!("    {line}");
                    }
                }
                say!("sealed: {}", i.sealed);
            });
        }
        _ => return Err(Error::invalid("this command needs the database")),
    }
    Ok(Outcome::Ok)
}

/// Runs the `cap` commands that need the store.
pub fn run(
    tm: &TokenManager,
    cmd: &CapCmd,
    out: Printer,
    actor: Option<&str>,
) -> Result<Outcome, Error> {
    match cmd {
        CapCmd::Mint {
            key_id,
            tools,
            ttl,
            ceiling_micros,
            resources,
            lease_id,
        } => {
            let t = tm.mint_capability(&MintCapability {
                key_id: key_id.clone(),
                tools: tools.clone(),
                ttl_seconds: *ttl,
                ceiling_micros: *ceiling_micros,
                resources: some(resources),
                lease_id: lease_id.clone(),
                actor: actor.map(str::to_string),
            })?;
            out.essential(serde_json::json!({ "token": t }), &t);
        }
        CapCmd::Authorize {
            token,
            tool,
            resource,
            cost_micros,
            session_id,
        } => {
            let a = tm.authorize(
                &token_of(token)?,
                &CapabilityRequest {
                    tool: tool.clone(),
                    resource: resource.clone(),
                    cost_micros: *cost_micros,
                    session_id: session_id.clone(),
                },
            )?;
            out.value_or(
                &a,
                |a| match &a.message {
                    Some(m) if !a.allowed => say!("{}: {m}", a.reason),
                    _ => say!("{}", a.reason),
                },
                |a| say!("{}", a.reason),
            );
            return Ok(if a.allowed {
                Outcome::Ok
            } else {
                Outcome::Refused
            });
        }
        CapCmd::Revoke { token, id } => {
            let id = match (token, id) {
                (Some(t), _) => tm.revoke_capability(&token_of(t)?, actor)?,
                (None, Some(id)) => {
                    tm.revoke_capability_id(id, actor)?;
                    id.clone()
                }
                (None, None) => return Err(Error::invalid("give a token or --id")),
            };
            out.done(
                serde_json::json!({ "revoked": id }),
                format_args!("revoked {id}"),
            );
        }
        CapCmd::PublicKey { all } => {
            if *all {
                let roots = tm.capability_public_keys()?;
                if out.json {
                    print_json(&roots);
                } else {
                    for r in roots {
                        say!("{}\t{}\t{}", r.root_key_id, r.status, r.public_key);
                    }
                }
            } else {
                let k = tm.capability_public_key()?;
                out.essential(serde_json::json!({ "public_key": k }), &k);
            }
        }
        CapCmd::Rotate { overlap } => {
            let r = tm.rotate_capability_key(*overlap, actor)?;
            out.essential(serde_json::to_value(&r).unwrap_or_default(), &r.public_key);
        }
        CapCmd::Attenuate(_) | CapCmd::Inspect { .. } => return run_offline(cmd, out),
    }
    Ok(Outcome::Ok)
}
