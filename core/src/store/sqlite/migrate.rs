//! Versioned migrations of the SQLite schema, applied under the write lock
//! so processes opening one file at once migrate it once.

use super::*;

/// The schema, one entry per version; entry `i` moves `user_version` i → i+1.
/// Never edit a released entry: append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
    include_str!("schema_v12.sql"),
    include_str!("schema_v13.sql"),
    include_str!("schema_v14.sql"),
    include_str!("schema_v15.sql"),
    include_str!("schema_v16.sql"),
    include_str!("schema_v17.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::SchemaTooNew,
            format!(
                "database schema version {current} is newer than this irontoken supports ({SCHEMA_VERSION})"
            ),
        ));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // Another process may migrate at the same time: take the write lock,
    // then read the version again.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA user_version={}", i + 1))?;
        }
        Ok::<_, Error>(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let path = path.to_str().unwrap();
        let db = Db::open(path, Durability::Normal, Duration::from_secs(1)).unwrap();
        let v: i64 = db
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        drop(db);
        Db::open(path, Durability::Normal, Duration::from_secs(1)).unwrap();
        let c = Connection::open(path).unwrap();
        c.execute_batch("PRAGMA user_version=999").unwrap();
        drop(c);
        let e = Db::open(path, Durability::Normal, Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::SchemaTooNew);
    }

    #[test]
    fn v1_database_migrates_keeping_its_audit_trail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute_batch(
            "PRAGMA user_version=1; INSERT INTO audit_log (at, action, outcome) VALUES (5, 'key.create', 'ok');
             INSERT INTO api_keys (id, key_hash, prefix, display_prefix, owner, created_at, updated_at)
               VALUES ('00000000-0000-0000-0000-000000000001', zeroblob(32), 'itk', 'itk_abcdefgh', 'o', 5, 5);",
        )
        .unwrap();
        drop(c);
        let db = Db::open(
            path.to_str().unwrap(),
            Durability::Normal,
            Duration::from_secs(1),
        )
        .unwrap();
        let (v, n, id): (i64, i64, i64) = db
            .read(|c| {
                let v = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let (n, id) = c.query_row("SELECT count(*), max(id) FROM audit_log", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                Ok((v, n, id))
            })
            .unwrap();
        assert_eq!((v, n, id), (SCHEMA_VERSION, 1, 1));
        // Keys written before v3 gain an empty list of rate limits.
        let limits: String = db
            .read(|c| Ok(c.query_row("SELECT rate_limits FROM api_keys", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(limits, "[]");
        // Still append-only after the rebuild.
        let e = db
            .write(|tx| Ok(tx.execute("DELETE FROM audit_log", [])?))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage);
    }

    /// Sessions written before v10 gain `ends_at`, the same value
    /// `model::sessions::next_expiry` gives.
    #[test]
    fn v9_sessions_gain_their_next_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.db");
        let c = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..9] {
            c.execute_batch(sql).unwrap();
        }
        let cases = [
            (Some(500), Some(60)),
            (Some(120), Some(60)),
            (None, Some(60)),
            (Some(500), None),
            (None, None),
        ];
        c.execute_batch("PRAGMA user_version=9").unwrap();
        for (i, (expires_at, idle)) in cases.iter().enumerate() {
            c.execute(
                "INSERT INTO sessions (id, owner, session_type, status, metadata, created_at, \
                 updated_at, last_seen_at, expires_at, idle_timeout) \
                 VALUES (?1, 'o', 't', 'active', '{}', 10, 100, 100, ?2, ?3)",
                rusqlite::params![
                    format!("00000000-0000-0000-0000-00000000000{i}"),
                    expires_at,
                    idle
                ],
            )
            .unwrap();
        }
        drop(c);
        let db = Db::open(
            path.to_str().unwrap(),
            Durability::Normal,
            Duration::from_secs(1),
        )
        .unwrap();
        for (i, (expires_at, idle)) in cases.iter().enumerate() {
            let got: Option<i64> = db
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT ends_at FROM sessions WHERE id = ?1",
                        [format!("00000000-0000-0000-0000-00000000000{i}")],
                        |r| r.get(0),
                    )?)
                })
                .unwrap();
            let want = crate::model::sessions::next_expiry(*expires_at, *idle, 100);
            assert_eq!(got, want, "case {i}");
        }
    }
}
