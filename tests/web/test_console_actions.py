"""An operator's actions through the console in-process, on the real MariaDB app database (and RabbitMQ for the
events they publish): replay, cancel, dead-letter replay and corrections succeed and are audited with via=web."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from shared.database.db import app_engine
from shared.database.tables import event_inbox, operator_actions, punch_corrections
from shared.events.bus import BRIDGE_QUEUE, DEAD_QUEUE, REASON_HEADER, event_channel
from shared.events.dead_letters import move_dead_letters
from shared.runtime.runner import run_async
from tests.conftest import require_service
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.scenarios import CHAIN, record
from tests.integration.stack_fixtures import app_rows, private_vhost
from tests.web.conftest import csrf_of, sign_in

pytestmark = pytest.mark.integration


def insert_rows(table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` into `table` of the app database."""
    async def insert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(table.insert(), rows)

    run_async(insert())


def actions_on(target: str) -> list[tuple[str, str, str]]:
    """(action, actor, via) of the operator_actions rows about `target`."""
    rows = app_rows(operator_actions, operator_actions.c.target == target)
    return [(a["action"], a["actor"], a["via"]) for a in rows]


@pytest.fixture
def event_plane(hrsync_env: SetEnv) -> Iterator[str]:
    """HRSYNC_EVENTS_URL on a private RabbitMQ virtual host."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    with private_vhost(f"hrsync-web-act-{uuid.uuid4().hex[:6]}") as url:
        hrsync_env(events_url=url)
        yield url


def test_operator_replays_from_the_plan_page(client: Any) -> None:
    """The replay page shows the dry-run plan; its confirm button launches the replay (a new execution,
    `replay_of` the failed one) and writes an operator action with via=web and the user's name."""
    failed = record(f"t{uuid.uuid4().hex[:8]}", status="failed", failed_stage="merge", stages=CHAIN)
    served = [f"ev-{failed[:8]}-{n}" for n in (1, 2)]  # two coalesced events served by the failed execution
    insert_rows(event_inbox, [{"event_id": e, "type": "hrsync.punches.imported", "source": "test", "status": "launched",
                               "execution_id": failed, "received_at": dt.datetime.now(dt.UTC)} for e in served])
    sign_in(client, "otto")
    plan = client.get(f"/executions/{failed}/replay")
    assert plan.status_code == 200
    assert "Dry run" in plan.text
    assert f"Serves 2 events: <span class=\"mono\">{served[0]}, {served[1]}</span>" in plan.text
    assert 'id="confirm-replay"' in plan.text
    assert actions_on(failed) == []  # the plan alone records nothing
    done = client.post(f"/executions/{failed}/replay", data={"csrf_token": csrf_of(plan.text), "from_stage": "",
                                                             "reason": "source fixed"})
    assert done.status_code == 303, done.text
    new_id = done.headers["location"].rsplit("/", 1)[1]
    shown = client.get(f"/api/executions/{new_id}").json()["execution"]
    assert (shown["replay_of"], shown["trigger"], shown["attempt"]) == (failed, "replay", 2)
    assert actions_on(failed) == [("replay", "otto", "web")]
    again = client.post(f"/api/executions/{failed}/replay", headers={"X-CSRF-Token": csrf_of(plan.text)},
                        json={"reason": "launch it"})
    assert again.status_code == 200  # its replay never started (no worker here): launched again, not a second one
    assert (again.json()["execution_id"], again.json()["relaunched"]) == (new_id, True)


def test_operator_cancels_a_running_execution(client: Any) -> None:
    """The cancel form ends a running execution as cancelled with the reason, audited via=web; the API's
    second cancel is refused with 409."""
    running = record(f"t{uuid.uuid4().hex[:8]}", status="running", stages=CHAIN[:2])
    sign_in(client, "otto")
    page = client.get(f"/executions/{running}")
    assert 'id="cancel"' in page.text
    assert "it holds 0 event(s)" in page.text  # the cancel form says how many events it holds
    done = client.post(f"/executions/{running}/cancel", data={"csrf_token": csrf_of(page.text), "reason": "wrong"})
    assert done.status_code == 303
    shown = client.get(f"/api/executions/{running}").json()["execution"]
    assert (shown["status"], shown["error"]) == ("cancelled", "cancelled: wrong")
    assert 'id="plan-replay"' in client.get(f"/executions/{running}").text  # a cancelled one is replayable
    assert actions_on(running) == [("cancel", "otto", "web")]
    token = client.get("/api/session").json()["csrf_token"]
    refused = client.post(f"/api/executions/{running}/cancel", headers={"X-CSRF-Token": token}, json={"reason": "x"})
    assert refused.status_code == 409
    assert "only a pending or running execution" in refused.json()["detail"]


def test_operator_replays_a_dead_letter(client: Any, event_plane: str) -> None:
    """A dead letter chosen on its page is republished to hrsync.events (it reaches the bridge queue) and
    is no longer listed; the action is audited via=web."""
    body = {"specversion": "1.0", "id": "dl-web-1", "source": "test/other", "type": "hrsync.sync.requested",
            "data": {"scope": "nightly"}}
    with event_channel(event_plane) as channel:
        channel.basic_publish("", DEAD_QUEUE, json.dumps(body).encode(), pika.BasicProperties(
            message_id="dl-web-1", content_type="application/cloudevents+json",
            headers={REASON_HEADER: "invalid: test"}))
    assert move_dead_letters(event_plane) == 1  # what the bridge does as it runs
    sign_in(client, "otto")
    page = client.get("/dead-letters")
    [letter] = [d for d in client.get("/api/dead-letters").json() if d["event_id"] == "dl-web-1"]
    assert f'value="{letter["id"]}"' in page.text
    done = client.post("/dead-letters/replay", data={"csrf_token": csrf_of(page.text), "ids": [letter["id"]],
                                                     "reason": "fixed upstream"})
    assert done.status_code == 200, done.text
    assert f'value="{letter["id"]}"' not in done.text  # no longer listed
    with event_channel(event_plane) as channel:
        method, _, republished = channel.basic_get(BRIDGE_QUEUE, auto_ack=True)
    assert method is not None
    assert json.loads(republished)["id"] == "dl-web-1"
    assert actions_on(letter["id"]) == [("dlq_replay", "otto", "web")]


def test_operator_adds_and_voids_a_punch(client: Any, staff: Staff, hrsync_env: SetEnv,
                                         event_plane: str) -> None:
    """A manual punch added on the employee's page, then voided, leaves two corrections and two audit rows
    with via=web, and publishes two recompute requests with the console as their source."""
    hrsync_env(timezone="UTC")
    staff.add(1)
    employee = staff.no(1)
    sign_in(client, "otto")
    page = client.get(f"/employees/{employee}?from=2026-06-01&to=2026-06-01")
    assert page.status_code == 200
    added = client.post(f"/employees/{employee}/punches", data={
        "csrf_token": csrf_of(page.text), "at": "2026-06-01T17:02", "reason": "forgot to badge out"})
    assert added.status_code == 303, added.text
    [punch] = client.get(f"/api/punches/{employee}?from=2026-06-01&to=2026-06-01").json()
    assert (punch["source"], punch["punched_at"]) == ("manual", dt.datetime(2026, 6, 1, 17, 2, tzinfo=dt.UTC)
                                                      .isoformat())
    page = client.get(added.headers["location"])
    voided = client.post(f"/punches/{punch['id']}/void", data={
        "csrf_token": csrf_of(page.text), "reason": "badge found", "employee_no": employee})
    assert voided.status_code == 303, voided.text
    assert sorted(actions_on(f"punch:{punch['id']}")) == [("punch.add", "otto", "web"), ("punch.void", "otto", "web")]
    corrections = app_rows(punch_corrections, punch_corrections.c.punch_id == punch["id"])
    assert sorted((c["action"], c["actor"], c["via"]) for c in corrections) == [("add", "otto", "web"),
                                                                                ("void", "otto", "web")]
    with event_channel(event_plane) as channel:
        sources = []
        while (got := channel.basic_get(BRIDGE_QUEUE, auto_ack=True))[0] is not None:
            sources.append(json.loads(got[2])["source"])
    assert sources == ["hrsync/web", "hrsync/web"]
