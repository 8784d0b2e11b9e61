"""The guards' HTTP answers come from core (irontoken::http): the shared
vectors of tests/vectors/http.json, run through the functions the FastAPI
adapter calls."""

import json
from pathlib import Path

from irontoken._native import http_api_key_answer, http_bearer_answer, http_dpop_answer, http_status_of
from irontoken.fastapi import rate_limit_headers

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "tests" / "vectors" / "http.json").read_text())


def _as_want(answer):
    status, code, message, headers = answer
    return {"status": status, "code": code, "message": message, "headers": [list(h) for h in headers.items()]}


def test_api_key_vectors() -> None:
    for case in VECTORS["api_key"]:
        got = http_api_key_answer(case["header"], case["scopes"], case["outcome"])
        assert _as_want(got) == case["want"], case["name"]


def test_dpop_vectors() -> None:
    for case in VECTORS["dpop"]:
        assert _as_want(http_dpop_answer(case["code"], case["scopes"], case["nonce"])) == case["want"], case["code"]


def test_bearer_vectors() -> None:
    for case in VECTORS["bearer"]:
        assert _as_want(http_bearer_answer(case["code"], case["scopes"])) == case["want"], case["code"]


def test_status_vectors() -> None:
    for code, want in VECTORS["status_of"].items():
        assert http_status_of(code) == want, code


def test_rate_limit_headers_keeps_its_signature() -> None:
    limits = [{"name": "per_second", "count": 10, "period_ms": 1000, "burst": 10}]
    state = {"allowed": True, "degraded": False, "retry_after_ms": 0, "limits": [{"name": "per_second", "remaining": 9, "reset_ms": 100}]}
    assert rate_limit_headers(limits, state) == {"RateLimit-Policy": '"per_second";q=10;w=1', "RateLimit": '"per_second";r=9;t=1'}
    assert rate_limit_headers([], state) == {} and rate_limit_headers(limits, None) == {}
    assert rate_limit_headers(limits, {**state, "degraded": True}) == {}


def test_a_bad_outcome_is_invalid_argument() -> None:
    import pytest

    from irontoken.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        http_api_key_answer("X-API-Key", [], {"reason": "VALID", "now": "soon"})
