//! The database file and its writers: privacy, corruption, read-only files, the
//! master key, busy waits, flushes and the WAL, several threads, managers and
//! processes on one file.

use irontoken::{
    ErrorKind, KeyFilter, KeyUpdate, NewKey, Options, TokenManager, UsageQuery, UsageReport,
    VerifyReason,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::fixtures::*;

fn rusqlite_conn(path: &str) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// Item 5: A write waits at most the busy timeout in all, also behind this
/// process's other writers (they queued one timeout each before).
#[test]
fn writers_wait_at_most_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let path = path.to_str().unwrap().to_string();
    let tm = std::sync::Arc::new(
        TokenManager::open_with(
            &path,
            Options::default().busy_timeout(Duration::from_millis(400)),
        )
        .unwrap(),
    );
    // Another process (here: a plain connection) holds the write lock.
    let other = rusqlite_conn(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let tm = tm.clone();
            std::thread::spawn(move || {
                let r = tm.create_key(&NewKey {
                    owner: format!("o{i}"),
                    ..Default::default()
                });
                (r.map(|_| ()).unwrap_err().kind(), started.elapsed())
            })
        })
        .collect();
    for t in threads {
        let (kind, took) = t.join().unwrap();
        assert_eq!(kind, ErrorKind::Busy);
        assert!(took < Duration::from_millis(1200), "waited {took:?}");
    }
    other.execute_batch("ROLLBACK").unwrap();
    key(&tm, "after");
}

/// Item 6: The database, -wal and -shm are private to their owner.
#[cfg(unix)]
#[test]
fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let tm = TokenManager::open(path.to_str().unwrap()).unwrap();
    key(&tm, "o");
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{p} is {mode:o}");
    }
    drop(tm);
    // An existing database keeps the mode its owner gave it (an empty file
    // is refused: see create_false_refuses_a_missing_or_empty_file).
    let shared = dir.path().join("shared.db");
    drop(TokenManager::open(shared.to_str().unwrap()).unwrap());
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    TokenManager::open(shared.to_str().unwrap()).unwrap();
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

/// Item 9: `create(false)` refuses a missing or empty file instead of
/// making an empty database (the CLI's read commands use it).
#[test]
fn create_false_refuses_a_missing_or_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let e = TokenManager::open_with(missing.to_str().unwrap(), Options::default().create(false))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DatabaseNotFound);
    assert!(!missing.exists());
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let e = TokenManager::open_with(empty.to_str().unwrap(), Options::default().create(false))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DatabaseNotFound);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    // Creating never takes an empty file for a new database (a truncated
    // database must not come back empty): refused, left as it is.
    let e = TokenManager::open(empty.to_str().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DatabaseNotFound);
    assert!(e.message().contains("empty"), "{e}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    // The default still creates where no file exists, like sqlite3.connect.
    TokenManager::open(missing.to_str().unwrap()).unwrap();
    TokenManager::open_with(missing.to_str().unwrap(), Options::default().create(false)).unwrap();
    // Many threads creating one new database at once: all open it, one
    // database, no leftovers.
    let shared = dir.path().join("raced.db");
    let path = shared.to_str().unwrap().to_string();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || TokenManager::open(&path).map(drop))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("creating"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// Item 10: a damaged file is refused at open (nothing written to it), and
/// `doctor` says what is wrong.
#[test]
fn a_corrupt_file_is_refused_and_diagnosed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let p = path.to_str().unwrap();
    {
        let tm = TokenManager::open(p).unwrap();
        for i in 0..200 {
            key(&tm, &format!("owner-{i}"));
        }
    }
    assert!(TokenManager::doctor(p).unwrap().ok);
    // Garbage over pages 3 and 4.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 5 * 4096);
    for b in &mut bytes[2 * 4096..4 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = TokenManager::open(p).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DatabaseCorrupt, "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was written");
    let report = TokenManager::doctor(p).unwrap();
    assert!(!report.ok && !report.integrity_problems.is_empty());
    // Not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let e = TokenManager::open(junk.to_str().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DatabaseCorrupt, "{e}");
    // A PostgreSQL URL in either spelling is checked as a server, not
    // looked for as a file: a host that does not resolve is STORAGE.
    for url in [
        "postgresql://u@nowhere.invalid/db",
        "postgres://u@nowhere.invalid/db",
    ] {
        let e = TokenManager::doctor(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{url}: {e}");
        assert!(e.to_string().contains("PostgreSQL"), "{url}: {e}");
    }
}

/// Buffered uses reach the database within `flush_interval` with no other
/// call (nothing passes the threshold, nobody flushes): what a crash can
/// lose is bounded by the interval, as the README says.
#[test]
fn buffered_uses_are_written_every_flush_interval_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("interval.db");
    let p = p.to_str().unwrap();
    let tm = TokenManager::open_with(
        p,
        Options::default().flush_interval(std::time::Duration::from_millis(50)),
    )
    .unwrap();
    let c = tm
        .create_key(&NewKey {
            owner: "interval".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    // Another manager reads what is in the file, not this one's buffer.
    let other = TokenManager::open(p).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while other.get_key(&c.record.id).unwrap().usage_count == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the use was never flushed on its own"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(tm);
}

/// Item 16: reads, listings and close work on a write-protected file.
#[cfg(unix)]
#[test]
fn reads_work_on_a_read_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let p = path.to_str().unwrap();
    let plaintext = {
        let tm = TokenManager::open(p).unwrap();
        let c = tm
            .create_key(&NewKey {
                owner: "o".into(),
                ..Default::default()
            })
            .unwrap();
        tm.record_usage(&UsageReport {
            key_id: Some(c.record.id.clone()),
            prompt_tokens: 5,
            ..Default::default()
        })
        .unwrap();
        c.key.to_string()
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    // root writes 0444 files: then open read-only the way SQLite spells it.
    let ro = if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        format!("file:{p}?mode=ro")
    } else {
        p.to_string()
    };
    let tm = TokenManager::open(&ro).unwrap();
    assert!(tm.verify_key(&plaintext, &[]).unwrap().valid); // buffers a use
    assert_eq!(
        tm.usage_summary(&UsageQuery::default()).unwrap()[0].prompt_tokens,
        5
    );
    assert!(!tm.list_audit(&Default::default()).unwrap().items.is_empty());
    tm.flush().unwrap();
    assert!(
        tm.create_key(&NewKey {
            owner: "x".into(),
            ..Default::default()
        })
        .is_err()
    );
    drop(tm);
}

/// A manager on a file in `dir` that flushes only when told to, with
/// `busy` as its busy timeout, and a key with three uses buffered.
fn three_buffered_uses(
    dir: &tempfile::TempDir,
    busy: Duration,
) -> (String, TokenManager, irontoken::CreatedKey) {
    let path = dir.path().join("buffered.db");
    let path = path.to_str().unwrap().to_string();
    let o = Options::default()
        .busy_timeout(busy)
        .flush_interval(Duration::from_secs(3600));
    let tm = TokenManager::open_with(&path, o).unwrap();
    let c = tm
        .create_key(&NewKey {
            owner: "b".into(),
            ..Default::default()
        })
        .unwrap();
    for _ in 0..3 {
        assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    }
    (path, tm, c)
}

/// A flush that fails (another process holds the write lock) keeps what it
/// held: the uses it carried are added to the uses counted since, and the
/// next flush writes them all (mutants shard 8: the restore's `+=` as `*=`
/// dropped the failed batch's counts and passed every test).
#[test]
fn a_failed_flush_loses_no_uses() {
    let dir = tempfile::tempdir().unwrap();
    let (path, tm, c) = three_buffered_uses(&dir, Duration::from_millis(100));
    let other = rusqlite_conn(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(tm.flush().unwrap_err().kind(), ErrorKind::Busy);
    for _ in 0..2 {
        assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    }
    assert_eq!(tm.flush().unwrap_err().kind(), ErrorKind::Busy);
    other.execute_batch("ROLLBACK").unwrap();
    tm.flush().unwrap();
    let fresh = TokenManager::open(&path).unwrap();
    assert_eq!(fresh.get_key(&c.record.id).unwrap().usage_count, 5);
}

/// `flush()` answers only once what was buffered before it is written,
/// even when another thread's flush (the flusher's, say) took the buffer
/// first and still waits for the write lock: a summary or a read by another
/// process right after `flush()` sees every use. (`flush()` used to find
/// the buffer empty and answer at once; a PostgreSQL test under load then
/// read 0 uses where 3 were flushed.)
#[test]
fn flush_waits_for_a_flush_already_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let (path, tm, c) = three_buffered_uses(&dir, Duration::from_secs(20));
    let other = rusqlite_conn(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let released = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // The first flush takes the buffer and waits for the lock.
        let first = s.spawn(|| tm.flush());
        std::thread::sleep(Duration::from_millis(200));
        let second = s.spawn(|| {
            tm.flush().unwrap();
            // Not before the first one's write could even start.
            assert!(released.load(std::sync::atomic::Ordering::SeqCst));
        });
        std::thread::sleep(Duration::from_millis(200));
        released.store(true, std::sync::atomic::Ordering::SeqCst);
        other.execute_batch("ROLLBACK").unwrap();
        first.join().unwrap().unwrap();
        second.join().unwrap();
    });
    let fresh = TokenManager::open(&path).unwrap();
    assert_eq!(fresh.get_key(&c.record.id).unwrap().usage_count, 3);
}

/// Item 4: a process with the wrong master key cannot rotate (or issue),
/// writes nothing, and the correctly configured processes keep issuing.
#[test]
fn a_wrong_master_key_is_refused_and_writes_nothing() {
    use irontoken::jwt::Alg;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mk.db");
    let p = path.to_str().unwrap();
    let good =
        TokenManager::open_with(p, Options::default().master_key(&[1u8; 32]).unwrap()).unwrap();
    let bad =
        TokenManager::open_with(p, Options::default().master_key(&[2u8; 32]).unwrap()).unwrap();
    good.create_signing_key(Alg::ES256, None).unwrap();
    let claims = serde_json::json!({"sub": "s"});
    let claims = claims.as_object().unwrap();
    for e in [
        bad.rotate_signing_key(None, 0, None).unwrap_err(),
        bad.create_signing_key(Alg::ES256, None).unwrap_err(),
        bad.issue_jwt(claims, None).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::MasterKeyMismatch, "{e}");
    }
    assert_eq!(good.list_signing_keys().unwrap().len(), 1);
    assert!(good.issue_jwt(claims, None).is_ok());
    // A database from before the check value: the stored key tells.
    drop((good, bad));
    let c = rusqlite::Connection::open(p).unwrap();
    c.execute("DELETE FROM meta", []).unwrap();
    drop(c);
    let bad =
        TokenManager::open_with(p, Options::default().master_key(&[2u8; 32]).unwrap()).unwrap();
    let e = bad.rotate_signing_key(None, 0, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MasterKeyMismatch);
    let good =
        TokenManager::open_with(p, Options::default().master_key(&[1u8; 32]).unwrap()).unwrap();
    good.rotate_signing_key(None, 0, None).unwrap(); // and the check value is stored again
    let e = bad.issue_jwt(claims, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MasterKeyMismatch);
}

/// The audit trail is append-only in the schema itself, on a database
/// created at the current version (not only on one migrated from v1): an
/// UPDATE or DELETE by any writer, even with plain SQL, is refused.
#[test]
fn audit_log_refuses_update_and_delete_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let p = path.to_str().unwrap();
    {
        let tm = TokenManager::open(p).unwrap();
        tm.create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    }
    let c = rusqlite::Connection::open(p).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
    for sql in [
        "UPDATE audit_log SET outcome = 'forged'",
        "UPDATE audit_log SET actor = 'someone else' WHERE id = 1",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = 1",
    ] {
        let e = c.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let after: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, n);
}

#[test]
fn concurrent_threads_share_one_manager() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let tm = Arc::new(
        TokenManager::open_with(
            path.to_str().unwrap(),
            Options::default().durability(irontoken::Durability::Normal),
        )
        .unwrap(),
    );
    let c = tm.create_key(&new_key("shared")).unwrap();
    let key = c.key.to_string();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let tm = tm.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    assert!(tm.verify_key(&key, &[]).unwrap().valid);
                    if i % 10 == 0 {
                        tm.create_key(&new_key(&format!("t{t}"))).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    tm.flush().unwrap();
    assert_eq!(tm.get_key(&c.record.id).unwrap().usage_count, 200);
    assert_eq!(tm.list_keys(&KeyFilter::default()).unwrap().items.len(), 21);
}

#[test]
fn two_managers_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let p = path.to_str().unwrap();
    let a = TokenManager::open(p).unwrap();
    let b = TokenManager::open(p).unwrap();
    let c = a.create_key(&new_key("x")).unwrap();
    assert!(b.verify_key(&c.key, &[]).unwrap().valid);
    // b caches the record; a change made through a is still seen at once.
    for i in 0..3 {
        let name = format!("renamed-{i}");
        a.update_key(
            &c.record.id,
            &KeyUpdate {
                name: Some(name.clone()),
                scopes: Some(vec![format!("s{i}")]),
                ..Default::default()
            },
        )
        .unwrap();
        let v = b.verify_key(&c.key, &[&format!("s{i}")]).unwrap();
        assert!(v.valid);
        assert_eq!(v.record.unwrap().name, name);
    }
    b.revoke_key(&c.record.id, None, None).unwrap();
    assert_eq!(
        a.verify_key(&c.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
    // Counters from both add up, nothing lost.
    let d = a.create_key(&new_key("y")).unwrap();
    for _ in 0..3 {
        a.verify_key(&d.key, &[]).unwrap();
        b.verify_key(&d.key, &[]).unwrap();
    }
    a.flush().unwrap();
    b.flush().unwrap();
    assert_eq!(a.get_key(&d.record.id).unwrap().usage_count, 6);
}

#[test]
fn usage_is_flushed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let p = path.to_str().unwrap();
    let (id, key) = {
        let tm = TokenManager::open(p).unwrap();
        let c = tm.create_key(&new_key("z")).unwrap();
        (c.record.id.clone(), c.key.to_string())
    };
    {
        let tm = TokenManager::open(p).unwrap();
        for _ in 0..7 {
            tm.verify_key(&key, &[]).unwrap();
        }
    }
    let tm = TokenManager::open(p).unwrap();
    assert_eq!(tm.get_key(&id).unwrap().usage_count, 7);
}

/// The value of counter `name` in the metrics text.
fn metric(tm: &TokenManager, name: &str) -> u64 {
    tm.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_large_backlog_is_flushed_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let mut opts = Options::default()
        .durability(irontoken::Durability::Normal)
        .flush_interval(std::time::Duration::from_secs(3600));
    opts.flush_threshold = 1 << 20;
    let tm = TokenManager::open_with(path.to_str().unwrap(), opts).unwrap();
    let reqs: Vec<NewKey> = (0..20_000).map(|i| new_key(&format!("o{i}"))).collect();
    let created = tm.create_keys(&reqs).unwrap();
    for c in &created {
        assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    }
    let before = metric(&tm, "irontoken_flushes_total");
    tm.flush().unwrap();
    let slices = metric(&tm, "irontoken_flushes_total") - before;
    assert!(
        slices > 1,
        "20000 counters written in {slices} transaction(s)"
    );
    for c in created.iter().step_by(997) {
        assert_eq!(tm.get_key(&c.record.id).unwrap().usage_count, 1);
    }
    // Verification reports this process's counters: read once, plus its uses since.
    let v = tm.verify_key(&created[0].key, &[]).unwrap();
    assert_eq!(v.record.unwrap().usage_count, 2);
}

#[test]
fn the_wal_is_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let opts = Options::default().durability(irontoken::Durability::Normal);
    let tm = TokenManager::open_with(path.to_str().unwrap(), opts).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    // Enough single-key commits to pass the WAL threshold (1000 pages).
    for i in 0..600 {
        tm.create_key(&new_key(&format!("o{i}"))).unwrap();
    }
    let wal = dir.path().join("w.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 4_000_000);
    // The flusher thread copies the log into the database file (no caller
    // waits for it): the file grows without any further write.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&path).unwrap().len() <= before + 100_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        tm.list_keys(&KeyFilter::default()).unwrap().items.len(),
        100
    ); // the first page
}
