"""Side-by-side: LLM spend controls from Python. A weighted check (500
tokens against a tokens-per-minute limit, 1 against a requests-per-minute
one, all-or-nothing) against the unweighted check of the same two limits,
and against the `limits` package (its fixed window, `test` then `hit` with
a cost: two calls, not atomic); `verify_key_with` with a model and tokens
against today's call (in-process buckets). Run: `make bench-compare`."""

from __future__ import annotations

from irontoken import RateLimiter, TokenManager

from _measure import measure

N = 200_000

TPM = {"name": "tpm", "count": 10**12, "period_ms": 60_000, "unit": "tokens"}
RPM = {"name": "rpm", "count": 10**12, "period_ms": 60_000}


def main() -> None:
    print("weighted rate limits (in process):")
    unweighted = RateLimiter([dict(TPM, unit="requests"), RPM])
    weighted = RateLimiter([TPM, RPM])
    base = measure("irontoken check, 2 limits, unweighted", lambda: unweighted.check("k"), N)
    w = measure("irontoken check(cost=500), TPM + RPM", lambda: weighted.check("k", cost=500), N)
    try:
        import limits
        from limits.storage import MemoryStorage
        from limits.strategies import FixedWindowRateLimiter

        lim = FixedWindowRateLimiter(MemoryStorage())
        tpm, rpm = limits.parse("1000000000/minute"), limits.parse("1000000000/minute")

        def by_hand() -> bool:
            if lim.test(tpm, "k", cost=500) and lim.test(rpm, "k"):
                return lim.hit(tpm, "k", cost=500) and lim.hit(rpm, "k")
            return False

        other = measure("limits (fixed window): test + hit, cost 500", by_hand, N)
        print(f"  ratio limits / irontoken weighted: {other / w:.1f}x")
    except ImportError:
        print("  (limits not installed: pip install limits)")
    print(f"  weighted / unweighted: {w / base:.2f}")

    print("verify_key_with (in-process buckets):")
    with TokenManager(":memory:", rate_limit_store="local") as tm:
        key = tm.create_key(
            "acme", rate_limits=[TPM, RPM], models=["gpt-4o*", "claude-*", "o3*"], max_tokens_per_request=100_000
        ).key
        plain = measure("verify_key_with(rate_limit=True)", lambda: tm.verify_key_with(key, rate_limit=True), N)
        llm = measure(
            "  + tokens=500, model='claude-3-5-sonnet'",
            lambda: tm.verify_key_with(key, rate_limit=True, tokens=500, model="claude-3-5-sonnet"),
            N,
        )
        print(f"  with model and tokens / without: {llm / plain:.2f}")


if __name__ == "__main__":
    main()
