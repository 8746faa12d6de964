"""Month end's totals (DESIGN §11): payroll components and units, leave columns, hours rounded half up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.export.layout import leave_kinds, summary_columns
from pipelines.export.rows import ExportDay
from pipelines.export.totals import EmployeeMonth, hours
from tests.unit.month_end_rows import a_day


def _month(days: list[ExportDay]) -> EmployeeMonth:
    month = EmployeeMonth(days[0])
    for day in days:
        month.add(day)
    return month


def _payroll(days: list[ExportDay]) -> list[tuple[str, str, str]]:
    kinds = leave_kinds(d.absence_kind for d in days if d.absence_kind)
    return [(line.component, format(line.quantity, "f"), line.unit) for line in _month(days).payroll_lines(kinds)]


@pytest.mark.parametrize(("minutes", "quantity"), [
    (9229, "153.82"),  # 9229/60 = 153.8166… → third decimal 6 rounds up
    (9228, "153.80"),  # 9228/60 = 153.8 exactly, written with 2 decimals
    (180, "3.00"),  # 3 h exactly
    (30, "0.50"),  # half an hour
    (1, "0.02"),  # 0.01666… → 0.02
    (29, "0.48"),  # 0.48333… → 0.48
    (61, "1.02"),  # 1.01666… → 1.02
    (0, "0.00"),  # nothing
])
def test_hours_are_minutes_over_60_rounded_half_up_to_2_decimals(minutes: int, quantity: str) -> None:
    """hours = minutes / 60 rounded half up, always written with exactly 2 decimals."""
    assert format(hours(minutes), "f") == quantity


def test_regular_and_overtime_with_partial_approval_and_refusal() -> None:
    """Refused overtime is not paid as regular time; only approved overtime is paid as OVERTIME."""
    days = [
        a_day(day=2, worked_minutes=540, overtime_minutes=60, approved_overtime_minutes=30),  # 30 of 60 approved
        a_day(day=3, worked_minutes=570, overtime_minutes=90, approved_overtime_minutes=0),  # refused
        a_day(day=4, worked_minutes=480),
    ]
    # REGULAR = (540+570+480) - (60+90) = 1440 min = 24.00 h; OVERTIME = 30 min = 0.50 h
    assert _payroll(days) == [("REGULAR", "24.00", "hours"), ("OVERTIME", "0.50", "hours")]


def test_payroll_components_in_order_with_zero_rows_left_out() -> None:
    """REGULAR, OVERTIME, LEAVE_<KIND> alphabetical, ABSENT, HOLIDAY; quantity 0 omitted (no OVERTIME here)."""
    days = [
        a_day(day=2, worked_minutes=540, overtime_minutes=60),  # 60 overtime, none approved
        a_day(day=3, status="on_leave", worked_minutes=0, absence_kind="vacation", absence_part="full"),
        a_day(day=4, worked_minutes=240, absence_kind="sick", absence_part="am"),  # part absence: 0.5
        a_day(day=5, status="absent", worked_minutes=0),
        a_day(day=6, status="holiday", worked_minutes=0),
    ]
    # REGULAR (540+240-60) = 720 min = 12.00 h; sick 0.5, vacation 1 (alphabetical); ABSENT 1; HOLIDAY 1
    assert _payroll(days) == [
        ("REGULAR", "12.00", "hours"), ("LEAVE_SICK", "0.50", "days"), ("LEAVE_VACATION", "1.00", "days"),
        ("ABSENT", "1.00", "days"), ("HOLIDAY", "1.00", "days"),
    ]


def test_leave_columns_one_per_kind_seen_lower_case_alphabetical_after_days_on_leave() -> None:
    """Kinds Vacation, sick and Training seen → leave_sick, leave_training, leave_vacation after days_on_leave."""
    kinds = leave_kinds(["Vacation", "sick", "Training", "sick"])
    names = [c.name for c in summary_columns(kinds)]
    start = names.index("days_on_leave") + 1
    assert names[start:start + 4] == ["leave_sick", "leave_training", "leave_vacation", "days_holiday"]


@pytest.mark.parametrize(("changes", "leave"), [
    ({"status": "on_leave", "worked_minutes": 0, "absence_part": "full"}, Decimal(1)),  # on_leave counts 1
    ({"status": "absent", "worked_minutes": 0, "absence_part": "pm"}, Decimal("0.5")),  # part absence counts 0.5
    ({"status": "present", "worked_minutes": 240, "absence_part": "am"}, Decimal("0.5")),  # part absence counts 0.5
    ({"status": "holiday", "worked_minutes": 0, "absence_part": "full"}, Decimal(0)),  # full over a holiday: 0
    ({"status": "off", "worked_minutes": 0, "absence_part": "full"}, Decimal(0)),  # full over an off day: 0
    ({"status": "present", "worked_minutes": 480, "absence_part": "full"}, Decimal(0)),  # full over a worked day: 0
])
def test_a_day_s_leave_count(changes: dict[str, object], leave: Decimal) -> None:
    """A day counts 1 when on_leave, 0.5 under a part absence, 0 for a full absence over nothing owed."""
    month = _month([a_day(absence_kind="Training", **changes)])
    cells = month.summary_cells(["training"])
    assert cells[8] == leave  # the leave column follows the 8 leading columns


def test_summary_row_adds_the_month_up() -> None:
    """Counts per status, the leave halves, minutes and late/early counts of three days."""
    days = [
        a_day(day=2, late_minutes=12, worked_minutes=468, approved_overtime_minutes=0),
        a_day(day=3, status="half_day", worked_minutes=200, early_exit_minutes=280, absence_kind="sick",
              absence_part="pm"),
        a_day(day=4, status="missing_punch", worked_minutes=0, late_minutes=0),
        a_day(day=5, status="present", worked_minutes=540, overtime_minutes=60, approved_overtime_minutes=60),
        a_day(day=7, status="off", shift_code="off", worked_minutes=0),
    ]
    # present 2, half_day 1, absent 0, missing 1, on_leave 0, sick 0.5, holiday 0, off 1,
    # worked 468+200+540 = 1208, approved 60, late 1 day 12 min, early exit 1 day 280 min
    assert _month(days).summary_cells(["sick"]) == [
        "E1", "Ada Lovelace", "Ops", 2, 1, 0, 1, 0, Decimal("0.5"), 0, 1, 1208, 60, 1, 12, 1, 280]


_minutes = st.integers(min_value=0, max_value=900)


@st.composite
def _worked_days(draw: st.DrawFn) -> list[ExportDay]:
    days = []
    for number in range(1, draw(st.integers(min_value=1, max_value=30)) + 1):
        worked = draw(_minutes)
        overtime = draw(st.integers(min_value=0, max_value=worked))
        approved = draw(st.integers(min_value=0, max_value=overtime))
        days.append(a_day(day=number, worked_minutes=worked, overtime_minutes=overtime,
                          approved_overtime_minutes=approved))
    return days


@given(_worked_days())
def test_paid_hours_never_exceed_worked_hours(days: list[ExportDay]) -> None:
    """REGULAR + OVERTIME ≤ worked hours, give or take the two roundings (≤ 0.005 h each)."""
    paid = {line.component: line.quantity for line in _month(days).payroll_lines([])}
    worked = Decimal(sum(d.worked_minutes for d in days)) / 60
    assert paid.get("REGULAR", Decimal(0)) + paid.get("OVERTIME", Decimal(0)) <= worked + Decimal("0.01")
    assert paid.get("REGULAR", Decimal(0)) <= worked + Decimal("0.005")


def test_leave_components_follow_the_leave_columns_order() -> None:
    """Kinds `ab` and `a_b`: columns leave_a_b, leave_ab ('_' < 'b'), so LEAVE_A_B before LEAVE_AB ('B' < '_')."""
    days = [
        a_day(day=2, status="on_leave", worked_minutes=0, absence_kind="ab", absence_part="full"),
        a_day(day=3, status="on_leave", worked_minutes=0, absence_kind="a_b", absence_part="full"),
    ]
    assert [c.name for c in summary_columns(leave_kinds(["ab", "a_b"]))][8:10] == ["leave_a_b", "leave_ab"]
    assert [line[0] for line in _payroll(days)] == ["LEAVE_A_B", "LEAVE_AB"]


def test_kinds_differing_only_by_case_share_one_column() -> None:
    """`Sick` and `sick` are one column, leave_sick, counting both days (1 + 1 = 2)."""
    days = [
        a_day(day=2, status="on_leave", worked_minutes=0, absence_kind="Sick", absence_part="full"),
        a_day(day=3, status="on_leave", worked_minutes=0, absence_kind="sick", absence_part="full"),
    ]
    kinds = leave_kinds(d.absence_kind for d in days if d.absence_kind)
    assert kinds == ["sick"]
    assert _month(days).summary_cells(kinds)[8] == 2
    assert _payroll(days) == [("LEAVE_SICK", "2.00", "days")]
