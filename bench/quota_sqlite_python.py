"""Side-by-side, issue 10: quota calls on SQLite from Python, on a file.

- `consume_quota` of a key whose only quota is its own (the one-row path of
  schema v8) and of a key whose owner has a quota too (the general path);
- `peek_quota` of the first (one read);
- against Python's sqlite3 on a file in WAL with `synchronous=NORMAL` (the
  durability irontoken's quota commits use): `UPDATE q SET used = used + 1
  WHERE k = ? AND used + 1 <= lim RETURNING used`, and `SELECT used, lim`.

20 000 calls per round, 7 interleaved rounds, medians. Run: `make bench-compare`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Tuple

from irontoken import TokenManager

ROUNDS, CALLS = 7, 20_000


def main() -> None:
    d = tempfile.mkdtemp(prefix="itk-bench-")
    tm = TokenManager(os.path.join(d, "k.db"), durability="normal")
    solo = tm.create_key(owner="a").record.id
    tm.set_quota(solo, metric="requests", period="month", limit=1 << 60)
    shared = tm.create_key(owner="b").record.id
    tm.set_quota(shared, metric="requests", period="month", limit=1 << 60)
    tm.set_quota("b", scope="owner", metric="tokens", period="month", limit=1 << 60)
    c = sqlite3.connect(os.path.join(d, "h.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute("CREATE TABLE q (k TEXT PRIMARY KEY, used INTEGER, lim INTEGER)")
    c.execute("INSERT INTO q VALUES ('k', 0, ?)", (1 << 60,))
    c.execute("INSERT INTO q VALUES ('o', 0, ?)", (1 << 60,))
    # verify_key_with + quota by hand: the key looked up by its hash, then
    # its quota charged (two statements, as a service would write them).
    key = tm.create_key(owner="c", scopes=["read"]).key
    tm.set_quota(tm.verify_key(key).record.id, metric="requests", period="month", limit=1 << 60)
    c.execute("CREATE TABLE k (h BLOB PRIMARY KEY, owner TEXT, scopes TEXT)")
    c.execute("INSERT INTO k VALUES (?, 'c', '[\"read\"]')", (hashlib.sha256(key.encode()).digest(),))

    def two_rows() -> object:
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE q SET used = used + 1 WHERE k = ? AND used + 1 <= lim RETURNING used", ("k",)).fetchone()
        c.execute("UPDATE q SET used = used + 1 WHERE k = ? AND used + 1 <= lim RETURNING used", ("o",)).fetchone()
        return c.execute("COMMIT")

    def lookup_then_charge() -> object:
        h = hashlib.sha256(key.encode()).digest()
        if c.execute("SELECT owner, scopes FROM k WHERE h = ?", (h,)).fetchone() is None:
            return None
        return c.execute(
            "UPDATE q SET used = used + 1 WHERE k = ? AND used + 1 <= lim RETURNING used", ("k",)
        ).fetchone()

    with_quota = {"quota": {"requests": 1}}
    rows: List[Tuple[str, Callable[[], object]]] = [
        ("consume_quota, key quota only (one row)", lambda: tm.consume_quota(solo, requests=1)),
        ("consume_quota, key + owner quota", lambda: tm.consume_quota(shared, requests=1)),
        (
            "sqlite3 UPDATE ... RETURNING",
            lambda: c.execute("UPDATE q SET used = used + 1 WHERE k = ? AND used + 1 <= lim RETURNING used", ("k",)).fetchone(),
        ),
        ("sqlite3 two UPDATEs in one transaction", two_rows),
        ("peek_quota, key quota only (one read)", lambda: tm.peek_quota(solo, requests=1)),
        ("sqlite3 SELECT used, lim", lambda: c.execute("SELECT used, lim FROM q WHERE k = ?", ("k",)).fetchone()),
        ("verify_key_with(key, quota=1 request)", lambda: tm.verify_key_with(key, **with_quota)),
        ("sqlite3 lookup by hash, then UPDATE", lookup_then_charge),
    ]
    res: Dict[str, List[float]] = {}
    for _ in range(ROUNDS):
        for name, f in rows:
            t = time.perf_counter()
            for _ in range(CALLS):
                f()
            res.setdefault(name, []).append((time.perf_counter() - t) / CALLS * 1e6)
    print(f"quotas on a SQLite file (durability normal), medians of {ROUNDS} interleaved rounds")
    for name, _ in rows:
        print(f"  {name:45s} {statistics.median(res[name]):7.2f} µs")
    med = {name: statistics.median(v) for name, v in res.items()}
    print("  ratios (hand-written ÷ irontoken; above 1 irontoken is faster):")
    for ours, theirs in (
        ("consume_quota, key quota only (one row)", "sqlite3 UPDATE ... RETURNING"),
        ("consume_quota, key + owner quota", "sqlite3 two UPDATEs in one transaction"),
        ("peek_quota, key quota only (one read)", "sqlite3 SELECT used, lim"),
        ("verify_key_with(key, quota=1 request)", "sqlite3 lookup by hash, then UPDATE"),
    ):
        print(f"    {ours:45s} {med[theirs] / med[ours]:5.2f}x")


if __name__ == "__main__":
    main()
