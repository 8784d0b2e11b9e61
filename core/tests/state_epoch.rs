//! Next-call revocation under the state epoch: a key state cached by one
//! manager is never answered after another manager (another process, the
//! sqlite3 shell) changed it, whatever the change and however far behind
//! the cache fell.

use common::fixtures::{key, new_key, requests, spec};
use irontoken::{KeyUpdate, RotateOptions, TokenManager, VerifyReason};

mod common;

/// Two managers on one file: what one changes, the other sees.
struct Pair {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    /// Verifies (its cache is the one under test).
    reader: TokenManager,
    /// Changes keys, as another process would.
    writer: TokenManager,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("epoch.db");
    let writer = TokenManager::open(path.to_str().unwrap()).unwrap();
    let reader = TokenManager::open(path.to_str().unwrap()).unwrap();
    Pair {
        _dir: dir,
        path,
        reader,
        writer,
    }
}

impl Pair {
    /// A new key, verified once by the reader (its state now cached).
    fn cached_key(&self) -> (String, String) {
        let c = self.writer.create_key(&new_key("epoch")).unwrap();
        assert_eq!(self.verify(&c.key), VerifyReason::Valid);
        assert_eq!(self.verify(&c.key), VerifyReason::Valid, "from the cache");
        (c.key.to_string(), c.record.id)
    }

    fn verify(&self, key: &str) -> VerifyReason {
        self.reader.verify_key(key, &["read"]).unwrap().reason
    }

    /// A connection of its own, as the sqlite3 shell would open.
    fn shell(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).unwrap()
    }
}

#[test]
fn every_kind_of_state_change_is_seen_by_the_next_call() {
    let p = pair();
    let w = &p.writer;

    let (key, id) = p.cached_key();
    w.disable_key(&id, None).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Disabled);
    w.enable_key(&id, None).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Valid);
    w.revoke_key(&id, None, None).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Revoked);

    let (key, id) = p.cached_key();
    let past = w.get_key(&id).unwrap().created_at - 1;
    w.update_key(
        &id,
        &KeyUpdate {
            expires_at: Some(Some(past)),
            ..Default::default()
        },
    )
    .unwrap_err(); // an expiry before creation is refused: nothing changes
    assert_eq!(p.verify(&key), VerifyReason::Valid);
    w.update_key(
        &id,
        &KeyUpdate {
            scopes: Some(vec!["write".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.verify(&key), VerifyReason::InsufficientScope);

    let (key, id) = p.cached_key();
    w.delete_key(&id, None).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::NotFound);

    let (key, id) = p.cached_key();
    let new = w
        .rotate_key(
            &id,
            &RotateOptions {
                overlap_seconds: 0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        p.verify(&key),
        VerifyReason::Revoked,
        "rotated without overlap"
    );
    assert_eq!(p.verify(&new.key), VerifyReason::Valid);
}

#[test]
fn a_change_made_outside_irontoken_is_seen_too() {
    let p = pair();
    let (key, id) = p.cached_key();
    p.shell()
        .execute("UPDATE api_keys SET enabled = 0 WHERE id = ?1", [&id])
        .unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Disabled);
}

#[test]
fn unrelated_commits_leave_the_cached_states_valid_and_correct() {
    let p = pair();
    let (a, _) = p.cached_key();
    let (b, b_id) = p.cached_key();
    // Commits that change no key state: new keys, usage, a flush.
    for _ in 0..3 {
        key(&p.writer, "other");
        p.writer.flush().unwrap();
        assert_eq!(p.verify(&a), VerifyReason::Valid);
    }
    p.writer.revoke_key(&b_id, None, None).unwrap();
    assert_eq!(
        p.verify(&a),
        VerifyReason::Valid,
        "only the logged key is re-read"
    );
    assert_eq!(p.verify(&b), VerifyReason::Revoked);
}

#[test]
fn a_manager_s_own_writes_keep_its_cache_only_when_they_are_the_only_commits() {
    use irontoken::{QuotaMetric, QuotaPeriod, QuotaScope};
    let p = pair();
    let (key, id) = p.cached_key();
    let quota = spec(
        QuotaScope::Key,
        &id,
        QuotaMetric::Requests,
        QuotaPeriod::Month,
        1_000_000,
    );
    p.reader.set_quota(&quota).unwrap();
    let one = requests(1);
    // The reader's own commits that change no key state, each the only
    // commit since its last check: the cache holds, answers stay right.
    for _ in 0..5 {
        p.reader.consume_quota(&id, &one).unwrap();
        assert_eq!(p.verify(&key), VerifyReason::Valid);
    }
    // Another process's change, then one of the reader's own commits: the
    // log moved by two, so the reader checks and sees the change.
    p.writer.disable_key(&id, None).unwrap();
    p.reader.consume_quota(&id, &one).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Disabled);
    // Its own state change is never taken for one that changed nothing.
    p.reader.enable_key(&id, None).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Valid);
    p.reader.revoke_key(&id, None, None).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Revoked);
}

#[test]
fn a_reader_behind_the_whole_change_log_forgets_every_state() {
    let p = pair();
    let (key, id) = p.cached_key();
    p.writer.revoke_key(&id, None, None).unwrap();
    // The log no longer reaches back to the reader's epoch (as after
    // 65 536 later changes): the reader cannot tell which keys changed.
    p.shell().execute("DELETE FROM key_changes", []).unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Revoked);
}

#[test]
fn a_database_put_back_to_an_older_epoch_forgets_every_state() {
    let p = pair();
    let (key, id) = p.cached_key();
    let shell = p.shell();
    shell
        .execute("UPDATE api_keys SET enabled = 0 WHERE id = ?1", [&id])
        .unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Disabled, "cached at epoch 1");
    // The copy taken before that change is put back over the file: the
    // key is enabled again and the epoch is 0, below the reader's.
    shell
        .execute_batch(&format!(
            "BEGIN; UPDATE api_keys SET enabled = 1 WHERE id = '{id}'; \
             DELETE FROM key_changes; UPDATE key_epoch SET epoch = 0; COMMIT;"
        ))
        .unwrap();
    assert_eq!(p.verify(&key), VerifyReason::Valid);
}

#[test]
fn concurrent_verifications_never_answer_a_state_older_than_their_call() {
    // Readers verify in a loop while the writer disables and enables the
    // key; once `disable_key` has returned, every verification that starts
    // afterwards answers DISABLED until the enable.
    let p = std::sync::Arc::new(pair());
    let (key, id) = p.cached_key();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (p, key, stop) = (p.clone(), key.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    p.verify(&key);
                }
            })
        })
        .collect();
    for _ in 0..50 {
        p.writer.disable_key(&id, None).unwrap();
        assert_eq!(p.verify(&key), VerifyReason::Disabled);
        p.writer.enable_key(&id, None).unwrap();
        assert_eq!(p.verify(&key), VerifyReason::Valid);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn strict_reads_the_state_from_the_file_on_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strict.db");
    let path = path.to_str().unwrap();
    let writer = TokenManager::open(path).unwrap();
    let mut strict = irontoken::Options::default();
    strict.strict = true;
    let reader = TokenManager::open_with(path, strict).unwrap();
    let c = writer.create_key(&new_key("strict")).unwrap();
    assert!(reader.verify_key(&c.key, &[]).unwrap().valid);
    writer.revoke_key(&c.record.id, None, None).unwrap();
    assert_eq!(
        reader.verify_key(&c.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
}

/// `peek_quota` of a key whose only quota is its own is answered from
/// memory while nothing was committed since its last read; any commit —
/// this manager's, another manager's, the shell's — is seen by the next
/// peek, and so is a change of which quotas apply.
#[test]
fn a_remembered_peek_follows_every_commit() {
    use irontoken::{QuotaMetric::*, QuotaPeriod, QuotaPeriod::Month, QuotaScope::*};
    let p = pair();
    let id = key(&p.writer, "peek");
    p.writer
        .set_quota(&spec(Key, &id, Requests, Month, 10))
        .unwrap();
    let peek = |n| p.reader.peek_quota(&id, &requests(n)).unwrap();
    let used = |n| peek(n).quotas[0].used;
    assert_eq!(used(1), 0);
    assert_eq!(used(1), 0, "nothing committed since");
    p.writer.consume_quota(&id, &requests(3)).unwrap();
    assert_eq!(used(1), 3, "another manager's consumption");
    p.reader.consume_quota(&id, &requests(1)).unwrap();
    assert_eq!(used(1), 4, "its own consumption");
    p.shell()
        .execute("UPDATE quotas SET used = 9 WHERE subject = ?1", [&id])
        .unwrap();
    assert_eq!(used(1), 9, "a change by hand");
    assert!(!peek(2).allowed);
    p.writer
        .set_quota(&spec(Key, &id, Requests, Month, 100))
        .unwrap();
    assert!(peek(2).allowed, "a new limit");
    p.writer
        .set_quota(&spec(Owner, "peek", Tokens, QuotaPeriod::None, 5))
        .unwrap();
    assert_eq!(peek(1).quotas.len(), 2, "an owner quota now applies too");
    let hold = p.writer.reserve_quota(&id, &requests(1), None).unwrap();
    p.writer
        .delete_quota(Owner, "peek", Tokens, QuotaPeriod::None, None)
        .unwrap();
    assert_eq!(peek(1).quotas[0].reserved, 1, "a hold");
    p.writer
        .release_reservation(&hold.reservation.unwrap().id)
        .unwrap();
    assert_eq!(peek(1).quotas[0].reserved, 0, "the hold released");
}

/// An owner's model policy is remembered under the state epoch: a change of
/// it — by another manager, by this one, by hand — is seen by the next
/// verification that names a model.
#[test]
fn an_owner_policy_change_is_seen_by_the_next_call() {
    use irontoken::{OwnerPolicySpec, VerifyOptions};
    let p = pair();
    let c = p.writer.create_key(&new_key("policy")).unwrap();
    let model = |m: &str| {
        p.reader
            .verify_key_with(
                &c.key,
                &VerifyOptions {
                    model: Some(m.into()),
                    ..Default::default()
                },
            )
            .unwrap()
            .reason
    };
    let only = |models: &[&str]| OwnerPolicySpec {
        owner: "policy".into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    assert_eq!(model("gpt-4o"), VerifyReason::Valid);
    assert_eq!(
        model("gpt-4o"),
        VerifyReason::Valid,
        "no policy, remembered"
    );
    p.writer.set_owner_policy(&only(&["claude-*"])).unwrap();
    assert_eq!(
        model("gpt-4o"),
        VerifyReason::ModelNotAllowed,
        "another manager's policy"
    );
    assert_eq!(model("claude-3"), VerifyReason::Valid);
    p.reader.set_owner_policy(&only(&["gpt-*"])).unwrap();
    assert_eq!(
        model("claude-3"),
        VerifyReason::ModelNotAllowed,
        "its own change"
    );
    assert_eq!(model("gpt-4o"), VerifyReason::Valid);
    p.shell()
        .execute(
            "UPDATE owner_policies SET model_policy = '{\"models\":[\"o3\"]}' WHERE owner = 'policy'",
            [],
        )
        .unwrap();
    assert_eq!(
        model("gpt-4o"),
        VerifyReason::ModelNotAllowed,
        "a change by hand"
    );
    assert_eq!(model("o3"), VerifyReason::Valid);
    p.writer.delete_owner_policy("policy", None).unwrap();
    assert_eq!(model("gpt-4o"), VerifyReason::Valid, "the policy deleted");
}
