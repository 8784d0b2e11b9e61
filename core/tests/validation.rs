//! Bad input is refused with a stable code and changes nothing: the bounds of
//! every field, option and time, and names that could trick a terminal.

use irontoken::{
    AuditFilter, ErrorKind, KeyFilter, KeyUpdate, NewKey, OpenSettings, Options, TokenManager,
};
use serde_json::json;
use std::time::Duration;

mod common;
use common::fixtures::*;

const T0: i64 = KEYS_T0;

/// Item 1: Numeric options out of range are INVALID_ARGUMENT, never a panic
/// inside SQLite's binding (busy_timeout >= 2^31 ms did that).
#[test]
fn numeric_options_are_bounded() {
    for json in [
        r#"{"busy_timeout_ms": 2147483648}"#,
        r#"{"busy_timeout_ms": 18446744073709551615}"#,
        r#"{"flush_interval_ms": 0}"#,
        r#"{"flush_interval_ms": 99999999999}"#,
    ] {
        let s: OpenSettings = serde_json::from_str(json).unwrap();
        let e = s
            .into_options()
            .and_then(|o| TokenManager::open_with(":memory:", o))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{json}");
    }
    for o in [
        Options::default().busy_timeout(Duration::from_secs(1 << 40)),
        Options::default().flush_interval(Duration::from_secs(1 << 40)),
    ] {
        let e = TokenManager::open_with(":memory:", o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

/// Item 7: names refuse control, bidi and invisible characters; free text
/// keeps newlines and tabs but refuses bidi overrides.
#[test]
fn names_refuse_terminal_tricks() {
    let tm = TokenManager::open(":memory:").unwrap();
    for owner in [
        "a\nb",
        "a\tb",
        "a\u{202e}b",
        "a\u{200b}",
        "\u{feff}a",
        "a\u{2066}b",
        // Tag characters hide text; line and paragraph separators break it.
        "admin\u{E0041}\u{E0042}",
        "a\u{E007F}",
        "a\u{2028}b",
        "a\u{2029}b",
        "a\u{3164}",
    ] {
        let e = tm
            .create_key(&NewKey {
                owner: owner.into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{owner:?}");
    }
    for scope in [
        "read\u{202e}",
        "x\u{200d}y",
        "read\u{E0001}",
        "read\u{2028}",
    ] {
        let e = tm
            .create_key(&NewKey {
                owner: "o".into(),
                scopes: vec![scope.into()],
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{scope:?}");
    }
    let e = tm
        .create_key(&NewKey {
            owner: "o".into(),
            actor: Some("ops\u{E0020}".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    tm.create_key(&NewKey {
        owner: "o".into(),
        description: "line one\n\tline two".into(),
        ..Default::default()
    })
    .unwrap();
    let e = tm
        .create_key(&NewKey {
            owner: "o".into(),
            description: "safe \u{202e}txt.exe".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

/// Expiries and token lifetimes stop at 9999-12-31T23:59:59Z: past it they
/// are INVALID_ARGUMENT naming the field, never saturated to i64::MAX (a JS
/// number cannot hold it, Python's datetime cannot show it) and never
/// wrapped (`exchange_api_key` with ttl 2^63-1 signed `exp` = -9.2e18).
#[test]
fn times_past_the_year_9999_are_refused() {
    use irontoken::{
        AgentTokenRequest, ImportKey, KeyUpdate, MAX_TIME, NewBudget, NewSession, RotateOptions,
        jwt::Alg,
    };
    const NOW: i64 = 1_700_000_000;
    let tm = TokenManager::open_with(
        ":memory:",
        Options::default()
            .manual_clock(NOW)
            .master_key(&[7; 32])
            .unwrap(),
    )
    .unwrap();
    let invalid = |r: irontoken::Result<_>, field: &str| {
        let e = r.map(|_: ()| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    };
    let new = |expires_at, expires_in| NewKey {
        owner: "o".into(),
        expires_at,
        expires_in,
        ..Default::default()
    };
    // The last second is accepted, exactly as given.
    let last = tm.create_key(&new(Some(MAX_TIME), None)).unwrap();
    assert_eq!(last.record.expires_at, Some(MAX_TIME));
    let k = tm
        .create_key(&new(None, Some(MAX_TIME - NOW)))
        .unwrap()
        .record;
    assert_eq!(k.expires_at, Some(MAX_TIME));
    invalid(
        tm.create_key(&new(Some(MAX_TIME + 1), None)).map(drop),
        "expires_at",
    );
    invalid(
        tm.create_key(&new(None, Some(MAX_TIME - NOW + 1)))
            .map(drop),
        "expires_in",
    );
    invalid(
        tm.create_key(&new(None, Some(i64::MAX))).map(drop),
        "expires_in",
    );
    let import = ImportKey {
        key: Some("legacy-key-0123456789abcdef".into()),
        owner: "o".into(),
        expires_at: Some(i64::MAX),
        ..Default::default()
    };
    invalid(tm.import_key(&import).map(drop), "expires_at");
    let update = KeyUpdate {
        expires_at: Some(Some(MAX_TIME + 1)),
        ..Default::default()
    };
    invalid(tm.update_key(&k.id, &update).map(drop), "expires_at");
    let rotate = |expires_at, overlap_seconds| RotateOptions {
        expires_at,
        overlap_seconds,
        ..Default::default()
    };
    invalid(
        tm.rotate_key(&k.id, &rotate(Some(Some(i64::MAX)), 0))
            .map(drop),
        "expires_at",
    );
    invalid(
        tm.rotate_key(&k.id, &rotate(None, i64::MAX)).map(drop),
        "overlap_seconds",
    );
    // Nothing was written by the refusals: the key rotates once, now, and
    // the successor's inherited lifetime ends no later than MAX_TIME.
    let next = tm.rotate_key(&last.record.id, &rotate(None, 60)).unwrap();
    assert_eq!(next.record.expires_at, Some(MAX_TIME));
    assert_eq!(
        tm.get_key(&last.record.id).unwrap().expires_at,
        Some(NOW + 60)
    );
    let session = |ttl_seconds, idle_timeout_seconds| NewSession {
        owner: "o".into(),
        ttl_seconds,
        idle_timeout_seconds,
        ..Default::default()
    };
    invalid(
        tm.create_session(&session(Some(i64::MAX), None)).map(drop),
        "ttl_seconds",
    );
    invalid(
        tm.create_session(&session(None, Some(i64::MAX))).map(drop),
        "idle_timeout_seconds",
    );
    let s = tm
        .create_session(&session(Some(MAX_TIME - NOW), None))
        .unwrap();
    assert_eq!(s.expires_at, Some(MAX_TIME));
    tm.create_signing_key(Alg::ES256, None).unwrap();
    invalid(
        tm.issue_jwt(&Default::default(), Some(i64::MAX)).map(drop),
        "ttl_seconds",
    );
    let key = tm.create_key(&new(None, None)).unwrap().key;
    invalid(
        tm.exchange_api_key(&key, &[], Some(i64::MAX)).map(drop),
        "ttl_seconds",
    );
    let t = tm.exchange_api_key(&key, &[], Some(3600)).unwrap();
    assert_eq!(t.expires_at, NOW + 3600);
    let b = tm
        .create_budget(&NewBudget {
            owner: "o".into(),
            limit_micros: 10,
            ..Default::default()
        })
        .unwrap();
    let agent = |ttl_seconds| AgentTokenRequest {
        agent_id: "a".into(),
        budget_id: b.id.clone(),
        ttl_seconds,
        ..Default::default()
    };
    invalid(
        tm.issue_agent_token(&agent(Some(i64::MAX))).map(drop),
        "ttl_seconds",
    );
    tm.issue_agent_token(&agent(Some(MAX_TIME - NOW))).unwrap();
}

/// Mutants missed (make mutants): bounds of names, metadata and actors.
#[test]
fn field_bounds_are_exact() {
    use irontoken::ErrorKind;
    let tm = TokenManager::open(":memory:").unwrap();
    let create = |owner: String, actor: Option<String>, meta_bytes: usize| {
        let mut metadata = serde_json::Map::new();
        if meta_bytes > 0 {
            metadata.insert("pad".into(), "x".repeat(meta_bytes).into());
        }
        tm.create_key(&NewKey {
            owner,
            actor,
            metadata: Some(metadata),
            ..Default::default()
        })
    };
    // Owner: 1-256 characters, both ends included.
    assert!(create("o".repeat(256), None, 0).is_ok());
    let e = create("o".repeat(257), None, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // Metadata: up to 16 KiB of JSON.
    assert!(create("m".into(), None, 10_000).is_ok());
    let e = create("m".into(), None, 17_000).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // Actors are checked like names.
    for actor in ["", "ops\nFAKE", "a\u{202e}b"] {
        let e = create("a".into(), Some(actor.into()), 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{actor:?}");
    }
    assert!(create("a".into(), Some("a".repeat(256)), 0).is_ok());
    assert!(create("a".into(), Some("a".repeat(257)), 0).is_err());
}

/// Mutants missed (make mutants, shard 1/32): id, scope and metadata bounds.
#[test]
fn id_scope_and_metadata_bounds_are_exact() {
    use irontoken::ErrorKind;
    let tm = TokenManager::open(":memory:").unwrap();
    // Ids: up to 64 characters are looked up; longer ones are refused.
    assert_eq!(
        tm.get_key(&"i".repeat(64)).unwrap_err().kind(),
        ErrorKind::KeyNotFound
    );
    for n in [65, 200] {
        assert_eq!(
            tm.get_key(&"i".repeat(n)).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    let with_scopes = |scopes: Vec<String>| {
        tm.create_key(&NewKey {
            owner: "o".into(),
            scopes,
            ..Default::default()
        })
    };
    // At most 64 scopes of 1-128 bytes each.
    assert!(with_scopes((0..64).map(|i| format!("s{i}")).collect()).is_ok());
    assert!(with_scopes((0..65).map(|i| format!("s{i}")).collect()).is_err());
    assert!(with_scopes(vec!["s".repeat(128)]).is_ok());
    assert!(with_scopes(vec!["s".repeat(129)]).is_err());
    assert!(with_scopes(vec![String::new()]).is_err());
    // Metadata: exactly 16 KiB of JSON is accepted, one byte more is not.
    let meta = |n: usize| {
        // {"p":"…"} is 8 bytes around the value.
        let mut m = serde_json::Map::new();
        m.insert("p".into(), "x".repeat(n - 8).into());
        tm.create_key(&NewKey {
            owner: "o".into(),
            metadata: Some(m),
            ..Default::default()
        })
    };
    assert!(meta(16 * 1024).is_ok());
    assert!(meta(16 * 1024 + 1).is_err());
}

/// Mutant missed (shard 2/32): an explicit expiry in the future is taken,
/// one at or before now is refused.
#[test]
fn explicit_expiry_must_be_in_the_future() {
    use irontoken::{ErrorKind, Options};
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(1_800_000_000))
        .unwrap();
    let at = |t: i64| {
        tm.create_key(&NewKey {
            owner: "o".into(),
            expires_at: Some(t),
            ..Default::default()
        })
    };
    let k = at(1_800_000_060).unwrap();
    assert_eq!(k.record.expires_at, Some(1_800_000_060));
    for t in [1_800_000_000, 1_799_999_999] {
        assert_eq!(at(t).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
    tm.advance_clock(60).unwrap();
    assert!(!tm.verify_key(&k.key, &[]).unwrap().valid);
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
