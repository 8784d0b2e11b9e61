//! What the CLI's end-to-end suites share: running the binary.

#![allow(dead_code)] // not every suite uses every helper

use serde_json::Value;
use std::process::{Command, Output};

/// The binary on database `db` (no key or actor from the environment).
pub fn cli(db: &str, args: &[&str]) -> Output {
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
pub fn irontoken(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irontoken"));
    c.env_remove("IRONTOKEN_JWT").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The JSON a successful command printed.
pub fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}
