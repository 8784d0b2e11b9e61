"""A FastAPI service guarded by irontoken API keys."""

from __future__ import annotations

import os
from typing import Any, Dict

from fastapi import Depends, FastAPI, Request

from irontoken import KeyRecord
from irontoken.aio import AsyncTokenManager
from irontoken.fastapi import record_llm_usage, require_api_key

tm = AsyncTokenManager(os.environ.get("IRONTOKEN_DB", "service-keys.db"))
app = FastAPI(title="irontoken example")


@app.get("/items")
async def items(key: KeyRecord = Depends(require_api_key(tm, scopes=["read"], quota={"requests": 1}))) -> Dict[str, Any]:
    return {"owner": key.owner, "items": ["a", "b"]}


@app.post("/v1/complete")
async def complete(request: Request, key: KeyRecord = Depends(require_api_key(tm, scopes=["llm"]))) -> Dict[str, Any]:
    # ... call the model here ...
    counted = await record_llm_usage(tm, request, key, model="gpt-x", prompt_tokens=812, completion_tokens=95)
    return {"owner": key.owner, "counted": counted}
