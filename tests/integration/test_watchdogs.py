"""The watchdogs (DESIGN §7) on the real MariaDB: a pending execution waiting too long, a running one
stuck, and a nightly past its deadline each make one alert, one ops mail (however many rounds run, also
at once), a metric and a row of `hrsync executions --late`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select

from pipelines.watchdogs import NIGHTLY_DEADLINE, PENDING_WAIT, STUCK_RUNNING, run_watchdogs
from shared.database.db import app_engine
from shared.database.tables import execution_stages, executions, notifications, schedule_runs, watchdog_alerts
from shared.events.coalesce import COALESCED
from shared.observability.metrics import InFlightCollector
from shared.records.executions import StepDeferred, cancel_execution, claim_execution, insert_execution
from shared.records.queries import get_execution
from shared.runtime.clock import utcnow
from shared.runtime.runner import run_async
from tests.conftest import set_env

pytestmark = pytest.mark.integration

HRSYNC = os.path.join(os.path.dirname(sys.executable), "hrsync")


@pytest.fixture
def ops_env(app_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ops address of this test (its mails are found by it); returns the address."""
    address = f"ops-{uuid.uuid4().hex[:8]}@example.test"
    set_env(monkeypatch, ops_email=address, pending_max_wait="900", task_time_limit="1500",
            nightly_deadline_minutes="180", timezone="Europe/Berlin", nightly_cron="0 2 * * *")
    return address


async def _insert(execution_id: str, kind: str, status: str, created_at: dt.datetime,
                  started_at: dt.datetime | None = None) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await insert_execution(conn, execution_id, kind=kind, trigger="event", params={"stages": ["merge"]},
                               created_at=created_at)
        await conn.execute(executions.update().where(executions.c.id == execution_id)
                           .values(status=status, started_at=started_at))


async def _rows(table: Any, *where: Any) -> list[dict[str, Any]]:
    engine = await app_engine()
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(table).where(*where))]


def mails_to(address: str) -> list[dict[str, Any]]:
    return run_async(_rows(notifications, notifications.c.recipient == address))


def late(app_db: str, *options: str) -> str:
    """`hrsync executions --late` (with `options`): its output."""
    env = {**os.environ, "HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}", "COLUMNS": "200"}
    result = subprocess.run([HRSYNC, "executions", "--late", *options], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def late_json(app_db: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(late(app_db, "--json"))
    return rows


def open_alert_gauge() -> dict[str, float]:
    return {sample.labels["alert"]: sample.value for family in InFlightCollector().collect()
            if family.name == "hrsync_watchdog_alerts" for sample in family.samples}


def test_a_pending_execution_waiting_too_long_is_alerted_once(app_db: str, ops_env: str) -> None:
    """A punches execution pending for 1,000 s (> HRSYNC_PENDING_MAX_WAIT 900 s): one alert and one ops
    mail, however many rounds run (two of them at once too); listed by `executions --late`, counted by
    the metric; cleared once it has started."""
    now = utcnow()
    waiting = str(uuid.uuid4())
    run_async(_insert(waiting, "wd-pending", "pending", now - dt.timedelta(seconds=1000)))
    fresh = str(uuid.uuid4())
    run_async(_insert(fresh, "wd-pending", "pending", now - dt.timedelta(seconds=800)))  # 800 s ≤ 900 s: not late

    async def two_rounds_at_once() -> list[Any]:
        return list(await asyncio.gather(run_watchdogs(now, [PENDING_WAIT]), run_watchdogs(now, [PENDING_WAIT])))

    first, second = run_async(two_rounds_at_once())
    again = run_async(run_watchdogs(now, [PENDING_WAIT]))
    assert [f.target for f in [*first, *second, *again] if f.target in (waiting, fresh)] == [waiting]
    [mail] = [m for m in mails_to(ops_env) if waiting in m["subject"]]
    assert mail["kind"] == "ops_alert"
    assert mail["status"] == "sent"
    assert waiting in mail["subject"]
    assert "no wd-pending execution is running" in mail["body_text"]
    assert not [m for m in mails_to(ops_env) if fresh in m["subject"]]
    [row] = [r for r in late_json(app_db) if r["target"] == waiting]
    assert (row["alert"], row["status"]) == ("pending_wait", "open")
    assert any(line.startswith("pending_wait") and waiting[:8] in line for line in late(app_db).splitlines())
    assert open_alert_gauge()["pending_wait"] >= 1
    run_async(cancel_execution(waiting, "test: it ended"))
    run_async(cancel_execution(fresh, "test over"))
    run_async(run_watchdogs(now, [PENDING_WAIT]))
    [row] = [r for r in late_json(app_db) if r["target"] == waiting]
    assert row["status"] == "cleared"


def test_a_stuck_running_execution_is_failed_alerted_and_releases_its_kind(app_db: str, ops_env: str) -> None:
    """A running punches execution whose last task ran 2,000 s ago (> HRSYNC_TASK_TIME_LIMIT 1,500 s), its
    step row still `running`: marked failed with the reason (replayable), its row closed, one ops mail; the
    pending punches execution behind it can then start."""
    now = utcnow()
    stuck = str(uuid.uuid4())
    long_ago = now - dt.timedelta(seconds=2000)
    run_async(_insert(stuck, "punches", "running", long_ago, started_at=long_ago))

    async def step_row() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(execution_stages.insert().values(
                execution_id=stuck, stage="merge", shard="day:x", attempt=1, task_id="lost", status="running",
                started_at=long_ago))

    run_async(step_row())
    waiting = str(uuid.uuid4())
    run_async(_insert(waiting, "punches", "pending", now - dt.timedelta(seconds=10)))
    with pytest.raises(StepDeferred):
        run_async(claim_execution(waiting, "wd-start", COALESCED))
    found = run_async(run_watchdogs(now, [STUCK_RUNNING]))
    assert [f.target for f in found if f.target == stuck] == [stuck]
    failed = run_async(get_execution(stuck)) or {}
    assert failed["status"] == "failed"
    assert "stuck: none of its tasks has run since" in failed["error"]
    [stage] = run_async(_rows(execution_stages, execution_stages.c.execution_id == stuck))
    assert stage["status"] == "failed"
    assert len([m for m in mails_to(ops_env) if stuck in m["subject"]]) == 1
    again = run_async(run_watchdogs(now, [STUCK_RUNNING]))
    assert stuck not in [f.target for f in again]
    assert len([m for m in mails_to(ops_env) if stuck in m["subject"]]) == 1
    assert run_async(claim_execution(waiting, "wd-start", COALESCED)) == "claimed"  # the kind is released
    run_async(cancel_execution(waiting, "test over"))
    from operations import executions as operations

    assert operations.plan_replay(stuck).stages == ["merge"]  # replayable


@pytest.fixture
def nightly_history(app_db: str) -> Iterator[dt.datetime]:
    """A nightly slot recorded by a scheduler long ago (so nightlies are expected from then on); removed
    afterwards, so no later test's worker expects nightlies."""
    first = dt.datetime(2030, 1, 1, 1, 0, tzinfo=dt.UTC)  # 02:00 Berlin (CET)

    async def write(present: bool) -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            if present:
                await conn.execute(schedule_runs.insert().values(
                    event_id="nightly:2030-01-01T01:00:00Z", job="nightly", fire_time=first, status="published",
                    attempts=1, published_at=first, updated_at=first))
            else:
                await conn.execute(delete(schedule_runs).where(schedule_runs.c.job == "nightly"))
                await conn.execute(delete(watchdog_alerts).where(watchdog_alerts.c.alert == NIGHTLY_DEADLINE))

    run_async(write(True))
    try:
        yield first
    finally:
        run_async(write(False))


def test_a_nightly_that_has_not_succeeded_by_its_deadline_is_alerted_once(
        app_db: str, ops_env: str, nightly_history: dt.datetime) -> None:
    """On 3 Jan 2030 at 05:30 UTC the nightly of 02:00 Berlin (01:00 UTC) has had its 180 minutes
    (deadline 04:00 UTC) and no nightly execution succeeded since: one alert naming that slot, one mail;
    at 03:30 UTC (before the deadline) the newest slot due is 2 Jan's."""
    before = run_async(run_watchdogs(dt.datetime(2030, 1, 3, 3, 30, tzinfo=dt.UTC), [NIGHTLY_DEADLINE]))
    # 03:30 - 180 min = 00:30 UTC on 3 Jan: the newest slot by then is 2 Jan 01:00 UTC
    assert [f.target for f in before] == ["nightly:2030-01-02T01:00:00Z"]
    late = run_async(run_watchdogs(dt.datetime(2030, 1, 3, 5, 30, tzinfo=dt.UTC), [NIGHTLY_DEADLINE]))
    assert [f.target for f in late] == ["nightly:2030-01-03T01:00:00Z"]
    assert "it never started" in late[0].detail
    assert run_async(run_watchdogs(dt.datetime(2030, 1, 3, 5, 31, tzinfo=dt.UTC), [NIGHTLY_DEADLINE])) == []
    subjects = [m["subject"] for m in mails_to(ops_env) if "nightly" in m["subject"]]
    assert subjects == ["hrsync: the nightly nightly:2030-01-02T01:00:00Z is late",
                        "hrsync: the nightly nightly:2030-01-03T01:00:00Z is late"]
    assert {r["target"] for r in late_json(app_db) if r["alert"] == "nightly_deadline"} >= {
        "nightly:2030-01-02T01:00:00Z", "nightly:2030-01-03T01:00:00Z"}
