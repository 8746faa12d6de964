"""One execution per kind through its exclusive stages only (docs/workflows.md "One running per kind"):
the next pending execution of a coalesced kind starts as soon as the one before it has built its outbox
(notify's `@plan`, the end of its hold), woken by that step rather than by its own wait, and runs while
the one before it still sends."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from shared.events.coalesce import COALESCED
from shared.events.inbox import admit_event
from shared.records.executions import (
    PARKED,
    cancel_execution,
    claim_execution,
    record_stage_end,
    record_stage_start,
)
from shared.records.queries import get_execution, get_stages
from shared.runtime.runner import run_async
from tests.conftest import wait_until
from tests.integration.stack_fixtures import MONDAY, TUESDAY, Stack, at, stack_fixture, wait_admitted
from workers.stage_task import DEFER_SECONDS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

stack = stack_fixture()


def punches(start: str, end: str) -> dict[str, Any]:
    return {"scope": "punches", "stages": ["merge", "notify"],
            "merge": {"window": {"from": start, "to": end}, "devices": [1], "employees": None}}


def window(day: dt.date, hhmm: str) -> dict[str, str]:
    start = at(day, hhmm)
    return {"from": start.isoformat(), "to": (start + dt.timedelta(minutes=5)).isoformat()}


def row(execution_id: str, stage: str, shard: str) -> dict[str, Any] | None:
    return next((r for r in run_async(get_stages(execution_id)) if (r["stage"], r["shard"]) == (stage, shard)), None)


@contextlib.contextmanager
def punches_locked(stack: Stack) -> Iterator[Any]:
    """`punches` and `unmatched_punches` write-locked from a connection of this test: a merge stops at its import
    (every window stores its punches there, matched or not; a window whose punches match nobody recomputes no
    day, so its merge may never touch `attendance_days`) until the lock is let go (the `release()` yielded, or
    the block's end)."""
    database = stack.env["HRSYNC_DATABASE_URL"].rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
    held = [True]

    def release() -> None:
        if held[0]:
            with conn.cursor() as cur:
                cur.execute("UNLOCK TABLES")
            held[0] = False

    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLES punches WRITE, unmatched_punches WRITE")
        yield release
    finally:
        release()
        conn.close()


def test_the_end_of_a_hold_wakes_the_next_start_at_once(stack: Stack) -> None:
    """A punches execution held in its merge (its punch tables locked) keeps the next one pending: that one's
    start parks its message on its `@start` row. When the first has built its outbox (notify `@plan`),
    that step sends a copy of the parked start: the second is claimed by the copy (not by its own message,
    which waits `DEFER_SECONDS` in the worker) within seconds of the first's end of hold."""
    with punches_locked(stack) as release:
        first_id = stack.publish_event("hrsync.punches.imported", window(MONDAY, "08:50"))
        [first] = wait_admitted([first_id])
        wait_until(lambda: (run_async(get_execution(first["execution_id"])) or {}).get("status") == "running",
                   "the first execution to run", timeout=60, every=0.1)
        second_id = stack.publish_event("hrsync.punches.imported", window(TUESDAY, "08:50"))
        [second] = wait_admitted([second_id])
        assert second["execution_id"] != first["execution_id"]  # the first was claimed: a new pending one
        parked = wait_until(lambda: ((row(second["execution_id"], "workflow", "@start") or {}).get("result") or {})
                            .get(PARKED), "the second start to park", timeout=60, every=0.1)
        assert (run_async(get_execution(second["execution_id"])) or {})["status"] == "pending"
        release()
    done = stack.wait_for_execution(second_id, timeout=90)
    assert done["status"] == "succeeded", done
    first_run = stack.wait_for_execution(first_id, timeout=90)
    assert first_run["status"] == "succeeded", first_run
    hold_end = (row(first["execution_id"], "notify", "@plan") or {})["finished_at"]
    start = row(second["execution_id"], "workflow", "@start") or {}
    claimer = (start.get("result") or {}).get("claimed_by")
    assert claimer is not None
    assert claimer != parked["options"]["task_id"], (claimer, parked["options"])  # a woken copy claimed it
    waited = (done["started_at"] - hold_end).total_seconds()
    assert 0 <= waited < DEFER_SECONDS / 2, (hold_end, done["started_at"])


def test_the_next_execution_runs_while_the_one_before_still_sends(stack: Stack) -> None:
    """A running punches execution past its outbox build (notify `@plan` succeeded, a send batch still
    running) no longer holds its kind: the next punches event's execution is claimed at once and succeeds
    while that one is still running (before, it waited for that one's end)."""
    before = run_async(admit_event(f"{stack.prefix}-sending", "test.punches", "test", b"{}", kind="punches",
                                   trigger="event", params=punches("2026-12-05T08:00:00+00:00",
                                                                   "2026-12-05T08:01:00+00:00")))
    assert run_async(claim_execution(before.execution_id, "sending-start", COALESCED)) == "claimed"
    steps = [("merge", "@done"), ("notify", "@plan")]
    for stage, shard in steps:
        run_async(record_stage_start(before.execution_id, stage, shard, 1, f"sending-{shard}"))
        run_async(record_stage_end(before.execution_id, stage, shard, 1, status="succeeded", duration_ms=1))
    run_async(record_stage_start(before.execution_id, "notify", "batch:1-1:1", 1, "sending-batch"))
    try:
        event_id = stack.publish_event("hrsync.punches.imported", window(MONDAY, "17:00"))
        after = stack.wait_for_execution(event_id, timeout=60)
        assert after["status"] == "succeeded", after
        assert after["id"] != before.execution_id
        assert (run_async(get_execution(before.execution_id)) or {})["status"] == "running"
    finally:
        run_async(record_stage_end(before.execution_id, "notify", "batch:1-1:1", 1, status="succeeded",
                                   duration_ms=1))
        run_async(cancel_execution(before.execution_id, "test over"))


def test_a_cancelled_execution_whose_start_was_parked_does_not_hold_its_kind(app_db: str) -> None:
    """A pending execution whose start waits (its `workflow/@start` row `running`, as a parked start leaves
    it) is cancelled: it ran no step, so the next execution of the kind is claimed at once (the parked
    start's row is not a step still running, DESIGN §7)."""
    first = run_async(admit_event("parked-1", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                  params=punches("2026-12-06T08:00:00+00:00", "2026-12-06T08:01:00+00:00")))
    assert run_async(claim_execution(first.execution_id, "parked-t1", COALESCED)) == "claimed"
    waiting = run_async(admit_event("parked-2", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                    params=punches("2026-12-06T09:00:00+00:00", "2026-12-06T09:01:00+00:00")))
    run_async(record_stage_start(waiting.execution_id, "workflow", "@start", 1, "parked-t2", opens=False))
    for execution_id in (waiting.execution_id, first.execution_id):
        run_async(cancel_execution(execution_id, "test: cancel a parked start"))
    after = run_async(admit_event("parked-3", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                  params=punches("2026-12-06T10:00:00+00:00", "2026-12-06T10:01:00+00:00")))
    assert run_async(claim_execution(after.execution_id, "parked-t3", COALESCED)) == "claimed"
    run_async(cancel_execution(after.execution_id, "test over"))
