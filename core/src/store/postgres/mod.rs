//! The PostgreSQL store, for a fleet of hosts: the same schema semantics as
//! SQLite (versioned migrations applied under an advisory lock, so workers
//! starting together migrate once), a small connection pool, row locks
//! (`SELECT ... FOR UPDATE`) wherever a write transaction reads what it then
//! writes, so quotas, budgets and rate limits are never oversold across hosts.
//!
//! Verification stays in memory: key states are cached per process and a
//! listener (`LISTEN irontoken_keys`; every change of `api_keys` notifies
//! its hash) drops what changed, within milliseconds on every host. While
//! the listener is down, cached states older than [`STALE_AFTER`] are read
//! again; with the `strict` option every verification reads the database.

mod queries;
mod tls;

use crate::error::{Error, ErrorKind, Result};
use crate::store::{Access, Backend, KeyState, Tx};
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tls::Tls;

/// The schema, one entry per version (never edit a released one).
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
];

/// The schema version this build writes.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock held while migrating (any fixed number).
const MIGRATION_LOCK: i64 = 0x6972_6f6e_746f_6b6e; // "irontokn"

/// Connections a store opens at most; a caller waits (up to the busy
/// timeout) for one to come back.
const MAX_CONNECTIONS: usize = 16;

/// How old a cached key state may be while the change listener is down.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(1);

/// Key states cached (by hash) for verification.
const STATE_CACHE: usize = 100_000;

/// The notification channel of `api_keys` changes.
const CHANNEL: &str = "irontoken_keys";

/// PostgreSQL errors as irontoken errors: lock waits, deadlocks and
/// serialization failures are `BUSY`; the rest `STORAGE`, with the server's
/// primary message only (its detail can quote row values).
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
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
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        if self.statements.len() >= 256 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// A cached key state and when it was read.
#[derive(Clone)]
struct CachedState {
    state: Option<Arc<KeyStateCopy>>,
    read_at: Instant,
}

/// A [`KeyState`] kept in the cache.
struct KeyStateCopy {
    seq: i64,
    id: String,
    revision: i64,
    enabled: bool,
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
}

impl KeyStateCopy {
    fn state(&self) -> KeyState {
        KeyState {
            seq: self.seq,
            id: self.id.clone(),
            revision: self.revision,
            enabled: self.enabled,
            revoked_at: self.revoked_at,
            expires_at: self.expires_at,
        }
    }
}

/// Key states by hash, shared with the listener thread.
struct States {
    cache: quick_cache::sync::Cache<[u8; 32], CachedState>,
    /// Bumped by every invalidation: a state read before a change is not
    /// cached after it.
    epoch: AtomicU64,
    /// The listener is connected and listening.
    listening: AtomicBool,
    /// Set when the store is dropped: the listener thread ends.
    stop: AtomicBool,
}

impl States {
    fn forget(&self, hash: Option<[u8; 32]>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match hash {
            Some(h) => {
                self.cache.remove(&h);
            }
            None => self.cache.clear(),
        }
    }
}

/// The PostgreSQL store (see the module docs).
pub(crate) struct PgStore {
    config: postgres::Config,
    /// Whether (and how) connections use TLS.
    tls: Tls,
    idle: Mutex<Vec<Conn>>,
    /// Connections open (idle or lent).
    open: Mutex<usize>,
    returned: Condvar,
    busy_timeout: Duration,
    strict: bool,
    states: Arc<States>,
    /// Keys whose last consumption could not take the one-row path (no solo
    /// quota row, or a denial, alert or window roll), and when: for
    /// [`GENERAL_HINT`] they go straight to the general function instead of
    /// trying the one-row UPDATE first (a round trip saved). Only a hint:
    /// either path gives the same answer.
    pub(crate) general_hint: quick_cache::sync::Cache<String, Instant>,
}

/// How long a key stays sent to the general quota path after the one-row
/// path missed it.
pub(crate) const GENERAL_HINT: Duration = Duration::from_secs(1);

impl Drop for PgStore {
    fn drop(&mut self) {
        self.states.stop.store(true, Ordering::SeqCst);
    }
}

/// Parses a `postgresql://` or `postgres://` URL (libpq's form, with its
/// query parameters: `sslmode`, `sslrootcert`, `connect_timeout`,
/// `options`...) into the connection settings and the TLS to use.
fn config_of(url: &str) -> Result<(postgres::Config, Tls)> {
    let (url, tls) = tls::split(url)?;
    let mut config: postgres::Config = url.parse().map_err(|_| {
        Error::invalid(
            "invalid PostgreSQL URL (expected postgresql://user[:password]@host[:port]/database)",
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("irontoken");
    }
    Ok((config, tls))
}

impl PgStore {
    /// Connects, migrates the schema (once, under an advisory lock) and
    /// starts the change listener.
    pub(crate) fn open(url: &str, busy_timeout: Duration, strict: bool) -> Result<PgStore> {
        let (config, tls) = config_of(url)?;
        let store = PgStore {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            returned: Condvar::new(),
            busy_timeout,
            strict,
            states: Arc::new(States {
                cache: quick_cache::sync::Cache::new(STATE_CACHE),
                epoch: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                stop: AtomicBool::new(false),
            }),
            general_hint: quick_cache::sync::Cache::new(4096),
        };
        let mut conn = store.checkout()?;
        let migrated = migrate(&mut conn.client);
        store.give_back(conn, migrated.is_ok());
        migrated?;
        if !strict {
            let config = store.config.clone();
            let tls = store.tls.clone();
            let states = store.states.clone();
            std::thread::Builder::new()
                .name("irontoken-pg-listen".into())
                .spawn(move || listen(&config, &tls, &states))
                .map_err(|e| Error::new(ErrorKind::Internal, format!("spawn failed: {e}")))?;
        }
        Ok(store)
    }

    fn connect(&self) -> Result<Conn> {
        let mut client = self.tls.connect(&self.config)?;
        let ms = self.busy_timeout.as_millis().max(1);
        client.batch_execute(&format!("SET lock_timeout = {ms}"))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    /// An idle connection, a new one, or (at the limit) the next one given
    /// back within the busy timeout.
    fn checkout(&self) -> Result<Conn> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let deadline = Instant::now() + self.busy_timeout;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                return Ok(c);
            }
            if *open < MAX_CONNECTIONS {
                *open += 1;
                drop(open);
                return self.connect().inspect_err(|_| {
                    *self.open.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                    self.returned.notify_one();
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!(
                        "all {MAX_CONNECTIONS} PostgreSQL connections stayed busy beyond the busy timeout"
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
        if healthy && !conn.client.is_closed() {
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
}

/// One use of the store: a connection taken on the first statement (a
/// verification answered from the cache takes none), in a transaction
/// unless it only reads.
pub(crate) struct Pg<'a> {
    store: &'a PgStore,
    conn: RefCell<Option<Conn>>,
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
    /// Runs `f` on the connection, taking one (and opening the transaction) first.
    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut slot = self.conn.borrow_mut();
        if slot.is_none() {
            if self.local {
                return Err(Error::new(
                    ErrorKind::Busy,
                    "the answer needs a round trip to PostgreSQL",
                ));
            }
            let mut c = self.store.checkout()?;
            if let Some(begin) = self.begin
                && let Err(e) = c.client.batch_execute(begin)
            {
                self.store.give_back(c, false);
                return Err(e.into());
            }
            *slot = Some(c);
        }
        let conn = slot
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "no connection"))?;
        let out = f(conn);
        if out.is_err() {
            self.failed.set(true);
        }
        out
    }

    pub(crate) fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.with(|c| {
            let s = c.statement(sql)?;
            Ok(c.client.query(&s, params)?)
        })
    }

    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.with(|c| {
            let s = c.statement(sql)?;
            Ok(c.client.query_opt(&s, params)?)
        })
    }

    pub(crate) fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.with(|c| {
            let s = c.statement(sql)?;
            Ok(c.client.execute(&s, params)?)
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
                    (Some(_), true) => c.client.batch_execute("COMMIT"),
                    (Some(_), false) => c.client.batch_execute("ROLLBACK"),
                };
                let healthy = end.is_ok();
                self.store.give_back(c, healthy);
                match (out, end) {
                    (Err(e), _) => Err(e),
                    (Ok(()), Err(e)) => Err(e.into()),
                    (Ok(()), Ok(())) => Ok(()),
                }
            }
        };
        for hash in self.changed.borrow_mut().drain(..) {
            self.store.states.forget(Some(hash));
        }
        result
    }

    /// The key state of `hash`: from the cache unless `strict` (or stale
    /// while the listener is down), else read and cached.
    pub(crate) fn key_state(
        &self,
        hash: &[u8; 32],
        read: impl FnOnce() -> Result<Option<KeyState>>,
    ) -> Result<Option<KeyState>> {
        let states = &self.store.states;
        let use_cache = !self.store.strict && !self.write;
        if use_cache && let Some(c) = states.cache.get(hash) {
            let fresh =
                states.listening.load(Ordering::SeqCst) || c.read_at.elapsed() < STALE_AFTER;
            if fresh {
                return Ok(c.state.as_deref().map(KeyStateCopy::state));
            }
        }
        let epoch = states.epoch.load(Ordering::SeqCst);
        let state = read()?;
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
                    read_at: Instant::now(),
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
}

/// Applies the migrations this database lacks, once however many
/// processes start together (a session advisory lock around them).
fn migrate(client: &mut Client) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = (|| -> Result<()> {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS irontoken_schema (version bigint NOT NULL)",
        )?;
        let current: i64 = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM irontoken_schema",
                &[],
            )?
            .get(0);
        if current > PG_SCHEMA_VERSION {
            return Err(Error::new(
                ErrorKind::SchemaTooNew,
                format!(
                    "database schema version {current} is newer than this irontoken supports ({PG_SCHEMA_VERSION})"
                ),
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            let mut tx = client.transaction()?;
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO irontoken_schema (version) VALUES ($1)",
                &[&(i as i64 + 1)],
            )?;
            tx.commit()?;
        }
        Ok(())
    })();
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked?;
    Ok(())
}

/// The listener thread: forgets the cached state of every key another
/// process (or host) changes. While disconnected it retries, and the cache
/// serves states no older than [`STALE_AFTER`]; on reconnecting it forgets
/// everything (changes may have been missed).
fn listen(config: &postgres::Config, tls: &Tls, states: &States) {
    let mut backoff = Duration::from_millis(50);
    while !states.stop.load(Ordering::SeqCst) {
        let mut client = match tls.connect(config) {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        backoff = Duration::from_millis(50);
        states.forget(None);
        states.listening.store(true, Ordering::SeqCst);
        while !states.stop.load(Ordering::SeqCst) && !client.is_closed() {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(Duration::from_millis(250));
            loop {
                match postgres::fallible_iterator::FallibleIterator::next(&mut it) {
                    Ok(Some(note)) => states.forget(hash_of(note.payload())),
                    Ok(None) => break,
                    Err(_) => break,
                }
            }
        }
        states.listening.store(false, Ordering::SeqCst);
    }
}

/// The key hash a notification names (hex), or None to forget everything.
fn hash_of(payload: &str) -> Option<[u8; 32]> {
    if payload.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(payload.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
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
        let store = PgStore::open(&url, Duration::from_millis(500), true).unwrap();
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
