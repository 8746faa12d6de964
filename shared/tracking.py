"""Execution records: the `executions` row of a workflow and one `execution_stages` row per stage,
shard and attempt. Every write is idempotent (keyed on natural keys), so redelivered tasks and replays
update the same rows instead of adding new ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import app_engine, upsert
from shared.retry import retry_transient
from shared.tables import execution_stages, executions

TERMINAL = ("succeeded", "failed", "cancelled")
WORKFLOW, START, FINISH = "workflow", "@start", "@finish"  # the stage and shards of the claim and the finish
OPEN = ("pending", "running")
# Steps that are not the execution's own work: the claim and the finish (never beside shards of the same
# canvas) and the failure notice (it is about a failure, a replay may run beside it).
NOT_WORK = (WORKFLOW, "notify_failure")


@dataclass
class StageResult:
    """What a stage function returns: counts for the record and a small JSON-able `output`."""

    rows_in: int = 0
    rows_out: int = 0
    output: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "output": self.output}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_execution_id() -> str:
    return str(uuid.uuid4())


@retry_transient
async def create_execution(
    kind: str,
    trigger: str,
    params: dict[str, Any],
    *,
    execution_id: str | None = None,
    event_id: str | None = None,
    replay_of: str | None = None,
    attempt: int = 1,
) -> str:
    """Insert a `pending` execution (no-op if `execution_id` exists) and return its id."""
    execution_id = execution_id or new_execution_id()
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(
            upsert(conn, executions, []),
            [{"id": execution_id, "kind": kind, "trigger": trigger, "event_id": event_id,
              "replay_of": replay_of, "attempt": attempt, "status": "pending", "params": params,
              "created_at": utcnow()}],
        )
    return execution_id


@retry_transient
async def set_execution_status(
    execution_id: str,
    status: str,
    *,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    failed_stage: str | None = None,
) -> None:
    """Move an open (pending/running) execution to `status`; a finished or cancelled one stays as it is."""
    now = utcnow()
    values: dict[str, Any] = {"status": status}
    if status == "running":
        values["started_at"] = now
    if status in TERMINAL:
        values["finished_at"] = now
    if summary is not None:
        values["summary"] = summary
    if error is not None:
        values["error"] = error[:4000]
    if failed_stage is not None:
        values["failed_stage"] = failed_stage
    stmt = update(executions).where(executions.c.id == execution_id).values(**values)
    stmt = stmt.where(executions.c.status == "pending") if status == "running" \
        else stmt.where(executions.c.status.in_(OPEN))
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(stmt)


class ExecutionClosed(Exception):
    """The execution is cancelled or finished (or another canvas claimed it): the task stops at its start."""

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution {execution_id} is {status}")
        self.status = status


async def _lock_execution(conn: AsyncConnection, execution_id: str) -> Any:
    """The execution's row, locked for this transaction: every stage start and end of one execution goes
    through it in turn, so "is anything still running?" is answered on committed rows only."""
    return (await conn.execute(
        select(executions.c.status, executions.c.failed_stage).where(executions.c.id == execution_id)
        .with_for_update())).first()


@retry_transient
async def record_stage_start(
    execution_id: str, stage: str, shard: str, attempt: int, task_id: str | None, *,
    runs_when: Sequence[str] = OPEN, opens: bool = True,
) -> str | None:
    """Upsert the stage row as `running` (a redelivered attempt restarts the same row) and return the
    execution's status; when that status is not in `runs_when`, nothing is written (the step must stop).

    Earlier attempts of the shard still `running` never got their end recorded (the database went away
    as they failed): they are closed as `retrying`, since this attempt is their retry. With `opens`, a
    pending execution becomes running (a step run outside a canvas; the canvas's `start` claims instead).
    """
    engine = await app_engine()
    async with engine.begin() as conn:
        execution = await _lock_execution(conn, execution_id)
        status = execution.status if execution is not None else None
        if status is not None and status not in runs_when:
            return str(status)
        await conn.execute(
            upsert(conn, execution_stages, ["task_id", "status", "started_at", "finished_at",
                                            "error_type", "error_message"]),
            [{"execution_id": execution_id, "stage": stage, "shard": shard, "attempt": attempt,
              "task_id": task_id, "status": "running", "started_at": utcnow(), "finished_at": None,
              "error_type": None, "error_message": None}],
        )
        await conn.execute(
            update(execution_stages)
            .where(execution_stages.c.execution_id == execution_id, execution_stages.c.stage == stage,
                   execution_stages.c.shard == shard, execution_stages.c.attempt < attempt,
                   execution_stages.c.status == "running")
            .values(status="retrying", finished_at=utcnow(), error_type="AttemptLost",
                    error_message=f"its end was never recorded; attempt {attempt} took over")
        )
        if opens and status == "pending":
            await conn.execute(update(executions).where(executions.c.id == execution_id,
                                                        executions.c.status == "pending")
                               .values(status="running", started_at=utcnow()))
            status = "running"
    return status


@retry_transient
async def record_stage_end(
    execution_id: str,
    stage: str,
    shard: str,
    attempt: int,
    *,
    status: str,
    duration_ms: int,
    result: StageResult | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    fails_execution: str | None = None,
) -> None:
    """Finish the stage row with its status, timings, counts, output or error.

    `fails_execution` (a final failure, as the execution's error): the execution is failed — at once when
    nothing else of it still runs, else by the last of its steps to end (so a replay never runs beside
    them). Any step's end completes such a pending failure.
    """
    values: dict[str, Any] = {
        "status": status, "finished_at": utcnow(), "duration_ms": duration_ms,
        "error_type": error_type, "error_message": (error_message or "")[:4000] or None,
    }
    if result is not None:
        values.update(rows_in=result.rows_in, rows_out=result.rows_out, result=result.output)
    engine = await app_engine()
    async with engine.begin() as conn:
        execution = await _lock_execution(conn, execution_id)
        await conn.execute(
            update(execution_stages)
            .where(execution_stages.c.execution_id == execution_id, execution_stages.c.stage == stage,
                   execution_stages.c.shard == shard, execution_stages.c.attempt == attempt)
            .values(**values)
        )
        await _settle(conn, execution_id, execution, stage, fails_execution)


@retry_transient
async def record_task_lost(execution_id: str, task_id: str | None, stage: str, error: str) -> None:
    """A task failed where `run_stage` could not record it (time limit, lost worker): its running rows are
    closed as failed and the execution fails as `record_stage_end` would."""
    engine = await app_engine()
    async with engine.begin() as conn:
        execution = await _lock_execution(conn, execution_id)
        if task_id is not None:
            await conn.execute(
                update(execution_stages)
                .where(execution_stages.c.execution_id == execution_id, execution_stages.c.task_id == task_id,
                       execution_stages.c.status == "running")
                .values(status="failed", finished_at=utcnow(), error_type="TaskLost", error_message=error[:4000]))
        await _settle(conn, execution_id, execution, stage, error)


async def _settle(conn: AsyncConnection, execution_id: str, execution: Any, stage: str,
                  failure: str | None) -> None:
    """Record a final failure on the open execution and fail it once none of its work still runs."""
    if execution is None or execution.status not in OPEN:
        return  # finished or cancelled: stays as it is
    e = executions.c
    if failure is not None and execution.failed_stage is None:
        await conn.execute(update(executions).where(e.id == execution_id)
                           .values(failed_stage=stage, error=failure[:4000]))
    elif failure is None and execution.failed_stage is None:
        return  # nothing failed: the chain goes on
    if not await _work_running(conn, execution_id):
        await conn.execute(update(executions).where(e.id == execution_id, e.status.in_(OPEN))
                           .values(status="failed", finished_at=utcnow()))


async def _work_running(conn: AsyncConnection, execution_id: str) -> bool:
    """Whether a shard of the execution is running or will be retried (its latest attempt's status)."""
    s = execution_stages.c
    rows = await conn.execute(select(s.stage, s.shard, s.attempt, s.status)
                              .where(s.execution_id == execution_id, s.stage.not_in(NOT_WORK)))
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for row in rows:
        key = (row.stage, row.shard)
        if key not in latest or row.attempt > latest[key][0]:
            latest[key] = (row.attempt, row.status)
    return any(status in ("running", "retrying") for _, status in latest.values())


@retry_transient
async def cancel_execution(execution_id: str, reason: str | None = None) -> tuple[str, int]:
    """Cancel a pending or running execution: (the status it had, its steps still running).

    A finished execution is left as it is (the status returned says so). The running steps end their
    current step; every later task of the execution stops at its start.
    """
    engine = await app_engine()
    async with engine.begin() as conn:
        execution = await _lock_execution(conn, execution_id)
        if execution is None:
            return "missing", 0
        if execution.status not in OPEN:
            return str(execution.status), 0
        running = int((await conn.execute(
            select(func.count()).select_from(execution_stages)
            .where(execution_stages.c.execution_id == execution_id,
                   execution_stages.c.status == "running"))).scalar_one())
        await conn.execute(update(executions).where(executions.c.id == execution_id)
                           .values(status="cancelled", finished_at=utcnow(),
                                   error=f"cancelled: {reason}" if reason else "cancelled"))
    return str(execution.status), running


async def get_execution(execution_id: str) -> dict[str, Any] | None:
    """The execution row as a dict, or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(executions).where(executions.c.id == execution_id))).first()
    return dict(row._mapping) if row else None


async def get_stages(execution_id: str) -> list[dict[str, Any]]:
    """The execution's stage rows, in start order."""
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(execution_stages)
            .where(execution_stages.c.execution_id == execution_id)
            .order_by(execution_stages.c.started_at, execution_stages.c.id)
        )
    return [dict(r._mapping) for r in rows]


def shard_name(text: str, limit: int = 64) -> str:
    """`text` as an `execution_stages.shard` value: kept when short, else clipped with a digest."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 13]}~{hashlib.sha256(text.encode()).hexdigest()[:12]}"


RERUN_STAGES = "rerun_stages"  # params key of a replay that reruns these stages whole (`replay --from-stage`)


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


async def lineage_params(execution_id: str) -> list[tuple[str, dict[str, Any] | None]]:
    """The execution and the ones it replays (`replay_of` links), newest first, with their params."""
    chain: list[tuple[str, dict[str, Any] | None]] = []
    current: str | None = execution_id
    engine = await app_engine()
    async with engine.connect() as conn:
        while current is not None and current not in (eid for eid, _ in chain):
            row = (await conn.execute(select(executions.c.replay_of, executions.c.params)
                                      .where(executions.c.id == current))).first()
            chain.append((current, dict(row.params or {}) if row else None))
            current = row.replay_of if row else None
    return chain


async def lineage(execution_id: str) -> list[str]:
    """The execution and the ones it replays, newest first (`replay_of` links)."""
    return [eid for eid, _ in await lineage_params(execution_id)]


async def succeeded_outputs(execution_id: str, stage: str) -> dict[str, dict[str, Any]]:
    """Shard → output of the stage's succeeded rows across the execution's lineage (newest wins).

    A replay reads what its predecessors already did here: their succeeded shards are not rerun —
    unless it reruns `stage` on purpose (`visible_lineage`).
    """
    ids = visible_lineage(await lineage_params(execution_id), stage)
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(execution_stages.c.execution_id, execution_stages.c.shard, execution_stages.c.result)
            .where(execution_stages.c.execution_id.in_(ids), execution_stages.c.stage == stage,
                   execution_stages.c.status == "succeeded")
        )).all()
    rank = {eid: i for i, eid in enumerate(ids)}
    best: dict[str, tuple[int, dict[str, Any]]] = {}
    for row in rows:
        order = rank[row.execution_id]
        if row.shard not in best or order < best[row.shard][0]:
            best[row.shard] = (order, row.result or {})
    return {shard: output for shard, (_, output) in best.items()}


async def succeeded_result(execution_id: str, stage: str, shard: str) -> StageResult | None:
    """The recorded result of a shard that already succeeded in this execution, or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(execution_stages.c.rows_in, execution_stages.c.rows_out, execution_stages.c.result)
            .where(execution_stages.c.execution_id == execution_id, execution_stages.c.stage == stage,
                   execution_stages.c.shard == shard, execution_stages.c.status == "succeeded")
            .limit(1)
        )).first()
    if row is None:
        return None
    return StageResult(row.rows_in or 0, row.rows_out or 0, dict(row.result or {}))


CLAIMED_BY = "claimed_by"


@retry_transient
async def claim_execution(execution_id: str, task_id: str) -> str:
    """pending → running, once, by the canvas whose `start` task is `task_id`.

    Returns `claimed` (this call moved it) or `continued` (this task claimed it before: a redelivered
    `start` of the same canvas goes on); raises `ExecutionClosed` when another canvas claimed it or the
    execution is finished or cancelled. The claimer is stored in the `workflow/@start` stage row in the
    same transaction as the claim, so a crash between the two cannot happen.
    """
    s = execution_stages.c
    engine = await app_engine()
    async with engine.begin() as conn:
        moved = await conn.execute(
            update(executions).where(executions.c.id == execution_id, executions.c.status == "pending")
            .values(status="running", started_at=utcnow()))
        if moved.rowcount:
            await conn.execute(update(execution_stages)
                               .where(s.execution_id == execution_id, s.stage == WORKFLOW, s.shard == START,
                                      s.task_id == task_id)
                               .values(result={CLAIMED_BY: task_id}))
            return "claimed"
        execution = await _lock_execution(conn, execution_id)
        claims = (await conn.execute(select(s.result).where(s.execution_id == execution_id, s.stage == WORKFLOW,
                                                            s.shard == START))).scalars()
        if execution is not None and execution.status == "running" \
                and any((r or {}).get(CLAIMED_BY) == task_id for r in claims):
            return "continued"
    raise ExecutionClosed(execution_id, "claimed by another launch" if execution is not None
                          and execution.status == "running" else str(getattr(execution, "status", "missing")))


async def claim_step(execution_id: str, task_id: str) -> StageResult:
    """The `start` step: claim the execution (see `claim_execution`)."""
    outcome = await claim_execution(execution_id, task_id)
    return StageResult(output={CLAIMED_BY: task_id, "claim": outcome})


@retry_transient
async def finish_execution(execution_id: str, stages: list[str]) -> dict[str, Any]:
    """Mark a running execution succeeded; its summary is each stage's `@done` output (across replays).

    A replay runs only some stages; its summary still covers every stage of its params. A cancelled
    execution stays cancelled.
    """
    execution = await get_execution(execution_id)
    stages = list(((execution or {}).get("params") or {}).get("stages") or stages)
    summary = {stage: (await succeeded_outputs(execution_id, stage)).get("@done") for stage in stages}
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(
            update(executions).where(executions.c.id == execution_id, executions.c.status == "running",
                                     executions.c.failed_stage.is_(None))
            .values(status="succeeded", finished_at=utcnow(), summary=summary))
    return summary


async def finish_step(execution_id: str, stages: list[str]) -> StageResult:
    """The `finish` step: the execution succeeds with its summary (see `finish_execution`)."""
    return StageResult(output=await finish_execution(execution_id, stages))
