"""The attendance rules (DESIGN §6 "Attendance rules") as tables of cases, on real instants across DST."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.attendance.rules import (
    DayResult,
    EmployeeFacts,
    EmployeeStatus,
    assign_punches,
    compute_attendance,
    compute_day,
    dedupe_taps,
    punch_range_needed,
    shift_instance,
    work_dates_affected,
)
from pipelines.attendance.shifts import DEFAULT_SHIFT_CONFIG, Shift, ShiftConfig

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAY = DEFAULT_SHIFT_CONFIG.shifts["day"]
NIGHT = DEFAULT_SHIFT_CONFIG.shifts["night"]
EVERY_DAY = frozenset(range(7))
# Windows of consecutive instances overlap from 02:00 to 03:00 local: [d 02:00, (d+1) 03:00].
LONG = replace(DAY, code="long", start=time(6), end=time(22), check_in_before=240, check_out_after=300)
MONDAY = date(2026, 6, 1)  # CEST, UTC+2
SATURDAY = date(2026, 6, 6)


def shift(base: Shift = DAY, **changes: Any) -> Shift:
    """`base` with some settings changed."""
    return replace(base, **changes)


def local(tz: ZoneInfo, text: str, fold: int = 0) -> datetime:
    """An aware instant from local `YYYY-MM-DD HH:MM[:SS]`; fold=1 is a repeated hour's second pass."""
    return datetime.fromisoformat(text).replace(tzinfo=tz, fold=fold)


def utc(text: str) -> datetime:
    """An aware UTC instant from `YYYY-MM-DD HH:MM[:SS]`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def on(day: date, *clock: str) -> list[datetime]:
    """Berlin instants at the given wall-clock times on `day`."""
    return [local(BERLIN, f"{day.isoformat()} {hh_mm}") for hh_mm in clock]


def config_with(*shifts: Shift, holidays: frozenset[date] = frozenset(), **assignments: Any) -> ShiftConfig:
    """A configuration holding `shifts`, the first one the default."""
    return ShiftConfig(
        double_tap_seconds=60,
        shifts={s.code: s for s in shifts},
        default=shifts[0].code,
        departments=assignments.get("departments", {}),
        employees=assignments.get("employees", {}),
        holidays=holidays,
    )


def employee(
    status: EmployeeStatus = "active", hire: date | None = None, term: date | None = None
) -> EmployeeFacts:
    """Employee E0001 of department Sales."""
    return EmployeeFacts("E0001", "Sales", status, hire, term)


# --- shift instances ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "the_shift", "day", "expected"),
    [
        pytest.param(
            BERLIN,
            DAY,
            MONDAY,
            ("2026-06-01 07:00", "2026-06-01 15:00", "06:00", "16:00"),
            id="berlin-summer-day",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(2, 30), end=time(10, 30)),
            date(2026, 3, 29),
            ("2026-03-29 01:30", "2026-03-29 08:30", "00:30", "09:30"),
            id="berlin-start-in-skipped-hour-moves-to-0330-cest",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(2, 30), end=time(10, 30)),
            date(2026, 10, 25),
            ("2026-10-25 00:30", "2026-10-25 09:30", "23:30", "10:30"),
            id="berlin-start-in-repeated-hour-is-first-pass",
        ),
        pytest.param(
            BERLIN,
            NIGHT,
            date(2026, 3, 28),
            ("2026-03-28 21:00", "2026-03-29 04:00", "20:00", "05:00"),
            id="berlin-night-over-spring-forward-is-7h",
        ),
        pytest.param(
            BERLIN,
            NIGHT,
            date(2026, 10, 24),
            ("2026-10-24 20:00", "2026-10-25 05:00", "19:00", "06:00"),
            id="berlin-night-over-fall-back-is-9h",
        ),
        pytest.param(
            NEW_YORK,
            NIGHT,
            date(2026, 10, 31),
            ("2026-11-01 02:00", "2026-11-01 11:00", "01:00", "12:00"),
            id="new-york-night-over-fall-back-is-9h",
        ),
        pytest.param(
            NEW_YORK,
            shift(start=time(20), end=time(2, 30)),
            date(2026, 3, 7),
            ("2026-03-08 01:00", "2026-03-08 07:30", "00:00", "08:30"),
            id="new-york-end-in-skipped-hour-moves-to-0330-edt",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(4), end=time(12), check_in_before=180),
            date(2026, 3, 29),
            ("2026-03-29 02:00", "2026-03-29 10:00", "2026-03-28 23:00", "11:00"),
            id="window-widened-in-real-minutes-across-the-change",
        ),
    ],
)
def test_shift_instance(
    tz: ZoneInfo, the_shift: Shift, day: date, expected: tuple[str, str, str, str]
) -> None:
    """Scheduled start/end and window bounds are the expected UTC instants."""
    start, end, window_start, window_end = expected
    instance = shift_instance(the_shift, day, tz)
    assert (instance.start, instance.end) == (utc(start), utc(end))

    def near(clock: str, anchor: datetime) -> datetime:
        # A bare HH:MM means the UTC instant with that clock within 12 hours of the anchor.
        if " " in clock:
            return utc(clock)
        candidate = utc(f"{anchor.date().isoformat()} {clock}")
        return min((candidate + k * timedelta(days=1) for k in (-1, 0, 1)), key=lambda c: abs(c - anchor))

    assert instance.window_start == near(window_start, instance.start)
    assert instance.window_end == near(window_end, instance.end)
    assert instance.work_date == day


# --- double taps ----------------------------------------------------------------------------------------

T0 = utc("2026-06-01 07:00")


@pytest.mark.parametrize(
    ("offsets", "interval", "kept"),
    [
        pytest.param([], 60, [], id="empty"),
        pytest.param([0], 60, [0], id="single"),
        pytest.param([0, 59], 60, [0], id="59s-dropped"),
        pytest.param([0, 59.999999], 60, [0], id="just-under-interval-dropped"),
        pytest.param([0, 60], 60, [0, 60], id="exactly-60s-kept"),
        pytest.param([0, 30, 59, 61, 90, 121], 60, [0, 61, 121], id="chain-compared-to-previous-kept"),
        pytest.param([0, 50, 100, 150], 60, [0, 100], id="chain-not-compared-to-previous-raw-tap"),
        pytest.param([120, 0, 59], 60, [0, 120], id="unsorted-input"),
        pytest.param([0, 0, 1], 0, [0, 0, 1], id="interval-zero-keeps-all"),
    ],
)
def test_dedupe_taps(offsets: list[float], interval: int, kept: list[float]) -> None:
    """A tap strictly closer than the interval to the previous kept tap is dropped."""
    taps = [T0 + timedelta(seconds=s) for s in offsets]
    assert dedupe_taps(taps, interval) == [T0 + timedelta(seconds=s) for s in kept]


def test_dedupe_taps_returns_utc_and_rejects_naive() -> None:
    """Taps in any zone come back in UTC; a naive datetime is refused rather than guessed."""
    assert dedupe_taps([local(BERLIN, "2026-06-01 09:00")], 60)[0].tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        dedupe_taps([datetime(2026, 6, 1, 9)], 60)


# --- assigning punches to instances ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_shift", "punch", "expected"),
    [
        pytest.param(DAY, "2026-06-02 08:00:00", date(2026, 6, 2), id="on-window-start-included"),
        pytest.param(DAY, "2026-06-02 07:59:59", None, id="second-before-window-excluded"),
        pytest.param(DAY, "2026-06-02 18:00:00", date(2026, 6, 2), id="on-window-end-included"),
        pytest.param(DAY, "2026-06-02 18:00:01", None, id="second-after-window-excluded"),
        pytest.param(DAY, "2026-06-02 03:00", None, id="between-windows-counts-for-no-day"),
        pytest.param(LONG, "2026-06-02 02:30", date(2026, 6, 1), id="overlap-earlier-instance-wins"),
        pytest.param(LONG, "2026-06-02 02:00:00", date(2026, 6, 1), id="later-window-start-in-overlap"),
        pytest.param(LONG, "2026-06-02 03:00:00", date(2026, 6, 1), id="earlier-window-end-in-overlap"),
        pytest.param(LONG, "2026-06-02 03:00:01", date(2026, 6, 2), id="after-overlap-later-instance"),
        pytest.param(LONG, "2026-06-02 01:59:59", date(2026, 6, 1), id="before-overlap-earlier-instance"),
    ],
)
def test_assign_punches(the_shift: Shift, punch: str, expected: date | None) -> None:
    """A punch goes to the earliest instance whose closed window contains it, or to none."""
    instances = [shift_instance(the_shift, date(2026, 6, d), BERLIN) for d in (1, 2, 3)]
    assigned = assign_punches(instances, [local(BERLIN, punch)])
    assert sorted(assigned) == [date(2026, 6, d) for d in (1, 2, 3)]
    owners = [day for day, punches in assigned.items() if punches]
    assert owners == ([] if expected is None else [expected])


# --- one day: working time, status, late and early ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "clock", "expected"),
    [
        pytest.param({}, ["08:55", "17:05"], ("present", 490, 0, 0), id="first-last-present"),
        pytest.param(
            {}, ["09:00", "12:00", "12:30", "17:00"], ("present", 480, 0, 0), id="first-last-ignores-breaks"
        ),
        pytest.param(
            {"working_time": "pairs"},
            ["09:00", "12:00", "12:30", "17:00"],
            ("present", 450, 0, 0),
            id="pairs-even",
        ),
        pytest.param(
            {"working_time": "pairs"},
            ["09:00", "12:00", "12:30"],
            ("half_day", 180, 0, 270),
            id="pairs-odd-last-ignored",
        ),
        pytest.param({}, ["09:00", "12:00", "12:30"], ("half_day", 210, 0, 270), id="first-last-odd-count"),
        pytest.param(
            {"working_time": "pairs"},
            ["09:00:30", "09:30", "10:00", "12:00:20"],
            ("half_day", 149, 0, 299),
            id="pairs-round-total",
        ),
        pytest.param(
            {"early_grace_minutes": None},
            ["09:00", "13:00"],
            ("present", 240, 0, 0),
            id="half-day-boundary-is-present",
        ),
        pytest.param(
            {"early_grace_minutes": None},
            ["09:00", "12:59"],
            ("half_day", 239, 0, 0),
            id="minute-below-half-day",
        ),
        pytest.param(
            {"early_grace_minutes": None},
            ["09:00:00", "12:59:59"],
            ("half_day", 239, 0, 0),
            id="seconds-round-down",
        ),
        pytest.param(
            {"early_grace_minutes": None},
            ["09:00", "11:00"],
            ("half_day", 120, 0, 0),
            id="absent-boundary-is-half-day",
        ),
        pytest.param({}, ["09:00", "10:59"], ("absent", 119, 0, 361), id="minute-below-absent"),
        pytest.param(
            {"absent_below_hours": None},
            ["09:00", "09:30"],
            ("half_day", 30, 0, 450),
            id="absent-threshold-off",
        ),
        pytest.param(
            {"absent_below_hours": None, "half_day_below_hours": None},
            ["09:00", "09:30"],
            ("present", 30, 0, 450),
            id="both-thresholds-off",
        ),
        pytest.param(
            {"half_day_below_hours": 4.15},
            ["09:00", "13:09"],
            ("present", 249, 0, 231),
            id="fractional-hours-exact",
        ),
        pytest.param(
            {"half_day_below_hours": 4.15},
            ["09:00", "13:08"],
            ("half_day", 248, 0, 232),
            id="fractional-hours-below",
        ),
        pytest.param({}, ["09:10", "17:00"], ("present", 470, 0, 0), id="on-late-grace-not-late"),
        pytest.param({}, ["09:11", "17:00"], ("present", 469, 11, 0), id="minute-after-grace-late"),
        pytest.param(
            {}, ["09:10:01", "17:00"], ("present", 469, 10, 0), id="second-after-grace-late-rounded-down"
        ),
        pytest.param({}, ["09:00", "16:50"], ("present", 470, 0, 0), id="on-early-grace-not-early"),
        pytest.param({}, ["09:00", "16:49"], ("present", 469, 0, 11), id="minute-before-grace-early"),
        pytest.param(
            {}, ["09:00", "16:49:59"], ("present", 469, 0, 10), id="second-before-grace-early-rounded-down"
        ),
        pytest.param(
            {"late_grace_minutes": None}, ["12:00", "17:00"], ("present", 300, 0, 0), id="late-grace-off"
        ),
        pytest.param(
            {"early_grace_minutes": None}, ["09:00", "14:00"], ("present", 300, 0, 0), id="early-grace-off"
        ),
        pytest.param({"late_grace_minutes": 0}, ["09:01", "17:00"], ("present", 479, 1, 0), id="zero-grace"),
        pytest.param(
            {"working_time": "pairs"},
            ["09:30", "12:00", "13:00"],
            ("half_day", 150, 30, 240),
            id="pairs-late-early-use-ends",
        ),
        pytest.param({}, ["09:00"], ("missing_punch", 0, 0, 0), id="one-punch-missing"),
        pytest.param({}, ["11:00"], ("missing_punch", 0, 0, 0), id="one-late-punch-not-late"),
        pytest.param({}, [], ("absent", 0, 0, 0), id="no-punch-on-workday-absent"),
    ],
)
def test_compute_day_on_a_workday(
    changes: dict[str, Any], clock: list[str], expected: tuple[str, int, int, int]
) -> None:
    """Status, worked, late and early minutes of a 09:00-17:00 Monday follow DESIGN's strict rules."""
    instance = shift_instance(shift(**changes), MONDAY, BERLIN)
    punches = on(MONDAY, *clock)
    result = compute_day("E0001", instance, punches, frozenset())
    assert (result.status, result.worked_minutes, result.late_minutes, result.early_exit_minutes) == expected
    assert result.punch_count == len(punches)
    assert result.first_in == (punches[0] if punches else None)
    assert result.last_out == (punches[-1] if len(punches) > 1 else None)


@pytest.mark.parametrize(
    ("day", "holidays", "clock", "expected"),
    [
        pytest.param(MONDAY, {MONDAY}, [], ("holiday", 0), id="holiday-on-workday"),
        pytest.param(SATURDAY, {SATURDAY}, [], ("holiday", 0), id="holiday-on-non-workday"),
        pytest.param(SATURDAY, set(), [], ("off", 0), id="non-workday"),
        pytest.param(SATURDAY, set(), ["09:00", "17:00"], ("present", 480), id="off-day-with-full-punches"),
        pytest.param(SATURDAY, set(), ["09:00", "12:00"], ("half_day", 180), id="off-day-half"),
        pytest.param(SATURDAY, set(), ["09:00", "10:00"], ("off", 60), id="off-day-absent-reported-off"),
        pytest.param(
            MONDAY, {MONDAY}, ["09:00", "10:00"], ("holiday", 60), id="holiday-absent-reported-holiday"
        ),
        pytest.param(MONDAY, {MONDAY}, ["09:00", "17:00"], ("present", 480), id="holiday-worked"),
        pytest.param(MONDAY, {MONDAY}, ["09:00"], ("missing_punch", 0), id="holiday-one-punch"),
    ],
)
def test_compute_day_on_holidays_and_off_days(
    day: date, holidays: set[date], clock: list[str], expected: tuple[str, int]
) -> None:
    """Holidays beat non-workdays, and with punches only an `absent` result turns into holiday/off."""
    result = compute_day("E0001", shift_instance(DAY, day, BERLIN), on(day, *clock), frozenset(holidays))
    assert (result.status, result.worked_minutes) == expected


# --- DST: worked minutes on real instants ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "the_shift", "day", "punches", "expected"),
    [
        pytest.param(
            BERLIN,
            NIGHT,
            "2026-03-28",
            [("2026-03-28 22:00", 0), ("2026-03-29 06:00", 0)],
            (420, 0, 0),
            id="berlin-night-spring-forward",
        ),
        pytest.param(
            BERLIN,
            NIGHT,
            "2026-10-24",
            [("2026-10-24 22:00", 0), ("2026-10-25 06:00", 0)],
            (540, 0, 0),
            id="berlin-night-fall-back",
        ),
        pytest.param(
            NEW_YORK,
            NIGHT,
            "2026-03-07",
            [("2026-03-07 22:00", 0), ("2026-03-08 06:00", 0)],
            (420, 0, 0),
            id="new-york-night-spring-forward",
        ),
        pytest.param(
            NEW_YORK,
            NIGHT,
            "2026-10-31",
            [("2026-10-31 22:00", 0), ("2026-11-01 06:00", 0)],
            (540, 0, 0),
            id="new-york-night-fall-back",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(0), end=time(8)),
            "2026-03-29",
            [("2026-03-29 00:00", 0), ("2026-03-29 08:00", 0)],
            (420, 0, 0),
            id="berlin-day-shift-spanning-spring-forward",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(0), end=time(8)),
            "2026-10-25",
            [("2026-10-25 00:00", 0), ("2026-10-25 08:00", 0)],
            (540, 0, 0),
            id="berlin-day-shift-spanning-fall-back",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(2, 30), end=time(10, 30)),
            "2026-03-29",
            [("2026-03-29 03:30", 0), ("2026-03-29 10:30", 0)],
            (420, 0, 0),
            id="berlin-start-in-skipped-hour-on-time-at-0330",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(2, 30), end=time(10, 30)),
            "2026-03-29",
            [("2026-03-29 03:41", 0), ("2026-03-29 10:30", 0)],
            (409, 11, 0),
            id="berlin-start-in-skipped-hour-late-from-0330",
        ),
        pytest.param(
            BERLIN,
            shift(start=time(2, 30), end=time(10, 30)),
            "2026-10-25",
            [("2026-10-25 02:30", 1), ("2026-10-25 10:30", 0)],
            (480, 60, 0),
            id="berlin-repeated-start-second-pass-is-an-hour-late",
        ),
        pytest.param(
            NEW_YORK,
            shift(start=time(2, 15), end=time(10, 15)),
            "2026-03-08",
            [("2026-03-08 03:15", 0), ("2026-03-08 10:15", 0)],
            (420, 0, 0),
            id="new-york-start-in-skipped-hour",
        ),
        pytest.param(
            NEW_YORK,
            shift(start=time(18), end=time(1, 30)),
            "2026-10-31",
            [("2026-10-31 18:00", 0), ("2026-11-01 01:30", 1)],
            (510, 0, 0),
            id="new-york-repeated-end-second-pass-on-window-end",
        ),
    ],
)
def test_worked_minutes_across_dst(
    tz: ZoneInfo, the_shift: Shift, day: str, punches: list[tuple[str, int]], expected: tuple[int, int, int]
) -> None:
    """Worked, late and early minutes count real elapsed time; overnight shifts count on their start day."""
    work_date = date.fromisoformat(day)
    config = config_with(replace(the_shift, workdays=EVERY_DAY))
    instants = [local(tz, text, fold) for text, fold in punches]
    (row,) = compute_attendance(employee(), instants, work_date, work_date, config, tz)
    assert (row.worked_minutes, row.late_minutes, row.early_exit_minutes) == expected
    assert (row.work_date, row.status, row.punch_count) == (work_date, "present", 2)


# --- a range of days for one employee -------------------------------------------------------------------

WEEK_PUNCHES = [*on(MONDAY, "09:00", "17:00"), *on(date(2026, 6, 3), "09:00", "17:00")]
FULL_WEEK = [
    ("2026-06-01", "present"),
    ("2026-06-02", "absent"),
    ("2026-06-03", "present"),
    ("2026-06-04", "holiday"),
    ("2026-06-05", "absent"),
    ("2026-06-06", "off"),
    ("2026-06-07", "off"),
]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(employee(), FULL_WEEK, id="active-full-week"),
        pytest.param(employee(hire=date(2026, 6, 3)), FULL_WEEK[2:], id="hired-mid-period"),
        pytest.param(employee(term=date(2026, 6, 2)), FULL_WEEK[:2], id="terminated-mid-period"),
        pytest.param(
            employee(hire=date(2026, 6, 2), term=date(2026, 6, 4)), FULL_WEEK[1:4], id="hire-and-termination"
        ),
        pytest.param(employee("terminated", term=date(2026, 6, 5)), FULL_WEEK[:5], id="terminated-status"),
        pytest.param(employee("terminated"), FULL_WEEK, id="terminated-without-date-keeps-rows"),
        pytest.param(employee(term=date(2026, 5, 31)), [], id="terminated-before-range"),
        pytest.param(employee(hire=date(2026, 6, 8)), [], id="hired-after-range"),
        pytest.param(
            employee("inactive"), [FULL_WEEK[0], FULL_WEEK[2]], id="inactive-only-days-with-punches"
        ),
    ],
)
def test_rows_over_a_week(facts: EmployeeFacts, expected: list[tuple[str, str]]) -> None:
    """One row per local date, none outside employment, and an inactive employee only where they punched."""
    config = config_with(DAY, holidays=frozenset({date(2026, 6, 4)}))
    rows = compute_attendance(facts, WEEK_PUNCHES, MONDAY, date(2026, 6, 7), config, BERLIN)
    assert [(row.work_date.isoformat(), row.status) for row in rows] == expected


@pytest.mark.parametrize(
    ("employee_no", "department", "expected"),
    [
        pytest.param("E0042", "Security", "night", id="employee-assignment-beats-department"),
        pytest.param("E0007", "Security", "long", id="department-assignment"),
        pytest.param("E0007", "Sales", "day", id="default-for-unassigned-department"),
        pytest.param("E0007", None, "day", id="default-without-department"),
    ],
)
def test_rows_use_the_assigned_shift(employee_no: str, department: str | None, expected: str) -> None:
    """Rows carry the shift assigned to the employee, else to the department, else the default."""
    config = config_with(DAY, NIGHT, LONG, departments={"Security": "long"}, employees={"E0042": "night"})
    facts = EmployeeFacts(employee_no, department, "active", None, None)
    (row,) = compute_attendance(facts, [], MONDAY, MONDAY, config, BERLIN)
    assert (row.shift_code, row.status) == (expected, "absent")


def test_overnight_shift_is_filed_under_its_start_day() -> None:
    """A night from Monday 22:00 to Tuesday 06:00 is Monday's row; Tuesday's own night is absent."""
    punches = [local(BERLIN, "2026-06-01 21:55"), local(BERLIN, "2026-06-02 06:02")]
    rows = compute_attendance(employee(), punches, MONDAY, date(2026, 6, 2), config_with(NIGHT), BERLIN)
    assert [(r.work_date, r.status, r.worked_minutes) for r in rows] == [
        (MONDAY, "present", 487),
        (date(2026, 6, 2), "absent", 0),
    ]
    assert rows[0].first_in == utc("2026-06-01 19:55")
    assert rows[0].last_out == utc("2026-06-02 04:02")


def test_overlap_punch_stays_with_previous_day_even_when_only_the_later_day_is_computed() -> None:
    """Computing day d alone still gives a punch in the d-1/d overlap to d-1, so d does not see it."""
    punches = [local(BERLIN, "2026-06-02 02:30"), *on(date(2026, 6, 2), "06:00", "22:00")]
    (row,) = compute_attendance(
        employee(), punches, date(2026, 6, 2), date(2026, 6, 2), config_with(LONG), BERLIN
    )
    assert (row.first_in, row.punch_count, row.worked_minutes) == (on(date(2026, 6, 2), "06:00")[0], 2, 960)


def test_double_taps_are_removed_before_matching_to_windows() -> None:
    """A tap just outside the window swallows a double tap just inside it, leaving one punch in the day."""
    punches = on(MONDAY, "07:59:30", "08:00:20", "17:00")
    (row,) = compute_attendance(employee(), punches, MONDAY, MONDAY, config_with(DAY), BERLIN)
    assert (row.status, row.punch_count, row.first_in) == ("missing_punch", 1, on(MONDAY, "17:00")[0])


def test_reversed_range_is_an_error() -> None:
    """A range ending before it starts is a caller bug, not an empty answer."""
    with pytest.raises(ValueError, match="before date_from"):
        compute_attendance(employee(), [], MONDAY, date(2026, 5, 31), config_with(DAY), BERLIN)


# --- which punches to load, which days to recompute -----------------------------------------------------


@pytest.mark.parametrize(
    ("config", "the_shift", "expected"),
    [
        pytest.param(config_with(DAY), None, ("2026-06-01 05:59", "2026-06-03 16:00"), id="day-shift"),
        pytest.param(
            DEFAULT_SHIFT_CONFIG, None, ("2026-06-01 05:59", "2026-06-04 05:00"), id="union-of-day-and-night"
        ),
        pytest.param(
            DEFAULT_SHIFT_CONFIG, NIGHT, ("2026-06-01 18:59", "2026-06-04 05:00"), id="one-shift-only"
        ),
    ],
)
def test_punch_range_needed(config: ShiftConfig, the_shift: Shift | None, expected: tuple[str, str]) -> None:
    """The span runs from the first window start less the double-tap interval to the last window end."""
    assert punch_range_needed(MONDAY, date(2026, 6, 3), config, BERLIN, the_shift) == (
        utc(expected[0]),
        utc(expected[1]),
    )


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(
            "2026-06-02 12:00", "2026-06-02 12:00", ("2026-06-02", "2026-06-02"), id="inside-day-window"
        ),
        pytest.param(
            "2026-06-02 06:30", "2026-06-02 06:30", ("2026-06-01", "2026-06-01"), id="previous-night"
        ),
        pytest.param(
            "2026-06-02 06:30", "2026-06-02 08:30", ("2026-06-01", "2026-06-02"), id="night-and-day"
        ),
        pytest.param(
            "2026-06-02 07:59", "2026-06-02 07:59", ("2026-06-02", "2026-06-02"), id="swallows-next-tap"
        ),
        pytest.param("2026-06-02 19:00", "2026-06-02 19:30", None, id="in-no-window"),
    ],
)
def test_work_dates_affected(start: str, end: str, expected: tuple[str, str] | None) -> None:
    """Late punches recompute the days whose windows they, or a tap they may swallow, fall in."""
    answer = work_dates_affected(local(BERLIN, start), local(BERLIN, end), DEFAULT_SHIFT_CONFIG, BERLIN)
    assert answer == (None if expected is None else tuple(date.fromisoformat(d) for d in expected))


PROPERTY_CONFIG = config_with(replace(LONG, workdays=EVERY_DAY), NIGHT, DAY)
PROPERTY_BASE = local(BERLIN, "2026-03-25 00:00")


@settings(max_examples=60, deadline=None, database=None)  # no .hypothesis/ left in the work tree
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=10 * 24 * 60), max_size=60),
    shift_code=st.sampled_from(sorted(PROPERTY_CONFIG.shifts)),
)
def test_range_equals_days_computed_alone_from_the_needed_punches(
    minutes: list[int], shift_code: str
) -> None:
    """Computing a week at once equals computing each day alone from only `punch_range_needed`'s punches."""
    config = replace(PROPERTY_CONFIG, default=shift_code)
    punches = [PROPERTY_BASE + timedelta(minutes=m) for m in minutes]
    first, last = date(2026, 3, 26), date(2026, 4, 1)
    whole = compute_attendance(employee(), punches, first, last, config, BERLIN)
    alone: list[DayResult] = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        lo, hi = punch_range_needed(day, day, config, BERLIN, config.shifts[shift_code])
        alone += compute_attendance(
            employee(), [p for p in punches if lo <= p <= hi], day, day, config, BERLIN
        )
    assert whole == alone
