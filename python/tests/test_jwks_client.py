"""PyJWKClient against a real HTTP server on 127.0.0.1: the gateway flow,
rotating keys, slow, oversized and failing answers, a flood of unknown kids."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from irontoken import jwt

KEYS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "vectors" / "jwt" / "keys"
NOW = 1_700_000_000


class Provider:
    """What the fake identity provider answers, and how often it was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.delay = 0.0
        self.hits = 0


@pytest.fixture()
def provider() -> Iterator[tuple[Provider, str]]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.hits += 1
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def rsa_jwk(kid: str, name: str = "rsa") -> Dict[str, Any]:
    pub = serialization.load_pem_public_key((KEYS / f"{name}_public.pem").read_bytes())
    assert isinstance(pub, rsa.RSAPublicKey)
    return {**json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(pub)), "kid": kid, "use": "sig", "alg": "RS256"}


def token(kid: str, name: str = "rsa", **claims: Any) -> str:
    body = {"sub": "consumer-1", "exp": NOW + 60, **claims}
    return pyjwt.encode(body, (KEYS / f"{name}_private.pem").read_bytes(), algorithm="RS256", headers={"kid": kid})


def jwks(keys: List[Dict[str, Any]]) -> bytes:
    return json.dumps({"keys": keys}).encode()


def test_gateway_flow_with_pyjwkclient(provider: tuple[Provider, str]) -> None:
    state, url = provider
    state.body = jwks([rsa_jwk("k1")])
    client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300)
    t = token("k1")
    key = client.get_signing_key_from_jwt(t)
    assert key.key_id == "k1" and key.key_type == "RSA"
    assert jwt.decode(t, key.key, algorithms=["RS256"], now=NOW)["sub"] == "consumer-1"
    assert client.decode(t, algorithms=["RS256"], now=NOW)["sub"] == "consumer-1"
    assert [k.key_id for k in client.get_signing_keys()] == ["k1"]
    assert client.fetch_data()["keys"][0]["kid"] == "k1"
    assert state.hits == 2  # first use + fetch_data; the rest came from the cache
    with pytest.raises(jwt.PyJWKClientError):
        client.get_signing_key("nope")


def test_rotation_and_kid_flood(provider: tuple[Provider, str]) -> None:
    state, url = provider
    state.body = jwks([rsa_jwk("k1")])
    client = jwt.PyJWKClient(url, cooldown=1)
    assert client.decode(token("k1"), algorithms="RS256", now=NOW)["sub"] == "consumer-1"
    state.body = jwks([rsa_jwk("k1"), rsa_jwk("k2", "attacker_rsa")])
    time.sleep(1.05)  # the cooldown, at least 1 s, since the first fetch
    assert client.decode(token("k2", "attacker_rsa"), algorithms="RS256", now=NOW)["sub"] == "consumer-1"
    hits = state.hits
    slow_down = jwt.PyJWKClient(url, cooldown=60)
    for _ in range(30):
        with pytest.raises(jwt.KeyNotFoundInKeyringError):
            slow_down.decode(token("unknown"), algorithms=["RS256"], now=NOW)
    assert state.hits - hits == 1


def test_bad_answers(provider: tuple[Provider, str]) -> None:
    state, url = provider
    state.body = jwks([rsa_jwk("k1")])
    state.delay = 0.6
    t0 = time.monotonic()
    with pytest.raises(jwt.PyJWKClientConnectionError) as e:
        jwt.PyJWKClient(url, timeout=0.2).get_signing_key("k1")
    assert time.monotonic() - t0 < 0.55 and e.value.code == "JWKS_FETCH_FAILED"
    assert isinstance(e.value, jwt.PyJWKClientError) and isinstance(e.value, jwt.PyJWTError)
    state.delay = 0
    state.body = b'{"keys": [], "pad": "' + b"x" * 4096 + b'"}'
    with pytest.raises(jwt.PyJWKClientConnectionError):
        jwt.PyJWKClient(url, max_bytes=1024).fetch_data()
    state.body = jwks([rsa_jwk("k1")])
    state.status = 500
    with pytest.raises(jwt.PyJWKClientConnectionError):
        jwt.PyJWKClient(url).get_jwk_set()


def test_a_published_secret_verifies_nothing(provider: tuple[Provider, str]) -> None:
    """An RSA key and an oct key under one kid: an HS256 token MACed with the
    published secret is refused, whatever the allow-list (as jose does)."""
    import base64

    state, url = provider
    secret = b"s" * 32
    oct_jwk = {"kty": "oct", "kid": "k1", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
    state.body = jwks([rsa_jwk("k1"), oct_jwk])
    forged = pyjwt.encode({"sub": "admin", "exp": NOW + 60}, secret, algorithm="HS256", headers={"kid": "k1"})
    client = jwt.PyJWKClient(url)
    with pytest.raises(jwt.PyJWTError):
        client.decode(forged, algorithms=["RS256", "HS256"], now=NOW)
    assert client.decode(token("k1"), algorithms=["RS256", "HS256"], now=NOW)["sub"] == "consumer-1"
    assert [k.key_type for k in client.get_jwk_set().keys] == ["RSA"]
    assert client.get_signing_key("k1").key_type == "RSA"
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(forged, client.get_signing_key_from_jwt(forged).key, algorithms=["RS256", "HS256"], now=NOW)


def test_defaults_are_irontokens() -> None:
    import inspect

    params = inspect.signature(jwt.PyJWKClient.__init__).parameters
    assert params["timeout"].default == 5 and params["lifespan"].default == 600
    assert params["cooldown"].default == 30
    with pytest.raises(jwt.InvalidArgumentError, match="cooldown"):
        jwt.PyJWKClient("https://idp.example/jwks", cooldown=0)


def test_urls_and_options_are_checked() -> None:
    for bad in ("http://idp.example/jwks", "ftp://x/y", "idp.example"):
        with pytest.raises(jwt.InvalidArgumentError):
            jwt.PyJWKClient(bad)
    jwt.PyJWKClient("http://idp.example/jwks", allow_http=True)
    for kwargs in ({"timeout": float("inf")}, {"lifespan": -1}, {"ssl_context": object()}):
        with pytest.raises(jwt.InvalidArgumentError):
            jwt.PyJWKClient("https://idp.example/jwks", **kwargs)  # type: ignore[arg-type]


def test_fastapi_require_jwt_with_a_jwks_client(provider: tuple[Provider, str]) -> None:
    """require_jwt over a PyJWKClient: the set is fetched off the event loop;
    a good token passes, a forged or unknown-kid one is 401, an identity
    provider that fails is 503 (the token was not judged), never a 500."""
    fastapi = pytest.importorskip("fastapi", reason="skipped: FastAPI is not installed")
    from fastapi.testclient import TestClient

    from irontoken.fastapi import require_jwt

    state, url = provider
    state.body = jwks([rsa_jwk("k1")])
    app = fastapi.FastAPI()
    client = jwt.PyJWKClient(url)

    @app.get("/me")
    async def me(claims: Dict[str, Any] = fastapi.Depends(require_jwt(client, algorithms=["RS256"], audience="api"))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    http = TestClient(app)
    live = int(time.time()) + 60
    ok = http.get("/me", headers={"Authorization": f"Bearer {token('k1', aud='api', exp=live)}"})
    assert ok.status_code == 200 and ok.json() == {"sub": "consumer-1"}
    for bad in (token("k1", aud="other", exp=live), token("k2", aud="api", exp=live), token("k1", "attacker_rsa", aud="api", exp=live)):
        r = http.get("/me", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    state.status = 500
    client2 = jwt.PyJWKClient(url)
    app2 = fastapi.FastAPI()

    @app2.get("/me")
    async def me2(claims: Dict[str, Any] = fastapi.Depends(require_jwt(client2, audience="api"))) -> Dict[str, Any]:
        return claims

    r = TestClient(app2).get("/me", headers={"Authorization": f"Bearer {token('k1', aud='api', exp=live)}"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
