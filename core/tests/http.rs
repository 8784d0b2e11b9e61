//! The HTTP answers of the guards (`irontoken::http`): the shared vectors,
//! and every error kind has a status.

use irontoken::ErrorKind;
use irontoken::http::{
    Declared, KeyOutcome, api_key_answer, bearer_answer, dpop_answer, llm_request, status_of,
};
use serde_json::{Value, json};

fn vectors() -> Value {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/http.json"
    ))
    .unwrap();
    serde_json::from_str(&raw).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn api_key_vectors() {
    for case in vectors()["api_key"].as_array().unwrap() {
        let outcome: KeyOutcome = serde_json::from_value(case["outcome"].clone()).unwrap();
        let got = api_key_answer(
            case["header"].as_str().unwrap(),
            &strings(&case["scopes"]),
            &outcome,
        );
        assert_eq!(json!(got), case["want"], "{}", case["name"]);
    }
}

#[test]
fn bearer_vectors() {
    for case in vectors()["bearer"].as_array().unwrap() {
        let got = bearer_answer(case["code"].as_str().unwrap(), &strings(&case["scopes"]));
        assert_eq!(json!(got), case["want"], "{}", case["code"]);
    }
}

#[test]
fn dpop_vectors() {
    for case in vectors()["dpop"].as_array().unwrap() {
        let got = dpop_answer(
            case["code"].as_str().unwrap(),
            &strings(&case["scopes"]),
            case["nonce"].as_str(),
        );
        assert_eq!(json!(got), case["want"], "{}", case["code"]);
    }
}

/// Where a case says its guard reads a fact (absent: not checked).
fn declared(v: &Value) -> Declared<'_> {
    match v["source"].as_str() {
        None => Declared::Unchecked,
        Some("body") => Declared::InBody,
        Some(_) => Declared::Given(&v["value"]),
    }
}

#[test]
fn llm_vectors() {
    for case in vectors()["llm"].as_array().unwrap() {
        let body = Some(&case["body"]).filter(|b| !b.is_null());
        let got = match llm_request(body, declared(&case["model"]), declared(&case["tokens"])) {
            Ok(r) => json!(r),
            Err(a) => json!({"status": a.status, "code": a.code, "message": a.message}),
        };
        assert_eq!(got, case["want"], "{}", case["name"]);
    }
}

#[test]
fn status_vectors_and_every_kind_has_a_status() {
    for (code, want) in vectors()["status_of"].as_object().unwrap() {
        assert_eq!(status_of(code) as u64, want.as_u64().unwrap(), "{code}");
    }
    for kind in ErrorKind::ALL {
        let s = kind.http_status();
        assert!(
            [400, 401, 403, 404, 409, 413, 429, 500, 503].contains(&s),
            "{kind:?}"
        );
        assert_eq!(status_of(kind.code()), s);
    }
}
