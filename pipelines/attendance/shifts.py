"""Shift definitions and assignments: the `HRSYNC_SHIFTS_FILE` contract (DESIGN §6 "Shifts file").

`parse_shift_config` turns the YAML mapping into validated, immutable objects; every error is a
`ShiftConfigError` whose message starts with the key path (`shifts.day.start: ...`). Keys the contract does
not name are ignored, so the file can grow. Required: `shifts` (at least one, each with `start` and `end`)
and `assignments.default`. A missing shift key takes the value of DESIGN's example (60, 60, first_last, 4,
2, 10, 10, mon-fri), while an explicit `null` switches a threshold or grace off; a missing
`double_tap_seconds` is 60, missing `holidays` or assignment tables are empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import yaml

WorkingTime = Literal["first_last", "pairs"]
_T = TypeVar("_T")

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_WORKING_TIMES: tuple[WorkingTime, ...] = ("first_last", "pairs")


class ShiftConfigError(ValueError):
    """The shifts file is invalid; `key_path` says where (e.g. `shifts.day.start`)."""

    def __init__(self, key_path: str, problem: str) -> None:
        super().__init__(f"{key_path}: {problem}")
        self.key_path = key_path
        self.problem = problem


@dataclass(frozen=True)
class Shift:
    """One shift definition; times are local wall-clock times in `HRSYNC_TIMEZONE`.

    `end < start` means the shift crosses midnight. Window widths are real minutes. A `None` threshold
    or grace is off. `workdays` holds weekday numbers, Monday = 0 (as `date.weekday()`).
    """

    code: str
    start: time
    end: time
    check_in_before: int
    check_out_after: int
    working_time: WorkingTime
    half_day_below_hours: float | None
    absent_below_hours: float | None
    late_grace_minutes: int | None
    early_grace_minutes: int | None
    workdays: frozenset[int]


@dataclass(frozen=True)
class ShiftConfig:
    """All shifts, who works which, the double-tap interval and the company holidays (local dates)."""

    double_tap_seconds: int
    shifts: dict[str, Shift]
    default: str
    departments: dict[str, str] = field(default_factory=dict)
    employees: dict[str, str] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    def shift_for(self, employee_no: str, department: str | None) -> Shift:
        """The employee's shift: their own assignment, else their department's, else the default."""
        code = self.employees.get(employee_no)
        if code is None and department is not None:
            code = self.departments.get(department)
        return self.shifts[code if code is not None else self.default]


# What a shift key left out of the file means (the values of DESIGN's example); start and end are required.
_SHIFT_KEY_DEFAULTS: dict[str, object] = {
    "check_in_before": 60,
    "check_out_after": 60,
    "working_time": "first_last",
    "half_day_below_hours": 4,
    "absent_below_hours": 2,
    "late_grace_minutes": 10,
    "early_grace_minutes": 10,
    "workdays": ["mon", "tue", "wed", "thu", "fri"],
}

# The demo configuration, used when no shifts file is set; every shift key not given takes its default.
_DEFAULT_SHIFTS_DOCUMENT: dict[str, object] = {
    "double_tap_seconds": 60,
    "shifts": {"day": {"start": "09:00", "end": "17:00"}, "night": {"start": "22:00", "end": "06:00"}},
    "assignments": {"default": "day"},
    "holidays": [],
}


def load_shift_config(path: str | Path) -> ShiftConfig:
    """Read and validate a shifts file; YAML syntax errors are reported as `ShiftConfigError` too.

    `OSError` (missing or unreadable file) propagates unchanged.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ShiftConfigError(str(path), f"not valid YAML: {exc}") from exc
    return parse_shift_config(document)


def parse_shift_config(document: object) -> ShiftConfig:
    """Validate a loaded shifts document (a mapping, as `yaml.safe_load` returns it) into a `ShiftConfig`."""
    root = _mapping(document, "<root>")
    shifts_doc = _mapping(_required(root, "shifts", ""), "shifts")
    if not shifts_doc:
        raise ShiftConfigError("shifts", "at least one shift must be defined")
    shifts: dict[str, Shift] = {}
    for raw_code, body in shifts_doc.items():
        code = _key(raw_code, "shifts")
        shifts[code] = _parse_shift(code, body)
    assignments = _mapping(_or_empty(root.get("assignments"), {}), "assignments")
    default = _shift_ref(_required(assignments, "default", "assignments"), "assignments.default", shifts)
    return ShiftConfig(
        double_tap_seconds=_non_negative_int(root.get("double_tap_seconds", 60), "double_tap_seconds"),
        shifts=shifts,
        default=default,
        departments=_assignment_table(assignments, "departments", shifts),
        employees=_assignment_table(assignments, "employees", shifts),
        holidays=_holidays(_or_empty(root.get("holidays"), []), "holidays"),
    )


def _parse_shift(code: str, body: object) -> Shift:
    path = f"shifts.{code}"
    doc = _mapping(body, path)

    def setting(key: str, parse: Callable[[object, str], _T]) -> _T:
        if key not in doc and key not in _SHIFT_KEY_DEFAULTS:
            raise ShiftConfigError(f"{path}.{key}", "is required")
        return parse(doc.get(key, _SHIFT_KEY_DEFAULTS.get(key)), f"{path}.{key}")

    start = setting("start", _hh_mm)
    end = setting("end", _hh_mm)
    if start == end:
        # "end < start crosses midnight" leaves start == end meaning a zero-length shift: surely a typo.
        raise ShiftConfigError(f"{path}.end", "must differ from start")
    return Shift(
        code=code,
        start=start,
        end=end,
        check_in_before=setting("check_in_before", _non_negative_int),
        check_out_after=setting("check_out_after", _non_negative_int),
        working_time=setting("working_time", _working_time),
        half_day_below_hours=setting("half_day_below_hours", _optional_hours),
        absent_below_hours=setting("absent_below_hours", _optional_hours),
        late_grace_minutes=setting("late_grace_minutes", _optional_minutes),
        early_grace_minutes=setting("early_grace_minutes", _optional_minutes),
        workdays=setting("workdays", _workdays),
    )


def _or_empty(value: object, empty: object) -> object:
    # `holidays:` with nothing after it is YAML null; read it as "none" rather than as an error.
    return empty if value is None else value


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ShiftConfigError(path, f"expected a mapping, got {_show(value)}")
    return cast("Mapping[str, Any]", value)


def _required(doc: Mapping[str, Any], key: str, parent: str) -> object:
    if key not in doc:
        raise ShiftConfigError(f"{parent}.{key}" if parent else key, "is required")
    return doc[key]


def _key(value: object, parent: str) -> str:
    # Unquoted YAML keys like 0042 or 2026 arrive as numbers; guessing their spelling back is unsafe.
    if not isinstance(value, str):
        raise ShiftConfigError(f"{parent}.{value}", f"key must be a quoted string, got {_show(value)}")
    return value


def _hh_mm(value: object, path: str) -> time:
    match = _HH_MM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        # YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020, hence the hint.
        hint = " (quote times in YAML)" if isinstance(value, int) else ""
        raise ShiftConfigError(path, f'expected "HH:MM", got {_show(value)}{hint}')
    return time(int(match[1]), int(match[2]))


def _non_negative_int(value: object, path: str) -> int:
    # bool is an int subclass; `true` as a minute count is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ShiftConfigError(path, f"expected a whole number >= 0, got {_show(value)}")
    return value


def _optional_minutes(value: object, path: str) -> int | None:
    return None if value is None else _non_negative_int(value, path)


def _optional_hours(value: object, path: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < float("inf"):
        raise ShiftConfigError(path, f"expected a number of hours >= 0 or null, got {_show(value)}")
    return float(value)


def _working_time(value: object, path: str) -> WorkingTime:
    for choice in _WORKING_TIMES:
        if value == choice:
            return choice
    raise ShiftConfigError(path, f"expected one of {', '.join(_WORKING_TIMES)}, got {_show(value)}")


def _workdays(value: object, path: str) -> frozenset[int]:
    if not isinstance(value, list):
        raise ShiftConfigError(path, f"expected a list of weekday names, got {_show(value)}")
    days: set[int] = set()
    for index, name in enumerate(value):
        if not isinstance(name, str) or name.lower() not in WEEKDAYS:
            raise ShiftConfigError(
                f"{path}[{index}]", f"expected one of {', '.join(WEEKDAYS)}, got {_show(name)}"
            )
        days.add(WEEKDAYS.index(name.lower()))
    return frozenset(days)


def _shift_ref(value: object, path: str, shifts: Mapping[str, Shift]) -> str:
    if not isinstance(value, str) or value not in shifts:
        raise ShiftConfigError(path, f"unknown shift {_show(value)} (defined: {', '.join(sorted(shifts))})")
    return value


def _assignment_table(
    assignments: Mapping[str, Any], key: str, shifts: Mapping[str, Shift]
) -> dict[str, str]:
    path = f"assignments.{key}"
    table = _mapping(_or_empty(assignments.get(key), {}), path)
    result: dict[str, str] = {}
    for raw_name, code in table.items():
        name = _key(raw_name, path)
        result[name] = _shift_ref(code, f"{path}.{name}", shifts)
    return result


def _holidays(value: object, path: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise ShiftConfigError(path, f"expected a list of dates, got {_show(value)}")
    return frozenset(_iso_date(item, f"{path}[{index}]") for index, item in enumerate(value))


def _iso_date(value: object, path: str) -> date:
    # YAML reads an unquoted 2026-12-25 as a date already; a datetime is a date subclass but not a day.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ShiftConfigError(path, f'expected a date "YYYY-MM-DD", got {_show(value)}')


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else "null" if value is None else repr(value)


# Parsed rather than spelled out so the demo goes through the same validation as a real file.
DEFAULT_SHIFT_CONFIG: ShiftConfig = parse_shift_config(_DEFAULT_SHIFTS_DOCUMENT)
