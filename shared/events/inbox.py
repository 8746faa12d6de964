"""The event inbox: each event id is admitted once, together with the execution it launches.

`admit_event` inserts the inbox row and the execution row in **one transaction**; a second delivery of
the same id finds the row and gets the same execution back. `mark_launched` records that the canvas
was sent. Together with the canvas's first task claiming its execution (pending → running once),
a bridge that crashes between any two steps launches exactly one execution after redelivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import event_inbox
from shared.records.executions import insert_execution, new_execution_id
from shared.runtime.clock import utcnow


@dataclass(frozen=True)
class Admission:
    """What the inbox knows of an event: its execution and whether its canvas was already launched."""

    event_id: str
    execution_id: str
    launched: bool
    duplicate: bool


@retry_transient
async def admit_event(event_id: str, event_type: str, source: str | None, body: bytes, *,
                      kind: str, trigger: str, params: dict[str, Any]) -> Admission:
    """Insert inbox + pending execution for a new event id, or return what a former delivery stored."""
    engine = await app_engine()
    execution_id = new_execution_id()
    now = utcnow()
    try:
        async with engine.begin() as conn:
            await conn.execute(event_inbox.insert().values(
                event_id=event_id, type=event_type, source=source, status="received",
                execution_id=execution_id, received_at=now, body=body.decode("utf-8"),
            ))
            await insert_execution(conn, execution_id, kind=kind, trigger=trigger, params=params,
                                   event_id=event_id, created_at=now)
    except IntegrityError:
        return await _existing(event_id)
    return Admission(event_id, execution_id, launched=False, duplicate=False)


async def _existing(event_id: str) -> Admission:
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(event_inbox.c.execution_id, event_inbox.c.status).where(event_inbox.c.event_id == event_id)
        )).one()
    return Admission(event_id, row.execution_id, launched=row.status == "launched", duplicate=True)


@retry_transient
async def mark_launched(event_id: str) -> None:
    """Record that the event's canvas was sent to the broker."""
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(update(event_inbox).where(event_inbox.c.event_id == event_id)
                           .values(status="launched", launched_at=utcnow()))


async def inbox_entry(event_id: str) -> dict[str, Any] | None:
    """The inbox row of `event_id`, or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(event_inbox).where(event_inbox.c.event_id == event_id))).first()
    return dict(row._mapping) if row else None

