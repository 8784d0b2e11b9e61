"""PostgreSQL standing in for a fleet: separate processes (separate pools and
caches) share keys, quotas, rate limits and revocations. Skipped with one
line when no PostgreSQL answers (make test); CI requires it."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any, Dict, Iterator

import pytest

from irontoken import TokenManager

from conftest import pg_scratch, postgres_answers, run_threads, skip_unless_ci

_POSTGRES = postgres_answers()


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    """Every test here needs the test PostgreSQL: one skip line without it
    on a developer machine, a failure under CI (which requires it)."""
    if not _POSTGRES:
        skip_unless_ci("no PostgreSQL")


@pytest.fixture
def url() -> Iterator[str]:
    with pg_scratch() as u:
        yield u


def _consume(url: str, kid: str, out: Any) -> None:
    tm = TokenManager(url)
    granted = [0] * 4

    def run(t: int) -> None:
        for _ in range(25):
            if tm.consume_quota(kid, requests=1)["allowed"]:
                granted[t] += 1

    run_threads(run)
    tm.close()
    out.put(sum(granted))


def test_quota_race_across_processes_is_exact(url: str) -> None:
    with TokenManager(url) as tm:
        kid = tm.create_key("acme").record.id
        tm.set_quota(kid, metric="requests", period="day", limit=300)
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_consume, args=(url, kid, q)) for _ in range(4)]
    for p in procs:
        p.start()
    granted = sum(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # 4 processes x 4 threads x 25 = 400 attempts on 300: exactly 300.
    assert granted == 300
    with TokenManager(url) as tm:
        assert tm.list_quotas(kid)[0]["used"] == 300


def _rate(url: str, out: Any) -> None:
    with TokenManager(url) as tm:
        limit = [{"name": "per_minute", "count": 10, "period_ms": 60_000, "burst": 10}]
        out.put(sum(bool(tm.rate_limit("client", limit)) for _ in range(25)))


def test_one_rate_limit_for_the_whole_cluster(url: str) -> None:
    TokenManager(url).close()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_rate, args=(url, q)) for _ in range(4)]
    for p in procs:
        p.start()
    assert sum(q.get(timeout=120) for _ in procs) == 10
    for p in procs:
        p.join(timeout=60)


def _watch(url: str, key: str, ready: Any, out: Any) -> None:
    """Verifies in a loop until refused; reports when (time.time())."""
    with TokenManager(url) as tm:
        assert tm.verify_key(key).valid
        ready.set()
        deadline = time.time() + 10
        while time.time() < deadline:
            if not tm.verify_key(key).valid:
                out.put(time.time())
                return
        out.put(None)


def test_a_revocation_reaches_every_process_within_milliseconds(url: str) -> None:
    with TokenManager(url) as tm:
        created = tm.create_key("svc")
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        ready = [ctx.Event() for _ in range(3)]
        procs = [ctx.Process(target=_watch, args=(url, created.key, r, q)) for r in ready]
        for p in procs:
            p.start()
        for r in ready:
            assert r.wait(60)
        time.sleep(0.2)
        revoked_at = time.time()
        tm.revoke_key(created.record.id)
        seen = [q.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    lags = [s - revoked_at for s in seen]
    # The goal is 50 ms; the assertion leaves room for a loaded CI machine.
    assert all(lag < 0.5 for lag in lags), lags


def test_fork_with_postgres(url: str) -> None:
    tm = TokenManager(url, flush_interval_ms=3_600_000)
    created = tm.create_key("svc")
    assert tm.verify_key(created.key).valid
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for _ in range(5):
                assert tm.verify_key(created.key).valid
            tm.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    tm.flush()
    assert tm.get_key(created.record.id).usage_count == 6
    tm.close()


SNAKEOIL = "/etc/ssl/certs/ssl-cert-snakeoil.pem"


def test_tls_verifies_the_server(url: str) -> None:
    """sslmode=verify-full with the server's CA connects encrypted (the
    server says so); without the CA, or under a name the certificate does
    not carry, the connection is refused with StorageError — never made in
    clear."""
    import psycopg

    from irontoken import StorageError

    if not os.path.exists(SNAKEOIL) or "@127.0.0.1" not in url:
        # A server elsewhere, or no snakeoil certificate to trust: TLS cannot be
        # checked against a known CA here (this project's machines have both,
        # so under CI it is a failure, not a skip).
        skip_unless_ci(f"TLS needs the test server at 127.0.0.1 with {SNAKEOIL}")
    admin_url = url.split("?")[0]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if admin.execute("SHOW ssl").fetchone() != ("on",):
            # A PostgreSQL built or configured without TLS: nothing to connect to
            # (this project's server has ssl on: under CI a failure).
            skip_unless_ci("the test server has ssl off")
        app = f"itk_py_tls_{os.getpid()}"
        trusted = f"sslmode=verify-full&sslrootcert={SNAKEOIL.replace('/', '%2F')}"
        tls_url = url.replace("@127.0.0.1", "@localhost") + f"&application_name={app}&{trusted}"
        with TokenManager(tls_url) as tm:
            created = tm.create_key("tls")
            assert tm.verify_key(created.key).valid
            rows = admin.execute(
                "SELECT s.ssl, count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                "WHERE a.application_name = %s GROUP BY s.ssl",
                (app,),
            ).fetchall()
            by_ssl: Dict[bool, int] = {bool(r[0]): int(r[1]) for r in rows}
            assert by_ssl.get(True, 0) >= 1 and by_ssl.get(False, 0) == 0, rows
    for bad in (
        url.replace("@127.0.0.1", "@localhost") + "&sslmode=require",  # CA not trusted
        url + "&" + trusted,  # certificate issued to localhost, not 127.0.0.1
    ):
        with pytest.raises(StorageError, match="certificate") as e:
            TokenManager(bad)
        assert e.value.code == "STORAGE"


def test_try_verify_key_answers_from_the_caches_only(url: str) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from irontoken.aio import AsyncTokenManager

    other = TokenManager(url)
    created = other.create_key("alice", scopes=["read"])
    tm = TokenManager(url)
    assert tm.try_verify_key(created.key, ["read"]) is None  # not seen yet: needs the server
    deadline = time.monotonic() + 5
    while True:
        assert tm.verify_key(created.key, ["read"]).valid
        now = tm.try_verify_key(created.key, ["read"])
        if now is not None:
            break
        assert time.monotonic() < deadline, "never cached"
        time.sleep(0.005)
    assert now.valid

    class Counting(ThreadPoolExecutor):
        submitted = 0

        def submit(self, *a: Any, **k: Any) -> Any:  # type: ignore[override]
            Counting.submitted += 1
            return super().submit(*a, **k)

    async def main() -> None:
        ex = Counting(max_workers=1)
        atm = AsyncTokenManager(url, executor=ex)
        fresh = other.create_key("bob")
        assert (await atm.verify_key(fresh.key)).valid  # uncached: off the loop
        assert Counting.submitted == 1
        while atm.try_verify_key(fresh.key) is None:
            assert time.monotonic() < deadline + 5
            await atm.verify_key(fresh.key)
        before = Counting.submitted
        assert (await atm.verify_key(fresh.key)).valid  # cached: on the loop
        assert Counting.submitted == before
        await atm.close()
        ex.shutdown()

    asyncio.run(main())
    # A revocation on another host: never "valid" from the cache afterwards.
    other.revoke_key(created.record.id)
    while True:
        v = tm.try_verify_key(created.key)
        if v is None or not v.valid:
            break
        assert time.monotonic() < deadline + 10, "revocation never arrived"
        time.sleep(0.002)
    assert tm.verify_key(created.key).reason == "REVOKED"
    tm.close()
    other.close()
