"""The demo's company: the example of docs/stages.md ("## The shifts file"), dated into the demo's range.

An office on the `day` shift (a break, overtime past 15 minutes, rounded to 5), a plant worked by three
crews rotating weekly through `early`, `late` and `night` (the same anchors as the example), security on
`guard` nights every day, a caretaker who guards but covers the office for a week (a dated override), and
two calendars: Bavaria for the Munich office and the caretaker, Saxony for the plant. Only the dates
differ from the example: they are chosen inside the demo's four weeks, so every rule has a day to show.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import yaml

# (department, head count incl. its head); every office department works the default `day` shift.
OFFICE = (("Engineering", 55), ("Sales", 35), ("Customer Care", 30), ("Finance", 16), ("People", 12),
          ("Facilities", 14), ("Munich", 16))
CREWS = {"Plant crew A": "crew_a", "Plant crew B": "crew_b", "Plant crew C": "crew_c"}
CREW_SIZE = 20
SECURITY, SECURITY_SIZE = "Security", 12
CARETAKER_DEPARTMENT = "Facilities"
BAVARIA_DEPARTMENT = "Munich"
DEPARTMENTS = (*OFFICE, *((crew, CREW_SIZE) for crew in CREWS), (SECURITY, SECURITY_SIZE))
OFFICE_DEPARTMENTS = frozenset(name for name, _ in OFFICE)

# 5 early, 2 off, 5 late, 2 off, 5 night, 2 off; each crew a week apart (the example's anchors).
WEEKLY = ("early",) * 5 + ("off",) * 2 + ("late",) * 5 + ("off",) * 2 + ("night",) * 5 + ("off",) * 2
ANCHORS = {"crew_a": "2026-01-05", "crew_b": "2025-12-29", "crew_c": "2025-12-22"}
_PLANT_BREAK = {"break_minutes": 30, "break_after_hours": 6, "overtime_after_minutes": 0}
SHIFTS: dict[str, dict[str, Any]] = {
    "day": {"start": "09:00", "end": "17:00", "break_minutes": 30, "break_after_hours": 6,
            "overtime_after_minutes": 15, "round_minutes": 5},
    "early": {"start": "06:00", "end": "14:00", **_PLANT_BREAK},
    "late": {"start": "14:00", "end": "22:00", **_PLANT_BREAK},
    "night": {"start": "22:00", "end": "06:00", "check_out_after": 120, **_PLANT_BREAK},
    "guard": {"start": "21:00", "end": "07:00", "working_time": "pairs",
              "workdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
}


@dataclass(frozen=True)
class CompanyDates:
    """The dated parts of the shifts file, all inside the demo's range.

    `holiday` is a Monday in the second week (for everyone); `bavaria` the Thursday of that week;
    `saxony` the Wednesday of the week after; the caretaker covers the office Monday to Friday of that week.
    """

    holiday: dt.date
    bavaria: dt.date
    saxony: dt.date
    cover_from: dt.date
    cover_to: dt.date

    @classmethod
    def within(cls, first: dt.date) -> CompanyDates:
        """The dates for a range starting at `first` and at least four weeks long."""
        holiday = first + dt.timedelta(days=7 + (7 - (first + dt.timedelta(days=7)).weekday()) % 7)
        return cls(holiday, holiday + dt.timedelta(days=3), holiday + dt.timedelta(days=9),
                   holiday + dt.timedelta(days=7), holiday + dt.timedelta(days=11))


def shifts_document(dates: CompanyDates, caretaker: str) -> dict[str, Any]:
    """The shifts file (DESIGN §6 format) of the company, `caretaker` being the guarding caretaker's number."""
    crews = list(CREWS)
    return {
        "double_tap_seconds": 60,
        "shifts": {code: dict(body) for code, body in SHIFTS.items()},
        "rotations": {name: {"anchor": anchor, "pattern": list(WEEKLY)} for name, anchor in ANCHORS.items()},
        "assignments": {
            "default": "day",
            "departments": {**CREWS, SECURITY: "guard"},
            "employees": {caretaker: "guard"},
            "dated": [{"employees": [caretaker], "from": dates.cover_from.isoformat(),
                       "to": dates.cover_to.isoformat(), "shift": "day"}],
        },
        "holidays": [dates.holiday.isoformat()],
        "holiday_calendars": {"bavaria": [dates.bavaria.isoformat()], "saxony": [dates.saxony.isoformat()]},
        "calendars": {"departments": {BAVARIA_DEPARTMENT: "bavaria", **dict.fromkeys(crews, "saxony")},
                      "employees": {caretaker: "bavaria"}},
    }


class _QuotingDumper(yaml.SafeDumper):
    """Quotes what YAML would read as something else (a time as a number, a date, `off` as false)."""


_AMBIGUOUS = re.compile(r"\d\d:\d\d|\d{4}-\d\d-\d\d|off")


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _AMBIGUOUS.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    flat = not any(isinstance(item, list | dict) for item in value)  # a list of names or dates on one line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_QuotingDumper.add_representer(str, _represent_text)
_QuotingDumper.add_representer(list, _represent_list)


def shifts_yaml(document: dict[str, Any]) -> str:
    """The shifts file as text, laid out like the example in docs/stages.md (times, dates and `off` quoted)."""
    head = "# The demo's company: the example in docs/stages.md (## The shifts file), dated into the demo's range.\n"
    return head + yaml.dump(document, Dumper=_QuotingDumper, sort_keys=False, default_flow_style=None, width=110,
                            allow_unicode=True)
