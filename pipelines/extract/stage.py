"""The extract stage: HRIS employees (key-range shards) and absences (one shard `absences`).

    plan (@plan) -> shard x N -> done (@done, commits the HRIS watermarks)

The planner pins the watermark window once (`pin_extract_window`), so every shard and a later replay read
the same rows; each shard carries its pinned inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.extract.absences import absence_params, absences_enabled, extract_absences
from pipelines.extract.employees import (
    ExtractParams,
    KeyRange,
    commit_watermark,
    employee_parts,
    extract_employees,
    next_watermark,
    pin_extract_window,
    plan_extract_shards,
)
from pipelines.stage import (
    Phase,
    Scope,
    Stage,
    StageResult,
    WorkKind,
    plan_of,
    recorded_plan,
    stage_params,
    sum_outputs,
)
from shared.events.coalesce import BoundedUnion
from shared.events.models import MAX_EMPLOYEES
from shared.records.queries import succeeded_outputs
from shared.records.shards import ShardKind

NAME = "extract"
KEY_RANGE = WorkKind("ranges")  # a range of employee numbers (no prefix: `E0001..E0200`, `part 1/3 …`)
ABSENCES = WorkKind("ranges", name="absences")  # the shard reading the HRIS absences
EXTRACT_MAX_SHARDS, EXTRACT_SHARD_SIZE = 16, 2000
COUNTS = ("read", "inserted", "updated", "unchanged", "rejected_count")


@dataclass(frozen=True)
class ExtractShard:
    """A key range of employees (`range`) or, with `range` None, the absences; `params`: the pinned inputs."""

    key: str
    params: ExtractParams
    range: KeyRange | None = None

    def to_json(self) -> dict[str, Any]:
        if self.range is None:
            return {"key": self.key, "absences": self.params.to_json()}
        return {"key": self.key, "range": self.range.to_json(), "params": self.params.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], plan_params: Mapping[str, Any] | None = None) -> ExtractShard:
        """A shard as planned; `plan_params`: the plan's pinned inputs, for a shard recorded without them."""
        if "absences" in data:
            return cls(str(data["key"]), ExtractParams.from_json(dict(data["absences"])))
        params = data.get("params", plan_params)
        if params is None:
            raise ValueError(f"extract shard {data.get('key')!r} has no inputs")
        return cls(str(data["key"]), ExtractParams.from_json(dict(params)), KeyRange.from_json(dict(data["range"])))


async def plan_extract(execution_id: str) -> StageResult:
    """Pin the watermark window and cut the changed keys into shards (or reuse a predecessor's plan)."""
    plan = await recorded_plan(execution_id, NAME, ShardKind.PLAN)
    if plan is None:
        employee_params = ExtractParams.from_json(await stage_params(execution_id, NAME))
        params = await pin_extract_window(employee_params)
        shards = await employee_shards(params)
        if absences_enabled():
            leave = await pin_extract_window(absence_params(employee_params))
            shards.append(ExtractShard(ABSENCES.of(), leave))
        plan = {"params": params.to_json(), "shards": [s.to_json() for s in shards]}
    typed = [ExtractShard.from_json(s, plan["params"]) for s in plan["shards"]]
    return plan_of(typed, await succeeded_outputs(execution_id, NAME), params=plan["params"])


async def employee_shards(params: ExtractParams) -> list[ExtractShard]:
    """Key-range shards of `params`; a long list of employees is planned part by part (each part's reads
    are one statement: SQL Server's parameter limit), its shards named after their part."""
    parts = employee_parts(params)
    if len(parts) == 1:
        ranges = await plan_extract_shards(params, EXTRACT_MAX_SHARDS, EXTRACT_SHARD_SIZE)
        return [ExtractShard(KEY_RANGE.of(str(r)), params, r) for r in ranges]
    shards = []
    for n, part in enumerate(parts, 1):
        ranges = await plan_extract_shards(part, max(1, EXTRACT_MAX_SHARDS // len(parts)), EXTRACT_SHARD_SIZE)
        shards += [ExtractShard(KEY_RANGE.of(f"part {n}/{len(parts)} {r}"), part, r) for r in ranges]
    return shards


async def extract_shard(execution_id: str, shard: dict[str, Any]) -> StageResult:
    """Extract one key range of the HRIS into `employees` (or, shard `absences`, the absences)."""
    planned = ExtractShard.from_json(shard)
    if planned.range is None:
        return await extract_absences(planned.params, execution_id)
    return await extract_employees(planned.params, planned.range, execution_id)


async def finish_extract(execution_id: str) -> StageResult:
    """Advance the watermarks over all shards (never backwards) and sum up the stage."""
    outputs = await succeeded_outputs(execution_id, NAME)
    plan = outputs[ShardKind.PLAN]
    params = ExtractParams.from_json(plan["params"])
    ranges = STAGE.outputs_of(outputs, KEY_RANGE)
    watermark = next_watermark(params, ranges)
    if watermark is not None:
        await commit_watermark(params.source, watermark)
    totals = sum_outputs(ranges, COUNTS)
    output: dict[str, Any] = {**totals, "shards": len(ranges),
                              "watermark": watermark.isoformat() if watermark else None}
    leave = outputs.get(ABSENCES.of())
    absence_shard = next((s for s in plan["shards"] if s["key"] == ABSENCES.of()), None)
    if leave is not None and absence_shard is not None:
        leave_params = ExtractShard.from_json(absence_shard).params
        leave_mark = next_watermark(leave_params, [leave])
        if leave_mark is not None:
            await commit_watermark(leave_params.source, leave_mark)
        output["absences"] = {**sum_outputs([leave], (*COUNTS, "recompute_marked")),
                              "watermark": leave_mark.isoformat() if leave_mark else None}
    return StageResult(rows_in=totals["read"], rows_out=totals["inserted"] + totals["updated"], output=output)



def extract_inputs(scope: Scope) -> dict[str, Any] | None:
    """The extract runs for a nightly, hris or employee scope: the named people (or all), incrementally."""
    if scope.name not in ("nightly", "hris", "employee"):
        return None
    return {"full": False, "employees": scope.employees, "source": "hris"}


class EmployeesJoin:
    """The extract's inputs when `employee.changed` events coalesce: the union of their employees (at most
    5,000, DESIGN §5); the rest stays that of the first event."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.base = dict(params)
        self.employees = BoundedUnion(params["employees"], MAX_EMPLOYEES)

    def admits(self, new: Mapping[str, Any]) -> bool:
        return self.employees.admits(new["employees"])

    def add(self, new: Mapping[str, Any]) -> None:
        self.employees.add(new["employees"])

    def params(self) -> dict[str, Any]:
        return {**self.base, "employees": self.employees.listed()}


STAGE = Stage(
    NAME, queue="hrsync.extract",
    phases=(Phase("plan", ShardKind.PLAN, plan_extract, "shard", extract_shard),),
    finish=finish_extract,
    shard_kinds=(KEY_RANGE, ABSENCES),
    inputs=extract_inputs,
    join=EmployeesJoin,
)
