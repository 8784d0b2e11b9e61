//! JWT verification against the shared vectors (RFC 7515 Appendix A and
//! attacks) and signing round trips.

use irontoken::ErrorKind;
use irontoken::jwt::{
    Alg, Keyring, Policy, PolicySettings, SigningKey, VerifyingKey, decode, encode, verify_jws,
};
use serde_json::{Map, Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/jwt");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{path}")).unwrap()
}

/// Loads the key of a vector case the way an application would.
fn keyring(spec: &Value) -> irontoken::Result<Keyring> {
    if let Some(p) = spec.get("pem") {
        return Ok(Keyring::single(VerifyingKey::from_pem(&read(
            p.as_str().unwrap(),
        ))?));
    }
    if let Some(j) = spec.get("jwk") {
        return Ok(Keyring::single(VerifyingKey::from_jwk(&j.to_string())?));
    }
    if let Some(s) = spec.get("secret_b64u") {
        use base64::Engine;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.as_str().unwrap())
            .unwrap();
        return Ok(Keyring::single(VerifyingKey::hmac(&secret)?));
    }
    if let Some(set) = spec.get("jwks") {
        return Keyring::from_jwks(&set.to_string());
    }
    panic!("unknown key spec {spec}");
}

fn run(file: &str) -> usize {
    let doc: Value = serde_json::from_str(&read(file)).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let policy: PolicySettings = serde_json::from_value(c["policy"].clone()).unwrap();
        let policy = policy.into_policy().unwrap();
        let now = c["now"].as_i64().unwrap();
        let result = keyring(&c["key"])
            .and_then(|ring| decode(c["token"].as_str().unwrap(), &ring, &policy, now));
        match (&c["expect"]["error"], result) {
            (Value::String(code), Err(e)) => {
                assert_eq!(e.code(), code, "{name}: {e}");
                // The claim a refusal is about travels as data.
                assert_eq!(e.claim(), c["expect"]["claim"].as_str(), "{name}: claim");
            }
            (Value::String(code), Ok(d)) => panic!("{name}: expected {code}, got {:?}", d.claims),
            (_, Ok(d)) => assert_eq!(Value::Object(d.claims), c["expect"]["claims"], "{name}"),
            (_, Err(e)) => panic!("{name}: expected success, got {e}"),
        }
    }
    cases.len()
}

#[test]
fn rfc7515_appendix_a() {
    assert_eq!(run("rfc7515.json"), 5);
}

#[test]
fn attack_vectors() {
    assert!(run("attacks.json") >= 50);
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn sign_and_verify_round_trips_for_every_key_type() {
    let now = 1_700_000_000;
    let c = claims(json!({"sub": "u", "exp": now + 60, "scope": "read"}));
    let pairs = [
        (
            "rsa_private.pem",
            "rsa_public.pem",
            vec![
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ],
        ),
        (
            "ec_p256_private.pem",
            "ec_p256_public.pem",
            vec![Alg::ES256],
        ),
        (
            "ed25519_private.pem",
            "ed25519_public.pem",
            vec![Alg::EdDSA],
        ),
    ];
    for (private, public, algs) in pairs {
        let sk = SigningKey::from_pem(&read(&format!("keys/{private}")))
            .unwrap()
            .with_kid("k1");
        let vk = VerifyingKey::from_pem(&read(&format!("keys/{public}")))
            .unwrap()
            .with_kid("k1");
        let ring = Keyring::single(vk);
        for alg in algs {
            let token = encode(&c, &sk, alg, None).unwrap();
            let d = decode(&token, &ring, &Policy::new(&[alg]), now).unwrap();
            assert_eq!(d.claims, c, "{alg:?}");
            assert_eq!(d.header["kid"], "k1");
            assert_eq!(d.header["alg"], alg.as_str());
        }
        // A private key never signs HMAC (it is not a secret).
        let e = encode(&c, &sk, Alg::HS256, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial);
    }
    // RFC 7518 §3.2: a secret as long as the hash; 32 bytes sign HS256 only.
    let short = SigningKey::hmac(b"0123456789abcdef0123456789abcdef").unwrap();
    for alg in [Alg::HS384, Alg::HS512] {
        let e = encode(&c, &short, alg, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial, "{e}");
        let ring =
            Keyring::single(VerifyingKey::hmac(b"0123456789abcdef0123456789abcdef").unwrap());
        let e = decode("x.y.z", &ring, &Policy::new(&[alg]), now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial, "{e}");
    }
    let secret = &[b'k'; 64];
    let sk = SigningKey::hmac(secret).unwrap();
    let ring = Keyring::single(VerifyingKey::hmac(secret).unwrap());
    for alg in [Alg::HS256, Alg::HS384, Alg::HS512] {
        let token = encode(&c, &sk, alg, None).unwrap();
        assert_eq!(
            decode(&token, &ring, &Policy::new(&[alg]), now)
                .unwrap()
                .claims,
            c
        );
    }
    assert_eq!(
        SigningKey::hmac(b"too short").unwrap_err().kind(),
        ErrorKind::InvalidKeyMaterial
    );
}

#[test]
fn jws_returns_raw_payload() {
    let sk = SigningKey::hmac(&[7u8; 32]).unwrap();
    let ring = Keyring::single(VerifyingKey::hmac(&[7u8; 32]).unwrap());
    // A non-JSON payload: build it through encode's sibling, by hand.
    let token = encode(&claims(json!({"event": "paid"})), &sk, Alg::HS256, None).unwrap();
    let jws = verify_jws(&token, &ring, &Policy::new(&[Alg::HS256])).unwrap();
    assert_eq!(jws.payload, br#"{"event":"paid"}"#);
}

#[test]
fn key_loading_refuses_bad_material() {
    for bad in [
        "",
        "not a pem",
        &read("keys/weak_rsa1024_public.pem"),
        &read("keys/ec_p256_private.pem"),
    ] {
        let e = VerifyingKey::from_pem(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial, "{bad:.40}");
    }
    let e = SigningKey::from_pem(&read("keys/weak_rsa1024_private.pem")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial);
    // A JWK whose alg does not fit its type, and a JWK for encryption.
    let e = VerifyingKey::from_jwk(r#"{"kty":"oct","alg":"RS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial);
    let e = VerifyingKey::from_jwk(r#"{"kty":"oct","use":"enc","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKeyMaterial);
    // Debug never shows the secret.
    let k = VerifyingKey::hmac(b"super-secret-value-of-32-bytes!!").unwrap();
    assert!(!format!("{k:?}").contains("super-secret"));
    let s = SigningKey::hmac(b"super-secret-value-of-32-bytes!!").unwrap();
    assert!(!format!("{s:?}").contains("super-secret"));
}

#[test]
fn jwks_keyring_requires_distinct_kids() {
    let pem = read("keys/rsa_public.pem");
    let mut ring = Keyring::new();
    ring.add(VerifyingKey::from_pem(&pem).unwrap().with_kid("a"))
        .unwrap();
    assert!(
        ring.add(VerifyingKey::from_pem(&pem).unwrap().with_kid("a"))
            .is_err()
    );
    assert!(ring.add(VerifyingKey::from_pem(&pem).unwrap()).is_err());
    let jwks = r#"{"keys":[
        {"kty":"oct","kid":"h1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},
        {"kty":"EC","kid":"e1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
    ]}"#;
    let ring = Keyring::from_jwks(jwks).unwrap();
    assert_eq!(ring.len(), 2);
    assert!(ring.get("e1").is_some());
}

#[test]
fn policy_settings_are_checked() {
    let bad: Vec<Value> = vec![
        json!({}),
        json!({"algorithms": []}),
        json!({"algorithms": ["none"]}),
        json!({"algorithms": ["HS256"], "leeway": -1}),
    ];
    for b in bad {
        let s: PolicySettings = serde_json::from_value(b.clone()).unwrap();
        assert_eq!(
            s.into_policy().unwrap_err().kind(),
            ErrorKind::InvalidArgument,
            "{b}"
        );
    }
    assert!(
        serde_json::from_value::<PolicySettings>(json!({"algorithms": ["HS256"], "bogus": 1}))
            .is_err()
    );
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
fn one_shot_key_caches_reuse_parsed_keys_by_content() {
    use std::sync::Arc;
    let pem = read("keys/rsa_public.pem");
    let a = Keyring::from_bytes_cached(pem.as_bytes()).unwrap();
    let b = Keyring::from_bytes_cached(pem.as_bytes()).unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "the same bytes: the same parsed keyring"
    );
    let secret = [7u8; 40];
    let c = Keyring::from_bytes_cached(&secret).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    let mut other = secret;
    other[39] = 8;
    assert!(!Arc::ptr_eq(
        &c,
        &Keyring::from_bytes_cached(&other).unwrap()
    ));
    // Inputs up to 64 KiB are cached: PEM after 2 000 bytes of text too.
    let long = format!("{}\n{pem}", "x".repeat(2000));
    assert!(Arc::ptr_eq(
        &Keyring::from_bytes_cached(long.as_bytes()).unwrap(),
        &Keyring::from_bytes_cached(long.as_bytes()).unwrap()
    ));
    // The size cap is exact: an HMAC secret of exactly 64 KiB is kept, one
    // byte more is parsed every call (the cache is bounded by count, so a
    // larger input would pin its size per entry).
    let max = irontoken::jwt::CACHED_KEY_MAX_BYTES;
    for (len, kept) in [(max, true), (max + 1, false)] {
        let big = vec![b'k'; len];
        assert_eq!(
            Arc::ptr_eq(
                &Keyring::from_bytes_cached(&big).unwrap(),
                &Keyring::from_bytes_cached(&big).unwrap()
            ),
            kept,
            "{len} bytes"
        );
    }
    // Failures are not cached: the same bad input fails every time.
    for _ in 0..2 {
        assert_eq!(
            Keyring::from_bytes_cached(b"short").unwrap_err().kind(),
            ErrorKind::InvalidKeyMaterial
        );
    }
    // A cached signing key signs like a fresh one, and a kid set on one
    // copy does not leak into the next.
    let sk = SigningKey::from_bytes_cached(&secret)
        .unwrap()
        .with_kid("k1");
    let again = SigningKey::from_bytes_cached(&secret).unwrap();
    let claims = json!({"sub": "u", "exp": 4_000_000_000i64});
    let t1 = encode(claims.as_object().unwrap(), &sk, Alg::HS256, None).unwrap();
    let t2 = encode(claims.as_object().unwrap(), &again, Alg::HS256, None).unwrap();
    assert_ne!(t1, t2, "only the first names kid k1");
    let policy = Policy::new(&[Alg::HS256]);
    assert!(decode(&t1, &c, &policy, 1_000).is_ok());
    assert!(decode(&t2, &c, &policy, 1_000).is_ok());
}

#[test]
fn a_key_allows_only_what_its_type_alg_and_length_allow() {
    use base64::Engine;
    // A PEM key carries no `alg`: every algorithm of its type.
    let any = VerifyingKey::from_pem(&read("keys/rsa_public.pem")).unwrap();
    assert!(any.allows(Alg::RS256) && any.allows(Alg::RS384) && any.alg().is_none());
    // A JWK's `alg` restricts it, whatever its type or length would allow.
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = serde_json::json!({"kty": "oct", "alg": "HS256", "k": b64(&[7u8; 64])}).to_string();
    let oct = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(oct.alg(), Some(Alg::HS256));
    assert!(oct.allows(Alg::HS256));
    assert!(
        !oct.allows(Alg::HS512),
        "restricted to its alg although 64 bytes would fit HS512"
    );
    // An HMAC secret of 32 bytes: HS256 only; never an asymmetric algorithm.
    let secret = VerifyingKey::from_jwk(
        &serde_json::json!({"kty": "oct", "k": b64(&[7u8; 32])}).to_string(),
    )
    .unwrap();
    assert!(secret.allows(Alg::HS256));
    assert!(!secret.allows(Alg::HS384) && !secret.allows(Alg::HS512));
    assert!(!secret.allows(Alg::ES256) && !secret.allows(Alg::RS256) && !secret.allows(Alg::EdDSA));
    // A public key never allows an HMAC algorithm.
    assert!(!any.allows(Alg::HS256));
}

#[test]
fn keyring_selection_refusals_say_why() {
    let secret = b"a-shared-secret-of-at-least-32-bytes";
    let sk = SigningKey::hmac(secret).unwrap();
    let token = encode(&Map::new(), &sk, Alg::HS256, None).unwrap();
    let policy: Policy = serde_json::from_value::<PolicySettings>(json!({"algorithms": ["HS256"]}))
        .unwrap()
        .into_policy()
        .unwrap();
    // An empty keyring (a JWKS client before its first fetch, say).
    let empty = Keyring::new();
    assert!(empty.is_empty());
    let e = verify_jws(&token, &empty, &policy).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwtKeyNotFound);
    assert!(e.message().contains("the keyring is empty"), "{e}");
    // Several keys and a token with no kid: which one is not guessed.
    let mut two = Keyring::new();
    for kid in ["a", "b"] {
        two.add(VerifyingKey::hmac(secret).unwrap().with_kid(kid))
            .unwrap();
    }
    assert!(!two.is_empty());
    let e = verify_jws(&token, &two, &policy).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwtKeyNotFound);
    assert!(
        e.message()
            .contains("no kid and the keyring holds several keys"),
        "{e}"
    );
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

#[test]
fn token_size_limits_are_exact() {
    let secret = b"a-shared-secret-of-at-least-32-bytes";
    let sk = SigningKey::hmac(secret).unwrap();
    let ring = Keyring::single(VerifyingKey::hmac(secret).unwrap());
    // A token just under the default 8 KiB limit verifies; one over it is
    // refused before any decoding.
    let sized = |total: usize| {
        let mut pad = 0;
        loop {
            let c = claims_of(json!({"sub": "u", "pad": "x".repeat(pad)}));
            let t = encode(&c, &sk, Alg::HS256, None).unwrap();
            if t.len() >= total {
                return t;
            }
            pad += (total - t.len()) * 3 / 4 + 1;
        }
    };
    let policy = Policy::new(&[Alg::HS256]);
    let big = sized(8000);
    assert!(big.len() <= 8 * 1024, "{}", big.len());
    let mut p = policy.clone();
    p.require_exp = false;
    verify_jws(&big, &ring, &p).unwrap();
    let over = sized(8 * 1024 + 1);
    let e = verify_jws(&over, &ring, &p).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwtMalformed);
    assert!(e.message().contains("byte limit"), "{e}");
    // The limit itself is allowed: a token of exactly max_token_bytes.
    let mut exact = p.clone();
    exact.max_token_bytes = big.len();
    verify_jws(&big, &ring, &exact).unwrap();
    exact.max_token_bytes = big.len() - 1;
    assert_eq!(
        verify_jws(&big, &ring, &exact).unwrap_err().kind(),
        ErrorKind::JwtMalformed
    );
    // Read without verifying (routing): the claims as they are, and the
    // same size bound.
    let u = irontoken::jwt::decode_unverified(&big, big.len()).unwrap();
    assert_eq!(u.claims().unwrap()["sub"], "u");
    assert!(irontoken::jwt::decode_unverified(&big, big.len() - 1).is_err());
    // The setting: positive values apply, 0 is refused; leeway 0 is valid.
    let s = |v: Value| {
        serde_json::from_value::<PolicySettings>(v)
            .unwrap()
            .into_policy()
    };
    let small =
        s(json!({"algorithms": ["HS256"], "max_token_bytes": 100, "require_exp": false})).unwrap();
    assert_eq!(small.max_token_bytes, 100);
    assert_eq!(
        verify_jws(&big, &ring, &small).unwrap_err().kind(),
        ErrorKind::JwtMalformed
    );
    assert_eq!(
        s(json!({"algorithms": ["HS256"], "max_token_bytes": 0}))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        s(json!({"algorithms": ["HS256"], "leeway": 0}))
            .unwrap()
            .leeway,
        0
    );
}

fn claims_of(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn leeway_applies_to_nbf_and_iat_exactly() {
    let secret = b"a-shared-secret-of-at-least-32-bytes";
    let sk = SigningKey::hmac(secret).unwrap();
    let ring = Keyring::single(VerifyingKey::hmac(secret).unwrap());
    let now = 1_700_000_000;
    let mut p = Policy::new(&[Alg::HS256]);
    p.require_exp = false;
    p.leeway = 30;
    for (claim, at, ok) in [
        ("nbf", now + 30, true),
        ("nbf", now + 31, false),
        ("iat", now + 30, true),
        ("iat", now + 31, false),
    ] {
        let t = encode(
            &claims_of(json!({"sub": "u", claim: at})),
            &sk,
            Alg::HS256,
            None,
        )
        .unwrap();
        match decode(&t, &ring, &p, now) {
            Ok(_) => assert!(ok, "{claim} {at}: accepted"),
            Err(e) => {
                assert!(!ok, "{claim} {at}: {e}");
                assert_eq!(e.kind(), ErrorKind::JwtNotYetValid);
            }
        }
    }
    // No leeway: nbf = now is valid, a second later is not.
    p.leeway = 0;
    for (at, ok) in [(now, true), (now + 1, false)] {
        let t = encode(
            &claims_of(json!({"sub": "u", "nbf": at})),
            &sk,
            Alg::HS256,
            None,
        )
        .unwrap();
        assert_eq!(decode(&t, &ring, &p, now).is_ok(), ok, "nbf {at}");
    }
}
