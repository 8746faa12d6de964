"""`hrsync replay` names the events a failed execution served, on the whole running product: coalesced
punch events in one execution that fails at merge, its dry run (alone and with `--failed`) and its replay."""

from __future__ import annotations

import json

import pytest

from tests.integration.stack_fixtures import (
    MONDAY,
    Stack,
    at,
    hrsync,
    refused_attendance_of,
    replays_of,
    settle,
    stack_fixture,
    wait_admitted,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

stack = stack_fixture(extra_env={"HRSYNC_TASK_MAX_RETRIES": "1", "HRSYNC_RETRY_BACKOFF_SECONDS": "0.2"})


def test_replay_of_a_coalesced_execution_names_the_events_it_served(stack: Stack) -> None:
    """Two punch events served by one execution that fails: `replay --dry-run` (JSON and text), `replay
    --failed --dry-run` and the replay itself name both events."""
    hris = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})
    assert stack.wait_for_execution(hris)["status"] == "succeeded"  # the team is known to the merge
    assert stack.worker is not None
    stack.worker.stop()  # the events coalesce while no worker claims their execution
    events = [stack.publish_event("hrsync.punches.imported", {"from": at(MONDAY, start).isoformat(),
                                                               "to": at(MONDAY, end).isoformat()})
              for start, end in [("08:50", "08:56"), ("08:56", "09:00")]]  # M and FULL at 08:55, LONE at 08:58
    assert len({row["execution_id"] for row in wait_admitted(events)}) == 1
    with refused_attendance_of(stack.no("FULL")):
        stack.worker.start()
        failed = stack.wait_for_execution(events[0])
        settle(failed["id"])
    assert (failed["status"], failed["failed_stage"]) == ("failed", "merge"), failed

    dry = hrsync(stack, "replay", failed["id"], "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert sorted(plan["events"]) == sorted(events)
    assert plan["stages"][0] == "merge"
    text = hrsync(stack, "replay", failed["id"], "--dry-run")
    assert text.returncode == 0, text.stderr
    assert f"serves {len(events)} events: " in text.stdout
    assert all(event in text.stdout for event in events), text.stdout

    every = hrsync(stack, "replay", "--failed", "--dry-run", "--json")
    assert every.returncode == 0, every.stderr
    [outcome] = [o for o in json.loads(every.stdout) if o["replay_of"] == failed["id"]]
    assert sorted(outcome["plan"]["events"]) == sorted(events)
    assert replays_of(failed["id"]) == []  # the dry runs created nothing

    done = hrsync(stack, "replay", failed["id"], "--reason", "test", "--wait", "--timeout", "180")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"serves {len(events)} events: " in done.stdout
    assert all(event in done.stdout for event in events), done.stdout
    [replay] = replays_of(failed["id"])
    assert replay["status"] == "succeeded"
