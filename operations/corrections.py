"""Manual punch corrections (DESIGN §6): list an employee's punches, add a manual one, void any one.

Called by `hrsync punches …` and the console through `run_async`. Each correction writes, in one
transaction, the punch change, a `punch_corrections` row and an `operator_actions` row; after the
commit it requests `hrsync.sync.requested` {scope `attendance`, the affected local dates, `employees`:
[the employee]} with the id `hrsync-correction:<correction id>`, so the day(s) are recomputed — and
their mails built — by the normal event path, and a repeated request launches one chain. The caller
says how the event travels (`request_event`: `operations.event_requests.request_event` publishes it, or on
the embedded defaults admits it in-process); by default it is published to the event plane. Nothing is
ever written to BioStar. Bad input raises `ConfigError` (naming the field; an unknown employee
`UnknownEmployee`); a correction stored whose recompute request was not taken raises
`RecomputeNotRequested` (the command to run is in it). `recompute_status` follows a correction's
recompute: its event, its execution, that execution's status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.attendance.rules import work_dates_affected
from pipelines.attendance.shifts import current_shift_config
from pipelines.monthend.store import refuse_frozen
from shared.config.errors import ConfigError, HrsyncError
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import employees, executions, punch_corrections, punches
from shared.events.bus import publish_once
from shared.events.inbox import inbox_entry
from shared.events.models import CLI_SOURCE, Event, build_event
from shared.records.operator_actions import checked_reason, record_operator_action

MANUAL_DEVICE = 0  # the device id of manual punches (BioStar device ids are positive)
MANUAL_EVENT_CODE = 0
WEB_SOURCE = "hrsync/web"


# How a correction's recompute event travels: `{"event_id", "execution_id" (None until the bridge admits it)}`.
EventRequest = Callable[[Event], Awaitable[dict[str, Any]]]


FUTURE_SLACK = dt.timedelta(minutes=5)  # clocks differ a little; a punch later than this is refused


class RecomputeNotRequested(HrsyncError):
    """The correction is stored, but its recompute request was not published (run the named command)."""


class UnknownEmployee(ConfigError):
    """No employee of that number (`employee_no`): nothing was stored."""

    def __init__(self, employee_no: str) -> None:
        super().__init__(f"EMP: no employee {employee_no!r}")
        self.employee_no = employee_no


def _published_to_event_plane() -> EventRequest:
    """The default: publish to the event plane, whose URL is read now, so a correction nobody can recompute
    is refused before anything is written."""
    url = get_settings().events()

    async def publish(event: Event) -> dict[str, Any]:
        await asyncio.to_thread(publish_once, url, event)  # pika blocks: keep it off the runner's loop
        return {"event_id": event.id, "execution_id": None}

    return publish


class PunchExists(HrsyncError):
    """The same manual punch is stored already (`punch`: it, as `list_punches` shows it): exit 1, HTTP 409."""

    def __init__(self, message: str, punch: dict[str, Any]) -> None:
        super().__init__(message)
        self.punch = punch


class AmbiguousTime(ConfigError):
    """A wall-clock time that happens twice (clocks set back); `choices`: both instants, earlier first."""

    def __init__(self, message: str, choices: list[dt.datetime]) -> None:
        super().__init__(message)
        self.choices = choices


def local_instant(at: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The instant `at` names: itself when it has an offset; a wall-clock time in `zone` otherwise, which
    must exist (a time in a DST gap is a `ConfigError` naming the gap) and be unique (a time that happens
    twice is `AmbiguousTime` with both instants: an explicit offset must say which)."""
    if at.utcoffset() is not None:
        return at
    first, second = at.replace(tzinfo=zone, fold=0), at.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != at:
        start, end = _gap_around(first, second, zone)
        raise ConfigError(f"TIME: {at:%Y-%m-%d %H:%M} does not exist in {zone}: it falls in the DST gap "
                          f"{start:%H:%M}-{end:%H:%M} (clocks jump forward); give another time, or an offset")
    choices = sorted((first, second), key=lambda x: x.astimezone(dt.UTC))
    raise AmbiguousTime(f"TIME: {at:%Y-%m-%d %H:%M} happens twice in {zone} (clocks go back): give its "
                        f"offset, {choices[0].isoformat()} or {choices[1].isoformat()}", choices)


def _gap_around(first: dt.datetime, second: dt.datetime, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The local wall-clock times where the gap that holds a non-existent time begins and ends."""
    low, high = sorted((first.astimezone(dt.UTC), second.astimezone(dt.UTC)))
    before = low.astimezone(zone).utcoffset()
    while high - low > dt.timedelta(minutes=1):  # the transition instant, to the minute
        middle = low + (high - low) / 2
        low, high = (middle, high) if middle.astimezone(zone).utcoffset() == before else (low, middle)
    transition = high.replace(second=0, microsecond=0)
    after = transition.astimezone(zone)
    return (transition + (before or dt.timedelta())).replace(tzinfo=None), after.replace(tzinfo=None)


def _punch_json(row: Any, zone: dt.tzinfo) -> dict[str, Any]:
    manual = row.source == "manual"
    return {
        "id": int(row.id), "employee_no": row.employee_no, "punched_at": row.punched_at.isoformat(),
        "local_time": row.punched_at.astimezone(zone).isoformat(),
        "device_id": None if manual else int(row.device_id), "source": row.source,
        "voided": row.voided_at is not None,
        "voided_at": row.voided_at.isoformat() if row.voided_at is not None else None,
        "void_reason": row.void_reason,
    }


_PUNCH_COLUMNS = (punches.c.id, punches.c.employee_no, punches.c.punched_at, punches.c.device_id,
                  punches.c.source, punches.c.voided_at, punches.c.void_reason)


async def list_punches(employee_no: str, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """The employee's punches (device and manual, void ones included) on local dates `date_from`..`date_to`.

    JSON-able dicts in time order: id, employee_no, punched_at (UTC ISO), local_time, device_id (None
    for manual), source, voided, voided_at, void_reason, and `added_by`/`added_reason` of manual ones.
    """
    if date_to < date_from:
        raise ConfigError(f"--to: {date_to} is before --from {date_from}")
    zone = get_settings().zone
    start = dt.datetime.combine(date_from, dt.time(), zone)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), zone)
    c = punch_corrections.c
    query = (
        select(*_PUNCH_COLUMNS, c.actor, c.reason)
        .outerjoin(punch_corrections, (c.punch_id == punches.c.id) & (c.action == "add"))
        .where(punches.c.employee_no == employee_no, punches.c.punched_at >= start, punches.c.punched_at < end)
        .order_by(punches.c.punched_at, punches.c.id)
    )
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [{**_punch_json(r, zone), "added_by": r.actor, "added_reason": r.reason} for r in rows]


async def add_punch(employee_no: str, at: dt.datetime, reason: str, *, actor: str, via: str,
                    request_event: EventRequest | None = None) -> dict[str, Any]:
    """Store a manual punch of `employee_no` at `at` and request its day's recompute.

    `at` is an instant (with an offset) or a wall-clock time in HRSYNC_TIMEZONE (`local_instant`: a time in
    a DST gap or one that happens twice is refused). A time more than `FUTURE_SLACK` ahead is refused; the
    same manual punch again raises `PunchExists` with the stored one. Returns the punch (as `list_punches`
    shows it) with `correction_id` and `recompute` (event id, dates, execution id when known).
    """
    if not 1900 <= at.year <= 2100:
        raise ConfigError("TIME: must lie in the years 1900-2100")
    at = local_instant(at, get_settings().zone).astimezone(dt.UTC)
    now = dt.datetime.now(dt.UTC)
    if at > now + FUTURE_SLACK:
        raise ConfigError(f"TIME: {at.astimezone(get_settings().zone).isoformat()} is in the future "
                          f"(a punch may be at most {FUTURE_SLACK.seconds // 60} minutes ahead of now)")
    text = checked_reason(reason, "--reason")
    request_event = request_event or _published_to_event_plane()  # before writing: refused if nobody can recompute
    engine = await app_engine()
    async with engine.begin() as conn:
        if (await conn.execute(select(employees.c.employee_no).where(employees.c.employee_no == employee_no))
                ).first() is None:
            raise UnknownEmployee(employee_no)
        await refuse_frozen(conn, _days_of(at))
        existing = (await conn.execute(select(*_PUNCH_COLUMNS).where(
            punches.c.employee_no == employee_no, punches.c.punched_at == at,
            punches.c.device_id == MANUAL_DEVICE))).first()
        if existing is not None:
            shown = _punch_json(existing, get_settings().zone)
            raise PunchExists(f"TIME: a manual punch of {employee_no} at {shown['local_time']} exists already "
                              f"(id {shown['id']})", shown)
        result = await conn.execute(punches.insert().values(
            employee_no=employee_no, device_id=MANUAL_DEVICE, punched_at=at, event_code=MANUAL_EVENT_CODE,
            received_at=now, source="manual"))
        punch_id = _new_id(result)
        correction_id = await _record(conn, "add", punch_id, employee_no, at, text, actor=actor, via=via)
        row = (await conn.execute(select(*_PUNCH_COLUMNS).where(punches.c.id == punch_id))).one()
    recompute = await _request_recompute(request_event, correction_id, employee_no, at, via)
    return {**_punch_json(row, get_settings().zone), "added_by": actor, "added_reason": text,
            "correction_id": correction_id, "recompute": recompute}


async def void_punch(punch_id: int, reason: str, *, actor: str, via: str,
                     request_event: EventRequest | None = None) -> dict[str, Any]:
    """Mark punch `punch_id` (device or manual) void with `reason` and request its day's recompute.

    The punch is kept; the rules ignore it. A punch already void is refused (`ConfigError`).
    """
    text = checked_reason(reason, "--reason")
    request_event = request_event or _published_to_event_plane()
    now = dt.datetime.now(dt.UTC)
    engine = await app_engine()
    async with engine.begin() as conn:
        found = (await conn.execute(select(*_PUNCH_COLUMNS).where(punches.c.id == punch_id))).first()
        if found is None:
            raise ConfigError(f"ID: no punch {punch_id}")
        await refuse_frozen(conn, _days_of(found.punched_at))
        done = await conn.execute(update(punches).where(punches.c.id == punch_id, punches.c.voided_at.is_(None))
                                  .values(voided_at=now, void_reason=text))
        if done.rowcount != 1:
            raise ConfigError(f"ID: punch {punch_id} is void already")
        correction_id = await _record(conn, "void", punch_id, found.employee_no, found.punched_at, text,
                                      actor=actor, via=via)
        row = (await conn.execute(select(*_PUNCH_COLUMNS).where(punches.c.id == punch_id))).one()
    recompute = await _request_recompute(request_event, correction_id, found.employee_no, found.punched_at, via)
    return {**_punch_json(row, get_settings().zone), "correction_id": correction_id, "recompute": recompute}


def _days_of(at: dt.datetime) -> list[dt.date]:
    """The local dates a punch at `at` may change (a correction of a closed month's day is refused)."""
    span = work_dates_affected(at, at, current_shift_config(), get_settings().zone)
    first, last = span if span is not None else (at.astimezone(get_settings().zone).date(),) * 2
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every supported driver reports the autoincrement id
        raise RuntimeError("the database did not report the new row's id")
    return int(key[0])


async def _record(conn: AsyncConnection, action: str, punch_id: int, employee_no: str, at: dt.datetime,
                  reason: str, *, actor: str, via: str) -> int:
    """The `punch_corrections` row and its `operator_actions` row, in the caller's transaction."""
    result = await conn.execute(punch_corrections.insert().values(
        punch_id=punch_id, employee_no=employee_no, action=action, punched_at=at, reason=reason,
        actor=actor, via=via, at=dt.datetime.now(dt.UTC)))
    correction_id = _new_id(result)
    details = {"employee_no": employee_no, "punched_at": at.isoformat(), "reason": reason,
               "correction_id": correction_id}
    await record_operator_action(f"punch.{action}", f"punch:{punch_id}", details, via=via, actor=actor, conn=conn)
    return correction_id


async def _request_recompute(request_event: EventRequest, correction_id: int, employee_no: str, at: dt.datetime,
                             via: str) -> dict[str, Any]:
    """Request the attendance sync of the days a punch at `at` may change, for this employee only."""
    settings = get_settings()
    span = work_dates_affected(at, at, current_shift_config(), settings.zone)
    local = at.astimezone(settings.zone).date()
    first, last = span if span is not None else (local, local)
    event = build_event("hrsync.sync.requested",
                        {"scope": "attendance", "from": first, "to": last, "employees": [employee_no]},
                        id=recompute_event_id(correction_id), source=CLI_SOURCE if via == "cli" else WEB_SOURCE)
    try:
        requested = await request_event(event)
    except Exception as exc:
        raise RecomputeNotRequested(
            f"correction {correction_id} is stored, but its recompute request was not published ({exc}); "
            f"run: hrsync sync --scope attendance --from {first} --to {last}") from exc
    return {"event_id": event.id, "from": first.isoformat(), "to": last.isoformat(),
            "execution_id": requested.get("execution_id")}


def recompute_event_id(correction_id: int) -> str:
    """The id of the event that recomputes correction `correction_id`'s days (one chain per correction)."""
    return f"hrsync-correction:{correction_id}"


async def recompute_status(correction_id: int) -> dict[str, Any] | None:
    """Where correction `correction_id`'s recompute is: None for no such correction, else the correction
    (id, employee_no, action, punched_at, local_time), its event id, the dates it asked for, and its execution's id and
    status once an execution serves the event (None before, e.g. while the bridge has not taken it)."""
    engine = await app_engine()
    async with engine.connect() as conn:
        found = (await conn.execute(select(punch_corrections).where(punch_corrections.c.id == correction_id))).first()
    if found is None:
        return None
    event_id = recompute_event_id(correction_id)
    entry = await inbox_entry(event_id)
    execution = None
    if entry is not None and entry.get("execution_id"):
        async with engine.connect() as conn:
            execution = (await conn.execute(select(executions.c.id, executions.c.status, executions.c.params)
                                            .where(executions.c.id == entry["execution_id"]))).first()
    merge = (execution.params or {}).get("merge", {}) if execution is not None else {}
    return {"correction_id": correction_id, "employee_no": found.employee_no, "action": found.action,
            "punched_at": found.punched_at.isoformat(),
            "local_time": found.punched_at.astimezone(get_settings().zone).isoformat(), "event_id": event_id,
            "from": merge.get("from"), "to": merge.get("to"),
            "execution_id": None if execution is None else execution.id,
            "status": None if execution is None else execution.status}
