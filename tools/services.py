#!/usr/bin/env python3
"""Which test services answer: PostgreSQL and Redis, at the URLs the tests
use (IRONTOKEN_TEST_POSTGRES_URL, IRONTOKEN_TEST_REDIS_URL).

  services.py postgres      exit 0 if PostgreSQL answers, else print one
                            "skipped: ..." line and exit 1
  services.py --require     exit 1 unless both answer (CI)"""
import os
import socket
import sys
from urllib.parse import urlsplit

URLS = {
    "postgres": os.environ.get(
        "IRONTOKEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "redis": os.environ.get("IRONTOKEN_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
}
NAMES = {"postgres": "PostgreSQL", "redis": "Redis"}
PORTS = {"postgres": 5432, "redis": 6379}


def answers(service):
    u = urlsplit(URLS[service])
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or PORTS[service]), timeout=2).close()
        return True
    except OSError:
        return False


def main():
    args = sys.argv[1:]
    if args == ["--require"]:
        missing = [s for s in URLS if not answers(s)]
        for s in missing:
            print(f"{NAMES[s]} does not answer at {URLS[s]}: CI needs it")
        sys.exit(1 if missing else 0)
    missing = [s for s in args if not answers(s)]
    for s in missing:
        print(f"skipped: no {NAMES[s]} at {URLS[s]}")
    sys.exit(1 if missing else 0)


main()
