//! Rotation: the overlap and its end, the lifetime a new key keeps, rotation
//! periods and due keys, across processes.

use irontoken::{ErrorKind, KeyUpdate, NewKey, Options, RotateOptions, TokenManager, VerifyReason};

mod common;
use common::fixtures::*;

const T0: i64 = KEYS_T0;

#[test]
fn rotation_overlap() {
    let tm = manager();
    let clock = tm.manual_clock().unwrap();
    let old = tm.create_key(&new_key("carol")).unwrap();
    let new = tm
        .rotate_key(
            &old.record.id,
            &RotateOptions {
                overlap_seconds: 300,
                actor: Some("ops".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_ne!(*old.key, *new.key);
    assert_eq!(new.record.version, 2);
    assert_eq!(
        new.record.rotated_from.as_deref(),
        Some(old.record.id.as_str())
    );
    assert_eq!(new.record.scopes, old.record.scopes);
    assert_eq!(new.record.metadata, old.record.metadata);
    assert_eq!(new.record.owner, "carol");
    let old_rec = tm.get_key(&old.record.id).unwrap();
    assert_eq!(old_rec.rotated_to.as_deref(), Some(new.record.id.as_str()));

    clock.advance(299);
    assert!(tm.verify_key(&old.key, &[]).unwrap().valid);
    assert!(tm.verify_key(&new.key, &[]).unwrap().valid);
    clock.advance(1);
    assert_eq!(
        tm.verify_key(&old.key, &[]).unwrap().reason,
        VerifyReason::Expired
    );
    assert!(tm.verify_key(&new.key, &[]).unwrap().valid);

    // Rotating twice from the same old key is refused.
    let e = tm
        .rotate_key(&old.record.id, &RotateOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyExpired);

    // Overlap 0: the old key is revoked at once; a rotated key cannot fork.
    let third = tm
        .rotate_key(&new.record.id, &RotateOptions::default())
        .unwrap();
    assert_eq!(third.record.version, 3);
    assert_eq!(
        tm.verify_key(&new.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
    assert!(tm.verify_key(&third.key, &[]).unwrap().valid);
}

#[test]
fn rotating_twice_inside_the_overlap_is_a_conflict() {
    let tm = manager();
    let old = tm.create_key(&new_key("dan")).unwrap();
    let opts = RotateOptions {
        overlap_seconds: 60,
        ..Default::default()
    };
    tm.rotate_key(&old.record.id, &opts).unwrap();
    let e = tm.rotate_key(&old.record.id, &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[test]
fn rotation_keeps_the_lifetime() {
    let tm = manager();
    let clock = tm.manual_clock().unwrap();
    let old = tm
        .create_key(&NewKey {
            expires_in: Some(1000),
            ..new_key("e")
        })
        .unwrap();
    clock.advance(100);
    let new = tm
        .rotate_key(&old.record.id, &RotateOptions::default())
        .unwrap();
    assert_eq!(new.record.expires_at, Some(T0 + 100 + 1000));
}

fn with_period(owner: &str, period: Option<i64>) -> NewKey {
    NewKey {
        owner: owner.into(),
        rotation_period: period,
        ..Default::default()
    }
}

/// Scheduled rotation: due by the key's own period or the manager's
/// default, rotated once with the plaintext handed back, the period kept.
#[test]
fn keys_rotate_when_due() {
    let tm = common::open_private(
        Options::default()
            .manual_clock(T0)
            .default_rotation_period(500)
            .unwrap(),
    );
    let own = tm.create_key(&with_period("a", Some(100))).unwrap();
    let default = tm.create_key(&with_period("b", None)).unwrap();
    assert_eq!(own.record.rotation_period, Some(100));
    assert!(tm.keys_due(100).unwrap().is_empty());
    assert!(tm.rotate_due(0, None).unwrap().is_empty());
    tm.advance_clock(100).unwrap();
    let due: Vec<String> = tm
        .keys_due(100)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(due, std::slice::from_ref(&own.record.id));
    let rotated = tm.rotate_due(60, Some("cron")).unwrap();
    assert_eq!(rotated.len(), 1);
    let new = &rotated[0];
    assert_eq!(
        new.record.rotated_from.as_deref(),
        Some(own.record.id.as_str())
    );
    assert_eq!(
        new.record.rotation_period,
        Some(100),
        "the period carries over"
    );
    assert_eq!(new.record.version, 2);
    assert!(tm.verify_key(&own.key, &[]).unwrap().valid, "overlap");
    assert!(tm.verify_key(&new.key, &[]).unwrap().valid);
    assert!(tm.rotate_due(60, None).unwrap().is_empty(), "rotated once");
    tm.advance_clock(400).unwrap();
    // 500 s: the key on the default period; the rotated one is due again too.
    let mut owners: Vec<String> = tm
        .rotate_due(0, None)
        .unwrap()
        .into_iter()
        .map(|c| c.record.owner)
        .collect();
    owners.sort();
    assert_eq!(owners, ["a", "b"]);
    assert_eq!(
        tm.verify_key(&default.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
}

#[test]
fn rotation_periods_are_checked_and_can_change() {
    let tm = manager();
    // Ten years of 366 days exactly, and one second more (mutants shard 1:
    // `10 * 366 * 86_400` as `10 * 366 + 86_400` passed every test).
    const TEN_YEARS: i64 = 316_224_000;
    for bad in [0, -5, TEN_YEARS + 1, 11 * 366 * 86_400] {
        let e = tm.create_key(&with_period("a", Some(bad))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    let longest = tm.create_key(&with_period("a", Some(TEN_YEARS))).unwrap();
    assert_eq!(longest.record.rotation_period, Some(TEN_YEARS));
    assert!(Options::default().default_rotation_period(0).is_err());
    // The manager-wide default has the same bounds (mutants shard 5: its
    // `10 * 366 * 86_400` as `10 * 366 + 86_400` passed every test).
    assert!(
        Options::default()
            .default_rotation_period(TEN_YEARS)
            .is_ok()
    );
    for bad in [-1, TEN_YEARS + 1] {
        let e = Options::default()
            .default_rotation_period(bad)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    let k = tm.create_key(&with_period("a", None)).unwrap();
    let r = tm
        .update_key(
            &k.record.id,
            &KeyUpdate {
                rotation_period: Some(Some(30)),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.rotation_period, Some(30));
    tm.advance_clock(30).unwrap();
    assert_eq!(tm.keys_due(10).unwrap().len(), 1);
    let r = tm
        .update_key(
            &k.record.id,
            &KeyUpdate {
                rotation_period: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.rotation_period, None);
    assert!(tm.keys_due(10).unwrap().is_empty());
    // Disabled, revoked and expired keys are never due.
    let d = tm.create_key(&with_period("d", Some(1))).unwrap();
    tm.disable_key(&d.record.id, None).unwrap();
    tm.advance_clock(5).unwrap();
    assert!(tm.keys_due(10).unwrap().is_empty());
}

/// Two processes' cron jobs at once: each due key rotated exactly once,
/// each new plaintext returned to exactly one caller.
#[test]
fn rotate_due_from_two_processes_rotates_each_key_once() {
    let store = common::shared_store();
    let url = &store.url;
    let open = || TokenManager::open_with(url, Options::default().manual_clock(T0)).unwrap();
    let (a, b) = (open(), open());
    let reqs: Vec<NewKey> = (0..40)
        .map(|i| with_period(&format!("o{i}"), Some(10)))
        .collect();
    a.create_keys(&reqs).unwrap();
    a.advance_clock(10).unwrap();
    b.advance_clock(10).unwrap();
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| a.rotate_due(0, None).unwrap());
        let y = s.spawn(|| b.rotate_due(0, None).unwrap());
        (x.join().unwrap(), y.join().unwrap())
    });
    assert_eq!(x.len() + y.len(), 40, "{} + {}", x.len(), y.len());
    let mut from: Vec<_> = x
        .iter()
        .chain(&y)
        .map(|c| c.record.rotated_from.clone())
        .collect();
    from.sort();
    from.dedup();
    assert_eq!(from.len(), 40);
    assert!(a.keys_due(100).unwrap().is_empty());
}

/// A `key_rotation_due` event once a key is due (the flusher looks a few
/// seconds after start, then every minute).
#[test]
fn a_due_key_raises_an_event() {
    let tm = manager();
    let k = tm.create_key(&with_period("a", Some(10))).unwrap();
    tm.advance_clock(11).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    loop {
        let events = tm.drain_events(100);
        if let Some(e) = events.iter().find(|e| e.kind == "key_rotation_due") {
            assert_eq!(e.key_id.as_deref(), Some(k.record.id.as_str()));
            assert_eq!(e.detail["rotation_period"], 10);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no key_rotation_due event"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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
