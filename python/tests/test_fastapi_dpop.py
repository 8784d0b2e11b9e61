"""require_jwt(..., dpop=True) and certificate binding against a real server
(FastAPI under uvicorn, httpx; proofs made by PyJWT): a DPoP-bound token
with its proof, a replayed proof, a stolen token with another key, a bound
token sent as Bearer, the server nonce dance, and an mTLS-bound token
behind a proxy header."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

fastapi = pytest.importorskip("fastapi", reason="skipped: FastAPI is not installed")
httpx = pytest.importorskip("httpx", reason="skipped: httpx is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="skipped: uvicorn is not installed")

import jwt as pyjwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from fastapi import Depends, FastAPI, Request  # noqa: E402

from irontoken.aio import AsyncTokenManager  # noqa: E402
from irontoken.fastapi import require_jwt  # noqa: E402
from irontoken.jwt import JwtVerifier, access_token_hash, cert_thumbprint, jwk_thumbprint  # noqa: E402

MASTER = "07" * 32
KEYS = Path(__file__).resolve().parents[2] / "tests/vectors/jwt/keys"


class Client:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(self, htm: str, htu: str, token: str, nonce: Optional[str] = None) -> str:
        claims: Dict[str, Any] = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time()), "ath": access_token_hash(token)}
        if nonce:
            claims["nonce"] = nonce
        return pyjwt.encode(claims, self.key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Any) -> Iterator[Tuple[str, AsyncTokenManager]]:
    atm = AsyncTokenManager(str(tmp_path / "dpop.db"), master_key=MASTER)
    atm.sync.create_signing_key("EdDSA")
    verifier = JwtVerifier(json.dumps(atm.sync.jwks()), ["EdDSA"])
    app = FastAPI()

    @app.get("/dpop")
    async def with_dpop(claims: Dict[str, Any] = Depends(require_jwt(atm, algorithms=["EdDSA"], dpop=True, scopes=["read"]))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.post("/nonce")
    async def with_nonce(claims: Dict[str, Any] = Depends(require_jwt(atm, algorithms=["EdDSA"], dpop=True, dpop_nonce=lambda: "n-7"))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.get("/verifier")
    async def with_verifier(claims: Dict[str, Any] = Depends(require_jwt(verifier, dpop=True, replay=atm))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.get("/bearer")
    async def bearer(request: Request, claims: Dict[str, Any] = Depends(require_jwt(verifier))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.get("/mtls")
    async def mtls(claims: Dict[str, Any] = Depends(require_jwt(atm, algorithms=["EdDSA"], client_cert="X-Client-Cert"))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", atm
    finally:
        server.should_exit = True
        thread.join(10)
        atm.sync.close()


def test_dpop_guard(served: Tuple[str, AsyncTokenManager]) -> None:
    base, atm = served
    client, thief = Client(), Client()
    pair = atm.sync.issue_token_pair("alice", scopes=["read"], dpop_jkt=client.jkt)
    token = pair["access_token"]
    url = base + "/dpop"
    with httpx.Client() as c:
        def get(path: str, headers: Dict[str, str]) -> Any:
            return c.get(base + path, headers=headers)

        r = get("/dpop", {"Authorization": f"DPoP {token}", "DPoP": client.proof("GET", url, token)})
        assert r.status_code == 200 and r.json() == {"sub": "alice"}
        proof = client.proof("GET", url, token)
        assert get("/dpop", {"Authorization": f"DPoP {token}", "DPoP": proof}).status_code == 200
        r = get("/dpop", {"Authorization": f"DPoP {token}", "DPoP": proof})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "DPOP_PROOF_REPLAYED"
        assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]
        # A stolen token with the thief's own key.
        r = get("/dpop", {"Authorization": f"DPoP {token}", "DPoP": thief.proof("GET", url, token)})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "DPOP_BINDING_MISMATCH"
        # A proof for another method or URL.
        r = get("/dpop", {"Authorization": f"DPoP {token}", "DPoP": client.proof("POST", url, token)})
        assert r.json()["detail"]["code"] == "DPOP_PROOF_INVALID"
        r = get("/dpop", {"Authorization": f"DPoP {token}", "DPoP": client.proof("GET", base + "/other", token)})
        assert r.json()["detail"]["code"] == "DPOP_PROOF_INVALID"
        # No proof, Bearer instead of DPoP, and the bound token at a Bearer route.
        r = get("/dpop", {"Authorization": f"DPoP {token}"})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "DPOP_PROOF_INVALID"
        r = get("/dpop", {"Authorization": f"Bearer {token}", "DPoP": client.proof("GET", url, token)})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "MISSING"
        assert r.headers["www-authenticate"].startswith("DPoP algs=")
        r = get("/bearer", {"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "DPOP_BINDING_MISMATCH"
        # A JwtVerifier with replay= behaves the same.
        vurl = base + "/verifier"
        ok = client.proof("GET", vurl, token)
        assert get("/verifier", {"Authorization": f"DPoP {token}", "DPoP": ok}).status_code == 200
        r = get("/verifier", {"Authorization": f"DPoP {token}", "DPoP": ok})
        assert r.json()["detail"]["code"] == "DPOP_PROOF_REPLAYED"
        r = get("/verifier", {"Authorization": f"DPoP {token}", "DPoP": thief.proof("GET", vurl, token)})
        assert r.json()["detail"]["code"] == "DPOP_BINDING_MISMATCH"
        # The nonce dance: refused with the nonce to use, then accepted.
        nurl = base + "/nonce"
        r = c.post(nurl, headers={"Authorization": f"DPoP {token}", "DPoP": client.proof("POST", nurl, token)})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "DPOP_NONCE_REQUIRED"
        assert r.headers["dpop-nonce"] == "n-7" and 'error="use_dpop_nonce"' in r.headers["www-authenticate"]
        r = c.post(nurl, headers={"Authorization": f"DPoP {token}", "DPoP": client.proof("POST", nurl, token, nonce=r.headers["dpop-nonce"])})
        assert r.status_code == 200


def test_certificate_bound_guard(served: Tuple[str, AsyncTokenManager]) -> None:
    base, atm = served
    pem = (KEYS / "rsa_cert.pem").read_text()
    other = (KEYS / "client_cert_b.pem").read_text()
    pair = atm.sync.issue_token_pair("svc", cert_thumbprint=cert_thumbprint(pem))
    token = pair["access_token"]
    escaped = lambda p: urllib.parse.quote(p, safe="")  # noqa: E731  (as nginx's $ssl_client_escaped_cert)
    with httpx.Client(base_url=base) as c:
        r = c.get("/mtls", headers={"Authorization": f"Bearer {token}", "X-Client-Cert": escaped(pem)})
        assert r.status_code == 200 and r.json() == {"sub": "svc"}
        for headers in [{}, {"X-Client-Cert": escaped(other)}, {"X-Client-Cert": "garbage"}]:
            r = c.get("/mtls", headers={"Authorization": f"Bearer {token}", **headers})
            assert r.status_code == 401 and r.json()["detail"]["code"] == "MTLS_BINDING_MISMATCH", headers
        # A route that reads no certificate refuses the bound token.
        r = c.get("/bearer", headers={"Authorization": f"Bearer {token}", "X-Client-Cert": escaped(pem)})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "MTLS_BINDING_MISMATCH"
