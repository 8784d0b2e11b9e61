//! Queries on `meta`: facts about the database itself.

use crate::error::Result;
use rusqlite::{Connection, OptionalExtension, params};

/// The value stored under `name`, if any.
pub(crate) fn get(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
        .optional()?)
}

/// Stores `value` under `name` unless a value is there already; true if stored.
pub(crate) fn put_once(conn: &Connection, name: &str, value: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute(params![name, value])?
        == 1)
}
