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
import tempfile
import time
import uuid

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

    # Baseline 4 (issue 33's target, create_key <= 2x): the same row shape,
    # the same indexes (id, key hash, owner) and the same audit row with its
    # two indexes, in one commit.
    w.execute(
        "CREATE TABLE keys (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
        "key_hash BLOB NOT NULL UNIQUE, prefix TEXT, display_prefix TEXT, owner TEXT, "
        "name TEXT, scopes TEXT, metadata TEXT, created_at INTEGER, updated_at INTEGER)"
    )
    w.execute("CREATE INDEX keys_owner ON keys (owner, seq)")
    w.execute(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER, action TEXT, key_id TEXT, "
        "display_prefix TEXT, actor TEXT, outcome TEXT, detail TEXT)"
    )
    w.execute("CREATE INDEX audit_key ON audit (key_id, id)")
    w.execute("CREATE INDEX audit_at ON audit (at)")

    def plain_insert_same_indexes() -> object:
        secret = "itk_" + secrets.token_urlsafe(32)
        h = hashlib.sha256(secret.encode()).digest()
        kid, now = str(uuid.uuid4()), int(time.time())
        w.execute("BEGIN")
        w.execute(
            "INSERT INTO keys (id, key_hash, prefix, display_prefix, owner, name, scopes, "
            "metadata, created_at, updated_at) VALUES (?, ?, 'itk', ?, 'bench', '', '[]', '{}', ?, ?)",
            (kid, h, secret[:12], now, now),
        )
        w.execute(
            "INSERT INTO audit (at, action, key_id, display_prefix, outcome) "
            "VALUES (?, 'key.create', ?, ?, 'ok')",
            (now, kid, secret[:12]),
        )
        return w.execute("COMMIT")

    # Interleaved rounds: the files grow side by side.
    ratios = []
    for r in range(3):
        print(f"  -- create, round {r + 1}")
        ours = measure("irontoken create_key (durability=normal)", lambda: tm.create_key("bench"), 2_000)
        measure("sqlite3 INSERT, committed (hand-written)", plain_insert, 2_000)
        measure("sqlite3 INSERT + audit row, committed", plain_insert_audit, 2_000)
        same = measure("sqlite3 INSERT, same indexes + audit row", plain_insert_same_indexes, 2_000)
        ratios.append(same / ours)
    print(f"  create_key against the same-indexes insert: ratio {sorted(ratios)[1]:.2f}x (target >= 0.50)")
    tm.close()


if __name__ == "__main__":
    main()
