"""Key verification over a random working set, 10k / 100k / 1M keys stored.

irontoken `verify_key` against a hand-written sha256 + sqlite3 lookup, both
on the same keys, interleaved, from one Python process. Each database is
built once with the bulk path (`create_keys`) and cached under
`target/bench/` (the 1M one takes about a minute and 0.6 GB).
Run: `make bench-compare` (or `.venv/bin/python bench/keys_sweep_python.py 10000 100000`).
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import sys
import time

from irontoken import SCHEMA_VERSION, TokenManager

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "bench")
SAMPLES = 100_000
# page_cache_mib of the sized run: the 1M-key state index and usage table fit.
SIZED_PAGE_CACHE_MIB = 256


def build(n: int) -> str:
    """The directory holding n keys (irontoken.db, plain.db, keys.txt), built if missing."""
    d = os.path.join(ROOT, f"keys-v{SCHEMA_VERSION}-{n}")
    if os.path.exists(os.path.join(d, "keys.txt")):
        return d
    os.makedirs(d, exist_ok=True)
    tm = TokenManager(os.path.join(d, "irontoken.db"), durability="normal")
    keys: list[str] = []
    t = time.perf_counter()
    while len(keys) < n:
        batch = min(50_000, n - len(keys))
        created = tm.create_keys([{"owner": f"o{i % 1000}", "scopes": ["read"]} for i in range(batch)])
        keys += [c.key for c in created]
    rate = n / (time.perf_counter() - t)
    tm.close()
    print(f"  built {n} keys with create_keys: {rate:,.0f} keys/s")
    con = sqlite3.connect(os.path.join(d, "plain.db"))
    con.execute("CREATE TABLE k (h BLOB PRIMARY KEY, owner TEXT, scopes TEXT)")
    con.executemany(
        "INSERT INTO k VALUES (?, 'bench', '[\"read\"]')",
        [(hashlib.sha256(k.encode()).digest(),) for k in keys],
    )
    con.commit()
    con.close()
    with open(os.path.join(d, "keys.txt"), "w") as f:
        f.write("\n".join(keys))
    return d


def percentiles(fn, sample: list[str]) -> tuple[float, float]:
    """p50 and p99 in µs of fn(key) over the sample (each call timed)."""
    pc = time.perf_counter_ns
    ts = []
    for k in sample:
        t = pc()
        fn(k)
        ts.append(pc() - t)
    ts.sort()
    return ts[len(ts) // 2] / 1000, ts[int(len(ts) * 0.99)] / 1000


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    print("verify_key, random keys out of N stored (p50 / p99 µs; hand-written = sha256 + sqlite3)")
    print(f"  {'N':>9} {'irontoken p50':>14} {'p99':>7} {'hand-written p50':>17} {'p99':>7} {'ratio p50 / p99':>16}")
    for n in sizes:
        d = build(n)
        with open(os.path.join(d, "keys.txt")) as f:
            keys = f.read().split("\n")
        tm = TokenManager(os.path.join(d, "irontoken.db"), durability="normal")
        con = sqlite3.connect(os.path.join(d, "plain.db"))

        def plain(k: str) -> object:
            return con.execute(
                "SELECT owner, scopes FROM k WHERE h = ?", (hashlib.sha256(k.encode()).digest(),)
            ).fetchone()

        rng = random.Random(n)
        row(f"{n:>9}", rounds(tm.verify_key, plain, keys, rng, warm=True))
        tm.close()
        if n >= 100_000:
            # The caches sized to the key set (README, "Verifying from a
            # million keys"): every key verified once first, which warms
            # both files the same way.
            opts = {"key_cache_size": n + n // 10, "page_cache_mib": SIZED_PAGE_CACHE_MIB}
            tm = TokenManager(os.path.join(d, "irontoken.db"), durability="normal", **opts)
            for k in keys:
                tm.verify_key(k)
                plain(k)
            row(f"{'  sized':>9}", rounds(tm.verify_key, plain, keys, rng, warm=False), f"  ({opts})")
            tm.close()
        con.close()


def rounds(ours, plain, keys: list[str], rng: random.Random, warm: bool) -> list[float]:
    """p50 and p99 of ours, then of plain: the median of 3 interleaved
    rounds, a fresh random sample each (its first quarter run through both
    first when warm)."""
    mine, theirs = [], []
    for _ in range(3):
        sample = [rng.choice(keys) for _ in range(SAMPLES)]
        if warm:
            for k in sample[: SAMPLES // 4]:
                ours(k)
                plain(k)
        mine.append(percentiles(ours, sample))
        theirs.append(percentiles(plain, sample))
    return [sorted(x)[1] for x in (*zip(*mine), *zip(*theirs))]


def row(label: str, m: list[float], note: str = "") -> None:
    """One line of the table: [p50, p99, hand p50, hand p99] and the ratios
    (hand-written ÷ irontoken: above 1 irontoken is faster)."""
    o50, o99, t50, t99 = m
    print(f"  {label} {o50:>14.2f} {o99:>7.2f} {t50:>17.2f} {t99:>7.2f} {t50 / o50:>7.2f}x / {t99 / o99:.2f}x{note}")


if __name__ == "__main__":
    main()
