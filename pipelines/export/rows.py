"""The typed inputs of month end: one closed attendance day as the export reads it, and what names an export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pipelines.attendance.rules import AbsencePart, AttendanceStatus
from pipelines.monthend.period import Period


@dataclass(frozen=True, slots=True)
class ExportDay:
    """One `attendance_days` row joined with its employee and its overtime decision.

    `first_in`/`last_out` are aware UTC instants. `absence_part` is the part of the approved absence(s)
    covering the date as the rules combine them (`pipelines.attendance.rules.absence_on`: `am` + `pm` is
    `full`), None when `absence_kind` is None; `attendance_days` does not store it, so the row source
    supplies it. `approved_overtime_minutes` is what the day's overtime decision approves
    (`pipelines.monthend.decisions.approved_overtime`). `corrected`: a manual punch or a void touched the day.
    """

    employee_no: str
    full_name: str
    department: str | None
    work_date: date
    shift_code: str
    status: AttendanceStatus
    absence_kind: str | None
    absence_part: AbsencePart | None
    first_in: datetime | None
    last_out: datetime | None
    worked_minutes: int
    late_minutes: int
    early_exit_minutes: int
    overtime_minutes: int
    approved_overtime_minutes: int
    corrected: bool


@dataclass(frozen=True)
class ExportJob:
    """What one export version is: the period, its version, the execution writing it, the company's zone.

    `created_at` becomes the workbook's creation property; pass something fixed per version (the close
    time), so that writing the version again gives the same bytes.
    """

    period: Period
    version: int
    execution_id: str
    zone: ZoneInfo
    created_at: datetime
