//! The seed crate's example in irontoken: open, create, verify, record
//! usage, rate-limit.

use irontoken::ratelimit::{Limit, RateLimiter};
use irontoken::{NewKey, SystemClock, TokenManager, UsageQuery, UsageReport, VerifyReason};

fn main() -> Result<(), irontoken::Error> {
    let dir = std::env::temp_dir().join(format!("irontoken-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| irontoken::Error::invalid(e.to_string()))?;
    let path = dir.join("tokens.db");
    // TokenManager::new("./tokens.db") in the seed crate.
    let tm = TokenManager::open(path.to_str().expect("a UTF-8 path"))?;

    // create_token: the plaintext is shown once; only its hash is stored.
    let created = tm.create_key(&NewKey {
        owner: "user-001".into(),
        name: "example".into(),
        scopes: vec!["chat".into()],
        expires_in: Some(30 * 86_400),
        ..Default::default()
    })?;
    println!("created {} for {}", created.record.display_prefix, created.record.owner);

    // verify: a refusal is an answer with a reason, not an error.
    let ok = tm.verify_key(&created.key, &["chat"])?;
    assert!(ok.valid);
    let wrong = tm.verify_key(&created.key, &["admin"])?;
    assert_eq!(wrong.reason, VerifyReason::InsufficientScope);
    assert_eq!(tm.verify_key("itk_not-a-key", &[])?.reason, VerifyReason::Malformed);

    // record_usage: idempotent by request id.
    for _ in 0..2 {
        tm.record_usage(&UsageReport {
            request_id: Some("req-1".into()),
            key_id: Some(created.record.id.clone()),
            model: Some("gpt-x".into()),
            prompt_tokens: 812,
            completion_tokens: 95,
            cost_micros: 1_250,
            ..Default::default()
        })?;
    }
    let totals = tm.usage_summary(&UsageQuery::default())?;
    assert_eq!(totals[0].records, 1);
    println!("usage: {} tokens, {} micro-units", totals[0].total_tokens, totals[0].cost_micros);

    // RateLimiter::new(100).check("user-001"): 100 requests a minute.
    let limiter = RateLimiter::new(100_000);
    let per_minute = [Limit::new("per-minute", 100, 60_000, 100)?];
    let now = SystemClock::now_ms();
    let allowed = (0..150)
        .filter(|_| limiter.check("user-001", &per_minute, now).is_ok_and(|d| d.allowed))
        .count();
    assert_eq!(allowed, 100);
    println!("rate limit: {allowed} of 150 allowed");

    drop(tm);
    let _ = std::fs::remove_dir_all(&dir);
    println!("rust-program: ok");
    Ok(())
}
