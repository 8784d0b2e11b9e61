//! Queries on `meta`: facts about the database itself.

use super::Sql;
use crate::error::Result;
use crate::store::MetaStore;
use rusqlite::{OptionalExtension, params};

impl MetaStore for Sql<'_> {
    /// The value stored under `name`, if any.
    fn get(&self, name: &str) -> Result<Option<String>> {
        let conn = self.0;
        Ok(conn
            .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?)
    }

    /// Stores `value` under `name` unless a value is there already; true if stored.
    fn put_once(&self, name: &str, value: &str) -> Result<bool> {
        let conn = self.0;
        Ok(conn
            .prepare_cached(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![name, value])?
            == 1)
    }
}
