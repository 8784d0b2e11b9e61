//! Creating a database file: atomically, private to its owner, never over
//! an existing empty file; and the process-wide SQLite configuration.

use super::*;

/// Size of the file at `path` (0 when missing or unreadable).
pub(super) fn file_len(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// An existing file of zero bytes: never taken for a new database (a
/// truncated database must not come back empty).
pub(super) fn empty_file(path: &str) -> Error {
    Error::new(
        ErrorKind::DatabaseNotFound,
        format!(
            "no irontoken database at {path}: the file is empty (a truncated database?); \
             remove it to create a new one"
        ),
    )
}

/// Makes a new database at `path` whole or not at all: it is created and
/// migrated under a temporary name, then linked into place — so no process
/// ever sees an empty file at `path`, and an empty file found there is
/// refused rather than initialised. If another process links its database
/// first, that one is kept.
pub(super) fn create_database(path: &str) -> Result<()> {
    if path.starts_with("file:") {
        return create_private(path);
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => return Err(empty_file(path)),
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("cannot read the database file's metadata: {e}"),
            ));
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = format!("{path}.creating-{}-{nanos}", std::process::id());
    let remove_tmp = || {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{tmp}{suffix}"));
        }
    };
    let made = (|| {
        create_private(&tmp)?;
        let conn = Connection::open(&tmp)?;
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        migrate(&conn)?;
        conn.close().map_err(|(_, e)| Error::from(e))?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::new(
                ErrorKind::Storage,
                format!("cannot create the database file: {e}"),
            )),
        }
    })();
    remove_tmp();
    made
}

pub(super) fn not_found(path: &str) -> Error {
    Error::new(
        ErrorKind::DatabaseNotFound,
        format!("no irontoken database at {path}"),
    )
}

/// Process-wide settings of irontoken's own SQLite, made once before its
/// first connection: no memory-usage statistics (each allocation and free
/// otherwise takes a global mutex; nothing here reads them). The copy of
/// SQLite is linked into irontoken, so no other code of the process shares
/// it; if it was initialized already the call is refused and changes nothing.
pub(super) fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before this copy of SQLite is
        // initialized (it refuses with SQLITE_MISUSE otherwise), with the
        // int argument SQLITE_CONFIG_MEMSTATUS takes.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                std::ffi::c_int::from(0),
            );
        }
    });
}

/// Creates the database file readable and writable by its owner only
/// (0600) when it does not exist yet; SQLite gives the `-wal` and `-shm`
/// files the mode of the database. An existing file keeps its mode.
#[cfg(unix)]
pub(super) fn create_private(path: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.starts_with("file:") || std::path::Path::new(path).exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::new(
            ErrorKind::Storage,
            format!("cannot create the database file: {e}"),
        )),
    }
}

#[cfg(not(unix))]
pub(super) fn create_private(_path: &str) -> Result<()> {
    Ok(())
}
