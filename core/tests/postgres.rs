//! The PostgreSQL store: the guarantees the README states for SQLite, held
//! across managers standing in for separate hosts (separate pools and
//! caches). Skipped, with one line, when no PostgreSQL answers.

mod common;

use common::{PgScratch, postgres_answers};
use irontoken::{ErrorKind, NewKey, Options, TokenManager, UsageQuery, UsageReport, VerifyReason};
use std::time::{Duration, Instant};

fn open(scratch: &PgScratch) -> TokenManager {
    TokenManager::open(&scratch.url()).unwrap()
}

#[test]
fn keys_verify_revoke_and_audit_across_hosts() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let a = open(&s);
    let b = open(&s);
    let mut uses = 0;
    let created = a
        .create_key(&NewKey {
            owner: "acme".into(),
            scopes: vec!["read".into()],
            ..Default::default()
        })
        .unwrap();
    // Host B verifies what host A created, with scopes.
    assert!(b.verify_key(&created.key, &["read"]).unwrap().valid);
    uses += 1;
    assert_eq!(
        b.verify_key(&created.key, &["write"]).unwrap().reason,
        VerifyReason::InsufficientScope
    );
    // Revoked on A: refused by B (the change notification reaches B's cache).
    a.revoke_key(&created.record.id, Some("leak"), None)
        .unwrap();
    let start = Instant::now();
    while b.verify_key(&created.key, &[]).unwrap().valid {
        uses += 1;
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "B never saw the revocation"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        b.verify_key(&created.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
    // A's own next call refuses it at once.
    assert_eq!(
        a.verify_key(&created.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
    // Usage counters flushed by both hosts add up.
    a.flush().unwrap();
    b.flush().unwrap();
    assert_eq!(a.get_key(&created.record.id).unwrap().usage_count, uses);
    // The audit trail holds the creation and the revocation, and is append-only.
    let audit = a.list_audit(&Default::default()).unwrap();
    assert!(audit.items.iter().any(|e| e.action == "key.revoke"));
}

#[test]
fn strict_verification_reads_the_database_every_call() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let a = open(&s);
    let mut o = Options::default();
    o.strict = true;
    let b = TokenManager::open_with(&s.url(), o).unwrap();
    let k = a
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(b.verify_key(&k.key, &[]).unwrap().valid);
    a.disable_key(&k.record.id, None).unwrap();
    // No waiting: the very next call sees it.
    assert_eq!(
        b.verify_key(&k.key, &[]).unwrap().reason,
        VerifyReason::Disabled
    );
}

#[test]
fn usage_is_idempotent_across_hosts_first_report_wins() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let a = open(&s);
    let b = open(&s);
    let kid = a
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap()
        .record
        .id;
    let report = |tokens: u64| UsageReport {
        request_id: Some("req-1".into()),
        key_id: Some(kid.clone()),
        prompt_tokens: tokens,
        ..Default::default()
    };
    a.record_usage(&report(10)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    b.record_usage(&report(99)).unwrap();
    b.flush().unwrap(); // the later report lands first...
    a.flush().unwrap(); // ...and the earlier one replaces it
    let page = a.export_usage(&UsageQuery::default()).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].prompt_tokens, 10);
    let totals = b
        .usage_summary(&UsageQuery {
            group_by: vec!["day".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(totals[0].records, 1);
    assert_eq!(totals[0].day.as_deref().map(str::len), Some(10));
}

#[test]
fn migrations_run_once_when_many_workers_start_together() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let url = s.url();
    let managers: Vec<TokenManager> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| TokenManager::open(&url).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(managers.len(), 10);
    let mut c = common::postgres_base()
        .parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap();
    let n: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) - count(DISTINCT version) FROM {}.irontoken_schema",
                s.schema
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a version applied twice");
    // The audit log refuses changes here too.
    managers[0]
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    for sql in [
        "DELETE FROM {}.audit_log",
        "UPDATE {}.audit_log SET at = 0",
        "TRUNCATE {}.audit_log",
    ] {
        let e = c.batch_execute(&sql.replace("{}", &s.schema)).unwrap_err();
        assert!(format!("{e:?}").contains("append-only"), "{sql}: {e:?}");
    }
}

#[test]
fn an_unreachable_server_is_a_storage_error() {
    let e =
        TokenManager::open("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(!e.message().contains("password"));
    let e = TokenManager::open("postgresql://[bad").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // A password never reaches an error message.
    let e = TokenManager::open("postgresql://u:hunter2-secret@127.0.0.1:1/test?connect_timeout=1")
        .unwrap_err();
    assert!(!e.message().contains("hunter2"), "{e}");
    // An unknown sslmode is refused, never taken as "no TLS".
    let e = TokenManager::open("postgresql://postgres@127.0.0.1/test?sslmode=requir").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("sslmode"), "{e}");
}

/// TLS verifies the server. The test server's certificate is the machine's
/// self-signed one (Debian's snakeoil, issued to `localhost`): trusted
/// through `sslrootcert`, a manager connects encrypted (the server says so);
/// without it (the Mozilla roots), or under another host name, the handshake
/// is refused with a STORAGE error — never a fallback to clear text.
#[test]
fn tls_connections_verify_the_server_certificate() {
    const CA: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    if !postgres_answers() {
        return;
    }
    let base = common::postgres_base();
    if !std::path::Path::new(CA).exists() || !base.contains("@127.0.0.1") {
        eprintln!("skipped: TLS needs the test server at 127.0.0.1 with {CA}");
        return;
    }
    let mut admin = base
        .parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap();
    let ssl: String = admin.query_one("SHOW ssl", &[]).unwrap().get(0);
    if ssl != "on" {
        eprintln!("skipped: the test server has ssl = {ssl}");
        return;
    }
    let s = PgScratch::new();
    let app = format!("itk_tls_{}", std::process::id());
    let at = |host: &str, tls: &str| {
        format!("{}&application_name={app}&{tls}", s.url())
            .replace("@127.0.0.1", &format!("@{host}"))
    };
    let trusted = format!("sslmode=verify-full&sslrootcert={}", CA.replace('/', "%2F"));
    let tm = TokenManager::open(&at("localhost", &trusted)).unwrap();
    let created = tm
        .create_key(&NewKey {
            owner: "tls".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(tm.verify_key(&created.key, &[]).unwrap().valid);
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1 AND s.ssl",
            &[&app],
        )
        .unwrap()
        .get(0);
    let clear: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1 AND NOT s.ssl",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "no encrypted connection seen by the server");
    assert_eq!(clear, 0, "a connection went in clear");
    drop(tm);

    for (host, tls, why) in [
        (
            "localhost",
            "sslmode=require".to_string(),
            "an issuer outside the Mozilla roots",
        ),
        (
            "127.0.0.1",
            trusted.clone(),
            "a certificate for localhost, not 127.0.0.1",
        ),
    ] {
        let e = TokenManager::open(&at(host, &tls)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{why}: {e}");
        assert!(e.message().contains("certificate"), "{why}: {e}");
    }
}

/// Counters of many keys, from two hosts, land exactly (written in batches).
#[test]
fn usage_counters_of_many_keys_add_up_across_hosts() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let a = open(&s);
    let b = open(&s);
    let reqs: Vec<NewKey> = (0..300)
        .map(|_| NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .collect();
    let created = a.create_keys(&reqs).unwrap();
    for c in &created {
        assert!(a.verify_key(&c.key, &[]).unwrap().valid);
        assert!(b.verify_key(&c.key, &[]).unwrap().valid);
        assert!(b.verify_key(&c.key, &[]).unwrap().valid);
    }
    a.flush().unwrap();
    b.flush().unwrap();
    for c in &created {
        assert_eq!(a.get_key(&c.record.id).unwrap().usage_count, 3);
    }
}

/// Scheduled signing-key rotation from several hosts at once (cron on
/// each): the advisory lock serializes them and one rotation happens.
#[test]
fn signing_key_rotation_when_due_happens_once_across_hosts() {
    if !postgres_answers() {
        return;
    }
    const DAY: i64 = 86_400;
    let s = PgScratch::new();
    let open = || {
        let o = Options::default()
            .manual_clock(1_700_000_000)
            .master_key(b"0123456789abcdef0123456789abcdef")
            .unwrap();
        TokenManager::open_with(&s.url(), o).unwrap()
    };
    let hosts: Vec<TokenManager> = (0..4).map(|_| open()).collect();
    hosts[0]
        .create_signing_key(irontoken::jwt::Alg::ES256, None)
        .unwrap();
    for h in &hosts {
        h.advance_clock(91 * DAY).unwrap();
    }
    let rotated: usize = std::thread::scope(|sc| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| sc.spawn(move || h.rotate_signing_key_if_due(90 * DAY, DAY, None).unwrap()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().is_some() as usize)
            .sum()
    });
    assert_eq!(rotated, 1);
    let keys = hosts[1].list_signing_keys().unwrap();
    assert_eq!(keys.iter().filter(|k| k.status == "active").count(), 1);
    assert_eq!(keys.len(), 2);
}

#[test]
fn try_verify_key_answers_from_the_caches_only() {
    if !postgres_answers() {
        return;
    }
    let s = PgScratch::new();
    let (host_a, host_b) = (open(&s), open(&s));
    let c = host_b
        .create_key(&NewKey {
            owner: "o".into(),
            scopes: vec!["read".into()],
            ..Default::default()
        })
        .unwrap();
    // Host A has not seen the key: answering needs the server.
    assert!(host_a.try_verify_key(&c.key, &["read"]).unwrap().is_none());
    // Once state and record are cached (a verification caches them; the
    // creation's own notification may arrive after it and clear them once),
    // it is answered without a round trip, and counted like any other.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut blocking = 0;
    let v = loop {
        assert!(host_a.verify_key(&c.key, &["read"]).unwrap().valid);
        blocking += 1;
        if let Some(v) = host_a.try_verify_key(&c.key, &["read"]).unwrap() {
            break v;
        }
        assert!(Instant::now() < deadline, "never cached");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(v.valid);
    assert_eq!(v.record.unwrap().usage_count, blocking + 1);
    // A revocation on host B reaches host A's cache (LISTEN/NOTIFY): from
    // then on A never answers "valid" from what it had cached.
    host_b.revoke_key(&c.record.id, None, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match host_a.try_verify_key(&c.key, &[]).unwrap() {
            Some(v) if v.valid => {
                assert!(Instant::now() < deadline, "revocation never reached host A");
                std::thread::sleep(Duration::from_millis(2));
            }
            None => break,
            Some(v) => {
                assert_eq!(v.reason, VerifyReason::Revoked);
                break;
            }
        }
    }
    assert_eq!(
        host_a.verify_key(&c.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
    // A strict manager reads the server on every verification: never "now".
    let mut o = Options::default();
    o.strict = true;
    let strict = TokenManager::open_with(&s.url(), o).unwrap();
    assert!(strict.verify_key(&c.key, &[]).is_ok());
    assert!(strict.try_verify_key(&c.key, &[]).unwrap().is_none());
}
