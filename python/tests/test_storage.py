"""The database file from Python: private to its owner, never created over
a missing or empty file when asked not to, a corrupt file refused, and a
flush under way waited for."""

from __future__ import annotations

import os
import stat
from typing import Any, Dict, List

import pytest

from irontoken import TokenManager


def test_database_files_are_private(tmp_path: Any) -> None:
    path = str(tmp_path / "p.db")
    with TokenManager(path) as tm:
        tm.create_key("o")
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(os.stat(path + suffix).st_mode)
            assert mode & 0o077 == 0, (suffix, oct(mode))


def test_create_false_refuses_a_missing_file(tmp_path: Any) -> None:
    from irontoken import DatabaseNotFoundError

    missing = tmp_path / "typo.db"
    with pytest.raises(DatabaseNotFoundError) as e:
        TokenManager(str(missing), create=False)
    assert isinstance(e.value, FileNotFoundError) and e.value.code == "DATABASE_NOT_FOUND"
    assert not missing.exists()
    TokenManager(str(missing)).close()  # the default creates, like sqlite3.connect
    TokenManager(str(missing), create=False).close()


def test_a_corrupt_file_is_refused(tmp_path: Any) -> None:
    from irontoken import DatabaseCorruptError

    path = tmp_path / "c.db"
    with TokenManager(str(path)) as tm:
        for i in range(150):
            tm.create_key(f"o{i}")
    data = bytearray(path.read_bytes())
    data[2 * 4096 : 4 * 4096] = b"\xa5" * (2 * 4096)
    path.write_bytes(bytes(data))
    with pytest.raises(DatabaseCorruptError):
        TokenManager(str(path))
    assert path.read_bytes() == bytes(data)


def test_flush_waits_for_a_flush_under_way_and_reads_count_every_use(tmp_path: Any) -> None:
    """While the background writer holds uses it took from the buffer (here:
    waiting for the write lock another process holds), `flush()` does not
    answer early and `get_key` does not count them as missing."""
    import subprocess
    import sys
    import threading
    import time

    path = str(tmp_path / "inflight.db")
    tm = TokenManager(path, busy_timeout_ms=20000, flush_interval_ms=3600000)
    c = tm.create_key("f")
    for _ in range(3):
        assert tm.verify_key(c.key)
    # Another process: two SQLite libraries in one process do not see each
    # other's POSIX locks, so the holder cannot be this process.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    released = threading.Event()
    seen: Dict[str, Any] = {}

    def second() -> None:
        tm.flush()
        seen["released before the second flush answered"] = released.is_set()

    def read() -> None:
        seen["uses read during the flush"] = tm.get_key(c.record.id).usage_count

    first = threading.Thread(target=tm.flush)
    first.start()
    time.sleep(0.2)
    assert first.is_alive()  # it has taken the buffer and waits for the lock
    threads = [threading.Thread(target=second), threading.Thread(target=read)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    released.set()
    holder.communicate("release\n", timeout=30)
    for t in [first, *threads]:
        t.join()
    assert seen == {"released before the second flush answered": True, "uses read during the flush": 3}
    assert TokenManager(path).get_key(c.record.id).usage_count == 3
    tm.close()


# Issue 29: smaller broken promises.


def test_an_empty_file_is_never_made_a_new_database(tmp_path: Any) -> None:
    from irontoken import DatabaseNotFoundError

    empty = tmp_path / "truncated.db"
    empty.write_bytes(b"")
    options: List[Dict[str, Any]] = [{}, {"create": False}]
    for kwargs in options:
        with pytest.raises(DatabaseNotFoundError, match="empty"):
            TokenManager(str(empty), **kwargs)
    assert empty.stat().st_size == 0
    with TokenManager(str(tmp_path / "fresh.db")) as tm:
        tm.create_key("o")
