//! What hostile and careless use broke (issue 9), one test per defect; each
//! failed before its fix.

use irontoken::{
    ErrorKind, MAX_USAGE_NUMBER, NewKey, OpenSettings, Options, TokenManager, UsageQuery,
    UsageReport,
};
use std::time::{Duration, Instant};

fn key(tm: &TokenManager, owner: &str) -> String {
    tm.create_key(&NewKey {
        owner: owner.into(),
        ..Default::default()
    })
    .unwrap()
    .record
    .id
}

/// Item 1: Numeric options out of range are INVALID_ARGUMENT, never a panic
/// inside SQLite's binding (busy_timeout >= 2^31 ms did that).
#[test]
fn numeric_options_are_bounded() {
    for json in [
        r#"{"busy_timeout_ms": 2147483648}"#,
        r#"{"busy_timeout_ms": 18446744073709551615}"#,
        r#"{"flush_interval_ms": 0}"#,
        r#"{"flush_interval_ms": 99999999999}"#,
    ] {
        let s: OpenSettings = serde_json::from_str(json).unwrap();
        let e = s
            .into_options()
            .and_then(|o| TokenManager::open_with(":memory:", o))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{json}");
    }
    for o in [
        Options::default().busy_timeout(Duration::from_secs(1 << 40)),
        Options::default().flush_interval(Duration::from_secs(1 << 40)),
    ] {
        let e = TokenManager::open_with(":memory:", o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

/// Item 3: Sums of usage never overflow, past 2^64 too (128 bits); a
/// record carries at most 2^53 - 1.
#[test]
fn usage_summaries_do_not_overflow() {
    let tm = TokenManager::open(":memory:").unwrap();
    let k = key(&tm, "big");
    const N: u128 = 2050; // N × (2^53 − 1) > 2^64
    for i in 0..N {
        tm.record_usage(&UsageReport {
            request_id: Some(format!("r{i}")),
            key_id: Some(k.clone()),
            cost_micros: MAX_USAGE_NUMBER,
            prompt_tokens: MAX_USAGE_NUMBER,
            completion_tokens: MAX_USAGE_NUMBER,
            ..Default::default()
        })
        .unwrap();
    }
    let t = &tm.usage_summary(&UsageQuery::default()).unwrap()[0];
    let max = u128::from(MAX_USAGE_NUMBER);
    assert!(N * max > u128::from(u64::MAX));
    assert_eq!(t.cost_micros, N * max);
    assert_eq!(t.prompt_tokens, N * max);
    assert_eq!(t.total_tokens, 2 * N * max);
    let e = tm
        .record_usage(&UsageReport {
            key_id: Some(k),
            cost_micros: MAX_USAGE_NUMBER + 1,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
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

fn rusqlite_conn(path: &str) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
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

/// Item 7: names refuse control, bidi and invisible characters; free text
/// keeps newlines and tabs but refuses bidi overrides.
#[test]
fn names_refuse_terminal_tricks() {
    let tm = TokenManager::open(":memory:").unwrap();
    for owner in [
        "a\nb",
        "a\tb",
        "a\u{202e}b",
        "a\u{200b}",
        "\u{feff}a",
        "a\u{2066}b",
        // Tag characters hide text; line and paragraph separators break it.
        "admin\u{E0041}\u{E0042}",
        "a\u{E007F}",
        "a\u{2028}b",
        "a\u{2029}b",
        "a\u{3164}",
    ] {
        let e = tm
            .create_key(&NewKey {
                owner: owner.into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{owner:?}");
    }
    for scope in [
        "read\u{202e}",
        "x\u{200d}y",
        "read\u{E0001}",
        "read\u{2028}",
    ] {
        let e = tm
            .create_key(&NewKey {
                owner: "o".into(),
                scopes: vec![scope.into()],
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{scope:?}");
    }
    let e = tm
        .create_key(&NewKey {
            owner: "o".into(),
            actor: Some("ops\u{E0020}".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    tm.create_key(&NewKey {
        owner: "o".into(),
        description: "line one\n\tline two".into(),
        ..Default::default()
    })
    .unwrap();
    let e = tm
        .create_key(&NewKey {
            owner: "o".into(),
            description: "safe \u{202e}txt.exe".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

/// Item 8: a key whose delivery fails is never committed.
#[test]
fn a_key_that_cannot_be_delivered_is_not_created() {
    let tm = TokenManager::open(":memory:").unwrap();
    let e = tm
        .create_key_then(
            &NewKey {
                owner: "o".into(),
                ..Default::default()
            },
            |_| Err(irontoken::Error::new(ErrorKind::Internal, "stdout closed")),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(tm.list_keys(&Default::default()).unwrap().items.is_empty());
    assert!(tm.list_audit(&Default::default()).unwrap().items.is_empty());
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

/// Item 11: for one request id reported by two processes, the first
/// report wins, whichever process flushes first.
#[test]
fn the_first_report_of_a_request_id_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idem.db");
    let p = path.to_str().unwrap();
    let slow = || Options::default().flush_interval(Duration::from_secs(3600));
    let a = TokenManager::open_with(p, slow()).unwrap();
    let b = TokenManager::open_with(p, slow()).unwrap();
    let k = key(&a, "o");
    let report = |tokens| UsageReport {
        request_id: Some("req-1".into()),
        key_id: Some(k.clone()),
        prompt_tokens: tokens,
        ..Default::default()
    };
    a.record_usage(&report(100)).unwrap(); // first, buffered in A
    std::thread::sleep(Duration::from_millis(5));
    b.record_usage(&report(999)).unwrap(); // later, in B
    b.flush().unwrap(); // B flushes first
    a.flush().unwrap();
    let t = &a.usage_summary(&UsageQuery::default()).unwrap()[0];
    assert_eq!((t.records, t.prompt_tokens), (1, 100));
    // A later report flushed later changes nothing either.
    b.record_usage(&report(5)).unwrap();
    b.flush().unwrap();
    let t = &b.usage_summary(&UsageQuery::default()).unwrap()[0];
    assert_eq!((t.records, t.prompt_tokens), (1, 100));
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

/// Item 12: a backward step of the clock never locks a key out for longer
/// than one emission interval; the manager's own limiter runs on a
/// monotonic clock.
#[test]
fn a_clock_stepped_back_does_not_lock_keys_out() {
    use irontoken::Clock;
    use irontoken::ratelimit::{Limit, RateLimiter};
    let rl = RateLimiter::new(1000);
    let limits = [Limit::new("per_min", 60, 60_000, 60).unwrap()];
    let t = 1_800_000_000_000i64;
    for _ in 0..60 {
        assert!(rl.check("k", &limits, t).unwrap().allowed);
    }
    assert!(!rl.check("k", &limits, t).unwrap().allowed);
    let back = t - 3_600_000; // the wall clock steps back one hour
    let d = rl.check("k", &limits, back).unwrap();
    assert!(
        d.retry_after_ms <= 1000,
        "locked out for {} ms",
        d.retry_after_ms
    );
    assert!(rl.check("k", &limits, back + 1000).unwrap().allowed);
    let a = irontoken::SystemClock.monotonic_ms();
    let b = irontoken::SystemClock.monotonic_ms();
    assert!(b >= a && (a - irontoken::SystemClock::now_ms()).abs() < 60_000);
}

/// Item 16: a peek does not count holds past their TTL as reserved.
#[test]
fn peek_ignores_expired_holds() {
    use irontoken::{Amounts, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSpec};
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(1_800_000_000))
        .unwrap();
    let k = key(&tm, "o");
    tm.set_quota(&QuotaSpec {
        scope: QuotaScope::Key,
        subject: k.clone(),
        metric: QuotaMetric::Requests,
        period: QuotaPeriod::Day,
        limit: 10,
        refill_amount: None,
        refill_period: None,
        actor: None,
    })
    .unwrap();
    let ten = Amounts {
        requests: 10,
        ..Default::default()
    };
    assert!(
        tm.reserve_quota(&k, &ten, Some(30))
            .unwrap()
            .decision
            .allowed
    );
    assert!(!tm.peek_quota(&k, &ten).unwrap().allowed);
    tm.advance_clock(31).unwrap();
    let d = tm.peek_quota(&k, &ten).unwrap();
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.quotas[0].reserved, 0);
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

/// Item 15: a rotation overlap is never shorter than asked, whatever the
/// milliseconds of the moment it starts.
#[test]
fn rotation_overlap_is_not_cut_short() {
    use irontoken::{Clock, RotateOptions};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    struct Ms(AtomicI64);
    impl Clock for Ms {
        fn now(&self) -> i64 {
            self.0.load(Ordering::SeqCst).div_euclid(1000)
        }
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }
    let clock = Arc::new(Ms(AtomicI64::new(1_800_000_000_700)));
    let tm = TokenManager::open_with(":memory:", Options::default().clock(clock.clone())).unwrap();
    let old = tm
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    tm.rotate_key(
        &old.record.id,
        &RotateOptions {
            overlap_seconds: 2,
            expires_at: None,
            actor: None,
        },
    )
    .unwrap();
    clock.0.store(1_800_000_002_600, Ordering::SeqCst); // 1.9 s later
    assert!(tm.verify_key(&old.key, &[]).unwrap().valid);
    clock.0.store(1_800_000_003_000, Ordering::SeqCst); // 2.3 s later: over
    assert!(!tm.verify_key(&old.key, &[]).unwrap().valid);
}

/// Expiries and token lifetimes stop at 9999-12-31T23:59:59Z: past it they
/// are INVALID_ARGUMENT naming the field, never saturated to i64::MAX (a JS
/// number cannot hold it, Python's datetime cannot show it) and never
/// wrapped (`exchange_api_key` with ttl 2^63-1 signed `exp` = -9.2e18).
#[test]
fn times_past_the_year_9999_are_refused() {
    use irontoken::{
        AgentTokenRequest, ImportKey, KeyUpdate, MAX_TIME, NewBudget, NewSession, RotateOptions,
        jwt::Alg,
    };
    const NOW: i64 = 1_700_000_000;
    let tm = TokenManager::open_with(
        ":memory:",
        Options::default()
            .manual_clock(NOW)
            .master_key(&[7; 32])
            .unwrap(),
    )
    .unwrap();
    let invalid = |r: irontoken::Result<_>, field: &str| {
        let e = r.map(|_: ()| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    };
    let new = |expires_at, expires_in| NewKey {
        owner: "o".into(),
        expires_at,
        expires_in,
        ..Default::default()
    };
    // The last second is accepted, exactly as given.
    let last = tm.create_key(&new(Some(MAX_TIME), None)).unwrap();
    assert_eq!(last.record.expires_at, Some(MAX_TIME));
    let k = tm
        .create_key(&new(None, Some(MAX_TIME - NOW)))
        .unwrap()
        .record;
    assert_eq!(k.expires_at, Some(MAX_TIME));
    invalid(
        tm.create_key(&new(Some(MAX_TIME + 1), None)).map(drop),
        "expires_at",
    );
    invalid(
        tm.create_key(&new(None, Some(MAX_TIME - NOW + 1)))
            .map(drop),
        "expires_in",
    );
    invalid(
        tm.create_key(&new(None, Some(i64::MAX))).map(drop),
        "expires_in",
    );
    let import = ImportKey {
        key: Some("legacy-key-0123456789abcdef".into()),
        owner: "o".into(),
        expires_at: Some(i64::MAX),
        ..Default::default()
    };
    invalid(tm.import_key(&import).map(drop), "expires_at");
    let update = KeyUpdate {
        expires_at: Some(Some(MAX_TIME + 1)),
        ..Default::default()
    };
    invalid(tm.update_key(&k.id, &update).map(drop), "expires_at");
    let rotate = |expires_at, overlap_seconds| RotateOptions {
        expires_at,
        overlap_seconds,
        ..Default::default()
    };
    invalid(
        tm.rotate_key(&k.id, &rotate(Some(Some(i64::MAX)), 0))
            .map(drop),
        "expires_at",
    );
    invalid(
        tm.rotate_key(&k.id, &rotate(None, i64::MAX)).map(drop),
        "overlap_seconds",
    );
    // Nothing was written by the refusals: the key rotates once, now, and
    // the successor's inherited lifetime ends no later than MAX_TIME.
    let next = tm.rotate_key(&last.record.id, &rotate(None, 60)).unwrap();
    assert_eq!(next.record.expires_at, Some(MAX_TIME));
    assert_eq!(
        tm.get_key(&last.record.id).unwrap().expires_at,
        Some(NOW + 60)
    );
    let session = |ttl_seconds, idle_timeout_seconds| NewSession {
        owner: "o".into(),
        ttl_seconds,
        idle_timeout_seconds,
        ..Default::default()
    };
    invalid(
        tm.create_session(&session(Some(i64::MAX), None)).map(drop),
        "ttl_seconds",
    );
    invalid(
        tm.create_session(&session(None, Some(i64::MAX))).map(drop),
        "idle_timeout_seconds",
    );
    let s = tm
        .create_session(&session(Some(MAX_TIME - NOW), None))
        .unwrap();
    assert_eq!(s.expires_at, Some(MAX_TIME));
    tm.create_signing_key(Alg::ES256, None).unwrap();
    invalid(
        tm.issue_jwt(&Default::default(), Some(i64::MAX)).map(drop),
        "ttl_seconds",
    );
    let key = tm.create_key(&new(None, None)).unwrap().key;
    invalid(
        tm.exchange_api_key(&key, &[], Some(i64::MAX)).map(drop),
        "ttl_seconds",
    );
    let t = tm.exchange_api_key(&key, &[], Some(3600)).unwrap();
    assert_eq!(t.expires_at, NOW + 3600);
    let b = tm
        .create_budget(&NewBudget {
            owner: "o".into(),
            limit_micros: 10,
            ..Default::default()
        })
        .unwrap();
    let agent = |ttl_seconds| AgentTokenRequest {
        agent_id: "a".into(),
        budget_id: b.id.clone(),
        ttl_seconds,
        ..Default::default()
    };
    invalid(
        tm.issue_agent_token(&agent(Some(i64::MAX))).map(drop),
        "ttl_seconds",
    );
    tm.issue_agent_token(&agent(Some(MAX_TIME - NOW))).unwrap();
}

/// `try_verify_key` / `try_verify_key_with` answer `None` only when the
/// answer needs a round trip (BUSY); any other failure is an error, not a
/// silent "ask again elsewhere" (mutants shard 2: the BUSY guard made
/// `true` passed every test). A schema damaged by hand makes the
/// verification's statement fail to prepare.
#[test]
fn verify_now_passes_on_errors_other_than_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("now.db");
    let tm = TokenManager::open(path.to_str().unwrap()).unwrap();
    let created = tm
        .create_key(&NewKey {
            owner: "now".into(),
            ..Default::default()
        })
        .unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("DROP INDEX api_keys_state").unwrap();
    let e = tm.try_verify_key(&created.key, &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    let e = tm
        .try_verify_key_with(&created.key, &Default::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
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
