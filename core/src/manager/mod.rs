//! The entry object: [`TokenManager`], its options, the clock and the
//! write-behind buffer for usage counters and failed-verification audit.
//!
//! # What a crash can lose
//!
//! - Every state change (create, update, disable, enable, revoke, rotate,
//!   delete) and its audit entry commit together in one transaction before
//!   the call returns. With [`Durability::Full`] (default) they survive power
//!   loss; with [`Durability::Normal`] they survive a process crash.
//! - `usage_count` / `last_used_at` increments and failed-verification audit
//!   entries are buffered in memory and written in one transaction every
//!   `flush_interval` (default 1 s), when the buffer passes
//!   [`Options::flush_threshold`], on [`TokenManager::flush`] and when the
//!   manager is dropped. A process crash loses at most what was buffered
//!   since the last flush: about one interval of counters and failed-verify
//!   entries. Nothing else is deferred.

pub use crate::clock::{Clock, MAX_TIME, ManualClock, SystemClock};
use crate::error::{Error, Result};
use crate::fork::{generation, watch_forks};
pub use crate::store::sqlite::DoctorReport;
use crate::store::{self, Backend};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod key_cache;
mod options;
mod write_behind;

pub(crate) use key_cache::CachedKey;
pub use options::{
    DB_ENV, MASTER_KEY_ENV, MAX_INTERVAL, OpenSettings, Options, RATE_LIMIT_STORE_ENV,
    STORAGE_TIMEOUT_ENV, parse_master_key,
};
use write_behind::{Pending, TimedLock};

thread_local! {
    /// Set while a call must not wait ([`TokenManager::try_verify_key`]):
    /// buffering then only wakes the flusher, never flushes inline.
    static NO_INLINE_FLUSH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with inline flushes off on this thread (see [`NO_INLINE_FLUSH`]).
pub(crate) fn without_inline_flush<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            NO_INLINE_FLUSH.set(self.0);
        }
    }
    let _reset = Reset(NO_INLINE_FLUSH.replace(true));
    f()
}

/// Where a manager's rate-limit checks go.
pub(crate) enum Rates {
    /// In-process buckets.
    Local,
    /// The manager's database.
    Store,
    /// A Redis server.
    Redis(Box<store::redis::RedisLimiter>),
    /// A store that could not be set up: every check answers this error.
    Broken(Error),
}

impl Rates {
    /// The store the options name (a Redis URL is checked, not connected).
    fn open(options: &Options) -> Result<Rates> {
        use crate::ratelimit::RateLimitStore as S;
        Ok(match &options.rate_limit_store {
            S::Store => Rates::Store,
            S::Local => Rates::Local,
            S::Redis(url) => Rates::Redis(Box::new(store::redis::RedisLimiter::open(
                url,
                options.rate_limit_timeout,
            )?)),
        })
    }
}

pub(crate) struct Inner {
    /// The database: SQLite or PostgreSQL.
    pub db: Box<dyn Backend>,
    /// RSA size of generated RS256 keys.
    pub rsa_key_bits: usize,
    /// Parsed managed keys, keyed by the fingerprint of the key table.
    pub signing: Mutex<Option<crate::jwt::Loaded>>,
    /// Capability root keys and verified chains.
    pub capabilities: crate::capability::State,
    /// Records by key hash with the revision they were read at (see schema
    /// `revision`); current while the state epoch has not moved (SQLite);
    /// bounded, S3-FIFO eviction.
    records: quick_cache::sync::Cache<[u8; 32], Arc<CachedKey>>,
    pub clock: Arc<dyn Clock>,
    pending: Mutex<Pending>,
    /// Wakes the flusher: a flush is wanted, upkeep is due, or it must stop.
    wake: Condvar,
    /// What the flusher is told to do, read under the lock `wake` waits on.
    orders: Mutex<FlusherOrders>,
    threshold: usize,
    /// Counters for `metrics()`.
    pub metrics: crate::metrics::Metrics,
    /// Operator signals for `drain_events()` (and the alert webhook).
    pub signals: crate::signals::Signals,
    /// Quota alert levels, spend velocity, the webhook sender.
    pub alerts: crate::alerts::Alerts,
    /// In-process rate-limit buckets (store `local`).
    pub limiter: crate::ratelimit::RateLimiter,
    /// Where rate-limit checks go.
    pub rates: Rates,
    /// Allow requests when the rate-limit store fails.
    pub rate_limit_fail_open: bool,
    /// Whether the database holds imported legacy keys (see `keys::import`).
    pub legacy: crate::model::keys::LegacyKeys,
    /// Keys without their own rotation period are due after this many seconds.
    pub default_rotation_period: Option<i64>,
    /// Whether quota calls may take the one-statement fast path.
    pub quota_fast_path: bool,
    /// Solo quota rows as `peek_quota` last read them (SQLite).
    pub peeks: crate::store::sqlite::epoch::PeekMemo,
    /// Owners' model policies (none: `None`) with the state epoch they
    /// were read at: current while the epoch has not moved (SQLite).
    pub owner_rules:
        quick_cache::sync::Cache<String, (i64, Option<Arc<crate::model::keys::OwnerRules>>)>,
    /// Keys whose consumptions go straight to the all-rows statement.
    pub all_rows_hint: crate::store::quota_fast::Hint,
    /// The fork generation of the process this state belongs to.
    generation: u64,
    /// The thread that writes buffered data in the background.
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Held by a flush from taking the buffer to its last commit, and by a
    /// state change that carries buffered entries in its transaction: a
    /// flush answers only once what was buffered before it is committed.
    flushing: TimedLock,
    /// Writes that took buffered entries: begun, and ended (committed or
    /// put back). While they differ, some entries are neither buffered nor
    /// readable in the database.
    carrying: [std::sync::atomic::AtomicU64; 2],
    /// The counters a flush is writing slice by slice, while it does (see
    /// [`write_behind::InFlight`]).
    in_flight: Mutex<Option<Arc<write_behind::InFlight>>>,
    /// Moves of buffered counters (taken for a flush, a slice committed,
    /// put back after a failure): (begun, ended).
    moving: [std::sync::atomic::AtomicU64; 2],
    /// The slice commit under way, if any: the move it is (its begun mark)
    /// and the WAL-index header before it (SQLite: no other commit can
    /// come between, the slice holds the write lock).
    committing: Mutex<Option<(u64, crate::store::sqlite::epoch::CommitMark)>>,
}

/// Owners whose model policies a manager remembers at most.
const OWNER_RULES_CACHED: usize = 4096;

impl Inner {
    /// Opens the database and starts the flusher thread.
    fn start(path: &str, options: &Options) -> Result<Arc<Inner>> {
        let db = store::open(
            path,
            &store::Settings {
                durability: options.durability,
                busy_timeout: options.busy_timeout,
                create: options.create,
                page_cache_mib: options.page_cache_mib,
                mmap_mib: options.mmap_mib,
                strict: options.strict,
                bounds: options.pg_bounds(),
            },
        )?;
        let rates = Rates::open(options)?;
        let inner = Inner::build(db, rates, options, generation());
        let worker = inner.clone();
        let interval = options.flush_interval;
        let flusher = std::thread::Builder::new()
            .name("irontoken-flush".into())
            .spawn(move || flush_loop(&worker, interval))
            .map_err(|e| Error::new(crate::ErrorKind::Internal, format!("spawn failed: {e}")))?;
        *inner.flusher.lock().unwrap_or_else(|e| e.into_inner()) = Some(flusher);
        Ok(inner)
    }

    /// The state around an open database, for fork generation `generation`.
    fn build(db: Box<dyn Backend>, rates: Rates, options: &Options, generation: u64) -> Arc<Inner> {
        let inner = Arc::new(Inner {
            db,
            rsa_key_bits: options.rsa_key_bits,
            signing: Mutex::new(None),
            clock: options.clock.clone(),
            records: quick_cache::sync::Cache::new(options.key_cache_size),
            capabilities: Default::default(),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            orders: Mutex::new(FlusherOrders::default()),
            metrics: Default::default(),
            signals: Default::default(),
            // Checked by open_with; a refusal here never runs.
            alerts: crate::alerts::Alerts::new(&options.alerts)
                .unwrap_or_else(|_| crate::alerts::Alerts::defaults()),
            limiter: crate::ratelimit::RateLimiter::new(options.max_buckets),
            rates,
            rate_limit_fail_open: options.rate_limit_fail_open,
            threshold: options.flush_threshold.max(1),
            legacy: Default::default(),
            default_rotation_period: options.default_rotation_period,
            quota_fast_path: options.quota_fast_path,
            peeks: Default::default(),
            all_rows_hint: Default::default(),
            owner_rules: quick_cache::sync::Cache::new(OWNER_RULES_CACHED),
            generation,
            flusher: Mutex::new(None),
            flushing: TimedLock::default(),
            carrying: Default::default(),
            in_flight: Default::default(),
            moving: Default::default(),
            committing: Default::default(),
        });
        // Upkeep due between polls (a WAL past its checkpoint threshold)
        // wakes the flusher at once. A caller that commits holds the state,
        // so the upgrade is never the last reference.
        if let Some(w) = &inner.alerts.webhook {
            inner.signals.deliver_to(Arc::clone(w));
        }
        let weak = Arc::downgrade(&inner);
        // A wake that comes while the flusher is busy (in a checkpoint, say)
        // is not kept: the next checkpoint then waits for the next poll,
        // which spaces them out. Keeping every wake (a flag) ran them back to
        // back under steady writes and cost four writing processes a third
        // of their throughput (BENCHMARKS.md, "Quotas and usage, against
        // hand-written code").
        inner.db.on_maintenance_due(Box::new(move || {
            if let Some(i) = weak.upgrade() {
                i.wake.notify_one();
            }
        }));
        inner
    }

    /// Stops the flusher thread and writes what is left.
    fn shut_down(&self) {
        self.orders.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.wake.notify_all();
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        let _ = self.flush();
    }
}

impl Inner {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// True if rate limits live in this process (`rate_limit_store = "local"`).
    pub(crate) fn rates_are_local(&self) -> bool {
        matches!(self.rates, Rates::Local)
    }
}

/// The entry object: one per database, `Send + Sync`, share it by reference
/// or in an `Arc` across threads.
///
/// Opened on a SQLite file (created and migrated if needed) or on
/// `":memory:"`. Several processes may open the same file.
///
/// # After `fork()`
///
/// A child process does not use what it inherited: on its first call it
/// opens its own connections and starts its own flusher (the parent's
/// thread does not exist there). What the parent had buffered stays the
/// parent's to write, so nothing is written twice; the child's caches and
/// in-process rate-limit buckets start empty.
pub struct TokenManager {
    /// The live state; replaced in a child process after `fork()`.
    current: arc_swap::ArcSwap<Inner>,
    /// What the manager was opened with, to open it again after a fork.
    target: String,
    options: Options,
}

/// A database that could not be opened again in a child process: every
/// call answers the error until a later call opens it.
struct Unavailable(Error);

impl Backend for Unavailable {
    fn run(
        &self,
        _access: store::Access,
        _f: &mut dyn FnMut(&dyn store::Tx) -> Result<()>,
    ) -> Result<()> {
        Err(self.0.clone())
    }

    fn call_bound(&self) -> Duration {
        // Every call fails at once: nothing waits on this database.
        Duration::from_secs(1)
    }
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager").finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Opens (creating and migrating if needed) the database at `path` with default options.
    pub fn open(path: &str) -> Result<TokenManager> {
        TokenManager::open_with(path, Options::default())
    }

    /// Opens the database `IRONTOKEN_DB` names, with the settings the
    /// environment gives (see [`OpenSettings::with_env`]).
    pub fn from_env() -> Result<TokenManager> {
        let (db, settings) = OpenSettings::default().with_env()?;
        TokenManager::open_with(&db, settings.into_options()?)
    }

    /// Opens the database at `path` with `options`.
    pub fn open_with(path: &str, options: Options) -> Result<TokenManager> {
        if options.flush_interval.is_zero() || options.flush_interval > MAX_INTERVAL {
            return Err(Error::invalid(
                "flush_interval (flush_interval_ms) must be between 1 ms and one hour (3600000 ms)",
            ));
        }
        if options.busy_timeout > MAX_INTERVAL {
            return Err(Error::invalid(
                "busy_timeout (busy_timeout_ms) must be at most one hour (3600000 ms)",
            ));
        }
        if options.flush_threshold == 0 || options.flush_threshold > 1 << 24 {
            return Err(Error::invalid(
                "flush_threshold must be between 1 and 16777216",
            ));
        }
        if options.max_buckets == 0 || options.max_buckets > 1 << 26 {
            return Err(Error::invalid("max_buckets must be between 1 and 67108864"));
        }
        crate::alerts::Alerts::new(&options.alerts)?;
        if options.key_cache_size == 0 || options.key_cache_size > 1 << 24 {
            return Err(Error::invalid(
                "key_cache_size must be between 1 and 16777216",
            ));
        }
        if options.page_cache_mib == 0 || options.page_cache_mib > 1 << 16 {
            return Err(Error::invalid("page_cache_mib must be between 1 and 65536"));
        }
        if options.mmap_mib > 1 << 16 {
            return Err(Error::invalid("mmap_mib must be between 0 and 65536"));
        }
        if options.storage_timeout < Duration::from_millis(10)
            || options.storage_timeout > MAX_INTERVAL
        {
            return Err(Error::invalid(
                "storage_timeout (storage_timeout_ms) must be between 10 ms and one hour",
            ));
        }
        if options.max_staleness < Duration::from_millis(10) || options.max_staleness > MAX_INTERVAL
        {
            return Err(Error::invalid(
                "max_staleness (max_staleness_ms) must be between 10 ms and one hour",
            ));
        }
        if options.rate_limit_timeout.is_zero() || options.rate_limit_timeout > MAX_INTERVAL {
            return Err(Error::invalid(
                "rate_limit_timeout (rate_limit_timeout_ms) must be between 1 ms and one hour",
            ));
        }
        let mut options = options;
        if options.master_key.is_none()
            && let Ok(text) = std::env::var(MASTER_KEY_ENV)
            && !text.trim().is_empty()
        {
            options.master_key = Some(Arc::new(parse_master_key(&text)?));
        }
        watch_forks();
        let inner = Inner::start(path, &options)?;
        Ok(TokenManager {
            current: arc_swap::ArcSwap::new(inner),
            target: path.to_string(),
            options,
        })
    }

    /// The options the manager was opened with (the master key resolved).
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// This process's state: the one opened, or in a child process after
    /// `fork()`, a new one opened on first use.
    pub(crate) fn inner(&self) -> arc_swap::Guard<Arc<Inner>> {
        let g = self.current.load();
        if g.generation == generation() {
            return g;
        }
        self.reopen()
    }

    #[cold]
    fn reopen(&self) -> arc_swap::Guard<Arc<Inner>> {
        static REOPEN: Mutex<()> = Mutex::new(());
        let _one = REOPEN.lock().unwrap_or_else(|e| e.into_inner());
        let now = generation();
        let g = self.current.load();
        if g.generation == now {
            return g;
        }
        let fresh = Inner::start(&self.target, &self.options).unwrap_or_else(|e| {
            // Answer the error (with no flusher) and try again next call.
            let e = Error::new(
                e.kind(),
                format!(
                    "reopening the database in a forked child failed: {}",
                    e.message()
                ),
            );
            let rates = Rates::Broken(e.clone());
            Inner::build(
                Box::new(Unavailable(e)),
                rates,
                &self.options,
                now.wrapping_sub(1),
            )
        });
        // The parent's state is never dropped here: its connections belong to
        // the parent (closing them could disturb its locks), its buffer is the
        // parent's to write and its flusher thread does not exist here.
        std::mem::forget(self.current.swap(fresh));
        self.current.load()
    }

    /// Checks the database at `path` without creating or changing it (for
    /// `irontoken doctor`). A SQLite file: SQLite's full `integrity_check`,
    /// the schema version, the journal mode and who may read the files. A
    /// PostgreSQL URL: it connects within `options.storage_timeout`, and
    /// reads the schema and server versions, whether TLS is in use, the
    /// round trip and whether the tables are there.
    pub fn doctor_with(path: &str, options: &Options) -> Result<DoctorReport> {
        if path.starts_with("postgresql://") || path.starts_with("postgres://") {
            return store::postgres::doctor(path, options.pg_bounds());
        }
        store::sqlite::doctor(store::sqlite_path(path).unwrap_or(path))
    }

    /// [`doctor_with`](Self::doctor_with) the default options.
    pub fn doctor(path: &str) -> Result<DoctorReport> {
        Self::doctor_with(path, &Options::default())
    }

    /// The manual clock, if the manager was opened with [`Options::manual_clock`].
    pub fn manual_clock(&self) -> Option<&ManualClock> {
        self.options.manual.as_deref()
    }

    /// Moves the manual clock by `secs`; `INVALID_ARGUMENT` if the manager
    /// runs on another clock, or if the time would leave 1970–9999 (nothing
    /// moves then).
    pub fn advance_clock(&self, secs: i64) -> Result<i64> {
        /// 9999-12-31T23:59:59Z.
        const LATEST: i64 = 253_402_300_799;
        let clock = self
            .manual_clock()
            .ok_or_else(|| Error::invalid("the manager was not opened with a manual clock"))?;
        let to = clock
            .now()
            .checked_add(secs)
            .filter(|t| (0..=LATEST).contains(t));
        if to.is_none() {
            return Err(Error::invalid(
                "advance_clock: the time would leave 1970-9999 (Unix seconds 0..=253402300799)",
            ));
        }
        clock.advance(secs);
        Ok(clock.now())
    }

    /// The manager's current time (Unix seconds).
    pub fn now(&self) -> i64 {
        self.inner().now()
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    pub fn flush(&self) -> Result<()> {
        self.inner().flush()
    }

    /// Takes up to `max` pending signals, oldest first (see [`crate::signals`]).
    pub fn drain_events(&self, max: usize) -> Vec<crate::signals::Event> {
        self.inner().signals.drain(max)
    }

    /// This manager's counters in the Prometheus text exposition format:
    /// verifications by outcome, keys created and revoked, tokens issued and
    /// exchanged, write-behind flushes and the size of the pending buffer.
    pub fn metrics(&self) -> String {
        let pending = self
            .inner()
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let mut out = self.inner().metrics.render(pending);
        let s = &self.inner().signals;
        for (name, help, n) in [
            (
                "irontoken_events_total",
                "Operator signals emitted (see drain_events).",
                s.emitted.load(Ordering::Relaxed),
            ),
            (
                "irontoken_events_dropped_total",
                "Signals dropped because nobody drained the queue.",
                s.dropped.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}\n"
            ));
        }
        out.push_str(
            "# HELP irontoken_alerts_total Operator signals emitted by this process, by kind.\n\
             # TYPE irontoken_alerts_total counter\n",
        );
        for (kind, n) in crate::signals::KINDS.iter().zip(&s.by_kind) {
            out.push_str(&format!(
                "irontoken_alerts_total{{kind=\"{kind}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        if let Some(w) = s.webhook() {
            let c = &w.counters;
            out.push_str(
                "# HELP irontoken_webhook_deliveries_total Alerts posted to the webhook, by outcome.\n\
                 # TYPE irontoken_webhook_deliveries_total counter\n",
            );
            for (outcome, n) in [
                ("delivered", &c.delivered),
                ("failed", &c.failed),
                ("dropped", &c.dropped),
            ] {
                out.push_str(&format!(
                    "irontoken_webhook_deliveries_total{{outcome=\"{outcome}\"}} {}\n",
                    n.load(Ordering::Relaxed)
                ));
            }
            out.push_str(&format!(
                "# HELP irontoken_webhook_retries_total Webhook posts retried after a failure.\n\
                 # TYPE irontoken_webhook_retries_total counter\n\
                 irontoken_webhook_retries_total {}\n\
                 # HELP irontoken_webhook_pending Alerts waiting for delivery.\n\
                 # TYPE irontoken_webhook_pending gauge\n\
                 irontoken_webhook_pending {}\n",
                c.retries.load(Ordering::Relaxed),
                w.pending()
            ));
        }
        out
    }
}

/// How often the flusher looks for a checkpoint to run (the writer's WAL
/// hook asks for one; see `Db::checkpoint_if_wanted`).
const CHECKPOINT_POLL: Duration = Duration::from_millis(100);

/// How often the flusher deletes full rate-limit buckets from the store.
const BUCKET_PURGE: Duration = Duration::from_secs(60);

/// How often the flusher looks for keys that became due for rotation.
const DUE_SCAN: Duration = Duration::from_secs(60);

fn flush_loop(inner: &Inner, interval: Duration) {
    let mut orders = inner.orders.lock().unwrap_or_else(|e| e.into_inner());
    let mut last_flush = Instant::now();
    let mut last_purge = Instant::now();
    // The first look for keys due for rotation comes a few seconds after start.
    let mut next_due_scan = Instant::now() + Duration::from_secs(2);
    let mut due_since: Option<i64> = None;
    loop {
        if !orders.stop && !orders.flush {
            orders = inner
                .wake
                .wait_timeout(orders, interval.min(CHECKPOINT_POLL))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if orders.stop {
            return;
        }
        let wanted = std::mem::take(&mut orders.flush);
        drop(orders);
        // A threshold was passed or the interval is over: flush. A failed
        // flush keeps its data buffered and is retried next time.
        if wanted || last_flush.elapsed() >= interval {
            let _ = inner.flush();
            last_flush = Instant::now();
        }
        let _ = inner.db.maintain();
        if Instant::now() >= next_due_scan {
            // Keys that became due for rotation since the last look: one
            // `key_rotation_due` event each (all due keys on the first look).
            let now = inner.now();
            if let Ok(due) = inner.db.read(|c| {
                c.keys()
                    .due(now, inner.default_rotation_period, due_since, 1000)
            }) {
                for r in due {
                    inner.signals.push(crate::signals::Event {
                        kind: "key_rotation_due".into(),
                        at: now,
                        key_id: Some(r.id.clone()),
                        display_prefix: Some(r.display_prefix.clone()),
                        detail: serde_json::json!({
                            "owner": r.owner,
                            "created_at": r.created_at,
                            "rotation_period": r.rotation_period.or(inner.default_rotation_period),
                        }),
                    });
                }
                due_since = Some(now);
            }
            next_due_scan = Instant::now() + DUE_SCAN;
        }
        if last_purge.elapsed() >= BUCKET_PURGE {
            if matches!(inner.rates, Rates::Store) {
                // Full buckets say nothing a missing one does not.
                let now_us = inner.clock.now_ms().saturating_mul(1000);
                let _ = inner
                    .db
                    .write_relaxed(|tx| tx.rates().purge_buckets(now_us));
            }
            if matches!(inner.rates, Rates::Store | Rates::Local) {
                // One-time ids past their keep-until (Redis expires its own).
                let now = inner.now();
                let _ = inner.db.write_relaxed(|tx| tx.rates().purge_jti(now));
            }
            // Refresh-token families that ended a grace ago.
            let before = inner
                .now()
                .saturating_sub(crate::model::refresh::FAMILY_GRACE_SECONDS);
            let _ = inner.db.write_relaxed(|tx| tx.families().purge(before));
            last_purge = Instant::now();
        }
        orders = inner.orders.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// What the flusher thread is told to do: flush now, or stop.
#[derive(Default)]
struct FlusherOrders {
    /// Write what is buffered now (a threshold was passed).
    flush: bool,
    /// Stop (the manager is closing).
    stop: bool,
}

impl Drop for TokenManager {
    fn drop(&mut self) {
        let inner = self.current.load_full();
        // State inherited through fork() is the parent's: left alone.
        if inner.generation == generation() {
            inner.shut_down();
        }
    }
}

#[cfg(test)]
mod tests;
