"""Side-by-side: API-key verification from Python.

irontoken (Rust core through PyO3) against what the platform does today
(bcrypt.checkpw on a stored hash) and a hand-written sha256 + sqlite3 lookup,
all in one process run. Run: `make bench-compare` (after `make build`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
import tempfile

import bcrypt

from irontoken import TokenManager

from _measure import measure

N_KEYS = 10_000


def main() -> None:
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "bench.db")
    tm = TokenManager(db, durability="normal")
    keys = [tm.create_key("bench", scopes=["read"]).key for _ in range(N_KEYS)]
    tm.flush()
    valid = keys[N_KEYS // 2]
    other = TokenManager(":memory:").create_key("x").key

    # Baseline 1: sha256 + sqlite3 from Python (what one would hand-write).
    con = sqlite3.connect(os.path.join(tmp, "plain.db"))
    con.execute("CREATE TABLE k (h BLOB PRIMARY KEY, owner TEXT, scopes TEXT)")
    con.executemany(
        "INSERT INTO k VALUES (?, 'bench', '[\"read\"]')",
        [(hashlib.sha256(k.encode()).digest(),) for k in keys],
    )
    con.commit()

    def plain_verify() -> object:
        return con.execute(
            "SELECT owner, scopes FROM k WHERE h = ?", (hashlib.sha256(valid.encode()).digest(),)
        ).fetchone()

    # Baseline 2: bcrypt, as the platform stores keys today (default cost 12).
    hashed = bcrypt.hashpw(valid.encode(), bcrypt.gensalt())

    print(f"API-key verification, {N_KEYS} keys in the store, one Python process")
    measure("irontoken verify_key VALID", lambda: tm.verify_key(valid), 20_000)
    measure("irontoken verify_key VALID + scope", lambda: tm.verify_key(valid, ["read"]), 20_000)
    measure("irontoken verify_key NOT_FOUND", lambda: tm.verify_key(other), 20_000)
    measure("irontoken verify_key MALFORMED", lambda: tm.verify_key("itk_nope"), 20_000)
    measure("hashlib.sha256 + sqlite3 lookup (hand-written)", plain_verify, 20_000)
    measure("bcrypt.checkpw, cost 12 (one stored hash)", lambda: bcrypt.checkpw(valid.encode(), hashed), 20)
    # Baseline 3: a hand-written insert at the same durability (WAL,
    # synchronous=NORMAL, one commit per key): a random secret, its SHA-256,
    # one row; "+ audit" also appends an audit row in the same commit, as
    # create_key does.
    w = sqlite3.connect(os.path.join(tmp, "plain_w.db"), isolation_level=None)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("PRAGMA synchronous=NORMAL")
    w.execute("CREATE TABLE k (h BLOB PRIMARY KEY, owner TEXT, scopes TEXT, created_at INTEGER)")
    w.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, at INTEGER, action TEXT, h BLOB)")

    def plain_insert() -> object:
        h = hashlib.sha256(("itk_" + secrets.token_urlsafe(32)).encode()).digest()
        w.execute("BEGIN")
        w.execute("INSERT INTO k VALUES (?, 'bench', '[]', ?)", (h, int(time.time())))
        return w.execute("COMMIT")

    def plain_insert_audit() -> object:
        h = hashlib.sha256(("itk_" + secrets.token_urlsafe(32)).encode()).digest()
        now = int(time.time())
        w.execute("BEGIN")
        w.execute("INSERT INTO k VALUES (?, 'bench', '[]', ?)", (h, now))
        w.execute("INSERT INTO a (at, action, h) VALUES (?, 'key.create', ?)", (now, h))
        return w.execute("COMMIT")

    # Interleaved rounds: the two files grow side by side.
    for r in range(3):
        print(f"  -- create, round {r + 1}")
        measure("irontoken create_key (durability=normal)", lambda: tm.create_key("bench"), 2_000)
        measure("sqlite3 INSERT, committed (hand-written)", plain_insert, 2_000)
        measure("sqlite3 INSERT + audit row, committed", plain_insert_audit, 2_000)
    tm.close()


if __name__ == "__main__":
    main()
