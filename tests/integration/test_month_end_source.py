"""The export's row source reads a closed month's days as they were stored, on MariaDB and SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from pipelines.export.rows import ExportDay
from pipelines.export.source import stream_days
from pipelines.monthend.period import Period
from shared.database import migrations
from shared.database.db import app_engine
from shared.database.tables import attendance_days, attendance_exceptions, employees, punch_corrections
from shared.runtime.runner import run_async

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("empty_database")]

ZONE = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
CAME = datetime(2026, 11, 2, 7, 58, 30, 123456, tzinfo=UTC)  # microseconds survive the read as text
LEFT = datetime(2026, 11, 2, 17, 1, tzinfo=UTC)  # no fraction: stored and read without one on SQLite too


def _day(employee_no: str, day: int, **values: Any) -> dict[str, Any]:
    return {"employee_no": employee_no, "work_date": date(2026, 11, day), "shift_code": "day", "first_in": None,
            "last_out": None, "worked_minutes": 0, "status": "absent", "late_minutes": 0, "early_exit_minutes": 0,
            "punch_count": 0, "overtime_minutes": 0, "absence_kind": None, "computed_at": AT, **values}


async def _stored_and_read() -> list[ExportDay]:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(insert(employees), [
            {"employee_no": "E1", "full_name": "Ada", "department": None, "status": "active", "synced_at": AT},
            {"employee_no": "E2", "full_name": "=Bob", "department": "Ops", "status": "active", "synced_at": AT}])
        await conn.execute(insert(attendance_days), [
            _day("E1", 2, first_in=CAME, last_out=LEFT, worked_minutes=543, status="present", overtime_minutes=63),
            _day("E1", 3, first_in=CAME.replace(day=3), status="missing_punch"),
            _day("E2", 2, status="on_leave", absence_kind="vacation"),
            _day("E2", 30),
            _day("E2", 1, work_date=date(2026, 10, 31)),  # October: not in the month
        ])
        await conn.execute(insert(attendance_exceptions), [
            {"employee_no": "E1", "work_date": date(2026, 11, 2), "kind": "overtime", "severity": "review",
             "state": "accepted", "figures": {"overtime_minutes": 63}, "approved_overtime_minutes": 30,
             "first_seen_at": AT, "updated_at": AT}])
        await conn.execute(insert(punch_corrections), [
            {"punch_id": 1, "employee_no": "E2", "action": "add", "punched_at": datetime(2026, 11, 30, 23, 30,
             tzinfo=UTC), "reason": "r", "actor": "hr", "via": "cli", "at": AT},  # 00:30 on 12-01 in Berlin
            {"punch_id": 2, "employee_no": "E1", "action": "void", "punched_at": datetime(2026, 11, 3, 10,
             tzinfo=UTC), "reason": "r", "actor": "hr", "via": "cli", "at": AT}])  # on E1's 11-03
    async with engine.connect() as conn:
        return [day async for batch in stream_days(conn, Period(2026, 11), ZONE) for day in batch]


def test_the_source_reads_days_instants_and_joins_as_stored() -> None:
    """Dates, aware UTC instants (microseconds kept), nulls, the approved overtime and the joins come back exact."""
    run_async(migrations.upgrade())
    days = run_async(_stored_and_read())
    assert days == [
        ExportDay("E1", "Ada", None, date(2026, 11, 2), "day", "present", None, None, CAME, LEFT, 543, 0, 0, 63, 30,
                  False),
        ExportDay("E1", "Ada", None, date(2026, 11, 3), "day", "missing_punch", None, None, CAME.replace(day=3), None,
                  0, 0, 0, 0, 0, True),  # the void on its local date
        # no approved absence row: no part; the correction lies on 12-01 local, not on 11-02 or 11-30
        ExportDay("E2", "=Bob", "Ops", date(2026, 11, 2), "day", "on_leave", "vacation", None, None, None, 0, 0, 0, 0,
                  0, False),
        ExportDay("E2", "=Bob", "Ops", date(2026, 11, 30), "day", "absent", None, None, None, None, 0, 0, 0, 0, 0,
                  False),
    ]
    assert all(day.first_in is None or day.first_in.tzinfo is UTC for day in days)
