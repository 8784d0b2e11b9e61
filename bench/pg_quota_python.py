"""Side-by-side, issue 11: `consume_quota` on PostgreSQL against the
hand-written single statement, from Python.

- irontoken `consume_quota` on a key whose only quota is its own (the
  one-row path of schema v4);
- psycopg `UPDATE q SET used = used + 1 WHERE k = %s AND used + 1 <= lim
  RETURNING used` on a narrow table, prepared, autocommit,
  `synchronous_commit = off` (as irontoken's quota commits);
- the same UPDATE on irontoken's own `quotas` row, for scale.

1 500 calls per round, 15 interleaved rounds, medians (this machine's
loopback round trip moves by ±30 %: only interleaved rounds compare).
Needs PostgreSQL (IRONTOKEN_TEST_POSTGRES_URL). Run: `make bench-compare`.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Callable, Dict, List

import psycopg

from irontoken import TokenManager

PG = os.environ.get("IRONTOKEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROUNDS, CALLS = 15, 1500


def main() -> None:
    schema = "itk_bench_q_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in PG else "?"
        url = f"{PG}{sep}options=-csearch_path%3D{schema}"
        tm = TokenManager(url)
        kid = tm.create_key(owner="o").record.id
        other = tm.create_key(owner="p").record.id
        for k in (kid, other):
            tm.set_quota(k, metric="requests", period="month", limit=1 << 60)
        conn = psycopg.connect(url, autocommit=True)
        conn.execute("SET synchronous_commit = off")
        conn.execute("CREATE TABLE q (k text PRIMARY KEY, used bigint, lim bigint)")
        conn.execute("INSERT INTO q VALUES ('k', 0, %s)", (1 << 60,))

        def hand() -> None:
            conn.execute(
                "UPDATE q SET used = used + 1 WHERE k = %s AND used + 1 <= lim RETURNING used", ("k",), prepare=True
            ).fetchone()

        def hand_on_quotas() -> None:
            conn.execute(
                "UPDATE quotas SET used = used + 1 WHERE scope = 'key' AND subject = %s "
                "AND used + 1 <= limit_amount RETURNING used",
                (other,),
                prepare=True,
            ).fetchone()

        def ours() -> None:
            tm.consume_quota(kid, requests=1)

        rows: List[tuple[str, Callable[[], None]]] = [
            ("irontoken consume_quota, PostgreSQL", ours),
            ("psycopg UPDATE ... RETURNING (narrow table)", hand),
            ("psycopg UPDATE ... RETURNING (irontoken's quotas row)", hand_on_quotas),
        ]
        res: Dict[str, List[float]] = {}
        for _ in range(ROUNDS):
            for name, f in rows:
                t = time.perf_counter()
                for _ in range(CALLS):
                    f()
                res.setdefault(name, []).append((time.perf_counter() - t) / CALLS * 1e6)
        print(f"consume_quota on PostgreSQL, medians of {ROUNDS} interleaved rounds")
        base = statistics.median(res[rows[1][0]])
        for name, _ in rows:
            m = statistics.median(res[name])
            print(f"  {name:55s} {m:8.1f} µs  ({base / m:.2f}x the narrow hand-written UPDATE's speed)")
        conn.close()
        tm.close()
    finally:
        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
