"""The row source of an export (DESIGN §11): a closed month's days as `ExportDay`s, streamed in order.

`attendance_days` holds neither the absence's part, the approved overtime, nor whether a correction
touched the day; they are joined here: the overtime exception's `approved_overtime_minutes`, the part of
the approved absences covering the date as the rules combine them (`absence_on`), and the month's manual
punches and voids (`punch_corrections`). A day is `corrected` when a corrected punch lies between its
first_in and last_out, or on its local date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import cast as typed
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.attendance.rules import Absence, AbsencePart, absence_on
from pipelines.export.rows import ExportDay
from pipelines.monthend.period import Period
from shared.database.tables import absences, attendance_days, attendance_exceptions, employees, punch_corrections

BATCH_ROWS = 2000  # day rows per fetch: the reader holds at most this many (plus the writer's queue)


async def absence_kinds(conn: AsyncConnection, period: Period) -> list[str]:
    """The distinct `absence_kind`s of the month's day rows (the summary's leave columns)."""
    d = attendance_days.c
    rows = await conn.execute(select(d.absence_kind).distinct().where(
        d.work_date >= period.first_day, d.work_date <= period.last_day, d.absence_kind.is_not(None)))
    return sorted(str(kind) for kind in rows.scalars())


async def _absences(conn: AsyncConnection, period: Period) -> dict[str, list[Absence]]:
    a = absences.c
    found: dict[str, list[Absence]] = {}
    for row in await conn.execute(select(a.employee_no, a.absence_id, a.kind, a.date_from, a.date_to, a.part).where(
            a.status == "approved", a.date_from <= period.last_day, a.date_to >= period.first_day)):
        found.setdefault(row.employee_no, []).append(
            Absence(row.absence_id, row.kind, row.date_from, row.date_to, typed(AbsencePart, row.part)))
    return found


async def _corrections(conn: AsyncConnection, period: Period, zone: ZoneInfo) -> dict[str, list[dt.datetime]]:
    c = punch_corrections.c
    start = dt.datetime.combine(period.first_day - dt.timedelta(days=1), dt.time(), zone)
    end = dt.datetime.combine(period.last_day + dt.timedelta(days=2), dt.time(), zone)
    found: dict[str, list[dt.datetime]] = {}
    for no, at in await conn.execute(select(c.employee_no, c.punched_at).where(c.punched_at >= start,
                                                                              c.punched_at < end)):
        found.setdefault(no, []).append(at)
    return found


def _corrected(first_in: dt.datetime | None, last_out: dt.datetime | None, work_date: dt.date,
               touched: list[dt.datetime], zone: ZoneInfo) -> bool:
    for at in touched:
        if first_in is not None and last_out is not None and first_in <= at <= last_out:
            return True
        if at.astimezone(zone).date() == work_date:
            return True
    return False


def _instant(text: str | None) -> dt.datetime | None:
    """A UTCDateTime column read as its stored text (`YYYY-MM-DD HH:MM:SS[.ffffff]`, naive UTC), made aware."""
    return None if text is None else dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


async def stream_days(conn: AsyncConnection, period: Period, zone: ZoneInfo) -> AsyncIterator[list[ExportDay]]:
    """The month's day rows with their employees, in batches, ordered by employee_no then work_date.

    Rows are read as tuples, dates and instants as text parsed by `fromisoformat`: the drivers' own
    conversions and SQLAlchemy's per-value processing were most of the read's Python time (docs/benchmarks.md).
    """
    leave = await _absences(conn, period)
    corrections = await _corrections(conn, period, zone)
    d, e, x = attendance_days.c, employees.c, attendance_exceptions.c
    query = (
        select(d.employee_no, e.full_name, e.department, cast(d.work_date, String), d.shift_code, d.status,
               d.absence_kind, cast(d.first_in, String), cast(d.last_out, String), d.worked_minutes, d.late_minutes,
               d.early_exit_minutes, d.overtime_minutes, x.approved_overtime_minutes)
        .select_from(attendance_days.join(employees, e.employee_no == d.employee_no).outerjoin(
            attendance_exceptions,
            and_(x.employee_no == d.employee_no, x.work_date == d.work_date, x.kind == "overtime")))
        .where(d.work_date >= period.first_day, d.work_date <= period.last_day)
        .order_by(d.employee_no, d.work_date, d.shift_code)
        .execution_options(yield_per=BATCH_ROWS)
    )
    instant, day = _instant, dt.date.fromisoformat
    result = await conn.stream(query)
    async for rows in result.partitions(BATCH_ROWS):
        batch = []
        for (no, name, department, work_date_text, shift, status, kind, first_text, last_text, worked, late, early,
             overtime, approved) in rows:
            work_date, first_in, last_out = day(work_date_text), instant(first_text), instant(last_text)
            absence = absence_on(work_date, leave.get(no, ())) if kind else None
            touched = corrections.get(no)
            batch.append(ExportDay(
                no, name or "", department, work_date, shift, status, kind,
                absence.part if absence is not None else None, first_in, last_out, worked, late, early, overtime,
                int(approved or 0) if overtime else 0,
                touched is not None and _corrected(first_in, last_out, work_date, touched, zone)))
        yield batch
