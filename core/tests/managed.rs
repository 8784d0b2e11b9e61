//! Managed signing keys: encryption at rest, rotation with overlap, JWKS
//! export, issuance, and the API key → access token exchange.

use irontoken::jwt::{Alg, Keyring, Policy, decode};
use irontoken::{ErrorKind, NewKey, Options, TokenManager};
use serde_json::{Map, Value, json};

const T0: i64 = 1_700_000_000;
const MASTER: &[u8] = b"0123456789abcdef0123456789abcdef";

fn open(path: &str, master: Option<&[u8]>) -> TokenManager {
    let mut o = Options::default()
        .manual_clock(T0)
        .durability(irontoken::Durability::Normal);
    if let Some(m) = master {
        o = o.master_key(m).unwrap();
    }
    TokenManager::open_with(path, o).unwrap()
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn policy(alg: Alg) -> Policy {
    Policy::new(&[alg])
}

#[test]
fn no_master_key_no_signing() {
    let tm = open(":memory:", None);
    let e = tm.create_signing_key(Alg::ES256, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MasterKeyRequired);
    let e = tm
        .issue_jwt(&claims(json!({"sub": "x"})), None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MasterKeyRequired);
    assert!(Options::default().master_key(b"too short").is_err());
    assert!(irontoken::parse_master_key("c2hvcnQ=").is_err());
    let hex = "00".repeat(32);
    assert_eq!(irontoken::parse_master_key(&hex).unwrap().len(), 32);
    // Text of hex digits only but of odd length is not hex (mutants shard 4:
    // `&&` as `||` read it in pairs and panicked on the last digit): 43
    // characters are 32 bytes of unpadded base64; 65 are nothing.
    let b64_of_hex_digits = "0123456789abcdef0123456789abcdef0123456789A";
    assert_eq!(
        irontoken::parse_master_key(b64_of_hex_digits)
            .unwrap()
            .len(),
        32
    );
    let e = irontoken::parse_master_key(&"a".repeat(65)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn issue_verify_rotate_and_export_for_every_algorithm() {
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA, Alg::HS256] {
        let tm = open(":memory:", Some(MASTER));
        let e = tm
            .issue_jwt(&claims(json!({"sub": "x"})), None)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoActiveSigningKey);
        let k1 = tm.create_signing_key(alg, Some("ops")).unwrap();
        assert_eq!(k1.status, "active");
        assert_eq!(
            tm.create_signing_key(alg, None).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        let t1 = tm
            .issue_jwt(&claims(json!({"sub": "alice", "role": "admin"})), Some(600))
            .unwrap();
        let d = tm.verify_jwt(&t1, &policy(alg)).unwrap();
        assert_eq!(d.header["kid"], k1.kid.as_str());
        assert_eq!(d.claims["exp"], T0 + 600);
        assert!(d.claims["jti"].is_string());

        // JWKS: public keys only, never HMAC secrets; tokens verify with it.
        let jwks = tm.jwks().unwrap();
        if alg == Alg::HS256 {
            assert_eq!(jwks["keys"].as_array().unwrap().len(), 0);
        } else {
            let ring = Keyring::from_jwks(&jwks.to_string()).unwrap();
            assert!(decode(&t1, &ring, &policy(alg), T0).is_ok());
            let text = jwks.to_string();
            assert!(!text.contains("\"d\""), "private member in JWKS: {text}");
        }

        // Rotation: the old key verifies during the overlap, then not.
        let clock = tm.manual_clock().unwrap();
        let k2 = tm.rotate_signing_key(None, 300, Some("ops")).unwrap();
        assert_ne!(k1.kid, k2.kid);
        let t2 = tm.issue_jwt(&claims(json!({"sub": "bob"})), None).unwrap();
        assert_eq!(
            tm.verify_jwt(&t2, &policy(alg)).unwrap().header["kid"],
            k2.kid.as_str()
        );
        clock.advance(299);
        assert!(tm.verify_jwt(&t1, &policy(alg)).is_ok());
        clock.advance(1);
        let e = tm.verify_jwt(&t1, &policy(alg)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::JwtKeyNotFound);
        let statuses: Vec<String> = tm
            .list_signing_keys()
            .unwrap()
            .into_iter()
            .map(|k| k.status)
            .collect();
        assert_eq!(statuses, ["retired", "active"]);
        // Retire the active key: nothing signs any more.
        tm.retire_signing_key(&k2.kid, None).unwrap();
        assert_eq!(
            tm.issue_jwt(&claims(json!({"sub": "x"})), None)
                .unwrap_err()
                .kind(),
            ErrorKind::NoActiveSigningKey
        );
    }
}

#[test]
fn keys_survive_reopen_and_need_the_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let p = path.to_str().unwrap();
    let token = {
        let tm = open(p, Some(MASTER));
        tm.create_signing_key(Alg::EdDSA, None).unwrap();
        tm.issue_jwt(&claims(json!({"sub": "a"})), None).unwrap()
    };
    let again = open(p, Some(MASTER));
    assert!(again.verify_jwt(&token, &policy(Alg::EdDSA)).is_ok());
    let wrong = open(p, Some(b"ffffffffffffffffffffffffffffffff"));
    let e = wrong.verify_jwt(&token, &policy(Alg::EdDSA)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MasterKeyMismatch);
    let none = open(p, None);
    assert_eq!(
        none.issue_jwt(&Map::new(), None).unwrap_err().kind(),
        ErrorKind::MasterKeyRequired
    );
    // The JWKS is public: readable without the master key.
    assert_eq!(none.jwks().unwrap()["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn a_rotation_by_one_manager_is_seen_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let p = path.to_str().unwrap();
    let a = open(p, Some(MASTER));
    let b = open(p, Some(MASTER));
    a.create_signing_key(Alg::ES256, None).unwrap();
    let t = b.issue_jwt(&claims(json!({"sub": "x"})), None).unwrap();
    a.rotate_signing_key(None, 0, None).unwrap();
    assert_eq!(
        b.verify_jwt(&t, &policy(Alg::ES256)).unwrap_err().kind(),
        ErrorKind::JwtKeyNotFound
    );
    let t2 = b.issue_jwt(&claims(json!({"sub": "x"})), None).unwrap();
    assert!(a.verify_jwt(&t2, &policy(Alg::ES256)).is_ok());
}

#[test]
fn api_key_exchange() {
    let tm = open(":memory:", Some(MASTER));
    tm.create_signing_key(Alg::ES256, None).unwrap();
    let key = tm
        .create_key(&NewKey {
            owner: "svc-billing".into(),
            scopes: vec!["read".into(), "write".into()],
            expires_in: Some(300),
            ..Default::default()
        })
        .unwrap();
    let at = tm.exchange_api_key(&key.key, &["read"], None).unwrap();
    assert_eq!(at.owner, "svc-billing");
    assert_eq!(at.expires_at, T0 + 300, "never past the API key's expiry");
    let d = tm.verify_jwt(&at.token, &policy(Alg::ES256)).unwrap();
    assert_eq!(d.claims["sub"], "svc-billing");
    assert_eq!(d.claims["exp"], T0 + 300);
    // A key expiring after the token's TTL: the TTL; a key that never
    // expires: the TTL too.
    for expires_in in [Some(7200), None] {
        let k = tm
            .create_key(&NewKey {
                owner: "svc-billing".into(),
                expires_in,
                ..Default::default()
            })
            .unwrap();
        let at = tm.exchange_api_key(&k.key, &[], Some(60)).unwrap();
        assert_eq!(at.expires_at, T0 + 60, "{expires_in:?}");
        let d = tm.verify_jwt(&at.token, &policy(Alg::ES256)).unwrap();
        assert_eq!(d.claims["exp"], T0 + 60, "{expires_in:?}");
    }
    assert_eq!(d.claims["key_id"], key.record.id.as_str());
    assert_eq!(d.claims["scope"], "read write");
    assert_eq!(
        tm.exchange_api_key(&key.key, &["admin"], None)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    tm.revoke_key(&key.record.id, None, None).unwrap();
    assert_eq!(
        tm.exchange_api_key(&key.key, &[], None).unwrap_err().kind(),
        ErrorKind::KeyRevoked
    );
    assert_eq!(
        tm.exchange_api_key("itk_nope", &[], None)
            .unwrap_err()
            .kind(),
        ErrorKind::KeyMalformed
    );
    let audit = tm
        .list_audit(&irontoken::AuditFilter {
            action: Some("token.exchange".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(audit.items.len(), 3, "one per token issued");
}

#[test]
fn database_holds_no_private_key_material() {
    use aws_lc_rs::{hmac, signature::KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let p = path.to_str().unwrap();
    let (hs_token, ed_x) = {
        let tm = open(p, Some(MASTER));
        tm.create_signing_key(Alg::HS256, None).unwrap();
        let hs_token = tm.issue_jwt(&claims(json!({"sub": "a"})), None).unwrap();
        tm.rotate_signing_key(Some(Alg::EdDSA), 60, None).unwrap();
        let jwks = tm.jwks().unwrap();
        let x = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["crv"] == "Ed25519")
            .map(|k| k["x"].as_str().unwrap().to_string())
            .unwrap();
        tm.flush().unwrap();
        (hs_token, x)
    };
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    // No PKCS#8 private key of any algorithm in clear: version 0, then the
    // algorithm identifier (rsaEncryption, id-ecPublicKey, Ed25519).
    for oid in [
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ][..],
        &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
        &[0x06, 0x03, 0x2b, 0x65, 0x70],
    ] {
        let mut pattern = vec![0x02, 0x01, 0x00, 0x30];
        pattern.push(oid.len() as u8);
        pattern.extend_from_slice(oid);
        assert!(
            !bytes
                .windows(pattern.len())
                .any(|w| w == pattern.as_slice())
        );
    }
    // The HS256 secret in clear would verify the token: try every 32-byte
    // run of the files as the key.
    let (signing_input, sig) = hs_token.rsplit_once('.').unwrap();
    use base64::Engine;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    assert!(!bytes.windows(32).any(|w| {
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, w),
            signing_input.as_bytes(),
            &sig,
        )
        .is_ok()
    }));
    // The Ed25519 seed in clear would give the published public key.
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ed_x)
        .unwrap();
    assert!(!bytes.windows(32).any(|w| {
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(w)
            .is_ok_and(|k| k.public_key().as_ref() == x.as_slice())
    }));
}

#[test]
fn rsa_3072_keys_on_request() {
    let tm = TokenManager::open_with(
        ":memory:",
        Options::default()
            .master_key(MASTER)
            .unwrap()
            .rsa_key_bits(3072)
            .unwrap(),
    )
    .unwrap();
    tm.create_signing_key(Alg::RS256, None).unwrap();
    let jwks = tm.jwks().unwrap();
    let ring = Keyring::from_jwks(&jwks.to_string()).unwrap();
    assert_eq!(
        ring.get(jwks["keys"][0]["kid"].as_str().unwrap())
            .unwrap()
            .key_type(),
        irontoken::jwt::KeyType::Rsa { bits: 3072 }
    );
    let t = tm.issue_jwt(&claims(json!({"sub": "x"})), None).unwrap();
    assert!(tm.verify_jwt(&t, &Policy::new(&[Alg::RS256])).is_ok());
    assert!(Options::default().rsa_key_bits(1024).is_err());
}

/// The scheduled rotation: nothing before the period, one rotation when
/// due, none again until the next period; on one file, many threads of two
/// managers (two processes) at once rotate a due key exactly once.
#[test]
fn signing_keys_rotate_when_due_exactly_once() {
    const DAY: i64 = 86_400;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let path = path.to_str().unwrap();
    let a = open(path, Some(MASTER));
    let b = open(path, Some(MASTER));
    let e = a
        .rotate_signing_key_if_due(90 * DAY, DAY, None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let first = a.create_signing_key(Alg::ES256, None).unwrap();
    assert!(
        a.rotate_signing_key_if_due(90 * DAY, DAY, None)
            .unwrap()
            .is_none()
    );
    // Overlap 0 (the old key retired at once) is a valid request.
    assert!(
        a.rotate_signing_key_if_due(90 * DAY, 0, None)
            .unwrap()
            .is_none()
    );
    for (every, overlap) in [(0, DAY), (-DAY, DAY), (90 * DAY, -1)] {
        let e = a
            .rotate_signing_key_if_due(every, overlap, None)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{every} {overlap}");
    }
    for m in [&a, &b] {
        m.advance_clock(90 * DAY).unwrap();
    }
    let rotated: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let m = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || {
                    m.rotate_signing_key_if_due(90 * DAY, DAY, Some("cron"))
                        .unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(rotated.len(), 1, "{rotated:?}");
    let keys = a.list_signing_keys().unwrap();
    let status: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.status.as_str()))
        .collect();
    assert_eq!(
        status,
        [
            (first.kid.as_str(), "verify_only"),
            (rotated[0].kid.as_str(), "active")
        ]
    );
    assert_eq!(keys[0].verify_until, Some(T0 + 90 * DAY + DAY));
    assert_eq!(rotated[0].alg, "ES256");
    assert!(
        b.rotate_signing_key_if_due(90 * DAY, DAY, None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_sealed_key_moved_to_another_row_does_not_open() {
    // The encryption binds each sealed private key to its row's kid and
    // algorithm: rows swapped or relabelled by someone with write access to
    // the file are refused, never used to sign under the wrong name.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let p = path.to_str().unwrap();
    let (old, new) = {
        let tm = open(p, Some(MASTER));
        let old = tm.create_signing_key(Alg::ES256, None).unwrap();
        let new = tm.rotate_signing_key(None, 3600, None).unwrap();
        tm.issue_jwt(&claims(json!({"sub": "a"})), None).unwrap();
        (old.kid, new.kid)
    };
    let refused = |edit: &str| {
        let fresh = dir.path().join(format!("e{}.db", edit.len()));
        std::fs::copy(&path, &fresh).unwrap();
        let c = rusqlite::Connection::open(&fresh).unwrap();
        c.execute_batch(edit).unwrap();
        drop(c);
        let tm = open(fresh.to_str().unwrap(), Some(MASTER));
        let e = tm
            .issue_jwt(&claims(json!({"sub": "a"})), None)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial, "{edit}: {e}");
        assert!(e.message().contains("altered row"), "{e}");
    };
    // The active key's sealed material swapped with the old key's.
    refused(&format!(
        "UPDATE signing_keys SET private_enc = (SELECT private_enc FROM signing_keys WHERE kid = '{old}') \
         WHERE kid = '{new}';"
    ));
    // The active row's kid changed (its material sealed under the old one).
    refused(&format!(
        "UPDATE signing_keys SET kid = kid || 'x' WHERE kid = '{new}';"
    ));
}

#[test]
fn signing_key_lifecycle_is_in_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let tm = open(path.to_str().unwrap(), Some(MASTER));
    let first = tm.create_signing_key(Alg::EdDSA, Some("ops")).unwrap();
    let second = tm.rotate_signing_key(None, 600, Some("cron")).unwrap();
    tm.retire_signing_key(&first.kid, Some("ops")).unwrap();
    let page = tm.list_audit(&irontoken::AuditFilter::default()).unwrap();
    let mut seen: Vec<(String, Option<String>, Option<String>, Value)> = page
        .items
        .iter()
        .filter(|e| e.action.starts_with("signing_key."))
        .map(|e| {
            (
                e.action.clone(),
                e.key_id.clone(),
                e.actor.clone(),
                e.detail.clone().unwrap_or(Value::Null),
            )
        })
        .collect();
    seen.reverse(); // newest first -> oldest first
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        seen,
        vec![
            (
                "signing_key.create".into(),
                s(&first.kid),
                s("ops"),
                json!({"alg": "EdDSA"})
            ),
            (
                "signing_key.rotate".into(),
                s(&first.kid),
                s("cron"),
                json!({"rotated_to": second.kid, "overlap_seconds": 600})
            ),
            (
                "signing_key.create".into(),
                s(&second.kid),
                s("cron"),
                json!({"alg": "EdDSA"})
            ),
            (
                "signing_key.retire".into(),
                s(&first.kid),
                s("ops"),
                json!({"was": "verify_only"})
            ),
        ]
    );
}
