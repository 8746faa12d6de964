"""The event inbox: each event id is admitted once, together with the execution it launches.

`admit_event` inserts the inbox row and the execution row in **one transaction**; a second delivery of
the same id finds the row and gets the same execution back. An event of a coalesced kind (`punches`,
`employee`) instead joins the kind's `pending` execution, growing its params in the same transaction
with its row locked (`start`'s claim takes the same lock, so inputs are fixed once it runs).
`mark_launched` records that the canvas was sent. Together with the canvas's first task claiming its
execution (pending → running once), a bridge that crashes between any two steps launches exactly one
execution after redelivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import event_inbox, executions
from shared.events.coalesce import COALESCED, coalesce, initial
from shared.records.executions import insert_execution, new_execution_id
from shared.runtime.clock import utcnow


@dataclass(frozen=True)
class Admission:
    """What the inbox knows of an event: its execution and whether its canvas was already launched
    (`joined`: the event joined a pending execution rather than creating one)."""

    event_id: str
    execution_id: str
    launched: bool
    duplicate: bool
    joined: bool = False


@retry_transient
async def admit_event(event_id: str, event_type: str, source: str | None, body: bytes, *,
                      kind: str, trigger: str, params: dict[str, Any]) -> Admission:
    """Insert inbox + pending execution for a new event id (or join the pending one of a coalesced kind),
    or return what a former delivery stored."""
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            return await admit_in(conn, event_id, event_type, source, body, kind=kind, trigger=trigger,
                                  params=params)
    except IntegrityError:
        return await _existing(event_id)


async def admit_in(conn: AsyncConnection, event_id: str, event_type: str, source: str | None, body: bytes, *,
                   kind: str, trigger: str, params: dict[str, Any]) -> Admission:
    """`admit_event` in the caller's transaction (`IntegrityError` when the id was admitted before)."""
    now = utcnow()
    joined = await _join_pending(conn, kind, trigger, params) if kind in COALESCED else None
    execution_id, launched = joined or (new_execution_id(), False)
    await conn.execute(event_inbox.insert().values(
        event_id=event_id, type=event_type, source=source, status="launched" if launched else "received",
        execution_id=execution_id, received_at=now, launched_at=now if launched else None,
        body=body.decode("utf-8"),
    ))
    if joined is None:
        await insert_execution(conn, execution_id, kind=kind, trigger=trigger, params=initial(kind, params),
                               event_id=event_id, created_at=now)
    return Admission(event_id, execution_id, launched=launched, duplicate=False, joined=joined is not None)


async def _join_pending(conn: AsyncConnection, kind: str, trigger: str,
                        params: dict[str, Any]) -> tuple[str, bool] | None:
    """Grow the kind's pending execution by this event: (its id, whether its canvas was launched), or None."""
    e = executions.c
    pending = (await conn.execute(
        select(e.id, e.params).where(e.kind == kind, e.status == "pending", e.trigger == trigger,
                                     e.replay_of.is_(None))
        .order_by(e.created_at).limit(1).with_for_update())).first()
    if pending is None:
        return None
    grown = coalesce(kind, dict(pending.params), params)
    if grown is None:
        return None
    await conn.execute(update(executions).where(e.id == pending.id).values(params=grown))
    launched = (await conn.execute(select(exists().where(
        event_inbox.c.execution_id == pending.id, event_inbox.c.status == "launched")))).scalar()
    return str(pending.id), bool(launched)


@dataclass(frozen=True)
class Arrival:
    """One valid event to admit: its inbox fields and the execution it asks for."""

    event_id: str
    event_type: str
    source: str | None
    body: bytes
    kind: str
    trigger: str
    params: dict[str, Any]


async def admit_batch(arrivals: Sequence[Arrival]) -> list[Admission]:
    """Admit several events in **one transaction** (the bridge's prefetch window), in order.

    An id admitted before (or earlier in the same batch) comes back as a duplicate; an id another bridge
    admits at the same moment raises `IntegrityError` and the whole batch rolls back (admit one by one then).
    """
    engine = await app_engine()
    i = event_inbox.c
    async with engine.begin() as conn:
        known = {row.event_id: row for row in (await conn.execute(
            select(i.event_id, i.execution_id, i.status).where(i.event_id.in_({a.event_id for a in arrivals}))))}
        admitted: dict[str, Admission] = {}
        out = []
        for a in arrivals:
            if a.event_id in admitted:  # the same id twice in one window: launched (at most) once, for the first
                out.append(replace(admitted[a.event_id], launched=True, duplicate=True))
                continue
            row = known.get(a.event_id)
            admission = (Admission(a.event_id, row.execution_id, launched=row.status == "launched", duplicate=True)
                         if row else await admit_in(conn, a.event_id, a.event_type, a.source, a.body, kind=a.kind,
                                                    trigger=a.trigger, params=a.params))
            admitted[a.event_id] = admission
            out.append(admission)
    return out


async def _existing(event_id: str) -> Admission:
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(event_inbox.c.execution_id, event_inbox.c.status).where(event_inbox.c.event_id == event_id)
        )).one()
    return Admission(event_id, row.execution_id, launched=row.status == "launched", duplicate=True)


@retry_transient
async def mark_launched(*event_ids: str) -> None:
    """Record that the events' canvases were sent to the broker (one transaction)."""
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(update(event_inbox).where(event_inbox.c.event_id.in_(event_ids))
                           .values(status="launched", launched_at=utcnow()))


async def inbox_entry(event_id: str) -> dict[str, Any] | None:
    """The inbox row of `event_id`, or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(event_inbox).where(event_inbox.c.event_id == event_id))).first()
    return dict(row._mapping) if row else None

