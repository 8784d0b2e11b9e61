"""An independent model of the GCRA rate limiter, written from the rules in
README (Rate limiting) and ratelimit.json's description, not from the Rust
code. It recomputes every step of ratelimit.json and fails on any
difference; `--write` regenerates the expected values.

Rules: interval = floor(period_ms * 1000 / count) us; capacity = interval *
burst; a stored theoretical arrival time (TAT) more than a full burst ahead
is clamped to now + capacity (a clock stepped back); a request at `now` waits
max(TAT, now) + interval - capacity - now (at least 0) on each limit and is
allowed when every limit waits 0, all or nothing; then each TAT becomes
max(TAT, now) + interval. remaining = floor((now + capacity - TAT') /
interval) and reset_ms = ceil((TAT' - now) / 1000) with TAT' the TAT after
the decision; retry_after_ms = ceil(longest wait / 1000).

Run from this folder: python3 ratelimit_model.py [--write]
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def run_case(case: dict) -> list:
    tats: dict = {}
    out = []
    for step in case["steps"]:
        now = step["now_ms"] * 1000
        plans = []
        for lim in case["limits"]:
            interval = lim["period_ms"] * 1000 // lim["count"]
            capacity = interval * lim["burst"]
            ahead = max(tats.get(lim["name"], now), now)
            tat = min(ahead, now + capacity)
            new_tat = tat + interval
            plans.append((lim["name"], interval, capacity, tat, new_tat, tat < ahead))
        wait = max(max(new_tat - capacity - now, 0) for _, _, capacity, _, new_tat, _ in plans)
        allowed = wait == 0
        limits = []
        for name, interval, capacity, tat, new_tat, clamped in plans:
            after = new_tat if allowed else tat
            if allowed or clamped:
                tats[name] = after
            limits.append(
                {
                    "name": name,
                    "remaining": max(now + capacity - after, 0) // interval,
                    "reset_ms": ceil_div(max(after - now, 0), 1000),
                }
            )
        out.append(
            {
                "now_ms": step["now_ms"],
                "allowed": allowed,
                "retry_after_ms": ceil_div(wait, 1000),
                "limits": limits,
            }
        )
    return out


def main() -> int:
    path = HERE / "ratelimit.json"
    doc = json.loads(path.read_text())
    bad = 0
    for case in doc["cases"]:
        got = run_case(case)
        if "--write" in sys.argv:
            case["steps"] = got
            continue
        for i, (want, have) in enumerate(zip(case["steps"], got)):
            if want != have:
                bad += 1
                print(f"{case['name']} step {i}: file {want} model {have}")
    if "--write" in sys.argv:
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print("wrote", path)
        return 0
    print(f"{sum(len(c['steps']) for c in doc['cases'])} steps, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
