"""Shift definitions and assignments: the `HRSYNC_SHIFTS_FILE` contract (DESIGN §6 "Shifts file").

`parse_shift_config` turns the YAML mapping into validated, immutable objects; every error is a
`ShiftConfigError` whose message starts with the key path (`shifts.day.start: ...`,
`assignments.dated[2].from: ...`). Keys the contract does not name are ignored, so the file can grow.
Required: `shifts` (at least one, each with `start` and `end`) and `assignments.default`. A missing shift
key takes the value of DESIGN's example (60, 60, first_last, 4, 2, 10, 10, mon-fri; no break, no overtime,
round to 1 minute), while an explicit `null` switches a threshold or grace off; a missing
`double_tap_seconds` is 60, missing `holidays`, `rotations`, calendars or assignment tables are empty.

`ShiftConfig.shift_on` answers which shift an employee works on a date (dated overrides, rotations,
`off`; `roster_on` also says whether a rotation chose it), `ShiftConfig.holidays_for` which dates are
their holidays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar, cast

import yaml

from shared.config.settings import get_settings

WorkingTime = Literal["first_last", "pairs"]
OvertimeApproval = Literal["manual", "auto"]  # who approves a day's overtime: a person, or the shift itself
_T = TypeVar("_T")
_Target = Callable[[object, str], str]  # checks a shift/rotation/"off" name at a key path

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFF = "off"  # reserved: where a shift name is expected, "no shift starts on that date"
EVERY_DAY: frozenset[int] = frozenset(range(7))
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
    break_minutes: int = 0
    break_after_hours: float = 0.0
    overtime_after_minutes: int | None = None
    round_minutes: int = 1
    overtime_approval: OvertimeApproval = "manual"  # `auto`: the day's overtime is approved as computed


@dataclass(frozen=True)
class Rotation:
    """A repeating roster: on date d the entry `pattern[(d - anchor) mod len]`, a shift code or `OFF`."""

    name: str
    anchor: date
    pattern: tuple[str, ...]

    def code_on(self, day: date) -> str:
        """The pattern entry for `day`; Python's `%` is the mathematical modulo, so dates before work too."""
        return self.pattern[(day - self.anchor).days % len(self.pattern)]


@dataclass(frozen=True)
class DatedAssignment:
    """A temporary override for `date_from`..`date_to` (inclusive); `target` is a shift, rotation or `OFF`."""

    employees: frozenset[str]
    departments: frozenset[str]
    date_from: date
    date_to: date
    target: str

    def covers(self, day: date) -> bool:
        """Whether `day` lies in the override's inclusive date range."""
        return self.date_from <= day <= self.date_to


class Rostered(NamedTuple):
    """Who works what on a date: the shift (None = `off`) and whether a rotation chose it."""

    shift: Shift | None
    by_rotation: bool


@dataclass(frozen=True)
class ShiftConfig:
    """All shifts and rotations, who works which when, the double-tap interval and the holidays (local dates).

    `default`, `departments` and `employees` values, and `DatedAssignment.target`, are names of a shift or
    a rotation, or `OFF`. `department_calendars`/`employee_calendars` map to `holiday_calendars` names.
    """

    double_tap_seconds: int
    shifts: dict[str, Shift]
    default: str
    departments: dict[str, str] = field(default_factory=dict)
    employees: dict[str, str] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    rotations: dict[str, Rotation] = field(default_factory=dict)
    dated: tuple[DatedAssignment, ...] = ()
    holiday_calendars: dict[str, frozenset[date]] = field(default_factory=dict)
    department_calendars: dict[str, str] = field(default_factory=dict)
    employee_calendars: dict[str, str] = field(default_factory=dict)

    def shift_on(self, employee_no: str, department: str | None, day: date) -> Shift | None:
        """The shift whose instance starts on local date `day` for this employee, or None for `off`.

        Precedence: a `dated` entry naming the employee (the last such wins), else one naming the
        department (the last wins), else `employees`, else `departments`, else `default`. A rotation
        resolves to its pattern's entry for `day`. See `roster_on` for whether `workdays` apply.
        """
        return self.roster_on(employee_no, department, day).shift

    def roster_on(self, employee_no: str, department: str | None, day: date) -> Rostered:
        """`shift_on`'s answer, and whether a rotation gave it (the pattern is the roster: `workdays` do not apply)."""
        name = self.assignment_on(employee_no, department, day)
        rotation = self.rotations.get(name)
        code = name if rotation is None else rotation.code_on(day)
        return Rostered(None if code == OFF else self.shifts[code], by_rotation=rotation is not None)

    def assignment_on(self, employee_no: str, department: str | None, day: date) -> str:
        """The name (shift, rotation or `OFF`) the precedence of `shift_on` picks, before resolving it."""
        by_employee: str | None = None
        by_department: str | None = None
        for entry in self.dated:
            if not entry.covers(day):
                continue
            if employee_no in entry.employees:
                by_employee = entry.target
            elif department is not None and department in entry.departments:
                by_department = entry.target
        for choice in (by_employee, by_department, self.employees.get(employee_no)):
            if choice is not None:
                return choice
        if department is not None and department in self.departments:
            return self.departments[department]
        return self.default

    def holidays_for(self, employee_no: str, department: str | None) -> frozenset[date]:
        """Global `holidays` plus the employee's calendar (`calendars.employees` replaces the department's)."""
        calendar = self.employee_calendars.get(employee_no)
        if calendar is None and department is not None:
            calendar = self.department_calendars.get(department)
        return self.holidays if calendar is None else self.holidays | self.holiday_calendars[calendar]


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
    "break_minutes": 0,
    "break_after_hours": 0,
    "overtime_after_minutes": None,
    "round_minutes": 1,
    "overtime_approval": "manual",
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
        code = _unreserved(_key(raw_code, "shifts"), "shifts")
        shifts[code] = _parse_shift(code, body)
    rotations = _rotations(_or_empty(root.get("rotations"), {}), shifts)
    target = partial(_name, shifts=shifts, rotations=rotations)
    assignments = _mapping(_or_empty(root.get("assignments"), {}), "assignments")
    calendars_doc = _mapping(_or_empty(root.get("calendars"), {}), "calendars")
    holiday_calendars = {
        name: _holidays(dates, f"holiday_calendars.{name}")
        for name, dates in _named_entries(root.get("holiday_calendars"), "holiday_calendars")
    }
    return ShiftConfig(
        double_tap_seconds=_non_negative_int(root.get("double_tap_seconds", 60), "double_tap_seconds"),
        shifts=shifts,
        default=target(_required(assignments, "default", "assignments"), "assignments.default"),
        departments=_assignment_table(assignments, "departments", target),
        employees=_assignment_table(assignments, "employees", target),
        holidays=_holidays(_or_empty(root.get("holidays"), []), "holidays"),
        rotations=rotations,
        dated=_dated(_or_empty(assignments.get("dated"), []), target),
        holiday_calendars=holiday_calendars,
        department_calendars=_calendar_table(calendars_doc, "departments", holiday_calendars),
        employee_calendars=_calendar_table(calendars_doc, "employees", holiday_calendars),
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
        break_minutes=setting("break_minutes", _non_negative_int),
        break_after_hours=setting("break_after_hours", _hours),
        overtime_after_minutes=setting("overtime_after_minutes", _optional_minutes),
        round_minutes=setting("round_minutes", _positive_int),
        overtime_approval=setting("overtime_approval", _overtime_approval),
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


def _positive_int(value: object, path: str) -> int:
    if _non_negative_int(value, path) == 0:
        raise ShiftConfigError(path, "expected a whole number >= 1, got 0")
    return cast(int, value)


def _optional_hours(value: object, path: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < float("inf"):
        raise ShiftConfigError(path, f"expected a number of hours >= 0 or null, got {_show(value)}")
    return float(value)


def _hours(value: object, path: str) -> float:
    hours = _optional_hours(value, path) if value is not None else None
    if hours is None:
        raise ShiftConfigError(path, "expected a number of hours >= 0, got null")
    return hours


def _working_time(value: object, path: str) -> WorkingTime:
    for choice in _WORKING_TIMES:
        if value == choice:
            return choice
    raise ShiftConfigError(path, f"expected one of {', '.join(_WORKING_TIMES)}, got {_show(value)}")


def _overtime_approval(value: object, path: str) -> OvertimeApproval:
    if value == "manual" or value == "auto":
        return value
    raise ShiftConfigError(path, f"expected manual or auto, got {_show(value)}")


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


def _name(value: object, path: str, *, shifts: Mapping[str, Shift], rotations: Mapping[str, Rotation]) -> str:
    """`value` as the name of a shift, a rotation or `OFF`."""
    if isinstance(value, bool):
        # YAML 1.1 reads bare off/on/no/yes as booleans; the user surely meant the reserved name "off".
        raise ShiftConfigError(path, f'expected a shift name, got {_show(value)} (quote "off" in YAML)')
    if isinstance(value, str) and (value == OFF or value in shifts or value in rotations):
        return value
    defined = ", ".join(sorted(shifts)) + (f"; rotations: {', '.join(sorted(rotations))}" if rotations else "")
    raise ShiftConfigError(path, f"unknown shift {_show(value)} (defined: {defined})")


def _unreserved(name: str, parent: str) -> str:
    if name == OFF:
        raise ShiftConfigError(f"{parent}.{name}", f'"{OFF}" is reserved (it means "no shift")')
    return name


def _named_entries(value: object, path: str) -> list[tuple[str, object]]:
    """The `(name, body)` pairs of an optional mapping whose keys must be strings."""
    return [(_key(raw, path), body) for raw, body in _mapping(_or_empty(value, {}), path).items()]


def _rotations(value: object, shifts: Mapping[str, Shift]) -> dict[str, Rotation]:
    rotations: dict[str, Rotation] = {}
    for name, body in _named_entries(value, "rotations"):
        path = f"rotations.{_unreserved(name, 'rotations')}"
        if name in shifts:
            raise ShiftConfigError(path, f'"{name}" is already a shift name')
        doc = _mapping(body, path)
        pattern = _required(doc, "pattern", path)
        if not isinstance(pattern, list) or not pattern:
            raise ShiftConfigError(f"{path}.pattern", f"expected a non-empty list of shifts, got {_show(pattern)}")
        rotations[name] = Rotation(
            name=name,
            anchor=_iso_date(_required(doc, "anchor", path), f"{path}.anchor"),
            # A pattern names shifts or "off", never another rotation: {} leaves rotations out.
            pattern=tuple(
                _name(code, f"{path}.pattern[{i}]", shifts=shifts, rotations={}) for i, code in enumerate(pattern)
            ),
        )
    return rotations


def _assignment_table(assignments: Mapping[str, Any], key: str, target: _Target) -> dict[str, str]:
    path = f"assignments.{key}"
    return {name: target(value, f"{path}.{name}") for name, value in _named_entries(assignments.get(key), path)}


def _dated(value: object, target: _Target) -> tuple[DatedAssignment, ...]:
    if not isinstance(value, list):
        raise ShiftConfigError("assignments.dated", f"expected a list of overrides, got {_show(value)}")
    entries: list[DatedAssignment] = []
    for index, body in enumerate(value):
        path = f"assignments.dated[{index}]"
        doc = _mapping(body, path)
        employees = _string_list(doc.get("employees"), f"{path}.employees")
        departments = _string_list(doc.get("departments"), f"{path}.departments")
        if not employees and not departments:
            raise ShiftConfigError(path, "names no employees and no departments")
        date_from = _iso_date(_required(doc, "from", path), f"{path}.from")
        date_to = _iso_date(_required(doc, "to", path), f"{path}.to")
        if date_to < date_from:
            raise ShiftConfigError(f"{path}.to", f"{date_to} is before from ({date_from})")
        name = target(_required(doc, "shift", path), f"{path}.shift")
        entries.append(DatedAssignment(employees, departments, date_from, date_to, name))
    return tuple(entries)


def _string_list(value: object, path: str) -> frozenset[str]:
    items = _or_empty(value, [])
    if not isinstance(items, list):
        raise ShiftConfigError(path, f"expected a list of quoted names, got {_show(value)}")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            # Unquoted employee numbers like 0042 arrive as integers; guessing their spelling back is unsafe.
            raise ShiftConfigError(f"{path}[{index}]", f"expected a quoted string, got {_show(item)}")
    return frozenset(items)


def _calendar_table(
    calendars: Mapping[str, Any], key: str, holiday_calendars: Mapping[str, frozenset[date]]
) -> dict[str, str]:
    path = f"calendars.{key}"
    table: dict[str, str] = {}
    for name, calendar in _named_entries(calendars.get(key), path):
        if not isinstance(calendar, str) or calendar not in holiday_calendars:
            defined = ", ".join(sorted(holiday_calendars)) or "none"
            raise ShiftConfigError(f"{path}.{name}", f"unknown holiday calendar {_show(calendar)} (defined: {defined})")
        table[name] = calendar
    return table


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


def current_shift_config() -> ShiftConfig:
    """The shifts of `HRSYNC_SHIFTS_FILE`, or the embedded default; reread when the file changes."""
    path = get_settings().shifts_file
    if path is None:
        return DEFAULT_SHIFT_CONFIG
    return _load_config(Path(path), Path(path).stat().st_mtime_ns)


_config_cache: dict[tuple[Path, int], ShiftConfig] = {}


def _load_config(path: Path, mtime_ns: int) -> ShiftConfig:
    key = (path, mtime_ns)
    if key not in _config_cache:
        _config_cache.clear()  # one file at a time: the old version is never needed again
        _config_cache[key] = load_shift_config(path)
    return _config_cache[key]
