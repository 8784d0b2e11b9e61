//! Usage records (requests, LLM tokens, cost), their summaries and export,
//! quotas with reservations, and agent budgets with leases.
//!
//! # Recording
//!
//! [`TokenManager::record_usage`] buffers the record in memory and writes it
//! with the next write-behind flush (see the crate's crash notes): no fsync
//! per record. The caller's `request_id` is unique in the database, so a
//! retried report counts once even across processes; the answer says
//! `duplicate: true` when this process already knows the id (buffered or
//! stored). Summaries and exports flush first, so they include what this
//! process recorded.
//!
//! Money is an integer count of micro-units (1.00 = 1 000 000), never a float.

pub mod agents;
pub mod quota;

use crate::error::{Error, Result};
use crate::keys::{Page, check_len, metadata_json, page_limit, parse_cursor};
use crate::manager::TokenManager;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One usage report, as given by the caller.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageReport {
    /// Caller's id of the request (1–128 characters); a second report with
    /// the same id is ignored. Generated (UUID) when absent — then retries
    /// cannot be recognised, so give one.
    pub request_id: Option<String>,
    /// The API key that made the request.
    pub key_id: Option<String>,
    /// The session it ran in. At least one of `key_id` and `session_id`.
    pub session_id: Option<String>,
    /// Model name, e.g. `gpt-4o` (≤ 128 characters).
    pub model: Option<String>,
    /// Model version (≤ 128 characters).
    pub model_version: Option<String>,
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
    /// Tokens read from a prompt cache.
    pub cache_read_tokens: u64,
    /// Tokens written to a prompt cache.
    pub cache_write_tokens: u64,
    /// Requests this report stands for (default 1).
    pub requests: Option<u64>,
    /// Cost in micro-units of the currency.
    pub cost_micros: u64,
    /// Free JSON object (≤ 16 KiB).
    pub metadata: Option<Map<String, Value>>,
    /// When it happened (Unix seconds); default now.
    pub at: Option<i64>,
}

/// A stored usage record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRecord {
    /// The request id.
    pub request_id: String,
    /// When (Unix seconds).
    pub at: i64,
    /// The key, if given.
    pub key_id: Option<String>,
    /// The key's (or else the session's) owner when recorded.
    pub owner: Option<String>,
    /// The session, if given.
    pub session_id: Option<String>,
    /// The agent, for usage reported against a budget lease.
    pub agent_id: Option<String>,
    /// Model.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cache-read tokens.
    pub cache_read_tokens: u64,
    /// Cache-write tokens.
    pub cache_write_tokens: u64,
    /// Requests.
    pub requests: u64,
    /// Cost in micro-units.
    pub cost_micros: u64,
    /// Free metadata.
    pub metadata: Map<String, Value>,
}

/// The answer of [`TokenManager::record_usage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The request id (the caller's or the generated one).
    pub request_id: String,
    /// True if this request id was already recorded: nothing was added.
    pub duplicate: bool,
}

/// Which usage to summarise or export.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageQuery {
    /// From this time (inclusive, Unix seconds).
    pub since: Option<i64>,
    /// Until this time (exclusive).
    pub until: Option<i64>,
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this agent.
    pub agent_id: Option<String>,
    /// Summary grouping: any of `key`, `owner`, `model`, `session`, `agent`, `day`
    /// (UTC), in the order given; none = one grand total.
    pub group_by: Vec<String>,
    /// Export page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Export cursor.
    pub cursor: Option<String>,
}

/// One row of a usage summary: the group's keys, then the totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Key id, when grouped by key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Owner, when grouped by owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Model, when grouped by model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Session id, when grouped by session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Agent id, when grouped by agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// `YYYY-MM-DD` (UTC), when grouped by day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Usage records summed.
    pub records: u64,
    /// Requests.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cache-read tokens.
    pub cache_read_tokens: u64,
    /// Cache-write tokens.
    pub cache_write_tokens: u64,
    /// prompt + completion tokens.
    pub total_tokens: u64,
    /// Cost in micro-units.
    pub cost_micros: u64,
}

/// The columns a summary may group by, as (name, SQL expression).
pub(crate) const GROUPS: [(&str, &str); 6] = [
    ("key", "key_id"),
    ("owner", "owner"),
    ("model", "model"),
    ("session", "session_id"),
    ("agent", "agent_id"),
    ("day", "date(at, 'unixepoch')"),
];

/// Largest count or amount one usage record may carry: 2^53 − 1, the
/// largest integer every binding represents exactly (JavaScript's safe
/// integers). Summaries add in 128 bits, so no number of records overflows them.
pub const MAX_USAGE_NUMBER: u64 = (1 << 53) - 1;

/// A record validated and ready to insert at the next flush.
#[derive(Debug, Clone)]
pub(crate) struct PendingUsage {
    pub request_id: String,
    pub at: i64,
    pub key_id: Option<String>,
    pub session_id: Option<String>,
    /// Set for usage reported against a budget lease.
    pub agent_id: Option<String>,
    /// The budget's owner, for agent usage (keys and sessions give theirs).
    pub owner: Option<String>,
    pub model: String,
    pub model_version: String,
    pub numbers: [u64; 6],
    pub metadata_json: String,
    /// Wall-clock milliseconds of the report (which came first); 0: final.
    pub reported_at_ms: i64,
}

impl TokenManager {
    /// Records usage against a key and/or a session (buffered; see the module
    /// docs). Recording the same `request_id` twice counts it once.
    pub fn record_usage(&self, r: &UsageReport) -> Result<Recorded> {
        if r.key_id.is_none() && r.session_id.is_none() {
            return Err(Error::invalid("usage needs a key_id or a session_id"));
        }
        let now = self.inner.now();
        let p = prepare(r, now)?;
        let request_id = p.request_id.clone();
        if !self.inner.usage_pending(&request_id)
            && self.inner.db.read(|c| c.usage().exists(&request_id))?
        {
            return Ok(Recorded {
                request_id,
                duplicate: true,
            });
        }
        let (key, numbers) = (p.key_id.clone(), p.numbers);
        let fresh = self.inner.defer_usage(p)?;
        if fresh {
            self.inner.metrics.usage(&numbers);
            if let Some(k) = key {
                self.inner.signals.activity(&k, numbers[4], now);
            }
        }
        Ok(Recorded {
            request_id,
            duplicate: !fresh,
        })
    }
}

/// Checks a report and turns it into a record to insert.
pub(crate) fn prepare(r: &UsageReport, now: i64) -> Result<PendingUsage> {
    for (what, v, max) in [
        ("request_id", &r.request_id, 128),
        ("key_id", &r.key_id, 64),
        ("session_id", &r.session_id, 64),
    ] {
        if let Some(v) = v {
            check_len(what, v, 1, max)?;
        }
    }
    for (what, v) in [("model", &r.model), ("model_version", &r.model_version)] {
        if let Some(v) = v {
            check_len(what, v, 0, 128)?;
        }
    }
    let numbers = [
        r.prompt_tokens,
        r.completion_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.requests.unwrap_or(1),
        r.cost_micros,
    ];
    if numbers.iter().any(|n| *n > MAX_USAGE_NUMBER) {
        return Err(Error::invalid(
            "usage numbers (tokens, requests, cost_micros) must be at most 2^53 - 1",
        ));
    }
    let empty = Map::new();
    Ok(PendingUsage {
        request_id: r
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        at: r.at.unwrap_or(now),
        key_id: r.key_id.clone(),
        session_id: r.session_id.clone(),
        agent_id: None,
        owner: None,
        model: r.model.clone().unwrap_or_default(),
        model_version: r.model_version.clone().unwrap_or_default(),
        numbers,
        metadata_json: metadata_json(r.metadata.as_ref().unwrap_or(&empty))?,
        // Real time, whatever clock the manager runs on: which process
        // reported first is a question about the world.
        reported_at_ms: crate::manager::SystemClock::now_ms().max(1),
    })
}

impl TokenManager {
    /// Totals over a time range, grouped by any of key, owner, model, session, day.
    pub fn usage_summary(&self, q: &UsageQuery) -> Result<Vec<UsageTotals>> {
        let mut groups: Vec<usize> = Vec::new();
        for g in &q.group_by {
            let i = GROUPS.iter().position(|(n, _)| n == g).ok_or_else(|| {
                Error::invalid("group_by entries must be key, owner, model, session, agent or day")
            })?;
            if !groups.contains(&i) {
                groups.push(i);
            }
        }
        self.inner.flush()?;
        self.inner.db.read(|c| c.usage().summary(q, &groups))
    }

    /// Raw usage records, oldest first, one page at a time.
    pub fn export_usage(&self, q: &UsageQuery) -> Result<Page<UsageRecord>> {
        if !q.group_by.is_empty() {
            return Err(Error::invalid("group_by applies to summaries, not exports"));
        }
        let limit = page_limit(q.limit)?;
        let after = parse_cursor(&q.cursor, 0)?;
        self.inner.flush()?;
        self.inner.db.read(|c| c.usage().export(q, limit, after))
    }
}
