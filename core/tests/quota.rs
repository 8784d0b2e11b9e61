//! Quotas: the shared vectors, the fast path against the general path, windows,
//! refills, holds, alerts and owner scope, on the store under test.

use irontoken::{
    Amounts, ErrorKind, NewKey, Options, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSpec,
    TokenManager, VerifyOptions, VerifyReason, ratelimit::Limit,
};
use serde_json::{Value, json};
use std::sync::Arc;

mod common;
use common::fixtures::*;

/// The quota vectors' cases.
fn quota_cases() -> Vec<Value> {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/quota.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&raw).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// Runs one vector case on a manager with the quota fast path on or off,
/// checking what the vector states; returns every answer and event in
/// order, with the random key and reservation ids replaced by names.
fn run_case(case: &Value, fast_path: bool) -> Vec<Value> {
    let name = case["name"].as_str().unwrap();
    let mut options = Options::default()
        .manual_clock(case["start"].as_i64().unwrap())
        .master_key(&[7u8; 32])
        .unwrap();
    options.quota_fast_path = fast_path;
    let tm = common::open_private(options);
    let owner = case["owner"].as_str().unwrap();
    let kid = key(&tm, owner);
    let mut specs = Vec::new();
    for q in case["quotas"].as_array().unwrap() {
        let mut q = q.clone();
        let subject = if q["scope"] == "key" {
            kid.as_str()
        } else {
            owner
        };
        q["subject"] = json!(subject);
        let s: QuotaSpec = serde_json::from_value(q).unwrap();
        tm.set_quota(&s).unwrap();
        specs.push(s);
    }
    let mut trace = Vec::new();
    let mut reservation: Option<String> = None;
    let mut holds = Vec::new();
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!("{name}, step {i}, fast path {fast_path}");
        tm.advance_clock(step["advance"].as_i64().unwrap_or(0))
            .unwrap();
        let amounts: Amounts =
            serde_json::from_value(step.get("amounts").cloned().unwrap_or(json!({}))).unwrap();
        let (allowed, answer) = match step["op"].as_str().unwrap() {
            "consume" => {
                let d = tm.consume_quota(&kid, &amounts).unwrap();
                (Some(d.allowed), json!(d))
            }
            "peek" => {
                let d = tm.peek_quota(&kid, &amounts).unwrap();
                (Some(d.allowed), json!(d))
            }
            "reserve" => {
                let r = tm
                    .reserve_quota(&kid, &amounts, step["ttl_seconds"].as_i64())
                    .unwrap();
                if let Some(res) = &r.reservation {
                    reservation = Some(res.id.clone());
                    holds.push(res.id.clone());
                }
                (Some(r.decision.allowed), json!(r))
            }
            "settle" => {
                let d = tm
                    .settle_reservation(reservation.as_deref().unwrap(), &amounts)
                    .unwrap();
                (None, json!(d))
            }
            "release" => {
                let d = tm
                    .release_reservation(reservation.as_deref().unwrap())
                    .unwrap();
                (None, json!(d))
            }
            "add_credits" => {
                let s = &specs[step["quota"].as_u64().unwrap() as usize];
                let q = tm
                    .add_credits(
                        s.scope,
                        &s.subject,
                        s.metric,
                        step["amount"].as_u64().unwrap(),
                    )
                    .unwrap();
                (None, json!(q))
            }
            op => panic!("unknown op {op}"),
        };
        if let Some(want) = step["allowed"].as_bool() {
            assert_eq!(allowed, Some(want), "{at}: allowed");
        }
        let now = tm.peek_quota(&kid, &Amounts::default()).unwrap();
        let remaining: Vec<u64> = now.quotas.iter().map(|q| q.remaining).collect();
        let want: Vec<u64> = serde_json::from_value(step["remaining"].clone()).unwrap();
        assert_eq!(remaining, want, "{at}: remaining");
        if let Some(r) = step.get("reset_at") {
            let got: Vec<Option<i64>> = now.quotas.iter().map(|q| q.reset_at).collect();
            let want: Vec<Option<i64>> = serde_json::from_value(r.clone()).unwrap();
            assert_eq!(got, want, "{at}: reset_at");
        }
        trace.extend([answer, json!(now), json!(tm.drain_events(100))]);
    }
    let mut text = serde_json::to_string(&trace).unwrap().replace(&kid, "KEY");
    for (i, id) in holds.iter().enumerate() {
        text = text.replace(id, &format!("RESERVATION-{i}"));
    }
    serde_json::from_str(&text).unwrap()
}

#[test]
fn quota_vectors() {
    for case in quota_cases() {
        run_case(&case, true);
    }
}

/// The fast path (one statement for a simple consumption, one read for a
/// simple peek) gives the general path's answers, quotas and events, step
/// by step, for every vector case, on the store under test.
#[test]
fn the_fast_path_answers_as_the_general_path_does() {
    for case in quota_cases() {
        let fast = run_case(&case, true);
        let general = run_case(&case, false);
        assert_eq!(fast, general, "{}", case["name"]);
    }
}

#[test]
fn verify_key_with_rate_limit_and_quota() {
    let tm = manager_at(T0);
    let created = tm
        .create_key(&NewKey {
            owner: "alice".into(),
            rate_limits: vec![Limit::new("per_minute", 2, 60_000, 2).unwrap()],
            ..Default::default()
        })
        .unwrap();
    let kid = created.record.id.clone();
    assert_eq!(created.record.rate_limits.len(), 1);
    tm.set_quota(&spec(
        QuotaScope::Key,
        &kid,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        3,
    ))
    .unwrap();
    let opts = VerifyOptions {
        rate_limit: true,
        quota: Some(Amounts {
            requests: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let reasons: Vec<VerifyReason> = (0..3)
        .map(|_| tm.verify_key_with(&created.key, &opts).unwrap().reason)
        .collect();
    assert_eq!(
        reasons,
        [
            VerifyReason::Valid,
            VerifyReason::Valid,
            VerifyReason::RateLimited
        ]
    );
    let limited = tm.verify_key_with(&created.key, &opts).unwrap();
    assert!(!limited.valid);
    assert!(limited.rate_limit.unwrap().retry_after_ms > 0);
    // A minute later the bucket has room again; the quota has 1 request left.
    tm.advance_clock(60).unwrap();
    assert!(tm.verify_key_with(&created.key, &opts).unwrap().valid);
    let v = tm.verify_key_with(&created.key, &opts).unwrap();
    assert_eq!(v.reason, VerifyReason::UsageExceeded);
    assert_eq!(v.quota.unwrap().denied_by.unwrap().remaining, 0);
    // Plain verification ignores both.
    assert!(tm.verify_key(&created.key, &[]).unwrap().valid);
    // Limits are part of the key record and can be changed.
    let r = tm
        .update_key(
            &kid,
            &irontoken::KeyUpdate {
                rate_limits: Some(vec![]),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(r.rate_limits.is_empty());
    let dup = Limit::new("x", 1, 1000, 1).unwrap();
    let e = tm
        .create_key(&NewKey {
            owner: "a".into(),
            rate_limits: vec![dup.clone(), dup],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let m = tm.metrics();
    assert!(
        m.contains("irontoken_key_verifications_total{reason=\"RATE_LIMITED\"} 2"),
        "{m}"
    );
    assert!(m.contains("irontoken_key_verifications_total{reason=\"USAGE_EXCEEDED\"} 1"));
    assert!(m.contains("irontoken_rate_limit_denials_total 2"));
    assert!(m.contains("irontoken_quota_denials_total 1"));
}

#[test]
fn quota_alerts_and_owner_scope() {
    let tm = manager_at(T0);
    let a = key(&tm, "acme");
    let b = key(&tm, "acme");
    tm.set_quota(&spec(
        QuotaScope::Owner,
        "acme",
        QuotaMetric::Tokens,
        QuotaPeriod::Day,
        100,
    ))
    .unwrap();
    assert!(
        tm.consume_quota(
            &a,
            &Amounts {
                tokens: 79,
                ..Default::default()
            }
        )
        .unwrap()
        .allowed
    );
    assert!(tm.drain_events(10).is_empty());
    assert!(
        tm.consume_quota(
            &b,
            &Amounts {
                tokens: 1,
                ..Default::default()
            }
        )
        .unwrap()
        .allowed
    );
    let ev = tm.drain_events(10);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind.as_str(), ev[0].detail["level"].as_i64()),
        ("quota_threshold", Some(80))
    );
    assert!(
        !tm.consume_quota(
            &b,
            &Amounts {
                tokens: 21,
                ..Default::default()
            }
        )
        .unwrap()
        .allowed
    );
    assert!(
        tm.consume_quota(
            &a,
            &Amounts {
                tokens: 20,
                ..Default::default()
            }
        )
        .unwrap()
        .allowed
    );
    let ev = tm.drain_events(10);
    assert_eq!(ev[0].detail["level"], 100);
    assert_eq!(
        tm.list_quotas(QuotaScope::Owner, "acme").unwrap()[0].used,
        100
    );
    tm.delete_quota(
        QuotaScope::Owner,
        "acme",
        QuotaMetric::Tokens,
        QuotaPeriod::Day,
        None,
    )
    .unwrap();
    assert!(
        tm.consume_quota(
            &a,
            &Amounts {
                tokens: 1000,
                ..Default::default()
            }
        )
        .unwrap()
        .allowed
    );
    assert_eq!(
        tm.consume_quota("missing", &Amounts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::KeyNotFound
    );
    // Settling twice is a conflict; a bad refill is refused.
    tm.set_quota(&spec(
        QuotaScope::Key,
        &a,
        QuotaMetric::Cost,
        QuotaPeriod::Day,
        10,
    ))
    .unwrap();
    let r = tm
        .reserve_quota(
            &a,
            &Amounts {
                cost_micros: 5,
                ..Default::default()
            },
            None,
        )
        .unwrap()
        .reservation
        .unwrap();
    tm.settle_reservation(
        &r.id,
        &Amounts {
            cost_micros: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        tm.settle_reservation(&r.id, &Amounts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    let mut bad = spec(QuotaScope::Key, &a, QuotaMetric::Cost, QuotaPeriod::Day, 10);
    bad.refill_amount = Some(5);
    bad.refill_period = Some(QuotaPeriod::Day);
    assert_eq!(
        tm.set_quota(&bad).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn threads_on_two_managers_never_overshoot_a_quota() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let path = path.to_str().unwrap();
    let a = Arc::new(TokenManager::open(path).unwrap());
    let b = Arc::new(TokenManager::open(path).unwrap());
    let kid = key(&a, "acme");
    a.set_quota(&spec(
        QuotaScope::Key,
        &kid,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        150,
    ))
    .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let tm = if i % 2 == 0 { a.clone() } else { b.clone() };
            let kid = kid.clone();
            std::thread::spawn(move || {
                let mut granted = 0;
                for _ in 0..40 {
                    let d = tm
                        .consume_quota(
                            &kid,
                            &Amounts {
                                requests: 1,
                                ..Default::default()
                            },
                        )
                        .unwrap();
                    granted += d.allowed as u64;
                }
                granted
            })
        })
        .collect();
    let granted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(granted, 150);
    assert_eq!(b.list_quotas(QuotaScope::Key, &kid).unwrap()[0].used, 150);
}

#[test]
fn key_quotas_follow_rotation_and_go_with_deletion() {
    let tm = manager_at(T0);
    let old = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            ..Default::default()
        })
        .unwrap();
    tm.set_quota(&spec(
        QuotaScope::Key,
        &old.record.id,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        3,
    ))
    .unwrap();
    let one = Amounts {
        requests: 1,
        ..Default::default()
    };
    assert!(tm.consume_quota(&old.record.id, &one).unwrap().allowed);
    let new = tm
        .rotate_key(
            &old.record.id,
            &irontoken::RotateOptions {
                overlap_seconds: 600,
                ..Default::default()
            },
        )
        .unwrap();
    // One quota for the lineage: the old key (in its overlap) and the new one share it.
    let d = tm.consume_quota(&new.record.id, &one).unwrap();
    assert_eq!((d.quotas.len(), d.quotas[0].remaining), (1, 1));
    assert_eq!(d.quotas[0].subject, new.record.id);
    assert!(tm.consume_quota(&old.record.id, &one).unwrap().allowed);
    assert!(!tm.consume_quota(&new.record.id, &one).unwrap().allowed);
    let e = tm
        .set_quota(&spec(
            QuotaScope::Key,
            &old.record.id,
            QuotaMetric::Tokens,
            QuotaPeriod::Day,
            1,
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // Deleting the key deletes its quotas (its usage history stays).
    tm.delete_key(&new.record.id, None).unwrap();
    assert!(
        tm.list_quotas(QuotaScope::Key, &new.record.id)
            .unwrap()
            .is_empty()
    );
    assert!(tm.consume_quota(&old.record.id, &one).unwrap().allowed);
}

/// The one-row consumption path (a key whose only quota is its own) follows
/// every change of which quotas apply: an owner quota, a second key quota, a
/// rotation, deletions — each consumption charges exactly what the general
/// path would, on SQLite and on PostgreSQL.
#[test]
fn one_row_quota_path_follows_every_change_of_which_quotas_apply() {
    use QuotaMetric::{Requests, Tokens};
    use QuotaPeriod::{Month, None as Always};
    use QuotaScope::{Key, Owner};
    let tm = manager_at(T0);
    let k1 = key(&tm, "solo-owner");
    let used = |scope, subject: &str| -> Vec<u64> {
        tm.list_quotas(scope, subject)
            .unwrap()
            .iter()
            .map(|q| q.used)
            .collect()
    };
    let amounts = |requests, tokens| Amounts {
        requests,
        tokens,
        ..Default::default()
    };
    tm.set_quota(&spec(Key, &k1, Requests, Month, 100)).unwrap();
    for _ in 0..3 {
        assert!(tm.consume_quota(&k1, &amounts(1, 0)).unwrap().allowed);
    }
    assert_eq!(used(Key, &k1), [3]);
    // An owner quota: charged too, and it refuses what it has no room for.
    tm.set_quota(&spec(Owner, "solo-owner", Tokens, Always, 5))
        .unwrap();
    let d = tm.consume_quota(&k1, &amounts(1, 3)).unwrap();
    assert!(d.allowed);
    assert_eq!(d.quotas.len(), 2);
    let p = tm.peek_quota(&k1, &amounts(1, 3)).unwrap();
    assert_eq!((p.allowed, p.quotas.len()), (false, 2));
    assert!(!tm.consume_quota(&k1, &amounts(1, 3)).unwrap().allowed);
    assert_eq!(
        (used(Key, &k1), used(Owner, "solo-owner")),
        (vec![4], vec![3])
    );
    tm.delete_quota(Owner, "solo-owner", Tokens, Always, None)
        .unwrap();
    assert!(tm.consume_quota(&k1, &amounts(1, 3)).unwrap().allowed);
    assert_eq!(used(Key, &k1), [5]);
    // A second quota on the key: both charged, all or nothing.
    tm.set_quota(&spec(Key, &k1, Tokens, Always, 10)).unwrap();
    assert!(tm.consume_quota(&k1, &amounts(1, 3)).unwrap().allowed);
    assert!(!tm.consume_quota(&k1, &amounts(1, 8)).unwrap().allowed);
    assert_eq!(used(Key, &k1), [6, 3]);
    tm.delete_quota(Key, &k1, Tokens, Always, None).unwrap();
    // Rotation moves the quota: the old key (in its overlap) charges it.
    let k2 = tm
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
    assert!(tm.consume_quota(&k1, &amounts(1, 0)).unwrap().allowed);
    assert!(tm.consume_quota(&k2, &amounts(1, 0)).unwrap().allowed);
    assert_eq!(used(Key, &k2), [8]);
    // The 80 % alert and the limit itself: the general path's events and
    // refusals, whichever path charged before.
    let k3 = key(&tm, "solo-owner");
    tm.set_quota(&spec(Key, &k3, Requests, Month, 10)).unwrap();
    let granted = (0..12)
        .filter(|_| tm.consume_quota(&k3, &amounts(1, 0)).unwrap().allowed)
        .count();
    assert_eq!(granted, 10);
    assert_eq!(used(Key, &k3), [10]);
    let p = tm.peek_quota(&k3, &amounts(1, 0)).unwrap();
    assert!(!p.allowed);
    assert_eq!(p.denied_by.unwrap().remaining, 0);
    assert!(tm.peek_quota(&k3, &amounts(0, 5)).unwrap().allowed);
    // Something held counts against a peek (the one-row read leaves it to
    // the general path).
    let k4 = key(&tm, "solo-owner");
    tm.set_quota(&spec(Key, &k4, Requests, Month, 10)).unwrap();
    assert!(tm.peek_quota(&k4, &amounts(10, 0)).unwrap().allowed);
    tm.reserve_quota(&k4, &amounts(4, 0), Some(60)).unwrap();
    assert!(!tm.peek_quota(&k4, &amounts(7, 0)).unwrap().allowed);
    assert!(tm.peek_quota(&k4, &amounts(6, 0)).unwrap().allowed);
    // A hold past its TTL no longer counts.
    tm.advance_clock(61).unwrap();
    assert!(tm.peek_quota(&k4, &amounts(10, 0)).unwrap().allowed);
    // A deleted key's consumption is refused, not charged.
    tm.delete_key(&k3, None).unwrap();
    assert_eq!(
        tm.consume_quota(&k3, &amounts(1, 0)).unwrap_err().kind(),
        ErrorKind::KeyNotFound
    );
}

/// SQLite schema v8's `solo` flag stays right when rows are changed by hand
/// in SQL (the triggers, not the callers, keep it): a key quota moved onto
/// a key that has one, a key linked to a successor, a key deleted with its
/// quota left behind; and it comes back when an owner quota goes.
#[test]
fn sqlite_solo_flags_follow_changes_made_by_hand() {
    use QuotaMetric::Requests;
    use QuotaPeriod::Month;
    use QuotaScope::{Key, Owner};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("solo.db");
    let tm = TokenManager::open(path.to_str().unwrap()).unwrap();
    let keys: Vec<String> = (0..4).map(|_| key(&tm, "hand")).collect();
    for k in &keys {
        tm.set_quota(&spec(Key, k, Requests, Month, 10)).unwrap();
    }
    let c = rusqlite::Connection::open(&path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let solo = |k: &str| -> Vec<i64> {
        let mut s = c
            .prepare("SELECT solo FROM quotas WHERE scope = 'key' AND subject = ?1 ORDER BY seq")
            .unwrap();
        s.query_map([k], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let wrong = || -> i64 {
        c.query_row(
            "SELECT count(*) FROM quotas q LEFT JOIN api_keys a ON a.id = q.subject \
             WHERE q.scope = 'key' AND q.solo IS NOT ( \
               a.id IS NOT NULL AND a.rotated_to IS NULL \
               AND NOT EXISTS (SELECT 1 FROM quotas x WHERE x.scope = 'key' \
                               AND x.subject = q.subject AND x.seq <> q.seq) \
               AND NOT EXISTS (SELECT 1 FROM quotas o WHERE o.scope = 'owner' \
                               AND o.subject = a.owner))",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(keys.iter().all(|k| solo(k) == [1]));
    // keys[1]'s quota (as tokens, to stay unique) moved by hand onto keys[0].
    c.execute(
        "UPDATE quotas SET subject = ?1, metric = 'tokens' WHERE scope = 'key' AND subject = ?2",
        [&keys[0], &keys[1]],
    )
    .unwrap();
    assert_eq!(solo(&keys[0]), [0, 0]);
    c.execute(
        "UPDATE api_keys SET rotated_to = ?1 WHERE id = ?2",
        [&keys[3], &keys[2]],
    )
    .unwrap();
    assert_eq!(solo(&keys[2]), [0]);
    c.execute("DELETE FROM api_keys WHERE id = ?1", [&keys[3]])
        .unwrap();
    assert_eq!(solo(&keys[3]), [0]);
    assert_eq!(wrong(), 0);
    // Both quotas of keys[0] are charged, as the general path does.
    let d = tm
        .consume_quota(
            &keys[0],
            &Amounts {
                requests: 1,
                tokens: 1,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(d.quotas.iter().map(|q| q.used).collect::<Vec<_>>(), [1, 1]);
    // An owner quota clears them all; deleting it brings the solo ones back.
    let fresh = key(&tm, "hand");
    tm.set_quota(&spec(Key, &fresh, Requests, Month, 10))
        .unwrap();
    tm.set_quota(&spec(Owner, "hand", Requests, Month, 100))
        .unwrap();
    assert_eq!(solo(&fresh), [0]);
    tm.delete_quota(Owner, "hand", Requests, Month, None)
        .unwrap();
    assert_eq!(solo(&fresh), [1]);
    assert_eq!(wrong(), 0);
}

#[test]
fn amounts_and_limits_stop_exactly_below_2_pow_61() {
    // The largest amount a quota holds is i64::MAX / 4 (2^61 - 1): sums of
    // a few never overflow a database integer. Exactly that is accepted
    // everywhere; one more is INVALID_ARGUMENT before anything is written.
    const MAX: u64 = (1 << 61) - 1;
    let tm = manager_at(T0);
    let k = key(&tm, "big");
    let invalid = |r: irontoken::Result<irontoken::Quota>| {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidArgument)
    };
    invalid(tm.set_quota(&spec(
        QuotaScope::Key,
        &k,
        QuotaMetric::Tokens,
        QuotaPeriod::Day,
        MAX + 1,
    )));
    let q = tm
        .set_quota(&spec(
            QuotaScope::Key,
            &k,
            QuotaMetric::Tokens,
            QuotaPeriod::Day,
            MAX,
        ))
        .unwrap();
    assert_eq!((q.limit, q.remaining), (MAX, MAX));
    // Consumption: MAX fits the limit exactly, MAX + 1 is refused as an argument.
    let e = tm
        .consume_quota(
            &k,
            &Amounts {
                tokens: MAX + 1,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let d = tm
        .consume_quota(
            &k,
            &Amounts {
                tokens: MAX,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(d.allowed);
    assert_eq!((d.quotas[0].used, d.quotas[0].remaining), (MAX, 0));
    // A balance refilled by MAX; credits of MAX on top saturate at MAX.
    let mut balance = spec(QuotaScope::Key, &k, QuotaMetric::Cost, QuotaPeriod::None, 0);
    for bad in [0, MAX + 1] {
        balance.refill_amount = Some(bad);
        balance.refill_period = Some(QuotaPeriod::Day);
        invalid(tm.set_quota(&balance));
    }
    balance.refill_amount = Some(MAX);
    let q = tm.set_quota(&balance).unwrap();
    assert_eq!(q.refill_amount, Some(MAX));
    for bad in [0, MAX + 1] {
        invalid(tm.add_credits(QuotaScope::Key, &k, QuotaMetric::Cost, bad));
    }
    let q = tm
        .add_credits(QuotaScope::Key, &k, QuotaMetric::Cost, MAX)
        .unwrap();
    assert_eq!(q.limit, MAX);
    let q = tm
        .add_credits(QuotaScope::Key, &k, QuotaMetric::Cost, MAX)
        .unwrap();
    assert_eq!(q.limit, MAX);
}

#[test]
fn a_quota_selector_names_a_key_balance_by_default() {
    // The bindings' JSON for delete and add-credits: scope key, period none, amount 0.
    let s: irontoken::QuotaSelector =
        serde_json::from_value(json!({"subject": "k1", "metric": "cost"})).unwrap();
    assert_eq!(
        (s.scope, s.period, s.amount, s.actor),
        (QuotaScope::Key, QuotaPeriod::None, 0, None)
    );
    let s: irontoken::QuotaSelector = serde_json::from_value(
        json!({"scope": "owner", "subject": "acme", "metric": "tokens", "period": "day", "amount": 3}),
    )
    .unwrap();
    assert_eq!(
        (s.scope, s.period, s.amount),
        (QuotaScope::Owner, QuotaPeriod::Day, 3)
    );
    assert!(
        serde_json::from_value::<irontoken::QuotaSelector>(
            json!({"subject": "k", "metric": "cost", "x": 1})
        )
        .is_err()
    );
}

#[test]
fn a_monthly_window_in_december_ends_on_the_first_of_january() {
    const DEC_15: i64 = 1_797_292_800; // 2026-12-15T00:00:00Z
    const DEC_1: i64 = 1_796_083_200;
    const JAN_1: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z
    let tm = manager_at(DEC_15);
    let k = key(&tm, "december");
    let q = tm
        .set_quota(&spec(
            QuotaScope::Key,
            &k,
            QuotaMetric::Requests,
            QuotaPeriod::Month,
            2,
        ))
        .unwrap();
    assert_eq!((q.window_start, q.reset_at), (DEC_1, Some(JAN_1)));
    let one = Amounts {
        requests: 1,
        ..Default::default()
    };
    tm.consume_quota(&k, &one).unwrap();
    tm.consume_quota(&k, &one).unwrap();
    assert!(!tm.consume_quota(&k, &one).unwrap().allowed);
    // One second before the new year: still December's window.
    tm.advance_clock(JAN_1 - 1 - DEC_15).unwrap();
    assert!(!tm.consume_quota(&k, &one).unwrap().allowed);
    tm.advance_clock(1).unwrap();
    let d = tm.consume_quota(&k, &one).unwrap();
    assert!(d.allowed);
    assert_eq!(d.quotas[0].window_start, JAN_1);
    assert_eq!(d.quotas[0].reset_at, Some(1_801_440_000)); // 2027-02-01
}
