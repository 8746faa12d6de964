"""Which shift an employee has on a date, and which dates are their holidays (DESIGN §6), as tables.

The configuration is DESIGN's shifts-file example, extended with an `early` shift, more dated overrides and a
second calendar. Every expectation is derived by hand from DESIGN §6; the comment next to a case says how.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.attendance.rules import (
    DayResult,
    EmployeeFacts,
    assign_punches,
    compute_attendance,
    punch_range_needed,
    shift_instance,
    work_dates_affected,
)
from pipelines.attendance.shifts import Rotation, ShiftConfigError, parse_shift_config

BERLIN = ZoneInfo("Europe/Berlin")

EXAMPLE = """
double_tap_seconds: 60
shifts:
  day: {start: "09:00", end: "17:00"}
  night: {start: "22:00", end: "06:00", workdays: [sun, mon, tue, wed, thu]}
  early: {start: "06:00", end: "14:00"}
rotations:
  crew_a: {anchor: "2026-01-05", pattern: [day, day, night, night, "off", "off"]}
assignments:
  default: day
  departments: {Security: night, Production: crew_a}
  employees: {"E0042": night, "E0050": early}
  dated:
    - {employees: ["E0042"], from: "2026-12-01", to: "2026-12-31", shift: day}
    - {departments: ["Security"], from: "2026-12-24", to: "2026-12-26", shift: "off"}
    - {employees: ["E0042"], from: "2026-12-10", to: "2026-12-12", shift: early}
    - {departments: ["Security"], employees: ["E0007"], from: "2026-12-25", to: "2026-12-25", shift: early}
    - {employees: ["E0100"], from: "2026-12-01", to: "2026-12-31", shift: crew_a}
holidays: ["2026-12-25", "2026-12-26"]
holiday_calendars: {bavaria: ["2026-01-06", "2026-11-01"], saxony: ["2026-11-18"]}
calendars: {departments: {Munich: bavaria, Leipzig: saxony}, employees: {"E0009": saxony}}
"""


def document() -> dict[str, Any]:
    """A fresh, mutable copy of EXAMPLE as `yaml.safe_load` returns it."""
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE)
    return copy.deepcopy(loaded)


CONFIG = parse_shift_config(document())
ANCHOR = date(2026, 1, 5)


def code_on(employee_no: str, department: str | None, day: date) -> str:
    """The resolved shift code, or "off"."""
    shift = CONFIG.shift_on(employee_no, department, day)
    return "off" if shift is None else shift.code


# --- rotations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(ANCHOR, "day", id="on-anchor"),  # (0 mod 6) -> pattern[0] day
        pytest.param(ANCHOR + timedelta(days=2), "night", id="anchor-plus-2"),  # pattern[2] night
        pytest.param(ANCHOR + timedelta(days=4), "off", id="anchor-plus-4-off"),  # pattern[4] "off"
        pytest.param(ANCHOR + timedelta(days=6), "day", id="anchor-plus-len"),  # 6 mod 6 = 0
        pytest.param(ANCHOR - timedelta(days=1), "off", id="day-before-anchor"),  # -1 mod 6 = 5 -> off
        pytest.param(ANCHOR - timedelta(days=3), "night", id="three-before-anchor"),  # -3 mod 6 = 3 -> night
        pytest.param(ANCHOR - timedelta(days=6), "day", id="len-before-anchor"),  # -6 mod 6 = 0 -> day
        pytest.param(date(2026, 3, 29), "off", id="spring-dst-day"),  # 26 + 28 + 29 = 83 days, 83 mod 6 = 5
    ],
)
def test_rotation_entries(day: date, expected: str) -> None:
    """A rotation resolves to pattern[(date - anchor) mod len] in calendar days, before the anchor too."""
    assert code_on("E0001", "Production", day) == expected


def test_rotation_across_dst_rows() -> None:
    """Around the spring change the roster counts calendar days, and the night over it lasts 7 real hours."""
    # 2026-03-27 is 81 days after the anchor: 81 mod 6 = 3 night; 03-28: 4 off; 03-29: 5 off; 03-30: 0 day
    facts = EmployeeFacts("E0001", "Production", "active", None, None)
    punches = [
        datetime(2026, 3, 27, 22, 0, tzinfo=BERLIN),
        datetime(2026, 3, 28, 6, 0, tzinfo=BERLIN),
    ]
    result = compute_attendance(facts, punches, date(2026, 3, 27), date(2026, 3, 30), CONFIG, BERLIN)
    # Friday night 22:00 CET-06:00 CET = 480 min; 03-30 day shift, no punch: absent
    assert [(r.work_date.day, r.shift_code, r.status, r.worked_minutes) for r in result] == [
        (27, "night", "present", 480),
        (28, "off", "off", 0),
        (29, "off", "off", 0),
        (30, "day", "absent", 0),
    ]
    nights = Rotation("nights", date(2026, 3, 26), ("night", "off"))
    config = replace(CONFIG, rotations={**CONFIG.rotations, "nights": nights}, employees={"E0001": "nights"})
    punches = [datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN), datetime(2026, 3, 29, 6, 0, tzinfo=BERLIN)]
    result = compute_attendance(facts, punches, date(2026, 3, 27), date(2026, 3, 29), config, BERLIN)
    # 03-27: 1 mod 2 -> off; 03-28 (a Saturday): 2 mod 2 -> night, 22:00 CET-06:00 CEST is 7 real hours, 420
    assert [(r.work_date.day, r.shift_code, r.status, r.worked_minutes) for r in result] == [
        (27, "off", "off", 0),
        (28, "night", "present", 420),
        (29, "off", "off", 0),
    ]


@settings(max_examples=80, deadline=None, database=None)  # no .hypothesis/ left in the work tree
@given(offset=st.integers(min_value=-4000, max_value=4000), k=st.integers(min_value=-50, max_value=50))
def test_rotation_is_periodic(offset: int, k: int) -> None:
    """A rotation resolves the same on date and date + len*k, on either side of the anchor."""
    day = ANCHOR + timedelta(days=offset)
    assert code_on("E0001", "Production", day) == code_on("E0001", "Production", day + timedelta(days=6 * k))


def test_roster_on_says_a_rotation_chose_the_shift() -> None:
    """`shift_on` gives the shift as defined; `roster_on` adds whether a rotation (days ignoring workdays) chose it."""
    night = CONFIG.shifts["night"]
    # anchor + 2 is crew_a's pattern[2], night; Security's night comes from the departments table
    assert CONFIG.shift_on("E0001", "Production", ANCHOR + timedelta(days=2)) == night
    assert CONFIG.roster_on("E0001", "Production", ANCHOR + timedelta(days=2)) == (night, True)
    assert CONFIG.roster_on("E0001", "Security", ANCHOR) == (night, False)
    # anchor + 4 is "off"; still through the rotation
    assert CONFIG.roster_on("E0001", "Production", ANCHOR + timedelta(days=4)) == (None, True)


# --- precedence of assignments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("employee_no", "department", "day", "expected"),
    [
        # dated entry [0] names E0042 for December: it beats the employees table (night)
        pytest.param("E0042", "Security", date(2026, 12, 5), "day", id="dated-employee-beats-table"),
        # [0] and [2] both name E0042 on 12-11: the last one wins
        pytest.param("E0042", "Security", date(2026, 12, 11), "early", id="overlapping-dated-last-wins"),
        # 12-13 is past [2]: [0] again
        pytest.param("E0042", "Security", date(2026, 12, 13), "day", id="after-the-inner-override"),
        # on 12-24 [1] names Security, but [0] names E0042 itself: the employee level wins
        pytest.param("E0042", "Security", date(2026, 12, 24), "day", id="dated-employee-beats-dated-department"),
        # E0001 of Security on 12-24: [1] makes it off
        pytest.param("E0001", "Security", date(2026, 12, 24), "off", id="dated-department-off"),
        # on 12-25 [1] and [3] name Security: the last wins, early
        pytest.param("E0001", "Security", date(2026, 12, 25), "early", id="dated-department-last-wins"),
        # E0007 of Sales is named by [3] on 12-25
        pytest.param("E0007", "Sales", date(2026, 12, 25), "early", id="entry-naming-both"),
        # E0050 has early in the table, but a dated department entry beats the employees table
        pytest.param("E0050", "Security", date(2026, 12, 24), "off", id="dated-department-beats-employee-table"),
        # no dated entry before December: the employees table
        pytest.param("E0042", "Sales", date(2026, 11, 30), "night", id="employees-table"),
        # the employees table beats the departments table
        pytest.param("E0050", "Security", date(2026, 11, 30), "early", id="employee-beats-department"),
        # departments table
        pytest.param("E0001", "Security", date(2026, 11, 30), "night", id="departments-table"),
        # no assignment: default
        pytest.param("E0001", "Sales", date(2026, 12, 24), "day", id="default"),
        # no department: default
        pytest.param("E0001", None, date(2026, 12, 24), "day", id="no-department-default"),
        # [4] assigns crew_a for December: 12-01 is 330 days after the anchor, 330 mod 6 = 0 -> day
        pytest.param("E0100", "Sales", date(2026, 12, 1), "day", id="dated-rotation"),
        # 12-05 is 334 days, 334 mod 6 = 4 -> off
        pytest.param("E0100", "Sales", date(2026, 12, 5), "off", id="dated-rotation-off"),
        # outside [4]: the default again
        pytest.param("E0100", "Sales", date(2027, 1, 1), "day", id="after-dated-rotation"),
    ],
)
def test_assignment_precedence(employee_no: str, department: str | None, day: date, expected: str) -> None:
    """Dated employee, dated department, employees, departments, default — last dated entry wins in a level."""
    assert code_on(employee_no, department, day) == expected


def test_dated_off_row_on_a_holiday() -> None:
    """Security's 12-25 is early via [3]; 12-26 is off via [1]: an off row even on the holiday."""
    facts = EmployeeFacts("E0001", "Security", "active", None, None)
    result = compute_attendance(facts, [], date(2026, 12, 25), date(2026, 12, 26), CONFIG, BERLIN)
    # 12-25: early shift, a global holiday, no punch -> holiday; 12-26: off, shift code off
    assert [(r.shift_code, r.status) for r in result] == [("early", "holiday"), ("off", "off")]


def test_reassignment_changes_the_days_shift_code() -> None:
    """Giving E0042 early on 12-11 instead of day changes that one row's shift code and nothing else."""
    facts = EmployeeFacts("E0042", "Security", "active", None, None)
    day = date(2026, 12, 11)
    before_doc = document()
    del before_doc["assignments"]["dated"][2]
    before = compute_attendance(facts, [], day, day, parse_shift_config(before_doc), BERLIN)
    after = compute_attendance(facts, [], day, day, CONFIG, BERLIN)
    # before: [0] gives day; after: [2] (later) gives early; one row each, for the same date
    assert [(r.work_date, r.shift_code) for r in before] == [(day, "day")]
    assert [(r.work_date, r.shift_code) for r in after] == [(day, "early")]


# --- holidays and calendars -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("employee_no", "department", "expected"),
    [
        # global holidays for everyone
        pytest.param("E0001", "Sales", {"2026-12-25", "2026-12-26"}, id="global-only"),
        # Munich -> bavaria, plus the global ones
        pytest.param("E0001", "Munich", {"2026-12-25", "2026-12-26", "2026-01-06", "2026-11-01"}, id="department"),
        # calendars.employees replaces the department's: E0009 in Munich gets saxony, not bavaria
        pytest.param("E0009", "Munich", {"2026-12-25", "2026-12-26", "2026-11-18"}, id="employee-replaces"),
        # employee calendar without a department
        pytest.param("E0009", None, {"2026-12-25", "2026-12-26", "2026-11-18"}, id="employee-no-department"),
    ],
)
def test_holidays_for(employee_no: str, department: str | None, expected: set[str]) -> None:
    """A day is a holiday when it is global or in the employee's (else the department's) calendar."""
    assert CONFIG.holidays_for(employee_no, department) == {date.fromisoformat(d) for d in expected}


def test_calendar_holiday_on_a_workday_and_on_an_off_day() -> None:
    """2026-01-06 (bavaria) is a holiday for Munich's day shift; for a crew_a worker on an off day it stays off."""
    munich = EmployeeFacts("E0001", "Munich", "active", None, None)
    (row,) = compute_attendance(munich, [], date(2026, 1, 6), date(2026, 1, 6), CONFIG, BERLIN)
    # a Tuesday, a day-shift workday in bavaria's calendar, no punch: holiday, shift code kept
    assert (row.shift_code, row.status) == ("day", "holiday")
    config = replace(CONFIG, department_calendars={"Production": "bavaria"})
    plant = EmployeeFacts("E0001", "Production", "active", None, None)
    (row,) = compute_attendance(plant, [], date(2026, 1, 4), date(2026, 1, 4), config, BERLIN)
    # 01-04 is -1 mod 6 = 5 -> off; not a bavaria date, an off row
    assert (row.shift_code, row.status) == ("off", "off")
    config = replace(config, holiday_calendars={"bavaria": frozenset({date(2026, 1, 4)})})
    (row,) = compute_attendance(plant, [], date(2026, 1, 4), date(2026, 1, 4), config, BERLIN)
    # the same off day in the calendar: still an off row
    assert (row.shift_code, row.status) == ("off", "off")


def test_calendar_holiday_on_a_non_workday_and_with_punches() -> None:
    """A calendar holiday on a Sunday is `holiday`; worked with punches it is `present`."""
    munich = EmployeeFacts("E0001", "Munich", "active", None, None)
    config = replace(CONFIG, holiday_calendars={"bavaria": frozenset({date(2026, 11, 1), date(2026, 11, 3)})})
    punches = [datetime(2026, 11, 3, 9, 0, tzinfo=BERLIN), datetime(2026, 11, 3, 17, 0, tzinfo=BERLIN)]
    result = compute_attendance(munich, punches, date(2026, 11, 1), date(2026, 11, 3), config, BERLIN)
    # 11-01 Sunday holiday: holiday; 11-02 Monday, no punch: absent; 11-03 holiday worked 480: present
    assert [(r.status, r.worked_minutes) for r in result] == [("holiday", 0), ("absent", 0), ("present", 480)]


# --- punches across mixed shifts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        # night 06-01 22:00-06:00 has its window to 07:00; early 06-02 06:00 opens at 05:00: the earlier wins
        pytest.param("2026-06-02 06:30", date(2026, 6, 1), id="overlap-goes-to-the-night"),
        # 07:00 is the night window's closed end
        pytest.param("2026-06-02 07:00", date(2026, 6, 1), id="night-window-end"),
        # 07:01 is only in the early window
        pytest.param("2026-06-02 07:01", date(2026, 6, 2), id="after-the-night-window"),
        # 05:00 is in both windows: the night
        pytest.param("2026-06-02 05:00", date(2026, 6, 1), id="early-window-start"),
        # 20:00 on 06-01 is in no window (night opens 21:00)
        pytest.param("2026-06-01 20:00", None, id="between"),
    ],
)
def test_assign_punches_with_mixed_shifts(clock: str, expected: date | None) -> None:
    """Consecutive instances of different shifts share their overlap in favour of the earlier instance."""
    night, early = CONFIG.shifts["night"], CONFIG.shifts["early"]
    instances = [shift_instance(night, date(2026, 6, 1), BERLIN), shift_instance(early, date(2026, 6, 2), BERLIN)]
    assigned = assign_punches(instances, [datetime.fromisoformat(clock).replace(tzinfo=BERLIN)])
    owners = [day for day, punches in assigned.items() if punches]
    assert owners == ([] if expected is None else [expected])


def test_ranges_cover_every_shift_a_rotation_may_use() -> None:
    """`punch_range_needed` and `work_dates_affected` take the union of all shifts, rotations included."""
    start, end = punch_range_needed(date(2026, 6, 1), date(2026, 6, 1), CONFIG, BERLIN)
    # earliest window: early 06:00 - 60 = 05:00 CEST (03:00Z) less 60 s; latest: night end 06:00 + 60 on 06-02
    assert (start, end) == (
        datetime(2026, 6, 1, 4, 59, tzinfo=BERLIN),
        datetime(2026, 6, 2, 7, 0, tzinfo=BERLIN),
    )
    tap = datetime(2026, 6, 2, 6, 30, tzinfo=BERLIN)
    # 06:30 is in the night window of 06-01 and in the early/day windows of 06-02
    assert work_dates_affected(tap, tap, CONFIG, BERLIN) == (date(2026, 6, 1), date(2026, 6, 2))


PROPERTY_BASE = datetime(2026, 3, 24, tzinfo=BERLIN)


@settings(max_examples=50, deadline=None, database=None)
@given(minutes=st.lists(st.integers(min_value=0, max_value=10 * 24 * 60), max_size=60))
def test_range_equals_days_computed_alone_under_a_rotation(minutes: list[int]) -> None:
    """With a rotation mixing day and night over the spring change, a week at once equals day by day."""
    facts = EmployeeFacts("E0001", "Production", "active", None, None)
    punches = [PROPERTY_BASE + timedelta(minutes=m) for m in minutes]
    first, last = date(2026, 3, 25), date(2026, 3, 31)
    whole = compute_attendance(facts, punches, first, last, CONFIG, BERLIN)
    alone: list[DayResult] = []
    for offset in range(7):
        day = first + timedelta(days=offset)
        lo, hi = punch_range_needed(day, day, CONFIG, BERLIN)
        alone += compute_attendance(facts, [p for p in punches if lo <= p <= hi], day, day, CONFIG, BERLIN)
    assert whole == alone


# --- the file: new keys and their errors ----------------------------------------------------------------


def test_example_parses_to_the_documented_values() -> None:
    """Rotations, dated entries and calendars arrive with their documented meaning."""
    rotation = CONFIG.rotations["crew_a"]
    assert (rotation.anchor, rotation.pattern) == (ANCHOR, ("day", "day", "night", "night", "off", "off"))
    first = CONFIG.dated[0]
    assert (first.employees, first.departments, first.date_from, first.date_to, first.target) == (
        frozenset({"E0042"}), frozenset(), date(2026, 12, 1), date(2026, 12, 31), "day"
    )
    assert (CONFIG.departments["Production"], CONFIG.dated[1].target) == ("crew_a", "off")
    assert CONFIG.holiday_calendars["saxony"] == frozenset({date(2026, 11, 18)})
    assert (CONFIG.department_calendars, CONFIG.employee_calendars) == (
        {"Munich": "bavaria", "Leipzig": "saxony"}, {"E0009": "saxony"}
    )


def test_break_and_overtime_keys() -> None:
    """`break_minutes`, `break_after_hours`, `overtime_after_minutes`, `round_minutes` parse; absent = off."""
    doc = document()
    doc["shifts"]["day"].update(break_minutes=30, break_after_hours=6, overtime_after_minutes=15, round_minutes=5)
    day = parse_shift_config(doc).shifts["day"]
    night = parse_shift_config(doc).shifts["night"]
    assert (day.break_minutes, day.break_after_hours, day.overtime_after_minutes, day.round_minutes) == (30, 6, 15, 5)
    assert (night.break_minutes, night.break_after_hours, night.overtime_after_minutes, night.round_minutes) == (
        0, 0, None, 1
    )


def _bare_off(text: str) -> dict[str, Any]:
    """EXAMPLE with every quoted "off" left bare, as YAML then reads it (false)."""
    loaded: dict[str, Any] = yaml.safe_load(text.replace('"off"', "off"))
    return loaded


def _set(path: tuple[Any, ...], value: object) -> dict[str, Any]:
    """EXAMPLE with the value at `path` replaced."""
    doc = document()
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(
            _set(("assignments", "dated", 2, "from"), "12/10/2026"),
            'assignments.dated[2].from: expected a date "YYYY-MM-DD", got "12/10/2026"',
            id="dated-bad-from",
        ),
        pytest.param(
            _set(("assignments", "dated", 0, "to"), "2026-11-30"),
            "assignments.dated[0].to: 2026-11-30 is before from",
            id="dated-to-before-from",
        ),
        pytest.param(
            _bare_off(EXAMPLE), "rotations.crew_a.pattern[4]: expected a shift name, got False", id="bare-off-pattern"
        ),
        pytest.param(
            _set(("assignments", "dated", 1, "shift"), False),
            'assignments.dated[1].shift: expected a shift name, got False (quote "off" in YAML)',
            id="bare-off-dated",
        ),
        pytest.param(
            _set(("assignments", "departments", "Security"), False),
            "assignments.departments.Security: expected a shift name, got False",
            id="bare-off-department",
        ),
        pytest.param(
            _set(("assignments", "dated", 3, "shift"), "evening"),
            'assignments.dated[3].shift: unknown shift "evening" (defined: day, early, night; rotations: crew_a)',
            id="dated-unknown-shift",
        ),
        pytest.param(
            _set(("rotations", "crew_a", "pattern"), ["day", "crew_a"]),
            'rotations.crew_a.pattern[1]: unknown shift "crew_a"',
            id="rotation-inside-rotation",
        ),
        pytest.param(
            _set(("rotations", "crew_a", "pattern"), []), "rotations.crew_a.pattern: expected a non-empty list",
            id="empty-pattern",
        ),
        pytest.param(
            _set(("rotations", "crew_a", "anchor"), "soon"), 'rotations.crew_a.anchor: expected a date', id="bad-anchor"
        ),
        pytest.param(
            _set(("rotations", "day"), {"anchor": "2026-01-05", "pattern": ["night"]}),
            'rotations.day: "day" is already a shift name',
            id="rotation-named-like-a-shift",
        ),
        pytest.param(
            _set(("shifts", "off"), {"start": "09:00", "end": "10:00"}), 'shifts.off: "off" is reserved', id="shift-off"
        ),
        pytest.param(
            _set(("assignments", "dated", 0), {"from": "2026-12-01", "to": "2026-12-02", "shift": "day"}),
            "assignments.dated[0]: names no employees and no departments",
            id="dated-names-nobody",
        ),
        pytest.param(
            _set(("assignments", "dated", 0, "employees"), [42]),
            "assignments.dated[0].employees[0]: expected a quoted string, got 42",
            id="dated-unquoted-employee",
        ),
        pytest.param(
            _set(("calendars", "departments", "Munich"), "hesse"),
            'calendars.departments.Munich: unknown holiday calendar "hesse" (defined: bavaria, saxony)',
            id="unknown-calendar",
        ),
        pytest.param(
            _set(("holiday_calendars", "saxony"), ["2026-11-31"]),
            'holiday_calendars.saxony[0]: expected a date "YYYY-MM-DD", got "2026-11-31"',
            id="bad-calendar-date",
        ),
        pytest.param(
            _set(("shifts", "day", "round_minutes"), 0),
            "shifts.day.round_minutes: expected a whole number >= 1, got 0",
            id="round-zero",
        ),
    ],
)
def test_file_errors_name_the_key_path(doc: dict[str, Any], message: str) -> None:
    """Each invalid value of the new keys raises a ShiftConfigError whose message starts with its key path."""
    with pytest.raises(ShiftConfigError, match=f"^{re.escape(message)}") as caught:
        parse_shift_config(doc)
    assert message.startswith(caught.value.key_path + ":")


def test_the_documented_example_company_parses_and_rotates_its_crews() -> None:
    """The example in docs/stages.md is a valid file; on 2026-01-05 crew A is early, B late, C night."""
    text = (Path(__file__).parents[2] / "docs" / "stages.md").read_text(encoding="utf-8")
    section = text[text.index("## The shifts file") :]
    config = parse_shift_config(yaml.safe_load(section[section.index("```yaml") + 7 : section.index("```\n")]))
    monday = date(2026, 1, 5)
    crews = [config.shift_on("E1", f"Plant crew {crew}", monday) for crew in "ABC"]
    # crew A: anchor, index 0 early; B: 7 days after its anchor, index 7 late; C: 14 days, index 14 night
    assert [shift.code if shift else "off" for shift in crews] == ["early", "late", "night"]
    # the plant shutdown entry makes 2026-12-28 off for every crew
    assert config.shift_on("E1", "Plant crew B", date(2026, 12, 28)) is None
