//! Keys imported from another system: irontoken keys from another
//! deployment, legacy keys by plaintext or by SHA-256 (hex or base64),
//! all-or-nothing batches, audit, and the legacy lookup another process
//! notices. Runs on SQLite, and on PostgreSQL with IRONTOKEN_TEST_STORE=postgres.

mod common;

use base64::Engine;
use irontoken::{
    AuditFilter, ErrorKind, ImportKey, KeyFilter, NewKey, Options, TokenManager, VerifyReason,
};
use sha2::{Digest, Sha256};

const T0: i64 = 1_700_000_000;
const LEGACY: &str = "dev-sk-4f1c9a7e2b8d6035aa71";

fn manager() -> common::Managed {
    common::open_private(Options::default().manual_clock(T0))
}

fn import(key: &str, owner: &str) -> ImportKey {
    ImportKey {
        key: Some(key.into()),
        owner: owner.into(),
        scopes: vec!["read".into()],
        ..Default::default()
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn reason(tm: &TokenManager, key: &str) -> VerifyReason {
    tm.verify_key(key, &[]).unwrap().reason
}

#[test]
fn an_irontoken_key_from_another_deployment_keeps_its_prefix() {
    let other = TokenManager::open(":memory:").unwrap();
    let created = other
        .create_key(&NewKey {
            owner: "a".into(),
            prefix: Some("sp_live".into()),
            ..Default::default()
        })
        .unwrap();
    let tm = manager();
    let r = tm.import_key(&import(&created.key, "acme")).unwrap();
    assert_eq!(r.prefix, "sp_live");
    assert_eq!(r.display_prefix, created.record.display_prefix);
    assert_ne!(r.id, created.record.id, "a new id here");
    let v = tm.verify_key(&created.key, &["read"]).unwrap();
    assert!(v.valid);
    assert_eq!(v.record.unwrap().owner, "acme");
    // Imported twice: CONFLICT, nothing written.
    let e = tm.import_key(&import(&created.key, "acme")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(tm.list_keys(&KeyFilter::default()).unwrap().items.len(), 1);
}

#[test]
fn legacy_keys_verify_by_hash_once_imported() {
    let tm = manager();
    // Before any legacy key is here, a foreign string is MALFORMED (no lookup).
    assert_eq!(reason(&tm, LEGACY), VerifyReason::Malformed);
    let r = tm.import_key(&import(LEGACY, "acme")).unwrap();
    assert_eq!(r.prefix, "legacy");
    assert!(
        !r.display_prefix.contains(&LEGACY[4..]),
        "{}",
        r.display_prefix
    );
    assert!(tm.verify_key(LEGACY, &["read"]).unwrap().valid);
    assert_eq!(
        tm.verify_key(LEGACY, &["write"]).unwrap().reason,
        VerifyReason::InsufficientScope
    );
    // Other legacy-shaped strings are now looked up: NOT_FOUND, the answer an
    // upgrade-on-use path waits for. Too short, spaces, control: still MALFORMED.
    assert_eq!(
        reason(&tm, "dev-sk-000000000000000000"),
        VerifyReason::NotFound
    );
    for bad in [
        "short",
        "with a space inside it!",
        "tab\there-0123456789",
        "",
    ] {
        assert_eq!(reason(&tm, bad), VerifyReason::Malformed, "{bad:?}");
    }
    // The lifecycle applies as to any key.
    tm.revoke_key(&r.id, Some("migrated"), None).unwrap();
    assert_eq!(reason(&tm, LEGACY), VerifyReason::Revoked);
}

#[test]
fn keys_import_by_sha256_in_hex_or_base64() {
    let tm = manager();
    let hex_key = "legacy-hex-0123456789abcdef";
    let b64_key = "legacy-b64-0123456789abcdef";
    let b64 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b64_key.as_bytes()));
    let records = tm
        .import_keys(&[
            ImportKey {
                key_hash: Some(sha256_hex(hex_key)),
                owner: "a".into(),
                display_prefix: Some("sk_…3f".into()),
                ..Default::default()
            },
            ImportKey {
                key_hash: Some(b64),
                owner: "b".into(),
                expires_at: Some(T0 + 60),
                ..Default::default()
            },
        ])
        .unwrap();
    assert_eq!(records[0].display_prefix, "sk_…3f");
    assert_eq!(records[1].display_prefix, "legacy");
    assert!(tm.verify_key(hex_key, &[]).unwrap().valid);
    assert!(tm.verify_key(b64_key, &[]).unwrap().valid);
    // An irontoken-format key imported by hash verifies too.
    let other = TokenManager::open(":memory:").unwrap();
    let k = other
        .create_key(&NewKey {
            owner: "c".into(),
            ..Default::default()
        })
        .unwrap()
        .key;
    tm.import_key(&ImportKey {
        key_hash: Some(sha256_hex(&k)),
        owner: "c".into(),
        ..Default::default()
    })
    .unwrap();
    assert!(tm.verify_key(&k, &[]).unwrap().valid);
}

#[test]
fn a_batch_is_all_or_nothing_and_says_which_entry_failed() {
    let tm = manager();
    let good = import("legacy-good-0123456789ab", "a");
    for (bad, kind, what) in [
        (
            import("short", "a"),
            ErrorKind::InvalidArgument,
            "legacy key must be",
        ),
        (
            ImportKey {
                key: Some("legacy-both-0123456789ab".into()),
                key_hash: Some(sha256_hex("x")),
                owner: "a".into(),
                ..Default::default()
            },
            ErrorKind::InvalidArgument,
            "exactly one",
        ),
        (
            ImportKey {
                key_hash: Some("zz".repeat(32)),
                owner: "a".into(),
                ..Default::default()
            },
            ErrorKind::InvalidArgument,
            "SHA-256",
        ),
        (
            import("legacy-good-0123456789ab", "b"),
            ErrorKind::Conflict,
            "twice",
        ),
        (
            ImportKey {
                expires_at: Some(T0 - 1),
                ..import("legacy-past-0123456789ab", "a")
            },
            ErrorKind::InvalidArgument,
            "future",
        ),
        (
            import("legacy-noowner-012345678", ""),
            ErrorKind::InvalidArgument,
            "owner",
        ),
        (
            ImportKey {
                actor: Some("a".repeat(300)),
                ..import("legacy-actor-0123456789a", "a")
            },
            ErrorKind::InvalidArgument,
            "actor",
        ),
    ] {
        let e = tm.import_keys(&[good.clone(), bad]).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().starts_with("key 1: "), "{e}");
        assert!(e.message().contains(what), "{what}: {e}");
        assert!(
            tm.list_keys(&KeyFilter::default())
                .unwrap()
                .items
                .is_empty()
        );
    }
    // A single import's error is not numbered (a batch's is).
    let e = tm.import_key(&import("short", "a")).unwrap_err();
    assert!(e.message().starts_with("key: not an irontoken key"), "{e}");
    // A key that is here already fails the whole batch too.
    tm.import_key(&good).unwrap();
    let e = tm
        .import_keys(&[import("legacy-new-0123456789abc", "a"), good.clone()])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.message().starts_with("key 1: "), "{e}");
    assert_eq!(tm.list_keys(&KeyFilter::default()).unwrap().items.len(), 1);
    assert_eq!(
        tm.verify_key("legacy-new-0123456789abc", &[])
            .unwrap()
            .reason,
        VerifyReason::NotFound
    );
}

#[test]
fn a_batch_holds_at_most_max_bulk_keys() {
    let tm = manager();
    // MAX_BULK_KEYS entries are read (the last one, invalid, fails the call
    // before anything is written); one more is refused before any is read.
    let mut most = vec![import(LEGACY, "acme"); irontoken::MAX_BULK_KEYS];
    *most.last_mut().unwrap() = import("short", "acme");
    let e = tm.import_keys(&most).unwrap_err();
    assert!(
        e.message()
            .starts_with(&format!("key {}: ", irontoken::MAX_BULK_KEYS - 1)),
        "{e}"
    );
    most.push(import(LEGACY, "acme"));
    let e = tm.import_keys(&most).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.message().starts_with("at most 100000 keys per call"),
        "{e}"
    );
    assert!(
        tm.list_keys(&KeyFilter::default())
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn an_import_keeps_every_field_of_its_record() {
    let tm = manager();
    let limit = irontoken::ratelimit::Limit {
        name: "per_second".into(),
        count: 5,
        period_ms: 1000,
        burst: 2,
        unit: irontoken::ratelimit::Unit::Requests,
    };
    let r = tm
        .import_key(&ImportKey {
            name: "old gateway key".into(),
            description: "moved from the v1 gateway".into(),
            metadata: Some(
                serde_json::json!({"team": "core"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            expires_at: Some(T0 + 3600),
            rate_limits: vec![limit.clone()],
            actor: Some("migration".into()),
            ..import(LEGACY, "acme")
        })
        .unwrap();
    let stored = tm.get_key(&r.id).unwrap();
    for rec in [&r, &stored] {
        assert_eq!(rec.owner, "acme");
        assert_eq!(rec.name, "old gateway key");
        assert_eq!(rec.description, "moved from the v1 gateway");
        assert_eq!(rec.scopes, ["read"]);
        assert_eq!(rec.metadata["team"], "core");
        assert_eq!(rec.expires_at, Some(T0 + 3600));
        assert_eq!(rec.rate_limits, std::slice::from_ref(&limit));
    }
}

#[test]
fn display_prefixes_of_imports() {
    let tm = manager();
    // A legacy key shows "legacy:" and its first len/8 characters (at most 6).
    let shown = |key: &str| tm.import_key(&import(key, "acme")).unwrap().display_prefix;
    assert_eq!(shown("abcdefghijklmnop"), "legacy:ab"); // 16 characters: 2 shown
    assert_eq!(shown("ABCDEFGHIJKLMNOPQRSTUVWX"), "legacy:ABC"); // 24: 3
    assert_eq!(shown(&format!("Z{}", "y".repeat(99))), "legacy:Zyyyyy"); // 100: 6
    // A display prefix given: 3-32 printable characters, exactly (1 or 2
    // were accepted and then failed the column's CHECK as a STORAGE error).
    let with = |d: &str, key: &str| {
        tm.import_key(&ImportKey {
            display_prefix: Some(d.into()),
            ..import(key, "acme")
        })
    };
    let longest = "d".repeat(32);
    assert_eq!(
        with(&longest, "legacy-disp-0123456789a")
            .unwrap()
            .display_prefix,
        longest
    );
    assert_eq!(
        with("sé…", "legacy-disp-0123456789b")
            .unwrap()
            .display_prefix,
        "sé…"
    );
    for bad in ["", "é", "ab", &"d".repeat(33), "sk\u{7}x", "sk\u{202e}x"] {
        let e = with(bad, "legacy-disp-0123456789c").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        assert!(e.message().contains("display_prefix"), "{e}");
    }
}

#[test]
fn imports_are_audited_and_no_plaintext_is_kept_or_shown() {
    let tm = manager();
    let r = tm
        .import_key(&ImportKey {
            actor: Some("migration".into()),
            ..import(LEGACY, "acme")
        })
        .unwrap();
    let audit = tm
        .list_audit(&AuditFilter {
            key_id: Some(r.id.clone()),
            ..Default::default()
        })
        .unwrap()
        .items;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action.as_str(), "key.create");
    assert_eq!(audit[0].actor.as_deref(), Some("migration"));
    let detail = audit[0].detail.as_ref().unwrap();
    assert_eq!(detail["imported"], true);
    assert_eq!(detail["legacy"], true);
    let everything = format!("{r:?} {audit:?} {:?}", import(LEGACY, "acme"));
    assert!(!everything.contains(LEGACY), "{everything}");
    // Debug of an import names what it can show and hides the key and its hash.
    let by_hash = ImportKey {
        key_hash: Some(sha256_hex(LEGACY)),
        ..ImportKey::default()
    };
    let shown = format!("{:?} {by_hash:?}", import(LEGACY, "acme"));
    assert!(
        shown.starts_with("ImportKey")
            && shown.contains("\"acme\"")
            && shown.matches("<redacted>").count() == 2
            && !shown.contains(&sha256_hex(LEGACY)),
        "{shown}"
    );
}

#[test]
fn legacy_keys_in_a_file_stay_hashed() {
    if common::on_postgres() {
        return; // a file scan: SQLite only
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let tm = TokenManager::open(path.to_str().unwrap()).unwrap();
    tm.import_key(&import(LEGACY, "acme")).unwrap();
    drop(tm);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(LEGACY));
    assert!(!text.contains(&LEGACY[4..16]));
}

/// A process that has looked for legacy keys before another one imported
/// the first notices within the recheck interval.
#[test]
fn another_process_notices_the_first_legacy_import() {
    let store = common::shared_store();
    let url = &store.url;
    let a = TokenManager::open(url).unwrap();
    let b = TokenManager::open(url).unwrap();
    assert_eq!(reason(&b, LEGACY), VerifyReason::Malformed);
    a.import_key(&import(LEGACY, "acme")).unwrap();
    assert!(a.verify_key(LEGACY, &[]).unwrap().valid);
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(irontoken::LEGACY_RECHECK_MS as u64 + 1500);
    while !b.verify_key(LEGACY, &[]).unwrap().valid {
        assert!(std::time::Instant::now() < deadline, "not noticed in time");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn foreign_strings_cost_no_database_read_while_the_legacy_check_is_fresh() {
    // The meta entry is read at most once per LEGACY_RECHECK_MS: a flood of
    // foreign strings must not become a flood of reads. Seen from outside:
    // right after a check, another process's first import is not noticed
    // yet (it is within the interval: the test above).
    let store = common::shared_store();
    let url = &store.url;
    let a = TokenManager::open(url).unwrap();
    let b = TokenManager::open(url).unwrap();
    let checked = std::time::Instant::now();
    assert_eq!(reason(&b, LEGACY), VerifyReason::Malformed);
    a.import_key(&import(LEGACY, "acme")).unwrap();
    let answer = reason(&b, LEGACY);
    // Only meaningful if the machine was not stalled past the interval.
    if checked.elapsed() < std::time::Duration::from_millis(irontoken::LEGACY_RECHECK_MS as u64 / 2)
    {
        assert_eq!(
            answer,
            VerifyReason::Malformed,
            "the meta entry was read again at once"
        );
    }
}

#[test]
fn keys_from_header_bytes() {
    use irontoken::keys::key_from_bytes;
    let tm = manager();
    tm.import_key(&import(LEGACY, "acme")).unwrap();
    let created = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            ..Default::default()
        })
        .unwrap();
    // UTF-8 bytes are the key itself, borrowed.
    for key in [LEGACY, created.key.as_str()] {
        let text = key_from_bytes(key.as_bytes());
        assert!(matches!(text, std::borrow::Cow::Borrowed(_)));
        assert!(tm.verify_key(&text, &[]).unwrap().valid);
    }
    // Not UTF-8: MALFORMED without a lookup, even now that legacy-shaped
    // strings are looked up (a legacy-shaped ASCII string is NOT_FOUND).
    let mut bytes = LEGACY.as_bytes().to_vec();
    bytes[5] = 0xff;
    assert_eq!(
        reason(&tm, &key_from_bytes(&bytes)),
        VerifyReason::Malformed
    );
    let mut near = created.key.as_bytes().to_vec();
    *near.last_mut().unwrap() = 0x80;
    assert_eq!(reason(&tm, &key_from_bytes(&near)), VerifyReason::Malformed);
    assert_eq!(
        reason(&tm, "dev-sk-0000000000000000000"),
        VerifyReason::NotFound
    );
}

#[test]
fn a_deleted_key_stays_deleted_until_its_tombstone_is_lifted() {
    let tm = manager();
    let created = tm
        .create_key(&NewKey {
            owner: "a".into(),
            ..Default::default()
        })
        .unwrap();
    let legacy = tm.import_key(&import(LEGACY, "acme")).unwrap();
    tm.delete_key(&created.record.id, Some("ops")).unwrap();
    tm.delete_key(&legacy.id, Some("ops")).unwrap();
    // Neither the plaintext nor the hash brings a deleted key back, under any owner.
    for req in [
        import(&created.key, "mallory"),
        import(LEGACY, "mallory"),
        ImportKey {
            key_hash: Some(sha256_hex(LEGACY)),
            owner: "mallory".into(),
            ..Default::default()
        },
        ImportKey {
            key_hash: Some(sha256_hex(&created.key)),
            owner: "mallory".into(),
            ..Default::default()
        },
    ] {
        let e = tm.import_key(&req).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.message().contains("lift_tombstone"), "{e}");
    }
    assert_eq!(reason(&tm, LEGACY), VerifyReason::NotFound);
    assert_eq!(reason(&tm, &created.key), VerifyReason::NotFound);
    // A revoked key keeps its row, which refuses the import too.
    let revoked = tm
        .create_key(&NewKey {
            owner: "a".into(),
            ..Default::default()
        })
        .unwrap();
    tm.revoke_key(&revoked.record.id, None, None).unwrap();
    let e = tm.import_key(&import(&revoked.key, "a")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // Lifting is explicit and audited; a second lift finds nothing.
    assert!(
        tm.lift_tombstone(None, Some(&sha256_hex(LEGACY)), Some("ops"))
            .unwrap()
    );
    assert!(!tm.lift_tombstone(Some(LEGACY), None, Some("ops")).unwrap());
    assert!(
        tm.lift_tombstone(Some(&created.key), None, Some("ops"))
            .unwrap()
    );
    tm.import_key(&import(LEGACY, "acme")).unwrap();
    tm.import_key(&import(&created.key, "acme")).unwrap();
    assert!(tm.verify_key(LEGACY, &[]).unwrap().valid);
    let lifts = tm
        .list_audit(&AuditFilter {
            action: Some("key.tombstone_lift".into()),
            ..Default::default()
        })
        .unwrap()
        .items;
    assert_eq!(lifts.len(), 2);
    assert!(lifts.iter().all(|e| e.actor.as_deref() == Some("ops")));
    assert_eq!(
        lifts
            .iter()
            .filter(|e| e.display_prefix.as_deref() == Some(created.record.display_prefix.as_str()))
            .count(),
        1,
        "the plaintext lift names the key's display prefix"
    );
    let e = tm.lift_tombstone(None, None, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn one_irontoken_key_per_old_record() {
    let tm = manager();
    let first = ImportKey {
        legacy_id: Some("user-42".into()),
        ..import(&format!("{LEGACY}-ending-one"), "acme")
    };
    let r = tm.import_key(&first).unwrap();
    // Another key for the same old record (bcrypt read only its first 72
    // bytes): refused, whatever its owner.
    let e = tm
        .import_key(&ImportKey {
            legacy_id: Some("user-42".into()),
            ..import(&format!("{LEGACY}-ending-two"), "acme")
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.message().contains("legacy_id"), "{e}");
    // Twice in one batch too.
    let e = tm
        .import_keys(&[
            ImportKey {
                legacy_id: Some("user-7".into()),
                ..import(&format!("{LEGACY}-seven-a"), "acme")
            },
            ImportKey {
                legacy_id: Some("user-7".into()),
                ..import(&format!("{LEGACY}-seven-b"), "acme")
            },
        ])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        reason(&tm, &format!("{LEGACY}-seven-a")),
        VerifyReason::NotFound
    );
    // The claim outlives the key, and goes with its tombstone.
    tm.delete_key(&r.id, None).unwrap();
    let again = ImportKey {
        legacy_id: Some("user-42".into()),
        ..import(&format!("{LEGACY}-ending-three"), "acme")
    };
    assert_eq!(
        tm.import_key(&again).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert!(
        tm.lift_tombstone(Some(&format!("{LEGACY}-ending-one")), None, None)
            .unwrap()
    );
    tm.import_key(&again).unwrap();
    let e = tm
        .import_key(&ImportKey {
            legacy_id: Some("bad\u{E0041}id".into()),
            ..import(&format!("{LEGACY}-tagged"), "acme")
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn a_display_prefix_in_irontoken_format_must_be_the_keys_own() {
    let tm = manager();
    let other = tm
        .create_key(&NewKey {
            owner: "a".into(),
            ..Default::default()
        })
        .unwrap();
    let theirs = other.record.display_prefix.clone();
    for shown in [
        theirs.clone(),
        format!("key {theirs}"),
        "sk_live_ABCDEFGH".into(),
    ] {
        let e = tm
            .import_key(&ImportKey {
                display_prefix: Some(shown.clone()),
                ..import(LEGACY, "acme")
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{shown}");
    }
    // Its own is fine, and so is text that names no key.
    let mine = TokenManager::open(":memory:")
        .unwrap()
        .create_key(&NewKey {
            owner: "a".into(),
            ..Default::default()
        })
        .unwrap();
    tm.import_key(&ImportKey {
        display_prefix: Some(mine.record.display_prefix.clone()),
        ..import(&mine.key, "acme")
    })
    .unwrap();
    tm.import_key(&ImportKey {
        display_prefix: Some("old:dev-sk".into()),
        ..import(LEGACY, "acme")
    })
    .unwrap();
}
