//! How a [`TokenManager`](super::TokenManager) is opened: [`Options`],
//! [`OpenSettings`] for the bindings, and the environment variables.

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::error::{Error, Result};
use crate::store::Durability;
use std::sync::Arc;
use std::time::Duration;
/// How to open a [`TokenManager`](super::TokenManager).
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
    /// Where rate-limit state lives (default: the manager's database, shared
    /// by every process that opens it).
    pub rate_limit_store: crate::ratelimit::RateLimitStore,
    /// When the rate-limit store fails (Redis down): false (default) answers
    /// `STORAGE`; true allows the request and counts it in `metrics()`.
    pub rate_limit_fail_open: bool,
    /// How long a rate-limit check waits for Redis (default 1 s).
    pub rate_limit_timeout: Duration,
    /// Read key state from the database on every verification instead of
    /// the in-process cache. PostgreSQL: a revocation on another host is
    /// then refused by the very next call (the cache is kept current by
    /// change notifications, within milliseconds). SQLite: the cache is
    /// already exact at every call (the state epoch); this reads the row
    /// anyway, for a store written by tools that bypass its triggers.
    pub strict: bool,
    /// PostgreSQL: the most one call waits on the server in all — pool
    /// checkout, connect, every statement and the commit (default 5 s);
    /// past it the call answers `STORAGE` (or `BUSY`). No effect on SQLite.
    pub storage_timeout: Duration,
    /// PostgreSQL: how old a cached key state may be without proof that the
    /// change channel is alive (default 1 s). A key revoked on any host is
    /// refused everywhere within this bound (plus one `storage_timeout` for
    /// the answer, which is `STORAGE` if the server cannot give it).
    pub max_staleness: Duration,
    /// PostgreSQL: when a key's state is older than `max_staleness` and the
    /// server cannot answer, verify from the cached state anyway (default
    /// false: fail closed). A revoked key may then verify for the whole
    /// partition.
    pub verify_fail_open: bool,
    /// Key records kept in memory by verification (default 50 000, about
    /// 560 bytes each, packed, with their states); a hit saves reading and decoding the
    /// row, and on SQLite reads nothing while no key state changed.
    pub key_cache_size: usize,
    /// SQLite page cache per connection, MiB (default 2, SQLite's own:
    /// every commit by another connection empties a reader's cache, and 8
    /// measured no faster on 100k or 1M keys).
    pub page_cache_mib: u32,
    /// Bytes of the file SQLite reads through a memory map, MiB (default 0:
    /// off). It makes read-only verification ~20 % faster on large key
    /// sets, but every commit by another connection unmaps it, so a
    /// workload that writes between reads (a quota per request) gets ~1.8×
    /// slower: turn it on for read-mostly processes.
    pub mmap_mib: u32,
    /// Seconds after creation at which a key without its own
    /// `rotation_period` is due for rotation (default `None`: never).
    pub default_rotation_period: Option<i64>,
    /// Charge a simple quota consumption in one statement and answer a
    /// simple peek with one read (default true). Off, every quota call takes
    /// the general path; the answers are the same, only slower: for parity
    /// tests and for ruling the fast path out while diagnosing.
    pub quota_fast_path: bool,
    /// Quota alert levels, spend spikes and the alert webhook (see
    /// [`crate::alerts`]).
    pub alerts: crate::alerts::AlertSettings,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) manual: Option<Arc<ManualClock>>,
    pub(crate) master_key: Option<Arc<zeroize::Zeroizing<Vec<u8>>>>,
    pub(super) rsa_key_bits: usize,
    pub(super) create: bool,
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
            rate_limit_store: Default::default(),
            rate_limit_fail_open: false,
            rate_limit_timeout: Duration::from_secs(1),
            strict: false,
            storage_timeout: Duration::from_secs(5),
            max_staleness: Duration::from_secs(1),
            verify_fail_open: false,
            key_cache_size: 50_000,
            page_cache_mib: 2,
            mmap_mib: 0,
            default_rotation_period: None,
            quota_fast_path: true,
            alerts: Default::default(),
            clock: Arc::new(SystemClock),
            manual: None,
            master_key: None,
            rsa_key_bits: 2048,
            create: true,
        }
    }
}

impl Options {
    /// Keys without their own rotation period become due after `seconds`
    /// (`rotate_due`); `INVALID_ARGUMENT` outside 1 s to ten years.
    pub fn default_rotation_period(mut self, seconds: i64) -> Result<Self> {
        if !(1..=10 * 366 * 86_400).contains(&seconds) {
            return Err(Error::invalid(
                "default_rotation_period must be 1 s to ten years",
            ));
        }
        self.default_rotation_period = Some(seconds);
        Ok(self)
    }

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
    /// [`TokenManager::manual_clock`](super::TokenManager::manual_clock) (how the bindings' tests move time).
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
    /// Buffered entries that ask for an early flush (default 4096).
    pub flush_threshold: Option<usize>,
    /// Start a manual clock at this Unix time (tests); the system clock otherwise.
    pub manual_clock_start: Option<i64>,
    /// Master key for managed signing keys, base64 or hex (≥ 32 bytes);
    /// default: the `IRONTOKEN_MASTER_KEY` environment variable.
    pub master_key: Option<String>,
    /// RSA size of generated RS256 signing keys: 2048 (default) or 3072.
    pub rsa_key_bits: Option<usize>,
    /// Create a missing database file (default true).
    pub create: Option<bool>,
    /// Key records cached by verification (default 50 000).
    pub key_cache_size: Option<usize>,
    /// SQLite page cache per connection in MiB (default 2).
    pub page_cache_mib: Option<u32>,
    /// Memory-mapped part of the file in MiB (default 0 = off).
    pub mmap_mib: Option<u32>,
    /// `"store"` (default), `"local"` or a `redis://` URL.
    pub rate_limit_store: Option<String>,
    /// Allow requests when the rate-limit store fails (default false).
    pub rate_limit_fail_open: Option<bool>,
    /// Milliseconds a rate-limit check waits for Redis (default 1000).
    pub rate_limit_timeout_ms: Option<u64>,
    /// PostgreSQL: read key state from the database on every verification.
    pub strict: Option<bool>,
    /// PostgreSQL: milliseconds one call may wait on the server in all (default 5000).
    pub storage_timeout_ms: Option<u64>,
    /// PostgreSQL: milliseconds a cached key state is trusted without a live change channel (default 1000).
    pub max_staleness_ms: Option<u64>,
    /// PostgreSQL: verify from a stale cached state when the server cannot answer (default false).
    pub verify_fail_open: Option<bool>,
    /// Seconds after which keys without their own rotation period are due.
    pub default_rotation_period: Option<i64>,
    /// Quota alert levels, spend spikes and the alert webhook.
    pub alerts: Option<crate::alerts::AlertSettings>,
}

/// The database to open, for [`TokenManager::from_env`](super::TokenManager::from_env) and the CLI.
pub const DB_ENV: &str = "IRONTOKEN_DB";
/// Where rate-limit state lives (`store`, `local` or a `redis://` URL).
pub const RATE_LIMIT_STORE_ENV: &str = "IRONTOKEN_RATE_LIMIT_STORE";
/// PostgreSQL: the most one call waits on the server, in milliseconds.
pub const STORAGE_TIMEOUT_ENV: &str = "IRONTOKEN_STORAGE_TIMEOUT_MS";

impl OpenSettings {
    /// The database named by `IRONTOKEN_DB`, and these settings completed
    /// from the environment: `IRONTOKEN_RATE_LIMIT_STORE` and
    /// `IRONTOKEN_STORAGE_TIMEOUT_MS` where a setting is not given (what the
    /// caller passes wins), `IRONTOKEN_MASTER_KEY` when the manager opens.
    /// `INVALID_ARGUMENT` when `IRONTOKEN_DB` is not set or a variable is
    /// not valid (an empty variable counts as not set).
    pub fn with_env(mut self) -> Result<(String, OpenSettings)> {
        let var = |name: &str| -> Result<Option<String>> {
            match std::env::var(name) {
                Ok(v) if v.is_empty() => Ok(None),
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(Error::invalid(format!("{name} is not valid UTF-8")))
                }
            }
        };
        let db = var(DB_ENV)?.ok_or_else(|| {
            Error::invalid(format!(
                "{DB_ENV} is not set: set it to a SQLite file path or a postgresql:// URL"
            ))
        })?;
        if self.rate_limit_store.is_none() {
            self.rate_limit_store = var(RATE_LIMIT_STORE_ENV)?;
        }
        if self.storage_timeout_ms.is_none()
            && let Some(ms) = var(STORAGE_TIMEOUT_ENV)?
        {
            self.storage_timeout_ms = Some(ms.trim().parse().map_err(|_| {
                Error::invalid(format!("{STORAGE_TIMEOUT_ENV} must be milliseconds"))
            })?);
        }
        Ok((db, self))
    }

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
        if let Some(n) = self.flush_threshold {
            o.flush_threshold = n;
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
        if let Some(n) = self.key_cache_size {
            o.key_cache_size = n;
        }
        if let Some(n) = self.page_cache_mib {
            o.page_cache_mib = n;
        }
        if let Some(n) = self.mmap_mib {
            o.mmap_mib = n;
        }
        if let Some(s) = &self.rate_limit_store {
            o.rate_limit_store = crate::ratelimit::RateLimitStore::parse(s)?;
        }
        if let Some(b) = self.rate_limit_fail_open {
            o.rate_limit_fail_open = b;
        }
        if let Some(ms) = self.rate_limit_timeout_ms {
            o.rate_limit_timeout = Duration::from_millis(ms);
        }
        if let Some(b) = self.strict {
            o.strict = b;
        }
        if let Some(ms) = self.storage_timeout_ms {
            o.storage_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.max_staleness_ms {
            o.max_staleness = Duration::from_millis(ms);
        }
        if let Some(b) = self.verify_fail_open {
            o.verify_fail_open = b;
        }
        if let Some(p) = self.default_rotation_period {
            o = o.default_rotation_period(p)?;
        }
        if let Some(a) = self.alerts {
            o.alerts = a;
        }
        Ok(o)
    }
}

impl Options {
    /// The fleet part of these options, as the PostgreSQL store takes it.
    pub(crate) fn pg_bounds(&self) -> crate::store::postgres::Bounds {
        crate::store::postgres::Bounds {
            busy_timeout: self.busy_timeout,
            storage_timeout: self.storage_timeout,
            max_staleness: self.max_staleness,
            verify_fail_open: self.verify_fail_open,
        }
    }
}
