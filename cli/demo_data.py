"""Generated demo data for `hrsync demo`: an HRIS with departments and managers, a month of BioStar logs.

Pure and seeded: the same dates and seed give the same people and punches. The anomalies the demo is
meant to show are planted on purpose (absences, missing punches, late arrivals, early exits, double
taps, failed verifications, a badge nobody owns) and counted in `DemoData.planted`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.attendance.biostar import IDENTIFY_SUCCESS, VERIFY_SUCCESS, BiostarLog

VERIFY_FAIL, IDENTIFY_FAIL = 0x11, 0x14  # BioStar main codes of failed authentications
DEVICES = (541530001, 541530002, 541530003)  # main entrance, side entrance, warehouse gate
UNKNOWN_BADGE = "990001"  # a visitor card that no employee owns

# (department, head count incl. its head); team leads report to the head, the head to the CEO.
DEPARTMENTS = (("Engineering", 70), ("Operations", 60), ("Sales", 45), ("Customer Care", 40),
               ("Finance", 20), ("People", 15), ("Security", 12), ("Facilities", 18))
TEAM_SIZE = 9

# The shifts file the demo writes (DESIGN §6 format): day by default, Security on nights, every day.
SHIFTS: dict[str, Any] = {
    "double_tap_seconds": 60,
    "shifts": {
        "day": {"start": "09:00", "end": "17:00", "check_in_before": 60, "check_out_after": 120,
                "late_grace_minutes": 10, "early_grace_minutes": 10,
                "half_day_below_hours": 4, "absent_below_hours": 2},
        "night": {"start": "22:00", "end": "06:00", "check_in_before": 60, "check_out_after": 120,
                  "workdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    },
    "assignments": {"default": "day", "departments": {"Security": "night"}},
}

# Chances per employee and scheduled shift: at most one of these anomalies, plus the harmless extras.
ANOMALIES = (("absence", 0.012), ("missing punch", 0.01), ("late arrival", 0.03), ("early exit", 0.02),
             ("half day", 0.004))
P_DOUBLE_TAP, P_FAILED_FIRST = 0.03, 0.03

FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Kira",
               "Lukas", "Mia", "Noah", "Olga", "Paul", "Quirin", "Rosa", "Samir", "Tara", "Umut", "Vera",
               "Wim", "Xenia", "Yusuf", "Zoe", "Aylin", "Bruno", "Carla", "Dario", "Emma", "Finn")
LAST_NAMES = ("Adler", "Becker", "Celik", "Dietrich", "Engel", "Fischer", "Graf", "Hoffmann", "Ivanova",
              "Jung", "Keller", "Lang", "Meyer", "Neumann", "Otto", "Peters", "Quast", "Richter", "Schmidt",
              "Thomas", "Ulrich", "Vogel", "Wagner", "Yilmaz", "Zimmermann", "Kaya", "Nowak", "Sommer")


@dataclass
class DemoData:
    """HRIS rows (`pipelines.hris.rows.COLUMNS` keys), BioStar logs, and what was planted."""

    first_day: dt.date
    last_day: dt.date
    holiday: dt.date
    employees: list[dict[str, Any]] = field(default_factory=list)
    absences: list[dict[str, Any]] = field(default_factory=list)  # `pipelines.hris.rows.ABSENCE_COLUMNS` keys
    logs: list[BiostarLog] = field(default_factory=list)
    planted: Counter[str] = field(default_factory=Counter)

    @property
    def departments(self) -> int:
        return len({e["department"] for e in self.employees})

    @property
    def managers(self) -> int:
        return len({e["manager_no"] for e in self.employees if e["manager_no"]})

    def shifts_document(self) -> dict[str, Any]:
        """The shifts file of this data: `SHIFTS` with the demo's company holiday."""
        return {**SHIFTS, "holidays": [self.holiday.isoformat()]}


def demo_days(today: dt.date, weeks: int = 4) -> tuple[dt.date, dt.date]:
    """The demo's date range: the `weeks` whole weeks ending yesterday."""
    last = today - dt.timedelta(days=1)
    return last - dt.timedelta(days=7 * weeks - 1), last


def _people(rng: random.Random, now: dt.datetime, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = []
    names: set[tuple[str, str]] = set()

    def add(department: str, manager_no: str | None) -> dict[str, Any]:
        while True:
            first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if (first_name, last_name) not in names or len(names) > 800:
                names.add((first_name, last_name))
                break
        number = len(people) + 1
        hired = first - dt.timedelta(days=rng.randint(60, 3000))
        person = {
            "employee_no": f"E{number:04d}", "full_name": f"{first_name} {last_name}",
            "email": f"{first_name}.{last_name}.{number}@example.com".lower(), "department": department,
            "manager_no": manager_no, "status": "active", "hire_date": hired, "termination_date": None,
            "biostar_user_id": str(1000 + number),
            "updated_at": now - dt.timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 1440)),
        }
        people.append(person)
        return person

    ceo = add("Management", None)
    for department, size in DEPARTMENTS:
        head = add(department, ceo["employee_no"])
        members = size - 1
        leads = max(1, round(members / (TEAM_SIZE + 1)))
        lead_nos = [add(department, head["employee_no"])["employee_no"] for _ in range(leads)]
        for i in range(members - leads):
            add(department, lead_nos[i % leads])
    # People whose records change what the merge does: a hire and a leaver within the range, an
    # employee on leave (inactive), and one without an email address (no mail can reach them).
    span = (last - first).days
    managers = {p["manager_no"] for p in people}
    staff = [p for p in people if p["employee_no"] not in managers and p["department"] != "Security"]
    joiner, leaver, on_leave, no_mail = rng.sample(staff, 4)
    joiner["hire_date"] = first + dt.timedelta(days=span // 2)
    leaver["status"], leaver["termination_date"] = "terminated", first + dt.timedelta(days=span // 3)
    on_leave["status"] = "inactive"
    no_mail["email"] = None
    return people


def _instant(day: dt.date, hhmm: str, zone: ZoneInfo) -> dt.datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return dt.datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)


def _works_on(person: dict[str, Any], day: dt.date, holiday: dt.date) -> bool:
    if person["status"] == "inactive":
        return False
    if person["hire_date"] > day or (person["termination_date"] and person["termination_date"] < day):
        return False
    if person["department"] == "Security":
        return True  # nights, every day, holidays included
    return day.weekday() < 5 and day != holiday


def _shift_logs(rng: random.Random, person: dict[str, Any], day: dt.date, zone: ZoneInfo,
                planted: Counter[str]) -> list[BiostarLog]:
    """The logs of one scheduled shift, with at most one anomaly of the day (so each is found once)."""
    night = person["department"] == "Security"
    start = _instant(day, "22:00" if night else "09:00", zone)
    end = _instant(day + dt.timedelta(days=1), "06:00", zone) if night else _instant(day, "17:00", zone)
    arrive = start - dt.timedelta(minutes=rng.randint(2, 25), seconds=rng.randint(0, 59))
    leave: dt.datetime | None = end + dt.timedelta(minutes=rng.randint(0, 40), seconds=rng.randint(0, 59))
    anomaly = _pick_anomaly(rng.random())
    if anomaly == "absence":
        planted[anomaly] += 1
        return []
    if anomaly == "missing punch":
        leave = None
    elif anomaly == "late arrival":
        arrive = start + dt.timedelta(minutes=rng.randint(15, 90))
    elif anomaly == "early exit":
        leave = end - dt.timedelta(minutes=rng.randint(20, 150))
    elif anomaly == "half day":
        leave = start + dt.timedelta(hours=2, minutes=rng.randint(30, 90))  # worked 2-4 h: half a day
    if anomaly:
        planted[anomaly] += 1
    user, device = person["biostar_user_id"], rng.choice(DEVICES)
    code = (IDENTIFY_SUCCESS if rng.random() < 0.7 else VERIFY_SUCCESS) << 8
    logs: list[BiostarLog] = []
    if rng.random() < P_FAILED_FIRST:  # a failed try before the success: never a punch
        planted["failed verification"] += 1
        logs.append(BiostarLog(user, device, arrive - dt.timedelta(seconds=20), (VERIFY_FAIL << 8) | 0x04))
    logs.append(BiostarLog(user, device, arrive, code, 1))
    if rng.random() < P_DOUBLE_TAP:  # tapped twice within seconds: one punch
        planted["double tap"] += 1
        logs.append(BiostarLog(user, device, arrive + dt.timedelta(seconds=rng.randint(3, 30)), code, 1))
    if leave is not None:
        logs.append(BiostarLog(user, rng.choice(DEVICES), leave, code, 2))
    return logs


def _pick_anomaly(roll: float) -> str | None:
    for name, chance in ANOMALIES:
        if roll < chance:
            return name
        roll -= chance
    return None


def generate(first: dt.date, last: dt.date, zone: ZoneInfo, *, now: dt.datetime | None = None,
             seed: int = 7) -> DemoData:
    """The demo's people and their punches for the local days `first`..`last` in `zone`."""
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    weekdays = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    holiday = next(d for d in weekdays[7:] + weekdays if d.weekday() == 0)  # a Monday off for everyone
    data = DemoData(first, last, holiday, _people(rng, now, first, last))
    for day in weekdays:
        for person in data.employees:
            if _works_on(person, day, holiday):
                data.logs.extend(_shift_logs(rng, person, day, zone, data.planted))
        for _ in range(rng.randint(0, 2)):  # a visitor card at the gate now and then
            data.planted["unknown badge"] += 1
            at = _instant(day, f"{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}", zone)
            data.logs.append(BiostarLog(UNKNOWN_BADGE, DEVICES[0], at, IDENTIFY_SUCCESS << 8))
        if day.weekday() < 5 and rng.random() < 0.3:  # IDENTIFY failures: a face nobody matched
            data.planted["failed verification"] += 1
            at = _instant(day, f"{rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}", zone)
            data.logs.append(BiostarLog("", DEVICES[1], at, (IDENTIFY_FAIL << 8) | 0x02))
    return data
