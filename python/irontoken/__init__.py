"""irontoken: API keys with rotation, expiry, revocation and an audit trail,
JWTs, sessions, usage records, quotas, rate limits and agent budgets, from
one Rust core shared with Node.js and C.

>>> from irontoken import TokenManager
>>> tm = TokenManager(":memory:")
>>> created = tm.create_key("alice", scopes=["read"])
>>> tm.verify_key(created.key, ["read"]).valid
True
"""

from ._native import (
    SCHEMA_VERSION,
    AuditEntry,
    CreatedKey,
    KeyRecord,
    PageResult,
    RateDecision,
    RateLimiter,
    TokenManager,
    VerifyResult,
    __version__,
    is_well_formed,
)
from .errors import (
    AgentTokenRevokedError,
    BusyError,
    ConflictError,
    InternalError,
    InvalidArgumentError,
    InvalidKeyError,
    IronTokenError,
    KeyDisabledError,
    KeyExpiredError,
    KeyMalformedError,
    KeyNotFoundError,
    KeyRevokedError,
    NotFoundError,
    RateLimitedError,
    SchemaTooNewError,
    DatabaseCorruptError,
    DatabaseNotFoundError,
    MasterKeyMismatchError,
    SessionEndedError,
    SessionError,
    SessionExpiredError,
    SessionNotFoundError,
    StorageError,
    UsageExceededError,
)

__all__ = [
    "SCHEMA_VERSION",
    "AgentTokenRevokedError",
    "AuditEntry",
    "BusyError",
    "ConflictError",
    "CreatedKey",
    "InternalError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "IronTokenError",
    "KeyDisabledError",
    "KeyExpiredError",
    "KeyMalformedError",
    "KeyNotFoundError",
    "KeyRecord",
    "KeyRevokedError",
    "NotFoundError",
    "PageResult",
    "RateLimitedError",
    "RateDecision",
    "RateLimiter",
    "SchemaTooNewError",
    "DatabaseCorruptError",
    "DatabaseNotFoundError",
    "MasterKeyMismatchError",
    "SessionEndedError",
    "SessionError",
    "SessionExpiredError",
    "SessionNotFoundError",
    "StorageError",
    "UsageExceededError",
    "TokenManager",
    "VerifyResult",
    "__version__",
    "is_well_formed",
]
