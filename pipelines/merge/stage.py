"""The merge stage: BioStar logs into punches, then attendance days recomputed.

    plan (@plan) -> import x N (punches:<window>) -> days (@plan-days) -> shard x M -> done (@done)

A date range starts at the earliest `open` day left before it; the days changed absences still have to
recompute are extra shards `leave:…` of those employees only; after an event's window, the day shards name
the employees whose taps the imports found (only their days are recomputed). Shards read the stage's inputs (devices,
employees) from the execution's snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.attendance.rules import punch_range_needed
from pipelines.attendance.shifts import current_shift_config
from pipelines.merge.days import (
    MergeShard,
    PunchWindow,
    earliest_open_day,
    import_punches,
    merge_attendance,
    plan_merge_after_import,
    plan_merge_shards_from_db,
    plan_merge_touched,
    plan_punch_windows,
    plan_recompute_shards,
)
from pipelines.merge.joins import join_merge
from pipelines.outputs import ABSENCE_RECOMPUTES, PendingRecompute, clear_absence_recomputes, pending_absence_recomputes
from pipelines.stage import (
    MAX_SHARDS,
    Phase,
    Scope,
    Stage,
    StageResult,
    WorkKind,
    day_range,
    plan_of,
    recorded_plan,
    stage_params,
    sum_outputs,
)
from shared.config.settings import get_settings
from shared.records.queries import succeeded_outputs
from shared.records.shards import ShardKind

NAME = "merge"
DAYS = WorkKind("days")  # a day shard (no prefix: `<from>..<to>=<department>`)
PUNCHES = WorkKind("imports", prefix="punches:")  # an import window of BioStar logs
LEAVE = WorkKind("days", prefix="leave:")  # days changed absences recompute, for those employees only
PLAN_DAYS = "@plan-days"  # the second planner (the day shards after the imports)
IMPORT_WINDOW_HOURS = 24.0
FEW_EMPLOYEES = 100  # a date-range merge of at most this many named people imports in one window (inline)
FEW_WINDOW_HOURS = 31 * 24.0  # ... of at most 31 days (a longer range: windows of 31 days)
MERGE_DAYS_PER_SHARD = 7
DAY_SHARD_BUDGET = MAX_SHARDS // 2  # day shards grow longer past this; the rest is room for `leave:` shards


@dataclass(frozen=True)
class ImportShard:
    """A window of BioStar logs to import."""

    key: str
    window: PunchWindow

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "window": self.window.as_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImportShard:
        return cls(str(data["key"]), PunchWindow.from_json(data["window"]))


@dataclass(frozen=True)
class DayShard:
    """Days of one department to recompute; `employees`: only these (a `leave:` shard, or the employees an
    event's taps touched), else the stage's."""

    key: str
    days: MergeShard
    employees: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "days": self.days.as_json()}
        if self.employees is not None:
            data["employees"] = self.employees
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DayShard:
        return cls(str(data["key"]), MergeShard.from_json(data["days"]), data.get("employees"))


def _dates(span: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(span["from"]), dt.date.fromisoformat(span["to"])


async def plan_merge(execution_id: str) -> StageResult:
    """The BioStar time windows to import: the event's window, or what the date range needs.

    A date range is widened back to the earliest `open` row before it (`earliest_open_day`), so days
    computed while in progress are closed; the plan keeps the range (`days`) for `plan_merge_days`.
    """
    plan = await recorded_plan(execution_id, NAME, ShardKind.PLAN)
    if plan is None:
        merge = await stage_params(execution_id, NAME)
        days = None
        if "window" in merge:
            window = PunchWindow.from_json(merge["window"])
            start, end = window.start, window.end
        else:
            first, last = _dates(merge)
            first = min(first, await earliest_open_day(first, merge.get("employees")) or first)
            days = {"from": first.isoformat(), "to": last.isoformat()}
            start, end = punch_range_needed(first, last, current_shift_config(), get_settings().zone)
        windows = plan_punch_windows(start, end, import_window_hours(start, end, merge.get("employees")))
        plan = {"days": days, "shards": [ImportShard(PUNCHES.of(w.key), w).to_json() for w in windows]}
    typed = [ImportShard.from_json(s) for s in plan["shards"]]
    return plan_of(typed, await succeeded_outputs(execution_id, NAME), days=plan.get("days"))


def import_window_hours(start: dt.datetime, end: dt.datetime, employees: list[str] | None) -> float:
    """The import windows' length: a day each, or one window for a few named people (their logs only are
    read, so one query is small and the import runs inline: no chord for an `employee.changed`)."""
    if employees is not None and len(employees) <= FEW_EMPLOYEES:
        return max(IMPORT_WINDOW_HOURS, min((end - start).total_seconds() / 3600, FEW_WINDOW_HOURS))
    return IMPORT_WINDOW_HOURS


async def import_window(execution_id: str, shard: dict[str, Any]) -> StageResult:
    """Import one window of BioStar logs into `punches` (unknown users into `unmatched_punches`); a merge
    of named people reads only their logs."""
    merge = await stage_params(execution_id, NAME)
    return await import_punches(ImportShard.from_json(shard).window, execution_id, merge.get("devices"),
                                employees=merge.get("employees"))


async def plan_merge_days(execution_id: str) -> StageResult:
    """The (days x department) shards to recompute: the date range, or the (employee, days) the imports' taps
    touched (shards `days:` naming their employees).

    A date-range merge adds shards `leave:…` for the days changed absences still have to recompute
    (only those employees), and lists the marks it takes (`absence_marks`) for `finish_merge` to clear.
    """
    outputs = await succeeded_outputs(execution_id, NAME)
    plan = outputs.get(PLAN_DAYS)
    if plan is None:
        merge = await stage_params(execution_id, NAME)
        marks: list[PendingRecompute] = []
        named: list[DayShard] = []
        if "window" in merge:
            imports = STAGE.outputs_of(outputs, PUNCHES)
            touched = plan_merge_touched(imports, merge.get("employees"))
            if touched is None:  # imports recorded by a release that did not list the employees
                shards = plan_merge_after_import(imports, MERGE_DAYS_PER_SHARD, DAY_SHARD_BUDGET)
            else:  # only the (employee, day) pairs the new taps touch
                named = [DayShard(DAYS.of(s.key), s, employee_list)
                         for s, employee_list in await plan_recompute_shards(touched, MERGE_DAYS_PER_SHARD)]
                shards = []
        else:
            days = (outputs.get(ShardKind.PLAN) or {}).get("days") or merge
            employee_nos = merge.get("employees")
            shards = await plan_merge_shards_from_db(*_dates(days), MERGE_DAYS_PER_SHARD, employee_nos,
                                                     DAY_SHARD_BUDGET)
            today = dt.datetime.now(get_settings().zone).date()
            todo, marks = await pending_absence_recomputes(today, employee_nos)
            named = [DayShard(LEAVE.of(s.key), s, employee_list)
                     for s, employee_list in await plan_recompute_shards(
                         [(m.employee_no, m.date_from, m.date_to) for m in todo], MERGE_DAYS_PER_SHARD)]
        plan = {"shards": [DayShard(DAYS.of(s.key), s).to_json() for s in shards]
                + [s.to_json() for s in named],
                "absence_marks": [m.as_json() for m in marks]}
    typed = [DayShard.from_json(s) for s in plan["shards"]]
    return plan_of(typed, outputs, absence_marks=plan.get("absence_marks", []))


async def merge_shard(execution_id: str, shard: dict[str, Any]) -> StageResult:
    """Recompute the attendance days of one (days x department) shard (of the shard's employees, if named)."""
    planned = DayShard.from_json(shard)
    employee_nos = planned.employees
    if employee_nos is None:
        employee_nos = (await stage_params(execution_id, NAME)).get("employees")
    return await merge_attendance(planned.days, execution_id, employee_nos)


async def finish_merge(execution_id: str) -> StageResult:
    """Sum up the stage: punches imported, days by status, and the dates that changed (for notify)."""
    outputs = await succeeded_outputs(execution_id, NAME)
    imports = STAGE.outputs_of(outputs, PUNCHES)
    by_status: dict[str, int] = {}
    for out in STAGE.outputs_of(outputs, DAYS, LEAVE):
        for status, count in out.get("by_status", {}).items():
            by_status[status] = by_status.get(status, 0) + count
    days_plan = outputs.get(PLAN_DAYS, {})
    dates = [DayShard.from_json(s).days for s in days_plan.get("shards", [])]
    span = ({"from": min(d.date_from for d in dates).isoformat(), "to": max(d.date_to for d in dates).isoformat()}
            if dates else None)
    imported = sum_outputs(imports, ("logs", "punches", "punches_new", "unmatched", "unmatched_new"))
    marks = [PendingRecompute.from_json(m) for m in days_plan.get("absence_marks", [])]
    cleared = await clear_absence_recomputes(marks)
    return StageResult(rows_in=imported["punches"], rows_out=sum(by_status.values()),
                       output={"imported": imported, "by_status": by_status, "dates": span,
                               "absence_recomputes": cleared})



def merge_inputs(scope: Scope) -> dict[str, Any] | None:
    """The merge runs for a date range (nightly, attendance, employee) or a punches window."""
    if scope.window is not None:
        return {"window": dict(scope.window), "devices": scope.devices, "employees": None}
    if scope.name not in ("nightly", "attendance", "employee") or scope.days is None:
        return None
    return {**day_range(*scope.days), "employees": scope.employees}


STAGE = Stage(
    NAME, queue="hrsync.merge",
    phases=(Phase("plan", ShardKind.PLAN, plan_merge, "import", import_window),
            Phase("days", PLAN_DAYS, plan_merge_days, "shard", merge_shard)),
    finish=finish_merge,
    shard_kinds=(DAYS, PUNCHES, LEAVE),
    reads=(ABSENCE_RECOMPUTES,),
    inputs=merge_inputs,
    join=join_merge,
)
