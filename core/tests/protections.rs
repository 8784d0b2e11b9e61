//! Protections that had no test failing without them (issue 14).

use irontoken::{NewKey, TokenManager};

/// The audit trail is append-only in the schema itself, on a database
/// created at the current version (not only on one migrated from v1): an
/// UPDATE or DELETE by any writer, even with plain SQL, is refused.
#[test]
fn audit_log_refuses_update_and_delete_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let p = path.to_str().unwrap();
    {
        let tm = TokenManager::open(p).unwrap();
        tm.create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    }
    let c = rusqlite::Connection::open(p).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
    for sql in [
        "UPDATE audit_log SET outcome = 'forged'",
        "UPDATE audit_log SET actor = 'someone else' WHERE id = 1",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = 1",
    ] {
        let e = c.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let after: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, n);
}

/// Mutants missed (make mutants): bounds of names, metadata and actors.
#[test]
fn field_bounds_are_exact() {
    use irontoken::ErrorKind;
    let tm = TokenManager::open(":memory:").unwrap();
    let create = |owner: String, actor: Option<String>, meta_bytes: usize| {
        let mut metadata = serde_json::Map::new();
        if meta_bytes > 0 {
            metadata.insert("pad".into(), "x".repeat(meta_bytes).into());
        }
        tm.create_key(&NewKey {
            owner,
            actor,
            metadata: Some(metadata),
            ..Default::default()
        })
    };
    // Owner: 1-256 characters, both ends included.
    assert!(create("o".repeat(256), None, 0).is_ok());
    let e = create("o".repeat(257), None, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // Metadata: up to 16 KiB of JSON.
    assert!(create("m".into(), None, 10_000).is_ok());
    let e = create("m".into(), None, 17_000).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // Actors are checked like names.
    for actor in ["", "ops\nFAKE", "a\u{202e}b"] {
        let e = create("a".into(), Some(actor.into()), 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{actor:?}");
    }
    assert!(create("a".into(), Some("a".repeat(256)), 0).is_ok());
    assert!(create("a".into(), Some("a".repeat(257)), 0).is_err());
}

/// Mutants missed (make mutants, shard 1/32): id, scope and metadata bounds.
#[test]
fn id_scope_and_metadata_bounds_are_exact() {
    use irontoken::ErrorKind;
    let tm = TokenManager::open(":memory:").unwrap();
    // Ids: up to 64 characters are looked up; longer ones are refused.
    assert_eq!(
        tm.get_key(&"i".repeat(64)).unwrap_err().kind(),
        ErrorKind::KeyNotFound
    );
    for n in [65, 200] {
        assert_eq!(
            tm.get_key(&"i".repeat(n)).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    let with_scopes = |scopes: Vec<String>| {
        tm.create_key(&NewKey {
            owner: "o".into(),
            scopes,
            ..Default::default()
        })
    };
    // At most 64 scopes of 1-128 bytes each.
    assert!(with_scopes((0..64).map(|i| format!("s{i}")).collect()).is_ok());
    assert!(with_scopes((0..65).map(|i| format!("s{i}")).collect()).is_err());
    assert!(with_scopes(vec!["s".repeat(128)]).is_ok());
    assert!(with_scopes(vec!["s".repeat(129)]).is_err());
    assert!(with_scopes(vec![String::new()]).is_err());
    // Metadata: exactly 16 KiB of JSON is accepted, one byte more is not.
    let meta = |n: usize| {
        // {"p":"…"} is 8 bytes around the value.
        let mut m = serde_json::Map::new();
        m.insert("p".into(), "x".repeat(n - 8).into());
        tm.create_key(&NewKey {
            owner: "o".into(),
            metadata: Some(m),
            ..Default::default()
        })
    };
    assert!(meta(16 * 1024).is_ok());
    assert!(meta(16 * 1024 + 1).is_err());
}

/// Mutant missed (shard 2/32): an explicit expiry in the future is taken,
/// one at or before now is refused.
#[test]
fn explicit_expiry_must_be_in_the_future() {
    use irontoken::{ErrorKind, Options};
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(1_800_000_000))
        .unwrap();
    let at = |t: i64| {
        tm.create_key(&NewKey {
            owner: "o".into(),
            expires_at: Some(t),
            ..Default::default()
        })
    };
    let k = at(1_800_000_060).unwrap();
    assert_eq!(k.record.expires_at, Some(1_800_000_060));
    for t in [1_800_000_000, 1_799_999_999] {
        assert_eq!(at(t).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
    tm.advance_clock(60).unwrap();
    assert!(!tm.verify_key(&k.key, &[]).unwrap().valid);
}

/// Mutants missed (shards 3-4/32): a verification reports the uses still
/// buffered; a rotation takes an explicit future expiry, refuses a past
/// one, and audits the old key as rotated and the new one as created.
#[test]
fn verification_counts_and_rotation_details() {
    use irontoken::{AuditFilter, ErrorKind, Options, RotateOptions};
    let tm = TokenManager::open_with(":memory:", Options::default().manual_clock(1_800_000_000))
        .unwrap();
    let k = tm
        .create_key(&NewKey {
            owner: "o".into(),
            ..Default::default()
        })
        .unwrap();
    tm.verify_key(&k.key, &[]).unwrap();
    let v = tm.verify_key(&k.key, &[]).unwrap();
    assert_eq!(v.record.unwrap().usage_count, 2);
    let rotate = |expires_at| {
        tm.rotate_key(
            &k.record.id,
            &RotateOptions {
                overlap_seconds: 60,
                expires_at,
                actor: None,
            },
        )
    };
    let e = rotate(Some(Some(1_799_999_000))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let new = rotate(Some(Some(1_800_086_400))).unwrap();
    assert_eq!(new.record.expires_at, Some(1_800_086_400));
    let actions = |id: &str| -> Vec<String> {
        tm.list_audit(&AuditFilter {
            key_id: Some(id.to_string()),
            ..Default::default()
        })
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.action)
        .collect()
    };
    assert!(actions(&k.record.id).contains(&"key.rotate".to_string()));
    assert_eq!(actions(&new.record.id), vec!["key.create".to_string()]);
}

fn vector_key(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/vectors/jwt/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Mutants missed (shards 5-7/32): key type names, Debug output, the
/// messages for private or foreign DER, P-384 keys, OpenSSH type checks.
#[test]
fn key_types_messages_and_curves() {
    use irontoken::ErrorKind;
    use irontoken::jwt::{Alg, KeyType, Keyring, Policy, Signer, SigningKey, VerifyingKey, decode};
    let names: Vec<(&str, &str)> = [
        KeyType::Hmac,
        KeyType::Rsa { bits: 2048 },
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
    ]
    .iter()
    .map(|t| (t.name(), t.kty()))
    .collect();
    assert_eq!(
        names,
        [
            ("HMAC", "oct"),
            ("RSA", "RSA"),
            ("EC P-256", "EC"),
            ("EC P-384", "EC"),
            ("Ed25519", "OKP")
        ]
    );
    let vk = VerifyingKey::from_pem(&vector_key("ec_p256_public.pem"))
        .unwrap()
        .with_kid("k9");
    let shown = format!("{vk:?}");
    assert!(shown.contains("VerifyingKey") && shown.contains("k9") && shown.contains("EcP256"));
    // A private key given to verify says so.
    let e = VerifyingKey::from_bytes(vector_key("rsa_private.pem").as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial);
    assert!(e.message().contains("private key was given"), "{e}");
    // P-384: its own type and algorithm, not P-256's.
    let pk = VerifyingKey::from_pem(&vector_key("ec_p384_public.pem")).unwrap();
    assert_eq!(pk.key_type(), KeyType::EcP384);
    let sk = SigningKey::from_pem(&vector_key("ec_p384_private.pem")).unwrap();
    assert_eq!(sk.key_type(), KeyType::EcP384);
    let claims = serde_json::json!({"sub": "s", "exp": 2_000_000_000});
    let t = Signer::new(sk, Alg::ES384)
        .unwrap()
        .sign(claims.as_object().unwrap(), None)
        .unwrap();
    let d = decode(
        &t,
        &Keyring::single(pk),
        &Policy::new(&[Alg::ES384]),
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(d.claims["sub"], "s");
    // The same P-384 key as an OpenSSH line (`ssh-keygen -i -m PKCS8 -f
    // ec_p384_public.pem`): read as P-384, and it verifies the token.
    let ssh = VerifyingKey::from_bytes(vector_key("ec_p384_public.ssh").as_bytes()).unwrap();
    assert_eq!(ssh.key_type(), KeyType::EcP384);
    let d = decode(
        &t,
        &Keyring::single(ssh),
        &Policy::new(&[Alg::ES384]),
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(d.claims["sub"], "s");
    // And as a JWK (x, y from the PEM with Python's cryptography).
    let jwk = VerifyingKey::from_jwk(&vector_key("ec_p384_public.jwk.json")).unwrap();
    assert_eq!(jwk.key_type(), KeyType::EcP384);
    let d = decode(
        &t,
        &Keyring::single(jwk),
        &Policy::new(&[Alg::ES384]),
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(d.claims["sub"], "s");
    // An oct JWK whose own `alg` needs a longer secret than it holds is
    // refused when loaded (HS512 wants 64 bytes; this `k` is 32).
    let k = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
    let short = serde_json::json!({"kty": "oct", "alg": "HS512", "k": k}).to_string();
    assert_eq!(
        VerifyingKey::from_jwk(&short).unwrap_err().kind(),
        ErrorKind::InvalidKeyMaterial
    );
    let fits = serde_json::json!({"kty": "oct", "alg": "HS256", "k": k}).to_string();
    assert!(VerifyingKey::from_jwk(&fits).is_ok());
    // An OpenSSH line whose type differs from its blob's is refused.
    use base64::Engine;
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[9u8; 32][..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let e = VerifyingKey::from_bytes(format!("ssh-rsa {b64} x").as_bytes()).unwrap_err();
    assert!(e.message().contains("differ"), "{e}");
}

/// The RSA size floor counts bits exactly: a modulus of 2047 bits (first
/// byte 0x7f) is refused, one of 2048 (first byte 0x80) accepted — as a JWK
/// and as an OpenSSH line (whose mpint carries a leading zero byte).
#[test]
fn rsa_minimum_size_is_exact_in_bits() {
    use base64::Engine;
    use irontoken::jwt::{KeyType, VerifyingKey};
    let modulus = |first: u8| {
        let mut n = vec![0xa5u8; 256];
        n[0] = first;
        n[255] |= 1; // odd, as a modulus is
        n
    };
    let jwk = |n: &[u8]| {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        serde_json::json!({"kty": "RSA", "n": b64(n), "e": b64(&[1, 0, 1])}).to_string()
    };
    let ssh = |n: &[u8]| {
        let mut mpint = vec![0u8];
        mpint.extend_from_slice(n);
        let mut blob = Vec::new();
        for part in [&b"ssh-rsa"[..], &[1u8, 0, 1][..], &mpint[..]] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        format!("ssh-rsa {b64} test")
    };
    let short = modulus(0x7f);
    for e in [
        VerifyingKey::from_jwk(&jwk(&short)).unwrap_err(),
        VerifyingKey::from_bytes(ssh(&short).as_bytes()).unwrap_err(),
    ] {
        assert_eq!(e.kind(), irontoken::ErrorKind::InvalidKeyMaterial);
        assert!(e.message().contains("2047 bits"), "{e}");
    }
    let full = modulus(0x80);
    for k in [
        VerifyingKey::from_jwk(&jwk(&full)).unwrap(),
        VerifyingKey::from_bytes(ssh(&full).as_bytes()).unwrap(),
    ] {
        assert_eq!(k.key_type(), KeyType::Rsa { bits: 2048 });
    }
}

/// EC curves other than P-256 and P-384 are refused when loaded, whatever
/// the length of their point: P-521 (133-byte point) and secp256k1 (a
/// 65-byte point, the length of P-256's).
#[test]
fn unsupported_ec_curves_are_refused_at_load() {
    use irontoken::jwt::VerifyingKey;
    for name in ["ec_p521_public.pem", "ec_secp256k1_public.pem"] {
        let e = VerifyingKey::from_pem(&vector_key(name)).unwrap_err();
        assert_eq!(e.kind(), irontoken::ErrorKind::InvalidKeyMaterial, "{name}");
        assert!(e.message().contains("curve"), "{name}: {e}");
    }
}

/// P-256 and P-384 keys whose point is compressed (33 and 49 bytes;
/// `openssl ec -pubin -pubout -conv_form compressed` of the vectors'
/// public keys) are refused when loaded: verification takes uncompressed
/// points only, so they could never verify a token (mutants shard 13: the
/// P-384 test's `&&` as `||` let such a key load).
#[test]
fn compressed_ec_points_are_refused_at_load() {
    use irontoken::jwt::VerifyingKey;
    for name in [
        "ec_p256_compressed_public.pem",
        "ec_p384_compressed_public.pem",
    ] {
        let e = VerifyingKey::from_pem(&vector_key(name)).unwrap_err();
        assert_eq!(e.kind(), irontoken::ErrorKind::InvalidKeyMaterial, "{name}");
    }
}
