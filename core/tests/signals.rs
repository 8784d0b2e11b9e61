//! Signals: failure bursts and usage spikes become events.

use irontoken::{NewKey, TokenManager};

mod common;
use common::fixtures::*;

#[test]
fn failure_bursts_and_usage_spikes_are_signalled() {
    let tm = manager_at(T0);
    let created = tm
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    // A well-formed key that does not exist, 20 times: one burst event.
    let other = TokenManager::open(":memory:").unwrap();
    let foreign = other
        .create_key(&NewKey {
            owner: "x".into(),
            ..Default::default()
        })
        .unwrap();
    for _ in 0..25 {
        tm.verify_key(&foreign.key, &[]).unwrap();
    }
    let ev = tm.drain_events(100);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, "auth_failure_burst");
    assert_eq!(
        ev[0].display_prefix.as_deref(),
        Some(foreign.record.display_prefix.as_str())
    );
    // Ten calm minutes, then a burst of use far above the key's average.
    for _ in 0..10 {
        for _ in 0..5 {
            tm.verify_key(&created.key, &[]).unwrap();
        }
        tm.advance_clock(60).unwrap();
    }
    assert!(tm.drain_events(100).is_empty());
    for _ in 0..150 {
        tm.verify_key(&created.key, &[]).unwrap();
    }
    let ev = tm.drain_events(100);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].kind, "usage_spike");
    assert_eq!(ev[0].key_id.as_deref(), Some(created.record.id.as_str()));
    assert!(tm.metrics().contains("irontoken_events_total 2"));
}
