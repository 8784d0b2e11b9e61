//! What the blocks of a chain state about its limits, read back from their
//! facts: the authority block's key, owner and lease; every block's tools,
//! resources, expiry and ceiling. These only describe and tighten: the
//! checks beside them are what any verifier enforces, and a fact here can
//! only make the effective limits narrower.

use super::Authorization;
use biscuit_auth::builder::{Fact, Term};
use std::collections::BTreeSet;

/// The facts the chain's limits are read from.
const NAMES: [&str; 8] = [
    "allowed_tools",
    "allowed_resources",
    "expires",
    "ceiling",
    "session_id",
    "subject",
    "owner",
    "lease",
];

#[derive(Default)]
struct Limits {
    tools: Option<BTreeSet<String>>,
    resources: Option<BTreeSet<String>>,
    expires: Option<i64>,
    ceiling: Option<i64>,
}

/// The limits of every block of one chain.
#[derive(Default)]
pub(super) struct Chain {
    /// The API key the token acts for (authority block only).
    pub key_id: Option<String>,
    /// That key's owner (authority block only).
    pub owner: Option<String>,
    /// The lease charges go to (authority block only).
    pub lease_id: Option<String>,
    blocks: Vec<Limits>,
}

fn strings(t: &Term) -> Option<BTreeSet<String>> {
    match t {
        Term::Set(s) => s
            .iter()
            .map(|t| match t {
                Term::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn narrow<T: Ord + Clone>(a: Option<BTreeSet<T>>, b: &BTreeSet<T>) -> Option<BTreeSet<T>> {
    Some(match a {
        None => b.clone(),
        Some(a) => a.intersection(b).cloned().collect(),
    })
}

fn min(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Chain {
    /// Reads each block's source (authority first).
    pub fn read(sources: &[String]) -> Chain {
        let mut chain = Chain::default();
        for src in sources {
            // Only the facts named here are read, each from its own line of
            // the printed block (the parser never sees the block's rules and
            // checks). A line that does not read as a fact (a rule with such
            // a head, a string spanning lines) is not one of these facts.
            let facts: Vec<Fact> = src
                .lines()
                .map(str::trim)
                .filter(|l| {
                    l.ends_with(';')
                        && NAMES
                            .iter()
                            .any(|n| l.strip_prefix(n).is_some_and(|r| r.starts_with('(')))
                })
                .filter_map(|l| Fact::try_from(&l[..l.len() - 1]).ok())
                .collect();
            let i = chain.blocks.len();
            let mut limits = Limits::default();
            for f in &facts {
                let terms = &f.predicate.terms;
                match (f.predicate.name.as_str(), terms.as_slice()) {
                    ("allowed_tools", [t]) => {
                        if let Some(s) = strings(t) {
                            limits.tools = narrow(limits.tools, &s);
                        }
                    }
                    ("allowed_resources", [t]) => {
                        if let Some(s) = strings(t) {
                            limits.resources = narrow(limits.resources, &s);
                        }
                    }
                    ("expires", [Term::Date(d)]) => {
                        limits.expires = min(limits.expires, i64::try_from(*d).unwrap_or(i64::MAX));
                    }
                    ("ceiling", [Term::Integer(c)]) => limits.ceiling = min(limits.ceiling, *c),
                    ("subject", [Term::Str(s)]) if i == 0 => chain.key_id = Some(s.clone()),
                    ("owner", [Term::Str(s)]) if i == 0 => chain.owner = Some(s.clone()),
                    ("lease", [Term::Str(s)]) if i == 0 => chain.lease_id = Some(s.clone()),
                    _ => {}
                }
            }
            chain.blocks.push(limits);
        }
        chain
    }

    /// The tools every block that names tools allows.
    pub fn tools(&self) -> Option<Vec<String>> {
        self.blocks
            .iter()
            .filter_map(|b| b.tools.as_ref())
            .fold(None, narrow)
            .map(|s| s.into_iter().collect())
    }

    /// The resources every block that names resources allows.
    pub fn resources(&self) -> Option<Vec<String>> {
        self.blocks
            .iter()
            .filter_map(|b| b.resources.as_ref())
            .fold(None, narrow)
            .map(|s| s.into_iter().collect())
    }

    /// The earliest expiry.
    pub fn expires_at(&self) -> Option<i64> {
        self.blocks.iter().filter_map(|b| b.expires).min()
    }

    /// The smallest ceiling (never below 0).
    pub fn ceiling(&self) -> Option<u64> {
        self.blocks
            .iter()
            .filter_map(|b| b.ceiling)
            .min()
            .map(|c| c.max(0) as u64)
    }

    /// (block index, ceiling) of every block with one: each is a running
    /// total of what was charged through that block.
    pub fn ceilings(&self) -> Vec<(usize, i64)> {
        self.blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.ceiling.map(|c| (i, c)))
            .collect()
    }

    /// A refusal carrying the chain's limits, to be filled in.
    pub fn answer(&self, blocks: usize) -> Authorization {
        Authorization {
            allowed: false,
            reason: String::new(),
            message: None,
            key_id: self.key_id.clone(),
            owner: self.owner.clone(),
            tools: self.tools(),
            resources: self.resources(),
            expires_at: self.expires_at(),
            ceiling_micros: self.ceiling(),
            remaining_micros: None,
            lease_id: self.lease_id.clone(),
            charged_micros: 0,
            blocks,
        }
    }
}
