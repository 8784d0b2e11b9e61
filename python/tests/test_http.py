"""The guards' HTTP answers come from core (irontoken::http): the shared
vectors of tests/vectors/http.json, run through the functions the FastAPI
adapter calls."""

import json
from pathlib import Path

from irontoken._native import (
    http_api_key_answer,
    http_bearer_answer,
    http_dpop_answer,
    http_llm_body_fields,
    http_llm_request,
    http_status_of,
)
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


def test_llm_vectors() -> None:
    # As the FastAPI adapter calls it: the body reduced to core's fields.
    fields = http_llm_body_fields()
    assert fields[0] == "model"
    for case in VECTORS["llm"]:
        body = case["body"]
        if isinstance(body, dict):
            body = {f: body[f] for f in fields if f in body}
        elif body is not None:
            body = None  # not a JSON object: the adapter passes none
        sources = [(c.get("source", ""), c.get("value")) for c in (case.get("model", {}), case.get("tokens", {}))]
        answer, model, tokens = http_llm_request(body, sources[0][0], sources[0][1], sources[1][0], sources[1][1])
        got = {"model": model, "tokens": tokens} if answer is None else {"status": answer[0], "code": answer[1], "message": answer[2]}
        assert got == case["want"], case["name"]


def test_llm_values_without_a_json_form_are_refused_not_raised() -> None:
    for value in (2**70, object(), {"n": 1}, True):
        answer, _, _ = http_llm_request(None, "", None, "value", value)
        assert answer is not None and answer[0] == 400, value
    assert http_llm_request(None, "value", 5, "", None)[0] is not None
    import pytest

    from irontoken.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        http_llm_request(None, "header", None, "", None)


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
