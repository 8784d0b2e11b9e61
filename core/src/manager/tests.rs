//! Unit tests of the manager: the write-behind buffer, options, the clock.

use super::*;
use crate::model::audit::NewAuditEvent;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn manager_is_send_and_sync() {
    assert_send_sync::<TokenManager>();
}

/// A manager's debug form names it and shows nothing it holds: not the
/// master key, not the path or URL (which may carry a password).
#[test]
fn debug_shows_no_state() {
    let o = Options::default().master_key(&[7u8; 32]).unwrap();
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    assert_eq!(format!("{tm:?}"), "TokenManager { .. }");
}

/// The no-inline-flush flag holds only inside the call and is restored
/// after it, nested or not, even when the call panics (mutants shard 4:
/// the restoring `drop` made a no-op passed every test, leaving a
/// thread that once called `try_verify_key` without back-pressure).
#[test]
fn inline_flushes_come_back_after_a_call_that_waits_for_nothing() {
    assert!(!NO_INLINE_FLUSH.get());
    without_inline_flush(|| {
        assert!(NO_INLINE_FLUSH.get());
        without_inline_flush(|| assert!(NO_INLINE_FLUSH.get()));
        assert!(NO_INLINE_FLUSH.get());
    });
    assert!(!NO_INLINE_FLUSH.get());
    let panicked = std::panic::catch_unwind(|| without_inline_flush(|| panic!("in the call")));
    assert!(panicked.is_err());
    assert!(!NO_INLINE_FLUSH.get());
}

/// Failures buffered while a flush fails keep their folded count on their
/// own entry once the failed batch is put back before them (mutants
/// shard 8: `*idx += shift` in `restore` as `*=` passed every test, and
/// the count landed on the oldest restored entry).
#[test]
fn failures_buffered_during_a_failed_flush_keep_their_own_counts() {
    let o = Options {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let inner = tm.inner();
    inner.defer_failure(event(1)).unwrap();
    inner.defer_failure(event(2)).unwrap();
    let failing = inner.take_batch();
    // While that batch's write waits and fails, the same failure twice.
    inner.defer_failure(event(3)).unwrap();
    let again = |at| NewAuditEvent { at, ..event(3) };
    inner.defer_failure(again(4)).unwrap();
    inner.restore(failing);
    // And once more after the failed batch is back.
    inner.defer_failure(again(5)).unwrap();
    let shown: Vec<_> = inner
        .take_batch()
        .audit
        .into_iter()
        .map(|e| (e.display_prefix.unwrap(), e.detail))
        .collect();
    let count = |n: u64, last: i64| Some(serde_json::json!({ "count": n, "last_at": last }));
    assert_eq!(
        shown,
        [
            ("p1".to_string(), None),
            ("p2".to_string(), None),
            ("p3".to_string(), count(3, 5)),
        ]
    );
}

/// A buffered audit event for the tests below.
fn event(at: i64) -> NewAuditEvent {
    NewAuditEvent {
        at,
        action: crate::model::audit::AuditAction::KeyVerify,
        key_id: None,
        display_prefix: Some(format!("p{at}")),
        actor: None,
        outcome: "NOT_FOUND",
        detail: None,
    }
}

/// At eight times `flush_threshold` of pressure the call that buffers
/// is the one that flushes, on its own thread (nothing woke the flusher
/// here: the buffer was filled behind its back), and the calls that
/// must not wait (`try_verify_key`) step aside: `None` (mutants shard
/// 6: `after_push` as `Ok(())` and `backlogged` as `false` passed every
/// test).
#[test]
fn the_call_that_fills_the_buffer_flushes_it() {
    let o = Options {
        flush_threshold: 2,
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let inner = tm.inner();
    // Filled behind the flusher's back: nothing wakes it before the
    // calls below buffer (at 2 it would, and race these checks).
    let fill = |n: i64| {
        inner
            .pending
            .lock()
            .unwrap()
            .audit
            .extend((0..n).map(event))
    };
    let buffered = || inner.pending.lock().unwrap().len();
    let audited = || tm.list_audit(&Default::default()).unwrap().items.len();
    fill(16);
    assert!(inner.backlogged());
    assert!(tm.try_verify_key("it_nothing", &[]).unwrap().is_none());
    assert_eq!(
        buffered(),
        16,
        "the call that stepped aside recorded nothing"
    );
    // The blocking call buffers its refusal and flushes everything.
    assert!(!tm.verify_key("zz_nothing", &[]).unwrap().valid);
    assert_eq!((buffered(), audited()), (0, 17));
    assert!(!inner.backlogged());
    // So does any buffering call at 8 x 2.
    fill(15);
    assert!(!inner.backlogged());
    inner.defer_failure(event(99)).unwrap();
    assert_eq!((buffered(), audited()), (0, 33));
    fill(15);
    assert!(!inner.backlogged());
    assert!(tm.try_verify_key("it_nothing", &[]).unwrap().is_some());
}

/// A state change writes what is buffered in its own transaction and
/// counts that as a flush; with nothing buffered it counts none
/// (mutants shard 7: `batch.len() > 0` in `write` as `==`, `<`, `>=`
/// passed every test).
#[test]
fn a_write_counts_a_flush_only_when_it_carries_buffered_entries() {
    let o = Options {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let flushes = || tm.inner().metrics.flushes.load(Ordering::Relaxed);
    let create = |owner: &str| {
        tm.create_key(&crate::NewKey {
            owner: owner.into(),
            ..Default::default()
        })
        .unwrap()
    };
    create("a");
    let before = flushes();
    create("b");
    assert_eq!(flushes(), before);
    assert!(!tm.verify_key("zz_nothing", &[]).unwrap().valid);
    assert_eq!(tm.inner().pending.lock().unwrap().len(), 1);
    create("c");
    assert_eq!(tm.inner().pending.lock().unwrap().len(), 0);
    assert_eq!(flushes(), before + 1);
}

/// A state change writes every buffered usage record with it, not only
/// the first slice of 16 (mutants: `n.is_multiple_of(16) && over(n)` in
/// `write_some` as `||` ended that transaction after 16 records and
/// lost the rest, and no test saw it).
#[test]
fn a_write_carries_every_buffered_usage_record() {
    let o = Options {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let k = tm
        .create_key(&crate::NewKey {
            owner: "u".into(),
            ..Default::default()
        })
        .unwrap();
    for i in 0..40 {
        let r = crate::UsageReport {
            request_id: Some(format!("r{i}")),
            key_id: Some(k.record.id.clone()),
            prompt_tokens: 1,
            ..Default::default()
        };
        assert!(!tm.record_usage(&r).unwrap().duplicate);
    }
    assert_eq!(tm.inner().pending.lock().unwrap().records.len(), 40);
    tm.revoke_key(&k.record.id, None, None).unwrap();
    assert_eq!(tm.inner().pending.lock().unwrap().len(), 0);
    let totals = tm.usage_summary(&Default::default()).unwrap();
    assert_eq!(totals.iter().map(|t| t.records).sum::<u64>(), 40);
}

/// Passing `flush_threshold` gets what is buffered written by the
/// flusher long before the interval; under the threshold nothing asks
/// for it. (The request is a flag read under the flusher's lock: a bare
/// wake-up sent while the flusher was busy elsewhere was lost, and the
/// buffer then waited for the interval or the next push.)
#[test]
fn passing_the_threshold_asks_the_flusher_to_write() {
    let o = Options {
        flush_interval: Duration::from_secs(3600),
        flush_threshold: 4,
        ..Default::default()
    };
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let inner = tm.inner();
    for round in 0..20 {
        for i in 0..3 {
            inner.defer_failure(event(round * 10 + i)).unwrap();
            assert!(!inner.orders.lock().unwrap().flush, "under the threshold");
        }
        inner.defer_failure(event(round * 10 + 3)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while inner.pending.lock().unwrap().len() > 0 {
            assert!(Instant::now() < deadline, "round {round}: not flushed");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let audited = tm.list_audit(&Default::default()).unwrap().items.len();
    assert_eq!(audited, 80);
}

/// A record read while a flush carries its key's uses (taken from the
/// buffer, not yet committed) counts none of them; it answers that one
/// call but is not remembered, so the next verification reads again and
/// counts every use (it used to be cached and stay short by the flushed
/// uses until the key changed).
#[test]
fn a_record_read_while_a_flush_carries_its_uses_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carry.db");
    let path = path.to_str().unwrap();
    let o = Options::default()
        .busy_timeout(Duration::from_secs(20))
        .flush_interval(Duration::from_secs(3600));
    let tm = TokenManager::open_with(path, o).unwrap();
    let c = tm
        .create_key(&crate::NewKey {
            owner: "c".into(),
            ..Default::default()
        })
        .unwrap();
    let uses = |tm: &TokenManager| {
        let v = tm.verify_key(&c.key, &[]).unwrap();
        assert!(v.valid);
        v.record.unwrap().usage_count
    };
    for n in 1..=3 {
        assert_eq!(uses(&tm), n);
    }
    tm.inner().records.clear(); // as if evicted
    let other = rusqlite::Connection::open(path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::scope(|s| {
        let flush = s.spawn(|| tm.flush());
        std::thread::sleep(Duration::from_millis(200));
        // The flush holds the 3 uses and waits for the write lock: they
        // left the buffer (a move), and a record read now counts them.
        let moved = super::write_behind::CarryMarks::default();
        assert!(!tm.inner().carried_nothing_since(moved));
        assert!(tm.inner().carried_nothing_since(tm.inner().carry_marks()));
        assert_eq!(uses(&tm), 4);
        assert_eq!(
            tm.inner().records.len(),
            1,
            "read while in flight, remembered"
        );
        assert_eq!(uses(&tm), 5);
        // So does one read by id while the flush waits.
        let read = s.spawn(|| tm.get_key(&c.record.id).unwrap().usage_count);
        std::thread::sleep(Duration::from_millis(100));
        other.execute_batch("ROLLBACK").unwrap();
        flush.join().unwrap().unwrap();
        assert_eq!(read.join().unwrap(), 5);
    });
    assert_eq!(uses(&tm), 6);
    assert_eq!(uses(&tm), 7);
    // Remembered while the flush waited: the key's record was read once.
    tm.flush().unwrap();
    assert_eq!(tm.get_key(&c.record.id).unwrap().usage_count, 7);
}

/// Records read and remembered while flushes commit slice after slice
/// count every use exactly once: each thread verifies its own key while
/// the flusher runs without pause and the cache is emptied again and again
/// (every read races the flights); at the end of each round the remembered
/// records answer, exactly. (One key per thread: two threads verifying one
/// key while its record is read can leave the remembered record one use
/// short, whatever the flusher does: a known limit, see `CachedKey`.)
#[test]
fn records_read_during_flushes_count_every_use_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flights.db");
    let mut o = Options::default().flush_interval(Duration::from_millis(1));
    o.flush_threshold = 1;
    let tm = TokenManager::open_with(path.to_str().unwrap(), o).unwrap();
    let keys: Vec<_> = (0..3)
        .map(|i| {
            tm.create_key(&crate::NewKey {
                owner: format!("o{i}"),
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    let mut total = 0;
    let mut remembered = 0;
    for _round in 0..60 {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let clearer = s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    tm.inner().records.clear();
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
            let workers: Vec<_> = keys
                .iter()
                .map(|k| {
                    let tm = &tm;
                    s.spawn(move || {
                        for _ in 0..150 {
                            assert!(tm.verify_key(&k.key, &[]).unwrap().valid);
                        }
                    })
                })
                .collect();
            let ok = workers.into_iter().all(|w| w.join().is_ok());
            done.store(true, Ordering::Relaxed);
            clearer.join().unwrap();
            assert!(ok);
        });
        // 150 more uses of each key. What the last reads left in memory
        // (read while flights committed) answers now, exactly.
        total += 150;
        remembered += tm.inner().records.len();
        // Nothing left in flight: a key not remembered is read exactly (a
        // read that a commit overlaps three times answers unremembered and
        // may be off; that is not what this test is about).
        tm.flush().unwrap();
        for k in &keys {
            let v = tm.verify_key(&k.key, &[]).unwrap();
            total_check(v.record.unwrap().usage_count, total + 1);
        }
        total += 1;
    }
    assert!(
        remembered > 0,
        "no record was remembered during the flights"
    );
    tm.flush().unwrap();
    for k in &keys {
        assert_eq!(tm.get_key(&k.record.id).unwrap().usage_count, total);
    }
}

fn total_check(got: u64, want: u64) {
    assert_eq!(got, want, "a remembered record miscounts");
}

/// A key's buffered uses include its counter in a flight until the slice
/// holding it commits: slices go in key-id order, so exactly the ids up to
/// the last one committed are in the database.
#[test]
fn a_flights_counter_counts_until_its_slice_commits() {
    use super::write_behind::{CounterId, InFlight};
    let tm = TokenManager::open(":memory:").unwrap();
    let ids = ["a-1", "b-2", "c-3"];
    let flight = Arc::new(InFlight::for_tests(
        ids.iter().map(|i| (CounterId::of(i), (2, 7))).collect(),
    ));
    *tm.inner().in_flight.lock().unwrap() = Some(flight.clone());
    tm.inner().record_use("c-3", 9).unwrap();
    let counts = |tm: &TokenManager| ids.map(|i| tm.inner().pending_use(i));
    assert_eq!(counts(&tm), [Some((2, 7)), Some((2, 7)), Some((3, 9))]);
    flight.committed_through(Some(CounterId::of("b-2")));
    assert_eq!(counts(&tm), [None, None, Some((3, 9))]);
    flight.committed_through(Some(CounterId::of("c-3")));
    assert_eq!(counts(&tm), [None, None, Some((1, 9))]);
}

/// Each numeric option is accepted at both ends of its documented range
/// and refused one step outside (mutants: every bound of `open_with`
/// could move by one, or its `||` become `&&`, and no core test saw it).
#[test]
fn option_ranges_are_exact_at_both_ends() {
    type Set = fn(&mut Options);
    let accepted: [(&str, Set); 15] = [
        ("flush_interval 1 ms", |o| {
            o.flush_interval = Duration::from_millis(1)
        }),
        ("flush_interval 1 h", |o| o.flush_interval = MAX_INTERVAL),
        ("busy_timeout 0", |o| o.busy_timeout = Duration::ZERO),
        ("busy_timeout 1 h", |o| o.busy_timeout = MAX_INTERVAL),
        ("flush_threshold 1", |o| o.flush_threshold = 1),
        ("flush_threshold 2^24", |o| o.flush_threshold = 1 << 24),
        ("max_buckets 1", |o| o.max_buckets = 1),
        ("max_buckets 2^26", |o| o.max_buckets = 1 << 26),
        ("key_cache_size 1", |o| o.key_cache_size = 1),
        ("key_cache_size 2^24", |o| o.key_cache_size = 1 << 24),
        ("page_cache_mib 1", |o| o.page_cache_mib = 1),
        ("page_cache_mib 2^16", |o| o.page_cache_mib = 1 << 16),
        ("mmap_mib 2^16", |o| o.mmap_mib = 1 << 16),
        ("rate_limit_timeout 1 ms", |o| {
            o.rate_limit_timeout = Duration::from_millis(1)
        }),
        ("rate_limit_timeout 1 h", |o| {
            o.rate_limit_timeout = MAX_INTERVAL
        }),
    ];
    let refused: [(&str, Set); 14] = [
        ("flush_interval 0", |o| o.flush_interval = Duration::ZERO),
        ("flush_interval 1 h + 1 ns", |o| {
            o.flush_interval = MAX_INTERVAL + Duration::from_nanos(1)
        }),
        ("busy_timeout 1 h + 1 ns", |o| {
            o.busy_timeout = MAX_INTERVAL + Duration::from_nanos(1)
        }),
        ("flush_threshold 0", |o| o.flush_threshold = 0),
        ("flush_threshold 2^24 + 1", |o| {
            o.flush_threshold = (1 << 24) + 1
        }),
        ("max_buckets 0", |o| o.max_buckets = 0),
        ("max_buckets 2^26 + 1", |o| o.max_buckets = (1 << 26) + 1),
        ("key_cache_size 0", |o| o.key_cache_size = 0),
        ("key_cache_size 2^24 + 1", |o| {
            o.key_cache_size = (1 << 24) + 1
        }),
        ("page_cache_mib 0", |o| o.page_cache_mib = 0),
        ("page_cache_mib 2^16 + 1", |o| {
            o.page_cache_mib = (1 << 16) + 1
        }),
        ("mmap_mib 2^16 + 1", |o| o.mmap_mib = (1 << 16) + 1),
        ("rate_limit_timeout 0", |o| {
            o.rate_limit_timeout = Duration::ZERO
        }),
        ("rate_limit_timeout 1 h + 1 ns", |o| {
            o.rate_limit_timeout = MAX_INTERVAL + Duration::from_nanos(1)
        }),
    ];
    let open = |set: Set| {
        let mut o = Options::default();
        set(&mut o);
        TokenManager::open_with(":memory:", o)
    };
    for (what, set) in accepted {
        assert!(open(set).is_ok(), "{what} refused");
    }
    for (what, set) in refused {
        let e = open(set).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{what}: {e}");
    }
}

/// What a flush is sized by: every buffered item counts once in
/// `len`; in `pressure` a buffered counter weighs 1/8 (mutants shard 5:
/// the weights, and `len`, made constant passed every test).
#[test]
fn buffered_counters_weigh_an_eighth_of_the_flush_pressure() {
    let mut p = Pending::default();
    assert_eq!((p.len(), p.pressure()), (0, 0));
    for i in 0..17 {
        p.usage.insert(
            super::write_behind::CounterId::of(&format!("key{i}")),
            (1, 0),
        );
    }
    assert_eq!((p.len(), p.pressure()), (17, 2));
    p.audit.extend((0..3).map(event));
    assert_eq!((p.len(), p.pressure()), (20, 5));
    for i in 0..5 {
        p.records.push(crate::model::usage::PendingUsage {
            request_id: format!("r{i}"),
            at: 0,
            key_id: None,
            session_id: None,
            agent_id: None,
            owner: None,
            model: String::new(),
            model_version: String::new(),
            numbers: [0; 6],
            metadata_json: "{}".into(),
            reported_at_ms: 0,
        });
    }
    assert_eq!((p.len(), p.pressure()), (25, 10));
}

#[test]
fn manual_clock_moves_only_when_told() {
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(1000)).unwrap();
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
