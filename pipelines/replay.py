"""Planning a replay (DESIGN §7) as a pure function of the recorded rows: what the replay runs, what
it skips, and which effects (rows written, emails) already exist and will not be repeated.

`hrsync replay --dry-run` prints this plan; `hrsync replay` creates the execution it describes and
launches its stages. It does not repeat the planners' decisions: it reads the plans they recorded
(each stage's planners, from its declaration in `pipelines.registry`) with the lineage rule the planners
use at run time (`shared.records.queries.visible_lineage`), so the plan is what the replay then does:

- the stages before the failed one succeeded: not rerun, their `@done` outputs feed the next stage;
- the failed stage and what follows run, minus the shards that already succeeded in the lineage;
- `--from-stage S` reruns S and what follows whole (params `rerun_stages`: none of their shards is
  skipped); emails already sent are still never sent again (the outbox keys them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines import registry
from pipelines.stage import Stage
from shared.config.errors import ConfigError, HrsyncError
from shared.records.queries import RERUN_STAGES, visible_lineage
from shared.records.shards import ShardKind, is_control
from shared.records.status import OPEN, ExecutionStatus, StageStatus

NEW = "(replay)"  # the replay's id in the lineage before it exists


class ReplayRefused(HrsyncError):
    """The execution cannot be replayed now (running, succeeded, already replayed): exit code 1."""


@dataclass
class StagePlan:
    """One stage of a replay plan.

    `run`: shards that will run (known from a recorded plan); `skipped`: shards that succeeded before
    and are not rerun; `later`: parts planned only when the replay runs; `rows_kept`: rows the skipped
    shards wrote (kept, not written again).
    """

    stage: str
    action: str  # "skip" (succeeded before, not rerun) or "run"
    run: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    later: list[str] = field(default_factory=list)
    rows_kept: int = 0
    done_in: str | None = None  # for a skipped stage: the execution whose `@done` it reuses


@dataclass
class ReplayPlan:
    """What `hrsync replay` will create and launch."""

    source_id: str
    kind: str
    attempt: int
    failed_stage: str | None
    stages: list[str]  # the stages the replay launches
    params: dict[str, Any]
    plan: list[StagePlan]
    emails: dict[str, int]
    events: list[str] = field(default_factory=list)  # the events the lineage serves (several when coalesced)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _done_rows(stage: str, chain: Sequence[tuple[str, Mapping[str, Any] | None]],
               rows_by_execution: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Mapping[str, Any]]:
    """Shard → succeeded row of `stage` visible from the head of `chain` (newest wins), as the planners see it."""
    done: dict[str, Mapping[str, Any]] = {}
    for execution_id in visible_lineage(chain, stage):
        for row in rows_by_execution.get(execution_id, ()):
            if row["stage"] == stage and row["status"] == StageStatus.SUCCEEDED and row["shard"] not in done:
                done[row["shard"]] = row
    return done


def _planned(done: Mapping[str, Mapping[str, Any]], plan_shard: str) -> list[str] | None:
    """The shard keys a recorded planner output lists, or None if that planner has not run yet."""
    row = done.get(plan_shard)
    if row is None:
        return None
    return [str(s["key"]) for s in (row.get("result") or {}).get("shards", [])]


def _start_stage(source: Mapping[str, Any], stages: Sequence[str],
                 done_of: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str | None:
    """The first stage to rerun: the recorded failed stage, or an earlier one that never finished."""
    first_open = next((s for s in stages if ShardKind.DONE not in done_of[s]), None)
    candidates = [s for s in (source.get("failed_stage"), first_open) if s in stages]
    return min(candidates, key=stages.index) if candidates else None


def check_replayable(source: Mapping[str, Any], children: Sequence[Mapping[str, Any]],
                     rows: Sequence[Mapping[str, Any]] = (), alive_since: dt.datetime | None = None) -> None:
    """Refuse (`ReplayRefused`) an execution that is pending, running, succeeded or already replayed, or a
    cancelled one with a step still running (`rows`: its stage rows, a `running` one started before
    `alive_since` no longer counts — the task's time limit ended it; the replay would run beside it).

    A failed or cancelled execution is replayed: a cancelled one's events are served by its replay."""
    sid, status = source["id"], source["status"]
    if status in OPEN:
        raise ReplayRefused(f"execution {sid} is {status}: wait for it to finish (hrsync show {sid})")
    if status == ExecutionStatus.SUCCEEDED:
        raise ReplayRefused(f"execution {sid} succeeded: there is nothing to replay")
    if status not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
        raise ReplayRefused(f"execution {sid} is {status}: only failed or cancelled executions are replayed")
    if status == ExecutionStatus.CANCELLED:
        running = [r for r in rows if r["execution_id"] == sid and r["status"] == StageStatus.RUNNING
                   and (alive_since is None or r.get("started_at") is None or r["started_at"] > alive_since)]
        if running:
            raise ReplayRefused(f"execution {sid} was cancelled but {len(running)} of its steps still run: "
                                f"replay it once they end (hrsync show {sid})")
    if children:
        child = children[-1]
        raise ReplayRefused(f"execution {sid} was already replayed by {child['id']} ({child['status']})"
                            + (": replay that one" if child["status"] == ExecutionStatus.FAILED else ""))


def plan_replay(
    lineage: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    *,
    children: Sequence[Mapping[str, Any]] = (),
    from_stage: str | None = None,
    outbox_by_status: Mapping[str, int] | None = None,
    pending_outbox_ids: Sequence[int] = (),
    alive_since: dt.datetime | None = None,
) -> ReplayPlan:
    """The replay of `lineage[0]` (its lineage newest first, as `executions` rows) from its stage rows.

    `rows`: the `execution_stages` rows of the lineage; `children`: executions replaying `lineage[0]`;
    `outbox_by_status`: counts of the outbox rows the lineage built; `pending_outbox_ids`: every pending
    outbox row (a replay's notify sends the whole pending backlog); `alive_since`: see `check_replayable`.
    Raises `ReplayRefused` (exit 1) or `ConfigError` (exit 2, a bad `--from-stage`).
    """
    source = lineage[0]
    check_replayable(source, children, rows, alive_since)
    params = dict(source.get("params") or {})
    stages = [s for s in registry.STAGE_NAMES if s in (params.get("stages") or ())]
    chain = [(str(e["id"]), e.get("params")) for e in lineage]
    rows_by_execution: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        rows_by_execution.setdefault(str(row["execution_id"]), []).append(row)
    done_before = {s: _done_rows(s, chain, rows_by_execution) for s in stages}
    start = _start_stage(source, stages, done_before)
    if from_stage is not None:
        if from_stage not in stages:
            raise ConfigError(f"--from-stage: {from_stage!r} is not a stage of execution {source['id']} "
                              f"(its stages: {', '.join(stages)})")
        if start is not None and stages.index(from_stage) > stages.index(start):
            raise ConfigError(f"--from-stage: {from_stage} comes after the failed stage {start}; "
                              "replaying from there would skip it")
        start = from_stage
    run_stages = stages[stages.index(start):] if start is not None else []
    params.pop(RERUN_STAGES, None)  # a replay of a replay reruns nothing whole unless asked again
    if from_stage is not None:
        params[RERUN_STAGES] = run_stages
    new_chain = [(NEW, params), *chain]
    plan = [_stage_plan(registry.BY_NAME[s], s in run_stages, _done_rows(s, new_chain, rows_by_execution),
                        pending_outbox_ids) for s in stages]
    by_status = dict(outbox_by_status or {})
    emails = {"sent": by_status.get("sent", 0), "parked": by_status.get("failed", 0),
              "pending": by_status.get("pending", 0), "pending_backlog": len(pending_outbox_ids)}
    return ReplayPlan(source_id=str(source["id"]), kind=str(source["kind"]), attempt=int(source["attempt"] or 1) + 1,
                      failed_stage=source.get("failed_stage"), stages=run_stages, params=params, plan=plan,
                      emails=emails)


def _stage_plan(stage: Stage, runs: bool, done: Mapping[str, Mapping[str, Any]],
                pending_outbox_ids: Sequence[int]) -> StagePlan:
    shards = sorted(k for k in done if not is_control(k))
    kept = sum(int(done[k].get("rows_out") or 0) for k in shards)
    if not runs:
        done_row = done.get(ShardKind.DONE)
        return StagePlan(stage.name, "skip", skipped=shards, rows_kept=kept,
                         done_in=str(done_row["execution_id"]) if done_row else None)
    if stage.replans is not None:  # planned afresh when it runs (notify: from the pending outbox)
        predicted, planned_later = stage.replans(pending_outbox_ids)
        return StagePlan(stage.name, "run", run=predicted, later=planned_later)
    run: list[str] = []
    later: list[str] = []
    skipped: list[str] = []
    for plan_shard in stage.plan_shards:
        planned = _planned(done, plan_shard)
        if planned is None:
            later.append(plan_shard)
            continue
        run += [k for k in planned if k not in done]
        skipped += [k for k in planned if k in done]
    skipped += [k for k in shards if k not in skipped]
    return StagePlan(stage.name, "run", run=run, skipped=skipped, later=later, rows_kept=kept)
