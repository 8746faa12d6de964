"""The console's month end (DESIGN §10, §11): exceptions with their decisions, overtime approval, periods
(the counts shown before a close, reopen, the changes kept after a close) and the export files to download.

Pages and `/api/` share the functions of `pipelines.export` that the CLI calls, so every decision, close
and reopen is audited (`via: web`) in its own transaction. Viewers read; operators decide, close, reopen
and download.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from pipelines.monthend.exceptions import ExceptionKind
from pipelines.monthend.period import Period
from shared.runtime.runner import run_async
from web.auth import operator, signed_in
from web.pages import render, see_other
from web.users import User

VIA = "web"
Viewer = Annotated[User, Depends(signed_in)]
Operator = Annotated[User, Depends(operator)]
PeriodPath = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="the month, YYYY-MM")]
Employee = Annotated[str, Form(min_length=1, max_length=64)]
Day = Annotated[str, Form(max_length=10)]
Reason = Annotated[str, Form(max_length=500)]

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api")


class Decision(BaseModel):
    employee_no: str = Field(min_length=1, max_length=64)
    work_date: str = Field(max_length=10, description="YYYY-MM-DD")
    reason: str = Field(max_length=500)


class Acceptance(Decision):
    kind: str = Field(max_length=16)


class Approval(Decision):
    minutes: int | None = Field(None, ge=0, le=24 * 60 * 2, description="approve this much (default: all)")


class Closing(BaseModel):
    reason: str = Field(max_length=500)
    force: bool = False


class Reopening(BaseModel):
    reason: str = Field(max_length=500)


# -- what pages and API share -------------------------------------------------------------------------

def _exceptions(period: str | None, kind: str | None, department: str | None, only_open: bool) -> list[dict[str, Any]]:
    from operations.deciding import list_exceptions, parse_kind

    month = Period.parse(period) if period else None
    wanted = parse_kind(kind, "kind") if kind else None
    return run_async(list_exceptions(month, only_open=only_open, kind=wanted, department=department or None))


def _accept(employee_no: str, work_date: str, kind: str, reason: str, user: User) -> dict[str, Any]:
    from operations.deciding import accept_exception, parse_day, parse_kind

    return run_async(accept_exception(employee_no, parse_day(work_date, "work_date"), parse_kind(kind, "kind"),
                                      reason, actor=user.name, via=VIA))


def _overtime(employee_no: str, work_date: str, approve: bool, minutes: int | None, reason: str,
              user: User) -> dict[str, Any]:
    from operations.deciding import decide_overtime, parse_day

    return run_async(decide_overtime(employee_no, parse_day(work_date, "work_date"), approve=approve,
                                     minutes=minutes, reason=reason, actor=user.name, via=VIA))


def _period(period: str) -> dict[str, Any]:
    from operations.closing import period_info

    return run_async(period_info(Period.parse(period)))


def _files(period: str) -> list[str]:
    """The files of the period's latest closed version whose folder is complete (none otherwise)."""
    from pipelines.export.version import ExportMissing, complete, latest_closed_version, version_folder

    month = Period.parse(period)
    try:
        folder = version_folder(month, run_async(latest_closed_version(month)))
    except ExportMissing:
        return []
    return sorted(path.name for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")) \
        if complete(folder) else []


def _close(period: str, reason: str, force: bool, user: User) -> dict[str, Any]:
    from operations.launching import close_and_export

    return close_and_export(Period.parse(period), reason, force=force, actor=user.name, via=VIA)


def _reopen(period: str, reason: str, user: User) -> dict[str, Any]:
    from operations.closing import reopen_period

    return run_async(reopen_period(Period.parse(period), reason, actor=user.name, via=VIA))


def _periods() -> list[dict[str, Any]]:
    from operations.closing import list_periods

    return run_async(list_periods())


def _download(period: str, name: str) -> FilePath:
    from pipelines.export.version import latest_closed_version, version_folder

    if name not in _files(period):
        raise HTTPException(404, f"no export file {name!r} of {period}")
    month = Period.parse(period)
    return version_folder(month, run_async(latest_closed_version(month))) / name


# -- pages --------------------------------------------------------------------------------------------

@pages.get("/exceptions")
def exceptions_page(request: Request, user: Viewer,
                    period: Annotated[str | None, Query(max_length=7)] = None,
                    kind: Annotated[str | None, Query(max_length=16)] = None,
                    department: Annotated[str | None, Query(max_length=100)] = None,
                    state: Annotated[str | None, Query(max_length=8)] = "open") -> HTMLResponse:
    items = _exceptions(period, kind, department, state == "open")
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(request, "exceptions.html", user, items=items, kinds=list(ExceptionKind), back=back,
                  f={"period": period or "", "kind": kind or "", "department": department or "",
                     "state": state or ""})


def _back(target: str) -> RedirectResponse:
    return see_other(target if target.startswith("/exceptions") else "/exceptions")


@pages.post("/exceptions/accept")
def accept_page(user: Operator, employee_no: Employee, work_date: Day,
                kind: Annotated[str, Form(max_length=16)], reason: Reason,
                back: Annotated[str, Form(max_length=500)] = "/exceptions") -> Response:
    _accept(employee_no, work_date, kind, reason, user)
    return _back(back)


@pages.post("/overtime/approve")
def approve_page(user: Operator, employee_no: Employee, work_date: Day, reason: Reason,
                 minutes: Annotated[str, Form(max_length=6)] = "",
                 back: Annotated[str, Form(max_length=500)] = "/exceptions") -> Response:
    if minutes.strip() and not minutes.strip().isdigit():
        raise HTTPException(422, f"minutes: not a whole number: {minutes[:6]!r}")
    _overtime(employee_no, work_date, True, int(minutes) if minutes.strip() else None, reason, user)
    return _back(back)


@pages.post("/overtime/refuse")
def refuse_page(user: Operator, employee_no: Employee, work_date: Day, reason: Reason,
                back: Annotated[str, Form(max_length=500)] = "/exceptions") -> Response:
    _overtime(employee_no, work_date, False, None, reason, user)
    return _back(back)


@pages.get("/periods", response_model=None)
def periods_page(request: Request, user: Viewer,
                 period: Annotated[str | None, Query(max_length=7)] = None) -> HTMLResponse | RedirectResponse:
    if period:  # the "show a month" form
        return see_other(f"/periods/{Period.parse(period)}")
    return render(request, "periods.html", user, periods=_periods())


@pages.get("/periods/{period}")
def period_page(request: Request, user: Viewer, period: PeriodPath) -> HTMLResponse:
    return render(request, "period.html", user, p=_period(period), files=_files(period) if user.can_act else [])


@pages.post("/periods/{period}/close")
def close_page(user: Operator, period: PeriodPath, reason: Reason,
               force: Annotated[str | None, Form(max_length=5)] = None) -> Response:
    _close(period, reason, force is not None, user)
    return see_other(f"/periods/{period}")


@pages.post("/periods/{period}/reopen")
def reopen_page(user: Operator, period: PeriodPath, reason: Reason) -> Response:
    _reopen(period, reason, user)
    return see_other(f"/periods/{period}")


@pages.get("/periods/{period}/files/{name}")
def download_page(user: Operator, period: PeriodPath, name: Annotated[str, Path(max_length=64)]) -> FileResponse:
    return FileResponse(_download(period, name), filename=name)


# -- API ----------------------------------------------------------------------------------------------

@api.get("/exceptions")
def exceptions_api(user: Viewer, period: Annotated[str | None, Query(max_length=7)] = None,
                   kind: Annotated[str | None, Query(max_length=16)] = None,
                   department: Annotated[str | None, Query(max_length=100)] = None,
                   open: Annotated[bool, Query(description="only open exceptions")] = False,
                   ) -> list[dict[str, Any]]:
    """`hrsync exceptions [--period YYYY-MM] [--open] [--kind K] --json` (and a department)."""
    return _exceptions(period, kind, department, open)


@api.post("/exceptions/accept")
def accept_api(user: Operator, body: Acceptance) -> dict[str, Any]:
    """`hrsync exceptions accept EMP DATE KIND --reason R` (operators)."""
    return _accept(body.employee_no, body.work_date, body.kind, body.reason, user)


@api.post("/overtime/approve")
def approve_api(user: Operator, body: Approval) -> dict[str, Any]:
    """`hrsync overtime approve EMP DATE [--minutes N] --reason R` (operators)."""
    return _overtime(body.employee_no, body.work_date, True, body.minutes, body.reason, user)


@api.post("/overtime/refuse")
def refuse_api(user: Operator, body: Decision) -> dict[str, Any]:
    """`hrsync overtime refuse EMP DATE --reason R` (operators)."""
    return _overtime(body.employee_no, body.work_date, False, None, body.reason, user)


@api.get("/periods")
def periods_api(user: Viewer) -> list[dict[str, Any]]:
    """`hrsync period list --json`."""
    return _periods()


@api.get("/periods/{period}")
def period_api(user: Viewer, period: PeriodPath) -> dict[str, Any]:
    """`hrsync period show YYYY-MM --json`, with the latest export's `files` (names, for operators)."""
    return {**_period(period), "files": _files(period) if user.can_act else []}


@api.post("/periods/{period}/close")
def close_api(user: Operator, period: PeriodPath, body: Closing) -> dict[str, Any]:
    """`hrsync period close YYYY-MM --reason R [--force]` (operators; refused: 409 with the counts)."""
    return _close(period, body.reason, body.force, user)


@api.post("/periods/{period}/reopen")
def reopen_api(user: Operator, period: PeriodPath, body: Reopening) -> dict[str, Any]:
    """`hrsync period reopen YYYY-MM --reason R` (operators)."""
    return _reopen(period, body.reason, user)

