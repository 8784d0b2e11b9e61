//! Usage records (idempotent, summarised, exported), stats, rate-limit changes
//! across managers, and hostile lookups and filters on every store.

use irontoken::{
    Amounts, ErrorKind, NewKey, QuotaMetric, QuotaPeriod, QuotaScope, TokenManager, UsageQuery,
    UsageReport, VerifyOptions, VerifyReason, ratelimit::Limit,
};
use serde_json::json;

mod common;
use common::fixtures::*;
use irontoken::{MAX_USAGE_NUMBER, Options};
use std::time::Duration;

#[test]
fn usage_records_are_idempotent_and_summarised() {
    let tm = manager_at(T0);
    let a = key(&tm, "alice");
    let b = key(&tm, "bob");
    let report = |id: &str, k: &str, model: &str, p: u64, c: u64, cost: u64| UsageReport {
        request_id: Some(id.into()),
        key_id: Some(k.into()),
        model: Some(model.into()),
        prompt_tokens: p,
        completion_tokens: c,
        cost_micros: cost,
        ..Default::default()
    };
    assert!(
        !tm.record_usage(&report("r1", &a, "gpt", 10, 5, 100))
            .unwrap()
            .duplicate
    );
    // A retried report (buffered, then stored) counts once.
    assert!(
        tm.record_usage(&report("r1", &a, "gpt", 10, 5, 100))
            .unwrap()
            .duplicate
    );
    tm.flush().unwrap();
    assert!(
        tm.record_usage(&report("r1", &a, "gpt", 10, 5, 100))
            .unwrap()
            .duplicate
    );
    tm.record_usage(&report("r2", &a, "claude", 1, 2, 30))
        .unwrap();
    tm.advance_clock(86_400).unwrap();
    tm.record_usage(&report("r3", &b, "gpt", 100, 50, 1000))
        .unwrap();
    let total = tm.usage_summary(&UsageQuery::default()).unwrap();
    assert_eq!(total.len(), 1);
    assert_eq!(
        (
            total[0].records,
            total[0].requests,
            total[0].total_tokens,
            total[0].cost_micros
        ),
        (3, 3, 168, 1130)
    );
    let by_owner_day = tm
        .usage_summary(&UsageQuery {
            group_by: vec!["owner".into(), "day".into()],
            ..Default::default()
        })
        .unwrap();
    let rows: Vec<(String, String, u128)> = by_owner_day
        .iter()
        .map(|t| {
            (
                t.owner.clone().unwrap(),
                t.day.clone().unwrap(),
                t.cost_micros,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("alice".into(), "2026-02-01".into(), 130),
            ("bob".into(), "2026-02-02".into(), 1000)
        ]
    );
    let by_model = tm
        .usage_summary(&UsageQuery {
            group_by: vec!["model".into()],
            since: Some(T0),
            until: Some(T0 + 86_400),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_model.len(), 2);
    let export = tm
        .export_usage(&UsageQuery {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(export.items.len(), 2);
    assert_eq!(export.items[0].request_id, "r1");
    assert_eq!(export.items[0].owner.as_deref(), Some("alice"));
    let more = tm
        .export_usage(&UsageQuery {
            cursor: export.next_cursor,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(more.items.len(), 1);
    assert!(
        tm.usage_summary(&UsageQuery {
            group_by: vec!["color".into()],
            ..Default::default()
        })
        .is_err()
    );
    let e = tm.record_usage(&UsageReport::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let metrics = tm.metrics();
    assert!(
        metrics.contains("irontoken_usage_cost_micros_total 1130"),
        "{metrics}"
    );
    assert!(metrics.contains("irontoken_usage_tokens_total{kind=\"prompt\"} 111"));
}

#[test]
fn rate_limit_changes_reach_other_managers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rl.db");
    let path = path.to_str().unwrap();
    let a = TokenManager::open(path).unwrap();
    let b = TokenManager::open(path).unwrap();
    let created = a
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    let opts = VerifyOptions {
        rate_limit: true,
        ..Default::default()
    };
    // b caches the record (no limits) ...
    assert!(b.verify_key_with(&created.key, &opts).unwrap().valid);
    // ... a sets a limit of one per hour; b's next verification applies it.
    a.update_key(
        &created.record.id,
        &irontoken::KeyUpdate {
            rate_limits: Some(vec![Limit::new("per_hour", 1, 3_600_000, 1).unwrap()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(b.verify_key_with(&created.key, &opts).unwrap().valid);
    assert_eq!(
        b.verify_key_with(&created.key, &opts).unwrap().reason,
        VerifyReason::RateLimited
    );
}

/// A usage record's `at` is a time the summaries can show (0 to the end of
/// 9999): on PostgreSQL one record at 2^63-1 made every `group_by=["day"]`
/// summary a STORAGE error ("timestamp out of range").
#[test]
fn usage_times_stay_within_what_a_summary_can_show() {
    let tm = manager_at(T0);
    let k = key(&tm, "times");
    let report = |id: &str, at| UsageReport {
        request_id: Some(id.into()),
        key_id: Some(k.clone()),
        prompt_tokens: 1,
        at: Some(at),
        ..Default::default()
    };
    for (i, at) in [-1, i64::MIN, irontoken::MAX_TIME + 1, i64::MAX]
        .into_iter()
        .enumerate()
    {
        let e = tm
            .record_usage(&report(&format!("bad{i}"), at))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{at}: {e}");
        assert!(e.message().contains("at must be"), "{e}");
    }
    tm.record_usage(&report("first", 0)).unwrap();
    tm.record_usage(&report("last", irontoken::MAX_TIME))
        .unwrap();
    let days: Vec<(String, u64)> = tm
        .usage_summary(&UsageQuery {
            group_by: vec!["day".into()],
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|t| (t.day.unwrap(), t.records))
        .collect();
    assert_eq!(
        days,
        vec![("1970-01-01".into(), 1), ("9999-12-31".into(), 1)]
    );
}

/// A NUL (or any control character) in a lookup or a filter: PostgreSQL
/// refuses NUL in text parameters, which made `get_key`, `list_keys`,
/// `list_audit` and `usage_summary` a STORAGE error there (empty answers or
/// NOT_FOUND on SQLite). Now INVALID_ARGUMENT on both stores, and nothing
/// else is ever STORAGE for it; metadata keeps a NUL exactly (JSON escapes it).
#[test]
fn nul_in_lookups_and_filters_is_bad_input_on_every_store() {
    use irontoken::{AuditFilter, KeyFilter, SessionFilter};
    let tm = manager_at(T0);
    let nul = "a\0b".to_string();
    let invalid = |r: irontoken::Result<()>, what: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
    };
    invalid(tm.get_key(&nul).map(drop), "get_key");
    invalid(tm.revoke_key(&nul, None, None).map(drop), "revoke_key");
    invalid(
        tm.list_keys(&KeyFilter {
            owner: Some(nul.clone()),
            ..Default::default()
        })
        .map(drop),
        "list_keys",
    );
    invalid(
        tm.list_audit(&AuditFilter {
            actor: Some(nul.clone()),
            ..Default::default()
        })
        .map(drop),
        "list_audit",
    );
    invalid(
        tm.usage_summary(&UsageQuery {
            model: Some(nul.clone()),
            ..Default::default()
        })
        .map(drop),
        "usage_summary",
    );
    invalid(
        tm.export_usage(&UsageQuery {
            owner: Some(nul.clone()),
            ..Default::default()
        })
        .map(drop),
        "export_usage",
    );
    invalid(
        tm.list_sessions(&SessionFilter {
            owner: Some(nul.clone()),
            ..Default::default()
        })
        .map(drop),
        "list_sessions",
    );
    // Lookups with no check of their own: never STORAGE.
    for r in [
        tm.get_budget(&nul).map(drop),
        tm.release_reservation(&format!("{nul:\0<36}")).map(drop),
    ] {
        let e = r.unwrap_err();
        assert_ne!(e.kind(), ErrorKind::Storage, "{e}");
    }
    let meta = json!({"k\u{0}": "v\u{0}w"}).as_object().unwrap().clone();
    let created = tm
        .create_key(&NewKey {
            owner: "nul".into(),
            metadata: Some(meta.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(tm.get_key(&created.record.id).unwrap().metadata, meta);
}

/// `stats`: keys by state and owner, the window's use, the top keys and
/// the most spent quotas, on the store under test; a rolled-over window
/// counts nothing.
#[test]
fn stats_count_keys_use_and_quota_burn() {
    let tm = manager_at(T0 + 3600);
    let made: Vec<_> = ["alice", "alice", "alice", "bob"]
        .iter()
        .map(|o| {
            tm.create_key(&NewKey {
                owner: (*o).into(),
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    tm.revoke_key(&made[1].record.id, None, None).unwrap();
    tm.disable_key(&made[2].record.id, None).unwrap();
    let k0 = made[0].record.id.clone();
    tm.set_quota(&spec(
        QuotaScope::Key,
        &k0,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        4,
    ))
    .unwrap();
    for _ in 0..3 {
        assert!(
            tm.consume_quota(
                &k0,
                &Amounts {
                    requests: 1,
                    ..Default::default()
                }
            )
            .unwrap()
            .allowed
        );
    }
    tm.record_usage(&UsageReport {
        key_id: Some(made[3].record.id.clone()),
        model: Some("m".into()),
        prompt_tokens: 5,
        ..Default::default()
    })
    .unwrap();
    tm.flush().unwrap();
    let s = tm.stats(3600, 5).unwrap();
    assert_eq!(
        (
            s.keys.total,
            s.keys.active,
            s.keys.disabled,
            s.keys.revoked,
            s.keys.expired
        ),
        (4, 2, 1, 1, 0)
    );
    assert_eq!(s.owners[0].owner, "alice");
    assert_eq!(s.owners[0].keys.total, 3);
    assert_eq!(s.owners[1].owner, "bob");
    assert_eq!(s.usage.prompt_tokens, 5);
    assert_eq!(
        s.top_keys[0].key_id.as_deref(),
        Some(made[3].record.id.as_str())
    );
    assert_eq!(s.quotas.len(), 1);
    assert_eq!(s.quotas[0].quota.subject, k0);
    assert!((s.quotas[0].burn - 0.75).abs() < 1e-9);
    assert_eq!(s.at - s.since, 3600);
    // The next day: the quota's window rolled over, and the use is outside the window.
    tm.advance_clock(86_400).unwrap();
    let later = tm.stats(3600, 5).unwrap();
    assert!(later.quotas.is_empty());
    assert_eq!(later.usage.prompt_tokens, 0);
    for (window, top) in [(0, 5), (3600, 0), (3600, 101), (367 * 86_400, 5)] {
        assert_eq!(
            tm.stats(window, top).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
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

/// Hourly buckets (UTC) for dashboards, alone and with another grouping.
#[test]
fn usage_summaries_by_hour() {
    let tm = manager_at(T0); // 2026-02-01T00:00:00Z
    let a = key(&tm, "alice");
    let report = |id: &str, at: i64, model: &str, tokens: u64| UsageReport {
        request_id: Some(id.into()),
        key_id: Some(a.clone()),
        model: Some(model.into()),
        prompt_tokens: tokens,
        at: Some(at),
        ..Default::default()
    };
    for (id, at, model, tokens) in [
        ("h1", T0, "gpt", 10),
        ("h2", T0 + 3599, "claude", 20),
        ("h3", T0 + 3600, "gpt", 40),
        ("h4", T0 + 7 * 3600 + 5, "gpt", 80),
    ] {
        tm.record_usage(&report(id, at, model, tokens)).unwrap();
    }
    let rows = tm
        .usage_summary(&UsageQuery {
            group_by: vec!["hour".into()],
            ..Default::default()
        })
        .unwrap();
    let got: Vec<(Option<&str>, u128)> = rows
        .iter()
        .map(|r| (r.hour.as_deref(), r.prompt_tokens))
        .collect();
    assert_eq!(
        got,
        [
            (Some("2026-02-01T00:00:00Z"), 30),
            (Some("2026-02-01T01:00:00Z"), 40),
            (Some("2026-02-01T07:00:00Z"), 80),
        ]
    );
    let rows = tm
        .usage_summary(&UsageQuery {
            group_by: vec!["hour".into(), "model".into()],
            since: Some(T0),
            until: Some(T0 + 3600),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].hour.as_deref(), rows[0].model.as_deref()),
        (Some("2026-02-01T00:00:00Z"), Some("claude"))
    );
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(json["hour"], "2026-02-01T00:00:00Z");
    assert!(json.get("day").is_none());
}
