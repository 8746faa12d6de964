"""Reads of the execution records (every query once), and pruning.

One execution (`get_execution`, `find_execution` by id or prefix), its stage rows (`stage_rows`), its
lineage (`execution_lineage`: the `replay_of` walk), what its lineage already did (`succeeded_outputs`,
as the planners and the replay planner see it), listings for operators, and `prune_records`.
`parse_age` is the pure parser of `--since 24h` / `--older-than 90d`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select, update

from shared.config.errors import ConfigError
from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import event_inbox, execution_stages, executions, notifications, watchdog_alerts
from shared.records.status import OPEN, TERMINAL, ExecutionStatus, StageStatus
from shared.runtime.clock import utcnow

AGE = re.compile(r"(\d{1,6})([mhd])")
AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MIN_PREFIX = 4  # characters of an id an operator may type instead of the whole id
PRUNE_BATCH = 500
RERUN_STAGES = "rerun_stages"  # params key of a replay that reruns these stages whole (`replay --from-stage`)


class UnknownExecution(ConfigError):
    """No execution has that id (or the prefix matches none, or several): bad input, exit code 2."""


def parse_age(text: str) -> dt.timedelta:
    """`30m`, `24h`, `90d` as a timedelta; ValueError (one line) for anything else or zero."""
    match = AGE.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"expected a positive number with m, h or d (e.g. 24h, 90d), got {text!r}")
    return dt.timedelta(**{AGE_UNITS[match.group(2)]: int(match.group(1))})


async def list_executions(*, status: str | None = None, kind: str | None = None, trigger: str | None = None,
                          since: dt.timedelta | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Executions matching the filters, newest first (params left out: `show` has them)."""
    e = executions.c
    query = (select(e.id, e.kind, e.trigger, e.status, e.attempt, e.replay_of, e.event_id, e.failed_stage,
                    e.created_at, e.started_at, e.finished_at, e.error)
             .order_by(e.created_at.desc(), e.id).limit(limit))
    for column, value in ((e.status, status), (e.kind, kind), (e.trigger, trigger)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(e.created_at >= utcnow() - since)
    engine = await app_engine()
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def find_execution(id_or_prefix: str) -> dict[str, Any]:
    """The execution with this id, or the only one whose id starts with it; `UnknownExecution` otherwise."""
    wanted = id_or_prefix.strip()
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(executions).where(executions.c.id == wanted))).first()
        if row is None and len(wanted) >= MIN_PREFIX:
            prefixed = executions.c.id.startswith(wanted, autoescape=True)
            found = (await conn.execute(select(executions).where(prefixed).limit(2))).all()
            if len(found) > 1:
                matches = int((await conn.execute(
                    select(func.count()).select_from(executions).where(prefixed))).scalar_one())
                raise UnknownExecution(f"execution id {wanted!r} is ambiguous: {matches} executions start with "
                                       "it; give more characters")
            row = found[0] if found else None
    if row is None:
        raise UnknownExecution(f"no execution {wanted!r}")
    return dict(row._mapping)


async def get_execution(execution_id: str) -> dict[str, Any] | None:
    """The execution row as a dict, or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(executions).where(executions.c.id == execution_id))).first()
    return dict(row._mapping) if row else None


async def execution_lineage(execution_id: str) -> list[dict[str, Any]]:
    """The execution and the ones it replays (`replay_of`), newest first, as full rows (the walk stops at
    a pruned one)."""
    chain: list[dict[str, Any]] = []
    current: str | None = execution_id
    engine = await app_engine()
    async with engine.connect() as conn:
        while current is not None and all(r["id"] != current for r in chain):
            row = (await conn.execute(select(executions).where(executions.c.id == current))).first()
            if row is None:
                break  # pruned
            chain.append(dict(row._mapping))
            current = row.replay_of
    return chain


async def replays_of(execution_id: str) -> list[dict[str, Any]]:
    """The executions that replay `execution_id`, and theirs in turn (oldest first)."""
    found: list[dict[str, Any]] = []
    frontier = [execution_id]
    engine = await app_engine()
    async with engine.connect() as conn:
        while frontier:
            rows = [dict(r._mapping) for r in await conn.execute(
                select(executions).where(executions.c.replay_of.in_(frontier)).order_by(executions.c.created_at))]
            rows = [r for r in rows if all(r["id"] != f["id"] for f in found)]
            found += rows
            frontier = [r["id"] for r in rows]
    return found


async def stage_rows(execution_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The `execution_stages` rows of these executions, in start order."""
    if not execution_ids:
        return []
    s = execution_stages.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(execution_stages).where(s.execution_id.in_(list(execution_ids)))
                                  .order_by(s.started_at, s.id))
        return [dict(r._mapping) for r in rows]


async def get_stages(execution_id: str) -> list[dict[str, Any]]:
    """One execution's stage rows, in start order (`stage_rows` of one)."""
    return await stage_rows([execution_id])


def visible_lineage(chain: Sequence[tuple[str, Mapping[str, Any] | None]], stage: str) -> list[str]:
    """Of a lineage (newest first, each with its params), the executions whose rows count for `stage`.

    An execution whose params list `stage` under `rerun_stages` reruns it on purpose: the rows of the
    executions it replays are hidden for that stage, so none of their shards is skipped.
    """
    ids: list[str] = []
    for execution_id, params in chain:
        ids.append(execution_id)
        if stage in (params or {}).get(RERUN_STAGES, ()):
            break
    return ids


async def succeeded_outputs(execution_id: str, stage: str) -> dict[str, dict[str, Any]]:
    """Shard → output of the stage's succeeded rows across the execution's lineage (newest wins).

    A replay reads what its predecessors already did here: their succeeded shards are not rerun —
    unless it reruns `stage` on purpose (`visible_lineage`).
    """
    chain = [(str(e["id"]), e["params"]) for e in await execution_lineage(execution_id)]
    ids = visible_lineage(chain or [(execution_id, None)], stage)
    s = execution_stages.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(s.execution_id, s.shard, s.result)
            .where(s.execution_id.in_(ids), s.stage == stage, s.status == StageStatus.SUCCEEDED)
        )).all()
    rank = {eid: i for i, eid in enumerate(ids)}
    best: dict[str, tuple[int, dict[str, Any]]] = {}
    for row in rows:
        order = rank[row.execution_id]
        if row.shard not in best or order < best[row.shard][0]:
            best[row.shard] = (order, row.result or {})
    return {shard: output for shard, (_, output) in best.items()}


def _brief(execution: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": execution["id"], "status": execution["status"], "attempt": execution["attempt"]}


async def execution_details(id_or_prefix: str) -> dict[str, Any]:
    """`hrsync show`: the execution (by id or unique prefix), its stage rows, its lineage and its replays."""
    execution = await find_execution(id_or_prefix)
    lineage = await execution_lineage(execution["id"])
    return {"execution": execution, "stages": await stage_rows([execution["id"]]),
            "events": await served_events([e["id"] for e in lineage]),
            "lineage": [_brief(e) for e in lineage[1:]],
            "replayed_by": [_brief(e) for e in await replays_of(execution["id"])]}


async def served_events(execution_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The events the executions serve (a replay: its source's), oldest first: id, type, received_at.

    Several when coalesced (docs/workflows.md); the inbox's `execution_id` says which execution serves one.
    """
    i = event_inbox.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(i.event_id, i.type, i.received_at)
                                   .where(i.execution_id.in_(list(execution_ids)))
                                   .order_by(i.received_at, i.event_id))).all()
    return [dict(row._mapping) for row in rows]


@dataclass(frozen=True)
class OutboxState:
    """The outbox as a replay sees it: rows the lineage built, by status, and the pending backlog."""

    by_status: Mapping[str, int]
    pending_ids: Sequence[int]


async def outbox_state(execution_ids: Sequence[str]) -> OutboxState:
    """Counts by status of the outbox rows `execution_ids` built, and the ids of every pending row."""
    n = notifications.c
    engine = await app_engine()
    async with engine.connect() as conn:
        counts = {status: int(count) for status, count in await conn.execute(
            select(n.status, func.count()).where(n.execution_id.in_(list(execution_ids))).group_by(n.status))}
        pending = [int(i) for i in (await conn.execute(
            select(n.id).where(n.status == "pending").order_by(n.id))).scalars()]
    return OutboxState(counts, pending)


async def failed_without_replay(since: dt.timedelta) -> list[dict[str, Any]]:
    """Failed executions created within `since` that no execution replays yet, oldest first."""
    child = executions.alias("child")
    query = (select(executions)
             .where(executions.c.status == ExecutionStatus.FAILED, executions.c.created_at >= utcnow() - since,
                    ~exists().where(child.c.replay_of == executions.c.id))
             .order_by(executions.c.created_at))
    engine = await app_engine()
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def count_in_flight() -> dict[str, int]:
    """How many executions are pending and running."""
    e = executions.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(e.status, func.count()).where(e.status.in_(OPEN))
                                  .group_by(e.status))
        return {status: int(count) for status, count in rows}


async def count_open_alerts() -> dict[str, int]:
    """How many watchdog alerts (`pipelines.watchdogs`) are open, per alert name."""
    a = watchdog_alerts.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(a.alert, func.count()).where(a.cleared_at.is_(None)).group_by(a.alert))
        return {alert: int(count) for alert, count in rows}


@dataclass
class PruneCounts:
    """What `prune_records` removed (or, dry, would remove); `open_kept`: old executions never finished."""

    executions: int = 0
    stages: int = 0
    inbox: int = 0  # inbox bodies removed (the ids stay until `ids_cutoff`)
    inbox_ids: int = 0  # inbox rows removed: those ids would be processed again if sent again
    open_kept: int = 0


async def prune_records(cutoff: dt.datetime, *, dry_run: bool, ids_cutoff: dt.datetime | None = None,
                        batch: int = PRUNE_BATCH) -> PruneCounts:
    """Remove finished executions created before `cutoff` and their stage rows, and the bodies of inbox rows
    received before it; inbox rows themselves (the event ids, the deduplication horizon) go only when
    received before `ids_cutoff` (never, when None). `batch` rows per transaction; `dry_run` only counts."""
    e, s, i = executions.c, execution_stages.c, event_inbox.c
    old = (e.created_at < cutoff, e.status.in_(TERMINAL))
    counts = PruneCounts()
    engine = await app_engine()
    async with engine.connect() as conn:
        counts.open_kept = int((await conn.execute(select(func.count()).select_from(executions).where(
            e.created_at < cutoff, e.status.not_in(TERMINAL)))).scalar_one())
        if dry_run:
            counts.executions = int((await conn.execute(
                select(func.count()).select_from(executions).where(*old))).scalar_one())
            counts.stages = int((await conn.execute(select(func.count()).select_from(execution_stages).where(
                s.execution_id.in_(select(e.id).where(*old))))).scalar_one())
            counts.inbox = int((await conn.execute(select(func.count()).select_from(event_inbox).where(
                i.received_at < cutoff, i.body.is_not(None)))).scalar_one())
            if ids_cutoff is not None:
                counts.inbox_ids = int((await conn.execute(select(func.count()).select_from(event_inbox).where(
                    i.received_at < ids_cutoff))).scalar_one())
            return counts
    while (removed := await _prune_batch(cutoff, batch)) != (0, 0):
        counts.executions += removed[0]
        counts.stages += removed[1]
    while inbox := await _prune_inbox_batch(cutoff, batch, ids=False):
        counts.inbox += inbox
    while ids_cutoff is not None and (inbox := await _prune_inbox_batch(ids_cutoff, batch, ids=True)):
        counts.inbox_ids += inbox
    return counts


@retry_transient
async def _prune_batch(cutoff: dt.datetime, batch: int) -> tuple[int, int]:
    """One transaction: up to `batch` old finished executions and their stage rows; (executions, stages)."""
    e, s = executions.c, execution_stages.c
    engine = await app_engine()
    async with engine.begin() as conn:
        ids = list((await conn.execute(select(e.id).where(e.created_at < cutoff, e.status.in_(TERMINAL))
                                       .order_by(e.created_at).limit(batch))).scalars())
        if not ids:
            return 0, 0
        stages = (await conn.execute(delete(execution_stages).where(s.execution_id.in_(ids)))).rowcount
        done = (await conn.execute(delete(executions).where(e.id.in_(ids)))).rowcount
    return int(done), int(stages)


@retry_transient
async def _prune_inbox_batch(cutoff: dt.datetime, batch: int, *, ids: bool) -> int:
    """One transaction: up to `batch` inbox rows received before `cutoff` lose their body (or, with `ids`,
    go whole); how many."""
    i = event_inbox.c
    engine = await app_engine()
    async with engine.begin() as conn:
        query = select(i.event_id).where(i.received_at < cutoff)
        keys = list((await conn.execute((query if ids else query.where(i.body.is_not(None)))
                                        .order_by(i.received_at).limit(batch))).scalars())
        if not keys:
            return 0
        if ids:
            return int((await conn.execute(delete(event_inbox).where(i.event_id.in_(keys)))).rowcount)
        return int((await conn.execute(update(event_inbox).where(i.event_id.in_(keys)).values(body=None))).rowcount)
