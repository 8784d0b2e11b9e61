//! The storage interface: what the domain logic asks of a database, by
//! concern, with no SQL and no rule in it. `sqlite` (the embedded default)
//! and `postgres` (many hosts) implement it; the domain modules (`keys`,
//! `usage`, `sessions`, `jwt::managed`) call it and never see SQL.
//!
//! A [`Backend`] runs a closure on a [`Tx`]: a read (one statement or one
//! snapshot) or a write transaction that commits as a whole or not at all.
//! Within it, [`Tx`] hands out one interface per concern.

pub(crate) mod key_states;
pub(crate) mod postgres;
pub(crate) mod quota_fast;
pub(crate) mod redis;
pub(crate) mod sqlite;

use crate::error::{Error, ErrorKind, Result};
use crate::model::agents::{AgentClaims, Budget, Lease};
use crate::model::audit::{AuditEvent, AuditFilter, NewAuditEvent};
use crate::model::keys::{KeyFilter, KeyRecord, Page};
use crate::model::quota::{QuotaMetric, QuotaPeriod, QuotaRow, QuotaScope, QuotaSpec, Reservation};
use crate::model::sessions::{Session, SessionFilter, SessionStatus};
use crate::model::usage::{PendingUsage, UsageQuery, UsageRecord, UsageTotals};

/// The SQL dialect a statement is rendered for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dialect {
    /// SQLite: `?N` parameters, `max`, booleans as integers.
    Sqlite,
    /// PostgreSQL: `$N` parameters, `greatest`, relaxed commit.
    Postgres,
}

pub use sqlite::{Durability, SCHEMA_VERSION};

/// How to open a database (the storage part of the manager's options).
pub(crate) struct Settings {
    /// Commit durability.
    pub durability: Durability,
    /// How long a write waits for a lock before `BUSY`.
    pub busy_timeout: std::time::Duration,
    /// Create a missing SQLite file.
    pub create: bool,
    /// SQLite page cache per connection, MiB.
    pub page_cache_mib: u32,
    /// SQLite memory map, MiB.
    pub mmap_mib: u32,
    /// Read key state from the database on every verification
    /// instead of the change-notified cache.
    pub strict: bool,
    /// PostgreSQL: how calls wait on the server and trust its cache.
    pub bounds: postgres::Bounds,
}

/// The file path a `sqlite://` URL names (SQLAlchemy's form:
/// `sqlite:///keys.db` is relative, `sqlite:////var/keys.db` absolute,
/// `sqlite://` alone in memory); `None` for anything else.
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(match rest.strip_prefix('/') {
        Some(p) if !p.is_empty() => p,
        _ => ":memory:",
    })
}

/// Opens the database `target` names: a `postgresql://` or `postgres://`
/// URL, a `sqlite://` URL, a file path or `":memory:"`.
pub(crate) fn open(target: &str, o: &Settings) -> Result<Box<dyn Backend>> {
    if target.starts_with("postgresql://") || target.starts_with("postgres://") {
        return Ok(Box::new(postgres::PgStore::open(
            target, o.bounds, o.strict,
        )?));
    }
    let path = sqlite_path(target).unwrap_or(target);
    Ok(Box::new(sqlite::Db::open_with(
        path,
        o.durability,
        o.busy_timeout,
        o.create,
        sqlite::Tuning {
            page_cache_mib: o.page_cache_mib,
            mmap_mib: o.mmap_mib,
            epoch: !o.strict,
        },
    )?))
}

/// What kind of access a closure gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads; each statement sees the latest commit.
    Read,
    /// Reads that share one snapshot.
    Snapshot,
    /// A write transaction with the manager's durability.
    Write,
    /// A write transaction that may skip the fsync of its commit (hot
    /// counters: quota consumption, leases); it survives a process crash.
    WriteRelaxed,
    /// A write transaction of many rows at once (bulk key creation and
    /// import): as `Write`, and SQLite gives it a larger page cache for
    /// its duration ([`BULK_CACHE_MIB`]).
    Bulk,
    /// One statement that writes, committed on its own (no transaction
    /// around it on PostgreSQL; see [`QuotaStore::consume_fast`]).
    Statement,
    /// Reads answered without a network round trip: SQLite reads its file
    /// (as `Read`); PostgreSQL answers from its caches only, and a read that
    /// would need the server fails with [`ErrorKind::Busy`] instead.
    Local,
}

/// Page cache a bulk write may use, in MiB (when the manager's own is
/// smaller): rows keyed by hash land on random index pages, which a small
/// cache reads again and again (BENCHMARKS.md, "Against bcrypt, and
/// creating keys").
pub(crate) const BULK_CACHE_MIB: u32 = 64;

/// A database the manager runs on.
pub(crate) trait Backend: Send + Sync {
    /// Runs `f` once with the access asked for; a write commits if `f`
    /// succeeds and rolls back otherwise.
    fn run(&self, access: Access, f: &mut dyn FnMut(&dyn Tx) -> Result<()>) -> Result<()>;
    /// True if the database can only be read (a write-protected file).
    fn readonly(&self) -> bool {
        false
    }
    /// True if another thread of this process waits to write.
    fn writers_waiting(&self) -> bool {
        false
    }
    /// Background upkeep the flusher thread runs after each flush (SQLite:
    /// a WAL checkpoint when one was asked for).
    fn maintain(&self) -> Result<()> {
        Ok(())
    }
    /// Sets what to call when upkeep becomes due between the flusher's
    /// polls (SQLite: the WAL passed the checkpoint threshold).
    fn on_maintenance_due(&self, _wake: Waker) {}
    /// The state epoch's watch (SQLite, unless `strict`): while it holds,
    /// key states cached under it are current, and [`KeyStore::changes_since`]
    /// and [`KeyStore::get_by_hash`] answer. `None`: read the state with
    /// [`KeyStore::with_state_by_hash`] on every call.
    fn epoch(&self) -> Option<&sqlite::epoch::EpochWatch> {
        None
    }
    /// The most one call may wait on this database in all (SQLite: the
    /// busy timeout; PostgreSQL: the storage timeout).
    fn call_bound(&self) -> std::time::Duration;
}

thread_local! {
    /// The deadline of the call under way on this thread, if it set one
    /// (see [`within`]): stores end their waits by it.
    static CALL_DEADLINE: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `f` with every store wait on this thread ending by `deadline` (or
/// earlier, by the store's own bound): what makes a call that writes in
/// several transactions (a flush in slices) bounded in all, not per step.
pub(crate) fn within<T>(deadline: std::time::Instant, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<std::time::Instant>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CALL_DEADLINE.set(self.0);
        }
    }
    let outer = CALL_DEADLINE.get();
    let _reset = Reset(outer);
    CALL_DEADLINE.set(Some(outer.map_or(deadline, |o| o.min(deadline))));
    f()
}

/// `own` or the deadline of the call under way on this thread, the earlier.
pub(crate) fn deadline(own: std::time::Instant) -> std::time::Instant {
    CALL_DEADLINE.get().map_or(own, |d| d.min(own))
}

/// Wakes the flusher thread.
pub(crate) type Waker = Box<dyn Fn() + Send + Sync>;

impl dyn Backend {
    /// Runs `f` with `access` and returns what it returned.
    pub(crate) fn with<T>(
        &self,
        access: Access,
        f: impl FnOnce(&dyn Tx) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.run(access, &mut |tx| {
            let f = f.take().ok_or_else(|| {
                Error::new(ErrorKind::Internal, "a storage closure was run twice")
            })?;
            out = Some(f(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::new(ErrorKind::Internal, "a storage closure was not run"))
    }

    /// Runs `f` on a read connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        self.with(Access::Read, f)
    }

    /// Runs `f`'s reads in one snapshot.
    pub(crate) fn read_snapshot<T>(&self, f: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        self.with(Access::Snapshot, f)
    }

    /// Runs `f` in one write transaction.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        self.with(Access::Write, f)
    }

    /// Runs `f` in one write transaction whose commit may skip the fsync.
    pub(crate) fn write_relaxed<T>(&self, f: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        self.with(Access::WriteRelaxed, f)
    }
}

/// One connection or transaction, seen through one interface per concern.
pub(crate) trait Tx {
    /// API keys and their usage counters.
    fn keys(&self) -> &dyn KeyStore;
    /// The append-only audit trail.
    fn audit(&self) -> &dyn AuditStore;
    /// Quotas and reservations.
    fn quota(&self) -> &dyn QuotaStore;
    /// Usage records.
    fn usage(&self) -> &dyn UsageStore;
    /// Sessions.
    fn sessions(&self) -> &dyn SessionStore;
    /// Managed signing keys.
    fn signing(&self) -> &dyn SigningStore;
    /// Agent budgets, tokens and leases.
    fn agents(&self) -> &dyn AgentStore;
    /// Named settings of the database (the master-key check).
    fn meta(&self) -> &dyn MetaStore;
    /// Rate-limit state shared by every process on the database.
    fn rates(&self) -> &dyn RateStore;
    /// Capability roots, revoked blocks and what was charged through them.
    fn capabilities(&self) -> &dyn CapabilityStore;
    /// Refresh-token families and their tokens.
    fn families(&self) -> &dyn FamilyStore;
}

/// The fields of a key row to insert.
pub(crate) struct InsertKey<'a> {
    pub id: &'a str,
    pub key_hash: &'a [u8; 32],
    pub prefix: &'a str,
    pub display_prefix: &'a str,
    pub owner: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub scopes_json: &'a str,
    pub metadata_json: &'a str,
    pub now: i64,
    pub expires_at: Option<i64>,
    pub version: u32,
    pub rotated_from: Option<&'a str>,
    pub rate_limits_json: &'a str,
    pub model_policy_json: &'a str,
    pub rotation_period: Option<i64>,
}

/// The state of a key, as the verification hot path reads it.
pub(crate) struct KeyState {
    /// The row's number (stable, ordered by creation).
    pub seq: i64,
    pub id: String,
    /// Changes with every change of the row (the record cache's check).
    pub revision: i64,
    pub enabled: bool,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// The descriptive fields an update changes; `None` keeps a field.
pub(crate) struct UpdateFields<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub scopes_json: Option<&'a str>,
    pub metadata_json: Option<&'a str>,
    pub expires_at: Option<Option<i64>>,
    pub rate_limits_json: Option<&'a str>,
    pub model_policy_json: Option<&'a str>,
    pub rotation_period: Option<Option<i64>>,
}

/// API keys (`api_keys`) and their usage counters.
pub(crate) trait KeyStore {
    /// Inserts a new key.
    fn insert(&self, k: &InsertKey<'_>) -> Result<()>;
    /// Keys due for rotation at `now`: active (enabled, not revoked, not
    /// expired, not rotated) and at least their rotation period old
    /// (`default_period` for keys without one), oldest first; with `since`,
    /// only those that became due after it.
    fn due(
        &self,
        now: i64,
        default_period: Option<i64>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<KeyRecord>>;
    /// Calls `then` with the state of the key with this hash; what `then`
    /// reads through the same [`Tx`] shares the lookup's snapshot.
    fn with_state_by_hash(
        &self,
        hash: &[u8; 32],
        then: &mut dyn FnMut(Option<KeyState>) -> Result<()>,
    ) -> Result<()>;

    /// The state epoch and the keys changed after epoch `since` (stores
    /// with an epoch watch, see [`Backend::epoch`]).
    fn changes_since(&self, _since: i64) -> Result<(i64, sqlite::epoch::Changes)> {
        Err(Error::new(
            ErrorKind::Internal,
            "this store keeps no state epoch",
        ))
    }

    /// The record of the key with this hash, its revision and the state
    /// epoch it was read at (stores with an epoch watch).
    fn get_by_hash(&self, _hash: &[u8; 32], _now: i64) -> Result<Option<(KeyRecord, i64, i64)>> {
        Err(Error::new(
            ErrorKind::Internal,
            "this store keeps no state epoch",
        ))
    }
    /// The record in row `seq` with its revision.
    fn get_by_seq(&self, seq: i64, now: i64) -> Result<Option<(KeyRecord, i64)>>;
    /// The record of key `id` with its revision.
    fn get_with_revision(&self, id: &str, now: i64) -> Result<Option<(KeyRecord, i64)>>;
    /// The record of key `id`.
    fn get(&self, id: &str, now: i64) -> Result<Option<KeyRecord>> {
        Ok(self.get_with_revision(id, now)?.map(|(r, _)| r))
    }
    /// One page of keys after row `after_seq`, in creation order.
    fn list(
        &self,
        filter: &KeyFilter,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<KeyRecord>>;
    /// Applies an update; `CONFLICT` if the key is gone.
    fn update(&self, id: &str, u: &UpdateFields<'_>, now: i64) -> Result<()>;
    /// Enables or disables a key.
    fn set_enabled(&self, id: &str, enabled: bool, now: i64) -> Result<()>;
    /// Revokes a key not revoked yet.
    fn revoke(&self, id: &str, reason: Option<&str>, now: i64) -> Result<()>;
    /// Marks `old_id` as replaced by `new_id`, ending it at `old_expires_at`.
    fn link_rotation(
        &self,
        old_id: &str,
        new_id: &str,
        old_expires_at: Option<i64>,
        now: i64,
    ) -> Result<()>;
    /// Deletes a key (its counters with it) and leaves its tombstone: its
    /// hash, which refuses the key's import until lifted.
    fn delete(&self, id: &str, now: i64) -> Result<()>;
    /// Whether a deleted key with this hash left a tombstone.
    fn tombstoned(&self, hash: &[u8; 32]) -> Result<bool>;
    /// The model policy of `owner` (its JSON) and when it was set, if any.
    fn owner_policy(&self, owner: &str) -> Result<Option<(String, i64)>>;
    /// The model policy of `owner` (its JSON, if any) and the state epoch
    /// it was read at (`-1`: a store without one), in one read.
    fn owner_policy_at(&self, owner: &str) -> Result<(Option<String>, i64)> {
        Ok((self.owner_policy(owner)?.map(|(json, _)| json), -1))
    }
    /// Sets the model policy of `owner` (JSON), replacing any.
    fn set_owner_policy(&self, owner: &str, policy_json: &str, now: i64) -> Result<()>;
    /// Removes the model policy of `owner`; whether there was one.
    fn delete_owner_policy(&self, owner: &str) -> Result<bool>;
    /// Keys per owner at `now`: (owner, [active, disabled, revoked, expired]),
    /// the owners with the most keys first, at most `limit` owners.
    fn counts_by_owner(&self, now: i64, limit: u32) -> Result<Vec<(String, [u64; 4])>>;
    /// Keys at `now` in each state: [active, disabled, revoked, expired].
    fn counts(&self, now: i64) -> Result<[u64; 4]>;
    /// Removes the tombstone of `hash` and the old-record ids claimed for
    /// it; whether there was one.
    fn lift_tombstone(&self, hash: &[u8; 32]) -> Result<bool>;
    /// Claims the old system's record id `legacy_id` for the key `hash`;
    /// false when it was claimed before (by any key, deleted or not).
    fn claim_legacy_id(&self, legacy_id: &str, hash: &[u8; 32], now: i64) -> Result<bool>;
    /// Adds `count` uses; `last_used_at` only moves forward; nothing for a
    /// key deleted meanwhile.
    fn add_usage(&self, id: &str, count: u64, last_used: i64) -> Result<()>;
    /// [`KeyStore::add_usage`] for several keys (id, count, last used).
    fn add_usage_many(&self, uses: &[(&str, u64, i64)]) -> Result<()> {
        for (id, count, t) in uses {
            self.add_usage(id, *count, *t)?;
        }
        Ok(())
    }
}

/// The append-only audit trail.
pub(crate) trait AuditStore {
    /// Appends one entry.
    fn insert(&self, e: &NewAuditEvent) -> Result<()>;
    /// One page of entries before entry `before_id`, newest first.
    fn list(&self, f: &AuditFilter, limit: u32, before_id: i64) -> Result<Page<AuditEvent>>;
}

/// Quotas and reservations.
pub(crate) trait QuotaStore {
    /// The owner of key `key_id` and the key that replaced it, if the key exists.
    fn key_owner(&self, key_id: &str) -> Result<Option<(String, Option<String>)>>;
    /// Moves the key-scoped quotas of a rotated key to its successor.
    fn move_key_quotas(&self, from: &str, to: &str) -> Result<()>;
    /// Deletes the key-scoped quotas of a deleted key.
    fn delete_key_quotas(&self, key_id: &str) -> Result<()>;
    /// The quotas of the subjects, each subject's in creation order. In a
    /// write transaction the rows stay locked until it ends.
    fn for_subjects(&self, subjects: &[(QuotaScope, &str)]) -> Result<Vec<QuotaRow>>;
    /// Up to `limit` quotas with a limit, the most spent (as stored, before
    /// any window rolls) first.
    fn most_spent(&self, limit: u32) -> Result<Vec<QuotaRow>>;
    /// One quota; locked until the end of a write transaction.
    fn find(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
    ) -> Result<Option<QuotaRow>>;
    /// Creates a quota or changes its limit and refill (its usage kept).
    fn upsert(
        &self,
        s: &QuotaSpec,
        refill: Option<(u64, QuotaPeriod)>,
        window_start: i64,
        now: i64,
    ) -> Result<()>;
    /// Deletes a quota; false if there was none.
    fn delete(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
    ) -> Result<bool>;
    /// Writes a quota's counters back.
    fn save(&self, r: &QuotaRow, now: i64) -> Result<()>;
    /// Records a held reservation; `items` is its JSON list of [quota seq, amount].
    fn insert_reservation(&self, r: &Reservation, items: &str) -> Result<()>;
    /// (key id, status) of reservation `id`, locked in a write.
    fn reservation_state(&self, id: &str) -> Result<Option<(String, String)>>;
    /// The key of reservation `id`, read without a lock (it never changes):
    /// a write locks the key's quota rows before the reservation's row.
    fn reservation_key(&self, id: &str) -> Result<Option<String>>;
    /// Keys with held reservations past their TTL, at most `limit`.
    fn expired_keys(&self, now: i64, limit: i64) -> Result<Vec<String>>;
    /// Sets a reservation's status (its closing time kept once set).
    fn mark_reservation(&self, id: &str, status: &str, now: i64) -> Result<()>;
    /// Gives a held reservation's amounts back to its quotas and closes it as `status`.
    fn release_reservation(&self, id: &str, status: &str, now: i64) -> Result<()>;
    /// What expired-but-held reservations of `key_id` hold, per quota row (seq, amount).
    fn expired_holds(&self, key_id: &str, now: i64) -> Result<Vec<[i64; 2]>>;
    /// Releases the held reservations of `key_id` past their TTL; how many.
    /// Its quota rows must be locked first (the one lock order).
    fn expire_reservations(&self, key_id: &str, now: i64) -> Result<u64>;
    /// The quota row of key `key_id` if it is the only quota that applies
    /// to the key (the schema's `solo` flag: no other key quota, no owner
    /// quota, key not rotated), read in one statement; else None.
    fn solo_row(&self, key_id: &str) -> Result<Option<QuotaRow>>;
    /// Consumes `amounts` from the quotas of key `key_id` and its owner in
    /// one statement when the case is simple — key not rotated, every quota
    /// in its current window (`day`, `month`: their starts now), nothing
    /// reserved, no refill, every quota within its limit and below its first
    /// alert level (`first_level` percent) after the charge — and returns
    /// the rows as they were before; `None` (nothing changed) otherwise: the
    /// general path decides. `rows` says which statement: the key's solo
    /// row only, or every row of the key and its owner.
    fn consume_fast(
        &self,
        rows: quota_fast::Rows,
        key_id: &str,
        amounts: &crate::model::quota::Amounts,
        window_starts: [i64; 2],
        now: i64,
        first_level: u8,
    ) -> Result<Option<Vec<QuotaRow>>>;
}

/// Usage records.
pub(crate) trait UsageStore {
    /// True if a record with this request id is stored.
    fn exists(&self, request_id: &str) -> Result<bool>;
    /// Inserts a record unless its request id is known (an earlier report
    /// replaces a later one); true if it was written.
    fn insert(&self, u: &PendingUsage) -> Result<bool>;
    /// Totals grouped by the [`crate::model::usage::GROUPS`] at `groups`.
    fn summary(&self, q: &UsageQuery, groups: &[usize]) -> Result<Vec<UsageTotals>>;
    /// One page of records after row `after_seq`.
    fn export(&self, q: &UsageQuery, limit: u32, after_seq: i64) -> Result<Page<UsageRecord>>;
}

/// The fields of a new session.
pub(crate) struct InsertSession<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub key_id: Option<&'a str>,
    pub session_type: &'a str,
    pub metadata_json: &'a str,
    pub now: i64,
    pub expires_at: Option<i64>,
    pub idle_timeout: Option<i64>,
    /// Its next expiry (`model::sessions::next_expiry`).
    pub ends_at: Option<i64>,
    /// The SHA-256 of the fingerprint it is bound to, if any.
    pub fingerprint: Option<&'a [u8]>,
}

/// Sessions.
pub(crate) trait SessionStore {
    /// Inserts a new session.
    fn insert(&self, s: &InsertSession<'_>) -> Result<()>;
    /// One session.
    fn get(&self, id: &str, now: i64) -> Result<Option<Session>>;
    /// One page of sessions after row `after_seq`.
    fn list(
        &self,
        f: &SessionFilter,
        status: Option<SessionStatus>,
        limit: u32,
        after_seq: i64,
        now: i64,
    ) -> Result<Page<Session>>;
    /// Records activity now; the next expiry moves to `ends_at` if later.
    fn touch(&self, id: &str, now: i64, ends_at: Option<i64>) -> Result<()>;
    /// Changes the status and/or metadata.
    fn update(
        &self,
        id: &str,
        status: Option<&str>,
        metadata_json: Option<&str>,
        now: i64,
    ) -> Result<()>;
    /// Ends a session with `reason`.
    fn end(&self, id: &str, reason: &str, now: i64) -> Result<()>;
    /// Ends the live sessions of a key; how many.
    fn end_for_key(&self, key_id: &str, reason: &str, now: i64) -> Result<u64>;
    /// Marks the sessions past their lifetime or idle timeout expired; how many.
    fn mark_expired(&self, now: i64) -> Result<u64>;
    /// Deletes the sessions that ended before `before`; how many.
    fn purge(&self, before: i64) -> Result<u64>;
    /// The SHA-256 of the fingerprint session `id` is bound to, if any.
    fn fingerprint(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// The ids of `owner`'s live sessions at `now`, oldest first.
    fn live_for_owner(&self, owner: &str, now: i64) -> Result<Vec<String>>;
    /// Waits until no other transaction changes `owner`'s sessions, for the
    /// rest of this one (a write transaction): a count read next stays true.
    fn serialize_owner(&self, owner: &str) -> Result<()>;
}

/// One stored signing key.
pub(crate) struct SigningRow {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub public_jwk: Option<String>,
    pub private_enc: Vec<u8>,
    pub created_at: i64,
    pub verify_until: Option<i64>,
    pub retired_at: Option<i64>,
}

/// Managed signing keys.
pub(crate) trait SigningStore {
    /// Stores a new key.
    fn insert(&self, k: &SigningRow) -> Result<()>;
    /// Every key, oldest first.
    fn all(&self) -> Result<Vec<SigningRow>>;
    /// One key.
    fn get(&self, kid: &str) -> Result<Option<SigningRow>>;
    /// The key that signs now.
    fn active(&self) -> Result<Option<SigningRow>>;
    /// Changes a key's status and its verification window.
    fn set_status(
        &self,
        kid: &str,
        status: &str,
        verify_until: Option<i64>,
        retired_at: Option<i64>,
    ) -> Result<()>;
    /// A value that changes whenever the set of keys usable at `now` changes.
    fn fingerprint(&self, now: i64) -> Result<String>;
    /// Waits until no other transaction changes signing keys, for the rest
    /// of this one (a write transaction; what it reads next is current).
    fn serialize(&self) -> Result<()>;
}

/// One stored capability root key.
pub(crate) struct RootRow {
    /// The root key id written into the tokens it signs.
    pub seq: i64,
    pub kid: String,
    pub status: String,
    /// `ed25519/<hex>`.
    pub public_key: String,
    pub private_enc: Vec<u8>,
    pub created_at: i64,
    pub verify_until: Option<i64>,
    pub retired_at: Option<i64>,
}

/// Capability tokens: root keys, revoked blocks, spend through ceilings.
pub(crate) trait CapabilityStore {
    /// Stores a new root key (its `seq` is ignored); returns its `seq`.
    fn insert_root(&self, r: &RootRow) -> Result<i64>;
    /// Every root key, oldest first.
    fn roots(&self) -> Result<Vec<RootRow>>;
    /// Changes a root key's status and its verification window.
    fn set_root_status(
        &self,
        seq: i64,
        status: &str,
        verify_until: Option<i64>,
        retired_at: Option<i64>,
    ) -> Result<()>;
    /// Waits until no other transaction changes root keys, for the rest of
    /// this one (a write transaction).
    fn serialize_roots(&self) -> Result<()>;
    /// Records a revoked block; false if it was revoked already.
    fn revoke(&self, revocation_id: &[u8], reason: Option<&str>, now: i64) -> Result<bool>;
    /// The position in `ids` of the first revoked one, if any.
    fn first_revoked(&self, ids: &[&[u8]]) -> Result<Option<usize>>;
    /// What was charged through each block of `ids`, in order (0 for none).
    fn spent(&self, ids: &[&[u8]]) -> Result<Vec<i64>>;
    /// Adds `cost` to what was charged through the block unless that would
    /// pass `ceiling`: the new total, or `None` (nothing changed).
    fn charge(
        &self,
        revocation_id: &[u8],
        cost: i64,
        ceiling: i64,
        now: i64,
    ) -> Result<Option<i64>>;
}

/// One stored refresh-token family.
pub(crate) struct FamilyRow {
    pub id: String,
    pub subject: String,
    pub scopes_json: String,
    pub claims_json: String,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub refreshed_at: i64,
    /// When the live refresh token lapses (its expiry, within `expires_at`).
    pub ends_at: i64,
    pub generation: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
}

/// One stored refresh token (its hash is the key).
pub(crate) struct RefreshRow {
    pub family_id: String,
    pub generation: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
}

/// Refresh-token families and their tokens.
pub(crate) trait FamilyStore {
    /// Stores a new family.
    fn insert_family(&self, f: &FamilyRow) -> Result<()>;
    /// One family.
    fn family(&self, id: &str) -> Result<Option<FamilyRow>>;
    /// Stores a refresh token of a family.
    fn insert_token(
        &self,
        hash: &[u8; 32],
        family_id: &str,
        generation: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// One refresh token.
    fn token(&self, hash: &[u8; 32]) -> Result<Option<RefreshRow>>;
    /// Marks a token spent unless it is already: true if this call spent it
    /// (of two transactions racing, exactly one gets true).
    fn spend(&self, hash: &[u8; 32], now: i64) -> Result<bool>;
    /// Records a refresh of the family (its generation, time and the new
    /// token's end) unless it was revoked: false then (a revocation that
    /// committed first wins).
    fn refreshed(&self, family_id: &str, generation: i64, now: i64, ends_at: i64) -> Result<bool>;
    /// Revokes a family unless it is already; true if this call revoked it.
    fn revoke_family(&self, id: &str, reason: &str, now: i64) -> Result<bool>;
    /// Revokes every live family of `subject`; the ids it revoked.
    fn revoke_subject(&self, subject: &str, reason: &str, now: i64) -> Result<Vec<String>>;
    /// Deletes the families (and their tokens) whose `ends_at` is before `before`.
    fn purge(&self, before: i64) -> Result<u64>;
}

/// Agent budgets, tokens and leases.
pub(crate) trait AgentStore {
    /// Creates a budget.
    fn insert_budget(&self, id: &str, owner: &str, name: &str, limit: i64, now: i64) -> Result<()>;
    /// One budget.
    fn budget(&self, id: &str, now: i64) -> Result<Option<Budget>>;
    /// The jti of the agent's live token.
    fn live_token(&self, agent_id: &str) -> Result<Option<String>>;
    /// (agent id, revoked_at) of token `jti`.
    fn token(&self, jti: &str) -> Result<Option<(String, Option<i64>)>>;
    /// Records an issued token.
    fn insert_token(&self, t: &AgentClaims, permissions: &str) -> Result<()>;
    /// Revokes a token.
    fn revoke_token(&self, jti: &str, now: i64) -> Result<()>;
    /// Records a lease on the token's budget.
    fn insert_lease(
        &self,
        id: &str,
        t: &AgentClaims,
        amount: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// One lease.
    fn lease(&self, id: &str, now: i64) -> Result<Option<Lease>>;
    /// Changes a lease's amount, status and expiry.
    fn set_lease(
        &self,
        id: &str,
        amount: i64,
        status: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<()>;
    /// Charges `cost` to a lease and its budget.
    fn spend(&self, id: &str, budget_id: &str, cost: i64, now: i64) -> Result<()>;
}

/// Named settings of the database.
pub(crate) trait MetaStore {
    /// The value of `name`.
    fn get(&self, name: &str) -> Result<Option<String>>;
    /// Sets `name` unless set; true if this call set it.
    fn put_once(&self, name: &str, value: &str) -> Result<bool>;
}

/// Rate-limit state (GCRA arrival times) shared by every process on the
/// database; the arithmetic is `ratelimit::gcra`, run in a write transaction.
pub(crate) trait RateStore {
    /// The stored arrival times (µs) of `key`'s buckets `names`, in order
    /// (`None`: a full bucket). In a write transaction no other writer can
    /// change them before it ends.
    fn buckets(&self, key: &str, names: &[&str]) -> Result<Vec<Option<i64>>>;
    /// Stores a bucket's arrival time.
    fn set_bucket(&self, key: &str, name: &str, tat_us: i64) -> Result<()>;
    /// Deletes the buckets full again at `now_us` (the same as none); how many.
    fn purge_buckets(&self, now_us: i64) -> Result<u64>;
    /// Records a one-time id (its SHA-256) kept until `expires_at`; false
    /// if it was recorded already (by any process).
    fn claim_jti(&self, jti_hash: &[u8; 32], expires_at: i64) -> Result<bool>;
    /// Deletes the one-time ids kept until before `before`; how many.
    fn purge_jti(&self, before: i64) -> Result<u64>;
}
