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
pub(crate) mod rate_limits;
pub mod stats;

pub use crate::model::usage::*;

use crate::error::{Error, Result};
use crate::keys::{Page, check_len, metadata_json, page_limit, parse_cursor};
use crate::manager::TokenManager;
use serde_json::Map;

impl TokenManager {
    /// Records usage against a key and/or a session (buffered; see the module
    /// docs). Recording the same `request_id` twice counts it once.
    pub fn record_usage(&self, r: &UsageReport) -> Result<Recorded> {
        if r.key_id.is_none() && r.session_id.is_none() {
            return Err(Error::invalid("usage needs a key_id or a session_id"));
        }
        let now = self.inner().now();
        let p = prepare(r, now)?;
        let request_id = p.request_id.clone();
        if !self.inner().usage_pending(&request_id)
            && self.inner().db.read(|c| c.usage().exists(&request_id))?
        {
            return Ok(Recorded {
                request_id,
                duplicate: true,
            });
        }
        let (key, numbers) = (p.key_id.clone(), p.numbers);
        let fresh = self.inner().defer_usage(p)?;
        if fresh {
            self.inner().metrics.usage(&numbers);
            if let Some(k) = key {
                self.inner().signals.activity(&k, numbers[4], now);
                let tokens = numbers[0].saturating_add(numbers[1]);
                if let Some(e) = self.inner().alerts.spend(&k, tokens, numbers[5], now) {
                    self.raise_spend_spike(&k, e, now);
                }
            }
        }
        Ok(Recorded {
            request_id,
            duplicate: !fresh,
        })
    }
}

impl TokenManager {
    /// Raises a spend spike this process saw, once across every process
    /// sharing the store (or Redis): the first to claim the key's minute
    /// raises it. A store that cannot answer loses no alert: it is raised.
    fn raise_spend_spike(&self, key_id: &str, e: crate::signals::Event, now: i64) {
        let minute = now.div_euclid(60);
        let claimed = self
            .claim_jti(&format!("spend_spike:{key_id}:{minute}"), (minute + 2) * 60)
            .unwrap_or(true);
        if claimed {
            self.inner().signals.push(e);
        }
    }
}

/// The request id a client sent in a header, if it is one a usage report
/// takes as is: 1–128 visible ASCII characters. Anything else (empty, too
/// long, spaces, control or non-ASCII characters) is a client's garbage:
/// `None`, and the report counts as a new request. The adapters' one rule.
pub fn request_id_from_header(value: &str) -> Option<&str> {
    let usable = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    usable.then_some(value)
}

/// A usage query's filter values (see [`crate::keys::check_filters`]).
fn check_query(q: &UsageQuery) -> Result<()> {
    crate::keys::check_filters(&[
        ("key_id", q.key_id.as_deref()),
        ("owner", q.owner.as_deref()),
        ("model", q.model.as_deref()),
        ("session_id", q.session_id.as_deref()),
        ("agent_id", q.agent_id.as_deref()),
    ])
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
    // A time the summaries can show: PostgreSQL's day grouping failed for
    // every caller once one record held a time past its timestamp range.
    if let Some(at) = r.at
        && !(0..=crate::clock::MAX_TIME).contains(&at)
    {
        return Err(Error::invalid(format!(
            "at must be a Unix time from 0 to {} (9999-12-31T23:59:59Z)",
            crate::clock::MAX_TIME
        )));
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
        reported_at_ms: crate::clock::SystemClock::now_ms().max(1),
    })
}

impl TokenManager {
    /// Totals over a time range, grouped by any of key, owner, model,
    /// session, agent and the time buckets day and hour (UTC).
    pub fn usage_summary(&self, q: &UsageQuery) -> Result<Vec<UsageTotals>> {
        check_query(q)?;
        let mut groups: Vec<usize> = Vec::new();
        for g in &q.group_by {
            let i = GROUPS.iter().position(|n| n == g).ok_or_else(|| {
                Error::invalid(
                    "group_by entries must be key, owner, model, session, agent, day or hour",
                )
            })?;
            if !groups.contains(&i) {
                groups.push(i);
            }
        }
        self.inner().flush()?;
        self.inner().db.read(|c| c.usage().summary(q, &groups))
    }

    /// Raw usage records, oldest first, one page at a time.
    pub fn export_usage(&self, q: &UsageQuery) -> Result<Page<UsageRecord>> {
        if !q.group_by.is_empty() {
            return Err(Error::invalid("group_by applies to summaries, not exports"));
        }
        check_query(q)?;
        let limit = page_limit(q.limit)?;
        let after = parse_cursor(&q.cursor, 0)?;
        self.inner().flush()?;
        self.inner().db.read(|c| c.usage().export(q, limit, after))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_from_headers() {
        use super::request_id_from_header as id;
        assert_eq!(id("req-1"), Some("req-1"));
        assert_eq!(id(&"x".repeat(128)).map(str::len), Some(128));
        for bad in ["", "a b", "tab\t", "é", &"x".repeat(129)] {
            assert_eq!(id(bad), None, "{bad:?}");
        }
    }
}
