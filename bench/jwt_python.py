"""Side-by-side: JWT verify and sign from Python, irontoken vs PyJWT, keys
parsed once, one process. Run: `make bench-compare` (after `make build`)."""

from __future__ import annotations

import json
import pathlib
import time

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

from irontoken import jwt

from _measure import median_us as measure

KEYS = pathlib.Path(__file__).resolve().parents[1] / "tests" / "vectors" / "jwt" / "keys"
NOW = int(time.time())
SECRET = "irontoken-test-hmac-secret-of-32-bytes!!"
CLAIMS = {"sub": "user-1", "iss": "https://issuer.test", "exp": NOW + 3600, "iat": NOW, "scope": "read write"}




def main() -> None:
    rows = []
    for alg, priv, pub in [
        ("HS256", SECRET, SECRET),
        ("RS256", (KEYS / "rsa_private.pem").read_text(), (KEYS / "rsa_public.pem").read_text()),
        ("ES256", (KEYS / "ec_p256_private.pem").read_text(), (KEYS / "ec_p256_public.pem").read_text()),
        ("EdDSA", (KEYS / "ed25519_private.pem").read_text(), (KEYS / "ed25519_public.pem").read_text()),
    ]:
        token = jwt.encode(CLAIMS, priv, alg)
        verifier = jwt.JwtVerifier(pub, [alg])
        # PyJWT with its key objects parsed once, the fastest way to use it.
        if alg == "HS256":
            py_priv, py_pub = priv, pub
        else:
            py_priv = serialization.load_pem_private_key(priv.encode(), None)
            py_pub = serialization.load_pem_public_key(pub.encode())
        n = 20_000 if alg == "HS256" else 4_000
        ours_v = measure(lambda: verifier.decode(token), n)
        theirs_v = measure(lambda: pyjwt.decode(token, py_pub, algorithms=[alg]), n)
        signer = jwt.JwtSigner(priv, alg)
        ours_s = measure(lambda: signer.sign(CLAIMS), n // 4)
        theirs_s = measure(lambda: pyjwt.encode(CLAIMS, py_priv, algorithm=alg), n // 4)
        rows.append((alg, ours_v, theirs_v, ours_s, theirs_s))
    print("JWT from Python, median µs per call (keys parsed once: JwtVerifier / JwtSigner, PyJWT key objects)")
    print(f"  {'alg':<6} {'verify irontoken':>17} {'verify PyJWT':>13} {'sign irontoken':>15} {'sign PyJWT':>11}")
    for alg, a, b, c, d in rows:
        print(f"  {alg:<6} {a:17.2f} {b:13.2f} {c:15.2f} {d:11.2f}")
    one_shot()


def one_shot() -> None:
    """decode(token, key_bytes) as a PyJWT user writes it: the key (PEM bytes,
    read with open(..., "rb")) parsed on every call by both libraries; and a
    PyJWK parsed once (the PyJWKClient path once its set is cached)."""
    rows = []
    for alg, priv, pub in [
        ("RS256", "rsa_private.pem", "rsa_public.pem"),
        ("ES256", "ec_p256_private.pem", "ec_p256_public.pem"),
        ("EdDSA", "ed25519_private.pem", "ed25519_public.pem"),
    ]:
        pub_bytes = (KEYS / pub).read_bytes()
        token = jwt.encode(CLAIMS, (KEYS / priv).read_bytes(), alg)
        ours = measure(lambda: jwt.decode(token, pub_bytes, algorithms=[alg]), 4_000)
        theirs = measure(lambda: pyjwt.decode(token, pub_bytes, algorithms=[alg]), 4_000)
        py_key = serialization.load_pem_public_key(pub_bytes)
        jwk_dict = json.loads(pyjwt.get_algorithm_by_name(alg).to_jwk(py_key))
        ours_jwk = jwt.PyJWK(jwk_dict)
        theirs_jwk = pyjwt.PyJWK(jwk_dict, algorithm=alg)
        ours_k = measure(lambda: jwt.decode(token, ours_jwk, algorithms=[alg]), 4_000)
        theirs_k = measure(lambda: pyjwt.decode(token, theirs_jwk.key, algorithms=[alg]), 4_000)
        rows.append((alg, ours, theirs, ours_k, theirs_k))
    print("One-shot decode from Python, median µs per call")
    print(f"  {'alg':<6} {'PEM bytes irontoken':>20} {'PEM bytes PyJWT':>16} {'PyJWK irontoken':>16} {'PyJWK PyJWT':>12}")
    for alg, a, b, c, d in rows:
        print(f"  {alg:<6} {a:20.2f} {b:16.2f} {c:16.2f} {d:12.2f}")


if __name__ == "__main__":
    main()
