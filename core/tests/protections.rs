//! Protections that had no test failing without them (issue 14).

use irontoken::{NewKey, TokenManager};

/// The audit trail is append-only in the schema itself, on a database
/// created at the current version (not only on one migrated from v1): an
/// UPDATE or DELETE by any writer, even with plain SQL, is refused.
#[test]
fn audit_log_refuses_update_and_delete_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let p = path.to_str().unwrap();
    {
        let tm = TokenManager::open(p).unwrap();
        tm.create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    }
    let c = rusqlite::Connection::open(p).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
    for sql in [
        "UPDATE audit_log SET outcome = 'forged'",
        "UPDATE audit_log SET actor = 'someone else' WHERE id = 1",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = 1",
    ] {
        let e = c.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let after: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, n);
}
