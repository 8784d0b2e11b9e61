//! What `doctor` reports on a PostgreSQL database: the schema, the
//! server, TLS, and the sizes of the tables.

use super::*;

/// Applies the migrations this database lacks, once however many
/// processes start together (a session advisory lock around them). Each
/// step may take `max(storage_timeout, 60 s)`: another host may be
/// migrating, and a migration rewrites tables.
/// The tables a migrated database holds (a missing one is a finding).
pub(super) const TABLES: [&str; 6] = [
    "api_keys",
    "audit_log",
    "quotas",
    "usage_records",
    "key_tombstones",
    "irontoken_schema",
];

/// See `TokenManager::doctor`: connects (within the storage timeout), reads
/// the schema version, the server version, whether TLS is in use and the
/// database size, and checks the tables are there; changes nothing.
pub(crate) fn doctor(url: &str, bounds: Bounds) -> Result<crate::DoctorReport> {
    let (config, tls) = config_of(url, &bounds)?;
    let started = Instant::now();
    let deadline = started + bounds.storage_timeout;
    let mut link = Link::connect(&config, &tls, deadline)?;
    let mut run = |sql: &str| -> Result<Row> {
        let s = link.prepare(deadline, sql)?;
        link.query_opt(deadline, &s, &[])?
            .ok_or_else(|| Error::new(ErrorKind::Storage, "no answer"))
    };
    let info = run(
        "SELECT current_setting('server_version'), pg_database_size(current_database()), \
         coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), \
         current_database(), to_regclass('irontoken_schema') IS NOT NULL",
    )?;
    let server_version: String = info.try_get(0)?;
    let size: i64 = info.try_get(1)?;
    let encrypted: bool = info.try_get(2)?;
    let database: String = info.try_get(3)?;
    let migrated: bool = info.try_get(4)?;
    let schema_version: i64 = if migrated {
        run("SELECT coalesce(max(version), 0) FROM irontoken_schema")?.try_get(0)?
    } else {
        0
    };
    let mut problems = Vec::new();
    for t in TABLES {
        let there: bool = run(&format!("SELECT to_regclass('{t}') IS NOT NULL"))?.try_get(0)?;
        if !there {
            problems.push(format!("table {t} is missing"));
        }
    }
    let round_trip_ms = started.elapsed().as_millis() as u64;
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let ok = problems.is_empty() && schema_version == PG_SCHEMA_VERSION;
    Ok(crate::DoctorReport {
        backend: "postgresql".into(),
        path: format!("{host}:{port}/{database}"),
        size_bytes: size.max(0) as u64,
        schema_version,
        supported_schema_version: PG_SCHEMA_VERSION,
        journal_mode: String::new(),
        integrity_problems: problems,
        readable_by_others: Vec::new(),
        server_version: Some(server_version),
        tls: Some(encrypted),
        round_trip_ms: Some(round_trip_ms),
        ok,
    })
}
