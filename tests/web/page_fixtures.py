"""Recorded data for the console's page tests: a succeeded execution with a summary and the events it served,
a failed one, and a department's day board."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from shared.database.db import app_engine
from shared.database.tables import attendance_days, event_inbox, executions
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import Staff

# What a nightly's `finish` folds from its stages' `@done` outputs (the shape a real run leaves).
SUMMARY = {
    "extract": {"read": 251, "inserted": 240, "updated": 11, "unchanged": 0, "rejected_count": 0, "shards": 1},
    "merge": {"imported": {"logs": 10167, "punches": 10144, "unmatched": 23},
              "by_status": {"present": 4605, "absent": 56, "off": 1887}, "dates": {"from": "2026-11-09",
                                                                                  "to": "2026-12-06"}},
    "notify": {"sent": 400, "failed": 2, "deferred": 0},
}
PARAMS = {"scope": "nightly", "stages": ["extract", "merge", "notify"],
          "extract": {"full": False, "employees": None, "source": "hris"},
          "merge": {"from": "2026-11-09", "to": "2026-12-06", "employees": None}}


def insert(table: Any, rows: list[dict[str, Any]]) -> None:
    async def write() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(table.insert(), rows)

    run_async(write())


def delete(table: Any, *where: Any) -> None:
    async def remove() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(table.delete().where(*where))

    run_async(remove())


def record_succeeded(kind: str, events: int = 3) -> str:
    """A succeeded execution of `kind` (12.5 s, the SUMMARY above) serving `events` events; its id."""
    execution_id = str(uuid.uuid4())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    insert(executions, [{"id": execution_id, "kind": kind, "trigger": "event", "attempt": 1, "status": "succeeded",
                         "params": PARAMS, "summary": SUMMARY, "created_at": start, "started_at": start,
                         "finished_at": start + dt.timedelta(seconds=12.5)}])
    insert(event_inbox, [{"event_id": f"ev-{execution_id[:8]}-{n}", "type": "hrsync.sync.requested",
                          "source": "test", "status": "launched", "execution_id": execution_id,
                          "received_at": start} for n in range(events)])
    return execution_id


def board_day(staff: Staff, day: dt.date) -> None:
    """Four people of the staff's department on `day`: two present, one absent, one not computed."""
    for n in range(1, 5):
        staff.add(n)
    now = dt.datetime.now(dt.UTC)
    rows = [{"employee_no": staff.no(n), "work_date": day, "shift_code": "day", "status": status,
             "worked_minutes": worked, "late_minutes": 0, "early_exit_minutes": 0, "punch_count": 2 if worked else 0,
             "overtime_minutes": 0, "computed_at": now}
            for n, status, worked in ((1, "present", 480), (2, "present", 470), (3, "absent", 0))]
    insert(attendance_days, rows)
