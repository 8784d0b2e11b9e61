"""Type stubs of the native module (checked against it by mypy.stubtest in `make test`)."""

from typing import (
    Any,
    Dict,
    Generic,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    final,
)

__all__ = [
    "SCHEMA_VERSION",
    "AuditEntry",
    "CreatedKey",
    "KeyRecord",
    "PageResult",
    "TokenManager",
    "VerifyResult",
    "__version__",
    "is_credential_param",
    "may_be_legacy",
    "request_id_from_header",
    "verify_webhook_signature",
    "http_api_key_answer",
    "http_bearer_answer",
    "http_status_of",
    "http_capability_answer",
    "http_dpop_answer",
    "http_llm_body_fields",
    "http_llm_request",
    "is_well_formed",
    "JwtVerifier",
    "JwtSigner",
    "RateDecision",
    "RateLimiter",
    "jwt_decode",
    "jwt_encode",
    "jwt_unverified",
    "dpop_verify_proof",
    "jwk_thumbprint",
    "cert_thumbprint",
    "token_binding",
    "Jwk",
    "RemoteJwks",
    "Authorization",
    "attenuate",
    "seal",
    "inspect_capability",
]

__version__: str
SCHEMA_VERSION: int

_KeyStatus = Literal["active", "disabled", "revoked", "expired"]
# An API key as text or as the raw bytes of a header (not UTF-8: refused as MALFORMED).
_ApiKey = str | bytes | bytearray
_VerifyReason = Literal[
    "VALID",
    "MALFORMED",
    "NOT_FOUND",
    "DISABLED",
    "REVOKED",
    "EXPIRED",
    "INSUFFICIENT_SCOPE",
    "RATE_LIMITED",
    "USAGE_EXCEEDED",
    "MODEL_NOT_ALLOWED",
    "REQUEST_TOO_LARGE",
]
from .types import (
    AlertSettings,
    OwnerPolicy,
    AgentClaims,
    AgentToken,
    Amounts,
    Budget,
    Event,
    Lease,
    CapabilityInfo,
    CapabilityRoot,
    Quota,
    QuotaDecision,
    RateLimitSpec,
    Recorded,
    Reserved,
    Session,
    Stats,
    DPoPProof,
    TokenFamily,
    TokenPair,
    UsageRecord,
    UsageTotals,
    _Metric,
    _Period,
    _Scope,
    _SessionStatus,
)

_T = TypeVar("_T")

def request_id_from_header(value: str) -> Optional[str]:
    """The request id a client header carries, if a usage report takes it as is (1-128 visible ASCII characters); else None."""
    ...

def verify_webhook_signature(
    secret: "str | bytes",
    header: str,
    body: "str | bytes",
    *,
    now: Optional[int] = None,
    tolerance_seconds: int = 300,
) -> None:
    """Checks an alert webhook's Irontoken-Signature header against the raw body and the secret
    (HMAC-SHA256, time within tolerance_seconds); raises InvalidArgumentError otherwise."""
    ...

# An HTTP answer: (status, code, message, headers in order); code and
# message are None when admitted (status 200).
_HttpAnswer = Tuple[int, Optional[str], Optional[str], Dict[str, str]]

def http_api_key_answer(header: str, scopes: Sequence[str], outcome: Mapping[str, Any]) -> _HttpAnswer:
    """An API-key guard's answer (core's irontoken::http): `outcome` holds `reason`, the key's `limits`, the `rate_limit` check's answer, `quota_reset_at` and `now`."""
    ...

def http_bearer_answer(code: str, scopes: Sequence[str]) -> _HttpAnswer:
    """A Bearer-JWT guard's answer for the code its verification ended with (VALID, MISSING, JWT_*, INSUFFICIENT_SCOPE; anything else 503)."""
    ...

def http_dpop_answer(code: str, scopes: List[str], nonce: Optional[str] = None) -> _HttpAnswer:
    """A DPoP guard's answer (RFC 9449 WWW-Authenticate: DPoP; a DPoP-Nonce header with use_dpop_nonce)."""
    ...
def http_capability_answer(reason: str) -> _HttpAnswer:
    """A capability guard's answer for an authorization's reason (or MISSING)."""
    ...
def http_llm_body_fields() -> List[str]:
    """The JSON body fields an LLM guard reads: the model, then the token fields in order."""
    ...
def http_llm_request(
    body: Optional[Any], model_source: str, model: Any, tokens_source: str, tokens: Any
) -> Tuple[Optional[_HttpAnswer], Optional[str], Optional[int]]:
    """What an LLM request declares (each source "" not checked, "body", or "value"):
    (None, model, tokens), or the 400 answer refusing it and (None, None)."""
    ...

def http_status_of(code: str) -> int:
    """The HTTP status of an error code for an application's own routes (500 for an unknown code)."""
    ...

def may_be_legacy(key: str, reason: str) -> bool:
    """Whether a key refused with `reason` may be a key of the old system (unknown here, a legacy key's shape, not irontoken's format)."""
    ...

def is_credential_param(name: str, value: str, header: str) -> bool:
    """Whether a query parameter looks like a credential (its name, or a value shaped like a key or a JWT)."""
    ...

def is_well_formed(key: _ApiKey) -> bool:
    """True if `key` has the shape and checksum of an irontoken key (no database lookup)."""

@final
class KeyRecord:
    """The stored record of an API key (never the key itself)."""

    @property
    def id(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def display_prefix(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def scopes(self) -> List[str]: ...
    @property
    def metadata(self) -> Dict[str, Any]: ...
    @property
    def created_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...
    @property
    def expires_at(self) -> Optional[int]: ...
    @property
    def last_used_at(self) -> Optional[int]: ...
    @property
    def usage_count(self) -> int: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def revoked_at(self) -> Optional[int]: ...
    @property
    def revoked_reason(self) -> Optional[str]: ...
    @property
    def version(self) -> int: ...
    @property
    def rotated_from(self) -> Optional[str]: ...
    @property
    def rotated_to(self) -> Optional[str]: ...
    @property
    def rate_limits(self) -> List[RateLimitSpec]: ...
    @property
    def rotation_period(self) -> Optional[int]: ...
    @property
    def models(self) -> List[str]:
        """Models the key may call (wildcard patterns such as "gpt-4o*"; empty: any)."""
        ...
    @property
    def max_tokens_per_request(self) -> Optional[int]:
        """Most tokens one request may declare (None: no limit)."""
        ...
    @property
    def status(self) -> _KeyStatus: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def keys(self) -> List[str]:
        """The field names: `dict(record)` is `to_dict()` (FastAPI returns records as JSON)."""
        ...
    def __getitem__(self, name: str, /) -> Any: ...
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any, /) -> Any:
        """pydantic and FastAPI response models: serialized as `to_dict()`."""
        ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class CreatedKey:
    """A key just created or rotated. `.key` is the plaintext, available only now."""

    @property
    def key(self) -> str: ...
    @property
    def record(self) -> KeyRecord: ...
    def to_dict(self) -> Dict[str, Any]:
        """`{"key": ..., "record": {...}}`, the plaintext included (to return it to its owner, once)."""
        ...
    def keys(self) -> List[str]: ...
    def __getitem__(self, name: str, /) -> Any: ...
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any, /) -> Any: ...

@final
class VerifyResult:
    """The answer of `verify_key`; truthy when valid."""

    @property
    def valid(self) -> bool: ...
    @property
    def reason(self) -> _VerifyReason: ...
    @property
    def record(self) -> Optional[KeyRecord]: ...
    @property
    def rate_limit(self) -> Optional[Dict[str, Any]]: ...
    @property
    def quota(self) -> Optional[QuotaDecision]: ...
    def __bool__(self) -> bool: ...

@final
class AuditEntry:
    """One entry of the audit trail."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> int: ...
    @property
    def action(self) -> str: ...
    @property
    def key_id(self) -> Optional[str]: ...
    @property
    def display_prefix(self) -> Optional[str]: ...
    @property
    def actor(self) -> Optional[str]: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> Optional[Dict[str, Any]]: ...

@final
class PageResult(Generic[_T]):
    """A page of results; pass `next_cursor` as `cursor` for the next page."""

    @property
    def items(self) -> List[_T]: ...
    @property
    def next_cursor(self) -> Optional[str]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[_T]: ...

@final
class TokenManager:
    """Opened on a SQLite path, ":memory:", a sqlite:// URL or a postgresql:// URL; thread-safe; usable as a context manager."""

    def __new__(
        cls,
        path: str,
        *,
        durability: Optional[Literal["full", "normal"]] = None,
        busy_timeout_ms: Optional[int] = None,
        flush_interval_ms: Optional[int] = None,
        flush_threshold: Optional[int] = None,
        manual_clock_start: Optional[int] = None,
        master_key: Optional[str] = None,
        rsa_key_bits: Optional[Literal[2048, 3072]] = None,
        create: Optional[bool] = None,
        key_cache_size: Optional[int] = None,
        page_cache_mib: Optional[int] = None,
        mmap_mib: Optional[int] = None,
        rate_limit_store: Optional[str] = None,
        rate_limit_fail_open: Optional[bool] = None,
        rate_limit_timeout_ms: Optional[int] = None,
        strict: Optional[bool] = None,
        default_rotation_period: Optional[int] = None,
        storage_timeout_ms: Optional[int] = None,
        max_staleness_ms: Optional[int] = None,
        verify_fail_open: Optional[bool] = None,
        alerts: Optional[AlertSettings] = None,
    ) -> "TokenManager": ...
    @classmethod
    def from_env(cls, **options: Any) -> "TokenManager":
        """Opens the database IRONTOKEN_DB names; IRONTOKEN_RATE_LIMIT_STORE and IRONTOKEN_STORAGE_TIMEOUT_MS fill those options when not given."""
        ...
    def rate_limit(
        self, key: str, limits: Sequence[Mapping[str, Any]], *, peek: bool = False, cost: int = 1
    ) -> "RateDecision": ...
    def settle_tokens(self, key_id: str, estimated: int, actual: int) -> None:
        """Corrects the key's limits in tokens once a request's actual count is known:
        verify_key_with(tokens=estimated) counted `estimated`, the request used `actual`."""
        ...
    def create_key(
        self,
        owner: str,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        expires_at: Optional[int] = None,
        expires_in: Optional[int] = None,
        prefix: Optional[str] = None,
        rate_limits: Optional[Sequence[RateLimitSpec]] = None,
        rotation_period: Optional[int] = None,
        models: Optional[Sequence[str]] = None,
        max_tokens_per_request: Optional[int] = None,
        actor: Optional[str] = None,
    ) -> CreatedKey: ...
    def create_keys(self, requests: Sequence[Mapping[str, Any]]) -> List[CreatedKey]: ...
    def set_owner_policy(
        self,
        owner: str,
        *,
        models: Optional[Sequence[str]] = None,
        max_tokens_per_request: Optional[int] = None,
        actor: Optional[str] = None,
    ) -> OwnerPolicy:
        """Sets an owner's model policy (replacing any): every key of the owner is held to it as well as to its own."""
        ...
    def get_owner_policy(self, owner: str) -> Optional[OwnerPolicy]: ...
    def delete_owner_policy(self, owner: str, *, actor: Optional[str] = None) -> bool:
        """Removes an owner's model policy (audited); False if it had none."""
        ...
    def keys_due(self, limit: int = 100) -> List[KeyRecord]: ...
    def rotate_due(self, *, overlap_seconds: int = 0, actor: Optional[str] = None) -> List[CreatedKey]: ...
    def import_key(
        self,
        key: Optional[str] = None,
        *,
        key_hash: Optional[str] = None,
        owner: str,
        name: Optional[str] = None,
        description: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        expires_at: Optional[int] = None,
        display_prefix: Optional[str] = None,
        rate_limits: Optional[Sequence[RateLimitSpec]] = None,
        legacy_id: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> KeyRecord: ...
    def lift_tombstone(
        self, key: Optional[str] = None, *, key_hash: Optional[str] = None, actor: Optional[str] = None
    ) -> bool:
        """Lifts the tombstone a deleted key left, so it may be imported again (audited); False if none."""
        ...
    def import_keys(self, keys: Sequence[Mapping[str, Any]]) -> List[KeyRecord]: ...
    def verify_key(
        self, key: _ApiKey, required_scopes: Optional[Sequence[str]] = None
    ) -> VerifyResult: ...
    def try_verify_key(
        self, key: _ApiKey, required_scopes: Optional[Sequence[str]] = None
    ) -> Optional[VerifyResult]:
        """verify_key if no network round trip is needed (always on SQLite), else None."""
        ...
    def verify_key_now(
        self, key: _ApiKey, required_scopes: Optional[Sequence[str]] = None
    ) -> Optional[VerifyResult]:
        """Deprecated: the old name of try_verify_key (warns DeprecationWarning)."""
        ...
    def get_key(self, key_id: str) -> KeyRecord: ...
    def list_keys(
        self,
        *,
        owner: Optional[str] = None,
        status: Optional[_KeyStatus] = None,
        prefix: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> PageResult[KeyRecord]: ...
    def update_key(
        self,
        key_id: str,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        expires_at: Optional[int] = None,
        clear_expiry: bool = False,
        rate_limits: Optional[Sequence[RateLimitSpec]] = None,
        rotation_period: Optional[int] = None,
        clear_rotation_period: bool = False,
        models: Optional[Sequence[str]] = None,
        max_tokens_per_request: Optional[int] = None,
        clear_max_tokens_per_request: bool = False,
        actor: Optional[str] = None,
    ) -> KeyRecord: ...
    def disable_key(self, key_id: str, *, actor: Optional[str] = None) -> KeyRecord: ...
    def enable_key(self, key_id: str, *, actor: Optional[str] = None) -> KeyRecord: ...
    def revoke_key(
        self, key_id: str, *, reason: Optional[str] = None, actor: Optional[str] = None
    ) -> KeyRecord: ...
    def rotate_key(
        self,
        key_id: str,
        *,
        overlap_seconds: int = 0,
        expires_at: Optional[int] = None,
        actor: Optional[str] = None,
    ) -> CreatedKey: ...
    def delete_key(self, key_id: str, *, actor: Optional[str] = None) -> None: ...
    def list_audit(
        self,
        *,
        key_id: Optional[str] = None,
        action: Optional[str] = None,
        actor: Optional[str] = None,
        outcome: Optional[str] = None,
        since: Optional[int] = None,
        until: Optional[int] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> PageResult[AuditEntry]: ...
    def create_signing_key(self, algorithm: str, *, actor: Optional[str] = None) -> Dict[str, Any]: ...
    def rotate_signing_key(
        self,
        *,
        algorithm: Optional[str] = None,
        overlap_seconds: int = 0,
        actor: Optional[str] = None,
    ) -> Dict[str, Any]: ...
    def rotate_signing_key_if_due(
        self, every_seconds: int, *, overlap_seconds: int = 0, actor: Optional[str] = None
    ) -> Optional[Dict[str, Any]]: ...
    def retire_signing_key(self, kid: str, *, actor: Optional[str] = None) -> Dict[str, Any]: ...
    def list_signing_keys(self) -> List[Dict[str, Any]]: ...
    def jwks(self) -> Dict[str, Any]: ...
    def issue_jwt(self, claims: Dict[str, Any], *, ttl_seconds: Optional[int] = None) -> str: ...
    def verify_jwt(
        self,
        token: str,
        *,
        algorithms: Sequence[str],
        audience: Optional[Sequence[str]] = None,
        issuer: Optional[str] = None,
        subject: Optional[str] = None,
        leeway: int = 0,
        required: Optional[Sequence[str]] = None,
        require_exp: Optional[bool] = None,
        require_sub: Optional[bool] = None,
        require_fresh_jti: bool = False,
        dpop_proof: Optional[str] = None,
        htm: Optional[str] = None,
        htu: Optional[str] = None,
        dpop_nonce: Optional[str] = None,
        client_cert: Optional[str | bytes | bytearray | memoryview] = None,
    ) -> Dict[str, Any]: ...
    def verify_dpop_proof(
        self,
        proof: str,
        *,
        htm: str,
        htu: str,
        access_token: Optional[str] = None,
        nonce: Optional[str] = None,
        max_age_seconds: int = 300,
        jkt: Optional[str] = None,
    ) -> DPoPProof:
        """Verifies a DPoP proof (RFC 9449) for the request and accepts it once (its jti claimed on the store)."""
        ...
    def exchange_api_key(
        self,
        api_key: _ApiKey,
        *,
        required_scopes: Optional[Sequence[str]] = None,
        ttl_seconds: Optional[int] = None,
    ) -> Dict[str, Any]: ...
    def issue_token_pair(
        self,
        subject: str,
        *,
        scopes: Optional[Sequence[str]] = None,
        ttl_seconds: int = 900,
        refresh_ttl_seconds: Optional[int] = None,
        family_ttl_seconds: Optional[int] = None,
        claims: Optional[Mapping[str, Any]] = None,
        dpop_jkt: Optional[str] = None,
        cert_thumbprint: Optional[str] = None,
    ) -> TokenPair:
        """Starts a refresh-token family: an access JWT and a refresh token that gets the next pair once."""
        ...
    def refresh_token_pair(
        self,
        refresh_token: str,
        *,
        dpop_proof: Optional[str] = None,
        htm: Optional[str] = None,
        htu: Optional[str] = None,
        dpop_nonce: Optional[str] = None,
        client_cert: Optional[str | bytes | bytearray | memoryview] = None,
    ) -> TokenPair:
        """Spends the refresh token for the next pair; a spent one raises RefreshTokenReusedError and revokes its family."""
        ...
    def get_token_family(self, family_id: str) -> TokenFamily: ...
    def revoke_token_family(self, family_id: str, *, reason: Optional[str] = None) -> bool: ...
    def revoke_token_families(self, subject: str, *, reason: Optional[str] = None) -> int: ...
    def verify_key_with(
        self,
        key: _ApiKey,
        *,
        required_scopes: Optional[Sequence[str]] = None,
        rate_limit: bool = False,
        quota: Optional[Amounts] = None,
        tokens: Optional[int] = None,
        model: Optional[str] = None,
    ) -> VerifyResult:
        """Verifies a key and, in one call, checks its model policy (`model`: MODEL_NOT_ALLOWED;
        `tokens`: REQUEST_TOO_LARGE), applies its rate limits (limits in tokens count `tokens`)
        and consumes `quota`. A refusal for the key's state, scopes or policy consumes nothing."""
        ...
    def try_verify_key_with(
        self,
        key: _ApiKey,
        *,
        required_scopes: Optional[Sequence[str]] = None,
        rate_limit: bool = False,
        quota: Optional[Amounts] = None,
        tokens: Optional[int] = None,
        model: Optional[str] = None,
    ) -> Optional[VerifyResult]:
        """verify_key_with if no write or round trip is needed (no quota, no shared rate limit to apply), else None."""
        ...
    def verify_key_with_now(
        self,
        key: _ApiKey,
        *,
        required_scopes: Optional[Sequence[str]] = None,
        rate_limit: bool = False,
        quota: Optional[Amounts] = None,
    ) -> Optional[VerifyResult]:
        """Deprecated: the old name of try_verify_key_with (warns DeprecationWarning)."""
        ...
    def create_session(
        self,
        owner: str,
        *,
        key_id: Optional[str] = None,
        session_type: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        ttl_seconds: Optional[int] = None,
        idle_timeout_seconds: Optional[int] = None,
        fingerprint: Optional[str] = None,
        max_concurrent: Optional[int] = None,
        evict_oldest: bool = False,
    ) -> Session: ...
    def verify_session(self, session_id: str, *, fingerprint: Optional[str] = None) -> Session:
        """Checks a live session on a request (its fingerprint, if bound) and records the activity."""
        ...
    def rotate_session(self, session_id: str, *, fingerprint: Optional[str] = None) -> Session:
        """Replaces a live session by a new id; the old one is refused from now on."""
        ...
    def end_sessions(self, owner: str, *, reason: Optional[str] = None, except_session_id: Optional[str] = None) -> int: ...
    def get_session(self, session_id: str) -> Session: ...
    def touch_session(self, session_id: str) -> Session: ...
    def update_session(
        self,
        session_id: str,
        *,
        status: Optional[Literal["active", "paused"]] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Session: ...
    def end_session(self, session_id: str, *, reason: Optional[str] = None) -> Session: ...
    def list_sessions(
        self,
        *,
        owner: Optional[str] = None,
        session_type: Optional[str] = None,
        status: Optional[_SessionStatus] = None,
        key_id: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> PageResult[Session]: ...
    def cleanup_expired_sessions(self) -> int: ...
    def purge_sessions(self, older_than_seconds: int) -> int: ...
    def record_usage(
        self,
        *,
        request_id: Optional[str] = None,
        key_id: Optional[str] = None,
        session_id: Optional[str] = None,
        model: Optional[str] = None,
        model_version: Optional[str] = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        requests: Optional[int] = None,
        cost_micros: int = 0,
        metadata: Optional[Dict[str, Any]] = None,
        at: Optional[int] = None,
    ) -> Recorded: ...
    def usage_summary(
        self,
        *,
        since: Optional[int] = None,
        until: Optional[int] = None,
        key_id: Optional[str] = None,
        owner: Optional[str] = None,
        model: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        group_by: Optional[Sequence[str]] = None,
    ) -> List[UsageTotals]: ...
    def stats(self, *, window_seconds: int = 86400, top: int = 10) -> Stats:
        """Keys by state and owner, use over the last window_seconds, the top owners, keys (by requests) and quotas (most spent)."""
        ...
    def export_usage(
        self,
        *,
        since: Optional[int] = None,
        until: Optional[int] = None,
        key_id: Optional[str] = None,
        owner: Optional[str] = None,
        model: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> PageResult[UsageRecord]: ...
    def set_quota(
        self,
        subject: str,
        *,
        metric: _Metric,
        period: _Period,
        limit: int,
        scope: _Scope = "key",
        refill_amount: Optional[int] = None,
        refill_period: Optional[Literal["day", "month"]] = None,
        actor: Optional[str] = None,
    ) -> Quota: ...
    def delete_quota(
        self,
        subject: str,
        *,
        metric: _Metric,
        period: _Period,
        scope: _Scope = "key",
        actor: Optional[str] = None,
    ) -> None: ...
    def list_quotas(self, subject: str, *, scope: _Scope = "key") -> List[Quota]: ...
    def add_credits(
        self, subject: str, amount: int, *, metric: _Metric, scope: _Scope = "key"
    ) -> Quota: ...
    def consume_quota(
        self, key_id: str, *, requests: int = 0, tokens: int = 0, cost_micros: int = 0
    ) -> QuotaDecision: ...
    def peek_quota(
        self, key_id: str, *, requests: int = 0, tokens: int = 0, cost_micros: int = 0
    ) -> QuotaDecision: ...
    def reserve_quota(
        self,
        key_id: str,
        *,
        requests: int = 0,
        tokens: int = 0,
        cost_micros: int = 0,
        ttl_seconds: Optional[int] = None,
    ) -> Reserved: ...
    def settle_reservation(
        self, reservation_id: str, *, requests: int = 0, tokens: int = 0, cost_micros: int = 0
    ) -> QuotaDecision: ...
    def release_reservation(self, reservation_id: str) -> QuotaDecision: ...
    def expire_reservations(self) -> int: ...
    def create_budget(
        self,
        owner: str,
        limit_micros: int,
        *,
        name: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> Budget: ...
    def get_budget(self, budget_id: str) -> Budget: ...
    def issue_agent_token(
        self,
        agent_id: str,
        budget_id: str,
        *,
        permissions: Optional[Sequence[str]] = None,
        issuer: Optional[str] = None,
        ttl_seconds: Optional[int] = None,
        actor: Optional[str] = None,
    ) -> AgentToken: ...
    def verify_agent_token(self, token: str) -> AgentClaims: ...
    def revoke_agent_token(self, agent_id: str, *, actor: Optional[str] = None) -> str: ...
    def mint_capability(
        self,
        key_id: str,
        *,
        tools: Sequence[str],
        ttl_seconds: int,
        ceiling_micros: Optional[int] = None,
        resources: Optional[Sequence[str]] = None,
        lease_id: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> str:
        """Mints a capability token (Biscuit, base64url) for an active key."""
        ...
    def authorize(
        self,
        token: str,
        *,
        tool: str,
        resource: Optional[str] = None,
        cost_micros: int = 0,
        session_id: Optional[str] = None,
    ) -> "Authorization":
        """Decides a tool call under a capability token and charges its cost when allowed."""
        ...
    def revoke_capability(self, token: str, *, actor: Optional[str] = None) -> str:
        """Revokes the token's last block (and every token attenuated from it); returns its revocation id."""
        ...
    def revoke_capability_id(self, revocation_id: str, *, actor: Optional[str] = None) -> bool: ...
    def capability_public_key(self) -> str: ...
    def capability_public_keys(self) -> List[str]: ...
    def capability_roots(self) -> List[CapabilityRoot]: ...
    def claim_jti(self, jti: str, *, expires_at: int) -> bool:
        """Claims a one-time id: True the first time, False after (every process and host on the store or Redis)."""
        ...
    def rotate_capability_key(
        self, *, overlap_seconds: int = 86400, actor: Optional[str] = None
    ) -> CapabilityRoot: ...
    def acquire_lease(
        self, agent_token: str, amount_micros: int, *, ttl_seconds: Optional[int] = None
    ) -> Lease: ...
    def get_lease(self, lease_id: str) -> Lease: ...
    def refresh_lease(
        self, lease_id: str, amount_micros: int, *, ttl_seconds: Optional[int] = None
    ) -> Lease: ...
    def release_lease(self, lease_id: str) -> Lease: ...
    def report_lease_usage(
        self,
        lease_id: str,
        *,
        request_id: str,
        cost_micros: int = 0,
        model: Optional[str] = None,
        model_version: Optional[str] = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        requests: Optional[int] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Lease: ...
    def drain_events(self, max: int = 100) -> List[Event]: ...
    def metrics(self) -> str: ...
    def flush(self) -> None: ...
    def advance_clock(self, seconds: int) -> int: ...
    def now(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> "TokenManager": ...
    def __exit__(self, *args: object) -> bool: ...

@final
class JwtVerifier:
    """A keyring and policy parsed once (see irontoken.jwt.JwtVerifier)."""

    def __new__(cls, key: str | bytes | bytearray | memoryview | Jwk, policy_json: str) -> "JwtVerifier": ...
    def decode(self, token: str, now: Optional[int] = None) -> Dict[str, Any]: ...
    def decode_complete(
        self, token: str, now: Optional[int] = None
    ) -> tuple[Dict[str, Any], Dict[str, Any]]: ...
    def verify_jws(self, token: str) -> tuple[Dict[str, Any], bytes]: ...

@final
class JwtSigner:
    """A signing key and algorithm parsed once (see irontoken.jwt.JwtSigner)."""

    def __new__(
        cls, key: str | bytes | bytearray | memoryview, algorithm: str, kid: Optional[str] = None
    ) -> "JwtSigner": ...
    def sign(self, claims_json: str, headers_json: Optional[str] = None) -> str: ...

@final
class RateLimiter:
    """Rate limiter: GCRA buckets per key and named limit.

    In this process by default (`store="local"`: not shared across
    processes), on a Redis server (`store="redis://..."`: shared by every
    process and host naming it), or in a manager's store (`manager=tm`).
    Limits given here are parsed once and used by `check(key)`;
    `check(key, limits)` still works.
    """

    def __new__(
        cls,
        limits: Optional[Sequence[Mapping[str, Any]]] = None,
        max_buckets: int = 1000000,
        *,
        store: Optional[str] = None,
        fail_open: bool = False,
        timeout_ms: int = 1000,
        manager: Optional[TokenManager] = None,
    ) -> "RateLimiter": ...
    def check(
        self,
        key: str,
        limits: Optional[Sequence[Mapping[str, Any]]] = None,
        now_ms: Optional[int] = None,
        *,
        cost: int = 1,
    ) -> "RateDecision":
        """Counts one request of `key` (1-512 bytes) against every limit, all-or-nothing:
        `cost` tokens against the limits whose unit is "tokens", 1 against the others."""
        ...
    def peek(
        self,
        key: str,
        limits: Optional[Sequence[Mapping[str, Any]]] = None,
        now_ms: Optional[int] = None,
        *,
        cost: int = 1,
    ) -> "RateDecision": ...
    def settle(
        self,
        key: str,
        *,
        estimated: int,
        actual: int,
        limits: Optional[Sequence[Mapping[str, Any]]] = None,
        now_ms: Optional[int] = None,
    ) -> None:
        """Corrects the limits in tokens of `key` once a request's actual count is known
        (an under-estimate can empty a bucket, never overdraw it beyond one burst)."""
        ...
    @property
    def failures(self) -> Dict[str, int]:
        """{"store_errors": checks whose store failed, "fail_open": requests let through unchecked}."""
        ...
    def __len__(self) -> int: ...

@final
class RateDecision:
    """The answer of a rate-limit check; truthy when allowed, readable as a mapping too."""

    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after_ms(self) -> int: ...
    @property
    def limits(self) -> List[Dict[str, Any]]: ...
    @property
    def degraded(self) -> bool:
        """True when the store failed and fail-open let the request through unchecked (remaining/reset unknown)."""
        ...
    def __bool__(self) -> bool: ...
    def __getitem__(self, name: str, /) -> Any: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Jwk:
    """One JWK parsed once (the key of irontoken.jwt.PyJWK)."""

    def __new__(cls, json: str) -> "Jwk": ...
    @property
    def kid(self) -> Optional[str]: ...
    @property
    def key_type(self) -> str: ...
    @property
    def algorithm(self) -> Optional[str]: ...

@final
class RemoteJwks:
    """A remote JWKS with its cache (see irontoken.jwt.PyJWKClient)."""

    def __new__(cls, url: str, options_json: str) -> "RemoteJwks": ...
    def decode(
        self, token: str, policy_json: str, now: Optional[int] = None
    ) -> tuple[Dict[str, Any], Dict[str, Any]]: ...
    def key(self, kid: str) -> Jwk: ...
    def raw(self, refresh: bool = False) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def fetch_count(self) -> int: ...

def jwt_decode(
    token: str, key: str | bytes | bytearray | memoryview | Jwk, policy_json: str, now: Optional[int] = None
) -> tuple[Dict[str, Any], Dict[str, Any]]: ...
def dpop_verify_proof(
    proof: str,
    *,
    htm: str,
    htu: str,
    access_token: Optional[str] = None,
    nonce: Optional[str] = None,
    max_age_seconds: int = 300,
    jkt: Optional[str] = None,
    now: Optional[int] = None,
) -> DPoPProof:
    """Verifies a DPoP proof without the replay check."""
    ...
def jwk_thumbprint(jwk: Mapping[str, Any]) -> str: ...
def cert_thumbprint(cert: str | bytes | bytearray | memoryview) -> str: ...
def token_binding(
    claims: Mapping[str, Any],
    *,
    client_cert: Optional[str | bytes | bytearray | memoryview] = None,
    proof_given: bool = False,
) -> Optional[str]:
    """Core's binding rule for claims verified elsewhere: refuses a bound token without its certificate or proof; the jkt a proof must have."""
    ...
def jwt_unverified(token: str) -> tuple[Dict[str, Any], bytes, bytes]: ...
def jwt_encode(
    claims_json: str,
    key: str | bytes | bytearray | memoryview,
    algorithm: str,
    headers_json: Optional[str] = None,
    kid: Optional[str] = None,
) -> str: ...

_CapabilityReason = Literal[
    "OK",
    "CAPABILITY_MALFORMED",
    "CAPABILITY_BAD_SIGNATURE",
    "CAPABILITY_REVOKED",
    "CAPABILITY_EXPIRED",
    "TOOL_NOT_ALLOWED",
    "CAPABILITY_DENIED",
    "CAPABILITY_TOO_COMPLEX",
    "CEILING_EXCEEDED",
    "BUDGET_EXCEEDED",
    "KEY_NOT_FOUND",
    "KEY_DISABLED",
    "KEY_REVOKED",
    "KEY_EXPIRED",
]

@final
class Authorization:
    """The answer of `TokenManager.authorize`: truthy when allowed, readable as a mapping too."""

    @property
    def allowed(self) -> bool: ...
    @property
    def reason(self) -> _CapabilityReason: ...
    @property
    def message(self) -> Optional[str]: ...
    @property
    def key_id(self) -> Optional[str]: ...
    @property
    def owner(self) -> Optional[str]: ...
    @property
    def tools(self) -> Optional[List[str]]: ...
    @property
    def resources(self) -> Optional[List[str]]: ...
    @property
    def expires_at(self) -> Optional[int]: ...
    @property
    def ceiling_micros(self) -> Optional[int]: ...
    @property
    def remaining_micros(self) -> Optional[int]: ...
    @property
    def lease_id(self) -> Optional[str]: ...
    @property
    def charged_micros(self) -> int: ...
    @property
    def blocks(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __getitem__(self, name: str, /) -> Any: ...
    def keys(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

def attenuate(
    token: str,
    *,
    tools: Optional[Sequence[str]] = None,
    ceiling_micros: Optional[int] = None,
    ttl_seconds: Optional[int] = None,
    resources: Optional[Sequence[str]] = None,
    session_id: Optional[str] = None,
    datalog: Optional[str] = None,
) -> str:
    """Narrows a capability token offline by one block: the result allows at most what `token` allows."""
    ...

def seal(token: str) -> str:
    """Seals a capability token: no block can be appended any more."""
    ...

def inspect_capability(token: str) -> CapabilityInfo:
    """What a capability token states, unverified."""
    ...
