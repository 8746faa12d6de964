"""The console's actions: the same services the CLI calls, with the web user as the actor (`via="web"`).

Replay, cancel and dead-letter replay come from `operations.executions`, corrections from
`operations.corrections`; each writes its `operator_actions` row itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from operations import executions as operations
from shared.runtime.runner import run_async
from web.users import User

VIA = "web"


def replay_plan(execution_id: str, from_stage: str | None) -> dict[str, Any]:
    """`hrsync replay ID --dry-run --json`: the plan, nothing created."""
    return {"dry_run": True, **operations.plan_replay(execution_id, from_stage).as_json()}


def replay(execution_id: str, from_stage: str | None, reason: str, user: User) -> dict[str, Any]:
    """Replay the failed execution (the outcome names the new execution)."""
    result: dict[str, Any] = operations.replay(execution_id, from_stage, reason=reason, actor=user.name,
                                               via=VIA).as_json()
    return result


def cancel(execution_id: str, reason: str, user: User) -> dict[str, Any]:
    """End a pending or running execution as cancelled."""
    result: dict[str, Any] = operations.cancel(execution_id, reason, actor=user.name, via=VIA).as_json()
    return result


def replay_dead_letters(ids: list[str] | None, replay_all: bool, reason: str, user: User) -> dict[str, Any]:
    """Republish the chosen dead letters (every waiting one only with `replay_all`)."""
    result: dict[str, Any] = operations.replay_dead_letters(ids, replay_all=replay_all, reason=reason,
                                                            actor=user.name, via=VIA).as_json()
    return result


def list_punches(employee_no: str, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """`hrsync punches list EMP --json`."""
    from operations import corrections

    return run_async(corrections.list_punches(employee_no, date_from, date_to))


def add_punch(employee_no: str, at: dt.datetime, reason: str, user: User) -> dict[str, Any]:
    """A manual punch (its day recomputed through the normal event path, in-process on the embedded
    defaults); `corrections.UnknownEmployee` for an unknown employee."""
    from operations import corrections
    from operations.event_requests import request_event

    return run_async(corrections.add_punch(employee_no, at, reason, actor=user.name, via=VIA,
                                           request_event=request_event))


def void_punch(punch_id: int, reason: str, user: User) -> dict[str, Any]:
    """Void a punch with a reason (kept, ignored by the rules)."""
    from operations import corrections
    from operations.event_requests import request_event

    return run_async(corrections.void_punch(punch_id, reason, actor=user.name, via=VIA,
                                            request_event=request_event))


def recompute_status(correction_id: int) -> dict[str, Any] | None:
    """Where a correction's recompute is (its event, execution and status); None for no such correction."""
    from operations import corrections

    return run_async(corrections.recompute_status(correction_id))
