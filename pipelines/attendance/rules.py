"""The attendance rules of DESIGN §6 as pure functions: punches (real instants) in, attendance days out.

Everything is computed on aware datetimes; results carry UTC instants. Local dates and wall-clock shift
times are interpreted in the zone the caller passes (`HRSYNC_TIMEZONE`). The usual entry point is
`compute_attendance`; `punch_range_needed` tells its caller which punches to load, and
`work_dates_affected` tells which days to recompute when late punches arrive. The smaller functions are
public so each rule can be tested and reused on its own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pipelines.attendance.shifts import Shift, ShiftConfig

AttendanceStatus = Literal["present", "absent", "half_day", "missing_punch", "holiday", "off"]
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


@dataclass(frozen=True)
class EmployeeFacts:
    """What the rules need to know about an employee (from the HRIS row)."""

    employee_no: str
    department: str | None
    status: EmployeeStatus
    hire_date: date | None
    termination_date: date | None


@dataclass(frozen=True)
class DayResult:
    """One `attendance_days` row (without `execution_id`); `first_in`/`last_out` are aware UTC or None.

    With one punch, `first_in` is that punch and `last_out` is None: nothing tells whether it was an
    entry or an exit, and the status `missing_punch` says so.
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


def shift_instance(shift: Shift, local_date: date, tz: ZoneInfo) -> ShiftInstance:
    """The instance of `shift` scheduled to start on `local_date` in `tz`.

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

    `instances` must be instances of one shift (their windows then start and end in date order). A punch
    goes to the earliest instance whose closed window contains it, which settles overlapping windows of
    consecutive instances in favour of the earlier one; a punch in no window is left out. Dedupe first.
    """
    ordered = sorted(instances, key=lambda instance: instance.start)
    window_ends = [instance.window_end for instance in ordered]
    assigned: dict[date, list[datetime]] = {instance.work_date: [] for instance in ordered}
    for punch in sorted(_as_utc(p) for p in punches):
        # The first window ending at or after the punch is the only earliest candidate: windows before it
        # have ended, and if this one has not started yet, no later one has.
        index = bisect_left(window_ends, punch)
        if index < len(ordered) and ordered[index].window_contains(punch):
            assigned[ordered[index].work_date].append(punch)
    return assigned


def day_kind(work_date: date, shift: Shift, holidays: frozenset[date]) -> DayKind:
    """`holiday` beats `off` (a holiday on a non-workday is a holiday); otherwise the shift's workdays."""
    if work_date in holidays:
        return "holiday"
    return "workday" if work_date.weekday() in shift.workdays else "off"


def compute_day(
    employee_no: str, instance: ShiftInstance, punches: Sequence[datetime], holidays: frozenset[date]
) -> DayResult:
    """The attendance row for one instance, given that instance's deduplicated punches.

    `punches` is the instance's entry from `assign_punches`. On a holiday or non-workday the same rules
    apply, but a result of `absent` (including no punch at all) is reported as `holiday`/`off`.
    """
    taps = sorted(_as_utc(p) for p in punches)
    shift = instance.shift
    kind = day_kind(instance.work_date, shift, holidays)
    if not taps:
        return _row(employee_no, instance, "absent" if kind == "workday" else kind)
    if len(taps) == 1:
        return _row(employee_no, instance, "missing_punch", first_in=taps[0], punch_count=1)
    worked = worked_minutes(taps, shift)
    status = status_for_worked_minutes(worked, shift)
    if status == "absent" and kind != "workday":
        status = kind
    return DayResult(
        employee_no=employee_no,
        work_date=instance.work_date,
        shift_code=shift.code,
        first_in=taps[0],
        last_out=taps[-1],
        worked_minutes=worked,
        status=status,
        late_minutes=late_minutes(instance, taps[0]),
        early_exit_minutes=early_exit_minutes(instance, taps[-1]),
        punch_count=len(taps),
    )


def _row(
    employee_no: str,
    instance: ShiftInstance,
    status: AttendanceStatus,
    *,
    first_in: datetime | None = None,
    punch_count: int = 0,
) -> DayResult:
    return DayResult(
        employee_no=employee_no,
        work_date=instance.work_date,
        shift_code=instance.shift.code,
        first_in=first_in,
        last_out=None,
        worked_minutes=0,
        status=status,
        late_minutes=0,
        early_exit_minutes=0,
        punch_count=punch_count,
    )


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


def status_for_worked_minutes(worked: int, shift: Shift) -> AttendanceStatus:
    """`absent` / `half_day` / `present` by strict "below" comparisons; a `None` threshold never applies."""
    if _below(worked, shift.absent_below_hours):
        return "absent"
    if _below(worked, shift.half_day_below_hours):
        return "half_day"
    return "present"


def _below(worked: int, hours: float | None) -> bool:
    # Decimal of the shortest repr keeps 4.15 h == 249 min exact; in floats 4.15 * 60 is 249.00000000000003.
    return hours is not None and worked < Decimal(repr(hours)) * 60


def late_minutes(instance: ShiftInstance, first: datetime) -> int:
    """Whole minutes from scheduled start to `first`, if `first` is strictly after start + grace; else 0."""
    grace = instance.shift.late_grace_minutes
    if grace is None or first <= instance.start + timedelta(minutes=grace):
        return 0
    return (first - instance.start) // _ONE_MINUTE


def early_exit_minutes(instance: ShiftInstance, last: datetime) -> int:
    """Whole minutes from `last` to scheduled end, if `last` is strictly before end - grace; else 0."""
    grace = instance.shift.early_grace_minutes
    if grace is None or last >= instance.end - timedelta(minutes=grace):
        return 0
    return (instance.end - last) // _ONE_MINUTE


def compute_attendance(
    employee: EmployeeFacts,
    punches: Iterable[datetime],
    date_from: date,
    date_to: date,
    config: ShiftConfig,
    tz: ZoneInfo,
) -> list[DayResult]:
    """One employee's attendance rows for the local dates `date_from`..`date_to` (inclusive), in date order.

    `punches` are the employee's aware instants; pass at least every punch in
    `punch_range_needed(date_from, date_to, config, tz)` (more is harmless: punches outside the rows'
    windows count for no returned row). Rows exist only from `hire_date` to `termination_date`
    (inclusive, when set), and for an `inactive` employee only on days with at least one punch.
    """
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    first, last = _employed_span(employee, date_from, date_to)
    if first > last:
        return []
    shift = config.shift_for(employee.employee_no, employee.department)
    # Earlier instances whose windows reach into the first row's window take the punches they share.
    instances = [shift_instance(shift, d, tz) for d in _dates(_earliest_overlapping(shift, first, tz), last)]
    assigned = assign_punches(instances, dedupe_taps(punches, config.double_tap_seconds))
    rows: list[DayResult] = []
    for instance in instances:
        day_punches = assigned[instance.work_date]
        if instance.work_date < first or (employee.status == "inactive" and not day_punches):
            continue
        rows.append(compute_day(employee.employee_no, instance, day_punches, config.holidays))
    return rows


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


def _earliest_overlapping(shift: Shift, local_date: date, tz: ZoneInfo) -> date:
    # Window ends grow with the date, so stop at the first earlier instance that ends before ours starts.
    window_start = shift_instance(shift, local_date, tz).window_start
    earliest = local_date
    while shift_instance(shift, earliest - _ONE_DAY, tz).window_end >= window_start:
        earliest -= _ONE_DAY
    return earliest


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
