"""The console's server-rendered pages (Jinja2, autoescaped): the same data as `/api/`, as HTML.

Forms post with the session's CSRF token; actions redirect (303) to the page that shows their result.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operations.corrections import AmbiguousTime, UnknownEmployee
from shared.config.errors import HrsyncError
from shared.records.readable import input_rows, stage_rows
from web import actions, data
from web.auth import console_of, operator, session_of, signed_in
from web.params import ExecutionFilters, age, date_param, execution_filters
from web.security import Session, TooManyAttempts
from web.users import User
from web.waterfall import waterfall

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(signed_in)]
Operator = Annotated[User, Depends(operator)]
ExecutionId = Annotated[str, Path(min_length=1, max_length=36)]
Text = Annotated[str, Form(max_length=500)]


def render(request: Request, name: str, user: User | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the user, the CSRF token and `context` (all escaped on output)."""
    template = request.app.state.templates.get_template(name)
    return HTMLResponse(template.render(user=user, csrf=session_of(request).csrf, path=request.url.path,
                                        **context), status_code=status)


def required_reason(reason: str | None) -> str:
    """A form's reason; 422 naming `reason` when it is left empty (replay, cancel and dead-letter replay)."""
    if not (reason or "").strip():
        raise HTTPException(422, "reason: required — say why (it is kept in the audit)")
    return reason or ""


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- signing in ---------------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    """Only a path on this site (never `//host` or a URL): no open redirect."""
    return target if target and target.startswith("/") and not target.startswith(("//", "/\\")) else "/executions"


@router.get("/login")
def login_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, name: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=200)],
          next: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    console = console_of(request)
    try:  # counted before the password is checked: parallel guesses cannot outrun the count
        attempt = console.throttle.begin(f"name:{name}", f"client:{request.client.host if request.client else '?'}")
    except TooManyAttempts as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    user = console.users.authenticate(name, password)
    if user is None:
        return render(request, "login.html", None, status=401, next=_safe_next(next),
                      error="wrong name or password")
    console.throttle.succeeded(attempt)
    session = Session.fresh(user.name, user.credential)  # a new id and token on sign-in: no fixation
    console.sessions.open(session.sid)
    console.sessions.close(session_of(request).sid)
    request.state.session = session
    return see_other(_safe_next(next))


@router.post("/logout")
def logout(request: Request) -> Response:
    console_of(request).sessions.close(session_of(request).sid)  # the old cookie is worth nothing now
    request.state.session = Session.fresh()
    return see_other("/login")


# -- executions ---------------------------------------------------------------------------------------

@router.get("/")
def home() -> Response:
    return see_other("/executions")


@router.get("/executions")
def executions(request: Request, user: Viewer, filters: Annotated[ExecutionFilters, Depends(execution_filters)],
               partial: Annotated[bool, Query()] = False) -> HTMLResponse:
    rows, following = data.executions_page(status=filters.status, kind=filters.kind, trigger=filters.trigger,
                                           since=filters.since, cursor=filters.cursor, limit=filters.limit)
    rows = data.with_served_counts(rows)
    query = dict(request.query_params)
    next_url = f"/executions?{urlencode({**filters.query(), 'cursor': following})}" if following else None
    return render(request, "_execution_rows.html" if partial else "executions.html", user, rows=rows,
                  filters=query, next_url=next_url, live=not filters.cursor,
                  alerts=[] if partial else data.open_alerts(), pauses=[] if partial else data.paused_schedules())


@router.get("/executions/{execution_id}")
def execution(request: Request, user: Viewer, execution_id: ExecutionId,
              partial: Annotated[bool, Query()] = False) -> HTMLResponse:
    details = data.execution_details(execution_id)
    line = data.execution_trace(details)
    e = details["execution"]
    return render(request, "_execution_body.html" if partial else "execution.html", user, d=details, e=e,
                  trace=line, svg=waterfall(line), inputs=input_rows(e["params"]),
                  per_stage=stage_rows(e["summary"], details["stages"]))


@router.get("/executions/{execution_id}/replay")
def replay_page(request: Request, user: Viewer, execution_id: ExecutionId,
                from_stage: Annotated[str | None, Query(max_length=32, pattern="^[a-z_]*$")] = None) -> HTMLResponse:
    details = data.execution_details(execution_id)
    try:
        plan, refused = actions.replay_plan(details["execution"]["id"], from_stage or None), None
    except HrsyncError as exc:
        plan, refused = None, str(exc)
    return render(request, "replay.html", user, e=details["execution"], plan=plan, refused=refused,
                  from_stage=from_stage or "")


@router.post("/executions/{execution_id}/replay")
def replay(user: Operator, execution_id: ExecutionId,
           from_stage: Annotated[str | None, Form(max_length=32, pattern="^[a-z_]*$")] = None,
           reason: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    outcome = actions.replay(execution_id, from_stage or None, required_reason(reason), user)
    return see_other(f"/executions/{quote(str(outcome.get('execution_id') or execution_id), safe='')}")


@router.post("/executions/{execution_id}/cancel")
def cancel(user: Operator, execution_id: ExecutionId, reason: Annotated[str | None, Form(max_length=500)] = None,
           ) -> Response:
    outcome = actions.cancel(execution_id, required_reason(reason), user)
    return see_other(f"/executions/{quote(str(outcome.get('execution_id') or execution_id), safe='')}")


# -- dead letters, audit ------------------------------------------------------------------------------

@router.get("/dead-letters")
def dead_letters(request: Request, user: Viewer) -> HTMLResponse:
    return render(request, "dead_letters.html", user, letters=data.dead_letters(with_source=True), outcome=None)


@router.post("/dead-letters/replay")
def replay_dead_letters(request: Request, user: Operator,
                        ids: Annotated[list[str] | None, Form(max_length=1000)] = None,
                        reason: Annotated[str | None, Form(max_length=500)] = None) -> HTMLResponse:
    text = required_reason(reason)
    if not ids:
        raise HTTPException(422, "ids: choose at least one dead letter")
    outcome = actions.replay_dead_letters(ids, False, text, user)
    return render(request, "dead_letters.html", user, letters=data.dead_letters(with_source=True), outcome=outcome)


@router.get("/audit")
def audit(request: Request, user: Viewer, since: Annotated[str | None, Query(max_length=12)] = "7d") -> HTMLResponse:
    return render(request, "audit.html", user, actions=data.audit(age("since", since), 500), since=since or "")


# -- attendance and corrections ----------------------------------------------------------------------

@router.get("/attendance")
def board(request: Request, user: Viewer, department: Annotated[str | None, Query(max_length=100)] = None,
          date: Annotated[str | None, Query(max_length=10)] = None) -> HTMLResponse:
    found = data.day_board(department or None, date_param("date", date, data.today()))
    return render(request, "attendance.html", user, b=found)


@router.get("/employees/{employee_no}")
def employee(request: Request, user: Viewer, employee_no: Annotated[str, Path(min_length=1, max_length=64)],
             date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
             date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
             correction: Annotated[int | None, Query(ge=1, le=2**62)] = None,
             partial: Annotated[bool, Query()] = False) -> HTMLResponse:
    last = date_param("to", date_to, data.today())
    first = date_param("from", date_from, last - dt.timedelta(days=13))
    found = data.employee_days(employee_no, first, last)
    if found is None:
        raise HTTPException(404, f"no employee {employee_no!r}")
    # after a correction: what was requested, its execution, live until that execution has ended
    recompute = actions.recompute_status(correction) if correction is not None else None
    if recompute is not None and recompute["employee_no"] != employee_no:
        recompute = None
    context = {"p": found["employee"], "days": found["days"], "recompute": recompute}
    if partial:
        return render(request, "_employee_days.html", user, **context)
    return render(request, "employee.html", user, first=first, last=last,
                  punches=actions.list_punches(employee_no, first, last), **context)


def _corrected(employee_no: str, outcome: dict[str, Any], day: dt.date) -> Response:
    """Back to the employee's page on the corrected day, which follows the correction's recompute."""
    query = urlencode({"from": day, "to": day, "correction": outcome["correction_id"]})
    return see_other(f"/employees/{quote(employee_no, safe='')}?{query}")


@router.post("/employees/{employee_no}/punches")
def add_punch(request: Request, user: Operator, employee_no: Annotated[str, Path(min_length=1, max_length=64)],
              at: Annotated[str, Form(max_length=40)], reason: Text) -> Response:
    try:
        instant = dt.datetime.fromisoformat(at)
    except ValueError:
        raise HTTPException(422, f"time: expected YYYY-MM-DDTHH:MM, got {at[:40]!r}") from None
    try:  # a browser's datetime-local field is the company's wall-clock time: the service reads it so
        outcome = actions.add_punch(employee_no, instant, reason, user)
    except AmbiguousTime as exc:  # offer both instants, each a button that posts it with its offset
        return render(request, "punch_choice.html", user, status=422, message=str(exc), employee_no=employee_no,
                      choices=[c.isoformat(timespec="minutes") for c in exc.choices], reason=reason)
    except UnknownEmployee:
        raise HTTPException(404, f"no employee {employee_no!r}") from None
    return _corrected(employee_no, outcome, instant.date())


@router.post("/punches/{punch_id}/void")
def void_punch(user: Operator, punch_id: Annotated[int, Path(ge=1, le=2**62)], reason: Text,
               employee_no: Annotated[str, Form(max_length=64)]) -> Response:
    outcome = actions.void_punch(punch_id, reason, user)
    day = dt.datetime.fromisoformat(outcome["local_time"]).date()
    return _corrected(outcome["employee_no"], outcome, day)
