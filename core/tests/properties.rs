//! Property tests (proptest): GCRA never admits more than its burst plus
//! its rate over any window; quotas never oversell; API keys round-trip
//! through base62 + CRC32 and any one-character change is caught.

use irontoken::ratelimit::{Limit, RateLimiter};
use irontoken::{
    Amounts, NewKey, Options, QuotaMetric, QuotaPeriod, QuotaScope, QuotaSpec, TokenManager,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gcra_never_exceeds_burst_plus_rate_in_any_window(
        count in 1u64..100,
        period_ms in 1u64..10_000,
        burst in 1u64..50,
        steps in proptest::collection::vec(0i64..500, 1..300),
    ) {
        let limit = Limit::new("l", count, period_ms, burst).unwrap();
        let rl = RateLimiter::new(16);
        let mut now = 1_700_000_000_000i64;
        let mut admitted = Vec::new();
        for s in steps {
            now += s;
            if rl.check("k", std::slice::from_ref(&limit), now).unwrap().allowed {
                admitted.push(now);
            }
        }
        for i in 0..admitted.len() {
            for j in i..admitted.len() {
                let window = (admitted[j] - admitted[i]) as u64;
                let n = (j - i + 1) as u64;
                let bound = burst + (window * count).div_ceil(period_ms);
                prop_assert!(n <= bound, "{n} admitted in {window} ms, bound {bound}");
            }
        }
    }

    #[test]
    fn quotas_never_oversell(
        limit in 1u64..10_000,
        asks in proptest::collection::vec(0u64..3_000, 1..40),
    ) {
        let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(1_800_000_000)).unwrap();
        let k = tm.create_key(&NewKey { owner: "o".into(), ..Default::default() }).unwrap().record.id;
        tm.set_quota(&QuotaSpec {
            scope: QuotaScope::Key,
            subject: k.clone(),
            metric: QuotaMetric::Tokens,
            period: QuotaPeriod::Day,
            limit,
            refill_amount: None,
            refill_period: None,
            actor: None,
        }).unwrap();
        let mut granted = 0u64;
        for a in asks {
            let fits = a <= limit - granted;
            let d = tm.consume_quota(&k, &Amounts { tokens: a, ..Default::default() }).unwrap();
            // Granted exactly when it fits, all of it or nothing.
            prop_assert_eq!(d.allowed, fits);
            if d.allowed {
                granted += a;
            }
            let q = &d.quotas[0];
            prop_assert_eq!(q.used, granted);
            prop_assert!(q.used <= limit);
            prop_assert_eq!(q.remaining, limit - granted);
        }
    }

    #[test]
    fn keys_round_trip_and_any_one_character_change_is_caught(
        prefix in "[a-z][a-z0-9]{0,6}",
        pos in 0usize..1000,
        replacement in proptest::sample::select(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".to_vec()),
    ) {
        let tm = TokenManager::open(":memory:").unwrap();
        let created = tm.create_key(&NewKey { owner: "o".into(), prefix: Some(prefix.clone()), ..Default::default() }).unwrap();
        let key = created.key.to_string();
        prop_assert!(irontoken::keys::is_well_formed(&key));
        let parsed = irontoken::keys::parse(&key).unwrap();
        prop_assert_eq!(parsed.display_prefix, created.record.display_prefix.as_str());
        // Change one character of the body or checksum.
        let body_start = prefix.len() + 1;
        let i = body_start + pos % (key.len() - body_start);
        let mut bytes = key.clone().into_bytes();
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        let typo = String::from_utf8(bytes).unwrap();
        prop_assert!(!irontoken::keys::is_well_formed(&typo));
    }
}
