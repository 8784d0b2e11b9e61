//! The `irontoken` binary's JWT commands end to end: signing and verifying, key
//! files judged by content, a JWKS URL, managed signing keys and the API-key
//! exchange.

use serde_json::Value;
use std::process::Command;

mod common;
use common::*;

#[test]
fn jwt_sign_and_verify() {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/jwt/keys");
    let priv_pem = format!("{keys}/rsa_private.pem");
    let pub_pem = format!("{keys}/rsa_public.pem");
    let jwt = irontoken;
    let signed = jwt(
        &[
            "jwt",
            "sign",
            "--key-file",
            &priv_pem,
            "--alg",
            "RS256",
            "--sub",
            "alice",
            "--expires-in",
            "60",
            "--kid",
            "k1",
            "--claims",
            r#"{"scope":"read"}"#,
        ],
        &[],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let token = String::from_utf8(signed.stdout).unwrap().trim().to_string();
    let ok = jwt(
        &[
            "--json",
            "jwt",
            "verify",
            &token,
            "--key-file",
            &pub_pem,
            "--alg",
            "RS256",
        ],
        &[],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["claims"]["sub"], "alice");
    assert_eq!(v["header"]["kid"], "k1");
    // Refusals exit with 10 + the stable number: 26 = JWT_ALG_NOT_ALLOWED,
    // 30 = JWT_MISSING_CLAIM (an audience is expected, the token has none).
    let wrong_alg = jwt(
        &[
            "jwt",
            "verify",
            &token,
            "--key-file",
            &pub_pem,
            "--alg",
            "ES256",
        ],
        &[],
    );
    assert_eq!(wrong_alg.status.code(), Some(26));
    let wrong_aud = jwt(
        &[
            "jwt",
            "verify",
            &token,
            "--key-file",
            &pub_pem,
            "--alg",
            "RS256",
            "--aud",
            "x",
        ],
        &[],
    );
    assert_eq!(
        wrong_aud.status.code(),
        Some(30),
        "{}",
        String::from_utf8_lossy(&wrong_aud.stderr)
    );
    // HMAC secret from the environment, token from the environment.
    let secret = "irontoken-test-hmac-secret-of-32-bytes!!";
    let hs = jwt(
        &[
            "jwt",
            "sign",
            "--key-env",
            "S",
            "--alg",
            "HS256",
            "--sub",
            "b",
            "--expires-in",
            "60",
        ],
        &[("S", secret)],
    );
    let hs_token = String::from_utf8(hs.stdout).unwrap().trim().to_string();
    let v = jwt(
        &["jwt", "verify", "--key-env", "S", "--alg", "HS256"],
        &[("S", secret), ("IRONTOKEN_JWT", &hs_token)],
    );
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let weak = jwt(
        &["jwt", "sign", "--key-env", "S", "--alg", "HS256"],
        &[("S", "short")],
    );
    assert_eq!(weak.status.code(), Some(34));
    assert!(!String::from_utf8_lossy(&weak.stderr).contains("short\n"));
}

#[test]
fn managed_signing_keys_and_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let master = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    let run = |args: &[&str], master: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
        c.env_remove("IRONTOKEN_MASTER_KEY")
            .env_remove("IRONTOKEN_KEY")
            .arg("--db")
            .arg(db)
            .args(args);
        if let Some(m) = master {
            c.env("IRONTOKEN_MASTER_KEY", m);
        }
        c.output().unwrap()
    };
    // No master key: refused with 10 + 25.
    assert_eq!(
        run(&["jwt", "keys", "generate"], None).status.code(),
        Some(35)
    );
    let k1: Value = serde_json::from_slice(
        &run(
            &["--json", "jwt", "keys", "generate", "--alg", "EdDSA"],
            Some(master),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(k1["status"], "active");
    let token = String::from_utf8(
        run(
            &["jwt", "issue", "--sub", "svc", "--ttl", "60"],
            Some(master),
        )
        .stdout,
    )
    .unwrap();
    let jwks = run(&["jwt", "keys", "jwks"], None).stdout; // public: no master key needed
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, &jwks).unwrap();
    let v = run(
        &[
            "jwt",
            "verify",
            token.trim(),
            "--key-file",
            jwks_path.to_str().unwrap(),
            "--alg",
            "EdDSA",
        ],
        None,
    );
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let k2: Value = serde_json::from_slice(
        &run(
            &["--json", "jwt", "keys", "rotate", "--overlap", "0"],
            Some(master),
        )
        .stdout,
    )
    .unwrap();
    assert_ne!(k1["kid"], k2["kid"]);
    // The scheduled rotation: a key created just now is not due at 90 days;
    // --every 0s is refused; a second later it is due at --every 1s.
    let not_due = run(
        &[
            "--json",
            "jwt",
            "keys",
            "rotate-due",
            "--every",
            "90d",
            "--overlap",
            "1d",
        ],
        Some(master),
    );
    assert!(
        not_due.status.success(),
        "{}",
        String::from_utf8_lossy(&not_due.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&not_due.stdout).trim(), "null");
    assert_eq!(
        run(
            &["--json", "jwt", "keys", "rotate-due", "--every", "0s"],
            Some(master)
        )
        .status
        .code(),
        Some(11)
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let due: Value = serde_json::from_slice(
        &run(
            &[
                "--json",
                "jwt",
                "keys",
                "rotate-due",
                "--every",
                "1s",
                "--overlap",
                "1h",
            ],
            Some(master),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(due["status"], "active");
    assert_ne!(due["kid"], k2["kid"]);
    let list: Value =
        serde_json::from_slice(&run(&["--json", "jwt", "keys", "list"], None).stdout).unwrap();
    assert_eq!(list[0]["status"], "retired");
    assert_eq!(list[1]["status"], "verify_only");
    assert_eq!(list[2]["kid"], due["kid"]);
    // Exchange an API key for an access token.
    let created: Value = serde_json::from_slice(
        &run(
            &[
                "--json", "keys", "create", "--owner", "svc", "--scope", "read",
            ],
            None,
        )
        .stdout,
    )
    .unwrap();
    let key = created["key"].as_str().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
    let ex = c
        .args(["--db", db, "--json", "keys", "exchange", "--scope", "read"])
        .env("IRONTOKEN_KEY", key)
        .env("IRONTOKEN_MASTER_KEY", master)
        .output()
        .unwrap();
    assert!(
        ex.status.success(),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    let at: Value = serde_json::from_slice(&ex.stdout).unwrap();
    assert_eq!(at["owner"], "svc");
    assert!(at["token"].as_str().unwrap().split('.').count() == 3);
}

#[test]
fn jwt_key_files_are_judged_by_content() {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/jwt/keys");
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read(format!("{keys}/rsa_public.pem")).unwrap();
    // DER (from the PEM body) and a PEM behind openssl's Bag Attributes.
    let body: String = String::from_utf8(pem.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let der_path = dir.path().join("public.der");
    std::fs::write(&der_path, &der).unwrap();
    let bag_path = dir.path().join("bag.pem");
    let mut bag = b"Bag Attributes\n    friendlyName: gw\n".to_vec();
    bag.extend_from_slice(&pem);
    std::fs::write(&bag_path, &bag).unwrap();
    let run = |args: &[&str]| irontoken(args, &[]);
    let priv_pem = format!("{keys}/rsa_private.pem");
    let signed = run(&[
        "jwt",
        "sign",
        "--key-file",
        &priv_pem,
        "--alg",
        "RS256",
        "--sub",
        "a",
        "--expires-in",
        "60",
    ]);
    let token = String::from_utf8(signed.stdout).unwrap().trim().to_string();
    for path in [&der_path, &bag_path] {
        let ok = run(&[
            "jwt",
            "verify",
            &token,
            "--key-file",
            path.to_str().unwrap(),
            "--alg",
            "RS256",
        ]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    // The RS/HS confusion: a public key file used as an HMAC secret is
    // refused (exit 10 + 24 = INVALID_KEY_MATERIAL), for verifying and signing.
    for path in [&der_path, &bag_path] {
        let p = path.to_str().unwrap();
        let forged = run(&["jwt", "verify", &token, "--key-file", p, "--alg", "HS256"]);
        assert_eq!(forged.status.code(), Some(34));
        assert!(!String::from_utf8_lossy(&forged.stderr).contains("MIIB"));
        let sign = run(&[
            "jwt",
            "sign",
            "--key-file",
            p,
            "--alg",
            "HS256",
            "--sub",
            "a",
        ]);
        assert_eq!(sign.status.code(), Some(34));
    }
}

#[test]
fn jwt_verify_against_a_jwks_url() {
    use std::io::{Read, Write};
    let secret = "d".repeat(32);
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret);
    // The Ed25519 key of the test vectors, and a published secret (kid h1)
    // that must verify nothing.
    let pem = include_str!("../../tests/vectors/jwt/keys/ed25519_private.pem");
    let body = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"d1","x":"K4wEiq85BBSQjYQCClpN39a-8DnZraR_hSPC27S40bI"}},{{"kty":"oct","kid":"h1","k":"{k}"}}]}}"#
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let run = irontoken;
    let sign_with = |key: &str, alg: &str, kid: &str| {
        let signed = run(
            &[
                "jwt",
                "sign",
                "--key-env",
                "KEY",
                "--alg",
                alg,
                "--kid",
                kid,
                "--sub",
                "alice",
                "--expires-in",
                "60",
            ],
            &[("KEY", key)],
        );
        assert!(
            signed.status.success(),
            "{}",
            String::from_utf8_lossy(&signed.stderr)
        );
        String::from_utf8(signed.stdout).unwrap().trim().to_string()
    };
    let token = sign_with(pem, "EdDSA", "d1");
    let ok = run(
        &[
            "jwt",
            "verify",
            &token,
            "--jwks-url",
            &url,
            "--alg",
            "EdDSA",
        ],
        &[],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let claims: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(claims["sub"], "alice");
    // A token MACed with the published secret is refused.
    let forged = sign_with(&secret, "HS256", "h1");
    let refused = run(
        &[
            "jwt",
            "verify",
            &forged,
            "--jwks-url",
            &url,
            "--alg",
            "HS256",
            "--alg",
            "EdDSA",
        ],
        &[],
    );
    assert!(!refused.status.success());
    // http:// to a non-loopback host is refused before any request.
    let refused = run(
        &[
            "jwt",
            "verify",
            &token,
            "--jwks-url",
            "http://idp.example/jwks",
            "--alg",
            "EdDSA",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(11)); // 10 + INVALID_ARGUMENT (1)
    let sign = run(&["jwt", "sign", "--jwks-url", &url, "--alg", "HS256"], &[]);
    assert!(!sign.status.success());
}
