"""One employee's month added up: the summary.csv row and the payroll.csv lines (DESIGN §11)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from pipelines.export.cells import Cell
from pipelines.export.rows import ExportDay

_CENT = Decimal("0.01")


def hours(minutes: int) -> Decimal:
    """minutes / 60 rounded half up to exactly 2 decimals (`Decimal('153.80')`)."""
    return (Decimal(minutes) / 60).quantize(_CENT, rounding=ROUND_HALF_UP)


def _half_days(halves: int) -> Decimal:
    return Decimal(halves) / 2  # exact: 3 → 1.5, 4 → 2


def leave_halves(day: ExportDay) -> int:
    """Half days of leave `day` counts: 2 when on_leave, 1 under a part absence, else 0.

    A full absence over a holiday, an off day or a worked day counts 0 (nothing was owed, or it was worked).
    """
    if day.status == "on_leave":
        return 2
    return 1 if day.absence_part in ("am", "pm") else 0


@dataclass(frozen=True)
class PayrollLine:
    component: str
    quantity: Decimal  # exactly 2 decimals
    unit: str  # hours / days


class EmployeeMonth:
    """The running totals of one employee's days; feed it the employee's days with `add`."""

    def __init__(self, first: ExportDay) -> None:
        self.employee_no = first.employee_no
        self.full_name = first.full_name
        self.department = first.department
        self.statuses: Counter[str] = Counter()
        self.leave: Counter[str] = Counter()  # half days by lower-cased kind
        self.worked = self.overtime = self.approved = 0
        self.late_count = self.late_minutes = self.early_exit_count = self.early_exit_minutes = 0

    def add(self, day: ExportDay) -> None:
        self.statuses[day.status] += 1
        if day.absence_kind is not None:
            self.leave[day.absence_kind.lower()] += leave_halves(day)
        self.worked += day.worked_minutes
        self.overtime += day.overtime_minutes
        self.approved += day.approved_overtime_minutes
        self.late_count += day.late_minutes > 0
        self.late_minutes += day.late_minutes
        self.early_exit_count += day.early_exit_minutes > 0
        self.early_exit_minutes += day.early_exit_minutes

    def summary_cells(self, kinds: Sequence[str]) -> list[Cell]:
        """The summary.csv row, with one leave cell per kind of the month's `kinds` (lower case, sorted)."""
        count = self.statuses.__getitem__
        return [
            self.employee_no, self.full_name, self.department, count("present"), count("half_day"),
            count("absent"), count("missing_punch"), count("on_leave"),
            *(_half_days(self.leave[kind]) for kind in kinds),
            count("holiday"), count("off"), self.worked, self.approved, self.late_count, self.late_minutes,
            self.early_exit_count, self.early_exit_minutes,
        ]

    def payroll_lines(self, kinds: Sequence[str]) -> list[PayrollLine]:
        """REGULAR, OVERTIME, LEAVE_<KIND> (in `kinds` order), ABSENT, HOLIDAY; quantity 0 left out.

        REGULAR is worked minus overtime: overtime is paid only as approved, so refused overtime is not paid
        as regular time either.
        """
        lines = [
            PayrollLine("REGULAR", hours(self.worked - self.overtime), "hours"),
            PayrollLine("OVERTIME", hours(self.approved), "hours"),
            *(PayrollLine(f"LEAVE_{kind.upper()}", _half_days(self.leave[kind]).quantize(_CENT), "days")
              for kind in kinds),
            PayrollLine("ABSENT", Decimal(self.statuses["absent"]).quantize(_CENT), "days"),
            PayrollLine("HOLIDAY", Decimal(self.statuses["holiday"]).quantize(_CENT), "days"),
        ]
        return [line for line in lines if line.quantity != 0]
