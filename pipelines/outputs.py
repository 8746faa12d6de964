"""What a stage hands to the stages after it: the declared, typed outputs stage folders read of each other.

A stage folder never imports another; a stage that uses another's result names the `Output` in its
declaration (`Stage(reads=...)`) and reads it through the function here. The producer writes it as part of
its own work (its recorded `@done` output, or its rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update

from pipelines.stage import Output, stage_params
from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import absences, attendance_days
from shared.records.queries import succeeded_outputs
from shared.records.shards import ShardKind

MERGED_DAYS = Output("merge", "merged_days", "the first and last day the execution's merge computed")
ABSENCE_RECOMPUTES = Output("extract", "absence_recomputes",
                            "days a changed absence may alter, marked by the extract, recomputed by a date-range merge")


async def merged_days(execution_id: str) -> tuple[dt.date, dt.date] | None:
    """`MERGED_DAYS`: the dates of the merge's `@done` output, else its inputs' date range; None without one."""
    merged = (await succeeded_outputs(execution_id, MERGED_DAYS.stage)).get(ShardKind.DONE, {}).get("dates")
    span = merged or await stage_params(execution_id, MERGED_DAYS.stage)
    if not span or not span.get("from"):
        return None
    return dt.date.fromisoformat(span["from"]), dt.date.fromisoformat(span["to"])


# -- ABSENCE_RECOMPUTES: the marks a merge picks up ---------------------------------------------------------


@dataclass(frozen=True)
class PendingRecompute:
    """Days of one employee that a changed absence may alter: `date_from`..`date_to`, local, inclusive."""

    absence_id: str
    employee_no: str
    date_from: date
    date_to: date

    def as_json(self) -> dict[str, str]:
        return {"absence_id": self.absence_id, "employee_no": self.employee_no,
                "from": self.date_from.isoformat(), "to": self.date_to.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingRecompute:
        return cls(data["absence_id"], data["employee_no"], date.fromisoformat(data["from"]),
                   date.fromisoformat(data["to"]))


async def pending_absence_recomputes(
    today: date, employee_nos: Sequence[str] | None = None, limit: int = 1000
) -> tuple[list[PendingRecompute], list[PendingRecompute]]:
    """The marked absences (of `employee_nos`, if given): (to recompute, to clear without a recompute).

    A mark is cut to the days that can have rows: from the employee's first computed day to `today`
    (days never computed are not created by an absence; future days get their rows when they come).
    At most `limit` marks per call, oldest first; the rest wait for the next merge.
    """
    a, d = absences.c, attendance_days.c
    first_day = (select(d.employee_no, func.min(d.work_date).label("first_day"))
                 .group_by(d.employee_no).subquery())
    query = (select(a.absence_id, a.employee_no, a.recompute_from, a.recompute_to, first_day.c.first_day)
             .outerjoin(first_day, first_day.c.employee_no == a.employee_no)
             .where(a.recompute_from.is_not(None)).order_by(a.synced_at, a.absence_id).limit(limit))
    if employee_nos is not None:
        query = query.where(a.employee_no.in_(list(employee_nos)))
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    todo: list[PendingRecompute] = []
    clear: list[PendingRecompute] = []
    for r in rows:
        mark = PendingRecompute(r.absence_id, r.employee_no, r.recompute_from, r.recompute_to)
        first, last = max(r.recompute_from, r.first_day or today), min(r.recompute_to, today)
        if r.first_day is None or first > last:
            clear.append(mark)
        else:
            todo.append(PendingRecompute(r.absence_id, r.employee_no, first, last))
            clear.append(mark)
    return todo, clear


@retry_transient
async def clear_absence_recomputes(marks: Iterable[PendingRecompute]) -> int:
    """Clear the marks a merge recomputed, each only if unchanged since it was read; returns how many."""
    keys = [{"k_id": m.absence_id, "k_from": m.date_from, "k_to": m.date_to} for m in marks]
    if not keys:
        return 0
    a = absences.c
    engine = await app_engine()
    async with engine.begin() as conn:
        done = await conn.execute(
            update(absences)
            .where(and_(a.absence_id == bindparam("k_id"), a.recompute_from == bindparam("k_from"),
                        a.recompute_to == bindparam("k_to")))
            .values(recompute_from=None, recompute_to=None), keys)
    return max(done.rowcount, 0)
