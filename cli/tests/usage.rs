//! The `irontoken` binary's usage commands end to end: usage, quotas and
//! sessions, budgets and agent tokens, rate limits shared through the database.

use irontoken::TokenManager;
use serde_json::Value;
use std::process::Command;

mod common;
use common::*;

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
    let hourly = json(&cli(
        db,
        &[
            "--json",
            "usage",
            "report",
            "--by",
            "hour",
            "--group-by",
            "model",
        ],
    ));
    assert_eq!(hourly.as_array().unwrap().len(), 2, "{hourly}");
    assert!(hourly[0]["hour"].as_str().unwrap().ends_with(":00:00Z"));
    let table = cli(db, &["usage", "report", "--by", "hour"]);
    assert!(String::from_utf8_lossy(&table.stdout).starts_with("HOUR"));
    assert!(
        !cli(db, &["usage", "report", "--by", "minute"])
            .status
            .success()
    );
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
    // LLM limits: tokens per minute, a model allow-list, a per-request ceiling.
    let created = json(&cli(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "o",
            "--rate-limit",
            "tpm=1000tokens/1m",
            "--model",
            "gpt-4o*",
            "--max-tokens-per-request",
            "800",
        ],
    ));
    assert_eq!(created["record"]["rate_limits"][0]["unit"], "tokens");
    assert_eq!(created["record"]["models"][0], "gpt-4o*");
    assert_eq!(created["record"]["max_tokens_per_request"], 800);
    let key = created["key"].as_str().unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["keys", "verify", key, "--rate-limit"];
        args.extend_from_slice(extra);
        let o = cli(db, &args);
        let first = String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        (o.status.code().unwrap(), first)
    };
    assert_eq!(
        verify(&["--model", "gpt-4o", "--tokens", "600"]),
        (0, "VALID".into())
    );
    assert_eq!(
        verify(&["--model", "claude-3", "--tokens", "1"]),
        (1, "MODEL_NOT_ALLOWED".into())
    );
    assert_eq!(
        verify(&["--model", "gpt-4o", "--tokens", "801"]),
        (1, "REQUEST_TOO_LARGE".into())
    );
    assert_eq!(
        verify(&["--model", "gpt-4o", "--tokens", "600"]),
        (1, "RATE_LIMITED".into()),
        "400 tokens left"
    );
    // An owner's policy narrows the key's own.
    let set = json(&cli(
        db,
        &["keys", "owner-policy", "set", "o", "--model", "claude-*"],
    ));
    assert_eq!(set["models"][0], "claude-*");
    assert_eq!(
        verify(&["--model", "gpt-4o", "--tokens", "1"]).1,
        "MODEL_NOT_ALLOWED"
    );
    let shown = json(&cli(db, &["keys", "owner-policy", "show", "o"]));
    assert_eq!(shown["owner"], "o");
    let o = cli(db, &["keys", "owner-policy", "delete", "o"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("deleted"));
    assert!(json(&cli(db, &["keys", "owner-policy", "show", "o"])).is_null());
    let o = cli(
        db,
        &[
            "ratelimit",
            "check",
            "c",
            "--limit",
            "t=100tokens/1m",
            "--cost",
            "60",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let o = cli(
        db,
        &[
            "ratelimit",
            "check",
            "c",
            "--limit",
            "t=100tokens/1m",
            "--cost",
            "60",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
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

#[test]
fn sessions_rotate_and_end_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let (a, b) = {
        let tm = TokenManager::open(db).unwrap();
        let mk = |fp: Option<&str>| {
            tm.create_session(&irontoken::NewSession {
                owner: "ops".into(),
                fingerprint: fp.map(str::to_string),
                ..Default::default()
            })
            .unwrap()
            .id
        };
        (mk(Some("fp-1")), mk(None))
    };
    let wrong = cli(db, &["sessions", "rotate", &a, "--fingerprint", "fp-2"]);
    assert_eq!(
        wrong.status.code(),
        Some(10 + 50),
        "SESSION_FINGERPRINT_MISMATCH"
    );
    let new = json(&cli(
        db,
        &["--json", "sessions", "rotate", &a, "--fingerprint", "fp-1"],
    ));
    assert_ne!(new["id"].as_str().unwrap(), a);
    assert_eq!(new["fingerprint_bound"], true);
    let old = json(&cli(db, &["--json", "sessions", "show", &a]));
    assert_eq!(old["end_reason"], "rotated");
    let ended = json(&cli(
        db,
        &[
            "--json", "sessions", "end-all", "--owner", "ops", "--except", &b,
        ],
    ));
    assert_eq!(ended["ended"], 1);
    let kept = json(&cli(db, &["--json", "sessions", "show", &b]));
    assert_eq!(kept["status"], "active");
}
