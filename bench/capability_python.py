"""Side-by-side: authorizing a tool call under a 3-block capability token
(mint + two attenuations) from Python — irontoken's `authorize` (signature
cache, revocation and key state read from SQLite, every block's checks run)
against verifying a JWT with the same claims (irontoken, PyJWT; EdDSA) and
against biscuit-python verifying the same token alone (signatures and
checks, no revocation or budget). Run: `make bench-compare`."""

from __future__ import annotations

import datetime
import pathlib
import tempfile
import time

import biscuit_auth
import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

import irontoken
from irontoken import jwt

from _measure import median_us

KEYS = pathlib.Path(__file__).resolve().parents[1] / "tests" / "vectors" / "jwt" / "keys"


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tm = irontoken.TokenManager(f"{d}/caps.db", master_key="07" * 32)
        key_id = tm.create_key("acme").record.id
        token = tm.mint_capability(key_id, tools=["search", "fetch", "read"], ttl_seconds=3600, ceiling_micros=10**12)
        token = irontoken.attenuate(token, tools=["search", "fetch"], ttl_seconds=1800)
        token = irontoken.attenuate(token, tools=["search"], ceiling_micros=10**11)
        assert tm.authorize(token, tool="search").allowed
        ours = median_us(lambda: tm.authorize(token, tool="search"), 20_000)
        charged = median_us(lambda: tm.authorize(token, tool="search", cost_micros=1), 4_000)
        # First sight of a token: each one a fresh attenuation (its three
        # signatures verified, its blocks read), authorized once.
        fresh = iter([irontoken.attenuate(token, ttl_seconds=600) for _ in range(2_000)])
        cold = median_us(lambda: tm.authorize(next(fresh), tool="search"), 2_000)

        now = int(time.time())
        claims = {"sub": key_id, "tools": ["search"], "exp": now + 1800, "ceiling": 10**11}
        priv = (KEYS / "ed25519_private.pem").read_text()
        pub = (KEYS / "ed25519_public.pem").read_text()
        jwt_token = jwt.encode(claims, priv, "EdDSA")
        verifier = jwt.JwtVerifier(pub, ["EdDSA"])
        py_pub = serialization.load_pem_public_key(pub.encode())

        def jwt_ours() -> None:
            c = verifier.decode(jwt_token)
            assert "search" in c["tools"]

        def jwt_pyjwt() -> None:
            c = pyjwt.decode(jwt_token, py_pub, algorithms=["EdDSA"])
            assert "search" in c["tools"]

        ours_jwt = median_us(jwt_ours, 20_000)
        theirs_jwt = median_us(jwt_pyjwt, 20_000)

        root = biscuit_auth.PublicKey(tm.capability_public_key())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        # The run limits irontoken uses (1000 facts, 100 iterations, 200 ms).
        limits = biscuit_auth.AuthorizerBuilder("").limits()
        limits.max_time = datetime.timedelta(milliseconds=200)

        def biscuit_alone() -> None:
            b = biscuit_auth.Biscuit.from_base64(token, root)
            builder = biscuit_auth.AuthorizerBuilder(f'tool("search"); cost(0); time({stamp}); allow if true;')
            builder.set_limits(limits)
            builder.build(b).authorize()

        theirs_biscuit = median_us(biscuit_alone, 4_000)
    print("Capability tokens from Python, 3-block token, median µs per call (ratio = other ÷ irontoken authorize)")
    rows = [
        ("irontoken authorize (cost 0)", ours),
        ("irontoken authorize, charging a ceiling", charged),
        ("irontoken authorize, first sight (4 blocks)", cold),
        ("biscuit-python verify + authorize alone", theirs_biscuit),
        ("JWT same claims, irontoken JwtVerifier (EdDSA)", ours_jwt),
        ("JWT same claims, PyJWT (EdDSA)", theirs_jwt),
    ]
    for name, v in rows:
        print(f"  {name:<48} {v:9.2f} µs   {v / ours:6.2f}×")


if __name__ == "__main__":
    main()
