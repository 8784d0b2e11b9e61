import json
import pathlib
from typing import Any, Dict, List

import pytest

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "vectors"
T0 = 1_700_000_000


def key_vectors() -> List[Dict[str, Any]]:
    doc = json.loads((VECTORS / "keys.json").read_text(encoding="utf-8"))
    cases = []
    for c in doc["cases"]:
        if "key" in c:
            key = c["key"]
        else:
            r = c["key_repeat"]
            key = r["unit"] * r["count"] + r.get("suffix", "")
        cases.append({**c, "key": key})
    return cases


@pytest.fixture
def tm():
    from irontoken import TokenManager

    with TokenManager(":memory:", manual_clock_start=T0) as m:
        yield m
