"""Rate limits shared by workers: the manager's store (default), Redis, or
per process ("local", opt-in). Four processes share one per-key limit;
Redis down is a StorageError, or allowed when fail-open."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import socket
import time
import uuid
from typing import Any, List, Optional

import pytest

from irontoken import RateLimiter, StorageError, TokenManager
from irontoken.types import RateLimitSpec

from conftest import skip_unless_ci

LIMIT: List[RateLimitSpec] = [{"name": "per_minute", "count": 10, "period_ms": 60_000, "burst": 10}]
ATTEMPTS = 25


def redis_url() -> Optional[str]:
    url = os.environ.get("IRONTOKEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    host, _, port = url.removeprefix("redis://").split("/")[0].rpartition("@")[2].partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=0.5).close()
    except OSError:
        return None
    return url


REDIS = redis_url()


@pytest.fixture
def needs_redis() -> None:
    """The test Redis: one skip line without it on a developer machine, a
    failure under CI (which requires it)."""
    if REDIS is None:
        skip_unless_ci("no Redis")


def scratch_redis() -> str:
    assert REDIS is not None
    return f"{REDIS}?key_prefix=itk-test:py:{uuid.uuid4().hex}:"


def _attempts(kind: str, target: str, key_or_id: str, out: Any) -> None:
    allowed = 0
    if kind == "manager":  # the manager's store, whatever it is
        with TokenManager(target) as tm:
            for _ in range(ATTEMPTS):
                allowed += bool(tm.rate_limit(key_or_id, LIMIT))
    elif kind == "local":
        with TokenManager(target, rate_limit_store="local") as tm:
            for _ in range(ATTEMPTS):
                allowed += bool(tm.rate_limit(key_or_id, LIMIT))
    elif kind == "redis":
        rl = RateLimiter(LIMIT, store=target)
        for _ in range(ATTEMPTS):
            allowed += bool(rl.check(key_or_id))
    elif kind == "verify":  # per-key limits of verify_key_with
        with TokenManager(target) as tm:
            for _ in range(ATTEMPTS):
                allowed += tm.verify_key_with(key_or_id, rate_limit=True).valid
    out.put(allowed)


def four_processes(kind: str, target: str, key: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_attempts, args=(kind, target, key, q)) for _ in range(4)]
    for p in procs:
        p.start()
    total = sum(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return int(total)


def test_the_default_store_holds_one_limit_across_processes(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "rl.db")
    TokenManager(db).close()
    # 4 x 25 attempts within a minute on 10/minute, burst 10: exactly 10.
    assert four_processes("manager", db, "client-1") == 10


def test_local_is_per_process_as_documented(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "local.db")
    TokenManager(db).close()
    assert four_processes("local", db, "client-1") == 40


def test_per_key_limits_of_verify_hold_across_processes(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "keys.db")
    with TokenManager(db) as tm:
        key = tm.create_key("svc", rate_limits=LIMIT).key
    assert four_processes("verify", db, key) == 10


@pytest.mark.usefixtures("needs_redis")
def test_redis_holds_one_limit_across_processes() -> None:
    assert four_processes("redis", scratch_redis(), "client-1") == 10


@pytest.mark.usefixtures("needs_redis")
def test_a_manager_on_redis_shares_its_limits() -> None:
    url = scratch_redis()
    a = TokenManager(":memory:", rate_limit_store=url)
    b = TokenManager(":memory:", rate_limit_store=url)
    allowed = [bool(m.rate_limit("k", LIMIT)) for m in (a, b) * 8]
    assert allowed.count(True) == 10
    d = a.rate_limit("k", LIMIT, peek=True)
    assert not d.allowed and 0 < d.retry_after_ms <= 6_000
    rl = RateLimiter(LIMIT, manager=a)
    assert not rl.check("k")
    assert len(rl) == 0


def test_redis_down_is_a_storage_error_or_fail_open() -> None:
    down = "redis://127.0.0.1:1"  # nothing listens there
    rl = RateLimiter(LIMIT, store=down, timeout_ms=300)
    start = time.monotonic()
    with pytest.raises(StorageError) as e:
        rl.check("k")
    assert time.monotonic() - start < 2
    assert e.value.code == "STORAGE" and "Redis" in str(e.value)
    # Fail-open: allowed, but marked as unchecked, and counted.
    opened = RateLimiter(LIMIT, store=down, fail_open=True)
    for d in (opened.check("k"), opened.peek("k")):
        assert d.allowed and d.degraded and d["degraded"] and d.to_dict()["degraded"]
    assert opened.failures == {"store_errors": 2, "fail_open": 2}
    assert rl.failures == {"store_errors": 1, "fail_open": 0}
    assert not RateLimiter(LIMIT).check("k").degraded
    tm = TokenManager(":memory:", rate_limit_store=down, rate_limit_fail_open=True)
    d = tm.rate_limit("k", LIMIT)
    assert d.allowed and d.degraded
    assert "irontoken_rate_limit_fail_open_total 1" in tm.metrics()
    events = [e for e in tm.drain_events() if e["kind"] == "rate_limit_fail_open"]
    assert len(events) == 1 and events[0]["detail"]["rate_limit_key"] == "k"
    assert RateLimiter(LIMIT, manager=tm).failures == {"store_errors": 1, "fail_open": 1}


def test_bad_store_options_are_invalid_argument() -> None:
    from irontoken import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        TokenManager(":memory:", rate_limit_store="memcached://x")
    with pytest.raises(InvalidArgumentError):
        RateLimiter(LIMIT, store="store")  # a database needs its manager
    with pytest.raises(InvalidArgumentError):
        RateLimiter(LIMIT, store="local", manager=TokenManager(":memory:"))
    with pytest.raises(InvalidArgumentError):
        TokenManager(":memory:").rate_limit("", LIMIT)


@pytest.mark.usefixtures("needs_redis")
def test_a_forked_child_does_not_share_the_parents_redis_connection() -> None:
    url = scratch_redis()
    child_limit: List[RateLimitSpec] = [{"name": "m", "count": 1000, "period_ms": 600_000, "burst": 1000}]
    parent_limit: List[RateLimitSpec] = [{"name": "m", "count": 5000, "period_ms": 600_000, "burst": 5000}]
    rl = RateLimiter(store=url)
    assert rl.check("warm", parent_limit)  # the parent now holds an idle connection

    def remaining(d: Any) -> int:
        # Each answer belongs to its own key: the other process's counts are
        # thousands away. A slow machine may see a few slots refill (one per
        # 120 ms in the parent, 600 ms in the child), hence the margin.
        return int(d.limits[0]["remaining"])

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # Both processes talk at once: on one shared socket each would
            # read answers meant for the other.
            for i in range(400):
                assert 999 - i <= remaining(rl.check("child", child_limit)) < 999 - i + 100
            code = 0
        finally:
            os._exit(code)
    for i in range(400):
        assert 4999 - i <= remaining(rl.check("parent", parent_limit)) < 4999 - i + 100
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
