//! A manager opened before `fork()` (gunicorn `--preload`) keeps working in
//! the child: its own connections and flusher, nothing the parent buffered
//! written twice, nothing the child records lost. Alone in its test binary:
//! a fork copies only the calling thread.

#![cfg(unix)]

use irontoken::{NewKey, Options, TokenManager, UsageQuery, UsageReport};
use std::time::Duration;

#[test]
fn a_forked_child_reopens_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fork.db");
    let path = path.to_str().unwrap();
    // A long interval: only explicit flushes (and drop) write.
    let tm = TokenManager::open_with(
        path,
        Options::default().flush_interval(Duration::from_secs(3600)),
    )
    .unwrap();
    let created = tm
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    // Buffered in the parent at the fork: 3 uses and one usage record.
    for _ in 0..3 {
        assert!(tm.verify_key(&created.key, &[]).unwrap().valid);
    }
    let report = |id: &str| UsageReport {
        request_id: Some(id.into()),
        key_id: Some(created.record.id.clone()),
        prompt_tokens: 10,
        ..Default::default()
    };
    tm.record_usage(&report("parent-1")).unwrap();

    // SAFETY: the child calls into the manager (its first call reopens) and
    // leaves with _exit, running no destructor of the parent's state twice.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..5 {
                assert!(tm.verify_key(&created.key, &[]).unwrap().valid);
            }
            tm.record_usage(&report("child-1")).unwrap();
            // The child's flusher runs: a short wait must not be needed,
            // but dropping the manager writes what the child buffered.
            tm.flush().unwrap();
            let k = tm.get_key(&created.record.id).unwrap();
            // The parent's 3 uses are not the child's to write.
            assert_eq!(k.usage_count, 5);
            drop(tm);
            0
        }))
        .unwrap_or(1);
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child did not exit");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child failed");
    // The parent writes its own buffer, once.
    tm.flush().unwrap();
    let k = tm.get_key(&created.record.id).unwrap();
    assert_eq!(k.usage_count, 8);
    let ids: Vec<String> = tm
        .export_usage(&UsageQuery::default())
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"parent-1".to_string()) && ids.contains(&"child-1".to_string()));
    // The parent still works, its flusher included.
    assert!(tm.verify_key(&created.key, &[]).unwrap().valid);

    // A child that cannot open the database again answers the error on
    // every call (writing and reading nothing) and opens it on a later call
    // once it can.
    let moved = dir.path().with_extension("moved");
    // SAFETY: as above.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::fs::rename(dir.path(), &moved).unwrap();
            for _ in 0..2 {
                let e = tm.get_key(&created.record.id).unwrap_err();
                assert!(e.message().contains("forked child failed"), "{e}");
                let e = tm.record_usage(&report("child-2")).and_then(|_| tm.flush());
                assert!(e.is_err());
            }
            std::fs::rename(&moved, dir.path()).unwrap();
            // The parent's last use is still in the parent's buffer.
            let k = tm.get_key(&created.record.id).unwrap();
            assert_eq!(k.usage_count, 8);
            0
        }))
        .unwrap_or(1);
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child did not exit");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child failed");
    assert!(dir.path().exists());
    tm.flush().unwrap();
    assert_eq!(tm.get_key(&created.record.id).unwrap().usage_count, 9);
    let usage = tm.export_usage(&UsageQuery::default()).unwrap().items;
    assert_eq!(usage.len(), 2, "nothing of the failed child's written");
}
