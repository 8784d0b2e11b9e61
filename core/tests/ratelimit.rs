//! The rate limiter against the shared GCRA vectors (injected clock, no sleeps).

use irontoken::ratelimit::{Limit, RateLimiter};
use serde_json::Value;

#[test]
fn shared_vectors() {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/ratelimit.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&raw).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let limits: Vec<Limit> = serde_json::from_value(case["limits"].clone()).unwrap();
        let rl = RateLimiter::default();
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let d = rl
                .check("key", &limits, step["now_ms"].as_i64().unwrap())
                .unwrap();
            let got = serde_json::to_value(&d).unwrap();
            assert_eq!(got["allowed"], step["allowed"], "{} step {i}", case["name"]);
            assert_eq!(
                got["retry_after_ms"], step["retry_after_ms"],
                "{} step {i}",
                case["name"]
            );
            assert_eq!(got["limits"], step["limits"], "{} step {i}", case["name"]);
        }
    }
}

mod common;

use irontoken::{ErrorKind, Options, RateLimitStore, RedisLimiter, TokenManager};
use std::time::{Duration, Instant};

fn vector_cases() -> Vec<Value> {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/ratelimit.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&raw).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// Replays every vector through `decide(key, limits, now_ms)`.
fn replay(
    what: &str,
    mut decide: impl FnMut(&str, &[Limit], i64) -> irontoken::ratelimit::Decision,
) {
    for (c, case) in vector_cases().iter().enumerate() {
        let limits: Vec<Limit> = serde_json::from_value(case["limits"].clone()).unwrap();
        let key = format!("vector-{c}");
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let d = decide(&key, &limits, step["now_ms"].as_i64().unwrap());
            let got = serde_json::to_value(&d).unwrap();
            let at = format!("{what}: {} step {i}", case["name"]);
            assert_eq!(got["allowed"], step["allowed"], "{at}");
            assert_eq!(got["retry_after_ms"], step["retry_after_ms"], "{at}");
            assert_eq!(got["limits"], step["limits"], "{at}");
        }
    }
}

/// Each store of a manager (local, its database) gives the vectors' answers.
#[test]
fn shared_vectors_through_the_manager_stores() {
    const T0: i64 = 1_700_000_000;
    for store in [RateLimitStore::Local, RateLimitStore::Store] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rl.db");
        let mut o = Options::default().manual_clock(T0);
        o.rate_limit_store = store.clone();
        let tm = TokenManager::open_with(path.to_str().unwrap(), o).unwrap();
        let clock = tm.manual_clock().unwrap();
        replay(&format!("{store:?}"), |key, limits, now_ms| {
            clock.set_ms(T0 * 1000 + now_ms);
            tm.rate_limit(key, limits).unwrap()
        });
    }
    // The same arithmetic over PostgreSQL's rows and locks.
    if common::postgres_answers() {
        let scratch = common::PgScratch::new();
        let tm =
            TokenManager::open_with(&scratch.url(), Options::default().manual_clock(T0)).unwrap();
        let clock = tm.manual_clock().unwrap();
        replay("postgres", |key, limits, now_ms| {
            clock.set_ms(T0 * 1000 + now_ms);
            tm.rate_limit(key, limits).unwrap()
        });
    }
}

/// Every limiter refuses the same bad input: an empty key (a missing
/// identity would put every such caller in one bucket), a key over 512
/// bytes, a limit name given twice (it would count twice in one bucket),
/// more than 16 limits. The standalone in-process limiter once took all of
/// them while a manager's stores refused them.
#[test]
fn every_limiter_refuses_the_same_keys_and_limit_lists() {
    let one = vec![Limit::new("per_second", 10, 1000, 10).unwrap()];
    let twice = vec![one[0].clone(), one[0].clone()];
    let many: Vec<Limit> = (0..17)
        .map(|i| Limit::new(&format!("l{i}"), 10, 1000, 10).unwrap())
        .collect();
    let long = "k".repeat(irontoken::ratelimit::MAX_KEY_LEN);
    let longer = format!("{long}k");
    let bad: [(&str, &[Limit]); 4] = [("", &one), (&longer, &one), ("k", &twice), ("k", &many)];
    let code =
        |r: irontoken::Result<irontoken::ratelimit::Decision>| r.map(|_| ()).unwrap_err().kind();
    let standalone = RateLimiter::default();
    let shared =
        irontoken::SharedLimiter::open(&RateLimitStore::Local, 1000, Duration::from_secs(1), false)
            .unwrap();
    let managers: Vec<TokenManager> = [RateLimitStore::Local, RateLimitStore::Store]
        .into_iter()
        .map(|store| {
            let mut o = Options::default();
            o.rate_limit_store = store;
            TokenManager::open_with(":memory:", o).unwrap()
        })
        .collect();
    for (key, limits) in bad {
        for consume in [true, false] {
            let at = format!(
                "{} bytes, {} limits, consume {consume}",
                key.len(),
                limits.len()
            );
            assert_eq!(
                code(standalone.decide(key, limits, 0, consume)),
                ErrorKind::InvalidArgument,
                "standalone: {at}"
            );
            let mut out = Vec::new();
            let e = shared.decide_into(key, limits, Some(0), consume, 1, &mut out);
            assert_eq!(
                e.unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "shared: {at}"
            );
            for tm in &managers {
                assert_eq!(
                    code(tm.rate_limit_decide(key, limits, consume)),
                    ErrorKind::InvalidArgument,
                    "manager: {at}"
                );
            }
        }
    }
    if let [one_limit] = one.as_slice() {
        let e = standalone.check_one("", one_limit, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("1-512 bytes"), "{e}");
    }
    // At the bounds: 1 and 512 bytes are keys like any other.
    for key in ["k", long.as_str()] {
        assert!(standalone.check(key, &one, 0).unwrap().allowed);
        for tm in &managers {
            assert!(tm.rate_limit(key, &one).unwrap().allowed);
        }
    }
}

/// Limits checked once (a limiter's own) refuse what every check refuses,
/// and then answer as the per-call path does on every limiter, with only
/// the key checked per call.
#[test]
fn limits_checked_once_refuse_and_answer_like_every_limiter() {
    use irontoken::ratelimit::CheckedLimits;
    let one = Limit::new("per_hour", 3, 3_600_000, 2).unwrap();
    let many: Vec<Limit> = (0..17)
        .map(|i| Limit::new(&format!("l{i}"), 10, 1000, 10).unwrap())
        .collect();
    for bad in [vec![], vec![one.clone(), one.clone()], many] {
        let e = CheckedLimits::new(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
    let mut zero = one.clone();
    zero.count = 0;
    assert_eq!(
        CheckedLimits::new(vec![zero]).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    let checked = CheckedLimits::new(vec![one.clone()]).unwrap();
    assert_eq!(&checked[..], std::slice::from_ref(&one));
    assert_eq!(&checked.shared()[..], std::slice::from_ref(&one));
    let two = CheckedLimits::new(vec![
        one.clone(),
        Limit::new("per_second", 100, 1000, 100).unwrap(),
    ])
    .unwrap();

    // In process: check_single and SharedLimiter::decide_with against check.
    let single = RateLimiter::default();
    let reference = RateLimiter::default();
    let shared =
        irontoken::SharedLimiter::open(&RateLimitStore::Local, 1000, Duration::from_secs(1), false)
            .unwrap();
    let shared_ref =
        irontoken::SharedLimiter::open(&RateLimitStore::Local, 1000, Duration::from_secs(1), false)
            .unwrap();
    for (step, t) in [0, 0, 0, 1_000, 1_200_000, 1_200_001, 3_600_000]
        .iter()
        .enumerate()
    {
        let want = reference.check("k", &checked, *t).unwrap();
        let got = single.check_single("k", &checked, 1, *t).unwrap();
        assert_eq!(got.allowed, want.allowed, "step {step}");
        assert_eq!(got.retry_after_ms, want.retry_after_ms, "step {step}");
        assert_eq!(got.remaining, want.limits[0].remaining, "step {step}");
        assert_eq!(got.reset_ms, want.limits[0].reset_ms, "step {step}");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let with = shared
            .decide_with("k", &two, Some(*t), true, 1, &mut a)
            .unwrap();
        let into = shared_ref
            .decide_into("k", &two, Some(*t), true, 1, &mut b)
            .unwrap();
        assert_eq!((with, a), (into, b), "step {step}");
    }
    assert!(
        single.check_single("k", &two, 1, 0).is_err(),
        "a list of one only"
    );

    // Keys are still checked on every call.
    let longer = "k".repeat(irontoken::ratelimit::MAX_KEY_LEN + 1);
    for key in ["", longer.as_str()] {
        let e = single.check_single(key, &checked, 1, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = shared
            .decide_with(key, &two, None, true, 1, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    // Through a manager's stores: rate_limit_with answers as rate_limit_into.
    for store in [RateLimitStore::Local, RateLimitStore::Store] {
        let open = || {
            let mut o = Options::default();
            o.rate_limit_store = store.clone();
            TokenManager::open_with(":memory:", o).unwrap()
        };
        let (with_tm, into_tm) = (open(), open());
        let mut allowed = 0;
        for i in 0..5 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let with = with_tm
                .rate_limit_with("k", &checked, true, 1, &mut a)
                .unwrap();
            let into = into_tm
                .rate_limit_into("k", &checked, true, 1, &mut b)
                .unwrap();
            assert_eq!(with.0, into.0, "{store:?} call {i}");
            assert_eq!(a[0].remaining, b[0].remaining, "{store:?} call {i}");
            allowed += with.0 as usize;
        }
        // A burst of 2 per hour: two calls allowed, the rest refused.
        assert_eq!(allowed, 2, "{store:?}");
        let e = with_tm
            .rate_limit_with("", &checked, false, 1, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

/// The Lua script gives the vectors' answers (time injected for the replay).
#[test]
fn shared_vectors_through_redis() {
    let Some(base) = common::redis_url() else {
        return;
    };
    let scratch = common::RedisScratch::new(&base, "vectors");
    let rl = RedisLimiter::open(&scratch.url(), Duration::from_secs(2)).unwrap();
    replay("redis", |key, limits, now_ms| {
        // Far from the server's clock: every key's expiry stays in the future.
        let now_ms = 4_000_000_000_000 + now_ms;
        let mut out = Vec::new();
        let (allowed, retry_after_ms) = rl
            .decide_at(key, limits, Some(now_ms), true, 1, &mut out)
            .unwrap();
        irontoken::ratelimit::Decision::from_verdicts(allowed, retry_after_ms, limits, &out)
    });
}

/// On the server's clock: all-or-nothing across named limits, a peek counts
/// nothing, and each bucket's key expires when the bucket is full again.
#[test]
fn redis_limits_are_all_or_nothing_and_expire() {
    let Some(base) = common::redis_url() else {
        return;
    };
    let scratch = common::RedisScratch::new(&base, "expire");
    let mut o = Options::default();
    o.rate_limit_store = RateLimitStore::parse(&scratch.url()).unwrap();
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let limits = [
        Limit::new("per_second", 100, 1000, 100).unwrap(),
        Limit::new("per_minute", 2, 60_000, 2).unwrap(),
    ];
    assert!(tm.rate_limit("k", &limits).unwrap().allowed);
    assert!(tm.rate_limit("k", &limits).unwrap().allowed);
    let denied = tm.rate_limit("k", &limits).unwrap();
    assert!(!denied.allowed);
    assert!(denied.retry_after_ms > 29_000 && denied.retry_after_ms <= 30_000);
    // The refused request took nothing from per_second (98 left, or more
    // if the server's clock refilled some meanwhile: one per 10 ms).
    assert!(denied.limits[0].remaining >= 98, "{denied:?}");
    let p1 = tm.rate_limit_peek("k", &limits).unwrap();
    let p2 = tm.rate_limit_peek("k", &limits).unwrap();
    assert_eq!(p1.limits[1].remaining, p2.limits[1].remaining);
    assert!(!p2.allowed);
    // Two keys, one per limit, each expiring with its bucket.
    let client = redis::Client::open(base.as_str()).unwrap();
    let mut c = client.get_connection().unwrap();
    let keys = scratch.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
        let most = if k.ends_with("per_minute") {
            60_000
        } else {
            1000
        };
        assert!(ttl > 0 && ttl <= most, "{k} ttl {ttl}");
    }
}

/// Redis down: `STORAGE` by default, within the timeout, counted; allowed
/// when fail-open is configured.
#[test]
fn redis_down_is_storage_or_fail_open() {
    let limits = [Limit::new("s", 5, 1000, 5).unwrap()];
    for fail_open in [false, true] {
        let mut o = Options::default();
        // Nothing listens on port 1.
        o.rate_limit_store = RateLimitStore::parse("redis://127.0.0.1:1").unwrap();
        o.rate_limit_timeout = Duration::from_millis(300);
        o.rate_limit_fail_open = fail_open;
        let tm = TokenManager::open_with(":memory:", o).unwrap();
        let start = Instant::now();
        let got = tm.rate_limit("k", &limits);
        assert!(start.elapsed() < Duration::from_secs(2));
        if fail_open {
            // Allowed unchecked, and marked so: not a real allow.
            let d = got.unwrap();
            assert!(d.allowed && d.degraded);
            assert!(
                tm.metrics()
                    .contains("irontoken_rate_limit_fail_open_total 1")
            );
            let again = tm.rate_limit("k", &limits).unwrap();
            assert!(again.degraded);
            // One event per minute while it lasts.
            let events = tm.drain_events(100);
            let opened: Vec<_> = events
                .iter()
                .filter(|e| e.kind == "rate_limit_fail_open")
                .collect();
            assert_eq!(opened.len(), 1, "{events:?}");
            assert_eq!(opened[0].detail["rate_limit_key"], "k");
            // The standalone limiter counts what it let through too.
            let shared = irontoken::SharedLimiter::open(
                &RateLimitStore::Redis("redis://127.0.0.1:1".into()),
                100,
                Duration::from_millis(200),
                true,
            )
            .unwrap();
            let mut out = Vec::new();
            let (ok, _) = shared
                .decide_into("k", &limits, None, true, 1, &mut out)
                .unwrap();
            assert!(ok && out.iter().all(|v| v.degraded));
            assert_eq!(shared.failures(), (1, 1));
        } else {
            let e = got.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage);
            assert!(e.message().contains("Redis"), "{e}");
        }
        let calls = if fail_open { 2 } else { 1 };
        assert!(
            tm.metrics()
                .contains(&format!("irontoken_rate_limit_store_errors_total {calls}"))
        );
    }
    // A URL that is not one is refused when the manager opens.
    let mut o = Options::default();
    o.rate_limit_store = RateLimitStore::Redis("redis://:x@[::1".into());
    assert_eq!(
        TokenManager::open_with(":memory:", o).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

/// Redis killed mid-run: the checks that follow fail with `STORAGE` within
/// the timeout (or are allowed, fail-open), and checks work again once a
/// server answers on the same address. Runs a private `redis-server` on a
/// free port when the binary is installed.
#[test]
fn redis_killed_mid_run_then_back() {
    let Ok(server) = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
    else {
        eprintln!("skipped: no redis-server binary");
        return;
    };
    assert!(server.status.success());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = || {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    };
    let mut server = start();
    let url = format!("redis://127.0.0.1:{port}");
    let limits = [Limit::new("s", 1000, 1000, 1000).unwrap()];
    let strict = irontoken::SharedLimiter::open(
        &RateLimitStore::parse(&url).unwrap(),
        16,
        Duration::from_millis(300),
        false,
    )
    .unwrap();
    let open = irontoken::SharedLimiter::open(
        &RateLimitStore::parse(&url).unwrap(),
        16,
        Duration::from_millis(300),
        true,
    )
    .unwrap();
    let check = |rl: &irontoken::SharedLimiter| {
        let mut out = Vec::new();
        rl.decide_into("k", &limits, None, true, 1, &mut out)
            .map(|(allowed, _)| allowed)
    };
    assert!(check(&strict).unwrap());
    assert!(check(&open).unwrap());
    server.kill().unwrap();
    server.wait().unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let e = check(&strict).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "waited {:?}",
            t.elapsed()
        );
        assert!(check(&open).unwrap(), "fail-open allows");
    }
    assert_eq!(strict.failures().0, 3);
    assert_eq!(open.failures(), (3, 3));
    // Back on the same address: checks work again (new connections).
    let mut server = start();
    assert!(check(&strict).unwrap());
    server.kill().unwrap();
    server.wait().unwrap();
}
