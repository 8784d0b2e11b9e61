"""Side-by-side: quota consumption and usage recording from Python.

irontoken (Rust core through PyO3) against the hand-written way: Python's
sqlite3 with an atomic `UPDATE ... WHERE used + ? <= limit` per request and
an `INSERT OR IGNORE` per usage report, each committed (WAL, the default
synchronous=FULL, as irontoken's default durability), all in one process run.
Run: `make bench-compare` (after `make build`).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import sys
import threading
import tempfile
import time
from typing import Callable

from irontoken import TokenManager

from _measure import measure


def main() -> None:
    def m(name: str, fn: Callable[[], object], n: int) -> None:
        measure(name, fn, n, width=56)

    tmp = tempfile.mkdtemp()
    tm = TokenManager(os.path.join(tmp, "bench.db"))
    created = tm.create_key(
        "acme", rate_limits=[{"name": "rps", "count": 10**9, "period_ms": 1000, "burst": 10**9}]
    )
    kid = created.record.id
    tm.set_quota(kid, metric="requests", period="month", limit=1 << 60)
    tm.set_quota("acme", scope="owner", metric="tokens", period="month", limit=1 << 60)

    con = sqlite3.connect(os.path.join(tmp, "plain.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE q (k TEXT PRIMARY KEY, used INTEGER, lim INTEGER)")
    con.execute("INSERT INTO q VALUES ('k', 0, ?)", (1 << 60,))
    con.execute(
        "CREATE TABLE u (rid TEXT PRIMARY KEY, k TEXT, model TEXT, p INTEGER, c INTEGER, cost INTEGER)"
    )

    def plain_consume() -> object:
        con.execute("BEGIN IMMEDIATE")
        n = con.execute("UPDATE q SET used = used + 1 WHERE k = 'k' AND used + 1 <= lim").rowcount
        con.execute("COMMIT")
        return n

    # The same at irontoken's quota durability (synchronous=NORMAL: no fsync).
    nrm = sqlite3.connect(os.path.join(tmp, "plain.db"), isolation_level=None)
    nrm.execute("PRAGMA synchronous=NORMAL")

    def plain_consume_normal() -> object:
        nrm.execute("BEGIN IMMEDIATE")
        n = nrm.execute("UPDATE q SET used = used + 1 WHERE k = 'k' AND used + 1 <= lim").rowcount
        nrm.execute("COMMIT")
        return n

    nrm.execute("CREATE TABLE IF NOT EXISTS q2 (k TEXT PRIMARY KEY, used INTEGER, lim INTEGER)")
    nrm.execute("INSERT OR IGNORE INTO q2 VALUES ('owner', 0, ?)", (1 << 60,))

    def plain_consume_two() -> object:
        # What consume_quota does: the key's and the owner's quota, all or nothing.
        nrm.execute("BEGIN IMMEDIATE")
        a = nrm.execute("UPDATE q SET used = used + 1 WHERE k = 'k' AND used + 1 <= lim").rowcount
        b = nrm.execute("UPDATE q2 SET used = used + 100 WHERE k = 'owner' AND used + 100 <= lim").rowcount
        nrm.execute("COMMIT" if a and b else "ROLLBACK")
        return a and b

    def plain_peek() -> object:
        return nrm.execute("SELECT used + 1 <= lim FROM q WHERE k = 'k'").fetchone()

    ids = itertools.count()

    def plain_record() -> object:
        con.execute(
            "INSERT OR IGNORE INTO u VALUES (?, 'k', 'gpt-4o', 1200, 300, 4500)", (f"r{next(ids)}",)
        )
        return None

    def itk_record() -> object:
        return tm.record_usage(
            request_id=f"r{next(ids)}", key_id=kid, model="gpt-4o", prompt_tokens=1200,
            completion_tokens=300, cost_micros=4500,
        )

    print("quota consumption (one request; irontoken checks a key and an owner quota)")
    m("irontoken consume_quota (no fsync, all-or-nothing)", lambda: tm.consume_quota(kid, requests=1, tokens=100), 4000)
    m("sqlite3 UPDATE ... WHERE used+1 <= lim, synchronous=NORMAL", plain_consume_normal, 4000)
    m("sqlite3 two UPDATEs (key + owner), synchronous=NORMAL", plain_consume_two, 4000)
    m("sqlite3 UPDATE ... WHERE used+1 <= lim, synchronous=FULL", plain_consume, 400)
    m("irontoken peek_quota", lambda: tm.peek_quota(kid, requests=1, tokens=100), 20000)
    m("sqlite3 SELECT used + 1 <= lim", plain_peek, 20000)
    print("usage records")
    m("irontoken record_usage (buffered, idempotent)", itk_record, 20000)
    m("sqlite3 INSERT OR IGNORE, committed", plain_record, 400)
    print("verification with limits")
    m("irontoken verify_key", lambda: tm.verify_key(created.key), 20000)
    m("irontoken verify_key_with(rate_limit=True)", lambda: tm.verify_key_with(created.key, rate_limit=True), 20000)
    m(
        "irontoken verify_key_with(rate_limit=True, quota={requests: 1})",
        lambda: tm.verify_key_with(created.key, rate_limit=True, quota={"requests": 1}),
        4000,
    )
    print("consume_quota while another thread records a burst of usage (flushed in slices)")
    sys.setswitchinterval(1e-4)  # the GIL changes hands often: the waits are the flush's
    for burst in (100_000, 300_000):
        done = threading.Event()

        def record_burst(n: int = burst) -> None:
            for _ in range(n):
                itk_record()
            tm.flush()
            done.set()

        worker = threading.Thread(target=record_burst)
        worker.start()
        waits = []
        while not done.is_set():
            t = time.perf_counter_ns()
            tm.consume_quota(kid, requests=1, tokens=100)
            waits.append(time.perf_counter_ns() - t)
        worker.join()
        waits.sort()
        print(
            f"  {burst:,} record_usage in another thread: {len(waits):,} consume_quota meanwhile, "
            f"p50 {waits[len(waits) // 2] / 1e3:.0f} µs, p99 {waits[len(waits) * 99 // 100] / 1e6:.2f} ms, "
            f"max {waits[-1] / 1e6:.2f} ms"
        )
    tm.close()


if __name__ == "__main__":
    main()
