//! Opening managers on the store under test: SQLite by default; with
//! `IRONTOKEN_TEST_STORE=postgres`, a fresh schema of the PostgreSQL at
//! `IRONTOKEN_TEST_POSTGRES_URL` (default postgresql://postgres@127.0.0.1:5432/test),
//! dropped when the test binary's last manager... (schemas are named per
//! process and test, and dropped by `Scratch`'s drop).

#![allow(dead_code)]

pub mod fixtures;
pub mod proxy;

use std::sync::atomic::{AtomicUsize, Ordering};

/// The PostgreSQL server tests use.
pub fn postgres_base() -> String {
    std::env::var("IRONTOKEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into())
}

/// True if the PostgreSQL server answers (else one line says it is skipped).
pub fn postgres_answers() -> bool {
    let base = postgres_base();
    let ok = base
        .parse::<postgres::Config>()
        .ok()
        .and_then(|mut c| {
            c.connect_timeout(std::time::Duration::from_secs(2));
            c.connect(postgres::NoTls).ok()
        })
        .is_some();
    if !ok {
        eprintln!("skipped: no PostgreSQL at {base}");
    }
    ok
}

/// A schema of its own on the test server, dropped with this value.
pub struct PgScratch {
    pub schema: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl PgScratch {
    /// A new, empty schema.
    pub fn new() -> PgScratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!(
            "itk_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst),
            nanos % 1_000_000_000
        );
        let mut c = postgres_base()
            .parse::<postgres::Config>()
            .unwrap()
            .connect(postgres::NoTls)
            .unwrap();
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        PgScratch { schema }
    }

    /// The URL of a manager on this schema.
    pub fn url(&self) -> String {
        let base = postgres_base();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.schema)
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres_base()
            .parse::<postgres::Config>()
            .unwrap()
            .connect(postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

/// A manager on the store under test, with the scratch schema it needs.
pub struct Managed {
    pub tm: irontoken::TokenManager,
    _scratch: Option<PgScratch>,
}

impl std::ops::Deref for Managed {
    type Target = irontoken::TokenManager;
    fn deref(&self) -> &irontoken::TokenManager {
        &self.tm
    }
}

/// True when `IRONTOKEN_TEST_STORE=postgres` asks for the PostgreSQL run.
pub fn on_postgres() -> bool {
    std::env::var("IRONTOKEN_TEST_STORE").as_deref() == Ok("postgres")
}

/// A private manager with `options`: in memory (SQLite), or on a fresh
/// PostgreSQL schema when the run asks for it.
pub fn open_private(options: irontoken::Options) -> Managed {
    if on_postgres() {
        let scratch = PgScratch::new();
        let tm = irontoken::TokenManager::open_with(&scratch.url(), options).unwrap();
        Managed {
            tm,
            _scratch: Some(scratch),
        }
    } else {
        Managed {
            tm: irontoken::TokenManager::open_with(":memory:", options).unwrap(),
            _scratch: None,
        }
    }
}

/// A store several managers open, standing in for separate processes: a
/// SQLite file in a temporary directory, or a fresh PostgreSQL schema when
/// the run asks for it. Dropped (and cleaned up) with this value.
pub struct Shared {
    pub url: String,
    _dir: tempfile::TempDir,
    _scratch: Option<PgScratch>,
}

/// A new [`Shared`] store.
#[allow(dead_code)] // not every test binary uses it
pub fn shared_store() -> Shared {
    let dir = tempfile::tempdir().unwrap();
    let scratch = on_postgres().then(PgScratch::new);
    let url = match &scratch {
        Some(s) => s.url(),
        None => dir.path().join("keys.db").to_str().unwrap().to_string(),
    };
    Shared {
        url,
        _dir: dir,
        _scratch: scratch,
    }
}

/// The Redis server tests use, or None (with one line saying so).
pub fn redis_url() -> Option<String> {
    let base = std::env::var("IRONTOKEN_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(base.as_str()).ok()?;
    match client.get_connection_with_timeout(std::time::Duration::from_millis(500)) {
        Ok(_) => Some(base),
        Err(_) => {
            eprintln!("skipped: no Redis at {base}");
            None
        }
    }
}

/// A key prefix of this run, and a guard that deletes its keys.
pub struct RedisScratch {
    base: String,
    prefix: String,
}

impl RedisScratch {
    pub fn new(base: &str, what: &str) -> RedisScratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        RedisScratch {
            base: base.to_string(),
            prefix: format!("itk-test:{what}:{}:{nanos}:", std::process::id()),
        }
    }
    pub fn url(&self) -> String {
        format!("{}?key_prefix={}", self.base, self.prefix)
    }
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.base.as_str()).unwrap();
        let mut c = client.get_connection().unwrap();
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut c)
            .unwrap()
    }
}

impl Drop for RedisScratch {
    fn drop(&mut self) {
        let keys = self.keys();
        if !keys.is_empty() {
            let client = redis::Client::open(self.base.as_str()).unwrap();
            let mut c = client.get_connection().unwrap();
            let _: () = redis::cmd("DEL").arg(keys).query(&mut c).unwrap();
        }
    }
}
