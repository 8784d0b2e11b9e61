//! LLM spend controls on a key: tokens-per-minute limits counted with the
//! request-per-minute ones (all-or-nothing, settled after the call), a
//! model allow-list and a per-request token ceiling — refusals that
//! consume nothing — on every rate-limit store, exact across managers.

use irontoken::ratelimit::{Limit, RateLimitStore};
use irontoken::{
    Amounts, KeyUpdate, NewKey, Options, QuotaMetric, QuotaPeriod, QuotaScope, TokenManager,
    VerifyOptions, VerifyReason,
};

mod common;

/// 1000 tokens and 5 requests a minute.
fn llm_limits() -> Vec<Limit> {
    vec![
        Limit::tokens("tpm", 1000, 60_000, 1000).unwrap(),
        Limit::new("rpm", 5, 60_000, 5).unwrap(),
    ]
}

fn llm_key(tm: &TokenManager) -> (String, String) {
    let c = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            rate_limits: llm_limits(),
            models: vec!["gpt-4o*".into(), "claude-*".into()],
            max_tokens_per_request: Some(800),
            ..Default::default()
        })
        .unwrap();
    (c.key.to_string(), c.record.id)
}

fn call(tokens: u64, model: &str) -> VerifyOptions {
    VerifyOptions {
        rate_limit: true,
        tokens: Some(tokens),
        model: Some(model.into()),
        ..Default::default()
    }
}

fn remaining(v: &irontoken::Verification) -> (u64, u64) {
    let d = v.rate_limit.as_ref().unwrap();
    (d.limits[0].remaining, d.limits[1].remaining)
}

#[test]
fn model_policy_refuses_and_consumes_nothing() {
    let m = common::fixtures::manager();
    let tm: &TokenManager = &m;
    let (key, id) = llm_key(tm);
    tm.set_quota(&common::fixtures::spec(
        QuotaScope::Key,
        &id,
        QuotaMetric::Requests,
        QuotaPeriod::Day,
        100,
    ))
    .unwrap();
    let with_quota = |mut o: VerifyOptions| {
        o.quota = Some(Amounts {
            requests: 1,
            ..Default::default()
        });
        o
    };
    let r = tm.get_key(&id).unwrap();
    assert_eq!(r.models, ["gpt-4o*", "claude-*"]);
    assert_eq!(r.max_tokens_per_request, Some(800));

    let v = tm
        .verify_key_with(&key, &with_quota(call(100, "gpt-4o-mini")))
        .unwrap();
    assert_eq!(v.reason, VerifyReason::Valid);
    assert_eq!(remaining(&v), (900, 4));
    assert_eq!(v.quota.as_ref().unwrap().quotas[0].used, 1);

    // Another model, too many tokens at once: refused, nothing taken.
    for (o, want) in [
        (call(100, "gpt-3.5-turbo"), VerifyReason::ModelNotAllowed),
        (call(100, "GPT-4o"), VerifyReason::ModelNotAllowed),
        (call(801, "claude-3-opus"), VerifyReason::RequestTooLarge),
    ] {
        let v = tm.verify_key_with(&key, &with_quota(o)).unwrap();
        assert_eq!(v.reason, want);
        assert!(!v.valid && v.rate_limit.is_none() && v.quota.is_none());
        assert_eq!(v.record.as_ref().unwrap().id, id, "the record comes back");
    }
    let v = tm
        .verify_key_with(&key, &with_quota(call(100, "claude-3-opus")))
        .unwrap();
    assert_eq!(v.reason, VerifyReason::Valid);
    assert_eq!(
        remaining(&v),
        (800, 3),
        "the refusals took no tokens or requests"
    );
    assert_eq!(v.quota.as_ref().unwrap().quotas[0].used, 2, "nor quota");

    // Without a model the allow-list does not apply (a non-LLM route).
    let plain = VerifyOptions::default();
    assert!(tm.verify_key_with(&key, &plain).unwrap().valid);
    // The refusals are audited with their reason.
    tm.flush().unwrap();
    let audit = tm
        .list_audit(&irontoken::AuditFilter {
            key_id: Some(id.clone()),
            outcome: Some("MODEL_NOT_ALLOWED".into()),
            ..Default::default()
        })
        .unwrap();
    // (Repeated refusals of one key for one reason are one entry with a count.)
    assert_eq!(audit.items.len(), 1);
    assert_eq!(audit.items[0].detail.as_ref().unwrap()["count"], 2);
    // Bad input is an error, not a refusal.
    for bad in [
        VerifyOptions {
            model: Some("".into()),
            ..Default::default()
        },
        VerifyOptions {
            model: Some("a b".into()),
            ..Default::default()
        },
        VerifyOptions {
            tokens: Some(1 << 53),
            ..Default::default()
        },
    ] {
        let e = tm.verify_key_with(&key, &bad).unwrap_err();
        assert_eq!(e.kind(), irontoken::ErrorKind::InvalidArgument);
    }
}

#[test]
fn tokens_per_minute_with_requests_per_minute_and_settlement() {
    let m = common::fixtures::manager();
    let tm: &TokenManager = &m;
    let (key, id) = llm_key(tm);
    assert_eq!(
        remaining(&tm.verify_key_with(&key, &call(700, "gpt-4o")).unwrap()),
        (300, 4)
    );
    // 400 more do not fit: refused as RATE_LIMITED, all-or-nothing.
    let v = tm.verify_key_with(&key, &call(400, "gpt-4o")).unwrap();
    assert_eq!(v.reason, VerifyReason::RateLimited);
    assert_eq!(v.rate_limit.as_ref().unwrap().retry_after_ms, 6000);
    assert_eq!(
        remaining(&v),
        (300, 4),
        "the refused request took no request slot"
    );
    // The 700 was an estimate; the call used 200: 500 come back.
    tm.settle_tokens(&id, 700, 200).unwrap();
    assert_eq!(
        remaining(&tm.verify_key_with(&key, &call(400, "gpt-4o")).unwrap()),
        (400, 3)
    );
    // An under-estimate is taken afterwards: the bucket empties...
    tm.settle_tokens(&id, 400, 5000).unwrap();
    let v = tm.verify_key_with(&key, &call(0, "gpt-4o")).unwrap();
    assert_eq!(
        v.reason,
        VerifyReason::RateLimited,
        "an empty bucket refuses even 0 tokens"
    );
    // ...and refills at 1000 a minute.
    tm.advance_clock(30).unwrap();
    assert_eq!(
        remaining(&tm.verify_key_with(&key, &call(500, "gpt-4o")).unwrap()).0,
        0
    );
    // Settling a key without limits in tokens, or an unknown key.
    let other = common::fixtures::key(tm, "acme");
    tm.settle_tokens(&other, 10, 20).unwrap();
    assert_eq!(
        tm.settle_tokens("no-such-key", 1, 2).unwrap_err().kind(),
        irontoken::ErrorKind::KeyNotFound
    );
}

#[test]
fn a_request_larger_than_the_burst_is_too_large() {
    let m = common::fixtures::manager();
    let tm: &TokenManager = &m;
    let c = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            rate_limits: vec![Limit::tokens("tpm", 1000, 60_000, 500).unwrap()],
            ..Default::default()
        })
        .unwrap();
    let v = tm.verify_key_with(&c.key, &call(501, "any")).unwrap();
    assert_eq!(
        v.reason,
        VerifyReason::RequestTooLarge,
        "no wait would admit it"
    );
    // Without rate_limit the limits do not apply, nor does their burst.
    let mut o = call(501, "any");
    o.rate_limit = false;
    assert!(tm.verify_key_with(&c.key, &o).unwrap().valid);
}

/// What manager `tm` answers for `model` and `tokens` (no rate limit), once
/// it has seen a change another manager made: at its next verification on
/// SQLite (the state epoch), within the staleness bound (1 s) on
/// PostgreSQL (the change notifications).
fn settles_to(tm: &TokenManager, key: &str, model: &str, tokens: u64, want: VerifyReason) {
    let mut o = call(tokens, model);
    o.rate_limit = false;
    let deadline = std::time::Instant::now()
        + if common::on_postgres() {
            std::time::Duration::from_secs(3)
        } else {
            std::time::Duration::ZERO
        };
    loop {
        let got = tm.verify_key_with(key, &o).unwrap().reason;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{got:?}, want {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_policy_changes_with_update_and_survives_rotation() {
    let shared = common::shared_store();
    let a = TokenManager::open(&shared.url).unwrap();
    let b = TokenManager::open(&shared.url).unwrap();
    let (key, id) = llm_key(&a);
    assert!(b.verify_key_with(&key, &call(10, "gpt-4o")).unwrap().valid);
    a.update_key(
        &id,
        &KeyUpdate {
            models: Some(vec!["claude-*".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    // The other manager applies it (see settles_to).
    settles_to(&b, &key, "gpt-4o", 10, VerifyReason::ModelNotAllowed);
    let r = a
        .update_key(
            &id,
            &KeyUpdate {
                max_tokens_per_request: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (r.models.as_slice(), r.max_tokens_per_request),
        (&["claude-*".to_string()][..], None)
    );
    settles_to(&b, &key, "claude-x", 900, VerifyReason::Valid);
    let rotated = a.rotate_key(&id, &Default::default()).unwrap();
    assert_eq!(rotated.record.models, ["claude-*"]);
    settles_to(&b, &rotated.key, "gpt-4o", 1, VerifyReason::ModelNotAllowed);
    // A bad policy is refused whole.
    for u in [
        KeyUpdate {
            models: Some(vec!["".into()]),
            ..Default::default()
        },
        KeyUpdate {
            max_tokens_per_request: Some(Some(0)),
            ..Default::default()
        },
    ] {
        assert_eq!(
            a.update_key(&rotated.record.id, &u).unwrap_err().kind(),
            irontoken::ErrorKind::InvalidArgument
        );
    }
    assert_eq!(a.get_key(&rotated.record.id).unwrap().models, ["claude-*"]);
}

/// Four managers (standing in for processes) spend one key's tokens per
/// minute at once: exactly the limit is admitted, on the store under test.
fn four_managers_on_one_tpm_limit(url: &str, store: RateLimitStore) {
    let open = || {
        let mut o = Options::default();
        o.rate_limit_store = store.clone();
        TokenManager::open_with(url, o).unwrap()
    };
    let tm = open();
    let c = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            // 10 000 tokens a minute; nothing refills meaningfully during the test.
            rate_limits: vec![Limit::tokens("tpm", 10_000, 3_600_000, 10_000).unwrap()],
            ..Default::default()
        })
        .unwrap();
    let key = c.key.to_string();
    let admitted: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (open, key) = (&open, &key);
                s.spawn(move || {
                    let tm = open();
                    let mut spent = 0;
                    for _ in 0..40 {
                        let v = tm.verify_key_with(key, &call(100, "m")).unwrap();
                        match v.reason {
                            VerifyReason::Valid => spent += 100,
                            VerifyReason::RateLimited => {}
                            other => panic!("{other:?}"),
                        }
                    }
                    spent
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // 160 calls of 100 tokens asked; the limit admits exactly 100 of them
    // (plus what refilled meanwhile: at most a few tokens an hour-long period).
    assert!((10_000..=10_100).contains(&admitted), "{admitted}");
}

#[test]
fn four_managers_on_one_tpm_limit_in_the_store() {
    let shared = common::shared_store();
    four_managers_on_one_tpm_limit(&shared.url, RateLimitStore::Store);
}

#[test]
fn four_managers_on_one_tpm_limit_on_redis() {
    let Some(base) = common::redis_url() else {
        return;
    };
    let scratch = common::RedisScratch::new(&base, "tpm");
    let shared = common::shared_store();
    four_managers_on_one_tpm_limit(&shared.url, RateLimitStore::parse(&scratch.url()).unwrap());
}

#[test]
fn settlement_on_redis() {
    let Some(base) = common::redis_url() else {
        return;
    };
    let scratch = common::RedisScratch::new(&base, "settle");
    let mut o = Options::default();
    o.rate_limit_store = RateLimitStore::parse(&scratch.url()).unwrap();
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let (key, id) = llm_key(&tm);
    assert_eq!(
        remaining(&tm.verify_key_with(&key, &call(800, "gpt-4o")).unwrap()),
        (200, 4)
    );
    tm.settle_tokens(&id, 800, 100).unwrap();
    let v = tm.verify_key_with(&key, &call(0, "gpt-4o")).unwrap();
    // 900 back (Redis's clock moved a few ms meanwhile: 0 or 1 token more).
    assert!((900..=901).contains(&v.rate_limit.as_ref().unwrap().limits[0].remaining));
    tm.settle_tokens(&id, 0, 100_000).unwrap();
    assert_eq!(
        tm.verify_key_with(&key, &call(1, "gpt-4o")).unwrap().reason,
        VerifyReason::RateLimited
    );
}

/// An owner's policy holds every key of the owner to it as well as to the
/// key's own: both allow-lists, the lower ceiling; set, changed and removed
/// by another manager, applied at the next verification; audited.
#[test]
fn an_owner_policy_applies_to_every_key_of_the_owner() {
    use irontoken::OwnerPolicySpec;
    let shared = common::shared_store();
    let a = TokenManager::open(&shared.url).unwrap();
    let b = TokenManager::open(&shared.url).unwrap();
    let (key, _) = llm_key(&a); // gpt-4o* and claude-*, 800 tokens at most
    let plain = a
        .create_key(&NewKey {
            owner: "acme".into(),
            ..Default::default()
        })
        .unwrap()
        .key
        .to_string();
    let other_owner = a
        .create_key(&NewKey {
            owner: "globex".into(),
            ..Default::default()
        })
        .unwrap()
        .key
        .to_string();
    let reason = |tm: &TokenManager, k: &str, model: &str, tokens: u64| {
        let mut o = call(tokens, model);
        o.rate_limit = false;
        tm.verify_key_with(k, &o).unwrap().reason
    };
    assert_eq!(reason(&b, &plain, "o3", 5000), VerifyReason::Valid);
    let p = a
        .set_owner_policy(&OwnerPolicySpec {
            owner: "acme".into(),
            models: vec!["claude-*".into(), "o3*".into()],
            max_tokens_per_request: Some(600),
            actor: Some("ops".into()),
        })
        .unwrap();
    assert_eq!(p.models, ["claude-*", "o3*"]);
    assert_eq!(b.get_owner_policy("acme").unwrap(), Some(p));
    // The key allows gpt-4o*, the owner does not: refused.
    assert_eq!(
        reason(&b, &key, "gpt-4o", 10),
        VerifyReason::ModelNotAllowed
    );
    // Both allow claude-*: the lower ceiling (the owner's 600) applies.
    assert_eq!(reason(&b, &key, "claude-3", 600), VerifyReason::Valid);
    assert_eq!(
        reason(&b, &key, "claude-3", 601),
        VerifyReason::RequestTooLarge
    );
    // A key without a policy of its own gets the owner's.
    assert_eq!(reason(&b, &plain, "o3-mini", 10), VerifyReason::Valid);
    assert_eq!(
        reason(&b, &plain, "gpt-4o", 10),
        VerifyReason::ModelNotAllowed
    );
    // Another owner's keys are untouched; a call naming no model is too.
    assert_eq!(reason(&b, &other_owner, "gpt-4o", 10), VerifyReason::Valid);
    assert!(b.verify_key(&plain, &[]).unwrap().valid);
    // Removed: the keys' own policies alone again.
    assert!(a.delete_owner_policy("acme", Some("ops")).unwrap());
    assert!(!a.delete_owner_policy("acme", None).unwrap());
    assert_eq!(b.get_owner_policy("acme").unwrap(), None);
    assert_eq!(reason(&b, &key, "gpt-4o", 10), VerifyReason::Valid);
    // Audited; bad input refused.
    let audit = a
        .list_audit(&irontoken::AuditFilter {
            actor: Some("ops".into()),
            ..Default::default()
        })
        .unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["owner_policy.delete", "owner_policy.set"]);
    for bad in [
        OwnerPolicySpec {
            owner: "".into(),
            ..Default::default()
        },
        OwnerPolicySpec {
            owner: "acme".into(),
            models: vec!["a b".into()],
            ..Default::default()
        },
        OwnerPolicySpec {
            owner: "acme".into(),
            max_tokens_per_request: Some(0),
            ..Default::default()
        },
    ] {
        assert_eq!(
            a.set_owner_policy(&bad).unwrap_err().kind(),
            irontoken::ErrorKind::InvalidArgument
        );
    }
}
