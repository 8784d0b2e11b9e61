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
