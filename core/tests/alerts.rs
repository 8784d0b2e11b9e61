//! Spend alerts: quota levels chosen by the operator (once per window
//! across managers), spend spikes (once per key and minute across
//! managers), and the webhook — delivered once per alert to a local HTTP
//! server, signed, retried when it answers 500, never blocking a
//! verification while it hangs.

use irontoken::alerts::{AlertSettings, SIGNATURE_TOLERANCE, WebhookSettings, verify_signature};
use irontoken::{
    Amounts, NewKey, Options, QuotaMetric, QuotaPeriod, QuotaScope, TokenManager, UsageReport,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

const SECRET: &str = "webhook-secret-0123456789";

/// One request the hook received: headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Hit {
    headers: Vec<(String, String)>,
    body: String,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A local HTTP server answering each post with the next status of
/// `script` (then 200), after `delay` each; what it received is kept.
struct Hook {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

fn hook(script: Vec<u16>, delay: Duration) -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&hits);
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(Hit {
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            std::thread::sleep(delay);
            let status = script.next().unwrap_or(200);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Hook { url, hits }
}

fn webhook(url: &str) -> WebhookSettings {
    WebhookSettings {
        url: url.into(),
        secret: SECRET.into(),
        backoff_ms: Some(20),
        timeout_ms: Some(2000),
        ..Default::default()
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn open(url: &str, alerts: AlertSettings) -> TokenManager {
    let mut o = Options::default().manual_clock(common::fixtures::T0);
    o.alerts = alerts;
    TokenManager::open_with(url, o).unwrap()
}

fn quota_key(tm: &TokenManager, limit: u64) -> String {
    use common::fixtures::{key, spec};
    let id = key(tm, "acme");
    tm.set_quota(&spec(
        QuotaScope::Key,
        &id,
        QuotaMetric::Tokens,
        QuotaPeriod::Day,
        limit,
    ))
    .unwrap();
    id
}

fn tokens(n: u64) -> Amounts {
    Amounts {
        tokens: n,
        ..Default::default()
    }
}

fn levels_of(events: &[irontoken::signals::Event]) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.kind == "quota_threshold")
        .map(|e| e.detail["level"].as_i64().unwrap())
        .collect()
}

#[test]
fn quota_levels_are_the_operators_and_each_is_raised_once_across_managers() {
    let shared = common::shared_store();
    let alerts = AlertSettings {
        quota_levels: Some(vec![50, 80, 100]),
        ..Default::default()
    };
    let a = open(&shared.url, alerts.clone());
    let b = open(&shared.url, alerts);
    let id = quota_key(&a, 1000);
    // Below 50 %: the fast path, no alert.
    a.consume_quota(&id, &tokens(400)).unwrap();
    b.consume_quota(&id, &tokens(99)).unwrap();
    assert!(levels_of(&a.drain_events(100)).is_empty());
    assert!(levels_of(&b.drain_events(100)).is_empty());
    // 500: 50 % on the other manager; then a jump past 80 and 100 at once
    // raises the highest (100 % says 80 % too).
    b.consume_quota(&id, &tokens(1)).unwrap();
    assert_eq!(levels_of(&b.drain_events(100)), [50]);
    a.consume_quota(&id, &tokens(500)).unwrap();
    assert_eq!(levels_of(&a.drain_events(100)), [100]);
    // Never again in this window, from either manager.
    assert!(!b.consume_quota(&id, &tokens(1)).unwrap().allowed);
    assert!(levels_of(&a.drain_events(100)).is_empty());
    assert!(levels_of(&b.drain_events(100)).is_empty());
    // No levels: no alerts at all, and the fast path takes charges up to the limit.
    let none = open(
        ":memory:",
        AlertSettings {
            quota_levels: Some(vec![]),
            ..Default::default()
        },
    );
    let q = quota_key(&none, 10);
    for _ in 0..10 {
        assert!(none.consume_quota(&q, &tokens(1)).unwrap().allowed);
    }
    assert!(levels_of(&none.drain_events(100)).is_empty());
    // Bad levels are refused at open.
    for bad in [
        vec![80, 50],
        vec![0],
        vec![101],
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
    ] {
        let mut o = Options::default();
        o.alerts.quota_levels = Some(bad);
        let e = TokenManager::open_with(":memory:", o).unwrap_err();
        assert_eq!(e.kind(), irontoken::ErrorKind::InvalidArgument);
    }
}

/// Five quiet minutes of 100 tokens on two managers, then a burst of
/// 20 000 tokens split between them: one `spend_spike`, from one of them.
#[test]
fn a_spend_spike_is_raised_once_across_managers() {
    let shared = common::shared_store();
    let settings = AlertSettings {
        spike_min_tokens: Some(5_000),
        ..Default::default()
    };
    let a = open(&shared.url, settings.clone());
    let b = open(&shared.url, settings);
    let id = common::fixtures::key(&a, "acme");
    let mut n = 0;
    let mut use_tokens = |tm: &TokenManager, t: u64| {
        n += 1;
        tm.record_usage(&UsageReport {
            request_id: Some(format!("r{n}")),
            key_id: Some(id.clone()),
            model: Some("gpt-4o".into()),
            prompt_tokens: t,
            cost_micros: t * 10,
            ..Default::default()
        })
        .unwrap();
    };
    for _ in 0..6 {
        use_tokens(&a, 100);
        use_tokens(&b, 100);
        a.advance_clock(60).unwrap();
        b.advance_clock(60).unwrap();
    }
    assert!(a.drain_events(100).iter().all(|e| e.kind != "spend_spike"));
    for _ in 0..4 {
        use_tokens(&a, 5_000);
        use_tokens(&b, 5_000);
    }
    let spikes: Vec<_> = a
        .drain_events(100)
        .into_iter()
        .chain(b.drain_events(100))
        .filter(|e| e.kind == "spend_spike")
        .collect();
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0].key_id.as_deref(), Some(id.as_str()));
    assert!(spikes[0].detail["tokens"].as_u64().unwrap() >= 5_000);
    assert!(
        a.metrics()
            .contains("irontoken_alerts_total{kind=\"spend_spike\"}")
    );
}

#[test]
fn the_webhook_delivers_each_alert_once_signed_and_retries_a_500() {
    let h = hook(vec![500, 500], Duration::ZERO);
    let tm = open(
        ":memory:",
        AlertSettings {
            quota_levels: Some(vec![50, 100]),
            webhook: Some(webhook(&h.url)),
            ..Default::default()
        },
    );
    let id = quota_key(&tm, 100);
    tm.consume_quota(&id, &tokens(60)).unwrap();
    tm.consume_quota(&id, &tokens(60)).unwrap(); // refused: 100 % is not reached
    tm.consume_quota(&id, &tokens(40)).unwrap();
    // Two alerts (50 %, 100 %); the first was answered 500 twice.
    wait_for("two deliveries", || {
        tm.metrics()
            .contains("irontoken_webhook_deliveries_total{outcome=\"delivered\"} 2")
    });
    let hits = h.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 4, "two posts answered 500, then one per alert");
    let ids: Vec<&str> = hits
        .iter()
        .map(|h| h.header("irontoken-event-id"))
        .collect();
    assert_eq!(ids[0], ids[1], "a retry is the same event");
    assert_eq!(ids[0], ids[2]);
    assert_ne!(ids[2], ids[3], "two alerts, two events");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for hit in &hits {
        verify_signature(
            SECRET.as_bytes(),
            hit.header("irontoken-signature"),
            hit.body.as_bytes(),
            now,
            SIGNATURE_TOLERANCE,
        )
        .unwrap();
        assert_eq!(hit.header("content-type"), "application/json");
        assert!(!hit.body.contains(SECRET));
    }
    // A forged or altered body does not verify.
    assert!(
        verify_signature(
            SECRET.as_bytes(),
            hits[3].header("irontoken-signature"),
            hits[3].body.replace("100", "99").as_bytes(),
            now,
            SIGNATURE_TOLERANCE
        )
        .is_err()
    );
    let levels: Vec<i64> = hits[2..]
        .iter()
        .map(|h| {
            serde_json::from_str::<serde_json::Value>(&h.body).unwrap()["detail"]["level"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(levels, [50, 100]);
    let m = tm.metrics();
    assert!(m.contains("irontoken_webhook_retries_total 2"), "{m}");
    assert!(m.contains("irontoken_webhook_pending 0"), "{m}");
}

#[test]
fn a_hanging_webhook_blocks_nothing_and_a_full_queue_drops() {
    // Each post hangs for 2 s (the sender's timeout is 300 ms, 2 attempts).
    let h = hook(vec![], Duration::from_secs(2));
    let mut settings = webhook(&h.url);
    settings.timeout_ms = Some(300);
    settings.max_attempts = Some(2);
    settings.queue_size = Some(2);
    let tm = open(
        ":memory:",
        AlertSettings {
            quota_levels: Some(vec![10, 20, 30, 40, 50, 60, 70, 80]),
            webhook: Some(settings),
            ..Default::default()
        },
    );
    let id = quota_key(&tm, 100);
    let key = tm
        .create_key(&NewKey {
            owner: "acme".into(),
            ..Default::default()
        })
        .unwrap()
        .key;
    let started = Instant::now();
    for _ in 0..9 {
        tm.consume_quota(&id, &tokens(10)).unwrap();
        assert!(tm.verify_key(&key, &[]).unwrap().valid);
    }
    // Eight alerts raised with the hook hanging: the calls did not wait for it.
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let events = tm.drain_events(100);
    assert_eq!(levels_of(&events).len(), 8);
    // One in flight, two queued: the other five were dropped (counted).
    wait_for("the sender to give up", || {
        let m = tm.metrics();
        m.contains("irontoken_webhook_pending 0")
    });
    let m = tm.metrics();
    let count = |outcome: &str| -> u64 {
        let prefix = format!("irontoken_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(count("delivered"), 0);
    assert_eq!(count("failed") + count("dropped"), 8, "{m}");
    assert!(count("dropped") >= 4, "{m}");
}

#[test]
fn webhook_settings_are_checked() {
    for (url, secret) in [
        ("http://example.com/hook", SECRET),
        ("https://example.com/hook", "short"),
        ("file:///etc/passwd", SECRET),
    ] {
        let mut o = Options::default();
        o.alerts.webhook = Some(WebhookSettings {
            url: url.into(),
            secret: secret.into(),
            ..Default::default()
        });
        let e = TokenManager::open_with(":memory:", o).unwrap_err();
        assert_eq!(e.kind(), irontoken::ErrorKind::InvalidArgument);
        assert!(!e.message().contains(SECRET), "no secret in an error");
    }
    // Settings as the bindings give them (JSON), unknown fields refused.
    let s: Result<irontoken::OpenSettings, _> =
        serde_json::from_str(r#"{"alerts": {"quota_levels": [50], "bogus": 1}}"#);
    assert!(s.is_err());
    let s: irontoken::OpenSettings = serde_json::from_str(
        r#"{"alerts": {"quota_levels": [50, 90], "webhook": {"url": "https://h.example/x", "secret": "0123456789abcdef"}}}"#,
    )
    .unwrap();
    let o = s.into_options().unwrap();
    assert_eq!(o.alerts.quota_levels, Some(vec![50, 90]));
    assert!(!format!("{:?}", o.alerts).contains("0123456789abcdef"));
}
