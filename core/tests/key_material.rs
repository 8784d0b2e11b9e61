//! Key material: every key type and encoding loads (PEM, DER, JWK, JWKS,
//! OpenSSH), with the right messages; weak, unsupported and malformed keys are
//! refused at load.

use irontoken::ErrorKind;
use irontoken::jwt::{Alg, Keyring, Policy, PolicySettings, SigningKey, VerifyingKey, decode};
use serde_json::{Map, Value};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/jwt");

/// A file of the JWT vectors.
fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{path}")).unwrap()
}

/// Claims from a JSON object.
fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Loads, verifies or signs with one material as the vector says.
fn key_case(c: &Value, material: &[u8], as_text: bool, doc: &Value) -> irontoken::Result<()> {
    use irontoken::jwt::{Signer, Verifier};
    let now = doc["now"].as_i64().unwrap();
    let text = as_text.then(|| std::str::from_utf8(material).unwrap());
    match c["use"].as_str().unwrap() {
        "verify" => {
            let algs: Vec<String> = serde_json::from_value(c["algorithms"].clone()).unwrap();
            let policy = PolicySettings {
                algorithms: algs,
                ..Default::default()
            }
            .into_policy()?;
            let ring = match text {
                Some(t) => Keyring::from_text(t)?,
                None => Keyring::from_bytes(material)?,
            };
            let d = Verifier::new(ring, policy)?.decode_at(c["token"].as_str().unwrap(), now)?;
            assert_eq!(Value::Object(d.claims), doc["claims"]);
            Ok(())
        }
        _ => {
            let key = match text {
                Some(t) => SigningKey::from_text(t)?,
                None => SigningKey::from_bytes(material)?,
            };
            let alg = c["alg"].as_str().unwrap();
            let token =
                Signer::named(key, alg, None)?.sign(&claims(doc["claims"].clone()), None)?;
            let ring = match c["verify_pem"].as_str() {
                Some(p) => Keyring::from_text(&read(p))?,
                None => Keyring::from_bytes(material)?,
            };
            let policy = Policy::new(&[Alg::from_name(alg)?]);
            decode(&token, &ring, &policy, now).map(|_| ())
        }
    }
}

#[test]
fn key_material_vectors() {
    let doc: Value = serde_json::from_str(&read("keys.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 100);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let material = hex(c["key_hex"].as_str().unwrap());
        if let Some(kind) = c["kind"].as_str()
            && let Ok(m) = irontoken::jwt::classify(&material)
        {
            assert_eq!(m.describe(), kind, "{name}: classification");
        }
        let forms: &[bool] = if c["text"].as_bool().unwrap() {
            &[false, true]
        } else {
            &[false]
        };
        for &as_text in forms {
            let got = key_case(c, &material, as_text, &doc);
            match (c["expect"].as_str().unwrap(), got) {
                ("ok", Ok(())) => {}
                ("ok", Err(e)) => panic!("{name} (text: {as_text}): expected ok, got {e}"),
                (code, Ok(())) => panic!("{name} (text: {as_text}): expected {code}, got ok"),
                (code, Err(e)) => {
                    assert_eq!(e.code(), code, "{name} (text: {as_text}): {e}");
                    // Messages never carry key bytes.
                    if material.len() >= 16 {
                        let msg = e.message().as_bytes();
                        assert!(
                            !msg.windows(16)
                                .any(|w| material.windows(16).any(|m| m == w)),
                            "{name}: message quotes the key"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn private_jwk_verifies_through_its_public_part_and_messages_are_right() {
    // An EC private JWK (RFC 7517 A.2's P-256 key): `d` is ignored.
    let jwk = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","kid":"1"}"#;
    let k = VerifyingKey::from_jwk(jwk).unwrap();
    assert_eq!(k.key_type(), irontoken::jwt::KeyType::EcP256);
    // A public key where a private one is needed says so (not "17 bits").
    let e = SigningKey::from_pem(&read("keys/rsa_public.pem")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial);
    assert!(e.message().contains("cannot sign"), "{e}");
    assert!(!e.message().contains("bits"), "{e}");
    let e = SigningKey::from_pem(&read("keys/weak_rsa1024_private.pem")).unwrap_err();
    assert!(e.message().contains("1024 bits"), "{e}");
    let e = VerifyingKey::from_pem(&read("keys/weak_rsa1024_public.pem")).unwrap_err();
    assert!(e.message().contains("1024 bits"), "{e}");
}

#[test]
fn der_headers_are_read_exactly() {
    use base64::Engine;
    use irontoken::jwt::classify;
    let pem = read("keys/rsa_public.pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    assert_eq!(
        &der[..2],
        &[0x30, 0x82],
        "a 2048-bit SPKI: two length bytes"
    );
    assert_eq!(classify(&der).unwrap().describe(), "spki");
    // The same key with its length in four bytes (long form, not minimal)
    // is still a public key, so it is still refused as an HMAC secret.
    let mut long = vec![0x30, 0x84, 0x00, 0x00, der[2], der[3]];
    long.extend_from_slice(&der[4..]);
    let m = classify(&long).unwrap();
    assert_eq!(m.describe(), "spki");
    assert!(m.is_asymmetric());
    // Headers cut short, or claiming more than there is: secrets (then too
    // short, or HMAC keys), never a panic or an out-of-bounds read.
    for bytes in [
        &[0x30, 0x84, 0x01][..],
        &[0x30, 0x82],
        &[0x30],
        &[0x30, 0x85, 0, 0, 0, 0, 1, 0],
    ] {
        assert_eq!(classify(bytes).unwrap().describe(), "secret", "{bytes:?}");
    }
    // Debug names the kind and never prints key bytes.
    let secret = b"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
    let shown = format!("{:?}", classify(secret).unwrap());
    assert_eq!(shown, "secret");
    assert_eq!(format!("{:?}", classify(&der).unwrap()), "spki");
}

#[test]
fn der_structures_are_told_apart_by_their_shape() {
    use base64::Engine;
    use irontoken::jwt::classify;
    // A SEC1 EC private key as raw DER (the vectors hold it as PEM): a key,
    // never an HMAC secret.
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/keys.json")).unwrap())
            .unwrap();
    let sec1 = keys["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "sec1")
        .unwrap();
    let pem = String::from_utf8(hex(sec1["key_hex"].as_str().unwrap())).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    assert_eq!(classify(&der).unwrap().describe(), "sec1");
    // Sequences that only look alike are no key structure: secrets.
    for (what, bytes) in [
        // version 2, algorithm, octets: no PKCS#8 version (0 or 1)
        (
            "pkcs8 shape, version 2",
            &[0x30, 0x07, 0x02, 0x01, 0x02, 0x30, 0x00, 0x04, 0x00][..],
        ),
        // version 0, octets: no SEC1 version (1)
        (
            "sec1 shape, version 0",
            &[0x30, 0x06, 0x02, 0x01, 0x00, 0x04, 0x01, 0xaa],
        ),
        // version 0 and one more element: no RSA private key (9 integers)
        (
            "pkcs1 version, too short",
            &[0x30, 0x05, 0x02, 0x01, 0x00, 0x05, 0x00],
        ),
        // a header of one length byte cut short
        ("cut short", &[0x30, 0x81]),
    ] {
        assert_eq!(classify(bytes).unwrap().describe(), "secret", "{what}");
    }
}

#[test]
fn raw_openssh_blobs_are_keys() {
    use base64::Engine;
    use irontoken::jwt::classify;
    // The wire-format blob of an OpenSSH public key line, as some tools
    // store it: a key (never an HMAC secret).
    let line = read("keys/ec_p384_public.ssh");
    let b64 = line.split_whitespace().nth(1).unwrap();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let m = classify(&blob).unwrap();
    assert_eq!(m.describe(), "ssh");
    assert!(m.is_asymmetric());
    // A length prefix naming no key type: a secret.
    let mut other = vec![0, 0, 0, 7];
    other.extend_from_slice(b"ssh-foo");
    other.extend_from_slice(&[7u8; 32]);
    assert_eq!(classify(&other).unwrap().describe(), "secret");
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
