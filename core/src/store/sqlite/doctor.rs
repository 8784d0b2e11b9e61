//! What `doctor` reports on a SQLite file: integrity, schema, WAL and file
//! sizes.

use super::*;

/// What `TokenManager::doctor` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DoctorReport {
    /// `sqlite` or `postgresql`.
    pub backend: String,
    /// The file checked, or the PostgreSQL host and database (no password).
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
    /// PostgreSQL: the server's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// PostgreSQL: whether this connection is encrypted (TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// PostgreSQL: milliseconds from connecting to the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip_ms: Option<u64>,
    /// True when nothing above needs attention.
    pub ok: bool,
}

/// See `TokenManager::doctor`.
pub(crate) fn doctor(path: &str) -> Result<DoctorReport> {
    configure_sqlite();
    let size_bytes = file_len(path);
    if path == ":memory:" || size_bytes == 0 {
        return Err(not_found(path));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // A file damaged enough fails the queries themselves: that is a finding.
    let mut integrity_problems = Vec::new();
    let mut note = |e: rusqlite::Error| integrity_problems.push(e.to_string());
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or_else(|e| {
            note(e);
            -1
        });
    let journal_mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap_or_else(|e| {
            note(e);
            String::new()
        });
    match integrity(&conn, true) {
        Ok(found) => integrity_problems.extend(found),
        Err(e) => integrity_problems.push(e.message().to_string()),
    }
    let mut readable_by_others = Vec::new();
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let p = format!("{path}{suffix}");
        if let Ok(m) = std::fs::metadata(&p)
            && m.permissions().mode() & 0o077 != 0
        {
            readable_by_others.push(p);
        }
    }
    let ok = integrity_problems.is_empty()
        && readable_by_others.is_empty()
        && schema_version == SCHEMA_VERSION
        && journal_mode.eq_ignore_ascii_case("wal");
    Ok(DoctorReport {
        backend: "sqlite".into(),
        path: path.to_string(),
        size_bytes,
        schema_version,
        supported_schema_version: SCHEMA_VERSION,
        journal_mode,
        integrity_problems,
        readable_by_others,
        server_version: None,
        tls: None,
        round_trip_ms: None,
        ok,
    })
}

/// Files up to this size are checked with `PRAGMA quick_check` when opened;
/// larger ones by `irontoken doctor` (the check reads every page).
pub const QUICK_CHECK_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `PRAGMA quick_check` on a file of at most [`QUICK_CHECK_MAX_BYTES`].
pub(super) fn quick_check(conn: &Connection, path: &str) -> Result<()> {
    if file_len(path) > QUICK_CHECK_MAX_BYTES {
        return Ok(());
    }
    let problems = integrity(conn, false)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DatabaseCorrupt,
        format!(
            "the database failed quick_check ({}); nothing is written to it: run `irontoken doctor`",
            problems.first().map(String::as_str).unwrap_or("")
        ),
    ))
}

/// The problems `PRAGMA quick_check` (or the slower, fuller
/// `integrity_check` when `full`) reports; empty when the file is sound.
pub(crate) fn integrity(conn: &Connection, full: bool) -> Result<Vec<String>> {
    let sql = if full {
        "PRAGMA integrity_check(100)"
    } else {
        "PRAGMA quick_check(100)"
    };
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        let r = r?;
        if r != "ok" {
            out.push(r.chars().take(200).collect());
        }
    }
    Ok(out)
}
