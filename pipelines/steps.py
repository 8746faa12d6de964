"""The steps a workflow runs, as plain async functions over an execution id (no Celery here).

An execution's `params` (the inputs snapshot, fixed when it was created) say which stages run and
on what. Each stage is planned, fanned out over shards, and finished:

    extract:  plan_extract  → extract_shard x N  → finish_extract  (commits the HRIS watermark)
    merge:    plan_merge    → import_window x N  → plan_merge_days → merge_shard x M → finish_merge
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
    import_punches,
    merge_attendance,
    plan_merge_after_import,
    plan_merge_shards_from_db,
    plan_punch_windows,
)
from pipelines.attendance.rules import punch_range_needed
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
from shared.settings import get_settings
from shared.tracking import StageResult, get_execution, shard_name, succeeded_outputs

STAGES = ("extract", "merge", "notify")
PLAN, DAYS_PLAN, DONE = "@plan", "@plan-days", "@done"
EXTRACT_MAX_SHARDS, EXTRACT_SHARD_SIZE = 16, 2000
IMPORT_WINDOW_HOURS = 24.0
MERGE_DAYS_PER_SHARD = 7
NOTIFY_BATCH_SIZE = 50
MAX_SHARDS = 2000  # the most one planner may fan out: far above real plans, far below what eats a worker


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
        params = await pin_extract_window(ExtractParams.from_json((await _params(execution_id))["extract"]))
        ranges = await plan_extract_shards(params, EXTRACT_MAX_SHARDS, EXTRACT_SHARD_SIZE)
        plan = {"params": params.to_json(),
                "shards": [{"key": shard_name(str(r)), "range": r.to_json()} for r in ranges]}
    outputs = await succeeded_outputs(execution_id, "extract")
    return _plan_result(outputs, {"params": plan["params"]}, plan["shards"])


async def extract_shard(execution_id: str, shard: Mapping[str, Any], params: Mapping[str, Any]) -> StageResult:
    """Extract one key range of the HRIS into `employees`."""
    return await extract_employees(ExtractParams.from_json(dict(params)), KeyRange.from_json(shard["range"]),
                                   execution_id)


async def finish_extract(execution_id: str) -> StageResult:
    """Advance the watermark over all shards (never backwards) and sum up the stage."""
    outputs = await succeeded_outputs(execution_id, "extract")
    plan = outputs.pop(PLAN)
    outputs.pop(DONE, None)
    params = ExtractParams.from_json(plan["params"])
    watermark = next_watermark(params, outputs.values())
    if watermark is not None:
        await commit_watermark(params.source, watermark)
    totals = _sum(outputs.values(), ("read", "inserted", "updated", "unchanged", "rejected_count"))
    return StageResult(rows_in=totals["read"], rows_out=totals["inserted"] + totals["updated"],
                       output={**totals, "shards": len(outputs),
                               "watermark": watermark.isoformat() if watermark else None})


# -- merge -------------------------------------------------------------------------------------------

def _dates(merge: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(merge["from"]), dt.date.fromisoformat(merge["to"])


async def plan_merge(execution_id: str) -> StageResult:
    """The BioStar time windows to import: the event's window, or what the date range needs."""
    plan = await _reuse_plan(execution_id, "merge", PLAN)
    if plan is None:
        merge = (await _params(execution_id))["merge"]
        if "window" in merge:
            window = PunchWindow.from_json(merge["window"])
            start, end = window.start, window.end
        else:
            start, end = punch_range_needed(*_dates(merge), current_shift_config(), get_settings().zone)
        windows = plan_punch_windows(start, end, IMPORT_WINDOW_HOURS)
        plan = {"shards": [{"key": shard_name(f"punches:{w.key}"), "window": w.as_json()} for w in windows]}
    return _plan_result(await succeeded_outputs(execution_id, "merge"), {}, plan["shards"])


async def import_window(execution_id: str, shard: Mapping[str, Any]) -> StageResult:
    """Import one window of BioStar logs into `punches` (unknown users into `unmatched_punches`)."""
    merge = (await _params(execution_id))["merge"]
    return await import_punches(PunchWindow.from_json(shard["window"]), execution_id, merge.get("devices"))


async def plan_merge_days(execution_id: str) -> StageResult:
    """The (days x department) shards to recompute: the date range, or the days the imports touched."""
    outputs = await succeeded_outputs(execution_id, "merge")
    plan = outputs.get(DAYS_PLAN)
    if plan is None:
        merge = (await _params(execution_id))["merge"]
        if "window" in merge:
            imports = [out for key, out in outputs.items() if key.startswith("punches:")]
            shards = plan_merge_after_import(imports, MERGE_DAYS_PER_SHARD)
        else:
            shards = await plan_merge_shards_from_db(*_dates(merge), MERGE_DAYS_PER_SHARD, merge.get("employees"))
        plan = {"shards": [{"key": shard_name(s.key), "days": s.as_json()} for s in shards]}
    return _plan_result(outputs, {}, plan["shards"])


async def merge_shard(execution_id: str, shard: Mapping[str, Any]) -> StageResult:
    """Recompute the attendance days of one (days x department) shard."""
    merge = (await _params(execution_id))["merge"]
    return await merge_attendance(MergeShard.from_json(shard["days"]), execution_id, merge.get("employees"))


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
    return StageResult(rows_in=imported["punches"], rows_out=sum(by_status.values()),
                       output={"imported": imported, "by_status": by_status, "dates": span})


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
    if execution is None or execution["status"] != "failed":
        return StageResult(output={"queued": False})
    await queue_sync_failed(execution_id, execution["failed_stage"] or "?", execution["error"] or "")
    ids = [i for batch in await plan_notify_batches(execution_id) for i in batch]
    sent = await send_notifications(ids, execution_id)
    return StageResult(rows_in=len(ids), rows_out=sent.rows_out, output={"queued": True, **sent.output})


def _sum(outputs: Any, keys: Sequence[str]) -> dict[str, int]:
    return {key: sum(int(out.get(key) or 0) for out in outputs) for key in keys}
