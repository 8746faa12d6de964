"""The event inbox: each event id is admitted once, together with the execution it launches.

`admit_event` inserts the inbox row and the execution row in **one transaction**; a second delivery of
the same id finds the row and gets the same execution back. An event of a coalesced kind (`punches`,
`employee`) instead joins a `pending` execution of its kind (the newest one that can take it: an older
one may be full), growing its params in the same transaction with its row locked (`start`'s claim takes
the same lock, so inputs are fixed once it runs).
`mark_launched` records that the canvas was sent. Together with the canvas's first task claiming its
execution (pending → running once), a bridge that crashes between any two steps launches exactly one
execution after redelivery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import event_inbox, executions
from shared.events.coalesce import COALESCED, Gathering, initial
from shared.records.executions import insert_executions, new_execution_id, pending_execution
from shared.runtime.clock import utcnow

# Executions known to have been launched (an inbox row of theirs `launched`): a fact that never turns false,
# so a batch joining one of them need not ask the database again. Bounded: forgetting costs one query.
_launched: set[str] = set()
LAUNCHED_REMEMBERED = 10_000


def _remember_launched(execution_ids: Iterable[str]) -> None:
    if len(_launched) > LAUNCHED_REMEMBERED:
        _launched.clear()
    _launched.update(execution_ids)


@dataclass(frozen=True)
class Admission:
    """What the inbox knows of an event: its execution and whether its canvas was already launched
    (`joined`: the event joined a pending execution rather than creating one)."""

    event_id: str
    execution_id: str
    launched: bool
    duplicate: bool
    joined: bool = False


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


@retry_transient
async def admit_event(event_id: str, event_type: str, source: str | None, body: bytes, *,
                      kind: str, trigger: str, params: dict[str, Any]) -> Admission:
    """Insert inbox + pending execution for a new event id (or join the pending one of a coalesced kind),
    or return what a former delivery stored."""
    try:
        [admission] = await admit_batch([Arrival(event_id, event_type, source, body, kind, trigger, params)])
    except IntegrityError:
        return await _existing(event_id)
    return admission


async def admit_batch(arrivals: Sequence[Arrival]) -> list[Admission]:
    """Admit several events in **one transaction** (the bridge's prefetch window), in order.

    An id admitted before (or earlier in the same batch) comes back as a duplicate. The first attempt takes
    every id as new (no query for known ids: redeliveries are rare); when an id turns out known (the inbox
    INSERT hits its key) that transaction rolls back and a second one asks for the known ids first. An id
    another bridge admits at the same moment raises `IntegrityError` there and the whole batch rolls back
    (admit one by one then).
    Events of a coalesced kind join the kind's pending execution (or the one this batch opens): its row is
    locked and its params written once per batch.
    """
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            return await _admit(conn, arrivals, known=None)
    except IntegrityError:
        pass  # an id was admitted before (a redelivery): again, with the known ids looked up
    async with engine.begin() as conn:
        return await _admit(conn, arrivals, known=await _known(conn, arrivals))


async def _known(conn: AsyncConnection, arrivals: Sequence[Arrival]) -> dict[str, Any]:
    """The inbox rows (id, execution, status) of the arrivals' ids already admitted."""
    i = event_inbox.c
    return {row.event_id: row for row in (await conn.execute(
        select(i.event_id, i.execution_id, i.status).where(i.event_id.in_({a.event_id for a in arrivals}))))}


async def _admit(conn: AsyncConnection, arrivals: Sequence[Arrival], known: dict[str, Any] | None) -> list[Admission]:
    """The admission of `arrivals` in `conn`'s transaction; `known`: the ids admitted before (None: take
    every id as new, and let the inbox's key refuse a known one)."""
    batch = _Batch(conn)
    admitted: dict[str, Admission] = {}
    out = []
    for a in arrivals:
        if a.event_id in admitted:  # the same id twice in one window: launched (at most) once, for the first
            out.append(replace(admitted[a.event_id], launched=True, duplicate=True))
            continue
        row = (known or {}).get(a.event_id)
        admission = (Admission(a.event_id, row.execution_id, launched=row.status == "launched", duplicate=True)
                     if row else await batch.admit(a))
        admitted[a.event_id] = admission
        out.append(admission)
    await batch.write()
    return out


@dataclass
class _Pending:
    """A pending execution events may join in this transaction: found (row locked) or opened by the batch."""

    id: str
    kind: str
    trigger: str
    params: dict[str, Any]
    launched: bool
    opened_by: str | None = None  # the event id that opened it in this batch (inserted at `write`)
    gathering: Gathering | None = None  # of a coalesced kind: the events joining it in this batch
    grown: bool = False


class _Batch:
    """The rows of one admission transaction: inbox rows, executions opened, pending executions grown."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.now = utcnow()
        self.inbox: list[dict[str, Any]] = []
        self.pending: dict[tuple[str, str], list[_Pending]] = {}
        self.opened: list[_Pending] = []

    async def admit(self, a: Arrival) -> Admission:
        pending = await self._pending(a.kind, a.trigger) if a.kind in COALESCED else []
        # The newest pending execution that can take the event (an older one may be full: at its bounds).
        joins = next((p for p in reversed(pending) if p.gathering is not None and p.gathering.join(a.params)), None)
        if joins is not None:
            slot = joins
            slot.grown = True
        else:
            slot = _Pending(new_execution_id(), a.kind, a.trigger, initial(a.kind, a.params), launched=False,
                            opened_by=a.event_id)
            self.opened.append(slot)
            if a.kind in COALESCED:
                slot.gathering = Gathering(a.kind, slot.params)
                pending.append(slot)
        self.inbox.append({"event_id": a.event_id, "type": a.event_type, "source": a.source,
                           "status": "launched" if slot.launched else "received", "execution_id": slot.id,
                           "received_at": self.now, "launched_at": self.now if slot.launched else None,
                           "body": a.body.decode("utf-8")})
        return Admission(a.event_id, slot.id, launched=slot.launched, duplicate=False,
                         joined=slot.opened_by != a.event_id)

    async def _pending(self, kind: str, trigger: str) -> list[_Pending]:
        """The kind's pending executions, oldest first, their rows locked (looked up once per batch)."""
        if (kind, trigger) not in self.pending:
            e, i = executions.c, event_inbox.c
            rows = (await self.conn.execute(
                select(e.id, e.params).where(e.kind == kind, e.status == "pending", e.trigger == trigger,
                                             e.replay_of.is_(None))
                .order_by(e.created_at).with_for_update())).all()
            unknown = [r.id for r in rows if r.id not in _launched]  # steady state: the one pending is known
            if unknown:
                _remember_launched((await self.conn.execute(select(i.execution_id).distinct().where(
                    i.execution_id.in_(unknown), i.status == "launched"))).scalars())
            launched = {r.id for r in rows if r.id in _launched}
            self.pending[(kind, trigger)] = [
                _Pending(str(r.id), kind, trigger, dict(r.params), r.id in launched,
                         gathering=Gathering(kind, dict(r.params))) for r in rows]
        return self.pending[(kind, trigger)]

    async def write(self) -> None:
        """Insert the executions opened and the inbox rows, write the grown params of the pending ones."""
        found = [slot for slots in self.pending.values() for slot in slots if slot.opened_by is None]
        for slot in [*self.opened, *found]:
            if slot.grown and slot.gathering is not None:
                slot.params = slot.gathering.params()  # once per batch, however many events joined
        await insert_executions(self.conn, [  # one statement for the batch's new executions
            pending_execution(slot.id, kind=slot.kind, trigger=slot.trigger, params=slot.params,
                              event_id=slot.opened_by, created_at=self.now) for slot in self.opened])
        if self.inbox:
            await self.conn.execute(event_inbox.insert(), self.inbox)
        for slot in found:
            if slot.grown:
                await self.conn.execute(update(executions).where(executions.c.id == slot.id).values(params=slot.params))


async def _existing(event_id: str) -> Admission:
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(event_inbox.c.execution_id, event_inbox.c.status).where(event_inbox.c.event_id == event_id)
        )).one()
    return Admission(event_id, row.execution_id, launched=row.status == "launched", duplicate=True)


@retry_transient
async def mark_launched(*event_ids: str, executions: Iterable[str] = ()) -> None:
    """Record that the events' canvases (of `executions`, when the caller names them) were sent to the
    broker (one transaction)."""
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(update(event_inbox).where(event_inbox.c.event_id.in_(event_ids))
                           .values(status="launched", launched_at=utcnow()))
    _remember_launched(executions)


async def inbox_entry(event_id: str) -> dict[str, Any] | None:
    """The inbox row of `event_id`, or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(event_inbox).where(event_inbox.c.event_id == event_id))).first()
    return dict(row._mapping) if row else None

