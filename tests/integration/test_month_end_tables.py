"""Month end's tables (migration 0008) hold `ExceptionRecord`s as they are, on MariaDB and SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError

from pipelines.monthend.decisions import ExceptionRecord, accept, approve_overtime, refresh
from pipelines.monthend.exception_rows import exception_record, exception_row
from pipelines.monthend.exceptions import Finding, findings_of
from shared.database import migrations
from shared.database.db import app_engine
from shared.database.tables import attendance_exceptions, period_changes, periods
from shared.runtime.runner import run_async
from tests.unit.month_end_rows import a_day

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("empty_database")]

AT = datetime(2026, 12, 1, 9, 30, 15, 123000, tzinfo=UTC)


def _records() -> list[ExceptionRecord]:
    (late,) = refresh([], findings_of(a_day(late_minutes=12)))
    (overtime,) = refresh([], findings_of(a_day(employee_no="e1 ", worked_minutes=570, overtime_minutes=90)))
    approved = approve_overtime(overtime, 30, by="hr", at=AT, reason="=half of it")
    (stale,) = refresh([approved], [Finding("e1 ", date(2026, 11, 2), overtime.kind, {
        "shift_code": "day", "overtime_minutes": 120})])  # a recompute changed the overtime: stale decision
    (missing,) = refresh([], findings_of(a_day(day=3, status="missing_punch", worked_minutes=0,
                                                first_in=datetime(2026, 11, 3, 8, tzinfo=UTC))))
    resolved = refresh([missing], [])[0]
    return [accept(late, by="hr", at=AT, reason="bus strike"), stale, resolved]


async def _round_trip(records: list[ExceptionRecord]) -> tuple[list[ExceptionRecord], list[str]]:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(insert(attendance_exceptions), [
            {**exception_row(r), "first_seen_at": AT, "updated_at": AT, "execution_id": "x"} for r in records])
        table = attendance_exceptions.c
        rows = (await conn.execute(select(attendance_exceptions).order_by(table.employee_no, table.kind))).mappings()
        back = [exception_record(row) for row in rows]
        exact = (await conn.execute(select(table.employee_no).where(table.employee_no == "E1"))).scalars().all()
    return back, list(exact)


def test_exception_records_round_trip_through_the_table() -> None:
    """Decisions (figures, minutes, aware times) and the derived states survive storage; ids compare exactly."""
    run_async(migrations.upgrade())
    records = _records()
    back, exact = run_async(_round_trip(records))
    assert sorted(back, key=lambda r: (r.employee_no, r.kind)) == sorted(records, key=lambda r: (r.employee_no, r.kind))
    assert [(r.state, r.changed_since_decided, r.approved_overtime_minutes) for r in back if r.employee_no == "e1 "] \
        == [("open", True, 0)]  # the stale approval of 30 minutes pays nothing until decided again
    assert exact == ["E1", "E1"]  # `e1 ` is another employee, also on MariaDB


async def _insert_twice(table: Table, row: dict[str, Any]) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(insert(table), [row])
    async with engine.begin() as conn:
        await conn.execute(insert(table), [row])


@pytest.mark.parametrize(("table", "row"), [
    # two closes of one month racing for version 1: the key lets one of them in
    (periods, {"period": "2026-11", "version": 1, "state": "closed", "closed_by": "hr", "closed_at": AT,
               "reason": "month end"}),
    # a retried shard of one execution records a frozen day's change once
    (period_changes, {"period": "2026-11", "version": 1, "employee_no": "E1", "work_date": date(2026, 11, 2),
                      "before": {"worked_minutes": 480}, "after": {"worked_minutes": 495}, "execution_id": "x",
                      "recorded_at": AT}),
])
def test_month_end_keys_refuse_a_second_row(table: Table, row: dict[str, Any]) -> None:
    """A period version is written once; a day's change is kept once per execution."""
    run_async(migrations.upgrade())
    with pytest.raises(IntegrityError):
        run_async(_insert_twice(table, row))
