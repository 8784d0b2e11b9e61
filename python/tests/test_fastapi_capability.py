"""require_capability against a real server (FastAPI under uvicorn, httpx):
a tool executor that authorizes and charges each call, the status codes of
every refusal, a revoked parent's child refused."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Dict, Iterator, Tuple

import pytest

fastapi = pytest.importorskip("fastapi", reason="skipped: FastAPI is not installed")
httpx = pytest.importorskip("httpx", reason="skipped: httpx is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="skipped: uvicorn is not installed")

from fastapi import Depends, FastAPI, Request  # noqa: E402

import irontoken  # noqa: E402
from irontoken import Authorization  # noqa: E402
from irontoken.aio import AsyncTokenManager  # noqa: E402
from irontoken.fastapi import require_capability  # noqa: E402

MASTER = "07" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Any) -> Iterator[Tuple[str, AsyncTokenManager]]:
    atm = AsyncTokenManager(str(tmp_path / "caps.db"), master_key=MASTER)
    app = FastAPI()

    @app.post("/tools/search")
    async def search(a: Authorization = Depends(require_capability(atm, tool="search", cost_micros=100))) -> Dict[str, Any]:
        return {"key_id": a.key_id, "remaining": a.remaining_micros}

    @app.get("/docs/{doc}")
    async def read(
        request: Request,
        a: Authorization = Depends(require_capability(atm, tool="read", resource=lambda r: r.path_params["doc"])),
    ) -> Dict[str, Any]:
        return {"same": request.state.irontoken is a}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", atm
    finally:
        server.should_exit = True
        thread.join(10)
        atm.sync.close()


def test_capability_guard(served: Tuple[str, AsyncTokenManager]) -> None:
    base, atm = served
    tm = atm.sync
    key_id = tm.create_key("acme").record.id
    token = tm.mint_capability(key_id, tools=["search", "read"], ttl_seconds=600, ceiling_micros=250)
    only_read = irontoken.attenuate(token, tools=["read"], resources=["d1"])
    with httpx.Client(base_url=base) as c:

        def call(method: str, path: str, t: str | None) -> Any:
            return c.request(method, path, headers={"Authorization": f"Bearer {t}"} if t else {})

        r = call("POST", "/tools/search", None)
        assert r.status_code == 401 and r.json()["detail"]["code"] == "MISSING"
        r = call("POST", "/tools/search", token)
        assert r.status_code == 200 and r.json() == {"key_id": key_id, "remaining": 150}
        assert call("POST", "/tools/search", token).status_code == 200
        r = call("POST", "/tools/search", token)
        assert r.status_code == 429 and r.json()["detail"]["code"] == "CEILING_EXCEEDED"
        r = call("POST", "/tools/search", only_read)
        assert r.status_code == 403 and r.json()["detail"]["code"] == "TOOL_NOT_ALLOWED"
        assert "insufficient_scope" in r.headers["WWW-Authenticate"]
        assert call("GET", "/docs/d1", only_read).json() == {"same": True}
        r = call("GET", "/docs/d2", only_read)
        assert r.status_code == 403 and r.json()["detail"]["code"] == "CAPABILITY_DENIED"
        r = call("GET", "/docs/d1", "garbage")
        assert r.status_code == 401 and r.json()["detail"]["code"] == "CAPABILITY_MALFORMED"
        tm.revoke_capability(token)
        r = call("GET", "/docs/d1", only_read)
        assert r.status_code == 401 and r.json()["detail"]["code"] == "CAPABILITY_REVOKED"
        assert token not in r.text and "invalid_token" in r.headers["WWW-Authenticate"]
        r = c.get(f"/docs/d1?access_token={only_read}")
        assert r.status_code == 400
