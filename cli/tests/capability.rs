//! `irontoken cap`: mint, attenuate and inspect offline, authorize (exit 1
//! when refused), revoke a parent and see its child refused, public keys.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;
use common::json;

const MASTER: &str = "0707070707070707070707070707070707070707070707070707070707070707";

fn run(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
    c.env_remove("IRONTOKEN_ACTOR")
        .env("IRONTOKEN_MASTER_KEY", MASTER)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn cap_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("caps.db");
    let db = db.to_str().unwrap();
    let created = json(&run(
        db,
        &["--json", "keys", "create", "--owner", "acme"],
        None,
    ));
    let id = created["record"]["id"].as_str().unwrap().to_string();
    let token = text(&run(
        db,
        &[
            "--quiet",
            "cap",
            "mint",
            "--key",
            &id,
            "--tool",
            "search",
            "--tool",
            "fetch",
            "--ttl",
            "1h",
            "--ceiling",
            "1000",
        ],
        None,
    ));
    // Offline: narrowed from stdin, with no database at that path.
    let nowhere = dir.path().join("absent.db");
    let nowhere = nowhere.to_str().unwrap();
    let child = text(&run(
        nowhere,
        &["cap", "attenuate", "-", "--tool", "search", "--ttl", "10m"],
        Some(&token),
    ));
    assert!(!std::path::Path::new(nowhere).exists());
    let info = json(&run(nowhere, &["--json", "cap", "inspect", &child], None));
    assert_eq!(info["blocks"].as_array().unwrap().len(), 2);
    assert_eq!(info["tools"], serde_json::json!(["search"]));
    // Authorize: exit 0 and charged, exit 1 with the reason when refused.
    let a = json(&run(
        db,
        &[
            "--json",
            "cap",
            "authorize",
            &child,
            "--tool",
            "search",
            "--cost",
            "400",
        ],
        None,
    ));
    assert_eq!(
        (a["allowed"].as_bool(), a["remaining_micros"].as_u64()),
        (Some(true), Some(600))
    );
    let refused = run(db, &["cap", "authorize", &child, "--tool", "fetch"], None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("TOOL_NOT_ALLOWED"));
    // Revoke the parent: the child goes with it.
    let r = json(&run(db, &["--json", "cap", "revoke", &token], None));
    assert_eq!(r["revoked"], info["revocation_ids"][0]);
    let after = run(
        db,
        &["--quiet", "cap", "authorize", "-", "--tool", "search"],
        Some(&child),
    );
    assert_eq!(after.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&after.stdout).trim(),
        "CAPABILITY_REVOKED"
    );
    // Sealed by attenuate --seal: no more blocks.
    let sealed = text(&run(nowhere, &["cap", "attenuate", &token, "--seal"], None));
    let e = run(nowhere, &["--json", "cap", "attenuate", &sealed], None);
    assert_eq!(e.status.code(), Some(10 + 39));
    assert!(String::from_utf8_lossy(&e.stderr).contains("CAPABILITY_SEALED"));
    // Public keys and rotation.
    let pk = text(&run(db, &["cap", "public-key"], None));
    assert!(pk.starts_with("ed25519/") && pk.len() == 72);
    let rotated = text(&run(db, &["cap", "rotate", "--overlap", "0"], None));
    assert_ne!(rotated, pk);
    let all = json(&run(db, &["--json", "cap", "public-key", "--all"], None));
    assert_eq!(all.as_array().unwrap().len(), 1);
    // Garbage is an answer (exit 1), not a crash.
    let g = run(db, &["cap", "authorize", "garbage", "--tool", "x"], None);
    assert_eq!(g.status.code(), Some(1));
}
