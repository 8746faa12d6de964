"""DESIGN §6's newer day rules as tables: absences, breaks and overtime, rounding, days in progress, `off`.

Every expectation is derived by hand from DESIGN §6; the comment next to each case says how. Unless a case
says otherwise the shift is DESIGN's `day`: 09:00-17:00 Berlin, window 08:00-18:00, `first_last`,
absent below 2 h (120 min), half day below 4 h (240 min), grace 10/10, Monday to Friday; June is CEST.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipelines.attendance.rules import (
    Absence,
    AbsencePart,
    DayResult,
    EmployeeFacts,
    compute_attendance,
)
from pipelines.attendance.shifts import DEFAULT_SHIFT_CONFIG, EVERY_DAY, Rotation, Shift, ShiftConfig

BERLIN = ZoneInfo("Europe/Berlin")
DAY = DEFAULT_SHIFT_CONFIG.shifts["day"]
NIGHT = DEFAULT_SHIFT_CONFIG.shifts["night"]
MONDAY = date(2026, 6, 1)
THURSDAY = date(2026, 6, 4)  # the holiday of these tables
SATURDAY = date(2026, 6, 6)
# DAY with a 30-minute break after 6 h and overtime past 15 minutes.
DAY_OT = replace(DAY, break_minutes=30, break_after_hours=6, overtime_after_minutes=15)


def at(day: date, clock: str) -> datetime:
    """The Berlin instant at wall-clock `clock` (HH:MM[:SS]) on `day`; first pass of a repeated hour."""
    return datetime.fromisoformat(f"{day.isoformat()} {clock}").replace(tzinfo=BERLIN)


def utc(text: str) -> datetime:
    """An aware UTC instant from `YYYY-MM-DD HH:MM[:SS]`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def away(part: AbsencePart, kind: str = "vacation", absence_id: str = "A1", day: date = MONDAY) -> Absence:
    """An approved absence of one day."""
    return Absence(absence_id, kind, day, day, part)


def config_of(the_shift: Shift, **changes: Any) -> ShiftConfig:
    """A configuration whose default is `the_shift`, holiday on THURSDAY."""
    return replace(
        ShiftConfig(60, {the_shift.code: the_shift}, the_shift.code, holidays=frozenset({THURSDAY})), **changes
    )


def rows(
    clock: list[str],
    *,
    day: date = MONDAY,
    the_shift: Shift = DAY,
    absences: tuple[Absence, ...] = (),
    now: datetime | None = None,
    config: ShiftConfig | None = None,
) -> list[DayResult]:
    """E0001's rows for `day` alone, from Berlin punches on `day` at the `clock` times."""
    facts = EmployeeFacts("E0001", "Sales", "active", None, None)
    punches = [at(day, c) for c in clock]
    return compute_attendance(
        facts, punches, day, day, config or config_of(the_shift), BERLIN, absences=absences, now=now
    )


def summary(row: DayResult) -> tuple[str, int, int, int, str | None]:
    """(status, worked, late, early, absence_kind) of a row."""
    return (row.status, row.worked_minutes, row.late_minutes, row.early_exit_minutes, row.absence_kind)


# --- absences against every status ----------------------------------------------------------------------

FULL = (away("full"),)
AM = (away("am"),)
PM = (away("pm"),)
V = "vacation"


@pytest.mark.parametrize(
    ("absences", "clock", "expected"),
    [
        # no punch on a workday is absent; a full absence turns absent into on_leave
        pytest.param(FULL, [], ("on_leave", 0, 0, 0, V), id="full-no-punch-on-leave"),
        # 480 >= 240 is present; punches are facts, a full absence changes only absent
        pytest.param(FULL, ["09:00", "17:00"], ("present", 480, 0, 0, V), id="full-worked-present"),
        # 60 < 120 is absent, so on_leave; worked stays, early 17:00 - 10:00 = 420
        pytest.param(FULL, ["09:00", "10:00"], ("on_leave", 60, 0, 420, V), id="full-short-day-on-leave"),
        # 180 < 240 is half_day, which a full absence leaves alone; early 17:00 - 12:00 = 300
        pytest.param(FULL, ["09:00", "12:00"], ("half_day", 180, 0, 300, V), id="full-half-day-stands"),
        # one punch is missing_punch whatever the absence
        pytest.param(FULL, ["09:00"], ("missing_punch", 0, 0, 0, V), id="full-missing-punch-stands"),
        # the full absence leaves late alone: 09:30 > 09:10, 30 min after 09:00
        pytest.param(FULL, ["09:30", "17:00"], ("present", 450, 30, 0, V), id="full-late-unchanged"),
        # a part absence never gives on_leave: half the day was owed
        pytest.param(AM, [], ("absent", 0, 0, 0, V), id="am-no-punch-absent"),
        # half_day off, 240 >= 60 (2 h halved); 13:00 <= midpoint 13:00 + 10
        pytest.param(AM, ["13:00", "17:00"], ("present", 240, 0, 0, V), id="am-afternoon-present"),
        # late measured from the midpoint 13:00: 13:20 > 13:10, 20 min
        pytest.param(AM, ["13:20", "17:00"], ("present", 220, 20, 0, V), id="am-late-from-midpoint"),
        # the grace test uses the midpoint too: 13:10 is not strictly after 13:10
        pytest.param(AM, ["13:10", "17:00"], ("present", 230, 0, 0, V), id="am-on-midpoint-grace"),
        # 50 < 60 (absent_below_hours halved) is absent, never on_leave; early 17:00 - 13:50 = 190
        pytest.param(AM, ["13:00", "13:50"], ("absent", 50, 0, 190, V), id="am-below-halved-absent"),
        # 60 is not below 60, and half_day is off for the day: present; early 17:00 - 14:00 = 180
        pytest.param(AM, ["13:00", "14:00"], ("present", 60, 0, 180, V), id="am-at-halved-threshold-present"),
        # one punch stays missing_punch with a part absence
        pytest.param(AM, ["13:00"], ("missing_punch", 0, 0, 0, V), id="am-missing-punch"),
        # pm moves the early-exit reference to 13:00: 13:00 is not before 12:50
        pytest.param(PM, ["09:00", "13:00"], ("present", 240, 0, 0, V), id="pm-morning-present"),
        # 12:40 < 12:50, so early by 13:00 - 12:40 = 20
        pytest.param(PM, ["09:00", "12:40"], ("present", 220, 0, 20, V), id="pm-early-from-midpoint"),
        # 12:55 >= 12:50: inside the grace of the moved reference
        pytest.param(PM, ["09:00", "12:55"], ("present", 235, 0, 0, V), id="pm-within-grace"),
        # pm leaves the late reference at 09:00: 09:20 > 09:10, 20 min
        pytest.param(PM, ["09:20", "13:00"], ("present", 220, 20, 0, V), id="pm-late-from-start"),
        # 50 < 60 is absent; early from the midpoint, 13:00 - 09:50 = 190
        pytest.param(PM, ["09:00", "09:50"], ("absent", 50, 0, 190, V), id="pm-below-halved-absent"),
        # am (A1 vacation) + pm (A2 sick) make a full day; the lowest id gives the kind
        pytest.param(
            (away("am", "vacation", "A1"), away("pm", "sick", "A2")), [], ("on_leave", 0, 0, 0, "vacation"),
            id="am-plus-pm-full-day",
        ),
        # the same with ids swapped: A1 is the sick one now
        pytest.param(
            (away("am", "vacation", "A2"), away("pm", "sick", "A1")), [], ("on_leave", 0, 0, 0, "sick"),
            id="am-plus-pm-lowest-id-kind",
        ),
        # a full one wins over a part one, even with the higher id
        pytest.param(
            (away("full", "sick", "A2"), away("am", "vacation", "A1")), [], ("on_leave", 0, 0, 0, "sick"),
            id="full-beats-part",
        ),
        # "A10" < "A9" as text
        pytest.param(
            (away("full", "training", "A9"), away("full", "sick", "A10")), [], ("on_leave", 0, 0, 0, "sick"),
            id="ids-compared-as-text",
        ),
        # two am absences are still half a day: absent, kind of the lowest id
        pytest.param(
            (away("am", "training", "A3"), away("am", "vacation", "A2")), [], ("absent", 0, 0, 0, "vacation"),
            id="two-am-still-part",
        ),
        # an absence ending the day before covers nothing
        pytest.param(
            (Absence("A1", "sick", date(2026, 5, 25), date(2026, 5, 31), "full"),), [], ("absent", 0, 0, 0, None),
            id="absence-ending-before",
        ),
        # inclusive range from the Friday before to this Monday covers it
        pytest.param(
            (Absence("A1", "sick", date(2026, 5, 29), MONDAY, "full"),), [], ("on_leave", 0, 0, 0, "sick"),
            id="absence-range-inclusive",
        ),
    ],
)
def test_absences_on_a_workday(absences: tuple[Absence, ...], clock: list[str], expected: tuple[Any, ...]) -> None:
    """A full absence only renames absent; a part one halves what the day owes and moves a reference."""
    (row,) = rows(clock, absences=absences)
    assert summary(row) == expected


@pytest.mark.parametrize(
    ("day", "absences", "clock", "expected"),
    [
        # holidays stay as they are: no punch on a holiday is holiday, the kind is recorded
        pytest.param(THURSDAY, FULL, [], ("holiday", 0, 0, 0, V), id="full-on-holiday"),
        # 60 < 120 on a holiday is reported holiday, not on_leave; early 17:00 - 10:00 = 420
        pytest.param(THURSDAY, FULL, ["09:00", "10:00"], ("holiday", 60, 0, 420, V), id="full-holiday-short"),
        # a part absence on a holiday changes nothing: 60 < 120 (not halved) is holiday, early from 17:00
        pytest.param(THURSDAY, PM, ["09:00", "10:00"], ("holiday", 60, 0, 420, V), id="pm-holiday-not-halved"),
        # Saturday is no workday of DAY: off, the kind recorded, shift code kept
        pytest.param(SATURDAY, FULL, [], ("off", 0, 0, 0, V), id="full-on-non-workday"),
        # am on a non-workday: nothing halved, so 13:20 is 260 min late from 09:00
        pytest.param(SATURDAY, AM, ["13:20", "17:00"], ("half_day", 220, 260, 0, V), id="am-non-workday-unchanged"),
    ],
)
def test_absences_on_holidays_and_non_workdays(
    day: date, absences: tuple[Absence, ...], clock: list[str], expected: tuple[Any, ...]
) -> None:
    """Holidays and non-workdays stay as they are under an absence; only `absence_kind` is added."""
    dated = tuple(replace(a, date_from=day, date_to=day) for a in absences)
    (row,) = rows(clock, day=day, absences=dated)
    assert (summary(row), row.shift_code) == (expected, "day")


def test_midpoint_is_rounded_down_to_the_minute() -> None:
    """09:00-16:59 has its midpoint at 12:59:30, rounded down to 12:59; 13:09:15 is past 12:59 + 10."""
    (row,) = rows(["13:09:15", "16:59"], the_shift=replace(DAY, end=time(16, 59)), absences=AM)
    # late = 13:09:15 - 12:59 = 10 min 15 s, rounded down to 10 (unrounded 12:59:30 + 10 would not be late)
    assert row.late_minutes == 10


def test_midpoint_of_a_night_over_the_autumn_change_is_in_real_time() -> None:
    """22:00-06:00 on 2026-10-24 lasts 9 real hours, so an am absence moves the late line to 02:30 CEST."""
    night = replace(NIGHT, workdays=EVERY_DAY)
    day = date(2026, 10, 24)
    # start 20:00Z + 4 h 30 = 00:30Z (02:30 CEST, first pass); 00:45Z is 15 min after it, > 10 grace
    punches = [utc("2026-10-25 00:45"), utc("2026-10-25 05:00")]
    facts = EmployeeFacts("E0001", None, "active", None, None)
    (row,) = compute_attendance(facts, punches, day, day, config_of(night), BERLIN, absences=(away("am", day=day),))
    # worked 00:45Z-05:00Z = 255 >= 60 (the night's 2 h halved): present
    assert (row.status, row.late_minutes, row.worked_minutes) == ("present", 15, 255)


# --- breaks, overtime and rounding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "clock", "expected"),
    [
        # W 360 = 6 h exactly: the break is deducted (W >= 6 h), 330; 330 - 450 is no overtime
        pytest.param({}, ["09:00", "15:00"], ("present", 330, 0), id="break-exactly-at-threshold"),
        # W 359 < 360: no break
        pytest.param({}, ["09:00", "14:59"], ("present", 359, 0), id="break-minute-below-threshold"),
        # W 495 - 30 = 465; scheduled 480 - 30 = 450; excess 15 is not strictly more than 15
        pytest.param({}, ["09:00", "17:15"], ("present", 465, 0), id="overtime-exactly-at-threshold"),
        # W 496 - 30 = 466; excess 16 > 15: overtime 16
        pytest.param({}, ["09:00", "17:16"], ("present", 466, 16), id="overtime-minute-past-threshold"),
        # rounding to 15: worked 466 -> 465, overtime 16 -> 15
        pytest.param({"round_minutes": 15}, ["09:00", "17:16"], ("present", 465, 15), id="round-15"),
        # excess 29 > 15 compared first, then rounded down to 15
        pytest.param({"round_minutes": 15}, ["09:00", "17:29"], ("present", 465, 15), id="round-after-compare"),
        # overtime null is off: W 540 - 30 = 510 but overtime 0
        pytest.param({"overtime_after_minutes": None}, ["08:30", "17:30"], ("present", 510, 0), id="overtime-off"),
        # threshold 0: excess 1 > 0 (W 481 - 30 - 450)
        pytest.param({"overtime_after_minutes": 0}, ["09:00", "17:01"], ("present", 451, 1), id="overtime-zero"),
        # status uses W before rounding: 250 >= 240 is present, reported 240 after rounding to 60
        pytest.param(
            {"round_minutes": 60, "break_minutes": 0}, ["09:00", "13:10"], ("present", 240, 0),
            id="status-before-rounding",
        ),
        # the break counts for the status: W 250 >= 4 h, 250 - 30 = 220 < 240 is half_day
        pytest.param({"break_after_hours": 4}, ["09:00", "13:10"], ("half_day", 220, 0), id="break-then-status"),
        # pairs: (09:00-12:00) + (12:30-17:30) = 480 >= 360, less 30 = 450; excess 0
        pytest.param(
            {"working_time": "pairs"}, ["09:00", "12:00", "12:30", "17:30"], ("present", 450, 0), id="pairs-break"
        ),
    ],
)
def test_breaks_overtime_and_rounding(
    changes: dict[str, Any], clock: list[str], expected: tuple[str, int, int]
) -> None:
    """Break at >= its threshold, overtime strictly past its threshold, rounding down after the comparisons."""
    (row,) = rows(clock, the_shift=replace(DAY_OT, **changes))
    assert (row.status, row.worked_minutes, row.overtime_minutes) == expected


@pytest.mark.parametrize(
    ("day", "absences", "clock", "expected"),
    [
        # holiday with punches: the same formula, W 540 - 30 = 510, excess 510 - 450 = 60
        pytest.param(THURSDAY, (), ["09:00", "18:00"], ("present", 510, 60), id="overtime-on-holiday"),
        # non-workday with punches: the same
        pytest.param(SATURDAY, (), ["09:00", "18:00"], ("present", 510, 60), id="overtime-on-non-workday"),
        # am absence halves the scheduled length: no break (300 < 360), 300 - 480/2 = 60 > 15
        pytest.param(MONDAY, AM, ["13:00", "18:00"], ("present", 300, 60), id="overtime-part-absence-halved"),
        # one punch: worked 0, no overtime
        pytest.param(MONDAY, (), ["09:00"], ("missing_punch", 0, 0), id="overtime-one-punch"),
    ],
)
def test_overtime_on_other_days(
    day: date, absences: tuple[Absence, ...], clock: list[str], expected: tuple[str, int, int]
) -> None:
    """Overtime follows the same formula on holidays and non-workdays, and halves with a part absence."""
    dated = tuple(replace(a, date_from=day, date_to=day) for a in absences)
    (row,) = rows(clock, day=day, the_shift=DAY_OT, absences=dated)
    assert (row.status, row.worked_minutes, row.overtime_minutes) == expected


def test_halved_odd_scheduled_length_is_exact() -> None:
    """09:00-16:59 (479 min) with a pm absence owes 239.5 min: 241 worked is 1.5 over, > 1, rounded down to 1."""
    the_shift = replace(DAY, end=time(16, 59), overtime_after_minutes=1)
    (row,) = rows(["09:00", "13:01"], the_shift=the_shift, absences=PM)
    assert (row.worked_minutes, row.overtime_minutes) == (241, 1)


@pytest.mark.parametrize(
    ("day", "punches", "expected"),
    [
        # 22:00 CEST (20:00Z) to 06:00 CET (05:00Z) is 9 real hours; 19:55Z-05:40Z = 585; 585 - 540 = 45
        pytest.param(date(2026, 10, 24), ("2026-10-24 19:55", "2026-10-25 05:40"), (585, 45), id="autumn-9h"),
        # the wall clock says 8 h 45 min, but 21:00Z-05:00Z is 480 real minutes, 480 - 540 < 0
        pytest.param(date(2026, 10, 24), ("2026-10-24 20:00", "2026-10-25 04:00"), (480, 0), id="autumn-8h-real"),
        # 22:00 CET (21:00Z) to 06:00 CEST (04:00Z) is 7 real hours; 21:00Z-04:30Z = 450; 450 - 420 = 30
        pytest.param(date(2026, 3, 28), ("2026-03-28 21:00", "2026-03-29 04:30"), (450, 30), id="spring-7h"),
    ],
)
def test_night_overtime_past_midnight_across_dst(
    day: date, punches: tuple[str, str], expected: tuple[int, int]
) -> None:
    """A night's overtime compares real worked minutes with its real scheduled length over a DST change."""
    night = replace(NIGHT, workdays=EVERY_DAY, check_out_after=120, overtime_after_minutes=0)
    facts = EmployeeFacts("E0001", None, "active", None, None)
    (row,) = compute_attendance(facts, [utc(p) for p in punches], day, day, config_of(night), BERLIN)
    assert (row.worked_minutes, row.overtime_minutes) == expected


# --- days in progress -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "clock", "expected"),
    [
        # window 08:00-18:00 not ended at 12:00: open; one punch: first_in only, late 20 (09:20 > 09:10)
        pytest.param("12:00", ["09:20"], ("open", 0, 20, 0, 1, "09:20", None), id="open-one-punch-late"),
        # two punches so far: worked 60 as far as they go
        pytest.param("12:00", ["09:00", "10:00"], ("open", 60, 0, 0, 2, "09:00", "10:00"), id="open-two-punches"),
        # no punch yet: open, never absent
        pytest.param("12:00", [], ("open", 0, 0, 0, 0, None, None), id="open-no-punch-not-absent"),
        # leaving at 16:00 with the window still open: early_exit 0 (a closed day would be 60)
        pytest.param("17:30", ["09:00", "16:00"], ("open", 420, 0, 0, 2, "09:00", "16:00"), id="open-no-early"),
        # the window is closed at both ends: at 08:00 it has begun
        pytest.param("08:00", [], ("open", 0, 0, 0, 0, None, None), id="open-at-window-start"),
        # at 18:00 a punch could still count: open
        pytest.param("18:00", ["09:00", "17:00"], ("open", 480, 0, 0, 2, "09:00", "17:00"), id="open-at-window-end"),
        # a second later the window has ended: the normal closed rules, absent
        pytest.param("18:00:01", [], ("absent", 0, 0, 0, 0, None, None), id="closed-after-window-end"),
        # closed with 09:00-16:00: early 60, 420 present
        pytest.param("18:00:01", ["09:00", "16:00"], ("present", 420, 0, 60, 2, "09:00", "16:00"), id="closed-early"),
    ],
)
def test_days_in_progress(now: str, clock: list[str], expected: tuple[Any, ...]) -> None:
    """A window not ended at `now` gives an `open` row with what the punches show so far and no early exit."""
    (row,) = rows(clock, now=at(MONDAY, now))
    first_in, last_out = (None if c is None else at(MONDAY, c) for c in expected[5:])
    assert (row.status, row.worked_minutes, row.late_minutes, row.early_exit_minutes, row.punch_count) == expected[:5]
    assert (row.first_in, row.last_out) == (first_in, last_out)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # window opens at 08:00; at 07:59:59 it has not begun: no row
        pytest.param("07:59:59", [], id="not-begun-no-row"),
        # begun at 08:00 exactly
        pytest.param("08:00", ["open"], id="begun-at-start"),
    ],
)
def test_an_instance_not_begun_gets_no_row(now: str, expected: list[str]) -> None:
    """An instance whose window starts after `now` gets no row."""
    assert [row.status for row in rows([], now=at(MONDAY, now))] == expected


def test_open_night_and_the_next_night_not_begun() -> None:
    """At Tuesday 03:00 Monday's night (window to 07:00) is open and Tuesday's (from 21:00) has no row."""
    facts = EmployeeFacts("E0001", None, "active", None, None)
    punches = [at(MONDAY, "22:05")]
    result = compute_attendance(
        facts, punches, MONDAY, date(2026, 6, 2), config_of(NIGHT), BERLIN, now=at(date(2026, 6, 2), "03:00")
    )
    # one punch, 22:05 <= 22:00 + 10: late 0
    assert [(r.work_date, r.status, r.late_minutes, r.first_in) for r in result] == [
        (MONDAY, "open", 0, punches[0])
    ]


def test_open_day_with_absences_keeps_open_and_records_the_kind() -> None:
    """An open instance is never on_leave; an am absence measures the late minutes so far from the midpoint."""
    (full,) = rows([], absences=FULL, now=at(MONDAY, "12:00"))
    (part,) = rows(["13:25"], absences=AM, now=at(MONDAY, "14:00"))
    # no punch: open (on_leave only replaces absent); 13:25 > 13:10, late 25 from the midpoint 13:00
    assert (full.status, full.absence_kind, part.status, part.late_minutes) == ("open", V, "open", 25)


# --- off days from rotations ----------------------------------------------------------------------------

# night, then off, repeating from Monday 2026-06-01: Monday night, Tuesday off, Wednesday night, ...
NIGHT_OFF = config_of(
    NIGHT,
    default="nights",
    rotations={"nights": Rotation("nights", MONDAY, ("night", "off"))},
    holiday_calendars={},
)


def test_off_day_keeps_the_previous_nights_punches() -> None:
    """Tuesday is `off`: the 06:30 punch belongs to Monday's night (window to 07:00), 12:00 to no day."""
    facts = EmployeeFacts("E0001", None, "active", None, None)
    tuesday = date(2026, 6, 2)
    punches = [at(MONDAY, "22:00"), at(tuesday, "06:30"), at(tuesday, "12:00")]
    monday, off = compute_attendance(facts, punches, MONDAY, tuesday, NIGHT_OFF, BERLIN)
    # Monday 22:00-06:30 = 510, present, last_out 06:30
    assert (monday.status, monday.worked_minutes, monday.last_out) == ("present", 510, punches[1])
    # the off row: status off, shift code off, zeros, no first_in/last_out
    assert (off.status, off.shift_code, off.worked_minutes, off.punch_count, off.first_in, off.last_out) == (
        "off", "off", 0, 0, None, None
    )


def test_off_day_alone_with_punches_and_a_holiday() -> None:
    """Computing the off Tuesday alone, on a holiday and under an absence, is still an `off` row."""
    facts = EmployeeFacts("E0001", None, "active", None, None)
    tuesday = date(2026, 6, 2)
    config = replace(NIGHT_OFF, holidays=frozenset({tuesday}))
    punches = [at(tuesday, "06:30"), at(tuesday, "12:00"), at(tuesday, "15:00")]
    (row,) = compute_attendance(facts, punches, tuesday, tuesday, config, BERLIN, absences=(away("full", day=tuesday),))
    # off beats holiday; the punches are Monday's (06:30) or nobody's; the absence's kind is recorded
    assert (row.status, row.shift_code, row.punch_count, row.absence_kind) == ("off", "off", 0, V)


def test_rotation_days_ignore_the_shifts_workdays() -> None:
    """The night shift works Monday-Friday, but through a rotation Saturday is a workday (absent, not off)."""
    facts = EmployeeFacts("E0001", None, "active", None, None)
    sunday = date(2026, 6, 7)
    result = compute_attendance(facts, [], SATURDAY, sunday, NIGHT_OFF, BERLIN)
    # Saturday: (6 - 1 days) mod 2 = 1 -> off; Sunday: 6 mod 2 = 0 -> night, no punch: absent
    assert [(r.work_date, r.shift_code, r.status) for r in result] == [
        (SATURDAY, "off", "off"), (sunday, "night", "absent")
    ]


def test_off_day_not_begun_gets_no_row() -> None:
    """An `off` date after `now` (its local day not begun) gets no row, like an instance not begun."""
    facts = EmployeeFacts("E0001", None, "active", None, None)
    tuesday = date(2026, 6, 2)
    result = compute_attendance(facts, [], MONDAY, tuesday, NIGHT_OFF, BERLIN, now=at(MONDAY, "23:00"))
    # Monday's night window (21:00 Mon-07:00 Tue) is open at 23:00; Tuesday 00:00 is after now
    assert [(r.work_date, r.status) for r in result] == [(MONDAY, "open")]


def test_inactive_employee_gets_no_off_rows() -> None:
    """An inactive employee gets rows only for days with punches, and an off day never has any."""
    facts = EmployeeFacts("E0001", None, "inactive", None, None)
    result = compute_attendance(facts, [], MONDAY, date(2026, 6, 2), NIGHT_OFF, BERLIN)
    assert result == []


def test_open_and_closed_rows_back_to_back_equal_the_closed_ones_after_the_window() -> None:
    """With `now` an hour after the window ends, rows are exactly those computed without `now`."""
    punches = [at(MONDAY, "09:00"), at(MONDAY, "17:00")]
    facts = EmployeeFacts("E0001", None, "active", None, None)
    later = at(MONDAY, "18:00") + timedelta(hours=1)
    assert compute_attendance(facts, punches, MONDAY, MONDAY, config_of(DAY), BERLIN, now=later) == (
        compute_attendance(facts, punches, MONDAY, MONDAY, config_of(DAY), BERLIN)
    )


def test_naive_now_is_an_error() -> None:
    """`now` without a zone is a caller bug: it cannot be compared with real instants."""
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        rows([], now=datetime(2026, 6, 1, 12, 0))
