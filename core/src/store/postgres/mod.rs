//! The PostgreSQL store, for a fleet of hosts: the same schema semantics as
//! SQLite (versioned migrations applied under an advisory lock, so workers
//! starting together migrate once), a small connection pool, row locks
//! (`SELECT ... FOR UPDATE`) wherever a write transaction reads what it then
//! writes, so quotas, budgets and rate limits are never oversold across hosts.
//!
//! Every wait on the network is bounded: a call (checkout, connect, every
//! statement, the commit) ends within `storage_timeout` in all, on the
//! client's clock ([`link`]) and the server's (`statement_timeout`,
//! `idle_in_transaction_session_timeout`, so a host cut off mid-transaction
//! does not hold its row locks).
//!
//! Verification stays in memory: key states are cached per process and a
//! listener (`LISTEN irontoken_keys`; every change of `api_keys` notifies
//! its hash) drops what changed, within milliseconds on every host. The
//! cache is trusted only while the channel is proven alive: the listener
//! sends itself a heartbeat notification every quarter of `max_staleness`,
//! and notifications arrive in commit order, so receiving the heartbeat
//! sent at `t` proves every change committed before `t` was heard. Past
//! `max_staleness` without such proof, a verification reads the state from
//! the server, and if the server does not answer in time it fails
//! (`STORAGE`), unless `verify_fail_open` was chosen. With the `strict`
//! option every verification reads the database.
//!
//! Lock order (every transaction, so two hosts never deadlock): the owner's
//! advisory lock, then `api_keys` rows (`FOR NO KEY UPDATE`), then `quotas`
//! rows by `seq`, then `quota_reservations` rows; for agents, token rows,
//! then lease rows, then budget rows; `key_usage` counters in key-id order
//! (their foreign key's `KEY SHARE` does not wait on a key's row lock).
//! Usage and audit rows are only inserted.

//!
//! Files: the pool and transactions here; `migrate.rs` (the schema),
//! `doctor.rs`, `notify.rs` (the key-state cache and its listener),
//! `link.rs` (bounded calls), `tls.rs`, `queries.rs` (statement builder);
//! the queries of each concern in a file named as in `store/sqlite/`.

mod agents;
mod audit;
mod capabilities;
mod doctor;
mod families;
mod keys;
mod link;
mod meta;
mod migrate;
mod notify;
mod queries;
mod quota;
mod rates;
mod sessions;
mod signing;
mod tls;
mod usage;

pub(crate) use doctor::*;
pub use migrate::*;
use notify::*;

use crate::error::{Error, ErrorKind, Result};
use crate::store::{Access, Backend, KeyState, Tx};
use link::Link;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tls::Tls;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

/// Connections a store opens at most; a caller waits (up to the busy
/// timeout) for one to come back.
const MAX_CONNECTIONS: usize = 16;

/// PostgreSQL errors as irontoken errors: lock waits, deadlocks and
/// serialization failures are `BUSY`; the rest `STORAGE`, with the server's
/// primary message only (its detail can quote row values).
impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.as_db_error() {
            Some(db)
                if [
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::LOCK_NOT_AVAILABLE,
                    SqlState::QUERY_CANCELED,
                ]
                .contains(db.code()) =>
            {
                Error::new(
                    ErrorKind::Busy,
                    format!("database is busy: {}", db.message()),
                )
            }
            // Only a parameter can hold it (Rust strings are UTF-8; the
            // one byte UTF-8 PostgreSQL refuses in text is NUL): bad input,
            // not a storage failure.
            Some(db) if *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE => Error::invalid(
                "text with a NUL character (U+0000) cannot be stored in or matched against PostgreSQL",
            ),
            Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => Error::new(
                ErrorKind::Conflict,
                format!("a concurrent change won: {}; retry", db.message()),
            ),
            Some(db) => Error::new(
                ErrorKind::Storage,
                format!("database error: {} ({})", db.message(), db.code().code()),
            ),
            None if e.is_closed() => Error::new(
                ErrorKind::Storage,
                "the connection to PostgreSQL was closed",
            ),
            None => {
                // The cause (a refused connection, a certificate the TLS
                // handshake did not trust) is in the source chain.
                let mut msg = format!("PostgreSQL unreachable: {e}");
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    msg.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                Error::new(ErrorKind::Storage, msg)
            }
        }
    }
}

/// One pooled connection with its prepared statements.
struct Conn {
    link: Link,
    statements: HashMap<String, Statement>,
}

impl Conn {
    fn statement(&mut self, deadline: Instant, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.link.prepare(deadline, sql)?;
        if self.statements.len() >= 256 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// How the PostgreSQL store waits (the fleet part of the manager's options).
#[derive(Clone, Copy)]
pub(crate) struct Bounds {
    /// How long a statement waits for a row lock (`BUSY` after).
    pub busy_timeout: Duration,
    /// The most a call waits on the server in all.
    pub storage_timeout: Duration,
    /// How old a cached key state may be without proof of a live channel.
    pub max_staleness: Duration,
    /// Answer from a cached state, however old, when the server cannot.
    pub verify_fail_open: bool,
}

/// The PostgreSQL store (see the module docs).
pub(crate) struct PgStore {
    config: tokio_postgres::Config,
    /// Whether (and how) connections use TLS.
    tls: Tls,
    idle: Mutex<Vec<Conn>>,
    /// Connections open (idle or lent).
    open: Mutex<usize>,
    returned: Condvar,
    bounds: Bounds,
    strict: bool,
    states: Arc<States>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.states.stop.store(true, Ordering::SeqCst);
    }
}

/// Parses a `postgresql://` or `postgres://` URL (libpq's form, with its
/// query parameters: `sslmode`, `sslrootcert`, `connect_timeout`,
/// `options`...) into the connection settings and the TLS to use.
fn config_of(url: &str, bounds: &Bounds) -> Result<(tokio_postgres::Config, Tls)> {
    let (url, tls) = tls::split(url)?;
    let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
        Error::invalid(
            "invalid PostgreSQL URL (expected postgresql://user[:password]@host[:port]/database)",
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(bounds.storage_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("irontoken");
    }
    // A dead peer is noticed by the kernel too, not only by our deadlines.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(bounds.storage_timeout.max(Duration::from_secs(1)));
    Ok((config, tls))
}

impl PgStore {
    /// Connects, migrates the schema (once, under an advisory lock) and
    /// starts the change listener.
    pub(crate) fn open(url: &str, bounds: Bounds, strict: bool) -> Result<PgStore> {
        let (config, tls) = config_of(url, &bounds)?;
        let store = PgStore {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            returned: Condvar::new(),
            bounds,
            strict,
            states: Arc::new(States {
                cache: quick_cache::sync::Cache::new(STATE_CACHE),
                epoch: AtomicU64::new(0),
                base: Instant::now(),
                heard: AtomicU64::new(0),
                stop: AtomicBool::new(false),
            }),
        };
        let mut conn = store.checkout(Instant::now() + bounds.storage_timeout)?;
        let migrated = migrate(&mut conn.link, bounds.storage_timeout);
        store.give_back(conn, migrated.is_ok());
        migrated?;
        if !strict {
            let config = store.config.clone();
            let tls = store.tls.clone();
            let states = store.states.clone();
            std::thread::Builder::new()
                .name("irontoken-pg-listen".into())
                .spawn(move || listen(&config, &tls, &states, bounds))
                .map_err(|e| Error::new(ErrorKind::Internal, format!("spawn failed: {e}")))?;
        }
        Ok(store)
    }

    fn connect(&self, deadline: Instant) -> Result<Conn> {
        let mut link = Link::connect(&self.config, &self.tls, deadline)?;
        let b = &self.bounds;
        let lock_ms = b.busy_timeout.min(b.storage_timeout).as_millis().max(1);
        let statement_ms = b.storage_timeout.as_millis().max(1);
        // A host cut off inside a transaction must not hold its row locks
        // longer than a call may last (plus slack): the server ends it.
        let idle_ms = statement_ms + 1000;
        link.batch_execute(
            deadline,
            &format!(
                "SET lock_timeout = {lock_ms}; SET statement_timeout = {statement_ms}; \
                 SET idle_in_transaction_session_timeout = {idle_ms}"
            ),
        )?;
        Ok(Conn {
            link,
            statements: HashMap::new(),
        })
    }

    /// An idle connection, a new one, or (at the limit) the next one given
    /// back before `deadline`.
    fn checkout(&self, deadline: Instant) -> Result<Conn> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                return Ok(c);
            }
            if *open < MAX_CONNECTIONS {
                *open += 1;
                drop(open);
                return self.connect(deadline).inspect_err(|_| {
                    *self.open.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                    self.returned.notify_one();
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!(
                        "all {MAX_CONNECTIONS} PostgreSQL connections stayed busy for the whole call (storage_timeout_ms)"
                    ),
                ));
            }
            open = self
                .returned
                .wait_timeout(open, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Returns a connection to the pool, or closes it if it may be broken.
    fn give_back(&self, conn: Conn, healthy: bool) {
        if healthy && !conn.link.is_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        } else {
            drop(conn);
            *self.open.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        }
        self.returned.notify_one();
    }
}

impl Backend for PgStore {
    fn run(&self, access: Access, f: &mut dyn FnMut(&dyn Tx) -> Result<()>) -> Result<()> {
        let tx = Pg {
            store: self,
            conn: RefCell::new(None),
            deadline: std::cell::Cell::new(None),
            bulk: access == Access::Bulk,
            begin: match access {
                Access::Read | Access::Statement | Access::Local => None,
                Access::Snapshot => Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                Access::Write | Access::Bulk => Some("BEGIN"),
                // One round trip for both statements.
                Access::WriteRelaxed => Some("BEGIN; SET LOCAL synchronous_commit = off"),
            },
            write: matches!(access, Access::Write | Access::Bulk | Access::WriteRelaxed),
            local: access == Access::Local,
            changed: RefCell::new(Vec::new()),
            failed: std::cell::Cell::new(false),
        };
        let out = f(&tx);
        tx.finish(out)
    }

    fn call_bound(&self) -> Duration {
        self.bounds.storage_timeout
    }
}

/// One use of the store: a connection taken on the first statement (a
/// verification answered from the cache takes none), in a transaction
/// unless it only reads.
pub(crate) struct Pg<'a> {
    store: &'a PgStore,
    conn: RefCell<Option<Conn>>,
    /// When the call must have ended: `storage_timeout` after its first
    /// wait on the server (a verification answered from the cache reads
    /// no clock for it).
    deadline: std::cell::Cell<Option<Instant>>,
    /// A bulk write: each statement gets `storage_timeout`, not the whole.
    bulk: bool,
    begin: Option<&'static str>,
    /// Reads take row locks (`FOR UPDATE`) for what this transaction writes.
    write: bool,
    /// Answers from the caches only ([`Access::Local`]): a statement fails
    /// with `Busy` before taking a connection.
    local: bool,
    /// Hashes of the keys this transaction changed: their cached states
    /// are forgotten again once it ends.
    changed: RefCell<Vec<[u8; 32]>>,
    /// A statement failed: the transaction rolls back.
    failed: std::cell::Cell<bool>,
}

impl Pg<'_> {
    /// When the next wait on the server must end.
    fn deadline(&self) -> Instant {
        let per_call = || Instant::now() + self.store.bounds.storage_timeout;
        if self.bulk {
            return per_call();
        }
        if let Some(d) = self.deadline.get() {
            return d;
        }
        let d = crate::store::deadline(per_call());
        self.deadline.set(Some(d));
        d
    }

    /// Runs `f` on the connection, taking one (and opening the transaction) first.
    fn with<T>(&self, f: impl FnOnce(&mut Conn, Instant) -> Result<T>) -> Result<T> {
        let mut slot = self.conn.borrow_mut();
        if slot.is_none() {
            if self.local {
                return Err(Error::new(
                    ErrorKind::Busy,
                    "the answer needs a round trip to PostgreSQL",
                ));
            }
            let mut c = self.store.checkout(self.deadline())?;
            if let Some(begin) = self.begin
                && let Err(e) = c.link.batch_execute(self.deadline(), begin)
            {
                self.store.give_back(c, false);
                return Err(e);
            }
            *slot = Some(c);
        }
        let conn = slot
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "no connection"))?;
        let out = f(conn, self.deadline());
        if out.is_err() {
            self.failed.set(true);
        }
        out
    }

    pub(crate) fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.with(|c, d| {
            let s = c.statement(d, sql)?;
            c.link.query(d, &s, params)
        })
    }

    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.with(|c, d| {
            let s = c.statement(d, sql)?;
            c.link.query_opt(d, &s, params)
        })
    }

    pub(crate) fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.with(|c, d| {
            let s = c.statement(d, sql)?;
            c.link.execute(d, &s, params)
        })
    }

    /// ` FOR UPDATE` in a write transaction: the rows read stay locked
    /// until it ends, as SQLite's single writer guarantees.
    pub(crate) fn lock(&self) -> &'static str {
        if self.write { " FOR UPDATE" } else { "" }
    }

    /// Notes that the key with this hash changed: its cached state is
    /// forgotten now and again once the transaction ends, so this process
    /// never answers from a state older than its own write (other
    /// processes hear of it by notification).
    pub(crate) fn key_changed(&self, hash: [u8; 32]) {
        self.changed.borrow_mut().push(hash);
        self.store.states.forget(Some(hash));
    }

    /// Commits (or rolls back) and gives the connection back.
    fn finish(&self, out: Result<()>) -> Result<()> {
        let conn = self.conn.borrow_mut().take();
        let result = match conn {
            None => out,
            Some(mut c) => {
                let ok = out.is_ok() && !self.failed.get();
                let end = match (self.begin, ok) {
                    (None, _) => Ok(()),
                    (Some(_), true) => c.link.batch_execute(self.deadline(), "COMMIT"),
                    // A rollback is not worth waiting for: a broken
                    // connection is closed, and the server rolls back.
                    (Some(_), false) if c.link.is_broken() => Ok(()),
                    (Some(_), false) => c.link.batch_execute(self.deadline(), "ROLLBACK"),
                };
                let healthy = end.is_ok();
                self.store.give_back(c, healthy);
                match (out, end) {
                    (Err(e), _) => Err(e),
                    (Ok(()), Err(e)) => Err(e),
                    (Ok(()), Ok(())) => Ok(()),
                }
            }
        };
        for hash in self.changed.borrow_mut().drain(..) {
            self.store.states.forget(Some(hash));
        }
        result
    }

    /// The key state of `hash`: from the cache while it is trusted (see the
    /// module docs), else read and cached. Unless `verify_fail_open`, a
    /// cached state past `max_staleness` never answers: the read's error does.
    pub(crate) fn key_state(
        &self,
        hash: &[u8; 32],
        read: impl FnOnce() -> Result<Option<KeyState>>,
    ) -> Result<Option<KeyState>> {
        let states = &self.store.states;
        let use_cache = !self.store.strict && !self.write;
        let cached = if use_cache {
            states.cache.get(hash)
        } else {
            None
        };
        if let Some(c) = &cached
            && states.trusted(c.read_at, self.store.bounds.max_staleness)
        {
            return Ok(c.state.as_deref().map(KeyStateCopy::state));
        }
        let epoch = states.epoch.load(Ordering::SeqCst);
        let started = Instant::now();
        let state = match read() {
            Ok(s) => s,
            Err(e) => {
                return match cached {
                    Some(c)
                        if self.store.bounds.verify_fail_open && e.kind() != ErrorKind::Busy =>
                    {
                        Ok(c.state.as_deref().map(KeyStateCopy::state))
                    }
                    _ => Err(e),
                };
            }
        };
        if use_cache && states.epoch.load(Ordering::SeqCst) == epoch {
            states.cache.insert(
                *hash,
                CachedState {
                    state: state.as_ref().map(|s| {
                        Arc::new(KeyStateCopy {
                            seq: s.seq,
                            id: s.id.clone(),
                            revision: s.revision,
                            enabled: s.enabled,
                            revoked_at: s.revoked_at,
                            expires_at: s.expires_at,
                        })
                    }),
                    read_at: started,
                },
            );
        }
        Ok(state)
    }
}

/// A use that ends without `finish` (a panic in the caller's closure):
/// its connection may sit in an open transaction, so it is closed (the
/// server rolls back) and its place in the pool freed.
impl Drop for Pg<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.get_mut().take() {
            self.store.give_back(c, false);
        }
    }
}

impl Tx for Pg<'_> {
    fn keys(&self) -> &dyn crate::store::KeyStore {
        self
    }
    fn audit(&self) -> &dyn crate::store::AuditStore {
        self
    }
    fn quota(&self) -> &dyn crate::store::QuotaStore {
        self
    }
    fn usage(&self) -> &dyn crate::store::UsageStore {
        self
    }
    fn sessions(&self) -> &dyn crate::store::SessionStore {
        self
    }
    fn signing(&self) -> &dyn crate::store::SigningStore {
        self
    }
    fn agents(&self) -> &dyn crate::store::AgentStore {
        self
    }
    fn meta(&self) -> &dyn crate::store::MetaStore {
        self
    }
    fn rates(&self) -> &dyn crate::store::RateStore {
        self
    }
    fn capabilities(&self) -> &dyn crate::store::CapabilityStore {
        self
    }
    fn families(&self) -> &dyn crate::store::FamilyStore {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic inside a transaction frees its connection's place in the
    /// pool: more panics than the pool has connections, then a query works.
    #[test]
    fn panics_do_not_leak_pool_connections() {
        let base = std::env::var("IRONTOKEN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into());
        let Ok(mut admin) = base
            .parse::<postgres::Config>()
            .map_err(|_| ())
            .and_then(|mut c| {
                c.connect_timeout(Duration::from_secs(2));
                c.connect(postgres::NoTls).map_err(|_| ())
            })
        else {
            eprintln!("skipped: no PostgreSQL at {base}");
            return;
        };
        let schema = format!("itk_unit_{}", std::process::id());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let url = format!("{base}?options=-csearch_path%3D{schema}");
        let bounds = Bounds {
            busy_timeout: Duration::from_millis(500),
            storage_timeout: Duration::from_secs(5),
            max_staleness: Duration::from_secs(1),
            verify_fail_open: false,
        };
        let store = PgStore::open(&url, bounds, true).unwrap();
        let backend: &dyn Backend = &store;
        for _ in 0..MAX_CONNECTIONS + 4 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                backend.write(|tx| -> Result<()> {
                    tx.meta().put_once("k", "v")?;
                    panic!("boom");
                })
            }));
            assert!(r.is_err());
        }
        // Nothing of the panicked transactions stayed; the pool still lends.
        assert_eq!(backend.read(|tx| tx.meta().get("k")).unwrap(), None);
        drop(store);
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}
