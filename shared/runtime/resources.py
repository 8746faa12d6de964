"""The registry of long-lived async resources (engines, ODBC pools, SMTP connections).

Resources are created lazily *on the runner's loop*, once per key even when many coroutines ask at the
same time, and closed on that same loop, newest first, by `aclose()`: no engine outlives its loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import structlog

T = TypeVar("T")
Closer = Callable[[Any], Awaitable[None]]

log = structlog.get_logger(__name__)


class ResourceRegistry:
    """Named resources of one event loop. Use only from coroutines running on that loop."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, Closer]] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str, create: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]]) -> T:
        """The resource under `key`, made with `create()` on first use; `close` runs at `aclose()`."""
        if key in self._items:
            return cast(T, self._items[key][0])
        if key in self._pending:
            return cast(T, await asyncio.shield(self._pending[key]))
        pending: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = pending
        try:
            value = await create()
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            del self._pending[key]
        self._items[key] = (value, cast(Closer, close))
        pending.set_result(value)
        return value

    async def aclose(self) -> None:
        """Close every resource, newest first; a failing close is logged and the rest still close."""
        while self._items:
            key = next(reversed(self._items))
            value, close = self._items.pop(key)
            try:
                await close(value)
            except Exception:
                log.exception("resource.close_failed", resource=key)
