"""The exception hierarchy of irontoken, declared once.

Every exception has a stable ``.code`` (the same string as the C ABI's
``itk_status_code`` and Node's ``err.code``). Messages never contain a key.
"""

from __future__ import annotations

from typing import Dict, Type

__all__ = [
    "IronTokenError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "InvalidKeyError",
    "KeyMalformedError",
    "KeyDisabledError",
    "KeyRevokedError",
    "KeyExpiredError",
    "ConflictError",
    "StorageError",
    "BusyError",
    "SchemaTooNewError",
    "DatabaseCorruptError",
    "DatabaseNotFoundError",
    "InternalError",
    "PyJWTError",
    "JWTError",
    "InvalidTokenError",
    "PyJWKError",
    "PyJWKSetError",
    "PyJWKClientError",
    "PyJWKClientConnectionError",
    "DecodeError",
    "InvalidSignatureError",
    "ExpiredSignatureError",
    "ImmatureSignatureError",
    "InvalidAlgorithmError",
    "InvalidAudienceError",
    "InvalidIssuerError",
    "InvalidSubjectError",
    "MissingRequiredClaimError",
    "InvalidClaimError",
    "TokenReplayedError",
    "RefreshTokenError",
    "RefreshTokenReusedError",
    "RefreshTokenInvalidError",
    "RefreshTokenExpiredError",
    "RefreshTokenRevokedError",
    "DPoPError",
    "DPoPProofError",
    "DPoPNonceRequiredError",
    "DPoPProofReplayedError",
    "DPoPBindingError",
    "CertificateBindingError",
    "KeyNotFoundInKeyringError",
    "UnsupportedHeaderError",
    "InvalidKeyMaterialError",
    "MasterKeyRequiredError",
    "NoActiveSigningKeyError",
    "MasterKeyMismatchError",
    "CapabilityMalformedError",
    "CapabilitySealedError",
    "SessionError",
    "SessionFingerprintMismatchError",
    "SessionLimitExceededError",
    "ModelNotAllowedError",
    "RequestTooLargeError",
    "SessionNotFoundError",
    "SessionExpiredError",
    "SessionEndedError",
    "RateLimitedError",
    "UsageExceededError",
    "NotFoundError",
    "AgentTokenRevokedError",
]


class IronTokenError(Exception):
    """Base class of every irontoken error; ``.code`` is the stable code."""

    code: str = "INTERNAL"
    #: The JWT claim a refusal is about (``exp``, ``aud``, a required
    #: claim...), as PyJWT's ``MissingRequiredClaimError.claim``; else None.
    claim: str | None = None

    def __init__(self, message: str, code: str | None = None, claim: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if claim is not None:
            self.claim = claim
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidArgumentError(IronTokenError, ValueError):
    """An argument was missing, malformed, too long or out of range."""

    code = "INVALID_ARGUMENT"


class KeyNotFoundError(IronTokenError, LookupError):
    """No API key with that id exists."""

    code = "KEY_NOT_FOUND"


class InvalidKeyError(IronTokenError):
    """The key exists but its state forbids the operation."""


class KeyMalformedError(InvalidKeyError):
    """The string is not an API key of our format."""

    code = "KEY_MALFORMED"


class KeyDisabledError(InvalidKeyError):
    """The key is disabled."""

    code = "KEY_DISABLED"


class KeyRevokedError(InvalidKeyError):
    """The key was revoked (permanent)."""

    code = "KEY_REVOKED"


class KeyExpiredError(InvalidKeyError):
    """The key is past its expiry."""

    code = "KEY_EXPIRED"


class ConflictError(IronTokenError):
    """The operation conflicts with the current state (e.g. key already rotated)."""

    code = "CONFLICT"


class StorageError(IronTokenError):
    """The database failed."""

    code = "STORAGE"


class BusyError(StorageError):
    """The database stayed locked by another writer beyond the busy timeout."""

    code = "BUSY"


class SchemaTooNewError(StorageError):
    """The database was written by a newer irontoken."""

    code = "SCHEMA_TOO_NEW"


class DatabaseCorruptError(StorageError):
    """The database file is damaged (run ``irontoken doctor``); nothing is written to it."""

    code = "DATABASE_CORRUPT"


class DatabaseNotFoundError(StorageError, FileNotFoundError):
    """No irontoken database at the path, and ``create=False`` was given."""

    code = "DATABASE_NOT_FOUND"


class InternalError(IronTokenError):
    """A bug in irontoken."""

    code = "INTERNAL"


class PyJWTError(IronTokenError):
    """Base of every JWT error, token or key (PyJWT's ``PyJWTError``)."""


class JWTError(PyJWTError):
    """Base of the errors of JWT verification (PyJWT: InvalidTokenError)."""


class DecodeError(JWTError):
    """Not a well-formed token."""

    code = "JWT_MALFORMED"


class InvalidSignatureError(DecodeError):
    """The signature does not match."""

    code = "JWT_BAD_SIGNATURE"


class ExpiredSignatureError(JWTError):
    """`exp` has passed."""

    code = "JWT_EXPIRED"


class ImmatureSignatureError(JWTError):
    """`nbf` or `iat` is in the future."""

    code = "JWT_NOT_YET_VALID"


class InvalidAlgorithmError(JWTError):
    """`alg` is none, not allowed, or does not fit the key."""

    code = "JWT_ALG_NOT_ALLOWED"


class InvalidAudienceError(JWTError):
    """`aud` does not match."""

    code = "JWT_INVALID_AUDIENCE"


class InvalidIssuerError(JWTError):
    """`iss` does not match."""

    code = "JWT_INVALID_ISSUER"


class InvalidSubjectError(JWTError):
    """`sub` does not match."""

    code = "JWT_INVALID_SUBJECT"


class MissingRequiredClaimError(JWTError):
    """A required claim is absent."""

    code = "JWT_MISSING_CLAIM"


class InvalidClaimError(JWTError):
    """A registered claim has the wrong type."""

    code = "JWT_INVALID_CLAIM"


class TokenReplayedError(JWTError):
    """The token's ``jti`` was already accepted once (``require_fresh_jti``)."""

    code = "JWT_REPLAYED"


class KeyNotFoundInKeyringError(JWTError):
    """No key matches the token's `kid`."""

    code = "JWT_KEY_NOT_FOUND"


class UnsupportedHeaderError(JWTError):
    """The header uses `crit` or `b64: false`."""

    code = "JWT_UNSUPPORTED_HEADER"


class InvalidKeyMaterialError(PyJWTError, ValueError):
    """Key material is unparsable, unsupported, too weak, or used the wrong
    way (a public key as an HMAC secret). ``irontoken.jwt.InvalidKeyError``
    is this class, as PyJWT names it."""

    code = "INVALID_KEY_MATERIAL"


class PyJWKError(InvalidKeyMaterialError):
    """A JWK cannot be used (PyJWT's ``PyJWKError``)."""


class PyJWKSetError(PyJWKError):
    """A JWKS holds no usable key (PyJWT's ``PyJWKSetError``)."""


class PyJWKClientError(PyJWTError):
    """A remote JWKS gave no key for the token (PyJWT's ``PyJWKClientError``)."""

    code = "JWT_KEY_NOT_FOUND"


class PyJWKClientConnectionError(PyJWKClientError):
    """A remote JWKS could not be fetched (PyJWT's ``PyJWKClientConnectionError``)."""

    code = "JWKS_FETCH_FAILED"


class _MissingAlgorithmsError(DecodeError, InvalidArgumentError):
    """``algorithms`` was not given (PyJWT raises DecodeError)."""

    code = "INVALID_ARGUMENT"


class MasterKeyRequiredError(IronTokenError):
    """Managed signing keys need a master key (``master_key`` or IRONTOKEN_MASTER_KEY)."""

    code = "MASTER_KEY_REQUIRED"


class MasterKeyMismatchError(IronTokenError):
    """The master key does not open this database's signing keys; nothing was written."""

    code = "MASTER_KEY_MISMATCH"


class CapabilityMalformedError(IronTokenError, ValueError):
    """Not a capability token: bad encoding, over the size or block bound."""

    code = "CAPABILITY_MALFORMED"


class CapabilitySealedError(IronTokenError):
    """The capability token is sealed: no block can be appended."""

    code = "CAPABILITY_SEALED"


class NoActiveSigningKeyError(IronTokenError):
    """No active managed signing key: generate one first."""

    code = "NO_ACTIVE_SIGNING_KEY"


class SessionError(IronTokenError):
    """A session cannot be used."""


class SessionFingerprintMismatchError(SessionError):
    """The session is bound to another fingerprint than the one presented
    (a session id used from another client)."""

    code = "SESSION_FINGERPRINT_MISMATCH"


class SessionLimitExceededError(SessionError):
    """The owner has as many live sessions as ``max_concurrent`` allows."""

    code = "SESSION_LIMIT_EXCEEDED"


class ModelNotAllowedError(IronTokenError):
    """The API key may not call the model the request names (its ``models``)."""

    code = "MODEL_NOT_ALLOWED"


class RequestTooLargeError(IronTokenError):
    """The request declares more tokens than the API key allows at once
    (``max_tokens_per_request``, or the burst of one of its token limits)."""

    code = "REQUEST_TOO_LARGE"


class SessionNotFoundError(SessionError, LookupError):
    """No session with that id exists."""

    code = "SESSION_NOT_FOUND"


class SessionExpiredError(SessionError):
    """The session is past its absolute or idle expiry."""

    code = "SESSION_EXPIRED"


class SessionEndedError(SessionError):
    """The session was ended."""

    code = "SESSION_ENDED"


class RateLimitedError(IronTokenError):
    """A rate limit refused the request; retry later."""

    code = "RATE_LIMITED"


class UsageExceededError(IronTokenError):
    """A quota, credit balance or budget has not enough left."""

    code = "USAGE_EXCEEDED"


class NotFoundError(IronTokenError, LookupError):
    """No quota, reservation, budget, lease or agent token with that id."""

    code = "NOT_FOUND"


class AgentTokenRevokedError(IronTokenError):
    """The agent token was revoked (or replaced by a newer one)."""

    code = "AGENT_TOKEN_REVOKED"


class RefreshTokenError(IronTokenError):
    """A refresh token was refused (the base of the four below); the client
    signs in again."""


class RefreshTokenReusedError(RefreshTokenError):
    """A spent refresh token was presented again: its whole family is
    revoked (reuse detection), so a thief and the client both lose it."""

    code = "REFRESH_TOKEN_REUSED"


class RefreshTokenInvalidError(RefreshTokenError):
    """Not a refresh token this store issued (malformed or unknown)."""

    code = "REFRESH_TOKEN_INVALID"


class RefreshTokenExpiredError(RefreshTokenError):
    """The refresh token (idle timeout) or its family (absolute lifetime)
    is past its lifetime."""

    code = "REFRESH_TOKEN_EXPIRED"


class RefreshTokenRevokedError(RefreshTokenError):
    """The refresh token's family was revoked."""

    code = "REFRESH_TOKEN_REVOKED"


class DPoPError(JWTError):
    """A DPoP proof (RFC 9449) was refused (the base of the four below)."""


class DPoPProofError(DPoPError):
    """The DPoP proof is not valid (the message says which check failed)."""

    code = "DPOP_PROOF_INVALID"


class DPoPNonceRequiredError(DPoPError):
    """The proof lacks the server's current nonce: answer 401 with a new ``DPoP-Nonce`` header."""

    code = "DPOP_NONCE_REQUIRED"


class DPoPProofReplayedError(DPoPError):
    """The proof's ``jti`` was accepted once already (a replayed proof)."""

    code = "DPOP_PROOF_REPLAYED"


class DPoPBindingError(DPoPError):
    """The access token is bound to another key than the proof's (``cnf.jkt``), or a bound token came without a proof."""

    code = "DPOP_BINDING_MISMATCH"


class CertificateBindingError(JWTError):
    """The access token is bound to a client certificate (``cnf["x5t#S256"]``,
    RFC 8705) other than the one presented, or none was presented."""

    code = "MTLS_BINDING_MISMATCH"


InvalidTokenError = JWTError


_BY_CODE: Dict[str, Type[IronTokenError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        KeyNotFoundError,
        KeyMalformedError,
        KeyDisabledError,
        KeyRevokedError,
        KeyExpiredError,
        ConflictError,
        StorageError,
        BusyError,
        SchemaTooNewError,
        InternalError,
        DecodeError,
        InvalidSignatureError,
        ExpiredSignatureError,
        ImmatureSignatureError,
        InvalidAlgorithmError,
        InvalidAudienceError,
        InvalidIssuerError,
        InvalidSubjectError,
        MissingRequiredClaimError,
        InvalidClaimError,
        TokenReplayedError,
        KeyNotFoundInKeyringError,
        UnsupportedHeaderError,
        InvalidKeyMaterialError,
        MasterKeyRequiredError,
        NoActiveSigningKeyError,
        SessionNotFoundError,
        SessionExpiredError,
        SessionEndedError,
        SessionFingerprintMismatchError,
        SessionLimitExceededError,
        ModelNotAllowedError,
        RequestTooLargeError,
        RateLimitedError,
        UsageExceededError,
        NotFoundError,
        AgentTokenRevokedError,
        PyJWKClientConnectionError,
        DatabaseCorruptError,
        DatabaseNotFoundError,
        MasterKeyMismatchError,
        CapabilityMalformedError,
        CapabilitySealedError,
        RefreshTokenReusedError,
        RefreshTokenInvalidError,
        RefreshTokenExpiredError,
        RefreshTokenRevokedError,
        DPoPProofError,
        DPoPNonceRequiredError,
        DPoPProofReplayedError,
        DPoPBindingError,
        CertificateBindingError,
    )
}


def _from_native(code: str, message: str, claim: str | None = None) -> IronTokenError:
    """Builds the exception for a core error (called by the native module);
    ``claim`` is the JWT claim it is about, given as data by core."""
    cls = _BY_CODE.get(code, IronTokenError)
    return cls(f"{code}: {message}", code, claim)
