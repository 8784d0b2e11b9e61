"""A TokenManager opened before os.fork() (gunicorn --preload) keeps
working in the children: each reopens its connections and starts its own
flusher, nothing the parent buffered is written twice, and nothing a child
records is lost."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

from irontoken import TokenManager

# Skipped only where the platform has no fork() (Windows): the behaviour
# under test is what a forked child inherits; every Linux run executes it.
# Why: fork safety is about os.fork, which Windows does not have.
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="skipped: no os.fork on this platform (Windows)")


def test_forked_workers_keep_every_use_once(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "fork.db")
    # A long flush interval: nothing is written by the timer during the test.
    tm = TokenManager(db, flush_interval_ms=3_600_000)
    created = tm.create_key(owner="svc")
    key, key_id = created.key, created.record.id
    for _ in range(3):  # buffered in the parent when it forks
        assert tm.verify_key(key).valid
    tm.record_usage(request_id="parent", key_id=key_id, prompt_tokens=1)

    children = []
    for n in range(3):
        pid = os.fork()
        if pid == 0:  # a worker: uses the inherited manager, then exits
            code = 1
            try:
                for _ in range(10):
                    assert tm.verify_key(key).valid
                tm.record_usage(request_id=f"child-{n}", key_id=key_id, prompt_tokens=1)
                tm.close()  # writes what this child buffered
                code = 0
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    tm.flush()
    assert tm.get_key(key_id).usage_count == 3 + 3 * 10
    ids = sorted(r["request_id"] for r in tm.export_usage().items)
    assert ids == ["child-0", "child-1", "child-2", "parent"]
    tm.close()


def test_a_child_that_never_uses_the_manager_writes_nothing(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "idle.db")
    tm = TokenManager(db, flush_interval_ms=3_600_000)
    created = tm.create_key(owner="svc")
    assert tm.verify_key(created.key).valid
    pid = os.fork()
    if pid == 0:
        # Dropping the inherited manager must neither flush the parent's
        # buffer nor wait for the parent's flusher thread.
        del tm
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    tm.flush()
    assert tm.get_key(created.record.id).usage_count == 1
    tm.close()
