//! Agent budgets, agent tokens and leases, and forged agent tokens.

use irontoken::{AgentTokenRequest, ErrorKind, NewBudget, UsageQuery, UsageReport};
use serde_json::{Value, json};

mod common;
use common::fixtures::*;

#[test]
fn agent_tokens_budgets_and_leases() {
    let tm = manager_at(T0);
    tm.create_signing_key(irontoken::jwt::Alg::ES256, None)
        .unwrap();
    let budget = tm
        .create_budget(&NewBudget {
            owner: "acme".into(),
            name: "research".into(),
            limit_micros: 100_000_000,
            actor: None,
        })
        .unwrap();
    let req = AgentTokenRequest {
        agent_id: "agent-7".into(),
        budget_id: budget.id.clone(),
        permissions: vec!["llm:call".into()],
        ..Default::default()
    };
    let t1 = tm.issue_agent_token(&req).unwrap();
    assert!(t1.replaced.is_none());
    let claims = tm.verify_agent_token(&t1.token).unwrap();
    assert_eq!(
        (claims.agent_id.as_str(), claims.expires_at),
        ("agent-7", None)
    );
    // A lease of 10.00 out of 100.00; spending is reported with request ids.
    let lease = tm.acquire_lease(&t1.token, 10_000_000, None).unwrap();
    assert_eq!(
        tm.get_budget(&budget.id).unwrap().available_micros,
        90_000_000
    );
    let spend = |id: &str, cost: u64| UsageReport {
        request_id: Some(id.into()),
        model: Some("gpt".into()),
        cost_micros: cost,
        ..Default::default()
    };
    let l = tm
        .report_lease_usage(&lease.id, &spend("a1", 4_000_000))
        .unwrap();
    assert_eq!(l.remaining_micros, 6_000_000);
    let l = tm
        .report_lease_usage(&lease.id, &spend("a1", 4_000_000))
        .unwrap();
    assert_eq!(l.spent_micros, 4_000_000, "a retried report counts once");
    let b = tm.get_budget(&budget.id).unwrap();
    assert_eq!(
        (b.spent_micros, b.leased_micros, b.available_micros),
        (4_000_000, 6_000_000, 90_000_000)
    );
    // Refresh: 10.00 more on top of what was spent.
    let l = tm.refresh_lease(&lease.id, 10_000_000, None).unwrap();
    assert_eq!(
        (l.amount_micros, l.remaining_micros),
        (14_000_000, 10_000_000)
    );
    // Beyond the budget: denied.
    let e = tm.refresh_lease(&lease.id, 96_000_001, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UsageExceeded);
    let e = tm.acquire_lease(&t1.token, 86_000_001, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UsageExceeded);
    // Usage shows up per agent.
    let by_agent = tm
        .usage_summary(&UsageQuery {
            group_by: vec!["agent".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_agent[0].agent_id.as_deref(), Some("agent-7"));
    assert_eq!(by_agent[0].owner, None);
    // A new token for the agent revokes the old one and its leases.
    let t2 = tm.issue_agent_token(&req).unwrap();
    assert_eq!(t2.replaced.as_deref(), Some(claims.jti.as_str()));
    assert_eq!(
        tm.verify_agent_token(&t1.token).unwrap_err().kind(),
        ErrorKind::AgentTokenRevoked
    );
    assert_eq!(tm.get_lease(&lease.id).unwrap().status, "revoked");
    assert_eq!(
        tm.refresh_lease(&lease.id, 1, None).unwrap_err().kind(),
        ErrorKind::AgentTokenRevoked
    );
    assert_eq!(
        tm.get_budget(&budget.id).unwrap().available_micros,
        96_000_000
    );
    let l2 = tm.acquire_lease(&t2.token, 1_000_000, None).unwrap();
    tm.revoke_agent_token("agent-7", Some("ops")).unwrap();
    assert_eq!(tm.get_lease(&l2.id).unwrap().status, "revoked");
    assert_eq!(
        tm.acquire_lease(&t2.token, 1, None).unwrap_err().kind(),
        ErrorKind::AgentTokenRevoked
    );
    // An ordinary access token is not an agent token.
    let jwt = tm
        .issue_jwt(
            json!({"sub": "x", "agent_id": "a", "budget_id": "b"})
                .as_object()
                .unwrap(),
            None,
        )
        .unwrap();
    assert!(tm.verify_agent_token(&jwt).is_err());
}

#[test]
fn forged_agent_tokens_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let tm = manager_at(T0);
    tm.create_signing_key(irontoken::jwt::Alg::ES256, None)
        .unwrap();
    let b = tm
        .create_budget(&NewBudget {
            owner: "acme".into(),
            limit_micros: 10,
            ..Default::default()
        })
        .unwrap();
    let other = tm
        .create_budget(&NewBudget {
            owner: "acme".into(),
            limit_micros: 1_000_000_000,
            ..Default::default()
        })
        .unwrap();
    let t = tm
        .issue_agent_token(&AgentTokenRequest {
            agent_id: "a".into(),
            budget_id: b.id.clone(),
            ..Default::default()
        })
        .unwrap();
    let parts: Vec<&str> = t.token.split('.').collect();
    // Tampered payload: point the token at a bigger budget.
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["budget_id"] = json!(other.id);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        tm.acquire_lease(&forged, 1_000, None).unwrap_err().kind(),
        ErrorKind::JwtBadSignature
    );
    // alg none, with and without a signature.
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    assert_eq!(
        tm.verify_agent_token(&none).unwrap_err().kind(),
        ErrorKind::JwtAlgNotAllowed
    );
    // Signed by another manager's key (same claims): unknown kid, refused.
    let rogue = manager_at(T0);
    rogue
        .create_signing_key(irontoken::jwt::Alg::ES256, None)
        .unwrap();
    let rb = rogue
        .create_budget(&NewBudget {
            owner: "x".into(),
            limit_micros: 1,
            ..Default::default()
        })
        .unwrap();
    let rt = rogue
        .issue_agent_token(&AgentTokenRequest {
            agent_id: "a".into(),
            budget_id: rb.id,
            ..Default::default()
        })
        .unwrap();
    assert!(tm.verify_agent_token(&rt.token).is_err());
    // The genuine token still works, and only within its budget.
    assert_eq!(
        tm.acquire_lease(&t.token, 11, None).unwrap_err().kind(),
        ErrorKind::UsageExceeded
    );
    assert!(tm.acquire_lease(&t.token, 10, None).is_ok());
}
