"""What hostile and careless use broke (issue 9), from Python: every odd
argument is our error, never OverflowError, TypeError or PanicException."""

from __future__ import annotations

import os
import stat
from typing import Any, Callable, Dict, List

import pytest

from irontoken import IronTokenError, InvalidArgumentError, TokenManager


def test_numeric_options_are_checked_not_a_panic() -> None:
    for kwargs in ({"busy_timeout_ms": 2**31}, {"busy_timeout_ms": 2**64}, {"flush_interval_ms": 0}, {"busy_timeout_ms": -1}, {"busy_timeout_ms": True}):
        with pytest.raises(InvalidArgumentError):
            TokenManager(":memory:", **kwargs)  # type: ignore[arg-type]


def test_odd_numbers_are_invalid_argument() -> None:
    with TokenManager(":memory:") as tm:
        key = tm.create_key("owner")
        calls: List[Callable[[], Any]] = [
            lambda: tm.create_key("o", expires_in=2**70),
            lambda: tm.create_key("o", expires_in=True),  # a bool is not a number
            lambda: tm.create_key("o", expires_in=1.5),  # type: ignore[arg-type]
            lambda: tm.create_key("o", expires_in="60"),  # type: ignore[arg-type]
            lambda: tm.record_usage(key_id=key.record.id, requests=2**63),
            lambda: tm.record_usage(key_id=key.record.id, cost_micros=2**53),
            lambda: tm.record_usage(key_id=key.record.id, prompt_tokens=-1),
            lambda: tm.drain_events(-1),
            lambda: tm.drain_events(2**80),
            lambda: tm.list_keys(limit=2**40),
            lambda: tm.advance_clock(2**64),
        ]
        for i, call in enumerate(calls):
            with pytest.raises(InvalidArgumentError):
                call()
            assert i >= 0


def test_a_str_where_a_list_of_strings_belongs_is_a_type_error_naming_it() -> None:
    """scopes="read" would be the characters r, e, a, d if iterated: it is a
    TypeError that names the argument, as is a list holding a non-string;
    a tuple of strings is a list of strings."""
    with TokenManager(":memory:") as tm:
        key = tm.create_key("o", scopes=("read", "write"))
        assert key.record.scopes == ["read", "write"]
        calls: List[tuple[str, Callable[[], Any]]] = [
            ("scopes", lambda: tm.create_key("o", scopes="read")),  # type: ignore[arg-type]
            ("scopes", lambda: tm.create_key("o", scopes=["read", 1])),  # type: ignore[list-item]
            ("scopes", lambda: tm.update_key(key.record.id, scopes=5)),  # type: ignore[arg-type]
            ("required_scopes", lambda: tm.verify_key(key.key, "read")),  # type: ignore[arg-type]
            ("required_scopes", lambda: tm.verify_key_with(key.key, required_scopes="read")),  # type: ignore[arg-type]
            ("algorithms", lambda: tm.verify_jwt("a.b.c", algorithms="HS256")),  # type: ignore[arg-type]
            ("audience", lambda: tm.verify_jwt("a.b.c", algorithms=["HS256"], audience="api")),  # type: ignore[arg-type]
            ("group_by", lambda: tm.usage_summary(group_by="key_id")),  # type: ignore[arg-type]
        ]
        for name, call in calls:
            with pytest.raises(TypeError) as e:
                call()
            assert str(e.value).startswith(f"{name} must be a list of strings"), str(e.value)
        assert tm.verify_key(key.key, ("read",)).valid


def test_database_files_are_private(tmp_path: Any) -> None:
    path = str(tmp_path / "p.db")
    with TokenManager(path) as tm:
        tm.create_key("o")
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(os.stat(path + suffix).st_mode)
            assert mode & 0o077 == 0, (suffix, oct(mode))


def test_every_error_is_an_exception_not_a_base_exception() -> None:
    # PanicException derives from BaseException; ours from Exception.
    assert issubclass(IronTokenError, Exception)


def test_create_false_refuses_a_missing_file(tmp_path: Any) -> None:
    from irontoken import DatabaseNotFoundError

    missing = tmp_path / "typo.db"
    with pytest.raises(DatabaseNotFoundError) as e:
        TokenManager(str(missing), create=False)
    assert isinstance(e.value, FileNotFoundError) and e.value.code == "DATABASE_NOT_FOUND"
    assert not missing.exists()
    TokenManager(str(missing)).close()  # the default creates, like sqlite3.connect
    TokenManager(str(missing), create=False).close()


def test_a_corrupt_file_is_refused(tmp_path: Any) -> None:
    from irontoken import DatabaseCorruptError

    path = tmp_path / "c.db"
    with TokenManager(str(path)) as tm:
        for i in range(150):
            tm.create_key(f"o{i}")
    data = bytearray(path.read_bytes())
    data[2 * 4096 : 4 * 4096] = b"\xa5" * (2 * 4096)
    path.write_bytes(bytes(data))
    with pytest.raises(DatabaseCorruptError):
        TokenManager(str(path))
    assert path.read_bytes() == bytes(data)


def test_times_past_the_year_9999_are_refused() -> None:
    # Saturated to 2^63-1 they were unreadable (datetime cannot show them);
    # exchange_api_key with a huge ttl wrapped and signed a negative exp.
    last = 253402300799  # 9999-12-31T23:59:59Z
    tm = TokenManager(":memory:", master_key="07" * 32)
    assert tm.create_key("o", expires_at=last).record.expires_at == last
    for at, within in ((last + 1, None), (None, 2**63 - 1), (None, last)):
        with pytest.raises(InvalidArgumentError, match="expires_"):
            tm.create_key("o", expires_at=at, expires_in=within)
    c = tm.create_key("o")
    with pytest.raises(InvalidArgumentError, match="expires_at"):
        tm.update_key(c.record.id, expires_at=last + 1)
    with pytest.raises(InvalidArgumentError, match="overlap_seconds"):
        tm.rotate_key(c.record.id, overlap_seconds=2**63 - 1)
    with pytest.raises(InvalidArgumentError, match="ttl_seconds"):
        tm.create_session("o", ttl_seconds=2**63 - 1)
    with pytest.raises(InvalidArgumentError, match="idle_timeout_seconds"):
        tm.create_session("o", idle_timeout_seconds=2**63 - 1)
    tm.create_signing_key("ES256")
    with pytest.raises(InvalidArgumentError, match="overlap_seconds"):
        tm.rotate_signing_key(overlap_seconds=2**63 - 1)  # wrapped to a negative verify_until
    with pytest.raises(InvalidArgumentError, match="overlap_seconds"):
        tm.rotate_due(overlap_seconds=2**63 - 1)
    assert len(tm.list_signing_keys()) == 1
    with pytest.raises(InvalidArgumentError, match="ttl_seconds"):
        tm.exchange_api_key(c.key, ttl_seconds=2**63 - 1)
    with pytest.raises(InvalidArgumentError, match="ttl_seconds"):
        tm.issue_jwt({"sub": "o"}, ttl_seconds=2**63 - 1)
    for at in (-1, last + 1, 2**63 - 1):  # a time no summary could show
        with pytest.raises(InvalidArgumentError, match="at must be"):
            tm.record_usage(key_id=c.record.id, request_id=f"r{at}", at=at)
    tm.record_usage(key_id=c.record.id, request_id="last", at=last)
    assert [t["day"] for t in tm.usage_summary(group_by=["day"])] == ["9999-12-31"]
    assert tm.get_key(c.record.id).status == "active"  # nothing half-done
    assert tm.exchange_api_key(c.key, ttl_seconds=60)["expires_at"] > 0
    tm.close()


def test_nul_in_lookups_and_filters_is_invalid_argument() -> None:
    # PostgreSQL refused it as a STORAGE error; SQLite answered "not found".
    tm = TokenManager(":memory:")
    nul = "a\x00b"
    for call in (
        lambda: tm.get_key(nul),
        lambda: tm.list_keys(owner=nul),
        lambda: tm.list_audit(actor=nul),
        lambda: tm.usage_summary(model=nul),
        lambda: tm.list_sessions(owner=nul),
    ):
        with pytest.raises(InvalidArgumentError, match="control characters"):
            call()
    c = tm.create_key("o", metadata={"k\x00": "v\x00"})
    assert tm.get_key(c.record.id).metadata == {"k\x00": "v\x00"}
    tm.close()



def test_flush_waits_for_a_flush_under_way_and_reads_count_every_use(tmp_path: Any) -> None:
    """While the background writer holds uses it took from the buffer (here:
    waiting for the write lock another process holds), `flush()` does not
    answer early and `get_key` does not count them as missing."""
    import subprocess
    import sys
    import threading
    import time

    path = str(tmp_path / "inflight.db")
    tm = TokenManager(path, busy_timeout_ms=20000, flush_interval_ms=3600000)
    c = tm.create_key("f")
    for _ in range(3):
        assert tm.verify_key(c.key)
    # Another process: two SQLite libraries in one process do not see each
    # other's POSIX locks, so the holder cannot be this process.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    released = threading.Event()
    seen: Dict[str, Any] = {}

    def second() -> None:
        tm.flush()
        seen["released before the second flush answered"] = released.is_set()

    def read() -> None:
        seen["uses read during the flush"] = tm.get_key(c.record.id).usage_count

    first = threading.Thread(target=tm.flush)
    first.start()
    time.sleep(0.2)
    assert first.is_alive()  # it has taken the buffer and waits for the lock
    threads = [threading.Thread(target=second), threading.Thread(target=read)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    released.set()
    holder.communicate("release\n", timeout=30)
    for t in [first, *threads]:
        t.join()
    assert seen == {"released before the second flush answered": True, "uses read during the flush": 3}
    assert TokenManager(path).get_key(c.record.id).usage_count == 3
    tm.close()


# Issue 29: smaller broken promises.
def test_an_empty_file_is_never_made_a_new_database(tmp_path: Any) -> None:
    from irontoken import DatabaseNotFoundError

    empty = tmp_path / "truncated.db"
    empty.write_bytes(b"")
    options: List[Dict[str, Any]] = [{}, {"create": False}]
    for kwargs in options:
        with pytest.raises(DatabaseNotFoundError, match="empty"):
            TokenManager(str(empty), **kwargs)
    assert empty.stat().st_size == 0
    with TokenManager(str(tmp_path / "fresh.db")) as tm:
        tm.create_key("o")


def test_one_cap_on_required_scopes_and_a_clock_that_cannot_wrap() -> None:
    with TokenManager(":memory:", manual_clock_start=1_700_000_000) as tm:
        k = tm.create_key("a", scopes=["s"])
        assert tm.verify_key(k.key, ["s"] * 1024).valid
        with pytest.raises(InvalidArgumentError, match="1024"):
            tm.verify_key(k.key, ["s"] * 1025)
        for secs in (2**63 - 1, -(2**63), 253_402_300_800, -1_700_000_001):
            with pytest.raises(InvalidArgumentError):
                tm.advance_clock(secs)
        assert tm.now() == 1_700_000_000
        assert tm.create_key("b").record.created_at == 1_700_000_000
        with pytest.raises(InvalidArgumentError):
            tm.drain_events(-1)


def test_tag_characters_and_separators_are_refused_in_names() -> None:
    with TokenManager(":memory:") as tm:
        for owner in ("admin\U000e0041", "a\u2028b", "a\u2029b", "a\u3164"):
            with pytest.raises(InvalidArgumentError):
                tm.create_key(owner)
        with pytest.raises(InvalidArgumentError):
            tm.create_key("o", scopes=["read\U000e0001"])
        with pytest.raises(InvalidArgumentError):
            tm.create_key("o", actor="ops\U000e0020")
        assert tm.list_keys().items == []


def test_usage_sums_past_2_64_are_exact() -> None:
    max_n = 2**53 - 1
    with TokenManager(":memory:") as tm:
        k = tm.create_key("big")
        for _ in range(2050):
            tm.record_usage(key_id=k.record.id, prompt_tokens=max_n, cost_micros=max_n)
        (t,) = tm.usage_summary()
        assert t["prompt_tokens"] == 2050 * max_n > 2**64
        assert t["cost_micros"] == 2050 * max_n
        assert t["total_tokens"] == 2050 * max_n
