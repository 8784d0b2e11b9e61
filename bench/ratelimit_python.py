"""Side-by-side: one rate-limit check from Python.

irontoken `RateLimiter` (limits parsed once, `check(key)`; and the per-call
`check(key, limits)`) against a hand-written GCRA in pure Python and the
`limits` package's in-memory moving window, in one process run.
Run: `make bench-compare`.
"""

from __future__ import annotations

import time

from irontoken import RateLimiter

from _measure import measure

LIMITS = [{"name": "per_second", "count": 1_000_000_000, "period_ms": 1000}]


class HandGcra:
    """GCRA as one would write it by hand: a dict of theoretical arrival times."""

    def __init__(self, count: int, period_s: float, burst: int) -> None:
        self.interval = period_s / count
        self.capacity = self.interval * burst
        self.tat: dict[str, float] = {}

    def check(self, key: str) -> bool:
        now = time.monotonic()
        tat = max(self.tat.get(key, now), now)
        new_tat = tat + self.interval
        if new_tat - self.capacity > now:
            return False
        self.tat[key] = new_tat
        return True


def main() -> None:
    rl = RateLimiter(limits=LIMITS)
    hand = HandGcra(1_000_000_000, 1.0, 1_000_000_000)
    print("Rate-limit check of one key, one limit, one Python process")
    measure("irontoken RateLimiter(limits).check(key)", lambda: rl.check("key-1"), 400_000)
    measure("irontoken RateLimiter().check(key, limits)", lambda: rl.check("key-1", LIMITS), 200_000)
    measure("hand-written GCRA (dict + time.monotonic)", lambda: hand.check("key-1"), 400_000)
    try:
        from limits import parse, storage, strategies

        lim = parse("1000000000/second")
        mw = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        fw = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
        measure("limits MovingWindowRateLimiter.hit (memory)", lambda: mw.hit(lim, "key-1"), 100_000)
        measure("limits FixedWindowRateLimiter.hit (memory)", lambda: fw.hit(lim, "key-1"), 100_000)
    except ImportError:
        print("  (limits not installed: pip install limits)")


if __name__ == "__main__":
    main()
