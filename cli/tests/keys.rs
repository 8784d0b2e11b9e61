//! The `irontoken` binary's key commands end to end: the lifecycle and exit
//! codes, two OS processes on one file, imports, due rotations, hostile names
//! and keys, a closed stdout, read commands that create nothing, tombstones.

use irontoken::{NewKey, TokenManager, VerifyReason};
use serde_json::Value;
use std::process::Command;

mod common;
use common::*;

#[test]
fn lifecycle_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let db = db.to_str().unwrap();
    let created = json(&cli(
        db,
        &[
            "--json",
            "--actor",
            "tester",
            "keys",
            "create",
            "--owner",
            "alice",
            "--name",
            "ci",
            "--scope",
            "read",
            "--metadata",
            r#"{"team":"core"}"#,
            "--prefix",
            "sp_live",
        ],
    ));
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["record"]["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("sp_live_"));

    let ok = cli(db, &["keys", "verify", &key, "--scope", "read"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("VALID"));
    let scoped = cli(db, &["keys", "verify", &key, "--scope", "admin"]);
    assert_eq!(scoped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&scoped.stdout).starts_with("INSUFFICIENT_SCOPE"));

    // The key from the environment (not visible in the process list).
    let env = Command::new(env!("CARGO_BIN_EXE_irontoken"))
        .args(["--db", db, "keys", "verify"])
        .env("IRONTOKEN_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(0));

    let bad = cli(db, &["keys", "verify", "itk_garbage"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("MALFORMED"));

    assert!(cli(db, &["keys", "disable", &id]).status.success());
    assert_eq!(cli(db, &["keys", "verify", &key]).status.code(), Some(1));
    assert!(cli(db, &["keys", "enable", &id]).status.success());
    let upd = json(&cli(
        db,
        &[
            "--json",
            "keys",
            "update",
            &id,
            "--name",
            "renamed",
            "--expires-in",
            "600",
        ],
    ));
    assert_eq!(upd["name"], "renamed");
    assert!(upd["expires_at"].as_i64().is_some());

    let rotated = json(&cli(
        db,
        &["--json", "keys", "rotate", &id, "--overlap", "60"],
    ));
    let new_key = rotated["key"].as_str().unwrap();
    assert_eq!(rotated["record"]["version"], 2);
    assert_eq!(cli(db, &["keys", "verify", &key]).status.code(), Some(0));
    assert_eq!(cli(db, &["keys", "verify", new_key]).status.code(), Some(0));

    let revoked = cli(db, &["keys", "revoke", &id, "--reason", "test"]);
    assert!(revoked.status.success());
    let v = cli(db, &["keys", "verify", &key]);
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("REVOKED"));
    // Errors: 10 + the stable number.
    assert_eq!(cli(db, &["keys", "revoke", &id]).status.code(), Some(15));
    assert_eq!(
        cli(db, &["keys", "show", "missing"]).status.code(),
        Some(12)
    );
    let e = cli(db, &["--json", "keys", "create", "--owner", ""]);
    assert_eq!(e.status.code(), Some(11));
    let err: Value = serde_json::from_slice(&e.stderr).unwrap();
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(cli(db, &["keys", "frobnicate"]).status.code(), Some(2));

    // Tables by default.
    let list = cli(db, &["keys", "list", "--owner", "alice"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.starts_with("ID"));
    assert_eq!(text.lines().count(), 3);
    assert!(!text.contains(&key[8..]));
    let list = json(&cli(db, &["--json", "keys", "list", "--status", "active"]));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let audit = json(&cli(db, &["--json", "audit", "list", "--key-id", &id]));
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"key.create") && actions.contains(&"key.revoke"));
    let by = json(&cli(db, &["--json", "audit", "list", "--by", "tester"]));
    assert_eq!(by["items"][0]["action"], "key.create");
    let audit_text = String::from_utf8_lossy(&cli(db, &["audit", "list"]).stdout).to_string();
    assert!(audit_text.contains("key.verify") && audit_text.contains("MALFORMED"));
    assert!(!audit_text.contains(&key[8..]));
}

#[test]
fn two_processes_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let db = db.to_str().unwrap();
    let tm = TokenManager::open(db).unwrap();
    let a = tm
        .create_key(&NewKey {
            owner: "p".into(),
            ..Default::default()
        })
        .unwrap();
    let b = tm
        .create_key(&NewKey {
            owner: "p".into(),
            ..Default::default()
        })
        .unwrap();
    // Created here, verified and revoked there.
    assert_eq!(cli(db, &["keys", "verify", &a.key]).status.code(), Some(0));
    assert!(cli(db, &["keys", "revoke", &a.record.id]).status.success());
    assert_eq!(
        tm.verify_key(&a.key, &[]).unwrap().reason,
        VerifyReason::Revoked
    );
    // Revoked here, seen there.
    assert_eq!(cli(db, &["keys", "verify", &b.key]).status.code(), Some(0));
    tm.revoke_key(&b.record.id, None, None).unwrap();
    let v = cli(db, &["keys", "verify", &b.key]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("REVOKED"));
    // The CLI process's uses were flushed at exit.
    assert_eq!(tm.get_key(&b.record.id).unwrap().usage_count, 1);
}

#[test]
fn control_and_bidi_characters_are_refused_and_old_ones_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    for owner in [
        "alice\nFAKE-ROW  active",
        "ali\u{202e}ecila",
        "bob\u{200b}",
        "x\u{1b}[2J",
    ] {
        let o = cli(db, &["keys", "create", "--owner", owner]);
        assert_eq!(o.status.code(), Some(11), "{owner:?}"); // 10 + INVALID_ARGUMENT
    }
    // A row written before the check (or by another writer) is escaped.
    let tm = TokenManager::open(db).unwrap();
    let id = tm
        .create_key(&NewKey {
            owner: "placeholder".into(),
            ..Default::default()
        })
        .unwrap()
        .record
        .id;
    drop(tm);
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute(
        "UPDATE api_keys SET owner = ?1 WHERE id = ?2",
        rusqlite::params!["alice\nFAKE-ROW  active\u{202e}", id],
    )
    .unwrap();
    drop(c);
    let list = cli(db, &["keys", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8(list.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}"); // header + one row
    assert!(
        text.contains("alice\\u{000a}FAKE-ROW  active\\u{202e}"),
        "{text}"
    );
    let show = String::from_utf8(cli(db, &["keys", "show", &id]).stdout).unwrap();
    assert!(
        !show.contains('\u{202e}') && show.contains("\\u{000a}"),
        "{show}"
    );
}

#[test]
fn a_closed_stdout_never_loses_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pipe.db");
    let db = db.to_str().unwrap();
    TokenManager::open(db).unwrap();
    // The reader goes away before the key is written (`| head -c0`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_irontoken"))
        .args(["--db", db, "keys", "create", "--owner", "piped"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("nothing was created"), "{stderr}");
    // Nothing was committed: no key exists to be lost.
    let tm = TokenManager::open(db).unwrap();
    assert!(tm.list_keys(&Default::default()).unwrap().items.is_empty());
    // Listing into a closed pipe is quiet too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_irontoken"))
        .args(["--db", db, "audit", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    // stdout closed (`>&-`): the key would be seen by nobody; refused
    // before anything is created.
    let closed = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" --db \"$1\" keys create --owner void >&-",
            env!("CARGO_BIN_EXE_irontoken"),
            db,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(!closed.status.success(), "{stderr}");
    assert!(stderr.contains("nothing was created"), "{stderr}");
    let tm = TokenManager::open(db).unwrap();
    assert!(tm.list_keys(&Default::default()).unwrap().items.is_empty());
    // `> /dev/null` is the caller's explicit choice: allowed.
    let discarded = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" --db \"$1\" keys create --owner void > /dev/null",
            env!("CARGO_BIN_EXE_irontoken"),
            db,
        ])
        .output()
        .unwrap();
    assert!(discarded.status.success());
    assert_eq!(tm.list_keys(&Default::default()).unwrap().items.len(), 1);
}

#[test]
fn read_commands_never_create_a_database_and_doctor_checks_one() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.db");
    let t = typo.to_str().unwrap();
    for args in [
        &["keys", "list"][..],
        &["keys", "show", "x"],
        &["keys", "verify", "itk_x"],
        &["audit", "list"],
        &["usage", "report"],
    ] {
        let o = cli(t, args);
        assert_eq!(o.status.code(), Some(46), "{args:?}"); // 10 + DATABASE_NOT_FOUND (36)
        assert!(String::from_utf8_lossy(&o.stderr).contains("no irontoken database at"));
        assert!(!typo.exists(), "{args:?} created the file");
    }
    std::fs::write(&typo, b"").unwrap();
    assert_eq!(cli(t, &["keys", "list"]).status.code(), Some(46));
    assert_eq!(std::fs::metadata(&typo).unwrap().len(), 0);
    // Creating a key creates the database; then reads work; doctor says ok.
    let db = dir.path().join("real.db");
    let d = db.to_str().unwrap();
    assert!(cli(d, &["keys", "create", "--owner", "a"]).status.success());
    assert!(cli(d, &["keys", "list"]).status.success());
    let doc = cli(d, &["doctor"]);
    assert!(
        doc.status.success(),
        "{}",
        String::from_utf8_lossy(&doc.stdout)
    );
    assert!(String::from_utf8_lossy(&doc.stdout).contains("integrity       ok"));
    // Damage it: open refuses (exit 10 + DATABASE_CORRUPT), doctor exits 1.
    for i in 0..100 {
        cli(d, &["keys", "create", "--owner", &format!("o{i}")]);
    }
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[2 * 4096..4 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    assert_eq!(cli(d, &["keys", "list"]).status.code(), Some(45));
    let doc = cli(d, &["--json", "doctor"]);
    assert_eq!(doc.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&doc.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(!v["integrity_problems"].as_array().unwrap().is_empty());
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `keys import`: CSV and JSON lines of hashes, all or none, audited; a
/// plaintext in the file is refused and not echoed.
#[test]
fn keys_import_from_csv_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let db = db.to_str().unwrap();
    let (a, b, c) = (
        "old-key-aaaaaaaaaaaaaaaa",
        "old-key-bbbbbbbbbbbbbbbb",
        "old-key-cccccccccccccccc",
    );
    let csv = dir.path().join("keys.csv");
    std::fs::write(
        &csv,
        format!(
            "key_hash,owner,scopes,metadata,display_prefix\n\
             {},alice,read write,\"{{\"\"plan\"\": \"\"pro\"\"}}\",old…aa\n\
             {},bob,,,\n",
            sha256_hex(a),
            sha256_hex(b)
        ),
    )
    .unwrap();
    let out = json(&cli(
        db,
        &[
            "--json",
            "--actor",
            "migration",
            "keys",
            "import",
            csv.to_str().unwrap(),
        ],
    ));
    assert_eq!(out["imported"], 2);
    let verified = cli(db, &["keys", "verify", a, "--scope", "write"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(cli(db, &["keys", "verify", b]).status.success());
    let audit = json(&cli(db, &["--json", "audit", "list", "--by", "migration"]));
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);

    // JSON lines with one bad entry: nothing is imported.
    let jsonl = dir.path().join("keys.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"key_hash\": \"{}\", \"owner\": \"carol\"}}\n{{\"key_hash\": \"{}\", \"owner\": \"dup\"}}\n",
            sha256_hex(c),
            sha256_hex(a)
        ),
    )
    .unwrap();
    let o = cli(db, &["keys", "import", jsonl.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(10 + 7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The error names the file's line, not an index.
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 2: "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(cli(db, &["keys", "verify", c]).status.code(), Some(1));

    // A plaintext in the file is refused without being echoed.
    std::fs::write(
        &jsonl,
        format!("{{\"key\": \"{c}\", \"owner\": \"carol\"}}\n"),
    )
    .unwrap();
    let o = cli(
        db,
        &[
            "keys",
            "import",
            "--format",
            "jsonl",
            jsonl.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(10 + 1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("key_hash") && !err.contains(c), "{err}");
    // Malformed JSON names the line, not the text.
    std::fs::write(&jsonl, format!("{{\"key_hash\": {c}}}\n")).unwrap();
    let o = cli(db, &["keys", "import", jsonl.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 1") && !err.contains(c), "{err}");
}

/// Scheduled rotation from the CLI: a key with a rotation period, listed
/// when due, rotated once by `keys rotate-due` (the new key printed once).
#[test]
fn keys_due_and_rotate_due() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let db = db.to_str().unwrap();
    let created = json(&cli(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "alice",
            "--rotation-period",
            "1s",
        ],
    ));
    assert_eq!(created["record"]["rotation_period"], 1);
    let plain = json(&cli(db, &["--json", "keys", "create", "--owner", "bob"]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let due = json(&cli(db, &["--json", "keys", "due"]));
    let ids: Vec<&str> = due["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [created["record"]["id"].as_str().unwrap()]);
    // With a default period, bob's key is due too.
    let due = json(&cli(
        db,
        &["--json", "keys", "due", "--default-period", "1s"],
    ));
    assert_eq!(due["items"].as_array().unwrap().len(), 2);
    let rotated = json(&cli(
        db,
        &[
            "--json",
            "--actor",
            "cron",
            "keys",
            "rotate-due",
            "--overlap",
            "1h",
        ],
    ));
    let rotated = rotated.as_array().unwrap();
    assert_eq!(rotated.len(), 1);
    let new_key = rotated[0]["key"].as_str().unwrap();
    assert_eq!(
        rotated[0]["record"]["rotated_from"],
        created["record"]["id"]
    );
    let v = cli(db, &["keys", "verify", new_key]);
    assert!(v.status.success());
    assert!(
        cli(db, &["keys", "verify", created["key"].as_str().unwrap()])
            .status
            .success(),
        "overlap"
    );
    // The old key is never rotated twice (the new one, 1 s old by now, may be due).
    let again = json(&cli(db, &["--json", "keys", "rotate-due"]));
    for c in again.as_array().unwrap() {
        assert_ne!(c["record"]["rotated_from"], created["record"]["id"]);
    }
    // Clearing the period: never due again (no default given).
    let id = plain["record"]["id"].as_str().unwrap();
    let r = json(&cli(
        db,
        &["--json", "keys", "update", id, "--rotation-period", "5s"],
    ));
    assert_eq!(r["rotation_period"], 5);
    let r = json(&cli(
        db,
        &["--json", "keys", "update", id, "--clear-rotation-period"],
    ));
    assert!(r.get("rotation_period").is_none_or(Value::is_null));
}

/// Hostile input found by hand (session 10): an expiry past the year 9999
/// created the key and then panicked printing it; a key whose bytes are not
/// UTF-8 (stdin or IRONTOKEN_KEY) was a read error (exit 11) and a variable
/// that was not UTF-8 was silently ignored for stdin. Now: INVALID_ARGUMENT
/// with nothing written, and a MALFORMED refusal (exit 1).
#[test]
fn expiries_past_9999_and_non_utf8_keys() {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let db = db.to_str().unwrap();
    let create =
        |flag: &str, value: &str| cli(db, &["keys", "create", "--owner", "a", flag, value]);
    let o = create("--expires-in", "99999999999999999");
    assert_eq!(
        o.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("expires_in"));
    assert!(o.stdout.is_empty(), "no key printed");
    // The command that would have made the database failed: no file is left.
    assert!(!std::path::Path::new(db).exists(), "nothing written");
    let o = create("--expires-at", "253402300799");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(db, &["keys", "list"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("9999-12-31T23:59:59Z"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_irontoken"))
        .env_remove("IRONTOKEN_KEY")
        .args(["--db", db, "keys", "verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"itk_\xff\xfe\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("MALFORMED"));
    let o = Command::new(env!("CARGO_BIN_EXE_irontoken"))
        .env("IRONTOKEN_KEY", std::ffi::OsStr::from_bytes(b"\xff"))
        .args(["--db", db, "keys", "verify"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("MALFORMED"));
}

#[test]
fn a_deleted_key_stays_deleted_until_lift_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tomb.db");
    let db = db.to_str().unwrap();
    let old = "old-service-key-0123456789";
    let csv = dir.path().join("keys.csv");
    std::fs::write(
        &csv,
        format!("key_hash,owner,legacy_id\n{},acme,row-7\n", sha256_hex(old)),
    )
    .unwrap();
    let import = || cli(db, &["keys", "import", csv.to_str().unwrap()]);
    assert!(import().status.success());
    let listed = json(&cli(db, &["--json", "keys", "list"]));
    let id = listed["items"][0]["id"].as_str().unwrap().to_string();
    assert!(cli(db, &["keys", "delete", &id]).status.success());
    // The tombstone refuses the import (CONFLICT), and so does the old record's id.
    let again = import();
    assert_eq!(again.status.code(), Some(10 + 7));
    assert!(String::from_utf8_lossy(&again.stderr).contains("lift_tombstone"));
    let lift = cli(
        db,
        &[
            "--actor",
            "ops",
            "keys",
            "lift-tombstone",
            "--key-hash",
            &sha256_hex(old),
        ],
    );
    assert!(
        lift.status.success(),
        "{}",
        String::from_utf8_lossy(&lift.stderr)
    );
    let twice = cli(
        db,
        &["keys", "lift-tombstone", "--key-hash", &sha256_hex(old)],
    );
    assert_eq!(twice.status.code(), Some(1));
    assert!(import().status.success());
    assert!(cli(db, &["keys", "verify", old]).status.success());
    let audit = json(&cli(
        db,
        &["--json", "audit", "list", "--action", "key.tombstone_lift"],
    ));
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    assert_eq!(audit["items"][0]["actor"], "ops");
}
