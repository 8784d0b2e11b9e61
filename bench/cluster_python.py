"""Side-by-side, issue 11: the PostgreSQL store and shared rate limits,
from Python, on the PostgreSQL and Redis of this machine.

- verify_key of random keys out of 10 000: SQLite file, PostgreSQL with the
  change-notified cache, PostgreSQL `strict` (one round trip per call), and
  a hand-written psycopg lookup (sha256 + SELECT by hash) for scale;
- quota consumption: irontoken on PostgreSQL against the hand-written
  `UPDATE q SET used = used + 1 WHERE k = %s AND used + 1 <= lim RETURNING`
  (psycopg, autocommit, synchronous_commit off like irontoken's quota commits);
- rate limit checks: irontoken on Redis, on PostgreSQL (store), local,
  against `limits` (moving window, fixed window) on the same Redis;
- revocation lag: another process refuses a revoked key after how long.

Medians of 20 batches; the rounds interleave. Needs PostgreSQL and Redis
(IRONTOKEN_TEST_POSTGRES_URL / IRONTOKEN_TEST_REDIS_URL). Run: `make bench-compare`.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

import psycopg

from irontoken import RateLimiter, TokenManager

from _measure import median_us

PG = os.environ.get("IRONTOKEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("IRONTOKEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
N_KEYS = 10_000


def schema_url(schema: str) -> str:
    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}options=-csearch_path%3D{schema}"


def _watch(url: str, key: str, ready, out) -> None:  # type: ignore[no-untyped-def]
    with TokenManager(url) as tm:
        assert tm.verify_key(key).valid
        ready.set()
        while tm.verify_key(key).valid:
            pass
        out.put(time.time())


def revocation_lag(url: str, rounds: int = 7) -> list[float]:
    ctx = multiprocessing.get_context("spawn")
    lags = []
    with TokenManager(url) as tm:
        for _ in range(rounds):
            c = tm.create_key("lag")
            q, ready = ctx.Queue(), ctx.Event()
            p = ctx.Process(target=_watch, args=(url, c.key, ready, q))
            p.start()
            ready.wait(60)
            time.sleep(0.1)
            t = time.time()
            tm.revoke_key(c.record.id)
            lags.append((q.get(timeout=30) - t) * 1000)
            p.join()
    return lags


def main() -> None:
    schema = f"itk_bench_{os.getpid()}"
    admin = psycopg.connect(PG, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        run(schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def run(schema: str) -> None:
    url = schema_url(schema)
    tmp = tempfile.mkdtemp()
    sqlite = TokenManager(os.path.join(tmp, "bench.db"), durability="normal")
    pg = TokenManager(url)
    strict = TokenManager(url, strict=True)
    keys_sqlite = [c.key for c in sqlite.create_keys([{"owner": "o"}] * N_KEYS)]
    keys_pg = [c.key for c in pg.create_keys([{"owner": "o"}] * N_KEYS)]

    hand = psycopg.connect(url, autocommit=True)
    hand.execute("CREATE TABLE hand_keys (key_hash bytea PRIMARY KEY, id text, owner text, "
                 "enabled boolean, revoked_at bigint, expires_at bigint)")
    hand_keys = [f"hk_{uuid.uuid4().hex}" for _ in range(N_KEYS)]
    with hand.cursor() as cur:
        cur.executemany("INSERT INTO hand_keys VALUES (%s, %s, 'o', true, NULL, NULL)",
                        [(hashlib.sha256(k.encode()).digest(), str(uuid.uuid4())) for k in hand_keys])

    def pick(keys):  # type: ignore[no-untyped-def]
        return lambda: keys[random.randrange(N_KEYS)]

    pk_sqlite, pk_pg, pk_hand = pick(keys_sqlite), pick(keys_pg), pick(hand_keys)
    select = "SELECT id, owner, enabled, revoked_at, expires_at FROM hand_keys WHERE key_hash = %s"

    def hand_verify() -> object:
        row = hand.execute(select, (hashlib.sha256(pk_hand().encode()).digest(),), prepare=True).fetchone()
        return row is not None and row[2] and row[3] is None

    # Warm every cache: each key once, after the listener has taken in the
    # creation notifications (each one drops what it names).
    time.sleep(2)
    for k in keys_sqlite:
        sqlite.verify_key(k)
    for k in keys_pg:
        pg.verify_key(k)

    kid = pg.create_key("acme").record.id
    pg.set_quota(kid, metric="requests", period="month", limit=1 << 60)
    hand.execute("SET synchronous_commit = off")
    hand.execute("CREATE TABLE q (k text PRIMARY KEY, used bigint, lim bigint)")
    hand.execute("INSERT INTO q VALUES ('k', 0, %s)", (1 << 60,))
    update = "UPDATE q SET used = used + 1 WHERE k = 'k' AND used + 1 <= lim RETURNING used"

    limit = [{"name": "rps", "count": 10**9, "period_ms": 1000, "burst": 10**9}]
    rl_redis = RateLimiter(limit, store=f"{REDIS}?key_prefix=itk-bench-{os.getpid()}:")
    rl_store = RateLimiter(limit, manager=pg)
    rl_local = RateLimiter(limit)
    import limits as lim_lib
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    storage = RedisStorage(REDIS)
    item = lim_lib.parse("1000000000/second")
    moving, fixed = MovingWindowRateLimiter(storage), FixedWindowRateLimiter(storage)

    rows = {
        "verify_key, SQLite file (10k keys, random)": lambda: sqlite.verify_key(pk_sqlite()),
        "verify_key, PostgreSQL + notified cache": lambda: pg.verify_key(pk_pg()),
        "verify_key, PostgreSQL strict (1 round trip)": lambda: strict.verify_key(pk_pg()),
        "hand-written psycopg SELECT by sha256": hand_verify,
        "consume_quota, PostgreSQL": lambda: pg.consume_quota(kid, requests=1),
        "hand-written psycopg UPDATE ... RETURNING": lambda: hand.execute(update, prepare=True).fetchone(),
        "RateLimiter.check, Redis (Lua, 1 round trip)": lambda: rl_redis.check("client"),
        "RateLimiter.check, PostgreSQL store": lambda: rl_store.check("client"),
        "RateLimiter.check, local (per process)": lambda: rl_local.check("client"),
        "limits MovingWindow on the same Redis": lambda: moving.hit(item, "client-moving"),
        "limits FixedWindow on the same Redis": lambda: fixed.hit(item, "client-fixed"),
    }
    counts = {name: (4000 if "local" not in name else 200_000) for name in rows}
    results: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(5):
        for name, fn in rows.items():
            results[name].append(median_us(fn, counts[name]))
    print(f"PostgreSQL + Redis (Python {sys.version.split()[0]}), medians of 5 interleaved rounds")
    for name, vals in results.items():
        print(f"  {name:<52} {statistics.median(vals):9.2f} µs/op")
    lags = revocation_lag(url)
    print(f"  revocation seen by another process: median {statistics.median(lags):.1f} ms, "
          f"max {max(lags):.1f} ms over {len(lags)} revocations")
    for tm in (sqlite, pg, strict):
        tm.close()


if __name__ == "__main__":
    main()
