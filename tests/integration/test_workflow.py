"""The whole product: events published with plain pika → bridge → Celery canvas on a gevent worker →
HRIS (PostgreSQL over ODBC), BioStar (MariaDB), app DB (MariaDB), mail (aiosmtpd). All real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pika
import pytest
from sqlalchemy import func, select

from pipelines.attendance.biostar import BiostarLog, create_demo_biostar
from shared.db import app_engine
from shared.event_bus import BRIDGE_QUEUE, DEAD_QUEUE, REASON_HEADER, event_channel
from shared.runner import run_async
from shared.tables import attendance_days, employees, execution_stages, executions
from shared.tracking import get_execution, get_stages
from tests.conftest import RABBITMQ_URL, REDIS_URL, require_service
from tests.integration.biostar_fixtures import biostar_db, hrsync_env  # noqa: F401 - fixtures
from tests.integration.hris_fixtures import PgHris, person, pg_hris  # noqa: F401 - fixtures
from tests.integration.smtp_fixtures import SmtpServer, smtp_server  # noqa: F401 - fixtures
from tests.integration.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZONE = "Europe/Berlin"
MONDAY, TUESDAY = date(2026, 11, 23), date(2026, 11, 24)
OPS = "ops@example.test"


def at(day: date, hhmm: str) -> datetime:
    """A Berlin wall-clock time on `day` as an aware UTC instant (CET is UTC+1 in November)."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours - 1, minutes, tzinfo=UTC)


class Stack:
    """The running bridge and worker, the addresses they use, and helpers to drive them."""

    def __init__(self, env: dict[str, str], smtp: SmtpServer, hris: PgHris, prefix: str) -> None:
        self.env, self.smtp, self.hris, self.prefix = env, smtp, hris, prefix

    def no(self, who: str) -> str:
        return f"{self.prefix}{who}"

    def publish(self, body: bytes, routing_key: str, message_id: str | None = None) -> None:
        """Publish as another system would: plain pika, confirms, mandatory, persistent."""
        connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish("hrsync.events", routing_key, body, pika.BasicProperties(
                content_type="application/cloudevents+json", delivery_mode=2, message_id=message_id),
                mandatory=True)
        finally:
            connection.close()

    def publish_event(self, event_type: str, data: dict[str, Any], event_id: str | None = None) -> str:
        event_id = event_id or f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        body = {"specversion": "1.0", "id": event_id, "source": "test/other-system", "type": event_type,
                "time": "2026-11-25T01:00:00Z", "datacontenttype": "application/json", "data": data}
        self.publish(json.dumps(body).encode(), event_type, event_id)
        return event_id

    def executions_of(self, event_id: str) -> list[dict[str, Any]]:
        async def query() -> list[dict[str, Any]]:
            engine = await app_engine()
            async with engine.connect() as conn:
                rows = await conn.execute(select(executions).where(executions.c.event_id == event_id))
                return [dict(r._mapping) for r in rows]

        return run_async(query())

    def wait_for_execution(self, event_id: str, timeout: float = 180) -> dict[str, Any]:
        """Poll until the event's execution has finished (succeeded or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.executions_of(event_id)
            if found and found[0]["status"] in ("succeeded", "failed"):
                return run_async(get_execution(found[0]["id"])) or {}
            time.sleep(0.3)
        raise AssertionError(f"execution of {event_id} did not finish: {self.executions_of(event_id)}")

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in self.smtp.handler.messages if address in m.rcpt_tos]


def start_bridge(env: dict[str, str]) -> subprocess.Popen[str]:
    hrsync = os.path.join(os.path.dirname(sys.executable), "hrsync")
    return subprocess.Popen([hrsync, "bridge"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def purge(*queues: str) -> None:
    with event_channel(RABBITMQ_URL) as channel:
        for queue in queues:
            channel.queue_purge(queue)


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,  # noqa: F811
          hrsync_env: Any) -> Iterator[Stack]:  # noqa: F811
    """HRIS rows, BioStar logs, a gevent worker and a bridge, all pointed at this test's databases."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"w{uuid.uuid4().hex[:6]}"
    env = {"HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}",
           "HRSYNC_BIOSTAR_URL": biostar_db, "HRSYNC_HRIS_ODBC": pg_hris.dsn,
           "HRSYNC_BROKER_URL": RABBITMQ_URL, "HRSYNC_RESULT_BACKEND": REDIS_URL,
           "HRSYNC_EVENTS_URL": RABBITMQ_URL, "HRSYNC_SMTP_URL": smtp_server.url(),
           "HRSYNC_MAIL_FROM": "hrsync@example.test", "HRSYNC_OPS_EMAIL": OPS, "HRSYNC_TIMEZONE": ZONE,
           "HRSYNC_LOG_FORMAT": "json"}
    hrsync_env(**{k.removeprefix("HRSYNC_").lower(): v for k, v in env.items()})
    rig = Stack(env, smtp_server, pg_hris, prefix)
    manager = rig.no("M")
    base = int(uuid.uuid4().int % 10**8) * 10  # BioStar user ids of this test: base+1 … base+9
    pg_hris.replace_rows([
        person(manager, department="Ops", biostar_user_id=base + 1, email="m@example.test"),
        person(rig.no("FULL"), department="Ops", manager_no=manager, biostar_user_id=base + 2,
               email="full@example.test"),
        person(rig.no("LONE"), department="Ops", manager_no=manager, biostar_user_id=base + 3,
               email="lone@example.test"),
        person(rig.no("NONE"), department="Sales", manager_no=manager, biostar_user_id=base + 4,
               email="none@example.test"),
    ])
    success = 0x1000  # main code 0x10: verify success
    logs = [BiostarLog(str(base + uid), 7, at(day, hhmm), success)
            for uid in (1, 2) for day in (MONDAY, TUESDAY) for hhmm in ("08:55", "17:05")]
    logs += [BiostarLog(str(base + 3), 7, at(MONDAY, "08:58"), success),
             BiostarLog(str(base + 3), 7, at(TUESDAY, "08:59"), success),
             BiostarLog(str(base + 3), 7, at(TUESDAY, "17:01"), success),
             BiostarLog(str(base + 3), 7, at(TUESDAY, "12:00"), 0x1100),  # a failed verify never counts
             BiostarLog(str(base + 9), 7, at(MONDAY, "09:00"), success)]  # nobody we know
    run_async(create_demo_biostar(biostar_db, logs))
    purge(BRIDGE_QUEUE, DEAD_QUEUE, "hrsync.extract", "hrsync.merge", "hrsync.notify", "hrsync.workflow")
    worker = WorkerProcess(env, ["hrsync.extract", "hrsync.merge", "hrsync.notify", "hrsync.workflow"]).start()
    bridge = start_bridge(env)
    bridge_output: list[str] = []
    reader = threading.Thread(target=lambda: bridge_output.extend(bridge.stdout or []), daemon=True)
    reader.start()
    try:
        yield rig
    finally:
        bridge.terminate()
        try:
            bridge_code = bridge.wait(30)
        finally:
            reader.join(5)
            if bridge.stdout:
                bridge.stdout.close()
        worker_code = worker.stop()
    assert bridge_code == 0, "".join(bridge_output)[-3000:]
    assert worker_code == 0, worker.text()[-3000:]


def count_rows(table: Any, *where: Any) -> int:
    async def query() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())

    return run_async(query())


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
    assert len(stack.mails_to("lone@example.test")) == 1  # one missing punch, one mail
    assert len(stack.mails_to("m@example.test")) == 2  # the manager's digest of each day
    stages = {s["stage"] for s in run_async(get_stages(execution["id"]))}
    assert stages == {"extract", "merge", "notify"}

    mails_before = len(stack.smtp.handler.messages)
    stack.publish_event("hrsync.sync.requested", {"scope": "nightly"}, event_id=event_id)  # same id again
    marker = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})
    stack.wait_for_execution(marker)  # the bridge has handled the duplicate before this one
    assert len(stack.executions_of(event_id)) == 1
    assert len(stack.smtp.handler.messages) == mails_before  # the hris-only run sends nothing


def attendance_rows(stack: Stack) -> list[dict[str, Any]]:
    async def query() -> list[dict[str, Any]]:
        engine = await app_engine()
        async with engine.connect() as conn:
            rows = await conn.execute(select(attendance_days)
                                      .where(attendance_days.c.employee_no.like(f"{stack.prefix}%")))
            return [dict(r._mapping) for r in rows]

    return run_async(query())


def read_dead_letters() -> dict[str, dict[str, Any]]:
    """message id → headers of every message in the dead-letter queue (acked: the queue is ours in tests)."""
    found: dict[str, dict[str, Any]] = {}
    with event_channel(RABBITMQ_URL) as channel:
        while True:
            method, properties, _ = channel.basic_get(DEAD_QUEUE, auto_ack=True)
            if method is None:
                return found
            found[str(properties.message_id)] = dict(properties.headers or {})


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
    dead = read_dead_letters()
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
    stages = run_async(get_stages(execution["id"]))
    assert {s["stage"] for s in stages} == {"extract", "notify_failure"}  # no merge, no notify
    failed = [s for s in stages if s["status"] == "failed"]
    assert failed
    assert failed[0]["error_type"] == "HrisSourceError"
    deadline = time.monotonic() + 30
    while not stack.mails_to(OPS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(stack.mails_to(OPS)) == 1


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
