"""JWT verification and signing with the PyJWT calling convention.

``decode`` and ``encode`` take the arguments PyJWT takes for the common
subset, and raise exceptions with PyJWT's names (``ExpiredSignatureError``,
``InvalidAudienceError``... all under ``InvalidTokenError`` and our
``IronTokenError``), so code using PyJWT switches by changing an import.
Differences, on purpose:

- ``algorithms`` is required; ``none`` is never accepted; the signature is
  always verified (``options={"verify_signature": False}`` is refused);
- ``exp`` and ``sub`` are required unless ``options["require"]`` lists the
  required claims explicitly;
- a ``kid`` not in the keyring is an error, never a fallback to another key.

For many tokens with the same key, build a :class:`JwtVerifier` once: its
key and policy are parsed a single time.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from . import _native
from .errors import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidArgumentError,
    InvalidAudienceError,
    InvalidClaimError,
    InvalidIssuerError,
    InvalidKeyMaterialError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    JWTError,
    KeyNotFoundInKeyringError,
    MissingRequiredClaimError,
    UnsupportedHeaderError,
)

__all__ = [
    "JwtSigner",
    "JwtVerifier",
    "decode",
    "decode_complete",
    "encode",
    "verify_jws",
    "DecodeError",
    "ExpiredSignatureError",
    "ImmatureSignatureError",
    "InvalidAlgorithmError",
    "InvalidAudienceError",
    "InvalidClaimError",
    "InvalidIssuerError",
    "InvalidKeyMaterialError",
    "InvalidSignatureError",
    "InvalidSubjectError",
    "InvalidTokenError",
    "JWTError",
    "KeyNotFoundInKeyringError",
    "MissingRequiredClaimError",
    "UnsupportedHeaderError",
]

Key = Union[str, bytes]


def _policy(
    algorithms: Optional[Iterable[str]],
    options: Optional[Mapping[str, Any]],
    audience: Optional[Union[str, Iterable[str]]],
    issuer: Optional[str],
    subject: Optional[str],
    leeway: Union[int, float, datetime.timedelta],
    max_token_bytes: Optional[int] = None,
) -> str:
    if not algorithms:
        raise InvalidArgumentError(
            "INVALID_ARGUMENT: pass the accepted algorithms, e.g. algorithms=['RS256']", "INVALID_ARGUMENT"
        )
    opts = dict(options or {})
    if opts.pop("verify_signature", True) is not True:
        raise InvalidArgumentError(
            "INVALID_ARGUMENT: irontoken always verifies signatures", "INVALID_ARGUMENT"
        )
    if isinstance(leeway, datetime.timedelta):
        leeway = leeway.total_seconds()
    policy: Dict[str, Any] = {"algorithms": list(algorithms), "leeway": int(leeway)}
    if issuer is not None:
        policy["issuer"] = issuer
    if audience is not None:
        policy["audience"] = [audience] if isinstance(audience, str) else list(audience)
    if subject is not None:
        policy["subject"] = subject
    if "require" in opts:
        required: List[str] = list(opts.pop("require"))
        policy["required"] = required
        policy["require_exp"] = "exp" in required
        policy["require_sub"] = "sub" in required
    for flag in ("verify_exp", "verify_nbf", "verify_iat"):
        if flag in opts:
            policy[flag] = bool(opts.pop(flag))
    for flag in ("require_exp", "require_sub"):
        if flag in opts:
            policy[flag] = bool(opts.pop(flag))
    if max_token_bytes is not None:
        policy["max_token_bytes"] = max_token_bytes
    if opts:
        raise InvalidArgumentError(
            f"INVALID_ARGUMENT: unsupported options {sorted(opts)}", "INVALID_ARGUMENT"
        )
    return json.dumps(policy)


class JwtVerifier:
    """A key (or keyring) and a policy, parsed once, for many tokens."""

    def __init__(
        self,
        key: Key,
        algorithms: Iterable[str],
        *,
        options: Optional[Mapping[str, Any]] = None,
        audience: Optional[Union[str, Iterable[str]]] = None,
        issuer: Optional[str] = None,
        subject: Optional[str] = None,
        leeway: Union[int, float, datetime.timedelta] = 0,
        max_token_bytes: Optional[int] = None,
    ) -> None:
        policy = _policy(algorithms, options, audience, issuer, subject, leeway, max_token_bytes)
        self._native = _native.JwtVerifier(key, policy)

    def decode_complete(self, token: str, *, now: Optional[int] = None) -> Dict[str, Any]:
        """Verifies ``token``; returns ``{"header": ..., "payload": ...}``."""
        header, claims = self._native.decode_complete(token, now)
        return {"header": header, "payload": claims}

    def decode(self, token: str, *, now: Optional[int] = None) -> Dict[str, Any]:
        """Verifies ``token``; returns its claims."""
        return self._native.decode(token, now)

    def verify_jws(self, token: str) -> bytes:
        """Verifies a compact JWS (signature and header only); returns the payload bytes."""
        _header, payload = self._native.verify_jws(token)
        return bytes(payload)

    def __repr__(self) -> str:
        return "JwtVerifier(...)"


def _claims_json(payload: Mapping[str, Any]) -> str:
    claims = dict(payload)
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if isinstance(value, datetime.datetime):
            claims[name] = int(value.timestamp())
    return json.dumps(claims, separators=(",", ":"))


class JwtSigner:
    """A signing key (PEM private key or HMAC secret) and algorithm, parsed once."""

    def __init__(self, key: Key, algorithm: str = "HS256", *, kid: Optional[str] = None) -> None:
        self._native = _native.JwtSigner(key, algorithm, kid)

    def sign(self, payload: Mapping[str, Any], headers: Optional[Mapping[str, Any]] = None) -> str:
        """Signs ``payload`` into a compact JWT (``headers``: extra header parameters)."""
        return self._native.sign(_claims_json(payload), json.dumps(dict(headers)) if headers else None)

    def __repr__(self) -> str:
        return "JwtSigner(...)"


def decode_complete(
    jwt: str,
    key: Key,
    algorithms: Optional[Iterable[str]] = None,
    options: Optional[Mapping[str, Any]] = None,
    audience: Optional[Union[str, Iterable[str]]] = None,
    issuer: Optional[str] = None,
    subject: Optional[str] = None,
    leeway: Union[int, float, datetime.timedelta] = 0,
    *,
    now: Optional[int] = None,
) -> Dict[str, Any]:
    """Verifies ``jwt`` with ``key``; returns ``{"header": ..., "payload": ...}``."""
    policy = _policy(algorithms, options, audience, issuer, subject, leeway)
    header, claims = _native.jwt_decode(jwt, key, policy, now)
    return {"header": header, "payload": claims}


def decode(
    jwt: str,
    key: Key,
    algorithms: Optional[Iterable[str]] = None,
    options: Optional[Mapping[str, Any]] = None,
    audience: Optional[Union[str, Iterable[str]]] = None,
    issuer: Optional[str] = None,
    subject: Optional[str] = None,
    leeway: Union[int, float, datetime.timedelta] = 0,
    *,
    now: Optional[int] = None,
) -> Dict[str, Any]:
    """Verifies ``jwt`` with ``key`` (PEM, JWK, JWKS, or HMAC secret); returns its claims."""
    return decode_complete(jwt, key, algorithms, options, audience, issuer, subject, leeway, now=now)["payload"]


def verify_jws(token: str, key: Key, algorithms: Iterable[str]) -> bytes:
    """Verifies a compact JWS (e.g. a signed webhook body); returns the payload bytes."""
    return JwtVerifier(key, algorithms, options={"require": []}).verify_jws(token)


def encode(
    payload: Mapping[str, Any],
    key: Key,
    algorithm: str = "HS256",
    headers: Optional[Mapping[str, Any]] = None,
) -> str:
    """Signs ``payload`` into a compact JWT. ``headers`` may carry ``kid`` and extra parameters."""
    extra = dict(headers or {})
    kid = extra.pop("kid", None)
    extra.pop("alg", None)
    if extra.get("typ") == "JWT":
        extra.pop("typ")
    return _native.jwt_encode(
        _claims_json(payload),
        key,
        algorithm,
        json.dumps(extra) if extra else None,
        kid,
    )
