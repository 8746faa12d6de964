"""Coalescing (DESIGN §5, docs/workflows.md "Coalesced executions"): punch and employee events join the
pending execution of their kind, each event id maps to exactly one execution, inputs fixed once it runs."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from typing import Any

import pytest

from shared.database.tables import event_inbox
from shared.events.bus import event_channel
from shared.events.coalesce import COALESCED
from shared.events.inbox import Arrival, admit_batch, admit_event
from shared.records.executions import (
    StepDeferred,
    cancel_execution,
    claim_execution,
    record_stage_end,
    record_stage_start,
)
from shared.records.queries import execution_details, get_execution, get_stages
from shared.runtime.runner import run_async
from tests.integration.stack_fixtures import MONDAY, Stack, app_rows, at, hrsync, stack_fixture, wait_admitted

pytestmark = pytest.mark.integration


def punches(start: str, end: str, devices: list[int]) -> dict[str, Any]:
    return {"scope": "punches", "stages": ["merge", "notify"],
            "merge": {"window": {"from": start, "to": end}, "devices": devices, "employees": None}}


def arrival(event_id: str, kind: str, params: dict[str, Any]) -> Arrival:
    return Arrival(event_id, f"test.{kind}", "test", b"{}", kind=kind, trigger="event", params=params)


def test_events_of_one_kind_join_the_pending_execution_until_it_is_claimed(app_db: str) -> None:
    """Two punch events in one batch and a third alone share one execution; after the claim a fourth opens
    the next one, and the claimed one's params no longer change."""
    first, second, third, fourth = (f"co-{n}" for n in range(4))
    a, b = run_async(admit_batch([arrival(first, "punches", punches("2026-12-01T08:00:00+00:00",
                                                                    "2026-12-01T08:01:00+00:00", [1])),
                                  arrival(second, "punches", punches("2026-12-01T08:30:00+00:00",
                                                                     "2026-12-01T08:31:00+00:00", [2]))]))
    assert (a.joined, b.joined, a.execution_id) == (False, True, b.execution_id)
    assert not b.launched  # the execution's canvas is not sent yet: the batch launches it once
    c = run_async(admit_event(third, "test.punches", "test", b"{}", kind="punches", trigger="event",
                              params=punches("2026-12-01T07:00:00+00:00", "2026-12-01T07:01:00+00:00", [1])))
    assert c.execution_id == a.execution_id
    assert run_async(claim_execution(a.execution_id, "task-1")) == "claimed"
    d = run_async(admit_event(fourth, "test.punches", "test", b"{}", kind="punches", trigger="event",
                              params=punches("2026-12-01T09:00:00+00:00", "2026-12-01T09:01:00+00:00", [3])))
    assert d.execution_id != a.execution_id
    assert not d.joined
    merge = (run_async(get_execution(a.execution_id)) or {})["params"]["merge"]
    # hull 07:00..08:31 over three windows; devices {1, 2}; the fourth event is not in it
    assert merge["window"] == {"from": "2026-12-01T07:00:00+00:00", "to": "2026-12-01T08:31:00+00:00"}
    assert [w["from"][11:16] for w in merge["windows"]] == ["07:00", "08:00", "08:30"]
    assert merge["devices"] == [1, 2]
    served = run_async(execution_details(a.execution_id))["events"]
    assert sorted(e["event_id"] for e in served) == [first, second, third]
    assert [r["execution_id"] for r in app_rows(event_inbox, event_inbox.c.event_id == fourth)] == [d.execution_id]
    # One punches execution runs at a time: the fourth's claim waits while the first runs.
    with pytest.raises(StepDeferred):
        run_async(claim_execution(d.execution_id, "task-2", COALESCED))
    assert (run_async(get_execution(d.execution_id)) or {})["status"] == "pending"
    run_async(cancel_execution(a.execution_id, "test over"))
    assert run_async(claim_execution(d.execution_id, "task-2", COALESCED)) == "claimed"
    # Leave no open punches execution in the session's database for a later test's events to join or wait for.
    run_async(cancel_execution(d.execution_id, "test over"))


def staff(*numbers: str) -> dict[str, Any]:
    """The params of an `employee.changed` naming `numbers`."""
    return {"scope": "employee", "stages": ["extract", "merge"], "fields": None,
            "extract": {"employees": list(numbers)},
            "merge": {"employees": list(numbers), "from": "2026-11-24", "to": "2026-11-30"}}


def test_an_event_a_full_pending_execution_cannot_take_joins_the_next_pending_one(app_db: str) -> None:
    """A pending employee execution holding the bound (5,000 people) takes no one more: the first
    newcomer opens a second pending execution, and a newcomer in a later batch joins that one."""
    def admit(event_id: str, *numbers: str) -> str:
        return run_async(admit_event(event_id, "test.employee", "test", b"{}", kind="employee", trigger="event",
                                     params=staff(*numbers))).execution_id

    full = admit("full-1", *(f"F{n:04d}" for n in range(5000)))
    second = admit("full-2", "X1")
    assert second != full
    assert admit("full-3", "X2") == second
    assert (run_async(get_execution(second)) or {})["params"]["merge"]["employees"] == ["X1", "X2"]
    for execution_id in (full, second):
        run_async(cancel_execution(execution_id, "test over"))


def test_a_pending_execution_that_fills_up_inside_a_batch_keeps_the_events_it_took(app_db: str) -> None:
    """A pending execution of 4,999 people; one batch: P1 joins it (5,000, the bound), P2 cannot and opens
    a second one, P3 joins that. The first keeps P1 (its grown params are written although the batch's
    newest pending execution is the second), the second holds P2 and P3."""
    full = run_async(admit_event("fill-0", "test.employee", "test", b"{}", kind="employee", trigger="event",
                                 params=staff(*(f"F{n:04d}" for n in range(4999))))).execution_id
    p1, p2, p3 = run_async(admit_batch([arrival(f"fill-{n}", "employee", staff(f"P{n}")) for n in (1, 2, 3)]))
    assert (p1.execution_id, p2.execution_id == full, p3.execution_id) == (full, False, p2.execution_id)
    employees = (run_async(get_execution(full)) or {})["params"]["merge"]["employees"]
    assert (len(employees), "P1" in employees) == (5000, True)
    assert (run_async(get_execution(p2.execution_id)) or {})["params"]["merge"]["employees"] == ["P2", "P3"]
    for execution_id in (full, p2.execution_id):
        run_async(cancel_execution(execution_id, "test over"))


def test_a_redelivered_window_returns_the_former_executions_and_admits_its_new_ids_once(app_db: str) -> None:
    """A window holding ids admitted by an earlier batch (a redelivery after a crash before the ack) and new
    ones: the known ids come back as duplicates of their execution, the new one joins the pending execution
    once, and the batch's first attempt (every id taken as new, refused by the inbox's key) leaves nothing
    behind: one execution, three inbox rows, three events and three people in its params."""
    def window(*numbers: int) -> list[Arrival]:
        return [arrival(f"re-{n}", "employee", staff(f"R{n}")) for n in numbers]

    r1, r2 = run_async(admit_batch(window(1, 2)))
    again = run_async(admit_batch(window(2, 3, 1)))
    assert [(a.execution_id, a.duplicate, a.joined) for a in again] == [
        (r2.execution_id, True, False), (r1.execution_id, False, True), (r1.execution_id, True, False)]
    params = (run_async(get_execution(r1.execution_id)) or {})["params"]
    assert (params["events"], params["merge"]["employees"]) == (3, ["R1", "R2", "R3"])
    rows = app_rows(event_inbox, event_inbox.c.event_id.in_(["re-1", "re-2", "re-3"]))
    assert sorted((r["event_id"], r["execution_id"]) for r in rows) == [
        (f"re-{n}", r1.execution_id) for n in (1, 2, 3)]
    run_async(cancel_execution(r1.execution_id, "test over"))


def test_one_running_per_kind_holds_other_kinds_and_sync_requests_apart(app_db: str) -> None:
    """A running employee execution holds back the next employee execution only: a punches one and two
    sync requests are claimed beside it."""
    people = staff("E1")
    first = run_async(admit_event("one-1", "test.employee", "test", b"{}", kind="employee", trigger="event",
                                  params=people)).execution_id
    assert run_async(claim_execution(first, "t-1", COALESCED)) == "claimed"
    second = run_async(admit_event("one-2", "test.employee", "test", b"{}", kind="employee", trigger="event",
                                   params=people)).execution_id
    punch = run_async(admit_event("one-3", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                  params=punches("2026-12-01T08:00:00+00:00", "2026-12-01T08:01:00+00:00",
                                                 [1]))).execution_id
    sync = {"scope": "hris", "stages": ["extract"]}
    one, two = (a.execution_id for a in run_async(admit_batch([arrival("one-4", "hris", sync),
                                                               arrival("one-5", "hris", sync)])))
    with pytest.raises(StepDeferred):
        run_async(claim_execution(second, "t-2", COALESCED))
    assert [run_async(claim_execution(e, f"t-{e}", COALESCED)) for e in (punch, one, two)] == ["claimed"] * 3
    for execution_id in (first, punch, one, two):
        run_async(cancel_execution(execution_id, "test over"))
    assert run_async(claim_execution(second, "t-2", COALESCED)) == "claimed"
    run_async(cancel_execution(second, "test over"))


def test_sync_requests_are_never_merged_and_a_repeated_id_is_one_event(app_db: str) -> None:
    """Two sync requests make two executions; the same id twice in one batch is admitted once."""
    sync = {"scope": "hris", "stages": ["extract"]}
    one, two, again = run_async(admit_batch([arrival("s-1", "hris", sync), arrival("s-2", "hris", sync),
                                             arrival("s-1", "hris", sync)]))
    assert one.execution_id != two.execution_id
    assert (again.execution_id, again.duplicate, again.launched) == (one.execution_id, True, True)
    assert len(app_rows(event_inbox, event_inbox.c.event_id.in_(["s-1", "s-2"]))) == 2


stack = stack_fixture()


@pytest.mark.slow
def test_punch_events_published_while_no_worker_runs_are_served_by_one_execution(stack: Stack) -> None:
    """Three `punches.imported` admitted while the worker is stopped join one execution, which then runs
    once; `show` lists the three events."""
    assert stack.worker is not None
    stack.worker.stop()
    windows = [("08:50", "08:56"), ("08:56", "09:00"), ("17:00", "17:10")]
    ids = [stack.publish_event("hrsync.punches.imported", {"from": at(MONDAY, start).isoformat(),
                                                            "to": at(MONDAY, end).isoformat()})
           for start, end in windows]
    rows = wait_admitted(ids)
    assert len({r["execution_id"] for r in rows}) == 1
    stack.worker.start()
    execution = stack.wait_for_execution(ids[0])
    assert execution["status"] == "succeeded"
    assert execution["params"]["events"] == 3
    shown = json.loads(hrsync(stack, "show", execution["id"], "--json").stdout)
    assert sorted(e["event_id"] for e in shown["events"]) == sorted(ids)


@pytest.mark.slow
def test_punch_events_in_a_stream_run_one_execution_at_a_time(stack: Stack) -> None:
    """Punch events published faster than an execution runs: each execution of the kind starts only
    after the one before it ended its hold on the kind (notify's `@plan`, the outbox build: the sends may
    still run beside the next one), and every event is served by one of them."""
    ids = []
    for minute in range(12):
        start = at(MONDAY, f"10:{minute:02d}")
        end = start + dt.timedelta(minutes=1)
        ids.append(stack.publish_event("hrsync.punches.imported", {"from": start.isoformat(), "to": end.isoformat()}))
        time.sleep(0.05)
    served = {r["execution_id"] for r in wait_admitted(ids)}
    deadline = time.monotonic() + 120
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [run_async(get_execution(e)) or {} for e in served]
        if all(r["status"] in ("succeeded", "failed") for r in runs):
            break
        time.sleep(0.3)
    assert [r["status"] for r in runs] == ["succeeded"] * len(runs), runs
    assert len(runs) >= 2  # the first started at once with the first event(s); later ones waited for it
    runs.sort(key=lambda r: r["started_at"])
    for before, after in itertools.pairwise(runs):
        [hold_end] = [r["finished_at"] for r in run_async(get_stages(before["id"]))
                      if (r["stage"], r["shard"], r["status"]) == ("notify", "@plan", "succeeded")]
        assert after["started_at"] >= hold_end, (before, after)
    assert sum(int(r["params"]["events"]) for r in runs) == len(ids)


def test_a_cancelled_execution_whose_step_still_runs_keeps_its_kind_busy(app_db: str) -> None:
    """Cancelling a running punches execution while one of its steps runs does not let the next one of the
    kind start beside it: the claim waits until that step has ended (DESIGN §7)."""
    first = run_async(admit_event("busy-1", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                  params=punches("2026-12-02T08:00:00+00:00", "2026-12-02T08:01:00+00:00", [1])))
    assert run_async(claim_execution(first.execution_id, "busy-t1", COALESCED)) == "claimed"
    run_async(record_stage_start(first.execution_id, "merge", "day:x", 1, "busy-step"))
    second = run_async(admit_event("busy-2", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                   params=punches("2026-12-02T09:00:00+00:00", "2026-12-02T09:01:00+00:00", [1])))
    assert second.execution_id != first.execution_id
    run_async(cancel_execution(first.execution_id, "test: cancel while a step runs"))
    with pytest.raises(StepDeferred, match="still runs a step"):
        run_async(claim_execution(second.execution_id, "busy-t2", COALESCED))
    run_async(record_stage_end(first.execution_id, "merge", "day:x", 1, status="succeeded", duration_ms=1))
    assert run_async(claim_execution(second.execution_id, "busy-t2", COALESCED)) == "claimed"
    run_async(cancel_execution(second.execution_id, "test over"))


def test_pending_executions_of_a_kind_start_oldest_first(app_db: str) -> None:
    """Two pending punches executions (windows too far apart to share one): the newer one's claim waits
    while the older one is pending; once the older one has started and ended, the newer one starts."""
    older = run_async(admit_event("order-1", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                  params=punches("2026-10-01T08:00:00+00:00", "2026-10-01T08:01:00+00:00", [1])))
    newer = run_async(admit_event("order-2", "test.punches", "test", b"{}", kind="punches", trigger="event",
                                  params=punches("2026-12-20T08:00:00+00:00", "2026-12-20T08:01:00+00:00", [1])))
    assert newer.execution_id != older.execution_id  # 80 days apart: over the 31-day window bound
    with pytest.raises(StepDeferred, match="older pending"):
        run_async(claim_execution(newer.execution_id, "order-t2", COALESCED))
    assert run_async(claim_execution(older.execution_id, "order-t1", COALESCED)) == "claimed"
    run_async(cancel_execution(older.execution_id, "test over"))
    assert run_async(claim_execution(newer.execution_id, "order-t2", COALESCED)) == "claimed"
    run_async(cancel_execution(newer.execution_id, "test over"))


def test_a_cancelled_coalesced_execution_keeps_its_events_for_its_replay(app_db: str) -> None:
    """Cancelling a pending execution that three events joined: the dry run says it holds 3 events and
    changes nothing; after the cancel, the replay's dry run serves the same 3 events (none is lost)."""
    from operations import executions as operations

    ids = ["keep-1", "keep-2", "keep-3"]
    admitted = run_async(admit_batch([arrival(event_id, "punches", punches(
        f"2026-12-03T0{n}:00:00+00:00", f"2026-12-03T0{n}:01:00+00:00", [1])) for n, event_id in enumerate(ids)]))
    execution_id = admitted[0].execution_id
    assert {a.execution_id for a in admitted} == {execution_id}
    dry = operations.plan_cancel(execution_id)
    assert (dry.events, dry.dry_run, dry.previous_status) == (3, True, "pending")
    assert (run_async(get_execution(execution_id)) or {})["status"] == "pending"
    done = operations.cancel(execution_id, "test: a cancelled execution keeps its events", actor="test", via="cli")
    assert (done.events, done.previous_status) == (3, "pending")
    plan = operations.plan_replay(execution_id)
    assert sorted(plan.events) == ids
    assert plan.stages == ["merge", "notify"]


@pytest.mark.slow
def test_a_deferred_start_does_not_go_through_the_delayed_delivery_exchange(stack: Stack) -> None:
    """With the broker's delayed-delivery exchange gone (as right after a restart, before it is declared
    again), a punches execution whose start waits behind a running one of its kind still starts within
    seconds of that one ending: a deferral is not a countdown through `celery_delayed_delivery`."""
    blocker = run_async(admit_event(f"{stack.prefix}-blocker", "test.punches", "test", b"{}", kind="punches",
                                    trigger="event", params=punches("2026-12-04T08:00:00+00:00",
                                                                     "2026-12-04T08:01:00+00:00", [1])))
    assert run_async(claim_execution(blocker.execution_id, "blocker-start", COALESCED)) == "claimed"
    with event_channel(stack.amqp_url) as channel:
        channel.exchange_delete("celery_delayed_delivery")
    start = at(MONDAY, "11:00")
    event_id = stack.publish_event("hrsync.punches.imported", {"from": start.isoformat(),
                                                              "to": (start + dt.timedelta(minutes=1)).isoformat()})
    [row] = wait_admitted([event_id])
    time.sleep(3)  # its start has been deferred a few times by now
    assert (run_async(get_execution(row["execution_id"])) or {})["status"] == "pending"
    run_async(cancel_execution(blocker.execution_id, "test: the running one ends"))
    ended = time.monotonic()
    execution = stack.wait_for_execution(event_id, timeout=60)
    assert execution["status"] == "succeeded", execution
    assert time.monotonic() - ended < 20
