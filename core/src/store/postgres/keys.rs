//! API keys in PostgreSQL: records, state, tombstones, legacy ids, counters.

use super::Pg;
use crate::error::Result;
use crate::model::keys::{KeyFilter, KeyRecord, Page};
use crate::store::key_states::{COUNTED, status_sql};
use crate::store::{Dialect, InsertKey, KeyState, KeyStore, UpdateFields};

use super::queries::*;

impl Pg<'_> {
    /// Keys in each state of [`COUNTED`] at `now`: per owner (the `limit`
    /// owners with the most keys first), or all together (one row).
    fn state_counts(&self, now: i64, by_owner: Option<u32>) -> Result<Vec<(String, [u64; 4])>> {
        let counts: Vec<String> = COUNTED
            .iter()
            .map(|s| {
                format!(
                    "count(*) FILTER (WHERE {})",
                    status_sql(Dialect::Postgres, *s, "$1").0
                )
            })
            .collect();
        let counts = counts.join(", ");
        let rows = match by_owner {
            Some(limit) => self.query(
                &format!(
                    "SELECT owner, {counts} FROM api_keys GROUP BY owner \
                     ORDER BY count(*) DESC, owner LIMIT $2"
                ),
                &[&now, &(limit as i64)],
            )?,
            None => self.query(&format!("SELECT '', {counts} FROM api_keys"), &[&now])?,
        };
        rows.iter()
            .map(|r| {
                let n = |i: usize| -> Result<u64> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
                Ok((r.try_get(0)?, [n(1)?, n(2)?, n(3)?, n(4)?]))
            })
            .collect()
    }
}

impl KeyStore for Pg<'_> {
    fn insert(&self, k: &InsertKey<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO api_keys (id, key_hash, prefix, display_prefix, owner, name, description, \
             scopes, metadata, created_at, updated_at, expires_at, version, rotated_from, rate_limits, \
             rotation_period, model_policy) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15, $16)",
            &[
                &k.id,
                &&k.key_hash[..],
                &k.prefix,
                &k.display_prefix,
                &k.owner,
                &k.name,
                &k.description,
                &k.scopes_json,
                &k.metadata_json,
                &k.now,
                &k.expires_at,
                &(k.version as i64),
                &k.rotated_from,
                &k.rate_limits_json,
                &k.rotation_period,
                &k.model_policy_json,
            ],
        )?;
        self.key_changed(*k.key_hash);
        Ok(())
    }

    fn due(
        &self,
        now: i64,
        default_period: Option<i64>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<KeyRecord>> {
        let sql = format!(
            "{KEY_COLUMNS} WHERE k.rotated_to IS NULL AND k.revoked_at IS NULL AND k.enabled \
             AND (k.expires_at IS NULL OR k.expires_at > $1) \
             AND k.created_at + coalesce(k.rotation_period, $2::bigint) <= $1 \
             AND ($3::bigint IS NULL OR k.created_at + coalesce(k.rotation_period, $2::bigint) > $3) \
             ORDER BY k.seq LIMIT $4"
        );
        self.query(&sql, &[&now, &default_period, &since, &(limit as i64)])?
            .iter()
            .map(|r| key_record(r, now))
            .collect()
    }

    fn with_state_by_hash(
        &self,
        hash: &[u8; 32],
        then: &mut dyn FnMut(Option<KeyState>) -> Result<()>,
    ) -> Result<()> {
        let state = self.key_state(hash, || {
            let row = self.query_opt(
                "SELECT seq, id, revision, enabled, revoked_at, expires_at FROM api_keys \
                 WHERE key_hash = $1",
                &[&&hash[..]],
            )?;
            row.map(|r| {
                Ok(KeyState {
                    seq: r.try_get(0)?,
                    id: r.try_get(1)?,
                    revision: r.try_get(2)?,
                    enabled: r.try_get(3)?,
                    revoked_at: r.try_get(4)?,
                    expires_at: r.try_get(5)?,
                })
            })
            .transpose()
        })?;
        then(state)
    }

    fn get_by_seq(&self, seq: i64, now: i64) -> Result<Option<(KeyRecord, i64)>> {
        let sql = format!("{KEY_COLUMNS} WHERE k.seq = $1");
        self.query_opt(&sql, &[&seq])?
            .map(|r| Ok((key_record(&r, now)?, r.try_get(18)?)))
            .transpose()
    }

    fn get_with_revision(&self, id: &str, now: i64) -> Result<Option<(KeyRecord, i64)>> {
        let sql = if self.write {
            // Lock the key's row (not the counters') for the transaction.
            // NO KEY UPDATE, as PostgreSQL's own UPDATE of non-key columns
            // takes: changes of one key still go one at a time, but a flush
            // adding to its counters (whose foreign key takes KEY SHARE on
            // this row) is not made to wait, so a state change carrying
            // other keys' counters never deadlocks with it.
            format!("{KEY_COLUMNS} WHERE k.id = $1 FOR NO KEY UPDATE OF k")
        } else {
            format!("{KEY_COLUMNS} WHERE k.id = $1")
        };
        self.query_opt(&sql, &[&id])?
            .map(|r| Ok((key_record(&r, now)?, r.try_get(18)?)))
            .transpose()
    }

    fn list(
        &self,
        filter: &KeyFilter,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<KeyRecord>> {
        let mut q = Query::new(KEY_COLUMNS);
        q.push(" WHERE k.seq > $", after_seq);
        if let Some(owner) = &filter.owner {
            q.push(" AND k.owner = $", owner.clone());
        }
        if let Some(prefix) = &filter.prefix {
            q.push(
                " AND substr(k.display_prefix, 1, $",
                prefix.chars().count() as i32,
            )
            .push(") = $", prefix.clone());
        }
        if let Some(status) = filter.status {
            // `$` is numbered by the builder; the columns are api_keys' alone.
            match status_sql(Dialect::Postgres, status, "$") {
                (cond, true) => q.push(&format!(" AND {cond}"), now),
                (cond, false) => q.text(&format!(" AND {cond}")),
            };
        }
        q.push(" ORDER BY k.seq LIMIT $", limit as i64 + 1);
        page(
            q.run(self)?,
            limit,
            |r| Ok(r.try_get(17)?),
            |r| key_record(r, now),
        )
    }

    fn update(&self, id: &str, u: &UpdateFields<'_>, now: i64) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET name = coalesce($2, name), description = coalesce($3, description), \
             scopes = coalesce($4, scopes), metadata = coalesce($5, metadata), \
             expires_at = CASE WHEN $6 THEN $7 ELSE expires_at END, \
             updated_at = greatest(updated_at, $8), rate_limits = coalesce($9, rate_limits), \
             rotation_period = CASE WHEN $10 THEN $11 ELSE rotation_period END, \
             model_policy = coalesce($12, model_policy) \
             WHERE id = $1 RETURNING key_hash",
            &[
                &id,
                &u.name,
                &u.description,
                &u.scopes_json,
                &u.metadata_json,
                &u.expires_at.is_some(),
                &u.expires_at.flatten(),
                &now,
                &u.rate_limits_json,
                &u.rotation_period.is_some(),
                &u.rotation_period.flatten(),
                &u.model_policy_json,
            ],
        )
    }

    fn set_enabled(&self, id: &str, enabled: bool, now: i64) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET enabled = $2, updated_at = greatest(updated_at, $3) WHERE id = $1 RETURNING key_hash",
            &[&id, &enabled, &now],
        )
    }

    fn revoke(&self, id: &str, reason: Option<&str>, now: i64) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET revoked_at = $3, revoked_reason = $2, \
             updated_at = greatest(updated_at, $3) WHERE id = $1 AND revoked_at IS NULL RETURNING key_hash",
            &[&id, &reason, &now],
        )
    }

    fn link_rotation(
        &self,
        old_id: &str,
        new_id: &str,
        old_expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.change_key(
            "UPDATE api_keys SET rotated_to = $2, expires_at = $3, \
             updated_at = greatest(updated_at, $4) WHERE id = $1 AND rotated_to IS NULL RETURNING key_hash",
            &[&old_id, &new_id, &old_expires_at, &now],
        )
    }

    fn delete(&self, id: &str, now: i64) -> Result<()> {
        self.change_key(
            "WITH gone AS (DELETE FROM api_keys WHERE id = $1 RETURNING key_hash), \
             stone AS (INSERT INTO key_tombstones (key_hash, deleted_at) \
                       SELECT key_hash, $2 FROM gone ON CONFLICT DO NOTHING) \
             SELECT key_hash FROM gone",
            &[&id, &now],
        )
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
        let rows = self.query(
            "SELECT model_policy, updated_at FROM owner_policies WHERE owner = $1",
            &[&owner],
        )?;
        rows.first()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    fn set_owner_policy(&self, owner: &str, policy_json: &str, now: i64) -> Result<()> {
        self.execute(
            "INSERT INTO owner_policies (owner, model_policy, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (owner) DO UPDATE SET model_policy = excluded.model_policy, \
             updated_at = greatest(owner_policies.updated_at, excluded.updated_at)",
            &[&owner, &policy_json, &now],
        )?;
        Ok(())
    }

    fn delete_owner_policy(&self, owner: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM owner_policies WHERE owner = $1", &[&owner])? == 1)
    }

    fn tombstoned(&self, hash: &[u8; 32]) -> Result<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM key_tombstones WHERE key_hash = $1",
                &[&&hash[..]],
            )?
            .is_some())
    }

    fn lift_tombstone(&self, hash: &[u8; 32]) -> Result<bool> {
        let rows = self.query(
            "WITH stone AS (DELETE FROM key_tombstones WHERE key_hash = $1 RETURNING key_hash), \
             ids AS (DELETE FROM legacy_ids WHERE key_hash IN (SELECT key_hash FROM stone)) \
             SELECT 1 FROM stone",
            &[&&hash[..]],
        )?;
        Ok(!rows.is_empty())
    }

    fn claim_legacy_id(&self, legacy_id: &str, hash: &[u8; 32], now: i64) -> Result<bool> {
        let n = self.execute(
            "INSERT INTO legacy_ids (legacy_id, key_hash, imported_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[&legacy_id, &&hash[..], &now],
        )?;
        Ok(n == 1)
    }

    fn add_usage(&self, id: &str, count: u64, last_used: i64) -> Result<()> {
        self.execute(
            "INSERT INTO key_usage (seq, usage_count, last_used_at) \
             SELECT seq, $2, $3 FROM api_keys WHERE id = $1 \
             ON CONFLICT (seq) DO UPDATE SET usage_count = key_usage.usage_count + excluded.usage_count, \
             last_used_at = greatest(key_usage.last_used_at, excluded.last_used_at)",
            &[&id, &(count.min(i64::MAX as u64) as i64), &last_used],
        )?;
        Ok(())
    }

    fn add_usage_many(&self, uses: &[(&str, u64, i64)]) -> Result<()> {
        self.add_usage_batch(uses)
    }
}

impl Pg<'_> {
    /// The counters of several keys in one statement (one round trip),
    /// their rows locked in the order given: the flush gives them in
    /// key-id order (`write_some`), so two hosts flushing overlapping keys
    /// never deadlock (they did: `deadlock detected` under 4 verifying
    /// processes, bench/revocation_lag_python.py).
    fn add_usage_batch(&self, uses: &[(&str, u64, i64)]) -> Result<()> {
        let ids: Vec<&str> = uses.iter().map(|u| u.0).collect();
        let counts: Vec<i64> = uses
            .iter()
            .map(|u| u.1.min(i64::MAX as u64) as i64)
            .collect();
        let times: Vec<i64> = uses.iter().map(|u| u.2).collect();
        self.execute(
            "INSERT INTO key_usage (seq, usage_count, last_used_at) \
             SELECT k.seq, u.n, u.t FROM unnest($1::text[], $2::bigint[], $3::bigint[]) \
             WITH ORDINALITY AS u(id, n, t, i) JOIN api_keys k ON k.id = u.id ORDER BY u.i \
             ON CONFLICT (seq) DO UPDATE SET usage_count = key_usage.usage_count + excluded.usage_count, \
             last_used_at = greatest(key_usage.last_used_at, excluded.last_used_at)",
            &[&ids, &counts, &times],
        )?;
        Ok(())
    }
}
