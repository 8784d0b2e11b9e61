//! The JSON entry points the C API and the bindings hand to the core
//! (open options, JWT policy, remote-JWKS options, rate limits, key and
//! quota requests): never panic, whatever the JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = serde_json::from_str::<irontoken::OpenSettings>(text) {
        let _ = s.into_options();
    }
    let _ = irontoken::jwt::PolicySettings::policy_from_json(text);
    let _ = irontoken::jwt::RemoteJwksSettings::options_from_json(text);
    if let Ok(limits) = irontoken::ratelimit::Limit::list_from_json(text) {
        let rl = irontoken::ratelimit::RateLimiter::new(16);
        let _ = rl.check("k", &limits, 1_700_000_000_000);
    }
    let _ = serde_json::from_str::<irontoken::NewKey>(text);
    let _ = serde_json::from_str::<irontoken::QuotaSpec>(text);
    let _ = serde_json::from_str::<irontoken::UsageReport>(text);
    let _ = text.parse::<irontoken::QuotaMetric>();
    let _ = text.parse::<irontoken::QuotaPeriod>();
    let _ = text.parse::<irontoken::QuotaScope>();
});
