"""Real OS-thread primitives, also in a process that gevent has monkey-patched.

Under ``monkey.patch_all()`` `threading.Thread` is a greenlet and `threading.Lock` a gevent lock, so the
runner's loop thread and the executor that runs blocking calls (ODBC, DNS) are built from the originals.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from gevent.monkey import get_original

start_new_thread: Callable[..., int] = get_original("_thread", "start_new_thread")
allocate_lock: Callable[[], Any] = get_original("_thread", "allocate_lock")
get_ident: Callable[[], int] = get_original("_thread", "get_ident")
RLock: Callable[[], Any] = get_original("_thread", "RLock")
SimpleQueue: type = get_original("queue", "SimpleQueue")
DefaultSelector: type = get_original("selectors", "DefaultSelector")


class RealThread:
    """The part of `threading.Thread` that libraries such as aiosqlite use: a real OS thread."""

    def __init__(self, target: Callable[..., Any], args: tuple[Any, ...] = (), daemon: bool = True) -> None:
        self._target, self._args = target, args

    def start(self) -> None:
        start_new_thread(self._target, self._args)


def new_future() -> concurrent.futures.Future[Any]:
    """A concurrent Future whose condition uses an original lock, so real threads may complete it."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future._condition = threading.Condition(RLock())  # see module doc
    return future


class RealThreadExecutor(concurrent.futures.ThreadPoolExecutor):
    """A small thread pool on real OS threads; threads start on demand up to `max_workers`.

    A `ThreadPoolExecutor` subclass only because asyncio's `set_default_executor` demands one; none of
    the parent's machinery (patched under gevent) is used.
    """

    def __init__(self, max_workers: int, name: str = "hrsync-io") -> None:
        self._max_workers = max_workers
        self._name = name
        self._work: Any = SimpleQueue()
        self._lock = allocate_lock()
        self._idle = 0
        self._exits: list[Any] = []
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future = new_future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self._name} executor is shut down")
            self._work.put((future, fn, args, kwargs))
            if self._idle == 0 and len(self._exits) < self._max_workers:
                self._start_worker()
        return future

    def _start_worker(self) -> None:
        exited = allocate_lock()
        exited.acquire()
        self._exits.append(exited)
        start_new_thread(self._serve, (exited,))

    def _serve(self, exited: Any) -> None:
        try:
            while True:
                with self._lock:
                    self._idle += 1
                item = self._work.get()
                with self._lock:
                    self._idle -= 1
                if item is None:
                    return
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # the caller's exception, delivered through the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            exited.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            workers = list(self._exits)
        for _ in workers:
            self._work.put(None)
        if wait:
            self.join()

    def join(self, timeout: float | None = None) -> int:
        """After `shutdown`: wait for the threads to exit (at most `timeout` s in all); how many did not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = 0
        for exited in list(self._exits):
            left = -1 if deadline is None else max(0.0, deadline - time.monotonic())
            if exited.acquire(True, left):
                exited.release()  # a later join sees it exited too
            else:
                waiting += 1
        return waiting
