"""The attendance rules of DESIGN §6 as pure functions: punches (real instants) in, attendance days out.

Everything is computed on aware datetimes; results carry UTC instants. Local dates and wall-clock shift
times are interpreted in the zone the caller passes (`HRSYNC_TIMEZONE`). The usual entry point is
`compute_attendance`; `punch_range_needed` tells its caller which punches to load, and
`work_dates_affected` tells which days to recompute when late punches arrive. The smaller functions are
public so each rule can be tested and reused on its own. Which shift runs on a date (rotations, dated
overrides, `off`) and which dates are holidays come from `ShiftConfig.shift_on`/`holidays_for`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache, lru_cache
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from pipelines.attendance.shifts import EVERY_DAY, OFF, Shift, ShiftConfig

AttendanceStatus = Literal[
    "present", "absent", "half_day", "missing_punch", "holiday", "off", "open", "on_leave"
]
AbsencePart = Literal["full", "am", "pm"]
EmployeeStatus = Literal["active", "inactive", "terminated"]
DayKind = Literal["workday", "holiday", "off"]

_ONE_DAY = timedelta(days=1)
_ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class ShiftInstance:
    """One occurrence of a shift: scheduled start/end and the closed punch window, all aware UTC.

    `work_date` is the local date of the scheduled start, the date the attendance row is filed under.
    """

    shift: Shift
    work_date: date
    start: datetime
    end: datetime
    window_start: datetime
    window_end: datetime

    def window_contains(self, instant: datetime) -> bool:
        """Whether `instant` lies in the punch window; both ends are included."""
        return self.window_start <= instant <= self.window_end

    @property
    def midpoint(self) -> datetime:
        """Halfway between start and end in real time, rounded down to the minute (a part absence's line)."""
        middle = self.start + (self.end - self.start) / 2
        return middle - timedelta(seconds=middle.second, microseconds=middle.microsecond)

    @property
    def scheduled_minutes(self) -> int:
        """end - start in real minutes (7 h for a 22:00-06:00 night over spring forward, 9 h over fall back)."""
        return (self.end - self.start) // _ONE_MINUTE


@dataclass(frozen=True)
class EmployeeFacts:
    """What the rules need to know about an employee (from the HRIS row)."""

    employee_no: str
    department: str | None
    status: EmployeeStatus
    hire_date: date | None
    termination_date: date | None


@dataclass(frozen=True)
class Absence:
    """An approved absence (the caller drops pending, rejected and cancelled ones); local dates, inclusive."""

    absence_id: str
    kind: str
    date_from: date
    date_to: date
    part: AbsencePart


@dataclass(frozen=True)
class DayAbsence:
    """What the approved absences covering one attendance date add up to (see `absence_on`)."""

    kind: str
    part: AbsencePart


@dataclass(frozen=True)
class DayResult:
    """One `attendance_days` row (without `execution_id`); `first_in`/`last_out` are aware UTC or None.

    With one punch, `first_in` is that punch and `last_out` is None: nothing tells whether it was an
    entry or an exit, and the status `missing_punch` (or `open`) says so. An `off` row (no shift that
    date) has shift code `off`. `absence_kind` is set whenever an approved absence covers the date.
    """

    employee_no: str
    work_date: date
    shift_code: str
    first_in: datetime | None
    last_out: datetime | None
    worked_minutes: int
    status: AttendanceStatus
    late_minutes: int
    early_exit_minutes: int
    punch_count: int
    overtime_minutes: int = 0
    absence_kind: str | None = None


@lru_cache(maxsize=8192)  # pure; a merge asks for the same (shift, date) ~7 times per employee and day
def shift_instance(shift: Shift, local_date: date, tz: ZoneInfo) -> ShiftInstance:
    """The instance of `shift` scheduled to start on `local_date` in `tz` (immutable, cached).

    A wall-clock time skipped by a spring-forward change moves forward by the gap (Berlin 02:30 on
    2026-03-29 becomes 03:30 CEST); a repeated one (fall back) is its first occurrence. An end earlier
    than the start falls on the next local day. Windows are widened in real minutes, not wall-clock ones.
    """
    end_date = local_date + _ONE_DAY if shift.end < shift.start else local_date
    start = _local_to_utc(datetime.combine(local_date, shift.start), tz)
    end = _local_to_utc(datetime.combine(end_date, shift.end), tz)
    return ShiftInstance(
        shift=shift,
        work_date=local_date,
        start=start,
        end=end,
        window_start=start - timedelta(minutes=shift.check_in_before),
        window_end=end + timedelta(minutes=shift.check_out_after),
    )


def _local_to_utc(wall_clock: datetime, tz: ZoneInfo) -> datetime:
    # fold=0 is PEP 495's "earlier" reading: in a gap it applies the offset from before the change, which
    # lands the gap's length later on the clock; in a repeat it picks the first occurrence.
    return wall_clock.replace(tzinfo=tz, fold=0).astimezone(UTC)


def dedupe_taps(instants: Iterable[datetime], double_tap_seconds: int) -> list[datetime]:
    """One person's taps, sorted, as UTC, without double taps.

    A tap strictly closer than `double_tap_seconds` to the previous *kept* tap is dropped, so a chain of
    quick taps keeps every tap that is at least the interval after the last kept one. Pass the person's
    whole stream (see `punch_range_needed`): which taps are kept depends on the taps before them.
    """
    interval = timedelta(seconds=double_tap_seconds)
    kept: list[datetime] = []
    for instant in sorted(_as_utc(i) for i in instants):
        if not kept or instant - kept[-1] >= interval:
            kept.append(instant)
    return kept


def assign_punches(
    instances: Iterable[ShiftInstance], punches: Iterable[datetime]
) -> dict[date, list[datetime]]:
    """Each instance's punches (sorted, UTC), keyed by `work_date`; every instance gets an entry.

    `instances` hold at most one instance per date, of any shifts. A punch goes to the earliest-starting
    instance whose closed window contains it, which settles overlapping windows of consecutive instances
    in favour of the earlier one; a punch in no window is left out. Dedupe first.
    """
    ordered = sorted(instances, key=lambda instance: instance.start)
    assigned: dict[date, list[datetime]] = {instance.work_date: [] for instance in ordered}
    if not ordered:
        return assigned
    # With mixed shifts window ends are not in start order; their running maximum is, and no instance
    # before the first whose running maximum reaches the punch can contain it.
    reach: list[datetime] = []
    for instance in ordered:
        reach.append(max(instance.window_end, reach[-1]) if reach else instance.window_end)
    lead = max(timedelta(minutes=instance.shift.check_in_before) for instance in ordered)
    for punch in sorted(_as_utc(p) for p in punches):
        for instance in ordered[bisect_left(reach, punch):]:
            if instance.start - lead > punch:
                break  # this and every later window opens after the punch
            if instance.window_contains(punch):
                assigned[instance.work_date].append(punch)
                break
    return assigned


def absence_on(work_date: date, absences: Iterable[Absence]) -> DayAbsence | None:
    """The approved absences covering `work_date` combined, or None.

    A `full` one wins (its kind; the lowest `absence_id` among several); `am` + `pm` make a full day;
    otherwise the part is the one given. The kind comes from the lowest `absence_id`, compared as text,
    among the winners.
    """
    covering = [a for a in absences if a.date_from <= work_date <= a.date_to]
    if not covering:
        return None
    parts = {a.part for a in covering}
    full = [a for a in covering if a.part == "full"]
    winner = min(full or covering, key=lambda a: a.absence_id)
    part: AbsencePart = "full" if full or {"am", "pm"} <= parts else winner.part
    return DayAbsence(kind=winner.kind, part=part)


def day_kind(work_date: date, shift: Shift, holidays: frozenset[date]) -> DayKind:
    """`holiday` beats `off` (a holiday on a non-workday is a holiday); otherwise the shift's workdays."""
    if work_date in holidays:
        return "holiday"
    return "workday" if work_date.weekday() in shift.workdays else "off"


def compute_day(
    employee_no: str,
    instance: ShiftInstance,
    punches: Sequence[datetime],
    holidays: frozenset[date],
    *,
    absence: DayAbsence | None = None,
    is_open: bool = False,
) -> DayResult:
    """The attendance row for one instance, given that instance's deduplicated punches.

    `punches` is the instance's entry from `assign_punches`. On a holiday or non-workday the same rules
    apply, but a result of `absent` (including no punch at all) is reported as `holiday`/`off`; on a
    workday a `full` absence turns `absent` into `on_leave`. A part absence (`am`/`pm`) on a workday halves
    what the day owes (see `status_for_worked_minutes`, `working_time`) and moves the late (`am`) or
    early-exit (`pm`) reference to the instance's midpoint. `is_open`: the window has not ended yet, so the
    row is `open` with what the punches so far show (late included, even from one punch) and no early exit.
    """
    taps = sorted(_as_utc(p) for p in punches)
    shift = instance.shift
    kind = day_kind(instance.work_date, shift, holidays)
    # Holidays and non-workdays owe nothing, so an absence there changes nothing but `absence_kind`.
    part = absence.part if absence is not None and kind == "workday" else None
    late_reference = instance.midpoint if part == "am" else instance.start
    exit_reference = instance.midpoint if part == "pm" else instance.end
    row = DayResult(
        employee_no=employee_no,
        work_date=instance.work_date,
        shift_code=shift.code,
        first_in=taps[0] if taps else None,
        last_out=taps[-1] if len(taps) > 1 else None,
        worked_minutes=0,
        status="absent",
        late_minutes=0,
        early_exit_minutes=0,
        punch_count=len(taps),
        absence_kind=absence.kind if absence is not None else None,
    )
    if is_open:
        so_far = working_time(taps, instance, part)
        late = late_minutes(instance, taps[0], reference=late_reference) if taps else 0
        return replace(
            row, status="open", late_minutes=late, worked_minutes=so_far.worked, overtime_minutes=so_far.overtime
        )
    if len(taps) == 1:
        return replace(row, status="missing_punch")
    status: AttendanceStatus = "absent"
    if taps:
        measured = working_time(taps, instance, part)
        status = status_for_worked_minutes(measured.net, shift, halved=part in ("am", "pm"))
        row = replace(
            row,
            worked_minutes=measured.worked,
            overtime_minutes=measured.overtime,
            late_minutes=late_minutes(instance, taps[0], reference=late_reference),
            early_exit_minutes=early_exit_minutes(instance, taps[-1], reference=exit_reference),
        )
    if status == "absent" and kind != "workday":
        status = kind
    elif status == "absent" and part == "full":
        status = "on_leave"
    return replace(row, status=status)


class WorkingTime(NamedTuple):
    """An instance's working time: `net` = W less any break (the status uses it), and the two reported values."""

    net: int
    worked: int
    overtime: int


def working_time(taps: Sequence[datetime], instance: ShiftInstance, part: AbsencePart | None) -> WorkingTime:
    """W less the break when W reaches `break_after_hours`; worked and overtime rounded to `round_minutes`.

    Overtime is the net time less the scheduled length (less the break when deducted, halved for a part
    absence) when that excess is strictly above `overtime_after_minutes`; 0 with fewer than two taps.
    """
    shift = instance.shift
    raw = worked_minutes(taps, shift)
    deducted = _at_least(raw, shift.break_after_hours)
    net = max(raw - shift.break_minutes, 0) if deducted else raw
    overtime = 0
    if shift.overtime_after_minutes is not None and len(taps) > 1:
        # A part absence halves the scheduled length; Fraction keeps an odd half-minute exact until the floor.
        scheduled = Fraction(instance.scheduled_minutes - (shift.break_minutes if deducted else 0))
        excess = net - (scheduled / 2 if part in ("am", "pm") else scheduled)
        if excess > shift.overtime_after_minutes:
            overtime = _round_down(int(excess), shift.round_minutes)
    return WorkingTime(net=net, worked=_round_down(net, shift.round_minutes), overtime=overtime)


def _round_down(minutes: int, multiple: int) -> int:
    return minutes - minutes % multiple


def worked_minutes(taps: Sequence[datetime], shift: Shift) -> int:
    """Working time of sorted taps in whole minutes, rounded down once on the total.

    `first_last`: last - first. `pairs`: (1st→2nd) + (3rd→4th) + …, an odd last tap ignored.
    """
    if len(taps) < 2:
        return 0
    if shift.working_time == "first_last":
        total = taps[-1] - taps[0]
    else:
        total = sum((taps[i + 1] - taps[i] for i in range(0, len(taps) - 1, 2)), timedelta())
    return total // _ONE_MINUTE


def status_for_worked_minutes(worked: int, shift: Shift, *, halved: bool = False) -> AttendanceStatus:
    """`absent` / `half_day` / `present` by strict "below" comparisons; a `None` threshold never applies.

    `halved` (a part-day absence): `half_day_below_hours` is off and `absent_below_hours` is halved.
    """
    if _below(worked, shift.absent_below_hours, Decimal(2) if halved else Decimal(1)):
        return "absent"
    if not halved and _below(worked, shift.half_day_below_hours):
        return "half_day"
    return "present"


def _below(worked: int, hours: float | None, divisor: Decimal = Decimal(1)) -> bool:
    # Decimal of the shortest repr keeps 4.15 h == 249 min exact; in floats 4.15 * 60 is 249.00000000000003.
    return hours is not None and worked < Decimal(repr(hours)) * 60 / divisor


def _at_least(worked: int, hours: float) -> bool:
    return not _below(worked, hours)


def late_minutes(instance: ShiftInstance, first: datetime, *, reference: datetime | None = None) -> int:
    """Whole minutes from scheduled start to `first`, if `first` is strictly after start + grace; else 0.

    `reference` replaces the start (an `am` absence moves it to the midpoint), for the test and the count.
    """
    start = instance.start if reference is None else reference
    grace = instance.shift.late_grace_minutes
    if grace is None or first <= start + timedelta(minutes=grace):
        return 0
    return (first - start) // _ONE_MINUTE


def early_exit_minutes(instance: ShiftInstance, last: datetime, *, reference: datetime | None = None) -> int:
    """Whole minutes from `last` to scheduled end, if `last` is strictly before end - grace; else 0.

    `reference` replaces the end (a `pm` absence moves it to the midpoint), for the test and the count.
    """
    end = instance.end if reference is None else reference
    grace = instance.shift.early_grace_minutes
    if grace is None or last >= end - timedelta(minutes=grace):
        return 0
    return (end - last) // _ONE_MINUTE


def compute_attendance(
    employee: EmployeeFacts,
    punches: Iterable[datetime],
    date_from: date,
    date_to: date,
    config: ShiftConfig,
    tz: ZoneInfo,
    *,
    absences: Sequence[Absence] = (),
    now: datetime | None = None,
) -> list[DayResult]:
    """One employee's attendance rows for the local dates `date_from`..`date_to` (inclusive), in date order.

    `punches` are the employee's non-void aware instants; pass at least every punch in
    `punch_range_needed(date_from, date_to, config, tz)` (more is harmless: punches outside the rows'
    windows count for no returned row). `absences` are the employee's approved ones. Rows exist only from
    `hire_date` to `termination_date` (inclusive, when set), and for an `inactive` employee only on days
    with at least one punch. A date whose resolved shift is `off` gets an `off` row (shift code `off`).
    `now` (aware): an instance whose window has not ended is `open`, one whose window has not begun gets no
    row (nor does an `off` date not yet begun); None computes every instance as closed.
    """
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    if now is not None and now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    now_utc = None if now is None else now.astimezone(UTC)
    first, last = _employed_span(employee, date_from, date_to)
    if first > last:
        return []
    no, department = employee.employee_no, employee.department
    # Earlier instances whose windows reach into the first row's window take the punches they share.
    instances: dict[date, ShiftInstance] = {}
    for day in _dates(_lookback_start(config, first, tz), last):
        shift, by_rotation = config.roster_on(no, department, day)
        if shift is not None:
            instances[day] = shift_instance(_every_day_a_workday(shift) if by_rotation else shift, day, tz)
    assigned = assign_punches(instances.values(), dedupe_taps(punches, config.double_tap_seconds))
    holidays = config.holidays_for(no, department)
    rows: list[DayResult] = []
    for day in _dates(first, last):
        absence = absence_on(day, absences)
        instance = instances.get(day)
        if instance is None:
            if employee.status != "inactive" and (now_utc is None or now_utc >= _local_midnight(day, tz)):
                rows.append(off_row(no, day, absence))
            continue
        day_punches = assigned[day]
        if (now_utc is not None and now_utc < instance.window_start) or (
            employee.status == "inactive" and not day_punches
        ):
            continue
        is_open = now_utc is not None and now_utc <= instance.window_end
        rows.append(compute_day(no, instance, day_punches, holidays, absence=absence, is_open=is_open))
    return rows


def off_row(employee_no: str, work_date: date, absence: DayAbsence | None = None) -> DayResult:
    """The row of a date with no shift (`off`): zeros and no punches, also on a holiday."""
    return DayResult(
        employee_no=employee_no,
        work_date=work_date,
        shift_code=OFF,
        first_in=None,
        last_out=None,
        worked_minutes=0,
        status="off",
        late_minutes=0,
        early_exit_minutes=0,
        punch_count=0,
        absence_kind=absence.kind if absence is not None else None,
    )


def punch_range_needed(
    date_from: date, date_to: date, config: ShiftConfig, tz: ZoneInfo, shift: Shift | None = None
) -> tuple[datetime, datetime]:
    """The closed UTC span of punches `compute_attendance` needs for `date_from`..`date_to`.

    Covers, for every shift of `config` (or only `shift`), the windows of the instances on those dates,
    plus `double_tap_seconds` before the first window so the tap just before it can swallow a double tap.
    Punches in the part of the previous day's window that does not overlap `date_from`'s are not needed:
    the overlap rule needs that instance's window, which comes from the configuration, not its punches.
    Exact unless taps spaced closer than `double_tap_seconds` form an unbroken chain back past the start
    (only then does an older tap decide which of them are kept); no real clocking pattern does that.
    """
    shifts = [shift] if shift is not None else list(config.shifts.values())
    start = min(shift_instance(s, date_from, tz).window_start for s in shifts)
    end = max(shift_instance(s, date_to, tz).window_end for s in shifts)
    return start - timedelta(seconds=config.double_tap_seconds), end


def work_dates_affected(
    start_utc: datetime, end_utc: datetime, config: ShiftConfig, tz: ZoneInfo
) -> tuple[date, date] | None:
    """The local dates whose rows may change when punches in [`start_utc`, `end_utc`] arrive, or None.

    A new tap can also swallow a tap up to `double_tap_seconds` after it, so the span is widened by that
    much. The answer is the union over all shifts of `config` (the caller need not know who tapped).
    """
    lo, hi = _as_utc(start_utc), _as_utc(end_utc) + timedelta(seconds=config.double_tap_seconds)
    spans = [span for s in config.shifts.values() if (span := _dates_with_window_in(s, lo, hi, tz))]
    if not spans:
        return None
    return min(first for first, _ in spans), max(last for _, last in spans)


def _dates_with_window_in(shift: Shift, lo: datetime, hi: datetime, tz: ZoneInfo) -> tuple[date, date] | None:
    # The instance starting the local day after `lo` surely ends after `lo`, and the one starting the day
    # before `hi` surely starts before it; walk outwards from there while windows still touch the span.
    first = lo.astimezone(tz).date() + _ONE_DAY
    while shift_instance(shift, first - _ONE_DAY, tz).window_end >= lo:
        first -= _ONE_DAY
    last = hi.astimezone(tz).date() - _ONE_DAY
    while shift_instance(shift, last + _ONE_DAY, tz).window_start <= hi:
        last += _ONE_DAY
    return (first, last) if first <= last else None


def _lookback_start(config: ShiftConfig, local_date: date, tz: ZoneInfo) -> date:
    """The first date whose instance, of whatever shift, may still reach a window of `local_date` or later."""
    shifts = list(config.shifts.values())
    earliest_open = min(shift_instance(s, local_date, tz).window_start for s in shifts)
    earliest = local_date
    while max(shift_instance(s, earliest - _ONE_DAY, tz).window_end for s in shifts) >= earliest_open:
        earliest -= _ONE_DAY
    return earliest


@cache
@lru_cache(maxsize=256)
def _every_day_a_workday(shift: Shift) -> Shift:
    """`shift` as a rotation runs it: the pattern is the roster, so `workdays` do not apply."""
    return replace(shift, workdays=EVERY_DAY)


def _local_midnight(local_date: date, tz: ZoneInfo) -> datetime:
    return _local_to_utc(datetime.combine(local_date, datetime.min.time()), tz)


def _employed_span(employee: EmployeeFacts, date_from: date, date_to: date) -> tuple[date, date]:
    first = max(date_from, employee.hire_date) if employee.hire_date else date_from
    last = min(date_to, employee.termination_date) if employee.termination_date else date_to
    return first, last


def _dates(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


def _as_utc(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError(f"punch instants must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)
