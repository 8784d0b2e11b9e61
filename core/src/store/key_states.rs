//! Which rows are in which key state, as SQL: the condition a list filter
//! and the state counts use, rendered for each dialect from one definition
//! (the precedence of `KeyRecord::status`: revoked, then expired, then
//! disabled).

use super::Dialect;
use crate::model::keys::KeyStatus;

/// The order of the counts `counts` and `counts_by_owner` give.
pub(crate) const COUNTED: [KeyStatus; 4] = [
    KeyStatus::Active,
    KeyStatus::Disabled,
    KeyStatus::Revoked,
    KeyStatus::Expired,
];

/// The SQL condition for keys in `status` at the time `now` names (a
/// parameter such as `?1` or `$1`), and whether it uses it.
pub(crate) fn status_sql(d: Dialect, status: KeyStatus, now: &str) -> (String, bool) {
    let (on, off) = match d {
        Dialect::Sqlite => ("enabled = 1", "enabled = 0"),
        Dialect::Postgres => ("enabled", "NOT enabled"),
    };
    let live = format!("(expires_at IS NULL OR expires_at > {now})");
    match status {
        KeyStatus::Active => (format!("revoked_at IS NULL AND {on} AND {live}"), true),
        KeyStatus::Disabled => (format!("revoked_at IS NULL AND {off} AND {live}"), true),
        KeyStatus::Revoked => ("revoked_at IS NOT NULL".into(), false),
        KeyStatus::Expired => (
            format!("revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= {now}"),
            true,
        ),
    }
}
