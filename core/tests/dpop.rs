//! DPoP (RFC 9449) and certificate-bound tokens (RFC 8705): the shared
//! vectors (the RFC's example proof and attacks on it), a proof accepted
//! once across managers, tokens bound with `cnf.jkt` / `cnf["x5t#S256"]`
//! refused without their proof, and bound refresh-token families.

use irontoken::jwt::dpop::{self, DpopCheck};
use irontoken::jwt::{Alg, Policy, SigningKey, encode, mtls};
use irontoken::refresh::NewTokenPair;
use irontoken::replay::Presented;
use irontoken::{ErrorKind, Options, TokenManager};
use serde_json::{Map, Value, json};

mod common;

const MASTER: &[u8] = b"0123456789abcdef0123456789abcdef";

fn vectors() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/dpop.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn key_file(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../tests/vectors/jwt/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(p).unwrap()
}

#[test]
fn the_shared_vectors() {
    let v = vectors();
    assert_eq!(
        dpop::access_token_hash(v["ath"]["access_token"].as_str().unwrap()),
        v["ath"]["ath"].as_str().unwrap()
    );
    // A proof is checked against a request: without its method and URI it is refused.
    let e = Presented::new(Some("p".into()), Some("GET".into()), None, None, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        Presented::new(None, None, None, None, None)
            .unwrap()
            .dpop
            .is_none()
    );
    let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
    assert_eq!(
        dpop::jwk_thumbprint(oct.as_object().unwrap())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidKeyMaterial
    );
    for c in v["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let check: DpopCheck = serde_json::from_value(c["check"].clone()).unwrap();
        let got = dpop::verify_proof(
            c["proof"].as_str().unwrap(),
            &check,
            c["now"].as_i64().unwrap(),
        );
        match c["error"].as_str() {
            Some(code) => assert_eq!(got.unwrap_err().code(), code, "{name}"),
            None => {
                let p = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                if let Some(jkt) = c["jkt"].as_str() {
                    assert_eq!(p.jkt, jkt, "{name}");
                }
            }
        }
    }
}

/// Signs a proof with the vectors' client key at `iat`.
struct Client {
    key: SigningKey,
    jwk: Value,
    jkt: String,
}

impl Client {
    fn new() -> Client {
        let v = vectors();
        let k = &v["client_key"];
        Client {
            key: SigningKey::from_pem(k["private_pem"].as_str().unwrap()).unwrap(),
            jwk: k["jwk"].clone(),
            jkt: k["jkt"].as_str().unwrap().to_string(),
        }
    }

    fn proof(&self, htm: &str, htu: &str, iat: i64, access_token: Option<&str>) -> String {
        let mut claims = json!({"jti": uuid(), "htm": htm, "htu": htu, "iat": iat});
        if let Some(t) = access_token {
            claims["ath"] = json!(dpop::access_token_hash(t));
        }
        let header = json!({"typ": "dpop+jwt", "jwk": self.jwk});
        encode(
            claims.as_object().unwrap(),
            &self.key,
            Alg::ES256,
            Some(header.as_object().unwrap()),
        )
        .unwrap()
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn check(htm: &str, htu: &str) -> DpopCheck {
    DpopCheck {
        htm: htm.into(),
        htu: htu.into(),
        ..Default::default()
    }
}

#[test]
fn a_proof_is_accepted_once_across_managers() {
    let shared = common::shared_store();
    let open = || TokenManager::open(&shared.url).unwrap();
    let (a, b) = (open(), open());
    let client = Client::new();
    let now = a.now();
    let proof = client.proof("GET", "https://api.example.com/r", now, None);
    let c = check("GET", "https://api.example.com/r");
    assert_eq!(a.verify_dpop_proof(&proof, &c).unwrap().jkt, client.jkt);
    assert_eq!(
        b.verify_dpop_proof(&proof, &c).unwrap_err().kind(),
        ErrorKind::DpopProofReplayed
    );
    // A refused proof claims nothing: it still fails for its own reason.
    let other = client.proof("GET", "https://api.example.com/r", now, None);
    let wrong = check("POST", "https://api.example.com/r");
    for _ in 0..2 {
        assert_eq!(
            a.verify_dpop_proof(&other, &wrong).unwrap_err().kind(),
            ErrorKind::DpopProofInvalid
        );
    }
    a.verify_dpop_proof(&other, &c).unwrap();
}

fn manager() -> common::Managed {
    let m = common::open_private(Options::default().master_key(MASTER).unwrap());
    m.create_signing_key(Alg::EdDSA, None).unwrap();
    m
}

fn pair(tm: &TokenManager, f: impl FnOnce(&mut NewTokenPair)) -> irontoken::refresh::TokenPair {
    let mut r = NewTokenPair {
        subject: "alice".into(),
        ..Default::default()
    };
    f(&mut r);
    tm.issue_token_pair(&r).unwrap()
}

#[test]
fn a_dpop_bound_token_needs_its_proof() {
    let m = manager();
    let tm: &TokenManager = &m;
    let client = Client::new();
    let p = pair(tm, |r| r.dpop_jkt = Some(client.jkt.clone()));
    let policy = Policy::new(&[Alg::EdDSA]);
    // Without a proof, a bound token is not a bearer token.
    assert_eq!(
        tm.verify_jwt(&p.access_token, &policy).unwrap_err().kind(),
        ErrorKind::DpopBindingMismatch
    );
    let url = "https://api.example.com/items?page=2";
    let c = check("GET", url);
    let now = tm.now();
    let proof = client.proof(
        "GET",
        "https://api.example.com/items",
        now,
        Some(&p.access_token),
    );
    let presented = Presented {
        dpop_proof: Some(proof.clone()),
        dpop: Some(c.clone()),
        client_cert: None,
    };
    let d = tm
        .verify_jwt_presented(&p.access_token, &policy, &presented)
        .unwrap();
    assert_eq!(d.claims["cnf"]["jkt"], json!(client.jkt));
    // The same proof again: replayed.
    assert_eq!(
        tm.verify_jwt_presented(&p.access_token, &policy, &presented)
            .unwrap_err()
            .kind(),
        ErrorKind::DpopProofReplayed
    );
    // A proof without ath, or for another token, or by another key.
    let bare = client.proof("GET", url, now, None);
    let other_token = client.proof("GET", url, now, Some("another.token.here"));
    for (proof, want) in [
        (&bare, ErrorKind::DpopProofInvalid),
        (&other_token, ErrorKind::DpopProofInvalid),
    ] {
        let presented = Presented {
            dpop_proof: Some(proof.clone()),
            dpop: Some(c.clone()),
            client_cert: None,
        };
        assert_eq!(
            tm.verify_jwt_presented(&p.access_token, &policy, &presented)
                .unwrap_err()
                .kind(),
            want
        );
    }
    let v = vectors();
    let stranger = pair(tm, |r| {
        r.dpop_jkt = Some(v["cases"][0]["jkt"].as_str().unwrap().into())
    });
    let proof = client.proof("GET", url, now, Some(&stranger.access_token));
    let presented = Presented {
        dpop_proof: Some(proof.clone()),
        dpop: Some(c.clone()),
        client_cert: None,
    };
    assert_eq!(
        tm.verify_jwt_presented(&stranger.access_token, &policy, &presented)
            .unwrap_err()
            .kind(),
        ErrorKind::DpopBindingMismatch
    );

    // Refreshing a bound family needs a proof of its key.
    assert_eq!(
        tm.refresh_token_pair(&p.refresh_token).unwrap_err().kind(),
        ErrorKind::DpopBindingMismatch
    );
    let rc = check("POST", "https://auth.example.com/token");
    let proof = client.proof("POST", "https://auth.example.com/token", now, None);
    let next = tm
        .refresh_token_pair_presented(
            &p.refresh_token,
            &Presented {
                dpop_proof: Some(proof.clone()),
                dpop: Some(rc.clone()),
                client_cert: None,
            },
        )
        .unwrap();
    assert_eq!(next.family_id, p.family_id);
}

#[test]
fn a_certificate_bound_token_needs_its_certificate() {
    let m = manager();
    let tm: &TokenManager = &m;
    let cert = key_file("rsa_cert.pem");
    let other = key_file("client_cert_b.pem");
    let thumb = mtls::cert_thumbprint(&cert).unwrap();
    // PEM, DER and the percent-encoded PEM a proxy forwards are one certificate.
    let der = mtls::cert_der(&cert).unwrap();
    assert_eq!(mtls::cert_thumbprint(&der).unwrap(), thumb);
    // Escaped fully (Envoy's XFCC) and with the dashes kept (nginx).
    let escape = |keep: &[u8]| -> String {
        cert.iter()
            .map(|&b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                b if keep.contains(&b) => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    for escaped in [escape(b""), escape(b"-_.~")] {
        assert_eq!(mtls::cert_thumbprint(escaped.as_bytes()).unwrap(), thumb);
    }
    for bad in [
        &b"not a cert"[..],
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        &key_file("rsa_private.pem"),
    ] {
        assert_eq!(
            mtls::cert_thumbprint(bad).unwrap_err().kind(),
            ErrorKind::InvalidKeyMaterial
        );
    }

    let p = pair(tm, |r| r.cert_thumbprint = Some(thumb.clone()));
    let policy = Policy::new(&[Alg::EdDSA]);
    let with = |c: Option<&[u8]>| {
        tm.verify_jwt_presented(
            &p.access_token,
            &policy,
            &Presented {
                client_cert: c.map(<[u8]>::to_vec),
                ..Default::default()
            },
        )
    };
    with(Some(&cert)).unwrap();
    with(Some(&der)).unwrap();
    assert_eq!(
        with(Some(&other)).unwrap_err().kind(),
        ErrorKind::MtlsBindingMismatch
    );
    assert_eq!(
        with(None).unwrap_err().kind(),
        ErrorKind::MtlsBindingMismatch
    );
    assert_eq!(
        tm.verify_jwt(&p.access_token, &policy).unwrap_err().kind(),
        ErrorKind::MtlsBindingMismatch
    );
    // A refresh of the family needs the certificate too.
    let refresh = |c: Option<&[u8]>| {
        tm.refresh_token_pair_presented(
            &p.refresh_token,
            &Presented {
                client_cert: c.map(<[u8]>::to_vec),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        refresh(Some(&other)).unwrap_err().kind(),
        ErrorKind::MtlsBindingMismatch
    );
    refresh(Some(&cert)).unwrap();

    // Bad bindings are refused at issue.
    for bad in [
        NewTokenPair {
            subject: "a".into(),
            cert_thumbprint: Some("short".into()),
            ..Default::default()
        },
        NewTokenPair {
            subject: "a".into(),
            dpop_jkt: Some(thumb.clone()),
            claims: Map::from_iter([("cnf".to_string(), json!({"jkt": "x"}))]),
            ..Default::default()
        },
    ] {
        assert_eq!(
            tm.issue_token_pair(&bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
