"""Writes tests/vectors/jwt/keys.json: key material in every form irontoken
must recognise (PEM with leading text, BOM or CRLF; DER; JWK; JWKS; OpenSSH
public keys; HMAC secrets), each as bytes and, when it is UTF-8, as text, with
what verifying or signing with it must give, and the RS/HS confusion attempts
(an HS256 token MACed with the public material's exact bytes).

Everything is built here with the Python standard library and the openssl
command from the test keys in keys/ (not with irontoken). Run from this
folder: python3 generate_keys.py
"""

import base64
import hashlib
import hmac
import json
import pathlib
import struct
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
KEYS = HERE / "keys"
NOW = 1_700_000_000
CLAIMS = {"sub": "user-1", "exp": NOW + 600}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def openssl(*args: str, data: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def sign_with(private: str, alg: str, message: bytes) -> bytes:
    with tempfile.NamedTemporaryFile() as f:
        f.write(message)
        f.flush()
        key = str(KEYS / private)
        if alg == "EdDSA":
            return openssl("pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", f.name)
        der = openssl("dgst", "-sha256", "-sign", key, f.name)
        if alg == "ES256":
            return ecdsa_der_to_raw(der, 32)
        return der


def ecdsa_der_to_raw(der: bytes, size: int) -> bytes:
    # SEQUENCE { INTEGER r, INTEGER s } -> r || s, each left-padded to size.
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2 : i + 2 + n].lstrip(b"\x00")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


def token(alg: str, sign) -> str:
    h = seg({"alg": alg, "typ": "JWT"})
    p = seg(CLAIMS)
    return f"{h}.{p}.{b64u(sign(f'{h}.{p}'.encode()))}"


def hs(secret: bytes, alg: str = "HS256"):
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return lambda m: hmac.new(secret, m, digest).digest()


def ssh_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def ssh_mpint(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "big")  # leading 0 keeps it positive
    return ssh_string(raw)


def rsa_numbers(pem: str):
    text = openssl("rsa", "-pubin", "-in", str(KEYS / pem), "-noout", "-modulus").decode()
    n = int(text.strip().split("=", 1)[1], 16)
    return n, 65537


def spki_der(pem: str) -> bytes:
    return openssl("pkey", "-pubin", "-in", str(KEYS / pem), "-outform", "DER")


def ed25519_raw(pem: str) -> bytes:
    return spki_der(pem)[-32:]


def ec_point(pem: str) -> bytes:
    return spki_der(pem)[-65:]


def pem_of(der: bytes, label: str, eol: str = "\n") -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (eol.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + eol).encode()


def main() -> None:
    cases = []

    def verify_case(name, material: bytes, algorithms, tok, expect, kind=None):
        cases.append(
            {
                "name": name,
                "use": "verify",
                "key_hex": material.hex(),
                "text": is_text(material),
                "kind": kind,
                "algorithms": algorithms,
                "token": tok,
                "expect": expect,
            }
        )

    def sign_case(name, material: bytes, alg, verify_pem, expect, kind=None):
        cases.append(
            {
                "name": name,
                "use": "sign",
                "key_hex": material.hex(),
                "text": is_text(material),
                "kind": kind,
                "alg": alg,
                "verify_pem": verify_pem,
                "expect": expect,
            }
        )

    rsa_pub = (KEYS / "rsa_public.pem").read_bytes()
    n, e = rsa_numbers("rsa_public.pem")
    rsa_jwk = {"kty": "RSA", "n": b64u(n.to_bytes(256, "big")), "e": b64u(e.to_bytes(3, "big"))}
    ed_raw = ed25519_raw("ed25519_public.pem")
    ec_q = ec_point("ec_p256_public.pem")
    ec_jwk = {"kty": "EC", "crv": "P-256", "x": b64u(ec_q[1:33]), "y": b64u(ec_q[33:])}
    ed_jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(ed_raw)}

    rsa_forms = {
        "RSA SPKI PEM": (rsa_pub, "spki"),
        "RSA SPKI PEM with CRLF": (rsa_pub.replace(b"\n", b"\r\n"), "spki"),
        "RSA SPKI PEM with a BOM": (b"\xef\xbb\xbf" + rsa_pub, "spki"),
        "RSA SPKI PEM after openssl Bag Attributes": (
            b"Bag Attributes\n    localKeyID: 01 00 00 00 \n    friendlyName: gateway\nsubject=/CN=test\n" + rsa_pub,
            "spki",
        ),
        "RSA PKCS#1 PEM": ((KEYS / "rsa_public_pkcs1.pem").read_bytes(), "pkcs1-public"),
        "RSA certificate PEM": ((KEYS / "rsa_cert.pem").read_bytes(), "certificate"),
        "RSA SPKI DER": (spki_der("rsa_public.pem"), "spki"),
        "RSA PKCS#1 DER": (openssl("rsa", "-pubin", "-in", str(KEYS / "rsa_public.pem"), "-RSAPublicKey_out", "-outform", "DER"), "pkcs1-public"),
        "RSA certificate DER": (openssl("x509", "-in", str(KEYS / "rsa_cert.pem"), "-outform", "DER"), "certificate"),
        "RSA JWK": (json.dumps(rsa_jwk).encode(), "jwk"),
        "RSA JWKS": (json.dumps({"keys": [{**rsa_jwk, "kid": "r1"}]}).encode(), "jwks"),
        "RSA JWKS with a BOM": (b"\xef\xbb\xbf" + json.dumps({"keys": [rsa_jwk]}).encode(), "jwks"),
        "RSA OpenSSH public key": (
            b"ssh-rsa "
            + base64.b64encode(ssh_string(b"ssh-rsa") + ssh_mpint(e) + ssh_mpint(n))
            + b" gateway@example\n",
            "ssh",
        ),
    }
    rs256 = token("RS256", lambda m: sign_with("rsa_private.pem", "RS256", m))
    for name, (material, kind) in rsa_forms.items():
        verify_case(f"{name}: RS256 verifies", material, ["RS256"], rs256, "ok", kind)
        confusion = token("HS256", hs(material))
        verify_case(f"{name}: HS256 token MACed with it is refused (HS256 only)", material, ["HS256"], confusion, "INVALID_KEY_MATERIAL", kind)
        if kind != "jwks":
            verify_case(f"{name}: mixed RS256+HS256 allow-list is refused", material, ["RS256", "HS256"], confusion, "JWT_ALG_NOT_ALLOWED", kind)
        else:
            verify_case(f"{name}: HS256 token against an RSA-only JWKS", material, ["RS256", "HS256"], confusion, "JWT_ALG_NOT_ALLOWED", kind)

    es256 = token("ES256", lambda m: sign_with("ec_p256_private.pem", "ES256", m))
    ec_pub = (KEYS / "ec_p256_public.pem").read_bytes()
    ec_forms = {
        "EC P-256 SPKI PEM": (ec_pub, "spki"),
        "EC P-256 SPKI DER": (spki_der("ec_p256_public.pem"), "spki"),
        "EC P-256 JWK": (json.dumps(ec_jwk).encode(), "jwk"),
        "EC P-256 OpenSSH public key": (
            b"ecdsa-sha2-nistp256 "
            + base64.b64encode(ssh_string(b"ecdsa-sha2-nistp256") + ssh_string(b"nistp256") + ssh_string(ec_q)),
            "ssh",
        ),
    }
    for name, (material, kind) in ec_forms.items():
        verify_case(f"{name}: ES256 verifies", material, ["ES256"], es256, "ok", kind)
        verify_case(f"{name}: HS256 token MACed with it is refused", material, ["HS256"], token("HS256", hs(material)), "INVALID_KEY_MATERIAL", kind)

    eddsa = token("EdDSA", lambda m: sign_with("ed25519_private.pem", "EdDSA", m))
    ed_pub = (KEYS / "ed25519_public.pem").read_bytes()
    ed_forms = {
        "Ed25519 SPKI PEM": (ed_pub, "spki"),
        "Ed25519 SPKI DER": (spki_der("ed25519_public.pem"), "spki"),
        "Ed25519 JWK": (json.dumps(ed_jwk).encode(), "jwk"),
        "Ed25519 OpenSSH public key": (
            b"ssh-ed25519 " + base64.b64encode(ssh_string(b"ssh-ed25519") + ssh_string(ed_raw)) + b" me@host",
            "ssh",
        ),
    }
    for name, (material, kind) in ed_forms.items():
        verify_case(f"{name}: EdDSA verifies", material, ["EdDSA"], eddsa, "ok", kind)
        verify_case(f"{name}: HS256 token MACed with it is refused", material, ["HS256"], token("HS256", hs(material)), "INVALID_KEY_MATERIAL", kind)

    # Small-order Ed25519 public keys (identity, order 2, order 4, order 8).
    spki_prefix = spki_der("ed25519_public.pem")[:-32]
    small = {
        "identity": bytes([1] + [0] * 31),
        "order 2": bytes([0xEC] + [0xFF] * 30 + [0x7F]),
        "order 4": bytes(32),
        "order 8": bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    }
    for label, point in small.items():
        verify_case(f"Ed25519 JWK of small order ({label}) is refused", json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64u(point)}).encode(), ["EdDSA"], eddsa, "INVALID_KEY_MATERIAL", "jwk")
        verify_case(f"Ed25519 SPKI DER of small order ({label}) is refused", spki_prefix + point, ["EdDSA"], eddsa, "INVALID_KEY_MATERIAL", "spki")

    # A JWKS keeps its usable keys and skips the others (enc use, unknown
    # kty/crv); with none usable it is refused.
    mixed_set = {
        "keys": [
            {**rsa_jwk, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64u(bytes(range(32)))},
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
            {"kty": "XYZ", "kid": "weird"},
            {**rsa_jwk, "kid": "sig"},
        ]
    }
    rs256_kid = token_with_kid("RS256", "sig")
    verify_case("JWKS with unusable keys: the usable one verifies", json.dumps(mixed_set).encode(), ["RS256"], rs256_kid, "ok", "jwks")
    verify_case("JWKS with no usable key is refused", json.dumps({"keys": mixed_set["keys"][:4]}).encode(), ["RS256"], rs256_kid, "INVALID_KEY_MATERIAL", "jwks")
    oct_set = {"keys": [{"kty": "oct", "kid": "h", "k": b64u(b"s" * 32)}, {**rsa_jwk, "kid": "sig"}]}
    verify_case("JWKS oct key is not used when only RS256 is allowed", json.dumps(oct_set).encode(), ["RS256"], token_hs_kid(b"s" * 32, "h"), "JWT_ALG_NOT_ALLOWED", "jwks")
    verify_case("JWKS oct key verifies when HS256 is allowed", json.dumps(oct_set).encode(), ["RS256", "HS256"], token_hs_kid(b"s" * 32, "h"), "ok", "jwks")

    # HMAC secrets: text and binary; RFC 7518 minimum per algorithm.
    secret40 = b"irontoken-test-hmac-secret-of-32-bytes!!"
    secret64 = b"k" * 64
    binary32 = bytes([0xFF, 0xFE]) + bytes(range(30))
    verify_case("HMAC secret (40 bytes text): HS256 verifies", secret40, ["HS256"], token("HS256", hs(secret40)), "ok", "secret")
    verify_case("HMAC secret (32 bytes, not UTF-8): HS256 verifies", binary32, ["HS256"], token("HS256", hs(binary32)), "ok", "secret")
    verify_case("HMAC secret (64 bytes): HS512 verifies", secret64, ["HS512"], token("HS512", hs(secret64, "HS512")), "ok", "secret")
    verify_case("HMAC secret of 40 bytes is too short for HS512", secret40, ["HS512"], token("HS512", hs(secret40, "HS512")), "INVALID_KEY_MATERIAL", "secret")
    verify_case("HMAC secret of 40 bytes is too short for HS384", secret40, ["HS384"], token("HS384", hs(secret40, "HS384")), "INVALID_KEY_MATERIAL", "secret")
    verify_case("HMAC secret of 20 bytes is refused", b"short-secret-20bytes", ["HS256"], token("HS256", hs(b"short-secret-20bytes")), "INVALID_KEY_MATERIAL", "secret")
    verify_case("HMAC secret given for RS256 only is refused", secret40, ["RS256"], rs256, "INVALID_KEY_MATERIAL", "secret")
    verify_case("HMAC secret with a mixed allow-list is refused", secret40, ["HS256", "RS256"], token("HS256", hs(secret40)), "JWT_ALG_NOT_ALLOWED", "secret")

    # Signing: private keys in PEM and DER sign; public keys and certificates
    # cannot; private PEM never signs HS256.
    rsa_priv = (KEYS / "rsa_private.pem").read_bytes()
    ec_priv = (KEYS / "ec_p256_private.pem").read_bytes()
    ed_priv = (KEYS / "ed25519_private.pem").read_bytes()
    signing = {
        "RSA PKCS#8 PEM": (rsa_priv, "RS256", "keys/rsa_public.pem", "pkcs8"),
        "RSA PKCS#8 PEM with CRLF and a BOM": (b"\xef\xbb\xbf" + rsa_priv.replace(b"\n", b"\r\n"), "RS256", "keys/rsa_public.pem", "pkcs8"),
        "RSA PKCS#8 PEM after Bag Attributes": (b"Bag Attributes\n    friendlyName: k\nKey Attributes: <No Attributes>\n" + rsa_priv, "PS256", "keys/rsa_public.pem", "pkcs8"),
        "RSA PKCS#1 PEM": (openssl("rsa", "-in", str(KEYS / "rsa_private.pem"), "-traditional"), "RS256", "keys/rsa_public.pem", "pkcs1-private"),
        "RSA PKCS#8 DER": (openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(KEYS / "rsa_private.pem"), "-outform", "DER"), "RS256", "keys/rsa_public.pem", "pkcs8"),
        "RSA PKCS#1 DER": (openssl("rsa", "-in", str(KEYS / "rsa_private.pem"), "-traditional", "-outform", "DER"), "RS256", "keys/rsa_public.pem", "pkcs1-private"),
        "EC P-256 PKCS#8 PEM": (ec_priv, "ES256", "keys/ec_p256_public.pem", "pkcs8"),
        "EC P-256 SEC1 PEM": (openssl("ec", "-in", str(KEYS / "ec_p256_private.pem")), "ES256", "keys/ec_p256_public.pem", "sec1"),
        "EC P-256 PKCS#8 DER": (openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(KEYS / "ec_p256_private.pem"), "-outform", "DER"), "ES256", "keys/ec_p256_public.pem", "pkcs8"),
        "Ed25519 PKCS#8 PEM": (ed_priv, "EdDSA", "keys/ed25519_public.pem", "pkcs8"),
        "Ed25519 PKCS#8 DER": (openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(KEYS / "ed25519_private.pem"), "-outform", "DER"), "EdDSA", "keys/ed25519_public.pem", "pkcs8"),
    }
    for name, (material, alg, verify_pem, kind) in signing.items():
        sign_case(f"{name}: signs {alg}", material, alg, verify_pem, "ok", kind)
        sign_case(f"{name}: never signs HS256", material, "HS256", None, "INVALID_KEY_MATERIAL", kind)
    sign_case("RSA public PEM cannot sign", rsa_pub, "RS256", None, "INVALID_KEY_MATERIAL", "spki")
    sign_case("RSA public PEM never signs HS256", rsa_pub, "HS256", None, "INVALID_KEY_MATERIAL", "spki")
    sign_case("certificate DER never signs HS256", rsa_forms["RSA certificate DER"][0], "HS256", None, "INVALID_KEY_MATERIAL", "certificate")
    sign_case("OpenSSH public key never signs HS256", rsa_forms["RSA OpenSSH public key"][0], "HS256", None, "INVALID_KEY_MATERIAL", "ssh")
    sign_case("HMAC secret signs HS256", secret40, "HS256", None, "ok", "secret")
    sign_case("HMAC secret of 40 bytes does not sign HS512", secret40, "HS512", None, "INVALID_KEY_MATERIAL", "secret")
    sign_case("HMAC secret cannot sign RS256", secret40, "RS256", None, "INVALID_KEY_MATERIAL", "secret")

    doc = {
        "description": (
            "Key material by form: key_hex is the exact bytes; text says whether they are UTF-8 "
            "(then also tested as a string). use=verify: load the material as a verification key "
            "(from bytes and from text) with the policy {algorithms} (exp and sub required), verify "
            "token at now; expect is 'ok' or the error code (an error while loading the key or "
            "building the verifier counts). use=sign: load it as a signing key for alg, sign claims "
            "(hmac: verify with the same material; else with verify_pem) and expect 'ok' or the "
            "error code. kind is the classification (spki, pkcs1-public, certificate, pkcs8, "
            "pkcs1-private, sec1, jwk, jwks, ssh, secret). Generated by generate_keys.py "
            "(stdlib + openssl)."
        ),
        "now": NOW,
        "claims": CLAIMS,
        "cases": cases,
    }
    (HERE / "keys.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(cases)} cases")


def token_with_kid(alg: str, kid: str) -> str:
    h = seg({"alg": alg, "typ": "JWT", "kid": kid})
    p = seg(CLAIMS)
    return f"{h}.{p}.{b64u(sign_with('rsa_private.pem', alg, f'{h}.{p}'.encode()))}"


def token_hs_kid(secret: bytes, kid: str) -> str:
    h = seg({"alg": "HS256", "typ": "JWT", "kid": kid})
    p = seg(CLAIMS)
    return f"{h}.{p}.{b64u(hs(secret)(f'{h}.{p}'.encode()))}"


def is_text(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


if __name__ == "__main__":
    main()
