"""Keys from the old system: import by plaintext or SHA-256, all-or-nothing
batches, and the bcrypt upgrade-on-use path (bcrypt runs only for keys
irontoken does not know; a good old key is imported on first use)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Dict, List, Optional

import pytest

from irontoken import ConflictError, InvalidArgumentError, TokenManager
from irontoken.migrate import upgradable, verify_or_upgrade

from conftest import store_target

OLD = "dev-sk-4f1c9a7e2b8d6035aa71"


@pytest.fixture
def tm():
    with store_target() as target, TokenManager(target) as m:
        yield m


def test_legacy_plaintext_and_hashes_verify(tm: TokenManager) -> None:
    assert tm.verify_key(OLD).reason == "MALFORMED"  # no legacy key here yet
    rec = tm.import_key(OLD, owner="acme", scopes=["read"], metadata={"from": "old"}, actor="migration")
    assert rec.prefix == "legacy" and OLD[6:] not in rec.display_prefix
    assert tm.verify_key(OLD, ["read"]).valid
    assert tm.verify_key("dev-sk-0000000000000000000").reason == "NOT_FOUND"
    hexed = "legacy-hex-0123456789abcdef"
    b64 = "legacy-b64-0123456789abcdef"
    recs = tm.import_keys([
        {"key_hash": hashlib.sha256(hexed.encode()).hexdigest(), "owner": "a", "display_prefix": "sk…ef"},
        {"key_hash": base64.b64encode(hashlib.sha256(b64.encode()).digest()).decode(), "owner": "b"},
    ])
    assert [r.display_prefix for r in recs] == ["sk…ef", "legacy"]
    for short in ("", "ab"):  # 3-32 characters: shorter was a STORAGE error (the column's CHECK)
        with pytest.raises(InvalidArgumentError, match="display_prefix"):
            tm.import_key("legacy-disp-0123456789a", owner="a", display_prefix=short)
    assert tm.verify_key(hexed).valid and tm.verify_key(b64).valid
    with pytest.raises(ConflictError):
        tm.import_key(OLD, owner="again")
    entry = tm.list_audit(key_id=rec.id).items[0]
    assert entry.action == "key.create" and entry.actor == "migration"
    assert entry.detail is not None and entry.detail["imported"] is True


def test_an_import_batch_is_all_or_nothing(tm: TokenManager) -> None:
    with pytest.raises(InvalidArgumentError, match="key 1: .*SHA-256"):
        tm.import_keys([{"key": "legacy-good-0123456789ab", "owner": "a"}, {"key_hash": "zz", "owner": "a"}])
    assert tm.list_keys().items == []
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        tm.import_key(owner="a")
    with pytest.raises(InvalidArgumentError):
        tm.import_key("short", owner="a")


def test_errors_never_echo_the_key(tm: TokenManager) -> None:
    secret = "old-secret-key-000000000000 with space"
    with pytest.raises(InvalidArgumentError) as e:
        tm.import_key(secret, owner="a")
    assert "old-secret" not in str(e.value)


class OldSystem:
    """The platform's old store: bcrypt-like hashes (salted SHA-256 here, to
    keep the test fast), found by a prefix, checked by a slow compare."""

    def __init__(self, keys: Dict[str, Dict[str, Any]]) -> None:
        self.rows = {k[:10]: (hashlib.sha256(b"salt" + k.encode()).hexdigest(), v) for k, v in keys.items()}
        self.checks: List[str] = []

    def check(self, key: str) -> Optional[Dict[str, Any]]:
        self.checks.append(key)
        row = self.rows.get(key[:10])
        if row and row[0] == hashlib.sha256(b"salt" + key.encode()).hexdigest():
            return dict(row[1])
        return None


def test_upgrade_on_use(tm: TokenManager) -> None:
    old = OldSystem({OLD: {"legacy_id": "u-1", "owner": "acme", "scopes": ["read"]}})
    first = verify_or_upgrade(tm, OLD, old.check, ["read"])
    assert first.valid and first.record is not None and first.record.owner == "acme"
    assert old.checks == [OLD]
    # Imported: the next verification never reaches the old check.
    for _ in range(3):
        assert verify_or_upgrade(tm, OLD, old.check, ["read"]).valid
    assert old.checks == [OLD]
    # Scopes still apply; a refused scope is not an "unknown key".
    assert verify_or_upgrade(tm, OLD, old.check, ["admin"]).reason == "INSUFFICIENT_SCOPE"
    assert old.checks == [OLD]
    # A wrong old key: checked, refused, nothing imported.
    wrong = OLD[:10] + "x" * (len(OLD) - 10)
    assert verify_or_upgrade(tm, wrong, old.check).reason == "NOT_FOUND"
    assert old.checks == [OLD, wrong]
    # irontoken's own keys and junk never reach the old check.
    created = tm.create_key("bob")
    tm.revoke_key(created.record.id)
    assert verify_or_upgrade(tm, created.key, old.check).reason == "REVOKED"
    assert verify_or_upgrade(tm, "short", old.check).reason == "MALFORMED"
    assert old.checks == [OLD, wrong]
    assert not upgradable(created.key, "NOT_FOUND") and not upgradable("x y" * 10, "NOT_FOUND")


def test_upgrade_of_a_key_imported_meanwhile(tm: TokenManager) -> None:
    def check(key: str) -> Dict[str, Any]:
        tm.import_key(key, owner="raced")  # another request won the race
        return {"legacy_id": "u-1", "owner": "late"}

    result = verify_or_upgrade(tm, OLD, check)
    assert result.valid and result.record is not None and result.record.owner == "raced"


def test_a_deleted_key_is_not_upgraded_again(tm: TokenManager) -> None:
    old = OldSystem({OLD: {"legacy_id": "u-1", "owner": "acme"}})
    imported = verify_or_upgrade(tm, OLD, old.check)
    assert imported.valid and imported.record is not None
    tm.delete_key(imported.record.id, actor="ops")
    # The old check still accepts it; the tombstone refuses the upgrade.
    assert verify_or_upgrade(tm, OLD, old.check).reason == "NOT_FOUND"
    with pytest.raises(ConflictError, match="lift_tombstone"):
        tm.import_key(OLD, owner="mallory")
    with pytest.raises(ConflictError):
        tm.import_key(key_hash=hashlib.sha256(OLD.encode()).hexdigest(), owner="mallory")
    assert tm.lift_tombstone(OLD, actor="ops") is True
    assert tm.lift_tombstone(OLD, actor="ops") is False
    assert verify_or_upgrade(tm, OLD, old.check).valid
    lifts = tm.list_audit(action="key.tombstone_lift").items
    assert [e.actor for e in lifts] == ["ops"]
    with pytest.raises(InvalidArgumentError):
        tm.lift_tombstone()


def test_one_old_record_yields_one_key(tm: TokenManager) -> None:
    """bcrypt reads 72 bytes: a lenient check accepts any ending of a long key."""
    long_key = "old_" + "k" * 70  # 74 characters
    lenient = lambda key: {"legacy_id": "u-9", "owner": "acme"} if key[:72] == long_key[:72] else None  # noqa: E731
    assert verify_or_upgrade(tm, long_key, lenient).valid
    for ending in ("AA", "BB", "CC"):
        assert verify_or_upgrade(tm, long_key[:72] + ending, lenient).reason == "NOT_FOUND"
    assert len(tm.list_keys(owner="acme").items) == 1
    # The old record's id is required of the check.
    with pytest.raises(InvalidArgumentError, match="legacy_id"):
        verify_or_upgrade(tm, "another-old-key-0123456789", lambda key: {"owner": "acme"})
    assert tm.verify_key("another-old-key-0123456789").reason == "NOT_FOUND"


def test_a_display_prefix_in_irontoken_format_must_be_the_keys_own(tm: TokenManager) -> None:
    other = tm.create_key("a")
    for shown in (other.record.display_prefix, f"key {other.record.display_prefix}"):
        with pytest.raises(InvalidArgumentError):
            tm.import_key(OLD, owner="acme", display_prefix=shown)
    tm.import_key(OLD, owner="acme", display_prefix="old:dev-sk")


def test_verify_or_upgrade_async_with_an_async_manager() -> None:
    import asyncio

    from irontoken.aio import AsyncTokenManager
    from irontoken.migrate import verify_or_upgrade_async

    async def main() -> None:
        atm = AsyncTokenManager(":memory:")
        sync_check = lambda key: {"legacy_id": "u-1", "owner": "acme"} if key == OLD else None  # noqa: E731

        async def async_check(key: str) -> Optional[Dict[str, Any]]:
            return sync_check(key)

        first = await verify_or_upgrade_async(atm, OLD, async_check)
        assert first.valid and first.record is not None and first.record.owner == "acme"
        assert (await verify_or_upgrade_async(atm, OLD, sync_check)).valid
        # The sync helper names the async one instead of failing on a coroutine.
        with pytest.raises(InvalidArgumentError, match="verify_or_upgrade_async"):
            verify_or_upgrade(atm, OLD, sync_check)  # type: ignore[arg-type]
        atm.sync.close()

    asyncio.run(main())
