"""Writes of a workflow's execution records: the `executions` row and one `execution_stages` row per
stage, shard and attempt. Every write is idempotent (keyed on natural keys), so redelivered tasks and
replays update the same rows instead of adding new ones.

Executions are inserted in one place (`insert_execution`: the bridge's admission, a replay), and moved
from pending to running in one place (`_start_running`: the canvas's claim, or a step run outside one).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine, upsert
from shared.database.tables import execution_stages, executions
from shared.records.queries import get_execution, succeeded_outputs
from shared.records.shards import ShardKind
from shared.records.status import OPEN, ExecutionStatus, StageStatus
from shared.runtime.clock import utcnow

WORKFLOW = "workflow"  # the stage of the claim and the finish
FAILURE_STAGE = "notify_failure"  # the stage of the failure notice
# Steps that are not the execution's own work: the claim and the finish (never beside shards of the same
# canvas) and the failure notice (it is about a failure, a replay may run beside it).
NOT_WORK = (WORKFLOW, FAILURE_STAGE)
CLAIMED_BY = "claimed_by"
REPLAY_NAMESPACE = uuid.UUID("5d7b3c1e-9a4f-4c8e-8a57-2f0e6c1d9b3a")


class StepResult(Protocol):
    """What a step's end records: its counts and a small JSON-able output (`pipelines.stage.StageResult`)."""

    rows_in: int
    rows_out: int
    output: dict[str, Any]


class ExecutionClosed(Exception):
    """The execution is cancelled or finished (or another canvas claimed it): the task stops at its start."""

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution {execution_id} is {status}")
        self.status = status


class StepDeferred(Exception):
    """The step cannot start yet (another execution of its kind holds the kind): it is sent again when the
    kind is released, and the wait is not an attempt. `parked`: this message's copy is parked on the
    execution's `@start` row (this message then also waits in the worker, the slow safety net); else
    another copy is (a woken copy found the kind taken again), and this message is dropped."""

    def __init__(self, execution_id: str, reason: str, *, parked: bool = True) -> None:
        super().__init__(f"execution {execution_id} waits: {reason}")
        self.parked = parked


def new_execution_id() -> str:
    """A fresh execution id (a random UUID)."""
    return str(uuid.uuid4())


def replay_id(source_id: str) -> str:
    """The id of the (one) replay of `source_id`: two operators replaying at once create one execution."""
    return str(uuid.uuid5(REPLAY_NAMESPACE, f"replay:{source_id}"))


async def insert_execution(conn: AsyncConnection, execution_id: str, *, kind: str, trigger: str,
                           params: dict[str, Any], event_id: str | None = None, replay_of: str | None = None,
                           attempt: int = 1, created_at: dt.datetime | None = None) -> None:
    """Insert a `pending` execution in the caller's transaction (`IntegrityError` if the id exists)."""
    await insert_executions(conn, [pending_execution(execution_id, kind=kind, trigger=trigger, params=params,
                                                     event_id=event_id, replay_of=replay_of, attempt=attempt,
                                                     created_at=created_at)])


def pending_execution(execution_id: str, *, kind: str, trigger: str, params: dict[str, Any],
                      event_id: str | None = None, replay_of: str | None = None, attempt: int = 1,
                      created_at: dt.datetime | None = None) -> dict[str, Any]:
    """The row of a new `pending` execution (`insert_executions`)."""
    return {"id": execution_id, "kind": kind, "trigger": trigger, "event_id": event_id, "replay_of": replay_of,
            "attempt": attempt, "status": ExecutionStatus.PENDING, "params": params,
            "created_at": created_at or utcnow()}


async def insert_executions(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `pending_execution` rows in the caller's transaction, in one statement (`IntegrityError` if an
    id exists)."""
    if rows:
        await conn.execute(executions.insert(), list(rows))


# Written in the action's own transaction (the operator_actions row): the action and its audit, or neither.
AuditWrite = Callable[[AsyncConnection, str], Awaitable[None]]


@retry_transient
async def create_replay(source: Mapping[str, Any], params: Mapping[str, Any],
                        audit: AuditWrite | None = None) -> tuple[str, bool]:
    """Insert the pending replay execution of `source`; (its id, False) if it already existed.
    `audit(conn, new_id)` runs in the same transaction."""
    new_id = replay_id(str(source["id"]))
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            await insert_execution(conn, new_id, kind=source["kind"], trigger="replay", params=dict(params),
                                   replay_of=source["id"], attempt=int(source["attempt"] or 1) + 1)
            if audit is not None:
                await audit(conn, new_id)
    except IntegrityError:
        return new_id, False
    return new_id, True


async def _start_running(conn: AsyncConnection, execution_id: str) -> bool:
    """pending → running (with `started_at`), the one place it is written; whether this call moved it."""
    moved = await conn.execute(update(executions)
                               .where(executions.c.id == execution_id,
                                      executions.c.status == ExecutionStatus.PENDING)
                               .values(status=ExecutionStatus.RUNNING, started_at=utcnow()))
    return bool(moved.rowcount)


async def _lock_execution(conn: AsyncConnection, execution_id: str, *, exclusive: bool = True) -> Any:
    """The execution's row, locked for this transaction: exclusive (`FOR UPDATE`) for what writes it,
    shared (`LOCK IN SHARE MODE`) for the steps' bookkeeping that only reads it. A writer waits until no
    step's bookkeeping holds the row and then blocks new ones, so "is anything still running?" is answered
    on committed rows only; shared holders do not wait for one another."""
    query = select(executions.c.status, executions.c.failed_stage).where(executions.c.id == execution_id)
    return (await conn.execute(query.with_for_update(read=not exclusive))).first()


@asynccontextmanager
async def _execution_locked(execution_id: str, writes: Callable[[Any], bool], *,
                            exclusive: bool = False) -> AsyncIterator[tuple[AsyncConnection, Any]]:
    """A transaction (committed when the block ends without raising) that holds the execution's row
    exclusive when `exclusive` is given or when `writes(row)` says the block will write it (the row as
    read under a shared lock; `None` when the execution does not exist), shared otherwise.

    Never upgraded in place: two shared holders both upgrading would deadlock. The shared transaction
    is rolled back before anything is written and begun again with the exclusive lock, and `writes` is
    not asked again (the block re-checks the row it gets).
    """
    engine = await app_engine()
    async with engine.connect() as conn:
        execution = await _lock_execution(conn, execution_id, exclusive=exclusive)
        if not exclusive and writes(execution):
            await conn.rollback()
            execution = await _lock_execution(conn, execution_id)
        yield conn, execution
        await conn.commit()


@retry_transient
async def record_stage_start(
    execution_id: str, stage: str, shard: str, attempt: int, task_id: str | None, *,
    runs_when: tuple[str, ...] = OPEN, opens: bool = True,
) -> str | None:
    """Upsert the stage row as `running` (a redelivered attempt restarts the same row) and return the
    execution's status; when that status is not in `runs_when`, nothing is written (the step must stop).

    Earlier attempts of the shard still `running` never got their end recorded (the database went away
    as they failed): they are closed as `retrying`, since this attempt is their retry. With `opens`, a
    pending execution becomes running (a step run outside a canvas; the canvas's `start` claims instead).
    """
    async with _execution_locked(execution_id, _opening(opens)) as (conn, execution):
        return (await _start_stage(conn, execution_id, execution, stage, shard, attempt, task_id, runs_when,
                                   opens, False))[1]


@retry_transient
async def begin_stage(
    execution_id: str, stage: str, shard: str, attempt: int, task_id: str | None, *,
    runs_when: tuple[str, ...] = OPEN, opens: bool = True,
) -> tuple[dict[str, Any] | None, str | None]:
    """The duplicate check and `record_stage_start` in one transaction: (the shard's recorded result —
    `rows_in`, `rows_out`, `output` — and the execution's status, nothing written) when it already succeeded
    in this execution, else (None, what `record_stage_start` returns)."""
    async with _execution_locked(execution_id, _opening(opens)) as (conn, execution):
        return await _start_stage(conn, execution_id, execution, stage, shard, attempt, task_id, runs_when,
                                  opens, True)


def _opening(opens: bool) -> Callable[[Any], bool]:
    """Whether a start writes the execution row: it moves a pending execution to running."""
    return lambda execution: opens and execution is not None and execution.status == ExecutionStatus.PENDING


async def _start_stage(conn: AsyncConnection, execution_id: str, execution: Any, stage: str, shard: str,
                       attempt: int, task_id: str | None, runs_when: tuple[str, ...], opens: bool,
                       done_first: bool) -> tuple[dict[str, Any] | None, str | None]:
    s = execution_stages.c
    status = execution.status if execution is not None else None
    if done_first:
        done = (await conn.execute(
            select(s.rows_in, s.rows_out, s.result)
            .where(s.execution_id == execution_id, s.stage == stage, s.shard == shard,
                   s.status == StageStatus.SUCCEEDED).limit(1))).first()
        if done is not None:
            recorded = {"rows_in": done.rows_in or 0, "rows_out": done.rows_out or 0, "output": dict(done.result or {})}
            return recorded, status
    if status is not None and status not in runs_when:
        return None, str(status)
    await conn.execute(
        upsert(conn, execution_stages, ["task_id", "status", "started_at", "finished_at",
                                        "error_type", "error_message"]),
        [{"execution_id": execution_id, "stage": stage, "shard": shard, "attempt": attempt,
          "task_id": task_id, "status": StageStatus.RUNNING, "started_at": utcnow(), "finished_at": None,
          "error_type": None, "error_message": None}],
    )
    if attempt > 1:  # a first attempt has no earlier one to close
        await conn.execute(
            update(execution_stages)
            .where(s.execution_id == execution_id, s.stage == stage, s.shard == shard, s.attempt < attempt,
                   s.status == StageStatus.RUNNING)
            .values(status=StageStatus.RETRYING, finished_at=utcnow(), error_type="AttemptLost",
                    error_message=f"its end was never recorded; attempt {attempt} took over")
        )
    if opens and status == ExecutionStatus.PENDING and await _start_running(conn, execution_id):
        status = ExecutionStatus.RUNNING
    return None, None if status is None else str(status)


@retry_transient
async def record_stage_end(
    execution_id: str,
    stage: str,
    shard: str,
    attempt: int,
    *,
    status: str,
    duration_ms: int,
    result: StepResult | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    fails_execution: str | None = None,
) -> str | None:
    """Finish the stage row with its status, timings, counts, output or error; the execution's status
    after it (None: the execution does not exist).

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
    s = execution_stages.c
    async with _execution_locked(execution_id, _completes_failure,
                                 exclusive=fails_execution is not None) as (conn, execution):
        await conn.execute(
            update(execution_stages)
            .where(s.execution_id == execution_id, s.stage == stage, s.shard == shard, s.attempt == attempt)
            .values(**values)
        )
        return await _settle(conn, execution_id, execution, stage, fails_execution)


@retry_transient
async def record_task_lost(execution_id: str, task_id: str | None, stage: str, error: str) -> None:
    """A task failed where `run_stage` could not record it (time limit, lost worker): its running rows are
    closed as failed and the execution fails as `record_stage_end` would."""
    s = execution_stages.c
    engine = await app_engine()
    async with engine.begin() as conn:
        execution = await _lock_execution(conn, execution_id)
        if task_id is not None:
            await conn.execute(
                update(execution_stages)
                .where(s.execution_id == execution_id, s.task_id == task_id, s.status == StageStatus.RUNNING)
                .values(status=StageStatus.FAILED, finished_at=utcnow(), error_type="TaskLost",
                        error_message=error[:4000]))
        await _settle(conn, execution_id, execution, stage, error)


def _completes_failure(execution: Any) -> bool:
    """Whether an end that fails nothing itself may write the execution row: a failure is pending on it."""
    return execution is not None and execution.status in OPEN and execution.failed_stage is not None


async def _settle(conn: AsyncConnection, execution_id: str, execution: Any, stage: str,
                  failure: str | None) -> str | None:
    """Record a final failure on the open execution and fail it once none of its work still runs; the
    execution's status then."""
    if execution is None or execution.status not in OPEN:
        return None if execution is None else str(execution.status)  # finished or cancelled: stays so
    e = executions.c
    if failure is not None and execution.failed_stage is None:
        await conn.execute(update(executions).where(e.id == execution_id)
                           .values(failed_stage=stage, error=failure[:4000]))
    elif failure is None and execution.failed_stage is None:
        return str(execution.status)  # nothing failed: the chain goes on
    if not await _work_running(conn, execution_id):
        await conn.execute(update(executions).where(e.id == execution_id, e.status.in_(OPEN))
                           .values(status=ExecutionStatus.FAILED, finished_at=utcnow()))
        return str(ExecutionStatus.FAILED)
    return str(execution.status)


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
    return any(status in (StageStatus.RUNNING, StageStatus.RETRYING) for _, status in latest.values())


@retry_transient
async def cancel_execution(execution_id: str, reason: str | None = None,
                           audit: AuditWrite | None = None) -> tuple[str, int]:
    """Cancel a pending or running execution: (the status it had, its steps still running).

    A finished execution is left as it is (the status returned says so). The running steps end their
    current step; every later task of the execution stops at its start. `audit(conn, previous status)`
    runs in the cancel's transaction (only when it cancels).
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
                   execution_stages.c.status == StageStatus.RUNNING))).scalar_one())
        await conn.execute(update(executions).where(executions.c.id == execution_id)
                           .values(status=ExecutionStatus.CANCELLED, finished_at=utcnow(),
                                   error=f"cancelled: {reason}" if reason else "cancelled"))
        if audit is not None:
            await audit(conn, str(execution.status))
    return str(execution.status), running


# Of a coalesced kind's execution: (stage, control step) pairs in pipeline order, the steps that end each
# stage's hold on the kind (`pipelines.stage.Stage.exclusive_until`); an execution holds its kind from its
# claim until the pair of the last of its stages listed here has succeeded in it. None: until it ends.
Holds = Sequence[tuple[str, str]] | None
PARKED = "parked"  # the `workflow/@start` row's result while the start waits: the message to send again


@retry_transient
async def claim_execution(execution_id: str, task_id: str, one_running: tuple[str, ...] = (),
                          holds: Holds = None, parked: Mapping[str, Any] | None = None) -> str:
    """pending → running, once, by the canvas whose `start` task is `task_id`.

    Returns `claimed` (this call moved it) or `continued` (this task claimed it before: a redelivered
    `start` of the same canvas goes on); raises `ExecutionClosed` when another canvas claimed it or the
    execution is finished or cancelled. The claimer is stored in the `workflow/@start` stage row in the
    same transaction as the claim, so a crash between the two cannot happen.

    For a kind in `one_running`, one execution holds the kind at a time (`holds`): while another holds it,
    the claim raises `StepDeferred` (and the pending one goes on gathering events). `parked` (the start
    message, JSON) is then written on the `@start` row in the same transaction, for `next_start`: whoever
    releases the kind sends it again at once.
    """
    s = execution_stages.c
    start = (s.execution_id == execution_id, s.stage == WORKFLOW, s.shard == ShardKind.START)
    kind = await _kind_of(execution_id) if one_running else None
    engine = await app_engine()
    waits: str | None = None
    async with engine.begin() as conn:
        if kind in one_running:
            waits = await _wait_for_kind(conn, execution_id, str(kind), holds)
        if waits is not None:
            if parked is not None:
                await conn.execute(update(execution_stages).where(*start).values(result={PARKED: dict(parked)}))
        elif await _start_running(conn, execution_id):
            await conn.execute(update(execution_stages).where(*start, s.task_id == task_id)
                               .values(result={CLAIMED_BY: task_id}))
            return "claimed"
        else:
            execution = await _lock_execution(conn, execution_id)
            claims = (await conn.execute(select(s.result).where(*start))).scalars()
            running = execution is not None and execution.status == ExecutionStatus.RUNNING
            if running and any((r or {}).get(CLAIMED_BY) == task_id for r in claims):
                return "continued"
    if waits is not None:  # after the commit: the park is written (a raise inside would roll it back)
        raise StepDeferred(execution_id, waits, parked=parked is not None)
    raise ExecutionClosed(execution_id, "claimed by another launch" if running
                          else str(getattr(execution, "status", "missing")))


async def _kind_of(execution_id: str) -> str | None:
    """The execution's kind, read outside the claim's transaction (it never changes): the transaction's
    first statement is then the lock of the kind's rows, and every plain read after it sees what was
    committed before those locks were granted (MariaDB's snapshot starts at the first plain read)."""
    engine = await app_engine()
    async with engine.connect() as conn:
        return (await conn.execute(select(executions.c.kind).where(executions.c.id == execution_id))).scalar()


async def _lock_kind(conn: AsyncConnection, kind: str) -> list[Any]:
    """The kind's pending and running executions, locked in one statement and so in one order (two claims
    of the kind, or a claim and `next_start`, take turns instead of both seeing none holding it)."""
    e = executions.c
    return list((await conn.execute(
        select(e.id, e.status, e.created_at)
        .where(e.kind == kind, e.status.in_((ExecutionStatus.PENDING, ExecutionStatus.RUNNING)))
        .order_by(e.status, e.created_at).with_for_update())).all())


async def _wait_for_kind(conn: AsyncConnection, execution_id: str, kind: str, holds: Holds) -> str | None:
    """Why `execution_id` (pending, of a kind that runs one execution at a time) cannot be claimed now, or
    None: another execution of the kind holds it (`_holder`), an older execution of the kind is pending
    (pending ones start oldest first), or a cancelled one of the kind still runs a step."""
    rows = await _lock_kind(conn, kind)
    mine = next((r for r in rows if r.id == execution_id), None)
    if mine is None or mine.status != ExecutionStatus.PENDING:
        return None
    holder = await _holder(conn, [r.id for r in rows if r.id != execution_id
                                  and r.status == ExecutionStatus.RUNNING], holds)
    if holder is not None:
        return f"{kind} execution {holder} is running"
    older = next((r.id for r in rows if r.status == ExecutionStatus.PENDING
                  and (r.created_at, str(r.id)) < (mine.created_at, execution_id)), None)
    if older is not None:
        return f"the older pending {kind} execution {older} starts first"
    ending = await cancelled_still_running(conn, kind)
    if ending:
        return f"cancelled {kind} execution {ending[0]} still runs a step"
    return None


def hold_of(stages: Sequence[str] | None, holds: Holds) -> tuple[str, str] | None:
    """The step whose success ends the hold of an execution running `stages` on its kind (see `Holds`):
    that of the last of its stages in `holds`; None when none of them holds the kind. Raises `LookupError`
    when the execution holds its kind until it ends (no `holds` given, or its stages are not known)."""
    if holds is None or stages is None:
        raise LookupError("held until the execution ends")
    return next((pair for pair in reversed(list(holds)) if pair[0] in stages), None)


async def _holder(conn: AsyncConnection, running: Sequence[str], holds: Holds) -> str | None:
    """Of the kind's `running` executions (locked), one that still holds the kind: it has not reached the
    end of its hold (`hold_of`, its own row succeeded: a replay reruns its hold's stage)."""
    if not running:
        return None
    e, s = executions.c, execution_stages.c
    ends: dict[str, tuple[str, str]] = {}
    for row in (await conn.execute(select(e.id, e.params).where(e.id.in_(running)))).all():
        try:
            end = hold_of((row.params or {}).get("stages"), holds)
        except LookupError:
            return str(row.id)
        if end is not None:
            ends[str(row.id)] = end
    if not ends:
        return None
    done = {(str(r.execution_id), r.stage, r.shard) for r in (await conn.execute(
        select(s.execution_id, s.stage, s.shard)
        .where(s.execution_id.in_(list(ends)), s.status == StageStatus.SUCCEEDED,
               s.stage.in_({stage for stage, _ in ends.values()}),
               s.shard.in_({shard for _, shard in ends.values()})))).all()}
    return next((i for i, (stage, shard) in ends.items() if (i, stage, shard) not in done), None)


@retry_transient
async def next_start(execution_id: str, one_running: tuple[str, ...], holds: Holds = None) -> dict[str, Any] | None:
    """After a step of `execution_id` ended in a way that may free its kind (the end of its hold, its
    finish, failure or cancel): the parked start message of the oldest pending execution of the kind, when
    nothing holds the kind any more; None otherwise. The caller sends it again (with a task id of its own).

    Its transaction locks the kind's rows as a claim does, so a claim that parks its start concurrently
    either sees the kind free (and claims) or has committed its park before this reads it.
    """
    kind = await _kind_of(execution_id)
    if kind not in one_running:
        return None
    s = execution_stages.c
    engine = await app_engine()
    async with engine.begin() as conn:
        rows = await _lock_kind(conn, str(kind))
        pending = sorted((r for r in rows if r.status == ExecutionStatus.PENDING),
                         key=lambda r: (r.created_at, str(r.id)))
        if not pending:
            return None
        if await _holder(conn, [r.id for r in rows if r.status == ExecutionStatus.RUNNING], holds) is not None:
            return None
        if await cancelled_still_running(conn, str(kind)):
            return None
        parked = (await conn.execute(
            select(s.result).where(s.execution_id == pending[0].id, s.stage == WORKFLOW, s.shard == ShardKind.START)
            .order_by(s.attempt.desc()).limit(1))).scalar()
    found = (parked or {}).get(PARKED)
    return dict(found) if isinstance(found, Mapping) else None


async def cancelled_still_running(conn: AsyncConnection, kind: str) -> list[str]:
    """Cancelled executions of `kind` with a step still running: they count as running for their kind.

    A step row `running` for longer than the task's hard time limit is not running any more (Celery
    killed it; a redelivery of a cancelled execution's task stops at its start without closing the row).
    The workflow's own rows do not count: a `@start` row stays `running` while its start waits for the
    kind (parked), and a cancelled pending execution whose start waited ran nothing.
    """
    e, s = executions.c, execution_stages.c
    alive_since = utcnow() - dt.timedelta(seconds=get_settings().task_time_limit)
    return [str(i) for i in (await conn.execute(
        select(e.id).distinct().join(execution_stages, s.execution_id == e.id)
        .where(e.kind == kind, e.status == ExecutionStatus.CANCELLED, s.status == StageStatus.RUNNING,
               s.stage != WORKFLOW, s.started_at > alive_since))).scalars()]


@retry_transient
async def finish_execution(execution_id: str, stages: list[str]) -> dict[str, Any]:
    """Mark a running execution succeeded; its summary is each stage's `@done` output (across replays).

    A replay runs only some stages; its summary still covers every stage of its params. A cancelled
    execution stays cancelled.
    """
    execution = await get_execution(execution_id)
    stages = list(((execution or {}).get("params") or {}).get("stages") or stages)
    summary = {stage: (await succeeded_outputs(execution_id, stage)).get(ShardKind.DONE) for stage in stages}
    e = executions.c
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(
            update(executions).where(e.id == execution_id, e.status == ExecutionStatus.RUNNING,
                                     e.failed_stage.is_(None))
            .values(status=ExecutionStatus.SUCCEEDED, finished_at=utcnow(), summary=summary))
    return summary

