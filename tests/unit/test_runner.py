"""The runner's contract (DESIGN §2) without external services: callers, errors, resources."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from shared.runtime import runner
from shared.runtime.resources import ResourceRegistry
from shared.runtime.runner import AsyncRunner, RunnerShutDown, current_resources, run_async


async def add(a: int, b: int, delay: float = 0.0) -> int:
    await asyncio.sleep(delay)
    return a + b


@pytest.fixture
def fresh_runner() -> Iterator[AsyncRunner]:
    """A runner of its own, shut down after the test."""
    r = AsyncRunner()
    r.start()
    yield r
    r.shutdown()


def test_returns_the_result_from_a_plain_caller() -> None:
    """A plain synchronous caller gets the coroutine's result."""
    assert run_async(add(2, 3)) == 5


def test_raises_the_coroutines_exception() -> None:
    """The coroutine's exception reaches the caller unchanged."""

    async def boom() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        run_async(boom())


def test_runs_on_one_persistent_loop() -> None:
    """Every call runs on the same loop, in a thread other than the caller's."""

    async def where() -> tuple[int, int]:
        return id(asyncio.get_running_loop()), threading.get_ident()

    first, second = run_async(where()), run_async(where())
    assert first == second
    assert first[1] != threading.get_ident()


def test_works_from_many_os_threads() -> None:
    """Forty OS threads calling at once all get their own results."""
    results: dict[int, int] = {}

    def call(i: int) -> None:
        results[i] = run_async(add(i, i, 0.01))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: 2 * i for i in range(40)}


@pytest.mark.asyncio
async def test_works_from_inside_a_running_loop() -> None:
    """A caller that already runs a loop (pytest-asyncio) still gets the result."""
    assert run_async(add(1, 1)) == 2


def test_timeout_cancels_the_coroutine() -> None:
    """A timeout raises TimeoutError and cancels the coroutine on the loop, saying why (a stage records it)."""
    cancelled = threading.Event()
    reasons: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            reasons.append(str(exc))
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        run_async(slow(), timeout=0.05)
    assert cancelled.wait(5)
    assert reasons == ["run_async abandoned by its caller: TimeoutError('run_async timed out after 0.05 s')"]


def test_calling_from_the_runners_own_loop_is_refused() -> None:
    """A coroutine on the runner's loop that calls run_async gets a clear error, not a deadlock."""

    async def nested() -> int:
        return run_async(add(1, 1))

    with pytest.raises(RuntimeError, match="await it instead"):
        run_async(nested())


def test_context_of_the_caller_reaches_the_coroutine() -> None:
    """Context variables bound by the caller (trace context) are visible to the coroutine."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("bound")

    async def read() -> str:
        return var.get()

    assert run_async(read()) == "bound"


def test_resources_are_created_once_under_concurrency(fresh_runner: AsyncRunner) -> None:
    """Fifty coroutines asking for the same resource at once share one instance."""
    created: list[object] = []

    async def create() -> object:
        await asyncio.sleep(0.01)
        created.append(object())
        return created[-1]

    async def closer(_: object) -> None:
        return None

    async def ask() -> object:
        return await current_resources().get("thing", create, closer)

    async def many() -> set[int]:
        return {id(x) for x in await asyncio.gather(*(ask() for _ in range(50)))}

    assert fresh_runner.run(many()) == {id(created[0])}
    assert len(created) == 1


def test_shutdown_closes_resources_on_the_loop_newest_first(fresh_runner: AsyncRunner) -> None:
    """shutdown() closes every resource, on the runner's loop, in reverse order of creation."""
    closed: list[tuple[str, bool]] = []
    loop_thread: list[int] = []

    async def register(name: str) -> None:
        loop_thread.append(threading.get_ident())

        async def create() -> str:
            return name

        async def close(value: str) -> None:
            closed.append((value, threading.get_ident() == loop_thread[0]))

        await current_resources().get(name, create, close)

    fresh_runner.run(register("first"))
    fresh_runner.run(register("second"))
    fresh_runner.shutdown()
    assert closed == [("second", True), ("first", True)]
    with pytest.raises(RuntimeError, match="shut down"):
        fresh_runner.run(add(1, 2))


def test_per_task_mode_closes_resources_after_each_call() -> None:
    """In per-task disposal mode each call gets, and closes, its own resources."""
    per_task = AsyncRunner(dispose="per_task")
    per_task.start()
    closed: list[int] = []

    async def use(n: int) -> int:
        async def create() -> int:
            return n

        async def close(value: int) -> None:
            closed.append(value)

        return await current_resources().get("conn", create, close)

    try:
        assert [per_task.run(use(n)) for n in range(3)] == [0, 1, 2]
        assert closed == [0, 1, 2]
        assert len(per_task.resources) == 0
    finally:
        per_task.shutdown()


def test_a_failed_creation_is_retried_by_the_next_caller() -> None:
    """A resource whose creation failed is not cached: the next call creates it again."""
    registry = ResourceRegistry()
    attempts: list[int] = []

    async def create() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first try fails")
        return 42

    async def close(_: int) -> None:
        return None

    async def scenario() -> int:
        with pytest.raises(ConnectionError):
            await registry.get("r", create, close)
        return await registry.get("r", create, close)

    assert asyncio.run(scenario()) == 42


def test_module_shutdown_then_a_new_call_starts_a_new_runner() -> None:
    """After the process runner is shut down, the next run_async starts a fresh one."""
    before = runner.get_runner()
    runner.shutdown()
    assert run_async(add(1, 2)) == 3
    assert runner.get_runner() is not before


def test_resources_outside_the_runner_are_refused() -> None:
    """Asking for resources outside a run_async coroutine is a clear error."""

    async def outside() -> None:
        current_resources()

    with pytest.raises(RuntimeError, match="run_async"):
        asyncio.run(outside())


@pytest.mark.timeout(60)
def test_shutdown_ends_calls_in_flight_with_a_clear_error(fresh_runner: AsyncRunner) -> None:
    """A caller waiting on a call that shutdown() interrupts gets RunnerShutDown, not an endless wait."""
    outcome: list[BaseException | None] = []
    started = threading.Event()

    async def long_call() -> None:
        started.set()
        await asyncio.sleep(3600)

    def caller() -> None:
        try:
            fresh_runner.run(long_call())
            outcome.append(None)
        except BaseException as exc:  # the test inspects whatever the caller got
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    assert started.wait(10)
    fresh_runner.shutdown(timeout=10)
    thread.join(20)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], RunnerShutDown)
    assert "shut down" in str(outcome[0])
