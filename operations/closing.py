"""Period close and reopen (DESIGN §11): `hrsync period list|show|close|reopen` and the console.

A close runs in one transaction: it locks the month's version rows, inserts the new version, then counts
the month's `open` days and open critical exceptions — after the insert, so every merge that wrote into
the month before the close has committed (merges take a shared lock on those rows, `closed_versions`) —
and rolls back when `check_close` refuses (nothing changed, no audit row). Its audit row is written in the
same transaction. After the commit it publishes `hrsync.period.closed` {period, version} with the id
`hrsync-period-closed:<period>:v<version>`, which launches the export; a close whose event the broker did
not take is kept and says how to publish it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.monthend.decisions import ExceptionState
from pipelines.monthend.exceptions import ExceptionKind
from pipelines.monthend.period import Period
from pipelines.monthend.periods import CloseRefused, PeriodState, PeriodVersion, check_close, period_state
from shared.config.errors import HrsyncError
from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import attendance_days, attendance_exceptions, period_changes, periods
from shared.events.bus import publish_once
from shared.events.models import CLI_SOURCE, PERIOD_CLOSED, Event, build_event
from shared.records.operator_actions import checked_reason, record_operator_action

WEB_SOURCE = "hrsync/web"


class ExportNotLaunched(HrsyncError):
    """The period is closed, but its `hrsync.period.closed` event was not published (the command is in it)."""


def period_event_id(period: Period, version: int) -> str:
    """The id of the event a close publishes: one export per version, however often it is sent."""
    return f"hrsync-period-closed:{period}:v{version}"


def _version(row: Any) -> PeriodVersion:
    return PeriodVersion(Period.parse(row.period), int(row.version), PeriodState(row.state), row.closed_by,
                         row.closed_at, row.reason, bool(row.forced))


async def _versions(conn: AsyncConnection, period: Period, *, lock: bool) -> list[Any]:
    query = select(periods).where(periods.c.period == str(period)).order_by(periods.c.version)
    return list((await conn.execute(query.with_for_update() if lock else query)).all())


async def close_counts(conn: AsyncConnection, period: Period) -> tuple[dict[ExceptionKind, int], int]:
    """The month's open exceptions by kind, and its days not closed yet (`open` instances)."""
    e, d = attendance_exceptions.c, attendance_days.c
    counts = {ExceptionKind(kind): int(n) for kind, n in await conn.execute(
        select(e.kind, func.count()).where(e.work_date >= period.first_day, e.work_date <= period.last_day,
                                           e.state == ExceptionState.OPEN).group_by(e.kind))}
    not_closed = (await conn.execute(select(func.count()).select_from(attendance_days).where(
        d.work_date >= period.first_day, d.work_date <= period.last_day, d.status == "open"))).scalar_one()
    return counts, int(not_closed)


def _refuse_unfinished(period: Period) -> None:
    today = dt.datetime.now(get_settings().zone).date()
    if today <= period.last_day:
        raise CloseRefused(f"period {period} has not ended yet (its last day is {period.last_day}): "
                           "its days are not all closed instances")


async def close_period(period: Period, reason: str, *, force: bool, actor: str, via: str) -> dict[str, Any]:
    """Close `period` (a new version) and launch its export; `CloseRefused` (exit 1) changes nothing.

    Returns `period_info` of the month after the close, with `event_id`.
    """
    url = get_settings().events()  # before writing: a close whose export nobody can launch is refused
    event = await close_month(period, reason, force=force, actor=actor, via=via)
    version = int(event.data["version"])
    try:
        await asyncio.to_thread(publish_once, url, event)  # pika blocks: keep it off the runner's loop
    except Exception as exc:
        raise ExportNotLaunched(
            f"period {period} is closed (version {version}), but its export was not launched ({exc}); run: "
            f"hrsync publish {PERIOD_CLOSED} --id {event.id} "
            f"--data '{{\"period\": \"{period}\", \"version\": {version}}}'") from exc
    return {**await period_info(period), "event_id": event.id}


async def close_month(period: Period, reason: str, *, force: bool, actor: str, via: str) -> Event:
    """The close's transaction alone (see `close_period`); the `hrsync.period.closed` event it calls for,
    for a caller that launches the export itself (the demo, on its embedded transport)."""
    text = checked_reason(reason, "--reason")
    _refuse_unfinished(period)
    version = await _close(period, text, force=force, actor=actor, via=via)
    return build_event(PERIOD_CLOSED, {"period": str(period), "version": version},
                       id=period_event_id(period, version), source=CLI_SOURCE if via == "cli" else WEB_SOURCE)


@retry_transient
async def _close(period: Period, reason: str, *, force: bool, actor: str, via: str) -> int:
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            versions = [_version(row) for row in await _versions(conn, period, lock=True)]
            # Checked before the insert too: a second close of a closed month must not fail on the key.
            check_close(period, versions, open_exceptions={}, days_not_closed=0, force=True, reason=reason)
            version = max((v.version for v in versions), default=0) + 1
            now = dt.datetime.now(dt.UTC)
            await conn.execute(periods.insert().values(
                period=str(period), version=version, state=PeriodState.CLOSED, forced=False, closed_by=actor,
                closed_at=now, reason=reason))
            counts, not_closed = await close_counts(conn, period)
            check_close(period, versions, open_exceptions=counts, days_not_closed=not_closed, force=force,
                        reason=reason)
            critical = {str(kind): n for kind, n in counts.items()
                        if kind in (ExceptionKind.MISSING_PUNCH, ExceptionKind.ABSENT) and n}
            if critical:
                await conn.execute(update(periods).where(periods.c.period == str(period),
                                                         periods.c.version == version).values(forced=True))
            await record_operator_action(
                "period.close", f"period:{period}",
                {"reason": reason, "version": version, "force": force, "forced_over": critical},
                via=via, actor=actor, conn=conn)
    except IntegrityError:  # a concurrent close took this version first
        raise CloseRefused(f"period {period} was closed by another close at the same time") from None
    return version


@retry_transient
async def reopen_period(period: Period, reason: str, *, actor: str, via: str) -> dict[str, Any]:
    """Reopen the closed `period`: its days may change again; the next close makes the next version."""
    text = checked_reason(reason, "--reason")
    engine = await app_engine()
    async with engine.begin() as conn:
        rows = await _versions(conn, period, lock=True)
        if period_state([_version(row) for row in rows]) is not PeriodState.CLOSED:
            raise CloseRefused(f"period {period} is not closed: nothing to reopen")
        version = rows[-1].version
        await conn.execute(update(periods).where(periods.c.period == str(period), periods.c.version == version)
                           .values(state=PeriodState.OPEN, reopened_by=actor, reopened_at=dt.datetime.now(dt.UTC),
                                   reopen_reason=text))
        await record_operator_action("period.reopen", f"period:{period}", {"reason": text, "version": version},
                                     via=via, actor=actor, conn=conn)
    return await period_info(period)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def period_info(period: Period) -> dict[str, Any]:
    """`period show --json`: period, state, version, closed_by, closed_at, reason, forced, reopened_*,
    the counts a close would see now (`open_exceptions` by kind, `days_not_closed`) and the `changes`
    recompute runs kept instead of writing the frozen days (employee_no, work_date, before, after,
    execution_id, version)."""
    c = period_changes.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await _versions(conn, period, lock=False)
        counts, not_closed = await close_counts(conn, period)
        changes = (await conn.execute(select(period_changes).where(c.period == str(period))
                                      .order_by(c.employee_no, c.work_date, c.id))).all()
    latest = rows[-1] if rows else None
    return {
        "period": str(period),
        "state": latest.state if latest is not None else PeriodState.OPEN.value,
        "version": latest.version if latest is not None else None,
        "closed_by": latest.closed_by if latest is not None else None,
        "closed_at": _iso(latest.closed_at) if latest is not None else None,
        "reason": latest.reason if latest is not None else None,
        "forced": bool(latest.forced) if latest is not None else False,
        "reopened_by": latest.reopened_by if latest is not None else None,
        "reopened_at": _iso(latest.reopened_at) if latest is not None else None,
        "reopen_reason": latest.reopen_reason if latest is not None else None,
        "open_exceptions": {str(kind): counts[kind] for kind in ExceptionKind if counts.get(kind)},
        "days_not_closed": not_closed,
        "changes": [{"employee_no": ch.employee_no, "work_date": ch.work_date.isoformat(), "before": ch.before,
                     "after": ch.after, "execution_id": ch.execution_id, "version": ch.version} for ch in changes],
    }


async def list_periods() -> list[dict[str, Any]]:
    """Every period ever closed, newest first: period, state, version (latest), closed_by, closed_at, forced,
    and how many changes its frozen days kept."""
    p, c = periods.c, period_changes.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(periods).order_by(p.period.desc(), p.version))).all()
        kept = Counter({name: int(n) for name, n in await conn.execute(
            select(c.period, func.count()).group_by(c.period))})
    latest = {row.period: row for row in rows}
    return [{"period": name, "state": row.state, "version": row.version, "closed_by": row.closed_by,
             "closed_at": _iso(row.closed_at), "forced": bool(row.forced), "changes": kept[name]}
            for name, row in latest.items()]
