"""JWT verification and signing through the Python binding: shared vectors,
the PyJWT-compatible surface, and interoperability with PyJWT itself."""

import base64
import json
import pathlib
from typing import Any, Dict, List, Optional, Union

import jwt as pyjwt
import pytest

from irontoken import IronTokenError, TokenManager, jwt
from irontoken.errors import (
    DecodeError,
    ExpiredSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

JWT_DIR = pathlib.Path(__file__).resolve().parents[2] / "tests" / "vectors" / "jwt"
NOW = 1_700_000_000
SECRET = "irontoken-test-hmac-secret-of-32-bytes!!"
SECRET64 = "irontoken-test-hmac-secret-of-64-bytes-for-hs512-" + "x" * 15


def key_of(spec: Dict[str, Any]) -> Union[str, bytes]:
    if "pem" in spec:
        return (JWT_DIR / spec["pem"]).read_text()
    if "jwk" in spec:
        return json.dumps(spec["jwk"])
    if "jwks" in spec:
        return json.dumps(spec["jwks"])
    raw = spec["secret_b64u"]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def cases(name: str):
    return json.loads((JWT_DIR / name).read_text())["cases"]


@pytest.mark.parametrize("case", cases("rfc7515.json") + cases("attacks.json"), ids=lambda c: c["name"])
def test_shared_vectors(case):
    policy = dict(case["policy"])
    options: Dict[str, Any] = {}
    for flag in ("require_exp", "require_sub", "verify_aud", "verify_iss", "verify_sub", "strict_aud"):
        if flag in policy:
            options[flag] = policy.pop(flag)
    if "required" in policy:
        options["require"] = ["exp"] + policy.pop("required")
    kwargs = {
        "algorithms": policy.pop("algorithms"),
        "options": options,
        "audience": policy.pop("audience", None),
        "issuer": policy.pop("issuer", None),
        "subject": policy.pop("subject", None),
        "leeway": policy.pop("leeway", 0),
    }
    assert not policy, policy
    expect = case["expect"]
    if expect.get("ok"):
        got = jwt.decode(case["token"], key_of(case["key"]), now=case["now"], **kwargs)
        assert got == expect["claims"]
    else:
        with pytest.raises(IronTokenError) as e:
            jwt.decode(case["token"], key_of(case["key"]), now=case["now"], **kwargs)
        assert e.value.code == expect["error"]
        assert e.value.claim == expect.get("claim"), case["name"]  # data from core, as PyJWT's .claim


def test_exception_names_follow_pyjwt():
    token = jwt.encode({"sub": "u", "exp": 1}, SECRET)
    with pytest.raises(ExpiredSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])
    with pytest.raises(InvalidTokenError):  # the PyJWT base class name
        jwt.decode(token, SECRET, algorithms=["HS256"])
    with pytest.raises(InvalidAlgorithmError):
        jwt.decode(jwt.encode({"sub": "u", "exp": 1}, SECRET64), SECRET64, algorithms=["HS512"])
    with pytest.raises(jwt.InvalidKeyError):  # RFC 7518: HS512 needs 64 bytes
        jwt.decode(token, SECRET, algorithms=["HS512"])
    with pytest.raises(InvalidSignatureError) as sig:
        jwt.decode(token, SECRET + "x", algorithms=["HS256"], options={"verify_exp": False})
    assert isinstance(sig.value, DecodeError)  # as in PyJWT
    with pytest.raises(DecodeError):
        jwt.decode("not.a.token", SECRET, algorithms=["HS256"])
    with pytest.raises(MissingRequiredClaimError):
        jwt.decode(jwt.encode({"sub": "u"}, SECRET), SECRET, algorithms=["HS256"])
    aud = jwt.encode({"sub": "u", "exp": NOW + 60, "aud": "a"}, SECRET)
    with pytest.raises(InvalidAudienceError):
        jwt.decode(aud, SECRET, algorithms=["HS256"], audience="b", now=NOW)
    assert jwt.decode(aud, SECRET, algorithms=["HS256"], audience=["b", "a"], now=NOW)["aud"] == "a"


def test_safety_rails():
    token = jwt.encode({"sub": "u", "exp": NOW + 60}, SECRET)
    with pytest.raises(IronTokenError) as e:
        jwt.decode(token, SECRET)  # no algorithms
    assert e.value.code == "INVALID_ARGUMENT"
    assert isinstance(e.value, DecodeError)  # as PyJWT
    # PyJWT's unverified read: no key, no algorithms, no claim checks; a
    # verifier object never skips the signature.
    expired = jwt.encode({"sub": "u", "exp": NOW - 60}, SECRET)
    assert jwt.decode(expired, options={"verify_signature": False}) == {"sub": "u", "exp": NOW - 60}
    assert jwt.decode(expired, "wrong-key-wrong-key-wrong-key-32b", options={"verify_signature": False})["sub"] == "u"
    with pytest.raises(IronTokenError) as refused:
        jwt.JwtVerifier(SECRET, ["HS256"], options={"verify_signature": False})
    assert refused.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ExpiredSignatureError):
        jwt.decode(expired, SECRET, algorithms=["HS256"], now=NOW)
    with pytest.raises(IronTokenError) as weak:
        jwt.encode({"sub": "u"}, "short")
    assert weak.value.code == "INVALID_KEY_MATERIAL"
    # An explicit require list replaces the exp default, as PyJWT's option does.
    bare = jwt.encode({"iss": "x"}, SECRET)
    assert jwt.decode(bare, SECRET, algorithms=["HS256"], options={"require": []}) == {"iss": "x"}


def test_pyjwt_defaults_and_options_are_accepted():
    """The calls PyJWT accepts work unchanged: nothing but exp required,
    every verify_* switch, strict_aud, several issuers."""
    import time

    NOW = int(time.time())  # PyJWT checks against the real clock
    no_sub = jwt.encode({"exp": NOW + 60, "aud": "other", "iss": "b"}, SECRET)
    both = {"algorithms": ["HS256"], "now": NOW}
    # sub is not required (PyJWT requires nothing; irontoken keeps exp).
    assert jwt.decode(no_sub, SECRET, audience="other", issuer="b", **both)["iss"] == "b"
    assert pyjwt.decode(no_sub, SECRET, algorithms=["HS256"], audience="other", issuer="b")["iss"] == "b"
    with pytest.raises(jwt.MissingRequiredClaimError):
        jwt.decode(no_sub, SECRET, audience="other", options={"require": ["exp", "sub"]}, **both)
    # verify_aud False: aud not looked at, whatever audience= says (PyJWT's).
    options = {"verify_aud": False}
    assert jwt.decode(no_sub, SECRET, audience="api", options=options, **both)["aud"] == "other"
    assert jwt.decode(no_sub, SECRET, options=options, **both)["aud"] == "other"
    assert pyjwt.decode(no_sub, SECRET, algorithms=["HS256"], audience="api", options=options)["aud"] == "other"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(no_sub, SECRET, audience="api", **both)
    # ...and nothing else is switched off with it.
    expired = jwt.encode({"exp": NOW - 1, "aud": "x"}, SECRET)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, SECRET, options=options, **both)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(no_sub, "another-secret-of-32-bytes-at-least", options=options, **both)
    # verify_iss False, issuer as a list (any of), verify_sub False, verify_jti.
    assert jwt.decode(no_sub, SECRET, audience="other", issuer="a", options={"verify_iss": False}, **both)
    assert jwt.decode(no_sub, SECRET, audience="other", issuer=["a", "b"], **both)["iss"] == "b"
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(no_sub, SECRET, audience="other", issuer=["a", "c"], **both)
    token = jwt.encode({"sub": "u", "exp": NOW + 60, "jti": "j"}, SECRET)
    opts = {"verify_sub": False, "verify_jti": True, "verify_iat": True, "verify_nbf": True, "verify_exp": True}
    assert jwt.decode(token, SECRET, subject="v", options=opts, **both)["sub"] == "u"
    with pytest.raises(jwt.InvalidSubjectError):
        jwt.decode(token, SECRET, subject="v", **both)
    # strict_aud: aud must be the one audience, as a string.
    listed = jwt.encode({"exp": NOW + 60, "aud": ["api"]}, SECRET)
    assert jwt.decode(listed, SECRET, audience="api", **both)["aud"] == ["api"]
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(listed, SECRET, audience="api", options={"strict_aud": True}, **both)
    with pytest.raises(pyjwt.InvalidAudienceError):  # PyJWT refuses it the same way
        pyjwt.decode(listed, SECRET, algorithms=["HS256"], audience="api", options={"strict_aud": True})
    # exp stays required, and the documented ways to turn that off work.
    bare = jwt.encode({"sub": "u"}, SECRET)
    with pytest.raises(jwt.MissingRequiredClaimError):
        jwt.decode(bare, SECRET, **both)
    assert jwt.decode(bare, SECRET, options={"require_exp": False}, **both) == {"sub": "u"}
    assert jwt.decode(bare, SECRET, options={"require": []}, **both) == {"sub": "u"}
    # A switch that is not a bool, or an option PyJWT does not have: refused.
    for bad in ({"verify_aud": "no"}, {"verify_everything": False}):
        with pytest.raises(IronTokenError) as e:
            jwt.decode(bare, SECRET, options=bad, **both)
        assert e.value.code == "INVALID_ARGUMENT"


def test_cryptography_key_objects_sign_and_verify():
    """cryptography's key objects are keys, as in PyJWT: public keys verify,
    private keys sign (and verify through their public part); the same
    objects work in PyJWT and here, both ways."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

    import time

    NOW = int(time.time())  # PyJWT checks against the real clock
    claims = {"sub": "user", "exp": NOW + 600}
    pairs = [
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("PS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("ES384", ec.generate_private_key(ec.SECP384R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ]
    for alg, private in pairs:
        public = private.public_key()
        ours = jwt.encode(claims, private, alg)
        assert jwt.decode(ours, public, algorithms=[alg], now=NOW) == claims, alg
        assert jwt.decode(ours, private, algorithms=[alg], now=NOW) == claims, alg  # its public part
        assert pyjwt.decode(ours, public, algorithms=[alg]) == claims, alg
        theirs = pyjwt.encode(claims, private, algorithm=alg)
        assert jwt.JwtVerifier(public, [alg]).decode(theirs, now=NOW) == claims, alg
        assert jwt.JwtSigner(private, alg).sign(claims).count(".") == 2
    # The RS/HS confusion stays closed with objects: an HS256 token MACed
    # with the public key's PEM never verifies against that key.
    import hashlib
    import hmac

    rsa_public = pairs[0][1].public_key()
    pem = rsa_public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    forged = signing_input + "." + b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(IronTokenError) as e:
        jwt.decode(forged, rsa_public, algorithms=["HS256"], now=NOW)
    assert e.value.code in ("INVALID_KEY_MATERIAL", "JWT_ALG_NOT_ALLOWED")
    # A weak RSA key object is as weak as its PEM; a key of a kind JWS has no use for is refused.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    for key in (weak, weak.public_key(), x25519.X25519PrivateKey.generate()):
        with pytest.raises(IronTokenError) as e:
            jwt.encode(claims, key, "RS256")
        assert e.value.code == "INVALID_KEY_MATERIAL", key


def test_verifier_reuses_key_and_policy():
    pem = (JWT_DIR / "keys" / "rsa_private.pem").read_text()
    pub = (JWT_DIR / "keys" / "rsa_public.pem").read_text()
    v = jwt.JwtVerifier(pub, ["RS256"], audience="api", issuer="iss")
    for i in range(3):
        token = jwt.encode({"sub": f"u{i}", "exp": NOW + 60, "aud": "api", "iss": "iss"}, pem, "RS256", {"kid": "k"})
        full = v.decode_complete(token, now=NOW)
        assert full["payload"]["sub"] == f"u{i}"
        assert full["header"]["kid"] == "k" and full["header"]["alg"] == "RS256"
    body = jwt.verify_jws(jwt.encode({"event": "paid"}, SECRET), SECRET, ["HS256"])
    assert json.loads(body) == {"event": "paid"}


def test_interop_with_pyjwt():
    priv = (JWT_DIR / "keys" / "rsa_private.pem").read_text()
    pub = (JWT_DIR / "keys" / "rsa_public.pem").read_text()
    ec_priv = (JWT_DIR / "keys" / "ec_p256_private.pem").read_text()
    ec_pub = (JWT_DIR / "keys" / "ec_p256_public.pem").read_text()
    ed_priv = (JWT_DIR / "keys" / "ed25519_private.pem").read_text()
    ed_pub = (JWT_DIR / "keys" / "ed25519_public.pem").read_text()
    claims = {"sub": "user", "exp": NOW + 600, "iat": NOW, "scope": "read write"}
    for alg, sk, vk in [
        ("HS256", SECRET, SECRET),
        ("HS512", SECRET64, SECRET64),
        ("RS256", priv, pub),
        ("PS256", priv, pub),
        ("ES256", ec_priv, ec_pub),
        ("EdDSA", ed_priv, ed_pub),
    ]:
        theirs = pyjwt.encode(claims, sk, algorithm=alg)
        assert jwt.decode(theirs, vk, algorithms=[alg], now=NOW) == claims, alg
        ours = jwt.encode(claims, sk, alg)
        got = pyjwt.decode(ours, vk, algorithms=[alg], options={"verify_exp": False, "verify_iat": False})
        assert got == claims, alg


def test_signer_parses_once_and_signs_many():
    priv = (JWT_DIR / "keys" / "ed25519_private.pem").read_text()
    pub = (JWT_DIR / "keys" / "ed25519_public.pem").read_text()
    signer = jwt.JwtSigner(priv, "EdDSA", kid="ed-1")
    verifier = jwt.JwtVerifier(pub, ["EdDSA"])
    for i in range(3):
        token = signer.sign({"sub": f"s{i}", "exp": NOW + 60}, headers={"typ": "at+jwt"})
        full = verifier.decode_complete(token, now=NOW)
        assert full["payload"]["sub"] == f"s{i}"
        assert full["header"] == {"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1"}
    with pytest.raises(InvalidAlgorithmError):
        jwt.JwtSigner(priv, "RS256")
    with pytest.raises(IronTokenError) as e:
        jwt.JwtSigner(pub, "EdDSA")
    assert e.value.code == "INVALID_KEY_MATERIAL"
    assert "BEGIN" not in repr(signer)


def test_managed_signing_keys_and_exchange(tmp_path):
    from irontoken import TokenManager
    from irontoken.errors import MasterKeyRequiredError, NoActiveSigningKeyError

    master = "00" * 32
    db = str(tmp_path / "m.db")
    with TokenManager(db, manual_clock_start=NOW) as no_master:
        with pytest.raises(MasterKeyRequiredError):
            no_master.create_signing_key("ES256")
    with TokenManager(db, manual_clock_start=NOW, master_key=master) as tm:
        with pytest.raises(NoActiveSigningKeyError):
            tm.issue_jwt({"sub": "x"})
        k1 = tm.create_signing_key("ES256", actor="ops")
        assert k1["status"] == "active" and k1["alg"] == "ES256"
        token = tm.issue_jwt({"sub": "svc"}, ttl_seconds=60)
        assert tm.verify_jwt(token, algorithms=["ES256"])["sub"] == "svc"
        # The exported JWKS verifies our tokens elsewhere (here: PyJWT).
        jwk = tm.jwks()["keys"][0]
        public = pyjwt.PyJWK(jwk)
        got = pyjwt.decode(token, public.key, algorithms=["ES256"], options={"verify_exp": False, "verify_iat": False})
        assert got["sub"] == "svc"
        k2 = tm.rotate_signing_key(overlap_seconds=30)
        assert k2["kid"] != k1["kid"]
        assert tm.verify_jwt(token, algorithms=["ES256"])["sub"] == "svc"  # inside the overlap
        tm.advance_clock(30)
        with pytest.raises(jwt.KeyNotFoundInKeyringError):
            tm.verify_jwt(token, algorithms=["ES256"])
        assert [k["status"] for k in tm.list_signing_keys()] == ["retired", "active"]
        api = tm.create_key("svc-billing", scopes=["read"])
        at = tm.exchange_api_key(api.key, required_scopes=["read"])
        claims = tm.verify_jwt(at["token"], algorithms=["ES256"])
        assert claims["sub"] == "svc-billing" and claims["key_id"] == api.record.id and claims["scope"] == "read"
        # The key as the raw bytes of a header works too.
        assert tm.exchange_api_key(api.key.encode())["key_id"] == api.record.id
        tm.revoke_key(api.record.id)
        with pytest.raises(IronTokenError) as e:
            tm.exchange_api_key(api.key)
        assert e.value.code == "KEY_REVOKED"


def test_rsa_key_size_option():
    from irontoken import InvalidArgumentError, TokenManager

    with TokenManager(":memory:", master_key="11" * 32, rsa_key_bits=3072) as tm:
        assert tm.create_signing_key("RS256")["alg"] == "RS256"
        n = tm.jwks()["keys"][0]["n"]
        assert len(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))) == 384
    with pytest.raises(InvalidArgumentError):
        TokenManager(":memory:", rsa_key_bits=1024)  # type: ignore[arg-type]


def key_cases():
    doc = json.loads((JWT_DIR / "keys.json").read_text())
    out = []
    for c in doc["cases"]:
        forms = ["bytes", "str"] if c["text"] else ["bytes"]
        out += [(c, f) for f in forms]
    return doc, out


KEY_DOC, KEY_CASES = key_cases()


@pytest.mark.parametrize("case,form", KEY_CASES, ids=lambda v: v["name"] if isinstance(v, dict) else v)
def test_key_material_vectors(case, form):
    material: Union[str, bytes] = bytes.fromhex(case["key_hex"])
    if form == "str":
        material = material.decode("utf-8")

    def run() -> None:
        if case["use"] == "verify":
            got = jwt.decode(case["token"], material, algorithms=case["algorithms"], now=KEY_DOC["now"])
            assert got == KEY_DOC["claims"]
        else:
            token = jwt.encode(KEY_DOC["claims"], material, case["alg"])
            vk: Union[str, bytes] = (JWT_DIR / case["verify_pem"]).read_bytes() if case["verify_pem"] else material
            assert jwt.decode(token, vk, algorithms=[case["alg"]], now=KEY_DOC["now"]) == KEY_DOC["claims"]

    if case["expect"] == "ok":
        run()
    else:
        with pytest.raises(IronTokenError) as e:
            run()
        assert e.value.code == case["expect"], str(e.value)
        if e.value.code == "INVALID_KEY_MATERIAL":
            assert isinstance(e.value, jwt.InvalidKeyError)


def test_bytes_pem_works_like_str_and_pyjwt_tokens_verify():
    pub = (JWT_DIR / "keys" / "rsa_public.pem").read_bytes()
    priv = (JWT_DIR / "keys" / "rsa_private.pem").read_bytes()
    claims = {"sub": "u", "exp": NOW + 60}
    theirs = pyjwt.encode(claims, priv, algorithm="RS256")
    assert jwt.decode(theirs, pub, algorithms=["RS256"], now=NOW) == claims
    assert jwt.JwtVerifier(pub, ["RS256"]).decode(theirs, now=NOW) == claims
    ours = jwt.encode(claims, priv, "RS256")
    assert pyjwt.decode(ours, pub, algorithms=["RS256"], options={"verify_exp": False}) == claims
    assert jwt.JwtSigner(bytearray(priv), "RS256").sign(claims).count(".") == 2
    # The classic attack: HS256 keyed with the public PEM bytes.
    forged = pyjwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), b"x" * 32, algorithm="HS256")
    forged_h, forged_p, _ = forged.split(".")
    import hashlib
    import hmac as hm

    sig = hm.new(pub, f"{forged_h}.{forged_p}".encode(), hashlib.sha256).digest()
    attack = f"{forged_h}.{forged_p}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    for algs in (["HS256"], ["RS256", "HS256"]):
        with pytest.raises(IronTokenError) as e:
            jwt.decode(attack, pub, algorithms=algs, now=NOW)
        assert e.value.code in ("INVALID_KEY_MATERIAL", "JWT_ALG_NOT_ALLOWED")
        assert b"BEGIN" not in str(e.value).encode()
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode(claims, pub, "HS256")


def test_pyjwt_gateway_flow_works_unchanged():
    """authentication.py's order: unverified header, unverified claims to find
    the consumer by sub, then a verified decode catching PyJWT's exceptions."""
    import datetime as dt

    priv = (JWT_DIR / "keys" / "rsa_private.pem").read_bytes()
    pub = (JWT_DIR / "keys" / "rsa_public.pem").read_bytes()
    token = pyjwt.encode({"sub": "consumer-7", "exp": NOW + 60}, priv, algorithm="RS256", headers={"kid": "k1"})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == "k1"
    assert jwt.get_unverified_header(token.encode()) == header  # bytes tokens
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "consumer-7"
    full = jwt.decode_complete(token, pub, algorithms="RS256", now=NOW)  # a plain str
    assert full["payload"]["sub"] == "consumer-7" and full["header"]["kid"] == "k1"
    assert isinstance(full["signature"], bytes) and len(full["signature"]) == 256
    later = NOW + 90
    assert jwt.decode(token, pub, algorithms=["RS256"], leeway=dt.timedelta(seconds=31), now=later)["sub"] == "consumer-7"
    for exc in (jwt.ExpiredSignatureError, jwt.InvalidTokenError, jwt.PyJWTError):
        with pytest.raises(exc):
            jwt.decode(token, pub, algorithms=["RS256"], now=later)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), pub, algorithms=["RS256"], now=NOW)
    with pytest.raises(jwt.DecodeError):
        jwt.decode(token, pub)  # no algorithms: DecodeError, as PyJWT
    for bad in ("x", "a.b", b"\xff.\xfe.\xfd", 12):
        with pytest.raises(jwt.DecodeError):
            jwt.get_unverified_header(bad)  # type: ignore[arg-type]
    # Odd numbers never escape as OverflowError/TypeError/PanicException.
    for leeway in (float("inf"), float("nan"), -1, 10**30, "5"):
        with pytest.raises(IronTokenError) as e:
            jwt.decode(token, pub, algorithms=["RS256"], leeway=leeway, now=NOW)  # type: ignore[arg-type]
        assert e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(IronTokenError):
        jwt.decode(token, pub, algorithms=["RS256"], now=10**40)
    huge = jwt.encode({"sub": "u", "exp": 10**30}, SECRET)
    assert jwt.decode(huge, SECRET, algorithms=["HS256"], now=NOW)["sub"] == "u"
    # PyJWT's key-error name means bad key material, and is a PyJWTError.
    assert jwt.InvalidKeyError is jwt.InvalidKeyMaterialError
    assert issubclass(jwt.InvalidKeyError, jwt.PyJWTError)


def test_pyjwk_and_pyjwkset():
    priv = (JWT_DIR / "keys" / "ec_p256_private.pem").read_text()
    token = pyjwt.encode({"sub": "u", "exp": NOW + 60}, priv, algorithm="ES256", headers={"kid": "e1"})
    from cryptography.hazmat.primitives import serialization

    pub_pem = serialization.load_pem_private_key(priv.encode(), None).public_key()
    jwk_dict = {**json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(pub_pem)), "kid": "e1", "use": "sig"}
    key = jwt.PyJWK(jwk_dict)
    assert (key.key_type, key.key_id, key.public_key_use) == ("EC", "e1", "sig")
    assert jwt.decode(token, key.key, algorithms=["ES256"], now=NOW)["sub"] == "u"
    assert jwt.decode(token, key, algorithms=["ES256"], now=NOW)["sub"] == "u"
    keyset = jwt.PyJWKSet.from_dict({"keys": [{"kty": "OKP", "crv": "X25519", "x": "AA"}, {**jwk_dict, "use": "enc", "kid": "e2"}, jwk_dict]})
    assert len(keyset) == 1 and keyset["e1"].key_id == "e1"
    with pytest.raises(KeyError):
        keyset["nope"]
    with pytest.raises(jwt.PyJWKSetError):
        jwt.PyJWKSet([{"kty": "XYZ"}])
    with pytest.raises(jwt.PyJWKError):
        jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(bytes([1] + [0] * 31)).rstrip(b"=").decode()})


def test_odd_arguments_are_our_errors_not_python_crashes():
    token = jwt.encode({"sub": "u", "exp": NOW + 60}, SECRET)
    odd_decode: List[Dict[str, Any]] = [
        {"options": "verify"},
        {"audience": 5},
        {"issuer": 7},
        {"subject": b"x"},
        {"options": {"require": 3}},
        {"algorithms": [1]},
        {"leeway": 1e309},
    ]
    for kwargs in odd_decode:
        args = {"algorithms": ["HS256"], **kwargs}
        with pytest.raises(IronTokenError):
            jwt.decode(token, SECRET, now=NOW, **args)
    for bad in (12, None, 3.5, object()):
        with pytest.raises(IronTokenError):
            jwt.decode(token, bad, algorithms=["HS256"], now=NOW)  # type: ignore[arg-type]
    for kwargs2 in ({"algorithm": 256}, {"headers": "x"}, {"headers": {"kid": 5}}):
        with pytest.raises(IronTokenError):
            jwt.encode({"sub": "u"}, SECRET, **kwargs2)  # type: ignore[arg-type]
    with pytest.raises(IronTokenError):
        jwt.JwtVerifier(SECRET, "HS256", max_token_bytes=10**30)
    with pytest.raises(IronTokenError):
        jwt.encode({"sub": "u", "x": float("nan")}, SECRET)


def test_one_shot_decode_reuses_parsed_keys_but_never_another_key_or_policy() -> None:
    secret = b"irontoken-test-hmac-secret-of-32-bytes!!"
    other = b"another-hmac-secret-of-at-least-32-bytes"
    token = jwt.encode({"sub": "u", "aud": "a", "exp": 4_000_000_000}, secret, algorithm="HS256")
    for _ in range(3):
        assert jwt.decode(token, secret, algorithms=["HS256"], audience="a")["sub"] == "u"
        with pytest.raises(jwt.InvalidAudienceError):
            jwt.decode(token, secret, algorithms=["HS256"], audience="b")
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, other, algorithms=["HS256"], audience="a")
    for i in range(300):  # more keys than the cache holds: every answer stays right
        k = secret + str(i).encode()
        t = jwt.encode({"sub": f"u{i}", "exp": 4_000_000_000}, k, algorithm="HS256")
        assert jwt.decode(t, k, algorithms=["HS256"])["sub"] == f"u{i}"


def test_signing_keys_rotate_when_due_once_across_processes(tmp_path: Any) -> None:
    """rotate_signing_key_if_due from cron on several hosts: not due → None;
    due → exactly one rotation however many processes race."""
    import multiprocessing

    from irontoken import NotFoundError

    db = str(tmp_path / "keys.db")
    master = "22" * 32
    with TokenManager(db, master_key=master) as tm:
        with pytest.raises(NotFoundError):
            tm.rotate_signing_key_if_due(90 * 86400)
        first = tm.create_signing_key("ES256")
        assert tm.rotate_signing_key_if_due(90 * 86400, overlap_seconds=86400) is None
    # Age the key by hand (no clock crosses processes): due for a 90-day
    # period, while the key a rotation makes is not, however long the
    # processes take to start (a 1 s period let a slow CI rotate twice).
    import sqlite3

    with sqlite3.connect(db) as c:
        c.execute("UPDATE signing_keys SET created_at = created_at - 100 * 86400")
    c.close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_rotate_if_due, [(db, master)] * 4)
    rotated = [r for r in results if r is not None]
    assert len(rotated) == 1, results
    with TokenManager(db, master_key=master) as tm:
        keys = tm.list_signing_keys()
        assert [(k["kid"], k["status"]) for k in keys] == [
            (first["kid"], "verify_only"),
            (rotated[0], "active"),
        ]


def _rotate_if_due(db: str, master: str) -> Optional[str]:
    tm = TokenManager(db, master_key=master)
    try:
        k = tm.rotate_signing_key_if_due(90 * 86400, overlap_seconds=3600, actor="cron")
    finally:
        tm.close()
    return None if k is None else str(k["kid"])
