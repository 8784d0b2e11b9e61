"""Timing helper shared by the side-by-side benchmark scripts."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_ns(fn: Callable[[], object], n: int) -> float:
    """The median time per call of `fn` in ns, over 20 batches of n / 20 calls."""
    batches = []
    per_batch = max(1, n // 20)
    for _ in range(20):
        t = time.perf_counter_ns()
        for _ in range(per_batch):
            fn()
        batches.append((time.perf_counter_ns() - t) / per_batch)
    return statistics.median(batches)


def median_us(fn: Callable[[], object], n: int) -> float:
    """[`median_ns`] in µs."""
    return median_ns(fn, n) / 1000


def measure(name: str, fn: Callable[[], object], n: int, width: int = 48) -> float:
    """Prints the median time per call of `fn`, over 20 batches of n / 20
    calls, and returns it (ns)."""
    med = median_ns(fn, n)
    unit, val = ("µs", med / 1000) if med < 1e6 else ("ms", med / 1e6)
    print(f"  {name:<{width}} {val:10.2f} {unit}/op")
    return med
