"""A small execution stays small, on the real stack: a lone shard runs inline in its planner's task, and a
punch event recomputes only the (employee, day) pairs its taps touch."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from pipelines.merge.stage import PLAN_DAYS, PUNCHES
from shared.records.queries import get_stages
from shared.records.shards import ShardKind
from shared.runtime.runner import run_async
from tests.integration.stack_fixtures import MONDAY, Stack, at, attendance_rows, stack_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

stack = stack_fixture()


def punch_event(stack: Stack, start: str, end: str) -> dict[str, Any]:
    """Publish a `punches.imported` of Monday `start`..`end` and wait for its execution."""
    event_id = stack.publish_event("hrsync.punches.imported", {"from": at(MONDAY, start).isoformat(),
                                                               "to": at(MONDAY, end).isoformat()})
    return stack.wait_for_execution(event_id)


def test_a_one_punch_event_runs_inline_and_recomputes_only_its_employee(stack: Stack) -> None:
    """A later one-punch window: its import and day shards run in their planners' tasks, and its day shard
    names only the employee who punched (the overlap's taps were stored by the earlier event)."""
    assert stack.wait_for_execution(stack.publish_event("hrsync.sync.requested", {"scope": "hris"}))[
        "status"] == "succeeded"
    assert punch_event(stack, "08:50", "08:57")["status"] == "succeeded"  # M and FULL at 08:55
    execution = punch_event(stack, "08:57", "08:59")  # LONE at 08:58; 08:55 is in the overlap, stored before
    assert execution["status"] == "succeeded", execution
    rows = [r for r in run_async(get_stages(execution["id"])) if r["stage"] == "merge"]
    tasks_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        tasks_of[row["shard"]].add(row["task_id"])
    work = [r["shard"] for r in rows if not r["shard"].startswith("@")]
    assert len(work) == 2  # one import window, one day shard
    # every step of the stage ran in one of its two planners' tasks: no chord, no shard task
    assert set().union(*tasks_of.values()) == tasks_of[ShardKind.PLAN] | tasks_of[PLAN_DAYS]
    days_plan = next(r["result"] for r in rows if r["shard"] == PLAN_DAYS)
    assert [s["employees"] for s in days_plan["shards"]] == [[stack.no("LONE")]]
    statuses = {(r["employee_no"], r["work_date"]): r["status"] for r in attendance_rows(stack)}
    assert statuses[(stack.no("LONE"), MONDAY)] == "missing_punch"  # one tap (08:58) that day


def test_a_one_person_employee_change_imports_their_logs_in_one_inline_window(stack: Stack) -> None:
    """`employee.changed` of one person: merge imports the 7 recent days as one window of that person's
    logs, run in the planner's task (no chord of day-long windows)."""
    execution = stack.wait_for_execution(stack.publish_event("hrsync.employee.changed",
                                                             {"employee_no": stack.no("LONE")}))
    assert execution["status"] == "succeeded", execution
    rows = [r for r in run_async(get_stages(execution["id"])) if r["stage"] == "merge"]
    imports = [r for r in rows if r["shard"].startswith(PUNCHES.prefix)]
    assert len(imports) == 1  # 7 days: one window, not 7
    planners = {r["task_id"] for r in rows if r["shard"] in (ShardKind.PLAN, PLAN_DAYS)}
    assert {r["task_id"] for r in rows} <= planners  # every merge step ran in a planner's task
