//! Remote JWKS against a real HTTP server on 127.0.0.1: rotating keys, a slow
//! answer, an oversized answer, 500s with a stale set, a flood of unknown kids.

use irontoken::ErrorKind;
use irontoken::jwt::{
    Alg, Policy, RemoteJwks, RemoteJwksOptions, Signer, SigningKey, remote::MIN_COOLDOWN,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers: status, body, delay before answering.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

struct Server {
    url: String,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
}

fn serve(answer: Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let answer = Arc::new(Mutex::new(answer));
    let hits = Arc::new(AtomicUsize::new(0));
    let (a, h) = (answer.clone(), hits.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let (a, h) = (a.clone(), h.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                h.fetch_add(1, Ordering::SeqCst);
                let ans = a.lock().unwrap().clone();
                std::thread::sleep(ans.delay);
                let _ = write!(
                    s,
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    ans.status,
                    ans.body.len(),
                    ans.body
                );
            });
        }
    });
    Server { url, answer, hits }
}

/// The Ed25519 key of the test vectors; its public half is `ED_X`.
const ED_PEM: &str = include_str!("../../tests/vectors/jwt/keys/ed25519_private.pem");
const ED_X: &str = "K4wEiq85BBSQjYQCClpN39a-8DnZraR_hSPC27S40bI";

/// A set of the Ed25519 key under kids `k<i>`.
fn jwks(kids: &[u8]) -> String {
    let keys: Vec<String> = kids
        .iter()
        .map(|i| format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"k{i}","x":"{ED_X}"}}"#))
        .collect();
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

fn sign(key: SigningKey, alg: Alg) -> String {
    let claims = serde_json::json!({"sub": "u", "exp": 2_000_000_000});
    Signer::new(key, alg)
        .unwrap()
        .sign(claims.as_object().unwrap(), None)
        .unwrap()
}

fn token(i: u8) -> String {
    let key = SigningKey::from_pem(ED_PEM)
        .unwrap()
        .with_kid(format!("k{i}"));
    sign(key, Alg::EdDSA)
}

/// Waits out the shortest cooldown, so an unknown kid may refetch.
fn cool_down() {
    std::thread::sleep(MIN_COOLDOWN + Duration::from_millis(50));
}

fn ok(body: String) -> Answer {
    Answer {
        status: 200,
        body,
        delay: Duration::ZERO,
    }
}

const NOW: i64 = 1_700_000_000;

fn opts() -> RemoteJwksOptions {
    RemoteJwksOptions {
        cooldown: MIN_COOLDOWN,
        ..Default::default()
    }
}

#[test]
fn rotated_keys_are_fetched_once_for_an_unknown_kid() {
    let server = serve(ok(jwks(&[1])));
    let remote = RemoteJwks::new(&server.url, opts()).unwrap();
    let policy = Policy::new(&[Alg::EdDSA]);
    assert_eq!(
        remote.decode(&token(1), &policy, NOW).unwrap().claims["sub"],
        "u"
    );
    assert_eq!(
        remote.decode(&token(1), &policy, NOW).unwrap().claims["sub"],
        "u"
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "cached");
    // The provider rotates: k2 appears; a k2 token refetches once.
    server.answer.lock().unwrap().body = jwks(&[1, 2]);
    cool_down();
    assert!(remote.decode(&token(2), &policy, NOW).is_ok());
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    assert_eq!(remote.key("k2").unwrap().kid(), Some("k2"));
    assert_eq!(
        remote.key("k9").unwrap_err().kind(),
        ErrorKind::JwtKeyNotFound
    );
}

#[test]
fn a_flood_of_unknown_kids_costs_one_fetch_per_cooldown() {
    let server = serve(ok(jwks(&[1])));
    let remote = RemoteJwks::new(
        &server.url,
        RemoteJwksOptions {
            cooldown: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap();
    let policy = Policy::new(&[Alg::EdDSA]);
    for _ in 0..50 {
        let e = remote.decode(&token(7), &policy, NOW).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::JwtKeyNotFound);
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    assert!(remote.decode(&token(1), &policy, NOW).is_ok());
}

#[test]
fn slow_oversized_and_failing_answers_are_refused() {
    let slow = serve(Answer {
        delay: Duration::from_millis(800),
        ..ok(jwks(&[1]))
    });
    let remote = RemoteJwks::new(
        &slow.url,
        RemoteJwksOptions {
            timeout: Duration::from_millis(200),
            ..opts()
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    assert_eq!(
        remote.keyring().unwrap_err().kind(),
        ErrorKind::JwksFetchFailed
    );
    assert!(t.elapsed() < Duration::from_millis(700));

    let big = serve(ok(format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(4096))));
    let remote = RemoteJwks::new(
        &big.url,
        RemoteJwksOptions {
            max_bytes: 1024,
            ..opts()
        },
    )
    .unwrap();
    let e = remote.keyring().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwksFetchFailed);
    assert!(e.message().contains("limit"), "{e}");

    for (status, body) in [
        (500, jwks(&[1])),
        (200, "not json".into()),
        (200, r#"{"keys":[{"kty":"XYZ"}]}"#.into()),
    ] {
        let s = serve(Answer {
            status,
            body,
            delay: Duration::ZERO,
        });
        let e = RemoteJwks::new(&s.url, opts())
            .unwrap()
            .keyring()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::JwksFetchFailed, "{status}: {e}");
    }
}

#[test]
fn a_stale_set_serves_while_refetches_fail_then_expires() {
    let server = serve(ok(jwks(&[1])));
    let remote = RemoteJwks::new(
        &server.url,
        RemoteJwksOptions {
            cache_max_age: Duration::from_millis(100),
            stale_max: Duration::from_millis(400),
            cooldown: MIN_COOLDOWN,
            ..Default::default()
        },
    )
    .unwrap();
    let policy = Policy::new(&[Alg::EdDSA]);
    assert!(remote.decode(&token(1), &policy, NOW).is_ok());
    server.answer.lock().unwrap().status = 500;
    std::thread::sleep(Duration::from_millis(150));
    // Old, refetch fails: the last good set still serves.
    assert!(remote.decode(&token(1), &policy, NOW).is_ok());
    assert!(server.hits.load(Ordering::SeqCst) >= 2);
    std::thread::sleep(Duration::from_millis(450));
    let e = remote.decode(&token(1), &policy, NOW).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwksFetchFailed);
    // The provider recovers (a fetch may run once the cooldown after the
    // failed one is over).
    server.answer.lock().unwrap().status = 200;
    cool_down();
    assert!(remote.decode(&token(1), &policy, NOW).is_ok());
}

#[test]
fn decode_cached_answers_only_without_network() {
    let server = serve(ok(jwks(&[1])));
    let remote = RemoteJwks::new(
        &server.url,
        RemoteJwksOptions {
            cooldown: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap();
    let policy = Policy::new(&[Alg::EdDSA]);
    assert!(
        remote.decode_cached(&token(1), &policy, NOW).is_none(),
        "nothing cached yet"
    );
    assert!(remote.decode(&token(1), &policy, NOW).is_ok());
    assert!(
        remote
            .decode_cached(&token(1), &policy, NOW)
            .unwrap()
            .is_ok()
    );
    // An unknown kid inside the cooldown is answered from the cache.
    let e = remote
        .decode_cached(&token(5), &policy, NOW)
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwtKeyNotFound);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

/// HTTPS through the real TLS stack: a server with a self-signed
/// certificate (made by openssl here) is refused, not trusted and not a panic.
#[test]
fn https_with_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let Ok(made) = made else {
        eprintln!("skipped: no openssl command");
        return;
    };
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cert_der = pem::parse(std::fs::read(&cert).unwrap())
        .unwrap()
        .into_contents();
    let key_der = pem::parse(std::fs::read(&key).unwrap())
        .unwrap()
        .into_contents();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(cert_der)],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 1024];
            if tls.read(&mut buf).is_ok() {
                h.fetch_add(1, Ordering::SeqCst); // a request got through TLS
            }
        }
    });
    let remote = RemoteJwks::new(&format!("https://127.0.0.1:{port}/jwks.json"), opts()).unwrap();
    let e = remote.keyring().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwksFetchFailed);
    assert!(
        e.message().to_lowercase().contains("certificate")
            || e.message().to_lowercase().contains("tls"),
        "{e}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request sent over an untrusted connection"
    );
}

#[test]
fn concurrent_callers_share_one_fetch() {
    let server = serve(Answer {
        delay: Duration::from_millis(200),
        ..ok(jwks(&[1]))
    });
    let remote = Arc::new(RemoteJwks::new(&server.url, opts()).unwrap());
    let policy = Policy::new(&[Alg::EdDSA]);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (r, p) = (remote.clone(), policy.clone());
            std::thread::spawn(move || r.decode(&token(1), &p, NOW).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn a_published_secret_verifies_nothing_and_the_cooldown_has_a_floor() {
    use base64::Engine;
    let secret = [b'c'; 32];
    // An RSA-like public key and a published HMAC secret under one kid.
    let body = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"{ED_X}"}},{{"kty":"oct","kid":"k1","k":"{}"}}]}}"#,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let server = serve(ok(body));
    let remote = RemoteJwks::new(&server.url, opts()).unwrap();
    let forged = sign(
        SigningKey::hmac(&secret).unwrap().with_kid("k1"),
        Alg::HS256,
    );
    let policy = Policy::new(&[Alg::EdDSA, Alg::HS256]);
    let e = remote.decode(&forged, &policy, NOW).unwrap_err();
    assert_ne!(e.kind(), ErrorKind::JwksFetchFailed, "{e}");
    assert!(remote.decode(&token(1), &policy, NOW).is_ok());
    // A set holding only secrets is unusable.
    let only = serve(ok(format!(
        r#"{{"keys":[{{"kty":"oct","kid":"h","k":"{}"}}]}}"#,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    )));
    let e = RemoteJwks::new(&only.url, opts())
        .unwrap()
        .keyring()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::JwksFetchFailed);
    assert!(e.message().contains("oct"), "{e}");
    for short in [Duration::ZERO, Duration::from_millis(999)] {
        let e = RemoteJwks::new(
            &server.url,
            RemoteJwksOptions {
                cooldown: short,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}
