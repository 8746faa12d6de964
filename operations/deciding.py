"""Exceptions as operators see and decide them (DESIGN §11): `hrsync exceptions`, `exceptions accept`,
`overtime approve|refuse`, and the console.

A decision is written with its `operator_actions` row in one transaction, after the exception's row is
locked, so two people deciding the same day are serialized. A day of a closed month is not decided: the
export of that version was made on what was decided then (reopen the month first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from pipelines.monthend.decisions import (
    ExceptionRecord,
    ExceptionState,
    accept,
    approve_overtime,
    listing,
    refuse_overtime,
)
from pipelines.monthend.exception_rows import exception_record, exception_row
from pipelines.monthend.exceptions import ExceptionKind
from pipelines.monthend.period import Period
from pipelines.monthend.store import refuse_frozen
from shared.config.errors import ConfigError
from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import attendance_exceptions, employees
from shared.records.operator_actions import checked_reason, record_operator_action


def parse_kind(text: str, option: str = "KIND") -> ExceptionKind:
    """An exception kind, or bad input naming `option`."""
    try:
        return ExceptionKind(text)
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not one of {', '.join(ExceptionKind)}") from None


def parse_day(text: str, option: str = "DATE") -> dt.date:
    """A date `YYYY-MM-DD`, or bad input naming `option`."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {text!r}") from None


async def list_exceptions(period: Period | None = None, *, only_open: bool = False, kind: ExceptionKind | None = None,
                          department: str | None = None, employee_no: str | None = None) -> list[dict[str, Any]]:
    """The exceptions as `exceptions --json` lists them, ordered by employee, date and kind order.

    Every state unless `only_open`; `period` limits to a month, `department`/`employee_no` to people.
    """
    e = attendance_exceptions.c
    query = select(attendance_exceptions)
    if department is not None:
        query = query.join(employees, employees.c.employee_no == e.employee_no).where(
            employees.c.department == department)
    if period is not None:
        query = query.where(e.work_date >= period.first_day, e.work_date <= period.last_day)
    if only_open:
        query = query.where(e.state == ExceptionState.OPEN)
    if kind is not None:
        query = query.where(e.kind == kind)
    if employee_no is not None:
        query = query.where(e.employee_no == employee_no)
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(e.employee_no, e.work_date))).mappings().all()
    order = list(ExceptionKind)
    records = sorted((exception_record(dict(row)) for row in rows),
                     key=lambda r: (r.employee_no, r.work_date, order.index(r.kind)))
    return [listing(record) for record in records]


Decide = Callable[[ExceptionRecord | None], ExceptionRecord]


@retry_transient
async def _decide(employee_no: str, day: dt.date, kind: ExceptionKind, action: str, decide: Decide, *,
                  details: dict[str, Any], actor: str, via: str) -> dict[str, Any]:
    engine = await app_engine()
    async with engine.begin() as conn:
        await refuse_frozen(conn, [day])
        e = attendance_exceptions.c
        row = (await conn.execute(select(attendance_exceptions).where(
            e.employee_no == employee_no, e.work_date == day, e.kind == kind).with_for_update())).mappings().first()
        record = decide(exception_record(dict(row)) if row is not None else None)
        await conn.execute(attendance_exceptions.update().where(
            e.employee_no == employee_no, e.work_date == day, e.kind == kind).values(
            **exception_row(record), updated_at=dt.datetime.now(dt.UTC)))
        item = listing(record)
        await record_operator_action(action, f"{employee_no}/{day.isoformat()}/{kind}",
                                     {**details, "state": item["state"]}, via=via, actor=actor, conn=conn)
    return item


async def accept_exception(employee_no: str, day: dt.date, kind: ExceptionKind, reason: str, *, actor: str,
                           via: str) -> dict[str, Any]:
    """Keep the day as it is; the exception becomes `accepted` (overtime is approved or refused instead)."""
    text = checked_reason(reason, "--reason")
    now = dt.datetime.now(dt.UTC)
    return await _decide(employee_no, day, kind, "exception.accept",
                         lambda record: accept(record, by=actor, at=now, reason=text),
                         details={"reason": text}, actor=actor, via=via)


async def decide_overtime(employee_no: str, day: dt.date, *, approve: bool, minutes: int | None, reason: str,
                          actor: str, via: str) -> dict[str, Any]:
    """Approve all of a day's overtime (`minutes` None), `minutes` of it, or refuse it (`approve` False)."""
    text = checked_reason(reason, "--reason")
    if minutes is not None and minutes < 0:
        raise ConfigError(f"--minutes: {minutes} is negative")
    now = dt.datetime.now(dt.UTC)

    def decide(record: ExceptionRecord | None) -> ExceptionRecord:
        if approve:
            return approve_overtime(record, minutes, by=actor, at=now, reason=text)
        return refuse_overtime(record, by=actor, at=now, reason=text)

    details: dict[str, Any] = {"reason": text}
    if approve:
        details["minutes"] = minutes
    return await _decide(employee_no, day, ExceptionKind.OVERTIME,
                         "overtime.approve" if approve else "overtime.refuse", decide,
                         details=details, actor=actor, via=via)
