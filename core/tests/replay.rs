//! One-time ids (`claim_jti`): the first claim wins and every later one is
//! refused, across managers standing in for processes on one store, under
//! a race of four threads, on SQLite, PostgreSQL and Redis.

use irontoken::{ErrorKind, Options, RateLimitStore, TokenManager};

mod common;

fn race(open: impl Fn() -> TokenManager + Sync, jti: &str, exp: i64) -> usize {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let open = &open;
                s.spawn(move || open().claim_jti(jti, exp).unwrap())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    })
}

#[test]
fn the_first_claim_wins_on_the_store() {
    let shared = common::shared_store();
    let open = || TokenManager::open(&shared.url).unwrap();
    let (a, b) = (open(), open());
    let exp = a.now() + 600;
    assert!(a.claim_jti("jti-1", exp).unwrap());
    assert!(
        !b.claim_jti("jti-1", exp).unwrap(),
        "replayed in another manager"
    );
    assert!(
        !a.claim_jti("jti-1", exp + 60).unwrap(),
        "a later expiry changes nothing"
    );
    assert!(b.claim_jti("jti-2", exp).unwrap());
    assert_eq!(
        race(open, "jti-raced", exp),
        1,
        "exactly one of four racing claims"
    );
    // Bad input is refused, nothing is claimed.
    for (jti, exp) in [
        ("", exp),
        (&"x".repeat(1025), exp),
        ("far", a.now() + 400 * 86_400),
    ] {
        assert_eq!(
            a.claim_jti(jti, exp).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    assert!(a.claim_jti("far", exp).unwrap());
}

#[test]
fn the_first_claim_wins_on_redis() {
    let Some(base) = common::redis_url() else {
        return;
    };
    let scratch = common::RedisScratch::new(&base, "jti");
    let open = || {
        let mut o = Options::default();
        o.rate_limit_store = RateLimitStore::parse(&scratch.url()).unwrap();
        // Two managers on two databases: only Redis is shared.
        TokenManager::open_with(":memory:", o).unwrap()
    };
    let (a, b) = (open(), open());
    let exp = a.now() + 600;
    assert!(a.claim_jti("jti-1", exp).unwrap());
    assert!(!b.claim_jti("jti-1", exp).unwrap());
    assert_eq!(race(open, "jti-raced", exp), 1);
    // Kept on the server until the expiry plus the grace, then gone by itself.
    assert_eq!(scratch.keys().len(), 2);
}

#[test]
fn a_one_time_jwt_is_accepted_once() {
    let shared = common::shared_store();
    let open = || {
        TokenManager::open_with(
            &shared.url,
            Options::default().master_key(&[7u8; 32]).unwrap(),
        )
        .unwrap()
    };
    let (a, b) = (open(), open());
    a.create_signing_key(irontoken::jwt::Alg::EdDSA, None)
        .unwrap();
    let policy = irontoken::jwt::Policy::new(&[irontoken::jwt::Alg::EdDSA]);
    let claims = |jti: Option<&str>| {
        let mut c = serde_json::Map::new();
        c.insert("sub".into(), "alice".into());
        if let Some(j) = jti {
            c.insert("jti".into(), j.into());
        }
        c
    };
    let token = a.issue_jwt(&claims(Some("once-1")), Some(600)).unwrap();
    assert_eq!(
        b.verify_jwt_once(&token, &policy).unwrap().claims["sub"],
        "alice"
    );
    let e = a.verify_jwt_once(&token, &policy).unwrap_err();
    assert_eq!((e.kind(), e.claim()), (ErrorKind::JwtReplayed, Some("jti")));
    // Plain verification is not affected (issued tokens always carry a jti).
    assert!(a.verify_jwt(&token, &policy).is_ok());
    let bare = a.issue_jwt(&claims(None), Some(600)).unwrap();
    assert!(a.verify_jwt_once(&bare, &policy).is_ok());
    assert!(a.verify_jwt_once(&bare, &policy).is_err());
    // A forged token claims nothing: its jti stays free for the real one.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let fresh = a.issue_jwt(&claims(Some("once-2")), Some(600)).unwrap();
    let forged_fresh = format!(
        "{}{}",
        &fresh[..fresh.len() - 2],
        if fresh.ends_with("AA") { "BB" } else { "AA" }
    );
    assert!(a.verify_jwt_once(&forged, &policy).is_err());
    assert!(a.verify_jwt_once(&forged_fresh, &policy).is_err());
    assert!(b.verify_jwt_once(&fresh, &policy).is_ok());
}
