"""irontoken for asyncio: `AsyncTokenManager`, TokenManager's methods awaitable.

Every call that can wait — on SQLite's write lock (up to `busy_timeout_ms`),
on the disk, or on a PostgreSQL round trip — runs in a thread of an executor
(the loop's default one unless `executor=` is given; the native code releases
the GIL), so the event loop keeps serving requests. `verify_key` answers
inline whenever that needs no network round trip — always on SQLite (it reads
memory or WAL pages, never waits for a writer, and buffers its bookkeeping:
microseconds, cheaper than a thread hop), on PostgreSQL when the key is in the
notified caches — and goes to the executor otherwise; `verify_key_with` too
when it needs no write (no quota, no shared rate limit to apply). `now`,
`metrics`, `drain_events`, `try_verify_key` and `try_verify_key_with` (and
their deprecated old names `verify_key_now`, `verify_key_with_now`) are plain
functions.

    async with await AsyncTokenManager.open("keys.db") as tm:
        created = await tm.create_key("alice", scopes=["read"])
        result = await tm.verify_key(created.key, ["read"])

Signatures and types are those of TokenManager (aio.pyi is generated from
_native.pyi by tools/gen_aio_stub.py).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import Any, Callable, Dict, Optional

from ._native import TokenManager

__all__ = ["AsyncTokenManager"]

# Answered from memory, never waiting.
_SYNC = frozenset({"now", "metrics", "drain_events", "try_verify_key", "try_verify_key_with", "verify_key_now", "verify_key_with_now"})


class AsyncTokenManager:
    """TokenManager whose calls that can wait run off the event loop."""

    def __init__(self, path: str, *, executor: Optional[Executor] = None, **options: Any) -> None:
        self._tm = TokenManager(path, **options)
        self._executor = executor
        self._methods: Dict[str, Callable[..., Any]] = {}

    @classmethod
    async def open(cls, path: str, *, executor: Optional[Executor] = None, **options: Any) -> "AsyncTokenManager":
        """Opens off the event loop (opening migrates, and may wait for a lock or connect to PostgreSQL)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(cls, path, executor=executor, **options))

    @classmethod
    def from_env(cls, *, executor: Optional[Executor] = None, **options: Any) -> "AsyncTokenManager":
        """Opens the database ``IRONTOKEN_DB`` names, as :meth:`TokenManager.from_env`."""
        manager = cls.__new__(cls)
        manager._tm = TokenManager.from_env(**options)
        manager._executor = executor
        manager._methods = {}
        return manager

    @property
    def sync(self) -> TokenManager:
        """The TokenManager underneath, for synchronous code sharing the same state."""
        return self._tm

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(self._tm, name)
        if not callable(target) or name in _SYNC:
            return target
        method = self._methods.get(name)
        if method is None:
            if name in ("verify_key", "verify_key_with"):
                method = self._answer_now(getattr(self._tm, "try_" + name), self._offloaded(target))
            else:
                method = self._offloaded(target)
            functools.update_wrapper(method, target)
            self._methods[name] = method
        return method

    @staticmethod
    def _answer_now(now: Callable[..., Any], blocking: Callable[..., Any]) -> Callable[..., Any]:
        """`now`'s answer if it has one (no write, no round trip), else `blocking`'s."""

        async def call(*args: Any, **kwargs: Any) -> Any:
            answer = now(*args, **kwargs)
            return answer if answer is not None else await blocking(*args, **kwargs)

        return call

    def _offloaded(self, target: Callable[..., Any]) -> Callable[..., Any]:
        executor = self._executor

        async def call(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, functools.partial(target, *args, **kwargs))

        return call

    async def close(self) -> None:
        """Writes what is buffered and closes (off the event loop)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._tm.close)

    async def __aenter__(self) -> "AsyncTokenManager":
        return self

    async def __aexit__(self, *args: object) -> bool:
        await self.close()
        return False

    def __repr__(self) -> str:
        return f"AsyncTokenManager({self._tm!r})"
