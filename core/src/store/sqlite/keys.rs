//! Queries on `api_keys` and its usage counters (`key_usage`).

use super::Sql;
use crate::error::{Error, Result};
use crate::model::keys::{KeyFilter, KeyRecord, KeyStatus, Page};
use crate::store::key_states::{COUNTED, status_sql};
use crate::store::{Dialect, InsertKey, KeyState, KeyStore, UpdateFields};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// The selected columns, in the order `record` reads them (a macro so that
/// every query is a `&'static str` and the statement cache needs no formatting).
macro_rules! select_keys {
    ($($rest:literal)?) => {
        select_keys!(""; $($rest)?)
    };
    ($extra:literal; $($rest:literal)?) => {
        concat!(
            "SELECT id, prefix, display_prefix, owner, name, description, scopes, metadata, \
             created_at, updated_at, expires_at, enabled, revoked_at, revoked_reason, version, \
             rotated_from, rotated_to, seq, revision, rate_limits, rotation_period, model_policy",
            $extra,
            " FROM api_keys",
            $($rest)?
        )
    };
}

/// The record in `row`, its usage counters read from `key_usage`.
fn record(conn: &Connection, row: &Row<'_>, now: i64) -> rusqlite::Result<KeyRecord> {
    let mut r = KeyRecord {
        id: row.get(0)?,
        prefix: row.get(1)?,
        display_prefix: row.get(2)?,
        owner: row.get(3)?,
        name: row.get(4)?,
        description: row.get(5)?,
        scopes: super::json_col(row, 6)?,
        metadata: super::json_col(row, 7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
        expires_at: row.get(10)?,
        last_used_at: None,
        usage_count: 0,
        enabled: row.get(11)?,
        revoked_at: row.get(12)?,
        revoked_reason: row.get(13)?,
        version: row.get::<_, i64>(14)?.clamp(1, u32::MAX as i64) as u32,
        rotated_from: row.get(15)?,
        rotated_to: row.get(16)?,
        rate_limits: super::json_col(row, 19)?,
        rotation_period: row.get(20)?,
        models: Vec::new(),
        max_tokens_per_request: None,
        status: KeyStatus::Active,
    };
    let policy: crate::keys::models::ModelPolicy = super::json_col(row, 21)?;
    (r.models, r.max_tokens_per_request) = (policy.models, policy.max_tokens_per_request);
    r.status = r.status_at(now);
    // A separate statement, not a join: SQLite re-prepares a join whose
    // WHERE binds a parameter every time the bound value changes.
    if let Some((n, t)) = conn
        .prepare_cached("SELECT usage_count, last_used_at FROM key_usage WHERE seq = ?1")?
        .query_row([row.get::<_, i64>(17)?], |u| {
            Ok((u.get::<_, i64>(0)?, u.get(1)?))
        })
        .optional()?
    {
        r.usage_count = super::count(n);
        r.last_used_at = t;
    }
    Ok(r)
}

fn expect_one(n: usize) -> Result<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(Error::new(
            crate::ErrorKind::Conflict,
            "the key changed concurrently; retry",
        ))
    }
}

impl Sql<'_> {
    /// Keys in each state of [`COUNTED`] at `now`: per owner (the `limit`
    /// owners with the most keys first), or all together (one row).
    fn state_counts(&self, now: i64, by_owner: Option<u32>) -> Result<Vec<(String, [u64; 4])>> {
        let sums: Vec<String> = COUNTED
            .iter()
            .map(|s| {
                format!(
                    "coalesce(sum({}), 0)",
                    status_sql(Dialect::Sqlite, *s, "?1").0
                )
            })
            .collect();
        let sql = match by_owner {
            Some(_) => format!(
                "SELECT owner, {} FROM api_keys GROUP BY owner ORDER BY count(*) DESC, owner LIMIT ?2",
                sums.join(", ")
            ),
            None => format!("SELECT '', {} FROM api_keys", sums.join(", ")),
        };
        let mut stmt = self.0.prepare_cached(&sql)?;
        let row = |r: &Row<'_>| {
            let n = |i: usize| r.get::<_, i64>(i).map(super::count);
            Ok((r.get(0)?, [n(1)?, n(2)?, n(3)?, n(4)?]))
        };
        let rows = match by_owner {
            Some(limit) => stmt.query_map(params![now, limit], row)?,
            None => stmt.query_map(params![now], row)?,
        };
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl KeyStore for Sql<'_> {
    fn insert(&self, k: &InsertKey<'_>) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "INSERT INTO api_keys (id, key_hash, prefix, display_prefix, owner, name, description, \
         scopes, metadata, created_at, updated_at, expires_at, version, rotated_from, rate_limits, \
         rotation_period, model_policy) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            k.id,
            &k.key_hash[..],
            k.prefix,
            k.display_prefix,
            k.owner,
            k.name,
            k.description,
            k.scopes_json,
            k.metadata_json,
            k.now,
            k.expires_at,
            k.version,
            k.rotated_from,
            k.rate_limits_json,
            k.rotation_period,
            k.model_policy_json,
        ])?;
        Ok(())
    }

    fn due(
        &self,
        now: i64,
        default_period: Option<i64>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<KeyRecord>> {
        let conn = self.0;
        let mut stmt = conn.prepare_cached(select_keys!(
            " WHERE rotated_to IS NULL AND revoked_at IS NULL AND enabled = 1 \
             AND (expires_at IS NULL OR expires_at > ?1) \
             AND created_at + coalesce(rotation_period, ?2) <= ?1 \
             AND (?3 IS NULL OR created_at + coalesce(rotation_period, ?2) > ?3) \
             ORDER BY seq LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![now, default_period, since, limit], |r| {
            record(conn, r, now)
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Calls `then` with the state of the key with this hash, read from its
    /// row (found through the index on `key_hash`). The statement stays
    /// open meanwhile, so whatever `then` reads runs in the same read
    /// transaction: one snapshot, one WAL read lock (two `fcntl` calls)
    /// instead of one per statement.
    fn with_state_by_hash(
        &self,
        hash: &[u8; 32],
        then: &mut dyn FnMut(Option<KeyState>) -> Result<()>,
    ) -> Result<()> {
        let conn = self.0;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, revision, enabled, revoked_at, expires_at \
             FROM api_keys WHERE key_hash = ?1",
        )?;
        let mut rows = stmt.query([&hash[..]])?;
        let state = match rows.next()? {
            Some(r) => Some(KeyState {
                seq: r.get(0)?,
                id: r.get(1)?,
                revision: r.get(2)?,
                enabled: r.get(3)?,
                revoked_at: r.get(4)?,
                expires_at: r.get(5)?,
            }),
            None => None,
        };
        let out = then(state);
        drop(rows);
        out
    }

    fn changes_since(&self, since: i64) -> Result<(i64, super::epoch::Changes)> {
        super::epoch::changes_since(self.0, since)
    }

    /// The row and the epoch come from one statement: one snapshot.
    fn get_by_hash(&self, hash: &[u8; 32], now: i64) -> Result<Option<(KeyRecord, i64, i64)>> {
        let conn = self.0;
        Ok(conn
            .prepare_cached(select_keys!(
                ", (SELECT epoch FROM key_epoch)";
                " WHERE key_hash = ?1"
            ))?
            .query_row([&hash[..]], |r| {
                Ok((record(conn, r, now)?, r.get(18)?, r.get(22)?))
            })
            .optional()?)
    }

    /// The record in row `seq` with its revision (one search by rowid).
    fn get_by_seq(&self, seq: i64, now: i64) -> Result<Option<(KeyRecord, i64)>> {
        let conn = self.0;
        Ok(conn
            .prepare_cached(select_keys!(" WHERE seq = ?1"))?
            .query_row([seq], |r| Ok((record(conn, r, now)?, r.get(18)?)))
            .optional()?)
    }

    /// The record of key `id` with its revision.
    fn get_with_revision(&self, id: &str, now: i64) -> Result<Option<(KeyRecord, i64)>> {
        let conn = self.0;
        Ok(conn
            .prepare_cached(select_keys!(" WHERE id = ?1"))?
            .query_row([id], |r| Ok((record(conn, r, now)?, r.get(18)?)))
            .optional()?)
    }

    fn list(
        &self,
        filter: &KeyFilter,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<KeyRecord>> {
        let conn = self.0;
        let mut sql = String::from(select_keys!(" WHERE seq > ?"));
        let mut args: Vec<SqlValue> = vec![after_seq.into()];
        if let Some(owner) = &filter.owner {
            sql.push_str(" AND owner = ?");
            args.push(owner.clone().into());
        }
        if let Some(prefix) = &filter.prefix {
            sql.push_str(" AND substr(display_prefix, 1, ?) = ?");
            args.push((prefix.chars().count() as i64).into());
            args.push(prefix.clone().into());
        }
        if let Some(status) = filter.status {
            let (cond, uses_now) = status_sql(Dialect::Sqlite, status, "?");
            sql.push_str(" AND ");
            sql.push_str(&cond);
            if uses_now {
                args.push(now.into());
            }
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        super::paged(conn, &sql, args, limit, after_seq, 17, |row| {
            Ok(record(conn, row, now)?)
        })
    }

    fn update(&self, id: &str, u: &UpdateFields<'_>, now: i64) -> Result<()> {
        let conn = self.0;
        let n = conn
            .prepare_cached(
                "UPDATE api_keys SET \
               name = coalesce(?2, name), \
               description = coalesce(?3, description), \
               scopes = coalesce(?4, scopes), \
               metadata = coalesce(?5, metadata), \
               expires_at = CASE WHEN ?6 THEN ?7 ELSE expires_at END, \
               updated_at = max(updated_at, ?8), \
               rate_limits = coalesce(?9, rate_limits), \
               rotation_period = CASE WHEN ?10 THEN ?11 ELSE rotation_period END, \
               model_policy = coalesce(?12, model_policy) \
             WHERE id = ?1",
            )?
            .execute(params![
                id,
                u.name,
                u.description,
                u.scopes_json,
                u.metadata_json,
                u.expires_at.is_some(),
                u.expires_at.flatten(),
                now,
                u.rate_limits_json,
                u.rotation_period.is_some(),
                u.rotation_period.flatten(),
                u.model_policy_json,
            ])?;
        expect_one(n)
    }

    fn set_enabled(&self, id: &str, enabled: bool, now: i64) -> Result<()> {
        let conn = self.0;
        let n = conn
            .prepare_cached(
                "UPDATE api_keys SET enabled = ?2, updated_at = max(updated_at, ?3) WHERE id = ?1",
            )?
            .execute(params![id, enabled, now])?;
        expect_one(n)
    }

    fn revoke(&self, id: &str, reason: Option<&str>, now: i64) -> Result<()> {
        let conn = self.0;
        let n = conn
            .prepare_cached(
                "UPDATE api_keys SET revoked_at = ?3, revoked_reason = ?2, \
             updated_at = max(updated_at, ?3) WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, reason, now])?;
        expect_one(n)
    }

    /// Marks `old_id` as replaced by `new_id`, ending it at `old_expires_at`.
    fn link_rotation(
        &self,
        old_id: &str,
        new_id: &str,
        old_expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        let conn = self.0;
        let n = conn
            .prepare_cached(
                "UPDATE api_keys SET rotated_to = ?2, expires_at = ?3, \
             updated_at = max(updated_at, ?4) WHERE id = ?1 AND rotated_to IS NULL",
            )?
            .execute(params![old_id, new_id, old_expires_at, now])?;
        expect_one(n)
    }

    fn delete(&self, id: &str, now: i64) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "INSERT INTO key_tombstones (key_hash, deleted_at) \
                 SELECT key_hash, ?2 FROM api_keys WHERE id = ?1 ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, now])?;
        let deleted = conn
            .prepare_cached("DELETE FROM api_keys WHERE id = ?1")?
            .execute([id])?;
        expect_one(deleted)
    }

    fn counts_by_owner(&self, now: i64, limit: u32) -> Result<Vec<(String, [u64; 4])>> {
        self.state_counts(now, Some(limit))
    }

    fn counts(&self, now: i64) -> Result<[u64; 4]> {
        Ok(self
            .state_counts(now, None)?
            .pop()
            .map_or([0; 4], |(_, n)| n))
    }

    fn owner_policy(&self, owner: &str) -> Result<Option<(String, i64)>> {
        Ok(self
            .0
            .prepare_cached("SELECT model_policy, updated_at FROM owner_policies WHERE owner = ?1")?
            .query_row([owner], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn owner_policy_at(&self, owner: &str) -> Result<(Option<String>, i64)> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT (SELECT model_policy FROM owner_policies WHERE owner = ?1), \
                 (SELECT epoch FROM key_epoch)",
            )?
            .query_row([owner], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    fn set_owner_policy(&self, owner: &str, policy_json: &str, now: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO owner_policies (owner, model_policy, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (owner) DO UPDATE SET model_policy = excluded.model_policy, \
                 updated_at = max(updated_at, excluded.updated_at)",
            )?
            .execute(params![owner, policy_json, now])?;
        Ok(())
    }

    fn delete_owner_policy(&self, owner: &str) -> Result<bool> {
        let n = self
            .0
            .prepare_cached("DELETE FROM owner_policies WHERE owner = ?1")?
            .execute([owner])?;
        Ok(n == 1)
    }

    fn tombstoned(&self, hash: &[u8; 32]) -> Result<bool> {
        Ok(self
            .0
            .prepare_cached("SELECT 1 FROM key_tombstones WHERE key_hash = ?1")?
            .query_row([&hash[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn lift_tombstone(&self, hash: &[u8; 32]) -> Result<bool> {
        let conn = self.0;
        let n = conn
            .prepare_cached("DELETE FROM key_tombstones WHERE key_hash = ?1")?
            .execute([&hash[..]])?;
        if n > 0 {
            conn.prepare_cached("DELETE FROM legacy_ids WHERE key_hash = ?1")?
                .execute([&hash[..]])?;
        }
        Ok(n > 0)
    }

    fn claim_legacy_id(&self, legacy_id: &str, hash: &[u8; 32], now: i64) -> Result<bool> {
        let n = self
            .0
            .prepare_cached(
                "INSERT INTO legacy_ids (legacy_id, key_hash, imported_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![legacy_id, &hash[..], now])?;
        Ok(n == 1)
    }

    /// Adds `count` successful uses; `last_used_at` only moves forward. The
    /// counters' row is created by the first use (a new key writes none), and
    /// never for a key deleted meanwhile.
    fn add_usage(&self, id: &str, count: u64, last_used: i64) -> Result<()> {
        let conn = self.0;
        conn.prepare_cached(
            "INSERT INTO key_usage (seq, usage_count, last_used_at) \
         SELECT seq, ?2, ?3 FROM api_keys WHERE id = ?1 \
         ON CONFLICT (seq) DO UPDATE SET usage_count = usage_count + excluded.usage_count, \
         last_used_at = max(coalesce(last_used_at, excluded.last_used_at), excluded.last_used_at)",
        )?
        .execute(params![id, count as i64, last_used])?;
        Ok(())
    }
}
