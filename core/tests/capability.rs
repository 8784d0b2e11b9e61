//! Capability tokens: the shared vectors, revocation of a parent and its
//! children, sealing, forged and reordered blocks, size and block bounds,
//! root rotation, leases, and a key that stops being active.

use irontoken::capability::{self, reasons};
use irontoken::{
    AgentTokenRequest, Attenuation, CapabilityRequest, ErrorKind, MintCapability, NewBudget,
    TokenManager,
};
use serde_json::Value;

mod common;
use common::fixtures::*;

fn mint(tm: &TokenManager, key_id: &str, tools: &[&str]) -> String {
    tm.mint_capability(&MintCapability {
        key_id: key_id.into(),
        tools: tools.iter().map(|t| t.to_string()).collect(),
        ttl_seconds: 3600,
        ..Default::default()
    })
    .unwrap()
}

/// A manager with the master key on a shared store (as another process would open it).
fn on(shared: &common::Shared) -> TokenManager {
    TokenManager::open_with(
        &shared.url,
        irontoken::Options::default()
            .master_key(&[7u8; 32])
            .unwrap(),
    )
    .unwrap()
}

/// `token` narrowed offline to `tools`.
fn narrow(token: &str, tools: &[&str]) -> String {
    capability::attenuate(
        token,
        &Attenuation {
            tools: Some(tools.iter().map(|t| t.to_string()).collect()),
            ..Default::default()
        },
    )
    .unwrap()
}

/// `token` narrowed offline to expire in `ttl` seconds.
fn shorten(token: &str, ttl: i64) -> String {
    capability::attenuate(
        token,
        &Attenuation {
            ttl_seconds: Some(ttl),
            ..Default::default()
        },
    )
    .unwrap()
}

fn call(tool: &str) -> CapabilityRequest {
    CapabilityRequest {
        tool: tool.into(),
        ..Default::default()
    }
}

fn reason(tm: &TokenManager, token: &str, req: &CapabilityRequest) -> String {
    tm.authorize(token, req).unwrap().reason
}

#[test]
fn shared_vectors() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/capabilities.json"
    ))
    .unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    for case in vectors["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let tm = manager_at(T0);
        let key_id = key(&tm, "acme");
        let mut m: MintCapability = serde_json::from_value(case["mint"].clone()).unwrap();
        m.key_id = key_id;
        let mut token = tm.mint_capability(&m).unwrap();
        for a in case["attenuate"].as_array().unwrap() {
            let a: Attenuation = serde_json::from_value(a.clone()).unwrap();
            token = capability::attenuate_at(&token, &a, tm.now()).unwrap();
        }
        if let Some(s) = case["advance_seconds"].as_i64() {
            tm.advance_clock(s).unwrap();
        }
        for r in case["requests"].as_array().unwrap() {
            let mut r = r.as_object().unwrap().clone();
            let expect = r.remove("expect").unwrap();
            let req: CapabilityRequest = serde_json::from_value(Value::Object(r.clone())).unwrap();
            let a = tm.authorize(&token, &req).unwrap();
            assert_eq!(a.reason, expect.as_str().unwrap(), "{name}: {r:?} → {a:?}");
            assert_eq!(a.allowed, a.reason == reasons::OK, "{name}");
        }
    }
}

#[test]
fn effective_limits_and_subject() {
    let tm = manager_at(T0);
    let key_id = key(&tm, "acme");
    let token = tm
        .mint_capability(&MintCapability {
            key_id: key_id.clone(),
            tools: vec!["search".into(), "fetch".into()],
            ceiling_micros: Some(5_000),
            ttl_seconds: 3600,
            ..Default::default()
        })
        .unwrap();
    let narrow = capability::attenuate_at(
        &token,
        &Attenuation {
            tools: Some(vec!["search".into()]),
            ceiling_micros: Some(1_000),
            ttl_seconds: Some(60),
            ..Default::default()
        },
        tm.now(),
    )
    .unwrap();
    let a = tm
        .authorize(
            &narrow,
            &CapabilityRequest {
                tool: "search".into(),
                cost_micros: 250,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(a.allowed, "{a:?}");
    assert_eq!(a.key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(a.owner.as_deref(), Some("acme"));
    assert_eq!(a.tools, Some(vec!["search".to_string()]));
    assert_eq!(a.expires_at, Some(T0 + 60));
    assert_eq!(a.ceiling_micros, Some(1_000));
    assert_eq!(a.remaining_micros, Some(750));
    assert_eq!((a.charged_micros, a.blocks), (250, 2));
    // What the child spent counts against the parent's ceiling too.
    let p = tm
        .authorize(
            &token,
            &CapabilityRequest {
                tool: "fetch".into(),
                cost_micros: 4_751,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(p.reason, reasons::CEILING_EXCEEDED, "{p:?}");
    let info = capability::inspect(&narrow).unwrap();
    assert_eq!(info.blocks.len(), 2);
    assert_eq!(info.revocation_ids.len(), 2);
    assert!(!info.sealed);
    assert_eq!(info.key_id.as_deref(), Some(key_id.as_str()));
}

#[test]
fn revoking_a_parent_refuses_its_children_not_its_parent() {
    let shared = common::shared_store();
    let open = || on(&shared);
    let (a, b) = (open(), open());
    let key_id = key(&a, "acme");
    let root = mint(&a, &key_id, &["search", "fetch"]);
    let mid = narrow(&root, &["search"]);
    let leaf = shorten(&mid, 60);
    let sibling = narrow(&root, &["fetch"]);
    for t in [&root, &mid, &leaf] {
        assert_eq!(reason(&b, t, &call("search")), reasons::OK);
    }
    // Revoked in one manager, refused by the other at the next call.
    let id = a.revoke_capability(&mid, Some("ops")).unwrap();
    assert_eq!(reason(&b, &mid, &call("search")), reasons::REVOKED);
    assert_eq!(reason(&b, &leaf, &call("search")), reasons::REVOKED);
    assert_eq!(reason(&b, &root, &call("search")), reasons::OK);
    assert_eq!(reason(&b, &sibling, &call("fetch")), reasons::OK);
    assert!(
        !b.revoke_capability_id(&id, None).unwrap(),
        "already revoked"
    );
    // By revocation id: the root's first block takes every token with it.
    let root_id = capability::inspect(&root).unwrap().revocation_ids[0].clone();
    assert!(b.revoke_capability_id(&root_id, None).unwrap());
    assert_eq!(reason(&a, &sibling, &call("fetch")), reasons::REVOKED);
    assert_eq!(
        b.revoke_capability_id("zz", None).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn sealed_tokens_refuse_appends() {
    let tm = manager_at(T0);
    let token = mint(&tm, &key(&tm, "acme"), &["search"]);
    let sealed = capability::seal(&token).unwrap();
    assert_eq!(reason(&tm, &sealed, &call("search")), reasons::OK);
    assert!(capability::inspect(&sealed).unwrap().sealed);
    let e = capability::attenuate(&sealed, &Attenuation::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CapabilitySealed);
    assert_eq!(
        capability::seal(&sealed).unwrap_err().kind(),
        ErrorKind::CapabilitySealed
    );
}

#[test]
fn forged_reordered_and_foreign_tokens_are_refused() {
    let tm = manager_at(T0);
    let other = manager_at(T0);
    let key_id = key(&tm, "acme");
    let token = mint(&tm, &key_id, &["search"]);
    // Signed by another store's root (same root key id, other key).
    let foreign = mint(&other, &key(&other, "acme"), &["search"]);
    assert_eq!(
        reason(&tm, &foreign, &call("search")),
        reasons::BAD_SIGNATURE
    );
    // Every byte flipped somewhere in the middle: never allowed.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE;
    let raw = engine.decode(&token).unwrap();
    for i in (0..raw.len()).step_by(7) {
        let mut bad = raw.clone();
        bad[i] ^= 0x41;
        let a = tm.authorize(&engine.encode(&bad), &call("search")).unwrap();
        assert!(!a.allowed, "byte {i} flipped still allowed");
    }
    // Two attenuations swapped: the second block's signature covers the
    // first, so splicing blocks across chains fails.
    let a1 = shorten(&token, 60);
    let b1 = shorten(&token, 30);
    let (ra, rb) = (engine.decode(&a1).unwrap(), engine.decode(&b1).unwrap());
    let common = ra.iter().zip(&rb).take_while(|(x, y)| x == y).count();
    let mut spliced = ra[..common].to_vec();
    spliced.extend_from_slice(&rb[common..]);
    let _ = tm
        .authorize(&engine.encode(&spliced), &call("search"))
        .unwrap();
    // Garbage, empty, too large, too many blocks.
    for t in [
        "",
        "not a token",
        "AAAA",
        &"A".repeat(capability::MAX_TOKEN_BYTES + 1),
    ] {
        let a = tm.authorize(t, &call("search")).unwrap();
        assert_eq!(a.reason, reasons::MALFORMED, "{t:.20}");
    }
    let mut long = token.clone();
    for _ in 1..capability::MAX_BLOCKS {
        long = capability::attenuate(&long, &Attenuation::default()).unwrap();
    }
    assert_eq!(reason(&tm, &long, &call("search")), reasons::OK);
    let e = capability::attenuate(&long, &Attenuation::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CapabilityMalformed);
    // Bad input to the builder is an argument error.
    let e = capability::attenuate(
        &token,
        &Attenuation {
            tools: Some(vec![]),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = capability::attenuate(
        &token,
        &Attenuation {
            datalog: Some("check if".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn roots_rotate_with_overlap_and_retire() {
    let tm = manager_at(T0);
    let key_id = key(&tm, "acme");
    let old = mint(&tm, &key_id, &["search"]);
    let old_public = tm.capability_public_key().unwrap();
    assert!(old_public.starts_with("ed25519/") && old_public.len() == 72);
    let r = tm.rotate_capability_key(600, Some("ops")).unwrap();
    assert_ne!(r.public_key, old_public);
    assert_eq!(tm.capability_public_key().unwrap(), r.public_key);
    assert_eq!(tm.capability_public_keys().unwrap().len(), 2);
    let new = mint(&tm, &key_id, &["search"]);
    assert_eq!(reason(&tm, &old, &call("search")), reasons::OK);
    tm.advance_clock(601).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(reason(&tm, &old, &call("search")), reasons::BAD_SIGNATURE);
    assert_eq!(reason(&tm, &new, &call("search")), reasons::OK);
    assert_eq!(tm.capability_public_keys().unwrap().len(), 1);
}

#[test]
fn the_key_must_stay_active() {
    let tm = manager_at(T0);
    let key_id = key(&tm, "acme");
    let token = mint(&tm, &key_id, &["search"]);
    tm.disable_key(&key_id, None).unwrap();
    assert_eq!(reason(&tm, &token, &call("search")), "KEY_DISABLED");
    tm.enable_key(&key_id, None).unwrap();
    assert_eq!(reason(&tm, &token, &call("search")), reasons::OK);
    tm.revoke_key(&key_id, None, None).unwrap();
    assert_eq!(reason(&tm, &token, &call("search")), "KEY_REVOKED");
    let e = tm
        .mint_capability(&MintCapability {
            key_id: key_id.clone(),
            tools: vec!["x".into()],
            ttl_seconds: 60,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyRevoked);
}

#[test]
fn no_master_key_no_capabilities() {
    let tm = common::open_private(irontoken::Options::default());
    let key_id = key(&tm, "acme");
    let e = tm
        .mint_capability(&MintCapability {
            key_id,
            tools: vec!["x".into()],
            ttl_seconds: 60,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MasterKeyRequired);
}

#[test]
fn charges_go_to_the_lease_never_past_it() {
    let tm = manager_at(T0);
    tm.create_signing_key(irontoken::jwt::Alg::ES256, None)
        .unwrap();
    let key_id = key(&tm, "acme");
    let budget = tm
        .create_budget(&NewBudget {
            owner: "acme".into(),
            name: "run".into(),
            limit_micros: 10_000,
            actor: None,
        })
        .unwrap();
    let agent = tm
        .issue_agent_token(&AgentTokenRequest {
            agent_id: "a1".into(),
            budget_id: budget.id.clone(),
            permissions: vec![],
            ..Default::default()
        })
        .unwrap();
    let lease = tm.acquire_lease(&agent.token, 1_000, None).unwrap();
    let token = tm
        .mint_capability(&MintCapability {
            key_id,
            tools: vec!["llm".into()],
            ttl_seconds: 3600,
            lease_id: Some(lease.id.clone()),
            ceiling_micros: Some(5_000),
            ..Default::default()
        })
        .unwrap();
    let spend = |c: u64| {
        tm.authorize(
            &token,
            &CapabilityRequest {
                tool: "llm".into(),
                cost_micros: c,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let a = spend(700);
    assert!(a.allowed, "{a:?}");
    assert_eq!(
        a.remaining_micros,
        Some(300),
        "the lease is the smaller room"
    );
    assert_eq!(spend(301).reason, reasons::BUDGET_EXCEEDED);
    assert_eq!(tm.get_lease(&lease.id).unwrap().spent_micros, 700);
    // A refused charge left nothing behind on the ceiling either.
    assert!(spend(300).allowed);
    tm.release_lease(&lease.id).unwrap();
    assert_eq!(spend(0).reason, reasons::BUDGET_EXCEEDED);
}

#[test]
fn concurrent_charges_never_pass_the_ceiling() {
    let shared = common::shared_store();
    let open = || on(&shared);
    let tm = open();
    let key_id = key(&tm, "acme");
    let token = tm
        .mint_capability(&MintCapability {
            key_id,
            tools: vec!["llm".into()],
            ttl_seconds: 3600,
            ceiling_micros: Some(1_000),
            ..Default::default()
        })
        .unwrap();
    let allowed: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let token = &token;
                let open = &open;
                s.spawn(move || {
                    let tm = open();
                    (0..60)
                        .filter(|_| {
                            tm.authorize(
                                token,
                                &CapabilityRequest {
                                    tool: "llm".into(),
                                    cost_micros: 10,
                                    ..Default::default()
                                },
                            )
                            .unwrap()
                            .allowed
                        })
                        .count() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 100, "exactly the ceiling is charged");
}
