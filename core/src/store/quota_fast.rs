//! The quota fast path: a consumption charged by one statement when it is
//! the simple case, rendered here for both dialects from one definition.
//!
//! The simple case of a quota row is: its window is the current one (or it
//! has none), nothing is reserved, it has no refill, and the charge keeps it
//! below the first alert level (the manager's first `alerts.quota_levels`
//! entry, parameter 8; 100 without levels). A consumption whose rows
//! are all simple needs no decision beyond "it fits", so the database can
//! check and charge them in one statement and return them as they were; the
//! manager then charges its copy the same way (`usage/quota.rs`) and the
//! answer is the general path's. Anything else (a row past its window, a
//! hold, a refill, an alert to raise, a refusal) changes nothing here and
//! goes to the general path, which decides every case.
//!
//! Two statements, both with the parameters `(key, requests, tokens, cost,
//! day start, month start, now, first alert level)`:
//! - [`one_row`]: the key's `solo` quota row (its only quota, no owner
//!   quota; kept by the schema's triggers), one UPDATE;
//! - [`all_rows`] (PostgreSQL) and [`all_rows_sqlite`]: every quota of the
//!   key and its owner checked and charged all or nothing (on PostgreSQL
//!   locked in the general path's order).
//!
//! A key the one-row statement missed goes straight to the all-rows one for
//! a while ([`Hint`]): a key with an owner quota costs one statement.

pub(crate) use super::Dialect;
use std::time::{Duration, Instant};

/// Which fast statement a consumption tries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rows {
    /// [`one_row`]: the key's solo row.
    OneRow,
    /// Every quota of the key and its owner ([`all_rows`], [`all_rows_sqlite`]).
    AllRows,
}

/// Keys whose last consumption could not take the one-row statement (no
/// solo quota row, or a denial, alert or window roll), and when: for
/// [`ALL_ROWS_HINT`] they go straight to the all-rows statement instead of
/// trying the one-row UPDATE first (a statement, on PostgreSQL a round trip,
/// saved). Only a hint: every path gives the same answer.
pub(crate) struct Hint(quick_cache::sync::Cache<String, Instant>);

/// How long a key stays sent to the all-rows statement after the one-row
/// statement missed it.
const ALL_ROWS_HINT: Duration = Duration::from_secs(1);

impl Default for Hint {
    fn default() -> Self {
        Hint(quick_cache::sync::Cache::new(4096))
    }
}

impl Hint {
    /// The statements to try for key `key_id`, in order.
    pub(crate) fn order(&self, key_id: &str) -> &'static [Rows] {
        let hinted = self
            .0
            .get(key_id)
            .is_some_and(|at| at.elapsed() < ALL_ROWS_HINT);
        if hinted {
            &[Rows::AllRows]
        } else {
            &[Rows::OneRow, Rows::AllRows]
        }
    }

    /// Notes that the one-row statement missed key `key_id`.
    pub(crate) fn missed(&self, key_id: &str) {
        self.0.insert(key_id.to_string(), Instant::now());
    }
}
use crate::model::quota::{QuotaMetric, QuotaPeriod, QuotaScope};
use std::sync::OnceLock;

impl Dialect {
    fn param(self, n: u8) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            // Amounts, window starts and now meet bigint columns; typed here
            // so the planner never guesses.
            Dialect::Postgres if n >= 2 => format!("${n}::bigint"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "greatest",
        }
    }

    fn solo(self) -> &'static str {
        match self {
            Dialect::Sqlite => "solo = 1",
            Dialect::Postgres => "solo",
        }
    }
}

/// The amount of this consumption that row `a` counts (by its metric).
fn amount(d: Dialect, a: &str) -> String {
    format!(
        "(CASE {a}metric WHEN '{}' THEN {} WHEN '{}' THEN {} ELSE {} END)",
        QuotaMetric::Requests.as_str(),
        d.param(2),
        QuotaMetric::Tokens.as_str(),
        d.param(3),
        d.param(4),
    )
}

/// True when row `a` is the simple case for a charge of `n`: current
/// window, nothing held, no refill, and `used + n` below the first alert
/// level `L` (parameter 8): `used + n < ceil(limit * L / 100)`, written
/// without overflow as `(limit / 100) * L + ((limit % 100) * L + 99) / 100`
/// (every term is at most `MAX_AMOUNT`, `L` at most 100).
fn simple(d: Dialect, a: &str, n: &str) -> String {
    format!(
        "{a}reserved = 0 AND {a}refill_amount IS NULL \
         AND ({a}period = '{none}' OR {a}window_start = CASE {a}period WHEN '{day}' THEN {p5} ELSE {p6} END) \
         AND ({n} = 0 OR {n} < ({a}limit_amount / 100) * {p8} \
             + (({a}limit_amount % 100) * {p8} + 99) / 100 - {a}used)",
        none = QuotaPeriod::None.as_str(),
        day = QuotaPeriod::Day.as_str(),
        p5 = d.param(5),
        p6 = d.param(6),
        p8 = d.param(8),
    )
}

/// The first integer at `level` percent of `limit` (the SQL's arithmetic).
#[cfg(test)]
fn first_at(limit: u64, level: u64) -> u64 {
    (limit / 100) * level + ((limit % 100) * level).div_ceil(100)
}

/// The quota columns in the order the stores read them, from row `a`.
fn columns(a: &str, used: &str) -> String {
    format!(
        "{a}seq, {a}scope, {a}subject, {a}metric, {a}period, {a}limit_amount, {used}, \
         {a}reserved, {a}window_start, {a}refill_amount, {a}refill_period, {a}alerted"
    )
}

/// Commits a PostgreSQL fast path without waiting for the WAL flush, like
/// the general path (`write_relaxed`): a CTE the statement depends on.
const PG_RELAXED: &str =
    "WITH relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) ";

fn render_one_row(d: Dialect) -> String {
    let a = match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => "q.",
    };
    let n = amount(d, a);
    let (prefix, table, gate) = match d {
        Dialect::Sqlite => ("", "quotas", ""),
        Dialect::Postgres => (
            PG_RELAXED,
            "quotas q",
            "EXISTS (SELECT 1 FROM relaxed) AND ",
        ),
    };
    format!(
        "{prefix}UPDATE {table} SET used = {a}used + {n}, \
         updated_at = CASE WHEN {n} > 0 THEN {g}({a}updated_at, {now}) ELSE {a}updated_at END \
         WHERE {gate}{a}scope = '{key}' AND {a}subject = {p1} AND {a}{solo} AND {simple} \
         RETURNING {cols}",
        g = d.greatest(),
        now = d.param(7),
        key = QuotaScope::Key.as_str(),
        p1 = d.param(1),
        solo = d.solo(),
        simple = simple(d, a, &n),
        cols = columns(a, &format!("{a}used - {n}")),
    )
}

fn render_all_rows() -> String {
    let d = Dialect::Postgres;
    format!(
        "{PG_RELAXED}, \
         k AS MATERIALIZED (SELECT a.owner FROM api_keys a \
             WHERE a.id = $1 AND a.rotated_to IS NULL AND EXISTS (SELECT 1 FROM relaxed)), \
         held AS MATERIALIZED (SELECT {cols}, {n} AS n, ({simple}) AS fits \
             FROM quotas q JOIN k ON (q.scope = 'key' AND q.subject = $1) \
                                  OR (q.scope = 'owner' AND q.subject = k.owner) \
             ORDER BY (q.scope = 'owner'), q.seq FOR UPDATE OF q), \
         verdict AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM k) \
             AND coalesce(bool_and(h.fits), true) AS ok FROM held h), \
         charged AS (UPDATE quotas q SET used = q.used + h.n, \
                 updated_at = greatest(q.updated_at, $7::bigint) \
             FROM held h, verdict v WHERE v.ok AND q.seq = h.seq AND h.n > 0 RETURNING q.seq) \
         SELECT v.ok, {out} FROM verdict v LEFT JOIN held h ON true \
         ORDER BY (h.scope = 'owner'), h.seq",
        cols = columns("q.", "q.used"),
        n = amount(d, "q."),
        simple = simple(d, "q.", &amount(d, "q.")),
        out = columns("h.", "h.used"),
    )
}

/// SQLite: every quota of the key and its owner charged by one UPDATE when
/// all of them are the simple case (the uncorrelated `NOT EXISTS` is
/// evaluated once, before any row changes) and the key is not rotated;
/// returns the rows as they were, or none (then the general path decides).
fn render_all_rows_sqlite() -> String {
    let d = Dialect::Sqlite;
    let live = "EXISTS (SELECT 1 FROM api_keys a WHERE a.id = ?1 AND a.rotated_to IS NULL)";
    let mine = |a: &str| {
        format!(
            "(({a}scope = '{key}' AND {a}subject = ?1) OR ({a}scope = '{owner}' \
             AND {a}subject = (SELECT a.owner FROM api_keys a WHERE a.id = ?1)))",
            key = QuotaScope::Key.as_str(),
            owner = QuotaScope::Owner.as_str(),
        )
    };
    let n = amount(d, "");
    format!(
        "UPDATE quotas SET used = used + {n}, \
         updated_at = CASE WHEN {n} > 0 THEN max(updated_at, ?7) ELSE updated_at END \
         WHERE {live} AND {here} \
         AND NOT EXISTS (SELECT 1 FROM quotas q WHERE {there} AND NOT ({simple})) \
         RETURNING {cols}",
        here = mine(""),
        there = mine("q."),
        simple = simple(d, "q.", &amount(d, "q.")),
        cols = columns("", &format!("used - {n}")),
    )
}

/// One UPDATE charging the key's solo quota row in the simple case; returns
/// the row as it was, or no row (then the general path decides).
pub(crate) fn one_row(d: Dialect) -> &'static str {
    static SQLITE: OnceLock<String> = OnceLock::new();
    static POSTGRES: OnceLock<String> = OnceLock::new();
    let cell = match d {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| render_one_row(d))
}

/// PostgreSQL: every quota of the key and its owner checked and charged in
/// one statement when all are the simple case. One row with `applied`
/// (false: nothing changed, the key is missing or rotated, or a row is not
/// simple) then the quota columns, or a row per quota as it was.
pub(crate) fn all_rows() -> &'static str {
    static ALL: OnceLock<String> = OnceLock::new();
    ALL.get_or_init(render_all_rows)
}

/// SQLite: every quota of the key and its owner checked and charged by one
/// UPDATE when all are the simple case; the rows as they were (in no
/// particular order), or none: then nothing changed.
pub(crate) fn all_rows_sqlite() -> &'static str {
    static ALL: OnceLock<String> = OnceLock::new();
    ALL.get_or_init(render_all_rows_sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integer form of "below the first alert level" is the same test
    /// as the alert rule's `(used + n) * 100 < limit * L` for every small
    /// case and level.
    #[test]
    fn integer_form_matches_the_alert_rule() {
        for level in [1u64, 33, 50, 80, 99, 100] {
            for limit in (0u64..=230).chain([1 << 40, (1 << 61) - 1]) {
                let at = first_at(limit, level) as i128;
                for used in [0, 1, limit / 2, limit.saturating_sub(1), limit, limit + 2] {
                    for n in [1, 2, limit / 3 + 1, limit, limit + 2] {
                        let sql = (n as i128) < at - used as i128;
                        let rule = ((used + n) as u128) * 100 < limit as u128 * level as u128;
                        assert_eq!(sql, rule, "level {level} limit {limit} used {used} n {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn statements_use_their_dialects_parameters() {
        assert!(one_row(Dialect::Sqlite).contains("?7") && !one_row(Dialect::Sqlite).contains('$'));
        assert!(one_row(Dialect::Postgres).contains("$7::bigint"));
        assert!(!one_row(Dialect::Postgres).contains('?'));
        assert!(all_rows().contains("FOR UPDATE OF q"));
    }
}
