"""The execution row's lock (MariaDB): the steps' bookkeeping shares it, what writes the execution row
takes it alone; a failure is still completed only on committed rows, by the last step to end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.config import retry
from shared.records import executions
from shared.records.executions import begin_stage, record_stage_end, record_stage_start
from shared.records.queries import get_execution, get_stages
from shared.runtime.runner import run_async
from tests.integration.records_fixtures import create_execution

pytestmark = pytest.mark.integration

SOON = 10.0  # seconds: far more than a lock-free start or end takes, far less than innodb_lock_wait_timeout


@pytest.fixture
def retries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The transient errors (deadlocks, lock wait timeouts) that `retry_transient` retried during the test."""
    seen: list[str] = []
    monkeypatch.setattr(retry, "_log_retry", lambda state: seen.append(repr(state.outcome.exception())))
    return seen


@pytest.fixture
def held_start(monkeypatch: pytest.MonkeyPatch) -> dict[str, asyncio.Event]:
    """Makes the start of shard `held` wait, inside its transaction (the row lock held), until its
    `release` event is set; `entered` is set once it waits. The events are made on the runner's loop."""
    events: dict[str, asyncio.Event] = {}
    original = executions._start_stage

    async def start_stage(conn: Any, execution_id: str, execution: Any, stage: str, shard: str,
                          *args: Any) -> Any:
        started = await original(conn, execution_id, execution, stage, shard, *args)
        if shard == "held":
            events["entered"].set()
            await events["release"].wait()
        return started

    monkeypatch.setattr(executions, "_start_stage", start_stage)
    return events


async def running_execution() -> str:
    execution_id = await create_execution("nightly", "event", {"stages": ["merge"]})
    await record_stage_start(execution_id, "merge", "first", 1, "task-first")  # pending → running
    return execution_id


def test_starts_and_success_ends_share_the_row_while_a_final_failure_waits(
        app_db: str, held_start: dict[str, asyncio.Event], retries: list[str]) -> None:
    """While one start's transaction is open, another start and a success end commit at once; a final
    failure waits for it, then sees it running and leaves the execution running with its failure noted."""

    async def scenario() -> tuple[str | None, bool]:
        held_start.update(entered=asyncio.Event(), release=asyncio.Event())
        execution_id = await running_execution()
        holder = asyncio.create_task(begin_stage(execution_id, "merge", "held", 1, "task-held"))
        try:
            await asyncio.wait_for(held_start["entered"].wait(), SOON)
            await asyncio.wait_for(record_stage_start(execution_id, "merge", "b", 1, "task-b"), SOON)
            await asyncio.wait_for(record_stage_end(execution_id, "merge", "b", 1, status="succeeded",
                                                    duration_ms=1), SOON)
            failing = asyncio.create_task(record_stage_end(execution_id, "merge", "first", 1, status="failed",
                                                           duration_ms=1, fails_execution="merge[first]: boom"))
            await asyncio.sleep(1.5)
            waited = not failing.done()
        finally:
            held_start["release"].set()  # also when an assertion failed: the lock is not left held
            await holder
        return await asyncio.wait_for(failing, SOON), waited

    status, waited = run_async(scenario())
    assert waited, "the final failure did not wait for the open start's transaction"
    assert status == "running"  # `held` started before the failure could read the rows: it still runs
    assert retries == []


def test_the_last_end_completes_a_pending_failure_when_ends_race(app_db: str, retries: list[str]) -> None:
    """A failure is pending while four shards run; they all succeed at once (each reads the pending
    failure under the shared lock and ends again under the exclusive one): the execution fails, once."""
    shards = ["a", "b", "c", "d"]

    async def scenario() -> str:
        execution_id = await running_execution()
        for shard in shards:
            await record_stage_start(execution_id, "merge", shard, 1, f"task-{shard}")
        await record_stage_end(execution_id, "merge", "first", 1, status="failed", duration_ms=1,
                               fails_execution="merge[first]: boom")
        assert (await get_execution(execution_id) or {})["status"] == "running"
        ends = await asyncio.gather(*(record_stage_end(execution_id, "merge", shard, 1, status="succeeded",
                                                       duration_ms=1) for shard in shards))
        assert ends.count("failed") == 1  # the last to end; the others saw a shard still running
        assert {r["status"] for r in await get_stages(execution_id) if r["shard"] in shards} == {"succeeded"}
        return execution_id

    execution = run_async(get_execution(run_async(scenario())))
    assert (execution["status"], execution["failed_stage"], execution["error"]) == \
        ("failed", "merge", "merge[first]: boom")
    assert execution["finished_at"] is not None
    assert retries == []


def test_starts_that_open_a_pending_execution_race_without_a_deadlock(app_db: str, retries: list[str]) -> None:
    """Starts of one pending execution at once: each reads `pending` under the shared lock and starts
    again under the exclusive one (never upgraded in place); one moves it to running, all are recorded."""
    shards = ["a", "b", "c", "d"]

    async def scenario() -> tuple[str, list[str | None]]:
        execution_id = await create_execution("nightly", "event", {"stages": ["merge"]})
        started = await asyncio.gather(*(record_stage_start(execution_id, "merge", shard, 1, f"task-{shard}")
                                         for shard in shards))
        return execution_id, started

    execution_id, started = run_async(scenario())
    assert started == ["running"] * len(shards)
    execution = run_async(get_execution(execution_id))
    assert execution["status"] == "running"
    assert execution["started_at"] is not None
    assert {r["shard"] for r in run_async(get_stages(execution_id))} == set(shards)
    assert retries == []
