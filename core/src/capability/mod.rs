//! Capability tokens for agents and tools: Biscuit v3 tokens minted from an
//! API key, narrowed offline by whoever holds them, authorized here against
//! the root keys, revoked block by block and charged against a ceiling and
//! a budget lease.
//!
//! A token is a chain of signed blocks. The first (authority) block is
//! ours: the key it was minted from, the tools, an expiry, optional
//! resources, a spending ceiling and a lease. Every later block can only
//! add checks, so it can only narrow: every check of every block must hold
//! for [`TokenManager::authorize`] to allow a request. The typed builder
//! ([`Attenuation`]) writes the common blocks, and each typed block also
//! carries its limits as facts (`allowed_tools`, `expires`, `ceiling`, ...)
//! that this module reads back to report the effective limits and to keep
//! each ceiling as a running total.
//!
//! The Datalog vocabulary, shared with any other Biscuit verifier:
//! the request brings `tool($name)`, `time($now)`, `cost($micros)` and,
//! when given, `resource($name)` and `session($id)`.

use crate::error::{Error, ErrorKind, Result};
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
pub use crate::model::capability::Authorization;
pub(crate) use crate::model::capability::State;
use crate::model::capability::{Chain, Facts, Refused, Root, Verified};
use crate::model::keys::KeyStatus;
use crate::store::{RootRow, Tx};
use biscuit_auth::builder::{AuthorizerBuilder, BlockBuilder, Term};
use biscuit_auth::error::{Format, Logic, Token as BiscuitError};
use biscuit_auth::{
    Algorithm, AuthorizerLimits, Biscuit, KeyPair, PrivateKey, PublicKey, UnverifiedBiscuit,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest token accepted, encoded (64 KiB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Most blocks a chain may have (the authority block included).
pub const MAX_BLOCKS: usize = 32;
/// Most tools or resources one block may name.
pub const MAX_NAMES: usize = 256;
/// Longest tool, resource or session name.
pub const MAX_NAME_LEN: usize = 256;
/// Longest raw Datalog block accepted by [`attenuate`].
pub const MAX_DATALOG_LEN: usize = 16 * 1024;
/// Longest lifetime a token can be minted with (one year).
pub const MAX_TTL_SECONDS: i64 = 366 * 86_400;

/// Run limits of one authorization: a hostile chain cannot make it
/// derive more facts, iterate more or run longer than this.
fn run_limits() -> AuthorizerLimits {
    AuthorizerLimits {
        max_facts: 1000,
        max_iterations: 100,
        max_time: Duration::from_millis(200),
    }
}

/// What [`TokenManager::mint_capability`] writes into the authority block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MintCapability {
    /// The API key the token acts for; it must be active, and stay active
    /// for the token to authorize.
    pub key_id: String,
    /// The tools the token may call (at least one).
    pub tools: Vec<String>,
    /// Most that may ever be charged through the token, in micro-units.
    pub ceiling_micros: Option<u64>,
    /// Lifetime in seconds (1 to one year).
    pub ttl_seconds: i64,
    /// The resources it may touch; none: any.
    pub resources: Option<Vec<String>>,
    /// A budget lease that every charge is taken from.
    pub lease_id: Option<String>,
    /// Who minted it, for the audit trail.
    pub actor: Option<String>,
}

/// One narrowing block for [`attenuate`]; every field left out narrows
/// nothing. The block can only narrow: its checks join every earlier one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attenuation {
    /// Only these tools (the token's own tools still apply too).
    pub tools: Option<Vec<String>>,
    /// At most this much charged through the token from here on.
    pub ceiling_micros: Option<u64>,
    /// Expires this many seconds from now (or earlier, if it already does).
    pub ttl_seconds: Option<i64>,
    /// Only these resources.
    pub resources: Option<Vec<String>>,
    /// Only requests made in this session.
    pub session_id: Option<String>,
    /// Raw Datalog appended to the block (facts, rules and checks).
    pub datalog: Option<String>,
}

/// One request to [`TokenManager::authorize`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilityRequest {
    /// The tool about to be called.
    pub tool: String,
    /// The resource it acts on, if any.
    pub resource: Option<String>,
    /// What the call costs, charged if it is allowed (micro-units).
    pub cost_micros: u64,
    /// The session the request belongs to, if any.
    pub session_id: Option<String>,
}

/// Stable refusal codes of [`Authorization::reason`].
pub mod reasons {
    /// Allowed.
    pub const OK: &str = "OK";
    /// Not a capability token: bad encoding, too large, too many blocks.
    pub const MALFORMED: &str = "CAPABILITY_MALFORMED";
    /// A signature does not verify, or its root key is unknown or retired.
    pub const BAD_SIGNATURE: &str = "CAPABILITY_BAD_SIGNATURE";
    /// A block of the chain (this token or one it was attenuated from) was revoked.
    pub const REVOKED: &str = "CAPABILITY_REVOKED";
    /// Past the earliest expiry of the chain.
    pub const EXPIRED: &str = "CAPABILITY_EXPIRED";
    /// The tool is not allowed by every block.
    pub const TOOL_NOT_ALLOWED: &str = "TOOL_NOT_ALLOWED";
    /// Another check of a block failed (resource, session, cost, Datalog).
    pub const DENIED: &str = "CAPABILITY_DENIED";
    /// The chain's Datalog passed the run limits.
    pub const TOO_COMPLEX: &str = "CAPABILITY_TOO_COMPLEX";
    /// The cost would pass a ceiling of the chain.
    pub const CEILING_EXCEEDED: &str = "CEILING_EXCEEDED";
    /// The lease has not that much left, or it ended.
    pub const BUDGET_EXCEEDED: &str = "BUDGET_EXCEEDED";
}

/// What [`inspect`] reads off a token without verifying it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapabilityInfo {
    /// The root key id the authority block names.
    pub root_key_id: Option<u32>,
    /// Each block's Datalog source, authority first.
    pub blocks: Vec<String>,
    /// Each block's revocation id (hex), authority first.
    pub revocation_ids: Vec<String>,
    /// Whether no block may be appended.
    pub sealed: bool,
    /// The limits the typed blocks state (unverified).
    pub tools: Option<Vec<String>>,
    /// See [`Authorization::resources`].
    pub resources: Option<Vec<String>>,
    /// See [`Authorization::expires_at`].
    pub expires_at: Option<i64>,
    /// See [`Authorization::ceiling_micros`].
    pub ceiling_micros: Option<u64>,
    /// The key id of the authority block.
    pub key_id: Option<String>,
}

/// A capability root key as listed (never its private part).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapabilityRoot {
    /// The root key id written into the tokens it signs.
    pub root_key_id: u32,
    /// `ed25519/<hex>`: Biscuit's text form, for other verifiers.
    pub public_key: String,
    /// `active`, `verify_only` (until `verify_until`) or `retired`.
    pub status: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// End of the verify-only window.
    pub verify_until: Option<i64>,
}

/// How long the root keys read from the store are used before a re-read:
/// a root retired by another process is refused within this.
const ROOTS_TTL: Duration = Duration::from_secs(1);
/// Verified chains kept (signatures checked once per token and process).
const VERIFIED_CACHE: usize = 4096;

/// Decisions kept per verified chain.
const DECISIONS_PER_CHAIN: usize = 256;

/// The algorithm label bound into a sealed root key's associated data.
const ROOT_ALG: &str = "biscuit-ed25519";

fn malformed(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::CapabilityMalformed, msg)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn check_names(what: &str, names: &[String], at_least_one: bool) -> Result<()> {
    if at_least_one && names.is_empty() {
        return Err(Error::invalid(format!("{what}: at least one is required")));
    }
    if names.len() > MAX_NAMES {
        return Err(Error::invalid(format!("{what}: at most {MAX_NAMES}")));
    }
    for n in names {
        check_name(what, n)?;
    }
    Ok(())
}

fn check_name(what: &str, n: &str) -> Result<()> {
    if n.is_empty() || n.len() > MAX_NAME_LEN || n.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what}: each must be 1 to {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_ttl(ttl: i64) -> Result<()> {
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(Error::invalid(format!(
            "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
        )));
    }
    Ok(())
}

fn micros(what: &str, v: u64) -> Result<i64> {
    i64::try_from(v)
        .ok()
        .filter(|v| *v <= crate::usage::MAX_USAGE_NUMBER as i64)
        .ok_or_else(|| Error::invalid(format!("{what} is too large")))
}

fn set(names: &[String]) -> Term {
    Term::Set(
        names
            .iter()
            .map(|n| Term::Str(n.clone()))
            .collect::<BTreeSet<_>>(),
    )
}

fn date(t: i64) -> Term {
    Term::Date(t.max(0) as u64)
}

fn biscuit_error(e: BiscuitError) -> Error {
    match e {
        BiscuitError::AppendOnSealed | BiscuitError::AlreadySealed => Error::new(
            ErrorKind::CapabilitySealed,
            "the capability token is sealed: no block can be appended",
        ),
        BiscuitError::Language(e) => Error::invalid(format!("datalog: {e}")),
        other => malformed(format!("not a valid capability token: {other}")),
    }
}

/// Appends the typed and raw parts of `a` as one block's source and params.
fn block_of(a: &Attenuation, now: i64) -> Result<BlockBuilder> {
    let mut code = String::new();
    let mut params: HashMap<String, Term> = HashMap::new();
    if let Some(tools) = &a.tools {
        check_names("tools", tools, true)?;
        code.push_str("allowed_tools({tools});\ncheck if tool($t), {tools}.contains($t);\n");
        params.insert("tools".into(), set(tools));
    }
    if let Some(resources) = &a.resources {
        check_names("resources", resources, true)?;
        code.push_str(
            "allowed_resources({resources});\ncheck if resource($r), {resources}.contains($r);\n",
        );
        params.insert("resources".into(), set(resources));
    }
    if let Some(ttl) = a.ttl_seconds {
        check_ttl(ttl)?;
        code.push_str("expires({expires});\ncheck if time($time), $time <= {expires};\n");
        params.insert("expires".into(), date(now.saturating_add(ttl)));
    }
    if let Some(c) = a.ceiling_micros {
        let c = micros("ceiling_micros", c)?;
        code.push_str("ceiling({ceiling});\ncheck if cost($c), $c <= {ceiling};\n");
        params.insert("ceiling".into(), Term::Integer(c));
    }
    if let Some(s) = &a.session_id {
        check_name("session_id", s)?;
        code.push_str("session_id({session});\ncheck if session($s), $s == {session};\n");
        params.insert("session".into(), Term::Str(s.clone()));
    }
    let mut block = BlockBuilder::new()
        .code_with_params(&code, params, HashMap::new())
        .map_err(biscuit_error)?;
    if let Some(d) = &a.datalog {
        if d.len() > MAX_DATALOG_LEN {
            return Err(Error::invalid(format!(
                "datalog: at most {MAX_DATALOG_LEN} bytes"
            )));
        }
        block = block.code(d).map_err(biscuit_error)?;
    }
    Ok(block)
}

/// Parses a token's encoding (base64url) without verifying it, within the
/// size and block bounds.
fn parse_unverified(token: &str) -> Result<UnverifiedBiscuit> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(format!(
            "a capability token is at most {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let t = UnverifiedBiscuit::from_base64(token).map_err(biscuit_error)?;
    if t.block_count() > MAX_BLOCKS {
        return Err(malformed(format!(
            "a capability token has at most {MAX_BLOCKS} blocks"
        )));
    }
    Ok(t)
}

/// Narrows `token` offline by appending one block (no store, no network,
/// no key): the result allows at most what `token` allows.
pub fn attenuate(token: &str, a: &Attenuation) -> Result<String> {
    attenuate_at(
        token,
        a,
        crate::clock::Clock::now(&crate::clock::SystemClock),
    )
}

/// [`attenuate`] with the current time given (expiry = `now` + ttl).
pub fn attenuate_at(token: &str, a: &Attenuation, now: i64) -> Result<String> {
    let t = parse_unverified(token)?;
    if t.block_count() >= MAX_BLOCKS {
        return Err(malformed(format!(
            "a capability token has at most {MAX_BLOCKS} blocks"
        )));
    }
    let block = block_of(a, now)?;
    t.append(block)
        .and_then(|t| t.to_base64())
        .map_err(biscuit_error)
}

/// Seals `token`: it still authorizes as before, but no block can be
/// appended any more.
pub fn seal(token: &str) -> Result<String> {
    parse_unverified(token)?
        .seal()
        .and_then(|t| t.to_base64())
        .map_err(biscuit_error)
}

/// Reads a token's blocks, revocation ids and stated limits without
/// verifying it (nothing here is to be trusted before `authorize`).
pub fn inspect(token: &str) -> Result<CapabilityInfo> {
    let t = parse_unverified(token)?;
    let blocks = (0..t.block_count())
        .map(|i| t.print_block_source(i).map_err(biscuit_error))
        .collect::<Result<Vec<_>>>()?;
    let chain = Chain::read(&blocks);
    let sealed = t
        .seal()
        .is_err_and(|e| matches!(e, BiscuitError::AlreadySealed));
    Ok(CapabilityInfo {
        root_key_id: t.root_key_id(),
        revocation_ids: t.revocation_identifiers().iter().map(|r| hex(r)).collect(),
        sealed,
        tools: chain.tools(),
        resources: chain.resources(),
        expires_at: chain.expires_at(),
        ceiling_micros: chain.ceiling(),
        key_id: chain.key_id.clone(),
        blocks,
    })
}

fn refusal(reason: &str, message: impl Into<String>) -> Authorization {
    Authorization {
        allowed: false,
        reason: reason.to_string(),
        message: Some(message.into()),
        key_id: None,
        owner: None,
        tools: None,
        resources: None,
        expires_at: None,
        ceiling_micros: None,
        remaining_micros: None,
        lease_id: None,
        charged_micros: 0,
        blocks: 0,
    }
}

fn refused(reason: &'static str, message: impl Into<String>) -> Refused {
    Refused(reason, message.into())
}

impl TokenManager {
    fn root_rows_in(tx: &dyn Tx) -> Result<Vec<RootRow>> {
        tx.capabilities().roots()
    }

    /// The root keys as the store has them, read again after [`ROOTS_TTL`]
    /// (or at once with `force`).
    fn roots(&self, force: bool) -> Result<Arc<Vec<Root>>> {
        let inner = self.inner();
        let state = &inner.capabilities;
        if let Some((at, roots)) = &*state.roots.lock().unwrap_or_else(|p| p.into_inner()) {
            let fresh = at.elapsed() < ROOTS_TTL;
            if fresh && (!force || at.elapsed() < Duration::from_millis(50)) {
                return Ok(roots.clone());
            }
        }
        let rows = inner.db.read(Self::root_rows_in)?;
        let roots = rows
            .iter()
            .map(|r| {
                let public: PublicKey = r.public_key.parse().map_err(|_| {
                    Error::new(
                        ErrorKind::Storage,
                        "a stored capability root key is invalid",
                    )
                })?;
                Ok(Root {
                    seq: u32::try_from(r.seq).unwrap_or(u32::MAX),
                    status: r.status.clone(),
                    verify_until: r.verify_until,
                    public,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let roots = Arc::new(roots);
        *state.roots.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), roots.clone()));
        Ok(roots)
    }

    fn forget_roots(&self) {
        *self
            .inner()
            .capabilities
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn new_root_row(&self, now: i64) -> Result<(RootRow, KeyPair)> {
        let master = self.master()?;
        let kp = KeyPair::new();
        let kid = format!("cap-{}", uuid::Uuid::new_v4().simple());
        let private = kp.private().to_bytes();
        Ok((
            RootRow {
                seq: 0,
                private_enc: crate::jwt::managed::seal(master, &kid, ROOT_ALG, &private)?,
                kid,
                status: "active".into(),
                public_key: kp.public().to_string(),
                created_at: now,
                verify_until: None,
                retired_at: None,
            },
            kp,
        ))
    }

    fn audit_root(
        tx: &dyn Tx,
        action: AuditAction,
        r: &RootRow,
        actor: Option<&str>,
        now: i64,
    ) -> Result<()> {
        tx.audit().insert(&NewAuditEvent {
            at: now,
            action,
            key_id: None,
            display_prefix: None,
            actor: actor.map(str::to_string),
            outcome: "ok",
            detail: Some(json!({"kid": r.kid, "public_key": r.public_key})),
        })
    }

    /// The active root (created on first use), with its private key.
    fn active_root(&self) -> Result<(u32, KeyPair)> {
        let master = self.master()?.to_vec();
        let open = |r: &RootRow| -> Result<(u32, KeyPair)> {
            let plain =
                crate::jwt::managed::open_sealed(&master, &r.kid, ROOT_ALG, &r.private_enc)?;
            let private = PrivateKey::from_bytes(&plain, Algorithm::Ed25519).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidKeyMaterial,
                    "a stored capability root is invalid",
                )
            })?;
            Ok((
                u32::try_from(r.seq).unwrap_or(u32::MAX),
                KeyPair::from(&private),
            ))
        };
        let rows = self.inner().db.read(Self::root_rows_in)?;
        if let Some(r) = rows.iter().find(|r| r.status == "active") {
            return open(r);
        }
        let now = self.inner().now();
        let (mut row, _) = self.new_root_row(now)?;
        let row = self.inner().db.write(|tx| {
            self.ensure_master(tx)?;
            tx.capabilities().serialize_roots()?;
            // Another process may have created one meanwhile.
            if let Some(r) = Self::root_rows_in(tx)?
                .into_iter()
                .find(|r| r.status == "active")
            {
                return Ok(r);
            }
            row.seq = tx.capabilities().insert_root(&row)?;
            Self::audit_root(tx, AuditAction::CapabilityRootCreate, &row, None, now)?;
            Ok(row)
        })?;
        self.forget_roots();
        open(&row)
    }

    /// Replaces the active capability root with a new one; the previous
    /// one verifies for `overlap_seconds` more (0: its tokens are refused
    /// at once). Creates the first root when there is none.
    pub fn rotate_capability_key(
        &self,
        overlap_seconds: i64,
        actor: Option<&str>,
    ) -> Result<CapabilityRoot> {
        let now = self.inner().now();
        crate::clock::check_overlap(now, overlap_seconds)?;
        let (mut row, _) = self.new_root_row(now)?;
        let row = self.inner().db.write(|tx| {
            self.ensure_master(tx)?;
            tx.capabilities().serialize_roots()?;
            for old in Self::root_rows_in(tx)?
                .iter()
                .filter(|r| r.status == "active")
            {
                if overlap_seconds == 0 {
                    tx.capabilities()
                        .set_root_status(old.seq, "retired", None, Some(now))?;
                } else {
                    tx.capabilities().set_root_status(
                        old.seq,
                        "verify_only",
                        Some(now.saturating_add(overlap_seconds)),
                        None,
                    )?;
                }
                Self::audit_root(tx, AuditAction::CapabilityRootRotate, old, actor, now)?;
            }
            row.seq = tx.capabilities().insert_root(&row)?;
            Self::audit_root(tx, AuditAction::CapabilityRootCreate, &row, actor, now)?;
            Ok(row)
        })?;
        self.forget_roots();
        self.inner()
            .capabilities
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(CapabilityRoot {
            root_key_id: u32::try_from(row.seq).unwrap_or(u32::MAX),
            public_key: row.public_key,
            status: row.status,
            created_at: row.created_at,
            verify_until: None,
        })
    }

    /// The public key of the active root in Biscuit's text form
    /// (`ed25519/<hex>`), created on first use: give it to any Biscuit
    /// verifier.
    pub fn capability_public_key(&self) -> Result<String> {
        Ok(self.active_root()?.1.public().to_string())
    }

    /// Every root key that verifies now (the active one and those in their
    /// verify-only window), oldest first.
    pub fn capability_public_keys(&self) -> Result<Vec<CapabilityRoot>> {
        let now = self.inner().now();
        let rows = self.inner().db.read(Self::root_rows_in)?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                r.status == "active"
                    || (r.status == "verify_only" && r.verify_until.is_some_and(|t| t > now))
            })
            .map(|r| CapabilityRoot {
                root_key_id: u32::try_from(r.seq).unwrap_or(u32::MAX),
                public_key: r.public_key,
                status: r.status,
                created_at: r.created_at,
                verify_until: r.verify_until,
            })
            .collect())
    }

    /// Mints a capability token for an active API key: the tools it may
    /// call, for how long, on which resources, with what ceiling, charged
    /// to which lease. Signed by the active root (needs the master key).
    pub fn mint_capability(&self, m: &MintCapability) -> Result<String> {
        crate::keys::check_id(&m.key_id)?;
        check_names("tools", &m.tools, true)?;
        if let Some(r) = &m.resources {
            check_names("resources", r, true)?;
        }
        check_ttl(m.ttl_seconds)?;
        if let Some(c) = m.ceiling_micros {
            micros("ceiling_micros", c)?;
        }
        if let Some(l) = &m.lease_id {
            check_name("lease_id", l)?;
        }
        let now = self.inner().now();
        let (root_id, root) = self.active_root()?;
        let (owner, display) = self.inner().db.read(|tx| {
            let k = tx.keys().get(&m.key_id, now)?.ok_or_else(|| {
                Error::new(ErrorKind::KeyNotFound, format!("no key {}", m.key_id))
            })?;
            key_usable(k.status_at(now))?;
            if let Some(l) = &m.lease_id {
                let lease = tx
                    .agents()
                    .lease(l, now)?
                    .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no lease {l}")))?;
                if lease.status != "active" {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("lease {l} is {}", lease.status),
                    ));
                }
            }
            Ok((k.owner, k.display_prefix))
        })?;
        let mut code = String::from("subject({key_id});\nowner({owner});\n");
        let mut params: HashMap<String, Term> = HashMap::new();
        params.insert("key_id".into(), Term::Str(m.key_id.clone()));
        params.insert("owner".into(), Term::Str(owner.clone()));
        if let Some(l) = &m.lease_id {
            code.push_str("lease({lease});\n");
            params.insert("lease".into(), Term::Str(l.clone()));
        }
        let typed = block_of(
            &Attenuation {
                tools: Some(m.tools.clone()),
                ceiling_micros: m.ceiling_micros,
                ttl_seconds: Some(m.ttl_seconds),
                resources: m.resources.clone(),
                ..Default::default()
            },
            now,
        )?;
        let authority = Biscuit::builder()
            .code_with_params(&code, params, HashMap::new())
            .map_err(biscuit_error)?
            .merge(typed)
            .root_key_id(root_id);
        let token = authority
            .build(&root)
            .and_then(|t| t.to_base64())
            .map_err(biscuit_error)?;
        self.inner().db.write_relaxed(|tx| {
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::CapabilityMint,
                key_id: Some(m.key_id.clone()),
                display_prefix: Some(display.clone()),
                actor: m.actor.clone(),
                outcome: "ok",
                detail: Some(json!({
                    "tools": m.tools, "resources": m.resources,
                    "ceiling_micros": m.ceiling_micros, "expires_at": now + m.ttl_seconds,
                    "lease_id": m.lease_id, "root_key_id": root_id,
                })),
            })
        })?;
        Ok(token)
    }

    /// Verifies the chain's signatures under the usable roots, once per
    /// token and process.
    fn verified(&self, token: &str, now: i64) -> std::result::Result<Arc<Verified>, Refused> {
        let token = token.trim();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let inner = self.inner();
        let cached = inner
            .capabilities
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .cloned();
        let roots = self
            .roots(false)
            .map_err(|e| refused(e.kind().code(), e.message().to_string()))?;
        if let Some(v) = cached {
            if roots.iter().any(|r| r.seq == v.root && r.usable(now)) {
                return Ok(v);
            }
            return Err(refused(
                reasons::BAD_SIGNATURE,
                "the token's root key is retired",
            ));
        }
        let unverified = parse_unverified(token)
            .map_err(|e| refused(reasons::MALFORMED, e.message().to_string()))?;
        let Some(root_id) = unverified.root_key_id() else {
            return Err(refused(
                reasons::BAD_SIGNATURE,
                "the token names no root key",
            ));
        };
        let mut roots = roots;
        if !roots.iter().any(|r| r.seq == root_id) {
            roots = self
                .roots(true)
                .map_err(|e| refused(e.kind().code(), e.message().to_string()))?;
        }
        let Some(root) = roots.iter().find(|r| r.seq == root_id && r.usable(now)) else {
            return Err(refused(
                reasons::BAD_SIGNATURE,
                "the token's root key is unknown or retired",
            ));
        };
        let public = root.public;
        let t = unverified
            .verify(move |_| Ok::<_, Format>(public))
            .map_err(|e| {
                refused(
                    reasons::BAD_SIGNATURE,
                    format!("the chain does not verify: {e}"),
                )
            })?;
        let blocks = (0..t.block_count())
            .map(|i| t.print_block_source(i))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| refused(reasons::MALFORMED, e.to_string()))?;
        let chain = Chain::read(&blocks);
        if chain.key_id.is_none() {
            return Err(refused(
                reasons::MALFORMED,
                "the authority block names no key",
            ));
        }
        let v = Arc::new(Verified {
            ids: t.revocation_identifiers(),
            token: t,
            root: root_id,
            chain,
            decisions: Mutex::new(HashMap::new()),
        });
        let mut cache = inner
            .capabilities
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(digest, v.clone());
        Ok(v)
    }

    /// Decides whether `token` allows `req`: the chain verifies under a
    /// usable root, no block of it is revoked, the key it was minted from
    /// is active, every check of every block holds for the request's facts,
    /// and the cost fits under every ceiling of the chain and on its lease.
    /// An allowed request with a cost is charged to all of them in one
    /// transaction. A refusal is an answer (`allowed: false` with a stable
    /// reason), not an error; errors are for the store failing.
    pub fn authorize(&self, token: &str, req: &CapabilityRequest) -> Result<Authorization> {
        check_name("tool", &req.tool)?;
        if let Some(r) = &req.resource {
            check_name("resource", r)?;
        }
        if let Some(s) = &req.session_id {
            check_name("session_id", s)?;
        }
        let cost = micros("cost_micros", req.cost_micros)?;
        let now = self.inner().now();
        let v = match self.verified(token, now) {
            Ok(v) => v,
            Err(Refused(reason, message)) => return Ok(refusal(reason, message)),
        };
        let mut answer = v.chain.answer(v.ids.len());
        if let Some(refused) = decide_checks(&v, req, now) {
            return Ok(Authorization {
                allowed: false,
                reason: refused.0.to_string(),
                message: Some(refused.1),
                ..answer
            });
        }
        let ids: Vec<&[u8]> = v.ids.iter().map(Vec::as_slice).collect();
        let ceilings = v.chain.ceilings();
        let key_id = v.chain.key_id.clone().unwrap_or_default();
        let decide =
            |tx: &dyn Tx, charge: bool| -> Result<std::result::Result<Option<u64>, Refused>> {
                if let Some(i) = tx.capabilities().first_revoked(&ids)? {
                    return Ok(Err(Refused(
                        reasons::REVOKED,
                        format!("block {i} of the chain was revoked"),
                    )));
                }
                match tx.keys().get(&key_id, now)? {
                    None => return Ok(Err(Refused("KEY_NOT_FOUND", format!("no key {key_id}")))),
                    Some(k) => {
                        if let Err(e) = key_usable(k.status_at(now)) {
                            return Ok(Err(Refused(e.kind().code(), e.message().to_string())));
                        }
                    }
                }
                let mut room: Option<u64> = None;
                let spent = tx
                    .capabilities()
                    .spent(&ceilings.iter().map(|(i, _)| ids[*i]).collect::<Vec<_>>())?;
                for ((i, ceiling), spent) in ceilings.iter().zip(&spent) {
                    let left = ceiling.saturating_sub(*spent).max(0);
                    if cost > left {
                        return Ok(Err(Refused(
                            reasons::CEILING_EXCEEDED,
                            format!("the cost passes the ceiling of block {i} ({left} left)"),
                        )));
                    }
                    let after = (left - cost) as u64;
                    room = Some(room.map_or(after, |r: u64| r.min(after)));
                }
                if let Some(l) = &v.chain.lease_id {
                    let Some(lease) = tx.agents().lease(l, now)? else {
                        return Ok(Err(Refused(
                            reasons::BUDGET_EXCEEDED,
                            format!("no lease {l}"),
                        )));
                    };
                    if lease.status != "active" {
                        return Ok(Err(Refused(
                            reasons::BUDGET_EXCEEDED,
                            format!("lease {l} is {}", lease.status),
                        )));
                    }
                    if cost as u64 > lease.remaining_micros {
                        return Ok(Err(Refused(
                            reasons::BUDGET_EXCEEDED,
                            format!("lease {l} has {} left", lease.remaining_micros),
                        )));
                    }
                    let after = lease.remaining_micros - cost as u64;
                    room = Some(room.map_or(after, |r| r.min(after)));
                    if charge {
                        tx.agents().spend(l, &lease.budget_id, cost, now)?;
                    }
                }
                if charge {
                    for (i, ceiling) in &ceilings {
                        if tx
                            .capabilities()
                            .charge(ids[*i], cost, *ceiling, now)?
                            .is_none()
                        {
                            // Another charge got there first: nothing of this one stays.
                            return Err(Error::new(
                                ErrorKind::UsageExceeded,
                                format!("ceiling of block {i}"),
                            ));
                        }
                    }
                }
                Ok(Ok(room))
            };
        let decided = if cost == 0 {
            self.inner().db.read(|tx| decide(tx, false))
        } else {
            let mut refused = None;
            let r = self.inner().db.write_relaxed(|tx| match decide(tx, true)? {
                Ok(room) => Ok(room),
                Err(r) => {
                    refused = Some(r);
                    // Roll back whatever was charged before the refusal.
                    Err(Error::new(ErrorKind::UsageExceeded, "refused"))
                }
            });
            match (r, refused) {
                (_, Some(r)) => Ok(Err(r)),
                (Err(e), None) if e.kind() == ErrorKind::UsageExceeded => Ok(Err(Refused(
                    reasons::CEILING_EXCEEDED,
                    format!("the cost passes the {}", e.message()),
                ))),
                (r, None) => r.map(Ok),
            }
        }?;
        match decided {
            Ok(room) => {
                answer.allowed = true;
                answer.reason = reasons::OK.into();
                answer.charged_micros = cost as u64;
                answer.remaining_micros = room;
                Ok(answer)
            }
            Err(Refused(reason, message)) => {
                answer.reason = reason.to_string();
                answer.message = Some(message);
                Ok(answer)
            }
        }
    }

    /// Revokes `token`'s last block: the token and every token attenuated
    /// from it are refused from the next authorization on, in every process
    /// on this store. Tokens it was attenuated from stay valid. Returns the
    /// revocation id (hex). The token must verify under a root of this
    /// store.
    pub fn revoke_capability(&self, token: &str, actor: Option<&str>) -> Result<String> {
        let now = self.inner().now();
        let v = self
            .verified(token, now)
            .map_err(|Refused(_, message)| malformed(message))?;
        let id = v.ids.last().cloned().unwrap_or_default();
        self.revoke_block(&id, v.chain.key_id.clone(), actor, now)?;
        Ok(hex(&id))
    }

    /// Revokes a block by its revocation id (hex, as [`inspect`] or
    /// [`TokenManager::revoke_capability`] give it): every token whose chain
    /// holds the block is refused. True if it was not revoked before.
    pub fn revoke_capability_id(&self, revocation_id: &str, actor: Option<&str>) -> Result<bool> {
        let id = unhex(revocation_id.trim())
            .ok_or_else(|| Error::invalid("revocation_id: 2 to 256 hex digits"))?;
        self.revoke_block(&id, None, actor, self.inner().now())
    }

    fn revoke_block(
        &self,
        id: &[u8],
        key_id: Option<String>,
        actor: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        self.inner().db.write(|tx| {
            let new = tx.capabilities().revoke(id, None, now)?;
            if new {
                tx.audit().insert(&NewAuditEvent {
                    at: now,
                    action: AuditAction::CapabilityRevoke,
                    key_id: key_id.clone(),
                    display_prefix: None,
                    actor: actor.map(str::to_string),
                    outcome: "ok",
                    detail: Some(json!({"revocation_id": hex(id)})),
                })?;
            }
            Ok(new)
        })
    }
}

/// `Err` with the key's state unless it is active.
fn key_usable(s: KeyStatus) -> Result<()> {
    let (kind, what) = match s {
        KeyStatus::Active => return Ok(()),
        KeyStatus::Disabled => (ErrorKind::KeyDisabled, "disabled"),
        KeyStatus::Revoked => (ErrorKind::KeyRevoked, "revoked"),
        KeyStatus::Expired => (ErrorKind::KeyExpired, "expired"),
    };
    Err(Error::new(
        kind,
        format!("the key the capability acts for is {what}"),
    ))
}

/// [`run_checks`], answered from the chain's decisions when the same
/// request came in the same second.
fn decide_checks(v: &Verified, req: &CapabilityRequest, now: i64) -> Option<Refused> {
    let facts = Facts {
        tool: req.tool.clone(),
        resource: req.resource.clone(),
        session: req.session_id.clone(),
        cost: req.cost_micros,
        now,
    };
    if let Some(d) = v
        .decisions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&facts)
    {
        return d.clone();
    }
    let d = run_checks(v, req, now);
    // A run the limits stopped is kept too (for this second only): a
    // hostile chain presented again costs a lookup, not another run.
    let mut m = v.decisions.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= DECISIONS_PER_CHAIN {
        m.clear();
    }
    m.insert(facts, d.clone());
    d
}

/// Runs every block's checks against the request's facts, within the run
/// limits; `None` when all hold.
fn run_checks(v: &Verified, req: &CapabilityRequest, now: i64) -> Option<Refused> {
    use biscuit_auth::builder::{Policy, fact};
    // The request's facts, built directly (no Datalog text to parse).
    static ALLOW: std::sync::OnceLock<Option<Policy>> = std::sync::OnceLock::new();
    let allow = ALLOW.get_or_init(|| Policy::try_from("allow if true").ok());
    let mut b = AuthorizerBuilder::new().set_limits(run_limits());
    let mut facts = vec![
        fact("tool", &[Term::Str(req.tool.clone())]),
        fact("time", &[date(now)]),
        fact("cost", &[Term::Integer(req.cost_micros as i64)]),
    ];
    if let Some(r) = &req.resource {
        facts.push(fact("resource", &[Term::Str(r.clone())]));
    }
    if let Some(s) = &req.session_id {
        facts.push(fact("session", &[Term::Str(s.clone())]));
    }
    let result = (|| {
        for f in facts {
            b = b.fact(f)?;
        }
        let Some(allow) = allow else {
            return Err(BiscuitError::InternalError);
        };
        b.policy(allow.clone())?.build(&v.token)?.authorize()
    })();
    let e = match result {
        Ok(_) => return None,
        Err(e) => e,
    };
    Some(match e {
        BiscuitError::RunLimit(l) => Refused(reasons::TOO_COMPLEX, format!("{l}")),
        BiscuitError::FailedLogic(Logic::Unauthorized { checks, .. })
        | BiscuitError::FailedLogic(Logic::NoMatchingPolicy { checks }) => {
            let chain = &v.chain;
            if chain.expires_at().is_some_and(|t| now > t) {
                Refused(reasons::EXPIRED, "the token has expired".into())
            } else if chain.tools().is_some_and(|t| !t.contains(&req.tool)) {
                Refused(
                    reasons::TOOL_NOT_ALLOWED,
                    format!("tool {:?} is not allowed", req.tool),
                )
            } else if chain.ceiling().is_some_and(|c| req.cost_micros > c) {
                Refused(
                    reasons::CEILING_EXCEEDED,
                    "the cost passes a ceiling of the chain".into(),
                )
            } else {
                let mut msg = format!("{} check(s) failed", checks.len());
                if let Some(c) = checks.first() {
                    let text = format!(": {c}");
                    msg.push_str(&text.chars().take(200).collect::<String>());
                }
                Refused(reasons::DENIED, msg)
            }
        }
        other => Refused(reasons::DENIED, other.to_string()),
    })
}
