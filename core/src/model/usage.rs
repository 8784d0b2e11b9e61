//! Usage as data: reports, records, queries and totals.

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

/// The answer of [`TokenManager::record_usage`](crate::TokenManager::record_usage).
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
    /// Summary grouping: any of `key`, `owner`, `model`, `session`, `agent`,
    /// and the time buckets `day` and `hour` (UTC), in the order given;
    /// none = one grand total.
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
    /// The hour's start, `YYYY-MM-DDTHH:00:00Z` (UTC), when grouped by hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    /// Usage records summed.
    pub records: u64,
    /// Requests.
    pub requests: u128,
    /// Prompt tokens.
    pub prompt_tokens: u128,
    /// Completion tokens.
    pub completion_tokens: u128,
    /// Cache-read tokens.
    pub cache_read_tokens: u128,
    /// Cache-write tokens.
    pub cache_write_tokens: u128,
    /// prompt + completion tokens.
    pub total_tokens: u128,
    /// Cost in micro-units.
    pub cost_micros: u128,
}

impl UsageTotals {
    /// One summary row: the values of the [`GROUPS`] at `groups` (in that
    /// order; NULL reads as ""), the record count and the sums in
    /// [`SUMMED`] order.
    pub(crate) fn from_row(
        groups: &[usize],
        values: impl IntoIterator<Item = Option<String>>,
        records: u64,
        sums: [u128; 6],
    ) -> UsageTotals {
        let mut t = UsageTotals::default();
        for (&g, v) in groups.iter().zip(values) {
            let v = Some(v.unwrap_or_default());
            match GROUPS[g] {
                "key" => t.key_id = v,
                "owner" => t.owner = v,
                "model" => t.model = v,
                "session" => t.session_id = v,
                "agent" => t.agent_id = v,
                "hour" => t.hour = v,
                _ => t.day = v,
            }
        }
        t.records = records;
        [
            t.requests,
            t.prompt_tokens,
            t.completion_tokens,
            t.cache_read_tokens,
            t.cache_write_tokens,
            t.cost_micros,
        ] = sums;
        t.total_tokens = t.prompt_tokens.saturating_add(t.completion_tokens);
        t
    }
}

/// The summed columns of a summary, in the order `UsageTotals::from_row` takes them.
pub(crate) const SUMMED: [&str; 6] = [
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
];

/// The names a summary may group by.
pub(crate) const GROUPS: [&str; 7] = ["key", "owner", "model", "session", "agent", "day", "hour"];

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
