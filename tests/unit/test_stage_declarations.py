"""What follows from the stage declarations alone: the inputs snapshot per scope, the Celery queues, the task
shells and the canvas (no broker: signatures and registered tasks are inspected, nothing is sent)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines import registry
from pipelines.plans import params_for
from pipelines.stage import Phase, Scope, Stage, StageResult, WorkKind
from shared.records.shards import ShardKind
from workers import canvas, tasks
from workers.app import app
from workers.queues import stage_queues
from workers.stage_task import failure_hooks

DAYS = (dt.date(2026, 11, 23), dt.date(2026, 11, 24))
RANGE = {"from": "2026-11-23", "to": "2026-11-24"}
WINDOW = {"from": "2026-11-24T06:00:00+00:00", "to": "2026-11-24T07:00:00+00:00"}


@pytest.mark.parametrize(("scope", "expected"), [
    # DESIGN §5 nightly: extract (incremental, everyone), merge (the range), notify (no inputs of its own)
    (Scope("nightly", days=DAYS), {"scope": "nightly", "stages": ["extract", "merge", "notify"],
                                   "extract": {"full": False, "employees": None, "source": "hris"},
                                   "merge": {**RANGE, "employees": None}}),
    # hris: the extract alone
    (Scope("hris", employees=["E1"], days=DAYS), {"scope": "hris", "stages": ["extract"],
                                                  "extract": {"full": False, "employees": ["E1"], "source": "hris"}}),
    # attendance with notify false: the merge alone
    (Scope("attendance", days=DAYS, notify=False), {"scope": "attendance", "stages": ["merge"],
                                                     "merge": {**RANGE, "employees": None}}),
    # punches: merge of the window (devices kept, every employee), then notify
    (Scope("punches", window=WINDOW, devices=[3]), {"scope": "punches", "stages": ["merge", "notify"],
                                                    "merge": {"window": WINDOW, "devices": [3], "employees": None}}),
    # a closed month's version: the export alone
    (Scope("export", period="2026-11", version=2), {"scope": "export", "stages": ["export"],
                                                    "export": {"period": "2026-11", "version": 2}}),
])
def test_each_stage_declares_its_inputs_per_scope(scope: Scope, expected: dict[str, Any]) -> None:
    assert params_for(scope, registry.STAGES) == expected


async def _nothing(execution_id: str, *shard: Any) -> StageResult:
    return StageResult()


EXTRA = Stage("audit_copy", "hrsync.audit_copy", (Phase("plan", ShardKind.PLAN, _nothing, "copy", _nothing),),
              _nothing, (WorkKind("copies", prefix="copy:"),),
              inputs=lambda scope: {"month": scope.period} if scope.name == "export" else None)


def test_a_new_stage_joins_a_scope_by_its_declaration_alone() -> None:
    """plans.py names no stage: a stage declaring inputs for `export` runs after the export, with its inputs."""
    params = params_for(Scope("export", period="2026-11", version=2), (*registry.STAGES, EXTRA))
    assert (params["stages"], params["audit_copy"]) == (["export", "audit_copy"], {"month": "2026-11"})
    assert params_for(Scope("hris"), (*registry.STAGES, EXTRA))["stages"] == ["extract"]


def test_the_queues_are_the_stages_then_the_workflow() -> None:
    """One queue per stage (DESIGN §8), in pipeline order, and the workflow's for the claim and finish."""
    expected = ("hrsync.extract", "hrsync.merge", "hrsync.notify", "hrsync.export", "hrsync.workflow")
    assert stage_queues() == expected
    assert [q.name for q in app.conf.task_queues] == list(expected)


def test_the_task_shells_follow_the_declarations() -> None:
    """Per stage: a task per planner and per shard step, `done`, all on the stage's queue; notify's failure hook."""
    expected = {
        "hrsync.extract.plan": "hrsync.extract", "hrsync.extract.shard": "hrsync.extract",
        "hrsync.extract.done": "hrsync.extract",
        "hrsync.merge.plan": "hrsync.merge", "hrsync.merge.import": "hrsync.merge", "hrsync.merge.days": "hrsync.merge",
        "hrsync.merge.shard": "hrsync.merge", "hrsync.merge.done": "hrsync.merge",
        "hrsync.notify.plan": "hrsync.notify", "hrsync.notify.send": "hrsync.notify",
        "hrsync.notify.done": "hrsync.notify", "hrsync.notify.failure": "hrsync.notify",
        "hrsync.export.plan": "hrsync.export", "hrsync.export.write": "hrsync.export",
        "hrsync.export.done": "hrsync.export",
    }
    stage_tasks = {name: task.queue for name, task in app.tasks.items()
                   if name.split(".")[1:2] and name.split(".")[1] in registry.STAGE_NAMES}
    assert stage_tasks == expected
    assert failure_hooks() == [("hrsync.notify.failure", "hrsync.notify")]
    assert [t.name for t in tasks.STAGE_TASKS["merge"].planners] == ["hrsync.merge.plan", "hrsync.merge.days"]


@pytest.mark.parametrize(("stages", "chain", "ran"), [
    # the nightly chain: claim, each stage's first planner in pipeline order, finish with the stages run
    (["extract", "merge", "notify"], ["hrsync.workflow.start", "hrsync.extract.plan", "hrsync.merge.plan",
                                      "hrsync.notify.plan", "hrsync.workflow.finish"], ["extract", "merge", "notify"]),
    # listed out of order: run in the pipeline's order
    (["notify", "merge"], ["hrsync.workflow.start", "hrsync.merge.plan", "hrsync.notify.plan",
                           "hrsync.workflow.finish"], ["merge", "notify"]),
    (["export"], ["hrsync.workflow.start", "hrsync.export.plan", "hrsync.workflow.finish"], ["export"]),
])
def test_the_canvas_chains_the_listed_stages(stages: list[str], chain: list[str], ran: list[str]) -> None:
    signature = canvas.workflow("E1", stages)
    assert [s.task for s in signature.tasks] == chain
    assert all(s.immutable for s in signature.tasks)
    assert signature.tasks[-1].args == ("E1", ran)


def test_the_canvas_refuses_an_unknown_stage() -> None:
    with pytest.raises(ValueError, match="unknown stages: \\['payroll'\\]"):
        canvas.workflow("E1", ["merge", "payroll"])
