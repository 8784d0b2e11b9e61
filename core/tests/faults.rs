//! The fleet path under real faults: a TCP proxy ([`common::proxy`])
//! between managers and PostgreSQL or Redis refuses, resets, pauses
//! (black-holes) and slows connections. Every bound is asserted as a ratio
//! of the configured timeout, never as an absolute time. Skipped, with one
//! line, when no PostgreSQL (or Redis) answers.

mod common;

use common::proxy::{Mode, Proxy};
use common::{PgScratch, postgres_answers};
use irontoken::{Amounts, ErrorKind, NewKey, Options, TokenManager};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const STORAGE_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_STALENESS: Duration = Duration::from_millis(400);
/// One request.
const REQ1: Amounts = Amounts {
    requests: 1,
    tokens: 0,
    cost_micros: 0,
};

/// A call answers within this many storage timeouts (slack for a loaded
/// 2-core machine).
const RATIO: f64 = 1.5;

/// The PostgreSQL server's address, and the rest of the test URL after it.
fn pg_upstream() -> (std::net::SocketAddr, String, String) {
    let base = common::postgres_base();
    let (scheme, rest) = base.split_once("://").unwrap();
    let (user, hostpath) = rest.split_once('@').unwrap();
    let (hostport, path) = hostpath.split_once('/').unwrap();
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    let addr = hostport.to_socket_addrs().unwrap().next().unwrap();
    (addr, format!("{scheme}://{user}@"), format!("/{path}"))
}

/// A scratch schema and a proxy in front of its server; `None` (skipped,
/// one line said) when no PostgreSQL answers.
fn behind_proxy() -> Option<(PgScratch, Proxy)> {
    postgres_answers().then(|| (PgScratch::new(), Proxy::start(pg_upstream().0)))
}

/// What key `id`'s (only) quota has used, read by a manager of its own.
fn used(s: &PgScratch, id: &str) -> u64 {
    TokenManager::open(&s.url())
        .unwrap()
        .list_quotas(irontoken::QuotaScope::Key, id)
        .unwrap()[0]
        .used
}

fn options() -> Options {
    let mut o = Options::default();
    o.storage_timeout = STORAGE_TIMEOUT;
    o.max_staleness = MAX_STALENESS;
    o.busy_timeout = STORAGE_TIMEOUT;
    o
}

/// A manager reaching the scratch schema through `proxy`.
fn through(proxy: &Proxy, s: &PgScratch, o: Options) -> TokenManager {
    let (_, head, path) = pg_upstream();
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!(
        "{head}{}{path}{sep}options=-csearch_path%3D{}",
        proxy.addr, s.schema
    );
    TokenManager::open_with(&url, o).unwrap()
}

/// A lifetime quota of `limit` requests on key `id`.
fn requests_quota(id: &str, limit: u64) -> irontoken::QuotaSpec {
    irontoken::QuotaSpec {
        scope: irontoken::QuotaScope::Key,
        subject: id.into(),
        metric: irontoken::QuotaMetric::Requests,
        period: irontoken::QuotaPeriod::None,
        limit,
        refill_amount: None,
        refill_period: None,
        actor: None,
    }
}

fn key(tm: &TokenManager) -> irontoken::CreatedKey {
    tm.create_key(&NewKey {
        owner: "acme".into(),
        ..Default::default()
    })
    .unwrap()
}

/// Asserts `took` is within the bound, and `e` is a STORAGE or BUSY error.
fn bounded_failure(what: &str, took: Duration, e: Option<irontoken::Error>) {
    assert!(
        took <= STORAGE_TIMEOUT.mul_f64(RATIO),
        "{what} took {took:?}, more than {RATIO} x storage_timeout"
    );
    if let Some(e) = e {
        assert!(
            matches!(e.kind(), ErrorKind::Storage | ErrorKind::Busy),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_partition_refuses_revoked_keys_within_max_staleness_and_bounds_every_call() {
    let Some((s, proxy)) = behind_proxy() else {
        return;
    };
    let a = through(&proxy, &s, options());
    let b = TokenManager::open(&s.url()).unwrap();
    let k = key(&b);
    let other = key(&b);
    assert!(a.verify_key(&k.key, &[]).unwrap().valid);
    assert!(a.verify_key(&other.key, &[]).unwrap().valid);

    proxy.set(Mode::Pause);
    b.revoke_key(&k.record.id, Some("leak"), None).unwrap();
    let revoked = Instant::now();
    let mut refused = 0;
    while revoked.elapsed() < STORAGE_TIMEOUT * 3 {
        let start = Instant::now();
        let out = a.verify_key(&k.key, &[]);
        let took = start.elapsed();
        match out {
            Ok(v) if v.valid => assert!(
                start.duration_since(revoked) <= MAX_STALENESS,
                "VALID {:?} after the revocation (max_staleness {MAX_STALENESS:?})",
                start.duration_since(revoked)
            ),
            Ok(v) => panic!("answered {:?} through a partition", v.reason),
            Err(e) => {
                bounded_failure("verify_key", took, Some(e));
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the stale cache kept answering");

    // Writes and uncached reads end within the bound too.
    let t = Instant::now();
    let e = a
        .create_key(&NewKey {
            owner: "acme".into(),
            ..Default::default()
        })
        .unwrap_err();
    bounded_failure("create_key", t.elapsed(), Some(e));
    let t = Instant::now();
    let e = a.consume_quota(&other.record.id, &REQ1).unwrap_err();
    bounded_failure("consume_quota", t.elapsed(), Some(e));
    let t = Instant::now();
    let e = a.get_key(&other.record.id).unwrap_err();
    bounded_failure("get_key", t.elapsed(), Some(e));
    let t = Instant::now();
    let r = a.flush();
    bounded_failure("flush", t.elapsed(), r.err());

    // Healed: the same manager answers again, and knows the revocation.
    proxy.set(Mode::Pass);
    let healed = Instant::now();
    loop {
        match a.verify_key(&k.key, &[]) {
            Ok(v) => {
                assert_eq!(v.reason, irontoken::VerifyReason::Revoked);
                break;
            }
            Err(_) => {
                assert!(
                    healed.elapsed() < STORAGE_TIMEOUT * 5,
                    "no recovery without reopening"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert!(a.verify_key(&other.key, &[]).unwrap().valid);
    a.flush().unwrap();
}

#[test]
fn verify_fail_open_answers_from_the_stale_cache_when_chosen() {
    let Some((s, proxy)) = behind_proxy() else {
        return;
    };
    let mut o = options();
    o.verify_fail_open = true;
    let a = through(&proxy, &s, o);
    let k = key(&a);
    // Cached after the listener's start (which forgets everything).
    std::thread::sleep(MAX_STALENESS);
    assert!(a.verify_key(&k.key, &[]).unwrap().valid);
    proxy.set(Mode::Pause);
    std::thread::sleep(MAX_STALENESS * 2);
    let t = Instant::now();
    assert!(a.verify_key(&k.key, &[]).unwrap().valid);
    assert!(t.elapsed() <= STORAGE_TIMEOUT.mul_f64(RATIO));
    proxy.set(Mode::Pass);
}

#[test]
fn a_server_restart_under_load_loses_no_acknowledged_write_and_recovers() {
    let Some((s, proxy)) = behind_proxy() else {
        return;
    };
    let a = Arc::new(through(&proxy, &s, options()));
    let k = key(&a);
    a.set_quota(&requests_quota(&k.record.id, 1_000_000))
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (a, k, acked, attempts, stop) = (
                a.clone(),
                k.record.id.clone(),
                acked.clone(),
                attempts.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let t = Instant::now();
                    match a.consume_quota(&k, &REQ1) {
                        Ok(d) => {
                            assert!(d.allowed);
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => bounded_failure("consume_quota", t.elapsed(), Some(e)),
                    }
                }
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        proxy.reset_all();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    // Recovered without reopening: a call now succeeds.
    assert!(a.consume_quota(&k.record.id, &REQ1).unwrap().allowed);
    let acked = acked.load(Ordering::SeqCst) + 1;
    let attempts = attempts.load(Ordering::SeqCst) + 1;
    let used = used(&s, &k.record.id);
    // Nothing acknowledged was lost (a reset may cut the answer of a
    // commit that happened: charged, not acknowledged).
    assert!(
        used >= acked && used <= attempts,
        "used {used}, acknowledged {acked}, attempted {attempts}"
    );
}

#[test]
fn a_slow_server_answers_within_the_bound() {
    let Some((s, proxy)) = behind_proxy() else {
        return;
    };
    let mut o = options();
    o.strict = true;
    let a = through(&proxy, &s, o);
    let k = key(&a);
    proxy.set(Mode::Delay(STORAGE_TIMEOUT / 5));
    for _ in 0..4 {
        let t = Instant::now();
        let out = a.verify_key(&k.key, &[]);
        bounded_failure("verify_key (slow)", t.elapsed(), out.err());
        let t = Instant::now();
        let out = a.consume_quota(&k.record.id, &REQ1);
        bounded_failure("consume_quota (slow)", t.elapsed(), out.err());
    }
    proxy.set(Mode::Pass);
    assert!(a.verify_key(&k.key, &[]).unwrap().valid);
}

#[test]
fn reservations_from_many_hosts_and_threads_never_deadlock_or_oversell() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let hosts: Vec<_> = (0..4)
        .map(|_| Arc::new(TokenManager::open_with(&s.url(), options()).unwrap()))
        .collect();
    let k = key(&hosts[0]);
    let limit = 600;
    hosts[0]
        .set_quota(&requests_quota(&k.record.id, limit))
        .unwrap();
    let settled = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (h, tm) in hosts.iter().enumerate() {
        for t in 0..4 {
            let (tm, id, settled) = (tm.clone(), k.record.id.clone(), settled.clone());
            threads.push(std::thread::spawn(move || {
                for i in 0..40 {
                    let r = tm
                        .reserve_quota(&id, &REQ1, Some(1))
                        .unwrap_or_else(|e| panic!("reserve on host {h}: {e}"));
                    let Some(res) = r.reservation else {
                        continue;
                    };
                    match (i + t) % 3 {
                        0 => {
                            tm.settle_reservation(&res.id, &REQ1)
                                .unwrap_or_else(|e| panic!("settle on host {h}: {e}"));
                            settled.fetch_add(1, Ordering::SeqCst);
                        }
                        1 => {
                            tm.release_reservation(&res.id)
                                .unwrap_or_else(|e| panic!("release on host {h}: {e}"));
                        }
                        _ => {
                            // Abandoned: the TTL gives it back; meanwhile
                            // a consumption and a sweep race the others.
                            if tm
                                .consume_quota(&id, &REQ1)
                                .unwrap_or_else(|e| panic!("consume on host {h}: {e}"))
                                .allowed
                            {
                                settled.fetch_add(1, Ordering::SeqCst);
                            }
                            tm.expire_reservations()
                                .unwrap_or_else(|e| panic!("sweep on host {h}: {e}"));
                        }
                    }
                }
            }));
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    let used = used(&s, &k.record.id);
    assert_eq!(used, settled.load(Ordering::SeqCst));
    assert!(used <= limit);
}

#[test]
fn flush_answers_only_once_its_rows_are_committed_while_state_changes_run() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let a = Arc::new(TokenManager::open_with(&s.url(), options()).unwrap());
    let b = TokenManager::open(&s.url()).unwrap();
    let k = key(&a);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let creator = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                key(&a);
            }
        })
    };
    for i in 1..=150u64 {
        assert!(a.verify_key(&k.key, &[]).unwrap().valid);
        a.flush().unwrap();
        assert_eq!(
            b.get_key(&k.record.id).unwrap().usage_count,
            i,
            "flush {i} answered before its row was committed"
        );
    }
    stop.store(true, Ordering::SeqCst);
    creator.join().unwrap();
}

#[test]
fn a_paused_redis_answers_within_rate_limit_timeout() {
    let Ok(probe) = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().unwrap(),
        Duration::from_secs(1),
    ) else {
        eprintln!("skipped: no Redis at 127.0.0.1:6379");
        return;
    };
    drop(probe);
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap());
    let timeout = Duration::from_millis(500);
    let mut o = Options::default();
    o.rate_limit_store = irontoken::RateLimitStore::parse(&format!(
        "redis://{}?key_prefix=itk-faults-{}:",
        proxy.addr,
        std::process::id()
    ))
    .unwrap();
    o.rate_limit_timeout = timeout;
    let tm = TokenManager::open_with(":memory:", o).unwrap();
    let limits = [irontoken::ratelimit::Limit {
        name: "per_minute".into(),
        count: 1000,
        period_ms: 60_000,
        burst: 1000,
        unit: irontoken::ratelimit::Unit::Requests,
    }];
    assert!(tm.rate_limit("k", &limits).unwrap().allowed);
    for mode in [Mode::Pause, Mode::Refuse] {
        proxy.set(mode);
        if mode == Mode::Refuse {
            proxy.reset_all();
        }
        for _ in 0..3 {
            let t = Instant::now();
            let e = tm.rate_limit("k", &limits).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage);
            // Within 20 % of the timeout, whatever the step that hangs.
            assert!(
                t.elapsed() <= timeout.mul_f64(1.2),
                "{mode:?}: took {:?} (rate_limit_timeout {timeout:?})",
                t.elapsed()
            );
        }
    }
    proxy.set(Mode::Pass);
    proxy.reset_all();
    let healed = Instant::now();
    while tm.rate_limit("k", &limits).is_err() {
        assert!(healed.elapsed() < timeout * 10, "no recovery");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_state_change_does_not_wait_on_another_hosts_flush_of_the_keys_counters() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let a = TokenManager::open_with(&s.url(), options()).unwrap();
    let k = key(&a);
    // Another host's flush, not yet committed: it holds the key's counter
    // row, and its foreign key holds KEY SHARE on the key's row.
    let mut other = s
        .url()
        .parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap();
    let mut flush = other.transaction().unwrap();
    flush
        .execute(
            "INSERT INTO key_usage (seq, usage_count, last_used_at) \
             SELECT seq, 1, 0 FROM api_keys WHERE id = $1 \
             ON CONFLICT (seq) DO UPDATE SET usage_count = key_usage.usage_count + 1",
            &[&k.record.id],
        )
        .unwrap();
    // The revocation locks the key's row without waiting on it (a row lock
    // that did would wait out busy_timeout and answer BUSY; a state change
    // carrying counters could deadlock with that flush).
    let t = Instant::now();
    a.revoke_key(&k.record.id, Some("leak"), None).unwrap();
    assert!(
        t.elapsed() < STORAGE_TIMEOUT / 2,
        "revoke_key waited {:?} on a flush",
        t.elapsed()
    );
    flush.commit().unwrap();
    a.flush().unwrap();
    assert_eq!(a.get_key(&k.record.id).unwrap().usage_count, 1);
}
