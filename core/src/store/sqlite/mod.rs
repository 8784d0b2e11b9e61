//! The SQLite store, the embedded default: connections and pragmas here;
//! schema migrations in `migrate.rs`, `doctor` in `doctor.rs`, creating a
//! file in `files.rs`, and the queries behind the storage interface in one
//! file per concern.
//!
//! One writer connection (behind a mutex; every write is a `BEGIN IMMEDIATE`
//! transaction) and a small pool of reader connections. WAL mode lets readers
//! in this and other processes run while a writer commits. A `:memory:`
//! database uses the writer connection for everything.

mod agents;
mod audit;
mod capabilities;
mod doctor;
pub(crate) mod epoch;
mod families;
mod files;
mod keys;
mod meta;
mod migrate;
mod quota;
mod rates;
mod sessions;
mod signing;
mod usage;

pub use doctor::*;
use files::*;
pub use migrate::*;

use crate::error::{Error, ErrorKind, Result};
use rusqlite::{Connection, OpenFlags};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How hard a commit tries to reach the disk (SQLite `PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a committed change (revoke, create...) survives a
    /// power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits survive a process crash but the last
    /// ones may roll back on power loss or OS crash. Faster bulk writes.
    Normal,
}

const MAX_IDLE_READERS: usize = 8;

/// Prepared statements kept per connection. rusqlite's default (16) is
/// fewer than the statements of the hot paths together, which made every
/// call re-parse its SQL.
const STATEMENT_CACHE: usize = 128;

/// Memory settings of every connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Page cache per connection, MiB.
    pub page_cache_mib: u32,
    /// Memory-mapped bytes of the file, MiB (0: off).
    pub mmap_mib: u32,
    /// Verification may cache key states under the state epoch (false:
    /// read from the file on every call, the `strict` option).
    pub epoch: bool,
}

impl Tuning {
    fn pragmas(&self) -> String {
        format!(
            "{}; PRAGMA mmap_size={};",
            cache_size_pragma(self.page_cache_mib),
            u64::from(self.mmap_mib) << 20
        )
    }
}

/// The pragma that sets a connection's page cache to `mib` MiB.
fn cache_size_pragma(mib: u32) -> String {
    format!("PRAGMA cache_size=-{}", u64::from(mib) * 1024)
}

/// WAL pages after which a checkpoint is wanted (SQLite's default threshold).
const CHECKPOINT_PAGES: i32 = 1000;

/// WAL pages past which the flusher finishes its checkpoint holding this
/// process's writer turn (see `Db::checkpoint_if_wanted`).
const CHECKPOINT_FINISH_PAGES: i32 = 4 * CHECKPOINT_PAGES;

/// WAL pages after which the committing connection checkpoints itself (the
/// background checkpoint did not keep up).
const CHECKPOINT_INLINE_PAGES: i32 = 16 * CHECKPOINT_PAGES;

pub(crate) struct Db {
    path: Option<String>,
    tuning: Tuning,
    /// Set by the writer's WAL hook when the log passed [`CHECKPOINT_PAGES`]:
    /// the flusher thread then checkpoints it, off every caller's path.
    checkpoint_wanted: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the flusher when the hook first asks for a checkpoint: the WAL
    /// stays near the threshold however fast the commits come (a long WAL
    /// of one page rewritten makes every commit's WAL-index append probe
    /// a long hash chain).
    checkpoint_waker: Arc<std::sync::OnceLock<super::Waker>>,
    /// The connection that runs those checkpoints, opened on first use.
    checkpointer: Mutex<Option<Connection>>,
    busy_timeout: Duration,
    durability: Durability,
    /// The file could only be opened read-only (write-protected).
    readonly: bool,
    writer: Mutex<Writer>,
    /// This process's writer turns, first come first served: the threads
    /// waiting wait on `gate_free`, at most the busy timeout in all.
    gate: Mutex<Gate>,
    gate_free: Condvar,
    readers: Mutex<Vec<Connection>>,
    /// The state epoch's watch, under which the manager caches key states
    /// (`None` with `strict`: the state is read on every call).
    epoch: Option<Arc<epoch::EpochWatch>>,
}

/// A ticket queue for the writer: a thread that loops on writes (a flush
/// of a large backlog, slice after slice) queues behind those already
/// waiting instead of taking the writer again at once.
#[derive(Default)]
struct Gate {
    /// The next ticket to hand out.
    next: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets whose holders stopped waiting (busy timeout): skipped.
    abandoned: std::collections::BTreeSet<u64>,
    /// Threads waiting on `gate_free`: a turn given back with none waiting
    /// wakes nobody (a condvar notify is a futex syscall even then).
    waiting: u32,
}

/// Holds this process's writer turn; gives it back on drop.
struct Turn<'a>(&'a Db);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut g = lock(&self.0.gate);
        g.serving += 1;
        loop {
            let s = g.serving;
            if !g.abandoned.remove(&s) {
                break;
            }
            g.serving += 1;
        }
        let wake = g.waiting > 0;
        drop(g);
        if wake {
            self.0.gate_free.notify_all();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no open transaction behind
    // (rusqlite rolls back on drop), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Db {
    #[cfg(test)]
    pub(crate) fn open(path: &str, durability: Durability, busy_timeout: Duration) -> Result<Db> {
        let tuning = Tuning {
            page_cache_mib: 8,
            mmap_mib: 0,
            epoch: true,
        };
        Db::open_with(path, durability, busy_timeout, true, tuning)
    }

    /// Opens the database; with `create` false a missing file is
    /// `DATABASE_NOT_FOUND` instead of a new database; an existing empty
    /// file is always `DATABASE_NOT_FOUND` (never made a new database). A file of at most
    /// [`QUICK_CHECK_MAX_BYTES`] is checked with `PRAGMA quick_check` first:
    /// a damaged one is `DATABASE_CORRUPT` and nothing is written to it.
    pub(crate) fn open_with(
        path: &str,
        durability: Durability,
        busy_timeout: Duration,
        create: bool,
        tuning: Tuning,
    ) -> Result<Db> {
        configure_sqlite();
        if path.is_empty() {
            return Err(Error::invalid(
                "database path is empty (use \":memory:\" for a private in-memory database)",
            ));
        }
        if path.contains('\0') {
            return Err(Error::invalid("database path contains a NUL byte"));
        }
        let memory = path == ":memory:";
        let conn = if memory {
            Connection::open_in_memory()?
        } else if create {
            create_database(path)?;
            Connection::open(path)?
        } else {
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && m.len() == 0 => return Err(empty_file(path)),
                Err(_) => return Err(not_found(path)),
                Ok(_) => {}
            }
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?
        };
        conn.busy_timeout(busy_timeout)?;
        if !memory {
            quick_check(&conn, path)?;
        }
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if !memory {
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!("could not switch the database to WAL mode (got {mode})"),
                ));
            }
        }
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys=ON; PRAGMA synchronous={sync}; PRAGMA journal_size_limit=67108864; {}",
            tuning.pragmas()
        ))?;
        let readonly = conn.is_readonly(rusqlite::MAIN_DB)?;
        // Checkpoints move off the write path: the hook (which replaces
        // SQLite's automatic checkpoint) only asks for one, unless the log
        // has grown far past the threshold.
        let checkpoint_wanted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoint_waker = Arc::new(std::sync::OnceLock::<super::Waker>::new());
        if !readonly {
            migrate(&conn)?;
        } else {
            let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if v != SCHEMA_VERSION {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "the database is read-only and at schema v{v}; this irontoken needs v{SCHEMA_VERSION}"
                    ),
                ));
            }
        }
        let mut conn = conn;
        // The WAL index exists by now (the file was read in WAL mode). The
        // watch reads the writer's mapping of it: `epoch` is the last field
        // of `Db`, dropped after the writer closes.
        let epoch = tuning
            .epoch
            .then(|| Arc::new(epoch::EpochWatch::new((!memory).then_some(&conn))));
        if !memory && !readonly {
            let wanted = checkpoint_wanted.clone();
            let waker = checkpoint_waker.clone();
            // Set by a change of a key's row (a state change, or possibly
            // one) or of the epoch (an owner policy's change moves it),
            // cleared by the commit's WAL hook below.
            let touched = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let touch = touched.clone();
            conn.update_hook(Some(
                move |action: rusqlite::hooks::Action, _db: &str, table: &str, _row: i64| {
                    let keys =
                        table == "api_keys" && action != rusqlite::hooks::Action::SQLITE_INSERT;
                    if keys || table == "key_epoch" {
                        touch.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                },
            ))?;
            let watch = epoch.clone();
            conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
                // After this process's commit: if it changed no key's row
                // and was the only commit since the last check, the cached
                // states still hold (a verification after each quota
                // consumption needs no check).
                let touched = touched.swap(false, std::sync::atomic::Ordering::Relaxed);
                if let Some(w) = &watch
                    && !touched
                {
                    w.own_commit();
                }
                if pages >= CHECKPOINT_INLINE_PAGES {
                    let _ = wal.checkpoint();
                } else if pages >= CHECKPOINT_PAGES
                    && !wanted.swap(true, std::sync::atomic::Ordering::Relaxed)
                    && let Some(wake) = waker.get()
                {
                    wake();
                }
                Ok(())
            }))?;
        }
        Ok(Db {
            path: (!memory).then(|| path.to_string()),
            tuning,
            checkpoint_wanted,
            checkpoint_waker,
            checkpointer: Mutex::new(None),
            busy_timeout,
            durability,
            readonly,
            writer: Mutex::new(Writer {
                conn,
                relaxed: false,
            }),
            gate: Mutex::new(Gate::default()),
            gate_free: Condvar::new(),
            readers: Mutex::new(Vec::new()),
            epoch,
        })
    }

    /// Another connection to the file (readers, the checkpointer).
    fn connect(&self, path: &str) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        Ok(conn)
    }

    fn open_reader(&self, path: &str) -> Result<Connection> {
        let conn = self.connect(path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.execute_batch(&format!(
            "PRAGMA query_only=ON; PRAGMA foreign_keys=ON; {}",
            self.tuning.pragmas()
        ))?;
        Ok(conn)
    }

    /// Runs `f` on a reader connection (the writer for `:memory:`).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let Some(path) = &self.path else {
            return f(&lock(&self.writer).conn);
        };
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open_reader(path)?,
        };
        let out = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    /// Like [`Db::read`], but `f`'s statements share one read transaction:
    /// one snapshot, and one WAL read lock (two `fcntl` calls) for all of
    /// them instead of one per statement.
    pub(crate) fn read_snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read(|c| in_transaction(c, "BEGIN", f))
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: all of it commits, or
    /// none, with the durability the manager was opened with.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.write_with(false, Some("BEGIN IMMEDIATE"), f)
    }

    /// Like [`Db::write`] but commits with `synchronous=NORMAL`: no fsync
    /// for this commit (WAL). The transaction survives a process crash; an
    /// OS crash or power loss may roll it back until the next full commit or
    /// checkpoint. Used for counters on hot paths (quota consumption).
    pub(crate) fn write_relaxed<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.write_with(true, Some("BEGIN IMMEDIATE"), f)
    }

    /// Runs a PASSIVE checkpoint on a reader connection if the writer's WAL
    /// hook asked for one (it never blocks writers; the flusher thread calls
    /// this after each flush).
    pub(crate) fn checkpoint_if_wanted(&self) -> Result<()> {
        if self.path.is_none()
            || !self
                .checkpoint_wanted
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        // Its own connection: the readers are query_only, which refuses a
        // checkpoint (it writes the database file).
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut slot = lock(&self.checkpointer);
        if slot.is_none() {
            *slot = Some(self.connect(path)?);
        }
        let Some(c) = slot.as_ref() else {
            return Ok(());
        };
        let passive = || -> Result<(i64, i64)> {
            Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })?)
        };
        let (log, _) = passive()?;
        if log >= i64::from(CHECKPOINT_FINISH_PAGES) {
            // A log only starts over when a write begins after a checkpoint
            // copied all of it; under a steady stream of writes one is
            // always under way, so the log grows until the writer's hook
            // checkpoints inline (a stall of tens of ms at 16 000 pages).
            // Catch up twice (each pass copies what was written during the
            // one before: less and less), then copy the last frames while
            // this process's writers wait their turn (one small copy and
            // its fsyncs); the next write starts the log over.
            passive()?;
            passive()?;
            let _turn = self.turn(Instant::now() + self.busy_timeout)?;
            passive()?;
        }
        Ok(())
    }

    /// True if a thread of this process waits for the writer.
    pub(crate) fn writers_waiting(&self) -> bool {
        let g = lock(&self.gate);
        g.next > g.serving + 1 + g.abandoned.len() as u64
    }

    /// Waits for this process's writer turn until `deadline`; `BUSY` after it.
    fn turn(&self, deadline: Instant) -> Result<Turn<'_>> {
        let mut g = lock(&self.gate);
        let me = g.next;
        g.next += 1;
        if g.serving == me {
            return Ok(Turn(self));
        }
        g.waiting += 1;
        while g.serving != me {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                g.waiting -= 1;
                g.abandoned.insert(me);
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!(
                        "another write of this process held the database beyond the busy timeout ({} ms)",
                        self.busy_timeout.as_millis()
                    ),
                ));
            }
            g = self
                .gate_free
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        g.waiting -= 1;
        Ok(Turn(self))
    }

    /// One writing statement, relaxed like [`Db::write_relaxed`], committed
    /// on its own: no BEGIN and COMMIT around it (SQLite runs a statement
    /// outside a transaction atomically in one of its own).
    fn statement<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.write_with(true, None, f)
    }

    /// [`Db::write`] with a page cache of at least
    /// [`super::BULK_CACHE_MIB`] for its duration: back to the manager's own
    /// size after the commit (or rollback), which frees the extra pages.
    pub(crate) fn write_bulk<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let own = self.tuning.page_cache_mib;
        if own >= super::BULK_CACHE_MIB {
            return self.write(f);
        }
        /// Puts the manager's cache size back however the write ends
        /// (commit, rollback or panic), once the transaction is over.
        struct Restore<'a>(&'a Db, String);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let _ = lock(&self.0.writer).conn.execute_batch(&self.1);
            }
        }
        let _restore = Restore(self, cache_size_pragma(own));
        self.write(|c| {
            c.execute_batch(&cache_size_pragma(super::BULK_CACHE_MIB))?;
            f(c)
        })
    }

    fn write_with<T>(
        &self,
        relaxed: bool,
        begin: Option<&str>,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        // The busy timeout bounds the whole wait: for this process's other
        // writers first, then for other processes' locks (SQLite's handler
        // gets what is left).
        let deadline = super::deadline(Instant::now() + self.busy_timeout);
        let _turn = self.turn(deadline)?;
        let mut w = lock(&self.writer);
        let left = deadline.saturating_duration_since(Instant::now());
        w.conn.busy_timeout(left.max(Duration::from_millis(1)))?;
        // Only a FULL file database switches; the pragma is set before each
        // write that needs another level than the last one left (so a panic
        // in a relaxed write cannot leave later writes without their fsync).
        let relaxed = relaxed && self.durability == Durability::Full && self.path.is_some();
        if w.relaxed != relaxed {
            let sql = if relaxed {
                "PRAGMA synchronous=NORMAL"
            } else {
                "PRAGMA synchronous=FULL"
            };
            w.conn.prepare_cached(sql)?.execute([])?;
            w.relaxed = relaxed;
        }
        match begin {
            Some(begin) => in_transaction(&w.conn, begin, f),
            None => f(&w.conn),
        }
    }
}

/// Runs `f` between `begin` and COMMIT, both cached statements (rusqlite's
/// `Transaction` parses them on every call: a quarter of a quota
/// consumption); rolled back if `f` or the COMMIT fails, or `f` panics.
fn in_transaction<T>(
    conn: &Connection,
    begin: &str,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached(begin)?.execute([])?;
    let open = Open(conn);
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    std::mem::forget(open);
    Ok(out)
}

/// An open write transaction: rolled back when dropped before COMMIT (an
/// error or a panic in the body, or a failed COMMIT).
struct Open<'a>(&'a Connection);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// A connection (or open transaction) seen through the storage interface.
pub(crate) struct Sql<'a>(pub &'a Connection);

impl super::Tx for Sql<'_> {
    fn keys(&self) -> &dyn super::KeyStore {
        self
    }
    fn audit(&self) -> &dyn super::AuditStore {
        self
    }
    fn quota(&self) -> &dyn super::QuotaStore {
        self
    }
    fn usage(&self) -> &dyn super::UsageStore {
        self
    }
    fn sessions(&self) -> &dyn super::SessionStore {
        self
    }
    fn signing(&self) -> &dyn super::SigningStore {
        self
    }
    fn agents(&self) -> &dyn super::AgentStore {
        self
    }
    fn meta(&self) -> &dyn super::MetaStore {
        self
    }
    fn rates(&self) -> &dyn super::RateStore {
        self
    }
    fn capabilities(&self) -> &dyn super::CapabilityStore {
        self
    }
    fn families(&self) -> &dyn super::FamilyStore {
        self
    }
}

impl super::Backend for Db {
    fn run(
        &self,
        access: super::Access,
        f: &mut dyn FnMut(&dyn super::Tx) -> Result<()>,
    ) -> Result<()> {
        use super::Access;
        match access {
            Access::Read | Access::Local => self.read(|c| f(&Sql(c))),
            Access::Snapshot => self.read_snapshot(|c| f(&Sql(c))),
            Access::Write => self.write(|c| f(&Sql(c))),
            Access::Bulk => self.write_bulk(|c| f(&Sql(c))),
            Access::WriteRelaxed => self.write_relaxed(|c| f(&Sql(c))),
            Access::Statement => self.statement(|c| f(&Sql(c))),
        }
    }

    fn readonly(&self) -> bool {
        self.readonly
    }

    fn writers_waiting(&self) -> bool {
        Db::writers_waiting(self)
    }

    fn maintain(&self) -> Result<()> {
        self.checkpoint_if_wanted()
    }

    fn call_bound(&self) -> Duration {
        self.busy_timeout
    }

    fn on_maintenance_due(&self, wake: super::Waker) {
        let _ = self.checkpoint_waker.set(wake);
    }

    fn epoch(&self) -> Option<&epoch::EpochWatch> {
        self.epoch.as_deref()
    }
}

/// The writer connection and the `synchronous` level it is set to.
struct Writer {
    conn: Connection,
    /// True while `synchronous=NORMAL` is set on a FULL database.
    relaxed: bool,
}

/// SQLite errors as irontoken errors: locks are `BUSY`, damage is
/// `DATABASE_CORRUPT`, the rest `STORAGE`.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        // SQLite messages carry table and column names, never bound values,
        // so they are safe to pass on.
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Error::new(ErrorKind::Busy, format!("database is locked: {e}"))
            }
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
            {
                Error::new(
                    ErrorKind::DatabaseCorrupt,
                    format!(
                        "the database is damaged or not an irontoken database: {e} (run `irontoken doctor`)"
                    ),
                )
            }
            _ => Error::new(ErrorKind::Storage, format!("database error: {e}")),
        }
    }
}

/// A stored count or amount (the schema keeps them >= 0) as `u64`.
pub(crate) fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// A JSON column parsed as `T`; a malformed value is a conversion error of that column.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let s = row.get_ref(i)?.as_str()?;
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Runs a listing query whose SQL ends in `ORDER BY seq LIMIT ?`: binds
/// `args` plus `limit + 1`, converts up to `limit` rows with `item`, and
/// returns the page with the cursor (the `seq` in column `seq_col` of the
/// last row) when there is more.
pub(crate) fn paged<T>(
    conn: &Connection,
    sql: &str,
    mut args: Vec<rusqlite::types::Value>,
    limit: u32,
    after_seq: i64,
    seq_col: usize,
    item: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<crate::model::keys::Page<T>> {
    args.push((limit as i64 + 1).into());
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut items = Vec::new();
    let mut last_seq = after_seq;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if items.len() == limit as usize {
            more = true;
            break;
        }
        last_seq = row.get(seq_col)?;
        items.push(item(row)?);
    }
    Ok(crate::model::keys::Page {
        items,
        next_cursor: more.then(|| last_seq.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file `name` in a new temporary directory (kept while the
    /// directory lives).
    fn temp_db(name: &str, durability: Durability) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let db = Db::open(path.to_str().unwrap(), durability, Duration::from_secs(1)).unwrap();
        (dir, db)
    }

    /// A bulk write runs with the larger page cache, and the manager's own
    /// size is back after it however it ends: commit, error or panic.
    #[test]
    fn a_bulk_write_gets_a_larger_cache_for_its_duration_only() {
        let (_dir, db) = temp_db("bulk.db", Durability::Normal);
        let cache = |c: &Connection| -> Result<i64> {
            Ok(c.query_row("PRAGMA cache_size", [], |r| r.get(0))?)
        };
        let own = -i64::from(db.tuning.page_cache_mib) * 1024;
        let bulk = -i64::from(super::super::BULK_CACHE_MIB) * 1024;
        assert!(own > bulk, "the default cache is the smaller one");
        assert_eq!(db.write(cache).unwrap(), own);
        assert_eq!(db.write_bulk(cache).unwrap(), bulk);
        assert_eq!(db.write(cache).unwrap(), own, "after a commit");
        let e = db
            .write_bulk(|c| -> Result<()> {
                assert_eq!(cache(c)?, bulk);
                Err(Error::invalid("no"))
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(db.write(cache).unwrap(), own, "after a rollback");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.write_bulk(|_| -> Result<()> { panic!("in a bulk write") })
        }));
        assert!(panicked.is_err());
        assert_eq!(db.write(cache).unwrap(), own, "after a panic");
    }

    #[test]
    fn relaxed_writes_never_leak_into_full_ones() {
        let (_dir, db) = temp_db("s.db", Durability::Full);
        let level = |tx: &Connection| -> Result<i64> {
            Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
        };
        assert_eq!(db.write_relaxed(level).unwrap(), 1); // NORMAL
        assert_eq!(db.write(level).unwrap(), 2); // FULL
        // A panic inside a relaxed write: the next full write still syncs.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.write_relaxed(|_| -> Result<()> { panic!("boom") })
        }));
        assert!(caught.is_err());
        assert_eq!(db.write(level).unwrap(), 2);
    }

    #[test]
    fn empty_path_is_invalid() {
        let e = Db::open("", Durability::Full, Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}
