"""The export files' columns (DESIGN §11), each with the kind of cell it holds, and a day's row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pipelines.export.cells import Cell
from pipelines.export.rows import ExportDay

# text: identifiers and codes; name: longer text; minute: a local date and time to the minute;
# count: whole numbers; days: day counts that may be halves; quantity: payroll's 2-decimal quantities.
CellKind = Literal["text", "name", "date", "minute", "count", "days", "quantity", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: CellKind


def _columns(kind: CellKind, *names: str) -> tuple[Column, ...]:
    return tuple(Column(name, kind) for name in names)


DAYS_COLUMNS = (
    Column("employee_no", "text"), *_columns("name", "full_name", "department"), Column("work_date", "date"),
    *_columns("text", "shift_code", "status", "absence_kind"), *_columns("minute", "first_in", "last_out"),
    *_columns("count", "worked_minutes", "late_minutes", "early_exit_minutes", "overtime_minutes",
              "approved_overtime_minutes"),
    Column("corrected", "bool"),
)
SUMMARY_LEADING = (
    Column("employee_no", "text"), *_columns("name", "full_name", "department"),
    *_columns("count", "days_present", "days_half_day", "days_absent", "days_missing_punch", "days_on_leave"),
)
SUMMARY_TRAILING = _columns(
    "count", "days_holiday", "days_off", "worked_minutes", "approved_overtime_minutes", "late_count",
    "late_minutes", "early_exit_count", "early_exit_minutes",
)
PAYROLL_COLUMNS = (
    *_columns("text", "employee_no", "component"), Column("quantity", "quantity"), Column("unit", "text"),
)


def leave_kinds(kinds: Iterable[str]) -> list[str]:
    """The month's absence kinds as the leave columns name them: lower case, once each, alphabetical."""
    return sorted({kind.lower() for kind in kinds})


def summary_columns(kinds: Sequence[str]) -> tuple[Column, ...]:
    """summary.csv's columns: one `leave_<kind>` per kind of `leave_kinds`, after `days_on_leave`."""
    return (*SUMMARY_LEADING, *(Column(f"leave_{kind}", "days") for kind in kinds), *SUMMARY_TRAILING)


def local_minute(instant: datetime | None, zone: ZoneInfo) -> datetime | None:
    """`instant` as a naive local time in `zone`, to the minute."""
    if instant is None:
        return None
    return instant.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def day_cells(day: ExportDay, zone: ZoneInfo) -> list[Cell]:
    """The days.csv row of `day`, first_in/last_out as naive local times to the minute in `zone`."""
    return [
        day.employee_no, day.full_name, day.department, day.work_date, day.shift_code, day.status,
        day.absence_kind, local_minute(day.first_in, zone), local_minute(day.last_out, zone),
        day.worked_minutes, day.late_minutes, day.early_exit_minutes, day.overtime_minutes,
        day.approved_overtime_minutes, day.corrected,
    ]
