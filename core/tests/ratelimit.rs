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
