//! Session hijacking defences: rotation on a privilege change (the old id
//! refused at once), fingerprint binding, a per-owner limit on live
//! sessions (refuse or evict the oldest, exact under four racing
//! managers), and ending every session of an owner.

use irontoken::{ErrorKind, NewSession, Options, TokenManager};

mod common;

fn new(owner: &str) -> NewSession {
    NewSession {
        owner: owner.into(),
        ttl_seconds: Some(3600),
        idle_timeout_seconds: Some(600),
        ..Default::default()
    }
}

fn kind<T: std::fmt::Debug>(r: irontoken::Result<T>) -> ErrorKind {
    r.unwrap_err().kind()
}

#[test]
fn rotation_refuses_the_old_id_and_keeps_the_rest() {
    let m = common::open_private(Options::default().manual_clock(1_700_000_000));
    let tm: &TokenManager = &m;
    let mut req = new("alice");
    req.fingerprint = Some("ua=firefox;key=k1".into());
    req.metadata = Some(
        serde_json::json!({"role": "guest"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let s = tm.create_session(&req).unwrap();
    assert!(s.fingerprint_bound);
    tm.advance_clock(100).unwrap();
    // Rotation needs the bound fingerprint.
    assert_eq!(
        kind(tm.rotate_session(&s.id, Some("ua=curl"))),
        ErrorKind::SessionFingerprintMismatch
    );
    let r = tm.rotate_session(&s.id, Some("ua=firefox;key=k1")).unwrap();
    assert_ne!(r.id, s.id);
    assert_eq!((r.owner.as_str(), r.expires_at), ("alice", s.expires_at));
    assert_eq!(r.metadata["role"], "guest");
    assert!(r.fingerprint_bound);
    let old = tm.get_session(&s.id).unwrap();
    assert_eq!(old.end_reason.as_deref(), Some("rotated"));
    assert_eq!(
        kind(tm.verify_session(&s.id, Some("ua=firefox;key=k1"))),
        ErrorKind::SessionEnded
    );
    assert_eq!(
        kind(tm.rotate_session(&s.id, None)),
        ErrorKind::SessionEnded
    );
    tm.verify_session(&r.id, Some("ua=firefox;key=k1")).unwrap();
    let audit = tm
        .list_audit(&irontoken::AuditFilter {
            action: Some("session.rotate".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(audit.items.len(), 1);
}

#[test]
fn a_bound_session_refuses_another_fingerprint() {
    let m = common::open_private(Options::default());
    let tm: &TokenManager = &m;
    let mut req = new("bob");
    req.fingerprint = Some("fp-1".into());
    let s = tm.create_session(&req).unwrap();
    tm.verify_session(&s.id, Some("fp-1")).unwrap();
    for other in [Some("fp-2"), None, Some("FP-1")] {
        assert_eq!(
            kind(tm.verify_session(&s.id, other)),
            ErrorKind::SessionFingerprintMismatch,
            "{other:?}"
        );
    }
    // An unbound session takes any (or no) fingerprint.
    let free = tm.create_session(&new("bob")).unwrap();
    assert!(!free.fingerprint_bound);
    tm.verify_session(&free.id, None).unwrap();
    tm.verify_session(&free.id, Some("anything")).unwrap();
    let mut bad = new("bob");
    bad.fingerprint = Some(String::new());
    assert_eq!(kind(tm.create_session(&bad)), ErrorKind::InvalidArgument);
    bad.fingerprint = Some("x".repeat(1025));
    assert_eq!(kind(tm.create_session(&bad)), ErrorKind::InvalidArgument);
    assert_eq!(
        kind(tm.verify_session("not-a-uuid", None)),
        ErrorKind::SessionNotFound
    );
}

#[test]
fn the_per_owner_limit_refuses_or_evicts() {
    let m = common::open_private(Options::default().manual_clock(1_700_000_000));
    let tm: &TokenManager = &m;
    let limited = |evict: bool| {
        let mut r = new("carol");
        r.max_concurrent = Some(2);
        r.evict_oldest = evict;
        r
    };
    let a = tm.create_session(&limited(false)).unwrap();
    tm.advance_clock(1).unwrap();
    let b = tm.create_session(&limited(false)).unwrap();
    assert_eq!(
        kind(tm.create_session(&limited(false))),
        ErrorKind::SessionLimitExceeded
    );
    // Other owners are not counted; ended sessions make room.
    tm.create_session(&{
        let mut r = limited(false);
        r.owner = "dave".into();
        r
    })
    .unwrap();
    tm.advance_clock(1).unwrap();
    let c = tm.create_session(&limited(true)).unwrap();
    let a = tm.get_session(&a.id).unwrap();
    assert_eq!(a.end_reason.as_deref(), Some("evicted"));
    assert!(tm.get_session(&b.id).unwrap().status.is_live());
    assert!(c.status.is_live());
    let mut bad = new("carol");
    bad.max_concurrent = Some(0);
    assert_eq!(kind(tm.create_session(&bad)), ErrorKind::InvalidArgument);
    bad.max_concurrent = None;
    bad.evict_oldest = true;
    assert_eq!(kind(tm.create_session(&bad)), ErrorKind::InvalidArgument);
}

#[test]
fn four_racing_managers_never_pass_the_limit() {
    let shared = common::shared_store();
    let open = || TokenManager::open(&shared.url).unwrap();
    let ok: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let open = &open;
                s.spawn(move || {
                    let tm = open();
                    (0..3)
                        .filter(|_| {
                            let mut r = new("erin");
                            r.max_concurrent = Some(5);
                            match tm.create_session(&r) {
                                Ok(_) => true,
                                Err(e) => {
                                    assert_eq!(e.kind(), ErrorKind::SessionLimitExceeded);
                                    false
                                }
                            }
                        })
                        .count()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(ok, 5);
}

#[test]
fn ending_every_session_of_an_owner() {
    let m = common::open_private(Options::default());
    let tm: &TokenManager = &m;
    let keep = tm.create_session(&new("frank")).unwrap();
    let other = tm.create_session(&new("frank")).unwrap();
    let third = tm.create_session(&new("frank")).unwrap();
    let stranger = tm.create_session(&new("gina")).unwrap();
    assert_eq!(
        tm.end_sessions("frank", Some("password changed"), Some(&keep.id))
            .unwrap(),
        2
    );
    for id in [&other.id, &third.id] {
        let s = tm.get_session(id).unwrap();
        assert_eq!(s.end_reason.as_deref(), Some("password changed"));
    }
    assert!(tm.get_session(&keep.id).unwrap().status.is_live());
    assert!(tm.get_session(&stranger.id).unwrap().status.is_live());
    assert_eq!(tm.end_sessions("frank", None, None).unwrap(), 1);
    assert_eq!(tm.end_sessions("frank", None, None).unwrap(), 0);
    assert_eq!(
        kind(tm.end_sessions("", None, None)),
        ErrorKind::InvalidArgument
    );
}
