//! Refresh-token families: rotation on every refresh, reuse detection that
//! revokes the family, idle and absolute lifetimes, revocation by family and
//! by subject, four racing refreshes of one token (one wins), and nothing
//! spent when the next pair cannot be made. SQLite, or PostgreSQL when
//! `IRONTOKEN_TEST_STORE=postgres`.

use irontoken::jwt::{Alg, Policy};
use irontoken::refresh::NewTokenPair;
use irontoken::{ErrorKind, Options, TokenManager};
use serde_json::json;

mod common;

const T0: i64 = 1_700_000_000;
const MASTER: &[u8] = b"0123456789abcdef0123456789abcdef";

fn options() -> Options {
    Options::default()
        .manual_clock(T0)
        .master_key(MASTER)
        .unwrap()
}

fn signing(tm: &TokenManager) -> &TokenManager {
    tm.create_signing_key(Alg::EdDSA, None).unwrap();
    tm
}

fn request(subject: &str) -> NewTokenPair {
    NewTokenPair {
        subject: subject.into(),
        scopes: vec!["read".into(), "write".into()],
        claims: json!({"aud": "api", "tenant": "t1"})
            .as_object()
            .unwrap()
            .clone(),
        ..Default::default()
    }
}

fn kind<T: std::fmt::Debug>(r: irontoken::Result<T>) -> ErrorKind {
    r.unwrap_err().kind()
}

#[test]
fn a_refresh_rotates_and_a_reused_token_revokes_the_family() {
    let m = common::open_private(options());
    let tm = signing(&m);
    let first = tm.issue_token_pair(&request("user-1")).unwrap();
    assert_eq!(first.expires_in, 900);
    assert_eq!(first.token_type, "Bearer");
    assert!(first.refresh_token.starts_with("itkrt_"));
    let mut policy = Policy::new(&[Alg::EdDSA]);
    policy.audience = vec!["api".into()];
    let claims = tm.verify_jwt(&first.access_token, &policy).unwrap().claims;
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["fid"], json!(first.family_id));
    assert_eq!(claims["tenant"], "t1");

    tm.advance_clock(60).unwrap();
    let second = tm.refresh_token_pair(&first.refresh_token).unwrap();
    assert_eq!(second.family_id, first.family_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    let fam = tm.get_token_family(&first.family_id).unwrap();
    assert_eq!((fam.generation, fam.status.as_str()), (1, "active"));
    assert_eq!(fam.refreshed_at, T0 + 60);
    let third = tm.refresh_token_pair(&second.refresh_token).unwrap();

    // The first token again: someone else holds it. The family dies,
    // including the live token of whoever refreshed last.
    tm.drain_events(100);
    assert_eq!(
        kind(tm.refresh_token_pair(&first.refresh_token)),
        ErrorKind::RefreshTokenReused
    );
    let fam = tm.get_token_family(&first.family_id).unwrap();
    assert_eq!(fam.status, "revoked");
    assert_eq!(fam.revoke_reason.as_deref(), Some("reuse_detected"));
    assert_eq!(
        kind(tm.refresh_token_pair(&third.refresh_token)),
        ErrorKind::RefreshTokenRevoked
    );
    assert_eq!(
        kind(tm.refresh_token_pair(&first.refresh_token)),
        ErrorKind::RefreshTokenRevoked,
        "reported once; after that the family is simply revoked"
    );
    let events = tm.drain_events(100);
    let reuse: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "refresh_token_reused")
        .collect();
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].detail["family_id"], json!(first.family_id));
    assert_eq!(reuse[0].detail["generation"], 0);
    let audit = tm
        .list_audit(&irontoken::AuditFilter {
            action: Some("token_family.revoke".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(audit.items.len(), 1);
    assert_eq!(audit.items[0].outcome, "reuse_detected");
    assert!(
        tm.metrics()
            .contains("irontoken_refresh_token_reuse_total 1")
    );

    // Other families are untouched.
    let other = tm.issue_token_pair(&request("user-1")).unwrap();
    tm.refresh_token_pair(&other.refresh_token).unwrap();
}

#[test]
fn idle_timeout_and_absolute_lifetime_end_a_family() {
    let m = common::open_private(options());
    let tm = signing(&m);
    let mut req = request("user-2");
    req.refresh_ttl_seconds = Some(100);
    req.family_ttl_seconds = Some(250);
    req.ttl_seconds = Some(3600);
    let p = tm.issue_token_pair(&req).unwrap();
    assert_eq!(
        p.expires_at,
        T0 + 250,
        "an access token never outlives its family"
    );
    assert_eq!(p.refresh_expires_at, T0 + 100);

    // Used within the idle timeout, the family goes on; each refresh slides it.
    tm.advance_clock(90).unwrap();
    let p = tm.refresh_token_pair(&p.refresh_token).unwrap();
    assert_eq!(p.refresh_expires_at, T0 + 190);
    tm.advance_clock(90).unwrap();
    let p = tm.refresh_token_pair(&p.refresh_token).unwrap();
    assert_eq!(p.refresh_expires_at, T0 + 250, "capped at the absolute end");
    tm.advance_clock(80).unwrap(); // T0 + 260: past the absolute end
    assert_eq!(
        kind(tm.refresh_token_pair(&p.refresh_token)),
        ErrorKind::RefreshTokenExpired
    );
    assert_eq!(tm.get_token_family(&p.family_id).unwrap().status, "expired");

    // Not used within the idle timeout.
    let q = tm.issue_token_pair(&req).unwrap();
    tm.advance_clock(101).unwrap();
    assert_eq!(
        kind(tm.refresh_token_pair(&q.refresh_token)),
        ErrorKind::RefreshTokenExpired
    );
    // An expired token spends nothing: it is still "expired", not "reused".
    assert_eq!(
        kind(tm.refresh_token_pair(&q.refresh_token)),
        ErrorKind::RefreshTokenExpired
    );
}

#[test]
fn families_are_revoked_by_id_and_by_subject() {
    let m = common::open_private(options());
    let tm = signing(&m);
    let a = tm.issue_token_pair(&request("alice")).unwrap();
    let b = tm.issue_token_pair(&request("alice")).unwrap();
    let c = tm.issue_token_pair(&request("bob")).unwrap();
    assert!(
        tm.revoke_token_family(&a.family_id, Some("logout"))
            .unwrap()
    );
    assert!(!tm.revoke_token_family(&a.family_id, None).unwrap());
    assert_eq!(
        kind(tm.refresh_token_pair(&a.refresh_token)),
        ErrorKind::RefreshTokenRevoked
    );
    assert_eq!(
        tm.get_token_family(&a.family_id)
            .unwrap()
            .revoke_reason
            .as_deref(),
        Some("logout")
    );
    assert_eq!(tm.revoke_token_families("alice", None).unwrap(), 1);
    assert_eq!(tm.revoke_token_families("alice", None).unwrap(), 0);
    assert_eq!(
        kind(tm.refresh_token_pair(&b.refresh_token)),
        ErrorKind::RefreshTokenRevoked
    );
    tm.refresh_token_pair(&c.refresh_token).unwrap();
    assert_eq!(kind(tm.get_token_family("nope")), ErrorKind::NotFound);
    assert_eq!(
        kind(tm.revoke_token_family(&"x".repeat(36), None)),
        ErrorKind::NotFound
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let m = common::open_private(options());
    let tm = signing(&m);
    let key = tm
        .create_key(&irontoken::NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    let forged = format!("itkrt_{}", "A".repeat(49));
    for token in [
        "",
        "garbage",
        key.key.as_str(),
        forged.as_str(),
        &"itkrt_".repeat(1000),
        "itkrt_\u{0}",
    ] {
        assert_eq!(
            kind(tm.refresh_token_pair(token)),
            ErrorKind::RefreshTokenInvalid
        );
    }
    // A well-formed token this store never issued.
    let stranger = signing(&common::open_private(options()).tm)
        .issue_token_pair(&request("x"))
        .unwrap();
    let e = tm.refresh_token_pair(&stranger.refresh_token).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RefreshTokenInvalid);
    assert!(!e.to_string().contains(&stranger.refresh_token[6..]));

    let bad = |f: &dyn Fn(&mut NewTokenPair)| {
        let mut r = request("user");
        f(&mut r);
        kind(tm.issue_token_pair(&r))
    };
    for claim in ["sub", "exp", "jti", "fid", "scope", "iat", "nbf"] {
        assert_eq!(
            bad(&|r| {
                r.claims.insert(claim.into(), json!(1));
            }),
            ErrorKind::InvalidArgument,
            "{claim}"
        );
    }
    assert_eq!(bad(&|r| r.subject.clear()), ErrorKind::InvalidArgument);
    assert_eq!(
        bad(&|r| r.subject = "s".repeat(257)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        bad(&|r| r.ttl_seconds = Some(0)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        bad(&|r| r.refresh_ttl_seconds = Some(-1)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        bad(&|r| r.family_ttl_seconds = Some(400 * 86_400)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        bad(&|r| r.scopes = vec!["has space".into()]),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        bad(&|r| {
            r.claims.insert("big".into(), json!("x".repeat(9000)));
        }),
        ErrorKind::InvalidArgument
    );
    let audit = tm
        .list_audit(&irontoken::AuditFilter {
            action: Some("token_family.create".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(audit.items.is_empty(), "refused requests leave no family");
}

#[test]
fn nothing_is_spent_when_the_next_pair_cannot_be_signed() {
    let m = common::open_private(options());
    // No signing key: no family either.
    assert_eq!(
        kind(m.issue_token_pair(&request("u"))),
        ErrorKind::NoActiveSigningKey
    );
    let key = m.create_signing_key(Alg::ES256, None).unwrap();
    let p = m.issue_token_pair(&request("u")).unwrap();
    m.retire_signing_key(&key.kid, None).unwrap();
    assert_eq!(
        kind(m.refresh_token_pair(&p.refresh_token)),
        ErrorKind::NoActiveSigningKey
    );
    // The token was not spent: with a key again it refreshes (no reuse).
    m.create_signing_key(Alg::ES256, None).unwrap();
    let next = m.refresh_token_pair(&p.refresh_token).unwrap();
    m.refresh_token_pair(&next.refresh_token).unwrap();
}

#[test]
fn four_racing_refreshes_of_one_token_one_wins() {
    let shared = common::shared_store();
    let open = || TokenManager::open_with(&shared.url, options()).unwrap();
    let tm = open();
    signing(&tm);
    for round in 0..3 {
        let p = tm.issue_token_pair(&request("racer")).unwrap();
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let token = p.refresh_token.clone();
                    let open = &open;
                    s.spawn(move || open().refresh_token_pair(&token))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        // The first loser finds the token spent and revokes the family; a
        // loser after it finds the family revoked.
        let lost: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.kind()))
            .collect();
        assert!(lost.contains(&ErrorKind::RefreshTokenReused), "{lost:?}");
        assert!(
            lost.iter().all(|k| matches!(
                k,
                ErrorKind::RefreshTokenReused | ErrorKind::RefreshTokenRevoked
            )),
            "{lost:?}"
        );
        // The losers revoked the family: the winner's token is refused too.
        assert_eq!(
            kind(tm.refresh_token_pair(&won[0].refresh_token)),
            ErrorKind::RefreshTokenRevoked
        );
    }
}

#[test]
fn the_store_keeps_only_hashes() {
    if common::on_postgres() {
        return; // Why: reads the SQLite file's bytes; PostgreSQL stores the same columns.
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let tm = TokenManager::open_with(path.to_str().unwrap(), options()).unwrap();
    signing(&tm);
    let p = tm.issue_token_pair(&request("u")).unwrap();
    let q = tm.refresh_token_pair(&p.refresh_token).unwrap();
    drop(tm);
    let mut bytes = Vec::new();
    for f in ["t.db", "t.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(f)) {
            bytes.extend(b);
        }
    }
    for secret in [&p.refresh_token, &q.refresh_token] {
        let body = &secret.as_bytes()[6..30];
        assert!(!bytes.windows(body.len()).any(|w| w == body));
    }
}
