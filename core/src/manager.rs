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

use crate::audit::NewAuditEvent;
use crate::error::{Error, Result};
use crate::keys::KeyRecord;
use crate::store::{self, Db, Durability};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now" in Unix seconds. Inject one to test expiry without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current time in Unix seconds.
    fn now(&self) -> i64;
    /// The current time in Unix milliseconds; default `now() * 1000`.
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
    /// Milliseconds that only move forward (in-process rate limits); the
    /// system clock counts them from a monotonic source, so stepping the
    /// wall clock back does not lock keys out. Default: `now_ms()`.
    fn monotonic_ms(&self) -> i64 {
        self.now_ms()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The current time in Unix milliseconds (the rate limiter's unit).
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemClock::now_ms().div_euclid(1000)
    }
    fn now_ms(&self) -> i64 {
        SystemClock::now_ms()
    }
    fn monotonic_ms(&self) -> i64 {
        // Wall time at the first call, then a monotonic clock's progress.
        static ANCHOR: std::sync::OnceLock<(std::time::Instant, i64)> = std::sync::OnceLock::new();
        let (start, wall) =
            ANCHOR.get_or_init(|| (std::time::Instant::now(), SystemClock::now_ms()));
        wall.saturating_add(start.elapsed().as_millis() as i64)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `t` (Unix seconds).
    pub fn new(t: i64) -> Self {
        ManualClock(AtomicI64::new(t))
    }
    /// Sets the time.
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }
    /// Moves the time by `secs` (may be negative).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// How to open a [`TokenManager`].
#[derive(Clone)]
pub struct Options {
    /// Commit durability (default [`Durability::Full`]).
    pub durability: Durability,
    /// How long a write waits for another writer's lock before `BUSY` (default 5 s).
    pub busy_timeout: Duration,
    /// How often buffered usage counters and audit entries are written (default 1 s).
    pub flush_interval: Duration,
    /// Buffered entries that trigger an early flush (default 4096). Eight
    /// times this blocks verification until a flush succeeds (bounded memory).
    pub flush_threshold: usize,
    /// Most in-process rate-limit buckets kept by `verify_key_with` (default 100 000).
    pub max_buckets: usize,
    clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    master_key: Option<Arc<zeroize::Zeroizing<Vec<u8>>>>,
    rsa_key_bits: usize,
    create: bool,
}

/// The longest busy timeout and flush interval accepted (one hour).
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Name of the environment variable read for the master key when none is given.
pub const MASTER_KEY_ENV: &str = "IRONTOKEN_MASTER_KEY";

/// Decodes a master key given as base64 (standard or URL-safe, padded or
/// not) or hex; it must carry at least 32 bytes.
pub fn parse_master_key(text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = text.trim();
    let hex = (t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            (0..t.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten();
    let bytes = hex
        .or_else(|| STANDARD.decode(t).ok())
        .or_else(|| STANDARD_NO_PAD.decode(t).ok())
        .or_else(|| URL_SAFE.decode(t).ok())
        .or_else(|| URL_SAFE_NO_PAD.decode(t).ok())
        .ok_or_else(|| Error::invalid("master key must be base64 or hex"))?;
    if bytes.len() < 32 {
        return Err(Error::invalid(format!(
            "master key too short: {} bytes, at least 32 required",
            bytes.len()
        )));
    }
    Ok(zeroize::Zeroizing::new(bytes))
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            flush_interval: Duration::from_secs(1),
            flush_threshold: 4096,
            max_buckets: 100_000,
            clock: Arc::new(SystemClock),
            manual: None,
            master_key: None,
            rsa_key_bits: 2048,
            create: true,
        }
    }
}

impl Options {
    /// Sets the commit durability.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Sets how often buffered counters and audit entries are written.
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every;
        self
    }

    /// Sets how long a write waits for another writer's lock.
    pub fn busy_timeout(mut self, t: Duration) -> Self {
        self.busy_timeout = t;
        self
    }

    /// The master key (at least 32 bytes) that encrypts managed signing keys.
    /// Without one, `IRONTOKEN_MASTER_KEY` is read when the manager opens.
    pub fn master_key(mut self, key: &[u8]) -> Result<Self> {
        if key.len() < 32 {
            return Err(Error::invalid(
                "master key too short: at least 32 bytes required",
            ));
        }
        self.master_key = Some(Arc::new(zeroize::Zeroizing::new(key.to_vec())));
        Ok(self)
    }

    /// Size of the RSA keys generated for managed RS256 signing keys: 2048
    /// (default) or 3072.
    pub fn rsa_key_bits(mut self, bits: usize) -> Result<Self> {
        if bits != 2048 && bits != 3072 {
            return Err(Error::invalid("rsa_key_bits must be 2048 or 3072"));
        }
        self.rsa_key_bits = bits;
        Ok(self)
    }

    /// Whether a missing (or empty) database file is created (default true,
    /// like `sqlite3.connect`); false gives `DATABASE_NOT_FOUND` instead.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Uses `clock` for every time decision.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.manual = None;
        self
    }

    /// Uses a [`ManualClock`] standing at `start`, reachable later through
    /// [`TokenManager::manual_clock`] (how the bindings' tests move time).
    pub fn manual_clock(mut self, start: i64) -> Self {
        let m = Arc::new(ManualClock::new(start));
        self.clock = m.clone();
        self.manual = Some(m);
        self
    }
}

/// [`Options`] as plain data, for the bindings (JSON, keyword arguments, option bags).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenSettings {
    /// `"full"` (default) or `"normal"`.
    pub durability: Option<String>,
    /// Milliseconds a write waits for another writer's lock (default 5000).
    pub busy_timeout_ms: Option<u64>,
    /// Milliseconds between flushes of buffered counters (default 1000).
    pub flush_interval_ms: Option<u64>,
    /// Start a manual clock at this Unix time (tests); the system clock otherwise.
    pub manual_clock_start: Option<i64>,
    /// Master key for managed signing keys, base64 or hex (≥ 32 bytes);
    /// default: the `IRONTOKEN_MASTER_KEY` environment variable.
    pub master_key: Option<String>,
    /// RSA size of generated RS256 signing keys: 2048 (default) or 3072.
    pub rsa_key_bits: Option<usize>,
    /// Create a missing database file (default true).
    pub create: Option<bool>,
}

impl OpenSettings {
    /// Checks the settings and turns them into [`Options`].
    pub fn into_options(self) -> Result<Options> {
        let mut o = Options::default();
        match self.durability.as_deref() {
            None | Some("full") => {}
            Some("normal") => o.durability = Durability::Normal,
            Some(_) => return Err(Error::invalid("durability must be \"full\" or \"normal\"")),
        }
        // Ranges are checked once, by TokenManager::open_with.
        if let Some(ms) = self.busy_timeout_ms {
            o.busy_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.flush_interval_ms {
            o.flush_interval = Duration::from_millis(ms);
        }
        if let Some(t) = self.manual_clock_start {
            o = o.manual_clock(t);
        }
        if let Some(k) = &self.master_key {
            let bytes = parse_master_key(k)?;
            o = o.master_key(&bytes)?;
        }
        if let Some(bits) = self.rsa_key_bits {
            o = o.rsa_key_bits(bits)?;
        }
        if let Some(c) = self.create {
            o = o.create(c);
        }
        Ok(o)
    }
}

/// What [`TokenManager::doctor`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DoctorReport {
    /// The file checked.
    pub path: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// `PRAGMA user_version` (the irontoken schema version).
    pub schema_version: i64,
    /// The schema version this build writes.
    pub supported_schema_version: i64,
    /// `wal` expected.
    pub journal_mode: String,
    /// Problems `integrity_check` reported (empty when sound).
    pub integrity_problems: Vec<String>,
    /// Files (database, -wal, -shm) that others than the owner may read.
    pub readable_by_others: Vec<String>,
    /// True when nothing above needs attention.
    pub ok: bool,
}

/// Identifies repeated failed verifications: key id, display prefix, reason.
type FailureKey = (Option<String>, Option<String>, &'static str);

#[derive(Default)]
pub(crate) struct Pending {
    pub usage: HashMap<String, (u64, i64)>,
    pub audit: Vec<NewAuditEvent>,
    /// Usage records not yet written, and their request ids.
    pub records: Vec<crate::usage::PendingUsage>,
    record_ids: std::collections::HashSet<String>,
    /// Failed verifications buffered so far: index in `audit`, count, last time.
    failures: HashMap<FailureKey, (usize, u64, i64)>,
}

impl Pending {
    fn len(&self) -> usize {
        self.usage.len() + self.audit.len() + self.records.len()
    }
}

/// Most records kept by the verification cache; it is emptied when full.
const RECORD_CACHE_CAP: usize = 10_000;

pub(crate) struct Inner {
    pub db: Db,
    /// Master key of managed signing keys, if configured.
    pub master_key: Option<Arc<zeroize::Zeroizing<Vec<u8>>>>,
    /// RSA size of generated RS256 keys.
    pub rsa_key_bits: usize,
    /// Parsed managed keys, keyed by the fingerprint of the key table.
    pub signing: Mutex<Option<crate::jwt::managed::Loaded>>,
    /// Records by key id with the revision they were read at (see schema `revision`).
    records: Mutex<HashMap<String, (i64, Arc<KeyRecord>)>>,
    pub clock: Arc<dyn Clock>,
    pub manual: Option<Arc<ManualClock>>,
    pending: Mutex<Pending>,
    wake: Condvar,
    stop: Mutex<bool>,
    threshold: usize,
    /// Counters for `metrics()`.
    pub metrics: crate::metrics::Metrics,
    /// Operator signals for `drain_events()`.
    pub signals: crate::signals::Signals,
    /// In-process rate-limit buckets of `verify_key_with`.
    pub limiter: crate::ratelimit::RateLimiter,
}

impl Inner {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The cached record of key `id` if it was read at `revision`.
    pub fn cached_record(&self, id: &str, revision: i64) -> Option<Arc<KeyRecord>> {
        let m = self.records.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id)
            .filter(|(rev, _)| *rev == revision)
            .map(|(_, r)| r.clone())
    }

    /// Remembers a record read at `revision`.
    pub fn cache_record(&self, record: &KeyRecord, revision: i64) {
        let mut m = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= RECORD_CACHE_CAP && !m.contains_key(&record.id) {
            m.clear();
        }
        m.insert(record.id.clone(), (revision, Arc::new(record.clone())));
    }

    /// Buffers one successful use of key `id`; returns the uses of `id`
    /// buffered so far (count, latest time), this one included.
    pub fn record_use(&self, id: &str, now: i64) -> Result<(u64, i64)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let total = match p.usage.get_mut(id) {
            Some((n, t)) => {
                *n += 1;
                *t = (*t).max(now);
                (*n, *t)
            }
            None => {
                p.usage.insert(id.to_string(), (1, now));
                (1, now)
            }
        };
        self.after_push(p)?;
        Ok(total)
    }

    /// Buffers the audit entry of a failed verification. Identical failures
    /// (same key or prefix, same reason) within one flush window become one
    /// entry whose detail holds `count` and `last_at`, so a flood of bad keys
    /// costs one row per distinct failure and window, not one row each.
    pub fn defer_failure(&self, e: NewAuditEvent) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let key = (e.key_id.clone(), e.display_prefix.clone(), e.outcome);
        if let Some((_, n, last)) = p.failures.get_mut(&key) {
            *n += 1;
            *last = (*last).max(e.at);
            return Ok(());
        }
        let at = e.at;
        let idx = p.audit.len();
        p.audit.push(e);
        p.failures.insert(key, (idx, 1, at));
        self.after_push(p)
    }

    fn after_push(&self, p: std::sync::MutexGuard<'_, Pending>) -> Result<()> {
        let n = p.len();
        drop(p);
        if n >= self.threshold.saturating_mul(8) {
            self.flush()
        } else {
            if n >= self.threshold {
                self.wake.notify_one();
            }
            Ok(())
        }
    }

    /// Buffers a usage record; false if its request id is already buffered.
    pub fn defer_usage(&self, u: crate::usage::PendingUsage) -> Result<bool> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.record_ids.insert(u.request_id.clone()) {
            return Ok(false);
        }
        p.records.push(u);
        self.after_push(p)?;
        Ok(true)
    }

    /// True if a usage record with this request id is buffered.
    pub fn usage_pending(&self, request_id: &str) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.record_ids.contains(request_id)
    }

    /// The buffered use counts of key `id`, not yet in the database.
    pub fn pending_use(&self, id: &str) -> Option<(u64, i64)> {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.usage.get(id).copied()
    }

    /// Writes everything buffered in one transaction; on failure it stays
    /// buffered. Nothing buffered: no transaction (the write lock is shared
    /// with every process on the file).
    pub fn flush(&self) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() == 0 {
            return Ok(());
        }
        if self.db.readonly() {
            // A write-protected file can never take them: reads, listings
            // and close keep working, and nothing piles up in memory.
            *p = Pending::default();
            return Ok(());
        }
        drop(p);
        self.write(|_| Ok(()))
    }

    /// Runs `f` in one write transaction, after writing what is buffered, so
    /// the audit trail keeps this process's order. If the transaction fails,
    /// the buffered data stays buffered.
    pub fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut batch = std::mem::take(&mut *p);
            for (_, (idx, n, last)) in batch.failures.drain() {
                if n > 1
                    && let Some(e) = batch.audit.get_mut(idx)
                {
                    e.detail = Some(serde_json::json!({ "count": n, "last_at": last }));
                }
            }
            batch
        };
        let result = self.db.write(|tx| {
            for (id, (n, t)) in &batch.usage {
                store::keys::add_usage(tx, id, *n, *t)?;
            }
            for e in &batch.audit {
                store::audit::insert(tx, e)?;
            }
            for u in &batch.records {
                store::usage::insert(tx, u)?;
            }
            f(tx)
        });
        if batch.len() > 0 {
            let c = if result.is_ok() {
                &self.metrics.flushes
            } else {
                &self.metrics.flush_errors
            };
            crate::metrics::Metrics::inc(c);
        }
        if result.is_err() && batch.len() > 0 {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (id, (n, t)) in batch.usage {
                let e = p.usage.entry(id).or_insert((0, t));
                e.0 += n;
                e.1 = e.1.max(t);
            }
            // The restored entries go first: shift the indices of newer failures.
            let shift = batch.audit.len();
            for (idx, _, _) in p.failures.values_mut() {
                *idx += shift;
            }
            let newer = std::mem::replace(&mut p.audit, batch.audit);
            p.audit.extend(newer);
            p.record_ids.extend(batch.record_ids);
            let newer = std::mem::replace(&mut p.records, batch.records);
            p.records.extend(newer);
        }
        result
    }
}

/// The entry object: one per database, `Send + Sync`, share it by reference
/// or in an `Arc` across threads.
///
/// Opened on a SQLite file (created and migrated if needed) or on
/// `":memory:"`. Several processes may open the same file.
pub struct TokenManager {
    pub(crate) inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
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
        let db = Db::open_with(
            path,
            options.durability,
            options.busy_timeout,
            options.create,
        )?;
        let master_key = match options.master_key {
            Some(k) => Some(k),
            None => match std::env::var(MASTER_KEY_ENV) {
                Ok(text) if !text.trim().is_empty() => Some(Arc::new(parse_master_key(&text)?)),
                _ => None,
            },
        };
        let inner = Arc::new(Inner {
            db,
            master_key,
            rsa_key_bits: options.rsa_key_bits,
            signing: Mutex::new(None),
            clock: options.clock,
            manual: options.manual,
            records: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            stop: Mutex::new(false),
            metrics: Default::default(),
            signals: Default::default(),
            limiter: crate::ratelimit::RateLimiter::new(options.max_buckets),
            threshold: options.flush_threshold.max(1),
        });
        let worker = inner.clone();
        let interval = options.flush_interval;
        let flusher = std::thread::Builder::new()
            .name("irontoken-flush".into())
            .spawn(move || flush_loop(&worker, interval))
            .map_err(|e| Error::new(crate::ErrorKind::Internal, format!("spawn failed: {e}")))?;
        Ok(TokenManager {
            inner,
            flusher: Some(flusher),
        })
    }

    /// Checks the database file at `path` without creating or changing it:
    /// SQLite's full `integrity_check`, the schema version, the journal
    /// mode and who may read the files (for `irontoken doctor`).
    pub fn doctor(path: &str) -> Result<DoctorReport> {
        store::doctor(path)
    }

    /// The manual clock, if the manager was opened with [`Options::manual_clock`].
    pub fn manual_clock(&self) -> Option<&ManualClock> {
        self.inner.manual.as_deref()
    }

    /// Moves the manual clock by `secs`; `INVALID_ARGUMENT` if the manager
    /// runs on another clock.
    pub fn advance_clock(&self, secs: i64) -> Result<i64> {
        let clock = self
            .manual_clock()
            .ok_or_else(|| Error::invalid("the manager was not opened with a manual clock"))?;
        clock.advance(secs);
        Ok(clock.now())
    }

    /// The manager's current time (Unix seconds).
    pub fn now(&self) -> i64 {
        self.inner.now()
    }

    /// Writes buffered usage counters and failed-verification audit entries now.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// This manager's counters in the Prometheus text exposition format:
    /// verifications by outcome, keys created and revoked, tokens issued and
    /// exchanged, write-behind flushes and the size of the pending buffer.
    pub fn metrics(&self) -> String {
        let pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let mut out = self.inner.metrics.render(pending);
        let s = &self.inner.signals;
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
        out
    }
}

fn flush_loop(inner: &Inner, interval: Duration) {
    let mut stop = inner.stop.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if *stop {
            return;
        }
        stop = inner
            .wake
            .wait_timeout(stop, interval)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if *stop {
            return;
        }
        drop(stop);
        // A failed flush keeps its data buffered and is retried next time.
        let _ = inner.flush();
        stop = inner.stop.lock().unwrap_or_else(|e| e.into_inner());
    }
}

impl Drop for TokenManager {
    fn drop(&mut self) {
        *self.inner.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.inner.wake.notify_all();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn manager_is_send_and_sync() {
        assert_send_sync::<TokenManager>();
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let tm =
            TokenManager::open_with(":memory:", Options::default().manual_clock(1000)).unwrap();
        assert_eq!(tm.now(), 1000);
        tm.manual_clock().unwrap().advance(5);
        assert_eq!(tm.now(), 1005);
        assert!(
            TokenManager::open(":memory:")
                .unwrap()
                .manual_clock()
                .is_none()
        );
    }
}
