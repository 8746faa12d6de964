"""The operator's actions on executions and dead letters, for the CLI and the web console alike.

Plain synchronous functions (they hop to the runner with `run_async`); each returns a small dataclass
whose `as_json()` is what `hrsync … --json` prints and what the console's `/api/` returns. Every
action (not the dry run) writes an `operator_actions` row with `actor` and `via` (DESIGN §7).

Errors are `shared.config.errors` classes with the CLI's exit codes: `UnknownExecution` (bad input, 2),
`ReplayRefused` / `CancelRefused` / `HrsyncError` (refused or failed operation, 1), `ConfigError` (a
bad `from_stage`, 2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.replay import ReplayPlan, ReplayRefused
from pipelines.replay import plan_replay as plan_from_rows
from shared.config.errors import ConfigError, HrsyncError
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.events.dead_letters import DeadLetter
from shared.events.dead_letters import replay_dead_letters as republish_dead_letters
from shared.records.executions import AuditWrite, cancel_execution, create_replay
from shared.records.operator_actions import checked_reason, record_operator_action
from shared.records.queries import (
    execution_lineage,
    failed_without_replay,
    find_execution,
    outbox_state,
    replays_of,
    served_events,
    stage_rows,
)
from shared.records.status import OPEN, ExecutionStatus
from shared.runtime.clock import utcnow
from shared.runtime.runner import run_async

REPLAY, CANCEL, DLQ_REPLAY = "replay", "cancel", "dlq_replay"  # `operator_actions.action` values


class CancelRefused(HrsyncError):
    """The execution is already finished (succeeded, failed or cancelled): exit code 1."""


@dataclass
class ReplayOutcome:
    """One replay: the new execution (`execution_id`), or why there is none (`skipped` / `error`).

    `relaunched`: a replay created earlier but never started was launched again; `plan`: what it runs
    and the events it serves (a dry run has the plan and no execution).
    """

    replay_of: str
    execution_id: str | None = None
    stages: list[str] = field(default_factory=list)
    relaunched: bool = False
    dry_run: bool = False
    plan: ReplayPlan | None = None
    skipped: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "plan": self.plan.as_json() if self.plan else None}


@dataclass
class CancelOutcome:
    """A cancel: the status the execution had, how many of its steps were running (they end their
    current step; nothing of the execution starts afterwards) and how many events it holds (a replay of
    the cancelled execution serves them). A dry run (`dry_run`) changes nothing."""

    execution_id: str
    previous_status: str
    running_steps: int
    reason: str | None
    status: str = ExecutionStatus.CANCELLED
    events: int = 0
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeadLetterReplayOutcome:
    """A dead-letter replay: the letters republished, those left as they were (with the error), and the
    ids asked for that name no letter waiting for a replay."""

    replayed: list[dict[str, Any]]
    failed: list[dict[str, str]]
    not_found: list[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- replay --------------------------------------------------------------------------------------------

def _direct_replays(execution_id: str) -> list[dict[str, Any]]:
    return [c for c in run_async(replays_of(execution_id)) if c["replay_of"] == execution_id]


def _plan(source: Mapping[str, Any], from_stage: str | None, *, ignore_replays: bool = False) -> ReplayPlan:
    lineage = run_async(execution_lineage(source["id"]))
    ids = [e["id"] for e in lineage]
    children = [] if ignore_replays else _direct_replays(source["id"])
    outbox = run_async(outbox_state(ids))
    alive_since = utcnow() - dt.timedelta(seconds=get_settings().task_time_limit)  # older running rows ended
    plan = plan_from_rows(lineage, run_async(stage_rows(ids)), children=children, from_stage=from_stage,
                          outbox_by_status=outbox.by_status, pending_outbox_ids=outbox.pending_ids,
                          alive_since=alive_since)
    return replace(plan, events=[str(e["event_id"]) for e in run_async(served_events(ids))])


def plan_replay(execution_id: str, from_stage: str | None = None) -> ReplayPlan:
    """The dry run: what `replay` would run and skip, and the events it serves. Creates nothing, records nothing."""
    return _plan(run_async(find_execution(execution_id)), from_stage)


def _launch(execution_id: str, stages: list[str]) -> None:
    from workers.canvas import launch  # the Celery app: only when something is launched

    launch(execution_id, stages)


def _launch_new(plan: ReplayPlan, source: Mapping[str, Any], audit: AuditWrite) -> str:
    new_id, created = run_async(create_replay(source, plan.params, audit))
    if not created:
        raise HrsyncError(f"execution {source['id']} was just replayed by {new_id} (another operator?)")
    try:
        _launch(new_id, plan.stages)
    except Exception as exc:
        raise HrsyncError(f"replay {new_id} was created but not launched ({type(exc).__name__}: {exc}); "
                          f"replay {source['id']} again to launch it") from None
    return new_id


def _replay_audit(source_id: str, plan: ReplayPlan, from_stage: str | None, reason: str, relaunched: bool, *,
                  actor: str, via: str) -> AuditWrite:
    """The replay's `operator_actions` row, written in the transaction given (the new execution's)."""
    async def write(conn: AsyncConnection, new_id: str) -> None:
        await record_operator_action(REPLAY, source_id, {
            "execution_id": new_id, "stages": plan.stages, "from_stage": from_stage, "relaunched": relaunched,
            "reason": reason}, via=via, actor=actor, conn=conn)

    return write


async def _audit_alone(audit: AuditWrite, target: str) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await audit(conn, target)


def _relaunch_pending(source: Mapping[str, Any], from_stage: str | None, reason: str, *, actor: str,
                      via: str) -> ReplayOutcome | None:
    """A replay created but never started (its launch failed): launch it again (its `start` runs it once).
    The relaunch is audited before it is launched, so no launch goes unrecorded."""
    pending = [c for c in _direct_replays(source["id"]) if c["status"] == ExecutionStatus.PENDING]
    if not pending:
        return None
    child = pending[-1]
    plan = _plan(source, from_stage or (child["params"].get("rerun_stages") or [None])[0], ignore_replays=True)
    audit = _replay_audit(str(source["id"]), plan, from_stage, reason, True, actor=actor, via=via)
    run_async(_audit_alone(audit, str(child["id"])))
    _launch(child["id"], plan.stages)
    return ReplayOutcome(replay_of=str(source["id"]), execution_id=str(child["id"]), stages=plan.stages,
                         relaunched=True, plan=plan)


def _replay_source(source: Mapping[str, Any], from_stage: str | None, reason: str, actor: str,
                   via: str) -> ReplayOutcome:
    outcome = (_relaunch_pending(source, from_stage, reason, actor=actor, via=via)
               if source["status"] in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED) else None)
    if outcome is None:
        plan = _plan(source, from_stage)
        audit = _replay_audit(str(source["id"]), plan, from_stage, reason, False, actor=actor, via=via)
        outcome = ReplayOutcome(replay_of=str(source["id"]), execution_id=_launch_new(plan, source, audit),
                                stages=plan.stages, plan=plan)
    return outcome


def replay(execution_id: str, from_stage: str | None = None, *, reason: str, actor: str, via: str) -> ReplayOutcome:
    """Replay a failed execution from its failed stage (or `from_stage`, rerun whole) and launch it; the new
    execution and its audit row (with `reason`, required) are written in one transaction."""
    text = checked_reason(reason)
    return _replay_source(run_async(find_execution(execution_id)), from_stage, text, actor, via)


def plan_failed(since: dt.timedelta) -> list[ReplayOutcome]:
    """The dry run of `replay_failed`: each failed execution not replayed yet, with its plan or why not."""
    outcomes = []
    for source in run_async(failed_without_replay(since)):
        try:
            outcomes.append(ReplayOutcome(replay_of=str(source["id"]), dry_run=True, plan=_plan(source, None)))
        except ReplayRefused as exc:
            outcomes.append(ReplayOutcome(replay_of=str(source["id"]), dry_run=True, skipped=str(exc)))
    return outcomes


def replay_failed(since: dt.timedelta, *, reason: str, actor: str, via: str) -> list[ReplayOutcome]:
    """Replay every execution that failed within `since` and has no replay yet, oldest first.

    One that cannot be replayed is `skipped`; one whose replay could not be launched has an `error`
    (the others still go).
    """
    text = checked_reason(reason)
    outcomes = []
    for source in run_async(failed_without_replay(since)):
        try:
            outcomes.append(_replay_source(source, None, text, actor, via))
        except ReplayRefused as exc:
            outcomes.append(ReplayOutcome(replay_of=str(source["id"]), skipped=str(exc)))
        except HrsyncError as exc:
            outcomes.append(ReplayOutcome(replay_of=str(source["id"]), error=str(exc)))
    return outcomes


# -- cancel --------------------------------------------------------------------------------------------

def cancel(execution_id: str, reason: str, *, actor: str, via: str) -> CancelOutcome:
    """End a pending or running execution as `cancelled`: its running steps end their current step, its
    queued tasks stop at their start, and it is never set to failed or succeeded afterwards. The cancel and
    its audit row (with `reason`, required) are written in one transaction."""
    text = checked_reason(reason)
    found = run_async(find_execution(execution_id))

    async def audit(conn: AsyncConnection, previous: str) -> None:
        await record_operator_action(CANCEL, found["id"], {"reason": text, "previous_status": previous},
                                     via=via, actor=actor, conn=conn)

    previous, running = run_async(cancel_execution(found["id"], text, audit))
    if previous not in OPEN:
        raise CancelRefused(f"execution {found['id']} is {previous}: only a pending or running execution "
                            "can be cancelled")
    return CancelOutcome(str(found["id"]), previous, running, text, events=_events_held(found["id"]))


def plan_cancel(execution_id: str) -> CancelOutcome:
    """The dry run of `cancel`: what it would cancel and how many events the execution holds; changes nothing."""
    found = run_async(find_execution(execution_id))
    if found["status"] not in OPEN:
        raise CancelRefused(f"execution {found['id']} is {found['status']}: only a pending or running execution "
                            "can be cancelled")
    running = sum(1 for row in run_async(stage_rows([found["id"]])) if row["status"] == "running")
    return CancelOutcome(str(found["id"]), str(found["status"]), running, None, status=str(found["status"]),
                         events=_events_held(found["id"]), dry_run=True)


def _events_held(execution_id: str) -> int:
    return len(run_async(served_events([execution_id])))


# -- dead letters --------------------------------------------------------------------------------------

def replay_dead_letters(ids: list[str] | None, *, replay_all: bool = False, reason: str, actor: str,
                        via: str) -> DeadLetterReplayOutcome:
    """Republish the dead letters `ids` names (by id or event id), or every waiting one with `replay_all`
    (never by default: no ids and no `replay_all` is bad input), exactly as they came; each with its
    audit row (`reason` required) in the transaction that marks it replayed, before it is published."""
    text = checked_reason(reason)
    if replay_all == bool(ids):
        raise ConfigError("ids: give the dead letters' ids, or all (--all / {\"all\": true}) — not both, not neither")

    async def audit(conn: AsyncConnection, letter: DeadLetter) -> None:
        await record_operator_action(DLQ_REPLAY, letter.id, {
            "event_id": letter.event_id, "type": letter.type, "dead_letter_reason": letter.reason, "reason": text},
            via=via, actor=actor, conn=conn)

    done = republish_dead_letters(get_settings().events(), None if replay_all else ids, audit, actor)
    return DeadLetterReplayOutcome(replayed=[letter.as_json() for letter in done.replayed],
                                   failed=[{"id": i, "error": e} for i, e in done.failed],
                                   not_found=done.not_found)
