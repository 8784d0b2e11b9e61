//! `TokenManager::stats`: the operator's one-screen view — keys by state and
//! owner, use over a recent window, the heaviest keys, the quotas closest to
//! their limits (`irontoken stats`).

use crate::error::{Error, Result};
use crate::manager::TokenManager;
use crate::model::quota::Quota;
use crate::model::usage::{UsageQuery, UsageTotals};
use serde::Serialize;

/// Keys in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KeyCounts {
    /// Every key with a record (deleted keys are gone).
    pub total: u64,
    /// Usable now.
    pub active: u64,
    /// Disabled, not revoked or expired.
    pub disabled: u64,
    /// Revoked.
    pub revoked: u64,
    /// Past their expiry, not revoked.
    pub expired: u64,
}

impl KeyCounts {
    fn of([active, disabled, revoked, expired]: [u64; 4]) -> KeyCounts {
        KeyCounts {
            total: active + disabled + revoked + expired,
            active,
            disabled,
            revoked,
            expired,
        }
    }
}

/// One owner's keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerKeys {
    /// The owner.
    pub owner: String,
    /// Their keys in each state.
    pub keys: KeyCounts,
}

/// A quota and how much of it is spent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaBurn {
    /// The quota's state now.
    #[serde(flatten)]
    pub quota: Quota,
    /// (used + reserved) / limit, 0.0–1.0 and above when over.
    pub burn: f64,
}

/// What [`TokenManager::stats`] returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// When the figures were read (Unix seconds).
    pub at: i64,
    /// Start of the usage window (Unix seconds).
    pub since: i64,
    /// Every key, by state.
    pub keys: KeyCounts,
    /// The owners with the most keys, most first.
    pub owners: Vec<OwnerKeys>,
    /// Use in the window, all keys together.
    pub usage: UsageTotals,
    /// The keys with the most requests in the window, most first.
    pub top_keys: Vec<UsageTotals>,
    /// The quotas most spent in their current window, most first.
    pub quotas: Vec<QuotaBurn>,
}

/// Quotas read to find the most spent (the store orders them first).
const QUOTAS_READ: u32 = 1000;

impl TokenManager {
    /// Keys by state and owner, use over the last `window_seconds`
    /// (1 s – 366 days), and the `top` (1–100) owners, keys and quotas.
    pub fn stats(&self, window_seconds: i64, top: u32) -> Result<Stats> {
        if !(1..=366 * 86_400).contains(&window_seconds) {
            return Err(Error::invalid(
                "window_seconds must be between 1 and 366 days",
            ));
        }
        if !(1..=100).contains(&top) {
            return Err(Error::invalid("top must be between 1 and 100"));
        }
        let at = self.now();
        let since = at - window_seconds;
        let (keys, owners, mut rows) = self.inner().db.read_snapshot(|c| {
            Ok((
                c.keys().counts(at)?,
                c.keys().counts_by_owner(at, top)?,
                c.quota().most_spent(QUOTAS_READ)?,
            ))
        })?;
        let window = |group_by: Vec<String>| UsageQuery {
            since: Some(since),
            group_by,
            ..Default::default()
        };
        let usage = self
            .usage_summary(&window(Vec::new()))?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut top_keys = self.usage_summary(&window(vec!["key".into()]))?;
        top_keys.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.key_id.cmp(&b.key_id))
        });
        top_keys.truncate(top as usize);
        // The store orders by the stored figures; a window that has passed
        // starts over when rolled, so the order is settled here.
        let mut quotas: Vec<QuotaBurn> = rows
            .iter_mut()
            .map(|r| {
                r.roll(at);
                let quota = r.view();
                let burn = (quota.used + quota.reserved) as f64 / quota.limit.max(1) as f64;
                QuotaBurn { quota, burn }
            })
            .filter(|q| q.burn > 0.0)
            .collect();
        quotas.sort_by(|a, b| b.burn.total_cmp(&a.burn));
        quotas.truncate(top as usize);
        Ok(Stats {
            at,
            since,
            keys: KeyCounts::of(keys),
            owners: owners
                .into_iter()
                .map(|(owner, n)| OwnerKeys {
                    owner,
                    keys: KeyCounts::of(n),
                })
                .collect(),
            usage,
            top_keys,
            quotas,
        })
    }
}
