"""The steps a workflow runs, as plain async functions over an execution id (no Celery here).

An execution's `params` (the inputs snapshot, fixed when it was created) say which stages run and
on what. Each stage is planned, fanned out over shards, and finished:

    extract:  plan_extract  → extract_shard x N  → finish_extract  (commits the HRIS watermarks)
              (the absences are one more shard, `absences`, with a watermark of their own)
    merge:    plan_merge    → import_window x N  → plan_merge_days → merge_shard x M → finish_merge
              (a date range starts at the earliest `open` day left before it; the days changed
               absences still have to recompute are extra shards `leave:…` of those employees only)
    notify:   plan_notify (builds the outbox)    → send_batch x K  → finish_notify

A planner's output is the list of shards; a replay (a new execution with `replay_of`) reuses the
plan of its predecessor and leaves out the shards that already succeeded, so only the failed work
and what follows it run again. Shard functions are idempotent, keyed on execution and shard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.attendance.merge import (
    MergeShard,
    PunchWindow,
    current_shift_config,
    earliest_open_day,
    import_punches,
    merge_attendance,
    plan_merge_after_import,
    plan_merge_shards_from_db,
    plan_punch_windows,
    plan_recompute_shards,
)
from pipelines.attendance.rules import punch_range_needed
from pipelines.hris.absences import (
    PendingRecompute,
    absence_params,
    absences_enabled,
    clear_absence_recomputes,
    extract_absences,
    pending_absence_recomputes,
)
from pipelines.hris_extract import (
    ExtractParams,
    KeyRange,
    commit_watermark,
    extract_employees,
    next_watermark,
    pin_extract_window,
    plan_extract_shards,
)
from pipelines.notify import build_notifications, plan_notify_batches, queue_sync_failed, send_notifications
from shared.errors import HrsyncError
from shared.records.executions import StageResult
from shared.records.queries import get_execution, succeeded_outputs
from shared.records.shards import shard_name
from shared.records.status import ExecutionStatus
from shared.settings import get_settings

STAGES = ("extract", "merge", "notify")
PLAN, DAYS_PLAN, DONE = "@plan", "@plan-days", "@done"
ABSENCES = "absences"  # the extract shard reading the HRIS absences
EXTRACT_MAX_SHARDS, EXTRACT_SHARD_SIZE = 16, 2000
IMPORT_WINDOW_HOURS = 24.0
MERGE_DAYS_PER_SHARD = 7
NOTIFY_BATCH_SIZE = 50
MAX_SHARDS = 2000  # the most one planner may fan out: far above real plans, far below what eats a worker
DAY_SHARD_BUDGET = MAX_SHARDS // 2  # day shards grow longer past this; the rest is room for `leave:` shards


async def _params(execution_id: str) -> dict[str, Any]:
    execution = await get_execution(execution_id)
    if execution is None:
        raise LookupError(f"execution {execution_id} does not exist")
    return dict(execution["params"])


def _todo(shards: Sequence[Mapping[str, Any]], done: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The planned shards whose key has no succeeded row in the lineage yet."""
    return [dict(s) for s in shards if s["key"] not in done]


async def _reuse_plan(execution_id: str, stage: str, plan_shard: str) -> dict[str, Any] | None:
    return (await succeeded_outputs(execution_id, stage)).get(plan_shard)


class PlanTooLarge(HrsyncError):
    """A planner produced more shards than `MAX_SHARDS`: a bug or an input past the bounds, never fanned out."""


def _plan_result(stage_outputs: Mapping[str, Any], plan: dict[str, Any], shards: list[dict[str, Any]]
                 ) -> StageResult:
    if len(shards) > MAX_SHARDS:
        raise PlanTooLarge(f"the plan has {len(shards)} shards, more than the ceiling of {MAX_SHARDS}")
    todo = _todo(shards, stage_outputs)
    return StageResult(rows_in=len(shards), rows_out=len(todo),
                       output={**plan, "shards": shards, "todo": todo, "skipped": len(shards) - len(todo)})


# -- extract -----------------------------------------------------------------------------------------

async def plan_extract(execution_id: str) -> StageResult:
    """Pin the watermark window and cut the changed keys into shards (or reuse a predecessor's plan)."""
    plan = await _reuse_plan(execution_id, "extract", PLAN)
    if plan is None:
        employee_params = ExtractParams.from_json((await _params(execution_id))["extract"])
        params = await pin_extract_window(employee_params)
        ranges = await plan_extract_shards(params, EXTRACT_MAX_SHARDS, EXTRACT_SHARD_SIZE)
        shards = [{"key": shard_name(str(r)), "range": r.to_json()} for r in ranges]
        if absences_enabled():
            leave = await pin_extract_window(absence_params(employee_params))
            shards.append({"key": ABSENCES, "absences": leave.to_json()})
        plan = {"params": params.to_json(), "shards": shards}
    outputs = await succeeded_outputs(execution_id, "extract")
    return _plan_result(outputs, {"params": plan["params"]}, plan["shards"])


async def extract_shard(execution_id: str, shard: Mapping[str, Any], params: Mapping[str, Any]) -> StageResult:
    """Extract one key range of the HRIS into `employees` (or, shard `absences`, the absences)."""
    if "absences" in shard:
        return await extract_absences(ExtractParams.from_json(shard["absences"]), execution_id)
    return await extract_employees(ExtractParams.from_json(dict(params)), KeyRange.from_json(shard["range"]),
                                   execution_id)


async def finish_extract(execution_id: str) -> StageResult:
    """Advance the watermarks over all shards (never backwards) and sum up the stage."""
    outputs = await succeeded_outputs(execution_id, "extract")
    plan = outputs.pop(PLAN)
    outputs.pop(DONE, None)
    leave = outputs.pop(ABSENCES, None)
    params = ExtractParams.from_json(plan["params"])
    watermark = next_watermark(params, outputs.values())
    if watermark is not None:
        await commit_watermark(params.source, watermark)
    totals = _sum(outputs.values(), ("read", "inserted", "updated", "unchanged", "rejected_count"))
    output: dict[str, Any] = {**totals, "shards": len(outputs),
                              "watermark": watermark.isoformat() if watermark else None}
    absence_shard = next((s for s in plan["shards"] if s["key"] == ABSENCES), None)
    if leave is not None and absence_shard is not None:
        leave_params = ExtractParams.from_json(absence_shard["absences"])
        leave_mark = next_watermark(leave_params, [leave])
        if leave_mark is not None:
            await commit_watermark(leave_params.source, leave_mark)
        output["absences"] = {**_sum([leave], ("read", "inserted", "updated", "unchanged", "rejected_count",
                                                "recompute_marked")),
                              "watermark": leave_mark.isoformat() if leave_mark else None}
    return StageResult(rows_in=totals["read"], rows_out=totals["inserted"] + totals["updated"], output=output)


# -- merge -------------------------------------------------------------------------------------------

def _dates(merge: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(merge["from"]), dt.date.fromisoformat(merge["to"])


async def plan_merge(execution_id: str) -> StageResult:
    """The BioStar time windows to import: the event's window, or what the date range needs.

    A date range is widened back to the earliest `open` row before it (`earliest_open_day`), so days
    computed while in progress are closed; the plan keeps the range (`days`) for `plan_merge_days`.
    """
    plan = await _reuse_plan(execution_id, "merge", PLAN)
    if plan is None:
        merge = (await _params(execution_id))["merge"]
        days = None
        if "window" in merge:
            window = PunchWindow.from_json(merge["window"])
            start, end = window.start, window.end
        else:
            first, last = _dates(merge)
            first = min(first, await earliest_open_day(first, merge.get("employees")) or first)
            days = {"from": first.isoformat(), "to": last.isoformat()}
            start, end = punch_range_needed(first, last, current_shift_config(), get_settings().zone)
        windows = plan_punch_windows(start, end, IMPORT_WINDOW_HOURS)
        plan = {"days": days,
                "shards": [{"key": shard_name(f"punches:{w.key}"), "window": w.as_json()} for w in windows]}
    return _plan_result(await succeeded_outputs(execution_id, "merge"), {"days": plan.get("days")},
                        plan["shards"])


async def import_window(execution_id: str, shard: Mapping[str, Any]) -> StageResult:
    """Import one window of BioStar logs into `punches` (unknown users into `unmatched_punches`)."""
    merge = (await _params(execution_id))["merge"]
    return await import_punches(PunchWindow.from_json(shard["window"]), execution_id, merge.get("devices"))


async def plan_merge_days(execution_id: str) -> StageResult:
    """The (days x department) shards to recompute: the date range, or the days the imports touched.

    A date-range merge adds shards `leave:…` for the days changed absences still have to recompute
    (only those employees), and lists the marks it takes (`absence_marks`) for `finish_merge` to clear.
    """
    outputs = await succeeded_outputs(execution_id, "merge")
    plan = outputs.get(DAYS_PLAN)
    if plan is None:
        merge = (await _params(execution_id))["merge"]
        marks: list[PendingRecompute] = []
        if "window" in merge:
            imports = [out for key, out in outputs.items() if key.startswith("punches:")]
            shards = plan_merge_after_import(imports, MERGE_DAYS_PER_SHARD, DAY_SHARD_BUDGET)
            leave: list[dict[str, Any]] = []
        else:
            days = (outputs.get(PLAN) or {}).get("days") or merge
            employee_nos = merge.get("employees")
            shards = await plan_merge_shards_from_db(*_dates(days), MERGE_DAYS_PER_SHARD, employee_nos,
                                                     DAY_SHARD_BUDGET)
            today = dt.datetime.now(get_settings().zone).date()
            todo, marks = await pending_absence_recomputes(today, employee_nos)
            leave = [{"key": shard_name(f"leave:{s.key}"), "days": s.as_json(), "employees": employee_list}
                     for s, employee_list in await plan_recompute_shards(
                         [(m.employee_no, m.date_from, m.date_to) for m in todo], MERGE_DAYS_PER_SHARD)]
        plan = {"shards": [{"key": shard_name(s.key), "days": s.as_json()} for s in shards] + leave,
                "absence_marks": [m.as_json() for m in marks]}
    return _plan_result(outputs, {"absence_marks": plan.get("absence_marks", [])}, plan["shards"])


async def merge_shard(execution_id: str, shard: Mapping[str, Any]) -> StageResult:
    """Recompute the attendance days of one (days x department) shard (of the shard's employees, if named)."""
    merge = (await _params(execution_id))["merge"]
    employee_nos = shard["employees"] if "employees" in shard else merge.get("employees")
    return await merge_attendance(MergeShard.from_json(shard["days"]), execution_id, employee_nos)


async def finish_merge(execution_id: str) -> StageResult:
    """Sum up the stage: punches imported, days by status, and the dates that changed (for notify)."""
    outputs = await succeeded_outputs(execution_id, "merge")
    imports = [out for key, out in outputs.items() if key.startswith("punches:")]
    days = [out for key, out in outputs.items() if not key.startswith(("punches:", "@"))]
    by_status: dict[str, int] = {}
    for out in days:
        for status, count in out.get("by_status", {}).items():
            by_status[status] = by_status.get(status, 0) + count
    dates = [MergeShard.from_json(s["days"]) for s in outputs.get(DAYS_PLAN, {}).get("shards", [])]
    span = ({"from": min(d.date_from for d in dates).isoformat(), "to": max(d.date_to for d in dates).isoformat()}
            if dates else None)
    imported = _sum(imports, ("logs", "punches", "punches_new", "unmatched", "unmatched_new"))
    marks = [PendingRecompute.from_json(m) for m in outputs.get(DAYS_PLAN, {}).get("absence_marks", [])]
    cleared = await clear_absence_recomputes(marks)
    return StageResult(rows_in=imported["punches"], rows_out=sum(by_status.values()),
                       output={"imported": imported, "by_status": by_status, "dates": span,
                               "absence_recomputes": cleared})


# -- notify ------------------------------------------------------------------------------------------

async def plan_notify(execution_id: str) -> StageResult:
    """Build the outbox for the merged dates, then batch the pending messages."""
    merged = (await succeeded_outputs(execution_id, "merge")).get(DONE, {}).get("dates")
    span = merged or (await _params(execution_id)).get("merge")
    built: dict[str, Any] = {}
    if span and span.get("from"):
        built = (await build_notifications(*_dates(span), execution_id)).output
    shards = notify_batch_shards(await plan_notify_batches(None, NOTIFY_BATCH_SIZE))
    return _plan_result({}, {"built": built}, shards)


def notify_batch_shards(batches: Sequence[Sequence[int]]) -> list[dict[str, Any]]:
    """The send shards of batches of outbox ids (also what a replay's dry run predicts)."""
    return [{"key": shard_name(f"batch:{ids[0]}-{ids[-1]}:{len(ids)}"), "ids": list(ids)} for ids in batches if ids]


async def send_batch(execution_id: str, shard: Mapping[str, Any]) -> StageResult:
    """Send one batch of outbox messages (rows already sent are skipped by their claim)."""
    return await send_notifications(shard["ids"], execution_id)


async def finish_notify(execution_id: str) -> StageResult:
    """Sum up what was sent, parked and left pending."""
    outputs = await succeeded_outputs(execution_id, "notify")
    sends = [out for key, out in outputs.items() if key.startswith("batch:")]
    totals = _sum(sends, ("sent", "failed", "deferred", "skipped_done", "skipped_claimed"))
    return StageResult(rows_in=sum(totals.values()), rows_out=totals["sent"], output=totals)


async def notify_failure(execution_id: str) -> StageResult:
    """Queue and send the `sync_failed` notice of a failed execution to operations.

    If the mail cannot go out now, the row stays pending in the outbox and the next notify run sends it.
    """
    execution = await get_execution(execution_id)
    if execution is None or execution["status"] != ExecutionStatus.FAILED:
        return StageResult(output={"queued": False})
    await queue_sync_failed(execution_id, execution["failed_stage"] or "?", execution["error"] or "")
    ids = [i for batch in await plan_notify_batches(execution_id) for i in batch]
    sent = await send_notifications(ids, execution_id)
    return StageResult(rows_in=len(ids), rows_out=sent.rows_out, output={"queued": True, **sent.output})


def _sum(outputs: Any, keys: Sequence[str]) -> dict[str, int]:
    return {key: sum(int(out.get(key) or 0) for out in outputs) for key in keys}
