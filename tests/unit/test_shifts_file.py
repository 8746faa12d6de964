"""The shifts file (DESIGN §6): parsing, defaults, assignments and errors that name the key path."""

from __future__ import annotations

import copy
import re
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.attendance.shifts import (
    DEFAULT_SHIFT_CONFIG,
    ShiftConfigError,
    load_shift_config,
    parse_shift_config,
)

# DESIGN §6's example, verbatim, plus the night shift its assignments refer to.
DESIGN_EXAMPLE = """
double_tap_seconds: 60            # taps closer than this are one punch
shifts:
  day:
    start: "09:00"                # local time in HRSYNC_TIMEZONE
    end: "17:00"                  # end < start means the shift crosses midnight
    check_in_before: 60           # minutes before start from which punches count for this shift
    check_out_after: 60           # minutes after end until which punches count
    working_time: first_last      # or: pairs (sum of in→out pairs in order; an odd last punch is ignored)
    half_day_below_hours: 4       # null = off
    absent_below_hours: 2         # null = off
    late_grace_minutes: 10        # null = late entry never flagged (late_minutes stays 0)
    early_grace_minutes: 10       # null = early exit never flagged (early_exit_minutes stays 0)
    workdays: [mon, tue, wed, thu, fri]
  night:
    start: "22:00"
    end: "06:00"
    working_time: pairs
    half_day_below_hours: null
    absent_below_hours: 1.5
    late_grace_minutes: null
    workdays: [sun, mon, tue, wed, thu]
assignments:
  default: day
  departments: {Security: night}
  employees: {"E0042": night}
holidays: ["2026-12-25", "2026-12-26"]
"""


def example_document() -> dict[str, Any]:
    """A fresh, mutable copy of the DESIGN example as `yaml.safe_load` returns it."""
    document: dict[str, Any] = yaml.safe_load(DESIGN_EXAMPLE)
    return copy.deepcopy(document)


def test_design_example_parses_to_the_documented_values() -> None:
    """Every key of DESIGN's example arrives with its documented meaning."""
    config = parse_shift_config(example_document())
    day = config.shifts["day"]
    assert config.double_tap_seconds == 60
    assert (day.code, day.start, day.end) == ("day", time(9, 0), time(17, 0))
    assert (day.check_in_before, day.check_out_after, day.working_time) == (60, 60, "first_last")
    assert (day.half_day_below_hours, day.absent_below_hours) == (4.0, 2.0)
    assert (day.late_grace_minutes, day.early_grace_minutes) == (10, 10)
    assert day.workdays == frozenset({0, 1, 2, 3, 4})
    assert (config.default, config.departments, config.employees) == (
        "day",
        {"Security": "night"},
        {"E0042": "night"},
    )
    assert config.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})


def test_missing_shift_keys_take_defaults_and_null_switches_off() -> None:
    """Keys left out take the example's values, while an explicit null turns a threshold or grace off."""
    night = parse_shift_config(example_document()).shifts["night"]
    assert (night.start, night.end, night.working_time) == (time(22, 0), time(6, 0), "pairs")
    assert (night.check_in_before, night.check_out_after, night.early_grace_minutes) == (60, 60, 10)
    assert (night.half_day_below_hours, night.absent_below_hours, night.late_grace_minutes) == (
        None,
        1.5,
        None,
    )
    assert night.workdays == frozenset({6, 0, 1, 2, 3})


def test_load_shift_config_reads_a_yaml_file(tmp_path: Path) -> None:
    """The loader reads the file from disk with the same meaning as parsing its mapping."""
    path = tmp_path / "shifts.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load_shift_config(path) == parse_shift_config(example_document())


def test_load_shift_config_reports_bad_yaml_as_config_error(tmp_path: Path) -> None:
    """A YAML syntax error becomes a ShiftConfigError naming the file."""
    path = tmp_path / "shifts.yaml"
    path.write_text("shifts: [unclosed\n", encoding="utf-8")
    with pytest.raises(ShiftConfigError, match=re.escape(f"{path}: not valid YAML")):
        load_shift_config(path)


def test_unknown_extra_keys_are_ignored() -> None:
    """Keys the contract does not name are allowed anywhere, so the file can grow."""
    document = example_document()
    document["notify"] = {"managers": True}
    document["shifts"]["day"]["colour"] = "blue"
    document["assignments"]["teams"] = {"A": "night"}
    assert parse_shift_config(document) == parse_shift_config(example_document())


def test_minimal_file_and_null_sections() -> None:
    """Only shifts with start/end and the default assignment are required; null sections mean empty."""
    config = parse_shift_config(
        {
            "shifts": {"early": {"start": "06:00", "end": "14:00"}},
            "assignments": {"default": "early", "departments": None},
            "holidays": None,
        }
    )
    assert (config.double_tap_seconds, config.default, config.departments, config.holidays) == (
        60,
        "early",
        {},
        frozenset(),
    )


def test_default_config_has_day_and_night_shifts() -> None:
    """The demo configuration is DESIGN's day shift plus a 22:00-06:00 night shift with the same rules."""
    day, night = DEFAULT_SHIFT_CONFIG.shifts["day"], DEFAULT_SHIFT_CONFIG.shifts["night"]
    assert (DEFAULT_SHIFT_CONFIG.default, DEFAULT_SHIFT_CONFIG.double_tap_seconds) == ("day", 60)
    assert (day.start, day.end, night.start, night.end) == (time(9), time(17), time(22), time(6))
    assert night == type(night)(**{**day.__dict__, "code": "night", "start": time(22), "end": time(6)})


@pytest.mark.parametrize(
    ("employee_no", "department", "expected"),
    [
        pytest.param("E0042", "Security", "night", id="employee-beats-department"),
        pytest.param("E0042", None, "night", id="employee-without-department"),
        pytest.param("E0001", "Security", "night", id="department-beats-default"),
        pytest.param("E0001", "Sales", "day", id="unassigned-department-gets-default"),
        pytest.param("E0001", None, "day", id="no-department-gets-default"),
    ],
)
def test_shift_for_precedence(employee_no: str, department: str | None, expected: str) -> None:
    """An employee's own assignment beats the department's, which beats the default."""
    config = parse_shift_config(example_document())
    shift = config.shift_on(employee_no, department, date(2026, 6, 1))
    assert shift is not None
    assert shift.code == expected


_DELETE = object()


def _set(document: dict[str, Any], path: tuple[Any, ...], value: object) -> None:
    """Set (or delete, with `_DELETE`) the value at `path` inside a nested document."""
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(
            ("shifts", "day", "start"), "9am", 'shifts.day.start: expected "HH:MM", got "9am"', id="bad-time"
        ),
        pytest.param(
            ("shifts", "day", "end"), "24:00", 'shifts.day.end: expected "HH:MM", got "24:00"', id="hour-24"
        ),
        pytest.param(
            ("shifts", "day", "end"),
            1020,
            'shifts.day.end: expected "HH:MM", got 1020 (quote times in YAML)',
            id="unquoted-time-read-as-base-60",
        ),
        pytest.param(
            ("shifts", "day", "end"), "09:00", "shifts.day.end: must differ from start", id="zero-length"
        ),
        pytest.param(
            ("shifts", "day", "start"), _DELETE, "shifts.day.start: is required", id="start-missing"
        ),
        pytest.param(
            ("shifts", "day", "workdays"),
            ["mon", "funday"],
            'shifts.day.workdays[1]: expected one of mon, tue, wed, thu, fri, sat, sun, got "funday"',
            id="bad-weekday",
        ),
        pytest.param(
            ("shifts", "day", "workdays"),
            "mon",
            "shifts.day.workdays: expected a list",
            id="workdays-not-list",
        ),
        pytest.param(
            ("shifts", "day", "working_time"),
            "hours",
            'shifts.day.working_time: expected one of first_last, pairs, got "hours"',
            id="bad-working-time",
        ),
        pytest.param(
            ("shifts", "day", "check_in_before"),
            -5,
            "shifts.day.check_in_before: expected a whole number >= 0, got -5",
            id="negative-window",
        ),
        pytest.param(
            ("shifts", "day", "check_out_after"),
            True,
            "shifts.day.check_out_after: expected a whole number",
            id="bool",
        ),
        pytest.param(
            ("shifts", "day", "half_day_below_hours"),
            -1,
            "shifts.day.half_day_below_hours: expected a number of hours >= 0 or null, got -1",
            id="negative-threshold",
        ),
        pytest.param(
            ("shifts", "day", "late_grace_minutes"),
            2.5,
            "shifts.day.late_grace_minutes: expected a whole",
            id="float",
        ),
        pytest.param(
            ("shifts", "day"), "09:00-17:00", "shifts.day: expected a mapping", id="shift-not-mapping"
        ),
        pytest.param(("shifts",), {}, "shifts: at least one shift must be defined", id="no-shifts"),
        pytest.param(("shifts",), _DELETE, "shifts: is required", id="shifts-missing"),
        pytest.param(
            ("assignments", "default"),
            "evening",
            'assignments.default: unknown shift "evening" (defined: day, night)',
            id="unknown-default",
        ),
        pytest.param(
            ("assignments", "default"), _DELETE, "assignments.default: is required", id="default-missing"
        ),
        pytest.param(
            ("assignments", "departments", "Security"),
            "evening",
            'assignments.departments.Security: unknown shift "evening"',
            id="unknown-department-shift",
        ),
        pytest.param(
            ("assignments", "employees", "E0042"),
            "evening",
            'assignments.employees.E0042: unknown shift "evening"',
            id="unknown-employee-shift",
        ),
        pytest.param(
            ("assignments", "employees", 42),
            "day",
            "assignments.employees.42: key must be a quoted string, got 42",
            id="unquoted-employee-number",
        ),
        pytest.param(
            ("holidays",),
            ["2026-12-25", "25.12.2026"],
            'holidays[1]: expected a date "YYYY-MM-DD", got "25.12.2026"',
            id="bad-holiday",
        ),
        pytest.param(
            ("double_tap_seconds",),
            -1,
            "double_tap_seconds: expected a whole number >= 0, got -1",
            id="negative-tap",
        ),
    ],
)
def test_invalid_documents_name_the_key_path(path: tuple[Any, ...], value: object, message: str) -> None:
    """Each invalid value raises a ShiftConfigError (a ValueError) whose message starts with its key path."""
    document = example_document()
    _set(document, path, value)
    with pytest.raises(ShiftConfigError, match=f"^{re.escape(message)}") as caught:
        parse_shift_config(document)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(caught.value.key_path + ":")


def test_top_level_must_be_a_mapping() -> None:
    """An empty file (YAML null) or a list at the top level is rejected with the root named."""
    for document in (None, ["day"]):
        with pytest.raises(ShiftConfigError, match=r"^<root>: expected a mapping"):
            parse_shift_config(document)


def test_unquoted_yaml_end_time_gets_a_hint() -> None:
    """YAML 1.1 reads `end: 17:00` as 1020; the error says to quote it."""
    text = DESIGN_EXAMPLE.replace('end: "17:00"', "end: 17:00")
    with pytest.raises(
        ShiftConfigError, match=re.escape('shifts.day.end: expected "HH:MM", got 1020 (quote')
    ):
        parse_shift_config(yaml.safe_load(text))
