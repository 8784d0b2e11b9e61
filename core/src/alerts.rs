//! Spend alerts: the levels of every quota that raise a `quota_threshold`
//! event, the velocity of a key's LLM spend (`spend_spike`: tokens or cost
//! in the last minute above a factor of the key's own trailing average per
//! minute), and an optional webhook that delivers alerts.
//!
//! - Quota levels are crossed once per window across every process (the
//!   row keeps the highest level reached); a spend spike is seen by the
//!   process that records the usage and claimed through the store (or
//!   Redis) once per key and minute, so one alert leaves the fleet.
//! - The webhook sender posts each alert as JSON, signed with HMAC-SHA256
//!   (`Irontoken-Signature: t=<unix seconds>,v1=<hex of HMAC(secret,
//!   "<t>.<body>")>`, the `Irontoken-Event-Id` header naming the alert), from
//!   a background thread fed through a bounded queue: a verification never
//!   waits for it; a full queue drops the alert (counted). A failed post
//!   (connection error, timeout, 408, 429, 5xx) is retried with exponential
//!   backoff up to `max_attempts`; a 2xx ends it; another 4xx gives up.
//!   Receivers verify with [`verify_signature`] and drop a repeated event id.

use crate::error::{Error, Result};
use crate::signals::{Event, MAX_TRACKED, Minutes, tracked};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Alert settings of a manager (its option `alerts`), as plain data.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Percent levels of every quota's limit that raise a `quota_threshold`
    /// event, once per window (ascending, 1-100, at most 8; default
    /// `[80, 100]`; `[]` raises none).
    pub quota_levels: Option<Vec<u8>>,
    /// A key's tokens (or cost) in the last minute above this many times its
    /// trailing average per minute is a `spend_spike` (default 10; 0 turns
    /// spend spikes off).
    pub spike_factor: Option<f64>,
    /// Fewest tokens in one minute that can be a spike (default 10 000).
    pub spike_min_tokens: Option<u64>,
    /// Deliver alerts to this webhook.
    pub webhook: Option<WebhookSettings>,
}

/// Where and how alerts are delivered.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `https://` URL (`http://` only to a loopback address).
    pub url: String,
    /// The HMAC-SHA256 secret (at least 16 bytes); never logged.
    pub secret: String,
    /// Event kinds delivered (default: `quota_threshold`, `spend_spike`,
    /// `usage_spike`, `auth_failure_burst`, `refresh_token_reused`).
    pub events: Option<Vec<String>>,
    /// Milliseconds one post may take (default 5000).
    pub timeout_ms: Option<u64>,
    /// Posts of one alert at most (default 5).
    pub max_attempts: Option<u32>,
    /// Alerts waiting for delivery at most; more are dropped (default 1000).
    pub queue_size: Option<usize>,
    /// Milliseconds before the first retry, doubled each time (default 500).
    pub backoff_ms: Option<u64>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// The event kinds a webhook delivers when its settings name none.
pub const DEFAULT_WEBHOOK_EVENTS: [&str; 5] = [
    "quota_threshold",
    "spend_spike",
    "usage_spike",
    "auth_failure_burst",
    "refresh_token_reused",
];

/// Default quota alert levels, percent.
pub const DEFAULT_QUOTA_LEVELS: [u8; 2] = [80, 100];
/// Default spend spike factor.
pub const DEFAULT_SPIKE_FACTOR: f64 = 10.0;
/// Default fewest tokens of a spike minute.
pub const DEFAULT_SPIKE_MIN_TOKENS: u64 = 10_000;
/// Minutes of a key's history before its spend spikes are judged (the
/// request spikes' own).
pub use crate::signals::SPIKE_HISTORY;
/// The longest a signature's time may be from the receiver's clock by default.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// Quota alert levels, percent, ascending (at most 8): a copy costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    v: [u8; 8],
    n: usize,
}

impl Levels {
    fn of(l: &[u8]) -> Levels {
        let mut v = [0; 8];
        v[..l.len()].copy_from_slice(l);
        Levels { v, n: l.len() }
    }

    /// The levels, ascending.
    pub fn as_slice(&self) -> &[u8] {
        &self.v[..self.n]
    }
}

/// Alert settings checked, and the webhook sender when one is set.
pub(crate) struct Alerts {
    pub quota_levels: Levels,
    spike_factor: f64,
    spike_min_tokens: u64,
    /// Each key's tokens (0) and cost micros (1) per minute.
    spend: Mutex<HashMap<u64, Minutes<2>>>,
    hasher: std::hash::RandomState,
    pub webhook: Option<Arc<Webhook>>,
}

impl Alerts {
    /// Checks `s` (defaults filled in) and starts nothing yet: the webhook
    /// thread starts with the first alert to deliver.
    pub fn new(s: &AlertSettings) -> Result<Alerts> {
        let quota_levels = Levels::of(match &s.quota_levels {
            None => &DEFAULT_QUOTA_LEVELS[..],
            Some(l) => {
                if l.len() > 8
                    || l.iter().any(|p| !(1..=100).contains(p))
                    || l.windows(2).any(|w| w[0] >= w[1])
                {
                    return Err(Error::invalid(
                        "alerts.quota_levels must be at most 8 ascending percents of 1-100",
                    ));
                }
                l
            }
        });
        let spike_factor = s.spike_factor.unwrap_or(DEFAULT_SPIKE_FACTOR);
        if !spike_factor.is_finite() || !(spike_factor == 0.0 || spike_factor >= 1.0) {
            return Err(Error::invalid(
                "alerts.spike_factor must be 0 (off) or at least 1",
            ));
        }
        Ok(Alerts {
            quota_levels,
            spike_factor,
            spike_min_tokens: s.spike_min_tokens.unwrap_or(DEFAULT_SPIKE_MIN_TOKENS),
            spend: Mutex::new(HashMap::new()),
            hasher: Default::default(),
            webhook: s
                .webhook
                .as_ref()
                .map(Webhook::new)
                .transpose()?
                .map(Arc::new),
        })
    }

    /// Alerts with the default levels and no webhook (a manager whose
    /// settings were refused at open never runs with them).
    pub fn defaults() -> Alerts {
        Alerts {
            quota_levels: Levels::of(&DEFAULT_QUOTA_LEVELS),
            spike_factor: DEFAULT_SPIKE_FACTOR,
            spike_min_tokens: DEFAULT_SPIKE_MIN_TOKENS,
            spend: Mutex::new(HashMap::new()),
            hasher: Default::default(),
            webhook: None,
        }
    }

    /// The first quota level (percent), below which a charge raises no alert
    /// (100 without levels): the quota fast path's bound.
    pub fn first_quota_level(&self) -> u8 {
        self.quota_levels.as_slice().first().copied().unwrap_or(100)
    }

    /// Adds `tokens` and `cost` micros spent by key `key_id` at `now`; the
    /// `spend_spike` event when this makes the key's current minute a spike
    /// (at most once per key and minute in this process).
    pub fn spend(&self, key_id: &str, tokens: u64, cost: u64, now: i64) -> Option<Event> {
        use std::hash::BuildHasher;
        if self.spike_factor == 0.0 || (tokens == 0 && cost == 0) {
            return None;
        }
        let minute = now.div_euclid(60);
        let h = self.hasher.hash_one(key_id);
        let mut m = self.spend.lock().unwrap_or_else(|e| e.into_inner());
        let s = tracked(&mut m, h, MAX_TRACKED, || Minutes::starting(minute));
        s.add(minute, [tokens, cost]);
        let k = self.spike_factor;
        let [tokens, cost] = s.now;
        let spiking = s.may_alert()
            && tokens >= self.spike_min_tokens
            && (tokens as f64 > k * s.avg[0] || (cost > 0 && cost as f64 > k * s.avg[1]));
        if !spiking {
            return None;
        }
        s.alerted = minute;
        Some(Event {
            kind: "spend_spike".into(),
            at: now,
            key_id: Some(key_id.to_string()),
            display_prefix: None,
            detail: serde_json::json!({
                "window_seconds": 60,
                "minute_start": minute * 60,
                "tokens": tokens,
                "average_tokens": s.avg[0].round(),
                "cost_micros": cost,
                "average_cost_micros": s.avg[1].round(),
                "factor": k,
            }),
        })
    }
}

/// Counters of a webhook sender.
#[derive(Debug, Default)]
pub(crate) struct WebhookCounters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

/// One alert on its way: its id, the body, and when it was queued.
struct Delivery {
    id: String,
    body: String,
}

/// The webhook sender: a bounded queue and the thread that empties it.
pub(crate) struct Webhook {
    url: String,
    secret: zeroize::Zeroizing<Vec<u8>>,
    events: Vec<String>,
    timeout: Duration,
    max_attempts: u32,
    queue_size: usize,
    backoff: Duration,
    /// The queue's sending end, and the fork generation its thread runs in.
    tx: Mutex<Option<(u64, SyncSender<Delivery>)>>,
    pub counters: Arc<WebhookCounters>,
    /// Alerts queued and not yet delivered or given up.
    pending: Arc<AtomicU64>,
}

impl Webhook {
    fn new(s: &WebhookSettings) -> Result<Webhook> {
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                s.url.starts_with(p)
                    && matches!(s.url.as_bytes().get(p.len()), None | Some(b':' | b'/'))
            });
        if !(s.url.starts_with("https://") || loopback) || s.url.len() > 2048 {
            return Err(Error::invalid(
                "alerts.webhook.url must be an https:// URL (http:// only to a loopback address)",
            ));
        }
        if s.secret.len() < 16 {
            return Err(Error::invalid(
                "alerts.webhook.secret must be at least 16 bytes",
            ));
        }
        let events = match &s.events {
            None => DEFAULT_WEBHOOK_EVENTS
                .iter()
                .map(|e| e.to_string())
                .collect(),
            Some(e) if e.is_empty() || e.len() > 32 => {
                return Err(Error::invalid("alerts.webhook.events must name 1-32 kinds"));
            }
            Some(e) => e.clone(),
        };
        let timeout = Duration::from_millis(s.timeout_ms.unwrap_or(5000));
        let max_attempts = s.max_attempts.unwrap_or(5);
        let queue_size = s.queue_size.unwrap_or(1000);
        let backoff = Duration::from_millis(s.backoff_ms.unwrap_or(500));
        if timeout.is_zero()
            || timeout > Duration::from_secs(60)
            || !(1..=20).contains(&max_attempts)
            || !(1..=100_000).contains(&queue_size)
            || backoff > Duration::from_secs(60)
        {
            return Err(Error::invalid(
                "alerts.webhook: timeout_ms 1-60000, max_attempts 1-20, queue_size 1-100000, backoff_ms at most 60000",
            ));
        }
        Ok(Webhook {
            url: s.url.clone(),
            secret: zeroize::Zeroizing::new(s.secret.as_bytes().to_vec()),
            events,
            timeout,
            max_attempts,
            queue_size,
            backoff,
            tx: Mutex::new(None),
            counters: Arc::default(),
            pending: Arc::default(),
        })
    }

    /// Alerts waiting for delivery (queued or being posted).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues `e` for delivery if its kind is wanted; never waits.
    pub fn offer(&self, e: &Event) {
        if !self.events.contains(&e.kind) {
            return;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let body = serde_json::json!({
            "id": id, "kind": e.kind, "at": e.at, "key_id": e.key_id,
            "display_prefix": e.display_prefix, "detail": e.detail,
        })
        .to_string();
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let generation = crate::fork::generation();
        if tx.as_ref().is_none_or(|(g, _)| *g != generation) {
            // First alert, or a forked child (the parent's thread is not here).
            *tx = self.spawn().map(|s| (generation, s));
        }
        let Some((_, sender)) = tx.as_ref() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.pending.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(Delivery { id, body }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Starts the delivery thread; None if the system refuses a thread.
    fn spawn(&self) -> Option<SyncSender<Delivery>> {
        crate::fork::watch_forks();
        let (tx, rx) = std::sync::mpsc::sync_channel(self.queue_size);
        let worker = Worker {
            url: self.url.clone(),
            secret: self.secret.clone(),
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            counters: Arc::clone(&self.counters),
            pending: Arc::clone(&self.pending),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(self.timeout))
                .max_redirects(0)
                .http_status_as_error(false)
                .tls_config(
                    ureq::tls::TlsConfig::builder()
                        .provider(ureq::tls::TlsProvider::Rustls)
                        .root_certs(ureq::tls::RootCerts::WebPki)
                        .unversioned_rustls_crypto_provider(Arc::new(
                            rustls::crypto::aws_lc_rs::default_provider(),
                        ))
                        .build(),
                )
                .build()
                .new_agent(),
        };
        std::thread::Builder::new()
            .name("irontoken-webhook".into())
            .spawn(move || worker.run(rx))
            .ok()
            .map(|_| tx)
    }
}

/// The delivery thread's state.
struct Worker {
    url: String,
    secret: zeroize::Zeroizing<Vec<u8>>,
    max_attempts: u32,
    backoff: Duration,
    counters: Arc<WebhookCounters>,
    pending: Arc<AtomicU64>,
    agent: ureq::Agent,
}

/// What one post of an alert came to.
enum Outcome {
    Delivered,
    Retry,
    GiveUp,
}

impl Worker {
    /// Delivers alerts until every sending end is gone (the manager closed).
    fn run(self, rx: Receiver<Delivery>) {
        while let Ok(d) = rx.recv() {
            let mut wait = self.backoff;
            for attempt in 1..=self.max_attempts {
                match self.post(&d) {
                    Outcome::Delivered => {
                        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Outcome::Retry if attempt < self.max_attempts => {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                    Outcome::Retry | Outcome::GiveUp => {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn post(&self, d: &Delivery) -> Outcome {
        let t = crate::clock::SystemClock::now_ms() / 1000;
        let answer = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("irontoken/", env!("CARGO_PKG_VERSION")),
            )
            .header("Irontoken-Event-Id", &d.id)
            .header("Irontoken-Signature", &signature(&self.secret, t, &d.body))
            .send(&d.body);
        match answer {
            Ok(r) => match r.status().as_u16() {
                200..=299 => Outcome::Delivered,
                408 | 429 | 500..=599 => Outcome::Retry,
                _ => Outcome::GiveUp,
            },
            Err(_) => Outcome::Retry,
        }
    }
}

/// The `Irontoken-Signature` header of `body` sent at `t` (Unix seconds).
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Checks a webhook's `Irontoken-Signature` header against `body` and
/// `secret`: its HMAC (in constant time) and its time, within `tolerance`
/// of `now` (Unix seconds). `INVALID_ARGUMENT` for a malformed header, a
/// wrong signature or a stale one, with nothing of the secret in the error.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<()> {
    use aws_lc_rs::hmac;
    let bad = || Error::invalid("the webhook signature is not valid");
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) if v.len() == 64 => {
                let bytes: Option<Vec<u8>> = (0..32)
                    .map(|i| u8::from_str_radix(v.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect();
                tags.extend(bytes);
            }
            _ => {}
        }
    }
    let t = t.ok_or_else(bad)?;
    if t.abs_diff(now) > tolerance.as_secs() {
        return Err(Error::invalid(
            "the webhook signature is too old (or from the future): a replay?",
        ));
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    if tags
        .iter()
        .any(|tag| hmac::verify(&key, &signed, tag).is_ok())
    {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse() {
        let s = signature(b"0123456789abcdef", 1_700_000_000, "{\"a\":1}");
        assert!(s.starts_with("t=1700000000,v1="));
        let ok = |h: &str, body: &str, now: i64| {
            verify_signature(
                b"0123456789abcdef",
                h,
                body.as_bytes(),
                now,
                SIGNATURE_TOLERANCE,
            )
        };
        ok(&s, "{\"a\":1}", 1_700_000_100).unwrap();
        assert!(ok(&s, "{\"a\":2}", 1_700_000_100).is_err(), "another body");
        assert!(ok(&s, "{\"a\":1}", 1_700_000_400).is_err(), "too old");
        assert!(
            verify_signature(
                b"another secret!!",
                &s,
                b"{\"a\":1}",
                1_700_000_000,
                SIGNATURE_TOLERANCE
            )
            .is_err()
        );
        for junk in ["", "t=x", "v1=00", "t=1700000000", "t=1700000000,v1=zz"] {
            assert!(ok(junk, "{\"a\":1}", 1_700_000_000).is_err(), "{junk}");
        }
    }

    #[test]
    fn settings_are_checked() {
        let bad_levels = AlertSettings {
            quota_levels: Some(vec![80, 50]),
            ..Default::default()
        };
        assert!(Alerts::new(&bad_levels).is_err());
        for url in [
            "http://example.com/hook",
            "ftp://x",
            "http://127.0.0.1.evil.com/",
        ] {
            let s = AlertSettings {
                webhook: Some(WebhookSettings {
                    url: url.into(),
                    secret: "0123456789abcdef".into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            assert!(Alerts::new(&s).is_err(), "{url}");
        }
        let short = AlertSettings {
            webhook: Some(WebhookSettings {
                url: "https://hooks.example.com/x".into(),
                secret: "short".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(Alerts::new(&short).is_err());
        let a = Alerts::new(&AlertSettings::default()).unwrap();
        assert_eq!(
            (a.quota_levels.as_slice(), a.first_quota_level()),
            (&[80, 100][..], 80)
        );
    }

    #[test]
    fn spend_spikes_once_per_minute_after_history() {
        let a = Alerts::new(&AlertSettings {
            spike_min_tokens: Some(1000),
            ..Default::default()
        })
        .unwrap();
        // Five quiet minutes of 100 tokens.
        for m in 0..5 {
            assert!(a.spend("k", 100, 10, m * 60).is_none());
        }
        // Then 1100 tokens in one minute: over 10x the average (~67), once
        // past the fewest tokens a spike needs.
        assert!(
            a.spend("k", 500, 10, 300).is_none(),
            "below spike_min_tokens"
        );
        let e = a.spend("k", 600, 10, 301).expect("a spike");
        assert_eq!(e.kind, "spend_spike");
        assert_eq!(e.detail["tokens"], 1100);
        assert!(a.spend("k", 5000, 10, 302).is_none(), "once per minute");
        assert!(a.spend("other", 50_000, 10, 302).is_none(), "no history");
    }
}
