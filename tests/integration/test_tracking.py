"""Stage rows and execution states in the app database (MariaDB): attempts, what a lost attempt leaves,
the claim, when a failure fails the execution, cancel."""

from __future__ import annotations

import pytest

from shared.records.executions import (
    WORKFLOW,
    ExecutionClosed,
    cancel_execution,
    claim_execution,
    record_stage_end,
    record_stage_start,
    record_task_lost,
)
from shared.records.queries import get_execution, get_stages
from shared.records.shards import ShardKind
from shared.runtime.runner import run_async
from tests.integration.records_fixtures import create_execution

pytestmark = pytest.mark.integration


def test_a_later_attempt_closes_an_earlier_one_whose_end_was_never_recorded(app_db: str) -> None:
    """Attempt 1 of a shard stayed `running` (the database went away as it failed): attempt 2's start
    closes it as `retrying`; other shards and a redelivery of attempt 2 are left as they are."""
    execution_id = run_async(create_execution("nightly", "event", {"stages": ["merge"]}))
    run_async(record_stage_start(execution_id, "merge", "a", 1, "task-a1"))
    run_async(record_stage_start(execution_id, "merge", "b", 1, "task-b1"))
    run_async(record_stage_start(execution_id, "merge", "a", 2, "task-a2"))
    run_async(record_stage_start(execution_id, "merge", "a", 2, "task-a2"))  # redelivered: same row again

    rows = {(r["shard"], r["attempt"]): r for r in run_async(get_stages(execution_id))}
    assert set(rows) == {("a", 1), ("a", 2), ("b", 1)}
    lost = rows[("a", 1)]
    assert (lost["status"], lost["error_type"]) == ("retrying", "AttemptLost")
    assert lost["finished_at"] is not None
    assert "attempt 2 took over" in lost["error_message"]
    assert rows[("a", 2)]["status"] == "running"
    assert rows[("b", 1)]["status"] == "running"


def stage_statuses(execution_id: str) -> dict[tuple[str, str, int], str]:
    return {(r["stage"], r["shard"], r["attempt"]): r["status"] for r in run_async(get_stages(execution_id))}


def test_the_claim_goes_on_for_its_own_canvas_and_stops_another(app_db: str) -> None:
    """The start task that claimed an execution continues when it runs again; another launch's start stops."""
    execution_id = run_async(create_execution("hris", "event", {"stages": ["extract"]}))
    run_async(record_stage_start(execution_id, WORKFLOW, ShardKind.START, 1, "canvas-1", opens=False))
    assert run_async(get_execution(execution_id))["status"] == "pending"  # `start` claims, not its row
    assert run_async(claim_execution(execution_id, "canvas-1")) == "claimed"
    assert run_async(claim_execution(execution_id, "canvas-1")) == "continued"  # redelivered: same task id
    run_async(record_stage_start(execution_id, WORKFLOW, ShardKind.START, 1, "canvas-2", opens=False))
    with pytest.raises(ExecutionClosed, match="claimed by another launch"):
        run_async(claim_execution(execution_id, "canvas-2"))


def test_a_final_failure_fails_the_execution_only_when_its_last_shard_ends(app_db: str) -> None:
    """Shard a fails for good while b runs: the execution stays running (failure noted) until b ends."""
    execution_id = run_async(create_execution("nightly", "event", {"stages": ["merge"]}))
    for shard in ("a", "b"):
        run_async(record_stage_start(execution_id, "merge", shard, 1, f"task-{shard}"))
    run_async(record_stage_end(execution_id, "merge", "a", 1, status="failed", duration_ms=1,
                               error_type="ValueError", error_message="boom", fails_execution="merge[a]: boom"))
    execution = run_async(get_execution(execution_id))
    assert (execution["status"], execution["failed_stage"]) == ("running", "merge")
    run_async(record_stage_end(execution_id, "merge", "b", 1, status="succeeded", duration_ms=1))
    execution = run_async(get_execution(execution_id))
    assert (execution["status"], execution["error"]) == ("failed", "merge[a]: boom")
    assert execution["finished_at"] is not None


def test_a_lost_task_closes_its_row_and_fails_the_execution(app_db: str) -> None:
    """A task that died where its end could not be recorded (time limit): its row fails, then the execution."""
    execution_id = run_async(create_execution("nightly", "event", {"stages": ["merge"]}))
    run_async(record_stage_start(execution_id, "merge", "a", 1, "task-a"))
    run_async(record_task_lost(execution_id, "task-a", "merge", "merge: TimeLimitExceeded: 1500 s"))
    assert stage_statuses(execution_id) == {("merge", "a", 1): "failed"}
    assert run_async(get_execution(execution_id))["status"] == "failed"


def test_a_cancelled_execution_stops_new_steps_and_stays_cancelled(app_db: str) -> None:
    """Cancel: running steps are counted, a later step stops at its start, a later failure changes nothing."""
    execution_id = run_async(create_execution("nightly", "event", {"stages": ["merge"]}))
    run_async(record_stage_start(execution_id, "merge", "a", 1, "task-a"))
    assert run_async(cancel_execution(execution_id, "wrong range")) == ("running", 1)
    assert run_async(record_stage_start(execution_id, "merge", "b", 1, "task-b")) == "cancelled"
    run_async(record_stage_end(execution_id, "merge", "a", 1, status="failed", duration_ms=1,
                               fails_execution="merge[a]: boom"))
    execution = run_async(get_execution(execution_id))
    assert (execution["status"], execution["error"], execution["failed_stage"]) == \
        ("cancelled", "cancelled: wrong range", None)
    assert stage_statuses(execution_id) == {("merge", "a", 1): "failed"}  # b never started
    assert run_async(cancel_execution(execution_id)) == ("cancelled", 0)  # finished: left as it is
