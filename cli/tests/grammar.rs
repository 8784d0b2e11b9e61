//! The CLI's one grammar: durations and instants everywhere, `--json` and
//! `--quiet` on every command, completions loaded by a real bash, man pages,
//! imports that name lines and leave nothing behind, `stats`, `keys list
//! --prefix`, `doctor` on PostgreSQL, `IRONTOKEN_DB`.

use serde_json::Value;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
    for var in [
        "IRONTOKEN_KEY",
        "IRONTOKEN_ACTOR",
        "IRONTOKEN_DB",
        "IRONTOKEN_JWT",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(db: &str, args: &[&str]) -> Output {
    bin().arg("--db").arg(db).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn every_duration_option_takes_one_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let db = db.to_str().unwrap();
    let t0 = now();
    // keys create --expires-in 90d, and plain seconds.
    let c = json(&run(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "a",
            "--expires-in",
            "90d",
        ],
    ));
    let exp = c["record"]["expires_at"].as_i64().unwrap();
    assert!((exp - (t0 + 90 * 86_400)).abs() <= 5, "{exp}");
    let c2 = json(&run(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "a",
            "--expires-in",
            "3600",
        ],
    ));
    assert!((c2["record"]["expires_at"].as_i64().unwrap() - (t0 + 3600)).abs() <= 5);
    // --expires-at: RFC 3339 with an offset, or Unix seconds.
    let c3 = json(&run(
        db,
        &[
            "--json",
            "keys",
            "create",
            "--owner",
            "a",
            "--expires-at",
            "2030-01-01T02:00:00+02:00",
        ],
    ));
    assert_eq!(c3["record"]["expires_at"], 1_893_456_000);
    let id = c["record"]["id"].as_str().unwrap();
    // keys rotate --overlap 1h: the old key verifies for an hour.
    let r = json(&run(
        db,
        &["--json", "keys", "rotate", id, "--overlap", "1h"],
    ));
    let old = json(&run(db, &["--json", "keys", "show", id]));
    let until = old["expires_at"].as_i64().unwrap();
    assert!((until - (t0 + 3600)).abs() <= 5, "{old}");
    assert!(r["key"].is_string());
    // keys update --expires-in 15m.
    let u = json(&run(
        db,
        &[
            "--json",
            "keys",
            "update",
            c2["record"]["id"].as_str().unwrap(),
            "--expires-in",
            "15m",
        ],
    ));
    assert!((u["expires_at"].as_i64().unwrap() - (t0 + 900)).abs() <= 5);
    // Refusals name the grammar and change nothing.
    for (flag, bad) in [
        ("--expires-in", "soon"),
        ("--expires-in", "-5"),
        ("--expires-at", "tomorrow"),
    ] {
        let arg = format!("{flag}={bad}");
        let o = run(db, &["keys", "create", "--owner", "b", &arg]);
        assert_eq!(o.status.code(), Some(2), "{flag} {bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("30s, 15m, 1h, 90d") || err.contains("RFC 3339"),
            "{err}"
        );
    }
    // audit list --since an RFC 3339 instant, --until Unix seconds.
    let since = "2000-01-01T00:00:00Z";
    let a = json(&run(
        db,
        &[
            "--json",
            "audit",
            "list",
            "--since",
            since,
            "--until",
            &(now() + 60).to_string(),
        ],
    ));
    assert!(a["items"].as_array().unwrap().len() >= 4);
    let none = json(&run(
        db,
        &["--json", "audit", "list", "--until", "2000-01-01T00:00:00Z"],
    ));
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

#[test]
fn json_and_quiet_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let db = db.to_str().unwrap();
    // --quiet create: the key alone on stdout, nothing on stderr.
    let o = run(
        db,
        &[
            "--quiet", "keys", "create", "--owner", "alice", "--scope", "read",
        ],
    );
    let key = ok(&o).trim().to_string();
    assert!(key.starts_with("itk_") && !key.contains('\n'));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // --quiet list: ids, one per line; --json: the page.
    let ids = ok(&run(db, &["-q", "keys", "list"]));
    assert_eq!(ids.lines().count(), 1);
    let page = json(&run(db, &["--json", "keys", "list"]));
    assert_eq!(page["items"][0]["id"].as_str().unwrap(), ids.trim());
    // --quiet verify: the verdict only; exit status as ever.
    assert_eq!(
        ok(&run(db, &["-q", "keys", "verify", &key])).trim(),
        "VALID"
    );
    // --quiet revoke: nothing printed, exit 0.
    assert_eq!(ok(&run(db, &["-q", "keys", "revoke", ids.trim()])), "");
    // --json and --quiet together is a usage error.
    assert_eq!(
        run(db, &["--json", "-q", "keys", "list"]).status.code(),
        Some(2)
    );
    // Budgets: a table by default, JSON with --json.
    let table = ok(&run(
        db,
        &[
            "budgets",
            "create",
            "--owner",
            "acme",
            "--limit-micros",
            "5000000",
        ],
    ));
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("5.000000"));
    let b = json(&run(
        db,
        &[
            "--json",
            "budgets",
            "create",
            "--owner",
            "acme",
            "--limit-micros",
            "1",
        ],
    ));
    assert_eq!(b["limit_micros"], 1);
    // Every command answers --json errors as JSON.
    let e = run(db, &["--json", "keys", "show", "nope"]);
    let body: Value = serde_json::from_slice(&e.stderr).unwrap();
    assert_eq!(body["error"]["code"], "KEY_NOT_FOUND");
    // jwt keys list is a table without --json, JSON with it.
    let master = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let with_master = |args: &[&str]| {
        bin()
            .env("IRONTOKEN_MASTER_KEY", master)
            .arg("--db")
            .arg(db)
            .args(args)
            .output()
            .unwrap()
    };
    let kid = ok(&with_master(&[
        "-q", "jwt", "keys", "generate", "--alg", "EdDSA",
    ]));
    let listed = ok(&with_master(&["jwt", "keys", "list"]));
    assert!(
        listed.starts_with("KID") && listed.contains(kid.trim()),
        "{listed}"
    );
    let as_json = json(&with_master(&["--json", "jwt", "keys", "list"]));
    assert_eq!(as_json[0]["kid"].as_str().unwrap(), kid.trim());
    // jwt issue --ttl 15m; --json wraps the token.
    let t = json(&with_master(&[
        "--json", "jwt", "issue", "--sub", "svc", "--ttl", "15m",
    ]));
    assert_eq!(t["token"].as_str().unwrap().matches('.').count(), 2);
}

#[test]
fn completions_load_in_a_real_bash_and_man_pages_are_written() {
    let script = ok(&bin().args(["completions", "bash"]).output().unwrap());
    assert!(script.contains("_irontoken"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("irontoken.bash");
    std::fs::write(&file, &script).unwrap();
    // An interactive bash sources the script; `complete -p` shows it is
    // registered, and asking for completions of `irontoken ke` gives `keys`.
    let probe = format!(
        "source {}; complete -p irontoken; COMP_WORDS=(irontoken ke); COMP_CWORD=1; COMP_LINE='irontoken ke'; COMP_POINT=12; _irontoken irontoken ke irontoken; echo \"words: ${{COMPREPLY[*]}}\"",
        file.display()
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-i", "-c", &probe])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("complete") && text.contains("irontoken"),
        "{text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("words: keys"), "{text}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(
            !ok(&bin().args(["completions", shell]).output().unwrap()).is_empty(),
            "{shell}"
        );
    }
    assert_eq!(
        bin()
            .args(["completions", "tcsh"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    let man = dir.path().join("man");
    ok(&bin().arg("man-pages").arg(&man).output().unwrap());
    for page in [
        "irontoken.1",
        "irontoken-keys.1",
        "irontoken-keys-create.1",
        "irontoken-stats.1",
    ] {
        let text =
            std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn imports_name_lines_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let db_s = db.to_str().unwrap();
    let hash = |c: char| c.to_string().repeat(64);
    // CSV: a bad row names its line (the header is line 1; a quoted
    // field spanning two lines moves the next row down).
    let csv = dir.path().join("keys.csv");
    std::fs::write(
        &csv,
        format!(
            "key_hash,owner,description\n{},alice,\"two\nlines\"\n{},bob,x\n{},carol,y\n",
            hash('a'),
            hash('b'),
            "zz"
        ),
    )
    .unwrap();
    let o = run(db_s, &["keys", "import", csv.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 5: "), "{err}");
    assert!(!db.exists(), "a failed import left {}", db.display());
    for suffix in ["-wal", "-shm"] {
        assert!(!dir.path().join(format!("new.db{suffix}")).exists());
    }
    // JSON lines: the same, counting blank lines.
    let jsonl = dir.path().join("keys.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"key_hash\": \"{}\", \"owner\": \"a\"}}\n\n{{\"key_hash\": \"{}\", \"owner\": \"\"}}\n",
            hash('c'),
            hash('d')
        ),
    )
    .unwrap();
    let o = run(db_s, &["keys", "import", jsonl.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 3: "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!db.exists());
    // A good file imports; an existing database is never removed by a failure.
    std::fs::write(
        &jsonl,
        format!("{{\"key_hash\": \"{}\", \"owner\": \"a\"}}\n", hash('e')),
    )
    .unwrap();
    assert_eq!(
        json(&run(
            db_s,
            &["--json", "keys", "import", jsonl.to_str().unwrap()]
        ))["imported"],
        1
    );
    let o = run(db_s, &["keys", "import", jsonl.to_str().unwrap()]); // the same key again: CONFLICT
    assert_eq!(o.status.code(), Some(17));
    assert!(db.exists());
}

#[test]
fn stats_and_list_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let mut keys = Vec::new();
    for owner in ["alice", "alice", "alice", "bob"] {
        keys.push(json(&run(
            db,
            &["--json", "keys", "create", "--owner", owner],
        )));
    }
    let id = |i: usize| keys[i]["record"]["id"].as_str().unwrap().to_string();
    ok(&run(db, &["keys", "revoke", &id(1)]));
    ok(&run(db, &["keys", "disable", &id(2)]));
    ok(&run(
        db,
        &[
            "quota",
            "set",
            "--key",
            &id(0),
            "--metric",
            "requests",
            "--period",
            "day",
            "--limit",
            "4",
        ],
    ));
    for _ in 0..3 {
        ok(&run(
            db,
            &["keys", "verify", keys[0]["key"].as_str().unwrap()],
        ));
    }
    let s = json(&run(
        db,
        &["--json", "stats", "--window", "1h", "--top", "5"],
    ));
    assert_eq!(s["keys"]["total"], 4);
    assert_eq!(s["keys"]["active"], 2);
    assert_eq!(s["keys"]["revoked"], 1);
    assert_eq!(s["keys"]["disabled"], 1);
    assert_eq!(s["owners"][0]["owner"], "alice");
    assert_eq!(s["owners"][0]["keys"]["total"], 3);
    assert_eq!(s["owners"][1]["owner"], "bob");
    assert!(s["quotas"].as_array().unwrap().is_empty() || s["quotas"][0]["subject"] == id(0));
    let text = ok(&run(db, &["stats"]));
    assert!(
        text.contains("4 (2 active, 1 disabled, 1 revoked, 0 expired)"),
        "{text}"
    );
    assert!(text.contains("OWNER"), "{text}");
    assert_eq!(run(db, &["stats", "--top", "0"]).status.code(), Some(11));
    // keys list --prefix: the display prefix as a log line shows it.
    let shown = keys[3]["record"]["display_prefix"].as_str().unwrap();
    let page = json(&run(db, &["--json", "keys", "list", "--prefix", shown]));
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["id"].as_str().unwrap(), id(3));
    let all = json(&run(db, &["--json", "keys", "list", "--prefix", "itk_"]));
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    let none = json(&run(db, &["--json", "keys", "list", "--prefix", "nope_"]));
    assert!(none["items"].as_array().unwrap().is_empty());
    assert_eq!(
        run(db, &["keys", "list", "--prefix", ""]).status.code(),
        Some(11)
    );
}

#[test]
fn irontoken_db_names_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let o = bin()
        .env("IRONTOKEN_DB", &db)
        .args(["-q", "keys", "create", "--owner", "env"])
        .output()
        .unwrap();
    ok(&o);
    assert!(db.exists());
    let listed = bin()
        .env("IRONTOKEN_DB", &db)
        .args(["-q", "keys", "list"])
        .output()
        .unwrap();
    assert_eq!(ok(&listed).lines().count(), 1);
}

#[test]
fn doctor_on_postgresql() {
    let base = std::env::var("IRONTOKEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into());
    let Some(mut admin) = base.parse::<postgres::Config>().ok().and_then(|mut c| {
        c.connect_timeout(std::time::Duration::from_secs(2));
        c.connect(postgres::NoTls).ok()
    }) else {
        // No server on this machine: `make test` passes without one, .ci/run requires it.
        eprintln!("skipped: no PostgreSQL at {base}");
        return;
    };
    let schema = format!("itk_cli_doctor_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap();
    let url = format!("{base}?options=-csearch_path%3D{schema}");
    // An empty schema: not migrated, so it needs attention (exit 1).
    let empty = run(&url, &["--json", "doctor"]);
    assert_eq!(
        empty.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );
    let r: Value = serde_json::from_slice(&empty.stdout).unwrap();
    assert_eq!(r["backend"], "postgresql");
    assert_eq!(r["schema_version"], 0);
    assert!(
        r["integrity_problems"][0]
            .as_str()
            .unwrap()
            .contains("missing")
    );
    // Doctor changed nothing: still no tables.
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    // Once a command has migrated it, it is sound.
    ok(&run(&url, &["-q", "keys", "create", "--owner", "pg"]));
    let r = json(&run(&url, &["--json", "doctor"]));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["schema_version"], r["supported_schema_version"]);
    assert!(
        r["server_version"]
            .as_str()
            .unwrap()
            .chars()
            .next()
            .unwrap()
            .is_ascii_digit()
    );
    assert_eq!(r["tls"], false); // the test server offers no TLS
    assert!(r["round_trip_ms"].is_u64());
    assert!(
        !r["path"].as_str().unwrap().contains("postgres@"),
        "no user or password shown"
    );
    let text = ok(&run(&url, &["doctor"]));
    assert!(
        text.contains("NOT ENCRYPTED") && text.trim_end().ends_with("ok"),
        "{text}"
    );
    // A server that does not answer: STORAGE within the timeout.
    let t = std::time::Instant::now();
    let dead = run(
        "postgresql://postgres@127.0.0.1:9/test",
        &["--storage-timeout", "500", "doctor"],
    );
    assert_eq!(
        dead.status.code(),
        Some(18),
        "{}",
        String::from_utf8_lossy(&dead.stderr)
    );
    assert!(
        t.elapsed() < 10 * std::time::Duration::from_millis(500),
        "bounded by the storage timeout"
    );
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}
