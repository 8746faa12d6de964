"""Manual punch corrections (DESIGN §6): list an employee's punches, add a manual one, void any one.

Called by `hrsync punches …` and the console through `run_async`. Each correction writes, in one
transaction, the punch change, a `punch_corrections` row and an `operator_actions` row; after the
commit it publishes `hrsync.sync.requested` {scope `attendance`, the affected local dates, `employees`:
[the employee]} with the id `hrsync-correction:<correction id>`, so the day(s) are recomputed — and
their mails built — by the normal event path, and a repeated publish launches one chain. Nothing is
ever written to BioStar. Bad input raises `ConfigError` (naming the field); a correction stored whose
recompute request the broker did not take raises `RecomputeNotRequested` (the command to run is in it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.attendance.merge import current_shift_config
from pipelines.attendance.rules import work_dates_affected
from pipelines.export.store import refuse_frozen
from shared.config.errors import ConfigError, HrsyncError
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import employees, punch_corrections, punches
from shared.events.bus import publish_once
from shared.events.models import CLI_SOURCE, build_event
from shared.records.operator_actions import record_operator_action

MANUAL_DEVICE = 0  # the device id of manual punches (BioStar device ids are positive)
MANUAL_EVENT_CODE = 0
REASON_MAX = 1000
WEB_SOURCE = "hrsync/web"


class RecomputeNotRequested(HrsyncError):
    """The correction is stored, but its recompute request was not published (run the named command)."""


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise ConfigError("--reason: must not be empty")
    if len(text) > REASON_MAX:
        raise ConfigError(f"--reason: at most {REASON_MAX} characters")
    return text


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


async def add_punch(employee_no: str, at: dt.datetime, reason: str, *, actor: str, via: str) -> dict[str, Any]:
    """Store a manual punch of `employee_no` at the instant `at` (aware) and request its day's recompute.

    Returns the punch (as `list_punches` shows it) with `correction_id` and `recompute` (event id, dates).
    """
    if at.utcoffset() is None:
        raise ConfigError("TIME: needs a time zone (or is read in HRSYNC_TIMEZONE by the CLI)")
    if not 1900 <= at.year <= 2100:
        raise ConfigError("TIME: must lie in the years 1900-2100")
    text = _reason(reason)
    at = at.astimezone(dt.UTC)
    url = get_settings().events()  # before writing: a correction nobody can recompute is refused
    now = dt.datetime.now(dt.UTC)
    engine = await app_engine()
    async with engine.begin() as conn:
        if (await conn.execute(select(employees.c.employee_no).where(employees.c.employee_no == employee_no))
                ).first() is None:
            raise ConfigError(f"EMP: no employee {employee_no!r}")
        await refuse_frozen(conn, _days_of(at))
        existing = (await conn.execute(select(punches.c.id).where(
            punches.c.employee_no == employee_no, punches.c.punched_at == at,
            punches.c.device_id == MANUAL_DEVICE))).scalar_one_or_none()
        if existing is not None:
            raise ConfigError(f"TIME: a manual punch of {employee_no} at {at.isoformat()} exists already "
                              f"(id {existing})")
        result = await conn.execute(punches.insert().values(
            employee_no=employee_no, device_id=MANUAL_DEVICE, punched_at=at, event_code=MANUAL_EVENT_CODE,
            received_at=now, source="manual"))
        punch_id = _new_id(result)
        correction_id = await _record(conn, "add", punch_id, employee_no, at, text, actor=actor, via=via)
        row = (await conn.execute(select(*_PUNCH_COLUMNS).where(punches.c.id == punch_id))).one()
    recompute = await _request_recompute(url, correction_id, employee_no, at, via)
    return {**_punch_json(row, get_settings().zone), "added_by": actor, "added_reason": text,
            "correction_id": correction_id, "recompute": recompute}


async def void_punch(punch_id: int, reason: str, *, actor: str, via: str) -> dict[str, Any]:
    """Mark punch `punch_id` (device or manual) void with `reason` and request its day's recompute.

    The punch is kept; the rules ignore it. A punch already void is refused (`ConfigError`).
    """
    text = _reason(reason)
    url = get_settings().events()
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
    recompute = await _request_recompute(url, correction_id, found.employee_no, found.punched_at, via)
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


async def _request_recompute(url: str, correction_id: int, employee_no: str, at: dt.datetime,
                             via: str) -> dict[str, Any]:
    """Publish the attendance sync of the days a punch at `at` may change, for this employee only."""
    settings = get_settings()
    span = work_dates_affected(at, at, current_shift_config(), settings.zone)
    local = at.astimezone(settings.zone).date()
    first, last = span if span is not None else (local, local)
    event = build_event("hrsync.sync.requested",
                        {"scope": "attendance", "from": first, "to": last, "employees": [employee_no]},
                        id=f"hrsync-correction:{correction_id}", source=CLI_SOURCE if via == "cli" else WEB_SOURCE)
    try:
        await asyncio.to_thread(publish_once, url, event)  # pika blocks: keep it off the runner's loop
    except Exception as exc:
        raise RecomputeNotRequested(
            f"correction {correction_id} is stored, but its recompute request was not published ({exc}); "
            f"run: hrsync sync --scope attendance --from {first} --to {last}") from exc
    return {"event_id": event.id, "from": first.isoformat(), "to": last.isoformat()}
