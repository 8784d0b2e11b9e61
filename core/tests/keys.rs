//! Lifecycle, vectors, storage and concurrency tests of the API-key core.

use irontoken::{
    AuditFilter, ErrorKind, KeyFilter, KeyStatus, KeyUpdate, NewKey, Options, RotateOptions,
    TokenManager, VerifyReason,
};
use serde_json::{Value, json};
use std::sync::Arc;

const T0: i64 = 1_700_000_000;

mod common;

/// A manager on the store under test (SQLite in memory, or PostgreSQL).
fn manager() -> common::Managed {
    common::open_private(Options::default().manual_clock(T0))
}

fn new_key(owner: &str) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: "ci".into(),
        scopes: vec!["read".into(), "write".into()],
        metadata: Some(json!({"team": "core", "n": 1}).as_object().unwrap().clone()),
        ..Default::default()
    }
}

fn vectors() -> Vec<(String, String, bool, Option<String>)> {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/keys.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&raw).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = match &c["key"] {
                Value::String(s) => s.clone(),
                _ => {
                    let r = &c["key_repeat"];
                    let mut s = r["unit"]
                        .as_str()
                        .unwrap()
                        .repeat(r["count"].as_u64().unwrap() as usize);
                    s.push_str(r["suffix"].as_str().unwrap_or(""));
                    s
                }
            };
            (
                c["name"].as_str().unwrap().to_string(),
                key,
                c["well_formed"].as_bool().unwrap(),
                c["display_prefix"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn shared_vectors() {
    let tm = manager();
    let cases = vectors();
    assert!(cases.len() >= 10);
    for (name, key, well_formed, display) in cases {
        assert_eq!(irontoken::keys::is_well_formed(&key), well_formed, "{name}");
        let v = tm.verify_key(&key, &[]).unwrap();
        assert!(!v.valid, "{name}");
        let want = if well_formed {
            VerifyReason::NotFound
        } else {
            VerifyReason::Malformed
        };
        assert_eq!(v.reason, want, "{name}");
        if let Some(d) = display {
            let audit = tm
                .list_audit(&AuditFilter {
                    limit: Some(1),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(audit.items[0].display_prefix.as_deref(), Some(d.as_str()));
        }
    }
}

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

/// The record a verification answers with shows the key's uses: a valid
/// verification counts itself (`last_used_at` now), a refused one shows
/// the last use as it was (mutants shard 6: `extra > 0` in the cached
/// counters as `>=`, `==` or `<` passed every test).
#[test]
fn answered_records_show_the_last_use_and_only_valid_ones_count() {
    let tm = manager();
    let clock = tm.manual_clock().unwrap();
    let c = tm.create_key(&new_key("ann")).unwrap();
    let never = tm.verify_key(&c.key, &["admin"]).unwrap().record.unwrap();
    assert_eq!((never.usage_count, never.last_used_at), (0, None));
    let v = tm.verify_key(&c.key, &[]).unwrap();
    let r = v.record.unwrap();
    assert_eq!((r.usage_count, r.last_used_at), (1, Some(T0)));
    clock.advance(100);
    let v = tm.verify_key(&c.key, &["admin"]).unwrap();
    assert_eq!(v.reason, VerifyReason::InsufficientScope);
    let r = v.record.unwrap();
    assert_eq!((r.usage_count, r.last_used_at), (1, Some(T0)));
    clock.advance(100);
    let v = tm.verify_key(&c.key, &["read"]).unwrap();
    assert!(v.valid);
    let r = v.record.unwrap();
    assert_eq!((r.usage_count, r.last_used_at), (2, Some(T0 + 200)));
    let r = tm.get_key(&c.record.id).unwrap();
    assert_eq!((r.usage_count, r.last_used_at), (2, Some(T0 + 200)));
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
fn bad_input_is_refused_with_codes() {
    let tm = manager();
    let cases: Vec<NewKey> = vec![
        NewKey::default(),
        NewKey {
            owner: "x".repeat(257),
            ..Default::default()
        },
        NewKey {
            prefix: Some("Bad".into()),
            ..new_key("a")
        },
        NewKey {
            expires_in: Some(0),
            ..new_key("a")
        },
        NewKey {
            expires_in: Some(5),
            expires_at: Some(T0 + 5),
            ..new_key("a")
        },
        NewKey {
            metadata: Some(
                json!({"big": "x".repeat(20_000)})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..new_key("a")
        },
        NewKey {
            scopes: (0..65).map(|i| format!("s{i}")).collect(),
            ..new_key("a")
        },
    ];
    for (i, req) in cases.iter().enumerate() {
        let e = tm.create_key(req).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "case {i}: {e}");
    }
    assert_eq!(
        tm.get_key("nope").unwrap_err().kind(),
        ErrorKind::KeyNotFound
    );
    assert_eq!(
        tm.get_key("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        tm.update_key("nope", &KeyUpdate::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    // Nothing half-written: no key and no audit row from the failures.
    assert!(
        tm.list_keys(&KeyFilter::default())
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        tm.list_audit(&AuditFilter::default())
            .unwrap()
            .items
            .is_empty()
    );
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

#[test]
fn repeated_failures_are_coalesced_per_flush_window() {
    let tm = manager();
    let c = tm.create_key(&new_key("f")).unwrap();
    tm.revoke_key(&c.record.id, None, None).unwrap();
    for _ in 0..1000 {
        tm.verify_key(&c.key, &[]).unwrap();
        tm.verify_key("itk_garbage", &[]).unwrap();
    }
    tm.manual_clock().unwrap().advance(7);
    tm.verify_key(&c.key, &[]).unwrap();
    let page = tm
        .list_audit(&AuditFilter {
            action: Some("key.verify".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 2, "{:?}", page.items);
    let revoked = page.items.iter().find(|e| e.outcome == "REVOKED").unwrap();
    assert_eq!(revoked.detail.as_ref().unwrap()["count"], 1001);
    assert_eq!(revoked.detail.as_ref().unwrap()["last_at"], T0 + 7);
    assert_eq!(revoked.at, T0);
    let malformed = page
        .items
        .iter()
        .find(|e| e.outcome == "MALFORMED")
        .unwrap();
    assert_eq!(malformed.display_prefix.as_deref(), Some("itk"));
    assert_eq!(malformed.detail.as_ref().unwrap()["count"], 1000);
    // A new window starts a new entry.
    tm.verify_key(&c.key, &[]).unwrap();
    let again = tm
        .list_audit(&AuditFilter {
            outcome: Some("REVOKED".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again.items.len(), 2);
    assert!(again.items[0].detail.is_none());
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

#[test]
fn try_verify_key_answers_on_sqlite_as_verify_key_does() {
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(T0)).unwrap();
    let c = tm.create_key(&new_key("now")).unwrap();
    let now = tm.try_verify_key(&c.key, &["read"]).unwrap().unwrap();
    assert!(now.valid);
    let blocking = tm.verify_key(&c.key, &["read"]).unwrap();
    assert_eq!(now.record.as_ref().unwrap().id, c.record.id);
    // Both count as uses, once each.
    assert_eq!(blocking.record.unwrap().usage_count, 2);
    let refused = |k: &str, scopes: &[&str]| tm.try_verify_key(k, scopes).unwrap().unwrap().reason;
    assert_eq!(refused(&c.key, &["admin"]), VerifyReason::InsufficientScope);
    assert_eq!(refused("itk_nope", &[]), VerifyReason::Malformed);
    tm.revoke_key(&c.record.id, None, None).unwrap();
    assert_eq!(refused(&c.key, &[]), VerifyReason::Revoked);
    // A refusal answered now is audited like any other.
    tm.flush().unwrap();
    let audit = tm
        .list_audit(&AuditFilter {
            key_id: Some(c.record.id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        audit.items.iter().any(|e| e.outcome == "REVOKED"),
        "{:?}",
        audit.items
    );
}

/// The names before `try_verify_key` stay for one release, deprecated.
#[test]
#[allow(deprecated)]
fn the_old_names_of_try_verify_key_still_answer() {
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(T0)).unwrap();
    let c = tm.create_key(&new_key("old")).unwrap();
    assert!(tm.verify_key_now(&c.key, &[]).unwrap().unwrap().valid);
    let opts = irontoken::VerifyOptions::default();
    assert!(
        tm.verify_key_with_now(&c.key, &opts)
            .unwrap()
            .unwrap()
            .valid
    );
}

#[test]
fn try_verify_key_with_answers_only_without_writes_or_round_trips() {
    use irontoken::VerifyOptions;
    use irontoken::ratelimit::{Limit, RateLimitStore};
    let limited = |tm: &TokenManager, owner: &str| {
        tm.create_key(&NewKey {
            owner: owner.into(),
            rate_limits: vec![Limit {
                name: "per_minute".into(),
                count: 2,
                period_ms: 60_000,
                burst: 2,
            }],
            ..Default::default()
        })
        .unwrap()
    };
    let opts = VerifyOptions {
        rate_limit: true,
        ..Default::default()
    };
    // Default rate-limit store (the database): a key with limits needs a
    // write, so it is left to the blocking call, with nothing counted.
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(T0)).unwrap();
    let plain = tm.create_key(&new_key("plain")).unwrap();
    let v = tm.try_verify_key_with(&plain.key, &opts).unwrap().unwrap();
    assert!(v.valid);
    let with_limits = limited(&tm, "limited");
    assert!(
        tm.try_verify_key_with(&with_limits.key, &opts)
            .unwrap()
            .is_none()
    );
    assert_eq!(tm.get_key(&with_limits.record.id).unwrap().usage_count, 0);
    let no_limits = VerifyOptions::default();
    assert!(
        tm.try_verify_key_with(&with_limits.key, &no_limits)
            .unwrap()
            .unwrap()
            .valid
    );
    // A quota is always a write.
    let quota = VerifyOptions {
        quota: Some(irontoken::Amounts {
            requests: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(
        tm.try_verify_key_with(&plain.key, &quota)
            .unwrap()
            .is_none()
    );
    // Limits in this process: answered now, and enforced.
    let mut o = Options::default().manual_clock(T0);
    o.rate_limit_store = RateLimitStore::Local;
    let local = TokenManager::open_with(":memory:", o).unwrap();
    let k = limited(&local, "local");
    let reasons: Vec<VerifyReason> = (0..3)
        .map(|_| {
            local
                .try_verify_key_with(&k.key, &opts)
                .unwrap()
                .unwrap()
                .reason
        })
        .collect();
    assert_eq!(
        reasons,
        [
            VerifyReason::Valid,
            VerifyReason::Valid,
            VerifyReason::RateLimited
        ]
    );
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
