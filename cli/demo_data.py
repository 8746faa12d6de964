"""Generated demo data for `hrsync demo`: the example company's HRIS (people, absences), a month of BioStar logs.

Pure and seeded: the same dates and seed give the same people, absences and punches. Who works when comes
from the company's shifts file (`cli.demo_company`), read back through `pipelines.attendance.shifts`, so
the punches follow the rotations, the dated override and the calendars exactly as the rules will.

The anomalies the demo is meant to show are planted on purpose (absences, missing punches, late arrivals,
early exits, half days, long days, double taps, failed verifications, a badge nobody owns, leave that was
never approved) and counted in `DemoData.planted`. A `Showcase` of cases at fixed local times lets a reader
derive their rows by hand (docs/demo.md; `tests/integration/test_demo.py` does).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from cli.demo_company import (
    BAVARIA_DEPARTMENT,
    CARETAKER_DEPARTMENT,
    CREWS,
    DEPARTMENTS,
    OFFICE_DEPARTMENTS,
    CompanyDates,
    shifts_document,
    shifts_yaml,
)
from pipelines.attendance.rules import ShiftInstance, shift_instance
from pipelines.attendance.shifts import ShiftConfig, parse_shift_config
from pipelines.merge.biostar import IDENTIFY_SUCCESS, VERIFY_SUCCESS, BiostarLog

VERIFY_FAIL, IDENTIFY_FAIL = 0x11, 0x14  # BioStar main codes of failed authentications
DEVICES = (541530001, 541530002, 541530003)  # main entrance, side entrance, warehouse gate
UNKNOWN_BADGE = "990001"  # a visitor card that no employee owns
TEAM_SIZE = 9  # team leads report to the department's head, the heads to the CEO

# Chances per employee and scheduled shift: at most one of these anomalies, plus the harmless extras.
ANOMALIES = (("absence", 0.012), ("missing punch", 0.01), ("late arrival", 0.03), ("early exit", 0.02),
             ("half day", 0.004), ("long day", 0.03))
P_DOUBLE_TAP, P_FAILED_FIRST = 0.03, 0.03
# Chances per employee of one HRIS absence in the range: kind, part, status, length in days.
LEAVE = (("vacation", "full", "approved", (3, 5), 0.10), ("sick", "full", "approved", (1, 2), 0.05),
         ("vacation", "am", "approved", (1, 1), 0.02), ("vacation", "pm", "approved", (1, 1), 0.02),
         ("vacation", "full", "cancelled", (2, 3), 0.01), ("vacation", "full", "pending", (2, 3), 0.01))
# Where the usual punches fall, in seconds from the scheduled start and end: the office comes early and
# stays a little (less than the 15 minutes overtime needs), the crews clock in and out within the shift
# (every minute past it is overtime there), the guards a few minutes either side (no overtime rule).
USUAL = {"day": ((-479, 0), (0, 419)), "guard": ((-599, 0), (0, 599))}
USUAL_PLANT = ((0, 299), (-299, 0))
# The showcase's punches (local wall-clock times).
CANCELLED_PUNCHES = ("08:55", "17:05")
HALF_DAY_PUNCHES = ("08:57", "13:02")
OVERTIME_PUNCHES = ("08:12", "17:58")
NIGHT_PUNCHES = ("21:52", "06:07")  # the second on the next morning

FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Kira",
               "Lukas", "Mia", "Noah", "Olga", "Paul", "Quirin", "Rosa", "Samir", "Tara", "Umut", "Vera",
               "Wim", "Xenia", "Yusuf", "Zoe", "Aylin", "Bruno", "Carla", "Dario", "Emma", "Finn")
LAST_NAMES = ("Adler", "Becker", "Celik", "Dietrich", "Engel", "Fischer", "Graf", "Hoffmann", "Ivanova",
              "Jung", "Keller", "Lang", "Meyer", "Neumann", "Otto", "Peters", "Quast", "Richter", "Schmidt",
              "Thomas", "Ulrich", "Vogel", "Wagner", "Yilmaz", "Zimmermann", "Kaya", "Nowak", "Sommer")


class Case(NamedTuple):
    """One showcase person and the local date of the case."""

    employee_no: str
    day: dt.date


@dataclass(frozen=True)
class Showcase:
    """Cases planted at fixed times, one person each (office people on the `day` shift, and a crew member).

    `vacation`: a full approved vacation from `day` (the Tuesday after the company holiday) to its Friday;
    `sick`: a full approved sick day; `cancelled`: a vacation that was cancelled, the day worked
    (`CANCELLED_PUNCHES`); `half_day`: an approved `pm` vacation, worked the morning (`HALF_DAY_PUNCHES`);
    `overtime`: a long office day (`OVERTIME_PUNCHES`); `night`: a night of a crew's rotation
    (`NIGHT_PUNCHES`), not across a DST change, the crew in `night_department`.
    """

    vacation: Case
    vacation_to: dt.date
    sick: Case
    cancelled: Case
    half_day: Case
    overtime: Case
    night: Case
    night_department: str


@dataclass
class DemoData:
    """HRIS rows (`pipelines.extract.rows.COLUMNS` keys), absences, BioStar logs, the shifts file, what was planted."""

    first_day: dt.date
    last_day: dt.date
    dates: CompanyDates
    shifts: dict[str, Any]
    showcase: Showcase
    employees: list[dict[str, Any]] = field(default_factory=list)
    absences: list[dict[str, Any]] = field(default_factory=list)  # `pipelines.extract.rows.ABSENCE_COLUMNS` keys
    logs: list[BiostarLog] = field(default_factory=list)
    planted: Counter[str] = field(default_factory=Counter)

    @property
    def holiday(self) -> dt.date:
        return self.dates.holiday

    @property
    def departments(self) -> int:
        return len({e["department"] for e in self.employees})

    @property
    def managers(self) -> int:
        return len({e["manager_no"] for e in self.employees if e["manager_no"]})

    def shifts_yaml(self) -> str:
        """The shifts file of this data (DESIGN §6 format), as YAML text."""
        return shifts_yaml(self.shifts)


def demo_days(today: dt.date, weeks: int = 4) -> tuple[dt.date, dt.date]:
    """The demo's date range: the `weeks` whole weeks ending yesterday."""
    last = today - dt.timedelta(days=1)
    return last - dt.timedelta(days=7 * weeks - 1), last


def _people(rng: random.Random, now: dt.datetime, first: dt.date) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = []
    names: set[tuple[str, str]] = set()

    def add(department: str, manager_no: str | None) -> dict[str, Any]:
        while True:
            first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if (first_name, last_name) not in names or len(names) > 800:
                names.add((first_name, last_name))
                break
        number = len(people) + 1
        person = {
            "employee_no": f"E{number:04d}", "full_name": f"{first_name} {last_name}",
            "email": f"{first_name}.{last_name}.{number}@example.com".lower(), "department": department,
            "manager_no": manager_no, "status": "active", "hire_date": first - dt.timedelta(days=rng.randint(60, 3000)),
            "termination_date": None, "biostar_user_id": str(1000 + number),
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
    return people


def _cast(rng: random.Random, people: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, dict[str, Any]]:
    """People with a part to play: the showcase's office people, the caretaker, and records that change
    what the merge does: a hire and a leaver within the range, an `inactive` employee, one without email."""
    managers = {p["manager_no"] for p in people}
    staff = [p for p in people if p["employee_no"] not in managers]
    office = [p for p in staff if p["department"] in OFFICE_DEPARTMENTS - {CARETAKER_DEPARTMENT, BAVARIA_DEPARTMENT}]
    roles = dict(zip(("vacation", "sick", "cancelled", "half_day", "overtime", "joiner", "leaver", "inactive",
                      "no_mail"), rng.sample(office, 9), strict=True))
    roles["caretaker"] = rng.choice([p for p in staff if p["department"] == CARETAKER_DEPARTMENT])
    span = (last - first).days
    roles["joiner"]["hire_date"] = first + dt.timedelta(days=span // 2)
    roles["leaver"]["status"], roles["leaver"]["termination_date"] = "terminated", first + dt.timedelta(days=span // 3)
    roles["inactive"]["status"] = "inactive"
    roles["no_mail"]["email"] = None
    return roles


def _night_case(rng: random.Random, people: list[dict[str, Any]], config: ShiftConfig, zone: ZoneInfo,
                first: dt.date, last: dt.date) -> tuple[Case, str]:
    """A crew member's first rostered night in the range with the next morning in it, not across a DST change."""
    managers = {p["manager_no"] for p in people}
    for day in (first + dt.timedelta(days=i) for i in range(1, (last - first).days - 1)):
        noon, next_noon = (dt.datetime.combine(d, dt.time(12), zone) for d in (day, day + dt.timedelta(days=1)))
        for crew in CREWS:
            shift = config.shift_on("", crew, day)
            if shift is not None and shift.code == "night" and noon.utcoffset() == next_noon.utcoffset() \
                    and day not in config.holidays_for("", crew):
                person = rng.choice([p for p in people if p["department"] == crew and p["employee_no"] not in managers])
                return Case(person["employee_no"], day), crew
    raise ValueError(f"no crew works a night between {first} and {last}: the range is too short")


def _instant(day: dt.date, hhmm: str, zone: ZoneInfo) -> dt.datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return dt.datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)


def _employed(person: dict[str, Any], day: dt.date) -> bool:
    return person["hire_date"] <= day and not (person["termination_date"] and person["termination_date"] < day)


def _absences(rng: random.Random, data: DemoData, cast: dict[str, dict[str, Any]],
              now: dt.datetime) -> list[dict[str, Any]]:
    """The showcase's absences, then at most one random absence per other active employee."""
    show, span = data.showcase, (data.last_day - data.first_day).days
    rows: list[dict[str, Any]] = []

    def add(no: str, kind: str, part: str, status: str, date_from: dt.date, date_to: dt.date) -> None:
        rows.append({"absence_id": f"A{len(rows) + 1:05d}", "employee_no": no, "kind": kind,
                     "date_from": date_from, "date_to": date_to, "part": part, "status": status,
                     "updated_at": now - dt.timedelta(days=rng.randint(1, 40), minutes=rng.randint(0, 1440))})

    add(show.vacation.employee_no, "vacation", "full", "approved", show.vacation.day, show.vacation_to)
    add(show.sick.employee_no, "sick", "full", "approved", show.sick.day, show.sick.day)
    add(show.cancelled.employee_no, "vacation", "full", "cancelled", show.cancelled.day, show.cancelled.day)
    add(show.half_day.employee_no, "vacation", "pm", "approved", show.half_day.day, show.half_day.day)
    busy = {p["employee_no"] for p in cast.values()} | {show.night.employee_no}
    office = OFFICE_DEPARTMENTS | {"Management"}
    for person in data.employees:
        roll = rng.random()
        if person["employee_no"] in busy or person["status"] != "active" or not _employed(person, data.first_day):
            continue
        for kind, part, status, (shortest, longest), chance in LEAVE:
            if roll < chance and (part == "full" or person["department"] in office):
                date_from = data.first_day + dt.timedelta(days=rng.randint(0, span))
                add(person["employee_no"], kind, part, status, date_from,
                    date_from + dt.timedelta(days=rng.randint(shortest, longest) - 1))
                data.planted["leave not approved" if status != "approved" else f"{kind} {part}"] += 1
                break
            roll -= chance
    return rows


def _approved_leave(absences: list[dict[str, Any]]) -> dict[tuple[str, dt.date], str]:
    """(employee, date) → the part an approved absence takes (`full` wins; the demo never plants am + pm)."""
    leave: dict[tuple[str, dt.date], str] = {}
    for row in absences:
        if row["status"] != "approved":
            continue
        for i in range((row["date_to"] - row["date_from"]).days + 1):
            key = (row["employee_no"], row["date_from"] + dt.timedelta(days=i))
            leave[key] = "full" if "full" in (row["part"], leave.get(key)) else row["part"]
    return leave


class _Day(NamedTuple):
    """One rostered shift instance of a person, and what the day holds for the generator."""

    user: str
    instance: ShiftInstance
    holiday: bool
    part: str | None  # an approved part absence (`am`/`pm`)
    calm: bool  # no anomaly: a holiday, a part absence, or a window not over yet


def _day_logs(rng: random.Random, person: dict[str, Any], day: dt.date, data: DemoData, config: ShiftConfig,
              leave: dict[tuple[str, dt.date], str], zone: ZoneInfo, now: dt.datetime) -> list[BiostarLog]:
    """The logs of one person's rostered shift starting on `day`, if any (the showcase's at fixed times)."""
    no, department = person["employee_no"], person["department"]
    if person["status"] == "inactive" or not _employed(person, day):
        return []
    shift, by_rotation = config.roster_on(no, department, day)
    if shift is None or not (by_rotation or day.weekday() in shift.workdays):
        return []
    holiday = day in config.holidays_for(no, department)
    if holiday and shift.code != "guard":  # the office and the plant rest; security guards holidays too
        return []
    user = person["biostar_user_id"]
    fixed = _showcase_punches(data.showcase, no, day)
    if fixed:
        data.planted["long day"] += fixed in (OVERTIME_PUNCHES, NIGHT_PUNCHES)
        next_day = dt.timedelta(days=fixed[1] < fixed[0])  # a night's second punch is on the next morning
        return [BiostarLog(user, DEVICES[0], _instant(day, fixed[0], zone), IDENTIFY_SUCCESS << 8, 1),
                BiostarLog(user, DEVICES[0], _instant(day + next_day, fixed[1], zone), IDENTIFY_SUCCESS << 8, 2)]
    instance, part = shift_instance(shift, day, zone), leave.get((no, day))
    if part == "full":  # an instance still open is `open`, not `on_leave`
        data.planted["on leave"] += not holiday and instance.window_end <= now
        return []
    calm = holiday or part is not None or instance.window_end > now
    return _shift_logs(rng, _Day(user, instance, holiday, part, calm), data.planted)


def _showcase_punches(show: Showcase, employee_no: str, day: dt.date) -> tuple[str, ...]:
    cases = ((show.cancelled, CANCELLED_PUNCHES), (show.half_day, HALF_DAY_PUNCHES),
             (show.overtime, OVERTIME_PUNCHES), (show.night, NIGHT_PUNCHES))
    return next((punches for case, punches in cases if case == (employee_no, day)), ())


def _shift_logs(rng: random.Random, shift_day: _Day, planted: Counter[str]) -> list[BiostarLog]:
    """The logs of one scheduled shift, with at most one anomaly of the day (so each is found once)."""
    instance = shift_day.instance
    start, end, code = instance.start, instance.end, instance.shift.code
    roll = rng.random()
    anomaly = None if shift_day.calm else _pick_anomaly(roll, code)
    if anomaly == "absence":
        planted[anomaly] += 1
        return []
    (arrive_lo, arrive_hi), (leave_lo, leave_hi) = USUAL.get(code, USUAL_PLANT)
    arrive = start + dt.timedelta(seconds=rng.randint(arrive_lo, arrive_hi))
    leave: dt.datetime | None = end + dt.timedelta(seconds=rng.randint(leave_lo, leave_hi))
    if shift_day.part == "am":  # the morning off: in around the shift's midpoint
        arrive = instance.midpoint - dt.timedelta(seconds=rng.randint(0, 479))
    elif shift_day.part == "pm":
        leave = instance.midpoint + dt.timedelta(seconds=rng.randint(0, 299))
    rounds: list[dt.datetime] = []
    if code == "guard":  # a round outside, clocked out and in again (the `pairs` working time)
        out = start + dt.timedelta(hours=4, minutes=rng.randint(0, 60))
        rounds = [out, out + dt.timedelta(minutes=rng.randint(10, 25))]
    if anomaly == "missing punch":
        leave, rounds = None, []
    elif anomaly == "late arrival":
        arrive = start + dt.timedelta(minutes=rng.randint(15, 90))
    elif anomaly == "early exit":
        leave = end - dt.timedelta(minutes=rng.randint(20, 150))
    elif anomaly == "half day":  # worked 2.5-3.5 h: half a day
        leave, rounds = start + dt.timedelta(hours=2, minutes=rng.randint(30, 90)), []
    elif anomaly == "long day":  # stayed 25-55 min: inside the punch window, past the overtime threshold
        leave = end + dt.timedelta(minutes=rng.randint(25, 55))
    if anomaly:
        planted[anomaly] += 1
    user, device = shift_day.user, rng.choice(DEVICES)
    event = (IDENTIFY_SUCCESS if rng.random() < 0.7 else VERIFY_SUCCESS) << 8
    logs: list[BiostarLog] = []
    if rng.random() < P_FAILED_FIRST:  # a failed try before the success: never a punch
        planted["failed verification"] += 1
        logs.append(BiostarLog(user, device, arrive - dt.timedelta(seconds=20), (VERIFY_FAIL << 8) | 0x04))
    logs.append(BiostarLog(user, device, arrive, event, 1))
    if rng.random() < P_DOUBLE_TAP:  # tapped twice within seconds: one punch
        planted["double tap"] += 1
        logs.append(BiostarLog(user, device, arrive + dt.timedelta(seconds=rng.randint(3, 30)), event, 1))
    logs += [BiostarLog(user, device, at, event, 2 - i % 2) for i, at in enumerate(rounds)]
    if leave is not None:
        logs.append(BiostarLog(user, rng.choice(DEVICES), leave, event, 2))
    return logs


def _pick_anomaly(roll: float, shift_code: str) -> str | None:
    for name, chance in ANOMALIES:
        if roll < chance:
            return None if name == "long day" and shift_code == "guard" else name  # guards have no overtime
        roll -= chance
    return None


def generate(first: dt.date, last: dt.date, zone: ZoneInfo, *, now: dt.datetime | None = None,
             seed: int = 7) -> DemoData:
    """The demo's company, absences and punches for the local days `first`..`last` (at least 4 weeks) in `zone`.

    Logs later than `now` (default: the current time) are left out: no device has written them yet.
    """
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    dates = CompanyDates.within(first)
    people = _people(rng, now, first)
    cast = _cast(rng, people, first, last)
    shifts = shifts_document(dates, cast["caretaker"]["employee_no"])
    config = parse_shift_config(shifts)
    night, night_department = _night_case(rng, people, config, zone, first, last)
    after = dates.holiday
    showcase = Showcase(
        vacation=Case(cast["vacation"]["employee_no"], after + dt.timedelta(days=1)),
        vacation_to=after + dt.timedelta(days=4),
        sick=Case(cast["sick"]["employee_no"], after + dt.timedelta(days=1)),
        cancelled=Case(cast["cancelled"]["employee_no"], after + dt.timedelta(days=2)),
        half_day=Case(cast["half_day"]["employee_no"], after + dt.timedelta(days=8)),
        overtime=Case(cast["overtime"]["employee_no"], after + dt.timedelta(days=10)),
        night=night, night_department=night_department)
    data = DemoData(first, last, dates, shifts, showcase, people)
    data.absences = _absences(rng, data, cast, now)
    leave = _approved_leave(data.absences)
    for day in (first + dt.timedelta(days=i) for i in range((last - first).days + 1)):
        for person in data.employees:
            data.logs.extend(_day_logs(rng, person, day, data, config, leave, zone, now))
        for _ in range(rng.randint(0, 2)):  # a visitor card at the gate now and then
            data.planted["unknown badge"] += 1
            at = _instant(day, f"{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}", zone)
            data.logs.append(BiostarLog(UNKNOWN_BADGE, DEVICES[0], at, IDENTIFY_SUCCESS << 8))
        if day.weekday() < 5 and rng.random() < 0.3:  # IDENTIFY failures: a face nobody matched
            data.planted["failed verification"] += 1
            at = _instant(day, f"{rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}", zone)
            data.logs.append(BiostarLog("", DEVICES[1], at, (IDENTIFY_FAIL << 8) | 0x02))
    data.logs = [log for log in data.logs if log.at <= now]
    return data
