"""Per-loop semaphores: how many steps of one process do a kind of heavy work at once.

A process's stage code runs on one loop thread (shared/runtime/runner.py). Fifty steps at once (a `-c 50`
gevent worker) finish CPU-bound work no sooner than a few, but every turn of the loop then waits for fifty
chunks of row decoding and encoding, and a step that holds a database lock across its awaits (a stage
start or end holds the execution's row, shared: shared/records/executions.py) holds it that much longer,
while whatever writes the execution row (a final failure, a cancel) waits on it.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
CoroutineFunction = Callable[P, Coroutine[Any, Any, T]]

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary())


def loop_slots(name: str, size: int) -> asyncio.Semaphore:
    """The running loop's semaphore `name` of `size` slots (a runner started later has a new loop, and new
    semaphores); the first call for a name fixes its size."""
    loop = asyncio.get_running_loop()
    by_name = _slots.setdefault(loop, {})
    slot = by_name.get(name)
    if slot is None:
        slot = by_name[name] = asyncio.Semaphore(size)
    return slot


def in_slots(name: str, size: int) -> Callable[[CoroutineFunction[P, T]], CoroutineFunction[P, T]]:
    """Decorate a coroutine function so that each call runs in one of the loop's `name` slots."""
    def decorate(function: CoroutineFunction[P, T]) -> CoroutineFunction[P, T]:
        @functools.wraps(function)
        async def slotted(*args: P.args, **kwargs: P.kwargs) -> T:
            async with loop_slots(name, size):
                return await function(*args, **kwargs)
        return slotted
    return decorate
