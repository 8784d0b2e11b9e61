"""PostgreSQL fleet numbers, side by side in one run (BENCHMARKS.md,
"PostgreSQL and Redis: a fleet"):

- revocation lag under load: a watcher process verifies a key in a loop
  while 3 more processes verify other keys; another process revokes; the
  lag is from the revocation's commit to the watcher's first refusal
  (normal and strict);
- the cost of the heartbeat: verifications per second of one process with
  max_staleness_ms=1000 (a heartbeat every 250 ms) against 3600000;
- reserve/settle per second with 1 caller, 2 x 4 and 4 x 4 (processes x
  threads) on PostgreSQL and on SQLite.

Usage: .venv/bin/python bench/revocation_lag_python.py [ROUNDS]
Needs the PostgreSQL of tools/services.py (IRONTOKEN_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Dict, List

import psycopg

from irontoken import TokenManager

BASE = os.environ.get("IRONTOKEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def scratch() -> str:
    schema = f"itk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(BASE, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    return schema


def url_of(schema: str) -> str:
    sep = "&" if "?" in BASE else "?"
    return f"{BASE}{sep}options=-csearch_path%3D{schema}"


def drop(schema: str) -> None:
    with psycopg.connect(BASE, autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")


def watcher(url: str, key: str, strict: bool, ready: Any, out: Any) -> None:
    with TokenManager(url, strict=strict) as tm:
        assert tm.verify_key(key).valid
        ready.set()
        deadline = time.time() + 10
        while time.time() < deadline and tm.verify_key(key).valid:
            pass
        out.put(time.time())


def loader(url: str, keys: List[str], stop: Any) -> None:
    with TokenManager(url) as tm:
        i = 0
        while not stop.is_set():
            tm.verify_key(keys[i % len(keys)])
            i += 1


def lag(rounds: int, strict: bool) -> List[float]:
    ctx = mp.get_context("spawn")
    schema = scratch()
    url = url_of(schema)
    lags = []
    try:
        with TokenManager(url) as tm:
            others = [tm.create_key("load").key for _ in range(100)]
        stop = ctx.Event()
        load = [ctx.Process(target=loader, args=(url, others, stop)) for _ in range(3)]
        for p in load:
            p.start()
        with TokenManager(url) as admin:
            for _ in range(rounds):
                c = admin.create_key("acme")
                ready, out = ctx.Event(), ctx.Queue()
                w = ctx.Process(target=watcher, args=(url, c.key, strict, ready, out))
                w.start()
                ready.wait(30)
                time.sleep(0.05)
                admin.revoke_key(c.record.id)
                committed = time.time()
                refused = out.get(timeout=30)
                w.join()
                lags.append((refused - committed) * 1000)
        stop.set()
        for p in load:
            p.join()
    finally:
        drop(schema)
    return lags


def verify_rate(max_staleness_ms: int, seconds: float = 3.0) -> float:
    schema = scratch()
    try:
        with TokenManager(url_of(schema), max_staleness_ms=max_staleness_ms) as tm:
            key = tm.create_key("acme").key
            tm.verify_key(key)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                tm.verify_key(key)
                n += 1
            return n / (time.perf_counter() - start)
    finally:
        drop(schema)


def reserve_worker(url: str, kid: str, threads: int, n: int, out: Any) -> None:
    with TokenManager(url) as tm:

        def run() -> None:
            for _ in range(n):
                r = tm.reserve_quota(kid, requests=1, ttl_seconds=5)
                if r["reservation"] is not None:
                    tm.settle_reservation(r["reservation"]["id"], requests=1)

        ts = [threading.Thread(target=run) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    out.put(threads * n)


def reserve_rate(url: str, procs: int, threads: int, n: int = 150) -> float:
    ctx = mp.get_context("spawn")
    with TokenManager(url) as tm:
        kid = tm.create_key("acme").record.id
        tm.set_quota(kid, metric="requests", period="none", limit=10**9)
    out = ctx.Queue()
    ps = [ctx.Process(target=reserve_worker, args=(url, kid, threads, n, out)) for _ in range(procs)]
    start = time.perf_counter()
    for p in ps:
        p.start()
    total = sum(out.get(timeout=600) for _ in ps)
    for p in ps:
        p.join()
    return total / (time.perf_counter() - start)


def pct(xs: List[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(f"# PostgreSQL fleet numbers ({rounds} revocations each; 3 loaded processes)")
    print("| revocation lag (ms) | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    for strict in (False, True):
        xs = lag(rounds, strict)
        print(
            f"| {'strict' if strict else 'normal'} | {statistics.median(xs):.1f} | {pct(xs, 0.99):.1f} | {max(xs):.1f} |"
        )
    hb = verify_rate(1000)
    none = verify_rate(3_600_000)
    print(f"\nverify_key/s, one process: heartbeat every 250 ms {hb:,.0f}; every 15 min {none:,.0f} ({hb / none:.2f}x)")
    print("\n| reserve + settle per second | PostgreSQL | SQLite |")
    print("|---|---:|---:|")
    schema = scratch()
    try:
        with tempfile.TemporaryDirectory() as d:
            for procs, threads in ((1, 1), (2, 4), (4, 4)):
                pg = reserve_rate(url_of(schema), procs, threads)
                sq = reserve_rate(os.path.join(d, f"r{procs}x{threads}.db"), procs, threads)
                print(f"| {procs} x {threads} | {pg:,.0f} | {sq:,.0f} |")
    finally:
        drop(schema)


if __name__ == "__main__":
    main()
