//! Quotas on PostgreSQL across managers standing in for hosts: exact under
//! races, the one-row path's solo flags kept right by every change and by hosts
//! changing one owner at once, no deadlock between layout changes, an upgrade
//! from schema v3. Skipped, with one line, when no PostgreSQL answers.

use common::fixtures::{key, key_with_daily_requests, requests, spec};
use common::{PgScratch, postgres_answers};
use irontoken::{ErrorKind, NewKey, TokenManager};

mod common;

fn open(scratch: &PgScratch) -> TokenManager {
    TokenManager::open(&scratch.url()).unwrap()
}

#[test]
fn quota_race_across_hosts_and_threads_is_exact() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let setup = open(&s);
    let kid = key_with_daily_requests(&setup, "o", 150);
    let hosts: Vec<TokenManager> = (0..3).map(|_| open(&s)).collect();
    // 3 hosts x 4 threads x 20 = 240 attempts on a limit of 150.
    assert_eq!(race(&hosts, &kid, 20), 150);
    assert_eq!(
        setup.list_quotas(irontoken::QuotaScope::Key, &kid).unwrap()[0].used,
        150
    );
}

/// Requests of one each on `kid`'s quotas from 4 threads on each of
/// `hosts`, `per_thread` each; how many were granted.
fn race(hosts: &[TokenManager], kid: &str, per_thread: u32) -> u64 {
    let granted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for h in hosts {
            for _ in 0..4 {
                let granted = &granted;
                scope.spawn(move || {
                    for _ in 0..per_thread {
                        if h.consume_quota(kid, &requests(1)).unwrap().allowed {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        }
    });
    granted.into_inner()
}

/// A quota of `scope`/`subject` on `metric` (no period, no refill).
fn quota(
    scope: irontoken::QuotaScope,
    subject: &str,
    metric: irontoken::QuotaMetric,
    limit: u64,
) -> irontoken::QuotaSpec {
    irontoken::QuotaSpec {
        scope,
        subject: subject.into(),
        metric,
        period: irontoken::QuotaPeriod::None,
        limit,
        refill_amount: None,
        refill_period: None,
        actor: None,
    }
}

/// A direct connection to the scratch schema.
fn sql(s: &PgScratch) -> postgres::Client {
    s.url()
        .parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap()
}

/// Key quota rows whose `solo` flag (the one-row consumption path of schema
/// v4) disagrees with what it must be: the only quota of an existing,
/// unrotated key whose owner has none.
fn wrong_solo_rows(c: &mut postgres::Client) -> Vec<(String, bool)> {
    c.query(
        "SELECT q.subject, q.solo FROM quotas q LEFT JOIN api_keys a ON a.id = q.subject \
         WHERE q.scope = 'key' AND q.solo IS DISTINCT FROM ( \
             a.id IS NOT NULL AND a.rotated_to IS NULL \
             AND NOT EXISTS (SELECT 1 FROM quotas x WHERE x.scope = 'key' \
                             AND x.subject = q.subject AND x.seq <> q.seq) \
             AND NOT EXISTS (SELECT 1 FROM quotas o WHERE o.scope = 'owner' \
                             AND o.subject = a.owner))",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn solo_of(c: &mut postgres::Client, key: &str) -> Vec<bool> {
    c.query(
        "SELECT solo FROM quotas WHERE scope = 'key' AND subject = $1 ORDER BY seq",
        &[&key],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn one_row_quota_path_follows_every_change_of_which_quotas_apply() {
    use irontoken::{Amounts, QuotaMetric::*, QuotaScope::*};
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let (tm, other) = (open(&s), open(&s));
    let mut c = sql(&s);
    let new_key = |owner: &str| {
        tm.create_key(&NewKey {
            owner: owner.into(),
            ..Default::default()
        })
        .unwrap()
        .record
        .id
    };
    let k1 = new_key("o");
    let req = |n| Amounts {
        requests: n,
        ..Default::default()
    };
    let used = |scope, subject: &str| -> Vec<u64> {
        tm.list_quotas(scope, subject)
            .unwrap()
            .iter()
            .map(|q| q.used)
            .collect()
    };
    tm.set_quota(&quota(Key, &k1, Requests, 100)).unwrap();
    assert_eq!(solo_of(&mut c, &k1), [true]);
    assert!(tm.consume_quota(&k1, &req(1)).unwrap().allowed);
    assert_eq!(used(Key, &k1), [1]);

    // An owner quota set by another host: the key's consumption charges it
    // too, and it refuses what it has no room for.
    other.set_quota(&quota(Owner, "o", Tokens, 5)).unwrap();
    assert_eq!(solo_of(&mut c, &k1), [false]);
    let both = Amounts {
        requests: 1,
        tokens: 3,
        ..Default::default()
    };
    let d = tm.consume_quota(&k1, &both).unwrap();
    assert!(d.allowed);
    assert_eq!(d.quotas.len(), 2);
    assert!(!tm.consume_quota(&k1, &both).unwrap().allowed);
    assert_eq!((used(Key, &k1), used(Owner, "o")), (vec![2], vec![3]));
    other
        .delete_quota(Owner, "o", Tokens, irontoken::QuotaPeriod::None, None)
        .unwrap();
    assert_eq!(solo_of(&mut c, &k1), [true]);

    // A second quota on the key: both are charged, all or nothing.
    other.set_quota(&quota(Key, &k1, Tokens, 10)).unwrap();
    assert_eq!(solo_of(&mut c, &k1), [false, false]);
    assert!(tm.consume_quota(&k1, &both).unwrap().allowed);
    assert_eq!(used(Key, &k1), [3, 3]);
    let too_much = Amounts {
        requests: 1,
        tokens: 8,
        ..Default::default()
    };
    assert!(!tm.consume_quota(&k1, &too_much).unwrap().allowed);
    assert_eq!(used(Key, &k1), [3, 3]);
    other
        .delete_quota(Key, &k1, Tokens, irontoken::QuotaPeriod::None, None)
        .unwrap();
    assert_eq!(solo_of(&mut c, &k1), [true]);

    // Rotation moves the quota to the new key: the old one (still verifying
    // during its overlap) charges the new key's quota.
    let k2 = other
        .rotate_key(
            &k1,
            &irontoken::RotateOptions {
                overlap_seconds: 3600,
                ..Default::default()
            },
        )
        .unwrap()
        .record
        .id;
    assert_eq!(solo_of(&mut c, &k2), [true]);
    assert!(solo_of(&mut c, &k1).is_empty());
    assert!(tm.consume_quota(&k1, &req(1)).unwrap().allowed);
    assert!(tm.consume_quota(&k2, &req(1)).unwrap().allowed);
    assert_eq!(used(Key, &k2), [5]);

    // Another key of the owner with its own quota is solo on its own; an
    // owner quota clears both, and deleting a key leaves nothing solo behind.
    let k3 = new_key("o");
    other.set_quota(&quota(Key, &k3, Requests, 1)).unwrap();
    assert_eq!(solo_of(&mut c, &k3), [true]);
    assert!(tm.consume_quota(&k3, &req(1)).unwrap().allowed);
    assert!(!tm.consume_quota(&k3, &req(1)).unwrap().allowed);
    other.set_quota(&quota(Owner, "o", Requests, 1000)).unwrap();
    assert_eq!(
        (solo_of(&mut c, &k2), solo_of(&mut c, &k3)),
        (vec![false], vec![false])
    );
    other.delete_key(&k3, None).unwrap();
    assert_eq!(wrong_solo_rows(&mut c), []);

    // Keys changed behind irontoken's back (by hand in SQL) keep the flag
    // right too: a key linked to a successor, a key deleted with its quota
    // left behind (its consumption is refused, not charged to the orphan).
    let (k4, k5) = (new_key("p"), new_key("p"));
    for k in [&k4, &k5] {
        other.set_quota(&quota(Key, k, Requests, 10)).unwrap();
        assert_eq!(solo_of(&mut c, k), [true]);
    }
    c.execute(
        "UPDATE api_keys SET rotated_to = $2 WHERE id = $1",
        &[&k4, &k2],
    )
    .unwrap();
    c.execute("DELETE FROM api_keys WHERE id = $1", &[&k5])
        .unwrap();
    assert_eq!(
        (solo_of(&mut c, &k4), solo_of(&mut c, &k5)),
        (vec![false], vec![false])
    );
    assert_eq!(wrong_solo_rows(&mut c), []);
    let e = tm.consume_quota(&k5, &req(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyNotFound);
}

#[test]
fn one_row_quota_flags_stay_right_when_hosts_change_one_owner_at_once() {
    use irontoken::{QuotaMetric::*, QuotaScope::*};
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let (a, b) = (open(&s), open(&s));
    let mut c = sql(&s);
    for round in 0..40 {
        let owner = format!("owner-{round}");
        let key = a
            .create_key(&NewKey {
                owner: owner.clone(),
                ..Default::default()
            })
            .unwrap()
            .record
            .id;
        // One host gives the key its first quota while the other gives its
        // owner one; whichever commits last must see the other.
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                barrier.wait();
                a.set_quota(&quota(Key, &key, Requests, 10)).unwrap();
            });
            scope.spawn(|| {
                barrier.wait();
                b.set_quota(&quota(Owner, &owner, Requests, 10)).unwrap();
            });
        });
        assert_eq!(wrong_solo_rows(&mut c), [], "round {round}");
        assert_eq!(solo_of(&mut c, &key), [false]);
    }
}

/// Brings the scratch database to schema `version` as the released
/// migrations left it (the files the library applies, and its version table).
fn at_schema(c: &mut postgres::Client, version: usize) {
    const FILES: [&str; 5] = [
        include_str!("../src/store/postgres/schema_v1.sql"),
        include_str!("../src/store/postgres/schema_v2.sql"),
        include_str!("../src/store/postgres/schema_v3.sql"),
        include_str!("../src/store/postgres/schema_v4.sql"),
        include_str!("../src/store/postgres/schema_v5.sql"),
    ];
    c.batch_execute("CREATE TABLE irontoken_schema (version bigint NOT NULL)")
        .unwrap();
    for (i, sql) in FILES[..version].iter().enumerate() {
        c.batch_execute(sql).unwrap();
        c.execute(
            "INSERT INTO irontoken_schema VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .unwrap();
    }
}

#[test]
fn a_database_at_schema_v3_keeps_its_quotas_and_checks_after_the_upgrade() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let mut c = sql(&s);
    // A database as version 3 left it, with a key, its quota and an owner
    // quota of another owner.
    at_schema(&mut c, 3);
    c.batch_execute(
        "INSERT INTO api_keys (id, key_hash, prefix, display_prefix, owner, created_at, updated_at) \
           VALUES ('aaaaaaaa-0000-4000-8000-000000000001', sha256('a'), 'it', 'it_aaa', 'o', 0, 0), \
                  ('aaaaaaaa-0000-4000-8000-000000000002', sha256('b'), 'it', 'it_bbb', 'p', 0, 0); \
         INSERT INTO quotas (scope, subject, metric, period, limit_amount, used, window_start, created_at, updated_at) \
           VALUES ('key', 'aaaaaaaa-0000-4000-8000-000000000001', 'requests', 'none', 10, 4, 0, 0, 0), \
                  ('key', 'aaaaaaaa-0000-4000-8000-000000000002', 'requests', 'none', 10, 0, 0, 0, 0), \
                  ('owner', 'p', 'requests', 'none', 1, 1, 0, 0, 0);",
    )
    .unwrap();
    let tm = open(&s);
    assert_eq!(
        solo_of(&mut c, "aaaaaaaa-0000-4000-8000-000000000001"),
        [true]
    );
    assert_eq!(wrong_solo_rows(&mut c), []);
    let one = irontoken::Amounts {
        requests: 1,
        ..Default::default()
    };
    let d = tm
        .consume_quota("aaaaaaaa-0000-4000-8000-000000000001", &one)
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.quotas[0].used, 5);
    // The owner quota of "p" is full: its key is refused.
    let d = tm
        .consume_quota("aaaaaaaa-0000-4000-8000-000000000002", &one)
        .unwrap();
    assert!(!d.allowed);
    // The row checks of schema v1 still hold (now a trigger for the
    // columns a consumption never changes, CHECKs for the counters).
    for bad in [
        "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, created_at, updated_at) \
         VALUES ('team', 'x', 'requests', 'none', 1, 0, 0, 0)",
        "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, created_at, updated_at) \
         VALUES ('key', '', 'requests', 'none', 1, 0, 0, 0)",
        "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, created_at, updated_at) \
         VALUES ('key', 'x', 'requests', 'none', -1, 0, 0, 0)",
        "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, refill_amount, created_at, updated_at) \
         VALUES ('key', 'x', 'requests', 'none', 1, 0, 5, 0, 0)",
        "INSERT INTO quotas (scope, subject, metric, period, limit_amount, window_start, refill_amount, refill_period, created_at, updated_at) \
         VALUES ('key', 'x', 'requests', 'day', 1, 0, 5, 'day', 0, 0)",
        "UPDATE quotas SET metric = 'bytes'",
        "UPDATE quotas SET used = -1",
        "UPDATE quotas SET reserved = -1",
    ] {
        let e = c.batch_execute(bad).unwrap_err();
        assert_eq!(
            e.code(),
            Some(&postgres::error::SqlState::CHECK_VIOLATION),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn quota_layout_changes_on_two_hosts_at_once_never_deadlock() {
    use irontoken::{QuotaMetric::*, QuotaPeriod, QuotaScope::*};
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let (a, b) = (open(&s), open(&s));
    let keys: Vec<String> = (0..4)
        .map(|_| {
            a.create_key(&NewKey {
                owner: "busy".into(),
                ..Default::default()
            })
            .unwrap()
            .record
            .id
        })
        .collect();
    let (c, d) = (open(&s), open(&s));
    let c_key = c
        .create_key(&NewKey {
            owner: "busy".into(),
            ..Default::default()
        })
        .unwrap()
        .record
        .id;
    c.set_quota(&quota(Key, &c_key, Tokens, 1000)).unwrap();
    // Host A sets and deletes the owner's quota (a refresh of every key of
    // the owner); host B sets and deletes the keys' own quotas. Row locks
    // and the owner's advisory lock must always be taken in one order.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..30 {
                a.set_quota(&quota(Owner, "busy", Requests, 100)).unwrap();
                a.delete_quota(Owner, "busy", Requests, QuotaPeriod::None, None)
                    .unwrap();
            }
        });
        scope.spawn(|| {
            for i in 0..30 {
                let k = &keys[i % keys.len()];
                b.set_quota(&quota(Key, k, Requests, 10)).unwrap();
                b.delete_quota(Key, k, Requests, QuotaPeriod::None, None)
                    .unwrap();
            }
        });
        // A fourth consumes from keys of the owner all along (the general
        // path while the owner has a quota: key rows, then the owner's).
        scope.spawn(|| {
            for i in 0..200 {
                let amounts = irontoken::Amounts {
                    requests: 1,
                    ..Default::default()
                };
                d.consume_quota(&keys[i % keys.len()], &amounts).unwrap();
            }
        });
        // A third host rotates a key with a quota (moving it) meanwhile.
        scope.spawn(|| {
            let mut k = c_key.clone();
            for _ in 0..15 {
                k = c
                    .rotate_key(
                        &k,
                        &irontoken::RotateOptions {
                            overlap_seconds: 60,
                            ..Default::default()
                        },
                    )
                    .unwrap()
                    .record
                    .id;
            }
        });
    });
    let mut db = sql(&s);
    assert_eq!(wrong_solo_rows(&mut db), []);
}

/// A key with an owner quota takes the all-rows statement (every quota of
/// the key and its owner locked, checked and charged at once) while it is
/// below the alert level, then the general path: 3 hosts x 4 threads racing
/// on both quotas grant exactly the limit, and both quotas count every
/// grant once (no lost update, no charge of one quota without the other).
#[test]
fn key_and_owner_quotas_race_exactly_across_hosts() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let setup = open(&s);
    let kid = key(&setup, "acme");
    for (scope, subject, limit) in [
        (irontoken::QuotaScope::Key, kid.as_str(), 300),
        (irontoken::QuotaScope::Owner, "acme", 200),
    ] {
        let q = spec(
            scope,
            subject,
            irontoken::QuotaMetric::Requests,
            irontoken::QuotaPeriod::Month,
            limit,
        );
        setup.set_quota(&q).unwrap();
    }
    let hosts: Vec<TokenManager> = (0..3).map(|_| open(&s)).collect();
    // 300 attempts; the owner's 200 is the tighter limit.
    assert_eq!(race(&hosts, &kid, 25), 200);
    let used = |scope, subject: &str| setup.list_quotas(scope, subject).unwrap()[0].used;
    assert_eq!(used(irontoken::QuotaScope::Key, &kid), 200);
    assert_eq!(used(irontoken::QuotaScope::Owner, "acme"), 200);
}

/// Upgrading to schema v6 drops the quota functions (the fast path is the
/// library's) and gives every session its next expiry, the value
/// `next_expiry` gives: the earlier of the absolute and the idle expiry.
#[test]
fn schema_v6_drops_the_quota_functions_and_backfills_session_expiry() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let mut c = sql(&s);
    at_schema(&mut c, 5);
    c.batch_execute(
        "INSERT INTO sessions (id, owner, session_type, status, metadata, created_at, updated_at, \
                               last_seen_at, expires_at, idle_timeout) VALUES \
           ('aaaaaaaa-0000-4000-8000-000000000001', 'o', 't', 'active', '{}', 10, 100, 100, 500, 60), \
           ('aaaaaaaa-0000-4000-8000-000000000002', 'o', 't', 'active', '{}', 10, 100, 100, 120, 60), \
           ('aaaaaaaa-0000-4000-8000-000000000003', 'o', 't', 'active', '{}', 10, 100, 100, NULL, 60), \
           ('aaaaaaaa-0000-4000-8000-000000000004', 'o', 't', 'active', '{}', 10, 100, 100, 500, NULL), \
           ('aaaaaaaa-0000-4000-8000-000000000005', 'o', 't', 'active', '{}', 10, 100, 100, NULL, NULL);",
    )
    .unwrap();
    let functions = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_proc WHERE proname IN ('irontoken_consume', 'irontoken_amount') \
             AND pronamespace = current_schema()::regnamespace",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(functions(&mut c), 2, "schema v5 has them");
    let tm = open(&s);
    let ends: Vec<Option<i64>> = c
        .query("SELECT ends_at FROM sessions ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ends, [Some(160), Some(120), Some(160), Some(500), None]);
    assert_eq!(functions(&mut c), 0, "schema v6 dropped them");
    // A session read through the manager answers from the column.
    let s2 = tm
        .get_session("aaaaaaaa-0000-4000-8000-000000000002")
        .unwrap();
    assert_eq!(s2.expires_next_at, Some(120));
}
