"""Day rows for the month-end tests: a plain present day unless told otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from pipelines.export.rows import ExportDay

PLAIN = ExportDay(
    employee_no="E1", full_name="Ada Lovelace", department="Ops", work_date=date(2026, 11, 2), shift_code="day",
    status="present", absence_kind=None, absence_part=None, first_in=None, last_out=None, worked_minutes=480,
    late_minutes=0, early_exit_minutes=0, overtime_minutes=0, approved_overtime_minutes=0, corrected=False,
)


def a_day(**changes: Any) -> ExportDay:
    """PLAIN with `changes`; `day=N` sets the work date to 2026-11-N."""
    if "day" in changes:
        changes["work_date"] = date(2026, 11, changes.pop("day"))
    return replace(PLAIN, **changes)
