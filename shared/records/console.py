"""The console's own read queries: a keyset page of executions, a department's day board, an employee's days.

Executions, their stages, traces, dead letters and the audit log are read through the same `shared` code
the CLI uses; these are the reads only the console needs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select

from shared.database.db import app_engine
from shared.database.tables import attendance_days, employees, event_inbox, executions
from shared.runtime.clock import utcnow

BOARD_LIMIT = 2000  # people on one department's board
DAYS_LIMIT = 400  # days of one employee at once


def encode_cursor(row: dict[str, Any]) -> str:
    """The position after `row` in the newest-first order: `<created_at ISO>|<id>`."""
    return f"{row['created_at'].isoformat()}|{row['id']}"


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """`encode_cursor`'s text back; ValueError when it is not one."""
    stamp, _, execution_id = cursor.partition("|")
    at = dt.datetime.fromisoformat(stamp)
    if at.tzinfo is None or not execution_id:
        raise ValueError("not a cursor from this console")
    return at.astimezone(dt.UTC), execution_id


async def execution_page(*, status: str | None = None, kind: str | None = None, trigger: str | None = None,
                         since: dt.timedelta | None = None, after: tuple[dt.datetime, str] | None = None,
                         limit: int = 50) -> list[dict[str, Any]]:
    """Executions newest first (ties by id), the columns of `hrsync executions --json`, after the cursor
    position `after`: keyset pagination on the (created_at, id) and (status, created_at) indexes."""
    e = executions.c
    query = (select(e.id, e.kind, e.trigger, e.status, e.attempt, e.replay_of, e.event_id, e.failed_stage,
                    e.created_at, e.started_at, e.finished_at, e.error)
             .order_by(e.created_at.desc(), e.id.desc()).limit(limit))
    for column, value in ((e.status, status), (e.kind, kind), (e.trigger, trigger)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(e.created_at >= utcnow() - since)
    if after is not None:
        query = query.where(or_(e.created_at < after[0], and_(e.created_at == after[0], e.id < after[1])))
    engine = await app_engine()
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def served_counts(execution_ids: list[str]) -> dict[str, int]:
    """How many events each of these executions serves (its inbox rows; none: absent)."""
    i = event_inbox.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(i.execution_id, func.count()).where(i.execution_id.in_(execution_ids))
                                  .group_by(i.execution_id))
        return {str(execution_id): int(count) for execution_id, count in rows}


async def departments() -> list[str]:
    """The departments employees belong to, sorted."""
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(employees.c.department).where(employees.c.department.is_not(None))
                                  .distinct().order_by(employees.c.department))
        return [str(d) for d in rows.scalars()]


async def day_board(department: str, day: dt.date) -> list[dict[str, Any]]:
    """Everyone of `department` with their attendance rows of `day` (none yet: `status` null), by name;
    status `open` means the person's shift is in progress (who is in now)."""
    p, a = employees.c, attendance_days.c
    query = (select(p.employee_no, p.full_name, p.status.label("employee_status"), a.work_date, a.shift_code,
                    a.status, a.first_in, a.last_out, a.worked_minutes, a.late_minutes, a.early_exit_minutes,
                    a.overtime_minutes, a.absence_kind, a.punch_count)
             .select_from(employees.outerjoin(attendance_days, and_(a.employee_no == p.employee_no,
                                                                    a.work_date == day)))
             .where(p.department == department).order_by(p.full_name, p.employee_no, a.shift_code)
             .limit(BOARD_LIMIT))
    engine = await app_engine()
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def employee_days(employee_no: str, date_from: dt.date, date_to: dt.date) -> dict[str, Any] | None:
    """The employee and their attendance rows from `date_from` to `date_to` (inclusive); None if unknown."""
    p, a = employees.c, attendance_days.c
    engine = await app_engine()
    async with engine.connect() as conn:
        person = (await conn.execute(select(p.employee_no, p.full_name, p.department, p.status)
                                     .where(p.employee_no == employee_no))).first()
        if person is None:
            return None
        rows = await conn.execute(select(attendance_days)
                                  .where(a.employee_no == employee_no, a.work_date.between(date_from, date_to))
                                  .order_by(a.work_date, a.shift_code).limit(DAYS_LIMIT))
        return {"employee": dict(person._mapping), "days": [dict(r._mapping) for r in rows]}
