"""DPoP (RFC 9449) and certificate-bound tokens (RFC 8705) from Python: the
shared vectors (the RFC's example proof and attacks), proofs made by PyJWT,
a proof accepted once (in another process too), tokens and refresh-token
families bound to a key or a certificate refused without their proof."""

import json
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

import irontoken
from irontoken import TokenManager
from irontoken.jwt import access_token_hash, cert_thumbprint, jwk_thumbprint, token_binding, verify_dpop_proof

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests/vectors/dpop.json").read_text())
KEYS = ROOT / "tests/vectors/jwt/keys"
MASTER = "07" * 32
URL = "https://api.example.com/items"


def test_the_shared_vectors() -> None:
    assert access_token_hash(VECTORS["ath"]["access_token"]) == VECTORS["ath"]["ath"]
    for case in VECTORS["cases"]:
        kwargs: Dict[str, Any] = dict(case["check"])
        if case.get("error"):
            with pytest.raises(irontoken.IronTokenError) as e:
                verify_dpop_proof(case["proof"], now=case["now"], **kwargs)
            assert e.value.code == case["error"], case["name"]
            assert isinstance(e.value, irontoken.jwt.JWTError), case["name"]
        else:
            got = verify_dpop_proof(case["proof"], now=case["now"], **kwargs)
            if case.get("jkt"):
                assert got["jkt"] == case["jkt"], case["name"]


class Client:
    """A DPoP client whose proofs PyJWT signs."""

    def __init__(self, kind: str = "ES256") -> None:
        if kind == "EdDSA":
            self.key: Any = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key()))
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.alg = kind
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(self, htm: str, htu: str, access_token: Optional[str] = None, **extra: Any) -> str:
        claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time()), **extra}
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        return pyjwt.encode(claims, self.key, algorithm=self.alg, headers={"typ": "dpop+jwt", "jwk": self.jwk})


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_pyjwt_proofs_verify_once(tmp_path: Path, kind: str) -> None:
    db = str(tmp_path / "d.db")
    tm = TokenManager(db)
    client = Client(kind)
    proof = client.proof("POST", URL)
    got = tm.verify_dpop_proof(proof, htm="POST", htu=URL)
    assert got["jkt"] == client.jkt and got["alg"] == kind
    with pytest.raises(irontoken.DPoPProofReplayedError):
        tm.verify_dpop_proof(proof, htm="POST", htu=URL)
    # Another process on the store sees the proof as used too.
    other = client.proof("POST", URL)
    tm.verify_dpop_proof(other, htm="POST", htu=URL)
    child = (
        "import irontoken, sys\n"
        "try:\n"
        "    irontoken.TokenManager(sys.argv[1]).verify_dpop_proof(sys.argv[2], htm='POST', htu=sys.argv[3]); print('OK')\n"
        "except irontoken.IronTokenError as e:\n"
        "    print(e.code)\n"
    )
    out = subprocess.run([sys.executable, "-c", child, db, other, URL], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "DPOP_PROOF_REPLAYED"
    # Stateless verification (no replay manager) accepts it again: say so.
    assert verify_dpop_proof(other, htm="POST", htu=URL)["jkt"] == client.jkt


def test_attacks_on_fresh_proofs() -> None:
    tm = TokenManager(":memory:")
    client = Client()
    cases: List[Tuple[str, Dict[str, Any], Type[Exception]]] = [
        (client.proof("GET", URL), {"htm": "POST", "htu": URL}, irontoken.DPoPProofError),
        (client.proof("POST", URL + "/x"), {"htm": "POST", "htu": URL}, irontoken.DPoPProofError),
        (client.proof("POST", URL, iat=int(time.time()) - 600), {"htm": "POST", "htu": URL}, irontoken.DPoPProofError),
        (client.proof("POST", URL), {"htm": "POST", "htu": URL, "nonce": "n-1"}, irontoken.DPoPNonceRequiredError),
        (client.proof("POST", URL, nonce="n-0"), {"htm": "POST", "htu": URL, "nonce": "n-1"}, irontoken.DPoPNonceRequiredError),
        (client.proof("POST", URL, access_token="a.b.c"), {"htm": "POST", "htu": URL, "access_token": "x.y.z"}, irontoken.DPoPProofError),
        (client.proof("POST", URL), {"htm": "POST", "htu": URL, "jkt": Client().jkt}, irontoken.DPoPBindingError),
        (pyjwt.encode({"jti": "1", "htm": "POST", "htu": URL, "iat": int(time.time())}, "s" * 32, algorithm="HS256",
                      headers={"typ": "dpop+jwt", "jwk": client.jwk}), {"htm": "POST", "htu": URL}, irontoken.DPoPProofError),
    ]
    for proof, kwargs, error in cases:
        with pytest.raises(error):
            tm.verify_dpop_proof(proof, **kwargs)
    # With the right nonce it passes.
    tm.verify_dpop_proof(client.proof("POST", URL, nonce="n-1"), htm="POST", htu=URL, nonce="n-1")


def test_a_dpop_bound_token_and_family() -> None:
    tm = TokenManager(":memory:", master_key=MASTER)
    tm.create_signing_key("EdDSA")
    client = Client()
    pair = tm.issue_token_pair("alice", dpop_jkt=client.jkt)
    token = pair["access_token"]
    with pytest.raises(irontoken.DPoPBindingError):
        tm.verify_jwt(token, algorithms=["EdDSA"])
    proof = client.proof("GET", URL, access_token=token)
    claims = tm.verify_jwt(token, algorithms=["EdDSA"], dpop_proof=proof, htm="GET", htu=URL + "?page=2")
    assert claims["cnf"] == {"jkt": client.jkt}
    with pytest.raises(irontoken.DPoPProofReplayedError):
        tm.verify_jwt(token, algorithms=["EdDSA"], dpop_proof=proof, htm="GET", htu=URL)
    thief = Client()
    with pytest.raises(irontoken.DPoPBindingError):
        tm.verify_jwt(token, algorithms=["EdDSA"], dpop_proof=thief.proof("GET", URL, access_token=token), htm="GET", htu=URL)
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.verify_jwt(token, algorithms=["EdDSA"], dpop_proof=proof)
    # The refresh needs a proof of the family's key.
    with pytest.raises(irontoken.DPoPBindingError):
        tm.refresh_token_pair(pair["refresh_token"])
    token_url = "https://auth.example.com/token"
    with pytest.raises(irontoken.DPoPBindingError):
        tm.refresh_token_pair(pair["refresh_token"], dpop_proof=thief.proof("POST", token_url), htm="POST", htu=token_url)
    nxt = tm.refresh_token_pair(pair["refresh_token"], dpop_proof=client.proof("POST", token_url), htm="POST", htu=token_url)
    assert nxt["family_id"] == pair["family_id"]


def test_certificate_bound_tokens() -> None:
    pem = (KEYS / "rsa_cert.pem").read_bytes()
    other = (KEYS / "client_cert_b.pem").read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    thumb = cert_thumbprint(pem)
    assert cert_thumbprint(der) == thumb == cert_thumbprint(pem.decode())
    assert cert_thumbprint(urllib.parse.quote(pem.decode(), safe="")) == thumb
    with pytest.raises(irontoken.jwt.InvalidKeyMaterialError):
        cert_thumbprint(b"not a certificate")
    tm = TokenManager(":memory:", master_key=MASTER)
    tm.create_signing_key("ES256")
    pair = tm.issue_token_pair("svc", cert_thumbprint=thumb)
    assert tm.verify_jwt(pair["access_token"], algorithms=["ES256"], client_cert=pem)["cnf"] == {"x5t#S256": thumb}
    assert tm.verify_jwt(pair["access_token"], algorithms=["ES256"], client_cert=der)["sub"] == "svc"
    for cert in [None, other]:
        with pytest.raises(irontoken.CertificateBindingError):
            tm.verify_jwt(pair["access_token"], algorithms=["ES256"], client_cert=cert)
    with pytest.raises(irontoken.CertificateBindingError):
        tm.refresh_token_pair(pair["refresh_token"], client_cert=other)
    tm.refresh_token_pair(pair["refresh_token"], client_cert=pem)
    # The same rule for claims another verifier checked.
    claims = {"sub": "svc", "cnf": {"x5t#S256": thumb}}
    assert token_binding(claims, client_cert=der) is None
    for cert in [None, other, b"garbage"]:
        with pytest.raises(irontoken.CertificateBindingError):
            token_binding(claims, client_cert=cert)
    with pytest.raises(irontoken.DPoPBindingError):
        token_binding({"cnf": {"jkt": "k" * 43}})
    assert token_binding({"cnf": {"jkt": "k" * 43}}, proof_given=True) == "k" * 43
    assert token_binding({"sub": "x"}) is None
