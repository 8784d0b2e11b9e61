"""Writes tests/vectors/jwt/attacks.json: JWT cases that must verify or be
refused with a given error code. Tokens are built here byte by byte with the
Python standard library and the openssl command (not with irontoken), from
the test keys in keys/. Run from this folder: python3 generate.py
"""

import base64
import hashlib
import hmac
import json
import pathlib
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
KEYS = HERE / "keys"
NOW = 1_700_000_000
SECRET = b"irontoken-test-hmac-secret-of-32-bytes!!"  # 40 bytes


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj) -> str:
    if isinstance(obj, (bytes, str)):
        raw = obj.encode() if isinstance(obj, str) else obj
    else:
        raw = json.dumps(obj, separators=(",", ":")).encode()
    return b64u(raw)


def openssl_sign(key: str, data: bytes, *opts: str) -> bytes:
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(KEYS / key), *opts, f.name],
            check=True,
            capture_output=True,
        ).stdout


def ed25519_sign(key: str, data: bytes) -> bytes:
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(
            ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(KEYS / key), "-in", f.name],
            check=True,
            capture_output=True,
        ).stdout


def rsa_jwk(pem: str, kid: str) -> dict:
    out = subprocess.run(
        ["openssl", "rsa", "-pubin", "-in", str(KEYS / pem), "-noout", "-modulus"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    n = bytes.fromhex(out.strip().split("=", 1)[1])
    return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(n), "e": "AQAB"}


def token(header, claims, alg_sign) -> str:
    h = header if isinstance(header, str) else seg(header)
    p = claims if isinstance(claims, str) else seg(claims)
    signing_input = f"{h}.{p}".encode()
    return f"{h}.{p}.{b64u(alg_sign(signing_input))}"


def hs256(secret=SECRET):
    return lambda m: hmac.new(secret, m, hashlib.sha256).digest()


def hs512(m):
    return hmac.new(SECRET, m, hashlib.sha512).digest()


def rs256(key="rsa_private.pem"):
    return lambda m: openssl_sign(key, m)


def ps256(m):
    return openssl_sign("rsa_private.pem", m, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32")


def eddsa(m):
    return ed25519_sign("ed25519_private.pem", m)


GOOD = {"sub": "user-1", "iss": "https://issuer.test", "aud": "api", "iat": NOW - 10, "exp": NOW + 600}
NO_SUB = {k: v for k, v in GOOD.items() if k != "sub"}
NO_EXP = {k: v for k, v in GOOD.items() if k != "exp"}
HS_KEY = {"secret_b64u": b64u(SECRET)}
RSA_KEY = {"pem": "keys/rsa_public.pem"}
POLICY_HS = {"algorithms": ["HS256"], "issuer": "https://issuer.test", "audience": ["api"]}
POLICY_RS = {"algorithms": ["RS256", "PS256"], "issuer": "https://issuer.test", "audience": ["api"]}


def case(name, tok, key, policy, expect, claims=None, now=NOW):
    c = {"name": name, "token": tok, "key": key, "policy": policy, "now": now}
    if expect == "ok":
        c["expect"] = {"ok": True, "claims": claims if claims is not None else GOOD}
    else:
        c["expect"] = {"error": expect}
        if name in CLAIM_OF_CASE:
            c["expect"]["claim"] = CLAIM_OF_CASE[name]
    return c


# The claim a refusal is about (jose's `claim`, PyJWT's `.claim`), by case.
CLAIM_OF_CASE = {
    "expired": "exp",
    "expires exactly now": "exp",
    "not yet valid (nbf)": "nbf",
    "issued in the future (iat)": "iat",
    "exp missing": "exp",
    "sub missing where required": "sub",
    "required claim missing": "jti",
    "exp is a string": "exp",
    "iss is a number": "iss",
    "aud is an object": "aud",
    "wrong issuer": "iss",
    "wrong audience": "aud",
    "audience missing": "aud",
    "audience present but none expected": "aud",
    "wrong subject": "sub",
    "verify_aud off still checks exp": "exp",
    "strict_aud: a list is refused": "aud",
}



def main() -> None:
    jwks = {"jwks": {"keys": [rsa_jwk("attacker_rsa_public.pem", "k1"), rsa_jwk("rsa_public.pem", "k2")]}}
    rsa_pub_pem = (KEYS / "rsa_public.pem").read_bytes()
    hs = {"alg": "HS256", "typ": "JWT"}
    rs = {"alg": "RS256", "typ": "JWT"}
    cases = [
        # Tokens that must verify.
        case("HS256 valid", token(hs, GOOD, hs256()), HS_KEY, POLICY_HS, "ok"),
        case("RS256 valid (SPKI PEM)", token(rs, GOOD, rs256()), RSA_KEY, POLICY_RS, "ok"),
        case("RS256 valid (PKCS#1 PEM)", token(rs, GOOD, rs256()), {"pem": "keys/rsa_public_pkcs1.pem"}, POLICY_RS, "ok"),
        case("RS256 valid (certificate)", token(rs, GOOD, rs256()), {"pem": "keys/rsa_cert.pem"}, POLICY_RS, "ok"),
        case("PS256 valid", token({"alg": "PS256"}, GOOD, ps256), RSA_KEY, POLICY_RS, "ok"),
        case(
            "EdDSA valid",
            token({"alg": "EdDSA"}, GOOD, eddsa),
            {"pem": "keys/ed25519_public.pem"},
            {**POLICY_HS, "algorithms": ["EdDSA"]},
            "ok",
        ),
        case("expired but inside the leeway", token(hs, {**GOOD, "exp": NOW - 5}, hs256()), HS_KEY, {**POLICY_HS, "leeway": 10}, "ok", {**GOOD, "exp": NOW - 5}),
        case("aud as a list containing ours", token(hs, {**GOOD, "aud": ["other", "api"]}, hs256()), HS_KEY, POLICY_HS, "ok", {**GOOD, "aud": ["other", "api"]}),
        case("kid selects the right key of a JWKS", token({**rs, "kid": "k2"}, GOOD, rs256()), jwks, POLICY_RS, "ok"),
        case("jku and x5u headers are ignored, not followed", token({**rs, "jku": "https://attacker.test/jwks", "x5u": "https://attacker.test/c"}, GOOD, rs256()), RSA_KEY, POLICY_RS, "ok"),
        # alg: none and friends.
        case("alg none, empty signature", f"{seg({'alg': 'none', 'typ': 'JWT'})}.{seg(GOOD)}.", HS_KEY, POLICY_HS, "JWT_ALG_NOT_ALLOWED"),
        case("alg none with a signature", f"{seg({'alg': 'none'})}.{seg(GOOD)}.{b64u(b'x' * 32)}", HS_KEY, POLICY_HS, "JWT_ALG_NOT_ALLOWED"),
        case("alg None (case variant)", f"{seg({'alg': 'None'})}.{seg(GOOD)}.", HS_KEY, POLICY_HS, "JWT_ALG_NOT_ALLOWED"),
        case("alg missing", token({"typ": "JWT"}, GOOD, hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("alg not in the allowed list", token({"alg": "HS512"}, GOOD, hs512), HS_KEY, POLICY_HS, "JWT_ALG_NOT_ALLOWED"),
        # Algorithm confusion: HS256 signed with the RSA public key as the HMAC secret.
        case("RS/HS confusion (public key as HMAC secret)", token(hs, GOOD, hs256(rsa_pub_pem)), RSA_KEY, {**POLICY_RS, "algorithms": ["RS256", "HS256"]}, "JWT_ALG_NOT_ALLOWED"),
        case("RS256 token against an HMAC key", token(rs, GOOD, rs256()), HS_KEY, {**POLICY_HS, "algorithms": ["HS256", "RS256"]}, "JWT_ALG_NOT_ALLOWED"),
        # Signatures.
        case("tampered payload", token(hs, GOOD, hs256()).split(".")[0] + "." + seg({**GOOD, "sub": "admin"}) + "." + token(hs, GOOD, hs256()).split(".")[2], HS_KEY, POLICY_HS, "JWT_BAD_SIGNATURE"),
        case("tampered signature", token(hs, GOOD, hs256())[:-2] + ("AA" if not token(hs, GOOD, hs256()).endswith("AA") else "BA"), HS_KEY, POLICY_HS, "JWT_BAD_SIGNATURE"),
        case("wrong HMAC secret", token(hs, GOOD, hs256(b"another-secret-that-is-32-bytes-long!")), HS_KEY, POLICY_HS, "JWT_BAD_SIGNATURE"),
        case("embedded jwk header is not trusted", token({**rs, "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}, GOOD, rs256("attacker_rsa_private.pem")), RSA_KEY, POLICY_RS, "JWT_BAD_SIGNATURE"),
        case("unknown kid does not fall back", token({**rs, "kid": "nope"}, GOOD, rs256()), jwks, POLICY_RS, "JWT_KEY_NOT_FOUND"),
        case("no kid with several keys", token(rs, GOOD, rs256()), jwks, POLICY_RS, "JWT_KEY_NOT_FOUND"),
        # Header policy.
        case("crit header", token({**hs, "crit": ["exp"], "exp": 1}, GOOD, hs256()), HS_KEY, POLICY_HS, "JWT_UNSUPPORTED_HEADER"),
        case("b64 false", token({**hs, "b64": False, "crit": ["b64"]}, GOOD, hs256()), HS_KEY, POLICY_HS, "JWT_UNSUPPORTED_HEADER"),
        case("duplicate alg in header", token(seg(b'{"alg":"HS256","alg":"HS256"}'), GOOD, hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("duplicate sub in claims", token(hs, seg(b'{"sub":"user-1","sub":"admin","exp":1700000600,"iss":"https://issuer.test","aud":"api"}'), hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("nested JWT payload (cty JWT) is not unwrapped", token({**hs, "cty": "JWT"}, seg(token(hs, GOOD, hs256())), hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        # Shape.
        case("two parts", ".".join(token(hs, GOOD, hs256()).split(".")[:2]), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("four parts", token(hs, GOOD, hs256()) + ".x", HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("padded base64", token(hs, GOOD, hs256()) + "==", HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("not base64", "%%%.%%%.%%%", HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("header not JSON", token(seg(b"not json"), GOOD, hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("claims not an object", token(hs, seg(b"[1,2]"), hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("empty string", "", HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        case("over 8 KiB", token(hs, {**GOOD, "pad": "x" * 9000}, hs256()), HS_KEY, POLICY_HS, "JWT_MALFORMED"),
        # Time.
        case("expired", token(hs, {**GOOD, "exp": NOW - 1}, hs256()), HS_KEY, POLICY_HS, "JWT_EXPIRED"),
        case("expires exactly now", token(hs, {**GOOD, "exp": NOW}, hs256()), HS_KEY, POLICY_HS, "JWT_EXPIRED"),
        case("not yet valid (nbf)", token(hs, {**GOOD, "nbf": NOW + 60}, hs256()), HS_KEY, POLICY_HS, "JWT_NOT_YET_VALID"),
        case("issued in the future (iat)", token(hs, {**GOOD, "iat": NOW + 60}, hs256()), HS_KEY, POLICY_HS, "JWT_NOT_YET_VALID"),
        # Claims.
        case("exp missing", token(hs, {k: v for k, v in GOOD.items() if k != "exp"}, hs256()), HS_KEY, POLICY_HS, "JWT_MISSING_CLAIM"),
        case("sub missing: not required by default (as in PyJWT and jose)", token(hs, NO_SUB, hs256()), HS_KEY, POLICY_HS, "ok", claims=NO_SUB),
        case("sub missing where required", token(hs, NO_SUB, hs256()), HS_KEY, {**POLICY_HS, "require_sub": True}, "JWT_MISSING_CLAIM"),
        case("exp missing, exp not required", token(hs, NO_EXP, hs256()), HS_KEY, {**POLICY_HS, "require_exp": False}, "ok", claims=NO_EXP),
        case("required claim missing", token(hs, GOOD, hs256()), HS_KEY, {**POLICY_HS, "required": ["jti"]}, "JWT_MISSING_CLAIM"),
        case("exp is a string", token(hs, {**GOOD, "exp": str(NOW + 600)}, hs256()), HS_KEY, POLICY_HS, "JWT_INVALID_CLAIM"),
        case("iss is a number", token(hs, {**GOOD, "iss": 7}, hs256()), HS_KEY, POLICY_HS, "JWT_INVALID_CLAIM"),
        case("aud is an object", token(hs, {**GOOD, "aud": {"a": 1}}, hs256()), HS_KEY, POLICY_HS, "JWT_INVALID_CLAIM"),
        case("wrong issuer", token(hs, {**GOOD, "iss": "https://evil.test"}, hs256()), HS_KEY, POLICY_HS, "JWT_INVALID_ISSUER"),
        case("wrong audience", token(hs, {**GOOD, "aud": "other"}, hs256()), HS_KEY, POLICY_HS, "JWT_INVALID_AUDIENCE"),
        case("audience missing", token(hs, {k: v for k, v in GOOD.items() if k != "aud"}, hs256()), HS_KEY, POLICY_HS, "JWT_MISSING_CLAIM"),
        case("audience present but none expected", token(hs, GOOD, hs256()), HS_KEY, {"algorithms": ["HS256"]}, "JWT_INVALID_AUDIENCE"),
        case("wrong subject", token(hs, GOOD, hs256()), HS_KEY, {**POLICY_HS, "subject": "user-2"}, "JWT_INVALID_SUBJECT"),
        # PyJWT's verify_* switches turn one check off, and nothing else.
        case("verify_aud off: another audience", token(hs, {**GOOD, "aud": "other"}, hs256()), HS_KEY, {**POLICY_HS, "verify_aud": False}, "ok", claims={**GOOD, "aud": "other"}),
        case("verify_aud off: an aud of any type", token(hs, {**GOOD, "aud": 7}, hs256()), HS_KEY, {"algorithms": ["HS256"], "verify_aud": False}, "ok", claims={**GOOD, "aud": 7}),
        case("verify_aud off still checks the signature", token(hs, GOOD, hs256(b"another-secret-of-32-bytes-long!!")), HS_KEY, {**POLICY_HS, "verify_aud": False}, "JWT_BAD_SIGNATURE"),
        case("verify_aud off still checks exp", token(hs, {**GOOD, "exp": NOW - 1}, hs256()), HS_KEY, {**POLICY_HS, "verify_aud": False}, "JWT_EXPIRED"),
        case("verify_iss off: another issuer", token(hs, {**GOOD, "iss": "https://other.test"}, hs256()), HS_KEY, {**POLICY_HS, "verify_iss": False}, "ok", claims={**GOOD, "iss": "https://other.test"}),
        case("verify_sub off: another subject", token(hs, GOOD, hs256()), HS_KEY, {**POLICY_HS, "subject": "user-2", "verify_sub": False}, "ok"),
        case("strict_aud: a list is refused", token(hs, {**GOOD, "aud": ["api"]}, hs256()), HS_KEY, {**POLICY_HS, "strict_aud": True}, "JWT_INVALID_AUDIENCE"),
        case("strict_aud: the one audience as a string", token(hs, GOOD, hs256()), HS_KEY, {**POLICY_HS, "strict_aud": True}, "ok"),
        # Keys.
        case("RSA key under 2048 bits", token(rs, GOOD, rs256("weak_rsa1024_private.pem")), {"pem": "keys/weak_rsa1024_public.pem"}, POLICY_RS, "INVALID_KEY_MATERIAL"),
        case("HMAC secret under 32 bytes", token(hs, GOOD, hs256(b"short")), {"secret_b64u": b64u(b"short")}, POLICY_HS, "INVALID_KEY_MATERIAL"),
        case("private key where a public key belongs", token(rs, GOOD, rs256()), {"pem": "keys/rsa_private.pem"}, POLICY_RS, "INVALID_KEY_MATERIAL"),
    ]
    doc = {
        "description": "JWT verification vectors: each case gives a token, a key (pem: path from tests/vectors/jwt; "
        "secret_b64u: HMAC secret; jwk / jwks: JSON), a policy (defaults: exp required, "
        "leeway 0, 8 KiB limit), the time 'now', and the expected result: ok with the claims, or an error code. "
        "An error while loading the key counts as the case's result. Generated by generate.py (stdlib + openssl).",
        "cases": cases,
    }
    (HERE / "attacks.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
