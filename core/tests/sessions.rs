//! Sessions: idle and absolute expiry, updates, ending, listing, and the end of
//! a revoked key's sessions.

use irontoken::{ErrorKind, NewSession, SessionFilter, SessionStatus, SessionUpdate};
use serde_json::json;

mod common;
use common::fixtures::*;

#[test]
fn session_lifecycle_idle_and_absolute_expiry() {
    let tm = manager_at(T0);
    let s = tm
        .create_session(&NewSession {
            owner: "alice".into(),
            metadata: Some(json!({"max_memory_mb": 512}).as_object().unwrap().clone()),
            ttl_seconds: Some(100),
            idle_timeout_seconds: Some(30),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s.session_type, "runtime");
    assert_eq!(s.status, SessionStatus::Active);
    assert_eq!(s.expires_next_at, Some(T0 + 30));
    assert_eq!(s.metadata["max_memory_mb"], 512);
    tm.advance_clock(29).unwrap();
    let t = tm.touch_session(&s.id).unwrap();
    assert_eq!(t.expires_next_at, Some(T0 + 59));
    // Touching keeps sliding but never past the absolute expiry.
    for _ in 0..2 {
        tm.advance_clock(25).unwrap();
        tm.touch_session(&s.id).unwrap();
    }
    // Now T0 + 79: the idle expiry would be T0 + 109, capped at T0 + 100.
    assert_eq!(
        tm.get_session(&s.id).unwrap().expires_next_at,
        Some(T0 + 100)
    );
    tm.advance_clock(22).unwrap(); // now T0 + 101
    let e = tm.get_session(&s.id).unwrap();
    assert_eq!(e.status, SessionStatus::Expired);
    assert_eq!(e.ended_at, Some(T0 + 100));
    assert_eq!(
        tm.touch_session(&s.id).unwrap_err().kind(),
        ErrorKind::SessionExpired
    );
    // Idle expiry without cleanup; cleanup then marks both.
    let idle = tm
        .create_session(&NewSession {
            owner: "alice".into(),
            idle_timeout_seconds: Some(10),
            ..Default::default()
        })
        .unwrap();
    tm.advance_clock(10).unwrap();
    assert_eq!(
        tm.get_session(&idle.id).unwrap().status,
        SessionStatus::Expired
    );
    let expired = tm
        .list_sessions(&SessionFilter {
            status: Some("expired".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(expired.items.len(), 2);
    assert_eq!(tm.cleanup_expired_sessions().unwrap(), 2);
    assert_eq!(tm.cleanup_expired_sessions().unwrap(), 0);
    assert_eq!(
        tm.get_session(&idle.id).unwrap().ended_at,
        Some(T0 + 101 + 10)
    );
    assert_eq!(tm.purge_sessions(0).unwrap(), 2);
    assert_eq!(
        tm.get_session(&idle.id).unwrap_err().kind(),
        ErrorKind::SessionNotFound
    );
}

#[test]
fn session_update_end_list_and_key_revocation() {
    let tm = manager_at(T0);
    let kid = key(&tm, "bob");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            tm.create_session(&NewSession {
                owner: if i < 4 { "bob" } else { "carol" }.into(),
                key_id: (i < 3).then(|| kid.clone()),
                session_type: (i == 1).then(|| "batch".to_string()),
                ..Default::default()
            })
            .unwrap()
            .id,
        );
    }
    let p = tm
        .update_session(
            &ids[0],
            &SessionUpdate {
                status: Some("paused".into()),
                metadata: Some(json!({"step": 2}).as_object().unwrap().clone()),
            },
        )
        .unwrap();
    assert_eq!(p.status, SessionStatus::Paused);
    assert_eq!(
        tm.update_session(
            &ids[0],
            &SessionUpdate {
                status: Some("ended".into()),
                ..Default::default()
            }
        )
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidArgument
    );
    // Pagination and filters.
    let page = tm
        .list_sessions(&SessionFilter {
            owner: Some("bob".into()),
            limit: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let rest = tm
        .list_sessions(&SessionFilter {
            owner: Some("bob".into()),
            cursor: page.next_cursor.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next_cursor.is_none());
    let batch = tm
        .list_sessions(&SessionFilter {
            session_type: Some("batch".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(batch.items[0].id, ids[1]);
    // End one; revoking the key ends the others of that key.
    let ended = tm.end_session(&ids[3], Some("done")).unwrap();
    assert_eq!(ended.status, SessionStatus::Ended);
    assert_eq!(
        tm.end_session(&ids[3], None).unwrap_err().kind(),
        ErrorKind::SessionEnded
    );
    tm.revoke_key(&kid, Some("leaked"), None).unwrap();
    for id in &ids[..3] {
        let s = tm.get_session(id).unwrap();
        assert_eq!(s.status, SessionStatus::Ended);
        assert_eq!(s.end_reason.as_deref(), Some("key_revoked"));
    }
    assert_eq!(
        tm.get_session(&ids[4]).unwrap().status,
        SessionStatus::Active
    );
    // A session cannot be opened for a revoked key.
    let e = tm
        .create_session(&NewSession {
            owner: "bob".into(),
            key_id: Some(kid),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyRevoked);
    assert_eq!(
        tm.get_session("nope").unwrap_err().kind(),
        ErrorKind::SessionNotFound
    );
}
