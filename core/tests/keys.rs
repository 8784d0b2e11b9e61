//! Lifecycle, vectors, storage and concurrency tests of the API-key core.

use irontoken::{
    AuditFilter, ErrorKind, KeyFilter, KeyStatus, KeyUpdate, NewKey, RotateOptions, TokenManager,
    VerifyReason,
};
use serde_json::{Value, json};

const T0: i64 = KEYS_T0;

mod common;
use common::fixtures::*;

#[test]
fn lifecycle() {
    let tm = manager();
    let c = tm.create_key(&new_key("alice")).unwrap();
    assert!(c.key.starts_with("itk_"));
    assert!(c.key.len() >= 32);
    let id = c.record.id.clone();
    assert_eq!(c.record.status, KeyStatus::Active);
    assert_eq!(c.record.version, 1);

    let v = tm.verify_key(&c.key, &[]).unwrap();
    assert!(v.valid);
    assert_eq!(v.reason, VerifyReason::Valid);
    let k = v.record.unwrap();
    assert_eq!((k.id.as_str(), k.owner.as_str()), (id.as_str(), "alice"));
    assert_eq!(k.metadata["team"], "core");

    tm.disable_key(&id, Some("ops")).unwrap();
    assert_eq!(
        tm.verify_key(&c.key, &[]).unwrap().reason,
        VerifyReason::Disabled
    );
    assert_eq!(tm.get_key(&id).unwrap().status, KeyStatus::Disabled);
    tm.enable_key(&id, Some("ops")).unwrap();
    assert!(tm.verify_key(&c.key, &[]).unwrap().valid);

    let r = tm.revoke_key(&id, Some("leaked"), Some("ops")).unwrap();
    assert_eq!(r.status, KeyStatus::Revoked);
    assert_eq!(r.revoked_reason.as_deref(), Some("leaked"));
    let v = tm.verify_key(&c.key, &[]).unwrap();
    assert_eq!(v.reason, VerifyReason::Revoked);
    assert_eq!(v.record.unwrap().id, id);

    // Revocation is permanent.
    assert_eq!(
        tm.enable_key(&id, None).unwrap_err().kind(),
        ErrorKind::KeyRevoked
    );
    assert_eq!(
        tm.revoke_key(&id, None, None).unwrap_err().kind(),
        ErrorKind::KeyRevoked
    );
    let e = tm.rotate_key(&id, &RotateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyRevoked);

    // Audit: create, disable, enable, revoke, and the refused verifications.
    let actions: Vec<String> = tm
        .list_audit(&AuditFilter {
            key_id: Some(id.clone()),
            ..Default::default()
        })
        .unwrap()
        .items
        .into_iter()
        .rev()
        .map(|e| format!("{}:{}", e.action, e.outcome))
        .collect();
    assert_eq!(
        actions,
        [
            "key.create:ok",
            "key.disable:ok",
            "key.verify:DISABLED",
            "key.enable:ok",
            "key.revoke:ok",
            "key.verify:REVOKED"
        ]
    );
}

#[test]
fn usage_counts_are_kept() {
    let tm = manager();
    let c = tm.create_key(&new_key("u")).unwrap();
    for _ in 0..5 {
        assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    }
    // Visible before and after the flush.
    assert_eq!(tm.get_key(&c.record.id).unwrap().usage_count, 5);
    tm.flush().unwrap();
    let r = tm.get_key(&c.record.id).unwrap();
    assert_eq!(r.usage_count, 5);
    assert_eq!(r.last_used_at, Some(T0));
}

#[test]
fn expiry_with_injected_clock() {
    let tm = manager();
    let clock = tm.manual_clock().unwrap();
    let c = tm
        .create_key(&NewKey {
            expires_in: Some(60),
            ..new_key("bob")
        })
        .unwrap();
    assert_eq!(c.record.expires_at, Some(T0 + 60));
    clock.advance(59);
    assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    clock.advance(1);
    assert_eq!(
        tm.verify_key(&c.key, &[]).unwrap().reason,
        VerifyReason::Expired
    );
    assert_eq!(tm.get_key(&c.record.id).unwrap().status, KeyStatus::Expired);
    // Extending the expiry brings it back.
    tm.update_key(
        &c.record.id,
        &KeyUpdate {
            expires_at: Some(Some(T0 + 3600)),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    // Clearing it too.
    let r = tm
        .update_key(
            &c.record.id,
            &KeyUpdate {
                expires_at: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.expires_at, None);
    // Past expiry at creation is refused.
    let e = tm
        .create_key(&NewKey {
            expires_at: Some(T0),
            ..new_key("bob")
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn scopes() {
    let tm = manager();
    let c = tm.create_key(&new_key("s")).unwrap();
    assert!(tm.verify_key(&c.key, &["read"]).unwrap().valid);
    assert!(tm.verify_key(&c.key, &["read", "write"]).unwrap().valid);
    let v = tm.verify_key(&c.key, &["read", "admin"]).unwrap();
    assert_eq!(v.reason, VerifyReason::InsufficientScope);
    assert!(!v.valid);
    let r = tm
        .update_key(
            &c.record.id,
            &KeyUpdate {
                scopes: Some(vec!["admin".into(), "admin".into()]),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.scopes, ["admin"]);
    assert!(tm.verify_key(&c.key, &["admin"]).unwrap().valid);
    let e = tm
        .update_key(
            &c.record.id,
            &KeyUpdate {
                scopes: Some(vec!["has space".into()]),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn custom_prefix() {
    let tm = manager();
    let c = tm
        .create_key(&NewKey {
            prefix: Some("sp_live".into()),
            ..new_key("p")
        })
        .unwrap();
    assert!(c.key.starts_with("sp_live_"));
    assert_eq!(c.record.prefix, "sp_live");
    assert!(c.record.display_prefix.starts_with("sp_live_"));
    assert!(c.key.starts_with(&c.record.display_prefix));
    assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    let rotated = tm
        .rotate_key(&c.record.id, &RotateOptions::default())
        .unwrap();
    assert!(rotated.key.starts_with("sp_live_"));
    // The longest prefix (32 characters) makes the longest key there is:
    // it verifies (the length bound checked before parsing admits it), one
    // character more is malformed.
    let longest = "p".repeat(32);
    let c = tm
        .create_key(&NewKey {
            prefix: Some(longest.clone()),
            ..new_key("p")
        })
        .unwrap();
    assert_eq!(c.key.len(), 32 + 1 + 43 + 6);
    assert!(tm.verify_key(&c.key, &[]).unwrap().valid);
    let e = tm
        .create_key(&NewKey {
            prefix: Some(format!("{longest}p")),
            ..new_key("p")
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let v = tm.verify_key(&format!("p{}", c.key.as_str()), &[]).unwrap();
    assert_eq!(v.reason, VerifyReason::Malformed);
}

#[test]
fn list_filters_and_paginates_stably() {
    let tm = manager();
    let mut ids = Vec::new();
    for i in 0..25 {
        let owner = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(tm.create_key(&new_key(owner)).unwrap().record.id);
    }
    tm.revoke_key(&ids[0], None, None).unwrap();
    tm.disable_key(&ids[2], None).unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = tm
            .list_keys(&KeyFilter {
                limit: Some(4),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .unwrap();
        // A key created while paging shows up at the end, not twice.
        if seen.is_empty() {
            ids.push(tm.create_key(&new_key("late")).unwrap().record.id);
        }
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let even = tm
        .list_keys(&KeyFilter {
            owner: Some("even".into()),
            status: Some(KeyStatus::Active),
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(even.items.len(), 11);
    assert!(even.next_cursor.is_none());
    let revoked = tm
        .list_keys(&KeyFilter {
            status: Some(KeyStatus::Revoked),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(revoked.items.len(), 1);
    assert_eq!(revoked.items[0].id, ids[0]);
    for bad in [Some(0), Some(1001)] {
        let e = tm
            .list_keys(&KeyFilter {
                limit: bad,
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
    let e = tm
        .list_keys(&KeyFilter {
            cursor: Some("x".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn delete_keeps_the_audit_history() {
    let tm = manager();
    let c = tm.create_key(&new_key("del")).unwrap();
    tm.delete_key(&c.record.id, Some("gdpr")).unwrap();
    assert_eq!(
        tm.verify_key(&c.key, &[]).unwrap().reason,
        VerifyReason::NotFound
    );
    let ev = tm
        .list_audit(&AuditFilter {
            key_id: Some(c.record.id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ev.items[0].action, "key.delete");
    assert_eq!(ev.items[0].actor.as_deref(), Some("gdpr"));
}

#[test]
fn no_plaintext_in_the_database_file_debug_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let mut keys = Vec::new();
    {
        let tm = TokenManager::open(path.to_str().unwrap()).unwrap();
        for i in 0..20 {
            let c = tm.create_key(&new_key(&format!("o{i}"))).unwrap();
            let dbg = format!("{c:?}");
            assert!(!dbg.contains(&c.key[4..]), "Debug shows the key");
            // ...but says which key it is.
            assert!(
                dbg.starts_with("CreatedKey")
                    && dbg.contains(&format!("{}…", c.record.display_prefix))
                    && dbg.contains(&c.record.id),
                "{dbg}"
            );
            tm.verify_key(&c.key, &[]).unwrap();
            let rotated = tm
                .rotate_key(&c.record.id, &RotateOptions::default())
                .unwrap();
            keys.push(c.key.to_string());
            keys.push(rotated.key.to_string());
        }
        // A failed verification with a near-miss key is audited without it.
        let near = format!("{}x", &keys[0][..keys[0].len() - 1]);
        tm.verify_key(&near, &[]).unwrap();
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let hay = String::from_utf8_lossy(&bytes);
    for k in &keys {
        let body = &k[4..];
        assert!(
            !hay.contains(body),
            "plaintext key body found in the database"
        );
        assert!(
            !hay.contains(&body[8..30]),
            "key fragment found in the database"
        );
    }
}

#[test]
fn metrics_in_prometheus_text_format() {
    let tm = manager();
    let c = tm.create_key(&new_key("m")).unwrap();
    tm.verify_key(&c.key, &[]).unwrap();
    tm.verify_key(&c.key, &[]).unwrap();
    tm.verify_key("itk_bad", &[]).unwrap();
    tm.revoke_key(&c.record.id, None, None).unwrap();
    tm.verify_key(&c.key, &[]).unwrap();
    let text = tm.metrics();
    for line in [
        "# TYPE irontoken_key_verifications_total counter",
        "irontoken_key_verifications_total{reason=\"VALID\"} 2",
        "irontoken_key_verifications_total{reason=\"MALFORMED\"} 1",
        "irontoken_key_verifications_total{reason=\"REVOKED\"} 1",
        "irontoken_keys_created_total 1",
        "irontoken_keys_revoked_total 1",
        "# TYPE irontoken_pending_entries gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains(&c.key[4..]));
}

#[test]
fn created_record_is_what_the_database_holds() {
    let tm = manager();
    let mut req = new_key("alice");
    req.scopes = vec!["read".into(), "read".into(), "write".into()];
    req.expires_in = Some(3600);
    req.rate_limits = vec![irontoken::ratelimit::Limit {
        name: "rps".into(),
        count: 5,
        period_ms: 1000,
        burst: 5,
        unit: irontoken::ratelimit::Unit::Requests,
    }];
    let created = tm.create_key(&req).unwrap();
    assert_eq!(created.record, tm.get_key(&created.record.id).unwrap());
    assert_eq!(created.record.scopes, ["read", "write"]);
}

#[test]
fn create_keys_is_all_or_nothing() {
    let tm = manager();
    let reqs: Vec<NewKey> = (0..500).map(|i| new_key(&format!("o{i}"))).collect();
    let created = tm.create_keys(&reqs).unwrap();
    assert_eq!(created.len(), 500);
    for c in created.iter().step_by(50) {
        assert_eq!(created_record(&tm, &c.record.id), c.record);
        let v = tm.verify_key(&c.key, &["read"]).unwrap();
        assert!(v.valid, "{:?}", v.reason);
    }
    let audit = tm
        .list_audit(&AuditFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        audit
            .items
            .iter()
            .filter(|e| e.action == "key.create")
            .count(),
        500
    );

    // One bad request: nothing is created, and the message names it.
    let mut bad: Vec<NewKey> = (0..10).map(|i| new_key(&format!("p{i}"))).collect();
    bad[7].scopes = vec!["has space".into()];
    let e = tm.create_keys(&bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().starts_with("key 7:"), "{}", e.message());
    let mut prefixed = new_key("q");
    prefixed.prefix = Some("Bad Prefix".into());
    let e = tm.create_keys(&[new_key("q"), prefixed]).unwrap_err();
    assert!(e.message().starts_with("key 1:"), "{}", e.message());
    let page = tm
        .list_keys(&KeyFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 500);

    // The bound is exact: MAX_BULK_KEYS requests are read (the last one,
    // invalid, fails the call before anything is written), one more is
    // refused before any is read.
    let mut most = vec![new_key("bulk"); irontoken::MAX_BULK_KEYS];
    *most.last_mut().unwrap() = NewKey::default();
    let e = tm.create_keys(&most).unwrap_err();
    assert!(
        e.message()
            .starts_with(&format!("key {}: ", irontoken::MAX_BULK_KEYS - 1)),
        "{e}"
    );
    most.push(new_key("bulk"));
    let e = tm.create_keys(&most).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.message().starts_with("at most 100000 keys per call"),
        "{e}"
    );
    assert!(tm.create_keys(&[]).unwrap().is_empty());
    assert_eq!(
        tm.list_keys(&KeyFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap()
        .items
        .len(),
        500
    );
}

fn created_record(tm: &TokenManager, id: &str) -> irontoken::KeyRecord {
    tm.get_key(id).unwrap()
}

#[test]
fn key_updates_set_clear_or_keep_a_clearable_field() {
    // The bindings' two arguments (a value, a clear flag) into the change.
    assert_eq!(
        KeyUpdate::expiry_change(Some(T0), false).unwrap(),
        Some(Some(T0))
    );
    assert_eq!(KeyUpdate::expiry_change(None, true).unwrap(), Some(None));
    assert_eq!(KeyUpdate::expiry_change(None, false).unwrap(), None);
    let e = KeyUpdate::expiry_change(Some(T0), true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("new expiry or clear it"), "{e}");
    assert_eq!(
        KeyUpdate::change_of(Some(-1), false, "period").unwrap(),
        Some(Some(-1))
    );
    let e = KeyUpdate::change_of(Some(1), true, "rotation period").unwrap_err();
    assert!(e.message().contains("new rotation period"), "{e}");
    // JSON (the C ABI): absent keeps, null clears, a number sets.
    let update = |j: Value| serde_json::from_value::<KeyUpdate>(j).unwrap();
    let kept = update(json!({}));
    assert_eq!((kept.expires_at, kept.rotation_period), (None, None));
    let cleared = update(json!({"expires_at": null, "rotation_period": null}));
    assert_eq!(
        (cleared.expires_at, cleared.rotation_period),
        (Some(None), Some(None))
    );
    let set = update(json!({"expires_at": T0, "rotation_period": 86_400}));
    assert_eq!(
        (set.expires_at, set.rotation_period),
        (Some(Some(T0)), Some(Some(86_400)))
    );
    // Through the manager: a cleared expiry is gone, a kept one stays.
    let tm = manager();
    let c = tm
        .create_key(&NewKey {
            expires_at: Some(T0 + 60),
            ..new_key("clear")
        })
        .unwrap();
    let kept = tm
        .update_key(&c.record.id, &update(json!({"name": "n"})))
        .unwrap();
    assert_eq!(kept.expires_at, Some(T0 + 60));
    let cleared = tm
        .update_key(&c.record.id, &update(json!({"expires_at": null})))
        .unwrap();
    assert_eq!(cleared.expires_at, None);
}

#[test]
fn key_status_names_round_trip_and_match_the_json() {
    // The bindings and the CLI filter by these names; JSON uses serde's.
    for (status, name) in [
        (KeyStatus::Active, "active"),
        (KeyStatus::Disabled, "disabled"),
        (KeyStatus::Revoked, "revoked"),
        (KeyStatus::Expired, "expired"),
    ] {
        assert_eq!(status.as_str(), name);
        assert_eq!(KeyStatus::parse(name).unwrap(), status);
        assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
    }
    for bad in ["", "Active", "ACTIVE", "deleted", "active "] {
        let e = KeyStatus::parse(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        assert!(e.message().contains("active, disabled, revoked, expired"));
    }
}

/// Key ids are time-ordered UUIDs (version 7): keys created one after
/// another get ids that sort in creation order, so the id indexes (keys,
/// audit entries, quotas by key) grow at their end instead of at random
/// pages — what keeps bulk creation fast in a large store. Ids stay
/// distinct and 36 characters long (the format every surface documents).
#[test]
fn key_ids_are_time_ordered_uuids() {
    let tm = manager();
    let created = tm
        .create_keys(&(0..200).map(|_| new_key("ids")).collect::<Vec<_>>())
        .unwrap();
    let mut ids: Vec<String> = created.iter().map(|c| c.record.id.clone()).collect();
    let one = tm.create_key(&new_key("ids")).unwrap().record.id;
    ids.push(one);
    for id in &ids {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "7", "version nibble of {id}");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids sort in creation order");
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids are distinct");
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
