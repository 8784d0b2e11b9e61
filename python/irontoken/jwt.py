"""JWT verification and signing with the PyJWT calling convention.

``decode`` and ``encode`` take the arguments PyJWT takes, and raise
exceptions with PyJWT's names (``ExpiredSignatureError``,
``InvalidAudienceError``... all under ``InvalidTokenError``, ``PyJWTError``
and our ``IronTokenError``), so code using PyJWT switches by changing an
import: ``from irontoken import jwt``.

Keys may be ``str`` or ``bytes`` (or ``bytearray``/``memoryview``): what a key
is comes from its content, never from its type. ``cryptography`` key objects
(``RSAPublicKey``, ``EllipticCurvePublicKey``, ``Ed25519PublicKey`` and the
private keys) are accepted as PyJWT accepts them. PEM (even after openssl's
"Bag Attributes", with a BOM or CRLF), DER, JWK/JWKS JSON and OpenSSH public
keys are asymmetric and are never used as an HMAC secret (that would be the
RS/HS confusion attack): :class:`InvalidKeyError`, as in PyJWT.

Also as in PyJWT: ``get_unverified_header``, ``decode(...,
options={"verify_signature": False})`` (claims returned unverified, no key or
``algorithms`` needed, no claim checked), ``decode_complete`` (header,
payload, signature), tokens as ``bytes``, ``algorithms="HS256"``, ``leeway``
as a ``timedelta``, :class:`PyJWK` and :class:`PyJWKSet`. Differences, on
purpose:

- ``algorithms`` is required when verifying (missing: :class:`DecodeError`);
  ``none`` is never accepted or produced;
- ``exp`` is required (a token without one would never expire) unless
  ``options={"require": [...]}`` lists the required claims without it, or
  ``options={"require_exp": False}``; nothing else is required by default;
- one key given directly with an allow-list mixing HMAC and public-key
  algorithms is refused (``InvalidAlgorithmError``);
- HMAC secrets must be as long as the hash (HS256 32, HS384 48, HS512 64 bytes);
- a ``kid`` not in the keyring is an error, never a fallback to another key;
- a private JWK given for verification is used through its public part only.

The full table of differences from PyJWT and from jose is in the docs
(guides/jwt.md, "Differences from PyJWT and jose").

For many tokens with the same key, build a :class:`JwtVerifier` once: its
key and policy are parsed a single time.
"""

from __future__ import annotations

import datetime
import json
import math
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Type, Union

from . import _native
from .errors import (
    CertificateBindingError,
    DPoPBindingError,
    DPoPError,
    DPoPNonceRequiredError,
    DPoPProofError,
    DPoPProofReplayedError,
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidArgumentError,
    InvalidAudienceError,
    InvalidClaimError,
    TokenReplayedError,
    InvalidIssuerError,
    InvalidKeyMaterialError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    JWTError,
    KeyNotFoundInKeyringError,
    MissingRequiredClaimError,
    PyJWKClientConnectionError,
    PyJWKClientError,
    PyJWKError,
    PyJWKSetError,
    PyJWTError,
    UnsupportedHeaderError,
    _MissingAlgorithmsError,
)

__all__ = [
    "CertificateBindingError",
    "DPoPBindingError",
    "DPoPError",
    "DPoPNonceRequiredError",
    "DPoPProofError",
    "DPoPProofReplayedError",
    "access_token_hash",
    "cert_thumbprint",
    "jwk_thumbprint",
    "token_binding",
    "verify_dpop_proof",
    "JwtSigner",
    "JwtVerifier",
    "PyJWK",
    "PyJWKClient",
    "PyJWKSet",
    "decode",
    "decode_complete",
    "encode",
    "get_unverified_header",
    "verify_jws",
    "DecodeError",
    "ExpiredSignatureError",
    "ImmatureSignatureError",
    "InvalidAlgorithmError",
    "InvalidArgumentError",
    "InvalidAudienceError",
    "InvalidClaimError",
    "TokenReplayedError",
    "InvalidIssuerError",
    "InvalidKeyError",
    "InvalidKeyMaterialError",
    "InvalidSignatureError",
    "InvalidSubjectError",
    "InvalidTokenError",
    "JWTError",
    "KeyNotFoundInKeyringError",
    "MissingRequiredClaimError",
    "PyJWKClientConnectionError",
    "PyJWKClientError",
    "PyJWKError",
    "PyJWKSetError",
    "PyJWTError",
    "UnsupportedHeaderError",
]

InvalidKeyError = InvalidKeyMaterialError
"""PyJWT's name for bad key material (wrong kind, unparsable, or weak)."""

Key = Union[str, bytes, bytearray, memoryview, "PyJWK", _native.Jwk, Any]
"""Key material (PEM, DER, JWK/JWKS, OpenSSH, HMAC secret), a PyJWK, or a ``cryptography`` key object."""
SigningKeyMaterial = Union[str, bytes, bytearray, memoryview, Any]
"""A private key in PEM or DER, an HMAC secret, or a ``cryptography`` private key object."""

_MAX_LEEWAY = 10**9


def _invalid(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"INVALID_ARGUMENT: {message}", "INVALID_ARGUMENT")


def _key(key: Any, *, private: bool = False) -> Any:
    """The native form of a key: a PyJWK's parsed key, a ``cryptography``
    key object's DER (its public part when verifying: ``private=False``), or
    the material as is."""
    if isinstance(key, PyJWK):
        return key.key
    if type(key).__module__.startswith("cryptography."):
        return _cryptography_der(key, private)
    return key


def _cryptography_der(key: Any, private: bool) -> bytes:
    """DER of a ``cryptography`` key object: PKCS#8 for a private key used
    to sign, SubjectPublicKeyInfo otherwise (a private key given to a
    verifier verifies through its public part, as PyJWT's does)."""
    from cryptography.hazmat.primitives import serialization as ser

    if hasattr(key, "private_bytes") and private:
        der: bytes = key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        return der
    if hasattr(key, "private_bytes"):
        key = key.public_key()
    if hasattr(key, "public_bytes"):
        try:
            spki: bytes = key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
            return spki
        except (ValueError, TypeError):
            pass
    raise InvalidKeyMaterialError(
        f"INVALID_KEY_MATERIAL: {type(key).__name__} is not a key irontoken uses (RSA, EC, Ed25519)",
        "INVALID_KEY_MATERIAL",
    )


def _algorithms(algorithms: Optional[Union[str, Iterable[str]]]) -> List[str]:
    if algorithms is None or (not isinstance(algorithms, str) and not algorithms):
        raise _MissingAlgorithmsError(
            'INVALID_ARGUMENT: It is required that you pass in a value for the "algorithms" '
            "argument when calling decode(), e.g. algorithms=['RS256']",
            "INVALID_ARGUMENT",
        )
    if isinstance(algorithms, str):
        return [algorithms]
    names = list(algorithms)
    if not all(isinstance(a, str) for a in names):
        raise _invalid("algorithms must be names such as 'RS256'")
    return names


def _leeway(leeway: Any) -> int:
    if isinstance(leeway, datetime.timedelta):
        leeway = leeway.total_seconds()
    if isinstance(leeway, bool) or not isinstance(leeway, (int, float)):
        raise _invalid("leeway must be seconds or a timedelta")
    if isinstance(leeway, float) and not math.isfinite(leeway):
        raise _invalid("leeway must be finite")
    if leeway < 0 or leeway > _MAX_LEEWAY:
        raise _invalid(f"leeway must be between 0 and {_MAX_LEEWAY} seconds")
    return int(leeway)


def _now(now: Any) -> Optional[int]:
    if now is None:
        return None
    if isinstance(now, bool) or not isinstance(now, int) or not -(2**62) < now < 2**62:
        raise _invalid("now must be Unix seconds (an int)")
    return now


def _token(jwt: Any) -> str:
    if isinstance(jwt, (bytes, bytearray, memoryview)):
        try:
            return bytes(jwt).decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("JWT_MALFORMED: a token is ASCII text", "JWT_MALFORMED") from None
    if not isinstance(jwt, str):
        raise DecodeError(
            f"JWT_MALFORMED: invalid token type {type(jwt).__name__}: expected str or bytes", "JWT_MALFORMED"
        )
    return jwt


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{what} must be a str")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"options[{what!r}] must be True or False")
    return value


def _seq(value: Any, what: str) -> List[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _invalid(f"{what} must be a list of str")
    return list(value)


def _policy(
    algorithms: Optional[Union[str, Iterable[str]]],
    options: Optional[Mapping[str, Any]],
    audience: Optional[Union[str, Iterable[str]]],
    issuer: Optional[Union[str, Iterable[str]]],
    subject: Optional[str],
    leeway: Union[int, float, datetime.timedelta],
    max_token_bytes: Optional[int] = None,
) -> str:
    names = _algorithms(algorithms)
    if options is not None and not isinstance(options, Mapping):
        raise _invalid("options must be a dict")
    opts = dict(options or {})
    if opts.pop("verify_signature", True) is not True:
        raise _invalid(
            "verifiers always verify signatures (decode(token, options={'verify_signature': False}) "
            "reads a token unverified)"
        )
    policy: Dict[str, Any] = {"algorithms": names, "leeway": _leeway(leeway)}
    if issuer is not None:
        # PyJWT takes one issuer or a container of them (any of).
        policy["issuer"] = _text(issuer, "issuer") if isinstance(issuer, str) else [_text(i, "issuer") for i in _seq(issuer, "issuer")]
    if audience is not None:
        policy["audience"] = [_text(a, "audience") for a in ([audience] if isinstance(audience, str) else _seq(audience, "audience"))]
    if subject is not None:
        policy["subject"] = _text(subject, "subject")
    if "require" in opts:
        required: List[str] = [_text(c, "require") for c in _seq(opts.pop("require"), "require")]
        policy["required"] = required
        policy["require_exp"] = "exp" in required
        policy["require_sub"] = "sub" in required
    for flag in ("verify_exp", "verify_nbf", "verify_iat", "verify_aud", "verify_iss", "verify_sub", "strict_aud"):
        if flag in opts:
            policy[flag] = _flag(opts.pop(flag), flag)
    for flag in ("require_exp", "require_sub"):
        if flag in opts:
            policy[flag] = _flag(opts.pop(flag), flag)
    if "verify_jti" in opts:
        # PyJWT's switch for the check that a jti is a string: irontoken
        # always makes it (a jti of another type is a malformed token).
        _flag(opts.pop("verify_jti"), "verify_jti")
    if max_token_bytes is not None:
        if isinstance(max_token_bytes, bool) or not isinstance(max_token_bytes, int) or not 0 < max_token_bytes < 2**31:
            raise _invalid("max_token_bytes must be a positive int")
        policy["max_token_bytes"] = max_token_bytes
    if opts:
        raise _invalid(f"unsupported options {sorted(opts)}")
    return json.dumps(policy)


class JwtVerifier:
    """A key (or keyring) and a policy, parsed once, for many tokens."""

    def __init__(
        self,
        key: Key,
        algorithms: Union[str, Iterable[str]],
        *,
        options: Optional[Mapping[str, Any]] = None,
        audience: Optional[Union[str, Iterable[str]]] = None,
        issuer: Optional[Union[str, Iterable[str]]] = None,
        subject: Optional[str] = None,
        leeway: Union[int, float, datetime.timedelta] = 0,
        max_token_bytes: Optional[int] = None,
    ) -> None:
        policy = _policy(algorithms, options, audience, issuer, subject, leeway, max_token_bytes)
        self._native = _native.JwtVerifier(_key(key), policy)

    def decode_complete(self, token: Union[str, bytes], *, now: Optional[int] = None) -> Dict[str, Any]:
        """Verifies ``token``; returns ``{"header": ..., "payload": ...}``."""
        header, claims = self._native.decode_complete(_token(token), _now(now))
        return {"header": header, "payload": claims}

    def decode(self, token: Union[str, bytes], *, now: Optional[int] = None) -> Dict[str, Any]:
        """Verifies ``token``; returns its claims."""
        return self._native.decode(_token(token), _now(now))

    def verify_jws(self, token: Union[str, bytes]) -> bytes:
        """Verifies a compact JWS (signature and header only); returns the payload bytes."""
        _header, payload = self._native.verify_jws(_token(token))
        return bytes(payload)

    def __repr__(self) -> str:
        return "JwtVerifier(...)"


def _claims_json(payload: Mapping[str, Any], json_encoder: Optional[Type[json.JSONEncoder]] = None) -> str:
    if not isinstance(payload, Mapping):
        raise TypeError("Expecting a dict object, as JWT only supports JSON objects as payloads.")
    claims = dict(payload)
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if isinstance(value, datetime.datetime):
            claims[name] = int(value.timestamp())
    try:
        return json.dumps(claims, separators=(",", ":"), cls=json_encoder, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _invalid(f"claims are not JSON-serializable: {e}") from None


class JwtSigner:
    """A signing key (private key in PEM or DER, or HMAC secret; str or bytes)
    and algorithm, parsed once."""

    def __init__(self, key: SigningKeyMaterial, algorithm: str = "HS256", *, kid: Optional[str] = None) -> None:
        self._native = _native.JwtSigner(_key(key, private=True), algorithm, kid)

    def sign(self, payload: Mapping[str, Any], headers: Optional[Mapping[str, Any]] = None) -> str:
        """Signs ``payload`` into a compact JWT (``headers``: extra header parameters)."""
        return self._native.sign(_claims_json(payload), json.dumps(dict(headers)) if headers else None)

    def __repr__(self) -> str:
        return "JwtSigner(...)"


def get_unverified_header(jwt: Union[str, bytes]) -> Dict[str, Any]:
    """The header of ``jwt``, NOT verified: to read ``alg``/``kid`` before choosing a key."""
    header, _payload, _signature = _native.jwt_unverified(_token(jwt))
    return header


def _unverified(jwt: Union[str, bytes]) -> Dict[str, Any]:
    header, payload, signature = _native.jwt_unverified(_token(jwt))
    try:
        claims = json.loads(payload)
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise DecodeError("JWT_MALFORMED: invalid payload string: must be a JSON object", "JWT_MALFORMED")
    return {"header": header, "payload": claims, "signature": bytes(signature)}


def decode_complete(
    jwt: Union[str, bytes],
    key: Key = "",
    algorithms: Optional[Union[str, Iterable[str]]] = None,
    options: Optional[Mapping[str, Any]] = None,
    audience: Optional[Union[str, Iterable[str]]] = None,
    issuer: Optional[Union[str, Iterable[str]]] = None,
    subject: Optional[str] = None,
    leeway: Union[int, float, datetime.timedelta] = 0,
    *,
    now: Optional[int] = None,
) -> Dict[str, Any]:
    """Verifies ``jwt`` with ``key``; returns ``{"header", "payload", "signature"}``.

    With ``options={"verify_signature": False}`` nothing is verified (PyJWT's
    semantics: no key or algorithms needed, no claim checked): use it to
    route a token, never to trust one."""
    if isinstance(options, Mapping) and options.get("verify_signature", True) is False:
        return _unverified(jwt)
    token = _token(jwt)
    policy = _policy(algorithms, options, audience, issuer, subject, leeway)
    header, claims = _native.jwt_decode(token, _key(key), policy, _now(now))
    signature = _native.jwt_unverified(token)[2]
    return {"header": header, "payload": claims, "signature": bytes(signature)}


def decode(
    jwt: Union[str, bytes],
    key: Key = "",
    algorithms: Optional[Union[str, Iterable[str]]] = None,
    options: Optional[Mapping[str, Any]] = None,
    audience: Optional[Union[str, Iterable[str]]] = None,
    issuer: Optional[Union[str, Iterable[str]]] = None,
    subject: Optional[str] = None,
    leeway: Union[int, float, datetime.timedelta] = 0,
    *,
    now: Optional[int] = None,
) -> Dict[str, Any]:
    """Verifies ``jwt`` with ``key`` (PEM, DER, JWK, JWKS, OpenSSH public key
    or HMAC secret; str or bytes, judged by content); returns its claims."""
    if isinstance(options, Mapping) and options.get("verify_signature", True) is False:
        payload: Dict[str, Any] = _unverified(jwt)["payload"]
        return payload
    policy = _policy(algorithms, options, audience, issuer, subject, leeway)
    return _native.jwt_decode(_token(jwt), _key(key), policy, _now(now))[1]


def verify_jws(token: Union[str, bytes], key: Key, algorithms: Union[str, Iterable[str]]) -> bytes:
    """Verifies a compact JWS (e.g. a signed webhook body); returns the payload bytes."""
    return JwtVerifier(key, algorithms, options={"require": []}).verify_jws(token)


def encode(
    payload: Mapping[str, Any],
    key: SigningKeyMaterial,
    algorithm: Optional[str] = "HS256",
    headers: Optional[Mapping[str, Any]] = None,
    json_encoder: Optional[Type[json.JSONEncoder]] = None,
    sort_headers: bool = True,
) -> str:
    """Signs ``payload`` into a compact JWT. ``headers`` may carry ``kid`` and extra parameters."""
    if algorithm is None or algorithm == "none":
        raise InvalidAlgorithmError(
            "JWT_ALG_NOT_ALLOWED: unsigned tokens (alg none) are never made", "JWT_ALG_NOT_ALLOWED"
        )
    if not isinstance(algorithm, str):
        raise InvalidAlgorithmError("JWT_ALG_NOT_ALLOWED: algorithm must be a name such as 'RS256'", "JWT_ALG_NOT_ALLOWED")
    if headers is not None and not isinstance(headers, Mapping):
        raise _invalid("headers must be a dict")
    extra = dict(headers or {})
    if "kid" in extra and not isinstance(extra["kid"], str):
        raise _invalid("kid must be a str")
    kid = extra.pop("kid", None)
    extra.pop("alg", None)
    if extra.get("typ") == "JWT":
        extra.pop("typ")
    return _native.jwt_encode(
        _claims_json(payload, json_encoder),
        _key(key, private=True),
        algorithm,
        json.dumps(extra) if extra else None,
        kid,
    )


class PyJWK:
    """One JWK, parsed once (PyJWT's ``PyJWK``): pass ``jwk.key`` (or the
    PyJWK itself) as the key of :func:`decode` or :class:`JwtVerifier`."""

    def __init__(self, jwk_data: Mapping[str, Any], algorithm: Optional[str] = None) -> None:
        if not isinstance(jwk_data, Mapping):
            raise PyJWKError("INVALID_KEY_MATERIAL: a JWK is a JSON object", "INVALID_KEY_MATERIAL")
        data = dict(jwk_data)
        if algorithm is not None and "alg" not in data:
            data["alg"] = algorithm
        self._jwk_data = data
        try:
            self.key: _native.Jwk = _native.Jwk(json.dumps(data))
        except InvalidKeyMaterialError as e:
            raise PyJWKError(str(e), e.code) from None

    @staticmethod
    def from_dict(obj: Mapping[str, Any], algorithm: Optional[str] = None) -> "PyJWK":
        """A PyJWK from a dict."""
        return PyJWK(obj, algorithm)

    @staticmethod
    def from_json(data: str, algorithm: Optional[str] = None) -> "PyJWK":
        """A PyJWK from JSON text."""
        return PyJWK(json.loads(data), algorithm)

    @property
    def key_type(self) -> str:
        """``kty``: ``oct``, ``RSA``, ``EC`` or ``OKP``."""
        return self.key.key_type

    @property
    def key_id(self) -> Optional[str]:
        """``kid``, if any."""
        return self.key.kid

    @property
    def public_key_use(self) -> Optional[str]:
        """``use``, if any."""
        use = self._jwk_data.get("use")
        return use if isinstance(use, str) else None

    @property
    def algorithm_name(self) -> Optional[str]:
        """``alg``, if the JWK names one."""
        return self.key.algorithm

    @classmethod
    def _from_native(cls, native: _native.Jwk) -> "PyJWK":
        """A PyJWK around a key the core has parsed already."""
        out = cls.__new__(cls)
        out._jwk_data = {"kty": native.key_type, **({"kid": native.kid} if native.kid else {})}
        out.key = native
        return out

    def __repr__(self) -> str:
        return f"PyJWK(key_type={self.key_type!r}, key_id={self.key_id!r})"


class PyJWKSet:
    """A JWKS (PyJWT's ``PyJWKSet``): keys it cannot use (unsupported
    ``kty``/``crv``, ``use: enc``, weak) are skipped; none usable is an error."""

    def __init__(self, keys: Iterable[Mapping[str, Any]]) -> None:
        self.keys: List[PyJWK] = []
        if not isinstance(keys, (list, tuple)):
            raise PyJWKSetError("INVALID_KEY_MATERIAL: Invalid JWK Set value", "INVALID_KEY_MATERIAL")
        for k in keys:
            try:
                self.keys.append(PyJWK(k))
            except PyJWKError:
                continue
        if not self.keys:
            raise PyJWKSetError(
                "INVALID_KEY_MATERIAL: The JWK Set did not contain any usable keys", "INVALID_KEY_MATERIAL"
            )

    @staticmethod
    def from_dict(obj: Mapping[str, Any]) -> "PyJWKSet":
        """A set from ``{"keys": [...]}``."""
        return PyJWKSet(obj.get("keys", []))

    @staticmethod
    def from_json(data: str) -> "PyJWKSet":
        """A set from JSON text."""
        return PyJWKSet.from_dict(json.loads(data))

    def __getitem__(self, kid: str) -> PyJWK:
        for key in self.keys:
            if key.key_id == kid:
                return key
        raise KeyError(f"keyset has no key for kid: {kid}")

    def __len__(self) -> int:
        return len(self.keys)


class PyJWKClient:
    """Keys from an identity provider's JWKS URL (PyJWT's ``PyJWKClient``),
    fetched, cached and verified in the Rust core: HTTPS (rustls), a timeout
    and a size cap per fetch, the set cached for ``lifespan`` seconds, an
    unknown ``kid`` refetched at most once per ``cooldown`` seconds, the last
    good set served up to ``stale_max`` seconds past its lifespan while the
    provider fails. ``http://`` only to loopback hosts unless
    ``allow_http=True``. Network waits release the GIL.

    The defaults are irontoken's on every surface (Node's
    ``createRemoteJWKSet``, the CLI, C): ``timeout`` 5 s, ``lifespan`` 600 s,
    ``cooldown`` 30 s (at least 1 s), ``stale_max`` 1 h — not PyJWT's 30 s
    and 300 s. A symmetric (``oct``) key in the set is never used: its
    secret is published. PyJWT's ``cache_keys``/``max_cached_keys`` are
    accepted (every key of the set is kept parsed); ``ssl_context`` is not
    supported (certificates are checked against the Mozilla roots)."""

    def __init__(
        self,
        uri: str,
        cache_keys: bool = False,
        max_cached_keys: int = 16,
        cache_jwk_set: bool = True,
        lifespan: float = 600,
        headers: Optional[Mapping[str, str]] = None,
        timeout: float = 5,
        ssl_context: Any = None,
        *,
        allow_http: bool = False,
        cooldown: float = 30,
        stale_max: float = 3600,
        max_bytes: int = 512 * 1024,
    ) -> None:
        if ssl_context is not None:
            raise _invalid("ssl_context is not supported: certificates are checked against the Mozilla roots")
        for name, value in (("lifespan", lifespan), ("timeout", timeout), ("cooldown", cooldown), ("stale_max", stale_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise _invalid(f"{name} must be a finite number of seconds >= 0")
        if not cache_jwk_set:
            lifespan = 0
        options = {
            "timeout_ms": int(timeout * 1000),
            "cache_max_age_ms": int(lifespan * 1000),
            "cooldown_ms": int(cooldown * 1000),
            "stale_max_ms": int(stale_max * 1000),
            "allow_http": bool(allow_http),
            "max_bytes": max_bytes,
            "headers": dict(headers or {}),
        }
        self.uri = uri
        self._native = _native.RemoteJwks(uri, json.dumps(options))

    def fetch_data(self) -> Dict[str, Any]:
        """Fetches the set now; returns its JSON."""
        data: Dict[str, Any] = json.loads(self._native.raw(True))
        return data

    def get_jwk_set(self, refresh: bool = False) -> PyJWKSet:
        """The set (cached unless ``refresh``), without symmetric (``oct``)
        keys: a published secret verifies nothing."""
        data = json.loads(self._native.raw(refresh))
        keys = [k for k in data.get("keys", []) if not (isinstance(k, dict) and k.get("kty") == "oct")]
        return PyJWKSet(keys)

    def get_signing_keys(self, refresh: bool = False) -> List[PyJWK]:
        """The keys of the set meant for signatures (``use`` absent or ``sig``) with a ``kid``."""
        keys = [k for k in self.get_jwk_set(refresh).keys if k.public_key_use in (None, "sig") and k.key_id]
        if not keys:
            raise PyJWKClientError("JWT_KEY_NOT_FOUND: The JWKS endpoint did not contain any signing keys", "JWT_KEY_NOT_FOUND")
        return keys

    def get_signing_key(self, kid: str) -> PyJWK:
        """The key with ``kid``; an unknown kid refetches the set once (outside the cooldown)."""
        try:
            native = self._native.key(kid)
        except KeyNotFoundInKeyringError:
            raise PyJWKClientError(
                f'JWT_KEY_NOT_FOUND: Unable to find a signing key that matches: "{kid[:64]}"', "JWT_KEY_NOT_FOUND"
            ) from None
        return PyJWK._from_native(native)

    def get_signing_key_from_jwt(self, token: Union[str, bytes]) -> PyJWK:
        """The key named by the token's ``kid`` (header read unverified)."""
        kid = get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise PyJWKClientError("JWT_KEY_NOT_FOUND: the token has no kid", "JWT_KEY_NOT_FOUND")
        return self.get_signing_key(kid)

    def decode(
        self,
        token: Union[str, bytes],
        algorithms: Union[str, Iterable[str]],
        options: Optional[Mapping[str, Any]] = None,
        audience: Optional[Union[str, Iterable[str]]] = None,
        issuer: Optional[Union[str, Iterable[str]]] = None,
        subject: Optional[str] = None,
        leeway: Union[int, float, datetime.timedelta] = 0,
        *,
        now: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Verifies ``token`` against the set in one call (the kid lookup and
        refetch happen in the core); returns its claims."""
        policy = _policy(algorithms, options, audience, issuer, subject, leeway)
        return self._native.decode(_token(token), policy, _now(now))[1]

    @property
    def fetch_count(self) -> int:
        """How many times the set was fetched."""
        return self._native.fetch_count

    def __repr__(self) -> str:
        return f"PyJWKClient({self.uri!r})"


if TYPE_CHECKING:
    from ._native import TokenManager
    from .types import DPoPProof


def verify_dpop_proof(
    proof: str,
    *,
    htm: str,
    htu: str,
    access_token: Optional[str] = None,
    nonce: Optional[str] = None,
    max_age_seconds: int = 300,
    jkt: Optional[str] = None,
    replay: Optional["TokenManager"] = None,
    now: Optional[int] = None,
) -> "DPoPProof":
    """Verifies a DPoP proof (RFC 9449) for the request ``htm`` ``htu``.

    Checks ``typ`` (``dpop+jwt``), an asymmetric ``alg``, the public ``jwk``
    header and the signature by it, ``htm``, ``htu`` (without query and
    fragment, scheme and host case-insensitive), ``iat`` (at most
    ``max_age_seconds`` old, 5 s ahead), ``nonce`` (when the server gave
    one), ``ath`` (when ``access_token`` is given) and the key's thumbprint
    (when ``jkt``, the token's ``cnf.jkt``, is given). With ``replay`` (a
    manager), the proof's ``jti`` is claimed so the proof is accepted once
    in every process and host on its store; without it nothing stops a
    replay within ``max_age_seconds``. Returns the proof's ``jkt``, ``alg``,
    ``jwk``, ``jti``, ``iat``, ``htm``, ``htu``, ``ath`` and ``nonce``.
    """
    if replay is not None:
        if not isinstance(replay, _native.TokenManager):
            raise TypeError(
                "replay: a TokenManager (with an AsyncTokenManager, await atm.verify_dpop_proof(...))"
            )
        if now is not None:
            raise InvalidArgumentError(
                "INVALID_ARGUMENT: now cannot be given with replay (the manager's clock is used)",
                "INVALID_ARGUMENT",
            )
        return replay.verify_dpop_proof(
            proof, htm=htm, htu=htu, access_token=access_token, nonce=nonce,
            max_age_seconds=max_age_seconds, jkt=jkt,
        )
    return _native.dpop_verify_proof(
        proof, htm=htm, htu=htu, access_token=access_token, nonce=nonce,
        max_age_seconds=max_age_seconds, jkt=jkt, now=now,
    )


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK: what ``cnf.jkt`` holds."""
    return _native.jwk_thumbprint(jwk)


def cert_thumbprint(cert: Union[str, bytes, bytearray, memoryview]) -> str:
    """The RFC 8705 thumbprint of a client certificate (PEM, DER, or PEM
    percent-encoded as a proxy forwards it): what ``cnf["x5t#S256"]`` holds."""
    return _native.cert_thumbprint(cert)


def token_binding(
    claims: Mapping[str, Any],
    *,
    client_cert: Optional[Union[str, bytes, bytearray, memoryview]] = None,
    proof_given: bool = False,
) -> Optional[str]:
    """The binding rule for claims verified by any verifier (a ``JwtVerifier``,
    a ``PyJWKClient``): raises ``CertificateBindingError`` for a
    certificate-bound token without that ``client_cert`` and
    ``DPoPBindingError`` for a key-bound one when no proof is given; returns
    the ``jkt`` a given DPoP proof must be made with (None: unbound)."""
    return _native.token_binding(claims, client_cert=client_cert, proof_given=proof_given)


def access_token_hash(access_token: str) -> str:
    """The ``ath`` a DPoP proof carries for ``access_token``:
    base64url(SHA-256(token))."""
    import base64
    import hashlib

    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
