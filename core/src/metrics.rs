//! Counters of one manager, rendered in the Prometheus text exposition
//! format by [`crate::TokenManager::metrics`]. Relaxed atomics: a counter
//! increment costs a few nanoseconds and never takes a lock.

use crate::model::keys::VerifyReason;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters (per manager, since it was opened).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    verifications: [AtomicU64; VerifyReason::ALL.len()],
    pub keys_created: AtomicU64,
    pub keys_revoked: AtomicU64,
    pub jwt_issued: AtomicU64,
    pub exchanges: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_errors: AtomicU64,
    pub sessions_created: AtomicU64,
    pub token_pairs_issued: AtomicU64,
    pub refreshes: AtomicU64,
    pub refresh_reuse: AtomicU64,
    pub rate_limit_denials: AtomicU64,
    pub rate_limit_store_errors: AtomicU64,
    pub rate_limit_fail_open: AtomicU64,
    pub quota_denials: AtomicU64,
    pub quota_grants: AtomicU64,
    /// prompt, completion, cache-read, cache-write tokens, requests, cost.
    usage: [AtomicU64; 6],
    usage_records: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn verification(&self, reason: VerifyReason) {
        bump(&self.verifications[reason.number() as usize]);
    }

    pub fn inc(c: &AtomicU64) {
        bump(c);
    }

    /// A usage record accepted: its numbers in `UsageRecord` order
    /// (prompt, completion, cache-read, cache-write tokens, requests, cost).
    pub fn usage(&self, numbers: &[u64; 6]) {
        bump(&self.usage_records);
        for (c, n) in self.usage.iter().zip(numbers) {
            c.fetch_add(*n, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition; `pending` is the write-behind buffer size.
    pub fn render(&self, pending: usize) -> String {
        let mut out = String::with_capacity(1024);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP irontoken_key_verifications_total API key verifications by outcome."
        );
        let _ = writeln!(out, "# TYPE irontoken_key_verifications_total counter");
        for r in VerifyReason::ALL {
            let _ = writeln!(
                out,
                "irontoken_key_verifications_total{{reason=\"{}\"}} {}",
                r.code(),
                get(&self.verifications[r.number() as usize])
            );
        }
        for (name, help, c) in [
            (
                "irontoken_keys_created_total",
                "API keys generated (including rotations).",
                &self.keys_created,
            ),
            (
                "irontoken_keys_revoked_total",
                "API keys revoked.",
                &self.keys_revoked,
            ),
            (
                "irontoken_jwt_issued_total",
                "JWTs issued with managed signing keys.",
                &self.jwt_issued,
            ),
            (
                "irontoken_token_exchanges_total",
                "API keys exchanged for access tokens.",
                &self.exchanges,
            ),
            (
                "irontoken_flushes_total",
                "Write-behind flushes that committed.",
                &self.flushes,
            ),
            (
                "irontoken_flush_errors_total",
                "Write-behind flushes that failed (data kept, retried).",
                &self.flush_errors,
            ),
            (
                "irontoken_sessions_created_total",
                "Sessions created.",
                &self.sessions_created,
            ),
            (
                "irontoken_token_pairs_issued_total",
                "Refresh-token families started (issue_token_pair).",
                &self.token_pairs_issued,
            ),
            (
                "irontoken_token_refreshes_total",
                "Refresh tokens exchanged for a new pair.",
                &self.refreshes,
            ),
            (
                "irontoken_refresh_token_reuse_total",
                "Spent refresh tokens presented again (each revoked its family).",
                &self.refresh_reuse,
            ),
            (
                "irontoken_rate_limit_denials_total",
                "Requests refused by a rate limit.",
                &self.rate_limit_denials,
            ),
            (
                "irontoken_rate_limit_store_errors_total",
                "Rate-limit checks whose shared store (Redis, the database) failed.",
                &self.rate_limit_store_errors,
            ),
            (
                "irontoken_rate_limit_fail_open_total",
                "Requests allowed without a check because the store failed (fail-open).",
                &self.rate_limit_fail_open,
            ),
            (
                "irontoken_quota_denials_total",
                "Quota consumptions or reservations refused.",
                &self.quota_denials,
            ),
            (
                "irontoken_quota_grants_total",
                "Quota consumptions or reservations granted.",
                &self.quota_grants,
            ),
            (
                "irontoken_usage_records_total",
                "Usage records accepted (duplicates not counted).",
                &self.usage_records,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", get(c));
        }
        let _ = writeln!(
            out,
            "# HELP irontoken_usage_tokens_total LLM tokens recorded, by kind."
        );
        let _ = writeln!(out, "# TYPE irontoken_usage_tokens_total counter");
        for (i, kind) in ["prompt", "completion", "cache_read", "cache_write"]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                out,
                "irontoken_usage_tokens_total{{kind=\"{kind}\"}} {}",
                get(&self.usage[i])
            );
        }
        for (name, help, i) in [
            (
                "irontoken_usage_requests_total",
                "Requests recorded in usage records.",
                4,
            ),
            (
                "irontoken_usage_cost_micros_total",
                "Cost recorded, in micro-units of the currency.",
                5,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", get(&self.usage[i]));
        }
        let _ = writeln!(
            out,
            "# HELP irontoken_pending_entries Usage counters and audit entries waiting to be written."
        );
        let _ = writeln!(out, "# TYPE irontoken_pending_entries gauge");
        let _ = writeln!(out, "irontoken_pending_entries {pending}");
        out
    }
}
