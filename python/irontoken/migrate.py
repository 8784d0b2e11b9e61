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

from typing import Any, Callable, Mapping, Optional, Sequence

from ._native import TokenManager, VerifyResult, is_well_formed
from .errors import ConflictError, InvalidArgumentError

__all__ = ["verify_or_upgrade", "upgradable"]

LegacyCheck = Callable[[str], Optional[Mapping[str, Any]]]


def upgradable(key: str, reason: str) -> bool:
    """Whether a refusal may be a key of the old system: irontoken does not
    know it (NOT_FOUND, or MALFORMED before the first legacy import) and it
    has a legacy key's shape (16-512 visible ASCII characters, not in
    irontoken's format)."""
    return (
        reason in ("NOT_FOUND", "MALFORMED")
        and 16 <= len(key) <= 512
        and key.isascii()
        and all(33 <= ord(c) <= 126 for c in key)
        and not is_well_formed(key)
    )


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
    result = tm.verify_key(key, required_scopes)
    if result.valid or not upgradable(key, result.reason):
        return result
    fields = legacy_check(key)
    if not fields:
        return result
    if not fields.get("legacy_id"):
        raise InvalidArgumentError(
            "legacy_check must return legacy_id, the old record's id: "
            "one irontoken key per old record (bcrypt reads only 72 bytes of a key)"
        )
    try:
        tm.import_key(key, **dict(fields))
    except ConflictError:
        pass  # imported by a concurrent request, or refused: deleted, or its old record has a key
    return tm.verify_key(key, required_scopes)
