"""The attendance merge stage: BioStar punches into `punches`, then `attendance_days` per shard.

Two stage functions, each idempotent and safe to rerun with the same inputs:

- `import_punches(window)` reads the BioStar punches of a time window (started `overlap` earlier, since
  logs arrive late), stores those of known users in `punches` and the rest in `unmatched_punches`
  (insert-ignore on the natural keys), and reports the local dates and departments the punches affect.
- `merge_attendance(shard)` recomputes the rows of one shard (a day range of one department) with the
  pure rules, upserts them, and removes rows of the shard that the rules no longer produce (a changed
  shift assignment or termination date), in one transaction.

How the events use them (the Celery canvas wraps these; this module imports no Celery):

- nightly / `hrsync.sync.requested`: `plan_punch_windows` over `punch_range_needed(from, to, config,
  zone)` → a group of `import_punches`, then `plan_merge_shards_from_db(from, to)` → a chord of
  `merge_attendance` (days without punches get their absent/off/holiday rows there).
- `hrsync.punches.imported {from, to, devices}`: `import_punches(PunchWindow(from, to), devices)` →
  `plan_merge_touched(outputs)` → `plan_recompute_shards` → `merge_attendance(shard, employees)` per
  shard: only the (employee, day) pairs the window's punches (and the late logs of the overlap this
  execution stored) touch, so a punch that arrives after its day was computed recomputes that day.
- `hrsync.employee.changed {employee_no}`: `plan_merge_shards_from_db(recent days, employees=[no])` →
  `merge_attendance(shard, employees=[no])`.

Speed: one set-based query per window or shard, plain tuples instead of ORM objects, and multi-row
statements of `WRITE_BATCH` rows (the driver's executemany turns them into multi-row INSERTs); on MariaDB
the imported punches and the computed days reach the driver as ready text and numbers, without
SQLAlchemy's per-row binding.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from itertools import compress
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import ColumnElement, Dialect, Table, bindparam, delete, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from pipelines.attendance.rules import (
    Absence,
    AbsencePart,
    DayResult,
    EmployeeFacts,
    EmployeeStatus,
    compute_attendance,
    punch_range_needed,
    work_dates_affected,
)
from pipelines.attendance.shifts import ShiftConfig, current_shift_config
from pipelines.merge.biostar import stream_punch_logs
from pipelines.monthend.period import Period
from pipelines.monthend.store import (
    closed_versions,
    exception_keys,
    keep_frozen_changes,
    months_of,
    refresh_exceptions,
)
from pipelines.stage import StageResult
from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine, biostar_engine, upsert
from shared.database.dialects import is_mariadb
from shared.database.tables import (
    absences,
    attendance_days,
    attendance_exceptions,
    employees,
    punches,
    unmatched_punches,
)
from shared.runtime import realthreads
from shared.runtime.clock import utcnow
from shared.runtime.slots import in_slots

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Rows per multi-row INSERT / upsert statement: large enough to amortise round trips, small enough to
# keep statements well under max_allowed_packet and lock waits short.
WRITE_BATCH = 2000
SHARD_KEY_LENGTH = 64  # execution_stages.shard
_ATTENDANCE_KEY = ("employee_no", "work_date", "shift_code")
# computed_at last: MariaDB evaluates ON DUPLICATE KEY UPDATE assignments in order (see _upsert_if_newer).
_ATTENDANCE_VALUES = ("first_in", "last_out", "worked_minutes", "status", "late_minutes",
                      "early_exit_minutes", "overtime_minutes", "absence_kind", "punch_count", "execution_id",
                      "computed_at")
# The columns of the driver's day rows (`_driver_days`), in the table's order (`_upsert_days_sql` checks it).
_DAY_COLUMNS = ("employee_no", "work_date", "shift_code", "first_in", "last_out", "worked_minutes", "status",
                "late_minutes", "early_exit_minutes", "punch_count", "overtime_minutes", "absence_kind",
                "execution_id", "computed_at")
# The columns `_insert_ignore` writes, in the order of the rows `import_punches` builds; the last two (the
# import's time and execution) are the same for every row and added by `_insert_ignore`.
_PUNCH_COLUMNS = ("employee_no", "device_id", "punched_at", "event_code", "tna_key", "received_at", "execution_id")
_UNMATCHED_COLUMNS = ("biostar_user_id", "device_id", "punched_at", "event_code", "first_seen_at", "execution_id")
_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPEN_LOOKBACK_DAYS = 31  # how far back a date-range merge looks for `open` rows to close
_ONE_DAY = timedelta(days=1)


# Merge steps of one process doing their heavy work (imports, day shards) at once (shared/runtime/slots.py).
# A day shard waits on the database for much of its time: 8 keep one process busy (a one-worker nightly's day
# shards: 102 s with 4, 60 s with 8, 58 s with 16; docs/benchmarks.md, "Nightly month near its floor").
HEAVY_SLOTS = 8


# -- inputs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PunchWindow:
    """A time window of BioStar logs to import: aware instants, both ends included."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError("a punch window needs timezone-aware instants")
        if self.end < self.start:
            raise ValueError(f"window end {self.end.isoformat()} is before its start {self.start.isoformat()}")

    @property
    def key(self) -> str:
        """The shard name in `execution_stages`."""
        return f"{_utc_text(self.start)}..{_utc_text(self.end)}"

    def as_json(self) -> dict[str, str]:
        return {"from": self.start.astimezone(UTC).isoformat(), "to": self.end.astimezone(UTC).isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PunchWindow:
        return cls(datetime.fromisoformat(data["from"]), datetime.fromisoformat(data["to"]))


@dataclass(frozen=True)
class MergeShard:
    """One merge shard: the local dates `date_from`..`date_to` (inclusive) of one department.

    `department=None` means the employees without a department (not "all departments").
    """

    date_from: date
    date_to: date
    department: str | None

    def __post_init__(self) -> None:
        if self.date_to < self.date_from:
            raise ValueError(f"shard date_to {self.date_to} is before date_from {self.date_from}")

    @property
    def key(self) -> str:
        """A name unique per shard of a plan, at most 64 characters (long departments are hashed)."""
        days = f"{self.date_from.isoformat()}..{self.date_to.isoformat()}"
        department = "-" if self.department is None else f"={self.department}"
        if len(days) + len(department) > SHARD_KEY_LENGTH:
            digest = hashlib.sha256(department.encode()).hexdigest()[:12]
            department = f"{department[:SHARD_KEY_LENGTH - len(days) - 13]}~{digest}"
        return days + department

    def as_json(self) -> dict[str, str | None]:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(),
                "department": self.department}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MergeShard:
        return cls(date.fromisoformat(data["from"]), date.fromisoformat(data["to"]), data["department"])


# -- planning (pure) ---------------------------------------------------------------------------------------


def plan_merge_shards(
    date_from: date, date_to: date, departments: Iterable[str | None], days_per_shard: int,
    max_shards: int | None = None,
) -> list[MergeShard]:
    """Shards covering `date_from`..`date_to` in runs of `days_per_shard` days, for each department.

    Departments are deduplicated and sorted (None first), so the same inputs give the same plan. With
    `max_shards`, runs grow longer than `days_per_shard` where needed to stay within it (a long range over
    many departments: bigger shards, never a refused plan).
    """
    if days_per_shard < 1:
        raise ValueError(f"days_per_shard must be at least 1, got {days_per_shard}")
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    ordered = sorted(set(departments), key=_department_order)
    if max_shards is not None:
        runs = max(1, max_shards // max(1, len(ordered)))
        days_per_shard = max(days_per_shard, -(-((date_to - date_from).days + 1) // runs))
    shards: list[MergeShard] = []
    first = date_from
    while first <= date_to:
        last = min(first + (days_per_shard - 1) * _ONE_DAY, date_to)
        shards.extend(MergeShard(first, last, department) for department in ordered)
        first = last + _ONE_DAY
    return shards


def plan_punch_windows(start: datetime, end: datetime, hours_per_window: float) -> list[PunchWindow]:
    """Consecutive windows covering `start`..`end`; neighbours share their boundary instant (harmless:
    imports are idempotent), so no punch falls between two windows."""
    if hours_per_window <= 0:
        raise ValueError(f"hours_per_window must be positive, got {hours_per_window}")
    step = timedelta(hours=hours_per_window)
    windows = [PunchWindow(start, min(start + step, end))]
    while windows[-1].end < end:
        windows.append(PunchWindow(windows[-1].end, min(windows[-1].end + step, end)))
    return windows


def plan_merge_after_import(outputs: Iterable[Mapping[str, Any]], days_per_shard: int,
                            max_shards: int | None = None) -> list[MergeShard]:
    """The merge shards for what `import_punches` calls found: their dates' span, for their departments.

    `outputs` are the `StageResult.output` dicts of one or more import shards (a chord's results);
    imports that found no punch of a known employee add nothing.
    """
    firsts: list[date] = []
    lasts: list[date] = []
    departments: set[str | None] = set()
    for output in outputs:
        if output.get("dates"):
            firsts.append(date.fromisoformat(output["dates"]["from"]))
            lasts.append(date.fromisoformat(output["dates"]["to"]))
            departments.update(output.get("departments", ()))
    if not firsts:
        return []
    return plan_merge_shards(min(firsts), max(lasts), departments, days_per_shard, max_shards)


async def plan_merge_shards_from_db(
    date_from: date, date_to: date, days_per_shard: int, employee_nos: Sequence[str] | None = None,
    max_shards: int | None = None,
) -> list[MergeShard]:
    """`plan_merge_shards` over the departments in `employees` (only those of `employee_nos`, if given)."""
    query = select(employees.c.department).distinct()
    if employee_nos is not None:
        query = query.where(employees.c.employee_no.in_(employee_nos))
    engine = await app_engine()
    async with engine.connect() as conn:
        departments = [row[0] for row in await conn.execute(query)]
    return plan_merge_shards(date_from, date_to, departments, days_per_shard, max_shards) if departments else []


async def plan_recompute_shards(
    spans: Iterable[tuple[str, date, date]], days_per_shard: int
) -> list[tuple[MergeShard, list[str]]]:
    """Shards recomputing some employees' days: `spans` are (employee_no, first, last) local dates.

    Per department, overlapping or adjacent spans are joined (their employees too) and cut into runs of
    `days_per_shard` days; each shard comes with the sorted employees it recomputes.
    """
    spans = list(spans)
    if not spans:
        return []
    engine = await app_engine()
    async with engine.connect() as conn:
        department_of: dict[str, str | None] = {row[0]: row[1] for row in await conn.execute(
            select(employees.c.employee_no, employees.c.department)
            .where(employees.c.employee_no.in_(sorted({no for no, _, _ in spans})))
        )}
    by_department: dict[str | None, list[tuple[date, date, str]]] = {}
    for no, first, last in spans:
        if no in department_of:
            by_department.setdefault(department_of[no], []).append((first, last, no))
    shards: list[tuple[MergeShard, list[str]]] = []
    for department in sorted(by_department, key=_department_order):
        runs: list[tuple[date, date, set[str]]] = []
        for first, last, no in sorted(by_department[department]):
            if runs and first <= runs[-1][1] + _ONE_DAY:
                runs[-1] = (runs[-1][0], max(runs[-1][1], last), runs[-1][2] | {no})
            else:
                runs.append((first, last, {no}))
        for first, last, nos in runs:
            shards.extend((shard, sorted(nos)) for shard in plan_merge_shards(first, last, [department],
                                                                                days_per_shard))
    return shards


# -- import ------------------------------------------------------------------------------------------------


@in_slots("merge", HEAVY_SLOTS)
async def import_punches(
    window: PunchWindow,
    execution_id: str,
    devices: Sequence[int] | None = None,
    *,
    employees: Sequence[str] | None = None,
    overlap: timedelta | None = None,
    include_duress: bool | None = None,
) -> StageResult:
    """Store the BioStar punches of `window` (read from `overlap` earlier) in `punches`/`unmatched_punches`.

    `overlap` defaults to `HRSYNC_BIOSTAR_READ_OVERLAP_MINUTES`, `include_duress` to
    `HRSYNC_BIOSTAR_COUNT_DURESS`; `devices=None` reads all devices; `employees` (employee numbers) reads
    only their BioStar users' logs (None: every user's, known or not). Rows already stored keep their first
    `execution_id`/`received_at`. Output: counts (`logs` read, `punches`/`unmatched` found, `*_new`
    inserted), `unknown_users`, the `dates` (`{from, to}` local dates, or None) and `departments` whose
    attendance the found punches may change — the input of `plan_merge_after_import`.
    """
    settings = get_settings()
    if overlap is None:
        overlap = timedelta(minutes=settings.biostar_read_overlap_minutes)
    duress = settings.biostar_count_duress if include_duress is None else include_duress
    read_from, read_to = window.start - overlap, window.end
    source = await biostar_engine()
    target = await app_engine()
    users = await _employees_by_user_id(target)
    named = None if employees is None else set(employees)
    user_filter = None if named is None else sorted(u for u, (no, _) in users.items() if no in named)
    received_at = utcnow()

    logs = matched_total = unmatched_total = inserted = unmatched_inserted = 0
    first_seen: int | None = None
    last_seen: int | None = None
    departments: set[str | None] = set()
    unknown: set[str] = set()
    touched: dict[str, tuple[int, int]] = {}  # employee → first/last tap inside the window (epoch s)
    window_from = int(window.start.timestamp())
    late = False  # some matched taps fell in the overlap before the window
    async for rows in stream_punch_logs(source, read_from, read_to, include_duress=duress, devices=devices,
                                        users=user_filter):
        matched: list[tuple[Any, ...]] = []  # _PUNCH_COLUMNS, punched_at in epoch seconds
        unmatched: list[tuple[Any, ...]] = []  # _UNMATCHED_COLUMNS, likewise
        for user, device, devdt, evt, tna in rows:
            employee = users.get(user)
            if employee is None:
                unknown.add(user)
                unmatched.append((user, device, devdt, evt))
                continue
            departments.add(employee[1])
            first_seen = devdt if first_seen is None else min(first_seen, devdt)
            last_seen = devdt if last_seen is None else max(last_seen, devdt)
            if devdt >= window_from:
                first, last = touched.get(employee[0], (devdt, devdt))
                touched[employee[0]] = (min(first, devdt), max(last, devdt))
            else:
                late = True
            matched.append((employee[0], device, devdt, evt, tna))
        logs += len(rows)
        matched_total += len(matched)
        unmatched_total += len(unmatched)
        inserted += await _insert_ignore(target, punches, _PUNCH_COLUMNS, matched, received_at, execution_id)
        unmatched_inserted += await _insert_ignore(target, unmatched_punches, _UNMATCHED_COLUMNS, unmatched,
                                                   received_at, execution_id)

    if late:  # late logs of the overlap: only those this execution stored change days not yet computed
        for no, first_at, last_at in await _stored_by(target, execution_id, read_from, window.start):
            first, last = touched.get(no, (first_at, last_at))
            touched[no] = (min(first, first_at), max(last, last_at))
    affected = None
    if first_seen is not None and last_seen is not None:
        affected = work_dates_affected(datetime.fromtimestamp(first_seen, UTC),
                                       datetime.fromtimestamp(last_seen, UTC),
                                       current_shift_config(), settings.zone)
    if unknown:
        log.warning("attendance.unmatched_punches", count=unmatched_total, users=len(unknown))
    output: dict[str, Any] = {
        "window": window.as_json(),
        "read": {"from": read_from.astimezone(UTC).isoformat(), "to": read_to.astimezone(UTC).isoformat()},
        "logs": logs,
        "punches": matched_total,
        "punches_new": inserted,
        "unmatched": unmatched_total,
        "unmatched_new": unmatched_inserted,
        "unknown_users": sorted(unknown)[:20],
        "unknown_user_count": len(unknown),
        "dates": None if affected is None else {"from": affected[0].isoformat(), "to": affected[1].isoformat()},
        "departments": sorted(departments, key=_department_order),
        "employees": _touched_days(touched, settings.zone),
    }
    return StageResult(rows_in=logs, rows_out=matched_total + unmatched_total, output=output)


async def _employees_by_user_id(engine: AsyncEngine) -> dict[str, tuple[str, str | None]]:
    """BioStar user id → (employee_no, department); a user id shared by several employees goes to the
    first employee_no (a data error in the HRIS, logged)."""
    query = (
        select(employees.c.biostar_user_id, employees.c.employee_no, employees.c.department)
        .where(employees.c.biostar_user_id.is_not(None))
        .order_by(employees.c.employee_no)
    )
    users: dict[str, tuple[str, str | None]] = {}
    shared = 0
    async with engine.connect() as conn:
        for user, employee_no, department in await conn.execute(query):
            if user in users:
                shared += 1
                continue
            users[user] = (employee_no, department)
    if shared:
        log.warning("attendance.shared_biostar_user_ids", employees=shared)
    return users


def _touched_days(touched: Mapping[str, tuple[int, int]], zone: ZoneInfo) -> dict[str, dict[str, str]]:
    """Per employee, the local dates (`{from, to}`) whose rows the taps of `touched` (epoch s) may change."""
    config = current_shift_config()
    days: dict[str, dict[str, str]] = {}
    for no, (first, last) in sorted(touched.items()):
        affected = work_dates_affected(datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC),
                                       config, zone)
        if affected is not None:
            days[no] = {"from": affected[0].isoformat(), "to": affected[1].isoformat()}
    return days


@retry_transient
async def _stored_by(engine: AsyncEngine, execution_id: str, start: datetime,
                     end: datetime) -> list[tuple[str, int, int]]:
    """(employee, first, last tap in epoch s) of the punches in [start, end) that `execution_id` stored first."""
    p = punches.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(p.employee_no, func.min(p.punched_at), func.max(p.punched_at))
            .where(p.punched_at >= start, p.punched_at < end, p.execution_id == execution_id)
            .group_by(p.employee_no))
    return [(str(no), int(first.timestamp()), int(last.timestamp())) for no, first, last in rows]


def plan_merge_touched(outputs: Iterable[Mapping[str, Any]], employee_nos: Sequence[str] | None
                       ) -> list[tuple[str, date, date]] | None:
    """The (employee, first, last date) spans the imports' new taps touch (of `employee_nos`, if given):
    the input of `plan_recompute_shards`; None when an import did not record them (an older release)."""
    spans: dict[str, tuple[date, date]] = {}
    wanted = None if employee_nos is None else set(employee_nos)
    for output in outputs:
        if "employees" not in output:
            return None
        for no, days in output["employees"].items():
            if wanted is not None and no not in wanted:
                continue
            first, last = date.fromisoformat(days["from"]), date.fromisoformat(days["to"])
            known = spans.get(no, (first, last))
            spans[no] = (min(known[0], first), max(known[1], last))
    return [(no, first, last) for no, (first, last) in sorted(spans.items())]


async def _insert_ignore(engine: AsyncEngine, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]],
                         received_at: datetime, execution_id: str) -> int:
    """Insert imported punches in batches, skipping those whose natural key exists; returns how many were new.

    `rows` hold the values of `columns` with `punched_at` in epoch seconds; every row gets `received_at`
    (stored as `received_at` / `first_seen_at`) and `execution_id` after them.
    """
    inserted = 0
    for at in range(0, len(rows), WRITE_BATCH):
        inserted += await _insert_batch(engine, table, columns, rows[at:at + WRITE_BATCH], received_at,
                                        execution_id)
    return inserted


@retry_transient
async def _insert_batch(engine: AsyncEngine, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]],
                        received_at: datetime, execution_id: str) -> int:
    """One transaction of `_insert_ignore`.

    On MariaDB the rows go to the driver as tuples of ready values through a plain INSERT IGNORE (the
    driver's executemany makes it multi-row): the nightly import's CPU went to SQLAlchemy's per-row bind
    processing and to the driver escaping datetimes, while text and integers escape cheaply
    (docs/benchmarks.md, "Nightly month near its floor"). Other databases take the portable upsert.
    """
    at = columns.index("punched_at")
    async with engine.begin() as conn:
        if is_mariadb(conn.dialect):
            stamp = _utc_instant_text(received_at)
            ready = [(*row[:at], _utc_seconds_text(row[at]), *row[at + 1:], stamp, execution_id) for row in rows]
            result = await conn.exec_driver_sql(_insert_ignore_sql(conn.dialect, table, tuple(columns)), ready)
        else:
            result = await conn.execute(upsert(conn, table, []), [
                dict(zip(columns, (*row[:at], datetime.fromtimestamp(row[at], UTC), *row[at + 1:], received_at,
                                   execution_id), strict=True))
                for row in rows])
    return max(result.rowcount, 0)


@lru_cache(maxsize=16)
def _insert_ignore_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    """INSERT IGNORE of `columns` in the driver's own placeholders, one per column in that order."""
    return _driver_sql(dialect, mysql.insert(table).prefix_with("IGNORE").values({c: bindparam(c) for c in columns}),
                       columns)


def _driver_sql(dialect: Dialect, stmt: Insert, columns: Sequence[str]) -> str:
    """`stmt` as the driver's SQL, for rows that are tuples of `columns`: checks that its placeholders are
    one per column in that order, and that aiomysql's executemany makes it multi-row INSERTs (a statement
    its RE_INSERT_VALUES does not match, or whose tail it would not %-format right, runs row by row)."""
    from aiomysql.cursors import RE_INSERT_VALUES  # here: ~0.14 s of import a process without MariaDB never needs
    compiled = stmt.compile(dialect=dialect)
    if compiled.positiontup != list(columns):
        raise ValueError(f"{stmt.table}: placeholders {compiled.positiontup} are not in the order {columns}")
    sql = str(compiled)
    shape = RE_INSERT_VALUES.match(sql)
    if shape is None or "%" in shape.group(3):
        raise ValueError(f"{stmt.table}: the driver would not make multi-row INSERTs of {sql[:200]}")
    return sql


def _utc_seconds_text(seconds: int) -> str:
    """Epoch seconds as DATETIME text in UTC, `YYYY-MM-DD HH:MM:SS`: quicker than making a datetime, and the
    driver escapes text for a fraction of a datetime's cost."""
    day, second = divmod(seconds, 86400)
    return f"{_utc_day_text(day)} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def _utc_instant_text(instant: datetime) -> str:
    """An aware instant as DATETIME text in UTC, `YYYY-MM-DD HH:MM:SS[.ffffff]` (fraction only when not
    zero, as the driver writes a datetime)."""
    since = instant - _EPOCH
    text = _utc_seconds_text(since.days * 86400 + since.seconds)
    return f"{text}.{since.microseconds:06d}" if since.microseconds else text


@lru_cache(maxsize=4096)
def _utc_day_text(day: int) -> str:
    """Day `day` since 1970-01-01 as `YYYY-MM-DD`."""
    return (_EPOCH_DAY + timedelta(days=day)).isoformat()


# -- merge -------------------------------------------------------------------------------------------------


@in_slots("merge", HEAVY_SLOTS)
@retry_transient
async def merge_attendance(
    shard: MergeShard, execution_id: str, employee_nos: Sequence[str] | None = None, *,
    now: datetime | None = None,
) -> StageResult:
    """Recompute and upsert the `attendance_days` rows of `shard` (only of `employee_nos`, if given).

    Reads the shard's employees, their non-void punches (`punch_range_needed` of the shard's dates) and
    their approved absences, applies `compute_attendance` as of `now` (default: the time of the run) — an
    instance whose punch window has not ended is `open`, one not begun gets no row —, upserts every row
    with `execution_id`, and deletes the shard's rows the rules no longer produce, all in one transaction,
    so a retry or a replay redoes it whole. A row is only overwritten by a run that started no earlier
    than the one that wrote it (`computed_at`), so a slow recompute never replaces a newer result.
    Output: `rows`, `removed`, `employees` and counts `by_status`.
    """
    if employee_nos is not None and not employee_nos:
        return StageResult(output={"rows": 0, "removed": 0, "employees": 0, "by_status": {}})
    settings = get_settings()
    config, zone = current_shift_config(), settings.zone
    punch_from, punch_to = punch_range_needed(shard.date_from, shard.date_to, config, zone)
    computed_at = utcnow()
    as_of = computed_at if now is None else now
    scope = _scope(shard, employee_nos)
    engine = await app_engine()
    async with engine.begin() as conn:
        # First, and locking: a period close waits for this transaction, or this one sees the close.
        frozen = await closed_versions(conn, months_of(shard.date_from, shard.date_to), lock=True)
        facts = [
            EmployeeFacts(no, department, cast(EmployeeStatus, status), hired, left)
            for no, department, status, hired, left in await conn.execute(
                select(employees.c.employee_no, employees.c.department, employees.c.status,
                       employees.c.hire_date, employees.c.termination_date).where(*scope)
            )
        ]
        taps: dict[str, list[datetime]] = {}
        punch_rows = 0
        for employee_no, punched_at in await conn.execute(
            select(punches.c.employee_no, punches.c.punched_at)
            .select_from(punches.join(employees, punches.c.employee_no == employees.c.employee_no))
            .where(*scope, punches.c.punched_at >= punch_from, punches.c.punched_at <= punch_to,
                   punches.c.voided_at.is_(None))
        ):
            taps.setdefault(employee_no, []).append(punched_at)
            punch_rows += 1
        leave = await _approved_absences(conn, scope, shard)

        # The rules run off the loop: a shard's 7,000 days are seconds of CPU, during which the loop would
        # serve no other step of this process, and a step holding the execution's row lock (every stage
        # start and end takes it, shared) would keep a final failure or a cancel waiting (docs/benchmarks.md).
        rows, ready, by_status = await _off_loop(
            _computed_rows, facts, taps, shard, config, zone, leave, as_of, execution_id, computed_at,
            is_mariadb(conn.dialect))
        kept = 0
        if frozen:  # a closed month's days stay as they are; what would have changed is kept aside
            def is_frozen(day: date) -> bool:
                return str(Period.of(day)) in frozen

            kept = await keep_frozen_changes(
                conn, [day for day in await _stored_days(conn, shard, scope) if is_frozen(day["work_date"])],
                [row for row in rows if is_frozen(row["work_date"])], frozen, execution_id, computed_at)
            unfrozen = [not is_frozen(row["work_date"]) for row in rows]
            rows = list(compress(rows, unfrozen))
            ready = None if ready is None else list(compress(ready, unfrozen))
        await _upsert_days(conn, rows, ready)
        removed = await _remove_stale_days(conn, shard, scope, computed_at, frozen)
        exceptions = await _refresh_exceptions(conn, shard, scope, frozen, config, execution_id, computed_at, rows)

    output = {"rows": len(rows), "removed": removed, "employees": len(facts),
              "by_status": dict(sorted(by_status.items())), "exceptions": exceptions}
    if frozen:
        output["frozen"] = {"periods": sorted(frozen), "changes_kept": kept}
    return StageResult(rows_in=punch_rows, rows_out=len(rows), output=output)


def _computed_rows(facts: Sequence[EmployeeFacts], taps: Mapping[str, list[datetime]], shard: MergeShard,
                   config: ShiftConfig, zone: ZoneInfo, leave: Mapping[str, list[Absence]], as_of: datetime,
                   execution_id: str, computed_at: datetime, for_driver: bool
                   ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]] | None, Counter[str]]:
    """The shard's `attendance_days` rows by the rules (pure), as `_day_rows` makes them, and counts by status."""
    computed = [
        day for employee in facts for day in compute_attendance(
            employee, taps.get(employee.employee_no, ()), shard.date_from, shard.date_to, config, zone,
            absences=leave.get(employee.employee_no, ()), now=as_of)
    ]
    return (*_day_rows(computed, execution_id, computed_at, for_driver), Counter(day.status for day in computed))


def _day_rows(computed: Iterable[DayResult], execution_id: str, computed_at: datetime, for_driver: bool
              ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]] | None]:
    """`attendance_days` rows of the days `computed` by one run, in key order (the lock order of the upsert);
    `for_driver`: with the same rows as `_driver_days` tuples (else None), so the caller's thread makes them."""
    rows = [{
        "employee_no": day.employee_no, "work_date": day.work_date, "shift_code": day.shift_code,
        "first_in": day.first_in, "last_out": day.last_out, "worked_minutes": day.worked_minutes,
        "status": day.status, "late_minutes": day.late_minutes, "early_exit_minutes": day.early_exit_minutes,
        "overtime_minutes": day.overtime_minutes, "absence_kind": day.absence_kind, "punch_count": day.punch_count,
        "execution_id": execution_id, "computed_at": computed_at,
    } for day in computed]
    rows.sort(key=lambda row: (row["employee_no"], row["work_date"], row["shift_code"]))
    return rows, _driver_days(rows) if for_driver else None


_RULES_THREADS = 2  # CPU under the GIL: more threads would only take turns
_rules_executor: realthreads.RealThreadExecutor | None = None


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` (pure CPU work) on a real thread of this process's small rules pool."""
    global _rules_executor
    if _rules_executor is None:
        _rules_executor = realthreads.RealThreadExecutor(_RULES_THREADS, "hrsync-merge-rules")
    return await asyncio.get_running_loop().run_in_executor(_rules_executor, partial(function, *args))


async def _upsert_days(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]],
                       ready: Sequence[tuple[Any, ...]] | None = None) -> None:
    """Upsert `rows` (dicts of every `attendance_days` column) in statements of `WRITE_BATCH` rows, a row
    written by a later-started run left alone (`_upsert_if_newer`).

    On MariaDB the rows go to the driver as tuples of ready values (`ready`, made from `rows` here when not
    given) through the same upsert in the driver's placeholders: the day shards' CPU went to SQLAlchemy's
    per-row binding and the driver escaping dates and datetimes (docs/benchmarks.md, "The day shards' write
    path"). Other databases take `_upsert_if_newer` with the dicts.
    """
    if is_mariadb(conn.dialect):
        sql = _upsert_days_sql(conn.dialect)
        ready = _driver_days(rows) if ready is None else ready
        for at in range(0, len(ready), WRITE_BATCH):
            await conn.exec_driver_sql(sql, list(ready[at:at + WRITE_BATCH]))
        return
    statement = _upsert_if_newer(conn)
    for at in range(0, len(rows), WRITE_BATCH):
        await conn.execute(statement, list(rows[at:at + WRITE_BATCH]))


def _driver_days(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """`rows` as tuples of `_DAY_COLUMNS` for the driver: dates as `YYYY-MM-DD` and instants as UTC text
    (`_utc_instant_text`), each distinct date and `computed_at` formatted once."""
    dates: dict[date, str] = {}
    stamps: dict[datetime, str] = {}
    ready = []
    for row in rows:
        day, computed, first_in, last_out = row["work_date"], row["computed_at"], row["first_in"], row["last_out"]
        day_text = dates.get(day) or dates.setdefault(day, day.isoformat())
        stamp = stamps.get(computed) or stamps.setdefault(computed, _utc_instant_text(computed))
        ready.append((
            row["employee_no"], day_text, row["shift_code"],
            None if first_in is None else _utc_instant_text(first_in),
            None if last_out is None else _utc_instant_text(last_out),
            row["worked_minutes"], row["status"], row["late_minutes"], row["early_exit_minutes"],
            row["punch_count"], row["overtime_minutes"], row["absence_kind"], row["execution_id"], stamp,
        ))
    return ready


@lru_cache(maxsize=16)
def _upsert_days_sql(dialect: Dialect) -> str:
    """`_upsert_if_newer` on MariaDB in the driver's placeholders, one per `_DAY_COLUMNS` in that order."""
    return _driver_sql(dialect, _if_newer(mysql.insert(attendance_days).values(
        {c: bindparam(c) for c in _DAY_COLUMNS})), _DAY_COLUMNS)


def _upsert_if_newer(conn: AsyncConnection) -> Insert:
    """The `attendance_days` upsert that leaves a row alone when it was written by a later-started run.

    A run's `computed_at` is taken before it reads anything, so a later one has seen at least as many
    punches: a nightly shard that read early but commits late cannot undo a punch event's newer result.
    """
    days = attendance_days.c
    if is_mariadb(conn.dialect):
        return _if_newer(mysql.insert(attendance_days))
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt_: Any = dialect.insert(attendance_days)
    return cast(Insert, stmt_.on_conflict_do_update(
        index_elements=list(_ATTENDANCE_KEY), set_={c: stmt_.excluded[c] for c in _ATTENDANCE_VALUES},
        where=stmt_.excluded.computed_at >= days.computed_at))


def _if_newer(stmt: mysql.Insert) -> Insert:
    """MariaDB's ON DUPLICATE KEY UPDATE of `_upsert_if_newer` on `stmt` (an insert into `attendance_days`)."""
    days = attendance_days.c
    newer = stmt.inserted.computed_at >= days.computed_at
    # Ordered: every IF reads the stored computed_at, which is assigned last.
    return stmt.on_duplicate_key_update([(c, func.if_(newer, stmt.inserted[c], days[c])) for c in _ATTENDANCE_VALUES])


async def _approved_absences(
    conn: AsyncConnection, scope: list[ColumnElement[bool]], shard: MergeShard
) -> dict[str, list[Absence]]:
    """The approved absences of the shard's employees that overlap its dates, by employee."""
    a = absences.c
    found: dict[str, list[Absence]] = {}
    for row in await conn.execute(
        select(a.employee_no, a.absence_id, a.kind, a.date_from, a.date_to, a.part)
        .select_from(absences.join(employees, a.employee_no == employees.c.employee_no))
        .where(*scope, a.status == "approved", a.date_from <= shard.date_to, a.date_to >= shard.date_from)
    ):
        found.setdefault(row.employee_no, []).append(
            Absence(row.absence_id, row.kind, row.date_from, row.date_to, cast(AbsencePart, row.part)))
    return found


async def earliest_open_day(before: date, employee_nos: Sequence[str] | None = None,
                            lookback_days: int = OPEN_LOOKBACK_DAYS) -> date | None:
    """The earliest work date of an `open` row in the `lookback_days` before `before` (of `employee_nos`).

    A date-range merge starts there, so a day computed while in progress is closed by the next nightly
    even when it lies before the nightly's own look-back.
    """
    days = attendance_days.c
    query = select(func.min(days.work_date)).where(
        days.status == "open", days.work_date < before, days.work_date >= before - timedelta(days=lookback_days))
    if employee_nos is not None:
        query = query.where(days.employee_no.in_(list(employee_nos)))
    engine = await app_engine()
    async with engine.connect() as conn:
        return cast(date | None, (await conn.execute(query)).scalar_one_or_none())


def _scope(shard: MergeShard, employee_nos: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """Conditions on `employees` selecting the shard's employees."""
    department = employees.c.department
    conditions = [department.is_(None) if shard.department is None else department == shard.department]
    if employee_nos is not None:
        conditions.append(employees.c.employee_no.in_(employee_nos))
    return conditions


async def _stored_days(conn: AsyncConnection, shard: MergeShard, scope: list[ColumnElement[bool]],
                       other_than: datetime | None = None) -> list[Mapping[str, Any]]:
    """The shard's `attendance_days` rows as they stand in this transaction (with `other_than`: only those
    not written by the run that started then)."""
    days = attendance_days.c
    query = (select(attendance_days)
             .select_from(attendance_days.join(employees, days.employee_no == employees.c.employee_no))
             .where(*scope, days.work_date >= shard.date_from, days.work_date <= shard.date_to))
    if other_than is not None:
        query = query.where(days.computed_at != other_than)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def _refresh_exceptions(conn: AsyncConnection, shard: MergeShard, scope: list[ColumnElement[bool]],
                              frozen: Mapping[str, int], config: ShiftConfig, execution_id: str,
                              now: datetime, written: Sequence[Mapping[str, Any]]) -> int:
    """The shard's exceptions after its days were written (frozen months left alone); rows written.

    The days as stored are the rows this run wrote (`written`, stale ones already deleted), except where a
    later-started run's row was kept: only those (`computed_at` not this run's) are read back, so the
    shard does not read its 7,000 days again.
    """
    e = attendance_exceptions.c
    stored = [dict(row) for row in (await conn.execute(
        select(attendance_exceptions)
        .select_from(attendance_exceptions.join(employees, e.employee_no == employees.c.employee_no))
        .where(*scope, e.work_date >= shard.date_from, e.work_date <= shard.date_to)
    )).mappings() if str(Period.of(row["work_date"])) not in frozen]
    newer = {(row["employee_no"], row["work_date"], row["shift_code"]): row
             for row in await _stored_days(conn, shard, scope, other_than=now)
             if str(Period.of(row["work_date"])) not in frozen}
    days = [row for row in written if (row["employee_no"], row["work_date"], row["shift_code"]) not in newer]
    days += newer.values()
    return await refresh_exceptions(conn, days, stored, exception_keys(days), config, execution_id, now)


async def _remove_stale_days(
    conn: AsyncConnection, shard: MergeShard, scope: list[ColumnElement[bool]], computed_at: datetime,
    frozen: Mapping[str, int],
) -> int:
    """Delete the shard's rows this run did not write (older `computed_at`); returns how many.

    They are rows the rules no longer produce: another shift code after an assignment changed, days after
    a new termination date, an inactive employee's day whose punch is gone. Deleted by key, and only if
    still older than this run, so a concurrent newer merge of the same rows keeps its writes.
    """
    days = attendance_days.c
    stale = (
        await conn.execute(
            select(days.employee_no, days.work_date, days.shift_code)
            .select_from(attendance_days.join(employees, days.employee_no == employees.c.employee_no))
            .where(*scope, days.work_date >= shard.date_from, days.work_date <= shard.date_to,
                   days.computed_at < computed_at)
        )
    ).all()
    stale = [key for key in stale if str(Period.of(key[1])) not in frozen]
    if not stale:
        return 0
    statement = delete(attendance_days).where(
        days.employee_no == bindparam("k_employee_no"), days.work_date == bindparam("k_work_date"),
        days.shift_code == bindparam("k_shift_code"), days.computed_at < bindparam("k_computed_at"),
    )
    keys = [{"k_employee_no": no, "k_work_date": day, "k_shift_code": code, "k_computed_at": computed_at}
            for no, day, code in stale]
    await conn.execute(statement, keys)
    log.info("attendance.stale_days_removed", shard=shard.key, rows=len(keys))
    return len(keys)


def _department_order(department: str | None) -> tuple[bool, str]:
    return (department is not None, department or "")


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
