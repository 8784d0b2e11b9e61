"""Shapes of the dicts that sessions, usage, quota, budget and signal calls
return (typing only; at run time they are plain dicts)."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

__all__ = [
    "AlertSettings",
    "OwnerPolicy",
    "WebhookSettings",
    "AgentClaims",
    "AgentToken",
    "Amounts",
    "Budget",
    "Event",
    "Lease",
    "Quota",
    "QuotaDecision",
    "RateLimitSpec",
    "Recorded",
    "Reservation",
    "Reserved",
    "Session",
    "Stats",
    "DPoPProof",
    "TokenFamily",
    "TokenPair",
    "UsageRecord",
    "UsageTotals",
]

_SessionStatus = Literal["active", "paused", "ended", "expired"]
_Metric = Literal["requests", "tokens", "cost"]
_Period = Literal["day", "month", "none"]
_Scope = Literal["key", "owner"]

class WebhookSettings(TypedDict, total=False):
    """Where alerts are posted: ``url`` (https://, or http:// to loopback) and
    ``secret`` (HMAC-SHA256, at least 16 bytes) are required."""

    url: str
    secret: str
    events: List[str]
    timeout_ms: int
    max_attempts: int
    queue_size: int
    backoff_ms: int


class AlertSettings(TypedDict, total=False):
    """A manager's ``alerts`` option: quota alert levels (percent, default
    [80, 100]), spend spikes (``spike_factor`` x a key's trailing average per
    minute, at least ``spike_min_tokens``), and the webhook."""

    quota_levels: List[int]
    spike_factor: float
    spike_min_tokens: int
    webhook: WebhookSettings


class OwnerPolicy(TypedDict):
    """An owner's model policy: every key of the owner is held to it as well
    as to its own (both allow-lists, the lower ceiling)."""

    owner: str
    models: List[str]
    max_tokens_per_request: Optional[int]
    updated_at: int


class _RateLimitBase(TypedDict):
    name: str
    count: int
    period_ms: int
    burst: int


class RateLimitSpec(_RateLimitBase, total=False):
    """One named rate limit of a key: ``unit`` "tokens" for a limit of LLM
    tokens (counted by ``verify_key_with(tokens=)``), absent for requests."""

    unit: Literal["requests", "tokens"]

class Session(TypedDict):
    """A session; times are Unix seconds."""

    id: str
    owner: str
    key_id: Optional[str]
    session_type: str
    status: _SessionStatus
    metadata: Dict[str, Any]
    created_at: int
    updated_at: int
    last_seen_at: int
    expires_at: Optional[int]
    idle_timeout: Optional[int]
    expires_next_at: Optional[int]
    ended_at: Optional[int]
    end_reason: Optional[str]
    fingerprint_bound: bool

class Recorded(TypedDict):
    """The answer of `record_usage`."""

    request_id: str
    duplicate: bool

class UsageRecord(TypedDict):
    """One stored usage record; money in micro-units."""

    request_id: str
    at: int
    key_id: Optional[str]
    owner: Optional[str]
    session_id: Optional[str]
    agent_id: Optional[str]
    model: str
    model_version: str
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    requests: int
    cost_micros: int
    metadata: Dict[str, Any]

class UsageTotals(TypedDict, total=False):
    """One row of a usage summary (group keys present only when grouped by them)."""

    key_id: str
    owner: str
    model: str
    session_id: str
    agent_id: str
    day: str
    #: The hour's start, ``YYYY-MM-DDTHH:00:00Z`` (UTC), when grouped by hour.
    hour: str
    records: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_micros: int

class Quota(TypedDict):
    """A quota and its state now."""

    scope: _Scope
    subject: str
    metric: _Metric
    period: _Period
    limit: int
    used: int
    reserved: int
    remaining: int
    window_start: int
    reset_at: Optional[int]
    refill_amount: Optional[int]
    refill_period: Optional[_Period]

class QuotaDecision(TypedDict):
    """The answer of a quota check."""

    allowed: bool
    quotas: List[Quota]
    denied_by: Optional[Quota]

class Amounts(TypedDict, total=False):
    """Amounts to consume."""

    requests: int
    tokens: int
    cost_micros: int

class Reservation(TypedDict):
    """A hold on quota amounts."""

    id: str
    key_id: str
    amounts: Amounts
    status: str
    created_at: int
    expires_at: int

class Reserved(TypedDict):
    """The answer of `reserve_quota`."""

    reservation: Optional[Reservation]
    decision: QuotaDecision

class Budget(TypedDict):
    """A budget agents lease from; money in micro-units."""

    id: str
    owner: str
    name: str
    limit_micros: int
    spent_micros: int
    leased_micros: int
    available_micros: int
    created_at: int

class AgentClaims(TypedDict):
    """The claims of a verified agent token."""

    jti: str
    agent_id: str
    budget_id: str
    permissions: List[str]
    issuer: str
    issued_at: int
    expires_at: Optional[int]

class AgentToken(TypedDict):
    """An issued agent token (the token string is shown only now)."""

    token: str
    claims: AgentClaims
    replaced: Optional[str]

class Lease(TypedDict):
    """A slice of a budget held by an agent runtime."""

    id: str
    budget_id: str
    agent_id: str
    jti: str
    amount_micros: int
    spent_micros: int
    remaining_micros: int
    status: str
    created_at: int
    expires_at: int

class CapabilityInfo(TypedDict):
    """What a capability token states, unverified (`inspect_capability`)."""

    root_key_id: Optional[int]
    blocks: List[str]
    revocation_ids: List[str]
    sealed: bool
    tools: Optional[List[str]]
    resources: Optional[List[str]]
    expires_at: Optional[int]
    ceiling_micros: Optional[int]
    key_id: Optional[str]

class CapabilityRoot(TypedDict):
    """A capability root key (never its private part)."""

    root_key_id: int
    public_key: str
    status: str
    created_at: int
    verify_until: Optional[int]

class TokenPair(TypedDict):
    """An access token and the refresh token that gets the next pair (the
    OAuth 2.0 token response's fields plus irontoken's)."""

    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: int
    refresh_expires_at: int
    family_id: str
    token_type: Literal["Bearer"]
    scopes: List[str]

class DPoPProof(TypedDict):
    """A verified DPoP proof (RFC 9449)."""

    jkt: str
    alg: str
    jwk: Dict[str, Any]
    jti: str
    iat: int
    htm: str
    htu: str
    ath: Optional[str]
    nonce: Optional[str]

class TokenFamily(TypedDict):
    """A refresh-token family; times are Unix seconds."""

    id: str
    subject: str
    scopes: List[str]
    status: Literal["active", "revoked", "expired"]
    created_at: int
    expires_at: int
    refreshed_at: int
    idle_expires_at: int
    generation: int
    revoked_at: Optional[int]
    revoke_reason: Optional[str]

class Event(TypedDict):
    """An operator signal from `drain_events`."""

    kind: str
    at: int
    key_id: Optional[str]
    display_prefix: Optional[str]
    detail: Dict[str, Any]


class KeyCounts(TypedDict):
    """Keys in each state."""

    total: int
    active: int
    disabled: int
    revoked: int
    expired: int

class OwnerKeys(TypedDict):
    """One owner's keys."""

    owner: str
    keys: KeyCounts

class QuotaBurn(Quota):
    """A quota and how much of it is spent: (used + reserved) / limit."""

    burn: float

class Stats(TypedDict):
    """What ``TokenManager.stats`` returns (``irontoken stats``)."""

    at: int
    since: int
    keys: KeyCounts
    owners: List[OwnerKeys]
    usage: UsageTotals
    top_keys: List[UsageTotals]
    quotas: List[QuotaBurn]
