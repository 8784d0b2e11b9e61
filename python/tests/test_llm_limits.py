"""LLM spend controls from Python: tokens-per-minute limits with the
request ones (all-or-nothing, settled after the call), per-key model
allow-lists and a per-request token ceiling (refusals consume nothing),
four processes on one TPM limit exact on SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import pathlib
from typing import Any, List

import pytest

import irontoken
from irontoken import RateLimiter, TokenManager
from irontoken.types import RateLimitSpec

from conftest import pg_scratch, postgres_answers, skip_unless_ci
from test_shared_limits import REDIS, scratch_redis

TPM: List[RateLimitSpec] = [
    {"name": "tpm", "count": 1000, "period_ms": 60_000, "burst": 1000, "unit": "tokens"},
    {"name": "rpm", "count": 5, "period_ms": 60_000, "burst": 5},
]


def tpm_left(v: irontoken.VerifyResult) -> List[int]:
    """What each of the key's limits has left after a verification."""
    assert v.rate_limit is not None
    return [int(x["remaining"]) for x in v.rate_limit["limits"]]


def llm_key(tm: TokenManager) -> irontoken.CreatedKey:
    return tm.create_key("acme", rate_limits=TPM, models=["gpt-4o*", "claude-*"], max_tokens_per_request=800)


def test_model_policy_refuses_and_consumes_nothing(tm: TokenManager) -> None:
    c = llm_key(tm)
    assert c.record.models == ["gpt-4o*", "claude-*"]
    assert c.record.max_tokens_per_request == 800
    d = c.record.to_dict()
    assert d["models"] == ["gpt-4o*", "claude-*"] and d["rate_limits"][0]["unit"] == "tokens"
    assert dict(c.record)["max_tokens_per_request"] == 800

    v = tm.verify_key_with(c.key, rate_limit=True, tokens=100, model="gpt-4o-mini")
    assert v.valid and tpm_left(v) == [900, 4]
    for model, tokens, reason in [
        ("gpt-3.5-turbo", 10, "MODEL_NOT_ALLOWED"),
        ("claude-3-opus", 801, "REQUEST_TOO_LARGE"),
    ]:
        v = tm.verify_key_with(c.key, rate_limit=True, quota={"requests": 1}, model=model, tokens=tokens)
        assert not v.valid and v.reason == reason
        assert v.rate_limit is None and v.quota is None
        assert v.record is not None and v.record.id == c.record.id
    v = tm.verify_key_with(c.key, rate_limit=True, tokens=100, model="claude-3-opus")
    assert tpm_left(v) == [800, 3], "the refusals took nothing"
    # The reasons are stable codes: in the reason list and as error classes.
    assert irontoken.ModelNotAllowedError.code == "MODEL_NOT_ALLOWED"
    assert irontoken.RequestTooLargeError.code == "REQUEST_TOO_LARGE"
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.verify_key_with(c.key, model="a b")
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.verify_key_with(c.key, tokens=2**53)
    with pytest.raises((OverflowError, irontoken.InvalidArgumentError)):
        tm.verify_key_with(c.key, tokens=-1)
    with pytest.raises(irontoken.InvalidArgumentError, match="bool"):
        tm.verify_key_with(c.key, tokens=True)
    with pytest.raises(TypeError):
        tm.create_key("acme", models="gpt-4o")  # type: ignore[arg-type]


def test_update_clear_and_rotation_keep_the_policy(tm: TokenManager) -> None:
    c = llm_key(tm)
    r = tm.update_key(c.record.id, models=["claude-*"], clear_max_tokens_per_request=True)
    assert (r.models, r.max_tokens_per_request) == (["claude-*"], None)
    assert tm.verify_key_with(c.key, model="gpt-4o").reason == "MODEL_NOT_ALLOWED"
    assert tm.verify_key_with(c.key, model="claude-x", tokens=900).valid
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.update_key(c.record.id, max_tokens_per_request=5, clear_max_tokens_per_request=True)
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.update_key(c.record.id, max_tokens_per_request=0)
    new = tm.rotate_key(c.record.id)
    assert new.record.models == ["claude-*"]
    assert tm.update_key(new.record.id, models=[]).models == []
    assert tm.verify_key_with(new.key, model="gpt-4o").valid


def test_settle_tokens_after_the_call(tm: TokenManager) -> None:
    c = llm_key(tm)
    v = tm.verify_key_with(c.key, rate_limit=True, tokens=700, model="gpt-4o")
    assert tpm_left(v)[0] == 300
    refused = tm.verify_key_with(c.key, rate_limit=True, tokens=400, model="gpt-4o")
    assert refused.reason == "RATE_LIMITED" and refused.rate_limit is not None
    assert refused.rate_limit["retry_after_ms"] == 6000
    tm.settle_tokens(c.record.id, 700, 200)  # it used 200: 500 back
    v = tm.verify_key_with(c.key, rate_limit=True, tokens=400, model="gpt-4o")
    assert v.valid and tpm_left(v)[0] == 400
    tm.settle_tokens(c.record.id, estimated=400, actual=100_000)
    assert tm.verify_key_with(c.key, rate_limit=True, tokens=0).reason == "RATE_LIMITED"
    with pytest.raises(irontoken.KeyNotFoundError):
        tm.settle_tokens("no-such-key", 1, 2)


def test_rate_limiter_cost_and_settle() -> None:
    rl = RateLimiter(TPM)
    d = rl.check("k", cost=600, now_ms=0)
    assert d and [x["remaining"] for x in d.limits] == [400, 4]
    d = rl.check("k", cost=500, now_ms=0)
    assert not d and d.retry_after_ms == 6000
    assert rl.peek("k", cost=400, now_ms=0)
    rl.settle("k", estimated=600, actual=100, now_ms=0)
    assert rl.check("k", cost=900, now_ms=0).limits[0]["remaining"] == 0
    # A cost needs a limit in tokens, and must fit its burst.
    with pytest.raises(irontoken.InvalidArgumentError, match="tokens"):
        RateLimiter([TPM[1]]).check("k", cost=5)
    with pytest.raises(irontoken.InvalidArgumentError, match="burst"):
        rl.check("k", cost=1001)
    with pytest.raises(irontoken.InvalidArgumentError):
        RateLimiter([{"name": "x", "count": 1, "period_ms": 1, "unit": "bytes"}])
    # The manager's store takes a cost too.
    with TokenManager(":memory:") as tm:
        assert tm.rate_limit("k", TPM, cost=999).limits[0]["remaining"] == 1


def _spend(target: str, store: str, key: str, out: Any) -> None:
    spent = 0
    with TokenManager(target, rate_limit_store=None if store == "store" else store) as tm:
        for _ in range(40):
            v = tm.verify_key_with(key, rate_limit=True, tokens=100, model="m")
            assert v.valid or v.reason == "RATE_LIMITED", v.reason
            spent += 100 if v.valid else 0
    out.put(spent)


def four_processes_spend(target: str, store: str) -> int:
    with TokenManager(target, rate_limit_store=None if store == "store" else store) as tm:
        # 10 000 tokens an hour: nothing meaningful refills during the test.
        tpm: RateLimitSpec = {"name": "tpm", "count": 10_000, "period_ms": 3_600_000, "burst": 10_000, "unit": "tokens"}
        key = tm.create_key("acme", rate_limits=[tpm]).key
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_spend, args=(target, store, key, q)) for _ in range(4)]
    for p in procs:
        p.start()
    total = sum(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return int(total)


def test_four_processes_on_one_tpm_limit_on_sqlite(tmp_path: pathlib.Path) -> None:
    # 160 calls of 100 tokens asked; exactly 100 fit (one more if a token refilled).
    assert 10_000 <= four_processes_spend(str(tmp_path / "tpm.db"), "store") <= 10_100


def test_four_processes_on_one_tpm_limit_on_redis(tmp_path: pathlib.Path) -> None:
    if REDIS is None:
        skip_unless_ci("no Redis")
    assert 10_000 <= four_processes_spend(str(tmp_path / "tpm.db"), scratch_redis()) <= 10_100


def test_four_processes_on_one_tpm_limit_on_postgres() -> None:
    if not postgres_answers():
        skip_unless_ci("no PostgreSQL")
    with pg_scratch() as url:
        assert 10_000 <= four_processes_spend(url, "store") <= 10_100


def test_usage_summary_by_hour(tm: TokenManager) -> None:
    k = tm.create_key("acme").record.id
    t0 = tm.now() - tm.now() % 3600
    for i, (at, model) in enumerate([(t0, "gpt"), (t0 + 10, "claude"), (t0 + 3600, "gpt")]):
        tm.record_usage(request_id=f"h{i}", key_id=k, model=model, prompt_tokens=10 * (i + 1), at=at)
    rows = tm.usage_summary(group_by=["hour", "model"])
    assert [(r["hour"][-9:], r["model"], r["prompt_tokens"]) for r in rows] == [
        (time_of(t0), "claude", 20),
        (time_of(t0), "gpt", 10),
        (time_of(t0 + 3600), "gpt", 30),
    ]
    assert "day" not in rows[0]
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.usage_summary(group_by=["minute"])


def time_of(t: int) -> str:
    """The `HH:00:00Z` end of an hour bucket's name."""
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:00:00Z")


def test_owner_policy(tm: TokenManager) -> None:
    c = llm_key(tm)  # gpt-4o* and claude-*, 800 tokens at most
    p = tm.set_owner_policy("acme", models=["claude-*"], max_tokens_per_request=500, actor="ops")
    assert (p["owner"], p["models"], p["max_tokens_per_request"]) == ("acme", ["claude-*"], 500)
    assert tm.get_owner_policy("acme") == p
    assert tm.get_owner_policy("nobody") is None
    assert tm.verify_key_with(c.key, model="gpt-4o").reason == "MODEL_NOT_ALLOWED"
    assert tm.verify_key_with(c.key, model="claude-3", tokens=501).reason == "REQUEST_TOO_LARGE"
    assert tm.verify_key_with(c.key, model="claude-3", tokens=500).valid
    assert tm.delete_owner_policy("acme", actor="ops") is True
    assert tm.delete_owner_policy("acme") is False
    assert tm.verify_key_with(c.key, model="gpt-4o").valid
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.set_owner_policy("", models=["x"])
    with pytest.raises(TypeError):
        tm.set_owner_policy("acme", models="gpt-4o")  # type: ignore[arg-type]
