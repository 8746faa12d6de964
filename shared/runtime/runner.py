"""The shared async runner: one asyncio loop per process, in a real OS thread, for every caller.

`run_async(coro)` runs a coroutine on that loop and returns its result (or raises its exception) to any
caller: a gevent greenlet, an OS thread, a prefork/solo/threads pool, a plain script, or code that is
already inside a running loop. Greenlets wait cooperatively (woken through a gevent hub ``async_``
watcher), other callers block on a future. Engines and pools live in the loop's `ResourceRegistry`
and are closed on the loop before it stops (`shutdown()`, `atexit`, the worker's shutdown signal).

Why not ``asyncio.run`` or a loop per thread: all greenlets share one OS thread, and asyncio tracks
the running loop per OS thread, so overlapping greenlets trip over each other's loop (DESIGN §2).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import os
import sys
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar, cast

import structlog

from shared.runtime import realthreads
from shared.runtime.resources import ResourceRegistry

T = TypeVar("T")
log = structlog.get_logger(__name__)
DisposeMode = Literal["shutdown", "per_task"]

# Threads of the loop's executor for blocking calls (aioodbc, getaddrinfo); wider than any ODBC pool.
EXECUTOR_THREADS = 64
# At shutdown, how long to wait for executor threads; one still blocked in a driver on a silent source
# (abandoned after HRSYNC_SOURCE_TIMEOUT) is left behind: it is a raw thread and does not hold up exit.
EXECUTOR_JOIN_SECONDS = 5.0

_by_thread: dict[int, AsyncRunner] = {}  # loop thread id → its runner, for current_resources()
_task_scope: contextvars.ContextVar[ResourceRegistry | None] = contextvars.ContextVar(
    "hrsync_task_resources", default=None
)


class RunnerShutDown(RuntimeError):
    """The runner was shut down while the call ran (or before it started): the call did not finish."""


class AsyncRunner:
    """An event loop running forever in its own OS thread, with the registry of its resources."""

    def __init__(self, dispose: DisposeMode = "shutdown") -> None:
        self.dispose = dispose
        self.resources = ResourceRegistry()
        self.loop = asyncio.SelectorEventLoop(realthreads.DefaultSelector())
        self.executor = realthreads.RealThreadExecutor(EXECUTOR_THREADS, "hrsync-runner-io")
        self.loop.set_default_executor(self.executor)
        self._thread_id: int | None = None
        self._stopped = realthreads.allocate_lock()
        self._closed = False
        self._calls: set[_Call] = set()  # submitted and not yet finished (guarded by _calls_lock)
        self._calls_lock = realthreads.allocate_lock()

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and return once the loop is running."""
        ready = realthreads.allocate_lock()
        ready.acquire()
        self._stopped.acquire()
        realthreads.start_new_thread(self._serve, (ready,))
        ready.acquire()  # released by the loop thread once the loop runs: microseconds

    def _serve(self, ready: Any) -> None:
        self._thread_id = realthreads.get_ident()
        _by_thread[self._thread_id] = self
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.release)
        try:
            self.loop.run_forever()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.executor.shutdown(wait=False)
            if stuck := self.executor.join(EXECUTOR_JOIN_SECONDS):
                log.warning("runner.io_threads_blocked_at_shutdown", threads=stuck)
            self.loop.close()
            _by_thread.pop(self._thread_id, None)
            self._end_calls_left()
            self._stopped.release()

    def _end_calls_left(self) -> None:
        """Wake every caller whose call never finished (not started, or ignoring its cancellation)."""
        with self._calls_lock:
            left, self._calls = list(self._calls), set()
        for call in left:
            if call.task is None:
                call.coro.close()  # never started: it must not warn "never awaited"
            call.error = RunnerShutDown("run_async: the runner shut down before the call finished")
            call.wake()

    async def _end_in_flight(self, grace: float) -> None:
        """Cancel the calls still running (their callers get `RunnerShutDown`), then wait up to `grace`."""
        me = asyncio.current_task()
        with self._calls_lock:
            running = [c.task for c in self._calls if c.task is not None and c.task is not me]
        for task in running:
            task.cancel(msg="run_async: the runner is shutting down")
        if running:
            await asyncio.wait(running, timeout=grace)

    async def _close(self, grace: float) -> None:
        await self._end_in_flight(grace)
        await self.resources.aclose()

    @property
    def in_loop_thread(self) -> bool:
        return realthreads.get_ident() == self._thread_id

    def shutdown(self, timeout: float = 30.0) -> None:
        """End the calls in flight (their callers get `RunnerShutDown`), close every registered resource on
        the loop, then stop the loop and its thread."""
        if self._closed:
            return
        self._closed = True
        if self.in_loop_thread:
            raise RuntimeError("shutdown() called from the runner's own loop")
        try:
            self._submit(self._close(grace=min(5.0, timeout / 2)), None, timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._stopped.acquire(True, timeout)

    # -- running coroutines ---------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and return its result; see `run_async`."""
        if self._closed:
            coro.close()
            raise RuntimeError("the async runner is shut down")
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("run_async() called from a coroutine on the runner's loop: await it instead")
        if self.dispose == "per_task":
            coro = _with_task_resources(coro)
        return self._submit(coro, contextvars.copy_context(), timeout)

    def _submit(self, coro: Coroutine[Any, Any, T], context: contextvars.Context | None,
                timeout: float | None) -> T:
        wait = _wait_in_greenlet if _greenlet_waits() else _wait_in_thread
        return cast(T, wait(self.loop, _Call(coro, context, self), timeout))

    def _track(self, call: _Call, running: bool) -> None:
        with self._calls_lock:
            if running:
                self._calls.add(call)
            else:
                self._calls.discard(call)


class _Call:
    """One `run_async` call: started on the loop thread, its outcome handed back through `wake`."""

    __slots__ = ("context", "coro", "error", "result", "runner", "task", "wake")

    def __init__(self, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None,
                 runner: AsyncRunner) -> None:
        self.coro, self.context, self.runner = coro, context, runner
        self.task: asyncio.Task[Any] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake: Any = None
        runner._track(self, running=True)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:  # on the loop thread
        self.task = loop.create_task(self.coro, context=self.context)
        self.task.add_done_callback(self.finish)

    def finish(self, task: asyncio.Task[Any]) -> None:  # on the loop thread
        self.runner._track(self, running=False)
        if task.cancelled() and self.runner._closed:
            self.error = RunnerShutDown("run_async: the runner shut down while the call ran")
        elif task.cancelled():
            self.error = concurrent.futures.CancelledError()
        elif (error := task.exception()) is not None:
            self.error = error
        else:
            self.result = task.result()
        self.wake()

    def abandon(self, why: BaseException) -> None:  # on the loop thread, always after start()
        if self.task is not None:  # the message is what a stage records as its error
            self.task.cancel(msg=f"run_async abandoned by its caller: {why!r}"[:300])

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _wait_in_thread(loop: asyncio.AbstractEventLoop, call: _Call, timeout: float | None) -> Any:
    """An OS-thread caller blocks on an original lock that the loop thread releases."""
    done = realthreads.allocate_lock()
    done.acquire()
    call.wake = done.release
    loop.call_soon_threadsafe(call.start, loop)
    try:
        finished = done.acquire(True, -1 if timeout is None else timeout)
    except BaseException as exc:
        loop.call_soon_threadsafe(call.abandon, exc)
        raise
    if not finished:
        gave_up = TimeoutError(f"run_async timed out after {timeout} s")
        loop.call_soon_threadsafe(call.abandon, gave_up)  # the caller gave up: stop the coroutine too
        raise gave_up
    return call.outcome()


def _wait_in_greenlet(loop: asyncio.AbstractEventLoop, call: _Call, timeout: float | None) -> Any:
    """A greenlet waits on its hub, woken by an ``async_`` watcher the loop thread sends to.

    The started watcher keeps the hub alive (no LoopExit with a single caller); `send` is the one
    thread-safe way into a gevent hub.
    """
    import gevent
    from gevent.hub import Waiter, get_hub

    hub = get_hub()
    watcher = hub.loop.async_()
    waiter = Waiter(hub)
    watcher.start(waiter.switch, None)
    call.wake = watcher.send
    loop.call_soon_threadsafe(call.start, loop)
    try:
        if timeout is None:
            waiter.get()
        else:
            with gevent.Timeout(timeout, TimeoutError(f"run_async timed out after {timeout} s")):
                waiter.get()
    except BaseException as exc:
        # Timeout, killed greenlet, time limit: cancel the coroutine. The watcher is only stopped, not
        # closed: the loop thread may still send to it, which is harmless when stopped. A bare gevent
        # Timeout is someone else's: Celery's gevent pool enforces the task's time limit with one.
        watcher.stop()
        why = TimeoutError(f"time limit: gevent.Timeout after {exc.seconds} s") \
            if isinstance(exc, gevent.Timeout) else exc
        loop.call_soon_threadsafe(call.abandon, why)
        raise
    watcher.close()
    return call.outcome()


async def _with_task_resources(coro: Coroutine[Any, Any, T]) -> T:
    """Per-task disposal mode: resources made during this call are closed when it ends."""
    scope = ResourceRegistry()
    token = _task_scope.set(scope)
    try:
        return await coro
    finally:
        _task_scope.reset(token)
        await scope.aclose()


def _greenlet_waits() -> bool:
    """True when the caller must wait cooperatively: a patched process, or a gevent greenlet."""
    gevent = sys.modules.get("gevent")
    if gevent is None:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("threading")) or isinstance(gevent.getcurrent(), gevent.Greenlet)


# -- the process's runner ----------------------------------------------------------------------------

_runner: AsyncRunner | None = None
_runner_lock = realthreads.allocate_lock()


def get_runner() -> AsyncRunner:
    """The process's runner, started on first use."""
    global _runner
    runner = _runner
    if runner is not None and not runner._closed:
        return runner
    with _runner_lock:
        if _runner is None or _runner._closed:
            from shared.config.settings import get_settings

            runner = AsyncRunner(dispose=get_settings().runner_dispose)
            runner.start()
            _runner = runner
        return _runner


def run_async(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` on the process's runner loop; return its result or raise its exception.

    Works from greenlets (cooperative wait), threads, pools, scripts and from inside a running loop
    (which is then blocked for the duration). `timeout` (seconds) cancels the coroutine and raises
    `TimeoutError`. Do not call it from a coroutine already on the runner's loop: await instead.
    """
    try:
        runner = get_runner()
    except BaseException:
        coro.close()  # bad settings: the coroutine never runs, and must not warn "never awaited"
        raise
    return runner.run(coro, timeout)


def current_resources() -> ResourceRegistry:
    """The registry resources belong to: the call's own in per-task mode, else the runner's."""
    scope = _task_scope.get()
    if scope is not None:
        return scope
    runner = _by_thread.get(realthreads.get_ident())
    if runner is None:
        raise RuntimeError("resources are only available to coroutines run through run_async()")
    return runner.resources


def shutdown(timeout: float = 30.0) -> None:
    """Close the resources and stop the runner, if one runs. A later `run_async` starts a new one."""
    with _runner_lock:
        runner = _runner
    if runner is not None:
        runner.shutdown(timeout)


def _forget_after_fork() -> None:
    # A forked child has no loop thread; the parent's engines and sockets are not ours to close.
    global _runner, _runner_lock
    _runner = None
    _runner_lock = realthreads.allocate_lock()


atexit.register(shutdown)
os.register_at_fork(after_in_child=_forget_after_fork)
