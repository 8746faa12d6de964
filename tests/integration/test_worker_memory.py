"""A gevent worker keeps no trace of the chords it ran: one result backend, no pending results, no result
drainer greenlets, however many executions fanned out (the soak's linear RSS growth; docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from shared.records.queries import get_stages
from shared.runtime.runner import run_async
from tests.integration.stack_fixtures import Stack, stack_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

stack = stack_fixture()
EXECUTIONS = 8


def worker_memory(stack: Stack) -> dict[str, Any]:
    """The worker's `hrsync_memory` report (workers/lifecycle.py), asked over the stack's broker."""
    control = Celery("test-worker-memory", broker=stack.env["HRSYNC_BROKER_URL"])
    try:
        replies = control.control.broadcast("hrsync_memory", reply=True, timeout=20, arguments={"top": 3})
    finally:
        control.close()
    assert len(replies) == 1, replies
    return dict(next(iter(replies[0].values())))


def hris_sync(stack: Stack) -> dict[str, Any]:
    execution = stack.wait_for_execution(stack.publish_event("hrsync.sync.requested", {"scope": "hris"}))
    assert execution["status"] == "succeeded", execution
    return execution


def test_chord_executions_leave_no_backend_drainer_or_pending_result_behind(stack: Stack) -> None:
    """`sync.requested {scope: hris}` with absences on (the default) fans its extract out to two shard tasks,
    a chord. Before the fix every such execution left a Redis result backend, its drainer greenlet (which
    never ends) and its Redis connections in the worker: after 8 executions 8 more backends and drainers."""
    first = hris_sync(stack)
    extract = [r for r in run_async(get_stages(first["id"])) if r["stage"] == "extract"]
    shard_tasks = {r["task_id"] for r in extract if not r["shard"].startswith("@")}
    assert len(shard_tasks) == 2, extract  # a chord: each shard in a task of its own
    before = worker_memory(stack)
    for _ in range(EXECUTIONS):
        hris_sync(stack)
    after = worker_memory(stack)
    assert after["backends"] <= 1, (before, after)
    assert after["drainers"] == 0, (before, after)
    assert after["pending_results"] == 0, (before, after)
    assert after["subscribed"] == 0, (before, after)
    assert after["greenlets"] <= before["greenlets"] + 2, (before, after)  # the idle pool's, not one per chord
