"""Runs the service through FastAPI's test client and checks its answers."""

from __future__ import annotations

import os
import sys
import tempfile

os.environ["IRONTOKEN_DB"] = os.path.join(tempfile.mkdtemp(prefix="itk-example-"), "keys.db")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fastapi.testclient import TestClient  # noqa: E402

from app import app, tm  # noqa: E402

reader = tm.sync.create_key("alice", scopes=["read", "llm"])
tm.sync.set_quota(scope="key", subject=reader.record.id, metric="requests", period="day", limit=2)
writer = tm.sync.create_key("bob", scopes=["write"])

with TestClient(app) as client:
    ok = client.get("/items", headers={"X-API-Key": reader.key})
    assert ok.status_code == 200 and ok.json()["owner"] == "alice", ok.text
    assert client.get("/items").status_code == 401
    assert client.get("/items", headers={"X-API-Key": writer.key}).status_code == 403
    assert client.get("/items", headers={"X-API-Key": reader.key}).status_code == 200
    limited = client.get("/items", headers={"X-API-Key": reader.key})
    assert limited.status_code == 429 and limited.json()["detail"]["code"] == "USAGE_EXCEEDED", limited.text
    for _ in range(2):  # a retry with the same request id is counted once
        r = client.post("/v1/complete", headers={"X-API-Key": reader.key, "X-Request-ID": "req-1"})
        assert r.status_code == 200, r.text
    totals = tm.sync.usage_summary()
    assert totals[0]["records"] == 1 and totals[0]["prompt_tokens"] == 812, totals
print("fastapi-service: ok")
