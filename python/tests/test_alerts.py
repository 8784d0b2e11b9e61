"""Spend alerts from Python: quota levels chosen in the manager's options,
the alert webhook delivering each alert once to a local HTTP server, signed
(checked with irontoken.verify_webhook_signature and with the standard
library's hmac), and the metrics."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import irontoken
from irontoken import TokenManager, verify_webhook_signature

SECRET = "python-webhook-secret-0123"


@pytest.fixture
def hook() -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    """A local HTTP server that answers 500 to its first post, then 200."""
    got: List[Dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(500 if len(got) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()


def test_quota_levels_and_the_webhook(hook: Tuple[str, List[Dict[str, Any]]]) -> None:
    url, got = hook
    alerts: irontoken.types.AlertSettings = {
        "quota_levels": [50, 100],
        "webhook": {"url": url, "secret": SECRET, "backoff_ms": 20},
    }
    with TokenManager(":memory:", alerts=alerts) as tm:
        kid = tm.create_key("acme").record.id
        tm.set_quota(kid, metric="tokens", period="day", limit=100)
        tm.consume_quota(kid, tokens=60)
        tm.consume_quota(kid, tokens=40)
        levels = [e["detail"]["level"] for e in tm.drain_events() if e["kind"] == "quota_threshold"]
        assert levels == [50, 100]
        deadline = time.time() + 10
        while 'irontoken_webhook_deliveries_total{outcome="delivered"} 2' not in tm.metrics():
            assert time.time() < deadline, tm.metrics()
            time.sleep(0.01)
        assert "irontoken_webhook_retries_total 1" in tm.metrics()
    # The first alert was posted twice (500, then 200), the second once.
    assert len(got) == 3
    ids = [h["headers"]["irontoken-event-id"] for h in got]
    assert ids[0] == ids[1] != ids[2]
    for h in got:
        sig = h["headers"]["irontoken-signature"]
        verify_webhook_signature(SECRET, sig, h["body"])
        # The scheme a receiver without irontoken checks with the standard library.
        t, v1 = (p.split("=", 1)[1] for p in sig.split(","))
        mac = hmac.new(SECRET.encode(), f"{t}.".encode() + h["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, v1)
        assert SECRET.encode() not in h["body"]
    assert [json.loads(h["body"])["detail"]["level"] for h in got[1:]] == [50, 100]
    with pytest.raises(irontoken.InvalidArgumentError):
        verify_webhook_signature(SECRET, got[0]["headers"]["irontoken-signature"], got[0]["body"] + b" ")
    with pytest.raises(irontoken.InvalidArgumentError):
        verify_webhook_signature("another secret!!", got[0]["headers"]["irontoken-signature"], got[0]["body"])
    with pytest.raises(irontoken.InvalidArgumentError, match="old"):
        verify_webhook_signature(SECRET, got[0]["headers"]["irontoken-signature"], got[0]["body"], now=int(time.time()) + 3600)


def test_bad_alert_settings_are_refused() -> None:
    for bad in [
        {"quota_levels": [100, 50]},
        {"spike_factor": 0.5},
        {"webhook": {"url": "http://example.com/hook", "secret": SECRET}},
        {"webhook": {"url": "https://example.com/hook", "secret": "short"}},
        {"bogus": 1},
    ]:
        with pytest.raises(irontoken.InvalidArgumentError) as e:
            TokenManager(":memory:", alerts=bad)  # type: ignore[arg-type]
        assert SECRET not in str(e.value)
