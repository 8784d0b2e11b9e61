"""Four processes consuming one quota: total calls per second.

irontoken `consume_quota` (key quota, durability "normal") against the
hand-written `BEGIN IMMEDIATE; UPDATE q SET used = used + 1 WHERE k = ? AND
used + 1 <= lim; COMMIT` with Python's sqlite3 (WAL, synchronous=NORMAL),
each from 4 processes at once on one file for a fixed time.
Run: `make bench-compare`.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import tempfile
import time

from irontoken import TokenManager

SECONDS = 3.0
PROCS = 4


def ours(path: str, kid: str, start: float, out: "multiprocessing.Queue[int]") -> None:
    tm = TokenManager(path, durability="normal")
    while time.time() < start:
        pass
    n = 0
    end = start + SECONDS
    while time.time() < end:
        tm.consume_quota(kid, requests=1)
        n += 1
    tm.close()
    out.put(n)


def plain(path: str, start: float, out: "multiprocessing.Queue[int]") -> None:
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    con.execute("PRAGMA synchronous=NORMAL")
    while time.time() < start:
        pass
    n = 0
    end = start + SECONDS
    while time.time() < end:
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE q SET used = used + 1 WHERE k = 'k' AND used + 1 <= lim")
        con.execute("COMMIT")
        n += 1
    out.put(n)


def run(target, args) -> float:
    q: "multiprocessing.Queue[int]" = multiprocessing.Queue()
    start = time.time() + 1.0
    ps = [multiprocessing.Process(target=target, args=(*args, start, q)) for _ in range(PROCS)]
    for p in ps:
        p.start()
    total = sum(q.get() for _ in ps)
    for p in ps:
        p.join()
    return total / SECONDS


def main() -> None:
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "q.db")
    tm = TokenManager(db, durability="normal")
    kid = tm.create_key("acme").record.id
    tm.set_quota(kid, metric="requests", period="month", limit=1 << 60)
    tm.close()
    pdb = os.path.join(tmp, "plain.db")
    con = sqlite3.connect(pdb, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE q (k TEXT PRIMARY KEY, used INTEGER, lim INTEGER)")
    con.execute("INSERT INTO q VALUES ('k', 0, ?)", (1 << 60,))
    con.close()
    print(f"{PROCS} processes consuming one quota for {SECONDS:.0f} s (calls/s, all processes)")
    for _ in range(2):
        a = run(ours, (db, kid))
        b = run(plain, (pdb,))
        print(f"  irontoken consume_quota {a:>10,.0f}   hand-written UPDATE {b:>10,.0f}   ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
