"""Moving keys over from the old system.

Keys whose plaintext or SHA-256 is known are imported up front
(`TokenManager.import_key` / `import_keys`, CLI `keys import`). Keys stored
as bcrypt hashes cannot be looked up, so they move over one at a time, on
their next use: `verify_or_upgrade` asks irontoken first, runs the old
check only for a key irontoken does not know and that is not in its
format, and imports the key when the old check accepts it — its next
verification costs microseconds instead of a bcrypt round.

    def old_check(key):                      # the old system's lookup
        row = old_db.find_by_prefix(key[:8])
        if row and bcrypt.checkpw(key.encode(), row.hash):
            return {"legacy_id": str(row.id), "owner": row.owner, "scopes": row.scopes}
        return None

    result = verify_or_upgrade(tm, presented_key, old_check, ["read"])

`legacy_id` (the old record's id) is required: bcrypt reads only the first
72 bytes of a key, so a lenient old check accepts many endings of one long
key. Each old record yields one irontoken key, ever — the other endings are
refused (`NOT_FOUND`). A key deleted in irontoken stays deleted: its
tombstone refuses the upgrade until `TokenManager.lift_tombstone`.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Sequence, Union

from ._native import TokenManager, VerifyResult, may_be_legacy
from .errors import ConflictError, InvalidArgumentError

__all__ = ["verify_or_upgrade", "verify_or_upgrade_async", "upgradable"]

LegacyCheck = Callable[[str], Optional[Mapping[str, Any]]]
#: A legacy check for the async form: a plain function or a coroutine function.
AsyncLegacyCheck = Callable[[str], Union[Optional[Mapping[str, Any]], Awaitable[Optional[Mapping[str, Any]]]]]


def _fields(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """The import's fields, with the old record's id required."""
    if not fields.get("legacy_id"):
        raise InvalidArgumentError(
            "legacy_check must return legacy_id, the old record's id: "
            "one irontoken key per old record (bcrypt reads only 72 bytes of a key)"
        )
    return dict(fields)


def upgradable(key: str, reason: str) -> bool:
    """Whether a refusal may be a key of the old system: irontoken does not
    know it (NOT_FOUND, or MALFORMED before the first legacy import) and it
    has a legacy key's shape (16-512 visible ASCII characters, not in
    irontoken's format)."""
    return may_be_legacy(key, reason)  # the rule lives in core


def verify_or_upgrade(
    tm: TokenManager,
    key: str,
    legacy_check: LegacyCheck,
    required_scopes: Optional[Sequence[str]] = None,
) -> VerifyResult:
    """Verifies `key`; if irontoken does not know it and it may be an old
    key, calls `legacy_check(key)` — the old system's check (bcrypt...),
    returning `import_key`'s keyword arguments (`legacy_id` and `owner`
    required; `scopes`, `expires_at`, `metadata`...) when the key is good,
    else None — imports the key and verifies it again. Any other answer is
    returned as is; a key refused by the import (deleted, or another key
    of the same old record) stays `NOT_FOUND`."""
    if not isinstance(tm, TokenManager):
        raise InvalidArgumentError(
            "verify_or_upgrade takes a TokenManager; with an AsyncTokenManager, await verify_or_upgrade_async"
        )
    result = tm.verify_key(key, required_scopes)
    if result.valid or not upgradable(key, result.reason):
        return result
    fields = legacy_check(key)
    if not fields:
        return result
    try:
        tm.import_key(key, **_fields(fields))
    except ConflictError:
        pass  # imported by a concurrent request, or refused: deleted, or its old record has a key
    return tm.verify_key(key, required_scopes)


async def verify_or_upgrade_async(
    tm: Any,
    key: str,
    legacy_check: AsyncLegacyCheck,
    required_scopes: Optional[Sequence[str]] = None,
) -> VerifyResult:
    """:func:`verify_or_upgrade` for asyncio: ``tm`` is an
    ``AsyncTokenManager`` (or a ``TokenManager``, whose calls then run off
    the event loop), and ``legacy_check`` a plain function (run in a thread:
    bcrypt is CPU-bound) or a coroutine function."""
    import asyncio

    from .aio import AsyncTokenManager

    if isinstance(tm, AsyncTokenManager):
        verify: Callable[..., Awaitable[VerifyResult]] = tm.verify_key
        import_key: Callable[..., Awaitable[Any]] = tm.import_key
    elif isinstance(tm, TokenManager):
        sync = tm

        async def verify(k: str, scopes: Optional[Sequence[str]]) -> VerifyResult:
            return await asyncio.to_thread(sync.verify_key, k, scopes)

        async def import_key(k: str, **kw: Any) -> Any:
            return await asyncio.to_thread(lambda: sync.import_key(k, **kw))
    else:
        raise InvalidArgumentError("verify_or_upgrade_async takes an AsyncTokenManager or a TokenManager")
    result = await verify(key, required_scopes)
    if result.valid or not upgradable(key, result.reason):
        return result
    if inspect.iscoroutinefunction(legacy_check):
        fields = await legacy_check(key)
    else:
        fields = await asyncio.to_thread(legacy_check, key)
        if inspect.isawaitable(fields):
            fields = await fields
    if not fields:
        return result
    try:
        await import_key(key, **_fields(fields))
    except ConflictError:
        pass  # imported by a concurrent request, or refused: deleted, or its old record has a key
    return await verify(key, required_scopes)
