"""Bad input at the Python boundary is our error with a stable code, never
OverflowError, TypeError or PanicException: numbers, times, NUL, names,
the cap on required scopes, usage sums past 2^64."""

from __future__ import annotations

from typing import Any, Callable, List

import pytest

from irontoken import IronTokenError, InvalidArgumentError, TokenManager


def test_numeric_options_are_checked_not_a_panic() -> None:
    for kwargs in ({"busy_timeout_ms": 2**31}, {"busy_timeout_ms": 2**64}, {"flush_interval_ms": 0}, {"busy_timeout_ms": -1}, {"busy_timeout_ms": True}):
        with pytest.raises(InvalidArgumentError):
            TokenManager(":memory:", **kwargs)  # type: ignore[arg-type]


def test_odd_numbers_are_invalid_argument() -> None:
    with TokenManager(":memory:") as tm:
        key = tm.create_key("owner")
        calls: List[Callable[[], Any]] = [
            lambda: tm.create_key("o", expires_in=2**70),
            lambda: tm.create_key("o", expires_in=True),  # a bool is not a number
            lambda: tm.create_key("o", expires_in=1.5),  # type: ignore[arg-type]
            lambda: tm.create_key("o", expires_in="60"),  # type: ignore[arg-type]
            lambda: tm.record_usage(key_id=key.record.id, requests=2**63),
            lambda: tm.record_usage(key_id=key.record.id, cost_micros=2**53),
            lambda: tm.record_usage(key_id=key.record.id, prompt_tokens=-1),
            lambda: tm.drain_events(-1),
            lambda: tm.drain_events(2**80),
            lambda: tm.list_keys(limit=2**40),
            lambda: tm.advance_clock(2**64),
        ]
        for i, call in enumerate(calls):
            with pytest.raises(InvalidArgumentError):
                call()
            assert i >= 0


def test_a_str_where_a_list_of_strings_belongs_is_a_type_error_naming_it() -> None:
    """scopes="read" would be the characters r, e, a, d if iterated: it is a
    TypeError that names the argument, as is a list holding a non-string;
    a tuple of strings is a list of strings."""
    with TokenManager(":memory:") as tm:
        key = tm.create_key("o", scopes=("read", "write"))
        assert key.record.scopes == ["read", "write"]
        calls: List[tuple[str, Callable[[], Any]]] = [
            ("scopes", lambda: tm.create_key("o", scopes="read")),  # type: ignore[arg-type]
            ("scopes", lambda: tm.create_key("o", scopes=["read", 1])),  # type: ignore[list-item]
            ("scopes", lambda: tm.update_key(key.record.id, scopes=5)),  # type: ignore[arg-type]
            ("required_scopes", lambda: tm.verify_key(key.key, "read")),  # type: ignore[arg-type]
            ("required_scopes", lambda: tm.verify_key_with(key.key, required_scopes="read")),  # type: ignore[arg-type]
            ("algorithms", lambda: tm.verify_jwt("a.b.c", algorithms="HS256")),  # type: ignore[arg-type]
            ("audience", lambda: tm.verify_jwt("a.b.c", algorithms=["HS256"], audience="api")),  # type: ignore[arg-type]
            ("group_by", lambda: tm.usage_summary(group_by="key_id")),  # type: ignore[arg-type]
        ]
        for name, call in calls:
            with pytest.raises(TypeError) as e:
                call()
            assert str(e.value).startswith(f"{name} must be a list of strings"), str(e.value)
        assert tm.verify_key(key.key, ("read",)).valid


def test_every_error_is_an_exception_not_a_base_exception() -> None:
    # PanicException derives from BaseException; ours from Exception.
    assert issubclass(IronTokenError, Exception)


def test_times_past_the_year_9999_are_refused() -> None:
    # Saturated to 2^63-1 they were unreadable (datetime cannot show them);
    # exchange_api_key with a huge ttl wrapped and signed a negative exp.
    last = 253402300799  # 9999-12-31T23:59:59Z
    tm = TokenManager(":memory:", master_key="07" * 32)
    assert tm.create_key("o", expires_at=last).record.expires_at == last
    for at, within in ((last + 1, None), (None, 2**63 - 1), (None, last)):
        with pytest.raises(InvalidArgumentError, match="expires_"):
            tm.create_key("o", expires_at=at, expires_in=within)
    c = tm.create_key("o")
    with pytest.raises(InvalidArgumentError, match="expires_at"):
        tm.update_key(c.record.id, expires_at=last + 1)
    with pytest.raises(InvalidArgumentError, match="overlap_seconds"):
        tm.rotate_key(c.record.id, overlap_seconds=2**63 - 1)
    with pytest.raises(InvalidArgumentError, match="ttl_seconds"):
        tm.create_session("o", ttl_seconds=2**63 - 1)
    with pytest.raises(InvalidArgumentError, match="idle_timeout_seconds"):
        tm.create_session("o", idle_timeout_seconds=2**63 - 1)
    tm.create_signing_key("ES256")
    with pytest.raises(InvalidArgumentError, match="overlap_seconds"):
        tm.rotate_signing_key(overlap_seconds=2**63 - 1)  # wrapped to a negative verify_until
    with pytest.raises(InvalidArgumentError, match="overlap_seconds"):
        tm.rotate_due(overlap_seconds=2**63 - 1)
    assert len(tm.list_signing_keys()) == 1
    with pytest.raises(InvalidArgumentError, match="ttl_seconds"):
        tm.exchange_api_key(c.key, ttl_seconds=2**63 - 1)
    with pytest.raises(InvalidArgumentError, match="ttl_seconds"):
        tm.issue_jwt({"sub": "o"}, ttl_seconds=2**63 - 1)
    for at in (-1, last + 1, 2**63 - 1):  # a time no summary could show
        with pytest.raises(InvalidArgumentError, match="at must be"):
            tm.record_usage(key_id=c.record.id, request_id=f"r{at}", at=at)
    tm.record_usage(key_id=c.record.id, request_id="last", at=last)
    assert [t["day"] for t in tm.usage_summary(group_by=["day"])] == ["9999-12-31"]
    assert tm.get_key(c.record.id).status == "active"  # nothing half-done
    assert tm.exchange_api_key(c.key, ttl_seconds=60)["expires_at"] > 0
    tm.close()


def test_nul_in_lookups_and_filters_is_invalid_argument() -> None:
    # PostgreSQL refused it as a STORAGE error; SQLite answered "not found".
    tm = TokenManager(":memory:")
    nul = "a\x00b"
    for call in (
        lambda: tm.get_key(nul),
        lambda: tm.list_keys(owner=nul),
        lambda: tm.list_audit(actor=nul),
        lambda: tm.usage_summary(model=nul),
        lambda: tm.list_sessions(owner=nul),
    ):
        with pytest.raises(InvalidArgumentError, match="control characters"):
            call()
    c = tm.create_key("o", metadata={"k\x00": "v\x00"})
    assert tm.get_key(c.record.id).metadata == {"k\x00": "v\x00"}
    tm.close()


def test_one_cap_on_required_scopes_and_a_clock_that_cannot_wrap() -> None:
    with TokenManager(":memory:", manual_clock_start=1_700_000_000) as tm:
        k = tm.create_key("a", scopes=["s"])
        assert tm.verify_key(k.key, ["s"] * 1024).valid
        with pytest.raises(InvalidArgumentError, match="1024"):
            tm.verify_key(k.key, ["s"] * 1025)
        for secs in (2**63 - 1, -(2**63), 253_402_300_800, -1_700_000_001):
            with pytest.raises(InvalidArgumentError):
                tm.advance_clock(secs)
        assert tm.now() == 1_700_000_000
        assert tm.create_key("b").record.created_at == 1_700_000_000
        with pytest.raises(InvalidArgumentError):
            tm.drain_events(-1)


def test_tag_characters_and_separators_are_refused_in_names() -> None:
    with TokenManager(":memory:") as tm:
        for owner in ("admin\U000e0041", "a\u2028b", "a\u2029b", "a\u3164"):
            with pytest.raises(InvalidArgumentError):
                tm.create_key(owner)
        with pytest.raises(InvalidArgumentError):
            tm.create_key("o", scopes=["read\U000e0001"])
        with pytest.raises(InvalidArgumentError):
            tm.create_key("o", actor="ops\U000e0020")
        assert tm.list_keys().items == []


def test_usage_sums_past_2_64_are_exact() -> None:
    max_n = 2**53 - 1
    with TokenManager(":memory:") as tm:
        k = tm.create_key("big")
        for _ in range(2050):
            tm.record_usage(key_id=k.record.id, prompt_tokens=max_n, cost_micros=max_n)
        (t,) = tm.usage_summary()
        assert t["prompt_tokens"] == 2050 * max_n > 2**64
        assert t["cost_micros"] == 2050 * max_n
        assert t["total_tokens"] == 2050 * max_n
