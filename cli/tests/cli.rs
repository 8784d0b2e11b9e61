//! End-to-end tests of the `irontoken` binary, including two OS processes on one file.

use irontoken::{NewKey, TokenManager, VerifyReason};
use serde_json::Value;
use std::process::{Command, Output};

fn cli(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irontoken"))
        .env_remove("IRONTOKEN_KEY")
        .env_remove("IRONTOKEN_ACTOR")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

/// The binary without a database argument (JWT commands), with `env` set.
fn irontoken(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
    c.env_remove("IRONTOKEN_JWT").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

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
fn usage_quota_and_sessions_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    let db = db.to_str().unwrap();
    let created = json(&cli(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "acme",
            "--rate-limit",
            "per_second=10/1s:20",
        ],
    ));
    let id = created["record"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["record"]["rate_limits"][0]["period_ms"], 1000);
    assert_eq!(created["record"]["rate_limits"][0]["burst"], 20);
    {
        let tm = TokenManager::open(db).unwrap();
        for (i, model) in ["gpt", "gpt", "claude"].iter().enumerate() {
            tm.record_usage(&irontoken::UsageReport {
                request_id: Some(format!("r{i}")),
                key_id: Some(id.clone()),
                model: Some(model.to_string()),
                prompt_tokens: 10,
                completion_tokens: 1,
                cost_micros: 1_250_000,
                metadata: Some(
                    serde_json::json!({"note": "a, \"quoted\" value"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
                ..Default::default()
            })
            .unwrap();
        }
        tm.create_session(&irontoken::NewSession {
            owner: "acme".into(),
            idle_timeout_seconds: Some(1),
            ..Default::default()
        })
        .unwrap();
    }
    let report = json(&cli(
        db,
        &["--json", "usage", "report", "--group-by", "owner,model"],
    ));
    assert_eq!(report.as_array().unwrap().len(), 2);
    assert_eq!(report[1]["model"], "gpt");
    assert_eq!(report[1]["cost_micros"], 2_500_000);
    let table = cli(
        db,
        &[
            "usage",
            "report",
            "--group-by",
            "model",
            "--since",
            "2000-01-01T00:00:00Z",
        ],
    );
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("2.500000"));
    let csv = cli(db, &["usage", "export", "--format", "csv"]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("request_id,at,key_id,owner"));
    assert!(
        lines[1].contains(r#""{""note"":""a, \""quoted\"" value""}""#),
        "{}",
        lines[1]
    );
    let out = dir.path().join("u.jsonl");
    let jl = cli(
        db,
        &[
            "usage",
            "export",
            "--format",
            "jsonl",
            "--model",
            "gpt",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(jl.status.success());
    let body = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["owner"], "acme");

    let q = json(&cli(
        db,
        &[
            "--json", "quota", "set", "--owner", "acme", "--metric", "cost", "--period", "month",
            "--limit", "5000000",
        ],
    ));
    assert_eq!(q[0]["remaining"], 5_000_000);
    let listed = json(&cli(db, &["--json", "quota", "list", "--owner", "acme"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let both = cli(db, &["quota", "list", "--owner", "acme", "--key", &id]);
    assert_eq!(both.status.code(), Some(2));
    let bal = json(&cli(
        db,
        &[
            "--json", "quota", "set", "--key", &id, "--metric", "tokens", "--period", "none",
            "--limit", "10",
        ],
    ));
    assert_eq!(bal[0]["reset_at"], Value::Null);
    let credited = json(&cli(
        db,
        &[
            "--json", "quota", "credit", "--key", &id, "--metric", "tokens", "--amount", "5",
        ],
    ));
    assert_eq!(credited[0]["limit"], 15);
    let missing = cli(
        db,
        &[
            "quota", "delete", "--key", &id, "--metric", "requests", "--period", "day",
        ],
    );
    assert_eq!(missing.status.code(), Some(10 + 32), "NOT_FOUND");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let s = json(&cli(
        db,
        &["--json", "sessions", "list", "--status", "expired"],
    ));
    assert_eq!(s["items"].as_array().unwrap().len(), 1);
    let c = json(&cli(
        db,
        &["--json", "sessions", "cleanup", "--purge-older-than", "0"],
    ));
    assert_eq!(
        (c["expired"].as_u64(), c["purged"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn budgets_and_agent_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("agents.db");
    let db = db.to_str().unwrap();
    let master = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_irontoken"))
            .env("IRONTOKEN_MASTER_KEY", master)
            .env("IRONTOKEN_ACTOR", "ops")
            .arg("--db")
            .arg(db)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        run(&["jwt", "keys", "generate", "--alg", "ES256"])
            .status
            .success()
    );
    let b = json(&run(&[
        "--json",
        "budgets",
        "create",
        "--owner",
        "acme",
        "--limit-micros",
        "100000000",
    ]));
    let bid = b["id"].as_str().unwrap().to_string();
    let t = json(&run(&[
        "--json",
        "agents",
        "issue",
        "--agent",
        "agent-1",
        "--budget",
        &bid,
        "--permission",
        "llm:call",
    ]));
    let token = t["token"].as_str().unwrap().to_string();
    {
        let tm = TokenManager::open_with(
            db,
            irontoken::Options::default()
                .master_key(b"0123456789abcdef0123456789abcdef")
                .unwrap(),
        )
        .unwrap();
        let claims = tm.verify_agent_token(&token).unwrap();
        assert_eq!(claims.permissions, vec!["llm:call".to_string()]);
        tm.acquire_lease(&token, 40_000_000, None).unwrap();
    }
    let shown = json(&run(&["--json", "budgets", "show", &bid]));
    assert_eq!(shown["available_micros"], 60_000_000);
    let plain = run(&["agents", "issue", "--agent", "agent-1", "--budget", &bid]);
    assert!(plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stdout)
            .trim()
            .split('.')
            .count()
            == 3
    );
    // The new token revoked the old one and its lease.
    assert_eq!(
        json(&run(&["--json", "budgets", "show", &bid]))["available_micros"],
        100_000_000
    );
    assert!(
        run(&["agents", "revoke", "--agent", "agent-1"])
            .status
            .success()
    );
    let again = run(&["agents", "revoke", "--agent", "agent-1"]);
    assert_eq!(again.status.code(), Some(10 + 32), "NOT_FOUND");
    let missing = run(&["budgets", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(10 + 32));
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

/// Rate limits from the command line: separate CLI processes count against
/// one limit in the database (the default store); `local` would not.
#[test]
fn ratelimit_check_is_shared_through_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rl.db");
    let db = db.to_str().unwrap();
    // Like every command but the creating ones, a check needs the database.
    json(&cli(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "o",
            "--rate-limit",
            "per_minute=2/1m",
        ],
    ));
    let check = |extra: &[&str]| {
        let mut args = vec![
            "ratelimit",
            "check",
            "client-1",
            "--limit",
            "per_minute=3/1m",
        ];
        args.extend_from_slice(extra);
        cli(db, &args)
    };
    // Each run is a new process: the store, not memory, carries the count.
    let codes: Vec<i32> = (0..5).map(|_| check(&[]).status.code().unwrap()).collect();
    assert_eq!(codes, [0, 0, 0, 1, 1]);
    let o = check(&["--peek"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("RATE_LIMITED"));
    // Per process: a fresh process gets a fresh bucket.
    let o = cli(
        db,
        &[
            "--rate-limit-store",
            "local",
            "ratelimit",
            "check",
            "client-1",
            "--limit",
            "per_minute=3/1m",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    // A key's own limits through `keys verify --rate-limit`.
    let created = json(&cli(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "o",
            "--rate-limit",
            "per_minute=2/1m",
        ],
    ));
    let key = created["key"].as_str().unwrap();
    let verify = |k: &str| {
        cli(db, &["keys", "verify", k, "--rate-limit"])
            .status
            .code()
            .unwrap()
    };
    assert_eq!([verify(key), verify(key), verify(key)], [0, 0, 1]);
    // A bad store is INVALID_ARGUMENT, not a crash.
    let o = cli(
        db,
        &[
            "--rate-limit-store",
            "memcached://x",
            "ratelimit",
            "check",
            "k",
            "--limit",
            "a=1/1s",
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("INVALID_ARGUMENT"));
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
