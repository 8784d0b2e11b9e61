//! `irontoken jwt pair|refresh|family|revoke-family|revoke-families|claim-jti`:
//! a family rotated from the command line, a reused token revoking it (exit
//! 10 + REFRESH_TOKEN_REUSED), revocation by subject, one-time ids.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;
use common::json;

const MASTER: &str = "0707070707070707070707070707070707070707070707070707070707070707";

fn run(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
    c.env_remove("IRONTOKEN_REFRESH_TOKEN")
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

#[test]
fn a_family_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let db = db.to_str().unwrap();
    assert!(
        run(db, &["jwt", "keys", "generate", "--alg", "EdDSA"], None)
            .status
            .success()
    );
    let pair = json(&run(
        db,
        &[
            "jwt",
            "pair",
            "alice",
            "--scope",
            "read",
            "--ttl",
            "10m",
            "--claims",
            r#"{"aud":"api"}"#,
        ],
        None,
    ));
    assert_eq!(pair["expires_in"], 600);
    assert_eq!(pair["token_type"], "Bearer");
    let first = pair["refresh_token"].as_str().unwrap().to_string();
    let family = pair["family_id"].as_str().unwrap().to_string();

    // The token from stdin (kept off the command line).
    let next = json(&run(
        db,
        &["jwt", "refresh", "-"],
        Some(&format!("{first}\n")),
    ));
    assert_eq!(next["family_id"], family.as_str());
    let again = run(db, &["--json", "jwt", "refresh", "-"], Some(&first));
    assert_eq!(again.status.code(), Some(10 + 41));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("REFRESH_TOKEN_REUSED"), "{err}");
    assert!(!err.contains(&first[6..]), "the token is not echoed");
    let fam = json(&run(db, &["jwt", "family", &family], None));
    assert_eq!(fam["status"], "revoked");
    assert_eq!(fam["revoke_reason"], "reuse_detected");

    // Revocation by family and by subject.
    let other = json(&run(db, &["jwt", "pair", "bob"], None));
    let id = other["family_id"].as_str().unwrap();
    let out = json(&run(
        db,
        &["--json", "jwt", "revoke-family", id, "--reason", "logout"],
        None,
    ));
    assert_eq!(out["revoked"], true);
    json(&run(db, &["jwt", "pair", "bob"], None));
    let out = json(&run(
        db,
        &["--json", "jwt", "revoke-families", "--subject", "bob"],
        None,
    ));
    assert_eq!(out["revoked"], 1);
    let refused = run(
        db,
        &["jwt", "refresh", other["refresh_token"].as_str().unwrap()],
        None,
    );
    assert_eq!(refused.status.code(), Some(10 + 44));
    let garbage = run(db, &["jwt", "refresh", "itkrt_nope"], None);
    assert_eq!(garbage.status.code(), Some(10 + 42));

    // A family bound to a client certificate: no refresh without it (the
    // CLI presents none).
    let cert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/jwt/keys/rsa_cert.pem"
    );
    let thumb = run(db, &["--quiet", "jwt", "cert-thumbprint", cert], None);
    assert!(thumb.status.success());
    assert_eq!(String::from_utf8_lossy(&thumb.stdout).trim().len(), 43);
    let bound = json(&run(
        db,
        &["jwt", "pair", "carol", "--cert-file", cert],
        None,
    ));
    let refused = run(
        db,
        &["jwt", "refresh", bound["refresh_token"].as_str().unwrap()],
        None,
    );
    assert_eq!(refused.status.code(), Some(10 + 49));

    // One-time ids: exit 0 the first time, 1 after.
    let exp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600)
        .to_string();
    let claim = |jti: &str| run(db, &["jwt", "claim-jti", jti, "--expires-at", &exp], None);
    assert_eq!(claim("j-1").status.code(), Some(0));
    assert_eq!(claim("j-1").status.code(), Some(1));
    assert_eq!(claim("").status.code(), Some(11));
}
