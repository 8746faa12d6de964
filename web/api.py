"""`/api/`: every page's data as JSON, in the shapes of the CLI's `--json` (DESIGN §10).

Reads need a signed-in user, actions an operator and the `X-CSRF-Token` header (the session's token, shown
by `GET /api/session`). The executions list pages by cursor: the next page's is in the `X-Next-Cursor` header.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from operations.corrections import UnknownEmployee
from shared.records.views import jsonable
from web import actions, data
from web.auth import operator, session_of, signed_in
from web.params import ExecutionFilters, age, date_param, execution_filters
from web.users import User

router = APIRouter(prefix="/api")
ExecutionId = Annotated[str, Path(min_length=1, max_length=36, description="execution id (or a unique prefix)")]
Viewer = Annotated[User, Depends(signed_in)]
Operator = Annotated[User, Depends(operator)]
Stage = Annotated[str | None, Query(max_length=32, pattern="^[a-z_]*$", description="rerun from this stage")]


class Reason(BaseModel):
    reason: str | None = Field(None, max_length=500, description="why (required; kept in the audit)")


class LetterChoice(Reason):
    ids: list[str] | None = Field(None, max_length=1000, description="ids (or event ids) from the list")
    all: bool = Field(False, description="replay every dead letter waiting (instead of ids)")


def reason_of(body: Reason | None) -> str:
    """The body's reason; 422 naming `reason` when it is missing or blank."""
    if body is None or not (body.reason or "").strip():
        raise HTTPException(422, 'reason: required — send {"reason": "why"} (it is kept in the audit)')
    return body.reason or ""


class NewPunch(BaseModel):
    employee_no: str = Field(min_length=1, max_length=64)
    at: dt.datetime = Field(description="the punch instant with its offset, or a wall-clock time in the company's "
                                        "zone (a DST gap is refused; a repeated time needs the offset)")
    reason: str = Field(min_length=1, max_length=500)


class VoidPunch(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.get("/session")
def session(request: Request, user: Viewer) -> dict[str, Any]:
    """Who is signed in, their role, and the CSRF token actions must send as `X-CSRF-Token`."""
    return {"user": user.name, "role": user.role, "csrf_token": session_of(request).csrf}


@router.get("/executions")
def executions(response: Response, user: Viewer,
               filters: Annotated[ExecutionFilters, Depends(execution_filters)]) -> list[dict[str, Any]]:
    """`hrsync executions --json`: newest first."""
    rows, following = data.executions_page(status=filters.status, kind=filters.kind, trigger=filters.trigger,
                                           since=filters.since, cursor=filters.cursor, limit=filters.limit)
    if following:
        response.headers["X-Next-Cursor"] = following
    return jsonable(rows)  # type: ignore[no-any-return]


@router.get("/executions/{execution_id}")
def show(execution_id: ExecutionId, user: Viewer) -> dict[str, Any]:
    """`hrsync show ID --json`."""
    return jsonable(data.execution_details(execution_id))  # type: ignore[no-any-return]


@router.get("/executions/{execution_id}/trace")
def trace(execution_id: ExecutionId, user: Viewer) -> dict[str, Any]:
    """`hrsync trace ID --json`."""
    return jsonable(data.execution_trace(data.execution_details(execution_id)).to_json())  # type: ignore[no-any-return]


@router.get("/executions/{execution_id}/replay-plan")
def replay_plan(execution_id: ExecutionId, user: Viewer, from_stage: Stage = None) -> dict[str, Any]:
    """`hrsync replay ID --dry-run --json`: what a replay would run and skip; nothing is created."""
    return jsonable(actions.replay_plan(execution_id, from_stage or None))  # type: ignore[no-any-return]


@router.post("/executions/{execution_id}/replay")
def replay(execution_id: ExecutionId, user: Operator, from_stage: Stage = None,
           body: Annotated[Reason | None, Body()] = None) -> dict[str, Any]:
    """Replay the failed execution (operators); body `{"reason": …}` (required)."""
    reason = reason_of(body)
    return jsonable(actions.replay(execution_id, from_stage or None, reason, user))  # type: ignore[no-any-return]


@router.post("/executions/{execution_id}/cancel")
def cancel(execution_id: ExecutionId, user: Operator, body: Annotated[Reason | None, Body()] = None) -> dict[str, Any]:
    """End a pending or running execution as cancelled (operators); body `{"reason": …}` (required)."""
    return jsonable(actions.cancel(execution_id, reason_of(body), user))  # type: ignore[no-any-return]


@router.get("/dead-letters")
def dead_letters(user: Viewer) -> list[dict[str, Any]]:
    """`hrsync dlq list --json`."""
    return data.dead_letters()


@router.post("/dead-letters/replay")
def replay_dead_letters(user: Operator, body: Annotated[LetterChoice | None, Body()] = None) -> dict[str, Any]:
    """`hrsync dlq replay (ID… | --all) --reason R --json` (operators): body `{"ids": […], "reason": …}` or
    `{"all": true, "reason": …}`; no ids without `all` replays nothing (422)."""
    reason = reason_of(body)
    assert body is not None
    if bool(body.ids) == body.all:
        raise HTTPException(422, 'ids: give the ids to replay, or {"all": true} for every one (not both)')
    return jsonable(actions.replay_dead_letters(body.ids, body.all, reason, user))  # type: ignore[no-any-return]


@router.get("/audit")
def audit(user: Viewer, since: Annotated[str | None, Query(max_length=12)] = "7d",
          limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    """`hrsync audit --json`: operator actions, newest first."""
    return jsonable(data.audit(age("since", since), limit))  # type: ignore[no-any-return]


@router.get("/attendance/board")
def board(user: Viewer, department: Annotated[str | None, Query(max_length=100)] = None,
          date: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (default today)")] = None,
          ) -> dict[str, Any]:
    """A department's day: everyone with their row of the date; `open` = in now."""
    return jsonable(data.day_board(department, date_param("date", date, data.today())))  # type: ignore[no-any-return]


@router.get("/employees/{employee_no}/days")
def employee_days(user: Viewer, employee_no: Annotated[str, Path(min_length=1, max_length=64)],
                  date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
                  date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None) -> dict[str, Any]:
    """An employee's attendance days (default: the last 14 days)."""
    last = date_param("to", date_to, data.today())
    found = data.employee_days(employee_no, date_param("from", date_from, last - dt.timedelta(days=13)), last)
    if found is None:
        raise HTTPException(404, f"no employee {employee_no!r}")
    return jsonable(found)  # type: ignore[no-any-return]


@router.get("/punches/{employee_no}")
def punches(user: Viewer, employee_no: Annotated[str, Path(min_length=1, max_length=64)],
            date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
            date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None) -> list[dict[str, Any]]:
    """`hrsync punches list EMP --json` (default: the last 14 days)."""
    last = date_param("to", date_to, data.today())
    return actions.list_punches(employee_no, date_param("from", date_from, last - dt.timedelta(days=13)), last)


@router.post("/punches")
def add_punch(user: Operator, body: NewPunch) -> dict[str, Any]:
    """`hrsync punches add EMP TIME --reason R` (operators): 409 with the stored `punch` when it exists."""
    try:
        return actions.add_punch(body.employee_no, body.at, body.reason, user)
    except UnknownEmployee as exc:
        raise HTTPException(422, f"employee_no: no employee {exc.employee_no!r}") from None


@router.get("/corrections/{correction_id}/recompute")
def recompute_status(user: Viewer, correction_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    """Where a correction's recompute is: its event, dates, execution and that execution's status."""
    found = actions.recompute_status(correction_id)
    if found is None:
        raise HTTPException(404, f"no correction {correction_id}")
    return found


@router.post("/punches/{punch_id}/void")
def void_punch(user: Operator, punch_id: Annotated[int, Path(ge=1, le=2**62)], body: VoidPunch) -> dict[str, Any]:
    """`hrsync punches void ID --reason R` (operators)."""
    return actions.void_punch(punch_id, body.reason, user)
