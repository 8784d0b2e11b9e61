"""irontoken.fastapi against a real server: a FastAPI app under uvicorn on
loopback, hit with httpx — every way a credential can be wrong, the status
codes and headers, and a retried usage report counted once."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Dict, Iterator, Tuple

import pytest

fastapi = pytest.importorskip("fastapi", reason="skipped: FastAPI is not installed")
httpx = pytest.importorskip("httpx", reason="skipped: httpx is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="skipped: uvicorn is not installed")

from fastapi import Depends, FastAPI, Request  # noqa: E402

from irontoken import CreatedKey, KeyRecord, TokenManager  # noqa: E402
from irontoken.aio import AsyncTokenManager  # noqa: E402
from irontoken.fastapi import record_llm_usage, require_api_key, require_jwt  # noqa: E402
from irontoken.jwt import JwtVerifier, encode  # noqa: E402
from irontoken.types import RateLimitSpec  # noqa: E402

SECRET = b"fastapi-test-secret-of-32-bytes!!"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Any) -> Iterator[Tuple[str, AsyncTokenManager, TokenManager]]:
    db = str(tmp_path / "keys.db")
    atm = AsyncTokenManager(db)
    stm = TokenManager(db)  # a second manager (sync) on the same file, as another worker would
    app = FastAPI()
    verifier = JwtVerifier(SECRET, ["HS256"], audience="api")

    @app.get("/items")
    async def items(key: Any = Depends(require_api_key(atm, scopes=["read"], quota={"requests": 1}))) -> Dict[str, Any]:
        return {"owner": key.owner}

    @app.get("/admin")
    async def admin(key: Any = Depends(require_api_key(stm, scopes=["admin"], header="X-Admin-Key"))) -> Dict[str, Any]:
        return {"owner": key.owner}

    @app.get("/me")
    async def me(claims: Dict[str, Any] = Depends(require_jwt(verifier, scopes=["profile"]))) -> Dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.post("/complete")
    async def complete(request: Request, key: Any = Depends(require_api_key(atm, rate_limit=False))) -> Dict[str, Any]:
        counted = await record_llm_usage(atm, request, key, model="gpt-x", prompt_tokens=10, completion_tokens=5)
        return {"counted": counted, "state_owner": request.state.irontoken.owner}

    @app.post("/v1/chat/completions")
    async def chat(request: Request, key: Any = Depends(require_api_key(atm, model="body", tokens="body"))) -> Dict[str, Any]:
        body = await request.json()  # the guard read it too
        # The "model" answered with 50 + 50 tokens, whatever max_tokens said.
        await record_llm_usage(atm, request, key, model=body["model"], prompt_tokens=50, completion_tokens=50)
        return {"model": body["model"]}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", atm, stm
    finally:
        server.should_exit = True
        thread.join(10)
        stm.close()
        atm.sync.close()


def test_api_keys_status_codes_and_headers(served: Tuple[str, AsyncTokenManager, TokenManager], caplog: Any) -> None:
    base, atm, stm = served
    caplog.set_level(logging.DEBUG)
    good = stm.create_key("alice", scopes=["read"], rate_limits=[{"name": "per-second", "count": 100, "period_ms": 1000, "burst": 100}])
    stm.set_quota(good.record.id, metric="requests", period="day", limit=3)
    revoked = stm.create_key("bob", scopes=["read"])
    stm.revoke_key(revoked.record.id)
    stranger = TokenManager(":memory:").create_key("eve", scopes=["read"]).key  # well formed, unknown here
    disabled = stm.create_key("dan", scopes=["read"])
    stm.disable_key(disabled.record.id)
    expired = stm.create_key("old", scopes=["read"], expires_in=1)
    time.sleep(1.1)
    secrets = [good.key, revoked.key, stranger, disabled.key, expired.key]
    seen = []
    with httpx.Client(base_url=base) as c:

        def get(path: str, key: str | None = None, header: str = "X-API-Key") -> Any:
            r = c.get(path, headers={header: key} if key is not None else {})
            seen.append(r)
            return r

        r = get("/items")
        assert r.status_code == 401 and r.json()["detail"]["code"] == "MISSING"
        assert r.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'
        for key, code in [
            ("garbage", "MALFORMED"),
            (stranger, "NOT_FOUND"),
            (revoked.key, "REVOKED"),
            (disabled.key, "DISABLED"),
            (expired.key, "EXPIRED"),
        ]:
            r = get("/items", key)
            assert r.status_code == 401, (code, r.text)
            assert r.json()["detail"]["code"] == code
            assert 'error="invalid_key"' in r.headers["WWW-Authenticate"]
        r = get("/admin", good.key, header="X-Admin-Key")
        assert r.status_code == 403 and r.json()["detail"]["code"] == "INSUFFICIENT_SCOPE"
        assert 'scope="admin"' in r.headers["WWW-Authenticate"]
        for _ in range(3):
            r = get("/items", good.key)
            assert r.status_code == 200 and r.json() == {"owner": "alice"}
        assert r.headers["RateLimit-Policy"] == '"per-second";q=100;w=1'
        assert r.headers["RateLimit"].startswith('"per-second";r=')
        r = get("/items", good.key)  # the quota of 3 is spent
        assert r.status_code == 429 and r.json()["detail"]["code"] == "USAGE_EXCEEDED"
        assert 0 < int(r.headers["Retry-After"]) <= 86400
    # Nothing echoed the keys: bodies, headers, or any log line.
    for r in seen:
        text = r.text + repr(dict(r.headers))
        assert not any(s in text for s in secrets), text
    assert not any(s in caplog.text for s in secrets)


def test_rate_limited_answers_429_with_retry_after(served: Tuple[str, AsyncTokenManager, TokenManager]) -> None:
    base, atm, stm = served
    k = stm.create_key("carol", scopes=["read"], rate_limits=[{"name": "burst", "count": 2, "period_ms": 60_000, "burst": 2}])
    with httpx.Client(base_url=base) as c:
        codes = [c.get("/items", headers={"X-API-Key": k.key}) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    r = codes[-1]
    assert r.json()["detail"]["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["RateLimit-Policy"] == '"burst";q=2;w=60'
    assert r.headers["RateLimit"].startswith('"burst";r=0;t=')


def test_bearer_jwts(served: Tuple[str, AsyncTokenManager, TokenManager]) -> None:
    base, _, _ = served
    now = int(time.time())
    good = encode({"sub": "alice", "aud": "api", "exp": now + 60, "scope": "profile email"}, SECRET, "HS256")
    expired = encode({"sub": "alice", "aud": "api", "exp": now - 60, "scope": "profile"}, SECRET, "HS256")
    forged = encode({"sub": "mallory", "aud": "api", "exp": now + 60, "scope": "profile"}, b"x" * 33, "HS256")
    no_scope = encode({"sub": "bob", "aud": "api", "exp": now + 60}, SECRET, "HS256")
    with httpx.Client(base_url=base) as c:
        r = c.get("/me", headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 200 and r.json() == {"sub": "alice"}
        r = c.get("/me")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        for token, code in [(expired, "JWT_EXPIRED"), (forged, "JWT_BAD_SIGNATURE"), ("not.a.jwt", None)]:
            r = c.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, r.text
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
            if code:
                assert r.json()["detail"]["code"] == code, r.text
            assert token not in r.text
        r = c.get("/me", headers={"Authorization": f"Bearer {no_scope}"})
        assert r.status_code == 403 and 'scope="profile"' in r.headers["WWW-Authenticate"]
        # Only string entries of scp/scope count.
        for odd in ([["profile"]], [{"profile": True}], [1, None]):
            t = encode({"sub": "eve", "aud": "api", "exp": now + 60, "scp": odd}, SECRET, "HS256")
            r = c.get("/me", headers={"Authorization": f"Bearer {t}"})
            assert r.status_code == 403, (odd, r.text)
        t = encode({"sub": "eve", "aud": "api", "exp": now + 60, "scp": [["x"], "profile"]}, SECRET, "HS256")
        assert c.get("/me", headers={"Authorization": f"Bearer {t}"}).status_code == 200


def test_a_retried_usage_report_is_counted_once(served: Tuple[str, AsyncTokenManager, TokenManager]) -> None:
    base, atm, stm = served
    k = stm.create_key("dave")
    with httpx.Client(base_url=base) as c:
        h = {"X-API-Key": k.key, "X-Request-ID": "req-42"}
        first = c.post("/complete", headers=h).json()
        retry = c.post("/complete", headers=h).json()
        other = c.post("/complete", headers={"X-API-Key": k.key}).json()
        junk = c.post("/complete", headers={"X-API-Key": k.key, "X-Request-ID": "x" * 500})
    assert junk.status_code == 200 and junk.json()["counted"] is True  # a junk id is ignored, never a 500
    assert first == {"counted": True, "state_owner": "dave"}
    assert retry["counted"] is False and other["counted"] is True
    stm.flush()
    atm.sync.flush()
    totals = stm.usage_summary(key_id=k.record.id)
    assert totals[0]["records"] == 3 and totals[0]["prompt_tokens"] == 30, totals


def test_llm_routes_take_the_model_and_tokens_from_the_request(served: Tuple[str, AsyncTokenManager, TokenManager]) -> None:
    base, _, stm = served
    # 1000 tokens a day: the real clock refills nothing a test could see.
    tpm: RateLimitSpec = {"name": "tpm", "count": 1000, "period_ms": 86_400_000, "burst": 1000, "unit": "tokens"}
    k = stm.create_key("erin", models=["gpt-4o*"], max_tokens_per_request=800, rate_limits=[tpm])
    left = lambda: stm.rate_limit(k.record.id, k.record.rate_limits, peek=True, cost=0).limits[0]["remaining"]  # noqa: E731
    with httpx.Client(base_url=base, headers={"X-API-Key": k.key}) as c:
        ok = c.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "max_tokens": 600, "messages": []})
        assert ok.status_code == 200 and ok.json() == {"model": "gpt-4o-mini"}
        # 600 declared, 100 used: settled by record_llm_usage.
        assert left() == 900
        refused = c.post("/v1/chat/completions", json={"model": "claude-3-opus", "max_tokens": 10})
        assert refused.status_code == 403
        assert refused.json()["detail"]["code"] == "MODEL_NOT_ALLOWED"
        big = c.post("/v1/chat/completions", json={"model": "gpt-4o", "max_completion_tokens": 801})
        assert big.status_code == 413 and big.json()["detail"]["code"] == "REQUEST_TOO_LARGE"
        assert left() == 900, "refusals consume nothing"
        # Fail closed: no model named, no JSON object, a bad count.
        for bad in [{"json": {"max_tokens": 10}}, {"content": b"not json"}, {"json": ["gpt-4o"]},
                    {"json": {"model": "gpt-4o", "max_tokens": -5}}, {"json": {"model": "gpt 4o"}},
                    {"json": {"model": "gpt-4o", "max_tokens": 2**60}}, {"json": {"model": "gpt-4o", "max_tokens": True}}]:
            r = c.post("/v1/chat/completions", **bad)  # type: ignore[arg-type]
            assert r.status_code == 400 and r.json()["detail"]["code"] == "INVALID_ARGUMENT", (bad, r.text)
        assert c.post("/v1/chat/completions", json={"model": "gpt-4o", "max_tokens": 950}).status_code == 413
        assert c.post("/v1/chat/completions", json={"model": "gpt-4o", "max_tokens": 800}).status_code == 200
        assert c.post("/v1/chat/completions", json={"model": "gpt-4o", "max_tokens": 800}).status_code == 200
        # 900 - 800 + 700 = 800 left, then 800 - 800 + 700 = 700: a third call of 800 waits.
        limited = c.post("/v1/chat/completions", json={"model": "gpt-4o", "max_tokens": 800})
        assert limited.status_code == 429 and limited.json()["detail"]["code"] == "RATE_LIMITED"
        assert "Retry-After" in limited.headers


def test_a_credential_in_the_query_string_is_400(served: Tuple[str, AsyncTokenManager, TokenManager]) -> None:
    base, _, stm = served
    k = stm.create_key("frank", scopes=["read"])
    now = int(time.time())
    jwt = encode({"sub": "a", "aud": "api", "exp": now + 60, "scope": "profile"}, SECRET, "HS256")
    with httpx.Client(base_url=base) as c:
        for path, headers in [
            (f"/items?api_key={k.key}", {}),
            ("/items?x-api-key=whatever", {"X-API-Key": k.key}),
            (f"/items?q={k.key}", {"X-API-Key": k.key}),
            ("/items?TOKEN=abc", {"X-API-Key": k.key}),
            (f"/me?access_token={jwt}", {"Authorization": f"Bearer {jwt}"}),
            (f"/me?x={jwt}", {"Authorization": f"Bearer {jwt}"}),
        ]:
            r = c.get(path, headers=headers)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["detail"]["code"] == "CREDENTIAL_IN_QUERY"
            assert k.key not in r.text and jwt not in r.text
        assert c.get("/items?page=2&sort=name", headers={"X-API-Key": k.key}).status_code == 200


def test_a_fail_open_answer_sends_no_ratelimit_header() -> None:
    from fastapi.testclient import TestClient

    tm = TokenManager(":memory:", rate_limit_store="redis://127.0.0.1:1", rate_limit_fail_open=True, rate_limit_timeout_ms=200)
    k = tm.create_key("alice", rate_limits=[{"name": "per-second", "count": 100, "period_ms": 1000, "burst": 100}])
    app = FastAPI()

    @app.get("/x")
    async def x(key: Any = Depends(require_api_key(tm))) -> Dict[str, Any]:
        return {"owner": key.owner}

    with TestClient(app) as c:
        r = c.get("/x", headers={"X-API-Key": k.key})
    assert r.status_code == 200 and "ratelimit" not in {h.lower() for h in r.headers}
    assert [e["kind"] for e in tm.drain_events()].count("rate_limit_fail_open") == 1
    tm.close()


def test_admin_routes_map_errors_to_http_and_the_manager_comes_from_the_lifespan() -> None:
    """install_error_handlers maps IronTokenError codes to statuses with a
    problem body; a dependency finds a manager made in the lifespan
    (app.state.irontoken) or returned by a function."""
    import contextlib

    from fastapi.testclient import TestClient

    from irontoken.fastapi import install_error_handlers

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        app.state.irontoken = TokenManager(":memory:")
        yield
        app.state.irontoken.close()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.post("/admin/keys/{key_id}/revoke")
    async def revoke(key_id: str, request: Request) -> Dict[str, Any]:
        record = request.app.state.irontoken.revoke_key(key_id, reason="by admin")
        return {"revoked_at": record.revoked_at}

    @app.get("/admin/boom")
    async def boom(request: Request) -> Dict[str, Any]:
        request.app.state.irontoken.create_key("")  # INVALID_ARGUMENT
        return {}

    @app.get("/items")
    async def items(key: Any = Depends(require_api_key(scopes=["read"]))) -> Dict[str, Any]:
        return {"owner": key.owner}

    with TestClient(app) as c:
        tm = app.state.irontoken
        k = tm.create_key("alice", scopes=["read"])
        assert c.get("/items", headers={"X-API-Key": k.key}).json() == {"owner": "alice"}
        assert c.post(f"/admin/keys/{k.record.id}/revoke").status_code == 200
        again = c.post(f"/admin/keys/{k.record.id}/revoke")
        assert again.status_code == 409 and again.json()["code"] == "KEY_REVOKED"
        assert again.headers["content-type"].startswith("application/problem+json")
        missing = c.post("/admin/keys/01890000-0000-7000-8000-000000000000/revoke")
        assert missing.status_code == 404 and missing.json()["code"] == "KEY_NOT_FOUND"
        bad = c.get("/admin/boom")
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_ARGUMENT"
        assert k.key not in again.text + missing.text + bad.text
    # A function returning the manager, called per request.
    holder: Dict[str, TokenManager] = {}
    app2 = FastAPI()

    @app2.get("/x")
    async def x(key: Any = Depends(require_api_key(lambda: holder["tm"]))) -> Dict[str, Any]:
        return {"owner": key.owner}

    holder["tm"] = TokenManager(":memory:")
    k2 = holder["tm"].create_key("bob")
    with TestClient(app2) as c:
        assert c.get("/x", headers={"X-API-Key": k2.key}).json() == {"owner": "bob"}
    holder["tm"].close()


def test_legacy_check_on_the_dependency_upgrades_old_keys_once() -> None:
    from fastapi.testclient import TestClient

    tm = AsyncTokenManager(":memory:")
    calls: list = []

    async def old_check(key: str) -> Any:  # the old system's bcrypt check, as a coroutine
        calls.append(key)
        return {"legacy_id": "row-1", "owner": "carol", "scopes": ["read"]} if key == "old-dev-key-0123456789" else None

    app = FastAPI()

    @app.get("/items")
    async def items(key: Any = Depends(require_api_key(tm, scopes=["read"], legacy_check=old_check))) -> Dict[str, Any]:
        return {"owner": key.owner}

    with TestClient(app) as c:
        for _ in range(3):
            r = c.get("/items", headers={"X-API-Key": "old-dev-key-0123456789"})
            assert r.status_code == 200 and r.json() == {"owner": "carol"}, r.text
        assert c.get("/items", headers={"X-API-Key": "unknown-old-key-0123456789"}).status_code == 401
    assert calls == ["old-dev-key-0123456789", "unknown-old-key-0123456789"]
    tm.sync.close()


def test_records_and_created_keys_are_route_answers() -> None:
    """A KeyRecord (or a created key, returned to its owner once) is a valid
    FastAPI answer, annotated or not, and a pydantic field."""
    import pydantic
    from fastapi.testclient import TestClient

    tm = TokenManager(":memory:")
    app = FastAPI()

    @app.post("/keys")
    def create() -> CreatedKey:
        return tm.create_key("alice", scopes=["read"], metadata={"plan": "pro"})

    @app.get("/keys/{key_id}")
    def show(key_id: str):  # type: ignore[no-untyped-def]  # no annotation: jsonable_encoder
        return tm.get_key(key_id)

    @app.get("/keys")
    def listing():  # type: ignore[no-untyped-def]
        return {"items": tm.list_keys().items}

    with TestClient(app) as c:
        made = c.post("/keys")
        assert made.status_code == 200, made.text
        body = made.json()
        assert body["key"].startswith("itk_") and body["record"]["owner"] == "alice"
        shown = c.get(f"/keys/{body['record']['id']}")
        assert shown.status_code == 200 and shown.json()["metadata"] == {"plan": "pro"}
        assert "key" not in shown.json()
        assert c.get("/keys").json()["items"][0]["scopes"] == ["read"]
    record = tm.get_key(body["record"]["id"])
    assert dict(record) == record.to_dict() and record["owner"] == "alice"
    assert list(record.keys()) == list(record.to_dict().keys())  # the field list matches serde's
    with pytest.raises(KeyError):
        record["key_hash"]

    class Out(pydantic.BaseModel):
        record: KeyRecord

    assert Out(record=record).model_dump(mode="json")["record"]["owner"] == "alice"
    tm.close()


def test_openapi_lists_the_guards_answers_and_scopes() -> None:
    """The OpenAPI document of a guarded route lists the answers the guard
    gives (401, 403 with scopes, 429 with limits, 400, 503) and the scopes it
    requires; a route's own responses stay; unguarded routes are untouched."""
    from fastapi import APIRouter
    from fastapi.testclient import TestClient

    from irontoken.fastapi import guard_responses, install_error_handlers

    tm = TokenManager(":memory:")
    app = FastAPI()
    install_error_handlers(app)
    verifier = JwtVerifier(SECRET, ["HS256"], audience="api")

    @app.get("/items")
    async def items(key: KeyRecord = Depends(require_api_key(tm, scopes=["read", "write"]))) -> Dict[str, Any]:
        return {}

    @app.get("/free", dependencies=[Depends(require_api_key(tm, rate_limit=False))], responses={401: {"description": "ours"}})
    async def free() -> Dict[str, Any]:
        return {}

    router = APIRouter(dependencies=[Depends(require_jwt(verifier, scopes=["profile"]))])

    @router.get("/me")
    async def me() -> Dict[str, Any]:
        return {}

    app.include_router(router)  # after install_error_handlers: still covered

    @app.get("/health")
    async def health() -> Dict[str, Any]:
        return {}

    doc = TestClient(app).get("/openapi.json").json()
    ops = {path: doc["paths"][path]["get"] for path in ("/items", "/free", "/me", "/health")}
    assert set(ops["/items"]["responses"]) == {"200", "400", "401", "403", "429", "503"}
    assert "read write" in ops["/items"]["responses"]["403"]["description"]
    assert "Retry-After" in ops["/items"]["responses"]["429"]["headers"]
    assert ops["/items"]["security"] == [{"irontokenApiKey": ["read", "write"]}]
    assert set(ops["/free"]["responses"]) == {"200", "400", "401", "503"}  # no scopes, no limits
    assert ops["/free"]["responses"]["401"]["description"] == "ours"  # the route's own stays
    assert set(ops["/me"]["responses"]) == {"200", "400", "401", "403", "503"}
    assert ops["/me"]["security"] == [{"irontokenJwt": ["profile"]}]
    assert doc["components"]["securitySchemes"]["irontokenApiKey"] == {
        "type": "apiKey", "description": "An irontoken API key", "in": "header", "name": "X-API-Key",
    }
    assert doc["components"]["securitySchemes"]["irontokenJwt"]["scheme"] == "bearer"
    assert set(ops["/health"]["responses"]) == {"200"} and "security" not in ops["/health"]
    # The same answers, by hand, for a router.
    assert set(guard_responses(scopes=["a"])) == {400, 401, 403, 429, 503}
    tm.close()
