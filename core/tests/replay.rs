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
