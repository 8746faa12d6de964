"""Month end's records inside a recompute's transaction (DESIGN §11): closed months, their kept changes, and
the exceptions of the days a merge wrote.

The merge calls these with its own connection, so the days, the exceptions derived from them and what a
frozen month kept instead commit together (a retried shard redoes all three).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.attendance.shifts import ShiftConfig
from pipelines.monthend.decisions import ExceptionRecord, refresh
from pipelines.monthend.exception_rows import exception_record, exception_row
from pipelines.monthend.exceptions import findings_of
from pipelines.monthend.period import Period
from shared.config.errors import HrsyncError
from shared.database.db import upsert
from shared.database.tables import attendance_exceptions, period_changes, periods

# The figures of a day a frozen month keeps in `period_changes` (before and after a recompute).
DAY_FIGURES = ("shift_code", "status", "first_in", "last_out", "worked_minutes", "late_minutes",
               "early_exit_minutes", "overtime_minutes", "absence_kind", "punch_count")
DayKey = tuple[str, date]


def months_of(first: date, last: date) -> list[Period]:
    """The periods `first`..`last` touches, in order."""
    months, month = [], Period.of(first)
    while month <= Period.of(last):
        months.append(month)
        month = Period(month.year + month.month // 12, month.month % 12 + 1)
    return months


async def closed_versions(conn: AsyncConnection, months: Iterable[Period], *, lock: bool = False) -> dict[str, int]:
    """Period name → its closed version, for those of `months` that are closed now.

    `lock` takes a shared lock on the periods' rows (and the gaps where they would go), so a close waits for
    the caller's transaction and a transaction after the close sees it: no day is written into a month
    between the close's counts and its commit.
    """
    names = sorted({str(month) for month in months})
    if not names:
        return {}
    query = select(periods.c.period, periods.c.version, periods.c.state).where(periods.c.period.in_(names))
    if lock:
        query = query.with_for_update(read=True)
    latest: dict[str, tuple[int, str]] = {}
    for name, version, state in await conn.execute(query):
        if version > latest.get(name, (0, ""))[0]:
            latest[name] = (version, state)
    return {name: version for name, (version, state) in latest.items() if state == "closed"}


class PeriodClosed(HrsyncError):
    """The day lies in a closed period: nothing of it changes until the period is reopened (exit 1)."""

    exit_code = 1


async def refuse_frozen(conn: AsyncConnection, days: Iterable[date]) -> None:
    """Raise `PeriodClosed` naming the period when one of `days` lies in a closed month (locks as above)."""
    days = sorted(days)
    closed = await closed_versions(conn, {Period.of(day) for day in days}, lock=True)
    for day in days:
        if str(Period.of(day)) in closed:
            period = str(Period.of(day))
            raise PeriodClosed(f"period {period} is closed (version {closed[period]}): "
                               f"{day.isoformat()} cannot change until it is reopened")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def day_figures(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A day's figures as JSON (`{}` for no row): what `period_changes` shows before and after."""
    return {} if row is None else {name: _json(row[name]) for name in DAY_FIGURES}


def _one_per_day(rows: Iterable[Mapping[str, Any]]) -> dict[DayKey, Mapping[str, Any]]:
    days: dict[DayKey, Mapping[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["shift_code"]):
        days.setdefault((row["employee_no"], row["work_date"]), row)
    return days


async def keep_frozen_changes(conn: AsyncConnection, stored: Iterable[Mapping[str, Any]],
                              computed: Iterable[Mapping[str, Any]], frozen: Mapping[str, int],
                              execution_id: str, now: datetime) -> int:
    """Record in `period_changes` what the recompute would have changed in frozen days; returns how many.

    `stored` are the frozen days' rows as they stand, `computed` what the rules give now (both only of
    frozen months). A day whose figures are the same is not recorded; a retried shard records once.
    """
    before, after = _one_per_day(stored), _one_per_day(computed)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = day_figures(before.get(key)), day_figures(after.get(key))
        if old != new:
            period = str(Period.of(key[1]))
            changes.append({"period": period, "version": frozen[period], "employee_no": key[0],
                            "work_date": key[1], "before": old, "after": new, "execution_id": execution_id,
                            "recorded_at": now})
    if changes:
        await conn.execute(upsert(conn, period_changes, []), changes)
    return len(changes)


_EXCEPTION_UPDATES = tuple(c.name for c in attendance_exceptions.columns
                           if c.name not in ("employee_no", "work_date", "kind", "first_seen_at"))


async def refresh_exceptions(conn: AsyncConnection, days: Iterable[Mapping[str, Any]],
                             stored: Iterable[Mapping[str, Any]], keys: Iterable[DayKey], config: ShiftConfig,
                             execution_id: str, now: datetime) -> int:
    """Bring the exceptions of the days `keys` in line with their rows `days` (as stored after the write).

    `stored` are those days' `attendance_exceptions` rows before. Decisions are kept; an exception a day
    no longer shows (or a day without a row) is kept as resolved. Returns how many rows were written.
    """
    by_day = _one_per_day(days)
    previous: dict[DayKey, list[ExceptionRecord]] = {}
    stored_rows: dict[tuple[str, date, str], dict[str, Any]] = {}
    for row in stored:
        record = exception_record(row)
        previous.setdefault((record.employee_no, record.work_date), []).append(record)
        stored_rows[(record.employee_no, record.work_date, str(record.kind))] = exception_row(record)
    writes = []
    for key in sorted(set(keys) | previous.keys()):
        day = by_day.get(key)
        shift = config.shifts.get(day["shift_code"]) if day is not None else None
        auto = shift is not None and shift.overtime_approval == "auto"
        findings = findings_of(_Day(day)) if day is not None else []
        for record in refresh(previous.get(key, []), findings, auto_overtime=auto):
            row = exception_row(record)
            if stored_rows.get((record.employee_no, record.work_date, str(record.kind))) != row:
                writes.append({**row, "first_seen_at": now, "updated_at": now, "execution_id": execution_id})
    if writes:
        await conn.execute(upsert(conn, attendance_exceptions, _EXCEPTION_UPDATES), writes)
    return len(writes)


class _Day:
    """A stored day row read through attributes (the `AttendanceDay` protocol)."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row[name]


def exception_keys(rows: Sequence[Mapping[str, Any]]) -> set[DayKey]:
    """The (employee_no, work_date) of `rows`."""
    return {(row["employee_no"], row["work_date"]) for row in rows}
