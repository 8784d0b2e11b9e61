"""Side-by-side: checking a DPoP proof (RFC 9449) from Python — irontoken
(stateless, and with the jti claimed on SQLite), against the same checks
written by hand over PyJWT (typ, alg, jwk, signature, htm, htu, iat, ath,
the RFC 7638 thumbprint; no replay check); and the refresh-token calls
(issue a pair, refresh with rotation and reuse detection). ES256 proofs.
Run: `make bench-compare`."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
import uuid
from typing import Any, Dict

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec

import irontoken
from irontoken.jwt import access_token_hash, verify_dpop_proof

from _measure import median_us

URL = "https://api.example.com/items"


def pyjwt_dpop(proof: str, htm: str, htu: str, access_token: str, now: int) -> Dict[str, Any]:
    """What an application writes with PyJWT for the same checks."""
    header = pyjwt.get_unverified_header(proof)
    if header.get("typ") != "dpop+jwt" or header.get("alg") not in ("ES256", "EdDSA", "RS256", "PS256"):
        raise ValueError("typ / alg")
    jwk = header["jwk"]
    if any(k in jwk for k in ("d", "p", "q", "k")):
        raise ValueError("private jwk")
    key = pyjwt.PyJWK(jwk, header["alg"])
    claims = pyjwt.decode(proof, key.key, algorithms=[header["alg"]], options={"verify_exp": False, "verify_iat": False})
    if claims["htm"] != htm or claims["htu"].split("?")[0].lower() != htu.split("?")[0].lower():
        raise ValueError("htm / htu")
    if not now - 300 <= claims["iat"] <= now + 5:
        raise ValueError("iat")
    ath = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()
    if claims.get("ath") != ath:
        raise ValueError("ath")
    canon = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    jkt = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
    return {"jkt": jkt, **claims}


def main() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    token = "a.b.c"
    now = int(time.time())

    def proof() -> str:
        claims = {"jti": str(uuid.uuid4()), "htm": "GET", "htu": URL, "iat": now, "ath": access_token_hash(token)}
        return pyjwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": jwk})

    one = proof()
    assert verify_dpop_proof(one, htm="GET", htu=URL, access_token=token, now=now)["jkt"] == pyjwt_dpop(one, "GET", URL, token, now)["jkt"]
    ours = median_us(lambda: verify_dpop_proof(one, htm="GET", htu=URL, access_token=token, now=now), 20_000)
    theirs = median_us(lambda: pyjwt_dpop(one, "GET", URL, token, now), 20_000)
    with tempfile.TemporaryDirectory() as d:
        tm = irontoken.TokenManager(f"{d}/dpop.db", master_key="07" * 32)
        tm.create_signing_key("EdDSA")
        fresh = iter([proof() for _ in range(4_000)])
        once = median_us(lambda: tm.verify_dpop_proof(next(fresh), htm="GET", htu=URL, access_token=token), 4_000)
        issued = median_us(lambda: tm.issue_token_pair("alice", scopes=["read"]), 2_000)
        state = {"r": tm.issue_token_pair("bob")["refresh_token"]}

        def refresh() -> None:
            state["r"] = tm.refresh_token_pair(state["r"])["refresh_token"]

        refreshed = median_us(refresh, 2_000)
    print("DPoP proofs and token pairs from Python, ES256 proofs, median µs per call (ratio = other ÷ irontoken stateless)")
    rows = [
        ("irontoken verify_dpop_proof (stateless)", ours),
        ("hand-written over PyJWT (no replay check)", theirs),
        ("irontoken tm.verify_dpop_proof (jti claimed, SQLite)", once),
        ("irontoken issue_token_pair (EdDSA access token)", issued),
        ("irontoken refresh_token_pair (rotation + reuse check)", refreshed),
    ]
    for name, v in rows:
        print(f"  {name:<54} {v:9.2f} µs   {v / ours:6.2f}×")


if __name__ == "__main__":
    main()
