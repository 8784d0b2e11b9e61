//! Named values set once (the master-key check, the legacy flag).

use super::Pg;
use crate::error::Result;
use crate::store::MetaStore;

impl MetaStore for Pg<'_> {
    fn get(&self, name: &str) -> Result<Option<String>> {
        self.query_opt("SELECT value FROM meta WHERE name = $1", &[&name])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn put_once(&self, name: &str, value: &str) -> Result<bool> {
        Ok(self.execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&name, &value],
        )? == 1)
    }
}
