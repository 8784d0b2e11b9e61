"""Writes dpop.json: RFC 9449's example proof and attacks on it, shared by
the Rust, Python, Node and C suites. Run with PyJWT and cryptography
installed (the dev venv has both): python tests/vectors/dpop_generate.py"""

import base64
import hashlib
import json
import pathlib

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = pathlib.Path(__file__).parent
# RFC 9449 §4.1 (Figure 3): a proof for POST https://server.example.com/token.
RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
    ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
IAT = 1562262616
HTU = "https://server.example.com/token"
RFC_JWK = {"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"}


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()


h, p, s = RFC_PROOF.split(".")
claims = {"jti": "-BwC3ESc6acc2lTc", "htm": "POST", "htu": HTU, "iat": IAT}
key = ec.generate_private_key(ec.SECP256R1())
pub = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
priv = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
own = lambda c, **hdr: jwt.encode(c, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": pub, **hdr})  # noqa: E731
ok = {"htm": "POST", "htu": HTU}
cases = [
    {"name": "the RFC 9449 example", "proof": RFC_PROOF, "now": IAT, "check": ok,
     "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
    {"name": "htu normalized: case, default port, query", "proof": RFC_PROOF, "now": IAT + 10,
     "check": {"htm": "POST", "htu": "https://SERVER.example.com:443/token?x=1#f"}, "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
    {"name": "wrong method", "proof": RFC_PROOF, "now": IAT, "check": {"htm": "GET", "htu": HTU}, "error": "DPOP_PROOF_INVALID"},
    {"name": "wrong URL", "proof": RFC_PROOF, "now": IAT, "check": {"htm": "POST", "htu": "https://server.example.com/other"}, "error": "DPOP_PROOF_INVALID"},
    {"name": "wrong host", "proof": RFC_PROOF, "now": IAT, "check": {"htm": "POST", "htu": "https://evil.example.com/token"}, "error": "DPOP_PROOF_INVALID"},
    {"name": "too old", "proof": RFC_PROOF, "now": IAT + 301, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "too old for a shorter max age", "proof": RFC_PROOF, "now": IAT + 61, "check": {**ok, "max_age_seconds": 60}, "error": "DPOP_PROOF_INVALID"},
    {"name": "from the future", "proof": RFC_PROOF, "now": IAT - 6, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "nonce required", "proof": RFC_PROOF, "now": IAT, "check": {**ok, "nonce": "eyJ7S_zG.eyJH0-Z.HX4w-7v"}, "error": "DPOP_NONCE_REQUIRED"},
    {"name": "no ath for the access token", "proof": RFC_PROOF, "now": IAT, "check": {**ok, "access_token": "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"}, "error": "DPOP_PROOF_INVALID"},
    {"name": "another key than cnf.jkt", "proof": RFC_PROOF, "now": IAT, "check": {**ok, "jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}, "error": "DPOP_BINDING_MISMATCH"},
    {"name": "alg none", "proof": b64({"typ": "dpop+jwt", "alg": "none", "jwk": RFC_JWK}) + "." + p + ".", "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "HS256 with a secret", "proof": jwt.encode(claims, "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": RFC_JWK}), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "typ JWT", "proof": own(claims, typ="JWT"), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "no jwk", "proof": jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt"}), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "a private key in jwk", "proof": jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": priv}), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "signed by another key than jwk", "proof": jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": RFC_JWK}), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "tampered payload", "proof": h + "." + b64({**claims, "htm": "GET"}) + "." + s, "now": IAT, "check": {"htm": "GET", "htu": HTU}, "error": "DPOP_PROOF_INVALID"},
    {"name": "no jti", "proof": own({k: v for k, v in claims.items() if k != "jti"}), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "no iat", "proof": own({k: v for k, v in claims.items() if k != "iat"}), "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
    {"name": "a fresh proof of another key", "proof": own({**claims, "ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}), "now": IAT,
     "check": {**ok, "access_token": "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"}, "jkt": None},
    {"name": "garbage", "proof": "not a proof", "now": IAT, "check": ok, "error": "DPOP_PROOF_INVALID"},
]
out = {
    "description": "DPoP proofs (RFC 9449): the RFC's example proof (section 4.1), its ath example (section 7.1) and attacks. "
    "Each case verifies `proof` against `check` at `now` (no replay check): `jkt` is the expected thumbprint "
    "(null: any), `error` the expected code. Generated by dpop_generate.py.",
    "client_key": {
        "private_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "jwk": pub,
        "jkt": None,
    },
    "ath": {"access_token": "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", "ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"},
    "cases": cases,
}
# RFC 7638 thumbprint of the client key, for binding tokens in tests.
canon = json.dumps({k: pub[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
out["client_key"]["jkt"] = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
(HERE / "dpop.json").write_text(json.dumps(out, indent=2) + "\n")
print(f"{len(cases)} cases")
