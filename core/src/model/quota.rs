//! Quotas as data: metrics, periods, scopes, specs, decisions, reservations.

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaMetric {
    /// Requests.
    Requests,
    /// LLM tokens.
    Tokens,
    /// Cost in micro-units.
    Cost,
}

/// The window after which a quota starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
    /// Never: a credit balance.
    None,
}

/// Whom a quota applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// One API key (subject = key id).
    #[default]
    Key,
    /// Every key of an owner together (subject = owner).
    Owner,
}

macro_rules! names {
    ($t:ty, $what:literal { $($v:ident => $s:literal),* }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            /// A name read from the database (unknown: `STORAGE`).
            pub(crate) fn parse(s: &str) -> Result<$t> {
                s.parse().map_err(|_| {
                    Error::new(ErrorKind::Storage, format!("unknown stored value {s:?}"))
                })
            }
        }
        impl std::str::FromStr for $t {
            type Err = Error;
            /// Parses the name (unknown: `INVALID_ARGUMENT` listing the names).
            fn from_str(s: &str) -> Result<$t> {
                match s {
                    $($s => Ok(<$t>::$v),)*
                    _ => Err(Error::invalid(concat!($what, " must be one of", $(" ", $s),*))),
                }
            }
        }
    };
}
names!(QuotaMetric, "metric" { Requests => "requests", Tokens => "tokens", Cost => "cost" });
names!(QuotaPeriod, "period" { Day => "day", Month => "month", None => "none" });
names!(QuotaScope, "scope" { Key => "key", Owner => "owner" });

/// A quota to create or change (identified by scope, subject, metric, period).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// `key` (default) or `owner`.
    #[serde(default)]
    pub scope: QuotaScope,
    /// Key id or owner.
    pub subject: String,
    /// What is counted.
    pub metric: QuotaMetric,
    /// The window.
    pub period: QuotaPeriod,
    /// The limit per window (for a balance: the credits granted so far).
    pub limit: u64,
    /// Balance refill: raise the remaining balance to this amount...
    #[serde(default)]
    pub refill_amount: Option<u64>,
    /// ...at every `day` or `month` boundary (balances only).
    #[serde(default)]
    pub refill_period: Option<QuotaPeriod>,
    /// Who performs the action, for the audit trail.
    #[serde(default)]
    pub actor: Option<String>,
}

/// Names one quota in the bindings' JSON requests (delete, add credits):
/// `period` defaults to `none` (a balance), `amount` to 0.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSelector {
    /// `key` (default) or `owner`.
    #[serde(default)]
    pub scope: QuotaScope,
    /// Key id or owner.
    pub subject: String,
    /// What is counted.
    pub metric: QuotaMetric,
    /// The window (default `none`).
    #[serde(default = "no_period")]
    pub period: QuotaPeriod,
    /// Credits to add (add_credits only).
    #[serde(default)]
    pub amount: u64,
    /// Who performs the action, for the audit trail.
    #[serde(default)]
    pub actor: Option<String>,
}

fn no_period() -> QuotaPeriod {
    QuotaPeriod::None
}

/// A quota and its state at the time of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    /// `key` or `owner`.
    pub scope: QuotaScope,
    /// Key id or owner.
    pub subject: String,
    /// What is counted.
    pub metric: QuotaMetric,
    /// The window.
    pub period: QuotaPeriod,
    /// Limit of the window (a balance: credits granted so far).
    pub limit: u64,
    /// Consumed in this window.
    pub used: u64,
    /// Held by open reservations.
    pub reserved: u64,
    /// limit − used − reserved, never below 0.
    pub remaining: u64,
    /// Start of the current window (Unix seconds).
    pub window_start: i64,
    /// When the window starts over (or the balance refills); none for a plain balance.
    pub reset_at: Option<i64>,
    /// Balance refill amount.
    pub refill_amount: Option<u64>,
    /// Balance refill period.
    pub refill_period: Option<QuotaPeriod>,
}

/// Amounts to consume, reserve or settle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Amounts {
    /// Requests.
    pub requests: u64,
    /// LLM tokens.
    pub tokens: u64,
    /// Cost in micro-units.
    pub cost_micros: u64,
}

impl Amounts {
    pub(crate) fn of(&self, m: QuotaMetric) -> u64 {
        match m {
            QuotaMetric::Requests => self.requests,
            QuotaMetric::Tokens => self.tokens,
            QuotaMetric::Cost => self.cost_micros,
        }
    }

    /// Requests, tokens and cost as SQL integers (a database holds at most
    /// `i64::MAX`; larger amounts never fit a limit anyway).
    pub(crate) fn as_sql(&self) -> [i64; 3] {
        [self.requests, self.tokens, self.cost_micros].map(|v| v.min(i64::MAX as u64) as i64)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if [self.requests, self.tokens, self.cost_micros]
            .iter()
            .any(|n| *n > MAX_AMOUNT)
        {
            return Err(Error::invalid("amounts must be below 2^61"));
        }
        Ok(())
    }
}

/// The answer of a quota check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaDecision {
    /// True if every quota had room (and, unless peeked, was consumed).
    pub allowed: bool,
    /// Every quota of the key and its owner, after the call.
    pub quotas: Vec<Quota>,
    /// The first quota without room, when denied.
    pub denied_by: Option<Quota>,
}

/// A hold on quota amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// UUID.
    pub id: String,
    /// The key it was taken for.
    pub key_id: String,
    /// The amounts held.
    pub amounts: Amounts,
    /// `held`, `settled`, `released` or `expired`.
    pub status: String,
    /// When it was taken.
    pub created_at: i64,
    /// When an unsettled hold is given back.
    pub expires_at: i64,
}

/// The answer of [`TokenManager::reserve_quota`](crate::TokenManager::reserve_quota).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reserved {
    /// The hold, when granted.
    pub reservation: Option<Reservation>,
    /// The quota check.
    pub decision: QuotaDecision,
}

pub(crate) const MAX_AMOUNT: u64 = i64::MAX as u64 / 4;

/// A quota row as stored.
#[derive(Debug, Clone)]
pub(crate) struct QuotaRow {
    pub seq: i64,
    pub scope: QuotaScope,
    pub subject: String,
    pub metric: QuotaMetric,
    pub period: QuotaPeriod,
    pub limit: u64,
    pub used: u64,
    pub reserved: u64,
    pub window_start: i64,
    pub refill: Option<(u64, QuotaPeriod)>,
    pub alerted: i64,
    pub dirty: bool,
}
