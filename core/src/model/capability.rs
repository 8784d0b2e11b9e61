//! Capability tokens (`crate::capability`): the answer of an authorization,
//! the limits a chain's blocks state, and what a manager keeps of the
//! chains and root keys it has seen.

use biscuit_auth::builder::{Fact, Term};
use biscuit_auth::{Biscuit, PublicKey};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The answer of `TokenManager::authorize`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Authorization {
    /// Whether the request may go ahead (and, with a cost, was charged).
    pub allowed: bool,
    /// `OK`, or the stable code of the refusal (see `capability::reasons`).
    pub reason: String,
    /// What failed, for logs (never a secret).
    pub message: Option<String>,
    /// The API key the token acts for (when the chain verified).
    pub key_id: Option<String>,
    /// That key's owner.
    pub owner: Option<String>,
    /// The tools every typed block allows (intersection).
    pub tools: Option<Vec<String>>,
    /// The resources every typed block allows; `None`: any.
    pub resources: Option<Vec<String>>,
    /// The earliest expiry in the chain (Unix seconds).
    pub expires_at: Option<i64>,
    /// The smallest ceiling in the chain.
    pub ceiling_micros: Option<u64>,
    /// What can still be charged: the least room under any ceiling and
    /// on the lease, after this request; `None`: unbounded.
    pub remaining_micros: Option<u64>,
    /// The budget lease charges are taken from.
    pub lease_id: Option<String>,
    /// What this request charged.
    pub charged_micros: u64,
    /// Blocks in the chain.
    pub blocks: usize,
}

/// Per-manager state: the usable root keys and the chains already verified.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) roots: Mutex<Option<(Instant, Arc<Vec<Root>>)>>,
    pub(crate) verified: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

/// A root key usable to verify, as last read from the store.
pub(crate) struct Root {
    pub(crate) seq: u32,
    pub(crate) status: String,
    pub(crate) verify_until: Option<i64>,
    pub(crate) public: PublicKey,
}

impl Root {
    /// Whether it verifies tokens at `now`.
    pub(crate) fn usable(&self, now: i64) -> bool {
        self.status == "active"
            || (self.status == "verify_only" && self.verify_until.is_some_and(|t| t > now))
    }
}

/// A chain whose signatures verified, with what its blocks say.
pub(crate) struct Verified {
    pub(crate) token: Biscuit,
    pub(crate) root: u32,
    pub(crate) chain: Chain,
    pub(crate) ids: Vec<Vec<u8>>,
    /// What the chain's checks answered, by request and second: the
    /// Datalog is a pure function of the chain and the request's facts
    /// (`time` is whole seconds), so the same request in the same second
    /// gets the same answer without running it again. Bounded.
    pub(crate) decisions: Mutex<HashMap<Facts, Option<Refused>>>,
}

/// The facts one authorization brings (see `capability::run_checks`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Facts {
    pub(crate) tool: String,
    pub(crate) resource: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) cost: u64,
    pub(crate) now: i64,
}

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
pub(crate) struct Chain {
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

/// A refusal decided before or inside a write (a write rolls back): the
/// stable reason and its message, turned into an [`Authorization`].
#[derive(Clone)]
pub(crate) struct Refused(pub(crate) &'static str, pub(crate) String);
