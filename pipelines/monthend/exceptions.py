"""Which exceptions a closed attendance day raises (DESIGN §11), and the figures each one is judged on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Protocol

from pipelines.attendance.rules import AttendanceStatus


class ExceptionKind(StrEnum):
    """The kinds, in the order a day's exceptions are listed."""

    MISSING_PUNCH = "missing_punch"
    ABSENT = "absent"
    LATE = "late"
    EARLY_EXIT = "early_exit"
    HALF_DAY = "half_day"
    OVERTIME = "overtime"


class Severity(StrEnum):
    CRITICAL = "critical"  # a period does not close while one is open (unless forced)
    REVIEW = "review"


SEVERITY: dict[ExceptionKind, Severity] = {
    ExceptionKind.MISSING_PUNCH: Severity.CRITICAL,
    ExceptionKind.ABSENT: Severity.CRITICAL,
    ExceptionKind.LATE: Severity.REVIEW,
    ExceptionKind.EARLY_EXIT: Severity.REVIEW,
    ExceptionKind.HALF_DAY: Severity.REVIEW,
    ExceptionKind.OVERTIME: Severity.REVIEW,
}

# The figures a decision on each kind is made on: when a recompute changes one of them, the decision
# is open again ("changed since decided"); a change elsewhere in the day leaves it alone.
FIGURES_OF: dict[ExceptionKind, tuple[str, ...]] = {
    ExceptionKind.MISSING_PUNCH: ("shift_code", "first_in", "last_out"),
    ExceptionKind.ABSENT: ("shift_code", "worked_minutes", "absence_kind"),
    ExceptionKind.LATE: ("shift_code", "late_minutes"),
    ExceptionKind.EARLY_EXIT: ("shift_code", "early_exit_minutes"),
    ExceptionKind.HALF_DAY: ("shift_code", "worked_minutes", "absence_kind"),
    ExceptionKind.OVERTIME: ("shift_code", "overtime_minutes"),
}

Figure = int | str | None
Figures = dict[str, Figure]


class AttendanceDay(Protocol):
    """The fields of an `attendance_days` row that exceptions are derived from."""

    @property
    def employee_no(self) -> str: ...
    @property
    def work_date(self) -> date: ...
    @property
    def shift_code(self) -> str: ...
    @property
    def status(self) -> AttendanceStatus: ...
    @property
    def absence_kind(self) -> str | None: ...
    @property
    def first_in(self) -> datetime | None: ...
    @property
    def last_out(self) -> datetime | None: ...
    @property
    def worked_minutes(self) -> int: ...
    @property
    def late_minutes(self) -> int: ...
    @property
    def early_exit_minutes(self) -> int: ...
    @property
    def overtime_minutes(self) -> int: ...


ExceptionKey = tuple[str, date, ExceptionKind]


@dataclass(frozen=True)
class Finding:
    """One exception a day shows now, with the figures (JSON scalars) it is judged on."""

    employee_no: str
    work_date: date
    kind: ExceptionKind
    figures: Figures

    @property
    def key(self) -> ExceptionKey:
        return (self.employee_no, self.work_date, self.kind)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]


def _kinds(day: AttendanceDay) -> list[ExceptionKind]:
    shows = {
        ExceptionKind.MISSING_PUNCH: day.status == "missing_punch",
        # Also with a part absence: half of the day was owed.
        ExceptionKind.ABSENT: day.status == "absent",
        ExceptionKind.LATE: day.late_minutes > 0,
        ExceptionKind.EARLY_EXIT: day.early_exit_minutes > 0,
        # A half day may also be an early exit: two exceptions.
        ExceptionKind.HALF_DAY: day.status == "half_day",
        ExceptionKind.OVERTIME: day.overtime_minutes > 0,
    }
    return [kind for kind in ExceptionKind if shows[kind]]


def _figure(day: AttendanceDay, name: str) -> Figure:
    value: object = getattr(day, name)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None or isinstance(value, int | str):
        return value
    raise TypeError(f"figure {name} of type {type(value).__name__} is not a JSON scalar")


def findings_of(day: AttendanceDay) -> list[Finding]:
    """The exceptions `day` shows, in kind order; none for an `open` instance (not closed yet)."""
    if day.status == "open":
        return []
    return [
        Finding(day.employee_no, day.work_date, kind, {name: _figure(day, name) for name in FIGURES_OF[kind]})
        for kind in _kinds(day)
    ]
