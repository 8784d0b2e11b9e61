//! Quota reservations: holds and their TTLs, settling above the estimate,
//! releasing, and holds past their TTL on peeks and consumptions.

use common::fixtures::*;
use irontoken::{Amounts, ErrorKind, Options, QuotaMetric, QuotaPeriod, QuotaScope, TokenManager};
use serde_json::json;

mod common;

#[test]
fn reservation_ttls_are_one_second_to_seven_days() {
    let tm = manager_at(T0);
    let k = key(&tm, "ttl");
    let one = Amounts {
        requests: 1,
        ..Default::default()
    };
    for bad in [0, -1, 7 * 86_400 + 1] {
        let e = tm.reserve_quota(&k, &one, Some(bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        assert!(e.message().contains("1-604800"), "{e}");
    }
    for (ttl, expires) in [
        (None, T0 + 300),
        (Some(1), T0 + 1),
        (Some(7 * 86_400), T0 + 7 * 86_400),
    ] {
        let r = tm.reserve_quota(&k, &one, ttl).unwrap();
        assert_eq!(r.reservation.unwrap().expires_at, expires, "{ttl:?}");
    }
}

/// Mutants shard 30: the count `expire_reservations` answers, closing a hold
/// whose TTL passed with nothing having expired it yet, and the key id of
/// the quota audit entries were each replaceable without a failing test.
#[test]
fn holds_past_their_ttl_close_once_and_are_counted() {
    let tm = manager_at(T0);
    let k = key_with_daily_requests(&tm, "holds", 10);
    let amounts = requests;
    let hold = |n, ttl| {
        tm.reserve_quota(&k, &amounts(n), Some(ttl))
            .unwrap()
            .reservation
            .unwrap()
            .id
    };
    let used_and_reserved = |tm: &TokenManager| {
        let q = tm.list_quotas(QuotaScope::Key, &k).unwrap().remove(0);
        (q.used, q.reserved)
    };
    // Counted: two holds past their TTL, one not yet.
    hold(2, 10);
    hold(3, 10);
    let live = hold(1, 3600);
    assert_eq!(tm.expire_reservations().unwrap(), 0);
    tm.advance_clock(11).unwrap();
    assert_eq!(tm.expire_reservations().unwrap(), 2);
    assert_eq!(tm.expire_reservations().unwrap(), 0);
    assert_eq!(used_and_reserved(&tm), (0, 1));
    tm.release_reservation(&live).unwrap();
    assert_eq!(used_and_reserved(&tm), (0, 0));
    // Closed past the TTL with no sweep in between: settling charges the
    // actual amount once and gives the hold back once; releasing gives it
    // back once. Neither is an error; closing the settled one again is
    // CONFLICT, releasing the expired one again changes nothing.
    let settled = hold(4, 10);
    let released = hold(5, 10);
    tm.advance_clock(11).unwrap();
    let d = tm.settle_reservation(&settled, &amounts(3)).unwrap();
    assert!(d.allowed);
    assert_eq!(used_and_reserved(&tm), (3, 0));
    tm.release_reservation(&released).unwrap();
    assert_eq!(used_and_reserved(&tm), (3, 0));
    let e = tm.release_reservation(&settled).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let e = tm.settle_reservation(&settled, &amounts(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    tm.release_reservation(&released).unwrap();
    assert_eq!(used_and_reserved(&tm), (3, 0));
    // The audit entries of quota changes name the key for a key quota only.
    let owner_quota = spec(
        QuotaScope::Owner,
        "holds",
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        5,
    );
    tm.set_quota(&owner_quota).unwrap();
    tm.delete_quota(
        QuotaScope::Owner,
        "holds",
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        None,
    )
    .unwrap();
    tm.delete_quota(
        QuotaScope::Key,
        &k,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        None,
    )
    .unwrap();
    let entries = |action: &str| {
        let page = tm
            .list_audit(&irontoken::AuditFilter {
                action: Some(action.into()),
                ..Default::default()
            })
            .unwrap();
        let mut v: Vec<_> = page
            .items
            .into_iter()
            .map(|e| (e.detail.unwrap()["scope"].clone(), e.key_id))
            .collect();
        v.sort_by_key(|(s, _)| s.to_string());
        v
    };
    for action in ["quota.set", "quota.delete"] {
        assert_eq!(
            entries(action),
            vec![(json!("key"), Some(k.clone())), (json!("owner"), None)],
            "{action}"
        );
    }
}

/// Mutants shard 31: a peek that found a hold past its TTL released it (a
/// write from a read), and the key id of a quota alert was replaceable.
#[test]
fn a_peek_releases_nothing_and_alerts_name_only_key_quotas() {
    let tm = manager_at(T0);
    let k = key_with_daily_requests(&tm, "peeker", 10);
    let amounts = requests;
    tm.reserve_quota(&k, &amounts(4), Some(10)).unwrap();
    tm.advance_clock(11).unwrap();
    let reserved = |tm: &TokenManager| tm.list_quotas(QuotaScope::Key, &k).unwrap()[0].reserved;
    // The peek does not count the lapsed hold, and leaves it to the sweep.
    let d = tm.peek_quota(&k, &amounts(10)).unwrap();
    assert!(d.allowed);
    assert_eq!(d.quotas[0].remaining, 10);
    assert_eq!(reserved(&tm), 4, "a peek wrote");
    assert_eq!(tm.expire_reservations().unwrap(), 1);
    assert_eq!(reserved(&tm), 0);
    // Alerts: 80 % of a key quota names the key; of an owner quota, no key.
    tm.consume_quota(&k, &amounts(8)).unwrap();
    tm.set_quota(&spec(
        QuotaScope::Owner,
        "peeker",
        QuotaMetric::Tokens,
        QuotaPeriod::Day,
        10,
    ))
    .unwrap();
    tm.consume_quota(
        &k,
        &Amounts {
            tokens: 9,
            ..Default::default()
        },
    )
    .unwrap();
    let mut seen: Vec<_> = tm
        .drain_events(10)
        .into_iter()
        .filter(|e| e.kind == "quota_threshold")
        .map(|e| (e.detail["scope"].as_str().unwrap().to_string(), e.key_id))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![("key".into(), Some(k.clone())), ("owner".into(), None)]
    );
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

#[test]
fn a_refill_tops_up_to_what_is_held_plus_the_amount() {
    // A balance refilled by 10 a day: at the refill, the limit becomes what
    // is used and held so far plus 10, so 10 are free again whatever is
    // still reserved.
    let tm = manager_at(T0);
    let k = key(&tm, "refill");
    let mut s = spec(
        QuotaScope::Key,
        &k,
        QuotaMetric::Tokens,
        QuotaPeriod::None,
        10,
    );
    s.refill_amount = Some(10);
    s.refill_period = Some(QuotaPeriod::Day);
    tm.set_quota(&s).unwrap();
    let tokens = |n| Amounts {
        tokens: n,
        ..Default::default()
    };
    assert!(tm.consume_quota(&k, &tokens(3)).unwrap().allowed);
    let held = tm.reserve_quota(&k, &tokens(2), Some(7 * 86_400)).unwrap();
    assert!(held.decision.allowed);
    tm.advance_clock(86_400).unwrap();
    let q = &tm.peek_quota(&k, &tokens(0)).unwrap().quotas[0];
    assert_eq!((q.used, q.reserved, q.limit, q.remaining), (3, 2, 15, 10));
    assert_eq!(q.window_start, T0 + 86_400);
}
