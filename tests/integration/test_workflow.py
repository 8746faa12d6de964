"""The whole product: events published with plain pika → bridge → Celery canvas on a gevent worker →
HRIS (PostgreSQL over ODBC), BioStar (MariaDB), app DB (MariaDB), mail (aiosmtpd). All real."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pipelines.plans import request_for
from shared.config.settings import get_settings
from shared.database.tables import employees, execution_stages
from shared.events.bus import REASON_HEADER
from shared.events.inbox import admit_event
from shared.events.models import parse_event
from shared.records.queries import get_stages
from shared.runtime.runner import run_async
from tests.integration.hris_fixtures import PgHris
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.stack_fixtures import (
    MONDAY,
    TUESDAY,
    Stack,
    attendance_rows,
    count_rows,
    event_body,
    read_dead_letters,
    running_stack,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
          hrsync_env: Any) -> Iterator[Stack]:
    """HRIS rows, BioStar logs, a gevent worker and a bridge, all pointed at this test's databases."""
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env) as rig:
        yield rig


def test_nightly_sync_event_runs_the_three_stages_once(stack: Stack) -> None:
    """A sync request from another system: employees, attendance and mails land once; a duplicate id is ignored."""
    event_id = stack.publish_event("hrsync.sync.requested", {"scope": "nightly", "from": str(MONDAY),
                                                             "to": str(TUESDAY)})
    execution = stack.wait_for_execution(event_id)
    assert execution["status"] == "succeeded", execution
    assert execution["trigger"] == "event"
    assert set(execution["summary"]) == {"extract", "merge", "notify"}
    assert count_rows(employees, employees.c.employee_no.like(f"{stack.prefix}%")) == 4
    statuses = {(r["employee_no"], r["work_date"]): r["status"] for r in attendance_rows(stack)}
    assert statuses[(stack.no("FULL"), MONDAY)] == "present"
    assert statuses[(stack.no("LONE"), MONDAY)] == "missing_punch"
    assert statuses[(stack.no("LONE"), TUESDAY)] == "present"
    assert statuses[(stack.no("NONE"), TUESDAY)] == "absent"
    assert execution["summary"]["merge"]["imported"]["unmatched"] >= 1
    assert len(stack.mails_to(stack.address("lone"))) == 1  # one missing punch, one mail
    assert len(stack.mails_to(stack.address("m"))) == 2  # the manager's digest of each day
    stages = {s["stage"] for s in run_async(get_stages(execution["id"]))}
    assert stages == {"workflow", "extract", "merge", "notify"}  # workflow: the claim and the finish

    mails_before = len(stack.smtp.handler.messages)
    stack.publish_event("hrsync.sync.requested", {"scope": "nightly"}, event_id=event_id)  # same id again
    marker = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})
    stack.wait_for_execution(marker)  # the bridge has handled the duplicate before this one
    assert len(stack.executions_of(event_id)) == 1
    assert len(stack.smtp.handler.messages) == mails_before  # the hris-only run sends nothing


@pytest.mark.parametrize("case", ["not-json", "unknown-type", "bad-field", "oversize"])
def test_invalid_events_are_dead_lettered_with_a_reason(stack: Stack, case: str) -> None:
    """Each kind of bad event lands in the dead-letter queue with its reason; the bridge keeps consuming."""
    message_id = f"{stack.prefix}-{case}"
    good = {"specversion": "1.0", "id": message_id, "source": "x", "type": "hrsync.sync.requested",
            "data": {"scope": "hris"}}
    body = {
        "not-json": b"{this is not json",
        "unknown-type": json.dumps({**good, "type": "hrsync.unknown.thing"}).encode(),
        "bad-field": json.dumps({**good, "data": {"scope": "weekly"}}).encode(),
        "oversize": json.dumps({**good, "data": {"scope": "hris", "pad": "x" * 300_000}}).encode(),
    }[case]
    stack.publish(body, "hrsync.sync.requested", message_id)
    after = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})
    assert stack.wait_for_execution(after)["status"] == "succeeded"  # still consuming, in order
    dead: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while message_id not in dead and time.monotonic() < deadline:  # the bridge moves it into the table
        dead.update(read_dead_letters(stack.amqp_url))
        time.sleep(0.2)
    assert message_id in dead, dead
    reason = str(dead[message_id][REASON_HEADER])
    expected = {"not-json": "not JSON", "unknown-type": "unknown type", "bad-field": "data.scope",
                "oversize": "too large"}[case]
    assert expected in reason
    assert stack.executions_of(message_id) == []


def test_a_failing_stage_fails_the_execution_and_stops_the_chain(stack: Stack) -> None:
    """Extract failing for good: execution failed at extract, merge and notify never run, ops is told."""
    stack.hris.execute("ALTER VIEW hrsync_employees RENAME TO hrsync_employees_gone")
    try:
        event_id = stack.publish_event("hrsync.sync.requested", {"scope": "nightly", "from": str(MONDAY),
                                                                 "to": str(MONDAY)})
        execution = stack.wait_for_execution(event_id)
    finally:
        stack.hris.execute("ALTER VIEW hrsync_employees_gone RENAME TO hrsync_employees")
    assert execution["status"] == "failed"
    assert execution["failed_stage"] == "extract"
    # The failure notice is sent once the execution is failed (it follows the chain, it is not part of it):
    # wait for its mail, which its stage row precedes, before reading the stages.
    deadline = time.monotonic() + 30
    while not stack.mails_to(stack.ops) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(stack.mails_to(stack.ops)) == 1
    stages = run_async(get_stages(execution["id"]))
    assert {s["stage"] for s in stages} == {"workflow", "extract", "notify_failure"}  # no merge, notify, finish
    assert {s["shard"] for s in stages if s["stage"] == "workflow"} == {"@start"}
    failed = [s for s in stages if s["status"] == "failed"]
    assert failed
    assert failed[0]["error_type"] == "HrisSourceError"


def test_merge_shards_overlap_in_time_on_the_gevent_pool(stack: Stack) -> None:
    """The import windows of a chord run at the same time on one gevent worker."""
    event_id = stack.publish_event("hrsync.sync.requested", {"scope": "attendance", "from": "2026-11-02",
                                                             "to": str(TUESDAY), "notify": False})
    execution = stack.wait_for_execution(event_id)
    assert execution["status"] == "succeeded", execution
    rows = run_async(get_stages(execution["id"]))
    imports = [r for r in rows if r["shard"].startswith("punches:")]
    assert len(imports) >= 10
    edges = sorted([(r["started_at"], 1) for r in imports] + [(r["finished_at"], -1) for r in imports])
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    assert best >= 2, "no two import shards ran at the same time"
    assert count_rows(execution_stages, execution_stages.c.execution_id == execution["id"],
                      execution_stages.c.status != "succeeded") == 0


def test_cli_sync_wait_and_publish(stack: Stack) -> None:
    """`hrsync sync --wait` follows its execution to success (exit 0); `hrsync publish` is admitted once."""
    hrsync = os.path.join(os.path.dirname(sys.executable), "hrsync")
    env = {**os.environ, **stack.env}
    done = subprocess.run([hrsync, "sync", "--scope", "hris", "--wait", "--timeout", "120"], env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout
    event_id = f"{stack.prefix}-cli"
    for _ in range(2):
        published = subprocess.run([hrsync, "publish", "hrsync.sync.requested", "--data", '{"scope": "hris"}',
                                    "--id", event_id], env=env, capture_output=True, text=True, timeout=60,
                                   check=False)
        assert published.returncode == 0, published.stderr
    assert stack.wait_for_execution(event_id)["trigger"] == "manual"
    assert len(stack.executions_of(event_id)) == 1



def test_an_event_admitted_but_never_launched_runs_once_on_redelivery(stack: Stack) -> None:
    """A bridge that died after its inbox commit, before launching: the redelivered event runs once."""
    event_id = f"{stack.prefix}-crashed"
    body = json.dumps(event_body("hrsync.sync.requested", {"scope": "hris"}, event_id)).encode()
    event = parse_event(body)
    request = request_for(event, dt.datetime.now(dt.UTC), get_settings().zone)
    admitted = run_async(admit_event(event.id, event.type, event.envelope.source, body, kind=request.kind,
                                     trigger=request.trigger, params=request.params))  # the step before the crash
    stack.publish(body, "hrsync.sync.requested", event_id)  # the broker redelivers the unacked message
    execution = stack.wait_for_execution(event_id)
    assert execution["id"] == admitted.execution_id
    assert execution["status"] == "succeeded"
    assert len(stack.executions_of(event_id)) == 1
